"""fashion_mnist.py -- the data of the Python examples: Fashion-MNIST (or a
synthetic stand-in) as float64 arrays, standardized, in shuffled
minibatches, and the accuracy of a model on it.

The same data as the C examples' (examples/support/data.c): the four IDX
files of Debian's dataset-fashion-mnist, pixels / 255, standardized with
the training set's mean and standard deviation; without the files, ten
Gaussian clusters in 784 dimensions.  The shuffles and the synthetic set
come from numpy's generator, so the numbers differ from the C programs' in
their last digits and in the order of the batches;
tests/examples/python_parity.py runs these examples on the C programs' own
data and batches and checks that every printed digit agrees.
"""

import gzip
import os
import struct
import sys

import numpy as np

DIRECTORY = "/usr/share/datasets/fashion-mnist"
ENVIRONMENT = "TN_FASHION_MNIST_DIR"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CLASSES = 10
EVAL_CHUNK = 1000       # rows per evaluation call, as in C


class Dataset:
    """Examples x (n, d), one-hot targets y (n, classes), labels (n,)."""

    def __init__(self, x, labels):
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.intp)
        self.n, self.d = self.x.shape
        self.classes = CLASSES
        self.y = np.zeros((self.n, CLASSES))
        self.y[np.arange(self.n), self.labels] = 1.0


class Data:
    """The training and test sets, and a line saying what they are."""

    def __init__(self, train, test, source):
        self.train, self.test, self.source = train, test, source


def read_idx(path):
    """The array of an unsigned-byte IDX file (gzip-compressed or not)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or not 1 <= raw[3] <= 4:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{raw[3]}I", raw[4:4 + 4 * raw[3]])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(dims))
    if data.size != np.prod(dims):
        raise ValueError(f"{path}: {data.size} data bytes, the header says {np.prod(dims)}")
    return data.reshape(dims)


def read_split(directory, images, labels, limit):
    """The first `limit` examples (0: all) of one split, pixels in [0, 1]."""
    x = read_idx(os.path.join(directory, images))
    y = read_idx(os.path.join(directory, labels))
    if len(x) != len(y) or y.max() >= CLASSES:
        raise ValueError(f"{directory}: {images} and {labels} do not match")
    x, y = x[:limit or None], y[:limit or None]
    return x.reshape(len(x), -1) / 255.0, y


def synthetic(n_train, n_test, seed=1):
    """Ten Gaussian clusters in 784 dimensions (class means 0.5 +- 0.03 per
    pixel, noise 0.2, clipped to [0, 1]), labels cycling through the
    classes: learnable, not perfectly separable."""
    rng = np.random.default_rng(seed)
    means = 0.5 + 0.03 * rng.choice([-1.0, 1.0], size=(CLASSES, 784))

    def split(n):
        labels = np.arange(n) % CLASSES
        return np.clip(means[labels] + 0.2 * rng.standard_normal((n, 784)), 0.0, 1.0), labels

    return split(n_train), split(n_test)


def load(args):
    """The data of the flags --data, --train, --test and --synthetic, scaled
    to mean 0 and standard deviation 1 over the training pixels; prints the
    "data:" line."""
    directory = args.data or os.environ.get(ENVIRONMENT) or DIRECTORY
    missing = [f for f in FILES if not os.path.exists(os.path.join(directory, f))]
    if args.synthetic or missing:
        if not args.synthetic:
            print(f"NOTE: Fashion-MNIST not found: {os.path.join(directory, missing[0])}.\n"
                  f"NOTE: using a SYNTHETIC data set instead (install dataset-fashion-mnist, "
                  f"or set {ENVIRONMENT} to the directory of the four .gz files).",
                  file=sys.stderr)
        train, test = synthetic(min(args.train or 6000, 6000), min(args.test or 1000, 1000))
        what = "SYNTHETIC data (10 Gaussian clusters, seed 1, not Fashion-MNIST)"
    else:
        train = read_split(directory, FILES[0], FILES[1], args.train)
        test = read_split(directory, FILES[2], FILES[3], args.test)
        what = f"Fashion-MNIST from {directory}"
    mean, std = train[0].mean(), train[0].std()
    train, test = (Dataset((x - mean) / std, labels) for x, labels in (train, test))
    source = (f"{what}: {train.n} training, {test.n} test examples, {train.d} features, "
              f"standardized (mean {mean:.4f}, std {std:.4f})")
    print(f"data: {source}")
    return Data(train, test, source)


class Minibatches:
    """Walks a data set in minibatches of `batch` rows (the last one of an
    epoch may be shorter), in a new random order every epoch."""

    def __init__(self, dataset, batch, seed):
        self.dataset, self.batch = dataset, batch
        self.rng = np.random.default_rng([seed, 0x5EED])   # not the initialization's stream

    def epoch(self):
        """The (x, y) batches of one pass over the data set."""
        order = self.rng.permutation(self.dataset.n)
        for start in range(0, self.dataset.n, self.batch):
            rows = order[start:start + self.batch]
            yield self.dataset.x[rows], self.dataset.y[rows]


def accuracy(predict, dataset):
    """The fraction of `dataset` that predict(x) classifies correctly (the
    largest output is the label's), EVAL_CHUNK rows per call."""
    correct = 0
    for start in range(0, dataset.n, EVAL_CHUNK):
        chunk = slice(start, start + EVAL_CHUNK)
        correct += np.count_nonzero(predict(dataset.x[chunk]).argmax(axis=1)
                                    == dataset.labels[chunk])
    return correct / dataset.n
