"""Trainer: steps, losses, settings, modes, diagnostics, the NUMERIC rollback."""

import math
import os
import shutil
import tempfile
import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, batch, reference_net, rng, small_net


class TrainerTests(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.net = small_net(self.ctx, "tanh", d=4, widths=(8, 2))
        g = rng(10)
        self.x, self.y = g.standard_normal((10, 4)), g.standard_normal((10, 2))

    def test_training_reduces_the_loss(self):
        tr = tn.Trainer(self.net, learning_rate=0.1)
        self.assertIs(tr.network, self.net)
        before = tr.loss(self.x, self.y)
        losses = [tr.step(self.x, self.y) for _ in range(20)]
        self.assertEqual(losses[0], before)                   # the loss before the update
        self.assertLess(tr.loss(self.x, self.y), before)
        self.assertEqual(tr.num_steps, 20)
        self.assertIn("num_steps=20", repr(tr))

    def test_mse_and_predict(self):
        tr = tn.Trainer(self.net)
        f = self.net.forward(self.x)
        np.testing.assert_array_equal(tr.predict(self.x), f)
        self.assertAlmostEqual(tr.loss(self.x, self.y),
                               0.5 * np.sum((f - self.y) ** 2) / 10, places=13)

    def test_sgd_is_a_gradient_step(self):
        tr = tn.Trainer(self.net, optimizer="sgd", learning_rate=0.01)
        theta = self.net.params
        grad = self.net.vjp(self.x, (self.net.forward(self.x) - self.y) / 10)
        tr.step(self.x, self.y)
        np.testing.assert_allclose(self.net.params, theta - 0.01 * grad, rtol=1e-12, atol=1e-15)

    def test_settings(self):
        tr = tn.Trainer(self.net, optimizer=tn.Optimizer.ADAM, learning_rate=1e-2)
        self.assertIs(tr.get("optimizer"), tn.Optimizer.ADAM)
        self.assertIs(tr.get(tn.TrainParam.LOSS), tn.Loss.MSE)
        self.assertEqual(tr.get("beta2"), 0.999)
        self.assertEqual(tr.get("learning_rate"), 1e-2)
        tr.set("loss", "softmax_xent").set(tn.TrainParam.CLIP_NORM, 1.0)
        self.assertIs(tr.get("loss"), tn.Loss.SOFTMAX_XENT)
        self.assertIsInstance(tr.get("order"), int)
        tr.configure(learning_rate=5e-3, optimizer="rmsprop")
        self.assertEqual(tr.get("learning_rate"), 5e-3)       # kept: set explicitly
        self.assertEqual(tn.Trainer(self.net, optimizer="rmsprop").get("learning_rate"), 1e-2)
        for param, value in [("learning_rate", 0), ("learning_rate", math.nan), ("momentum", 1),
                             ("optimizer", 5), ("loss", 2), ("order", 1.5), ("order", 33),
                             (999, 1)]:
            with self.subTest(param=param, value=value):
                e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                            tr.set, param, value)
                self.assertEqual(e.function, "tn_trainer_set")
        self.assertRaises(tn.InvalidArgumentError, tr.set, "optimizer", "lbfgs")
        self.assertRaises(tn.InvalidArgumentError, tr.get, "nope")

    def test_linearized_training(self):
        f0 = self.net.forward(self.x)
        t0 = tn.Taylor(small_net(self.ctx, "tanh", d=4, widths=(8, 2)), 1)   # at theta0
        tr = tn.Trainer(self.net, order=1, learning_rate=0.05)
        self.assertEqual(tr.get("order"), 1)
        for _ in range(5):
            tr.step(self.x, self.y)
        # The trained model is the linearization at theta0: f0 + J (theta - theta0).
        np.testing.assert_allclose(tr.predict(self.x), t0.forward(self.x, self.net.params),
                                   rtol=1e-12, atol=1e-13)
        self.assertFalse(np.allclose(tr.predict(self.x), f0))

    def test_centered_and_scaled(self):
        tr = tn.Trainer(self.net, centered=1, output_scale=2.0)
        np.testing.assert_allclose(tr.predict(self.x), 0, atol=1e-15)
        self.assertEqual(tr.get("output_scale"), 2.0)

    def test_numeric_failure_changes_nothing(self):
        tr = tn.Trainer(self.net, optimizer="adam")
        tr.step(self.x, self.y)
        theta = self.net.params
        bad = self.y.copy()
        bad[0, 0] = 1e300                              # finite; the loss overflows
        e = self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, tr.step, self.x, bad)
        self.assertIsInstance(e, ArithmeticError)
        bad[0, 0] = np.inf                             # not finite: refused after the hook
        self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, tr.step, self.x, bad)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, tr.loss, self.x,
                                bad)
        self.assertEqual(tr.num_steps, 1)
        self.assertBitsEqual(self.net.params, theta)

    def test_stats(self):
        tr = tn.Trainer(self.net)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tr.stat, "loss")
        loss = tr.step(self.x, self.y)
        self.assertEqual(tr.stat(tn.TrainStat.LOSS), loss)
        self.assertGreater(tr.stat("grad_norm"), 0)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tr.stat, "taylor_predicted")
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, tr.stat, 8)
        self.assertRaises(tn.InvalidArgumentError, tr.stat, "nope")

    def test_diagnostics_and_probe(self):
        net = reference_net(self.ctx)
        x, y = batch()
        tr = tn.Trainer(net, diagnostics=1, learning_rate=0.5)
        tr.set_probe(x)
        tr.step(x, y)
        predicted, reached = tr.stat("taylor_predicted"), tr.stat("loss_reached")
        self.assertAlmostEqual(reached, tr.loss(x, y), places=14)
        self.assertTrue(math.isfinite(predicted))
        for s in ("pattern_change_step", "pattern_change_init"):
            self.assertTrue(0 <= tr.stat(s) <= 1)
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, tr.set_probe, np.zeros((2, 3)))

    def test_batch_shapes(self):
        tr = tn.Trainer(self.net)
        for fn, args in [(tr.step, (self.x, self.y[:9].copy())),
                         (tr.step, (self.x[:, :3].copy(), self.y)),
                         (tr.loss, (self.x, self.y[:, :1].copy())),
                         (tr.predict, (np.zeros(4),))]:
            with self.subTest(fn=fn.__name__):
                self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, fn, *args)
        self.assertRaises(TypeError, tr.step, self.x, self.y.astype(np.float32))
        self.assertRaises(tn.InvalidArgumentError, tr.step, self.x, np.asfortranarray(self.y))
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, tr.step,
                                np.zeros((0, 4)), np.zeros((0, 2)))
        self.assertEqual(tr.num_steps, 0)

    def test_checkpoint_resumes_bit_for_bit(self):
        # Adam, order 2 re-expanded every 2 steps, with diagnostics and a probe:
        # the state a checkpoint must carry beyond theta.
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        path = os.path.join(d, "ck.tnck")
        settings = dict(optimizer="adam", learning_rate=1e-2, order=2, reexpand_every=2,
                        diagnostics=1)

        def run(tr, steps):
            return [tr.step(self.x[(3 * s) % 7:][:3].copy(), self.y[(3 * s) % 7:][:3].copy())
                    for s in steps]

        ref = tn.Trainer(small_net(self.ctx, "relu", d=4, widths=(8, 2)), **settings)
        ref.set_probe(self.x[:4].copy())
        ref_losses = run(ref, range(8))
        tr = tn.Trainer(small_net(self.ctx, "relu", d=4, widths=(8, 2)), **settings)
        tr.set_probe(self.x[:4].copy())
        run(tr, range(3))
        tr.save(path)
        with tn.Context() as other:
            resumed = tn.Trainer.load(other, path)
            self.assertEqual(resumed.num_steps, 3)
            self.assertEqual(resumed.get("order"), 2)
            self.assertIsInstance(resumed.network, tn.Network)
            self.assertEqual(run(resumed, range(3, 8)), ref_losses[3:])
            self.assertBitsEqual(resumed.network.params, ref.network.params)
            self.assertEqual(resumed.stat("pattern_change_init"), ref.stat("pattern_change_init"))
            self.assertBitsEqual(resumed.base, ref.base)       # theta0, re-expanded every 2 steps
            self.assertEqual(resumed.base.shape, (resumed.network.num_params,))
        self.assertRaisesStatus(tn.FormatError, tn.Status.FORMAT, tn.Trainer.load, self.ctx,
                                self._junk(d))
        self.assertRaises(ValueError, tr.save, path + "\0x")
        self.assertRaises(ValueError, tn.Trainer.load, self.ctx, path + "\0x")
        self.assertRaisesStatus(tn.FileError, tn.Status.IO, tn.Trainer.load, self.ctx, d)

    @staticmethod
    def _junk(d):
        path = os.path.join(d, "junk")
        with open(path, "wb") as f:
            f.write(b"\x89TNCKP\r\n" + bytes(40))
        return path

    def test_wrong_parent(self):
        self.assertRaises(TypeError, tn.Trainer, self.ctx)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tn.Trainer,
                                tn.Network(self.ctx, 3).add_dense(1))


if __name__ == "__main__":
    unittest.main()
