/*
 * training.h -- what the four training examples (full, linearized,
 * re-linearized, Taylorized) share besides the recipe itself, so that each
 * reads as its recipe and their outputs compare line for line:
 *
 *   flags      ex_train_flags: the shared flags and full_training's defaults;
 *              an example adds its own flags (--order, --reexpand) to them
 *   data       ex_train_load_data: the data the flags ask for
 *   schedule   ex_train_lr: the learning rate of an epoch
 *   printing   ex_print_setup, ex_print_epoch, ex_print_final: the lines
 *              every training example prints; ex_print_expansion
 *
 * Part of the examples, not of libtaylornet.
 */
#ifndef TN_EXAMPLES_TRAINING_H
#define TN_EXAMPLES_TRAINING_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "data.h"
#include "taylornet.h"

typedef struct ex_train_flags {
    /* Set by the flags; the defaults are full_training's. */
    size_t epochs, batch;
    double lr;                  /* initial learning rate */
    const char *schedule;       /* "cosine" (ex_train_lr) or "constant" */
    const char *optimizer_name; /* "sgd" ... "adam" */
    const char *loss_name;      /* "xent" or "mse" */
    size_t width, depth;        /* units per hidden layer, hidden layers (ReLU) */
    const char *param_name;     /* "standard" or "ntk" */
    uint64_t seed;              /* initialization; the shuffles use ex_shuffle_seed(seed) */
    int threads;                /* BLAS threads */
    size_t n_train, n_test;     /* first N examples of each set, 0: all */
    const char *data_dir;       /* NULL: the default of ex_data_options */
    int synthetic;              /* 1: the synthetic stand-in */
    const char *checkpoint;     /* --checkpoint FILE: saved after every epoch, or NULL */
    const char *resume;         /* --resume FILE: the run to continue, or NULL */
    /* The library's values of the names, set by ex_train_flags_parse. */
    int optimizer;              /* TN_OPT_* */
    int loss;                   /* TN_LOSS_* */
    int param;                  /* TN_PARAM_* */
} ex_train_flags;

/** full_training's defaults: 8 epochs of batch 128, Adam at 1e-3 with the
 *  cosine schedule, softmax cross-entropy, 784-256-256-10 ReLU in standard
 *  parameterization, seed 1, 1 BLAS thread, all the data. */
void ex_train_flags_default(ex_train_flags *f);

/** Parses the shared flags (their current values are the defaults --help
 *  shows) and the example's own, extra[0..n_extra); checks them and sets
 *  the library's values of the names.  Exits on a bad flag. */
void ex_train_flags_parse(ex_train_flags *f, int argc, char **argv, const ex_arg *extra,
                          size_t n_extra, const char *about);

/** Loads the data the flags ask for (prints the "data:" line); exits when
 *  it cannot. */
void ex_train_load_data(const ex_train_flags *f, ex_data *data);

/** The learning rate of epoch `epoch` (0-based): f->lr throughout, or with
 *  the cosine schedule f->lr at epoch 0, falling to near 0 for the last
 *  epoch, so the final epochs average out the minibatch noise instead of
 *  bouncing around the optimum. */
double ex_train_lr(const ex_train_flags *f, size_t epoch);

/** The "net:" and "training:" lines, the "model:" line (printf's `model`
 *  and what follows it, when model is not NULL) and the header of the
 *  per-epoch table. */
void ex_print_setup(const ex_train_flags *f, const tn_net *net, const char *model, ...)
    EX_PRINTF(3, 4);
/** A row of the table: the epoch (0-based), its learning rate, the mean
 *  training loss, the test accuracy, the seconds since training started. */
void ex_print_epoch(size_t epoch, double lr, double train_loss, double test_accuracy,
                    double seconds);
/** The "final test accuracy" line. */
void ex_print_final(double test_accuracy, size_t epochs, double seconds);

/** taylorized_training's last lines: on the first n images of test, the
 *  norms of the k + 1 terms of an order-k expansion, its divergence
 *  indicator, and its sum f_k against the trainer's prediction pred and the
 *  network's outputs f (n x classes each): relative differences and
 *  accuracies. */
void ex_print_expansion(int k, const double *norms, double divergence, const double *fk,
                        const double *pred, const double *f, const ex_dataset *test, size_t n);

#endif
