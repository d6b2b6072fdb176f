/* test_threads.c -- one context per thread, nothing shared (taylornet.h,
 * "Threads"; API.md: "Distinct contexts share nothing mutable.  No global
 * mutable state").
 *
 * Two threads run the same computation at the same time, each in its own
 * context: build a net from a fixed seed, train it with Adam, evaluate it.
 * One context uses 1 BLAS thread, the other 2.
 *
 * What is asserted, and why:
 *   - 1 BLAS thread: bit-identical to the main thread's run.  Same code,
 *     same operands, same order of every sum; only isolation between
 *     contexts (no shared workspace, no global state) is under test.
 *   - 2 BLAS threads: bit-identical to a run with 2 BLAS threads done alone
 *     on the main thread beforehand (BLIS partitions work statically, so a
 *     fixed thread count is deterministic; running beside another context
 *     must not change that), and equal to the 1-thread reference to 1e-12
 *     relative.  Bit-identity with the 1-thread run is NOT asserted: it
 *     holds with BLIS's "generic" configuration (what Debian's BLIS picks on
 *     this AMD EPYC host) but not with its "haswell" configuration (what it
 *     picks under valgrind's emulated CPU), whose small-matrix ("sup")
 *     kernels treat the edges of each thread's partition with kernels that
 *     sum in another order: observed there, forward outputs differing by
 *     1.5e-16 relative.  BLIS never splits a k-loop reduction, so the only
 *     differences are such last-bit ones and 1e-12 leaves ample margin over
 *     12 training steps.  Whether the run was bit-identical is printed.
 *   The sizes are large enough that BLIS really uses 2 threads (checked by
 *   hand: libgomp starts its second thread).
 *
 * Check's assertions are not used inside the worker threads (a failing
 * ck_assert exits or longjmps from the wrong thread): workers record, the
 * main thread asserts. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <pthread.h>

enum { D = 24, N = 96, NT = 40, STEPS = 12, REPEATS = 2 };
static const size_t widths[] = {80, 64, 5};
#define L (sizeof widths / sizeof widths[0])

typedef struct result {
    size_t P, O;
    double *theta;          /* after training */
    double *y;              /* forward on the test inputs, NT x O */
    double *g;              /* VJP on the test inputs */
    double loss[STEPS];
} result;

static void result_free(result *r)
{
    free(r->theta), free(r->y), free(r->g);
    memset(r, 0, sizeof *r);
}

/* The whole computation in ctx.  Returns TN_OK or the first failure, with
 * the context message copied into msg. */
static tn_status compute(tn_ctx *ctx, result *r, char *msg, size_t msglen)
{
    tn_status st = TN_OK;
    tn_net *net = NULL;
    tn_trainer *tr = NULL;
    const size_t d = D;
    double *x = tu_random(N * D, 1, 1.0), *xt = tu_random(NT * D, 3, 1.0);
    double *y = tu_random(N * widths[L - 1], 2, 1.0), *u = tu_random(NT * widths[L - 1], 4, 1.0);
    memset(r, 0, sizeof *r);
#define TRY(expr)                          \
    do {                                   \
        if ((st = (expr)) != TN_OK) goto out; \
    } while (0)
    TRY(tn_net_create(ctx, &d, 1, &net));
    for (size_t l = 0; l < L; l++) {
        TRY(tn_net_add_dense(net, widths[l]));
        if (l + 1 < L) TRY(tn_net_add_activation(net, l ? TN_ACT_RELU : TN_ACT_TANH));
    }
    TRY(tn_net_init(net, 2024));
    r->P = tn_net_num_params(net);
    r->O = tn_net_output_dim(net);
    r->theta = malloc(r->P * sizeof(double));
    r->g = malloc(r->P * sizeof(double));
    r->y = malloc(NT * r->O * sizeof(double));
    TRY(tn_trainer_create(net, &tr));
    TRY(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TRY(tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-2));
    for (int s = 0; s < STEPS; s++) TRY(tn_trainer_step(tr, x, y, N, &r->loss[s]));
    TRY(tn_net_get_params(net, r->theta, r->P));
    TRY(tn_net_forward(net, xt, NT, r->y));
    TRY(tn_net_vjp(net, xt, NT, u, r->g));
#undef TRY
out:
    if (st != TN_OK) snprintf(msg, msglen, "%s: %s", tn_status_string(st), tn_ctx_errmsg(ctx));
    tn_trainer_free(tr);
    tn_net_free(net);
    free(x), free(xt), free(y), free(u);
    return st;
}

/* Bitwise comparison; on a difference, the largest relative one in *rel. */
static int same(const double *a, const double *b, size_t n, double *rel)
{
    *rel = tu_rel_err(a, b, n, 1e-300);
    return memcmp(a, b, n * sizeof(double)) == 0;
}

typedef struct worker {
    int blas_threads;
    pthread_barrier_t *start;
    result r[REPEATS];
    tn_status st;
    char msg[600];
    int threads_read;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    tn_ctx *ctx = NULL;
    w->st = tn_ctx_create(&ctx);
    if (w->st == TN_OK) w->st = tn_ctx_set_threads(ctx, w->blas_threads);
    if (w->st == TN_OK) w->threads_read = tn_ctx_get_threads(ctx);
    pthread_barrier_wait(w->start);         /* both compute at the same time */
    for (int k = 0; k < REPEATS && w->st == TN_OK; k++)
        w->st = compute(ctx, &w->r[k], w->msg, sizeof w->msg);
    tn_ctx_free(ctx);
    return NULL;
}

/* r against ref: bit-identical, or (tol > 0) within tol relative.  Returns
 * whether it was bit-identical. */
static int check_against(const result *ref, const result *r, const char *who, double tol)
{
    double rel[4] = {0, 0, 0, 0};
    int bits = 1;
    ck_assert_uint_eq(r->P, ref->P);
    ck_assert_uint_eq(r->O, ref->O);
    bits &= same(r->loss, ref->loss, STEPS, &rel[0]);
    bits &= same(r->theta, ref->theta, ref->P, &rel[1]);
    bits &= same(r->y, ref->y, NT * ref->O, &rel[2]);
    bits &= same(r->g, ref->g, ref->P, &rel[3]);
    static const char *const what[] = {"losses", "theta", "forward", "vjp"};
    for (int i = 0; i < 4; i++) {
        if (tol == 0)
            ck_assert_msg(rel[i] == 0 && bits, "%s: %s not bit-identical (rel %.3g)", who,
                          what[i], rel[i]);
        else
            ck_assert_msg(rel[i] <= tol, "%s: %s differs by %.3g relative (> %.0e)", who,
                          what[i], rel[i], tol);
    }
    return bits;
}

START_TEST(concurrent_contexts_reproduce_single_thread)
{
    /* References on the main thread, nothing else running: 1 and 2 BLAS
     * threads. */
    result ref[2];
    for (int t = 0; t < 2; t++) {
        tn_ctx *ctx = NULL;
        ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
        ck_assert_int_eq(tn_ctx_get_threads(ctx), 1);
        TN_CK(ctx, tn_ctx_set_threads(ctx, t + 1));
        char msg[600] = "";
        ck_assert_msg(compute(ctx, &ref[t], msg, sizeof msg) == TN_OK, "reference: %s", msg);
        tn_ctx_free(ctx);
    }
    for (int s = 0; s < STEPS; s++) ck_assert(isfinite(ref[0].loss[s]));
    /* Training did something (otherwise equal thetas would prove little). */
    ck_assert_msg(ref[0].loss[STEPS - 1] < ref[0].loss[0], "loss %.17g -> %.17g",
                  ref[0].loss[0], ref[0].loss[STEPS - 1]);
    const int ref_bits = check_against(&ref[0], &ref[1], "main thread, 2 BLAS threads", 1e-12);

    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
    worker w[2];
    memset(w, 0, sizeof w);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        w[i].blas_threads = i + 1;
        w[i].start = &start;
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < 2; i++) {
        ck_assert_msg(w[i].st == TN_OK, "worker %d: %s", i, w[i].msg);
        ck_assert_int_eq(w[i].threads_read, w[i].blas_threads);
    }
    char who[80];
    for (int k = 0; k < REPEATS; k++) {
        snprintf(who, sizeof who, "thread with 1 BLAS thread, run %d", k);
        check_against(&ref[0], &w[0].r[k], who, 0);
        snprintf(who, sizeof who, "thread with 2 BLAS threads vs main thread's 2, run %d", k);
        check_against(&ref[1], &w[1].r[k], who, 0);
        snprintf(who, sizeof who, "thread with 2 BLAS threads vs 1, run %d", k);
        check_against(&ref[0], &w[1].r[k], who, 1e-12);
    }
    printf("threads: 2 BLAS threads %s the 1-thread results\n",
           ref_bits ? "reproduce bit for bit" : "differ in the last bits from");

    for (int i = 0; i < 2; i++)
        for (int k = 0; k < REPEATS; k++) result_free(&w[i].r[k]);
    result_free(&ref[0]);
    result_free(&ref[1]);
}
END_TEST

/* ---- error messages stay in their context ---- */

enum { HAMMER = 2000 };

typedef struct msg_worker {
    int id;
    pthread_barrier_t *bar;
    int ok_isolated;         /* phase test: my message survived the other's failure */
    int ok_own;              /* phase test: my failure gave my message */
    int hammer_bad;          /* hammer: times my message was not mine */
    char seen[600];          /* the first wrong message seen */
    tn_status st;
} msg_worker;

/* A failure whose message is specific to the worker: thread 0 sets a
 * thread count of -(1000 + i), thread 1 of 5000 + i; the message quotes the
 * number. */
static int provoke(tn_ctx *ctx, int id, int i, char *expect, size_t len)
{
    const int n = id == 0 ? -(1000 + i) : 5000 + i;
    snprintf(expect, len, "%d", n);
    return tn_ctx_set_threads(ctx, n) == TN_E_INVALID_ARG;
}

static void *run_msg_worker(void *arg)
{
    msg_worker *w = arg;
    tn_ctx *ctx = NULL;
    char mine[64], num[32];
    w->st = tn_ctx_create(&ctx);
    if (w->st != TN_OK) {
        /* Keep the barrier protocol so the other thread is not stuck. */
        for (int b = 0; b < 6; b++) pthread_barrier_wait(w->bar);
        return NULL;
    }
    /* Phase 1: both record a message of their own. */
    provoke(ctx, w->id, 0, num, sizeof num);
    snprintf(mine, sizeof mine, "%s", tn_ctx_errmsg(ctx));
    pthread_barrier_wait(w->bar);
    /* Phase 2: thread 0 fails again (a different message) while 1 waits;
     * phase 3 the other way round. */
    w->ok_isolated = 1;
    w->ok_own = 1;
    for (int turn = 0; turn < 2; turn++) {
        if (turn == w->id) {
            if (!provoke(ctx, w->id, 1, num, sizeof num) || !strstr(tn_ctx_errmsg(ctx), num))
                w->ok_own = 0;
            snprintf(mine, sizeof mine, "%s", tn_ctx_errmsg(ctx));
        }
        pthread_barrier_wait(w->bar);
        if (turn != w->id && strcmp(tn_ctx_errmsg(ctx), mine) != 0) {
            w->ok_isolated = 0;
            snprintf(w->seen, sizeof w->seen, "%s", tn_ctx_errmsg(ctx));
        }
        pthread_barrier_wait(w->bar);
    }
    /* Phase 4: both fail as fast as they can; after each failure the
     * message must be the one just provoked (a shared buffer would show the
     * other thread's number now and then). */
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < HAMMER; i++) {
        if (!provoke(ctx, w->id, i, num, sizeof num) || !strstr(tn_ctx_errmsg(ctx), num)) {
            if (w->hammer_bad++ == 0) snprintf(w->seen, sizeof w->seen, "%s", tn_ctx_errmsg(ctx));
        }
    }
    tn_ctx_free(ctx);
    return NULL;
}

START_TEST(error_messages_are_per_context)
{
    pthread_barrier_t bar;
    ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 2), 0);
    msg_worker w[2];
    memset(w, 0, sizeof w);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        w[i].id = i;
        w[i].bar = &bar;
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_msg_worker, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(w[i].st, TN_OK);
        ck_assert_msg(w[i].ok_own, "thread %d: its failure did not give its message", i);
        ck_assert_msg(w[i].ok_isolated, "thread %d: message changed by the other thread: '%s'", i,
                      w[i].seen);
        ck_assert_msg(w[i].hammer_bad == 0, "thread %d: %d foreign messages, first '%s'", i,
                      w[i].hammer_bad, w[i].seen);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("contexts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, concurrent_contexts_reproduce_single_thread);
    tcase_add_test(tc, error_messages_are_per_context);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
