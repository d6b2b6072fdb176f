"""Handles: freed once, deterministically or by the collector, parents first
never; closed objects refuse to be used."""

import copy
import ctypes
import gc
import pickle
import unittest

import numpy as np

import taylornet as tn
from taylornet import _lib
from _support import ContextTestCase, rng, small_net

FREE_FUNCTIONS = {tn.Context: "tn_ctx_free", tn.Network: "tn_net_free",
                  tn.Taylor: "tn_taylor_free", tn.NTK: "tn_ntk_free",
                  tn.Predictor: "tn_predictor_free", tn.GP: "tn_gp_free",
                  tn.Trainer: "tn_trainer_free"}


class FreeLog(unittest.TestCase):
    """Replaces every class's C free function with one that logs
    (class name, handle address) before freeing."""

    def setUp(self):
        gc.collect()                     # earlier tests' garbage is not logged
        self.freed = []
        for cls, name in FREE_FUNCTIONS.items():
            self.addCleanup(setattr, cls, "_free", cls._free)
            cls._free = staticmethod(self._logger(cls.__name__, getattr(_lib.lib, name)))

    def _logger(self, label, free):
        def log(ptr):
            self.freed.append((label, ctypes_address(ptr)))
            free(ptr)
        return log

    def labels(self):
        return [label for label, _ in self.freed]

    def assertFreedOnce(self):
        addresses = [a for _, a in self.freed]
        self.assertEqual(len(addresses), len(set(addresses)), self.freed)


def ctypes_address(ptr):
    return ctypes.cast(ptr, ctypes.c_void_p).value


def family(ctx):
    """One object of every class made from ctx."""
    net = small_net(ctx, "relu", d=3, widths=(4, 2))
    K = np.eye(3)
    return {"net": net, "taylor": tn.Taylor(net, 2), "ntk": tn.NTK(net),
            "trainer": tn.Trainer(net), "predictor": tn.Predictor(ctx, K, np.zeros((3, 2))),
            "gp": tn.GP(ctx, K, np.zeros((3, 2)))}


class Deterministic(FreeLog):

    def test_close_is_idempotent(self):
        ctx = tn.Context()
        net = small_net(ctx)
        net.close()
        net.close()
        self.assertTrue(net.closed)
        ctx.close()
        ctx.close()
        del net, ctx
        gc.collect()
        self.assertEqual(self.labels(), ["Network", "Context"])

    def test_with_blocks(self):
        with tn.Context() as ctx:
            with small_net(ctx) as net:
                with tn.Trainer(net) as tr:
                    tr.step(np.zeros((1, 4)), np.zeros((1, 2)))
                self.assertTrue(tr.closed)
                self.assertFalse(net.closed)
            self.assertTrue(net.closed)
        self.assertTrue(ctx.closed)
        self.assertEqual(self.labels(), ["Trainer", "Network", "Context"])

    def test_closing_a_parent_closes_its_children_first(self):
        ctx = tn.Context()
        objs = family(ctx)
        ctx.close()
        self.assertTrue(all(o.closed for o in objs.values()))
        labels = self.labels()
        self.assertEqual(sorted(labels), sorted(["Network", "Taylor", "NTK", "Trainer",
                                                 "Predictor", "GP", "Context"]))
        self.assertEqual(labels[-1], "Context")
        for child in ("Taylor", "NTK", "Trainer"):
            self.assertLess(labels.index(child), labels.index("Network"))
        del objs
        gc.collect()
        self.assertFreedOnce()

    def test_closed_objects_raise_misuse(self):
        ctx = tn.Context()
        objs = family(ctx)
        net = objs["net"]
        x = np.zeros((2, 3))
        calls = {"net": [lambda: net.forward(x), lambda: net.num_params, net.get_params,
                         net.clone, lambda: net.set("sigma_w", 1), lambda: tn.Trainer(net)],
                 "taylor": [lambda: objs["taylor"].forward(x), lambda: objs["taylor"].order],
                 "ntk": [lambda: objs["ntk"].compute(x), lambda: objs["ntk"].get("method")],
                 "trainer": [lambda: objs["trainer"].step(x, np.zeros((2, 2))),
                             lambda: objs["trainer"].num_steps],
                 "predictor": [lambda: objs["predictor"].predict(1, np.zeros((3, 2)))],
                 "gp": [lambda: objs["gp"].nngp_posterior(np.eye(3))],
                 "ctx": [lambda: ctx.threads, lambda: ctx.memory, lambda: ctx.errmsg,
                         lambda: tn.Network(ctx, 3), lambda: ctx.__enter__()]}
        ctx.close()
        for name, fns in calls.items():
            for fn in fns:
                with self.subTest(name=name):
                    with self.assertRaises(tn.MisuseError) as cm:
                        fn()
                    self.assertEqual(cm.exception.status, tn.Status.MISUSE)
                    self.assertIn("closed", cm.exception.message)
        self.assertIn("(closed)", repr(net))


class Collected(FreeLog):

    def test_garbage_collection_frees_once(self):
        ctx = tn.Context()
        objs = family(ctx)
        del objs
        gc.collect()
        self.assertEqual(sorted(self.labels()), sorted(["Network", "Taylor", "NTK", "Trainer",
                                                        "Predictor", "GP"]))
        self.assertEqual(ctx.memory.in_use, 0)
        del ctx
        gc.collect()
        self.assertEqual(self.labels()[-1], "Context")
        self.assertFreedOnce()

    def test_children_keep_parents_alive(self):
        tr = tn.Trainer(small_net(tn.Context()))            # no other reference to either
        ntk = tn.NTK(tr.network)
        gc.collect()
        self.assertEqual(self.freed, [])
        x = rng().standard_normal((3, 4))
        tr.step(x, np.zeros((3, 2)))
        ntk.compute(x)
        ctx = tr.network.context
        del tr
        gc.collect()
        self.assertEqual(self.labels(), ["Trainer"])
        del ntk
        gc.collect()
        self.assertEqual(self.labels(), ["Trainer", "NTK", "Network"])
        del ctx
        gc.collect()
        self.assertEqual(self.labels(), ["Trainer", "NTK", "Network", "Context"])

    def test_reference_cycles(self):
        """Objects in a reference cycle are all freed, children first."""
        for _ in range(3):
            ctx = tn.Context()
            net = small_net(ctx)
            tr = tn.Trainer(net)
            ctx.cycle, net.cycle, tr.cycle = tr, ctx, net           # ctx -> tr -> net -> ctx
            del ctx, net, tr
            gc.collect()
            self.assertEqual(self.labels(), ["Trainer", "Network", "Context"])
            self.assertFreedOnce()
            self.freed.clear()                     # addresses may be reused by malloc

    def test_parent_finalized_before_its_child(self):
        """What the collector may do in a cycle: the parent's finalizer runs
        first.  Its handle is freed right after the last child's."""
        ctx = tn.Context()
        net = small_net(ctx)
        ctx.__del__()
        self.assertEqual(self.freed, [])           # the network still needs it
        self.assertTrue(ctx.closed)
        net.forward(np.zeros((1, 4)))              # the C context is alive
        net.close()
        self.assertEqual(self.labels(), ["Network", "Context"])
        ctx.__del__()
        del ctx, net
        gc.collect()
        self.assertEqual(self.labels(), ["Network", "Context"])

    def test_closing_parent_with_collected_child(self):
        ctx = tn.Context()
        net = small_net(ctx)
        tn.Trainer(net)                                            # garbage at once
        ctx.close()
        self.assertEqual(self.labels(), ["Trainer", "Network", "Context"])


class DuringACall(FreeLog):
    """A C call holds its handles: nothing of its context is freed under it
    (before: a progress callback that closed a handle aborted the process)."""

    def setUp(self):
        super().setUp()
        self.ctx = tn.Context()
        self.addCleanup(self.ctx.close)
        self.net = small_net(self.ctx, "relu", d=20, widths=(64, 64, 1))
        self.x = rng().standard_normal((300, 20))
        self.ntk = tn.NTK(self.net, memory_budget=2**20)   # several tiles: several callbacks

    def _compute_with(self, callback):
        self.ctx.set_progress(callback)
        try:
            return self.ntk.compute(self.x)
        finally:
            self.ctx.set_progress(None)

    def test_close_in_a_progress_callback_is_refused(self):
        for victim in ("ntk", "net", "ctx"):
            with self.subTest(victim=victim):
                obj = {"ntk": self.ntk, "net": self.net, "ctx": self.ctx}[victim]
                with self.assertRaises(tn.MisuseError) as cm:
                    self._compute_with(lambda f: obj.close())
                self.assertIn("while a call", cm.exception.message)
                self.assertIsInstance(cm.exception.__cause__, tn.CancelledError)
                self.assertFalse(obj.closed)
        self.assertEqual(self.freed, [])
        K = self.ntk.compute(self.x[:5])                 # everything still works
        self.assertEqual(K.shape, (5, 5))

    def test_other_calls_on_the_context_are_refused(self):
        with self.assertRaises(tn.MisuseError) as cm:
            self._compute_with(lambda f: self.net.forward(self.x[:1]))
        self.assertIn("must not use its own Context", cm.exception.message)
        # Another context is fine.
        with tn.Context() as other:
            net = small_net(other, "tanh", d=20, widths=(3,))
            out = []
            self._compute_with(lambda f: out.append(net.forward(self.x[:1])))
            self.assertTrue(out)

    def test_handle_collected_in_a_callback_is_freed_after_the_call(self):
        holder = [tn.Trainer(self.net)]
        during = []

        def callback(fraction):
            if holder:
                holder.clear()
                gc.collect()                          # the trainer is finalized now ...
                during.append(list(self.labels()))
        self._compute_with(callback)
        self.assertEqual(during, [[]])                # ... but not freed during the call
        self.assertEqual(self.labels(), ["Trainer"])  # freed once it returned
        self.assertFreedOnce()

    def test_close_in_a_gradient_hook_is_refused(self):
        tr = tn.Trainer(self.net)
        tr.set_gradient_hook(lambda grad, loss: tr.close())
        y = np.zeros((300, 1))
        with self.assertRaises(tn.MisuseError):
            tr.step(self.x, y)
        self.assertFalse(tr.closed)
        self.assertEqual(tr.num_steps, 0)
        tr.set_gradient_hook(None)
        tr.step(self.x, y)
        self.assertEqual(tr.num_steps, 1)


class Copies(ContextTestCase):
    """A copy that shared the C pointer would free it twice (before:
    copy.copy(Network) did)."""

    def test_network_copies_are_clones(self):
        net = small_net(self.ctx)
        for c in (copy.copy(net), copy.deepcopy(net), copy.deepcopy([net])[0]):
            self.assertIsInstance(c, tn.Network)
            self.assertNotEqual(ctypes_address(c._ptr), ctypes_address(net._ptr))
            np.testing.assert_array_equal(c.params, net.params)
            c.set_params(c.params + 1)                # independent
            self.assertFalse(np.array_equal(c.params, net.params))
            c.close()
        net.forward(np.zeros((1, 4)))

    def test_other_handles_refuse(self):
        objs = family(self.ctx)
        objs["ctx"] = self.ctx
        for name, obj in objs.items():
            if name == "net":
                continue
            with self.subTest(name=name):
                self.assertRaises(TypeError, copy.copy, obj)
                self.assertRaises(TypeError, copy.deepcopy, obj)
        for name, obj in objs.items():
            with self.subTest(name=name):
                self.assertRaises(TypeError, pickle.dumps, obj)


class ContextTests(ContextTestCase):

    def test_repr(self):
        net = small_net(self.ctx)
        self.assertIn("Network", repr(net))
        self.assertIn("NTK", repr(tn.NTK(net)))
        self.assertIn("Predictor", repr(tn.Predictor(self.ctx, np.eye(2), np.zeros((2, 1)))))


if __name__ == "__main__":
    unittest.main()
