"""Network: building, settings, parameters, evaluation, files; the array policy."""

import math
import os
import shutil
import tempfile
import unittest

import numpy as np

import taylornet as tn
from taylornet import _args
from _support import ContextTestCase, batch, reference_net, rng, small_net


class Building(ContextTestCase):

    def test_life_cycle_and_sizes(self):
        net = tn.Network(self.ctx, 5)
        self.assertEqual((net.input_size, net.output_dim, net.num_params), (5, 5, 0))
        self.assertIs(net.add_dense(4), net)
        self.assertIs(net.add_activation(tn.Activation.TANH), net)
        net.add_dense(2)
        self.assertEqual((net.input_size, net.output_dim, net.num_params),
                         (5, 2, 5 * 4 + 4 + 4 * 2 + 2))
        self.assertIs(net.init(7), net)
        self.assertIs(net.context, self.ctx)
        self.assertIn("num_params=34", repr(net))

    def test_image_input_shape(self):
        net = tn.Network(self.ctx, (4, 3, 2)).add_dense(3).init(0)
        self.assertEqual(net.input_size, 24)
        self.assertEqual(net.input_shape, (4, 3, 2))
        self.assertEqual(tn.Network(self.ctx, 7).input_shape, (7,))
        x = rng().standard_normal((5, 4, 3, 2))
        self.assertEqual(net.forward(x.reshape(5, -1)).shape, (5, 3))   # a view: no copy

    def test_bad_input_shapes(self):
        for shape in [(3, 4), (0,), (2, 0, 3), ()]:
            self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                    tn.Network, self.ctx, shape)
        self.assertRaises(TypeError, tn.Network, self.ctx, 2.5)
        self.assertRaises(tn.InvalidArgumentError, tn.Network, self.ctx, -1)
        self.assertRaises(TypeError, tn.Network, "not a context", 3)

    def test_activation_by_name_int_and_bad_values(self):
        net = tn.Network(self.ctx, 3).add_dense(3)
        net.add_activation("leaky_relu").add_dense(3).add_activation(int(tn.Activation.GELU))
        for bad in (8, -1, 2**31 - 1):
            e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                        net.add_activation, bad)
            self.assertIn("tn_net_add_activation", e.message)
        e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                    net.add_activation, "swish")
        self.assertIn("relu", e.message)                      # lists the names
        self.assertIsNone(e.function)
        self.assertRaises(tn.InvalidArgumentError, net.add_activation, 2**40)
        self.assertRaises(TypeError, net.add_activation, 1.0)
        self.assertRaises(TypeError, net.add_activation, None)

    def test_zero_width(self):
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                tn.Network(self.ctx, 3).add_dense, 0)

    def test_wrong_order(self):
        net = tn.Network(self.ctx, 3)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.init, 1)   # no layers
        net.add_dense(2)
        x = np.zeros((1, 3))
        for call in (lambda: net.forward(x), net.get_params, lambda: net.save(os.devnull),
                     lambda: tn.Trainer(net), lambda: tn.Taylor(net, 1), lambda: tn.NTK(net)):
            self.assertRaisesStatus(tn.StateError, tn.Status.STATE, call)
        net.init(1)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.add_dense, 2)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.add_activation, "relu")
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.set, "sigma_w", 1.0)

    def test_mlp(self):
        net = tn.Network.mlp(self.ctx, 3, [4, 2])
        self.assertEqual(net.num_params, 3 * 4 + 4 + 4 * 2 + 2)
        self.assertRaises(tn.StateError, net.get_params)       # no seed: not initialized
        net.init(3)
        net.get_params()


def conv_same_numpy(x, w, b, ws, bs, stride):
    """A SAME convolution by direct loops (MATH.md §9): x (H, W, C), w (C', kh,
    kw, C) -> (H', W', C'), padding split with the smaller half before."""
    H, W, C = x.shape
    co, kh, kw, _ = w.shape
    oh, ow = -(-H // stride), -(-W // stride)
    ph = max((oh - 1) * stride + kh - H, 0) // 2
    pw = max((ow - 1) * stride + kw - W, 0) // 2
    out = np.zeros((oh, ow, co))
    for p in range(oh):
        for q in range(ow):
            for a in range(kh):
                for c in range(kw):
                    r, s = p * stride + a - ph, q * stride + c - pw
                    if 0 <= r < H and 0 <= s < W:
                        out[p, q] += w[:, a, c, :] @ x[r, s]
    return ws * out + bs * b


class Graphs(ContextTestCase):
    """The graph cursor and the convolutional layers, through the binding."""

    def test_residual_block(self):
        net = tn.Network(self.ctx, (6, 5, 2))
        self.assertEqual(net.current, 0)
        net.add_conv2d(3, 3)                                   # SAME, stride 1
        block_in = net.current
        net.add_activation("relu").add_conv2d(4, (3, 2), stride=2)
        self.assertEqual(net.output_shape, (3, 3, 4))
        main = net.current
        net.branch(block_in).add_conv2d(4, 1, stride=2, padding=tn.Padding.VALID)
        self.assertEqual(net.output_shape, (3, 3, 4))
        self.assertIs(net.add_sum(main), net)
        net.add_avg_pool2d(2, stride=1).add_global_avg_pool()
        self.assertEqual(net.output_shape, (4,))
        net.add_dense(3).init(5)
        self.assertEqual(net.output_dim, 3)
        self.assertEqual(net.num_params, (3 * 9 * 2 + 3) + (4 * 6 * 3 + 4) + (4 * 3 + 4)
                         + (3 * 4 + 3))
        x, _ = batch(4, 60, 3)
        y = net.forward(x)
        self.assertEqual(y.shape, (4, 3))
        self.assertTrue(np.all(np.isfinite(y)))

    def test_conv_against_numpy(self):
        net = tn.Network(self.ctx, (5, 4, 2)).add_conv2d(3, (3, 2), stride=2).add_flatten()
        net.init(9)
        theta = net.get_params()
        w, b = theta[:3 * 3 * 2 * 2].reshape(3, 3, 2, 2), theta[3 * 3 * 2 * 2:]
        x = rng().standard_normal((2, 5 * 4 * 2))
        ws = net.get("sigma_w") / math.sqrt(3 * 2 * 2)
        want = np.stack([conv_same_numpy(xi.reshape(5, 4, 2), w, b, ws, net.get("sigma_b"), 2)
                         .ravel() for xi in x])
        np.testing.assert_allclose(net.forward(x), want, rtol=1e-13, atol=1e-14)

    def test_bad_graphs(self):
        net = tn.Network(self.ctx, (4, 4, 1)).add_conv2d(2, 3, padding="valid")
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, net.add_conv2d, 2, 3,
                                padding="valid")
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                net.add_conv2d, 2, 1, stride=0)
        self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, net.branch, 7)
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, net.add_sum, 0)
        self.assertRaises(tn.InvalidArgumentError, net.add_conv2d, 2, 1, padding="full")
        self.assertRaises(ValueError, net.add_conv2d, 2, (1, 2, 3))
        net.add_flatten()
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, net.add_global_avg_pool)
        net.add_dense(2).init(1)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.branch, 0)
        self.assertEqual(net.current, 3)


class Settings(ContextTestCase):

    def test_defaults_resolved(self):
        relu = tn.Network.mlp(self.ctx, 3, [4, 2], "relu")
        tanh = tn.Network.mlp(self.ctx, 3, [4, 2], "tanh")
        self.assertEqual(relu.get(tn.NetParam.SIGMA_W), math.sqrt(2))
        self.assertEqual(tanh.get("sigma_w"), 1.0)
        self.assertEqual(relu.get("sigma_b"), 0.1)
        self.assertEqual(relu.get("leaky_slope"), 0.01)
        p = relu.get("parameterization")
        self.assertIs(p, tn.Parameterization.NTK)

    def test_set_by_enum_name_and_int(self):
        net = tn.Network(self.ctx, 3, sigma_w=1.5, parameterization="standard")
        net.set(tn.NetParam.SIGMA_B, 0.25).set(int(tn.NetParam.LEAKY_SLOPE), 0.2)
        self.assertEqual(net.get("SIGMA_W"), 1.5)
        self.assertEqual(net.get(tn.NetParam.SIGMA_B), 0.25)
        self.assertEqual(net.get(103), 0.2)
        self.assertIs(net.get("parameterization"), tn.Parameterization.STANDARD)

    def test_bad_settings(self):
        net = tn.Network(self.ctx, 3)
        for param, value in [("sigma_w", 0.0), ("sigma_w", -1.0), ("sigma_b", -0.1),
                             ("leaky_slope", math.inf), ("parameterization", 2), (99, 1.0)]:
            with self.subTest(param=param, value=value):
                e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                            net.set, param, value)
                self.assertEqual(e.function, "tn_net_set")
        self.assertRaises(tn.InvalidArgumentError, net.set, "sigma", 1.0)
        self.assertRaises(tn.InvalidArgumentError, net.get, 99)
        self.assertRaises(tn.InvalidArgumentError, net.set, "parameterization", "huge")
        self.assertRaises(TypeError, net.set, "sigma_w", "1.5")
        self.assertRaises(TypeError, net.set, "sigma_w", None)
        self.assertRaises(tn.InvalidArgumentError, tn.Network, self.ctx, 3, bogus=1)


class Parameters(ContextTestCase):

    def test_round_trip_and_copies(self):
        net = small_net(self.ctx)
        theta = net.params
        self.assertEqual(theta.shape, (net.num_params,))
        theta[0] = 123.0                      # a copy: the network is unchanged
        self.assertNotEqual(net.params[0], 123.0)
        net.params = theta
        self.assertEqual(net.params[0], 123.0)
        net.set_params(np.zeros(net.num_params))
        self.assertFalse(net.get_params().any())

    def test_bad_params(self):
        net = small_net(self.ctx)
        P = net.num_params
        before = net.params
        bad = np.zeros(P)
        bad[3] = np.nan
        e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                    net.set_params, bad)
        self.assertIn("finite", e.message)
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, net.set_params, np.zeros(P + 1))
        self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, net.set_params, np.zeros((1, P)))
        self.assertRaises(TypeError, net.set_params, np.zeros(P, dtype=np.float32))
        self.assertRaises(TypeError, net.set_params, [0.0] * P)
        self.assertRaises(tn.InvalidArgumentError, net.set_params, np.zeros(2 * P)[::2])
        np.testing.assert_array_equal(net.params, before)     # nothing changed

    def test_reinit_redraws(self):
        net = small_net(self.ctx, seed=5)
        a = net.params
        net.init(6)
        self.assertFalse(np.array_equal(net.params, a))
        net.init(5)
        np.testing.assert_array_equal(net.params, a)
        net.init(2**64 - 1)
        self.assertRaises(tn.InvalidArgumentError, net.init, 2**64)
        self.assertRaises(tn.InvalidArgumentError, net.init, -1)

    def test_clone_is_deep(self):
        net = small_net(self.ctx)
        twin = net.clone()
        self.assertIsInstance(twin, tn.Network)
        self.assertIs(twin.context, self.ctx)
        np.testing.assert_array_equal(twin.params, net.params)
        twin.set_params(np.zeros(twin.num_params))
        self.assertTrue(net.params.any())
        net.close()
        twin.forward(np.zeros((1, 4)))         # independent of the original


class Evaluation(ContextTestCase):

    def test_forward_by_hand(self):
        """A 1-layer identity network under NTK parameterization:
        y = (sigma_w / sqrt(d)) W x + sigma_b b."""
        net = tn.Network(self.ctx, 3, sigma_w=2.0, sigma_b=0.5).add_dense(2).init(0)
        theta = net.params
        W, b = theta[:6].reshape(2, 3), theta[6:]
        x = rng().standard_normal((4, 3))
        np.testing.assert_allclose(net.forward(x), x @ W.T * (2 / math.sqrt(3)) + 0.5 * b,
                                   rtol=1e-14, atol=1e-15)

    def test_jvp_vjp_adjoint(self):
        net = small_net(self.ctx, d=5, widths=(7, 3))
        g = rng(1)
        x, c = g.standard_normal((4, 5)), g.standard_normal((4, 3))
        t = g.standard_normal(net.num_params)
        jt, jc = net.jvp(x, t), net.vjp(x, c)
        self.assertEqual(jt.shape, (4, 3))
        self.assertEqual(jc.shape, (net.num_params,))
        self.assertAlmostEqual(float(np.sum(jt * c)), float(jc @ t), places=11)

    def test_jvp_is_a_directional_derivative(self):
        net = small_net(self.ctx)
        g = rng(2)
        x, t = g.standard_normal((3, 4)), g.standard_normal(net.num_params)
        theta, h = net.params, 1e-6
        net.params = theta + h * t
        up = net.forward(x)
        net.params = theta - h * t
        down = net.forward(x)
        net.params = theta
        np.testing.assert_allclose(net.jvp(x, t), (up - down) / (2 * h), rtol=1e-6, atol=1e-8)

    def test_shape_errors(self):
        net = small_net(self.ctx)                 # d = 4, O = 2
        P = net.num_params
        x = np.zeros((3, 4))
        cases = [(net.forward, (np.zeros((3, 5)),)), (net.forward, (np.zeros(4),)),
                 (net.forward, (np.zeros((1, 3, 4)),)),
                 (net.jvp, (x, np.zeros(P - 1))), (net.jvp, (np.zeros((3, 3)), np.zeros(P))),
                 (net.vjp, (x, np.zeros((2, 2)))), (net.vjp, (x, np.zeros((3, 3))))]
        for fn, args in cases:
            with self.subTest(fn=fn.__name__, shapes=[a.shape for a in args]):
                e = self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, fn, *args)
                self.assertIsInstance(e, ValueError)

    def test_no_examples(self):
        net = small_net(self.ctx)
        e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                    net.forward, np.zeros((0, 4)))
        self.assertEqual(e.function, "tn_net_forward")


class ArrayPolicy(ContextTestCase):
    """Inputs are float64 C-contiguous arrays, passed by pointer, never copied."""

    def setUp(self):
        super().setUp()
        self.net = small_net(self.ctx)
        self.x = rng().standard_normal((6, 4))

    def test_wrong_types_and_dtypes(self):
        for bad in (self.x.astype(np.float32), self.x.astype(np.int64), self.x.tolist(),
                    self.x.astype(">f8"), self.x.astype(np.complex128)):
            with self.subTest(bad=type(bad).__name__ + str(getattr(bad, "dtype", ""))):
                with self.assertRaises(TypeError) as cm:
                    self.net.forward(bad)
                self.assertIn("float64", str(cm.exception))

    def test_non_contiguous(self):
        wide = rng().standard_normal((6, 8))
        for bad in (wide[:, ::2], np.asfortranarray(self.x), self.x.T.copy().T, wide[:, :4]):
            with self.subTest(strides=bad.strides):
                e = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                            self.net.forward, bad)
                self.assertIn("ascontiguousarray", e.message)

    def test_misaligned(self):
        raw = np.zeros(6 * 4 * 8 + 1, dtype=np.uint8)
        bad = raw[1:].view(np.float64).reshape(6, 4)
        self.assertFalse(bad.flags.aligned)
        self.assertRaises(tn.InvalidArgumentError, self.net.forward, bad)

    def test_accepted_without_copy(self):
        x = np.ascontiguousarray(self.x)
        self.assertEqual(_args.ptr(x).contents.value, x[0, 0])
        self.assertEqual(np.ctypeslib.as_array(_args.ptr(x), (1,)).__array_interface__["data"][0],
                         x.__array_interface__["data"][0])
        rows = rng().standard_normal((10, 4))[2:8]      # a contiguous slice: accepted
        self.assertTrue(rows.flags.c_contiguous)
        self.net.forward(rows)
        ro = self.x.copy()
        ro.flags.writeable = False                      # inputs are only read
        y = self.net.forward(ro)
        big = np.tile(self.x, (5000, 1))                 # 30000 x 4
        kept = big.copy()
        np.testing.assert_array_equal(self.net.forward(big)[:6], y)
        np.testing.assert_array_equal(big, kept)        # not written to

    def test_outputs_are_fresh(self):
        y1, y2 = self.net.forward(self.x), self.net.forward(self.x)
        self.assertIsNot(y1, y2)
        self.assertTrue(y1.flags.c_contiguous and y1.flags.writeable and y1.flags.owndata)
        self.assertEqual(y1.dtype, np.float64)


class Files(ContextTestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def test_save_load_round_trip(self):
        net = reference_net(self.ctx)
        path = os.path.join(self.dir, "net.tn")
        net.save(path)
        from pathlib import Path
        loaded = tn.Network.load(self.ctx, Path(path))
        self.assertEqual(loaded.num_params, net.num_params)
        np.testing.assert_array_equal(loaded.params, net.params)
        self.assertEqual(loaded.get("leaky_slope"), 0.1)
        x, _ = batch()
        np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
        with tn.Context() as other:                     # into another context
            np.testing.assert_array_equal(tn.Network.load(other, path).forward(x), net.forward(x))

    def test_load_errors(self):
        missing = os.path.join(self.dir, "missing.tn")
        e = self.assertRaisesStatus(tn.FileError, tn.Status.IO, tn.Network.load, self.ctx, missing)
        self.assertIsInstance(e, OSError)
        self.assertIn("missing.tn", e.message)
        junk = os.path.join(self.dir, "junk.tn")
        with open(junk, "wb") as f:
            f.write(b"not a network" * 10)
        self.assertRaisesStatus(tn.FormatError, tn.Status.FORMAT, tn.Network.load, self.ctx, junk)
        path = os.path.join(self.dir, "net.tn")
        small_net(self.ctx).save(path)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])           # truncated
        self.assertRaisesStatus(tn.FormatError, tn.Status.FORMAT, tn.Network.load, self.ctx, path)
        self.assertRaises(TypeError, tn.Network.load, None, path)

    def test_save_errors(self):
        net = small_net(self.ctx)
        self.assertRaisesStatus(tn.FileError, tn.Status.IO, net.save,
                                os.path.join(self.dir, "no", "such", "dir", "net.tn"))

    def test_paths_with_nul_are_refused(self):
        # C would read "a" and write or read that file instead.
        net = small_net(self.ctx)
        a = os.path.join(self.dir, "a")
        for path in (a + "\0b", os.fsencode(a) + b"\0b"):
            with self.subTest(path=path):
                self.assertRaises(ValueError, net.save, path)
                self.assertRaises(ValueError, tn.Network.load, self.ctx, path)
        self.assertFalse(os.path.exists(a))


if __name__ == "__main__":
    unittest.main()
