# hd-score and hd-train --method das end to end on the tiny random Llama
# fixture: score records and summaries are well formed, --summarize gives
# back the same summaries, the identity intervention (source = base) under
# the DAS method changes no prediction (Cause = Isolate = 1 once the labels
# are the model's own answers), and bad input is named.
source tests/cli/lib.bash
export HD_MODEL=tests/fixtures/tiny-llama-f32
export SOURCE_DATE_EPOCH=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
SMALL="-b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32"
$BIN/ravel-pairs --domain city --attribute Country,Continent --isolate Language -n 8 | $BIN/cache-acts -o $TMP/train.acts
$BIN/ravel-pairs --domain city --attribute Country,Continent --isolate Language -n 6 --split test | $BIN/cache-acts -o $TMP/test.acts
N_TEST=$($BIN/hd-cat --where t=acts --count $TMP/test.acts)
$BIN/hd-train -c $TMP/hd $SMALL --max-steps 3 $TMP/train.acts > $TMP/hd.log 2>/dev/null
$BIN/hd-train --method das -c $TMP/das -b 4 --layer 2 --das-dim 8 --max-steps 3 $TMP/train.acts > $TMP/das.log 2>/dev/null

check "DAS checkpoint: only the rotation, method das in config.json" bash -c "
    grep -aq 'das.rotate.X' $TMP/das/latest/model.safetensors &&
    ! grep -aq 'hyper.' $TMP/das/latest/model.safetensors &&
    grep -q '\"method\": \"das\"' $TMP/das/latest/config.json"
check "DAS: the loss falls on a fixed batch (30 steps, lr 3e-2; by > 1%: 8 of 16 dims of a random model)" bash -c "
    $BIN/hd-cat --full $TMP/train.acts | head -5 | $BIN/hd-cat --to-records > $TMP/four.acts &&
    $BIN/hd-train --method das -c $TMP/fixed -b 4 --layer 2 --das-dim 8 --epochs 30 --lr-rotate 3e-2 \
        --save-every 0 $TMP/four.acts | $BIN/hd-cat --where t=step |
        grep -o '\"pred_loss\":[^,]*' | cut -d: -f2 > $TMP/losses &&
    [ \$(wc -l < $TMP/losses) = 30 ] &&
    awk 'NR == 1 {first = \$1} {last = \$1} END {exit !(last < 0.99 * first)}' $TMP/losses"
check "one score record per example and mode, one summary per mode" bash -c "
    $BIN/hd-score -c $TMP/hd --modes soft,bidding_argmax,random $TMP/test.acts > $TMP/hd.scores &&
    $BIN/hd-cat --header $TMP/hd.scores | grep -q '\"kind\":\"scores\"' &&
    [ \$($BIN/hd-cat --where t=score --count $TMP/hd.scores) = \$((3 * $N_TEST)) ] &&
    [ \$($BIN/hd-cat --where t=summary --count $TMP/hd.scores) = 3 ] &&
    [ \$($BIN/hd-cat --where t=score --where mode=bidding_argmax --count $TMP/hd.scores) = $N_TEST ]"
check "score record: weights [S+1, B] over the tokens, entity positions, prediction" bash -c "
    $BIN/hd-cat --where t=score --head 1 $TMP/hd.scores | tail -1 > $TMP/one.json &&
    jq -e '(.weights.shape == [(.source_tokens | length) + 1, (.base_tokens | length)]) and
           (.base_entity_pos < (.base_tokens | length)) and (.source_entity_pos < (.source_tokens | length)) and
           (.correct | type == \"boolean\") and (.pred_ids | length) == (.label_ids | length) and
           .method == \"hyperdas\" and .rule == \"teacher-forced\"' $TMP/one.json > /dev/null"
# A name with non-ASCII letters: the tiny model's byte-level tokens split
# its characters, and such a token's bytes must not make a str that is not
# UTF-8 (Python's msgpack raw=False, iconv and jq refuse one).
$BIN/ravel-pairs --domain nobel_prize_winner -n 100 | $BIN/hd-cat --full |
    jq -c 'select(.t == "header" or (.base_input // "" | explode | any(. > 127)))' | head -3 |
    $BIN/hd-cat --to-records | $BIN/cache-acts -o $TMP/utf8.acts
check "a token holding part of a character: a bin in base_tokens; every str is UTF-8" bash -c "
    $BIN/hd-score -c $TMP/hd --modes soft $TMP/utf8.acts > $TMP/utf8.scores &&
    $BIN/hd-cat --where t=score $TMP/utf8.scores | grep -a '^{\"t\":\"score\"' > $TMP/utf8.jsonl &&
    [ \$(wc -l < $TMP/utf8.jsonl) = 2 ] && iconv -f UTF-8 -t UTF-8 $TMP/utf8.jsonl > /dev/null &&
    jq -e '[.base_tokens[] | objects | select(has(\"\$bin\"))] | length > 0' $TMP/utf8.jsonl > /dev/null &&
    $BIN/hd-plot --heatmaps $TMP/utf8.plots $TMP/utf8.scores 2> /dev/null && [ -s $TMP/utf8.plots/index.html ]"
check "summary rows: per attribute, domain mean, overall; rates in [0, 1] or nil" bash -c "
    $BIN/hd-cat --where t=summary --where mode=soft $TMP/hd.scores | grep '^{\"t\":\"summary\"' > $TMP/sum.json &&
    jq -e '(.rows | map(.attribute) | index(\"Country\") != null) and
           (.rows[-1].domain == \"(all)\") and (.rows[-2].attribute == \"(mean)\") and
           (.rows[-1].n_causal + .rows[-1].n_isolate == $N_TEST) and
           ([.rows[] | .cause, .isolate, .disentangle | select(. != null) | select(. < 0 or . > 1)] | length == 0)' \
        $TMP/sum.json > /dev/null"
check "--summarize recomputes the same summaries from the score records" bash -c "
    $BIN/hd-score --summarize $TMP/hd.scores | $BIN/hd-cat --where t=summary | grep '^{\"t\":\"summary\"' > $TMP/again.json &&
    $BIN/hd-cat --where t=summary $TMP/hd.scores | grep '^{\"t\":\"summary\"' > $TMP/first.json && [ -s $TMP/first.json ] && cmp $TMP/first.json $TMP/again.json"
check "--table: one section per mode and the comparison with the unintervened model" bash -c "
    $BIN/hd-score --summarize --table $TMP/hd.scores > $TMP/table.txt &&
    grep -q 'hyperdas, bidding_argmax selection' $TMP/table.txt &&
    grep -q '^comparison' $TMP/table.txt && grep -q ' none  *unintervened ' $TMP/table.txt"
check "summary records: a 95% interval beside every rate (nil with the rate), bootstrap {n, seed}" bash -c "
    jq -e '(.bootstrap == {\"n\": 1000, \"seed\": 42}) and
           ([.rows[] | (.cause_ci, .isolate_ci, .disentangle_ci, .cause_changed_ci) | select(. != null)
             | select(length != 2 or .[0] > .[1] or .[0] < 0 or .[1] > 1)] | length == 0) and
           ([.rows[] | select((.cause == null) != (.cause_ci == null) or (.isolate == null) != (.isolate_ci == null)
             or (.disentangle == null) != (.disentangle_ci == null)
             or (.cause_changed == null) != (.cause_changed_ci == null))] | length == 0) and
           (.rows[-1].cause_ci | length == 2)' $TMP/sum.json > /dev/null"
# The tiny random model gets nothing right: made-up outcomes (a hash of id
# and mode) give the statistics something to measure.
vary() {  # IN OUT
    $BIN/hd-cat --full "$1" | jq -c 'if .t == "score" then .correct = (((.id + .mode) | explode | add) % 3 != 0) else . end' |
        $BIN/hd-cat --to-records > "$2"
}
$BIN/hd-score -c $TMP/das $TMP/test.acts > $TMP/das.scores 2> /dev/null
vary $TMP/hd.scores $TMP/hd-varied.scores
vary $TMP/das.scores $TMP/das-varied.scores
check "--table: every rate with its interval; the same seed the same table, another seed another" bash -c "
    $BIN/hd-score --summarize --table $TMP/hd-varied.scores > $TMP/t1.txt &&
    $BIN/hd-score --summarize --table --seed 42 --bootstrap 1000 $TMP/hd-varied.scores > $TMP/t2.txt &&
    $BIN/hd-score --summarize --table --seed 7 $TMP/hd-varied.scores > $TMP/t3.txt &&
    cmp $TMP/t1.txt $TMP/t2.txt && ! cmp -s $TMP/t1.txt $TMP/t3.txt &&
    grep -E '^test +city +Country +[0-9]+ +[0-9]+ +[0-9.]+ \\[[0-9.]+, [0-9.]+\\] +[0-9.]+ \\[[0-9.]+, [0-9.]+\\] +[0-9.]+ \\[[0-9.]+, [0-9.]+\\] +[0-9.]+ \\[[0-9.]+, [0-9.]+\\] \\([0-9]+\\)' $TMP/t1.txt &&
    grep -E '^test +hyperdas +soft +teacher-forced +[0-9.]+ \\[[0-9.]+, [0-9.]+\\] ' $TMP/t1.txt &&
    $BIN/hd-score --summarize --table --bootstrap 0 $TMP/hd-varied.scores > $TMP/t0.txt &&
    ! grep -q '\\[' $TMP/t0.txt &&
    $BIN/hd-score --summarize --bootstrap 0 $TMP/hd-varied.scores | $BIN/hd-cat --where t=summary | tail -n +2 |
        jq -e 'select(.bootstrap.n != 0 or (.rows[] | .cause_ci != null))' > /dev/null; [ \$? = 4 ]"
check "a kind without examples: '-' in the table, nil in the record (never 0.0)" bash -c "
    $BIN/hd-cat --full $TMP/hd-varied.scores | jq -c 'select(.t != \"score\" or .kind == \"causal\" or .target_attribute != \"Country\")' |
        $BIN/hd-cat --to-records > $TMP/no-iso.scores &&
    $BIN/hd-score --summarize --table --also-first 0 $TMP/no-iso.scores > $TMP/no-iso.txt &&
    grep -E '^test +city +Country +[0-9]+ +0 +[0-9.]+ \\[[0-9.]+, [0-9.]+\\] +- +- ' $TMP/no-iso.txt &&
    $BIN/hd-score --summarize $TMP/no-iso.scores | $BIN/hd-cat --where t=summary --where mode=soft | tail -1 |
        jq -e '.rows[] | select(.attribute == \"Country\") | .n_isolate == 0 and .isolate == null and
               .disentangle == null and .isolate_ci == null and .disentangle_ci == null and
               .isolate_macro == null and .disentangle_macro == null and .cause != null' > /dev/null"
check "paired comparisons: by default each method's first mode against the other's and every mode against the unintervened" bash -c "
    $BIN/hd-score --summarize --table $TMP/hd-varied.scores $TMP/das-varied.scores > $TMP/pair.txt &&
    grep -q '^paired' $TMP/pair.txt &&
    grep -E '^test +hyperdas/soft +das/groundtruth +all +$N_TEST +[-+][0-9.]+ \\[[-+][0-9.]+, [-+][0-9.]+\\] ' $TMP/pair.txt &&
    grep -E '^test +hyperdas/random +none/unintervened +all +$N_TEST ' $TMP/pair.txt &&
    grep -E '^test +das/groundtruth +none/unintervened +all ' $TMP/pair.txt &&
    ! grep -E '^test +hyperdas/random +das/groundtruth ' $TMP/pair.txt"
check "--compare A:B: one pair, McNemar's b, c and exact p on the flips; an unknown name is a usage error" bash -c "
    $BIN/hd-cat --full $TMP/das-varied.scores | jq -c 'if .t == \"score\" then .correct = false else . end' |
        $BIN/hd-cat --to-records > $TMP/das-wrong.scores &&
    b=\$($BIN/hd-cat --where t=score --where mode=soft $TMP/hd-varied.scores | tail -n +2 |
        jq -s '[.[] | select(.kind == \"causal\" and .base_pred_correct == false and .correct)] | length') &&
    [ \$b -gt 0 ] && p=\$(awk -v b=\$b 'BEGIN { p = 2 / 2 ^ b; printf(\"%.4g\", (p > 1 ? 1 : p)) }') &&
    $BIN/hd-score --summarize --table --compare hyperdas/soft:das/groundtruth --also-first 0 \
        $TMP/hd-varied.scores $TMP/das-wrong.scores > $TMP/cmp.txt &&
    [ \$(sed -n '/^paired/,\$p' $TMP/cmp.txt | grep -c '^test') = 1 ] &&
    grep -E \"^test +hyperdas/soft +das/groundtruth +all +$N_TEST +.* \$b +0 +\$p\\\$\" $TMP/cmp.txt &&
    $BIN/hd-score --summarize --table --compare hyperdas/soft:das/nothing $TMP/hd-varied.scores \
        $TMP/das-wrong.scores > /dev/null 2> $TMP/err; [ \$? = 2 ] && grep -q 'das/nothing' $TMP/err &&
    $BIN/hd-score --summarize --compare soft $TMP/hd.scores > /dev/null 2>&1; [ \$? = 2 ]"
check "--also-first 3: first-3-token rows and summaries recomputed from the score records' token ids" bash -c "
    $BIN/hd-cat --where t=score --head 1 $TMP/hd.scores | tail -1 |
        jq -e '(.base_pred_ids | length) == (.label_ids | length)' > /dev/null &&
    $BIN/hd-cat --full $TMP/hd.scores | jq -c 'if .t == \"score\" then
            .pred_ids = .label_ids[0:3] + (.label_ids[3:] | map(. + 1)) | .correct = ((.label_ids | length) <= 3)
            | .base_pred_ids = .pred_ids else . end' | $BIN/hd-cat --to-records > $TMP/first3.scores &&
    $BIN/hd-score --summarize --table $TMP/first3.scores > $TMP/first3.txt &&
    grep -E '^test +hyperdas +soft +first 3 tokens +100.0 \\[100.0, 100.0\\] +100.0 \\[100.0, 100.0\\]' $TMP/first3.txt &&
    grep -E '^test +none +unintervened +first 3 tokens +100.0 ' $TMP/first3.txt &&
    grep -E '^test +hyperdas/soft +none/unintervened +first 3 ' $TMP/first3.txt &&
    [ \$($BIN/hd-score --summarize $TMP/first3.scores | $BIN/hd-cat --where t=summary --count) = 3 ] &&
    $BIN/hd-score --summarize --also-first 3 $TMP/first3.scores | $BIN/hd-cat --where t=summary --where eval_tokens=3 |
        tail -n +2 > $TMP/first3.json && [ \$(wc -l < $TMP/first3.json) = 3 ] &&
    jq -e '.rule == \"teacher-forced\" and .rows[-1].cause == 1 and .rows[-1].isolate == 1' $TMP/first3.json > /dev/null &&
    $BIN/hd-score -c $TMP/hd --table --modes soft $TMP/test.acts | grep -qE '^test +hyperdas +soft +first 3 tokens '"
check "identity intervention (source = base, DAS at the entity): Cause = Isolate = 1" bash -c "
    $BIN/ravel-pairs --domain city --attribute Country,Continent --isolate Language -n 6 --split test |
        $BIN/cache-acts --inline-states -o $TMP/test-inline.acts &&
    $BIN/hd-cat --full $TMP/test-inline.acts | jq -c 'if .t == \"acts\" then
          .source_ids = .base_ids | .source_hidden = .base_hidden | .source_entity_pos = .base_entity_pos
          | .base_ids.data = .base_ids.data[0:.base_prompt_len] + .base_pred_ids.data
          | .label_ids = .base_pred_ids | .base_pred_correct = true else . end' |
        $BIN/hd-cat --to-records > $TMP/identity.acts &&
    $BIN/hd-score -c $TMP/das --table $TMP/identity.acts > $TMP/id.txt &&
    grep -E '^test +das +groundtruth +teacher-forced +100.0 \\[100.0, 100.0\\] +100.0 \\[100.0, 100.0\\] +100.0 \\[100.0, 100.0\\]' $TMP/id.txt"
check "identity under the RAVEL rule (greedy-generate, first token): Cause = Isolate = 1" bash -c "
    $BIN/hd-score -c $TMP/das --rule greedy-generate --eval-tokens 1 -o $TMP/gen.scores --table \
        $TMP/identity.acts > $TMP/gen.txt &&
    grep -E '^test +das +groundtruth +greedy-generate +100.0 \\[100.0, 100.0\\] +100.0 \\[100.0, 100.0\\] +100.0 \\[100.0, 100.0\\]' $TMP/gen.txt &&
    [ \$($BIN/hd-cat --where t=score --where rule=greedy-generate --count $TMP/gen.scores) = $N_TEST ]"
check "--device cpu-staged (the GPU's code path on the CPU): the CPU's score records" bash -c "
    $BIN/hd-score -c $TMP/hd --device cpu-staged --modes soft,bidding_argmax,random -b 3 \
        $TMP/test.acts > $TMP/staged.scores &&
    $BIN/hd-score -c $TMP/hd --modes soft,bidding_argmax,random -b 3 $TMP/test.acts > $TMP/cpu.scores &&
    [ \$($BIN/hd-cat --where t=score --count $TMP/staged.scores) = \$((3 * $N_TEST)) ] &&
    $BIN/hd-cat --header $TMP/staged.scores | grep -q '\"device\":\"cpu-staged\"' &&
    $BIN/hd-cat --header $TMP/cpu.scores | grep -q '\"device\":\"cpu\"' &&
    cmp <($BIN/hd-cat --full --where t=score $TMP/cpu.scores | tail -n +2) \
        <($BIN/hd-cat --full --where t=score $TMP/staged.scores | tail -n +2) &&
    cmp <($BIN/hd-cat --where t=summary $TMP/cpu.scores | tail -n +2) \
        <($BIN/hd-cat --where t=summary $TMP/staged.scores | tail -n +2)"
check "--device with greedy generation: a usage error; cuda without a GPU: one line, exit 1" bash -c "
    $BIN/hd-score -c $TMP/das --device cpu-staged --rule greedy-generate $TMP/test.acts > /dev/null 2>&1
    [ \$? = 2 ] || exit 1
    command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1 && exit 0
    $BIN/hd-score -c $TMP/hd --device cuda $TMP/test.acts > $TMP/gpu.scores 2> $TMP/err
    [ \$? = 1 ] && [ \$(wc -l < $TMP/err) = 1 ] && grep -q '^hd-score: --device cuda: .*CUDA' $TMP/err"
check "greedy-generate with --eval-tokens 0 is a usage error" bash -c "
    $BIN/hd-score -c $TMP/das --rule greedy-generate --eval-tokens 0 $TMP/test.acts > /dev/null 2>&1; [ \$? = 2 ]"
check "a checkpoint from another model is refused, naming both" bash -c "
    mkdir -p $TMP/other && cp tests/fixtures/tiny-llama-f32/* $TMP/other/ &&
    sed -i 's/\"rms_norm_eps\": 1e-05/\"rms_norm_eps\": 1e-06/' $TMP/other/config.json &&
    ! $BIN/hd-score -m $TMP/other -c $TMP/hd $TMP/test.acts > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'trained on another model' $TMP/err"
check "a truncated acts stream: one line naming the file and record, exit 1" bash -c "
    head -c 30000 $TMP/test.acts > $TMP/cut.acts &&
    $BIN/hd-score -c $TMP/hd -o $TMP/cut.scores $TMP/cut.acts 2> $TMP/err; [ \$? = 1 ] &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'cut.acts: record [0-9]*' $TMP/err && [ ! -e $TMP/cut.scores ]"
check "no checkpoint: usage error (exit 2)" bash -c "
    $BIN/hd-score $TMP/test.acts > /dev/null 2>&1; [ \$? = 2 ]"
check "--summarize on a record that is not a score: skipped; a score without 'correct': named" bash -c "
    $BIN/hd-cat --full --where t=score --head 1 $TMP/hd.scores | tail -1 | jq -c 'del(.correct)' |
        $BIN/hd-cat --to-records > $TMP/bad.scores &&
    ! $BIN/hd-score --summarize $TMP/bad.scores > /dev/null 2> $TMP/err &&
    grep -q \"'correct'\" $TMP/err"
done_testing
