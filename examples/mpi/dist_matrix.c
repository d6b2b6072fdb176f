/* dist_matrix.c -- the BLACS grid, block-cyclic matrices, kernel fills and
 * MPI-IO (dist.h): the programs that use ScaLAPACK. */
#include "dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dist_grid_init(dist_grid *g)
{
    int me, np;
    Cblacs_pinfo(&me, &np);
    int nprow = (int)sqrt((double)np);
    while (np % nprow != 0) nprow--;
    g->nprow = nprow;
    g->npcol = np / nprow;
    Cblacs_get(-1, 0, &g->ctxt);
    Cblacs_gridinit(&g->ctxt, "Row", g->nprow, g->npcol);
    Cblacs_gridinfo(g->ctxt, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
}

void dist_grid_exit(dist_grid *g)
{
    Cblacs_gridexit(g->ctxt);
}

void dist_matrix_init(dist_matrix *A, const dist_grid *g, int m, int n, int nb)
{
    const int zero = 0;
    memset(A, 0, sizeof *A);
    A->g = g;
    A->m = m;
    A->n = n;
    A->nb = nb;
    A->locr = numroc_(&m, &nb, &g->myrow, &zero, &g->nprow);
    A->locc = numroc_(&n, &nb, &g->mycol, &zero, &g->npcol);
    A->lld = A->locr > 1 ? A->locr : 1;
    int info;
    descinit_(A->desc, &m, &n, &nb, &nb, &zero, &zero, &g->ctxt, &A->lld, &info);
    if (info != 0) dist_die("descinit: argument %d is invalid", -info);
    const size_t count = (size_t)A->lld * (size_t)(A->locc > 0 ? A->locc : 1);
    A->a = calloc(count, sizeof(double));
    if (A->a == NULL)
        dist_die("out of memory for the local %d x %d part of a %d x %d matrix (%.2f GB)",
                 A->locr, A->locc, m, n, (double)count * 8e-9);
}

void dist_matrix_free(dist_matrix *A)
{
    free(A->a);
    A->a = NULL;
}

int dist_global_row(const dist_matrix *A, int i)
{
    return (i / A->nb * A->g->nprow + A->g->myrow) * A->nb + i % A->nb;
}

int dist_global_col(const dist_matrix *A, int j)
{
    return (j / A->nb * A->g->npcol + A->g->mycol) * A->nb + j % A->nb;
}

void dist_matrix_copy(dist_matrix *B, const dist_matrix *A)
{
    memcpy(B->a, A->a, (size_t)A->lld * (size_t)A->locc * sizeof(double));
}

void dist_matrix_write(const dist_matrix *A, const char *path)
{
    const dist_grid *g = A->g;
    const int gsizes[2] = {A->m, A->n};
    const int distribs[2] = {MPI_DISTRIBUTE_CYCLIC, MPI_DISTRIBUTE_CYCLIC};
    const int dargs[2] = {A->nb, A->nb}, psizes[2] = {g->nprow, g->npcol};
    /* darray numbers the processes of the grid in row-major order, as the
     * BLACS "Row" grid does; MPI_ORDER_FORTRAN: column-major, like the
     * local storage (whose leading dimension is the local row count). */
    MPI_Datatype view;
    MPI_Type_create_darray(g->nprow * g->npcol, g->myrow * g->npcol + g->mycol, 2, gsizes,
                           distribs, dargs, psizes, MPI_ORDER_FORTRAN, MPI_DOUBLE, &view);
    MPI_Type_commit(&view);
    const double local = (double)A->locr * (double)A->locc;
    if (local > 2147483647.0)
        dist_die("%s: the local part (%.0f doubles) exceeds one MPI-IO call", path, local);
    MPI_File fh;
    int rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_WRONLY,
                           MPI_INFO_NULL, &fh);
    if (rc != MPI_SUCCESS) dist_die("%s: cannot open for writing", path);
    MPI_File_set_size(fh, 0);
    MPI_File_set_view(fh, 0, MPI_DOUBLE, view, "native", MPI_INFO_NULL);
    rc = MPI_File_write_all(fh, A->a, A->locr > 0 ? (int)local : 0, MPI_DOUBLE,
                            MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) dist_die("%s: write failed", path);
    MPI_File_close(&fh);
    MPI_Type_free(&view);
}

/* Local inputs of a matrix dimension: contiguous runs of nb global indices
 * fetched with one call each. */
static double *local_inputs(const dist_matrix *A, int rows, size_t d, dist_inputs_fn fn,
                            void *user)
{
    const int count = rows ? A->locr : A->locc;
    double *x = malloc((size_t)(count > 0 ? count : 1) * d * sizeof(double));
    if (x == NULL) dist_die("out of memory for %d inputs", count);
    for (int i = 0; i < count; i += A->nb) {
        const int len = count - i < A->nb ? count - i : A->nb;
        const int first = rows ? dist_global_row(A, i) : dist_global_col(A, i);
        fn(user, (size_t)first, (size_t)len, x + (size_t)i * d);
    }
    return x;
}

/* Local columns a panel of local rows [i0, i0 + h) needs: all, or for the
 * lower triangle those whose block is at most the last row's block (a
 * prefix, since local blocks come in increasing global order). */
static int panel_cols(const dist_matrix *A, int lower, int i0, int h)
{
    if (!lower) return A->locc;
    const int I = dist_global_row(A, i0 + h - 1) / A->nb;
    const int mycol = A->g->mycol, npcol = A->g->npcol;
    if (I < mycol) return 0;
    const long blocks = (I - mycol) / npcol + 1;
    return blocks * A->nb < A->locc ? (int)(blocks * A->nb) : A->locc;
}

void dist_fill(dist_matrix *const *M, int count, int lower, size_t d, dist_inputs_fn rows,
               dist_inputs_fn cols, void *inputs_user, dist_tile_fn tile, void *tile_user,
               const dist_tile_cost *cost, double budget_bytes, const char *what,
               dist_fill_stats *stats)
{
    const dist_matrix *A = M[0];
    const int nb = A->nb, locr = A->locr, locc = A->locc;
    const double t0 = MPI_Wtime(), c0 = dist_cpu_seconds();
    memset(stats, 0, sizeof *stats);
    double *xr = local_inputs(A, 1, d, rows, inputs_user);
    double *xc = local_inputs(A, 0, d, cols, inputs_user);

    /* Panel height h: whole blocks, the tiles of a panel within the budget,
     * and otherwise the h of least predicted cost.  Each tile call computes
     * its rows' and columns' features afresh (cost->feature per example)
     * and then every entry (cost->entry each): tall panels recompute the
     * column features less often but compute more entries above the
     * diagonal, only to drop them. */
    const double F = cost->feature, G = cost->entry;
    const double per_row = 8.0 * count * (locc > 0 ? locc : 1);
    long hmax = (long)(budget_bytes / per_row) / nb * nb;
    if (hmax < nb) hmax = nb;
    long h = hmax;
    if (lower && G > 0) {
        double best = INFINITY;
        for (long c = nb; c <= hmax && c < locr + nb; c += nb) {
            double cost = 0;
            for (int i0 = 0; i0 < locr; i0 += (int)c) {
                const int hh = locr - i0 < c ? locr - i0 : (int)c;
                const int nc = panel_cols(A, lower, i0, hh);
                if (nc > 0) cost += F * (hh + nc) + G * (double)hh * nc;
            }
            if (cost < best) best = cost, h = c;
        }
    }
    if (h > locr) h = locr > 0 ? locr : 1;
    stats->panel_rows = (double)h;
    stats->feature_entries = G > 0 ? F / G : 0;

    double total = 0;
    for (int i0 = 0; i0 < locr; i0 += (int)h) {
        const int hh = locr - i0 < h ? locr - i0 : (int)h;
        total += (double)hh * panel_cols(A, lower, i0, hh);
    }
    double *tmp[8];
    if (count > 8) dist_die("dist_fill: at most 8 kernels at once");
    for (int k = 0; k < count; k++) {
        tmp[k] = malloc((size_t)h * (size_t)(locc > 0 ? locc : 1) * sizeof(double));
        if (tmp[k] == NULL) dist_die("out of memory for a kernel panel of %ld x %d", h, locc);
    }
    dist_progress prog;
    dist_progress_start(&prog, what);
    for (int i0 = 0; i0 < locr; i0 += (int)h) {
        const int hh = locr - i0 < h ? locr - i0 : (int)h;
        const int nc = panel_cols(A, lower, i0, hh);
        if (nc == 0) continue;
        tile(tile_user, xr + (size_t)i0 * d, (size_t)hh, xc, (size_t)nc, tmp);
        stats->calls += 1;
        stats->entries += (double)hh * nc;
        for (int j = 0; j < nc; j++) {
            const int J = dist_global_col(A, j) / nb;
            for (int i = 0; i < hh; i++) {
                if (lower && J > dist_global_row(A, i0 + i) / nb) continue;
                for (int k = 0; k < count; k++)
                    M[k]->a[(size_t)(i0 + i) + (size_t)j * (size_t)A->lld] =
                        tmp[k][(size_t)i * (size_t)nc + (size_t)j];
                stats->kept += 1;
            }
        }
        /* The last report waits for every rank, below. */
        dist_progress_update(&prog, total > 0 ? fmin(stats->entries / total, 0.999) : 0.999);
    }
    for (int k = 0; k < count; k++) free(tmp[k]);
    free(xr);
    free(xc);
    stats->seconds = MPI_Wtime() - t0;
    stats->cpu = dist_cpu_seconds() - c0;
    /* Rank 0's clock stands for the phase: wait for the slowest rank. */
    MPI_Barrier(MPI_COMM_WORLD);
    dist_progress_update(&prog, 1.0);
}

void dist_report_balance(const char *what, const dist_fill_stats *s)
{
    const double mine[6] = {s->kept, s->entries, s->seconds, s->cpu, s->panel_rows,
                            s->feature_entries};
    double lo[6], hi[6], sum[6];
    MPI_Reduce(mine, lo, 6, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
    MPI_Reduce(mine, hi, 6, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(mine, sum, 6, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    dist_say("%s: entries stored per rank %.0f..%.0f (max/mean %.3f), computed %.0f "
             "(%.1f%% beyond the stored ones); per rank %.2f..%.2f s, CPU %.2f..%.2f s "
             "(all ranks %.2f CPU s); panels of %.0f..%.0f rows (one example's features "
             "cost as much as %.0f entries)\n",
             what, lo[0], hi[0], hi[0] / (sum[0] / dist_size), sum[1],
             sum[0] > 0 ? 100.0 * (sum[1] - sum[0]) / sum[0] : 0.0, lo[2], hi[2], lo[3], hi[3],
             sum[3], lo[4], hi[4], sum[5] / dist_size);
}

void dist_fill_rows(dist_matrix *A, dist_rows_fn fn, void *user)
{
    if (A->locc == 0 || A->locr == 0) return;
    const size_t n = (size_t)A->n;
    double *rows = malloc((size_t)A->nb * n * sizeof(double));
    if (rows == NULL) dist_die("out of memory for %d rows of %zu", A->nb, n);
    for (int i0 = 0; i0 < A->locr; i0 += A->nb) {
        const int len = A->locr - i0 < A->nb ? A->locr - i0 : A->nb;
        fn(user, (size_t)dist_global_row(A, i0), (size_t)len, rows);
        for (int j = 0; j < A->locc; j++) {
            const size_t c = (size_t)dist_global_col(A, j);
            for (int i = 0; i < len; i++)
                A->a[(size_t)(i0 + i) + (size_t)j * A->lld] = rows[(size_t)i * n + c];
        }
    }
    free(rows);
}

void dist_add_diagonal(dist_matrix *A, double s)
{
    for (int j = 0; j < A->locc; j++) {
        const int gj = dist_global_col(A, j);
        for (int i = 0; i < A->locr; i++)
            if (dist_global_row(A, i) == gj) A->a[(size_t)i + (size_t)j * A->lld] += s;
    }
}

double dist_sum_sq_diff(const dist_matrix *A, const dist_matrix *B)
{
    double mine = 0, all;
    for (int j = 0; j < A->locc; j++)
        for (int i = 0; i < A->locr; i++) {
            const size_t k = (size_t)i + (size_t)j * A->lld;
            mine += (A->a[k] - B->a[k]) * (A->a[k] - B->a[k]);
        }
    MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return all;
}
