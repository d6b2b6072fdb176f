"""taylornet: Python binding of libtaylornet (ctypes + numpy).

Train neural networks and their Taylor expansions, compute neural tangent
kernels, predict linearized dynamics in closed form.  A thin layer over the C
API of ``taylornet.h``: every class owns one C handle.

Quick start::

    import numpy as np
    import taylornet as tn

    with tn.Context() as ctx:
        net = tn.Network.mlp(ctx, 30, [50, 40, 3], "relu", seed=42)
        x = np.random.default_rng(0).standard_normal((8, 30))
        y = net.forward(x)                          # (8, 3)
        K = tn.NTK(net).compute(x)                  # (8, 8)
        trainer = tn.Trainer(net, optimizer="adam", learning_rate=1e-2)
        loss = trainer.step(x, np.zeros((8, 3)))

Policies (details in README.md):

* Arrays: inputs must be float64, C-contiguous, aligned numpy arrays of the
  documented shape; they are passed by pointer, never copied, whatever their
  size.  Anything else raises TypeError (type, dtype), ShapeError or
  InvalidArgumentError (layout) -- convert with
  ``numpy.ascontiguousarray(a, dtype=numpy.float64)``.  Outputs are new arrays.
* Errors: a failure raises a TaylornetError subclass with ``.status``
  (:class:`Status`) and ``.message`` (the context's error message).
* Lifetime: children keep their parents alive (Context <- Network <-
  Trainer / Taylor / NTK; Context <- Predictor / GP).  ``close()`` or a
  ``with`` block frees a handle and its children now; otherwise garbage
  collection frees it, never twice.  A closed object raises MisuseError.
* Threads: one Context per thread.
"""

try:
    import numpy as _numpy  # noqa: F401  (every array passes through it)
except ImportError as _e:
    raise ImportError("taylornet needs numpy, which this Python cannot import: install it "
                      "(pip install numpy, or Debian's python3-numpy) or use a Python that "
                      "has it") from _e

from ._errors import (CancelledError, FileError, FormatError, InvalidArgumentError, MisuseError,
                      NumericError, OutOfMemoryError, ShapeError, StateError, TaylornetError,
                      UnsupportedError, VersionError)
from ._lib import BINDING_VERSION, lib as _cdll, library_path
from .context import Context, MemoryStats
from .enums import (Activation, GPParam, Loss, NetParam, NTKMethod, NTKOutputs, NTKParam,
                    Optimizer, Padding, Parameterization, PredictorParam, PredTime, RegretInfo,
                    RegretSolver, Status, TrainParam, TrainStat)
from .network import Network
from .ntk import NTK
from .predict import GP, Predictor
from .taylor import Taylor
from .trainer import Trainer

__version__ = ".".join(map(str, BINDING_VERSION))

__all__ = [
    "Context", "MemoryStats", "Network", "Taylor", "NTK", "Predictor", "GP", "Trainer",
    "Status", "Activation", "Padding", "NetParam", "Parameterization", "NTKParam", "NTKMethod",
    "NTKOutputs", "PredictorParam", "PredTime", "GPParam", "TrainParam", "Loss", "Optimizer",
    "TrainStat", "RegretSolver", "RegretInfo",
    "TaylornetError", "InvalidArgumentError", "ShapeError", "OutOfMemoryError", "StateError",
    "NumericError", "FileError", "FormatError", "VersionError", "UnsupportedError",
    "MisuseError", "CancelledError",
    "library_version", "library_version_number", "library_path", "status_string", "blas_info",
]


def library_version():
    """The loaded library's version string, e.g. ``"0.1.0"``."""
    return _cdll.tn_version_string().decode()


def library_version_number():
    """The loaded library's version as major*10000 + minor*100 + patch."""
    return _cdll.tn_version_number()


def blas_info():
    """Which BLAS the library runs its products on, e.g.
    ``"BLIS 0.9.0, skx kernels (AVX-512)"`` (``tn_blas_info``; the kernel set
    can be chosen with the environment variable ``TAYLORNET_KERNELS``)."""
    return _cdll.tn_blas_info().decode()


def status_string(status):
    """The library's short description of a status (``"invalid argument"``)."""
    return _cdll.tn_status_string(int(status)).decode()
