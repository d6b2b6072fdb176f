/*
 * predict_mpi -- kernel prediction over R ranks: the closed-form outputs of
 * linearized training (MATH.md §6) and the NNGP posterior mean, on kernels
 * stored block-cyclically and never gathered.
 *
 *   mpirun -np R predict_mpi --n 4000 --m 1000 --times 10,100,1000,inf [--out DIR]
 *
 * With Theta = Theta(X, X) + reg I = V diag(lam) V^T (ScaLAPACK pdsyevd on
 * the lower triangle), r = f0(X) - Y, h = eta / N and t gradient-descent
 * steps:
 *   f_t(X)  = Y + V diag(m_t(lam)) V^T r,           m_t = (1 - h lam)^t
 *   f_t(X*) = f0(X*) - Theta(X*, X) V diag(g_t(lam)) V^T r,  g_t = (1 - m_t) / lam
 * (one decomposition serves every t; g_t needs no inverse of a zero
 * eigenvalue at finite t).  At t = inf the test outputs are
 * f0(X*) - Theta(X*, X) Theta^-1 r by Cholesky (pdpotrf, pdpotrs).  The
 * NNGP posterior mean is K(X*, X) (K + reg I)^-1 Y with the infinite-width
 * NNGP kernel K, by Cholesky too.  Everything the library's tn_predictor
 * and tn_gp refuse is refused here with the same rules: a kernel that is
 * not positive semi-definite, a learning rate at which gradient descent
 * diverges, a kernel singular where an inverse is needed.
 *
 * The N x O matrices (f0, Y, predictions) are distributed like the kernel's
 * rows.  --out DIR writes pred_train_K.bin (N x O) and pred_test_K.bin
 * (M x O) for the K-th time of --times, and nngp_mean.bin (M x O), as
 * column-major doubles; mpi_check predict compares them with tn_predictor
 * and tn_gp in one process.
 */
#include "dist.h"
#include "problem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tn_ctx *ctx;
static const problem *prob;
static tn_net *net;

static void train_inputs(void *user, size_t first, size_t count, double *x)
{
    (void)user;
    problem_inputs(prob, PROBLEM_TRAIN, first, count, x);
}

static void test_inputs(void *user, size_t first, size_t count, double *x)
{
    (void)user;
    problem_inputs(prob, PROBLEM_TEST, first, count, x);
}

static void empirical_tile(void *user, const double *xa, size_t na, const double *xb, size_t nb,
                           double *const *out)
{
    DIST_CK(ctx, tn_ntk_compute(user, xa, na, xb, nb, out[0]));
}

static void nngp_tile(void *user, const double *xa, size_t na, const double *xb, size_t nb,
                      double *const *out)
{
    DIST_CK(ctx, tn_ntk_analytic(user, xa, na, xb, nb, out[0], NULL));
}

/* Rows of f0 = f(theta0; x), of the targets Y, for a set. */
static void f0_rows(void *set, size_t first, size_t count, double *out)
{
    double *x = malloc(count * prob->d * sizeof(double));
    if (x == NULL) dist_die("out of memory for %zu inputs", count);
    problem_inputs(prob, *(int *)set, first, count, x);
    DIST_CK(ctx, tn_net_forward(net, x, count, out));
    free(x);
}

static void target_rows(void *set, size_t first, size_t count, double *out)
{
    double *x = malloc(count * prob->d * sizeof(double));
    if (x == NULL) dist_die("out of memory for %zu inputs", count);
    problem_inputs(prob, *(int *)set, first, count, x);
    problem_targets(prob, x, count, out);
    free(x);
}

/* m_t(lam) = (1 - h lam)^t and g_t(lam) = (1 - m_t) / lam for gradient
 * descent, t whole, in forms that keep relative accuracy: for x = h lam < 1,
 * m = exp(u) with u = t log1p(-x), and g = h t phi(u) log1p(-x) / (-x) with
 * phi(u) = expm1(u) / u (no cancellation in 1 - m when x t is small). */
static double phi(double u)
{
    return u == 0.0 ? 1.0 : expm1(u) / u;
}

static void time_factors(double h, double t, double lam, double *mf, double *gf)
{
    const double x = h * lam;
    if (x == 0.0) {                 /* never moves; (1 - m) / lam -> h t */
        *mf = 1.0;
        *gf = h * t;
    } else if (x < 1.0) {
        const double L = log1p(-x), u = t * L;
        *mf = exp(u);
        *gf = u < -40.0 ? 1.0 / lam : h * t * phi(u) * (L / -x);   /* 1 - e^u rounds to 1 */
    } else if (x == 1.0) {
        *mf = 0.0;
        *gf = 1.0 / lam;
    } else {                        /* 1 < x < 2: alternating powers of 1 - x */
        const double L = x < 3.0 ? log1p(x - 2.0) : log(x - 1.0), u = t * L, e = exp(u);
        const int odd = fmod(t, 2.0) == 1.0;
        *mf = odd ? -e : e;
        *gf = (odd ? 1.0 + e : -expm1(u)) / lam;
    }
}

/* B(i, :) *= s[global row i], for an N x O matrix and N scale factors. */
static void scale_rows(dist_matrix *B, const double *s)
{
    for (int j = 0; j < B->locc; j++)
        for (int i = 0; i < B->locr; i++)
            B->a[(size_t)i + (size_t)j * B->lld] *= s[dist_global_row(B, i)];
}

/* C = alpha op(A) op(B) + beta C over the whole matrices. */
static void gemm(const char *ta, const char *tb, double alpha, const dist_matrix *A,
                 const dist_matrix *B, double beta, dist_matrix *C)
{
    const int one = 1, k = *ta == 'T' ? A->m : A->n;
    pdgemm_(ta, tb, &C->m, &C->n, &k, &alpha, A->a, &one, &one, A->desc, B->a, &one, &one,
            B->desc, &beta, C->a, &one, &one, C->desc, 1, 1);
}

/* Cholesky of the lower triangle of A in place; info > 0 (not positive
 * definite) is the same on every rank. */
static void cholesky(dist_matrix *A, const char *what)
{
    const int one = 1;
    int info;
    pdpotrf_("L", &A->m, A->a, &one, &one, A->desc, &info, 1);
    if (info < 0) dist_die("pdpotrf: argument %d is invalid", -info);
    if (info > 0)
        dist_fail_all("predict_mpi: %s is not positive definite (pdpotrf: leading minor %d); "
                      "raise --reg", what, info);
}

static void cholesky_solve(const dist_matrix *L, dist_matrix *B)
{
    const int one = 1;
    int info;
    pdpotrs_("L", &L->m, &B->n, L->a, &one, &one, L->desc, B->a, &one, &one, B->desc, &info, 1);
    if (info != 0) dist_die("pdpotrs: info %d", info);
}

/* The reciprocal 1-norm condition estimate of A = L L^T (ScaLAPACK pdpocon),
 * anorm the 1-norm of A before the factorization. */
static double rcond(const dist_matrix *L, double anorm)
{
    const int one = 1;
    int info, lwork = -1, liwork = -1, iq;
    double wq, rc;
    pdpocon_("L", &L->m, L->a, &one, &one, L->desc, &anorm, &rc, &wq, &lwork, &iq, &liwork,
             &info, 1);
    lwork = (int)wq + 1;
    liwork = iq + 1;
    double *work = malloc((size_t)lwork * sizeof(double));
    int *iwork = malloc((size_t)liwork * sizeof(int));
    if (work == NULL || iwork == NULL) dist_die("out of memory for pdpocon");
    pdpocon_("L", &L->m, L->a, &one, &one, L->desc, &anorm, &rc, work, &lwork, iwork, &liwork,
             &info, 1);
    if (info != 0) dist_die("pdpocon: info %d", info);
    free(work);
    free(iwork);
    return rc;
}

static double norm1(const dist_matrix *A)
{
    const int one = 1;
    /* pdlansy's workspace for the 1-norm: 2 Nq0 + Np0 + LDW, bounded by this. */
    const size_t len = 2 * (size_t)(A->locr + A->locc) + 4 * (size_t)A->nb + (size_t)A->m +
                       (size_t)A->nb * (size_t)A->nb;
    double *work = malloc(len * sizeof(double));
    if (work == NULL) dist_die("out of memory for pdlansy");
    const double v = pdlansy_("1", "L", &A->m, A->a, &one, &one, A->desc, work, 1, 1);
    free(work);
    return v;
}

/* Theta + reg I = V diag(lam) V^T: pdsyevd on a copy (it destroys its
 * input); lam ascending, on every rank. */
static void eigh(const dist_matrix *K, double reg, dist_matrix *V, double *lam)
{
    dist_matrix A;
    dist_matrix_init(&A, K->g, K->m, K->n, K->nb);
    dist_matrix_copy(&A, K);
    dist_add_diagonal(&A, reg);
    const int one = 1;
    int info, lwork = -1, liwork = -1, iq;
    double wq;
    pdsyevd_("V", "L", &A.m, A.a, &one, &one, A.desc, lam, V->a, &one, &one, V->desc, &wq,
             &lwork, &iq, &liwork, &info, 1, 1);
    /* The query answers for this rank's local sizes only, and reference
     * ScaLAPACK 2.2 underestimates: the eigenvector sort (pdlasrt) and the
     * back-transformation (pdormtr) inside need, past the 2N doubles pdsyevd
     * keeps, max(N, NP (NB + NQ)) and max(NB (NB - 1) / 2, (NP + NQ) NB) +
     * NB^2 on every rank, with the largest local sizes of any rank; short,
     * they stop with "parameter ... had an illegal value" and then hang or
     * return garbage.  Take the largest of these, the documented minimum
     * and every rank's query. */
    double need[2] = {wq, (double)iq}, np_nq[2] = {A.locr, A.locc};
    MPI_Allreduce(MPI_IN_PLACE, np_nq, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    const double n = A.m, b = A.nb, np = np_nq[0], nq = np_nq[1];
    const double sort = fmax(n, np * (b + nq));
    const double ormtr = fmax(b * (b - 1) / 2, (np + nq) * b) + b * b;
    const double documented = fmax(1 + 6 * n + 2 * np * nq, 3 * n + fmax(b * (np + 1), 3 * b));
    need[0] = fmax(need[0], 2 * n + fmax(fmax(sort, ormtr), documented));
    MPI_Allreduce(MPI_IN_PLACE, need, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (need[0] > 2147483000.0)
        dist_die("pdsyevd needs %.0f doubles of workspace, past its 32-bit LWORK", need[0]);
    lwork = (int)need[0] + 1;
    liwork = (int)need[1] + 1;
    double *work = malloc((size_t)lwork * sizeof(double));
    int *iwork = malloc((size_t)liwork * sizeof(int));
    if (work == NULL || iwork == NULL)
        dist_die("out of memory for pdsyevd's workspace (%d doubles)", lwork);
    pdsyevd_("V", "L", &A.m, A.a, &one, &one, A.desc, lam, V->a, &one, &one, V->desc, work,
             &lwork, iwork, &liwork, &info, 1, 1);
    if (info < 0) dist_die("pdsyevd: argument %d is invalid", -info);
    if (info > 0) dist_fail_all("predict_mpi: pdsyevd did not converge (info %d)", info);
    free(work);
    free(iwork);
    dist_matrix_free(&A);
}

static void save(const dist_matrix *A, const char *name)
{
    char path[4096];
    if (prob->out) dist_matrix_write(A, problem_path(path, sizeof path, prob->out, name));
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    dist_say("%s\n", tn_blas_info());   /* the kernel set every rank's GEMMs run on */
    problem p;
    char err[256];
    if (problem_parse(&p, argc, argv, err, sizeof err) != 0) {
        if (dist_rank == 0) fprintf(stderr, "predict_mpi: %s\noptions:\n%s", err, problem_usage());
        MPI_Finalize();
        return 2;
    }
    prob = &p;
    if (p.n > 2000000000 || p.m > 2000000000)
        dist_fail_all("predict_mpi: N and M must fit ScaLAPACK's 32-bit indices");
    if (tn_ctx_create(&ctx) != TN_OK) dist_die("tn_ctx_create failed");
    DIST_CK(ctx, tn_ctx_set_threads(ctx, p.threads));
    tn_ntk *ntk;
    DIST_CK(ctx, problem_net(ctx, &p, &net));
    DIST_CK(ctx, tn_ntk_create(net, &ntk));
    DIST_CK(ctx, tn_ntk_set(ntk, TN_NTK_MEMORY_BUDGET, p.budget_mb * 1048576.0));

    dist_grid g;
    dist_grid_init(&g);
    const int N = (int)p.n, M = (int)p.m, O = (int)p.outputs, nb = p.nb;
    const double budget = p.budget_mb * 1048576.0;
    dist_say("predict_mpi: %d ranks as a %d x %d grid; N = %d train, M = %d test inputs, "
             "%d outputs; eta %g, reg %g\n", dist_size, g.nprow, g.npcol, N, M, O, p.eta, p.reg);
    int train = PROBLEM_TRAIN, test = PROBLEM_TEST;
    dist_fill_stats st;
    /* What panels cost: the structured NTK's features and entries; the
     * infinite-width kernels need no features, so thin panels waste least. */
    dist_tile_cost empirical_cost, analytic_cost = {0, 1};
    problem_ntk_cost(&p, &empirical_cost.feature, &empirical_cost.entry);
    double t0 = MPI_Wtime();

    /* Kernels: Theta(X, X) (lower) and Theta(X*, X). */
    dist_matrix K, Kt, F0, F0t, Y, Yt;
    dist_matrix_init(&K, &g, N, N, nb);
    dist_matrix *ks[] = {&K};
    dist_fill(ks, 1, 1, p.d, train_inputs, train_inputs, NULL,
              empirical_tile, ntk, &empirical_cost, budget,
              "empirical NTK", &st);
    dist_report_balance("empirical NTK", &st);
    dist_matrix_init(&Kt, &g, M, N, nb);
    if (M > 0) {
        dist_matrix *kt[] = {&Kt};
        dist_fill(kt, 1, 0, p.d, test_inputs, train_inputs, NULL,
                  empirical_tile, ntk, &empirical_cost, budget,
                  "empirical NTK, test x train", &st);
    }
    dist_matrix_init(&F0, &g, N, O, nb);
    dist_matrix_init(&Y, &g, N, O, nb);
    dist_matrix_init(&F0t, &g, M, O, nb);
    dist_matrix_init(&Yt, &g, M, O, nb);
    dist_fill_rows(&F0, f0_rows, &train);
    dist_fill_rows(&Y, target_rows, &train);
    if (M > 0) {
        dist_fill_rows(&F0t, f0_rows, &test);
        dist_fill_rows(&Yt, target_rows, &test);
    }
    const double t_kernel = MPI_Wtime() - t0;

    /* One eigendecomposition serves every t. */
    t0 = MPI_Wtime();
    double c0 = dist_cpu_seconds();
    dist_matrix V;
    dist_matrix_init(&V, &g, N, N, nb);
    double *lam = malloc((size_t)N * sizeof(double)), *mf = malloc((size_t)N * sizeof(double)),
           *gf = malloc((size_t)N * sizeof(double));
    if (lam == NULL || mf == NULL || gf == NULL) dist_die("out of memory for %d eigenvalues", N);
    eigh(&K, p.reg, &V, lam);
    const double t_eig = MPI_Wtime() - t0;
    double cpu_eig = dist_cpu_seconds() - c0;   /* includes MPI's busy-waiting */
    MPI_Allreduce(MPI_IN_PLACE, &cpu_eig, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    /* The library's policy (tn_predictor): eigenvalues down to -1e-10 N
     * lam_max are rounding and clipped to 0; below, not PSD. */
    const double lmax = lam[N - 1], band = 1e-10 * N * lmax;
    if (!(lam[0] >= -band))
        dist_fail_all("predict_mpi: the kernel is not positive semi-definite (smallest "
                      "eigenvalue %.6g, largest %.6g)", lam[0], lmax);
    for (int k = 0; k < N && lam[k] < 0; k++) lam[k] = 0;
    const int singular = lam[0] <= band;
    const double h = p.eta / N;
    dist_say("eigenvalues of Theta + reg I: %.6g .. %.6g (condition %.3g); eta lam_max / N = %.4g; "
             "pdsyevd %.2f s (all ranks %.2f CPU s)\n", lam[0], lmax, lmax / lam[0], h * lmax,
             t_eig, cpu_eig);
    if (h * lmax >= 2)
        dist_fail_all("predict_mpi: gradient descent diverges at this learning rate (eta lam_max "
                      "/ N = %g >= 2): lower --eta below %g", h * lmax, 2 / (h * lmax) * p.eta);

    /* r = f0 - Y, and C = V^T r: r in the eigenbasis. */
    dist_matrix R, C, W, Ft, S, Ftt;
    dist_matrix_init(&R, &g, N, O, nb);
    dist_matrix_init(&C, &g, N, O, nb);
    dist_matrix_init(&W, &g, N, O, nb);
    dist_matrix_init(&Ft, &g, N, O, nb);
    dist_matrix_init(&S, &g, N, O, nb);
    dist_matrix_init(&Ftt, &g, M, O, nb);
    for (size_t i = 0; i < (size_t)R.lld * R.locc; i++) R.a[i] = F0.a[i] - Y.a[i];
    gemm("T", "N", 1.0, &V, &R, 0.0, &C);

    t0 = MPI_Wtime();
    /* t = inf with test points needs Theta^-1: the Cholesky factor, made
     * now so that Theta itself can go (memory peaks at three N x N
     * matrices, in pdsyevd, and stays at two after). */
    int want_inf = 0;
    for (int it = 0; it < p.ntimes; it++) want_inf |= isinf(p.times[it]) && M > 0;
    if (want_inf && singular)
        dist_fail_all("predict_mpi: the kernel is singular at t = inf (smallest eigenvalue "
                      "%g <= %.3g x largest): set --reg", lam[0], 1e-10 * N);
    dist_matrix L;
    if (want_inf) {
        dist_matrix_init(&L, &g, N, N, nb);
        dist_matrix_copy(&L, &K);
        dist_add_diagonal(&L, p.reg);
        cholesky(&L, "the kernel plus --reg");
    }
    dist_matrix_free(&K);
    for (int it = 0; it < p.ntimes; it++) {
        const double t = p.times[it];
        const int at_inf = isinf(t);
        for (int k = 0; k < N; k++) {
            if (t == 0) mf[k] = 1, gf[k] = 0;
            else if (at_inf) mf[k] = lam[k] <= band ? 1 : 0, gf[k] = 0;   /* null space stays */
            else time_factors(h, t, lam[k], &mf[k], &gf[k]);
        }
        /* f_t(X) = Y + V diag(m) C */
        dist_matrix_copy(&W, &C);
        scale_rows(&W, mf);
        dist_matrix_copy(&Ft, &Y);
        gemm("N", "N", 1.0, &V, &W, 1.0, &Ft);
        if (t == 0) dist_matrix_copy(&Ft, &F0);
        if (M > 0) {
            if (at_inf) {
                dist_matrix_copy(&S, &R);
                cholesky_solve(&L, &S);
            } else {
                dist_matrix_copy(&W, &C);
                scale_rows(&W, gf);
                gemm("N", "N", 1.0, &V, &W, 0.0, &S);
            }
            /* f_t(X*) = f0(X*) - Theta(X*, X) S */
            dist_matrix_copy(&Ftt, &F0t);
            if (t != 0) gemm("N", "N", -1.0, &Kt, &S, 1.0, &Ftt);
        }
        char name[64];
        snprintf(name, sizeof name, "pred_train_%d.bin", it);
        save(&Ft, name);
        const double tr_loss = 0.5 * dist_sum_sq_diff(&Ft, &Y) / N;
        if (M > 0) {
            snprintf(name, sizeof name, "pred_test_%d.bin", it);
            save(&Ftt, name);
            dist_say("t = %-8g train loss %.6g, test loss %.6g\n", t, tr_loss,
                     0.5 * dist_sum_sq_diff(&Ftt, &Yt) / M);
        } else {
            dist_say("t = %-8g train loss %.6g\n", t, tr_loss);
        }
    }
    const double t_pred = MPI_Wtime() - t0;
    if (want_inf) dist_matrix_free(&L);
    dist_matrix_free(&V);
    dist_matrix_free(&Kt);

    /* The NNGP posterior mean K(X*, X) (K + reg I)^-1 Y. */
    double t_nngp = 0;
    if (M > 0) {
        t0 = MPI_Wtime();
        dist_matrix G, Gt, A, Mean;
        dist_matrix_init(&G, &g, N, N, nb);
        dist_matrix_init(&Gt, &g, M, N, nb);
        dist_matrix *gs[] = {&G}, *gts[] = {&Gt};
        dist_fill(gs, 1, 1, p.d, train_inputs, train_inputs, NULL,
                  nngp_tile, ntk, &analytic_cost, budget,
                  "infinite-width NNGP", &st);
        dist_fill(gts, 1, 0, p.d, test_inputs, train_inputs, NULL,
                  nngp_tile, ntk, &analytic_cost, budget,
                  "infinite-width NNGP, test x train", &st);
        dist_add_diagonal(&G, p.reg);
        const double anorm = norm1(&G);
        cholesky(&G, "the NNGP kernel plus --reg");
        const double rc = rcond(&G, anorm);
        /* tn_gp's rule: a factorization of a matrix singular up to rounding
         * succeeds, and its solves are noise. */
        if (!(rc > 1e-10))
            dist_fail_all("predict_mpi: the NNGP kernel plus --reg is numerically singular "
                          "(reciprocal condition %.3g <= 1e-10): raise --reg", rc);
        dist_matrix_init(&A, &g, N, O, nb);
        dist_matrix_init(&Mean, &g, M, O, nb);
        dist_matrix_copy(&A, &Y);
        cholesky_solve(&G, &A);
        gemm("N", "N", 1.0, &Gt, &A, 0.0, &Mean);
        save(&Mean, "nngp_mean.bin");
        t_nngp = MPI_Wtime() - t0;
        dist_say("NNGP posterior mean: test loss %.6g (reciprocal condition %.3g)\n",
                 0.5 * dist_sum_sq_diff(&Mean, &Yt) / M, rc);
        dist_matrix_free(&G), dist_matrix_free(&Gt), dist_matrix_free(&A), dist_matrix_free(&Mean);
    }
    dist_say("predict_mpi: seconds: kernels %.2f, eigendecomposition %.2f, Cholesky and %d "
             "times %.2f, NNGP %.2f\n", t_kernel, t_eig, p.ntimes, t_pred, t_nngp);
    if (p.out) dist_say("predict_mpi: predictions written to %s (column-major doubles)\n", p.out);

    dist_matrix *all[] = {&F0, &F0t, &Y, &Yt, &R, &C, &W, &Ft, &S, &Ftt};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dist_matrix_free(all[i]);
    free(lam), free(mf), free(gf);
    dist_grid_exit(&g);
    tn_ntk_free(ntk);
    tn_net_free(net);
    tn_ctx_free(ctx);
    MPI_Finalize();
    return 0;
}
