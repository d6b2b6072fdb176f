/* batch_key.c -- exact same-batch detection (batch_key.h). */
#include "batch_key.h"

#include <string.h>

int tni_batch_key_matches(const tni_batch_key *k, const double *x, size_t n, size_t d,
                          uint64_t version)
{
    return k->valid && k->n == n && k->version == version && k->len == n * d &&
           memcmp(k->x, x, n * d * sizeof(double)) == 0;
}

void tni_batch_key_record(tn_ctx *ctx, tni_batch_key *k, const double *x, size_t n, size_t d,
                          uint64_t version)
{
    const size_t len = n * d;
    k->valid = 0;
    if (len > k->cap) {
        double *c = tni_alloc(ctx, len, sizeof(double));
        if (c == NULL) return;
        tni_free(k->x);
        k->x = c;
        k->cap = len;
    }
    memcpy(k->x, x, len * sizeof(double));
    k->len = len;
    k->n = n;
    k->version = version;
    k->valid = 1;
}

void tni_batch_key_clear(tni_batch_key *k)
{
    k->valid = 0;
}

void tni_batch_key_free(tni_batch_key *k)
{
    tni_free(k->x);
    memset(k, 0, sizeof *k);
}
