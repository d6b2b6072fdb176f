"""PEP 517 build backend of the taylornet binding, standard library only.

The package is pure Python, so a wheel is a zip of ``taylornet/*.py`` and a
``.dist-info`` directory; writing it needs neither setuptools nor the
``wheel`` package (whose absence made ``pip install`` fail with "invalid
command 'bdist_wheel'" on Pythons other than Debian's).  The metadata comes
from ``pyproject.toml`` ([project]), read with ``tomllib`` where the Python
has it (3.11+) and with a small reader of the few keys used here otherwise.

Hooks: build_wheel, build_sdist, build_editable (PEP 660: a ``.pth`` file
pointing at this directory), their get_requires_* (nothing) and
prepare_metadata_for_build_wheel.
"""

import base64
import hashlib
import io
import os
import re
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # bindings/python
PACKAGE = "taylornet"
TAG = "py3-none-any"

if sys.version_info < (3, 8):
    raise RuntimeError("taylornet needs Python 3.8 or newer; this is " + sys.version.split()[0])


# ---- pyproject.toml ---------------------------------------------------------

def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        raw = f.read()
    try:
        import tomllib                       # Python 3.11+
        return tomllib.loads(raw.decode("utf-8"))["project"]
    except ImportError:
        return _read_project(raw.decode("utf-8"))


def _read_project(text):
    """The [project] table of this file's pyproject.toml: string values,
    arrays of strings, and an inline table of strings (its license)."""
    project, section = {}, None
    lines = iter(text.splitlines())
    for line in lines:
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        if section != "project" or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if value.startswith("[") and not value.endswith("]"):
            for more in lines:
                value += more.strip()
                if more.strip().endswith("]"):
                    break
        if value.startswith("["):
            project[key] = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        elif value.startswith("{"):
            project[key] = dict(re.findall(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"', value))
        else:
            project[key] = value.strip('"')
    return project


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p['description']}"]
    lic = p.get("license", {})
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    lines.append(f"Requires-Python: {p['requires-python']}")
    lines += [f"Classifier: {c}" for c in p.get("classifiers", [])]
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    body = ""
    readme = p.get("readme")
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return p["name"], p["version"], "\n".join(lines) + "\n\n" + body


def _dist_info(name, version):
    return f"{name}-{version}.dist-info"


def _wheel_file():
    return f"Wheel-Version: 1.0\nGenerator: taylornet_build\nRoot-Is-Purelib: true\nTag: {TAG}\n"


# ---- wheels -----------------------------------------------------------------

class _Wheel:
    """A wheel being written: every file recorded in RECORD with its hash."""

    def __init__(self, path):
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.records = []

    def add(self, arcname, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))   # reproducible
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append(f"{arcname},sha256={digest},{len(data)}")

    def close(self, dist_info):
        record = f"{dist_info}/RECORD"
        self.records.append(f"{record},,")
        info = zipfile.ZipInfo(record, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, "\n".join(self.records) + "\n")
        self.zip.close()


def _sources():
    """The package's modules, relative to ROOT, sorted."""
    pkg = os.path.join(ROOT, PACKAGE)
    return sorted(os.path.join(PACKAGE, f) for f in os.listdir(pkg) if f.endswith(".py"))


def _build(wheel_directory, editable):
    name, version, metadata = _metadata()
    dist_info = _dist_info(name, version)
    filename = f"{name}-{version}-{TAG}.whl"
    wheel = _Wheel(os.path.join(wheel_directory, filename))
    if editable:
        wheel.add(f"__editable__.{name}.pth", ROOT + "\n")
    else:
        for rel in _sources():
            with open(os.path.join(ROOT, rel), "rb") as f:
                wheel.add(rel.replace(os.sep, "/"), f.read())
    wheel.add(f"{dist_info}/METADATA", metadata)
    wheel.add(f"{dist_info}/WHEEL", _wheel_file())
    wheel.add(f"{dist_info}/top_level.txt", PACKAGE + "\n")
    wheel.close(dist_info)
    return filename


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name, version, metadata = _metadata()
    dist_info = _dist_info(name, version)
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    for fname, text in (("METADATA", metadata), ("WHEEL", _wheel_file())):
        with open(os.path.join(metadata_directory, dist_info, fname), "w", encoding="utf-8") as f:
            f.write(text)
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    name, version, metadata = _metadata()
    base = f"{name}-{version}"
    filename = f"{base}.tar.gz"
    files = ["pyproject.toml", "README.md", os.path.join("_build", "taylornet_build.py")]
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        for rel in files + _sources():
            tar.add(os.path.join(ROOT, rel), arcname=f"{base}/{rel}")
        data = metadata.encode("utf-8")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return filename
