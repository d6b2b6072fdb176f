/* loss.c -- MSE and softmax cross-entropy (loss.h). */
#include "loss.h"
#include "../core/core.h"

#include <math.h>

static double mse(size_t n, size_t O, const double *f, const double *y, double *grad)
{
    const double inv = 1.0 / (double)n;
    double acc = 0.0;
    for (size_t e = 0; e < n * O; e++) {
        const double r = f[e] - y[e];
        acc += r * r;
        if (grad) grad[e] = r * inv;
    }
    return 0.5 * acc * inv;
}

static double xent(size_t n, size_t O, const double *f, const double *y, double *grad)
{
    /* One exp per logit: the gradient row first holds exp(f - max), then the
     * softmax minus the targets (PyTorch's form, softmax = e / sum e). */
    const double inv = 1.0 / (double)n;
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *fi = f + i * O, *yi = y + i * O;
        double *gi = grad ? grad + i * O : NULL;
        double m = fi[0];
        for (size_t c = 1; c < O; c++) m = fi[c] > m ? fi[c] : m;
        double s = 0.0, ysum = 0.0, yf = 0.0;
        for (size_t c = 0; c < O; c++) {
            const double e = exp(fi[c] - m);
            if (gi) gi[c] = e;
            s += e;
            ysum += yi[c];
            yf += yi[c] * (fi[c] - m);
        }
        acc += ysum * log(s) - yf;       /* log-sum-exp minus m */
        if (gi) {
            const double w = ysum / s;
            for (size_t c = 0; c < O; c++) gi[c] = (w * gi[c] - yi[c]) * inv;
        }
    }
    return acc * inv;
}

double tni_loss(int kind, size_t n, size_t O, const double *f, const double *y, double *grad)
{
    return kind == TN_LOSS_SOFTMAX_XENT ? xent(n, O, f, y, grad) : mse(n, O, f, y, grad);
}
