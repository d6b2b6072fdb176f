"""Argument checks shared by every class: arrays, enums and settings.

The array policy, stated once: inputs must be ``numpy.ndarray`` objects of
dtype float64, C-contiguous and aligned, and are passed to C by pointer,
never copied, whatever their size.  Anything else is refused with an error
saying what is needed (``TypeError`` for another type or dtype,
:class:`InvalidArgumentError` for another layout, :class:`ShapeError` for
another shape); convert explicitly with
``numpy.ascontiguousarray(a, dtype=numpy.float64)`` when a copy is what you
want.  Outputs are always new arrays.
"""

import os

import numpy as np

from ._errors import InvalidArgumentError, ShapeError
from ._lib import double_p
from .enums import Status

_INT_MIN, _INT_MAX = -2**31, 2**31 - 1


class Dims:
    """Checks input arrays against shapes whose free dimensions have names.

    A shape is a tuple of ints (fixed sizes) and strings (named sizes): the
    first array that uses a name fixes it, the others must agree::

        dims = Dims(d=net.input_size, O=net.output_dim)
        x = dims.check("x", x, "n", "d")     # (n, d): n is taken from x
        y = dims.check("y", y, "n", "O")     # (n, O): the same n
        n = dims["n"]
    """

    def __init__(self, **known):
        self._sizes = dict(known)
        self._source = {name: None for name in known}

    def __getitem__(self, name):
        return self._sizes[name]

    def check(self, name, a, *shape):
        """Returns ``a`` if it is a float64 C-contiguous array of ``shape``.

        Raises TypeError (not an ndarray, or dtype not float64), ShapeError
        (wrong number of dimensions or sizes) or InvalidArgumentError (not
        C-contiguous or not aligned).  Never copies.
        """
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray of float64, not "
                            f"{type(a).__name__}; convert with "
                            f"numpy.ascontiguousarray({name}, dtype=numpy.float64)")
        if a.dtype != np.float64:
            raise TypeError(f"{name} has dtype {a.dtype}; it must be float64 (native byte "
                            f"order).  The binding never converts inputs silently: convert "
                            f"with numpy.ascontiguousarray({name}, dtype=numpy.float64)")
        bound = dict(self._sizes)      # committed only if the whole shape matches
        ok = a.ndim == len(shape)
        if ok:
            for want, got in zip(shape, a.shape):
                if isinstance(want, str):
                    want = bound.setdefault(want, got)
                ok = ok and want == got
        if not ok:
            raise ShapeError(Status.SHAPE, f"{name} has shape {a.shape}; it must be "
                             f"{self._describe(shape)}")
        if not (a.flags.c_contiguous and a.flags.aligned):
            raise InvalidArgumentError(
                Status.INVALID_ARG, f"{name} is not a C-contiguous, aligned array (a slice or "
                f"transpose?).  The binding never copies inputs silently: pass "
                f"numpy.ascontiguousarray({name})")
        for want in shape:
            if isinstance(want, str) and want not in self._sizes:
                self._sizes[want], self._source[want] = bound[want], name
        return a

    def _describe(self, shape):
        """"2-D, (n=5, d=30) (n from x)": the shape wanted, sizes known so far."""
        parts, notes = [], {}
        for want in shape:
            size = self._sizes.get(want) if isinstance(want, str) else None
            parts.append(str(want) if size is None else f"{want}={size}")
            if size is not None and self._source.get(want):
                notes[want] = f"{want} from {self._source[want]}"
        inner = ", ".join(parts) + ("," if len(parts) == 1 else "")
        text = f"{len(shape)}-D, ({inner})"
        return text + (f" ({'; '.join(notes.values())})" if notes else "")


def ptr(a):
    """The data pointer of a checked array (no copy), or NULL for None."""
    return None if a is None else a.ctypes.data_as(double_p)


def empty(*shape):
    """A new, uninitialized float64 output array."""
    return np.empty(shape, dtype=np.float64)


def enum_arg(enum_cls, value, what=None):
    """An enum argument as the int to pass to C.

    Accepts a member of ``enum_cls``, its name as a string (any case:
    ``"relu"``), or a plain int.  Ints that are not members go to C as they
    are, so the library itself rejects them (or accepts values of a newer
    release).  Raises InvalidArgumentError for an unknown name or an int that
    does not fit a C int, TypeError for another type.
    """
    what = what or enum_cls.__name__
    if isinstance(value, str):
        try:
            return enum_cls[value.upper()]
        except KeyError:
            names = ", ".join(m.name.lower() for m in enum_cls)
            raise InvalidArgumentError(Status.INVALID_ARG,
                                       f"{value!r} is not a {what}; one of: {names}") from None
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"a {what} must be a {enum_cls.__name__}, its name or an int, not "
                        f"{type(value).__name__}")
    value = int(value)
    if not _INT_MIN <= value <= _INT_MAX:
        raise InvalidArgumentError(Status.INVALID_ARG, f"{value} is not a {what}")
    try:
        return enum_cls(value)
    except ValueError:
        return value


def size_arg(value, what, limit=2**64 - 1):
    """A whole number in [0, limit] (a width, a seed ...) as a Python int.
    ctypes would truncate larger values silently, so they are refused here."""
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= limit:
        raise InvalidArgumentError(Status.INVALID_ARG,
                                   f"{what} is {value}; it must be in [0, {limit}]")
    return int(value)


def path_arg(path, what="path"):
    """A file path (str, bytes or os.PathLike) as the bytes C receives.

    A path with an embedded NUL would reach C cut short at it (and name
    another file), so it raises ValueError, as ``open()`` does.
    """
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise ValueError(f"{what} contains a NUL character: {path!r}")
    return encoded
