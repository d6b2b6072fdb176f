/* bench_train_step.c -- one full training step of a 784-1024-1024-1024-10
 * ReLU MLP at batch 256, double (softmax cross-entropy, SGD with momentum):
 * time and GFLOP/s beside BLIS dgemm on the same GEMM shapes, measured in the
 * same run, on 1 thread and then on 2 (tn_ctx_set_threads).
 *
 * The step is three GEMMs per dense layer (forward Z = X W^T, weight
 * gradient Zbar^T X, input cotangent Zbar W), less the first layer's input
 * cotangent, which nobody needs.  Targets: >= 90% of the dgemm rate on one
 * thread; 2 threads >= 1.7x 1 thread on two idle cores.  The machine may be
 * shared: each figure is the best of `reps` steps (the median is printed
 * beside it), the steps and the reference products are timed in turns, a
 * few of each per round, and the ratios are within this run.
 *
 *   bench_train_step [reps (10)] [max threads (2)] */
#include "benchutil.h"
#include "taylornet.h"

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

enum { B = 256 };
static const size_t d = 784, widths[] = {1024, 1024, 1024, 10}, L = 4;

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines appear as they are measured */
    bu_print_blas();
    const int reps = argc > 1 ? atoi(argv[1]) : 10;
    const int max_threads = argc > 2 ? atoi(argv[2]) : 2;
    tn_ctx *ctx;
    if (tn_ctx_create(&ctx) != TN_OK) return 1;

    double *x = malloc(B * d * sizeof(double)), *y = calloc(B * 10, sizeof(double));
    for (size_t i = 0; i < B * d; i++) x[i] = sin(0.37 * (double)i);
    for (size_t i = 0; i < B; i++) y[i * 10 + i % 10] = 1.0;

    bu_gemm g[3 * 4];
    const size_t ng = bu_mlp_step_gemms(g, B, d, widths, L);
    const double flops = bu_flops(g, ng);
    printf("training step, MLP 784-1024-1024-1024-10, batch %d, double, SGD with momentum\n", B);
    printf("  GEMM work per step      %.3f GFLOP (%zu GEMMs)\n", flops * 1e-9, ng);

    double best1 = 0;
    for (int threads = 1; threads <= max_threads; threads++) {
        CK(tn_ctx_set_threads(ctx, threads));
        tn_net *net = bu_mlp(ctx, d, widths, L, TN_ACT_RELU);
        tn_trainer *tr;
        CK(tn_trainer_create(net, &tr));
        CK(tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
        CK(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_MOMENTUM));
        CK(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-3));
        double loss;
        CK(tn_trainer_step(tr, x, y, B, &loss));       /* warm-up: workspaces, pages */
        bu_gemm_ref ref;
        bu_gemm_ref_init(&ref, g, ng, threads, 1);
        bu_gemm_ref_time(&ref, 0);
        bu_gemm_ref_time(&ref, 1);
        /* Rounds of GROUP steps back to back (as training runs them: each
         * step finds some of the last one's data in the cache) and then
         * GROUP passes of the reference products on distinct operands and
         * on shared ones, the best of each kept per round: both sides of
         * every ratio see the machine in the same state.  On a shared
         * machine whose speed drifts over seconds, timing all steps and
         * then all products compared two different machines; one step
         * after each pass of the products found none of its data in the
         * cache. */
        enum { GROUP = 3 };
        double *t = malloc((size_t)reps * sizeof(double));
        double *td = malloc((size_t)reps * sizeof(double)), *ts = malloc((size_t)reps * sizeof(double));
        double *ratio = malloc((size_t)reps * sizeof(double));
        for (int r = 0; r < reps; r++) {
            t[r] = td[r] = ts[r] = 1e30;
            for (int k = 0; k < GROUP; k++) {
                const double t0 = bu_now();
                CK(tn_trainer_step(tr, x, y, B, &loss));
                const double dt = bu_now() - t0;
                if (dt < t[r]) t[r] = dt;
            }
            for (int k = 0; k < GROUP; k++) {
                const double d = bu_gemm_ref_time(&ref, 1), sh = bu_gemm_ref_time(&ref, 0);
                if (d < td[r]) td[r] = d;
                if (sh < ts[r]) ts[r] = sh;
            }
            ratio[r] = td[r] / t[r];
        }
        bu_gemm_ref_free(&ref);
        const double best = bu_min(t, reps), gemm = bu_min(td, reps), shared = bu_min(ts, reps);
        const double median = bu_median(t, reps), median_ratio = bu_median(ratio, reps);
        if (threads == 1) best1 = best;
        printf("%d thread%s\n", threads, threads > 1 ? "s" : "");
        printf("  step time               %.2f ms best, %.2f ms median of %d rounds' best of %d\n",
               best * 1e3, median * 1e3, reps, GROUP);
        printf("  step rate               %.2f GFLOP/s\n", flops / best * 1e-9);
        printf("  BLIS dgemm, same shapes %.2f GFLOP/s (%.2f ms; timed in the same rounds, each "
               "product on its own operands, as in the step)\n",
               flops / gemm * 1e-9, gemm * 1e3);
        printf("  step / dgemm rate       %.1f%% of the best times, %.1f%% the median of "
               "step-by-step ratios (target >= 90%% on 1 thread)\n",
               100.0 * gemm / best, 100.0 * median_ratio);
        printf("  dgemm, shared operands  %.2f GFLOP/s (%.2f ms: operands partly cached from "
               "one product to the next); the step is %.1f%% of it\n",
               flops / shared * 1e-9, shared * 1e3, 100.0 * shared / best);
        if (threads > 1)
            printf("  speedup over 1 thread   %.2fx (target >= 1.7x on 2 idle cores)\n",
                   best1 / best);
        printf("  final loss              %.6f\n", loss);
        free(t);
        free(td);
        free(ts);
        free(ratio);
        tn_trainer_free(tr);
        tn_net_free(net);
    }
    free(x);
    free(y);
    tn_ctx_free(ctx);
    return 0;
}
