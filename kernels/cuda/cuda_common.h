/* The GPU side's plumbing: which device, is there one at all, error
 * reporting, the cuBLAS handle, and device memory.
 *
 * Everything above the #ifdef __CUDACC__ line is plain C, callable from the
 * C11 tools and tests.  Like the rest of the library these functions never
 * print or exit: a failure returns -1 (or NULL) after hd_fail() has set a
 * message that hd_last_error() returns.
 *
 * Execution model, kept deliberately simple: one host thread drives the GPU,
 * every kernel and cuBLAS call goes to the default stream, so consecutive
 * ops are ordered without any events.  Kernel launches are asynchronous: an
 * op's return value reports a bad argument or a failed launch, while a fault
 * during execution (an out-of-bounds access, say) surfaces at the next
 * hd_cuda_sync() or copy back to the host. */
#ifndef HD_KERNELS_CUDA_COMMON_H
#define HD_KERNELS_CUDA_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when a CUDA device can be used, 0 otherwise (no driver, no device, a
 * driver older than the runtime); in the 0 case hd_last_error() says why.
 * Cheap and safe to call on a machine without any GPU. */
int hd_cuda_available(void);

/* Selects the device (device < 0: $HD_CUDA_DEVICE, else 0) and creates the
 * cuBLAS handle.  Ops call it themselves on first use; calling it again
 * with another device switches (and frees the scratch buffers). */
int hd_cuda_init(int device);
/* Frees the cuBLAS handle and the scratch buffers (device memory the
 * caller allocated stays theirs). */
void hd_cuda_shutdown(void);
/* on != 0: the fp32 GEMMs (matmul_*_cuda, attention's batched products)
 * use TF32 tensor cores: inputs rounded to 10-bit mantissas (~5e-4
 * relative), fp32 accumulation, about 8x the fp32 rate on an H100 (session
 * 1: 396 vs 51 TFLOP/s).  Off by default (parity with the CPU twins); the
 * setting outlives hd_cuda_init. */
int hd_cuda_set_tf32(int on);
/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)", or "" before hd_cuda_init. */
const char *hd_cuda_device_name(void);

/* Device memory.  hd_cuda_malloc(0) returns NULL without failing. */
void *hd_cuda_malloc(size_t bytes);
void hd_cuda_free(void *p);
int hd_cuda_upload(void *dst_device, const void *src_host, size_t bytes);
int hd_cuda_download(void *dst_host, const void *src_device, size_t bytes);
int hd_cuda_copy(void *dst_device, const void *src_device, size_t bytes);
int hd_cuda_zero(void *dst_device, size_t bytes);

/* Waits for all queued GPU work; -1 if any of it failed. */
int hd_cuda_sync(void);

/* cuBLAS is not linked but opened on first use (cublas_lazy.c): NULL once
 * it is loaded with every function the kernels call, else why not (the
 * first call tries to load it; safe without a GPU). */
const char *hd_cublas_load_error(void);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* ---- for the .cu files only ---- */
#include <cublas_v2.h>
#include <cuda_runtime.h>

/* 0 on success; else hd_fail("WHAT: CUDA error NAME (text)") and -1. */
int hd_cuda_check(cudaError_t err, const char *what);
int hd_cublas_check(cublasStatus_t status, const char *what);
/* Call right after a kernel launch: catches bad launch configurations. */
int hd_cuda_launched(const char *kernel);
/* The handle (fp32 math without TF32), initialising on first use; NULL
 * after hd_fail when there is no device. */
cublasHandle_t hd_cublas(void);
/* A grow-only device buffer of at least `bytes`, for an op's temporaries.
 * Slots let one op hold two at once.  Safe to reuse by consecutive ops
 * because everything runs in the default stream's order.  NULL on failure. */
enum { HD_CUDA_SCRATCH_SLOTS = 2 };
void *hd_cuda_scratch(int slot, size_t bytes);
/* Blocks for a grid-stride loop over n items: enough to fill the GPU,
 * never more than the items need. */
unsigned int hd_cuda_grid_for(size_t n, unsigned int block);
#endif

#endif
