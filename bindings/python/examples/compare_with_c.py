#!/usr/bin/env python3
"""compare_with_c.py -- runs each Python example and its C original with the
same flags and checks that they print the same thing: every line, every
digit, except the elapsed seconds.  This is what "the binding reproduces
the C examples' numbers" means, checked.

    python3 bindings/python/examples/compare_with_c.py BUILD/examples [--full]

BUILD/examples holds the C programs (meson builds them there).  The library
is found as the binding finds it (TAYLORNET_LIBRARY first).  By default
each example runs on small slices, of the synthetic set and, when it is
installed, of Fashion-MNIST, with varied optimizers, losses and
parameterizations; --full also runs full_training with its defaults (all of
Fashion-MNIST, 8 epochs: minutes).  Prints one line per run and
"N passed, N failed"; exits 1 when any run differs.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

SMALL = ["--train", "600", "--test", "300", "--epochs", "2", "--width", "32"]

# (example, flags): every program on the synthetic set, and the training
# settings a user changes most, so that each code path of the port is run.
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

# The same on a slice of the real data, when it is there: the IDX reader
# and the standardization over 784-pixel images are ported too.
FASHION = [
    ("full_training", ["--train", "3000", "--test", "1000", "--epochs", "2", "--width", "64"]),
    ("linearized_training", ["--train", "1000", "--test", "500", "--epochs", "1",
                             "--width", "32", "--optimizer", "momentum", "--lr", "0.01"]),
    ("taylorized_training", ["--train", "1000", "--test", "500", "--epochs", "1",
                             "--width", "32", "--order", "2", "--div-images", "200"]),
]

FULL = [("full_training", [])]

# The elapsed seconds: the last column of an epoch row, and "..., 12.3 s" at
# the end of the final line.  Nothing else may differ.
EPOCH_ROW = re.compile(r"^(\s*\d+\s+\S+\s+\S+\s+\S+)\s+\d+\.\d$")
FINAL_TIME = re.compile(r", \d+\.\d s$")


def mask_seconds(text):
    lines = []
    for line in text.splitlines():
        line = EPOCH_ROW.sub(r"\1  <seconds>", line)
        line = FINAL_TIME.sub(", <seconds> s", line)
        lines.append(line)
    return lines


def fashion_mnist_present():
    directory = os.environ.get("TN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    return os.path.exists(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"))


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


def compare(c_dir, name, flags):
    """Runs both programs; returns None when they agree, else what differs."""
    c_rc, c_out, c_err = run([os.path.join(c_dir, name)] + flags)
    py_rc, py_out, py_err = run([sys.executable, os.path.join(HERE, name + ".py")] + flags)
    if c_rc != 0 or py_rc != 0:
        return f"exit status C {c_rc}, Python {py_rc}\n--- C stderr\n{c_err}--- Python stderr\n{py_err}"
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


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1 or any(a not in ("--full",) for a in argv[1:] if a.startswith("--")):
        print("usage: compare_with_c.py BUILD/examples [--full]", file=sys.stderr)
        return 2
    c_dir = args[0]
    cases = list(CASES)
    if fashion_mnist_present():
        cases += FASHION
    else:
        print("Fashion-MNIST not installed: synthetic runs only")
    if "--full" in argv:
        cases += FULL
    passed = failed = 0
    for name, flags in cases:
        problem = compare(c_dir, name, flags)
        label = " ".join([name] + flags)
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
