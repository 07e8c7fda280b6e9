#!/bin/bash
# On a lent GPU machine, from the repository root with .gpu/ carried
# (bench/gpu-pack.sh made it here): unpack the tools, find the CUDA
# libraries, then bench/gpu-check.sh (parity tests, hd-train cpu vs cuda on
# the tiny fixture, compute-sanitizer) and bench/gpu-bench.sh (speed and
# memory), results under OUT (the device tool's $OUT, default gpu-out):
#
#   bash bench/gpu-run.sh [all|check|bench] [PARTS]   (default: all; PARTS
#   as gpu-bench.sh takes them)
set -uo pipefail
D=${OUT:-gpu-out}
mkdir -p "$D"
tar -xJf .gpu/pack.tar.xz || exit 1
export LD_LIBRARY_PATH=$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# the binaries' rpath is /usr/local/cuda/lib64 (cuBLAS is opened from
# there on first use, kernels/cuda/cublas_lazy.c); add where else it lives
if [ ! -e /usr/local/cuda/lib64/libcublas.so.13 ] || ! ldd bin/hd-train | grep -q 'libcudart.so.13 => /'; then
    for d in $(find /usr/local /usr/lib /opt -name 'libcublas.so.13' -printf '%h\n' 2> /dev/null | sort -u); do
        LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d
    done
    for d in $(find /usr/local /usr/lib /opt -name 'libcudart.so.13' -printf '%h\n' 2> /dev/null | sort -u); do
        LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d
    done
fi
export PATH=$PATH:/usr/local/cuda/bin
for tool in compute-sanitizer ncu; do
    command -v $tool > /dev/null ||
        PATH=$PATH:$(dirname "$(find /usr/local /opt -name $tool -type f -perm -u+x 2> /dev/null | head -1)" 2> /dev/null)
done
{ uname -a; nvidia-smi -L; command -v compute-sanitizer ncu; ldd bin/hd-train | grep -e 'not found' -e cudart -e openblas; } > "$D/env.txt" 2>&1
status=0
what=${1:-all}
# the parity tests first, the benchmarks next, compute-sanitizer (the
# slowest) last, so that a short lease gets the most out of its time
if [ "$what" = all ] || [ "$what" = check ]; then
    bash bench/gpu-check.sh "$D/check" tests || status=1
fi
if [ "$what" = all ] || [ "$what" = bench ]; then
    bash bench/gpu-bench.sh "$D" "${2:-smol llama8b}" || status=1
fi
if [ "$what" = all ] || [ "$what" = check ]; then
    bash bench/gpu-check.sh "$D/check" sanitizer || status=1
fi
exit $status
