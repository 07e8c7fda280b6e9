/* The source-selection sparsity penalty of HyperDAS (hyperdas(7) 6.2, 6.3):
 *
 *   rsum[r,s] = sum_t W[r,s,t]                  (source rows s < S only)
 *   pen[r]    = sum_s (rsum[r,s] > 1 ? rsum[r,s] : 0)
 *   loss      = mean over the b rows of pen[r]
 *
 * It penalises a source token whose total weight over base positions
 * exceeds 1.  As in the reference it is linear in rsum, not in rsum - 1, so
 * it jumps at 1 (hyperdas(7) 14.12); the gradient is 1/b on every W[r,s,t] of a
 * row above 1 and 0 elsewhere. */
#ifndef HD_KERNELS_CPU_SPARSITY_LOSS_H
#define HD_KERNELS_CPU_SPARSITY_LOSS_H

/* W [b, S+1, B]; the self row S is not penalised. */
float sparsity_loss_forward(const float *W, int b, int S, int B);

/* dW [b, S+1, B] += dloss * dL/dW. */
void sparsity_loss_backward(float *dW, const float *W, float dloss, int b, int S, int B);

/* The weight schedule: torch.linspace(start, end, total_steps + 1)[step] in
 * fp32 (torch's two-sided formula), 0 for step < (int)(warm_up_ratio *
 * total_steps).  bf16 != 0 rounds it to bfloat16 as the reference stores
 * the schedule (round to nearest even). */
float sparsity_weight(long step, long total_steps, float start, float end, float warm_up_ratio,
                      int bf16);

#endif
