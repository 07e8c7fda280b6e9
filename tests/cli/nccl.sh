# NCCL over MPI ranks (common/base/dist_nccl.c): 2 ranks, each on its own GPU,
# sum a device buffer (bin-mpi/tests/test_dist_nccl under mpirun).  Needs a
# build with MPI and NCCL (make MPI=1 with the CUDA toolkit; BIN=bin-mpi)
# and two GPUs: NCCL refuses two ranks on one device.  Elsewhere the check
# reports itself skipped, saying why; CI builds the program, so the NCCL
# path always compiles and links.
source tests/cli/lib.bash
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
name="2 ranks, one GPU each: NCCL sums their device buffers exactly"
n_gpus=0
command -v nvidia-smi > /dev/null && n_gpus=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU')
if ! command -v mpirun > /dev/null; then
    skip "$name" "mpirun is not installed (apt-get install openmpi-bin)"
elif ! $BIN/hd-train --version 2> /dev/null | grep -q '^features:.* nccl'; then
    skip "$name" "$BIN was built without MPI or NCCL (make MPI=1 with CUDA; BIN=bin-mpi)"
elif [ ! -x $BIN/tests/test_dist_nccl ]; then
    skip "$name" "$BIN/tests/test_dist_nccl is not built (make MPI=1 $BIN/tests/test_dist_nccl)"
elif [ "$n_gpus" -lt 2 ]; then
    skip "$name" "$n_gpus GPU(s) here: NCCL needs one per rank"
else
    check "$name" bash -c "
        CMOCKA_MESSAGE_OUTPUT=TAP timeout 120 mpirun -np 2 --oversubscribe $BIN/tests/test_dist_nccl \
            > $TMP/nccl.out 2>&1; rc=\$?; cat $TMP/nccl.out
        [ \$rc = 0 ] && [ \$(grep -c '^ok 2 - ranks_sum_device_buffers' $TMP/nccl.out) = 2 ]"
fi
done_testing
