/* trainer.c -- full, Taylorized, re-expanded and lazy training (trainer.h). */
#include "trainer.h"
#include "loss.h"
#include "record.h"

#include <math.h>
#include <string.h>

/* Settings whose default depends on the optimizer, once the user sets them
 * they stay. */
enum { SET_LR = 1u, SET_MOMENTUM = 2u, SET_BETA2 = 4u };

/* Rows per call of predict / loss: keeps the workspace bounded. */
#define TNI_EVAL_ROWS 1024

static double default_lr(int kind)
{
    return kind == TN_OPT_RMSPROP ? 1e-2 : 1e-3;
}

static double default_momentum(int kind)
{
    return kind == TN_OPT_MOMENTUM || kind == TN_OPT_NESTEROV ? 0.9 : 0.0;
}

static double default_beta2(int kind)
{
    return kind == TN_OPT_RMSPROP ? 0.99 : 0.999;
}

/* Applies the optimizer-dependent defaults the user has not overridden and
 * clears the optimizer state. */
static void reset_optimizer(tn_trainer *tr, int kind)
{
    tr->opt.kind = kind;
    if (!(tr->explicit_set & SET_LR)) tr->opt.lr = default_lr(kind);
    if (!(tr->explicit_set & SET_MOMENTUM)) tr->opt.momentum = default_momentum(kind);
    if (!(tr->explicit_set & SET_BETA2)) tr->opt.beta2 = default_beta2(kind);
    tr->opt.t = 0;
    for (int i = 0; i < 2; i++) memset(tr->state[i], 0, tr->P * sizeof(double));
}

tn_status tni_trainer_new(tn_net *net, tn_trainer **out)
{
    tn_ctx *ctx = tni_net_ctx(net);
    tn_trainer *tr = tni_alloc_or_fail(ctx, "tn_trainer_create", 1, sizeof *tr);
    if (tr == NULL) return TN_E_NOMEM;
    tr->magic = TNI_MAGIC_TRAINER;
    tr->net = net;
    tr->ctx = ctx;
    tr->P = tni_net_num_params(net);
    tr->O = tni_net_output_dim(net);
    tr->d = tni_net_input_size(net);
    double **vecs[] = {&tr->grad, &tr->theta_new, &tr->state[0], &tr->state[1],
                       &tr->state_new[0], &tr->state_new[1]};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        *vecs[i] = tni_alloc(ctx, tr->P, sizeof(double));
        if (*vecs[i] == NULL) {
            const size_t P = tr->P;
            tni_trainer_delete(tr);
            return tni_fail(ctx, TN_E_NOMEM, "tn_trainer_create: out of memory for %zu parameters",
                            P);
        }
    }
    tn_status st = tni_expansion_init(&tr->ex, net, 1);
    if (st != TN_OK) {
        tni_trainer_delete(tr);
        return st;
    }
    tr->loss = TN_LOSS_MSE;
    tr->opt.beta1 = 0.9;
    tr->opt.eps = 1e-8;
    tr->alpha = 1.0;
    tr->regret_memory = TNI_REGRET_MEMORY_DEFAULT;
    tr->regret_tol = 1e-12;
    tr->regret_max_iter = TNI_REGRET_MAX_ITER_DEFAULT;
    reset_optimizer(tr, TN_OPT_SGD);
    *out = tr;
    return TN_OK;
}

void tni_trainer_delete(tn_trainer *tr)
{
    if (tr == NULL) return;
    double *vecs[] = {tr->grad, tr->theta_new, tr->state[0], tr->state[1], tr->state_new[0],
                      tr->state_new[1], tr->g, tr->cot, tr->f0};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) tni_free(vecs[i]);
    tni_expansion_release(&tr->ex);
    tni_batch_key_free(&tr->f0_key);
    tni_diagnostics_free(tr);
    tni_record_free(tr);
    tr->magic = TNI_MAGIC_DEAD;
    tni_free(tr);
}

static int whole(double v, double lo, double hi)
{
    return v >= lo && v <= hi && v == floor(v);
}

tn_status tni_trainer_set(tn_trainer *tr, tn_train_param p, double v)
{
    static const char fn[] = "tn_trainer_set";
    tn_ctx *ctx = tr->ctx;
#define REQUIRE(cond, what)                                                                  \
    do {                                                                                     \
        if (!(cond)) return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %s %g: " what, fn, name, v); \
    } while (0)
    const char *name = "value";
    switch (p) {
    case TN_TRAIN_LOSS:
        name = "loss";
        REQUIRE(v == TN_LOSS_MSE || v == TN_LOSS_SOFTMAX_XENT, "not a TN_LOSS_* value");
        tr->loss = (int)v;
        return TN_OK;
    case TN_TRAIN_OPTIMIZER:
        name = "optimizer";
        REQUIRE(whole(v, TN_OPT_SGD, TN_OPT_ADAM), "not a TN_OPT_* value");
        reset_optimizer(tr, (int)v);
        return TN_OK;
    case TN_TRAIN_LEARNING_RATE:
        name = "learning rate";
        REQUIRE(isfinite(v) && v > 0, "must be finite and > 0");
        tr->opt.lr = v;
        tr->explicit_set |= SET_LR;
        return TN_OK;
    case TN_TRAIN_MOMENTUM:
        name = "momentum";
        REQUIRE(v >= 0 && v < 1, "must be in [0, 1)");
        tr->opt.momentum = v;
        tr->explicit_set |= SET_MOMENTUM;
        return TN_OK;
    case TN_TRAIN_BETA1:
        name = "beta1";
        REQUIRE(v >= 0 && v < 1, "must be in [0, 1)");
        tr->opt.beta1 = v;
        return TN_OK;
    case TN_TRAIN_BETA2:
        name = "beta2";
        REQUIRE(v >= 0 && v < 1, "must be in [0, 1)");
        tr->opt.beta2 = v;
        tr->explicit_set |= SET_BETA2;
        return TN_OK;
    case TN_TRAIN_EPSILON:
        name = "epsilon";
        REQUIRE(isfinite(v) && v > 0, "must be finite and > 0");
        tr->opt.eps = v;
        return TN_OK;
    case TN_TRAIN_WEIGHT_DECAY:
        name = "weight decay";
        REQUIRE(isfinite(v) && v >= 0, "must be finite and >= 0");
        tr->opt.weight_decay = v;
        return TN_OK;
    case TN_TRAIN_CLIP_NORM:
        name = "clip norm";
        REQUIRE(isfinite(v) && v >= 0, "must be finite and >= 0 (0 turns clipping off)");
        tr->clip = v;
        return TN_OK;
    case TN_TRAIN_ORDER:
        name = "order";
        REQUIRE(whole(v, 0, TNI_MAX_ORDER), "must be a whole number in [0, tn_taylor_max_order()]");
        tr->order = (int)v;
        if (v >= 1) tni_expansion_set_order(&tr->ex, (size_t)v);
        tni_expansion_rebase(&tr->ex, tni_net_theta(tr->net));
        return TN_OK;
    case TN_TRAIN_REEXPAND_EVERY:
        name = "re-expansion period";
        REQUIRE(whole(v, 0, 9007199254740992.0), "must be a whole number >= 0");
        tr->reexpand_every = (uint64_t)v;
        return TN_OK;
    case TN_TRAIN_OUTPUT_SCALE:
        name = "output scale";
        REQUIRE(isfinite(v) && v > 0, "must be finite and > 0");
        tr->alpha = v;
        return TN_OK;
    case TN_TRAIN_CENTERED:
        name = "centered";
        REQUIRE(v == 0 || v == 1, "must be 0 or 1");
        tr->centered = (int)v;
        return TN_OK;
    case TN_TRAIN_DIAGNOSTICS:
        name = "diagnostics";
        REQUIRE(v == 0 || v == 1, "must be 0 or 1");
        tr->diagnostics = (int)v;
        return TN_OK;
    case TN_TRAIN_RECORD_TAYLOR:
        name = "Taylor record";
        REQUIRE(v == 0 || v == 1, "must be 0 or 1");
        return tni_record_enable(tr, (int)v);
    case TN_TRAIN_REGRET_MEMORY:
        name = "regret memory";
        REQUIRE(whole(v, 0, 9007199254740992.0), "must be a whole number of bytes >= 0");
        tr->regret_memory = v >= (double)SIZE_MAX ? SIZE_MAX : (size_t)v;
        return TN_OK;
    case TN_TRAIN_REGRET_TOLERANCE:
        name = "regret tolerance";
        REQUIRE(v > 0 && v < 1, "must be in (0, 1)");
        tr->regret_tol = v;
        return TN_OK;
    case TN_TRAIN_REGRET_MAX_ITERATIONS:
        name = "regret iteration limit";
        REQUIRE(whole(v, 1, 9007199254740992.0), "must be a whole number >= 1");
        tr->regret_max_iter = (uint64_t)v;
        return TN_OK;
    case TN_TRAIN_REGRET_SOLVER:
        name = "regret solver";
        REQUIRE(whole(v, TN_REGRET_AUTO, TN_REGRET_NEWTON_CG), "not a TN_REGRET_* value");
        tr->regret_solver = (int)v;
        return TN_OK;
    }
#undef REQUIRE
    return tni_fail(ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_train_param", fn, (int)p);
}

tn_status tni_trainer_get(const tn_trainer *tr, tn_train_param p, double *value)
{
    switch (p) {
    case TN_TRAIN_LOSS: *value = tr->loss; return TN_OK;
    case TN_TRAIN_OPTIMIZER: *value = tr->opt.kind; return TN_OK;
    case TN_TRAIN_LEARNING_RATE: *value = tr->opt.lr; return TN_OK;
    case TN_TRAIN_MOMENTUM: *value = tr->opt.momentum; return TN_OK;
    case TN_TRAIN_BETA1: *value = tr->opt.beta1; return TN_OK;
    case TN_TRAIN_BETA2: *value = tr->opt.beta2; return TN_OK;
    case TN_TRAIN_EPSILON: *value = tr->opt.eps; return TN_OK;
    case TN_TRAIN_WEIGHT_DECAY: *value = tr->opt.weight_decay; return TN_OK;
    case TN_TRAIN_CLIP_NORM: *value = tr->clip; return TN_OK;
    case TN_TRAIN_ORDER: *value = tr->order; return TN_OK;
    case TN_TRAIN_REEXPAND_EVERY: *value = (double)tr->reexpand_every; return TN_OK;
    case TN_TRAIN_OUTPUT_SCALE: *value = tr->alpha; return TN_OK;
    case TN_TRAIN_CENTERED: *value = tr->centered; return TN_OK;
    case TN_TRAIN_DIAGNOSTICS: *value = tr->diagnostics; return TN_OK;
    case TN_TRAIN_RECORD_TAYLOR: *value = tr->record != NULL; return TN_OK;
    case TN_TRAIN_REGRET_MEMORY: *value = (double)tr->regret_memory; return TN_OK;
    case TN_TRAIN_REGRET_TOLERANCE: *value = tr->regret_tol; return TN_OK;
    case TN_TRAIN_REGRET_MAX_ITERATIONS: *value = (double)tr->regret_max_iter; return TN_OK;
    case TN_TRAIN_REGRET_SOLVER: *value = tr->regret_solver; return TN_OK;
    }
    return tni_fail(tr->ctx, TN_E_INVALID_ARG, "tn_trainer_get: %d is not a tn_train_param",
                    (int)p);
}

static tn_status reserve_rows(tn_trainer *tr, size_t n)
{
    if (n <= tr->cap_rows) return TN_OK;
    double *g = tni_alloc(tr->ctx, n, tr->O * sizeof(double));
    double *cot = tni_alloc(tr->ctx, n, tr->O * sizeof(double));
    double *f0 = tni_alloc(tr->ctx, n, tr->O * sizeof(double));
    if (g == NULL || cot == NULL || f0 == NULL) {
        tni_free(g);
        tni_free(cot);
        tni_free(f0);
        return tni_fail(tr->ctx, TN_E_NOMEM, "trainer: out of memory for %zu rows", n);
    }
    tni_free(tr->g);
    tni_free(tr->cot);
    tni_free(tr->f0);
    tni_batch_key_clear(&tr->f0_key);   /* f0's contents are gone */
    tr->g = g;
    tr->cot = cot;
    tr->f0 = f0;
    tr->cap_rows = n;
    return TN_OK;
}

/* tr->g (n x O) = the trained model on x, leaving the tape ready for reverse
 * mode at the point the model is differentiated. */
static tn_status model_forward(tn_trainer *tr, const double *x, size_t n)
{
    tni_expansion *e = &tr->ex;
    const double *theta = tni_net_theta(tr->net);
    const size_t blk = n * tr->O;
    tn_status st;
    if (tr->order == 0) {
        /* f(theta0; x) changes only with the batch and theta0: cached. */
        if (tr->centered && !tni_batch_key_matches(&tr->f0_key, x, n, tr->d, e->version)) {
            st = tni_expansion_plain_forward(e, e->theta0, x, n);
            if (st != TN_OK) return st;
            tni_engine_output_sum(e->tape, 0, tr->f0);
            tni_batch_key_record(tr->ctx, &tr->f0_key, x, n, tr->d, e->version);
        }
        st = tni_expansion_plain_forward(e, theta, x, n);
        if (st != TN_OK) return st;
        tni_engine_output_sum(e->tape, 0, tr->g);
        if (tr->centered)
            for (size_t i = 0; i < blk; i++) tr->g[i] -= tr->f0[i];
    } else {
        st = tni_expansion_forward(e, theta, x, n);
        if (st != TN_OK) return st;
        /* Centered: the model leaves out z_0 = f(theta0; x). */
        tni_engine_output_sum(e->tape, tr->centered ? 1 : 0, tr->g);
    }
    if (tr->alpha != 1.0)
        for (size_t i = 0; i < blk; i++) tr->g[i] *= tr->alpha;
    return TN_OK;
}

static tn_status model_reverse(tn_trainer *tr)
{
    if (tr->order == 0)
        return tni_expansion_plain_reverse(&tr->ex, tni_net_theta(tr->net), tr->cot, tr->grad);
    return tni_expansion_reverse(&tr->ex, tr->cot, tr->grad, 0);
}

/* The optimizer step from tr->grad into theta_new (tr->theta_new, or
 * tr->grad itself) and the next state: optim.h. */
static int update(tn_trainer *tr, const tni_opt *o, double *theta_new, double *gnorm)
{
    return tni_opt_step(o, tr->ctx->threads, tr->P, tr->clip, tni_net_theta(tr->net), tr->grad,
                        tr->state[0], tr->state[1], theta_new, tr->state_new[0],
                        tr->state_new[1], gnorm);
}

static tn_status loss_not_finite(tn_trainer *tr, const char *fn, double L)
{
    return tni_fail(tr->ctx, TN_E_NUMERIC,
                    "%s: the loss is not finite (%g); parameters and state unchanged", fn, L);
}

void tni_trainer_set_hook(tn_trainer *tr, tn_gradient_fn fn, void *user)
{
    tr->hook = fn;
    tr->hook_user = fn ? user : NULL;
}

tn_status tni_trainer_step(tn_trainer *tr, const double *x, const double *y, size_t n,
                           double *loss)
{
    static const char fn[] = "tn_trainer_step";
    tn_status st = reserve_rows(tr, n);
    if (st == TN_OK) st = model_forward(tr, x, n);
    if (st != TN_OK) return st;
    const double a2 = tr->alpha * tr->alpha;
    double L = tni_loss(tr->loss, n, tr->O, tr->g, y, tr->cot) / a2;
    /* With a hook, a loss that is not finite still goes through reverse
     * mode and the hook, and is refused after it: a data-parallel hook
     * enters a collective, which every rank must enter in every step, and
     * the NaN it sums in then fails the step on every rank alike. */
    if (!isfinite(L) && tr->hook == NULL)
        return loss_not_finite(tr, fn, L);
    if (tr->alpha != 1.0) {
        const double inv = 1.0 / tr->alpha;
        for (size_t e = 0; e < n * tr->O; e++) tr->cot[e] *= inv;
    }
    st = model_reverse(tr);
    if (st != TN_OK) return st;
    if (tr->hook) {
        st = tr->hook(tr->hook_user, tr->grad, tr->P, &L);
        if (st != TN_OK)
            return tni_fail(tr->ctx, st,
                            "%s: the gradient hook failed (%s); parameters and state unchanged",
                            fn, tn_status_string(st));
        if (!isfinite(L)) return loss_not_finite(tr, fn, L);
    }
    /* Norm, clipping, update and the finiteness checks in one pass over
     * the parameters (two with clipping): optim.h.  The new parameters are
     * written over the gradient, which nothing reads after the update: one
     * array less for the memory to move.  When the gradient then turned out
     * to need a closer look (TNI_OPT_REDO: not finite, or a norm out of
     * double's range), reverse mode forms it again, the same bits, and the
     * update runs with the new parameters apart.  With a hook the gradient
     * came through the hook (a collective, once per step), so the update
     * always runs apart. */
    tni_opt o = tr->opt;
    o.t = tr->opt.t + 1;
    const int ns = tni_opt_state_count(&o);
    double gnorm, *theta_new = tr->hook ? tr->theta_new : tr->grad;
    int found = update(tr, &o, theta_new, &gnorm);
    if (found == TNI_OPT_REDO) {
        st = model_reverse(tr);
        if (st != TN_OK) return st;
        theta_new = tr->theta_new;
        found = update(tr, &o, theta_new, &gnorm);
    }
    switch (found) {
    case TNI_OPT_GRAD_NOT_FINITE:
        return tni_fail(tr->ctx, TN_E_NUMERIC,
                        "%s: the gradient is not finite; parameters and state unchanged", fn);
    case TNI_OPT_OVERFLOW:
        return tni_fail(tr->ctx, TN_E_NUMERIC,
                        "%s: the update overflows (learning rate too large?); parameters and "
                        "state unchanged", fn);
    default:
        break;
    }
    double stat[6] = {L, 0, 0, 0, 0, gnorm};
    unsigned valid = 1u << TN_STAT_LOSS | 1u << TN_STAT_GRAD_NORM;
    if (tr->diagnostics) {
        st = tni_diagnostics_step(tr, x, y, n, theta_new, stat, &valid);
        if (st != TN_OK) return st;
    }
    /* The Taylor record's entry, last: nothing after it can fail. */
    if (tr->record) {
        st = tni_record_prepare(tr, x, y, n);
        if (st != TN_OK) return st;
    }
    /* Commit: nothing above touched what the caller can see.  The old
     * parameters' array takes the place of the one the new ones came in. */
    tni_net_swap_theta(tr->net, theta_new == tr->grad ? &tr->grad : &tr->theta_new);
    for (int i = 0; i < ns; i++) {
        double *t = tr->state[i];
        tr->state[i] = tr->state_new[i];
        tr->state_new[i] = t;
    }
    tr->opt.t = o.t;
    tr->steps++;
    memcpy(tr->stat, stat, sizeof stat);
    tr->stat_valid = valid;
    if (tr->diagnostics) tni_diagnostics_commit(tr);
    if (tr->record) tni_record_commit(tr);
    if (tr->reexpand_every > 0 && tr->steps % tr->reexpand_every == 0)
        tni_expansion_rebase(&tr->ex, tni_net_theta(tr->net));
    if (loss) *loss = L;
    return TN_OK;
}

tn_status tni_trainer_predict(tn_trainer *tr, const double *x, size_t n, double *y)
{
    const size_t rows = n < TNI_EVAL_ROWS ? n : TNI_EVAL_ROWS;
    tn_status st = reserve_rows(tr, rows);
    for (size_t i = 0; st == TN_OK && i < n; i += rows) {
        const size_t b = n - i < rows ? n - i : rows;
        st = model_forward(tr, x + i * tr->d, b);
        if (st == TN_OK) memcpy(y + i * tr->O, tr->g, b * tr->O * sizeof(double));
    }
    return st;
}

tn_status tni_trainer_loss(tn_trainer *tr, const double *x, const double *y, size_t n,
                           double *loss)
{
    const size_t rows = n < TNI_EVAL_ROWS ? n : TNI_EVAL_ROWS;
    tn_status st = reserve_rows(tr, rows);
    double total = 0.0;
    for (size_t i = 0; st == TN_OK && i < n; i += rows) {
        const size_t b = n - i < rows ? n - i : rows;
        st = model_forward(tr, x + i * tr->d, b);
        /* Each chunk's mean, weighted back to a sum over examples. */
        if (st == TN_OK)
            total += (double)b * tni_loss(tr->loss, b, tr->O, tr->g, y + i * tr->O, NULL);
    }
    if (st == TN_OK) *loss = total / ((double)n * tr->alpha * tr->alpha);
    return st;
}
