/*
 * order_sweep.c -- Bai et al. 2020, "Taylorized training": in standard
 * parameterization with a large learning rate, where the linearized model
 * (k = 1) no longer follows full training, the order-k Taylor model around
 * the initialization agrees with full training increasingly well as k
 * grows, and closes the accuracy gap.
 *
 * It trains the full network and its Taylor models of orders k = 1..6 from
 * one initialization on the same batches (compare's machinery,
 * support/side_by_side.h), and reports against k the function-space distance to full
 * training on the test set and the accuracy gap (full minus order k).
 *
 * For ReLU networks the expansion is the network with its activation masks
 * frozen at the initialization, a polynomial of degree L (the number of
 * weight layers) in the parameters: orders k >= L all train the same model.
 * The default network therefore has 5 hidden layers (L = 6), so that orders
 * 1..6 differ; with compare's 2 hidden layers, orders 3 and up coincide.
 *
 *   ./build/examples/order_sweep                        # about 2 minutes
 *   ./build/examples/order_sweep --orders 1,2,3 --depth 2 --lr 0.01
 *
 * Writes, like compare, DIR/summary.csv, DIR/curves.csv and DIR/compare.gp
 * (loss.png, fs_distance.png, diagnostics.png), and DIR/order_sweep.csv,
 * DIR/order_sweep.gp and, with gnuplot, DIR/order_sweep.png.
 */
#include "support/report.h"
#include "support/side_by_side.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORDERS 16

/* What the expansions around theta0 do at the end of training, on the
 * first n test images, for each Taylor model i (NaN for the others):
 *   ratio[i]    the divergence indicator |z_k| / |z_{k-1}| at the model's own
 *               trained theta (near or above 1: the terms do not shrink);
 *   at_full[i]  |f_k(theta_full) - f(theta_full)| / |f(theta_full)|: whether
 *               the order-k expansion around theta0 reaches the network where
 *               full training ended -- the best any order-k model could do
 *               on full training's path. */
static void expansion_report(const cmp_config *cfg, const cmp_run *run, const ex_dataset *test,
                             size_t n, double *ratio, double *at_full)
{
    const size_t O = run->outputs, P = run->P;
    const cmp_result *full = &run->results[run->ref];
    tn_ctx *ctx = ex_ctx_create(cfg->threads);
    tn_net *net = NULL;
    EX_CHECK(ctx, ex_build_net(ctx, &cfg->spec, &net));
    double *f_full = ex_xmalloc(n, O * sizeof(double)), *y = ex_xmalloc(n, O * sizeof(double));
    if (!full->diverged) {
        EX_CHECK(ctx, tn_net_set_params(net, full->theta, P));
        EX_CHECK(ctx, tn_net_forward(net, test->x, n, f_full));
    }
    /* The expansions are made at theta0: their base. */
    EX_CHECK(ctx, tn_net_set_params(net, run->theta0, P));
    for (size_t i = 0; i < run->n; i++) {
        const cmp_result *r = &run->results[i];
        ratio[i] = at_full[i] = NAN;
        if (r->model.order < 1 || r->diverged) continue;
        tn_taylor *tay = NULL;
        EX_CHECK(ctx, tn_taylor_create(net, r->model.order, &tay));
        EX_CHECK(ctx, tn_taylor_forward(tay, r->theta, test->x, n, y));
        EX_CHECK(ctx, tn_taylor_divergence(tay, &ratio[i]));
        if (!full->diverged) {
            EX_CHECK(ctx, tn_taylor_forward(tay, full->theta, test->x, n, y));
            at_full[i] = ex_rel_diff(y, f_full, n * O);
        }
        tn_taylor_free(tay);
    }
    free(y);
    free(f_full);
    tn_net_free(net);
    tn_ctx_free(ctx);
}

/* A row of order_sweep.csv: a Taylor model of the run. */
enum { K_ORDER, K_FS, K_GAP, K_ACC, K_LOSS, K_PARAM, K_MASK, K_RATIO, K_AT_FULL, K_SECONDS,
       K_DIVERGED, K_COLS };
#define K_HEADER                                                                             \
    "order,fs_distance,accuracy_gap,test_accuracy,train_loss,param_distance,mask_change,"     \
    "divergence_indicator,taylor_error_at_full,seconds_per_step,diverged_step"

static int write_csv(const char *dir, const cmp_run *run, const double *ratio,
                     const double *at_full)
{
    const cmp_result *full = &run->results[run->ref];
    double rows[MAX_ORDERS][K_COLS];
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++) {
        const cmp_result *r = &run->results[i];
        if (i == run->ref) continue;
        const double row[K_COLS] = {r->model.order,     r->fs_distance,
                                    full->test_accuracy - r->test_accuracy,
                                    r->test_accuracy,   r->train_loss,
                                    r->param_distance,  r->mask_change,
                                    ratio[i],           at_full[i],
                                    r->seconds_per_step, r->diverged ? (double)r->diverged_step : 0};
        memcpy(rows[n++], row, sizeof row);
    }
    return ex_write_csv(dir, "order_sweep.csv", K_HEADER, rows[0], n, K_COLS);
}

static int write_plot(const char *dir, const cmp_run *run, size_t L)
{
    FILE *f = ex_plot_open(dir, "order_sweep.gp", "order_sweep", "order_sweep.csv");
    if (f == NULL) return -1;
    double fs[MAX_ORDERS + 1];
    for (size_t i = 0; i < run->n; i++) fs[i] = i == run->ref ? NAN : run->results[i].fs_distance;
    ex_plot_y_axis(f, fs, run->n);
    fprintf(f,
            "set output 'order_sweep.png'\n"
            "set title \"order-k Taylorized vs full training (Bai et al. 2020)\\n"
            "ReLU net with %zu weight layers: orders k >= %zu train the frozen-mask network\"\n"
            "set key top right inside\n"
            "set xlabel 'Taylor order k'\nset xtics 1\n"
            "set ylabel 'relative distance to full training (test)'\n"
            "set y2label 'accuracy gap, full - order k (test)'\nset y2tics\nset ytics nomirror\n"
            "plot 'order_sweep.csv' using 1:2 with linespoints lw 2 pt 7 title "
            "'|f_k - f_full| / |f_full|', \\\n"
            "    '' using 1:3 axes x1y2 with linespoints lw 2 dt 2 pt 5 title "
            "'accuracy gap (right)'\n",
            L, L);
    return ex_plot_draw(f, dir, "order_sweep.gp");
}

int main(int argc, char **argv)
{
    cmp_options o;
    cmp_options_default(&o, "out/order_sweep");
    /* Bai et al.'s setting: standard parameterization, a large learning
     * rate (5 times compare's: with compare's network it leaves the
     * linearized model at a relative distance of 2.5 from full training
     * after one epoch), the gradient's norm clipped at 5 as they do.  5
     * hidden layers of 256 (see the top), 5,000 images, 3 epochs. */
    o.cfg.lr = 0.05;
    o.cfg.clip = 5.0;
    o.depth = 5;
    o.width = 256;
    o.n_train = 5000;
    o.cfg.epochs = 3;
    const char *orders_text = "1,2,3,4,5,6";
    size_t points = 60;
    const ex_arg own[] = {
        {"orders", EX_ARG_STRING, &orders_text, "Taylor orders k"},
        {"points", EX_ARG_SIZE, &points, "about this many curve points per model"}};
    cmp_options_parse(&o, argc, argv, own, 2,
                      "Order-k Taylorized vs full training at a large learning rate (Bai et al. "
                      "2020).");
    if (points == 0) ex_die("--points must be > 0");
    cmp_model models[MAX_ORDERS + 1];
    size_t n_models = 0;
    models[n_models++] = cmp_model_make(CMP_FULL, 0, 0);
    cmp_add_models("orders", orders_text, models, &n_models, MAX_ORDERS + 1);
    const size_t nk = n_models - 1;

    ex_data data;
    cmp_options_setup(&o, "order_sweep", &data);
    cmp_config *cfg = &o.cfg;
    const size_t total = cmp_total_steps(cfg, data.train.n);
    cfg->record_every = cmp_record_every_for(total, points);
    cmp_print_setup(&o, total, nk + 1, NULL);
    printf("curves: a point every %zu steps, on the first %zu test images\n", cfg->record_every,
           cfg->eval_n);
    fflush(stdout);

    cmp_run run;
    cmp_run_models(cfg, &data.train, &data.test, models, nk + 1, &run);
    const cmp_result *full = &run.results[0];

    printf("\n");
    cmp_print_table(stdout, &run);
    const size_t n_exp = cfg->eval_n ? cfg->eval_n : data.test.n;
    double ratio[MAX_ORDERS + 1], at_full[MAX_ORDERS + 1];
    expansion_report(cfg, &run, &data.test, n_exp, ratio, at_full);
    printf("\n%5s %12s %13s %9s %12s %15s\n", "k", "fs_distance", "accuracy_gap", "test_acc",
           "|z_k|/|z_k-1|", "f_k at theta_full");
    for (size_t i = 1; i <= nk; i++) {
        const cmp_result *r = &run.results[i];
        if (r->diverged) {
            printf("%5d  diverged at step %zu\n", r->model.order, r->diverged_step);
            continue;
        }
        printf("%5d %12.4e %13.4f %9.4f %12.4g %15.4e\n", r->model.order, r->fs_distance,
               full->test_accuracy - r->test_accuracy, r->test_accuracy, ratio[i], at_full[i]);
    }
    printf("full network: test accuracy %.4f.  fs_distance: |f_k - f_full| / |f_full| over the "
           "%zu test images' logits; accuracy_gap: full minus order k.  On the first %zu test "
           "images: |z_k|/|z_k-1|, the divergence indicator of the order-k expansion around "
           "theta0 at the model's trained theta; f_k at theta_full, |f_k(theta_full) - "
           "f(theta_full)| / |f(theta_full)|, how close that expansion comes to the network "
           "where full training ended.  total %.1f s\n",
           full->test_accuracy, data.test.n, n_exp, run.seconds);

    int rc = cmp_write_outputs(o.out, &run);
    rc |= write_csv(o.out, &run, ratio, at_full);
    printf("wrote %s/order_sweep.csv, %s/order_sweep.gp\n", o.out, o.out);
    const int plot = write_plot(o.out, &run, o.depth + 1);
    if (plot == 0) printf("plot: %s/order_sweep.png\n", o.out);
    if (plot < 0) rc = -1;
    cmp_run_free(&run);
    ex_data_free(&data);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
