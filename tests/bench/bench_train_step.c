/* bench_train_step.c -- one full training step of a 784-1024-1024-1024-10
 * ReLU MLP at batch 256, double, one thread: time and GFLOP/s beside BLIS
 * dgemm on the same GEMM shapes, measured in the same run.
 *
 * The step is three GEMMs per dense layer (forward Z = X W^T, weight
 * gradient Zbar^T X, input cotangent Zbar W), less the first layer's input
 * cotangent, which nobody needs.  The target is >= 70% of the dgemm rate. */
#include "benchutil.h"
#include "taylornet.h"

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines appear as they are measured */
    bu_print_blas();
    const size_t B = 256, d = 784, widths[] = {1024, 1024, 1024, 10}, L = 4;
    const int reps = argc > 1 ? atoi(argv[1]) : 10;
    tn_ctx *ctx;
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    tn_net *net = bu_mlp(ctx, d, widths, L, TN_ACT_RELU);
    tn_trainer *tr;
    CK(tn_trainer_create(net, &tr));
    CK(tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    CK(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_MOMENTUM));
    CK(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-3));

    double *x = malloc(B * d * sizeof(double)), *y = calloc(B * 10, sizeof(double));
    for (size_t i = 0; i < B * d; i++) x[i] = sin(0.37 * (double)i);
    for (size_t i = 0; i < B; i++) y[i * 10 + i % 10] = 1.0;

    /* The GEMMs of one step, in the layout the engine uses. */
    bu_gemm g[3 * 4];
    size_t ng = 0, in = d;
    for (size_t l = 0; l < L; l++) {
        const size_t out = widths[l];
        g[ng++] = (bu_gemm){B, out, in, 0, 1};           /* Z = X W^T */
        g[ng++] = (bu_gemm){out, in, B, 1, 0};           /* dW = Zbar^T X */
        if (l > 0) g[ng++] = (bu_gemm){B, in, out, 0, 0}; /* Xbar = Zbar W */
        in = out;
    }
    const double flops = bu_flops(g, ng);

    double loss;
    CK(tn_trainer_step(tr, x, y, B, &loss));           /* warm-up: workspaces, pages */
    double best = 1e30, total = 0;
    for (int r = 0; r < reps; r++) {
        const double t0 = bu_now();
        CK(tn_trainer_step(tr, x, y, B, &loss));
        const double t = bu_now() - t0;
        total += t;
        if (t < best) best = t;
    }
    const double gemm = bu_gemm_seconds(g, ng, 1, reps);

    printf("training step, MLP 784-1024-1024-1024-10, batch %zu, double, 1 thread\n", B);
    printf("  GEMM work per step      %.3f GFLOP (%zu GEMMs)\n", flops * 1e-9, ng);
    printf("  step time               %.2f ms best, %.2f ms mean of %d\n", best * 1e3,
           total / reps * 1e3, reps);
    printf("  step rate               %.2f GFLOP/s\n", flops / best * 1e-9);
    printf("  BLIS dgemm, same shapes %.2f GFLOP/s (%.2f ms)\n", flops / gemm * 1e-9, gemm * 1e3);
    printf("  fraction of dgemm rate  %.1f%% (target >= 70%%)\n", 100.0 * gemm / best);
    printf("  final loss              %.6f\n", loss);

    free(x);
    free(y);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    return 0;
}
