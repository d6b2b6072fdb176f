#!/usr/bin/env bash
# run_check.sh -- runs a distributed program with mpirun on NP ranks, as a
# cluster user would, then compares its results with one process.
#
#   run_check.sh NP MPIRUN PROGRAM CHECKER KIND OUTDIR [ARGS...]
#       mpirun -np NP PROGRAM ARGS --out OUTDIR, then CHECKER KIND ARGS --in OUTDIR
#       (mpi_check); prints one PASS/FAIL line for the run and one per comparison
#   run_check.sh --expect-failure PATTERN NP MPIRUN PROGRAM [ARGS...]
#       the job must end by itself (not hang: it is killed after the timeout),
#       with a nonzero status and PATTERN (an extended regex) in its output
#
# Exit status 1 when anything failed.  Used by the meson tests (suite mpi)
# and by .ci/run.
#
# For a container or a laptop, each of these is set unless already set:
# running as root allowed (OMPI_ALLOW_RUN_AS_ROOT), more ranks than cores
# (rmaps_base_oversubscribe), shared memory and loopback only (btl self,vader;
# pml ob1, so UCX does not probe network devices; oob over lo), and no
# single-copy mechanism that needs ptrace rights (vader CMA).  On a cluster
# use mpirun directly with a hostfile: docs/distributed.md.
set -uo pipefail

expect=""
if [[ "${1:-}" == "--expect-failure" ]]; then
    expect="$2"
    shift 2
fi
if (($# < 4)) || { [[ -z "$expect" ]] && (($# < 6)); }; then
    sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
np="$1" mpirun="$2" program="$3"
shift 3
name="$(basename "$program")"
timeout_s="${MPI_CHECK_TIMEOUT:-300}"

export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"
export OMPI_MCA_btl="${OMPI_MCA_btl:-self,vader}"
export OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
export OMPI_MCA_oob_tcp_if_include="${OMPI_MCA_oob_tcp_if_include:-lo}"
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
# One BLAS thread per rank unless asked otherwise: R ranks share the cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" BLIS_NUM_THREADS="${BLIS_NUM_THREADS:-1}"

log="$(mktemp "${TMPDIR:-/tmp}/run_check.XXXXXX")"
trap 'rm -f "$log"' EXIT

if [[ -n "$expect" ]]; then
    rc=0
    start=$SECONDS
    timeout -k 10 "$timeout_s" "$mpirun" -np "$np" "$program" "$@" >"$log" 2>&1 || rc=$?
    cat "$log"
    if ((rc == 124 || rc == 137)); then
        echo "FAIL $name $*: still running after ${timeout_s} s (a hang), killed"
        exit 1
    elif ((rc == 0)); then
        echo "FAIL $name $*: exited with status 0, a failure was expected"
        exit 1
    elif ! grep -Eq -- "$expect" "$log"; then
        echo "FAIL $name $*: status $rc, but no '$expect' in its output"
        exit 1
    fi
    echo "PASS $name $*: the job ended in $((SECONDS - start)) s with status $rc and the message"
    exit 0
fi

checker="$1" kind="$2" out="$3"
shift 3
mkdir -p "$out"
rc=0
start=$SECONDS
timeout -k 10 "$timeout_s" "$mpirun" -np "$np" "$program" "$@" --out "$out" || rc=$?
if ((rc != 0)); then
    echo "FAIL mpirun -np $np $name $*: exit status $rc"
    exit 1
fi
echo "PASS mpirun -np $np $name $* ($((SECONDS - start)) s)"
"$checker" "$kind" "$@" --in "$out"
