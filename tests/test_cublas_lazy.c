/* cuBLAS is opened on first use, not linked (kernels/cuda/cublas_lazy.c):
 * a process that never asks for a GPU does not pay the ~210 MB of resident
 * memory that loading libcublasLt costs.  Checked here without a GPU: the
 * library is not among the program's loaded objects until a cuBLAS
 * function is called; then it loads, with every function the kernels use,
 * and a call that needs a device fails with a cuBLAS status instead of
 * crashing.  (The tools' ELF files not naming libcublas is checked in
 * tests/cli/tools.sh.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#ifdef HD_CUDA
#include <cublas_v2.h>
#include "cuda/cuda_common.h"

/* 1 when a mapping of libcublas is in this process */
static int cublas_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) found |= strstr(line, "libcublas") != NULL;
    if (f) fclose(f);
    return found;
}

static void opened_on_first_use(void **state)
{
    (void)state;
    assert_false(cublas_mapped());
    const char *why = hd_cublas_load_error();
    if (why) skip(); /* a toolkit without cuBLAS at run time: nothing more to see */
    assert_true(cublas_mapped());
    assert_string_equal(cublasGetStatusName(CUBLAS_STATUS_SUCCESS), "CUBLAS_STATUS_SUCCESS");
    assert_non_null(strstr(cublasGetStatusString(CUBLAS_STATUS_NOT_SUPPORTED), "not supported"));
}

static void create_without_a_gpu_is_a_status(void **state)
{
    (void)state;
    if (hd_cuda_available() || hd_cublas_load_error()) skip();
    cublasHandle_t h = NULL;
    assert_int_not_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opened_on_first_use),
        cmocka_unit_test(create_without_a_gpu_is_a_status),
    };
    return cmocka_run_group_tests_name("cublas_lazy", tests, NULL, NULL);
}

#else /* built without nvcc */

static void cuda_not_built(void **state)
{
    (void)state;
    print_message("# built without CUDA (no nvcc): no cuBLAS to open\n");
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(cuda_not_built)};
    return cmocka_run_group_tests_name("cublas_lazy", tests, NULL, NULL);
}

#endif
