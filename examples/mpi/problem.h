/*
 * problem.h -- what the distributed programs and their one-process check
 * share: the command line, the synthetic data set and the network.  No MPI
 * here, so mpi_check (one process, the library's ordinary calls) builds
 * exactly the problem the MPI programs solve.
 *
 * The data set is generated, not read: input i of a set depends only on
 * (seed, set, i), so every rank makes just the rows it needs, in any order,
 * and gets the bits every other rank and the one-process check would.
 */
#ifndef MPI_PROBLEM_H
#define MPI_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

#include <taylornet.h>

enum { PROBLEM_TRAIN = 0, PROBLEM_TEST = 1 };
enum { PROBLEM_MAX_LIST = 16 };

/* A training mode: the trainer settings that make it. */
typedef struct problem_mode {
    char name[32];
    int order;                  /* TN_TRAIN_ORDER */
    unsigned reexpand;          /* TN_TRAIN_REEXPAND_EVERY */
    double alpha;               /* TN_TRAIN_OUTPUT_SCALE; centered when != 1 */
} problem_mode;

typedef struct problem {
    /* data and network */
    size_t n, m;                /* train and test inputs */
    size_t d, width, depth, outputs;
    tn_activation act;
    uint64_t seed;
    int threads;                /* BLAS threads per rank */
    /* kernels */
    int nb;                     /* ScaLAPACK block size */
    int analytic;               /* also the infinite-width NNGP and NTK */
    double budget_mb;           /* workspace per rank for kernel panels */
    /* prediction */
    double times[PROBLEM_MAX_LIST];
    int ntimes;
    double eta, reg;
    /* training */
    size_t batch;
    int epochs;
    problem_mode modes[PROBLEM_MAX_LIST];
    int nmodes;
    int optimizer, loss;
    double lr;
    int uneven;                 /* shards of unequal sizes */
    int inject;                 /* fault injection: 0 none, 1 NaN target, 2 a failing call */
    int inject_rank, inject_step;
    /* output */
    const char *out;            /* directory for result files, or NULL */
    const char *in;             /* mpi_check: the distributed run's directory */
} problem;

/* Parses argv (the options of every program: see problem_usage) into p,
 * starting from the defaults.  Returns 0, or -1 with a message in err. */
int problem_parse(problem *p, int argc, char **argv, char *err, size_t errlen);
/* The option list, for a usage message. */
const char *problem_usage(void);

/* x (count x d) = inputs first .. first + count - 1 of a set. */
void problem_inputs(const problem *p, int set, size_t first, size_t count, double *x);
/* y (count x outputs) = the targets of the inputs x: a smooth function of
 * x for MSE, its one-hot argmax for cross-entropy. */
void problem_targets(const problem *p, const double *x, size_t count, double *y);
/* The network: d -> [width, act] x depth -> outputs, NTK parameterization,
 * initialized from the seed.  Returns the status; the message is in ctx. */
tn_status problem_net(tn_ctx *ctx, const problem *p, tn_net **out);
/* The trainer of net in mode md, with the optimizer, loss and learning
 * rate of p. */
tn_status problem_trainer(const problem *p, const problem_mode *md, tn_net *net,
                          tn_trainer **out);

/* The structured NTK's flop counts for this MLP (docs/ntk.md, traced
 * kernel): the features of one example (a forward pass and the sweep of O
 * cotangents) and one kernel entry once they are there. */
void problem_ntk_cost(const problem *p, double *feature_flops, double *entry_flops);

/* The rows of batch b (of n_batches) of one epoch: [*first, *first + *count). */
void problem_batch(const problem *p, size_t b, size_t *first, size_t *count);
/* The rows of rank r's shard (of R) of a batch of `count` rows, relative to
 * its first row: equal up to one row, or with --uneven proportional to
 * r + 1, so that weights matter. */
void problem_shard(const problem *p, size_t count, int r, int R, size_t *offset, size_t *rows);

/* path = dir/name; returns path. */
char *problem_path(char *path, size_t len, const char *dir, const char *name);

#endif
