#include "cuda/cuda_common.h"

#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "kernel_error.h"
}

static int g_device = -1;
static cublasHandle_t g_cublas = nullptr;
static int g_sm_count = 0;
static int g_tf32 = 0; /* hd_cuda_set_tf32: kept across re-initialisations */
static char g_device_name[320];
static void *g_scratch[HD_CUDA_SCRATCH_SLOTS];
static size_t g_scratch_bytes[HD_CUDA_SCRATCH_SLOTS];

int hd_cuda_check(cudaError_t err, const char *what)
{
    if (err == cudaSuccess) return 0;
    return hd_fail("%s: CUDA error %s (%s)", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

int hd_cublas_check(cublasStatus_t status, const char *what)
{
    if (status == CUBLAS_STATUS_SUCCESS) return 0;
    return hd_fail("%s: cuBLAS error %s (%s)", what, cublasGetStatusName(status),
                   cublasGetStatusString(status));
}

int hd_cuda_launched(const char *kernel)
{
    return hd_cuda_check(cudaGetLastError(), kernel);
}

extern "C" int hd_cuda_available(void)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError(); /* not sticky, but leave no trace for later calls */
        hd_fail("no usable CUDA device: %s", cudaGetErrorString(err));
        return 0;
    }
    if (n <= 0) {
        hd_fail("no CUDA device");
        return 0;
    }
    return 1;
}

static void free_scratch(void)
{
    for (int s = 0; s < HD_CUDA_SCRATCH_SLOTS; s++) {
        if (g_scratch[s]) cudaFree(g_scratch[s]);
        g_scratch[s] = nullptr;
        g_scratch_bytes[s] = 0;
    }
}

extern "C" void hd_cuda_shutdown(void)
{
    free_scratch();
    if (g_cublas) cublasDestroy(g_cublas);
    g_cublas = nullptr;
    g_device = -1;
    g_device_name[0] = '\0';
}

extern "C" int hd_cuda_init(int device)
{
    if (device < 0) {
        const char *env = getenv("HD_CUDA_DEVICE");
        device = env && *env ? atoi(env) : 0;
    }
    if (g_cublas && device == g_device) return 0;
    if (!hd_cuda_available()) return -1;
    int n = 0;
    if (hd_cuda_check(cudaGetDeviceCount(&n), "cudaGetDeviceCount")) return -1;
    if (device >= n) return hd_fail("CUDA device %d requested, %d present", device, n);
    hd_cuda_shutdown();
    if (hd_cuda_check(cudaSetDevice(device), "cudaSetDevice")) return -1;
    cudaDeviceProp prop;
    if (hd_cuda_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"))
        return -1;
    g_sm_count = prop.multiProcessorCount;
    snprintf(g_device_name, sizeof g_device_name, "%s (sm_%d%d, %d SMs)", prop.name, prop.major,
             prop.minor, prop.multiProcessorCount);
    if (hd_cublas_check(cublasCreate(&g_cublas), "cublasCreate")) {
        g_cublas = nullptr;
        return -1;
    }
    /* Plain fp32 FMA for the fp32 GEMMs unless asked: TF32 gives ~1e-3
     * relative errors and breaks parity with the CPU twin.  The bf16 GEMMs
     * name their compute type explicitly (CUBLAS_COMPUTE_32F) and use
     * tensor cores anyway. */
    if (hd_cublas_check(cublasSetMathMode(g_cublas, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                            : CUBLAS_DEFAULT_MATH),
                        "cublasSetMathMode"))
        return -1;
    g_device = device;
    return 0;
}

extern "C" int hd_cuda_set_tf32(int on)
{
    g_tf32 = on != 0;
    if (!g_cublas) return 0; /* applied when the handle is made */
    return hd_cublas_check(cublasSetMathMode(g_cublas, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                              : CUBLAS_DEFAULT_MATH),
                           "cublasSetMathMode");
}

extern "C" const char *hd_cuda_device_name(void) { return g_device_name; }

cublasHandle_t hd_cublas(void)
{
    if (!g_cublas && hd_cuda_init(-1)) return nullptr;
    return g_cublas;
}

unsigned int hd_cuda_grid_for(size_t n, unsigned int block)
{
    size_t need = (n + block - 1) / block;
    /* A grid-stride loop needs no more than a few waves of blocks. */
    size_t cap = (size_t)(g_sm_count > 0 ? g_sm_count : 132) * 32;
    if (need > cap) need = cap;
    return need > 0 ? (unsigned int)need : 1u;
}

void *hd_cuda_scratch(int slot, size_t bytes)
{
    if (slot < 0 || slot >= HD_CUDA_SCRATCH_SLOTS) {
        hd_fail("hd_cuda_scratch: no slot %d", slot);
        return nullptr;
    }
    if (bytes <= g_scratch_bytes[slot]) return g_scratch[slot];
    /* cudaFree waits for the device, so no queued kernel still reads it. */
    if (g_scratch[slot]) cudaFree(g_scratch[slot]);
    g_scratch[slot] = nullptr;
    g_scratch_bytes[slot] = 0;
    void *p = nullptr;
    if (hd_cuda_check(cudaMalloc(&p, bytes), "scratch cudaMalloc")) {
        hd_fail_prefix("%zu bytes of GPU scratch: ", bytes);
        return nullptr;
    }
    g_scratch[slot] = p;
    g_scratch_bytes[slot] = bytes;
    return p;
}

extern "C" void *hd_cuda_malloc(size_t bytes)
{
    if (bytes == 0) return nullptr;
    void *p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
        hd_fail("cudaMalloc of %zu bytes: %s", bytes, cudaGetErrorString(err));
        return nullptr;
    }
    return p;
}

extern "C" void hd_cuda_free(void *p)
{
    if (p) cudaFree(p);
}

extern "C" int hd_cuda_upload(void *dst_device, const void *src_host, size_t bytes)
{
    if (bytes == 0) return 0;
    return hd_cuda_check(cudaMemcpy(dst_device, src_host, bytes, cudaMemcpyHostToDevice),
                         "upload to GPU");
}

extern "C" int hd_cuda_download(void *dst_host, const void *src_device, size_t bytes)
{
    if (bytes == 0) return 0;
    return hd_cuda_check(cudaMemcpy(dst_host, src_device, bytes, cudaMemcpyDeviceToHost),
                         "download from GPU");
}

extern "C" int hd_cuda_copy(void *dst_device, const void *src_device, size_t bytes)
{
    if (bytes == 0) return 0;
    return hd_cuda_check(
        cudaMemcpyAsync(dst_device, src_device, bytes, cudaMemcpyDeviceToDevice, 0), "GPU copy");
}

extern "C" int hd_cuda_zero(void *dst_device, size_t bytes)
{
    if (bytes == 0) return 0;
    return hd_cuda_check(cudaMemsetAsync(dst_device, 0, bytes, 0), "GPU memset");
}

extern "C" int hd_cuda_sync(void)
{
    return hd_cuda_check(cudaDeviceSynchronize(), "GPU work");
}
