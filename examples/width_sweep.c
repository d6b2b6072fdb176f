/*
 * width_sweep.c -- Lee et al. 2019, "Wide neural networks of any depth
 * evolve as linear models under gradient descent": in NTK parameterization
 * with a small learning rate, the trained network approaches its
 * linearization as the width n grows; the distance between their outputs
 * falls like 1/sqrt(n).
 *
 * For each width it trains the full network and its linearization (order 1)
 * from one initialization on the same batches (compare's machinery,
 * compare_lib.h), and reports the relative distance of their test outputs,
 * how far the parameters moved and how many ReLU units of a probe batch
 * switched, then the least-squares log-log slopes against the width.
 *
 *   ./build/examples/width_sweep                    # widths 64 ... 4096, about 4 minutes
 *   ./build/examples/width_sweep --widths 64,256,1024 --epochs 5
 *
 * Writes DIR/width_sweep.csv, DIR/width_sweep.gp and, with gnuplot,
 * DIR/width_sweep.png.
 */
#include "compare_lib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WIDTHS 16

typedef struct row {
    size_t width;
    double fs, param_full, param_lin, mask_full, mask_lin, acc_full, acc_lin, loss_full,
        loss_lin, seconds;
} row;

static int write_csv(const char *path, const row *rows, size_t n)
{
    FILE *f = ex_open_out(path);
    if (f == NULL) return -1;
    fprintf(f, "width,fs_distance,param_distance_full,param_distance_linearized,"
               "mask_change_full,mask_change_linearized,test_accuracy_full,"
               "test_accuracy_linearized,train_loss_full,train_loss_linearized,seconds\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%zu,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f\n", rows[i].width,
                rows[i].fs, rows[i].param_full, rows[i].param_lin, rows[i].mask_full,
                rows[i].mask_lin, rows[i].acc_full, rows[i].acc_lin, rows[i].loss_full,
                rows[i].loss_lin, rows[i].seconds);
    return ex_close_out(f, path);
}

static int write_plot(const char *dir, const row *rows, double slope_fs, double slope_param,
                      double slope_mask)
{
    char path[4096];
    ex_join_path(path, sizeof path, dir, "width_sweep.gp");
    FILE *f = ex_open_out(path);
    if (f == NULL) return -1;
    /* The 1/sqrt(width) guide goes through the first width's distance, so
     * the eye compares slopes, not levels. */
    fprintf(f,
            "# Drawn by width_sweep from width_sweep.csv (run here: gnuplot width_sweep.gp).\n"
            "set datafile separator ','\n"
            "set terminal pngcairo size 1000,620 noenhanced\n"
            "set output 'width_sweep.png'\n"
            "set title \"full vs linearized training against the width (Lee et al. 2019)\\n"
            "log-log slopes: function %.3f (theory -0.5), parameters %.3f, ReLU pattern %.3f\"\n"
            "set logscale x 2\nset logscale y 10\nset format y '%%.0e'\nset grid\n"
            "set key bottom left inside\n"
            "set xlabel 'width (units per hidden layer)'\nset ylabel 'relative distance'\n"
            "w0 = %zu.0; d0 = %.9g\n"
            "plot 'width_sweep.csv' using 1:2 with linespoints lw 2 pt 7 title "
            "'|f_full - f_lin| / |f_full| (test)', \\\n"
            "    '' using 1:3 with linespoints lw 2 pt 5 title "
            "'|theta - theta0| / |theta0| (full)', \\\n"
            "    '' using 1:5 with linespoints lw 2 pt 9 title "
            "'ReLU units switched (full)', \\\n"
            "    d0 * (x / w0) ** -0.5 with lines dt 2 lc rgb 'gray40' title '1/sqrt(width)'\n",
            slope_fs, slope_param, slope_mask, rows[0].width, rows[0].fs);
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "error: writing %s failed\n", path);
        return -1;
    }
    return ex_gnuplot(dir, "width_sweep.gp");
}

int main(int argc, char **argv)
{
    cmp_options o;
    cmp_options_default(&o, "out/width_sweep");
    /* Lee et al.'s setting: NTK parameterization, squared loss, a learning
     * rate well below the critical one (about 1 here: lr 1 makes the
     * linearized model oscillate at width 512).  Few images and steps, as
     * width 4096 (20 million parameters) costs about a second per step. */
    o.param = "ntk";
    o.loss = "mse";
    o.cfg.lr = 0.1;
    o.n_train = 1000;
    o.n_test = 1000;
    o.cfg.batch = 100;
    o.cfg.epochs = 10;
    const char *widths_text = "64,128,256,512,1024,2048,4096";
    ex_arg args[CMP_NARGS + 1];
    cmp_options_args(&o, args);
    args[CMP_NARGS] = (ex_arg){"widths", EX_ARG_STRING, &widths_text, "hidden-layer widths"};
    ex_parse_args(argc, argv, args, CMP_NARGS + 1,
                  "Full vs linearized training against the width (Lee et al. 2019).");
    double wl[MAX_WIDTHS];
    const size_t nw = ex_parse_list("widths", widths_text, wl, MAX_WIDTHS, 1);
    for (size_t i = 0; i < nw; i++)
        if (wl[i] < 1) ex_die("--widths: a width must be >= 1");

    ex_data data;
    cmp_options_setup(&o, "width_sweep", &data);
    cmp_config *cfg = &o.cfg;
    cfg->notes = 0;
    /* Only the end of training is measured: no curves. */
    cfg->record_every = 0;
    cfg->eval_n = 0;
    const size_t total = cmp_total_steps(cfg, data.train.n);
    const cmp_model models[2] = {cmp_model_make(CMP_FULL, 0, 0),
                                 cmp_model_make(CMP_LINEARIZED, 1, 0)};
    cmp_print_setup(&o, total, 2, widths_text);
    printf("\n%7s %12s %7s %11s %11s %10s %10s %9s %9s %8s\n", "width", "fs_distance", "slope",
           "param_full", "param_lin", "mask_full", "mask_lin", "acc_full", "acc_lin",
           "seconds");
    fflush(stdout);

    row rows[MAX_WIDTHS];
    double t_all = ex_now();
    for (size_t i = 0; i < nw; i++) {
        char title[64];
        snprintf(title, sizeof title, "width %zu", (size_t)wl[i]);
        cfg->title = title;
        cfg->spec.width = (size_t)wl[i];
        cmp_run run;
        cmp_run_models(cfg, &data.train, &data.test, models, 2, &run);
        const cmp_result *full = &run.results[0], *lin = &run.results[1];
        rows[i] = (row){(size_t)wl[i],    lin->fs_distance,     full->param_distance,
                        lin->param_distance, full->mask_change, lin->mask_change,
                        full->test_accuracy, lin->test_accuracy, full->train_loss,
                        lin->train_loss,  run.seconds};
        if (full->diverged || lin->diverged)
            printf("(width %zu: a model diverged, its numbers are nan)\n", rows[i].width);
        /* The slope from the previous width: the fit through two points. */
        char slope[16] = "";
        if (i > 0) {
            const double xs[2] = {(double)rows[i - 1].width, (double)rows[i].width};
            const double ys[2] = {rows[i - 1].fs, rows[i].fs};
            snprintf(slope, sizeof slope, "%.3f", ex_loglog_slope(xs, ys, 2));
        }
        printf("%7zu %12.4e %7s %11.4e %11.4e %10.4f %10.4f %9.4f %9.4f %8.1f\n", rows[i].width,
               rows[i].fs, slope, rows[i].param_full, rows[i].param_lin, rows[i].mask_full,
               rows[i].mask_lin, rows[i].acc_full, rows[i].acc_lin, rows[i].seconds);
        fflush(stdout);
        cmp_run_free(&run);
    }
    t_all = ex_now() - t_all;

    double x[MAX_WIDTHS], fs[MAX_WIDTHS], pf[MAX_WIDTHS], mf[MAX_WIDTHS];
    for (size_t i = 0; i < nw; i++) {
        x[i] = (double)rows[i].width;
        fs[i] = rows[i].fs;
        pf[i] = rows[i].param_full;
        mf[i] = rows[i].mask_full;
    }
    const double s_fs = ex_loglog_slope(x, fs, nw), s_pf = ex_loglog_slope(x, pf, nw),
                 s_mf = ex_loglog_slope(x, mf, nw);
    printf("\n(slope column: log-log slope of fs_distance from the previous width)\n"
           "least-squares slope of log(distance) against log(width), all widths:\n"
           "  function space |f_full - f_lin| / |f_full|:   %7.3f   (Lee et al.: -0.5)\n"
           "  parameters |theta - theta0| / |theta0|, full: %7.3f\n"
           "  ReLU units of the probe switched, full:      %7.3f\n",
           s_fs, s_pf, s_mf);
    printf("fs_distance on all %zu test images; train %zu images, %zu steps per model; total "
           "%.1f s\n",
           data.test.n, data.train.n, total, t_all);

    char path[4096];
    int rc = 0;
    ex_join_path(path, sizeof path, o.out, "width_sweep.csv");
    rc |= write_csv(path, rows, nw);
    printf("\nwrote %s/width_sweep.csv, %s/width_sweep.gp\n", o.out, o.out);
    const int plot = write_plot(o.out, rows, s_fs, s_pf, s_mf);
    if (plot == 0) printf("plot: %s/width_sweep.png\n", o.out);
    if (plot < 0) rc = -1;
    ex_data_free(&data);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
