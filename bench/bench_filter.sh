#!/bin/bash
# hd-filter against the same filter in Hugging Face transformers, side by
# side in one run: the same RAVEL pairs, the same SmolLM2 GGUF, the same
# thread count, the same rule (BOS + verify_input + answer_sep + label
# teacher-forced, every label token the argmax).  hd-filter runs each
# distinct verify prompt once, and by default runs a prefix shared by
# several prompts (a template's text before the entity) once; it runs
# again with --no-shared-prefix (each prompt whole, windows sorted by
# length) for the ratio against the previous path; the
# transformers side (bench_filter_torch.py) runs every pair in input order,
# as the original code does.  Both sides must keep the same pairs: the
# script counts the pairs where they disagree.
#
#   bash bench/bench_filter.sh [PAIRS_PER_ATTRIBUTE] [DOMAIN] [ATTRIBUTES]
#   (defaults 100, city, Continent,Country,Language; THREADS=2; PYTHON=the
#   interpreter with tests/ref/requirements.txt, default .venv-ref/bin/python;
#   UNSET_OPENBLAS=1 unsets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for hd-filter)
#
# Prints both sides' lines and one summary line with the ratio of pairs per
# second.  hd-filter's time includes loading the model; the transformers
# side's does not (its load is reported apart).
set -euo pipefail
N=${1:-100}
DOMAIN=${2:-city}
ATTRS=${3:-Continent,Country,Language}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-.venv-ref/bin/python}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

bin/ravel-pairs --domain "$DOMAIN" --attribute "$ATTRS" --split train -n "$N" --seed 7 -o "$TMP/pairs.mp"
bin/hd-cat "$TMP/pairs.mp" > "$TMP/pairs.jsonl"
PAIRS=$(grep -c '"t":"pair"' "$TMP/pairs.jsonl")
DISTINCT=$(jq -r 'select(.t == "pair") | [.verify_input, .label] | @tsv' "$TMP/pairs.jsonl" | sort -u | wc -l)

# hd-filter twice: as shipped (shared prompt prefixes run once) and with
# --no-shared-prefix (every sequence whole, the previous build's path)
run_c() { # NAME OPTIONS...
    local name=$1; shift
    (
        [ "${UNSET_OPENBLAS:-0}" = 1 ] && unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
        start=$(date +%s.%N)
        bin/hd-filter -t "$THREADS" --all --stats "$@" -o "$TMP/$name.mp" "$TMP/pairs.mp" 2> "$TMP/$name.stats"
        end=$(date +%s.%N)
        awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f\n", e - s}' > "$TMP/$name.sec"
    )
    local sec kept
    sec=$(cat "$TMP/$name.sec")
    kept=$(bin/hd-cat --where t=pair "$TMP/$name.mp" | jq -r 'select(.model_correct) | .id' | wc -l)
    echo "hd-filter $*: threads=$THREADS b=16 pairs=$PAIRS (distinct verify prompts $DISTINCT) kept=$kept" \
         "seconds=$sec pairs/s=$(awk -v n="$PAIRS" -v s="$sec" 'BEGIN {printf "%.2f", n / s}') (model load included)"
    grep -E 'the model ran|shared prefixes' "$TMP/$name.stats" || true
}
run_c c
run_c w --no-shared-prefix
C_SEC=$(cat "$TMP/c.sec")
W_SEC=$(cat "$TMP/w.sec")
"$PYTHON" bench/bench_filter_torch.py "$TMP/pairs.jsonl" --threads "$THREADS" --batch 16 --out "$TMP/t.tsv" \
    2> "$TMP/t.err" | tee "$TMP/t.out" || { tail -5 "$TMP/t.err" >&2; exit 1; }
T_SEC=$(grep -o 'seconds=[0-9.]*' "$TMP/t.out" | cut -d= -f2)

bin/hd-cat --where t=pair "$TMP/c.mp" | jq -r '[.id, (if .model_correct then 1 else 0 end)] | @tsv' | sort > "$TMP/c.tsv"
DIFF=$(sort "$TMP/t.tsv" | join -t "$(printf '\t')" - "$TMP/c.tsv" | awk -F'\t' '$2 != $3' | wc -l)
echo "pairs kept differently by the two filters: $DIFF of $PAIRS"
bin/hd-cat --where t=pair "$TMP/w.mp" | jq -r '[.id, (if .model_correct then 1 else 0 end)] | @tsv' | sort > "$TMP/w.tsv"
echo "pairs kept differently with and without shared prefixes: $(join -t "$(printf '\t')" "$TMP/c.tsv" "$TMP/w.tsv" | awk -F'\t' '$2 != $3' | wc -l) of $PAIRS"
echo "shared prefixes: --no-shared-prefix seconds / default seconds = $(awk -v w="$W_SEC" -v c="$C_SEC" 'BEGIN {printf "%.2f", w / c}')"
echo "ratio: hd-filter pairs/s / transformers pairs/s = $(awk -v t="$T_SEC" -v c="$C_SEC" 'BEGIN {printf "%.2f", t / c}') (higher: C faster)"
