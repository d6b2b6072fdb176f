/* ntk.c -- the empirical NTK: the cost model that routes each node to Gram
 * products or Jacobian contraction and chooses between tiles and vector
 * products, and the tile driver under the memory budget (ntk.h). */
#include "features.h"
#include "../kernel/blas.h"

#include <math.h>
#include <string.h>

/* ---- the cost model (documented in docs/guide/ntk.md) ------------------ */

typedef struct node_cost {
    double gram_pair;       /* per example pair by Gram products (INFINITY: none) */
    double jac_example;     /* per example: its Jacobian columns */
    double jac_pair;        /* per example pair: its share of the contraction */
    double factors;         /* per example: its forward and sweep GEMMs */
} node_cost;

static node_cost cost_of(const tni_graph *g, size_t id, size_t O, int full, int first)
{
    const tni_node *n = &g->nodes[id];
    const tni_kind_ops *k = tni_kind_of(n);
    const tni_shape *in = tni_input_shape(g, n, 0);
    node_cost c;
    c.gram_pair = k->gram ? k->gram_pair_flops(n, in, O, full) : INFINITY;
    c.jac_example = k->jacobian_flops(n, in, O);
    c.jac_pair = 2.0 * (double)(full ? O * O : O) * (double)n->count;
    /* Its forward GEMM, and the sweep's O cotangent sets (not below the
     * first node with parameters): the Jacobian of one output is as dear
     * as the node's forward. */
    const double fwd = k->jacobian_flops(n, in, 1);
    c.factors = fwd * (first ? 1.0 : 1.0 + (double)O);
    return c;
}

void tni_ntk_plan_route(tni_ntk_plan *plan, const tni_graph *g, int method, size_t O, int full,
                        double pairs, double rows)
{
    plan->cols = 0;
    for (size_t m = 0; m < plan->count; m++) {
        const node_cost c = cost_of(g, plan->id[m], O, full, m == 0);
        int gram = isfinite(c.gram_pair);
        if (method == TN_NTK_JACOBIAN) gram = 0;
        if (method == TN_NTK_AUTO && gram)
            gram = pairs * c.gram_pair <= rows * c.jac_example + pairs * c.jac_pair;
        plan->gram[m] = (unsigned char)gram;
        plan->col[m] = plan->cols;
        if (!gram) plan->cols += g->nodes[plan->id[m]].count;
    }
}

/* Doubles a tiled pass needs for tiles of t rows: the feature sets -- one
 * when x2 = x1 fits a single tile, else two --, the tape of the forward and
 * the sweep, and the Gram products' temporaries. */
static double tile_doubles(const tn_ntk *k, const tni_ntk_plan *plan, size_t t, int sets)
{
    const tni_graph *g = tni_net_graph(k->net);
    const size_t O = tni_net_output_dim(k->net);
    return sets * tni_features_doubles(plan, g, O, t) + (double)tni_tape_doubles(g, t, 0, 0, O) +
           (double)tni_structured_tmp_doubles(plan, g, t, t, O, k->full);
}

/* The tile size (rows) for n1 x n2 (symmetric: x2 = x1): all of x1 in one
 * tile when that fits with a single feature set, else the largest t with two
 * sets that fits, at most max(n1, n2); 0 if not even one row fits. */
static size_t tile_rows(const tn_ntk *k, const tni_ntk_plan *plan, size_t n1, size_t n2,
                        int symmetric)
{
    const double cap = (double)k->budget / sizeof(double);
    if (symmetric && tile_doubles(k, plan, n1, 1) <= cap) return n1;
    if (tile_doubles(k, plan, 1, 2) > cap) return 0;
    size_t lo = 1, hi = n1 > n2 ? n1 : n2;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo + 1) / 2;
        if (tile_doubles(k, plan, mid, 2) <= cap) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Flops of the tiled method with the plan's routing, or INFINITY when not
 * one example fits the budget.  Features of every x1 tile are formed once,
 * of x2 tiles once per pair (once in all when x2 fits one tile; for x2 = x1
 * the diagonal tiles reuse the x1 features). */
static double tiled_flops(const tn_ntk *k, const tni_ntk_plan *plan, size_t n1, size_t n2,
                          int symmetric)
{
    const tni_graph *g = tni_net_graph(k->net);
    const size_t O = tni_net_output_dim(k->net);
    const size_t t = tile_rows(k, plan, n1, n2, symmetric);
    if (t == 0) return INFINITY;
    const double N1 = (double)n1, N2 = (double)n2;
    const double pairs = symmetric ? 0.5 * N1 * (N1 + 1) : N1 * N2;
    const double ta = t < n1 ? (double)t : N1, tiles1 = ceil(N1 / ta);
    const double rows_x2 = symmetric ? 0.5 * tiles1 * (tiles1 - 1) * ta : t >= n2 ? N2 : tiles1 * N2;
    const double rows = N1 + rows_x2;
    double f = 0;
    for (size_t m = 0; m < plan->count; m++) {
        const node_cost c = cost_of(g, plan->id[m], O, k->full, m == 0);
        f += rows * c.factors +
             (plan->gram[m] ? pairs * c.gram_pair : rows * c.jac_example + pairs * c.jac_pair);
    }
    return f;
}

int tni_ntk_choose(const tn_ntk *k, size_t n1, size_t n2, int symmetric, double flops[4],
                   size_t *gram_nodes, size_t *nodes)
{
    const tni_graph *g = tni_net_graph(k->net);
    const size_t O = tni_net_output_dim(k->net);
    const double N1 = (double)n1, N2 = (double)n2;
    const double pairs = symmetric ? 0.5 * N1 * (N1 + 1) : N1 * N2;
    double f[4];
    tni_ntk_plan plan;
    if (tni_ntk_plan_make(NULL, g, &plan) != TN_OK) return TN_NTK_VECTOR_PRODUCTS;
    const int routes[4] = {TN_NTK_AUTO, TN_NTK_STRUCTURED, TN_NTK_JACOBIAN, 0};
    size_t grams = 0;
    for (int m = 0; m < 3; m++) {
        tni_ntk_plan_route(&plan, g, routes[m], O, k->full, pairs, symmetric ? N1 : N1 + N2);
        f[m] = tiled_flops(k, &plan, n1, n2, symmetric);
        if (m == 0)
            for (size_t i = 0; i < plan.count; i++) grams += plan.gram[i];
    }
    /* A VJP of one row is about two forward passes, a JVP row three; F is
     * the forward's GEMM flops per example (2 P for an MLP). */
    double F = 0;
    for (size_t m = 0; m < plan.count; m++) F += cost_of(g, plan.id[m], O, k->full, 1).factors;
    f[TN_NTK_VECTOR_PRODUCTS] = N2 * (double)O * (2 * F + 3 * (symmetric ? 0.5 * N1 : N1) * F);
    int best;
    if (f[TN_NTK_AUTO] > f[TN_NTK_VECTOR_PRODUCTS]) {
        best = TN_NTK_VECTOR_PRODUCTS;
        f[TN_NTK_AUTO] = f[TN_NTK_VECTOR_PRODUCTS];
        grams = 0;
    } else {
        best = grams == plan.count ? TN_NTK_STRUCTURED : grams == 0 ? TN_NTK_JACOBIAN : TN_NTK_AUTO;
    }
    if (flops) memcpy(flops, f, sizeof f);
    if (gram_nodes) *gram_nodes = grams;
    if (nodes) *nodes = plan.count;
    tni_ntk_plan_free(&plan);
    return best;
}

/* ---- the tile driver ----------------------------------------------------- */

void tni_ntk_release_work(tn_ntk *k)
{
    tni_features_free(&k->sets[0]);
    tni_features_free(&k->sets[1]);
    tni_free(k->tmp);
    k->tmp = NULL;
    k->tmp_cap = 0;
}

typedef struct tile_set {
    tni_features *f;    /* one of the handle's kept sets */
    size_t start;       /* first row held in this call, or SIZE_MAX */
} tile_set;

static tn_status tile_set_fill(tn_ntk *k, const tni_ntk_plan *plan, const double *x, size_t start,
                               size_t rows, tile_set *ts)
{
    if (ts->start == start && ts->f->rows == rows) return TN_OK;
    ts->start = SIZE_MAX;
    const size_t d = tni_net_input_size(k->net);
    TNI_TRY(tni_features_compute(k, plan, x + start * d, rows, ts->f));
    ts->start = start;
    return TN_OK;
}

/* K's block of the tile pair: zeroed, every node's part added, the traced
 * sum over outputs made a mean. */
static void block(tn_ntk *k, const tni_ntk_plan *plan, const tile_set *A, const tile_set *B,
                  int diag, double *Kb, size_t ldk, double *tmp)
{
    const tni_graph *g = tni_net_graph(k->net);
    const size_t O = tni_net_output_dim(k->net), a = A->f->rows, b = B->f->rows;
    const size_t rows = k->full ? a * O : a, cols = k->full ? b * O : b;
    const int threads = k->ctx->threads;
    for (size_t i = 0; i < rows; i++) memset(Kb + i * ldk, 0, cols * sizeof(double));
    tni_structured_block(threads, plan, g, O, k->full, A->f, B->f, diag, Kb, ldk, tmp);
    tni_jacobian_block(threads, O, plan->cols, k->full, A->f->J, a, B->f->J, b, diag, Kb, ldk);
    if (!k->full) {
        const double invO = 1.0 / (double)O;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) Kb[i * ldk + j] *= invO;
    }
}

static tn_status tiled(tn_ntk *k, int route, const double *x1, size_t n1, const double *x2,
                       size_t n2, int symmetric, double *K)
{
    tn_ctx *ctx = k->ctx;
    const tni_graph *g = tni_net_graph(k->net);
    const size_t O = tni_net_output_dim(k->net);
    tni_ntk_plan plan;
    TNI_TRY(tni_ntk_plan_make(ctx, g, &plan));
    const double N1 = (double)n1, N2 = (double)n2;
    tni_ntk_plan_route(&plan, g, route, O, k->full, symmetric ? 0.5 * N1 * (N1 + 1) : N1 * N2,
                       symmetric ? N1 : N1 + N2);
    const size_t t = tile_rows(k, &plan, n1, n2, symmetric);
    if (t == 0) {
        const double need = tile_doubles(k, &plan, 1, 2) * sizeof(double);
        tni_ntk_plan_free(&plan);
        return tni_fail(ctx, TN_E_NOMEM,
                        "tn_ntk_compute: a memory budget of %zu bytes cannot hold one example "
                        "(%.0f bytes needed); raise TN_NTK_MEMORY_BUDGET",
                        k->budget, need);
    }
    const size_t ta = t < n1 ? t : n1, tb = t < n2 ? t : n2;
    tile_set A = {&k->sets[0], SIZE_MAX}, B = {&k->sets[1], SIZE_MAX};
    size_t ntmp = tni_structured_tmp_doubles(&plan, g, ta, tb, O, k->full);
    if (ntmp == 0) ntmp = 1;
    tn_status st = TN_OK;
    if (ntmp > k->tmp_cap) {
        tni_free(k->tmp);
        k->tmp_cap = 0;
        k->tmp = tni_alloc(ctx, ntmp, sizeof(double));
        if (k->tmp) k->tmp_cap = ntmp;
        else st = tni_fail(ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory");
    }
    double *tmp = k->tmp;
    if (st == TN_OK) st = tni_features_reserve(ctx, &plan, g, O, ta, A.f);
    int b_ready = 0;
    if (st == TN_OK && !symmetric) {
        st = tni_features_reserve(ctx, &plan, g, O, tb, B.f);
        b_ready = 1;
    }
    const size_t ldk = k->full ? n2 * O : n2, scale = k->full ? O : 1;
    const size_t tiles1 = (n1 + ta - 1) / ta, tiles2 = (n2 + tb - 1) / tb;
    const double total = symmetric ? 0.5 * (double)tiles1 * (double)(tiles1 + 1)
                                   : (double)tiles1 * (double)tiles2;
    double done = 0;
    for (size_t ia = 0; st == TN_OK && ia < n1; ia += ta) {
        const size_t a = n1 - ia < ta ? n1 - ia : ta;
        st = tile_set_fill(k, &plan, x1, ia, a, &A);
        for (size_t jb = 0; st == TN_OK && jb < (symmetric ? ia + 1 : n2); jb += tb) {
            const size_t b = n2 - jb < tb ? n2 - jb : tb;
            const int diag = symmetric && jb == ia;
            /* Symmetric: the A tile's set serves the diagonal; B is refilled
             * below it.  When all of x2 fits one tile it is filled once. */
            if (!diag && !b_ready) {
                st = tni_features_reserve(ctx, &plan, g, O, tb, B.f);
                b_ready = 1;
            }
            if (st == TN_OK && !diag) st = tile_set_fill(k, &plan, x2, jb, b, &B);
            if (st != TN_OK) break;
            block(k, &plan, &A, diag ? &A : &B, diag, K + ia * scale * ldk + jb * scale, ldk, tmp);
            done += 1;
            st = tni_progress(ctx, "tn_ntk_compute", done / total);
        }
    }
    tni_ntk_plan_free(&plan);
    return st;
}

static tn_status vector_products(tn_ntk *k, const double *x1, size_t n1, const double *x2,
                                 size_t n2, int symmetric, double *K)
{
    const tni_graph *g = tni_net_graph(k->net);
    const size_t O = tni_net_output_dim(k->net), P = g->nparams;
    /* JVP rows per pass: the order-1 tape under the budget. */
    const size_t per_row = tni_tape_doubles(g, 1, 1, 0, 1) * sizeof(double);
    size_t rows = per_row ? k->budget / per_row : n1;
    if (rows < 1) rows = 1;
    if (rows > n1) rows = n1;
    double *v = tni_alloc(k->ctx, P + O, sizeof(double));
    if (v == NULL) return tni_fail(k->ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory");
    tn_status st = tni_vp_compute(k, x1, n1, x2, n2, symmetric, K, rows, v, v + P);
    tni_free(v);
    return st;
}

tn_status tni_ntk_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2, size_t n2,
                          double *K)
{
    const int symmetric = x2 == NULL;
    if (symmetric) {
        x2 = x1;
        n2 = n1;
    }
    const size_t O = tni_net_output_dim(k->net), side1 = k->full ? n1 * O : n1,
                 side2 = k->full ? n2 * O : n2;
    tn_status st = TN_OK;
    if (k->tape == NULL) st = tni_tape_create(k->ctx, tni_net_graph(k->net), &k->tape);
    int method = k->method;
    if (method == TN_NTK_AUTO &&
        tni_ntk_choose(k, n1, n2, symmetric, NULL, NULL, NULL) == TN_NTK_VECTOR_PRODUCTS)
        method = TN_NTK_VECTOR_PRODUCTS;
    if (st == TN_OK)
        st = method == TN_NTK_VECTOR_PRODUCTS ? vector_products(k, x1, n1, x2, n2, symmetric, K)
                                               : tiled(k, method, x1, n1, x2, n2, symmetric, K);
    if (st != TN_OK) {
        /* Never a partial kernel that could pass for a result. */
        for (size_t i = 0; i < side1 * side2; i++) K[i] = NAN;
        return st;
    }
    if (symmetric) tni_symmetrize_lower(side1, K, side2);
    return TN_OK;
}
