# CLI tests of hd-cat: views, selection, the JSON round trip, errors.
source tests/cli/lib.bash
PY=tests/fixtures/records/python.msgpack

check "count of data records" test "$($BIN/hd-cat --count $PY)" = 7
check "header only" test "$($BIN/hd-cat --header $PY | wc -l)" = 1
check "head 2 shows header and two records" test "$($BIN/hd-cat --head 2 $PY | wc -l)" = 3
check "where selects by string" \
    test "$($BIN/hd-cat --where dtype_tested=bf16 --count $PY)" = 1
check "where selects by several keys" \
    test "$($BIN/hd-cat --where t=acts --where id=py/3 --count $PY)" = 1
check "tensor summary shows dtype, shape, stats" \
    bash -c "$BIN/hd-cat --where id=py/0 $PY | grep -q '\"dtype\":\"f32\",\"shape\":\\[2,3\\],\"min\":'"
check "gzip input is detected" \
    bash -c "gzip -c $PY | $BIN/hd-cat --count | grep -qx 7"

# full view -> records -> full view keeps every data line, unknown keys too
check "JSON round trip keeps records and unknown keys" bash -c "
    $BIN/hd-cat --full $PY | $BIN/hd-cat --to-records -o $TMP/rt.msgpack &&
    diff <($BIN/hd-cat --full $PY | tail -n +2) <($BIN/hd-cat --full $TMP/rt.msgpack | tail -n +2) &&
    $BIN/hd-cat $TMP/rt.msgpack | grep -q x_unknown_header_key &&
    $BIN/hd-cat $TMP/rt.msgpack | grep -q mystery_type"
check "SOURCE_DATE_EPOCH makes output reproducible" bash -c "
    a=\$(SOURCE_DATE_EPOCH=0 $BIN/hd-cat --full $PY | SOURCE_DATE_EPOCH=0 $BIN/hd-cat --to-records | md5sum)
    b=\$(SOURCE_DATE_EPOCH=0 $BIN/hd-cat --full $PY | SOURCE_DATE_EPOCH=0 $BIN/hd-cat --to-records | md5sum)
    [ \"\$a\" = \"\$b\" ]"
check "hand-written JSON becomes records" bash -c "
    printf '%s\n' '{\"t\":\"known\",\"prompt\":\"Paris is in\",\"answer\":\" France\",\"correct\":true}' |
        $BIN/hd-cat --to-records --kind known | $BIN/hd-cat --header | grep -q '\"kind\":\"known\"'"

# errors: one line naming file and record, non-zero exit, earlier output kept
head -c 600 $PY > $TMP/cut.msgpack
check "truncated stream: one error line naming file and record" bash -c "
    ! $BIN/hd-cat $TMP/cut.msgpack > $TMP/out 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] &&
    grep -q '^hd-cat: $TMP/cut.msgpack: record [0-9]*: truncated record' $TMP/err &&
    [ \$(wc -l < $TMP/out) -ge 2 ]"
check "missing file" bash -c "
    ! $BIN/hd-cat /nonexistent.msgpack 2> $TMP/err &&
    grep -qx 'hd-cat: /nonexistent.msgpack: No such file or directory' $TMP/err"
check "malformed JSON names the line" bash -c "
    ! printf '{\"t\":\"a\"}\n{oops\n' | $BIN/hd-cat --to-records > /dev/null 2> $TMP/err &&
    grep -q '^hd-cat: stdin: line 2: ' $TMP/err"
check "a tensor summary is refused by --to-records" bash -c "
    ! $BIN/hd-cat $PY | $BIN/hd-cat --to-records > /dev/null 2> $TMP/err &&
    grep -q 'hd-cat --full' $TMP/err"
check "failed --to-records leaves no output file" bash -c "
    ! printf '{bad\n' | $BIN/hd-cat --to-records -o $TMP/none.msgpack 2>/dev/null &&
    [ ! -e $TMP/none.msgpack ] && [ -z \"\$(ls $TMP | grep none.msgpack)\" ]"
check "bad usage exits 2" bash -c "$BIN/hd-cat --head x $PY 2>/dev/null; [ \$? = 2 ]"
check "closed pipe ends quietly" bash -c "
    for i in \$(seq 2000); do cat $PY; done > $TMP/big.msgpack
    $BIN/hd-cat $TMP/big.msgpack 2> $TMP/err | head -1 > /dev/null; [ ! -s $TMP/err ]"
check "binary output to a terminal is refused" bash -c "
    script -qec '$BIN/hd-cat --to-records < /dev/null' /dev/null > $TMP/tty.out;
    grep -q 'refusing to write binary records to a terminal' $TMP/tty.out"

# Any record prints as valid JSON; what --to-records writes reads back.
# A stream by hand: header, records with strings that are not UTF-8 (a
# value, a key) and a zlib tensor whose data is not zlib, end.
$BIN/hd-cat --to-records --kind x < /dev/null > $TMP/e.mp
head -c $(( $(stat -c %s $TMP/e.mp) - 14 )) $TMP/e.mp > $TMP/odd.mp
printf '\x83\xa1t\xa1x\xa1s\xa5\xff\xfeab\xc3\xa2\xed\xa0\x01' >> $TMP/odd.mp
printf '\x82\xa1t\xa1x\xa1h\x85\xa5dtype\xa2u8\xa5shape\x91\x04\xa5codec\xa4zlib' >> $TMP/odd.mp
printf '\xa6nbytes\x04\xa4data\xc4\x04junk\x82\xa1t\xa3end\xa5count\x02' >> $TMP/odd.mp
check "strings that are not UTF-8 print as valid JSON, U+FFFD for each bad part" bash -c "
    ! $BIN/hd-cat $TMP/odd.mp > $TMP/odd.json 2> $TMP/err &&
    python3 -c '
import json, sys
lines = open(sys.argv[1], \"rb\").read().decode(\"utf-8\").splitlines()
assert len(lines) == 2, lines
rec = json.loads(lines[1])
assert rec[\"s\"] == \"\\ufffd\\ufffdab\\ufffd\", rec
assert rec[\"\\ufffd\\ufffd\"] == 1, rec' $TMP/odd.json"
check "a record that cannot be shown leaves no half line" bash -c "
    ! $BIN/hd-cat $TMP/odd.mp > $TMP/odd.json 2> $TMP/err &&
    tail -1 $TMP/odd.json | jq -e .s > /dev/null &&
    grep -q 'odd.mp: record 3: zlib tensor data is corrupt' $TMP/err"
check "--to-records refuses a tensor the reader would refuse ([2^32, 2^32], no data)" bash -c "
    printf '%s\n' '{\"t\":\"x\",\"h\":{\"dtype\":\"f32\",\"shape\":[4294967296,4294967296],\"data\":[]}}' |
        $BIN/hd-cat --to-records -o $TMP/big.mp 2> $TMP/err; [ \$? = 1 ] &&
    grep -qx 'hd-cat: stdin: line 1: tensor: shape is too large' $TMP/err && [ ! -e $TMP/big.mp ] &&
    printf '%s\n' '{\"t\":\"x\"}' '{\"t\":\"x\",\"h\":{\"dtype\":\"f32\",\"shape\":[2199023255552,0],\"data\":[]}}' |
        $BIN/hd-cat --to-records -o $TMP/big.mp 2> $TMP/err; [ \$? = 1 ] &&
    grep -qx 'hd-cat: stdin: line 2: h: tensor shape\[0\] is not a valid size' $TMP/err && [ ! -e $TMP/big.mp ]"
done_testing
