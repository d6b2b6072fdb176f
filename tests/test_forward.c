/* test_forward.c -- forward passes of small networks against values
 * computed by hand, and every activation against its closed form. */
#include "testutil.h"

TU_CONTEXT_PER_TEST

/* 2 -> dense 2 -> ReLU -> dense 1, standard parameterization:
 *   x = (1, 2):    z1 = (1 - 4 + 0.1, 0.5 + 2 - 0.2) = (-2.9, 2.3), relu (0, 2.3),
 *                  z2 = 2*0 - 2.3 + 0.3 = -2.0
 *   x = (-1, 0.5): z1 = (-1 - 1 + 0.1, -0.5 + 0.5 - 0.2) = (-1.9, -0.2), relu 0,
 *                  z2 = 0.3 */
START_TEST(relu_net_by_hand)
{
    const size_t d = 2;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_init(net, 0));
    ck_assert_uint_eq(tn_net_num_params(net), 2 * 2 + 2 + 2 + 1);
    const double theta[] = {1, -2, 0.5, 1, 0.1, -0.2, /* layer 2 */ 2, -1, 0.3};
    TN_CK(ctx, tn_net_set_params(net, theta, 9));
    const double x[] = {1, 2, -1, 0.5};
    double y[2];
    TN_CK(ctx, tn_net_forward(net, x, 2, y));
    ck_assert_double_eq_tol(y[0], -2.0, 1e-15);
    ck_assert_double_eq_tol(y[1], 0.3, 1e-15);
    tn_net_free(net);
}
END_TEST

/* NTK parameterization scales by sigma_w / sqrt(n_in) and sigma_b:
 * d = 4, omega = (1, 2, 3, 4), beta = 2, sigma_w = 2, sigma_b = 0.5,
 * x = (1, 1, 1, 1):  z = (2 / 2) * 10 + 0.5 * 2 = 11;  x = (1, 0, 0, -1): z = -3 + 1 = -2. */
START_TEST(ntk_parameterization_by_hand)
{
    const size_t d = 4;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_W, 2.0));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.5));
    TN_CK(ctx, tn_net_init(net, 0));
    const double theta[] = {1, 2, 3, 4, 2};
    TN_CK(ctx, tn_net_set_params(net, theta, 5));
    const double x[] = {1, 1, 1, 1, 1, 0, 0, -1};
    double y[2];
    TN_CK(ctx, tn_net_forward(net, x, 2, y));
    ck_assert_double_eq_tol(y[0], 11.0, 1e-14);
    ck_assert_double_eq_tol(y[1], -2.0, 1e-14);
    tn_net_free(net);
}
END_TEST

/* Two outputs, three rows: checks row-major layout of x and y and the
 * weight layout out x in.  W = [[1, 0, -1], [2, 1, 0]], b = (0, 1). */
START_TEST(layout_rows_and_outputs)
{
    const size_t d = 3;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_init(net, 0));
    const double theta[] = {1, 0, -1, 2, 1, 0, 0, 1};
    TN_CK(ctx, tn_net_set_params(net, theta, 8));
    const double x[] = {1, 2, 3, 0, 0, 1, -1, 1, 0};
    const double want[] = {1 - 3, 2 + 2 + 1, -1, 1, -1, -2 + 1 + 1};
    double y[6];
    TN_CK(ctx, tn_net_forward(net, x, 3, y));
    for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(y[i], want[i], 1e-15);
    tn_net_free(net);
}
END_TEST

static double closed_form(tn_activation act, double x)
{
    switch (act) {
    case TN_ACT_IDENTITY: return x;
    case TN_ACT_RELU: return x > 0 ? x : 0;
    case TN_ACT_LEAKY_RELU: return x > 0 ? x : 0.1 * x;
    case TN_ACT_TANH: return tanh(x);
    case TN_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case TN_ACT_ERF: return erf(x);
    case TN_ACT_GELU: return x * 0.5 * erfc(-x / sqrt(2.0));
    case TN_ACT_SOFTPLUS: return log1p(exp(x));
    }
    return NAN;
}

/* 1 -> dense 1 (W = 1, b = 0) -> act -> dense 1 (W = 1, b = 0) computes
 * phi(x) itself. */
START_TEST(each_activation_matches_closed_form)
{
    const tn_activation act = (tn_activation)_i;
    const size_t d = 1;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_dense(net, 1));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_set(net, TN_NET_LEAKY_SLOPE, 0.1));
    TN_CK(ctx, tn_net_init(net, 0));
    const double theta[] = {1, 0, 1, 0};
    TN_CK(ctx, tn_net_set_params(net, theta, 4));
    const double x[] = {-30, -2, -0.3, 0, 0.7, 3, 30};
    double y[7];
    TN_CK(ctx, tn_net_forward(net, x, 7, y));
    for (int i = 0; i < 7; i++) {
        const double want = closed_form(act, x[i]);
        ck_assert_msg(fabs(y[i] - want) <= 4e-16 * fmax(1.0, fabs(want)), "%s(%g) = %.17g, want %.17g",
                      tu_act_names[act], x[i], y[i], want);
    }
    tn_net_free(net);
}
END_TEST

/* An activation may come first: it must not write into the caller's x. */
START_TEST(leading_activation_leaves_input_alone)
{
    const size_t d = 3;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_init(net, 3));
    const double x[] = {0.5, -1, 2};
    double xcopy[3], y[2], g[8];
    memcpy(xcopy, x, sizeof x);
    TN_CK(ctx, tn_net_forward(net, x, 1, y));
    const double u[] = {1, -1};
    TN_CK(ctx, tn_net_vjp(net, x, 1, u, g));
    ck_assert_mem_eq(x, xcopy, sizeof x);
    tn_net_free(net);
}
END_TEST

/* The input shape comes back as given, for vectors and NHWC images. */
START_TEST(input_shape_round_trip)
{
    const size_t img[3] = {4, 5, 3};
    size_t shape[3] = {0, 0, 0}, ndim = 0;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, img, 3, &net));
    TN_CK(ctx, tn_net_input_shape(net, shape, &ndim));
    ck_assert_uint_eq(ndim, 3);
    ck_assert_mem_eq(shape, img, sizeof img);
    ck_assert_uint_eq(tn_net_input_size(net), 60);
    ck_assert_uint_eq(tn_net_output_dim(net), 60);   /* no layers yet */
    ck_assert_int_eq(tn_net_input_shape(net, NULL, &ndim), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_net_input_shape(NULL, shape, &ndim), TN_E_INVALID_ARG);
    tn_net_free(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("by hand");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, relu_net_by_hand);
    tcase_add_test(tc, ntk_parameterization_by_hand);
    tcase_add_test(tc, layout_rows_and_outputs);
    tcase_add_loop_test(tc, each_activation_matches_closed_form, 0, 8);
    tcase_add_test(tc, leading_activation_leaves_input_alone);
    tcase_add_test(tc, input_shape_round_trip);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
