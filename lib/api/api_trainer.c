/* api_trainer.c -- public entry points of the trainer: checks, then train/. */
#include "check.h"
#include "../net/net.h"
#include "../train/checkpoint.h"
#include "../train/record.h"

#include <math.h>
#include <string.h>

TN_API tn_status tn_trainer_create(tn_net *net, tn_trainer **out)
{
    if (out) *out = NULL;
    TNI_TRY(tni_check_handle(net, TNI_MAGIC_NET));
    TNI_TRY(tni_check_ptr(net->ctx, "tn_trainer_create", out, "out"));
    if (!net->initialized)
        return tni_fail(net->ctx, TN_E_STATE,
                        "tn_trainer_create: the network is not initialized (call tn_net_init)");
    return tni_trainer_new(net, out);
}

TN_API tn_status tn_trainer_set(tn_trainer *tr, tn_train_param p, double value)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    return tni_trainer_set(tr, p, value);
}

TN_API tn_status tn_trainer_get(const tn_trainer *tr, tn_train_param p, double *value)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, "tn_trainer_get", value, "value"));
    return tni_trainer_get(tr, p, value);
}

/* x, y and n as every batch call of the trainer needs them. */
static tn_status batch_args(tn_trainer *tr, const char *fn, const double *x, const void *y,
                            const char *yname, size_t n)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, fn, x, "x"));
    TNI_TRY(tni_check_ptr(tr->ctx, fn, y, yname));
    TNI_TRY(tni_check_rows(tr->ctx, fn, n));
    TNI_TRY(tni_check_matrix(tr->ctx, fn, "x", n, tr->d));
    return tni_check_matrix(tr->ctx, fn, yname, n, tr->O);
}

TN_API tn_status tn_trainer_step(tn_trainer *tr, const double *x, const double *y, size_t n,
                                 double *loss)
{
    /* No finiteness check of x and y here: a step whose batch is not finite
     * must still reach the gradient hook (every rank enters its collective
     * in every step) and is refused after it, TN_E_NUMERIC (trainer.c). */
    TNI_TRY(batch_args(tr, "tn_trainer_step", x, y, "y", n));
    return tni_trainer_step(tr, x, y, n, loss);
}

TN_API tn_status tn_trainer_loss(tn_trainer *tr, const double *x, const double *y, size_t n,
                                 double *loss)
{
    TNI_TRY(batch_args(tr, "tn_trainer_loss", x, y, "y", n));
    TNI_TRY(tni_check_ptr(tr->ctx, "tn_trainer_loss", loss, "loss"));
    TNI_TRY(tni_check_finite(tr->ctx, "tn_trainer_loss", "x", x, n * tr->d));
    TNI_TRY(tni_check_finite(tr->ctx, "tn_trainer_loss", "y", y, n * tr->O));
    double value;
    TNI_TRY(tni_check_result(tr->ctx, "tn_trainer_loss", tni_trainer_loss(tr, x, y, n, &value),
                             &value, 1));
    *loss = value;
    return TN_OK;
}

TN_API tn_status tn_trainer_predict(tn_trainer *tr, const double *x, size_t n, double *y)
{
    TNI_TRY(batch_args(tr, "tn_trainer_predict", x, y, "y", n));
    TNI_TRY(tni_check_finite(tr->ctx, "tn_trainer_predict", "x", x, n * tr->d));
    return tni_check_result(tr->ctx, "tn_trainer_predict", tni_trainer_predict(tr, x, n, y), y,
                            n * tr->O);
}

TN_API tn_status tn_trainer_set_probe(tn_trainer *tr, const double *x, size_t n)
{
    static const char fn[] = "tn_trainer_set_probe";
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, fn, x, "x"));
    TNI_TRY(tni_check_rows(tr->ctx, fn, n));
    TNI_TRY(tni_check_matrix(tr->ctx, fn, "x", n, tr->d));
    TNI_TRY(tni_check_finite(tr->ctx, fn, "x", x, n * tr->d));
    return tni_diagnostics_set_probe(tr, x, n);
}

TN_API tn_status tn_trainer_stat(const tn_trainer *tr, tn_train_stat s, double *value)
{
    static const char fn[] = "tn_trainer_stat";
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, fn, value, "value"));
    if ((int)s < TN_STAT_LOSS || (int)s > TN_STAT_UNITS_EVER_SWITCHED)
        return tni_fail(tr->ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_train_stat", fn, (int)s);
    /* The exploration statistics are kept with the probe's patterns and
     * valid when those were computed. */
    const int explore = s >= TN_STAT_CONFIGS_VISITED;
    if (!(tr->stat_valid & 1u << (explore ? TN_STAT_PATTERN_CHANGE_STEP : s)))
        return tni_fail(tr->ctx, TN_E_STATE, "%s: statistic %d was not computed at the last step "
                        "(no step yet, TN_TRAIN_DIAGNOSTICS off, or no probe set)", fn, (int)s);
    const double v = explore ? tni_diagnostics_exploration(tr, s) : tr->stat[s];
    /* A step can keep finite parameters yet move the network so far that
     * its loss there, or the first-order prediction of it, is beyond the
     * doubles: that is said, never handed on as an infinity. */
    if (!isfinite(v))
        return tni_fail(tr->ctx, TN_E_NUMERIC,
                        "%s: statistic %d of the last step overflowed (the step moved the "
                        "network's outputs beyond the range of doubles; lower the learning rate)",
                        fn, (int)s);
    *value = v;
    return TN_OK;
}

TN_API tn_status tn_trainer_set_gradient_hook(tn_trainer *tr, tn_gradient_fn fn, void *user)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    tni_trainer_set_hook(tr, fn, user);
    return TN_OK;
}

TN_API tn_status tn_trainer_regret(tn_trainer *tr, double *regret, double *taylor_optimum)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    return tni_trainer_regret(tr, regret, taylor_optimum);
}

TN_API tn_status tn_trainer_regret_info(const tn_trainer *tr, tn_regret_info what, double *value)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, "tn_trainer_regret_info", value, "value"));
    return tni_trainer_regret_info(tr, what, value);
}

TN_API tn_status tn_trainer_regret_minimizer(const tn_trainer *tr, double *v, size_t len)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, "tn_trainer_regret_minimizer", v, "v"));
    return tni_trainer_regret_minimizer(tr, v, len);
}

TN_API uint64_t tn_trainer_num_steps(const tn_trainer *tr)
{
    return tni_check_handle(tr, TNI_MAGIC_TRAINER) == TN_OK ? tr->steps : 0;
}

TN_API tn_status tn_trainer_get_base(const tn_trainer *tr, double *theta0, size_t len)
{
    static const char fn[] = "tn_trainer_get_base";
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, fn, theta0, "theta0"));
    TNI_TRY(tni_check_len(tr->ctx, fn, "theta0", len, tr->P));
    memcpy(theta0, tr->ex.theta0, len * sizeof(double));
    return TN_OK;
}

TN_API tn_status tn_trainer_save(const tn_trainer *tr, const char *path)
{
    TNI_TRY(tni_check_handle(tr, TNI_MAGIC_TRAINER));
    TNI_TRY(tni_check_ptr(tr->ctx, "tn_trainer_save", path, "path"));
    return tni_trainer_save(tr, path);
}

TN_API tn_status tn_trainer_load(tn_ctx *ctx, const char *path, tn_net **net, tn_trainer **tr)
{
    static const char fn[] = "tn_trainer_load";
    if (net) *net = NULL;
    if (tr) *tr = NULL;
    TNI_TRY(tni_check_handle(ctx, TNI_MAGIC_CTX));
    TNI_TRY(tni_check_ptr(ctx, fn, path, "path"));
    TNI_TRY(tni_check_ptr(ctx, fn, net, "net"));
    TNI_TRY(tni_check_ptr(ctx, fn, tr, "tr"));
    return tni_trainer_load(ctx, path, net, tr);
}

TN_API void tn_trainer_free(tn_trainer *tr)
{
    if (tni_check_handle(tr, TNI_MAGIC_TRAINER) == TN_OK) tni_trainer_delete(tr);
}
