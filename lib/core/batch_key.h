/*
 * batch_key.h -- "is this the same batch as last time?", answered exactly.
 *
 * Work that depends only on the batch and a base point (the order-0 Taylor
 * coefficients, f(theta0; x)) is reused when the same batch comes back, as
 * in full-batch training.  The key keeps a copy of the last batch and
 * compares the new one byte for byte (O(n d), small beside the GEMMs it
 * saves), together with a version number the owner bumps whenever the base
 * point or anything else the cached work depends on changes.  A hash could
 * collide; a copy cannot, so the cache never serves stale results.
 */
#ifndef TNI_BATCH_KEY_H
#define TNI_BATCH_KEY_H

#include "core.h"

typedef struct tni_batch_key {
    double *x;          /* copy of the last batch (n x d values) */
    size_t len, cap;    /* values held, values allocated */
    size_t n;
    uint64_t version;
    int valid;
} tni_batch_key;

int tni_batch_key_matches(const tni_batch_key *k, const double *x, size_t n, size_t d,
                          uint64_t version);
/* Records the batch; if the copy cannot be allocated the key is just
 * cleared (the cache is an optimization, never a reason to fail). */
void tni_batch_key_record(tn_ctx *ctx, tni_batch_key *k, const double *x, size_t n, size_t d,
                          uint64_t version);
void tni_batch_key_clear(tni_batch_key *k);
void tni_batch_key_free(tni_batch_key *k);

#endif
