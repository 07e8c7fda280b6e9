/* The hard selection modes on the GPU (kernels/cpu/selection.c): one
 * thread per batch row runs the CPU's own per-row code (selection_row.h,
 * compiled for the device).  Evaluation only, b rows of (S+1) x B values,
 * so a serial row is microseconds, and the result is the CPU's exactly.
 * The bidding mode's temporary rows live in scratch slot 0. */
#include <stdint.h>

#include "cuda/cuda_hypernet_ops.h"

extern "C" {
#include "cpu/selection_row.h"
}

__global__ void selection_kernel(float *out, const float *W, SelectionMode mode, float threshold,
                                 const int *src_pos, const int *base_pos, int b, int S, int B,
                                 float *tmp_all)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= b) return;
    const size_t P = (size_t)(S + 1) * B;
    selection_row(out + r * P, W + r * P, mode, threshold, src_pos ? src_pos[r] : -1,
                  base_pos ? base_pos[r] : -1, S, B, tmp_all ? tmp_all + r * P : nullptr);
}

extern "C" int selection_forward_cuda(float *out, const float *W, SelectionMode mode,
                                      float threshold, const int *src_pos, const int *base_pos,
                                      int b, int S, int B)
{
    const size_t P = (size_t)(S + 1) * B;
    if (b <= 0 || P == 0) return 0;
    if (mode == SELECT_SOFT) return out == W ? 0 : hd_cuda_copy(out, W, (size_t)b * P * sizeof *out);
    float *tmp = NULL;
    if (mode == SELECT_BIDDING_ARGMAX && !(tmp = (float *)hd_cuda_scratch(0, (size_t)b * P * sizeof *tmp)))
        return -1;
    selection_kernel<<<(b + 31) / 32, 32>>>(out, W, mode, threshold, src_pos, base_pos, b, S, B,
                                            tmp);
    return hd_cuda_launched("selection_forward_cuda");
}
