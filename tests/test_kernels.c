/* test_kernels.c -- the library's own BLIS and its kernel sets
 * (lib/kernel/kernels.h, docs/guide/performance.md "Kernels").
 *
 * What is asserted, and why:
 *   - On a CPU with AVX2 and FMA the automatic choice is not BLIS's generic
 *     set (Debian's BLIS 0.9.0 falls back to generic on CPUs it does not
 *     recognise; the library must not), and tn_blas_info names the set.
 *   - BLIS's own queries inside the library's copy (bli_gks_query_cntx,
 *     what its BLAS layer -- the dgemm_ LAPACK calls -- uses) return the
 *     selected set's context: LAPACK runs on the selected kernels too.
 *   - Every available set computes GEMM and SYRK against direct loops within
 *     the classical bound |C - C_exact| <= k u |A||B| (times 2 for margin;
 *     u = 2^-53), over shapes that reach BLIS's small-matrix ("sup") and
 *     blocked paths, both transposes, beta 0 and 1.
 *   - The whole library agrees between kernel sets to 1e-12 relative: a
 *     forward pass and Adam training (tanh, where rounding differences
 *     feed through smooth functions), an order-3 Taylor forward, the
 *     structured NTK, and a predictor whose eigendecomposition (LAPACK's
 *     dsyevd, 200 x 200: its blocked reductions call dgemm_) is
 *     well-conditioned (K = A A^T / 50 + I: eigenvalues in [1, ~10]), so
 *     that kernel-set rounding differences (~1e-16 relative per product)
 *     stay far below 1e-12 after the few operations each result goes
 *     through.
 * The sets are switched inside one process with the test hook
 * tni_kernels_select_for_test (TAYLORNET_KERNELS is read once per process;
 * test_kernels_env checks the variable itself). */
#include "testutil.h"

#include <blis.h>

#include "kernel/blas.h"
#include "kernel/kernels.h"

static tn_ctx *ctx;

static void setup(void)
{
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
}

static void teardown(void)
{
    tn_ctx_free(ctx);
}

static int available(const char **names)
{
    const int n = tni_kernels_available(names, 16);
    ck_assert_int_ge(n, 1);
    return n;
}

START_TEST(automatic_choice_is_not_generic_with_avx2)
{
    const char *info = tn_blas_info();
    ck_assert_msg(strncmp(info, "BLIS ", 5) == 0, "tn_blas_info: %s", info);
    ck_assert_ptr_nonnull(strstr(info, tni_kernels_name()));
    const char *names[16];
    const int n = available(names);
#if defined(TNI_BLIS_STATIC) && (defined(__x86_64__) || defined(__i386__))
    ck_assert_str_eq(names[0], "generic");
    const char *env = getenv("TAYLORNET_KERNELS");
    if (env == NULL || env[0] == '\0' || strcmp(env, "auto") == 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            ck_assert_str_ne(tni_kernels_name(), "generic");
            ck_assert_int_ge(n, 2);
        }
    }
#endif
    int listed = 0;
    for (int i = 0; i < n; i++) listed |= strcmp(names[i], tni_kernels_name()) == 0;
    ck_assert_msg(listed, "the selected set %s is not available", tni_kernels_name());
    printf("kernel sets available: %d, selected %s (%s)\n", n, tni_kernels_name(), info);
}
END_TEST

START_TEST(blas_layer_and_lapack_use_the_selected_set)
{
#ifdef TNI_BLIS_STATIC
    const char *names[16];
    const int n = available(names);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(tni_kernels_select_for_test(names[i]), 0);
        ck_assert_ptr_eq(bli_gks_query_cntx(), tni_kernels_cntx());
        ck_assert_str_eq(tni_kernels_name(), names[i]);
    }
#endif
    ck_assert_int_eq(tni_kernels_select_for_test("no-such-set"), -1);
}
END_TEST

/* C = alpha op(A) op(B) + beta C by direct loops in long double, and the
 * bound k u sum |a||b| + |beta c| u per element. */
static void reference(int ta, int tb, size_t m, size_t n, size_t k, double alpha,
                      const double *A, const double *B, double beta, const double *C0,
                      double *C, double *bound)
{
    const size_t lda = ta ? m : k, ldb = tb ? k : n;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            long double s = 0, a = 0;
            for (size_t p = 0; p < k; p++) {
                const double x = ta ? A[p * lda + i] : A[i * lda + p];
                const double y = tb ? B[j * ldb + p] : B[p * ldb + j];
                s += (long double)x * y;
                a += fabsl((long double)x * y);
            }
            C[i * n + j] = (double)(alpha * s + beta * C0[i * n + j]);
            bound[i * n + j] =
                (double)(((long double)k + 2) * 0x1.0p-53 * (fabsl(alpha * a) + fabs(beta * C0[i * n + j])));
        }
}

START_TEST(gemm_and_syrk_on_every_set_against_direct_loops)
{
    static const size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7},    {17, 13, 29},
                                       {64, 48, 96}, {150, 70, 300}, {257, 130, 520}};
    const char *names[16];
    const int nsets = available(names);
    for (int s = 0; s < nsets; s++) {
        ck_assert_int_eq(tni_kernels_select_for_test(names[s]), 0);
        for (size_t h = 0; h < sizeof shapes / sizeof shapes[0]; h++) {
            const size_t m = shapes[h][0], n = shapes[h][1], k = shapes[h][2];
            double *A = tu_random(m * k, 11 + h, 1.0), *B = tu_random(k * n, 12 + h, 1.0);
            double *C0 = tu_random(m * n, 13 + h, 1.0);
            double *C = malloc(m * n * sizeof(double)), *R = malloc(m * n * sizeof(double));
            double *bound = malloc(m * n * sizeof(double));
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int b1 = 0; b1 < 2; b1++) {
                        const double beta = b1 ? 1.0 : 0.0;
                        memcpy(C, C0, m * n * sizeof(double));
                        tni_gemm(1, ta ? TNI_TRANS : TNI_NOTRANS, tb ? TNI_TRANS : TNI_NOTRANS, m,
                                 n, k, 0.5, A, ta ? m : k, B, tb ? k : n, beta, C, n);
                        reference(ta, tb, m, n, k, 0.5, A, B, beta, C0, R, bound);
                        for (size_t e = 0; e < m * n; e++)
                            ck_assert_msg(fabs(C[e] - R[e]) <= 2 * bound[e],
                                          "%s gemm %zux%zux%zu ta %d tb %d beta %g: |%g - %g| > "
                                          "2 x %g",
                                          names[s], m, n, k, ta, tb, beta, C[e], R[e], bound[e]);
                    }
            /* SYRK: the lower triangle of A A^T (A m x k), upper untouched. */
            double *S = malloc(m * m * sizeof(double)), *SR = malloc(m * m * sizeof(double));
            double *Sb = malloc(m * m * sizeof(double)), *Z = calloc(m * m, sizeof(double));
            for (size_t e = 0; e < m * m; e++) S[e] = -7.0;
            tni_syrk_lower(1, m, k, 1.0, A, k, 0.0, S, m);
            reference(0, 1, m, m, k, 1.0, A, A, 0.0, Z, SR, Sb);
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < m; j++) {
                    if (j > i)
                        ck_assert_double_eq(S[i * m + j], -7.0);
                    else
                        ck_assert_msg(fabs(S[i * m + j] - SR[i * m + j]) <= 2 * Sb[i * m + j],
                                      "%s syrk %zux%zu (%zu, %zu)", names[s], m, k, i, j);
                }
            free(A), free(B), free(C0), free(C), free(R), free(bound);
            free(S), free(SR), free(Sb), free(Z);
        }
    }
}
END_TEST

enum { D = 40, N = 64, ORDER = 3, NP = 200 };
static const size_t widths[] = {96, 80, 4};
#define NL (sizeof widths / sizeof widths[0])

/* Everything the library computes on one set, result by result. */
enum { MAXR = 8 };
typedef struct results {
    const char *what[MAXR];
    double *v[MAXR];
    size_t len[MAXR];
    int count;
} results;

static void push(results *r, const char *what, const double *v, size_t n)
{
    r->what[r->count] = what;
    r->v[r->count] = malloc(n * sizeof(double));
    memcpy(r->v[r->count], v, n * sizeof(double));
    r->len[r->count++] = n;
}

static void results_free(results *r)
{
    for (int i = 0; i < r->count; i++) free(r->v[i]);
}

static results run_library(void)
{
    results r = {{0}, {0}, {0}, 0};
    const size_t O = widths[NL - 1];
    double *x = tu_random(N * D, 21, 1.0), *y = tu_random(N * O, 22, 1.0);
    double *out = malloc(N * N * O * O * sizeof(double));
    tn_net *net = tu_mlp(ctx, D, widths, NL, TN_ACT_TANH, TN_PARAM_NTK, 5);
    const size_t P = tn_net_num_params(net);

    TN_CK(ctx, tn_net_forward(net, x, N, out));
    push(&r, "forward", out, N * O);

    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_METHOD, TN_NTK_STRUCTURED));
    TN_CK(ctx, tn_ntk_compute(k, x, N, NULL, 0, out));
    push(&r, "structured NTK", out, N * N);
    tn_ntk_free(k);

    double *theta = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, theta, P));
    for (size_t i = 0; i < P; i++) theta[i] *= 1.05;       /* Delta != 0 */
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, ORDER, &t));
    TN_CK(ctx, tn_taylor_forward(t, theta, x, N, out));
    push(&r, "Taylor forward", out, N * O);
    tn_taylor_free(t);

    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-3));
    double loss[3];
    for (int s = 0; s < 3; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, N, &loss[s]));
    push(&r, "Adam losses", loss, 3);
    TN_CK(ctx, tn_net_get_params(net, theta, P));
    push(&r, "Adam parameters", theta, P);
    tn_trainer_free(tr);

    /* K = A A^T / 50 + I, 200 x 200: LAPACK's blocked dsyevd. */
    double *A = tu_random(NP * 50, 23, 1.0), *K = malloc(NP * NP * sizeof(double));
    for (size_t i = 0; i < NP; i++)
        for (size_t j = 0; j < NP; j++)
            K[i * NP + j] = tu_dot(A + i * 50, A + j * 50, 50) / 50 + (i == j);
    double *yp = tu_random(NP, 24, 1.0), *f0 = tu_random(NP, 25, 1.0);
    tn_predictor *p;
    TN_CK(ctx, tn_predictor_create(ctx, K, NP, 1, 0, yp, &p));
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_TIME, TN_PRED_FLOW));
    TN_CK(ctx, tn_predictor_predict(p, 30.0, f0, out, NULL, NULL, 0, NULL));
    push(&r, "predictor", out, NP);
    tn_predictor_free(p);

    free(A), free(K), free(yp), free(f0), free(theta), free(x), free(y), free(out);
    tn_net_free(net);
    return r;
}

START_TEST(library_results_agree_between_sets)
{
    const char *names[16];
    const int nsets = available(names);
    ck_assert_int_eq(tni_kernels_select_for_test(names[0]), 0);
    results ref = run_library();
    for (int s = 1; s < nsets; s++) {
        ck_assert_int_eq(tni_kernels_select_for_test(names[s]), 0);
        results r = run_library();
        ck_assert_int_eq(r.count, ref.count);
        for (int i = 0; i < r.count; i++) {
            const double err = tu_rel_err(r.v[i], ref.v[i], r.len[i], 1e-300);
            printf("%s against %s, %s: %.2e relative\n", names[s], names[0], r.what[i], err);
            ck_assert_msg(err <= 1e-12, "%s against %s, %s: %g", names[s], names[0], r.what[i],
                          err);
        }
        results_free(&r);
    }
    results_free(&ref);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("sets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, automatic_choice_is_not_generic_with_avx2);
    tcase_add_test(tc, blas_layer_and_lapack_use_the_selected_set);
    tcase_add_test(tc, gemm_and_syrk_on_every_set_against_direct_loops);
    tcase_add_test(tc, library_results_agree_between_sets);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
