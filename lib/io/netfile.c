/* netfile.c -- saving and loading networks (netfile.h). */
#include "netfile.h"
#include "../net/net.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const unsigned char magic[8] = {0x89, 'T', 'N', 'N', 'E', 'T', 0x0d, 0x0a};

/* The graph: every node after the input, then the output (netfile.h). */
static void write_graph(tni_writer *w, const tn_net *net)
{
    tni_w_u64(w, net->nnodes - 1);
    for (size_t i = 1; i < net->nnodes; i++) {
        const tni_node *n = &net->nodes[i];
        tni_w_u32(w, (uint32_t)n->kind);
        tni_w_u32(w, (uint32_t)n->ninputs);
        for (size_t s = 0; s < n->ninputs; s++) tni_w_u64(w, n->input[s]);
        const size_t nattrs = tni_kind_of(n)->nattrs;
        tni_w_u32(w, (uint32_t)nattrs);
        for (size_t a = 0; a < nattrs; a++) tni_w_u64(w, n->attr[a]);
    }
    tni_w_u64(w, net->graph.output);
}

void tni_netfile_encode(tni_writer *w, const tn_net *net)
{
    const tni_shape *in = &net->nodes[0].shape;
    tni_w_crc_begin(w);
    tni_w_bytes(w, magic, sizeof magic);
    tni_w_u32(w, TNI_NETFILE_VERSION);
    tni_w_u32(w, (uint32_t)in->ndim);
    for (size_t i = 0; i < in->ndim; i++) tni_w_u64(w, in->dim[i]);
    tni_w_u32(w, (uint32_t)net->parameterization);
    tni_w_u32(w, (uint32_t)net->sigma_w_set);
    tni_w_f64(w, net->sigma_w);
    tni_w_f64(w, net->sigma_b);
    tni_w_f64(w, net->leaky_slope);
    write_graph(w, net);
    tni_w_u64(w, net->nparams);
    tni_w_f64s(w, net->theta, net->nparams);
    tni_w_u32(w, tni_w_crc_end(w));     /* the checksum bytes, not summed */
}

static void encode_net(tni_writer *w, const void *net)
{
    tni_netfile_encode(w, net);
}

tn_status tni_netfile_save(const tn_net *net, const char *path)
{
    return tni_file_save(net->ctx, "tn_net_save", path, encode_net, net);
}

/* ---- reading: the whole file, validated before anything is built ---- */

#define BAD(...) tni_fail(ctx, TN_E_FORMAT, "%s: '%s': " __VA_ARGS__)

/* Appends a node read from the file, checked by its kind exactly as when it
 * was built: anything it refuses (sizes that overflow included) is a
 * corrupt file, not a caller's mistake. */
static tn_status add_node(const char *fn, const char *path, tn_net *net, uint64_t i, tni_kind kind,
                          const size_t *inputs, const uint64_t *attrs, size_t nattrs)
{
    char who[96];
    snprintf(who, sizeof who, "%s: '%.40s': node %llu", fn, path, (unsigned long long)i);
    tni_node n;
    if (tni_net_node(net, kind, inputs, tni_kinds[kind]->ninputs, attrs, nattrs, who, &n) != TN_OK)
        return TN_E_FORMAT;
    return tni_net_push(net, &n, fn);
}

/* Version 1: a list of dense and activation layers (netfile.h). */
static tn_status read_layers_v1(tn_ctx *ctx, const char *fn, const char *path, tni_reader *r,
                                tn_net *net)
{
    const uint64_t nlayers = tni_r_uint(r, 8);
    if (r->short_read || nlayers == 0 || nlayers > r->left / 16)
        return BAD("invalid layer count %llu", fn, path, (unsigned long long)nlayers);
    for (uint64_t l = 1; l <= nlayers; l++) {
        const uint32_t kind = (uint32_t)tni_r_uint(r, 4), act = (uint32_t)tni_r_uint(r, 4);
        const uint64_t width = tni_r_uint(r, 8);
        const uint64_t attr = kind == TNI_KIND_DENSE ? width : act;
        if (r->short_read) return BAD("truncated layer list", fn, path);
        if (kind != TNI_KIND_DENSE && kind != TNI_KIND_ACTIVATION)
            return BAD("layer %llu is invalid (kind %u)", fn, path, (unsigned long long)l, kind);
        TNI_TRY(add_node(fn, path, net, l, (tni_kind)kind, &net->current, &attr, 1));
    }
    const tn_status st = tni_net_finish(net, fn);
    return st == TN_E_STATE ? TN_E_FORMAT : st;
}

/* Version 2: the nodes, then the output. */
static tn_status read_graph(tn_ctx *ctx, const char *fn, const char *path, tni_reader *r,
                            tn_net *net)
{
    const uint64_t count = tni_r_uint(r, 8);
    if (r->short_read || count == 0 || count > r->left / 12)
        return BAD("invalid node count %llu", fn, path, (unsigned long long)count);
    for (uint64_t i = 1; i <= count; i++) {
        const uint32_t kind = (uint32_t)tni_r_uint(r, 4), ninputs = (uint32_t)tni_r_uint(r, 4);
        if (r->short_read) return BAD("truncated node list", fn, path);
        if (kind == TNI_KIND_INPUT || kind >= TNI_KIND_COUNT || ninputs != tni_kinds[kind]->ninputs)
            return BAD("node %llu is invalid (kind %u, %u inputs)", fn, path, (unsigned long long)i,
                       kind, ninputs);
        size_t inputs[TNI_MAX_INPUTS];
        for (uint32_t s = 0; s < ninputs; s++) {
            const uint64_t id = tni_r_uint(r, 8);
            if (!r->short_read && id >= i)
                return BAD("node %llu reads node %llu, not an earlier one", fn, path,
                           (unsigned long long)i, (unsigned long long)id);
            inputs[s] = (size_t)id;
        }
        const uint32_t nattrs = (uint32_t)tni_r_uint(r, 4);
        if (!r->short_read && nattrs != tni_kinds[kind]->nattrs)
            return BAD("node %llu has %u attributes, not %zu", fn, path, (unsigned long long)i, nattrs,
                       tni_kinds[kind]->nattrs);
        uint64_t attrs[TNI_MAX_ATTRS];
        for (uint32_t a = 0; a < nattrs && a < TNI_MAX_ATTRS; a++) attrs[a] = tni_r_uint(r, 8);
        if (r->short_read) return BAD("truncated node list", fn, path);
        TNI_TRY(add_node(fn, path, net, i, (tni_kind)kind, inputs, attrs, nattrs));
    }
    const uint64_t output = tni_r_uint(r, 8);
    if (r->short_read || output != count)
        return BAD("the output node %llu is not the last node", fn, path, (unsigned long long)output);
    const tn_status st = tni_net_finish(net, fn);
    return st == TN_E_STATE ? TN_E_FORMAT : st;
}
#undef BAD

tn_status tni_netfile_parse(tn_ctx *ctx, const char *fn, const char *path,
                            const unsigned char *data, size_t len, tn_net **out)
{
#define BAD(...) tni_fail(ctx, TN_E_FORMAT, "%s: '%s': " __VA_ARGS__)
    if (len < sizeof magic + 4 || memcmp(data, magic, sizeof magic) != 0)
        return BAD("not a taylornet network file", fn, path);
    tni_reader r = {data + sizeof magic, len - sizeof magic, 0};
    const uint32_t version = (uint32_t)tni_r_uint(&r, 4);
    if (version > TNI_NETFILE_VERSION)
        return tni_fail(ctx, TN_E_VERSION,
                        "%s: '%s' has network format version %u; this library reads up to %u",
                        fn, path, version, TNI_NETFILE_VERSION);
    if (version == 0) return BAD("format version 0 is not valid", fn, path);
    if (len < sizeof magic + 8) return BAD("truncated", fn, path);
    if (!tni_crc_trailer_ok(data, len))
        return BAD("checksum mismatch (truncated or corrupted)", fn, path);
    r.left -= 4;   /* the checksum is not a field */

    size_t shape[3];
    const uint32_t ndim = (uint32_t)tni_r_uint(&r, 4);
    if (ndim != 1 && ndim != 3) return BAD("input ndim %u is not 1 or 3", fn, path, ndim);
    for (uint32_t i = 0; i < ndim; i++) {
        shape[i] = (size_t)tni_r_uint(&r, 8);
        if (shape[i] == 0) return BAD("input dimension %u is 0", fn, path, i);
    }
    const uint32_t param = (uint32_t)tni_r_uint(&r, 4), sw_set = (uint32_t)tni_r_uint(&r, 4);
    const double sw = tni_r_f64(&r), sb = tni_r_f64(&r), slope = tni_r_f64(&r);
    if (r.short_read) return BAD("truncated header", fn, path);
    if (param > 1 || sw_set > 1 || !(isfinite(sw) && sw > 0) || !(isfinite(sb) && sb >= 0) ||
        !(isfinite(slope) && slope >= 0))
        return BAD("invalid network settings", fn, path);
    size_t size = 1;
    for (uint32_t i = 0; i < ndim; i++)
        if (tni_mul_overflow(size, shape[i], &size) || size > SIZE_MAX / (8 * sizeof(double)))
            return BAD("the input shape's size overflows", fn, path);
    tn_net *net = NULL;
    tn_status st = tni_net_new(ctx, shape, ndim, &net);
    if (st != TN_OK) return st;
    net->parameterization = (int)param;
    net->sigma_w_set = (int)sw_set;
    net->sigma_w = sw;
    net->sigma_b = sb;
    net->leaky_slope = slope;
    st = version == 1 ? read_layers_v1(ctx, fn, path, &r, net) : read_graph(ctx, fn, path, &r, net);
    const uint64_t nparams = st == TN_OK ? tni_r_uint(&r, 8) : 0;
    if (st == TN_OK && (r.short_read || nparams != net->nparams || nparams == 0 ||
                        r.left != 8 * net->nparams))
        st = BAD("parameter count does not match the layers", fn, path);
    if (st == TN_OK) {
        net->theta = tni_alloc(ctx, net->nparams, sizeof(double));
        if (net->theta == NULL) st = tni_fail(ctx, TN_E_NOMEM, "%s: out of memory", fn);
    }
    if (st == TN_OK) {
        tni_r_f64s(&r, net->theta, net->nparams);
        if (tni_net_check_params(net, net->theta, fn) != TN_OK)
            st = BAD("a parameter, or a parameter times its layer's scale, is not finite", fn,
                     path);
    }
    if (st != TN_OK) {
        tni_net_delete(net);
        return st;
    }
    net->initialized = 1;
    *out = net;
    return TN_OK;
#undef BAD
}

tn_status tni_netfile_load(tn_ctx *ctx, const char *path, tn_net **out)
{
    unsigned char *data = NULL;
    size_t len = 0;
    tn_status st = tni_file_read(ctx, "tn_net_load", path, &data, &len);
    if (st != TN_OK) return st;
    st = tni_netfile_parse(ctx, "tn_net_load", path, data, len, out);
    tni_free(data);
    return st;
}
