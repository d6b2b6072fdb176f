/* data.c -- the examples' data: loading, minibatches, scoring (data.h). */
#define _POSIX_C_SOURCE 200809L

#include "data.h"

#include "cli.h"
#include "idx.h"
#include "rng.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*=====================================================================
 * Loading
 *===================================================================*/

static const char *const k_train_images = "train-images-idx3-ubyte.gz";
static const char *const k_train_labels = "train-labels-idx1-ubyte.gz";
static const char *const k_test_images = "t10k-images-idx3-ubyte.gz";
static const char *const k_test_labels = "t10k-labels-idx1-ubyte.gz";

/* The synthetic stand-in: class means 0.5 +- SYN_SPREAD per pixel (random
 * signs), pixel noise SYN_NOISE.  Two class means differ in about half the
 * pixels, so their distance is about SYN_SPREAD * 2 * sqrt(784 / 2) = 1.2, or
 * 3 noise standard deviations from the midpoint: a linear classifier can
 * approach 99%, one learnt from a few thousand examples in 784 dimensions
 * gets less, and nothing is perfect from the start. */
#define SYN_DIM 784
#define SYN_SPREAD 0.03
#define SYN_NOISE 0.2

void ex_data_options_default(ex_data_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->dir = NULL;
    opt->scaling = EX_SCALE_STANDARDIZE;
    opt->synthetic_seed = 1;
    opt->synthetic_train = 6000;
    opt->synthetic_test = 1000;
}

static void dataset_alloc(ex_dataset *ds, size_t n, size_t d, size_t classes)
{
    ds->n = n;
    ds->d = d;
    ds->classes = classes;
    ds->x = ex_xmalloc(n, d * sizeof(double));
    ds->y = ex_xcalloc(n, classes * sizeof(double));
    ds->labels = ex_xmalloc(n, sizeof(int));
}

static void dataset_free(ex_dataset *ds)
{
    free(ds->x);
    free(ds->y);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

static void set_label(ex_dataset *ds, size_t i, int label)
{
    ds->labels[i] = label;
    ds->y[i * ds->classes + (size_t)label] = 1.0;
}

/* The image and label files of one split agree with each other and with
 * the class count. */
static int check_split(const idx_array *images, const idx_array *labels, const char *images_path,
                       const char *labels_path)
{
    if (labels->dims[0] != images->dims[0]) {
        fprintf(stderr, "error: %s has %zu images but %s has %zu labels\n", images_path,
                images->dims[0], labels_path, labels->dims[0]);
        return -1;
    }
    for (size_t i = 0; i < labels->count; i++) {
        if (labels->data[i] >= EX_NUM_CLASSES) {
            fprintf(stderr, "error: %s: label %u at index %zu is not a class in [0, %d)\n",
                    labels_path, (unsigned)labels->data[i], i, EX_NUM_CLASSES);
            return -1;
        }
    }
    return 0;
}

/* One split (training or test) from its image and label files, keeping the
 * first `limit` examples (0: all). */
static int load_split(const char *images_path, const char *labels_path, size_t limit,
                      ex_dataset *ds)
{
    char err[1024];
    idx_array images, labels;
    if (idx_read(images_path, IDX_MAGIC_IMAGES, &images, err, sizeof err) != IDX_OK) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    if (idx_read(labels_path, IDX_MAGIC_LABELS, &labels, err, sizeof err) != IDX_OK) {
        fprintf(stderr, "error: %s\n", err);
        idx_free(&images);
        return -1;
    }
    const int rc = check_split(&images, &labels, images_path, labels_path);
    if (rc == 0) {
        const size_t n_file = images.dims[0];
        const size_t d = images.dims[1] * images.dims[2];
        const size_t n = limit && limit < n_file ? limit : n_file;
        dataset_alloc(ds, n, d, EX_NUM_CLASSES);
        for (size_t e = 0; e < n * d; e++) ds->x[e] = images.data[e] / 255.0;
        for (size_t i = 0; i < n; i++) set_label(ds, i, labels.data[i]);
    }
    idx_free(&images);
    idx_free(&labels);
    return rc;
}

/* A standard normal by Marsaglia's polar method from the library's
 * uniforms, one variate per pair and the C library's log: the synthetic set
 * as it has always been drawn.  (tni_rng_normal keeps the pair's second
 * variate and has a log of its own, so that tn_net_init's parameters are
 * bit-identical on every platform; the data need not be.) */
static double synth_normal(tni_rng *rng)
{
    for (;;) {
        const double u = 2.0 * tni_rng_uniform(rng) - 1.0;
        const double v = 2.0 * tni_rng_uniform(rng) - 1.0;
        const double s = u * u + v * v;
        if (s > 0.0 && s < 1.0) return u * sqrt(-2.0 * log(s) / s);
    }
}

/* Samples of the cluster model of SYN_SPREAD / SYN_NOISE, labels cycling
 * through the classes so every prefix is balanced. */
static void synth_split(ex_dataset *ds, size_t n, const double *means, tni_rng *rng)
{
    dataset_alloc(ds, n, SYN_DIM, EX_NUM_CLASSES);
    for (size_t i = 0; i < n; i++) {
        const int label = (int)(i % EX_NUM_CLASSES);
        const double *mu = means + (size_t)label * SYN_DIM;
        double *row = ds->x + i * SYN_DIM;
        for (size_t j = 0; j < SYN_DIM; j++) {
            const double v = mu[j] + SYN_NOISE * synth_normal(rng);
            /* Clipped like pixel intensities, so the scaling code sees the
             * same range as for the real images. */
            row[j] = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
        }
        set_label(ds, i, label);
    }
}

static void make_synthetic(const ex_data_options *opt, ex_data *data)
{
    tni_rng rng;
    tni_rng_seed(&rng, opt->synthetic_seed);
    double *means = ex_xmalloc(EX_NUM_CLASSES * SYN_DIM, sizeof(double));
    for (size_t e = 0; e < EX_NUM_CLASSES * SYN_DIM; e++)
        means[e] = 0.5 + (tni_rng_next(&rng) >> 63 ? SYN_SPREAD : -SYN_SPREAD);
    size_t n_train = opt->synthetic_train ? opt->synthetic_train : 6000;
    size_t n_test = opt->synthetic_test ? opt->synthetic_test : 1000;
    if (opt->max_train && opt->max_train < n_train) n_train = opt->max_train;
    if (opt->max_test && opt->max_test < n_test) n_test = opt->max_test;
    synth_split(&data->train, n_train, means, &rng);
    synth_split(&data->test, n_test, means, &rng);
    free(means);
    data->synthetic = 1;
}

/* Mean and (population) standard deviation of all of x, in two passes so
 * the variance does not lose digits to cancellation. */
static void moments(const double *x, size_t count, double *mean, double *std)
{
    double sum = 0.0;
    for (size_t e = 0; e < count; e++) sum += x[e];
    const double m = sum / (double)count;
    double ssq = 0.0;
    for (size_t e = 0; e < count; e++) ssq += (x[e] - m) * (x[e] - m);
    *mean = m;
    *std = sqrt(ssq / (double)count);
}

static void standardize_scalar(ex_data *data)
{
    ex_dataset *sets[2] = {&data->train, &data->test};
    double mean, std;
    moments(data->train.x, data->train.n * data->train.d, &mean, &std);
    const double inv = std > 0.0 ? 1.0 / std : 1.0;
    for (int s = 0; s < 2; s++)
        for (size_t e = 0; e < sets[s]->n * sets[s]->d; e++)
            sets[s]->x[e] = (sets[s]->x[e] - mean) * inv;
    data->mean = mean;
    data->std = std;
}

static void standardize_features(ex_data *data)
{
    ex_dataset *sets[2] = {&data->train, &data->test};
    const size_t n = data->train.n, d = data->train.d;
    double overall_mean, overall_std;
    moments(data->train.x, n * d, &overall_mean, &overall_std);
    /* A pixel that is almost always 0 in training has a tiny std; dividing
     * by it would turn one faint test pixel into an outlier of hundreds. */
    const double floor_std = overall_std > 0.0 ? 0.1 * overall_std : 1.0;
    double *mean = ex_xcalloc(d, sizeof(double));
    double *inv = ex_xcalloc(d, sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mean[j] += data->train.x[i * d + j];
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const double c = data->train.x[i * d + j] - mean[j];
            inv[j] += c * c;
        }
    for (size_t j = 0; j < d; j++) {
        const double sd = sqrt(inv[j] / (double)n);
        inv[j] = 1.0 / (sd > floor_std ? sd : floor_std);
    }
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sets[s]->n; i++)
            for (size_t j = 0; j < d; j++)
                sets[s]->x[i * d + j] = (sets[s]->x[i * d + j] - mean[j]) * inv[j];
    free(mean);
    free(inv);
}

static const char *scaling_name(ex_scaling s)
{
    switch (s) {
    case EX_SCALE_UNIT: return "pixels in [0, 1]";
    case EX_SCALE_STANDARDIZE: return "standardized";
    case EX_SCALE_STANDARDIZE_FEATURES: return "standardized per feature";
    }
    return "?";
}

/* Which of the four files is missing, if any: only absence (not, say, a
 * permission problem) is a reason to fall back to synthetic data. */
static int find_missing(const char *dir, char *missing, size_t len, int *is_error)
{
    const char *names[4] = {k_train_images, k_train_labels, k_test_images, k_test_labels};
    *is_error = 0;
    for (int i = 0; i < 4; i++) {
        char path[4096];
        struct stat sb;
        ex_join_path(path, sizeof path, dir, names[i]);
        if (stat(path, &sb) != 0) {
            const int why = errno;
            if (why != ENOENT && why != ENOTDIR) {
                fprintf(stderr, "error: %s: %s\n", path, strerror(why));
                *is_error = 1;
            }
            snprintf(missing, len, "%s: %s", path, strerror(why));
            return 1;
        }
    }
    return 0;
}

int ex_load_data(const ex_data_options *opt, ex_data *data)
{
    ex_data_options defaults;
    if (opt == NULL) {
        ex_data_options_default(&defaults);
        opt = &defaults;
    }
    memset(data, 0, sizeof *data);
    data->std = 1.0;
    if (opt->scaling != EX_SCALE_UNIT && opt->scaling != EX_SCALE_STANDARDIZE &&
        opt->scaling != EX_SCALE_STANDARDIZE_FEATURES) {
        fprintf(stderr, "error: ex_load_data: unknown scaling %d\n", (int)opt->scaling);
        return -1;
    }
    const char *env = getenv(EX_FASHION_MNIST_ENV);
    const char *dir = opt->dir ? opt->dir : env && *env ? env : EX_FASHION_MNIST_DIR;

    char missing[4200] = "";
    int missing_is_error = 0;
    const int use_synthetic =
        opt->force_synthetic || find_missing(dir, missing, sizeof missing, &missing_is_error);
    if (missing_is_error) return -1;
    if (use_synthetic) {
        if (!opt->force_synthetic)
            fprintf(stderr,
                    "NOTE: Fashion-MNIST not found: %s.\n"
                    "NOTE: using a SYNTHETIC data set instead (install dataset-fashion-mnist, "
                    "or set %s to the directory of the four .gz files).\n",
                    missing, EX_FASHION_MNIST_ENV);
        make_synthetic(opt, data);
    } else {
        char paths[4][4096];
        const char *names[4] = {k_train_images, k_train_labels, k_test_images, k_test_labels};
        for (int i = 0; i < 4; i++)
            ex_join_path(paths[i], sizeof paths[i], dir, names[i]);
        if (load_split(paths[0], paths[1], opt->max_train, &data->train) != 0) return -1;
        if (load_split(paths[2], paths[3], opt->max_test, &data->test) != 0) {
            dataset_free(&data->train);
            return -1;
        }
        if (data->train.d != data->test.d) {
            fprintf(stderr, "error: training images have %zu pixels, test images %zu\n",
                    data->train.d, data->test.d);
            ex_data_free(data);
            return -1;
        }
    }

    if (opt->scaling == EX_SCALE_STANDARDIZE) standardize_scalar(data);
    if (opt->scaling == EX_SCALE_STANDARDIZE_FEATURES) standardize_features(data);

    char scaling[96];
    if (opt->scaling == EX_SCALE_STANDARDIZE)
        snprintf(scaling, sizeof scaling, "%s (mean %.4f, std %.4f)", scaling_name(opt->scaling),
                 data->mean, data->std);
    else
        snprintf(scaling, sizeof scaling, "%s", scaling_name(opt->scaling));
    if (data->synthetic)
        snprintf(data->source, sizeof data->source,
                 "SYNTHETIC data (10 Gaussian clusters, seed %" PRIu64
                 ", not Fashion-MNIST): %zu training, %zu test examples, %zu features, %s",
                 opt->synthetic_seed, data->train.n, data->test.n, data->train.d, scaling);
    else
        snprintf(data->source, sizeof data->source,
                 "Fashion-MNIST from %s: %zu training, %zu test examples, %zu features, %s", dir,
                 data->train.n, data->test.n, data->train.d, scaling);
    printf("data: %s\n", data->source);
    return 0;
}

void ex_load_data_flags(const char *dir, size_t n_train, size_t n_test, int synthetic,
                        int fit_synthetic, ex_data *data)
{
    ex_data_options opt;
    ex_data_options_default(&opt);
    opt.dir = dir;
    opt.max_train = n_train;
    opt.max_test = n_test;
    opt.force_synthetic = synthetic;
    if (fit_synthetic && n_train) opt.synthetic_train = n_train;
    if (fit_synthetic && n_test) opt.synthetic_test = n_test;
    if (ex_load_data(&opt, data) != 0) exit(EXIT_FAILURE);
}

void ex_data_free(ex_data *data)
{
    if (data == NULL) return;
    dataset_free(&data->train);
    dataset_free(&data->test);
    memset(data, 0, sizeof *data);
}

/*=====================================================================
 * Minibatches
 *===================================================================*/

/* Uniform in [0, n), without modulo bias; n > 0. */
static size_t below(tni_rng *rng, size_t n)
{
    const uint64_t bound = (uint64_t)n;
    /* The largest multiple of bound: draws at or above it would favour small
     * results after the modulo. */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = tni_rng_next(rng);
    while (r >= limit);
    return (size_t)(r % bound);
}

/* A new epoch: the previous permutation shuffled again (Fisher-Yates),
 * which is as random as shuffling the identity and keeps each epoch's
 * order a function of the seed. */
static void new_epoch(ex_batcher *b)
{
    size_t *idx = b->order;
    for (size_t i = b->ds->n; i > 1; i--) {
        const size_t j = below(b->rng, i);
        const size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    b->pos = 0;
}

void ex_batcher_init(ex_batcher *b, const ex_dataset *ds, size_t batch, uint64_t seed)
{
    if (ds->n == 0) ex_die("ex_batcher_init: the data set is empty");
    if (batch == 0) ex_die("ex_batcher_init: the batch size must be > 0");
    b->ds = ds;
    b->batch = batch < ds->n ? batch : ds->n;
    b->order = ex_xmalloc(ds->n, sizeof(size_t));
    for (size_t i = 0; i < ds->n; i++) b->order[i] = i;
    b->x = ex_xmalloc(b->batch, ds->d * sizeof(double));
    b->y = ex_xmalloc(b->batch, ds->classes * sizeof(double));
    b->rng = ex_xmalloc(1, sizeof(tni_rng));
    tni_rng_seed(b->rng, seed);
    new_epoch(b);
}

size_t ex_batcher_next(ex_batcher *b)
{
    if (b->pos >= b->ds->n) {
        new_epoch(b);
        return 0;
    }
    const ex_dataset *ds = b->ds;
    const size_t left = ds->n - b->pos;
    const size_t rows = left < b->batch ? left : b->batch;
    for (size_t r = 0; r < rows; r++) {
        const size_t i = b->order[b->pos + r];
        memcpy(b->x + r * ds->d, ds->x + i * ds->d, ds->d * sizeof(double));
        memcpy(b->y + r * ds->classes, ds->y + i * ds->classes, ds->classes * sizeof(double));
    }
    b->pos += rows;
    return rows;
}

void ex_batcher_skip(ex_batcher *b, uint64_t steps)
{
    for (; steps > 0; steps--) {
        const size_t left = b->ds->n - b->pos;
        b->pos += left < b->batch ? left : b->batch;
        if (b->pos >= b->ds->n) new_epoch(b);
    }
}

uint64_t ex_batcher_steps_per_epoch(const ex_batcher *b)
{
    return (b->ds->n + b->batch - 1) / b->batch;
}

void ex_batcher_free(ex_batcher *b)
{
    if (b == NULL) return;
    free(b->order);
    free(b->x);
    free(b->y);
    free(b->rng);
    memset(b, 0, sizeof *b);
}

uint64_t ex_shuffle_seed(uint64_t init_seed)
{
    return init_seed ^ UINT64_C(0x5eed5eed5eed5eed);
}

/*=====================================================================
 * Scoring outputs
 *===================================================================*/

size_t ex_argmax(const double *v, size_t n)
{
    size_t best = SIZE_MAX;
    for (size_t j = 0; j < n; j++)
        if (!isnan(v[j]) && (best == SIZE_MAX || v[j] > v[best])) best = j;
    return best;
}

size_t ex_count_correct(const double *out, size_t n, size_t width, const int *labels)
{
    size_t correct = 0;
    for (size_t i = 0; i < n; i++)
        if (ex_argmax(out + i * width, width) == (size_t)labels[i]) correct++;
    return correct;
}

double ex_rel_diff(const double *a, const double *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

