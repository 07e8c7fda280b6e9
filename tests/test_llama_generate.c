/* common/llama_generate: greedy generation with a KV cache over
 * left-padded prompt batches.
 *  - On a tiny random model: the logits of every cached step equal those of
 *    a full forward over the grown batch, fed the same tokens; stop tokens
 *    end one row without disturbing the others; a full cache is an error.
 *  - tests/fixtures/tiny-llama-f32: the greedy continuations of three
 *    prompts, generated in ONE left-padded batch, equal transformers'
 *    (which ran each prompt alone).
 *  - SmolLM2-135M (skipped when the GGUF or fixture is absent): the first
 *    greedy token of each prompt of tests/fixtures/smollm2 in one batch,
 *    and 8 cached steps against 8 full forwards. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "model/llama_forward.h"
#include "model/llama_generate.h"
#include "model/llama_load.h"
#include "formats/safetensors.h"

#include "llama_test_models.h"

/* The KV-cache path against full forwards of the growing batch, fed the same tokens. */
static void kv_cache_equals_full_forward(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_model(&m);
    make_batch();
    const LlamaConfig *c = &m.cfg;
    const int V = c->vocab_size, steps = 4, Tmax = T + steps;
    LlamaKVCache *kv = llama_kv_create(c, B, T, Tmax);
    LlamaActivations *a = llama_acts_create(c, B, Tmax, c->n_layers);
    int ids[B * (T + 4)], mask[B * (T + 4)];
    assert_int_equal(llama_kv_step(&m, kv, batch_ids, batch_mask, B, T), 0);
    double worst = 0;
    int next[B];
    for (int s = 0; s <= steps; s++) {
        int len = T + s;
        for (int r = 0; r < B; r++)
            for (int t = 0; t < len; t++) {
                ids[r * len + t] = t < T ? batch_ids[r * T + t] : 0;
                mask[r * len + t] = t < T ? batch_mask[r * T + t] : 1;
            }
        /* generated tokens so far are stored in ids at positions >= T */
        static int gen[B][8];
        for (int r = 0; r < B; r++)
            for (int t = T; t < len; t++) ids[r * len + t] = gen[r][t - T];
        assert_int_equal(llama_forward(&m, a, ids, mask, NULL, B, len), 0);
        int rows[B];
        for (int r = 0; r < B; r++) rows[r] = r * len + len - 1;
        assert_int_equal(llama_forward_logits(&m, a, rows, B), 0);
        for (int i = 0; i < B * V; i++) {
            double e = fabs(kv->logits[i] - a->logits[i]) / (1.0 + fabs(a->logits[i]));
            if (e > worst) worst = e;
        }
        if (s == steps) break;
        for (int r = 0; r < B; r++) gen[r][s] = next[r] = llama_argmax(a->logits + r * V, V);
        assert_int_equal(llama_kv_step(&m, kv, next, NULL, B, 1), 0);
    }
    expect_le("kv-cache logits vs full forward, 4 steps", worst, 1e-5);
    /* a full cache is an error, not an overflow */
    assert_int_equal(llama_kv_step(&m, kv, next, NULL, B, 1), -1);
    assert_non_null(strstr(hd_last_error(), "full"));

    llama_kv_free(kv);
    llama_acts_free(a);
    llama_model_free(&m);
}


/* A row that emits a stop token keeps it and gets -1 afterwards; the others go on. */
static void greedy_stops_per_row(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_model(&m);
    make_batch();
    int out[B * 4], out2[B * 4];
    assert_int_equal(llama_generate_greedy(&m, batch_ids, batch_mask, B, T, 4, NULL, 0, out), 0);
    int stop = out[0 * 4 + 1];
    assert_int_equal(llama_generate_greedy(&m, batch_ids, batch_mask, B, T, 4, &stop, 1, out2), 0);
    for (int r = 0; r < B; r++) {
        int stopped = 0;
        for (int s = 0; s < 4; s++) {
            if (stopped) assert_int_equal(out2[r * 4 + s], -1);
            else assert_int_equal(out2[r * 4 + s], out[r * 4 + s]);
            if (out2[r * 4 + s] == stop) stopped = 1;
        }
    }
    llama_model_free(&m);
}

static void tiny_llama_greedy_matches_transformers(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(TINY_DIR "/expected.safetensors", &sb) != 0) skip();
    LlamaModel m;
    if (llama_load(&m, TINY_DIR) != 0) fail_msg("%s", hd_last_error());
    StFile ex;
    if (st_open(&ex, TINY_DIR "/expected.safetensors") != 0) fail_msg("%s", hd_last_error());
    const StTensor *t = st_find(&ex, "input_ids");
    assert_non_null(t);
    const int b = (int)t->shape[0], T = (int)t->shape[1];
    int *ids = st_int(&ex, "input_ids", NULL), *mask = st_int(&ex, "attention_mask", NULL);
    size_t ng;
    int *greedy = st_int(&ex, "greedy_ids", &ng);
    int steps = (int)(ng / b), *out = malloc(ng * sizeof *out);
    /* all prompts in one left-padded batch; the reference ran each alone */
    assert_int_equal(llama_generate_greedy(&m, ids, mask, b, T, steps, NULL, 0, out), 0);
    for (int i = 0; i < (int)ng; i++) assert_int_equal(out[i], greedy[i]);
    print_message("# tiny-llama greedy: %d x %d tokens identical to HF\n", b, steps);
    free(ids), free(mask), free(greedy), free(out);
    st_close(&ex);
    llama_model_free(&m);
}

#define SMOL_GGUF "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define SMOL_REF "tests/fixtures/smollm2/reference.safetensors"

static void smollm2_greedy(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(SMOL_GGUF, &sb) != 0 || stat(SMOL_REF, &sb) != 0) skip();
    LlamaModel m;
    if (llama_load(&m, SMOL_GGUF) != 0) fail_msg("%s", hd_last_error());
    StFile ref;
    if (st_open(&ref, SMOL_REF) != 0) fail_msg("%s", hd_last_error());
    const int V = m.cfg.vocab_size, steps = 8;
    enum { P = 4 };
    int *pids[P], len[P], Tmax = 0;
    char name[64];
    for (int k = 0; k < P; k++) {
        size_t n;
        snprintf(name, sizeof name, "p%d.input_ids", k);
        pids[k] = st_int(&ref, name, &n);
        len[k] = (int)n;
        if (len[k] > Tmax) Tmax = len[k];
    }
    int *ids = calloc(P * Tmax, sizeof *ids), *mask = calloc(P * Tmax, sizeof *mask);
    for (int k = 0; k < P; k++)
        for (int t = 0; t < len[k]; t++) {
            ids[k * Tmax + Tmax - len[k] + t] = pids[k][t];
            mask[k * Tmax + Tmax - len[k] + t] = 1;
        }
    int out[P * 8];
    assert_int_equal(llama_generate_greedy(&m, ids, mask, P, Tmax, steps, NULL, 0, out), 0);
    for (int k = 0; k < P; k++) {
        snprintf(name, sizeof name, "p%d.top_ids", k);
        int *top = st_int(&ref, name, NULL);
        assert_int_equal(out[k * steps], top[0]);
        free(top);
    }
    /* prompt 0 alone: 8 cached steps against 8 full forwards of the grown prompt */
    const int n0 = len[0];
    int *seq = malloc((n0 + steps) * sizeof *seq);
    memcpy(seq, pids[0], n0 * sizeof *seq);
    LlamaActivations *a = llama_acts_create(&m.cfg, 1, n0 + steps, m.cfg.n_layers);
    for (int s = 0; s < steps; s++) {
        int n = n0 + s, row = n - 1;
        assert_int_equal(llama_forward(&m, a, seq, NULL, NULL, 1, n), 0);
        assert_int_equal(llama_forward_logits(&m, a, &row, 1), 0);
        seq[n] = llama_argmax(a->logits, V);
        assert_int_equal(out[s], seq[n]);
    }
    print_message("# smollm2 greedy after \"The capital of France is\": %d %d %d %d %d %d %d %d "
                  "(cache == full forwards; batch of 4)\n",
                  out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]);
    free(seq), free(ids), free(mask);
    for (int k = 0; k < P; k++) free(pids[k]);
    llama_acts_free(a);
    st_close(&ref);
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_cache_equals_full_forward),
        cmocka_unit_test(greedy_stops_per_row),
        cmocka_unit_test(tiny_llama_greedy_matches_transformers),
        cmocka_unit_test(smollm2_greedy),
    };
    return cmocka_run_group_tests_name("llama_generate", tests, NULL, NULL);
}
