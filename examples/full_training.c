/*
 * full_training.c -- the baseline every other training mode is compared
 * with: an MLP trained as itself (trainer order 0) on Fashion-MNIST with
 * softmax cross-entropy and Adam.  Prints per epoch the learning rate, the
 * mean training loss, the test accuracy and the elapsed time.
 *
 *   ./build/examples/full_training [--epochs N] [--threads T] ... (--help)
 *
 * The whole recipe is here: a context, a network, a trainer, a loop of
 * tn_trainer_step over shuffled minibatches, tn_trainer_predict on the
 * test set.  support/ holds the flags, the data and the printing, shared
 * with the Taylor-model examples so that their outputs compare line for
 * line.
 */
#include "support/training.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    ex_train_flags f;
    ex_train_flags_default(&f);
    ex_train_flags_parse(&f, argc, argv, NULL, 0,
                         "Trains an MLP (the full network, trainer order 0) on Fashion-MNIST.");
    ex_data data;
    ex_train_load_data(&f, &data);

    /* A context: the thread count the library's BLAS calls use, and the
     * message of the last error of everything created in it. */
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
        /* The network: 784 inputs, `depth` hidden layers of `width` ReLU units,
         * one output per class; its parameters drawn from the seed. */
        EX_CHECK(ctx, tn_net_create(ctx, &data.train.d, 1, &net));
        for (size_t l = 0; l < f.depth; l++) {
            EX_CHECK(ctx, tn_net_add_dense(net, f.width));
            EX_CHECK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        }
        EX_CHECK(ctx, tn_net_add_dense(net, data.train.classes));
        EX_CHECK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, f.param));
        EX_CHECK(ctx, tn_net_init(net, f.seed));

        /* The trainer: loss and optimizer.  Its order is 0 unless set: the
         * network itself is trained. */
        EX_CHECK(ctx, tn_trainer_create(net, &tr));
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, f.loss));
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, f.optimizer));
    }
    ex_print_setup(&f, net, NULL);

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
        /* One pass over the training set; each step reports the loss on its
         * batch before its update. */
        double loss_sum = 0.0;
        size_t rows;
        while ((rows = ex_batcher_next(&batches)) > 0) {
            double loss;
            EX_CHECK(ctx, tn_trainer_step(tr, batches.x, batches.y, rows, &loss));
            loss_sum += loss * (double)rows;
        }
        /* The trained model on the test set, a chunk of rows at a time. */
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

    /* The trainer refers to the network, the network to the context. */
    free(out);
    ex_batcher_free(&batches);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
