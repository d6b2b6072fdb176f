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
    struct block_sums *sums;    /* per block */
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
typedef uint64_t bit_lanes __attribute__((vector_size(LANES * sizeof(uint64_t))));

/* What a pass finds in a block: ss, fz (above) and nz, nonzero iff some
 * grad_i is: a sum of squares of 0 is then an underflow, not a zero
 * gradient. */
typedef struct block_sums {
    double ss, fz;
    uint64_t nz;
} block_sums;

/* acc += x_i^2 and nz |= the bits of |x_i|, lane by lane. */
static inline void add_squares(lanes *acc, bit_lanes *nz, const double *x, size_t n)
{
    const uint64_t magnitude = ~((uint64_t)1 << 63);
    size_t q = 0;
    for (; q + LANES <= n; q += LANES) {
        lanes v;
        bit_lanes b;
        memcpy(&v, x + q, sizeof v);
        memcpy(&b, x + q, sizeof b);
        *acc += v * v;
        *nz |= b & magnitude;
    }
    for (; q < n; q++) {
        uint64_t b;
        memcpy(&b, x + q, sizeof b);
        (*acc)[0] += x[q] * x[q];
        (*nz)[0] |= b & magnitude;
    }
}

static inline uint64_t bit_lanes_or(const bit_lanes *v)
{
    uint64_t r = 0;
    for (int l = 0; l < LANES; l++) r |= (*v)[l];
    return r;
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
 * by chunk: the chunk's sum over grad, then its update loop, then its sums
 * over the arrays written, the variadic arguments.  (grad first: the new
 * parameters may be written over it, below.)  The update loop is a plain
 * loop over restrict parameters (below), which the compiler vectorizes;
 * sqrt vectorizes with -fno-math-errno (lib/meson.build).  Nothing is read
 * from memory twice (the sums read the chunk from L1): the update is bound
 * by memory, and the step's GEMMs leave none of it in cache. */
#define FUSED(BODY, ...)                                                              \
    do {                                                                              \
        lanes s_ = {0}, f_ = {0};                                                     \
        bit_lanes n_ = {0};                                                           \
        double *const w_[] = {__VA_ARGS__};                                           \
        for (size_t c_ = lo; c_ < hi; c_ += CHUNK) {                                  \
            const size_t e_ = hi - c_ < CHUNK ? hi : c_ + CHUNK;                      \
            add_squares(&s_, &n_, grad + c_, e_ - c_);                                \
            for (size_t i = c_; i < e_; i++) BODY;                                    \
            for (size_t k_ = 0; k_ < sizeof w_ / sizeof w_[0]; k_++)                  \
                add_times_zero(&f_, w_[k_] + c_, e_ - c_);                            \
        }                                                                             \
        out->ss = lanes_sum(&s_);                                                     \
        out->fz = lanes_sum(&f_);                                                     \
        out->nz = bit_lanes_or(&n_);                                                  \
    } while (0)

/* A rule's body reads theta, grad and the state s0, s1 and writes the new
 * parameters tn and state s0n, s1n (ignoring the arrays it does not use).
 * It is inlined into two functions (RULE below) whose parameters say
 * what may overlap: GCC takes restrict on a function's parameters as proof
 * that the arrays are apart, but not on pointers declared in its body:
 * there it checks for overlap at run time, and a perf profile of the step
 * found mostly scalar code running.  With restrict parameters and the
 * vector lanes above, one update of 2.91 M parameters (the step
 * benchmark's MLP; one thread, cold caches) went from 3.2 to 1.8 ms for
 * SGD, 4.3 to 3.7 for momentum, 12.8 to 5.1 for RMSProp and 14.2 to 5.0 for
 * Adam, the same bits (test_parallel checks them against direct loops). */
#if defined(__GNUC__)
#define BODY_INLINE static inline __attribute__((always_inline))
#else
#define BODY_INLINE static inline
#endif
#define BODY_PARAMS                                                                       \
    const update_job *j, size_t lo, size_t hi, block_sums *out,                           \
        const double *theta, const double *grad, const double *s0, const double *s1,      \
        double *tn, double *s0n, double *s1n

BODY_INLINE void sgd_body(BODY_PARAMS)
{
    (void)s0; (void)s1; (void)s0n; (void)s1n;
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr;
    FUSED(tn[i] = theta[i] - lr * (gs * grad[i] + wd * theta[i]), tn);
}

BODY_INLINE void momentum_body(BODY_PARAMS)
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

BODY_INLINE void rmsprop_body(BODY_PARAMS)
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

BODY_INLINE void adam_body(BODY_PARAMS)
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

/* Each rule twice: name_apart, every array apart; name_over, the new
 * parameters written over the gradient (gt), element by element after it
 * is read: one array less to bring into the cache, since the gradient's
 * lines are there already (tni_opt_step). */
#define APART_PARAMS                                                                      \
    const update_job *j, size_t lo, size_t hi, block_sums *out,                           \
        const double *restrict theta, const double *restrict grad, const double *restrict s0, \
        const double *restrict s1, double *restrict tn, double *restrict s0n,             \
        double *restrict s1n
#define OVER_PARAMS                                                                       \
    const update_job *j, size_t lo, size_t hi, block_sums *out,                           \
        const double *restrict theta, double *restrict gt, const double *restrict s0,     \
        const double *restrict s1, double *restrict s0n, double *restrict s1n
#define RULE(name)                                                                        \
    TNI_VECTOR_CLONES static void name##_apart(APART_PARAMS)                              \
    {                                                                                     \
        name##_body(j, lo, hi, out, theta, grad, s0, s1, tn, s0n, s1n);                   \
    }                                                                                     \
    TNI_VECTOR_CLONES static void name##_over(OVER_PARAMS)                                \
    {                                                                                     \
        name##_body(j, lo, hi, out, theta, gt, s0, s1, gt, s0n, s1n);                     \
    }
RULE(sgd)
RULE(momentum)
RULE(rmsprop)
RULE(adam)
#undef RULE

/* The sums alone (the norm pass before a clipped update): nothing written. */
TNI_VECTOR_CLONES static void sums_range(const double *grad, size_t lo, size_t hi,
                                         block_sums *out)
{
    lanes s = {0};
    bit_lanes n = {0};
    add_squares(&s, &n, grad + lo, hi - lo);
    out->ss = lanes_sum(&s);
    out->fz = 0.0;
    out->nz = bit_lanes_or(&n);
}

static void update_block(void *arg, size_t b, double *scratch)
{
    (void)scratch;
    const update_job *j = arg;
    const size_t lo = b * j->block, hi = lo + j->block < j->P ? lo + j->block : j->P;
    /* by kind (TN_OPT_* are 0..4, fixed by the API) */
    _Static_assert(TN_OPT_SGD == 0 && TN_OPT_MOMENTUM == 1 && TN_OPT_NESTEROV == 2 &&
                       TN_OPT_RMSPROP == 3 && TN_OPT_ADAM == 4,
                   "rule tables are indexed by TN_OPT_*");
    static void (*const apart[])(APART_PARAMS) = {sgd_apart, momentum_apart, momentum_apart,
                                                  rmsprop_apart, adam_apart};
    static void (*const over[])(OVER_PARAMS) = {sgd_over, momentum_over, momentum_over,
                                                rmsprop_over, adam_over};
    block_sums *out = &j->sums[b];
    if (!j->update)
        sums_range(j->grad, lo, hi, out);
    else if (j->theta_new == j->grad)
        over[j->o->kind](j, lo, hi, out, j->theta, j->theta_new, j->s0, j->s1, j->s0_new,
                         j->s1_new);
    else
        apart[j->o->kind](j, lo, hi, out, j->theta, j->grad, j->s0, j->s1, j->theta_new,
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

/* What a pass found: the sum of squares of grad, whether some grad_i is
 * nonzero, whether every value written is finite. */
typedef struct pass_sums {
    double ss;
    int nonzero, finite;
} pass_sums;

static pass_sums pass(update_job *j, int threads)
{
    block_sums sums[MAX_BLOCKS];
    size_t block = (j->P + MAX_BLOCKS - 1) / MAX_BLOCKS;
    block = block < MIN_BLOCK ? MIN_BLOCK : (block + LANES - 1) / LANES * LANES;
    const size_t blocks = (j->P + block - 1) / block;
    j->block = block;
    j->sums = sums;
    tni_parallel(threads, blocks, update_block, j, NULL);
    double s = 0.0, f = 0.0;
    uint64_t nz = 0;
    for (size_t b = 0; b < blocks; b++) {
        s += sums[b].ss;
        f += sums[b].fz;
        nz |= sums[b].nz;
    }
    return (pass_sums){s, nz != 0, isfinite(f)};
}

/* Whether the norm is sqrt(ss): ss finite, and not an underflow (a gradient
 * whose squares fall below 2^-900 or all the way to 0). */
static int in_range(pass_sums p)
{
    return isfinite(p.ss) && !(p.nonzero && p.ss < 0x1p-900);
}

/* The norm from the sum of squares, or by the scaled loop when that sum
 * overflowed or underflowed; 0 if grad is not finite. */
static int norm_of(pass_sums p, const double *grad, size_t P, double *gnorm)
{
    if (in_range(p)) {
        *gnorm = sqrt(p.ss);
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
                    NULL};
    if (o->kind == TN_OPT_ADAM) {
        const double bc1 = 1.0 - pow(o->beta1, (double)o->t);
        const double bc2 = 1.0 - pow(o->beta2, (double)o->t);
        j.step = o->lr / bc1;
        j.sqrt_bc2 = sqrt(bc2);
    }
    pass_sums p;
    if (clip > 0) {
        /* The norm first: it scales the update. */
        if (!norm_of(pass(&j, threads), grad, P, gnorm)) return TNI_OPT_GRAD_NOT_FINITE;
        if (*gnorm > clip) j.gs = clip / *gnorm;
        j.update = 1;
        p = pass(&j, threads);
    } else {
        j.update = 1;
        p = pass(&j, threads);
        /* Over the gradient, a sum of squares out of range (a gradient not
         * finite, or a norm for the scaled loop) cannot be looked into. */
        if (theta_new == grad && !in_range(p)) return TNI_OPT_REDO;
        if (!norm_of(p, grad, P, gnorm)) return TNI_OPT_GRAD_NOT_FINITE;
    }
    return p.finite ? TNI_OPT_OK : TNI_OPT_OVERFLOW;
}
