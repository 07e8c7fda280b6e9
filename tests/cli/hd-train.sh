# hd-train on the tiny random Llama fixture: the loss falls on a fixed
# batch, the log and checkpoints are well formed, runs are deterministic,
# a run killed with SIGKILL resumes to the same weights, bad input is named.
source tests/cli/lib.bash
export HD_MODEL=tests/fixtures/tiny-llama-f32
export SOURCE_DATE_EPOCH=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
SMALL="-b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32"
$BIN/ravel-pairs --domain city --attribute Country -n 16 | $BIN/cache-acts -o $TMP/acts.msgpack
$BIN/ravel-pairs --domain city --attribute Country -n 12 --split test | $BIN/cache-acts -o $TMP/val.msgpack
$BIN/ravel-pairs --domain city --attribute Country -n 16 | $BIN/cache-acts --inline-states -o $TMP/acts-inline.msgpack
$BIN/hd-cat --full $TMP/acts-inline.msgpack | head -5 | $BIN/hd-cat --to-records > $TMP/four.msgpack

check "the loss falls on a fixed batch (30 Adam steps, lr 1e-3)" bash -c "
    $BIN/hd-train -c $TMP/fixed --epochs 30 $SMALL --lr 1e-3 --lr-rotate 1e-2 --no-sparsity \
        --save-every 0 $TMP/four.msgpack | $BIN/hd-cat --where t=step |
        grep -o '\"pred_loss\":[^,]*' | cut -d: -f2 > $TMP/losses &&
    [ \$(wc -l < $TMP/losses) = 30 ] &&
    awk 'NR == 1 {first = \$1} {last = \$1} END {exit !(last < first - 1.0)}' $TMP/losses"
check "log: header, one step record per step, eval records per mode" bash -c "
    $BIN/hd-train -c $TMP/run $SMALL --max-steps 6 --save-every 3 --val $TMP/val.msgpack \
        --eval-every 3 $TMP/acts.msgpack > $TMP/log.msgpack 2> $TMP/err &&
    $BIN/hd-cat --header $TMP/log.msgpack | grep -q '\"kind\":\"log\"' &&
    [ \$($BIN/hd-cat --where t=step --count $TMP/log.msgpack) = 6 ] &&
    [ \$($BIN/hd-cat --where t=eval --count $TMP/log.msgpack) = 4 ] &&
    $BIN/hd-cat --where t=eval --where mode=bidding_argmax $TMP/log.msgpack | grep -q '\"cause\":'"
check "eval: a kind without examples is nil, not 0 (causal-only validation set)" bash -c "
    $BIN/ravel-pairs --domain city --attribute Country -n 6 --iso-ratio 0 --split test |
        $BIN/cache-acts -o $TMP/causal-val.msgpack &&
    $BIN/hd-train -c $TMP/cval $SMALL --max-steps 1 --save-every 0 --val $TMP/causal-val.msgpack \
        --eval-modes soft $TMP/acts.msgpack 2> $TMP/cval.err | $BIN/hd-cat --where t=eval > $TMP/cval.jsonl &&
    grep -q '\"n_isolate\":0,\"cause\":[0-9.]*,\"isolate\":null,\"disentangle\":null' $TMP/cval.jsonl &&
    grep -q 'isolate - disentangle -' $TMP/cval.err"
check "step records: the host's share of the step, 0 <= input_seconds <= seconds" bash -c "
    $BIN/hd-train -c $TMP/st $SMALL --max-steps 3 --save-every 0 --device cpu-staged $TMP/acts.msgpack |
        $BIN/hd-cat --where t=step | grep '^{\"t\":\"step\"' > $TMP/st.jsonl &&
    [ \$(wc -l < $TMP/st.jsonl) = 3 ] &&
    sed 's/.*\"seconds\":\\([0-9.e+-]*\\),\"input_seconds\":\\([0-9.e+-]*\\)}/\\1 \\2/' $TMP/st.jsonl |
        awk 'NF != 2 || \$2 <= 0 || \$2 > \$1 {bad = 1} END {exit bad}'"
check "checkpoint: latest step with weights, optimizer, config and state" bash -c "
    [ \$(readlink $TMP/run/latest) = step-00000006 ] && [ -d $TMP/run/step-00000003 ] &&
    for f in model.safetensors optimizer.safetensors config.json state.json; do
        [ -s $TMP/run/latest/\$f ] || exit 1; done &&
    grep -aq 'hyper.layers.0.self_attn.q_proj.weight' $TMP/run/latest/model.safetensors &&
    grep -aq 'das.rotate.Q0' $TMP/run/latest/model.safetensors &&
    grep -q '\"step\": 6' $TMP/run/latest/state.json"
check "same seed and inputs: identical checkpoint bytes" bash -c "
    $BIN/hd-train -c $TMP/run2 $SMALL --max-steps 6 --save-every 3 $TMP/acts.msgpack > /dev/null &&
    cmp $TMP/run/latest/model.safetensors $TMP/run2/latest/model.safetensors &&
    cmp $TMP/run/latest/optimizer.safetensors $TMP/run2/latest/optimizer.safetensors"
check "killed with SIGKILL, resumed: the same weights as an uninterrupted run" bash -c "
    $BIN/hd-train -c $TMP/full $SMALL --max-steps 12 --save-every 2 $TMP/acts.msgpack > /dev/null &&
    ( $BIN/hd-train -c $TMP/killed $SMALL --max-steps 12 --save-every 2 $TMP/acts.msgpack > /dev/null & echo \$! > $TMP/pid; wait ) 2>/dev/null &
    for i in \$(seq 200); do [ -e $TMP/killed/latest ] && break; sleep 0.05; done
    kill -9 \$(cat $TMP/pid) 2>/dev/null; wait
    [ -e $TMP/killed/latest ] &&
    $BIN/hd-train --resume $TMP/killed --max-steps 12 --save-every 2 > /dev/null &&
    cmp $TMP/full/latest/model.safetensors $TMP/killed/latest/model.safetensors &&
    cmp $TMP/full/latest/optimizer.safetensors $TMP/killed/latest/optimizer.safetensors"
# A signal during training: the step in flight ends, a checkpoint of that
# step is saved (here between two scheduled saves), the log is closed as a
# complete stream up to it, the exit status is 128 + the signal's, and the
# resumed run ends with the uninterrupted run's weights.  SIGTERM (a batch
# system's time limit) the same, with 143.
check "SIGINT/SIGTERM during training: a checkpoint, a whole log, 130/143; resumes the same" bash -c "
    $BIN/hd-train -c $TMP/sfull $SMALL --epochs 100 --max-steps 120 --save-every 0 $TMP/acts.msgpack > /dev/null &&
    for s in INT TERM; do
        $BIN/hd-train -c $TMP/s\$s $SMALL --epochs 100 --max-steps 120 --save-every 50 --keep 3 -o $TMP/s\$s.log \
            $TMP/acts.msgpack 2> $TMP/s\$s.err & p=\$!
        for i in \$(seq 500); do [ -e $TMP/s\$s/latest ] && break; sleep 0.01; done
        sleep 0.05; kill -\$s \$p; wait \$p; echo \$? > $TMP/s\$s.rc
        last=\$($BIN/hd-cat --where t=step $TMP/s\$s.log | tail -1 | sed 's/.*\"step\":\\([0-9]*\\),.*/\\1/') &&
        [ \"\$last\" -lt 120 ] && [ \"\$last\" -gt 0 ] && [ \$((last % 50)) != 0 ] &&
        [ \$(readlink $TMP/s\$s/latest) = step-\$(printf %08d \$last) ] &&
        grep -q \"stopped by SIG\$s after step \$last of 120.*hd-train --resume $TMP/s\$s\" $TMP/s\$s.err &&
        $BIN/hd-train --resume $TMP/s\$s --epochs 100 --max-steps 120 --save-every 50 -o $TMP/s\$s-2.log &&
        [ \$(cat $TMP/s\$s.log $TMP/s\$s-2.log | $BIN/hd-cat --where t=step --count) = 120 ] &&
        cmp $TMP/sfull/latest/model.safetensors $TMP/s\$s/latest/model.safetensors &&
        cmp $TMP/sfull/latest/optimizer.safetensors $TMP/s\$s/latest/optimizer.safetensors || exit 1
    done &&
    [ \$(cat $TMP/sINT.rc) = 130 ] && [ \$(cat $TMP/sTERM.rc) = 143 ]"
# The GPU's code path (parameter and moment copies, uploads, downloads
# before checkpoints, activations regrown with the parameters carried over)
# run on the CPU's ops: every number must be the CPU run's.
check "--device cpu-staged: the CPU run's losses, evals, checkpoints; resumes the same" bash -c "
    $BIN/hd-train -c $TMP/cpu12 $SMALL --max-steps 12 --save-every 6 --val $TMP/val.msgpack \
        --eval-every 6 $TMP/acts.msgpack > $TMP/cpu12.log &&
    $BIN/hd-train -c $TMP/stg12 --device cpu-staged $SMALL --max-steps 12 --save-every 6 \
        --val $TMP/val.msgpack --eval-every 6 $TMP/acts.msgpack > $TMP/stg12.log &&
    cmp $TMP/cpu12/latest/model.safetensors $TMP/stg12/latest/model.safetensors &&
    cmp $TMP/cpu12/latest/optimizer.safetensors $TMP/stg12/latest/optimizer.safetensors &&
    for f in cpu12 stg12; do
        $BIN/hd-cat --where t=step $TMP/\$f.log | grep -o '\"loss\":[^,]*\|\"grad_norm\":[^,]*' > $TMP/\$f.steps
        $BIN/hd-cat --where t=eval $TMP/\$f.log | grep -o '\"cause\":[^,]*\|\"loss\":[^,]*' > $TMP/\$f.evals
    done &&
    [ \$(wc -l < $TMP/cpu12.steps) = 24 ] && cmp $TMP/cpu12.steps $TMP/stg12.steps &&
    [ \$(wc -l < $TMP/cpu12.evals) = 8 ] && cmp $TMP/cpu12.evals $TMP/stg12.evals &&
    cp -r $TMP/stg12 $TMP/stg6 && rm -r $TMP/stg6/step-00000012 &&
    ln -sfn step-00000006 $TMP/stg6/latest &&
    $BIN/hd-train --resume $TMP/stg6 --device cpu-staged --max-steps 12 --save-every 6 > /dev/null &&
    cmp $TMP/cpu12/latest/model.safetensors $TMP/stg6/latest/model.safetensors &&
    cmp $TMP/cpu12/latest/optimizer.safetensors $TMP/stg6/latest/optimizer.safetensors"
check "NaN in cached activations: one line naming the record, no checkpoint" bash -c "
    $BIN/hd-cat --full $TMP/four.msgpack |
        sed '3s/\"base_hidden\":{\"dtype\":\"bf16\",\"shape\":\\[\\([0-9,]*\\)\\],\"data\":\\[[^,]*/\"base_hidden\":{\"dtype\":\"bf16\",\"shape\":[\\1],\"data\":[\"NaN\"/' |
        $BIN/hd-cat --to-records > $TMP/nan.msgpack &&
    ! $BIN/hd-train -c $TMP/nan $SMALL --max-steps 2 $TMP/nan.msgpack > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'record [0-9]*: acts record: non-finite hidden state' $TMP/err &&
    [ ! -e $TMP/nan/latest ]"
check "missing label tokens are named" bash -c "
    $BIN/hd-cat --full $TMP/four.msgpack | sed 's/\"base_prompt_len\":[0-9]*/\"base_prompt_len\":999/' |
        $BIN/hd-cat --to-records > $TMP/nolabel.msgpack &&
    ! $BIN/hd-train -c $TMP/nolabel $SMALL --max-steps 1 $TMP/nolabel.msgpack > /dev/null 2> $TMP/err &&
    grep -q 'base_prompt_len 999 leaves no label token' $TMP/err"
check "acts from another model are refused" bash -c "
    mkdir -p $TMP/other && cp tests/fixtures/tiny-llama-f32/* $TMP/other/ &&
    sed -i 's/\"rms_norm_eps\": 1e-05/\"rms_norm_eps\": 1e-06/' $TMP/other/config.json &&
    $BIN/ravel-pairs --domain city --attribute Country -n 4 | $BIN/cache-acts -m $TMP/other > $TMP/other.msgpack &&
    ! $BIN/hd-train -c $TMP/oth $SMALL --max-steps 1 $TMP/other.msgpack > /dev/null 2> $TMP/err &&
    grep -q 'made by another model' $TMP/err"
check "acts without every layer are refused with the fix" bash -c "
    $BIN/ravel-pairs --domain city --attribute Country -n 4 | $BIN/cache-acts --layers 0,2 > $TMP/few.msgpack &&
    ! $BIN/hd-train -c $TMP/few $SMALL --max-steps 1 $TMP/few.msgpack > /dev/null 2> $TMP/err &&
    grep -q 'cache-acts --layers all' $TMP/err"
check "--from-pairs: pairs in, the same weights as cache-acts then hd-train; no acts file left" bash -c "
    $BIN/ravel-pairs --domain city --attribute Country -n 8 > $TMP/p8.msgpack &&
    $BIN/ravel-pairs --domain city --attribute Country -n 6 --split test > $TMP/v6.msgpack &&
    $BIN/cache-acts $TMP/p8.msgpack > $TMP/p8.acts && $BIN/cache-acts $TMP/v6.msgpack > $TMP/v6.acts &&
    $BIN/hd-train -c $TMP/via-acts $SMALL --max-steps 3 --val $TMP/v6.acts $TMP/p8.acts > $TMP/l1 &&
    cat $TMP/p8.msgpack | $BIN/hd-train -c $TMP/via-pairs $SMALL --max-steps 3 --from-pairs \
        --val $TMP/v6.msgpack > $TMP/l2 &&
    cmp $TMP/via-acts/latest/model.safetensors $TMP/via-pairs/latest/model.safetensors &&
    [ ! -e $TMP/via-pairs/train.acts ] && [ ! -e $TMP/via-pairs/val.acts ] &&
    [ \"\$($BIN/hd-cat --where t=eval $TMP/l1 | grep -o '\"cause\":[^,]*')\" = \"\$($BIN/hd-cat --where t=eval $TMP/l2 | grep -o '\"cause\":[^,]*')\" ]"
check "shared and inline acts train and score the same (and resume from the shared spool)" bash -c "
    $BIN/hd-train -c $TMP/sh $SMALL --max-steps 2 --save-every 0 $TMP/acts.msgpack > /dev/null &&
    $BIN/hd-train -c $TMP/in $SMALL --max-steps 2 --save-every 0 $TMP/acts-inline.msgpack > /dev/null &&
    cmp $TMP/sh/latest/model.safetensors $TMP/in/latest/model.safetensors &&
    $BIN/hd-train --resume $TMP/sh --max-steps 4 > /dev/null &&
    $BIN/hd-train --resume $TMP/in --max-steps 4 > /dev/null &&
    cmp $TMP/sh/latest/model.safetensors $TMP/in/latest/model.safetensors &&
    $BIN/hd-score -c $TMP/sh --modes soft,groundtruth $TMP/val.msgpack -o $TMP/s1 &&
    $BIN/ravel-pairs --domain city --attribute Country -n 12 --split test | $BIN/cache-acts --inline-states -o $TMP/val-inline.msgpack &&
    $BIN/hd-score -c $TMP/sh --modes soft,groundtruth $TMP/val-inline.msgpack -o $TMP/s2 &&
    cmp <($BIN/hd-cat $TMP/s1 | tail -n +2) <($BIN/hd-cat $TMP/s2 | tail -n +2)"
check "--sparsity and --no-sparsity: the one given last wins" bash -c "
    $BIN/hd-train -c $TMP/sp1 $SMALL --max-steps 2 --save-every 0 --no-sparsity --sparsity 0.5:1:0 \
        $TMP/four.msgpack | $BIN/hd-cat --where t=step | grep -q '\"sparsity_weight\":0.5' &&
    $BIN/hd-train -c $TMP/sp2 $SMALL --max-steps 2 --save-every 0 --sparsity 0.5:1:0 --no-sparsity \
        $TMP/four.msgpack | $BIN/hd-cat --where t=step | tail -n +2 > $TMP/sp2.jsonl &&
    [ \$(wc -l < $TMP/sp2.jsonl) = 2 ] && ! grep -Ev '\"sparsity_weight\":0(\\.0)?[,}]' $TMP/sp2.jsonl | grep -q ."
check "frozen layers kept packed (a bf16 model) train to the bytes of --fp32-target" bash -c "
    cp -r tests/fixtures/tiny-llama-bf16 $TMP/bf16model && cp $HD_MODEL/tokenizer.json $TMP/bf16model/ &&
    export HD_MODEL=$TMP/bf16model &&
    $BIN/ravel-pairs --domain city --attribute Country -n 8 | $BIN/cache-acts -o $TMP/bf16.acts &&
    $BIN/hd-train -c $TMP/packed $SMALL --max-steps 3 --save-every 0 $TMP/bf16.acts > $TMP/packed.log &&
    $BIN/hd-train -c $TMP/fp32t $SMALL --max-steps 3 --save-every 0 --fp32-target $TMP/bf16.acts > $TMP/fp32t.log &&
    $BIN/hd-cat --header $TMP/packed.log | grep -q '\"target_packed_bytes\":[1-9]' &&
    ! $BIN/hd-cat --header $TMP/fp32t.log | grep -q target_packed_bytes &&
    $BIN/hd-train -c $TMP/packed-rc $SMALL --max-steps 3 --save-every 0 --recompute-target $TMP/bf16.acts > /dev/null &&
    cmp $TMP/packed/latest/model.safetensors $TMP/fp32t/latest/model.safetensors &&
    cmp $TMP/packed/latest/optimizer.safetensors $TMP/fp32t/latest/optimizer.safetensors &&
    cmp $TMP/packed/latest/model.safetensors $TMP/packed-rc/latest/model.safetensors"
done_testing
