/*
 * common.h -- what the example programs share, so each example reads as its
 * training recipe and nothing else.
 *
 *   errors      EX_CHECK(ctx, tn_call(...)) and ex_die: print and exit (an
 *               example may exit on error; the library never does)
 *   timing      ex_now: monotonic wall-clock seconds
 *   randomness  ex_rng: a small seeded generator for shuffles and data
 *   data        ex_load_data: Fashion-MNIST (or a synthetic stand-in) as
 *               double matrices with one-hot targets and integer labels
 *   batches     ex_shuffle, ex_gather, and ex_batcher over both
 *   training    ex_train_epoch: one pass of tn_trainer_step over a batcher
 *   evaluation  ex_trainer_accuracy, ex_net_accuracy, ex_count_correct
 *   networks    ex_build_mlp: dense/activation stack, initialized
 *   arguments   ex_parse_args: "--name value" flags from a table
 *   contexts    ex_ctx_create: a context with a BLAS thread count
 *   sessions    ex_train_config / ex_train_session: the flags, setup and
 *               per-epoch report every training example shares, so an
 *               example only sets its trainer mode
 *   outputs     ex_parse_list, ex_mkdir_p, ex_join_path, ex_loglog_slope,
 *               ex_gnuplot: what the programs that write CSV files and
 *               plots (compare and the sweeps) share
 *
 * Matrices follow the library's conventions: row-major double, one example
 * per row.
 */
#ifndef TN_EXAMPLES_COMMON_H
#define TN_EXAMPLES_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "taylornet.h"

/* Lets the compiler check ex_die's format string against its arguments. */
#if defined(__GNUC__)
#  define EX_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#  define EX_PRINTF(fmt_index, first_arg)
#endif

/*---------------------------------------------------------------------
 * Errors and memory
 *-------------------------------------------------------------------*/

/** Prints "error: <message>" to stderr and exits with EXIT_FAILURE. */
_Noreturn void ex_die(const char *fmt, ...) EX_PRINTF(1, 2);

/** When st is not TN_OK: prints where, what was called, the status and
 *  tn_ctx_errmsg(ctx), then exits.  Use through EX_CHECK. */
void ex_check_status(const tn_ctx *ctx, tn_status st, const char *call, const char *file,
                     int line);
#define EX_CHECK(ctx, call) ex_check_status((ctx), (call), #call, __FILE__, __LINE__)

/** malloc of count * size bytes, overflow-checked; exits when out of memory.
 *  A zero size still returns a unique pointer.  Free with free(). */
void *ex_xmalloc(size_t count, size_t size);
/** The same, zero-filled. */
void *ex_xcalloc(size_t count, size_t size);

/*---------------------------------------------------------------------
 * Timing
 *-------------------------------------------------------------------*/

/** Seconds on CLOCK_MONOTONIC (differences are wall-clock time, immune to
 *  clock adjustments). */
double ex_now(void);

/*---------------------------------------------------------------------
 * Random numbers (xoshiro256** seeded through splitmix64): the same seed
 * gives the same shuffles and synthetic data on every platform.
 *-------------------------------------------------------------------*/

typedef struct ex_rng {
    uint64_t s[4];
} ex_rng;

void ex_rng_seed(ex_rng *rng, uint64_t seed);
uint64_t ex_rng_next(ex_rng *rng);
/** Uniform in [0, 1), 53 random bits. */
double ex_rng_uniform(ex_rng *rng);
/** Standard normal. */
double ex_rng_normal(ex_rng *rng);
/** Uniform in [0, n), without modulo bias; n must be > 0. */
size_t ex_rng_below(ex_rng *rng, size_t n);

/*---------------------------------------------------------------------
 * Data
 *-------------------------------------------------------------------*/

#define EX_NUM_CLASSES 10
/** Where Debian's dataset-fashion-mnist puts the files. */
#define EX_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/** Environment variable that overrides EX_FASHION_MNIST_DIR. */
#define EX_FASHION_MNIST_ENV "TN_FASHION_MNIST_DIR"

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
 *  not a reason to fall back.  Prints data->source to stdout.  Returns 0, or
 *  -1 after printing the reason to stderr (then *data is empty).  Like every
 *  allocation here, running out of memory exits (ex_xmalloc). */
int ex_load_data(const ex_data_options *opt, ex_data *data);
/** Frees both sets and empties *data.  NULL is fine. */
void ex_data_free(ex_data *data);

/*---------------------------------------------------------------------
 * Minibatches
 *-------------------------------------------------------------------*/

/** Fisher-Yates shuffle of idx[0..n) in place. */
void ex_shuffle(size_t *idx, size_t n, ex_rng *rng);
/** Copies rows idx[0..count) of ds into x (count x d) and, when y is not
 *  NULL, y (count x classes). */
void ex_gather(const ex_dataset *ds, const size_t *idx, size_t count, double *x, double *y);

/** Walks a data set in shuffled minibatches, a fresh permutation per epoch. */
typedef struct ex_batcher {
    const ex_dataset *ds;
    size_t batch;       /* rows per batch; the last batch of an epoch may be shorter */
    size_t *order;      /* the current epoch's permutation */
    size_t pos;         /* next position in order */
    double *x;          /* the current batch, batch x d */
    double *y;          /* batch x classes */
    ex_rng rng;
} ex_batcher;

/** batch must be > 0; a batch larger than the data set is cut to its size.
 *  ds must outlive the batcher. */
void ex_batcher_init(ex_batcher *b, const ex_dataset *ds, size_t batch, uint64_t seed);
/** Fills b->x and b->y with the next batch and returns its number of rows;
 *  returns 0 once at the end of each epoch (the next call starts a new,
 *  reshuffled epoch). */
size_t ex_batcher_next(ex_batcher *b);
/** Abandons the rest of the current epoch; the next batch starts a new one. */
void ex_batcher_restart(ex_batcher *b);
void ex_batcher_free(ex_batcher *b);

/*---------------------------------------------------------------------
 * Training and evaluation
 *-------------------------------------------------------------------*/

/** One epoch: tn_trainer_step on every batch of b.  *mean_loss (may be NULL)
 *  receives the per-example mean of the losses the steps report (each taken
 *  before its update).  On a failing step returns its status at once (the
 *  message is in the network's context) and restarts the batcher. */
tn_status ex_train_epoch(tn_trainer *tr, ex_batcher *b, double *mean_loss);

/** Cosine annealing by epoch: base at epoch 0, falling to near 0 for the
 *  last of `epochs` epochs (0-based), so the final epochs average out the
 *  minibatch noise instead of bouncing around the optimum. */
double ex_cosine_lr(double base, size_t epoch, size_t epochs);

/** Default rows per evaluation call. */
#define EX_EVAL_CHUNK 1000

/** Index of the largest of v[0..n); NaN never wins; SIZE_MAX if every entry
 *  is NaN (so such an output never counts as correct). */
size_t ex_argmax(const double *v, size_t n);
/** How many rows of out (n x width) have their argmax at labels[i]. */
size_t ex_count_correct(const double *out, size_t n, size_t width, const int *labels);
/** ||a - b||_F / ||b||_F over n entries (||a - b||_F when b is all zero):
 *  how the examples compare two computations of the same outputs. */
double ex_rel_diff(const double *a, const double *b, size_t n);
/** Fraction of ds classified correctly by tn_trainer_predict (the trained
 *  model, whatever its order), chunk rows per call (0: EX_EVAL_CHUNK).  The
 *  trainer's network must have ds->classes outputs (a trainer cannot be
 *  asked its width; ex_net_accuracy checks it).  A failing call's status is
 *  returned (message in the network's context) and *acc is unchanged. */
tn_status ex_trainer_accuracy(tn_trainer *tr, const ex_dataset *ds, size_t chunk, double *acc);
/** The same through tn_net_forward: the network at its current theta. */
tn_status ex_net_accuracy(tn_net *net, const ex_dataset *ds, size_t chunk, double *acc);

/*---------------------------------------------------------------------
 * Networks
 *-------------------------------------------------------------------*/

typedef struct ex_mlp_spec {
    size_t input;           /* input features */
    size_t width;           /* units per hidden layer */
    size_t hidden_layers;   /* dense+activation pairs before the output layer */
    size_t outputs;
    tn_activation act;
    int parameterization;   /* TN_PARAM_NTK or TN_PARAM_STANDARD */
    double sigma_w;         /* <= 0: the library's default */
    double sigma_b;         /* < 0: the library's default */
    uint64_t seed;          /* for tn_net_init */
} ex_mlp_spec;

/** 784 -> 512 -> 512 -> 10, ReLU, standard parameterization, library
 *  default sigmas, seed 1. */
void ex_mlp_spec_default(ex_mlp_spec *spec);
/** Creates and initializes the MLP of spec in ctx.  On failure *out is NULL,
 *  nothing leaks and the message is in ctx. */
tn_status ex_build_mlp(tn_ctx *ctx, const ex_mlp_spec *spec, tn_net **out);

/*---------------------------------------------------------------------
 * Command line
 *-------------------------------------------------------------------*/

typedef enum ex_arg_kind {
    EX_ARG_SIZE = 0,    /* size_t *, a whole number >= 0 */
    EX_ARG_INT = 1,     /* int * */
    EX_ARG_U64 = 2,     /* uint64_t * */
    EX_ARG_DOUBLE = 3,  /* double *, finite */
    EX_ARG_STRING = 4,  /* const char **, points into argv */
    EX_ARG_FLAG = 5     /* int *, set to 1; takes no value */
} ex_arg_kind;

typedef struct ex_arg {
    const char *name;   /* without the dashes: "epochs" matches --epochs */
    ex_arg_kind kind;
    void *value;        /* holds the default before parsing */
    const char *help;
} ex_arg;

/** Parses "--name value" and "--name=value" against args[0..nargs).  --help
 *  (or -h) prints `about`, each flag with its help and default, and exits 0;
 *  an unknown flag or a malformed value prints the problem and exits 2. */
void ex_parse_args(int argc, char **argv, const ex_arg *args, size_t nargs, const char *about);

/*---------------------------------------------------------------------
 * Contexts and names
 *-------------------------------------------------------------------*/

/** A new context using `threads` BLAS threads; exits on failure. */
tn_ctx *ex_ctx_create(int threads);

/** "sgd", "momentum", "nesterov", "rmsprop", "adam" -> TN_OPT_*; exits on
 *  anything else. */
int ex_optimizer_from_name(const char *name);
/** "standard", "ntk" -> TN_PARAM_*; exits on anything else. */
int ex_parameterization_from_name(const char *name);
/** "xent", "mse" -> TN_LOSS_*; exits on anything else. */
int ex_loss_from_name(const char *name);
/** "relu", "leaky_relu", "tanh", "sigmoid", "erf", "gelu", "softplus",
 *  "identity" -> TN_ACT_*; exits on anything else. */
tn_activation ex_activation_from_name(const char *name);

/*---------------------------------------------------------------------
 * Lists, files, fits and plots
 *-------------------------------------------------------------------*/

/** Parses a comma-separated list of finite numbers ("1,10,100") into
 *  out[0..cap) and returns how many there were.  Exits with a message
 *  naming --flag when the text is empty or malformed, holds more than cap
 *  values, or (whole != 0) holds a value that is not a whole number >= 0. */
size_t ex_parse_list(const char *flag, const char *text, double *out, size_t cap, int whole);

/** Creates dir and its missing parents (like mkdir -p; mode 0777 less the
 *  umask).  An existing directory is fine.  Returns 0, or -1 after printing
 *  the reason to stderr. */
int ex_mkdir_p(const char *dir);

/** buf = dir "/" name; exits when it does not fit in len bytes. */
void ex_join_path(char *buf, size_t len, const char *dir, const char *name);

/** The least-squares slope of log y against log x over the pairs with both
 *  finite and > 0 (others are skipped); NaN with fewer than two such pairs
 *  or when their x are all equal.  The exponent of a power law y ~ x^s. */
double ex_loglog_slope(const double *x, const double *y, size_t n);

/** Writes s into buf as the body of a gnuplot single-quoted string (every '
 *  doubled); exits when it does not fit. */
void ex_gnuplot_quote(char *buf, size_t len, const char *s);

/** Runs `gnuplot script` in directory dir (so the script names its data
 *  and images relative to dir, and still works when run again from there)
 *  when gnuplot is on the PATH, and waits for it.  Returns 0 when it
 *  succeeded, 1 when gnuplot is not installed (then it prints the command
 *  that draws the plots later), -1 when it ran and failed (its own messages
 *  are on stderr). */
int ex_gnuplot(const char *dir, const char *script);

/*---------------------------------------------------------------------
 * Training sessions: what full_training and the Taylor-model examples
 * share.  An example fills an ex_train_config with its defaults, adds its
 * own flags after the EX_TRAIN_NARGS shared ones, opens a session (data,
 * context, MLP, trainer with loss, optimizer and learning rate), sets its
 * trainer mode, and runs it:
 *
 *     ex_train_config cfg;
 *     ex_train_config_default(&cfg);
 *     ex_arg args[EX_TRAIN_NARGS + 1];
 *     ex_train_config_args(&cfg, args);
 *     args[EX_TRAIN_NARGS] = (ex_arg){"order", EX_ARG_INT, &order, "Taylor order"};
 *     ex_parse_args(argc, argv, args, EX_TRAIN_NARGS + 1, "...");
 *     ex_train_session s;
 *     ex_train_session_open(&cfg, &s);
 *     EX_CHECK(s.ctx, tn_trainer_set(s.tr, TN_TRAIN_ORDER, order));
 *     ex_train_session_run(&cfg, &s, "order-2 Taylor model");
 *     ex_train_session_close(&s);
 *-------------------------------------------------------------------*/

typedef struct ex_train_config {
    size_t epochs, batch;
    double lr;                  /* initial learning rate */
    const char *schedule;       /* "cosine" (ex_cosine_lr by epoch) or "constant" */
    const char *optimizer;      /* ex_optimizer_from_name */
    const char *loss;           /* ex_loss_from_name */
    size_t width, depth;        /* units per hidden layer, hidden layers (ReLU) */
    const char *param;          /* ex_parameterization_from_name */
    uint64_t seed;              /* initialization; the shuffles use a stream derived from it */
    int threads;                /* BLAS threads */
    size_t n_train, n_test;     /* first N examples of each set, 0: all */
    const char *data_dir;       /* NULL: the default of ex_data_options */
    int synthetic;              /* 1: the synthetic stand-in */
} ex_train_config;

/** full_training's defaults: 8 epochs of batch 128, Adam at 1e-3 with the
 *  cosine schedule, softmax cross-entropy, 784-256-256-10 ReLU in standard
 *  parameterization, seed 1, 1 BLAS thread, all the data. */
void ex_train_config_default(ex_train_config *cfg);

/** The number of flags ex_train_config_args fills. */
#define EX_TRAIN_NARGS 15
/** Fills args[0..EX_TRAIN_NARGS) with the shared flags, pointing into cfg
 *  (whose current values are the defaults --help shows). */
void ex_train_config_args(ex_train_config *cfg, ex_arg *args);

typedef struct ex_train_session {
    ex_data data;
    tn_ctx *ctx;
    tn_net *net;
    tn_trainer *tr;             /* loss, optimizer and cfg->lr set; order 0 */
    ex_mlp_spec spec;
} ex_train_session;

/** Checks cfg, loads the data, creates the context, the MLP and its trainer,
 *  and prints the "net:" line.  Exits on any failure. */
void ex_train_session_open(const ex_train_config *cfg, ex_train_session *s);
/** Prints the "training:" line, then `model` on a "model:" line (when not
 *  NULL), then trains cfg->epochs epochs, printing per epoch the learning
 *  rate, the mean training loss, the test accuracy (tn_trainer_predict: the
 *  trained model, whatever the trainer's mode) and the elapsed seconds, and
 *  finally the "final test accuracy" line.  Returns the final accuracy;
 *  exits on failure. */
double ex_train_session_run(const ex_train_config *cfg, ex_train_session *s, const char *model);
/** Frees everything the session holds.  The trainer goes first: it refers
 *  to the network, which refers to the context. */
void ex_train_session_close(ex_train_session *s);

/* Opens path for writing, or says why not on stderr and gives NULL. */
FILE *ex_open_out(const char *path);
/* Closes a file from ex_open_out: 0, or -1 with a message when anything
 * written was lost (a full disk shows up at the latest in fclose). */
int ex_close_out(FILE *f, const char *path);

#endif
