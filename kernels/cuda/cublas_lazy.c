/* cuBLAS, opened the first time it is called instead of at program start.
 *
 * Loading libcublas.so maps libcublasLt.so (540 MB) with it, and the
 * dynamic loader's relocations of that library alone take ~210 MB of
 * resident memory in every process that links them: hd-train on the CPU
 * paid it on every run (its peak RSS at physical_object's prompts was 2193
 * MiB, against a goal of 2 GiB).  The tools therefore do not link cuBLAS:
 * these are the cuBLAS functions the CUDA kernels call, with the library's
 * own names and types (cublas_api.h declares them, so a mismatch does not
 * compile), each calling the library's function through dlopen/dlsym.
 * Only a process that asks for a GPU opens it.  A function the kernels
 * start to use must be added here, or the link fails naming it. */
#ifdef HD_CUDA
#include <cublas_v2.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static struct {
    void *lib;
    char error[320];
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const float *, const float *, int, const float *, int, const float *,
                            float *, int);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                              const void *, const void *, cudaDataType, int, const void *,
                              cudaDataType, int, const void *, void *, cudaDataType, int,
                              cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*sgemm_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const float *, const float *const[], int,
                                    const float *const[], int, const float *, float *const[], int,
                                    int);
    cublasStatus_t (*sgemm_strided)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const float *, const float *, int, long long, const float *,
                                    int, long long, const float *, float *, int, long long, int);
    const char *(*status_string)(cublasStatus_t);
    const char *(*status_name)(cublasStatus_t);
} g;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void *need(const char *name)
{
    void *p = dlsym(g.lib, name);
    if (!p && !g.error[0]) snprintf(g.error, sizeof g.error, "libcublas.so.%d has no %s", CUBLAS_VER_MAJOR, name);
    return p;
}

static void open_cublas(void)
{
    /* the major version the kernels were compiled against, found as the
     * linker would: LD_LIBRARY_PATH, then the tools' RUNPATH (the CUDA
     * toolkit's lib64, Makefile), then the system's */
    const char *name = "libcublas.so." STR(CUBLAS_VER_MAJOR);
    g.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!g.lib) {
        snprintf(g.error, sizeof g.error, "cannot load %s: %s", name, dlerror());
        return;
    }
    *(void **)&g.create = need("cublasCreate_v2");
    *(void **)&g.destroy = need("cublasDestroy_v2");
    *(void **)&g.set_math_mode = need("cublasSetMathMode");
    *(void **)&g.sgemm = need("cublasSgemm_v2");
    *(void **)&g.gemm_ex = need("cublasGemmEx");
    *(void **)&g.sgemm_batched = need("cublasSgemmBatched");
    *(void **)&g.sgemm_strided = need("cublasSgemmStridedBatched");
    *(void **)&g.status_string = need("cublasGetStatusString");
    *(void **)&g.status_name = need("cublasGetStatusName");
}

/* 1 when every function is there; the handle's creation is the first call
 * (cuda_common.cu), so a missing library shows as its failure */
static int ready(void)
{
    pthread_once(&g_once, open_cublas);
    return g.lib && !g.error[0];
}

const char *hd_cublas_load_error(void)
{
    return ready() ? NULL : g.error;
}

cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t *handle)
{
    return ready() ? g.create(handle) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle)
{
    return ready() ? g.destroy(handle) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    return ready() ? g.set_math_mode(handle, mode) : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                           cublasOperation_t transb, int m, int n, int k,
                                           const float *alpha, const float *A, int lda,
                                           const float *B, int ldb, const float *beta, float *C,
                                           int ldc)
{
    return ready() ? g.sgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
                   : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const void *alpha, const void *A, cudaDataType Atype,
                                         int lda, const void *B, cudaDataType Btype, int ldb,
                                         const void *beta, void *C, cudaDataType Ctype, int ldc,
                                         cublasComputeType_t computeType, cublasGemmAlgo_t algo)
{
    return ready() ? g.gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype,
                               ldb, beta, C, Ctype, ldc, computeType, algo)
                   : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa,
                                               cublasOperation_t transb, int m, int n, int k,
                                               const float *alpha, const float *const Aarray[],
                                               int lda, const float *const Barray[], int ldb,
                                               const float *beta, float *const Carray[], int ldc,
                                               int batchCount)
{
    return ready() ? g.sgemm_batched(handle, transa, transb, m, n, k, alpha, Aarray, lda, Barray,
                                     ldb, beta, Carray, ldc, batchCount)
                   : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t CUBLASWINAPI cublasSgemmStridedBatched(cublasHandle_t handle,
                                                      cublasOperation_t transa,
                                                      cublasOperation_t transb, int m, int n, int k,
                                                      const float *alpha, const float *A, int lda,
                                                      long long int strideA, const float *B, int ldb,
                                                      long long int strideB, const float *beta,
                                                      float *C, int ldc, long long int strideC,
                                                      int batchCount)
{
    return ready() ? g.sgemm_strided(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B,
                                     ldb, strideB, beta, C, ldc, strideC, batchCount)
                   : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status)
{
    return ready() ? g.status_string(status) : g.error;
}

const char *CUBLASWINAPI cublasGetStatusName(cublasStatus_t status)
{
    return ready() ? g.status_name(status) : "CUBLAS_NOT_LOADED";
}
#endif
