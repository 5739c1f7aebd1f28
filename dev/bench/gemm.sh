#!/bin/sh
# Benchmarks kernels/gemm.h against OpenBLAS on GPT-2 124M's linear layers.
#   sh dev/bench/gemm.sh [B T [filter]]   (default B=4 T=64; filter: products whose name contains it)
# Needs Debian's libopenblas-dev + libopenblas0-pthread (only this benchmark links OpenBLAS).
# OpenBLAS picks its kernels by CPU detection: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides
# from the environment are dropped for this run; the core it picked is printed.
set -e
cd "$(dirname "$0")/../.."
mkdir -p dev/bench/out
if ! pkg-config --exists openblas 2>/dev/null; then
  echo "error: OpenBLAS not found. Install: apt-get install -y libopenblas-dev libopenblas0-pthread" >&2; exit 1
fi
${CC:-gcc} -O3 -std=gnu11 -Wall -Wextra -Wno-unused-function -fopenmp $(pkg-config --cflags openblas) \
  -o dev/bench/out/gemm_bench dev/bench/gemm_bench.c $(pkg-config --libs openblas) -lm
THREADS=${THREADS:-2}
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS \
  dev/bench/out/gemm_bench "$@"
