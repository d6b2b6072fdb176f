/* test_regret.c -- the regret against the Taylor optimum (MATH.md §7)
 * against an independent computation: each recorded step's Jacobian J_t
 * formed here column by column from JVPs with unit tangents at theta_t,
 * b_t from the network's forward, and the minimum of the summed Taylor
 * losses by a dense solve written here (Householder QR for MSE, Newton
 * with a dense Hessian and Cholesky for cross-entropy).  The runs cover
 * every layer kind (dense, convolution, average and global pooling,
 * flatten, a residual sum) and every training mode (full, order k,
 * linearized, re-expanded, lazy alpha, centered). */
#include "testutil.h"

TU_CONTEXT_PER_TEST

/* ---- a recorded run, as the test sees it ------------------------------ */

typedef struct run {
    size_t T, n, d, O, P;
    int loss;
    double alpha;
    double *theta;          /* T x P: the parameters each step started from */
    double *x, *y;          /* T x n x d, T x n x O */
    double *b;              /* T x n x O: alpha (f(theta_t) - [centered] f(theta0_t)) */
    double *J;              /* T x (n O) x P */
    double loss_sum;        /* sum_t l_t(theta_t), from the forward here */
} run;

static double mse(const double *f, const double *y, size_t n, size_t O)
{
    double s = 0;
    for (size_t e = 0; e < n * O; e++) s += 0.5 * (f[e] - y[e]) * (f[e] - y[e]);
    return s / (double)n;
}

/* Cross-entropy by the textbook formula -sum y log softmax, with the max
 * shift (the values here are small, no overflow either way). */
static double xent(const double *f, const double *y, size_t n, size_t O)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double *fi = f + i * O, *yi = y + i * O;
        double m = fi[0], z = 0;
        for (size_t c = 1; c < O; c++) m = fmax(m, fi[c]);
        for (size_t c = 0; c < O; c++) z += exp(fi[c] - m);
        for (size_t c = 0; c < O; c++) s -= yi[c] * (fi[c] - m - log(z));
    }
    return s / (double)n;
}

static double loss_of(const run *r, const double *f, const double *y)
{
    return (r->loss == TN_LOSS_MSE ? mse(f, y, r->n, r->O) : xent(f, y, r->n, r->O)) /
           (r->alpha * r->alpha);
}

/* J (n O x P) of net at theta on x: column p is the JVP along e_p. */
static void jacobian(tn_net *net, const double *theta, const double *x, size_t n, size_t O,
                     size_t P, double *J)
{
    double *save = tu_params(ctx, net), *e = calloc(P, sizeof(double)), *col = malloc(n * O * 8);
    TN_CK(ctx, tn_net_set_params(net, theta, P));
    for (size_t p = 0; p < P; p++) {
        e[p] = 1.0;
        TN_CK(ctx, tn_net_jvp(net, x, n, e, col));
        e[p] = 0.0;
        for (size_t r = 0; r < n * O; r++) J[r * P + p] = col[r];
    }
    TN_CK(ctx, tn_net_set_params(net, save, P));
    free(save), free(e), free(col);
}

static void forward_at(tn_net *net, const double *theta, const double *x, size_t n, double *f)
{
    const size_t P = tn_net_num_params(net);
    double *save = tu_params(ctx, net);
    TN_CK(ctx, tn_net_set_params(net, theta, P));
    TN_CK(ctx, tn_net_forward(net, x, n, f));
    TN_CK(ctx, tn_net_set_params(net, save, P));
    free(save);
}

/* The sum of the Taylor losses at V, and its gradient (may be NULL). */
static double taylor_sum(const run *r, const double *V, double *grad)
{
    const size_t nO = r->n * r->O, P = r->P;
    double *z = malloc(nO * 8), F = 0;
    if (grad) memset(grad, 0, P * 8);
    for (size_t t = 0; t < r->T; t++) {
        const double *J = r->J + t * nO * P, *th = r->theta + t * P, *y = r->y + t * nO;
        for (size_t e = 0; e < nO; e++) {
            double acc = 0;
            for (size_t p = 0; p < P; p++) acc += J[e * P + p] * (V[p] - th[p]);
            z[e] = r->b[t * nO + e] + r->alpha * acc;
        }
        F += loss_of(r, z, y);
        if (!grad) continue;
        /* dl/dV = J^T dL/dz / alpha */
        for (size_t i = 0; i < r->n; i++) {
            const double *zi = z + i * r->O, *yi = y + i * r->O;
            double m = zi[0], s = 0, ys = 0;
            for (size_t c = 1; c < r->O; c++) m = fmax(m, zi[c]);
            for (size_t c = 0; c < r->O; c++) s += exp(zi[c] - m), ys += yi[c];
            for (size_t c = 0; c < r->O; c++) {
                const double dz = r->loss == TN_LOSS_MSE ? zi[c] - yi[c]
                                                         : ys * exp(zi[c] - m) / s - yi[c];
                const double w = dz / ((double)r->n * r->alpha);
                for (size_t p = 0; p < P; p++) grad[p] += w * J[(i * r->O + c) * P + p];
            }
        }
    }
    free(z);
    return F;
}

/* How a run trains: the mode of each configuration of the tests. */
typedef struct mode {
    const char *name;
    int arch;               /* 0: tanh MLP, 1: ReLU MLP, 2: CNN (conv, ReLU, global pooling,
                               dense), 3: residual CNN (a block summed with its input,
                               average pooling, flatten, dense) */
    int order, centered;
    double alpha;
    uint64_t reexpand;
    int optimizer;
} mode;

static const mode modes[] = {
    {"full, tanh MLP, SGD", 0, 0, 0, 1.0, 0, TN_OPT_SGD},
    {"full, ReLU MLP, Adam", 1, 0, 0, 1.0, 0, TN_OPT_ADAM},
    {"full, CNN, momentum", 2, 0, 0, 1.0, 0, TN_OPT_MOMENTUM},
    {"order 2, alpha 3, centered, RMSProp", 0, 2, 1, 3.0, 0, TN_OPT_RMSPROP},
    {"linearized, re-expanded every 2, centered, CNN", 2, 1, 1, 2.0, 2, TN_OPT_SGD},
    {"full, alpha 0.5, centered, tanh MLP", 0, 0, 1, 0.5, 0, TN_OPT_NESTEROV},
    {"full, residual CNN, Adam", 3, 0, 0, 1.0, 0, TN_OPT_ADAM},
    {"order 3, alpha 2, centered, residual CNN, RMSProp", 3, 3, 1, 2.0, 0, TN_OPT_RMSPROP},
};

static tn_net *make_net(int arch, size_t *d, size_t O, uint64_t seed)
{
    tn_net *net = NULL;
    if (arch < 2) {
        const size_t w[] = {5, O};
        *d = 3;
        return tu_mlp(ctx, *d, w, 2, arch == 0 ? TN_ACT_TANH : TN_ACT_RELU, TN_PARAM_NTK, seed);
    }
    const size_t shape[3] = {4, 4, 1};
    *d = 16;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
    TN_CK(ctx, tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
    if (arch == 2) {
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_global_avg_pool(net));
    } else {
        size_t in;
        TN_CK(ctx, tn_net_current(net, &in));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_conv2d(net, 2, 1, 1, 1, TN_PAD_SAME));
        TN_CK(ctx, tn_net_add_sum(net, in));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_avg_pool2d(net, 2, 2, 2, TN_PAD_VALID));
        TN_CK(ctx, tn_net_add_flatten(net));
    }
    TN_CK(ctx, tn_net_add_dense(net, O));
    TN_CK(ctx, tn_net_init(net, seed));
    return net;
}

/* Targets: MSE random; cross-entropy one-hot labels at random. */
static void targets(int loss, double *y, size_t n, size_t O, uint64_t seed)
{
    if (loss == TN_LOSS_MSE) {
        for (size_t e = 0; e < n * O; e++) y[e] = tu_uniform(&seed);
        return;
    }
    memset(y, 0, n * O * 8);
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)((tu_uniform(&seed) + 1) * 0.5 * (double)O);
        y[i * O + (c < O ? c : O - 1)] = 1.0;
    }
}

/* Trains T steps of n rows in mode m with recording on, keeping what the
 * test needs; step 2 repeats step 1's batch (the record shares it). */
static tn_trainer *record_run(const mode *m, int loss, size_t T, size_t n, size_t O, run *r,
                              tn_net **net_out)
{
    size_t d;
    tn_net *net = make_net(m->arch, &d, O, 7);
    const size_t P = tn_net_num_params(net);
    *r = (run){.T = T, .n = n, .d = d, .O = O, .P = P, .loss = loss, .alpha = m->alpha};
    r->theta = malloc(T * P * 8);
    r->x = malloc(T * n * d * 8);
    r->y = malloc(T * n * O * 8);
    r->b = malloc(T * n * O * 8);
    r->J = malloc(T * n * O * P * 8);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, loss));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, m->optimizer));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.05));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, m->order));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, m->alpha));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, m->centered));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, (double)m->reexpand));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    double *theta0 = tu_params(ctx, net), *f = malloc(n * O * 8), *f0 = malloc(n * O * 8);
    for (size_t t = 0; t < T; t++) {
        double *x = r->x + t * n * d, *y = r->y + t * n * O, *th = r->theta + t * P;
        if (t == 2) {
            memcpy(x, r->x + n * d, n * d * 8);
            memcpy(y, r->y + n * O, n * O * 8);
        } else {
            double *xr = tu_random(n * d, 100 + t, 1.0);
            memcpy(x, xr, n * d * 8);
            free(xr);
            targets(loss, y, n, O, 200 + t);
        }
        TN_CK(ctx, tn_net_get_params(net, th, P));
        if (m->reexpand && t % m->reexpand == 0) memcpy(theta0, th, P * 8);
        forward_at(net, th, x, n, f);
        forward_at(net, theta0, x, n, f0);
        for (size_t e = 0; e < n * O; e++)
            r->b[t * n * O + e] = m->alpha * (f[e] - (m->centered ? f0[e] : 0.0));
        r->loss_sum += loss_of(r, r->b + t * n * O, y);
        jacobian(net, th, x, n, O, P, r->J + t * n * O * P);
        TN_CK(ctx, tn_trainer_step(tr, x, y, n, NULL));
    }
    free(theta0), free(f), free(f0);
    *net_out = net;
    return tr;
}

static void run_free(run *r)
{
    free(r->theta), free(r->x), free(r->y), free(r->b), free(r->J);
}

/* ---- MSE: the dense least-squares solve ------------------------------- */

/* min_V sum_t (1/2n) |J_t (V - theta_t) + (b_t - y_t)/alpha|^2 by Householder
 * QR of the stacked A = J_t / sqrt(n) (M x P, M >= P, full column rank):
 * the minimum is half the squared norm of the part of c outside range(A). */
static double mse_optimum(const run *r, double *V)
{
    const size_t nO = r->n * r->O, M = r->T * nO, P = r->P;
    ck_assert_uint_ge(M, P);
    double *A = malloc(M * P * 8), *c = malloc(M * 8), *v = malloc(M * 8);
    const double w = 1.0 / sqrt((double)r->n);
    for (size_t t = 0; t < r->T; t++) {
        const double *J = r->J + t * nO * P, *th = r->theta + t * P;
        for (size_t e = 0; e < nO; e++) {
            double jt = 0;
            for (size_t p = 0; p < P; p++) {
                A[(t * nO + e) * P + p] = w * J[e * P + p];
                jt += J[e * P + p] * th[p];
            }
            c[t * nO + e] = w * (jt - (r->b[t * nO + e] - r->y[t * nO + e]) / r->alpha);
        }
    }
    for (size_t k = 0; k < P; k++) {
        double nrm = 0;
        for (size_t i = k; i < M; i++) nrm += A[i * P + k] * A[i * P + k];
        nrm = sqrt(nrm);
        const double alpha = A[k * P + k] > 0 ? -nrm : nrm;
        for (size_t i = k; i < M; i++) v[i] = A[i * P + k];
        v[k] -= alpha;
        double vv = 0;
        for (size_t i = k; i < M; i++) vv += v[i] * v[i];
        for (size_t j = k; j < P; j++) {
            double s = 0;
            for (size_t i = k; i < M; i++) s += v[i] * A[i * P + j];
            s *= 2 / vv;
            for (size_t i = k; i < M; i++) A[i * P + j] -= s * v[i];
        }
        double s = 0;
        for (size_t i = k; i < M; i++) s += v[i] * c[i];
        s *= 2 / vv;
        for (size_t i = k; i < M; i++) c[i] -= s * v[i];
    }
    for (size_t k = P; k-- > 0;) {
        double s = c[k];
        for (size_t j = k + 1; j < P; j++) s -= A[k * P + j] * V[j];
        V[k] = s / A[k * P + k];
    }
    double F = 0;
    for (size_t i = P; i < M; i++) F += 0.5 * c[i] * c[i];
    free(A), free(c), free(v);
    return F;
}

static const int solvers[] = {TN_REGRET_AUTO, TN_REGRET_DIRECT, TN_REGRET_LSQR,
                              TN_REGRET_NEWTON_CG};
#define NMODES (sizeof modes / sizeof modes[0])

/* _i: a mode of modes[] times each solver the user may pick for MSE, each
 * on a fresh record (a solve starts from the last one's minimizer). */
START_TEST(mse_regret_matches_dense_least_squares)
{
    const mode *m = &modes[_i / 4];
    const int solver = solvers[_i % 4];
    run r;
    tn_net *net;
    tn_trainer *tr = record_run(m, TN_LOSS_MSE, 6, 8, 2, &r, &net);
    double *Vtest = malloc(r.P * 8), *V = malloc(r.P * 8), *g = malloc(r.P * 8);
    const double Ftest = mse_optimum(&r, Vtest);
    double v, R, F;
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_LOSS_SUM, &v));
    /* The record's l_t(theta_t) are the network's losses the test computes
     * from its own forwards: only rounding apart. */
    ck_assert_msg(fabs(v - r.loss_sum) <= 1e-13 * r.loss_sum, "%s: loss sum %.17g vs %.17g",
                  m->name, v, r.loss_sum);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, solver));
    TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
    TN_CK(ctx, tn_trainer_regret_minimizer(tr, V, r.P));
    /* Tolerance: the problem is small and well conditioned (M = 96 rows,
     * P <= 44), the test's QR and the library's SVD, LSQR (to 1e-12) and
     * Newton-CG (to 1e-12 of the loss sum) agree on the minimum to within
     * about 1e-14 of the loss sum (measured); 1e-11 leaves room for other
     * platforms' rounding. */
    ck_assert_msg(fabs(F - Ftest) <= 1e-11 * r.loss_sum, "%s, solver %d: optimum %.17g vs %.17g",
                  m->name, solver, F, Ftest);
    ck_assert_double_eq_tol(R, r.loss_sum - F, 1e-12 * r.loss_sum);
    /* The minimizer is one: F there, computed here, is the reported
     * minimum, and the gradient vanishes (to the rounding of a gradient
     * made of terms of size loss_sum). */
    const double Fv = taylor_sum(&r, V, g);
    ck_assert_msg(fabs(Fv - F) <= 1e-11 * r.loss_sum, "%s: F(V) %.17g vs %.17g", m->name, Fv, F);
    ck_assert_msg(sqrt(tu_dot(g, g, r.P)) <= 1e-8 * r.loss_sum, "%s: |grad F(V)| = %g", m->name,
                  sqrt(tu_dot(g, g, r.P)));
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_SOLVER_USED, &v));
    ck_assert_int_eq((int)v, solver == TN_REGRET_AUTO ? TN_REGRET_DIRECT : solver);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_ACCURACY, &v));
    ck_assert_double_le(v, 1e-12);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_ITERATIONS, &v));
    ck_assert_double_ge(v, 1);
    tn_trainer_free(tr);
    tn_net_free(net);
    run_free(&r);
    free(Vtest), free(V), free(g);
}
END_TEST

/* ---- cross-entropy: Newton with the dense Hessian -------------------- */

/* min_V F by Newton's method on the explicit Jacobians: H = sum_t J_t^T
 * d^2L J_t (P x P) plus 1e-14 trace(H) / P on the diagonal (H is singular
 * along shifts of all logits alike, where the gradient vanishes too),
 * Cholesky, backtracking; to |g| <= 1e-13 (1 + |F|). */
static double xent_optimum(const run *r, double *V)
{
    const size_t nO = r->n * r->O, P = r->P;
    double *g = malloc(P * 8), *H = malloc(P * P * 8), *dv = malloc(P * 8), *Vt = malloc(P * 8);
    double *z = malloc(nO * 8), *pr = malloc(r->O * 8), *HJ = malloc(r->O * P * 8);
    double *gt = malloc(P * 8);
    memcpy(V, r->theta + (r->T - 1) * P, P * 8);
    double F = taylor_sum(r, V, g);
    for (int it = 0; it < 200; it++) {
        if (sqrt(tu_dot(g, g, P)) <= 1e-13 * (1 + fabs(F))) break;
        memset(H, 0, P * P * 8);
        for (size_t t = 0; t < r->T; t++) {
            const double *J = r->J + t * nO * P, *th = r->theta + t * P;
            for (size_t e = 0; e < nO; e++) {
                double acc = 0;
                for (size_t p = 0; p < P; p++) acc += J[e * P + p] * (V[p] - th[p]);
                z[e] = r->b[t * nO + e] + r->alpha * acc;
            }
            for (size_t i = 0; i < r->n; i++) {
                const double *zi = z + i * r->O, *Ji = J + i * r->O * P;
                double m = zi[0], sum = 0;
                for (size_t c = 1; c < r->O; c++) m = fmax(m, zi[c]);
                for (size_t c = 0; c < r->O; c++) sum += (pr[c] = exp(zi[c] - m));
                for (size_t c = 0; c < r->O; c++) pr[c] /= sum;
                /* d^2L/dz^2 = (diag p - p p^T) / n (one-hot rows sum to 1) */
                for (size_t c = 0; c < r->O; c++)
                    for (size_t p = 0; p < P; p++) {
                        double acc = pr[c] * Ji[c * P + p];
                        for (size_t k = 0; k < r->O; k++) acc -= pr[c] * pr[k] * Ji[k * P + p];
                        HJ[c * P + p] = acc / (double)r->n;
                    }
                for (size_t p = 0; p < P; p++)
                    for (size_t q = 0; q < P; q++)
                        for (size_t c = 0; c < r->O; c++) H[p * P + q] += Ji[c * P + p] * HJ[c * P + q];
            }
        }
        double tr = 0;
        for (size_t p = 0; p < P; p++) tr += H[p * P + p];
        for (size_t p = 0; p < P; p++) H[p * P + p] += 1e-14 * tr / (double)P;
        /* Cholesky H = L L^T in place (lower), then dv = -H^-1 g. */
        for (size_t j = 0; j < P; j++) {
            double d = H[j * P + j];
            for (size_t k = 0; k < j; k++) d -= H[j * P + k] * H[j * P + k];
            ck_assert(d > 0);
            H[j * P + j] = sqrt(d);
            for (size_t i = j + 1; i < P; i++) {
                double s2 = H[i * P + j];
                for (size_t k = 0; k < j; k++) s2 -= H[i * P + k] * H[j * P + k];
                H[i * P + j] = s2 / H[j * P + j];
            }
        }
        for (size_t i = 0; i < P; i++) {
            double s2 = -g[i];
            for (size_t k = 0; k < i; k++) s2 -= H[i * P + k] * dv[k];
            dv[i] = s2 / H[i * P + i];
        }
        for (size_t i = P; i-- > 0;) {
            double s2 = dv[i];
            for (size_t k = i + 1; k < P; k++) s2 -= H[k * P + i] * dv[k];
            dv[i] = s2 / H[i * P + i];
        }
        double step = 1, Fn = F;
        for (int ls = 0; ls < 60; ls++, step *= 0.5) {
            for (size_t p = 0; p < P; p++) Vt[p] = V[p] + step * dv[p];
            Fn = taylor_sum(r, Vt, NULL);
            if (Fn <= F + 1e-4 * step * tu_dot(g, dv, P)) break;
        }
        if (!(Fn < F)) {
            /* F is flat to its rounding here (a decrease of |g| |dv|, far
             * below eps |F|, is invisible): judge the full Newton step by
             * the gradient instead, which still falls quadratically. */
            for (size_t p = 0; p < P; p++) Vt[p] = V[p] + dv[p];
            const double Ft = taylor_sum(r, Vt, gt);
            if (!(tu_dot(gt, gt, P) < tu_dot(g, g, P))) break;   /* at the minimum to rounding */
            memcpy(V, Vt, P * 8);
            memcpy(g, gt, P * 8);
            F = Ft;
            continue;
        }
        memcpy(V, Vt, P * 8);
        F = taylor_sum(r, V, g);
    }
    ck_assert_msg(sqrt(tu_dot(g, g, P)) <= 1e-10 * (1 + fabs(F)),
                  "the test's Newton did not converge: |g| = %g", sqrt(tu_dot(g, g, P)));
    free(g), free(H), free(dv), free(Vt), free(z), free(pr), free(HJ), free(gt);
    return F;
}

/* _i: modes[] x tolerance 1e-12 (the default) or 1e-4.  10 steps of 12
 * examples with random labels over 3 classes: more examples than the
 * Taylor model's parameters can separate, so the minimum is attained. */
START_TEST(xent_optimum_below_every_recorded_point)
{
    const mode *m = &modes[_i / 2];
    const double tol = _i % 2 ? 1e-4 : 1e-12;
    run r;
    tn_net *net;
    tn_trainer *tr = record_run(m, TN_LOSS_SOFTMAX_XENT, 10, 12, 3, &r, &net);
    double *V = malloc(r.P * 8), *Vlib = malloc(r.P * 8), v, R, F;
    const double Ftest = xent_optimum(&r, V);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_TOLERANCE, tol));
    TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_SOLVER_USED, &v));
    ck_assert_int_eq((int)v, TN_REGRET_NEWTON_CG);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_ACCURACY, &v));
    ck_assert_double_le(v, tol);
    ck_assert_double_eq_tol(R, r.loss_sum - F, 1e-12 * r.loss_sum);
    /* No larger than the Taylor losses' sum at any recorded theta_s, nor
     * than the minimum plus what the tolerance allows: tol times the loss
     * sum (the stopping rule), times 2 for the estimate's own error. */
    for (size_t s2 = 0; s2 < r.T; s2++) {
        const double Fs = taylor_sum(&r, r.theta + s2 * r.P, NULL);
        ck_assert_msg(F <= Fs + 1e-13 * r.loss_sum, "%s: optimum %.17g above F(theta_%zu) = %.17g",
                      m->name, F, s2, Fs);
    }
    ck_assert_msg(F <= Ftest + 2 * tol * r.loss_sum + 1e-13 * r.loss_sum,
                  "%s, tol %g: optimum %.17g vs the dense Newton's %.17g (%.3g of the loss sum)",
                  m->name, tol, F, Ftest, (F - Ftest) / r.loss_sum);
    /* ... and not below the minimum, beyond rounding. */
    ck_assert_msg(F >= Ftest - 1e-13 * r.loss_sum, "%s: optimum %.17g below the minimum %.17g",
                  m->name, F, Ftest);
    /* The minimizer gives the minimum reported. */
    TN_CK(ctx, tn_trainer_regret_minimizer(tr, Vlib, r.P));
    ck_assert_double_eq_tol(taylor_sum(&r, Vlib, NULL), F, 1e-12 * r.loss_sum);
    tn_trainer_free(tr);
    tn_net_free(net);
    run_free(&r);
    free(V), free(Vlib);
}
END_TEST

/* ---- a run whose steps are all at one theta ---------------------------- */

static tn_status zero_gradient(void *user, double *grad, size_t len, double *loss)
{
    (void)user, (void)loss;
    memset(grad, 0, len * sizeof(double));
    return TN_OK;
}

/* The gradient hook zeroes every gradient, so every step is at theta.  The
 * batches come in pairs on the same x whose loss gradients in f cancel:
 * MSE targets f +- delta, cross-entropy targets p +- eps w (p the softmax
 * of f, w summing to 0).  Then theta minimizes the sum of the Taylor
 * losses, whose value there is the loss sum: R_T = 0.  _i: ReLU MLP or
 * CNN, times MSE or cross-entropy. */
START_TEST(regret_of_steps_at_one_theta_is_zero)
{
    const int loss = _i % 2 ? TN_LOSS_SOFTMAX_XENT : TN_LOSS_MSE;
    size_t d;
    const size_t O = 3, n = 5;
    tn_net *net = make_net(_i / 2 ? 2 : 1, &d, O, 3);
    const size_t P = tn_net_num_params(net);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, loss));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    TN_CK(ctx, tn_trainer_set_gradient_hook(tr, zero_gradient, NULL));
    double *theta = tu_params(ctx, net), *f = malloc(n * O * 8), *y = malloc(n * O * 8);
    double loss_sum = 0, l;
    for (int pair = 0; pair < 3; pair++) {
        double *x = tu_random(n * d, 10 + (uint64_t)pair, 1.0), *w = tu_random(n * O, 20 + (uint64_t)pair, 1.0);
        TN_CK(ctx, tn_net_forward(net, x, n, f));
        for (int sign = -1; sign <= 1; sign += 2) {
            for (size_t i = 0; i < n; i++) {
                double m = f[i * O], s = 0, mean = 0;
                for (size_t c = 1; c < O; c++) m = fmax(m, f[i * O + c]);
                for (size_t c = 0; c < O; c++) s += exp(f[i * O + c] - m), mean += w[i * O + c] / (double)O;
                for (size_t c = 0; c < O; c++) {
                    const size_t e = i * O + c;
                    y[e] = loss == TN_LOSS_MSE ? f[e] + sign * 0.5 * w[e]
                                               : exp(f[e] - m) / s + sign * 0.01 * (w[e] - mean);
                }
            }
            TN_CK(ctx, tn_trainer_step(tr, x, y, n, &l));
            loss_sum += l;
        }
        free(x), free(w);
    }
    double *now = tu_params(ctx, net);
    ck_assert_mem_eq(now, theta, P * 8);
    const int solvers_here[] = {TN_REGRET_DIRECT, TN_REGRET_LSQR, TN_REGRET_NEWTON_CG};
    for (size_t k = loss == TN_LOSS_MSE ? 0 : 2; k < 3; k++) {
        double R, F;
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, solvers_here[k]));
        TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
        /* Zero to the rounding of sums of size loss_sum. */
        ck_assert_msg(fabs(R) <= 1e-12 * loss_sum, "solver %d: R = %g of a loss sum %g",
                      solvers_here[k], R, loss_sum);
        ck_assert_double_eq_tol(F, loss_sum, 1e-12 * loss_sum);
    }
    tn_trainer_free(tr);
    tn_net_free(net);
    free(theta), free(now), free(f), free(y);
}
END_TEST

/* ---- more parameters than rows: the Taylor losses reach 0 ------------- */

START_TEST(underdetermined_mse_has_optimum_zero)
{
    const size_t w[] = {20, 2};
    tn_net *net = tu_mlp(ctx, 3, w, 2, TN_ACT_TANH, TN_PARAM_STANDARD, 5);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.1));
    double sum = 0, l;
    for (uint64_t t = 0; t < 3; t++) {
        double *x = tu_random(4 * 3, 30 + t, 1.0), *y = tu_random(4 * 2, 40 + t, 1.0);
        TN_CK(ctx, tn_trainer_step(tr, x, y, 4, &l));
        sum += l;
        free(x), free(y);
    }
    /* 24 rows, 122 parameters: J has full row rank, so some V fits every
     * target exactly; the minimum is 0 to the solvers' tolerance (1e-12,
     * relative to the residual's scale: F <= 1e-20 or so, below 1e-15 of sum). */
    for (int k = TN_REGRET_DIRECT; k <= TN_REGRET_NEWTON_CG; k++) {
        double R, F;
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, k));
        TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
        ck_assert_msg(F >= 0 && F <= 1e-15 * sum, "solver %d: optimum %g of %g", k, F, sum);
        ck_assert_double_eq_tol(R, sum, 1e-12 * sum);
    }
    tn_trainer_free(tr);
    tn_net_free(net);
}
END_TEST

/* ---- memory: what a step costs, and the budget ------------------------ */

/* The documented cost: 8 (P + n O) + sizeof header per step, 8 n (d + O) +
 * sizeof header per new batch, 8 bytes per slot of the record's index
 * (16 slots first).  The headers are 48 and 32 bytes on LP64. */
static double expected_bytes(size_t steps, size_t batches, size_t P, size_t n, size_t d, size_t O)
{
    const double step = 8.0 * (double)(P + n * O) + (sizeof(void *) == 8 ? 48 : 0);
    const double batch = 8.0 * (double)(n * (d + O)) + (sizeof(void *) == 8 ? 32 : 0);
    return 16 * 8.0 + (double)steps * step + (double)batches * batch;
}

START_TEST(record_costs_what_is_documented_and_stays_in_budget)
{
    if (sizeof(void *) != 8) return;   /* the header sizes asserted are LP64's */
    const size_t w[] = {6, 2}, d = 3, n = 4, O = 2;
    tn_net *net = tu_mlp(ctx, d, w, 2, TN_ACT_RELU, TN_PARAM_NTK, 2);
    const size_t P = tn_net_num_params(net);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    double v, *xa = tu_random(n * d, 1, 1), *xb = tu_random(n * d, 2, 1), *y = tu_random(n * O, 3, 1);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_BYTES, &v));
    ck_assert_double_eq(v, 0);
    /* Batches a, a (shared with the step before), b. */
    TN_CK(ctx, tn_trainer_step(tr, xa, y, n, NULL));
    TN_CK(ctx, tn_trainer_step(tr, xa, y, n, NULL));
    TN_CK(ctx, tn_trainer_step(tr, xb, y, n, NULL));
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_BYTES, &v));
    ck_assert_double_eq(v, expected_bytes(3, 2, P, n, d, O));
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_STEPS, &v));
    ck_assert_double_eq(v, 3);
    /* A budget one byte short of a fourth step on a new batch: the step
     * fails, says why, and changes nothing. */
    const double full = expected_bytes(4, 3, P, n, d, O);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_MEMORY, full - 1));
    double *theta = tu_params(ctx, net), loss = -7;
    ck_assert_int_eq(tn_trainer_step(tr, xa, y, n, &loss), TN_E_NOMEM);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "TN_TRAIN_REGRET_MEMORY"));
    ck_assert_double_eq(loss, -7);
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 3);
    double *now = tu_params(ctx, net);
    ck_assert_mem_eq(now, theta, P * 8);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_STEPS, &v));
    ck_assert_double_eq(v, 3);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_BYTES, &v));
    ck_assert_double_eq(v, expected_bytes(3, 2, P, n, d, O));
    /* Exactly enough: it goes through and fills the budget. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_MEMORY, full));
    TN_CK(ctx, tn_trainer_step(tr, xa, y, n, NULL));
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_BYTES, &v));
    ck_assert_double_eq(v, full);
    /* Off and on: a new, empty record. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 0));
    TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_RECORD_TAYLOR, &v));
    ck_assert_double_eq(v, 0);
    ck_assert_int_eq(tn_trainer_regret_info(tr, TN_REGRET_STEPS, &v), TN_E_STATE);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_STEPS, &v));
    ck_assert_double_eq(v, 0);
    tn_trainer_free(tr);
    tn_net_free(net);
    free(xa), free(xb), free(y), free(theta), free(now);
}
END_TEST

/* ---- bad input --------------------------------------------------------- */

START_TEST(bad_input_gets_its_status_and_message)
{
    const size_t w[] = {6, 2};
    tn_net *net = tu_mlp(ctx, 3, w, 2, TN_ACT_TANH, TN_PARAM_NTK, 2);
    const size_t P = tn_net_num_params(net);
    tn_trainer *tr;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    double R, F, v, *V = malloc(P * 8);
    /* NULL handle, NULL outputs where required. */
    ck_assert_int_eq(tn_trainer_regret(NULL, &R, &F), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_regret_info(NULL, TN_REGRET_STEPS, &v), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_regret_info(tr, TN_REGRET_STEPS, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_regret_minimizer(NULL, V, P), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_regret_minimizer(tr, NULL, P), TN_E_INVALID_ARG);
    /* Settings out of range. */
    const struct { tn_train_param p; double v; } bad[] = {
        {TN_TRAIN_RECORD_TAYLOR, 2}, {TN_TRAIN_RECORD_TAYLOR, 0.5},
        {TN_TRAIN_REGRET_MEMORY, -1}, {TN_TRAIN_REGRET_MEMORY, 1.5}, {TN_TRAIN_REGRET_MEMORY, NAN},
        {TN_TRAIN_REGRET_TOLERANCE, 0}, {TN_TRAIN_REGRET_TOLERANCE, 1},
        {TN_TRAIN_REGRET_TOLERANCE, NAN}, {TN_TRAIN_REGRET_MAX_ITERATIONS, 0},
        {TN_TRAIN_REGRET_MAX_ITERATIONS, 2.5}, {TN_TRAIN_REGRET_SOLVER, 4},
        {TN_TRAIN_REGRET_SOLVER, -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(tn_trainer_set(tr, bad[i].p, bad[i].v), TN_E_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_trainer_set"));
    }
    /* Defaults. */
    const struct { tn_train_param p; double v; } defaults[] = {
        {TN_TRAIN_RECORD_TAYLOR, 0}, {TN_TRAIN_REGRET_MEMORY, 1073741824.0},
        {TN_TRAIN_REGRET_TOLERANCE, 1e-12}, {TN_TRAIN_REGRET_MAX_ITERATIONS, 20000},
        {TN_TRAIN_REGRET_SOLVER, TN_REGRET_AUTO},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        TN_CK(ctx, tn_trainer_get(tr, defaults[i].p, &v));
        ck_assert_double_eq(v, defaults[i].v);
    }
    /* Nothing recorded: recording off, then on with no step yet. */
    ck_assert_int_eq(tn_trainer_regret(tr, &R, &F), TN_E_STATE);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "TN_TRAIN_RECORD_TAYLOR"));
    ck_assert_int_eq(tn_trainer_regret_info(tr, TN_REGRET_STEPS, &v), TN_E_STATE);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    ck_assert_int_eq(tn_trainer_regret(tr, &R, &F), TN_E_STATE);
    ck_assert_int_eq(tn_trainer_regret_info(tr, (tn_regret_info)10, &v), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_regret_info(tr, (tn_regret_info)-1, &v), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_regret_info(tr, TN_REGRET_VALUE, &v), TN_E_STATE);
    ck_assert_int_eq(tn_trainer_regret_minimizer(tr, V, P), TN_E_STATE);
    /* Cross-entropy steps: the MSE solvers refuse them. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    double *x = tu_random(5 * 3, 1, 1), y[10] = {1, 0, 0, 1, 1, 0, 0, 1, 1, 0};
    for (int t = 0; t < 3; t++) TN_CK(ctx, tn_trainer_step(tr, x, y, 5, NULL));
    for (int k = TN_REGRET_DIRECT; k <= TN_REGRET_LSQR; k++) {
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, k));
        ck_assert_int_eq(tn_trainer_regret(tr, &R, &F), TN_E_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "cross-entropy"));
    }
    /* A solve that cannot meet the tolerance in the iterations allowed
     * fails, says how close it came, writes no output and keeps the last
     * solve's results. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, TN_REGRET_AUTO));
    TN_CK(ctx, tn_trainer_regret(tr, &R, &F));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_MSE));
    for (int t = 0; t < 3; t++) TN_CK(ctx, tn_trainer_step(tr, x, y, 5, NULL));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_MAX_ITERATIONS, 2));
    double R2 = -5, F2 = -5;
    ck_assert_int_eq(tn_trainer_regret(tr, &R2, &F2), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "TN_TRAIN_REGRET_MAX_ITERATIONS"));
    ck_assert(R2 == -5 && F2 == -5);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_VALUE, &v));
    ck_assert_double_eq(v, R);
    TN_CK(ctx, tn_trainer_regret_info(tr, TN_REGRET_SOLVED_STEPS, &v));
    ck_assert_double_eq(v, 3);
    /* ... LSQR likewise (an MSE-only record). */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 0));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    for (int t = 0; t < 3; t++) TN_CK(ctx, tn_trainer_step(tr, x, y, 5, NULL));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_SOLVER, TN_REGRET_LSQR));
    ck_assert_int_eq(tn_trainer_regret(tr, &R2, &F2), TN_E_NUMERIC);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "LSQR"));
    ck_assert_int_eq(tn_trainer_regret_minimizer(tr, V, P), TN_E_STATE);
    /* The minimizer's length. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_MAX_ITERATIONS, 20000));
    TN_CK(ctx, tn_trainer_regret(tr, &R2, NULL));
    TN_CK(ctx, tn_trainer_regret(tr, NULL, &F2));
    ck_assert_int_eq(tn_trainer_regret_minimizer(tr, V, P + 1), TN_E_SHAPE);
    TN_CK(ctx, tn_trainer_regret_minimizer(tr, V, P));
    tn_trainer_free(tr);
    tn_net_free(net);
    free(V), free(x);
}
END_TEST

/* ---- checkpoints: the record and the exploration survive a resume ---- */

enum { CK_STEPS = 8, CK_N = 5, CK_D = 3, CK_O = 3, CK_SOLVE_AT = 5 };

/* Batch of step s: consecutive pairs repeat (the record shares them). */
static void ck_batch(int s, double *x, double *y)
{
    uint64_t seed = 300 + (uint64_t)(s / 2);
    for (int i = 0; i < CK_N * CK_D; i++) x[i] = tu_uniform(&seed);
    for (int i = 0; i < CK_N; i++)
        for (int c = 0; c < CK_O; c++) y[i * CK_O + c] = c == (i + s / 2) % CK_O;
}

static tn_trainer *ck_start(tn_ctx *c, tn_net **net)
{
    const size_t w[] = {7, CK_O};
    *net = tu_mlp(c, CK_D, w, 2, TN_ACT_RELU, TN_PARAM_NTK, 11);
    tn_trainer *tr;
    TN_CK(c, tn_trainer_create(*net, &tr));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.05));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_REGRET_TOLERANCE, 1e-9));
    double *probe = tu_random(6 * CK_D, 77, 1.0);
    TN_CK(c, tn_trainer_set_probe(tr, probe, 6));
    free(probe);
    return tr;
}

/* Steps from..to-1, with a solve after step CK_SOLVE_AT. */
static void ck_run(tn_ctx *c, tn_trainer *tr, int from, int to)
{
    double x[CK_N * CK_D], y[CK_N * CK_O], R, F;
    for (int s = from; s < to; s++) {
        ck_batch(s, x, y);
        TN_CK(c, tn_trainer_step(tr, x, y, CK_N, NULL));
        if (s + 1 == CK_SOLVE_AT) TN_CK(c, tn_trainer_regret(tr, &R, &F));
    }
}

typedef struct ck_state {
    double regret, optimum, info[10], stats[2];
    unsigned char *file;
    size_t len;
} ck_state;

static void ck_capture(tn_ctx *c, tn_trainer *tr, const char *path, ck_state *st)
{
    TN_CK(c, tn_trainer_regret(tr, &st->regret, &st->optimum));
    for (int i = 0; i <= TN_REGRET_ACCURACY; i++)
        TN_CK(c, tn_trainer_regret_info(tr, (tn_regret_info)i, &st->info[i]));
    TN_CK(c, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &st->stats[0]));
    TN_CK(c, tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &st->stats[1]));
    TN_CK(c, tn_trainer_save(tr, path));
    st->file = tu_slurp(path, &st->len);
}

/* Interrupted after k = 0, 3, 5 (just after a solve) and 8 steps: saved,
 * everything freed, loaded in a new context, run on.  The regret, every
 * number of the record and the last solve, the exploration statistics and
 * the final checkpoint file are those of the uninterrupted run, bit for
 * bit. */
START_TEST(record_and_exploration_survive_a_resume)
{
    char *dir = tu_make_dir("test_regret"), *path = tu_join(dir, "run.tnck"),
         *end = tu_join(dir, "end.tnck");
    tn_net *net;
    tn_trainer *tr = ck_start(ctx, &net);
    ck_run(ctx, tr, 0, CK_STEPS);
    ck_state ref;
    ck_capture(ctx, tr, end, &ref);
    tn_trainer_free(tr);
    tn_net_free(net);
    const int ks[] = {0, 3, CK_SOLVE_AT, CK_STEPS};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        tn_ctx *c;
        ck_assert_int_eq(tn_ctx_create(&c), TN_OK);
        tr = ck_start(c, &net);
        ck_run(c, tr, 0, ks[i]);
        TN_CK(c, tn_trainer_save(tr, path));
        tn_trainer_free(tr);
        tn_net_free(net);
        tn_ctx_free(c);
        ck_assert_int_eq(tn_ctx_create(&c), TN_OK);
        TN_CK(c, tn_trainer_load(c, path, &net, &tr));
        ck_run(c, tr, ks[i], CK_STEPS);
        ck_state got;
        ck_capture(c, tr, end, &got);
        ck_assert_msg(memcmp(&got.regret, &ref.regret, sizeof ref.regret) == 0 &&
                          memcmp(&got.optimum, &ref.optimum, sizeof ref.optimum) == 0,
                      "resumed after %d: regret %.17g / %.17g, uninterrupted %.17g / %.17g", ks[i],
                      got.regret, got.optimum, ref.regret, ref.optimum);
        ck_assert_msg(memcmp(got.info, ref.info, sizeof ref.info) == 0,
                      "resumed after %d: regret info differs", ks[i]);
        ck_assert_msg(memcmp(got.stats, ref.stats, sizeof ref.stats) == 0,
                      "resumed after %d: exploration %g %g, uninterrupted %g %g", ks[i],
                      got.stats[0], got.stats[1], ref.stats[0], ref.stats[1]);
        ck_assert_msg(got.len == ref.len && memcmp(got.file, ref.file, ref.len) == 0,
                      "resumed after %d: the final checkpoint differs", ks[i]);
        free(got.file);
        tn_trainer_free(tr);
        tn_net_free(net);
        tn_ctx_free(c);
    }
    /* The run explored and the record holds every step. */
    ck_assert_double_gt(ref.stats[0], 6);
    ck_assert_double_eq(ref.info[TN_REGRET_STEPS], CK_STEPS);
    free(ref.file), free(path), free(end);
    free(dir);
}
END_TEST

/* The payload offset of the section tagged `tag`. */
static size_t section_at(const unsigned char *b, size_t len, const char *tag)
{
    size_t off[16];
    const size_t ns = tu_sections(b, len, off, 16);
    for (size_t k = 0; k < ns; k++)
        if (memcmp(b + off[k], tag, 4) == 0) return off[k] + 12;
    ck_abort_msg("no section %s", tag);
    return 0;
}

/* The record's and the exploration's sections, damaged under a valid
 * checksum, are refused with TN_E_FORMAT and a message naming them. */
START_TEST(damaged_record_sections_are_refused)
{
    char *dir = tu_make_dir("test_regret"), *path = tu_join(dir, "good.tnck");
    tn_net *net;
    tn_trainer *tr = ck_start(ctx, &net);
    ck_run(ctx, tr, 0, CK_SOLVE_AT + 1);
    TN_CK(ctx, tn_trainer_save(tr, path));
    tn_trainer_free(tr);
    tn_net_free(net);
    size_t len;
    unsigned char *b = tu_slurp(path, &len), *c = malloc(len);
    const size_t tayr = section_at(b, len, "TAYR"), expl = section_at(b, len, "expl");
    /* TAYR: u64 P, T, B, then batch 0 (u64 n, x, y), batch 1, ...; steps
     * follow the batches (checkpoint.h).  3 batches of CK_N rows. */
    const size_t batch_bytes = 8 + 8 * CK_N * (CK_D + CK_O), steps_at = tayr + 24 + 3 * batch_bytes;
    const uint64_t nan_bits = 0x7ff8000000000000u;
    struct { size_t at; int bytes; uint64_t value; const char *what; } bad[] = {
        {tayr, 8, 1, "parameter count"},
        {tayr + 8, 8, 1u << 30, "more steps than the section holds"},
        {tayr + 16, 8, 9, "more batches than steps"},
        {tayr + 24, 8, 0, "a batch of 0 rows"},
        {tayr + 32, 8, nan_bits, "a batch value NaN"},
        {steps_at, 8, 1, "the first step on batch 1"},
        {steps_at + 8, 4, 2, "a loss kind that does not exist"},
        {steps_at + 12, 8, 0, "alpha 0"},
        {steps_at + 20, 8, nan_bits, "a step's loss NaN"},
        {steps_at + 28, 8, nan_bits, "theta_t NaN"},
        /* from here on (i >= 10), the exploration's */
        {expl, 8, 1, "exploration units"},
        {expl + 8, 8, 2, "fewer configurations than probe examples"},
        {expl + 24, 8, 0x3ff8000000000000u, "ever switched 1.5"},
        {expl + 32, 8, 0, "a configuration hash 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(c, b, len);
        if (bad[i].bytes == 8)
            tu_put_u64(c, bad[i].at, bad[i].value);
        else
            tu_put_u32(c, bad[i].at, (uint32_t)bad[i].value);
        tu_reseal(c, len);
        FILE *f = fopen(path, "wb");
        ck_assert_uint_eq(fwrite(c, 1, len, f), len);
        fclose(f);
        tn_trainer *t2 = (tn_trainer *)1;
        tn_net *n2 = (tn_net *)1;
        const tn_status st = tn_trainer_load(ctx, path, &n2, &t2);
        ck_assert_msg(st == TN_E_FORMAT, "%s: %s (%s)", bad[i].what, tn_status_string(st),
                      tn_ctx_errmsg(ctx));
        ck_assert_ptr_null(t2);
        ck_assert_ptr_null(n2);
        const char *m = tn_ctx_errmsg(ctx);
        ck_assert_msg(strstr(m, i >= 10 ? "exploration" : "Taylor record"), "%s: %s",
                      bad[i].what, m);
    }
    free(b), free(c), free(path), free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("regret");
    TCase *tc = tcase_create("regret");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, mse_regret_matches_dense_least_squares, 0, (int)(4 * NMODES));
    tcase_add_loop_test(tc, xent_optimum_below_every_recorded_point, 0, (int)(2 * NMODES));
    tcase_add_loop_test(tc, regret_of_steps_at_one_theta_is_zero, 0, 4);
    tcase_add_test(tc, underdetermined_mse_has_optimum_zero);
    tcase_add_test(tc, record_costs_what_is_documented_and_stays_in_budget);
    tcase_add_test(tc, bad_input_gets_its_status_and_message);
    tcase_add_test(tc, record_and_exploration_survive_a_resume);
    tcase_add_test(tc, damaged_record_sections_are_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
