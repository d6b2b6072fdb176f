/* training.c -- flags, data, schedule and printing of the training examples (training.h). */
#include "training.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ex_train_flags_default(ex_train_flags *f)
{
    memset(f, 0, sizeof *f);
    f->epochs = 8;
    f->batch = 128;
    f->lr = 1e-3;
    f->schedule = "cosine";
    f->optimizer_name = "adam";
    f->loss_name = "xent";
    f->width = 256;
    f->depth = 2;
    f->param_name = "standard";
    f->seed = 1;
    /* One BLAS thread: measured on the 2-core target, two threads are
     * faster only when the machine is otherwise idle; with other jobs
     * running, every GEMM waits for its second thread to be scheduled and
     * an epoch took 5 to 10 times longer.  --threads 2 on a quiet machine. */
    f->threads = 1;
}

static int schedule_is_cosine(const char *schedule)
{
    if (strcmp(schedule, "cosine") == 0) return 1;
    if (strcmp(schedule, "constant") == 0) return 0;
    ex_die("unknown schedule '%s' (cosine, constant)", schedule);
}

void ex_train_flags_parse(ex_train_flags *f, int argc, char **argv, const ex_arg *extra,
                          size_t n_extra, const char *about)
{
    const ex_arg shared[] = {
        {"epochs", EX_ARG_SIZE, &f->epochs, "passes over the training set"},
        {"batch", EX_ARG_SIZE, &f->batch, "examples per step"},
        {"lr", EX_ARG_DOUBLE, &f->lr, "initial learning rate"},
        {"schedule", EX_ARG_STRING, &f->schedule, "learning rate by epoch: cosine or constant"},
        {"optimizer", EX_ARG_STRING, &f->optimizer_name,
         "sgd, momentum, nesterov, rmsprop or adam"},
        {"loss", EX_ARG_STRING, &f->loss_name,
         "xent (softmax cross-entropy) or mse (one-hot targets)"},
        {"width", EX_ARG_SIZE, &f->width, "units per hidden layer"},
        {"depth", EX_ARG_SIZE, &f->depth, "hidden layers"},
        {"param", EX_ARG_STRING, &f->param_name, "parameterization: standard or ntk"},
        {"seed", EX_ARG_U64, &f->seed, "seed of the initialization and the shuffles"},
        {"threads", EX_ARG_INT, &f->threads, "BLAS threads"},
        {"train", EX_ARG_SIZE, &f->n_train, "use the first N training examples (0: all)"},
        {"test", EX_ARG_SIZE, &f->n_test, "use the first N test examples (0: all)"},
        {"data", EX_ARG_STRING, &f->data_dir, EX_DATA_FLAG_HELP},
        {"synthetic", EX_ARG_FLAG, &f->synthetic, "use the synthetic data set"},
        {"checkpoint", EX_ARG_STRING, &f->checkpoint,
         "FILE: save the run there (tn_trainer_save) after every epoch"},
        {"resume", EX_ARG_STRING, &f->resume,
         "FILE: continue the run checkpointed there; the model comes from FILE, the other "
         "flags must be the run's"},
    };
    const ex_arg *tables[2] = {shared, extra};
    const size_t sizes[2] = {sizeof shared / sizeof shared[0], n_extra};
    ex_parse_flags(argc, argv, tables, sizes, extra ? 2 : 1, about);

    if (f->epochs == 0 || f->batch == 0 || f->width == 0)
        ex_die("--epochs, --batch and --width must be > 0");
    /* Every name is checked before the data is read, so a typo fails at once. */
    f->optimizer = ex_optimizer_from_name(f->optimizer_name);
    f->loss = ex_loss_from_name(f->loss_name);
    f->param = ex_parameterization_from_name(f->param_name);
    (void)schedule_is_cosine(f->schedule);
}

void ex_train_load_data(const ex_train_flags *f, ex_data *data)
{
    ex_load_data_flags(f->data_dir, f->n_train, f->n_test, f->synthetic, 0, data);
}

double ex_train_lr(const ex_train_flags *f, size_t epoch)
{
    const double pi = 3.14159265358979323846;
    if (!schedule_is_cosine(f->schedule) || f->epochs == 0) return f->lr;
    /* Past the end the rate stays at its last value rather than rising again. */
    if (epoch >= f->epochs) epoch = f->epochs - 1;
    return f->lr * 0.5 * (1.0 + cos(pi * (double)epoch / (double)f->epochs));
}

void ex_print_setup(const ex_train_flags *f, const tn_net *net, const char *model, ...)
{
    printf("net: %zu -> %zu x %zu ReLU -> %zu, %s parameterization, %zu parameters\n",
           tn_net_input_size(net), f->depth, f->width, tn_net_output_dim(net), f->param_name,
           tn_net_num_params(net));
    /* The loss is named only when it is not full_training's, so that
     * program's output stays as it was. */
    char loss_note[32] = "";
    if (f->loss != TN_LOSS_SOFTMAX_XENT)
        snprintf(loss_note, sizeof loss_note, ", %s loss", f->loss_name);
    printf("training: %s, lr %g (%s), batch %zu, %zu epochs, seed %" PRIu64 ", %d threads%s\n",
           f->optimizer_name, f->lr, f->schedule, f->batch, f->epochs, f->seed, f->threads,
           loss_note);
    if (model) {
        va_list ap;
        va_start(ap, model);
        printf("model: ");
        vprintf(model, ap);
        printf("\n");
        va_end(ap);
    }
    printf("%5s  %9s  %10s  %9s  %8s\n", "epoch", "lr", "train_loss", "test_acc", "seconds");
    fflush(stdout);
}

void ex_print_epoch(size_t epoch, double lr, double train_loss, double test_accuracy,
                    double seconds)
{
    printf("%5zu  %9.2e  %10.4f  %9.4f  %8.1f\n", epoch + 1, lr, train_loss, test_accuracy,
           seconds);
    fflush(stdout);
}

void ex_print_final(double test_accuracy, size_t epochs, double seconds)
{
    printf("final test accuracy %.4f after %zu epochs, %.1f s\n", test_accuracy, epochs,
           seconds);
    fflush(stdout);
}

void ex_print_expansion(int k, const double *norms, double divergence, const double *fk,
                        const double *pred, const double *f, const ex_dataset *test, size_t n)
{
    const size_t nO = n * test->classes;
    printf("expansion at the trained theta, on the first %zu test images:\n", n);
    printf("  term norms |z_j| (Frobenius over the images):");
    for (int j = 0; j <= k; j++) printf(" %.3e", norms[j]);
    /* In a ReLU net the series of the frozen-mask network ends at the
     * depth, so a small ratio there says nothing of the masks that flipped
     * since theta0: the last line measures that gap directly. */
    printf("\n  divergence indicator |z_%d| / |z_%d| = %.4g (near or above 1: the terms do not "
           "shrink, f_k does not converge as k grows)\n",
           k, k - 1, divergence);
    printf("  tn_taylor sum of terms vs tn_trainer_predict: relative difference %.2e\n",
           ex_rel_diff(fk, pred, nO));
    printf("  f_%d vs the network f at the same theta: relative difference %.4f, accuracy %.4f "
           "vs %.4f\n",
           k, ex_rel_diff(fk, f, nO),
           (double)ex_count_correct(fk, n, test->classes, test->labels) / (double)n,
           (double)ex_count_correct(f, n, test->classes, test->labels) / (double)n);
    fflush(stdout);
}
