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

/* The update of each kind, element i, with gradient scale gs: writes the
 * new values, adds grad_i^2 to *ss and 0 (or NaN, for a value written that
 * is not finite) to *fz. */
typedef struct update_job {
    const tni_opt *o;
    size_t P, block;
    int update;                 /* 0: only the sum of squares */
    double gs, step, sqrt_bc2;  /* gradient scale; Adam's lr / bc1, sqrt(bc2) */
    const double *theta, *grad, *s0, *s1;
    double *theta_new, *s0_new, *s1_new;
    double *ss, *fz;            /* per block */
} update_job;

static inline void sgd1(const update_job *j, size_t i, double *ss, double *fz)
{
    const double gi = j->grad[i], g = j->gs * gi + j->o->weight_decay * j->theta[i];
    const double t = j->theta[i] - j->o->lr * g;
    j->theta_new[i] = t;
    *ss += gi * gi;
    *fz += t * 0.0;
}

static inline void momentum1(const update_job *j, size_t i, double *ss, double *fz)
{
    const double mu = j->o->momentum;
    const double gi = j->grad[i], g = j->gs * gi + j->o->weight_decay * j->theta[i];
    const double b = j->o->t == 1 ? g : mu * j->s0[i] + g;
    const double t = j->theta[i] - j->o->lr * (j->o->kind == TN_OPT_NESTEROV ? g + mu * b : b);
    j->s0_new[i] = b;
    j->theta_new[i] = t;
    *ss += gi * gi;
    *fz += t * 0.0 + b * 0.0;
}

static inline void rmsprop1(const update_job *j, size_t i, double *ss, double *fz)
{
    const double a = j->o->beta2, mu = j->o->momentum;
    const double gi = j->grad[i], g = j->gs * gi + j->o->weight_decay * j->theta[i];
    const double v = a * j->s0[i] + (1.0 - a) * g * g;
    const double d = sqrt(v) + j->o->eps;
    double b, t;
    if (mu > 0.0) {
        b = mu * j->s1[i] + g / d;
        t = j->theta[i] - j->o->lr * b;
    } else {
        b = j->s1[i];
        t = j->theta[i] - j->o->lr * (g / d);
    }
    j->s0_new[i] = v;
    j->s1_new[i] = b;
    j->theta_new[i] = t;
    *ss += gi * gi;
    *fz += t * 0.0 + v * 0.0 + b * 0.0;
}

static inline void adam1(const update_job *j, size_t i, double *ss, double *fz)
{
    const double b1 = j->o->beta1, b2 = j->o->beta2;
    const double gi = j->grad[i], g = j->gs * gi + j->o->weight_decay * j->theta[i];
    /* torch's lerp_(g, 1 - b1), rounding included */
    const double w = 1.0 - b1, s0 = j->s0[i];
    const double m = w < 0.5 ? s0 + w * (g - s0) : g - (g - s0) * (1.0 - w);
    const double v = b2 * j->s1[i] + (1.0 - b2) * g * g;
    const double t = j->theta[i] - j->step * (m / (sqrt(v) / j->sqrt_bc2 + j->o->eps));
    j->s0_new[i] = m;
    j->s1_new[i] = v;
    j->theta_new[i] = t;
    *ss += gi * gi;
    *fz += t * 0.0 + m * 0.0 + v * 0.0;
}

static inline void sumsq1(const update_job *j, size_t i, double *ss, double *fz)
{
    (void)fz;
    *ss += j->grad[i] * j->grad[i];
}

/* Eight independent lanes, so the compiler may vectorize the body; the
 * lanes are summed in a fixed order, whatever the thread count. */
#define LANES 8
#define OVER_BLOCK(one)                                                             \
    do {                                                                            \
        size_t i = lo;                                                              \
        for (; i + LANES <= hi; i += LANES)                                         \
            for (size_t l = 0; l < LANES; l++) one(j, i + l, &ss[l], &fz[l]);       \
        for (; i < hi; i++) one(j, i, &ss[0], &fz[0]);                              \
    } while (0)

static void update_block(void *arg, size_t b, double *scratch)
{
    (void)scratch;
    const update_job *j = arg;
    const size_t lo = b * j->block, hi = lo + j->block < j->P ? lo + j->block : j->P;
    double ss[LANES] = {0}, fz[LANES] = {0};
    if (!j->update)
        OVER_BLOCK(sumsq1);
    else if (j->o->kind == TN_OPT_SGD)
        OVER_BLOCK(sgd1);
    else if (j->o->kind == TN_OPT_MOMENTUM || j->o->kind == TN_OPT_NESTEROV)
        OVER_BLOCK(momentum1);
    else if (j->o->kind == TN_OPT_RMSPROP)
        OVER_BLOCK(rmsprop1);
    else
        OVER_BLOCK(adam1);
    double s = 0.0, f = 0.0;
    for (size_t l = 0; l < LANES; l++) {
        s += ss[l];
        f += fz[l];
    }
    j->ss[b] = s;
    j->fz[b] = f;
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
