/*
 * example_inputs.c -- writes what a C training example hands the library:
 * its data as examples/support/data.c prepares them, and its minibatches'
 * order, epoch by epoch, so that python_parity.py can run the Python port
 * of the example on exactly those inputs.
 *
 *   example_inputs DIR --train N --test N --seed S --batch B --epochs E
 *                      [--synthetic] [--data D]
 *
 * The flags mean what they mean to the training examples.  Writes into DIR
 * (which must exist), in the machine's byte order:
 *   source.txt             the text of the "data:" line
 *   shape.txt              "n_train n_test d classes"
 *   train_x, test_x        doubles, n x d, row-major
 *   train_labels, ...      int32, n
 *   order                  uint64, epochs x n_train: the rows of each
 *                          epoch's batches, in the order they are trained
 */
#include "support/cli.h"
#include "support/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_file(const char *dir, const char *name, const void *data, size_t size,
                       size_t count)
{
    char path[4096];
    ex_join_path(path, sizeof path, dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, size, count, f) != count || fclose(f) != 0)
        ex_die("cannot write %s", path);
}

static void write_labels(const char *dir, const char *name, const ex_dataset *ds)
{
    int32_t *labels = ex_xmalloc(ds->n, sizeof(int32_t));
    for (size_t i = 0; i < ds->n; i++) labels[i] = ds->labels[i];
    write_file(dir, name, labels, sizeof(int32_t), ds->n);
    free(labels);
}

int main(int argc, char **argv)
{
    size_t n_train = 0, n_test = 0, batch = 128, epochs = 1;
    uint64_t seed = 1;
    int synthetic = 0;
    const char *data_dir = NULL;
    const ex_arg args[] = {
        {"train", EX_ARG_SIZE, &n_train, "the first N training examples (0: all)"},
        {"test", EX_ARG_SIZE, &n_test, "the first N test examples (0: all)"},
        {"seed", EX_ARG_U64, &seed, "the example's seed (the shuffles derive from it)"},
        {"batch", EX_ARG_SIZE, &batch, "examples per step"},
        {"epochs", EX_ARG_SIZE, &epochs, "epochs whose order is written"},
        {"synthetic", EX_ARG_FLAG, &synthetic, "the synthetic data set"},
        {"data", EX_ARG_STRING, &data_dir, EX_DATA_FLAG_HELP},
    };
    if (argc < 2 || argv[1][0] == '-') ex_die("usage: example_inputs DIR [flags] (--help)");
    const char *out = argv[1];
    argv[1] = argv[0];
    ex_parse_args(argc - 1, argv + 1, args, sizeof args / sizeof args[0],
                  "Writes the data and the batches' order of a C training example.");
    if (batch == 0) ex_die("--batch must be > 0");

    ex_data data;
    ex_load_data_flags(data_dir, n_train, n_test, synthetic, 0, &data);
    write_file(out, "source.txt", data.source, 1, strlen(data.source));
    char shape[128];
    const int len = snprintf(shape, sizeof shape, "%zu %zu %zu %zu\n", data.train.n,
                             data.test.n, data.train.d, data.train.classes);
    write_file(out, "shape.txt", shape, 1, (size_t)len);
    write_file(out, "train_x", data.train.x, sizeof(double), data.train.n * data.train.d);
    write_file(out, "test_x", data.test.x, sizeof(double), data.test.n * data.test.d);
    write_labels(out, "train_labels", &data.train);
    write_labels(out, "test_labels", &data.test);

    /* The batcher of the training examples, walked as they walk it. */
    ex_batcher b;
    ex_batcher_init(&b, &data.train, batch, ex_shuffle_seed(seed));
    uint64_t *order = ex_xmalloc(epochs * data.train.n, sizeof(uint64_t));
    for (size_t e = 0; e < epochs; e++) {
        size_t at = 0;
        while (ex_batcher_next(&b) > 0) {
            /* The rows just gathered: the batch ends at the batcher's position. */
            for (; at < b.pos; at++) order[e * data.train.n + at] = b.order[at];
        }
    }
    write_file(out, "order", order, sizeof(uint64_t), epochs * data.train.n);
    free(order);
    ex_batcher_free(&b);
    ex_data_free(&data);
    return EXIT_SUCCESS;
}
