/*
 * taylorized_training.c -- trains the order-k Taylor model of an MLP around
 * its initialization (trainer order k, Bai et al. 2020):
 *   f_k(theta; x) = sum_{j=0..k} (1/j!) D^j f(theta0; x)[(theta - theta0)^j],
 * with the same data, loss, optimizer and per-epoch report as full_training.
 * Then it rebuilds the expansion (tn_taylor) around the same theta0 and
 * evaluates its terms on test images at the trained theta: their norms, the
 * divergence indicator |z_k| / |z_{k-1}|, how far f_k is from the network f.
 *
 *   ./build/examples/taylorized_training [--order K] [--train N] ... (--help)
 */
#include "support/training.h"

#include <stdlib.h>

/* The expansion tay (around theta0) on the first n test images at the
 * trained theta: its terms z_0..z_k, their norms, the divergence indicator,
 * and f_k = sum z_j beside the trainer's prediction and the network f. */
static void report_expansion(tn_ctx *ctx, tn_taylor *tay, tn_net *net, tn_trainer *tr, int k,
                             const ex_dataset *test, size_t n)
{
    const size_t nO = n * test->classes, terms = (size_t)k + 1;
    double *z = ex_xmalloc((terms + 3) * nO + terms, sizeof(double)), ratio;
    double *fk = z + terms * nO, *pred = fk + nO, *f = pred + nO, *norms = f + nO;
    /* theta NULL: the network's parameters now, which the trainer updated. */
    EX_CHECK(ctx, tn_taylor_terms(tay, NULL, test->x, n, z));
    EX_CHECK(ctx, tn_taylor_term_norms(tay, norms, terms));
    EX_CHECK(ctx, tn_taylor_divergence(tay, &ratio));
    EX_CHECK(ctx, tn_trainer_predict(tr, test->x, n, pred));
    EX_CHECK(ctx, tn_net_forward(net, test->x, n, f));
    /* f_k: highest order first, as the library sums (small terms first). */
    for (size_t e = 0; e < nO; e++) {
        fk[e] = 0.0;
        for (int j = k; j >= 0; j--) fk[e] += z[(size_t)j * nO + e];
    }
    ex_print_expansion(k, norms, ratio, fk, pred, f, test, n);
    free(z);
}

int main(int argc, char **argv)
{
    ex_train_flags f;
    ex_train_flags_default(&f);
    /* An order-k step costs about (5k + 2) / 3 full steps (4 at k = 2), so
     * the default run is cut to a few minutes on two cores. */
    f.n_train = 20000;
    f.epochs = 5;
    int k = 2;
    size_t n_report = 1000;
    const ex_arg own[] = {
        {"order", EX_ARG_INT, &k, "Taylor order k"},
        {"div-images", EX_ARG_SIZE, &n_report, "test images of the final expansion report"}};
    ex_train_flags_parse(&f, argc, argv, own, 2,
                         "Trains the order-k Taylor model of an MLP around its initialization "
                         "on Fashion-MNIST.");
    if (k < 1 || k > tn_taylor_max_order())
        ex_die("--order must be in [1, %d]", tn_taylor_max_order());
    if (n_report == 0) ex_die("--div-images must be > 0");
    ex_data data;
    ex_train_load_data(&f, &data);
    if (n_report > data.test.n) n_report = data.test.n;

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
        /* Order k: the trainer trains f_k around the parameters now, the
         * initialization theta0. */
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, k));
    }
    double order;
    EX_CHECK(ctx, tn_trainer_get(tr, TN_TRAIN_ORDER, &order));
    if (order != k) ex_die("--resume: %s trains the order-%g model", f.resume, order);
    /* The expansion the report at the end evaluates at the trained theta:
     * around the trainer's theta0, the initialization (which a resumed
     * network's parameters are not). */
    tn_taylor *tay = NULL;
    const size_t P = tn_net_num_params(net);
    double *theta0 = ex_xmalloc(P, sizeof(double));
    EX_CHECK(ctx, tn_taylor_create(net, k, &tay));
    EX_CHECK(ctx, tn_trainer_get_base(tr, theta0, P));
    EX_CHECK(ctx, tn_taylor_rebase(tay, theta0, P));
    free(theta0);
    ex_print_setup(&f, net, "order-%d Taylor model around the initialization", k);

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
    report_expansion(ctx, tay, net, tr, k, &data.test, n_report);

    free(out);
    ex_batcher_free(&batches);
    tn_taylor_free(tay);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
