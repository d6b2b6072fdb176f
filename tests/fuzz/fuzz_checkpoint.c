/* fuzz_checkpoint.c -- the checkpoint parser (lib/train/checkpoint.c) on
 * arbitrary bytes, as tn_trainer_load sees them once read.
 *
 * Invariants beyond the sanitizers': a valid status with a message on
 * failure and nothing handed out; on success, a trainer that steps (a
 * finite step keeps finite parameters; a refused one leaves them
 * bit-identical) and whose encoding is a fixed point: parsed and encoded
 * again, it gives the same bytes.  Memory in use returns to what it was. */
#include "fuzz_common.h"

#include "io/binfile.h"
#include "train/checkpoint.h"

/* The checkpoint of tr in a malloc'd buffer. */
static char *encode(const tn_trainer *tr, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    tni_writer *w = calloc(1, sizeof *w);
    if (f == NULL || w == NULL) abort();
    uint64_t *scratch = malloc(tni_checkpoint_scratch_bytes(tr) + 1);
    if (scratch == NULL) abort();
    w->f = f;
    tni_checkpoint_encode(w, tr, scratch);
    free(scratch);
    tni_w_flush(w);
    FUZZ_REQUIRE(!w->failed, "encoding failed");
    fclose(f);
    free(w);
    return buf;
}

static void step(tn_ctx *ctx, tn_net *net, tn_trainer *tr)
{
    const size_t d = tn_net_input_size(net), O = tn_net_output_dim(net), P = tn_net_num_params(net);
    if (d > 4096 || O > 4096 || P > (1u << 18)) return;
    double *x = calloc(2 * d, sizeof(double)), *y = calloc(2 * O, sizeof(double)),
           *before = malloc(P * sizeof(double)), *after = malloc(P * sizeof(double));
    if (!x || !y || !before || !after) abort();
    for (size_t i = 0; i < 2 * d; i++) x[i] = (double)(i % 5) / 2.0 - 1.0;
    for (size_t i = 0; i < 2 * O; i++) y[i] = i % O == 0;
    if (tn_net_get_params(net, before, P) != TN_OK) abort();
    double loss = 0;
    const tn_status st = FUZZ_CALL(ctx, tn_trainer_step(tr, x, y, 2, &loss));
    if (tn_net_get_params(net, after, P) != TN_OK) abort();
    if (st == TN_OK) {
        fuzz_require_finite(after, P, "theta");
        FUZZ_REQUIRE(isfinite(loss), "loss %g", loss);
    } else {
        FUZZ_REQUIRE(memcmp(before, after, P * sizeof(double)) == 0,
                     "a refused step (%s) changed theta", tn_status_string(st));
    }
    free(x), free(y), free(before), free(after);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_ctx *ctx = fuzz_ctx();
    size_t before = 0;
    tn_ctx_get_memory(ctx, &before, NULL);
    tn_net *net = NULL;
    tn_trainer *tr = NULL;
    const tn_status st =
        FUZZ_CALL(ctx, tni_checkpoint_parse(ctx, "input", data, size, &net, &tr));
    if (st == TN_OK) {
        FUZZ_REQUIRE(net != NULL && tr != NULL, "TN_OK without a network and a trainer");
        size_t len1, len2;
        char *one = encode(tr, &len1);
        tn_net *net2 = NULL;
        tn_trainer *tr2 = NULL;
        FUZZ_REQUIRE(FUZZ_CALL(ctx, tni_checkpoint_parse(ctx, "re-encoded",
                                                         (const unsigned char *)one, len1, &net2,
                                                         &tr2)) == TN_OK,
                     "the re-encoded checkpoint does not parse: %s", tn_ctx_errmsg(ctx));
        char *two = encode(tr2, &len2);
        FUZZ_REQUIRE(len1 == len2 && memcmp(one, two, len1) == 0,
                     "encoding is not a fixed point (%zu, %zu bytes)", len1, len2);
        free(one), free(two);
        tn_trainer_free(tr2);
        tn_net_free(net2);
        step(ctx, net, tr);
        tn_trainer_free(tr);
        tn_net_free(net);
    } else {
        FUZZ_REQUIRE(net == NULL && tr == NULL, "handles handed out on failure");
        FUZZ_REQUIRE(st == TN_E_FORMAT || st == TN_E_VERSION || st == TN_E_NOMEM,
                     "a parse failed with %s: %s", tn_status_string(st), tn_ctx_errmsg(ctx));
    }
    size_t after = 0;
    tn_ctx_get_memory(ctx, &after, NULL);
    FUZZ_REQUIRE(after == before, "%zu bytes still in use", after - before);
    return 0;
}
