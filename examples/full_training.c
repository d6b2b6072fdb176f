/*
 * full_training.c -- the baseline every other training mode is compared
 * with: an MLP trained as itself (trainer order 0) on Fashion-MNIST with
 * softmax cross-entropy.  Prints per epoch the mean training loss, the test
 * accuracy on the whole test set and the elapsed time.
 *
 *   ./build/examples/full_training [--epochs N] [--threads T] ... (--help)
 *
 * Everything but the recipe (flags, data, network, trainer, the per-epoch
 * report) is the training session of common.h, shared with the Taylor-model
 * examples so their outputs compare line for line.
 */
#include "common.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    ex_train_config cfg;
    ex_train_config_default(&cfg);
    ex_arg args[EX_TRAIN_NARGS];
    ex_train_config_args(&cfg, args);
    ex_parse_args(argc, argv, args, EX_TRAIN_NARGS,
                  "Trains an MLP (the full network, trainer order 0) on Fashion-MNIST.");

    ex_train_session s;
    ex_train_session_open(&cfg, &s);
    /* Order 0, the trainer's default: the network itself is trained. */
    ex_train_session_run(&cfg, &s, NULL);
    ex_train_session_close(&s);
    return EXIT_SUCCESS;
}
