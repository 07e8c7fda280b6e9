# Every tool: --help and --version work; every man page renders cleanly.
source tests/cli/lib.bash
for t in "$BIN"/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    name=$(basename "$t")
    check "$name --help" bash -c "$t --help | grep -q '^Usage: $name'"
    check "$name --version" bash -c "$t --version | grep -qx '$name (hyperdas) [0-9.]*'"
    check "$name has a man page" test -f "man/man1/$name.1"
done
for m in man/man1/*.1 man/man5/*.5 man/man7/*.7; do
    check "$(basename "$m") renders without warnings" bash -c "
        out=\$(groff -man -ww -z '$m' 2>&1); [ -z \"\$out\" ] || { echo \"\$out\"; false; }"
done
done_testing
