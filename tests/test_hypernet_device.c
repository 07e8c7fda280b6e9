/* One whole training step (forward, backward, gradient norm, AdamW) of the
 * hypernetwork on a backend other than the plain CPU (compute.h), against
 * the CPU step on the tiny target of hypernet_test_batch.h.
 *
 * cpu-staged (runs everywhere): the CPU ops behind the device code path
 * -- separate activation and parameter buffers, inputs prepared on the
 * host and uploaded, the loss and the parameters downloaded.  Same ops,
 * same order, so every number must be BIT FOR BIT the plain CPU's: any
 * missing, short or misplaced copy shows.  Run for HyperDAS with
 * ReflectSelect, with MaskSelect, with a cross block ablated, and for the
 * DAS method, so that every branch of the step moves its data.
 *
 * cuda (a GPU only; skipped elsewhere): the same step on the GPU, the
 * target's matrices and LM head in bf16 there.  Both sides use the same
 * weights (the CPU model's matrices are rounded to bf16 first), so what
 * differs is the GPU's rounding of each frozen projection's input to bf16
 * (2^-9 relative), fp32 summation orders and CUDA's expf.  Tolerances: the
 * loss within 1e-2 relative; each parameter tensor's gradient rel rms
 * <= 5e-2 (two target layers and the LM head each add ~2e-3 forward and
 * backward; the head's softmax and the reflection amplify it; a tensor
 * whose CPU gradient is 0 must be 0 within 1e-6).  After AdamW (lr 1e-3):
 * its first step from zero moments moves a parameter by lr g / (|g| + eps),
 * about lr sign(g), whatever g's size, so where a gradient is within its
 * error of zero the two sides may move it in opposite directions, 2 lr
 * apart (seen on an H200: 0.002).  So: every parameter within 1e-5 of the
 * CPU's, except where the CPU's gradient is tiny (|g| <= 0.25 of its
 * tensor's gradient rms, 5 times the gradient bound), and there within
 * 2 lr; such exceptions at most 2% of the parameters.
 * The same bounds hold with the GPU's fp32 GEMMs on TF32 (hd-train --tf32):
 * its 2^-11 input rounding is below the bf16 target's 2^-8. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>

#include "compute.h"
#include "bf16_weights.h"
#include "hypernet_test_batch.h"
#include "model/llama_cuda.h"
#ifdef HD_CUDA
#include "cuda/cuda_common.h"
#endif

typedef struct {
    float loss;
    double norm;
    float *grads, *params; /* host copies, [n_params] */
} StepResult;

/* The variants of the step the staged test covers. */
typedef enum { V_REFLECT, V_MASK, V_ABLATE_SOURCE, V_DAS } Variant;

static Hypernet *variant_hypernet(LlamaModel *m, Batch *x, Variant v)
{
    if (v == V_DAS) {
        tiny_target(m);
        Hypernet *hn = das_test_hypernet(m, 1, 4);
        tiny_batch(x, m, 1);
        return hn;
    }
    tiny_target(m);
    HypernetConfig cfg = hypernet_default_config(&m->cfg);
    cfg.n_layers = 2, cfg.intervention_layer = 1, cfg.das_dim = 4, cfg.sub_ffn = 12;
    if (v == V_MASK) cfg.subspace = HN_SUBSPACE_MASK;
    if (v == V_ABLATE_SOURCE) cfg.ablate_source_attention = 1;
    Hypernet *hn = hypernet_create(&cfg, &m->cfg);
    if (!hn) fail_msg("%s", hd_last_error());
    assert_int_equal(hypernet_init(hn, m, 0, 0.3f, 5), 0);
    tiny_batch(x, m, cfg.intervention_layer);
    return hn;
}

/* One step of hn on backend K with the target as K holds it; hn's host
 * parameters are restored afterwards, the result kept in r. */
static void run_step(Hypernet *hn, const Compute *K, const LlamaView *target, const Batch *x,
                     HnOptions opt, StepResult *r)
{
    const size_t n = hn->n_params, bytes = n * sizeof(float);
    float *keep = malloc(bytes);
    memcpy(keep, hn->params, bytes);
    HnActs *a = hn_acts_create_on(K, hn, x->b, x->E, x->B, x->S, 0);
    if (!a) fail_msg("%s", hd_last_error());
    if (hn_acts_zero_grad(a, hn)) fail_msg("%s", hd_last_error());
    HnLoss loss;
    if (hypernet_forward_view(hn, a, target, &x->batch, &opt, &loss))
        fail_msg("forward on %s: %s", K->name, hd_last_error());
    if (hypernet_backward_view(hn, a, target))
        fail_msg("backward on %s: %s", K->name, hd_last_error());
    r->loss = loss.total;
    K->grad_norm(&r->norm, hn_acts_grads(a), n);
    const int n_info = hypernet_param_count(hn);
    AdamWSpan *spans = calloc((size_t)n_info, sizeof *spans);
    const float lr[HN_N_GROUPS] = {1e-3f, 1e-3f, 1e-3f, 0}, wd[HN_N_GROUPS] = {0.01f, 0, 0.01f, 0};
    int n_spans = hypernet_adamw_spans(hn, lr, wd, spans);
    AdamWConfig acfg = adamw_default_config();
    float *m = K->alloc(bytes), *v = K->alloc(bytes);
    K->adamw_step(hn_acts_params(a), hn_acts_grads(a), 1.0f, m, v, spans, n_spans, &acfg, 1);
    if (K->status()) fail_msg("optimiser on %s: %s", K->name, hd_last_error());
    r->grads = malloc(bytes);
    r->params = malloc(bytes);
    if (hn_acts_download_grads(a, hn) || hn_acts_download_params(a, hn))
        fail_msg("%s", hd_last_error());
    memcpy(r->grads, hn->grads, bytes);
    memcpy(r->params, hn->params, bytes);
    memcpy(hn->params, keep, bytes);
    K->release(m);
    K->release(v);
    free(spans);
    free(keep);
    hn_acts_free(a);
}

static void result_free(StepResult *r)
{
    free(r->grads);
    free(r->params);
}

static HnOptions step_options(void)
{
    HnOptions opt = hn_default_options();
    opt.sparsity_weight = 0.25f; /* the sparsity term and its gradient take part */
    opt.mask_temperature = 0.5f;
    return opt;
}

static void staged_variant(Variant variant)
{
    LlamaModel m;
    Batch x;
    Hypernet *hn = variant_hypernet(&m, &x, variant);
    HnOptions opt = step_options();
    LlamaView cpu_target = llama_view_cpu(&m);
    LlamaView staged_target = cpu_target; /* "device" memory is host memory here */
    staged_target.K = compute_cpu_staged();
    StepResult want, got;
    run_step(hn, compute_cpu(), &cpu_target, &x, opt, &want);
    run_step(hn, compute_cpu_staged(), &staged_target, &x, opt, &got);
    assert_true(want.loss > 0.0f);
    assert_memory_equal(&got.loss, &want.loss, sizeof want.loss);
    assert_memory_equal(&got.norm, &want.norm, sizeof want.norm);
    assert_memory_equal(got.grads, want.grads, hn->n_params * sizeof(float));
    assert_memory_equal(got.params, want.params, hn->n_params * sizeof(float));
    result_free(&want);
    result_free(&got);
    hypernet_free(hn);
    batch_free(&x);
    llama_model_free(&m);
}

static void staged_reflect_is_the_cpu_bit_for_bit(void **state)
{
    (void)state;
    staged_variant(V_REFLECT);
}

static void staged_maskselect_is_the_cpu_bit_for_bit(void **state)
{
    (void)state;
    staged_variant(V_MASK);
}

static void staged_ablated_source_is_the_cpu_bit_for_bit(void **state)
{
    (void)state;
    staged_variant(V_ABLATE_SOURCE);
}

static void staged_das_is_the_cpu_bit_for_bit(void **state)
{
    (void)state;
    staged_variant(V_DAS);
}

/* A staged forward with a non-finite source state fails with the same
 * message as the CPU's and leaves no half-done state behind. */
static void staged_bad_input_fails_clearly(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    LlamaView target = llama_view_cpu(&m);
    target.K = compute_cpu_staged();
    HnActs *a = hn_acts_create_on(target.K, hn, x.b, x.E, x.B, x.S, 0);
    assert_non_null(a);
    x.src_ys[3] = NAN;
    HnOptions opt = step_options();
    HnLoss loss;
    assert_int_equal(hypernet_forward_view(hn, a, &target, &x.batch, &opt, &loss), -1);
    assert_non_null(strstr(hd_last_error(), "not finite"));
    assert_int_equal(hypernet_backward_view(hn, a, &target), -1);
    /* the activations belong to the staged backend: the plain CPU target is refused */
    LlamaView cpu = llama_view_cpu(&m);
    x.src_ys[3] = 0.0f;
    assert_int_equal(hypernet_forward_view(hn, a, &cpu, &x.batch, &opt, &loss), -1);
    assert_non_null(strstr(hd_last_error(), "cpu-staged"));
    hn_acts_free(a);
    hypernet_free(hn);
    batch_free(&x);
    llama_model_free(&m);
}

/* hn_acts_bytes, the planner of a device's memory, against what a step
 * on the staged backend allocates through the table: never more than
 * planned, and short of it only by the logits of the base tokens that
 * are not label positions (the plan holds every one). */
static size_t g_allocated;

static void *counting_alloc(size_t bytes)
{
    g_allocated += bytes;
    return compute_cpu_staged()->alloc(bytes);
}

static void memory_plan_matches_the_allocations(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    Compute counting = *compute_cpu_staged();
    counting.alloc = counting_alloc;
    LlamaView target = llama_view_cpu(&m);
    target.K = &counting;
    for (int recompute = 0; recompute < 2; recompute++) {
        g_allocated = 0;
        HnActs *a = hn_acts_create_on(&counting, hn, x.b, x.E, x.B, x.S, recompute);
        assert_non_null(a);
        HnOptions opt = step_options();
        HnLoss loss;
        if (hypernet_forward_view(hn, a, &target, &x.batch, &opt, &loss) ||
            hypernet_backward_view(hn, a, &target))
            fail_msg("%s", hd_last_error());
        const size_t plan = hn_acts_bytes(hn, x.b, x.E, x.B, x.S, recompute, 1);
        const size_t unused_logits = (size_t)(x.b * x.B - loss.n_label_tokens) *
                                     (m.cfg.vocab_size + m.cfg.hidden_size) * sizeof(float);
        printf("recompute %d: allocated %zu, planned %zu (%zu of logits unused)\n", recompute,
               g_allocated, plan, unused_logits);
        assert_int_equal(g_allocated + unused_logits, plan);
        hn_acts_free(a);
    }
    hypernet_free(hn);
    batch_free(&x);
    llama_model_free(&m);
}

/* ---- the GPU ---- */

static int g_gpu;

static double rel_rms(const float *got, const float *want, size_t n, double *want_rms)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    *want_rms = sqrt(den / (double)n);
    return den > 0.0 ? sqrt(num / den) : sqrt(num / (double)n);
}

static void cuda_step_matches_the_cpu(void **state)
{
    (void)state;
    if (!g_gpu) skip();
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    llama_round_matrices_to_bf16(&m, 1); /* as the GPU holds them */
    /* the batch's states were computed before the rounding: both sides read the same ones */
    HnOptions opt = step_options();
    /* as hd-train uploads it: layers [L, N), final norm and head */
    LlamaCuda *g = llama_cuda_create_from(&m, hn->cfg.intervention_layer);
    if (!g) fail_msg("%s", hd_last_error());
    LlamaView cpu_target = llama_view_cpu(&m), gpu_target = llama_cuda_view(g);
    StepResult want;
    run_step(hn, compute_cpu(), &cpu_target, &x, opt, &want);
    /* fp32 GEMMs, then TF32 ones (hd-train --tf32: 2^-11 input rounding,
     * inside the bf16 target's error budget) */
    for (int tf32 = 0; tf32 < 2; tf32++) {
        if (compute_cuda_tf32(tf32)) fail_msg("%s", hd_last_error());
        StepResult got;
        run_step(hn, gpu_target.K, &gpu_target, &x, opt, &got);
        printf("%s: loss cpu %.7g gpu %.7g; grad norm cpu %.7g gpu %.7g\n",
               tf32 ? "tf32" : "fp32", want.loss, got.loss, want.norm, got.norm);
        assert_true(fabs(got.loss - want.loss) <= 1e-2 * fabs(want.loss));
        for (int i = 0; i < hypernet_param_count(hn); i++) {
            const HnParam *p = hypernet_param(hn, i);
            if (p->group == HN_GROUP_BUFFER) continue;
            double scale;
            double e = rel_rms(got.grads + p->offset, want.grads + p->offset, p->numel, &scale);
            if (e > 5e-2 || (scale == 0.0 && e > 1e-6))
                fail_msg("gradient of %s: rel rms %.3g (cpu rms %.3g)", p->name, e, scale);
        }
        double worst = 0.0, worst_tiny = 0.0;
        size_t n_tiny = 0, n_checked = 0;
        for (int i = 0; i < hypernet_param_count(hn); i++) {
            const HnParam *p = hypernet_param(hn, i);
            double scale;
            (void)rel_rms(want.grads + p->offset, want.grads + p->offset, p->numel, &scale);
            for (size_t j = p->offset; j < p->offset + p->numel; j++) {
                double d = fabs((double)got.params[j] - want.params[j]);
                n_checked++;
                if (d <= 1e-5) {
                    worst = fmax(worst, d);
                    continue;
                }
                if (p->group == HN_GROUP_BUFFER || fabs(want.grads[j]) > 0.25 * scale)
                    fail_msg("after AdamW, %s[%zu]: gpu %.7g cpu %.7g (gradient gpu %.3g cpu %.3g, its rms %.3g)",
                             p->name, j - p->offset, got.params[j], want.params[j], got.grads[j],
                             want.grads[j], scale);
                worst_tiny = fmax(worst_tiny, d);
                n_tiny++;
            }
        }
        printf("after AdamW: max |gpu - cpu| %.3g; %zu of %zu parameters with a tiny gradient apart by up to %.3g\n",
               worst, n_tiny, n_checked, worst_tiny);
        assert_true(worst_tiny <= 2 * 1e-3 * (1 + 1e-3));
        assert_true(n_tiny <= n_checked / 50);
        result_free(&got);
    }
    compute_cuda_tf32(0);
    result_free(&want);
    llama_cuda_free(g);
    hypernet_free(hn);
    batch_free(&x);
    llama_model_free(&m);
}

/* Without a GPU (or without CUDA in the build) asking for one is one clear
 * error, never a crash. */
static void no_gpu_is_a_clear_error(void **state)
{
    (void)state;
    if (g_gpu) skip();
    assert_null(compute_cuda());
    assert_true(strlen(hd_last_error()) > 10);
    assert_null(compute_by_name("tpu"));
    assert_non_null(strstr(hd_last_error(), "tpu"));
}

int main(void)
{
#ifdef HD_CUDA
    g_gpu = hd_cuda_available();
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(staged_reflect_is_the_cpu_bit_for_bit),
        cmocka_unit_test(staged_maskselect_is_the_cpu_bit_for_bit),
        cmocka_unit_test(staged_ablated_source_is_the_cpu_bit_for_bit),
        cmocka_unit_test(staged_das_is_the_cpu_bit_for_bit),
        cmocka_unit_test(staged_bad_input_fails_clearly),
        cmocka_unit_test(memory_plan_matches_the_allocations),
        cmocka_unit_test(cuda_step_matches_the_cpu),
        cmocka_unit_test(no_gpu_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
