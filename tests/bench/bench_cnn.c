/* bench_cnn.c -- CNN-THIN (Bai et al. 2020: four 3x3 SAME convolutions of C
 * channels with ReLU, global average pooling, a dense readout of 10) on
 * 28 x 28 x 1 images, double, one thread: the training step, the order-2
 * Taylorized step, and the traced empirical NTK with each method, as
 * seconds and as a fraction of BLIS dgemm on the same GEMM shapes measured
 * in the same run.
 *
 *   bench_cnn [C [batch [N [reps]]]]     defaults 128, 128, 256, 3
 *
 * The step's GEMMs, per convolution with Cin input channels (patch width
 * 9 Cin, B 784 output pixels): forward (B 784) x C x 9 Cin, kernel gradient
 * C x 9 Cin x (B 784), input cotangent (B 784) x 9 Cin x C (not for the
 * first).  The NTK method AUTO chooses per layer (MATH.md §9); STRUCTURED
 * (Gram products quadratic in pixels) and VECTOR_PRODUCTS cost hundreds of
 * times more than JACOBIAN here, so they are timed at a small N and scaled
 * to N by the cost model's flop counts (printed as "scaled"). */
#include "benchutil.h"
#include "taylornet.h"
#include "ntk/ntk.h"    /* internal: the cost model's flop counts and choice */

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

static tn_ctx *ctx;

static tn_net *cnn_thin(size_t C)
{
    const size_t shape[3] = {28, 28, 1};
    tn_net *net;
    CK(tn_net_create(ctx, shape, 3, &net));
    for (int l = 0; l < 4; l++) {
        CK(tn_net_add_conv2d(net, C, 3, 3, 1, TN_PAD_SAME));
        CK(tn_net_add_activation(net, TN_ACT_RELU));
    }
    CK(tn_net_add_global_avg_pool(net));
    CK(tn_net_add_dense(net, 10));
    CK(tn_net_init(net, 1));
    return net;
}

/* Best-of-reps seconds of a training step at `order`. */
static double step_seconds(tn_net *net, int order, const double *x, const double *y, size_t B,
                           int reps)
{
    tn_trainer *tr;
    CK(tn_trainer_create(net, &tr));
    CK(tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    CK(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_MOMENTUM));
    CK(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-3));
    CK(tn_trainer_set(tr, TN_TRAIN_ORDER, order));
    double loss, best = 1e30;
    CK(tn_trainer_step(tr, x, y, B, &loss));   /* warm-up: workspaces, pages */
    for (int r = 0; r < reps; r++) {
        const double t0 = bu_now();
        CK(tn_trainer_step(tr, x, y, B, &loss));
        const double t = bu_now() - t0;
        if (t < best) best = t;
    }
    tn_trainer_free(tr);
    return best;
}

/* The best of two runs: the first call of a kernel object also builds its
 * tape and touches its memory for the first time, which is not the method's
 * cost (and would fall on whichever method is timed first).  A run of more
 * than a minute is not run again: that first-call work is a fraction of a
 * second, well inside such a run's noise, and a second run of AUTO and
 * JACOBIAN at N = 256 would double the benchmark's 15 minutes. */
static double ntk_seconds(tn_ntk *k, int method, const double *x, size_t n, double *K)
{
    CK(tn_ntk_set(k, TN_NTK_METHOD, method));
    double best = HUGE_VAL;
    for (int r = 0; r < 2 && (r == 0 || best <= 60.0); r++) {
        const double t0 = bu_now();
        CK(tn_ntk_compute(k, x, n, NULL, 0, K));
        const double t = bu_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines appear as they are measured */
    bu_print_blas();
    const size_t C = argc > 1 ? (size_t)atol(argv[1]) : 128;
    const size_t B = argc > 2 ? (size_t)atol(argv[2]) : 128;
    const size_t N = argc > 3 ? (size_t)atol(argv[3]) : 256;
    const int reps = argc > 4 ? atoi(argv[4]) : 3;
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    tn_net *net = cnn_thin(C);
    const size_t P = tn_net_num_params(net), d = 784, rows = B * 784;

    double *x = malloc((B > N ? B : N) * d * sizeof(double)), *y = calloc(B * 10, sizeof(double));
    for (size_t i = 0; i < (B > N ? B : N) * d; i++) x[i] = sin(0.37 * (double)i);
    for (size_t i = 0; i < B; i++) y[i * 10 + i % 10] = 1.0;

    bu_gemm g[12];
    size_t ng = 0, cin = 1;
    for (int l = 0; l < 4; l++) {
        g[ng++] = (bu_gemm){rows, C, 9 * cin, 0, 1};            /* Z = P(X) W^T */
        g[ng++] = (bu_gemm){C, 9 * cin, rows, 1, 0};            /* dW = Zbar^T P(X) */
        if (l > 0) g[ng++] = (bu_gemm){rows, 9 * cin, C, 0, 0}; /* P(Xbar) = Zbar W */
        cin = C;
    }
    const double flops = bu_flops(g, ng), gemm = bu_gemm_seconds(g, ng, 1, reps);
    const double rate = flops / gemm;

    printf("CNN-THIN: 4 x conv 3x3 SAME (%zu channels) + ReLU, global average pooling, dense 10;\n"
           "28 x 28 x 1 inputs, batch %zu, double, 1 thread, P = %zu\n", C, B, P);
    printf("BLIS dgemm on the step's GEMM shapes: %.2f GFLOP/s\n\n", rate * 1e-9);

    const double full = step_seconds(net, 0, x, y, B, reps);
    printf("full step         %8.3f s   %6.1f%% of the dgemm rate on its %.1f GFLOP (target >= 60%%)\n",
           full, 100.0 * gemm / full, flops * 1e-9);
    const double o2 = step_seconds(net, 2, x, y, B, reps > 1 ? reps - 1 : 1);
    printf("order-2 step      %8.3f s   %6.2fx the full step (the cost shape (5k+2)/3 = %.2f)\n\n", o2,
           o2 / full, 12.0 / 3.0);

    tn_ntk *k;
    CK(tn_ntk_create(net, &k));
    CK(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 2.0 * (1u << 30)));
    double flops_n[4], flops_s[4];
    size_t grams, nodes;
    const int choice = tni_ntk_choose(k, N, N, 1, flops_n, &grams, &nodes);
    const size_t small = 8;
    tni_ntk_choose(k, small, small, 1, flops_s, NULL, NULL);
    static const char *names[] = {"AUTO", "STRUCTURED", "JACOBIAN", "VECTOR_PRODUCTS"};
    printf("empirical NTK, traced, x2 = x1, N = %zu (memory budget 2 GiB)\n", N);
    printf("  AUTO chooses %s: %zu of %zu layers by Gram products, the rest by Jacobian contraction\n",
           choice == TN_NTK_VECTOR_PRODUCTS ? "VECTOR_PRODUCTS" : "tiles", grams, nodes);
    printf("  %-16s %12s %12s %14s\n", "method", "seconds", "GFLOP", "% of dgemm");
    double *K = malloc(N * N * sizeof(double));
    for (int m = TN_NTK_AUTO; m <= TN_NTK_VECTOR_PRODUCTS; m++) {
        double t;
        const char *how = "";
        if (m == TN_NTK_STRUCTURED || m == TN_NTK_VECTOR_PRODUCTS) {
            t = ntk_seconds(k, m, x, small, K) * flops_n[m] / flops_s[m];
            how = "  (timed at N = 8, scaled by the cost model)";
        } else {
            t = ntk_seconds(k, m, x, N, K);
        }
        printf("  %-16s %12.2f %12.1f %13.1f%%%s\n", names[m], t, flops_n[m] * 1e-9,
               100.0 * flops_n[m] / rate / t, how);
    }
    free(K), free(x), free(y);
    tn_ntk_free(k);
    tn_net_free(net);
    tn_ctx_free(ctx);
    return 0;
}
