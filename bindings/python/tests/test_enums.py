"""The IntEnum classes have exactly the header's names and values."""

import re
import unittest

import taylornet as tn
from _support import header_path

# typedef'd enums by name; anonymous ones by their first enumerator.
BY_TYPEDEF = {
    "tn_status": tn.Status, "tn_activation": tn.Activation, "tn_net_param": tn.NetParam,
    "tn_padding": tn.Padding,
    "tn_ntk_param": tn.NTKParam, "tn_predictor_param": tn.PredictorParam,
    "tn_gp_param": tn.GPParam, "tn_train_param": tn.TrainParam, "tn_train_stat": tn.TrainStat,
    "tn_regret_info": tn.RegretInfo,
}
BY_FIRST = {
    "TN_PARAM_NTK": tn.Parameterization, "TN_NTK_AUTO": tn.NTKMethod,
    "TN_NTK_TRACE": tn.NTKOutputs, "TN_PRED_STEPS": tn.PredTime, "TN_LOSS_MSE": tn.Loss,
    "TN_OPT_SGD": tn.Optimizer, "TN_REGRET_AUTO": tn.RegretSolver,
}


def header_enums(text):
    """[(typedef name or None, {C name: value})] of every enum in the header."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    found = []
    for m in re.finditer(r"(typedef\s+)?enum\s*(\w*)\s*\{(.*?)\}", text, re.S):
        values = dict((name, int(value)) for name, value in
                      re.findall(r"(TN_\w+)\s*=\s*(-?\d+)", m.group(3)))
        found.append((m.group(2) or None, values))
    return found


def strip_prefix(names):
    """TN_ACT_RELU, TN_ACT_TANH -> RELU, TANH (the longest common _-prefix);
    TN_OK / TN_E_* -> OK / *."""
    names = list(names)
    if "TN_OK" in names:
        return {n: "OK" if n == "TN_OK" else n[len("TN_E_"):] for n in names}
    parts = [n.split("_") for n in names]
    k = 0
    while all(len(p) > k + 1 and p[k] == parts[0][k] for p in parts):
        k += 1
    if len(names) == 1:
        k = 2
    return {n: "_".join(p[k:]) for n, p in zip(names, parts)}


@unittest.skipUnless(header_path(), "include/taylornet.h not found")
class EnumsMatchHeader(unittest.TestCase):

    def test_every_enum(self):
        with open(header_path()) as f:
            enums = header_enums(f.read())
        seen = set()
        for typedef, values in enums:
            cls = BY_TYPEDEF.get(typedef) if typedef else BY_FIRST.get(next(iter(values)))
            with self.subTest(enum=typedef or next(iter(values))):
                self.assertIsNotNone(cls, f"no Python enum for {typedef or values}")
                want = {strip_prefix(values)[n]: v for n, v in values.items()}
                self.assertEqual({m.name: m.value for m in cls}, want)
                seen.add(cls)
        self.assertEqual(seen, set(BY_TYPEDEF.values()) | set(BY_FIRST.values()))

    def test_exported_from_package(self):
        for cls in list(BY_TYPEDEF.values()) + list(BY_FIRST.values()):
            self.assertIs(getattr(tn, cls.__name__), cls)
            self.assertIn(cls.__name__, tn.__all__)


if __name__ == "__main__":
    unittest.main()
