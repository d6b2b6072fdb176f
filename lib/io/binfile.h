/*
 * binfile.h -- what every taylornet file (networks, checkpoints) is made
 * with: a buffered little-endian writer that keeps CRC-32s as it goes, an
 * atomic save (temporary file, fsync, rename) that also clears the
 * temporaries of killed saves, a bounds-checked reader, and tagged sections.
 *
 * Integers are little-endian, doubles their IEEE-754 bits as a u64.
 *
 * Tagged sections (checkpoints, and anything that wants to grow): u32 tag
 * (four ASCII bytes, the first in the lowest byte), u64 length, then that
 * many bytes.  As in PNG, a tag whose first letter is upper case is
 * critical -- a reader that does not know it must refuse the file
 * (TN_E_VERSION: a newer writer put state there that would be lost) -- and
 * one whose first letter is lower case is ancillary: skipped when unknown.
 *
 * Temporary files: a save to `path` writes `path.<pid>.<n>.tmp`, holds a
 * POSIX write lock on it while writing, and renames it over `path`.  A save
 * killed before the rename leaves that file behind.  The next save to the
 * same path removes every `path.<pid>.<n>.tmp` that is provably orphaned:
 * no process of that pid exists on this machine (kill(pid, 0) fails with
 * ESRCH) *and* nobody holds a lock on it (a live writer elsewhere, e.g.
 * another host on a shared file system or another pid namespace, holds
 * one).  A pid that was reused keeps its file until the pid is gone again:
 * the rule errs on the side of keeping.  Only names of exactly that form
 * are touched.
 */
#ifndef TNI_BINFILE_H
#define TNI_BINFILE_H

#include "../core/core.h"

#include <stdio.h>

/* CRC-32 (IEEE 802.3, zlib's crc32): crc of p[0..n) continuing from crc
 * (0 to start). */
uint32_t tni_crc32(uint32_t crc, const unsigned char *p, size_t n);

#define TNI_CRC_DEPTH 4

typedef struct tni_writer {
    FILE *f;                        /* NULL: count only (see tni_writer_count) */
    int failed;
    uint64_t count;                 /* bytes written so far */
    uint32_t crc[TNI_CRC_DEPTH];    /* CRC-32s of nested ranges, outermost first */
    int depth;
    size_t len;
    unsigned char buf[1 << 16];
} tni_writer;

typedef void (*tni_encode_fn)(tni_writer *w, const void *arg);

void tni_w_bytes(tni_writer *w, const void *p, size_t n);
/* Hands the buffered bytes to w->f (tni_file_save does this at the end;
 * a caller writing to a stream of its own calls it before closing it). */
void tni_w_flush(tni_writer *w);
void tni_w_u32(tni_writer *w, uint32_t v);
void tni_w_u64(tni_writer *w, uint64_t v);
void tni_w_f64(tni_writer *w, double d);
void tni_w_f64s(tni_writer *w, const double *v, size_t n);
/* Starts a CRC over the bytes written from now; tni_w_crc_end returns it
 * (nested up to TNI_CRC_DEPTH deep). */
void tni_w_crc_begin(tni_writer *w);
uint32_t tni_w_crc_end(tni_writer *w);
/* A tagged section whose payload encode(w, arg) writes (encode runs twice:
 * once to count the bytes, once to write them, so it must be pure). */
void tni_w_section(tni_writer *w, uint32_t tag, tni_encode_fn encode, const void *arg);
/* The four characters of a tag as its u32. */
#define TNI_TAG(a, b, c, d)                                                            \
    ((uint32_t)(unsigned char)(a) | (uint32_t)(unsigned char)(b) << 8 |                \
     (uint32_t)(unsigned char)(c) << 16 | (uint32_t)(unsigned char)(d) << 24)
/* 1 if a tag is critical (its first letter is not lower case). */
int tni_tag_critical(uint32_t tag);

/* Writes `path` atomically with the bytes encode(w, arg) produces: a
 * temporary beside it (mode 0666 less the umask), flushed and fsynced,
 * renamed over `path`.  Orphaned temporaries of `path` are removed first
 * (see above).  Messages start with `who`.  TN_E_IO on failure, with
 * `path` untouched and no temporary left; TN_E_NOMEM. */
tn_status tni_file_save(tn_ctx *ctx, const char *who, const char *path, tni_encode_fn encode,
                        const void *arg);

/* Removes the provably orphaned temporaries of `path` (see above); returns
 * how many.  Called by tni_file_save; exposed for tests. */
size_t tni_file_clean_orphans(const char *path);

/* The whole content of the regular file `path` (opened without blocking,
 * so a FIFO or device is refused rather than waited on).  *data is
 * tni_free'd by the caller.  TN_E_IO (cannot open, not a regular file,
 * read error), TN_E_NOMEM. */
tn_status tni_file_read(tn_ctx *ctx, const char *who, const char *path, unsigned char **data,
                        size_t *len);

/* A bounds-checked cursor over bytes in memory: reading past the end sets
 * short_read and yields zeros, so a parser checks once after a group of
 * fields. */
typedef struct tni_reader {
    const unsigned char *p;
    size_t left;
    int short_read;
} tni_reader;

const unsigned char *tni_r_take(tni_reader *r, size_t n);
uint64_t tni_r_uint(tni_reader *r, int bytes);
double tni_r_f64(tni_reader *r);
/* n doubles into out (out may be NULL: skipped); 0 on a short read. */
int tni_r_f64s(tni_reader *r, double *out, size_t n);

/* The CRC-32 stored little-endian in the last 4 of len bytes matches the
 * bytes before it (len >= 4). */
int tni_crc_trailer_ok(const unsigned char *data, size_t len);

#endif
