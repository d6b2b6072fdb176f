/* loss.h -- the two losses of docs/math.md §2, with their gradients. */
#ifndef TNI_LOSS_H
#define TNI_LOSS_H

#include <stddef.h>

/* The loss of f (n x O) against targets y (n x O), the mean over the n
 * examples, and, when grad is not NULL, grad = dL/df (n x O).  MSE:
 * (1/2n) sum |f - y|^2.  Softmax cross-entropy: -(1/n) sum_i sum_c y_ic log
 * softmax(f_i)_c, shifted by the row maximum so nothing overflows; the
 * gradient is ((sum_c y_ic) softmax(f_i) - y_i) / n, correct for rows of y
 * that do not sum to 1.  A non-finite input gives a non-finite loss. */
double tni_loss(int kind, size_t n, size_t O, const double *f, const double *y, double *grad);

#endif
