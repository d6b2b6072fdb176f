"""Context: threads, error message, memory accounting, progress callback."""

import gc
import os
import subprocess
import sys
import threading
import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, batch, reference_net, rng, small_net


class Threads(ContextTestCase):

    def test_default_and_set(self):
        self.assertEqual(self.ctx.threads, 1)
        self.ctx.threads = 2
        self.assertEqual(self.ctx.threads, 2)
        with tn.Context(threads=3) as ctx:
            self.assertEqual(ctx.threads, 3)
            self.assertIn("threads=3", repr(ctx))

    def test_out_of_range(self):
        for bad in (0, 1025):
            e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                        setattr, self.ctx, "threads", bad)
            self.assertIn("tn_ctx_set_threads", e.message)
        self.assertRaises(tn.InvalidArgumentError, setattr, self.ctx, "threads", -1)
        self.assertRaises(TypeError, setattr, self.ctx, "threads", 1.5)
        self.assertEqual(self.ctx.threads, 1)

    def test_same_results_with_more_threads(self):
        x, _ = batch()
        net = reference_net(self.ctx)
        k1 = tn.NTK(net).compute(x)
        self.ctx.threads = 2
        np.testing.assert_allclose(tn.NTK(net).compute(x), k1, rtol=1e-12, atol=1e-14)

    def test_one_context_per_thread(self):
        """Distinct contexts on distinct threads give the single-threaded bits."""
        x, y = batch()

        def work(out, i):
            with tn.Context() as ctx:
                net = reference_net(ctx)
                trainer = tn.Trainer(net, optimizer="adam", learning_rate=1e-2)
                out[i] = [trainer.step(x, y) for _ in range(5)] + list(tn.NTK(net).compute(x).flat)

        want = {}
        work(want, 0)
        got = {}
        threads = [threading.Thread(target=work, args=(got, i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(4):
            self.assertEqual(got[i], want[0])


class Kernels(unittest.TestCase):

    def test_blas_info(self):
        info = tn.blas_info()
        self.assertTrue(info.startswith("BLIS "), info)
        self.assertIn(" kernels (", info)

    def test_refused_kernel_set_raises_with_the_message(self):
        """TAYLORNET_KERNELS is read once per process: a child process."""
        code = ("import taylornet as tn\n"
                "try:\n"
                "    tn.Context()\n"
                "except tn.InvalidArgumentError as e:\n"
                "    print('refused:', e.message)\n")
        env = dict(os.environ, TAYLORNET_KERNELS="zen9")
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout
        self.assertIn("refused: tn_ctx_create: TAYLORNET_KERNELS=zen9", out)


class ErrmsgAndMemory(ContextTestCase):

    def test_errmsg(self):
        self.assertEqual(self.ctx.errmsg, "")
        with self.assertRaises(tn.TaylornetError) as cm:
            tn.Network(self.ctx, (2, 3))            # ndim 2: neither {d} nor {H, W, C}
        self.assertEqual(self.ctx.errmsg, cm.exception.message)
        self.assertEqual(cm.exception.status, tn.Status.INVALID_ARG)
        small_net(self.ctx)                          # success leaves the message
        self.assertEqual(self.ctx.errmsg, cm.exception.message)

    def test_memory(self):
        m0 = self.ctx.memory
        self.assertIsInstance(m0, tn.MemoryStats)
        net = reference_net(self.ctx)
        m1 = self.ctx.memory
        self.assertGreaterEqual(m1.in_use, m0.in_use + net.num_params * 8)
        self.assertGreaterEqual(m1.peak, m1.in_use)
        x, _ = batch()
        tn.NTK(net).compute(x)
        gc.collect()
        peak = self.ctx.memory.peak
        self.ctx.reset_peak_memory()
        m2 = self.ctx.memory
        self.assertEqual(m2.peak, m2.in_use)
        self.assertLessEqual(m2.peak, peak)
        net.close()
        self.assertEqual(self.ctx.memory.in_use, m0.in_use)


class Progress(ContextTestCase):

    def setUp(self):
        super().setUp()
        # A kernel large enough for several tiles under the 1 MiB minimum budget.
        self.net = small_net(self.ctx, "relu", d=20, widths=(64, 64, 1))
        self.x = rng().standard_normal((300, 20))
        self.ntk = tn.NTK(self.net, memory_budget=2**20)      # 10 tiles

    def test_fractions_rise_to_one(self):
        seen = []
        self.ctx.set_progress(seen.append)
        K = self.ntk.compute(self.x)
        self.assertGreater(len(seen), 1)
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(seen[-1], 1.0)
        self.ctx.set_progress(None)
        seen.clear()
        np.testing.assert_array_equal(self.ntk.compute(self.x), K)
        self.assertEqual(seen, [])

    def test_cancel(self):
        self.ctx.set_progress(lambda fraction: fraction > 0)
        e = self.assertRaisesStatus(tn.CancelledError, tn.Status.CANCELLED, self.ntk.compute,
                                    self.x)
        self.assertIn("cancelled", e.message)
        self.assertEqual(e.function, "tn_ntk_compute")

    def test_exception_in_callback_cancels_and_propagates(self):
        class Stop(Exception):
            pass

        def callback(fraction):
            raise Stop("from the callback")

        self.ctx.set_progress(callback)
        with self.assertRaises(Stop) as cm:
            self.ntk.compute(self.x)
        self.assertIsInstance(cm.exception.__cause__, tn.CancelledError)
        # The next call is not affected by the old exception.
        self.ctx.set_progress(None)
        self.ntk.compute(self.x)

    def test_callback_kept_alive(self):
        calls = []

        def install():
            self.ctx.set_progress(lambda f: calls.append(f))   # only the binding holds it

        install()
        gc.collect()
        self.ntk.compute(self.x)
        self.assertTrue(calls)

    def test_not_callable(self):
        self.assertRaises(TypeError, self.ctx.set_progress, 42)


if __name__ == "__main__":
    unittest.main()
