"""NTK: empirical kernels by every method, analytic kernels, settings."""

import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, rng, small_net


def jacobian(net, x):
    """J, shape (n*O, P), row (i, c), from one VJP per row."""
    n, O = x.shape[0], net.output_dim
    rows = []
    for i in range(n):
        for c in range(O):
            e = np.zeros((1, O))
            e[0, c] = 1
            rows.append(net.vjp(np.ascontiguousarray(x[i:i + 1]), e))
    return np.array(rows)


class Empirical(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.net = small_net(self.ctx, "relu", d=4, widths=(8, 8, 3))
        g = rng(5)
        self.x1, self.x2 = g.standard_normal((5, 4)), g.standard_normal((3, 4))
        J1, J2 = jacobian(self.net, self.x1), jacobian(self.net, self.x2)
        self.full = J1 @ J2.T                                 # (15, 9)
        self.trace = np.einsum("icjc->ij", self.full.reshape(5, 3, 3, 3)) / 3

    def test_trace_and_full_by_every_method(self):
        for method in tn.NTKMethod:
            with self.subTest(method=method.name):
                k = tn.NTK(self.net, method=method)
                self.assertIs(k.get("method"), method)
                K = k.compute(self.x1, self.x2)
                self.assertEqual(K.shape, (5, 3))
                np.testing.assert_allclose(K, self.trace, rtol=1e-11, atol=1e-12)
                k.set("outputs", "full")
                K = k.compute(self.x1, self.x2)
                self.assertEqual(K.shape, (15, 9))
                np.testing.assert_allclose(K, self.full, rtol=1e-11, atol=1e-12)

    def test_x2_none_is_x1(self):
        k = tn.NTK(self.net)
        K = k.compute(self.x1)
        self.assertEqual(K.shape, (5, 5))
        np.testing.assert_array_equal(K, K.T)
        np.testing.assert_allclose(K, k.compute(self.x1, self.x1.copy()), rtol=1e-13)
        k.set(tn.NTKParam.OUTPUTS, tn.NTKOutputs.FULL)
        self.assertEqual(k.compute(self.x1).shape, (15, 15))

    def test_follows_the_network(self):
        k = tn.NTK(self.net)
        K = k.compute(self.x1)
        self.net.init(99)
        self.assertFalse(np.allclose(k.compute(self.x1), K))

    def test_settings(self):
        k = tn.NTK(self.net, memory_budget=2**24)
        self.assertEqual(k.get("memory_budget"), 2**24)
        self.assertIsInstance(k.get("memory_budget"), int)
        self.assertIs(k.get("outputs"), tn.NTKOutputs.TRACE)
        self.assertIs(k.get("method"), tn.NTKMethod.AUTO)
        for param, value in [("memory_budget", 2**19), ("memory_budget", 2**20 + 0.5),
                             ("method", 4), ("outputs", 2), (103, 0)]:
            with self.subTest(param=param, value=value):
                self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                        k.set, param, value)
        self.assertRaises(tn.InvalidArgumentError, k.set, "method", "magic")

    def test_shape_errors(self):
        k = tn.NTK(self.net)
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, k.compute, np.zeros((2, 3)))
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, k.compute, self.x1,
                                np.zeros((2, 5)))
        self.assertRaises(tn.ShapeError, k.compute, np.zeros(4))
        self.assertRaises(TypeError, k.compute, self.x1, self.x2.astype(np.float32))
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, k.compute,
                                np.zeros((0, 4)))

    def test_wrong_parent(self):
        self.assertRaises(TypeError, tn.NTK, self.ctx)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tn.NTK,
                                tn.Network(self.ctx, 3).add_dense(2))


class Analytic(ContextTestCase):

    def test_linear_network(self):
        """One dense layer, NTK parameterization: f = (sw/sqrt(d)) W x + sb b, so
        NNGP = NTK = sw^2 x.x'/d + sb^2."""
        net = tn.Network(self.ctx, 3, sigma_w=1.5, sigma_b=0.5).add_dense(2).init(0)
        x = rng(6).standard_normal((4, 3))
        nngp, ntk = tn.NTK(net).analytic(x)
        dot = x @ x.T / 3
        np.testing.assert_allclose(nngp, 2.25 * dot + 0.25, rtol=1e-13)
        np.testing.assert_allclose(ntk, 2.25 * dot + 0.25, rtol=1e-13)

    def test_one_or_both(self):
        net = small_net(self.ctx, "erf", d=3, widths=(5, 5, 1))
        g = rng(7)
        x1, x2 = g.standard_normal((4, 3)), g.standard_normal((2, 3))
        k = tn.NTK(net)
        nngp, ntk = k.analytic(x1, x2)
        self.assertEqual((nngp.shape, ntk.shape), ((4, 2), (4, 2)))
        only, none = k.analytic(x1, x2, ntk=False)
        self.assertIsNone(none)
        np.testing.assert_array_equal(only, nngp)
        none, only = k.analytic(x1, x2, nngp=False)
        self.assertIsNone(none)
        np.testing.assert_array_equal(only, ntk)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, k.analytic, x1,
                                nngp=False, ntk=False)

    def test_unsupported(self):
        x = np.zeros((2, 3))
        std = small_net(self.ctx, "relu", d=3, parameterization="standard")
        e = self.assertRaisesStatus(tn.UnsupportedError, tn.Status.UNSUPPORTED,
                                    tn.NTK(std).analytic, x)
        self.assertIsInstance(e, NotImplementedError)
        two_acts = tn.Network(self.ctx, 3).add_dense(4).add_activation("relu") \
            .add_activation("tanh").add_dense(1).init(0)
        self.assertRaises(tn.UnsupportedError, tn.NTK(two_acts).analytic, x)


class AnalyticGraph(ContextTestCase):

    def test_whole_image_valid_conv_is_dense(self):
        """A VALID convolution covering the image is a dense layer on it."""
        x = rng(8).standard_normal((4, 12))
        conv = tn.Network(self.ctx, (2, 3, 2)).add_conv2d(5, (2, 3), padding="valid") \
            .add_activation("relu").add_dense(2).init(0)
        dense = tn.Network(self.ctx, (2, 3, 2)).add_dense(5).add_activation("relu") \
            .add_dense(2).init(0)
        for a, b in zip(tn.NTK(conv).analytic(x), tn.NTK(dense).analytic(x)):
            np.testing.assert_array_equal(a, b)

    def test_refused_sum_names_the_node(self):
        net = tn.Network(self.ctx, (3, 3, 1)).add_conv2d(2, 3)
        node = net.current
        net.add_sum(node).add_flatten().add_dense(1).init(0)
        e = self.assertRaisesStatus(tn.UnsupportedError, tn.Status.UNSUPPORTED,
                                    tn.NTK(net).analytic, np.zeros((2, 9)))
        self.assertIn("(sum)", str(e))


class MonteCarlo(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.net = tn.Network(self.ctx, (3, 3, 1)).add_conv2d(4, 3).add_activation("relu") \
            .add_global_avg_pool().add_dense(2).init(3)
        g = rng(9)
        self.x1, self.x2 = g.standard_normal((3, 9)), g.standard_normal((2, 9))

    def test_one_sample_is_the_empirical_kernel(self):
        theta = self.net.get_params()
        nngp, ntk = tn.NTK(self.net).monte_carlo(self.x1, self.x2, seed=11, samples=1)
        np.testing.assert_array_equal(self.net.get_params(), theta)
        self.net.init(11)
        f1, f2 = self.net.forward(self.x1), self.net.forward(self.x2)
        np.testing.assert_allclose(nngp, f1 @ f2.T / 2, rtol=1e-13)
        np.testing.assert_array_equal(ntk, tn.NTK(self.net).compute(self.x1, self.x2))

    def test_mean_of_samples_and_shapes(self):
        k = tn.NTK(self.net)
        singles = [k.monte_carlo(self.x1, seed=5 + s) for s in range(3)]
        nngp, ntk = k.monte_carlo(self.x1, seed=5, samples=3)
        np.testing.assert_allclose(nngp, sum(s[0] for s in singles) / 3, rtol=1e-13)
        np.testing.assert_allclose(ntk, sum(s[1] for s in singles) / 3, rtol=1e-13)
        self.assertEqual(nngp.shape, (3, 3))
        only, none = k.monte_carlo(self.x1, self.x2, ntk=False)
        self.assertIsNone(none)
        self.assertEqual(only.shape, (3, 2))
        k.set("outputs", "full")
        nngp, ntk = k.monte_carlo(self.x1, self.x2, samples=2)
        self.assertEqual((nngp.shape, ntk.shape), ((6, 4), (6, 4)))

    def test_bad_arguments(self):
        k = tn.NTK(self.net)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, k.monte_carlo,
                                self.x1, samples=0)
        self.assertRaises(tn.InvalidArgumentError, k.monte_carlo, self.x1, seed=-1)
        self.assertRaises(TypeError, k.monte_carlo, self.x1, samples=2.0)


if __name__ == "__main__":
    unittest.main()
