/* c_reference.c -- reference numbers computed through the C API, for the
 * Python binding's bit-for-bit test (tests/test_reference.py).
 *
 * One fixed scenario: a 30-50-40-3 ReLU network (NTK parameterization, leaky
 * slope 0.1, seed 42, as tests/test_init.c), a batch built from exact
 * rationals, then forward, NTKs, a predictor, a GP, Adam training and a
 * Taylor expansion.  Every result is printed as a section
 *     <name> <count>
 * followed by <count> lines of C99 hexadecimal floats (%a), which Python's
 * float.fromhex reads back exactly.  The binding repeats the scenario and
 * must produce the same bits. */
#include <taylornet.h>

#include <stdio.h>
#include <stdlib.h>

enum { N = 8, D = 30, O = 3, ORDER = 3, STEPS = 10 };

static tn_ctx *ctx;

static void check(tn_status st, const char *what)
{
    if (st == TN_OK) return;
    fprintf(stderr, "c_reference: %s: %s (%s)\n", what, tn_ctx_errmsg(ctx), tn_status_string(st));
    exit(EXIT_FAILURE);
}

static void section(const char *name, const double *v, size_t count)
{
    printf("%s %zu\n", name, count);
    for (size_t i = 0; i < count; i++) printf("%a\n", v[i]);
}

static double *alloc(size_t count)
{
    double *p = malloc(count * sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "c_reference: out of memory\n");
        exit(EXIT_FAILURE);
    }
    return p;
}

int main(void)
{
    if (tn_ctx_create(&ctx) != TN_OK) return EXIT_FAILURE;

    /* The batch: exact binary fractions, the same in every language. */
    double x[N * D], y[N * O];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) x[i * D + j] = ((i * 7 + j * 3) % 11) / 8.0 - 0.5;
        for (int c = 0; c < O; c++) y[i * O + c] = ((i + 2 * c) % 5) / 4.0 - 0.5;
    }

    const size_t input_shape[] = {D};
    tn_net *net;
    check(tn_net_create(ctx, input_shape, 1, &net), "tn_net_create");
    const size_t widths[] = {50, 40, O};
    for (int l = 0; l < 3; l++) {
        if (l) check(tn_net_add_activation(net, TN_ACT_RELU), "tn_net_add_activation");
        check(tn_net_add_dense(net, widths[l]), "tn_net_add_dense");
    }
    check(tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_NTK), "tn_net_set");
    check(tn_net_set(net, TN_NET_LEAKY_SLOPE, 0.1), "tn_net_set");
    check(tn_net_init(net, 42), "tn_net_init");
    const size_t P = tn_net_num_params(net);

    double *theta = alloc(P), f0[N * O];
    check(tn_net_get_params(net, theta, P), "tn_net_get_params");
    section("params_init", theta, P);
    check(tn_net_forward(net, x, N, f0), "tn_net_forward");
    section("forward", f0, N * O);

    /* Kernels: empirical (traced, x2 = x1; full, x1 vs the first 3 rows)
     * and infinite-width. */
    tn_ntk *k;
    check(tn_ntk_create(net, &k), "tn_ntk_create");
    double ntk[N * N], full[N * O * 3 * O], nngp_inf[N * N], ntk_inf[N * N];
    check(tn_ntk_compute(k, x, N, NULL, 0, ntk), "tn_ntk_compute");
    section("ntk_trace", ntk, N * N);
    check(tn_ntk_set(k, TN_NTK_OUTPUTS, TN_NTK_FULL), "tn_ntk_set");
    check(tn_ntk_compute(k, x, N, x, 3, full), "tn_ntk_compute (full)");
    section("ntk_full", full, N * O * 3 * O);
    check(tn_ntk_analytic(k, x, N, NULL, 0, nngp_inf, ntk_inf), "tn_ntk_analytic");
    section("nngp_analytic", nngp_inf, N * N);
    section("ntk_analytic", ntk_inf, N * N);

    /* Closed-form linearized dynamics on the empirical kernel, 10 steps of
     * learning rate 0.5; the test set is the first 3 training examples. */
    tn_predictor *pred;
    check(tn_predictor_create(ctx, ntk, N, O, 0, y, &pred), "tn_predictor_create");
    check(tn_predictor_set(pred, TN_PRED_LEARNING_RATE, 0.5), "tn_predictor_set");
    double f_train[N * O], f_test[3 * O];
    check(tn_predictor_predict(pred, 10.0, f0, f_train, ntk, f0, 3, f_test),
          "tn_predictor_predict");
    section("predictor_train", f_train, N * O);
    section("predictor_test", f_test, 3 * O);

    /* NNGP posterior on the infinite-width kernels, test = first 3 rows. */
    tn_gp *gp;
    check(tn_gp_create(ctx, nngp_inf, ntk_inf, N, O, y, &gp), "tn_gp_create");
    check(tn_gp_set(gp, TN_GP_DIAG_REG, 1e-6), "tn_gp_set");
    double tt[3 * 3], mean[3 * O], cov[3 * 3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) tt[i * 3 + j] = nngp_inf[i * N + j];
    check(tn_gp_nngp_posterior(gp, nngp_inf, tt, 3, mean, cov), "tn_gp_nngp_posterior");
    section("gp_nngp_mean", mean, 3 * O);
    section("gp_nngp_cov", cov, 3 * 3);

    /* Adam, 10 steps, with the Taylor expansion taken at initialization. */
    tn_taylor *taylor;
    check(tn_taylor_create(net, ORDER, &taylor), "tn_taylor_create");
    tn_trainer *tr;
    check(tn_trainer_create(net, &tr), "tn_trainer_create");
    check(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM), "tn_trainer_set");
    check(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-2), "tn_trainer_set");
    double losses[STEPS], pred_y[N * O];
    for (int s = 0; s < STEPS; s++) check(tn_trainer_step(tr, x, y, N, &losses[s]), "tn_trainer_step");
    section("losses", losses, STEPS);
    check(tn_trainer_predict(tr, x, N, pred_y), "tn_trainer_predict");
    section("trained_forward", pred_y, N * O);
    check(tn_net_get_params(net, theta, P), "tn_net_get_params");
    section("params_trained", theta, P);

    double terms[(ORDER + 1) * N * O], norms[ORDER + 1], ratio;
    check(tn_taylor_terms(taylor, NULL, x, N, terms), "tn_taylor_terms");
    section("taylor_terms", terms, (ORDER + 1) * N * O);
    check(tn_taylor_term_norms(taylor, norms, ORDER + 1), "tn_taylor_term_norms");
    section("taylor_norms", norms, ORDER + 1);
    check(tn_taylor_divergence(taylor, &ratio), "tn_taylor_divergence");
    section("taylor_divergence", &ratio, 1);

    free(theta);
    tn_trainer_free(tr);
    tn_taylor_free(taylor);
    tn_gp_free(gp);
    tn_predictor_free(pred);
    tn_ntk_free(k);
    tn_net_free(net);
    tn_ctx_free(ctx);
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
