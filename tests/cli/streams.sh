# What every reader does with a stream that is not whole, and with input
# of the wrong kind or size (issue 14): a stream cut anywhere, from a file,
# stdin, gzip or a `cat` of segments, is one error line naming the input,
# never a short clean result; `cat a b` of whole streams still reads as one.
source tests/cli/lib.bash
export SOURCE_DATE_EPOCH=0

# One line on stderr matching $1, non-zero exit; the command follows.
fails_with() {
    local pattern=$1; shift
    "$@" > "$TMP/fw.out" 2> "$TMP/fw.err"
    local st=$?
    cat "$TMP/fw.err"
    [ "$st" -ne 0 ] || { echo "exit status 0"; return 1; }
    [ "$(wc -l < "$TMP/fw.err")" -eq 1 ] || { echo "stderr is not one line"; return 1; }
    grep -q -- "$pattern" "$TMP/fw.err" || { echo "no match for: $pattern"; return 1; }
}

# A stream with one 1000-value tensor: header, 2 data records, end.  The end
# record {"t":"end","count":2} is the last 14 bytes.
{
    printf '{"t":"acts","id":"a","x":{"dtype":"f32","shape":[1000],"data":['
    seq -s, 1000 | tr -d '\n'
    printf ']}}\n{"t":"acts","id":"b"}\n'
} | $BIN/hd-cat --to-records --kind acts > $TMP/s.mp
SIZE=$(stat -c %s $TMP/s.mp)
# the same header (same command line) with no data: header and end only
$BIN/hd-cat --to-records --kind acts < /dev/null > $TMP/empty.mp
HSIZE=$(( $(stat -c %s $TMP/empty.mp) - 14 ))
head -c $((SIZE - 14)) $TMP/s.mp > $TMP/no-end.mp
head -c $HSIZE $TMP/s.mp > $TMP/header-only.mp
head -c 20 $TMP/s.mp > $TMP/in-header.mp
head -c $((HSIZE + 2000)) $TMP/s.mp > $TMP/in-tensor.mp
: > $TMP/zero.mp

check "a whole stream reads" test "$($BIN/hd-cat --count $TMP/s.mp)" = 2
check "cut exactly before the end record: truncated, with the record count" \
    fails_with "^hd-cat: $TMP/no-end.mp: truncated: no end record after 3 records\$" $BIN/hd-cat $TMP/no-end.mp
check "cut after the header only" \
    fails_with "^hd-cat: $TMP/header-only.mp: truncated: no end record after 1 record\$" \
    $BIN/hd-cat --count $TMP/header-only.mp
check "cut inside the header" \
    fails_with "^hd-cat: $TMP/in-header.mp: record 1: truncated record" $BIN/hd-cat $TMP/in-header.mp
check "cut inside a tensor" \
    fails_with "^hd-cat: $TMP/in-tensor.mp: record 2: truncated record" $BIN/hd-cat $TMP/in-tensor.mp
check "empty input" fails_with "^hd-cat: $TMP/zero.mp: empty input: no header" $BIN/hd-cat $TMP/zero.mp
check "empty stdin" fails_with "^hd-cat: stdin: empty input: no header" $BIN/hd-cat < /dev/null
check "cut before the end record, on stdin and gzip" bash -c "
    $BIN/hd-cat < $TMP/no-end.mp 2> $TMP/e1 >/dev/null; [ \$? = 1 ] &&
    grep -qx 'hd-cat: stdin: truncated: no end record after 3 records' $TMP/e1 &&
    gzip -c $TMP/no-end.mp > $TMP/no-end.mp.gz &&
    ! $BIN/hd-cat $TMP/no-end.mp.gz > /dev/null 2> $TMP/e2 &&
    grep -qx 'hd-cat: $TMP/no-end.mp.gz: truncated: no end record after 3 records' $TMP/e2"
check "what was read before the cut is still shown" bash -c "
    ! $BIN/hd-cat $TMP/no-end.mp > $TMP/out 2>/dev/null && [ \$(wc -l < $TMP/out) = 3 ]"
check "a stream without a header" bash -c "
    tail -c +$((HSIZE + 1)) $TMP/s.mp > $TMP/headless.mp &&
    $BIN/hd-cat $TMP/headless.mp > /dev/null 2> $TMP/err; [ \$? = 1 ] &&
    grep -qx 'hd-cat: $TMP/headless.mp: record 1: the stream has no header (it must start with one)' $TMP/err"
check "cat of whole streams reads as one; with a cut one it fails naming it" bash -c "
    [ \$(cat $TMP/s.mp $TMP/empty.mp $TMP/s.mp | $BIN/hd-cat --count) = 4 ] &&
    [ \$(cat $TMP/s.mp $TMP/s.mp | gzip | $BIN/hd-cat --count) = 4 ] &&
    ! cat $TMP/s.mp $TMP/no-end.mp | $BIN/hd-cat --count > /dev/null 2> $TMP/err &&
    grep -qx 'hd-cat: stdin: truncated: no end record after 7 records' $TMP/err &&
    ! cat $TMP/no-end.mp $TMP/s.mp | $BIN/hd-cat --count > /dev/null 2> $TMP/err &&
    grep -q 'hd-cat: stdin: record 4: a header before the end record' $TMP/err &&
    ! $BIN/hd-cat --count $TMP/s.mp $TMP/no-end.mp > /dev/null 2> $TMP/err &&
    grep -qx 'hd-cat: $TMP/no-end.mp: truncated: no end record after 3 records' $TMP/err"
check "a reader that stops early on purpose (--head) does not look past it" bash -c "
    [ \$($BIN/hd-cat --head 1 $TMP/no-end.mp | wc -l) = 2 ]"
check "other readers: hd-score --summarize (the multi-file input), hd-plot" bash -c "
    $BIN/hd-cat --to-records --kind scores -o $TMP/sc.mp < /dev/null &&
    head -c \$(( \$(stat -c %s $TMP/sc.mp) - 14 )) $TMP/sc.mp > $TMP/sc-cut.mp &&
    ! $BIN/hd-score --summarize $TMP/sc.mp $TMP/sc-cut.mp > /dev/null 2> $TMP/err &&
    grep -q 'sc-cut.mp: truncated: no end record after 1 record' $TMP/err &&
    ! $BIN/hd-plot --heatmaps $TMP/plots $TMP/sc-cut.mp 2> $TMP/err &&
    grep -q 'sc-cut.mp: truncated: no end record after 1 record' $TMP/err"

# The record size limit: a gzip stream whose second record declares a 4 GB
# string (100 MB of zeros follow, 460 KB compressed) is refused from that
# record's header, in bounded memory (600 MB of address space; the reader
# would otherwise grow its buffer to the record's size).
{
    head -c $HSIZE $TMP/s.mp
    printf '\x82\xa1t\xa4acts\xa1x\xc6\xff\xff\xff\xf0'
    head -c 100M /dev/zero
} | gzip -1 > $TMP/huge.mp.gz
# (AddressSanitizer reserves terabytes of address space: no ulimit under it)
VLIMIT="ulimit -v 600000"
ldd $BIN/hd-cat 2> /dev/null | grep -q libasan && VLIMIT=:
check "a record declaring 4 GB: refused at once, in bounded memory" bash -c "
    ($VLIMIT; OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 timeout 60 $BIN/hd-cat --count $TMP/huge.mp.gz) \
        > /dev/null 2> $TMP/err; [ \$? = 1 ] && cat $TMP/err &&
    grep -qx 'hd-cat: $TMP/huge.mp.gz: record 2: larger than the record size limit of 1 GiB (HD_MAX_RECORD raises it)' $TMP/err"
# a map declaring 2^29 pairs: msgpack-c would allocate 16 GB for them at once
{ head -c $HSIZE $TMP/s.mp; printf '\x82\xa1t\xa4acts\xa1x\xdf\x20\x00\x00\x00'; head -c 1000 /dev/zero; } > $TMP/wide.mp
check "a record declaring 2^29 map entries: refused before msgpack-c allocates them" bash -c "
    ($VLIMIT; OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 timeout 60 $BIN/hd-cat --count $TMP/wide.mp) \
        > /dev/null 2> $TMP/err; [ \$? = 1 ] && cat $TMP/err &&
    grep -qx 'hd-cat: $TMP/wide.mp: record 2: larger than the record size limit of 1 GiB (HD_MAX_RECORD raises it)' $TMP/err"
check "HD_MAX_RECORD lowers and raises the limit, and must be a size" bash -c "
    ! HD_MAX_RECORD=2K $BIN/hd-cat --count $TMP/s.mp > /dev/null 2> $TMP/err &&
    grep -qx 'hd-cat: $TMP/s.mp: record 2: larger than the record size limit of 2 KiB (HD_MAX_RECORD raises it)' $TMP/err &&
    [ \$(HD_MAX_RECORD=8k $BIN/hd-cat --count $TMP/s.mp) = 2 ] &&
    ! HD_MAX_RECORD=big $BIN/hd-cat $TMP/s.mp > /dev/null 2> $TMP/err &&
    grep -q '^hd-cat: HD_MAX_RECORD: expected a size in bytes such as 4G' $TMP/err"
check "a writer refuses a record over the limit, naming it" bash -c "
    ! $BIN/hd-cat --full $TMP/s.mp | HD_MAX_RECORD=2K $BIN/hd-cat --to-records -o $TMP/small.mp 2> $TMP/err &&
    grep -q '^hd-cat: $TMP/small.mp: record 2: [0-9]* bytes, larger than the record size limit of 2 KiB' $TMP/err &&
    [ ! -e $TMP/small.mp ]"

# hd-filter --max-len: every sequence is checked as its record is read, so a
# too-long prompt is an error naming file, record and field even when
# --known would answer it, and a huge one is refused before tokenising.
export HD_MODEL=tests/fixtures/tiny-llama-f32
$BIN/ravel-pairs --domain city --attribute Country -n 1 --iso-ratio 0 -o $TMP/p.mp
$BIN/hd-cat $TMP/p.mp | grep '"t":"pair"' | head -1 > $TMP/pair.json
python3 - $TMP <<'PY'
import json, sys
d = sys.argv[1]
pair = json.load(open(d + "/pair.json"))
for name, n in (("long", 30), ("huge", 400000)):
    p = dict(pair, verify_input=" ".join(["word"] * n) + " " + pair["verify_input"])
    open(d + "/%s.jsonl" % name, "w").write(json.dumps(p) + "\n")
    k = {"t": "known", "prompt": p["verify_input"], "answer": p["label"], "correct": True}
    open(d + "/%s-known.jsonl" % name, "w").write(json.dumps(k) + "\n")
    q = {"t": "query", "prompt": p["verify_input"], "answer_sep": p["answer_sep"], "answer": p["label"]}
    open(d + "/%s-query.jsonl" % name, "w").write(json.dumps(q) + "\n")
PY
for n in long huge; do
    $BIN/hd-cat --to-records --kind pairs -o $TMP/$n.mp $TMP/$n.jsonl
    $BIN/hd-cat --to-records --kind known -o $TMP/$n-known.mp $TMP/$n-known.jsonl
    $BIN/hd-cat --to-records --kind queries -o $TMP/$n-query.mp $TMP/$n-query.jsonl
done
check "hd-filter: a prompt longer than --max-len is an error naming file, record and field" \
    fails_with "^hd-filter: $TMP/long.mp: record 2: verify_input: [0-9]* tokens, longer than --max-len 128\$" \
    $BIN/hd-filter --max-len 128 -o $TMP/out.mp $TMP/long.mp
check "hd-filter: ... even when --known has its outcome (never passed through)" \
    fails_with "^hd-filter: $TMP/long.mp: record 2: verify_input: [0-9]* tokens, longer than --max-len 128\$" \
    $BIN/hd-filter --max-len 128 --known $TMP/long-known.mp -o $TMP/out.mp $TMP/long.mp
check "hd-filter: a 2 MB prompt is refused by its length, before tokenising" \
    fails_with "^hd-filter: $TMP/huge.mp: record 2: verify_input: [0-9]* bytes of text, too long for --max-len 128 tokens (at most [0-9]* bytes)\$" \
    timeout 60 $BIN/hd-filter --max-len 128 --known $TMP/huge-known.mp $TMP/huge.mp
check "hd-filter: the same for a query, known or not" bash -c "
    ! $BIN/hd-filter --max-len 128 --known $TMP/long-known.mp $TMP/long-query.mp > /dev/null 2> $TMP/err &&
    grep -qx 'hd-filter: $TMP/long-query.mp: record 2: [0-9]* tokens, longer than --max-len 128' $TMP/err &&
    ! $BIN/hd-filter --max-len 128 $TMP/huge-query.mp > /dev/null 2> $TMP/err &&
    grep -q '^hd-filter: $TMP/huge-query.mp: record 2: [0-9]* bytes of text, too long for' $TMP/err"
check "hd-filter: within --max-len it runs" bash -c "
    $BIN/hd-filter --all --max-len 512 $TMP/long.mp | $BIN/hd-cat --count | grep -qx 1"

# Input of the wrong kind is an error naming it, not an empty or
# pass-through result.
check "ravel-pairs --filter given pairs instead of known records" \
    fails_with "^ravel-pairs: $TMP/p.mp: record 1: expected a known stream, got pairs\$" \
    $BIN/ravel-pairs --domain city --attribute Country -n 2 --filter $TMP/p.mp
check "hd-filter --known given pairs" \
    fails_with "^hd-filter: $TMP/p.mp: record 1: expected a known stream, got pairs\$" \
    $BIN/hd-filter --known $TMP/p.mp $TMP/p.mp
check "hd-filter given acts (they passed through under a pairs header)" \
    fails_with "^hd-filter: $TMP/s.mp: record 1: expected a pairs or queries stream, got acts\$" \
    $BIN/hd-filter -o $TMP/out.mp $TMP/s.mp
check "hd-filter: a later input, or a later stream of a cat, of the other kind" bash -c "
    ! $BIN/hd-filter --all $TMP/p.mp $TMP/long-query.mp > /dev/null 2> $TMP/err &&
    grep -qx 'hd-filter: $TMP/long-query.mp: record 1: expected a pairs stream, got queries' $TMP/err &&
    ! cat $TMP/long-query.mp $TMP/p.mp | $BIN/hd-filter > /dev/null 2> $TMP/err &&
    grep -qx 'hd-filter: stdin: record 4: expected a queries stream, got pairs' $TMP/err"
done_testing
