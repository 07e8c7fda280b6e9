/* Greedy generation from the intervened base prompt (common/hn_generate),
 * the RAVEL rule of hyperdas(7) 9.2, on the tiny random target and the
 * hand-made batch of hypernet_test_batch.h (3 rows, prompts of 6, 3 and 4
 * real tokens behind 0, 2 and 1 pads, then 1, 2 and 2 label tokens),
 * intervening at L = 2 of 3 layers with the DAS method (groundtruth
 * positions: the entity's last token of base and source).
 *
 * - Identity intervention (source = base): the tokens are those of plain
 *   greedy generation of the unintervened target, computed independently
 *   with the KV-cached llama_generate_greedy on the re-padded prompts.
 * - A real intervention: the first generated token is the argmax of the
 *   teacher-forced logits before the first label token (hypernet_forward's
 *   own run of layers [L, Lt)), so the RAVEL rule with n = 1 and the
 *   HyperDAS rule on one token agree row by row (score_match_tokens).
 *   Then all n tokens: a batch whose label tokens ARE the generated ones,
 *   scored teacher-forced, has every label token as its argmax.
 * - A full patch (DAS with k = d: hs[L] at the entity <- the source's)
 *   changes the continuation of at least one row, so the test fails if the
 *   edited states are not used.
 * - Bad arguments: -1 and a message naming the problem. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "hypernet/hn_generate.h"
#include "hypernet/hypernet.h"
#include "model/llama_generate.h"
#include "score/score_match.h"

#include "hypernet_test_batch.h"

#define L_INTV 2
#define N_NEW 4

static void forward(Hypernet *hn, HnActs *a, const LlamaModel *m, const HnBatch *h)
{
    HnOptions opt = hn_default_options(); /* soft = the entity positions for DAS */
    HnLoss loss;
    if (hypernet_forward(hn, a, m, h, &opt, &loss)) fail_msg("forward: %s", hd_last_error());
}

/* The prompts of x re-padded on the left to the longest: ids/mask [b, P]. */
static int prompt_batch(const Batch *x, const int *plen, int **ids, int **mask)
{
    int P = 0;
    for (int r = 0; r < x->b; r++) P = plen[r] > P ? plen[r] : P;
    *ids = calloc((size_t)x->b * P, sizeof(int));
    *mask = calloc((size_t)x->b * P, sizeof(int));
    for (int r = 0; r < x->b; r++) {
        int n_real = 0;
        for (int t = 0; t < x->B; t++) n_real += x->base_attn[r * x->B + t];
        int pad = x->B - n_real, lead = P - plen[r];
        for (int i = 0; i < plen[r]; i++) {
            (*ids)[r * P + lead + i] = x->base_ids[r * x->B + pad + i];
            (*mask)[r * P + lead + i] = 1;
        }
    }
    return P;
}

/* Greedy continuation of the unintervened target (KV cache path). */
static void plain_greedy(const LlamaModel *m, const Batch *x, const int *plen, int n, int *out)
{
    int *ids, *mask;
    int P = prompt_batch(x, plen, &ids, &mask);
    if (llama_generate_greedy(m, ids, mask, x->b, P, n, NULL, 0, out))
        fail_msg("generate: %s", hd_last_error());
    free(ids);
    free(mask);
}

static void print_tokens(const char *what, const int *t, int b, int n)
{
    printf("# %s:", what);
    for (int r = 0; r < b; r++) {
        printf(" [");
        for (int j = 0; j < n; j++) printf(j ? " %d" : "%d", t[r * n + j]);
        printf("]");
    }
    printf("\n");
}

static void prompt_lengths_from_labels(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    Batch x;
    tiny_batch(&x, &m, L_INTV);
    int plen[3];
    assert_int_equal(hn_prompt_lengths(&x.batch, plen), 0);
    assert_int_equal(plen[0], 6);
    assert_int_equal(plen[1], 3);
    assert_int_equal(plen[2], 4);
    /* a right-padded row, and a row whose first real token is a label */
    x.base_attn[1 * x.B + 6] = 0;
    assert_int_equal(hn_prompt_lengths(&x.batch, plen), -1);
    assert_non_null(strstr(hd_last_error(), "row 1 is not left padded"));
    x.base_attn[1 * x.B + 6] = 1;
    x.labels[2 * x.B + 1] = x.base_ids[2 * x.B + 1];
    assert_int_equal(hn_prompt_lengths(&x.batch, plen), -1);
    assert_non_null(strstr(hd_last_error(), "row 2 starts with a label"));
    batch_free(&x);
    llama_model_free(&m);
}

static void identity_intervention_generates_like_the_plain_model(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    Hypernet *hn = das_test_hypernet(&m, L_INTV, 4);
    Batch x;
    tiny_batch(&x, &m, L_INTV);
    /* source := base (test_hypernet_das.c): new_hidden == the base's hs[L] */
    HnBatch h = x.batch;
    h.S = x.B;
    h.src_states = x.base_states;
    h.src_ys = NULL;
    h.src_intv_mask = x.base_intv;
    h.src_entity_pos = x.base_pos;
    HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.B);
    assert_non_null(a);
    forward(hn, a, &m, &h);
    int plen[3], got[3 * N_NEW], want[3 * N_NEW];
    assert_int_equal(hn_prompt_lengths(&h, plen), 0);
    if (hn_generate_greedy(hn, a, &m, &h, x.base_ids, plen, N_NEW, got))
        fail_msg("%s", hd_last_error());
    plain_greedy(&m, &x, plen, N_NEW, want);
    print_tokens("identity intervention", got, x.b, N_NEW);
    print_tokens("plain greedy (KV cache)", want, x.b, N_NEW);
    assert_memory_equal(got, want, sizeof got);
    /* prompt_len NULL: the same lengths, from the labels */
    memset(got, 0xff, sizeof got);
    assert_int_equal(hn_generate_greedy(hn, a, &m, &h, x.base_ids, NULL, N_NEW, got), 0);
    assert_memory_equal(got, want, sizeof got);
    hn_acts_free(a);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

/* x2 := x with each row's labels replaced by its n generated tokens: the
 * prompt left padded to P, then gen; labels on the generated tokens. */
static void batch_with_generated_labels(Batch *x2, const Batch *x, const LlamaModel *m,
                                        const int *plen, const int *gen, int n)
{
    int *ids, *mask;
    const int P = prompt_batch(x, plen, &ids, &mask), B2 = P + n;
    batch_alloc(x2, x->b, x->E, B2, x->S, &m->cfg);
    memcpy(x2->instr_ids, x->instr_ids, (size_t)x->b * x->E * sizeof(int));
    memcpy(x2->instr_mask, x->instr_mask, (size_t)x->b * x->E * sizeof(int));
    memcpy(x2->src_ids, x->src_ids, (size_t)x->b * x->S * sizeof(int));
    memcpy(x2->src_attn, x->src_attn, (size_t)x->b * x->S * sizeof(int));
    memcpy(x2->src_intv, x->src_intv, (size_t)x->b * x->S * sizeof(int));
    memcpy(x2->src_pos, x->src_pos, (size_t)x->b * sizeof(int));
    memcpy(x2->is_causal, x->is_causal, (size_t)x->b * sizeof(int));
    for (int r = 0; r < x->b; r++) {
        int n_real = 0;
        for (int t = 0; t < x->B; t++) n_real += x->base_attn[r * x->B + t];
        const int old_pad = x->B - n_real, lead = P - plen[r];
        for (int t = 0; t < B2; t++) {
            int *id = &x2->base_ids[r * B2 + t];
            if (t < P) {
                *id = ids[r * P + t];
                x2->base_attn[r * B2 + t] = mask[r * P + t];
                x2->labels[r * B2 + t] = -100;
            } else {
                *id = gen[r * n + t - P];
                x2->base_attn[r * B2 + t] = 1;
                x2->labels[r * B2 + t] = *id;
            }
            /* the same visible prompt prefix, shifted with the padding */
            int src_t = t - lead + old_pad;
            x2->base_intv[r * B2 + t] = t >= lead && t < P && x->base_intv[r * x->B + src_t];
        }
        x2->base_pos[r] = x->base_pos[r] - old_pad + lead;
    }
    free(ids);
    free(mask);
    batch_encode(x2, m, L_INTV);
}

static void first_token_is_the_teacher_forced_argmax(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    const int V = m.cfg.vocab_size;
    for (int k = 4; k <= 16; k += 12) { /* a rank-4 DAS and the full patch */
        Hypernet *hn = das_test_hypernet(&m, L_INTV, k);
        Batch x;
        tiny_batch(&x, &m, L_INTV);
        HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.S);
        assert_non_null(a);
        forward(hn, a, &m, &x.batch);
        int plen[3], gen[3 * N_NEW];
        assert_int_equal(hn_prompt_lengths(&x.batch, plen), 0);
        if (hn_generate_greedy(hn, a, &m, &x.batch, x.base_ids, plen, N_NEW, gen))
            fail_msg("%s", hd_last_error());
        HnView v;
        hypernet_view(a, &v);
        print_tokens(k == 16 ? "full patch" : "DAS k=4", gen, x.b, N_NEW);
        for (int r = 0; r < x.b; r++) {
            /* the first label token of row r and its predicting position */
            int first = -1, n_lab = 0;
            for (int i = 0; i < v.n_label_tokens; i++)
                if (v.label_rows[i] / x.B == r) {
                    if (first < 0) first = i;
                    n_lab++;
                }
            assert_true(first >= 0);
            int n_real = 0;
            for (int t = 0; t < x.B; t++) n_real += x.base_attn[r * x.B + t];
            assert_int_equal(v.label_rows[first] % x.B, x.B - n_real + plen[r] - 1);
            int tf = llama_argmax(v.logits + (size_t)first * V, V);
            assert_int_equal(gen[r * N_NEW], tf);
            /* both rules of hyperdas(7) 9.1 and 9.2 on one token: the same verdict */
            const int *label = v.label_ids + first;
            assert_int_equal(score_match_tokens(gen + r * N_NEW, N_NEW, label, n_lab, 1),
                             score_match_tokens(&tf, 1, label, n_lab, 1));
        }
        /* every generated token: teacher-forced on its own continuation,
         * the intervened model predicts each of them (HyperDAS rule holds) */
        Batch x2;
        batch_with_generated_labels(&x2, &x, &m, plen, gen, N_NEW);
        HnActs *a2 = hn_acts_create(hn, x2.b, x2.E, x2.B, x2.S);
        assert_non_null(a2);
        forward(hn, a2, &m, &x2.batch);
        HnView v2;
        hypernet_view(a2, &v2);
        assert_int_equal(v2.n_label_tokens, x.b * N_NEW);
        for (int i = 0; i < v2.n_label_tokens; i++)
            assert_int_equal(llama_argmax(v2.logits + (size_t)i * V, V), v2.label_ids[i]);
        /* and the generation on that batch (labels = gen) gives gen again */
        int again[3 * N_NEW];
        assert_int_equal(hn_generate_greedy(hn, a2, &m, &x2.batch, x2.base_ids, NULL, N_NEW, again), 0);
        assert_memory_equal(again, gen, sizeof gen);
        hn_acts_free(a2);
        batch_free(&x2);
        hn_acts_free(a);
        batch_free(&x);
        hypernet_free(hn);
    }
    llama_model_free(&m);
}

static void full_patch_changes_the_continuation(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    Hypernet *hn = das_test_hypernet(&m, L_INTV, m.cfg.hidden_size); /* R R^T = I: hs[L] <- ys */
    Batch x;
    tiny_batch(&x, &m, L_INTV);
    HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.S);
    assert_non_null(a);
    forward(hn, a, &m, &x.batch);
    int plen[3], got[3 * N_NEW], plain[3 * N_NEW];
    assert_int_equal(hn_prompt_lengths(&x.batch, plen), 0);
    assert_int_equal(hn_generate_greedy(hn, a, &m, &x.batch, x.base_ids, plen, N_NEW, got), 0);
    plain_greedy(&m, &x, plen, N_NEW, plain);
    print_tokens("full patch", got, x.b, N_NEW);
    print_tokens("unintervened", plain, x.b, N_NEW);
    int rows_changed = 0;
    for (int r = 0; r < x.b; r++)
        rows_changed += memcmp(got + r * N_NEW, plain + r * N_NEW, N_NEW * sizeof(int)) != 0;
    printf("# rows whose continuation the full patch changed: %d of %d\n", rows_changed, x.b);
    assert_true(rows_changed >= 1);
    hn_acts_free(a);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

static void expect_error(int rc, const char *part)
{
    assert_int_equal(rc, -1);
    if (!strstr(hd_last_error(), part)) fail_msg("message '%s' lacks '%s'", hd_last_error(), part);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    Hypernet *hn = das_test_hypernet(&m, L_INTV, 4);
    Batch x;
    tiny_batch(&x, &m, L_INTV);
    HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.S);
    assert_non_null(a);
    int plen[3] = {6, 3, 4}, out[3 * N_NEW];
    const HnBatch *h = &x.batch;
    /* before any forward */
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, plen, N_NEW, out),
                 "no successful hypernet_forward");
    forward(hn, a, &m, h);
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, plen, N_NEW, NULL), "missing");
    expect_error(hn_generate_greedy(hn, a, &m, h, NULL, plen, N_NEW, out), "missing");
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, plen, 0, out), "0 new tokens");
    int bad_len[3] = {6, 0, 4};
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, bad_len, N_NEW, out),
                 "prompt length 0 of row 1 outside [1, 5]");
    bad_len[1] = 6;
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, bad_len, N_NEW, out),
                 "prompt length 6 of row 1");
    /* another model than the hypernetwork's */
    LlamaModel other = m;
    other.cfg.n_layers = 2;
    expect_error(hn_generate_greedy(hn, a, &other, h, x.base_ids, plen, N_NEW, out),
                 "not the hypernetwork's");
    /* a batch that is not the last forward's: fewer rows, other labels */
    HnBatch h2 = x.batch;
    h2.b = 2;
    expect_error(hn_generate_greedy(hn, a, &m, &h2, x.base_ids, plen, N_NEW, out),
                 "not the one of the last hypernet_forward");
    x.labels[2 * x.B + 6] = (x.labels[2 * x.B + 6] + 1) % m.cfg.vocab_size;
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, plen, N_NEW, out),
                 "label tokens differ at row 2, position 6");
    x.labels[2 * x.B + 6] = x.base_ids[2 * x.B + 6];
    /* a prompt token outside the vocabulary */
    x.base_ids[1 * x.B + 3] = m.cfg.vocab_size;
    expect_error(hn_generate_greedy(hn, a, &m, h, x.base_ids, plen, N_NEW, out),
                 "outside the vocabulary");
    x.base_ids[1 * x.B + 3] = 3;
    /* and after all that, a good call still works */
    assert_int_equal(hn_generate_greedy(hn, a, &m, h, x.base_ids, plen, N_NEW, out), 0);
    hn_acts_free(a);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prompt_lengths_from_labels),
        cmocka_unit_test(identity_intervention_generates_like_the_plain_model),
        cmocka_unit_test(first_token_is_the_teacher_forced_argmax),
        cmocka_unit_test(full_patch_changes_the_continuation),
        cmocka_unit_test(bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
