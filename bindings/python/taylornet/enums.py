"""The C API's enumerations as :class:`enum.IntEnum` classes.

Every value is the one in ``taylornet.h``; member names drop the C prefix
(``TN_ACT_RELU`` is ``Activation.RELU``, ``TN_E_SHAPE`` is ``Status.SHAPE``).
The values are part of the library's ABI and never change; the test suite
checks these classes against the header.
"""

from enum import IntEnum

__all__ = [
    "Status", "Activation", "Padding", "NetParam", "Parameterization", "NTKParam", "NTKMethod",
    "NTKOutputs", "PredictorParam", "PredTime", "GPParam", "TrainParam", "Loss",
    "Optimizer", "TrainStat", "RegretSolver", "RegretInfo",
]


class Status(IntEnum):
    """``tn_status``: what every fallible C function returns."""
    OK = 0
    INVALID_ARG = 1
    SHAPE = 2
    NOMEM = 3
    STATE = 4
    NUMERIC = 5
    IO = 6
    FORMAT = 7
    VERSION = 8
    UNSUPPORTED = 9
    MISUSE = 10
    CANCELLED = 11


class Activation(IntEnum):
    """``tn_activation``: elementwise activations (:meth:`Network.add_activation`)."""
    IDENTITY = 0
    RELU = 1
    LEAKY_RELU = 2
    TANH = 3
    SIGMOID = 4
    ERF = 5
    GELU = 6
    SOFTPLUS = 7


class Padding(IntEnum):
    """``tn_padding``: window padding of :meth:`Network.add_conv2d` and
    :meth:`Network.add_avg_pool2d`."""
    VALID = 0
    SAME = 1


class NetParam(IntEnum):
    """``tn_net_param``: network settings (:meth:`Network.set`)."""
    PARAMETERIZATION = 100
    SIGMA_W = 101
    SIGMA_B = 102
    LEAKY_SLOPE = 103


class Parameterization(IntEnum):
    """Values of ``NetParam.PARAMETERIZATION`` (``TN_PARAM_*``)."""
    NTK = 0
    STANDARD = 1


class NTKParam(IntEnum):
    """``tn_ntk_param``: settings of an :class:`NTK`."""
    METHOD = 100
    OUTPUTS = 101
    MEMORY_BUDGET = 102


class NTKMethod(IntEnum):
    """Values of ``NTKParam.METHOD`` (``TN_NTK_AUTO`` ...)."""
    AUTO = 0
    STRUCTURED = 1
    JACOBIAN = 2
    VECTOR_PRODUCTS = 3


class NTKOutputs(IntEnum):
    """Values of ``NTKParam.OUTPUTS``: the traced (n1, n2) or full (n1 O, n2 O) kernel."""
    TRACE = 0
    FULL = 1


class PredictorParam(IntEnum):
    """``tn_predictor_param``: settings of a :class:`Predictor`."""
    LEARNING_RATE = 100
    DIAG_REG = 101
    TIME = 102


class PredTime(IntEnum):
    """Values of ``PredictorParam.TIME``: discrete gradient-descent steps or flow time."""
    STEPS = 0
    FLOW = 1


class GPParam(IntEnum):
    """``tn_gp_param``: settings of a :class:`GP`."""
    DIAG_REG = 100
    LEARNING_RATE = 101


class TrainParam(IntEnum):
    """``tn_train_param``: settings of a :class:`Trainer`."""
    LOSS = 100
    OPTIMIZER = 101
    LEARNING_RATE = 102
    MOMENTUM = 103
    BETA1 = 104
    BETA2 = 105
    EPSILON = 106
    WEIGHT_DECAY = 107
    CLIP_NORM = 108
    ORDER = 200
    REEXPAND_EVERY = 201
    OUTPUT_SCALE = 300
    CENTERED = 301
    DIAGNOSTICS = 400
    RECORD_TAYLOR = 401
    REGRET_MEMORY = 402
    REGRET_TOLERANCE = 403
    REGRET_MAX_ITERATIONS = 404
    REGRET_SOLVER = 405


class Loss(IntEnum):
    """Values of ``TrainParam.LOSS`` (``TN_LOSS_*``)."""
    MSE = 0
    SOFTMAX_XENT = 1


class Optimizer(IntEnum):
    """Values of ``TrainParam.OPTIMIZER`` (``TN_OPT_*``)."""
    SGD = 0
    MOMENTUM = 1
    NESTEROV = 2
    RMSPROP = 3
    ADAM = 4


class TrainStat(IntEnum):
    """``tn_train_stat``: statistics of a trainer's last step (:meth:`Trainer.stat`)."""
    LOSS = 0
    TAYLOR_PREDICTED = 1
    LOSS_REACHED = 2
    PATTERN_CHANGE_STEP = 3
    PATTERN_CHANGE_INIT = 4
    GRAD_NORM = 5
    CONFIGS_VISITED = 6
    UNITS_EVER_SWITCHED = 7


class RegretSolver(IntEnum):
    """Values of ``TrainParam.REGRET_SOLVER`` (``TN_REGRET_AUTO`` ...): how
    :meth:`Trainer.regret` minimizes the sum of the Taylor losses."""
    AUTO = 0
    DIRECT = 1
    LSQR = 2
    NEWTON_CG = 3


class RegretInfo(IntEnum):
    """``tn_regret_info``: numbers about the Taylor record and the last regret
    solve (:meth:`Trainer.regret_info`)."""
    STEPS = 0
    BYTES = 1
    LOSS_SUM = 2
    SOLVED_STEPS = 3
    VALUE = 4
    OPTIMUM = 5
    SOLVER_USED = 6
    ITERATIONS = 7
    NEWTON_STEPS = 8
    ACCURACY = 9
