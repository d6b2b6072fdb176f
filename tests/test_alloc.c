/* test_alloc.c -- every allocation of every allocating call fails in turn.
 *
 * tni_ctx_fail_alloc_after(ctx, k) makes the k-th next allocation through
 * ctx fail.  For k = 1, 2, ... each call below is repeated on fresh objects
 * until it succeeds, so every allocation it makes is made to fail once.  A
 * failure must be TN_E_NOMEM with a new message, *out NULL, and leave what
 * the caller sees (parameters, settings, files, output buffers) as before;
 * after it the objects must still work and give bit-identical results to
 * objects that never saw a failure.  Leaks and invalid accesses on the
 * error paths are what valgrind and ASan runs of this program catch.
 *
 * The harness (INJECT, EXPECT_NOMEM, ...) is allocfail.h. */
#define _POSIX_C_SOURCE 200809L
#include "allocfail.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static const size_t D = 4, N = 3, N2 = 7;
static const size_t widths[] = {6, 5, 2};
#define MAX_K 10000L

static tn_net *make_net(uint64_t seed)
{
    return tu_mlp(ctx, D, widths, 3, TN_ACT_TANH, TN_PARAM_NTK, seed);
}

/* A residual CNN on D = 2 x 2 x 1 images (the same input size as the MLP):
 * a conv, a block whose input has two readers (a sum in place), pooling,
 * a flatten view, a dense readout -- every kind and both tape arenas. */
static tn_net *make_cnn(uint64_t seed)
{
    const size_t shape[3] = {2, 2, 1};
    size_t in;
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 2, 2, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_current(net, &in));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_sum(net, in));
    TN_CK(ctx, tn_net_add_avg_pool2d(net, 2, 2, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_flatten(net));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_init(net, seed));
    return net;
}

static tn_net *clone_of(const tn_net *net)
{
    tn_net *c = NULL;
    TN_CK(ctx, tn_net_clone(net, &c));
    return c;
}

static int same_params(const tn_net *net, const double *theta)
{
    double *t = tu_params(ctx, net);
    const int same = memcmp(t, theta, tn_net_num_params(net) * sizeof(double)) == 0;
    free(t);
    return same;
}

/*=====================================================================
 * Building
 *===================================================================*/

START_TEST(net_create)
{
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net = (tn_net *)&k;             /* must become NULL on failure */
        const tn_status st = INJECT(k, tn_net_create(ctx, &D, 1, &net));
        DISARM();
        if (st == TN_OK) {
            ck_assert_uint_eq(tn_net_input_size(net), D);
            tn_net_free(net);
            if (FINISHED(st)) break;
            continue;
        }
        EXPECT_NOMEM(st, "tn_net_create", k);
        ck_assert_ptr_null(net);
    }
    CHECK_LOOP(k, "tn_net_create");
}
END_TEST

/* Adding a layer to a net whose node array is full and grows: it holds 8
 * nodes when created (the input and room for 7 layers), then 16, 32...
 * With 7 and 15 layers already there the next layer needs the array to
 * grow.  _i picks dense or activation. */
START_TEST(net_add_layer)
{
    const int dense = _i == 0;
    const size_t pres[] = {7, 15};
    for (size_t pi = 0; pi < 2; pi++) {
        long k;
        for (k = 1; k < MAX_K; k++) {
            tn_net *net = NULL;
            TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
            for (size_t l = 0; l < pres[pi]; l++)
                TN_CK(ctx, l % 2 ? tn_net_add_activation(net, TN_ACT_TANH)
                                 : tn_net_add_dense(net, 3));
            const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
            const tn_status st =
                INJECT(k, dense ? tn_net_add_dense(net, 5) : tn_net_add_activation(net, TN_ACT_RELU));
            DISARM();
            if (st != TN_OK) {
                EXPECT_NOMEM(st, dense ? "tn_net_add_dense" : "tn_net_add_activation", k);
                /* Nothing was added: sizes as before, and the net is still
                 * usable -- the same call now succeeds. */
                ck_assert_uint_eq(tn_net_num_params(net), P);
                ck_assert_uint_eq(tn_net_output_dim(net), O);
                TN_CK(ctx, dense ? tn_net_add_dense(net, 5)
                                 : tn_net_add_activation(net, TN_ACT_RELU));
            }
            ck_assert_uint_eq(tn_net_num_params(net), dense ? P + O * 5 + 5 : P);
            /* The layer list is intact: the net builds on and evaluates. */
            TN_CK(ctx, tn_net_add_dense(net, 2));
            TN_CK(ctx, tn_net_init(net, 1));
            double *x = tu_random(N * D, 1, 1.0), y[3 * 2];
            TN_CK(ctx, tn_net_forward(net, x, N, y));
            for (size_t i = 0; i < N * 2; i++) ck_assert(isfinite(y[i]));
            free(x);
            tn_net_free(net);
            if (FINISHED(st)) break;
        }
        CHECK_LOOP(k, dense ? "tn_net_add_dense" : "tn_net_add_activation");
    }
}
END_TEST

START_TEST(net_init_first)
{
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net = NULL;
        TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
        TN_CK(ctx, tn_net_add_dense(net, 6));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_dense(net, 2));
        const tn_status st = INJECT(k, tn_net_init(net, 5));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_net_init", k);
            /* Still uninitialized. */
            double v;
            ck_assert_int_eq(tn_net_get_params(net, &v, 0), TN_E_STATE);
        }
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_net_init");
}
END_TEST

/* Re-drawing theta of an initialized net: a failure keeps the old theta. */
START_TEST(net_init_again)
{
    tn_net *ref = make_net(5);
    double *theta = tu_params(ctx, ref);
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net = clone_of(ref);
        const tn_status st = INJECT(k, tn_net_init(net, 6));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_net_init", k);
            ck_assert(same_params(net, theta));
        } else {
            ck_assert(!same_params(net, theta));
        }
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_net_init (again)");
    free(theta);
    tn_net_free(ref);
}
END_TEST

START_TEST(net_clone)
{
    tn_net *net = make_net(7);
    double *theta = tu_params(ctx, net);
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *c = (tn_net *)&k;
        const tn_status st = INJECT(k, tn_net_clone(net, &c));
        DISARM();
        if (st == TN_OK) {
            ck_assert(same_params(c, theta));
            tn_net_free(c);
            if (FINISHED(st)) break;
            continue;
        }
        EXPECT_NOMEM(st, "tn_net_clone", k);
        ck_assert_ptr_null(c);
        ck_assert(same_params(net, theta));
    }
    CHECK_LOOP(k, "tn_net_clone");
    free(theta);
    tn_net_free(net);
}
END_TEST

/*=====================================================================
 * Evaluation: forward, jvp, vjp (the net's own workspace is made on
 * first use; each attempt starts from a fresh clone so that every
 * allocation of that first use is hit)
 *===================================================================*/

static tn_status eval(int which, tn_net *net, const double *x, const double *t,
                      const double *u, double *out)
{
    switch (which) {
    case 0: return tn_net_forward(net, x, N, out);
    case 1: return tn_net_jvp(net, x, N, t, out);
    default: return tn_net_vjp(net, x, N, u, out);
    }
}

/* _i: forward, jvp, vjp of the MLP, then of the CNN. */
START_TEST(net_evaluate)
{
    static const char *const names[] = {"tn_net_forward", "tn_net_jvp", "tn_net_vjp"};
    const int which = _i % 3;
    tn_net *ref = _i < 3 ? make_net(9) : make_cnn(9);
    const size_t P = tn_net_num_params(ref), O = tn_net_output_dim(ref);
    const size_t len = which == 2 ? P : N * O;
    double *x = tu_random(N * D, 2, 1.0), *t = tu_random(P, 3, 1.0), *u = tu_random(N * O, 4, 1.0);
    double *want = malloc(len * sizeof(double)), *out = tu_poison(len);
    double *theta = tu_params(ctx, ref);
    TN_CK(ctx, eval(which, ref, x, t, u, want));
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net = clone_of(ref);
        memset(out, 0xa5, len * sizeof(double));
        const tn_status st = INJECT(k, eval(which, net, x, t, u, out));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, names[which], k);
            ck_assert_msg(tu_is_poison(out, len), "%s wrote its output on failure", names[which]);
            ck_assert(same_params(net, theta));
            /* A half-made workspace must not poison later calls. */
            TN_CK(ctx, eval(which, net, x, t, u, out));
        }
        ck_assert_msg(memcmp(out, want, len * sizeof(double)) == 0, "%s differs after k = %ld",
                      names[which], k);
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, names[which]);
    free(x), free(t), free(u), free(want), free(out), free(theta);
    tn_net_free(ref);
}
END_TEST

/* The empirical NTK, _i: method (AUTO, STRUCTURED, JACOBIAN, VECTOR_PRODUCTS)
 * x net (MLP, CNN), traced, x2 = x1: a failure leaves NaN (never a partial
 * kernel), and a later call gives the kernel. */
START_TEST(ntk_compute)
{
    tn_net *net = _i < 4 ? make_net(25) : make_cnn(25);
    const int method = _i % 4;
    double *x = tu_random(N2 * D, 5, 1.0), *want = malloc(N2 * N2 * sizeof(double)),
           *K = malloc(N2 * N2 * sizeof(double));
    tn_ntk *ref = NULL;
    TN_CK(ctx, tn_ntk_create(net, &ref));
    TN_CK(ctx, tn_ntk_set(ref, TN_NTK_METHOD, method));
    TN_CK(ctx, tn_ntk_compute(ref, x, N2, NULL, 0, want));
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_ntk *h = NULL;
        TN_CK(ctx, tn_ntk_create(net, &h));
        TN_CK(ctx, tn_ntk_set(h, TN_NTK_METHOD, method));
        const tn_status st = INJECT(k, tn_ntk_compute(h, x, N2, NULL, 0, K));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_ntk_compute", k);
            for (size_t i = 0; i < N2 * N2; i++) ck_assert(isnan(K[i]));
            TN_CK(ctx, tn_ntk_compute(h, x, N2, NULL, 0, K));
        }
        ck_assert_msg(memcmp(K, want, N2 * N2 * sizeof(double)) == 0, "kernel differs after k = %ld",
                      k);
        tn_ntk_free(h);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_ntk_compute");
    tn_ntk_free(ref);
    tn_net_free(net);
    free(x), free(want), free(K);
}
END_TEST

/*=====================================================================
 * Trainer
 *===================================================================*/

START_TEST(trainer_create)
{
    tn_net *net = make_net(11);
    double *theta = tu_params(ctx, net);
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_trainer *tr = (tn_trainer *)&k;
        const tn_status st = INJECT(k, tn_trainer_create(net, &tr));
        DISARM();
        if (st == TN_OK) {
            ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);
            tn_trainer_free(tr);
            if (FINISHED(st)) break;
            continue;
        }
        EXPECT_NOMEM(st, "tn_trainer_create", k);
        ck_assert_ptr_null(tr);
        ck_assert(same_params(net, theta));
    }
    CHECK_LOOP(k, "tn_trainer_create");
    free(theta);
    tn_net_free(net);
}
END_TEST

/* A trainer of net with Adam (two state vectors, so a state that a failed
 * step corrupted shows in the next update), in mode `mode`: 0 plain, 1
 * order-2 Taylor model, 2 centered (f(theta0) cached per batch). */
static tn_trainer *adam_trainer(tn_net *net, int mode)
{
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.05));
    if (mode == 1) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 2));
    if (mode == 2) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, 1));
    return tr;
}

/* _i = 0: the first step of a new trainer fails.  _i = 1: a step after a
 * successful one, with a larger batch (so it must grow its buffers), fails;
 * the optimizer state of the first step must survive.  _i = 2, 3: as 1 for
 * the Taylor and the centered model. */
START_TEST(trainer_step)
{
    const int after_one = _i >= 1, mode = _i >= 2 ? _i - 1 : 0;
    tn_net *base = make_net(13);
    const size_t O = tn_net_output_dim(base);
    double *x1 = tu_random(N * D, 5, 1.0), *y1 = tu_random(N * O, 6, 1.0);
    double *x2 = tu_random(N2 * D, 7, 1.0), *y2 = tu_random(N2 * O, 8, 1.0);

    /* Reference: the same steps with no failure, then one more. */
    tn_net *rnet = clone_of(base);
    tn_trainer *rtr = adam_trainer(rnet, mode);
    double rloss;
    if (after_one) TN_CK(ctx, tn_trainer_step(rtr, x1, y1, N, NULL));
    TN_CK(ctx, tn_trainer_step(rtr, x2, y2, N2, &rloss));
    TN_CK(ctx, tn_trainer_step(rtr, x1, y1, N, NULL));
    double *want = tu_params(ctx, rnet);

    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *net = clone_of(base);
        tn_trainer *tr = adam_trainer(net, mode);
        if (after_one) TN_CK(ctx, tn_trainer_step(tr, x1, y1, N, NULL));
        double *theta = tu_params(ctx, net), loss = 42.0;
        const tn_status st = INJECT(k, tn_trainer_step(tr, x2, y2, N2, &loss));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, "tn_trainer_step", k);
            ck_assert(same_params(net, theta));
            ck_assert(loss == 42.0);
            ck_assert_uint_eq(tn_trainer_num_steps(tr), (uint64_t)after_one);
            TN_CK(ctx, tn_trainer_step(tr, x2, y2, N2, &loss));
        }
        ck_assert(memcmp(&loss, &rloss, sizeof loss) == 0);
        TN_CK(ctx, tn_trainer_step(tr, x1, y1, N, NULL));
        /* As if the failure never happened: theta and optimizer state. */
        ck_assert_msg(same_params(net, want), "training diverged from the reference (k = %ld)", k);
        ck_assert_uint_eq(tn_trainer_num_steps(tr), (uint64_t)after_one + 2);
        free(theta);
        tn_trainer_free(tr);
        tn_net_free(net);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, "tn_trainer_step");
    free(x1), free(y1), free(x2), free(y2), free(want);
    tn_trainer_free(rtr);
    tn_net_free(rnet);
    tn_net_free(base);
}
END_TEST

/* tn_trainer_loss (_i = 0) and tn_trainer_predict (_i = 1) on a new trainer. */
START_TEST(trainer_evaluate)
{
    const int predict = _i == 1;
    const char *name = predict ? "tn_trainer_predict" : "tn_trainer_loss";
    tn_net *net = make_net(15);
    const size_t O = tn_net_output_dim(net), len = predict ? N * O : 1;
    double *x = tu_random(N * D, 5, 1.0), *y = tu_random(N * O, 6, 1.0);
    double *want = malloc(len * sizeof(double)), *out = tu_poison(len);
    tn_trainer *rtr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &rtr));
    TN_CK(ctx, predict ? tn_trainer_predict(rtr, x, N, want) : tn_trainer_loss(rtr, x, y, N, want));
    tn_trainer_free(rtr);
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_trainer *tr = NULL;
        TN_CK(ctx, tn_trainer_create(net, &tr));
        memset(out, 0xa5, len * sizeof(double));
        const tn_status st = INJECT(k, predict ? tn_trainer_predict(tr, x, N, out)
                                               : tn_trainer_loss(tr, x, y, N, out));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, name, k);
            ck_assert(tu_is_poison(out, len));
            TN_CK(ctx, predict ? tn_trainer_predict(tr, x, N, out)
                               : tn_trainer_loss(tr, x, y, N, out));
        }
        ck_assert(memcmp(out, want, len * sizeof(double)) == 0);
        tn_trainer_free(tr);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, name);
    free(x), free(y), free(want), free(out);
    tn_net_free(net);
}
END_TEST

/*=====================================================================
 * Taylor expansion handle
 *===================================================================*/

START_TEST(taylor_create)
{
    tn_net *net = make_net(21);
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_taylor *t = (tn_taylor *)&k;
        const tn_status st = INJECT(k, tn_taylor_create(net, 3, &t));
        DISARM();
        if (st == TN_OK) {
            ck_assert_int_eq(tn_taylor_order(t), 3);
            tn_taylor_free(t);
            if (FINISHED(st)) break;
            continue;
        }
        EXPECT_NOMEM(st, "tn_taylor_create", k);
        ck_assert_ptr_null(t);
    }
    CHECK_LOOP(k, "tn_taylor_create");
    tn_net_free(net);
}
END_TEST

/* Evaluating a new expansion (forward _i = 0, vjp _i = 1) at a point away
 * from its base; twice, so that the second call meets whatever the failed
 * first one left in the cache. */
START_TEST(taylor_evaluate)
{
    const int vjp = _i == 1;
    const char *name = vjp ? "tn_taylor_vjp" : "tn_taylor_forward";
    tn_net *net = make_net(23);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net), len = vjp ? P : N * O;
    double *x = tu_random(N * D, 5, 1.0), *u = tu_random(N * O, 6, 1.0);
    double *theta = tu_params(ctx, net), *want = malloc(len * sizeof(double)), *out = tu_poison(len);
    for (size_t i = 0; i < P; i++) theta[i] += 0.01 * (double)(i % 7) - 0.03;
    tn_taylor *rt = NULL;
    TN_CK(ctx, tn_taylor_create(net, 3, &rt));
    TN_CK(ctx, vjp ? tn_taylor_vjp(rt, theta, x, N, u, want) : tn_taylor_forward(rt, theta, x, N, want));
    tn_taylor_free(rt);
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_taylor *t = NULL;
        TN_CK(ctx, tn_taylor_create(net, 3, &t));
        memset(out, 0xa5, len * sizeof(double));
        const tn_status st = INJECT(k, vjp ? tn_taylor_vjp(t, theta, x, N, u, out)
                                           : tn_taylor_forward(t, theta, x, N, out));
        DISARM();
        if (st != TN_OK) {
            EXPECT_NOMEM(st, name, k);
            ck_assert(tu_is_poison(out, len));
        }
        for (int rep = 0; rep < 2; rep++) {
            if (st != TN_OK || rep == 1)
                TN_CK(ctx, vjp ? tn_taylor_vjp(t, theta, x, N, u, out)
                               : tn_taylor_forward(t, theta, x, N, out));
            ck_assert_msg(memcmp(out, want, len * sizeof(double)) == 0, "%s differs (k = %ld)",
                          name, k);
        }
        tn_taylor_free(t);
        if (FINISHED(st)) break;
    }
    CHECK_LOOP(k, name);
    free(x), free(u), free(theta), free(want), free(out);
    tn_net_free(net);
}
END_TEST

/*=====================================================================
 * Files
 *===================================================================*/


/* The number of entries of dir other than . and .., and whether the only
 * one is `only`. */
static size_t dir_entries(const char *dir, const char *only, int *only_ok)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    *only_ok = 1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        n++;
        if (only == NULL || strcmp(e->d_name, only) != 0) *only_ok = 0;
    }
    closedir(d);
    return n;
}

/* A save that fails leaves the previous file untouched and no temporary
 * file behind. */
START_TEST(net_save)
{
    char *dir = tu_make_dir("test_alloc"), *path = tu_join(dir, "net.tnn");
    tn_net *old = make_net(17), *net = make_net(18);
    TN_CK(ctx, tn_net_save(old, path));
    size_t old_len;
    unsigned char *old_bytes = tu_slurp(path, &old_len);
    long k;
    for (k = 1; k < MAX_K; k++) {
        const tn_status st = INJECT(k, tn_net_save(net, path));
        DISARM();
        int only_ok;
        ck_assert_uint_eq(dir_entries(dir, "net.tnn", &only_ok), 1);
        ck_assert_msg(only_ok, "a temporary file was left in %s", dir);
        if (FINISHED(st)) break;
        if (st == TN_OK) {                  /* absorbed failure: put the old file back */
            TN_CK(ctx, tn_net_save(old, path));
            continue;
        }
        EXPECT_NOMEM(st, "tn_net_save", k);
        size_t len;
        unsigned char *bytes = tu_slurp(path, &len);
        ck_assert(len == old_len && memcmp(bytes, old_bytes, len) == 0);
        free(bytes);
    }
    CHECK_LOOP(k, "tn_net_save");
    /* The successful save wrote net. */
    tn_net *back = NULL;
    TN_CK(ctx, tn_net_load(ctx, path, &back));
    double *theta = tu_params(ctx, net);
    ck_assert(same_params(back, theta));
    free(theta);
    tn_net_free(back);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    free(old_bytes), free(path), free(dir);
    tn_net_free(old);
    tn_net_free(net);
}
END_TEST

/* _i = 0: a small net; _i = 1: a net of 11 layers (the layer array grows
 * while loading). */
START_TEST(net_load)
{
    char *dir = tu_make_dir("test_alloc"), *path = tu_join(dir, "net.tnn");
    tn_net *net;
    if (_i == 0) {
        net = make_net(19);
    } else {
        const size_t w[] = {3, 4, 3, 4, 3, 2};
        net = tu_mlp(ctx, D, w, 6, TN_ACT_RELU, TN_PARAM_STANDARD, 19);
    }
    double *theta = tu_params(ctx, net);
    TN_CK(ctx, tn_net_save(net, path));
    long k;
    for (k = 1; k < MAX_K; k++) {
        tn_net *back = (tn_net *)&k;
        const tn_status st = INJECT(k, tn_net_load(ctx, path, &back));
        DISARM();
        if (st == TN_OK) {
            ck_assert(same_params(back, theta));
            tn_net_free(back);
            if (FINISHED(st)) break;
            continue;
        }
        EXPECT_NOMEM(st, "tn_net_load", k);
        ck_assert_ptr_null(back);
    }
    CHECK_LOOP(k, "tn_net_load");
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    free(theta), free(path), free(dir);
    tn_net_free(net);
}
END_TEST

/*=====================================================================
 * Large blocks
 *===================================================================*/

/* The VmFlags line of the mapping of /proc/self/smaps that holds address a
 * (into buf; "" when not found). */
static void vm_flags_of(const void *a, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (uintptr_t)a >= lo && (uintptr_t)a < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(buf, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* A block of 8 MiB or more is zeroed and counted like any other, and on a
 * Linux with transparent huge pages its whole 2 MiB spans are advised for
 * them (smaps shows "hg" among the mapping's flags: the advice itself,
 * whatever pages the kernel then finds). */
START_TEST(large_blocks_ask_for_huge_pages)
{
    const size_t bytes = (size_t)24 << 20;
    size_t before, after;
    TN_CK(ctx, tn_ctx_get_memory(ctx, &before, NULL));
    unsigned char *p = tni_alloc(ctx, bytes, 1);
    ck_assert_ptr_nonnull(p);
    TN_CK(ctx, tn_ctx_get_memory(ctx, &after, NULL));
    ck_assert_uint_eq(after - before, bytes);
    size_t nonzero = 0;
    for (size_t i = 0; i < bytes; i++) nonzero += p[i] != 0;
    ck_assert_uint_eq(nonzero, 0);
    memset(p, 0x5a, bytes);
#if defined(__linux__)
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) == 0) {
        const uintptr_t span = (uintptr_t)2 << 20;
        const void *inner = (const void *)(((uintptr_t)p + span - 1) & ~(span - 1));
        char flags[512];
        vm_flags_of(inner, flags, sizeof flags);
        ck_assert_msg(strstr(flags, " hg") != NULL, "the block's mapping has flags '%s'", flags);
    }
#endif
    tni_free(p);
    TN_CK(ctx, tn_ctx_get_memory(ctx, &after, NULL));
    ck_assert_uint_eq(after, before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("allocation failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, net_create);
    tcase_add_loop_test(tc, net_add_layer, 0, 2);
    tcase_add_test(tc, net_init_first);
    tcase_add_test(tc, net_init_again);
    tcase_add_test(tc, net_clone);
    tcase_add_loop_test(tc, net_evaluate, 0, 6);
    tcase_add_loop_test(tc, ntk_compute, 0, 8);
    tcase_add_test(tc, trainer_create);
    tcase_add_loop_test(tc, trainer_step, 0, 4);
    tcase_add_loop_test(tc, trainer_evaluate, 0, 2);
    tcase_add_test(tc, taylor_create);
    tcase_add_loop_test(tc, taylor_evaluate, 0, 2);
    tcase_add_test(tc, net_save);
    tcase_add_loop_test(tc, net_load, 0, 2);
    tcase_add_test(tc, large_blocks_ask_for_huge_pages);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
