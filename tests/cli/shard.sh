# cache-acts and hd-score --shard I/N on the tiny random Llama fixture: the
# shards' outputs, concatenated, hold the unsharded run's data records byte
# for byte and in order (the shards are cut on batch boundaries, so every
# batch is the same); `cat` of the shards' scores through --summarize gives
# the unsharded summaries; bad shard specs and stdin are usage errors;
# more shards than batches give empty shards that still concatenate;
# started by mpirun or srun (their environment variables), the tools take
# their rank's shard and write FILE.shard-I-of-N.
source tests/cli/lib.bash
export HD_MODEL=tests/fixtures/tiny-llama-f32
export SOURCE_DATE_EPOCH=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# 16 pairs; batch 3 gives 6 batches (3,3,3,3,3,1): three shards get 6, 6, 4
# pairs (not the 5, 5, 6 of an even split by records)
$BIN/ravel-pairs --domain city --attribute Country,Continent --isolate Language -n 8 > $TMP/pairs
$BIN/ravel-pairs --domain city --attribute Country --isolate Language -n 4 | $BIN/cache-acts -o $TMP/train.acts
$BIN/hd-train -c $TMP/hd -b 4 --hyper-layers 2 --layer 2 --das-dim 8 --sub-ffn 32 --max-steps 2 \
    $TMP/train.acts > /dev/null 2>&1

data() { grep -v '^{"t":"header"'; }   # hd-cat lines without the headers
nostates() { grep -v '^{"t":"states"'; }   # a shard repeats the states it needs
export -f data nostates
for i in 0 1 2; do
    $BIN/cache-acts -b 3 --shard $i/3 -o $TMP/s$i.acts $TMP/pairs
done
$BIN/cache-acts -b 3 -o $TMP/all.acts $TMP/pairs

check "cache-acts: 3 shards concatenated = the unsharded acts records, byte for byte" bash -c "
    [ \$($BIN/hd-cat --where t=acts --count $TMP/all.acts) = 16 ] &&
    cat $TMP/s0.acts $TMP/s1.acts $TMP/s2.acts | $BIN/hd-cat --where t=acts --full | data > $TMP/cat.json &&
    $BIN/hd-cat --where t=acts --full $TMP/all.acts | data > $TMP/all.json &&
    [ \$(wc -l < $TMP/all.json) = 16 ] && cmp $TMP/cat.json $TMP/all.json"
check "cache-acts: the cat of the shards (states repeated across shards) scores as the whole" bash -c "
    cat $TMP/s0.acts $TMP/s1.acts $TMP/s2.acts > $TMP/cat.acts &&
    [ \$($BIN/hd-cat --where t=states --count $TMP/cat.acts) -ge \$($BIN/hd-cat --where t=states --count $TMP/all.acts) ] &&
    $BIN/hd-score -c $TMP/hd -b 4 --modes soft $TMP/cat.acts | $BIN/hd-cat --where t=score --full | data > $TMP/c.json &&
    $BIN/hd-score -c $TMP/hd -b 4 --modes soft $TMP/all.acts | $BIN/hd-cat --where t=score --full | data > $TMP/a.json &&
    [ \$(wc -l < $TMP/a.json) = 16 ] && cmp $TMP/c.json $TMP/a.json"
check "cache-acts: shards cut on batches (6, 6, 4 pairs) and say so in the header" bash -c "
    [ \$($BIN/hd-cat --where t=acts --count $TMP/s0.acts) = 6 ] &&
    [ \$($BIN/hd-cat --where t=acts --count $TMP/s1.acts) = 6 ] &&
    [ \$($BIN/hd-cat --where t=acts --count $TMP/s2.acts) = 4 ] &&
    $BIN/hd-cat --header $TMP/s1.acts | grep -q '\"shard\":\[1,3\]' &&
    ! $BIN/hd-cat --header $TMP/all.acts | grep -q '\"shard\"'"
check "cache-acts: records of other types stay in their place, and end a batch" bash -c "
    $BIN/hd-cat --full $TMP/pairs | awk 'NR == 6 {print \"{\\\"t\\\":\\\"note\\\",\\\"n\\\":1}\"} {print}' |
        $BIN/hd-cat --to-records > $TMP/mixed &&
    $BIN/cache-acts -b 3 -o $TMP/mixed.acts $TMP/mixed &&
    for i in 0 1 2 3; do $BIN/cache-acts -b 3 --shard \$i/4 -o $TMP/m\$i.acts $TMP/mixed || exit 1; done &&
    cat $TMP/m0.acts $TMP/m1.acts $TMP/m2.acts $TMP/m3.acts | $BIN/hd-cat --full | data | nostates > $TMP/mcat.json &&
    $BIN/hd-cat --full $TMP/mixed.acts | data | nostates > $TMP/mall.json &&
    [ \$(wc -l < $TMP/mall.json) = 17 ] && sed -n 5p $TMP/mall.json | grep -q '\"t\":\"note\"' &&
    cmp $TMP/mcat.json $TMP/mall.json"

$BIN/hd-score -c $TMP/hd -b 4 --modes soft,bidding_argmax $TMP/all.acts > $TMP/all.scores
for i in 0 1 2; do
    $BIN/hd-score -c $TMP/hd -b 4 --modes soft,bidding_argmax --shard $i/3 -o $TMP/s$i.scores $TMP/all.acts
done
check "hd-score: 3 shards concatenated = the unsharded score records, byte for byte" bash -c "
    cat $TMP/s0.scores $TMP/s1.scores $TMP/s2.scores | $BIN/hd-cat --where t=score --full | data > $TMP/cat.json &&
    $BIN/hd-cat --where t=score --full $TMP/all.scores | data > $TMP/all.json &&
    [ \$(wc -l < $TMP/all.json) = 32 ] && cmp $TMP/cat.json $TMP/all.json &&
    $BIN/hd-cat --header $TMP/s2.scores | grep -q '\"shard\":\[2,3\]'"
check "hd-score: a shard's summaries cover the shard; --summarize of the cat = the unsharded summaries" bash -c "
    $BIN/hd-cat --where t=summary $TMP/s0.scores | data | jq -e '.rows[-1].n_causal + .rows[-1].n_isolate == 4' > /dev/null &&
    cat $TMP/s0.scores $TMP/s1.scores $TMP/s2.scores | $BIN/hd-score --summarize |
        $BIN/hd-cat --where t=summary | data > $TMP/sum.cat &&
    $BIN/hd-cat --where t=summary $TMP/all.scores | data > $TMP/sum.all &&
    [ \$(wc -l < $TMP/sum.all) = 2 ] && cmp $TMP/sum.cat $TMP/sum.all"
check "more shards than batches: empty shards with a header, the cat still equal" bash -c "
    for i in 0 1 2 3 4 5 6 7; do
        $BIN/cache-acts -b 3 --shard \$i/8 -o $TMP/e\$i.acts $TMP/pairs || exit 1
    done &&
    [ \$($BIN/hd-cat --count $TMP/e0.acts) = 0 ] && $BIN/hd-cat --header $TMP/e0.acts | grep -q '\"shard\":\[0,8\]' &&
    cat $TMP/e[0-7].acts | $BIN/hd-cat --where t=acts --full | data > $TMP/ecat.json &&
    $BIN/hd-cat --where t=acts --full $TMP/all.acts | data | cmp - $TMP/ecat.json &&
    $BIN/hd-score -c $TMP/hd -b 4 --shard 0/8 -o $TMP/e0.scores $TMP/all.acts &&
    [ \$($BIN/hd-cat --count $TMP/e0.scores) = 0 ] &&
    cat $TMP/e0.scores $TMP/all.scores | $BIN/hd-score --summarize > /dev/null"
check "bad --shard values are usage errors (exit 2), naming the option" bash -c "
    for s in 3/3 -1/2 1/0 x 1/ /2 '1 /2' 1/2x +1/2; do
        $BIN/cache-acts --shard \"\$s\" $TMP/pairs > /dev/null 2> $TMP/err; [ \$? = 2 ] || exit 1
        grep -q -- '--shard' $TMP/err || exit 1
        $BIN/hd-score -c $TMP/hd --shard \"\$s\" $TMP/all.acts > /dev/null 2>&1; [ \$? = 2 ] || exit 1
    done"
check "--shard with stdin, '-' or a pipe is a usage error; with --summarize too" bash -c "
    $BIN/cache-acts --shard 0/2 < $TMP/pairs > /dev/null 2> $TMP/err; [ \$? = 2 ] && grep -q stdin $TMP/err &&
    $BIN/cache-acts --shard 0/2 - < $TMP/pairs > /dev/null 2>&1; [ \$? = 2 ] &&
    cat $TMP/pairs | $BIN/cache-acts --shard 0/2 /dev/stdin > /dev/null 2> $TMP/err; [ \$? = 2 ] &&
    grep -q 'not a regular file' $TMP/err &&
    $BIN/hd-score -c $TMP/hd --shard 1/2 < $TMP/all.acts > /dev/null 2>&1; [ \$? = 2 ] &&
    $BIN/hd-score --summarize --shard 0/2 $TMP/all.scores > /dev/null 2>&1; [ \$? = 2 ]"
check "--shard: a missing file is named (exit 1); an input without acts is refused" bash -c "
    $BIN/cache-acts --shard 0/2 $TMP/nothere > /dev/null 2> $TMP/err; [ \$? = 1 ] && grep -q nothere $TMP/err &&
    ! $BIN/hd-score -c $TMP/hd --shard 1/2 $TMP/pairs > /dev/null 2> $TMP/err &&
    grep -q 'no acts records' $TMP/err"
check "started as rank I of N (mpirun's or srun's environment): shard I into FILE.shard-I-of-N" bash -c "
    for i in 0 1 2; do
        OMPI_COMM_WORLD_RANK=\$i OMPI_COMM_WORLD_SIZE=3 $BIN/cache-acts -b 3 -o $TMP/rank.acts $TMP/pairs || exit 1
        SLURM_PROCID=\$i SLURM_STEP_NUM_TASKS=3 $BIN/hd-score -c $TMP/hd -b 4 --modes soft,bidding_argmax \
            -o $TMP/rank.scores $TMP/all.acts || exit 1
    done &&
    [ ! -e $TMP/rank.acts ] && [ ! -e $TMP/rank.scores ] &&
    $BIN/hd-cat --header $TMP/rank.acts.shard-1-of-3 | grep -q '\"shard\":\[1,3\]' &&
    cat $TMP/rank.acts.shard-* | $BIN/hd-cat --where t=acts --full | data > $TMP/rcat.json &&
    $BIN/hd-cat --where t=acts --full $TMP/all.acts | data | cmp - $TMP/rcat.json &&
    for i in 0 1 2; do
        $BIN/hd-cat --full $TMP/rank.scores.shard-\$i-of-3 | data > $TMP/r.json &&
        $BIN/hd-cat --full $TMP/s\$i.scores | data | cmp - $TMP/r.json || exit 1
    done"
check "started as a rank without -o: a usage error; --shard wins over the environment" bash -c "
    OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=3 $BIN/cache-acts $TMP/pairs > /dev/null 2> $TMP/err;
    [ \$? = 2 ] && grep -q 'rank 1 of 3 by mpirun (Open MPI): give -o FILE' $TMP/err &&
    OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=3 $BIN/cache-acts -b 3 --shard 0/3 -o $TMP/w.acts $TMP/pairs &&
    $BIN/hd-cat --full $TMP/w.acts | data | cmp - <($BIN/hd-cat --full $TMP/s0.acts | data) &&
    SLURM_PROCID=0 SLURM_NTASKS=4 $BIN/cache-acts -b 3 -o $TMP/batch.acts $TMP/pairs &&
    $BIN/hd-cat --full $TMP/batch.acts | data | cmp - <($BIN/hd-cat --full $TMP/all.acts | data)"
done_testing
