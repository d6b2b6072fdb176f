/* test_regret_alloc.c -- every allocation of the Taylor record, the regret
 * solvers and the exploration statistics fails in turn (the harness is
 * allocfail.h): each failure is TN_E_NOMEM with a message of its own and
 * changes nothing the caller sees -- parameters, step count, the record,
 * the last solve's results, the statistics, output buffers -- and the
 * objects go on to give the bits of objects that never saw a failure. */
#include "allocfail.h"

#define MAX_K 10000L

static const size_t D = 3, N = 5, O = 2;

/* A ReLU MLP and a trainer of it: loss, probe and recording as asked. */
static tn_trainer *make(tn_net **net, int loss, int record, int probe)
{
    const size_t w[] = {6, O};
    *net = tu_mlp(ctx, D, w, 2, TN_ACT_RELU, TN_PARAM_NTK, 4);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(*net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, loss));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.1));
    if (record) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    if (probe) {
        double *p = tu_random(4 * D, 9, 1.0);
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
        TN_CK(ctx, tn_trainer_set_probe(tr, p, 4));
        free(p);
    }
    return tr;
}

static void batch(uint64_t t, double *x, double *y)
{
    double *a = tu_random(N * D, 50 + t, 1.0);
    memcpy(x, a, N * D * sizeof(double));
    free(a);
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < O; c++) y[i * O + c] = (i + t) % O == c;
}

static int same_params(const tn_net *net, const double *theta)
{
    double *t = tu_params(ctx, net);
    const int same = memcmp(t, theta, tn_net_num_params(net) * sizeof(double)) == 0;
    free(t);
    return same;
}

static double info(tn_trainer *tr, tn_regret_info what)
{
    double v = -1;
    TN_CK(ctx, tn_trainer_regret_info(tr, what, &v));
    return v;
}

START_TEST(enabling_the_record)
{
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net;
        tn_trainer *tr = make(&net, TN_LOSS_MSE, 0, 0);
        const tn_status st = INJECT(k, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
        DISARM();
        double v;
        TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_RECORD_TAYLOR, &v));
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_trainer_set (TN_TRAIN_RECORD_TAYLOR)", k);
            ck_assert_double_eq(v, 0);
        } else {
            ck_assert_double_eq(v, 1);
        }
        tn_trainer_free(tr);
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_set (TN_TRAIN_RECORD_TAYLOR)");
}
END_TEST

/* A step that records (order 0 and order 2, whose b_t takes a forward of
 * its own), with the exploration statistics on: the third step, on a new
 * batch, after two on one batch. */
START_TEST(recording_step)
{
    long k;
    const int order = _i;
    double x[3][N * D], y[3][N * O];
    for (uint64_t t = 0; t < 3; t++) batch(t == 1 ? 0 : t, x[t], y[t]);
    for (k = 1; k < MAX_K; k++) {
        tn_net *net;
        tn_trainer *tr = make(&net, TN_LOSS_MSE, 1, 1);
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, order));
        TN_CK(ctx, tn_trainer_step(tr, x[0], y[0], N, NULL));
        TN_CK(ctx, tn_trainer_step(tr, x[1], y[1], N, NULL));
        double *theta = tu_params(ctx, net), cfg, bytes = info(tr, TN_REGRET_BYTES);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &cfg));
        double loss = -3;
        const tn_status st = INJECT(k, tn_trainer_step(tr, x[2], y[2], N, &loss));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_trainer_step (recording)", k);
            ck_assert(same_params(net, theta));
            ck_assert_double_eq(loss, -3);
            ck_assert_uint_eq(tn_trainer_num_steps(tr), 2);
            ck_assert_double_eq(info(tr, TN_REGRET_STEPS), 2);
            ck_assert_double_eq(info(tr, TN_REGRET_BYTES), bytes);
            double v;
            TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &v));
            ck_assert_double_eq(v, cfg);
            /* ... and the step still works. */
            TN_CK(ctx, tn_trainer_step(tr, x[2], y[2], N, NULL));
        }
        ck_assert_double_eq(info(tr, TN_REGRET_STEPS), 3);
        free(theta);
        tn_trainer_free(tr);
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_step (recording)");
}
END_TEST

/* tn_trainer_regret with each solver (_i: DIRECT, LSQR, NEWTON_CG on MSE;
 * NEWTON_CG on cross-entropy), after a first solve: a failure keeps that
 * solve's results and writes no output; the success gives the bits of a
 * solve that never failed. */
START_TEST(regret_solve)
{
    long k;
    const int solver = _i < 3 ? TN_REGRET_DIRECT + _i : TN_REGRET_NEWTON_CG;
    const int loss = _i < 3 ? TN_LOSS_MSE : TN_LOSS_SOFTMAX_XENT;
    double x[N * D], y[N * O], ref_R = 0, ref_F = 0;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net;
        tn_trainer *tr = make(&net, loss, 1, 0);
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, solver));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_TOLERANCE, 1e-10));
        for (uint64_t t = 0; t < 3; t++) {
            batch(t, x, y);
            TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        }
        double R0, F0;
        TN_CK(ctx, tn_trainer_regret(tr, &R0, &F0));
        for (uint64_t t = 3; t < 5; t++) {
            batch(t, x, y);
            TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        }
        double R = -9, F = -9;
        const tn_status st = INJECT(k, tn_trainer_regret(tr, &R, &F));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_trainer_regret", k);
            ck_assert(R == -9 && F == -9);
            ck_assert_double_eq(info(tr, TN_REGRET_SOLVED_STEPS), 3);
            ck_assert_double_eq(info(tr, TN_REGRET_VALUE), R0);
            ck_assert_double_eq(info(tr, TN_REGRET_OPTIMUM), F0);
            TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
        }
        if (k == 1) {
            ref_R = R;
            ref_F = F;
        }
        ck_assert_double_eq(R, ref_R);
        ck_assert_double_eq(F, ref_F);
        ck_assert_double_eq(info(tr, TN_REGRET_SOLVED_STEPS), 5);
        tn_trainer_free(tr);
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_regret");
}
END_TEST

/* Setting the probe again (the exploration's tables are new). */
START_TEST(setting_the_probe)
{
    long k;
    double x[N * D], y[N * O], *p = tu_random(3 * D, 21, 1.0);
    batch(0, x, y);
    for (k = 1; k < MAX_K; k++) {
        tn_net *net;
        tn_trainer *tr = make(&net, TN_LOSS_MSE, 0, 1);
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        double cfg, ever, v;
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &cfg));
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &ever));
        const tn_status st = INJECT(k, tn_trainer_set_probe(tr, p, 3));
        DISARM();
        if (st != TN_OK) EXPECT_NOMEM(st, "tn_trainer_set_probe", k);
        /* The last step's statistics stay either way. */
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &v));
        ck_assert_double_eq(v, cfg);
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &v));
        ck_assert_double_eq(v, ever);
        /* The next step counts from the probe in force: 4 or 3 examples. */
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &v));
        ck_assert_double_ge(v, st == TN_OK ? 3 : cfg);
        tn_trainer_free(tr);
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_set_probe");
    free(p);
}
END_TEST

/* Saving and loading a checkpoint that holds a Taylor record (with a last
 * solve) and the exploration: a failed save leaves the file as it was, a
 * failed load returns no handles; the load that succeeds reports the saved
 * regret. */
START_TEST(checkpoint_with_a_record)
{
    char *dir = tu_make_dir("test_regret_alloc"), *path = tu_join(dir, "ck.tnck");
    double x[N * D], y[N * O], R, F;
    tn_net *net;
    tn_trainer *tr = make(&net, TN_LOSS_SOFTMAX_XENT, 1, 1);
    for (uint64_t t = 0; t < 4; t++) {
        batch(t / 2, x, y);
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    }
    TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
    TN_CK(ctx, tn_trainer_save(tr, path));
    size_t len0;
    unsigned char *saved = tu_slurp(path, &len0);
    long k;
    for (k = 1; k < MAX_K; k++) {
        const tn_status st = INJECT(k, tn_trainer_save(tr, path));
        DISARM();
        if (st != TN_OK) EXPECT_NOMEM(st, "tn_trainer_save", k);
        size_t len;
        unsigned char *now = tu_slurp(path, &len);
        ck_assert(len == len0 && memcmp(now, saved, len) == 0);
        free(now);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_save");
    for (k = 1; k < MAX_K; k++) {
        tn_net *n2 = (tn_net *)1;
        tn_trainer *t2 = (tn_trainer *)1;
        const tn_status st = INJECT(k, tn_trainer_load(ctx, path, &n2, &t2));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_trainer_load", k);
            ck_assert_ptr_null(n2);
            ck_assert_ptr_null(t2);
            continue;
        }
        ck_assert_double_eq(info(t2, TN_REGRET_VALUE), R);
        ck_assert_double_eq(info(t2, TN_REGRET_STEPS), 4);
        tn_trainer_free(t2);
        tn_net_free(n2);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_load");
    unlink(path);
    rmdir(dir);
    free(saved), free(path), free(dir);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("regret_alloc");
    TCase *tc = tcase_create("allocation failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, enabling_the_record);
    tcase_add_loop_test(tc, recording_step, 0, 3);
    tcase_add_loop_test(tc, regret_solve, 0, 4);
    tcase_add_test(tc, setting_the_probe);
    tcase_add_test(tc, checkpoint_with_a_record);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
