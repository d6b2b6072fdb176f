"""Exceptions: one :class:`TaylornetError` per failure, carrying its status.

Every failure the library reports, and every argument the binding rejects
before calling it with a status the library would have used, raises a
subclass of :class:`TaylornetError`.  Each subclass also derives from the
built-in exception that fits (``ShapeError`` is a ``ValueError``,
``NumericError`` an ``ArithmeticError`` ...), so generic handlers work too.
Only a wrong Python type or dtype raises a plain ``TypeError``.
"""

from .enums import Status

__all__ = [
    "TaylornetError", "InvalidArgumentError", "ShapeError", "OutOfMemoryError", "StateError",
    "NumericError", "FileError", "FormatError", "VersionError", "UnsupportedError",
    "MisuseError", "CancelledError", "error_for",
]


class TaylornetError(Exception):
    """A failure of libtaylornet (or an argument the binding rejected for it).

    Attributes:
        status: the :class:`~taylornet.Status` (a plain ``int`` for a status
            this binding does not know, from a newer library).
        message: the context's ``tn_ctx_errmsg`` at the time of the failure,
            or the binding's own explanation for arguments it rejected.
        function: the C function that failed (``"tn_net_forward"``), or None
            when the binding rejected the call before making it.
    """

    def __init__(self, status, message, function=None):
        try:
            status = Status(status)
        except ValueError:
            status = int(status)
        self.status = status
        self.message = message
        self.function = function
        # One argument for the built-in bases: OSError would read (status,
        # message, function) as (errno, strerror, filename).
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.status, self.message, self.function)

    def __str__(self):
        name = self.status.name if isinstance(self.status, Status) else f"status {self.status}"
        text = self.message or "(no message)"
        return f"{text} [{name}]"


class InvalidArgumentError(TaylornetError, ValueError):
    """``TN_E_INVALID_ARG``: a value out of range, an unknown setting, a bad layout."""


class ShapeError(TaylornetError, ValueError):
    """``TN_E_SHAPE``: an array whose shape does not match the handle's sizes."""


class OutOfMemoryError(TaylornetError, MemoryError):
    """``TN_E_NOMEM``: an allocation failed, or a workspace size overflows."""


class StateError(TaylornetError, RuntimeError):
    """``TN_E_STATE``: a call in the wrong order (e.g. forward before init)."""


class NumericError(TaylornetError, ArithmeticError):
    """``TN_E_NUMERIC``: a loss or gradient that is not finite, a singular kernel."""


class FileError(TaylornetError, OSError):
    """``TN_E_IO``: a file could not be opened, read or written."""


class FormatError(TaylornetError, ValueError):
    """``TN_E_FORMAT``: not a taylornet file, truncated or corrupted."""


class VersionError(TaylornetError):
    """``TN_E_VERSION``: a file written by a newer format version."""


class UnsupportedError(TaylornetError, NotImplementedError):
    """``TN_E_UNSUPPORTED``: a valid request this build or layer type cannot serve."""


class MisuseError(TaylornetError, RuntimeError):
    """``TN_E_MISUSE``: a handle used after it was closed."""


class CancelledError(TaylornetError):
    """``TN_E_CANCELLED``: the progress callback asked to stop."""


_BY_STATUS = {
    Status.INVALID_ARG: InvalidArgumentError,
    Status.SHAPE: ShapeError,
    Status.NOMEM: OutOfMemoryError,
    Status.STATE: StateError,
    Status.NUMERIC: NumericError,
    Status.IO: FileError,
    Status.FORMAT: FormatError,
    Status.VERSION: VersionError,
    Status.UNSUPPORTED: UnsupportedError,
    Status.MISUSE: MisuseError,
    Status.CANCELLED: CancelledError,
}


def error_for(status, message, function=None):
    """The exception for a failing ``status``: the subclass of its status, or
    :class:`TaylornetError` itself for a status this binding does not know."""
    return _BY_STATUS.get(status, TaylornetError)(status, message, function)
