#!/usr/bin/env python3
"""full_training.py -- examples/full_training.c in Python: an MLP trained as
itself (trainer order 0) on Fashion-MNIST with softmax cross-entropy.
Prints per epoch the mean training loss, the test accuracy on the whole
test set and the elapsed time.

    python3 bindings/python/examples/full_training.py [--epochs N] ... (--help)

It takes the C program's flags and prints its lines.  Given the same flags
and the same library, every number it prints except the seconds is the C
program's, digit for digit: the data preparation, the shuffles and the
library calls are ported one for one (common.py), so the library computes
on the same bits, and compare_with_c.py checks it.

The recipe is the same as in C; everything else (flags, data, network,
trainer, the per-epoch report) is the training session of common.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taylornet as tn  # noqa: E402

from common import TrainConfig, TrainSession, die, parse_args  # noqa: E402


def main(argv):
    cfg = TrainConfig()
    parse_args(argv, TrainConfig.args(), cfg,
               "Trains an MLP (the full network, trainer order 0) on Fashion-MNIST.")
    try:
        with TrainSession(cfg) as session:
            # Order 0, the trainer's default: the network itself is trained.
            session.run(cfg, None)
    except tn.TaylornetError as e:
        die(f"{e.function} failed: {tn.status_string(e.status)} ({e.message})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
