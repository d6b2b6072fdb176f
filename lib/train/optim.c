/* optim.c -- torch.optim update rules (optim.h). */
#include "optim.h"
#include "../core/core.h"
#include "../kernel/parallel.h"

#include <math.h>

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
 * result is the same whatever the vector width.
 *
 * FUSED runs an update BODY (a statement on element i) with the sums in the
 * same loop: the lane arrays are independent accumulators, so the compiler
 * vectorizes the lane loop without reordering any sum, and nothing is read
 * back after it is written.  (Reading the block back for the sums, as this
 * file once did, was a quarter of the update's time: the update is bound
 * by memory, and the step's GEMMs leave none of it in cache.)  The loops
 * keep every setting in a local and every array behind restrict, and sqrt
 * vectorizes with -fno-math-errno (lib/meson.build). */
#define FUSED(BODY, WRITTEN_TIMES_0)                                                  \
    do {                                                                              \
        double s_[LANES] = {0}, f_[LANES] = {0};                                      \
        size_t q_ = lo;                                                               \
        for (; q_ + LANES <= hi; q_ += LANES)                                         \
            for (size_t l_ = 0; l_ < LANES; l_++) {                                   \
                const size_t i = q_ + l_;                                             \
                BODY;                                                                 \
                s_[l_] += grad[i] * grad[i];                                          \
                f_[l_] += WRITTEN_TIMES_0;                                            \
            }                                                                         \
        for (size_t i = q_; i < hi; i++) {                                            \
            BODY;                                                                     \
            s_[0] += grad[i] * grad[i];                                               \
            f_[0] += WRITTEN_TIMES_0;                                                 \
        }                                                                             \
        double a_ = 0.0, b_ = 0.0;                                                    \
        for (size_t l_ = 0; l_ < LANES; l_++) {                                       \
            a_ += s_[l_];                                                             \
            b_ += f_[l_];                                                             \
        }                                                                             \
        *ss = a_;                                                                     \
        *fz = b_;                                                                     \
    } while (0)

TNI_VECTOR_CLONES static void sums_range(const update_job *j, size_t lo, size_t hi, double *ss,
                                         double *fz)
{
    const double *restrict grad = j->grad;
    FUSED((void)0, 0.0);
}

TNI_VECTOR_CLONES static void sgd_range(const update_job *j, size_t lo, size_t hi, double *ss,
                                        double *fz)
{
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr;
    const double *restrict theta = j->theta, *restrict grad = j->grad;
    double *restrict tn = j->theta_new;
    FUSED(tn[i] = theta[i] - lr * (gs * grad[i] + wd * theta[i]), tn[i] * 0.0);
}

TNI_VECTOR_CLONES static void momentum_range(const update_job *j, size_t lo, size_t hi,
                                             double *ss, double *fz)
{
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr, mu = j->o->momentum;
    const double *restrict theta = j->theta, *restrict grad = j->grad, *restrict s0 = j->s0;
    double *restrict tn = j->theta_new, *restrict s0n = j->s0_new;
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
        tn[i] * 0.0 + s0n[i] * 0.0)
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

TNI_VECTOR_CLONES static void rmsprop_range(const update_job *j, size_t lo, size_t hi,
                                            double *ss, double *fz)
{
    const double gs = j->gs, wd = j->o->weight_decay, lr = j->o->lr, mu = j->o->momentum;
    const double al = j->o->beta2, eps = j->o->eps;
    const double *restrict theta = j->theta, *restrict grad = j->grad, *restrict s0 = j->s0;
    const double *restrict s1 = j->s1;
    double *restrict tn = j->theta_new, *restrict s0n = j->s0_new, *restrict s1n = j->s1_new;
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
            tn[i] * 0.0 + s0n[i] * 0.0 + s1n[i] * 0.0);
    else
        FUSED(
            {
                const double g = gs * grad[i] + wd * theta[i];
                const double v = al * s0[i] + (1.0 - al) * g * g;
                s0n[i] = v;
                s1n[i] = s1[i];
                tn[i] = theta[i] - lr * (g / (sqrt(v) + eps));
            },
            tn[i] * 0.0 + s0n[i] * 0.0 + s1n[i] * 0.0);
}

TNI_VECTOR_CLONES static void adam_range(const update_job *j, size_t lo, size_t hi, double *ss,
                                         double *fz)
{
    const double gs = j->gs, wd = j->o->weight_decay, b2 = j->o->beta2, eps = j->o->eps;
    const double step = j->step, sqrt_bc2 = j->sqrt_bc2;
    /* torch's lerp_(g, 1 - b1), rounding included: m + w (g - m) for
     * w < 0.5, else g - (g - m)(1 - w) */
    const double w = 1.0 - j->o->beta1, wc = 1.0 - w;
    const double *restrict theta = j->theta, *restrict grad = j->grad, *restrict s0 = j->s0;
    const double *restrict s1 = j->s1;
    double *restrict tn = j->theta_new, *restrict s0n = j->s0_new, *restrict s1n = j->s1_new;
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
        tn[i] * 0.0 + s0n[i] * 0.0 + s1n[i] * 0.0)
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
    double *ss = &j->ss[b], *fz = &j->fz[b];
    if (!j->update) {
        sums_range(j, lo, hi, ss, fz);
        return;
    }
    switch (j->o->kind) {
    case TN_OPT_SGD: sgd_range(j, lo, hi, ss, fz); break;
    case TN_OPT_MOMENTUM:
    case TN_OPT_NESTEROV: momentum_range(j, lo, hi, ss, fz); break;
    case TN_OPT_RMSPROP: rmsprop_range(j, lo, hi, ss, fz); break;
    default: adam_range(j, lo, hi, ss, fz); break;
    }
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
