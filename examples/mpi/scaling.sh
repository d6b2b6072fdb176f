#!/usr/bin/env bash
# scaling.sh -- 1 -> R rank timings of the distributed programs, the figures
# of docs/distributed.md.
#
#   examples/mpi/scaling.sh [BUILD_DIR [R [REPEATS]]]     (default build 2 1)
#
# Runs, on 1 and on R ranks (mpirun on this machine, with run_check.sh's
# settings): the empirical NTK of N = 2000 inputs of dimension 784 for a
# 784-512-512-10 ReLU MLP (ntk_mpi); the closed form on N = 1500 (pdsyevd,
# pdpotrf, the NNGP mean; predict_mpi); and 16 data-parallel steps of batch
# 512 for that MLP, full and linearized (train_mpi).  Prints, per phase, the
# wall-clock seconds and the CPU seconds summed over ranks.  On a machine
# shared with other jobs wall-clock time moves with their load: compare the
# CPU seconds (the work done, busy-waiting in MPI included) and repeat.
set -euo pipefail
build="${1:-build}"
R="${2:-2}"
repeats="${3:-1}"
dir="$build/examples/mpi"
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"
export OMPI_MCA_btl="${OMPI_MCA_btl:-self,vader}"
export OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
export OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1

mlp=(--d 784 --width 512 --depth 2 --outputs 10)
echo "scaling.sh: $(nproc --all) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for rep in $(seq "$repeats"); do
    for np in 1 "$R"; do
        echo "== $np rank(s), run $rep"
        mpirun -np "$np" "$dir/ntk_mpi" --n 2000 --m 0 "${mlp[@]}" |
            grep -E '^empirical NTK: entries' | sed 's/^/ntk_mpi N=2000: /'
        mpirun -np "$np" "$dir/predict_mpi" --n 1500 --m 500 --d 784 --width 128 --outputs 10 \
            --times 100,inf | grep -E 'pdsyevd|^predict_mpi: seconds' | sed 's/^/predict_mpi N=1500: /'
        mpirun -np "$np" "$dir/train_mpi" --n 8192 --batch 512 --epochs 1 "${mlp[@]}" \
            --modes full,linearized | grep -E 'steps in' | sed 's/^/train_mpi B=512: /'
    done
done
