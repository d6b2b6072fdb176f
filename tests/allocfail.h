/* allocfail.h -- the harness of the allocation-failure tests (test_alloc.c,
 * test_predict_alloc.c): one context, and the loop in which the k-th
 * allocation of a call is made to fail, for k = 1, 2, ... until the call
 * succeeds without reaching it.
 *
 *     for (k = 1; k < MAX_K; k++) {
 *         const tn_status st = INJECT(k, tn_some_call(...));
 *         DISARM();
 *         if (st != TN_OK) { EXPECT_NOMEM(st, "tn_some_call", k); ...; continue; }
 *         ...
 *         if (FINISHED(st)) break;
 *     }
 *     CHECK_LOOP(k, "tn_some_call");
 *
 * Uses the injection hook tni_ctx_fail_alloc_after of the internal archive.
 * The includer defines MAX_K, the most allocations one call may make. */
#ifndef TN_TESTS_ALLOCFAIL_H
#define TN_TESTS_ALLOCFAIL_H

#include "core/core.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static tn_ctx *ctx;
static char marker[512];
static long left;        /* the countdown when the call returned */

static void setup(void)
{
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
}

static void teardown(void)
{
    tn_ctx_free(ctx);
}

/* A known message (from a call that allocates nothing), so a failure that
 * forgot to record its own is seen. */
static inline void mark(void)
{
    ck_assert_int_eq(tn_ctx_set_threads(ctx, 0), TN_E_INVALID_ARG);
    snprintf(marker, sizeof marker, "%s", tn_ctx_errmsg(ctx));
}

/* Arms the k-th allocation, runs the call, disarms (a call that succeeded
 * with fewer than k allocations would leave the countdown running). */
#define INJECT(k, expr) (mark(), tni_ctx_fail_alloc_after(ctx, (k)), (expr))
#define DISARM() (left = ctx->alloc_countdown, tni_ctx_fail_alloc_after(ctx, 0))
/* The loop is over when the call succeeded without reaching the armed
 * allocation (countdown still > 0).  A success with the countdown at 0
 * means the failure was absorbed (an optional cache) and the allocations
 * after it still need their turn. */
#define FINISHED(st) ((st) == TN_OK && left > 0)

/* A failure is TN_E_NOMEM with a message of its own. */
static inline void expect_nomem_(tn_status st, const char *what, long k, int line)
{
    const char *m = tn_ctx_errmsg(ctx);
    ck_assert_msg(st == TN_E_NOMEM, "line %d: %s with allocation %ld failing -> %s (%s)", line,
                  what, k, tn_status_string(st), m);
    ck_assert_msg(m[0] != '\0' && strcmp(m, marker) != 0,
                  "line %d: %s (allocation %ld) failed without a message", line, what, k);
}
#define EXPECT_NOMEM(st, what, k) expect_nomem_((st), (what), (k), __LINE__)

/* Every loop must have injected at least one failure (the call allocates),
 * and must have ended. */
#define CHECK_LOOP(k, what)                                                               \
    do {                                                                                  \
        ck_assert_msg((k) > 1, "%s made no allocation through the context", (what));      \
        ck_assert_msg((k) < MAX_K, "%s never succeeded", (what));                         \
    } while (0)

#endif
