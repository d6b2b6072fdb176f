/*
 * trainer.h -- training modes over the one engine (docs/math.md §4).
 *
 * The trained model is
 *   g(theta; x) = alpha (m(theta; x) - [centered] m(theta0; x)),
 * with m = f at order 0 and m = f_k(theta0 + (theta - theta0)) at order k.
 * The loss is L(g, y) / alpha^2, so the cotangent into reverse mode is
 * dL/dg / alpha.  theta0 is the net's parameters when the trainer was made
 * or TN_TRAIN_ORDER was last set, moved to theta every K steps when
 * TN_TRAIN_REEXPAND_EVERY is K > 0.
 */
#ifndef TNI_TRAINER_H
#define TNI_TRAINER_H

#include "../core/batch_key.h"
#include "../taylor/expansion.h"
#include "optim.h"

struct tn_trainer {
    uint32_t magic;
    tn_net *net;
    tn_ctx *ctx;
    size_t P, O, d;
    /* settings */
    int loss;
    tni_opt opt;                    /* kind, rates; opt.t counts updates since reset */
    unsigned explicit_set;          /* bit per setting the user chose (see trainer.c), */
#define TNI_TRAIN_EXPLICIT_ALL 7u   /* ... all of them */
    double clip;
    int order;
    uint64_t reexpand_every;
    double alpha;
    int centered;
    uint64_t steps;
    /* The model: theta0, Delta, the engine tape and the cached base live in
     * the expansion (its order is the trainer's when >= 1; at order 0 its
     * tape runs plain forwards and its theta0 serves centering). */
    tni_expansion ex;
    /* parameter-sized arrays */
    double *grad, *theta_new;
    double *state[2], *state_new[2];
    /* row-sized arrays, for up to cap_rows rows */
    size_t cap_rows;
    double *g, *cot, *f0;
    tni_batch_key f0_key;           /* the batch f0 = f(theta0; x) belongs to (order 0) */
    /* Statistics of the last step (tn_trainer_stat), bit s of stat_valid set
     * when stat[s] holds a value. */
    double stat[6];
    unsigned stat_valid;
    /* Neural Taylor diagnostics (diagnostics.c), off unless asked for. */
    int diagnostics;
    struct tni_diagnostics *diag;
    /* tn_trainer_set_gradient_hook: called by every step between the
     * gradient and the update (NULL: none). */
    tn_gradient_fn hook;
    void *hook_user;
    /* The Taylor record and the regret's settings (record.h). */
    struct tni_record *record;      /* NULL unless TN_TRAIN_RECORD_TAYLOR is 1 */
    size_t regret_memory;           /* bytes the record may hold */
    double regret_tol;
    uint64_t regret_max_iter;
    int regret_solver;              /* TN_REGRET_* */
};

tn_status tni_trainer_new(tn_net *net, tn_trainer **out);
void tni_trainer_delete(tn_trainer *tr);
tn_status tni_trainer_set(tn_trainer *tr, tn_train_param p, double value);
tn_status tni_trainer_get(const tn_trainer *tr, tn_train_param p, double *value);
tn_status tni_trainer_step(tn_trainer *tr, const double *x, const double *y, size_t n,
                           double *loss);
tn_status tni_trainer_loss(tn_trainer *tr, const double *x, const double *y, size_t n,
                           double *loss);
tn_status tni_trainer_predict(tn_trainer *tr, const double *x, size_t n, double *y);
void tni_trainer_set_hook(tn_trainer *tr, tn_gradient_fn fn, void *user);

/* --- diagnostics.c: the neural Taylor approximation (docs/math.md §7) --- */
/* The network's first-order Taylor prediction of the loss after the update
 * theta -> theta_new on the step's batch, the loss reached there, and the
 * ReLU pattern changes on the probe batch; written into tr->stat (not
 * committed: the step may still be dropped). */
tn_status tni_diagnostics_step(tn_trainer *tr, const double *x, const double *y, size_t n,
                               const double *theta_new, double stat[6], unsigned *valid);
/* Makes the probe pattern of this step the reference for the next one. */
void tni_diagnostics_commit(tn_trainer *tr);
tn_status tni_diagnostics_set_probe(tn_trainer *tr, const double *x, size_t n);
void tni_diagnostics_free(tn_trainer *tr);
/* Checkpoints: the probe batch and its reference patterns, when one is set. */
struct tni_writer;
int tni_diagnostics_has_probe(const tn_trainer *tr);
void tni_diagnostics_encode(struct tni_writer *w, const tn_trainer *tr);
/* Sets the probe of a section written by tni_diagnostics_encode (the net's
 * theta must be the one of the checkpoint); TN_E_FORMAT naming who and
 * where when it does not fit the network. */
tn_status tni_diagnostics_decode(tn_trainer *tr, const unsigned char *data, size_t len,
                                 const char *who, const char *where);
/* Checkpoints: the exploration (configurations seen, units switched), when
 * a probe is set; encoding needs a scratch of the given bytes.  Decoding
 * follows tni_diagnostics_decode's probe. */
size_t tni_diagnostics_exploration_bytes(const tn_trainer *tr);
void tni_diagnostics_encode_exploration(struct tni_writer *w, const tn_trainer *tr,
                                        uint64_t *keys);
tn_status tni_diagnostics_decode_exploration(tn_trainer *tr, const unsigned char *data, size_t len,
                                             const char *who, const char *where);
/* TN_STAT_CONFIGS_VISITED or TN_STAT_UNITS_EVER_SWITCHED after the last
 * step: read when its pattern statistics are valid. */
double tni_diagnostics_exploration(const tn_trainer *tr, tn_train_stat s);

#endif
