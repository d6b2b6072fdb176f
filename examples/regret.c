/*
 * regret.c -- Balduzzi, McWilliams and Butler-Yeoman 2017, "Neural Taylor
 * Approximations: Convergence and Exploration in Rectifier Networks", both
 * claims, with the library's regret and exploration measures:
 *
 *   convergence  an optimizer's regret against the best fixed point of the
 *                Taylor losses, R_T = sum_t l(f(theta_t; x_t), y_t) -
 *                min_V sum_t l_t(V), l_t(V) = l(f(theta_t; x_t) + J_t (V -
 *                theta_t), y_t), grows like sqrt(T): R_T / sqrt(T) stays
 *                bounded;
 *   exploration  adaptive optimizers (RMSProp, Adam) visit more activation
 *                configurations of the rectifier units than SGD does, and
 *                reach lower losses.
 *
 * The same network -- an MLP and Bai et al.'s CNN-THIN -- is trained by
 * SGD, momentum, RMSProp and Adam from ONE initialization on the SAME
 * minibatches of Fashion-MNIST, with the trainer recording every step's
 * Taylor loss (TN_TRAIN_RECORD_TAYLOR) and the diagnostics following a
 * probe batch of test images (TN_STAT_CONFIGS_VISITED,
 * TN_STAT_UNITS_EVER_SWITCHED).  At T = steps / 2^k (k = solves-1 ... 0)
 * tn_trainer_regret solves the convex problem min_V sum_{t<=T} l_t(V) over
 * the record so far.  The learning rates are each optimizer's textbook
 * default, untuned: SGD and momentum 0.01, RMSProp and Adam 0.001.
 *
 *   ./build/examples/regret                          # about 10 minutes on 2 cores
 *   ./build/examples/regret --steps 512 --archs mlp --optimizers sgd,adam
 *
 * Writes DIR/steps.csv (per step: loss and exploration), DIR/regret.csv
 * (per solve: R_T, the Taylor optimum, R_T / sqrt(T)), DIR/summary.csv (the
 * table), DIR/regret.gp and, with gnuplot, DIR/regret.png, DIR/loss.png and
 * DIR/exploration.png.
 */
#include "support/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 4
#define MAX_ARCHS 2
#define MAX_SOLVES 16

static const char *const opt_names[MAX_OPTS] = {"sgd", "momentum", "rmsprop", "adam"};
static const int opt_values[MAX_OPTS] = {TN_OPT_SGD, TN_OPT_MOMENTUM, TN_OPT_RMSPROP,
                                         TN_OPT_ADAM};
static const char *const arch_names[MAX_ARCHS] = {"mlp", "cnn-thin"};

typedef struct flags {
    const char *archs, *optimizers, *lrs, *out, *data_dir, *param;
    size_t steps, cnn_steps, batch, probe, first_solve, n_train, n_test, mlp_width, mlp_depth,
        cnn_width, cnn_depth;
    double tol, max_iterations;
    uint64_t seed;
    int threads, synthetic;
} flags;

/* One run: a network trained by one optimizer.  Its curves, per step and
 * per solve, and its line of the table. */
typedef struct run {
    char label[32];             /* "mlp-adam": no blanks, it names the run in the CSV files */
    const char *arch, *optimizer;
    double lr;
    size_t steps;
    double *loss, *configs, *ever, *switched;     /* per step */
    size_t n_solves;
    double T[MAX_SOLVES], regret[MAX_SOLVES], optimum[MAX_SOLVES], loss_sum[MAX_SOLVES],
        iterations[MAX_SOLVES], accuracy[MAX_SOLVES], seconds[MAX_SOLVES];
    double final_loss, test_accuracy, record_mib, seconds_total;
} run;

/* Which of names[0..n) the comma-separated list names, in the list's order. */
static size_t pick(const char *flag, const char *list, const char *const *names, size_t n,
                   size_t *out)
{
    size_t k = 0;
    for (const char *p = list;; p++) {
        const size_t len = strcspn(p, ",");
        size_t i = 0;
        while (i < n && (strlen(names[i]) != len || strncmp(p, names[i], len) != 0)) i++;
        if (i == n) ex_die("--%s: '%.*s' is not one of the choices", flag, (int)len, p);
        for (size_t j = 0; j < k; j++)
            if (out[j] == i) ex_die("--%s: '%s' is given twice", flag, names[i]);
        out[k++] = i;
        p += len;
        if (*p == '\0') return k;
    }
}

/* Trains the network of spec with optimizer opt at r->lr for r->steps
 * steps, recording the Taylor losses and following the probe; solves for
 * the regret at T = first_solve, twice that, ... and at the last step. */
static void train(const flags *f, const ex_net_spec *spec, int opt, const ex_data *data, run *r)
{
    tn_ctx *ctx = ex_ctx_create(f->threads);
    tn_net *net = NULL;
    EX_CHECK(ctx, ex_build_net(ctx, spec, &net));      /* the same theta0 for every run */
    tn_trainer *tr = NULL;
    EX_CHECK(ctx, tn_trainer_create(net, &tr));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, opt));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, r->lr));
    /* Every step keeps theta_t, its outputs and its batch (not J_t, which
     * the solver recomputes): 8 (P + n O) bytes and 8 n (d + O) for the
     * batch.  The budget (TN_TRAIN_REGRET_MEMORY, 1 GiB by default) holds
     * the runs this program makes by default many times over. */
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_TOLERANCE, f->tol));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_REGRET_MAX_ITERATIONS, f->max_iterations));
    /* The exploration of the probe: diagnostics on, the probe's patterns
     * now are its first configurations. */
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    EX_CHECK(ctx, tn_trainer_set_probe(tr, data->test.x, f->probe));

    ex_batcher batches;
    ex_batcher_init(&batches, &data->train, f->batch, ex_shuffle_seed(f->seed));
    const double start = ex_now();
    size_t next_solve = f->first_solve;
    for (size_t t = 0; t < r->steps; t++) {
        size_t rows = ex_batcher_next(&batches);
        if (rows == 0) rows = ex_batcher_next(&batches);      /* a new epoch */
        EX_CHECK(ctx, tn_trainer_step(tr, batches.x, batches.y, rows, &r->loss[t]));
        double configs;
        EX_CHECK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &configs));
        EX_CHECK(ctx, tn_trainer_stat(tr, TN_STAT_UNITS_EVER_SWITCHED, &r->ever[t]));
        EX_CHECK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_STEP, &r->switched[t]));
        r->configs[t] = configs / (double)f->probe;   /* per probe example */
        if (t + 1 == next_solve || t + 1 == r->steps) {
            /* min_V sum_{s<=T} l_s(V) over the record so far (Newton-CG for
             * cross-entropy, to the tolerance), and R_T. */
            const size_t k = r->n_solves;
            if (k == MAX_SOLVES) ex_die("more than %d regret solves", MAX_SOLVES);
            next_solve *= 2;
            const double t0 = ex_now();
            double R = NAN, F = NAN;
            const tn_status st = tn_trainer_regret(tr, &R, &F);
            if (st == TN_E_NUMERIC) {
                /* The tolerance not reached within the iteration limit: the
                 * point is left out (NaN), the message says how close. */
                printf("  %s, T = %zu: %s\n", r->label, t + 1, tn_ctx_errmsg(ctx));
            } else {
                EX_CHECK(ctx, st);
                EX_CHECK(ctx, tn_trainer_regret_info(tr, TN_REGRET_ITERATIONS,
                                                     &r->iterations[k]));
                EX_CHECK(ctx, tn_trainer_regret_info(tr, TN_REGRET_ACCURACY, &r->accuracy[k]));
            }
            EX_CHECK(ctx, tn_trainer_regret_info(tr, TN_REGRET_LOSS_SUM, &r->loss_sum[k]));
            r->T[k] = (double)(t + 1);
            r->regret[k] = R;
            r->optimum[k] = F;
            r->seconds[k] = ex_now() - t0;
            r->n_solves = k + 1;
            printf("  %-16s T %5zu  R_T %10.4f  optimum %10.4f  R_T/sqrt(T) %8.4f  (%.0f "
                   "iterations, %.1f s)\n",
                   r->label, t + 1, R, F, R / sqrt((double)(t + 1)), r->iterations[k],
                   r->seconds[k]);
            fflush(stdout);
        }
    }
    double bytes;
    EX_CHECK(ctx, tn_trainer_regret_info(tr, TN_REGRET_BYTES, &bytes));
    r->record_mib = bytes / (1024.0 * 1024.0);

    /* The trained network: its loss on the training images, its accuracy
     * on the test images. */
    const size_t O = data->train.classes;
    double *out = ex_xmalloc(EX_EVAL_CHUNK, O * sizeof(double)), loss = 0.0;
    size_t correct = 0;
    for (size_t i = 0, rows; i < data->train.n; i += rows) {
        rows = data->train.n - i < EX_EVAL_CHUNK ? data->train.n - i : EX_EVAL_CHUNK;
        EX_CHECK(ctx, tn_net_forward(net, data->train.x + i * data->train.d, rows, out));
        loss += cmp_loss(TN_LOSS_SOFTMAX_XENT, out, data->train.y + i * O, rows, O, 1.0) *
                (double)rows;
    }
    for (size_t i = 0, rows; i < data->test.n; i += rows) {
        rows = data->test.n - i < EX_EVAL_CHUNK ? data->test.n - i : EX_EVAL_CHUNK;
        EX_CHECK(ctx, tn_net_forward(net, data->test.x + i * data->test.d, rows, out));
        correct += ex_count_correct(out, rows, O, data->test.labels + i);
    }
    r->final_loss = loss / (double)data->train.n;
    r->test_accuracy = (double)correct / (double)data->test.n;
    r->seconds_total = ex_now() - start;
    free(out);
    ex_batcher_free(&batches);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
}

/* R_T / sqrt(T) at the last solve. */
static double last_ratio(const run *r)
{
    if (r->n_solves == 0) return NAN;
    const size_t k = r->n_solves - 1;
    return r->regret[k] / sqrt(r->T[k]);
}

/* ---- outputs ---- */

/* Opens dir/name (its path into path) and writes the header line. */
static FILE *open_csv(const char *dir, const char *name, const char *header, char *path,
                      size_t len)
{
    ex_join_path(path, len, dir, name);
    FILE *f = ex_open_out(path);
    if (f) fprintf(f, "%s\n", header);
    return f;
}

static int write_steps(const char *dir, const run *runs, size_t n)
{
    char path[4096];
    FILE *f = open_csv(dir, "steps.csv",
                       "run,step,loss,loss_mean16,configs_per_example,units_ever_switched,"
                       "units_switched_step",
                       path, sizeof path);
    if (f == NULL) return -1;
    for (size_t i = 0; i < n; i++) {
        double window = 0.0;
        for (size_t t = 0; t < runs[i].steps; t++) {
            /* The batch loss is noisy: its mean over the last 16 steps too. */
            window += runs[i].loss[t] - (t >= 16 ? runs[i].loss[t - 16] : 0.0);
            fprintf(f, "%s,%zu,%.9g,%.9g,%.9g,%.9g,%.9g\n", runs[i].label, t + 1,
                    runs[i].loss[t], window / (double)(t < 16 ? t + 1 : 16), runs[i].configs[t],
                    runs[i].ever[t], runs[i].switched[t]);
        }
    }
    return ex_close_out(f, path);
}

static int write_regret(const char *dir, const run *runs, size_t n)
{
    char path[4096];
    FILE *f = open_csv(dir, "regret.csv",
                       "run,T,loss_sum,taylor_optimum,regret,regret_over_sqrt_T,"
                       "solver_iterations,solver_accuracy,seconds",
                       path, sizeof path);
    if (f == NULL) return -1;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < runs[i].n_solves; k++) {
            const run *r = &runs[i];
            fprintf(f, "%s,%.0f,%.9g,%.9g,%.9g,%.9g,%.0f,%.3g,%.3f\n", r->label, r->T[k],
                    r->loss_sum[k], r->optimum[k], r->regret[k], r->regret[k] / sqrt(r->T[k]),
                    r->iterations[k], r->accuracy[k], r->seconds[k]);
        }
    return ex_close_out(f, path);
}

static int write_summary(const char *dir, const run *runs, size_t n)
{
    char path[4096];
    FILE *f = open_csv(dir, "summary.csv",
                       "net,optimizer,learning_rate,steps,regret_over_sqrt_T,final_loss,"
                       "test_accuracy,configs_per_example,units_ever_switched,record_mib,seconds",
                       path, sizeof path);
    if (f == NULL) return -1;
    for (size_t i = 0; i < n; i++) {
        const run *r = &runs[i];
        fprintf(f, "%s,%s,%g,%zu,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f,%.1f\n", r->arch, r->optimizer,
                r->lr, r->steps, last_ratio(r), r->final_loss, r->test_accuracy,
                r->configs[r->steps - 1], r->ever[r->steps - 1], r->record_mib,
                r->seconds_total);
    }
    return ex_close_out(f, path);
}

/* One line per run of network `arch` in `file`: column `col` against column
 * `xcol`, in the colour of its optimizer. */
static void series(FILE *f, const run *runs, size_t n, const char *arch, const char *file,
                   int xcol, int col, const char *with)
{
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(runs[i].arch, arch) != 0) continue;
        size_t o = 0;
        while (strcmp(opt_names[o], runs[i].optimizer) != 0) o++;
        fprintf(f, "%s '%s' using %d:(strcol(1) eq '%s' ? column(%d) : 1/0) with %s lw 2 lc %zu "
                   "title '%s'",
                first ? "plot" : ", \\\n    ", file, xcol, runs[i].label, col, with, o + 1,
                runs[i].optimizer);
        first = 0;
    }
    fprintf(f, "\n");
}

/* A figure of one panel per network (side by side) and per quantity
 * (stacked): quantity q is column cols[q] of file, titled titles[q]. */
static void figure(FILE *f, const run *runs, size_t n, const char *const *archs, size_t na,
                   const char *png, const char *title, const char *file, int xcol,
                   const int *cols, const char *const *titles, size_t nq, const char *with)
{
    fprintf(f, "\nset output '%s'\nset multiplot layout %zu,%zu title '%s'\n", png, nq, na,
            title);
    for (size_t q = 0; q < nq; q++)
        for (size_t a = 0; a < na; a++) {
            /* The x axis spans this network's steps (the other's rows are
             * there too, as 1/0). */
            size_t steps = 1, first_T = 1;
            for (size_t i = 0; i < n; i++)
                if (strcmp(runs[i].arch, archs[a]) == 0) {
                    steps = runs[i].steps;
                    first_T = runs[i].n_solves ? (size_t)runs[i].T[0] : 1;
                }
            if (xcol == 2 && strcmp(file, "regret.csv") == 0)
                fprintf(f, "set xrange [%g:%g]\n", first_T / 1.25, steps * 1.25);
            else
                fprintf(f, "set xrange [1:%zu]\n", steps);
            fprintf(f, "set title '%s: %s'\n", archs[a], titles[q]);
            series(f, runs, n, archs[a], file, xcol, cols[q], with);
        }
    fprintf(f, "unset multiplot\n");
}

static int write_plots(const char *dir, const run *runs, size_t n, const char *const *archs,
                       size_t na)
{
    FILE *f = ex_plot_open(dir, "regret.gp", "regret", "steps.csv and regret.csv");
    if (f == NULL) return -1;
    fprintf(f, "set terminal pngcairo size %zu,%d noenhanced\nset key top left\n",
            na > 1 ? (size_t)1400 : (size_t)1000, 620);
    const int regret_cols[] = {6};
    const char *const regret_titles[] = {"R_T / sqrt(T)"};
    fprintf(f, "set logscale x 2\nset xlabel 'steps T'\n");
    figure(f, runs, n, archs, na, "regret.png",
           "regret against the Taylor optimum over sqrt(T) (Balduzzi et al. 2017: bounded)",
           "regret.csv", 2, regret_cols, regret_titles, 1, "linespoints pt 7");
    fprintf(f, "unset logscale x\nset xlabel 'step'\n");
    const int loss_cols[] = {4};
    const char *const loss_titles[] = {"batch loss before each step, mean of the last 16"};
    figure(f, runs, n, archs, na, "loss.png", "softmax cross-entropy", "steps.csv", 2, loss_cols,
           loss_titles, 1, "lines");
    fprintf(f, "set terminal pngcairo size %zu,%d noenhanced\n", na > 1 ? (size_t)1400 : (size_t)1000,
            900);
    const int explore_cols[] = {5, 6};
    const char *const explore_titles[] = {"configurations per probe example",
                                          "fraction of the probe units ever switched"};
    figure(f, runs, n, archs, na, "exploration.png", "activation exploration of the probe batch",
           "steps.csv", 2, explore_cols, explore_titles, 2, "lines");
    return ex_plot_draw(f, dir, "regret.gp");
}

int main(int argc, char **argv)
{
    flags f = {.archs = "mlp,cnn-thin", .optimizers = "sgd,momentum,rmsprop,adam",
               .lrs = "0.01,0.01,0.001,0.001", .out = "out/regret", .param = "standard",
               .steps = 256, .cnn_steps = 16, .batch = 16, .probe = 64, .first_solve = 4,
               .n_train = 0,
               .n_test = 1000, .mlp_width = 64, .mlp_depth = 2, .cnn_width = 4,
               .cnn_depth = 2, .tol = 1e-2, .max_iterations = 20000, .seed = 1,
               .threads = 1};
    const ex_arg args[] = {
        {"archs", EX_ARG_STRING, &f.archs, "networks: mlp, cnn-thin"},
        {"optimizers", EX_ARG_STRING, &f.optimizers, "sgd, momentum, rmsprop, adam"},
        {"lrs", EX_ARG_STRING, &f.lrs, "learning rates of sgd, momentum, rmsprop, adam"},
        {"steps", EX_ARG_SIZE, &f.steps, "steps T of each MLP run"},
        {"cnn-steps", EX_ARG_SIZE, &f.cnn_steps, "steps T of each CNN-THIN run"},
        {"batch", EX_ARG_SIZE, &f.batch, "images per step"},
        {"probe", EX_ARG_SIZE, &f.probe, "probe batch: the first N test images"},
        {"first-solve", EX_ARG_SIZE, &f.first_solve,
         "the first regret solve, at this T; then at each doubling and the last step"},
        {"tol", EX_ARG_DOUBLE, &f.tol, "TN_TRAIN_REGRET_TOLERANCE (of the loss sum)"},
        {"max-iterations", EX_ARG_DOUBLE, &f.max_iterations, "TN_TRAIN_REGRET_MAX_ITERATIONS"},
        {"mlp-width", EX_ARG_SIZE, &f.mlp_width, "MLP units per hidden layer"},
        {"mlp-depth", EX_ARG_SIZE, &f.mlp_depth, "MLP hidden layers"},
        {"cnn-width", EX_ARG_SIZE, &f.cnn_width, "CNN-THIN channels"},
        {"cnn-depth", EX_ARG_SIZE, &f.cnn_depth, "CNN-THIN convolutions"},
        {"param", EX_ARG_STRING, &f.param, "parameterization: standard or ntk"},
        {"seed", EX_ARG_U64, &f.seed, "initialization; the batches' order derives from it"},
        {"threads", EX_ARG_INT, &f.threads, "BLAS threads"},
        {"train", EX_ARG_SIZE, &f.n_train, "training images (0: steps x batch)"},
        {"test", EX_ARG_SIZE, &f.n_test, "test images"},
        {"data", EX_ARG_STRING, &f.data_dir, EX_DATA_FLAG_HELP},
        {"synthetic", EX_ARG_FLAG, &f.synthetic, "the synthetic stand-in for Fashion-MNIST"},
        {"out", EX_ARG_STRING, &f.out, "output directory"},
    };
    ex_parse_args(argc, argv, args, sizeof args / sizeof args[0],
                  "Regret against the Taylor optimum and activation exploration by optimizer "
                  "(Balduzzi et al. 2017).");
    size_t archs[MAX_ARCHS], opts[MAX_OPTS];
    const size_t na = pick("archs", f.archs, arch_names, MAX_ARCHS, archs),
                 no = pick("optimizers", f.optimizers, opt_names, MAX_OPTS, opts);
    double lrs[MAX_OPTS];
    if (ex_parse_list("lrs", f.lrs, lrs, MAX_OPTS, 0) != MAX_OPTS)
        ex_die("--lrs: give 4 learning rates, for sgd, momentum, rmsprop and adam");
    if (f.batch == 0 || f.probe == 0) ex_die("--batch, --probe: >= 1");
    if (f.first_solve == 0 || f.steps == 0 || f.cnn_steps == 0)
        ex_die("--first-solve, --steps, --cnn-steps: >= 1");
    if (f.steps / f.first_solve >= (1u << (MAX_SOLVES - 1)) ||
        f.cnn_steps / f.first_solve >= (1u << (MAX_SOLVES - 1)))
        ex_die("--first-solve: more than %d doublings to the last step", MAX_SOLVES - 1);
    const size_t most = f.steps > f.cnn_steps ? f.steps : f.cnn_steps;

    ex_data data;
    ex_load_data_flags(f.data_dir, f.n_train ? f.n_train : most * f.batch, f.n_test,
                       f.synthetic, 1, &data);
    if (f.probe > data.test.n) ex_die("--probe %zu: the test set has %zu images", f.probe,
                                      data.test.n);
    if (ex_mkdir_p(f.out) != 0) return EXIT_FAILURE;
    printf("training: %zu (MLP) and %zu (CNN-THIN) steps of %zu images, softmax "
           "cross-entropy, %s parameterization, seed %llu; probe %zu test images; regret "
           "tolerance %g\n",
           f.steps, f.cnn_steps, f.batch, f.param, (unsigned long long)f.seed, f.probe, f.tol);

    run runs[MAX_ARCHS * MAX_OPTS];
    size_t n = 0;
    printf("\nregret solves (R_T over the steps so far):\n");
    for (size_t a = 0; a < na; a++) {
        ex_net_spec spec;
        ex_net_spec_default(&spec);
        spec.arch = ex_arch_from_name(arch_names[archs[a]]);
        spec.width = spec.arch == EX_ARCH_MLP ? f.mlp_width : f.cnn_width;
        spec.depth = spec.arch == EX_ARCH_MLP ? f.mlp_depth : f.cnn_depth;
        spec.input = data.train.d;
        spec.outputs = data.train.classes;
        spec.parameterization = ex_parameterization_from_name(f.param);
        spec.seed = f.seed;
        for (size_t o = 0; o < no; o++) {
            run *r = &runs[n++];
            memset(r, 0, sizeof *r);
            r->arch = arch_names[archs[a]];
            r->optimizer = opt_names[opts[o]];
            r->lr = lrs[opts[o]];
            r->steps = spec.arch == EX_ARCH_MLP ? f.steps : f.cnn_steps;
            snprintf(r->label, sizeof r->label, "%s-%s", r->arch, r->optimizer);
            r->loss = ex_xcalloc(r->steps, sizeof(double));
            r->configs = ex_xcalloc(r->steps, sizeof(double));
            r->ever = ex_xcalloc(r->steps, sizeof(double));
            r->switched = ex_xcalloc(r->steps, sizeof(double));
            train(&f, &spec, opt_values[opts[o]], &data, r);
        }
    }
    printf("\n%-17s %8s %12s %12s %12s %10s %9s %11s %9s %8s\n", "run", "lr", "R_T/sqrt(T)",
           "R_T", "optimum", "final_loss", "test_acc", "configs/ex", "ever_sw", "seconds");
    for (size_t i = 0; i < n; i++) {
        const run *r = &runs[i];
        const size_t k = r->n_solves - 1;
        printf("%-17s %8g %12.4f %12.4f %12.4f %10.4f %9.4f %11.3f %9.4f %8.1f\n", r->label,
               r->lr, last_ratio(r), r->regret[k], r->optimum[k], r->final_loss,
               r->test_accuracy, r->configs[r->steps - 1], r->ever[r->steps - 1],
               r->seconds_total);
    }
    printf("(R_T and the Taylor optimum over all the steps of the run; final_loss on the %zu "
           "training images; configs/ex: distinct activation configurations per probe image; "
           "ever_sw: fraction of the probe's units that have switched)\n",
           data.train.n);

    int rc = write_steps(f.out, runs, n) | write_regret(f.out, runs, n) |
             write_summary(f.out, runs, n);
    printf("wrote %s/steps.csv, %s/regret.csv, %s/summary.csv, %s/regret.gp\n", f.out, f.out,
           f.out, f.out);
    const char *drawn[MAX_ARCHS];
    for (size_t a = 0; a < na; a++) drawn[a] = arch_names[archs[a]];
    const int plot = write_plots(f.out, runs, n, drawn, na);
    if (plot == 0) printf("plots: %s/regret.png, %s/loss.png, %s/exploration.png\n", f.out,
                          f.out, f.out);
    if (plot < 0) rc = -1;
    for (size_t i = 0; i < n; i++)
        free(runs[i].loss), free(runs[i].configs), free(runs[i].ever), free(runs[i].switched);
    ex_data_free(&data);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
