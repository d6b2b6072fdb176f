/* test_diagnostics.c -- the neural Taylor diagnostics (MATH.md §7) against
 * hand computations: the predicted and reached losses from the network's
 * forward, JVP and the loss formula; the ReLU pattern changes from the
 * signs of pre-activations computed here from the parameters. */
#include "testutil.h"

TU_CONTEXT_PER_TEST
static const size_t D = 3, N = 6;

static double mse(const double *f, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += 0.5 * (f[i] - y[i]) * (f[i] - y[i]);
    return s / N;
}

/* _i: 0 full training; 1 order 2 with alpha = 3 and centering (the
 * diagnostics are about the network f all the same). */
START_TEST(losses_match_hand_computation)
{
    const size_t w[] = {5, 2}, O = 2;
    tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, 3);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 1, 1.0), *y = tu_random(N * O, 2, 1.0);
    double *t0 = malloc(P * sizeof(double)), *t1 = malloc(P * sizeof(double)),
           *dt = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, t0, P));
    const double alpha = _i ? 3.0 : 1.0;
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.3));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    if (_i) {
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 2));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, alpha));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, 1));
    }
    double v;
    ck_assert_int_eq(tn_trainer_stat(tr, TN_STAT_LOSS, &v), TN_E_STATE);
    /* A step, then a second one from somewhere else than theta0. */
    double f0[12], f[12], jv[12], lin[12], after[12], loss;
    TN_CK(ctx, tn_net_forward(net, x, N, f0));
    for (int s = 0; s < 2; s++) {
        TN_CK(ctx, tn_net_get_params(net, t0, P));
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, &loss));
        TN_CK(ctx, tn_net_get_params(net, t1, P));
        for (size_t i = 0; i < P; i++) dt[i] = t1[i] - t0[i];
        TN_CK(ctx, tn_net_set_params(net, t0, P));
        TN_CK(ctx, tn_net_forward(net, x, N, f));
        TN_CK(ctx, tn_net_jvp(net, x, N, dt, jv));
        TN_CK(ctx, tn_net_set_params(net, t1, P));
        TN_CK(ctx, tn_net_forward(net, x, N, after));
        for (size_t i = 0; i < N * O; i++) {
            const double base = _i ? f0[i] : 0.0;
            lin[i] = alpha * (f[i] + jv[i] - base);
            after[i] = alpha * (after[i] - base);
        }
        const double pred = mse(lin, y, N * O) / (alpha * alpha),
                     reached = mse(after, y, N * O) / (alpha * alpha);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_TAYLOR_PREDICTED, &v));
        ck_assert_double_eq_tol(v, pred, 1e-13 * pred);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS_REACHED, &v));
        ck_assert_double_eq_tol(v, reached, 1e-13 * reached);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS, &v));
        ck_assert_double_eq(v, loss);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_GRAD_NORM, &v));
        ck_assert_double_gt(v, 0);
    }
    /* No probe yet: the pattern statistics were not computed. */
    ck_assert_int_eq(tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_INIT, &v), TN_E_STATE);
    ck_assert_int_eq(tn_trainer_stat(tr, (tn_train_stat)8, &v), TN_E_INVALID_ARG);
    tn_trainer_free(tr);
    tn_net_free(net);
    free(x), free(y), free(t0), free(t1), free(dt);
}
END_TEST

/* The prediction is first order: its error falls like the square of the
 * step, so halving the learning rate divides it by ~4 (within 20%). */
START_TEST(prediction_error_is_second_order)
{
    const size_t w[] = {8, 2}, O = 2;
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0), gap[2];
    for (int h = 0; h < 2; h++) {
        tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_SOFTPLUS, TN_PARAM_NTK, 5);
        tn_trainer *tr;
        TN_CK(ctx, tn_trainer_create(net, &tr));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, h ? 0.05 : 0.1));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        double p, r;
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_TAYLOR_PREDICTED, &p));
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS_REACHED, &r));
        gap[h] = fabs(r - p);
        tn_trainer_free(tr);
        tn_net_free(net);
    }
    ck_assert_msg(fabs(gap[0] / gap[1] - 4) < 0.8, "gap ratio %.3f", gap[0] / gap[1]);
    free(x), free(y);
}
END_TEST

/* Pattern: 2 -> dense 3 -> ReLU -> dense 1, standard parameterization; the
 * on/off states of the 3 hidden units on 4 probe rows are the signs of
 * W1 x + b1, computed here from the parameters before and after steps. */
static void pattern(const double *theta, const double *probe, unsigned char *bits)
{
    for (size_t i = 0; i < 4; i++)
        for (size_t u = 0; u < 3; u++) {
            const double z = theta[u * 2] * probe[i * 2] + theta[u * 2 + 1] * probe[i * 2 + 1] + theta[6 + u];
            bits[i * 3 + u] = z > 0;
        }
}

static double frac(const unsigned char *a, const unsigned char *b)
{
    int c = 0;
    for (int i = 0; i < 12; i++) c += a[i] != b[i];
    return c / 12.0;
}

START_TEST(pattern_changes_match_signs)
{
    const size_t d = 2;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 3));
    TN_CK(ctx, tn_net_add_activation(net, _i ? TN_ACT_LEAKY_RELU : TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_init(net, 9));
    /* Pre-activations near zero so that a step flips some of them. */
    const double theta[] = {1, -1, 0.5, 0.5, -1, 0.2, 0.01, -0.02, 0.03, 1, -1, 1, 0};
    TN_CK(ctx, tn_net_set_params(net, theta, 13));
    const double probe[] = {0.1, 0.1, -0.2, 0.3, 0.05, -0.05, 0.3, 0.25};
    const double x[] = {1, 0, 0, 1, -1, -1}, y[] = {3, -2, 1};
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.2));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    TN_CK(ctx, tn_trainer_set_probe(tr, probe, 4));
    unsigned char init[12], prev[12], cur[12];
    pattern(theta, probe, init);
    memcpy(prev, init, sizeof init);
    double t[13], v;
    int moved = 0;
    for (int s = 0; s < 5; s++) {
        TN_CK(ctx, tn_trainer_step(tr, x, y, 3, NULL));
        TN_CK(ctx, tn_net_get_params(net, t, 13));
        pattern(t, probe, cur);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_STEP, &v));
        ck_assert_double_eq(v, frac(cur, prev));
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_INIT, &v));
        ck_assert_double_eq(v, frac(cur, init));
        moved |= v > 0;
        memcpy(prev, cur, sizeof cur);
    }
    ck_assert_msg(moved, "the test should flip some units");
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* Exploration on 2 -> dense 3 -> ReLU -> dense 2 -> ReLU -> dense 1
 * (standard parameterization): an example's configuration is its 5 hidden
 * units' states, computed here from the parameters; the distinct (example,
 * configuration) pairs and the units that ever switched are counted here
 * by direct loops.  Setting the probe again starts both over. */
static void pattern2(const double *th, const double *probe, size_t n, unsigned char *bits)
{
    /* theta: W1 (3x2), b1 (3), W2 (2x3), b2 (2), W3 (1x2), b3 */
    for (size_t i = 0; i < n; i++) {
        double a[3];
        for (size_t u = 0; u < 3; u++) {
            const double z = th[u * 2] * probe[i * 2] + th[u * 2 + 1] * probe[i * 2 + 1] + th[6 + u];
            a[u] = z > 0 ? z : 0;
            bits[i * 3 + u] = z > 0;                    /* node 1: n x 3 */
        }
        for (size_t u = 0; u < 2; u++) {
            double z = th[15 + u];
            for (size_t k = 0; k < 3; k++) z += th[9 + u * 3 + k] * a[k];
            bits[3 * n + i * 2 + u] = z > 0;            /* node 2: n x 2 */
        }
    }
}

START_TEST(exploration_counts_configurations_and_switches)
{
    enum { NP = 5, U = 5 * NP, MAXP = NP * 40 };
    const size_t d = 2;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 3));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_init(net, 9));
    /* Pre-activations near zero so that steps flip some of them. */
    const double theta[20] = {1, -1, 0.5, 0.5, -1, 0.2, 0.01, -0.02, 0.03,
                              0.5, -0.4, 0.3, -0.2, 0.6, 0.1, 0.02, -0.01, 1, -1, 0};
    TN_CK(ctx, tn_net_set_params(net, theta, 20));
    const double probe[2 * NP] = {0.1, 0.1, -0.2, 0.3, 0.05, -0.05, 0.3, 0.25, -0.1, -0.3};
    const double x[] = {1, 0, 0, 1, -1, -1, 0.5, -0.5}, y[] = {3, -2, 1, -1};
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.1));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    unsigned char prev[U], cur[U], ever[U], seen[MAXP][5];
    size_t seen_ex[MAXP], nseen = 0;
    double t[20], v;
    for (int round = 0; round < 2; round++) {
        /* (Re)setting the probe: the configurations now are the first seen. */
        TN_CK(ctx, tn_net_get_params(net, t, 20));
        TN_CK(ctx, tn_trainer_set_probe(tr, probe, NP));
        pattern2(t, probe, NP, prev);
        memset(ever, 0, sizeof ever);
        nseen = 0;
        for (int s = 0; s < 12; s++) {
            unsigned char *bits = s == 0 ? prev : cur;
            if (s > 0) {
                TN_CK(ctx, tn_trainer_step(tr, x, y, 4, NULL));
                TN_CK(ctx, tn_net_get_params(net, t, 20));
                pattern2(t, probe, NP, cur);
                for (size_t u = 0; u < U; u++) ever[u] |= cur[u] != prev[u];
            }
            for (size_t i = 0; i < NP; i++) {
                unsigned char cfg[5] = {bits[i * 3], bits[i * 3 + 1], bits[i * 3 + 2],
                                        bits[3 * NP + i * 2], bits[3 * NP + i * 2 + 1]};
                int found = 0;
                for (size_t k = 0; k < nseen && !found; k++)
                    found = seen_ex[k] == i && memcmp(seen[k], cfg, 5) == 0;
                if (!found) {
                    ck_assert_uint_lt(nseen, MAXP);
                    seen_ex[nseen] = i;
                    memcpy(seen[nseen++], cfg, 5);
                }
            }
            if (s == 0) continue;
            size_t nev = 0;
            for (size_t u = 0; u < U; u++) nev += ever[u];
            TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &v));
            ck_assert_double_eq(v, (double)nseen);
            TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &v));
            ck_assert_double_eq(v, (double)nev / U);
            memcpy(prev, cur, sizeof cur);
        }
        /* The run explored: more pairs than examples, and units switched,
         * some of them back (ever switched > differing from the start). */
        ck_assert_uint_gt(nseen, NP + 2);
        double init;
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &v));
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_INIT, &init));
        ck_assert_double_gt(v, init);
    }
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

START_TEST(bad_input)
{
    const size_t w[] = {4, 1};
    tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_RELU, TN_PARAM_NTK, 1);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    double x[3] = {0}, v;
    ck_assert_int_eq(tn_trainer_set_probe(tr, NULL, 1), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_set_probe(tr, x, 0), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_set_probe(NULL, x, 1), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 2), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_stat(tr, TN_STAT_LOSS, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_stat(NULL, TN_STAT_LOSS, &v), TN_E_INVALID_ARG);
    /* Diagnostics off: only the always-on statistics exist after a step. */
    const double y[] = {1};
    TN_CK(ctx, tn_trainer_step(tr, x, y, 1, NULL));
    TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS, &v));
    ck_assert_int_eq(tn_trainer_stat(tr, TN_STAT_TAYLOR_PREDICTED, &v), TN_E_STATE);
    ck_assert_int_eq(tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &v), TN_E_STATE);
    ck_assert_int_eq(tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &v), TN_E_STATE);
    ck_assert_int_eq(tn_trainer_stat(tr, (tn_train_stat)8, &v), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_stat(tr, (tn_train_stat)-1, &v), TN_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_trainer_stat"));
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* A step whose parameters stay finite but whose outputs leave the doubles'
 * range (SGD at 1e200 on MSE: theta_1 ~ 1e200, the outputs' squares
 * overflow): the step is taken, the always-on statistics are there, and the
 * predicted and reached losses are refused with TN_E_NUMERIC and a message,
 * never returned as infinities (a fuzzed program found this). */
START_TEST(overflowing_statistics_are_refused)
{
    const size_t w[] = {4, 1};
    tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, 1);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_SGD));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_MSE));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e200));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    const double x[3] = {1, -2, 0.5}, y[1] = {3};
    TN_CK(ctx, tn_trainer_step(tr, x, y, 1, NULL));
    double v = 7;
    TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS, &v));
    ck_assert(isfinite(v));
    for (int s = TN_STAT_TAYLOR_PREDICTED; s <= TN_STAT_LOSS_REACHED; s++) {
        v = 7;
        ck_assert_int_eq(tn_trainer_stat(tr, (tn_train_stat)s, &v), TN_E_NUMERIC);
        ck_assert_double_eq(v, 7);
        ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "overflowed"));
    }
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("diagnostics");
    TCase *tc = tcase_create("neural Taylor approximation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, losses_match_hand_computation, 0, 2);
    tcase_add_test(tc, prediction_error_is_second_order);
    tcase_add_loop_test(tc, pattern_changes_match_signs, 0, 2);
    tcase_add_test(tc, exploration_counts_configurations_and_switches);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, overflowing_statistics_are_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
