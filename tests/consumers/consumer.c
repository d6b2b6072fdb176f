/* consumer.c -- a C program built outside the source tree against the
 * installed library (tests/consumers/run.sh):
 *   cc -std=c11 consumer.c $(pkg-config --cflags --libs taylornet)
 * Fits a small MLP to a smooth function with MSE and Adam; passes when the
 * loss falls and the loaded library's version matches the header. */
#include <taylornet.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N 64
#define D 2

static int fail(const char *what, tn_status st, const tn_ctx *ctx)
{
    fprintf(stderr, "consumer-c: %s: %s: %s\n", what, tn_status_string(st), tn_ctx_errmsg(ctx));
    return 1;
}

#define TRY(what, expr)                                                                    \
    do {                                                                                   \
        tn_status st_ = (expr);                                                            \
        if (st_ != TN_OK) {                                                                \
            rc = fail(what, st_, ctx);                                                     \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)

#define STR2(x) #x
#define STR(x) STR2(x)

int main(void)
{
    const char *want = STR(TN_VERSION_MAJOR) "." STR(TN_VERSION_MINOR) "." STR(TN_VERSION_PATCH);
    if (strcmp(tn_version_string(), want) != 0 || tn_version_number() != TN_VERSION_NUMBER) {
        fprintf(stderr, "consumer-c: library version %s (%u), header %s (%u)\n",
                tn_version_string(), tn_version_number(), want, (unsigned)TN_VERSION_NUMBER);
        return 1;
    }

    /* y = sin(x0) + 0.5 x1 on a grid of [-1, 1]^2 */
    double x[N * D], y[N];
    for (int i = 0; i < N; i++) {
        x[D * i] = -1.0 + 2.0 * (i % 8) / 7.0;
        x[D * i + 1] = -1.0 + 2.0 * (i / 8) / 7.0;
        y[i] = sin(x[D * i]) + 0.5 * x[D * i + 1];
    }

    int rc = 0;
    tn_ctx *ctx = NULL;
    tn_net *net = NULL;
    tn_trainer *tr = NULL;
    if (tn_ctx_create(&ctx) != TN_OK) {
        fprintf(stderr, "consumer-c: tn_ctx_create failed\n");
        return 1;
    }
    const size_t shape[1] = {D};
    TRY("tn_net_create", tn_net_create(ctx, shape, 1, &net));
    TRY("tn_net_add_dense", tn_net_add_dense(net, 32));
    TRY("tn_net_add_activation", tn_net_add_activation(net, TN_ACT_TANH));
    TRY("tn_net_add_dense", tn_net_add_dense(net, 1));
    TRY("tn_net_init", tn_net_init(net, 42));
    TRY("tn_trainer_create", tn_trainer_create(net, &tr));
    TRY("tn_trainer_set", tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TRY("tn_trainer_set", tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 1e-2));

    double first = 0.0, last = 0.0;
    TRY("tn_trainer_loss", tn_trainer_loss(tr, x, y, N, &first));
    for (int step = 0; step < 200; step++) TRY("tn_trainer_step", tn_trainer_step(tr, x, y, N, NULL));
    TRY("tn_trainer_loss", tn_trainer_loss(tr, x, y, N, &last));

    double pred[N];
    TRY("tn_net_forward", tn_net_forward(net, x, N, pred));
    if (!(last < 0.25 * first) || !isfinite(pred[0])) {
        fprintf(stderr, "consumer-c: loss %g -> %g did not fall enough\n", first, last);
        rc = 1;
        goto out;
    }
    printf("consumer-c: taylornet %s, loss %.4g -> %.4g after %llu steps\n", tn_version_string(),
           first, last, (unsigned long long)tn_trainer_num_steps(tr));
    printf("OK\n");
out:
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    return rc;
}
