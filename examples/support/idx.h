/*
 * idx.h -- a reader for IDX files, the format of MNIST and Fashion-MNIST,
 * gzip-compressed or not (zlib reads both).
 *
 * Format: a big-endian 32-bit magic 0x00000800 | (type << 8) | ndim, where
 * only type 0x08 (unsigned byte) is accepted here; then ndim big-endian
 * 32-bit dimensions; then the product of the dimensions in bytes, and nothing
 * after them.  Images are magic 0x00000803 (n x rows x cols), labels
 * 0x00000801 (n).
 *
 * Everything in the file is distrusted: a wrong magic, a zero or overflowing
 * dimension, a file shorter or longer than its header says, or a damaged
 * gzip stream gives an error with a message, never a crash.  Memory grows
 * with the bytes actually decompressed, so a header claiming gigabytes in a
 * small file cannot cause a huge allocation.
 *
 * Part of the examples, not of libtaylornet.
 */
#ifndef TN_EXAMPLES_IDX_H
#define TN_EXAMPLES_IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_DIMS 4
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u

typedef enum idx_status {
    IDX_OK = 0,
    IDX_E_OPEN = 1,     /* the file cannot be opened (errno tells why, e.g. ENOENT) */
    IDX_E_READ = 2,     /* a read error, or a damaged or truncated gzip stream */
    IDX_E_FORMAT = 3,   /* not an unsigned-byte IDX file, or sizes that do not match */
    IDX_E_NOMEM = 4,    /* allocation failed */
    IDX_E_ARG = 5       /* a NULL argument */
} idx_status;

typedef struct idx_array {
    uint32_t magic;
    size_t ndim;
    size_t dims[IDX_MAX_DIMS];
    size_t count;           /* product of dims: the number of bytes in data */
    unsigned char *data;    /* owned; free with idx_free */
} idx_array;

/* Reads the whole file at `path` into *out.  On failure *out is empty
 * (data NULL) and, when err is not NULL, err receives a one-line message
 * naming the file (truncated to errlen).  `expect_magic` is the magic the
 * caller needs (IDX_MAGIC_IMAGES, IDX_MAGIC_LABELS), or 0 to accept any
 * unsigned-byte IDX file with 1 to IDX_MAX_DIMS dimensions. */
idx_status idx_read(const char *path, uint32_t expect_magic, idx_array *out, char *err,
                    size_t errlen);

/* Frees the data and empties *a.  NULL and empty arrays are fine. */
void idx_free(idx_array *a);

#endif
