#!/usr/bin/env python3
"""linearized_training.py -- examples/linearized_training.c in Python: the
linearized MLP f(theta0) + J(theta0)(theta - theta0) (trainer order 1
around the initialization, Lee et al. 2019) trained on Fashion-MNIST with
the data, loss, optimizer and per-epoch report of full_training.py.

    python3 bindings/python/examples/linearized_training.py [--train N] ... (--help)

Given the same flags and library, every number it prints except the seconds
is the C program's, digit for digit (compare_with_c.py checks it).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taylornet as tn  # noqa: E402

from common import TrainConfig, TrainSession, die, parse_args  # noqa: E402


def main(argv):
    cfg = TrainConfig()
    # A linearized step costs about 2.3 full steps (no cached base with a
    # new batch every step): the C program's shorter default run.
    cfg.n_train = 20000
    cfg.epochs = 5
    parse_args(argv, TrainConfig.args(), cfg,
               "Trains the linearized MLP (trainer order 1 around the initialization) on "
               "Fashion-MNIST.")
    try:
        with TrainSession(cfg) as session:
            # theta0 is the network's parameters now: the initialization.
            session.tr.set(tn.TrainParam.ORDER, 1)
            session.run(cfg, "linearized network (order 1 around the initialization)")
    except tn.TaylornetError as e:
        die(f"{e.function} failed: {tn.status_string(e.status)} ({e.message})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
