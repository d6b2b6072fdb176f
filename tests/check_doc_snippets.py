#!/usr/bin/env python3
"""Compile and run every code block of the guide, docs/guide/*.md, so that the
guide and the library cannot drift apart.

usage: check_doc_snippets.py [--cc CC] [--cflags FLAGS] [--keep DIR]
                             SOURCE_ROOT LIBRARY INCLUDE_DIR

  SOURCE_ROOT  the repository (docs/guide/ and bindings/python/ are found there)
  LIBRARY      the built libtaylornet.so.0, or a build directory holding
               lib/libtaylornet.so.0
  INCLUDE_DIR  the directory of taylornet.h
  --cc         the C compiler command (default: $CC, else cc)
  --cflags     extra compiler flags, split like a shell (e.g. -fsanitize=address
               when the library was built with a sanitizer)
  --keep DIR   work in DIR and keep it, instead of a temporary directory

The rules for fenced code blocks in docs/guide/*.md (``` or ~~~ fences):

  ```c       A complete C11 program: it has main(), includes <taylornet.h> and
             whatever else it uses, and returns nonzero on failure.  It is
             compiled with CC -std=c11 -Wall -Wextra -Wpedantic -Werror
             -I INCLUDE_DIR, linked against LIBRARY and -lm, and run in a
             directory of its own (its current directory and $TMPDIR); it
             must exit with status 0 within 60 seconds.
  ```python  Run with PYTHONPATH=SOURCE_ROOT/bindings/python and
             TAYLORNET_LIBRARY=LIBRARY when SOURCE_ROOT/bindings/python/taylornet
             exists and a python3 that imports numpy is found; exit status 0
             within 60 seconds.  Otherwise the block is SKIPPED, which is not
             a pass.
  ```text    Output, or other text shown as is.  The one exemption: neither
             compiled nor run, and not counted as a snippet.
  anything else, including a fence without a language, is a FAILURE, so that
             nothing in the guide escapes checking.  Shell commands belong in
             inline code (`meson test -C build`), not in code blocks.

  indented   An indented code block (four spaces or a tab after a blank line,
             outside a list) is a FAILURE too: it would escape the rules above.

Output: one line per snippet, "PASS|FAIL|SKIP page.md:LINE detail" (LINE is
the line of the opening fence), the compiler's or the program's output under
a failure, and a summary line.  Exit status 1 if any snippet failed, if a
fence is not closed, or if there is no page at all.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TIMEOUT = 60
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s")
C_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]


class Block:
    def __init__(self, page, line, lang, code):
        self.page, self.line, self.lang, self.code = page, line, lang, code

    @property
    def where(self):
        return f"{self.page}:{self.line}"


def parse(path, name):
    """The fenced blocks of one Markdown file, and the errors of its fences."""
    blocks, errors = [], []
    lines = path.read_text(encoding="utf-8").splitlines()
    i, in_list = 0, False
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if not m:
            # An indented code block starts after a blank line, outside a list
            # (where indentation continues the item).
            if line.strip() and (line.startswith("    ") or line.startswith("\t")) \
                    and (i == 0 or not lines[i - 1].strip()) and not in_list:
                errors.append(f"{name}:{i + 1}: an indented code block: use a fenced block "
                              "(```c, ```python, or ```text for output)")
            if LIST_ITEM.match(line):
                in_list = True
            elif line.strip() and not line.startswith(" ") and not line.startswith("\t"):
                in_list = False
            i += 1
            continue
        in_list = False
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        start = i + 1
        lang = info.split()[0].lower() if info else ""
        body, i, closed = [], i + 1, False
        while i < len(lines):
            c = FENCE.match(lines[i])
            if c and c.group(2)[0] == fence[0] and len(c.group(2)) >= len(fence) \
                    and not c.group(3).strip():
                closed = True
                i += 1
                break
            line = lines[i]
            # Strip up to the opening fence's indentation (fences in lists).
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            i += 1
        if not closed:
            errors.append(f"{name}:{start}: the code block opened here is never closed")
        else:
            blocks.append(Block(name, start, lang, "\n".join(body) + "\n"))
    return blocks, errors


def find_library(arg):
    p = Path(arg).absolute()
    if p.is_file():
        return p
    for candidate in (p / "lib" / "libtaylornet.so.0", p / "libtaylornet.so.0"):
        if candidate.is_file():
            return candidate
    found = sorted(p.glob("**/libtaylornet.so.0")) if p.is_dir() else []
    if found:
        return found[0]
    sys.exit(f"check_doc_snippets: no libtaylornet.so.0 at {arg}")


def python_with_numpy():
    seen, candidates = set(), [sys.executable, shutil.which("python3"), "/usr/bin/python3"]
    for exe in candidates:
        if not exe or exe in seen or not os.path.exists(exe):
            continue
        seen.add(exe)
        r = subprocess.run([exe, "-c", "import numpy"], capture_output=True)
        if r.returncode == 0:
            return exe
    return None


def show(text, limit=60):
    """Indented tail of a program's output, for a failure report."""
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        lines = [f"... ({len(lines) - limit} lines omitted)"] + lines[-limit:]
    for line in lines:
        print("    " + line)


def run(cmd, cwd, env):
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return None, out + f"\n(killed after {TIMEOUT} s)"


def check_c(block, work, cc, cflags, library, include, env):
    if not re.search(r"#\s*include\s*<taylornet\.h>", block.code):
        return "FAIL", "does not #include <taylornet.h>", ""
    if not re.search(r"\bint\s+main\s*\(", block.code):
        return "FAIL", "has no int main(...): C blocks must be complete programs", ""
    src, exe = work / "snippet.c", work / "snippet"
    src.write_text(block.code, encoding="utf-8")
    cmd = cc + C_FLAGS + cflags + ["-I", str(include), str(src), "-o", str(exe), str(library),
                                   "-lm", "-Wl,-rpath," + str(library.parent)]
    rc, out = run(cmd, work, env)
    if rc != 0:
        return "FAIL", "does not compile: " + " ".join(shlex.quote(c) for c in cmd), out
    rc, out = run([str(exe)], work, env)
    if rc != 0:
        return "FAIL", f"exit status {rc}" if rc is not None else "timed out", out
    return "PASS", "C program", ""


def check_python(block, work, python, env):
    src = work / "snippet.py"
    src.write_text(block.code, encoding="utf-8")
    rc, out = run([python, str(src)], work, env)
    if rc != 0:
        return "FAIL", f"exit status {rc}" if rc is not None else "timed out", out
    return "PASS", "Python", ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cflags", default="")
    ap.add_argument("--keep", default=None)
    ap.add_argument("source_root")
    ap.add_argument("library")
    ap.add_argument("include_dir")
    a = ap.parse_args()

    root = Path(a.source_root).resolve()
    library = find_library(a.library)
    include = Path(a.include_dir).resolve()
    cc, cflags = shlex.split(a.cc), shlex.split(a.cflags)
    pages = sorted((root / "docs" / "guide").glob("*.md"))
    if not pages:
        print(f"FAIL no pages under {root / 'docs' / 'guide'}")
        return 1

    binding = root / "bindings" / "python" / "taylornet"
    python = python_with_numpy() if binding.is_dir() else None
    why_skip = ("no bindings/python/taylornet" if not binding.is_dir()
                else "no python3 that imports numpy")

    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(library.parent) + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    py_env = dict(env)
    py_env["PYTHONPATH"] = str(root / "bindings" / "python") + (
        ":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    py_env["TAYLORNET_LIBRARY"] = str(library)
    py_env["PYTHONDONTWRITEBYTECODE"] = "1"
    if any(f.startswith("-fsanitize=") and "address" in f for f in cflags):
        # python3 is not linked with the ASan runtime the library needs first.
        r = subprocess.run(cc + ["-print-file-name=libasan.so"], capture_output=True, text=True)
        if r.returncode == 0 and os.path.isabs(r.stdout.strip()):
            py_env["LD_PRELOAD"] = r.stdout.strip()
        py_env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")

    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    exempt, fence_errors = 0, []
    top = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="tn-doc-snippets-"))
    top.mkdir(parents=True, exist_ok=True)
    try:
        for page in pages:
            blocks, errors = parse(page, page.name)
            fence_errors += errors
            for b in blocks:
                if b.lang == "text":
                    exempt += 1
                    continue
                work = top / f"{page.stem}_{b.line}"
                work.mkdir(parents=True, exist_ok=True)
                env["TMPDIR"] = py_env["TMPDIR"] = str(work)
                out = ""
                if b.lang == "c":
                    status, detail, out = check_c(b, work, cc, cflags, library, include, env)
                elif b.lang == "python":
                    if python is None:
                        status, detail = "SKIP", f"Python ({why_skip})"
                    else:
                        status, detail, out = check_python(b, work, python, py_env)
                else:
                    status = "FAIL"
                    detail = (f"a code block in '{b.lang}', which is never checked: use c, "
                              "python, or text for output (shell commands: inline code)"
                              if b.lang else "a code block without a language: use c, python "
                              "or text")
                counts[status] += 1
                print(f"{status} docs/guide/{b.where} {detail}", flush=True)
                if status == "FAIL" and out:
                    show(out)
    finally:
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)
    for e in fence_errors:
        print(f"FAIL docs/guide/{e}")
    total = sum(counts.values())
    print(f"doc_snippets: {total} snippets in {len(pages)} page{'s' if len(pages) != 1 else ''}: "
          f"{counts['PASS']} passed, "
          f"{counts['FAIL']} failed, {counts['SKIP']} skipped; {exempt} text blocks exempt")
    return 1 if counts["FAIL"] or fence_errors else 0


if __name__ == "__main__":
    sys.exit(main())
