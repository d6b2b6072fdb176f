"""Shared helpers of the binding's tests (not a test module)."""

import os
import unittest

import numpy as np

import taylornet as tn

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)                      # bindings/python
SOURCE_ROOT = os.path.dirname(os.path.dirname(PACKAGE_ROOT))


def header_path():
    """include/taylornet.h: from meson's TAYLORNET_HEADER, else the source tree."""
    path = os.environ.get("TAYLORNET_HEADER") or os.path.join(SOURCE_ROOT, "include",
                                                               "taylornet.h")
    return path if os.path.exists(path) else None


def batch(n=8, d=30, o=3):
    """The batch of tests/c_reference.c: exact binary fractions, so C and
    Python build the same bits."""
    i = np.arange(n)[:, None]
    x = ((i * 7 + np.arange(d)[None, :] * 3) % 11) / 8.0 - 0.5
    y = ((i + 2 * np.arange(o)[None, :]) % 5) / 4.0 - 0.5
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def reference_net(ctx):
    """The network of tests/test_init.c and c_reference.c: 30-50-40-3 ReLU,
    NTK parameterization, leaky slope 0.1, seed 42."""
    return tn.Network.mlp(ctx, 30, [50, 40, 3], tn.Activation.RELU, seed=42,
                          parameterization=tn.Parameterization.NTK, leaky_slope=0.1)


def small_net(ctx, activation="tanh", seed=1, d=4, widths=(6, 2), **settings):
    """A small MLP for fast tests."""
    return tn.Network.mlp(ctx, d, list(widths), activation, seed=seed, **settings)


def rng(seed=0):
    return np.random.default_rng(seed)


class ContextTestCase(unittest.TestCase):
    """A test with a fresh Context in self.ctx, closed after the test."""

    def setUp(self):
        self.ctx = tn.Context()
        self.addCleanup(self.ctx.close)

    def assertRaisesStatus(self, cls, status, fn, *args, **kwargs):
        """fn(*args, **kwargs) raises cls with .status == status and a
        non-empty message; returns the exception."""
        with self.assertRaises(cls) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status, status)
        self.assertIsInstance(cm.exception.status, tn.Status)
        self.assertTrue(cm.exception.message)
        return cm.exception

    def assertBitsEqual(self, a, b, msg=None):
        """Equal arrays, bit for bit (signed zeros and NaN payloads too)."""
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        self.assertEqual(a.shape, b.shape, msg)
        diff = np.flatnonzero(a.view(np.uint64) != b.view(np.uint64))
        if diff.size:
            i = diff[0]
            self.fail(f"{msg or 'arrays'}: {diff.size} of {a.size} values differ; first at "
                      f"flat index {i}: {a.flat[i]!r} vs {b.flat[i]!r}")
