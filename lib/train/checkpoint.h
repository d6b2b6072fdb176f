/*
 * checkpoint.h -- a trainer and its network saved whole, so that a run
 * resumed from the file continues bit for bit as the uninterrupted one.
 *
 * Layout (integers little-endian, doubles as their IEEE-754 bits; tagged
 * sections as in io/binfile.h, upper-case first letter = critical):
 *   8 bytes  magic 89 'T' 'N' 'C' 'K' 'P' 0D 0A
 *   u32      format version (TNI_CHECKPOINT_VERSION)
 *   sections, written in this order:
 *     NETW   a complete network file (io/netfile.h): architecture, settings
 *            and theta, read and written by the network file's own code
 *     SETS   u32 count, then count x (u32 tn_train_param, f64 value): every
 *            setting, as tn_trainer_get reads it
 *     STEP   u64 steps taken, u64 optimizer updates since its state was
 *            reset, u32 which optimizer-dependent defaults the user
 *            overrode, u32 which statistics of the last step are valid,
 *            6 x f64 those statistics
 *     THT0   u32 expansion order, u64 P, P x f64 theta0
 *     OPTS   u32 count, u64 P, count x P f64: the optimizer's state vectors
 *     PROB   only when a probe batch is set (train/diagnostics.c): u64 n,
 *            u64 units, n x d f64 probe, units bytes of ReLU pattern when the
 *            probe was set, units bytes after the last step
 *     expl   with PROB (ancillary: a reader without the exploration
 *            statistics loses nothing it knows): u64 units, u64 pairs,
 *            f64 TN_STAT_CONFIGS_VISITED and TN_STAT_UNITS_EVER_SWITCHED of
 *            the last step, pairs x u64 (example, configuration) hashes in
 *            ascending order, units bytes: switched at least once
 *     TAYR   only with TN_TRAIN_RECORD_TAYLOR 1 (train/record.c): u64 P,
 *            u64 steps T, u64 batches B; B x (u64 n, n x d f64 x, n x O f64
 *            y); T x (u64 batch index -- the step before's or the next --,
 *            u32 loss, f64 alpha, f64 l_t(theta_t), P x f64 theta_t, n x O
 *            f64 b_t); u32 solved, and when 1 the last solve: u64 steps,
 *            f64 regret, f64 optimum, u32 solver, f64 iterations, f64 Newton
 *            steps, f64 accuracy, P x f64 minimizer
 *   u32      CRC-32 (IEEE) of every byte before it
 * A reader refuses a newer version, or a critical section it does not know,
 * with TN_E_VERSION; anything truncated, inconsistent, duplicated, missing
 * or failing a checksum with TN_E_FORMAT; and skips ancillary sections it
 * does not know.
 *
 * Version 2 (the regret, issue 16) added the settings TN_TRAIN_RECORD_TAYLOR
 * and TN_TRAIN_REGRET_* to SETS and the sections expl and TAYR.  Version 1
 * files, which have none of them, still load (tests/data/checkpoint-v1.tnck):
 * the regret settings keep their defaults (no recording), and exploration
 * counts from the configurations of the probe at the resume, with no unit
 * switched yet.
 *
 * Not saved: caches (the base blocks of the expansion, f(theta0; x) of
 * centered training -- recomputed bit for bit on first use), a gradient
 * hook (a function pointer: set it again after loading), the context's
 * thread count.
 */
#ifndef TNI_CHECKPOINT_H
#define TNI_CHECKPOINT_H

#include "trainer.h"

#define TNI_CHECKPOINT_VERSION 2u

struct tni_writer;
tn_status tni_trainer_save(const tn_trainer *tr, const char *path);
/* The bytes of a checkpoint of tr into w (what tni_trainer_save writes),
 * through a scratch of tni_checkpoint_scratch_bytes(tr) bytes (NULL when
 * 0): encoding itself cannot fail. */
size_t tni_checkpoint_scratch_bytes(const tn_trainer *tr);
void tni_checkpoint_encode(struct tni_writer *w, const tn_trainer *tr, uint64_t *scratch);
tn_status tni_trainer_load(tn_ctx *ctx, const char *path, tn_net **net, tn_trainer **tr);
/* The same from the bytes of a file (the loader and the fuzzer use it);
 * `where` names them in messages. */
tn_status tni_checkpoint_parse(tn_ctx *ctx, const char *where, const unsigned char *data,
                               size_t len, tn_net **net, tn_trainer **tr);

#endif
