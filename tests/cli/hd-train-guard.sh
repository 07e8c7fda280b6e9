# hd-train never destroys a run: bad input leaves the spool and the
# checkpoints as they were, two runs cannot share a checkpoint directory, a
# new run does not start over another one unless --overwrite; --resume
# refuses options that contradict the checkpoint and a state.json it cannot
# use; values that mean nothing and streams of the wrong kind are refused
# with one clear line.
source tests/cli/lib.bash
export HD_MODEL=tests/fixtures/tiny-llama-f32
export SOURCE_DATE_EPOCH=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
SMALL="-b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32"
$BIN/ravel-pairs --domain city --attribute Country -n 8 > $TMP/pairs.msgpack
$BIN/cache-acts $TMP/pairs.msgpack -o $TMP/acts.msgpack
$BIN/hd-train -c $TMP/run $SMALL --max-steps 4 --save-every 2 $TMP/acts.msgpack > /dev/null 2>&1
cp -r $TMP/run $TMP/run.orig
# cut inside the last record: the first records are spooled before the error
head -c $(($(stat -c %s $TMP/acts.msgpack) - 100)) $TMP/acts.msgpack > $TMP/truncated.msgpack

same_run() { # DIR: its spool and checkpoints are the original run's
    cmp $TMP/run.orig/train.spool $1/train.spool &&
    [ "$(readlink $1/latest)" = "$(readlink $TMP/run.orig/latest)" ] &&
    cmp $TMP/run.orig/latest/model.safetensors $1/latest/model.safetensors &&
    [ -z "$(ls $1 | grep tmp)" ]
}
export -f same_run
export TMP

check "--resume with input that fails half way: the spool stays, no temporary left" bash -c "
    ! $BIN/hd-train --resume $TMP/run --max-steps 6 $TMP/truncated.msgpack > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'truncated.msgpack' $TMP/err && same_run $TMP/run"
check "a new run into a directory that holds a run: refused, naming --resume and --overwrite" bash -c "
    ! $BIN/hd-train -c $TMP/run $SMALL --max-steps 2 $TMP/acts.msgpack > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'holds another run.*--resume.*--overwrite' $TMP/err && same_run $TMP/run"
check "--overwrite with bad input: the old run is untouched" bash -c "
    ! $BIN/hd-train -c $TMP/run --overwrite $SMALL --max-steps 2 $TMP/truncated.msgpack > /dev/null 2> $TMP/err &&
    same_run $TMP/run"
check "--overwrite: the old run's steps go, the new run's come" bash -c "
    cp -r $TMP/run.orig $TMP/over &&
    $BIN/hd-train -c $TMP/over --overwrite $SMALL --max-steps 1 --save-every 0 $TMP/acts.msgpack > /dev/null &&
    [ \"\$(ls -d $TMP/over/step-*)\" = $TMP/over/step-00000001 ] && [ \$(readlink $TMP/over/latest) = step-00000001 ]"
check "--overwrite with --resume: a usage error" bash -c "
    $BIN/hd-train --resume $TMP/run --overwrite > /dev/null 2> $TMP/err; [ \$? = 2 ] && grep -q 'not both' $TMP/err"
check "two runs on one directory: the second fails at once, naming the lock and the first's pid" bash -c "
    mkdir -p $TMP/busy &&
    ( $BIN/hd-train -c $TMP/busy $SMALL --epochs 100000 --save-every 0 $TMP/acts.msgpack > /dev/null 2>&1 & echo \$! > $TMP/busy.pid; wait ) &
    for i in \$(seq 200); do [ -s $TMP/busy/lock ] && break; sleep 0.05; done
    ! $BIN/hd-train -c $TMP/busy $SMALL --max-steps 1 $TMP/acts.msgpack > /dev/null 2> $TMP/err; rc=\$?
    kill \$(cat $TMP/busy.pid); wait
    [ \$rc = 0 ] && [ \$(wc -l < $TMP/err) = 1 ] &&
    grep -q \"another hd-train (pid \$(cat $TMP/busy.pid)) is training.*busy/lock\" $TMP/err"
check "a lock held by anyone (flock(1) here) also stops a run, before it writes anything" bash -c "
    mkdir -p $TMP/held && exec 9> $TMP/held/lock && flock -n 9 &&
    ! $BIN/hd-train -c $TMP/held $SMALL --max-steps 1 $TMP/acts.msgpack > /dev/null 2> $TMP/err &&
    grep -q 'another hd-train is training' $TMP/err && [ ! -e $TMP/held/train.spool ]"
check "a run that stops before writing removes the directory it made, never one it found" bash -c "
    ! $BIN/hd-train -m /nonexistent -c $TMP/fresh $SMALL $TMP/acts.msgpack > /dev/null 2>&1 && [ ! -e $TMP/fresh ] &&
    mkdir $TMP/mine && ! $BIN/hd-train -m /nonexistent -c $TMP/mine $SMALL $TMP/acts.msgpack > /dev/null 2>&1 &&
    [ -d $TMP/mine ]"
check "--resume: an option that contradicts the checkpoint is named (exit 2)" bash -c "
    for opt in '--lr 1e-3' '--hyper-layers 1' '--das-dim 4' '--layer 1' '--method das' '--subspace mask' '-b 2' '--seed 7'; do
        $BIN/hd-train --resume $TMP/run \$opt --max-steps 5 > /dev/null 2> $TMP/err; rc=\$?
        name=\${opt%% *}; [ \$name = -b ] && name=--batch
        [ \$rc = 2 ] && grep -q \"^hd-train: \$name .* contradicts the checkpoint's\" $TMP/err || { echo \"\$opt: rc \$rc\"; cat $TMP/err; exit 1; }
    done && same_run $TMP/run"
check "--resume with the checkpoint's own values is no contradiction" bash -c "
    cp -r $TMP/run.orig $TMP/again &&
    $BIN/hd-train --resume $TMP/again $SMALL --lr 4e-5 --max-steps 5 > /dev/null &&
    [ \$(readlink $TMP/again/latest) = step-00000005 ]"
check "state.json with a negative cursor, step or epoch: named, nothing read" bash -c "
    for key in cursor step epoch; do
        rm -rf $TMP/neg && cp -r $TMP/run.orig $TMP/neg &&
        sed -i \"s/\\\"\$key\\\": [0-9]*/\\\"\$key\\\": -3/\" $TMP/neg/latest/state.json &&
        ! $BIN/hd-train --resume $TMP/neg --max-steps 6 > /dev/null 2> $TMP/err &&
        [ \$(wc -l < $TMP/err) = 1 ] && grep -q \"state.json: \$key is -3; it must be >= 0\" $TMP/err || exit 1
    done"
check "state.json that is not JSON, or lacks a counter: one line naming it" bash -c "
    rm -rf $TMP/bad && cp -r $TMP/run.orig $TMP/bad &&
    printf '{\"step\": 4,' > $TMP/bad/latest/state.json &&
    ! $BIN/hd-train --resume $TMP/bad --max-steps 6 > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'state.json: line 1: ' $TMP/err &&
    printf '{\"step\": 4}' > $TMP/bad/latest/state.json &&
    ! $BIN/hd-train --resume $TMP/bad --max-steps 6 > /dev/null 2> $TMP/err &&
    [ \$(wc -l < $TMP/err) = 1 ] && grep -q 'state.json: missing step, epoch, cursor or seed' $TMP/err"
check "state.json with a cursor past the spool: named" bash -c "
    rm -rf $TMP/far && cp -r $TMP/run.orig $TMP/far &&
    sed -i 's/\"cursor\": [0-9]*/\"cursor\": 999/' $TMP/far/latest/state.json &&
    ! $BIN/hd-train --resume $TMP/far --max-steps 6 > /dev/null 2> $TMP/err &&
    grep -q 'cursor 999 is past the' $TMP/err"
check "values that mean nothing: usage errors naming the option, before the model is read" bash -c "
    for opt in '--epochs 0' '--lr -1' '--lr nan' '--lr-rotate inf' '--weight-decay -0.1' '--clip -1' '--keep 0' \
               '-b 0' '--das-dim 0' '--sub-ffn 0' '--causal-weight -1' '--head-std nan' '--sparsity 1:2:0.5x' \
               '--sparsity nan:1:0.5' '--sparsity -1:1:0.5'; do
        $BIN/hd-train -m /nonexistent -c $TMP/never \$opt $TMP/acts.msgpack > /dev/null 2> $TMP/err; rc=\$?
        name=\${opt%% *}; [ \$name = -b ] && name=--batch
        [ \$rc = 2 ] && grep -q \"^hd-train: \$name: expected\" $TMP/err || { echo \"\$opt: rc \$rc\"; cat $TMP/err; exit 1; }
    done && [ ! -e $TMP/never ]"
check "hd-score: an unknown --modes name before the model is read" bash -c "
    $BIN/hd-score -m /nonexistent -c $TMP/run --modes soft,sofft $TMP/acts.msgpack > /dev/null 2> $TMP/err
    [ \$? = 2 ] && grep -q \"unknown mode 'sofft'\" $TMP/err"
check "--val or training data that is a pairs stream: 'FILE: expected an acts stream, got pairs'" bash -c "
    ! $BIN/hd-train -c $TMP/pv $SMALL --max-steps 1 --val $TMP/pairs.msgpack $TMP/acts.msgpack > /dev/null 2> $TMP/err &&
    [ \"\$(cat $TMP/err)\" = \"hd-train: $TMP/pairs.msgpack: expected an acts stream, got pairs\" ] && [ ! -e $TMP/pv ] &&
    ! $BIN/hd-train -c $TMP/pt $SMALL --max-steps 1 $TMP/pairs.msgpack > /dev/null 2> $TMP/err &&
    grep -q 'pairs.msgpack: expected an acts stream, got pairs' $TMP/err &&
    ! $BIN/hd-train -c $TMP/ps $SMALL --max-steps 1 < $TMP/pairs.msgpack > /dev/null 2> $TMP/err &&
    [ \"\$(cat $TMP/err)\" = 'hd-train: stdin: expected an acts stream, got pairs' ] && [ ! -e $TMP/ps/train.spool ]"
check "--from-pairs takes pairs; given acts it says so" bash -c "
    ! $BIN/hd-train -c $TMP/fa $SMALL --max-steps 1 --from-pairs $TMP/acts.msgpack > /dev/null 2> $TMP/err &&
    grep -q 'acts.msgpack: expected a pairs stream, got acts' $TMP/err &&
    $BIN/hd-train -c $TMP/fp $SMALL --max-steps 1 --from-pairs $TMP/pairs.msgpack > /dev/null"
done_testing
