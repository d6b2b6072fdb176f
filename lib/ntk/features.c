/* features.c -- per-example gradient factors: one order-0 forward, then one
 * cotangent sweep carrying all O one-hot cotangent sets at once (O times the
 * rows in each GEMM, instead of O separate reverse passes).  As the sweep
 * passes a node with parameters, its factors are kept (Gram nodes) or turned
 * into its Jacobian columns at once (the others), so no node's cotangents
 * are stored longer than they must be. */
#include "features.h"
#include "../kernel/parallel.h"

#include <string.h>

tn_status tni_ntk_plan_make(tn_ctx *ctx, const tni_graph *g, tni_ntk_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    size_t count = 0;
    for (size_t i = 1; i < g->nnodes; i++) count += g->nodes[i].count > 0;
    plan->id = tni_alloc(ctx, count, sizeof(size_t));
    plan->col = tni_alloc(ctx, count, sizeof(size_t));
    plan->gram = tni_alloc(ctx, count, 1);
    if (plan->id == NULL || plan->col == NULL || plan->gram == NULL) {
        tni_ntk_plan_free(plan);
        return tni_fail(ctx, TN_E_NOMEM, "NTK: out of memory");
    }
    for (size_t i = 1; i < g->nnodes; i++)
        if (g->nodes[i].count > 0) plan->id[plan->count++] = i;
    return TN_OK;
}

void tni_ntk_plan_free(tni_ntk_plan *plan)
{
    tni_free(plan->id);
    tni_free(plan->col);
    tni_free(plan->gram);
    memset(plan, 0, sizeof *plan);
}

static const tni_shape *input_shape(const tni_graph *g, size_t id)
{
    return tni_input_shape(g, &g->nodes[id], 0);
}

double tni_features_per_example(const tni_ntk_plan *plan, const tni_graph *g, size_t O)
{
    double n = (double)O * (double)plan->cols;
    for (size_t m = 0; m < plan->count; m++)
        if (plan->gram[m])
            n += (double)tni_shape_size(input_shape(g, plan->id[m])) +
                 (double)O * (double)g->nodes[plan->id[m]].size;
    return n;
}

/* Doubles of the per-example temporaries of the Jacobian nodes: one
 * example's cotangents (O x size) and the kind's own scratch. */
static size_t jacobian_tmp(const tni_ntk_plan *plan, const tni_graph *g, size_t O)
{
    size_t most = 0;
    for (size_t m = 0; m < plan->count; m++) {
        if (plan->gram[m]) continue;
        const tni_node *n = &g->nodes[plan->id[m]];
        const tni_kind_ops *k = tni_kind_of(n);
        size_t t = O * n->size;
        if (k->jacobian_tmp_doubles) t += k->jacobian_tmp_doubles(n, input_shape(g, plan->id[m]));
        if (t > most) most = t;
    }
    return most;
}

double tni_features_doubles(const tni_ntk_plan *plan, const tni_graph *g, size_t O, size_t rows)
{
    return ((double)tni_features_per_example(plan, g, O) + (double)(O * O)) * (double)rows +
           (double)jacobian_tmp(plan, g, O);
}

tn_status tni_features_reserve(tn_ctx *ctx, const tni_ntk_plan *plan, const tni_graph *g,
                               size_t O, size_t rows, tni_features *f)
{
    const double total = tni_features_doubles(plan, g, O, rows);
    if (total >= (double)(SIZE_MAX / sizeof(double))) goto nomem;
    if (f->nodes < plan->count) {
        double **X = tni_alloc(ctx, plan->count, sizeof(double *));
        double **G = tni_alloc(ctx, plan->count, sizeof(double *));
        if (X == NULL || G == NULL) {
            tni_free(X);
            tni_free(G);
            goto nomem;
        }
        tni_free(f->X);
        tni_free(f->G);
        f->X = X;
        f->G = G;
        f->nodes = plan->count;
    }
    if (f->cap < (size_t)total) {
        /* The old store first: the budget bounds the two sets together. */
        tni_free(f->store);
        f->cap = 0;
        f->store = tni_alloc(ctx, (size_t)total, sizeof(double));
        if (f->store == NULL) goto nomem;
        f->cap = (size_t)total;
    }
    f->rows = 0;
    double *p = f->store;
    for (size_t m = 0; m < plan->count; m++) {
        f->X[m] = f->G[m] = NULL;
        if (!plan->gram[m]) continue;
        f->X[m] = p;
        p += rows * tni_shape_size(input_shape(g, plan->id[m]));
        f->G[m] = p;
        p += rows * O * g->nodes[plan->id[m]].size;
    }
    f->J = p;
    return TN_OK;
nomem:
    return tni_fail(ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory for features of %zu rows",
                    rows);
}

void tni_features_free(tni_features *f)
{
    tni_free(f->X);
    tni_free(f->G);
    tni_free(f->store);
    memset(f, 0, sizeof *f);
}

typedef struct visit_ctx {
    const tni_ntk_plan *plan;
    const tni_graph *g;
    tni_features *f;
    size_t rows, O;
    int threads;
    double *tmp;                /* jacobian_tmp doubles */
} visit_ctx;

/* The copy of a Gram node's input and cotangents into the feature store,
 * in ranges of examples.  It moves every feature once, into memory the
 * store touches for the first time: serial, it was a third of a traced NTK
 * of N = 1024 and what kept two threads at 1.2x one (bench_ntk). */
typedef struct gram_copy {
    const double *input, *cot_out;
    double *X, *G;
    size_t rows, nin, size, sets, parts;
} gram_copy;

static void gram_copy_range(void *arg, size_t part, double *scratch)
{
    (void)scratch;
    const gram_copy *c = arg;
    size_t lo, hi;
    tni_split_range(c->rows, c->parts, 1, part, &lo, &hi);
    memcpy(c->X + lo * c->nin, c->input + lo * c->nin, (hi - lo) * c->nin * sizeof(double));
    /* The cotangents from set-major (s, i) to (i, s) rows. */
    for (size_t i = lo; i < hi; i++)
        for (size_t s = 0; s < c->sets; s++)
            memcpy(c->G + (i * c->sets + s) * c->size, c->cot_out + (s * c->rows + i) * c->size,
                   c->size * sizeof(double));
}

static void collect(void *user, size_t node, const double *input, const double *cot_out,
                    size_t sets)
{
    visit_ctx *v = user;
    const tni_ntk_plan *plan = v->plan;
    size_t m = 0;
    while (plan->id[m] != node) m++;
    const tni_node *n = &v->g->nodes[node];
    const tni_shape *in = input_shape(v->g, node);
    const size_t rows = v->rows, nin = tni_shape_size(in), size = n->size;
    if (plan->gram[m]) {
        /* One range per thread, as the patches of net/window.c. */
        const int t = tni_threads_usable(v->threads);
        const size_t parts = (size_t)t < rows ? (size_t)t : rows;
        gram_copy c = {input, cot_out, v->f->X[m], v->f->G[m], rows, nin, size, sets,
                       parts ? parts : 1};
        tni_parallel(t, c.parts, gram_copy_range, &c, NULL);
        return;
    }
    const tni_kind_ops *k = tni_kind_of(n);
    double *g = v->tmp, *scratch = v->tmp + sets * size;
    for (size_t i = 0; i < rows; i++) {
        for (size_t c = 0; c < sets; c++)
            memcpy(g + c * size, cot_out + (c * rows + i) * size, size * sizeof(double));
        k->jacobian(n, in, v->threads, sets, input + i * nin, g,
                    v->f->J + i * sets * plan->cols + plan->col[m], plan->cols, scratch);
    }
}

tn_status tni_features_compute(tn_ntk *k, const tni_ntk_plan *plan, const double *x, size_t rows,
                               tni_features *f)
{
    const tn_net *net = k->net;
    const tni_graph *g = tni_net_graph(net);
    const size_t O = tni_net_output_dim(net);
    const double *theta = tni_net_theta(net);
    TNI_TRY(tni_engine_forward(k->tape, theta, NULL, 0, x, rows, 0));
    /* The one-hot cotangents sit after the factors of the rows held. */
    double *cot = f->J + rows * O * plan->cols;
    memset(cot, 0, rows * O * O * sizeof(double));
    for (size_t c = 0; c < O; c++)
        for (size_t i = 0; i < rows; i++) cot[(c * rows + i) * O + c] = 1.0;
    f->rows = rows;
    visit_ctx v = {plan, g, f, rows, O, k->ctx->threads, cot + rows * O * O};
    return tni_engine_sweep(k->tape, theta, cot, O, collect, &v);
}
