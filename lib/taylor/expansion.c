/* expansion.c -- Taylor expansion around a base point (expansion.h). */
#include "expansion.h"

#include <string.h>

tn_status tni_expansion_init(tni_expansion *e, tn_net *net, size_t order)
{
    memset(e, 0, sizeof *e);
    e->net = net;
    e->ctx = tni_net_ctx(net);
    e->P = tni_net_num_params(net);
    e->d = tni_net_input_size(net);
    e->O = tni_net_output_dim(net);
    e->order = order;
    e->theta0 = tni_alloc(e->ctx, e->P, sizeof(double));
    e->delta = tni_alloc(e->ctx, e->P, sizeof(double));
    tn_status st = e->theta0 && e->delta
                       ? tni_tape_create(e->ctx, tni_net_graph(net), &e->tape)
                       : tni_fail(e->ctx, TN_E_NOMEM, "out of memory for %zu parameters", e->P);
    if (st != TN_OK) {
        tni_expansion_release(e);
        return st;
    }
    memcpy(e->theta0, tni_net_theta(net), e->P * sizeof(double));
    return TN_OK;
}

void tni_expansion_release(tni_expansion *e)
{
    tni_free(e->theta0);
    tni_free(e->delta);
    tni_tape_free(e->tape);
    tni_batch_key_free(&e->key);
    memset(e, 0, sizeof *e);
}

void tni_expansion_set_order(tni_expansion *e, size_t order)
{
    e->order = order;
    e->version++;
}

void tni_expansion_rebase(tni_expansion *e, const double *theta0)
{
    memmove(e->theta0, theta0, e->P * sizeof(double));
    e->version++;
}

tn_status tni_expansion_forward(tni_expansion *e, const double *theta, const double *x, size_t n)
{
    for (size_t i = 0; i < e->P; i++) e->delta[i] = theta[i] - e->theta0[i];
    const int cached = tni_batch_key_matches(&e->key, x, n, e->d, e->version);
    const unsigned flags = TNI_KEEP_BASE | (cached ? TNI_BASE_CACHED : 0u);
    tn_status st = tni_engine_forward(e->tape, e->theta0, e->delta, e->order, x, n, flags);
    if (st != TN_OK) {
        tni_batch_key_clear(&e->key);
        return st;
    }
    if (!cached) tni_batch_key_record(e->ctx, &e->key, x, n, e->d, e->version);
    e->last_cached = cached;
    return TN_OK;
}

tn_status tni_expansion_reverse(tni_expansion *e, const double *cot, double *grad, int accumulate)
{
    return tni_engine_reverse(e->tape, e->theta0, e->delta, cot, grad, accumulate);
}

tn_status tni_expansion_plain_forward(tni_expansion *e, const double *theta, const double *x,
                                      size_t n)
{
    tni_batch_key_clear(&e->key);
    e->last_cached = 0;
    return tni_engine_forward(e->tape, theta, NULL, 0, x, n, 0);
}

tn_status tni_expansion_plain_reverse(tni_expansion *e, const double *theta, const double *cot,
                                      double *grad)
{
    return tni_engine_reverse(e->tape, theta, NULL, cot, grad, 0);
}
