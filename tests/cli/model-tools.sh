# The model-side tools end to end on the tiny random Llama fixture (a real
# Hugging Face directory: sharded safetensors + a byte-level tokenizer.json),
# so that CI runs ravel-pairs | hd-filter | cache-acts without downloads.
source tests/cli/lib.bash
export HD_MODEL=tests/fixtures/tiny-llama-f32
export SOURCE_DATE_EPOCH=0
$BIN/ravel-pairs --domain city --attribute Country -n 10 -o $TMP/pairs.msgpack
NPAIRS=$($BIN/hd-cat --count $TMP/pairs.msgpack)

check "hd-filter --all keeps every pair and marks it" bash -c "
    $BIN/hd-filter --all $TMP/pairs.msgpack -o $TMP/all.msgpack &&
    [ \$($BIN/hd-cat --count $TMP/all.msgpack) = $NPAIRS ] &&
    [ \$($BIN/hd-cat --where filtered=true --count $TMP/all.msgpack) = $NPAIRS ] &&
    n_ok=\$($BIN/hd-cat --where model_correct=true --count $TMP/all.msgpack) &&
    n_bad=\$($BIN/hd-cat --where model_correct=false --count $TMP/all.msgpack) &&
    [ \$((n_ok + n_bad)) = $NPAIRS ]"
check "hd-filter keeps exactly the pairs marked correct" bash -c "
    $BIN/hd-filter $TMP/pairs.msgpack > $TMP/kept.msgpack &&
    [ \$($BIN/hd-cat --count $TMP/kept.msgpack) = \$($BIN/hd-cat --where model_correct=true --count $TMP/all.msgpack) ]"
check "known records reused: same output without running the model twice" bash -c "
    $BIN/hd-filter --known-out $TMP/known.msgpack $TMP/pairs.msgpack > $TMP/k1.msgpack &&
    [ \$($BIN/hd-cat --count $TMP/known.msgpack) -ge 1 ] &&
    $BIN/hd-filter --known $TMP/known.msgpack --known-out $TMP/known2.msgpack $TMP/pairs.msgpack > $TMP/k2.msgpack &&
    [ \$($BIN/hd-cat --count $TMP/known2.msgpack) = 0 ] &&
    diff <($BIN/hd-cat $TMP/k1.msgpack | tail -n +2) <($BIN/hd-cat $TMP/k2.msgpack | tail -n +2)"
check "ravel-pairs --filter reads hd-filter's known records" bash -c "
    $BIN/ravel-pairs --domain city --attribute Country -n 10 --filter $TMP/known.msgpack > $TMP/rf.msgpack &&
    [ \$($BIN/hd-cat --count $TMP/rf.msgpack) = \$($BIN/hd-cat --count $TMP/kept.msgpack) ]"

# Query records made from the pairs' own verification inputs: the query path
# must give each the outcome the pair path gave it.
$BIN/ravel-pairs --domain city --attribute Country,Continent --iso-ratio 0 -n 24 -o $TMP/qpairs.msgpack
$BIN/hd-filter --all $TMP/qpairs.msgpack -o $TMP/qall.msgpack
$BIN/hd-cat $TMP/qpairs.msgpack | grep '"t":"pair"' |
    jq -c '{t: "query", id: .id, domain: .domain, split: .split, attribute: .target_attribute,
            template: .base_template, entity: .source_entity, prompt: .verify_input,
            answer_sep: .answer_sep, answer: .label}' > $TMP/q.jsonl
$BIN/hd-cat --to-records --kind queries -o $TMP/q.msgpack $TMP/q.jsonl
check "hd-filter on queries: one known record each, the pair path's outcome" bash -c "
    $BIN/hd-filter --stats -o $TMP/qk.msgpack $TMP/q.msgpack 2> $TMP/qerr &&
    $BIN/hd-cat --header $TMP/qk.msgpack | grep -q '\"kind\":\"known\"' &&
    [ \$($BIN/hd-cat --count $TMP/qk.msgpack) = \$(wc -l < $TMP/q.jsonl) ] &&
    diff <($BIN/hd-cat $TMP/qall.msgpack | grep '\"t\":\"pair\"' | jq -c '[.verify_input, .model_correct]') \
         <($BIN/hd-cat $TMP/qk.msgpack | grep '\"t\":\"known\"' | jq -c '[.prompt, .correct]') &&
    $BIN/hd-cat $TMP/qk.msgpack | grep '\"t\":\"known\"' | jq -e -s 'all(.[]; .domain == \"city\" and .model != null)' > /dev/null &&
    grep -q 'queries in .* the model ran [0-9]* distinct prompts' $TMP/qerr"
check "hd-filter on queries: --known answers them without the model" bash -c "
    $BIN/hd-filter --stats --known $TMP/qk.msgpack -o $TMP/qk2.msgpack $TMP/q.msgpack 2> $TMP/qerr2 &&
    grep -q 'the model ran 0 distinct prompts' $TMP/qerr2 &&
    diff <($BIN/hd-cat $TMP/qk.msgpack | tail -n +2) <($BIN/hd-cat $TMP/qk2.msgpack | tail -n +2)"
check "hd-filter on queries: a pair record among them is named" bash -c "
    $BIN/hd-cat $TMP/pairs.msgpack | grep '\"t\":\"pair\"' | head -1 > $TMP/mixed.jsonl &&
    cat $TMP/q.jsonl >> $TMP/mixed.jsonl &&
    $BIN/hd-cat --to-records --kind queries -o $TMP/mixed.msgpack $TMP/mixed.jsonl &&
    ! $BIN/hd-filter $TMP/mixed.msgpack > /dev/null 2> $TMP/merr &&
    [ \$(wc -l < $TMP/merr) = 1 ] && grep -q 'mixed.msgpack: record 2: not a query record' $TMP/merr"
check "hd-filter: shared prefixes run once, outcomes as whole sequences (tiny model)" bash -c "
    $BIN/hd-filter --stats -o $TMP/qs.msgpack $TMP/q.msgpack 2> $TMP/qserr &&
    $BIN/hd-filter --no-shared-prefix --stats -o $TMP/qw.msgpack $TMP/q.msgpack 2> $TMP/qwerr &&
    diff <($BIN/hd-cat $TMP/qs.msgpack | tail -n +2) <($BIN/hd-cat $TMP/qw.msgpack | tail -n +2) &&
    grep -q 'shared prefixes: [0-9]* groups; the model ran [0-9]* of [0-9]* token positions' $TMP/qserr &&
    ! grep -q 'shared prefixes' $TMP/qwerr"
check "hd-filter on a few diverse prompts: whole sequences where sharing would not pay" bash -c "
    $BIN/hd-filter --stats -o $TMP/ds.msgpack $TMP/pairs.msgpack 2> $TMP/dserr &&
    $BIN/hd-filter --no-shared-prefix -o $TMP/dw.msgpack $TMP/pairs.msgpack &&
    diff <($BIN/hd-cat $TMP/ds.msgpack | tail -n +2) <($BIN/hd-cat $TMP/dw.msgpack | tail -n +2) &&
    grep -q '1 of 1 model calls ran whole sequences (sharing prefixes would not pay)' $TMP/dserr"
# The tiny random model knows no fact; SmolLM2 (make model) knows some.
SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f $SMOL ]; then
    check "ravel-pairs --from-known on hd-filter's known records: every pair passes hd-filter" bash -c "
        $BIN/ravel-pairs --domain city --attribute Continent,Country --iso-ratio 0 -n 30 --queries |
            $BIN/hd-filter -m $SMOL -o $TMP/qk3.msgpack &&
        n=\$($BIN/hd-cat --where correct=true --count $TMP/qk3.msgpack) && [ \$n -ge 3 ] &&
        $BIN/ravel-pairs --domain city --attribute Continent,Country --iso-ratio 0 -n all --from-known \
            --filter $TMP/qk3.msgpack -o $TMP/fk.msgpack &&
        [ \$($BIN/hd-cat --count $TMP/fk.msgpack) = \$n ] &&
        $BIN/hd-filter -m $SMOL $TMP/fk.msgpack | $BIN/hd-cat --count | grep -qx \$n"
    check "hd-filter on SmolLM2: shared prefixes give the outcomes of whole sequences, fewer positions" bash -c "
        $BIN/ravel-pairs --domain physical_object --attribute Category,Color --split val --queries -n 40 |
            tee $TMP/pq.msgpack | $BIN/hd-filter -m $SMOL -b 4 --stats -o $TMP/pk.msgpack 2> $TMP/pkerr &&
        $BIN/hd-filter -m $SMOL -b 4 --no-shared-prefix -o $TMP/pw.msgpack $TMP/pq.msgpack &&
        [ \$($BIN/hd-cat --where correct=true --count $TMP/pk.msgpack) -ge 5 ] &&
        diff <($BIN/hd-cat $TMP/pk.msgpack | tail -n +2) <($BIN/hd-cat $TMP/pw.msgpack | tail -n +2) &&
        awk '/shared prefixes/ { ran = \$(NF-5); all = \$(NF-3); ok = ran < 0.7 * all } END { exit !ok }' $TMP/pkerr"
else
    skip "ravel-pairs --from-known then hd-filter on SmolLM2" "no $SMOL (make model)"
    skip "hd-filter on SmolLM2: shared prefixes" "no $SMOL (make model)"
fi

$BIN/cache-acts -b 4 $TMP/pairs.msgpack -o $TMP/acts.msgpack
check "cache-acts writes one acts record per pair" \
    test "$($BIN/hd-cat --where t=acts --count $TMP/acts.msgpack)" = "$NPAIRS"
check "acts shapes: every layer, base = prompt + label, d = 64" bash -c "
    $BIN/cache-acts -b 4 --inline-states $TMP/pairs.msgpack -o $TMP/inline.msgpack &&
    $BIN/hd-cat --head 1 $TMP/inline.msgpack | tail -1 > $TMP/one.json &&
    grep -q '\"layers\":\\[0,1,2,3\\]' $TMP/one.json &&
    B=\$(grep -o '\"base_ids\":{\"dtype\":\"i32\",\"shape\":\\[[0-9]*' $TMP/one.json | grep -o '[0-9]*\$') &&
    grep -q \"\\\"base_hidden\\\":{\\\"dtype\\\":\\\"bf16\\\",\\\"shape\\\":\\[4,\$B,64\\]\" $TMP/one.json"
check "pair fields pass through into acts" bash -c "
    diff <($BIN/hd-cat --where t=pair $TMP/pairs.msgpack | grep -o '\"id\":\"[^\"]*\"') \
         <($BIN/hd-cat --where t=acts $TMP/acts.msgpack | grep -o '\"id\":\"[^\"]*\"')"
check "acts are reproducible bit for bit (the lossless --full view of the records)" bash -c "
    cmp <($BIN/cache-acts -b 4 $TMP/pairs.msgpack | $BIN/hd-cat --full | tail -n +2) \
        <($BIN/hd-cat --full $TMP/acts.msgpack | tail -n +2)"
check "batching and padding do not change the states (f32, rel 1e-4)" bash -c "
    $BIN/cache-acts --dtype f32 -b 1 $TMP/pairs.msgpack | $BIN/hd-cat --full | tail -n +2 > $TMP/b1.json &&
    $BIN/cache-acts --dtype f32 -b 8 $TMP/pairs.msgpack | $BIN/hd-cat --full | tail -n +2 > $TMP/b8.json &&
    awk -v rel=1e-4 -v abs=1e-5 -f tests/cli/numclose.awk $TMP/b1.json $TMP/b8.json"
check "--layers keeps the chosen layers only" bash -c "
    $BIN/cache-acts --inline-states --layers 0,2-3 $TMP/pairs.msgpack | $BIN/hd-cat --head 1 | tail -1 |
        grep -q '\"layers\":\\[0,2,3\\],.*\"base_hidden\":{\"dtype\":\"bf16\",\"shape\":\\[3,'"
check "--zlib tensors read back to the same values" bash -c "
    diff <($BIN/cache-acts -b 4 --zlib 6 $TMP/pairs.msgpack | $BIN/hd-cat --full | tail -n +2 | sed 's/,\"codec\":\"zlib\"//g') \
         <($BIN/hd-cat --full $TMP/acts.msgpack | tail -n +2)"
# Shared states (the default): each distinct sequence's states once, in a
# states record before the first acts record that names it.
check "shared states: a sequence's states are written once, before first use" bash -c "
    cat $TMP/pairs.msgpack $TMP/pairs.msgpack > $TMP/twice.msgpack &&
    $BIN/cache-acts -b 4 $TMP/twice.msgpack -o $TMP/twice.acts &&
    $BIN/cache-acts -b 4 --inline-states $TMP/twice.msgpack -o $TMP/twice-inline.acts &&
    [ \$($BIN/hd-cat --where t=acts --count $TMP/twice.acts) = \$((2 * $NPAIRS)) ] &&
    [ \$($BIN/hd-cat --where t=states --count $TMP/twice.acts) = \$($BIN/hd-cat --where t=states --count $TMP/acts.msgpack) ] &&
    [ \$(stat -c %s $TMP/twice.acts) -lt \$(( \$(stat -c %s $TMP/twice-inline.acts) * 6 / 10 )) ] &&
    $BIN/hd-cat --header $TMP/twice.acts | grep -q '\"states\":\"shared\"' &&
    $BIN/hd-cat $TMP/twice.acts | tail -n +2 | awk '
        /\"t\":\"states\"/ { match(\$0, /\"key\":\"[0-9a-f]*\"/); seen[substr(\$0, RSTART + 7, 16)] = 1; next }
        /\"t\":\"acts\"/ { for (f = 0; f < 2; f++) {
            if (f) match(\$0, /\"source_states\":\"[0-9a-f]*\"/); else match(\$0, /\"base_states\":\"[0-9a-f]*\"/)
            if (!RSTART || !(substr(\$0, RSTART + RLENGTH - 17, 16) in seen)) exit 1 } }'"
check "a reference to states the stream lacks: error names file and record" bash -c "
    $BIN/hd-cat --full $TMP/acts.msgpack | grep -v '\"t\":\"states\"' | $BIN/hd-cat --to-records > $TMP/nostates.acts &&
    ! $BIN/hd-train -c $TMP/nostates.ckpt --max-steps 1 $TMP/nostates.acts 2> $TMP/err &&
    grep -q '^hd-train: $TMP/nostates.acts: record 2: base_states [0-9a-f]*: no states record' $TMP/err"
check "states whose ids differ from the acts record's are an error, not a wrong example" bash -c "
    $BIN/hd-cat --full $TMP/acts.msgpack > $TMP/acts.json &&
    b=\$(grep -m1 -o '\"base_states\":\"[0-9a-f]*\"' $TMP/acts.json | cut -d'\"' -f4) &&
    s=\$(grep -m1 -o '\"source_states\":\"[0-9a-f]*\"' $TMP/acts.json | cut -d'\"' -f4) &&
    sed \"s/\\\"base_states\\\":\\\"\$b\\\"/\\\"base_states\\\":\\\"\$s\\\"/\" $TMP/acts.json |
        $BIN/hd-cat --to-records > $TMP/swapped.acts &&
    ! $BIN/hd-train -c $TMP/swapped.ckpt --max-steps 1 $TMP/swapped.acts 2> $TMP/err &&
    grep -q 'other token ids than base_ids' $TMP/err"
check "truncated pair stream: error names file and record, nothing half written" bash -c "
    head -c 3000 $TMP/pairs.msgpack > $TMP/cut.msgpack
    ! $BIN/cache-acts $TMP/cut.msgpack -o $TMP/cut-acts.msgpack 2> $TMP/err &&
    grep -q '^cache-acts: $TMP/cut.msgpack: record [0-9]*: truncated' $TMP/err && [ ! -e $TMP/cut-acts.msgpack ]"
check "a missing model is one clear line" bash -c "
    ! HD_MODEL=/nonexistent $BIN/cache-acts $TMP/pairs.msgpack > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'HD_MODEL' $TMP/err"
check "a pair without a label is named" bash -c "
    printf '%s\n' '{\"t\":\"pair\",\"id\":\"x\",\"base_input\":\"a b\"}' | $BIN/hd-cat --to-records |
        { ! $BIN/cache-acts > /dev/null 2> $TMP/err; } && grep -q 'record 2: pair record has no string' $TMP/err"
check "hd-generate: one line per prompt, n tokens" bash -c "
    out=\$($BIN/hd-generate --ids -n 5 --no-stop 'Paris is' 'Tokyo') &&
    [ \$(echo \"\$out\" | wc -l) = 2 ] &&
    [ \$(echo \"\$out\" | head -1 | cut -f2 | wc -w) = 5 ]"
check "hd-generate: batched equals one at a time" bash -c "
    diff <($BIN/hd-generate -b 1 -n 6 --no-stop --ids 'Paris is' 'Tokyo is a city' 'x') \
         <($BIN/hd-generate -b 3 -n 6 --no-stop --ids 'Paris is' 'Tokyo is a city' 'x')"
# --device cuda: the GPU comparison itself is tests/test_llama_cuda.c; here,
# what any machine can check: the header names the device, and without a
# usable GPU (or CUDA in the build) the tools stop with one line, writing
# nothing.  On a machine with a GPU the second check is skipped.
check "cache-acts and hd-filter headers name the device (cpu by default)" bash -c "
    $BIN/cache-acts $TMP/pairs.msgpack | $BIN/hd-cat --header - | grep -q '\"device\":\"cpu\"' &&
    $BIN/hd-filter --all $TMP/pairs.msgpack | $BIN/hd-cat --header - | grep -q '\"device\":\"cpu\"'"
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
    skip "--device cuda without a GPU: one line, exit 1, no output" "this machine has a GPU"
else
    check "--device cuda without a GPU: one line, exit 1, no output" bash -c "
        $BIN/cache-acts --device cuda -o $TMP/gpu.acts $TMP/pairs.msgpack 2> $TMP/err; [ \$? = 1 ] &&
        [ \$(wc -l < $TMP/err) = 1 ] && grep -q '^cache-acts: --device cuda: .*CUDA' $TMP/err &&
        [ ! -e $TMP/gpu.acts ] &&
        $BIN/hd-filter --device cuda -o $TMP/gpu.pairs $TMP/pairs.msgpack 2> $TMP/err; [ \$? = 1 ] &&
        [ \$(wc -l < $TMP/err) = 1 ] && [ ! -e $TMP/gpu.pairs ]"
    check "hd-train --device cuda without a GPU: one line, exit 1, no log, no checkpoint" bash -c "
        $BIN/cache-acts -o $TMP/for-gpu.acts $TMP/pairs.msgpack &&
        $BIN/hd-train --device cuda -c $TMP/gpu.ckpt -o $TMP/gpu.log $TMP/for-gpu.acts 2> $TMP/err
        [ \$? = 1 ] && [ \$(wc -l < $TMP/err) = 1 ] &&
        grep -q '^hd-train: --device cuda: .*CUDA' $TMP/err &&
        [ ! -e $TMP/gpu.log ] && [ ! -e $TMP/gpu.ckpt ]"
fi
check "--device other than cpu or cuda, --tf32 without cuda: usage errors" bash -c "
    $BIN/cache-acts --device gpu $TMP/pairs.msgpack > /dev/null 2>&1; [ \$? = 2 ] &&
    $BIN/hd-filter --device tpu $TMP/pairs.msgpack > /dev/null 2>&1; [ \$? = 2 ] &&
    $BIN/hd-train --device gpu -c $TMP/x.ckpt - < /dev/null > /dev/null 2>&1; [ \$? = 2 ] &&
    $BIN/hd-train --tf32 -c $TMP/x.ckpt - < /dev/null > /dev/null 2>&1; [ \$? = 2 ]"
done_testing
