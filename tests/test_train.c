/* test_train.c -- losses, optimizers and the trainer's all-or-nothing step.
 *
 * Updates are checked against a reference written here from torch.optim's
 * documented rules, with the gradient from tn_net_vjp (itself checked
 * against finite differences in test_grad).  The reference uses the
 * textbook forms (e.g. Adam's m = b1 m + (1 - b1) g where the library uses
 * torch's lerp), so the two differ by rounding only: updates agree to 1e-10
 * relative, while a wrong rule is off by O(1). */
#include "testutil.h"

TU_CONTEXT_PER_TEST
static const size_t D = 5, N = 8, O = 3;

static tn_net *make_net(uint64_t seed)
{
    const size_t w[] = {7, O};
    return tu_mlp(ctx, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, seed);
}

/* The mean-MSE gradient at the net's current theta. */
static void mse_grad(tn_net *net, const double *x, const double *y, double *g)
{
    double f[N * O], r[N * O];
    TN_CK(ctx, tn_net_forward(net, x, N, f));
    for (size_t i = 0; i < N * O; i++) r[i] = (f[i] - y[i]) / N;
    TN_CK(ctx, tn_net_vjp(net, x, N, r, g));
}

typedef struct ref_opt {
    int kind;
    double lr, mu, b1, b2, eps, wd, clip;
    double *s0, *s1;
    int t;
} ref_opt;

static void ref_step(ref_opt *o, size_t P, double *theta, const double *grad)
{
    o->t++;
    double nrm = 0;
    for (size_t i = 0; i < P; i++) nrm += grad[i] * grad[i];
    nrm = sqrt(nrm);
    const double c = o->clip > 0 && nrm > o->clip ? o->clip / nrm : 1.0;
    for (size_t i = 0; i < P; i++) {
        const double g = c * grad[i] + o->wd * theta[i];
        switch (o->kind) {
        case TN_OPT_SGD:
            theta[i] -= o->lr * g;
            break;
        case TN_OPT_MOMENTUM:
        case TN_OPT_NESTEROV:
            o->s0[i] = o->t == 1 ? g : o->mu * o->s0[i] + g;
            theta[i] -= o->lr * (o->kind == TN_OPT_NESTEROV ? g + o->mu * o->s0[i] : o->s0[i]);
            break;
        case TN_OPT_RMSPROP:
            o->s0[i] = o->b2 * o->s0[i] + (1 - o->b2) * g * g;
            if (o->mu > 0) {
                o->s1[i] = o->mu * o->s1[i] + g / (sqrt(o->s0[i]) + o->eps);
                theta[i] -= o->lr * o->s1[i];
            } else {
                theta[i] -= o->lr * g / (sqrt(o->s0[i]) + o->eps);
            }
            break;
        case TN_OPT_ADAM: {
            o->s0[i] = o->b1 * o->s0[i] + (1 - o->b1) * g;
            o->s1[i] = o->b2 * o->s1[i] + (1 - o->b2) * g * g;
            const double mhat = o->s0[i] / (1 - pow(o->b1, o->t));
            const double vhat = o->s1[i] / (1 - pow(o->b2, o->t));
            theta[i] -= o->lr * mhat / (sqrt(vhat) + o->eps);
            break;
        }
        }
    }
}

/* _i: optimizer (5) x weight decay on/off (2) x clipping on/off (2);
 * RMSProp runs with momentum 0.5 when clipping is on, to cover both paths. */
START_TEST(optimizer_matches_torch_rules)
{
    const int kind = _i / 4, wd_on = (_i / 2) % 2, clip_on = _i % 2;
    tn_net *net = make_net(3), *ref = make_net(3);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 1, 1.0), *y = tu_random(N * O, 2, 1.0);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, kind));
    double lr, mu, b1, b2, eps;
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_LEARNING_RATE, &lr));
    lr *= 10;   /* larger steps make the comparison sharper */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, lr));
    if (kind == TN_OPT_RMSPROP && clip_on) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_MOMENTUM, 0.5));
    if (wd_on) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_WEIGHT_DECAY, 0.05));
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_MOMENTUM, &mu));
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_BETA1, &b1));
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_BETA2, &b2));
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_EPSILON, &eps));

    double *theta = malloc(P * sizeof(double)), *g = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(ref, theta, P));
    /* Clip at a third of the first gradient's norm so clipping is active. */
    mse_grad(ref, x, y, g);
    const double clip = clip_on ? sqrt(tu_dot(g, g, P)) / 3 : 0;
    if (clip_on) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CLIP_NORM, clip));
    ref_opt o = {kind, lr, mu, b1, b2, eps, wd_on ? 0.05 : 0, clip,
                 calloc(P, sizeof(double)), calloc(P, sizeof(double)), 0};

    double *before = malloc(P * sizeof(double)), *got = malloc(P * sizeof(double)),
           *dref = malloc(P * sizeof(double)), *dgot = malloc(P * sizeof(double));
    for (int step = 0; step < 3; step++) {
        if (step == 2) {   /* a learning-rate change between steps */
            o.lr = lr / 2;
            TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, lr / 2));
        }
        memcpy(before, theta, P * sizeof(double));
        mse_grad(ref, x, y, g);
        ref_step(&o, P, theta, g);
        TN_CK(ctx, tn_net_set_params(ref, theta, P));
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        TN_CK(ctx, tn_net_get_params(net, got, P));
        for (size_t i = 0; i < P; i++) {
            dref[i] = theta[i] - before[i];
            dgot[i] = got[i] - before[i];
        }
        const double err = tu_rel_err(dgot, dref, P, 1e-300);
        ck_assert_msg(err < 1e-10, "optimizer %d wd %d clip %d step %d: update error %.3g", kind,
                      wd_on, clip_on, step, err);
        memcpy(theta, got, P * sizeof(double));   /* continue from the same point */
        TN_CK(ctx, tn_net_set_params(ref, theta, P));
    }
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 3);
    free(x), free(y), free(theta), free(g), free(o.s0), free(o.s1);
    free(before), free(got), free(dref), free(dgot);
    tn_trainer_free(tr);
    tn_net_free(net), tn_net_free(ref);
}
END_TEST

START_TEST(defaults_follow_the_optimizer)
{
    tn_net *net = make_net(1);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    double v;
    const struct { int opt; double lr, mu, b2; } want[] = {
        {TN_OPT_SGD, 1e-3, 0, 0.999},     {TN_OPT_MOMENTUM, 1e-3, 0.9, 0.999},
        {TN_OPT_NESTEROV, 1e-3, 0.9, 0.999}, {TN_OPT_RMSPROP, 1e-2, 0, 0.99},
        {TN_OPT_ADAM, 1e-3, 0, 0.999}};
    for (int i = 0; i < 5; i++) {
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, want[i].opt));
        TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_LEARNING_RATE, &v));
        ck_assert_double_eq(v, want[i].lr);
        TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_MOMENTUM, &v));
        ck_assert_double_eq(v, want[i].mu);
        TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_BETA2, &v));
        ck_assert_double_eq(v, want[i].b2);
    }
    /* A value the user set survives a change of optimizer. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.25));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_RMSPROP));
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_LEARNING_RATE, &v));
    ck_assert_double_eq(v, 0.25);
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_EPSILON, &v));
    ck_assert_double_eq(v, 1e-8);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* A learnable problem: targets from a teacher network of the same shape.
 * Adam drives the MSE far below where it started, and cross-entropy on the
 * teacher's argmax labels does the same. */
START_TEST(loss_decreases_on_a_learnable_problem)
{
    const int loss_kind = _i;
    const size_t n = 64, w[] = {32, O};
    tn_net *teacher = tu_mlp(ctx, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, 100);
    tn_net *net = tu_mlp(ctx, D, w, 2, TN_ACT_RELU, TN_PARAM_NTK, 7);
    double *x = tu_random(n * D, 5, 1.0), *y = malloc(n * O * sizeof(double));
    TN_CK(ctx, tn_net_forward(teacher, x, n, y));
    if (loss_kind == TN_LOSS_SOFTMAX_XENT)
        for (size_t i = 0; i < n; i++) {
            size_t best = 0;
            for (size_t c = 1; c < O; c++) best = y[i * O + c] > y[i * O + best] ? c : best;
            for (size_t c = 0; c < O; c++) y[i * O + c] = c == best;
        }
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, loss_kind));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-2));
    double first, last, check;
    TN_CK(ctx, tn_trainer_loss(tr, x, y, n, &first));
    for (int s = 0; s < 300; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, n, &last));
    TN_CK(ctx, tn_trainer_loss(tr, x, y, n, &check));
    ck_assert_msg(check < 0.05 * first, "loss %g -> %g", first, check);
    ck_assert_double_lt(check, last);   /* the step reports the loss before its update */
    tn_trainer_free(tr);
    tn_net_free(net), tn_net_free(teacher);
    free(x), free(y);
}
END_TEST

/* tn_trainer_loss and tn_trainer_predict of the full model agree with the
 * network and the loss formulas computed here. */
START_TEST(loss_and_predict_match_formulas)
{
    tn_net *net = make_net(9);
    double *x = tu_random(N * D, 6, 1.0), *y = tu_random(N * O, 7, 1.0);
    for (size_t i = 0; i < N * O; i++) y[i] = fabs(y[i]);   /* non-normalized rows: general xent */
    double f[N * O], p[N * O];
    TN_CK(ctx, tn_net_forward(net, x, N, f));
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_predict(tr, x, N, p));
    ck_assert_mem_eq(f, p, sizeof f);
    double mse = 0, xent = 0, got;
    for (size_t i = 0; i < N; i++) {
        double lse = 0;
        for (size_t c = 0; c < O; c++) lse += exp(f[i * O + c]);
        lse = log(lse);
        for (size_t c = 0; c < O; c++) {
            const double r = f[i * O + c] - y[i * O + c];
            mse += 0.5 * r * r / N;
            xent -= y[i * O + c] * (f[i * O + c] - lse) / N;
        }
    }
    TN_CK(ctx, tn_trainer_loss(tr, x, y, N, &got));
    ck_assert_double_eq_tol(got, mse, 1e-14 * mse);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    TN_CK(ctx, tn_trainer_loss(tr, x, y, N, &got));
    ck_assert_double_eq_tol(got, xent, 1e-14 * xent);
    tn_trainer_free(tr);
    tn_net_free(net);
    free(x), free(y);
}
END_TEST

/* Logits of +-1e4 overflow a naive softmax; the shifted one gives the exact
 * loss: for logits (a, -a) and label 0 the loss is log(1 + e^{-2a}) ~ 0, for
 * label 1 it is 2a (+ that). */
START_TEST(cross_entropy_survives_huge_logits)
{
    const size_t d = 1;
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_init(net, 0));
    const double theta[] = {1e4, -1e4, 0, 0};
    TN_CK(ctx, tn_net_set_params(net, theta, 4));
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    const double x[] = {1}, right[] = {1, 0}, wrong[] = {0, 1};
    double l;
    TN_CK(ctx, tn_trainer_loss(tr, x, right, 1, &l));
    ck_assert_double_eq(l, 0.0);
    TN_CK(ctx, tn_trainer_loss(tr, x, wrong, 1, &l));
    ck_assert_double_eq_tol(l, 2e4, 1e-10);
    TN_CK(ctx, tn_trainer_step(tr, x, wrong, 1, &l));   /* finite gradient, finite step */
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* A step that meets a non-finite loss, gradient or update returns
 * TN_E_NUMERIC and leaves everything as it was: the parameters are
 * bit-identical, and continuing gives bit-identically the run of a twin
 * trainer that never saw the failed step (so the optimizer state and step
 * count were untouched too). */
START_TEST(numeric_failure_rolls_back)
{
    tn_net *net = make_net(4), *twin = make_net(4);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 8, 1.0), *y = tu_random(N * O, 9, 1.0);
    tn_trainer *tr, *tw;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_create(twin, &tw));
    tn_trainer *both[] = {tr, tw};
    for (int k = 0; k < 2; k++) {
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
        TN_CK(ctx, tn_trainer_step(both[k], x, y, N, NULL));
    }
    double *before = malloc(P * sizeof(double)), *after = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, before, P));

    /* 1. a target that is NaN makes the loss NaN */
    double *ybad = malloc(N * O * sizeof(double));
    memcpy(ybad, y, N * O * sizeof(double));
    ybad[5] = NAN;
    ck_assert_int_eq(tn_trainer_step(tr, x, ybad, N, NULL), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not finite"));
    /* 2. an infinite input: tanh saturates, but inf * 0 in the gradient is NaN */
    double *xbad = malloc(N * D * sizeof(double));
    memcpy(xbad, x, N * D * sizeof(double));
    xbad[3] = INFINITY;
    ck_assert_int_eq(tn_trainer_step(tr, xbad, y, N, NULL), TN_E_NUMERIC);
    /* 2b. a finite target whose loss overflows: 0.5 (1e300)^2 */
    ybad[5] = 1e300;
    ck_assert_int_eq(tn_trainer_step(tr, x, ybad, N, NULL), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not finite"));
    /* 3. a finite gradient whose update overflows */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_SGD));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e308));
    double *ybig = malloc(N * O * sizeof(double));
    for (size_t i = 0; i < N * O; i++) ybig[i] = 1e6 * y[i];
    ck_assert_int_eq(tn_trainer_step(tr, x, ybig, N, NULL), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "overflow"));
    TN_CK(ctx, tn_net_get_params(net, after, P));
    ck_assert_mem_eq(before, after, P * sizeof(double));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 1);

    /* Back to Adam: changing the optimizer resets its state, so reset the
     * twin's the same way and compare the continued runs. */
    for (int k = 0; k < 2; k++) {
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_LEARNING_RATE, 1e-3));
        for (int s = 0; s < 3; s++) TN_CK(ctx, tn_trainer_step(both[k], x, y, N, NULL));
    }
    double *tw_theta = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, after, P));
    TN_CK(ctx, tn_net_get_params(twin, tw_theta, P));
    ck_assert_mem_eq(after, tw_theta, P * sizeof(double));
    free(x), free(y), free(ybad), free(xbad), free(ybig), free(before), free(after), free(tw_theta);
    tn_trainer_free(tr), tn_trainer_free(tw);
    tn_net_free(net), tn_net_free(twin);
}
END_TEST

/* Without changing optimizer: a failed step in the middle of Adam does not
 * disturb the moment estimates or the bias-correction step count. */
START_TEST(numeric_failure_keeps_adam_state)
{
    tn_net *net = make_net(5), *twin = make_net(5);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 10, 1.0), *y = tu_random(N * O, 11, 1.0);
    double *ybad = malloc(N * O * sizeof(double));
    memcpy(ybad, y, N * O * sizeof(double));
    ybad[0] = 1e300;        /* finite, but the loss overflows */
    tn_trainer *tr, *tw;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_create(twin, &tw));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(ctx, tn_trainer_set(tw, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    for (int s = 0; s < 4; s++) {
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        TN_CK(ctx, tn_trainer_step(tw, x, y, N, NULL));
        ck_assert_int_eq(tn_trainer_step(tr, x, ybad, N, NULL), TN_E_NUMERIC);
    }
    double *a = malloc(P * sizeof(double)), *b = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, a, P));
    TN_CK(ctx, tn_net_get_params(twin, b, P));
    ck_assert_mem_eq(a, b, P * sizeof(double));
    free(x), free(y), free(ybad), free(a), free(b);
    tn_trainer_free(tr), tn_trainer_free(tw);
    tn_net_free(net), tn_net_free(twin);
}
END_TEST

/* The loss gradient itself: one SGD step with learning rate 1 moves theta
 * by -grad L; compare with central differences of tn_trainer_loss in theta
 * (h = 1e-5: error ~1e-10, see test_grad.c), for both losses. */
START_TEST(sgd_step_is_minus_the_loss_gradient)
{
    tn_net *net = make_net(12);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 13, 1.0), *y = tu_random(N * O, 14, 1.0);
    for (size_t i = 0; i < N * O; i++) y[i] = fabs(y[i]);
    double *theta = malloc(P * sizeof(double)), *t = malloc(P * sizeof(double)),
           *fd = malloc(P * sizeof(double)), *step = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, theta, P));
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, _i));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1.0));
    const double h = 1e-5;
    for (size_t p = 0; p < P; p++) {
        double lp, lm;
        memcpy(t, theta, P * sizeof(double));
        t[p] += h;
        TN_CK(ctx, tn_net_set_params(net, t, P));
        TN_CK(ctx, tn_trainer_loss(tr, x, y, N, &lp));
        t[p] -= 2 * h;
        TN_CK(ctx, tn_net_set_params(net, t, P));
        TN_CK(ctx, tn_trainer_loss(tr, x, y, N, &lm));
        fd[p] = -(lp - lm) / (2 * h);
    }
    TN_CK(ctx, tn_net_set_params(net, theta, P));
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    TN_CK(ctx, tn_net_get_params(net, step, P));
    for (size_t p = 0; p < P; p++) step[p] -= theta[p];
    const double err = tu_rel_err(step, fd, P, 1e-3);
    ck_assert_msg(err < 1e-7, "loss %d: gradient error %.3g", _i, err);
    free(x), free(y), free(theta), free(t), free(fd), free(step);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("trainer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, optimizer_matches_torch_rules, 0, 20);
    tcase_add_test(tc, defaults_follow_the_optimizer);
    tcase_add_loop_test(tc, loss_decreases_on_a_learnable_problem, 0, 2);
    tcase_add_test(tc, loss_and_predict_match_formulas);
    tcase_add_test(tc, cross_entropy_survives_huge_logits);
    tcase_add_test(tc, numeric_failure_rolls_back);
    tcase_add_test(tc, numeric_failure_keeps_adam_state);
    tcase_add_loop_test(tc, sgd_step_is_minus_the_loss_gradient, 0, 2);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
