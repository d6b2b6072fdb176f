"""Finding the library, the prototypes of every header function, the version."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import taylornet as tn
from taylornet import _lib
from _support import PACKAGE_ROOT, header_path

LOADED = os.path.realpath(_lib.library_path) if os.path.exists(_lib.library_path) else None


def env_without_library(**extra):
    """The environment minus TAYLORNET_LIBRARY and the loader/pkg-config paths."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TAYLORNET_LIBRARY", "PKG_CONFIG_PATH", "LD_LIBRARY_PATH")}
    env.update(extra)
    return env


class Lookup(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def test_env_var_first_and_strict(self):
        bad = os.path.join(self.tmp, "nope.so")
        with self.assertRaises(ImportError) as cm:
            _lib.load_library({"TAYLORNET_LIBRARY": bad})
        self.assertIn("TAYLORNET_LIBRARY", str(cm.exception))
        self.assertIn(bad, str(cm.exception))

    @unittest.skipUnless(LOADED, "the library was not loaded by path")
    def test_env_var_path(self):
        cdll, origin = _lib.load_library({"TAYLORNET_LIBRARY": LOADED})
        self.assertEqual(origin, LOADED)
        self.assertEqual(_lib.declare(cdll, origin).tn_version_number(),
                         tn.library_version_number())

    def write_pc(self, libdir):
        with open(os.path.join(self.tmp, "taylornet.pc"), "w") as f:
            f.write(f"libdir={libdir}\nName: taylornet\nDescription: test\nVersion: 0.1.0\n"
                    "Libs: -L${libdir} -ltaylornet\n")

    @unittest.skipUnless(LOADED and shutil.which("pkg-config"), "needs pkg-config")
    def test_pkg_config_libdir(self):
        libdir = os.path.join(self.tmp, "lib")
        os.mkdir(libdir)
        os.symlink(LOADED, os.path.join(libdir, "libtaylornet.so.0"))
        self.write_pc(libdir)
        cdll, origin = _lib.load_library(env_without_library(PKG_CONFIG_PATH=self.tmp))
        self.assertEqual(origin, os.path.join(libdir, "libtaylornet.so.0"))

    @unittest.skipUnless(LOADED, "the library was not loaded by path")
    def test_system_loader(self):
        # LD_LIBRARY_PATH is read at process start: a child interpreter.
        libdir = os.path.join(self.tmp, "lib")
        os.mkdir(libdir)
        os.symlink(LOADED, os.path.join(libdir, "libtaylornet.so.0"))
        env = env_without_library(LD_LIBRARY_PATH=libdir, PKG_CONFIG_PATH=self.tmp,
                                  PYTHONPATH=PACKAGE_ROOT)
        code = "import taylornet as t; print(t.library_path, t.library_version())"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["libtaylornet.so.0", tn.library_version()])

    def test_nothing_found_lists_every_attempt(self):
        self.write_pc(os.path.join(self.tmp, "empty"))     # pkg-config points nowhere
        try:
            cdll, origin = _lib.load_library(env_without_library(PKG_CONFIG_PATH=self.tmp))
        except ImportError as e:
            text = str(e)
            self.assertIn("TAYLORNET_LIBRARY: not set", text)
            self.assertIn("pkg-config", text)
            self.assertIn("system loader", text)
        else:
            self.assertEqual(origin, "libtaylornet.so.0")   # installed system-wide


class FakeFunction:
    def __init__(self, value=0):
        self.value = value

    def __call__(self, *args):
        return self.value


class FakeLibrary:
    """Has tn_version_number/tn_version_string and nothing else."""

    def __init__(self, number):
        self.tn_version_number = FakeFunction(number)
        self.tn_version_string = FakeFunction(b"%d.%d.%d" % (number // 10000, number // 100 % 100,
                                                             number % 100))


class Prototypes(unittest.TestCase):

    @unittest.skipUnless(header_path(), "include/taylornet.h not found")
    def test_every_header_function_is_declared(self):
        with open(header_path()) as f:
            header = f.read()
        names = set(re.findall(r"^TN_API\b[^;(]*?\b(tn_\w+)\s*\(", header, re.M))
        self.assertGreater(len(names), 60)
        self.assertEqual(names, set(_lib.PROTOTYPES))
        for name in names:
            fn = getattr(_lib.lib, name)
            self.assertIsNotNone(fn.argtypes, name)

    @unittest.skipUnless(header_path(), "include/taylornet.h not found")
    def test_version_matches_header(self):
        with open(header_path()) as f:
            header = f.read()
        major, minor, patch = (int(re.search(rf"#define TN_VERSION_{p} (\d+)", header).group(1))
                               for p in ("MAJOR", "MINOR", "PATCH"))
        self.assertEqual(tn.library_version(), f"{major}.{minor}.{patch}")
        self.assertEqual(tn.library_version_number(), major * 10000 + minor * 100 + patch)
        self.assertEqual(tn.__version__, f"{major}.{minor}.{patch}")

    def test_other_major_version_refused(self):
        with self.assertRaises(ImportError) as cm:
            _lib.declare(FakeLibrary(10100), "fake")
        self.assertIn("1.1.0", str(cm.exception))
        self.assertIn("major", str(cm.exception))

    def test_missing_function_refused(self):
        with self.assertRaises(ImportError) as cm:
            _lib.declare(FakeLibrary(100), "fake")
        self.assertIn("has no tn_", str(cm.exception))

    def test_not_taylornet(self):
        with self.assertRaises(ImportError):
            _lib.declare(object(), "fake")

    def test_status_string(self):
        self.assertEqual(tn.status_string(tn.Status.OK), "ok")
        self.assertEqual(tn.status_string(tn.Status.SHAPE), "shape mismatch")
        for status in tn.Status:
            self.assertNotEqual(tn.status_string(status), "unknown status", status)
        self.assertEqual(tn.status_string(9999), "unknown status")


if __name__ == "__main__":
    unittest.main()
