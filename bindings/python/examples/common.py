"""common.py -- the Python counterpart of examples/common.c: what the C
training examples share, ported so that a Python program makes exactly the
library calls of the C one, with exactly the same inputs.

    errors      ExampleError, die: print "error: ..." and exit 1
    randomness  ExRng: xoshiro256** seeded through splitmix64 (ex_rng_*)
    data        load_data: Fashion-MNIST (or the synthetic stand-in) as
                float64 matrices with one-hot targets and integer labels
    batches     Batcher: shuffled minibatches, a fresh permutation per epoch
    training    train_epoch, cosine_lr
    evaluation  trainer_accuracy, count_correct, rel_diff
    networks    build_mlp
    arguments   parse_args: the "--name value" flags of ex_parse_args
    sessions    TrainConfig, TrainSession: the flags, setup and per-epoch
                report of ex_train_session_*

Bit-for-bit reproduction.  The floating-point results of the C examples
depend on the data handed to the library, so every step of the data
preparation repeats the C arithmetic operation by operation:

* IEEE double arithmetic is the same in numpy's element-wise operations,
  in Python floats and in C compiled with -ffp-contract=off (the project's
  flag: no fused multiply-add), so element-wise formulas are vectorized.
* Sums are not reassociated: numpy's ``sum`` adds pairwise, the C loops add
  left to right.  ``sequential_sum`` uses ``numpy.add.accumulate``, which
  is a left-to-right recurrence by definition (element i is element i-1
  plus input i), carried over chunks.
* ``log`` and ``cos`` are not correctly rounded in every library, so they
  come from ``math``, which calls the C library's functions, like the C
  program.  (``sqrt`` is correctly rounded everywhere.)
* Printing: Python's %-formatting and glibc's printf both round correctly,
  so "%.4f" and "%9.2e" print the same digits for the same double.
"""

import gzip
import math
import os
import struct
import sys
import time

import numpy as np

import taylornet as tn

# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def die(message):
    """ex_die: "error: <message>" on stderr, exit status 1."""
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def now():
    """ex_now: monotonic wall-clock seconds."""
    return time.monotonic()


# --------------------------------------------------------------------------
# Random numbers: xoshiro256** seeded through splitmix64, as ex_rng_*.
# Python integers are unbounded, so every 64-bit operation is masked.
# --------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
TWO_M53 = 2.0 ** -53      # 0x1.0p-53


def _splitmix64(state):
    """One splitmix64 step: returns (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


class ExRng:
    """ex_rng: the same seed gives the same numbers as the C examples."""

    def __init__(self, seed):
        """ex_rng_seed."""
        sm = seed & MASK64
        self.s = [0, 0, 0, 0]
        for i in range(4):
            sm, self.s[i] = _splitmix64(sm)

    def next(self):
        """ex_rng_next: the next 64-bit output."""
        s = self.s
        result = (_rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self):
        """ex_rng_uniform: in [0, 1), 53 random bits (the int-to-double
        conversion is exact below 2**53, as in C)."""
        return (self.next() >> 11) * TWO_M53

    def normal(self):
        """ex_rng_normal: Marsaglia's polar method, second variate dropped."""
        while True:
            u = 2.0 * self.uniform() - 1.0
            v = 2.0 * self.uniform() - 1.0
            s = u * u + v * v
            if 0.0 < s < 1.0:
                return u * math.sqrt(-2.0 * math.log(s) / s)

    def normals(self, count):
        """``count`` calls of :meth:`normal`, as a float64 array: the same
        numbers and the same final state, with the generator inlined (the
        synthetic data set draws millions of them)."""
        out = np.empty(count)
        s0, s1, s2, s3 = self.s
        M, scale, sqrt, log = MASK64, TWO_M53, math.sqrt, math.log
        i = 0
        while i < count:
            # u, then v: one ex_rng_next each, inlined.
            uv = []
            for _ in range(2):
                r = (s1 * 5) & M
                r = ((((r << 7) | (r >> 57)) & M) * 9) & M
                t = (s1 << 17) & M
                s2 ^= s0
                s3 ^= s1
                s1 ^= s2
                s0 ^= s3
                s2 ^= t
                s3 = ((s3 << 45) | (s3 >> 19)) & M
                uv.append(2.0 * ((r >> 11) * scale) - 1.0)
            u, v = uv
            s = u * u + v * v
            if 0.0 < s < 1.0:
                out[i] = u * sqrt(-2.0 * log(s) / s)
                i += 1
        self.s = [s0, s1, s2, s3]
        return out

    def below(self, n):
        """ex_rng_below: uniform in [0, n) without modulo bias; n > 0."""
        limit = MASK64 - MASK64 % n
        while True:
            r = self.next()
            if r < limit:
                return r % n


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

NUM_CLASSES = 10
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "TN_FASHION_MNIST_DIR"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_MAGIC_LABELS = 0x00000801
IDX_MAGIC_IMAGES = 0x00000803

SYN_DIM = 784
SYN_SPREAD = 0.03
SYN_NOISE = 0.2

SCALE_UNIT, SCALE_STANDARDIZE = 0, 1


class ExampleError(Exception):
    """A data file that cannot be used; the message names it."""


class Dataset:
    """ex_dataset: x (n, d) float64, y (n, classes) one-hot, labels (n,)."""

    def __init__(self, x, labels, classes=NUM_CLASSES):
        self.x = x
        self.labels = labels
        self.n, self.d = x.shape
        self.classes = classes
        self.y = np.zeros((self.n, classes))
        self.y[np.arange(self.n), labels] = 1.0


def read_idx(path, expect_magic):
    """idx_read: the array of an unsigned-byte IDX file, gzip-compressed or
    not (zlib's gzread reads both), with the checks of examples/idx.c."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ExampleError(f"{path}: cannot open: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as e:
            raise ExampleError(f"{path}: read error: {e}") from None
    if len(raw) < 4:
        raise ExampleError(f"{path}: file too short for an IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    ndim = raw[3]
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= ndim <= 4:
        raise ExampleError(f"{path}: magic 0x{magic:08x} is not an unsigned-byte IDX file "
                           f"with 1 to 4 dimensions")
    if magic != expect_magic:
        raise ExampleError(f"{path}: magic 0x{magic:08x}, expected 0x{expect_magic:08x}")
    if len(raw) < 4 + 4 * ndim:
        raise ExampleError(f"{path}: truncated in the header")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    if 0 in dims:
        raise ExampleError(f"{path}: dimension {dims.index(0)} is 0")
    count = math.prod(dims)
    payload = len(raw) - 4 - 4 * ndim
    if payload < count:
        raise ExampleError(f"{path}: truncated: the header declares {count} data bytes, "
                           f"the file has {payload}")
    if payload > count:
        raise ExampleError(f"{path}: trailing data after the {count} bytes the header "
                           f"declares")
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=4 + 4 * ndim).reshape(dims)


def load_split(images_path, labels_path, limit):
    """load_split: the first ``limit`` examples (0: all), pixels / 255."""
    images = read_idx(images_path, IDX_MAGIC_IMAGES)
    labels = read_idx(labels_path, IDX_MAGIC_LABELS)
    if labels.shape[0] != images.shape[0]:
        raise ExampleError(f"{images_path} has {images.shape[0]} images but {labels_path} "
                           f"has {labels.shape[0]} labels")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise ExampleError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is not "
                           f"a class in [0, {NUM_CLASSES})")
    n_file = images.shape[0]
    n = limit if limit and limit < n_file else n_file
    d = images.shape[1] * images.shape[2]
    # images.data[e] / 255.0: the byte converted to double (exact), then one
    # correctly rounded division, element by element.
    x = images[:n].reshape(n, d).astype(np.float64) / 255.0
    return Dataset(x, labels[:n].astype(np.intp))


def synth_split(n, means, rng):
    """synth_split: n samples of the cluster model, labels 0, 1, ..., 9, 0, ..."""
    labels = np.arange(n) % NUM_CLASSES
    # Row by row, pixel by pixel: the order the C loop draws the normals in.
    noise = rng.normals(n * SYN_DIM).reshape(n, SYN_DIM)
    v = means[labels] + SYN_NOISE * noise
    # v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v
    x = np.where(v < 0.0, 0.0, np.where(v > 1.0, 1.0, v))
    return Dataset(np.ascontiguousarray(x), labels.astype(np.intp))


def make_synthetic(max_train, max_test, seed=1, synthetic_train=6000, synthetic_test=1000):
    """make_synthetic: 10 Gaussian clusters in 784 dimensions."""
    rng = ExRng(seed)
    means = np.array([0.5 + (SYN_SPREAD if rng.next() >> 63 else -SYN_SPREAD)
                      for _ in range(NUM_CLASSES * SYN_DIM)]).reshape(NUM_CLASSES, SYN_DIM)
    n_train = synthetic_train or 6000
    n_test = synthetic_test or 1000
    if max_train and max_train < n_train:
        n_train = max_train
    if max_test and max_test < n_test:
        n_test = max_test
    train = synth_split(n_train, means, rng)
    test = synth_split(n_test, means, rng)
    return train, test


def sequential_sum(a, chunk=1 << 20):
    """The left-to-right sum of the C loop ``sum = 0.0; sum += a[e]``, in
    chunks of ``numpy.add.accumulate`` (a recurrence, unlike the pairwise
    ``numpy.sum``): each chunk starts from the running sum."""
    a = a.reshape(-1)
    total = 0.0
    for start in range(0, a.size, chunk):
        part = a[start:start + chunk].copy()
        part[0] = total + part[0]
        total = float(np.add.accumulate(part)[-1])
    return total


def moments(x):
    """moments: mean and population std of all of x, in two passes."""
    count = x.size
    m = sequential_sum(x) / count
    c = x - m
    ssq = sequential_sum(c * c)
    return m, math.sqrt(ssq / count)


class Data:
    """ex_data: the training and test sets and what was done to them."""

    def __init__(self, train, test, synthetic, mean=0.0, std=1.0, source=""):
        self.train, self.test = train, test
        self.synthetic = synthetic
        self.mean, self.std = mean, std
        self.source = source


def find_missing(directory):
    """find_missing: None when the four files exist, else why not (only
    absence is a reason to fall back; other errors raise)."""
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS):
        path = f"{directory}/{name}"
        try:
            os.stat(path)
        except (FileNotFoundError, NotADirectoryError) as e:
            return f"{path}: {e.strerror}"
        except OSError as e:
            raise ExampleError(f"{path}: {e.strerror}") from None
    return None


def load_data(directory=None, max_train=0, max_test=0, scaling=SCALE_STANDARDIZE,
              force_synthetic=False, synthetic_seed=1):
    """ex_load_data: Fashion-MNIST from ``directory`` (None: the environment
    variable, else the Debian path), or the synthetic stand-in when a file
    is missing or ``force_synthetic``; scaled; prints the "data:" line."""
    env = os.environ.get(FASHION_MNIST_ENV)
    directory = directory if directory is not None else env if env else FASHION_MNIST_DIR
    missing = None if force_synthetic else find_missing(directory)
    if force_synthetic or missing is not None:
        if not force_synthetic:
            print(f"NOTE: Fashion-MNIST not found: {missing}.\n"
                  f"NOTE: using a SYNTHETIC data set instead (install dataset-fashion-mnist, "
                  f"or set {FASHION_MNIST_ENV} to the directory of the four .gz files).",
                  file=sys.stderr)
        train, test = make_synthetic(max_train, max_test, synthetic_seed)
        data = Data(train, test, synthetic=True)
    else:
        train = load_split(f"{directory}/{TRAIN_IMAGES}", f"{directory}/{TRAIN_LABELS}",
                           max_train)
        test = load_split(f"{directory}/{TEST_IMAGES}", f"{directory}/{TEST_LABELS}",
                          max_test)
        if train.d != test.d:
            raise ExampleError(f"training images have {train.d} pixels, test images {test.d}")
        data = Data(train, test, synthetic=False)

    if scaling == SCALE_STANDARDIZE:
        # standardize_scalar: (x - mean) * (1 / std), with the training moments.
        mean, std = moments(data.train.x)
        inv = 1.0 / std if std > 0.0 else 1.0
        for ds in (data.train, data.test):
            ds.x = (ds.x - mean) * inv
        data.mean, data.std = mean, std
        scaling_text = f"standardized (mean {mean:.4f}, std {std:.4f})"
    else:
        scaling_text = "pixels in [0, 1]"

    if data.synthetic:
        data.source = (f"SYNTHETIC data (10 Gaussian clusters, seed {synthetic_seed}, not "
                       f"Fashion-MNIST): {data.train.n} training, {data.test.n} test examples, "
                       f"{data.train.d} features, {scaling_text}")
    else:
        data.source = (f"Fashion-MNIST from {directory}: {data.train.n} training, "
                       f"{data.test.n} test examples, {data.train.d} features, {scaling_text}")
    print(f"data: {data.source}")
    return data


# --------------------------------------------------------------------------
# Minibatches
# --------------------------------------------------------------------------


def shuffle(idx, rng):
    """ex_shuffle: Fisher-Yates in place, from the end, as the C loop."""
    for i in range(len(idx), 1, -1):
        j = rng.below(i)
        idx[i - 1], idx[j] = idx[j], idx[i - 1]


class Batcher:
    """ex_batcher: a data set in shuffled minibatches, a fresh permutation
    per epoch (the previous one shuffled again)."""

    def __init__(self, ds, batch, seed):
        if ds.n == 0:
            die("ex_batcher_init: the data set is empty")
        if batch == 0:
            die("ex_batcher_init: the batch size must be > 0")
        self.ds = ds
        self.batch = min(batch, ds.n)
        self.order = list(range(ds.n))
        self.rng = ExRng(seed)
        self.restart()

    def restart(self):
        """ex_batcher_restart: the next batch starts a new epoch."""
        shuffle(self.order, self.rng)
        self.pos = 0

    def next(self):
        """ex_batcher_next: (x, y) of the next batch, or None once at the end
        of each epoch (the next call starts a new, reshuffled epoch)."""
        if self.pos >= self.ds.n:
            self.restart()
            return None
        rows = min(self.ds.n - self.pos, self.batch)
        idx = np.array(self.order[self.pos:self.pos + rows], dtype=np.intp)
        self.pos += rows
        # ex_gather: the rows copied in order (fancy indexing gives new
        # C-contiguous float64 arrays).
        return self.ds.x[idx], self.ds.y[idx]


# --------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------

EVAL_CHUNK = 1000


def train_epoch(trainer, batcher):
    """ex_train_epoch: one trainer step per batch; the per-example mean of
    the losses the steps report (each before its update)."""
    total, seen = 0.0, 0
    while True:
        batch = batcher.next()
        if batch is None:
            break
        x, y = batch
        try:
            loss = trainer.step(x, y)
        except tn.TaylornetError:
            batcher.restart()
            raise
        rows = x.shape[0]
        total += loss * float(rows)
        seen += rows
    return total / float(seen) if seen else 0.0


def cosine_lr(base, epoch, epochs):
    """ex_cosine_lr: base at epoch 0, falling to near 0 at the last epoch."""
    pi = 3.14159265358979323846
    if epochs == 0:
        return base
    if epoch >= epochs:
        epoch = epochs - 1
    return base * 0.5 * (1.0 + math.cos(pi * float(epoch) / float(epochs)))


def count_correct(out, labels):
    """ex_count_correct with ex_argmax's rule: the first largest entry wins,
    NaN never wins, a row of NaN is never correct."""
    nan = np.isnan(out)
    if not nan.any():
        return int(np.count_nonzero(np.argmax(out, axis=1) == labels))
    correct = 0
    for row, label in zip(out.tolist(), labels.tolist()):
        best = None
        for j, v in enumerate(row):
            if not math.isnan(v) and (best is None or v > row[best]):
                best = j
        correct += best == label
    return correct


def rel_diff(a, b):
    """ex_rel_diff: |a - b| / |b| (|a - b| when b is 0), Frobenius norms,
    the squares summed left to right as the C loop does."""
    d = (a - b).reshape(-1)
    num = sequential_sum(d * d)
    den = sequential_sum(b.reshape(-1) * b.reshape(-1))
    return math.sqrt(num / den) if den > 0.0 else math.sqrt(num)


def trainer_accuracy(trainer, ds, chunk=0):
    """ex_trainer_accuracy: the fraction of ds that tn_trainer_predict
    classifies correctly, ``chunk`` rows per call (0: EVAL_CHUNK)."""
    if ds.n == 0:
        die("accuracy of an empty data set")
    chunk = chunk or EVAL_CHUNK
    chunk = min(chunk, ds.n)
    correct = 0
    for i in range(0, ds.n, chunk):
        rows = min(ds.n - i, chunk)
        out = trainer.predict(ds.x[i:i + rows])      # a row slice: still C-contiguous
        correct += count_correct(out, ds.labels[i:i + rows])
    return float(correct) / float(ds.n)


def build_mlp(ctx, input_size, width, hidden_layers, outputs, parameterization, seed,
              activation=tn.Activation.RELU, sigma_w=0.0, sigma_b=-1.0):
    """ex_build_mlp: dense/activation pairs, the output layer, the settings,
    then tn_net_init -- the same calls in the same order."""
    net = tn.Network(ctx, input_size)
    try:
        for _ in range(hidden_layers):
            net.add_dense(width)
            net.add_activation(activation)
        net.add_dense(outputs)
        net.set(tn.NetParam.PARAMETERIZATION, parameterization)
        if sigma_w > 0:
            net.set(tn.NetParam.SIGMA_W, sigma_w)
        if sigma_b >= 0:
            net.set(tn.NetParam.SIGMA_B, sigma_b)
        net.init(seed)
    except BaseException:
        net.close()
        raise
    return net


# --------------------------------------------------------------------------
# Command line: ex_parse_args
# --------------------------------------------------------------------------

ARG_SIZE, ARG_INT, ARG_U64, ARG_DOUBLE, ARG_STRING, ARG_FLAG = range(6)


class Arg:
    """ex_arg: a flag ``--name``, its kind, the attribute of the config
    object it sets (whose current value is the default) and its help."""

    def __init__(self, name, kind, attr, help_text):
        self.name, self.kind, self.attr, self.help = name, kind, attr, help_text


def _parse_u64(s):
    # parse_u64: digits only (strtoull would accept a sign or blanks), no overflow.
    if not s or not all("0" <= c <= "9" for c in s):
        return None
    v = int(s)
    return v if v <= MASK64 else None


def _parse_value(kind, s):
    """The value of s for a flag of ``kind``, or None when it is malformed."""
    if kind in (ARG_SIZE, ARG_U64):
        return _parse_u64(s)
    if kind == ARG_INT:
        body = s.lstrip(" \t\n\v\f\r")           # strtol skips leading blanks
        digits = body[1:] if body[:1] in "+-" else body
        if not digits or not all("0" <= c <= "9" for c in digits):
            return None
        v = int(body)
        return v if -2**31 <= v <= 2**31 - 1 else None
    if kind == ARG_DOUBLE:
        body = s.lstrip(" \t\n\v\f\r")
        if not body or body != body.rstrip() or "_" in body:
            return None     # strtod stops at trailing blanks; Python allows '_'
        try:
            v = float(body)
        except ValueError:
            try:
                v = float.fromhex(body)     # strtod reads C99 hex floats too
            except ValueError:
                return None
        return v if math.isfinite(v) else None
    if kind == ARG_STRING:
        return s
    return None


def _format_default(kind, value):
    if kind == ARG_DOUBLE:
        return "%g" % value
    if kind == ARG_STRING:
        return "(none)" if value is None else value
    if kind == ARG_FLAG:
        return "on" if value else "off"
    return str(value)


def print_usage(prog, args, about, cfg):
    print(f"usage: {prog} [options]")
    if about:
        print(about)
    print("options:")
    for a in args:
        meta = {ARG_FLAG: "", ARG_DOUBLE: " X", ARG_STRING: " S"}.get(a.kind, " N")
        flag = f"--{a.name}{meta}"
        print(f"  {flag:<20} {a.help} (default {_format_default(a.kind, getattr(cfg, a.attr))})")
    print(f"  {'--help':<20} this text")


def parse_args(argv, args, cfg, about):
    """ex_parse_args: "--name value" and "--name=value" into cfg's
    attributes.  --help (or -h) prints the usage and exits 0; an unknown
    flag or a malformed value prints the problem and exits 2."""
    prog = argv[0] if argv else "example"

    def usage_error(message):
        print(f"{prog}: {message} (try --help)", file=sys.stderr)
        sys.exit(2)

    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("--help", "-h"):
            print_usage(prog, args, about, cfg)
            sys.exit(0)
        if not arg.startswith("--"):
            usage_error(f"unexpected argument '{arg}'")
        name, eq, value = arg[2:].partition("=")
        a = next((a for a in args if a.name == name), None)
        if a is None:
            usage_error(f"unknown option '{arg}'")
        if a.kind == ARG_FLAG:
            if eq:
                usage_error(f"option '{arg}' takes no value")
            setattr(cfg, a.attr, True)
            i += 1
            continue
        if not eq:
            if i + 1 >= len(argv):
                usage_error(f"option '{arg}' needs a value")
            i += 1
            value = argv[i]
        parsed = _parse_value(a.kind, value)
        if parsed is None:
            usage_error(f"bad value for --{a.name}: '{value}'")
        setattr(cfg, a.attr, parsed)
        i += 1


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

def _from_name(what, name, table):
    if name not in table:
        die(f"unknown {what} '{name}' ({', '.join(table)})")
    return table[name]


def optimizer_from_name(name):
    return _from_name("optimizer", name, {
        "sgd": tn.Optimizer.SGD, "momentum": tn.Optimizer.MOMENTUM,
        "nesterov": tn.Optimizer.NESTEROV, "rmsprop": tn.Optimizer.RMSPROP,
        "adam": tn.Optimizer.ADAM})


def parameterization_from_name(name):
    return _from_name("parameterization", name, {
        "standard": tn.Parameterization.STANDARD, "ntk": tn.Parameterization.NTK})


def loss_from_name(name):
    return _from_name("loss", name, {"xent": tn.Loss.SOFTMAX_XENT, "mse": tn.Loss.MSE})


def schedule_is_cosine(schedule):
    return _from_name("schedule", schedule, {"cosine": True, "constant": False})


# --------------------------------------------------------------------------
# Training sessions: ex_train_config / ex_train_session
# --------------------------------------------------------------------------


class TrainConfig:
    """ex_train_config with full_training's defaults: 8 epochs of batch 128,
    Adam at 1e-3 with the cosine schedule, softmax cross-entropy,
    784-256-256-10 ReLU in standard parameterization, seed 1, 1 BLAS thread,
    all the data."""

    def __init__(self):
        self.epochs = 8
        self.batch = 128
        self.lr = 1e-3
        self.schedule = "cosine"
        self.optimizer = "adam"
        self.loss = "xent"
        self.width = 256
        self.depth = 2
        self.param = "standard"
        self.seed = 1
        self.threads = 1
        self.n_train = 0
        self.n_test = 0
        self.data_dir = None
        self.synthetic = False

    @staticmethod
    def args():
        """ex_train_config_args: the shared flags, in the C table's order."""
        return [
            Arg("epochs", ARG_SIZE, "epochs", "passes over the training set"),
            Arg("batch", ARG_SIZE, "batch", "examples per step"),
            Arg("lr", ARG_DOUBLE, "lr", "initial learning rate"),
            Arg("schedule", ARG_STRING, "schedule", "learning rate by epoch: cosine or constant"),
            Arg("optimizer", ARG_STRING, "optimizer", "sgd, momentum, nesterov, rmsprop or adam"),
            Arg("loss", ARG_STRING, "loss", "xent (softmax cross-entropy) or mse (one-hot targets)"),
            Arg("width", ARG_SIZE, "width", "units per hidden layer"),
            Arg("depth", ARG_SIZE, "depth", "hidden layers"),
            Arg("param", ARG_STRING, "param", "parameterization: standard or ntk"),
            Arg("seed", ARG_U64, "seed", "seed of the initialization and the shuffles"),
            Arg("threads", ARG_INT, "threads", "BLAS threads"),
            Arg("train", ARG_SIZE, "n_train", "use the first N training examples (0: all)"),
            Arg("test", ARG_SIZE, "n_test", "use the first N test examples (0: all)"),
            Arg("data", ARG_STRING, "data_dir",
                f"Fashion-MNIST directory (else ${FASHION_MNIST_ENV} or {FASHION_MNIST_DIR})"),
            Arg("synthetic", ARG_FLAG, "synthetic", "use the synthetic data set"),
        ]


class TrainSession:
    """ex_train_session: the data, a context, the MLP and its trainer (loss,
    optimizer and learning rate set; order 0).  A context manager: leaving
    it frees the trainer, the network and the context."""

    def __init__(self, cfg):
        """ex_train_session_open: checks cfg, loads the data, creates the
        context, the MLP and its trainer, prints the "net:" line."""
        if cfg.epochs == 0 or cfg.batch == 0 or cfg.width == 0:
            die("--epochs, --batch and --width must be > 0")
        # Every name is checked before the data is read.
        opt_kind = optimizer_from_name(cfg.optimizer)
        loss_kind = loss_from_name(cfg.loss)
        schedule_is_cosine(cfg.schedule)
        try:
            self.data = load_data(cfg.data_dir, cfg.n_train, cfg.n_test,
                                  force_synthetic=cfg.synthetic)
        except ExampleError as e:
            die(str(e))

        self.ctx = tn.Context(threads=cfg.threads)
        self.input = self.data.train.d
        self.outputs = self.data.train.classes
        self.net = build_mlp(self.ctx, self.input, cfg.width, cfg.depth, self.outputs,
                             parameterization_from_name(cfg.param), cfg.seed)
        self.tr = tn.Trainer(self.net)
        self.tr.set(tn.TrainParam.LOSS, loss_kind)
        self.tr.set(tn.TrainParam.OPTIMIZER, opt_kind)
        self.tr.set(tn.TrainParam.LEARNING_RATE, cfg.lr)
        print(f"net: {self.input} -> {cfg.depth} x {cfg.width} ReLU -> {self.outputs}, "
              f"{cfg.param} parameterization, {self.net.num_params} parameters")

    def run(self, cfg, model=None):
        """ex_train_session_run: the "training:" line, the "model:" line
        (when model is not None), one table row per epoch, the final line.
        Returns the final test accuracy."""
        cosine = schedule_is_cosine(cfg.schedule)
        loss_note = f", {cfg.loss} loss" if loss_from_name(cfg.loss) != tn.Loss.SOFTMAX_XENT else ""
        print("training: %s, lr %g (%s), batch %d, %d epochs, seed %d, %d threads%s"
              % (cfg.optimizer, cfg.lr, cfg.schedule, cfg.batch, cfg.epochs, cfg.seed,
                 cfg.threads, loss_note))
        if model:
            print(f"model: {model}")
        print("%5s  %9s  %10s  %9s  %8s" % ("epoch", "lr", "train_loss", "test_acc", "seconds"),
              flush=True)

        # The shuffles get their own seed stream, distinct from the init's.
        batcher = Batcher(self.data.train, cfg.batch, cfg.seed ^ 0x5EED5EED5EED5EED)
        t0 = now()
        acc = 0.0
        for epoch in range(cfg.epochs):
            epoch_lr = cosine_lr(cfg.lr, epoch, cfg.epochs) if cosine else cfg.lr
            self.tr.set(tn.TrainParam.LEARNING_RATE, epoch_lr)
            loss = train_epoch(self.tr, batcher)
            acc = trainer_accuracy(self.tr, self.data.test)
            print("%5d  %9.2e  %10.4f  %9.4f  %8.1f"
                  % (epoch + 1, epoch_lr, loss, acc, now() - t0), flush=True)
        print("final test accuracy %.4f after %d epochs, %.1f s" % (acc, cfg.epochs, now() - t0),
              flush=True)
        return acc

    def close(self):
        """ex_train_session_close: the trainer, the network, the context."""
        for handle in ("tr", "net", "ctx"):
            h = getattr(self, handle, None)
            if h is not None:
                h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
