/*
 * kernel_regression.c -- infinite-width networks as predictors, and finite
 * networks' kernels converging to them.
 *
 *   1. Kernel regression on Fashion-MNIST with the infinite-width NNGP and
 *      NTK (tn_ntk_analytic) of four networks -- an MLP, CNN-THIN with a
 *      flatten readout, CNN-THIN with global average pooling, a small wide
 *      residual network -- by Gaussian-process inference (tn_gp) at growing
 *      training-set sizes N: the test accuracy of the NNGP posterior mean
 *      and of the NTK-GP mean at t = infinity (the infinitely wide network
 *      trained to convergence on MSE), the seconds the kernels and the
 *      inference took, the memory they took.  accuracy.csv, accuracy.png.
 *   2. Monte Carlo kernels (tn_ntk_monte_carlo: the empirical kernels of
 *      finite networks averaged over initializations) against the analytic
 *      ones as the width and the number of samples grow: relative error,
 *      log-log slopes.  monte_carlo.csv, monte_carlo.png.
 *
 * The images are downsampled (--downsample 4: 28 x 28 -> 7 x 7, the mean of
 * each 4 x 4 block) for every network alike: a kernel with pooling carries
 * every pixel pair through the layers before the pooling, so its cost grows
 * with the square of the pixels (16^2 = 256 times more at 28 x 28 than at
 * 7 x 7; docs/ntk.md).
 *
 *   ./build/examples/kernel_regression [--sizes 50,100,200,400] [--downsample 4] ... (--help)
 */
#include "support/cli.h"
#include "support/data.h"
#include "support/nets.h"
#include "support/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 16

typedef struct options {
    const char *sizes, *archs, *mc_arch, *mc_widths, *mc_samples, *out, *data_dir;
    size_t n_test, downsample, mc_images, mc_reps, budget_mib;
    double reg;
    uint64_t seed;
    int threads, synthetic;
} options;

/* The networks compared: an architecture of support/nets.h and its readout. */
typedef struct model {
    const char *name;
    ex_arch arch;
    int flatten_readout;
} model;

static const model models[] = {
    {"mlp", EX_ARCH_MLP, 0},
    {"cnn-flatten", EX_ARCH_CNN_THIN, 1},
    {"cnn-gap", EX_ARCH_CNN_THIN, 0},
    {"wrn", EX_ARCH_WRN, 0},
};
#define NUM_MODELS (sizeof models / sizeof models[0])

static const model *model_from_name(const char *name)
{
    for (size_t m = 0; m < NUM_MODELS; m++)
        if (strcmp(models[m].name, name) == 0) return &models[m];
    ex_die("unknown network '%s' (mlp, cnn-flatten, cnn-gap, wrn)", name);
}

/* "mlp,cnn-gap" into models; returns how many. */
static size_t parse_models(const char *text, const model **out, size_t cap)
{
    char buf[256];
    if (strlen(text) >= sizeof buf) ex_die("--archs is too long");
    strcpy(buf, text);
    size_t n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap) ex_die("--archs: at most %zu networks", cap);
        out[n++] = model_from_name(tok);
    }
    if (n == 0) ex_die("--archs is empty");
    return n;
}

/* The network of m on side x side x 1 images (the MLP reads them as
 * vectors), NTK parameterization, ReLU, the library's sigmas; `width` units
 * or channels (the analytic kernels do not depend on it). */
static tn_net *make_net(tn_ctx *ctx, const model *m, size_t side, size_t width, uint64_t seed)
{
    ex_net_spec spec;
    ex_net_spec_default(&spec);
    spec.arch = m->arch;
    ex_arch_defaults(m->arch, &spec.width, &spec.depth);
    spec.width = width;
    spec.input = side * side;
    spec.image[0] = spec.image[1] = side;
    spec.image[2] = 1;
    spec.flatten_readout = m->flatten_readout;
    spec.parameterization = TN_PARAM_NTK;
    spec.seed = seed;
    tn_net *net = NULL;
    EX_CHECK(ctx, ex_build_net(ctx, &spec, &net));
    return net;
}

/* The images of ds (28 x 28) averaged over f x f blocks: n x (28/f)^2. */
static double *downsample(const ex_dataset *ds, size_t f)
{
    const size_t side = 28, s = side / f;
    double *out = ex_xcalloc(ds->n * s * s, sizeof(double));
    for (size_t e = 0; e < ds->n; e++)
        for (size_t p = 0; p < side; p++)
            for (size_t q = 0; q < side; q++)
                out[(e * s + p / f) * s + q / f] +=
                    ds->x[(e * side + p) * side + q] / (double)(f * f);
    return out;
}

/* An NTK handle of net: traced kernels, the budget of the options. */
static tn_ntk *make_ntk(tn_ctx *ctx, tn_net *net, const options *o)
{
    tn_ntk *k = NULL;
    EX_CHECK(ctx, tn_ntk_create(net, &k));
    EX_CHECK(ctx, tn_ntk_set(k, TN_NTK_OUTPUTS, TN_NTK_TRACE));
    EX_CHECK(ctx, tn_ntk_set(k, TN_NTK_MEMORY_BUDGET, (double)o->budget_mib * 1048576.0));
    return k;
}

static double mean_diagonal(const double *K, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += K[i * n + i];
    return s / (double)n;
}

/*---------------------------------------------------------------------
 * 1. Kernel regression at growing N
 *-------------------------------------------------------------------*/

/* The kernels of the first N training images grow by blocks: the rows of
 * the images new at this size against all N (the new-new block computed
 * once, its upper triangle mirrored, so the matrix is exactly symmetric),
 * and the test images against the new columns.  big: ld x ld. */
static void grow(double *big, size_t ld, const double *rows, size_t prev, size_t N)
{
    for (size_t i = 0; i < N - prev; i++)
        for (size_t j = 0; j < N; j++)
            if (j < prev || j >= prev + i) {
                big[(prev + i) * ld + j] = rows[i * N + j];
                big[j * ld + prev + i] = rows[i * N + j];
            }
}

/* The leading r x c block of big (ld columns), contiguous. */
static void lead_block(const double *big, size_t ld, size_t r, size_t c, double *out)
{
    for (size_t i = 0; i < r; i++) memcpy(out + i * c, big + i * ld, c * sizeof(double));
}

/* Accuracy of the posterior mean (M x classes) on te. */
static double accuracy(const double *mean, const ex_dataset *te)
{
    return (double)ex_count_correct(mean, te->n, te->classes, te->labels) / (double)te->n;
}

/* acc[s * 2 + 0 / 1]: NNGP and NTK accuracy at sizes[s]. */
static void regress(tn_ctx *ctx, const model *m, const options *o, const ex_data *data,
                    const double *xtr, const double *xte, size_t side, const double *sizes,
                    size_t ns, double *acc)
{
    const size_t Nmax = (size_t)sizes[ns - 1], M = data->test.n, O = data->train.classes;
    const size_t d = side * side;
    tn_net *net = make_net(ctx, m, side, m->arch == EX_ARCH_MLP ? 64 : 4, o->seed);
    tn_ntk *k = make_ntk(ctx, net, o);
    double *K = ex_xmalloc(Nmax * Nmax, sizeof(double)), *T = ex_xmalloc(Nmax * Nmax, sizeof(double));
    double *Ks = ex_xmalloc(M * Nmax, sizeof(double)), *Ts = ex_xmalloc(M * Nmax, sizeof(double));
    /* The blocks computed at each size, then the leading N x N kernels. */
    const size_t nblock = Nmax * (M > Nmax ? M : Nmax);
    double *Kb = ex_xmalloc(nblock, sizeof(double)), *Tb = ex_xmalloc(nblock, sizeof(double));
    double *mean = ex_xmalloc(M * O, sizeof(double));
    EX_CHECK(ctx, tn_ctx_reset_peak_memory(ctx));
    double kernel_s = 0.0;
    size_t prev = 0, entries = 0;
    for (size_t s = 0; s < ns; s++) {
        const size_t N = (size_t)sizes[s], nb = N - prev;
        const double t0 = ex_now();
        EX_CHECK(ctx, tn_ntk_analytic(k, xtr + prev * d, nb, xtr, N, Kb, Tb));
        grow(K, Nmax, Kb, prev, N);
        grow(T, Nmax, Tb, prev, N);
        EX_CHECK(ctx, tn_ntk_analytic(k, xte, M, xtr + prev * d, nb, Kb, Tb));
        for (size_t i = 0; i < M; i++) {
            memcpy(Ks + i * Nmax + prev, Kb + i * nb, nb * sizeof(double));
            memcpy(Ts + i * Nmax + prev, Tb + i * nb, nb * sizeof(double));
        }
        kernel_s += ex_now() - t0;
        entries += nb * N + M * nb;
        prev = N;

        /* Inference on the leading blocks.  Each kernel gets a ridge of
         * --reg times its mean diagonal (the kernels of deep nets are
         * nearly singular); one tn_gp per kernel, since tn_gp adds one
         * absolute ridge to both. */
        const double t1 = ex_now();
        double *Kn = Kb, *Tn = Tb, *Kx = ex_xmalloc(M * N, sizeof(double));
        double *Tx = ex_xmalloc(M * N, sizeof(double));
        lead_block(K, Nmax, N, N, Kn);
        lead_block(T, Nmax, N, N, Tn);
        lead_block(Ks, Nmax, M, N, Kx);
        lead_block(Ts, Nmax, M, N, Tx);
        tn_gp *g = NULL;
        EX_CHECK(ctx, tn_gp_create(ctx, Kn, NULL, N, O, data->train.y, &g));
        EX_CHECK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, o->reg * mean_diagonal(Kn, N)));
        EX_CHECK(ctx, tn_gp_nngp_posterior(g, Kx, NULL, M, mean, NULL));
        tn_gp_free(g);
        acc[s * 2 + 0] = accuracy(mean, &data->test);
        EX_CHECK(ctx, tn_gp_create(ctx, Kn, Tn, N, O, data->train.y, &g));
        EX_CHECK(ctx, tn_gp_set(g, TN_GP_DIAG_REG, o->reg * mean_diagonal(Tn, N)));
        EX_CHECK(ctx, tn_gp_ntk_posterior(g, INFINITY, Tx, Kx, NULL, M, mean, NULL));
        tn_gp_free(g);
        acc[s * 2 + 1] = accuracy(mean, &data->test);
        const double gp_s = ex_now() - t1;
        free(Kx);
        free(Tx);

        size_t peak = 0;
        EX_CHECK(ctx, tn_ctx_get_memory(ctx, NULL, &peak));
        /* What this program holds besides: the kernels at the largest N,
         * the blocks, the test-train kernels at this N. */
        const double own = (double)(2 * Nmax * Nmax + 2 * M * Nmax + 2 * nblock + 2 * M * N) *
                           sizeof(double);
        printf("%-12s %6zu  %9.4f  %9.4f  %9.1f  %9.2f  %9.1f  %10.1f  %9.1f\n", m->name, N,
               acc[s * 2], acc[s * 2 + 1], kernel_s, 1e6 * kernel_s / (double)entries, gp_s,
               (double)peak / 1048576.0, own / 1048576.0);
        fflush(stdout);
    }
    free(K), free(T), free(Ks), free(Ts), free(Kb), free(Tb), free(mean);
    tn_ntk_free(k);
    tn_net_free(net);
}

static void accuracy_plot(const options *o, const model **ms, size_t nm)
{
    FILE *f = ex_plot_open(o->out, "accuracy.gp", "kernel_regression", "accuracy.csv");
    if (f == NULL) return;
    fprintf(f, "set output 'accuracy.png'\n"
               "set title 'kernel regression with infinite-width kernels (Fashion-MNIST, "
               "%zu x %zu images)'\n"
               "set xlabel 'training images N'\nset ylabel 'test accuracy'\n"
               "set logscale x 2\nset key outside right top\nplot ",
               28 / o->downsample, 28 / o->downsample);
    /* A colour per network: NNGP solid, NTK dashed. */
    for (size_t m = 0; m < nm; m++)
        fprintf(f, "%s'accuracy.csv' skip 1 using 1:%zu with linespoints linecolor %zu "
                   "title '%s NNGP', '' skip 1 using 1:%zu with linespoints dashtype 2 "
                   "linecolor %zu title '%s NTK'",
                m ? ", " : "", 2 + 2 * m, m + 1, ms[m]->name, 3 + 2 * m, m + 1, ms[m]->name);
    fprintf(f, "\n");
    ex_plot_draw(f, o->out, "accuracy.gp");
}

/*---------------------------------------------------------------------
 * 2. Monte Carlo kernels -> analytic kernels
 *-------------------------------------------------------------------*/

/* The relative Frobenius error of one replicate's running means, added
 * squared into sq[0] (NNGP) and sq[1] (NTK). */
static void add_errors(const double *Ksum, const double *Tsum, size_t done, const double *Ka,
                       const double *Ta, size_t nn, double *Km, double *Tm, double *sq)
{
    for (size_t e = 0; e < nn; e++) {
        Km[e] = Ksum[e] / (double)done;
        Tm[e] = Tsum[e] / (double)done;
    }
    const double eK = ex_rel_diff(Km, Ka, nn), eT = ex_rel_diff(Tm, Ta, nn);
    sq[0] += eK * eK;
    sq[1] += eT * eT;
}

/* rows: width, samples, nngp error, ntk error (root mean square over the
 * replicates), seconds (cumulative at the width). */
static void monte_carlo(tn_ctx *ctx, const options *o, const double *x, size_t side)
{
    const model *m = model_from_name(o->mc_arch);
    const size_t n = o->mc_images, nn = n * n, R = o->mc_reps;
    double widths[MAX_LIST], samples[MAX_LIST];
    const size_t nw = ex_parse_list("mc-widths", o->mc_widths, widths, MAX_LIST, 1);
    const size_t nsa = ex_parse_list("mc-samples", o->mc_samples, samples, MAX_LIST, 1);
    for (size_t i = 0; i < nsa; i++)
        if (samples[i] < 1 || (i > 0 && samples[i] <= samples[i - 1]))
            ex_die("--mc-samples must be ascending and >= 1");
    for (size_t i = 0; i < nw; i++)
        if (widths[i] < 1) ex_die("--mc-widths must be >= 1");
    printf("\n2. Monte Carlo kernels (tn_ntk_monte_carlo, %s, %zu training images) against the "
           "analytic ones: relative Frobenius error ||K_mc - K_inf|| / ||K_inf||, root mean "
           "square over %zu replicates\n", m->name, n, R);
    double *Ka = ex_xmalloc(nn, sizeof(double)), *Ta = ex_xmalloc(nn, sizeof(double));
    double *Km = ex_xmalloc(nn, sizeof(double)), *Tm = ex_xmalloc(nn, sizeof(double));
    double *Ksum = ex_xmalloc(nn, sizeof(double)), *Tsum = ex_xmalloc(nn, sizeof(double));
    double *rows = ex_xcalloc(nw * nsa * 5, sizeof(double));
    {
        tn_net *net = make_net(ctx, m, side, 4, o->seed);
        tn_ntk *k = make_ntk(ctx, net, o);
        EX_CHECK(ctx, tn_ntk_analytic(k, x, n, NULL, 0, Ka, Ta));
        tn_ntk_free(k);
        tn_net_free(net);
    }
    printf("%8s  %8s  %12s  %12s  %9s\n", "width", "samples", "nngp error", "ntk error",
           "seconds");
    for (size_t wi = 0; wi < nw; wi++) {
        tn_net *net = make_net(ctx, m, side, (size_t)widths[wi], o->seed);
        tn_ntk *k = make_ntk(ctx, net, o);
        const double t0 = ex_now();
        for (size_t r = 0; r < R; r++) {
            memset(Ksum, 0, nn * sizeof(double));
            memset(Tsum, 0, nn * sizeof(double));
            /* Replicate r draws the networks seed + 1000000 (r + 1) + s,
             * s = 0, 1, ...: the means at growing counts share their
             * first samples, the replicates share none. */
            const uint64_t base = o->seed + 1000000u * (uint64_t)(r + 1);
            size_t done = 0;
            for (size_t si = 0; si < nsa; si++) {
                const size_t more = (size_t)samples[si] - done;
                EX_CHECK(ctx, tn_ntk_monte_carlo(k, base + done, more, x, n, NULL, 0, Km, Tm));
                for (size_t e = 0; e < nn; e++) {
                    Ksum[e] += (double)more * Km[e];
                    Tsum[e] += (double)more * Tm[e];
                }
                done += more;
                add_errors(Ksum, Tsum, done, Ka, Ta, nn, Km, Tm, rows + (wi * nsa + si) * 5 + 2);
            }
        }
        for (size_t si = 0; si < nsa; si++) {
            double *row = rows + (wi * nsa + si) * 5;
            row[0] = widths[wi];
            row[1] = samples[si];
            row[2] = sqrt(row[2] / (double)R);
            row[3] = sqrt(row[3] / (double)R);
            row[4] = ex_now() - t0;
            printf("%8.0f  %8.0f  %12.4e  %12.4e  %9.1f\n", row[0], row[1], row[2], row[3],
                   row[4]);
        }
        fflush(stdout);
        tn_ntk_free(k);
        tn_net_free(net);
    }
    /* The slopes of log error against log width at each sample count,
     * and against log samples at each width.  One sample's NTK fluctuates
     * around the limit by O(1/sqrt(width)) (plus an O(1/width) bias), so
     * its error falls like width^-0.5 and samples^-0.5 (until the bias is
     * reached); one sample's NNGP, (1/O) f(x)^T f(x'), is a mean of O
     * products of Gaussian outputs at any width, so its error falls with
     * the samples (samples^-0.5) and hardly with the width. */
    double xs[MAX_LIST], ek[MAX_LIST], et[MAX_LIST];
    for (size_t si = 0; si < nsa; si++) {
        for (size_t wi = 0; wi < nw; wi++) {
            const double *r = rows + (wi * nsa + si) * 5;
            xs[wi] = r[0], ek[wi] = r[2], et[wi] = r[3];
        }
        printf("slope against the width, %3.0f samples: NTK %6.3f  NNGP %6.3f   (expected: NTK "
               "-0.5, NNGP ~0)\n", samples[si], ex_loglog_slope(xs, et, nw),
               ex_loglog_slope(xs, ek, nw));
    }
    for (size_t wi = 0; wi < nw; wi++) {
        for (size_t si = 0; si < nsa; si++) {
            const double *r = rows + (wi * nsa + si) * 5;
            xs[si] = r[1], ek[si] = r[2], et[si] = r[3];
        }
        printf("slope against the samples, width %4.0f: NTK %6.3f  NNGP %6.3f   (expected -0.5 "
               "each, less once the O(1/width) bias shows)\n", widths[wi],
               ex_loglog_slope(xs, et, nsa), ex_loglog_slope(xs, ek, nsa));
    }

    if (ex_write_csv(o->out, "monte_carlo.csv", "width,samples,nngp_error,ntk_error,seconds", rows,
                     nw * nsa, 5) == 0) {
        FILE *f = ex_plot_open(o->out, "monte_carlo.gp", "kernel_regression", "monte_carlo.csv");
        if (f != NULL) {
            fprintf(f, "set output 'monte_carlo.png'\n"
                       "set title 'Monte Carlo kernels of %s against the analytic ones'\n"
                       "set xlabel 'width (channels)'\nset ylabel 'relative Frobenius error'\n"
                       "set logscale xy 2\nset key outside right top\nplot ",
                    m->name);
            for (size_t si = 0; si < nsa; si++)
                /* Rows are width-major: every nsa-th row from si is the
                 * sample count si at each width. */
                fprintf(f, "%s'monte_carlo.csv' skip 1 every %zu::%zu using 1:4 with "
                           "linespoints linecolor %zu title 'NTK, %.0f samples', "
                           "'' skip 1 every %zu::%zu using 1:3 with linespoints dashtype 2 "
                           "linecolor %zu title 'NNGP, %.0f samples'",
                        si ? ", " : "", nsa, si, si + 1, samples[si], nsa, si, si + 1,
                        samples[si]);
            fprintf(f, "\n");
            ex_plot_draw(f, o->out, "monte_carlo.gp");
        }
    }
    free(Ka), free(Ta), free(Km), free(Tm), free(Ksum), free(Tsum), free(rows);
}

int main(int argc, char **argv)
{
    options o = {
        .sizes = "50,100,200,400", .archs = "mlp,cnn-flatten,cnn-gap,wrn",
        .mc_arch = "cnn-flatten", .mc_widths = "16,32,64,128", .mc_samples = "1,4,16",
        .out = "kernel_regression", .data_dir = NULL,
        .n_test = 500, .downsample = 4, .mc_images = 10, .mc_reps = 8, .budget_mib = 512,
        .reg = 1e-4, .seed = 1, .threads = 1, .synthetic = 0,
    };
    const ex_arg args[] = {
        {"sizes", EX_ARG_STRING, &o.sizes, "ascending training-set sizes N"},
        {"test", EX_ARG_SIZE, &o.n_test, "test images (0: all)"},
        {"archs", EX_ARG_STRING, &o.archs, "networks: mlp, cnn-flatten, cnn-gap, wrn"},
        {"downsample", EX_ARG_SIZE, &o.downsample,
         "average f x f pixel blocks (1, 2, 4, 7: 28, 14, 7, 4 pixels a side)"},
        {"reg", EX_ARG_DOUBLE, &o.reg, "ridge, relative to each kernel's mean diagonal"},
        {"mc-arch", EX_ARG_STRING, &o.mc_arch, "network of the Monte Carlo part"},
        {"mc-images", EX_ARG_SIZE, &o.mc_images, "images of the Monte Carlo part (0: skip it)"},
        {"mc-widths", EX_ARG_STRING, &o.mc_widths, "widths (channels) of the Monte Carlo part"},
        {"mc-samples", EX_ARG_STRING, &o.mc_samples, "ascending sample counts"},
        {"mc-reps", EX_ARG_SIZE, &o.mc_reps, "independent replicates of each Monte Carlo mean"},
        {"budget-mib", EX_ARG_SIZE, &o.budget_mib, "kernel workspace budget in MiB"},
        {"out", EX_ARG_STRING, &o.out, "directory of the CSV files and plots"},
        {"seed", EX_ARG_U64, &o.seed, "seed of the initializations"},
        {"threads", EX_ARG_INT, &o.threads, "BLAS threads"},
        {"data", EX_ARG_STRING, &o.data_dir, EX_DATA_FLAG_HELP},
        {"synthetic", EX_ARG_FLAG, &o.synthetic, "use the synthetic data set"},
    };
    ex_parse_args(argc, argv, args, sizeof args / sizeof args[0],
                  "Kernel regression on Fashion-MNIST with the infinite-width NNGP and NTK of an "
                  "MLP, CNN-THIN (flatten and GAP readouts) and a WRN at growing N, and Monte "
                  "Carlo kernels converging to them.");
    double sizes[MAX_LIST];
    const size_t ns = ex_parse_list("sizes", o.sizes, sizes, MAX_LIST, 1);
    for (size_t s = 0; s < ns; s++)
        if (sizes[s] < 1 || (s > 0 && sizes[s] <= sizes[s - 1]))
            ex_die("--sizes must be ascending and >= 1");
    if (o.downsample == 0 || 28 % o.downsample != 0)
        ex_die("--downsample must divide 28 (1, 2, 4, 7, 14, 28)");
    if (!(o.reg >= 0)) ex_die("--reg must be >= 0");
    if (o.mc_images > 0 && o.mc_reps == 0) ex_die("--mc-reps must be >= 1");
    const model *ms[NUM_MODELS * 4];
    const size_t nm = parse_models(o.archs, ms, sizeof ms / sizeof ms[0]);
    (void)model_from_name(o.mc_arch);

    ex_data data;
    const size_t n_train = (size_t)sizes[ns - 1] > o.mc_images ? (size_t)sizes[ns - 1] : o.mc_images;
    ex_load_data_flags(o.data_dir, n_train, o.n_test, o.synthetic, 1, &data);
    if (data.train.n < n_train) ex_die("only %zu training images", data.train.n);
    if (data.train.d != 784) ex_die("expected 28 x 28 images, got %zu features", data.train.d);
    if (ex_mkdir_p(o.out) != 0) return EXIT_FAILURE;
    const size_t side = 28 / o.downsample;
    double *xtr = downsample(&data.train, o.downsample), *xte = downsample(&data.test, o.downsample);

    tn_ctx *ctx = ex_ctx_create(o.threads);
    printf("%d BLAS threads\n", o.threads);
    printf("images downsampled to %zu x %zu; NTK parameterization, ReLU, the library's sigmas; "
           "cnn: 4 convolutions 3x3 SAME; wrn: 3 groups of 1 block\n", side, side);
    const double start = ex_now();

    printf("\n1. GP inference with the infinite-width kernels (tn_ntk_analytic, tn_gp), %zu test "
           "images, ridge %g x mean diagonal\n", data.test.n, o.reg);
    printf("%-12s %6s  %9s  %9s  %9s  %9s  %9s  %10s  %9s\n", "network", "N", "nngp_acc",
           "ntk_acc", "kernel_s", "us/entry", "gp_s", "lib_MiB", "own_MiB");
    double *acc = ex_xmalloc(nm * ns * 2, sizeof(double));
    for (size_t m = 0; m < nm; m++)
        regress(ctx, ms[m], &o, &data, xtr, xte, side, sizes, ns, acc + m * ns * 2);
    /* accuracy.csv: N, then nngp and ntk accuracy of each network. */
    char header[1024];
    size_t len = (size_t)snprintf(header, sizeof header, "n_train");
    for (size_t m = 0; m < nm && len < sizeof header; m++)
        len += (size_t)snprintf(header + len, sizeof header - len, ",%s_nngp,%s_ntk", ms[m]->name,
                                ms[m]->name);
    double *table = ex_xmalloc(ns * (1 + 2 * nm), sizeof(double));
    for (size_t s = 0; s < ns; s++) {
        table[s * (1 + 2 * nm)] = sizes[s];
        for (size_t m = 0; m < nm; m++)
            for (int c = 0; c < 2; c++)
                table[s * (1 + 2 * nm) + 1 + 2 * m + c] = acc[(m * ns + s) * 2 + c];
    }
    if (ex_write_csv(o.out, "accuracy.csv", header, table, ns, 1 + 2 * nm) == 0)
        accuracy_plot(&o, ms, nm);

    if (o.mc_images > 0) monte_carlo(ctx, &o, xtr, side);
    printf("\ntotal %.1f s; files in %s\n", ex_now() - start, o.out);

    free(acc), free(table), free(xtr), free(xte);
    tn_ctx_free(ctx);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
