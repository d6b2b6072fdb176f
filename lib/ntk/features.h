/* features.h -- per-example gradient factors for the NTK (ntk.h). */
#ifndef TNI_FEATURES_H
#define TNI_FEATURES_H

#include "ntk.h"

/* The layers of net with parameters. */
tn_status tni_param_layers_of(tn_ctx *ctx, const tn_net *net, tni_param_layers *pl);
void tni_param_layers_free(tni_param_layers *pl);

/* Doubles of features per example: sum_m (in_m + O out_m). */
size_t tni_features_per_example(const tni_param_layers *pl, size_t O);
/* Doubles of workspace tni_features_compute needs per example (the
 * forward tape, the one-hot cotangent sets and the sweep's buffers). */
size_t tni_features_work_per_example(const tn_net *net, size_t O);

tn_status tni_features_alloc(tn_ctx *ctx, const tni_param_layers *pl, size_t O, size_t rows,
                             tni_features *f);
void tni_features_free(tni_features *f);

/* f <- the factors of the rows of x (rows <= f's capacity), at the net's
 * parameters.  work: rows * tni_features_work_per_example doubles, less the
 * tape (which k->tape holds). */
tn_status tni_features_compute(tn_ntk *k, const tni_param_layers *pl, const double *x,
                               size_t rows, tni_features *f, double *work);
size_t tni_features_work_doubles(const tn_net *net, size_t O, size_t rows);

#endif
