/* ntk.c -- the empirical NTK: method choice by a cost model, and the tile
 * driver that runs STRUCTURED and JACOBIAN under the memory budget (ntk.h). */
#include "features.h"
#include "../kernel/blas.h"

#include <math.h>
#include <string.h>

/* Defined in structured.c, jacobian.c, vector_products.c. */
size_t tni_structured_tmp_doubles(size_t a, size_t b, size_t O, int full);
void tni_structured_block(int threads, const tni_param_layers *pl, size_t O, int full,
                          const tni_features *A, const tni_features *B, int diag, double *K,
                          size_t ldk, double *tmp);
void tni_jacobian_rows(const tni_param_layers *pl, size_t O, size_t P, const tni_features *F,
                       double *J);
void tni_jacobian_block(int threads, size_t O, size_t P, int full, const double *JA, size_t a,
                        const double *JB, size_t b, int diag, double *K, size_t ldk);
tn_status tni_vp_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2, size_t n2,
                         int symmetric, double *K, size_t rows_per_jvp, double *v, double *cot);

/* Doubles a tile method needs for tiles of t rows: the feature sets (plus
 * Jacobian rows) -- one when x2 = x1 fits a single tile, else two --, the
 * feature workspace with its forward tape, and the per-block temporaries. */
static double tile_doubles(const tn_ntk *k, const tni_param_layers *pl, int method, size_t t,
                           int sets)
{
    const size_t O = tni_net_output_dim(k->net), P = tn_net_num_params(k->net);
    double per = (double)tni_features_per_example(pl, O);
    if (method == TN_NTK_JACOBIAN) per += (double)O * (double)P;
    double total = sets * (double)t * per + (double)t * (double)tni_features_work_per_example(k->net, O);
    if (method == TN_NTK_STRUCTURED) total += (double)tni_structured_tmp_doubles(t, t, O, k->full);
    return total;
}

/* The tile size (rows) for n1 x n2 (symmetric: x2 = x1): all of x1 in one
 * tile when that fits with a single feature set, else the largest t with two
 * sets that fits, at most max(n1, n2); 0 if not even one row fits. */
static size_t tile_rows(const tn_ntk *k, const tni_param_layers *pl, int method, size_t n1,
                        size_t n2, int symmetric)
{
    const double cap = (double)k->budget / sizeof(double);
    if (symmetric && tile_doubles(k, pl, method, n1, 1) <= cap) return n1;
    if (tile_doubles(k, pl, method, 1, 2) > cap) return 0;
    size_t lo = 1, hi = n1 > n2 ? n1 : n2;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo + 1) / 2;
        if (tile_doubles(k, pl, method, mid, 2) <= cap) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Cost model (flops), documented in docs/ntk.md.  With F1 the GEMM flops of
 * one example's features (forward 2 sum_l in_l out_l, plus the sweep of O
 * cotangent sets 2 O sum_{l > first} in_l out_l):
 *   STRUCTURED   features of every x1 tile once, of x2 tiles once per pair
 *                (once in all when x2 fits one tile; for x2 = x1 the
 *                diagonal tiles reuse the x1 features), plus per pair
 *                sum_l 2 (in_l + O out_l) (traced) or 2 (in_l + O^2 out_l) (full)
 *   JACOBIAN     the same features, n O P to assemble J, and per pair
 *                2 O P (traced) or 2 O^2 P (full)
 *   VECTOR_PRODUCTS  n2 O (4 P for the VJP of one row + 6 P per JVP row)
 * pairs = n1 n2, or n1 (n1 + 1) / 2 for x2 = x1.  The STRUCTURED and
 * JACOBIAN counts are the GEMM and SYRK flops the tile driver issues.  AUTO
 * takes the cheapest method that fits the budget (VECTOR_PRODUCTS always
 * fits). */
int tni_ntk_choose(const tn_ntk *k, size_t n1, size_t n2, int symmetric, double flops[4])
{
    const tn_net *net = k->net;
    const double O = (double)tni_net_output_dim(net), P = (double)tn_net_num_params(net);
    const double N1 = (double)n1, N2 = (double)n2;
    const double pairs = symmetric ? 0.5 * N1 * (N1 + 1) : N1 * N2;
    tni_param_layers pl;
    if (tni_param_layers_of(k->ctx, net, &pl) != TN_OK) return TN_NTK_VECTOR_PRODUCTS;
    double gram = 0, feat_one = 0;
    for (size_t m = 0; m < pl.count; m++) {
        const double in = (double)pl.layer[m]->in_size, out = (double)pl.layer[m]->out_size;
        gram += 2.0 * (in + (k->full ? O * O : O) * out);
        feat_one += 2.0 * in * out * (m > 0 ? 1.0 + O : 1.0);
    }
    double f[4] = {0, 0, 0, 0};
    int fits[4] = {0, 0, 0, 1};
    for (int meth = TN_NTK_STRUCTURED; meth <= TN_NTK_JACOBIAN; meth++) {
        const size_t t = tile_rows(k, &pl, meth, n1, n2, symmetric);
        fits[meth] = t > 0;
        if (!t) continue;
        const double ta = t < n1 ? (double)t : N1, tiles1 = ceil(N1 / ta);
        double rows_x2;   /* x2 rows whose features are computed */
        if (symmetric)
            rows_x2 = 0.5 * tiles1 * (tiles1 - 1) * ta;
        else
            rows_x2 = t >= n2 ? N2 : tiles1 * N2;
        const double feats = (N1 + rows_x2) * feat_one;
        f[meth] = meth == TN_NTK_STRUCTURED
                      ? feats + pairs * gram
                      : feats + (N1 + rows_x2) * O * P + pairs * 2 * O * P * (k->full ? O : 1);
    }
    f[TN_NTK_VECTOR_PRODUCTS] = N2 * O * (4 * P + 6 * (symmetric ? 0.5 * N1 : N1) * P);
    tni_param_layers_free(&pl);
    int best = TN_NTK_VECTOR_PRODUCTS;
    for (int meth = TN_NTK_JACOBIAN; meth >= TN_NTK_STRUCTURED; meth--)
        if (fits[meth] && f[meth] <= f[best]) best = meth;
    f[TN_NTK_AUTO] = f[best];
    if (flops) memcpy(flops, f, sizeof f);
    return best;
}

typedef struct tile_set {
    tni_features f;
    double *J;          /* Jacobian rows (JACOBIAN only) */
    size_t start;       /* first row held, or SIZE_MAX */
} tile_set;

static tn_status tile_set_fill(tn_ntk *k, const tni_param_layers *pl, int method,
                               const double *x, size_t start, size_t rows, tile_set *ts,
                               double *work)
{
    if (ts->start == start && ts->f.rows == rows) return TN_OK;
    ts->start = SIZE_MAX;
    const size_t d = tn_net_input_size(k->net), O = tni_net_output_dim(k->net);
    tn_status st = tni_features_compute(k, pl, x + start * d, rows, &ts->f, work);
    if (st != TN_OK) return st;
    if (method == TN_NTK_JACOBIAN) tni_jacobian_rows(pl, O, tn_net_num_params(k->net), &ts->f, ts->J);
    ts->start = start;
    return TN_OK;
}

static tn_status tiled(tn_ntk *k, int method, const double *x1, size_t n1, const double *x2,
                       size_t n2, int symmetric, double *K)
{
    tn_ctx *ctx = k->ctx;
    const size_t O = tni_net_output_dim(k->net), P = tn_net_num_params(k->net);
    const int threads = ctx->threads;
    tni_param_layers pl;
    tn_status st = tni_param_layers_of(ctx, k->net, &pl);
    if (st != TN_OK) return st;
    const size_t t = tile_rows(k, &pl, method, n1, n2, symmetric);
    if (t == 0) {
        const double need = tile_doubles(k, &pl, method, 1, 2) * sizeof(double);
        tni_param_layers_free(&pl);
        return tni_fail(ctx, TN_E_NOMEM,
                        "tn_ntk_compute: a memory budget of %zu bytes cannot hold one example "
                        "(%.0f bytes needed); raise TN_NTK_MEMORY_BUDGET",
                        k->budget, need);
    }
    const size_t ta = t < n1 ? t : n1, tb = t < n2 ? t : n2, tmax = ta > tb ? ta : tb;
    tile_set A = {{0}, NULL, SIZE_MAX}, B = {{0}, NULL, SIZE_MAX};
    double *work = tni_alloc(ctx, tni_features_work_doubles(k->net, O, tmax), sizeof(double));
    double *tmp = method == TN_NTK_STRUCTURED
                      ? tni_alloc(ctx, tni_structured_tmp_doubles(ta, tb, O, k->full), sizeof(double))
                      : NULL;
    st = work && (tmp || method != TN_NTK_STRUCTURED) ? TN_OK
                                                        : tni_fail(ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory");
    if (st == TN_OK) st = tni_features_alloc(ctx, &pl, O, ta, &A.f);
    if (st == TN_OK && !symmetric) st = tni_features_alloc(ctx, &pl, O, tb, &B.f);
    if (st == TN_OK && method == TN_NTK_JACOBIAN) {
        A.J = tni_alloc(ctx, ta * O, P * sizeof(double));
        B.J = symmetric ? NULL : tni_alloc(ctx, tb * O, P * sizeof(double));
        if (A.J == NULL || (!symmetric && B.J == NULL))
            st = tni_fail(ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory for Jacobian tiles");
    }
    const size_t ldk = k->full ? n2 * O : n2, scale = k->full ? O : 1;
    const size_t tiles1 = (n1 + ta - 1) / ta, tiles2 = (n2 + tb - 1) / tb;
    const double total = symmetric ? 0.5 * (double)tiles1 * (double)(tiles1 + 1)
                                   : (double)tiles1 * (double)tiles2;
    double done = 0;
    for (size_t ia = 0; st == TN_OK && ia < n1; ia += ta) {
        const size_t a = n1 - ia < ta ? n1 - ia : ta;
        st = tile_set_fill(k, &pl, method, x1, ia, a, &A, work);
        for (size_t jb = 0; st == TN_OK && jb < (symmetric ? ia + 1 : n2); jb += tb) {
            const size_t b = n2 - jb < tb ? n2 - jb : tb;
            const int diag = symmetric && jb == ia;
            /* Symmetric: the A tile's set serves the diagonal; B is refilled
             * below it.  When all of x2 fits one tile it is filled once. */
            tile_set *Bs = diag ? &A : symmetric ? &B : &B;
            if (symmetric && !diag && B.f.store == NULL) {
                st = tni_features_alloc(ctx, &pl, O, tb, &B.f);
                if (st == TN_OK && method == TN_NTK_JACOBIAN) {
                    B.J = tni_alloc(ctx, tb * O, P * sizeof(double));
                    if (B.J == NULL) st = tni_fail(ctx, TN_E_NOMEM, "tn_ntk_compute: out of memory");
                }
            }
            if (st == TN_OK && !diag) st = tile_set_fill(k, &pl, method, x2, jb, b, Bs, work);
            if (st != TN_OK) break;
            double *Kb = K + ia * scale * ldk + jb * scale;
            if (method == TN_NTK_STRUCTURED)
                tni_structured_block(threads, &pl, O, k->full, &A.f, &Bs->f, diag, Kb, ldk, tmp);
            else
                tni_jacobian_block(threads, O, P, k->full, A.J, a, Bs->J, b, diag, Kb, ldk);
            done += 1;
            st = tni_progress(ctx, "tn_ntk_compute", done / total);
        }
    }
    tni_features_free(&A.f);
    tni_features_free(&B.f);
    tni_free(A.J);
    tni_free(B.J);
    tni_free(work);
    tni_free(tmp);
    tni_param_layers_free(&pl);
    return st;
}

static tn_status vector_products(tn_ntk *k, const double *x1, size_t n1, const double *x2,
                                 size_t n2, int symmetric, double *K)
{
    const size_t O = tni_net_output_dim(k->net), P = tn_net_num_params(k->net);
    /* JVP rows per pass: the order-1 tape under the budget. */
    const size_t per_row = tni_tape_doubles(k->net, 1, 1, 0) * sizeof(double);
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
    if (k->tape == NULL) st = tni_tape_create(k->ctx, k->net, &k->tape);
    const int method = k->method == TN_NTK_AUTO ? tni_ntk_choose(k, n1, n2, symmetric, NULL)
                                                : k->method;
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
