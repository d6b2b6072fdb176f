"""The binding computes the C API's numbers bit for bit."""

import os
import shutil
import subprocess
import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, batch, reference_net


class GoldenParameters(ContextTestCase):
    """tests/test_init.c's golden draw of seed 42, reproduced from Python."""

    GOLDEN = [-0.72621913824478568, -0.21119691823195985, 0.22162270150359337,
              0.52277168775601457, 0.46417731016247366, 0.74097889168655617,
              1.4762494610184149, 0.47075911993601033]
    GOLDEN_LAST = -0.70027767961916809

    def test_seed_42(self):
        theta = reference_net(self.ctx).params
        self.assertEqual(theta.size, 30 * 50 + 50 + 50 * 40 + 40 + 40 * 3 + 3)
        self.assertBitsEqual(theta[:8], self.GOLDEN)
        self.assertEqual(theta[-1], self.GOLDEN_LAST)


def parse_reference(text):
    """The sections of c_reference's output: {name: float64 array}."""
    lines = text.split("\n")
    sections, i = {}, 0
    while i < len(lines) and lines[i]:
        name, count = lines[i].split()
        count = int(count)
        sections[name] = np.array([float.fromhex(v) for v in lines[i + 1:i + 1 + count]])
        i += 1 + count
    return sections


@unittest.skipUnless(os.environ.get("TAYLORNET_C_REFERENCE"),
                     "TAYLORNET_C_REFERENCE is not set (meson test sets it)")
class SameAsC(ContextTestCase):
    """The scenario of tests/c_reference.c, through the binding."""

    @classmethod
    def setUpClass(cls):
        cmd = [os.environ["TAYLORNET_C_REFERENCE"]]
        env = dict(os.environ)
        if "vgpreload" in env.pop("LD_PRELOAD", ""):
            # Under valgrind (meson test --setup valgrind) the CPU is emulated
            # and BLIS may pick other kernels, with other roundings: compute
            # the reference on the same emulated CPU.
            if not shutil.which("valgrind"):
                raise unittest.SkipTest("running under valgrind, but no valgrind on PATH")
            cmd = [shutil.which("valgrind"), "--quiet"] + cmd
        elif "LD_PRELOAD" in os.environ:
            env["LD_PRELOAD"] = os.environ["LD_PRELOAD"]      # e.g. the ASan runtime
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                             timeout=300)
        cls.ref = parse_reference(out.stdout)

    def python_results(self):
        ctx = self.ctx
        x, y = batch()
        out = {}
        net = reference_net(ctx)
        out["params_init"] = net.params
        f0 = net.forward(x)
        out["forward"] = f0

        k = tn.NTK(net)
        ntk = k.compute(x)
        out["ntk_trace"] = ntk
        k.set(tn.NTKParam.OUTPUTS, tn.NTKOutputs.FULL)
        out["ntk_full"] = k.compute(x, np.ascontiguousarray(x[:3]))
        nngp_inf, ntk_inf = k.analytic(x)
        out["nngp_analytic"], out["ntk_analytic"] = nngp_inf, ntk_inf

        pred = tn.Predictor(ctx, ntk, y, learning_rate=0.5)
        out["predictor_train"], out["predictor_test"] = pred.predict(
            10, f0, np.ascontiguousarray(ntk[:3]), np.ascontiguousarray(f0[:3]))

        gp = tn.GP(ctx, nngp_inf, y, ntk_inf, diag_reg=1e-6)
        out["gp_nngp_mean"], out["gp_nngp_cov"] = gp.nngp_posterior(
            np.ascontiguousarray(nngp_inf[:3]), np.ascontiguousarray(nngp_inf[:3, :3]))

        taylor = tn.Taylor(net, 3)
        trainer = tn.Trainer(net, optimizer=tn.Optimizer.ADAM, learning_rate=1e-2)
        out["losses"] = [trainer.step(x, y) for _ in range(10)]
        out["trained_forward"] = trainer.predict(x)
        out["params_trained"] = net.params
        out["taylor_terms"] = taylor.terms(x)
        out["taylor_norms"] = taylor.term_norms()
        out["taylor_divergence"] = [taylor.divergence()]
        return out

    def test_bit_for_bit(self):
        mine = self.python_results()
        self.assertEqual(sorted(mine), sorted(self.ref))
        for name, want in self.ref.items():
            with self.subTest(section=name):
                self.assertBitsEqual(np.ravel(mine[name]), want, name)


if __name__ == "__main__":
    unittest.main()
