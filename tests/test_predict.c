/* test_predict.c -- the closed-form linearized predictor and GP inference.
 *
 * Every result is compared with an independent computation written here:
 * linearized training by the trainer on a network whose exact NTK is built
 * from per-example VJPs, gradient descent iterated step by step, Gaussian
 * elimination with partial pivoting, a matrix exponential by scaling and
 * squaring, and series expansions for the small-eigenvalue factors.  None
 * of them shares code with the library's eigendecomposition path.
 *
 * Tolerances: the kernels here have condition numbers below ~1e4, so
 * solves and eigendecompositions in double agree to ~1e-12 relative; 1e-10
 * leaves two orders of margin while a wrong formula (a missing 1/N, a wrong
 * sign, an off-by-one in t) is off by O(1e-2) or more.  Where a comparison
 * is against an approximation (tiny-step gradient descent for the flow) the
 * tolerance is the approximation's error bound, derived at the test. */
#include "testutil.h"

#include <float.h>

TU_CONTEXT_PER_TEST

/*---------------------------------------------------------------------
 * Independent linear algebra (naive loops, no BLAS, no LAPACK)
 *-------------------------------------------------------------------*/

/* C (m x n) = A (m x k) B (k x n). */
static void mm(size_t m, size_t n, size_t k, const double *A, const double *B, double *C)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t l = 0; l < k; l++) s += A[i * k + l] * B[l * n + j];
            C[i * n + j] = s;
        }
}

/* C (m x n) = A (m x k) B^T, B n x k. */
static void mmt(size_t m, size_t n, size_t k, const double *A, const double *B, double *C)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t l = 0; l < k; l++) s += A[i * k + l] * B[j * k + l];
            C[i * n + j] = s;
        }
}

/* X (n x nrhs) = A^-1 B, Gaussian elimination with partial pivoting. */
static void ge_solve(size_t n, const double *A, size_t nrhs, const double *B, double *X)
{
    double *a = malloc(n * n * sizeof(double));
    memcpy(a, A, n * n * sizeof(double));
    memcpy(X, B, n * nrhs * sizeof(double));
    for (size_t c = 0; c < n; c++) {
        size_t piv = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[piv * n + c])) piv = r;
        for (size_t j = 0; j < n; j++) {
            const double t = a[c * n + j];
            a[c * n + j] = a[piv * n + j];
            a[piv * n + j] = t;
        }
        for (size_t j = 0; j < nrhs; j++) {
            const double t = X[c * nrhs + j];
            X[c * nrhs + j] = X[piv * nrhs + j];
            X[piv * nrhs + j] = t;
        }
        for (size_t r = c + 1; r < n; r++) {
            const double f = a[r * n + c] / a[c * n + c];
            for (size_t j = c; j < n; j++) a[r * n + j] -= f * a[c * n + j];
            for (size_t j = 0; j < nrhs; j++) X[r * nrhs + j] -= f * X[c * nrhs + j];
        }
    }
    for (size_t c = n; c-- > 0;)
        for (size_t j = 0; j < nrhs; j++) {
            double s = X[c * nrhs + j];
            for (size_t k = c + 1; k < n; k++) s -= a[c * n + k] * X[k * nrhs + j];
            X[c * nrhs + j] = s / a[c * n + c];
        }
    free(a);
}

static double fro(const double *a, size_t n)
{
    return sqrt(tu_dot(a, a, n));
}

static double fro_diff(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

/* The largest eigenvalue of a symmetric PSD matrix by power iteration: only
 * used to pick learning rates, so a few digits are plenty. */
static double lambda_max(const double *K, size_t m)
{
    double *v = malloc(m * sizeof(double)), *w = malloc(m * sizeof(double)), lam = 0;
    for (size_t i = 0; i < m; i++) v[i] = 1.0 + 0.01 * (double)i;
    for (int it = 0; it < 2000; it++) {
        mm(m, 1, m, K, v, w);
        lam = sqrt(tu_dot(w, w, m)) / sqrt(tu_dot(v, v, m));
        const double s = 1.0 / sqrt(tu_dot(w, w, m));
        for (size_t i = 0; i < m; i++) v[i] = w[i] * s;
    }
    free(v), free(w);
    return lam;
}

/* A positive definite kernel with its test blocks: random features F
 * ((n + nt) x k), joint = F F^T / k + c I.  Only the lower triangle is
 * computed, so the blocks are exactly symmetric. */
typedef struct kern {
    size_t n, nt;
    double *K, *Kt, *Ktt;       /* n x n, nt x n, nt x nt */
} kern;

static kern make_kern(size_t n, size_t nt, size_t k, double c, uint64_t seed)
{
    const size_t N = n + nt;
    double *F = tu_random(N * k, seed, 1.0), *J = malloc(N * N * sizeof(double));
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = 0;
            for (size_t l = 0; l < k; l++) s += F[i * k + l] * F[j * k + l];
            J[i * N + j] = J[j * N + i] = s / (double)k + (i == j ? c : 0.0);
        }
    kern r = {n, nt, malloc(n * n * sizeof(double)), malloc(nt * n * sizeof(double) + 1),
              malloc(nt * nt * sizeof(double) + 1)};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) r.K[i * n + j] = J[i * N + j];
    for (size_t a = 0; a < nt; a++) {
        for (size_t j = 0; j < n; j++) r.Kt[a * n + j] = J[(n + a) * N + j];
        for (size_t b = 0; b < nt; b++) r.Ktt[a * nt + b] = J[(n + a) * N + n + b];
    }
    free(F), free(J);
    return r;
}

static void free_kern(kern *k)
{
    free(k->K), free(k->Kt), free(k->Ktt);
}

/* (r O) x (c O) = A (r x c) kron I_O, rows (i, o), columns (j, p). */
static double *kron_eye(const double *A, size_t r, size_t c, size_t O)
{
    double *B = calloc(r * O * c * O, sizeof(double));
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++)
            for (size_t o = 0; o < O; o++) B[(i * O + o) * (c * O) + j * O + o] = A[i * c + j];
    return B;
}

/* Gradient descent on the linearized model, step by step: with r = f - Y,
 * f <- f - h K r and f* <- f* - h K*X r.  The kernel (m x m) acts on r
 * seen as m x cols: traced m = n, cols = O; full m = n O, cols = 1. */
static void gd_iterate(size_t m, size_t cols, size_t mt, const double *K, const double *Kt,
                       double h, int steps, const double *f0, const double *Y,
                       const double *f0t, double *f, double *ft)
{
    const size_t nv = m * cols;
    double *r = malloc(nv * sizeof(double)), *d = malloc(nv * sizeof(double)),
           *dt = malloc(mt * cols * sizeof(double) + 1);
    memcpy(f, f0, nv * sizeof(double));
    if (ft) memcpy(ft, f0t, mt * cols * sizeof(double));
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < nv; i++) r[i] = f[i] - Y[i];
        mm(m, cols, m, K, r, d);
        if (ft) {
            mm(mt, cols, m, Kt, r, dt);
            for (size_t i = 0; i < mt * cols; i++) ft[i] -= h * dt[i];
        }
        for (size_t i = 0; i < nv; i++) f[i] -= h * d[i];
    }
    free(r), free(d), free(dt);
}

/* Kernel regression, the t = infinity limit: f* = f0* - K*X K^-1 (f0 - Y). */
static void kernel_regression(size_t m, size_t cols, size_t mt, const double *K,
                              const double *Kt, const double *f0, const double *Y,
                              const double *f0t, double *ft)
{
    const size_t nv = m * cols;
    double *r = malloc(nv * sizeof(double)), *w = malloc(nv * sizeof(double)),
           *d = malloc(mt * cols * sizeof(double));
    for (size_t i = 0; i < nv; i++) r[i] = f0[i] - Y[i];
    ge_solve(m, K, cols, r, w);
    mm(mt, cols, m, Kt, w, d);
    for (size_t i = 0; i < mt * cols; i++) ft[i] = f0t[i] - d[i];
    free(r), free(w), free(d);
}

static tn_predictor *make_pred(const double *K, size_t n, size_t O, int full, const double *Y,
                               double eta, int mode)
{
    tn_predictor *p = NULL;
    TN_CK(ctx, tn_predictor_create(ctx, K, n, O, full, Y, &p));
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, eta));
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_TIME, mode));
    return p;
}

/* A known message from an unrelated call, so a failure that records no
 * message of its own is seen. */
static void mark(void)
{
    ck_assert_int_eq(tn_ctx_set_threads(ctx, 0), TN_E_INVALID_ARG);
}

/* The call failed with `want`, and the context's message is that call's:
 * it starts with "<fn>:" and contains `needle` (may be NULL). */
static void expect_(tn_status got, tn_status want, const char *fn, const char *needle,
                    const char *expr, int line)
{
    const char *m = tn_ctx_errmsg(ctx);
    ck_assert_msg(got == want, "line %d: %s -> %s, expected %s (%s)", line, expr,
                  tn_status_string(got), tn_status_string(want), m);
    if (fn == NULL) return;
    const size_t l = strlen(fn);
    ck_assert_msg(strncmp(m, fn, l) == 0 && m[l] == ':', "line %d: %s: message \"%s\" is not %s's",
                  line, expr, m, fn);
    if (needle)
        ck_assert_msg(strstr(m, needle) != NULL, "line %d: %s: message \"%s\" lacks \"%s\"", line,
                      expr, m, needle);
}
#define EXPECT(expr, want, fn, needle) \
    do { mark(); expect_((expr), (want), (fn), (needle), #expr, __LINE__); } while (0)
/* A NULL handle: the status only, there is no context to write to. */
#define EXPECT_NOCTX(expr, want) expect_((expr), (want), NULL, NULL, #expr, __LINE__)

/*=====================================================================
 * Predictor
 *===================================================================*/

/* Rows (i, c) of the Jacobian: d f_c(x_i) / d theta, one VJP per row with
 * the single row x_i (tn_net_vjp sums over the rows it is given). */
static void jacobian(tn_net *net, const double *x, size_t n, size_t D, size_t O, size_t P,
                     double *J)
{
    double *cot = calloc(O, sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < O; c++) {
            memset(cot, 0, O * sizeof(double));
            cot[c] = 1.0;
            TN_CK(ctx, tn_net_vjp(net, x + i * D, 1, cot, J + (i * O + c) * P));
        }
    free(cot);
}

/* MATH.md §8.4: full-batch linearized gradient descent with MSE equals the
 * closed form, on train and test points, with the exact full NTK.  The
 * trainer's f_1 runs through Taylor mode, the predictor through an
 * eigendecomposition: they share nothing but the network.  50 steps of
 * GD accumulate rounding ~1e-14; 1e-8 (MATH.md) is far above that. */
START_TEST(predictor_matches_linearized_training)
{
    const size_t D = 3, n = 6, nt = 4, O = 2, w[] = {16, 16, 2};
    tn_net *net = tu_mlp(ctx, D, w, 3, TN_ACT_TANH, TN_PARAM_NTK, 7);
    const size_t P = tn_net_num_params(net), m = n * O, mt = nt * O;
    double *x = tu_random(n * D, 1, 1.0), *xt = tu_random(nt * D, 2, 1.0),
           *y = tu_random(n * O, 3, 1.0);
    double *J = malloc(m * P * sizeof(double)), *Jt = malloc(mt * P * sizeof(double));
    jacobian(net, x, n, D, O, P, J);
    jacobian(net, xt, nt, D, O, P, Jt);
    double *K = malloc(m * m * sizeof(double)), *Kt = malloc(mt * m * sizeof(double));
    mmt(m, m, P, J, J, K);
    mmt(mt, m, P, Jt, J, Kt);
    double f0[12], f0t[8], ftr[12], fte[8], gtr[12], gte[8];
    TN_CK(ctx, tn_net_forward(net, x, n, f0));
    TN_CK(ctx, tn_net_forward(net, xt, nt, f0t));

    /* eta lambda_max / N = 1.5: the top mode oscillates (factor -0.5) while
     * converging, the others move at every speed below. */
    const double eta = 1.5 * (double)n / lambda_max(K, m);
    tn_predictor *p = make_pred(K, n, O, 1, y, eta, TN_PRED_STEPS);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, 1));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_MSE));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_SGD));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, eta));
    double moved = 0;
    for (int s = 1; s <= 50; s++) {
        TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
        if (s != 1 && s != 10 && s != 50) continue;
        TN_CK(ctx, tn_trainer_predict(tr, x, n, gtr));
        TN_CK(ctx, tn_trainer_predict(tr, xt, nt, gte));
        TN_CK(ctx, tn_predictor_predict(p, s, f0, ftr, Kt, f0t, nt, fte));
        const double etr = tu_rel_err(ftr, gtr, m, 1e-300), ete = tu_rel_err(fte, gte, mt, 1e-300);
        ck_assert_msg(etr < 1e-8 && ete < 1e-8, "t = %d: train error %.3g, test error %.3g", s,
                      etr, ete);
        moved = fro_diff(gte, f0t, mt) / fro(f0t, mt);
    }
    /* The comparison means something only if training moved the outputs. */
    ck_assert_msg(moved > 0.05, "test outputs moved only %.3g", moved);
    tn_trainer_free(tr);
    tn_predictor_free(p);
    tn_net_free(net);
    free(x), free(xt), free(y), free(J), free(Jt), free(K), free(Kt);
}
END_TEST

/* TN_PRED_STEPS against gradient descent iterated here, traced (_i 0) and
 * full (_i 1), at learning rates where GD converges (eta lambda_max / N =
 * 1.7, and 2 - 2^-20 where the top component barely decays).  At one where
 * it diverges (5) every t > 0 is refused, naming eta lambda_max / N, and
 * t = 0 is still f_0.  Rounding of the iteration ~t eps |f| relative. */
START_TEST(steps_equal_iterated_gradient_descent)
{
    const int full = _i;
    const size_t n = 5, nt = 3, O = 2;
    kern k = make_kern(n, nt, 4, 0.1, 11);
    double *K = full ? kron_eye(k.K, n, n, O) : k.K, *Kt = full ? kron_eye(k.Kt, nt, n, O) : k.Kt;
    const size_t m = full ? n * O : n, cols = full ? 1 : O, mt = full ? nt * O : nt;
    double *f0 = tu_random(n * O, 12, 1.0), *y = tu_random(n * O, 13, 1.0),
           *f0t = tu_random(nt * O, 14, 1.0);
    double ftr[10], fte[6], gtr[10], gte[6];
    const double lmax = lambda_max(K, m);
    const double ratios[] = {1.7, 2.0 - 0x1p-20, 5.0};
    const int ts[] = {0, 1, 2, 7, 37};
    for (int r = 0; r < 3; r++) {
        const double eta = ratios[r] * (double)n / lmax;
        tn_predictor *p = make_pred(K, n, O, full, y, eta, TN_PRED_STEPS);
        for (int j = 0; j < 5; j++) {
            const int t = ts[j];
            if (r == 2 && t > 0) {
                ftr[0] = fte[0] = -7;
                EXPECT(tn_predictor_predict(p, t, f0, ftr, Kt, f0t, nt, fte), TN_E_NUMERIC,
                       "tn_predictor_predict", "eta lambda_max / n_train = 5");
                ck_assert(ftr[0] == -7 && fte[0] == -7);
                continue;
            }
            TN_CK(ctx, tn_predictor_predict(p, t, f0, ftr, Kt, f0t, nt, fte));
            gd_iterate(m, cols, mt, K, Kt, eta / (double)n, t, f0, y, f0t, gtr, gte);
            const double etr = tu_rel_err(ftr, gtr, n * O, 1e-300),
                         ete = tu_rel_err(fte, gte, nt * O, 1e-300);
            ck_assert_msg(etr < 1e-10 && ete < 1e-10, "ratio %g t %d: errors %.3g %.3g",
                          ratios[r], t, etr, ete);
            if (t == 0) {
                /* Nothing has moved at t = 0, bit for bit. */
                ck_assert_mem_eq(ftr, f0, n * O * sizeof(double));
                ck_assert_mem_eq(fte, f0t, nt * O * sizeof(double));
            }
        }
        tn_predictor_free(p);
    }
    if (full) free(K), free(Kt);
    free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* Gradient flow is the limit of gradient descent with steps eta / M taken
 * M t times.  Per eigenvalue, with x = a lam (a = eta t / N) and M >= 20 x,
 *   0 <= m_flow - m_steps = e^-x (1 - e^-eps) <= e^-x eps,
 *   eps = x^2 / 2M + x^3 / 3M^2 + ... <= x^2 / (2M (1 - x/M)),
 * so |dm| <= max(x^2 e^-x) / (2M 0.95) <= 0.3 / M, and dg = dm / lam is at
 * most a max(x e^-x) / (1.9 M) <= 0.2 a / M.  Hence
 *   |df_train|_F <= 0.3 / M |r|_F,  |df_test|_F <= 0.2 a / M |K*X|_F |r|_F,
 * and the error must fall like 1/M: e(100) / e(1000) within [8, 12]
 * (the next term is O(x / M) = 5% relative at M = 100). */
START_TEST(flow_is_the_limit_of_small_steps)
{
    const size_t n = 5, nt = 3, O = 2;
    kern k = make_kern(n, nt, 4, 0.1, 21);
    double *f0 = tu_random(n * O, 22, 1.0), *y = tu_random(n * O, 23, 1.0),
           *f0t = tu_random(nt * O, 24, 1.0), r[10];
    for (size_t i = 0; i < n * O; i++) r[i] = f0[i] - y[i];
    const double lmax = lambda_max(k.K, n);
    const double t = 2.0, eta = 2.5 * (double)n / (lmax * t), a = eta * t / (double)n;
    ck_assert(a * lmax <= 5.0);
    double ftr[10], fte[6], gtr[10], gte[6], err_tr[2], err_te[2];
    tn_predictor *pf = make_pred(k.K, n, O, 0, y, eta, TN_PRED_FLOW);
    TN_CK(ctx, tn_predictor_predict(pf, t, f0, ftr, k.Kt, f0t, nt, fte));
    const double Ms[] = {100, 1000};
    for (int j = 0; j < 2; j++) {
        const double M = Ms[j];
        tn_predictor *ps = make_pred(k.K, n, O, 0, y, eta / M, TN_PRED_STEPS);
        TN_CK(ctx, tn_predictor_predict(ps, M * t, f0, gtr, k.Kt, f0t, nt, gte));
        err_tr[j] = fro_diff(ftr, gtr, n * O);
        err_te[j] = fro_diff(fte, gte, nt * O);
        ck_assert_msg(err_tr[j] <= 0.3 / M * fro(r, n * O), "M %g: train error %.3g", M,
                      err_tr[j]);
        ck_assert_msg(err_te[j] <= 0.2 * a / M * fro(k.Kt, nt * n) * fro(r, n * O),
                      "M %g: test error %.3g", M, err_te[j]);
        tn_predictor_free(ps);
    }
    const double q_tr = err_tr[0] / err_tr[1], q_te = err_te[0] / err_te[1];
    ck_assert_msg(q_tr > 8 && q_tr < 12 && q_te > 8 && q_te < 12,
                  "error ratios %.3g %.3g, expected ~10 (O(1/M))", q_tr, q_te);
    tn_predictor_free(pf);
    free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* M_{s+t} = M_s M_t: predicting s more from the outputs at t gives the
 * outputs at s + t, on train and test points (the test formula composes
 * too: Theta^-1 (I - M_s) M_t + Theta^-1 (I - M_t) = Theta^-1 (I - M_{s+t})).
 * Flow at real times, steps at whole numbers.  Rounding only: 1e-12. */
START_TEST(time_composes)
{
    const size_t n = 6, nt = 3, O = 2;
    kern k = make_kern(n, nt, 5, 0.05, 31);
    double *f0 = tu_random(n * O, 32, 1.0), *y = tu_random(n * O, 33, 1.0),
           *f0t = tu_random(nt * O, 34, 1.0);
    double a_tr[12], a_te[6], b_tr[12], b_te[6], c_tr[12], c_te[6];
    const double eta = 1.2 * (double)n / lambda_max(k.K, n);
    for (int mode = 0; mode < 2; mode++) {
        const double s = mode == TN_PRED_FLOW ? 0.7 : 7, t = mode == TN_PRED_FLOW ? 1.3 : 5;
        tn_predictor *p = make_pred(k.K, n, O, 0, y, eta, mode);
        TN_CK(ctx, tn_predictor_predict(p, t, f0, a_tr, k.Kt, f0t, nt, a_te));
        TN_CK(ctx, tn_predictor_predict(p, s, a_tr, b_tr, k.Kt, a_te, nt, b_te));
        TN_CK(ctx, tn_predictor_predict(p, s + t, f0, c_tr, k.Kt, f0t, nt, c_te));
        const double etr = tu_rel_err(b_tr, c_tr, n * O, 1e-300),
                     ete = tu_rel_err(b_te, c_te, nt * O, 1e-300);
        ck_assert_msg(etr < 1e-12 && ete < 1e-12, "mode %d: errors %.3g %.3g", mode, etr, ete);
        tn_predictor_free(p);
    }
    free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* t = INFINITY is kernel regression, f0* - K*X K^-1 (f0 - Y), solved here by
 * Gaussian elimination; the train outputs reach Y.  Traced (_i 0) and full
 * (_i 1, a full kernel that is not block-diagonal), steps and flow.  Steps
 * need eta lambda_max / N < 2: at 2.5 the limit does not exist (NUMERIC,
 * outputs untouched), while flow at the same eta converges. */
START_TEST(infinite_time_is_kernel_regression)
{
    const int full = _i;
    const size_t n = 5, nt = 3, O = 2;
    const size_t m = full ? n * O : n, mt = full ? nt * O : nt, cols = full ? 1 : O;
    kern k = make_kern(m, mt, m + 2, 0.1, 41 + (uint64_t)full);
    double *f0 = tu_random(n * O, 42, 1.0), *y = tu_random(n * O, 43, 1.0),
           *f0t = tu_random(nt * O, 44, 1.0);
    double ftr[10], fte[6], ref[6];
    kernel_regression(m, cols, mt, k.K, k.Kt, f0, y, f0t, ref);
    const double lmax = lambda_max(k.K, m);
    for (int mode = 0; mode < 2; mode++) {
        tn_predictor *p = make_pred(k.K, n, O, full, y, 1.5 * (double)n / lmax, mode);
        TN_CK(ctx, tn_predictor_predict(p, INFINITY, f0, ftr, k.Kt, f0t, nt, fte));
        const double e = tu_rel_err(fte, ref, nt * O, 1e-300);
        ck_assert_msg(e < 1e-10, "mode %d: test error %.3g", mode, e);
        ck_assert_msg(tu_rel_err(ftr, y, n * O, 1e-300) < 1e-14, "mode %d: train is not Y", mode);
        /* Train only, and nothing at all, are fine too. */
        TN_CK(ctx, tn_predictor_predict(p, INFINITY, f0, ftr, NULL, NULL, 0, NULL));
        TN_CK(ctx, tn_predictor_predict(p, INFINITY, f0, NULL, NULL, NULL, 0, NULL));

        TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 2.5 * (double)n / lmax));
        for (size_t i = 0; i < 6; i++) fte[i] = -7.0;
        if (mode == TN_PRED_STEPS) {
            EXPECT(tn_predictor_predict(p, INFINITY, f0, ftr, k.Kt, f0t, nt, fte), TN_E_NUMERIC,
                   "tn_predictor_predict", "diverges");
            for (size_t i = 0; i < nt * O; i++) ck_assert(fte[i] == -7.0);
        } else {
            TN_CK(ctx, tn_predictor_predict(p, INFINITY, f0, ftr, k.Kt, f0t, nt, fte));
            ck_assert(tu_rel_err(fte, ref, nt * O, 1e-300) < 1e-10);
        }
        tn_predictor_free(p);
    }
    free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* A traced kernel is the full kernel Theta kron I_O: same outputs, at
 * finite and infinite t, both modes.  Different code paths (O right-hand
 * columns vs one long vector, an n- vs an nO-dimensional eigenproblem):
 * rounding only, 1e-12. */
START_TEST(traced_equals_block_diagonal_full)
{
    const size_t n = 5, nt = 4, O = 3;
    kern k = make_kern(n, nt, 4, 0.1, 51);
    double *Kf = kron_eye(k.K, n, n, O), *Ktf = kron_eye(k.Kt, nt, n, O);
    double *f0 = tu_random(n * O, 52, 1.0), *y = tu_random(n * O, 53, 1.0),
           *f0t = tu_random(nt * O, 54, 1.0);
    double a_tr[15], a_te[12], b_tr[15], b_te[12];
    const double eta = 1.3 * (double)n / lambda_max(k.K, n);
    const double ts[] = {0, 1, 3, 20, INFINITY};
    for (int mode = 0; mode < 2; mode++) {
        tn_predictor *pt = make_pred(k.K, n, O, 0, y, eta, mode);
        tn_predictor *pf = make_pred(Kf, n, O, 1, y, eta, mode);
        for (int j = 0; j < 5; j++) {
            TN_CK(ctx, tn_predictor_predict(pt, ts[j], f0, a_tr, k.Kt, f0t, nt, a_te));
            TN_CK(ctx, tn_predictor_predict(pf, ts[j], f0, b_tr, Ktf, f0t, nt, b_te));
            const double etr = tu_rel_err(a_tr, b_tr, n * O, 1e-300),
                         ete = tu_rel_err(a_te, b_te, nt * O, 1e-300);
            ck_assert_msg(etr < 1e-12 && ete < 1e-12, "mode %d t %g: errors %.3g %.3g", mode,
                          ts[j], etr, ete);
        }
        tn_predictor_free(pt);
        tn_predictor_free(pf);
    }
    free(Kf), free(Ktf), free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* TN_PRED_DIAG_REG = lambda is the predictor of K + lambda I; taking it back
 * to 0 gives bit-identical results to never having set it (the
 * decomposition is redone from the same matrix). */
START_TEST(diag_reg_is_the_shifted_kernel)
{
    const size_t n = 6, nt = 3, O = 2;
    const double reg = 0.05;
    kern k = make_kern(n, nt, 5, 0.02, 61);
    double *Kr = malloc(n * n * sizeof(double));
    memcpy(Kr, k.K, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++) Kr[i * n + i] += reg;
    double *f0 = tu_random(n * O, 62, 1.0), *y = tu_random(n * O, 63, 1.0),
           *f0t = tu_random(nt * O, 64, 1.0);
    double a_tr[12], a_te[6], b_tr[12], b_te[6], c_tr[12], c_te[6];
    const double eta = 1.0 * (double)n / lambda_max(Kr, n);
    const double ts[] = {1, 9, INFINITY};
    for (int mode = 0; mode < 2; mode++) {
        tn_predictor *p = make_pred(k.K, n, O, 0, y, eta, mode);
        tn_predictor *q = make_pred(Kr, n, O, 0, y, eta, mode);
        for (int j = 0; j < 3; j++) {
            TN_CK(ctx, tn_predictor_predict(p, ts[j], f0, c_tr, k.Kt, f0t, nt, c_te));
            TN_CK(ctx, tn_predictor_set(p, TN_PRED_DIAG_REG, reg));
            double v;
            TN_CK(ctx, tn_predictor_get(p, TN_PRED_DIAG_REG, &v));
            ck_assert(v == reg);
            TN_CK(ctx, tn_predictor_predict(p, ts[j], f0, a_tr, k.Kt, f0t, nt, a_te));
            TN_CK(ctx, tn_predictor_predict(q, ts[j], f0, b_tr, k.Kt, f0t, nt, b_te));
            const double etr = tu_rel_err(a_tr, b_tr, n * O, 1e-300),
                         ete = tu_rel_err(a_te, b_te, nt * O, 1e-300);
            ck_assert_msg(etr < 1e-12 && ete < 1e-12, "mode %d t %g: errors %.3g %.3g", mode,
                          ts[j], etr, ete);
            TN_CK(ctx, tn_predictor_set(p, TN_PRED_DIAG_REG, 0.0));
            TN_CK(ctx, tn_predictor_predict(p, ts[j], f0, a_tr, k.Kt, f0t, nt, a_te));
            ck_assert_mem_eq(a_tr, c_tr, sizeof a_tr);
            ck_assert_mem_eq(a_te, c_te, sizeof a_te);
        }
        tn_predictor_free(p);
        tn_predictor_free(q);
    }
    free(Kr), free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* A singular PSD kernel K = A A^T - delta I (A 6 x 3, delta = 1e-12 tr K):
 * three eigenvalues at -delta, negative by far more than rounding but
 * inside the noise band (1e-10 m lambda_max): they are clipped to 0.
 * At finite t it works and is gradient descent; at t = INFINITY the test
 * prediction needs K^-1: NUMERIC, while train outputs (the zero modes
 * never move) equal the flow at a time where every other mode has
 * converged (e^-60); with TN_PRED_DIAG_REG it is kernel regression with
 * K + reg I. */
START_TEST(singular_kernel_clipped)
{
    const size_t n = 6, r = 3, nt = 2, O = 2;
    double *A = tu_random(n * r, 71, 1.0), *At = tu_random(nt * r, 72, 1.0);
    double K[36], Kt[12];
    mmt(n, n, r, A, A, K);
    mmt(nt, n, r, At, A, Kt);
    double tr = 0;
    for (size_t i = 0; i < n; i++) tr += K[i * n + i];
    for (size_t i = 0; i < n; i++) K[i * n + i] -= 1e-12 * tr;
    double *f0 = tu_random(n * O, 73, 1.0), *y = tu_random(n * O, 74, 1.0),
           *f0t = tu_random(nt * O, 75, 1.0);
    double ftr[12], fte[4], gtr[12], gte[4];
    const double eta = 1.0 * (double)n / lambda_max(K, n);
    tn_predictor *p = make_pred(K, n, O, 0, y, eta, TN_PRED_STEPS);
    TN_CK(ctx, tn_predictor_predict(p, 25, f0, ftr, Kt, f0t, nt, fte));
    gd_iterate(n, O, nt, K, Kt, eta / (double)n, 25, f0, y, f0t, gtr, gte);
    /* The clipped delta changes the result by ~ t h delta |r| ~ 1e-11. */
    ck_assert(tu_rel_err(ftr, gtr, n * O, 1e-300) < 1e-9);
    ck_assert(tu_rel_err(fte, gte, nt * O, 1e-300) < 1e-9);

    for (size_t i = 0; i < 4; i++) fte[i] = -7.0;
    EXPECT(tn_predictor_predict(p, INFINITY, f0, ftr, Kt, f0t, nt, fte), TN_E_NUMERIC,
           "tn_predictor_predict", "singular at t = infinity");
    ck_assert_msg(strstr(tn_ctx_errmsg(ctx), "TN_PRED_DIAG_REG") != NULL, "%s",
                  tn_ctx_errmsg(ctx));
    for (size_t i = 0; i < 4; i++) ck_assert(fte[i] == -7.0);

    /* The smallest nonzero eigenvalue of A A^T is that of A^T A (3 x 3),
     * 1 / lambda_max((A^T A)^-1), less delta; at the flow time where it
     * decays by e^-60 every moving mode is gone. */
    double G[9], Gi[9], I3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < r; j++) {
            double s = 0;
            for (size_t l = 0; l < n; l++) s += A[l * r + i] * A[l * r + j];
            G[i * r + j] = s;
        }
    ge_solve(r, G, r, I3, Gi);
    const double lmin = 1.0 / lambda_max(Gi, r) - 1e-12 * tr;
    ck_assert(lmin > 1e-6);
    TN_CK(ctx, tn_predictor_predict(p, INFINITY, f0, ftr, NULL, NULL, 0, NULL));
    tn_predictor *pf = make_pred(K, n, O, 0, y, eta, TN_PRED_FLOW);
    TN_CK(ctx, tn_predictor_predict(pf, 60.0 / (lmin * eta / (double)n), f0, gtr, NULL, NULL, 0,
                                    NULL));
    ck_assert(tu_rel_err(ftr, gtr, n * O, 1e-300) < 1e-12);
    /* ... and the limit is not Y: the null-space part of f0 - Y stays. */
    ck_assert(tu_rel_err(ftr, y, n * O, 1e-300) > 1e-3);

    const double reg = 1e-3;
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_DIAG_REG, reg));
    TN_CK(ctx, tn_predictor_predict(p, INFINITY, f0, ftr, Kt, f0t, nt, fte));
    double Kr[36];
    memcpy(Kr, K, sizeof Kr);
    for (size_t i = 0; i < n; i++) Kr[i * n + i] += reg;
    kernel_regression(n, O, nt, Kr, Kt, f0, y, f0t, gte);
    /* cond(K + reg I) ~ 1e4: 1e-10 still has a margin of 1e2. */
    ck_assert_msg(tu_rel_err(fte, gte, nt * O, 1e-300) < 1e-10, "%.3g",
                  tu_rel_err(fte, gte, nt * O, 1e-300));
    ck_assert(tu_rel_err(ftr, y, n * O, 1e-300) < 1e-14);
    tn_predictor_free(p);
    tn_predictor_free(pf);
    free(A), free(At), free(f0), free(y), free(f0t);
}
END_TEST

/* Kernels that are not symmetric positive semi-definite are refused at
 * create (where the default regularizer 0 is decomposed), with *out NULL. */
START_TEST(indefinite_and_nonsymmetric_refused)
{
    /* Q diag(1, 0.5, -0.3) Q^T with Q a Householder reflection. */
    const double u[3] = {1, 2, 2};
    const double lam[3] = {1, 0.5, -0.3};
    double Q[9], K[9], y[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) Q[i * 3 + j] = (i == j) - 2 * u[i] * u[j] / 9.0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int l = 0; l < 3; l++) s += Q[i * 3 + l] * lam[l] * Q[j * 3 + l];
            K[i * 3 + j] = s;
        }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < i; j++) K[j * 3 + i] = K[i * 3 + j];
    tn_predictor *p = (tn_predictor *)&p;
    EXPECT(tn_predictor_create(ctx, K, 3, 1, 0, y, &p), TN_E_NUMERIC, "tn_predictor_create",
           "positive semi-definite");
    ck_assert_ptr_null(p);
    ck_assert(strstr(tn_ctx_errmsg(ctx), "smallest eigenvalue -0.3") != NULL);

    /* A PSD kernel with one entry off by 1e-6: not symmetric. */
    const double S[9] = {2, 1, 0, 1, 2, 1, 0, 1 + 1e-6, 2};
    p = (tn_predictor *)&p;
    EXPECT(tn_predictor_create(ctx, S, 3, 1, 0, y, &p), TN_E_NUMERIC, "tn_predictor_create",
           "not symmetric");
    ck_assert_ptr_null(p);
    /* ... while an asymmetry of rounding size is accepted (and symmetrized). */
    const double S2[9] = {2, 1, 0, 1, 2, 1, 0, 1 + 1e-15, 2};
    TN_CK(ctx, tn_predictor_create(ctx, S2, 3, 1, 0, y, &p));
    tn_predictor_free(p);
}
END_TEST

/* The time factors where a naive formula cancels, on a 1 x 1 kernel [1]
 * with N = 1, r = f0 - Y = 1, K*X = [1], f0* = 0, so f*_t = -g and
 * f_t - Y = m.  Expected values from binomial / exponential series, each
 * term exact to rounding and summed from the smallest:
 *  - steps, eta = 2 - 2^-30 (exactly representable), t = 10: 1 - eta is
 *    -(1 - d), d = 2^-30, so g = 1 - (1 - d)^10 ~ 1e-8, which
 *    1 - pow(1 - eta, 10) gets only to ~1e-8 relative;
 *  - steps, eta = 1e-10, t = 1000: g = (1 - (1 - eta)^1000) / 1 ~ 1e-7;
 *  - flow, eta = 1e-10, t = 3: g = 1 - e^(-3e-10).
 * The library must get them to a few ulps: 1e-14. */
START_TEST(small_factors_do_not_cancel)
{
    const double one = 1.0, f0 = 1.0, f0t = 0.0, zero = 0.0;
    double ftr, fte, g;
    tn_predictor *p;
    TN_CK(ctx, tn_predictor_create(ctx, &one, 1, 1, 0, &zero, &p));

    const double d = ldexp(1.0, -30);
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 2.0 - d));
    TN_CK(ctx, tn_predictor_predict(p, 10, &f0, &ftr, &one, &f0t, 1, &fte));
    /* 1 - (1 - d)^10 = sum_{k=1}^{10} (-1)^(k+1) C(10, k) d^k */
    g = 0;
    double c = 1;
    double terms[11];
    for (int kk = 1; kk <= 10; kk++) {
        c = c * (10 - kk + 1) / kk;
        terms[kk] = (kk % 2 ? 1 : -1) * c * pow(d, kk);
    }
    for (int kk = 10; kk >= 1; kk--) g += terms[kk];
    ck_assert_msg(fabs(-fte - g) <= 1e-14 * g, "steps near 2: %.17g vs %.17g", -fte, g);
    ck_assert(fabs(ftr - (1 - g)) <= 1e-15);

    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 1e-10));
    TN_CK(ctx, tn_predictor_predict(p, 1000, &f0, &ftr, &one, &f0t, 1, &fte));
    /* 1 - (1 - e)^1000 = 1000 e - C(1000,2) e^2 + C(1000,3) e^3 - ...; four terms reach 1e-30. */
    const double e = 1e-10;
    g = 1000 * e - 499500.0 * e * e + 166167000.0 * e * e * e - 41417124750.0 * e * e * e * e;
    ck_assert_msg(fabs(-fte - g) <= 1e-14 * g, "small steps: %.17g vs %.17g", -fte, g);

    TN_CK(ctx, tn_predictor_set(p, TN_PRED_TIME, TN_PRED_FLOW));
    TN_CK(ctx, tn_predictor_predict(p, 3, &f0, &ftr, &one, &f0t, 1, &fte));
    const double x = 3e-10;
    g = x - x * x / 2 + x * x * x / 6;
    ck_assert_msg(fabs(-fte - g) <= 1e-14 * g, "small flow: %.17g vs %.17g", -fte, g);
    tn_predictor_free(p);

    /* A zero eigenvalue: g is its limit eta t / N (here eta t), no 0/0. */
    TN_CK(ctx, tn_predictor_create(ctx, &zero, 1, 1, 0, &zero, &p));
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 0.5));
    TN_CK(ctx, tn_predictor_predict(p, 6, &f0, &ftr, &one, &f0t, 1, &fte));
    ck_assert(ftr == 1.0);          /* m = 1: the train output never moves */
    ck_assert(fte == -3.0);         /* -K*X g r with g = eta t / N = 3, exactly */
    tn_predictor_free(p);
}
END_TEST

/* A learning rate at which GD diverges is refused at every t > 0 -- before
 * this was a defect, t = 1000 returned 1e302 with TN_OK -- with a message
 * naming eta lambda_max / N and the largest stable rate; the outputs are
 * untouched.  K = [[2, 1], [1, 2]] has eigenvalues 1 and 3, so with N = 2
 * lambda_max = 3 and the largest stable rate 2 N / 3 = 4/3; plus a
 * regularizer 0.5, 3.5 and 8/7.  Flow never diverges. */
START_TEST(overflow_is_refused)
{
    const double K[4] = {2, 1, 1, 2}, y[2] = {0, 0}, f0[2] = {1, -0.5};
    double ftr[2] = {-7, -7}, v;
    tn_predictor *p;
    TN_CK(ctx, tn_predictor_create(ctx, K, 2, 1, 0, y, &p));
    TN_CK(ctx, tn_predictor_lambda_max(p, &v));
    ck_assert_msg(fabs(v - 3.0) <= 4 * DBL_EPSILON * 3.0, "lambda_max %.17g", v);
    TN_CK(ctx, tn_predictor_max_learning_rate(p, &v));
    ck_assert_msg(fabs(v - 4.0 / 3.0) <= 8 * DBL_EPSILON, "max learning rate %.17g", v);
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 20.0));   /* eta lam_max / N = 30 */
    const double ts[] = {1, 3, 1000, INFINITY};
    for (int i = 0; i < 4; i++) {
        EXPECT(tn_predictor_predict(p, ts[i], f0, ftr, NULL, NULL, 0, NULL), TN_E_NUMERIC,
               "tn_predictor_predict", "eta lambda_max / n_train = 30");
        ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "largest stable learning rate"));
        ck_assert(ftr[0] == -7 && ftr[1] == -7);
    }
    TN_CK(ctx, tn_predictor_predict(p, 0, f0, ftr, NULL, NULL, 0, NULL));   /* f_0 */
    ck_assert(ftr[0] == 1 && ftr[1] == -0.5);
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_TIME, TN_PRED_FLOW));
    TN_CK(ctx, tn_predictor_predict(p, 1000, f0, ftr, NULL, NULL, 0, NULL));
    ck_assert(fabs(ftr[0]) < 1e-300 && fabs(ftr[1]) < 1e-300);     /* converged to y */
    /* At the largest stable rate itself the top component oscillates
     * without growing: allowed at finite t. */
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_TIME, TN_PRED_STEPS));
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_DIAG_REG, 0.5));
    TN_CK(ctx, tn_predictor_lambda_max(p, &v));
    ck_assert_msg(fabs(v - 3.5) <= 4 * DBL_EPSILON * 3.5, "lambda_max %.17g", v);
    TN_CK(ctx, tn_predictor_max_learning_rate(p, &v));
    ck_assert_msg(fabs(v - 8.0 / 7.0) <= 8 * DBL_EPSILON, "max learning rate %.17g", v);
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, v * (1 - 0x1p-40)));
    TN_CK(ctx, tn_predictor_predict(p, 1001, f0, ftr, NULL, NULL, 0, NULL));
    ck_assert(isfinite(ftr[0]) && fabs(ftr[0]) <= 1.5);
    tn_predictor_free(p);
    /* A zero kernel: nothing ever moves, every rate is stable. */
    const double Z[4] = {0, 0, 0, 0};
    TN_CK(ctx, tn_predictor_create(ctx, Z, 2, 1, 0, y, &p));
    TN_CK(ctx, tn_predictor_lambda_max(p, &v));
    ck_assert(v == 0);
    TN_CK(ctx, tn_predictor_max_learning_rate(p, &v));
    ck_assert(isinf(v) && v > 0);
    /* Entries so large that the eigenvalues overflow (found by fuzz_api:
     * lambda_max came back infinite): refused at create, or when a
     * regularizer takes them past the largest double. */
    const double huge[4] = {1.7e308, 1.7e308, 1.7e308, 1.7e308}, big[4] = {1e308, 0, 0, 1e308};
    tn_predictor *q = (tn_predictor *)&q;
    EXPECT(tn_predictor_create(ctx, huge, 2, 1, 0, y, &q), TN_E_NUMERIC, "tn_predictor_create",
           "overflow");
    ck_assert_ptr_null(q);
    TN_CK(ctx, tn_predictor_create(ctx, big, 2, 1, 0, y, &q));
    TN_CK(ctx, tn_predictor_set(q, TN_PRED_DIAG_REG, 1e308));
    EXPECT(tn_predictor_lambda_max(q, &v), TN_E_NUMERIC, "tn_predictor_lambda_max", "overflow");
    TN_CK(ctx, tn_predictor_set(q, TN_PRED_DIAG_REG, 0));
    TN_CK(ctx, tn_predictor_lambda_max(q, &v));
    ck_assert(v == 1e308);
    tn_predictor_free(q);
    /* Arguments. */
    ck_assert_int_eq(tn_predictor_lambda_max(NULL, &v), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_lambda_max(p, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_max_learning_rate(p, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_max_learning_rate((tn_predictor *)ctx, &v), TN_E_MISUSE);
    tn_predictor_free(p);
}
END_TEST

START_TEST(predictor_bad_arguments)
{
    static const char C[] = "tn_predictor_create", S[] = "tn_predictor_set",
                      G[] = "tn_predictor_get", P[] = "tn_predictor_predict";
    const size_t n = 3, O = 2;
    kern k = make_kern(n, 2, 4, 0.1, 81);
    double y[6] = {1, 2, 3, 4, 5, 6}, f0[6] = {0}, f0t[4] = {0}, ftr[6], fte[4], v;
    double bad[9];
    tn_predictor *p = NULL, *q = (tn_predictor *)&q;

    /* create */
    EXPECT_NOCTX(tn_predictor_create(NULL, k.K, n, O, 0, y, &q), TN_E_INVALID_ARG);
    ck_assert_ptr_null(q);
    q = (tn_predictor *)&q;
    EXPECT_NOCTX(tn_predictor_create((tn_ctx *)k.K, k.K, n, O, 0, y, &q), TN_E_MISUSE);
    ck_assert_ptr_null(q);
    EXPECT(tn_predictor_create(ctx, k.K, n, O, 0, y, NULL), TN_E_INVALID_ARG, C, "out");
    EXPECT(tn_predictor_create(ctx, NULL, n, O, 0, y, &q), TN_E_INVALID_ARG, C, "k_train");
    EXPECT(tn_predictor_create(ctx, k.K, n, O, 0, NULL, &q), TN_E_INVALID_ARG, C, "y_train");
    EXPECT(tn_predictor_create(ctx, k.K, 0, O, 0, y, &q), TN_E_INVALID_ARG, C, "n_train is 0");
    EXPECT(tn_predictor_create(ctx, k.K, n, 0, 0, y, &q), TN_E_INVALID_ARG, C, "n_out is 0");
    EXPECT(tn_predictor_create(ctx, k.K, n, O, 2, y, &q), TN_E_INVALID_ARG, C, "full_kernel");
    EXPECT(tn_predictor_create(ctx, k.K, n, O, -1, y, &q), TN_E_INVALID_ARG, C, "full_kernel");
    EXPECT(tn_predictor_create(ctx, k.K, SIZE_MAX / 2, O, 0, y, &q), TN_E_INVALID_ARG, C,
           "overflows");
    memcpy(bad, k.K, sizeof bad);
    bad[4] = NAN;
    EXPECT(tn_predictor_create(ctx, bad, n, O, 0, y, &q), TN_E_INVALID_ARG, C, "not finite");
    bad[4] = INFINITY;
    EXPECT(tn_predictor_create(ctx, bad, n, O, 0, y, &q), TN_E_INVALID_ARG, C, "not finite");
    y[3] = -INFINITY;
    EXPECT(tn_predictor_create(ctx, k.K, n, O, 0, y, &q), TN_E_INVALID_ARG, C, "y_train");
    y[3] = 4;
    ck_assert_ptr_null(q);

    TN_CK(ctx, tn_predictor_create(ctx, k.K, n, O, 0, y, &p));
    /* set / get */
    EXPECT_NOCTX(tn_predictor_set(NULL, TN_PRED_LEARNING_RATE, 1), TN_E_INVALID_ARG);
    EXPECT_NOCTX(tn_predictor_set((tn_predictor *)ctx, TN_PRED_LEARNING_RATE, 1), TN_E_MISUSE);
    EXPECT(tn_predictor_set(p, TN_PRED_LEARNING_RATE, 0), TN_E_INVALID_ARG, S, "learning rate");
    EXPECT(tn_predictor_set(p, TN_PRED_LEARNING_RATE, -1), TN_E_INVALID_ARG, S, "learning rate");
    EXPECT(tn_predictor_set(p, TN_PRED_LEARNING_RATE, NAN), TN_E_INVALID_ARG, S, "learning rate");
    EXPECT(tn_predictor_set(p, TN_PRED_LEARNING_RATE, INFINITY), TN_E_INVALID_ARG, S, NULL);
    EXPECT(tn_predictor_set(p, TN_PRED_DIAG_REG, -1e-9), TN_E_INVALID_ARG, S, "regularizer");
    EXPECT(tn_predictor_set(p, TN_PRED_DIAG_REG, NAN), TN_E_INVALID_ARG, S, "regularizer");
    EXPECT(tn_predictor_set(p, TN_PRED_DIAG_REG, INFINITY), TN_E_INVALID_ARG, S, "regularizer");
    EXPECT(tn_predictor_set(p, TN_PRED_TIME, 2), TN_E_INVALID_ARG, S, "time mode");
    EXPECT(tn_predictor_set(p, TN_PRED_TIME, 0.5), TN_E_INVALID_ARG, S, "time mode");
    EXPECT(tn_predictor_set(p, (tn_predictor_param)99, 1), TN_E_INVALID_ARG, S,
           "not a tn_predictor_param");
    EXPECT_NOCTX(tn_predictor_get(NULL, TN_PRED_TIME, &v), TN_E_INVALID_ARG);
    EXPECT(tn_predictor_get(p, TN_PRED_TIME, NULL), TN_E_INVALID_ARG, G, "value");
    EXPECT(tn_predictor_get(p, (tn_predictor_param)99, &v), TN_E_INVALID_ARG, G, NULL);
    /* Defaults, untouched by the failures above. */
    TN_CK(ctx, tn_predictor_get(p, TN_PRED_LEARNING_RATE, &v));
    ck_assert(v == 1.0);
    TN_CK(ctx, tn_predictor_get(p, TN_PRED_DIAG_REG, &v));
    ck_assert(v == 0.0);
    TN_CK(ctx, tn_predictor_get(p, TN_PRED_TIME, &v));
    ck_assert(v == TN_PRED_STEPS);

    /* predict */
    EXPECT_NOCTX(tn_predictor_predict(NULL, 1, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG);
    EXPECT_NOCTX(tn_predictor_predict((tn_predictor *)ctx, 1, f0, ftr, NULL, NULL, 0, NULL),
                 TN_E_MISUSE);
    EXPECT(tn_predictor_predict(p, NAN, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P, "t is");
    EXPECT(tn_predictor_predict(p, -1, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P, ">= 0");
    EXPECT(tn_predictor_predict(p, -INFINITY, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P,
           NULL);
    EXPECT(tn_predictor_predict(p, 1.5, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P,
           "whole number");
    EXPECT(tn_predictor_predict(p, 1, NULL, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P,
           "f0_train");
    f0[2] = NAN;
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P,
           "f0_train");
    f0[2] = 0;
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, NULL, f0t, 2, fte), TN_E_INVALID_ARG, P,
           "k_test_train");
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, k.Kt, NULL, 2, fte), TN_E_INVALID_ARG, P,
           "f0_test");
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, k.Kt, f0t, 0, fte), TN_E_INVALID_ARG, P,
           "n_test is 0");
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, k.Kt, f0t, SIZE_MAX / 4, fte), TN_E_INVALID_ARG, P,
           "overflows");
    f0t[1] = INFINITY;
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, k.Kt, f0t, 2, fte), TN_E_INVALID_ARG, P, "f0_test");
    f0t[1] = 0;
    memcpy(bad, k.Kt, 6 * sizeof(double));
    bad[5] = NAN;
    EXPECT(tn_predictor_predict(p, 1, f0, ftr, bad, f0t, 2, fte), TN_E_INVALID_ARG, P,
           "k_test_train");
    /* Test inputs are not read when no test output is asked for. */
    TN_CK(ctx, tn_predictor_predict(p, 1, f0, ftr, bad, NULL, 0, NULL));
    /* In flow time, fractional t is fine but not negative. */
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_TIME, TN_PRED_FLOW));
    TN_CK(ctx, tn_predictor_predict(p, 1.5, f0, ftr, k.Kt, f0t, 2, fte));
    EXPECT(tn_predictor_predict(p, -0.5, f0, ftr, NULL, NULL, 0, NULL), TN_E_INVALID_ARG, P, NULL);

    /* free: NULL and the wrong type are no-ops. */
    tn_predictor_free(NULL);
    tn_predictor_free((tn_predictor *)ctx);
    ck_assert_int_eq(tn_ctx_get_threads(ctx), 1);
    tn_predictor_free(p);
    free_kern(&k);
}
END_TEST

/* After failures of every kind, the predictor gives bit-identical results
 * to one that never failed, and the failed calls wrote nothing. */
START_TEST(predictor_failures_change_nothing)
{
    const size_t n = 4, nt = 3, O = 2;
    kern k = make_kern(n, nt, 4, 0.1, 91);
    double *f0 = tu_random(n * O, 92, 1.0), *y = tu_random(n * O, 93, 1.0),
           *f0t = tu_random(nt * O, 94, 1.0);
    double ref_tr[8], ref_te[6], ftr[8], fte[6], v;
    tn_predictor *p = make_pred(k.K, n, O, 0, y, 0.7, TN_PRED_STEPS);
    tn_predictor *twin = make_pred(k.K, n, O, 0, y, 0.7, TN_PRED_STEPS);
    TN_CK(ctx, tn_predictor_predict(twin, 12, f0, ref_tr, k.Kt, f0t, nt, ref_te));

    for (size_t i = 0; i < 8; i++) ftr[i] = -7;
    for (size_t i = 0; i < 6; i++) fte[i] = -7;
    ck_assert_int_eq(tn_predictor_set(p, TN_PRED_LEARNING_RATE, -1), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_set(p, TN_PRED_DIAG_REG, NAN), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_set(p, TN_PRED_TIME, 3), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_predict(p, 2.5, f0, ftr, k.Kt, f0t, nt, fte), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_predictor_predict(p, 2, f0, ftr, NULL, f0t, nt, fte), TN_E_INVALID_ARG);
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 1e3));
    ck_assert_int_eq(tn_predictor_predict(p, INFINITY, f0, ftr, k.Kt, f0t, nt, fte), TN_E_NUMERIC);
    ck_assert_int_eq(tn_predictor_predict(p, 5000, f0, ftr, k.Kt, f0t, nt, fte), TN_E_NUMERIC);
    for (size_t i = 0; i < 8; i++) ck_assert(ftr[i] == -7);
    for (size_t i = 0; i < 6; i++) ck_assert(fte[i] == -7);
    TN_CK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, 0.7));
    TN_CK(ctx, tn_predictor_get(p, TN_PRED_TIME, &v));
    ck_assert(v == TN_PRED_STEPS);
    TN_CK(ctx, tn_predictor_get(p, TN_PRED_DIAG_REG, &v));
    ck_assert(v == 0);
    TN_CK(ctx, tn_predictor_predict(p, 12, f0, ftr, k.Kt, f0t, nt, fte));
    ck_assert_mem_eq(ftr, ref_tr, sizeof ftr);
    ck_assert_mem_eq(fte, ref_te, sizeof fte);
    tn_predictor_free(p);
    tn_predictor_free(twin);
    free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/* The outputs may alias nothing of the caller's they are not, may be NULL
 * independently, and the BLAS thread count does not change results beyond
 * rounding. */
START_TEST(outputs_optional_and_threads)
{
    const size_t n = 5, nt = 3, O = 2;
    kern k = make_kern(n, nt, 4, 0.1, 101);
    double *f0 = tu_random(n * O, 102, 1.0), *y = tu_random(n * O, 103, 1.0),
           *f0t = tu_random(nt * O, 104, 1.0);
    double a_tr[10], a_te[6], b_tr[10], b_te[6];
    tn_predictor *p = make_pred(k.K, n, O, 0, y, 0.9, TN_PRED_FLOW);
    TN_CK(ctx, tn_predictor_predict(p, 2.5, f0, a_tr, k.Kt, f0t, nt, a_te));
    TN_CK(ctx, tn_predictor_predict(p, 2.5, f0, b_tr, NULL, NULL, 0, NULL));
    ck_assert_mem_eq(a_tr, b_tr, sizeof a_tr);
    TN_CK(ctx, tn_predictor_predict(p, 2.5, f0, NULL, k.Kt, f0t, nt, b_te));
    ck_assert_mem_eq(a_te, b_te, sizeof a_te);
    TN_CK(ctx, tn_ctx_set_threads(ctx, 4));
    TN_CK(ctx, tn_predictor_predict(p, 2.5, f0, b_tr, k.Kt, f0t, nt, b_te));
    ck_assert(tu_rel_err(a_tr, b_tr, n * O, 1e-300) < 1e-13);
    ck_assert(tu_rel_err(a_te, b_te, nt * O, 1e-300) < 1e-13);
    tn_predictor_free(p);
    free(f0), free(y), free(f0t);
    free_kern(&k);
}
END_TEST

/*=====================================================================
 * Gaussian-process inference
 *===================================================================*/

/* e^A by scaling and squaring: A / 2^s has 1-norm <= 1/2, where 24 Taylor
 * terms leave a remainder below 1e-30; s squarings then lose ~s eps. */
static void expm(size_t n, const double *A, double *E)
{
    double nrm = 0;
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += fabs(A[i * n + j]);
        if (s > nrm) nrm = s;
    }
    int s = 0;
    while (nrm > 0.5) nrm /= 2, s++;
    const double scale = ldexp(1.0, -s);
    double *B = malloc(n * n * sizeof(double)), *T = malloc(n * n * sizeof(double)),
           *U = malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n * n; i++) B[i] = A[i] * scale;
    for (size_t i = 0; i < n * n; i++) E[i] = T[i] = (i % (n + 1) == 0);
    for (int kk = 1; kk <= 24; kk++) {
        mm(n, n, n, T, B, U);
        for (size_t i = 0; i < n * n; i++) T[i] = U[i] / kk, E[i] += T[i];
    }
    for (int q = 0; q < s; q++) {
        mm(n, n, n, E, E, U);
        memcpy(E, U, n * n * sizeof(double));
    }
    free(B), free(T), free(U);
}

/* The NTK-GP of MATH.md §6 computed directly: E = e^{-eta Theta t / N} by
 * expm (t finite) or 0 (t infinite), A = Theta^-1 (I - E) by Gaussian
 * elimination, P = Theta*X A, mean = P Y,
 * cov = K** + P K P^T - P KX* - K*X P^T. */
static void ntk_gp_reference(size_t n, size_t nt, size_t O, const double *T, const double *Tt,
                             const double *K, const double *Kt, const double *Ktt,
                             const double *Y, double eta, double t, double *mean, double *cov)
{
    double *A = malloc(n * n * sizeof(double)), *E = malloc(n * n * sizeof(double)),
           *I_E = malloc(n * n * sizeof(double)), *P = malloc(nt * n * sizeof(double)),
           *PK = malloc(nt * n * sizeof(double)), *H = malloc(nt * nt * sizeof(double)),
           *Q = malloc(nt * nt * sizeof(double));
    if (isinf(t)) {
        memset(E, 0, n * n * sizeof(double));
    } else {
        for (size_t i = 0; i < n * n; i++) A[i] = -eta * t / (double)n * T[i];
        expm(n, A, E);
    }
    for (size_t i = 0; i < n * n; i++) I_E[i] = (i % (n + 1) == 0) - E[i];
    ge_solve(n, T, n, I_E, A);
    mm(nt, n, n, Tt, A, P);
    mm(nt, O, n, P, Y, mean);
    mm(nt, n, n, P, K, PK);
    mmt(nt, nt, n, PK, P, H);
    mmt(nt, nt, n, P, Kt, Q);
    for (size_t a = 0; a < nt; a++)
        for (size_t b = 0; b < nt; b++)
            cov[a * nt + b] = Ktt[a * nt + b] + H[a * nt + b] - Q[a * nt + b] - Q[b * nt + a];
    free(A), free(E), free(I_E), free(P), free(PK), free(H), free(Q);
}

static void nngp_reference(size_t n, size_t nt, size_t O, const double *K, const double *Kt,
                           const double *Ktt, const double *Y, double *mean, double *cov)
{
    double *W = malloc(n * O * sizeof(double)), *KtT = malloc(n * nt * sizeof(double)),
           *Z = malloc(n * nt * sizeof(double)), *H = malloc(nt * nt * sizeof(double));
    ge_solve(n, K, O, Y, W);
    mm(nt, O, n, Kt, W, mean);
    for (size_t a = 0; a < nt; a++)
        for (size_t j = 0; j < n; j++) KtT[j * nt + a] = Kt[a * n + j];
    ge_solve(n, K, nt, KtT, Z);
    mm(nt, nt, n, Kt, Z, H);
    for (size_t i = 0; i < nt * nt; i++) cov[i] = Ktt[i] - H[i];
    free(W), free(KtT), free(Z), free(H);
}

static int symmetric(const double *C, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (C[i * n + j] != C[j * n + i]) return 0;
    return 1;
}

/* The NNGP posterior against Gaussian elimination, with and without
 * TN_GP_DIAG_REG; mean and covariance may each be asked for alone.  The
 * covariance is compared relative to K** (it is a difference of O(1)
 * terms), 1e-10 as everywhere. */
START_TEST(nngp_posterior_matches_elimination)
{
    const size_t n = 6, nt = 4, O = 2;
    kern k = make_kern(n, nt, 5, 0.05, 111);
    double *y = tu_random(n * O, 112, 1.0);
    double mean[8], cov[16], rmean[8], rcov[16], m2[8], c2[16];
    tn_gp *g;
    TN_CK(ctx, tn_gp_create(ctx, k.K, NULL, n, O, y, &g));
    const double regs[] = {0.0, 0.01};
    for (int r = 0; r < 2; r++) {
        TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, regs[r]));
        double Kr[36];
        memcpy(Kr, k.K, sizeof Kr);
        for (size_t i = 0; i < n; i++) Kr[i * n + i] += regs[r];
        TN_CK(ctx, tn_gp_nngp_posterior(g, k.Kt, k.Ktt, nt, mean, cov));
        nngp_reference(n, nt, O, Kr, k.Kt, k.Ktt, y, rmean, rcov);
        ck_assert_msg(tu_rel_err(mean, rmean, nt * O, 1e-300) < 1e-10, "reg %g mean", regs[r]);
        ck_assert_msg(tu_rel_err(cov, rcov, nt * nt, 1.0) < 1e-10, "reg %g cov", regs[r]);
        ck_assert(symmetric(cov, nt));
        TN_CK(ctx, tn_gp_nngp_posterior(g, k.Kt, NULL, nt, m2, NULL));
        ck_assert_mem_eq(m2, mean, sizeof mean);
        TN_CK(ctx, tn_gp_nngp_posterior(g, k.Kt, k.Ktt, nt, NULL, c2));
        ck_assert_mem_eq(c2, cov, sizeof cov);
    }
    /* At a train point the posterior is the target and the variance is
     * ~0: K*X = K(x_0, X), K** = K(x_0, x_0). */
    TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, 0.0));
    TN_CK(ctx, tn_gp_nngp_posterior(g, k.K, k.K, 1, mean, cov));
    ck_assert(fabs(mean[0] - y[0]) < 1e-12 && fabs(mean[1] - y[1]) < 1e-12);
    ck_assert(fabs(cov[0]) < 1e-12);
    tn_gp_free(g);
    free(y);
    free_kern(&k);
}
END_TEST

/* NTK-GP at t = INFINITY: mean Theta*X Theta^-1 Y; at t = 0: mean exactly
 * 0 and cov exactly K**; at finite t, mean and covariance against the
 * direct formula with a matrix exponential.  Covariances symmetric bit for
 * bit. */
START_TEST(ntk_gp_matches_direct_formula)
{
    const size_t n = 6, nt = 4, O = 2;
    kern k = make_kern(n, nt, 5, 0.05, 121), th = make_kern(n, nt, 7, 0.1, 122);
    double *y = tu_random(n * O, 123, 1.0);
    double mean[8], cov[16], rmean[8], rcov[16];
    tn_gp *g;
    TN_CK(ctx, tn_gp_create(ctx, k.K, th.K, n, O, y, &g));
    const double eta = 1.7;
    TN_CK(ctx, tn_gp_set(g, TN_GP_LEARNING_RATE, eta));

    TN_CK(ctx, tn_gp_ntk_posterior(g, 0.0, th.Kt, k.Kt, k.Ktt, nt, mean, cov));
    for (size_t i = 0; i < nt * O; i++) ck_assert(mean[i] == 0.0);
    ck_assert_mem_eq(cov, k.Ktt, sizeof cov);

    const double ts[] = {0.3, 2.0, 15.0, INFINITY};
    for (int j = 0; j < 4; j++) {
        TN_CK(ctx, tn_gp_ntk_posterior(g, ts[j], th.Kt, k.Kt, k.Ktt, nt, mean, cov));
        ntk_gp_reference(n, nt, O, th.K, th.Kt, k.K, k.Kt, k.Ktt, y, eta, ts[j], rmean, rcov);
        const double em = tu_rel_err(mean, rmean, nt * O, 1e-300),
                     ec = tu_rel_err(cov, rcov, nt * nt, 1.0);
        ck_assert_msg(em < 1e-10 && ec < 1e-10, "t %g: mean error %.3g, cov error %.3g", ts[j],
                      em, ec);
        ck_assert(symmetric(cov, nt));
    }
    /* The mean alone needs no NNGP blocks. */
    TN_CK(ctx, tn_gp_ntk_posterior(g, INFINITY, th.Kt, NULL, NULL, nt, mean, NULL));
    double W[12];
    ge_solve(n, th.K, O, y, W);
    mm(nt, O, n, th.Kt, W, rmean);
    ck_assert(tu_rel_err(mean, rmean, nt * O, 1e-300) < 1e-10);
    tn_gp_free(g);
    free(y);
    free_kern(&k), free_kern(&th);
}
END_TEST

/* The NTK-GP mean is the predictor's test output with f0 = 0 (flow, same
 * eta), and with Theta = K the NTK-GP at t = INFINITY is the NNGP
 * posterior, regularized or not (K gets the regularizer in both). */
START_TEST(ntk_gp_agrees_with_predictor_and_nngp)
{
    const size_t n = 5, nt = 3, O = 2;
    kern k = make_kern(n, nt, 5, 0.05, 131), th = make_kern(n, nt, 6, 0.1, 132);
    double *y = tu_random(n * O, 133, 1.0);
    double zero_tr[10] = {0}, zero_te[6] = {0}, mean[6], pte[6], cov[9], m2[6], c2[9];
    const double eta = 0.8;
    tn_gp *g;
    TN_CK(ctx, tn_gp_create(ctx, k.K, th.K, n, O, y, &g));
    TN_CK(ctx, tn_gp_set(g, TN_GP_LEARNING_RATE, eta));
    tn_predictor *p = make_pred(th.K, n, O, 0, y, eta, TN_PRED_FLOW);
    const double ts[] = {0.5, 3.0, 40.0, INFINITY};
    for (int j = 0; j < 4; j++) {
        TN_CK(ctx, tn_gp_ntk_posterior(g, ts[j], th.Kt, NULL, NULL, nt, mean, NULL));
        TN_CK(ctx, tn_predictor_predict(p, ts[j], zero_tr, NULL, th.Kt, zero_te, nt, pte));
        const double e = tu_rel_err(mean, pte, nt * O, 1e-300);
        ck_assert_msg(e < 1e-11, "t %g: %.3g", ts[j], e);
    }
    tn_predictor_free(p);
    tn_gp_free(g);

    TN_CK(ctx, tn_gp_create(ctx, k.K, k.K, n, O, y, &g));
    for (int r = 0; r < 2; r++) {
        TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, r ? 0.02 : 0.0));
        TN_CK(ctx, tn_gp_ntk_posterior(g, INFINITY, k.Kt, k.Kt, k.Ktt, nt, mean, cov));
        TN_CK(ctx, tn_gp_nngp_posterior(g, k.Kt, k.Ktt, nt, m2, c2));
        ck_assert(tu_rel_err(mean, m2, nt * O, 1e-300) < 1e-10);
        ck_assert_msg(tu_rel_err(cov, c2, nt * nt, 1.0) < 1e-10, "reg %d: %.3g", r,
                      tu_rel_err(cov, c2, nt * nt, 1.0));
    }
    tn_gp_free(g);
    free(y);
    free_kern(&k), free_kern(&th);
}
END_TEST

/* Singular kernels: a rank-deficient NTK works at finite t and is NUMERIC
 * at t = INFINITY until TN_GP_DIAG_REG makes it invertible; a
 * rank-deficient NNGP kernel is NUMERIC (its factorization fails or is
 * flagged by the condition estimate); an indefinite NTK is refused at
 * create. */
START_TEST(gp_singular_and_indefinite)
{
    const size_t n = 5, r = 2, nt = 2, O = 1;
    double *A = tu_random(n * r, 141, 1.0), *At = tu_random(nt * r, 142, 1.0);
    double S[25], St[10], Stt[4], mean[2] = {-7, -7}, cov[4] = {-7, -7, -7, -7};
    mmt(n, n, r, A, A, S);
    mmt(nt, n, r, At, A, St);
    mmt(nt, nt, r, At, At, Stt);
    double *y = tu_random(n * O, 143, 1.0);
    kern k = make_kern(n, nt, 6, 0.1, 144);
    tn_gp *g;
    TN_CK(ctx, tn_gp_create(ctx, k.K, S, n, O, y, &g));
    TN_CK(ctx, tn_gp_ntk_posterior(g, 4.0, St, k.Kt, k.Ktt, nt, mean, cov));
    mean[0] = mean[1] = -7;
    EXPECT(tn_gp_ntk_posterior(g, INFINITY, St, NULL, NULL, nt, mean, NULL), TN_E_NUMERIC,
           "tn_gp_ntk_posterior", "singular");
    ck_assert(mean[0] == -7 && mean[1] == -7);
    TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, 1e-3));
    TN_CK(ctx, tn_gp_ntk_posterior(g, INFINITY, St, NULL, NULL, nt, mean, NULL));
    tn_gp_free(g);

    TN_CK(ctx, tn_gp_create(ctx, S, NULL, n, O, y, &g));
    cov[0] = cov[1] = cov[2] = cov[3] = -7;
    EXPECT(tn_gp_nngp_posterior(g, St, Stt, nt, mean, cov), TN_E_NUMERIC,
           "tn_gp_nngp_posterior", "TN_GP_DIAG_REG");
    ck_assert(cov[0] == -7);
    TN_CK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, 1e-3));
    TN_CK(ctx, tn_gp_nngp_posterior(g, St, Stt, nt, mean, cov));
    tn_gp_free(g);

    double I3[9] = {1, 0, 0, 0, -1, 0, 0, 0, 1}, y3[3] = {1, 2, 3}, P3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    g = (tn_gp *)&g;
    EXPECT(tn_gp_create(ctx, P3, I3, 3, 1, y3, &g), TN_E_NUMERIC, "tn_gp_create",
           "positive semi-definite");
    ck_assert_ptr_null(g);
    free(A), free(At), free(y);
    free_kern(&k);
}
END_TEST

/* Kernels that are not kernels give no variances: before these checks an
 * indefinite NNGP train kernel was accepted and then gave negative
 * variances with TN_OK, and K** = -5 gave a variance of -5.5. */
START_TEST(gp_variances_are_never_negative)
{
    /* An indefinite NNGP train kernel is refused where it is given, as
     * tn_predictor_create refuses one. */
    const double I3[9] = {1, 0, 0, 0, -1, 0, 0, 0, 1}, y3[3] = {1, 2, 3};
    tn_gp *g = (tn_gp *)&g;
    EXPECT(tn_gp_create(ctx, I3, NULL, 3, 1, y3, &g), TN_E_NUMERIC, "tn_gp_create",
           "NNGP train kernel is not positive semi-definite");
    ck_assert_ptr_null(g);

    /* One train point, K = Theta = [1], y = [0.5]; one test point. */
    const double K1 = 1.0, y1 = 0.5;
    double mean = -7, var = -7;
    TN_CK(ctx, tn_gp_create(ctx, &K1, &K1, 1, 1, &y1, &g));
    /* A negative prior variance. */
    const double kx = 0.5, kneg = -5.0;
    EXPECT(tn_gp_nngp_posterior(g, &kx, &kneg, 1, &mean, &var), TN_E_NUMERIC,
           "tn_gp_nngp_posterior", "negative variance");
    EXPECT(tn_gp_ntk_posterior(g, 2.0, &kx, &kx, &kneg, 1, &mean, &var), TN_E_NUMERIC,
           "tn_gp_ntk_posterior", "negative variance");
    ck_assert(mean == -7 && var == -7);
    /* A positive one that the test-train kernel explains more than fully:
     * the joint kernel [[1, 1], [1, 0.5]] has determinant -0.5.  NNGP:
     * 0.5 - 1 = -0.5; NTK-GP at t = infinity with Theta = K the same. */
    const double k1 = 1.0, khalf = 0.5;
    EXPECT(tn_gp_nngp_posterior(g, &k1, &khalf, 1, &mean, &var), TN_E_NUMERIC,
           "tn_gp_nngp_posterior", "not positive semi-definite");
    EXPECT(tn_gp_ntk_posterior(g, INFINITY, &k1, &k1, &khalf, 1, &mean, &var), TN_E_NUMERIC,
           "tn_gp_ntk_posterior", "not positive semi-definite");
    ck_assert(mean == -7 && var == -7);
    /* The mean alone needs no test-test kernel and is still given. */
    TN_CK(ctx, tn_gp_nngp_posterior(g, &k1, NULL, 1, &mean, NULL));
    ck_assert(mean == 0.5);
    tn_gp_free(g);

    /* Test points that are train points: the variance is exactly 0 in
     * exact arithmetic, and rounding may make it slightly negative; it is
     * never returned below 0.  Random PSD kernel (rank 8 of 6 points plus a
     * ridge), test points = train points 0, 2, 5. */
    const size_t n = 6, nt = 3, idx[3] = {0, 2, 5};
    double *F = tu_random(n * 8, 77, 1.0), Kf[36], Kt[18], Ktt[9], cov[9], mu[3], y[6];
    for (size_t i = 0; i < n; i++) {
        y[i] = F[i * 8];
        for (size_t j = 0; j < n; j++) Kf[i * n + j] = tu_dot(F + i * 8, F + j * 8, 8);
    }
    for (size_t a = 0; a < nt; a++) {
        for (size_t j = 0; j < n; j++) Kt[a * n + j] = Kf[idx[a] * n + j];
        for (size_t b = 0; b < nt; b++) Ktt[a * nt + b] = Kf[idx[a] * n + idx[b]];
    }
    TN_CK(ctx, tn_gp_create(ctx, Kf, Kf, n, 1, y, &g));
    TN_CK(ctx, tn_gp_nngp_posterior(g, Kt, Ktt, nt, mu, cov));
    for (size_t a = 0; a < nt; a++) {
        ck_assert_msg(cov[a * nt + a] >= 0 && cov[a * nt + a] < 1e-9 * Ktt[a * nt + a],
                      "NNGP variance at train point %zu: %g", idx[a], cov[a * nt + a]);
        ck_assert_msg(fabs(mu[a] - y[idx[a]]) < 1e-9, "mean %g vs y %g", mu[a], y[idx[a]]);
    }
    TN_CK(ctx, tn_gp_ntk_posterior(g, INFINITY, Kt, Kt, Ktt, nt, mu, cov));
    for (size_t a = 0; a < nt; a++)
        ck_assert_msg(cov[a * nt + a] >= 0 && cov[a * nt + a] < 1e-6 * Ktt[a * nt + a],
                      "NTK-GP variance at train point %zu: %g", idx[a], cov[a * nt + a]);
    tn_gp_free(g);
    free(F);
}
END_TEST

START_TEST(gp_bad_arguments_and_failures_change_nothing)
{
    static const char C[] = "tn_gp_create", S[] = "tn_gp_set", NN[] = "tn_gp_nngp_posterior",
                      NT[] = "tn_gp_ntk_posterior";
    const size_t n = 4, nt = 3, O = 2;
    kern k = make_kern(n, nt, 5, 0.1, 151), th = make_kern(n, nt, 5, 0.2, 152);
    double *y = tu_random(n * O, 153, 1.0);
    double bad[16], badt[12], mean[6], cov[9], rmean[6], rcov[9], nmean[6], ncov[9];
    tn_gp *g = (tn_gp *)&g, *nn;

    EXPECT_NOCTX(tn_gp_create(NULL, k.K, th.K, n, O, y, &g), TN_E_INVALID_ARG);
    ck_assert_ptr_null(g);
    EXPECT(tn_gp_create(ctx, k.K, th.K, n, O, y, NULL), TN_E_INVALID_ARG, C, "out");
    EXPECT(tn_gp_create(ctx, NULL, th.K, n, O, y, &g), TN_E_INVALID_ARG, C, "nngp_train");
    EXPECT(tn_gp_create(ctx, k.K, th.K, n, O, NULL, &g), TN_E_INVALID_ARG, C, "y_train");
    EXPECT(tn_gp_create(ctx, k.K, th.K, 0, O, y, &g), TN_E_INVALID_ARG, C, "n_train is 0");
    EXPECT(tn_gp_create(ctx, k.K, th.K, n, 0, y, &g), TN_E_INVALID_ARG, C, "n_out is 0");
    memcpy(bad, k.K, sizeof bad);
    bad[5] = NAN;
    EXPECT(tn_gp_create(ctx, bad, th.K, n, O, y, &g), TN_E_INVALID_ARG, C, "nngp_train");
    EXPECT(tn_gp_create(ctx, k.K, bad, n, O, y, &g), TN_E_INVALID_ARG, C, "ntk_train");
    memcpy(bad, k.K, sizeof bad);
    bad[1] += 0.1;
    EXPECT(tn_gp_create(ctx, bad, th.K, n, O, y, &g), TN_E_NUMERIC, C, "not symmetric");
    EXPECT(tn_gp_create(ctx, k.K, bad, n, O, y, &g), TN_E_NUMERIC, C, "not symmetric");
    ck_assert_ptr_null(g);

    TN_CK(ctx, tn_gp_create(ctx, k.K, th.K, n, O, y, &g));
    TN_CK(ctx, tn_gp_create(ctx, k.K, NULL, n, O, y, &nn));
    TN_CK(ctx, tn_gp_set(g, TN_GP_LEARNING_RATE, 0.6));
    TN_CK(ctx, tn_gp_ntk_posterior(g, 3.0, th.Kt, k.Kt, k.Ktt, nt, rmean, rcov));
    TN_CK(ctx, tn_gp_nngp_posterior(nn, k.Kt, k.Ktt, nt, nmean, ncov));

    EXPECT_NOCTX(tn_gp_set(NULL, TN_GP_DIAG_REG, 0), TN_E_INVALID_ARG);
    EXPECT_NOCTX(tn_gp_set((tn_gp *)ctx, TN_GP_DIAG_REG, 0), TN_E_MISUSE);
    EXPECT(tn_gp_set(g, TN_GP_DIAG_REG, -1), TN_E_INVALID_ARG, S, "regularizer");
    EXPECT(tn_gp_set(g, TN_GP_DIAG_REG, NAN), TN_E_INVALID_ARG, S, "regularizer");
    EXPECT(tn_gp_set(g, TN_GP_LEARNING_RATE, 0), TN_E_INVALID_ARG, S, "learning rate");
    EXPECT(tn_gp_set(g, TN_GP_LEARNING_RATE, -2), TN_E_INVALID_ARG, S, "learning rate");
    EXPECT(tn_gp_set(g, TN_GP_LEARNING_RATE, INFINITY), TN_E_INVALID_ARG, S, "learning rate");
    EXPECT(tn_gp_set(g, (tn_gp_param)7, 1), TN_E_INVALID_ARG, S, "not a tn_gp_param");

    for (size_t i = 0; i < 6; i++) mean[i] = -7;
    for (size_t i = 0; i < 9; i++) cov[i] = -7;
    EXPECT_NOCTX(tn_gp_nngp_posterior(NULL, k.Kt, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG);
    EXPECT_NOCTX(tn_gp_nngp_posterior((tn_gp *)ctx, k.Kt, k.Ktt, nt, mean, cov), TN_E_MISUSE);
    EXPECT(tn_gp_nngp_posterior(nn, NULL, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NN,
           "nngp_test_train");
    EXPECT(tn_gp_nngp_posterior(nn, k.Kt, NULL, nt, mean, cov), TN_E_INVALID_ARG, NN,
           "nngp_test_test");
    EXPECT(tn_gp_nngp_posterior(nn, k.Kt, k.Ktt, 0, mean, cov), TN_E_INVALID_ARG, NN,
           "n_test is 0");
    memcpy(badt, k.Kt, sizeof badt);
    badt[2] = INFINITY;
    EXPECT(tn_gp_nngp_posterior(nn, badt, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NN,
           "nngp_test_train");
    memcpy(bad, k.Ktt, 9 * sizeof(double));
    bad[4] = NAN;
    EXPECT(tn_gp_nngp_posterior(nn, k.Kt, bad, nt, mean, cov), TN_E_INVALID_ARG, NN,
           "nngp_test_test");
    bad[4] = k.Ktt[4];
    bad[1] += 0.5;
    EXPECT(tn_gp_nngp_posterior(nn, k.Kt, bad, nt, mean, cov), TN_E_NUMERIC, NN, "not symmetric");

    EXPECT_NOCTX(tn_gp_ntk_posterior(NULL, 1, th.Kt, k.Kt, k.Ktt, nt, mean, cov),
                 TN_E_INVALID_ARG);
    EXPECT(tn_gp_ntk_posterior(nn, 1, th.Kt, k.Kt, k.Ktt, nt, mean, cov), TN_E_STATE, NT,
           "without ntk_train");
    EXPECT(tn_gp_ntk_posterior(g, NAN, th.Kt, k.Kt, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NT,
           "t is");
    EXPECT(tn_gp_ntk_posterior(g, -1, th.Kt, k.Kt, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NT,
           "t is");
    EXPECT(tn_gp_ntk_posterior(g, 1, NULL, k.Kt, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NT,
           "ntk_test_train");
    EXPECT(tn_gp_ntk_posterior(g, 1, th.Kt, NULL, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NT,
           "nngp_test_train");
    EXPECT(tn_gp_ntk_posterior(g, 1, th.Kt, k.Kt, NULL, nt, mean, cov), TN_E_INVALID_ARG, NT,
           "nngp_test_test");
    EXPECT(tn_gp_ntk_posterior(g, 1, th.Kt, k.Kt, k.Ktt, 0, mean, cov), TN_E_INVALID_ARG, NT,
           "n_test is 0");
    EXPECT(tn_gp_ntk_posterior(g, 1, th.Kt, k.Kt, k.Ktt, SIZE_MAX / 2, mean, cov),
           TN_E_INVALID_ARG, NT, "overflows");
    memcpy(badt, th.Kt, sizeof badt);
    badt[0] = NAN;
    EXPECT(tn_gp_ntk_posterior(g, 1, badt, k.Kt, k.Ktt, nt, mean, cov), TN_E_INVALID_ARG, NT,
           "ntk_test_train");
    for (size_t i = 0; i < 6; i++) ck_assert(mean[i] == -7);
    for (size_t i = 0; i < 9; i++) ck_assert(cov[i] == -7);

    /* Nothing changed: the same numbers as before the failures. */
    TN_CK(ctx, tn_gp_ntk_posterior(g, 3.0, th.Kt, k.Kt, k.Ktt, nt, mean, cov));
    ck_assert_mem_eq(mean, rmean, sizeof mean);
    ck_assert_mem_eq(cov, rcov, sizeof cov);
    TN_CK(ctx, tn_gp_nngp_posterior(nn, k.Kt, k.Ktt, nt, mean, cov));
    ck_assert_mem_eq(mean, nmean, sizeof mean);
    ck_assert_mem_eq(cov, ncov, sizeof cov);

    tn_gp_free(NULL);
    tn_gp_free((tn_gp *)ctx);
    ck_assert_int_eq(tn_ctx_get_threads(ctx), 1);
    tn_gp_free(g);
    tn_gp_free(nn);
    free(y);
    free_kern(&k), free_kern(&th);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("predict");
    TCase *tp = tcase_create("predictor");
    tcase_add_checked_fixture(tp, setup, teardown);
    tcase_set_timeout(tp, 60);
    tcase_add_test(tp, predictor_matches_linearized_training);
    tcase_add_loop_test(tp, steps_equal_iterated_gradient_descent, 0, 2);
    tcase_add_test(tp, flow_is_the_limit_of_small_steps);
    tcase_add_test(tp, time_composes);
    tcase_add_loop_test(tp, infinite_time_is_kernel_regression, 0, 2);
    tcase_add_test(tp, traced_equals_block_diagonal_full);
    tcase_add_test(tp, diag_reg_is_the_shifted_kernel);
    tcase_add_test(tp, singular_kernel_clipped);
    tcase_add_test(tp, indefinite_and_nonsymmetric_refused);
    tcase_add_test(tp, small_factors_do_not_cancel);
    tcase_add_test(tp, overflow_is_refused);
    tcase_add_test(tp, predictor_bad_arguments);
    tcase_add_test(tp, predictor_failures_change_nothing);
    tcase_add_test(tp, outputs_optional_and_threads);
    suite_add_tcase(s, tp);
    TCase *tg = tcase_create("gp");
    tcase_add_checked_fixture(tg, setup, teardown);
    tcase_set_timeout(tg, 60);
    tcase_add_test(tg, nngp_posterior_matches_elimination);
    tcase_add_test(tg, ntk_gp_matches_direct_formula);
    tcase_add_test(tg, ntk_gp_agrees_with_predictor_and_nngp);
    tcase_add_test(tg, gp_singular_and_indefinite);
    tcase_add_test(tg, gp_bad_arguments_and_failures_change_nothing);
    tcase_add_test(tg, gp_variances_are_never_negative);
    suite_add_tcase(s, tg);
    return tu_run(s);
}
