/*
 * core.h -- what every part of the library stands on: the context, error
 * reporting, allocation and size arithmetic.  Internal; never installed.
 */
#ifndef TNI_CORE_H
#define TNI_CORE_H

#define TN_BUILDING 1
#include "taylornet.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Handle type tags: the first field of every handle.  Checked at each public
 * entry so that a handle of the wrong type is refused instead of misread;
 * cleared on free. */
#define TNI_MAGIC_CTX 0x74634e54u       /* "TNct" */
#define TNI_MAGIC_NET 0x74654e54u
#define TNI_MAGIC_TAYLOR 0x79744e54u
#define TNI_MAGIC_NTK 0x6b6e4e54u
#define TNI_MAGIC_PREDICTOR 0x72704e54u
#define TNI_MAGIC_TRAINER 0x72744e54u
#define TNI_MAGIC_GP 0x70674e54u
#define TNI_MAGIC_DEAD 0xdeadbeefu

#define TNI_ERRMSG_MAX 512

struct tn_ctx {
    uint32_t magic;
    int threads;                    /* BLAS threads for calls through this context */
    char errmsg[TNI_ERRMSG_MAX];
    /* Fault injection for tests: when > 0, the allocation that brings it to
     * zero fails.  Reached only through tni_ctx_fail_alloc_after(). */
    long alloc_countdown;
    /* Bytes allocated through this context and not yet freed, and their peak. */
    size_t mem_in_use, mem_peak;
    tn_progress_fn progress;
    void *progress_user;
};

/* Elementwise loops written to vectorize get AVX-512 and AVX2 clones beside
 * the baseline x86-64 code, chosen by the CPU when the library is loaded
 * (GCC's target_clones, an ifunc); elsewhere, one version.  The clones
 * compute the same bits: every operation is IEEE-rounded per element,
 * -ffp-contract=off keeps FMA out, and sums run in fixed lanes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define TNI_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TNI_VECTOR_CLONES
#endif

/* Returns from the calling function with the status when it is not TN_OK. */
#define TNI_TRY(expr)                          \
    do {                                       \
        tn_status tni_st_ = (expr);            \
        if (tni_st_ != TN_OK) return tni_st_;  \
    } while (0)

/* Records a message in ctx (printf format, prefixed by nothing) and returns
 * status, so a check reads `return tni_fail(ctx, TN_E_SHAPE, "...")`.
 * ctx may be NULL (then only the status is returned). */
tn_status tni_fail(tn_ctx *ctx, tn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Allocation: the one place memory is obtained, so failures can be injected
 * and use counted per context.  n * size overflowing is a failure.  Memory
 * is zeroed and aligned for any type.  A block remembers its context, which
 * must outlive it (handles are freed before their context). */
void *tni_alloc(tn_ctx *ctx, size_t n, size_t size);
void tni_free(void *p);
/* As tni_alloc, but records "<who>: out of memory (N bytes)" on failure. */
void *tni_alloc_or_fail(tn_ctx *ctx, const char *who, size_t n, size_t size);

/* Test hook: make the n-th next allocation through ctx fail (0 disables). */
void tni_ctx_fail_alloc_after(tn_ctx *ctx, long n);

/* Size arithmetic that reports overflow: returns 0 and sets *out, or 1. */
static inline int tni_mul_overflow(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}
static inline int tni_add_overflow(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return 1;
    *out = a + b;
    return 0;
}

/* Reports progress to ctx's callback: TN_E_CANCELLED (with a message) when
 * it asks to stop. */
tn_status tni_progress(tn_ctx *ctx, const char *who, double fraction);

/* 1 if every one of the n values is finite. */
int tni_all_finite(const double *v, size_t n);

/* A valid context (non-NULL with the right tag). */
static inline int tni_ctx_ok(const tn_ctx *ctx)
{
    return ctx != NULL && ctx->magic == TNI_MAGIC_CTX;
}

#endif /* TNI_CORE_H */
