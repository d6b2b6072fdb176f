/*
 * width_sweep.c -- Lee et al. 2019, "Wide neural networks of any depth
 * evolve as linear models under gradient descent": in NTK parameterization
 * with a small learning rate, the trained network approaches its
 * linearization as the width n grows; the distance between their outputs
 * falls like 1/sqrt(n).
 *
 * For each width it trains the full network and its linearization (order 1)
 * from one initialization on the same batches (compare's machinery,
 * support/side_by_side.h), and reports the relative distance of their test outputs,
 * how far the parameters moved and how many ReLU units of a probe batch
 * switched, then the least-squares log-log slopes against the width.
 *
 *   ./build/examples/width_sweep                    # widths 64 ... 4096, about 4 minutes
 *   ./build/examples/width_sweep --widths 64,256,1024 --epochs 5
 *
 * Writes DIR/width_sweep.csv, DIR/width_sweep.gp and, with gnuplot,
 * DIR/width_sweep.png.
 */
#include "support/report.h"
#include "support/side_by_side.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WIDTHS 16

/* A row of the table and of width_sweep.csv. */
enum { W_WIDTH, W_FS, W_PARAM_FULL, W_PARAM_LIN, W_MASK_FULL, W_MASK_LIN, W_ACC_FULL, W_ACC_LIN,
       W_LOSS_FULL, W_LOSS_LIN, W_SECONDS, W_COLS };
#define W_HEADER                                                                          \
    "width,fs_distance,param_distance_full,param_distance_linearized,mask_change_full,"    \
    "mask_change_linearized,test_accuracy_full,test_accuracy_linearized,train_loss_full," \
    "train_loss_linearized,seconds"

static int write_plot(const char *dir, const double *rows, size_t n, double slope_fs,
                      double slope_param, double slope_mask)
{
    FILE *f = ex_plot_open(dir, "width_sweep.gp", "width_sweep", "width_sweep.csv");
    if (f == NULL) return -1;
    const size_t drawn[] = {W_FS, W_PARAM_FULL, W_MASK_FULL};
    ex_plot_y_axis_of_columns(f, rows, n, W_COLS, drawn, 3);
    /* The 1/sqrt(width) guide goes through the first width's distance, so
     * the eye compares slopes, not levels. */
    fprintf(f,
            "set output 'width_sweep.png'\n"
            "set title \"full vs linearized training against the width (Lee et al. 2019)\\n"
            "log-log slopes: function %.3f (theory -0.5), parameters %.3f, ReLU pattern %.3f\"\n"
            "set logscale x 2\n"
            "set key bottom left inside\n"
            "set xlabel 'width (units per hidden layer)'\nset ylabel 'relative distance'\n"
            "w0 = %.0f; d0 = %.9g\n"
            "plot 'width_sweep.csv' using 1:2 with linespoints lw 2 pt 7 title "
            "'|f_full - f_lin| / |f_full| (test)', \\\n"
            "    '' using 1:3 with linespoints lw 2 pt 5 title "
            "'|theta - theta0| / |theta0| (full)', \\\n"
            "    '' using 1:5 with linespoints lw 2 pt 9 title "
            "'ReLU units switched (full)', \\\n"
            "    d0 * (x / w0) ** -0.5 with lines dt 2 lc rgb 'gray40' title '1/sqrt(width)'\n",
            slope_fs, slope_param, slope_mask, rows[W_WIDTH], rows[W_FS]);
    return ex_plot_draw(f, dir, "width_sweep.gp");
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
    const ex_arg own[] = {{"widths", EX_ARG_STRING, &widths_text, "hidden-layer widths"}};
    cmp_options_parse(&o, argc, argv, own, 1,
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
    cmp_print_setup(&o, total, 2, widths_text);
    printf("\n%7s %12s %7s %11s %11s %10s %10s %9s %9s %8s\n", "width", "fs_distance", "slope",
           "param_full", "param_lin", "mask_full", "mask_lin", "acc_full", "acc_lin",
           "seconds");
    fflush(stdout);

    double rows[MAX_WIDTHS][W_COLS];
    double t_all = ex_now();
    for (size_t i = 0; i < nw; i++) {
        char title[64];
        snprintf(title, sizeof title, "width %zu", (size_t)wl[i]);
        cfg->spec.width = (size_t)wl[i];
        const cmp_pair p = cmp_run_pair(cfg, &data.train, &data.test, title);
        const double row[W_COLS] = {wl[i],           p.fs_distance,   p.param_full,
                                    p.param_lin,     p.mask_full,     p.mask_lin,
                                    p.accuracy_full, p.accuracy_lin,  p.loss_full,
                                    p.loss_lin,      p.seconds};
        double *r = memcpy(rows[i], row, sizeof row);
        if (p.diverged)
            printf("(width %zu: a model diverged, its numbers are nan)\n", (size_t)wl[i]);
        /* The slope from the previous width: the fit through two points. */
        char slope[16] = "";
        if (i > 0)
            snprintf(slope, sizeof slope, "%.3f",
                     ex_column_slope(rows[i - 1], 2, W_COLS, W_WIDTH, W_FS));
        printf("%7zu %12.4e %7s %11.4e %11.4e %10.4f %10.4f %9.4f %9.4f %8.1f\n", (size_t)wl[i],
               r[W_FS], slope, r[W_PARAM_FULL], r[W_PARAM_LIN], r[W_MASK_FULL], r[W_MASK_LIN],
               r[W_ACC_FULL], r[W_ACC_LIN], r[W_SECONDS]);
        fflush(stdout);
    }
    t_all = ex_now() - t_all;

    const double s_fs = ex_column_slope(rows[0], nw, W_COLS, W_WIDTH, W_FS),
                 s_pf = ex_column_slope(rows[0], nw, W_COLS, W_WIDTH, W_PARAM_FULL),
                 s_mf = ex_column_slope(rows[0], nw, W_COLS, W_WIDTH, W_MASK_FULL);
    printf("\n(slope column: log-log slope of fs_distance from the previous width)\n"
           "least-squares slope of log(distance) against log(width), all widths:\n"
           "  function space |f_full - f_lin| / |f_full|:   %7.3f   (Lee et al.: -0.5)\n"
           "  parameters |theta - theta0| / |theta0|, full: %7.3f\n"
           "  ReLU units of the probe switched, full:      %7.3f\n",
           s_fs, s_pf, s_mf);
    printf("fs_distance on all %zu test images; train %zu images, %zu steps per model; total "
           "%.1f s\n",
           data.test.n, data.train.n, total, t_all);

    int rc = ex_write_csv(o.out, "width_sweep.csv", W_HEADER, rows[0], nw, W_COLS);
    printf("\nwrote %s/width_sweep.csv, %s/width_sweep.gp\n", o.out, o.out);
    const int plot = write_plot(o.out, rows[0], nw, s_fs, s_pf, s_mf);
    if (plot == 0) printf("plot: %s/width_sweep.png\n", o.out);
    if (plot < 0) rc = -1;
    ex_data_free(&data);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
