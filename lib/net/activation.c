/* activation.c -- elementwise activations in Taylor mode, in place.
 *
 * Attributes: the tn_activation.  Forward saves the series c of phi'(z(t));
 * reverse applies the transposed Toeplitz Jacobian dy_j/dz_i = c_{j-i}
 * (kernel/series.c) and never reads its input, so the engine lets it
 * overwrite its input whenever nothing else reads that.
 *
 * Saved per example: c_0..c_order (c_0 alone for the linear pieces), then,
 * at order >= 1 for tanh and the sigmoid, y_0: when the base point is
 * cached (TNI_BASE_CACHED) y_0 and c_0 are those of the last pass, and
 * only orders >= 1 are computed (tni_act_base_reusable).  That was the
 * tanh of every unit in every step of a linearized model trained on a
 * fixed batch. */
#include "graph.h"
#include "../kernel/dual.h"
#include "../kernel/quadrature.h"
#include "../kernel/series.h"

#include <math.h>
#include <string.h>

enum { ACT };

static tn_activation act_of(const tni_node *n)
{
    return (tn_activation)n->attr[ACT];
}

static tn_status act_infer(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn)
{
    if (n->attr[ACT] > TN_ACT_SOFTPLUS)
        return tni_fail(ctx, TN_E_INVALID_ARG, "%s: activation %llu is not a tn_activation", fn,
                        (unsigned long long)n->attr[ACT]);
    n->shape = *in[0];
    if (act_of(n) == TN_ACT_RELU || act_of(n) == TN_ACT_LEAKY_RELU) n->flags |= TNI_NODE_RECTIFIER;
    return TN_OK;
}

static void act_resolve(tni_node *n, const tni_settings *s)
{
    n->scale[0] = s->leaky_slope;
}

static int linear_pieces(const tni_node *n)
{
    return tni_act_is_linear_pieces(act_of(n));
}

static size_t act_out_degree(const tni_node *n, const size_t *din, size_t order)
{
    if (linear_pieces(n) || din[0] == 0) return din[0];
    return order;
}

/* y_0 is kept after c_0..c_order for the cached base (above). */
static int keeps_y0(const tni_node *n, size_t order)
{
    return order >= 1 && tni_act_base_reusable(act_of(n));
}

/* Reused only where the output has orders >= 1 (an input of degree 0
 * gives y_0 alone, computed every pass). */
static int act_keeps_base(const tni_node *n, size_t order, size_t dout)
{
    return keeps_y0(n, order) && dout >= 1;
}

static size_t act_saved_doubles(const tni_node *n, size_t order)
{
    return n->size * ((linear_pieces(n) ? 1 : order + 1) + (keeps_y0(n, order) ? 1 : 0));
}

static size_t act_scratch_doubles(const tni_node *n, const tni_shape *const *in, size_t rows,
                                  size_t order)
{
    (void)n;
    (void)in;
    (void)rows;
    return tni_act_scratch_size(order);
}

static void act_forward(const tni_node *n, tni_node_io *io)
{
    const size_t blk = io->batch * n->size;
    /* Orders din+1..dout of z are zero: the series still produces them. */
    if (io->dout > io->din[0])
        memset(io->out + (io->din[0] + 1) * blk, 0,
               (io->dout - io->din[0]) * blk * sizeof(double));
    const int keep = act_keeps_base(n, io->order, io->dout);
    double *y0 = keep ? io->saved + (io->order + 1) * blk : NULL;
    const int reuse = keep && (io->flags & TNI_BASE_CACHED);
    if (reuse) memcpy(io->out, y0, blk * sizeof(double));
    tni_act_series_threaded(io->threads, act_of(n), n->scale[0], io->dout, blk, io->out, blk,
                            io->saved, blk, io->scratch, reuse);
    if (keep && !reuse && (io->flags & TNI_KEEP_BASE)) memcpy(y0, io->out, blk * sizeof(double));
}

static void act_reverse(const tni_node *n, tni_node_io *io)
{
    const size_t blk = io->batch * n->size, stride = io->sets * blk;
    /* In place on the output cotangents (this node's own, dead afterwards),
     * one cotangent set at a time against the saved series. */
    for (size_t s = 0; s < io->sets; s++)
        tni_act_series_reverse_threaded(io->threads, linear_pieces(n), io->lo, io->din[0],
                                        io->dout, blk, io->cot_out + s * blk, stride, io->saved,
                                        blk);
    tni_blocks_copy(io->cot_in[0], io->cot_out, io->lo, io->din[0], stride, io->cot_add[0]);
}

static size_t act_pattern(const tni_node *n, const double *saved, size_t batch, unsigned char *bits)
{
    /* The saved slope c_0 is 1 exactly where z_0 > 0 (series.c). */
    const size_t count = batch * n->size;
    if (bits)
        for (size_t e = 0; e < count; e++) bits[e] = saved[e] == 1.0;
    return count;
}

/* ---- infinite-width kernels (MATH.md §5, §9) -----------------------------
 *
 * Elementwise on a centered Gaussian field: every pair of positions gets the
 * dual of phi at the 2 x 2 covariance of its two positions (kernel/dual.h),
 *   S[p, p'] = E[phi(u) phi(v)],  T[p, p'] = E[phi'(u) phi'(v)] T_in[p, p'],
 *   (u, v) ~ N(0, [[S_in[p, p], S_in[p, p']], [S_in[p, p'], S_in[p', p']]]),
 * the variances S_in[p, p] from var1 and var2.  Closed forms for identity,
 * ReLU, leaky ReLU and erf; Mehler series over per-position Gauss-Hermite
 * expansions for the others (kernel/quadrature.h), each position expanded
 * once per tile with the smallest rule that meets the truncation target at
 * the largest correlation it meets in the tile.  The output is no longer
 * Gaussian, so a second activation must not follow without a layer with
 * parameters in between. */

/* Truncation target of the Mehler series, relative (quadrature.h). */
#define MEHLER_TOL 1e-13

static tn_status act_plan(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                          size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn)
{
    tni_cov_plan_as_input(in[0], in[0]->pixels, words, out);
    if (in[0]->cls == TNI_COV_DET || act_of(n) == TN_ACT_IDENTITY) return TN_OK;
    if (in[0]->cls != TNI_COV_GAUSS)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        "%s: node %zu (activation) reads node %zu, which is not Gaussian in the "
                        "infinite-width limit (an activation, or a sum with a branch that is not, "
                        "comes before it with no layer with parameters in between): its kernel "
                        "has no closed recursion",
                        fn, id, n->input[0]);
    out->cls = TNI_COV_MOMENT;
    return TN_OK;
}

static int uses_mehler(const tni_node *n)
{
    return !tni_dual_has_closed_form(act_of(n));
}

static tn_status act_begin(const tni_node *n, const tni_settings *s, int ntk, tn_ctx *ctx,
                           const char *fn, void **work)
{
    *work = NULL;
    if (!uses_mehler(n)) return TN_OK;
    tni_mehler *m = tni_alloc_or_fail(ctx, fn, 1, sizeof *m);
    if (m == NULL) return TN_E_NOMEM;
    const tn_status st = tni_mehler_init(ctx, fn, m, act_of(n), s->leaky_slope, ntk, MEHLER_TOL);
    if (st != TN_OK) {
        tni_free(m);
        return st;
    }
    *work = m;
    return TN_OK;
}

static void act_end(void *work)
{
    tni_mehler_free(work);
    tni_free(work);
}

/* Rows of the tile: positions (i, p) of x1's side, then (j, p') of x2's
 * unless tri (one side). */
static size_t rows_of(const tni_cov_io *io, size_t *rows1)
{
    const size_t P = io->in[0].pixels;
    *rows1 = io->a * P;
    return io->tri ? *rows1 : (io->a + io->b) * P;
}

#define EXP_DOUBLES ((sizeof(tni_mehler_expansion) + sizeof(double) - 1) / sizeof(double))

static int is_rectifier(const tni_node *n)
{
    return act_of(n) == TN_ACT_RELU || act_of(n) == TN_ACT_LEAKY_RELU;
}

static size_t act_tmp_doubles(const tni_node *n, const tni_cov_io *g)
{
    if (is_rectifier(n)) return g->b * (g->out.full ? g->out.pixels : 1);   /* a row of E[phi' phi'] */
    if (!uses_mehler(n)) return 0;
    size_t rows1;
    const size_t rows = rows_of(g, &rows1);
    return rows * (EXP_DOUBLES + (g->out.T ? 4 : 2) * ((size_t)TNI_MEHLER_KMAX + 1) + 2);
}

/* Runs BODY for every entry of the tile with: e its index in S, v1 and v2
 * the variances of its two positions, k1 and k2 their rows (rows_of), self
 * whether it pairs a position with itself (tri tiles). */
#define FOR_EACH_ENTRY(io, ...)                                                               \
    do {                                                                                      \
        const size_t P_ = (io)->in[0].pixels, b_ = (io)->b;                                   \
        const size_t off_ = (io)->tri ? 0 : (io)->a * P_;                                     \
        const double *var2_ = (io)->tri ? (io)->var1 : (io)->var2;                            \
        if ((io)->out.full) {                                                                 \
            for (size_t i_ = 0; i_ < (io)->a; i_++)                                           \
                for (size_t p_ = 0; p_ < P_; p_++) {                                          \
                    const size_t k1 = i_ * P_ + p_;                                           \
                    const double v1 = (io)->var1[k1];                                         \
                    for (size_t j_ = 0; j_ < tni_cov_cols((io), i_); j_++)                    \
                        for (size_t q_ = 0; q_ < P_; q_++) {                                  \
                            const size_t e = k1 * b_ * P_ + j_ * P_ + q_;                     \
                            const size_t k2 = off_ + j_ * P_ + q_;                            \
                            const double v2 = var2_[j_ * P_ + q_];                            \
                            const int self = (io)->diag && i_ == j_ && p_ == q_;               \
                            __VA_ARGS__                                                              \
                        }                                                                     \
                }                                                                             \
        } else {                                                                              \
            for (size_t p_ = 0; p_ < P_; p_++)                                                \
                for (size_t i_ = 0; i_ < (io)->a; i_++) {                                     \
                    const size_t k1 = i_ * P_ + p_;                                           \
                    const double v1 = (io)->var1[k1];                                         \
                    for (size_t j_ = 0; j_ < tni_cov_cols((io), i_); j_++) {                  \
                        const size_t e = (p_ * (io)->a + i_) * b_ + j_;                       \
                        const size_t k2 = off_ + j_ * P_ + p_;                                \
                        const double v2 = var2_[j_ * P_ + p_];                                \
                        const int self = (io)->diag && i_ == j_;                               \
                        __VA_ARGS__                                                                  \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    } while (0)

/* ReLU and leaky ReLU (slope a) a row at a time: the rows of a tile share
 * their first position, and tni_dual_relu_row runs the row's duals in one
 * vectorizable loop. */
static void act_rectifier(double a, const tni_cov_io *io)
{
    const size_t P = io->in[0].pixels, b = io->b, A = io->a;
    const double *var2 = io->tri ? io->var1 : io->var2;
    const double *Si = io->in[0].S, *Ti = io->in[0].T;
    double *So = io->out.S, *To = io->out.T, *edd = io->tmp;
    for (size_t i = 0; i < A; i++)
        for (size_t p = 0; p < P; p++) {
            const size_t k1 = i * P + p, cols = tni_cov_cols(io, i);
            /* Full: row (i, p), columns (j, q) for j < cols, contiguous, with
             * variances var2[j P + q].  Aligned: row (p, i), columns j, with
             * variances var2[j P + p]. */
            const size_t at = io->out.full ? k1 * b * P : (p * A + i) * b;
            const size_t n = io->out.full ? cols * P : cols, inc = io->out.full ? 1 : P;
            const double *v2 = io->out.full ? var2 : var2 + p;
            tni_dual_relu_row(n, a, io->var1[k1], v2, inc, Si + at, So + at, edd);
            if (To)
                for (size_t e = 0; e < n; e++) To[at + e] = Ti ? edd[e] * Ti[at + e] : 0.0;
            if (io->diag) {
                /* The position with itself: its variance, exactly. */
                const size_t e = io->out.full ? i * P + p : i;
                double eff, d;
                tni_dual_closed(a == 0.0 ? TN_ACT_RELU : TN_ACT_LEAKY_RELU, a, io->var1[k1],
                                io->var1[k1], io->var1[k1], &eff, &d);
                So[at + e] = eff;
                if (To) To[at + e] = Ti ? d * Ti[at + e] : 0.0;
            }
        }
}

static void act_closed(tn_activation act, double slope, const tni_cov_io *io)
{
    const double *Si = io->in[0].S, *Ti = io->in[0].T;
    double *So = io->out.S, *To = io->out.T;
    FOR_EACH_ENTRY(io, {
        (void)k1, (void)k2;
        double eff, edd;
        /* A position with itself: its variance, exactly (a tile's S entry
         * may differ from the self pass's by rounding). */
        if (self)
            tni_dual_closed(act, slope, v1, v1, v1, &eff, &edd);
        else
            tni_dual_closed(act, slope, v1, v2, Si[e], &eff, &edd);
        So[e] = eff;
        if (To) To[e] = Ti ? edd * Ti[e] : 0.0;
    });
}

/* The Mehler expansions of every row, as the MLP kernels have always made
 * them: each row first gets the smallest rule its own largest correlation
 * needs; then every pair whose truncation bound is not met within the
 * shorter of its two expansions raises that row to the other's rule (one
 * pass suffices: a raised row meets its own criterion at the old level
 * already, so raising never breaks a pair that was met). */
static void act_mehler(tni_mehler *m, const tni_cov_io *io)
{
    size_t rows1;
    const size_t rows = rows_of(io, &rows1);
    tni_mehler_expansion *ex = (tni_mehler_expansion *)io->tmp;
    double *rmax = io->tmp + rows * EXP_DOUBLES, *need = rmax + rows, *store = need + rows;
    const size_t per = tni_mehler_expansion_doubles(m), stride = (size_t)TNI_MEHLER_KMAX + 1;
    for (size_t r = 0; r < rows; r++) {
        double *q = store + r * per;
        ex[r].a = q;
        ex[r].log_tail_a = q + stride;
        ex[r].b = m->want_deriv ? q + 2 * stride : NULL;
        ex[r].log_tail_b = m->want_deriv ? q + 3 * stride : NULL;
        rmax[r] = 0.0;
        need[r] = 0.0;
    }
    const double *Si = io->in[0].S, *Ti = io->in[0].T;
    double *So = io->out.S, *To = io->out.T;
    /* The largest |rho| each row meets, except the pairs tni_mehler_pair
     * integrates directly (|rho| ~ 1). */
    FOR_EACH_ENTRY(io, {
        if (!self) {
            const double rho = fabs(tni_correlation(v1, v2, Si[e]));
            if (rho < TNI_MEHLER_RHO_DIRECT) {
                if (rho > rmax[k1]) rmax[k1] = rho;
                if (rho > rmax[k2]) rmax[k2] = rho;
            }
        }
    });
    const double *var2 = io->tri ? io->var1 : io->var2;
    for (size_t r = 0; r < rows; r++)
        tni_mehler_expand(m, r < rows1 ? io->var1[r] : var2[r - rows1], rmax[r], 0, &ex[r]);
    FOR_EACH_ENTRY(io, {
        (void)v1, (void)v2;
        if (!self && !tni_mehler_pair_converges(m, &ex[k1], &ex[k2], Si[e])) {
            if (ex[k1].level < ex[k2].level) {
                if (ex[k2].level > need[k1]) need[k1] = ex[k2].level;
            } else if (ex[k1].level > need[k2]) {
                need[k2] = ex[k1].level;
            }
        }
    });
    for (size_t r = 0; r < rows; r++)
        if (need[r] > ex[r].level)
            tni_mehler_expand(m, r < rows1 ? io->var1[r] : var2[r - rows1], rmax[r], (int)need[r],
                              &ex[r]);
    FOR_EACH_ENTRY(io, {
        (void)v2;
        double eff, edd = 0.0;
        if (self)
            tni_mehler_moments(m, v1, &eff, To ? &edd : NULL);
        else
            tni_mehler_pair(m, &ex[k1], &ex[k2], Si[e], &eff, To ? &edd : NULL);
        So[e] = eff;
        if (To) To[e] = Ti ? edd * Ti[e] : 0.0;
    });
}

static void act_analytic(const tni_node *n, const tni_settings *s, const tni_cov_io *io)
{
    if (act_of(n) == TN_ACT_IDENTITY) {
        /* The one activation that leaves its input as it was. */
        const double *Si = io->in[0].S, *Ti = io->in[0].T;
        double *So = io->out.S, *To = io->out.T;
        FOR_EACH_ENTRY(io, {
            (void)k1, (void)k2, (void)v1, (void)v2, (void)self;
            So[e] = Si[e];
            if (To) To[e] = Ti ? Ti[e] : 0.0;
        });
        return;
    }
    if (uses_mehler(n))
        act_mehler(io->work, io);
    else if (is_rectifier(n))
        act_rectifier(act_of(n) == TN_ACT_RELU ? 0.0 : s->leaky_slope, io);
    else
        act_closed(act_of(n), s->leaky_slope, io);
}

const tni_kind_ops tni_activation_ops = {
    .name = "activation",
    .ninputs = 1,
    .nattrs = 1,
    .alias = TNI_ALIAS_IN_PLACE,
    .infer = act_infer,
    .resolve = act_resolve,
    .out_degree = act_out_degree,
    .saved_doubles = act_saved_doubles,
    .keeps_base = act_keeps_base,
    .scratch_doubles = act_scratch_doubles,
    .forward = act_forward,
    .reverse = act_reverse,
    .pattern = act_pattern,
    .analytic_input = TNI_COV_IN_AS_OUT,
    .analytic_var = 1,
    .analytic_plan = act_plan,
    .analytic_tmp_doubles = act_tmp_doubles,
    .analytic_begin = act_begin,
    .analytic_end = act_end,
    .analytic = act_analytic,
};
