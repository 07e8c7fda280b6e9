# CLI tests of hd-plot: heatmaps of score records, loss curves of hd-train
# logs, well-formed SVG, escaping, --max/--mode, errors leaving no files.
source tests/cli/lib.bash
P=$BIN/hd-plot

# Well-formed XML with the given root element; xmllint too when installed.
wellformed() {   # root file...
    local root=$1 f; shift
    for f; do awk -v root="$root" -f tests/cli/xmlcheck.awk "$f" || return 1; done
    if command -v xmllint > /dev/null; then xmllint --noout "$@" || return 1; fi
}
export -f wellformed   # used inside the bash -c checks too

# Three soft examples (two Country, of different lengths and entity
# positions, one Continent) and one column_argmax example.  Source token 1 of
# the first holds <&" and a newline token, the base tokens hold spaces.
cat > $TMP/scores.jsonl <<'EOF'
{"t":"header","kind":"scores"}
{"t":"score","id":"city/test/Country/causal/0","kind":"causal","target_attribute":"Country","mode":"soft","label":" France","prediction":" Spain","correct":false,"base_tokens":["<s>","Paris"," is"," in"],"source_tokens":["<s>","Tok<&\"yo","\n"],"base_entity_pos":1,"source_entity_pos":1,"weights":{"dtype":"f32","shape":[4,4],"data":[0.1,0.2,0.3,0.4,0.5,0.6,0.1,0.2,0.2,0.1,0.5,0.3,0.2,0.1,0.1,0.1]}}
{"t":"score","id":"city/test/Country/causal/1","kind":"causal","target_attribute":"Country","mode":"soft","label":" Japan","prediction":" Japan","correct":true,"base_tokens":["<s>","The","city","Rome"," is"],"source_tokens":["<s>","Oslo"],"base_entity_pos":3,"source_entity_pos":1,"weights":{"dtype":"f32","shape":[3,5],"data":[0,0,0,0,0,1,1,1,1,1,0,0,0,0,0]}}
{"t":"score","id":"city/test/Continent/isolate/2","kind":"isolate","target_attribute":"Continent","mode":"soft","label":" Asia","prediction":" Asia","correct":true,"base_tokens":["<s>","Lima"],"source_tokens":["<s>","Kyiv"],"base_entity_pos":1,"source_entity_pos":1,"weights":{"dtype":"f32","shape":[3,2],"data":[0.5,0.5,0.5,0.5,0,0]}}
{"t":"score","id":"city/test/Country/causal/0","kind":"causal","target_attribute":"Country","mode":"column_argmax","label":" France","prediction":" France","correct":true,"base_tokens":["<s>","Paris"],"source_tokens":["<s>","Tokyo"],"base_entity_pos":1,"source_entity_pos":1,"weights":{"dtype":"f32","shape":[3,2],"data":[0,0,1,0,0,1]}}
{"t":"summary","split":"test","rows":[]}
EOF
$BIN/hd-cat --to-records $TMP/scores.jsonl -o $TMP/scores.msgpack
H=$TMP/heat
EX0=$H/city_test_Country_causal_0.soft.svg
MEAN=$H/mean.Country.soft.svg

check "heatmaps: runs" $P --heatmaps $H $TMP/scores.msgpack
check "heatmaps: one file per example, per attribute and mode, and an index" bash -c "
    for f in city_test_Country_causal_0.soft.svg city_test_Country_causal_1.soft.svg \
             city_test_Continent_isolate_2.soft.svg city_test_Country_causal_0.column_argmax.svg \
             mean.Country.soft.svg mean.Continent.soft.svg mean.Country.column_argmax.svg index.html; do
        [ -s $H/\$f ] || { echo missing \$f; exit 1; }
    done
    [ \$(ls $H | wc -l) = 8 ]"
check "heatmaps: every SVG is well-formed with an <svg> root" wellformed svg $H/*.svg
check "heatmaps: index.html is well-formed" wellformed html $H/index.html
check "heatmaps: token labels are XML-escaped" bash -c "
    grep -q '>1 Tok&lt;&amp;&quot;yo<' $EX0 && ! grep -qF 'Tok<&' $EX0 && ! grep -qF 'Tok&\"' $EX0"
check "heatmaps: spaces and newlines are shown" bash -c "
    grep -q '>2 ␣is<' $EX0 && grep -qF '>2 \\n<' $EX0"
check "heatmaps: rows are source tokens and (self), columns base tokens" bash -c "
    [ \$(grep -c 'class=\"cell' $EX0) = 16 ] && grep -q '>(self)<' $EX0 &&
    grep -qF '<title>2 \\n → 3 ␣in: 0.3000</title>' $EX0"
check "heatmaps: the entity's last tokens are bold and outlined" bash -c "
    grep -q 'font-weight=\"bold\"[^>]*>1 Paris<' $EX0 && grep -q 'font-weight=\"bold\"[^>]*>1 Tok' $EX0 &&
    [ \$(grep -c 'class=\"mark\"' $EX0) = 2 ]"
check "heatmaps: the title has id, mode, label, prediction and correct" bash -c "
    grep -q '>city/test/Country/causal/0<' $EX0 && grep -q 'mode: soft ' $EX0 &&
    grep -q 'label: ␣France   prediction: ␣Spain   correct: no' $EX0"
check "heatmaps: a colour scale legend from 0 to 1" bash -c "
    grep -q 'linearGradient' $EX0 && grep -q '>0.00<' $EX0 && grep -q '>1.00<' $EX0"
# Country/soft: source offsets -1..1 and self (4 rows) x base offsets -3..2 (6 columns)
check "mean: cells of every offset seen, empty where no example has them" bash -c "
    [ \$(grep -c 'class=\"cell' $MEAN) = 24 ] && [ \$(grep -c 'class=\"cell nodata\"' $MEAN) = 2 ] &&
    grep -q '>e-3<' $MEAN && grep -q '>e+2<' $MEAN && grep -q '>e+1<' $MEAN"
check "mean: cells are means over the examples that have them" bash -c "
    grep -qF '<title>e → e: 0.8000 (n=2)</title>' $MEAN &&
    grep -qF '<title>e-1 → e-1: 0.0500 (n=2)</title>' $MEAN &&
    grep -qF '<title>(self) → e-1: 0.1000 (n=2)</title>' $MEAN &&
    grep -qF '<title>e+1 → e+2: 0.3000 (n=1)</title>' $MEAN"
check "mean: the title gives the number of examples" grep -q 'mean of 2 examples: Country, mode soft' $MEAN
check "index links every SVG, grouped by attribute" bash -c "
    for f in \$(cd $H && ls *.svg); do grep -q \"href=\\\"\$f\\\"\" $H/index.html || { echo no link to \$f; exit 1; }; done
    grep -n '<h2>' $H/index.html | tr '\n' ' ' | grep -q 'Continent</h2>.*Country</h2>'"

check "--max bounds the per-example heatmaps, not the means" bash -c "
    $P --heatmaps $TMP/max1 --max 1 $TMP/scores.msgpack &&
    [ \$(ls $TMP/max1 | grep -vc '^mean\\.\\|^index') = 1 ] &&
    grep -q 'mean of 2 examples' $TMP/max1/mean.Country.soft.svg &&
    $P --heatmaps $TMP/max0 --max 0 $TMP/scores.msgpack &&
    [ \$(ls $TMP/max0 | grep -vc '^mean\\.\\|^index') = 0 ] && [ -s $TMP/max0/mean.Continent.soft.svg ]"
check "--max defaults to 50" bash -c "
    for i in \$(seq 60); do cat $TMP/scores.msgpack; done > $TMP/many.msgpack &&
    $P --heatmaps $TMP/many $TMP/many.msgpack &&
    [ \$(ls $TMP/many | grep -vc '^mean\\.\\|^index') = 50 ] &&
    grep -q 'mean of 120 examples: Country, mode soft' $TMP/many/mean.Country.soft.svg"
check "a repeated id gets a file of its own" bash -c "
    cat $TMP/scores.msgpack $TMP/scores.msgpack | $P --heatmaps $TMP/twice &&
    [ -s '$TMP/twice/city_test_Country_causal_0+2.soft.svg' ] && [ \$(ls $TMP/twice | wc -l) = 12 ]"
check "--mode keeps one selection mode" bash -c "
    $P --heatmaps $TMP/col --mode column_argmax $TMP/scores.msgpack &&
    [ \"\$(ls $TMP/col | tr '\n' ' ')\" = 'city_test_Country_causal_0.column_argmax.svg index.html mean.Country.column_argmax.svg ' ]"
check "gzip input on stdin" bash -c "
    gzip -c $TMP/scores.msgpack | $P --heatmaps $TMP/gz && [ \$(ls $TMP/gz | wc -l) = 8 ]"

# ---- curves
{
    echo '{"t":"header","kind":"log"}'
    for i in $(seq 1 30); do
        echo "{\"t\":\"step\",\"step\":$i,\"loss\":$((100 - i)).5,\"pred_loss\":$((90 - i)).25,\"lr\":0.001}"
        [ $((i % 10)) = 0 ] && for m in soft column_argmax; do
            echo "{\"t\":\"eval\",\"step\":$i,\"mode\":\"$m\",\"cause\":0.$i,\"isolate\":0.5,\"disentangle\":0.4}"
        done
    done
} | $BIN/hd-cat --to-records -o $TMP/log1.msgpack
grep -v eval <($BIN/hd-cat --full $TMP/log1.msgpack) | $BIN/hd-cat --to-records -o $TMP/log2.msgpack
C=$TMP/curve.svg
check "curve: runs and writes a well-formed SVG" bash -c "$P --curve $C $TMP/log1.msgpack && [ -s $C ]"
check "curve: well-formed" wellformed svg $C
check "curve: loss panel and evaluation panel with points" bash -c "
    grep -q '>training loss<' $C && grep -q '>evaluation: cause' $C &&
    [ \$(grep -c '<polyline class=\"series\"' $C) = 6 ] &&
    [ \$(grep -c '<circle class=\"point\"' $C) = 12 ] &&
    grep -q '>soft cause<' $C && grep -q '>column_argmax isolate<' $C && grep -q '>pred_loss<' $C"
check "curve: axes have ticks and labels" bash -c "
    grep -q '>step<' $C && grep -q '>loss<' $C && grep -q '>accuracy<' $C && grep -q '>30<' $C && grep -q '>1.0<' $C"
check "curve: several logs are overlaid, named by file, smoothed" bash -c "
    $P --curve $TMP/two.svg --smooth 5 $TMP/log1.msgpack $TMP/log2.msgpack &&
    grep -qF '>$TMP/log1.msgpack: loss<' $TMP/two.svg && grep -qF '>$TMP/log2.msgpack: pred_loss<' $TMP/two.svg &&
    grep -q 'moving average over 5 steps' $TMP/two.svg &&
    [ \$(grep -c '<polyline class=\"series\"' $TMP/two.svg) = 12 ] && wellformed svg $TMP/two.svg"
check "curve: no eval records, no evaluation panel" bash -c "
    $P --curve $TMP/noeval.svg < $TMP/log2.msgpack && ! grep -q 'evaluation' $TMP/noeval.svg"
check "curve: eval records only, to stdout" bash -c "
    $BIN/hd-cat --full $TMP/log1.msgpack | grep -v '\"t\":\"step\"' | $BIN/hd-cat --to-records |
        $P --curve - > $TMP/evalonly.svg &&
    wellformed svg $TMP/evalonly.svg && grep -q '>evaluation: cause' $TMP/evalonly.svg &&
    ! grep -q 'training loss' $TMP/evalonly.svg"
# the loss falls by exactly 1 a step: smoothed over 3 steps, the line is the
# raw one shifted by one step, so its last point sits 1 lower than the raw one
check "curve: --smooth is a trailing moving average" bash -c "
    $P --curve $TMP/sm.svg --smooth 3 $TMP/log2.msgpack &&
    raw=\$(grep 'stroke-opacity' $TMP/sm.svg | head -1 | grep -o '[0-9.]*,[0-9.]* \"' | cut -d, -f2 | tr -d ' \"') &&
    sm=\$(grep '<polyline' $TMP/sm.svg | grep -v 'stroke-opacity' | head -1 | grep -o '[0-9.]*,[0-9.]* \"' | cut -d, -f2 | tr -d ' \"') &&
    awk -v r=\$raw -v s=\$sm 'BEGIN { exit !(s < r - 1) }'"

# ---- errors: one line naming file and record, exit 1, no file left behind
printf '%s\n' '{"t":"score","id":"x","base_tokens":["a","b"],"source_tokens":["c"],"base_entity_pos":0,"source_entity_pos":0,"weights":{"dtype":"f32","shape":[3,2],"data":[1,1,1,1,1,1]}}' |
    $BIN/hd-cat --to-records -o $TMP/shape.msgpack
printf '%s\n' '{"t":"score","id":"ok","base_tokens":["a"],"source_tokens":["c"],"base_entity_pos":0,"source_entity_pos":0,"weights":{"dtype":"f32","shape":[2,1],"data":[0,1]}}' \
              '{"t":"score","id":"x","base_tokens":["a"],"source_tokens":["c"],"base_entity_pos":0,"source_entity_pos":0,"weights":{"dtype":"f32","shape":[2,1],"data":["NaN",1]}}' |
    $BIN/hd-cat --to-records -o $TMP/nan.msgpack
printf '%s\n' '{"t":"score","id":"x","base_tokens":["a"],"source_tokens":["c"],"base_entity_pos":1,"source_entity_pos":0,"weights":{"dtype":"f32","shape":[2,1],"data":[0,1]}}' |
    $BIN/hd-cat --to-records -o $TMP/pos.msgpack
head -c 700 $TMP/scores.msgpack > $TMP/cut.msgpack
fails_cleanly() {   # dir pattern-of-error input...
    local dir=$1 want=$2; shift 2
    ! $P --heatmaps $dir "$@" 2> $TMP/err || return 1
    [ "$(wc -l < $TMP/err)" = 1 ] && grep -q "^hd-plot: $want" $TMP/err || { cat $TMP/err; return 1; }
    [ ! -e $dir ]
}
check "error: missing file" fails_cleanly $TMP/e1 "/nonexistent.msgpack: No such file or directory" /nonexistent.msgpack
check "error: truncated stream names file and record" fails_cleanly $TMP/e2 "$TMP/cut.msgpack: record [0-9]*: truncated" $TMP/cut.msgpack
check "error: weights shape disagrees with the tokens" fails_cleanly $TMP/e3 \
    "$TMP/shape.msgpack: record 2: weights shape \[3, 2\] disagrees with the tokens: 1 source and 2 base tokens need \[2, 2\]" $TMP/shape.msgpack
check "error: NaN weights" fails_cleanly $TMP/e4 "$TMP/nan.msgpack: record 3: weights hold NaN at \[0, 0\]" $TMP/nan.msgpack
check "error: entity position outside the tokens" fails_cleanly $TMP/e5 "$TMP/pos.msgpack: record 2: base_entity_pos 1 is outside" $TMP/pos.msgpack
check "error: no score records" fails_cleanly $TMP/e6 "no score records" $TMP/log1.msgpack
check "error: bad input leaves an existing directory as it was" bash -c "
    before=\$(ls -l --time-style=+%s.%N $H | md5sum)
    ! $P --heatmaps $H $TMP/scores.msgpack $TMP/nan.msgpack 2>/dev/null &&
    [ \"\$(ls -l --time-style=+%s.%N $H | md5sum)\" = \"\$before\" ]"
check "error: truncated log leaves no curve file" bash -c "
    head -c 400 $TMP/log1.msgpack > $TMP/cutlog.msgpack
    ! $P --curve $TMP/bad.svg $TMP/cutlog.msgpack 2> $TMP/err &&
    grep -q '^hd-plot: $TMP/cutlog.msgpack: record [0-9]*: truncated' $TMP/err &&
    [ -z \"\$(ls $TMP | grep bad.svg)\" ]"
check "error: a step record without loss" bash -c "
    printf '%s\n' '{\"t\":\"step\",\"step\":1,\"pred_loss\":2}' | $BIN/hd-cat --to-records > $TMP/noloss.msgpack
    ! $P --curve $TMP/bad.svg $TMP/noloss.msgpack 2> $TMP/err &&
    grep -qx \"hd-plot: $TMP/noloss.msgpack: record 2: step record has no 'loss'\" $TMP/err && [ ! -e $TMP/bad.svg ]"
# Learning curve: two summaries of one method/mode at two sizes, given in
# reverse order, one with intervals; and a second mode without them, whose
# flip rate is nil (no marker): 2 sizes x (4 + 3) panels = 14 points.
summary() {   # disentangle cause isolate flip [ci]
    local ci=""
    [ -n "${5:-}" ] && ci=",\"disentangle_ci\":[0.1,0.9],\"cause_ci\":[0.1,0.9],\"isolate_ci\":[0.1,0.9],\"cause_changed_ci\":[0.1,0.9]"
    echo "{\"t\":\"summary\",\"split\":\"test\",\"method\":\"hyperdas\",\"mode\":\"soft\",\"rule\":\"teacher-forced\",\"rows\":[{\"domain\":\"city\",\"attribute\":\"Country\",\"disentangle\":0.99},{\"domain\":\"(all)\",\"attribute\":\"(mean)\",\"disentangle\":$1,\"cause\":$2,\"isolate\":$3,\"cause_changed\":$4$ci}]}"
    echo "{\"t\":\"summary\",\"split\":\"test\",\"method\":\"das\",\"mode\":\"groundtruth\",\"rule\":\"teacher-forced\",\"rows\":[{\"domain\":\"(all)\",\"attribute\":\"(mean)\",\"disentangle\":0.5,\"cause\":0.5,\"isolate\":0.5,\"cause_changed\":null}]}"
    echo "{\"t\":\"summary\",\"split\":\"val\",\"method\":\"hyperdas\",\"mode\":\"soft\",\"rule\":\"teacher-forced\",\"rows\":[{\"domain\":\"(all)\",\"attribute\":\"(mean)\",\"disentangle\":0.0}]}"
}
summary 0.25 0.5 0.0 0.5 ci | $BIN/hd-cat --to-records -o $TMP/s500.msgpack
summary 0.75 0.5 1.0 0.5 | $BIN/hd-cat --to-records -o $TMP/s2000.msgpack
L=$TMP/learning.svg
check "learning curve: one series per method/mode, a point per size and panel" bash -c "
    $P --learning-curve $L 2000=$TMP/s2000.msgpack 500=$TMP/s500.msgpack && wellformed svg $L &&
    grep -q '>hyperdas/soft (teacher-forced)<' $L && grep -q '>das/groundtruth (teacher-forced)<' $L &&
    grep -q '>training pairs<' $L && grep -q '>Disentangle' $L && grep -q '>Flip rate' $L &&
    [ \$(grep -c '<circle class=\"point\"' $L) = 14 ]"
# The Disentangle panel's first polyline is hyperdas/soft: sorted by size,
# its y goes up from 25% to 75% (SVG y falls); the interval lines exist
# only where the summary had them (the 500 point), so they are single
# points drawn as no line, while the value line has two points.
check "learning curve: points sorted by size, values from the overall row" bash -c "
    pts=\$(grep -m1 '<polyline class=\"series\"' $L | sed 's/.*points=\"\([^\"]*\)\".*/\\1/') &&
    set -- \$pts && [ \$# = 2 ] &&
    x1=\${1%,*} y1=\${1#*,} x2=\${2%,*} y2=\${2#*,} &&
    awk -v a=\$x1 -v b=\$x2 -v c=\$y1 -v d=\$y2 'BEGIN { exit !(a < b && c > d) }'"
check "learning curve: --split picks the summaries, bad arguments are usage errors" bash -c "
    $P --learning-curve $TMP/lv.svg --split val 500=$TMP/s500.msgpack && grep -q 'val split' $TMP/lv.svg &&
    ! $P --learning-curve $TMP/lx.svg --split dev 500=$TMP/s500.msgpack 2> $TMP/err &&
    grep -q \"no summary record of split 'dev'\" $TMP/err && [ ! -e $TMP/lx.svg ] &&
    $P --learning-curve $TMP/ly.svg $TMP/s500.msgpack 2>/dev/null; [ \$? = 2 ] &&
    $P --learning-curve $TMP/ly.svg 2>/dev/null; [ \$? = 2 ] &&
    $P --curve $TMP/ly.svg --split test $TMP/log1.msgpack 2>/dev/null; [ \$? = 2 ]"
check "bad usage exits 2" bash -c "
    $P $TMP/scores.msgpack 2>/dev/null; [ \$? = 2 ] || exit 1
    $P --heatmaps $TMP/u --curve $TMP/u.svg 2>/dev/null; [ \$? = 2 ] || exit 1
    $P --heatmaps $TMP/u --smooth 3 2>/dev/null; [ \$? = 2 ] || exit 1
    $P --curve $TMP/u.svg --max 3 2>/dev/null; [ \$? = 2 ] || exit 1
    $P --curve $TMP/u.svg --smooth 0 2>/dev/null; [ \$? = 2 ] || exit 1
    $P --heatmaps $TMP/u --max x 2>/dev/null; [ \$? = 2 ]"
done_testing
