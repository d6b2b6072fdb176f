#!/usr/bin/env python3
"""The library exports exactly the names of its version script, and those are
exactly the functions the public header marks TN_API.

usage: check_symbols.py LIBRARY MAPFILE HEADER
"""
import re
import subprocess
import sys


def exported(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW":
            names.add(parts[2].split("@")[0])
    return names


def listed(mapfile):
    text = re.sub(r"/\*.*?\*/", "", open(mapfile).read(), flags=re.S)
    body = re.search(r"global:(.*?)local:", text, re.S).group(1)
    return {n.strip() for n in body.split(";") if n.strip()}


def declared(header):
    text = re.sub(r"/\*.*?\*/", "", open(header).read(), flags=re.S)
    return set(re.findall(r"TN_API\b[^;(]*?\b(tn_[a-z0-9_]+)\s*\(", text))


def main():
    library, mapfile, header = sys.argv[1:4]
    exp, lst, dec = exported(library), listed(mapfile), declared(header)
    problems = []
    for what, a, b in (("exported but not in the version script", exp, lst),
                       ("in the version script but not exported", lst, exp),
                       ("in the version script but not declared TN_API", lst, dec),
                       ("declared TN_API but not in the version script", dec, lst)):
        extra = sorted(a - b)
        if extra:
            problems.append("%s: %s" % (what, ", ".join(extra)))
    not_tn = sorted(n for n in exp if not n.startswith("tn_"))
    if not_tn:
        problems.append("exported names outside tn_*: " + ", ".join(not_tn))
    for p in problems:
        print("check_symbols: " + p)
    print("check_symbols: %d exported, %d in the version script, %d declared"
          % (len(exp), len(lst), len(dec)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
