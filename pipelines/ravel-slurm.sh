#!/bin/bash
# The RAVEL study of pipelines/ravel.mk (`make ravel`) as one Slurm job that
# spreads the heavy stages over the job's tasks:
#
#   pairs      ravel-pairs | hd-filter, one process      OUT/{train,test}.pairs
#   acts       cache-acts on every task, one shard each  OUT/train.acts.shard-*,
#                                                        OUT/test.acts (gathered)
#   training   bin-mpi/hd-train, data parallel (MPI)     OUT/hyperdas.{ckpt,log}
#              and the DAS baseline the same way         OUT/das.{ckpt,log}
#   scoring    hd-score on every task, one shard each    OUT/{hyperdas,das}.scores
#   report     hd-score --summarize --table, hd-plot     OUT/table.txt, plots/, loss.svg
#
# Usage (the paper's configuration is hd-train's default one):
#
#   make && make MPI=1 bin-mpi/hd-train
#   sbatch --nodes=4 --ntasks-per-node=1 --cpus-per-task=32 \
#       pipelines/ravel-slurm.sh /models/Meta-Llama-3-8B [DOMAIN] [OUT]
#
# MODEL: a Hugging Face directory or a GGUF file; DOMAIN: city (default);
# OUT: out/slurm-DOMAIN.  bin/, bin-mpi/, MODEL and OUT must be on a file
# system every node sees (rank 0 of hd-train spools the training data into
# the checkpoint directory, the other ranks read it there).  Each task runs
# --cpus-per-task threads.  Settings, as environment variables (sbatch
# passes the submitting shell's): SEED, TEST_SEED, N_TRAIN, N_TEST (records
# per attribute, default all), HD_TRAIN_OPTS, DAS_TRAIN_OPTS, SCORE_MODES,
# DAS_MODES, THREADS, DEVICE (cpu, or cuda: every tool that runs the
# target on each task's GPU), FILTER=0 (keep every pair: no hd-filter), BIN, MPIBIN,
# and LAUNCH (default srun; Open MPI's hd-train needs PMIx: if this Slurm's
# default --mpi plugin is not pmix, set LAUNCH="srun --mpi=pmix", else
# hd-train refuses to run as N worlds of 1), the command that starts one copy of a tool per
# task: outside Slurm, LAUNCH="mpirun -np 4" runs the same job on one machine
# (tests/cli/hd-train-mpi.sh does so on the tiny test model).
#
# Each stage is skipped when its output exists, so a job that was cut off
# can be submitted again.  Output files are written atomically by the tools.
#SBATCH --job-name=hyperdas-ravel
#SBATCH --output=hyperdas-ravel-%j.log
set -euo pipefail

MODEL=${1:?usage: ravel-slurm.sh MODEL [DOMAIN] [OUT]}
DOMAIN=${2:-city}
OUT=${3:-out/slurm-$DOMAIN}
# bin/ and bin-mpi/ of the checkout: next to this script when it is run in
# place, else (sbatch runs a copy from its spool directory) in the
# directory sbatch was called from; BIN and MPIBIN override both.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." 2> /dev/null && pwd || true)
ROOT=.
if [ -n "$HERE" ] && [ -x "$HERE/bin/ravel-pairs" ]; then
    ROOT=$HERE
elif [ -n "${SLURM_SUBMIT_DIR:-}" ] && [ -x "$SLURM_SUBMIT_DIR/bin/ravel-pairs" ]; then
    ROOT=$SLURM_SUBMIT_DIR
fi
BIN=${BIN:-$ROOT/bin}
MPIBIN=${MPIBIN:-$ROOT/bin-mpi}
LAUNCH=${LAUNCH:-srun}
DEVICE=${DEVICE:-cpu}
SEED=${SEED:-42}
TEST_SEED=${TEST_SEED:-$SEED}
N_TRAIN=${N_TRAIN:-all}
N_TEST=${N_TEST:-all}
FILTER=${FILTER:-1}
THREADS=${THREADS:-${SLURM_CPUS_PER_TASK:-}}
HD_TRAIN_OPTS=${HD_TRAIN_OPTS:-}
DAS_TRAIN_OPTS=${DAS_TRAIN_OPTS:-}
SCORE_MODES=${SCORE_MODES:-soft,column_argmax,bidding_argmax,global_argmax,random}
DAS_MODES=${DAS_MODES:-groundtruth,random}

say() { echo "ravel-slurm: $(date -u +%H:%M:%S) $*" >&2; }
fail() { echo "ravel-slurm: $*" >&2; exit 2; }

# DEVICE=cuda: hd-filter, cache-acts, hd-train and hd-score on each task's
# GPU (--device cuda; give each task its own GPU, e.g. --gpus-per-task=1:
# hd-train picks its node-local rank's device, the others $HD_CUDA_DEVICE,
# else 0); data-parallel training then sums gradients with NCCL.
case "$DEVICE" in
cpu) FORWARD_OPT=() ;;
cuda) FORWARD_OPT=(--device cuda) ;;
*) fail "DEVICE=$DEVICE: expected cpu or cuda" ;;
esac
for tool in ravel-pairs hd-filter cache-acts hd-score hd-plot; do
    [ -x "$BIN/$tool" ] ||
        fail "$BIN/$tool is missing: run make in the checkout, submit from its top directory, or set BIN"
done
"$MPIBIN/hd-train" --version 2> /dev/null | grep -q '^features:.* mpi' ||
    fail "$MPIBIN/hd-train is missing or built without MPI: run make MPI=1 bin-mpi/hd-train (or set MPIBIN)"
[ "$DEVICE" = cpu ] || "$MPIBIN/hd-train" --version | grep -q '^features:.* nccl' ||
    fail "DEVICE=cuda: $MPIBIN/hd-train was built without NCCL (make MPI=1 with the CUDA toolkit)"
[ -e "$MODEL" ] || fail "$MODEL: no such model directory or file"
THREAD_OPT=()
[ -n "$THREADS" ] && THREAD_OPT=(-t "$THREADS")
# word splitting of the option variables is wanted: they hold several options
read -r -a HD_OPTS <<< "$HD_TRAIN_OPTS"
read -r -a DAS_OPTS <<< "$DAS_TRAIN_OPTS"
mkdir -p "$OUT"

# The files one launch of a sharding tool wrote for -o FILE: FILE itself
# when it ran as a single task, else FILE.shard-* in shard order.
outputs() {
    if [ -e "$1" ]; then echo "$1"; else ls "$1".shard-*; fi
}
# Concatenates a launch's shards into FILE (cat of the shards is the
# unsharded stream) and removes them.
gather() {
    [ -e "$1" ] && return 0
    local shards
    shards=$(ls "$1".shard-*)
    # shellcheck disable=SC2086 # the names have no spaces: OUT's are checked below
    cat $shards > "$1.tmp" && mv "$1.tmp" "$1" && rm -f $shards
}
case "$OUT" in *[[:space:]]*) fail "OUT '$OUT' contains white space" ;; esac

for split in train test; do
    [ -e "$OUT/$split.pairs" ] && continue
    if [ "$split" = train ]; then seed=$SEED n=$N_TRAIN; else seed=$TEST_SEED n=$N_TEST; fi
    say "pairs: $split"
    if [ "$FILTER" = 1 ]; then
        "$BIN/ravel-pairs" --domain "$DOMAIN" --split "$split" --seed "$seed" -n "$n" |
            "$BIN/hd-filter" -m "$MODEL" "${FORWARD_OPT[@]}" "${THREAD_OPT[@]}" --stats \
                --known-out "$OUT/$split.known" -o "$OUT/$split.pairs"
    else
        "$BIN/ravel-pairs" --domain "$DOMAIN" --split "$split" --seed "$seed" -n "$n" \
            -o "$OUT/$split.pairs"
    fi
done

for split in train test; do
    [ -e "$OUT/$split.acts.done" ] && continue
    rm -f "$OUT/$split.acts" "$OUT/$split.acts".shard-*
    say "acts: $split, one shard per task"
    $LAUNCH "$BIN/cache-acts" -m "$MODEL" "${FORWARD_OPT[@]}" "${THREAD_OPT[@]}" -o "$OUT/$split.acts" \
        "$OUT/$split.pairs"
    [ "$split" = test ] && gather "$OUT/test.acts"   # --val and hd-score read one stream
    touch "$OUT/$split.acts.done"
done
# shellcheck disable=SC2207 # names without spaces (checked above)
TRAIN_ACTS=($(outputs "$OUT/train.acts"))

train() { # NAME, then hd-train options
    local name=$1
    shift
    [ -e "$OUT/$name.log" ] && return 0 # written at the end: its presence means done
    rm -rf "$OUT/$name.ckpt"
    say "training: $name, data parallel over every task"
    $LAUNCH "$MPIBIN/hd-train" -m "$MODEL" "${FORWARD_OPT[@]}" "${THREAD_OPT[@]}" -c "$OUT/$name.ckpt" \
        --seed "$SEED" --val "$OUT/test.acts" "$@" -o "$OUT/$name.log" "${TRAIN_ACTS[@]}"
}
train hyperdas "${HD_OPTS[@]}"
train das --method das "${DAS_OPTS[@]}"

score() { # NAME MODES
    [ -e "$OUT/$1.scores" ] && return 0
    rm -f "$OUT/$1.scores".shard-*
    say "scoring: $1, one shard per task"
    $LAUNCH "$BIN/hd-score" -m "$MODEL" "${FORWARD_OPT[@]}" "${THREAD_OPT[@]}" -c "$OUT/$1.ckpt" --modes "$2" \
        -o "$OUT/$1.scores" "$OUT/test.acts"
    gather "$OUT/$1.scores"
}
score hyperdas "$SCORE_MODES"
score das "$DAS_MODES"

say "report"
"$BIN/hd-score" --summarize --table "$OUT/hyperdas.scores" "$OUT/das.scores" > "$OUT/table.txt.tmp"
mv "$OUT/table.txt.tmp" "$OUT/table.txt"
"$BIN/hd-plot" --heatmaps "$OUT/plots" "$OUT/hyperdas.scores" "$OUT/das.scores"
"$BIN/hd-plot" --curve "$OUT/loss.svg" "$OUT/hyperdas.log" "$OUT/das.log"
cat "$OUT/table.txt"
