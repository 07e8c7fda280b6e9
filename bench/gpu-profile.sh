#!/bin/bash
# Where the GPU training step's time goes: hd-train --device cuda under
# Nsight Compute, each kernel's duration summed per kernel name
# (bench/ncu_sum.py), for a few steps:
#
#   bash bench/gpu-profile.sh MODEL ACTS [hd-train options...] > SUMMARY
#
# STEPS (default 3) steps, b 16, Lh 8 unless the options say otherwise.  ncu
# serialises the kernels and adds its own time between them, so the wall
# clock here means nothing: set the GPU time it reports beside the step's
# seconds measured without it (bench/gpu-bench.sh).  A GPU time far below
# the step time says the step waits on the host (launches, copies, the
# CPU's share), not on the GPU.
set -uo pipefail
M=${1:?usage: gpu-profile.sh MODEL ACTS [hd-train options...]}
A=${2:?usage: gpu-profile.sh MODEL ACTS [hd-train options...]}
shift 2
STEPS=${STEPS:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
if ! ${NCU:-ncu} --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$W/ncu.csv" \
    bin/hd-train -m "$M" --device cuda -c "$W/ckpt" -b 16 --hyper-layers 8 --max-steps "$STEPS" \
    --save-every 0 --eval-every 100000 "$@" -o "$W/log" "$A" > "$W/out" 2>&1; then
    echo "gpu-profile: ncu or hd-train failed:"; tail -c 2000 "$W/out"; tail -c 2000 "$W/ncu.csv"
    exit 1
fi
echo "gpu-profile: hd-train $* ($STEPS steps) under ncu"
python3 bench/ncu_sum.py "$W/ncu.csv" "$STEPS"
