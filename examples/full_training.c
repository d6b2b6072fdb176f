/*
 * full_training.c -- the baseline every other training mode is compared
 * with: an MLP trained as itself (trainer order 0) on Fashion-MNIST with
 * softmax cross-entropy.  Prints per epoch the mean training loss, the test
 * accuracy on the whole test set and the elapsed time.
 *
 *   ./build/examples/full_training [--epochs N] [--threads T] ... (--help)
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int optimizer_from_name(const char *name)
{
    static const struct {
        const char *name;
        int value;
    } table[] = {{"sgd", TN_OPT_SGD},         {"momentum", TN_OPT_MOMENTUM},
                 {"nesterov", TN_OPT_NESTEROV}, {"rmsprop", TN_OPT_RMSPROP},
                 {"adam", TN_OPT_ADAM}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0) return table[i].value;
    ex_die("unknown optimizer '%s' (sgd, momentum, nesterov, rmsprop, adam)", name);
}

static int parameterization_from_name(const char *name)
{
    if (strcmp(name, "standard") == 0) return TN_PARAM_STANDARD;
    if (strcmp(name, "ntk") == 0) return TN_PARAM_NTK;
    ex_die("unknown parameterization '%s' (standard, ntk)", name);
}

int main(int argc, char **argv)
{
    size_t epochs = 8, batch = 128, width = 256, depth = 2, n_train = 0, n_test = 0;
    /* One BLAS thread by default: measured on the 2-core target, two threads
     * are faster only when the machine is otherwise idle; with other jobs
     * running, every GEMM waits for its second thread to be scheduled and an
     * epoch took 5 to 10 times longer.  --threads 2 on a quiet machine. */
    int threads = 1, synthetic = 0;
    uint64_t seed = 1;
    double lr = 1e-3;
    const char *optimizer = "adam", *param = "standard", *schedule = "cosine", *data_dir = NULL;
    const ex_arg args[] = {
        {"epochs", EX_ARG_SIZE, &epochs, "passes over the training set"},
        {"batch", EX_ARG_SIZE, &batch, "examples per step"},
        {"lr", EX_ARG_DOUBLE, &lr, "initial learning rate"},
        {"schedule", EX_ARG_STRING, &schedule, "learning rate by epoch: cosine or constant"},
        {"optimizer", EX_ARG_STRING, &optimizer, "sgd, momentum, nesterov, rmsprop or adam"},
        {"width", EX_ARG_SIZE, &width, "units per hidden layer"},
        {"depth", EX_ARG_SIZE, &depth, "hidden layers"},
        {"param", EX_ARG_STRING, &param, "parameterization: standard or ntk"},
        {"seed", EX_ARG_U64, &seed, "seed of the initialization and the shuffles"},
        {"threads", EX_ARG_INT, &threads, "BLAS threads"},
        {"train", EX_ARG_SIZE, &n_train, "use the first N training examples (0: all)"},
        {"test", EX_ARG_SIZE, &n_test, "use the first N test examples (0: all)"},
        {"data", EX_ARG_STRING, &data_dir, "Fashion-MNIST directory (else $" EX_FASHION_MNIST_ENV
                                           " or " EX_FASHION_MNIST_DIR ")"},
        {"synthetic", EX_ARG_FLAG, &synthetic, "use the synthetic data set"},
    };
    ex_parse_args(argc, argv, args, sizeof args / sizeof args[0],
                  "Trains an MLP (the full network, trainer order 0) on Fashion-MNIST.");
    if (epochs == 0 || batch == 0 || width == 0) ex_die("--epochs, --batch and --width must be > 0");
    const int opt_kind = optimizer_from_name(optimizer);
    const int cosine = strcmp(schedule, "cosine") == 0;
    if (!cosine && strcmp(schedule, "constant") != 0)
        ex_die("unknown schedule '%s' (cosine, constant)", schedule);

    ex_data_options dopt;
    ex_data_options_default(&dopt);
    dopt.dir = data_dir;
    dopt.max_train = n_train;
    dopt.max_test = n_test;
    dopt.force_synthetic = synthetic;
    ex_data data;
    if (ex_load_data(&dopt, &data) != 0) return EXIT_FAILURE;

    tn_ctx *ctx = NULL;
    tn_status st = tn_ctx_create(&ctx);
    if (st != TN_OK) ex_die("tn_ctx_create: %s", tn_status_string(st));
    EX_CHECK(ctx, tn_ctx_set_threads(ctx, threads));

    ex_mlp_spec spec;
    ex_mlp_spec_default(&spec);
    spec.input = data.train.d;
    spec.width = width;
    spec.hidden_layers = depth;
    spec.outputs = data.train.classes;
    spec.parameterization = parameterization_from_name(param);
    spec.seed = seed;
    tn_net *net = NULL;
    EX_CHECK(ctx, ex_build_mlp(ctx, &spec, &net));

    tn_trainer *tr = NULL;
    EX_CHECK(ctx, tn_trainer_create(net, &tr));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, opt_kind));

    printf("net: %zu -> %zu x %zu ReLU -> %zu, %s parameterization, %zu parameters\n",
           spec.input, depth, width, spec.outputs, param, tn_net_num_params(net));
    printf("training: %s, lr %g (%s), batch %zu, %zu epochs, seed %" PRIu64 ", %d threads\n",
           optimizer, lr, schedule, batch, epochs, seed, threads);
    printf("%5s  %9s  %10s  %9s  %8s\n", "epoch", "lr", "train_loss", "test_acc", "seconds");

    ex_batcher batcher;
    /* The shuffles get their own seed stream, distinct from the init's. */
    ex_batcher_init(&batcher, &data.train, batch, seed ^ UINT64_C(0x5eed5eed5eed5eed));
    const double t0 = ex_now();
    double acc = 0.0;
    for (size_t epoch = 0; epoch < epochs; epoch++) {
        const double epoch_lr = cosine ? ex_cosine_lr(lr, epoch, epochs) : lr;
        double loss;
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, epoch_lr));
        EX_CHECK(ctx, ex_train_epoch(tr, &batcher, &loss));
        EX_CHECK(ctx, ex_trainer_accuracy(tr, &data.test, 0, &acc));
        printf("%5zu  %9.2e  %10.4f  %9.4f  %8.1f\n", epoch + 1, epoch_lr, loss, acc,
               ex_now() - t0);
        fflush(stdout);
    }
    printf("final test accuracy %.4f after %zu epochs, %.1f s\n", acc, epochs, ex_now() - t0);

    ex_batcher_free(&batcher);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
