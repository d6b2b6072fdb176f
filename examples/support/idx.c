/* idx.c -- IDX reader over zlib (idx.h). */
#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The buffer starts at this size and doubles as data arrives, so memory is
 * bounded by what the file really holds, not by what its header claims. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)
/* gzread takes an unsigned and returns an int: keep each request below INT_MAX. */
#define IDX_MAX_REQUEST ((size_t)1 << 30)

#if defined(__GNUC__)
static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* zlib's own description of a failed or short read: a truncated stream is a
 * Z_BUF_ERROR, a bad checksum a Z_DATA_ERROR; Z_OK means a clean end of file.
 * zlib prefixes the path, which our messages already start with. */
static const char *gz_reason(gzFile f, const char *path, int *errnum)
{
    const char *msg = gzerror(f, errnum);
    if (*errnum == Z_ERRNO) return strerror(errno);
    if (msg == NULL || *msg == '\0') return "unexpected end of file";
    const size_t plen = strlen(path);
    if (strncmp(msg, path, plen) == 0 && msg[plen] == ':' && msg[plen + 1] == ' ')
        msg += plen + 2;
    return msg;
}

/* Reads up to len bytes; *got receives how many arrived.  Returns IDX_OK when
 * the read ended cleanly (full, or at a clean end of file: the caller decides
 * whether short is wrong), IDX_E_READ when zlib reported an error. */
static idx_status read_some(gzFile f, unsigned char *buf, size_t len, size_t *got,
                            const char *path, char *err, size_t errlen)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > IDX_MAX_REQUEST) want = IDX_MAX_REQUEST;
        int r = gzread(f, buf + *got, (unsigned)want);
        if (r < 0) {
            int errnum;
            const char *why = gz_reason(f, path, &errnum);
            set_err(err, errlen, "%s: read error: %s", path, why);
            return IDX_E_READ;
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    if (*got < len) {
        /* zlib may deliver the intact prefix of a damaged stream before
         * reporting the damage, so a short read is checked, not assumed clean. */
        int errnum;
        const char *why = gz_reason(f, path, &errnum);
        if (errnum != Z_OK) {
            set_err(err, errlen, "%s: read error: %s", path, why);
            return IDX_E_READ;
        }
    }
    return IDX_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The header: magic and dimensions, with every field checked. */
static idx_status read_header(gzFile f, uint32_t expect_magic, idx_array *a, const char *path,
                              char *err, size_t errlen)
{
    unsigned char buf[4 * IDX_MAX_DIMS];
    size_t got;
    idx_status st = read_some(f, buf, 4, &got, path, err, errlen);
    if (st != IDX_OK) return st;
    if (got < 4) {
        set_err(err, errlen, "%s: file too short for an IDX header (%zu bytes)", path, got);
        return IDX_E_FORMAT;
    }
    a->magic = be32(buf);
    if (buf[0] != 0 || buf[1] != 0 || buf[2] != 0x08 || buf[3] < 1 || buf[3] > IDX_MAX_DIMS) {
        set_err(err, errlen,
                "%s: magic 0x%08x is not an unsigned-byte IDX file with 1 to %d dimensions "
                "(a gzip file that is not IDX, or a damaged one?)",
                path, (unsigned)a->magic, IDX_MAX_DIMS);
        return IDX_E_FORMAT;
    }
    if (expect_magic != 0 && a->magic != expect_magic) {
        set_err(err, errlen, "%s: magic 0x%08x, expected 0x%08x (%s)", path, (unsigned)a->magic,
                (unsigned)expect_magic,
                expect_magic == IDX_MAGIC_IMAGES   ? "an image file"
                : expect_magic == IDX_MAGIC_LABELS ? "a label file"
                                                   : "another IDX layout");
        return IDX_E_FORMAT;
    }
    a->ndim = buf[3];
    st = read_some(f, buf, 4 * a->ndim, &got, path, err, errlen);
    if (st != IDX_OK) return st;
    if (got < 4 * a->ndim) {
        set_err(err, errlen, "%s: truncated in the header (%zu of %zu dimension bytes)", path,
                got, 4 * a->ndim);
        return IDX_E_FORMAT;
    }
    size_t count = 1;
    for (size_t i = 0; i < a->ndim; i++) {
        const uint32_t dim = be32(buf + 4 * i);
        if (dim == 0) {
            set_err(err, errlen, "%s: dimension %zu is 0", path, i);
            return IDX_E_FORMAT;
        }
        if (count > SIZE_MAX / dim) {
            set_err(err, errlen, "%s: the dimensions overflow the address space", path);
            return IDX_E_FORMAT;
        }
        a->dims[i] = dim;
        count *= dim;
    }
    a->count = count;
    return IDX_OK;
}

/* The payload: exactly a->count bytes followed by the end of the file. */
static idx_status read_payload(gzFile f, idx_array *a, const char *path, char *err,
                               size_t errlen)
{
    size_t cap = a->count < IDX_FIRST_CHUNK ? a->count : IDX_FIRST_CHUNK;
    size_t have = 0;
    unsigned char *data = malloc(cap);
    if (data == NULL) {
        set_err(err, errlen, "%s: out of memory for %zu bytes", path, cap);
        return IDX_E_NOMEM;
    }
    for (;;) {
        size_t got;
        idx_status st = read_some(f, data + have, cap - have, &got, path, err, errlen);
        if (st != IDX_OK) {
            free(data);
            return st;
        }
        have += got;
        if (have < cap) break;  /* clean end of file before the buffer filled */
        if (have == a->count) break;
        size_t next = cap > a->count / 2 ? a->count : 2 * cap;
        unsigned char *grown = realloc(data, next);
        if (grown == NULL) {
            free(data);
            set_err(err, errlen, "%s: out of memory for %zu bytes", path, next);
            return IDX_E_NOMEM;
        }
        data = grown;
        cap = next;
    }
    if (have < a->count) {
        free(data);
        set_err(err, errlen, "%s: truncated: the header declares %zu data bytes, the file has %zu",
                path, a->count, have);
        return IDX_E_FORMAT;
    }
    unsigned char extra;
    size_t got;
    idx_status st = read_some(f, &extra, 1, &got, path, err, errlen);
    if (st != IDX_OK || got != 0) {
        free(data);
        if (st == IDX_OK)
            set_err(err, errlen, "%s: trailing data after the %zu bytes the header declares",
                    path, a->count);
        return st != IDX_OK ? st : IDX_E_FORMAT;
    }
    a->data = data;
    return IDX_OK;
}

idx_status idx_read(const char *path, uint32_t expect_magic, idx_array *out, char *err,
                    size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (out == NULL || path == NULL) {
        set_err(err, errlen, "idx_read: NULL argument");
        return IDX_E_ARG;
    }
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (f == NULL) {
        set_err(err, errlen, "%s: cannot open: %s", path,
                errno ? strerror(errno) : "out of memory");
        return IDX_E_OPEN;
    }
    /* A larger buffer than zlib's 8 KiB default: fewer read calls on 26 MB files. */
    gzbuffer(f, 128u * 1024u);
    idx_array a;
    memset(&a, 0, sizeof a);
    idx_status st = read_header(f, expect_magic, &a, path, err, errlen);
    if (st == IDX_OK) st = read_payload(f, &a, path, err, errlen);
    /* gzclose reports damage noticed only at the end of the stream (a
     * truncated trailer), which the reads above may not have surfaced. */
    int rc = gzclose(f);
    if (st == IDX_OK && rc != Z_OK) {
        free(a.data);
        set_err(err, errlen, "%s: damaged or truncated gzip stream (zlib error %d)", path, rc);
        return IDX_E_READ;
    }
    if (st != IDX_OK) return st;
    *out = a;
    return IDX_OK;
}

void idx_free(idx_array *a)
{
    if (a == NULL) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
