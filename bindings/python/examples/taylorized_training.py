#!/usr/bin/env python3
"""taylorized_training.py -- examples/taylorized_training.c in Python:
trains the order-k Taylor model of an MLP around its initialization
(trainer order k, Bai et al. 2020),

    f_k(theta; x) = sum_{j=0..k} (1/j!) D^j f(theta0; x)[(theta - theta0)^j],

with the data, loss, optimizer and per-epoch report of full_training.py,
then evaluates the expansion's terms on test images at the trained theta:
their norms, the divergence indicator |z_k| / |z_{k-1}|, and how far f_k
has moved from the network f itself.

    python3 bindings/python/examples/taylorized_training.py [--order K] ... (--help)

Given the same flags and library, every number it prints except the seconds
is the C program's, digit for digit (compare_with_c.py checks it).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taylornet as tn  # noqa: E402

from common import (ARG_INT, ARG_SIZE, Arg, TrainConfig, TrainSession,  # noqa: E402
                    count_correct, die, parse_args, rel_diff)


def report_expansion(session, order, theta0, n):
    """The expansion the trainer trained, rebuilt around the same theta0, on
    the first n test images at the trained theta: its terms, their norms,
    the divergence indicator, and f_k beside f."""
    x = session.data.test.x[:n]                 # a row slice: still C-contiguous
    labels = session.data.test.labels[:n]
    with tn.Taylor(session.net, order) as tay:
        # Created now, the expansion would sit at the trained theta; the
        # model that was trained is the one around the initialization.
        tay.rebase(theta0)
        # theta None: the network's parameters now, which the trainer updated.
        terms = tay.terms(x)
        norms = tay.term_norms()
        ratio = tay.divergence()
    # Highest order first, as the library sums: the small terms are added
    # before the large ones.
    fk = np.zeros_like(terms[0])
    for j in range(order, -1, -1):
        fk += terms[j]
    pred = session.tr.predict(x)
    f = session.net.forward(x)

    print(f"expansion at the trained theta, on the first {n} test images:")
    print("  term norms |z_j| (Frobenius over the images):"
          + "".join(" %.3e" % v for v in norms))
    # In a ReLU net the series of the frozen-mask network ends at the depth,
    # so a small ratio there says nothing of the masks that flipped since
    # theta0: the last line measures that gap directly.
    print("  divergence indicator |z_%d| / |z_%d| = %.4g (near or above 1: the terms do not "
          "shrink, f_k does not converge as k grows)" % (order, order - 1, ratio))
    print("  tn_taylor sum of terms vs tn_trainer_predict: relative difference %.2e"
          % rel_diff(fk, pred))
    print("  f_%d vs the network f at the same theta: relative difference %.4f, "
          "accuracy %.4f vs %.4f"
          % (order, rel_diff(fk, f), float(count_correct(fk, labels)) / float(n),
             float(count_correct(f, labels)) / float(n)))


def main(argv):
    cfg = TrainConfig()
    # An order-k step costs about (5k + 2) / 3 full steps (4 at k = 2): the
    # C program's shorter default run.
    cfg.n_train = 20000
    cfg.epochs = 5
    cfg.order = 2
    cfg.div_images = 1000
    args = TrainConfig.args() + [
        Arg("order", ARG_INT, "order", "Taylor order k"),
        Arg("div-images", ARG_SIZE, "div_images",
            "test images the final expansion report is computed on")]
    parse_args(argv, args, cfg,
               "Trains the order-k Taylor model of an MLP around its initialization on "
               "Fashion-MNIST.")
    if cfg.order < 1 or cfg.order > tn.Taylor.max_order():
        die(f"--order must be in [1, {tn.Taylor.max_order()}]")
    if cfg.div_images == 0:
        die("--div-images must be > 0")
    try:
        with TrainSession(cfg) as session:
            n_div = min(cfg.div_images, session.data.test.n)
            # Setting the order makes the network's parameters now (the
            # initialization) the base theta0; the trainer does not hand it
            # back, so keep a copy for the report.
            theta0 = session.net.get_params()
            session.tr.set(tn.TrainParam.ORDER, cfg.order)
            session.run(cfg, f"order-{cfg.order} Taylor model around the initialization")
            report_expansion(session, cfg.order, theta0, n_div)
    except tn.TaylornetError as e:
        die(f"{e.function} failed: {tn.status_string(e.status)} ({e.message})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
