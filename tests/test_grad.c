/* test_grad.c -- JVP and VJP against central finite differences, for every
 * activation under both parameterizations (MATH.md §8.2).
 *
 * Tolerance: with step h the central difference has truncation error
 * h^2 |f'''| / 6 and rounding error ~ eps |f| / h.  h = 1e-5 gives about
 * 1e-10 + 1e-11 relative to the output scale, so 1e-7 leaves a factor 1000
 * for constants; a wrong derivative is off by O(1). */
#include "testutil.h"

#define H 1e-5
#define TOL 1e-7

static const size_t D = 4, N = 3, widths[] = {6, 5, 3}, L = 3;

/* (f(theta + h v) - f(theta - h v)) / 2h */
static void fd_directional(tn_ctx *ctx, tn_net *net, const double *x, const double *theta,
                           const double *v, double *out)
{
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *tp = malloc(P * sizeof(double)), *fp = malloc(N * O * sizeof(double)),
           *fm = malloc(N * O * sizeof(double));
    for (size_t i = 0; i < P; i++) tp[i] = theta[i] + H * v[i];
    TN_CK(ctx, tn_net_set_params(net, tp, P));
    TN_CK(ctx, tn_net_forward(net, x, N, fp));
    for (size_t i = 0; i < P; i++) tp[i] = theta[i] - H * v[i];
    TN_CK(ctx, tn_net_set_params(net, tp, P));
    TN_CK(ctx, tn_net_forward(net, x, N, fm));
    TN_CK(ctx, tn_net_set_params(net, theta, P));
    for (size_t i = 0; i < N * O; i++) out[i] = (fp[i] - fm[i]) / (2 * H);
    free(tp);
    free(fp);
    free(fm);
}

/* _i enumerates activation x parameterization. */
START_TEST(jvp_and_vjp_match_finite_differences)
{
    const tn_activation act = (tn_activation)(_i / 2);
    const int param = _i % 2;
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    tn_net *net = tu_mlp(ctx, D, widths, L, act, param, 1234 + (uint64_t)_i);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 7, 1.0), *theta = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, theta, P));

    /* JVP along a random direction. */
    double *v = tu_random(P, 11, 1.0), *jv = malloc(N * O * sizeof(double)),
           *fd = malloc(N * O * sizeof(double));
    TN_CK(ctx, tn_net_jvp(net, x, N, v, jv));
    fd_directional(ctx, net, x, theta, v, fd);
    double err = tu_rel_err(jv, fd, N * O, 1e-3);
    ck_assert_msg(err < TOL, "%s/%s: JVP relative error %.3g", tu_act_names[act],
                  param ? "standard" : "ntk", err);

    /* VJP: every gradient entry against the directional difference along e_p. */
    double *u = tu_random(N * O, 13, 1.0), *g = malloc(P * sizeof(double)),
           *gfd = malloc(P * sizeof(double)), *e = calloc(P, sizeof(double));
    TN_CK(ctx, tn_net_vjp(net, x, N, u, g));
    for (size_t p = 0; p < P; p++) {
        e[p] = 1.0;
        fd_directional(ctx, net, x, theta, e, fd);
        gfd[p] = tu_dot(u, fd, N * O);
        e[p] = 0.0;
    }
    err = tu_rel_err(g, gfd, P, 1e-3);
    ck_assert_msg(err < TOL, "%s/%s: VJP relative error %.3g", tu_act_names[act],
                  param ? "standard" : "ntk", err);

    /* Adjointness <u, J v> = <J^T u, v> holds to rounding, independent of h. */
    const double lhs = tu_dot(u, jv, N * O), rhs = tu_dot(g, v, P);
    ck_assert_msg(fabs(lhs - rhs) <= 1e-12 * (fabs(lhs) + 1.0), "adjointness %.17g vs %.17g",
                  lhs, rhs);

    free(x), free(theta), free(v), free(jv), free(fd), free(u), free(g), free(gfd), free(e);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* Chunked evaluation (more rows than one engine pass holds) equals row by row. */
START_TEST(vjp_over_many_rows_equals_sum_of_rows)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    const size_t w[] = {3, 2};
    tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, 5);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net), n = 5;
    double *x = tu_random(n * D, 3, 1.0), *u = tu_random(n * O, 4, 1.0);
    double *g = malloc(P * sizeof(double)), *gi = malloc(P * sizeof(double)),
           *sum = calloc(P, sizeof(double));
    TN_CK(ctx, tn_net_vjp(net, x, n, u, g));
    for (size_t i = 0; i < n; i++) {
        TN_CK(ctx, tn_net_vjp(net, x + i * D, 1, u + i * O, gi));
        for (size_t p = 0; p < P; p++) sum[p] += gi[p];
    }
    ck_assert_double_le(tu_rel_err(g, sum, P, 1e-12), 1e-13);
    free(x), free(u), free(g), free(gi), free(sum);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("finite differences");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, jvp_and_vjp_match_finite_differences, 0, 16);
    tcase_add_test(tc, vjp_over_many_rows_equals_sum_of_rows);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
