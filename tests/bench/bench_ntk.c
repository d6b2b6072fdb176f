/* bench_ntk.c -- the empirical NTK of a 784-512-512-512-10 ReLU MLP, traced,
 * for N = 256, 1024, 4096 inputs (x2 = x1): time and peak memory of each
 * method, beside the BLIS dgemm rate measured in the same run.
 * Targets: at N = 256 STRUCTURED is >= 100x faster than JACOBIAN (and
 * >= 300x faster than PyTorch's Jacobian contraction: peer_torch.py); at
 * N = 4096 STRUCTURED runs within 1.3x of its own GEMM flop count at the
 * dgemm rate, and its peak memory is at most the output plus 256 MiB;
 * two threads (tn_ctx_set_threads) run it >= 1.7x faster than one at
 * N = 1024 on two idle cores.
 * JACOBIAN and VECTOR_PRODUCTS cost N^2 O P flops: by default they are
 * timed at N = 256 only and projected from the cost model beyond (labelled
 * so); the second argument times them up to that N (1024: about an hour).
 *
 *   bench_ntk [max N (4096)] [max N timed for JACOBIAN, VECTOR_PRODUCTS (256)]
 *             [max threads (2)]
 * Last, N = 10,000 with a 1 GiB budget: the tiled STRUCTURED kernel, whose
 * peak must stay near the 800 MB output plus the budget. */
#include "benchutil.h"
#include "taylornet.h"
#include "ntk/ntk.h"    /* internal: the cost model's flop counts */

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

static tn_ctx *ctx;

static const char *names[] = {"AUTO", "STRUCTURED", "JACOBIAN", "VECTOR_PRODUCTS"};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines appear as they are measured */
    bu_print_blas();
    const size_t max_n = argc > 1 ? (size_t)atol(argv[1]) : 4096;
    const size_t max_n_slow = argc > 2 ? (size_t)atol(argv[2]) : 256;
    const int max_threads = argc > 3 ? atoi(argv[3]) : 2;
    const size_t d = 784, widths[] = {512, 512, 512, 10}, L = 4;
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    tn_net *net = bu_mlp(ctx, d, widths, L, TN_ACT_RELU);
    tn_ntk *k;
    CK(tn_ntk_create(net, &k));

    /* The reference rate: square-ish GEMMs of the Gram products' shapes. */
    bu_gemm g[] = {{1024, 1024, 784, 0, 1}, {1024, 1024, 5120, 0, 1}, {1024, 1024, 512, 0, 1}};
    const double rate = bu_flops(g, 3) / bu_gemm_seconds(g, 3, 1, 3);
    printf("empirical NTK, MLP 784-512-512-512-10 (ReLU), traced, x2 = x1, double, 1 thread\n");
    printf("BLIS dgemm: %.2f GFLOP/s\n\n", rate * 1e-9);
    printf("%6s  %-16s %10s %10s %12s %14s %14s\n", "N", "method", "seconds", "GFLOP", "GFLOP/s",
           "peak MiB", "output MiB");
    printf("        (peak: the library's own allocations, from tn_ctx_get_memory; the output is the\n"
           "         caller's and comes on top)\n");

    for (size_t n = 256; n <= max_n; n *= 4) {
        double *x = malloc(n * d * sizeof(double)), *K = malloc(n * n * sizeof(double));
        for (size_t i = 0; i < n * d; i++) x[i] = 0.5 + 0.5 * sin(0.37 * (double)i);
        const double out_mib = (double)(n * n * sizeof(double)) / (1 << 20);
        double flops[4], t_struct = 0, t_jac = 0, rate_now = rate;
        for (int m = TN_NTK_STRUCTURED; m <= TN_NTK_VECTOR_PRODUCTS; m++) {
            CK(tn_ntk_set(k, TN_NTK_METHOD, m));
            /* JACOBIAN gets room for tiles of ~25 examples (its J rows are
             * 75 MB each); the others the default 256 MiB. */
            CK(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, m == TN_NTK_JACOBIAN ? 4.0 * (1u << 30) : 256.0 * (1 << 20)));
            tni_ntk_choose(k, n, n, 1, flops, NULL, NULL);
            if (m != TN_NTK_STRUCTURED && n > max_n_slow) {
                printf("%6zu  %-16s %10s %10.0f %12s %14s %14.1f   (projected: %.0f s at the dgemm rate)\n",
                       n, names[m], "-", flops[m] * 1e-9, "-", "-", out_mib, flops[m] / rate);
                continue;
            }
            size_t base, peak;
            CK(tn_ctx_reset_peak_memory(ctx));
            CK(tn_ctx_get_memory(ctx, &base, NULL));
            const double t0 = bu_now();
            CK(tn_ntk_compute(k, x, n, NULL, 0, K));
            const double t = bu_now() - t0;
            CK(tn_ctx_get_memory(ctx, NULL, &peak));
            /* The reference again right after it: the machine's speed
             * drifts over the minutes this benchmark runs. */
            if (m == TN_NTK_STRUCTURED) {
                t_struct = t;
                rate_now = bu_flops(g, 3) / bu_gemm_seconds(g, 3, 1, 3);
            }
            if (m == TN_NTK_JACOBIAN) t_jac = t;
            printf("%6zu  %-16s %10.2f %10.1f %12.2f %14.1f %14.1f\n", n, names[m], t,
                   flops[m] * 1e-9, flops[m] / t * 1e-9, (double)(peak - base) / (1 << 20), out_mib);
        }
        CK(tn_ntk_set(k, TN_NTK_METHOD, TN_NTK_STRUCTURED));
        tni_ntk_choose(k, n, n, 1, flops, NULL, NULL);
        printf("        STRUCTURED: %.2fx its GEMM flops at the dgemm rate measured right after it, "
               "%.2f GFLOP/s (target <= 1.3 at N = 4096)",
               t_struct / (flops[1] / rate_now), rate_now * 1e-9);
        if (t_jac > 0) printf("; JACOBIAN / STRUCTURED = %.0fx (target >= 100 at N = 256)", t_jac / t_struct);
        printf("\n");
        free(x);
        free(K);
    }
    /* Threads: STRUCTURED at N = 1024 on 1 .. max_threads threads. */
    if (max_n >= 1024) {
        const size_t n = 1024;
        double *x = malloc(n * d * sizeof(double)), *K = malloc(n * n * sizeof(double)), t1 = 0;
        for (size_t i = 0; i < n * d; i++) x[i] = 0.5 + 0.5 * sin(0.37 * (double)i);
        CK(tn_ntk_set(k, TN_NTK_METHOD, TN_NTK_STRUCTURED));
        CK(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 256.0 * (1 << 20)));
        printf("\nSTRUCTURED, N = %zu, by threads (best of 3):\n", n);
        for (int th = 1; th <= max_threads; th++) {
            CK(tn_ctx_set_threads(ctx, th));
            double t[3];
            for (int r = 0; r < 3; r++) {
                const double t0 = bu_now();
                CK(tn_ntk_compute(k, x, n, NULL, 0, K));
                t[r] = bu_now() - t0;
            }
            const double best = bu_min(t, 3);
            if (th == 1) t1 = best;
            printf("  %d thread%s %10.3f s", th, th > 1 ? "s" : " ", best);
            if (th > 1) printf("   speedup %.2fx (target >= 1.7x on 2 idle cores)", t1 / best);
            printf("\n");
        }
        CK(tn_ctx_set_threads(ctx, 1));
        free(x);
        free(K);
    }
    if (max_n >= 4096) {
        const size_t n = 10000;
        double *x = malloc(n * d * sizeof(double)), *K = malloc(n * n * sizeof(double)), flops[4];
        for (size_t i = 0; i < n * d; i++) x[i] = 0.5 + 0.5 * sin(0.37 * (double)i);
        CK(tn_ntk_set(k, TN_NTK_METHOD, TN_NTK_STRUCTURED));
        CK(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 1024.0 * (1 << 20)));
        tni_ntk_choose(k, n, n, 1, flops, NULL, NULL);
        size_t base, peak;
        CK(tn_ctx_reset_peak_memory(ctx));
        CK(tn_ctx_get_memory(ctx, &base, NULL));
        const double t0 = bu_now();
        CK(tn_ntk_compute(k, x, n, NULL, 0, K));
        const double t = bu_now() - t0;
        CK(tn_ctx_get_memory(ctx, NULL, &peak));
        printf("%6zu  %-16s %10.2f %10.1f %12.2f %14.1f %14.1f   (budget 1024 MiB)\n", n,
               "STRUCTURED", t, flops[1] * 1e-9, flops[1] / t * 1e-9,
               (double)(peak - base) / (1 << 20), (double)(n * n * sizeof(double)) / (1 << 20));
        free(x);
        free(K);
    }
    tn_ntk_free(k);
    tn_net_free(net);
    tn_ctx_free(ctx);
    return 0;
}
