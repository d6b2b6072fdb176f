"""Predictor (closed-form linearized dynamics) and GP inference."""

import math
import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, rng, small_net


class PredictorTests(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.net = small_net(self.ctx, "relu", d=3, widths=(16, 2))
        g = rng(8)
        self.x, self.xt = g.standard_normal((6, 3)), g.standard_normal((4, 3))
        self.y = g.standard_normal((6, 2))
        k = tn.NTK(self.net)
        self.K, self.Kt = k.compute(self.x), k.compute(self.xt, self.x)
        k.set("outputs", "full")
        self.Kf, self.Ktf = k.compute(self.x), k.compute(self.xt, self.x)
        self.f0, self.f0t = self.net.forward(self.x), self.net.forward(self.xt)

    def test_matches_the_formula(self):
        p = tn.Predictor(self.ctx, self.K, self.y, learning_rate=0.5)
        self.assertFalse(p.full_kernel)
        self.assertEqual((p.n_train, p.n_out), (6, 2))
        t = 7
        M = np.linalg.matrix_power(np.eye(6) - 0.5 * self.K / 6, t)
        f_train, f_test = p.predict(t, self.f0, self.Kt, self.f0t)
        np.testing.assert_allclose(f_train, self.y + M @ (self.f0 - self.y), rtol=1e-9, atol=1e-11)
        moved = (np.eye(6) - M) @ (self.f0 - self.y)
        want_test = self.f0t - self.Kt @ np.linalg.solve(self.K, moved)
        np.testing.assert_allclose(f_test, want_test, rtol=1e-8, atol=1e-10)

    def test_times(self):
        p = tn.Predictor(self.ctx, self.K, self.y)
        f_train, f_test = p.predict(0, self.f0)
        self.assertIsNone(f_test)
        np.testing.assert_allclose(f_train, self.f0, rtol=1e-12, atol=1e-13)
        e = self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, p.predict, math.inf,
                                    self.f0)                    # eta = 1 diverges here
        self.assertIn("diverges", e.message)
        p.set("learning_rate", 0.25)
        f_inf, _ = p.predict(math.inf, self.f0)
        np.testing.assert_allclose(f_inf, self.y, rtol=1e-8, atol=1e-9)
        p.set("time", "flow")
        self.assertIs(p.get(tn.PredictorParam.TIME), tn.PredTime.FLOW)
        flow, _ = p.predict(2.5, self.f0)                 # flow time need not be whole
        self.assertEqual(flow.shape, (6, 2))
        p.set("time", tn.PredTime.STEPS)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, p.predict, 2.5,
                                self.f0)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, p.predict, -1,
                                self.f0)

    def test_full_kernel(self):
        traced = tn.Predictor(self.ctx, self.K, self.y, learning_rate=0.2)
        full = tn.Predictor(self.ctx, self.Kf, self.y, learning_rate=0.2)   # full: from the shape
        self.assertTrue(full.full_kernel)
        a = full.predict(5, self.f0, self.Ktf, self.f0t)
        self.assertEqual((a[0].shape, a[1].shape), ((6, 2), (4, 2)))
        b = traced.predict(5, self.f0, self.Kt, self.f0t)
        self.assertFalse(np.allclose(a[1], b[1]))             # a different kernel
        self.assertRaises(tn.ShapeError, full.predict, 5, self.f0, self.Kt, self.f0t)
        self.assertRaises(tn.ShapeError, tn.Predictor, self.ctx, self.Kf, self.y,
                          full_kernel=False)

    def test_largest_stable_learning_rate(self):
        p = tn.Predictor(self.ctx, self.K, self.y, diag_reg=0.1)
        lmax = np.linalg.eigvalsh(self.K + 0.1 * np.eye(6))[-1]
        self.assertAlmostEqual(p.lambda_max, lmax, delta=1e-12 * lmax)
        self.assertAlmostEqual(p.max_learning_rate, 2 * 6 / lmax, delta=1e-12 * 12 / lmax)
        p.set("learning_rate", 0.99 * p.max_learning_rate)
        p.predict(1000, self.f0)
        p.set("learning_rate", 1.01 * p.max_learning_rate)
        e = self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, p.predict, 3, self.f0)
        self.assertIn("eta lambda_max / n_train", e.message)

    def test_settings(self):
        p = tn.Predictor(self.ctx, self.K, self.y, diag_reg=1e-3, learning_rate=0.25)
        self.assertEqual(p.get("diag_reg"), 1e-3)
        self.assertEqual(p.get("learning_rate"), 0.25)
        self.assertIs(p.get("time"), tn.PredTime.STEPS)
        for param, value in [("learning_rate", 0), ("diag_reg", -1), ("time", 2)]:
            self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, p.set, param,
                                    value)

    def test_bad_kernels(self):
        asym = self.K.copy()
        asym[0, 1] += 1
        self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, tn.Predictor, self.ctx, asym,
                                self.y)
        self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, tn.Predictor, self.ctx,
                                -np.eye(6), self.y)
        nan = self.K.copy()
        nan[2, 2] = np.nan
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, tn.Predictor,
                                self.ctx, nan, self.y)
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, tn.Predictor, self.ctx,
                                self.K[:5, :5].copy(), self.y)
        self.assertRaises(TypeError, tn.Predictor, self.net, self.K, self.y)

    def test_singular_kernel_at_infinity(self):
        sing = np.ones((6, 6))
        p = tn.Predictor(self.ctx, sing, self.y)
        p.predict(math.inf, self.f0)                           # train outputs are fine
        self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, p.predict, math.inf, self.f0,
                                np.ones((4, 6)), self.f0t)
        p.set("diag_reg", 1e-3)
        p.predict(math.inf, self.f0, np.ones((4, 6)), self.f0t)

    def test_test_arguments_together(self):
        p = tn.Predictor(self.ctx, self.K, self.y)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, p.predict, 1,
                                self.f0, self.Kt)
        self.assertRaises(tn.InvalidArgumentError, p.predict, 1, self.f0, None, self.f0t)
        self.assertRaises(tn.ShapeError, p.predict, 1, self.f0, self.Kt, self.f0t[:3].copy())
        self.assertRaises(tn.ShapeError, p.predict, 1, self.f0[:5].copy())


class GPTests(ContextTestCase):

    def setUp(self):
        super().setUp()
        net = small_net(self.ctx, "erf", d=3, widths=(8, 8, 2))
        g = rng(9)
        self.x, self.xt = g.standard_normal((6, 3)), g.standard_normal((4, 3))
        self.y = g.standard_normal((6, 2))
        k = tn.NTK(net)
        self.K, self.T = k.analytic(self.x)
        self.Kt, self.Tt = k.analytic(self.xt, self.x)
        self.Ktt, _ = k.analytic(self.xt, ntk=False)

    def test_nngp_posterior(self):
        gp = tn.GP(self.ctx, self.K, self.y)
        mean, cov = gp.nngp_posterior(self.Kt, self.Ktt)
        np.testing.assert_allclose(mean, self.Kt @ np.linalg.solve(self.K, self.y), rtol=1e-8,
                                   atol=1e-10)
        np.testing.assert_allclose(cov, self.Ktt - self.Kt @ np.linalg.solve(self.K, self.Kt.T),
                                   rtol=1e-7, atol=1e-9)
        mean2, none = gp.nngp_posterior(self.Kt)
        self.assertIsNone(none)
        np.testing.assert_array_equal(mean2, mean)
        at_train, _ = gp.nngp_posterior(self.K)                 # interpolates
        np.testing.assert_allclose(at_train, self.y, rtol=1e-7, atol=1e-8)

    def test_ntk_posterior(self):
        gp = tn.GP(self.ctx, self.K, self.y, self.T, learning_rate=0.5)
        self.assertEqual(gp.get("learning_rate"), 0.5)
        mean, cov = gp.ntk_posterior(math.inf, self.Tt, self.Kt, self.Ktt)
        np.testing.assert_allclose(mean, self.Tt @ np.linalg.solve(self.T, self.y), rtol=1e-7,
                                   atol=1e-9)
        self.assertEqual(cov.shape, (4, 4))
        zero, _ = gp.ntk_posterior(0, self.Tt)
        np.testing.assert_allclose(zero, 0, atol=1e-12)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                gp.ntk_posterior, 1, self.Tt, self.Kt)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                gp.ntk_posterior, -1, self.Tt)

    def test_errors(self):
        gp = tn.GP(self.ctx, self.K, self.y)                    # no ntk_train
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, gp.ntk_posterior, 1.0, self.Tt)
        sing = tn.GP(self.ctx, np.ones((6, 6)), self.y)
        self.assertRaisesStatus(tn.NumericError, tn.Status.NUMERIC, sing.nngp_posterior, self.Kt)
        sing.set(tn.GPParam.DIAG_REG, 1e-3)
        self.assertEqual(sing.get("diag_reg"), 1e-3)
        sing.nngp_posterior(self.Kt)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, sing.set,
                                "diag_reg", -1)
        self.assertRaises(tn.ShapeError, tn.GP, self.ctx, self.K, self.y, self.T[:5, :5].copy())
        self.assertRaises(tn.ShapeError, gp.nngp_posterior, self.Kt, self.Ktt[:3].copy())
        self.assertRaises(tn.ShapeError, gp.nngp_posterior, self.Kt.T.copy())


if __name__ == "__main__":
    unittest.main()
