#!/usr/bin/env python3
"""peer_torch.py -- libtaylornet and PyTorch side by side, in one run, on the
same BLIS kernels, one thread, double.  It prints one table: our time,
PyTorch's, and PyTorch's over ours.

    peer_torch.py PEER_OURS [reps (5)]

PEER_OURS is tests/bench/peer_ours (a C program of the build): it times the
library's side and says which kernel set the library runs on.  This script
then runs PyTorch in a child process with BLIS_ARCH_TYPE set to that set, so
that PyTorch's GEMMs (through libblas.so.3, which must be BLIS: the Debian
alternative blis-openmp, or preloaded here when the alternative is another
BLAS) run the same kernels; both kernel sets are printed, with each side's
dgemm rate on the full step's shapes as the check.

The workloads (the same inputs on both sides; peer_ours.c lists them):
  - the full training step of a 784-1024-1024-1024-10 ReLU MLP at batch 256,
    softmax cross-entropy, SGD with momentum 0.9: model(x), the loss,
    backward(), optimizer.step();
  - the order-k Taylor forward f_k(theta) = sum_j<=k D^j f(theta0)[Delta^j]/j!,
    k = 1..6, ReLU and tanh, on that MLP, against nested functorch.jvp along
    Delta (each nesting doubles the passes: 2^k);
  - the traced NTK of a 784-512-512-512-10 ReLU MLP at N = 256, x2 = x1,
    against PyTorch's Jacobian contraction: functorch.vmap(jacrev) per
    example and the contraction of the Jacobians by einsum.  The Jacobian of
    all 256 examples is 19 GB, so it is built one output at a time (1.9 GB)
    and contracted as it comes: the same flops as one einsum.
Targets (issue 10): the step faster than PyTorch's; order 4 >= 50x faster
than nested jvp; the NTK >= 300x faster than the Jacobian contraction.

The step's margin is a few percent, less than a shared machine's drift over
the minutes between the two sides' runs, so the table is followed by the
step timed again in one process, in turns (ours through the Python binding
of bindings/python, then PyTorch's, STEP_PAIRS times): the best of each side,
the medians, and how many pairs each side won.  PyTorch's step time scatters
widely there (its gradients are new tensors each step, whose pages the
machine may have to fault in again); the best times compare the two at
their fastest.

PyTorch is never a build or test dependency: without an interpreter that
imports torch and functorch (this one, else the system's /usr/bin/python3,
which has Debian's python3-torch), the benchmark says so and is skipped
(exit 77).
"""
import glob
import json
import math
import os
import subprocess
import sys
import time

SKIP = 77
B, D, WIDTHS = 256, 784, (1024, 1024, 1024, 10)
NTK_N, NTK_WIDTHS = 256, (512, 512, 512, 10)
MAX_ORDER = 6
STEP_PAIRS = 40


def torch_python():
    """An interpreter that imports torch and functorch, or None."""
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", "import torch, functorch"], capture_output=True).returncode == 0:
            return py
    return None


def blis_libblas():
    """(path to preload or None, description) so that libblas.so.3 is BLIS."""
    found = glob.glob("/usr/lib/*/libblas.so.3") + glob.glob("/lib/*/libblas.so.3")
    current = os.path.realpath(found[0]) if found else ""
    if "blis" in current:
        return None, current
    candidates = sorted(glob.glob("/usr/lib/*/blis*/libblas.so.3"))
    if candidates:
        return candidates[0], candidates[0] + " (preloaded; libblas.so.3 is " + current + ")"
    return None, current + " (not BLIS: the kernels may differ)"


def read_ours(path, reps):
    out = subprocess.run([path, str(reps)], capture_output=True, text=True, check=True).stdout
    ours = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        ours[key] = value
    return ours


# ---------------------------------------------------------------- PyTorch side

def best_time(fn, n, warm_up=True):
    """The shortest of n timed calls of fn (after one untimed call)."""
    if warm_up:
        fn()
    t = math.inf
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def mlp(torch, widths, act):
    torch.manual_seed(1)
    layers, inp = [], D
    for l, out in enumerate(widths):
        layers.append(torch.nn.Linear(inp, out))
        if l + 1 < len(widths):
            layers.append(act())
        inp = out
    return torch.nn.Sequential(*layers)


def torch_kernels(torch, reps):
    """torch.mm's rate on the step's GEMM shapes (row-major, as ours), the
    BLAS the process mapped, and the kernel set BLIS picks under this
    environment (libblis.so.4 of the same package reads the same
    BLIS_ARCH_TYPE; libblas.so.3 exports no query of its own)."""
    import ctypes
    shapes, inp = [], D
    for l, out in enumerate(WIDTHS):
        shapes.append((B, out, inp, 0, 1))
        shapes.append((out, inp, B, 1, 0))
        if l > 0:
            shapes.append((B, inp, out, 0, 0))
        inp = out
    mats = [(torch.rand(k, m) if ta else torch.rand(m, k), torch.rand(n, k) if tb else torch.rand(k, n))
            for m, n, k, ta, tb in shapes]

    def gemms():
        for (a, b), (_, _, _, ta, tb) in zip(mats, shapes):
            torch.mm(a.t() if ta else a, b.t() if tb else b)
    flops = sum(2.0 * m * n * k for m, n, k, _, _ in shapes)
    res = {"dgemm_gflops": flops / best_time(gemms, reps) * 1e-9}
    with open("/proc/self/maps") as f:
        maps = {line.split()[-1] for line in f if "libblas" in line or "libblis" in line}
    res["blas_mapped"] = ", ".join(sorted(maps))
    try:
        blis = ctypes.CDLL("libblis.so.4")
        blis.bli_init()
        blis.bli_arch_string.restype = ctypes.c_char_p
        res["blis_kernels"] = blis.bli_arch_string(blis.bli_arch_query_id()).decode()
    except OSError:
        res["blis_kernels"] = "unknown (no libblis.so.4)"
    return res


def inputs(torch):
    x = torch.sin(0.37 * torch.arange(B * D, dtype=torch.float64)).reshape(B, D)
    return x, torch.arange(B) % 10


def torch_step_fn(torch):
    """The full step as a function: model(x), the loss, backward(),
    optimizer.step()."""
    x, labels = inputs(torch)
    model = mlp(torch, WIDTHS, torch.nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), labels).backward()
        opt.step()
    return step


def torch_step(torch, reps):
    return best_time(torch_step_fn(torch), reps)


def torch_taylor(torch, functorch, name, act, reps, max_order=MAX_ORDER):
    """f_k(theta0 + Delta) = sum_j<=k D^j f(theta0)[Delta^j] / j! by nested
    jvp in the parameters along Delta = 0.01 theta0: each nesting returns
    every lower derivative too and doubles the passes.  Order 0: the plain
    forward."""
    x, _ = inputs(torch)
    fmodel, p0 = functorch.make_functional(mlp(torch, WIDTHS, act))
    p0 = tuple(p.detach() for p in p0)
    dp = tuple(0.01 * p for p in p0)

    def f(*p):
        return (fmodel(p, x),)

    def lift(g):
        # (D^0 f .. D^j f) -> (D^0 f .. D^(j+1) f)
        def h(*p):
            primal, tangent = functorch.jvp(g, p, dp)
            return primal + (tangent[-1],)
        return h
    res = {}
    with torch.no_grad():
        res["taylor_%s_0" % name] = best_time(lambda: fmodel(p0, x), reps)
    g = f
    for k in range(1, max_order + 1):
        g = lift(g)

        def taylor(g=g, k=k):
            d = g(*p0)
            return sum(d[j] / math.factorial(j) for j in range(k + 1))
        # the high orders take seconds a call: one timed call, no warm-up
        slow = k > 4
        res["taylor_%s_%d" % (name, k)] = best_time(taylor, 1 if slow else reps, not slow)
    return res


def torch_ntk(torch, functorch, n=NTK_N):
    """The traced NTK, x2 = x1, by the Jacobian contraction: per output o,
    the per-example Jacobians J_o (n x P, vmap of jacrev) and
    K += J_o J_o^T (einsum per parameter tensor), K /= O.  Output by output,
    the Jacobians held at once are n P doubles (1.9 GB at n = 256), not the
    whole n O P (19 GB); the flops are those of one einsum."""
    fmodel, params = functorch.make_functional(mlp(torch, NTK_WIDTHS, torch.nn.ReLU))
    params = tuple(p.detach() for p in params)
    xn = (0.5 + 0.5 * torch.sin(0.37 * torch.arange(n * D, dtype=torch.float64))).reshape(n, D)
    outputs = NTK_WIDTHS[-1]

    def ntk():
        K = torch.zeros(n, n)
        for o in range(outputs):
            def f_o(p, xi, o=o):
                return fmodel(p, xi.unsqueeze(0))[0, o]
            jac = functorch.vmap(functorch.jacrev(f_o), (None, 0))(params, xn)
            for j in jac:
                j = j.flatten(1)
                K += torch.einsum("ip,jp->ij", j, j)
        return K / outputs
    return best_time(ntk, 1, False)   # one run: it takes seconds to minutes


def steps_in_turns(library, pairs):
    """The full step of both sides in one process, in turns: ours (the
    library `library` through the Python binding of bindings/python), then
    PyTorch's, `pairs` times, after one untimed step each.  The two sides'
    BLIS do not meet: the library's is its own, linked in with hidden
    symbols; PyTorch's is libblas.so.3.  Returns both lists of seconds."""
    import torch
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    os.environ["TAYLORNET_LIBRARY"] = library
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "bindings", "python"))
    import numpy
    import taylornet

    x, labels = inputs(torch)
    theirs = torch_step_fn(torch)
    ctx = taylornet.Context(threads=1)
    net = taylornet.Network.mlp(ctx, D, WIDTHS, "relu", seed=1)
    trainer = taylornet.Trainer(net, loss="softmax_xent", optimizer="momentum",
                                learning_rate=1e-3)
    xo = numpy.ascontiguousarray(x.numpy())
    yo = numpy.zeros((B, WIDTHS[-1]))
    yo[numpy.arange(B), labels.numpy()] = 1.0

    def ours():
        trainer.step(xo, yo)
    res = {"info": taylornet.blas_info(), "ours": [], "torch": []}
    ours()
    theirs()
    for _ in range(pairs):
        for key, fn in (("ours", ours), ("torch", theirs)):
            t0 = time.perf_counter()
            fn()
            res[key].append(time.perf_counter() - t0)
    return res


def torch_side(reps):
    import torch
    import functorch
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    res = {"version": torch.__version__}
    res.update(torch_kernels(torch, reps))
    res["step"] = torch_step(torch, reps)
    for name, act in (("relu", torch.nn.ReLU), ("tanh", torch.nn.Tanh)):
        res.update(torch_taylor(torch, functorch, name, act, reps))
    res["ntk_256"] = torch_ntk(torch, functorch)
    return res


# ---------------------------------------------------------------- the table

def main(argv):
    if len(argv) >= 2 and argv[1] == "--torch":
        print(json.dumps(torch_side(int(argv[2]))))
        return 0
    if len(argv) >= 2 and argv[1] == "--steps-in-turns":
        print(json.dumps(steps_in_turns(argv[2], int(argv[3]))))
        return 0
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    reps = int(argv[2]) if len(argv) > 2 else 5
    ours = read_ours(argv[1], reps)
    print(ours["info"])   # the first line of every benchmark: our kernels
    py = torch_python()
    if py is None:
        print("peer_torch: skipped: no python3 here imports torch and functorch "
              "(Debian: apt-get install python3-torch)")
        return SKIP
    preload, blas = blis_libblas()
    env = dict(os.environ, BLIS_ARCH_TYPE=ours["blis_arch_type"], BLIS_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    if preload:
        env["LD_PRELOAD"] = preload

    def torch_run(*args):
        child = subprocess.run([py, os.path.abspath(__file__), *args], env=env,
                               capture_output=True, text=True)
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return None
        return json.loads(child.stdout.strip().splitlines()[-1])
    th = torch_run("--torch", str(reps))
    if th is None:
        return 1

    print("libtaylornet against PyTorch %s, one thread, double, same run" % th["version"])
    print("  ours:    %s (timed by tests/bench/peer_ours, C)" % ours["info"])
    print("  PyTorch: BLAS %s; BLIS_ARCH_TYPE=%s: %s kernels" % (
        th["blas_mapped"] or blas, ours["blis_arch_type"], th["blis_kernels"]))
    print("  dgemm on the step's shapes: ours %.1f GFLOP/s, torch.mm %.1f GFLOP/s" % (
        float(ours["dgemm_gflops"]), th["dgemm_gflops"]))
    print()
    rows = [("full step 784-1024-1024-1024-10, batch 256", "step", "> 1")]
    for name, label in (("relu", "ReLU"), ("tanh", "tanh")):
        rows.append(("forward, %s (plain)" % label, "taylor_%s_0" % name, ""))
        for k in range(1, MAX_ORDER + 1):
            rows.append(("order-%d Taylor forward, %s vs nested jvp" % (k, label),
                         "taylor_%s_%d" % (name, k), ">= 50" if k == 4 else ""))
    rows.append(("traced NTK N=256 vs jacrev + einsum", "ntk_256", ">= 300"))
    print("%-50s %12s %12s %10s %8s" % ("workload", "ours ms", "PyTorch ms", "ratio", "target"))
    for label, key, target in rows:
        o, t = float(ours[key]), th[key]
        # Two decimals below 10x: the step's margin is a few percent.
        r = t / o
        print("%-50s %12.2f %12.2f %9s %8s" % (label, o * 1e3, t * 1e3,
                                              ("%.2fx" if r < 10 else "%.1fx") % r, target))
    print("(ratio: PyTorch's time over ours; best of %d, but one PyTorch run of the NTK and of "
          "the Taylor forward at k > 4)" % reps)

    # The step's margin is a few percent, less than this machine's drift
    # over the minutes between the two sides' runs above: time the two
    # steps again in one process, in turns, so both see the same machine.
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(argv[1]))), "lib",
                       "libtaylornet.so.0")
    turns = torch_run("--steps-in-turns", lib, str(STEP_PAIRS))
    if turns is None:
        print("\nfull step in turns: not run (the child above failed to load the library "
              "through bindings/python)")
        return 0
    o, t = turns["ours"], turns["torch"]
    ahead = sum(b > a for a, b in zip(o, t))
    ratios = sorted(b / a for a, b in zip(o, t))
    print()
    print("full step in turns, one process (ours through the Python binding: %s), %d pairs:"
          % (turns["info"], STEP_PAIRS))
    print("  best:   ours %.2f ms, PyTorch %.2f ms, ratio %.3fx" % (
        min(o) * 1e3, min(t) * 1e3, min(t) / min(o)))
    print("  median: ours %.2f ms, PyTorch %.2f ms; median of the pairs' ratios %.3fx" % (
        sorted(o)[len(o) // 2] * 1e3, sorted(t)[len(t) // 2] * 1e3, ratios[len(ratios) // 2]))
    print("  ours faster in %d of %d pairs" % (ahead, STEP_PAIRS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
