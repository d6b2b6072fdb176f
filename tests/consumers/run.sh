#!/usr/bin/env bash
# tests/consumers/run.sh PREFIX -- build and run the consumer programs
# against a libtaylornet installed under PREFIX (by `meson install`), the way
# a user would: the compiler flags come only from `pkg-config taylornet`.
#
# Prints one line per consumer, "PASS consumer-c" or "FAIL consumer-c: why",
# and exits nonzero if any failed.  CC and CXX choose the compilers (default
# cc and c++); the programs are built in a temporary directory, outside any
# build tree.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 INSTALL-PREFIX" >&2
    exit 2
fi
if [[ ! -d "$1" ]]; then
    echo "FAIL consumers: install prefix '$1' is not a directory"
    exit 1
fi
prefix="$(cd "$1" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cc="${CC:-cc}"
cxx="${CXX:-c++}"

# The libdir meson chose: lib/x86_64-linux-gnu on Debian, lib or lib64
# elsewhere.  Found from where taylornet.pc was installed.
shopt -s nullglob
pcs=("$prefix"/lib*/pkgconfig/taylornet.pc "$prefix"/lib*/*/pkgconfig/taylornet.pc)
shopt -u nullglob
if ((${#pcs[@]} != 1)); then
    echo "FAIL consumers: expected one taylornet.pc in $prefix/lib*/[*/]pkgconfig, found ${#pcs[@]}"
    exit 1
fi
pc="${pcs[0]}"
pcdir="$(dirname "$pc")"
libdir="$(dirname "$pcdir")"
export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

work="$(mktemp -d "${TMPDIR:-/tmp}/tn-consumers.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! flags="$(pkg-config --cflags --libs taylornet 2>"$work/pkg-config.err")"; then
    echo "FAIL consumers: pkg-config --cflags --libs taylornet: $(cat "$work/pkg-config.err")"
    exit 1
fi
echo "pkg-config --cflags --libs taylornet: $flags"

failed=0
# consumer NAME COMPILER STD SOURCE
consumer() {
    local name="$1" compiler="$2" std="$3" src="$4" exe="$work/$1"
    # Word splitting of $flags is intended: it is a list of compiler flags.
    # shellcheck disable=SC2086
    if ! "$compiler" "-std=$std" -Wall -Wextra -Wpedantic -Werror -o "$exe" "$here/$src" \
            $flags -lm >"$work/$name.build" 2>&1; then
        echo "FAIL $name: does not compile:"
        sed 's/^/    /' "$work/$name.build"
        failed=$((failed + 1))
        return
    fi
    # It must load the installed library, not some other copy.
    local loaded
    loaded="$(LD_LIBRARY_PATH="$libdir" ldd "$exe" | awk '/libtaylornet\.so/ {print $3}')"
    if [[ "$(dirname "$loaded" 2>/dev/null)" != "$libdir" ]]; then
        echo "FAIL $name: loads '$loaded', not the library in $libdir"
        failed=$((failed + 1))
        return
    fi
    if LD_LIBRARY_PATH="$libdir" "$exe" >"$work/$name.out" 2>&1 &&
            [[ "$(tail -n 1 "$work/$name.out")" == "OK" ]]; then
        echo "PASS $name"
    else
        echo "FAIL $name: run failed:"
        sed 's/^/    /' "$work/$name.out"
        failed=$((failed + 1))
    fi
}

consumer consumer-c "$cc" c11 consumer.c
consumer consumer-cpp "$cxx" c++11 consumer.cpp
exit $((failed > 0))
