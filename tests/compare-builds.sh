#!/usr/bin/env bash
# Byte-identity of two builds: the same small pipeline on the tiny fixture
# model, run once with each, must write the same bytes.  For a change that
# should not change behaviour (a refactor, a move of files, a new link
# order), e.g.
#
#   git worktree add --detach ../old main && make -C ../old -j2 CUDA=0
#   make -j2 CUDA=0 && tests/compare-builds.sh ../old/bin bin
#
# ravel-pairs | hd-filter --all | cache-acts (a train and a test split),
# hd-train a few steps (checkpoints and log), hd-score on the test acts,
# hd-cat of the scores and of the log; the writers those leave out:
# ravel-pairs --queries | hd-filter (known records, --known-out), hd-score
# --summarize, hd-locate (--json and its -o stream) and hd-cat --to-records.
# Each run happens in its own directory where bin,
# model and ravel are links, so every header's argv and paths read the
# same; SOURCE_DATE_EPOCH=0 and one thread make the rest deterministic.
# Prints one line per output file and exits non-zero when any differs.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN [WORK_DIR]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
old=$(cd "$1" && pwd) new=$(cd "$2" && pwd)
work=${3:-$(mktemp -d)}
mkdir -p "$work"
export SOURCE_DATE_EPOCH=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
unset HD_MODEL RAVEL_DIR

run() {   # bin directory, run directory
    rm -rf "$2" && mkdir -p "$2/out" && cd "$2"
    ln -s "$1" bin
    ln -s "$root/tests/fixtures/tiny-llama-f32" model
    ln -s "$root/data/ravel" ravel
    local pairs="--data ravel --domain city --attribute Country,Continent --isolate Language"
    bin/ravel-pairs $pairs -n 8 | bin/hd-filter -m model -t 1 --all |
        bin/cache-acts -m model -t 1 -o out/train.acts
    bin/ravel-pairs $pairs -n 6 --split test | bin/hd-filter -m model -t 1 --all |
        bin/cache-acts -m model -t 1 -o out/test.acts
    bin/hd-train -m model -t 1 -c out/ckpt -b 4 --hyper-layers 2 --layer 2 --das-dim 8 \
        --sub-ffn 32 --max-steps 3 out/train.acts > out/train.log 2>/dev/null
    bin/hd-score -m model -t 1 -c out/ckpt --modes soft,bidding_argmax out/test.acts > out/test.scores
    bin/hd-cat --full out/test.scores > out/test.scores.json
    # the log's step records carry wall times; everything else must match
    bin/hd-cat out/train.log |
        sed -E 's/,"tokens_per_s":[^,}]*//; s/,"seconds":[^,}]*//' > out/train.log.json
    bin/ravel-pairs $pairs --queries -n 3 -o out/queries
    bin/hd-filter -m model -t 1 --known-out out/queries.known-out out/queries > out/queries.known
    bin/ravel-pairs $pairs -n 4 | bin/hd-filter -m model -t 1 --known-out out/pairs.known-out > out/pairs.kept
    bin/hd-score --summarize --bootstrap 20 out/test.scores > out/summary.scores
    bin/hd-cat --to-records out/test.scores.json > out/test.scores.records
    local locate="-m model -t 1 -c out/ckpt --base-entity Paris --source-entity Tokyo --attribute Country"
    bin/hd-locate $locate --base "Paris is in the country of" --source "Tokyo is a city" --json > out/locate.json
    bin/hd-locate $locate --base "Paris is in the country of" --source "Tokyo is a city" -o out/locate.scores \
        > out/locate.txt
}
# Written per run, so never the same: the pid in the checkpoint lock, and the
# log's wall times (its records are compared as out/train.log.json without them).
varies() { case "$1" in out/ckpt/lock|out/train.log) return 0;; esac; return 1; }
(run "$old" "$work/old")
(run "$new" "$work/new")

status=0
while IFS= read -r f; do
    a="$work/old/$f" b="$work/new/$f"
    if varies "$f"; then
        echo "skipped  $f (differs from run to run)"
    elif [ -L "$a" ]; then
        if [ "$(readlink "$a")" = "$(readlink "$b" 2>/dev/null)" ]; then
            echo "same     $f -> $(readlink "$a")"
        else
            echo "DIFFERS  $f (link)"; status=1
        fi
    elif [ -f "$b" ] && cmp -s "$a" "$b"; then
        printf 'same     %s  %s  %s bytes\n' "$f" "$(sha256sum <"$a" | cut -c1-16)" "$(stat -c %s "$a")"
    else
        echo "DIFFERS  $f"; status=1
    fi
done < <(cd "$work/old/out" && find . \( -type f -o -type l \) | sed 's|^\./|out/|' | sort)
n_old=$(cd "$work/old/out" && find . \( -type f -o -type l \) | wc -l)
n_new=$(cd "$work/new/out" && find . \( -type f -o -type l \) | wc -l)
[ "$n_old" = "$n_new" ] || { echo "DIFFERS  file count: $n_old old, $n_new new"; status=1; }
[ "$status" = 0 ] && echo "compare-builds: all $n_old output files identical but the two skipped" ||
    echo "compare-builds: outputs differ"
exit "$status"
