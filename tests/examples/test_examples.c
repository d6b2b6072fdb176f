/*
 * test_examples.c -- checks of the examples' data code (examples/support):
 * the IDX reader against valid, truncated, oversized, corrupted and fuzzed
 * files, the data loader's fallback and validation, the minibatches and the
 * learning-rate schedule.  Runs in a private temporary directory.
 */
#include "testutil.h"

#include "support/cli.h"
#include "support/data.h"
#include "support/idx.h"
#include "support/training.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* The test directory and the path of a file in it (a static buffer: use
 * it before the next call). */
static char *dir;

static const char *in_dir(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX image in memory: header for n x rows x cols, then `payload` bytes
 * (which may disagree with the header on purpose). */
static size_t make_images(unsigned char *buf, uint32_t n, uint32_t rows, uint32_t cols,
                          size_t payload)
{
    put_be32(buf, IDX_MAGIC_IMAGES);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t i = 0; i < payload; i++) buf[16 + i] = (unsigned char)(i * 37u + 11u);
    return 16 + payload;
}

static size_t make_labels(unsigned char *buf, uint32_t n, const unsigned char *labels)
{
    put_be32(buf, IDX_MAGIC_LABELS);
    put_be32(buf + 4, n);
    memcpy(buf + 8, labels, n);
    return 8 + n;
}

static void write_gz(const char *name, const unsigned char *data, size_t len)
{
    gzFile f = gzopen(in_dir(name), "wb");
    if (f == NULL) ex_die("gzopen %s for writing failed", in_dir(name));
    if (len && gzwrite(f, data, (unsigned)len) != (int)len) ex_die("gzwrite failed");
    if (gzclose(f) != Z_OK) ex_die("gzclose failed");
}

static void write_raw(const char *name, const unsigned char *data, size_t len)
{
    FILE *f = fopen(in_dir(name), "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        ex_die("writing %s failed", in_dir(name));
}

static size_t read_raw(const char *name, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(in_dir(name), "rb");
    if (f == NULL) ex_die("reading %s failed", in_dir(name));
    const size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static idx_status read_status(const char *name, uint32_t magic)
{
    idx_array a;
    char err[512];
    const idx_status st = idx_read(in_dir(name), magic, &a, err, sizeof err);
    if (st == IDX_OK) {
        idx_free(&a);
    } else {
        ck_assert(a.data == NULL);
        ck_assert(err[0] != '\0');
    }
    return st;
}

START_TEST(idx_reads_valid_files)
{
    unsigned char buf[256];
    const size_t len = make_images(buf, 3, 2, 4, 24);
    write_gz("img.gz", buf, len);
    idx_array a;
    char err[512];
    ck_assert(idx_read(in_dir("img.gz"), IDX_MAGIC_IMAGES, &a, err, sizeof err) == IDX_OK);
    ck_assert(a.ndim == 3 && a.dims[0] == 3 && a.dims[1] == 2 && a.dims[2] == 4);
    ck_assert(a.count == 24 && a.data != NULL && memcmp(a.data, buf + 16, 24) == 0);
    idx_free(&a);
    ck_assert(a.data == NULL);
    idx_free(NULL);

    /* zlib reads an uncompressed file transparently. */
    write_raw("img.raw", buf, len);
    ck_assert(read_status("img.raw", IDX_MAGIC_IMAGES) == IDX_OK);
    /* 0 accepts any unsigned-byte layout. */
    ck_assert(read_status("img.gz", 0) == IDX_OK);
}
END_TEST

START_TEST(idx_refuses_malformed_files)
{
    unsigned char buf[256];
    size_t len;

    ck_assert(read_status("does-not-exist.gz", IDX_MAGIC_IMAGES) == IDX_E_OPEN);

    write_gz("empty.gz", buf, 0);
    ck_assert(read_status("empty.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    const unsigned char labels[4] = {1, 2, 3, 4};
    len = make_labels(buf, 4, labels);
    write_gz("labels.gz", buf, len);
    ck_assert(read_status("labels.gz", IDX_MAGIC_LABELS) == IDX_OK);
    ck_assert(read_status("labels.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    len = make_images(buf, 3, 2, 4, 23);
    write_gz("short.gz", buf, len);
    ck_assert(read_status("short.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    len = make_images(buf, 3, 2, 4, 25);
    write_gz("long.gz", buf, len);
    ck_assert(read_status("long.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    len = make_images(buf, 3, 0, 4, 0);
    write_gz("zerodim.gz", buf, len);
    ck_assert(read_status("zerodim.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    len = make_images(buf, 0xffffffffu, 0xffffffffu, 0xffffffffu, 8);
    write_gz("overflow.gz", buf, len);
    ck_assert(read_status("overflow.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    /* 2^32 - 1 images of 28 x 28 claimed, 8 bytes present: the reader must
     * notice the truncation, not try to allocate 3 TB.  No address-space
     * limit is needed to catch a reader that tries: such a request exceeds
     * RAM, so malloc refuses it (IDX_E_NOMEM, not the expected status), and
     * under ASan it aborts. */
    len = make_images(buf, 0xffffffffu, 28, 28, 8);
    write_gz("huge.gz", buf, len);
    ck_assert(read_status("huge.gz", IDX_MAGIC_IMAGES) == IDX_E_FORMAT);

    /* Not IDX at all: text. */
    write_gz("text.gz", (const unsigned char *)"hello, world\n", 13);
    ck_assert(read_status("text.gz", 0) == IDX_E_FORMAT);

    /* Type other than unsigned byte (0x0D: float). */
    len = make_images(buf, 3, 2, 4, 24);
    buf[2] = 0x0d;
    write_gz("float.gz", buf, len);
    ck_assert(read_status("float.gz", 0) == IDX_E_FORMAT);
}
END_TEST

/* A gzip file cut short, or with a damaged checksum, is an error even though
 * its intact prefix decompresses. */
START_TEST(idx_refuses_damaged_gzip)
{
    static unsigned char buf[70000], gz[80000];
    const size_t len = make_images(buf, 100, 20, 30, 60000);
    write_gz("big.gz", buf, len);
    const size_t gz_len = read_raw("big.gz", gz, sizeof gz);
    ck_assert(gz_len > 100 && gz_len < sizeof gz);
    ck_assert(read_status("big.gz", IDX_MAGIC_IMAGES) == IDX_OK);

    const size_t cuts[] = {gz_len - 1, gz_len - 4, gz_len - 8, gz_len / 2, 30, 10, 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_raw("cut.gz", gz, cuts[i]);
        const idx_status st = read_status("cut.gz", IDX_MAGIC_IMAGES);
        if (st == IDX_OK) fprintf(stderr, "  cut at %zu of %zu bytes was accepted\n", cuts[i], gz_len);
        ck_assert(st != IDX_OK);
    }

    unsigned char bad[sizeof gz];
    memcpy(bad, gz, gz_len);
    bad[gz_len - 6] ^= 0x5a; /* inside the CRC-32 of the trailer */
    write_raw("crc.gz", bad, gz_len);
    ck_assert(read_status("crc.gz", IDX_MAGIC_IMAGES) == IDX_E_READ);

    /* Every single-byte corruption of the stream: never a crash, and never a
     * silently different result (the CRC catches changed data; a change to
     * the header's mtime or flags may legitimately leave the data intact). */
    for (size_t pos = 0; pos < gz_len; pos += 7) {
        memcpy(bad, gz, gz_len);
        bad[pos] ^= 0xa5;
        write_raw("fuzz.gz", bad, gz_len);
        idx_array a;
        if (idx_read(in_dir("fuzz.gz"), IDX_MAGIC_IMAGES, &a, NULL, 0) == IDX_OK) {
            ck_assert(a.count == 60000 && memcmp(a.data, buf + 16, 60000) == 0);
            idx_free(&a);
        }
    }
}
END_TEST

/* A small but complete Fashion-MNIST-shaped directory. */
static void write_fake_dataset(int bad_label)
{
    static unsigned char buf[16 + 12 * 28 * 28];
    unsigned char labels[12];
    for (int i = 0; i < 12; i++) labels[i] = (unsigned char)(i % 10);
    if (bad_label) labels[5] = 10;
    size_t len = make_images(buf, 12, 28, 28, 12 * 28 * 28);
    write_gz("train-images-idx3-ubyte.gz", buf, len);
    len = make_images(buf, 7, 28, 28, 7 * 28 * 28);
    write_gz("t10k-images-idx3-ubyte.gz", buf, len);
    len = make_labels(buf, 12, labels);
    write_gz("train-labels-idx1-ubyte.gz", buf, len);
    len = make_labels(buf, 7, labels);
    write_gz("t10k-labels-idx1-ubyte.gz", buf, len);
}

START_TEST(loader_validates_and_falls_back)
{
    ex_data_options opt;
    ex_data data;
    ex_data_options_default(&opt);
    opt.dir = dir;

    write_fake_dataset(0);
    opt.max_train = 10;
    ck_assert(ex_load_data(&opt, &data) == 0);
    ck_assert(!data.synthetic && data.train.n == 10 && data.test.n == 7 && data.train.d == 784);
    ck_assert(data.train.labels[3] == 3 && data.train.y[3 * 10 + 3] == 1.0);
    /* Standardized with the training statistics: mean 0 over the training set. */
    double sum = 0.0;
    for (size_t e = 0; e < data.train.n * data.train.d; e++) sum += data.train.x[e];
    ck_assert(sum / (double)(data.train.n * data.train.d) < 1e-9 &&
           sum / (double)(data.train.n * data.train.d) > -1e-9);
    ex_data_free(&data);

    opt.scaling = EX_SCALE_UNIT;
    ck_assert(ex_load_data(&opt, &data) == 0);
    ck_assert(data.train.x[1] == (double)((1 * 37u + 11u) & 0xff) / 255.0);
    ex_data_free(&data);
    opt.scaling = EX_SCALE_STANDARDIZE;

    write_fake_dataset(1);
    ck_assert(ex_load_data(&opt, &data) == -1);
    ck_assert(data.train.x == NULL && data.test.x == NULL);

    /* Missing files: the synthetic stand-in, with the limits applied. */
    unlink(in_dir("t10k-labels-idx1-ubyte.gz"));
    opt.max_train = 500;
    opt.max_test = 200;
    ck_assert(ex_load_data(&opt, &data) == 0);
    ck_assert(data.synthetic && data.train.n == 500 && data.test.n == 200 && data.train.d == 784);
    size_t per_class[EX_NUM_CLASSES] = {0};
    for (size_t i = 0; i < data.train.n; i++) per_class[data.train.labels[i]]++;
    for (int c = 0; c < EX_NUM_CLASSES; c++) ck_assert(per_class[c] == 50);
    ex_data_free(&data);
}
END_TEST

/* Every epoch visits every example once, in an order that changes from
 * epoch to epoch and depends only on the seed; skipping steps lands where
 * drawing them would. */
START_TEST(batches_cover_each_epoch_and_skip)
{
    ex_data_options opt;
    ex_data_options_default(&opt);
    opt.force_synthetic = 1;
    opt.synthetic_train = 100;
    opt.synthetic_test = 10;
    ex_data data;
    if (ex_load_data(&opt, &data) != 0) ex_die("synthetic data");
    ex_batcher a, b;
    ex_batcher_init(&a, &data.train, 32, 42);
    ex_batcher_init(&b, &data.train, 32, 42);
    size_t first[100] = {0};
    for (int epoch = 0; epoch < 2; epoch++) {
        int seen[100] = {0};
        size_t rows, total = 0, batches = 0, moved = 0;
        while ((rows = ex_batcher_next(&a)) > 0) {
            ck_assert(ex_batcher_next(&b) == rows);
            ck_assert(memcmp(a.x, b.x, rows * data.train.d * sizeof(double)) == 0);
            ck_assert(rows == (batches < 3 ? 32u : 4u));
            for (size_t r = 0; r < rows; r++) {
                /* The batch row is the example whose label and image it has. */
                const size_t i = a.order[total + r];
                seen[i]++;
                ck_assert(memcmp(a.x + r * data.train.d, data.train.x + i * data.train.d,
                              data.train.d * sizeof(double)) == 0);
                ck_assert(a.y[r * 10 + (size_t)data.train.labels[i]] == 1.0);
                if (epoch == 0) first[total + r] = i;
                moved += epoch == 1 && first[total + r] != i;
            }
            total += rows;
            batches++;
        }
        ck_assert(ex_batcher_next(&b) == 0);
        ck_assert(total == 100 && batches == 4);
        for (size_t i = 0; i < 100; i++) ck_assert(seen[i] == 1);
        if (epoch == 1) ck_assert(moved > 50);
    }
    ex_batcher_free(&a);
    ex_batcher_free(&b);

    /* Skipping k steps puts the batcher where k draws (and the end of the
     * epoch they finish) would: 4 steps to an epoch of 100 in batches of
     * 32, so 4, 5 and 9 skipped steps end on either side of an epoch. */
    const uint64_t skips[] = {0, 3, 4, 5, 9};
    for (size_t s = 0; s < sizeof skips / sizeof skips[0]; s++) {
        ex_batcher_init(&a, &data.train, 32, 7);
        ex_batcher_init(&b, &data.train, 32, 7);
        for (uint64_t k = 0; k < skips[s]; k++)
            if (ex_batcher_next(&a) == 0) ck_assert(ex_batcher_next(&a) > 0);
        if (a.pos == data.train.n) ck_assert(ex_batcher_next(&a) == 0);
        ex_batcher_skip(&b, skips[s]);
        ck_assert(a.pos == b.pos && memcmp(a.order, b.order, 100 * sizeof(size_t)) == 0);
        const size_t rows = ex_batcher_next(&a);
        ck_assert(rows > 0 && ex_batcher_next(&b) == rows);
        ck_assert(memcmp(a.x, b.x, rows * data.train.d * sizeof(double)) == 0);
        ex_batcher_free(&a);
        ex_batcher_free(&b);
    }
    ex_data_free(&data);
}
END_TEST

START_TEST(scoring_and_schedule)
{
    const double nan_row[3] = {NAN, 1.0, 0.5};
    ck_assert(ex_argmax(nan_row, 3) == 1);
    const double all_nan[2] = {NAN, NAN};
    ck_assert(ex_argmax(all_nan, 2) == SIZE_MAX);

    ex_train_flags f;
    ex_train_flags_default(&f);
    f.lr = 1.0;
    f.epochs = 4;
    ck_assert(ex_train_lr(&f, 0) == 1.0);
    ck_assert(ex_train_lr(&f, 2) > 0.49 && ex_train_lr(&f, 2) < 0.51);
    ck_assert(ex_train_lr(&f, 9) == ex_train_lr(&f, 3));
    f.schedule = "constant";
    ck_assert(ex_train_lr(&f, 3) == 1.0);
}
END_TEST

/* Every file the checks may leave in the directory. */
static const char *const made[] = {
    "img.gz", "img.raw", "empty.gz", "labels.gz", "short.gz", "long.gz", "zerodim.gz",
    "overflow.gz", "huge.gz", "text.gz", "float.gz", "big.gz", "cut.gz", "crc.gz",
    "fuzz.gz", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

/* The test directory, made before the tests and emptied and removed
 * after them. */
static void make_dir(void)
{
    dir = tu_make_dir("tn_examples");
}

static void remove_dir(void)
{
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) unlink(in_dir(made[i]));
    if (rmdir(dir) != 0) fprintf(stderr, "warning: cannot remove %s\n", dir);
    free(dir);
}

int main(void)
{
    Suite *suite = suite_create("examples");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, make_dir, remove_dir);
    tcase_add_test(tc, idx_reads_valid_files);
    tcase_add_test(tc, idx_refuses_malformed_files);
    tcase_add_test(tc, idx_refuses_damaged_gzip);
    tcase_add_test(tc, loader_validates_and_falls_back);
    tcase_add_test(tc, batches_cover_each_epoch_and_skip);
    tcase_add_test(tc, scoring_and_schedule);
    suite_add_tcase(suite, tc);
    return tu_run(suite);
}
