/* binfile.c -- buffered checksummed writing, atomic saves, whole-file
 * reads and tagged sections (binfile.h). */
#define _POSIX_C_SOURCE 200809L
#include "binfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static const uint32_t crc_table[256] = {
#include "crc32_table.inc"
};

uint32_t tni_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

int tni_crc_trailer_ok(const unsigned char *data, size_t len)
{
    const unsigned char *t = data + len - 4;
    const uint32_t stored =
        (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    return tni_crc32(0, data, len - 4) == stored;
}

/* ---- writing ---- */

void tni_w_flush(tni_writer *w)
{
    if (w->len && !w->failed && fwrite(w->buf, 1, w->len, w->f) != w->len) w->failed = 1;
    w->len = 0;
}

void tni_w_bytes(tni_writer *w, const void *p, size_t n)
{
    w->count += n;
    if (w->f == NULL) return;           /* counting */
    const unsigned char *b = p;
    for (int i = 0; i < w->depth; i++) w->crc[i] = tni_crc32(w->crc[i], b, n);
    while (n) {
        if (w->len == sizeof w->buf) tni_w_flush(w);
        size_t k = sizeof w->buf - w->len;
        if (k > n) k = n;
        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
    }
}

void tni_w_u32(tni_writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    tni_w_bytes(w, b, 4);
}

void tni_w_u64(tni_writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    tni_w_bytes(w, b, 8);
}

void tni_w_f64(tni_writer *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    tni_w_u64(w, v);
}

void tni_w_f64s(tni_writer *w, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) tni_w_f64(w, v[i]);
}

void tni_w_crc_begin(tni_writer *w)
{
    /* The depth is fixed by the formats (a file, a network inside it). */
    if (w->depth < TNI_CRC_DEPTH) w->crc[w->depth] = 0;
    w->depth++;
}

uint32_t tni_w_crc_end(tni_writer *w)
{
    w->depth--;
    return w->depth < TNI_CRC_DEPTH ? w->crc[w->depth] : 0;
}

void tni_w_section(tni_writer *w, uint32_t tag, tni_encode_fn encode, const void *arg)
{
    /* Count the payload with the writer in counting mode (no bytes, no
     * CRC), then write it for real. */
    FILE *f = w->f;
    const uint64_t start = w->count;
    const int depth = w->depth;
    w->f = NULL;
    encode(w, arg);
    const uint64_t len = w->count - start;
    w->f = f;
    w->count = start;
    w->depth = depth;
    tni_w_u32(w, tag);
    tni_w_u64(w, len);
    encode(w, arg);
}

int tni_tag_critical(uint32_t tag)
{
    const unsigned char first = (unsigned char)(tag & 0xffu);
    return !(first >= 'a' && first <= 'z');
}

/* ---- orphaned temporaries ---- */

/* name == base "." digits "." digits ".tmp": 1 and *pid set. */
static int temp_name(const char *name, const char *base, size_t blen, long *pid)
{
    if (strncmp(name, base, blen) != 0 || name[blen] != '.') return 0;
    const char *p = name + blen + 1;
    char *end;
    if (*p < '0' || *p > '9') return 0;
    errno = 0;
    const long v = strtol(p, &end, 10);
    if (errno || *end != '.' || v <= 0) return 0;
    p = end + 1;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    if (strcmp(p, ".tmp") != 0) return 0;
    *pid = v;
    return 1;
}

/* Nobody holds a lock on the regular file `path`. */
static int unlocked(const char *path)
{
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat sb;
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    const int free_ = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && fcntl(fd, F_GETLK, &fl) == 0 &&
                      fl.l_type == F_UNLCK;
    close(fd);
    return free_;
}

size_t tni_file_clean_orphans(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const size_t dlen = slash ? (size_t)(slash - path) : 0, blen = strlen(base);
    if (blen == 0) return 0;
    char *dir = malloc(dlen + 2);
    char *full = malloc(dlen + blen + 64);
    if (dir == NULL || full == NULL) {
        free(dir);
        free(full);
        return 0;
    }
    if (slash == NULL)
        strcpy(dir, ".");
    else if (dlen == 0)
        strcpy(dir, "/");
    else {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    size_t removed = 0;
    DIR *d = opendir(dir);
    const long self = (long)getpid();
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        long pid;
        if (!temp_name(e->d_name, base, blen, &pid) || pid == self) continue;
        if (strlen(e->d_name) > blen + 60) continue;      /* not one of ours: too long */
        if ((pid_t)pid != pid || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        snprintf(full, dlen + blen + 64, "%s/%s", dir, e->d_name);
        if (unlocked(full) && unlink(full) == 0) removed++;
    }
    if (d) closedir(d);
    free(dir);
    free(full);
    return removed;
}

/* ---- atomic save ---- */

/* Creates `path`.<pid>.<n>.tmp exclusively, mode 0666 less the umask (the
 * mode a plain fopen would give; mkstemp's 0600 would survive the rename),
 * and write-locks it so that no other save takes it for an orphan. */
static int create_temp(const char *path, char *tmp, size_t cap)
{
    for (unsigned n = 0; n < 1000; n++) {
        snprintf(tmp, cap, "%s.%ld.%u.tmp", path, (long)getpid(), n);
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd >= 0) {
            struct flock fl;
            memset(&fl, 0, sizeof fl);
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            (void)fcntl(fd, F_SETLK, &fl);      /* best effort: some file systems have none */
        }
        return fd;
    }
    errno = EEXIST;
    return -1;
}

tn_status tni_file_save(tn_ctx *ctx, const char *who, const char *path, tni_encode_fn encode,
                        const void *arg)
{
    const size_t cap = strlen(path) + 48;
    char *tmp = tni_alloc_or_fail(ctx, who, cap, 1);
    if (tmp == NULL) return TN_E_NOMEM;
    tni_writer *w = tni_alloc(ctx, 1, sizeof *w);
    if (w == NULL) {
        tni_free(tmp);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory", who);
    }
    tni_file_clean_orphans(path);
    tn_status st = TN_OK;
    const int fd = create_temp(path, tmp, cap);
    if (fd < 0) {
        st = tni_fail(ctx, TN_E_IO, "%s: cannot create a temporary file beside '%s': %s", who,
                      path, strerror(errno));
        goto done;
    }
    w->f = fdopen(fd, "wb");
    if (w->f == NULL) {
        st = tni_fail(ctx, TN_E_IO, "%s: fdopen: %s", who, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    encode(w, arg);
    tni_w_flush(w);
    int err = w->failed ? errno : 0;
    /* Data on disk before the rename makes it visible under `path`. */
    if (!w->failed && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)) {
        w->failed = 1;
        err = errno;
    }
    if (fclose(w->f) != 0 && !w->failed) {
        w->failed = 1;
        err = errno;
    }
    if (w->failed) {
        unlink(tmp);
        st = tni_fail(ctx, TN_E_IO, "%s: writing '%s' failed: %s", who, tmp, strerror(err));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = tni_fail(ctx, TN_E_IO, "%s: cannot rename '%s' to '%s': %s", who, tmp, path,
                      strerror(errno));
        unlink(tmp);
    }
done:
    tni_free(w);
    tni_free(tmp);
    return st;
}

/* ---- reading ---- */

tn_status tni_file_read(tn_ctx *ctx, const char *who, const char *path, unsigned char **data,
                        size_t *len)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer forever; the type is checked on the open file itself. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return tni_fail(ctx, TN_E_IO, "%s: cannot open '%s': %s", who, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        close(fd);
        return tni_fail(ctx, TN_E_IO, "%s: '%s' is not a regular file", who, path);
    }
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if ((uintmax_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return tni_fail(ctx, TN_E_NOMEM, "%s: '%s' is too large to read", who, path);
    }
    const size_t size = (size_t)sb.st_size;
    unsigned char *buf = tni_alloc(ctx, size + 1, 1);
    if (buf == NULL) {
        close(fd);
        return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for %zu bytes", who, size);
    }
    size_t got = 0;
    while (got < size) {
        const ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != size) {
        tni_free(buf);
        return tni_fail(ctx, TN_E_IO, "%s: reading '%s' failed (%zu of %zu bytes)", who, path, got,
                        size);
    }
    *data = buf;
    *len = size;
    return TN_OK;
}

const unsigned char *tni_r_take(tni_reader *r, size_t n)
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

uint64_t tni_r_uint(tni_reader *r, int bytes)
{
    const unsigned char *b = tni_r_take(r, (size_t)bytes);
    uint64_t v = 0;
    if (b)
        for (int i = 0; i < bytes; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

double tni_r_f64(tni_reader *r)
{
    const uint64_t v = tni_r_uint(r, 8);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

int tni_r_f64s(tni_reader *r, double *out, size_t n)
{
    if (n > r->left / 8) {
        r->short_read = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const double v = tni_r_f64(r);
        if (out) out[i] = v;
    }
    return !r->short_read;
}
