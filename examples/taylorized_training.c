/*
 * taylorized_training.c -- trains the order-k Taylor model of an MLP around
 * its initialization (trainer order k, Bai et al. 2020):
 *   f_k(theta; x) = sum_{j=0..k} (1/j!) D^j f(theta0; x)[(theta - theta0)^j],
 * with the same data, loss, optimizer and per-epoch report as full_training.
 * At the end it evaluates the expansion's terms on test images at the
 * trained theta: their norms, the divergence indicator |z_k| / |z_{k-1}|,
 * and how far f_k has moved from the network f itself.
 *
 *   ./build/examples/taylorized_training [--order K] [--train N] ... (--help)
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/* The expansion tn_trainer trained, rebuilt around the same theta0, on the
 * first n test images at the trained theta: its terms, their norms, the
 * divergence indicator, and f_k beside f. */
static void report_expansion(ex_train_session *s, int order, const double *theta0, size_t n)
{
    tn_ctx *ctx = s->ctx;
    const size_t P = tn_net_num_params(s->net), O = s->spec.outputs;
    const double *x = s->data.test.x;
    tn_taylor *tay = NULL;
    EX_CHECK(ctx, tn_taylor_create(s->net, order, &tay));
    /* Created now, the expansion would sit at the trained theta; the model
     * that was trained is the one around the initialization. */
    EX_CHECK(ctx, tn_taylor_rebase(tay, theta0, P));

    double *terms = ex_xmalloc((size_t)(order + 1) * n, O * sizeof(double));
    double *fk = ex_xcalloc(n, O * sizeof(double));
    double *pred = ex_xmalloc(n, O * sizeof(double));
    double *f = ex_xmalloc(n, O * sizeof(double));
    double *norms = ex_xmalloc((size_t)order + 1, sizeof(double));
    double ratio;
    /* theta NULL: the network's parameters now, which the trainer updated. */
    EX_CHECK(ctx, tn_taylor_terms(tay, NULL, x, n, terms));
    EX_CHECK(ctx, tn_taylor_term_norms(tay, norms, (size_t)order + 1));
    EX_CHECK(ctx, tn_taylor_divergence(tay, &ratio));
    /* Highest order first, as the library sums: the small terms are added
     * before the large ones. */
    for (int j = order; j >= 0; j--)
        for (size_t e = 0; e < n * O; e++) fk[e] += terms[(size_t)j * n * O + e];
    EX_CHECK(ctx, tn_trainer_predict(s->tr, x, n, pred));
    EX_CHECK(ctx, tn_net_forward(s->net, x, n, f));

    printf("expansion at the trained theta, on the first %zu test images:\n", n);
    printf("  term norms |z_j| (Frobenius over the images):");
    for (int j = 0; j <= order; j++) printf(" %.3e", norms[j]);
    /* The indicator speaks of the series' convergence.  In a ReLU net the
     * series of the frozen-mask network ends at the depth, so a small
     * ratio there says nothing of the masks that flipped since theta0: the
     * last line measures that gap directly. */
    printf("\n  divergence indicator |z_%d| / |z_%d| = %.4g (near or above 1: the terms do not "
           "shrink, f_k does not converge as k grows)\n",
           order, order - 1, ratio);
    printf("  tn_taylor sum of terms vs tn_trainer_predict: relative difference %.2e\n",
           ex_rel_diff(fk, pred, n * O));
    printf("  f_%d vs the network f at the same theta: relative difference %.4f, "
           "accuracy %.4f vs %.4f\n",
           order, ex_rel_diff(fk, f, n * O),
           (double)ex_count_correct(fk, n, O, s->data.test.labels) / (double)n,
           (double)ex_count_correct(f, n, O, s->data.test.labels) / (double)n);

    free(norms);
    free(f);
    free(pred);
    free(fk);
    free(terms);
    tn_taylor_free(tay);
}

int main(int argc, char **argv)
{
    ex_train_config cfg;
    ex_train_config_default(&cfg);
    /* An order-k step costs about (5k + 2) / 3 full steps (4 at k = 2), so
     * the default run is cut to a few minutes on two cores. */
    cfg.n_train = 20000;
    cfg.epochs = 5;
    int order = 2;
    size_t n_div = 1000;
    ex_arg args[EX_TRAIN_NARGS + 2];
    ex_train_config_args(&cfg, args);
    args[EX_TRAIN_NARGS] = (ex_arg){"order", EX_ARG_INT, &order, "Taylor order k"};
    args[EX_TRAIN_NARGS + 1] =
        (ex_arg){"div-images", EX_ARG_SIZE, &n_div,
                 "test images the final expansion report is computed on"};
    ex_parse_args(argc, argv, args, EX_TRAIN_NARGS + 2,
                  "Trains the order-k Taylor model of an MLP around its initialization on "
                  "Fashion-MNIST.");
    if (order < 1 || order > tn_taylor_max_order())
        ex_die("--order must be in [1, %d]", tn_taylor_max_order());
    if (n_div == 0) ex_die("--div-images must be > 0");

    ex_train_session s;
    ex_train_session_open(&cfg, &s);
    if (n_div > s.data.test.n) n_div = s.data.test.n;
    /* Setting the order makes the network's parameters now (the
     * initialization) the base theta0; the trainer does not hand it back,
     * so keep a copy for the report. */
    const size_t P = tn_net_num_params(s.net);
    double *theta0 = ex_xmalloc(P, sizeof(double));
    EX_CHECK(s.ctx, tn_net_get_params(s.net, theta0, P));
    EX_CHECK(s.ctx, tn_trainer_set(s.tr, TN_TRAIN_ORDER, order));

    char model[96];
    snprintf(model, sizeof model, "order-%d Taylor model around the initialization", order);
    ex_train_session_run(&cfg, &s, model);
    report_expansion(&s, order, theta0, n_div);

    free(theta0);
    ex_train_session_close(&s);
    return EXIT_SUCCESS;
}
