"""The base of every class that owns a C handle: lifetime, calls, settings.

Lifetime rules (the C API's, enforced here):

* A child keeps a reference to its parent (a Network to its Context; a
  Trainer, Taylor or NTK to its Network; a Predictor or GP to its Context),
  so garbage collection never frees a parent before its children.
* ``close()`` frees the handle now and is idempotent.  Closing a parent first
  closes its live children (a ``with Context() as ctx:`` block frees
  everything made from it).  A closed object raises :class:`MisuseError` when
  used; it never reaches C.
* Without ``close()``, the handle is freed when the object is garbage
  collected, never twice.  Inside a reference cycle the collector may finalize
  a parent before its children; the parent's C handle is then freed right
  after the last child's.

* While a C call on a context runs -- which is when a progress callback or a
  gradient hook runs -- no handle of that context is freed under it: an
  explicit ``close()`` from the callback raises :class:`MisuseError` (which
  cancels the call and is re-raised by it), and a handle the collector
  finalizes meanwhile is freed when the call returns.  Any other call on
  the same context from the callback is refused the same way (the C API
  forbids it: the call in progress is using the context).
* Handles own C state, so they are not copied by ``copy.copy`` /
  ``copy.deepcopy`` (a copy would share the C pointer and free it twice):
  a Network copies as a real clone (:meth:`Network.clone`), every other
  class refuses with TypeError; none can be pickled.

Calls: every C call goes through :meth:`Handle._call`, which holds the
context's lock during the call (ctypes releases the GIL, so this keeps "one
thread at a time per context" even if a context is shared by mistake, and
keeps the error message the one of this failure), and raises the
:class:`TaylornetError` of a failing status with ``tn_ctx_errmsg``.
"""

import numbers
import weakref
from ctypes import byref, c_double

from ._args import enum_arg
from ._errors import MisuseError, error_for
from ._lib import lib
from .enums import Status


def check_parent(obj, cls, what):
    """Refuses a parent of the wrong class (TypeError) or a closed one
    (MisuseError); returns it."""
    if not isinstance(obj, cls):
        raise TypeError(f"{what} must be a taylornet.{cls.__name__}, not {type(obj).__name__}")
    obj._h
    return obj


class Handle:
    """An owner of one C handle.  Subclasses set ``_free`` (the C function
    that frees it) and call :meth:`_attach` once the handle exists."""

    _free = None            # e.g. lib.tn_net_free
    _ptr = None             # the C handle while it is allocated
    _closed = True          # True before _attach and after close()
    _parent = None
    _children = ()
    _live_children = 0

    def _attach(self, ptr, parent):
        self._ptr = ptr
        self._closed = False
        self._children = weakref.WeakSet()
        self._live_children = 0
        if parent is not None:
            self._parent = parent
            self._context = parent._context
            with self._context._lock:
                parent._children.add(self)
                parent._live_children += 1

    @property
    def _h(self):
        """The C handle, for a call; MisuseError once closed."""
        if self._closed:
            raise MisuseError(Status.MISUSE, f"this {type(self).__name__} is closed "
                              f"(close() was called on it or on its parent)")
        return self._ptr

    @property
    def closed(self):
        """True once :meth:`close` was called (here or on a parent)."""
        return self._closed

    def close(self):
        """Frees the C handle now, after closing this object's live children
        (e.g. a Network's trainers).  Calling it again does nothing.

        Raises MisuseError when called while a C call on this object's
        context is running, i.e. from a progress callback or a gradient hook:
        that call is using the handles; close them after it returns."""
        if self._closed:
            return
        ctx = self._context
        with ctx._lock:         # waits for another thread's call to end
            if ctx._depth:
                raise MisuseError(Status.MISUSE, f"cannot close this {type(self).__name__} "
                                  f"while a call on its Context is running (from a callback); "
                                  f"close it after the call returns")
            self._closed = True
            for child in list(self._children):
                child.close()
            self._release()

    def _release(self):
        # Freed once: _ptr is cleared before the C free.  Postponed while a
        # child still holds its C handle (only in garbage cycles), and while a
        # C call on the context runs (the collector may finalize a handle from
        # inside a callback: it is freed when the call returns).  Under the
        # context's lock: the collector may run this on any thread.
        if self._ptr is None:       # never attached, or already freed
            return
        with self._context._lock:
            if self._context._depth:
                self._context._deferred.append(self)
                return
            if self._ptr is None or self._live_children:
                return
            ptr, self._ptr = self._ptr, None
            self._free(ptr)
            parent = self._parent
            if parent is not None:
                parent._live_children -= 1
                if parent._closed and not parent._live_children:
                    parent._release()

    def __del__(self):
        self._closed = True
        self._release()

    def __copy__(self):
        raise TypeError(f"a taylornet.{type(self).__name__} owns a C handle and cannot be "
                        f"copied")

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce_ex__(self, protocol):
        raise TypeError(f"a taylornet.{type(self).__name__} owns a C handle and cannot be "
                        f"pickled")

    def __enter__(self):
        self._h  # refuses a closed object
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self._closed:
            return f"<taylornet.{type(self).__name__} (closed)>"
        return f"<taylornet.{type(self).__name__} {self._describe()}>"

    def _describe(self):
        return ""

    def _call(self, fn, *args):
        """Calls ``fn(*args)``; raises the TaylornetError of a failing status,
        with the context's message (or the exception a progress callback
        raised, which cancelled the call)."""
        ctx = self._context
        with ctx._lock:
            if ctx._depth:
                # Only this thread can be here (the lock is held across the
                # call): a callback calling back into its own context.
                raise MisuseError(Status.MISUSE, f"{fn.__name__}: a progress callback or "
                                  f"gradient hook must not use its own Context (a call on it "
                                  f"is running)")
            ctx._depth += 1
            try:
                status = fn(*args)
            finally:
                ctx._depth -= 1
            message = lib.tn_ctx_errmsg(ctx._ptr).decode("utf-8", "replace") if status else None
            pending = ctx._take_callback_error()
            deferred, ctx._deferred = ctx._deferred, []
            for obj in deferred:            # finalized during the call
                obj._release()
        error = error_for(status, message, fn.__name__) if status else None
        if pending is not None:
            raise pending from error
        if error is not None:
            raise error


class Settings:
    """Mixin of the classes with C settings (``tn_*_set`` / ``tn_*_get``).

    Subclasses set ``_param_enum`` (e.g. NetParam), ``_set_fn`` and
    ``_get_fn``, and ``_value_types`` mapping a setting to the type
    :meth:`get` returns (an IntEnum for enum-valued settings, int for counts;
    float otherwise).
    """

    _param_enum = None
    _set_fn = _get_fn = None
    _value_types = {}

    def set(self, param, value):
        """Sets one setting; returns self (so calls chain).

        ``param`` is a member of the class's parameter enum (e.g.
        ``NetParam.SIGMA_W``), its name (``"sigma_w"``), or an int.  ``value``
        is a number, or for enum-valued settings a member or its name
        (``trainer.set("optimizer", "adam")``).  Raises InvalidArgumentError
        for an unknown setting or a value out of range, StateError when the
        setting can no longer change.
        """
        p = enum_arg(self._param_enum, param, "setting")
        kind = self._value_types.get(p)
        if isinstance(value, str) and kind is not None and kind not in (int, float):
            value = enum_arg(kind, value)
        if not isinstance(value, numbers.Real):
            raise TypeError(f"the value of {getattr(p, 'name', p)} must be a number, not "
                            f"{type(value).__name__}")
        self._call(self._set_fn, self._h, p, float(value))
        return self

    def get(self, param):
        """The current value of a setting (defaults resolved): an enum member
        for enum-valued settings, an int for counts, else a float."""
        p = enum_arg(self._param_enum, param, "setting")
        out = c_double()
        self._call(self._get_fn, self._h, p, byref(out))
        kind = self._value_types.get(p, float)
        if kind is float:
            return out.value
        try:
            return kind(int(out.value))
        except ValueError:
            return int(out.value)

    def configure(self, **settings):
        """Sets several settings by name: ``configure(learning_rate=0.1,
        optimizer="adam")``.  Returns self."""
        for name, value in settings.items():
            self.set(name, value)
        return self
