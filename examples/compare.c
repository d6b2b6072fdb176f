/*
 * compare.c -- every training mode side by side: from ONE initialization
 * and on the SAME batches, it trains
 *   - the full network (trainer order 0),
 *   - its linearization around the initialization (order 1),
 *   - its Taylorized models of orders k = 2, 3, 4 (--orders),
 *   - the re-linearized model, re-expanded every K = 1, 10, 100 steps
 *     (--reexpand),
 * and reports how far each ends up from full training: in function space
 * (relative l2 distance of the test-set outputs), in parameter space, and in
 * the ReLU activation pattern of a probe batch (the library's neural Taylor
 * diagnostics), with loss, accuracy and cost.
 *
 *   ./build/examples/compare                        # defaults: about 4 minutes
 *   ./build/examples/compare --orders 1,2 --reexpand 10 --epochs 2 --out out/quick
 *
 * Writes DIR/summary.csv, DIR/curves.csv, DIR/compare.gp and, with gnuplot,
 * DIR/loss.png, DIR/fs_distance.png, DIR/diagnostics.png (examples/README.md
 * documents every column).  The machinery is support/side_by_side.c, its
 * outputs support/report.c, shared with the sweeps and exercised by
 * test_compare.
 */
#include "support/report.h"
#include "support/side_by_side.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 33

int main(int argc, char **argv)
{
    cmp_options o;
    cmp_options_default(&o, "out/compare");
    const char *orders_text = "1,2,3,4", *reexpand_text = "1,10,100";
    size_t points = 0;
    const ex_arg own[] = {
        {"orders", EX_ARG_STRING, &orders_text,
         "Taylor orders trained around the initialization (1: linearized), or none"},
        {"reexpand", EX_ARG_STRING, &reexpand_text,
         "periods K of the re-linearized models, or none"},
        {"points", EX_ARG_SIZE, &points,
         "about this many curve points per model (0: 100 for mlp, 12 for cnn-thin and wrn)"}};
    cmp_options_parse(&o, argc, argv, own, 3,
                      "Trains the full network, its linearization, its Taylor models and its "
                      "re-linearized models from one initialization on the same batches, and "
                      "compares them.");

    /* The model list: the reference first, then by order, then by K.  The
     * lists are checked before the data is read. */
    cmp_model models[MAX_MODELS];
    size_t n_models = 0;
    models[n_models++] = cmp_model_make(CMP_FULL, 0, 0);
    cmp_add_models("orders", orders_text, models, &n_models, MAX_MODELS);
    cmp_add_models("reexpand", reexpand_text, models, &n_models, MAX_MODELS);

    ex_data data;
    cmp_options_setup(&o, "compare", &data);
    cmp_config *cfg = &o.cfg;
    /* Each point evaluates every model on the eval images (and the
     * diagnostics on its batch), which costs a convolution far more than a
     * dense layer: 12 points instead of 25 took a default CNN-THIN run from
     * 14.5 to 12.8 minutes on 2 idle cores (it is sized for about 10).  The
     * points do not change what is trained, and the last step is always one. */
    if (points == 0) points = cfg->spec.arch == EX_ARCH_MLP ? 100 : 12;
    const size_t total = cmp_total_steps(cfg, data.train.n);
    cfg->record_every = cmp_record_every_for(total, points);
    cmp_print_setup(&o, total, n_models, NULL);
    printf("curves: a point every %zu steps, on the first %zu test images; ReLU probe: the "
           "first %zu test images\n",
           cfg->record_every, cfg->eval_n, cfg->probe_n);
    fflush(stdout);

    cmp_run run;
    cmp_run_models(cfg, &data.train, &data.test, models, n_models, &run);

    printf("\n");
    cmp_print_table(stdout, &run);
    printf("train_loss: on all %zu training images.  test_acc, fs_distance (|f - f_full| / "
           "|f_full| of the logits): on all %zu test images.  param_dist: |theta - theta0| / "
           "|theta0|.  mask_change: fraction of the probe's ReLU units whose on/off state "
           "differs from initialization (the network at the model's parameters).  s/step: "
           "without the diagnostics, %d models sharing the machine.\n",
           data.train.n, data.test.n, cfg->jobs);

    const int rc = cmp_write_outputs(o.out, &run);
    printf("total time %.1f s\n", run.seconds);

    cmp_run_free(&run);
    ex_data_free(&data);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
