/* peer_ours.c -- the library's side of tests/bench/peer_torch.py: the same
 * workloads the script then times in PyTorch, printed as "key value" lines
 * for the script to read (seconds, best of reps, one thread):
 *
 *   info <tn_blas_info()>            the kernels, as every benchmark's first line
 *   kernel_set <name>                the set the library runs on ("skx")
 *   blis_arch_type <id>              its BLIS_ARCH_TYPE number, which the script
 *                                    sets for the PyTorch process
 *   dgemm_gflops <rate>              BLIS dgemm on the step's GEMM shapes
 *   step <s>                         full training step, MLP 784-1024-1024-1024-10,
 *                                    batch 256, softmax cross-entropy, SGD with
 *                                    momentum 0.9, lr 1e-3
 *   taylor_<act>_<k> <s>             f_k forward on that MLP (ReLU, tanh), batch
 *                                    256, theta = 1.01 theta0; k = 0: plain forward
 *   ntk_256 <s>                      traced NTK (STRUCTURED), MLP 784-512-512-512-10
 *                                    ReLU, N = 256, x2 = x1
 *
 * The inputs are the script's: x_i = sin(0.37 i) (NTK: 0.5 + 0.5 sin(0.37 i)),
 * one-hot labels i mod 10.
 *
 *   peer_ours [reps (5)] */
#include "benchutil.h"
#include "taylornet.h"

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

enum { B = 256, NTK_N = 256, MAX_ORDER = 6 };
static const size_t d = 784, widths[] = {1024, 1024, 1024, 10}, L = 4;
static tn_ctx *ctx;

static double step_seconds(const double *x, const double *y, int reps)
{
    tn_net *net = bu_mlp(ctx, d, widths, L, TN_ACT_RELU);
    tn_trainer *tr;
    CK(tn_trainer_create(net, &tr));
    CK(tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    CK(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_MOMENTUM));
    CK(tn_trainer_set(tr, TN_TRAIN_MOMENTUM, 0.9));
    CK(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-3));
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {   /* the first is the warm-up */
        const double t0 = bu_now();
        CK(tn_trainer_step(tr, x, y, B, NULL));
        const double t = bu_now() - t0;
        if (r > 0 && t < best) best = t;
    }
    tn_trainer_free(tr);
    tn_net_free(net);
    return best;
}

static void taylor_seconds(tn_activation act, const char *name, const double *x, int reps)
{
    tn_net *net = bu_mlp(ctx, d, widths, L, act);
    const size_t P = tn_net_num_params(net);
    double *theta = malloc(P * sizeof(double)), *y = malloc(B * 10 * sizeof(double));
    CK(tn_net_get_params(net, theta, P));
    for (size_t i = 0; i < P; i++) theta[i] *= 1.01;   /* Delta = 0.01 theta0 */
    for (int k = 0; k <= MAX_ORDER; k++) {
        tn_taylor *t = NULL;
        if (k > 0) CK(tn_taylor_create(net, k, &t));
        double best = 1e30;
        for (int r = 0; r < reps + 1; r++) {
            const double t0 = bu_now();
            if (k > 0)
                CK(tn_taylor_forward(t, theta, x, B, y));
            else
                CK(tn_net_forward(net, x, B, y));
            const double dt = bu_now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        printf("taylor_%s_%d %.6e\n", name, k, best);
        tn_taylor_free(t);
    }
    free(theta);
    free(y);
    tn_net_free(net);
}

static double ntk_seconds(int reps)
{
    const size_t nw[] = {512, 512, 512, 10};
    tn_net *net = bu_mlp(ctx, d, nw, 4, TN_ACT_RELU);
    tn_ntk *k;
    CK(tn_ntk_create(net, &k));
    CK(tn_ntk_set(k, TN_NTK_METHOD, TN_NTK_STRUCTURED));
    double *x = malloc(NTK_N * d * sizeof(double)), *K = malloc(NTK_N * NTK_N * sizeof(double));
    for (size_t i = 0; i < NTK_N * d; i++) x[i] = 0.5 + 0.5 * sin(0.37 * (double)i);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        const double t0 = bu_now();
        CK(tn_ntk_compute(k, x, NTK_N, NULL, 0, K));
        const double t = bu_now() - t0;
        if (r > 0 && t < best) best = t;
    }
    free(x);
    free(K);
    tn_ntk_free(k);
    tn_net_free(net);
    return best;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    printf("info %s\n", tn_blas_info());
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    CK(tn_ctx_set_threads(ctx, 1));
    const char *set = tni_kernels_name();
    int arch = -1;
    for (int id = 0; id < BLIS_NUM_ARCHS; id++)
        if (strcmp(bli_arch_string((arch_t)id), set) == 0) arch = id;
    printf("kernel_set %s\nblis_arch_type %d\n", set, arch);

    bu_gemm g[3 * 4];
    const size_t ng = bu_mlp_step_gemms(g, B, d, widths, L);
    printf("dgemm_gflops %.3f\n", bu_flops(g, ng) / bu_gemm_seconds(g, ng, 1, reps) * 1e-9);

    double *x = malloc(B * d * sizeof(double)), *y = calloc(B * 10, sizeof(double));
    for (size_t i = 0; i < B * d; i++) x[i] = sin(0.37 * (double)i);
    for (size_t i = 0; i < B; i++) y[i * 10 + i % 10] = 1.0;
    printf("step %.6e\n", step_seconds(x, y, reps));
    taylor_seconds(TN_ACT_RELU, "relu", x, reps);
    taylor_seconds(TN_ACT_TANH, "tanh", x, reps);
    printf("ntk_256 %.6e\n", ntk_seconds(reps));
    free(x);
    free(y);
    tn_ctx_free(ctx);
    return 0;
}
