/* bench_taylor.c -- the cost of Taylor-mode training and evaluation on a
 * 784-1024-1024-1024-10 MLP at batch 256, double, one thread:
 *   1. a training step at orders 1..4 against a full step, with a new batch
 *      every step (no cache); target order k <= (5k+2)/3 full steps;
 *   2. linearized training on a fixed batch (order-0 blocks cached); target
 *      <= 1.33 full steps;
 *   (order-k steps alternate with full steps of a second trainer, three of
 *   each per round, and each side's best time is kept;)
 *   3. the f_k forward for k = 1..8 against a plain forward, beside what
 *      nested forward mode (2^k passes) would cost.
 * For ReLU the engine skips the blocks that vanish above each layer's depth;
 * tanh shows the cost when every order is populated.  The BLIS dgemm rate
 * on the full step's shapes is measured in the same run. */
#include "benchutil.h"
#include "taylornet.h"

#include <math.h>
#include <string.h>

#define CK(expr) BU_CK(ctx, expr)

enum { B = 256, NB = 3 };
static const size_t d = 784, widths[] = {1024, 1024, 1024, 10}, L = 4;
static tn_ctx *ctx;
static double *xs[NB], *ys[NB];

static tn_trainer *trainer(tn_net *net, int order)
{
    tn_trainer *tr;
    CK(tn_trainer_create(net, &tr));
    CK(tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    CK(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_MOMENTUM));
    CK(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-4));
    CK(tn_trainer_set(tr, TN_TRAIN_ORDER, order));
    CK(tn_trainer_step(tr, xs[0], ys[0], B, NULL));     /* warm-up: workspaces, pages */
    return tr;
}

/* The best step time of an order-k trainer and of a full one, over reps
 * rounds of three steps back to back of each (as training runs them: a
 * step finds some of the last one's data in the cache): on a shared
 * machine whose speed drifts over seconds, the two are then timed on the
 * same machine.  Batches rotate unless `fixed`. */
static void step_times(tn_net *net, int order, int fixed, int reps, double *full, double *k)
{
    enum { GROUP = 3 };
    tn_trainer *tf = trainer(net, 0), *tk = trainer(net, order);
    *full = *k = 1e30;
    for (int r = 0; r < reps; r++)
        for (int side = 0; side < 2; side++)
            for (int s = 0; s < GROUP; s++) {
                const int b = fixed ? 0 : (GROUP * r + s + 1) % NB;
                const double t0 = bu_now();
                CK(tn_trainer_step(side ? tk : tf, xs[b], ys[b], B, NULL));
                const double t = bu_now() - t0;
                double *best = side ? k : full;
                if (t < *best) *best = t;
            }
    tn_trainer_free(tf);
    tn_trainer_free(tk);
}

static double forward_time(tn_net *net, int order, int reps)
{
    double *y = malloc(B * 10 * sizeof(double));
    tn_taylor *t = NULL;
    const size_t P = tn_net_num_params(net);
    double *theta = malloc(P * sizeof(double));
    CK(tn_net_get_params(net, theta, P));
    for (size_t i = 0; i < P; i++) theta[i] *= 1.01;   /* Delta != 0 */
    if (order > 0) CK(tn_taylor_create(net, order, &t));
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        const int b = r % NB;   /* a new batch each time: no cache */
        const double t0 = bu_now();
        if (order > 0)
            CK(tn_taylor_forward(t, theta, xs[b], B, y));
        else
            CK(tn_net_forward(net, xs[b], B, y));
        const double dt = bu_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    tn_taylor_free(t);
    free(theta);
    free(y);
    return best;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines appear as they are measured */
    bu_print_blas();
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    for (int b = 0; b < NB; b++) {
        xs[b] = malloc(B * d * sizeof(double));
        ys[b] = calloc(B * 10, sizeof(double));
        for (size_t i = 0; i < B * d; i++) xs[b][i] = sin(0.37 * (double)i + b);
        for (size_t i = 0; i < B; i++) ys[b][i * 10 + (i + b) % 10] = 1.0;
    }
    bu_gemm g[12];
    const size_t ng = bu_mlp_step_gemms(g, B, d, widths, L);
    const double flops = bu_flops(g, ng), gemm = bu_gemm_seconds(g, ng, 1, reps);

    printf("Taylor-mode training, MLP 784-1024-1024-1024-10, batch %d, double, 1 thread\n", B);
    printf("BLIS dgemm on the full step's shapes: %.2f GFLOP/s\n\n", flops / gemm * 1e-9);
    const tn_activation acts[] = {TN_ACT_RELU, TN_ACT_TANH};
    for (int a = 0; a < 2; a++) {
        tn_net *net = bu_mlp(ctx, d, widths, L, acts[a]);
        printf("%s (order-k and full steps timed in turns, %d rounds of 3 each, best)\n",
               acts[a] == TN_ACT_RELU ? "ReLU" : "tanh", reps);
        printf("  %-28s %10s %10s %12s %12s\n", "step", "ms", "full ms", "x full", "target x");
        for (int k = 1; k <= 5; k++) {
            const int cached = k == 5;  /* last: linearized on a fixed batch */
            double full, t;
            step_times(net, cached ? 1 : k, cached, reps, &full, &t);
            if (k == 1)
                printf("  full step %.1f ms: %.2f GFLOP/s, %.0f%% of dgemm\n", full * 1e3,
                       flops / full * 1e-9, 100 * gemm / full);
            if (cached)
                printf("  order 1, same batch (cached) %10.1f %10.1f %12.2f %12.2f\n", t * 1e3,
                       full * 1e3, t / full, 1.33);
            else
                printf("  order %d, new batch each step %10.1f %10.1f %12.2f %12.2f\n", k,
                       t * 1e3, full * 1e3, t / full, (5 * k + 2) / 3.0);
        }
        const double f0 = forward_time(net, 0, reps);
        printf("  %-28s %10s %12s %12s\n", "f_k forward", "ms", "x forward", "nested 2^k");
        printf("  plain forward                %10.1f %12.2f %12s\n", f0 * 1e3, 1.0, "1");
        for (int k = 1; k <= 8; k++) {
            const double t = forward_time(net, k, reps);
            printf("  k = %d                        %10.1f %12.2f %12d\n", k, t * 1e3, t / f0,
                   1 << k);
        }
        printf("\n");
        tn_net_free(net);
    }
    for (int b = 0; b < NB; b++) free(xs[b]), free(ys[b]);
    tn_ctx_free(ctx);
    return 0;
}
