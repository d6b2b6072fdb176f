/* test_host_blis.c -- a host program that uses the system's BLIS itself
 * (libblis.so) and libtaylornet beside it: the library must leave the host's
 * BLIS as it found it (taylornet.h, tn_blas_info; docs/guide/performance.md).
 *
 * What is asserted, and why:
 *   - The host's BLIS reports the same kernel set (bli_arch_query_id) and
 *     the same thread count (set by the host to 3 beforehand) after the
 *     library has trained, computed an NTK and run LAPACK on 2 threads: the
 *     library's kernel choice and its thread settings live in its own copy
 *     of BLIS (or, built with -Dblis=shared, are never set at all).
 *   - A host GEMM gives the same bits before and after.
 *   - The host's bli_dgemm_ex is the system library's, not one the library
 *     exports (it exports only tn_* names: the symbols test checks that).
 * The kernel sets of both are printed: on a CPU the system BLIS does not
 * recognise they differ (generic for the host, e.g. skx for the library). */
#define _GNU_SOURCE
#include <blis.h>
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taylornet.h"

#define CK(ctx, expr)                                                                        \
    do {                                                                                     \
        tn_status st_ = (expr);                                                              \
        ck_assert_msg(st_ == TN_OK, "%s: %s", #expr, tn_ctx_errmsg(ctx));                    \
    } while (0)

enum { M = 70, K = 90, NN = 60 };

static void host_gemm(double *C)
{
    double *A = malloc(M * K * sizeof(double)), *B = malloc(K * NN * sizeof(double));
    for (int i = 0; i < M * K; i++) A[i] = sin(0.3 * i);
    for (int i = 0; i < K * NN; i++) B[i] = cos(0.7 * i);
    double one = 1.0, zero = 0.0;
    bli_dgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, NN, K, &one, A, K, 1, B, NN, 1, &zero, C,
              NN, 1);
    free(A);
    free(B);
}

static void use_the_library(void)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    CK(ctx, tn_ctx_set_threads(ctx, 2));
    const size_t d = 30, n = 200;
    tn_net *net;
    CK(ctx, tn_net_create(ctx, &d, 1, &net));
    CK(ctx, tn_net_add_dense(net, 64));
    CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    CK(ctx, tn_net_add_dense(net, 1));
    CK(ctx, tn_net_init(net, 3));
    double *x = malloc(n * d * sizeof(double)), *y = malloc(n * sizeof(double));
    double *K2 = malloc(n * n * sizeof(double)), *f = malloc(n * sizeof(double));
    for (size_t i = 0; i < n * d; i++) x[i] = sin(0.1 * (double)i);
    for (size_t i = 0; i < n; i++) y[i] = cos(0.2 * (double)i);
    tn_trainer *tr;
    CK(ctx, tn_trainer_create(net, &tr));
    CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    tn_trainer_free(tr);
    tn_ntk *k;
    CK(ctx, tn_ntk_create(net, &k));
    CK(ctx, tn_ntk_compute(k, x, n, NULL, 0, K2));
    tn_ntk_free(k);
    for (size_t i = 0; i < n; i++) K2[i * n + i] += 1.0;
    tn_predictor *p;   /* LAPACK: dsyevd on 200 x 200 */
    CK(ctx, tn_predictor_create(ctx, K2, n, 1, 0, y, &p));
    CK(ctx, tn_predictor_predict(p, 10.0, y, f, NULL, NULL, 0, NULL));
    tn_predictor_free(p);
    free(x), free(y), free(K2), free(f);
    tn_net_free(net);
    tn_ctx_free(ctx);
}

START_TEST(host_blis_state_is_unchanged)
{
    bli_thread_set_num_threads(3);
    const arch_t arch = bli_arch_query_id();
    double before[M * NN], after[M * NN];
    host_gemm(before);

    use_the_library();

    ck_assert_int_eq(bli_arch_query_id(), arch);
    ck_assert_int_eq(bli_thread_get_num_threads(), 3);
    host_gemm(after);
    ck_assert_mem_eq(before, after, sizeof before);

    Dl_info where;
    void *gemm = dlsym(RTLD_DEFAULT, "bli_dgemm_ex");
    ck_assert_ptr_nonnull(gemm);
    ck_assert_int_ne(dladdr(gemm, &where), 0);
    ck_assert_msg(strstr(where.dli_fname, "libblis") != NULL,
                  "the host's bli_dgemm_ex comes from %s", where.dli_fname);
    ck_assert_ptr_null(dlsym(RTLD_DEFAULT, "tni_gemm"));
    printf("host BLIS: %s kernels (%s); library: %s\n", bli_arch_string(arch), where.dli_fname,
           tn_blas_info());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("host_blis");
    TCase *tc = tcase_create("host");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, host_blis_state_is_unchanged);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
