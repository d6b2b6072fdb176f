/*
 * mpi_check -- the one-process reference for the distributed programs: the
 * same problem (problem.h) solved with the library's ordinary calls, then
 * compared with what a distributed run wrote.
 *
 *   mpi_check ntk     [options of ntk_mpi]     --in DIR
 *   mpi_check predict [options of predict_mpi] --in DIR
 *   mpi_check train   [options of train_mpi]   --in DIR
 *
 * One line per comparison, "PASS what: max relative difference D
 * (tolerance T)" or "FAIL ...", where D = max |distributed - reference| /
 * max |reference| over the compared entries; exit status 1 if any failed.
 *
 *   ntk      tn_ntk_compute(X, N, NULL) and tn_ntk_analytic on the whole
 *            set; the lower triangle of the distributed N x N matrices (all
 *            they hold), all of the test x train ones.  Tolerance 1e-12: an
 *            entry is the same sums of products in both runs, accumulated
 *            in other orders by GEMMs on tiles of other shapes; a sum of n
 *            terms moves by at most n u max|term| (u = 1.1e-16), with n up
 *            to the width times the layers, a few hundred here.
 *   predict  tn_predictor (the closed form at each t) and tn_gp (NNGP
 *            posterior mean) on the one-process kernels.  These solve with
 *            the kernel, so rounding is amplified by its condition number
 *            kappa (printed): tolerance 1e-12 + 10 N kappa u, the
 *            perturbation bound of a backward-stable symmetric solver
 *            (LAPACK dsyevd / dpotrf there, ScaLAPACK pdsyevd / pdpotrf in
 *            the run) with a margin of 10.
 *   train    the trainer on the whole batches, no hook; the loss of every
 *            step and the final parameters, every mode.  Tolerance 1e-12:
 *            the shard gradients weighted by n_r / n sum to the batch
 *            gradient up to rounding (1e-16), which a few dozen steps of a
 *            smooth map do not amplify past 1e-12.
 */
#include "problem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tn_ctx *ctx;
static int failures;

#define CK(call)                                                                          \
    do {                                                                                  \
        tn_status st_ = (call);                                                           \
        if (st_ != TN_OK) {                                                               \
            fprintf(stderr, "mpi_check: %s: %s\n", #call, tn_ctx_errmsg(ctx));           \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static double *alloc(size_t n)
{
    double *v = malloc((n ? n : 1) * sizeof(double));
    if (v == NULL) {
        fprintf(stderr, "mpi_check: out of memory for %zu doubles\n", n);
        exit(1);
    }
    return v;
}

/* The doubles of dir/name, which must be exactly count of them; NULL (and
 * a FAIL line) otherwise. */
static double *read_result(const problem *p, const char *name, size_t count, const char *what)
{
    char path[4096];
    problem_path(path, sizeof path, p->in, name);
    FILE *f = fopen(path, "rb");
    double *v = alloc(count);
    size_t got = f ? fread(v, sizeof(double), count, f) : 0;
    const int extra = f && fgetc(f) != EOF;
    if (f) fclose(f);
    if (got != count || extra) {
        printf("FAIL %s: %s %s (expected %zu doubles)\n", what, path,
               f ? "has the wrong size" : "cannot be read", count);
        failures++;
        free(v);
        return NULL;
    }
    return v;
}

/* Compares got (column-major m x n, from a distributed run) with ref
 * (row-major m x n, one process); lower: only entries i >= j. */
static void compare(const char *what, const double *got, const double *ref, size_t m, size_t n,
                    int lower, double tol)
{
    if (got == NULL) return;
    double diff = 0, mag = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < (lower ? i + 1 : n); j++) {
            const double a = got[i + j * m], b = ref[i * n + j];
            const double d = fabs(a - b);
            if (!(d <= diff)) diff = d;   /* NaN fails */
            if (fabs(b) > mag) mag = fabs(b);
        }
    const double rel = mag > 0 ? diff / mag : diff;
    const int ok = rel <= tol;
    printf("%s %s: max relative difference %.2e (tolerance %.1e)\n", ok ? "PASS" : "FAIL", what,
           rel, tol);
    failures += !ok;
}

static double *inputs(const problem *p, int set, size_t count)
{
    double *x = alloc(count * p->d);
    problem_inputs(p, set, 0, count, x);
    return x;
}

static void check_file(const problem *p, const char *name, const char *what, const double *ref,
                       size_t m, size_t n, int lower, double tol)
{
    double *got = read_result(p, name, m * n, what);
    compare(what, got, ref, m, n, lower, tol);
    free(got);
}

static void check_ntk(const problem *p, tn_net *net)
{
    const size_t N = p->n, M = p->m;
    double *x = inputs(p, PROBLEM_TRAIN, N), *xt = inputs(p, PROBLEM_TEST, M);
    tn_ntk *k;
    CK(tn_ntk_create(net, &k));
    double *K = alloc(N * N), *Kt = alloc(M * N);
    CK(tn_ntk_compute(k, x, N, NULL, 0, K));
    check_file(p, "ntk.bin", "empirical NTK K(X, X), lower triangle", K, N, N, 1, 1e-12);
    if (M > 0) {
        CK(tn_ntk_compute(k, xt, M, x, N, Kt));
        check_file(p, "ntk_test.bin", "empirical NTK K(X*, X)", Kt, M, N, 0, 1e-12);
    }
    if (p->analytic) {
        double *G = alloc(N * N), *Gt = alloc(M * N);
        CK(tn_ntk_analytic(k, x, N, NULL, 0, G, K));
        check_file(p, "nngp.bin", "infinite-width NNGP K(X, X), lower triangle", G, N, N, 1,
                   1e-12);
        check_file(p, "ntk_inf.bin", "infinite-width NTK K(X, X), lower triangle", K, N, N, 1,
                   1e-12);
        if (M > 0) {
            CK(tn_ntk_analytic(k, xt, M, x, N, Gt, Kt));
            check_file(p, "nngp_test.bin", "infinite-width NNGP K(X*, X)", Gt, M, N, 0, 1e-12);
            check_file(p, "ntk_inf_test.bin", "infinite-width NTK K(X*, X)", Kt, M, N, 0, 1e-12);
        }
        free(G), free(Gt);
    }
    tn_ntk_free(k);
    free(x), free(xt), free(K), free(Kt);
}

/* The condition number of K + reg I, for the tolerance: lambda_max by power
 * iteration, lambda_min by inverse iteration, the solves through the
 * library's own predictor (at t = inf with targets 0, f0 = v, and the
 * identity as test x train kernel, its test output is -(K + reg I)^-1 v).
 * A factor of 2 either way would not matter. */
static double power_lmax(const double *K, size_t n)
{
    double *v = alloc(n), *w = alloc(n), lam = 0;
    for (size_t i = 0; i < n; i++) v[i] = 1.0 / sqrt((double)n);
    for (int it = 0; it < 200; it++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            w[i] = 0;
            for (size_t j = 0; j < n; j++) w[i] += K[i * n + j] * v[j];
            s += w[i] * w[i];
        }
        lam = sqrt(s);
        for (size_t i = 0; i < n; i++) v[i] = w[i] / lam;
    }
    free(v), free(w);
    return lam;
}

static double inverse_lmin(const double *K, size_t n, double reg)
{
    tn_predictor *pr;
    double *y = alloc(n), *v = alloc(n), *w = alloc(n), *I = alloc(n * n), *z = alloc(n);
    memset(y, 0, n * sizeof *y);
    memset(z, 0, n * sizeof *z);
    for (size_t i = 0; i < n * n; i++) I[i] = 0;
    for (size_t i = 0; i < n; i++) I[i * n + i] = 1, v[i] = 1.0 / sqrt((double)n);
    CK(tn_predictor_create(ctx, K, n, 1, 0, y, &pr));
    CK(tn_predictor_set(pr, TN_PRED_DIAG_REG, reg));
    /* t = inf needs no eta, but gradient descent must converge at it. */
    CK(tn_predictor_set(pr, TN_PRED_LEARNING_RATE, 1e-300));
    double mu = 0;
    for (int it = 0; it < 100; it++) {
        CK(tn_predictor_predict(pr, INFINITY, v, NULL, I, z, n, w));
        double s = 0;
        for (size_t i = 0; i < n; i++) s += w[i] * w[i];
        mu = sqrt(s);
        for (size_t i = 0; i < n; i++) v[i] = -w[i] / mu;
    }
    tn_predictor_free(pr);
    free(y), free(v), free(w), free(I), free(z);
    return 1.0 / mu;
}

static void check_predict(const problem *p, tn_net *net)
{
    const size_t N = p->n, M = p->m, O = p->outputs;
    double *x = inputs(p, PROBLEM_TRAIN, N), *xt = inputs(p, PROBLEM_TEST, M);
    double *y = alloc(N * O), *f0 = alloc(N * O), *f0t = alloc(M * O);
    problem_targets(p, x, N, y);
    CK(tn_net_forward(net, x, N, f0));
    if (M > 0) CK(tn_net_forward(net, xt, M, f0t));
    tn_ntk *k;
    CK(tn_ntk_create(net, &k));
    double *K = alloc(N * N), *Kt = alloc(M * N), *ft = alloc(N * O), *ftt = alloc(M * O);
    CK(tn_ntk_compute(k, x, N, NULL, 0, K));
    if (M > 0) CK(tn_ntk_compute(k, xt, M, x, N, Kt));
    const double kappa = (power_lmax(K, N) + p->reg) / inverse_lmin(K, N, p->reg);
    const double tol = 1e-12 + 10.0 * (double)N * kappa * 0x1p-53;
    printf("mpi_check: kappa(K + reg I) = %.3g, so predictions are compared to %.1e\n", kappa, tol);
    tn_predictor *pr;
    CK(tn_predictor_create(ctx, K, N, O, 0, y, &pr));
    CK(tn_predictor_set(pr, TN_PRED_LEARNING_RATE, p->eta));
    CK(tn_predictor_set(pr, TN_PRED_DIAG_REG, p->reg));
    for (int i = 0; i < p->ntimes; i++) {
        char name[64], what[128];
        CK(tn_predictor_predict(pr, p->times[i], f0, ft, M ? Kt : NULL, M ? f0t : NULL, M,
                                M ? ftt : NULL));
        snprintf(name, sizeof name, "pred_train_%d.bin", i);
        snprintf(what, sizeof what, "closed form f_t(X) at t = %g", p->times[i]);
        check_file(p, name, what, ft, N, O, 0, tol);
        if (M > 0) {
            snprintf(name, sizeof name, "pred_test_%d.bin", i);
            snprintf(what, sizeof what, "closed form f_t(X*) at t = %g", p->times[i]);
            check_file(p, name, what, ftt, M, O, 0, tol);
        }
    }
    tn_predictor_free(pr);
    if (M > 0) {
        /* The NNGP posterior mean on the infinite-width kernels. */
        CK(tn_ntk_analytic(k, x, N, NULL, 0, K, NULL));
        CK(tn_ntk_analytic(k, xt, M, x, N, Kt, NULL));
        const double kn = (power_lmax(K, N) + p->reg) / inverse_lmin(K, N, p->reg);
        const double tn = 1e-12 + 10.0 * (double)N * kn * 0x1p-53;
        printf("mpi_check: kappa(NNGP + reg I) = %.3g, so the posterior mean is compared to "
               "%.1e\n", kn, tn);
        tn_gp *gp;
        CK(tn_gp_create(ctx, K, NULL, N, O, y, &gp));
        CK(tn_gp_set(gp, TN_GP_DIAG_REG, p->reg));
        CK(tn_gp_nngp_posterior(gp, Kt, NULL, M, ftt, NULL));
        check_file(p, "nngp_mean.bin", "NNGP posterior mean at X*", ftt, M, O, 0, tn);
        tn_gp_free(gp);
    }
    tn_ntk_free(k);
    free(x), free(xt), free(y), free(f0), free(f0t), free(K), free(Kt), free(ft), free(ftt);
}

static void check_train(const problem *p, tn_net *net0)
{
    const size_t P = tn_net_num_params(net0), O = p->outputs;
    const size_t nbatch = (p->n + p->batch - 1) / p->batch, steps = nbatch * (size_t)p->epochs;
    double *x = inputs(p, PROBLEM_TRAIN, p->n), *y = alloc(p->n * O);
    problem_targets(p, x, p->n, y);
    double *losses = alloc(steps), *theta = alloc(P);
    for (int m = 0; m < p->nmodes; m++) {
        const problem_mode *md = &p->modes[m];
        tn_net *net;
        tn_trainer *tr;
        CK(tn_net_clone(net0, &net));
        CK(problem_trainer(p, md, net, &tr));
        size_t s = 0;
        for (int e = 0; e < p->epochs; e++)
            for (size_t b = 0; b < nbatch; b++, s++) {
                size_t first, count;
                problem_batch(p, b, &first, &count);
                CK(tn_trainer_step(tr, x + first * p->d, y + first * O, count, &losses[s]));
            }
        CK(tn_net_get_params(net, theta, P));
        char name[64], what[128];
        snprintf(name, sizeof name, "train_%d_loss.bin", m);
        snprintf(what, sizeof what, "%s: the loss of each of %zu steps", md->name, steps);
        check_file(p, name, what, losses, steps, 1, 0, 1e-12);
        snprintf(name, sizeof name, "train_%d_theta.bin", m);
        snprintf(what, sizeof what, "%s: the %zu trained parameters", md->name, P);
        check_file(p, name, what, theta, P, 1, 0, 1e-12);
        tn_trainer_free(tr);
        tn_net_free(net);
    }
    free(x), free(y), free(losses), free(theta);
}

int main(int argc, char **argv)
{
    problem p;
    char err[256];
    const char *cmd = argc > 1 ? argv[1] : "";
    const int known = !strcmp(cmd, "ntk") || !strcmp(cmd, "predict") || !strcmp(cmd, "train");
    if (!known || problem_parse(&p, argc - 1, argv + 1, err, sizeof err) != 0 || p.in == NULL) {
        fprintf(stderr, "usage: mpi_check ntk|predict|train [options] --in DIR\n%s%s%s",
                known ? "mpi_check: " : "", known ? (p.in ? err : "--in DIR is required") : "",
                known ? "\n" : "");
        fprintf(stderr, "options:\n%s", problem_usage());
        return 2;
    }
    if (tn_ctx_create(&ctx) != TN_OK) return 1;
    CK(tn_ctx_set_threads(ctx, p.threads));
    tn_net *net;
    CK(problem_net(ctx, &p, &net));
    if (!strcmp(cmd, "ntk")) check_ntk(&p, net);
    else if (!strcmp(cmd, "predict")) check_predict(&p, net);
    else check_train(&p, net);
    tn_net_free(net);
    tn_ctx_free(ctx);
    printf("mpi_check %s: %s\n", cmd, failures ? "FAILED" : "all comparisons passed");
    return failures ? 1 : 0;
}
