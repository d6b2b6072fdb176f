/*
 * report.h -- what compare and the sweeps write, in one place: CSV files,
 * gnuplot scripts and their plots, log-log slopes, and compare's table,
 * summary.csv, curves.csv and plots (order_sweep writes them too).
 *
 * Every writer returns 0, or -1 after saying on stderr what went wrong; a
 * missing gnuplot is not an error (the command that draws the plots later
 * is printed instead).  Part of the examples, not of libtaylornet.
 */
#ifndef TN_EXAMPLES_REPORT_H
#define TN_EXAMPLES_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "side_by_side.h"

/*---------------------------------------------------------------------
 * Files
 *-------------------------------------------------------------------*/

/** Opens path for writing, or says why not on stderr and gives NULL. */
FILE *ex_open_out(const char *path);
/** Closes a file from ex_open_out: 0, or -1 with a message when anything
 *  written was lost (a full disk shows up at the latest in fclose). */
int ex_close_out(FILE *f, const char *path);

/** Writes dir/name as CSV: the header line, then n_rows rows of n_cols
 *  numbers from values (row-major), each as %.9g, NaN as "nan". */
int ex_write_csv(const char *dir, const char *name, const char *header, const double *values,
                 size_t n_rows, size_t n_cols);

/*---------------------------------------------------------------------
 * Plots and fits
 *-------------------------------------------------------------------*/

/** Writes s into buf as the body of a gnuplot single-quoted string (every '
 *  doubled); exits when it does not fit. */
void ex_gnuplot_quote(char *buf, size_t len, const char *s);

/** Opens dir/script for writing and writes the preamble every plot shares:
 *  a comment naming `who` drew it from `data`, the CSV separator, the PNG
 *  terminal (1000 x 620), the grid.  The caller writes the rest and hands
 *  the file to ex_plot_draw.  NULL (after a message) when it cannot. */
FILE *ex_plot_open(const char *dir, const char *script, const char *who, const char *data);
/** Closes the script from ex_plot_open and runs it with gnuplot in dir (so
 *  it names its data and images relative to dir, and still works when run
 *  again from there).  0 when the plots were drawn, 1 when gnuplot is not
 *  installed (then it prints the command that draws them later), -1 when
 *  the script could not be written or gnuplot failed. */
int ex_plot_draw(FILE *f, const char *dir, const char *script);

/** Writes the y axis of a plot of the values v[0..n) (those finite and > 0
 *  count): a log scale when they span a decade or more, else a linear one,
 *  and a range that holds them with a small margin -- gnuplot's own would
 *  stretch a log axis to whole decades with nothing in them.  Nothing when
 *  there are no such values. */
void ex_plot_y_axis(FILE *f, const double *v, size_t n);
/** The same for the columns cols[0..n_drawn) of n_rows rows of n_cols
 *  numbers (row-major): the y axis of a sweep's table plotted by column. */
void ex_plot_y_axis_of_columns(FILE *f, const double *rows, size_t n_rows, size_t n_cols,
                               const size_t *cols, size_t n_drawn);

/** The least-squares slope of log y against log x over the pairs with both
 *  finite and > 0 (others are skipped); NaN with fewer than two such pairs
 *  or when their x are all equal.  The exponent of a power law y ~ x^s. */
double ex_loglog_slope(const double *x, const double *y, size_t n);
/** The same for columns xcol and ycol of n_rows rows of n_cols numbers
 *  (row-major): the exponent of y ~ x^s across a sweep's table. */
double ex_column_slope(const double *rows, size_t n_rows, size_t n_cols, size_t xcol,
                       size_t ycol);

/*---------------------------------------------------------------------
 * compare's outputs
 *-------------------------------------------------------------------*/

/** summary.csv's header line, exactly. */
#define CMP_SUMMARY_HEADER                                                               \
    "mode,order,reexpand_every,train_loss,test_accuracy,fs_distance,param_distance,"     \
    "mask_change,seconds_per_step"
/** curves.csv's header line. */
#define CMP_CURVES_HEADER                                                                \
    "model,mode,order,reexpand_every,step,epoch,train_loss,eval_loss,eval_accuracy,"     \
    "fs_distance,batch_loss,taylor_predicted,loss_reached,pattern_change_step,"          \
    "pattern_change_init,seconds"

/** The table, one row per model. */
void cmp_print_table(FILE *f, const cmp_run *run);
/** The files (CMP_SUMMARY_HEADER and CMP_CURVES_HEADER, then a row per
 *  model, or per model and recorded step). */
int cmp_write_summary_csv(const char *path, const cmp_run *run);
int cmp_write_curves_csv(const char *path, const cmp_run *run);
/** Writes dir/compare.gp, which draws loss.png, fs_distance.png and
 *  diagnostics.png from dir/curves.csv, and runs it (ex_plot_draw, whose
 *  result it returns). */
int cmp_write_plots(const char *dir, const cmp_run *run);
/** dir/summary.csv, dir/curves.csv and the plots, with a line saying what
 *  was written: 0, or -1 when any failed (a missing gnuplot is not a
 *  failure). */
int cmp_write_outputs(const char *dir, const cmp_run *run);

#endif
