#!/bin/bash
# Every GPU check of the CUDA path in one run, for the short time a lent GPU
# machine gives (bench/NOTES.md says which of them have run, and where):
#
#   make -j16 $(bash bench/gpu-check.sh --targets) && bash bench/gpu-check.sh [OUT] [WHAT]
#
# WHAT: all (default), tests (parts 1 and 2) or sanitizer (part 3).
#
# 1. test_cublas_lazy (cuBLAS opens on first use), then the parity tests,
#    each printing its worst error against the CPU twin:
#    test_cuda_kernels (engine ops), test_cuda_hypernet_ops (hypernetwork
#    ops), test_llama_cuda (target forward), test_hypernet_device (a whole
#    training step: loss, every gradient, AdamW, against the CPU);
# 2. hd-train on the tiny fixture model, --device cuda against --device
#    cpu, 8 steps each: the per-step losses side by side;
# 3. the four tests under compute-sanitizer (memcheck), when installed,
#    each within SANITIZER_TIMEOUT seconds (default 120).
# Every test and run of parts 1 and 2 gets TEST_TIMEOUT seconds (default
# 180): a hang is a failure, not the end of the machine's time.
# Results go to OUT (default: $OUT, else ./gpu-check) as one text file per
# part; the exit status is non-zero when any part failed.  On a machine
# without a GPU every test reports itself skipped and part 2 stops at once.
set -uo pipefail
TESTS="test_cublas_lazy test_cuda_kernels test_cuda_hypernet_ops test_llama_cuda test_hypernet_device"
if [ "${1:-}" = --targets ]; then
    for t in $TESTS; do printf 'bin/tests/%s ' "$t"; done
    echo bin/hd-train bin/ravel-pairs bin/cache-acts bin/hd-cat
    exit 0
fi
DIR=${1:-${OUT:-gpu-check}}
WHAT=${2:-all}
mkdir -p "$DIR"
status=0
if [ "$WHAT" != sanitizer ]; then
    nvidia-smi -L > "$DIR/device.txt" 2>&1 || echo "no nvidia-smi" >> "$DIR/device.txt"
    for t in $TESTS; do
        echo "== $t" | tee -a "$DIR/tests.txt"
        CMOCKA_MESSAGE_OUTPUT=TAP timeout "${TEST_TIMEOUT:-180}" "bin/tests/$t" >> "$DIR/tests.txt" 2>&1 || status=1
    done
    # 2. hd-train end to end on the tiny fixture
    export HD_MODEL=tests/fixtures/tiny-llama-f32 SOURCE_DATE_EPOCH=0
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    bin/ravel-pairs --domain city --attribute Country -n 16 2> /dev/null |
        bin/cache-acts -o "$TMP/acts" 2> /dev/null
    OPTS="-b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32 --max-steps 8 --save-every 0"
    for dev in cpu cuda; do
        if ! timeout "${TEST_TIMEOUT:-180}" bin/hd-train -c "$TMP/$dev" --device $dev $OPTS "$TMP/acts" > "$TMP/$dev.log" 2> "$TMP/$dev.err"; then
            echo "hd-train --device $dev failed: $(cat "$TMP/$dev.err")" >> "$DIR/hd-train.txt"
            status=1
            continue
        fi
        bin/hd-cat --where t=step "$TMP/$dev.log" | grep -o '"loss":[^,]*' | cut -d: -f2 > "$TMP/$dev.loss"
    done
    if [ -s "$TMP/cpu.loss" ] && [ -s "$TMP/cuda.loss" ]; then
        { echo "step cpu_loss cuda_loss rel_diff"
          paste "$TMP/cpu.loss" "$TMP/cuda.loss" |
              awk '{d = $2 - $1; if (d < 0) d = -d; printf "%d %s %s %.3g\n", NR, $1, $2, d / ($1 < 0 ? -$1 : $1)}'
        } >> "$DIR/hd-train.txt"
    fi
fi
# 3. compute-sanitizer last: it is the slowest part, and each test has its
# own limit (SANITIZER_TIMEOUT seconds, default 120)
if [ "$WHAT" = tests ]; then
    :
elif command -v compute-sanitizer > /dev/null; then
    for t in $TESTS; do
        echo "== compute-sanitizer $t" >> "$DIR/sanitizer.txt"
        timeout "${SANITIZER_TIMEOUT:-120}" compute-sanitizer --tool memcheck --error-exitcode 9 "bin/tests/$t" >> "$DIR/sanitizer.txt" 2>&1 ||
            status=1
    done
else
    echo "compute-sanitizer not found" > "$DIR/sanitizer.txt"
fi

echo "gpu-check: status $status; results in $DIR"
exit $status
