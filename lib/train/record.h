/*
 * record.h -- what each step's Taylor loss needs (docs/math.md §7), kept
 * by the trainer with TN_TRAIN_RECORD_TAYLOR 1, and the regret computed
 * from it (regret.c).
 *
 * Step t's Taylor loss is of the network f at theta_t, with the step's
 * alpha and centering (docs/math.md §4):
 *   l_t(V) = L(b_t + alpha_t J_t (V - theta_t), y_t) / alpha_t^2,
 *   b_t = alpha_t (f(theta_t; x_t) - [centered] f(theta0_t; x_t)).
 * So a step keeps theta_t, b_t, alpha_t, its loss kind and l_t(theta_t),
 * and its batch (x_t, y_t), shared with the step before when that one had
 * the same batch (full-batch training stores it once).  J_t is n O x P, n O
 * times theta_t: it is never stored; the solvers recompute J_t v and
 * J_t^T u by the engine at theta_t on x_t.
 */
#ifndef TNI_RECORD_H
#define TNI_RECORD_H

#include "trainer.h"

/* Defaults of TN_TRAIN_REGRET_MEMORY and TN_TRAIN_REGRET_MAX_ITERATIONS. */
#define TNI_REGRET_MEMORY_DEFAULT ((size_t)1 << 30)
#define TNI_REGRET_MAX_ITER_DEFAULT 20000u

/* A batch, shared by consecutive steps that were taken on it. */
typedef struct tni_rec_batch {
    size_t n, refs;
    double *x, *y;                  /* n x d, n x O, in the same allocation */
} tni_rec_batch;

/* A recorded step (one allocation with its arrays). */
typedef struct tni_rec_step {
    tni_rec_batch *batch;
    int loss;                       /* TN_LOSS_* */
    double alpha;
    double value;                   /* l_t(theta_t) */
    double *theta;                  /* P */
    double *b;                      /* n x O */
} tni_rec_step;

/* How the last successful solve went (tn_trainer_regret_info). */
typedef struct tni_regret_result {
    size_t steps;
    double regret, optimum;
    int solver;
    double products, newton, accuracy;
} tni_regret_result;

typedef struct tni_record {
    tni_rec_step **steps;
    size_t count, cap;
    size_t bytes;                   /* the steps, their batches and the array of steps */
    tni_rec_step *pending;          /* prepared by the step in progress */
    tni_rec_batch *pending_batch;   /* a new batch of it, or NULL */
    tni_tape *tape;                 /* forwards of the recorder and the solvers */
    double *minimizer;              /* P: of the last solve (NULL before) */
    int solved;
    tni_regret_result last;
} tni_record;

/* Bytes a step of n rows costs, with its batch if new_batch (the documented
 * formula; 0 when it overflows). */
size_t tni_record_step_bytes(const tn_trainer *tr, size_t n, int new_batch);

/* Creates the record (TN_TRAIN_RECORD_TAYLOR 1) or drops it (0). */
tn_status tni_record_enable(tn_trainer *tr, int on);
void tni_record_free(tn_trainer *tr);

/* Prepares step t's entry from the step's batch, after the step's forward
 * and its checks, before anything is committed: b_t from the model's
 * outputs (order 0) or a forward of f at theta_t (order >= 1).  Fails with
 * TN_E_NOMEM past the budget or out of memory, changing nothing. */
tn_status tni_record_prepare(tn_trainer *tr, const double *x, const double *y, size_t n);
/* Appends the prepared entry (cannot fail). */
void tni_record_commit(tn_trainer *tr);

/* Checkpoints (checkpoint.c): the record and the last solve as a section,
 * and back into the (empty) record of a trainer being loaded, whose
 * settings are already applied; TN_E_FORMAT naming who and where when the
 * section is inconsistent. */
struct tni_writer;
void tni_record_encode(struct tni_writer *w, const tn_trainer *tr);
tn_status tni_record_decode(tn_trainer *tr, const unsigned char *data, size_t len,
                            const char *who, const char *where);

/* tn_trainer_regret and its companions (regret.c). */
tn_status tni_trainer_regret(tn_trainer *tr, double *regret, double *optimum);
tn_status tni_trainer_regret_info(const tn_trainer *tr, tn_regret_info what, double *value);
tn_status tni_trainer_regret_minimizer(const tn_trainer *tr, double *v, size_t len);

#endif
