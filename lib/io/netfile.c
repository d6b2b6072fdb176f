/* netfile.c -- saving and loading networks (netfile.h). */
#define _POSIX_C_SOURCE 200809L
#include "netfile.h"
#include "../net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char magic[8] = {0x89, 'T', 'N', 'N', 'E', 'T', 0x0d, 0x0a};

static const uint32_t crc_table[256] = {
#include "crc32_table.inc"
};

uint32_t tni_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

/* ---- writing: buffered, checksummed as it goes ---- */

typedef struct writer {
    FILE *f;
    uint32_t crc;
    int failed;
    size_t len;
    unsigned char buf[1 << 16];
} writer;

static void w_flush(writer *w)
{
    if (w->len && !w->failed) {
        w->crc = tni_crc32(w->crc, w->buf, w->len);
        if (fwrite(w->buf, 1, w->len, w->f) != w->len) w->failed = 1;
    }
    w->len = 0;
}

static void w_bytes(writer *w, const unsigned char *p, size_t n)
{
    while (n) {
        if (w->len == sizeof w->buf) w_flush(w);
        size_t k = sizeof w->buf - w->len;
        if (k > n) k = n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
}

static void w_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, 4);
}

static void w_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, 8);
}

static void w_f64(writer *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    w_u64(w, v);
}

/* The graph: every node after the input, then the output (netfile.h). */
static void write_graph(writer *w, const tn_net *net)
{
    w_u64(w, net->nnodes - 1);
    for (size_t i = 1; i < net->nnodes; i++) {
        const tni_node *n = &net->nodes[i];
        w_u32(w, (uint32_t)n->kind);
        w_u32(w, (uint32_t)n->ninputs);
        for (size_t s = 0; s < n->ninputs; s++) w_u64(w, n->input[s]);
        const size_t nattrs = tni_kind_of(n)->nattrs;
        w_u32(w, (uint32_t)nattrs);
        for (size_t a = 0; a < nattrs; a++) w_u64(w, n->attr[a]);
    }
    w_u64(w, net->graph.output);
}

static void write_net(writer *w, const tn_net *net)
{
    const tni_shape *in = &net->nodes[0].shape;
    w_bytes(w, magic, sizeof magic);
    w_u32(w, TNI_NETFILE_VERSION);
    w_u32(w, (uint32_t)in->ndim);
    for (size_t i = 0; i < in->ndim; i++) w_u64(w, in->dim[i]);
    w_u32(w, (uint32_t)net->parameterization);
    w_u32(w, (uint32_t)net->sigma_w_set);
    w_f64(w, net->sigma_w);
    w_f64(w, net->sigma_b);
    w_f64(w, net->leaky_slope);
    write_graph(w, net);
    w_u64(w, net->nparams);
    for (size_t i = 0; i < net->nparams; i++) w_f64(w, net->theta[i]);
    w_flush(w);
    w_u32(w, w->crc);
    const size_t tail = w->len;         /* the checksum bytes, not summed */
    if (!w->failed && fwrite(w->buf, 1, tail, w->f) != tail) w->failed = 1;
    w->len = 0;
}

/* Creates `path`.<pid>.<n> exclusively, with mode 0666 less the umask, the
 * mode a plain fopen would give (mkstemp's 0600 would survive the rename). */
static int create_temp(const char *path, char *tmp, size_t cap)
{
    for (unsigned n = 0; n < 1000; n++) {
        snprintf(tmp, cap, "%s.%ld.%u.tmp", path, (long)getpid(), n);
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

tn_status tni_netfile_save(const tn_net *net, const char *path)
{
    tn_ctx *ctx = net->ctx;
    const size_t cap = strlen(path) + 48;
    char *tmp = tni_alloc_or_fail(ctx, "tn_net_save", cap, 1);
    if (tmp == NULL) return TN_E_NOMEM;
    writer *w = tni_alloc(ctx, 1, sizeof *w);
    if (w == NULL) {
        tni_free(tmp);
        return tni_fail(ctx, TN_E_NOMEM, "tn_net_save: out of memory");
    }
    tn_status st = TN_OK;
    const int fd = create_temp(path, tmp, cap);
    if (fd < 0) {
        st = tni_fail(ctx, TN_E_IO, "tn_net_save: cannot create a temporary file beside '%s': %s",
                      path, strerror(errno));
        goto done;
    }
    w->f = fdopen(fd, "wb");
    if (w->f == NULL) {
        st = tni_fail(ctx, TN_E_IO, "tn_net_save: fdopen: %s", strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    write_net(w, net);
    /* Data on disk before the rename makes it visible under `path`. */
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) w->failed = 1;
    const int err = errno;
    if (fclose(w->f) != 0) w->failed = 1;
    if (w->failed) {
        unlink(tmp);
        st = tni_fail(ctx, TN_E_IO, "tn_net_save: writing '%s' failed: %s", tmp, strerror(err));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = tni_fail(ctx, TN_E_IO, "tn_net_save: cannot rename '%s' to '%s': %s", tmp, path,
                      strerror(errno));
        unlink(tmp);
    }
done:
    tni_free(w);
    tni_free(tmp);
    return st;
}

/* ---- reading: the whole file, validated before anything is built ---- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
    int short_read;
} reader;

static const unsigned char *r_take(reader *r, size_t n)
{
    if (r->short_read || n > r->left) {
        r->short_read = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t r_uint(reader *r, int bytes)
{
    const unsigned char *b = r_take(r, (size_t)bytes);
    uint64_t v = 0;
    if (b)
        for (int i = 0; i < bytes; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static double r_f64(reader *r)
{
    uint64_t v = r_uint(r, 8);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static tn_status read_file(tn_ctx *ctx, const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tni_fail(ctx, TN_E_IO, "tn_net_load: cannot open '%s': %s", path, strerror(errno));
    /* The size of the open file itself, and only of a regular one (seeking
     * to the end of a directory reports a meaningless size). */
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        fclose(f);
        return tni_fail(ctx, TN_E_IO, "tn_net_load: '%s' is not a regular file", path);
    }
    const long size = (long)sb.st_size;
    unsigned char *buf = tni_alloc(ctx, (size_t)size + 1, 1);
    if (buf == NULL) {
        fclose(f);
        return tni_fail(ctx, TN_E_NOMEM, "tn_net_load: out of memory for %ld bytes", size);
    }
    const size_t got = fread(buf, 1, (size_t)size, f);
    const int bad = ferror(f);
    fclose(f);
    if (bad || got != (size_t)size) {
        tni_free(buf);
        return tni_fail(ctx, TN_E_IO, "tn_net_load: reading '%s' failed", path);
    }
    *data = buf;
    *len = (size_t)size;
    return TN_OK;
}

#define BAD(...) tni_fail(ctx, TN_E_FORMAT, "tn_net_load: '%s': " __VA_ARGS__)

/* Appends a node read from the file, checked by its kind exactly as when it
 * was built: anything it refuses (sizes that overflow included) is a
 * corrupt file, not a caller's mistake. */
static tn_status add_node(const char *path, tn_net *net, uint64_t i, tni_kind kind,
                          const size_t *inputs, const uint64_t *attrs, size_t nattrs)
{
    char who[96];
    snprintf(who, sizeof who, "tn_net_load: '%.40s': node %llu", path, (unsigned long long)i);
    tni_node n;
    if (tni_net_node(net, kind, inputs, tni_kinds[kind]->ninputs, attrs, nattrs, who, &n) != TN_OK)
        return TN_E_FORMAT;
    return tni_net_push(net, &n, "tn_net_load");
}

/* Version 1: a list of dense and activation layers (netfile.h). */
static tn_status read_layers_v1(tn_ctx *ctx, const char *path, reader *r, tn_net *net)
{
    const uint64_t nlayers = r_uint(r, 8);
    if (r->short_read || nlayers == 0 || nlayers > r->left / 16)
        return BAD("invalid layer count %llu", path, (unsigned long long)nlayers);
    for (uint64_t l = 1; l <= nlayers; l++) {
        const uint32_t kind = (uint32_t)r_uint(r, 4), act = (uint32_t)r_uint(r, 4);
        const uint64_t width = r_uint(r, 8);
        const uint64_t attr = kind == TNI_KIND_DENSE ? width : act;
        if (r->short_read) return BAD("truncated layer list", path);
        if (kind != TNI_KIND_DENSE && kind != TNI_KIND_ACTIVATION)
            return BAD("layer %llu is invalid (kind %u)", path, (unsigned long long)l, kind);
        TNI_TRY(add_node(path, net, l, (tni_kind)kind, &net->current, &attr, 1));
    }
    const tn_status st = tni_net_finish(net, "tn_net_load");
    return st == TN_E_STATE ? TN_E_FORMAT : st;
}

/* Version 2: the nodes, then the output. */
static tn_status read_graph(tn_ctx *ctx, const char *path, reader *r, tn_net *net)
{
    const uint64_t count = r_uint(r, 8);
    if (r->short_read || count == 0 || count > r->left / 12)
        return BAD("invalid node count %llu", path, (unsigned long long)count);
    for (uint64_t i = 1; i <= count; i++) {
        const uint32_t kind = (uint32_t)r_uint(r, 4), ninputs = (uint32_t)r_uint(r, 4);
        if (r->short_read) return BAD("truncated node list", path);
        if (kind == TNI_KIND_INPUT || kind >= TNI_KIND_COUNT || ninputs != tni_kinds[kind]->ninputs)
            return BAD("node %llu is invalid (kind %u, %u inputs)", path, (unsigned long long)i,
                       kind, ninputs);
        size_t inputs[TNI_MAX_INPUTS];
        for (uint32_t s = 0; s < ninputs; s++) {
            const uint64_t id = r_uint(r, 8);
            if (!r->short_read && id >= i)
                return BAD("node %llu reads node %llu, not an earlier one", path,
                           (unsigned long long)i, (unsigned long long)id);
            inputs[s] = (size_t)id;
        }
        const uint32_t nattrs = (uint32_t)r_uint(r, 4);
        if (!r->short_read && nattrs != tni_kinds[kind]->nattrs)
            return BAD("node %llu has %u attributes, not %zu", path, (unsigned long long)i, nattrs,
                       tni_kinds[kind]->nattrs);
        uint64_t attrs[TNI_MAX_ATTRS];
        for (uint32_t a = 0; a < nattrs && a < TNI_MAX_ATTRS; a++) attrs[a] = r_uint(r, 8);
        if (r->short_read) return BAD("truncated node list", path);
        TNI_TRY(add_node(path, net, i, (tni_kind)kind, inputs, attrs, nattrs));
    }
    const uint64_t output = r_uint(r, 8);
    if (r->short_read || output != count)
        return BAD("the output node %llu is not the last node", path, (unsigned long long)output);
    const tn_status st = tni_net_finish(net, "tn_net_load");
    return st == TN_E_STATE ? TN_E_FORMAT : st;
}
#undef BAD

static tn_status parse(tn_ctx *ctx, const char *path, const unsigned char *data, size_t len,
                       tn_net **out)
{
#define BAD(...) tni_fail(ctx, TN_E_FORMAT, "tn_net_load: '%s': " __VA_ARGS__)
    if (len < sizeof magic + 4 || memcmp(data, magic, sizeof magic) != 0)
        return BAD("not a taylornet network file", path);
    reader r = {data + sizeof magic, len - sizeof magic, 0};
    const uint32_t version = (uint32_t)r_uint(&r, 4);
    if (version > TNI_NETFILE_VERSION)
        return tni_fail(ctx, TN_E_VERSION,
                        "tn_net_load: '%s' has format version %u; this library reads up to %u",
                        path, version, TNI_NETFILE_VERSION);
    if (version == 0) return BAD("format version 0 is not valid", path);
    if (len < sizeof magic + 8) return BAD("truncated", path);
    const uint32_t stored = (uint32_t)(data[len - 4] | data[len - 3] << 8 | data[len - 2] << 16 |
                                       (uint32_t)data[len - 1] << 24);
    if (tni_crc32(0, data, len - 4) != stored)
        return BAD("checksum mismatch (truncated or corrupted)", path);
    r.left -= 4;   /* the checksum is not a field */

    size_t shape[3];
    const uint32_t ndim = (uint32_t)r_uint(&r, 4);
    if (ndim != 1 && ndim != 3) return BAD("input ndim %u is not 1 or 3", path, ndim);
    for (uint32_t i = 0; i < ndim; i++) {
        shape[i] = (size_t)r_uint(&r, 8);
        if (shape[i] == 0) return BAD("input dimension %u is 0", path, i);
    }
    const uint32_t param = (uint32_t)r_uint(&r, 4), sw_set = (uint32_t)r_uint(&r, 4);
    const double sw = r_f64(&r), sb = r_f64(&r), slope = r_f64(&r);
    if (r.short_read) return BAD("truncated header", path);
    if (param > 1 || sw_set > 1 || !(isfinite(sw) && sw > 0) || !(isfinite(sb) && sb >= 0) ||
        !(isfinite(slope) && slope >= 0))
        return BAD("invalid network settings", path);
    size_t size = 1;
    for (uint32_t i = 0; i < ndim; i++)
        if (tni_mul_overflow(size, shape[i], &size) || size > SIZE_MAX / (8 * sizeof(double)))
            return BAD("the input shape's size overflows", path);
    tn_net *net = NULL;
    tn_status st = tni_net_new(ctx, shape, ndim, &net);
    if (st != TN_OK) return st;
    net->parameterization = (int)param;
    net->sigma_w_set = (int)sw_set;
    net->sigma_w = sw;
    net->sigma_b = sb;
    net->leaky_slope = slope;
    st = version == 1 ? read_layers_v1(ctx, path, &r, net) : read_graph(ctx, path, &r, net);
    const uint64_t nparams = st == TN_OK ? r_uint(&r, 8) : 0;
    if (st == TN_OK && (r.short_read || nparams != net->nparams || nparams == 0 ||
                        r.left != 8 * net->nparams))
        st = BAD("parameter count does not match the layers", path);
    if (st == TN_OK) {
        net->theta = tni_alloc(ctx, net->nparams, sizeof(double));
        if (net->theta == NULL) st = tni_fail(ctx, TN_E_NOMEM, "tn_net_load: out of memory");
    }
    if (st == TN_OK) {
        for (size_t i = 0; i < net->nparams; i++) net->theta[i] = r_f64(&r);
        if (!tni_all_finite(net->theta, net->nparams))
            st = BAD("a parameter is not finite", path);
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
    tn_status st = read_file(ctx, path, &data, &len);
    if (st != TN_OK) return st;
    st = parse(ctx, path, data, len, out);
    tni_free(data);
    return st;
}
