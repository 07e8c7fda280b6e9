/* AdamW on the GPU: kernels/cpu/adamw.c element for element.  Every
 * operation is an explicitly rounded intrinsic (__fmul_rn, __fadd_rn, ...)
 * so that nvcc cannot contract a product and a sum into one fused
 * multiply-add: the CPU build rounds each one, and so the GPU's parameters
 * and moments are the CPU's bit for bit.  The scalars (bias corrections,
 * step size) are computed on the host in double exactly as the CPU twin
 * computes them. */
#include <math.h>

#include "cuda/cuda_hypernet_ops.h"

__global__ void adamw_kernel(float *p, const float *g, float grad_scale, float *m, float *v,
                             size_t n, float decay, float one_minus_b1, float one_minus_b2,
                             float beta2, float eps, float step_size, float bc2_sqrt)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float gi = grad_scale == 1.0f ? g[i] : __fmul_rn(g[i], grad_scale);
        const float m0 = m[i], v0 = v[i];
        const float pi = __fmul_rn(p[i], decay);
        const float mi = __fadd_rn(m0, __fmul_rn(one_minus_b1, __fsub_rn(gi, m0)));
        /* v0 * beta2 + (one_minus_b2 * gi) * gi, left to right as in C */
        const float vi = __fadd_rn(__fmul_rn(v0, beta2), __fmul_rn(__fmul_rn(one_minus_b2, gi), gi));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fsub_rn(pi, __fmul_rn(step_size, __fdiv_rn(mi, denom)));
        /* stored only where they change, as on the CPU (NaN != NaN: stored) */
        if (mi != m0) m[i] = mi;
        if (vi != v0) v[i] = vi;
    }
}

extern "C" int adamw_update_cuda(float *p, const float *g, float grad_scale, float *m, float *v,
                                 size_t n, float lr, float weight_decay, const AdamWConfig *cfg,
                                 long step)
{
    if (n == 0) return 0;
    if (step < 1) step = 1;
    /* the host scalars of kernels/cpu/adamw.c, computed the same way */
    const double b1 = cfg->beta1, b2 = cfg->beta2;
    const float decay = (float)(1.0 - (double)lr * weight_decay);
    const float one_minus_b1 = (float)(1.0 - b1), one_minus_b2 = (float)(1.0 - b2);
    const double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    adamw_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(p, g, grad_scale, m, v, n, decay, one_minus_b1,
                                                    one_minus_b2, cfg->beta2, cfg->eps, step_size,
                                                    bc2_sqrt);
    return hd_cuda_launched("adamw_update_cuda");
}

extern "C" int adamw_step_cuda(float *params, const float *grads, float grad_scale, float *m,
                               float *v, const AdamWSpan *spans, int n_spans,
                               const AdamWConfig *cfg, long step)
{
    /* decay_only spans take the full rule too: on their zero g, m and v it
     * gives the same values (hd-train splits spans only on the CPU) */
    for (int i = 0; i < n_spans; i++) {
        size_t o = spans[i].offset;
        if (adamw_update_cuda(params + o, grads + o, grad_scale, m + o, v + o, spans[i].count,
                              spans[i].lr, spans[i].weight_decay, cfg, step))
            return -1;
    }
    return 0;
}
