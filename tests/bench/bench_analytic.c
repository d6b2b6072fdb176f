/* bench_analytic.c -- the infinite-width kernels (tn_ntk_analytic, NNGP
 * and NTK together) of convolutional networks, double, one thread:
 *
 *   1. the 21-layer CNN of the neural-tangents README's benchmark: 21 x
 *      (3x3 SAME convolution, ReLU), global average pooling, a dense
 *      readout, on 32 x 32 x 3 images.  Pooling makes every layer carry
 *      all pixel pairs (1024^2 per example pair), so the cost is quadratic
 *      in pixels.  Printed: seconds per kernel entry, wall and CPU (the
 *      process's CPU time: what a core spent, which a loaded machine does
 *      not inflate as it does wall time), beside neural-tangents' published
 *      112.9 ms per entry on 56 CPU cores (float32), i.e. 6.3 core-seconds.
 *      An entry is one example pair: n examples against themselves compute
 *      n (n + 1) / 2 of them (the kernel is symmetric), after one pass per
 *      example for its own variances, which the figure includes: an upper
 *      bound, by at most 2 / (n + 1) (22% at n = 8), of the cost per entry
 *      of a large kernel.
 *   2. CNN-THIN with a flatten readout (4 x (3x3 SAME convolution, ReLU),
 *      flatten, dense) on 28 x 28 x 1 images, N x N: no pooling, so only the
 *      pixel-aligned pairs (784 per example pair), linear in pixels.
 *      Printed: seconds and peak memory (the library's workspace peak,
 *      tn_ctx_get_memory, beside the outputs' 2 N^2 doubles).
 *
 *   bench_analytic [n_gap [N_thin [budget_MiB]]]     defaults 8, 1000, 1024
 *
 * Inputs are Gaussian images (the cost does not depend on their values).
 * It measures and prints; it asserts nothing about time. */
#include "benchutil.h"
#include "taylornet.h"

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

static tn_ctx *ctx;

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* layers x (3x3 SAME conv of C channels, ReLU), then GAP or flatten, dense 10. */
static tn_net *plain_cnn(size_t h, size_t w, size_t c, size_t layers, size_t C, int gap)
{
    const size_t shape[3] = {h, w, c};
    tn_net *net;
    CK(tn_net_create(ctx, shape, 3, &net));
    for (size_t l = 0; l < layers; l++) {
        CK(tn_net_add_conv2d(net, C, 3, 3, 1, TN_PAD_SAME));
        CK(tn_net_add_activation(net, TN_ACT_RELU));
    }
    CK(gap ? tn_net_add_global_avg_pool(net) : tn_net_add_flatten(net));
    CK(tn_net_add_dense(net, 10));
    CK(tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_NTK));
    CK(tn_net_init(net, 1));
    return net;
}

/* Standard normal entries (Box-Muller on a fixed LCG: reproducible inputs). */
static double *gaussian(size_t n, uint64_t seed)
{
    double *x = malloc(n * sizeof(double));
    if (x == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    uint64_t s = seed * 2862933555777941757u + 3037000493u;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        const double u1 = ((double)(s >> 11) + 0.5) * 0x1.0p-53;
        s = s * 6364136223846793005u + 1442695040888963407u;
        const double u2 = (double)(s >> 11) * 0x1.0p-53;
        x[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    }
    return x;
}

/* Kernels of n examples against themselves; wall and CPU seconds, peak bytes. */
static void run(tn_net *net, const double *x, size_t n, double budget, double *wall, double *cpu,
                size_t *peak)
{
    tn_ntk *k;
    double *K = malloc(n * n * sizeof(double)), *T = malloc(n * n * sizeof(double));
    if (K == NULL || T == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    CK(tn_ntk_create(net, &k));
    CK(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, budget));
    CK(tn_ctx_reset_peak_memory(ctx));
    const double w0 = bu_now(), c0 = cpu_now();
    CK(tn_ntk_analytic(k, x, n, NULL, 0, K, T));
    *wall = bu_now() - w0;
    *cpu = cpu_now() - c0;
    CK(tn_ctx_get_memory(ctx, NULL, peak));
    /* A kernel is only a result if it is one. */
    for (size_t e = 0; e < n * n; e++)
        if (!isfinite(K[e]) || !isfinite(T[e])) {
            fprintf(stderr, "non-finite kernel entry %zu\n", e);
            exit(1);
        }
    tn_ntk_free(k);
    free(K);
    free(T);
}

int main(int argc, char **argv)
{
    const size_t n_gap = argc > 1 ? (size_t)atol(argv[1]) : 8;
    const size_t n_thin = argc > 2 ? (size_t)atol(argv[2]) : 1000;
    const double budget = (argc > 3 ? atof(argv[3]) : 1024.0) * 1048576.0;
    if (n_gap == 0 || n_thin == 0 || !(budget > 0)) {
        fprintf(stderr, "usage: bench_analytic [n_gap [N_thin [budget_MiB]]]\n");
        return 2;
    }
    bu_print_blas();
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    CK(tn_ctx_set_threads(ctx, 1));
    printf("tn_ntk_analytic, NNGP and NTK together, double, one thread, budget %.0f MiB\n",
           budget / 1048576.0);

    /* 1. The 21-layer CNN with global average pooling on 32 x 32 x 3. */
    {
        tn_net *net = plain_cnn(32, 32, 3, 21, 8, 1);
        double *x = gaussian(n_gap * 32 * 32 * 3, 1);
        double wall, cpu;
        size_t peak;
        run(net, x, n_gap, budget, &wall, &cpu, &peak);
        const double entries = 0.5 * (double)n_gap * (double)(n_gap + 1);
        printf("\n21 x (conv 3x3 SAME, ReLU), GAP, dense; 32 x 32 x 3; %zu examples: %.0f "
               "entries (example pairs) in %.2f s wall, %.2f s CPU; library peak %.1f MiB\n",
               n_gap, entries, wall, cpu, (double)peak / 1048576.0);
        printf("  per entry (the %zu self passes included): %.3f s wall, %.3f core-s CPU   "
               "(neural-tangents README: 112.9 ms on 56 cores, float32 = 6.3 core-s; target "
               "<= 1 core-s)\n", n_gap,
               wall / entries, cpu / entries);
        free(x);
        tn_net_free(net);
    }

    /* 2. CNN-THIN with a flatten readout on 28 x 28 x 1, N x N. */
    {
        tn_net *net = plain_cnn(28, 28, 1, 4, 16, 0);
        double *x = gaussian(n_thin * 784, 2);
        double wall, cpu;
        size_t peak;
        run(net, x, n_thin, budget, &wall, &cpu, &peak);
        printf("\nCNN-THIN, flatten readout: 4 x (conv 3x3 SAME, ReLU), flatten, dense; 28 x 28 "
               "x 1; N = %zu: %.2f s wall, %.2f s CPU (%.1f us CPU per entry); library peak "
               "%.1f MiB, outputs %.1f MiB\n",
               n_thin, wall, cpu, 1e6 * cpu / (0.5 * (double)n_thin * (double)(n_thin + 1)),
               (double)peak / 1048576.0, 2.0 * (double)(n_thin * n_thin) * 8.0 / 1048576.0);
        free(x);
        tn_net_free(net);
    }
    tn_ctx_free(ctx);
    return 0;
}
