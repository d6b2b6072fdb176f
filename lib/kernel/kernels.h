/*
 * kernels.h -- which of BLIS's kernel sets the library's products run on.
 *
 * The library links its own copy of BLIS (statically, every symbol hidden),
 * so choosing that copy's kernel set changes nothing a host program or
 * another library sees through its own BLIS.  The choice is made once per
 * process, from the CPU and the environment variable TAYLORNET_KERNELS
 * (read with getenv, never written):
 *
 *   auto (or unset)  BLIS's own choice when it recognises the CPU; when it
 *                    does not (Debian's BLIS 0.9.0 on AMD family 0x1A falls
 *                    back to generic), the best set the CPU's instructions
 *                    allow: AVX-512 -> skx, AVX2 and FMA -> zen3 (AMD) or
 *                    haswell, otherwise what BLIS picked
 *   a set name       that set (generic, penryn, sandybridge, haswell, zen,
 *                    zen2, zen3, skx, knl), if this BLIS was built with it and
 *                    the CPU has its instructions
 *
 * A value that cannot be honoured leaves auto in effect and is reported by
 * tni_kernels_error() (tn_ctx_create returns it through the new context).
 * With -Dblis=shared the system's libblis.so is used instead and BLIS picks
 * its kernels itself; then only auto is accepted.
 */
#ifndef TNI_KERNELS_H
#define TNI_KERNELS_H

#define TN_BUILDING 1
#include "taylornet.h"

/* The selected set's name ("skx"). */
const char *tni_kernels_name(void);

/* TN_OK when TAYLORNET_KERNELS was honoured (or unset); otherwise the status
 * to report (TN_E_INVALID_ARG: not a set name; TN_E_UNSUPPORTED: a set this
 * BLIS or CPU lacks) with *msg set to a static message.  Thread-safe. */
tn_status tni_kernels_error(const char **msg);

/* The BLIS context (cntx_t *) of the selected set, or of the best set for
 * this CPU (what auto would pick, whatever TAYLORNET_KERNELS says): the
 * benchmarks' reference rate.  NULL in a shared-BLIS build (BLIS's default). */
void *tni_kernels_cntx(void);
void *tni_kernels_best_cntx(void);

/* Tests only: makes the library's products run on set `name` from now on
 * (not thread-safe: call with no other call of the library running).
 * Returns 0, or -1 when the set is not available (nothing changes). */
int tni_kernels_select_for_test(const char *name);

/* The names of the sets available in this build on this CPU, generic
 * first, for tests: up to `max` pointers to static strings; the count. */
int tni_kernels_available(const char **names, int max);

#endif
