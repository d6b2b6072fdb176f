/* alloc.c -- the one place memory is obtained (see core.h). */
#include "core.h"

#include <math.h>
#include <stdlib.h>

void *tni_alloc(tn_ctx *ctx, size_t n, size_t size)
{
    size_t bytes;
    if (tni_mul_overflow(n, size, &bytes)) return NULL;
    if (bytes == 0) bytes = 1;
    if (ctx != NULL && ctx->alloc_countdown > 0 && --ctx->alloc_countdown == 0)
        return NULL;
    return calloc(1, bytes);
}

void tni_free(void *p)
{
    free(p);
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
