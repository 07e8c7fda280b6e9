#!/bin/bash
# hd-filter against the same filter in Hugging Face transformers, side by
# side in one run: the same RAVEL pairs, the same SmolLM2 GGUF, the same
# thread count, the same rule (BOS + verify_input + answer_sep + label
# teacher-forced, every label token the argmax).  hd-filter runs each
# distinct verify prompt once and sorts each window by length; the
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

(
    [ "${UNSET_OPENBLAS:-0}" = 1 ] && unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
    start=$(date +%s.%N)
    bin/hd-filter -t "$THREADS" --all --stats -o "$TMP/c.mp" "$TMP/pairs.mp" 2> "$TMP/c.stats"
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f\n", e - s}' > "$TMP/c.sec"
)
C_SEC=$(cat "$TMP/c.sec")
C_KEPT=$(bin/hd-cat --where t=pair "$TMP/c.mp" | jq -r 'select(.model_correct) | .id' | wc -l)
echo "hd-filter: threads=$THREADS b=16 pairs=$PAIRS (distinct verify prompts $DISTINCT) kept=$C_KEPT seconds=$C_SEC" \
     "pairs/s=$(awk -v n="$PAIRS" -v s="$C_SEC" 'BEGIN {printf "%.2f", n / s}') (model load included)"
tail -1 "$TMP/c.stats"

"$PYTHON" bench/bench_filter_torch.py "$TMP/pairs.jsonl" --threads "$THREADS" --batch 16 --out "$TMP/t.tsv" \
    2> "$TMP/t.err" | tee "$TMP/t.out" || { tail -5 "$TMP/t.err" >&2; exit 1; }
T_SEC=$(grep -o 'seconds=[0-9.]*' "$TMP/t.out" | cut -d= -f2)

bin/hd-cat --where t=pair "$TMP/c.mp" | jq -r '[.id, (if .model_correct then 1 else 0 end)] | @tsv' | sort > "$TMP/c.tsv"
DIFF=$(sort "$TMP/t.tsv" | join -t "$(printf '\t')" - "$TMP/c.tsv" | awk -F'\t' '$2 != $3' | wc -l)
echo "pairs kept differently by the two filters: $DIFF of $PAIRS"
echo "ratio: hd-filter pairs/s / transformers pairs/s = $(awk -v t="$T_SEC" -v c="$C_SEC" 'BEGIN {printf "%.2f", t / c}') (higher: C faster)"
