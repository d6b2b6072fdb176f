"""training.py -- what the four Python training examples share besides their
recipe: the flags and their defaults, the learning-rate schedule, and the
lines they print (those of the C programs, examples/support/training.c, so
that the outputs compare line for line).
"""

import argparse
import math

import numpy as np

import taylornet as tn

# The C programs' names for the losses, and the binding's.
LOSSES = {"xent": "softmax_xent", "mse": "mse"}


def _positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not > 0")
    return value


class _Parser(argparse.ArgumentParser):
    """Prints, once the flags are parsed, what every example prints first:
    the kernels the library runs on (ex_parse_flags in the C programs)."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        print(tn.blas_info())
        return parsed


def flags(description, **defaults):
    """The flags every training example takes, with full_training's defaults
    (8 epochs of batch 128, Adam at 1e-3 with the cosine schedule, softmax
    cross-entropy, 784-256-256-10 ReLU in standard parameterization, seed 1,
    one BLAS thread, all the data) unless `defaults` changes them.  An
    example adds its own flags with add_argument."""
    parser = _Parser(description=description)
    add = parser.add_argument
    add("--epochs", type=_positive, default=8, help="passes over the training set")
    add("--batch", type=_positive, default=128, help="examples per step")
    add("--lr", type=float, default=1e-3, help="initial learning rate")
    add("--schedule", choices=["cosine", "constant"], default="cosine",
        help="learning rate by epoch")
    add("--optimizer", choices=["sgd", "momentum", "nesterov", "rmsprop", "adam"],
        default="adam")
    add("--loss", choices=sorted(LOSSES), default="xent",
        help="xent (softmax cross-entropy) or mse (one-hot targets)")
    add("--width", type=_positive, default=256, help="units per hidden layer")
    add("--depth", type=int, default=2, help="hidden layers")
    add("--param", choices=["standard", "ntk"], default="standard", help="parameterization")
    add("--seed", type=int, default=1, help="seed of the initialization and the shuffles")
    add("--threads", type=int, default=1, help="BLAS threads")
    add("--train", type=int, default=0, help="use the first N training examples (0: all)")
    add("--test", type=int, default=0, help="use the first N test examples (0: all)")
    add("--data", help="Fashion-MNIST directory (else $TN_FASHION_MNIST_DIR or "
                       "/usr/share/datasets/fashion-mnist)")
    add("--synthetic", action="store_true", help="use the synthetic data set")
    parser.set_defaults(**defaults)
    return parser


def learning_rate(args, epoch):
    """The rate of epoch `epoch` (from 0): args.lr throughout, or with the
    cosine schedule falling from args.lr to near 0 at the last epoch."""
    if args.schedule == "constant":
        return args.lr
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / args.epochs))


def print_setup(args, net, model=None):
    """The "net:", "training:" and "model:" lines and the table's header."""
    print(f"net: {net.input_size} -> {args.depth} x {args.width} ReLU -> {net.output_dim}, "
          f"{args.param} parameterization, {net.num_params} parameters")
    loss = "" if args.loss == "xent" else f", {args.loss} loss"
    print(f"training: {args.optimizer}, lr {args.lr:g} ({args.schedule}), batch {args.batch}, "
          f"{args.epochs} epochs, seed {args.seed}, {args.threads} threads{loss}")
    if model:
        print(f"model: {model}")
    print(f"{'epoch':>5}  {'lr':>9}  {'train_loss':>10}  {'test_acc':>9}  {'seconds':>8}",
          flush=True)


def print_epoch(epoch, lr, train_loss, test_accuracy, seconds):
    print(f"{epoch + 1:5d}  {lr:9.2e}  {train_loss:10.4f}  {test_accuracy:9.4f}  "
          f"{seconds:8.1f}", flush=True)


def print_final(test_accuracy, epochs, seconds):
    print(f"final test accuracy {test_accuracy:.4f} after {epochs} epochs, {seconds:.1f} s",
          flush=True)


def print_expansion(k, norms, divergence, fk, predicted, f, labels):
    """taylorized_training's last lines: the norms of the k + 1 terms, the
    divergence indicator, and f_k against the trainer's prediction and the
    network's outputs f."""
    def rel_diff(a, b):
        return math.sqrt(np.sum((a - b) ** 2) / np.sum(b ** 2))

    def accuracy(outputs):
        return np.count_nonzero(outputs.argmax(axis=1) == labels) / len(labels)

    print(f"expansion at the trained theta, on the first {len(labels)} test images:")
    print("  term norms |z_j| (Frobenius over the images):"
          + "".join(f" {v:.3e}" for v in norms))
    # In a ReLU net the series of the frozen-mask network ends at the depth,
    # so a small ratio there says nothing of the masks that flipped since
    # theta0: the last line measures that gap directly.
    print(f"  divergence indicator |z_{k}| / |z_{k - 1}| = {divergence:.4g} (near or above 1: "
          f"the terms do not shrink, f_k does not converge as k grows)")
    print(f"  tn_taylor sum of terms vs tn_trainer_predict: relative difference "
          f"{rel_diff(fk, predicted):.2e}")
    print(f"  f_{k} vs the network f at the same theta: relative difference "
          f"{rel_diff(fk, f):.4f}, accuracy {accuracy(fk):.4f} vs {accuracy(f):.4f}", flush=True)
