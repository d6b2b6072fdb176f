/*
 * ntk_regression.c -- the neural tangent kernel as a predictor.
 *
 *   1. The empirical NTK (tn_ntk, traced) of an MLP in NTK parameterization
 *      on 1,000 Fashion-MNIST training images, and the closed-form outputs
 *      of the linearized network trained on them by full-batch gradient
 *      descent on MSE (tn_predictor), on the test set at several step
 *      counts t, including t = infinity (kernel regression).
 *   2. A check of those closed forms against actually training the
 *      linearized network (tn_trainer, order 1, SGD, MSE, full batch, the
 *      same learning rate and number of steps).  The closed form is exact
 *      only with the FULL kernel (N O x N O): the traced kernel treats the
 *      outputs as independent, which the finite-width NTK is only
 *      approximately.  The full kernel of 1,000 images is 10,000 x 10,000
 *      (800 MB, an eigendecomposition of minutes), so the check runs on a
 *      subset (200 training, 500 test images by default) and compares both
 *      kernels' predictions with the trained network: the full kernel's
 *      difference is rounding, the traced kernel's is its approximation.
 *   3. The empirical kernel approaching the infinite-width one
 *      (tn_ntk_analytic) as the width grows, on a few images: the relative
 *      distance should fall like 1/sqrt(width), 0.5 per 4x.
 *
 *   ./build/examples/ntk_regression [--train N] [--times 10,100,inf] ... (--help)
 */
#include "support/cli.h"
#include "support/data.h"
#include "support/nets.h"
#include "support/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TIMES 16

typedef struct options {
    size_t n_train, n_test, width, depth;
    size_t check_train, check_test;
    size_t kernel_images, min_width, max_width, seeds;
    size_t budget_mib;
    double lr, reg;
    const char *times, *method;
    uint64_t seed;
    int threads, synthetic;
    const char *data_dir;
} options;

/*---------------------------------------------------------------------
 * Small numerics
 *-------------------------------------------------------------------*/

/* ||a - b||_F / ||b - base||_F: the difference measured against how far b
 * has moved from base, which is what the kernel determines (f_0 cancels
 * from both sides).  Stricter than ex_rel_diff when b has moved little. */
static double rel_to_change(const double *a, const double *b, const double *base, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += (b[i] - base[i]) * (b[i] - base[i]);
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* The largest eigenvalue of the symmetric positive semi-definite m x m
 * matrix K by power iteration.  An NTK has a dominant mode (its entries
 * share a large common part), so this converges in a few dozen products;
 * it picks a learning rate, where a few digits are plenty. */
static double lambda_max(const double *K, size_t m)
{
    double *v = ex_xmalloc(m, sizeof(double)), *w = ex_xmalloc(m, sizeof(double));
    for (size_t i = 0; i < m; i++) v[i] = 1.0 / sqrt((double)m);
    double lam = 0.0;
    for (int it = 0; it < 500; it++) {
        double norm = 0.0;
        for (size_t i = 0; i < m; i++) {
            double s = 0.0;
            for (size_t j = 0; j < m; j++) s += K[i * m + j] * v[j];
            w[i] = s;
            norm += s * s;
        }
        norm = sqrt(norm);
        if (norm == 0.0) break;
        for (size_t i = 0; i < m; i++) v[i] = w[i] / norm;
        const double change = fabs(norm - lam);
        lam = norm;
        if (change <= 1e-12 * lam) break;
    }
    free(v);
    free(w);
    return lam;
}

/* Mean over examples of |f(x) - y|^2 (summed over the outputs; twice the
 * trainer's MSE loss) and the accuracy of the argmax. */
static void output_stats(const double *f, const ex_dataset *ds, size_t n, double *mse,
                         double *acc)
{
    const size_t O = ds->classes;
    double s = 0.0;
    for (size_t e = 0; e < n * O; e++) s += (f[e] - ds->y[e]) * (f[e] - ds->y[e]);
    *mse = s / (double)n;
    *acc = (double)ex_count_correct(f, n, O, ds->labels) / (double)n;
}

/* "10,100,1000,inf" into ascending t values: whole numbers of steps, or
 * infinity (last). */
static size_t parse_times(const char *text, double *t, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        if (n == max) ex_die("--times: at most %zu values", max);
        double v = INFINITY;
        const char *end = p + 3;
        if (strncmp(p, "inf", 3) != 0) {
            char *num_end;
            errno = 0;
            v = strtod(p, &num_end);
            /* Only plain whole numbers: a step count, not "nan" or "1.5". */
            if (num_end == p || errno != 0 || !(v >= 0) || !isfinite(v) || v != floor(v) ||
                v > 1e9)
                v = -1.0;
            end = num_end;
        }
        if (v < 0 || (*end != ',' && *end != '\0'))
            ex_die("--times: '%s' is not a list of whole step counts or 'inf'", text);
        if (n > 0 && !(v > t[n - 1])) ex_die("--times must be ascending: '%s'", text);
        t[n++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    if (n == 0) ex_die("--times is empty");
    return n;
}

static int method_from_name(const char *name)
{
    if (strcmp(name, "auto") == 0) return TN_NTK_AUTO;
    if (strcmp(name, "structured") == 0) return TN_NTK_STRUCTURED;
    if (strcmp(name, "jacobian") == 0) return TN_NTK_JACOBIAN;
    if (strcmp(name, "vector") == 0) return TN_NTK_VECTOR_PRODUCTS;
    ex_die("unknown NTK method '%s' (auto, structured, jacobian, vector)", name);
}

/* An NTK handle of net with the chosen method, form and memory budget. */
static tn_ntk *make_ntk(tn_ctx *ctx, tn_net *net, const options *o, int method, int outputs)
{
    tn_ntk *k = NULL;
    EX_CHECK(ctx, tn_ntk_create(net, &k));
    EX_CHECK(ctx, tn_ntk_set(k, TN_NTK_METHOD, method));
    EX_CHECK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, outputs));
    EX_CHECK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, (double)o->budget_mib * 1048576.0));
    return k;
}

/* The MLP of the options at `width`, NTK parameterization, ReLU. */
static tn_net *make_mlp(tn_ctx *ctx, const options *o, size_t input, size_t outputs,
                        size_t width, uint64_t seed)
{
    ex_net_spec spec;
    ex_net_spec_default(&spec);
    spec.input = input;
    spec.width = width;
    spec.depth = o->depth;
    spec.outputs = outputs;
    spec.parameterization = TN_PARAM_NTK;
    spec.seed = seed;
    tn_net *net = NULL;
    EX_CHECK(ctx, ex_build_net(ctx, &spec, &net));
    return net;
}

/* A view of the first n examples of ds (no copy). */
static ex_dataset head(const ex_dataset *ds, size_t n)
{
    ex_dataset v = *ds;
    v.n = n < ds->n ? n : ds->n;
    return v;
}

/*---------------------------------------------------------------------
 * 1. Closed-form predictions with the traced kernel
 *-------------------------------------------------------------------*/

/* Returns the learning rate used, for part 2. */
static double predict_traced(tn_ctx *ctx, tn_net *net, const options *o, const ex_dataset *tr,
                             const ex_dataset *te, const double *times, size_t nt)
{
    const size_t N = tr->n, M = te->n, O = tr->classes;
    printf("\n1. closed-form linearized training, traced empirical NTK, %zu training and %zu "
           "test images\n", N, M);
    double *K = ex_xmalloc(N, N * sizeof(double));
    double *Kx = ex_xmalloc(M, N * sizeof(double));
    double *f0_tr = ex_xmalloc(N, O * sizeof(double)), *f0_te = ex_xmalloc(M, O * sizeof(double));
    double *ft_tr = ex_xmalloc(N, O * sizeof(double)), *ft_te = ex_xmalloc(M, O * sizeof(double));

    tn_ntk *k = make_ntk(ctx, net, o, method_from_name(o->method), TN_NTK_TRACE);
    double t0 = ex_now();
    EX_CHECK(ctx, tn_ntk_compute(k, tr->x, N, NULL, 0, K));
    const double t_train = ex_now() - t0;
    t0 = ex_now();
    EX_CHECK(ctx, tn_ntk_compute(k, te->x, M, tr->x, N, Kx));
    const double t_test = ex_now() - t0;
    tn_ntk_free(k);
    printf("kernel (%s): train %zu x %zu in %.1f s, test-train %zu x %zu in %.1f s\n",
           o->method, N, N, t_train, M, N, t_test);
    EX_CHECK(ctx, tn_net_forward(net, tr->x, N, f0_tr));
    EX_CHECK(ctx, tn_net_forward(net, te->x, M, f0_te));

    /* eta = N / lambda_max puts the stiffest mode at eta lambda / N = 1:
     * it is fitted in one step, and every mode decays monotonically. */
    const double lam = lambda_max(K, N);
    const double eta = o->lr > 0 ? o->lr : (double)N / lam;
    printf("learning rate %.6g (eta lambda_max / N = %.3f; lambda_max %.6g; --lr 0 picks "
           "N / lambda_max), targets one-hot, mse = mean over images of |f(x) - y|^2\n",
           eta, eta * lam / (double)N, lam);
    if (eta * lam / (double)N >= 2.0)
        printf("WARNING: eta lambda_max / N >= 2: gradient descent diverges, and so do the "
               "outputs below\n");
    if (o->reg > 0) printf("diagonal regularization %g added to the kernel\n", o->reg);

    t0 = ex_now();
    tn_predictor *p = NULL;
    EX_CHECK(ctx, tn_predictor_create(ctx, K, N, O, 0, tr->y, &p));
    EX_CHECK(ctx, tn_predictor_set(p, TN_PRED_LEARNING_RATE, eta));
    EX_CHECK(ctx, tn_predictor_set(p, TN_PRED_DIAG_REG, o->reg));
    printf("predictor (one eigendecomposition for every t): %.1f s\n", ex_now() - t0);
    /* The network's outputs at initialization are a random function of
     * the size of the targets, and the linearized network keeps it at test
     * points it cannot fit.  The centered model f(theta) - f(theta0)
     * (TN_TRAIN_CENTERED) starts from f_0 = 0 with the same kernel: its
     * closed form is the same call with zeros for f_0, and it is the mean
     * of the NTK-GP over initializations. */
    printf("columns: the linearized network (f_0 = f(theta0; x)), then *_c: the centered "
           "model f(theta) - f(theta0) (f_0 = 0)\n");
    printf("%10s  %10s  %9s  %10s  %9s  %10s  %10s\n", "t (steps)", "train_mse", "train_acc",
           "test_mse", "test_acc", "test_mse_c", "test_acc_c");
    double *z_tr = ex_xcalloc(N, O * sizeof(double)), *z_te = ex_xcalloc(M, O * sizeof(double));
    double *c_te = ex_xmalloc(M, O * sizeof(double));
    double mse, acc, tmse, tacc, cmse, cacc;
    output_stats(f0_tr, tr, N, &mse, &acc);
    output_stats(f0_te, te, M, &tmse, &tacc);
    output_stats(z_te, te, M, &cmse, &cacc);
    printf("%10s  %10.4f  %9.4f  %10.4f  %9.4f  %10.4f  %10.4f   (initialization)\n", "0",
           mse, acc, tmse, tacc, cmse, cacc);
    for (size_t i = 0; i < nt; i++) {
        tn_status st = tn_predictor_predict(p, times[i], f0_tr, ft_tr, Kx, f0_te, M, ft_te);
        if (st == TN_OK) st = tn_predictor_predict(p, times[i], z_tr, NULL, Kx, z_te, M, c_te);
        if (st == TN_E_NUMERIC && isinf(times[i])) {
            /* t = infinity needs the kernel's inverse and a learning rate
             * at which gradient descent converges; without them, say why
             * rather than print what could not be computed. */
            printf("%10s  skipped: %s (a singular kernel needs --reg, a divergent step a "
                   "smaller --lr)\n", "inf", tn_ctx_errmsg(ctx));
            continue;
        }
        EX_CHECK(ctx, st);
        output_stats(ft_tr, tr, N, &mse, &acc);
        output_stats(ft_te, te, M, &tmse, &tacc);
        output_stats(c_te, te, M, &cmse, &cacc);
        char label[32];
        snprintf(label, sizeof label, "%.0f", times[i]);
        printf("%10s  %10.4f  %9.4f  %10.4f  %9.4f  %10.4f  %10.4f\n", label, mse, acc, tmse,
               tacc, cmse, cacc);
    }
    fflush(stdout);
    tn_predictor_free(p);
    free(z_tr);
    free(z_te);
    free(c_te);
    free(K);
    free(Kx);
    free(f0_tr);
    free(f0_te);
    free(ft_tr);
    free(ft_te);
    return eta;
}

/*---------------------------------------------------------------------
 * 2. The closed forms against training the linearized network
 *-------------------------------------------------------------------*/

static void check_against_training(tn_ctx *ctx, tn_net *net, const options *o,
                                   const ex_dataset *tr, const ex_dataset *te, double eta,
                                   const double *times, size_t nt)
{
    const size_t N = tr->n, M = te->n, O = tr->classes, NO = N * O, MO = M * O;
    size_t nf = 0;      /* the finite times: training cannot reach infinity */
    while (nf < nt && isfinite(times[nf])) nf++;
    printf("\n2. check: closed forms against training the linearized network (tn_trainer order "
           "1, SGD, MSE, full batch of %zu training images, eta %.6g), outputs on those and "
           "%zu test images\n", N, eta, M);
    if (nf == 0) {
        printf("no finite t in --times: nothing to train\n");
        return;
    }

    /* The full kernel: (N O) x (N O) and (M O) x (N O). */
    double *Kf = ex_xmalloc(NO, NO * sizeof(double)), *Kfx = ex_xmalloc(MO, NO * sizeof(double));
    double *Kt = ex_xmalloc(N, N * sizeof(double)), *Ktx = ex_xmalloc(M, N * sizeof(double));
    const int method = method_from_name(o->method);
    double t0 = ex_now();
    tn_ntk *k = make_ntk(ctx, net, o, method, TN_NTK_FULL);
    EX_CHECK(ctx, tn_ntk_compute(k, tr->x, N, NULL, 0, Kf));
    EX_CHECK(ctx, tn_ntk_compute(k, te->x, M, tr->x, N, Kfx));
    tn_ntk_free(k);
    k = make_ntk(ctx, net, o, method, TN_NTK_TRACE);
    EX_CHECK(ctx, tn_ntk_compute(k, tr->x, N, NULL, 0, Kt));
    EX_CHECK(ctx, tn_ntk_compute(k, te->x, M, tr->x, N, Ktx));
    tn_ntk_free(k);
    const double lam = lambda_max(Kf, NO);
    printf("kernels: full %zu x %zu and %zu x %zu, traced %zu x %zu and %zu x %zu, %.1f s; "
           "eta lambda_max(full) / N = %.3f\n",
           NO, NO, MO, NO, N, N, M, N, ex_now() - t0, eta * lam / (double)N);
    if (eta * lam / (double)N >= 2.0) {
        printf("gradient descent diverges at this learning rate on this subset: check skipped\n");
        free(Kf);
        free(Kfx);
        free(Kt);
        free(Ktx);
        return;
    }

    double *f0_tr = ex_xmalloc(N, O * sizeof(double)), *f0_te = ex_xmalloc(M, O * sizeof(double));
    EX_CHECK(ctx, tn_net_forward(net, tr->x, N, f0_tr));
    EX_CHECK(ctx, tn_net_forward(net, te->x, M, f0_te));
    tn_predictor *pf = NULL, *pt = NULL;
    EX_CHECK(ctx, tn_predictor_create(ctx, Kf, N, O, 1, tr->y, &pf));
    EX_CHECK(ctx, tn_predictor_create(ctx, Kt, N, O, 0, tr->y, &pt));
    EX_CHECK(ctx, tn_predictor_set(pf, TN_PRED_LEARNING_RATE, eta));
    EX_CHECK(ctx, tn_predictor_set(pt, TN_PRED_LEARNING_RATE, eta));

    /* The trainer works on a clone: its theta0 is the same initialization,
     * and the network of parts 1 and 3 stays as it was. */
    tn_net *clone = NULL;
    tn_trainer *trn = NULL;
    EX_CHECK(ctx, tn_net_clone(net, &clone));
    EX_CHECK(ctx, tn_trainer_create(clone, &trn));
    EX_CHECK(ctx, tn_trainer_set(trn, TN_TRAIN_LOSS, TN_LOSS_MSE));
    EX_CHECK(ctx, tn_trainer_set(trn, TN_TRAIN_OPTIMIZER, TN_OPT_SGD));
    EX_CHECK(ctx, tn_trainer_set(trn, TN_TRAIN_LEARNING_RATE, eta));
    EX_CHECK(ctx, tn_trainer_set(trn, TN_TRAIN_ORDER, 1));

    double *g_tr = ex_xmalloc(N, O * sizeof(double)), *g_te = ex_xmalloc(M, O * sizeof(double));
    double *pf_tr = ex_xmalloc(N, O * sizeof(double)), *pf_te = ex_xmalloc(M, O * sizeof(double));
    double *pt_tr = ex_xmalloc(N, O * sizeof(double)), *pt_te = ex_xmalloc(M, O * sizeof(double));
    printf("relative differences ||predicted - trained|| / ||trained - f_0|| (outputs' change "
           "since initialization)\n");
    printf("%10s  %12s  %12s  %14s  %14s  %9s\n", "t (steps)", "full: train", "full: test",
           "traced: train", "traced: test", "seconds");
    t0 = ex_now();
    uint64_t done = 0;
    for (size_t i = 0; i < nf; i++) {
        for (; done < (uint64_t)times[i]; done++)
            EX_CHECK(ctx, tn_trainer_step(trn, tr->x, tr->y, N, NULL));
        EX_CHECK(ctx, tn_trainer_predict(trn, tr->x, N, g_tr));
        EX_CHECK(ctx, tn_trainer_predict(trn, te->x, M, g_te));
        EX_CHECK(ctx, tn_predictor_predict(pf, times[i], f0_tr, pf_tr, Kfx, f0_te, M, pf_te));
        EX_CHECK(ctx, tn_predictor_predict(pt, times[i], f0_tr, pt_tr, Ktx, f0_te, M, pt_te));
        char label[32];
        snprintf(label, sizeof label, "%.0f", times[i]);
        printf("%10s  %12.2e  %12.2e  %14.2e  %14.2e  %9.1f\n", label,
               rel_to_change(pf_tr, g_tr, f0_tr, NO), rel_to_change(pf_te, g_te, f0_te, MO),
               rel_to_change(pt_tr, g_tr, f0_tr, NO), rel_to_change(pt_te, g_te, f0_te, MO),
               ex_now() - t0);
        fflush(stdout);
    }
    printf("(relative to the outputs themselves, ||predicted - trained|| / ||trained||, at "
           "t = %.0f: full %.2e / %.2e, traced %.2e / %.2e)\n",
           times[nf - 1], ex_rel_diff(pf_tr, g_tr, NO), ex_rel_diff(pf_te, g_te, MO),
           ex_rel_diff(pt_tr, g_tr, NO), ex_rel_diff(pt_te, g_te, MO));

    free(g_tr);
    free(g_te);
    free(pf_tr);
    free(pf_te);
    free(pt_tr);
    free(pt_te);
    tn_trainer_free(trn);
    tn_net_free(clone);
    tn_predictor_free(pf);
    tn_predictor_free(pt);
    free(f0_tr);
    free(f0_te);
    free(Kf);
    free(Kfx);
    free(Kt);
    free(Ktx);
}

/*---------------------------------------------------------------------
 * 3. Empirical NTK -> analytic NTK as the width grows
 *-------------------------------------------------------------------*/

static void kernel_convergence(tn_ctx *ctx, const options *o, const ex_dataset *ds)
{
    const size_t n = ds->n, O = ds->classes;
    printf("\n3. empirical NTK (traced) against the infinite-width NTK (tn_ntk_analytic), first "
           "%zu training images, %zu seeds per width\n", n, o->seeds);
    double *analytic = ex_xmalloc(n, n * sizeof(double));
    double *K = ex_xmalloc(n, n * sizeof(double));
    double *dist = ex_xmalloc(o->seeds, sizeof(double));
    {
        /* The infinite-width kernel depends on the depth, activation and
         * sigmas, not on the width or the draw: any of the nets serves. */
        tn_net *net = make_mlp(ctx, o, ds->d, O, o->min_width, o->seed);
        tn_ntk *k = make_ntk(ctx, net, o, TN_NTK_AUTO, TN_NTK_TRACE);
        const tn_status st = tn_ntk_analytic(k, ds->x, n, NULL, 0, NULL, analytic);
        tn_ntk_free(k);
        tn_net_free(net);
        if (st != TN_OK) {
            /* The rest of the example stands without it; no number is
             * made up in its place. */
            printf("tn_ntk_analytic failed: %s (%s) -- part 3 skipped\n", tn_status_string(st),
                   tn_ctx_errmsg(ctx));
            free(analytic);
            free(K);
            free(dist);
            return;
        }
    }
    /* E ||K_w - K_inf||^2 falls like 1/w (the entries' variance; their
     * bias is O(1/w) and enters squared), so the root mean square over
     * seeds is the statistic with the clean law, and the slope of its
     * logarithm against log w, fitted over all widths, is the exponent:
     * -0.5.  Single distances scatter by tens of percent (a few random
     * modes dominate them), so ratios between neighbouring widths are
     * noisy with few seeds; the fitted slope is steadier. */
    printf("relative Frobenius distance d = ||K_width - K_inf|| / ||K_inf||, root mean square "
           "and standard deviation over seeds; 1/sqrt(width) predicts a ratio of 0.5 per 4x\n");
    printf("%8s  %12s  %10s  %12s  %9s\n", "width", "rms d", "std d", "ratio", "seconds");
    /* Widths and distances for the fit: x4 per step, so at most 32 fit
     * in a size_t's range. */
    double fit_w[40], fit_d[40];
    double prev = 0.0;
    size_t prev_width = 0, points = 0;
    for (size_t w = o->min_width; w <= o->max_width; w *= 4) {
        const double t0 = ex_now();
        double ms = 0.0, mean = 0.0, var = 0.0;
        for (size_t s = 0; s < o->seeds; s++) {
            tn_net *net = make_mlp(ctx, o, ds->d, O, w, o->seed + s);
            tn_ntk *k = make_ntk(ctx, net, o, method_from_name(o->method), TN_NTK_TRACE);
            EX_CHECK(ctx, tn_ntk_compute(k, ds->x, n, NULL, 0, K));
            tn_ntk_free(k);
            tn_net_free(net);
            dist[s] = ex_rel_diff(K, analytic, n * n);
            ms += dist[s] * dist[s];
            mean += dist[s];
        }
        const double rms = sqrt(ms / (double)o->seeds);
        mean /= (double)o->seeds;
        for (size_t s = 0; s < o->seeds; s++) var += (dist[s] - mean) * (dist[s] - mean);
        const double sd = o->seeds > 1 ? sqrt(var / (double)(o->seeds - 1)) : 0.0;
        char ratio[32] = "";
        if (prev_width)
            snprintf(ratio, sizeof ratio, "%.3f (x%zu)", rms / prev, w / prev_width);
        printf("%8zu  %12.4e  %10.2e  %12s  %9.1f\n", w, rms, sd, ratio, ex_now() - t0);
        fflush(stdout);
        if (points < sizeof fit_w / sizeof fit_w[0]) {
            fit_w[points] = (double)w;
            fit_d[points] = rms;
            points++;
        }
        prev = rms;
        prev_width = w;
        if (w > SIZE_MAX / 4) break;
    }
    if (points >= 2)
        printf("least-squares slope of log(rms d) against log(width): %.3f (1/sqrt(width): "
               "-0.5)\n", ex_loglog_slope(fit_w, fit_d, points));
    free(analytic);
    free(K);
    free(dist);
}

int main(int argc, char **argv)
{
    options o = {
        .n_train = 1000, .n_test = 0, .width = 512, .depth = 2,
        .check_train = 200, .check_test = 500,
        .kernel_images = 50, .min_width = 64, .max_width = 4096, .seeds = 5, .budget_mib = 256,
        .lr = 0.0, .reg = 0.0, .times = "10,100,1000,inf", .method = "structured",
        .seed = 1, .threads = 1, .synthetic = 0, .data_dir = NULL,
    };
    const ex_arg args[] = {
        {"train", EX_ARG_SIZE, &o.n_train, "training images the kernel is computed on"},
        {"test", EX_ARG_SIZE, &o.n_test, "test images predicted (0: all)"},
        {"width", EX_ARG_SIZE, &o.width, "units per hidden layer (parts 1 and 2)"},
        {"depth", EX_ARG_SIZE, &o.depth, "hidden layers (ReLU, NTK parameterization)"},
        {"times", EX_ARG_STRING, &o.times, "ascending step counts t, 'inf' last"},
        {"lr", EX_ARG_DOUBLE, &o.lr, "learning rate eta; 0: N / lambda_max of the train kernel"},
        {"reg", EX_ARG_DOUBLE, &o.reg, "diagonal regularization of the part-1 kernel"},
        {"method", EX_ARG_STRING, &o.method, "NTK method: auto, structured, jacobian, vector"},
        {"check-train", EX_ARG_SIZE, &o.check_train,
         "training images of the check against training (0: skip part 2)"},
        {"check-test", EX_ARG_SIZE, &o.check_test, "test images of the check"},
        {"kernel-images", EX_ARG_SIZE, &o.kernel_images,
         "images of the width sweep (0: skip part 3)"},
        {"min-width", EX_ARG_SIZE, &o.min_width, "first width of the sweep"},
        {"max-width", EX_ARG_SIZE, &o.max_width, "last width of the sweep (x4 per step)"},
        {"seeds", EX_ARG_SIZE, &o.seeds, "networks drawn per width"},
        {"budget-mib", EX_ARG_SIZE, &o.budget_mib, "NTK workspace budget in MiB (at least 1)"},
        {"seed", EX_ARG_U64, &o.seed, "seed of the initialization"},
        {"threads", EX_ARG_INT, &o.threads, "BLAS threads"},
        {"data", EX_ARG_STRING, &o.data_dir, EX_DATA_FLAG_HELP},
        {"synthetic", EX_ARG_FLAG, &o.synthetic, "use the synthetic data set"},
    };
    ex_parse_args(argc, argv, args, sizeof args / sizeof args[0],
                  "NTK regression on Fashion-MNIST: closed-form linearized training with the "
                  "empirical NTK, checked against training, and the empirical kernel against "
                  "the infinite-width one.");
    double times[MAX_TIMES];
    const size_t nt = parse_times(o.times, times, MAX_TIMES);
    (void)method_from_name(o.method);
    if (o.n_train == 0 || o.width == 0) ex_die("--train and --width must be > 0");
    if (o.lr < 0 || o.reg < 0) ex_die("--lr and --reg must be >= 0");
    if (o.kernel_images > 0 && (o.min_width == 0 || o.seeds == 0 || o.min_width > o.max_width))
        ex_die("the width sweep needs 0 < --min-width <= --max-width and --seeds > 0");

    ex_data data;
    ex_load_data_flags(o.data_dir, o.n_train, o.n_test, o.synthetic, 0, &data);

    tn_ctx *ctx = ex_ctx_create(o.threads);
    tn_net *net = make_mlp(ctx, &o, data.train.d, data.train.classes, o.width, o.seed);
    printf("net: %zu -> %zu x %zu ReLU -> %zu, NTK parameterization, %zu parameters, %d threads\n",
           data.train.d, o.depth, o.width, data.train.classes, tn_net_num_params(net), o.threads);
    const double start = ex_now();

    const double eta = predict_traced(ctx, net, &o, &data.train, &data.test, times, nt);
    if (o.check_train > 0) {
        const ex_dataset tr = head(&data.train, o.check_train);
        const ex_dataset te = head(&data.test, o.check_test ? o.check_test : data.test.n);
        check_against_training(ctx, net, &o, &tr, &te, eta, times, nt);
    }
    if (o.kernel_images > 0) {
        const ex_dataset ks = head(&data.train, o.kernel_images);
        kernel_convergence(ctx, &o, &ks);
    }
    printf("\ntotal %.1f s\n", ex_now() - start);

    tn_net_free(net);
    tn_ctx_free(ctx);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
