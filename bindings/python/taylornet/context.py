"""Context: the per-thread state every other handle is made from."""

import threading
import weakref
from collections import namedtuple
from ctypes import byref, c_size_t

from ._args import size_arg
from ._errors import error_for
from ._handle import Handle
from ._lib import PROGRESS_FN, ctx_p, lib

__all__ = ["Context", "MemoryStats"]

#: Bytes allocated through a context now, and at the peak since creation or
#: :meth:`Context.reset_peak_memory`.
MemoryStats = namedtuple("MemoryStats", ["in_use", "peak"])


class Context(Handle):
    """A libtaylornet context (``tn_ctx``): the BLAS thread count, the last
    error message, memory accounting and the progress callback.

    Thread rule: use one Context per thread.  Every object made from a
    context (directly, or through a Network) is used by one thread at a time;
    the binding serializes the C calls of one context with a lock, so
    sharing a context between threads is safe but runs its calls one after
    another.  Distinct contexts share nothing and run in parallel (ctypes
    releases the GIL during C calls).

    Lifetime: a Context must outlive everything made from it.  Objects made
    from it keep it alive; ``close()`` (or leaving a ``with`` block) first
    closes every Network, Predictor and GP still open on it.

    Args:
        threads: BLAS threads for calls made through this context (default 1).
    """

    _free = lib.tn_ctx_free

    def __init__(self, threads=None):
        self._lock = threading.RLock()
        self._depth = 0            # C calls on this context running (0 or 1)
        self._deferred = []        # handles finalized during a call, freed after it
        self._callback_error = None
        self._progress = None      # the CFUNCTYPE object C holds a pointer to
        out = ctx_p()
        status = lib.tn_ctx_create(byref(out))
        if status:
            if out:
                # A refused TAYLORNET_KERNELS: the context holds the message.
                message = lib.tn_ctx_errmsg(out).decode("utf-8", "replace")
                lib.tn_ctx_free(out)
            else:
                # No context, so no message: the status's own text.
                message = "tn_ctx_create: " + lib.tn_status_string(status).decode()
            raise error_for(status, message, "tn_ctx_create")
        self._attach(out, None)
        if threads is not None:
            self.threads = threads

    @property
    def _context(self):
        return self

    def _describe(self):
        return f"threads={self.threads}"

    @property
    def threads(self):
        """BLAS threads used by calls made through this context (1 to 1024)."""
        return lib.tn_ctx_get_threads(self._h)

    @threads.setter
    def threads(self, n):
        self._call(lib.tn_ctx_set_threads, self._h, size_arg(n, "threads", 2**31 - 1))

    @property
    def errmsg(self):
        """The message of the last failure of any handle of this context ("" if
        none).  Every TaylornetError already carries it as ``.message``."""
        return lib.tn_ctx_errmsg(self._h).decode("utf-8", "replace")

    @property
    def memory(self):
        """:class:`MemoryStats` (in_use, peak): bytes the library has allocated
        through this context (not BLIS's own packing buffers)."""
        in_use, peak = c_size_t(), c_size_t()
        self._call(lib.tn_ctx_get_memory, self._h, byref(in_use), byref(peak))
        return MemoryStats(in_use.value, peak.value)

    def reset_peak_memory(self):
        """Sets the peak of :attr:`memory` to the bytes in use now."""
        self._call(lib.tn_ctx_reset_peak_memory, self._h)

    def set_progress(self, callback):
        """Installs ``callback(fraction_done) -> bool`` for long computations
        (:meth:`NTK.compute`), or removes it (None).

        The callback runs in the calling thread between units of work with
        ``fraction_done`` rising to 1.0; returning a true value cancels the
        computation, which raises :class:`CancelledError`.  An exception
        raised by the callback also cancels it and is re-raised by the
        cancelled call (chained to the CancelledError).  The binding keeps the
        callback alive as long as it is installed.
        """
        if callback is None:
            self._call(lib.tn_ctx_set_progress, self._h, PROGRESS_FN(), None)   # NULL
            self._progress = None
            return
        if not callable(callback):
            raise TypeError("the progress callback must be callable or None")
        ref = weakref.ref(self)      # no cycle Context -> trampoline -> Context

        def trampoline(_user, fraction):
            try:
                return 1 if callback(fraction) else 0
            except BaseException as e:      # noqa: B036 -- re-raised after the C call
                ctx = ref()
                if ctx is not None:
                    ctx._callback_error = e
                return 1

        cfunc = PROGRESS_FN(trampoline)
        self._call(lib.tn_ctx_set_progress, self._h, cfunc, None)
        self._progress = cfunc

    def _take_callback_error(self):
        e, self._callback_error = self._callback_error, None
        return e
