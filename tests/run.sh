#!/usr/bin/env bash
# The test runner: every cmocka program in $BIN/tests and every CLI script in
# tests/cli speaks TAP; this script runs them all from the repository root,
# shows each failure, and ends with one line 'N passed, N failed, N skipped'.
# A program that crashes or exits non-zero without reporting a failure counts
# as one failed test, so a segfault can never look like a pass.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
export BIN
export CMOCKA_MESSAGE_OUTPUT=TAP
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
passed=0 failed=0 skipped=0

run_one() {   # name, command...
    local name=$1; shift
    local out="$log/$(basename "$name").tap"
    "$@" >"$out" 2>"$out.err"
    local rc=$?
    local p f s
    p=$(grep -cE '^ok [0-9]+' "$out")
    s=$(grep -cE '^(not )?ok [0-9]+.*# SKIP' "$out")
    f=$(grep -E '^not ok [0-9]+' "$out" | grep -vc '# SKIP')
    p=$((p - $(grep -cE '^ok [0-9]+.*# SKIP' "$out")))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "FAIL $name: exited with status $rc without reporting a failure"
    fi
    if [ "$f" -gt 0 ]; then
        echo "---- $name"
        grep -E '^not ok|^#' "$out" | grep -v '# SKIP' | head -40
        tail -20 "$out.err"
    fi
    printf '%-28s %3d passed %3d failed %3d skipped\n' "$(basename "$name")" "$p" "$f" "$s"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

for t in "$BIN"/tests/test_*; do
    [ -x "$t" ] && run_one "$t" "$t"
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] && run_one "$t" bash "$t"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
