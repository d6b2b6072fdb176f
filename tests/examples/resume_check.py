#!/usr/bin/env python3
"""A killed training example resumes from its checkpoint and ends where the
uninterrupted run does.

    resume_check.py EXAMPLES_DIR

For each training example (full, linearized, re-linearized, Taylorized), on
the synthetic data: an uninterrupted run; then the same run with
--checkpoint FILE, killed with SIGKILL as soon as its first checkpoint
exists (so mid-training, possibly mid-save: checkpoints are written
atomically); then --resume FILE.  The resumed run's epoch rows and its final
line must be the uninterrupted run's, digit for digit (the seconds column
aside): the library continues bit for bit, so every printed number agrees.
Exits 1 on any difference.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

COMMON = ["--synthetic", "--train", "1500", "--test", "300", "--epochs", "4", "--threads", "1"]
EXAMPLES = {
    "full_training": [],
    "linearized_training": [],
    "relinearized_training": ["--reexpand", "5"],
    "taylorized_training": ["--order", "2", "--div-images", "50"],
}


def rows(output):
    """Epoch rows (epoch, lr, loss, accuracy; not the seconds), and the final
    line without its seconds followed by whatever the example reports after
    it (taylorized_training's expansion at the trained theta)."""
    table, final = {}, None
    for line in output.splitlines():
        parts = line.split()
        if final is not None:
            final += "\n" + line
        elif len(parts) == 5 and parts[0].isdigit():
            table[int(parts[0])] = parts[:4]
        elif line.startswith("final test accuracy"):
            final = line.rsplit(",", 1)[0]
    return table, final


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise SystemExit(f"FAIL {' '.join(cmd)}: status {res.returncode}\n{res.stderr}")
    return res.stdout


def main():
    examples = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in EXAMPLES.items():
            exe = os.path.join(examples, name)
            ref_table, ref_final = rows(run([exe, *COMMON, *extra]))
            ck = os.path.join(tmp, name + ".tnck")
            child = subprocess.Popen([exe, *COMMON, *extra, "--checkpoint", ck],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while not os.path.exists(ck) and child.poll() is None:
                time.sleep(0.005)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            child.wait()
            if not os.path.exists(ck):
                print(f"FAIL {name}: no checkpoint was written")
                failures += 1
                continue
            leftovers = [f for f in os.listdir(tmp) if f.endswith(".tmp")]
            out = run([exe, *COMMON, *extra, "--resume", ck, "--checkpoint", ck])
            table, final = rows(out)
            if not table:
                print(f"note {name}: it finished before it was killed; nothing was resumed")
            bad = [e for e in table if table[e] != ref_table.get(e)]
            if bad or final != ref_final:
                print(f"FAIL {name}: resumed at epoch {min(table, default='-')}: rows "
                      f"{[(table[e], ref_table.get(e)) for e in bad]}, final {final!r} vs "
                      f"{ref_final!r}")
                failures += 1
            else:
                print(f"PASS {name}: killed, resumed from epoch {min(table, default='-')} of 4, "
                      f"ends as the uninterrupted run ({final.splitlines()[0]})")
            # A save killed mid-write leaves its temporary; the resumed
            # run's first save removed it.
            stale = [f for f in os.listdir(tmp) if f.endswith(".tmp") and f.startswith(name)]
            if stale:
                print(f"FAIL {name}: temporaries left: {stale} (before the resume: {leftovers})")
                failures += 1
        failures += check_compare(examples, tmp)
    return 1 if failures else 0


CMP = ["--synthetic", "--train", "1500", "--test", "300", "--epochs", "3", "--orders", "1,2",
       "--reexpand", "10", "--jobs", "1", "--quiet", "--eval", "100", "--probe", "50",
       "--points", "10"]


def table(output):
    """compare's table: model -> its numbers but the seconds per step."""
    got = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 10 and parts[1] in ("full", "linearized", "taylorized", "relinearized"):
            got[parts[0]] = parts[:9]
    return got


def curves(path):
    """curves.csv without its timing column."""
    with open(path) as f:
        lines = [line.rstrip("\n").split(",") for line in f]
    drop = lines[0].index("seconds") if "seconds" in lines[0] else None
    return [[c for i, c in enumerate(row) if i != drop] for row in lines]


def check_compare(examples, tmp):
    """compare --checkpoint DIR killed after its first checkpoint, then
    --resume DIR: the same table and curves as an uninterrupted run."""
    exe = os.path.join(examples, "compare")
    ref_out = os.path.join(tmp, "cmp-ref")
    ref = table(run([exe, *CMP, "--out", ref_out]))
    out, ck = os.path.join(tmp, "cmp"), os.path.join(tmp, "cmp-ck")
    child = subprocess.Popen([exe, *CMP, "--out", out, "--checkpoint", ck],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while child.poll() is None and not (os.path.isdir(ck) and
                                        any(f.endswith(".state") for f in os.listdir(ck))):
        time.sleep(0.005)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait()
    got = table(run([exe, *CMP, "--out", out, "--resume", ck, "--checkpoint", ck]))
    same_curves = curves(os.path.join(out, "curves.csv")) == curves(
        os.path.join(ref_out, "curves.csv"))
    if got != ref or not ref or not same_curves:
        print(f"FAIL compare: resumed {got} vs uninterrupted {ref}; curves equal: {same_curves}")
        return 1
    print(f"PASS compare: killed after its first checkpoint, resumed: the same table and "
          f"curves.csv ({len(ref)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
