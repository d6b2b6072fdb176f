"""TaylornetError: one subclass per status, carrying status and message."""

import pickle
import unittest

import numpy as np

import taylornet as tn
from taylornet._errors import error_for
from _support import ContextTestCase, small_net

BUILTIN = {
    tn.Status.INVALID_ARG: (tn.InvalidArgumentError, ValueError),
    tn.Status.SHAPE: (tn.ShapeError, ValueError),
    tn.Status.NOMEM: (tn.OutOfMemoryError, MemoryError),
    tn.Status.STATE: (tn.StateError, RuntimeError),
    tn.Status.NUMERIC: (tn.NumericError, ArithmeticError),
    tn.Status.IO: (tn.FileError, OSError),
    tn.Status.FORMAT: (tn.FormatError, ValueError),
    tn.Status.VERSION: (tn.VersionError, tn.TaylornetError),
    tn.Status.UNSUPPORTED: (tn.UnsupportedError, NotImplementedError),
    tn.Status.MISUSE: (tn.MisuseError, RuntimeError),
    tn.Status.CANCELLED: (tn.CancelledError, tn.TaylornetError),
}


class ErrorClasses(unittest.TestCase):

    def test_one_class_per_failing_status(self):
        self.assertEqual(set(BUILTIN), set(tn.Status) - {tn.Status.OK})
        for status, (cls, builtin) in BUILTIN.items():
            e = error_for(status, "tn_x: what went wrong", "tn_x")
            self.assertIs(type(e), cls)
            self.assertIsInstance(e, tn.TaylornetError)
            self.assertIsInstance(e, builtin)
            self.assertIs(e.status, status)
            self.assertEqual(e.message, "tn_x: what went wrong")
            self.assertEqual(e.function, "tn_x")
            self.assertEqual(str(e), f"tn_x: what went wrong [{status.name}]")

    def test_file_error_is_not_an_errno(self):
        e = error_for(tn.Status.IO, "tn_net_save: cannot open", "tn_net_save")
        self.assertIsNone(e.errno)              # status 6 is not errno 6

    def test_unknown_status(self):
        e = error_for(77, "from a newer library")
        self.assertIs(type(e), tn.TaylornetError)
        self.assertEqual(e.status, 77)
        self.assertIn("status 77", str(e))

    def test_pickle(self):
        e = pickle.loads(pickle.dumps(error_for(tn.Status.SHAPE, "m", "tn_f")))
        self.assertIsInstance(e, tn.ShapeError)
        self.assertEqual((e.status, e.message, e.function), (tn.Status.SHAPE, "m", "tn_f"))


class ErrorsFromTheLibrary(ContextTestCase):

    def test_message_is_the_context_errmsg(self):
        net = tn.Network(self.ctx, 4).add_dense(2)
        e = self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.forward, np.zeros((1, 4)))
        self.assertEqual(e.function, "tn_net_forward")
        self.assertEqual(e.message, self.ctx.errmsg)
        self.assertIn("tn_net_forward", e.message)
        self.assertIn("not initialized", e.message)

    def test_message_of_this_failure(self):
        net = tn.Network(self.ctx, 4).add_dense(3)
        e1 = self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG,
                                     net.add_activation, 99)
        self.assertIn("tn_net_add_activation", e1.message)
        net.init(1)
        e2 = self.assertRaisesStatus(tn.StateError, tn.Status.STATE, net.add_dense, 3)
        self.assertIn("tn_net_add_dense", e2.message)
        self.assertNotEqual(e1.message, e2.message)
        self.assertIn("tn_net_add_activation", e1.message)   # kept, not overwritten

    def test_binding_errors_have_no_function(self):
        net = small_net(self.ctx)
        e = self.assertRaisesStatus(tn.ShapeError, tn.Status.SHAPE, net.forward, np.zeros((2, 5)))
        self.assertIsNone(e.function)
        self.assertIn("x", e.message)


if __name__ == "__main__":
    unittest.main()
