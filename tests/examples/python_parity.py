#!/usr/bin/env python3
"""python_parity.py -- the Python ports of the training examples
(bindings/python/examples) against their C originals (examples/), digit for
digit.

    python3 tests/examples/python_parity.py BUILD [--full]

BUILD is the meson build directory: the C programs are in BUILD/examples,
example_inputs in BUILD/tests/examples.  The binding is imported as usual
(TAYLORNET_LIBRARY, PYTHONPATH or an installed package).

On their own the ports draw their shuffles and their synthetic data from
numpy, so their numbers are not the C programs'.  Here each port runs on the
C program's own inputs instead: fashion_mnist.load and
fashion_mnist.Minibatches are replaced by the data as
examples/support/data.c prepares it and the batches in the order its
shuffles give, both written by example_inputs for the port's parsed flags.
From the same inputs through the same library calls, every line the two
programs print must be the same, every digit, except the elapsed seconds:
the flags, defaults, network, trainer settings, schedule, loss averaging,
evaluation and report of each port are the C program's.

The ports' own data code is checked against C's too: on Fashion-MNIST,
fashion_mnist.load gives the C loader's labels exactly and its standardized
images to within IMAGE_TOLERANCE; its minibatches visit every example once
per epoch.

Prints one line per check and "N passed, N failed"; exits 1 when any failed.
By default each example runs on small slices, of the synthetic set and, when
it is installed, of Fashion-MNIST, with varied optimizers, losses and
parameterizations; --full also runs full_training with its defaults (all of
Fashion-MNIST, 8 epochs: minutes).
"""

import os
import re
import runpy
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PORTS = os.path.join(HERE, "..", "..", "bindings", "python", "examples")

SMALL = ["--train", "600", "--test", "300", "--epochs", "2", "--width", "32"]

# (example, flags): every program on the synthetic set, and the training
# settings a user changes most, so that each code path of the ports runs.
CASES = [
    ("full_training", ["--synthetic"] + SMALL),
    ("full_training", ["--synthetic"] + SMALL + ["--optimizer", "nesterov", "--lr", "0.01",
                                                 "--loss", "mse", "--param", "ntk",
                                                 "--schedule", "constant", "--batch", "100",
                                                 "--depth", "3", "--seed", "7"]),
    ("full_training", ["--synthetic"] + SMALL + ["--optimizer", "rmsprop", "--threads", "2"]),
    ("linearized_training", ["--synthetic"] + SMALL + ["--optimizer", "sgd", "--lr", "0.05"]),
    ("relinearized_training", ["--synthetic"] + SMALL + ["--reexpand", "3"]),
    ("taylorized_training", ["--synthetic"] + SMALL + ["--order", "3", "--div-images", "100"]),
]

# The same on slices of the real data, when it is there.
FASHION = [
    ("full_training", ["--train", "3000", "--test", "1000", "--epochs", "2", "--width", "64"]),
    ("linearized_training", ["--train", "1000", "--test", "500", "--epochs", "1",
                             "--width", "32", "--optimizer", "momentum", "--lr", "0.01"]),
    ("taylorized_training", ["--train", "1000", "--test", "500", "--epochs", "1",
                             "--width", "32", "--order", "2", "--div-images", "200"]),
]

FULL = [("full_training", [])]

# The ports and the C loader standardize with the mean m and standard
# deviation s of all n training pixels, summed in different orders (C left
# to right, numpy pairwise).  A left-to-right sum of n positive terms is off
# by at most n eps relatively, 1.6e6 x 1.1e-16 = 1.7e-10 at n = 2000 x 784,
# so z = (x - m) / s (|z| <= 2.1, m / s = 0.8) moves by at most
# 1.7e-10 (0.8 + 2.1) = 5e-10.  (Measured: 1.2e-11.)
IMAGE_TOLERANCE = 1e-9

# The elapsed seconds: the last column of an epoch row, and "..., 12.3 s" at
# the end of the final line.  Nothing else may differ.
EPOCH_ROW = re.compile(r"^(\s*\d+\s+\S+\s+\S+\s+\S+)\s+\d+\.\d$")
FINAL_TIME = re.compile(r", \d+\.\d s$")


def mask_seconds(text):
    return [FINAL_TIME.sub(", <seconds> s", EPOCH_ROW.sub(r"\1  <seconds>", line))
            for line in text.splitlines()]


def fashion_mnist_present():
    directory = os.environ.get("TN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    return os.path.exists(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"))


# --------------------------------------------------------------------------
# The C inputs, as the Python examples' data module would give them
# --------------------------------------------------------------------------

def c_inputs(tool, args, directory):
    """Runs example_inputs for the parsed flags `args` of an example; returns
    (source line, train (x, labels), test (x, labels), order per epoch)."""
    argv = [tool, directory, "--train", str(args.train), "--test", str(args.test),
            "--seed", str(args.seed), "--batch", str(args.batch), "--epochs", str(args.epochs)]
    argv += ["--synthetic"] if args.synthetic else []
    argv += ["--data", args.data] if args.data else []
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    def read(name, dtype):
        return np.fromfile(os.path.join(directory, name), dtype=dtype)

    with open(os.path.join(directory, "source.txt")) as f:
        source = f.read()
    with open(os.path.join(directory, "shape.txt")) as f:
        n_train, n_test, d, _ = map(int, f.read().split())
    train = read("train_x", np.float64).reshape(n_train, d), read("train_labels", np.int32)
    test = read("test_x", np.float64).reshape(n_test, d), read("test_labels", np.int32)
    order = read("order", np.uint64).astype(np.intp).reshape(args.epochs, n_train)
    return source, train, test, order


def replay(tool, example, flags):
    """Runs the port `example` with `flags` on the C program's inputs (in
    this process; the parent compares what it prints)."""
    sys.path.insert(0, PORTS)
    import fashion_mnist

    workdir = tempfile.TemporaryDirectory()
    epochs = []

    def load(args):
        source, train, test, order = c_inputs(tool, args, workdir.name)
        epochs.extend(order)
        print(f"data: {source}")
        return fashion_mnist.Data(fashion_mnist.Dataset(*train), fashion_mnist.Dataset(*test),
                                  source)

    class Minibatches:
        def __init__(self, dataset, batch, seed):
            self.dataset, self.batch, self.epochs = dataset, batch, iter(epochs)

        def epoch(self):
            order = next(self.epochs)
            for start in range(0, self.dataset.n, self.batch):
                rows = order[start:start + self.batch]
                yield self.dataset.x[rows], self.dataset.y[rows]

    fashion_mnist.load = load
    fashion_mnist.Minibatches = Minibatches
    port = runpy.run_path(os.path.join(PORTS, example + ".py"), run_name="python_parity")
    status = port["main"](flags)
    workdir.cleanup()
    return status


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


def compare(build, name, flags):
    """None when the port on the C inputs prints the C program's lines,
    else what differs."""
    tool = os.path.join(build, "tests", "examples", "example_inputs")
    c_rc, c_out, c_err = run([os.path.join(build, "examples", name)] + flags)
    py_rc, py_out, py_err = run([sys.executable, __file__, "--replay", tool, name] + flags)
    if c_rc != 0 or py_rc != 0:
        return (f"exit status C {c_rc}, Python {py_rc}\n--- C stderr\n{c_err}"
                f"--- Python stderr\n{py_err}")
    c_lines, py_lines = mask_seconds(c_out), mask_seconds(py_out)
    if c_lines == py_lines:
        # A run that prints no epoch row would agree vacuously.
        if not any("<seconds>" in line for line in c_lines):
            return "no epoch rows in the output:\n" + c_out
        return None
    diff = [f"line {i + 1}:\n  C:      {c}\n  Python: {p}"
            for i, (c, p) in enumerate(zip(c_lines, py_lines)) if c != p]
    if len(c_lines) != len(py_lines):
        diff.append(f"{len(c_lines)} lines from C, {len(py_lines)} from Python")
    return "\n".join(diff)


def check_data(build):
    """None when the ports' data code agrees with C's on a Fashion-MNIST
    slice, else what differs."""
    sys.path.insert(0, PORTS)
    import fashion_mnist
    import training

    args = training.flags("").parse_args(["--train", "2000", "--test", "500",
                                          "--batch", "128", "--epochs", "2"])
    tool = os.path.join(build, "tests", "examples", "example_inputs")
    with tempfile.TemporaryDirectory() as directory:
        source, train, test, order = c_inputs(tool, args, directory)
    ours = fashion_mnist.load(args)
    problems = []
    if ours.source != source:
        problems.append(f"data line: C '{source}', Python '{ours.source}'")
    for what, mine, (x, labels) in (("train", ours.train, train), ("test", ours.test, test)):
        if not np.array_equal(mine.labels, labels):
            problems.append(f"{what}: the labels differ")
        elif np.abs(mine.x - x).max() > IMAGE_TOLERANCE:
            problems.append(f"{what}: images differ by {np.abs(mine.x - x).max():.3g}")
        elif not np.array_equal(mine.y.argmax(axis=1), labels) or mine.y.sum() != len(labels):
            problems.append(f"{what}: the one-hot targets do not match the labels")
    batches = fashion_mnist.Minibatches(ours.train, args.batch, args.seed)
    everything = sorted(row.tobytes() for row in ours.train.x)
    for epoch in range(2):
        rows = np.concatenate([x for x, _ in batches.epoch()])
        if sorted(row.tobytes() for row in rows) != everything:
            problems.append(f"epoch {epoch + 1}: the minibatches are not the training set")
    return "\n".join(problems) or None


def main(argv):
    if len(argv) > 2 and argv[1] == "--replay":
        return replay(argv[2], argv[3], argv[4:])
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1 or any(a != "--full" for a in argv[1:] if a.startswith("--")):
        print("usage: python_parity.py BUILD [--full]", file=sys.stderr)
        return 2
    build = args[0]
    cases = list(CASES)
    checks = []
    if fashion_mnist_present():
        cases += FASHION
        checks.append(("the ports' data code against C's, Fashion-MNIST 2000 + 500",
                       lambda: check_data(build)))
    else:
        print("Fashion-MNIST not installed: synthetic runs only")
    if "--full" in argv:
        cases += FULL
    checks += [(" ".join([name] + flags), lambda n=name, f=flags: compare(build, n, f))
               for name, flags in cases]
    passed = failed = 0
    for label, check in checks:
        problem = check()
        if problem is None:
            passed += 1
            print(f"same   {label}", flush=True)
        else:
            failed += 1
            print(f"DIFFER {label}\n{problem}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
