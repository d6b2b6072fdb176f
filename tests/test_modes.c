/* test_modes.c -- the trainer's modes (MATH.md §4): Taylorized training,
 * re-expansion, lazy scaling, and the base cache in full-batch training. */
#include "testutil.h"
#include "train/trainer.h"   /* internal: whether a step reused the cached base */

TU_CONTEXT_PER_TEST
static const size_t D = 5, n = 16;

static tn_net *make_net(tn_activation act, size_t width, uint64_t seed)
{
    const size_t w[] = {width, width, 3};
    return tu_mlp(ctx, D, w, 3, act, TN_PARAM_NTK, seed);
}

static double default_lr(int opt)
{
    return opt == TN_OPT_ADAM ? 1e-2 : opt == TN_OPT_RMSPROP ? 3e-3 : 0.5;
}

/* Targets from a teacher net: regression values, or their argmax as one-hot
 * labels. */
static double *targets(const double *x, int loss)
{
    tn_net *teacher = make_net(TN_ACT_TANH, 8, 999);
    double *y = malloc(n * 3 * sizeof(double));
    TN_CK(ctx, tn_net_forward(teacher, x, n, y));
    if (loss == TN_LOSS_SOFTMAX_XENT)
        for (size_t i = 0; i < n; i++) {
            size_t b = 0;
            for (size_t c = 1; c < 3; c++) b = y[i * 3 + c] > y[i * 3 + b] ? c : b;
            for (size_t c = 0; c < 3; c++) y[i * 3 + c] = c == b;
        }
    tn_net_free(teacher);
    return y;
}

static void configure(tn_trainer *tr, int opt, int loss)
{
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, loss));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, opt));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, default_lr(opt)));
}

/* ---- §8.3: re-expanding every step reproduces full training, because the
 * gradient of f_k at its base is the true gradient; only the grouping of
 * sums with exact zeros differs, so 20 steps agree to 1e-10 relative.
 * _i: optimizer (5) x order in {1, 3} (2). */
START_TEST(reexpand_every_step_is_full_training)
{
    const int opt = _i / 2, k = _i % 2 ? 3 : 1;
    tn_net *a = make_net(TN_ACT_TANH, 12, 5), *b = make_net(TN_ACT_TANH, 12, 5);
    const size_t P = tn_net_num_params(a);
    double *x = tu_random(n * D, 6, 1.0), *y = targets(x, TN_LOSS_MSE);
    tn_trainer *full, *re;
    TN_CK(ctx, tn_trainer_create(a, &full));
    TN_CK(ctx, tn_trainer_create(b, &re));
    configure(full, opt, TN_LOSS_MSE);
    configure(re, opt, TN_LOSS_MSE);
    TN_CK(ctx, tn_trainer_set(re, TN_TRAIN_ORDER, k));
    TN_CK(ctx, tn_trainer_set(re, TN_TRAIN_REEXPAND_EVERY, 1));
    for (int s = 0; s < 20; s++) {
        double la, lb;
        TN_CK(ctx, tn_trainer_step(full, x + (s % 2) * D, y + (s % 2) * 3, n - 1, &la));
        TN_CK(ctx, tn_trainer_step(re, x + (s % 2) * D, y + (s % 2) * 3, n - 1, &lb));
        ck_assert_double_eq_tol(lb, la, 1e-12 * la);
    }
    double *ta = malloc(P * sizeof(double)), *tb = malloc(P * sizeof(double)),
           *t0 = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(a, ta, P));
    TN_CK(ctx, tn_net_get_params(b, tb, P));
    const double err = tu_rel_err(tb, ta, P, 1e-12);
    ck_assert_msg(err < 1e-10, "optimizer %d order %d: %.3g", opt, k, err);
    free(x), free(y), free(ta), free(tb), free(t0);
    tn_trainer_free(full), tn_trainer_free(re);
    tn_net_free(a), tn_net_free(b);
}
END_TEST

/* ---- every optimizer and both losses train in every mode: the loss on
 * the batch falls by at least 20% within 100 steps (a broken mode or
 * optimizer leaves it flat or makes it grow).
 * _i: mode (6) x optimizer (5) x loss (2). */
START_TEST(every_mode_trains)
{
    const int mode = _i / 10, opt = (_i / 2) % 5, loss = _i % 2;
    tn_net *net = make_net(TN_ACT_GELU, 16, 40 + (uint64_t)mode);
    double *x = tu_random(n * D, 41, 1.0), *y = targets(x, loss);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    configure(tr, opt, loss);
    static const struct { int order, K; double alpha; int centered; } modes[] = {
        {0, 0, 1, 0}, {1, 0, 1, 0}, {2, 0, 1, 0}, {3, 5, 1, 0}, {1, 0, 5, 1}, {0, 0, 5, 1}};
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, modes[mode].order));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, modes[mode].K));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, modes[mode].alpha));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, modes[mode].centered));
    double first, last;
    TN_CK(ctx, tn_trainer_loss(tr, x, y, n, &first));
    for (int s = 0; s < 100; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    TN_CK(ctx, tn_trainer_loss(tr, x, y, n, &last));
    ck_assert_msg(last < 0.8 * first, "mode %d opt %d loss %d: %g -> %g", mode, opt, loss, first,
                  last);
    free(x), free(y);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* ---- tn_trainer_predict is alpha (f_k(theta) - [centered] f(theta0)),
 * computed independently with tn_taylor around the same theta0. */
START_TEST(predict_is_the_scaled_taylor_model)
{
    tn_net *net = make_net(TN_ACT_TANH, 10, 50);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(n * D, 51, 1.0), *y = targets(x, TN_LOSS_MSE);
    double *theta0 = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, theta0, P));
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    configure(tr, TN_OPT_MOMENTUM, TN_LOSS_MSE);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 2));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, 3));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, 1));
    for (int s = 0; s < 5; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    double p[16 * 3], fk[16 * 3], f0[16 * 3];
    TN_CK(ctx, tn_trainer_predict(tr, x, n, p));
    tn_taylor *t;
    TN_CK(ctx, tn_taylor_create(net, 2, &t));
    TN_CK(ctx, tn_taylor_rebase(t, theta0, P));
    TN_CK(ctx, tn_taylor_forward(t, NULL, x, n, fk));
    tn_net *base;
    TN_CK(ctx, tn_net_clone(net, &base));
    TN_CK(ctx, tn_net_set_params(base, theta0, P));
    TN_CK(ctx, tn_net_forward(base, x, n, f0));
    for (size_t i = 0; i < n * 3; i++) fk[i] = 3 * (fk[i] - f0[i]);
    ck_assert_double_le(tu_rel_err(p, fk, n * 3, 1e-6), 1e-13);
    /* The loss is L(prediction, y) / alpha^2. */
    double l, want = 0;
    for (size_t i = 0; i < n * 3; i++) want += 0.5 * (p[i] - y[i]) * (p[i] - y[i]) / n;
    TN_CK(ctx, tn_trainer_loss(tr, x, y, n, &l));
    ck_assert_double_eq_tol(l, want / 9, 1e-14 * want);
    tn_taylor_free(t);
    tn_trainer_free(tr);
    tn_net_free(net), tn_net_free(base);
    free(x), free(y), free(theta0);
}
END_TEST

/* ---- setting the order (mid-training too) fixes theta0 at the current
 * parameters: the model then equals the network there, and its gradient the
 * network's (documented in taylornet.h). */
START_TEST(order_change_rebases)
{
    tn_net *net = make_net(TN_ACT_SOFTPLUS, 10, 60);
    double *x = tu_random(n * D, 61, 1.0), *y = targets(x, TN_LOSS_MSE);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    configure(tr, TN_OPT_SGD, TN_LOSS_MSE);
    for (int s = 0; s < 5; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 2));
    double p[16 * 3], f[16 * 3];
    TN_CK(ctx, tn_trainer_predict(tr, x, n, p));
    TN_CK(ctx, tn_net_forward(net, x, n, f));
    ck_assert_mem_eq(p, f, sizeof f);
    double ord;
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_ORDER, &ord));
    ck_assert_double_eq(ord, 2);
    /* Back to full training continues from the current theta. */
    for (int s = 0; s < 3; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 0));
    TN_CK(ctx, tn_trainer_predict(tr, x, n, p));
    TN_CK(ctx, tn_net_forward(net, x, n, f));
    ck_assert_mem_eq(p, f, sizeof f);
    tn_trainer_free(tr);
    tn_net_free(net);
    free(x), free(y);
}
END_TEST

/* ---- full-batch Taylorized training reuses the order-0 blocks from the
 * second step on, and gets what recomputing them would (a trainer whose
 * cache is invalidated before every step by an evaluation on other data):
 * the two differ only in how BLIS blocks the GEMMs, so 1e-12. */
START_TEST(full_batch_training_uses_the_cache)
{
    const int k = 1 + _i;
    tn_net *a = make_net(TN_ACT_ERF, 12, 70), *b = make_net(TN_ACT_ERF, 12, 70);
    const size_t P = tn_net_num_params(a);
    double *x = tu_random(n * D, 71, 1.0), *y = targets(x, TN_LOSS_MSE);
    double *other = tu_random(n * D, 72, 1.0), junk[16 * 3];
    tn_trainer *ta, *tb;
    TN_CK(ctx, tn_trainer_create(a, &ta));
    TN_CK(ctx, tn_trainer_create(b, &tb));
    configure(ta, TN_OPT_ADAM, TN_LOSS_MSE);
    configure(tb, TN_OPT_ADAM, TN_LOSS_MSE);
    TN_CK(ctx, tn_trainer_set(ta, TN_TRAIN_ORDER, k));
    TN_CK(ctx, tn_trainer_set(tb, TN_TRAIN_ORDER, k));
    for (int s = 0; s < 10; s++) {
        TN_CK(ctx, tn_trainer_step(ta, x, y, n, NULL));
        ck_assert_int_eq(ta->ex.last_cached, s > 0);
        TN_CK(ctx, tn_trainer_predict(tb, other, n, junk));
        TN_CK(ctx, tn_trainer_step(tb, x, y, n, NULL));
        ck_assert_int_eq(tb->ex.last_cached, 0);
    }
    double *pa = malloc(P * sizeof(double)), *pb = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(a, pa, P));
    TN_CK(ctx, tn_net_get_params(b, pb, P));
    ck_assert_double_le(tu_rel_err(pa, pb, P, 1e-12), 1e-12);
    /* Changing the order or re-expanding drops the cache. */
    TN_CK(ctx, tn_trainer_set(ta, TN_TRAIN_ORDER, k + 1));
    TN_CK(ctx, tn_trainer_step(ta, x, y, n, NULL));
    ck_assert_int_eq(ta->ex.last_cached, 0);
    TN_CK(ctx, tn_trainer_set(ta, TN_TRAIN_REEXPAND_EVERY, 1));
    TN_CK(ctx, tn_trainer_step(ta, x, y, n, NULL));   /* re-expands after this step */
    TN_CK(ctx, tn_trainer_step(ta, x, y, n, NULL));
    ck_assert_int_eq(ta->ex.last_cached, 0);
    free(x), free(y), free(other), free(pa), free(pb);
    tn_trainer_free(ta), tn_trainer_free(tb);
    tn_net_free(a), tn_net_free(b);
}
END_TEST

/* ---- §8.6, lazy training (Chizat et al.): with the loss L(alpha g)/alpha^2
 * and a fixed learning rate, the linearized model's function-space
 * trajectory does not depend on alpha, and the full model departs from it
 * by O(1/alpha).  The log-log slope of the distance between the two trained
 * functions over alpha in {1, 10, 100} must be -1 within 0.3. */
static double lazy_distance(double alpha)
{
    tn_net *a = make_net(TN_ACT_TANH, 32, 80), *b = make_net(TN_ACT_TANH, 32, 80);
    double *x = tu_random(n * D, 81, 1.0), *y = targets(x, TN_LOSS_MSE);
    tn_trainer *full, *lin;
    TN_CK(ctx, tn_trainer_create(a, &full));
    TN_CK(ctx, tn_trainer_create(b, &lin));
    tn_trainer *both[] = {full, lin};
    for (int i = 0; i < 2; i++) {
        configure(both[i], TN_OPT_SGD, TN_LOSS_MSE);
        TN_CK(ctx, tn_trainer_set(both[i], TN_TRAIN_LEARNING_RATE, 0.5));
        TN_CK(ctx, tn_trainer_set(both[i], TN_TRAIN_OUTPUT_SCALE, alpha));
        TN_CK(ctx, tn_trainer_set(both[i], TN_TRAIN_CENTERED, 1));
    }
    TN_CK(ctx, tn_trainer_set(lin, TN_TRAIN_ORDER, 1));
    for (int s = 0; s < 100; s++) {
        TN_CK(ctx, tn_trainer_step(full, x, y, n, NULL));
        TN_CK(ctx, tn_trainer_step(lin, x, y, n, NULL));
    }
    double pf[16 * 3], pl[16 * 3], dist = 0;
    TN_CK(ctx, tn_trainer_predict(full, x, n, pf));
    TN_CK(ctx, tn_trainer_predict(lin, x, n, pl));
    for (size_t i = 0; i < n * 3; i++) dist += (pf[i] - pl[i]) * (pf[i] - pl[i]);
    tn_trainer_free(full), tn_trainer_free(lin);
    tn_net_free(a), tn_net_free(b);
    free(x), free(y);
    return sqrt(dist);
}

START_TEST(lazy_distance_falls_like_one_over_alpha)
{
    const double d1 = lazy_distance(1), d10 = lazy_distance(10), d100 = lazy_distance(100);
    const double s1 = log10(d10 / d1), s2 = log10(d100 / d10);
    printf("lazy: distance %.3g %.3g %.3g, slopes %.3f %.3f\n", d1, d10, d100, s1, s2);
    ck_assert_msg(fabs(s1 + 1) < 0.3 && fabs(s2 + 1) < 0.3, "slopes %.3f %.3f", s1, s2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("modes");
    TCase *tc = tcase_create("trainer modes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, reexpand_every_step_is_full_training, 0, 10);
    tcase_add_loop_test(tc, every_mode_trains, 0, 60);
    tcase_add_test(tc, predict_is_the_scaled_taylor_model);
    tcase_add_test(tc, order_change_rebases);
    tcase_add_loop_test(tc, full_batch_training_uses_the_cache, 0, 3);
    tcase_add_test(tc, lazy_distance_falls_like_one_over_alpha);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
