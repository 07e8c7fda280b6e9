#!/bin/bash
# The GPU's speed and memory, side by side with the CPU in one run (issue 17):
#
#   bash bench/gpu-bench.sh [OUTDIR] [PARTS]
#
# PARTS (default "smol llama8b"; also profile-smol, profile-llama8b: the
# step under ncu, bench/gpu-profile.sh, into OUTDIR/PART.txt):
#   smol     SmolLM2-135M shapes: cache-acts and hd-filter pairs/s and
#            tokens/s with --device cuda and cpu; the hd-train step (Lh 8,
#            b 16) with --device cuda in fp32 and with --tf32, and on the CPU.
#   llama8b  Llama-3-8B shapes (hidden 4096, 32 layers, GQA 32/8, vocab
#            128256): cache-acts --device cuda, then the hd-train step (Lh 8,
#            k 128, b 16) in fp32 and --tf32, with the GPU's memory sampled by
#            nvidia-smi every 100 ms (its peak, the CUDA context included).
# The models are random (bench/random_llama.py: real shapes, N(0, 0.02)
# weights) unless SMOL_MODEL / LLAMA8B_MODEL name real ones; their
# tokenizers come from SMOL_TOK / LLAMA8B_TOK (default: tests/fixtures'
# tokenizer folders are too small, so the Llama 2 and 3.1 tokenizer.json
# under TOK_DIR, default .gpu/tok).  Pairs: RAVEL city, Country, unfiltered
# (a random model knows nothing; speed does not depend on what is kept).
# RANDOM_LAYERS=N cuts the random models to N layers, HD_TRAIN_EXTRA adds
# hd-train options (a dry run of this script on a small machine:
# RANDOM_LAYERS=2 HD_TRAIN_EXTRA='--layer 1 --hyper-layers 2').  Scratch goes to SCRATCH (default /dev/shm when it has 40 GB free, else
# /tmp).  THREADS (default: all cores) for the CPU side.
#
# Prints one line per measurement to OUTDIR/bench.txt; the memory samples'
# summary to OUTDIR/memory.txt.  Each part has its own time limit
# (PART_TIMEOUT seconds, default 240), so one that hangs costs no more.
set -uo pipefail
D=${1:-${OUT:-gpu-bench}}
PARTS=${2:-smol llama8b}
mkdir -p "$D"
TOK_DIR=${TOK_DIR:-.gpu/tok}
THREADS=${THREADS:-$(nproc)}
PART_TIMEOUT=${PART_TIMEOUT:-240}
if [ -z "${SCRATCH:-}" ]; then
    SCRATCH=/tmp
    free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
    [ "${free_kb:-0}" -gt 41943040 ] && SCRATCH=/dev/shm
fi
W=$(mktemp -d "$SCRATCH/gpu-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
export SOURCE_DATE_EPOCH=0
R=$D/bench.txt
say() { echo "$*" | tee -a "$R"; }
now() { date +%s.%N; }

# median seconds of hd-train's step records after the first two (page faults,
# buffer growth, cuBLAS's first-call set-up)
step_median() {  # LOG [FIELD]: FIELD defaults to seconds (input_seconds: the host's share)
    bin/hd-cat --where t=step "$1" | grep -o "\"${2:-seconds}\":[0-9.e+-]*" | cut -d: -f2 | tail -n +3 |
        sort -g | awk '{s[NR] = $1} END {if (NR) printf "%.4f", s[int((NR + 1) / 2)]; else printf "?"}'
}
step_shape() {
    bin/hd-cat --where t=step "$1" | grep -o '"shape":\[[0-9,]*\]' | tail -n +3 | head -1 | cut -d: -f2
}
# distinct tokens a cache-acts stream holds (each states record once)
acts_tokens() {
    bin/hd-cat --where t=states "$1" | grep -o '"ids":{"dtype":"i32","shape":\[[0-9]*' |
        grep -o '[0-9]*$' | awk '{n += $1} END {print n + 0}'
}

# run NAME SECONDS-LIMIT CMD...: time a command, its stderr to W/NAME.err
run() {
    local name=$1; shift
    local t0 t1 rc
    t0=$(now)
    timeout "$PART_TIMEOUT" "$@" 2> "$W/$name.err"
    rc=$?
    t1=$(now)
    ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
    if [ $rc -ne 0 ]; then
        say "$name: FAILED rc $rc after $ELAPSED s: $(tail -c 600 "$W/$name.err" | tr '\n' ' ')"
        return 1
    fi
    return 0
}

make_model() {  # SHAPE TOKDIR OUTDIR
    run "model-$1" "${PYTHON:-python3}" bench/random_llama.py "$1" "$2" "$3" ${RANDOM_LAYERS:+--layers $RANDOM_LAYERS} && say "model $1: written in $ELAPSED s ($3)"
}

acts_bench() {  # TAG MODEL PAIRS DEVICE
    local tag=$1 model=$2 pairs=$3 dev=$4 np tok
    np=$(bin/hd-cat --count "$pairs")
    run "acts-$tag-$dev" bin/cache-acts -m "$model" --device "$dev" -t "$THREADS" -b 16 -o "$W/acts-$tag-$dev" "$pairs" ||
        return 1
    tok=$(acts_tokens "$W/acts-$tag-$dev")
    say "cache-acts $tag --device $dev: $np pairs, $tok distinct tokens in $ELAPSED s (model load included): $(awk -v n="$np" -v t="$tok" -v s="$ELAPSED" 'BEGIN {printf "%.1f pairs/s, %.0f tokens/s", n / s, t / s}')"
}

filter_bench() {  # TAG MODEL PAIRS DEVICE
    local tag=$1 model=$2 pairs=$3 dev=$4 np
    np=$(bin/hd-cat --count "$pairs")
    run "filter-$tag-$dev" bin/hd-filter -m "$model" --device "$dev" -t "$THREADS" --stats --all -o "$W/filter-$tag-$dev" "$pairs" ||
        return 1
    say "hd-filter $tag --device $dev: $np pairs in $ELAPSED s (model load included); its stats: $(grep -i 'prompts' "$W/filter-$tag-$dev.err" | tail -1)"
}

train() {  # TAG MODEL ACTS STEPS DEVICE [OPTS...]
    local tag=$1 model=$2 acts=$3 steps=$4 dev=$5; shift 5
    local name="train-$tag-$dev${1:+$(echo "$*" | tr -d ' -')}"
    local memlog="$W/$name.mem" smi=""
    if [ "$dev" = cuda ] && command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$memlog" 2> /dev/null &
        smi=$!
    fi
    run "$name" bin/hd-train -m "$model" --device "$dev" -t "$THREADS" -c "$W/ckpt-$name" -b 16 --hyper-layers 8 \
        --max-steps "$steps" --save-every 0 --eval-every 100000 "$@" ${HD_TRAIN_EXTRA:-} -o "$W/$name.log" "$acts"
    local ok=$?
    [ -n "$smi" ] && kill "$smi" 2> /dev/null && wait "$smi" 2> /dev/null
    rm -rf "$W/ckpt-$name"
    [ $ok -eq 0 ] || return 1
    local peak=""
    [ -s "$memlog" ] && peak=$(sort -n "$memlog" | tail -1) &&
        echo "$name: peak GPU memory $peak MiB (nvidia-smi, every 100 ms; CUDA context included)" >> "$D/memory.txt"
    say "hd-train $tag --device $dev $*: median $(step_median "$W/$name.log") s/step (host inputs $(step_median "$W/$name.log" input_seconds) s) over steps 3..$steps, batch $(step_shape "$W/$name.log") (E,B,S); run $ELAPSED s with loading${peak:+; peak GPU memory $peak MiB}"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader >> "$R" 2>&1
say "gpu-bench: threads $THREADS, scratch $SCRATCH, $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null)"

# the random model of a shape, unless the environment names a real one
model_for() {  # smol|llama8b
    if [ "$1" = smol ]; then
        M=${SMOL_MODEL:-$W/smol}
        [ -n "${SMOL_MODEL:-}" ] || [ -d "$M" ] || make_model smollm2 "${SMOL_TOK:-$TOK_DIR/llama2}" "$M"
    else
        M=${LLAMA8B_MODEL:-$W/llama8b}
        [ -n "${LLAMA8B_MODEL:-}" ] || [ -d "$M" ] || make_model llama3-8b "${LLAMA8B_TOK:-$TOK_DIR/llama3.1}" "$M"
    fi
}

for part in $PARTS; do
    case $part in
    smol)
        model_for smol || continue
        bin/ravel-pairs --domain city --attribute Country -n 256 -o "$W/pairs-smol" 2> /dev/null
        acts_bench smol "$M" "$W/pairs-smol" cuda
        acts_bench smol "$M" "$W/pairs-smol" cpu
        filter_bench smol "$M" "$W/pairs-smol" cuda
        filter_bench smol "$M" "$W/pairs-smol" cpu
        A=$W/acts-smol-cuda
        [ -s "$A" ] || A=$W/acts-smol-cpu
        train smol "$M" "$A" 12 cuda
        train smol "$M" "$A" 12 cuda --tf32
        train smol "$M" "$A" 4 cpu
        ;;
    llama8b)
        model_for llama8b || continue
        bin/ravel-pairs --domain city --attribute Country -n 64 -o "$W/pairs-llama8b" 2> /dev/null
        # no CPU side here: the 8B model's CPU forward would take the
        # part's whole time limit
        if acts_bench llama8b "$M" "$W/pairs-llama8b" cuda; then
            train llama8b "$M" "$W/acts-llama8b-cuda" 6 cuda
            train llama8b "$M" "$W/acts-llama8b-cuda" 6 cuda --tf32
        fi
        filter_bench llama8b "$M" "$W/pairs-llama8b" cuda
        ;;
    profile-smol|profile-llama8b)
        # bench/gpu-profile.sh: GPU time per kernel name under ncu
        tag=${part#profile-}
        model_for "$tag" || continue
        n=256 steps=3
        [ "$tag" = llama8b ] && n=32 steps=2
        [ -s "$W/acts-$tag-cuda" ] || {
            bin/ravel-pairs --domain city --attribute Country -n $n -o "$W/pairs-$tag" 2> /dev/null
            acts_bench "$tag" "$M" "$W/pairs-$tag" cuda
        } || continue
        STEPS=$steps timeout "$PART_TIMEOUT" bash bench/gpu-profile.sh "$M" "$W/acts-$tag-cuda" > "$D/$part.txt" 2>&1
        say "$part: rc $? ($D/$part.txt)"
        [ "$tag" = smol ] && STEPS=$steps timeout "$PART_TIMEOUT" bash bench/gpu-profile.sh "$M" "$W/acts-$tag-cuda" --tf32 \
            > "$D/$part-tf32.txt" 2>&1 && say "$part --tf32: ($D/$part-tf32.txt)"
        ;;
    *) say "gpu-bench: unknown part $part" ;;
    esac
done
say "gpu-bench: done"
