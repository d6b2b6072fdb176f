"""Trainer.set_gradient_hook: what the hook sees, what it may change, and
that an exception in it fails the step with nothing changed."""

import gc
import math
import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, rng, small_net


class GradientHook(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.net = small_net(self.ctx, "tanh", d=4, widths=(8, 2))
        self.twin = small_net(self.ctx, "tanh", d=4, widths=(8, 2))
        g = rng(11)
        self.x, self.y = g.standard_normal((10, 4)), g.standard_normal((10, 2))

    def test_sees_the_gradient_and_doubles_it(self):
        tr = tn.Trainer(self.net, optimizer="sgd", learning_rate=0.05)
        tw = tn.Trainer(self.twin, optimizer="sgd", learning_rate=0.1)
        seen = []

        def double(grad, loss):
            seen.append((grad.copy(), loss))
            grad *= 2.0
            return None

        tr.set_gradient_hook(double)
        grad = self.net.vjp(self.x, (self.net.forward(self.x) - self.y) / 10)
        before = tr.loss(self.x, self.y)
        loss = tr.step(self.x, self.y)
        tw.step(self.x, self.y)
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0][0].shape, (self.net.num_params,))
        np.testing.assert_allclose(seen[0][0], grad, rtol=1e-13, atol=1e-15)
        self.assertAlmostEqual(seen[0][1], before, places=14)
        self.assertEqual(loss, seen[0][1])
        # Doubling is exact: the bits of the twin with twice the learning rate.
        self.assertBitsEqual(self.net.params, self.twin.params)
        self.assertEqual(tr.stat("grad_norm"), 2.0 * tw.stat("grad_norm"))

    def test_replaces_the_loss(self):
        tr = tn.Trainer(self.net)
        tr.set_gradient_hook(lambda grad, loss: 3 * loss)
        before = tr.loss(self.x, self.y)
        self.assertAlmostEqual(tr.step(self.x, self.y), 3 * before, places=13)
        self.assertEqual(tr.stat("loss"), tr.stat(tn.TrainStat.LOSS))
        tr.set_gradient_hook(lambda grad, loss: math.nan)
        self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, tr.step, self.x, self.y)
        self.assertEqual(tr.num_steps, 1)

    def test_exception_fails_the_step_and_changes_nothing(self):
        class Boom(Exception):
            pass

        tr = tn.Trainer(self.net, optimizer="adam")
        tw = tn.Trainer(self.twin, optimizer="adam")
        tr.step(self.x, self.y)
        tw.step(self.x, self.y)
        theta, loss = self.net.params, tr.stat("loss")

        def explode(grad, loss):
            grad[:] = np.nan
            raise Boom("from the hook")

        tr.set_gradient_hook(explode)
        with self.assertRaises(Boom) as cm:
            tr.step(self.x, self.y)
        self.assertIsInstance(cm.exception.__cause__, tn.CancelledError)
        self.assertIn("gradient hook", cm.exception.__cause__.message)
        tr.set_gradient_hook(lambda grad, loss: "not a number")
        self.assertRaises(TypeError, tr.step, self.x, self.y)
        self.assertEqual(tr.num_steps, 1)
        self.assertBitsEqual(self.net.params, theta)
        self.assertEqual(tr.stat("loss"), loss)
        # Removed, the run continues as the twin's: Adam's state was untouched.
        tr.set_gradient_hook(None)
        for t in (tr, tw):
            t.step(self.x, self.y)
        self.assertBitsEqual(self.net.params, self.twin.params)

    def test_removal_lifetime_and_arguments(self):
        tr = tn.Trainer(self.net)
        calls = []

        def install():
            tr.set_gradient_hook(lambda grad, loss: calls.append(loss))   # only the binding holds it

        install()
        gc.collect()
        tr.step(self.x, self.y)
        self.assertEqual(len(calls), 1)
        tr.set_gradient_hook(None)
        tr.step(self.x, self.y)
        self.assertEqual(len(calls), 1)
        self.assertRaises(TypeError, tr.set_gradient_hook, 42)
        tr.close()
        self.assertRaises(tn.MisuseError, tr.set_gradient_hook, None)


if __name__ == "__main__":
    unittest.main()
