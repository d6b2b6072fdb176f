/* features.h -- per-example gradient factors of a tile of examples
 * (tni_features, ntk.h). */
#ifndef TNI_FEATURES_H
#define TNI_FEATURES_H

#include "ntk.h"

/* Doubles of factors per example. */
double tni_features_per_example(const tni_ntk_plan *plan, const tni_graph *g, size_t O);
/* Doubles a feature set of `rows` examples takes: the factors, the one-hot
 * cotangents of the sweep, per-example temporaries (not the tape). */
double tni_features_doubles(const tni_ntk_plan *plan, const tni_graph *g, size_t O, size_t rows);

/* Lays f out for `rows` examples of the plan, in its own memory when that
 * is large enough (f zeroed the first time), else in a new allocation. */
tn_status tni_features_reserve(tn_ctx *ctx, const tni_ntk_plan *plan, const tni_graph *g,
                               size_t O, size_t rows, tni_features *f);
void tni_features_free(tni_features *f);

/* f <- the factors of the rows of x (rows <= f's capacity), at the net's
 * parameters. */
tn_status tni_features_compute(tn_ntk *k, const tni_ntk_plan *plan, const double *x, size_t rows,
                               tni_features *f);

/* --- a tile pair's block of the kernel: the Gram nodes' parts
 * (structured.c; tmp: tni_structured_tmp_doubles), then the Jacobian
 * nodes' contraction J_A J_B^T (jacobian.c), both added into K (traced:
 * the sum over outputs, not yet the mean; diag: the lower triangle). */
size_t tni_structured_tmp_doubles(const tni_ntk_plan *plan, const tni_graph *g, size_t a,
                                  size_t b, size_t O, int full);
void tni_structured_block(int threads, const tni_ntk_plan *plan, const tni_graph *g, size_t O,
                          int full, const tni_features *A, const tni_features *B, int diag,
                          double *K, size_t ldk, double *tmp);
void tni_jacobian_block(int threads, size_t O, size_t cols, int full, const double *JA, size_t a,
                        const double *JB, size_t b, int diag, double *K, size_t ldk);

#endif
