"""Taylor: the order-k Taylor model of a network around a base point."""

from ctypes import byref, c_double

from ._args import Dims, empty, ptr, size_arg
from ._handle import Handle, check_parent
from ._lib import lib, taylor_p
from .network import Network

__all__ = ["Taylor"]


class Taylor(Handle):
    """The order-k Taylor expansion of a network (``tn_taylor``)::

        f_k(theta; x) = sum_{j=0..k} (1/j!) D^j f(theta0; x)[Delta^j],  Delta = theta - theta0

    The base theta0 is the network's parameters when the expansion is made
    (copied); :meth:`rebase` moves it.  ``theta`` arguments are ``(P,)``
    arrays; None (the default) means the network's parameters at the time of
    the call.  x is ``(n, d)``; outputs are ``(n, O)``.

    Lifetime: keeps its Network alive (the C API requires the network to
    outlive the expansion); closing the network closes it.

    Args:
        network: an initialized :class:`Network`.
        order: k, 1 <= k <= :meth:`max_order` (32).
    """

    _free = lib.tn_taylor_free

    def __init__(self, network, order):
        check_parent(network, Network, "network")
        out = taylor_p()
        network._call(lib.tn_taylor_create, network._h, size_arg(order, "order", 2**31 - 1),
                      byref(out))
        self._attach(out, network)

    @staticmethod
    def max_order():
        """The highest supported order (32)."""
        return lib.tn_taylor_max_order()

    def _describe(self):
        return f"order={self.order}"

    @property
    def network(self):
        """The expanded :class:`Network`."""
        return self._parent

    @property
    def order(self):
        """k, the expansion's order."""
        return lib.tn_taylor_order(self._h)

    def _dims(self):
        net = self._parent
        return Dims(d=net.input_size, O=net.output_dim, P=net.num_params)

    def _theta(self, dims, theta):
        return None if theta is None else dims.check("theta", theta, "P")

    @property
    def base(self):
        """A copy of the base point theta0, shape ``(P,)``."""
        theta0 = empty(self._parent.num_params)
        self._call(lib.tn_taylor_get_base, self._h, ptr(theta0), theta0.size)
        return theta0

    def rebase(self, theta0=None):
        """Moves the base point to ``theta0`` (``(P,)``, finite), or to the
        network's parameters now (None)."""
        dims = self._dims()
        theta0 = None if theta0 is None else dims.check("theta0", theta0, "P")
        self._call(lib.tn_taylor_rebase, self._h, ptr(theta0), dims["P"])

    def forward(self, x, theta=None):
        """f_k(theta; x): x ``(n, d)``, theta ``(P,)`` or None -> ``(n, O)``."""
        dims = self._dims()
        dims.check("x", x, "n", "d")
        theta = self._theta(dims, theta)
        y = empty(dims["n"], dims["O"])
        self._call(lib.tn_taylor_forward, self._h, ptr(theta), ptr(x), dims["n"], ptr(y))
        return y

    def terms(self, x, theta=None):
        """The terms of f_k: shape ``(order + 1, n, O)``, term j =
        (1/j!) D^j f(theta0; x)[Delta^j]; they sum to :meth:`forward`."""
        dims = self._dims()
        dims.check("x", x, "n", "d")
        theta = self._theta(dims, theta)
        terms = empty(self.order + 1, dims["n"], dims["O"])
        self._call(lib.tn_taylor_terms, self._h, ptr(theta), ptr(x), dims["n"], ptr(terms))
        return terms

    def vjp(self, x, cotangent, theta=None):
        """sum_i (d f_k(theta; x_i) / d theta)^T cotangent_i: x ``(n, d)``,
        cotangent ``(n, O)`` -> ``(P,)``."""
        dims = self._dims()
        dims.check("x", x, "n", "d")
        dims.check("cotangent", cotangent, "n", "O")
        theta = self._theta(dims, theta)
        grad = empty(dims["P"])
        self._call(lib.tn_taylor_vjp, self._h, ptr(theta), ptr(x), dims["n"], ptr(cotangent),
                   ptr(grad))
        return grad

    def term_norms(self):
        """Frobenius norms of the terms of the last forward / terms / vjp,
        shape ``(order + 1,)``.  StateError before any evaluation."""
        norms = empty(self.order + 1)
        self._call(lib.tn_taylor_term_norms, self._h, ptr(norms), norms.size)
        return norms

    def divergence(self):
        """|z_k| / |z_{k-1}| of the last evaluation: near or above 1, f_k is
        not approaching f as k grows (0 when the top term vanishes, inf when
        only the one below it does).  StateError before any evaluation."""
        ratio = c_double()
        self._call(lib.tn_taylor_divergence, self._h, byref(ratio))
        return ratio.value
