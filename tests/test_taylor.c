/* test_taylor.c -- the order-k Taylor model against independent
 * computations (MATH.md §8): remainder slopes, terms against finite
 * differences, the VJP of f_k against finite differences, exactness for
 * polynomial networks, frozen-mask ReLU nets, gradients at theta0, the base
 * cache, and bad input. */
#include "testutil.h"
#include "taylor/taylor.h"   /* internal: to see whether the base cache was used */

TU_CONTEXT_PER_TEST

static const tn_activation smooth[] = {TN_ACT_TANH, TN_ACT_SIGMOID, TN_ACT_ERF, TN_ACT_GELU,
                                       TN_ACT_SOFTPLUS};
enum { NSMOOTH = 5 };

static const size_t D = 4, N = 3;

static tn_net *net3(tn_activation act, int param, uint64_t seed)
{
    const size_t w[] = {6, 5, 2};
    return tu_mlp(ctx, D, w, 3, act, param, seed);
}

static void params_plus(tn_net *net, const double *theta0, double eps, const double *dir,
                        double *out)
{
    const size_t P = tn_net_num_params(net);
    for (size_t i = 0; i < P; i++) out[i] = theta0[i] + eps * dir[i];
}

static double diff_norm(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

/* ---- 8.1: the remainder |f - f_k| at theta0 + eps Delta falls like eps^(k+1).
 * The local slope between eps and eps/2 is k + 1 + O(eps C_{k+2}/C_{k+1});
 * the eps range is chosen per k so the remainder stays between ~1e-12 (well
 * above rounding, ~1e-16 |f|) and ~1e-3 (well inside the asymptotic range).
 * The fitted slope must be within 0.25 of k + 1. */
static double remainder_slope(tn_activation act, int k, double *eps_used)
{
    tn_net *net = net3(act, TN_PARAM_NTK, 77);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 21, 1.0), *dir = tu_random(P, 22, 1.0);
    double *theta0 = malloc(P * sizeof(double)), *th = malloc(P * sizeof(double));
    double f[N * 2], fk[N * 2];
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, k, &t));
    /* Pick eps_max so the remainder starts near 1e-4. */
    double eps = 0.5, R = 0;
    for (int it = 0; it < 60; it++) {
        params_plus(net, theta0, eps, dir, th);
        TN_CK(ctx, tn_net_set_params(net, th, P));
        TN_CK(ctx, tn_net_forward(net, x, N, f));
        TN_CK(ctx, tn_taylor_forward(t, th, x, N, fk));
        R = diff_norm(f, fk, N * O);
        if (R < 1e-4) break;
        eps *= 0.7;
    }
    *eps_used = eps;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    const int m = 5;
    for (int i = 0; i < m; i++, eps *= 0.5) {
        params_plus(net, theta0, eps, dir, th);
        TN_CK(ctx, tn_net_set_params(net, th, P));
        TN_CK(ctx, tn_net_forward(net, x, N, f));
        TN_CK(ctx, tn_taylor_forward(t, th, x, N, fk));
        R = diff_norm(f, fk, N * O);
        const double lx = log(eps), ly = log(R);
        sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
    }
    tn_taylor_free(t);
    tn_net_free(net);
    free(x), free(dir), free(theta0), free(th);
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

START_TEST(remainder_slope_is_k_plus_1)
{
    const tn_activation act = smooth[_i % NSMOOTH];
    const int k = 1 + _i / NSMOOTH;
    double eps;
    const double slope = remainder_slope(act, k, &eps);
    printf("remainder slope %-8s k=%d: %.3f (eps from %.3g)\n", tu_act_names[act], k, slope, eps);
    ck_assert_msg(fabs(slope - (k + 1)) < 0.25, "%s k=%d: slope %.3f", tu_act_names[act], k, slope);
}
END_TEST

/* ---- §3: in a ReLU net with L weight layers, f_k for k >= L is the network
 * with its masks frozen at theta0, computed here by a plain reference
 * forward (explicit loops over the documented parameter layout). */
static void frozen_mask_forward(const size_t *w, size_t L, int param, double sw, double sb,
                                double slope, const double *theta, const double *theta0,
                                const double *x, double *y)
{
    double a[16], a0[16], z[16], z0[16];
    size_t in = D;
    for (size_t i = 0; i < in; i++) a[i] = a0[i] = x[i];
    const double *p = theta, *p0 = theta0;
    for (size_t l = 0; l < L; l++) {
        const size_t out = w[l];
        const double ws = param == TN_PARAM_NTK ? sw / sqrt((double)in) : 1.0;
        const double bs = param == TN_PARAM_NTK ? sb : 1.0;
        for (size_t o = 0; o < out; o++) {
            z[o] = bs * p[out * in + o];
            z0[o] = bs * p0[out * in + o];
            for (size_t i = 0; i < in; i++) {
                z[o] += ws * p[o * in + i] * a[i];
                z0[o] += ws * p0[o * in + i] * a0[i];
            }
        }
        p += out * in + out;
        p0 += out * in + out;
        for (size_t o = 0; o < out; o++) {
            const double m = l + 1 == L ? 1.0 : z0[o] > 0 ? 1.0 : slope;
            a[o] = m * z[o];
            a0[o] = m * z0[o];
        }
        in = out;
    }
    for (size_t o = 0; o < in; o++) y[o] = a[o];
}

/* ---- 8.2: term j is (1/j!) d^j/dt^j f(theta0 + t Delta) at t = 0.
 * Central differences of g(t) = f(theta0 + t Delta):
 *   j=1: (g(h) - g(-h)) / 2h                               error h^2, eps/h
 *   j=2: (g(h) - 2g(0) + g(-h)) / h^2 / 2                  error h^2, eps/h^2
 *   j=3: (g(2h) - 2g(h) + 2g(-h) - g(-2h)) / 2h^3 / 6      error h^2, eps/h^3
 *   j=4: (g(2h) - 4g(h) + 6g(0) - 4g(-h) + g(-2h)) / h^4 / 24
 * With h = 1e-3 (j <= 2), 5e-3 (j = 3), 2e-2 (j = 4) the bounds are 1e-6,
 * 1e-5, 1e-4 and 1e-3 relative to the term scale.  For the ReLU family g
 * is a polynomial only between kinks: h is halved until no sample crosses
 * one (checked against the frozen-mask reference net), and then the
 * differences of a polynomial of degree <= 3 are exact up to rounding. */
static int crosses_kink(tn_activation act, int param, tn_net *net, const double *theta,
                        const double *theta0, const double *x, const double *f)
{
    if (act != TN_ACT_RELU && act != TN_ACT_LEAKY_RELU) return 0;
    const size_t w[] = {6, 5, 2};
    double sw, sb, slope = 0, ref[2];
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_W, &sw));
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_B, &sb));
    if (act == TN_ACT_LEAKY_RELU) TN_CK(ctx, tn_net_get(net, TN_NET_LEAKY_SLOPE, &slope));
    for (size_t i = 0; i < N; i++) {
        frozen_mask_forward(w, 3, param, sw, sb, slope, theta, theta0, x + i * D, ref);
        if (fabs(ref[0] - f[i * 2]) + fabs(ref[1] - f[i * 2 + 1]) > 1e-12) return 1;
    }
    return 0;
}

START_TEST(terms_match_finite_differences)
{
    const tn_activation act = (tn_activation)(_i / 2);
    const int param = _i % 2;
    tn_net *net = net3(act, param, 5);
    const size_t P = tn_net_num_params(net), O = 2, K = 4;
    double *x = tu_random(N * D, 31, 1.0), *dir = tu_random(P, 32, 0.5);
    double *theta0 = malloc(P * sizeof(double)), *th = malloc(P * sizeof(double));
    double terms[(4 + 1) * N * 2];
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, (int)K, &t));
    params_plus(net, theta0, 1.0, dir, th);
    TN_CK(ctx, tn_taylor_terms(t, th, x, N, terms));
    const double hs[] = {0, 1e-3, 1e-3, 5e-3, 2e-2}, tol[] = {0, 1e-6, 1e-5, 1e-4, 1e-3};
    for (size_t j = 1; j <= K; j++) {
        double h = hs[j], g[5][N * 2];
        for (int crossed = 1, tries = 0; crossed; h *= 0.5, tries++) {
            ck_assert_int_lt(tries, 20);
            crossed = 0;
            for (int s = -2; s <= 2; s++) {
                params_plus(net, theta0, s * h, dir, th);
                TN_CK(ctx, tn_net_set_params(net, th, P));
                TN_CK(ctx, tn_net_forward(net, x, N, g[s + 2]));
                crossed |= crosses_kink(act, param, net, th, theta0, x, g[s + 2]);
            }
            if (!crossed) break;
        }
        double fd[N * 2];
        for (size_t i = 0; i < N * O; i++) {
            const double m2 = g[0][i], m1 = g[1][i], z = g[2][i], p1 = g[3][i], p2 = g[4][i];
            fd[i] = j == 1   ? (p1 - m1) / (2 * h)
                    : j == 2 ? (p1 - 2 * z + m1) / (h * h) / 2
                    : j == 3 ? (p2 - 2 * p1 + 2 * m1 - m2) / (2 * h * h * h) / 6
                             : (p2 - 4 * p1 + 6 * z - 4 * m1 + m2) / (h * h * h * h) / 24;
        }
        /* Scale: the largest of the first terms, so vanishing terms (ReLU nets
         * above their depth, identity nets) are compared absolutely. */
        const double err = tu_rel_err(terms + j * N * O, fd, N * O, 1e-2);
        ck_assert_msg(err < tol[j], "%s/%d: term %zu error %.3g", tu_act_names[act], param, j, err);
    }
    TN_CK(ctx, tn_net_set_params(net, theta0, P));
    tn_taylor_free(t);
    tn_net_free(net);
    free(x), free(dir), free(theta0), free(th);
}
END_TEST

/* The terms sum to the forward, and term 0 is f(theta0). */
START_TEST(terms_sum_to_forward)
{
    tn_net *net = net3(TN_ACT_TANH, TN_PARAM_NTK, 8);
    const size_t P = tn_net_num_params(net), O = 2, K = 5;
    double *x = tu_random(N * D, 41, 1.0), *th = tu_random(P, 42, 0.3);
    double *theta0 = malloc(P * sizeof(double)), terms[6 * N * 2], y[N * 2], f0[N * 2];
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    for (size_t i = 0; i < P; i++) th[i] += theta0[i];
    TN_CK(ctx, tn_net_forward(net, x, N, f0));
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, (int)K, &t));
    TN_CK(ctx, tn_taylor_terms(t, th, x, N, terms));
    TN_CK(ctx, tn_taylor_forward(t, th, x, N, y));
    ck_assert_mem_eq(terms, f0, sizeof f0);
    for (size_t i = 0; i < N * O; i++) {
        double s = 0;
        for (size_t j = K + 1; j-- > 0;) s += terms[j * N * O + i];
        ck_assert_double_eq_tol(s, y[i], 1e-14 * fmax(1, fabs(y[i])));
    }
    double norms[6], ratio;
    TN_CK(ctx, tn_taylor_term_norms(t, norms, 6));
    TN_CK(ctx, tn_taylor_divergence(t, &ratio));
    ck_assert_double_eq_tol(ratio, norms[5] / norms[4], 1e-15 * ratio);
    ck_assert_double_eq_tol(norms[0], sqrt(tu_dot(f0, f0, N * O)), 1e-14 * norms[0]);
    tn_taylor_free(t);
    tn_net_free(net);
    free(x), free(th), free(theta0);
}
END_TEST

/* ---- 8.2: the VJP of f_k against central differences of f_k in theta
 * (h = 1e-5; f_k is a polynomial of degree k, error ~1e-10 as in test_grad),
 * away from theta0 so that every order contributes. */
START_TEST(taylor_vjp_matches_finite_differences)
{
    const tn_activation act = (tn_activation)(_i % 8);
    const int k = 1 + _i / 8;   /* orders 1..4 */
    tn_net *net = net3(act, TN_PARAM_STANDARD, 9 + (uint64_t)_i);
    const size_t P = tn_net_num_params(net), O = 2;
    double *x = tu_random(N * D, 51, 1.0), *th = tu_random(P, 52, 0.2);
    double *theta0 = malloc(P * sizeof(double)), *u = tu_random(N * O, 53, 1.0);
    double *g = malloc(P * sizeof(double)), *gfd = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    for (size_t i = 0; i < P; i++) th[i] += theta0[i];
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, k, &t));
    TN_CK(ctx, tn_taylor_vjp(t, th, x, N, u, g));
    const double h = 1e-5;
    for (size_t p = 0; p < P; p++) {
        double fp[N * 2], fm[N * 2];
        const double keep = th[p];
        th[p] = keep + h;
        TN_CK(ctx, tn_taylor_forward(t, th, x, N, fp));
        th[p] = keep - h;
        TN_CK(ctx, tn_taylor_forward(t, th, x, N, fm));
        th[p] = keep;
        gfd[p] = 0;
        for (size_t i = 0; i < N * O; i++) gfd[p] += u[i] * (fp[i] - fm[i]) / (2 * h);
    }
    const double err = tu_rel_err(g, gfd, P, 1e-3);
    ck_assert_msg(err < 1e-7, "%s k=%d: VJP error %.3g", tu_act_names[act], k, err);
    tn_taylor_free(t);
    tn_net_free(net);
    free(x), free(th), free(theta0), free(u), free(g), free(gfd);
}
END_TEST

/* ---- 8.2 / §3: the gradient of f_k at theta0 is the network's gradient,
 * for every order and activation. */
START_TEST(gradient_at_base_is_full_gradient)
{
    const tn_activation act = (tn_activation)(_i % 8);
    const int param = (_i / 8) % 2;
    tn_net *net = net3(act, param, 60 + (uint64_t)_i);
    const size_t P = tn_net_num_params(net), O = 2;
    double *x = tu_random(N * D, 61, 1.0), *u = tu_random(N * O, 62, 1.0);
    double *g = malloc(P * sizeof(double)), *gk = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_vjp(net, x, N, u, g));
    for (int k = 1; k <= 8; k++) {
        tn_taylor *t;
        TN_CK(ctx, tn_taylor_create(net, k, &t));
        TN_CK(ctx, tn_taylor_vjp(t, NULL, x, N, u, gk));
        /* Same GEMMs on the same data, summed in a different grouping only
         * where Delta = 0 adds exact zeros: agreement to rounding. */
        ck_assert_msg(tu_rel_err(gk, g, P, 1e-12) < 1e-13, "%s k=%d", tu_act_names[act], k);
        tn_taylor_free(t);
    }
    tn_net_free(net);
    free(x), free(u), free(g), free(gk);
}
END_TEST

/* ---- §3: a one-hidden-layer identity net is bilinear in its parameters,
 * so f_2 = f exactly (to rounding), while f_1 is not. */
START_TEST(second_order_is_exact_for_identity_net)
{
    const size_t w[] = {7, 3};
    tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_IDENTITY, _i, 70);
    const size_t P = tn_net_num_params(net), O = 3;
    double *x = tu_random(N * D, 71, 1.0), *th = tu_random(P, 72, 1.0);
    double f[N * 3], f1[N * 3], f2[N * 3], f5[N * 3];
    tn_taylor *t1, *t2, *t5;
    TN_CK(ctx, tn_taylor_create(net, 1, &t1));
    TN_CK(ctx, tn_taylor_create(net, 2, &t2));
    TN_CK(ctx, tn_taylor_create(net, 5, &t5));
    TN_CK(ctx, tn_taylor_forward(t1, th, x, N, f1));
    TN_CK(ctx, tn_taylor_forward(t2, th, x, N, f2));
    TN_CK(ctx, tn_taylor_forward(t5, th, x, N, f5));
    TN_CK(ctx, tn_net_set_params(net, th, P));
    TN_CK(ctx, tn_net_forward(net, x, N, f));
    ck_assert_double_le(tu_rel_err(f2, f, N * O, 1e-3), 1e-14);
    ck_assert_double_le(tu_rel_err(f5, f, N * O, 1e-3), 1e-14);
    ck_assert_double_gt(tu_rel_err(f1, f, N * O, 1e-3), 1e-3);
    double ratio;
    TN_CK(ctx, tn_taylor_divergence(t5, &ratio));
    ck_assert_double_eq(ratio, 0.0);    /* terms 3.. vanish identically */
    tn_taylor_free(t1), tn_taylor_free(t2), tn_taylor_free(t5);
    tn_net_free(net);
    free(x), free(th);
}
END_TEST

START_TEST(relu_expansion_equals_frozen_mask_net)
{
    const tn_activation act = _i % 2 ? TN_ACT_LEAKY_RELU : TN_ACT_RELU;
    const int param = (_i / 2) % 2;
    const size_t w[] = {6, 5, 4, 2}, L = 4;
    tn_net *net = tu_mlp(ctx, D, w, L, act, param, 80 + (uint64_t)_i);
    const size_t P = tn_net_num_params(net), O = 2;
    double sw, sb, slope;
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_W, &sw));
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_B, &sb));
    TN_CK(ctx, tn_net_get(net, TN_NET_LEAKY_SLOPE, &slope));
    if (act == TN_ACT_RELU) slope = 0;
    double *x = tu_random(N * D, 81, 1.0), *dir = tu_random(P, 82, 0.5);
    double *theta0 = malloc(P * sizeof(double)), *th = malloc(P * sizeof(double));
    double ref[N * 2], fk[N * 2];
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    for (size_t i = 0; i < P; i++) th[i] = theta0[i] + dir[i];
    for (size_t i = 0; i < N; i++)
        frozen_mask_forward(w, L, param, sw, sb, slope, th, theta0, x + i * D, ref + i * O);
    for (int k = 1; k <= 6; k++) {
        tn_taylor *t;
        TN_CK(ctx, tn_taylor_create(net, k, &t));
        TN_CK(ctx, tn_taylor_forward(t, th, x, N, fk));
        const double err = tu_rel_err(fk, ref, N * O, 1e-3);
        if (k >= (int)L)
            ck_assert_msg(err < 1e-13, "k=%d: %.3g from the frozen-mask net", k, err);
        else
            ck_assert_msg(err > 1e-6, "k=%d < L should not be exact (%.3g)", k, err);
        tn_taylor_free(t);
    }
    tn_net_free(net);
    free(x), free(dir), free(theta0), free(th);
}
END_TEST

/* ---- caching: the order-0 blocks are reused only for the same batch, base
 * and order; a batch changed in place (same pointer), a rebase or fewer
 * rows are never served stale results (order changes: test_modes.c).
 * _i % 3: GELU (its order-0 values recomputed from the cached inputs), tanh
 * and the sigmoid (y_0 and c_0 themselves reused: activation.c); _i >= 3:
 * a residual net, whose first activation has its own buffer (its input is
 * also the sum's) and whose second works in place over the sum. */
static tn_net *residual_net(tn_activation act, uint64_t seed)
{
    const size_t shape[1] = {D};
    size_t branch;
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, shape, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 5));
    TN_CK(ctx, tn_net_current(net, &branch));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_dense(net, 5));
    TN_CK(ctx, tn_net_add_sum(net, branch));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_init(net, seed));
    return net;
}

START_TEST(base_cache_is_used_and_never_stale)
{
    static const tn_activation acts[] = {TN_ACT_GELU, TN_ACT_TANH, TN_ACT_SIGMOID};
    tn_net *net = _i < 3 ? net3(acts[_i], TN_PARAM_NTK, 90) : residual_net(acts[_i % 3], 90);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 91, 1.0), *th = tu_random(P, 92, 0.3);
    double *theta0 = malloc(P * sizeof(double)), y[N * 2], yfresh[N * 2];
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    for (size_t i = 0; i < P; i++) th[i] += theta0[i];
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, 3, &t));

#define FRESH(theta_, x_, out_)                                     \
    do {                                                           \
        tn_taylor *f_;                                             \
        TN_CK(ctx, tn_taylor_create(net, 3, &f_));                 \
        TN_CK(ctx, tn_taylor_rebase(f_, theta0, P));               \
        TN_CK(ctx, tn_taylor_forward(f_, theta_, x_, N, out_));    \
        tn_taylor_free(f_);                                        \
    } while (0)

    TN_CK(ctx, tn_taylor_forward(t, th, x, N, y));
    ck_assert_int_eq(t->ex.last_cached, 0);
    /* Same batch (a copy at another address), other theta: cached, and equal
     * to a fresh computation. */
    double *xc = malloc(N * D * sizeof(double));
    memcpy(xc, x, N * D * sizeof(double));
    th[0] += 0.1;
    TN_CK(ctx, tn_taylor_forward(t, th, xc, N, y));
    ck_assert_int_eq(t->ex.last_cached, 1);
    FRESH(th, xc, yfresh);
    ck_assert_mem_eq(y, yfresh, sizeof y);
    /* The batch changed in place by one ulp: recomputed. */
    xc[5] = nextafter(xc[5], 10.0);
    TN_CK(ctx, tn_taylor_forward(t, th, xc, N, y));
    ck_assert_int_eq(t->ex.last_cached, 0);
    FRESH(th, xc, yfresh);
    ck_assert_mem_eq(y, yfresh, sizeof y);
    /* A rebase invalidates. */
    theta0[3] += 0.5;
    TN_CK(ctx, tn_taylor_rebase(t, theta0, P));
    TN_CK(ctx, tn_taylor_forward(t, th, xc, N, y));
    ck_assert_int_eq(t->ex.last_cached, 0);
    FRESH(th, xc, yfresh);
    ck_assert_mem_eq(y, yfresh, sizeof y);
    /* Fewer rows of the same data is another batch. */
    TN_CK(ctx, tn_taylor_forward(t, th, xc, N - 1, y));
    ck_assert_int_eq(t->ex.last_cached, 0);
#undef FRESH
    tn_taylor_free(t);
    tn_net_free(net);
    free(x), free(xc), free(th), free(theta0);
}
END_TEST

/* ---- bad input */
START_TEST(bad_input)
{
    tn_net *net = net3(TN_ACT_TANH, TN_PARAM_NTK, 1);
    const size_t P = tn_net_num_params(net);
    tn_taylor *t = (tn_taylor *)0x1;
    ck_assert_int_eq(tn_taylor_create(net, 0, &t), TN_E_INVALID_ARG);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "order 0"));
    ck_assert_int_eq(tn_taylor_create(net, tn_taylor_max_order() + 1, &t), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_create(NULL, 1, &t), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_create(net, 2, NULL), TN_E_INVALID_ARG);
    ck_assert_int_ge(tn_taylor_max_order(), 16);
    TN_CK(ctx, tn_taylor_create(net, 2, &t));
    ck_assert_int_eq(tn_taylor_order(t), 2);
    double *th = calloc(P + 1, sizeof(double)), y[N * 2], r;
    double *x = tu_random(N * D, 1, 1.0);
    ck_assert_int_eq(tn_taylor_divergence(t, &r), TN_E_STATE);
    ck_assert_int_eq(tn_taylor_rebase(t, th, P + 1), TN_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_taylor_rebase"));
    ck_assert_int_eq(tn_taylor_rebase(t, th, P - 1), TN_E_SHAPE);
    ck_assert_int_eq(tn_taylor_get_base(t, th, P + 1), TN_E_SHAPE);
    th[2] = NAN;
    ck_assert_int_eq(tn_taylor_rebase(t, th, P), TN_E_INVALID_ARG);
    th[2] = 0;
    TN_CK(ctx, tn_taylor_rebase(t, NULL, 0));
    ck_assert_int_eq(tn_taylor_forward(t, NULL, NULL, N, y), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_forward(t, NULL, x, 0, y), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_forward(t, NULL, x, N, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_terms(t, NULL, x, N, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_vjp(t, NULL, x, N, NULL, th), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_taylor_forward((tn_taylor *)net, NULL, x, N, y), TN_E_MISUSE);
    ck_assert_int_eq(tn_taylor_forward(NULL, NULL, x, N, y), TN_E_INVALID_ARG);
    double norms[3];
    ck_assert_int_eq(tn_taylor_term_norms(t, norms, 2), TN_E_SHAPE);
    ck_assert_int_eq(tn_taylor_order(NULL), 0);
    tn_taylor_free(NULL);
    tn_taylor_free(t);
    /* An uninitialized network cannot be expanded. */
    tn_net *raw;
    const size_t d = 3;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &raw));
    TN_CK(ctx, tn_net_add_dense(raw, 2));
    ck_assert_int_eq(tn_taylor_create(raw, 1, &t), TN_E_STATE);
    tn_net_free(raw);
    tn_net_free(net);
    free(th), free(x);
}
END_TEST

/* Term norms and the divergence ratio of terms whose squares overflow
 * (found by fuzz_api: the ratio came back NaN with TN_OK).  Three identity
 * dense layers of width 2 at Delta = 1e60 per parameter: term j grows like
 * 1e60^j, so |z_3|^2 and |z_2|^2 both overflow while the terms do not.  The
 * ratio of the top two norms is about 1e60 (a product of 1e60 and the
 * layers' scales), finite; a result that overflows is refused, and then
 * nothing counts as evaluated. */
START_TEST(huge_terms_give_finite_norms)
{
    const size_t d = 2;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    for (int l = 0; l < 3; l++) {
        TN_CK(ctx, tn_net_add_dense(net, 2));
        if (l < 2) TN_CK(ctx, tn_net_add_activation(net, TN_ACT_IDENTITY));
    }
    TN_CK(ctx, tn_net_init(net, 3));
    const size_t P = tn_net_num_params(net);
    double *theta = malloc(P * sizeof(double)), x[2] = {1.0, -0.5}, y[2], norms[4], r;
    TN_CK(ctx, tn_net_get_params(net, theta, P));
    for (size_t i = 0; i < P; i++) theta[i] += 1e60;
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, 3, &t));
    TN_CK(ctx, tn_taylor_forward(t, theta, x, 1, y));
    TN_CK(ctx, tn_taylor_term_norms(t, norms, 4));
    for (int j = 0; j < 4; j++) ck_assert_msg(isfinite(norms[j]), "norm %d = %g", j, norms[j]);
    ck_assert_msg(norms[3] > 1e170 && norms[2] > 1e110, "norms %g %g", norms[2], norms[3]);
    TN_CK(ctx, tn_taylor_divergence(t, &r));
    /* |z_3| / |z_2|, both computed without squaring: their ratio to 1e-12
     * (a few roundings each). */
    ck_assert_msg(fabs(r - norms[3] / norms[2]) <= 1e-12 * r, "ratio %g vs %g", r,
                  norms[3] / norms[2]);
    /* Far enough that the output itself overflows: refused, not evaluated. */
    for (size_t i = 0; i < P; i++) theta[i] += 1e110;
    ck_assert_int_eq(tn_taylor_forward(t, theta, x, 1, y), TN_E_NUMERIC);
    ck_assert_int_eq(tn_taylor_divergence(t, &r), TN_E_STATE);
    ck_assert_int_eq(tn_taylor_term_norms(t, norms, 4), TN_E_STATE);
    free(theta);
    tn_taylor_free(t);
    tn_net_free(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("taylor");
    TCase *tc = tcase_create("identities");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, remainder_slope_is_k_plus_1, 0, 6 * NSMOOTH);
    tcase_add_loop_test(tc, terms_match_finite_differences, 0, 16);
    tcase_add_test(tc, terms_sum_to_forward);
    tcase_add_loop_test(tc, taylor_vjp_matches_finite_differences, 0, 32);
    tcase_add_loop_test(tc, gradient_at_base_is_full_gradient, 0, 16);
    tcase_add_loop_test(tc, second_order_is_exact_for_identity_net, 0, 2);
    tcase_add_loop_test(tc, relu_expansion_equals_frozen_mask_net, 0, 4);
    tcase_add_loop_test(tc, base_cache_is_used_and_never_stale, 0, 6);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, huge_terms_give_finite_norms);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
