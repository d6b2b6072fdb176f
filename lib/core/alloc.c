/* alloc.c -- the one place memory is obtained (see core.h). */
#define _DEFAULT_SOURCE         /* madvise */
#include "core.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Every block starts with this header, so tni_free can give the bytes back
 * to the context that counted them. */
typedef union block_header {
    struct {
        size_t bytes;
        tn_ctx *ctx;
    } h;
    max_align_t align;
} block_header;

/* Blocks this large ask Linux for transparent huge pages (where it grants
 * them on request: /sys/kernel/mm/transparent_hugepage/enabled "madvise",
 * Debian's default, or "always").  A workspace is written once per call,
 * mostly into memory the process has not touched yet, and each 4 KiB page
 * costs a fault: on this project's virtual machines the first write of 256
 * MiB took 0.85 s in 4 KiB pages and 0.02 s in 2 MiB pages (0.3 against 13
 * GB/s), as much as a traced NTK of 1,024 inputs computes in.  Only the
 * block's own whole 2 MiB spans are advised; nothing else in the process
 * changes, and where the kernel refuses, pages stay 4 KiB. */
#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)

static void advise_huge(void *block, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes < HUGE_MIN) return;
    const uintptr_t lo = ((uintptr_t)block + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    const uintptr_t hi = ((uintptr_t)block + bytes) & ~(HUGE_PAGE - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)block;
    (void)bytes;
#endif
}

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
    advise_huge(b, total);
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
