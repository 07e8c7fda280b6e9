/* The CPU row of the op table (compute.h): kernels/cpu on host memory.
 * Most ops are the kernels themselves; the adapters below exist where the
 * table's signature differs (a value returned instead of written, fp32
 * frozen weights behind `const void *`). */
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "cpu/adamw.h"
#include "cpu/attention.h"
#include "cpu/cross_attention.h"
#include "cpu/embedding.h"
#include "cpu/grad_clip.h"
#include "cpu/householder.h"
#include "cpu/intervention.h"
#include "cpu/matmul.h"
#include "cpu/position_head.h"
#include "cpu/residual.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/sigmoid.h"
#include "cpu/softmax_xent.h"
#include "cpu/sparsity_loss.h"
#include "cpu/swiglu.h"
#include "kernel_error.h"

static void *cpu_alloc(size_t bytes)
{
    if (bytes == 0) return NULL;
    void *p = calloc(1, bytes);
    if (!p) hd_fail("cannot allocate %.1f MiB of host memory", bytes / 1048576.0);
    return p;
}

static void cpu_move(void *dst, const void *src, size_t bytes)
{
    if (dst != src && bytes) memmove(dst, src, bytes);
}

static void cpu_zero(void *dst, size_t bytes)
{
    if (bytes) memset(dst, 0, bytes);
}

static int cpu_status(void)
{
    return 0;
}

static void cpu_frozen_matmul_forward(float *out, const float *inp, const void *weight, int N,
                                      int C, int OC)
{
    matmul_forward(out, inp, weight, NULL, N, C, OC);
}

static void cpu_frozen_matmul_backward(float *dinp, const float *dout, const void *weight, int N,
                                       int C, int OC)
{
    matmul_backward(dinp, NULL, NULL, dout, NULL, weight, N, C, OC);
}

static void cpu_sparsity_loss_forward(float *loss, const float *W, int b, int S, int B)
{
    *loss = sparsity_loss_forward(W, b, S, B);
}

static void cpu_grad_norm(double *norm, const float *g, size_t n)
{
    *norm = grad_norm(g, n);
}

static const Compute cpu = {
    .name = "cpu",
    .on_device = 0,
    .alloc = cpu_alloc,
    .release = free,
    .upload = cpu_move,
    .download = cpu_move,
    .copy = cpu_move,
    .zero = cpu_zero,
    .status = cpu_status,
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .matmul_forward_strided = matmul_forward_strided,
    .matmul_backward_strided = matmul_backward_strided,
    .frozen_matmul_forward = cpu_frozen_matmul_forward,
    .frozen_matmul_backward = cpu_frozen_matmul_backward,
    .embedding_forward = embedding_forward,
    .embedding_backward = embedding_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .rope_forward = rope_forward,
    .rope_backward = rope_backward,
    .swiglu_forward = swiglu_forward,
    .swiglu_backward = swiglu_backward,
    .residual_forward = residual_forward,
    .sigmoid_forward = sigmoid_forward,
    .sigmoid_backward = sigmoid_backward,
    .softmax_xent_forward = softmax_xent_forward,
    .softmax_xent_backward = softmax_xent_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .cross_attention_forward = cross_attention_forward,
    .cross_attention_backward = cross_attention_backward,
    .position_head_forward = position_head_forward,
    .position_head_backward = position_head_backward,
    .selection_forward = selection_forward,
    .sparsity_loss_forward = cpu_sparsity_loss_forward,
    .sparsity_loss_backward = sparsity_loss_backward,
    .householder_orthogonal_forward = householder_orthogonal_forward,
    .householder_orthogonal_backward = householder_orthogonal_backward,
    .reflect_forward = reflect_forward,
    .reflect_backward = reflect_backward,
    .intervention_forward = intervention_forward,
    .intervention_backward = intervention_backward,
    .grad_norm = cpu_grad_norm,
    .adamw_step = adamw_step,
};

const Compute *compute_cpu(void)
{
    return &cpu;
}

/* The CPU ops behind the device code path: on_device = 1 makes every
 * caller allocate its own buffers, prepare inputs on the host and move
 * them with upload/download, as for a GPU, while the memory is still host
 * memory and the ops the CPU's.  A missing or short upload then changes
 * the numbers, which tests compare bit for bit with the plain CPU path. */
const Compute *compute_cpu_staged(void)
{
    static Compute staged;
    if (!staged.name) {
        staged = cpu;
        staged.on_device = 1;
        staged.name = "cpu-staged";
    }
    return &staged;
}

const Compute *compute_by_name(const char *name)
{
    if (name && strcmp(name, "cpu") == 0) return compute_cpu();
    if (name && strcmp(name, "cuda") == 0) return compute_cuda();
    hd_fail("unknown device '%s' (cpu or cuda)", name ? name : "");
    return NULL;
}
