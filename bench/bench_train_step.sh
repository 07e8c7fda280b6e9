#!/bin/bash
# One HyperDAS training step on SmolLM2, side by side in one run: hd-train (C)
# on real acts records, then the PyTorch reference (bench_train_step_torch.py)
# on a random batch of the same shape (b, and the median padded lengths E, B,
# S of the C run's batches), same thread count, same hypernetwork.
#
#   bash bench/bench_train_step.sh ACTS [LH] [STEPS]
#   (THREADS=2 by default; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are left as the
#   environment sets them unless UNSET_OPENBLAS=1; HD_TRAIN=PATH runs another
#   hd-train binary, HD_TRAIN_OPTS adds options such as --recompute-target;
#   TORCH=0 skips the PyTorch side; PYTHON=the interpreter with
#   tests/ref/requirements.txt, default .venv-ref/bin/python;
#   HD_TRAIN_BASE=PATH also runs that hd-train binary, after it, on the same
#   acts and seed, so both see the same batches, and prints the median of
#   the per-step time ratios: batch shapes vary from step to step, so two
#   medians of separate runs differ by more than a small change saves)
#
# Prints both tools' lines and one summary line with the ratio.  Peak RSS of
# each side comes from /usr/bin/time -v (GNU time) when installed, else from
# the tools' own report.
set -euo pipefail
ACTS=${1:?usage: bench_train_step.sh ACTS [LH] [STEPS]}
LH=${2:-8}
STEPS=${3:-5}
THREADS=${THREADS:-2}
[ "${UNSET_OPENBLAS:-0}" = 1 ] && unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TIME=""
[ -x /usr/bin/time ] && TIME="/usr/bin/time -v -o $TMP/c.time"

$TIME ${HD_TRAIN:-bin/hd-train} ${HD_TRAIN_OPTS:-} -t "$THREADS" -c "$TMP/ckpt" --hyper-layers "$LH" -b 16 \
    --max-steps $((STEPS + 1)) --save-every 0 "$ACTS" > "$TMP/log" 2> /dev/null
# the first step pays for page faults and buffer growth: keep the others
bin/hd-cat --where t=step "$TMP/log" | tail -n +3 |
    jq -r '[.seconds, .shape[0], .shape[1], .shape[2]] | @tsv' > "$TMP/steps"
read -r C_SEC E B S < <(sort -n "$TMP/steps" | awk '{s[NR]=$1; e[NR]=$2; b[NR]=$3; x[NR]=$4}
    END {m = int((NR + 1) / 2); print s[m], e[m], b[m], x[m]}')
C_RSS=$( [ -s "$TMP/c.time" ] && awk -F': ' '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$TMP/c.time" || echo "?")
echo "hd-train${HD_TRAIN_OPTS:+ $HD_TRAIN_OPTS}: threads=$THREADS b=16 Lh=$LH median $C_SEC s/step over $STEPS steps; batch shape E=$E B=$B S=$S; peak RSS $C_RSS MiB"

if [ -n "${HD_TRAIN_BASE:-}" ]; then
    "$HD_TRAIN_BASE" ${HD_TRAIN_OPTS:-} -t "$THREADS" -c "$TMP/base" --hyper-layers "$LH" -b 16 \
        --max-steps $((STEPS + 1)) --save-every 0 "$ACTS" > "$TMP/base.log" 2> /dev/null
    bin/hd-cat --where t=step "$TMP/base.log" | tail -n +3 | jq -r '.seconds' > "$TMP/base.steps"
    cut -f1 "$TMP/steps" | paste "$TMP/base.steps" - > "$TMP/pairs"
    RATIO=$(awk '{print $1 / $2}' "$TMP/pairs" | sort -g | awk '{r[NR] = $1} END {print r[int((NR + 1) / 2)]}')
    awk -v ratio="$RATIO" -v base="$HD_TRAIN_BASE" '{b += $1; c += $2}
        END {printf "paired with %s: %d steps, base %.3f s, this %.3f s a step (means); median per-step ratio base / this = %.3f\n",
             base, NR, b / NR, c / NR, ratio}' "$TMP/pairs"
fi

[ "${TORCH:-1}" = 0 ] && exit 0
"${PYTHON:-.venv-ref/bin/python}" bench/bench_train_step_torch.py --threads "$THREADS" --hyper-layers "$LH" \
    --batch 16 --instr-len "$E" --base-len "$B" --src-len "$S" --steps "$STEPS" | tee "$TMP/torch"
T_SEC=$(grep -o 'sec/step median [0-9.]*' "$TMP/torch" | awk '{print $3}')
echo "ratio: PyTorch / hd-train = $(awk -v t="$T_SEC" -v c="$C_SEC" 'BEGIN {printf "%.2f", t / c}') (higher: C faster)"
