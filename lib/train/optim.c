/* optim.c -- torch.optim update rules (optim.h). */
#include "optim.h"
#include "../core/core.h"
#include "../kernel/parallel.h"

#include <math.h>
#include <string.h>

int tni_opt_state_count(const tni_opt *o)
{
    switch (o->kind) {
    case TN_OPT_SGD: return 0;
    case TN_OPT_MOMENTUM:
    case TN_OPT_NESTEROV: return 1;
    case TN_OPT_RMSPROP: return 2;      /* square average, momentum buffer */
    default: return 2;                  /* Adam: first and second moments */
    }
}

/* One pass of the optimizer over fixed blocks of the parameters. */
typedef struct update_job {
    const tni_opt *o;
    size_t P, block;
    int update;                 /* 0: only the sum of squares */
    double gs, step, sqrt_bc2;  /* gradient scale; Adam's lr / bc1, sqrt(bc2) */
    const double *theta, *grad, *s0, *s1;
    double *theta_new, *s0_new, *s1_new;
    double *ss, *fz;            /* per block */
} update_job;

#define LANES 8

/* The sums each pass takes over a block [lo, hi): ss = sum of grad_i^2, and
 * fz = sum of v * 0 over every value v written (0, or NaN once one is not
 * finite).  Lane l takes the elements lo + l + 8 q, lane 0 also the tail
 * past the last multiple of 8, and the lanes are added in order, so the
 * result is the same whatever the vector width.  The lanes are a vector of
 * GCC's (and clang's) vector extension: each lane is its own IEEE sum, and
 * the compiler makes one AVX-512 operation of a lane step, two AVX2 or four
 * SSE2 ones.  (Eight scalar accumulators in an array, as this file once
 * had, GCC 12 vectorized through permutes and stack spills.) */
typedef double lanes __attribute__((vector_size(LANES * sizeof(double))));

static inline void add_squares(lanes *acc, const double *x, size_t n)
{
    size_t q = 0;
    for (; q + LANES <= n; q += LANES) {
        lanes v;
        memcpy(&v, x + q, sizeof v);
        *acc += v * v;
    }
    for (; q < n; q++) (*acc)[0] += x[q] * x[q];
}

static inline void add_times_zero(lanes *acc, const double *x, size_t n)
{
    size_t q = 0;
    for (; q + LANES <= n; q += LANES) {
        lanes v;
        memcpy(&v, x + q, sizeof v);
        *acc += v * 0.0;
    }
    for (; q < n; q++) (*acc)[0] += x[q] * 0.0;
}

/* The lanes added in order (a vector is passed by address: by value its
 * calling convention depends on the clone's instruction set). */
static inline double lanes_sum(const lanes *v)
{
    double s = 0.0;
    for (int l = 0; l < LANES; l++) s += (*v)[l];
    return s;
}

/* Elements per chunk: the update of a chunk, then its sums, which read the
 * chunk again from L1 (3 to 5 arrays of 4 KiB).  A multiple of LANES, so
 * the lanes see the elements as one pass over the block would. */
enum { CHUNK = 512 };

/* FUSED runs an update BODY (a statement on element i) over [lo, hi), chunk
 * by chunk, each chunk's loop followed by its sums over grad and over the
 * arrays written, the variadic arguments.  The update loop is a plain loop
 * over restrict parameters (below), which the compiler vectorizes; sqrt
 * vectorizes with -fno-math-errno (lib/meson.build).  Nothing is read from
 * memory twice (the sums read the chunk from L1): the update is bound by
 * memory, and the step's GEMMs leave none of it in cache. */
#define FUSED(BODY, ...)                                                              \
    do {                                                                              \
        lanes s_ = {0}, f_ = {0};                                                     \
        double *const w_[] = {__VA_ARGS__};                                           \
        for (size_t c_ = lo; c_ < hi; c_ += CHUNK) {                                  \
            const size_t e_ = hi - c_ < CHUNK ? hi : c_ + CHUNK;                      \
            for (size_t i = c_; i < e_; i++) BODY;                                    \
            add_squares(&s_, grad + c_, e_ - c_);                                     \
            for (size_t k_ = 0; k_ < sizeof w_ / sizeof w_[0]; k_++)                  \
                add_times_zero(&f_, w_[k_] + c_, e_ - c_);                            \
        }                                                                             \
        *ss = lanes_sum(&s_);                                                          \
        *fz = lanes_sum(&f_);                                                          \
    } while (0)

/* Every rule takes the arrays as restrict parameters.  GCC takes restrict
 * on a function's parameters as proof that the arrays are apart, but not on
 * pointers declared in its body: there it checks for overlap at run time,
 * and a perf profile of the step found mostly scalar code running.  With
 * these parameters and the vector lanes above, one update of 2.91 M
 * parameters (the step benchmark's MLP; one thread, cold caches) went from
 * 3.2 to 1.8 ms for SGD, 4.3 to 3.7 for momentum, 12.8 to 5.1 for RMSProp
 * and 14.2 to 5.0 for Adam, the same bits (test_parallel checks them
 * against direct loops).  A rule ignores the arrays it does not use. */
#define RULE_PARAMS                                                                         \
    const update_job *j, size_t lo, size_t hi, double *ss, double *fz,                      \
        const double *restrict theta, const double *restrict grad, const double *restrict s0, \
        const double *restrict s1, double *restrict tn, double *restrict s0n,               \
        double *restrict s1n

TNI_VECTOR_CLONES static void sums_range(RULE_PARAMS)
{
    (void)j; (void)theta; (void)s0; (void)s1; (void)tn; (void)s0n; (void)s1n;
    lanes s = {0};
    add_squares(&s, grad + lo, hi - lo);
    *ss = lanes_sum(&s);
    *fz = 0.0;
}

TNI_VECTOR_CLONES static void sgd_range(RULE_PARAMS)
{
    (void)s0; (void)s1; (void)s0n; (void)s1n;
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr;
    FUSED(tn[i] = theta[i] - lr * (gs * grad[i] + wd * theta[i]), tn);
}

TNI_VECTOR_CLONES static void momentum_range(RULE_PARAMS)
{
    (void)s1; (void)s1n;
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr, mu = j->o->momentum;
    /* b = g at the first step, else mu b + g; theta -= lr (g + mu b) for
     * Nesterov, lr b otherwise */
#define MOMENTUM(B, STEP)                                                     \
    FUSED(                                                                    \
        {                                                                     \
            const double g = gs * grad[i] + wd * theta[i];                    \
            const double b = (B);                                             \
            s0n[i] = b;                                                       \
            tn[i] = theta[i] - lr * (STEP);                                   \
        },                                                                    \
        tn, s0n)
    const int first = j->o->t == 1, nesterov = j->o->kind == TN_OPT_NESTEROV;
    if (first && nesterov)
        MOMENTUM(g, g + mu * b);
    else if (first)
        MOMENTUM(g, b);
    else if (nesterov)
        MOMENTUM(mu * s0[i] + g, g + mu * b);
    else
        MOMENTUM(mu * s0[i] + g, b);
#undef MOMENTUM
}

TNI_VECTOR_CLONES static void rmsprop_range(RULE_PARAMS)
{
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr, mu = j->o->momentum;
    const double al = j->o->beta2, eps = j->o->eps;
    if (mu > 0.0)
        FUSED(
            {
                const double g = gs * grad[i] + wd * theta[i];
                const double v = al * s0[i] + (1.0 - al) * g * g;
                const double b = mu * s1[i] + g / (sqrt(v) + eps);
                s0n[i] = v;
                s1n[i] = b;
                tn[i] = theta[i] - lr * b;
            },
            tn, s0n, s1n);
    else
        FUSED(
            {
                const double g = gs * grad[i] + wd * theta[i];
                const double v = al * s0[i] + (1.0 - al) * g * g;
                s0n[i] = v;
                s1n[i] = s1[i];
                tn[i] = theta[i] - lr * (g / (sqrt(v) + eps));
            },
            tn, s0n, s1n);
}

TNI_VECTOR_CLONES static void adam_range(RULE_PARAMS)
{
    const double gs = j->gs, wd = j->o->weight_decay, b2 = j->o->beta2, eps = j->o->eps;
    const double step = j->step, sqrt_bc2 = j->sqrt_bc2;
    /* torch's lerp_(g, 1 - b1), rounding included: m + w (g - m) for
     * w < 0.5, else g - (g - m)(1 - w) */
    const double w = 1.0 - j->o->beta1, wc = 1.0 - w;
#define ADAM(M)                                                                    \
    FUSED(                                                                         \
        {                                                                          \
            const double g = gs * grad[i] + wd * theta[i];                         \
            const double d = g - s0[i];                                            \
            const double m = (M);                                                  \
            const double v = b2 * s1[i] + (1.0 - b2) * g * g;                      \
            s0n[i] = m;                                                            \
            s1n[i] = v;                                                            \
            tn[i] = theta[i] - step * (m / (sqrt(v) / sqrt_bc2 + eps));            \
        },                                                                         \
        tn, s0n, s1n)
    if (w < 0.5)
        ADAM(s0[i] + w * d);
    else
        ADAM(g - d * wc);
#undef ADAM
}

static void update_block(void *arg, size_t b, double *scratch)
{
    (void)scratch;
    const update_job *j = arg;
    const size_t lo = b * j->block, hi = lo + j->block < j->P ? lo + j->block : j->P;
    void (*rule)(RULE_PARAMS);
    if (!j->update)
        rule = sums_range;
    else
        switch (j->o->kind) {
        case TN_OPT_SGD: rule = sgd_range; break;
        case TN_OPT_MOMENTUM:
        case TN_OPT_NESTEROV: rule = momentum_range; break;
        case TN_OPT_RMSPROP: rule = rmsprop_range; break;
        default: rule = adam_range; break;
        }
    rule(j, lo, hi, &j->ss[b], &j->fz[b], j->theta, j->grad, j->s0, j->s1, j->theta_new,
         j->s0_new, j->s1_new);
}

/* The norm without overflow or underflow, for the rare gradients whose
 * plain sum of squares leaves the range of double. */
static double scaled_norm(const double *v, size_t n)
{
    double scale = 0.0, ssq = 1.0;
    for (size_t i = 0; i < n; i++) {
        const double a = fabs(v[i]);
        if (a == 0.0) continue;
        if (scale < a) {
            ssq = 1.0 + ssq * (scale / a) * (scale / a);
            scale = a;
        } else {
            ssq += (a / scale) * (a / scale);
        }
    }
    return scale * sqrt(ssq);
}

enum { MAX_BLOCKS = 1024, MIN_BLOCK = 8192 };

/* Runs one pass; returns the sum of squares of grad, *finite whether every
 * value written is finite. */
static double pass(update_job *j, int threads, int *finite)
{
    double ss[MAX_BLOCKS], fz[MAX_BLOCKS];
    size_t block = (j->P + MAX_BLOCKS - 1) / MAX_BLOCKS;
    block = block < MIN_BLOCK ? MIN_BLOCK : (block + LANES - 1) / LANES * LANES;
    const size_t blocks = (j->P + block - 1) / block;
    j->block = block;
    j->ss = ss;
    j->fz = fz;
    tni_parallel(threads, blocks, update_block, j, NULL);
    double s = 0.0, f = 0.0;
    for (size_t b = 0; b < blocks; b++) {
        s += ss[b];
        f += fz[b];
    }
    *finite = isfinite(f);
    return s;
}

/* The norm from the sum of squares, or by the scaled loop when that sum
 * overflowed or underflowed; 0 if grad is not finite. */
static int norm_of(double ss, const double *grad, size_t P, double *gnorm)
{
    if (isfinite(ss) && !(ss > 0.0 && ss < 0x1p-900)) {
        *gnorm = sqrt(ss);
        return 1;
    }
    if (!tni_all_finite(grad, P)) return 0;
    *gnorm = scaled_norm(grad, P);
    return 1;
}

int tni_opt_step(const tni_opt *o, int threads, size_t P, double clip, const double *theta,
                 const double *grad, const double *s0, const double *s1, double *theta_new,
                 double *s0_new, double *s1_new, double *gnorm)
{
    update_job j = {o, P, 0, 0, 1.0, 0.0, 1.0, theta, grad, s0, s1, theta_new, s0_new, s1_new,
                    NULL, NULL};
    if (o->kind == TN_OPT_ADAM) {
        const double bc1 = 1.0 - pow(o->beta1, (double)o->t);
        const double bc2 = 1.0 - pow(o->beta2, (double)o->t);
        j.step = o->lr / bc1;
        j.sqrt_bc2 = sqrt(bc2);
    }
    int finite;
    if (clip > 0) {
        /* The norm first: it scales the update. */
        if (!norm_of(pass(&j, threads, &finite), grad, P, gnorm)) return TNI_OPT_GRAD_NOT_FINITE;
        if (*gnorm > clip) j.gs = clip / *gnorm;
        j.update = 1;
        pass(&j, threads, &finite);
    } else {
        j.update = 1;
        if (!norm_of(pass(&j, threads, &finite), grad, P, gnorm)) return TNI_OPT_GRAD_NOT_FINITE;
    }
    return finite ? TNI_OPT_OK : TNI_OPT_OVERFLOW;
}
