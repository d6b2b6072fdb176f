/* report.c -- the files compare and the sweeps write (report.h). */
#define _POSIX_C_SOURCE 200809L

#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*=====================================================================
 * Files
 *===================================================================*/

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

/* Numbers for CSV: "nan" for every NaN (printf may write "-nan"). */
static void put_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("nan", f);
    else
        fprintf(f, "%.9g", v);
}

int ex_write_csv(const char *dir, const char *name, const char *header, const double *values,
                 size_t n_rows, size_t n_cols)
{
    char path[4096];
    ex_join_path(path, sizeof path, dir, name);
    FILE *f = ex_open_out(path);
    if (f == NULL) return -1;
    fprintf(f, "%s\n", header);
    for (size_t i = 0; i < n_rows; i++)
        for (size_t j = 0; j < n_cols; j++) {
            put_num(f, values[i * n_cols + j]);
            fputc(j + 1 < n_cols ? ',' : '\n', f);
        }
    return ex_close_out(f, path);
}

/*=====================================================================
 * Plots and fits
 *===================================================================*/

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

/* Runs `gnuplot script` in dir and waits for it: 0, 1 when gnuplot is not
 * installed, -1 when it failed. */
static int run_gnuplot(const char *dir, const char *script)
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


FILE *ex_plot_open(const char *dir, const char *script, const char *who, const char *data)
{
    char path[4096];
    ex_join_path(path, sizeof path, dir, script);
    FILE *f = ex_open_out(path);
    if (f == NULL) return NULL;
    fprintf(f,
            "# Drawn by %s from %s (run in this directory: gnuplot %s).\n"
            "set datafile separator ','\n"
            "set terminal pngcairo size 1000,620 noenhanced\n"
            "set grid\n",
            who, data, script);
    return f;
}

int ex_plot_draw(FILE *f, const char *dir, const char *script)
{
    char path[4096];
    ex_join_path(path, sizeof path, dir, script);
    if (ex_close_out(f, path) != 0) return -1;
    return run_gnuplot(dir, script);
}

void ex_plot_y_axis(FILE *f, const double *v, size_t n)
{
    double lo = INFINITY, hi = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
    if (!(hi > 0)) return;
    if (hi >= 10 * lo) {
        /* 10^0.05 each side: 5% of a decade, so no point sits on the frame. */
        lo /= 1.1220184543019633;
        hi *= 1.1220184543019633;
        fprintf(f, "set logscale y\nset yrange [%.6g:%.6g]\n", lo, hi);
        /* Labels at 1, 2 and 5 times the powers of ten in range: gnuplot
         * labels the powers only, which may leave one label in the plot. */
        fprintf(f, "set ytics (");
        const char *sep = "";
        for (double p = pow(10.0, floor(log10(lo))); p <= hi; p *= 10.0)
            for (int m = 1; m <= 5; m += m == 1 ? 1 : 3)
                if (m * p >= lo && m * p <= hi) {
                    fprintf(f, "%s%g", sep, m * p);
                    sep = ", ";
                }
        fprintf(f, ")\n");
    } else {
        const double margin = hi > lo ? 0.05 * (hi - lo) : 0.05 * hi;
        fprintf(f, "unset logscale y\nset yrange [%.6g:%.6g]\n", lo - margin, hi + margin);
    }
}

void ex_plot_y_axis_of_columns(FILE *f, const double *rows, size_t n_rows, size_t n_cols,
                               const size_t *cols, size_t n_drawn)
{
    double *v = ex_xmalloc(n_rows, n_drawn * sizeof(double));
    for (size_t i = 0; i < n_rows; i++)
        for (size_t c = 0; c < n_drawn; c++) v[i * n_drawn + c] = rows[i * n_cols + cols[c]];
    ex_plot_y_axis(f, v, n_rows * n_drawn);
    free(v);
}

/* The least-squares slope of log y_i against log x_i, i < n, over the
 * pairs with both finite and > 0; x_i = x[i * stride], y likewise. */
static double slope_strided(const double *x, const double *y, size_t n, size_t stride)
{
    double sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0;
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        const double xi = x[k * stride], yi = y[k * stride];
        if (!(isfinite(xi) && isfinite(yi) && xi > 0 && yi > 0)) continue;
        const double lx = log(xi), ly = log(yi);
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

double ex_loglog_slope(const double *x, const double *y, size_t n)
{
    return slope_strided(x, y, n, 1);
}

double ex_column_slope(const double *rows, size_t n_rows, size_t n_cols, size_t xcol,
                       size_t ycol)
{
    return slope_strided(rows + xcol, rows + ycol, n_rows, n_cols);
}

/*=====================================================================
 * compare's outputs
 *===================================================================*/

void cmp_print_table(FILE *f, const cmp_run *run)
{
    fprintf(f, "%-12s %-12s %5s %6s %10s %9s %11s %10s %11s %9s\n", "model", "mode", "order",
            "K", "train_loss", "test_acc", "fs_distance", "param_dist", "mask_change",
            "s/step");
    for (size_t i = 0; i < run->n; i++) {
        const cmp_result *r = &run->results[i];
        fprintf(f, "%-12s %-12s %5d %6" PRIu64, r->model.label, cmp_mode_name(r->model.mode),
                r->model.order, r->model.reexpand);
        if (r->diverged) {
            fprintf(f, "  diverged at step %zu (%s)\n", r->diverged_step, r->message);
            continue;
        }
        fprintf(f, " %10.4f %9.4f %11.3e %10.3e %11.4f %9.4f\n", r->train_loss,
                r->test_accuracy, r->fs_distance, r->param_distance, r->mask_change,
                r->seconds_per_step);
    }
}

int cmp_write_summary_csv(const char *path, const cmp_run *run)
{
    FILE *f = ex_open_out(path);
    if (f == NULL) return -1;
    fprintf(f, "%s\n", CMP_SUMMARY_HEADER);
    for (size_t i = 0; i < run->n; i++) {
        const cmp_result *r = &run->results[i];
        fprintf(f, "%s,%d,%" PRIu64, cmp_mode_name(r->model.mode), r->model.order,
                r->model.reexpand);
        const double v[6] = {r->train_loss,     r->test_accuracy, r->fs_distance,
                             r->param_distance, r->mask_change,   r->seconds_per_step};
        for (int k = 0; k < 6; k++) {
            fputc(',', f);
            put_num(f, v[k]);
        }
        fputc('\n', f);
    }
    return ex_close_out(f, path);
}

int cmp_write_curves_csv(const char *path, const cmp_run *run)
{
    FILE *f = ex_open_out(path);
    if (f == NULL) return -1;
    fprintf(f, "%s\n", CMP_CURVES_HEADER);
    for (size_t i = 0; i < run->n; i++) {
        const cmp_result *r = &run->results[i];
        for (size_t p = 0; p < r->n_points; p++) {
            const cmp_point *pt = &r->points[p];
            fprintf(f, "%s,%s,%d,%" PRIu64 ",%zu,%zu", r->model.label,
                    cmp_mode_name(r->model.mode), r->model.order, r->model.reexpand, pt->step,
                    pt->epoch);
            const double v[10] = {pt->train_loss,          pt->eval_loss,
                                  pt->eval_accuracy,       pt->fs_distance,
                                  pt->batch_loss,          pt->taylor_predicted,
                                  pt->loss_reached,        pt->pattern_change_step,
                                  pt->pattern_change_init, pt->seconds};
            for (int k = 0; k < 10; k++) {
                fputc(',', f);
                put_num(f, v[k]);
            }
            fputc('\n', f);
        }
    }
    return ex_close_out(f, path);
}


/* The value of column `col` of curves.csv at point p of r. */
static double curve_value(const cmp_result *r, size_t p, int col)
{
    const cmp_point *pt = &r->points[p];
    return col == 7 ? pt->train_loss : pt->fs_distance;
}

/* The first model before i whose curve of column `col` is model i's point
 * for point (re-linearizing every step is full training; Taylor models of
 * orders past a ReLU net's depth train the same model), or i when there is
 * none.  Drawn alike, the later line would hide the earlier one. */
static size_t twin_of(const cmp_run *run, size_t i, int col)
{
    const cmp_result *r = &run->results[i];
    for (size_t j = 0; j < i; j++) {
        const cmp_result *q = &run->results[j];
        int same = q->n_points == r->n_points && r->n_points > 0;
        for (size_t p = 0; p < r->n_points && same; p++)
            same = curve_value(q, p, col) == curve_value(r, p, col);
        if (same) return j;
    }
    return i;
}

/* One plot series per model: curves.csv's rows of that model (column 1),
 * column `col` against the step (column 5); other rows are undefined (1/0)
 * and skipped.  The colour follows the model's place in the list, so a
 * model has the same colour in every plot; a model whose line is another's
 * is drawn dashed over it, so that both show, and says so. */
static void series(FILE *f, const cmp_run *run, size_t i, int col, int *first)
{
    char q[80], note[80] = "";
    ex_gnuplot_quote(q, sizeof q, run->results[i].model.label);
    const size_t twin = twin_of(run, i, col);
    if (twin != i)
        snprintf(note, sizeof note, " (= %s)", run->results[twin].model.label);
    fprintf(f, "%s 'curves.csv' using 5:(strcol(1) eq '%s' ? column(%d) : 1/0) with lines lw 2 "
               "lc %zu dt %d title '%s%s'",
            *first ? "plot" : ", \\\n    ", q, col, i + 1, twin != i ? 2 : 1, q, note);
    *first = 0;
}

/* 1 when every recorded fs_distance of r is exactly 0 (re-linearizing
 * every step is full training): a log scale cannot show it. */
static int all_zero_distance(const cmp_result *r)
{
    if (r->n_points == 0) return 0;
    for (size_t p = 0; p < r->n_points; p++)
        if (r->points[p].fs_distance != 0.0) return 0;
    return 1;
}

/* The y axis of column col over the models drawn (all, or all but the
 * reference). */
static void y_axis(FILE *f, const cmp_run *run, int col, int skip_ref)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++) n += run->results[i].n_points;
    double *v = ex_xmalloc(n, sizeof(double));
    n = 0;
    for (size_t i = 0; i < run->n; i++)
        for (size_t p = 0; p < run->results[i].n_points && !(skip_ref && i == run->ref); p++)
            v[n++] = curve_value(&run->results[i], p, col);
    ex_plot_y_axis(f, v, n);
    free(v);
}

int cmp_write_plots(const char *dir, const cmp_run *run)
{
    FILE *f = ex_plot_open(dir, "compare.gp", "compare", "curves.csv");
    if (f == NULL) return -1;
    /* Lines, no points: the x axis ends where the steps do. */
    fprintf(f, "set key outside right top\nset xlabel 'step'\nset autoscale xfix\n");
    int first = 1;
    fprintf(f, "\nset output 'loss.png'\n"
               "set title 'training loss (mean over the batches since the previous point)'\n"
               "set ylabel 'loss'\n");
    y_axis(f, run, 7, 0);
    for (size_t i = 0; i < run->n; i++) series(f, run, i, 7, &first);
    fprintf(f, "\n");
    /* A distance plot needs a model other than the reference whose
     * distance is not identically 0. */
    int has_fs = 0;
    for (size_t i = 0; i < run->n && run->ref < run->n && run->eval_n > 0; i++)
        has_fs |= i != run->ref && !all_zero_distance(&run->results[i]);
    if (has_fs) {
        /* The reference itself is at distance 0, and so is any model that
         * is full training step for step: named in the title instead. */
        char zero[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < run->n; i++)
            if (i != run->ref && all_zero_distance(&run->results[i]) && len < sizeof zero)
                len += (size_t)snprintf(zero + len, sizeof zero - len, "%s%s", len ? ", " : "",
                                        run->results[i].model.label);
        /* The labels are ours (letters, digits, '-'): safe inside a
         * double-quoted gnuplot string, which the line break needs. */
        fprintf(f, "\nset output 'fs_distance.png'\n"
                   "set title \"function-space distance to full training, |f - f_full| / "
                   "|f_full| on the first %zu test images%s%s%s\"\n"
                   "set ylabel 'relative distance'\n",
                run->eval_n, len ? "\\n(exactly 0, not drawn: " : "", zero, len ? ")" : "");
        y_axis(f, run, 10, 1);
        first = 1;
        for (size_t i = 0; i < run->n; i++)
            if (i != run->ref && !all_zero_distance(&run->results[i]))
                series(f, run, i, 10, &first);
        fprintf(f, "\n");
    }
    fprintf(f, "set autoscale y\nunset logscale y\nset ytics autofreq\n");
    /* The diagnostics of the reference, when they were computed; the
     * pattern panel only when the net has ReLU units that switched. */
    int has_diag = 0, has_pattern = 0;
    if (run->ref < run->n) {
        const cmp_result *r = &run->results[run->ref];
        for (size_t p = 0; p < r->n_points; p++) {
            has_diag |= isfinite(r->points[p].taylor_predicted);
            has_pattern |= r->points[p].pattern_change_init > 0;
        }
    }
    if (has_diag) {
        char q[80];
        ex_gnuplot_quote(q, sizeof q, run->results[run->ref].model.label);
        /* The keys go to the right of the panels, whose margins are fixed
         * so that the two x axes line up. */
        fprintf(f,
                "\nset output 'diagnostics.png'\n"
                "set multiplot layout %d,1 title 'neural Taylor diagnostics of %s training "
                "(Balduzzi et al. 2017), at the recorded steps'\n"
                "unset title\nset lmargin at screen 0.1\nset rmargin at screen 0.58\n"
                "set key at screen 0.99, graph 1 right top\n%s"
                "set ylabel \"loss on the step's batch\"\n"
                "plot 'curves.csv' using 5:(strcol(1) eq '%s' ? column(11) : 1/0) with lines "
                "lw 2 lc 1 title 'before the step', \\\n"
                "    '' using 5:(strcol(1) eq '%s' ? column(12) : 1/0) with lines lw 2 lc 2 "
                "title 'first-order Taylor prediction after it', \\\n"
                "    '' using 5:(strcol(1) eq '%s' ? column(13) : 1/0) with lines lw 2 lc 7 "
                "dt 2 title 'reached after it'\n",
                has_pattern ? 2 : 1, q, has_pattern ? "unset xlabel\n" : "", q, q, q);
        if (has_pattern)
            fprintf(f,
                    "set xlabel 'step'\nset ylabel 'fraction of probe ReLU units'\n"
                    "plot '' using 5:(strcol(1) eq '%s' ? column(14) : 1/0) with lines lw 2 "
                    "lc 3 title 'switched since the previous point', \\\n"
                    "    '' using 5:(strcol(1) eq '%s' ? column(15) : 1/0) with lines lw 2 "
                    "lc 4 title 'differ from initialization'\n",
                    q, q);
        fprintf(f, "unset multiplot\n");
    }
    const int rc = ex_plot_draw(f, dir, "compare.gp");
    if (rc == 0)
        printf("plots: %s/loss.png%s%s%s%s%s%s\n", dir, has_fs ? ", " : "", has_fs ? dir : "",
               has_fs ? "/fs_distance.png" : "", has_diag ? ", " : "", has_diag ? dir : "",
               has_diag ? "/diagnostics.png" : "");
    return rc;
}

int cmp_write_outputs(const char *dir, const cmp_run *run)
{
    char path[4096];
    int rc = 0;
    ex_join_path(path, sizeof path, dir, "summary.csv");
    rc |= cmp_write_summary_csv(path, run);
    ex_join_path(path, sizeof path, dir, "curves.csv");
    rc |= cmp_write_curves_csv(path, run);
    printf("\nwrote %s/summary.csv, %s/curves.csv, %s/compare.gp\n", dir, dir, dir);
    if (cmp_write_plots(dir, run) < 0) rc = -1;
    return rc ? -1 : 0;
}
