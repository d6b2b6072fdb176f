/*
 * ntk_mpi -- the neural tangent kernel of N inputs over R ranks, stored as
 * a ScaLAPACK block-cyclic matrix and never gathered on one rank.
 *
 *   mpirun -np R ntk_mpi --n 4000 --width 512 [--m 1000] [--analytic] [--out DIR]
 *
 * Every rank builds the same network from the same seed and computes
 * exactly the blocks of K(X, X) it stores: only those on and below the
 * diagonal (the kernel is symmetric; ScaLAPACK's uplo = 'L' reads no more),
 * with tn_ntk_compute on pairs of row and column tiles.  No kernel entry
 * crosses the network.  Block-cyclic storage is also the load balance: a
 * rank's blocks are spread over the whole triangle, so R ranks get within
 * (1 + 1/blocks) of an equal share.  With --m the test x train kernel
 * (all of it) is computed the same way, and with --analytic the
 * infinite-width NNGP and NTK of tn_ntk_analytic.
 *
 * --out DIR writes each matrix with MPI-IO (every rank its own blocks) as
 * column-major doubles: ntk.bin (N x N, lower triangle), ntk_test.bin
 * (M x N), nngp.bin and ntk_inf.bin (N x N, lower), nngp_test.bin and
 * ntk_inf_test.bin (M x N).  mpi_check compares them with the one-process
 * kernels.
 */
#include "dist.h"
#include "problem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static tn_ctx *ctx;
static const problem *prob;

/* The inputs of the row and column sets, by global index. */
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

/* One tile of the empirical NTK (traced over outputs). */
static void empirical_tile(void *user, const double *xa, size_t na, const double *xb, size_t nb,
                           double *const *out)
{
    DIST_CK(ctx, tn_ntk_compute(user, xa, na, xb, nb, out[0]));
}

/* One tile of the infinite-width NNGP and NTK, both from one call. */
static void analytic_tile(void *user, const double *xa, size_t na, const double *xb, size_t nb,
                          double *const *out)
{
    DIST_CK(ctx, tn_ntk_analytic(user, xa, na, xb, nb, out[0], out[1]));
}

/* Sum of the diagonal and Frobenius norm of a symmetric matrix stored lower
 * (or of a full one), over all ranks: numbers to compare runs by eye. */
static void report(const char *name, const dist_matrix *K, int lower)
{
    double mine[2] = {0, 0}, all[2];
    for (int j = 0; j < K->locc; j++) {
        const int gj = dist_global_col(K, j);
        for (int i = 0; i < K->locr; i++) {
            const int gi = dist_global_row(K, i);
            const double v = K->a[(size_t)i + (size_t)j * K->lld];
            if (gi == gj) mine[0] += v;
            if (!lower || gi == gj) mine[1] += v * v;
            else if (gi > gj) mine[1] += 2 * v * v;
        }
    }
    MPI_Allreduce(mine, all, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (lower)
        dist_say("%-14s %d x %d: trace %.12g, Frobenius norm %.12g\n", name, K->m, K->n, all[0],
                 sqrt(all[1]));
    else
        dist_say("%-14s %d x %d: Frobenius norm %.12g\n", name, K->m, K->n, sqrt(all[1]));
}

static void save(const problem *p, const dist_matrix *K, const char *name)
{
    char path[4096];
    if (p->out) dist_matrix_write(K, problem_path(path, sizeof path, p->out, name));
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    dist_say("%s\n", tn_blas_info());   /* the kernel set every rank's GEMMs run on */
    problem p;
    char err[256];
    if (problem_parse(&p, argc, argv, err, sizeof err) != 0) {
        if (dist_rank == 0) fprintf(stderr, "ntk_mpi: %s\noptions:\n%s", err, problem_usage());
        MPI_Finalize();
        return 2;
    }
    prob = &p;
    if (p.n > 2000000000 || p.m > 2000000000)
        dist_fail_all("ntk_mpi: N and M must fit ScaLAPACK's 32-bit indices");

    /* Every rank: its own context, the same network (same seed). */
    if (tn_ctx_create(&ctx) != TN_OK) dist_die("tn_ctx_create failed");
    DIST_CK(ctx, tn_ctx_set_threads(ctx, p.threads));
    tn_net *net;
    tn_ntk *ntk;
    DIST_CK(ctx, problem_net(ctx, &p, &net));
    DIST_CK(ctx, tn_ntk_create(net, &ntk));
    DIST_CK(ctx, tn_ntk_set(ntk, TN_NTK_MEMORY_BUDGET, p.budget_mb * 1048576.0));

    dist_grid g;
    dist_grid_init(&g);
    dist_say("ntk_mpi: %d ranks as a %d x %d grid, blocks of %d; N = %zu train, M = %zu test "
             "inputs of dimension %zu; MLP %zu x %zu, %zu outputs, %zu parameters\n",
             dist_size, g.nprow, g.npcol, p.nb, p.n, p.m, p.d, p.depth, p.width, p.outputs,
             tn_net_num_params(net));
    const int N = (int)p.n, M = (int)p.m;
    const double budget = p.budget_mb * 1048576.0;
    dist_fill_stats st;
    /* What panels cost: the structured NTK's features and entries; the
     * infinite-width kernels need no features, so thin panels waste least. */
    dist_tile_cost empirical_cost, analytic_cost = {0, 1};
    problem_ntk_cost(&p, &empirical_cost.feature, &empirical_cost.entry);

    dist_matrix K;
    dist_matrix_init(&K, &g, N, N, p.nb);
    dist_matrix *ks[] = {&K};
    dist_fill(ks, 1, 1, p.d, train_inputs, train_inputs, NULL,
              empirical_tile, ntk, &empirical_cost, budget,
              "empirical NTK", &st);
    dist_report_balance("empirical NTK", &st);
    report("NTK", &K, 1);
    save(&p, &K, "ntk.bin");
    dist_matrix_free(&K);

    if (M > 0) {
        dist_matrix Kt;
        dist_matrix_init(&Kt, &g, M, N, p.nb);
        dist_matrix *kt[] = {&Kt};
        dist_fill(kt, 1, 0, p.d, test_inputs, train_inputs, NULL,
                  empirical_tile, ntk, &empirical_cost, budget,
                  "empirical NTK, test x train", &st);
        dist_report_balance("test x train", &st);
        report("NTK test", &Kt, 0);
        save(&p, &Kt, "ntk_test.bin");
        dist_matrix_free(&Kt);
    }

    if (p.analytic) {
        dist_matrix G, T;
        dist_matrix_init(&G, &g, N, N, p.nb);
        dist_matrix_init(&T, &g, N, N, p.nb);
        dist_matrix *gt[] = {&G, &T};
        dist_fill(gt, 2, 1, p.d, train_inputs, train_inputs, NULL,
                  analytic_tile, ntk, &analytic_cost, budget,
                  "infinite-width NNGP and NTK", &st);
        dist_report_balance("infinite width", &st);
        report("NNGP (inf)", &G, 1);
        report("NTK (inf)", &T, 1);
        save(&p, &G, "nngp.bin");
        save(&p, &T, "ntk_inf.bin");
        dist_matrix_free(&G);
        dist_matrix_free(&T);
        if (M > 0) {
            dist_matrix_init(&G, &g, M, N, p.nb);
            dist_matrix_init(&T, &g, M, N, p.nb);
            dist_fill(gt, 2, 0, p.d, test_inputs, train_inputs, NULL,
                      analytic_tile, ntk, &analytic_cost, budget,
                      "infinite width, test x train", &st);
            report("NNGP test", &G, 0);
            report("NTK test (inf)", &T, 0);
            save(&p, &G, "nngp_test.bin");
            save(&p, &T, "ntk_inf_test.bin");
            dist_matrix_free(&G);
            dist_matrix_free(&T);
        }
    }
    if (p.out) dist_say("ntk_mpi: matrices written to %s (column-major doubles)\n", p.out);

    dist_grid_exit(&g);
    tn_ntk_free(ntk);
    tn_net_free(net);
    tn_ctx_free(ctx);
    MPI_Finalize();
    return 0;
}
