/* test_predict_alloc.c -- every allocation of the predictor and GP calls
 * fails in turn (tni_ctx_fail_alloc_after, as in test_alloc.c).
 *
 * For k = 1, 2, ... the k-th allocation of the call is made to fail until
 * the call succeeds without reaching it.  A failure must be TN_E_NOMEM with
 * a new message, *out NULL, output buffers untouched; afterwards the handle
 * must give bit-identical results to one that never saw a failure.  The
 * lazily redone eigendecomposition (after TN_PRED_DIAG_REG changes) and
 * the lazily made Cholesky factor (t = INFINITY) are covered by making the
 * failing call the one that triggers them.  Leaks on these paths are what
 * the valgrind and ASan runs catch.  The harness (INJECT, EXPECT_NOMEM,
 * ...) is allocfail.h. */
#include "allocfail.h"

#define MAX_K 1000L

enum { N = 5, NT = 3, O = 2 };

/* A positive definite kernel with test blocks (F F^T / 4 + 0.1 I). */
static void kernel(uint64_t seed, double *K, double *Kt, double *Ktt)
{
    double *F = tu_random((N + NT) * 4, seed, 1.0), J[(N + NT) * (N + NT)];
    const size_t M = N + NT;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j <= i; j++)
            J[i * M + j] = J[j * M + i] = tu_dot(F + i * 4, F + j * 4, 4) / 4 + (i == j) * 0.1;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) K[i * N + j] = J[i * M + j];
    for (size_t a = 0; a < NT; a++) {
        for (size_t j = 0; j < N; j++) Kt[a * N + j] = J[(N + a) * M + j];
        for (size_t b = 0; b < NT; b++) Ktt[a * NT + b] = J[(N + a) * M + N + b];
    }
    free(F);
}

static double K[N * N], Kt[NT * N], Ktt[NT * NT], T[N * N], Tt[NT * N], Ttt[NT * NT];
static double Y[N * O], F0[N * O], F0T[NT * O];

static void data(void)
{
    kernel(1, K, Kt, Ktt);
    kernel(2, T, Tt, Ttt);
    uint64_t s = 3;
    for (size_t i = 0; i < N * O; i++) Y[i] = tu_uniform(&s), F0[i] = tu_uniform(&s);
    for (size_t i = 0; i < NT * O; i++) F0T[i] = tu_uniform(&s);
}

/* create; then predict at finite t, at t = INFINITY with test outputs
 * (the Cholesky factor), and after a regularizer change (the
 * eigendecomposition redone), each failing at every allocation. */
START_TEST(predictor_allocations)
{
    data();
    tn_predictor *ref;
    double rtr[3][N * O], rte[3][NT * O], ftr[N * O], fte[NT * O];
    TN_CK(ctx, tn_predictor_create(ctx, K, N, O, 0, Y, &ref));
    TN_CK(ctx, tn_predictor_predict(ref, 7, F0, rtr[0], Kt, F0T, NT, rte[0]));
    TN_CK(ctx, tn_predictor_predict(ref, INFINITY, F0, rtr[1], Kt, F0T, NT, rte[1]));
    TN_CK(ctx, tn_predictor_set(ref, TN_PRED_DIAG_REG, 0.01));
    TN_CK(ctx, tn_predictor_predict(ref, 7, F0, rtr[2], Kt, F0T, NT, rte[2]));

    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_predictor *p = (tn_predictor *)&k;
        const tn_status st = INJECT(k, tn_predictor_create(ctx, K, N, O, 0, Y, &p));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_predictor_create", k);
            ck_assert_ptr_null(p);
            continue;
        }
        TN_CK(ctx, tn_predictor_predict(p, 7, F0, ftr, Kt, F0T, NT, fte));
        ck_assert_mem_eq(ftr, rtr[0], sizeof ftr);
        tn_predictor_free(p);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_predictor_create");

    for (int call = 0; call < 3; call++) {
        for (k = 1; k < MAX_K; k++) {
            tn_predictor *p;
            TN_CK(ctx, tn_predictor_create(ctx, K, N, O, 0, Y, &p));
            if (call == 2) TN_CK(ctx, tn_predictor_set(p, TN_PRED_DIAG_REG, 0.01));
            const double t = call == 1 ? INFINITY : 7;
            memset(ftr, 0xa5, sizeof ftr);
            memset(fte, 0xa5, sizeof fte);
            const tn_status st = INJECT(k, tn_predictor_predict(p, t, F0, ftr, Kt, F0T, NT, fte));
            DISARM();
            if (st != TN_OK) {
                EXPECT_NOMEM(st, "tn_predictor_predict", k);
                for (size_t i = 0; i < sizeof ftr; i++) ck_assert(((unsigned char *)ftr)[i] == 0xa5);
                for (size_t i = 0; i < sizeof fte; i++) ck_assert(((unsigned char *)fte)[i] == 0xa5);
                /* The same call now succeeds, with the same numbers. */
                TN_CK(ctx, tn_predictor_predict(p, t, F0, ftr, Kt, F0T, NT, fte));
            }
            ck_assert_mem_eq(ftr, rtr[call], sizeof ftr);
            ck_assert_mem_eq(fte, rte[call], sizeof fte);
            tn_predictor_free(p);
            if (FINISHED(st)) break;
        }
        CHECK_LOOP(k, "tn_predictor_predict");
    }
    tn_predictor_free(ref);
}
END_TEST

START_TEST(gp_allocations)
{
    data();
    tn_gp *ref;
    double rm[2][NT * O], rc[2][NT * NT], mean[NT * O], cov[NT * NT];
    TN_CK(ctx, tn_gp_create(ctx, K, T, N, O, Y, &ref));
    TN_CK(ctx, tn_gp_nngp_posterior(ref, Kt, Ktt, NT, rm[0], rc[0]));
    TN_CK(ctx, tn_gp_ntk_posterior(ref, 2.5, Tt, Kt, Ktt, NT, rm[1], rc[1]));

    long k;
    for (int with_ntk = 0; with_ntk < 2; with_ntk++) {
        for (k = 1; k < MAX_K; k++) {
            tn_gp *g = (tn_gp *)&k;
            const tn_status st =
                INJECT(k, tn_gp_create(ctx, K, with_ntk ? T : NULL, N, O, Y, &g));
            DISARM();
            if (st != TN_OK) {
                EXPECT_NOMEM(st, "tn_gp_create", k);
                ck_assert_ptr_null(g);
                continue;
            }
            TN_CK(ctx, tn_gp_nngp_posterior(g, Kt, Ktt, NT, mean, cov));
            ck_assert_mem_eq(mean, rm[0], sizeof mean);
            tn_gp_free(g);
            if (FINISHED(st)) break;
        }
        CHECK_LOOP(k, "tn_gp_create");
    }

    for (int call = 0; call < 2; call++) {
        for (k = 1; k < MAX_K; k++) {
            tn_gp *g;
            TN_CK(ctx, tn_gp_create(ctx, K, T, N, O, Y, &g));
            memset(mean, 0xa5, sizeof mean);
            memset(cov, 0xa5, sizeof cov);
            /* The NTK-GP call comes after a regularizer change and back, so
             * its eigendecomposition is redone inside the failing call. */
            if (call == 1) {
                TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, 0.5));
                TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, 0.0));
            }
            const tn_status st =
                INJECT(k, call == 0 ? tn_gp_nngp_posterior(g, Kt, Ktt, NT, mean, cov)
                                    : tn_gp_ntk_posterior(g, 2.5, Tt, Kt, Ktt, NT, mean, cov));
            DISARM();
            if (st != TN_OK) {
                EXPECT_NOMEM(st, call ? "tn_gp_ntk_posterior" : "tn_gp_nngp_posterior", k);
                for (size_t i = 0; i < sizeof mean; i++)
                    ck_assert(((unsigned char *)mean)[i] == 0xa5);
                for (size_t i = 0; i < sizeof cov; i++) ck_assert(((unsigned char *)cov)[i] == 0xa5);
                TN_CK(ctx, call == 0 ? tn_gp_nngp_posterior(g, Kt, Ktt, NT, mean, cov)
                                     : tn_gp_ntk_posterior(g, 2.5, Tt, Kt, Ktt, NT, mean, cov));
            }
            ck_assert_mem_eq(mean, rm[call], sizeof mean);
            ck_assert_mem_eq(cov, rc[call], sizeof cov);
            tn_gp_free(g);
            if (FINISHED(st)) break;
        }
        CHECK_LOOP(k, call ? "tn_gp_ntk_posterior" : "tn_gp_nngp_posterior");
    }
    tn_gp_free(ref);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("predict_alloc");
    TCase *tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, predictor_allocations);
    tcase_add_test(tc, gp_allocations);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
