/* alloc.c -- the one place memory is obtained (see core.h). */
#include "core.h"

#include <math.h>
#include <stdlib.h>

/* Every block starts with this header, so tni_free can give the bytes back
 * to the context that counted them. */
typedef union block_header {
    struct {
        size_t bytes;
        tn_ctx *ctx;
    } h;
    max_align_t align;
} block_header;

void *tni_alloc(tn_ctx *ctx, size_t n, size_t size)
{
    size_t bytes, total;
    if (tni_mul_overflow(n, size, &bytes) ||
        tni_add_overflow(bytes, sizeof(block_header), &total))
        return NULL;
    if (ctx != NULL && ctx->alloc_countdown > 0 && --ctx->alloc_countdown == 0)
        return NULL;
    block_header *b = calloc(1, total);
    if (b == NULL) return NULL;
    b->h.bytes = bytes;
    b->h.ctx = ctx;
    if (ctx != NULL) {
        ctx->mem_in_use += bytes;
        if (ctx->mem_in_use > ctx->mem_peak) ctx->mem_peak = ctx->mem_in_use;
    }
    return b + 1;
}

void tni_free(void *p)
{
    if (p == NULL) return;
    block_header *b = (block_header *)p - 1;
    if (b->h.ctx != NULL) b->h.ctx->mem_in_use -= b->h.bytes;
    free(b);
}

void *tni_alloc_or_fail(tn_ctx *ctx, const char *who, size_t n, size_t size)
{
    void *p = tni_alloc(ctx, n, size);
    if (p == NULL) {
        size_t bytes;
        if (tni_mul_overflow(n, size, &bytes))
            tni_fail(ctx, TN_E_NOMEM, "%s: size %zu x %zu overflows", who, n, size);
        else
            tni_fail(ctx, TN_E_NOMEM, "%s: out of memory (%zu bytes)", who, bytes);
    }
    return p;
}

int tni_all_finite(const double *v, size_t n)
{
    /* Summing flags instead of branching keeps the loop vectorizable. */
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= !isfinite(v[i]);
    return !bad;
}
