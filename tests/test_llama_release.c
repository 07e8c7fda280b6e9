/* llama_model_release_layers: a tool that runs only layers [L, N) (hd-train)
 * gives the memory of layers [0, L) back.  What is checked: the kept layers
 * compute bit for bit what they computed before the release; every way of
 * running a released layer (forward from it, backward through it,
 * generation) fails with a message naming it; and the released weights'
 * pages really leave memory (mincore), which is the point of it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "model/llama_forward.h"
#include "model/llama_generate.h"
#include "llama_test_models.h"

static void kept_layers_compute_the_same(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_model(&m);
    make_batch();
    const LlamaConfig *c = &m.cfg;
    const int L = c->n_layers, cut = 1;
    const size_t bytes = (size_t)B * T * c->hidden_size * sizeof(float);
    LlamaActivations *before = llama_acts_create(c, B, T, L), *after = llama_acts_create(c, B, T, L);
    assert_int_equal(llama_forward(&m, before, batch_ids, batch_mask, NULL, B, T), 0);

    llama_model_release_layers(&m, 0, cut);
    assert_int_equal(llama_forward_range(&m, after, NULL, llama_residual(before, cut), batch_mask,
                                         NULL, B, T, cut, L),
                     0);
    for (int l = cut; l <= L; l++)
        assert_memory_equal(llama_hidden_state(after, l), llama_hidden_state(before, l), bytes);
    assert_int_equal(llama_model_check_layers(&m, cut, L), 0);

    /* running a released layer is an error naming it */
    assert_int_equal(llama_forward(&m, after, batch_ids, batch_mask, NULL, B, T), -1);
    assert_non_null(strstr(hd_last_error(), "layer 0 were released"));
    assert_int_equal(llama_forward_range(&m, after, NULL, llama_residual(before, cut), batch_mask,
                                         NULL, B, T, cut, L),
                     0);
    float *d = calloc((size_t)B * T * c->hidden_size, sizeof *d);
    assert_int_equal(llama_backward_range(&m, after, d, 0, L, NULL), -1);
    assert_non_null(strstr(hd_last_error(), "were released"));
    assert_int_equal(llama_backward_range(&m, after, d, cut, L, NULL), 0);
    LlamaKVCache *kv = llama_kv_create(c, B, T, T);
    assert_non_null(kv);
    assert_int_equal(llama_kv_step(&m, kv, batch_ids, batch_mask, B, T), -1);
    assert_non_null(strstr(hd_last_error(), "were released"));
    llama_kv_free(kv);
    free(d);
    llama_acts_free(before);
    llama_acts_free(after);
    llama_model_free(&m);
}

/* An untied embedding goes too (the LM head stays); a tied one is the LM
 * head and stays.  A forward from token ids then fails, one from a
 * residual and the logits still work. */
static void untied_embedding_is_released(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_model(&m);
    make_batch();
    const LlamaConfig *c = &m.cfg;
    const int L = c->n_layers;
    assert_true(m.tok_embed != m.lm_head);
    LlamaActivations *before = llama_acts_create(c, B, T, L), *after = llama_acts_create(c, B, T, L);
    assert_int_equal(llama_forward(&m, before, batch_ids, batch_mask, NULL, B, T), 0);
    assert_int_equal(llama_model_release_embedding(&m), 1);
    assert_null(m.tok_embed);
    assert_int_equal(llama_model_release_embedding(&m), 0); /* once */
    assert_int_equal(llama_forward(&m, after, batch_ids, batch_mask, NULL, B, T), -1);
    assert_non_null(strstr(hd_last_error(), "token embedding was released"));
    assert_int_equal(llama_forward_range(&m, after, NULL, llama_residual(before, 1), batch_mask,
                                         NULL, B, T, 1, L),
                     0);
    const size_t bytes = (size_t)B * T * c->hidden_size * sizeof(float);
    assert_memory_equal(llama_hidden_state(after, L), llama_hidden_state(before, L), bytes);
    int rows[1] = {T - 1};
    assert_int_equal(llama_forward_logits(&m, after, rows, 1), 0);
    llama_acts_free(before);
    llama_acts_free(after);
    llama_model_free(&m);

    LlamaConfig tied = tiny_config();
    tied.tie_word_embeddings = 1;
    assert_int_equal(llama_model_alloc(&m, &tied), 0);
    assert_int_equal(llama_model_release_embedding(&m), 0);
    assert_non_null(m.tok_embed);
    llama_model_free(&m);
}

/* Resident pages of [p, p + bytes) (whole pages inside it). */
static size_t resident_pages(const void *p, size_t bytes)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + bytes) & ~(page - 1);
    size_t n = (hi - lo) / page, count = 0;
    unsigned char *vec = malloc(n ? n : 1);
    assert_int_equal(mincore((void *)lo, hi - lo, vec), 0);
    for (size_t i = 0; i < n; i++) count += vec[i] & 1;
    free(vec);
    return count;
}

static void released_pages_leave_memory(void **state)
{
    (void)state;
    LlamaConfig c = tiny_config();
    c.hidden_size = 256, c.intermediate_size = 1024, c.n_layers = 4;  /* 4 MiB a layer */
    c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 64;
    LlamaModel m;
    assert_int_equal(llama_model_alloc(&m, &c), 0);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 1.0f; /* all resident */
    const float *lo = m.layers[0].attn_norm, *hi = m.layers[2].attn_norm;
    const size_t bytes = (size_t)(hi - lo) * sizeof(float);
    size_t before = resident_pages(lo, bytes);
    assert_true(before > 0);
    llama_model_release_layers(&m, 0, 2);
    size_t after = resident_pages(lo, bytes);
    print_message("layers [0, 2): %zu resident pages before the release, %zu after\n", before, after);
    assert_int_equal(after, 0);
    assert_null(m.layers[1].w_down);
    /* the kept layers are untouched */
    assert_true(m.layers[2].attn_norm[0] == 1.0f && m.layers[3].w_down[0] == 1.0f);
    assert_true(m.tok_embed[0] == 1.0f && m.final_norm[0] == 1.0f);
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kept_layers_compute_the_same),
        cmocka_unit_test(untied_embedding_is_released),
        cmocka_unit_test(released_pages_leave_memory),
    };
    return cmocka_run_group_tests_name("llama_release", tests, NULL, NULL);
}
