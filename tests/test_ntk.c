/* test_ntk.c -- the empirical NTK: its three methods against each other and
 * against J J^T from finite-difference Jacobians, symmetry, tiling under a
 * memory budget, progress and cancellation, bad input (MATH.md §8.5). */
#include "testutil.h"

TU_CONTEXT_PER_TEST
static const size_t D = 4;

static tn_net *make_net(tn_activation act, int param, uint64_t seed)
{
    const size_t w[] = {7, 6, 3};
    return tu_mlp(ctx, D, w, 3, act, param, seed);
}

static double *kernel(tn_net *net, int method, int full, const double *x1, size_t n1,
                      const double *x2, size_t n2, double budget)
{
    const size_t O = tn_net_output_dim(net), m2 = x2 ? n2 : n1;
    double *K = malloc(n1 * m2 * (full ? O * O : 1) * sizeof(double));
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_METHOD, method));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, full ? TN_NTK_FULL : TN_NTK_TRACE));
    if (budget > 0) TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, budget));
    TN_CK(ctx, tn_ntk_compute(k, x1, n1, x2, n2, K));
    tn_ntk_free(k);
    return K;
}

/* The methods differ only in the order of their sums: 1e-10 relative to
 * the kernel's largest entry.  _i: activation (8) x parameterization (2) x
 * trace/full (2). */
START_TEST(methods_agree)
{
    const tn_activation act = (tn_activation)(_i / 4);
    const int param = (_i / 2) % 2, full = _i % 2;
    tn_net *net = make_net(act, param, 10 + (uint64_t)_i);
    const size_t n1 = 5, n2 = 4, O = 3, sz = n1 * n2 * (full ? O * O : 1);
    double *x1 = tu_random(n1 * D, 1, 1.0), *x2 = tu_random(n2 * D, 2, 1.0);
    double *Ks = kernel(net, TN_NTK_STRUCTURED, full, x1, n1, x2, n2, 0);
    double *Kj = kernel(net, TN_NTK_JACOBIAN, full, x1, n1, x2, n2, 0);
    double *Kv = kernel(net, TN_NTK_VECTOR_PRODUCTS, full, x1, n1, x2, n2, 0);
    double *Ka = kernel(net, TN_NTK_AUTO, full, x1, n1, x2, n2, 0);
    ck_assert_msg(tu_rel_err(Kj, Ks, sz, 1e-300) < 1e-10, "%s: jacobian %.3g", tu_act_names[act],
                  tu_rel_err(Kj, Ks, sz, 1e-300));
    ck_assert_msg(tu_rel_err(Kv, Ks, sz, 1e-300) < 1e-10, "%s: vector products %.3g",
                  tu_act_names[act], tu_rel_err(Kv, Ks, sz, 1e-300));
    ck_assert_double_le(tu_rel_err(Ka, Ks, sz, 1e-300), 1e-10);
    /* The same with x2 = NULL against x2 = x1 given explicitly, per method. */
    for (int m = TN_NTK_STRUCTURED; m <= TN_NTK_VECTOR_PRODUCTS; m++) {
        double *Kn = kernel(net, m, full, x1, n1, NULL, 0, 0);
        double *Ke = kernel(net, m, full, x1, n1, x1, n1, 0);
        const size_t s = n1 * n1 * (full ? O * O : 1);
        ck_assert_msg(tu_rel_err(Kn, Ke, s, 1e-300) < 1e-12, "method %d: x2 NULL %.3g", m,
                      tu_rel_err(Kn, Ke, s, 1e-300));
        free(Kn), free(Ke);
    }
    free(Ks), free(Kj), free(Kv), free(Ka), free(x1), free(x2);
    tn_net_free(net);
}
END_TEST

/* Against J J^T with J from central differences (h = 1e-5, error ~1e-10
 * per entry, see test_grad.c), full and traced.  ReLU kinks: none of the
 * random inputs sits within h of one (the test would fail loudly). */
START_TEST(matches_finite_difference_jacobians)
{
    const tn_activation act = (tn_activation)(_i / 2);
    const int param = _i % 2;
    tn_net *net = make_net(act, param, 30 + (uint64_t)_i);
    const size_t n = 4, O = 3, P = tn_net_num_params(net);
    double *x = tu_random(n * D, 3, 1.0), *theta = malloc(P * sizeof(double));
    double *J = malloc(n * O * P * sizeof(double)), fp[4 * 3], fm[4 * 3];
    TN_CK(ctx, tn_net_get_params(net, theta, P));
    const double h = 1e-5;
    for (size_t p = 0; p < P; p++) {
        const double keep = theta[p];
        theta[p] = keep + h;
        TN_CK(ctx, tn_net_set_params(net, theta, P));
        TN_CK(ctx, tn_net_forward(net, x, n, fp));
        theta[p] = keep - h;
        TN_CK(ctx, tn_net_set_params(net, theta, P));
        TN_CK(ctx, tn_net_forward(net, x, n, fm));
        theta[p] = keep;
        for (size_t r = 0; r < n * O; r++) J[r * P + p] = (fp[r] - fm[r]) / (2 * h);
    }
    TN_CK(ctx, tn_net_set_params(net, theta, P));
    double full_ref[12 * 12], trace_ref[4 * 4];
    for (size_t r = 0; r < n * O; r++)
        for (size_t s = 0; s < n * O; s++) full_ref[r * n * O + s] = tu_dot(J + r * P, J + s * P, P);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double t = 0;
            for (size_t c = 0; c < O; c++) t += full_ref[(i * O + c) * n * O + j * O + c];
            trace_ref[i * n + j] = t / O;
        }
    double *Kf = kernel(net, TN_NTK_AUTO, 1, x, n, NULL, 0, 0);
    double *Kt = kernel(net, TN_NTK_AUTO, 0, x, n, NULL, 0, 0);
    ck_assert_msg(tu_rel_err(Kf, full_ref, n * n * O * O, 1e-3) < 1e-7, "%s full %.3g",
                  tu_act_names[act], tu_rel_err(Kf, full_ref, n * n * O * O, 1e-3));
    ck_assert_double_le(tu_rel_err(Kt, trace_ref, n * n, 1e-3), 1e-7);
    free(x), free(theta), free(J), free(Kf), free(Kt);
    tn_net_free(net);
}
END_TEST

/* Tiles under small budgets give the untiled kernel (to the rounding of
 * different GEMM shapes), for every method, symmetric and not, and the
 * library's own allocations stay within the budget plus the output. */
START_TEST(tiling_matches_untiled)
{
    const int method = TN_NTK_STRUCTURED + _i / 4, full = (_i / 2) % 2, sym = _i % 2;
    const size_t d = 40, w[] = {64, 64, 5};
    tn_net *net = tu_mlp(ctx, d, w, 3, TN_ACT_TANH, TN_PARAM_NTK, 50);
    const size_t n1 = method == TN_NTK_VECTOR_PRODUCTS ? 30 : 120, n2 = n1 - 7, O = 5;
    double *x1 = tu_random(n1 * d, 4, 1.0), *x2 = sym ? NULL : tu_random(n2 * d, 5, 1.0);
    const size_t m2 = sym ? n1 : n2, sz = n1 * m2 * (full ? O * O : 1);
    double *ref = kernel(net, method, full, x1, n1, x2, n2, 1e9);
    const double budgets[] = {1 << 20, 1.5 * (1 << 20), 3 << 20};
    for (int b = 0; b < 3; b++) {
        size_t before, peak;
        TN_CK(ctx, tn_ctx_reset_peak_memory(ctx));
        TN_CK(ctx, tn_ctx_get_memory(ctx, &before, NULL));
        double *K = kernel(net, method, full, x1, n1, x2, n2, budgets[b]);
        TN_CK(ctx, tn_ctx_get_memory(ctx, NULL, &peak));
        const double err = tu_rel_err(K, ref, sz, 1e-300);
        ck_assert_msg(err < 1e-12, "method %d full %d sym %d budget %g: %.3g", method, full, sym,
                      budgets[b], err);
        ck_assert_msg((double)(peak - before) <= budgets[b] * 1.01 + 4096,
                      "method %d: peak %zu bytes over the budget %g", method, peak - before,
                      budgets[b]);
        free(K);
    }
    free(ref), free(x1), free(x2);
    tn_net_free(net);
}
END_TEST

/* One handle serves calls of every shape: it keeps its workspace (feature
 * sets, temporaries) from one call to the next, relaid for each.  Each
 * call must give, bit for bit, what a new handle with the same settings
 * gives: larger after smaller, full after traced, Jacobian routes after
 * Gram ones, a tiling budget after none and back. */
START_TEST(one_handle_serves_calls_of_every_shape)
{
    const size_t d = 40, w[] = {64, 64, 5}, O = 5;
    tn_net *net = tu_mlp(ctx, d, w, 3, TN_ACT_TANH, TN_PARAM_NTK, 51);
    double *x1 = tu_random(120 * d, 6, 1.0), *x2 = tu_random(50 * d, 7, 1.0);
    static const struct {
        int method, full;
        size_t n1, n2;      /* n2 = 0: x2 = x1 */
        double budget;      /* 0: the default */
    } calls[] = {
        {TN_NTK_STRUCTURED, 0, 40, 0, 0},   {TN_NTK_STRUCTURED, 0, 120, 0, 0},
        {TN_NTK_STRUCTURED, 1, 120, 50, 0}, {TN_NTK_JACOBIAN, 0, 30, 0, 0},
        {TN_NTK_AUTO, 1, 60, 50, 0},        {TN_NTK_STRUCTURED, 0, 120, 0, 1 << 20},
        {TN_NTK_STRUCTURED, 1, 120, 50, 1 << 20}, {TN_NTK_STRUCTURED, 0, 120, 0, 0},
    };
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    double default_budget;
    TN_CK(ctx, tn_ntk_get(k, TN_NTK_MEMORY_BUDGET, &default_budget));
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        const size_t n1 = calls[c].n1, n2 = calls[c].n2, m2 = n2 ? n2 : n1;
        const size_t size = n1 * m2 * (calls[c].full ? O * O : 1);
        const double budget = calls[c].budget > 0 ? calls[c].budget : default_budget;
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_METHOD, calls[c].method));
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, calls[c].full ? TN_NTK_FULL : TN_NTK_TRACE));
        TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, budget));
        double *K = malloc(size * sizeof(double));
        TN_CK(ctx, tn_ntk_compute(k, x1, n1, n2 ? x2 : NULL, n2, K));
        double *ref = kernel(net, calls[c].method, calls[c].full, x1, n1, n2 ? x2 : NULL, n2,
                             budget);
        ck_assert_msg(memcmp(K, ref, size * sizeof(double)) == 0,
                      "call %zu: the kept handle's kernel differs from a new handle's", c);
        free(K), free(ref);
    }
    tn_ntk_free(k);
    free(x1), free(x2);
    tn_net_free(net);
}
END_TEST

typedef struct progress_log {
    int calls, cancel_at;
    double last;
    int monotone;
} progress_log;

/* Two threads give one thread's kernel: the structured method's feature
 * copies run in two ranges of examples then, and its GEMMs in bands.  200
 * and 70 inputs, full and traced, x2 = x1 and not; to rounding (1e-13 of the largest entry: the bands change no sum,
 * but a BLAS may round a band's edge differently). */
START_TEST(two_threads_give_one_threads_kernel)
{
    tn_net *net = make_net(TN_ACT_TANH, TN_PARAM_NTK, 9);
    const size_t n1 = 200, n2 = 70, O = tn_net_output_dim(net);
    double *x1 = tu_random(n1 * D, 50, 1.0), *x2 = tu_random(n2 * D, 51, 1.0);
    for (int full = 0; full < 2; full++)
        for (int cross = 0; cross < 2; cross++) {
            const size_t m = cross ? n2 : n1, size = n1 * m * (full ? O * O : 1);
            TN_CK(ctx, tn_ctx_set_threads(ctx, 1));
            double *K1 = kernel(net, TN_NTK_STRUCTURED, full, x1, n1, cross ? x2 : NULL, n2, 0);
            TN_CK(ctx, tn_ctx_set_threads(ctx, 2));
            double *K2 = kernel(net, TN_NTK_STRUCTURED, full, x1, n1, cross ? x2 : NULL, n2, 0);
            ck_assert_msg(tu_rel_err(K2, K1, size, 1.0) < 1e-13, "full %d cross %d: %g", full,
                          cross, tu_rel_err(K2, K1, size, 1.0));
            free(K1), free(K2);
        }
    free(x1), free(x2);
    tn_net_free(net);
}
END_TEST

static int on_progress(void *user, double f)
{
    progress_log *p = user;
    if (f < p->last) p->monotone = 0;
    p->last = f;
    return ++p->calls == p->cancel_at;
}

START_TEST(progress_and_cancellation)
{
    const size_t d = 40, w[] = {64, 5};
    tn_net *net = tu_mlp(ctx, d, w, 2, TN_ACT_RELU, TN_PARAM_NTK, 60);
    const size_t n = 200;
    double *x = tu_random(n * d, 6, 1.0), *K = malloc(n * n * sizeof(double));
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_METHOD, TN_NTK_STRUCTURED));
    TN_CK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 1 << 20));
    progress_log log = {0, -1, 0, 1};
    TN_CK(ctx, tn_ctx_set_progress(ctx, on_progress, &log));
    TN_CK(ctx, tn_ntk_compute(k, x, n, NULL, 0, K));
    ck_assert_int_gt(log.calls, 2);   /* tiled, so several reports */
    ck_assert(log.monotone);
    ck_assert_double_eq(log.last, 1.0);
    /* Cancel at the second report: TN_E_CANCELLED and no kernel left behind. */
    progress_log stop = {0, 2, 0, 1};
    TN_CK(ctx, tn_ctx_set_progress(ctx, on_progress, &stop));
    ck_assert_int_eq(tn_ntk_compute(k, x, n, NULL, 0, K), TN_E_CANCELLED);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "cancelled"));
    for (size_t i = 0; i < n * n; i++) ck_assert(isnan(K[i]));
    TN_CK(ctx, tn_ctx_set_progress(ctx, NULL, NULL));
    TN_CK(ctx, tn_ntk_compute(k, x, n, NULL, 0, K));
    ck_assert(!isnan(K[0]));
    tn_ntk_free(k);
    tn_net_free(net);
    free(x), free(K);
}
END_TEST

START_TEST(bad_input)
{
    tn_net *net = make_net(TN_ACT_TANH, TN_PARAM_NTK, 1);
    double x[2 * 4] = {0}, K[4 * 9], v;
    tn_ntk *k = (tn_ntk *)0x1;
    ck_assert_int_eq(tn_ntk_create(NULL, &k), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_create(net, NULL), TN_E_INVALID_ARG);
    TN_CK(ctx, tn_ntk_create(net, &k));
    ck_assert_int_eq(tn_ntk_set(k, TN_NTK_METHOD, 4), TN_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_ntk_set"));
    ck_assert_int_eq(tn_ntk_set(k, TN_NTK_OUTPUTS, 2), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, 1000), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, NAN), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_set(k, (tn_ntk_param)7, 0), TN_E_INVALID_ARG);
    TN_CK(ctx, tn_ntk_get(k, TN_NTK_MEMORY_BUDGET, &v));
    ck_assert_double_eq(v, 256.0 * (1 << 20));
    ck_assert_int_eq(tn_ntk_compute(k, NULL, 2, NULL, 0, K), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_compute(k, x, 0, NULL, 0, K), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_compute(k, x, 2, x, 0, K), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_compute(k, x, 2, NULL, 0, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_compute(k, x, SIZE_MAX / 2, NULL, 0, K), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ntk_compute((tn_ntk *)net, x, 2, NULL, 0, K), TN_E_MISUSE);
    ck_assert_int_eq(tn_ntk_analytic(k, x, 2, NULL, 0, NULL, NULL), TN_E_INVALID_ARG);
    tn_ntk_free(k);
    tn_ntk_free(NULL);
    /* An uninitialized network has no kernel yet. */
    tn_net *raw;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &raw));
    TN_CK(ctx, tn_net_add_dense(raw, 2));
    ck_assert_int_eq(tn_ntk_create(raw, &k), TN_E_STATE);
    ck_assert_ptr_null(k);
    tn_net_free(raw);
    tn_net_free(net);
}
END_TEST

/* AUTO picks the structured method for MLPs of realistic width. */
START_TEST(auto_prefers_structured_for_mlps)
{
    const size_t d = 100, w[] = {256, 256, 10};
    tn_net *net = tu_mlp(ctx, d, w, 3, TN_ACT_RELU, TN_PARAM_NTK, 70);
    const size_t n = 64;
    double *x = tu_random(n * d, 7, 1.0);
    double *Ka = kernel(net, TN_NTK_AUTO, 0, x, n, NULL, 0, 0);
    double *Ks = kernel(net, TN_NTK_STRUCTURED, 0, x, n, NULL, 0, 0);
    ck_assert_mem_eq(Ka, Ks, n * n * sizeof(double));   /* the same code ran */
    free(Ka), free(Ks), free(x);
    tn_net_free(net);
}
END_TEST

/* The analytic kernels through the public handle: only MLPs under NTK
 * parameterization have them; x2 = NULL equals x2 = x1. */
START_TEST(analytic_through_the_handle)
{
    const size_t n = 5;
    double *x = tu_random(n * D, 8, 1.0), nngp[25], ntk[25], nngp2[25], ntk2[25];
    tn_net *net = make_net(TN_ACT_RELU, TN_PARAM_NTK, 2);
    tn_ntk *k;
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, nngp, ntk));
    TN_CK(ctx, tn_ntk_analytic(k, x, n, x, n, nngp2, ntk2));
    ck_assert_double_le(tu_rel_err(nngp2, nngp, 25, 1e-300), 1e-12);
    ck_assert_double_le(tu_rel_err(ntk2, ntk, 25, 1e-300), 1e-12);
    for (size_t i = 0; i < n; i++) ck_assert_double_gt(ntk[i * n + i], nngp[i * n + i]);
    TN_CK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, NULL, ntk2));
    ck_assert_mem_eq(ntk, ntk2, sizeof ntk);
    tn_ntk_free(k);
    tn_net_free(net);
    /* Standard parameterization, a doubled activation, a trailing activation. */
    net = make_net(TN_ACT_RELU, TN_PARAM_STANDARD, 2);
    TN_CK(ctx, tn_ntk_create(net, &k));
    ck_assert_int_eq(tn_ntk_analytic(k, x, n, NULL, 0, nngp, ntk), TN_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "NTK parameterization"));
    tn_ntk_free(k);
    tn_net_free(net);
    for (int variant = 0; variant < 2; variant++) {
        TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
        TN_CK(ctx, tn_net_add_dense(net, 4));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        if (variant == 0) TN_CK(ctx, tn_net_add_dense(net, 2));
        TN_CK(ctx, tn_net_init(net, 1));
        TN_CK(ctx, tn_ntk_create(net, &k));
        ck_assert_int_eq(tn_ntk_analytic(k, x, n, NULL, 0, nngp, ntk), TN_E_UNSUPPORTED);
        tn_ntk_free(k);
        tn_net_free(net);
    }
    free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ntk");
    TCase *tc = tcase_create("empirical");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, methods_agree, 0, 32);
    tcase_add_loop_test(tc, matches_finite_difference_jacobians, 0, 16);
    tcase_add_loop_test(tc, tiling_matches_untiled, 0, 12);
    tcase_add_test(tc, two_threads_give_one_threads_kernel);
    tcase_add_test(tc, one_handle_serves_calls_of_every_shape);
    tcase_add_test(tc, progress_and_cancellation);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, auto_prefers_structured_for_mlps);
    tcase_add_test(tc, analytic_through_the_handle);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
