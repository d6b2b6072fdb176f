"""NTK: empirical and infinite-width neural tangent kernels of a network."""

from ctypes import byref

from ._args import Dims, empty, ptr, size_arg
from ._handle import Handle, Settings, check_parent
from ._lib import lib, ntk_p
from .enums import NTKMethod, NTKOutputs, NTKParam
from .network import Network

__all__ = ["NTK"]


class NTK(Settings, Handle):
    """Neural tangent kernels of a network (``tn_ntk``).

    The empirical NTK Theta(x, x') = sum_p df(x)/dtheta_p df(x')/dtheta_p^T
    at the network's parameters at each :meth:`compute`; with
    ``outputs="trace"`` (default) the ``(n1, n2)`` matrix of (1/O) tr Theta,
    with ``outputs="full"`` the ``(n1*O, n2*O)`` matrix with rows (i, c) and
    columns (j, d).  :meth:`analytic` gives the infinite-width NNGP and NTK,
    :meth:`monte_carlo` their averages over random initializations.

    Settings (:meth:`set`, :meth:`get`, or keywords here): ``method``
    (:class:`NTKMethod`: auto, structured, jacobian, vector_products),
    ``outputs`` (:class:`NTKOutputs`: trace, full), ``memory_budget`` (bytes
    of workspace beyond the output, >= 1 MiB; default 256 MiB).  Progress and
    cancellation: :meth:`Context.set_progress`.

    Lifetime: keeps its Network alive (which must outlive it); closing the
    network closes it.

    Args:
        network: an initialized :class:`Network`.
        settings: e.g. ``outputs="full", memory_budget=2**24``.
    """

    _free = lib.tn_ntk_free
    _param_enum = NTKParam
    _set_fn = lib.tn_ntk_set
    _get_fn = lib.tn_ntk_get
    _value_types = {NTKParam.METHOD: NTKMethod, NTKParam.OUTPUTS: NTKOutputs,
                    NTKParam.MEMORY_BUDGET: int}

    def __init__(self, network, **settings):
        check_parent(network, Network, "network")
        out = ntk_p()
        network._call(lib.tn_ntk_create, network._h, byref(out))
        self._attach(out, network)
        self.configure(**settings)

    def _describe(self):
        method, outputs = self.get("method"), self.get("outputs")
        return f"method={method.name.lower()} outputs={outputs.name.lower()}"

    @property
    def network(self):
        """The :class:`Network` whose kernel this is."""
        return self._parent

    def _pair(self, x1, x2):
        dims = Dims(d=self._parent.input_size)
        dims.check("x1", x1, "n1", "d")
        if x2 is not None:
            dims.check("x2", x2, "n2", "d")
        n1 = dims["n1"]
        n2 = n1 if x2 is None else dims["n2"]
        return n1, n2

    def compute(self, x1, x2=None):
        """The empirical NTK between the rows of x1 ``(n1, d)`` and x2
        ``(n2, d)`` (None: x1 itself, using the symmetry).

        Returns ``(n1, n2)`` (outputs trace) or ``(n1*O, n2*O)`` (outputs
        full).  CancelledError if the progress callback stops it.
        """
        n1, n2 = self._pair(x1, x2)
        scale = self._parent.output_dim if self.get(NTKParam.OUTPUTS) == NTKOutputs.FULL else 1
        K = empty(n1 * scale, n2 * scale)
        self._call(lib.tn_ntk_compute, self._h, ptr(x1), n1, ptr(x2), n2 if x2 is not None else 0,
                   ptr(K))
        return K

    def analytic(self, x1, x2=None, *, nngp=True, ntk=True):
        """The infinite-width NNGP and NTK kernels, each ``(n1, n2)`` (the same
        for every output), under NTK parameterization: dense, convolutional,
        pooling and residual networks alike (docs/ntk.md).

        Returns ``(nngp, ntk)``; pass ``nngp=False`` or ``ntk=False`` to skip
        one (it is then None).  Tiles under ``memory_budget``; progress and
        cancellation as :meth:`compute`.  UnsupportedError for the standard
        parameterization and for a node the recursion cannot follow (the
        message names it).
        """
        n1, n2 = self._pair(x1, x2)
        K = empty(n1, n2) if nngp else None
        T = empty(n1, n2) if ntk else None
        self._call(lib.tn_ntk_analytic, self._h, ptr(x1), n1, ptr(x2),
                   n2 if x2 is not None else 0, ptr(K), ptr(T))
        return K, T

    def monte_carlo(self, x1, x2=None, *, seed=0, samples=1, nngp=True, ntk=True):
        """The Monte Carlo kernels: the empirical NNGP ((1/O) f(x)^T f(x'))
        and NTK averaged over ``samples`` fresh initializations (sample s as
        ``Network.init(seed + s)`` draws it); the network's own parameters
        are not changed.

        Returns ``(nngp, ntk)``, each ``(n1, n2)`` (outputs trace) or
        ``(n1*O, n2*O)`` (outputs full); pass ``nngp=False`` or ``ntk=False``
        to skip one (then None).  They approach :meth:`analytic` as the width
        grows.  CancelledError if the progress callback stops it.
        """
        n1, n2 = self._pair(x1, x2)
        scale = self._parent.output_dim if self.get(NTKParam.OUTPUTS) == NTKOutputs.FULL else 1
        K = empty(n1 * scale, n2 * scale) if nngp else None
        T = empty(n1 * scale, n2 * scale) if ntk else None
        self._call(lib.tn_ntk_monte_carlo, self._h, size_arg(seed, "seed"),
                   size_arg(samples, "samples"), ptr(x1), n1,
                   ptr(x2), n2 if x2 is not None else 0, ptr(K), ptr(T))
        return K, T
