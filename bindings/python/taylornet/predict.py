"""Predictor and GP: closed-form linearized dynamics and kernel inference."""

from ctypes import byref, c_double

from ._args import Dims, empty, ptr
from ._errors import InvalidArgumentError
from ._handle import Handle, Settings, check_parent
from ._lib import gp_p, lib, predictor_p
from .context import Context
from .enums import GPParam, PredictorParam, PredTime, Status

__all__ = ["Predictor", "GP"]


def _both_or_neither(a, b, what):
    if (a is None) != (b is None):
        raise InvalidArgumentError(Status.INVALID_ARG, f"{what}: pass both or neither")
    return a is not None


class Predictor(Settings, Handle):
    """The outputs of the linearized network trained by gradient descent (or
    flow) on MSE, at any time t, in closed form (``tn_predictor``)::

        f_t(X)  = Y + M_t (f_0(X) - Y),   M_t = (I - eta Theta / N)^t  or  exp(-eta Theta t / N)
        f_t(x*) = f_0(x*) - Theta(x*, X) Theta^-1 (I - M_t) (f_0(X) - Y)

    Args:
        context: the :class:`Context`.
        k_train: the train kernel, ``(N, N)`` (traced: applied to each
            output) or ``(N*O, N*O)`` (full), symmetric positive semi-definite
            (NumericError otherwise).  Copied.
        y_train: the targets, ``(N, O)``.  Copied.
        full_kernel: whether k_train is the full kernel; None (default) infers
            it from k_train's shape (full if ``(N*O, N*O)`` with O > 1).
        settings: ``learning_rate`` (eta > 0, default 1), ``diag_reg``
            (lambda >= 0 added to the diagonal, default 0), ``time``
            (:class:`PredTime`: steps (default) or flow).

    Lifetime: keeps its Context alive; closing the context closes it.
    """

    _free = lib.tn_predictor_free
    _param_enum = PredictorParam
    _set_fn = lib.tn_predictor_set
    _get_fn = lib.tn_predictor_get
    _value_types = {PredictorParam.TIME: PredTime}

    def __init__(self, context, k_train, y_train, *, full_kernel=None, **settings):
        check_parent(context, Context, "context")
        dims = Dims()
        dims.check("y_train", y_train, "N", "O")
        N, O = dims["N"], dims["O"]
        if full_kernel is None:
            full_kernel = O > 1 and getattr(k_train, "shape", None) == (N * O, N * O)
        side = N * O if full_kernel else N
        dims.check("k_train", k_train, side, side)
        out = predictor_p()
        context._call(lib.tn_predictor_create, context._h, ptr(k_train), N, O,
                      1 if full_kernel else 0, ptr(y_train), byref(out))
        self._attach(out, context)
        self.n_train, self.n_out, self.full_kernel = N, O, bool(full_kernel)
        self.configure(**settings)

    def _describe(self):
        return f"n_train={self.n_train} n_out={self.n_out} full_kernel={self.full_kernel}"

    @property
    def lambda_max(self):
        """The largest eigenvalue of the train kernel plus ``diag_reg``."""
        value = c_double()
        self._call(lib.tn_predictor_lambda_max, self._h, byref(value))
        return value.value

    @property
    def max_learning_rate(self):
        """``2 N / lambda_max``: the largest learning rate at which gradient
        descent (``time="steps"``) does not diverge (neural-tangents'
        ``max_learning_rate`` for this library's loss, which is not divided
        by the number of outputs); ``inf`` for a zero kernel.  Above it,
        :meth:`predict` raises NumericError at every t > 0."""
        value = c_double()
        self._call(lib.tn_predictor_max_learning_rate, self._h, byref(value))
        return value.value

    def predict(self, t, f0_train, k_test_train=None, f0_test=None):
        """The outputs at time t (steps, whole numbers, or flow time; ``inf``
        allowed).

        Args:
            f0_train: the outputs at t = 0 on the train set, ``(N, O)``.
            k_test_train: the test-train kernel, ``(n_test, N)`` (traced) or
                ``(n_test*O, N*O)`` (full), or None for train outputs only.
            f0_test: the test outputs at t = 0, ``(n_test, O)``; given with
                k_test_train or not at all.

        Returns:
            ``(f_train_t, f_test_t)``: ``(N, O)`` and ``(n_test, O)``, the
            latter None without test arguments.  NumericError for test outputs
            at t = inf with a singular kernel (set ``diag_reg``) or a learning
            rate at which gradient descent diverges.
        """
        N, O = self.n_train, self.n_out
        dims = Dims(N=N, O=O)
        dims.check("f0_train", f0_train, "N", "O")
        test = _both_or_neither(k_test_train, f0_test, "k_test_train and f0_test")
        n_test = 0
        if test:
            dims.check("f0_test", f0_test, "n_test", "O")
            n_test = dims["n_test"]
            s = O if self.full_kernel else 1
            dims.check("k_test_train", k_test_train, n_test * s, N * s)
        f_train = empty(N, O)
        f_test = empty(n_test, O) if test else None
        self._call(lib.tn_predictor_predict, self._h, float(t), ptr(f0_train), ptr(f_train),
                   ptr(k_test_train), ptr(f0_test), n_test, ptr(f_test))
        return f_train, f_test


class GP(Settings, Handle):
    """Gaussian-process inference with infinite-width kernels (``tn_gp``).

    NNGP posterior: mean K*X K^-1 Y, cov K** - K*X K^-1 KX*; the NTK-GP at
    flow time t as in Lee et al. (2019).  Kernels are traced (the same for
    every output).

    Args:
        context: the :class:`Context`.
        nngp_train: K(X, X), ``(N, N)``, symmetric positive semi-definite.
        y_train: ``(N, O)``.
        ntk_train: Theta(X, X), ``(N, N)``, or None for NNGP inference only.
        settings: ``diag_reg`` (lambda >= 0 added to both train kernels,
            default 0), ``learning_rate`` (eta > 0 of the NTK-GP, default 1).

    All arrays are copied by the library.  Lifetime: keeps its Context alive;
    closing the context closes it.
    """

    _free = lib.tn_gp_free
    _param_enum = GPParam
    _set_fn = lib.tn_gp_set
    _get_fn = lib.tn_gp_get

    def __init__(self, context, nngp_train, y_train, ntk_train=None, **settings):
        check_parent(context, Context, "context")
        dims = Dims()
        dims.check("y_train", y_train, "N", "O")
        dims.check("nngp_train", nngp_train, "N", "N")
        if ntk_train is not None:
            dims.check("ntk_train", ntk_train, "N", "N")
        out = gp_p()
        context._call(lib.tn_gp_create, context._h, ptr(nngp_train), ptr(ntk_train), dims["N"],
                      dims["O"], ptr(y_train), byref(out))
        self._attach(out, context)
        self.n_train, self.n_out = dims["N"], dims["O"]
        self.configure(**settings)

    def _describe(self):
        return f"n_train={self.n_train} n_out={self.n_out}"

    def nngp_posterior(self, nngp_test_train, nngp_test_test=None):
        """The NNGP posterior.

        Args:
            nngp_test_train: K(x*, X), ``(n_test, N)``.
            nngp_test_test: K(x*, x*), ``(n_test, n_test)``, or None to skip
                the covariance.

        Returns:
            ``(mean, cov)``: ``(n_test, O)`` and ``(n_test, n_test)`` (None
            without nngp_test_test).  NumericError if K is singular (set
            ``diag_reg``).
        """
        dims = Dims(N=self.n_train)
        dims.check("nngp_test_train", nngp_test_train, "n_test", "N")
        n = dims["n_test"]
        if nngp_test_test is not None:
            dims.check("nngp_test_test", nngp_test_test, "n_test", "n_test")
        mean = empty(n, self.n_out)
        cov = empty(n, n) if nngp_test_test is not None else None
        self._call(lib.tn_gp_nngp_posterior, self._h, ptr(nngp_test_train), ptr(nngp_test_test),
                   n, ptr(mean), ptr(cov))
        return mean, cov

    def ntk_posterior(self, t, ntk_test_train, nngp_test_train=None, nngp_test_test=None):
        """The NTK-GP at flow time t >= 0 (``inf`` allowed).

        Args:
            ntk_test_train: Theta(x*, X), ``(n_test, N)``.
            nngp_test_train, nngp_test_test: K(x*, X) ``(n_test, N)`` and
                K(x*, x*) ``(n_test, n_test)``, both for the covariance, or
                neither to skip it.

        Returns:
            ``(mean, cov)`` as :meth:`nngp_posterior`.  StateError if the GP
            was made without ntk_train; NumericError if Theta is singular at
            t = inf.
        """
        dims = Dims(N=self.n_train)
        dims.check("ntk_test_train", ntk_test_train, "n_test", "N")
        n = dims["n_test"]
        with_cov = _both_or_neither(nngp_test_train, nngp_test_test,
                                    "nngp_test_train and nngp_test_test (the covariance)")
        if with_cov:
            dims.check("nngp_test_train", nngp_test_train, "n_test", "N")
            dims.check("nngp_test_test", nngp_test_test, "n_test", "n_test")
        mean = empty(n, self.n_out)
        cov = empty(n, n) if with_cov else None
        self._call(lib.tn_gp_ntk_posterior, self._h, float(t), ptr(ntk_test_train),
                   ptr(nngp_test_train), ptr(nngp_test_test), n, ptr(mean), ptr(cov))
        return mean, cov
