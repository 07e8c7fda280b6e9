#!/usr/bin/env bash
# hd-locate on a tiny checkpoint trained here on the tiny random Llama
# fixture (as tests/cli/hd-score.sh trains one): the example it shows is
# the one hd-score scores.  Its weights are compared with those of
# hd-score's score record for the same pair (cache-acts, then hd-score
# with batch 1: a batch pads its rows to the longest, and the selection
# head counts the padded columns), value for value; the text view's keep
# column and "from source" pairs with the same weights; --svg with the
# heatmap hd-plot draws; -o with a stream hd-plot and hd-score read.
source tests/cli/lib.bash
export HD_MODEL=tests/fixtures/tiny-llama-f32
export SOURCE_DATE_EPOCH=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
HL=$BIN/hd-locate
SMALL="-b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32"
$BIN/ravel-pairs --domain city --attribute Country --isolate Language -n 8 | $BIN/cache-acts -o $TMP/train.acts
$BIN/hd-train -c $TMP/hd $SMALL --max-steps 3 $TMP/train.acts >$TMP/hd.log 2>/dev/null
$BIN/hd-train --method das -c $TMP/das -b 4 --layer 2 --das-dim 8 --max-steps 3 $TMP/train.acts >$TMP/das.log 2>/dev/null

# One test pair, its fields, and hd-score's record of it.
$BIN/ravel-pairs --domain city --attribute Country --iso-ratio 0 -n 1 --split test -o $TMP/one.pairs
$BIN/hd-cat $TMP/one.pairs | grep '"t":"pair"' >$TMP/pair.json
field() { jq -r ".$1" $TMP/pair.json; }
BASE=$(field base_input) SOURCE=$(field source_input) E1=$(field base_entity) E2=$(field source_entity)
LABEL=$(field label) ATTR=$(field target_attribute)
$BIN/cache-acts -o $TMP/one.acts $TMP/one.pairs
$BIN/hd-score -b 1 -c $TMP/hd --modes soft -o $TMP/one.scores $TMP/one.acts 2>/dev/null
$BIN/hd-cat --full --where t=score $TMP/one.scores | grep '^{"t":"score"' >$TMP/score.json
locate() { $HL -c $TMP/hd --base "$BASE" --source "$SOURCE" --base-entity "$E1" --source-entity "$E2" "$@"; }

check "--help describes the options" bash -c "$HL --help | grep -q -- '--source-entity E'"
check "--version" bash -c "$HL --version | grep -q '^hd-locate (hyperdas) '"

same_as_hd_score() {
    locate --attribute "$ATTR" --label "$LABEL" --json >$TMP/loc.json || return 1
    [ "$(wc -l <$TMP/loc.json)" = 1 ] || return 1
    # every field but the pair's identity (hd-locate has no domain, split, template)
    jq -e -s '(.[0] | del(.id, .domain, .split, .base_template)) == (.[1] | del(.id, .domain, .split, .base_template))' \
        $TMP/loc.json $TMP/score.json >/dev/null || { echo "the records differ"; return 1; }
    jq -e -s '.[0].weights.data == .[1].weights.data and (.[0].weights.data | length) > 0' \
        $TMP/loc.json $TMP/score.json >/dev/null
}
check "--json: the score record hd-score writes for the same pair, weights value for value" same_as_hd_score

# The text view: per base position the keep weight and the source token
# that gives it the most, both read from the table and checked against the
# weights of hd-score's record (last row = keep) and its "chosen" pairs.
text_view() {
    locate --attribute "$ATTR" --label "$LABEL" --color never >$TMP/view.txt || return 1
    grep -q "^instruction  $E1 ; $E2 - $ATTR\$" $TMP/view.txt || { cat $TMP/view.txt; return 1; }
    grep -q "^label        $LABEL\$" $TMP/view.txt || return 1
    ! grep -q $'\033' $TMP/view.txt || { echo "escape codes with --color never"; return 1; }
    # rows: "  t[*] TOKEN  KEEP | cells | [from-index token (pct%)]"
    awk -F'|' '/^ *[0-9]+\*? / { split($1, a, " "); n = split($1, b, " "); keep = b[n];
               if (keep == ".") keep = 0; from = $3; sub(/^ /, "", from); split(from, c, " ");
               print a[1] + 0, keep, (from == "" ? -1 : c[1]) }' $TMP/view.txt >$TMP/rows.txt
    jq -r '.weights as $w | ($w.shape[0] - 1) as $S | range($w.shape[1]) as $t |
           ($w.data[$S * $w.shape[1] + $t] * 100 | round) as $k |
           ([.chosen[] | select(.[1] == $t) | .[0]] | if length == 0 then -1 else .[0] end) as $from |
           "\($t) \($k) \($from)"' $TMP/score.json | sed 's/^\([0-9]*\) 0 /\1 0 /' >$TMP/want.txt
    [ -s $TMP/rows.txt ] && diff $TMP/rows.txt $TMP/want.txt
}
check "text view: keep column and patched source per base position match hd-score's weights" text_view

colours() {
    locate --attribute "$ATTR" --label "$LABEL" --color always | grep -q $'\033\[48;2;' || return 1
    [ "$(locate --attribute "$ATTR" --label "$LABEL" | grep -c $'\033')" = 0 ] || { echo "escapes in a pipe"; return 1; }
    # without colours the prompts get a line of shades under them
    grep -A1 '^base  ' $TMP/view.txt | tail -1 | grep -q '[░▒▓█]'
}
check "--color always shades with colours; a pipe gets none" colours

svg_and_stream() {
    locate --attribute "$ATTR" --label "$LABEL" --svg $TMP/loc.svg -o $TMP/loc.scores >/dev/null || return 1
    awk -f tests/cli/xmlcheck.awk $TMP/loc.svg || return 1
    # the stream: hd-locate's header over the acts and pairs headers, one score record
    $BIN/hd-cat --header $TMP/loc.scores | jq -e '.kind == "scores" and .tool == "hd-locate" and
        .inputs[0].kind == "acts" and .inputs[0].inputs[0].kind == "pairs" and .method == "hyperdas" and
        .modes == ["soft"]' >/dev/null || { $BIN/hd-cat --header $TMP/loc.scores; return 1; }
    [ "$($BIN/hd-cat --where t=score --count $TMP/loc.scores)" = 1 ] || return 1
    $BIN/hd-score --summarize $TMP/loc.scores >/dev/null || return 1
    # hd-plot draws the stream's record as --svg did, byte for byte
    $BIN/hd-plot --heatmaps $TMP/plots $TMP/loc.scores 2>/dev/null || return 1
    cmp $TMP/loc.svg $TMP/plots/hd-locate.soft.svg || return 1
    # and its cells are those of hd-score's record of the same pair
    $BIN/hd-plot --heatmaps $TMP/plots2 $TMP/one.scores 2>/dev/null || return 1
    diff <(grep -o '<rect class="cell[^>]*>' $TMP/loc.svg) \
         <(grep -o '<rect class="cell[^>]*>' $TMP/plots2/*.soft.svg | head -n "$(grep -c '<rect class="cell' $TMP/loc.svg)")
}
check "--svg is hd-plot's heatmap; -o is a scores stream hd-plot and hd-score read" svg_and_stream

instruction_given() {
    locate --instruction "$E1 ; $E2 - $ATTR" --label "$LABEL" --json | jq -c .weights.data >$TMP/a.txt &&
    jq -c .weights.data $TMP/loc.json | cmp - $TMP/a.txt
}
check "--instruction TEXT is the instruction --attribute builds" instruction_given

own_token() {
    # no --label: the model's own next token, so the base prediction is the label
    locate --attribute "$ATTR" --json >$TMP/own.json || return 1
    jq -e '.base_pred_correct == true and (.label | length) > 0' $TMP/own.json >/dev/null
}
check "without --label the label is the model's own next token" own_token

das_mode() {
    # a DAS checkpoint: groundtruth, the entities' last tokens
    $HL -c $TMP/das --base "$BASE" --source "$SOURCE" --base-entity "$E1" --source-entity "$E2" \
        --attribute "$ATTR" --label "$LABEL" --json >$TMP/das.json || return 1
    jq -e '.mode == "groundtruth" and .method == "das" and .chosen == [[.source_entity_pos, .base_entity_pos]]' \
        $TMP/das.json >/dev/null
}
check "a DAS checkpoint: groundtruth at the entities' last tokens" das_mode

usage_error() {   # pattern command...: status 2, the message first on stderr, nothing on stdout
    local pattern=$1
    shift
    "$@" >$TMP/out 2>$TMP/err
    local st=$?
    cat $TMP/err
    [ $st -eq 2 ] && head -1 $TMP/err | grep -q -- "$pattern" && [ ! -s $TMP/out ]
}
check "an entity not in its prompt" usage_error "--base-entity 'Atlantis' does not occur in the base prompt" \
    $HL -c $TMP/hd --base "$BASE" --source "$SOURCE" --base-entity Atlantis --source-entity "$E2" --attribute X
check "no instruction" usage_error "an instruction is needed" $HL -c $TMP/hd --base "$BASE" --source "$SOURCE"
check "no prompts" usage_error "--base TEXT and --source TEXT are needed" $HL -c $TMP/hd --base "$BASE"
check "an unknown mode" usage_error "--mode: unknown mode 'best'" \
    $HL -c $TMP/hd --base "$BASE" --source "$SOURCE" --instruction x --mode best
missing_ckpt() {
    $HL -c $TMP/nowhere --base "$BASE" --source "$SOURCE" --instruction x >$TMP/out 2>$TMP/err
    local st=$?
    cat $TMP/err
    [ $st -eq 1 ] && [ "$(wc -l <$TMP/err)" = 1 ] && grep -q "$TMP/nowhere" $TMP/err
}
check "a missing checkpoint: one line naming it" missing_ckpt
no_tmp_left() {
    mkdir -p $TMP/t && TMPDIR=$TMP/t locate --attribute "$ATTR" --label "$LABEL" >/dev/null &&
    TMPDIR=$TMP/t $HL -c $TMP/hd --base "$BASE" --source "$SOURCE" --instruction x --label "$(printf '\377')" \
        >/dev/null 2>&1
    [ -z "$(ls -A $TMP/t)" ]
}
check "the temporary streams are removed, after an error too" no_tmp_left

done_testing
