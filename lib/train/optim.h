/*
 * optim.h -- the optimizers of torch.optim, update rules and defaults alike,
 * so a run compares one to one with PyTorch (docs/conventions.md):
 *   SGD:       g += wd theta; theta -= lr g
 *   momentum:  g += wd theta; b = g at the first step, else b = mu b + g;
 *              theta -= lr b                       (dampening 0)
 *   Nesterov:  as momentum, then theta -= lr (g + mu b)
 *   RMSProp:   g += wd theta; v = a v + (1 - a) g^2; d = sqrt(v) + eps;
 *              mu > 0: b = mu b + g / d, theta -= lr b; else theta -= lr g / d
 *   Adam:      g += wd theta; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2;
 *              theta -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The update is out of place: it reads theta and the state and writes new
 * arrays, so a failed step can be dropped without a trace.
 */
#ifndef TNI_OPTIM_H
#define TNI_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct tni_opt {
    int kind;                   /* TN_OPT_* */
    double lr, momentum, beta1, beta2, eps, weight_decay;
    uint64_t t;                 /* 1 for the first update since the state was reset */
} tni_opt;

/* How many state vectors of length P the optimizer keeps (0, 1 or 2). */
int tni_opt_state_count(const tni_opt *o);

/* What tni_opt_step found. */
enum { TNI_OPT_OK = 0, TNI_OPT_GRAD_NOT_FINITE = 1, TNI_OPT_OVERFLOW = 2 };

/* One optimizer step from a gradient, in one pass over the P parameters (two
 * when clipping is on): the Euclidean norm of grad (*gnorm); when clip > 0
 * and the norm exceeds it, the gradient scaled to norm clip; theta_new,
 * s0_new, s1_new from theta, that gradient, s0, s1 (state vectors may be
 * NULL when unused); and whether every value written is finite.  Returns
 * TNI_OPT_GRAD_NOT_FINITE (nothing meaningful written), TNI_OPT_OVERFLOW (a
 * value written is not finite) or TNI_OPT_OK.  grad is not modified.  The
 * work is cut into fixed blocks run on `threads` threads (kernel/parallel.h);
 * the results do not depend on the thread count. */
int tni_opt_step(const tni_opt *o, int threads, size_t P, double clip, const double *theta,
                 const double *grad, const double *s0, const double *s1, double *theta_new,
                 double *s0_new, double *s1_new, double *gnorm);

#endif
