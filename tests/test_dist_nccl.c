/* The NCCL collectives of the CUDA path (common/base/dist_nccl.c).
 *
 * Run plainly (as tests/run.sh does) it is a group of one: the calls must do
 * nothing, in any build, without touching a GPU.  Run under mpirun with 2+
 * ranks from an MPI build with NCCL and a GPU per rank
 * (tests/cli/nccl.sh), every rank sums a device buffer with the others':
 * the values are small integers, so the sum is exact and compared bit for
 * bit; a second call checks that the communicator is reused.  Anything
 * else (no GPU, no NCCL in the build) reports the test skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dist.h"
#include "base/error.h"
#ifdef HD_CUDA
#include "cuda/cuda_common.h"
#endif

static void a_group_of_one_needs_no_nccl(void **state)
{
    (void)state;
    if (dist_size() != 1) skip();
    assert_int_equal(dist_nccl_init(), 0);
    /* never dereferenced: a group of one has nothing to reduce */
    assert_int_equal(dist_allreduce_sum_f32_device((float *)16, 1000), 0);
    assert_int_equal(dist_allreduce_sum_f32_device(NULL, 0), 0);
    dist_nccl_finalize();
}

static void ranks_sum_device_buffers(void **state)
{
    (void)state;
    if (dist_size() < 2) skip();
#ifdef HD_CUDA
    if (!dist_nccl_compiled() || !hd_cuda_available()) skip();
    const size_t n = ((size_t)1 << 20) + 3;
    const int N = dist_size(), r = dist_rank();
    if (dist_nccl_init()) fail_msg("%s", hd_last_error());
    if (hd_cuda_init(dist_nccl_device())) fail_msg("%s", hd_last_error());
    print_message("# rank %d of %d on device %d: %s\n", r, N, dist_nccl_device(),
                  hd_cuda_device_name());
    float *x = malloc(n * sizeof *x), *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)((r + 1) * (int)(i % 7));
        want[i] = (float)(N * (N + 1) / 2 * (int)(i % 7));
    }
    float *dev = hd_cuda_malloc(n * sizeof *dev);
    if (!dev || hd_cuda_upload(dev, x, n * sizeof *x)) fail_msg("%s", hd_last_error());
    for (int round = 0; round < 2; round++) {
        if (dist_allreduce_sum_f32_device(dev, n)) fail_msg("%s", hd_last_error());
        if (hd_cuda_download(x, dev, n * sizeof *x)) fail_msg("%s", hd_last_error());
        assert_memory_equal(x, want, n * sizeof *x);
        /* the second round sums the sums: N times the first */
        for (size_t i = 0; i < n; i++) want[i] *= (float)N;
    }
    hd_cuda_free(dev);
    free(x), free(want);
    dist_nccl_finalize();
#else
    skip();
#endif
}

int main(int argc, char **argv)
{
    hd_progname = "test_dist_nccl";
    dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_group_of_one_needs_no_nccl),
        cmocka_unit_test(ranks_sum_device_buffers),
    };
    int failed = cmocka_run_group_tests_name("dist_nccl", tests, NULL, NULL);
    dist_finalize();
    return failed;
}
