"""Finding and loading libtaylornet.so.0, and the prototypes of its functions.

The library is looked up in this order:

1. the path in the environment variable ``TAYLORNET_LIBRARY``; when it is set
   it is the only candidate, so a wrong path is an error rather than a silent
   fall back to another copy of the library;
2. ``$(pkg-config --variable=libdir taylornet)/libtaylornet.so.0``, when
   pkg-config and ``taylornet.pc`` are installed (``PKG_CONFIG_PATH`` is
   honoured);
3. the system loader: ``ctypes.CDLL("libtaylornet.so.0")`` (``LD_LIBRARY_PATH``,
   ``ld.so.cache``).

Every C function of ``taylornet.h`` gets its ``argtypes`` and ``restype``
here, and the loaded library's major version is checked against the one
this binding was written for.
"""

import ctypes
import os
import subprocess
from ctypes import POINTER, c_char_p, c_double, c_int, c_size_t, c_uint, c_uint64, c_void_p

__all__ = ["lib", "library_path", "load_library", "BINDING_VERSION"]

SONAME = "libtaylornet.so.0"
ENV_VAR = "TAYLORNET_LIBRARY"
#: The C API version this binding was written for (TN_VERSION_NUMBER 0.1.0).
BINDING_VERSION = (0, 1, 0)


def _opaque(name):
    """A pointer type to an incomplete struct, one per handle type, so ctypes
    refuses to pass a network where a trainer is expected."""
    return POINTER(type(name, (ctypes.Structure,), {}))


ctx_p = _opaque("tn_ctx")
net_p = _opaque("tn_net")
taylor_p = _opaque("tn_taylor")
ntk_p = _opaque("tn_ntk")
predictor_p = _opaque("tn_predictor")
gp_p = _opaque("tn_gp")
trainer_p = _opaque("tn_trainer")
double_p = POINTER(c_double)
size_p = POINTER(c_size_t)
status_t = c_int
enum_t = c_int
#: int (*tn_progress_fn)(void *user, double fraction_done)
PROGRESS_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_double)
#: tn_status (*tn_gradient_fn)(void *user, double *grad, size_t len, double *loss)
GRADIENT_FN = ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(c_double), c_size_t, POINTER(c_double))

_D, _S, _P = double_p, c_size_t, POINTER

# name: (restype, argtypes), in the order of taylornet.h.
PROTOTYPES = {
    "tn_version_number": (c_uint, []),
    "tn_version_string": (c_char_p, []),
    "tn_status_string": (c_char_p, [status_t]),
    "tn_blas_info": (c_char_p, []),
    # context
    "tn_ctx_create": (status_t, [_P(ctx_p)]),
    "tn_ctx_free": (None, [ctx_p]),
    "tn_ctx_errmsg": (c_char_p, [ctx_p]),
    "tn_ctx_set_threads": (status_t, [ctx_p, c_int]),
    "tn_ctx_get_threads": (c_int, [ctx_p]),
    "tn_ctx_get_memory": (status_t, [ctx_p, size_p, size_p]),
    "tn_ctx_reset_peak_memory": (status_t, [ctx_p]),
    "tn_ctx_set_progress": (status_t, [ctx_p, PROGRESS_FN, c_void_p]),
    # network
    "tn_net_create": (status_t, [ctx_p, size_p, _S, _P(net_p)]),
    "tn_net_add_dense": (status_t, [net_p, _S]),
    "tn_net_add_activation": (status_t, [net_p, enum_t]),
    "tn_net_add_conv2d": (status_t, [net_p, _S, _S, _S, _S, enum_t]),
    "tn_net_add_avg_pool2d": (status_t, [net_p, _S, _S, _S, enum_t]),
    "tn_net_add_global_avg_pool": (status_t, [net_p]),
    "tn_net_add_flatten": (status_t, [net_p]),
    "tn_net_current": (status_t, [net_p, size_p]),
    "tn_net_branch": (status_t, [net_p, _S]),
    "tn_net_add_sum": (status_t, [net_p, _S]),
    "tn_net_output_shape": (status_t, [net_p, size_p, size_p]),
    "tn_net_set": (status_t, [net_p, enum_t, c_double]),
    "tn_net_get": (status_t, [net_p, enum_t, _D]),
    "tn_net_init": (status_t, [net_p, c_uint64]),
    "tn_net_num_params": (_S, [net_p]),
    "tn_net_input_size": (_S, [net_p]),
    "tn_net_input_shape": (status_t, [net_p, size_p, size_p]),
    "tn_net_output_dim": (_S, [net_p]),
    "tn_net_get_params": (status_t, [net_p, _D, _S]),
    "tn_net_set_params": (status_t, [net_p, _D, _S]),
    "tn_net_clone": (status_t, [net_p, _P(net_p)]),
    "tn_net_forward": (status_t, [net_p, _D, _S, _D]),
    "tn_net_jvp": (status_t, [net_p, _D, _S, _D, _D]),
    "tn_net_vjp": (status_t, [net_p, _D, _S, _D, _D]),
    "tn_net_save": (status_t, [net_p, c_char_p]),
    "tn_net_load": (status_t, [ctx_p, c_char_p, _P(net_p)]),
    "tn_net_free": (None, [net_p]),
    # Taylor expansion
    "tn_taylor_create": (status_t, [net_p, c_int, _P(taylor_p)]),
    "tn_taylor_max_order": (c_int, []),
    "tn_taylor_order": (c_int, [taylor_p]),
    "tn_taylor_rebase": (status_t, [taylor_p, _D, _S]),
    "tn_taylor_get_base": (status_t, [taylor_p, _D, _S]),
    "tn_taylor_forward": (status_t, [taylor_p, _D, _D, _S, _D]),
    "tn_taylor_terms": (status_t, [taylor_p, _D, _D, _S, _D]),
    "tn_taylor_vjp": (status_t, [taylor_p, _D, _D, _S, _D, _D]),
    "tn_taylor_term_norms": (status_t, [taylor_p, _D, _S]),
    "tn_taylor_divergence": (status_t, [taylor_p, _D]),
    "tn_taylor_free": (None, [taylor_p]),
    # neural tangent kernel
    "tn_ntk_create": (status_t, [net_p, _P(ntk_p)]),
    "tn_ntk_set": (status_t, [ntk_p, enum_t, c_double]),
    "tn_ntk_get": (status_t, [ntk_p, enum_t, _D]),
    "tn_ntk_compute": (status_t, [ntk_p, _D, _S, _D, _S, _D]),
    "tn_ntk_analytic": (status_t, [ntk_p, _D, _S, _D, _S, _D, _D]),
    "tn_ntk_monte_carlo": (status_t, [ntk_p, c_uint64, _S, _D, _S, _D, _S, _D, _D]),
    "tn_ntk_free": (None, [ntk_p]),
    # closed-form predictor
    "tn_predictor_create": (status_t, [ctx_p, _D, _S, _S, c_int, _D, _P(predictor_p)]),
    "tn_predictor_set": (status_t, [predictor_p, enum_t, c_double]),
    "tn_predictor_get": (status_t, [predictor_p, enum_t, _D]),
    "tn_predictor_predict": (status_t, [predictor_p, c_double, _D, _D, _D, _D, _S, _D]),
    "tn_predictor_lambda_max": (status_t, [predictor_p, _D]),
    "tn_predictor_max_learning_rate": (status_t, [predictor_p, _D]),
    "tn_predictor_free": (None, [predictor_p]),
    # Gaussian processes
    "tn_gp_create": (status_t, [ctx_p, _D, _D, _S, _S, _D, _P(gp_p)]),
    "tn_gp_set": (status_t, [gp_p, enum_t, c_double]),
    "tn_gp_get": (status_t, [gp_p, enum_t, _D]),
    "tn_gp_nngp_posterior": (status_t, [gp_p, _D, _D, _S, _D, _D]),
    "tn_gp_ntk_posterior": (status_t, [gp_p, c_double, _D, _D, _D, _S, _D, _D]),
    "tn_gp_free": (None, [gp_p]),
    # trainer
    "tn_trainer_create": (status_t, [net_p, _P(trainer_p)]),
    "tn_trainer_set": (status_t, [trainer_p, enum_t, c_double]),
    "tn_trainer_get": (status_t, [trainer_p, enum_t, _D]),
    "tn_trainer_step": (status_t, [trainer_p, _D, _D, _S, _D]),
    "tn_trainer_loss": (status_t, [trainer_p, _D, _D, _S, _D]),
    "tn_trainer_predict": (status_t, [trainer_p, _D, _S, _D]),
    "tn_trainer_set_probe": (status_t, [trainer_p, _D, _S]),
    "tn_trainer_stat": (status_t, [trainer_p, enum_t, _D]),
    "tn_trainer_set_gradient_hook": (status_t, [trainer_p, GRADIENT_FN, c_void_p]),
    "tn_trainer_num_steps": (c_uint64, [trainer_p]),
    "tn_trainer_get_base": (status_t, [trainer_p, _D, _S]),
    "tn_trainer_save": (status_t, [trainer_p, c_char_p]),
    "tn_trainer_load": (status_t, [ctx_p, c_char_p, _P(net_p), _P(trainer_p)]),
    "tn_trainer_regret": (status_t, [trainer_p, _D, _D]),
    "tn_trainer_regret_info": (status_t, [trainer_p, enum_t, _D]),
    "tn_trainer_regret_minimizer": (status_t, [trainer_p, _D, _S]),
    "tn_trainer_free": (None, [trainer_p]),
}


def _pkg_config_libdir(env):
    """pkg-config's libdir for taylornet, or (None, why not)."""
    try:
        res = subprocess.run(["pkg-config", "--variable=libdir", "taylornet"], env=env,
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"pkg-config could not run ({e})"
    libdir = res.stdout.strip()
    if res.returncode != 0 or not libdir:
        why = res.stderr.strip().splitlines()
        return None, "pkg-config knows no taylornet" + (f" ({why[0]})" if why else "")
    return libdir, None


def load_library(env=None):
    """Loads libtaylornet and returns ``(ctypes.CDLL, how it was found)``.

    ``env`` is the environment to read (default ``os.environ``).  Raises
    ImportError listing every place tried when none works.
    """
    env = os.environ if env is None else env
    explicit = env.get(ENV_VAR)
    if explicit:
        try:
            return ctypes.CDLL(explicit), explicit
        except OSError as e:
            raise ImportError(f"taylornet: cannot load {ENV_VAR}={explicit!r}: {e}") from e
    tried = [f"{ENV_VAR}: not set"]
    libdir, why = _pkg_config_libdir(env)
    if libdir is None:
        tried.append(why)
    else:
        path = os.path.join(libdir, SONAME)
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"pkg-config libdir: {e}")
    try:
        return ctypes.CDLL(SONAME), SONAME
    except OSError as e:
        tried.append(f"system loader: {e}")
    raise ImportError("taylornet: cannot find libtaylornet.so.0.  Tried, in order:\n  - "
                      + "\n  - ".join(tried)
                      + f"\nSet {ENV_VAR} to the library's path, install the library where "
                      "pkg-config or the dynamic loader finds it, or add its directory to "
                      "LD_LIBRARY_PATH.")


def _check_version(cdll, origin):
    try:
        number, string = cdll.tn_version_number, cdll.tn_version_string
    except AttributeError as e:
        raise ImportError(f"taylornet: {origin} is not libtaylornet (no tn_version_number)") from e
    number.restype, number.argtypes = c_uint, []
    string.restype, string.argtypes = c_char_p, []
    if number() // 10000 != BINDING_VERSION[0]:
        raise ImportError(f"taylornet: {origin} is version {string().decode()}, but this "
                          f"binding was written for {'.'.join(map(str, BINDING_VERSION))}: "
                          "the major versions must match")


def declare(cdll, origin):
    """Checks the library's major version, then sets argtypes and restype on
    every function of the header.  Raises ImportError on a mismatch."""
    _check_version(cdll, origin)
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError as e:
            raise ImportError(f"taylornet: {origin} has no {name}; this binding needs "
                              f"libtaylornet {'.'.join(map(str, BINDING_VERSION))} or a newer "
                              "release of the same major version") from e
        fn.restype = restype
        fn.argtypes = argtypes
    return cdll


lib, library_path = load_library()
declare(lib, library_path)
