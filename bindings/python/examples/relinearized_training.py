#!/usr/bin/env python3
"""relinearized_training.py -- examples/relinearized_training.c in Python:
iteratively re-linearized training (Goldwaser & Ge 2022).  The linearized
network (trainer order 1) is trained and every K steps its base theta0
moves to the current theta (TrainParam.REEXPAND_EVERY).  K = 1 is full
training step for step; K beyond the run's length is linearized training.

    python3 bindings/python/examples/relinearized_training.py [--reexpand K] ... (--help)

Given the same flags and library, every number it prints except the seconds
is the C program's, digit for digit (compare_with_c.py checks it).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taylornet as tn  # noqa: E402

from common import ARG_U64, Arg, TrainConfig, TrainSession, die, parse_args  # noqa: E402


def main(argv):
    cfg = TrainConfig()
    # The same budget as linearized_training, so the two compare directly.
    cfg.n_train = 20000
    cfg.epochs = 5
    cfg.reexpand = 100
    args = TrainConfig.args() + [
        Arg("reexpand", ARG_U64, "reexpand", "re-linearize at the current theta every K steps")]
    parse_args(argv, args, cfg,
               "Trains the linearized MLP on Fashion-MNIST, re-linearizing every K steps.")
    if cfg.reexpand == 0:
        die("--reexpand must be > 0 (linearized_training never re-expands)")
    try:
        with TrainSession(cfg) as session:
            session.tr.set(tn.TrainParam.ORDER, 1)
            session.tr.set(tn.TrainParam.REEXPAND_EVERY, float(cfg.reexpand))
            session.run(cfg, "linearized network (order 1), re-linearized every "
                             f"{cfg.reexpand} steps")
            steps = session.tr.num_steps
            print(f"re-linearized {steps // cfg.reexpand} times in {steps} steps")
    except tn.TaylornetError as e:
        die(f"{e.function} failed: {tn.status_string(e.status)} ({e.message})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
