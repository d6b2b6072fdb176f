/* test_graph.c -- convolutional and residual networks (MATH.md §9, §10)
 * against an independent computation: a reference interpreter written here
 * with direct loops (its own padding arithmetic, convolution, pooling,
 * flatten and sums), central finite differences of that interpreter for the
 * JVP and the Taylor terms, and the identities of §10: a whole-image VALID
 * convolution is a dense layer, a 1x1 convolution is a dense layer at every
 * pixel, a zeroed residual branch leaves the shortcut, re-expanding every
 * step is full training, the NTK methods agree, the closed form is
 * linearized training.  Bad input is refused and changes nothing. */
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

/*=====================================================================
 * The reference: a graph built beside the tn_net, evaluated by direct loops
 *===================================================================*/

static void r_begin(rnet *R, size_t h, size_t w, size_t c, int flat, int param)
{
    rg_begin(R, ctx, h, w, c, flat);
    R->param = param;
    R->sb = 0.1;
    R->slope = 0.01;
    TN_CK(ctx, tn_net_set(R->net, TN_NET_PARAMETERIZATION, param));
}

static size_t r_current(rnet *R)
{
    size_t id;
    TN_CK(ctx, tn_net_current(R->net, &id));
    ck_assert_uint_eq(id, R->cur);
    return id;
}

static void r_init(rnet *R, uint64_t seed)
{
    TN_CK(ctx, tn_net_set(R->net, TN_NET_SIGMA_B, R->sb));
    TN_CK(ctx, tn_net_set(R->net, TN_NET_LEAKY_SLOPE, R->slope));
    TN_CK(ctx, tn_net_init(R->net, seed));
    ck_assert_uint_eq(tn_net_num_params(R->net), R->P);
    ck_assert_uint_eq(tn_net_output_dim(R->net), rsize(&R->n[R->cur]));
}

static double phi(tn_activation act, double z, double slope)
{
    switch (act) {
    case TN_ACT_IDENTITY: return z;
    case TN_ACT_RELU: return z > 0 ? z : 0;
    case TN_ACT_LEAKY_RELU: return z > 0 ? z : slope * z;
    case TN_ACT_TANH: return tanh(z);
    case TN_ACT_SIGMOID: return 1 / (1 + exp(-z));
    case TN_ACT_ERF: return erf(z);
    case TN_ACT_GELU: return 0.5 * z * erfc(-z / sqrt(2.0));
    case TN_ACT_SOFTPLUS: return log1p(exp(z));
    }
    return NAN;
}

static double r_sigma_w(const rnet *R)
{
    for (size_t i = 0; i < R->count; i++)
        if (R->n[i].kind == R_ACT && (R->n[i].act == TN_ACT_RELU || R->n[i].act == TN_ACT_LEAKY_RELU))
            return sqrt(2.0);
    return 1.0;
}

/* The value of node n of one example, pixel (p, q), channel c, with
 * everything out of the image 0. */
static double at(const rnode *n, const double *v, long p, long q, size_t c)
{
    if (p < 0 || q < 0 || p >= (long)n->h || q >= (long)n->w) return 0.0;
    return v[((size_t)p * n->w + (size_t)q) * n->c + c];
}

/* When set, r_forward counts the rectifier units that are on (z > 0) and
 * stores each unit's state here, node by node, example-major within a node. */
static unsigned char *r_pattern;
static size_t r_units;

/* y (n x O) = the reference network at theta, by direct loops per example. */
static void r_forward(const rnet *R, const double *theta, const double *x, size_t n, double *y)
{
    size_t unit_base = 0;
    const int ntk = R->param == TN_PARAM_NTK;
    const double sw = r_sigma_w(R);
    double *val[40];
    for (size_t i = 0; i < R->count; i++) val[i] = calloc(rsize(&R->n[i]), sizeof(double));
    const size_t d = rsize(&R->n[0]), O = rsize(&R->n[R->cur]);
    for (size_t e = 0; e < n; e++) {
        memcpy(val[0], x + e * d, d * sizeof(double));
        for (size_t i = 1; i < R->count; i++) {
            const rnode *N = &R->n[i], *I = &R->n[N->in0];
            const double *a = val[N->in0];
            double *out = val[i];
            const double *W = theta + N->offset;
            switch (N->kind) {
            case R_DENSE: {
                const size_t nin = rsize(I), nout = N->c;
                const double ws = ntk ? sw / sqrt((double)nin) : 1, bs = ntk ? R->sb : 1;
                for (size_t o = 0; o < nout; o++) {
                    double s = 0;
                    for (size_t k = 0; k < nin; k++) s += W[o * nin + k] * a[k];
                    out[o] = ws * s + bs * W[nout * nin + o];
                }
                break;
            }
            case R_CONV: {
                const size_t fan = N->kh * N->kw * I->c;
                const double ws = ntk ? sw / sqrt((double)fan) : 1, bs = ntk ? R->sb : 1;
                for (size_t p = 0; p < N->h; p++)
                    for (size_t q = 0; q < N->w; q++)
                        for (size_t o = 0; o < N->c; o++) {
                            double s = 0;
                            for (size_t u = 0; u < N->kh; u++)
                                for (size_t v = 0; v < N->kw; v++)
                                    for (size_t c = 0; c < I->c; c++)
                                        s += W[((o * N->kh + u) * N->kw + v) * I->c + c] *
                                             at(I, a, (long)(p * N->s + u) - (long)N->ph,
                                                (long)(q * N->s + v) - (long)N->pw, c);
                            out[(p * N->w + q) * N->c + o] = ws * s + bs * W[N->c * fan + o];
                        }
                break;
            }
            case R_POOL:
                for (size_t p = 0; p < N->h; p++)
                    for (size_t q = 0; q < N->w; q++)
                        for (size_t c = 0; c < N->c; c++) {
                            double s = 0;
                            for (size_t u = 0; u < N->kh; u++)
                                for (size_t v = 0; v < N->kw; v++)
                                    s += at(I, a, (long)(p * N->s + u) - (long)N->ph,
                                            (long)(q * N->s + v) - (long)N->pw, c);
                            out[(p * N->w + q) * N->c + c] = s / (double)(N->kh * N->kw);
                        }
                break;
            case R_GAP:
                for (size_t c = 0; c < N->c; c++) {
                    double s = 0;
                    for (size_t p = 0; p < I->h * I->w; p++) s += a[p * I->c + c];
                    out[c] = s / (double)(I->h * I->w);
                }
                break;
            case R_ACT:
                for (size_t k = 0; k < rsize(N); k++) out[k] = phi(N->act, a[k], R->slope);
                if (r_pattern && (N->act == TN_ACT_RELU || N->act == TN_ACT_LEAKY_RELU)) {
                    for (size_t k = 0; k < rsize(N); k++)
                        r_pattern[unit_base + e * rsize(N) + k] = a[k] > 0;
                    unit_base += n * rsize(N);
                }
                break;
            case R_FLATTEN:
                memcpy(out, a, rsize(N) * sizeof(double));
                break;
            case R_SUM:
                for (size_t k = 0; k < rsize(N); k++) out[k] = a[k] + val[N->in1][k];
                break;
            }
        }
        memcpy(y + e * O, val[R->cur], O * sizeof(double));
        if (e + 1 < n) unit_base = 0;
    }
    r_units = unit_base;
    for (size_t i = 0; i < R->count; i++) free(val[i]);
}

/*=====================================================================
 * The test architectures
 *===================================================================*/

#define N_ARCH 6

/* Every kind, every padding, strides, rectangular windows, two readers of a
 * node, a sum of a node with itself, flatten and activations on the input. */
static void arch(rnet *R, int which, int param, tn_activation act)
{
    switch (which) {
    case 0:     /* plain CNN: SAME conv, pooling, strided VALID conv, flatten, dense */
        r_begin(R, 5, 6, 2, 0, param);
        r_conv(R, 3, 3, 3, 1, 1);
        r_act(R, act);
        r_pool(R, 2, 2, 2, 1);
        r_conv(R, 4, 2, 3, 2, 0);
        r_act(R, act);
        r_flatten(R);
        r_dense(R, 3);
        break;
    case 1: {   /* a residual block with a strided projection shortcut, GAP readout */
        r_begin(R, 6, 5, 2, 0, param);
        r_conv(R, 3, 3, 3, 1, 1);
        const size_t in = r_current(R);
        r_act(R, act);
        r_conv(R, 4, 3, 2, 2, 1);
        r_act(R, act);
        r_conv(R, 4, 2, 2, 1, 1);
        const size_t main = r_current(R);
        r_branch(R, in);
        r_conv(R, 4, 1, 1, 2, 0);
        r_sum(R, main);
        r_act(R, act);
        r_gap(R);
        r_dense(R, 3);
        break;
    }
    case 2: {   /* an identity shortcut: the block's input has two readers */
        r_begin(R, 4, 4, 3, 0, param);
        r_conv(R, 3, 3, 3, 1, 1);
        const size_t in = r_current(R);
        r_act(R, act);
        r_conv(R, 3, 3, 3, 1, 1);
        r_sum(R, in);
        r_pool(R, 3, 3, 1, 1);
        r_act(R, act);
        r_flatten(R);
        r_dense(R, 2);
        break;
    }
    case 3: {   /* a node summed with itself; a VALID conv covering the image */
        r_begin(R, 3, 4, 2, 0, param);
        r_conv(R, 2, 2, 2, 1, 0);
        r_act(R, act);
        const size_t a = r_current(R);
        r_sum(R, a);
        r_conv(R, 3, 2, 3, 1, 0);
        r_act(R, act);
        r_flatten(R);
        r_dense(R, 2);
        break;
    }
    case 4:     /* an activation and a flatten on the input itself, two dense layers */
        r_begin(R, 2, 3, 2, 0, param);
        r_act(R, act);
        r_flatten(R);
        r_dense(R, 4);
        r_act(R, act);
        r_dense(R, 2);
        break;
    default: {  /* a flat input into dense layers joined by a residual sum */
        r_begin(R, 1, 1, 5, 1, param);
        r_dense(R, 4);
        const size_t in = r_current(R);
        r_act(R, act);
        r_dense(R, 4);
        r_sum(R, in);
        r_act(R, act);
        r_dense(R, 3);
        break;
    }
    }
    r_init(R, 100 + (uint64_t)which);
}

static double *params(tn_net *net)
{
    const size_t P = tn_net_num_params(net);
    double *t = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, t, P));
    return t;
}

/*=====================================================================
 * Forward, JVP, VJP and Taylor terms against the reference
 *===================================================================*/

/* Sums of a few dozen products of O(1) values, in another order than the
 * library's GEMMs: agreement to ~1e-15 relative; 1e-12 leaves room. */
START_TEST(forward_matches_direct_loops)
{
    const tn_activation acts[] = {TN_ACT_TANH, TN_ACT_RELU, TN_ACT_GELU};
    for (int param = 0; param < 2; param++)
        for (int a = 0; a < 3; a++) {
            rnet R;
            arch(&R, _i, param, acts[a]);
            const size_t n = 5, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
            double *x = tu_random(n * d, 1, 1.0), *theta = params(R.net);
            double *y = malloc(n * O * sizeof(double)), *ref = malloc(n * O * sizeof(double));
            TN_CK(ctx, tn_net_forward(R.net, x, n, y));
            r_forward(&R, theta, x, n, ref);
            const double err = tu_rel_err(y, ref, n * O, 1e-3);
            ck_assert_msg(err < 1e-12, "arch %d param %d %s: forward error %.3g", _i, param,
                          tu_act_names[acts[a]], err);
            tn_net_free(R.net);
            free(x), free(theta), free(y), free(ref);
        }
}
END_TEST

/* g(t) = the reference at theta0 + t dir, at t = j h for j = -3..3. */
static void samples(const rnet *R, const double *theta0, const double *dir, const double *x,
                    size_t n, double h, double *g /* 7 x n O */)
{
    const size_t P = R->P, O = rsize(&R->n[R->cur]);
    double *th = malloc(P * sizeof(double));
    for (int j = -3; j <= 3; j++) {
        for (size_t i = 0; i < P; i++) th[i] = theta0[i] + j * h * dir[i];
        r_forward(R, th, x, n, g + (size_t)(j + 3) * n * O);
    }
    free(th);
}

/* The normalized Taylor coefficients g^(k)(0) / k! of the reference along
 * dir, k = 1..3, by 7-point central differences: truncation O(h^6) for
 * k = 1, 2 and O(h^4) for k = 3, rounding ~1e-16 / h^k.  With h = 0.02 on a
 * tanh network (coefficients of order 1) both stay below ~1e-7 relative; the
 * test allows 1e-6. */
static void fd_terms(const double *g, size_t m, double h, double *t /* 3 x m */)
{
    for (size_t i = 0; i < m; i++) {
        const double m3 = g[i], m2 = g[m + i], m1 = g[2 * m + i], z = g[3 * m + i],
                     p1 = g[4 * m + i], p2 = g[5 * m + i], p3 = g[6 * m + i];
        t[i] = (-m3 + 9 * m2 - 45 * m1 + 45 * p1 - 9 * p2 + p3) / (60 * h);
        t[m + i] = (2 * m3 - 27 * m2 + 270 * m1 - 490 * z + 270 * p1 - 27 * p2 + 2 * p3) /
                   (180 * h * h) / 2;
        t[2 * m + i] = (m3 - 8 * m2 + 13 * m1 - 13 * p1 + 8 * p2 - p3) / (8 * h * h * h) / 6;
    }
}

START_TEST(taylor_terms_and_jvp_match_finite_differences)
{
    for (int param = 0; param < 2; param++) {
        rnet R;
        arch(&R, _i, param, TN_ACT_TANH);
        const size_t n = 3, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
        const size_t m = n * O;
        /* Standard parameterization's weights are O(1 / sqrt(fan-in)), not O(1):
         * a smaller direction keeps the radius of convergence of t -> f(theta0
         * + t dir) as far from h as under NTK parameterization. */
        double *x = tu_random(n * d, 2, 1.0), *dir = tu_random(P, 3, param ? 0.2 : 0.5);
        double *theta0 = params(R.net);
        double *th = malloc(P * sizeof(double)), *terms = malloc(4 * m * sizeof(double));
        double *g = malloc(7 * m * sizeof(double)), *fd = malloc(3 * m * sizeof(double));
        double *jv = malloc(m * sizeof(double));
        for (size_t i = 0; i < P; i++) th[i] = theta0[i] + dir[i];
        tn_taylor *t;
        TN_CK(ctx, tn_taylor_create(R.net, 3, &t));
        TN_CK(ctx, tn_taylor_terms(t, th, x, n, terms));
        samples(&R, theta0, dir, x, n, 0.02, g);
        fd_terms(g, m, 0.02, fd);
        /* term 0 is the reference at theta0 itself */
        ck_assert_msg(tu_rel_err(terms, g + 3 * m, m, 1e-3) < 1e-12, "arch %d: term 0", _i);
        for (size_t k = 1; k <= 3; k++) {
            const double err = tu_rel_err(terms + k * m, fd + (k - 1) * m, m, 1e-2);
            ck_assert_msg(err < 1e-6, "arch %d param %d: term %zu error %.3g", _i, param, k, err);
        }
        /* The JVP is the order-1 coefficient. */
        TN_CK(ctx, tn_net_jvp(R.net, x, n, dir, jv));
        ck_assert_msg(tu_rel_err(jv, fd, m, 1e-2) < 1e-6, "arch %d: jvp", _i);
        ck_assert_msg(tu_rel_err(jv, terms + m, m, 1e-3) < 1e-12, "arch %d: jvp = term 1", _i);
        tn_taylor_free(t);
        tn_net_free(R.net);
        free(x), free(dir), free(theta0), free(th), free(terms), free(g), free(fd), free(jv);
    }
}
END_TEST

/* The VJP is the JVP's adjoint, <u, J v> = <J^T u, v>, for every direction:
 * with the JVP checked against the reference above, this checks the VJP
 * (and the accumulation of cotangents where a node has two readers).  Both
 * sides are sums of ~P products: 1e-12 relative. */
START_TEST(vjp_is_the_adjoint_of_the_jvp)
{
    const tn_activation acts[] = {TN_ACT_TANH, TN_ACT_RELU};
    for (int a = 0; a < 2; a++) {
        rnet R;
        arch(&R, _i, TN_PARAM_NTK, acts[a]);
        const size_t n = 4, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
        double *x = tu_random(n * d, 4, 1.0), *u = tu_random(n * O, 5, 1.0);
        double *grad = malloc(P * sizeof(double)), *jv = malloc(n * O * sizeof(double));
        TN_CK(ctx, tn_net_vjp(R.net, x, n, u, grad));
        for (int trial = 0; trial < 3; trial++) {
            double *v = tu_random(P, 6 + (uint64_t)trial, 1.0);
            TN_CK(ctx, tn_net_jvp(R.net, x, n, v, jv));
            const double lhs = tu_dot(u, jv, n * O), rhs = tu_dot(grad, v, P);
            ck_assert_msg(fabs(lhs - rhs) <= 1e-12 * (fabs(lhs) + tu_dot(grad, grad, P)),
                          "arch %d: <u, Jv> %.17g vs <J'u, v> %.17g", _i, lhs, rhs);
            free(v);
        }
        tn_net_free(R.net);
        free(x), free(u), free(grad), free(jv);
    }
}
END_TEST

/* MATH.md §8.1 on the residual network: |f - f_k| at theta0 + eps Delta falls
 * like eps^(k+1); the fitted slope over eps, eps/2, ..., eps/16 is within
 * 0.25 of k + 1 (eps chosen so the remainder starts near 1e-4, far above
 * rounding and inside the asymptotic range). */
START_TEST(remainder_slope_is_k_plus_1)
{
    const int k = _i + 1;
    rnet R;
    arch(&R, 1, TN_PARAM_NTK, TN_ACT_TANH);
    const size_t n = 3, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
    double *x = tu_random(n * d, 7, 1.0), *dir = tu_random(P, 8, 1.0), *theta0 = params(R.net);
    double *th = malloc(P * sizeof(double)), *f = malloc(n * O * sizeof(double)),
           *fk = malloc(n * O * sizeof(double));
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(R.net, k, &t));
    double eps = 1.0, rem[5];
    for (int it = 0;; it++) {
        ck_assert_int_lt(it, 80);
        for (size_t i = 0; i < P; i++) th[i] = theta0[i] + eps * dir[i];
        r_forward(&R, th, x, n, f);
        TN_CK(ctx, tn_taylor_forward(t, th, x, n, fk));
        double s = 0;
        for (size_t i = 0; i < n * O; i++) s += (f[i] - fk[i]) * (f[i] - fk[i]);
        if (sqrt(s) < 1e-4) break;
        eps *= 0.7;
    }
    for (int i = 0; i < 5; i++, eps *= 0.5) {
        for (size_t j = 0; j < P; j++) th[j] = theta0[j] + eps * dir[j];
        r_forward(&R, th, x, n, f);
        TN_CK(ctx, tn_taylor_forward(t, th, x, n, fk));
        double s = 0;
        for (size_t j = 0; j < n * O; j++) s += (f[j] - fk[j]) * (f[j] - fk[j]);
        rem[i] = sqrt(s);
    }
    const double slope = log(rem[0] / rem[4]) / log(16.0);
    ck_assert_msg(fabs(slope - (k + 1)) < 0.25, "k %d: slope %.3f", k, slope);
    tn_taylor_free(t);
    tn_net_free(R.net);
    free(x), free(dir), free(theta0), free(th), free(f), free(fk);
}
END_TEST

/* The gradient of f_k (tn_taylor_vjp) against central differences of
 * <u, f_k(theta)>, a polynomial of degree k in theta: with eps = 1e-4 the
 * truncation is ~eps^2 of the third derivative; 1e-7 relative. */
START_TEST(taylor_vjp_matches_finite_differences)
{
    rnet R;
    arch(&R, _i, TN_PARAM_NTK, TN_ACT_TANH);
    const size_t n = 3, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
    double *x = tu_random(n * d, 9, 1.0), *u = tu_random(n * O, 10, 1.0);
    double *theta0 = params(R.net), *dir = tu_random(P, 11, 0.3), *v = tu_random(P, 12, 1.0);
    double *th = malloc(P * sizeof(double)), *grad = malloc(P * sizeof(double)),
           *fp = malloc(n * O * sizeof(double)), *fm = malloc(n * O * sizeof(double));
    for (int k = 1; k <= 3; k++) {
        tn_taylor *t;
        TN_CK(ctx, tn_taylor_create(R.net, k, &t));
        for (size_t i = 0; i < P; i++) th[i] = theta0[i] + dir[i];
        TN_CK(ctx, tn_taylor_vjp(t, th, x, n, u, grad));
        const double eps = 1e-4;
        for (size_t i = 0; i < P; i++) th[i] = theta0[i] + dir[i] + eps * v[i];
        TN_CK(ctx, tn_taylor_forward(t, th, x, n, fp));
        for (size_t i = 0; i < P; i++) th[i] = theta0[i] + dir[i] - eps * v[i];
        TN_CK(ctx, tn_taylor_forward(t, th, x, n, fm));
        const double fd = (tu_dot(u, fp, n * O) - tu_dot(u, fm, n * O)) / (2 * eps);
        const double an = tu_dot(grad, v, P);
        ck_assert_msg(fabs(fd - an) <= 1e-7 * (fabs(an) + 1), "arch %d k %d: %.12g vs %.12g", _i, k,
                      an, fd);
        tn_taylor_free(t);
    }
    tn_net_free(R.net);
    free(x), free(u), free(theta0), free(dir), free(v), free(th), free(grad), free(fp), free(fm);
}
END_TEST

/* Every training mode runs on a residual CNN: finite losses that fall on a
 * fixed batch, tn_trainer_predict consistent with the loss; and the
 * diagnostics' pattern change counts the ReLU units of convolutions: the
 * fraction that switched in a step is the reference's, unit by unit. */
START_TEST(every_mode_trains_and_diagnostics_count_conv_units)
{
    struct { int order, K, centered; double alpha; } modes[] = {
        {0, 0, 0, 1}, {1, 0, 0, 1}, {2, 0, 0, 1}, {3, 0, 0, 1}, {1, 3, 0, 1}, {2, 2, 0, 1},
        {0, 0, 1, 10}, {1, 0, 1, 10}, {0, 0, 0, 3},
    };
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        rnet R;
        arch(&R, 1, TN_PARAM_NTK, TN_ACT_RELU);
        const size_t n = 8, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
        double *x = tu_random(n * d, 30, 1.0), *y = tu_random(n * O, 31, 1.0);
        tn_trainer *tr;
        TN_CK(ctx, tn_trainer_create(R.net, &tr));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.01 / modes[m].alpha));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, modes[m].order));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, modes[m].K));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, modes[m].alpha));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, modes[m].centered));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
        TN_CK(ctx, tn_trainer_set_probe(tr, x, n));
        double first = 0, loss = 0, after = 0;
        unsigned char *before = malloc(n * 1000), *now = malloc(n * 1000);
        for (int s = 0; s < 12; s++) {
            double *theta = params(R.net), *ref = malloc(n * O * sizeof(double));
            r_pattern = before;
            r_forward(&R, theta, x, n, ref);
            TN_CK(ctx, tn_trainer_step(tr, x, y, n, &loss));
            if (s == 0) first = loss;
            ck_assert(isfinite(loss));
            free(theta);
            theta = params(R.net);
            r_pattern = now;
            r_forward(&R, theta, x, n, ref);
            r_pattern = NULL;
            size_t switched = 0;
            for (size_t u = 0; u < r_units; u++) switched += before[u] != now[u];
            double frac;
            TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_STEP, &frac));
            ck_assert_msg(fabs(frac - (double)switched / (double)r_units) < 1e-15,
                          "mode %zu step %d: %g switched, reference %zu of %zu", m, s, frac,
                          switched, r_units);
            free(theta), free(ref);
        }
        TN_CK(ctx, tn_trainer_loss(tr, x, y, n, &after));
        ck_assert_msg(after < first, "mode %zu: loss %g -> %g", m, first, after);
        /* The loss is that of the model tn_trainer_predict evaluates. */
        double *g = malloc(n * O * sizeof(double)), mse = 0;
        TN_CK(ctx, tn_trainer_predict(tr, x, n, g));
        for (size_t i = 0; i < n * O; i++) mse += (g[i] - y[i]) * (g[i] - y[i]);
        mse /= 2.0 * (double)n * modes[m].alpha * modes[m].alpha;
        ck_assert_msg(fabs(mse - after) <= 1e-12 * after, "mode %zu: %g vs %g", m, mse, after);
        tn_trainer_free(tr);
        tn_net_free(R.net);
        free(x), free(y), free(g), free(before), free(now);
    }
}
END_TEST

/*=====================================================================
 * MATH.md §10 identities
 *===================================================================*/

/* §10.1: a conv whose kernel covers the whole image with VALID padding is a
 * dense layer on the flattened input.  The kernel (C' x H x W x C) and the
 * dense weight (C' x H W C) have the same row-major layout and the same
 * fan-in, so one seed draws both alike; the outputs agree to rounding of
 * the same products (1e-14). */
START_TEST(whole_image_valid_conv_is_dense)
{
    const size_t shape[3] = {3, 4, 2}, d = 24, n = 4;
    for (int param = 0; param < 2; param++) {
        tn_net *conv = NULL, *dense = NULL;
        TN_CK(ctx, tn_net_create(ctx, shape, 3, &conv));
        TN_CK(ctx, tn_net_set(conv, TN_NET_PARAMETERIZATION, param));
        TN_CK(ctx, tn_net_add_conv2d(conv, 5, 3, 4, 1, TN_PAD_VALID));
        TN_CK(ctx, tn_net_add_activation(conv, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_flatten(conv));
        TN_CK(ctx, tn_net_add_dense(conv, 2));
        TN_CK(ctx, tn_net_init(conv, 9));
        TN_CK(ctx, tn_net_create(ctx, &d, 1, &dense));
        TN_CK(ctx, tn_net_set(dense, TN_NET_PARAMETERIZATION, param));
        TN_CK(ctx, tn_net_add_dense(dense, 5));
        TN_CK(ctx, tn_net_add_activation(dense, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_dense(dense, 2));
        TN_CK(ctx, tn_net_init(dense, 9));
        double *a = params(conv), *b = params(dense);
        ck_assert_uint_eq(tn_net_num_params(conv), tn_net_num_params(dense));
        ck_assert(memcmp(a, b, tn_net_num_params(conv) * sizeof(double)) == 0);
        double *x = tu_random(n * d, 13, 1.0), ya[8], yb[8];
        TN_CK(ctx, tn_net_forward(conv, x, n, ya));
        TN_CK(ctx, tn_net_forward(dense, x, n, yb));
        ck_assert(tu_rel_err(ya, yb, 8, 1e-3) < 1e-14);
        tn_net_free(conv), tn_net_free(dense);
        free(a), free(b), free(x);
    }
}
END_TEST

/* §10.2: a 1x1 conv with stride 1 is a dense layer applied at every pixel
 * (the same C' x C weights); checked on the conv's output at every pixel. */
START_TEST(pointwise_conv_is_dense_at_every_pixel)
{
    const size_t shape[3] = {3, 2, 4}, C = 4, n = 2, pixels = 6;
    tn_net *conv = NULL, *dense = NULL;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &conv));
    TN_CK(ctx, tn_net_add_conv2d(conv, 3, 1, 1, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_init(conv, 4));
    TN_CK(ctx, tn_net_create(ctx, &C, 1, &dense));
    TN_CK(ctx, tn_net_add_dense(dense, 3));
    TN_CK(ctx, tn_net_init(dense, 4));
    double *x = tu_random(n * pixels * C, 14, 1.0), ya[2 * 6 * 3], yb[2 * 6 * 3];
    TN_CK(ctx, tn_net_forward(conv, x, n, ya));
    TN_CK(ctx, tn_net_forward(dense, x, n * pixels, yb));   /* every pixel an example */
    ck_assert(tu_rel_err(ya, yb, n * pixels * 3, 1e-3) < 1e-14);
    tn_net_free(conv), tn_net_free(dense);
    free(x);
}
END_TEST

/* §10.4: with the main branch's last kernel and bias zeroed, the residual
 * network is its shortcut; with them nonzero, the gradient reaches both
 * branches (every parameter of both has a nonzero gradient component). */
START_TEST(residual_branches)
{
    rnet R;
    arch(&R, 1, TN_PARAM_NTK, TN_ACT_TANH);
    /* Nodes of arch 1: 1 conv, 2 act, 3 conv, 4 act, 5 conv (main's last),
     * 6 conv (shortcut), 7 sum, ... */
    const rnode *last = &R.n[5];
    ck_assert_int_eq(last->kind, R_CONV);
    ck_assert_int_eq(R.n[6].kind, R_CONV);
    const size_t n = 3, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
    double *x = tu_random(n * d, 15, 1.0), *u = tu_random(n * O, 16, 1.0);
    double *theta = params(R.net), *grad = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_vjp(R.net, x, n, u, grad));
    const size_t branch_nodes[] = {3, 5, 6};   /* main branch's convs, the shortcut's */
    for (size_t b = 0; b < 3; b++) {
        const rnode *c = &R.n[branch_nodes[b]];
        ck_assert_int_eq(c->kind, R_CONV);
        ck_assert_msg(tu_dot(grad + c->offset, grad + c->offset, c->count) > 0,
                      "no gradient reaches node %zu", branch_nodes[b]);
    }

    /* The same network without the main branch, parameters copied. */
    rnet S;
    r_begin(&S, 6, 5, 2, 0, TN_PARAM_NTK);
    r_conv(&S, 3, 3, 3, 1, 1);
    r_conv(&S, 4, 1, 1, 2, 0);
    r_act(&S, TN_ACT_TANH);
    r_gap(&S);
    r_dense(&S, 3);
    r_init(&S, 1);
    double *ts = params(S.net);
    memcpy(ts, theta, R.n[1].count * sizeof(double));
    memcpy(ts + S.n[2].offset, theta + R.n[6].offset, R.n[6].count * sizeof(double));
    memcpy(ts + S.n[5].offset, theta + R.n[10].offset, R.n[10].count * sizeof(double));
    TN_CK(ctx, tn_net_set_params(S.net, ts, S.P));
    memset(theta + last->offset, 0, last->count * sizeof(double));
    TN_CK(ctx, tn_net_set_params(R.net, theta, P));
    double *ya = malloc(n * O * sizeof(double)), *yb = malloc(n * O * sizeof(double));
    TN_CK(ctx, tn_net_forward(R.net, x, n, ya));
    TN_CK(ctx, tn_net_forward(S.net, x, n, yb));
    ck_assert(tu_rel_err(ya, yb, n * O, 1e-3) < 1e-14);
    tn_net_free(R.net), tn_net_free(S.net);
    free(x), free(u), free(theta), free(grad), free(ts), free(ya), free(yb);
}
END_TEST

/* §8.3 on a residual net: re-expanding every step is full training, for an
 * order 1 and 2 model and two optimizers (1e-10 relative after 5 steps). */
START_TEST(reexpand_every_step_is_full_training)
{
    const int opts[] = {TN_OPT_MOMENTUM, TN_OPT_ADAM};
    for (int o = 0; o < 2; o++)
        for (int order = 1; order <= 2; order++) {
            rnet A, B;
            arch(&A, _i, TN_PARAM_NTK, TN_ACT_TANH);
            arch(&B, _i, TN_PARAM_NTK, TN_ACT_TANH);
            const size_t n = 6, P = A.P, d = tn_net_input_size(A.net), O = tn_net_output_dim(A.net);
            double *x = tu_random(n * d, 17, 1.0), *y = tu_random(n * O, 18, 1.0);
            tn_trainer *full, *relin;
            TN_CK(ctx, tn_trainer_create(A.net, &full));
            TN_CK(ctx, tn_trainer_create(B.net, &relin));
            TN_CK(ctx, tn_trainer_set(relin, TN_TRAIN_ORDER, order));
            TN_CK(ctx, tn_trainer_set(relin, TN_TRAIN_REEXPAND_EVERY, 1));
            tn_trainer *both[2] = {full, relin};
            for (int t = 0; t < 2; t++) {
                TN_CK(ctx, tn_trainer_set(both[t], TN_TRAIN_OPTIMIZER, opts[o]));
                TN_CK(ctx, tn_trainer_set(both[t], TN_TRAIN_LEARNING_RATE, 0.05));
            }
            for (int s = 0; s < 5; s++) {
                double la, lb;
                TN_CK(ctx, tn_trainer_step(full, x, y, n, &la));
                TN_CK(ctx, tn_trainer_step(relin, x, y, n, &lb));
                ck_assert(fabs(la - lb) <= 1e-10 * fabs(la));
            }
            double *ta = params(A.net), *tb = params(B.net);
            ck_assert_msg(tu_rel_err(tb, ta, P, 1e-3) < 1e-10, "arch %d opt %d order %d", _i,
                          opts[o], order);
            tn_trainer_free(full), tn_trainer_free(relin);
            tn_net_free(A.net), tn_net_free(B.net);
            free(x), free(y), free(ta), free(tb);
        }
}
END_TEST

/* §8.5 on CNNs and residual nets: the three NTK methods, and AUTO, agree
 * with each other and with the kernel of explicit Jacobians (columns from
 * JVPs with unit tangents), traced and full, x2 = x1 and not, to 1e-10. */
START_TEST(ntk_methods_agree)
{
    rnet R;
    arch(&R, _i, TN_PARAM_NTK, _i % 2 ? TN_ACT_RELU : TN_ACT_TANH);
    const size_t n1 = 4, n2 = 3, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
    double *x1 = tu_random(n1 * d, 19, 1.0), *x2 = tu_random(n2 * d, 20, 1.0);
    /* J: rows (i, c) over x1 then x2, from P JVPs. */
    const size_t rows = (n1 + n2) * O;
    double *J = malloc(rows * P * sizeof(double)), *e = calloc(P, sizeof(double));
    double *xs = malloc((n1 + n2) * d * sizeof(double)), *jv = malloc(rows * sizeof(double));
    memcpy(xs, x1, n1 * d * sizeof(double));
    memcpy(xs + n1 * d, x2, n2 * d * sizeof(double));
    for (size_t p = 0; p < P; p++) {
        e[p] = 1;
        TN_CK(ctx, tn_net_jvp(R.net, xs, n1 + n2, e, jv));
        e[p] = 0;
        for (size_t r = 0; r < rows; r++) J[r * P + p] = jv[r];
    }
    for (int full = 0; full < 2; full++)
        for (int sym = 0; sym < 2; sym++) {
            const size_t m2 = sym ? n1 : n2, s1 = full ? n1 * O : n1, s2 = full ? m2 * O : m2;
            double *want = calloc(s1 * s2, sizeof(double)), *K = malloc(s1 * s2 * sizeof(double));
            const size_t off2 = sym ? 0 : n1;
            for (size_t i = 0; i < n1; i++)
                for (size_t j = 0; j < m2; j++)
                    for (size_t c = 0; c < O; c++)
                        for (size_t dd = 0; dd < O; dd++) {
                            if (!full && c != dd) continue;
                            const double v = tu_dot(J + (i * O + c) * P, J + ((off2 + j) * O + dd) * P, P);
                            if (full) want[(i * O + c) * s2 + j * O + dd] = v;
                            else want[i * s2 + j] += v / (double)O;
                        }
            tn_ntk *k;
            TN_CK(ctx, tn_ntk_create(R.net, &k));
            TN_CK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, full));
            for (int m = TN_NTK_AUTO; m <= TN_NTK_VECTOR_PRODUCTS; m++) {
                TN_CK(ctx, tn_ntk_set(k, TN_NTK_METHOD, m));
                TN_CK(ctx, tn_ntk_compute(k, x1, n1, sym ? NULL : x2, n2, K));
                const double err = tu_rel_err(K, want, s1 * s2, 1e-3);
                ck_assert_msg(err < 1e-10, "arch %d method %d full %d sym %d: error %.3g", _i, m,
                              full, sym, err);
            }
            tn_ntk_free(k);
            free(want), free(K);
        }
    tn_net_free(R.net);
    free(x1), free(x2), free(J), free(e), free(xs), free(jv);
}
END_TEST

/* Tiles under a small memory budget give the kernel computed in one tile. */
START_TEST(ntk_tiling_matches_untiled)
{
    rnet R;
    arch(&R, 1, TN_PARAM_NTK, TN_ACT_RELU);
    const size_t n = 40, d = tn_net_input_size(R.net);
    double *x = tu_random(n * d, 21, 1.0), *K1 = malloc(n * n * sizeof(double)),
           *K2 = malloc(n * n * sizeof(double));
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(R.net, &k));
    for (int m = TN_NTK_STRUCTURED; m <= TN_NTK_JACOBIAN; m++) {
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_METHOD, m));
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 1e9));
        TN_CK(ctx, tn_ntk_compute(k, x, n, NULL, 0, K1));
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 1 << 20));
        TN_CK(ctx, tn_ntk_compute(k, x, n, NULL, 0, K2));
        ck_assert_msg(tu_rel_err(K2, K1, n * n, 1e-3) < 1e-12, "method %d", m);
    }
    tn_ntk_free(k);
    tn_net_free(R.net);
    free(x), free(K1), free(K2);
}
END_TEST

/* §8.4 on a CNN: full-batch linearized gradient descent with MSE equals the
 * closed form of MATH.md §6 on the train and test points (1e-8 relative
 * after 20 steps). */
START_TEST(closed_form_is_linearized_training)
{
    rnet R;
    arch(&R, 0, TN_PARAM_NTK, TN_ACT_RELU);
    const size_t n = 8, nt = 3, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
    const double lr = 0.5;
    const int steps = 20;
    double *x = tu_random(n * d, 22, 1.0), *y = tu_random(n * O, 23, 1.0),
           *xt = tu_random(nt * d, 24, 1.0);
    double *f0 = malloc(n * O * sizeof(double)), *f0t = malloc(nt * O * sizeof(double));
    TN_CK(ctx, tn_net_forward(R.net, x, n, f0));
    TN_CK(ctx, tn_net_forward(R.net, xt, nt, f0t));
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(R.net, &k));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, TN_NTK_FULL));
    double *Ktr = malloc(n * O * n * O * sizeof(double)), *Kte = malloc(nt * O * n * O * sizeof(double));
    TN_CK(ctx, tn_ntk_compute(k, x, n, NULL, 0, Ktr));
    TN_CK(ctx, tn_ntk_compute(k, xt, nt, x, n, Kte));
    tn_predictor *p;
    TN_CK(ctx, tn_predictor_create(ctx, Ktr, n, O, 1, y, &p));
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, lr));
    double *ftr = malloc(n * O * sizeof(double)), *fte = malloc(nt * O * sizeof(double));
    TN_CK(ctx, tn_predictor_predict(p, steps, f0, ftr, Kte, f0t, nt, fte));

    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(R.net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 1));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, lr));
    for (int s = 0; s < steps; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    double *gtr = malloc(n * O * sizeof(double)), *gte = malloc(nt * O * sizeof(double));
    TN_CK(ctx, tn_trainer_predict(tr, x, n, gtr));
    TN_CK(ctx, tn_trainer_predict(tr, xt, nt, gte));
    ck_assert_msg(tu_rel_err(gtr, ftr, n * O, 1e-3) < 1e-8, "train");
    ck_assert_msg(tu_rel_err(gte, fte, nt * O, 1e-3) < 1e-8, "test");
    tn_trainer_free(tr);
    tn_predictor_free(p);
    tn_ntk_free(k);
    tn_net_free(R.net);
    free(x), free(y), free(xt), free(f0), free(f0t), free(Ktr), free(Kte), free(ftr), free(fte),
        free(gtr), free(gte);
}
END_TEST

/*=====================================================================
 * Bad input: a clear error, and nothing changes
 *===================================================================*/

/* The call failed with `want` and a message naming fn. */
static void refused(tn_status want, const char *fn, tn_status got)
{
    ck_assert_msg(got == want, "%s -> %s, expected %s (%s)", fn, tn_status_string(got),
                  tn_status_string(want), tn_ctx_errmsg(ctx));
    ck_assert_msg(strstr(tn_ctx_errmsg(ctx), fn) != NULL, "message '%s' does not name %s",
                  tn_ctx_errmsg(ctx), fn);
}

/* What a refused call must leave as it was: the current node (and so the
 * node count), the parameter count and the output shape. */
typedef struct snapshot {
    size_t cur, P, shape[3], ndim;
} snapshot;

static snapshot snap(tn_net *net)
{
    snapshot s;
    TN_CK(ctx, tn_net_current(net, &s.cur));
    s.P = tn_net_num_params(net);
    TN_CK(ctx, tn_net_output_shape(net, s.shape, &s.ndim));
    return s;
}

static void same_snap(tn_net *net, snapshot a)
{
    snapshot b = snap(net);
    ck_assert_uint_eq(a.cur, b.cur);
    ck_assert_uint_eq(a.P, b.P);
    ck_assert_uint_eq(a.ndim, b.ndim);
    for (size_t i = 0; i < a.ndim; i++) ck_assert_uint_eq(a.shape[i], b.shape[i]);
}

#define REFUSE(net, want, fn, call)                                                      \
    do {                                                                                 \
        const snapshot before_ = snap(net);                                              \
        refused((want), (fn), (call));                                            \
        same_snap((net), before_);                                                       \
    } while (0)

START_TEST(bad_input_changes_nothing)
{
    const size_t shape[3] = {4, 4, 2}, d = 6;
    tn_net *net = NULL, *flat = NULL;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_VALID));   /* {2, 2, 3} */
    size_t in;
    TN_CK(ctx, tn_net_current(net, &in));

    REFUSE(net, TN_E_SHAPE, "tn_net_add_conv2d", tn_net_add_conv2d(net, 3, 3, 1, 1, TN_PAD_VALID));
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "larger than the input"));
    REFUSE(net, TN_E_SHAPE, "tn_net_add_avg_pool2d", tn_net_add_avg_pool2d(net, 1, 3, 1, TN_PAD_VALID));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_conv2d", tn_net_add_conv2d(net, 3, 1, 1, 0, TN_PAD_SAME));
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "stride"));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_avg_pool2d", tn_net_add_avg_pool2d(net, 2, 2, 0, TN_PAD_SAME));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_conv2d", tn_net_add_conv2d(net, 0, 1, 1, 1, TN_PAD_SAME));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_conv2d", tn_net_add_conv2d(net, 2, 0, 1, 1, TN_PAD_SAME));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_conv2d", tn_net_add_conv2d(net, 2, 1, 1, 1, (tn_padding)2));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_avg_pool2d", tn_net_add_avg_pool2d(net, 1, 1, 1, (tn_padding)-1));
    REFUSE(net, TN_E_NOMEM, "tn_net_add_conv2d", tn_net_add_conv2d(net, SIZE_MAX / 4, 3, 3, 1, TN_PAD_SAME));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_branch", tn_net_branch(net, 2));
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "does not exist"));
    REFUSE(net, TN_E_INVALID_ARG, "tn_net_add_sum", tn_net_add_sum(net, 99));
    REFUSE(net, TN_E_SHAPE, "tn_net_add_sum", tn_net_add_sum(net, 0));   /* {2,2,3} + {4,4,2} */
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "{2, 2, 3}"));

    /* After a flat layer, no convolution or pooling. */
    TN_CK(ctx, tn_net_add_flatten(net));
    REFUSE(net, TN_E_SHAPE, "tn_net_add_conv2d", tn_net_add_conv2d(net, 2, 1, 1, 1, TN_PAD_SAME));
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not an image"));
    REFUSE(net, TN_E_SHAPE, "tn_net_add_avg_pool2d", tn_net_add_avg_pool2d(net, 1, 1, 1, TN_PAD_SAME));
    REFUSE(net, TN_E_SHAPE, "tn_net_add_global_avg_pool", tn_net_add_global_avg_pool(net));
    REFUSE(net, TN_E_SHAPE, "tn_net_add_sum", tn_net_add_sum(net, in));   /* {12} + {2,2,3} */

    /* A branch left dangling: init refuses and says which node. */
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_branch(net, in));
    TN_CK(ctx, tn_net_add_conv2d(net, 1, 1, 1, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_branch(net, 3));   /* back to the dense output */
    refused(TN_E_STATE, "tn_net_init", tn_net_init(net, 1));
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "node 4 (conv2d)"));
    tn_net_free(net);

    /* After init: nothing can be added, and the cursor is fixed. */
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &flat));
    TN_CK(ctx, tn_net_add_dense(flat, 3));
    TN_CK(ctx, tn_net_init(flat, 1));
    REFUSE(flat, TN_E_STATE, "tn_net_add_dense", tn_net_add_dense(flat, 3));
    REFUSE(flat, TN_E_STATE, "tn_net_add_conv2d", tn_net_add_conv2d(flat, 3, 1, 1, 1, TN_PAD_SAME));
    REFUSE(flat, TN_E_STATE, "tn_net_add_avg_pool2d", tn_net_add_avg_pool2d(flat, 1, 1, 1, TN_PAD_SAME));
    REFUSE(flat, TN_E_STATE, "tn_net_add_global_avg_pool", tn_net_add_global_avg_pool(flat));
    REFUSE(flat, TN_E_STATE, "tn_net_add_flatten", tn_net_add_flatten(flat));
    REFUSE(flat, TN_E_STATE, "tn_net_branch", tn_net_branch(flat, 0));
    REFUSE(flat, TN_E_STATE, "tn_net_add_sum", tn_net_add_sum(flat, 1));
    size_t cur;
    TN_CK(ctx, tn_net_current(flat, &cur));
    ck_assert_uint_eq(cur, 1);
    /* NULL arguments and handles. */
    size_t sh[3], nd;
    ck_assert_int_eq(tn_net_current(flat, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_current(NULL, &cur), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_output_shape(flat, NULL, &nd), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_output_shape(flat, sh, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_add_conv2d(NULL, 1, 1, 1, 1, TN_PAD_SAME), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_add_sum(NULL, 0), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_branch((tn_net *)ctx, 0), TN_E_MISUSE);
    TN_CK(ctx, tn_net_output_shape(flat, sh, &nd));
    ck_assert_uint_eq(nd, 1);
    ck_assert_uint_eq(sh[0], 3);
    tn_net_free(flat);

    /* The analytic kernel refuses a node added to itself, and names it. */
    rnet R;
    arch(&R, 3, TN_PARAM_NTK, TN_ACT_RELU);
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(R.net, &k));
    double x[24], K[1] = {42.0};
    memset(x, 0, sizeof x);
    ck_assert_int_eq(tn_ntk_analytic(k, x, 1, NULL, 0, K, NULL), TN_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "(sum)"));
    ck_assert(K[0] == 42.0);
    tn_ntk_free(k);
    tn_net_free(R.net);
}
END_TEST

/* Two threads (GEMMs cut into bands, patches and activation series into
 * ranges of images and elements) give the one-thread results: forward, VJP
 * and an order-2 Taylor step of the residual CNN, to rounding (1e-13). */
START_TEST(two_threads_give_one_threads_results)
{
    rnet R;
    arch(&R, 1, TN_PARAM_NTK, TN_ACT_TANH);
    const size_t n = 9, P = R.P, d = tn_net_input_size(R.net), O = tn_net_output_dim(R.net);
    double *x = tu_random(n * d, 40, 1.0), *u = tu_random(n * O, 41, 1.0);
    double *y[2], *g[2], *t[2];
    for (int th = 0; th < 2; th++) {
        TN_CK(ctx, tn_ctx_set_threads(ctx, th + 1));
        y[th] = malloc(n * O * sizeof(double));
        g[th] = malloc(P * sizeof(double));
        TN_CK(ctx, tn_net_forward(R.net, x, n, y[th]));
        TN_CK(ctx, tn_net_vjp(R.net, x, n, u, g[th]));
        tn_net *copy;
        TN_CK(ctx, tn_net_clone(R.net, &copy));
        tn_trainer *tr;
        TN_CK(ctx, tn_trainer_create(copy, &tr));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 2));
        for (int s = 0; s < 3; s++) TN_CK(ctx, tn_trainer_step(tr, x, u, n, NULL));
        t[th] = params(copy);
        tn_trainer_free(tr);
        tn_net_free(copy);
    }
    ck_assert(tu_rel_err(y[1], y[0], n * O, 1e-3) < 1e-13);
    ck_assert(tu_rel_err(g[1], g[0], P, 1e-3) < 1e-13);
    ck_assert(tu_rel_err(t[1], t[0], P, 1e-3) < 1e-13);
    for (int th = 0; th < 2; th++) free(y[th]), free(g[th]), free(t[th]);
    free(x), free(u);
    tn_net_free(R.net);
}
END_TEST

/* Output shapes follow MATH.md §9 (the reference's own arithmetic) at every
 * node of every architecture, and tn_net_output_shape reports them. */
START_TEST(shapes_follow_the_padding_rules)
{
    const size_t sides[] = {1, 2, 5, 7, 8};
    for (size_t a = 0; a < 5; a++)
        for (size_t k = 1; k <= 4; k++)
            for (size_t s = 1; s <= 3; s++)
                for (int same = 0; same < 2; same++) {
                    const size_t h = sides[a], shape[3] = {h, h + 1, 2};
                    tn_net *net = NULL;
                    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
                    const tn_status st = tn_net_add_conv2d(net, 3, k, k, s, same ? TN_PAD_SAME : TN_PAD_VALID);
                    if (!same && (k > h)) {
                        ck_assert_int_eq(st, TN_E_SHAPE);
                    } else {
                        ck_assert_int_eq(st, TN_OK);
                        size_t before, out[3], nd;
                        TN_CK(ctx, tn_net_output_shape(net, out, &nd));
                        ck_assert_uint_eq(nd, 3);
                        ck_assert_uint_eq(out[0], out_side(h, k, s, same, &before));
                        ck_assert_uint_eq(out[1], out_side(h + 1, k, s, same, &before));
                        ck_assert_uint_eq(out[2], 3);
                    }
                    tn_net_free(net);
                }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("against the reference");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, forward_matches_direct_loops, 0, N_ARCH);
    tcase_add_loop_test(tc, taylor_terms_and_jvp_match_finite_differences, 0, N_ARCH);
    tcase_add_loop_test(tc, vjp_is_the_adjoint_of_the_jvp, 0, N_ARCH);
    tcase_add_loop_test(tc, remainder_slope_is_k_plus_1, 0, 3);
    tcase_add_loop_test(tc, taylor_vjp_matches_finite_differences, 0, N_ARCH);
    tcase_add_test(tc, shapes_follow_the_padding_rules);
    tcase_add_test(tc, two_threads_give_one_threads_results);
    suite_add_tcase(s, tc);

    tc = tcase_create("identities");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, whole_image_valid_conv_is_dense);
    tcase_add_test(tc, pointwise_conv_is_dense_at_every_pixel);
    tcase_add_test(tc, residual_branches);
    tcase_add_loop_test(tc, reexpand_every_step_is_full_training, 0, N_ARCH);
    tcase_add_loop_test(tc, ntk_methods_agree, 0, N_ARCH);
    tcase_add_test(tc, ntk_tiling_matches_untiled);
    tcase_add_test(tc, closed_form_is_linearized_training);
    tcase_add_test(tc, every_mode_trains_and_diagnostics_count_conv_units);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad input");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bad_input_changes_nothing);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
