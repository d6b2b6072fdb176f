/*
 * side_by_side.h -- the machinery of compare and the sweeps: train several
 * models of one network side by side, from ONE initialization and on the
 * SAME batches, and measure how far each ends up from full training.
 *
 *   models     cmp_model: full training, the linearized model, the order-k
 *              Taylor model, the re-linearized model (every K steps)
 *   runs       cmp_run_models: trains a list of models, each on its own
 *              copy of the initial parameters, with the same optimizer and
 *              the same shuffled batches, `jobs` models at a time (one
 *              thread and one tn_ctx each: the library's threading rule);
 *              records curves every `record_every` steps; shows progress
 *   metrics    per model: final training loss, test accuracy, function-space
 *              and parameter distances, ReLU pattern change (the library's
 *              neural Taylor diagnostics), seconds per step
 *   flags      cmp_options: the flags compare and the sweeps share
 *
 * What they write (the table, the CSV files, the plots) is report.h.
 *
 * Everything is deterministic: a model's numbers depend on the seeds and the
 * BLAS thread count, not on how many models run at once or in what order
 * (each runs in its own context; test_compare checks it).
 */
#ifndef TN_EXAMPLES_SIDE_BY_SIDE_H
#define TN_EXAMPLES_SIDE_BY_SIDE_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "data.h"
#include "nets.h"
#include "taylornet.h"

/*---------------------------------------------------------------------
 * Models
 *-------------------------------------------------------------------*/

typedef enum cmp_mode {
    CMP_FULL = 0,           /* the network itself: trainer order 0 */
    CMP_LINEARIZED = 1,     /* order 1 around the initialization */
    CMP_TAYLORIZED = 2,     /* order k >= 2 around the initialization */
    CMP_RELINEARIZED = 3    /* order 1, re-expanded at theta every K steps */
} cmp_mode;

typedef struct cmp_model {
    cmp_mode mode;
    int order;              /* TN_TRAIN_ORDER: 0 full, 1 (re)linearized, k taylorized */
    uint64_t reexpand;      /* TN_TRAIN_REEXPAND_EVERY: 0 never */
    char label[32];         /* "full", "linearized", "taylor-k2", "relin-K10": no blanks,
                               it names the model in curves.csv and the plots */
} cmp_model;

/** A model of the given mode: order is read for CMP_TAYLORIZED (k >= 2),
 *  reexpand for CMP_RELINEARIZED (K >= 1); the others are implied. */
cmp_model cmp_model_make(cmp_mode mode, int order, uint64_t reexpand);
/** Appends to models[*n..cap) a model per entry of the list `text` of
 *  --flag: per Taylor order k for "orders" (1: the linearized model, k >= 2
 *  the order-k Taylor model), per period K for "reexpand" (the
 *  re-linearized model); "none" adds nothing.  Exits on a bad list. */
void cmp_add_models(const char *flag, const char *text, cmp_model *models, size_t *n,
                    size_t cap);
/** "full", "linearized", "taylorized", "relinearized": summary.csv's mode. */
const char *cmp_mode_name(cmp_mode mode);

/*---------------------------------------------------------------------
 * Runs
 *-------------------------------------------------------------------*/

typedef struct cmp_config {
    /* The training recipe, the same for every model. */
    size_t epochs, batch;
    int optimizer;          /* TN_OPT_* */
    int loss;               /* TN_LOSS_* */
    double lr;
    double momentum;        /* < 0: the library's default for the optimizer */
    double clip;            /* TN_TRAIN_CLIP_NORM; 0 off */
    double alpha;           /* TN_TRAIN_OUTPUT_SCALE (lazy training); 1 normally */
    int centered;           /* TN_TRAIN_CENTERED */
    uint64_t shuffle_seed;  /* the batches' order: identical for every model */
    ex_net_spec spec;       /* the network and its initialization seed */
    /* What is measured. */
    size_t record_every;    /* a curve point every this many steps (and at the last
                               step, always); 0: the last step only */
    size_t eval_n;          /* the curves' fs_distance, loss and accuracy are on the
                               first eval_n test examples (0: not computed) */
    size_t probe_n;         /* the ReLU probe batch: the first probe_n test examples
                               (0: no pattern statistics) */
    int diagnostics;        /* 1: TN_TRAIN_DIAGNOSTICS on at the recorded steps */
    /* How it runs. */
    int threads;            /* BLAS threads per model */
    int jobs;               /* models trained at once */
    int progress;           /* 1: a progress line on stdout */
    int notes;              /* 1: also a line per finished model (with progress on) */
    const char *title;      /* the progress line's prefix */
    /* Checkpoints (compare --checkpoint DIR, --resume DIR): each model's
     * trainer (tn_trainer_save, DIR/<label>.tnck) and what was measured of
     * it so far (DIR/<label>.state), written after every epoch; a resumed
     * model goes on from its last epoch, a finished one is not trained
     * again.  NULL: none. */
    const char *checkpoint_dir, *resume_dir;
} cmp_config;

/** compare's recipe: 5 epochs of batch 128, momentum SGD (0.9) at 0.01,
 *  softmax cross-entropy, alpha 1, uncentered, no clipping; the default
 *  MLP (ex_net_spec_default); record_every 0, eval_n 1000, probe_n 256,
 *  diagnostics on, 1 thread, 2 jobs, progress and notes on. */
void cmp_config_default(cmp_config *cfg);
/** Steps a run of cfg takes on n_train examples (every epoch ends with the
 *  shorter last batch, as ex_batcher makes them). */
size_t cmp_total_steps(const cmp_config *cfg, size_t n_train);
/** A record_every that gives about `points` curve points over total_steps
 *  (at least 1). */
size_t cmp_record_every_for(size_t total_steps, size_t points);

typedef struct cmp_point {
    size_t step;                /* steps taken */
    size_t epoch;               /* 1-based epoch of that step */
    double train_loss;          /* mean batch loss of the steps since the previous point,
                                   each taken before its update */
    double eval_loss;           /* the trained model on the eval subset, after the step */
    double eval_accuracy;
    double fs_distance;         /* |g - g_ref| / |g_ref| on the eval subset, g_ref the
                                   reference model at the same step; NaN without one */
    /* The library's neural Taylor diagnostics of this step (NaN when off),
     * for the NETWORK f at the model's parameters, whatever the model: */
    double batch_loss;          /* TN_STAT_LOSS: the trained model's loss on the step's
                                   batch, before the update */
    double taylor_predicted;    /* TN_STAT_TAYLOR_PREDICTED: f's first-order prediction of
                                   its loss on that batch after the update */
    double loss_reached;        /* TN_STAT_LOSS_REACHED: f's loss there after the update */
    double pattern_change_step; /* TN_STAT_PATTERN_CHANGE_STEP: probe units that switched
                                   since the previous recorded step */
    double pattern_change_init; /* TN_STAT_PATTERN_CHANGE_INIT: ... since initialization */
    double seconds;             /* wall time since this model started training */
} cmp_point;

typedef struct cmp_result {
    cmp_model model;
    int diverged;               /* a step failed with TN_E_NUMERIC: metrics are NaN */
    size_t diverged_step;       /* the step that failed (1-based) */
    char message[256];          /* the library's message for it */
    size_t steps;               /* steps taken */
    double train_loss;          /* the trained model's loss on the whole training set */
    double test_accuracy;
    double fs_distance;         /* |g - g_ref|_F / |g_ref|_F over all test outputs */
    double param_distance;      /* |theta - theta0| / |theta0| */
    double mask_change;         /* TN_STAT_PATTERN_CHANGE_INIT after the last step */
    double seconds_per_step;    /* mean over the steps without diagnostics (all steps if
                                   every one had them), while `jobs` models shared the
                                   machine */
    double seconds;             /* the model's whole run: steps, curves, final metrics */
    size_t n_points;
    cmp_point *points;
    double *theta;              /* the final parameters (P) */
    double *test_out;           /* test.n x O: the trained model on the test set */
    double *eval_out;           /* n_points x eval_n x O: on the eval subset per point */
} cmp_result;

typedef struct cmp_run {
    size_t n;                   /* models */
    cmp_result *results;
    size_t ref;                 /* index of the reference (the first CMP_FULL model),
                                   n if there is none */
    size_t P;
    double *theta0;             /* the common initialization */
    size_t total_steps;         /* planned steps per model */
    size_t eval_n, test_n, outputs;
    double seconds;             /* wall time of the whole run */
} cmp_run;

/** Trains models[0..n) as described at the top, on train, measuring on
 *  test, and fills *run (free with cmp_run_free).  Distances are against
 *  the first CMP_FULL model of the list.  A model whose step fails with
 *  TN_E_NUMERIC is marked diverged and the others go on; any other failure
 *  exits with the library's message. */
void cmp_run_models(const cmp_config *cfg, const ex_dataset *train, const ex_dataset *test,
                    const cmp_model *models, size_t n, cmp_run *run);
void cmp_run_free(cmp_run *run);

/** What width_sweep and lazy_sweep measure at each value they sweep: full
 *  training against the linearized model, from one initialization on the
 *  same batches. */
typedef struct cmp_pair {
    double fs_distance;             /* |f_lin - f_full| / |f_full| on the test set */
    double param_full, param_lin;   /* |theta - theta0| / |theta0| */
    double mask_full, mask_lin;     /* ReLU units of the probe switched */
    double accuracy_full, accuracy_lin, loss_full, loss_lin;
    double seconds;                 /* wall time of the pair */
    int diverged;                   /* one of them diverged: its numbers are NaN */
} cmp_pair;

/** Trains the full network and its linearization with cfg (the progress
 *  line titled `title`) and gives their numbers. */
cmp_pair cmp_run_pair(cmp_config *cfg, const ex_dataset *train, const ex_dataset *test,
                      const char *title);

/** The loss the trainer reports, computed from outputs g (n x O) of the
 *  trained model and targets y: MSE (1/2n) sum |g - y|^2 or softmax
 *  cross-entropy -(1/n) sum y . log softmax(g), over alpha^2. */
double cmp_loss(int loss, const double *g, const double *y, size_t n, size_t O, double alpha);

/*---------------------------------------------------------------------
 * Command line: the flags compare and the sweeps share
 *-------------------------------------------------------------------*/

typedef struct cmp_options {
    cmp_config cfg;             /* epochs, batch, lr, momentum, clip, threads, jobs, eval_n,
                                   probe_n are set by flags; the rest by cmp_options_setup */
    size_t n_train, n_test;     /* first N examples, 0: all */
    const char *arch;           /* "mlp", "cnn-thin", "wrn" (nets.h) */
    size_t width, depth;        /* 0: the architecture's defaults */
    uint64_t seed;              /* initialization; the batches' order derives from it */
    const char *param, *loss, *optimizer;
    const char *act;            /* hidden activation, ex_activation_from_name */
    const char *out;            /* output directory */
    const char *data_dir;
    int synthetic, quiet;
    const char *checkpoint, *resume;    /* directories, or NULL */
} cmp_options;

/** cmp_config_default and compare's data and network: the first 10,000
 *  training images, all test images, an MLP of two hidden ReLU layers of 512,
 *  standard parameterization, seed 1, momentum SGD, softmax cross-entropy;
 *  the output directory `out`. */
void cmp_options_default(cmp_options *o, const char *out);
/** Parses the shared flags (pointing into o, whose values are the defaults
 *  --help shows) and the program's own, extra[0..n_extra).  Exits on a bad
 *  flag. */
void cmp_options_parse(cmp_options *o, int argc, char **argv, const ex_arg *extra,
                       size_t n_extra, const char *about);
/** Checks the flags, creates the output directory, loads the data (prints
 *  its "data:" line) and completes o->cfg: the network's spec, the
 *  optimizer and loss, the batches' seed, eval_n and probe_n cut to the
 *  test set, the progress line (off with --quiet) titled `title`.  Exits
 *  on any error. */
void cmp_options_setup(cmp_options *o, const char *title, ex_data *data);
/** The "net:" and "training:" lines, for n_models models of total_steps
 *  steps each; `widths` (NULL: o->width) is what the net line says the
 *  width is, for a sweep over it. */
void cmp_print_setup(const cmp_options *o, size_t total_steps, size_t n_models,
                     const char *widths);

#endif
