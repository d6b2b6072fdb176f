/* fuzz_netfile.c -- the network file parser (lib/io/netfile.c) on arbitrary
 * bytes, as tn_net_load sees them once read.
 *
 * Invariants beyond the sanitizers': a valid status with a message on
 * failure; on success, a network that evaluates (a finite input gives a
 * finite output or a refusal, never an infinity with TN_OK), and whose
 * encoding parses again to the same encoding (version 2 inputs: the very
 * bytes given).  Memory in use returns to what it was. */
#include "fuzz_common.h"

#include "io/netfile.h"
#include "net/net.h"

static void check_round_trip(tn_ctx *ctx, tn_net *net, const uint8_t *data, size_t size)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) abort();
    tni_writer *w = calloc(1, sizeof *w);
    if (w == NULL) abort();
    w->f = f;
    tni_netfile_encode(w, net);
    tni_w_flush(w);
    fclose(f);
    FUZZ_REQUIRE(!w->failed, "encoding failed");
    free(w);
    /* Version 2 is what the encoder writes: a file it accepted comes back as
     * it was.  (Version 1 files come back as version 2.) */
    const uint32_t version = size >= 12 ? (uint32_t)data[8] | (uint32_t)data[9] << 8 |
                                              (uint32_t)data[10] << 16 | (uint32_t)data[11] << 24
                                        : 0;
    if (version == TNI_NETFILE_VERSION)
        FUZZ_REQUIRE(len == size && memcmp(buf, data, size) == 0,
                     "re-encoding changed the file (%zu -> %zu bytes)", size, len);
    tn_net *again = NULL;
    FUZZ_REQUIRE(FUZZ_CALL(ctx, tni_netfile_parse(ctx, "fuzz", "re-encoded",
                                                  (const unsigned char *)buf, len, &again)) ==
                     TN_OK,
                 "the re-encoded network does not parse: %s", tn_ctx_errmsg(ctx));
    tn_net_free(again);
    free(buf);
}

static void evaluate(tn_ctx *ctx, tn_net *net)
{
    const size_t d = tn_net_input_size(net), O = tn_net_output_dim(net);
    /* Loaders bound sizes by the file's length, not by memory: evaluate only
     * what is small enough to run quickly. */
    if (d > 4096 || O > 4096 || tn_net_num_params(net) > (1u << 20)) return;
    double *x = calloc(2 * d, sizeof(double)), *y = calloc(2 * O, sizeof(double));
    if (x == NULL || y == NULL) abort();
    for (size_t i = 0; i < 2 * d; i++) x[i] = (double)(i % 7) / 3.0 - 1.0;
    if (FUZZ_CALL(ctx, tn_net_forward(net, x, 2, y)) == TN_OK) fuzz_require_finite(y, 2 * O, "y");
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_ctx *ctx = fuzz_ctx();
    size_t before = 0;
    tn_ctx_get_memory(ctx, &before, NULL);
    tn_net *net = NULL;
    const tn_status st = FUZZ_CALL(ctx, tni_netfile_parse(ctx, "fuzz", "input", data, size, &net));
    if (st == TN_OK) {
        FUZZ_REQUIRE(net != NULL, "TN_OK without a network");
        evaluate(ctx, net);
        check_round_trip(ctx, net, data, size);
        tn_net_free(net);
    } else {
        FUZZ_REQUIRE(net == NULL, "a network handed out on failure");
        FUZZ_REQUIRE(st == TN_E_FORMAT || st == TN_E_VERSION || st == TN_E_NOMEM,
                     "a parse failed with %s: %s", tn_status_string(st), tn_ctx_errmsg(ctx));
    }
    size_t after = 0;
    tn_ctx_get_memory(ctx, &after, NULL);
    FUZZ_REQUIRE(after == before, "%zu bytes still in use", after - before);
    return 0;
}
