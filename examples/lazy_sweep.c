/*
 * lazy_sweep.c -- Chizat, Oyallon & Bach 2019, "On lazy training in
 * differentiable programming": train the scaled, centered model
 *   g(theta; x) = alpha (f(theta; x) - f(theta0; x))
 * on the loss L(g, y) / alpha^2 (TN_TRAIN_OUTPUT_SCALE alpha with
 * TN_TRAIN_CENTERED 1).  The function moves at a speed independent of
 * alpha, the parameters at speed 1/alpha, so as alpha grows the trained
 * model approaches its linearization (the same scaling, order 1): the
 * distance between the two trained functions falls like 1/alpha, and so does
 * the parameters' movement |theta - theta0|.
 *
 * For each alpha it trains both from one initialization on the same batches
 * (compare's machinery, support/side_by_side.h) and reports the relative distance of
 * their test outputs, the parameters' movement and both test accuracies,
 * with the log-log slopes against alpha.
 *
 *   ./build/examples/lazy_sweep                      # alpha 0.1 ... 1000, about 1 minute
 *   ./build/examples/lazy_sweep --alphas 1,10,100 --loss mse
 *
 * Writes DIR/lazy_sweep.csv, DIR/lazy_sweep.gp and, with gnuplot,
 * DIR/lazy_sweep.png.
 */
#include "support/report.h"
#include "support/side_by_side.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALPHAS 16

/* A row of the table and of lazy_sweep.csv. */
enum { L_ALPHA, L_FS, L_PARAM_FULL, L_PARAM_LIN, L_MASK_FULL, L_ACC_FULL, L_ACC_LIN, L_LOSS_FULL,
       L_LOSS_LIN, L_SECONDS, L_COLS };
#define L_HEADER                                                                             \
    "alpha,fs_distance,param_distance_full,param_distance_linearized,mask_change_full,"      \
    "test_accuracy_full,test_accuracy_linearized,train_loss_full,train_loss_linearized,"      \
    "seconds"

static int write_plot(const char *dir, const double *rows, size_t n, double s_fs, double s_pf)
{
    FILE *f = ex_plot_open(dir, "lazy_sweep.gp", "lazy_sweep", "lazy_sweep.csv");
    if (f == NULL) return -1;
    const size_t drawn[] = {L_FS, L_PARAM_FULL, L_PARAM_LIN};
    ex_plot_y_axis_of_columns(f, rows, n, L_COLS, drawn, 3);
    const double *last = rows + (n - 1) * L_COLS;
    /* The 1/alpha guide goes through the last (laziest) alpha's distance,
     * where the law is expected to hold. */
    fprintf(f,
            "set output 'lazy_sweep.png'\n"
            "set title \"alpha-scaled full vs linearized training (Chizat et al. 2019)\\n"
            "log-log slopes: function %.3f, parameters %.3f (theory -1 for both)\"\n"
            "set logscale x 10\n"
            "set key bottom left inside\n"
            "set xlabel 'alpha (output scale)'\nset ylabel 'relative distance'\n"
            "set y2label 'test accuracy'\nset y2range [0:1]\nset y2tics\nset ytics nomirror\n"
            "a0 = %.9g; d0 = %.9g\n"
            "plot 'lazy_sweep.csv' using 1:2 with linespoints lw 2 pt 7 title "
            "'|g_full - g_lin| / |g_full| (test)', \\\n"
            "    '' using 1:3 with linespoints lw 2 pt 5 title '|theta - theta0| / |theta0| "
            "(full)', \\\n"
            "    '' using 1:4 with linespoints lw 2 pt 4 title '|theta - theta0| / |theta0| "
            "(linearized)', \\\n"
            "    '' using 1:6 axes x1y2 with linespoints lw 1 dt 3 pt 6 lc rgb '#b03000' "
            "title 'test accuracy, full (right)', \\\n"
            "    '' using 1:7 axes x1y2 with linespoints lw 1 dt 3 pt 8 lc rgb '#0030b0' "
            "title 'test accuracy, linearized (right)', \\\n"
            "    d0 * a0 / x with lines dt 2 lc rgb 'gray40' title '1/alpha'\n",
            s_fs, s_pf, last[L_ALPHA], last[L_FS]);
    return ex_plot_draw(f, dir, "lazy_sweep.gp");
}

int main(int argc, char **argv)
{
    cmp_options o;
    cmp_options_default(&o, "out/lazy_sweep");
    /* compare's network, loss, optimizer and learning rate: the function
     * moves at the same speed for every alpha, so one learning rate serves
     * them all.  5,000 images, 4 epochs: 160 steps per model. */
    o.n_train = 5000;
    o.cfg.epochs = 4;
    const char *alphas_text = "0.1,1,10,100,1000";
    const ex_arg own[] = {{"alphas", EX_ARG_STRING, &alphas_text, "output scales alpha"}};
    cmp_options_parse(&o, argc, argv, own, 1,
                      "Alpha-scaled (lazy) full vs linearized training (Chizat et al. 2019).");
    double al[MAX_ALPHAS];
    const size_t na = ex_parse_list("alphas", alphas_text, al, MAX_ALPHAS, 0);
    for (size_t i = 0; i < na; i++)
        if (!(al[i] > 0)) ex_die("--alphas: alpha must be > 0");

    ex_data data;
    cmp_options_setup(&o, "lazy_sweep", &data);
    cmp_config *cfg = &o.cfg;
    cfg->notes = 0;
    cfg->record_every = 0;
    cfg->eval_n = 0;
    cfg->centered = 1;
    const size_t total = cmp_total_steps(cfg, data.train.n);
    cmp_print_setup(&o, total, 2, NULL);
    printf("model: alpha (f(theta) - f(theta0)), loss L / alpha^2, for alpha in %s\n",
           alphas_text);
    printf("\n%9s %12s %7s %11s %7s %11s %10s %9s %9s %8s\n", "alpha", "fs_distance", "slope",
           "param_full", "slope", "param_lin", "mask_full", "acc_full", "acc_lin", "seconds");
    fflush(stdout);

    double rows[MAX_ALPHAS][L_COLS];
    double t_all = ex_now();
    for (size_t i = 0; i < na; i++) {
        char title[64];
        snprintf(title, sizeof title, "alpha %g", al[i]);
        cfg->alpha = al[i];
        const cmp_pair p = cmp_run_pair(cfg, &data.train, &data.test, title);
        const double row[L_COLS] = {al[i],           p.fs_distance,   p.param_full,
                                    p.param_lin,     p.mask_full,     p.accuracy_full,
                                    p.accuracy_lin,  p.loss_full,     p.loss_lin,
                                    p.seconds};
        double *r = memcpy(rows[i], row, sizeof row);
        /* The slopes from the previous alpha: the fits through two points. */
        char s_fs[16] = "", s_pf[16] = "";
        if (i > 0) {
            snprintf(s_fs, sizeof s_fs, "%.3f",
                     ex_column_slope(rows[i - 1], 2, L_COLS, L_ALPHA, L_FS));
            snprintf(s_pf, sizeof s_pf, "%.3f",
                     ex_column_slope(rows[i - 1], 2, L_COLS, L_ALPHA, L_PARAM_FULL));
        }
        printf("%9g %12.4e %7s %11.4e %7s %11.4e %10.4f %9.4f %9.4f %8.1f%s\n", al[i], r[L_FS],
               s_fs, r[L_PARAM_FULL], s_pf, r[L_PARAM_LIN], r[L_MASK_FULL], r[L_ACC_FULL],
               r[L_ACC_LIN], r[L_SECONDS],
               p.diverged ? "  (a model diverged)" : "");
        fflush(stdout);
    }
    t_all = ex_now() - t_all;

    const double s_fs = ex_column_slope(rows[0], na, L_COLS, L_ALPHA, L_FS),
                 s_pf = ex_column_slope(rows[0], na, L_COLS, L_ALPHA, L_PARAM_FULL);
    printf("\n(slope columns: log-log slope from the previous alpha)\n"
           "least-squares slope of log(distance) against log(alpha), all alphas:\n"
           "  function space |g_full - g_lin| / |g_full|:   %7.3f   (Chizat et al.: -1)\n"
           "  parameters |theta - theta0| / |theta0|, full: %7.3f   (Chizat et al.: -1)\n",
           s_fs, s_pf);
    printf("fs_distance on all %zu test images; train %zu images, %zu steps per model; total "
           "%.1f s\n",
           data.test.n, data.train.n, total, t_all);

    int rc = ex_write_csv(o.out, "lazy_sweep.csv", L_HEADER, rows[0], na, L_COLS);
    printf("\nwrote %s/lazy_sweep.csv, %s/lazy_sweep.gp\n", o.out, o.out);
    const int plot = write_plot(o.out, rows[0], na, s_fs, s_pf);
    if (plot == 0) printf("plot: %s/lazy_sweep.png\n", o.out);
    if (plot < 0) rc = -1;
    ex_data_free(&data);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
