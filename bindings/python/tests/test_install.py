"""Installing the binding: pip on any Python 3 with pip and numpy, nothing
else (no setuptools, no wheel package, no network), and a clear message when
numpy is missing.

Before the in-tree build backend (_build/taylornet_build.py), ``pip install``
needed setuptools *and* the wheel package in the build environment, and on a
Python without the latter (any venv made without Debian's site packages, or a
pyenv interpreter) failed with "invalid command 'bdist_wheel'".  The tests
below make exactly such environments: a venv with its own pip (ensurepip) and
nothing else, numpy made visible through a .pth file (a directory holding
only numpy), and install with ``--no-index`` (offline).
"""

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np

import taylornet as tn
from _support import PACKAGE_ROOT

sys.path.insert(0, os.path.join(PACKAGE_ROOT, "_build"))
import taylornet_build  # noqa: E402  (the backend, imported from its directory)


def _interpreters():
    """The Pythons to install with: this one, and python3 on PATH when it is
    another interpreter of the same version (numpy's extension modules are
    built for one ABI), e.g. a pyenv Python beside Debian's."""
    found = [sys.executable]
    other = shutil.which("python3")
    if other:
        try:
            out = subprocess.run([other, "-c", "import sys; print(sys.version_info[:2], "
                                  "sys.prefix)"], capture_output=True, text=True, timeout=60)
            same = out.stdout.startswith(str(tuple(sys.version_info[:2])))
            if same and os.path.realpath(other) != os.path.realpath(sys.executable):
                found.append(other)
        except (OSError, subprocess.SubprocessError):
            pass
    return found


def _has_venv(python):
    res = subprocess.run([python, "-c", "import venv, ensurepip"], capture_output=True,
                         timeout=60)
    return res.returncode == 0


class Wheel(unittest.TestCase):
    """The wheel the backend writes, checked as pip and installers read it."""

    def test_wheel_contents(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        name = taylornet_build.build_wheel(d)
        self.assertEqual(name, f"taylornet-{tn.__version__}-py3-none-any.whl")
        with zipfile.ZipFile(os.path.join(d, name)) as z:
            names = set(z.namelist())
            modules = {f"taylornet/{f}" for f in os.listdir(os.path.join(PACKAGE_ROOT, "taylornet"))
                       if f.endswith(".py")}
            self.assertLessEqual(modules, names)
            info = f"taylornet-{tn.__version__}.dist-info"
            meta = z.read(f"{info}/METADATA").decode()
            self.assertIn("Name: taylornet", meta)
            self.assertIn(f"Version: {tn.__version__}", meta)
            self.assertIn("Requires-Dist: numpy", meta)
            self.assertIn("Requires-Python: >=3.8", meta)
            self.assertIn("Root-Is-Purelib: true", z.read(f"{info}/WHEEL").decode())
            # RECORD lists every other file with its sha256 and size.
            record = z.read(f"{info}/RECORD").decode().splitlines()
            self.assertEqual({r.split(",")[0] for r in record}, names)
            for row in record:
                path, digest, size = row.split(",")
                if path.endswith("RECORD"):
                    continue
                data = z.read(path)
                want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                self.assertEqual(digest, "sha256=" + want.decode(), path)
                self.assertEqual(int(size), len(data), path)

    def test_metadata_without_tomllib(self):
        """Pythons before 3.11 have no tomllib: the small reader gives the
        same [project] table."""
        with open(os.path.join(PACKAGE_ROOT, "pyproject.toml"), encoding="utf-8") as f:
            text = f.read()
        mine = taylornet_build._read_project(text)
        try:
            import tomllib
        except ImportError:
            self.skipTest("no tomllib to compare with (Python < 3.11)")
        self.assertEqual(mine, tomllib.loads(text)["project"])


class PipInstall(unittest.TestCase):
    """pip install into bare venvs: no setuptools or wheel needed."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        # A directory with numpy alone in it, for a .pth file.
        self.numpy_site = os.path.join(self.dir, "numpy-only")
        os.mkdir(self.numpy_site)
        parent = os.path.dirname(os.path.dirname(np.__file__))
        for entry in os.listdir(parent):
            if entry == "numpy" or (entry.startswith("numpy-") and
                                    entry.endswith((".dist-info", ".egg-info"))):
                os.symlink(os.path.join(parent, entry), os.path.join(self.numpy_site, entry))

    def _venv(self, python, tag, with_numpy):
        env_dir = os.path.join(self.dir, tag)
        subprocess.run([python, "-m", "venv", env_dir], check=True, capture_output=True,
                       timeout=300)
        py = os.path.join(env_dir, "bin", "python")
        if with_numpy:
            site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                   "['purelib'])"], check=True, capture_output=True, text=True,
                                  timeout=60).stdout.strip()
            with open(os.path.join(site, "numpy-only.pth"), "w", encoding="utf-8") as f:
                f.write(self.numpy_site + "\n")
        return py

    def _pip(self, py, *args):
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        env.pop("PYTHONPATH", None)
        return subprocess.run([py, "-m", "pip", "install", "--no-index", *args], env=env,
                              capture_output=True, text=True, timeout=600)

    def test_install_with_nothing_but_pip_and_numpy(self):
        for i, python in enumerate(_interpreters()):
            with self.subTest(python=python):
                if not _has_venv(python):
                    self.skipTest(f"{python} has no venv/ensurepip (Debian: python3-venv)")
                py = self._venv(python, f"env{i}", with_numpy=True)
                # The bare venv has no wheel package: the old setuptools build
                # failed here with "invalid command 'bdist_wheel'".
                probe = subprocess.run([py, "-c", "import wheel"], capture_output=True)
                self.assertNotEqual(probe.returncode, 0, "the venv is not bare")
                for flags in ([], ["--no-build-isolation"]):
                    res = self._pip(py, *flags, PACKAGE_ROOT)
                    self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
                # Installed outside the source tree, and it works.
                env = dict(os.environ)
                env.pop("PYTHONPATH", None)
                out = subprocess.run(
                    [py, "-c", "import taylornet as t, numpy as np; "
                     "c = t.Context(); n = t.Network.mlp(c, 3, [4, 2], 'relu', seed=1); "
                     "print(t.__file__); print(n.forward(np.zeros((1, 3))).shape)"],
                    env=env, cwd=self.dir, capture_output=True, text=True, timeout=120)
                self.assertEqual(out.returncode, 0, out.stderr)
                path, shape = out.stdout.split()[:2]
                self.assertTrue(path.startswith(os.path.join(self.dir, f"env{i}")), path)
                self.assertEqual(shape, "(1,")

    def test_missing_numpy_is_named(self):
        python = sys.executable
        if not _has_venv(python):
            self.skipTest(f"{python} has no venv/ensurepip (Debian: python3-venv)")
        py = self._venv(python, "bare", with_numpy=False)
        res = self._pip(py, PACKAGE_ROOT)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("numpy", res.stdout + res.stderr)
        # Installed without its dependency, the import says what is missing.
        res = self._pip(py, "--no-deps", PACKAGE_ROOT)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        out = subprocess.run([py, "-c", "import taylornet"], env=env, cwd=self.dir,
                             capture_output=True, text=True, timeout=120)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("taylornet needs numpy", out.stderr)


if __name__ == "__main__":
    unittest.main()
