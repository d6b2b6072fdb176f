"""Trainer: trains a network's parameters in place."""

import ctypes
import numbers
import weakref
from ctypes import byref, c_double

import numpy as np

from ._args import Dims, empty, enum_arg, path_arg, ptr
from ._handle import Handle, Settings, check_parent
from ._lib import GRADIENT_FN, lib, net_p, trainer_p
from .context import Context
from .enums import Loss, Optimizer, RegretInfo, RegretSolver, Status, TrainParam, TrainStat
from .network import Network

__all__ = ["Trainer"]


class Trainer(Settings, Handle):
    """Trains a network's parameters theta in place (``tn_trainer``).

    The trained model is ``g(theta; x) = alpha (m(theta; x) - [centered]
    m(theta0; x))`` with m the network (``order=0``, default) or its order-k
    Taylor expansion around theta0 (``order=k``; k = 1 is linearized
    training).  The loss is MSE ((1/2N) sum |g - y|^2) or softmax
    cross-entropy, divided by alpha^2.

    Settings (:meth:`set`, :meth:`get`, or keywords here), by
    :class:`TrainParam` member or name: ``loss`` (:class:`Loss`),
    ``optimizer`` (:class:`Optimizer`), ``learning_rate``, ``momentum``,
    ``beta1``, ``beta2``, ``epsilon``, ``weight_decay``, ``clip_norm``,
    ``order``, ``reexpand_every``, ``output_scale``, ``centered``,
    ``diagnostics``, ``record_taylor``, ``regret_memory``,
    ``regret_tolerance``, ``regret_max_iterations``, ``regret_solver``
    (:class:`RegretSolver`).  Keywords are applied in the order given.

    Shapes: x ``(n, d)``, y ``(n, O)`` (targets; rows of probabilities for
    cross-entropy).

    Data-parallel training: :meth:`set_gradient_hook`.

    Lifetime: keeps its Network alive (which must outlive it); closing the
    network closes it.

    Args:
        network: an initialized :class:`Network`.
        settings: e.g. ``optimizer="adam", learning_rate=1e-2``.
    """

    _free = lib.tn_trainer_free
    _param_enum = TrainParam
    _set_fn = lib.tn_trainer_set
    _get_fn = lib.tn_trainer_get
    _value_types = {TrainParam.LOSS: Loss, TrainParam.OPTIMIZER: Optimizer,
                    TrainParam.ORDER: int, TrainParam.REEXPAND_EVERY: int,
                    TrainParam.CENTERED: int, TrainParam.DIAGNOSTICS: int,
                    TrainParam.RECORD_TAYLOR: int, TrainParam.REGRET_MEMORY: int,
                    TrainParam.REGRET_MAX_ITERATIONS: int,
                    TrainParam.REGRET_SOLVER: RegretSolver}

    _gradient_hook = None       # the CFUNCTYPE object C holds a pointer to

    def __init__(self, network, **settings):
        check_parent(network, Network, "network")
        out = trainer_p()
        network._call(lib.tn_trainer_create, network._h, byref(out))
        self._attach(out, network)
        self.configure(**settings)

    @classmethod
    def load(cls, context, path):
        """Reads a checkpoint written by :meth:`save` into ``context``: a new
        Trainer, in the saved state, of a new :class:`Network` (its
        ``network``), so training continues bit for bit as the uninterrupted
        run would.  Raises FileError (cannot open or read, not a regular
        file), FormatError (not a checkpoint, truncated, corrupted),
        VersionError (written by a newer library); ValueError for a path with
        a NUL character."""
        check_parent(context, Context, "context")
        encoded = path_arg(path)
        net, out = net_p(), trainer_p()
        context._call(lib.tn_trainer_load, context._h, encoded, byref(net), byref(out))
        trainer = cls.__new__(cls)
        trainer._attach(out, Network._wrap(net, context))
        return trainer

    def save(self, path):
        """Writes a checkpoint to ``path`` (str or os.PathLike): the network,
        theta0, the optimizer state, the step count, every setting and the
        diagnostics' probe; atomically (a temporary file renamed over it),
        versioned and checksummed.  FileError; ValueError for a path with a
        NUL character."""
        self._call(lib.tn_trainer_save, self._h, path_arg(path))

    def _describe(self):
        return (f"optimizer={self.get('optimizer').name.lower()} order={self.get('order')} "
                f"num_steps={self.num_steps}")

    @property
    def network(self):
        """The :class:`Network` being trained."""
        return self._parent

    def _batch(self, x, y=None):
        net = self._parent
        dims = Dims(d=net.input_size, O=net.output_dim)
        dims.check("x", x, "n", "d")
        if y is not None:
            dims.check("y", y, "n", "O")
        return dims

    def step(self, x, y):
        """One optimizer update on the batch; returns the loss before it.

        A loss or gradient that is not finite raises NumericError and leaves
        the parameters and optimizer state exactly as before.
        """
        dims = self._batch(x, y)
        loss = c_double()
        self._call(lib.tn_trainer_step, self._h, ptr(x), ptr(y), dims["n"], byref(loss))
        return loss.value

    def loss(self, x, y):
        """The loss of the trained model on a batch, without updating."""
        dims = self._batch(x, y)
        loss = c_double()
        self._call(lib.tn_trainer_loss, self._h, ptr(x), ptr(y), dims["n"], byref(loss))
        return loss.value

    def predict(self, x):
        """The trained model g on x ``(n, d)`` -> ``(n, O)``."""
        dims = self._batch(x)
        y = empty(dims["n"], dims["O"])
        self._call(lib.tn_trainer_predict, self._h, ptr(x), dims["n"], ptr(y))
        return y

    @property
    def base(self):
        """theta0, shape ``(P,)`` (a copy): the point the order-k model is
        expanded around and centering refers to; re-expansion moves it."""
        theta0 = empty(self._parent.num_params)
        self._call(lib.tn_trainer_get_base, self._h, ptr(theta0), theta0.size)
        return theta0

    @property
    def num_steps(self):
        """The number of successful steps taken."""
        return lib.tn_trainer_num_steps(self._h)

    def set_probe(self, x):
        """Sets (a copy of) the probe batch x ``(n, d)`` of the diagnostics and
        takes its current ReLU pattern as the reference."""
        dims = self._batch(x)
        self._call(lib.tn_trainer_set_probe, self._h, ptr(x), dims["n"])

    def stat(self, stat):
        """A statistic of the last successful step (:class:`TrainStat` or its
        name, e.g. ``"grad_norm"``).  StateError when it was not computed (no
        step yet, ``diagnostics`` off, or no probe for the pattern
        statistics)."""
        value = c_double()
        self._call(lib.tn_trainer_stat, self._h, enum_arg(TrainStat, stat), byref(value))
        return value.value

    def regret(self):
        """Balduzzi et al.'s regret over the steps recorded so far (setting
        ``record_taylor=1`` records them): returns ``(regret, taylor_optimum)``,
        ``R_T = sum_t l_t(theta_t) - min_V sum_t l_t(V)`` and the minimum, where
        ``l_t(V)`` is step t's Taylor loss (the loss of the network's
        first-order Taylor model at theta_t on the step's batch).  MSE records
        are solved exactly (an SVD, or LSQR to ``regret_tolerance``), others by
        Newton-CG to ``regret_tolerance`` of the loss sum (see taylornet.h).

        StateError when nothing is recorded; NumericError when the solver
        does not reach the tolerance within ``regret_max_iterations``.
        """
        regret, optimum = c_double(), c_double()
        self._call(lib.tn_trainer_regret, self._h, byref(regret), byref(optimum))
        return regret.value, optimum.value

    def regret_info(self, what):
        """A number about the Taylor record or the last :meth:`regret` solve
        (:class:`RegretInfo` or its name, e.g. ``"bytes"``, ``"iterations"``);
        ``"solver_used"`` is returned as a :class:`RegretSolver`."""
        what = enum_arg(RegretInfo, what)
        value = c_double()
        self._call(lib.tn_trainer_regret_info, self._h, what, byref(value))
        if what == RegretInfo.SOLVER_USED:
            return RegretSolver(int(value.value))
        if what in (RegretInfo.STEPS, RegretInfo.BYTES, RegretInfo.SOLVED_STEPS,
                    RegretInfo.ITERATIONS, RegretInfo.NEWTON_STEPS):
            return int(value.value)
        return value.value

    def regret_minimizer(self):
        """The minimizer V ``(num_params,)`` of the last :meth:`regret` solve."""
        v = empty(self._parent.num_params)
        self._call(lib.tn_trainer_regret_minimizer, self._h, ptr(v), v.shape[0])
        return v

    def set_gradient_hook(self, hook):
        """Installs ``hook(grad, loss) -> loss or None``, called by every
        :meth:`step` after the gradient of the batch's loss is formed and
        before clipping, weight decay and the update; or removes it (None).

        ``grad`` is a new float64 array of shape ``(num_params,)`` holding the
        gradient: change it in place, and the step continues with what it
        holds when the hook returns (the array is the hook's to keep; later
        changes to it have no effect).  ``loss`` is the batch's loss, a float;
        return a number to replace it (the step then returns that and reports
        it as the ``loss`` statistic), or None to keep it.  Data-parallel
        training averages both over ranks here, e.g. with mpi4py::

            def average(grad, loss):
                w = len(my_shard) / batch_size        # n_rank / n_batch
                buf = np.append(w * grad, w * loss)
                comm.Allreduce(MPI.IN_PLACE, buf)
                grad[:] = buf[:-1]
                return buf[-1]

        The hook runs in every step that reaches a gradient, even when the
        batch's loss is not finite; finiteness is checked after it
        (NumericError).  An exception raised by the hook, or a return value
        that is not a number or None, fails the step with nothing changed
        (parameters, optimizer state, step count, statistics): :meth:`step`
        re-raises that exception, chained to the library's CancelledError.
        The hook must not use this trainer, its network or anything else of
        the same :class:`Context` (it runs in the middle of a call on them).
        The binding keeps the hook alive as long as it is installed.
        """
        if hook is None:
            self._call(lib.tn_trainer_set_gradient_hook, self._h, GRADIENT_FN(), None)  # NULL
            self._gradient_hook = None
            return
        if not callable(hook):
            raise TypeError("the gradient hook must be callable or None")
        ref = weakref.ref(self._context)      # no cycle Context -> trampoline -> Context

        def trampoline(_user, grad_p, length, loss_p):
            try:
                grad = np.ctypeslib.as_array(grad_p, shape=(length,)).copy()
                new_loss = hook(grad, loss_p[0])
                if new_loss is not None:
                    if not isinstance(new_loss, numbers.Real):
                        raise TypeError(f"the gradient hook returned {type(new_loss).__name__}; "
                                        f"it must return the loss (a number) or None")
                    new_loss = float(new_loss)
                ctypes.memmove(grad_p, grad.ctypes.data, length * 8)
                if new_loss is not None:
                    loss_p[0] = new_loss
                return int(Status.OK)
            except BaseException as e:      # noqa: B036 -- re-raised after the C call
                ctx = ref()
                if ctx is not None:
                    ctx._callback_error = e
                return int(Status.CANCELLED)

        cfunc = GRADIENT_FN(trampoline)
        self._call(lib.tn_trainer_set_gradient_hook, self._h, cfunc, None)
        self._gradient_hook = cfunc
