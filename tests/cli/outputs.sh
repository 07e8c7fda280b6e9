# Where output goes (issue 14, files): -o replaces only a regular file,
# atomically; a FIFO or a device, or a link to one, is written in place and
# never replaced; a link to a regular file is written through to its target.
# Every tool reports a failed write of stdout (`> /dev/full`) and exits 1,
# while a closed pipe (`| head`) stays a quiet end.
source tests/cli/lib.bash
export SOURCE_DATE_EPOCH=0 HD_MODEL=tests/fixtures/tiny-llama-f32 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=tests/fixtures/records/python.msgpack
$BIN/hd-cat --full $PY > $TMP/py.jsonl

check "-o FIFO: written in place, the FIFO stays a FIFO" bash -c "
    mkfifo $TMP/fifo && { timeout 20 cat $TMP/fifo > $TMP/from-fifo & } &&
    timeout 20 $BIN/hd-cat --to-records -o $TMP/fifo $TMP/py.jsonl && wait &&
    [ -p $TMP/fifo ] && [ \$($BIN/hd-cat --count $TMP/from-fifo) = 7 ] &&
    ! ls $TMP | grep -q tmp"
check "-o a link to a device: written through, the link and the device stay" bash -c "
    ln -s /dev/null $TMP/null-link &&
    $BIN/hd-cat --to-records -o $TMP/null-link $TMP/py.jsonl &&
    $BIN/hd-cat -o $TMP/null-link $PY &&
    [ -L $TMP/null-link ] && [ -c /dev/null ] && ! ls $TMP | grep -q tmp"
check "-o a link to a regular file: the target replaced atomically, the link kept" bash -c "
    mkdir $TMP/real && echo old > $TMP/real/out.mp && ln -s real/out.mp $TMP/link.mp &&
    $BIN/hd-cat --to-records -o $TMP/link.mp $TMP/py.jsonl &&
    [ -L $TMP/link.mp ] && [ \"\$(readlink $TMP/link.mp)\" = real/out.mp ] &&
    [ \$($BIN/hd-cat --count $TMP/real/out.mp) = 7 ] &&
    ! ls $TMP | grep -q tmp && ! ls $TMP/real | grep -q tmp"
check "-o a dangling link or a directory: refused, nothing made" bash -c "
    ln -s nowhere/x.mp $TMP/dangling &&
    ! $BIN/hd-cat --to-records -o $TMP/dangling $TMP/py.jsonl 2> $TMP/err &&
    grep -qx 'hd-cat: $TMP/dangling: a symbolic link to a missing file: refusing to replace the link (write to its target.s path instead)' $TMP/err &&
    [ -L $TMP/dangling ] &&
    ! $BIN/hd-cat -o $TMP/real $PY 2> $TMP/err && grep -qx 'hd-cat: $TMP/real: is a directory' $TMP/err"
check "-o a regular file: still replaced atomically (a failed run keeps the old one)" bash -c "
    echo old > $TMP/keep.mp &&
    ! printf '{bad\n' | $BIN/hd-cat --to-records -o $TMP/keep.mp 2> /dev/null &&
    [ \"\$(cat $TMP/keep.mp)\" = old ] &&
    $BIN/hd-cat --to-records -o $TMP/keep.mp $TMP/py.jsonl && [ \$($BIN/hd-cat --count $TMP/keep.mp) = 7 ]"

# A failed write of stdout: status 1 and one line, for binary and text
# writers, --help included; a closed pipe: quiet.
$BIN/ravel-pairs --domain city --attribute Country -n 4 | $BIN/cache-acts -o $TMP/train.acts
$BIN/hd-train -c $TMP/hd -b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32 --max-steps 2 \
    $TMP/train.acts > /dev/null 2>&1
$BIN/hd-score -c $TMP/hd -b 4 -o $TMP/t.scores $TMP/train.acts
full() {   # command...: fails with one "stdout: write error" line
    "$@" > /dev/full 2> $TMP/full.err
    local st=$?
    cat $TMP/full.err
    [ $st = 1 ] && [ "$(wc -l < $TMP/full.err)" = 1 ] && grep -q 'stdout: write error' $TMP/full.err
}
full_help() {
    for t in $BIN/*; do
        [ -f $t ] && [ -x $t ] || continue
        full $t --help && full $t --version || { echo "$t"; return 1; }
    done
}
check "> /dev/full: hd-cat (JSON lines)" full $BIN/hd-cat $PY
check "> /dev/full: hd-cat --count" full $BIN/hd-cat --count $PY
check "> /dev/full: hd-cat --to-records" full $BIN/hd-cat --to-records $TMP/py.jsonl
check "> /dev/full: hd-score --summarize --table" full $BIN/hd-score --summarize --table $TMP/t.scores
check "> /dev/full: hd-generate" full $BIN/hd-generate -n 2 --no-stop 'Paris is'
check "> /dev/full: ravel-pairs" full $BIN/ravel-pairs --domain city -n 2
check "> /dev/full: --help and --version of every tool" full_help
check "a closed pipe stays quiet" bash -c "
    for i in \$(seq 300); do cat $PY; done > $TMP/big.mp
    $BIN/hd-cat $TMP/big.mp 2> $TMP/err | head -1 > /dev/null &&
    $BIN/hd-score --summarize --table $TMP/t.scores 2>> $TMP/err | head -c 10 > /dev/null &&
    $BIN/hd-cat --help 2>> $TMP/err | head -c 1 > /dev/null &&
    [ ! -s $TMP/err ]"
done_testing
