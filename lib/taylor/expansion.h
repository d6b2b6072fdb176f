/*
 * expansion.h -- a Taylor expansion of a network around a base point:
 * theta0, the order, the engine workspace and the cached order-0 blocks.
 * The public tn_taylor handle and the trainer's Taylor modes both run on
 * it, so caching and rebasing live in one place.
 *
 * f_k(theta) = sum_{j=0..k} (1/j!) D^j f(theta0)[Delta^j], Delta = theta - theta0,
 * evaluated by the engine at order k; its gradient in theta is the engine's
 * reverse mode at order k.  The order-0 blocks (f(theta0; x) and every
 * layer's base activations) are reused when the same batch comes back with
 * the same theta0 and order (core/batch_key.h checks this exactly).
 */
#ifndef TNI_EXPANSION_H
#define TNI_EXPANSION_H

#include "../core/batch_key.h"
#include "../kernel/series.h"
#include "../net/net.h"

typedef struct tni_expansion {
    tn_net *net;
    tn_ctx *ctx;
    size_t P, d, O;
    size_t order;
    double *theta0, *delta;
    uint64_t version;               /* bumped by rebase and by order changes */
    tni_tape *tape;
    tni_batch_key key;              /* what the tape's order-0 blocks hold */
    int last_cached;                /* the last forward reused the base (for tests) */
} tni_expansion;

/* theta0 = the net's parameters now.  The net must be initialized. */
tn_status tni_expansion_init(tni_expansion *e, tn_net *net, size_t order);
void tni_expansion_release(tni_expansion *e);
void tni_expansion_set_order(tni_expansion *e, size_t order);
void tni_expansion_rebase(tni_expansion *e, const double *theta0);

/* Taylor forward of f_k at theta for n rows of x (kept alive until
 * reverse).  The output coefficients are then tni_engine_output(e->tape). */
tn_status tni_expansion_forward(tni_expansion *e, const double *theta, const double *x, size_t n);
/* grad = d <cot, f_k> / d theta after tni_expansion_forward; accumulate 1
 * adds into grad. */
tn_status tni_expansion_reverse(tni_expansion *e, const double *cot, double *grad,
                                int accumulate);
/* Plain f(theta; x) on the same tape (order 0); the base cache is dropped. */
tn_status tni_expansion_plain_forward(tni_expansion *e, const double *theta, const double *x,
                                      size_t n);
tn_status tni_expansion_plain_reverse(tni_expansion *e, const double *theta, const double *cot,
                                      double *grad);

#endif
