/*
 * parallel.h -- the library's own threads: every product and elementwise
 * pass that a context's thread count (tn_ctx_set_threads) allows to run on
 * several threads is cut into tasks here, and each task calls BLIS
 * single-threaded.
 *
 * Why not BLIS's threads: Debian's BLIS threads with OpenMP, whose idle
 * threads spin at every barrier (libgomp's GOMP_SPINCOUNT and
 * OMP_WAIT_POLICY, process-wide settings the library must not change).
 * When another process holds a core, a spinning thread burns the time
 * slice its partner needs, and 2 threads were measured up to 240 times
 * slower than 1.  Here a waiting thread spins for a few microseconds at
 * most, then sleeps; tasks are claimed, not assigned, so a thread that is
 * late to wake finds its work already done by the others.
 *
 * Each calling thread has its own pool of workers (created on first use,
 * grown to the largest count asked for, joined when that thread exits or
 * calls tni_pool_release); contexts on different threads share nothing.
 * A count is bounded by the CPUs the process may run on.
 */
#ifndef TNI_PARALLEL_H
#define TNI_PARALLEL_H

#include <stddef.h>

/* Doubles of per-thread scratch each task receives (enough for the
 * activation series of kernel/series.h at the highest order). */
#define TNI_TASK_SCRATCH (6 * 33 * 64)

/* A task: run piece `task` of the work described by arg.  scratch holds
 * TNI_TASK_SCRATCH doubles owned by the thread running it (the caller's
 * `scratch` argument when everything runs on the calling thread). */
typedef void (*tni_task_fn)(void *arg, size_t task, double *scratch);

/* Runs fn(arg, t, ...) for t = 0..tasks-1 on at most `threads` threads (the
 * calling thread included) and returns when all have run.  With threads <= 1,
 * one task, or no workers to be had (thread creation failed), everything
 * runs on the calling thread, in order, with `scratch` (may be NULL if fn
 * needs none).  Never fails. */
void tni_parallel(int threads, size_t tasks, tni_task_fn fn, void *arg, double *scratch);

/* The thread count tni_parallel uses for a request of n: n bounded by the
 * CPUs the process may run on (sched_getaffinity), at least 1. */
int tni_threads_usable(int n);

/* Re-reads the CPUs the process may run on (tn_ctx_set_threads calls it). */
void tni_threads_refresh(void);

/* Joins the calling thread's workers, if any (tn_ctx_free calls it, so a
 * program that frees its contexts leaves no thread behind). */
void tni_pool_release(void);

/* Splits n items into `parts` ranges whose bounds are multiples of `align`
 * (except the last); range p is [*lo, *hi). */
void tni_split_range(size_t n, size_t parts, size_t align, size_t p, size_t *lo, size_t *hi);

#endif
