/* test_hook.c -- tn_trainer_set_gradient_hook: where in the step the hook
 * runs (after the gradient, before clipping, weight decay and the update),
 * what it may change (the gradient, the loss), that a failing hook changes
 * nothing, and the identity data-parallel training rests on: shards of a
 * batch whose gradients and losses are averaged with weights n_r / n step
 * exactly as the whole batch does, in every training mode.  The ranks of
 * that last test are threads meeting at a barrier, so it needs no MPI.
 *
 * Several checks are bitwise, and say why: scaling by a power of two is
 * exact in binary floating point, so a hook that doubles the gradient gives
 * the very bits of a step with twice the learning rate. */
#include "testutil.h"

#include <pthread.h>

TU_CONTEXT_PER_TEST
static const size_t D = 5, N = 8, O = 3;

static tn_net *make_net(tn_ctx *c, uint64_t seed)
{
    const size_t w[] = {7, O};
    return tu_mlp(c, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, seed);
}

/* What a hook saw and what it does: scale the gradient, set the loss,
 * return a status; counts its calls and keeps a copy of its arguments. */
typedef struct probe {
    int calls;
    size_t len;
    double *seen_grad;              /* a copy of the last grad it was given */
    double seen_loss;
    double grad_scale;              /* grad *= grad_scale */
    int set_loss;                   /* then *loss = new_loss */
    double new_loss;
    tn_status status;               /* returned */
} probe;

static tn_status probe_hook(void *user, double *grad, size_t len, double *loss)
{
    probe *p = user;
    p->calls++;
    p->len = len;
    p->seen_loss = *loss;
    free(p->seen_grad);
    p->seen_grad = malloc(len * sizeof(double));
    memcpy(p->seen_grad, grad, len * sizeof(double));
    for (size_t i = 0; i < len; i++) grad[i] *= p->grad_scale;
    if (p->set_loss) *loss = p->new_loss;
    return p->status;
}

/* The hook gets the gradient of the batch loss: len = P, the entries equal
 * the VJP of the loss's cotangent (f - y) / N computed here, and *loss
 * equals tn_trainer_loss before the step.  Doubling it gives the bits of a
 * twin trainer with twice the learning rate (SGD, with weight decay halved:
 * 2 lr (g + wd/2 theta) = lr (2 g + wd theta) exactly). */
START_TEST(hook_sees_the_gradient_and_scales_it)
{
    tn_net *net = make_net(ctx, 3), *twin = make_net(ctx, 3);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 1, 1.0), *y = tu_random(N * O, 2, 1.0);
    tn_trainer *tr, *tw;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_create(twin, &tw));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.05));
    TN_CK(ctx, tn_trainer_set(tw, TN_TRAIN_LEARNING_RATE, 0.1));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_WEIGHT_DECAY, 0.02));
    TN_CK(ctx, tn_trainer_set(tw, TN_TRAIN_WEIGHT_DECAY, 0.01));
    probe p = {.grad_scale = 2.0, .status = TN_OK};
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, probe_hook, &p));

    for (int s = 0; s < 3; s++) {
        double f[8 * 3], r[8 * 3], g[128], before, l_tr, l_tw, gn_tr, gn_tw;
        ck_assert_uint_le(P, 128);
        TN_CK(ctx, tn_net_forward(net, x, N, f));
        for (size_t i = 0; i < N * O; i++) r[i] = (f[i] - y[i]) / (double)N;
        TN_CK(ctx, tn_net_vjp(net, x, N, r, g));
        TN_CK(ctx, tn_trainer_loss(tr, x, y, N, &before));
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, &l_tr));
        TN_CK(ctx, tn_trainer_step(tw, x, y, N, &l_tw));
        ck_assert_int_eq(p.calls, s + 1);
        ck_assert_uint_eq(p.len, P);
        /* Engine order against hand-written loops: rounding only. */
        ck_assert_double_le(tu_rel_err(p.seen_grad, g, P, 1e-300), 1e-13);
        ck_assert_double_eq_tol(p.seen_loss, before, 1e-14 * before);
        ck_assert_double_eq(l_tr, p.seen_loss);   /* the loss was left alone */
        ck_assert_double_eq(l_tr, l_tw);
        /* The norm reported is the hook's gradient's: twice the twin's. */
        TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_GRAD_NORM, &gn_tr));
        TN_CK(ctx, tn_trainer_stat(tw, TN_STAT_GRAD_NORM, &gn_tw));
        ck_assert_double_eq(gn_tr, 2.0 * gn_tw);
        double *a = tu_params(ctx, net), *b = tu_params(ctx, twin);
        ck_assert_mem_eq(a, b, P * sizeof(double));
        free(a), free(b);
    }
    free(p.seen_grad), free(x), free(y);
    tn_trainer_free(tr), tn_trainer_free(tw);
    tn_net_free(net), tn_net_free(twin);
}
END_TEST

/* Clipping comes after the hook: with clipping on, a doubled gradient is
 * clipped to the same vector as the undoubled one (c / |2g| 2g = c / |g| g,
 * bit for bit), so hooked and plain trainers stay identical.  Weight decay
 * comes after it too: a hook that zeroes the gradient leaves the pure decay
 * step theta (1 - lr wd). */
START_TEST(hook_runs_before_clipping_and_weight_decay)
{
    tn_net *net = make_net(ctx, 4), *twin = make_net(ctx, 4);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0);
    tn_trainer *tr, *tw;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_create(twin, &tw));
    tn_trainer *both[] = {tr, tw};
    for (int k = 0; k < 2; k++) {
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_LEARNING_RATE, 0.1));
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_CLIP_NORM, 1e-3));   /* always active */
    }
    probe p = {.grad_scale = 2.0, .status = TN_OK};
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, probe_hook, &p));
    for (int s = 0; s < 3; s++) {
        TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
        TN_CK(ctx, tn_trainer_step(tw, x, y, N, NULL));
    }
    double *a = tu_params(ctx, net), *b = tu_params(ctx, twin);
    ck_assert_mem_eq(a, b, P * sizeof(double));

    const double lr = 0.1, wd = 0.25;
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CLIP_NORM, 0));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_WEIGHT_DECAY, wd));
    p.grad_scale = 0.0;
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    double *c = tu_params(ctx, net);
    for (size_t i = 0; i < P; i++) a[i] -= lr * (wd * a[i]);   /* SGD's rule, g = 0 */
    ck_assert_mem_eq(a, c, P * sizeof(double));
    free(a), free(b), free(c), free(p.seen_grad), free(x), free(y);
    tn_trainer_free(tr), tn_trainer_free(tw);
    tn_net_free(net), tn_net_free(twin);
}
END_TEST

/* A hook that changes the loss: the step returns it and reports it as
 * TN_STAT_LOSS; the gradient, untouched, gives the twin's parameters.  A
 * loss the hook makes non-finite fails the step, as a non-finite gradient
 * does. */
START_TEST(hook_changes_the_loss)
{
    tn_net *net = make_net(ctx, 5), *twin = make_net(ctx, 5);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 5, 1.0), *y = tu_random(N * O, 6, 1.0);
    tn_trainer *tr, *tw;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_create(twin, &tw));
    probe p = {.grad_scale = 1.0, .set_loss = 1, .new_loss = 42.5, .status = TN_OK};
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, probe_hook, &p));
    double l, stat;
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, &l));
    TN_CK(ctx, tn_trainer_step(tw, x, y, N, NULL));
    ck_assert_double_eq(l, 42.5);
    TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS, &stat));
    ck_assert_double_eq(stat, 42.5);
    double *a = tu_params(ctx, net), *b = tu_params(ctx, twin);
    ck_assert_mem_eq(a, b, P * sizeof(double));

    p.new_loss = NAN;
    l = -1.0;
    ck_assert_int_eq(tn_trainer_step(tr, x, y, N, &l), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "loss is not finite"));
    p.set_loss = 0;
    p.grad_scale = INFINITY;   /* 0 * inf is NaN, others inf: not finite either way */
    ck_assert_int_eq(tn_trainer_step(tr, x, y, N, &l), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "gradient is not finite"));
    ck_assert_double_eq(l, -1.0);
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 1);
    double *c = tu_params(ctx, net);
    ck_assert_mem_eq(a, c, P * sizeof(double));
    free(a), free(b), free(c), free(p.seen_grad), free(x), free(y);
    tn_trainer_free(tr), tn_trainer_free(tw);
    tn_net_free(net), tn_net_free(twin);
}
END_TEST

/* A hook that fails (after scribbling over grad and loss) ends the step
 * with its status and a message naming it; nothing changed: parameters
 * bit-identical, step count, every statistic of the last good step, the
 * caller's loss variable; and continuing without the hook gives the bits of
 * a twin that never saw the failed steps (so Adam's moments and step count
 * were untouched too). */
START_TEST(failing_hook_changes_nothing)
{
    tn_net *net = make_net(ctx, 6), *twin = make_net(ctx, 6);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 7, 1.0), *y = tu_random(N * O, 8, 1.0);
    tn_trainer *tr, *tw;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_create(twin, &tw));
    tn_trainer *both[] = {tr, tw};
    for (int k = 0; k < 2; k++) {
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
        TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_DIAGNOSTICS, 1));
        TN_CK(ctx, tn_trainer_set_probe(both[k], x, 4));
        for (int s = 0; s < 2; s++) TN_CK(ctx, tn_trainer_step(both[k], x, y, N, NULL));
    }
    double stats[6], after[6];
    for (int s = 0; s < 6; s++) TN_CK(ctx, tn_trainer_stat(tr, (tn_train_stat)s, &stats[s]));
    double *before = tu_params(ctx, net);

    probe p = {.grad_scale = -3.0, .set_loss = 1, .new_loss = 7.0, .status = TN_E_IO};
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, probe_hook, &p));
    const tn_status fails[] = {TN_E_IO, TN_E_CANCELLED, TN_E_NUMERIC};
    for (int k = 0; k < 3; k++) {
        p.status = fails[k];
        double l = -1.0;
        ck_assert_int_eq(tn_trainer_step(tr, x, y, N, &l), fails[k]);
        ck_assert_double_eq(l, -1.0);
        const char *m = tn_ctx_errmsg(ctx);
        ck_assert_msg(strstr(m, "tn_trainer_step") && strstr(m, "gradient hook") &&
                          strstr(m, tn_status_string(fails[k])),
                      "message: %s", m);
    }
    ck_assert_int_eq(p.calls, 3);
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 2);
    double *now = tu_params(ctx, net);
    ck_assert_mem_eq(before, now, P * sizeof(double));
    for (int s = 0; s < 6; s++) TN_CK(ctx, tn_trainer_stat(tr, (tn_train_stat)s, &after[s]));
    ck_assert_mem_eq(stats, after, sizeof stats);

    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, NULL, &p));
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 3; s++) TN_CK(ctx, tn_trainer_step(both[k], x, y, N, NULL));
    ck_assert_int_eq(p.calls, 3);
    double *a = tu_params(ctx, net), *b = tu_params(ctx, twin);
    ck_assert_mem_eq(a, b, P * sizeof(double));
    for (int s = 0; s < 6; s++) {
        TN_CK(ctx, tn_trainer_stat(tr, (tn_train_stat)s, &stats[s]));
        TN_CK(ctx, tn_trainer_stat(tw, (tn_train_stat)s, &after[s]));
    }
    ck_assert_mem_eq(stats, after, sizeof stats);
    free(before), free(now), free(a), free(b), free(p.seen_grad), free(x), free(y);
    tn_trainer_free(tr), tn_trainer_free(tw);
    tn_net_free(net), tn_net_free(twin);
}
END_TEST

/* A batch whose loss is NaN still reaches the hook (a collective in it must
 * run on every rank), with that NaN; the step then fails as without a hook,
 * changing nothing. */
START_TEST(non_finite_loss_still_reaches_the_hook)
{
    tn_net *net = make_net(ctx, 7);
    const size_t P = tn_net_num_params(net);
    double *x = tu_random(N * D, 9, 1.0), *y = tu_random(N * O, 10, 1.0);
    y[4] = NAN;
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    probe p = {.grad_scale = 1.0, .status = TN_OK};
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, probe_hook, &p));
    double *before = tu_params(ctx, net);
    ck_assert_int_eq(tn_trainer_step(tr, x, y, N, NULL), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not finite"));
    ck_assert_int_eq(p.calls, 1);
    ck_assert(isnan(p.seen_loss));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);
    double *now = tu_params(ctx, net);
    ck_assert_mem_eq(before, now, P * sizeof(double));
    free(before), free(now), free(p.seen_grad), free(x), free(y);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

static tn_status other_hook(void *user, double *grad, size_t len, double *loss)
{
    (void)grad, (void)len, (void)loss;
    ++*(int *)user;
    return TN_OK;
}

/* Bad arguments, removal and replacement. */
START_TEST(set_gradient_hook_arguments)
{
    tn_net *net = make_net(ctx, 8);
    double *x = tu_random(N * D, 11, 1.0), *y = tu_random(N * O, 12, 1.0);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    probe p = {.grad_scale = 1.0, .status = TN_OK};
    int other = 0;
    /* No trainer, hence no context to write a message to. */
    ck_assert_int_eq(tn_trainer_set_gradient_hook(NULL, probe_hook, &p), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_set_gradient_hook(NULL, NULL, NULL), TN_E_INVALID_ARG);
    /* A network passed as a trainer: the type tag catches it. */
    ck_assert_int_eq(tn_trainer_set_gradient_hook((tn_trainer *)net, probe_hook, &p),
                     TN_E_MISUSE);
    ck_assert_int_eq(tn_trainer_set_gradient_hook((tn_trainer *)ctx, probe_hook, &p),
                     TN_E_MISUSE);
    /* Removing a hook that was never set is fine. */
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, NULL, NULL));
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, probe_hook, &p));
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    ck_assert_int_eq(p.calls, 1);
    /* A second hook replaces the first. */
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, other_hook, &other));
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    ck_assert_int_eq(p.calls, 1);
    ck_assert_int_eq(other, 1);
    /* NULL removes it, whatever user says. */
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, NULL, &other));
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    ck_assert_int_eq(other, 1);
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 4);
    /* Neither loss, predict nor the NTK go through the hook. */
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, other_hook, &other));
    double l, out[8 * 3];
    TN_CK(ctx, tn_trainer_loss(tr, x, y, N, &l));
    TN_CK(ctx, tn_trainer_predict(tr, x, N, out));
    ck_assert_int_eq(other, 1);
    free(p.seen_grad), free(x), free(y);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* ---- data parallelism without MPI ---------------------------------------
 * R threads ("ranks"), each with its own context, network (same seed) and
 * trainer, step on their shards of every batch; the hook is an all-reduce
 * built from a barrier: each rank posts its gradient and loss, then every
 * rank sums w_r times them in rank order, w_r = n_r / n.  The MSE and
 * cross-entropy losses are means over examples, so sum_r (n_r / n) mean_r =
 * mean over the batch, and likewise the gradient: shards, even unequal
 * ones, step exactly as the whole batch does, up to the rounding of a sum
 * taken in another order. */

enum { RANKS = 3 };

typedef struct allreduce {
    pthread_barrier_t barrier;
    size_t P;
    double *grad[RANKS];
    double loss[RANKS];
    double weight[RANKS];
} allreduce;

typedef struct rank_hook {
    allreduce *ar;
    int rank;
} rank_hook;

static tn_status allreduce_hook(void *user, double *grad, size_t len, double *loss)
{
    rank_hook *h = user;
    allreduce *ar = h->ar;
    memcpy(ar->grad[h->rank], grad, len * sizeof(double));
    ar->loss[h->rank] = *loss;
    pthread_barrier_wait(&ar->barrier);
    for (size_t i = 0; i < len; i++) {
        double s = 0.0;
        for (int r = 0; r < RANKS; r++) s += ar->weight[r] * ar->grad[r][i];
        grad[i] = s;
    }
    double l = 0.0;
    for (int r = 0; r < RANKS; r++) l += ar->weight[r] * ar->loss[r];
    *loss = l;
    pthread_barrier_wait(&ar->barrier);   /* nobody posts again before all have read */
    return TN_OK;
}

/* A training mode as settings: order, re-expansion period, alpha, centered. */
typedef struct mode {
    const char *name;
    int order;
    int reexpand;
    double alpha;
    int centered;
} mode;

static const mode modes[] = {
    {"full", 0, 0, 1.0, 0},        {"linearized", 1, 0, 1.0, 0},
    {"order 3", 3, 0, 1.0, 0},     {"re-expanded K=2", 1, 2, 1.0, 0},
    {"lazy alpha=10", 0, 0, 10.0, 1},
};

enum { BATCHES = 3, BATCH = 13, STEPS = 6 };
static const size_t shard_rows[RANKS] = {6, 4, 3};   /* unequal on purpose */

static void configure(tn_ctx *c, tn_trainer *tr, const mode *m, int loss)
{
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_LOSS, loss));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-2));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_CLIP_NORM, 5.0));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_WEIGHT_DECAY, 1e-3));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_ORDER, m->order));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, m->reexpand));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, m->alpha));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_CENTERED, m->centered));
}

typedef struct rank_job {
    rank_hook hook;
    const mode *m;
    int loss;
    const double *x, *y;   /* BATCHES batches of BATCH rows */
    double *theta;         /* out: the trained parameters */
    double losses[STEPS];
    int ok;
} rank_job;

static void *rank_main(void *arg)
{
    rank_job *j = arg;
    tn_ctx *c;
    if (tn_ctx_create(&c) != TN_OK) return NULL;
    tn_net *net = make_net(c, 21);
    tn_trainer *tr;
    TN_CK(c, tn_trainer_create(net, &tr));
    configure(c, tr, j->m, j->loss);
    TN_CK(c, tn_trainer_set_gradient_hook(tr, allreduce_hook, &j->hook));
    size_t first = 0;
    for (int r = 0; r < j->hook.rank; r++) first += shard_rows[r];
    const size_t rows = shard_rows[j->hook.rank];
    int ok = 1;
    for (int s = 0; s < STEPS && ok; s++) {
        const size_t b = (size_t)(s % BATCHES) * BATCH + first;
        ok = tn_trainer_step(tr, j->x + b * D, j->y + b * O, rows, &j->losses[s]) == TN_OK;
    }
    j->ok = ok && tn_net_get_params(net, j->theta, tn_net_num_params(net)) == TN_OK;
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(c);
    return NULL;
}

/* _i: mode (5) x loss (2). */
START_TEST(sharded_steps_equal_whole_batch)
{
    const mode *m = &modes[_i / 2];
    const int loss = _i % 2;
    double *x = tu_random(BATCHES * BATCH * D, 30, 1.0), *y = tu_random(BATCHES * BATCH * O, 31, 1.0);
    if (loss == TN_LOSS_SOFTMAX_XENT)
        for (size_t i = 0; i < BATCHES * BATCH * O; i++) y[i] = 0.5 * (y[i] + 1.0);   /* >= 0 */

    /* One process on whole batches. */
    tn_net *net = make_net(ctx, 21);
    const size_t P = tn_net_num_params(net);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    configure(ctx, tr, m, loss);
    double whole_loss[STEPS];
    for (int s = 0; s < STEPS; s++) {
        const size_t b = (size_t)(s % BATCHES) * BATCH;
        TN_CK(ctx, tn_trainer_step(tr, x + b * D, y + b * O, BATCH, &whole_loss[s]));
    }
    double *whole = tu_params(ctx, net);

    /* RANKS threads on the shards. */
    allreduce ar = {.P = P};
    ck_assert_int_eq(pthread_barrier_init(&ar.barrier, NULL, RANKS), 0);
    rank_job jobs[RANKS];
    pthread_t th[RANKS];
    for (int r = 0; r < RANKS; r++) {
        ar.grad[r] = malloc(P * sizeof(double));
        ar.weight[r] = (double)shard_rows[r] / BATCH;
        jobs[r] = (rank_job){{&ar, r}, m, loss, x, y, malloc(P * sizeof(double)), {0}, 0};
        ck_assert_int_eq(pthread_create(&th[r], NULL, rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < RANKS; r++) ck_assert_int_eq(pthread_join(th[r], NULL), 0);
    /* Each step's gradient agrees with the whole batch's to a few ulps (the
     * same sums in another order); STEPS Adam steps of a smooth map keep the
     * parameters within 1e-12 relative of each other (measured: 1e-16). */
    for (int r = 0; r < RANKS; r++) {
        ck_assert_msg(jobs[r].ok, "%s: rank %d failed", m->name, r);
        const double err = tu_rel_err(jobs[r].theta, whole, P, 1e-300);
        ck_assert_msg(err < 1e-12, "%s, loss %d: rank %d parameters differ by %.3g relative",
                      m->name, loss, r, err);
        const double lerr = tu_rel_err(jobs[r].losses, whole_loss, STEPS, 1e-300);
        ck_assert_msg(lerr < 1e-12, "%s, loss %d: rank %d losses differ by %.3g relative",
                      m->name, loss, r, lerr);
        /* The ranks summed in the same order: identical replicas. */
        ck_assert_mem_eq(jobs[r].theta, jobs[0].theta, P * sizeof(double));
    }
    for (int r = 0; r < RANKS; r++) free(jobs[r].theta), free(ar.grad[r]);
    pthread_barrier_destroy(&ar.barrier);
    free(whole), free(x), free(y);
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* Without a hook the trainer writes the new parameters over the gradient
 * (optim.h; one array less for the memory to move); with one it writes
 * them apart, since the gradient came through the hook once.  A hook that
 * changes nothing thus shows that the two paths give the same bits, for
 * every optimizer, with and without clipping, and for gradients whose sum
 * of squares leaves double's range, where the update over the gradient
 * cannot take the norm and the trainer forms the gradient again: the norm
 * reported must be the scaled loop's on both paths (reverse mode runs
 * twice then, at every order).  The net is ReLU
 * without biases (sigma_b = 0), so f(c x) = c f(x): inputs and residuals of
 * size c = 1e100 give a gradient of size 1e200 (squares overflow) and a
 * finite loss; c = 1e-130 gives 1e-260 (squares underflow). */
static tn_status identity_hook(void *user, double *grad, size_t len, double *loss)
{
    (void)user, (void)grad, (void)len, (void)loss;
    return TN_OK;
}

static tn_net *homogeneous_net(tn_ctx *c)
{
    tn_net *net = NULL;
    TN_CK(c, tn_net_create(c, &D, 1, &net));
    TN_CK(c, tn_net_add_dense(net, 7));
    TN_CK(c, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(c, tn_net_add_dense(net, O));
    TN_CK(c, tn_net_set(net, TN_NET_SIGMA_B, 0.0));
    TN_CK(c, tn_net_init(net, 5));
    return net;
}

START_TEST(update_over_the_gradient_equals_the_update_apart)
{
    const double scales[] = {1.0, 1e100, 1e-130};
    for (int order = 0; order <= 2; order++)   /* the full model, order 1 and 2 */
    for (int kind = TN_OPT_SGD; kind <= TN_OPT_ADAM; kind++)
        for (int clip = 0; clip < 2; clip++)
            for (int sc = 0; sc < 3; sc++) {
                const double c = scales[sc];
                tn_net *net = homogeneous_net(ctx), *twin = homogeneous_net(ctx);
                const size_t P = tn_net_num_params(net);
                double *x = tu_random(N * D, 5, c), *y = tu_random(N * O, 6, c), f[8 * 3];
                TN_CK(ctx, tn_net_forward(net, x, N, f));
                for (size_t i = 0; i < N * O; i++) y[i] += f[i];    /* residuals of size c */
                tn_trainer *tr, *tw;
                TN_CK(ctx, tn_trainer_create(net, &tr));
                TN_CK(ctx, tn_trainer_create(twin, &tw));
                tn_trainer *both[] = {tr, tw};
                /* SGD and momentum step by lr g, g of size c^2: lr 1e-2 / c^2 */
                const double lr = kind <= TN_OPT_NESTEROV ? 1e-2 / c / c : 1e-2;
                for (int k = 0; k < 2; k++) {
                    TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_OPTIMIZER, kind));
                    TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_LEARNING_RATE, lr));
                    /* weight decay at unit scale only: lr wd theta would not fit
                     * the others' learning rates */
                    TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_WEIGHT_DECAY,
                                              c == 1.0 ? 1e-3 : 0.0));
                    if (clip) TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_CLIP_NORM, 1e-3));
                    TN_CK(ctx, tn_trainer_set(both[k], TN_TRAIN_ORDER, order));
                }
                TN_CK(ctx, tn_trainer_set_gradient_hook(tw, identity_hook, NULL));
                for (int s = 0; s < 3; s++) {
                    double l_tr, l_tw, gn_tr, gn_tw;
                    /* RMSProp and Adam square a gradient of 1e200: both paths
                     * must refuse that step alike */
                    const tn_status st = tn_trainer_step(tr, x, y, N, &l_tr);
                    ck_assert_int_eq(tn_trainer_step(tw, x, y, N, &l_tw), st);
                    double *a = tu_params(ctx, net), *b = tu_params(ctx, twin);
                    ck_assert_msg(memcmp(a, b, P * sizeof(double)) == 0,
                                  "order %d optimizer %d clip %d scale %g step %d: parameters "
                                  "differ", order, kind, clip, c, s);
                    free(a), free(b);
                    if (st != TN_OK) {
                        ck_assert_int_eq(st, TN_E_NUMERIC);
                        ck_assert(kind >= TN_OPT_RMSPROP && c > 1.0);
                        break;
                    }
                    TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_GRAD_NORM, &gn_tr));
                    TN_CK(ctx, tn_trainer_stat(tw, TN_STAT_GRAD_NORM, &gn_tw));
                    ck_assert_msg(gn_tr == gn_tw && isfinite(gn_tr) && gn_tr > 0,
                                  "optimizer %d clip %d scale %g step %d: norm %.17g over the "
                                  "gradient, %.17g apart", kind, clip, c, s, gn_tr, gn_tw);
                    /* the norm is of the size the scale gives it */
                    ck_assert_msg(gn_tr > 1e-6 * c * c && gn_tr < 1e6 * c * c,
                                  "scale %g: norm %g", c, gn_tr);
                }
                free(x), free(y);
                tn_trainer_free(tr), tn_trainer_free(tw);
                tn_net_free(net), tn_net_free(twin);
            }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hook");
    TCase *tc = tcase_create("gradient_hook");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hook_sees_the_gradient_and_scales_it);
    tcase_add_test(tc, hook_runs_before_clipping_and_weight_decay);
    tcase_add_test(tc, hook_changes_the_loss);
    tcase_add_test(tc, failing_hook_changes_nothing);
    tcase_add_test(tc, non_finite_loss_still_reaches_the_hook);
    tcase_add_test(tc, set_gradient_hook_arguments);
    tcase_add_test(tc, update_over_the_gradient_equals_the_update_apart);
    tcase_add_loop_test(tc, sharded_steps_equal_whole_batch, 0, 10);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
