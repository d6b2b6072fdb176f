/* make_seeds.c -- writes the seed corpora of the fuzz harnesses:
 *
 *   fuzz_make_seeds DIR      -> DIR/netfile/, DIR/checkpoint/, DIR/api/
 *
 * Small valid files of every kind the loaders read (an MLP of each
 * parameterization, a residual convolutional network, pooling; checkpoints
 * in each training mode, with and without a probe) and a few API programs,
 * so that the fuzzers start past the checksums.  The committed corpora
 * (tests/fuzz/corpus) were made with it; run it again after a format change.
 * Built with -Dfuzz=true beside the harnesses; public API only. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "taylornet.h"

#define CHECK(call)                                                                 \
    do {                                                                            \
        if ((call) != TN_OK) {                                                      \
            fprintf(stderr, "%s: %s\n", #call, tn_ctx_errmsg(ctx));                 \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static tn_ctx *ctx;
static char path[4096];

static const char *in(const char *dir, const char *sub, const char *name)
{
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    return path;
}

static tn_net *mlp(size_t d, int param, tn_activation act)
{
    tn_net *net;
    CHECK(tn_net_create(ctx, &d, 1, &net));
    CHECK(tn_net_add_dense(net, 4));
    CHECK(tn_net_add_activation(net, act));
    CHECK(tn_net_add_dense(net, 2));
    CHECK(tn_net_set(net, TN_NET_PARAMETERIZATION, param));
    CHECK(tn_net_init(net, 7));
    return net;
}

static tn_net *residual_conv(void)
{
    const size_t shape[3] = {3, 3, 2};
    size_t block;
    tn_net *net;
    CHECK(tn_net_create(ctx, shape, 3, &net));
    CHECK(tn_net_add_conv2d(net, 2, 2, 2, 1, TN_PAD_SAME));
    CHECK(tn_net_current(net, &block));
    CHECK(tn_net_add_activation(net, TN_ACT_RELU));
    CHECK(tn_net_add_conv2d(net, 2, 3, 3, 1, TN_PAD_SAME));
    CHECK(tn_net_add_sum(net, block));
    CHECK(tn_net_add_avg_pool2d(net, 2, 2, 1, TN_PAD_VALID));
    CHECK(tn_net_add_flatten(net));
    CHECK(tn_net_add_dense(net, 2));
    CHECK(tn_net_init(net, 3));
    return net;
}

static void api_seed(const char *dir, const char *name, const unsigned char *b, size_t n)
{
    FILE *f = fopen(in(dir, "api", name), "wb");
    if (f == NULL || fwrite(b, 1, n, f) != n) exit(1);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    const char *subs[] = {"", "/netfile", "/checkpoint", "/api"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", dir, subs[i]);
        mkdir(path, 0777);
    }
    if (tn_ctx_create(&ctx) != TN_OK) return 1;

    /* Networks. */
    tn_net *nets[] = {mlp(3, TN_PARAM_NTK, TN_ACT_RELU), mlp(2, TN_PARAM_STANDARD, TN_ACT_TANH),
                      residual_conv()};
    const char *names[] = {"mlp-ntk-relu.tnn", "mlp-standard-tanh.tnn", "residual-conv.tnn"};
    for (int i = 0; i < 3; i++) CHECK(tn_net_save(nets[i], in(dir, "netfile", names[i])));

    /* Checkpoints: full Adam with a probe and diagnostics; linearized
     * momentum; order 2 re-expanded, centered and lazy RMSProp; the conv net. */
    const double x[4 * 18] = {0.5, -1, 0.25, 1, 0, -0.5, 2, 1, -1, 0.75, 0.5, -0.25};
    const double y[4 * 2] = {1, 0, 0, 1, 1, 0, 0, 1};
    struct { int net, opt, order, reexpand, centered, diag; double alpha; const char *name; } ck[] = {
        {0, TN_OPT_ADAM, 0, 0, 0, 1, 1.0, "full-adam-probe.tnck"},
        {1, TN_OPT_MOMENTUM, 1, 0, 0, 0, 1.0, "linearized-momentum.tnck"},
        {0, TN_OPT_RMSPROP, 2, 2, 1, 0, 4.0, "order2-reexpand-centered.tnck"},
        {2, TN_OPT_SGD, 1, 0, 0, 1, 1.0, "conv-linearized-sgd.tnck"},
    };
    for (size_t i = 0; i < sizeof ck / sizeof ck[0]; i++) {
        tn_net *net;
        tn_trainer *tr;
        CHECK(tn_net_clone(nets[ck[i].net], &net));
        CHECK(tn_trainer_create(net, &tr));
        CHECK(tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, ck[i].opt));
        CHECK(tn_trainer_set(tr, TN_TRAIN_ORDER, ck[i].order));
        CHECK(tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, (double)ck[i].reexpand));
        CHECK(tn_trainer_set(tr, TN_TRAIN_CENTERED, ck[i].centered));
        CHECK(tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, ck[i].alpha));
        if (ck[i].diag) {
            CHECK(tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
            CHECK(tn_trainer_set_probe(tr, x, 2));
        }
        for (int s = 0; s < 3; s++) CHECK(tn_trainer_step(tr, x, y, 4, NULL));
        CHECK(tn_trainer_save(tr, in(dir, "checkpoint", ck[i].name)));
        tn_trainer_free(tr);
        tn_net_free(net);
    }
    for (int i = 0; i < 3; i++) tn_net_free(nets[i]);

    /* API programs (fuzz_api.c reads them byte by byte): everything on, an
     * MLP; an image input with conv, pool and a residual sum; settings at
     * their extremes. */
    const unsigned char a1[] = {15, 0, 2, 3, 0, 3, 2, 2, 0, 4, 1, 2, 1, 40, 0, 64, 10, 64, 0,
                                5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    const unsigned char a2[] = {14, 1, 3, 3, 1, 5, 3, 2, 2, 1, 1, 8, 5, 2, 2, 7, 1, 1, 2,
                                4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const unsigned char a3[] = {11, 0, 4, 1, 0, 5, 2, 3, 1, 1, 3, 1, 14, 2, 16, 3, 15, 0,
                                7, 2, 1, 200, 201, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42};
    api_seed(dir, "mlp-all", a1, sizeof a1);
    api_seed(dir, "conv-residual", a2, sizeof a2);
    api_seed(dir, "extreme-settings", a3, sizeof a3);
    tn_ctx_free(ctx);
    return 0;
}
