/*
 * data.h -- the data of the example programs: Fashion-MNIST (or a synthetic
 * stand-in) as double matrices, standardized, walked in shuffled
 * minibatches; and how outputs are scored against it.
 *
 *   loading     ex_load_data: the four IDX files (idx.h) or the synthetic
 *               set, scaled, with one-hot targets and integer labels
 *   batches     ex_batcher: shuffled minibatches, a new order each epoch
 *   scoring     ex_argmax, ex_count_correct, ex_rel_diff
 *
 * The shuffles and the synthetic set draw from the library's own generator
 * (lib/core/rng.c, the one behind tn_net_init, compiled into the examples'
 * support code): the examples keep no generator of their own.
 *
 * Matrices follow the library's conventions: row-major double, one example
 * per row.  Part of the examples, not of libtaylornet.
 */
#ifndef TN_EXAMPLES_DATA_H
#define TN_EXAMPLES_DATA_H

#include <stddef.h>
#include <stdint.h>

#define EX_NUM_CLASSES 10
/** Where Debian's dataset-fashion-mnist puts the files. */
#define EX_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/** Environment variable that overrides EX_FASHION_MNIST_DIR. */
#define EX_FASHION_MNIST_ENV "TN_FASHION_MNIST_DIR"
/** The help text of the examples' --data flag. */
#define EX_DATA_FLAG_HELP \
    "Fashion-MNIST directory (else $" EX_FASHION_MNIST_ENV " or " EX_FASHION_MNIST_DIR ")"

/*---------------------------------------------------------------------
 * Loading
 *-------------------------------------------------------------------*/

typedef struct ex_dataset {
    size_t n;           /* examples */
    size_t d;           /* features per example (784 for 28 x 28 images) */
    size_t classes;     /* EX_NUM_CLASSES */
    double *x;          /* n x d */
    double *y;          /* n x classes, one-hot */
    int *labels;        /* n, in [0, classes) */
} ex_dataset;

typedef enum ex_scaling {
    EX_SCALE_UNIT = 0,                  /* pixels / 255, in [0, 1] */
    EX_SCALE_STANDARDIZE = 1,           /* then minus the training mean, over the training
                                           std (one scalar each, over all pixels) */
    EX_SCALE_STANDARDIZE_FEATURES = 2   /* the same per feature; constant features (the
                                           image border) are only centered */
} ex_scaling;

typedef struct ex_data_options {
    const char *dir;            /* NULL: $TN_FASHION_MNIST_DIR if set, else EX_FASHION_MNIST_DIR */
    size_t max_train;           /* keep the first max_train training examples; 0: all */
    size_t max_test;            /* the same for the test set */
    ex_scaling scaling;
    int force_synthetic;        /* 1: skip the files, use the synthetic set */
    uint64_t synthetic_seed;
    size_t synthetic_train;     /* sizes of the synthetic set before the limits above */
    size_t synthetic_test;
} ex_data_options;

typedef struct ex_data {
    ex_dataset train;
    ex_dataset test;
    int synthetic;              /* 1 when the synthetic stand-in was used */
    double mean, std;           /* the scalar standardization applied (0 and 1 if none) */
    char source[512];           /* one line saying what was loaded, from where */
} ex_data;

/** Defaults: directory from the environment, all examples,
 *  EX_SCALE_STANDARDIZE, synthetic fallback of 6000 + 1000 examples, seed 1. */
void ex_data_options_default(ex_data_options *opt);

/** Loads the training and test sets (opt NULL: the defaults).  When any of the four IDX files is
 *  missing, says so on stderr and generates the synthetic stand-in instead: 10
 *  Gaussian clusters in 784 dimensions, seeded, learnable but not perfectly
 *  separable.  A file that exists but is unreadable or corrupt is an error,
 *  not a reason to fall back.  Prints "data: " and data->source to stdout.
 *  Returns 0, or -1 after printing the reason to stderr (then *data is
 *  empty).  Running out of memory exits (ex_xmalloc). */
int ex_load_data(const ex_data_options *opt, ex_data *data);
/** ex_load_data for the examples' data flags: --data (dir; NULL: the
 *  default), --train and --test (the first n_train and n_test examples; 0:
 *  all), --synthetic.  With fit_synthetic the synthetic set is made of
 *  n_train and n_test examples when they are given, rather than cut from
 *  its default sizes.  Exits when the data cannot be loaded. */
void ex_load_data_flags(const char *dir, size_t n_train, size_t n_test, int synthetic,
                        int fit_synthetic, ex_data *data);
/** Frees both sets and empties *data.  NULL is fine. */
void ex_data_free(ex_data *data);

/*---------------------------------------------------------------------
 * Minibatches
 *-------------------------------------------------------------------*/

/** Walks a data set in shuffled minibatches, a fresh permutation per epoch. */
typedef struct ex_batcher {
    const ex_dataset *ds;
    size_t batch;       /* rows per batch; the last batch of an epoch may be shorter */
    size_t *order;      /* the current epoch's permutation */
    size_t pos;         /* next position in order */
    double *x;          /* the current batch, batch x d */
    double *y;          /* batch x classes */
    struct tni_rng *rng;
} ex_batcher;

/** batch must be > 0; a batch larger than the data set is cut to its size.
 *  ds must outlive the batcher. */
void ex_batcher_init(ex_batcher *b, const ex_dataset *ds, size_t batch, uint64_t seed);
/** Fills b->x and b->y with the next batch and returns its number of rows;
 *  returns 0 once at the end of each epoch (the next call starts a new,
 *  reshuffled epoch). */
size_t ex_batcher_next(ex_batcher *b);
/** Moves on as if `steps` batches had been drawn with ex_batcher_next, and
 *  the epoch they end, if they end one, had ended: where a run resumed
 *  after `steps` steps takes its next batch. */
void ex_batcher_skip(ex_batcher *b, uint64_t steps);
/** Batches (steps) per epoch: the last batch of an epoch may be shorter. */
uint64_t ex_batcher_steps_per_epoch(const ex_batcher *b);
void ex_batcher_free(ex_batcher *b);

/** The seed of the batches' order for an initialization seed: a stream of
 *  its own, distinct from the initialization's. */
uint64_t ex_shuffle_seed(uint64_t init_seed);

/*---------------------------------------------------------------------
 * Scoring outputs
 *-------------------------------------------------------------------*/

/** Rows per evaluation call: bounds the output buffer (and the library's
 *  workspace) however large the data set. */
#define EX_EVAL_CHUNK 1000

/** Index of the largest of v[0..n); NaN never wins; SIZE_MAX if every entry
 *  is NaN (so such an output never counts as correct). */
size_t ex_argmax(const double *v, size_t n);
/** How many rows of out (n x width) have their argmax at labels[i]. */
size_t ex_count_correct(const double *out, size_t n, size_t width, const int *labels);
/** ||a - b||_F / ||b||_F over n entries (||a - b||_F when b is all zero):
 *  how the examples compare two computations of the same outputs. */
double ex_rel_diff(const double *a, const double *b, size_t n);

#endif
