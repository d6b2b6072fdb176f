/* optim.c -- torch.optim update rules (optim.h). */
#include "optim.h"
#include "../core/core.h"

#include <math.h>

int tni_opt_state_count(const tni_opt *o)
{
    switch (o->kind) {
    case TN_OPT_SGD: return 0;
    case TN_OPT_MOMENTUM:
    case TN_OPT_NESTEROV: return 1;
    case TN_OPT_RMSPROP: return 2;      /* square average, momentum buffer */
    default: return 2;                  /* Adam: first and second moments */
    }
}

void tni_opt_update(const tni_opt *o, size_t P, const double *theta, const double *grad,
                    const double *s0, const double *s1, double *theta_new, double *s0_new,
                    double *s1_new)
{
    const double lr = o->lr, wd = o->weight_decay, mu = o->momentum;
    switch (o->kind) {
    case TN_OPT_SGD:
        for (size_t i = 0; i < P; i++) theta_new[i] = theta[i] - lr * (grad[i] + wd * theta[i]);
        break;
    case TN_OPT_MOMENTUM:
    case TN_OPT_NESTEROV: {
        const int nesterov = o->kind == TN_OPT_NESTEROV, first = o->t == 1;
        for (size_t i = 0; i < P; i++) {
            const double g = grad[i] + wd * theta[i];
            const double b = first ? g : mu * s0[i] + g;
            s0_new[i] = b;
            theta_new[i] = theta[i] - lr * (nesterov ? g + mu * b : b);
        }
        break;
    }
    case TN_OPT_RMSPROP: {
        const double a = o->beta2;
        for (size_t i = 0; i < P; i++) {
            const double g = grad[i] + wd * theta[i];
            const double v = a * s0[i] + (1.0 - a) * g * g;
            const double d = sqrt(v) + o->eps;
            s0_new[i] = v;
            if (mu > 0.0) {
                const double b = mu * s1[i] + g / d;
                s1_new[i] = b;
                theta_new[i] = theta[i] - lr * b;
            } else {
                s1_new[i] = s1[i];
                theta_new[i] = theta[i] - lr * (g / d);
            }
        }
        break;
    }
    default: {   /* TN_OPT_ADAM */
        const double b1 = o->beta1, b2 = o->beta2;
        const double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
        const double step = lr / bc1, sqrt_bc2 = sqrt(bc2);
        for (size_t i = 0; i < P; i++) {
            const double g = grad[i] + wd * theta[i];
            /* torch's lerp_(g, 1 - b1), rounding included */
            const double w = 1.0 - b1;
            const double m = w < 0.5 ? s0[i] + w * (g - s0[i]) : g - (g - s0[i]) * (1.0 - w);
            const double v = b2 * s1[i] + (1.0 - b2) * g * g;
            s0_new[i] = m;
            s1_new[i] = v;
            theta_new[i] = theta[i] - step * (m / (sqrt(v) / sqrt_bc2 + o->eps));
        }
        break;
    }
    }
}
