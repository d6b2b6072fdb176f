"""Taylor: the order-k expansion of a network."""

import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, rng, small_net


class TaylorTests(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.net = small_net(self.ctx, "tanh", d=4, widths=(6, 2))
        g = rng(3)
        self.x = g.standard_normal((5, 4))
        self.theta0 = self.net.params
        self.theta = self.theta0 + 0.05 * g.standard_normal(self.net.num_params)

    def test_order_and_limits(self):
        self.assertEqual(tn.Taylor.max_order(), 32)
        t = tn.Taylor(self.net, 3)
        self.assertEqual(t.order, 3)
        self.assertIs(t.network, self.net)
        self.assertIn("order=3", repr(t))
        tn.Taylor(self.net, 32)
        for bad in (0, 33):
            e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                        tn.Taylor, self.net, bad)
            self.assertIn("tn_taylor_create", e.message)
        self.assertRaises(tn.InvalidArgumentError, tn.Taylor, self.net, -1)
        self.assertRaises(TypeError, tn.Taylor, self.net, 2.0)
        self.assertRaises(TypeError, tn.Taylor, self.ctx, 2)

    def test_uninitialized_network(self):
        net = tn.Network(self.ctx, 3).add_dense(2)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tn.Taylor, net, 1)

    def test_terms_sum_to_forward(self):
        t = tn.Taylor(self.net, 4)
        terms = t.terms(self.x, self.theta)
        self.assertEqual(terms.shape, (5, 5, 2))
        np.testing.assert_allclose(terms.sum(axis=0), t.forward(self.x, self.theta),
                                   rtol=1e-13, atol=1e-14)
        np.testing.assert_array_equal(terms[0], self.net.forward(self.x))   # f(theta0)

    def test_converges_to_the_network(self):
        self.net.params = self.theta
        f = self.net.forward(self.x)
        self.net.params = self.theta0
        errors = [np.abs(tn.Taylor(self.net, k).forward(self.x, self.theta) - f).max()
                  for k in (1, 2, 4, 8, 16)]
        self.assertEqual(errors, sorted(errors, reverse=True))
        self.assertLess(errors[-1], 1e-12)

    def test_order_one_is_the_linearization(self):
        t = tn.Taylor(self.net, 1)
        want = self.net.forward(self.x) + self.net.jvp(self.x, self.theta - self.theta0)
        np.testing.assert_allclose(t.forward(self.x, self.theta), want, rtol=1e-12, atol=1e-14)

    def test_theta_none_means_the_network_now(self):
        t = tn.Taylor(self.net, 2)
        at_base = t.forward(self.x)
        np.testing.assert_allclose(at_base, self.net.forward(self.x), rtol=1e-14, atol=1e-15)
        self.net.params = self.theta
        np.testing.assert_array_equal(t.forward(self.x), t.forward(self.x, self.theta))

    def test_vjp(self):
        t = tn.Taylor(self.net, 3)
        c = rng(4).standard_normal((5, 2))
        np.testing.assert_allclose(t.vjp(self.x, c), self.net.vjp(self.x, c), rtol=1e-12,
                                   atol=1e-13)                      # at theta0
        g = t.vjp(self.x, c, self.theta)
        self.assertEqual(g.shape, (self.net.num_params,))

    def test_base_and_rebase(self):
        t = tn.Taylor(self.net, 2)
        np.testing.assert_array_equal(t.base, self.theta0)
        t.rebase(self.theta)
        np.testing.assert_array_equal(t.base, self.theta)
        t.rebase()                                     # the network's parameters now
        np.testing.assert_array_equal(t.base, self.theta0)
        bad = self.theta.copy()
        bad[0] = np.inf
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, t.rebase, bad)
        self.assertRaises(tn.ShapeError, t.rebase, self.theta[:-1])
        np.testing.assert_array_equal(t.base, self.theta0)

    def test_norms_and_divergence(self):
        t = tn.Taylor(self.net, 3)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, t.term_norms)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, t.divergence)
        terms = t.terms(self.x, self.theta)
        norms = t.term_norms()
        self.assertEqual(norms.shape, (4,))
        np.testing.assert_allclose(norms, np.sqrt((terms ** 2).sum(axis=(1, 2))), rtol=1e-13)
        self.assertAlmostEqual(t.divergence(), norms[3] / norms[2], places=13)

    def test_shape_errors(self):
        t = tn.Taylor(self.net, 2)
        P = self.net.num_params
        cases = [(t.forward, (np.zeros((2, 3)),), {}),
                 (t.forward, (self.x,), {"theta": np.zeros(P + 1)}),
                 (t.terms, (self.x,), {"theta": np.zeros((P, 1))}),
                 (t.vjp, (self.x, np.zeros((4, 2))), {})]
        for fn, args, kwargs in cases:
            with self.subTest(fn=fn.__name__):
                self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, fn, *args, **kwargs)
        self.assertRaises(TypeError, t.forward, self.x, self.theta.astype(np.float32))


if __name__ == "__main__":
    unittest.main()
