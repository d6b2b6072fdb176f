/*
 * linearized_training.c -- trains the linearized network (trainer order 1,
 * Lee et al. 2019): f_1(theta; x) = f(theta0; x) + J(theta0; x) (theta -
 * theta0), linear in theta around the initialization theta0, with the same
 * data, loss, optimizer and report as full_training, so the two outputs
 * compare line for line.  Prints per epoch the mean training loss, the test
 * accuracy of the linearized model and the elapsed time.
 *
 *   ./build/examples/linearized_training [--train N] [--epochs N] ... (--help)
 */
#include "common.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    ex_train_config cfg;
    ex_train_config_default(&cfg);
    /* A linearized step costs about 2.3 full steps (a new batch every step:
     * no cached base), so the default run is cut to a few minutes on two
     * cores: a third of the training set, fewer epochs. */
    cfg.n_train = 20000;
    cfg.epochs = 5;
    ex_arg args[EX_TRAIN_NARGS];
    ex_train_config_args(&cfg, args);
    ex_parse_args(argc, argv, args, EX_TRAIN_NARGS,
                  "Trains the linearized MLP (trainer order 1 around the initialization) on "
                  "Fashion-MNIST.");

    ex_train_session s;
    ex_train_session_open(&cfg, &s);
    /* theta0 is the network's parameters now: the initialization. */
    EX_CHECK(s.ctx, tn_trainer_set(s.tr, TN_TRAIN_ORDER, 1));
    ex_train_session_run(&cfg, &s, "linearized network (order 1 around the initialization)");
    ex_train_session_close(&s);
    return EXIT_SUCCESS;
}
