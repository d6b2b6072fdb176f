/*
 * relinearized_training.c -- iteratively re-linearized training (Goldwaser
 * & Ge 2022): the linearized network (trainer order 1) is trained, and every
 * K steps its base theta0 moves to the current theta
 * (TN_TRAIN_REEXPAND_EVERY K), so the model follows the network's features
 * as they change.  K = 1 is full training step for step; K beyond the run's
 * length is plain linearized training.  Same data, loss, optimizer and
 * per-epoch report as full_training.
 *
 *   ./build/examples/relinearized_training [--reexpand K] [--train N] ... (--help)
 */
#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    ex_train_config cfg;
    ex_train_config_default(&cfg);
    /* The same budget as linearized_training, so the two compare directly. */
    cfg.n_train = 20000;
    cfg.epochs = 5;
    uint64_t every = 100;
    ex_arg args[EX_TRAIN_NARGS + 1];
    ex_train_config_args(&cfg, args);
    args[EX_TRAIN_NARGS] =
        (ex_arg){"reexpand", EX_ARG_U64, &every, "re-linearize at the current theta every K steps"};
    ex_parse_args(argc, argv, args, EX_TRAIN_NARGS + 1,
                  "Trains the linearized MLP on Fashion-MNIST, re-linearizing every K steps.");
    if (every == 0) ex_die("--reexpand must be > 0 (linearized_training never re-expands)");

    ex_train_session s;
    ex_train_session_open(&cfg, &s);
    EX_CHECK(s.ctx, tn_trainer_set(s.tr, TN_TRAIN_ORDER, 1));
    EX_CHECK(s.ctx, tn_trainer_set(s.tr, TN_TRAIN_REEXPAND_EVERY, (double)every));

    char model[112];
    snprintf(model, sizeof model,
             "linearized network (order 1), re-linearized every %" PRIu64 " steps", every);
    ex_train_session_run(&cfg, &s, model);
    const uint64_t steps = tn_trainer_num_steps(s.tr);
    printf("re-linearized %" PRIu64 " times in %" PRIu64 " steps\n", steps / every, steps);
    ex_train_session_close(&s);
    return EXIT_SUCCESS;
}
