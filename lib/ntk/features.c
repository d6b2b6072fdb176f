/* features.c -- per-example gradient factors: one order-0 forward, then one
 * cotangent sweep carrying all O one-hot cotangent sets at once (O times the
 * rows in each GEMM, instead of O separate reverse passes). */
#include "features.h"

#include <string.h>

tn_status tni_param_layers_of(tn_ctx *ctx, const tn_net *net, tni_param_layers *pl)
{
    pl->count = 0;
    pl->layer = tni_alloc(ctx, net->nlayers, sizeof *pl->layer);
    if (pl->layer == NULL) return tni_fail(ctx, TN_E_NOMEM, "NTK: out of memory");
    for (size_t l = 0; l < net->nlayers; l++)
        if (net->layers[l].count > 0) pl->layer[pl->count++] = &net->layers[l];
    return TN_OK;
}

void tni_param_layers_free(tni_param_layers *pl)
{
    tni_free(pl->layer);
    pl->layer = NULL;
    pl->count = 0;
}

size_t tni_features_per_example(const tni_param_layers *pl, size_t O)
{
    size_t n = 0;
    for (size_t m = 0; m < pl->count; m++) n += pl->layer[m]->in_size + O * pl->layer[m]->out_size;
    return n;
}

size_t tni_features_work_doubles(const tn_net *net, size_t O, size_t rows)
{
    return rows * O * O + 2 * rows * O * tni_net_max_width(net);
}

size_t tni_features_work_per_example(const tn_net *net, size_t O)
{
    return tni_features_work_doubles(net, O, 1) + tni_tape_doubles(net, 1, 0, 0);
}

tn_status tni_features_alloc(tn_ctx *ctx, const tni_param_layers *pl, size_t O, size_t rows,
                             tni_features *f)
{
    memset(f, 0, sizeof *f);
    f->X = tni_alloc(ctx, pl->count, sizeof(double *));
    f->G = tni_alloc(ctx, pl->count, sizeof(double *));
    f->store = tni_alloc(ctx, rows, tni_features_per_example(pl, O) * sizeof(double));
    if (f->X == NULL || f->G == NULL || f->store == NULL) {
        tni_features_free(f);
        return tni_fail(ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory for features of %zu rows",
                        rows);
    }
    double *p = f->store;
    for (size_t m = 0; m < pl->count; m++) {
        f->X[m] = p;
        p += rows * pl->layer[m]->in_size;
        f->G[m] = p;
        p += rows * O * pl->layer[m]->out_size;
    }
    return TN_OK;
}

void tni_features_free(tni_features *f)
{
    tni_free(f->X);
    tni_free(f->G);
    tni_free(f->store);
    memset(f, 0, sizeof *f);
}

typedef struct visit_ctx {
    const tni_param_layers *pl;
    tni_features *f;
    size_t rows, O;
} visit_ctx;

/* Copies a layer's input, and its cotangents from set-major (c, i) rows to
 * example-major (i, c) rows. */
static void collect(void *user, size_t layer, const tni_layer *L, const double *input,
                    const double *cot_out, size_t sets)
{
    (void)layer;
    visit_ctx *v = user;
    size_t m = 0;
    while (v->pl->layer[m] != L) m++;
    const size_t rows = v->rows, in = L->in_size, out = L->out_size;
    memcpy(v->f->X[m], input, rows * in * sizeof(double));
    for (size_t c = 0; c < sets; c++)
        for (size_t i = 0; i < rows; i++)
            memcpy(v->f->G[m] + (i * sets + c) * out, cot_out + (c * rows + i) * out,
                   out * sizeof(double));
}

tn_status tni_features_compute(tn_ntk *k, const tni_param_layers *pl, const double *x,
                               size_t rows, tni_features *f, double *work)
{
    const tn_net *net = k->net;
    const size_t O = tni_net_output_dim(net);
    const double *theta = tni_net_theta(net);
    tn_status st = tni_engine_forward(net, k->tape, theta, NULL, 0, x, rows, 0);
    if (st != TN_OK) return st;
    double *cot = work, *sweep = work + rows * O * O;
    memset(cot, 0, rows * O * O * sizeof(double));
    for (size_t c = 0; c < O; c++)
        for (size_t i = 0; i < rows; i++) cot[(c * rows + i) * O + c] = 1.0;
    f->rows = rows;
    visit_ctx v = {pl, f, rows, O};
    return tni_engine_cotangent_sweep(net, k->tape, theta, cot, O, sweep, collect, &v);
}
