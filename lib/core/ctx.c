/* ctx.c -- the per-thread context: thread count and the last error message. */
#include "core.h"
#include "../kernel/kernels.h"
#include "../kernel/parallel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TN_API tn_status tn_ctx_create(tn_ctx **out)
{
    if (out == NULL) return TN_E_INVALID_ARG;
    *out = NULL;
    /* The context does not exist yet, so its allocation cannot go through it. */
    tn_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) return TN_E_NOMEM;
    ctx->magic = TNI_MAGIC_CTX;
    ctx->threads = 1;
    *out = ctx;
    /* A TAYLORNET_KERNELS the library cannot honour is reported here, the
     * first call of every program, through the context it returns (as
     * sqlite3_open does): the caller reads the message and frees it. */
    const char *msg;
    const tn_status st = tni_kernels_error(&msg);
    if (st != TN_OK) return tni_fail(ctx, st, "tn_ctx_create: %s", msg);
    return TN_OK;
}

TN_API void tn_ctx_free(tn_ctx *ctx)
{
    if (!tni_ctx_ok(ctx)) return;   /* NULL, or not a context: never free what is not ours */
    ctx->magic = TNI_MAGIC_DEAD;
    free(ctx);
    /* The calling thread's workers (kernel/parallel.h) go with its contexts;
     * another context on this thread starts them again when it needs them. */
    tni_pool_release();
}

TN_API const char *tn_ctx_errmsg(const tn_ctx *ctx)
{
    if (ctx == NULL) return "tn_ctx_errmsg: context is NULL";
    if (ctx->magic != TNI_MAGIC_CTX) return "tn_ctx_errmsg: not a valid context";
    return ctx->errmsg;
}

TN_API tn_status tn_ctx_set_threads(tn_ctx *ctx, int n)
{
    if (ctx == NULL) return TN_E_INVALID_ARG;
    if (ctx->magic != TNI_MAGIC_CTX) return TN_E_MISUSE;
    if (n < 1 || n > 1024)
        return tni_fail(ctx, TN_E_INVALID_ARG,
                        "tn_ctx_set_threads: thread count %d is outside [1, 1024]", n);
    /* Kept as asked; the calls use at most the CPUs this process may run on
     * now (kernel/parallel.h), so 1024 on 2 cores runs as 2. */
    tni_threads_refresh();
    ctx->threads = n;
    return TN_OK;
}

TN_API int tn_ctx_get_threads(const tn_ctx *ctx)
{
    return tni_ctx_ok(ctx) ? ctx->threads : 0;
}

tn_status tni_fail(tn_ctx *ctx, tn_status status, const char *fmt, ...)
{
    if (ctx != NULL && ctx->magic == TNI_MAGIC_CTX) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void tni_ctx_fail_alloc_after(tn_ctx *ctx, long n)
{
    if (tni_ctx_ok(ctx)) ctx->alloc_countdown = n < 0 ? 0 : n;
}

TN_API tn_status tn_ctx_get_memory(const tn_ctx *ctx, size_t *in_use, size_t *peak)
{
    if (ctx == NULL) return TN_E_INVALID_ARG;
    if (ctx->magic != TNI_MAGIC_CTX) return TN_E_MISUSE;
    if (in_use) *in_use = ctx->mem_in_use;
    if (peak) *peak = ctx->mem_peak;
    return TN_OK;
}

TN_API tn_status tn_ctx_reset_peak_memory(tn_ctx *ctx)
{
    if (ctx == NULL) return TN_E_INVALID_ARG;
    if (ctx->magic != TNI_MAGIC_CTX) return TN_E_MISUSE;
    ctx->mem_peak = ctx->mem_in_use;
    return TN_OK;
}

TN_API tn_status tn_ctx_set_progress(tn_ctx *ctx, tn_progress_fn fn, void *user)
{
    if (ctx == NULL) return TN_E_INVALID_ARG;
    if (ctx->magic != TNI_MAGIC_CTX) return TN_E_MISUSE;
    ctx->progress = fn;
    ctx->progress_user = fn ? user : NULL;
    return TN_OK;
}

tn_status tni_progress(tn_ctx *ctx, const char *who, double fraction)
{
    if (ctx->progress == NULL || ctx->progress(ctx->progress_user, fraction) == 0) return TN_OK;
    return tni_fail(ctx, TN_E_CANCELLED, "%s: cancelled by the progress callback at %.1f%%", who,
                    100.0 * fraction);
}
