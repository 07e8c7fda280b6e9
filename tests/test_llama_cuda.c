/* The target's forward on the GPU (common/llama_cuda, cache-acts --device
 * cuda) against the CPU forward, on the tiny random model of
 * llama_test_models.h with its left-padded batch.
 *
 * Both sides use the same weights: the model's matrices are rounded to bf16
 * first (the GPU keeps them so), so what differs is only the GPU's rounding
 * of each projection's input to bf16 (2^-9 relative per element, PyTorch's
 * bf16 arithmetic) and fp32 summation order.  Tolerance: rms(gpu - cpu) /
 * rms(cpu) <= 2e-2 for every hidden state and the answer rows' logits over
 * the real (unpadded) tokens: seven projections per layer, three layers,
 * each adding ~2^-9 (2e-3) of relative error, with room for growth through
 * the norms.
 *
 * Without a GPU the comparisons report themselves skipped; what runs
 * everywhere: creating the GPU model fails with one clear message (no
 * device, or a build without CUDA) instead of crashing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "bf16_weights.h"
#include "float16.h"
#include "model/llama_cuda.h"
#include "model/llama_forward.h"
#include "llama_test_models.h"
#ifdef HD_CUDA
#include "cuda/cuda_common.h"
#endif

#define TOL 2e-2

static int g_gpu;

/* The tiny model with every matrix rounded to bf16 (norms, embedding and
 * head stay fp32: the logits here come from the host's head). */
static void bf16_tiny_model(LlamaModel *m)
{
    tiny_model(m);
    llama_round_matrices_to_bf16(m, 0);
}

/* rms(got - want) / rms(want) over the rows with mask 1. */
static double rel_rms(const float *got, const float *want, const int *mask, int N, int width)
{
    double num = 0, den = 0;
    for (int r = 0; r < N; r++) {
        if (mask && !mask[r]) continue;
        for (int j = 0; j < width; j++) {
            double e = (double)got[(size_t)r * width + j] - want[(size_t)r * width + j];
            num += e * e;
            den += (double)want[(size_t)r * width + j] * want[(size_t)r * width + j];
        }
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void creating_without_a_gpu_fails_cleanly(void **state)
{
    (void)state;
    if (g_gpu) skip(); /* the comparisons below cover a machine with one */
    LlamaModel m;
    tiny_model(&m);
    LlamaCuda *g = llama_cuda_create(&m);
    assert_null(g);
    print_message("# %s\n", hd_last_error());
    assert_true(strstr(hd_last_error(), "CUDA") || strstr(hd_last_error(), "cuda"));
    LlamaActivations *a = llama_acts_create(&m.cfg, B, T, m.cfg.n_layers);
    make_batch();
    assert_int_equal(llama_cuda_forward(NULL, a, batch_ids, batch_mask, B, T), -1);
    llama_acts_free(a);
    llama_cuda_free(NULL);
    llama_model_free(&m);
}

static void gpu_forward_matches_cpu(void **state)
{
    (void)state;
    if (!g_gpu) skip();
    LlamaModel m;
    bf16_tiny_model(&m);
    make_batch();
    const LlamaConfig *c = &m.cfg;
    const int L = c->n_layers, d = c->hidden_size, N = B * T;
    LlamaActivations *cpu = llama_acts_create(c, B, T, L), *gpu = llama_acts_create(c, B, T, L);
    LlamaCuda *g = llama_cuda_create(&m);
    if (!g) fail_msg("llama_cuda_create: %s", hd_last_error());
    print_message("# device: %s\n", llama_cuda_device(g));
    assert_int_equal(llama_forward(&m, cpu, batch_ids, batch_mask, NULL, B, T), 0);
    if (llama_cuda_forward(g, gpu, batch_ids, batch_mask, B, T))
        fail_msg("llama_cuda_forward: %s", hd_last_error());
    assert_memory_equal(gpu->pos, cpu->pos, (size_t)N * sizeof(int));
    double worst = 0;
    for (int l = 0; l <= L; l++) {
        double e = rel_rms(llama_hidden_state(gpu, l), llama_hidden_state(cpu, l), batch_mask, N, d);
        print_message("# hidden state %d: rel rms %.3g\n", l, e);
        worst = fmax(worst, e);
    }
    assert_true(worst <= TOL);
    /* the answer check's logits, on the host from the GPU's final norm */
    int rows[B], n = 0;
    for (int r = 0; r < B; r++) rows[n++] = r * T + T - 1;
    assert_int_equal(llama_forward_logits(&m, cpu, rows, n), 0);
    float *want = malloc((size_t)n * c->vocab_size * sizeof *want);
    memcpy(want, cpu->logits, (size_t)n * c->vocab_size * sizeof *want);
    assert_int_equal(llama_forward_logits(&m, gpu, rows, n), 0);
    double e = rel_rms(gpu->logits, want, NULL, n, c->vocab_size);
    print_message("# logits of the last tokens: rel rms %.3g\n", e);
    assert_true(e <= TOL);
    free(want);
    llama_cuda_free(g);
    llama_acts_free(cpu);
    llama_acts_free(gpu);
    llama_model_free(&m);
}

/* A second, longer batch on the same GPU model grows its buffers; a batch
 * beyond the host activations' capacity and a bad token id are refused. */
static void gpu_forward_grows_and_checks_input(void **state)
{
    (void)state;
    if (!g_gpu) skip();
    LlamaModel m;
    bf16_tiny_model(&m);
    const LlamaConfig *c = &m.cfg;
    const int L = c->n_layers, d = c->hidden_size;
    LlamaCuda *g = llama_cuda_create(&m);
    if (!g) fail_msg("llama_cuda_create: %s", hd_last_error());
    enum { B2 = 2, T2 = 11 };
    int ids[B2 * T2], mask[B2 * T2];
    for (int i = 0; i < B2 * T2; i++) ids[i] = 3 + (i * 7) % 31, mask[i] = 1;
    LlamaActivations *small = llama_acts_create(c, 1, 4, L);
    LlamaActivations *cpu = llama_acts_create(c, B2, T2, L), *gpu = llama_acts_create(c, B2, T2, L);
    if (llama_cuda_forward(g, small, ids, mask, 1, 4)) fail_msg("%s", hd_last_error());
    assert_int_equal(llama_cuda_forward(g, small, ids, mask, B2, T2), -1);
    assert_non_null(strstr(hd_last_error(), "outside the capacity"));
    if (llama_cuda_forward(g, gpu, ids, mask, B2, T2)) fail_msg("%s", hd_last_error());
    assert_int_equal(llama_forward(&m, cpu, ids, mask, NULL, B2, T2), 0);
    double e = rel_rms(llama_hidden_state(gpu, L), llama_hidden_state(cpu, L), NULL, B2 * T2, d);
    print_message("# longer batch, final norm: rel rms %.3g\n", e);
    assert_true(e <= TOL);
    ids[5] = c->vocab_size;
    assert_int_equal(llama_cuda_forward(g, gpu, ids, mask, B2, T2), -1);
    assert_non_null(strstr(hd_last_error(), "outside the vocabulary"));
    llama_cuda_free(g);
    llama_acts_free(small);
    llama_acts_free(cpu);
    llama_acts_free(gpu);
    llama_model_free(&m);
}

int main(void)
{
#ifdef HD_CUDA
    g_gpu = hd_cuda_available();
    if (!g_gpu) printf("# no GPU, the comparisons are skipped: %s\n", hd_last_error());
#else
    printf("# built without CUDA, the comparisons are skipped\n");
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creating_without_a_gpu_fails_cleanly),
        cmocka_unit_test(gpu_forward_matches_cpu),
        cmocka_unit_test(gpu_forward_grows_and_checks_input),
    };
    int failed = cmocka_run_group_tests_name("llama_cuda", tests, NULL, NULL);
#ifdef HD_CUDA
    if (g_gpu) hd_cuda_shutdown();
#endif
    return failed;
}
