/* test_parallel.c -- the library's threads (lib/kernel/parallel.h) and what
 * runs on them: products, activation series, the optimizer step.
 *
 * What is asserted, and why:
 *   - tni_parallel runs every task exactly once, for 1..8 threads and 0..200
 *     tasks, also from two host threads at once (each has its own pool), in
 *     a forked child (whose pool the fork left behind), and after the pool
 *     was released.
 *   - A thread count is bounded by the CPUs the process may run on
 *     (sched_getaffinity): tni_threads_usable(1024) is that count, and
 *     tn_ctx_set_threads keeps what it was given in [1, 1024] and refuses
 *     the rest with a message.
 *   - GEMM and SYRK cut into bands on 2..5 threads agree with direct loops
 *     within |C - C_exact| <= 2 (k + 2) u |A||B| elementwise, like one thread
 *     (test_kernels); each element is still one BLIS k-loop, so only the
 *     choice of BLIS's path for a band's size can change its last bits.
 *   - The threaded activation series (forward and reverse, smooth and
 *     piecewise-linear, orders 0..6) equal the serial functions bit for
 *     bit: they are the serial functions run on ranges of elements.
 *   - The fused optimizer step (every optimizer, clipping on and off) gives
 *     the same bits on 1, 2 and 3 threads (its sums run over fixed blocks),
 *     and its norm equals sqrt(sum g^2) computed in long double to 1e-12:
 *     a sum of P = 1e5 positive terms in double is within P u = 1.1e-11 of
 *     the exact one, half that for its square root (observed 3e-16; under
 *     valgrind, which computes long double as double, 3e-15).
 *     The update formulas themselves are tested against independent
 *     computations by test_train. */
#define _GNU_SOURCE     /* CPU_COUNT */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/blas.h"
#include "kernel/parallel.h"
#include "kernel/series.h"
#include "train/optim.h"

typedef struct counts {
    atomic_int hits[256];
} counts;

static void count_task(void *arg, size_t t, double *scratch)
{
    counts *c = arg;
    if (scratch) scratch[0] = (double)t;    /* every thread's scratch is writable */
    atomic_fetch_add(&c->hits[t], 1);
}

static int run_counts(int threads, size_t tasks)
{
    counts c;
    for (size_t i = 0; i < 256; i++) atomic_init(&c.hits[i], 0);
    double scratch[1];
    tni_parallel(threads, tasks, count_task, &c, scratch);
    for (size_t i = 0; i < 256; i++)
        if (atomic_load(&c.hits[i]) != (i < tasks ? 1 : 0)) return 0;
    return 1;
}

START_TEST(every_task_runs_once)
{
    for (int threads = 1; threads <= 8; threads++)
        for (size_t tasks = 0; tasks <= 200; tasks += 1 + tasks / 4)
            ck_assert_msg(run_counts(threads, tasks), "threads %d tasks %zu", threads, tasks);
    tni_pool_release();
    ck_assert(run_counts(2, 17));
    tni_pool_release();
    tni_pool_release();     /* nothing left: no-op */
}
END_TEST

static void *host_thread(void *arg)
{
    int *ok = arg;
    *ok = 1;
    for (int r = 0; r < 200; r++) *ok &= run_counts(2 + r % 3, (size_t)(r % 50));
    return NULL;
}

START_TEST(two_host_threads_have_their_own_pools)
{
    pthread_t a, b;
    int oka = 0, okb = 0;
    ck_assert_int_eq(pthread_create(&a, NULL, host_thread, &oka), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, host_thread, &okb), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    ck_assert(oka && okb);
}
END_TEST

START_TEST(a_forked_child_starts_a_new_pool)
{
    ck_assert(run_counts(2, 50));           /* the parent's pool exists */
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(run_counts(2, 50) && run_counts(3, 9) ? 0 : 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert(run_counts(2, 50));
}
END_TEST

START_TEST(thread_counts_are_bounded)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    const int cpus = CPU_COUNT(&set);
    ck_assert_int_eq(tni_threads_usable(1024), cpus);
    ck_assert_int_eq(tni_threads_usable(1), 1);
    ck_assert_int_eq(tni_threads_usable(0), 1);
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    ck_assert_int_eq(tn_ctx_set_threads(ctx, 1024), TN_OK);
    ck_assert_int_eq(tn_ctx_get_threads(ctx), 1024);
    ck_assert_int_eq(tn_ctx_set_threads(ctx, 1025), TN_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "1025 is outside [1, 1024]"));
    ck_assert_int_eq(tn_ctx_set_threads(ctx, 0), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ctx_set_threads(ctx, -3), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_ctx_get_threads(ctx), 1024);
    /* 1024 threads asked for on a few CPUs: the work runs on those CPUs. */
    const size_t d = 50;
    tn_net *net;
    ck_assert_int_eq(tn_net_create(ctx, &d, 1, &net), TN_OK);
    ck_assert_int_eq(tn_net_add_dense(net, 300), TN_OK);
    ck_assert_int_eq(tn_net_init(net, 1), TN_OK);
    double *x = tu_random(400 * d, 3, 1.0), *y = malloc(400 * 300 * sizeof(double));
    ck_assert_int_eq(tn_net_forward(net, x, 400, y), TN_OK);
    free(x), free(y);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

static void check_gemm(int threads, int ta, int tb, size_t m, size_t n, size_t k)
{
    double *A = tu_random(m * k, 1 + m, 1.0), *B = tu_random(k * n, 2 + n, 1.0);
    double *C = tu_random(m * n, 3, 1.0);
    double *R = malloc(m * n * sizeof(double));
    memcpy(R, C, m * n * sizeof(double));
    tni_gemm(threads, ta ? TNI_TRANS : TNI_NOTRANS, tb ? TNI_TRANS : TNI_NOTRANS, m, n, k, 1.0, A,
             ta ? m : k, B, tb ? k : n, 1.0, C, n);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            long double s = R[i * n + j], a = fabs(R[i * n + j]);
            for (size_t p = 0; p < k; p++) {
                const double x = ta ? A[p * m + i] : A[i * k + p];
                const double y = tb ? B[j * k + p] : B[p * n + j];
                s += (long double)x * y;
                a += fabsl((long double)x * y);
            }
            const double bound = (double)(2 * ((long double)k + 2) * 0x1.0p-53 * a);
            ck_assert_msg(fabs(C[i * n + j] - (double)s) <= bound,
                          "gemm %d threads %zux%zux%zu ta %d tb %d at (%zu, %zu)", threads, m, n,
                          k, ta, tb, i, j);
        }
    free(A), free(B), free(C), free(R);
}

START_TEST(banded_products_agree_with_direct_loops)
{
    static const size_t shapes[][3] = {{300, 40, 200}, {40, 300, 200}, {257, 263, 130}};
    for (int threads = 2; threads <= 5; threads++)
        for (size_t h = 0; h < 3; h++)
            for (int t = 0; t < 4; t++)
                check_gemm(threads, t / 2, t % 2, shapes[h][0], shapes[h][1], shapes[h][2]);
    for (int threads = 1; threads <= 5; threads++) {
        const size_t n = 301, k = 97;
        double *A = tu_random(n * k, 9, 1.0), *S = malloc(n * n * sizeof(double));
        for (size_t e = 0; e < n * n; e++) S[e] = -7.0;
        tni_syrk_lower(threads, n, k, 1.0, A, k, 0.0, S, n);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                if (j > i) {
                    ck_assert_double_eq(S[i * n + j], -7.0);
                    continue;
                }
                long double s = 0, a = 0;
                for (size_t p = 0; p < k; p++) {
                    s += (long double)A[i * k + p] * A[j * k + p];
                    a += fabsl((long double)A[i * k + p] * A[j * k + p]);
                }
                ck_assert_msg(fabs(S[i * n + j] - (double)s) <=
                                  (double)(2 * ((long double)k + 2) * 0x1.0p-53 * a),
                              "syrk %d threads at (%zu, %zu)", threads, i, j);
            }
        free(A), free(S);
    }
}
END_TEST

START_TEST(threaded_series_equal_serial)
{
    static const tn_activation acts[] = {TN_ACT_RELU, TN_ACT_LEAKY_RELU, TN_ACT_TANH,
                                         TN_ACT_SIGMOID, TN_ACT_ERF, TN_ACT_GELU,
                                         TN_ACT_SOFTPLUS, TN_ACT_IDENTITY};
    const size_t count = 5000;
    double *scratch = malloc(tni_act_scratch_size(TNI_MAX_ORDER) * sizeof(double));
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (size_t deg = 0; deg <= 6; deg += 2) {
            const size_t len = (deg + 1) * count;
            double *z = tu_random(len, 40 + deg, 2.0), *z2 = malloc(len * sizeof(double));
            double *c = calloc(len, sizeof(double)), *c2 = calloc(len, sizeof(double));
            memcpy(z2, z, len * sizeof(double));
            tni_act_series(acts[a], 0.1, deg, count, z, count, c, count, scratch, 0);
            for (int threads = 2; threads <= 4; threads++) {
                double *z3 = malloc(len * sizeof(double)), *c3 = calloc(len, sizeof(double));
                memcpy(z3, z2, len * sizeof(double));
                tni_act_series_threaded(threads, acts[a], 0.1, deg, count, z3, count, c3, count,
                                        scratch, 0);
                ck_assert_mem_eq(z3, z, len * sizeof(double));
                ck_assert_mem_eq(c3, c, len * sizeof(double));
                /* From a given base (y_0 in z's order-0 row, c_0 in c's, the
                 * rest of c unset): the same bits, on 1 to 3 threads. */
                if (tni_act_base_reusable(acts[a]) && deg > 0) {
                    memcpy(z3, z2, len * sizeof(double));
                    memcpy(z3, z, count * sizeof(double));
                    for (size_t e = 0; e < len; e++) c3[e] = NAN;
                    memcpy(c3, c, count * sizeof(double));
                    tni_act_series_threaded(threads - 1, acts[a], 0.1, deg, count, z3, count, c3,
                                            count, scratch, 1);
                    ck_assert_mem_eq(z3, z, len * sizeof(double));
                    ck_assert_mem_eq(c3, c, len * sizeof(double));
                }
                /* Reverse, on cotangents g. */
                const int lin = tni_act_is_linear_pieces(acts[a]);
                double *g = tu_random(len, 77, 1.0), *g2 = malloc(len * sizeof(double));
                memcpy(g2, g, len * sizeof(double));
                tni_act_series_reverse(lin, deg > 0, deg, deg, count, g, count, c, count);
                tni_act_series_reverse_threaded(threads, lin, deg > 0, deg, deg, count, g2, count,
                                                c, count);
                ck_assert_mem_eq(g2, g, len * sizeof(double));
                free(g), free(g2), free(z3), free(c3);
            }
            free(z), free(z2), free(c), free(c2);
        }
    free(scratch);
}
END_TEST

START_TEST(optimizer_step_is_the_same_on_any_thread_count)
{
    const size_t P = 100003;   /* a dozen blocks and a ragged end */
    double *theta = tu_random(P, 1, 1.0), *grad = tu_random(P, 2, 1e-2);
    double *s0 = tu_random(P, 3, 1e-3), *s1 = tu_random(P, 4, 1e-3);
    for (size_t i = 0; i < P; i++) {   /* square averages (RMSProp s0, Adam s1) */
        s0[i] = fabs(s0[i]);
        s1[i] = fabs(s1[i]);
    }
    long double ss = 0;
    for (size_t i = 0; i < P; i++) ss += (long double)grad[i] * grad[i];
    const double norm = (double)sqrtl(ss);
    for (int kind = TN_OPT_SGD; kind <= TN_OPT_ADAM; kind++)
        for (int clip = 0; clip < 2; clip++) {
            tni_opt o = {kind, 1e-2, 0.9, 0.9, 0.999, 1e-8, 1e-4, 3};
            double *ref[3] = {NULL, NULL, NULL};
            for (int threads = 1; threads <= 3; threads++) {
                double *out[3];
                for (int v = 0; v < 3; v++) out[v] = calloc(P, sizeof(double));
                double gnorm;
                ck_assert_int_eq(tni_opt_step(&o, threads, P, clip ? norm / 2 : 0.0, theta, grad,
                                              s0, s1, out[0], out[1], out[2], &gnorm),
                                 TNI_OPT_OK);
                ck_assert_double_le(fabs(gnorm - norm), 1e-12 * norm);
                for (int v = 0; v < 3; v++) {
                    if (threads == 1) {
                        ref[v] = out[v];
                        continue;
                    }
                    ck_assert_msg(memcmp(out[v], ref[v], P * sizeof(double)) == 0,
                                  "optimizer %d clip %d threads %d: vector %d differs", kind,
                                  clip, threads, v);
                    free(out[v]);
                }
            }
            for (int v = 0; v < 3; v++) free(ref[v]);
        }
    /* A non-finite gradient is reported, whatever the thread count. */
    grad[P / 2] = NAN;
    double *tn = malloc(P * sizeof(double)), gnorm;
    tni_opt o = {TN_OPT_SGD, 1e-2, 0, 0.9, 0.999, 1e-8, 0, 1};
    for (int threads = 1; threads <= 2; threads++)
        ck_assert_int_eq(tni_opt_step(&o, threads, P, 0.0, theta, grad, NULL, NULL, tn, NULL,
                                      NULL, &gnorm),
                         TNI_OPT_GRAD_NOT_FINITE);
    grad[P / 2] = 1e300;    /* finite, but the update overflows */
    o.lr = 1e10;
    ck_assert_int_eq(tni_opt_step(&o, 2, P, 0.0, theta, grad, NULL, NULL, tn, NULL, NULL, &gnorm),
                     TNI_OPT_OVERFLOW);
    ck_assert_double_eq_tol(gnorm, 1e300, 1e285);    /* the scaled norm: no overflow */
    /* Written over the gradient, a sum of squares that is not finite or
     * underflows cannot be looked into: TNI_OPT_REDO.  Apart, the scaled
     * loop gives the norm of a gradient whose squares all underflow to 0;
     * a gradient of zeros has norm 0 either way. */
    o.lr = 1e-2;
    const double bad[] = {1e300, NAN, INFINITY, 1e-300};
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < P; i++) grad[i] = k == 3 ? 1e-300 : 0.5;
        grad[P / 3] = bad[k];
        memcpy(tn, grad, P * sizeof(double));
        ck_assert_int_eq(tni_opt_step(&o, 2, P, 0.0, theta, tn, NULL, NULL, tn, NULL, NULL,
                                      &gnorm),
                         TNI_OPT_REDO);
    }
    const int apart = tni_opt_step(&o, 2, P, 0.0, theta, grad, NULL, NULL, tn, NULL, NULL,
                                   &gnorm);
    ck_assert_int_eq(apart, TNI_OPT_OK);
    /* the scaled loop's rounding: a few ulp per term over P terms */
    ck_assert_double_eq_tol(gnorm, 1e-300 * sqrt((double)P), 1e-12 * 1e-300 * sqrt((double)P));
    memset(tn, 0, P * sizeof(double));
    ck_assert_int_eq(tni_opt_step(&o, 2, P, 0.0, theta, tn, NULL, NULL, tn, NULL, NULL, &gnorm),
                     TNI_OPT_OK);
    ck_assert_double_eq(gnorm, 0.0);
    free(tn), free(theta), free(grad), free(s0), free(s1);
}
END_TEST

/* The update by direct scalar loops over torch.optim's formulas (optim.h),
 * and the norm by the order optim.c documents: per block of 8192, eight
 * lanes (lane l the elements lo + l + 8 q, lane 0 then the ragged tail),
 * the lanes added in order, the blocks added in order. */
static double lanes_norm(const double *g, size_t P)
{
    const size_t block = 8192;
    double total = 0.0;
    for (size_t lo = 0; lo < P; lo += block) {
        const size_t hi = lo + block < P ? lo + block : P, full = lo + (hi - lo) / 8 * 8;
        double lane[8] = {0};
        for (size_t i = lo; i < full; i++) lane[(i - lo) % 8] += g[i] * g[i];
        for (size_t i = full; i < hi; i++) lane[0] += g[i] * g[i];
        double s = 0.0;
        for (int l = 0; l < 8; l++) s += lane[l];
        total += s;
    }
    return sqrt(total);
}

START_TEST(optimizer_step_equals_direct_loops_bit_for_bit)
{
    /* The vectorized update (whichever clone the CPU runs) computes each
     * element as the scalar formula does, rounding for rounding (no fused
     * multiply-add: -ffp-contract=off), and sums its norm in the documented
     * lanes: a checkpoint resumed by another build or machine goes on with
     * the same bits. */
    const size_t P = 3 * 8192 + 1007;      /* a ragged tail of 7 */
    double *theta = tu_random(P, 11, 1.0);
    double *s0 = tu_random(P, 13, 1e-3), *s1 = tu_random(P, 14, 1e-3);
    for (size_t i = 0; i < P; i++) {
        s0[i] = fabs(s0[i]);
        s1[i] = fabs(s1[i]);
    }
    double *out[3], *ref[3];
    for (int v = 0; v < 3; v++) {
        out[v] = calloc(P, sizeof(double));
        ref[v] = calloc(P, sizeof(double));
    }
    for (int kind = TN_OPT_SGD; kind <= TN_OPT_ADAM; kind++)
        for (int t = 1; t <= 2; t++)
            for (int mu_on = 0; mu_on < 2; mu_on++) {
                const double lr = 1e-2, mu = mu_on ? 0.9 : 0.0, b1 = 0.9, b2 = 0.999;
                const double eps = 1e-8, wd = 1e-4;
                tni_opt o = {kind, lr, mu, b1, b2, eps, wd, (uint64_t)t};
                /* A gradient of its own for each case: twenty norms, each a
                 * sum whose rounding depends on the order of its terms. */
                double *grad = tu_random(P, (uint64_t)(100 + 4 * kind + 2 * t + mu_on), 1e-2);
                for (size_t i = P - 7; i < P; i++) grad[i] *= 100.0;   /* the ragged tail counts */
                const double norm = lanes_norm(grad, P);
                for (size_t i = 0; i < P; i++) {
                    const double g = grad[i] + wd * theta[i];
                    double tn = 0, n0 = 0, n1 = 0;
                    switch (kind) {
                    case TN_OPT_SGD: tn = theta[i] - lr * g; break;
                    case TN_OPT_MOMENTUM:
                    case TN_OPT_NESTEROV: {
                        const double b = t == 1 ? g : mu * s0[i] + g;
                        n0 = b;
                        tn = theta[i] - lr * (kind == TN_OPT_NESTEROV ? g + mu * b : b);
                        break;
                    }
                    case TN_OPT_RMSPROP: {
                        const double v = b2 * s0[i] + (1.0 - b2) * g * g;
                        n0 = v;
                        if (mu > 0) {
                            n1 = mu * s1[i] + g / (sqrt(v) + eps);
                            tn = theta[i] - lr * n1;
                        } else {
                            n1 = s1[i];
                            tn = theta[i] - lr * (g / (sqrt(v) + eps));
                        }
                        break;
                    }
                    default: {
                        const double w = 1.0 - b1, d = g - s0[i];
                        const double m = w < 0.5 ? s0[i] + w * d : g - d * (1.0 - w);
                        const double v = b2 * s1[i] + (1.0 - b2) * g * g;
                        const double step = lr / (1.0 - pow(b1, t));
                        n0 = m;
                        n1 = v;
                        tn = theta[i] - step * (m / (sqrt(v) / sqrt(1.0 - pow(b2, t)) + eps));
                    }
                    }
                    ref[0][i] = tn;
                    ref[1][i] = n0;
                    ref[2][i] = n1;
                }
                double gnorm;
                ck_assert_int_eq(tni_opt_step(&o, 1, P, 0.0, theta, grad, s0, s1, out[0],
                                              out[1], out[2], &gnorm),
                                 TNI_OPT_OK);
                ck_assert_msg(gnorm == norm, "optimizer %d: norm %.17g, lanes give %.17g", kind,
                              gnorm, norm);
                const int ns = kind == TN_OPT_SGD ? 0 : kind <= TN_OPT_NESTEROV ? 1 : 2;
                for (int over = 0; over < 2; over++) {
                    if (over) {
                        /* the new parameters written over the gradient */
                        memcpy(out[0], grad, P * sizeof(double));
                        for (int v = 1; v < 3; v++) memset(out[v], 0, P * sizeof(double));
                        ck_assert_int_eq(tni_opt_step(&o, 2, P, 0.0, theta, out[0], s0, s1,
                                                      out[0], out[1], out[2], &gnorm),
                                         TNI_OPT_OK);
                        ck_assert(gnorm == norm);
                    }
                    for (int v = 0; v <= ns; v++)
                        for (size_t i = 0; i < P; i++)
                            ck_assert_msg(memcmp(&out[v][i], &ref[v][i], sizeof(double)) == 0,
                                          "optimizer %d t %d mu %g over %d: vector %d element "
                                          "%zu is %.17g, the direct loop gives %.17g",
                                          kind, t, mu, over, v, i, out[v][i], ref[v][i]);
                }
                free(grad);
            }
    for (int v = 0; v < 3; v++) free(out[v]), free(ref[v]);
    free(theta), free(s0), free(s1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("parallel");
    TCase *tc = tcase_create("parallel");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, every_task_runs_once);
    tcase_add_test(tc, two_host_threads_have_their_own_pools);
    tcase_add_test(tc, a_forked_child_starts_a_new_pool);
    tcase_add_test(tc, thread_counts_are_bounded);
    tcase_add_test(tc, banded_products_agree_with_direct_loops);
    tcase_add_test(tc, threaded_series_equal_serial);
    tcase_add_test(tc, optimizer_step_is_the_same_on_any_thread_count);
    tcase_add_test(tc, optimizer_step_equals_direct_loops_bit_for_bit);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
