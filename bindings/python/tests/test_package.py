"""The package as users get it: pip installs it offline, the README's example runs."""

import contextlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import taylornet as tn
from _support import PACKAGE_ROOT


def have(module):
    return importlib.util.find_spec(module) is not None


class Package(unittest.TestCase):

    @unittest.skipUnless(have("pip"), "needs pip (the build itself needs nothing more)")
    def test_pip_install_offline(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        # From a copy: what pip sees is what a source distribution holds.
        src = os.path.join(tmp, "src")
        shutil.copytree(PACKAGE_ROOT, src,
                        ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                      "__pycache__"))
        target = os.path.join(tmp, "site")
        out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index",
                              "--no-deps", "--disable-pip-version-check",
                              "--quiet", "--target", target, src],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertFalse(os.path.exists(os.path.join(target, "tests")))
        env = dict(os.environ, PYTHONPATH=target, TAYLORNET_LIBRARY=tn.library_path)
        code = ("import taylornet as t, numpy as np; print(t.__file__); "
                "c = t.Context(); n = t.Network.mlp(c, 2, [3, 1], seed=1); "
                "print(n.forward(np.zeros((1, 2))).shape)")
        run = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        where, shape = run.stdout.split("\n")[:2]
        self.assertTrue(where.startswith(target), where)
        self.assertEqual(shape, "(1, 1)")

    def test_readme_example(self):
        with open(os.path.join(PACKAGE_ROOT, "README.md")) as f:
            blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M)
        self.assertTrue(blocks)
        for code in blocks:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
            m = re.search(r"closed form vs trained: (\S+)", out.getvalue())
            if m:
                self.assertLess(float(m.group(1)), 1e-9)


if __name__ == "__main__":
    unittest.main()
