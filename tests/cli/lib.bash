# Helpers for the CLI tests: source this file, call `check NAME COMMAND...`
# (passes when the command exits 0) and `skip NAME REASON`; `done_testing`
# prints the plan.  The tests run from the repository root with $BIN set.
BIN=${BIN:-bin}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
_n=0
check() {
    local name=$1; shift
    _n=$((_n + 1))
    if ( "$@" ) >"$TMP/check.out" 2>&1; then
        echo "ok $_n - $name"
    else
        echo "not ok $_n - $name"
        cut -c1-300 "$TMP/check.out" | sed 's/^/# /' | head -20
    fi
}
skip() {
    _n=$((_n + 1))
    echo "ok $_n # SKIP $1: $2"
}
done_testing() { echo "1..$_n"; }
