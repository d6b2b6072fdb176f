/*
 * fuzz_common.h -- what the libFuzzer harnesses share: the invariants every
 * public call promises, checked after each call, and a memory-backed writer
 * for re-encoding what a loader accepted.
 *
 * A violated invariant aborts (libFuzzer then saves the input as a crash):
 *   - a status is one of tn_status's values;
 *   - a failure leaves a message in the context;
 *   - a success hands back finite numbers (tn_ctx_errmsg-free: the call's
 *     outputs are checked by the harness).
 */
#ifndef TN_FUZZ_COMMON_H
#define TN_FUZZ_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taylornet.h"

#define FUZZ_REQUIRE(cond, ...)                                                           \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz invariant violated at %s:%d: %s: ", __FILE__, __LINE__, \
                    #cond);                                                               \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                        \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* The status of a call: a valid value, and a message when it failed.
 * Returns the status so calls read `if (fuzz_status(ctx, tn_x(...)) != TN_OK)`. */
static inline tn_status fuzz_status_(tn_ctx *ctx, tn_status st, const char *call)
{
    FUZZ_REQUIRE((int)st >= TN_OK && (int)st <= TN_E_CANCELLED, "%s returned %d", call, (int)st);
    if (st != TN_OK && ctx != NULL)
        FUZZ_REQUIRE(tn_ctx_errmsg(ctx)[0] != '\0', "%s failed (%s) without a message", call,
                     tn_status_string(st));
    return st;
}
#define FUZZ_CALL(ctx, call) fuzz_status_((ctx), (call), #call)

static inline void fuzz_require_finite(const double *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        FUZZ_REQUIRE(isfinite(v[i]), "%s[%zu] = %g after TN_OK", what, i, v[i]);
}

/* A context made once per process and reused: its message buffer and
 * memory accounting are what a long-lived host sees. */
static inline tn_ctx *fuzz_ctx(void)
{
    static tn_ctx *ctx;
    if (ctx == NULL && tn_ctx_create(&ctx) != TN_OK) abort();
    return ctx;
}

#endif
