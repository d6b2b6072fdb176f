/* common.c -- shared code of the example programs (common.h). */
#define _POSIX_C_SOURCE 200809L

#include "common.h"
#include "idx.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*=====================================================================
 * Errors and memory
 *===================================================================*/

void ex_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

void ex_check_status(const tn_ctx *ctx, tn_status st, const char *call, const char *file,
                     int line)
{
    if (st == TN_OK) return;
    ex_die("%s:%d: %s failed: %s (%s)", file, line, call, tn_status_string(st),
           tn_ctx_errmsg(ctx));
}

void *ex_xmalloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        ex_die("allocation of %zu x %zu bytes overflows", count, size);
    const size_t bytes = count * size;
    /* malloc(0) may return NULL, which would read as a failure below. */
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) ex_die("out of memory (%zu bytes)", bytes);
    return p;
}

void *ex_xcalloc(size_t count, size_t size)
{
    void *p = ex_xmalloc(count, size);
    memset(p, 0, count * size);
    return p;
}

/*=====================================================================
 * Timing
 *===================================================================*/

double ex_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) ex_die("clock_gettime: %s", strerror(errno));
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*=====================================================================
 * Random numbers
 *===================================================================*/

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void ex_rng_seed(ex_rng *rng, uint64_t seed)
{
    /* splitmix64 spreads nearby seeds (0, 1, 2...) over unrelated states and
     * never yields the all-zero state xoshiro cannot leave. */
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&sm);
}

uint64_t ex_rng_next(ex_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ex_rng_uniform(ex_rng *rng)
{
    return (double)(ex_rng_next(rng) >> 11) * 0x1.0p-53;
}

double ex_rng_normal(ex_rng *rng)
{
    /* Marsaglia's polar method; the second variate is dropped so the
     * generator stays a plain value with no cached state. */
    for (;;) {
        const double u = 2.0 * ex_rng_uniform(rng) - 1.0;
        const double v = 2.0 * ex_rng_uniform(rng) - 1.0;
        const double s = u * u + v * v;
        if (s > 0.0 && s < 1.0) return u * sqrt(-2.0 * log(s) / s);
    }
}

size_t ex_rng_below(ex_rng *rng, size_t n)
{
    const uint64_t bound = (uint64_t)n;
    /* The largest multiple of bound: draws at or above it would favour small
     * results after the modulo. */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = ex_rng_next(rng);
    while (r >= limit);
    return (size_t)(r % bound);
}

/*=====================================================================
 * Data
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

static int path_join(char *buf, size_t len, const char *dir, const char *name)
{
    const int w = snprintf(buf, len, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= len) {
        fprintf(stderr, "error: path too long: %s/%s\n", dir, name);
        return -1;
    }
    return 0;
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

/* Samples of the cluster model of SYN_SPREAD / SYN_NOISE, labels cycling
 * through the classes so every prefix is balanced. */
static void synth_split(ex_dataset *ds, size_t n, const double *means, ex_rng *rng)
{
    dataset_alloc(ds, n, SYN_DIM, EX_NUM_CLASSES);
    for (size_t i = 0; i < n; i++) {
        const int label = (int)(i % EX_NUM_CLASSES);
        const double *mu = means + (size_t)label * SYN_DIM;
        double *row = ds->x + i * SYN_DIM;
        for (size_t j = 0; j < SYN_DIM; j++) {
            const double v = mu[j] + SYN_NOISE * ex_rng_normal(rng);
            /* Clipped like pixel intensities, so the scaling code sees the
             * same range as for the real images. */
            row[j] = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
        }
        set_label(ds, i, label);
    }
}

static void make_synthetic(const ex_data_options *opt, ex_data *data)
{
    ex_rng rng;
    ex_rng_seed(&rng, opt->synthetic_seed);
    double *means = ex_xmalloc(EX_NUM_CLASSES * SYN_DIM, sizeof(double));
    for (size_t e = 0; e < EX_NUM_CLASSES * SYN_DIM; e++)
        means[e] = 0.5 + (ex_rng_next(&rng) >> 63 ? SYN_SPREAD : -SYN_SPREAD);
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
        if (path_join(path, sizeof path, dir, names[i]) != 0) {
            *is_error = 1;
            return 1;
        }
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
            if (path_join(paths[i], sizeof paths[i], dir, names[i]) != 0) return -1;
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

void ex_shuffle(size_t *idx, size_t n, ex_rng *rng)
{
    for (size_t i = n; i > 1; i--) {
        const size_t j = ex_rng_below(rng, i);
        const size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

void ex_gather(const ex_dataset *ds, const size_t *idx, size_t count, double *x, double *y)
{
    for (size_t r = 0; r < count; r++) {
        memcpy(x + r * ds->d, ds->x + idx[r] * ds->d, ds->d * sizeof(double));
        if (y) memcpy(y + r * ds->classes, ds->y + idx[r] * ds->classes,
                      ds->classes * sizeof(double));
    }
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
    ex_rng_seed(&b->rng, seed);
    ex_batcher_restart(b);
}

size_t ex_batcher_next(ex_batcher *b)
{
    if (b->pos >= b->ds->n) {
        ex_batcher_restart(b);
        return 0;
    }
    const size_t left = b->ds->n - b->pos;
    const size_t rows = left < b->batch ? left : b->batch;
    ex_gather(b->ds, b->order + b->pos, rows, b->x, b->y);
    b->pos += rows;
    return rows;
}

void ex_batcher_restart(ex_batcher *b)
{
    /* Shuffling the previous permutation again is as random as starting from
     * the identity, and keeps each epoch's order a function of the seed. */
    ex_shuffle(b->order, b->ds->n, &b->rng);
    b->pos = 0;
}

void ex_batcher_free(ex_batcher *b)
{
    if (b == NULL) return;
    free(b->order);
    free(b->x);
    free(b->y);
    memset(b, 0, sizeof *b);
}

/*=====================================================================
 * Training and evaluation
 *===================================================================*/

tn_status ex_train_epoch(tn_trainer *tr, ex_batcher *b, double *mean_loss)
{
    double total = 0.0;
    size_t seen = 0, rows;
    while ((rows = ex_batcher_next(b)) > 0) {
        double loss;
        const tn_status st = tn_trainer_step(tr, b->x, b->y, rows, &loss);
        if (st != TN_OK) {
            ex_batcher_restart(b);
            return st;
        }
        /* Weighted by rows: the last batch of an epoch may be short. */
        total += loss * (double)rows;
        seen += rows;
    }
    if (mean_loss) *mean_loss = seen ? total / (double)seen : 0.0;
    return TN_OK;
}

double ex_cosine_lr(double base, size_t epoch, size_t epochs)
{
    const double pi = 3.14159265358979323846;
    if (epochs == 0) return base;
    /* Past the end the rate stays at its last value rather than rising again. */
    if (epoch >= epochs) epoch = epochs - 1;
    return base * 0.5 * (1.0 + cos(pi * (double)epoch / (double)epochs));
}

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

typedef tn_status (*predict_fn)(void *model, const double *x, size_t n, double *out);

static tn_status predict_trainer(void *model, const double *x, size_t n, double *out)
{
    return tn_trainer_predict(model, x, n, out);
}

static tn_status predict_net(void *model, const double *x, size_t n, double *out)
{
    return tn_net_forward(model, x, n, out);
}

/* Chunks bound the output buffer (and the library's workspace) however large
 * the data set. */
static tn_status chunked_accuracy(predict_fn predict, void *model, const ex_dataset *ds,
                                  size_t chunk, double *acc)
{
    if (ds->n == 0) ex_die("accuracy of an empty data set");
    if (chunk == 0) chunk = EX_EVAL_CHUNK;
    if (chunk > ds->n) chunk = ds->n;
    double *out = ex_xmalloc(chunk, ds->classes * sizeof(double));
    size_t correct = 0;
    tn_status st = TN_OK;
    for (size_t i = 0; i < ds->n && st == TN_OK; i += chunk) {
        const size_t rows = ds->n - i < chunk ? ds->n - i : chunk;
        st = predict(model, ds->x + i * ds->d, rows, out);
        if (st == TN_OK) correct += ex_count_correct(out, rows, ds->classes, ds->labels + i);
    }
    free(out);
    if (st == TN_OK) *acc = (double)correct / (double)ds->n;
    return st;
}

tn_status ex_trainer_accuracy(tn_trainer *tr, const ex_dataset *ds, size_t chunk, double *acc)
{
    return chunked_accuracy(predict_trainer, tr, ds, chunk, acc);
}

tn_status ex_net_accuracy(tn_net *net, const ex_dataset *ds, size_t chunk, double *acc)
{
    if (net && tn_net_output_dim(net) != ds->classes)
        ex_die("ex_net_accuracy: the network has %zu outputs, the data %zu classes",
               tn_net_output_dim(net), ds->classes);
    return chunked_accuracy(predict_net, net, ds, chunk, acc);
}

/*=====================================================================
 * Networks
 *===================================================================*/

void ex_mlp_spec_default(ex_mlp_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->input = 784;
    spec->width = 512;
    spec->hidden_layers = 2;
    spec->outputs = EX_NUM_CLASSES;
    spec->act = TN_ACT_RELU;
    spec->parameterization = TN_PARAM_STANDARD;
    spec->sigma_w = 0.0;
    spec->sigma_b = -1.0;
    spec->seed = 1;
}

tn_status ex_build_mlp(tn_ctx *ctx, const ex_mlp_spec *spec, tn_net **out)
{
    const size_t shape[1] = {spec->input};
    tn_net *net = NULL;
    *out = NULL;
    tn_status st = tn_net_create(ctx, shape, 1, &net);
    for (size_t l = 0; l < spec->hidden_layers && st == TN_OK; l++) {
        st = tn_net_add_dense(net, spec->width);
        if (st == TN_OK) st = tn_net_add_activation(net, spec->act);
    }
    if (st == TN_OK) st = tn_net_add_dense(net, spec->outputs);
    if (st == TN_OK) st = tn_net_set(net, TN_NET_PARAMETERIZATION, spec->parameterization);
    if (st == TN_OK && spec->sigma_w > 0) st = tn_net_set(net, TN_NET_SIGMA_W, spec->sigma_w);
    if (st == TN_OK && spec->sigma_b >= 0) st = tn_net_set(net, TN_NET_SIGMA_B, spec->sigma_b);
    if (st == TN_OK) st = tn_net_init(net, spec->seed);
    if (st != TN_OK) {
        tn_net_free(net);
        return st;
    }
    *out = net;
    return TN_OK;
}

/*=====================================================================
 * Command line
 *===================================================================*/

/* Whole numbers only: strtoull alone would accept "-1" (wrapping it),
 * leading blanks and trailing junk. */
static int parse_u64(const char *s, uint64_t *v)
{
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    const unsigned long long r = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *v = (uint64_t)r;
    return 0;
}

static int parse_value(const ex_arg *a, const char *s)
{
    switch (a->kind) {
    case EX_ARG_SIZE: {
        uint64_t v;
        if (parse_u64(s, &v) != 0 || v > SIZE_MAX) return -1;
        *(size_t *)a->value = (size_t)v;
        return 0;
    }
    case EX_ARG_U64: return parse_u64(s, (uint64_t *)a->value);
    case EX_ARG_INT: {
        char *end;
        errno = 0;
        const long v = strtol(s, &end, 10);
        if (end == s || *end != '\0' || errno != 0 || v < INT_MIN || v > INT_MAX) return -1;
        *(int *)a->value = (int)v;
        return 0;
    }
    case EX_ARG_DOUBLE: {
        char *end;
        errno = 0;
        const double v = strtod(s, &end);
        if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
        *(double *)a->value = v;
        return 0;
    }
    case EX_ARG_STRING: *(const char **)a->value = s; return 0;
    case EX_ARG_FLAG: return -1;
    }
    return -1;
}

static void print_default(const ex_arg *a)
{
    switch (a->kind) {
    case EX_ARG_SIZE: printf("%zu", *(const size_t *)a->value); break;
    case EX_ARG_U64: printf("%" PRIu64, *(const uint64_t *)a->value); break;
    case EX_ARG_INT: printf("%d", *(const int *)a->value); break;
    case EX_ARG_DOUBLE: printf("%g", *(const double *)a->value); break;
    case EX_ARG_STRING: {
        const char *s = *(const char *const *)a->value;
        printf("%s", s ? s : "(none)");
        break;
    }
    case EX_ARG_FLAG: printf("%s", *(const int *)a->value ? "on" : "off"); break;
    }
}

static void print_usage(const char *prog, const ex_arg *args, size_t nargs, const char *about)
{
    printf("usage: %s [options]\n", prog);
    if (about) printf("%s\n", about);
    printf("options:\n");
    for (size_t i = 0; i < nargs; i++) {
        const char *meta = args[i].kind == EX_ARG_FLAG     ? ""
                           : args[i].kind == EX_ARG_DOUBLE ? " X"
                           : args[i].kind == EX_ARG_STRING ? " S"
                                                           : " N";
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", args[i].name, meta);
        printf("  %-20s %s (default ", flag, args[i].help ? args[i].help : "");
        print_default(&args[i]);
        printf(")\n");
    }
    printf("  %-20s this text\n", "--help");
}

static _Noreturn void usage_error(const char *prog, const char *fmt, ...) EX_PRINTF(2, 3);

static void usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

void ex_parse_args(int argc, char **argv, const ex_arg *args, size_t nargs, const char *about)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "example";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(prog, args, nargs, about);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) usage_error(prog, "unexpected argument '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        const size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const ex_arg *a = NULL;
        for (size_t k = 0; k < nargs && a == NULL; k++)
            if (strlen(args[k].name) == name_len && strncmp(args[k].name, name, name_len) == 0)
                a = &args[k];
        if (a == NULL) usage_error(prog, "unknown option '%s'", arg);
        if (a->kind == EX_ARG_FLAG) {
            if (eq) usage_error(prog, "option '%s' takes no value", arg);
            *(int *)a->value = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL) {
            if (i + 1 >= argc) usage_error(prog, "option '%s' needs a value", arg);
            value = argv[++i];
        }
        if (parse_value(a, value) != 0)
            usage_error(prog, "bad value for --%s: '%s'", a->name, value);
    }
}

/*=====================================================================
 * Contexts and names
 *===================================================================*/

tn_ctx *ex_ctx_create(int threads)
{
    tn_ctx *ctx = NULL;
    const tn_status st = tn_ctx_create(&ctx);
    /* No context yet, so no message to read beyond the status. */
    if (st != TN_OK) ex_die("tn_ctx_create: %s", tn_status_string(st));
    EX_CHECK(ctx, tn_ctx_set_threads(ctx, threads));
    return ctx;
}

typedef struct name_value {
    const char *name;
    int value;
} name_value;

static int from_name(const char *what, const char *name, const name_value *table, size_t n,
                     const char *choices)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, table[i].name) == 0) return table[i].value;
    ex_die("unknown %s '%s' (%s)", what, name, choices);
}

int ex_optimizer_from_name(const char *name)
{
    static const name_value table[] = {{"sgd", TN_OPT_SGD},         {"momentum", TN_OPT_MOMENTUM},
                                       {"nesterov", TN_OPT_NESTEROV}, {"rmsprop", TN_OPT_RMSPROP},
                                       {"adam", TN_OPT_ADAM}};
    return from_name("optimizer", name, table, sizeof table / sizeof table[0],
                     "sgd, momentum, nesterov, rmsprop, adam");
}

int ex_parameterization_from_name(const char *name)
{
    static const name_value table[] = {{"standard", TN_PARAM_STANDARD}, {"ntk", TN_PARAM_NTK}};
    return from_name("parameterization", name, table, sizeof table / sizeof table[0],
                     "standard, ntk");
}

int ex_loss_from_name(const char *name)
{
    static const name_value table[] = {{"xent", TN_LOSS_SOFTMAX_XENT}, {"mse", TN_LOSS_MSE}};
    return from_name("loss", name, table, sizeof table / sizeof table[0], "xent, mse");
}

tn_activation ex_activation_from_name(const char *name)
{
    static const name_value table[] = {
        {"relu", TN_ACT_RELU},       {"leaky_relu", TN_ACT_LEAKY_RELU}, {"tanh", TN_ACT_TANH},
        {"sigmoid", TN_ACT_SIGMOID}, {"erf", TN_ACT_ERF},               {"gelu", TN_ACT_GELU},
        {"softplus", TN_ACT_SOFTPLUS}, {"identity", TN_ACT_IDENTITY}};
    return (tn_activation)from_name(
        "activation", name, table, sizeof table / sizeof table[0],
        "relu, leaky_relu, tanh, sigmoid, erf, gelu, softplus, identity");
}

/*=====================================================================
 * Training sessions
 *===================================================================*/

void ex_train_config_default(ex_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 8;
    cfg->batch = 128;
    cfg->lr = 1e-3;
    cfg->schedule = "cosine";
    cfg->optimizer = "adam";
    cfg->loss = "xent";
    cfg->width = 256;
    cfg->depth = 2;
    cfg->param = "standard";
    cfg->seed = 1;
    /* One BLAS thread: measured on the 2-core target, two threads are
     * faster only when the machine is otherwise idle; with other jobs
     * running, every GEMM waits for its second thread to be scheduled and
     * an epoch took 5 to 10 times longer.  --threads 2 on a quiet machine. */
    cfg->threads = 1;
    cfg->n_train = 0;
    cfg->n_test = 0;
    cfg->data_dir = NULL;
    cfg->synthetic = 0;
}

void ex_train_config_args(ex_train_config *cfg, ex_arg *args)
{
    const ex_arg table[EX_TRAIN_NARGS] = {
        {"epochs", EX_ARG_SIZE, &cfg->epochs, "passes over the training set"},
        {"batch", EX_ARG_SIZE, &cfg->batch, "examples per step"},
        {"lr", EX_ARG_DOUBLE, &cfg->lr, "initial learning rate"},
        {"schedule", EX_ARG_STRING, &cfg->schedule, "learning rate by epoch: cosine or constant"},
        {"optimizer", EX_ARG_STRING, &cfg->optimizer, "sgd, momentum, nesterov, rmsprop or adam"},
        {"loss", EX_ARG_STRING, &cfg->loss, "xent (softmax cross-entropy) or mse (one-hot targets)"},
        {"width", EX_ARG_SIZE, &cfg->width, "units per hidden layer"},
        {"depth", EX_ARG_SIZE, &cfg->depth, "hidden layers"},
        {"param", EX_ARG_STRING, &cfg->param, "parameterization: standard or ntk"},
        {"seed", EX_ARG_U64, &cfg->seed, "seed of the initialization and the shuffles"},
        {"threads", EX_ARG_INT, &cfg->threads, "BLAS threads"},
        {"train", EX_ARG_SIZE, &cfg->n_train, "use the first N training examples (0: all)"},
        {"test", EX_ARG_SIZE, &cfg->n_test, "use the first N test examples (0: all)"},
        {"data", EX_ARG_STRING, &cfg->data_dir,
         "Fashion-MNIST directory (else $" EX_FASHION_MNIST_ENV " or " EX_FASHION_MNIST_DIR ")"},
        {"synthetic", EX_ARG_FLAG, &cfg->synthetic, "use the synthetic data set"},
    };
    memcpy(args, table, sizeof table);
}

static int schedule_is_cosine(const char *schedule)
{
    if (strcmp(schedule, "cosine") == 0) return 1;
    if (strcmp(schedule, "constant") == 0) return 0;
    ex_die("unknown schedule '%s' (cosine, constant)", schedule);
}

void ex_train_session_open(const ex_train_config *cfg, ex_train_session *s)
{
    memset(s, 0, sizeof *s);
    if (cfg->epochs == 0 || cfg->batch == 0 || cfg->width == 0)
        ex_die("--epochs, --batch and --width must be > 0");
    /* Every name is checked before the data is read, so a typo fails at once. */
    const int opt_kind = ex_optimizer_from_name(cfg->optimizer);
    const int loss_kind = ex_loss_from_name(cfg->loss);
    (void)schedule_is_cosine(cfg->schedule);

    ex_data_options dopt;
    ex_data_options_default(&dopt);
    dopt.dir = cfg->data_dir;
    dopt.max_train = cfg->n_train;
    dopt.max_test = cfg->n_test;
    dopt.force_synthetic = cfg->synthetic;
    if (ex_load_data(&dopt, &s->data) != 0) exit(EXIT_FAILURE);

    s->ctx = ex_ctx_create(cfg->threads);
    ex_mlp_spec_default(&s->spec);
    s->spec.input = s->data.train.d;
    s->spec.width = cfg->width;
    s->spec.hidden_layers = cfg->depth;
    s->spec.outputs = s->data.train.classes;
    s->spec.parameterization = ex_parameterization_from_name(cfg->param);
    s->spec.seed = cfg->seed;
    EX_CHECK(s->ctx, ex_build_mlp(s->ctx, &s->spec, &s->net));

    EX_CHECK(s->ctx, tn_trainer_create(s->net, &s->tr));
    EX_CHECK(s->ctx, tn_trainer_set(s->tr, TN_TRAIN_LOSS, loss_kind));
    EX_CHECK(s->ctx, tn_trainer_set(s->tr, TN_TRAIN_OPTIMIZER, opt_kind));
    EX_CHECK(s->ctx, tn_trainer_set(s->tr, TN_TRAIN_LEARNING_RATE, cfg->lr));

    printf("net: %zu -> %zu x %zu ReLU -> %zu, %s parameterization, %zu parameters\n",
           s->spec.input, cfg->depth, cfg->width, s->spec.outputs, cfg->param,
           tn_net_num_params(s->net));
}

double ex_train_session_run(const ex_train_config *cfg, ex_train_session *s, const char *model)
{
    const int cosine = schedule_is_cosine(cfg->schedule);
    /* The loss is named only when it is not full_training's, so that
     * program's output stays as it was. */
    char loss_note[32] = "";
    if (ex_loss_from_name(cfg->loss) != TN_LOSS_SOFTMAX_XENT)
        snprintf(loss_note, sizeof loss_note, ", %s loss", cfg->loss);
    printf("training: %s, lr %g (%s), batch %zu, %zu epochs, seed %" PRIu64 ", %d threads%s\n",
           cfg->optimizer, cfg->lr, cfg->schedule, cfg->batch, cfg->epochs, cfg->seed,
           cfg->threads, loss_note);
    if (model) printf("model: %s\n", model);
    printf("%5s  %9s  %10s  %9s  %8s\n", "epoch", "lr", "train_loss", "test_acc", "seconds");
    fflush(stdout);

    ex_batcher batcher;
    /* The shuffles get their own seed stream, distinct from the init's. */
    ex_batcher_init(&batcher, &s->data.train, cfg->batch,
                    cfg->seed ^ UINT64_C(0x5eed5eed5eed5eed));
    const double t0 = ex_now();
    double acc = 0.0;
    for (size_t epoch = 0; epoch < cfg->epochs; epoch++) {
        const double epoch_lr = cosine ? ex_cosine_lr(cfg->lr, epoch, cfg->epochs) : cfg->lr;
        double loss;
        EX_CHECK(s->ctx, tn_trainer_set(s->tr, TN_TRAIN_LEARNING_RATE, epoch_lr));
        EX_CHECK(s->ctx, ex_train_epoch(s->tr, &batcher, &loss));
        EX_CHECK(s->ctx, ex_trainer_accuracy(s->tr, &s->data.test, 0, &acc));
        printf("%5zu  %9.2e  %10.4f  %9.4f  %8.1f\n", epoch + 1, epoch_lr, loss, acc,
               ex_now() - t0);
        fflush(stdout);
    }
    printf("final test accuracy %.4f after %zu epochs, %.1f s\n", acc, cfg->epochs,
           ex_now() - t0);
    fflush(stdout);
    ex_batcher_free(&batcher);
    return acc;
}

void ex_train_session_close(ex_train_session *s)
{
    if (s == NULL) return;
    tn_trainer_free(s->tr);
    tn_net_free(s->net);
    tn_ctx_free(s->ctx);
    ex_data_free(&s->data);
    memset(s, 0, sizeof *s);
}

/*=====================================================================
 * Lists, files, fits and plots
 *===================================================================*/

size_t ex_parse_list(const char *flag, const char *text, double *out, size_t cap, int whole)
{
    size_t n = 0;
    const char *p = text;
    if (p == NULL || *p == '\0') ex_die("--%s: the list is empty", flag);
    for (;;) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        /* strtod accepts leading blanks, "nan" and "inf": a list of plain
         * numbers has none of them. */
        if (end == p || *p == ' ' || *p == '\t' || errno == ERANGE || !isfinite(v) ||
            (*end != ',' && *end != '\0'))
            ex_die("--%s: '%s' is not a comma-separated list of numbers", flag, text);
        if (whole && (v < 0 || v != floor(v) || v > 9007199254740992.0))
            ex_die("--%s: %g is not a whole number >= 0", flag, v);
        if (n == cap) ex_die("--%s: at most %zu values", flag, cap);
        out[n++] = v;
        if (*end == '\0') break;
        p = end + 1;
    }
    return n;
}

int ex_mkdir_p(const char *dir)
{
    char path[4096];
    const size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) {
        fprintf(stderr, "error: bad directory name '%s'\n", dir);
        return -1;
    }
    memcpy(path, dir, len + 1);
    /* Each prefix ending before a '/', then the whole path; EEXIST is fine
     * only for what is already a directory. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        const char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0) {
            const int why = errno;
            struct stat sb;
            if (why != EEXIST || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                fprintf(stderr, "error: cannot create directory %s: %s\n", path,
                        strerror(why == EEXIST ? ENOTDIR : why));
                return -1;
            }
        }
        path[i] = saved;
    }
    return 0;
}

void ex_join_path(char *buf, size_t len, const char *dir, const char *name)
{
    if (path_join(buf, len, dir, name) != 0) exit(EXIT_FAILURE);
}

double ex_loglog_slope(const double *x, const double *y, size_t n)
{
    double sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(isfinite(x[i]) && isfinite(y[i]) && x[i] > 0 && y[i] > 0)) continue;
        const double lx = log(x[i]), ly = log(y[i]);
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
        m++;
    }
    const double den = (double)m * sxx - sx * sx;
    if (m < 2 || !(den > 0)) return NAN;
    return ((double)m * sxy - sx * sy) / den;
}

void ex_gnuplot_quote(char *buf, size_t len, const char *s)
{
    size_t j = 0;
    for (; *s; s++) {
        const size_t need = *s == '\'' ? 2 : 1;
        if (j + need >= len) ex_die("gnuplot string too long: %s", s);
        if (*s == '\'') buf[j++] = '\'';
        buf[j++] = *s;
    }
    buf[j] = '\0';
}

/* The executable `name` on $PATH into buf; 0 when found. */
static int find_in_path(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        const size_t dlen = colon ? (size_t)(colon - path) : strlen(path);
        /* Relative entries (and the empty one, the current directory) are
         * skipped: the program is started after a chdir, where they would
         * name something else. */
        if (dlen > 0 && path[0] == '/') {
            const int w = snprintf(buf, len, "%.*s/%s", (int)dlen, path, name);
            if (w > 0 && (size_t)w < len && access(buf, X_OK) == 0) return 0;
        }
        if (colon == NULL) break;
        path = colon + 1;
    }
    return -1;
}

int ex_gnuplot(const char *dir, const char *script)
{
    char exe[4096];
    if (find_in_path("gnuplot", exe, sizeof exe) != 0) {
        printf("gnuplot not found: to draw the plots, install it (Debian: apt install "
               "gnuplot-nox) and run\n  cd '%s' && gnuplot '%s'\n", dir, script);
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    /* fork + execv rather than system(): the script's path goes to gnuplot
     * as one argument, never through a shell. */
    const pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "error: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        char *const argv[] = {exe, (char *)script, NULL};
        if (chdir(dir) != 0) {
            fprintf(stderr, "error: cd %s: %s\n", dir, strerror(errno));
            _exit(126);
        }
        execv(exe, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "error: waitpid: %s\n", strerror(errno));
            return -1;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "error: gnuplot '%s' failed (status %d)\n", script,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

FILE *ex_open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int ex_close_out(FILE *f, const char *path)
{
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "error: writing %s failed\n", path);
        return -1;
    }
    return 0;
}
