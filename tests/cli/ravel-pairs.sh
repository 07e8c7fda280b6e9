#!/usr/bin/env bash
# ravel-pairs from the command line: help, version, pipes, files, gzip, the
# model filter with a hand-written known stream, and one clear error line
# for every kind of bad input.
source tests/cli/lib.bash
RP=$BIN/ravel-pairs
export SOURCE_DATE_EPOCH=1700000000

# Runs a command that must fail with exit status $1 and exactly one line on
# stderr matching the pattern $2.
one_line_error() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local st=$?
    cat "$TMP/err"
    [ "$st" -eq "$want" ] || { echo "exit status $st, wanted $want"; return 1; }
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || { echo "stderr is not one line"; return 1; }
    grep -q -- "$pattern" "$TMP/err" || { echo "no match for: $pattern"; return 1; }
    [ ! -s "$TMP/out" ] || { echo "something on stdout"; return 1; }
}

# A copy of the data directory that a test may damage.
copy_data() {
    rm -rf "$TMP/data"
    cp -r data/ravel "$TMP/data"
    chmod -R u+w "$TMP/data"
}

check "--help describes the options" bash -c "$RP --help | grep -q -- '--filter FILE'"
check "--version" bash -c "$RP --version | grep -q '^ravel-pairs (hyperdas) '"

quiet_head() {
    $RP --domain city 2>"$TMP/err" | head -c 100 >/dev/null
    $RP --domain city -n 50 2>>"$TMP/err" | head -1 >/dev/null
    [ ! -s "$TMP/err" ] || { cat "$TMP/err"; return 1; }
}
check "a closed pipe ends it quietly" quiet_head

to_file() {
    $RP --domain occupation -n 40 -o "$TMP/p.mp" || return 1
    # -n counts per target: 3 targets x (20 causal + 2 x 10 isolation)
    [ "$($BIN/hd-cat --count "$TMP/p.mp")" = 120 ] || { echo "not 120 records"; return 1; }
    ls "$TMP" | grep -v '^p.mp$' | grep -q p.mp && { echo "temporary file left"; return 1; }
    # the header differs (argv); the records must not
    $RP --domain occupation -n 40 | $BIN/hd-cat | grep -v '"t":"header"' >"$TMP/a.jsonl"
    $BIN/hd-cat "$TMP/p.mp" | grep -v '"t":"header"' | cmp - "$TMP/a.jsonl"
}
check "-o writes the same records as stdout" to_file

gzip_out() {
    $RP --domain verb -n 30 -z >"$TMP/p.mp.gz" || return 1
    [ "$(head -c 2 "$TMP/p.mp.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || { echo "no gzip magic"; return 1; }
    # 4 targets x (15 causal + 3 x 5 isolation)
    [ "$($BIN/hd-cat --count "$TMP/p.mp.gz")" = 120 ] || { echo "not 120 records"; return 1; }
    $RP --domain verb -n 30 -o "$TMP/q.mp.gz" || return 1
    [ "$(head -c 2 "$TMP/q.mp.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || { echo "no gzip magic"; return 1; }
    $BIN/hd-cat "$TMP/p.mp.gz" | grep -v '"t":"header"' >"$TMP/a.jsonl"
    $BIN/hd-cat "$TMP/q.mp.gz" | grep -v '"t":"header"' | cmp - "$TMP/a.jsonl"
}
check "-z and a .gz name compress" gzip_out

count_only() {
    $RP --count-only --domain city,occupation --split train,test >"$TMP/c.txt" || return 1
    head -1 "$TMP/c.txt" | grep -q '^# domain	split	target	kind	queried' || return 1
    # 6 city targets x (1 + 5), 3 occupation targets x (1 + 2), two splits
    [ "$(grep -vc '^#' "$TMP/c.txt")" -eq $(( (36 + 9) * 2 )) ] || return 1
    # the exhaustive default emits each causal base prompt once
    awk -F'\t' '$4 == "causal" && $8 != $10 { exit 1 }' "$TMP/c.txt"
}
check "--count-only prints the table" count_only

same_bytes() {
    $RP --domain nobel_prize_winner -n 500 --seed 9 >"$TMP/a.mp" &&
    $RP --domain nobel_prize_winner -n 500 --seed 9 >"$TMP/b.mp" &&
    cmp "$TMP/a.mp" "$TMP/b.mp"
}
check "same arguments and seed give the same bytes" same_bytes

# The hand-written known stream: one train Texture template of
# physical_object, known-correct for apple (hard) and pillow (soft),
# wrong for banana.  With --refill every causal pair must verify on apple
# or pillow.
T=' hard or soft: rock is hard; towel is soft; blackberry is soft; wood is hard; %s is'
known_filter() {
    cat >"$TMP/known.jsonl" <<EOF
{"t": "known", "prompt": "${T/\%s/apple}", "answer": "hard", "correct": true, "model": "hand"}
{"t": "known", "prompt": "${T/\%s/pillow}", "answer": "soft", "correct": true, "model": "hand"}
{"t": "known", "prompt": "${T/\%s/banana}", "answer": "soft", "correct": false, "model": "hand"}
EOF
    $BIN/hd-cat --to-records --kind known -o "$TMP/known.mp" "$TMP/known.jsonl" || return 1
    $RP --domain physical_object --attribute Texture --iso-ratio 0 -n 6 --refill \
        --filter "$TMP/known.mp" | $BIN/hd-cat >"$TMP/kept.jsonl" || return 1
    [ "$(grep -c '"t":"pair"' "$TMP/kept.jsonl")" -eq 6 ] || { echo "not 6 pairs"; return 1; }
    local n_ok
    n_ok=$(grep -c -e "\"verify_input\":\"${T/\%s/apple}\",\"instruction\":\"[^\"]* ; apple - Texture\",\"filtered\":true" \
                   -e "\"verify_input\":\"${T/\%s/pillow}\",\"instruction\":\"[^\"]* ; pillow - Texture\",\"filtered\":true" \
                   "$TMP/kept.jsonl")
    [ "$n_ok" -eq 6 ] || { echo "only $n_ok pairs verify on a known prompt"; head -3 "$TMP/kept.jsonl"; return 1; }
    grep -q '"filter":{"file":' "$TMP/kept.jsonl"
}
if $BIN/hd-cat --help 2>/dev/null | grep -q -- --to-records; then
    check "--filter keeps only pairs the known stream vouches for" known_filter
else
    skip "--filter with a hand-written stream" "hd-cat --to-records is missing"
fi

# --queries: the verification prompts, each once.
queries() {
    # physical_object Texture, train split: every template x every entity with a value
    $RP --domain physical_object --attribute Texture --iso-ratio 0 --queries -n all --stats \
        -o "$TMP/q.mp" 2>"$TMP/err" || return 1
    local line cells
    line=$(grep 'physical_object/train/Texture:' "$TMP/err") || { cat "$TMP/err"; return 1; }
    cells=$(echo "$line" | sed 's/.*: \([0-9]*\) of \([0-9]*\) .*/\2/')
    [ "$($BIN/hd-cat --count "$TMP/q.mp")" = "$cells" ] || { echo "not $cells queries"; return 1; }
    $BIN/hd-cat --header "$TMP/q.mp" | grep -q '"kind":"queries"' || { echo "header kind"; return 1; }
    # distinct prompts, each the template filled with the entity
    $BIN/hd-cat "$TMP/q.mp" | grep '"t":"query"' >"$TMP/q.jsonl"
    [ "$(jq -r .prompt "$TMP/q.jsonl" | sort -u | wc -l)" = "$cells" ] || { echo "repeated prompts"; return 1; }
    jq -e -s 'all(.[]; (.template | split("%s")) as $t | .prompt == ($t[0] + .entity + $t[1]))' \
        "$TMP/q.jsonl" >/dev/null || { echo "prompt is not template % entity"; return 1; }
    # a sample of 40 is a prefix of a sample of 60 (same seed)
    $RP --domain physical_object --attribute Texture --iso-ratio 0 --queries -n 40 | $BIN/hd-cat |
        grep '"t":"query"' | jq -r .prompt >"$TMP/q40" || return 1
    $RP --domain physical_object --attribute Texture --iso-ratio 0 --queries -n 60 | $BIN/hd-cat |
        grep '"t":"query"' | jq -r .prompt | head -40 | cmp - "$TMP/q40" || return 1
    [ "$(sort -u "$TMP/q40" | wc -l)" = 40 ]
}
check "--queries: every verification prompt once; -n samples a prefix" queries

# --known-partners: with the strict filter, the partners come from the known
# prompts.  Known: every Texture prompt of 4 entities (2 hard, 2 soft),
# among the hundreds of the pool.
known_partners() {
    $RP --domain physical_object --attribute Texture --iso-ratio 0 --queries -n all | $BIN/hd-cat |
        grep '"t":"query"' >"$TMP/kp-q.jsonl" || return 1
    jq -r '[.answer, .entity] | @tsv' "$TMP/kp-q.jsonl" | sort -u | awk -F'\t' 'c[$1]++ < 2 {print $2}' |
        jq -R . | jq -s . >"$TMP/kp-ents.json"
    [ "$(jq length "$TMP/kp-ents.json")" = 4 ] || { echo "not 2 entities of each of 2 values"; return 1; }
    jq -c --slurpfile s "$TMP/kp-ents.json" \
        '{t: "known", prompt, answer, correct: (.entity as $e | $s[0] | index($e) != null), model: "hand"}' \
        "$TMP/kp-q.jsonl" | $BIN/hd-cat --to-records --kind known -o "$TMP/kp.known" || return 1
    jq -r 'select(.correct) | .prompt' <($BIN/hd-cat "$TMP/kp.known") | sort >"$TMP/kp-yes"
    $RP --domain physical_object --attribute Texture --iso-ratio 0 -n 60 --from-known --filter-strict \
        --known-partners --filter "$TMP/kp.known" -o "$TMP/kp.mp" 2>"$TMP/err" || { cat "$TMP/err"; return 1; }
    [ "$($BIN/hd-cat --count "$TMP/kp.mp")" = 60 ] || { echo "not 60 records"; return 1; }
    $BIN/hd-cat --header "$TMP/kp.mp" | grep -q '"known_partners":true' || { echo "header"; return 1; }
    # every base, verification and source prompt is a known one
    $BIN/hd-cat "$TMP/kp.mp" | grep '"t":"pair"' | jq -r '.base_input, .verify_input, .source_input' |
        sort -u | comm -23 - "$TMP/kp-yes" | grep -q . && { echo "a prompt outside the known ones"; return 1; }
    $RP --domain physical_object --from-known --known-partners --filter "$TMP/kp.known" >/dev/null 2>"$TMP/err"
    [ $? -eq 2 ] && grep -q "add --from-known --filter-strict" "$TMP/err"
}
check "--known-partners: strict records built from known prompts only" known_partners

# --from-known with the hand-written stream: two known Texture cells.
from_known() {
    [ -s "$TMP/known.mp" ] || return 1
    $RP --domain physical_object --attribute Texture --isolate Color -n 12 --from-known --stats \
        --filter "$TMP/known.mp" -o "$TMP/fk.mp" 2>"$TMP/err" || { cat "$TMP/err"; return 1; }
    $BIN/hd-cat "$TMP/fk.mp" >"$TMP/fk.jsonl"
    # 6 causal records on 2 known cells (3 passes), every one verifying on them
    [ "$(grep -c '"kind":"causal"' "$TMP/fk.jsonl")" = 6 ] || { echo "not 6 causal"; return 1; }
    local n_ok
    n_ok=$(grep -c -e "\"verify_input\":\"${T/\%s/apple}\"" -e "\"verify_input\":\"${T/\%s/pillow}\"" "$TMP/fk.jsonl")
    [ "$n_ok" = 6 ] || { echo "only $n_ok verify on a known prompt"; return 1; }
    grep -q 'Texture/causal/Texture: kept 6; known prompts 2 (used 2, 3 passes)' "$TMP/err" ||
        { cat "$TMP/err"; return 1; }
    # no Color prompt is known: that group ends short with a warning, the run goes on
    grep -q 'physical_object/train/Texture/isolate/Color: only 0 of 6 records: 0 known' "$TMP/err" ||
        { cat "$TMP/err"; return 1; }
    [ "$(grep -c '"kind":"isolate"' "$TMP/fk.jsonl")" = 0 ] || return 1
    grep -q '"from_known":true' "$TMP/fk.jsonl" || return 1
    # -n all: one record per known cell
    $RP --domain physical_object --attribute Texture --iso-ratio 0 -n all --from-known \
        --filter "$TMP/known.mp" | $BIN/hd-cat --count | grep -qx 2
}
if [ -s "$TMP/known.mp" ]; then
    check "--from-known draws around the known prompts; a short group warns" from_known
else
    skip "--from-known with a hand-written stream" "no known stream"
fi

known_usage() {
    $RP --from-known -n 3 >/dev/null 2>"$TMP/err"; [ $? -eq 2 ] && grep -q 'need --filter' "$TMP/err" || return 1
    $RP --from-known --refill --filter "$TMP/known.mp" >/dev/null 2>"$TMP/err"; [ $? -eq 2 ] || return 1
    $RP --queries --filter "$TMP/known.mp" >/dev/null 2>"$TMP/err"; [ $? -eq 2 ]
}
check "--from-known needs --filter and excludes --refill; --queries takes no filter" known_usage

check "missing --data directory" one_line_error 1 "ravel-pairs: $TMP/nowhere: no such directory" \
    $RP --data "$TMP/nowhere"
check "missing RAVEL_DIR directory" one_line_error 1 "no such directory" \
    env RAVEL_DIR="$TMP/nowhere" $RP
check "unknown domain lists the valid ones" one_line_error 2 \
    "ravel-pairs: unknown domain 'town' (valid: city, nobel_prize_winner, occupation, physical_object, verb)" \
    $RP --domain town
check "unknown attribute lists the valid ones" one_line_error 2 \
    "unknown attribute 'Colour' (valid: physical_object: Category, Color, Size, Texture)" \
    $RP --domain physical_object --attribute Colour
check "an attribute without values is refused" one_line_error 2 "attribute 'Gender Bias' has no values" \
    $RP --domain occupation --attribute 'Gender Bias'
check "unknown split" one_line_error 2 "unknown split 'dev'" $RP --split dev

empty_split() {
    copy_data
    sed -i 's/"val"/"train"/g' "$TMP/data/ravel_city_entity_to_split.json"
    one_line_error 1 "ravel_city_entity_to_split.json: no entity of split 'val'" \
        $RP --data "$TMP/data" --split val --split-type entity -o "$TMP/e.mp" || return 1
    [ ! -e "$TMP/e.mp" ] || { echo "-o left a file behind"; return 1; }
}
check "an empty split, and -o leaves no file" empty_split

malformed_json() {
    copy_data
    head -c 3000 data/ravel/ravel_verb_entity_attributes.json >"$TMP/data/ravel_verb_entity_attributes.json"
    one_line_error 1 "ravel-pairs: $TMP/data/ravel_verb_entity_attributes.json: line [0-9]*, column [0-9]*: " \
        $RP --data "$TMP/data" --domain verb
}
check "malformed JSON names file, line and column" malformed_json

missing_file() {
    copy_data
    rm "$TMP/data/ravel_occupation_attribute_to_prompts.json"
    one_line_error 1 "ravel_occupation_attribute_to_prompts.json: unable to open" \
        $RP --data "$TMP/data" --domain occupation
}
check "a missing data file" missing_file

# The Wikipedia file is optional: without it no record has a wiki source.
no_wikipedia() {
    copy_data
    rm "$TMP/data/wikipedia_occupation_entity_prompts.json"
    $RP --data "$TMP/data" --domain occupation -n 200 | $BIN/hd-cat >"$TMP/nw.jsonl" || return 1
    [ "$(grep -c '"t":"pair"' "$TMP/nw.jsonl")" = 600 ] || { echo "not 600 pairs"; return 1; }
    ! grep -q '"source_template_kind":"wikipedia"' "$TMP/nw.jsonl" || return 1
    grep -q '"wikipedia_occupation_entity_prompts.json":null' "$TMP/nw.jsonl"
}
check "without the Wikipedia file, attribute sources only" no_wikipedia

bad_content() {
    copy_data
    sed -i '0,/%s/s/%s/%s %s/' "$TMP/data/ravel_city_attribute_to_prompts.json"
    one_line_error 1 "ravel_city_attribute_to_prompts.json: attribute '.*': template '.*' does not contain exactly one %s" \
        $RP --data "$TMP/data"
}
check "a template with two slots" bad_content

check "a missing filter file" one_line_error 1 "ravel-pairs: $TMP/none.mp: No such file or directory" \
    $RP --filter "$TMP/none.mp"
check "a filter file that is not a record stream" one_line_error 1 \
    "ravel-pairs: data/ravel/README.md: record 1: " $RP --filter data/ravel/README.md
refill_usage() {
    $RP --refill >/dev/null 2>"$TMP/err"
    local st=$?
    cat "$TMP/err"
    [ "$st" -eq 2 ] && grep -q 'need --filter' "$TMP/err"
}
check "--refill without --filter is bad usage" refill_usage

done_testing
