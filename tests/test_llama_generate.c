/* common/llama_generate: greedy generation with a KV cache over
 * left-padded prompt batches.
 *  - On a tiny random model: the logits of every cached step equal those of
 *    a full forward over the grown batch, fed the same tokens; stop tokens
 *    end one row without disturbing the others; a full cache is an error.
 *  - tests/fixtures/tiny-llama-f32: the greedy continuations of three
 *    prompts, generated in ONE left-padded batch, equal transformers'
 *    (which ran each prompt alone).
 *  - A prefix run once for one row, saved and loaded into three rows, then three
 *    right-padded continuations of different lengths: the logits at every
 *    continuation token equal each row's own full forward; prefix_check_run
 *    (sorted, grouped, prefixes of different lengths in one left-padded
 *    batch, saved, loaded) gives the answer check of full forwards.
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
#include "acts/prefix_check.h"
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

/* Three sequences sharing their first P tokens: prefix once, saved and
 * loaded into three rows behind a masked time step, then the right-padded
 * ends; logits at every end token against full forwards. */
enum { FP = 4, FR = 3, FMAX = 3 };
static const int fork_end_len[FR] = {3, 1, 2};
static int fork_token(int r, int t) { return t == 0 ? 1 : t < FP ? 3 + t * 5 : 5 + (r * 11 + t * 3) % 30; }

static void kv_reload_equals_full_forward(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_model(&m);
    const int V = m.cfg.vocab_size, L = FP + FMAX;
    LlamaKVCache *kv = llama_kv_create(&m.cfg, FR, L, L + 1);
    LlamaActivations *a = llama_acts_create(&m.cfg, 1, L, m.cfg.n_layers);
    int prefix[FP], ends[FR * FMAX], mask[FR * FMAX], rows[FR * FMAX], n_rows = 0;
    for (int t = 0; t < FP; t++) prefix[t] = fork_token(0, t);
    const size_t per_step = (size_t)m.cfg.n_layers * m.cfg.n_kv_heads * m.cfg.head_dim;
    float *pk = malloc(FP * per_step * sizeof *pk), *pv = malloc(FP * per_step * sizeof *pv);
    assert_int_equal(llama_kv_step(&m, kv, prefix, NULL, 1, FP), 0);
    assert_int_equal(llama_kv_save_row(kv, 1, FP, pk, pv), -1);      /* no row 1 */
    assert_int_equal(llama_kv_save_row(kv, 0, FP + 1, pk, pv), -1);  /* more than filled */
    assert_int_equal(llama_kv_save_row(kv, 0, FP, pk, pv), 0);
    assert_int_equal(llama_kv_start_rows(kv, FR + 1, FP), -1);       /* beyond the capacity */
    /* one time step more than the prefix: row 1 sits behind a masked step */
    assert_int_equal(llama_kv_start_rows(kv, FR, FP + 1), 0);
    for (int r = 0; r < FR; r++) assert_int_equal(llama_kv_load_row(kv, r, FP, pk, pv), 0);
    free(pk);
    free(pv);
    for (int r = 0; r < FR; r++)
        for (int t = 0; t < FMAX; t++) {
            int real = t < fork_end_len[r];
            ends[r * FMAX + t] = real ? fork_token(r, FP + t) : 0;
            mask[r * FMAX + t] = real;
            if (real) rows[n_rows++] = r * FMAX + t;
        }
    if (llama_kv_step(&m, kv, ends, mask, FR, FMAX) != 0) fail_msg("%s", hd_last_error());
    float *got = malloc((size_t)n_rows * V * sizeof *got);
    assert_int_equal(llama_kv_logits_rows(&m, kv, rows, n_rows, got), 0);
    double worst = 0;
    int k = 0;
    for (int r = 0; r < FR; r++) {
        int n = FP + fork_end_len[r], ids[FP + FMAX], full_rows[FMAX];
        for (int t = 0; t < n; t++) ids[t] = fork_token(r, t);
        assert_int_equal(llama_forward(&m, a, ids, NULL, NULL, 1, n), 0);
        for (int t = 0; t < fork_end_len[r]; t++) full_rows[t] = FP + t;
        assert_int_equal(llama_forward_logits(&m, a, full_rows, fork_end_len[r]), 0);
        for (int i = 0; i < fork_end_len[r] * V; i++) {
            double e = fabs(got[(size_t)k * V + i] - a->logits[i]) / (1.0 + fabs(a->logits[i]));
            if (e > worst) worst = e;
        }
        k += fork_end_len[r];
    }
    /* fp32 sums grouped differently (one-row prefix, batched ends) */
    expect_le("reloaded prefix + padded ends vs full forwards", worst, 1e-5);
    free(got);
    llama_kv_free(kv);
    llama_acts_free(a);
    llama_model_free(&m);
}

/* prefix_check_run against the rule applied to full forwards: sequences
 * from two "templates", answers that are (or are not) the model's argmax. */
static void prefix_check_equals_full_forward_rule(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_model(&m);
    const int V = m.cfg.vocab_size, n = 7;
    LlamaActivations *a = llama_acts_create(&m.cfg, 1, 16, m.cfg.n_layers);
    TokenSeq seqs[7];
    int32_t ids[7][16];
    int want[7];
    for (int i = 0; i < n; i++) {
        int tmpl = i % 2, entity_len = 1 + i % 3, tail = 2, pre = 5 - 2 * tmpl;
        int prompt = 1 + pre + entity_len + tail, t = 0;
        ids[i][t++] = 1;
        for (int j = 0; j < pre; j++) ids[i][t++] = 3 + tmpl * 10 + j;           /* the template's prefix */
        for (int j = 0; j < entity_len; j++) ids[i][t++] = 20 + (i * 7 + j) % 10; /* entity */
        for (int j = 0; j < tail; j++) ids[i][t++] = 31 + tmpl * 3 + j;        /* the template's tail */
        /* answer: two tokens, each the model's argmax after the prompt so
         * far, except that every third sequence gets a wrong second token */
        for (int j = 0; j < 2; j++) {
            int ids_int[16];
            for (int q = 0; q < t; q++) ids_int[q] = ids[i][q];
            int row = t - 1;
            if (llama_forward(&m, a, ids_int, NULL, NULL, 1, t) != 0) fail_msg("%s", hd_last_error());
            assert_int_equal(llama_forward_logits(&m, a, &row, 1), 0);
            int best = llama_argmax(a->logits, V);
            ids[i][t++] = (j == 1 && i % 3 == 1) ? (best + 1) % V : best;
        }
        seqs[i] = (TokenSeq){ids[i], t, prompt, -1};
        want[i] = i % 3 != 1;
    }
    const TokenSeq *ptrs[7];
    for (int i = 0; i < n; i++) ptrs[i] = &seqs[i];
    /* batch 2: chunks of 4 rows, so a template is cut into parts; batch 8:
     * both templates' prefixes (6 and 4 tokens) in one left-padded batch */
    for (int batch = 2; batch <= 8; batch += 6) {
        int got[7];
        PrefixCheckStats st = {0};
        assert_int_equal(prefix_check_run(&m, ptrs, n, batch, got, &st), 0);
        for (int i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
        assert_true(st.groups >= 2);          /* two templates */
        assert_true(st.computed < st.tokens); /* each shared prefix ran once */
    }
    llama_acts_free(a);
    llama_model_free(&m);
}

/* The planned costs, counted by hand.  Eight prompts of one template (BOS,
 * 9 template tokens, a 1-token entity, a 2-token tail, a 1-token answer;
 * 14 tokens): one part of prefix 10 and rests of 4, so 10 + 8 * 4 = 42
 * positions, against two whole batches of 4 * 14.  Four prompts that share
 * only BOS (lengths 5..8): each its own part, prefixes up to 6 in one
 * left-padded batch (4 * 6) and rests of 2 (4 * 2), as many as the whole
 * sequences in one batch padded to 8: sharing does not pay. */
static void prefix_check_costs_by_hand(void **state)
{
    (void)state;
    int32_t ids[8][14];
    TokenSeq seqs[8];
    const TokenSeq *ptrs[8];
    for (int i = 0; i < 8; i++) {
        int t = 0;
        ids[i][t++] = 1;
        for (int j = 0; j < 9; j++) ids[i][t++] = 3 + j;
        ids[i][t++] = 20 + i;
        ids[i][t++] = 40;
        ids[i][t++] = 41;
        ids[i][t++] = 50 + i;
        seqs[i] = (TokenSeq){ids[i], t, t - 1, -1};
        ptrs[i] = &seqs[i];
    }
    long long shared, whole;
    prefix_check_costs(ptrs, 8, 4, &shared, &whole);
    assert_int_equal(shared, 42);
    assert_int_equal(whole, 112);
    for (int i = 0; i < 4; i++) {
        int n = 5 + i;
        ids[i][0] = 1;
        for (int t = 1; t < n; t++) ids[i][t] = 10 * (i + 1) + t;
        seqs[i] = (TokenSeq){ids[i], n, n - 1, -1};
    }
    prefix_check_costs(ptrs, 4, 4, &shared, &whole);
    assert_int_equal(shared, 32);
    assert_int_equal(whole, 32);
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
        cmocka_unit_test(kv_reload_equals_full_forward),
        cmocka_unit_test(prefix_check_equals_full_forward_rule),
        cmocka_unit_test(prefix_check_costs_by_hand),
        cmocka_unit_test(greedy_stops_per_row),
        cmocka_unit_test(tiny_llama_greedy_matches_transformers),
        cmocka_unit_test(smollm2_greedy),
    };
    return cmocka_run_group_tests_name("llama_generate", tests, NULL, NULL);
}
