# pipelines/ravel.mk and study.mk through the top-level Makefile: `make -n
# demo` lists the study's stages on verb at one size, `make -n demo-city`
# every stage of the earlier city demo, each intermediate its own target,
# and `make ravel DEVICE=cuda` runs the target's forward passes (hd-filter,
# cache-acts) on the GPU.
source tests/cli/lib.bash
# a make started from `make test` must not hand its jobserver or flags down
unset MAKEFLAGS MFLAGS MAKELEVEL
# the recipes' continuation lines joined, one command per line
joined() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta'; }
make -n demo 2>&1 | joined > $TMP/verb.txt
check "make -n demo: verb, known first, strict filter with known partners, 2,000 pairs" bash -c "
    grep -q \"ravel-pairs --domain verb --attribute 'Past Tense,Singular' .*--split train --queries\" $TMP/verb.txt &&
    grep -q 'hd-filter .*-o out/demo-verb/train.known' $TMP/verb.txt &&
    grep -q -- '--filter-strict --known-partners --from-known .*-n \$(( 2000 / 2 )) -o out/demo-verb/train-2000.pairs' $TMP/verb.txt &&
    grep -q 'cache-acts .*-o out/demo-verb/test.acts out/demo-verb/test.pairs' $TMP/verb.txt"
check "make -n demo: both methods 500 steps, scored with controls, the table" bash -c "
    grep -q 'hd-train --seed 42 --hyper-layers 4 .*--max-steps 500 .*-c out/demo-verb/hd-2000.ckpt ' $TMP/verb.txt &&
    grep -q 'hd-train --method das .*--max-steps 500 .*-c out/demo-verb/das-2000.ckpt ' $TMP/verb.txt &&
    grep -q 'hd-score .*-c out/demo-verb/hd-2000.ckpt .*--modes soft,column_argmax,groundtruth,random' $TMP/verb.txt &&
    grep -q 'hd-score .*-c out/demo-verb/das-2000.ckpt .*--modes groundtruth,random' $TMP/verb.txt &&
    grep -q 'hd-score --summarize --table out/demo-verb/hd-\$n.scores out/demo-verb/das-\$n.scores' $TMP/verb.txt &&
    grep -q 'cat out/demo-verb/table.txt' $TMP/verb.txt"
make -n demo-city 2>&1 | joined > $TMP/demo.txt
check "make -n demo-city: the pairs, filtered, for train and test" bash -c "
    grep -q 'ravel-pairs --domain city --split train' $TMP/demo.txt &&
    grep -q 'ravel-pairs --domain city --split test' $TMP/demo.txt &&
    grep -q -- '-n 500' $TMP/demo.txt && grep -q -- '--seed 2026' $TMP/demo.txt &&
    [ \$(grep -c 'hd-filter' $TMP/demo.txt) -ge 2 ]"
check "make -n demo-city: activations, both methods trained, both scored" bash -c "
    grep -q 'cache-acts .*-o out/demo/train.acts out/demo/train.pairs' $TMP/demo.txt &&
    grep -q 'cache-acts .*-o out/demo/test.acts out/demo/test.pairs' $TMP/demo.txt &&
    grep -q 'hd-train .*--hyper-layers 4 .*-c out/demo/hyperdas.ckpt' $TMP/demo.txt &&
    grep -q 'hd-train --method das .*-c out/demo/das.ckpt' $TMP/demo.txt &&
    grep -q 'hd-score .*-c out/demo/hyperdas.ckpt' $TMP/demo.txt &&
    grep -q 'hd-score .*-c out/demo/das.ckpt' $TMP/demo.txt"
check "make -n demo-city: the table, the heatmaps and the loss curves" bash -c "
    grep -q 'hd-score --summarize --table out/demo/hyperdas.scores out/demo/das.scores' $TMP/demo.txt &&
    grep -q 'hd-plot --heatmaps out/demo/plots' $TMP/demo.txt &&
    grep -q 'hd-plot --curve out/demo/loss.svg out/demo/hyperdas.log out/demo/das.log' $TMP/demo.txt"
export -f joined
check "make -n ravel: the paper's configuration into out/ravel-DOMAIN" bash -c "
    make -n ravel DOMAIN=nobel_prize_winner MODEL=/nonexistent 2>&1 | joined > $TMP/ravel.txt &&
    grep -q 'ravel-pairs --domain nobel_prize_winner --split train' $TMP/ravel.txt &&
    grep -q 'hd-train -m /nonexistent .*--layer 15 --hyper-layers 8 --das-dim 128 --epochs 5 .*-c out/ravel-nobel_prize_winner/hyperdas.ckpt' $TMP/ravel.txt"
check "make -n ravel DEVICE=cuda: filter, cache, train and score on the GPU" bash -c "
    make -n ravel DEVICE=cuda MODEL=/nonexistent 2>&1 | joined > $TMP/cuda.txt &&
    [ \$(grep -c 'hd-filter .*--device cuda' $TMP/cuda.txt) = 2 ] &&
    [ \$(grep -c 'cache-acts .*--device cuda' $TMP/cuda.txt) = 2 ] &&
    [ \$(grep -c 'hd-train .*--device cuda' $TMP/cuda.txt) = 2 ] &&
    [ \$(grep -c 'hd-score .*--device cuda.*-c' $TMP/cuda.txt) = 2 ] &&
    ! grep -q 'hd-score --summarize.*--device' $TMP/cuda.txt &&
    ! grep -q -- '--device' $TMP/ravel.txt"
check "make ravel DEVICE=tpu: refused with a one-line reason" bash -c "
    ! make ravel DEVICE=tpu OUT=$TMP/tpu > $TMP/tpu.txt 2>&1 &&
    grep -q 'DEVICE=tpu: expected cpu or cuda' $TMP/tpu.txt && [ ! -e $TMP/tpu ]"
check "ravel-slurm.sh finds the checkout's bin/ from anywhere, or says how" bash -c "
    repo=\$PWD && cd $TMP &&
    ! env -u BIN -u MPIBIN bash \$repo/pipelines/ravel-slurm.sh /nonexistent-model > /dev/null 2> $TMP/slurm.err &&
    cat $TMP/slurm.err && ! grep -q ' bin/ravel-pairs is missing' $TMP/slurm.err &&
    grep -Eq \"\$repo/bin-mpi/hd-train is missing|/nonexistent-model: no such model\" $TMP/slurm.err &&
    mkdir -p $TMP/elsewhere/pipelines && cp \$repo/pipelines/ravel-slurm.sh $TMP/elsewhere/pipelines/ &&
    ! env -u BIN -u MPIBIN SLURM_SUBMIT_DIR=$TMP bash $TMP/elsewhere/pipelines/ravel-slurm.sh m 2> $TMP/slurm2.err &&
    grep -q 'bin/ravel-pairs is missing: run make in the checkout, submit from its top directory, or set BIN' $TMP/slurm2.err"
# An interrupted study training resumes (study.mk, study_train): Ctrl-C
# (SIGINT to make and hd-train alike) leaves a checkpoint and the log so
# far; the next make resumes from it and joins the logs, with the weights
# of a run never interrupted.  The tiny model, acts made here, so make
# has only the training to do.
check "make: a study training stopped by Ctrl-C resumes, logs joined, the same weights" bash -c "
    export HD_MODEL=tests/fixtures/tiny-llama-f32 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 SOURCE_DATE_EPOCH=0 &&
    for d in u i; do mkdir -p $TMP/st-\$d &&
        $BIN/ravel-pairs --domain city --attribute Country -n 16 | $BIN/cache-acts -o $TMP/st-\$d/train-16.acts &&
        $BIN/ravel-pairs --domain city --attribute Country -n 8 --split val | $BIN/cache-acts -o $TMP/st-\$d/val.acts ||
        exit 1; done
    # the tools under test, through links make has no rule for (so that it
    # never rebuilds them: under make asan it would relink them unsanitised)
    mkdir -p $TMP/st-bin && ln -sf \$(cd $BIN && pwd)/* $TMP/st-bin/ &&
    export RAVEL_BIN=$TMP/st-bin MODEL=tests/fixtures/tiny-llama-f32 THREADS=1 STUDY_SIZES=16 STUDY_STEPS=150 STUDY_SAVE_EVERY=50 STUDY_EVAL='--eval-every 50 --eval-max 8' \
        STUDY_HD_OPTS='-b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32 --no-sparsity' &&
    make --no-print-directory STUDY=$TMP/st-u $TMP/st-u/hd-16.log > $TMP/st-u.out 2>&1 || exit 1
    ( exec setsid make --no-print-directory STUDY=$TMP/st-i $TMP/st-i/hd-16.log ) > $TMP/st-i.out 2>&1 &
    for i in \$(seq 1000); do [ -e $TMP/st-i/hd-16.ckpt/latest ] && break; sleep 0.01; done
    sleep 0.05; kill -INT -- -\$! ; wait \$!
    [ -e $TMP/st-i/hd-16.log.part ] && [ ! -e $TMP/st-i/hd-16.log ] &&
    first=\$($BIN/hd-cat --where t=step --count $TMP/st-i/hd-16.log.part) && [ \$first -gt 0 ] && [ \$first -lt 150 ] &&
    make --no-print-directory STUDY=$TMP/st-i $TMP/st-i/hd-16.log > $TMP/st-i2.out 2>&1 &&
    grep -q \"resuming $TMP/st-i/hd-16.ckpt from its step-\$(printf %08d \$first)\" $TMP/st-i2.out &&
    [ \$($BIN/hd-cat --where t=step --count $TMP/st-i/hd-16.log) = 150 ] &&
    [ \$($BIN/hd-cat --where t=eval --count $TMP/st-i/hd-16.log) = \$($BIN/hd-cat --where t=eval --count $TMP/st-u/hd-16.log) ] &&
    [ ! -e $TMP/st-i/hd-16.ckpt/train.spool ] && ! ls $TMP/st-i/hd-16.ckpt | grep -q log-part &&
    cmp $TMP/st-u/hd-16.ckpt/latest/model.safetensors $TMP/st-i/hd-16.ckpt/latest/model.safetensors"
done_testing
