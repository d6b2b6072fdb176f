/* test_analytic_graph.c -- the infinite-width kernels of convolutional,
 * pooling and residual networks (tn_ntk_analytic, MATH.md §9, §10) against
 * an independent computation, and the kernel's special cases, tiling,
 * refusals, allocation failures and cancellation.
 *
 * The reference works unit by unit: every node's covariance over all
 * (example, unit) pairs, a unit being one (pixel, channel) of an image or
 * one entry of a vector, with the layers' formulas written out by direct
 * loops with their own padding arithmetic -- the fan-in average over
 * (window offset, channel) of a convolution, a dense layer's over all its
 * inputs, the two windows of a pooling, the activations' duals (closed
 * forms written here for ReLU, leaky ReLU and erf; a 2-D Gauss-Hermite
 * product rule for the smooth ones) on each pair of units of the same
 * channel.  Nodes with no parameters upstream are computed as values and
 * enter as outer products.  It shares nothing with the library's
 * machinery: no channel means, no pixel-aligned or all-pairs layouts, no
 * tiles, no Mehler series.
 *
 * Links the internal archive (tni_gauss_hermite for the reference's
 * product rule; the allocation-failure hook). */
#include "core/core.h"
#include "kernel/quadrature.h"
#include "refgraph.h"

static tn_ctx *ctx;

static void setup(void)
{
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
}

static void teardown(void)
{
    tn_ctx_free(ctx);
}

static const double PI = 3.14159265358979323846;

static int verbose(void)
{
    const char *v = getenv("TN_TEST_VERBOSE");
    return v != NULL && v[0] != '\0' && v[0] != '0';
}

/*=====================================================================
 * The reference network: a description built beside the tn_net
 *===================================================================*/

/* The channel of unit u: an image's (u mod c), a vector's (every entry its own). */
static size_t channel(const rnode *n, size_t u)
{
    return n->flat ? u : u % n->c;
}

/* h = 0: a vector of c entries. */
static void g_begin(rnet *G, size_t h, size_t w, size_t c)
{
    rg_begin(G, ctx, h ? h : 1, h ? w : 1, c, h == 0);
    G->sw = 1.3;
    G->sb = 0.2;
    G->slope = 0.1;
}

static size_t g_current(rnet *G)
{
    return G->cur;
}

static void g_init(rnet *G)
{
    TN_CK(ctx, tn_net_set(G->net, TN_NET_SIGMA_W, G->sw));
    TN_CK(ctx, tn_net_set(G->net, TN_NET_SIGMA_B, G->sb));
    TN_CK(ctx, tn_net_set(G->net, TN_NET_LEAKY_SLOPE, G->slope));
    TN_CK(ctx, tn_net_init(G->net, 1));
}

/*=====================================================================
 * The reference kernels
 *===================================================================*/

static double phi(tn_activation act, double z, double slope, double *dphi)
{
    double f, d;
    switch (act) {
    case TN_ACT_IDENTITY: f = z, d = 1; break;
    case TN_ACT_RELU: f = z > 0 ? z : 0, d = z > 0; break;
    case TN_ACT_LEAKY_RELU: f = z > 0 ? z : slope * z, d = z > 0 ? 1 : slope; break;
    case TN_ACT_TANH: f = tanh(z), d = 1 - f * f; break;
    case TN_ACT_SIGMOID: f = 1 / (1 + exp(-z)), d = f * (1 - f); break;
    case TN_ACT_ERF: f = erf(z), d = 2 / sqrt(PI) * exp(-z * z); break;
    case TN_ACT_GELU:
        f = 0.5 * z * erfc(-z / sqrt(2.0));
        d = 0.5 * erfc(-z / sqrt(2.0)) + z * exp(-0.5 * z * z) / sqrt(2 * PI);
        break;
    default: f = log1p(exp(z)), d = 1 / (1 + exp(-z)); break;   /* softplus */
    }
    if (dphi) *dphi = d;
    return f;
}

#define GH_N 64
static double gh_x[GH_N], gh_w[GH_N];

/* E[phi(u) phi(v)], E[phi'(u) phi'(v)] for (u, v) ~ N(0, [[a, c], [c, b]]). */
static void ref_dual(tn_activation act, double slope, double a, double b, double c, double *eff,
                     double *edd)
{
    const double r = c / sqrt(a * b);
    if (act == TN_ACT_RELU || act == TN_ACT_LEAKY_RELU) {
        /* Arc-cosine kernels of u+ = max(u, 0) (Cho & Saul), and for the
         * leaky one phi = slope u + (1 - slope) u+, E[u v+] = c / 2. */
        const double t = acos(r > 1 ? 1 : r < -1 ? -1 : r), s = sqrt(a * b);
        const double pp = s / (2 * PI) * (sin(t) + (PI - t) * cos(t)), dd = (PI - t) / (2 * PI);
        const double m = act == TN_ACT_RELU ? 0 : slope;
        *eff = m * m * c + 2 * m * (1 - m) * c / 2 + (1 - m) * (1 - m) * pp;
        *edd = m * m + 2 * m * (1 - m) * 0.5 + (1 - m) * (1 - m) * dd;
        return;
    }
    if (act == TN_ACT_ERF) {
        *eff = 2 / PI * asin(2 * c / sqrt((1 + 2 * a) * (1 + 2 * b)));
        *edd = 4 / PI / sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * c * c);
        return;
    }
    if (act == TN_ACT_IDENTITY) {
        *eff = c, *edd = 1;
        return;
    }
    /* u = sqrt(a) xi, v = (c / sqrt(a)) xi + sqrt(b - c^2 / a) eta. */
    const double l11 = sqrt(a), l21 = c / l11, l22 = sqrt(fmax(b - l21 * l21, 0.0));
    double sf = 0, sd = 0;
    for (int k = 0; k < GH_N; k++) {
        double du, dv;
        const double fu = phi(act, l11 * gh_x[k], slope, &du);
        for (int l = 0; l < GH_N; l++) {
            const double fv = phi(act, l21 * gh_x[k] + l22 * gh_x[l], slope, &dv);
            sf += gh_w[k] * gh_w[l] * fu * fv;
            sd += gh_w[k] * gh_w[l] * du * dv;
        }
    }
    *eff = sf, *edd = sd;
}

/* The value of unit (p, q, c) of an image of node n in v, 0 off the image. */
static double pix(const rnode *n, const double *v, long p, long q, size_t c)
{
    if (p < 0 || q < 0 || p >= (long)n->h || q >= (long)n->w) return 0.0;
    return v[((size_t)p * n->w + (size_t)q) * n->c + c];
}

/* A covariance over (example, unit) pairs: N = examples x units, N x N. */
#define COV(M, N, i, u, j, v) (M)[((i) * (N) / nex + (u)) * (N) + (j) * (N) / nex + (v)]

/* The reference kernels between the rows of x (nex examples): K and T
 * (nex x nex), traced over the output units. */
static void ref_kernels(const rnet *G, const double *x, size_t nex, double *K, double *T)
{
    double *S[32], *Th[32], *val[32];
    int det[32];
    const double sw2 = G->sw * G->sw, sb2 = G->sb * G->sb;
    for (size_t id = 0; id < G->count; id++) {
        const rnode *n = &G->n[id], *a = &G->n[n->in0];
        const size_t U = rsize(n), N = nex * U, Ua = rsize(a);
        S[id] = calloc(N * N, sizeof(double));
        Th[id] = calloc(N * N, sizeof(double));
        val[id] = calloc(N, sizeof(double));
        det[id] = n->kind == R_INPUT ||
                  (n->kind != R_DENSE && n->kind != R_CONV && det[n->in0] &&
                   (n->kind != R_SUM || det[n->in1]));
        if (det[id]) {
            /* Values, by the layer's own loops. */
            for (size_t e = 0; e < nex; e++) {
                double *o = val[id] + e * U;
                const double *v = n->kind == R_INPUT ? x + e * U : val[n->in0] + e * Ua;
                switch (n->kind) {
                case R_INPUT:
                case R_FLATTEN: memcpy(o, v, U * sizeof(double)); break;
                case R_ACT:
                    for (size_t u = 0; u < U; u++) o[u] = phi(n->act, v[u], G->slope, NULL);
                    break;
                case R_SUM:
                    for (size_t u = 0; u < U; u++) o[u] = v[u] + val[n->in1][e * U + u];
                    break;
                case R_GAP:
                    for (size_t c = 0; c < n->c; c++) {
                        double s = 0;
                        for (size_t p = 0; p < a->h * a->w; p++) s += v[p * a->c + c];
                        o[c] = s / (double)(a->h * a->w);
                    }
                    break;
                case R_POOL:
                    for (size_t p = 0; p < n->h; p++)
                        for (size_t q = 0; q < n->w; q++)
                            for (size_t c = 0; c < n->c; c++) {
                                double s = 0;
                                for (size_t da = 0; da < n->kh; da++)
                                    for (size_t db = 0; db < n->kw; db++)
                                        s += pix(a, v, (long)(p * n->s + da) - (long)n->ph,
                                                 (long)(q * n->s + db) - (long)n->pw, c);
                                o[(p * n->w + q) * n->c + c] = s / (double)(n->kh * n->kw);
                            }
                    break;
                }
            }
            for (size_t r = 0; r < N; r++)
                for (size_t t = 0; t < N; t++) S[id][r * N + t] = val[id][r] * val[id][t];
            continue;
        }
        const double *Sa = S[n->in0], *Ta = Th[n->in0];
        const size_t Na = nex * Ua;
        for (size_t i = 0; i < nex; i++)
            for (size_t j = 0; j < nex; j++)
                for (size_t u = 0; u < U; u++)
                    for (size_t v = 0; v < U; v++) {
                        double s = NAN, t = NAN;
                        switch (n->kind) {
                        case R_DENSE:
                            s = t = 0;
                            if (u == v) {
                                double ss = 0, tt = 0;
                                for (size_t k = 0; k < Ua; k++) {
                                    ss += COV(Sa, Na, i, k, j, k);
                                    tt += COV(Ta, Na, i, k, j, k);
                                }
                                s = sw2 * ss / (double)Ua + sb2;
                                t = s + sw2 * tt / (double)Ua;
                            }
                            break;
                        case R_CONV: {
                            s = t = 0;
                            const size_t o1 = u % n->c, o2 = v % n->c;
                            if (o1 != o2) break;
                            const size_t p1 = u / n->c, p2 = v / n->c;
                            double ss = 0, tt = 0;
                            for (size_t da = 0; da < n->kh; da++)
                                for (size_t db = 0; db < n->kw; db++) {
                                    const long r1 = (long)((p1 / n->w) * n->s + da) - (long)n->ph;
                                    const long c1 = (long)((p1 % n->w) * n->s + db) - (long)n->pw;
                                    const long r2 = (long)((p2 / n->w) * n->s + da) - (long)n->ph;
                                    const long c2 = (long)((p2 % n->w) * n->s + db) - (long)n->pw;
                                    if (r1 < 0 || c1 < 0 || r2 < 0 || c2 < 0 || r1 >= (long)a->h ||
                                        r2 >= (long)a->h || c1 >= (long)a->w || c2 >= (long)a->w)
                                        continue;
                                    for (size_t c = 0; c < a->c; c++) {
                                        const size_t k1 = ((size_t)r1 * a->w + (size_t)c1) * a->c + c;
                                        const size_t k2 = ((size_t)r2 * a->w + (size_t)c2) * a->c + c;
                                        ss += COV(Sa, Na, i, k1, j, k2);
                                        tt += COV(Ta, Na, i, k1, j, k2);
                                    }
                                }
                            const double fan = (double)(n->kh * n->kw * a->c);
                            s = sw2 * ss / fan + sb2;
                            t = s + sw2 * tt / fan;
                            break;
                        }
                        case R_ACT:
                            if (channel(n, u) != channel(n, v)) break;   /* never read */
                            if (j * U + v < i * U + u) {                 /* symmetric */
                                s = COV(S[id], N, j, v, i, u);
                                t = COV(Th[id], N, j, v, i, u);
                                break;
                            }
                            ref_dual(n->act, G->slope, COV(Sa, Na, i, u, i, u),
                                     COV(Sa, Na, j, v, j, v), COV(Sa, Na, i, u, j, v), &s, &t);
                            t *= COV(Ta, Na, i, u, j, v);
                            break;
                        case R_FLATTEN:
                            s = COV(Sa, Na, i, u, j, v);
                            t = COV(Ta, Na, i, u, j, v);
                            break;
                        case R_SUM: {
                            const double *Sb = S[n->in1], *Tb = Th[n->in1];
                            s = COV(Sa, Na, i, u, j, v) + COV(Sb, Na, i, u, j, v);
                            t = COV(Ta, Na, i, u, j, v) + COV(Tb, Na, i, u, j, v);
                            break;
                        }
                        case R_GAP: {
                            if (u != v) break;
                            const size_t P = a->h * a->w;
                            s = t = 0;
                            for (size_t p = 0; p < P; p++)
                                for (size_t q = 0; q < P; q++) {
                                    s += COV(Sa, Na, i, p * a->c + u, j, q * a->c + u);
                                    t += COV(Ta, Na, i, p * a->c + u, j, q * a->c + u);
                                }
                            s /= (double)(P * P), t /= (double)(P * P);
                            break;
                        }
                        case R_POOL: {
                            if (u % n->c != v % n->c) break;
                            const size_t c = u % n->c, p1 = u / n->c, p2 = v / n->c;
                            s = t = 0;
                            for (size_t da = 0; da < n->kh; da++)
                                for (size_t db = 0; db < n->kw; db++)
                                    for (size_t ea = 0; ea < n->kh; ea++)
                                        for (size_t eb = 0; eb < n->kw; eb++) {
                                            const long r1 = (long)((p1 / n->w) * n->s + da) - (long)n->ph;
                                            const long c1 = (long)((p1 % n->w) * n->s + db) - (long)n->pw;
                                            const long r2 = (long)((p2 / n->w) * n->s + ea) - (long)n->ph;
                                            const long c2 = (long)((p2 % n->w) * n->s + eb) - (long)n->pw;
                                            if (r1 < 0 || c1 < 0 || r2 < 0 || c2 < 0 ||
                                                r1 >= (long)a->h || r2 >= (long)a->h ||
                                                c1 >= (long)a->w || c2 >= (long)a->w)
                                                continue;
                                            const size_t k1 = ((size_t)r1 * a->w + (size_t)c1) * a->c + c;
                                            const size_t k2 = ((size_t)r2 * a->w + (size_t)c2) * a->c + c;
                                            s += COV(Sa, Na, i, k1, j, k2);
                                            t += COV(Ta, Na, i, k1, j, k2);
                                        }
                            const double k2 = (double)(n->kh * n->kw) * (double)(n->kh * n->kw);
                            s /= k2, t /= k2;
                            break;
                        }
                        }
                        COV(S[id], N, i, u, j, v) = s;
                        COV(Th[id], N, i, u, j, v) = t;
                    }
    }
    const rnode *o = &G->n[G->cur];
    const size_t U = rsize(o), N = nex * U;
    for (size_t i = 0; i < nex; i++)
        for (size_t j = 0; j < nex; j++) {
            double s = 0, t = 0;
            for (size_t u = 0; u < U; u++) {
                s += COV(S[G->cur], N, i, u, j, u);
                t += COV(Th[G->cur], N, i, u, j, u);
            }
            K[i * nex + j] = s / (double)U;
            T[i * nex + j] = t / (double)U;
        }
    for (size_t id = 0; id < G->count; id++) free(S[id]), free(Th[id]), free(val[id]);
}

/*=====================================================================
 * The architectures
 *===================================================================*/

#define N_ARCH 9

/* Every kind; SAME and VALID, strides, rectangular windows; all-pairs and
 * aligned nodes and the passage between them; known values (an activation
 * and a flatten on the input, the input in a sum); outputs that are images,
 * activations and dense layers. */
static void arch(rnet *G, int which, tn_activation act)
{
    switch (which) {
    case 0:     /* plain CNN: SAME conv, pooling, strided VALID conv, flatten, dense */
        g_begin(G, 5, 6, 2);
        r_conv(G, 3, 3, 3, 1, 1);
        r_act(G, act);
        r_pool(G, 2, 2, 2, 1);
        r_conv(G, 4, 2, 3, 2, 0);
        r_act(G, act);
        r_flatten(G);
        r_dense(G, 3);
        break;
    case 1: {   /* a residual block with a strided projection shortcut, GAP readout */
        g_begin(G, 6, 5, 2);
        r_conv(G, 3, 3, 3, 1, 1);
        const size_t in = g_current(G);
        r_act(G, act);
        r_conv(G, 4, 3, 2, 2, 1);
        r_act(G, act);
        r_conv(G, 4, 2, 2, 1, 1);
        const size_t main = g_current(G);
        r_branch(G, in);
        r_conv(G, 4, 1, 1, 2, 0);
        r_sum(G, main);
        r_act(G, act);
        r_gap(G);
        r_dense(G, 3);
        break;
    }
    case 2: {   /* an identity shortcut, then pooling with stride 1 */
        g_begin(G, 4, 4, 3);
        r_conv(G, 3, 3, 3, 1, 1);
        const size_t in = g_current(G);
        r_act(G, act);
        r_conv(G, 3, 3, 3, 1, 1);
        r_sum(G, in);
        r_pool(G, 3, 3, 1, 1);
        r_act(G, act);
        r_flatten(G);
        r_dense(G, 2);
        break;
    }
    case 3:     /* an activation and a flatten on the input itself */
        g_begin(G, 2, 3, 2);
        r_act(G, act);
        r_flatten(G);
        r_dense(G, 4);
        r_act(G, act);
        r_dense(G, 2);
        break;
    case 4: {   /* a flat input into dense layers joined by a residual sum */
        g_begin(G, 0, 0, 5);
        r_dense(G, 4);
        const size_t in = g_current(G);
        r_act(G, act);
        r_dense(G, 4);
        r_sum(G, in);
        r_act(G, act);
        r_dense(G, 3);
        break;
    }
    case 5:     /* the input added to a convolution, then global pooling */
        g_begin(G, 4, 3, 2);
        r_conv(G, 2, 3, 3, 1, 1);
        r_sum(G, 0);
        r_gap(G);
        r_dense(G, 2);
        break;
    case 6:     /* ends with a convolution: the output is an image */
        g_begin(G, 4, 4, 2);
        r_conv(G, 3, 3, 3, 1, 1);
        r_act(G, act);
        r_conv(G, 2, 2, 2, 1, 0);
        break;
    case 7:     /* an activation on a flattened image, and a trailing activation */
        g_begin(G, 3, 4, 2);
        r_conv(G, 3, 3, 3, 2, 1);
        r_flatten(G);
        r_act(G, act);
        r_dense(G, 3);
        r_act(G, act);
        break;
    default:    /* a dense layer reading an image; pooling of the input */
        g_begin(G, 4, 4, 1);
        r_pool(G, 2, 2, 2, 0);
        r_conv(G, 2, 2, 2, 1, 1);
        r_act(G, act);
        r_dense(G, 3);
        break;
    }
    g_init(G);
}

static size_t in_size(const rnet *G)
{
    return rsize(&G->n[0]);
}

/*=====================================================================
 * The recursions against the reference
 *===================================================================*/

/* Sums of at most a few thousand O(1) terms in another order than the
 * library's, and duals good to rounding (closed forms) or to ~1e-13 (the
 * library's Mehler series): 1e-11 relative to the largest entry (the
 * kernels are O(1) here).  GELU stands for the activations without a closed
 * form: it takes the same path through the library (per-position Mehler
 * expansions), and, being entire, the reference's 64 x 64 Gauss-Hermite
 * product rule integrates it to ~1e-14 at these variances (up to ~6 after the sums); tanh and
 * sigmoid have poles near the real axis, where that rule converges too
 * slowly to serve as a reference (4e-6 at variance 2 with 64 x 64 nodes);
 * their duals are checked against a polar integrator in test_analytic.c.
 * Measured worst: 3e-16 closed forms, 1e-13 GELU. */
START_TEST(recursion_matches_direct_loops)
{
    static const tn_activation acts[] = {TN_ACT_RELU, TN_ACT_ERF, TN_ACT_GELU, TN_ACT_LEAKY_RELU,
                                         TN_ACT_IDENTITY};
    const int which = _i / 5;
    const tn_activation act = acts[_i % 5];
    if (act == TN_ACT_IDENTITY && which == 3) return;   /* no layer before the dense one */
    rnet G;
    arch(&G, which, act);
    const size_t n1 = 3, n2 = 2, d = in_size(&G), n = n1 + n2;
    double *x = tu_random(n * d, 11 + (uint64_t)_i, 1.0);
    double Kr[25], Tr[25], K[9], T[9], K12[6], T12[6];
    ref_kernels(&G, x, n, Kr, Tr);
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(G.net, &k));
    TN_CK(ctx, tn_ntk_analytic(k, x, n1, NULL, 0, K, T));
    TN_CK(ctx, tn_ntk_analytic(k, x, n1, x + n1 * d, n2, K12, T12));
    double Ks[9], Ts[9], K12r[6], T12r[6];
    for (size_t i = 0; i < n1; i++) {
        for (size_t j = 0; j < n1; j++) Ks[i * n1 + j] = Kr[i * n + j], Ts[i * n1 + j] = Tr[i * n + j];
        for (size_t j = 0; j < n2; j++)
            K12r[i * n2 + j] = Kr[i * n + n1 + j], T12r[i * n2 + j] = Tr[i * n + n1 + j];
    }
    const double e[4] = {tu_rel_err(K, Ks, 9, 0), tu_rel_err(T, Ts, 9, 0),
                         tu_rel_err(K12, K12r, 6, 0), tu_rel_err(T12, T12r, 6, 0)};
    if (verbose())
        printf("arch %d %-10s NNGP %.1e NTK %.1e; x2: %.1e %.1e\n", which, tu_act_names[act], e[0],
               e[1], e[2], e[3]);
    for (int m = 0; m < 4; m++)
        ck_assert_msg(e[m] < 1e-11, "arch %d %s: errors %.3g %.3g %.3g %.3g", which,
                      tu_act_names[act], e[0], e[1], e[2], e[3]);
    for (size_t i = 0; i < n1; i++)
        for (size_t j = 0; j < n1; j++) {
            ck_assert(K[i * n1 + j] == K[j * n1 + i] && T[i * n1 + j] == T[j * n1 + i]);
        }
    tn_ntk_free(k);
    tn_net_free(G.net);
    free(x);
}
END_TEST

/*=====================================================================
 * Special cases that must agree exactly (MATH.md §10)
 *===================================================================*/

/* nngp and ntk of the tn_net (x: n rows, NULL x2). */
static void kernels(tn_net *net, const double *x, size_t n, double *K, double *T)
{
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, K, T));
    tn_ntk_free(k);
}

static tn_net *image_net(size_t h, size_t w, size_t c)
{
    const size_t shape[3] = {h, w, c};
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
    return net;
}

static void finish(tn_net *net, tn_activation act)
{
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.3));
    TN_CK(ctx, tn_net_init(net, 5));
}

/* The same sums in the same order (the window's offsets row-major are the
 * image's pixels; a one-pixel window's one offset), so the kernels are
 * equal bit for bit.  _i: the activation. */
START_TEST(whole_image_valid_conv_is_dense)
{
    const tn_activation act = (tn_activation)_i;
    const size_t n = 4;
    for (int pointwise = 0; pointwise < 2; pointwise++) {
        const size_t h = pointwise ? 1 : 3, w = pointwise ? 1 : 4, c = 2, d = h * w * c;
        double *x = tu_random(n * d, 3, 1.0), Kc[16], Tc[16], Kd[16], Td[16];
        tn_net *conv = image_net(h, w, c), *dense = image_net(h, w, c);
        TN_CK(ctx, tn_net_add_conv2d(conv, 5, h, w, 1, TN_PAD_VALID));
        TN_CK(ctx, tn_net_add_dense(dense, 5));
        finish(conv, act);
        finish(dense, act);
        kernels(conv, x, n, Kc, Tc);
        kernels(dense, x, n, Kd, Td);
        ck_assert_msg(memcmp(Kc, Kd, sizeof Kc) == 0 && memcmp(Tc, Td, sizeof Tc) == 0,
                      "%s %s: NNGP differs by %.3g, NTK by %.3g", tu_act_names[act],
                      pointwise ? "1x1" : "whole image", tu_rel_err(Kc, Kd, 16, 0),
                      tu_rel_err(Tc, Td, 16, 0));
        tn_net_free(conv);
        tn_net_free(dense);
        free(x);
    }
}
END_TEST

/* On a 1 x 1 image, flatten and global average pooling are the same map
 * (the mean over one pixel), whatever comes before: a SAME 3 x 3
 * convolution (only its centre sees the image) and an activation. */
START_TEST(flatten_and_gap_readouts_agree_on_one_pixel)
{
    const tn_activation act = (tn_activation)_i;
    const size_t n = 3, d = 3;
    double *x = tu_random(n * d, 4, 1.0), Kf[9], Tf[9], Kg[9], Tg[9];
    tn_net *nets[2];
    for (int gap = 0; gap < 2; gap++) {
        nets[gap] = image_net(1, 1, d);
        TN_CK(ctx, tn_net_add_conv2d(nets[gap], 4, 3, 3, 1, TN_PAD_SAME));
        TN_CK(ctx, tn_net_add_activation(nets[gap], act));
        TN_CK(ctx, tn_net_add_conv2d(nets[gap], 4, 1, 1, 1, TN_PAD_VALID));
        TN_CK(ctx, gap ? tn_net_add_global_avg_pool(nets[gap]) : tn_net_add_flatten(nets[gap]));
        finish(nets[gap], act);
    }
    kernels(nets[0], x, n, Kf, Tf);
    kernels(nets[1], x, n, Kg, Tg);
    ck_assert(memcmp(Kf, Kg, sizeof Kf) == 0 && memcmp(Tf, Tg, sizeof Tf) == 0);
    tn_net_free(nets[0]);
    tn_net_free(nets[1]);
    free(x);
}
END_TEST

/*=====================================================================
 * Tiles, progress, cancellation
 *===================================================================*/

static int calls, cancel_at;

static int count_progress(void *user, double fraction)
{
    (void)user;
    ck_assert(fraction >= 0.0 && fraction <= 1.0 + 1e-12);
    return ++calls == cancel_at;
}

/* A pooling network on 6 x 6 images carries every pixel pair: ~60 KB per
 * example pair, and GELU's expansions take 16 KB per position of a tile's
 * examples, so a budget of 2 MiB holds tiles of a few pairs: 8 examples take
 * several tiles (counted by the progress reports).  Each tile runs the
 * same arithmetic on its pairs: bit-for-bit the kernel of one tile for the
 * closed forms; with a smooth activation each tile expands its positions
 * for the correlations it meets, which changes the series' truncation
 * within its target (1e-13 relative): 1e-12.  _i: ReLU, GELU. */
START_TEST(tiles_give_the_kernel_of_one_tile)
{
    const tn_activation act = _i ? TN_ACT_GELU : TN_ACT_RELU;
    tn_net *net = image_net(6, 6, 1);
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_avg_pool2d(net, 2, 2, 2, TN_PAD_VALID));
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_global_avg_pool(net));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_init(net, 1));
    const size_t n1 = 8, n2 = 7, d = 36;
    double *x1 = tu_random(n1 * d, 5, 1.0), *x2 = tu_random(n2 * d, 6, 1.0);
    double K[64], T[64], Kt[64], Tt[64];
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ctx_set_progress(ctx, count_progress, NULL));
    for (int sym = 0; sym < 2; sym++) {
        const size_t m = sym ? n1 : n2;
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 256.0 * 1024 * 1024));
        calls = 0, cancel_at = -1;
        TN_CK(ctx, tn_ntk_analytic(k, x1, n1, sym ? NULL : x2, n2, K, T));
        const int one_tile = calls;
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 2048.0 * 1024));
        calls = 0;
        TN_CK(ctx, tn_ntk_analytic(k, x1, n1, sym ? NULL : x2, n2, Kt, Tt));
        ck_assert_int_ge(calls, one_tile + 2);
        const double eK = tu_rel_err(Kt, K, n1 * m, 0), eT = tu_rel_err(Tt, T, n1 * m, 0);
        if (verbose())
            printf("%s %s: %d progress calls in tiles, %d in one; differences %.1e %.1e\n",
                   tu_act_names[act], sym ? "x2 = x1" : "x2", calls, one_tile, eK, eT);
        if (act == TN_ACT_RELU)
            ck_assert(memcmp(K, Kt, n1 * m * sizeof(double)) == 0 &&
                      memcmp(T, Tt, n1 * m * sizeof(double)) == 0);
        else
            ck_assert_msg(eK < 1e-12 && eT < 1e-12, "%.3g %.3g", eK, eT);
    }
    /* Cancelled in the third report: TN_E_CANCELLED, both outputs NaN. */
    calls = 0, cancel_at = 3;
    ck_assert_int_eq(tn_ntk_analytic(k, x1, n1, NULL, 0, K, T), TN_E_CANCELLED);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_ntk_analytic"));
    for (size_t e = 0; e < n1 * n1; e++) ck_assert(isnan(K[e]) && isnan(T[e]));
    TN_CK(ctx, tn_ctx_set_progress(ctx, NULL, NULL));
    tn_ntk_free(k);
    tn_net_free(net);
    free(x1), free(x2);
}
END_TEST

/* The budget bounds the whole workspace, the variances kept for every
 * example included.  A CNN with a flatten readout on 28 x 28 images keeps
 * ~25 KB of variances per example (784 pixels, 4 activations and the
 * readout), so 300 examples keep ~7.5 MB: within a budget of 8 MiB the
 * tiles get what remains.  The allowance (1.01 x + 64 KiB, as the
 * empirical NTK's test allows 1% + 4 KiB) covers the plan (a few hundred
 * bytes per node) and the kinds' setup. */
START_TEST(the_budget_holds_every_example)
{
    tn_net *net = image_net(28, 28, 1);
    for (int l = 0; l < 4; l++) {
        TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    }
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_init(net, 1));
    const size_t n = 300, d = 784;
    const double budget = 8.0 * 1024 * 1024;
    double *x = tu_random(n * d, 9, 1.0), *K = malloc(n * n * sizeof(double));
    double *Kr = malloc(n * n * sizeof(double));
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, Kr, NULL));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, budget));
    size_t before, peak;
    TN_CK(ctx, tn_ctx_reset_peak_memory(ctx));
    TN_CK(ctx, tn_ctx_get_memory(ctx, &before, NULL));
    TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, K, NULL));
    TN_CK(ctx, tn_ctx_get_memory(ctx, NULL, &peak));
    ck_assert_msg((double)(peak - before) <= budget * 1.01 + 65536,
                  "peak %zu bytes over the budget %.0f", peak - before, budget);
    /* Tiles are the same arithmetic: bit for bit (ReLU). */
    ck_assert(memcmp(K, Kr, n * n * sizeof(double)) == 0);
    /* A budget the variances alone exceed: refused, and it says why. */
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 4.0 * 1024 * 1024));
    ck_assert_int_eq(tn_ntk_analytic(k, x, n, NULL, 0, K, NULL), TN_E_NOMEM);
    ck_assert_msg(strstr(tn_ctx_errmsg(ctx), "besides the variances of the 300 examples"), "%s",
                  tn_ctx_errmsg(ctx));
    tn_ntk_free(k);
    tn_net_free(net);
    free(x), free(K), free(Kr);
}
END_TEST

/* An example met again -- in x2, or twice in x1 -- has with its copy
 * exactly the kernel it has with itself (the diagonal of the symmetric
 * case): the arccosine at correlation 1 would turn a last-bit difference of
 * their Gram into ~1e-8. */
START_TEST(an_example_met_again_is_its_own_diagonal)
{
    for (int v = 0; v < 3; v++) {
        /* GAP, flatten; an MLP on 300 inputs (long dot products, which the
         * GEMM kernels split). */
        const size_t flat = 300;
        tn_net *net;
        if (v < 2) {
            net = image_net(10, 10, 3);
            TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
            TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
            TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 2, TN_PAD_SAME));
            TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
            TN_CK(ctx, v ? tn_net_add_global_avg_pool(net) : tn_net_add_flatten(net));
        } else {
            TN_CK(ctx, tn_net_create(ctx, &flat, 1, &net));
            TN_CK(ctx, tn_net_add_dense(net, 8));
            TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        }
        TN_CK(ctx, tn_net_add_dense(net, 1));
        TN_CK(ctx, tn_net_init(net, 1));
        /* 48 examples (GEMMs past BLIS's small-matrix path), the last a
         * copy of example 1. */
        const size_t d = 300, n = 48, h = n / 2;
        double *x = tu_random(n * d, 41, 1.0), *K = malloc(n * n * sizeof(double));
        double *T = malloc(n * n * sizeof(double)), *K2 = malloc(h * h * sizeof(double));
        double *T2 = malloc(h * h * sizeof(double));
        memcpy(x + (n - 1) * d, x + 1 * d, d * sizeof(double));
        tn_ntk *k;
        TN_CK(ctx, tn_ntk_create(net, &k));
        TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, K, T));
        TN_CK(ctx, tn_ntk_analytic(k, x, h, x + h * d, h, K2, T2));
        ck_assert_msg(K[1 * n + n - 1] == K[1 * n + 1] && T[1 * n + n - 1] == T[1 * n + 1],
                      "variant %d: x2 = x1: %.17g %.17g against %.17g %.17g", v,
                      K[1 * n + n - 1], T[1 * n + n - 1], K[1 * n + 1], T[1 * n + 1]);
        ck_assert_msg(K2[1 * h + h - 1] == K[1 * n + 1] && T2[1 * h + h - 1] == T[1 * n + 1],
                      "variant %d: x2: %.17g %.17g against %.17g %.17g", v, K2[1 * h + h - 1],
                      T2[1 * h + h - 1], K[1 * n + 1], T[1 * n + 1]);
        free(K), free(T), free(K2), free(T2);
        tn_ntk_free(k);
        tn_net_free(net);
        free(x);
    }
}
END_TEST

/*=====================================================================
 * Refusals and bad input
 *===================================================================*/

static void refused(tn_net *net, const double *x, tn_status want, const char *words)
{
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    double *K = tu_poison(4), *T = tu_poison(4);
    const tn_status st = tn_ntk_analytic(k, x, 2, NULL, 0, K, T);
    ck_assert_msg(st == want, "status %s, wanted %s (%s)", tn_status_string(st),
                  tn_status_string(want), tn_ctx_errmsg(ctx));
    ck_assert_msg(strstr(tn_ctx_errmsg(ctx), "tn_ntk_analytic: ") == tn_ctx_errmsg(ctx) &&
                      strstr(tn_ctx_errmsg(ctx), words) != NULL,
                  "message '%s' (wanted '%s')", tn_ctx_errmsg(ctx), words);
    ck_assert(tu_is_poison(K, 4) && tu_is_poison(T, 4));
    free(K), free(T);
    tn_ntk_free(k);
    tn_net_free(net);
}

START_TEST(refused_architectures_and_bad_input)
{
    double x[2 * 18];
    for (size_t e = 0; e < 36; e++) x[e] = 0.1 * (double)(e % 7) - 0.3;
    size_t a, b;
    /* A node added to itself (MATH.md §9). */
    tn_net *net = image_net(3, 3, 2);
    TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_current(net, &a));
    TN_CK(ctx, tn_net_add_sum(net, a));
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_init(net, 1));
    refused(net, x, TN_E_UNSUPPORTED, "node 2 (sum) adds two branches that both come from node 1");
    /* A shortcut with an activation but no layer with parameters. */
    net = image_net(3, 3, 2);
    TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_current(net, &a));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_sum(net, a));
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_init(net, 1));
    refused(net, x, TN_E_UNSUPPORTED, "(sum)");
    /* Two branches each ending in an activation after their own conv:
     * uncorrelated but not centred, E[relu(u)] E[relu(v)] > 0. */
    net = image_net(3, 3, 2);
    TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_current(net, &a));
    TN_CK(ctx, tn_net_branch(net, 0));
    TN_CK(ctx, tn_net_add_conv2d(net, 2, 1, 1, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_sum(net, a));
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_init(net, 1));
    refused(net, x, TN_E_UNSUPPORTED, "neither of which ends in a layer with parameters");
    /* An activation of an activation; of the input plus a convolution. */
    for (int v = 0; v < 2; v++) {
        net = image_net(3, 3, 2);
        TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
        if (v == 0) TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        if (v == 1) TN_CK(ctx, tn_net_add_sum(net, 0));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_current(net, &b));
        TN_CK(ctx, tn_net_add_flatten(net));
        TN_CK(ctx, tn_net_add_dense(net, 1));
        TN_CK(ctx, tn_net_init(net, 1));
        char words[64];
        snprintf(words, sizeof words, "node %zu (activation) reads node %zu, which is not Gaussian",
                 b, b - 1);
        refused(net, x, TN_E_UNSUPPORTED, words);
    }
    /* Standard parameterization. */
    net = image_net(3, 3, 2);
    TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_init(net, 1));
    refused(net, x, TN_E_UNSUPPORTED, "NTK parameterization");
    /* Inputs not finite, or whose kernel overflows; a budget that cannot
     * hold one pair of 28 x 28 images with every pixel pair (4.9 MB per
     * tensor). */
    for (int v = 0; v < 3; v++) {
        net = image_net(v == 2 ? 28 : 3, v == 2 ? 28 : 3, v == 2 ? 1 : 2);
        TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_global_avg_pool(net));
        TN_CK(ctx, tn_net_add_dense(net, 1));
        TN_CK(ctx, tn_net_init(net, 1));
        double *y = calloc(2 * 784, sizeof(double));
        memcpy(y, x, sizeof x);
        if (v == 0) y[5] = NAN;
        if (v == 1) y[7] = 1e200;
        tn_ntk *k;
        TN_CK(ctx, tn_ntk_create(net, &k));
        if (v == 2) TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 1024.0 * 1024));
        double *K = tu_poison(4), *T = tu_poison(4);
        static const char *const words[] = {"an input is not finite", "the kernel exceeds",
                                            "raise TN_NTK_MEMORY_BUDGET"};
        const tn_status st = tn_ntk_analytic(k, y, 2, NULL, 0, K, T);
        ck_assert_int_eq(st, v == 2 ? TN_E_NOMEM : TN_E_INVALID_ARG);
        ck_assert_msg(strstr(tn_ctx_errmsg(ctx), words[v]), "%s", tn_ctx_errmsg(ctx));
        ck_assert(tu_is_poison(K, 4) && tu_is_poison(T, 4));
        /* Arguments. */
        ck_assert_int_eq(tn_ntk_analytic(k, y, 2, NULL, 0, NULL, NULL), TN_E_INVALID_ARG);
        ck_assert_int_eq(tn_ntk_analytic(k, NULL, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
        ck_assert_int_eq(tn_ntk_analytic(k, y, 0, NULL, 0, K, T), TN_E_INVALID_ARG);
        ck_assert_int_eq(tn_ntk_analytic(k, y, 2, y, 0, K, T), TN_E_INVALID_ARG);
        ck_assert_int_eq(tn_ntk_analytic(NULL, y, 2, NULL, 0, K, T), TN_E_INVALID_ARG);
        ck_assert(tu_is_poison(K, 4) && tu_is_poison(T, 4));
        free(K), free(T), free(y);
        tn_ntk_free(k);
        tn_net_free(net);
    }
}
END_TEST

/* Every allocation fails in turn: TN_E_NOMEM with the call's message,
 * outputs untouched (every allocation comes before the first write); then
 * the call succeeds with the undisturbed result.  A network with pooling,
 * a residual sum and a smooth activation (its Mehler workspace). */
START_TEST(allocation_failures_change_nothing)
{
    rnet G;
    arch(&G, 1, TN_ACT_GELU);
    const size_t n1 = 3, n2 = 2, d = in_size(&G);
    double *x = tu_random((n1 + n2) * d, 9, 1.0), Kref[6], Tref[6];
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(G.net, &k));
    TN_CK(ctx, tn_ntk_analytic(k, x, n1, x + n1 * d, n2, Kref, Tref));
    long kk;
    for (kk = 1; kk < 200; kk++) {
        double *K = tu_poison(6), *T = tu_poison(6);
        tni_ctx_fail_alloc_after(ctx, kk);
        const tn_status st = tn_ntk_analytic(k, x, n1, x + n1 * d, n2, K, T);
        const long left = ctx->alloc_countdown;
        tni_ctx_fail_alloc_after(ctx, 0);
        if (st == TN_OK) {
            ck_assert(memcmp(K, Kref, sizeof Kref) == 0 && memcmp(T, Tref, sizeof Tref) == 0);
            free(K), free(T);
            if (left > 0) break;
            continue;
        }
        ck_assert_int_eq(st, TN_E_NOMEM);
        ck_assert_msg(strncmp(tn_ctx_errmsg(ctx), "tn_ntk_analytic: ", 17) == 0, "'%s'",
                      tn_ctx_errmsg(ctx));
        ck_assert(tu_is_poison(K, 6) && tu_is_poison(T, 6));
        free(K), free(T);
    }
    ck_assert_int_lt(kk, 200);
    ck_assert_int_gt(kk, 5);
    tn_ntk_free(k);
    tn_net_free(G.net);
    free(x);
}
END_TEST

/*=====================================================================
 * Monte Carlo kernels
 *===================================================================*/

/* A CNN with a residual block, pooling and a flatten readout, of width W. */
static tn_net *mc_net(size_t W, size_t outputs)
{
    tn_net *net = image_net(4, 4, 2);
    size_t in;
    TN_CK(ctx, tn_net_add_conv2d(net, W, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_current(net, &in));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_conv2d(net, W, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_sum(net, in));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_avg_pool2d(net, 2, 2, 2, TN_PAD_VALID));
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, outputs));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.2));
    TN_CK(ctx, tn_net_init(net, 77));
    return net;
}

/* One sample is the empirical kernels of the network initialized with
 * seed (the NTK bit for bit: the same computation on the same parameters;
 * the NNGP to rounding); several are the mean of single ones; the
 * network's parameters are untouched; TN_NTK_FULL gives the full matrices.
 * Progress runs once to 1 and cancelling gives NaN. */
START_TEST(monte_carlo_is_the_mean_of_empirical_kernels)
{
    tn_net *net = mc_net(3, 2);
    const size_t n1 = 3, n2 = 2, d = 32, O = 2, P = tn_net_num_params(net);
    double *x = tu_random((n1 + n2) * d, 21, 1.0), *x2 = x + n1 * d;
    double *theta = tu_params(ctx, net);
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    for (int full = 0; full < 2; full++) {
        const size_t r = full ? n1 * O : n1, c = full ? n2 * O : n2;
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, full ? TN_NTK_FULL : TN_NTK_TRACE));
        double K[36], T[36], Km[36] = {0}, Tm[36] = {0};
        for (uint64_t s = 0; s < 3; s++) {
            /* The empirical kernels of the network drawn with seed 40 + s. */
            tn_net *copy;
            TN_CK(ctx, tn_net_clone(net, &copy));
            TN_CK(ctx, tn_net_init(copy, 40 + s));
            tn_ntk *kc;
            TN_CK(ctx, tn_ntk_create(copy, &kc));
            TN_CK(ctx, tn_ntk_set(kc, TN_NTK_OUTPUTS, full ? TN_NTK_FULL : TN_NTK_TRACE));
            double Te[36], f1[6], f2[4], Ke[36];
            TN_CK(ctx, tn_ntk_compute(kc, x, n1, x2, n2, Te));
            TN_CK(ctx, tn_net_forward(copy, x, n1, f1));
            TN_CK(ctx, tn_net_forward(copy, x2, n2, f2));
            for (size_t i = 0; i < n1; i++)
                for (size_t j = 0; j < n2; j++)
                    for (size_t a = 0; a < O; a++)
                        for (size_t b = 0; b < O; b++) {
                            const double v = f1[i * O + a] * f2[j * O + b];
                            if (full)
                                Ke[(i * O + a) * c + j * O + b] = v;
                            else if (a == b)
                                Ke[i * c + j] = (a == 0 ? 0.0 : Ke[i * c + j]) + v / (double)O;
                        }
            TN_CK(ctx, tn_ntk_monte_carlo(k, 40 + s, 1, x, n1, x2, n2, K, T));
            ck_assert(memcmp(T, Te, r * c * sizeof(double)) == 0);
            ck_assert_double_le(tu_rel_err(K, Ke, r * c, 0), 1e-14);
            for (size_t e = 0; e < r * c; e++) Km[e] += K[e] / 3, Tm[e] += T[e] / 3;
            tn_ntk_free(kc);
            tn_net_free(copy);
        }
        TN_CK(ctx, tn_ntk_monte_carlo(k, 40, 3, x, n1, x2, n2, K, T));
        ck_assert_double_le(tu_rel_err(K, Km, r * c, 0), 1e-14);
        ck_assert_double_le(tu_rel_err(T, Tm, r * c, 0), 1e-14);
        /* x2 NULL: symmetric, the pairs of x1 (against x1 passed explicitly). */
        double Ks[36], Ts[36];
        TN_CK(ctx, tn_ntk_monte_carlo(k, 40, 2, x, n1, NULL, 0, Ks, NULL));
        TN_CK(ctx, tn_ntk_monte_carlo(k, 40, 2, x, n1, x, n1, K, NULL));
        ck_assert_double_le(tu_rel_err(Ks, K, r * r, 0), 1e-14);
        TN_CK(ctx, tn_ntk_monte_carlo(k, 40, 2, x, n1, NULL, 0, NULL, Ts));
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < r; j++)
                ck_assert(Ks[i * r + j] == Ks[j * r + i] && Ts[i * r + j] == Ts[j * r + i]);
    }
    double *now = tu_params(ctx, net);
    ck_assert(memcmp(now, theta, P * sizeof(double)) == 0);
    /* Progress and cancellation. */
    double K[6], T[6];
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, TN_NTK_TRACE));
    TN_CK(ctx, tn_ctx_set_progress(ctx, count_progress, NULL));
    calls = 0, cancel_at = -1;
    TN_CK(ctx, tn_ntk_monte_carlo(k, 1, 4, x, n1, x2, n2, K, T));
    ck_assert_int_ge(calls, 4);
    calls = 0, cancel_at = 2;
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 4, x, n1, x2, n2, K, T), TN_E_CANCELLED);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_ntk_monte_carlo"));
    for (size_t e = 0; e < 6; e++) ck_assert(isnan(K[e]) && isnan(T[e]));
    calls = 0, cancel_at = 2;
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 4, x, n1, x2, n2, K, NULL), TN_E_CANCELLED);
    TN_CK(ctx, tn_ctx_set_progress(ctx, NULL, NULL));
    /* Bad arguments change nothing. */
    double *Kp = tu_poison(6);
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 0, x, n1, x2, n2, Kp, NULL), TN_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "samples is 0"));
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 2, x, n1, x2, n2, NULL, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 2, NULL, n1, x2, n2, Kp, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 2, x, 0, x2, n2, Kp, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_monte_carlo(NULL, 1, 2, x, n1, x2, n2, Kp, NULL), TN_E_INVALID_ARG);
    x[3] = NAN;
    ck_assert_int_eq(tn_ntk_monte_carlo(k, 1, 2, x, n1, x2, n2, Kp, NULL), TN_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not finite"));
    ck_assert(tu_is_poison(Kp, 6));
    free(Kp), free(now), free(theta), free(x);
    tn_ntk_free(k);
    tn_net_free(net);
}
END_TEST

/* Least-squares slope of log err against log width. */
static double loglog_slope(const double *w, const double *err, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) mx += log(w[i]) / n, my += log(err[i]) / n;
    for (int i = 0; i < n; i++) {
        sxy += (log(w[i]) - mx) * (log(err[i]) - my);
        sxx += (log(w[i]) - mx) * (log(w[i]) - mx);
    }
    return sxy / sxx;
}

static double frob_rel(const double *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / den);
}

/* The analytic kernels are the limit of the Monte Carlo ones (MATH.md §10.5).
 *
 * NTK: a one-sample NTK of the residual CNN fluctuates around the analytic
 * one by O(1/sqrt(width)), and is biased by O(1/width) (measured: 10% at
 * width 32, 1.6% at 128, below 1% at 512).  The statistic is the RMS over
 * 12 seeds of the relative Frobenius error over the 3 x 3 kernel; its
 * relative spread is ~12%, so the fitted slope over widths 32, 128, 512
 * (expected -0.5, a little steeper with the bias: measured -0.59) has a
 * standard deviation of ~0.06: [-0.9, -0.25] is about +-5 sigma; and the
 * error at 512 must be under the error at 32 / 2.5 (expected / 4).
 *
 * NNGP: one sample's f(x) f(x') is a product of two Gaussians whatever the
 * width, so its error falls with the samples instead: the mean over S
 * samples of O = 4 outputs has relative error ~ sqrt((K_xx K_yy + K_xy^2) /
 * (S O)) / K_xy, slope -0.5 in S, plus the O(1/width) bias (~1% at width
 * 128, below the sampling error at S = 64: ~5%).  The RMS over 16
 * replicates has a relative spread of ~10%, so the slope over S = 4, 16, 64
 * has a standard deviation of ~0.05: [-0.8, -0.2] is +-6 sigma. */
START_TEST(monte_carlo_converges_to_analytic)
{
    enum { SEEDS = 12, REPS = 16 };
    static const double widths[3] = {32, 128, 512}, counts[3] = {4, 16, 64};
    const size_t n = 3, d = 32;
    double *x = tu_random(n * d, 31, 1.0), K[9], T[9], errK[3], errT[3];
    for (int wi = 0; wi < 3; wi++) {
        tn_net *net = mc_net((size_t)widths[wi], 1);
        tn_ntk *k;
        TN_CK(ctx, tn_ntk_create(net, &k));
        double Ta[9];
        TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, NULL, Ta));
        double sT = 0;
        for (uint64_t s = 0; s < SEEDS; s++) {
            TN_CK(ctx, tn_ntk_monte_carlo(k, 1000 * (uint64_t)wi + s, 1, x, n, NULL, 0, NULL, T));
            sT += pow(frob_rel(T, Ta, 9), 2);
        }
        errT[wi] = sqrt(sT / SEEDS);
        tn_ntk_free(k);
        tn_net_free(net);
    }
    tn_net *net = mc_net(128, 4);
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    double Ka[9];
    TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, Ka, NULL));
    for (int si = 0; si < 3; si++) {
        double sK = 0;
        for (uint64_t r = 0; r < REPS; r++) {
            TN_CK(ctx, tn_ntk_monte_carlo(k, 100000 * (uint64_t)si + 1000 * r, (size_t)counts[si],
                                          x, n, NULL, 0, K, NULL));
            sK += pow(frob_rel(K, Ka, 9), 2);
        }
        errK[si] = sqrt(sK / REPS);
    }
    tn_ntk_free(k);
    tn_net_free(net);
    const double slopeK = loglog_slope(counts, errK, 3), slopeT = loglog_slope(widths, errT, 3);
    if (verbose())
        printf("Monte Carlo: NTK over widths %.3g %.3g %.3g (slope %.2f); NNGP over samples "
               "%.3g %.3g %.3g (slope %.2f)\n",
               errT[0], errT[1], errT[2], slopeT, errK[0], errK[1], errK[2], slopeK);
    ck_assert_msg(slopeT > -0.9 && slopeT < -0.25 && errT[2] < errT[0] / 2.5,
                  "NTK errors %.3g %.3g %.3g slope %.2f", errT[0], errT[1], errT[2], slopeT);
    ck_assert_msg(slopeK > -0.8 && slopeK < -0.2 && errK[2] < errK[0] / 2.5,
                  "NNGP errors %.3g %.3g %.3g slope %.2f", errK[0], errK[1], errK[2], slopeK);
    free(x);
}
END_TEST

int main(void)
{
    if (verbose()) setvbuf(stdout, NULL, _IONBF, 0);
    double scratch[3 * GH_N + 1];
    tni_gauss_hermite(GH_N, gh_x, gh_w, NULL, scratch);
    Suite *s = suite_create("analytic_graph");
    TCase *rec = tcase_create("recursion");
    tcase_add_checked_fixture(rec, setup, teardown);
    tcase_set_timeout(rec, 120);
    tcase_add_loop_test(rec, recursion_matches_direct_loops, 0, 5 * N_ARCH);
    suite_add_tcase(s, rec);
    TCase *exact = tcase_create("special cases");
    tcase_add_checked_fixture(exact, setup, teardown);
    tcase_add_loop_test(exact, whole_image_valid_conv_is_dense, 0, 8);
    tcase_add_loop_test(exact, flatten_and_gap_readouts_agree_on_one_pixel, 0, 8);
    suite_add_tcase(s, exact);
    TCase *tiles = tcase_create("tiles");
    tcase_add_checked_fixture(tiles, setup, teardown);
    tcase_set_timeout(tiles, 120);
    tcase_add_loop_test(tiles, tiles_give_the_kernel_of_one_tile, 0, 2);
    tcase_add_test(tiles, an_example_met_again_is_its_own_diagonal);
    tcase_add_test(tiles, the_budget_holds_every_example);
    suite_add_tcase(s, tiles);
    TCase *bad = tcase_create("bad input");
    tcase_add_checked_fixture(bad, setup, teardown);
    tcase_add_test(bad, refused_architectures_and_bad_input);
    tcase_add_test(bad, allocation_failures_change_nothing);
    suite_add_tcase(s, bad);
    TCase *mc = tcase_create("monte carlo");
    tcase_add_checked_fixture(mc, setup, teardown);
    tcase_set_timeout(mc, 240);
    tcase_add_test(mc, monte_carlo_is_the_mean_of_empirical_kernels);
    tcase_add_test(mc, monte_carlo_converges_to_analytic);
    suite_add_tcase(s, mc);
    return tu_run(s);
}
