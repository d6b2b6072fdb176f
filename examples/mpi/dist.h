/*
 * dist.h -- the MPI side of the distributed programs: ranks, failing
 * loudly, progress from rank 0, a BLACS process grid, ScaLAPACK
 * block-cyclic matrices, filling one with kernel tiles, and writing one to a
 * file with MPI-IO.  The library (taylornet.h) knows nothing of MPI; this
 * file is what a program adds around it.
 *
 * Failure policy: a rank that meets an error it cannot share with the
 * others (a library call that fails on its own data, a file it cannot
 * write) calls dist_die, which prints the message with the rank and calls
 * MPI_Abort: the job ends, never hangs in a collective the failed rank will
 * not enter.  Errors every rank sees alike (a bad option, a ScaLAPACK info,
 * a training step that fails on every rank after the gradient all-reduce)
 * are reported by rank 0 and end the job with MPI_Finalize and status 1.
 */
#ifndef MPI_DIST_H
#define MPI_DIST_H

#include <mpi.h>
#include <stddef.h>

#include <taylornet.h>

extern int dist_rank, dist_size;

void dist_init(int *argc, char ***argv);
/* Prints "rank R: message" to stderr and aborts the whole job (exit 1). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
_Noreturn void dist_die(const char *fmt, ...);
/* Rank 0 prints the message to stderr; every rank finalizes and exits 1.
 * Only for errors that every rank detects alike. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
_Noreturn void dist_fail_all(const char *fmt, ...);
/* This process's CPU seconds so far (all its threads).  On a shared
 * machine wall-clock time says how long a phase took; CPU time says how
 * much work it was, whatever else ran beside it. */
double dist_cpu_seconds(void);
/* Rank 0 prints to stdout (and flushes: mpirun forwards it line by line). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void dist_say(const char *fmt, ...);

/* A library call on this rank: on failure, dist_die with its message. */
#define DIST_CK(ctx, call)                                                                  \
    do {                                                                                    \
        tn_status st_ = (call);                                                             \
        if (st_ != TN_OK)                                                                   \
            dist_die("%s failed (%s): %s", #call, tn_status_string(st_), tn_ctx_errmsg(ctx)); \
    } while (0)

/* Progress of one phase, printed by rank 0 at most every few seconds. */
typedef struct dist_progress {
    const char *what;
    double start, last;
} dist_progress;
void dist_progress_start(dist_progress *p, const char *what);
void dist_progress_update(dist_progress *p, double fraction);

/* A BLACS process grid over MPI_COMM_WORLD, as square as the rank count
 * allows (nprow <= npcol). */
typedef struct dist_grid {
    int ctxt, nprow, npcol, myrow, mycol;
} dist_grid;
void dist_grid_init(dist_grid *g);
void dist_grid_exit(dist_grid *g);

/* An m x n matrix distributed block-cyclically in nb x nb blocks over the
 * grid (ScaLAPACK's layout, descriptor desc): rank (myrow, mycol) holds the
 * blocks (I, J) with I mod nprow = myrow, J mod npcol = mycol, column-major
 * in a (lld x locc).  Made zero. */
typedef struct dist_matrix {
    int m, n, nb;
    int locr, locc, lld;
    int desc[9];
    double *a;
    const dist_grid *g;
} dist_matrix;
void dist_matrix_init(dist_matrix *A, const dist_grid *g, int m, int n, int nb);
void dist_matrix_free(dist_matrix *A);
/* The global row (column) of local row (column) i. */
int dist_global_row(const dist_matrix *A, int i);
int dist_global_col(const dist_matrix *A, int j);
/* B = A (same shape and grid). */
void dist_matrix_copy(dist_matrix *B, const dist_matrix *A);
/* The global matrix into path, column-major (ScaLAPACK's order), m * n
 * doubles, every rank writing its own blocks (MPI-IO with a darray view):
 * nothing is gathered. */
void dist_matrix_write(const dist_matrix *A, const char *path);

/* A from a function of its rows: fn(user, first, count, out) writes global
 * rows first .. first + count - 1, row-major count x n. */
typedef void (*dist_rows_fn)(void *user, size_t first, size_t count, double *out);
void dist_fill_rows(dist_matrix *A, dist_rows_fn fn, void *user);
/* A += s I. */
void dist_add_diagonal(dist_matrix *A, double s);
/* The sum over all entries of (A - B)^2 (same shape), over every rank. */
double dist_sum_sq_diff(const dist_matrix *A, const dist_matrix *B);

/* A kernel tile: out[k] (na x nb, row-major) = kernel k between the rows of
 * xa (na x d) and xb (nb x d).  Dies on failure. */
typedef void (*dist_tile_fn)(void *user, const double *xa, size_t na, const double *xb,
                             size_t nb, double *const *out);

/* What a fill computed on this rank. */
typedef struct dist_fill_stats {
    double entries;             /* kernel entries computed, kept or not */
    double kept;                /* of which stored */
    double calls;               /* tile calls */
    double seconds;             /* wall clock */
    double cpu;                 /* CPU seconds */
    double panel_rows;          /* the panel height chosen */
    double feature_entries;     /* one example's features cost as much as this
                                   many kernel entries */
} dist_fill_stats;

/* Fills the local blocks of count matrices of the same shape, K(x_row,
 * x_col), with the tile function.  rows(ctx, first, count, x) gives inputs
 * of the row set, cols(...) of the column set (the same function for a
 * symmetric kernel).  lower: x_col = x_row, and only the blocks on and
 * below the diagonal are computed (ScaLAPACK's uplo = 'L'); the others stay
 * 0.  Each rank computes exactly the blocks it stores (no communication):
 * its rows are cut into panels of whole blocks, each panel against the
 * prefix of this rank's columns that the lower triangle needs; the panel
 * height is the one of least predicted cost (features recomputed per panel
 * against entries computed above the diagonal and dropped), with a panel's
 * tiles within budget_bytes. */
typedef void (*dist_inputs_fn)(void *user, size_t first, size_t count, double *x);
/* What a tile costs (flops, or any unit both share): the features of one
 * example, and one entry once the features are there. */
typedef struct dist_tile_cost {
    double feature, entry;
} dist_tile_cost;
void dist_fill(dist_matrix *const *M, int count, int lower, size_t d, dist_inputs_fn rows,
               dist_inputs_fn cols, void *inputs_user, dist_tile_fn tile, void *tile_user,
               const dist_tile_cost *cost, double budget_bytes, const char *what,
               dist_fill_stats *stats);
/* Rank 0 prints the spread of the ranks' stats (load balance). */
void dist_report_balance(const char *what, const dist_fill_stats *s);

/* ---- ScaLAPACK and BLACS (libscalapack-openmpi: no C header ships) ----
 * The Fortran routines take the hidden lengths of their character
 * arguments last (gfortran's convention; omitting them is undefined). */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int icontxt, int what, int *val);
void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
            const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *w, double *z, const int *iz,
              const int *jz, const int *descz, double *work, const int *lwork, int *iwork,
              const int *liwork, int *info, size_t, size_t);
void pdpotrf_(const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, int *info, size_t);
void pdpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *ia,
              const int *ja, const int *desca, double *b, const int *ib, const int *jb,
              const int *descb, int *info, size_t);
void pdpocon_(const char *uplo, const int *n, const double *a, const int *ia, const int *ja,
              const int *desca, const double *anorm, double *rcond, double *work,
              const int *lwork, int *iwork, const int *liwork, int *info, size_t);
double pdlansy_(const char *norm, const char *uplo, const int *n, const double *a,
                const int *ia, const int *ja, const int *desca, double *work, size_t, size_t);
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja,
             const int *desca, const double *b, const int *ib, const int *jb, const int *descb,
             const double *beta, double *c, const int *ic, const int *jc, const int *descc,
             size_t, size_t);

#endif
