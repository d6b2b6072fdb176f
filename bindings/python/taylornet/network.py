"""Network: a feed-forward network, its parameters and its derivatives."""

from ctypes import byref, c_size_t

from ._args import Dims, empty, enum_arg, path_arg, ptr, size_arg
from ._handle import Handle, Settings, check_parent
from ._lib import lib, net_p
from .context import Context
from .enums import Activation, NetParam, Padding, Parameterization

__all__ = ["Network"]



def _window(value):
    """(kh, kw) from an int or a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"a window is (kh, kw), not {value!r}")
        return size_arg(value[0], "kh"), size_arg(value[1], "kw")
    k = size_arg(value, "window")
    return k, k

class Network(Settings, Handle):
    """A network (``tn_net``) built layer by layer, then initialized.

    Life cycle: ``Network(ctx, input_shape)``, then :meth:`add_dense`,
    :meth:`add_activation` and :meth:`set` in any order, then
    :meth:`init` (draws the parameters theta), then :meth:`forward`,
    :meth:`jvp`, :meth:`vjp`, :meth:`save`, and the Trainer, Taylor and NTK
    made from it.  Calls out of order raise :class:`StateError`.

    Shapes: inputs ``x`` are ``(n, input_size)`` float64 arrays, one example
    per row (images ``(n, H*W*C)``, NHWC flattened: ``x.reshape(n, -1)`` is a
    view, not a copy); outputs are ``(n, output_dim)``; theta is a vector of
    length :attr:`num_params`.  Inputs are never copied (see the package
    docstring for the array policy).

    Lifetime: keeps its Context alive; must outlive its Trainers, Taylor
    expansions and NTKs, which keep it alive; ``close()`` closes them first.

    Args:
        context: the :class:`Context` to make the network in.
        input_shape: ``d`` (an int or ``(d,)``) or ``(H, W, C)``.
        settings: keyword settings for :meth:`configure`, e.g.
            ``sigma_w=1.5, parameterization="standard"``.
    """

    _free = lib.tn_net_free
    _param_enum = NetParam
    _set_fn = lib.tn_net_set
    _get_fn = lib.tn_net_get
    _value_types = {NetParam.PARAMETERIZATION: Parameterization}

    def __init__(self, context, input_shape, **settings):
        check_parent(context, Context, "context")
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
        dims = (c_size_t * len(shape))(*(size_arg(s, "an input dimension") for s in shape))
        out = net_p()
        context._call(lib.tn_net_create, context._h, dims, len(shape), byref(out))
        self._attach(out, context)
        self.configure(**settings)

    @classmethod
    def _wrap(cls, ptr, context):
        net = cls.__new__(cls)
        net._attach(ptr, context)
        return net

    @classmethod
    def mlp(cls, context, input_size, widths, activation=Activation.RELU, seed=None,
            **settings):
        """A multilayer perceptron: dense layers of ``widths`` with
        ``activation`` between them (none after the last), initialized from
        ``seed`` unless it is None.  Settings as for the constructor."""
        net = cls(context, input_size, **settings)
        for i, width in enumerate(widths):
            if i:
                net.add_activation(activation)
            net.add_dense(width)
        if seed is not None:
            net.init(seed)
        return net

    @classmethod
    def load(cls, context, path):
        """Reads a network written by :meth:`save` into ``context``.  Raises
        FileError (cannot open or read), FormatError (not a taylornet file,
        truncated, corrupted), VersionError (a newer format); ValueError for a
        path with a NUL character."""
        check_parent(context, Context, "context")
        encoded = path_arg(path)
        out = net_p()
        context._call(lib.tn_net_load, context._h, encoded, byref(out))
        return cls._wrap(out, context)

    def _describe(self):
        return (f"input_size={self.input_size} output_dim={self.output_dim} "
                f"num_params={self.num_params}")

    @property
    def context(self):
        """The :class:`Context` this network was made in."""
        return self._context

    # -- building ---------------------------------------------------------
    def add_dense(self, width):
        """Appends a dense layer with ``width`` outputs; returns self."""
        self._call(lib.tn_net_add_dense, self._h, size_arg(width, "width"))
        return self

    def add_activation(self, activation):
        """Appends an activation (an :class:`Activation`, its name such as
        ``"relu"``, or an int); returns self."""
        self._call(lib.tn_net_add_activation, self._h, enum_arg(Activation, activation))
        return self

    def add_conv2d(self, channels, kernel, stride=1, padding="same"):
        """Appends a 2-D convolution with ``channels`` output channels and a
        ``kernel`` = (kh, kw) window (an int for a square one) at ``stride``,
        with :class:`Padding` ``padding`` ("same" or "valid"); the current
        node must be an image (H, W, C).  Returns self."""
        kh, kw = _window(kernel)
        self._call(lib.tn_net_add_conv2d, self._h, size_arg(channels, "channels"), kh, kw,
                   size_arg(stride, "stride"), enum_arg(Padding, padding))
        return self

    def add_avg_pool2d(self, window, stride=None, padding="valid"):
        """Appends average pooling over ``window`` = (kh, kw) (an int for a
        square one) at ``stride`` (default: the window's height), padded
        zeros counted.  Returns self."""
        kh, kw = _window(window)
        self._call(lib.tn_net_add_avg_pool2d, self._h, kh, kw,
                   size_arg(kh if stride is None else stride, "stride"),
                   enum_arg(Padding, padding))
        return self

    def add_global_avg_pool(self):
        """Appends the mean over all pixels, (H, W, C) -> (C,).  Returns self."""
        self._call(lib.tn_net_add_global_avg_pool, self._h)
        return self

    def add_flatten(self):
        """Appends a flatten, (H, W, C) -> (H*W*C,), free of copies.  Returns self."""
        self._call(lib.tn_net_add_flatten, self._h)
        return self

    @property
    def current(self):
        """The id of the current node: the one the next layer reads."""
        node = c_size_t()
        self._call(lib.tn_net_current, self._h, byref(node))
        return node.value

    def branch(self, node):
        """Makes the earlier node ``node`` current, so the next layer reads it
        (a second branch starts there).  Returns self."""
        self._call(lib.tn_net_branch, self._h, size_arg(node, "node"))
        return self

    def add_sum(self, node):
        """Appends the sum of the current node and ``node`` (same shape):
        where residual branches join.  Returns self."""
        self._call(lib.tn_net_add_sum, self._h, size_arg(node, "node"))
        return self

    @property
    def output_shape(self):
        """The shape of the current node (the output after :meth:`init`):
        (d,) or (H, W, C)."""
        shape, ndim = (c_size_t * 3)(), c_size_t()
        self._call(lib.tn_net_output_shape, self._h, shape, byref(ndim))
        return tuple(shape[: ndim.value])

    def init(self, seed):
        """Draws theta from ``seed`` (an int in [0, 2**64)), bit-identically on
        every platform; may be called again to redraw.  Returns self."""
        self._call(lib.tn_net_init, self._h, size_arg(seed, "seed"))
        return self

    # -- sizes ------------------------------------------------------------
    @property
    def num_params(self):
        """P, the length of theta (known before init)."""
        return lib.tn_net_num_params(self._h)

    @property
    def input_size(self):
        """d, or H*W*C: the number of columns of x."""
        return lib.tn_net_input_size(self._h)

    @property
    def input_shape(self):
        """The input shape given at creation: (d,) or (H, W, C)."""
        shape, ndim = (c_size_t * 3)(), c_size_t()
        self._call(lib.tn_net_input_shape, self._h, shape, byref(ndim))
        return tuple(shape[: ndim.value])

    @property
    def output_dim(self):
        """O, the number of outputs per example: the width of the last layer
        (input_size while there is none)."""
        return lib.tn_net_output_dim(self._h)

    # -- parameters -------------------------------------------------------
    def get_params(self):
        """A copy of theta, shape ``(P,)``."""
        theta = empty(self.num_params)
        self._call(lib.tn_net_get_params, self._h, ptr(theta), theta.size)
        return theta

    def set_params(self, theta):
        """Replaces theta with a ``(P,)`` float64 array of finite values."""
        Dims().check("theta", theta, self.num_params)
        self._call(lib.tn_net_set_params, self._h, ptr(theta), theta.size)

    params = property(get_params, set_params, doc="theta, shape (P,): a copy when read.")

    def clone(self):
        """A deep copy (architecture, settings, theta) in the same context."""
        out = net_p()
        self._call(lib.tn_net_clone, self._h, byref(out))
        return type(self)._wrap(out, self._context)

    def __copy__(self):
        """``copy.copy`` and ``copy.deepcopy`` give a real clone (:meth:`clone`):
        a Network's state is all in C, so no copy could share it safely."""
        return self.clone()

    def __deepcopy__(self, memo):
        return self.clone()

    def save(self, path):
        """Writes the network to ``path`` (str or os.PathLike) atomically (a
        temporary file renamed over it).  StateError before init, FileError;
        ValueError for a path with a NUL character."""
        self._call(lib.tn_net_save, self._h, path_arg(path))

    # -- evaluation -------------------------------------------------------
    def _dims(self):
        return Dims(d=self.input_size, O=self.output_dim, P=self.num_params)

    def forward(self, x):
        """f(theta; x): x ``(n, d)`` -> ``(n, O)``."""
        dims = self._dims()
        dims.check("x", x, "n", "d")
        y = empty(dims["n"], dims["O"])
        self._call(lib.tn_net_forward, self._h, ptr(x), dims["n"], ptr(y))
        return y

    def jvp(self, x, tangent):
        """The Jacobian-vector product J(theta; x) tangent: x ``(n, d)``,
        tangent ``(P,)`` -> ``(n, O)``."""
        dims = self._dims()
        dims.check("x", x, "n", "d")
        dims.check("tangent", tangent, "P")
        out = empty(dims["n"], dims["O"])
        self._call(lib.tn_net_jvp, self._h, ptr(x), dims["n"], ptr(tangent), ptr(out))
        return out

    def vjp(self, x, cotangent):
        """The vector-Jacobian product sum_i J(theta; x_i)^T cotangent_i (no
        1/n): x ``(n, d)``, cotangent ``(n, O)`` -> ``(P,)``."""
        dims = self._dims()
        dims.check("x", x, "n", "d")
        dims.check("cotangent", cotangent, "n", "O")
        grad = empty(dims["P"])
        self._call(lib.tn_net_vjp, self._h, ptr(x), dims["n"], ptr(cotangent), ptr(grad))
        return grad
