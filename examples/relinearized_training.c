/*
 * relinearized_training.c -- iteratively re-linearized training (Goldwaser
 * & Ge 2022): the linearized network (trainer order 1) is trained, and every
 * K steps its base theta0 moves to the current theta
 * (TN_TRAIN_REEXPAND_EVERY K), so the model follows the network's features
 * as they change.  K = 1 is full training step for step; K beyond the run's
 * length is plain linearized training.  Same data, loss, optimizer and
 * per-epoch report as full_training.
 *
 *   ./build/examples/relinearized_training [--reexpand K] [--train N] ... (--help)
 */
#include "support/training.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    ex_train_flags f;
    ex_train_flags_default(&f);
    /* The same budget as linearized_training, so the two compare directly. */
    f.n_train = 20000;
    f.epochs = 5;
    uint64_t every = 100;
    const ex_arg own[] = {
        {"reexpand", EX_ARG_U64, &every, "re-linearize at the current theta every K steps"}};
    ex_train_flags_parse(&f, argc, argv, own, 1,
                         "Trains the linearized MLP on Fashion-MNIST, re-linearizing every K "
                         "steps.");
    if (every == 0) ex_die("--reexpand must be > 0 (linearized_training never re-expands)");
    ex_data data;
    ex_train_load_data(&f, &data);

    tn_ctx *ctx = NULL;
    EX_CHECK(NULL, tn_ctx_create(&ctx));
    EX_CHECK(ctx, tn_ctx_set_threads(ctx, f.threads));

    tn_net *net = NULL;
    tn_trainer *tr = NULL;
    if (f.resume) {
        /* --resume FILE: the network and the trainer as the last checkpoint
         * of an interrupted run left them -- the model, its base theta0,
         * the optimizer's state and the step count. */
        EX_CHECK(ctx, tn_trainer_load(ctx, f.resume, &net, &tr));
    } else {
        EX_CHECK(ctx, tn_net_create(ctx, &data.train.d, 1, &net));
        for (size_t l = 0; l < f.depth; l++) {
            EX_CHECK(ctx, tn_net_add_dense(net, f.width));
            EX_CHECK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        }
        EX_CHECK(ctx, tn_net_add_dense(net, data.train.classes));
        EX_CHECK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, f.param));
        EX_CHECK(ctx, tn_net_init(net, f.seed));

        EX_CHECK(ctx, tn_trainer_create(net, &tr));
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, f.loss));
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, f.optimizer));
        /* The linearized model around the initialization, as in
         * linearized_training; then after every `every`-th step the trainer
         * moves theta0 to the current theta: f_1 starts again from the network
         * as it is now. */
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 1));
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, (double)every));
    }
    double period;
    EX_CHECK(ctx, tn_trainer_get(tr, TN_TRAIN_REEXPAND_EVERY, &period));
    if (period != (double)every) ex_die("--resume: %s re-expands every %g steps", f.resume, period);
    ex_print_setup(&f, net, "linearized network (order 1), re-linearized every %" PRIu64 " steps",
                   every);

    ex_batcher batches;
    ex_batcher_init(&batches, &data.train, f.batch, ex_shuffle_seed(f.seed));
    double *out = ex_xmalloc(EX_EVAL_CHUNK, data.test.classes * sizeof(double));
    double accuracy = 0.0;
    /* A resumed run skips the batches it has already taken. */
    const uint64_t done = tn_trainer_num_steps(tr);
    ex_batcher_skip(&batches, done);
    const size_t first = (size_t)(done / ex_batcher_steps_per_epoch(&batches));
    if (first >= f.epochs) ex_die("--resume: %s has done all %zu epochs", f.resume, f.epochs);
    const double start = ex_now();
    for (size_t epoch = first; epoch < f.epochs; epoch++) {
        const double lr = ex_train_lr(&f, epoch);
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, lr));
        double loss_sum = 0.0;
        size_t rows;
        while ((rows = ex_batcher_next(&batches)) > 0) {
            double loss;
            EX_CHECK(ctx, tn_trainer_step(tr, batches.x, batches.y, rows, &loss));
            loss_sum += loss * (double)rows;
        }
        size_t correct = 0;
        for (size_t i = 0; i < data.test.n; i += rows) {
            rows = data.test.n - i < EX_EVAL_CHUNK ? data.test.n - i : EX_EVAL_CHUNK;
            EX_CHECK(ctx, tn_trainer_predict(tr, data.test.x + i * data.test.d, rows, out));
            correct += ex_count_correct(out, rows, data.test.classes, data.test.labels + i);
        }
        accuracy = (double)correct / (double)data.test.n;
        /* --checkpoint FILE: what a killed run needs to go on from here. */
        if (f.checkpoint) EX_CHECK(ctx, tn_trainer_save(tr, f.checkpoint));
        ex_print_epoch(epoch, lr, loss_sum / (double)data.train.n, accuracy, ex_now() - start);
    }
    ex_print_final(accuracy, f.epochs, ex_now() - start);
    const uint64_t steps = tn_trainer_num_steps(tr);
    printf("re-linearized %" PRIu64 " times in %" PRIu64 " steps\n", steps / every, steps);

    free(out);
    ex_batcher_free(&batches);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
