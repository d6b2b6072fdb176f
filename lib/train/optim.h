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
enum { TNI_OPT_OK = 0, TNI_OPT_GRAD_NOT_FINITE = 1, TNI_OPT_OVERFLOW = 2, TNI_OPT_REDO = 3 };

/* One optimizer step from a gradient, in one pass over the P parameters (two
 * when clipping is on): the Euclidean norm of grad (*gnorm); when clip > 0
 * and the norm exceeds it, the gradient scaled to norm clip; theta_new,
 * s0_new, s1_new from theta, that gradient, s0, s1 (state vectors may be
 * NULL when unused); and whether every value written is finite.  Returns
 * TNI_OPT_GRAD_NOT_FINITE (nothing meaningful written), TNI_OPT_OVERFLOW (a
 * value written is not finite) or TNI_OPT_OK.  The work is cut into fixed
 * blocks run on `threads` threads (kernel/parallel.h); the results do not
 * depend on the thread count.
 *
 * grad is not modified, unless theta_new is grad: then the new parameters
 * are written over the gradient, each element after it is read (the update
 * is bound by memory, and this spares it the reads that bring a fresh
 * output array into the cache: momentum moves 6 arrays instead of 7; on
 * the step benchmark's 2.91 M parameters, one thread, cold, 3.1-3.6 ms
 * became 2.35-2.7, SGD 1.7 -> 1.0-1.4, Adam 4.3 -> 3.6).
 * The results are the same bits.  Without clipping, the norm and the
 * finiteness of grad then come from the plain sum of squares alone; when
 * that sum is not finite or too small for the norm (the cases the scaled
 * loop serves), the gradient is gone: TNI_OPT_REDO, and the caller forms
 * the gradient again and calls with theta_new apart.  Nothing else is
 * written then either way, but s0_new and s1_new are garbage. */
int tni_opt_step(const tni_opt *o, int threads, size_t P, double clip, const double *theta,
                 const double *grad, const double *s0, const double *s1, double *theta_new,
                 double *s0_new, double *s1_new, double *gnorm);

#endif
