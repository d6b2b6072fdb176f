/* bench_kernels.c -- BLIS dgemm through the library on every kernel set
 * this BLIS and CPU offer, one thread: n = 1024 square, and the eleven GEMMs
 * of bench_train_step's step (784-1024-1024-1024-10 at batch 256).  The set
 * the library selected is marked; its rate against generic's is the gain
 * of the kernel choice (docs/guide/performance.md, "Kernels").
 *
 *   bench_kernels [reps (5)] */
#include "benchutil.h"
#include "kernel/blas.h"

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bu_print_blas();
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    tn_ctx *ctx;
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    const char *selected = tni_kernels_name();
    const char *names[16];
    const int n = tni_kernels_available(names, 16);

    bu_gemm square = {1024, 1024, 1024, 0, 0};
    const size_t widths[] = {1024, 1024, 1024, 10};
    bu_gemm step[12];
    const size_t ng = bu_mlp_step_gemms(step, 256, 784, widths, 4);
    printf("dgemm, 1 thread, best of %d    n = 1024     step shapes\n", reps);
    double generic = 0;
    for (int i = 0; i < n; i++) {
        if (tni_kernels_select_for_test(names[i]) != 0) continue;
        /* bu_gemm_seconds runs on the best set; time the selected one here. */
        double best_sq = 1e30, best_st = 1e30;
        for (int r = 0; r < reps; r++) {
            double *A = calloc(1024 * 1024, sizeof(double)), *B = calloc(1024 * 1024, sizeof(double)),
                   *C = calloc(1024 * 1024, sizeof(double));
            for (size_t e = 0; e < 1024 * 1024; e++) A[e] = B[e] = (double)(e % 7) * 0.1;
            double t0 = bu_now();
            tni_gemm(1, TNI_NOTRANS, TNI_NOTRANS, 1024, 1024, 1024, 1.0, A, 1024, B, 1024, 0.0, C,
                     1024);
            double t = bu_now() - t0;
            if (t < best_sq) best_sq = t;
            t0 = bu_now();
            for (size_t g = 0; g < ng; g++) {
                const bu_gemm *s = &step[g];
                tni_gemm(1, s->ta ? TNI_TRANS : TNI_NOTRANS, s->tb ? TNI_TRANS : TNI_NOTRANS, s->m,
                         s->n, s->k, 1.0, A, s->ta ? s->m : s->k, B, s->tb ? s->k : s->n, 0.0, C,
                         s->n);
            }
            t = bu_now() - t0;
            if (t < best_st) best_st = t;
            free(A), free(B), free(C);
        }
        const double r_sq = bu_flops(&square, 1) / best_sq * 1e-9;
        const double r_st = bu_flops(step, ng) / best_st * 1e-9;
        if (i == 0) generic = r_st;
        printf("  %-12s %s  %7.1f GFLOP/s  %7.1f GFLOP/s  (%.1fx generic)\n", names[i],
               strcmp(names[i], selected) == 0 ? "*" : " ", r_sq, r_st, r_st / generic);
    }
    printf("  (* the set the library selected)\n");
    tn_ctx_free(ctx);
    return 0;
}
