/* Greedy generation from the intervened base prompt (hn_generate.h). */
#include "hypernet/hn_generate.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "model/llama_forward.h"
#include "model/llama_generate.h"

#define IGNORE_LABEL (-100)

/* The real tokens of one row of B mask values, or -1 when the row is not
 * left padded (a pad after a real token, or a value other than 0/1). */
static int row_real_tokens(const int *mask, int B)
{
    int first = 0;
    while (first < B && mask[first] == 0) first++;
    for (int t = first; t < B; t++)
        if (mask[t] != 1) return -1;
    return B - first;
}

int hn_prompt_lengths(const HnBatch *batch, int *prompt_len)
{
    if (!batch || !prompt_len) return hd_fail("hn prompt lengths: no batch or no output");
    if (!batch->base_attn_mask || !batch->labels)
        return hd_fail("hn prompt lengths: the batch has no base attention mask or no labels");
    const int b = batch->b, B = batch->B;
    if (b < 1 || B < 1) return hd_fail("hn prompt lengths: bad batch shape %d x %d", b, B);
    for (int r = 0; r < b; r++) {
        const int *mask = batch->base_attn_mask + (size_t)r * B;
        const int *labels = batch->labels + (size_t)r * B;
        int n_real = row_real_tokens(mask, B);
        if (n_real < 0)
            return hd_fail("hn prompt lengths: base row %d is not left padded (mask 0/1, pads first)", r);
        int pad = B - n_real, len = 0;
        while (pad + len < B && labels[pad + len] == IGNORE_LABEL) len++;
        for (int t = 0; t < pad; t++)
            if (labels[t] != IGNORE_LABEL)
                return hd_fail("hn prompt lengths: base row %d has a label on a pad (position %d)", r, t);
        if (len == 0)
            return hd_fail("hn prompt lengths: base row %d starts with a label token (empty prompt)", r);
        prompt_len[r] = len;
    }
    return 0;
}

/* The batch must be the one the last forward ran: HnView does not say its
 * shape, so compare what it does keep, the label tokens and their flat
 * predicting rows r*B + t - 1 (another b or B moves them; this is what
 * keeps new_hidden [b, B, d] from being read past the forward's batch). */
static int check_last_forward(const HnView *v, const HnBatch *x)
{
    if (!v->new_hidden) return hd_fail("hn generate: no successful hypernet_forward to generate after");
    const int b = x->b, B = x->B;
    if (!x->labels) return hd_fail("hn generate: the batch has no labels");
    int n = 0;
    for (int r = 0; r < b; r++)
        for (int t = 1; t < B; t++) {
            int lab = x->labels[(size_t)r * B + t];
            if (lab == IGNORE_LABEL) continue;
            if (n >= v->n_label_tokens || v->label_rows[n] != r * B + t - 1 || v->label_ids[n] != lab)
                return hd_fail("hn generate: the batch (%d x %d) is not the one of the last "
                               "hypernet_forward (label tokens differ at row %d, position %d)",
                               b, B, r, t);
            n++;
        }
    if (n != v->n_label_tokens)
        return hd_fail("hn generate: the batch (%d x %d) is not the one of the last "
                       "hypernet_forward (%d label tokens, it had %d)",
                       b, B, n, v->n_label_tokens);
    return 0;
}

/* Lays out the step with T = max_prompt + j columns: row r is left padded
 * to max_prompt by its prompt, then the j tokens generated so far. */
static void build_step(int *ids, int *mask, const int *base_ids, const int *pad, const int *plen,
                       const int *out, int b, int B, int max_prompt, int j, int n)
{
    const int T = max_prompt + j;
    for (int r = 0; r < b; r++) {
        int *row_ids = ids + (size_t)r * T, *row_mask = mask + (size_t)r * T;
        int lead = max_prompt - plen[r];
        for (int t = 0; t < lead; t++) row_ids[t] = 0, row_mask[t] = 0;
        memcpy(row_ids + lead, base_ids + (size_t)r * B + pad[r], (size_t)plen[r] * sizeof *ids);
        for (int t = lead; t < T; t++) row_mask[t] = 1;
        for (int k = 0; k < j; k++) row_ids[max_prompt + k] = out[(size_t)r * n + k];
    }
}

/* plen and pad [b] of each row from the batch (and prompt_len, if given);
 * *max_prompt the longest prompt. */
static int resolve_prompts(const HnBatch *x, const int *prompt_len, int *plen, int *pad,
                           int *max_prompt)
{
    const int b = x->b, B = x->B;
    if (!prompt_len && hn_prompt_lengths(x, plen)) return hd_fail_prefix("hn generate: ");
    *max_prompt = 0;
    for (int r = 0; r < b; r++) {
        int n_real = row_real_tokens(x->base_attn_mask + (size_t)r * B, B);
        if (n_real < 0)
            return hd_fail("hn generate: base row %d is not left padded (mask 0/1, pads first)", r);
        if (prompt_len) plen[r] = prompt_len[r];
        if (plen[r] < 1 || plen[r] > n_real)
            return hd_fail("hn generate: prompt length %d of row %d outside [1, %d] (its real "
                           "tokens)",
                           plen[r], r, n_real);
        pad[r] = B - n_real;
        if (plen[r] > *max_prompt) *max_prompt = plen[r];
    }
    return 0;
}

/* The n steps.  No KV cache: each step reruns the whole (short) sequence. */
static int generate_steps(const LlamaModel *target, int L, const float *new_hidden,
                          const int *base_ids, const int *plen, const int *pad, int max_prompt,
                          int b, int B, int n, int *out)
{
    const LlamaConfig *tc = &target->cfg;
    const int d = tc->hidden_size, V = tc->vocab_size, Lt = tc->n_layers;
    /* the last step reads the prompt and n - 1 generated tokens */
    const int cap_T = max_prompt + n - 1;
    LlamaActivations *a = llama_acts_create(tc, b, cap_T, Lt);
    if (!a) return hd_fail_prefix("hn generate: ");
    int *ids = hd_malloc((size_t)b * cap_T * sizeof *ids);
    int *mask = hd_malloc((size_t)b * cap_T * sizeof *mask);
    int *rows = hd_malloc((size_t)b * sizeof *rows);
    int rc = 0;
    for (int j = 0; j < n && rc == 0; j++) {
        const int T = max_prompt + j;
        build_step(ids, mask, base_ids, pad, plen, out, b, B, max_prompt, j, n);
        rc = llama_forward_range(target, a, ids, NULL, mask, NULL, b, T, 0, L);
        if (rc) break;
        /* the intervened prompt states; generated positions keep theirs */
        float *resid = llama_residual(a, L);
        for (int r = 0; r < b; r++)
            memcpy(resid + ((size_t)r * T + max_prompt - plen[r]) * d,
                   new_hidden + ((size_t)r * B + pad[r]) * d, (size_t)plen[r] * d * sizeof *resid);
        for (int r = 0; r < b; r++) rows[r] = r * T + T - 1;
        rc = llama_forward_range(target, a, NULL, NULL, mask, NULL, b, T, L, Lt);
        if (rc == 0) rc = llama_forward_logits(target, a, rows, b);
        for (int r = 0; rc == 0 && r < b; r++)
            out[(size_t)r * n + j] = llama_argmax(a->logits + (size_t)r * V, V);
    }
    if (rc) hd_fail_prefix("hn generate: ");
    free(rows);
    free(mask);
    free(ids);
    llama_acts_free(a);
    return rc ? -1 : 0;
}

int hn_generate_greedy(const Hypernet *hn, const HnActs *acts, const LlamaModel *target,
                       const HnBatch *batch, const int *base_ids, const int *prompt_len, int n,
                       int *out)
{
    if (!hn || !acts || !target || !batch || !base_ids || !out)
        return hd_fail("hn generate: missing hypernetwork, activations, target, batch, base ids "
                       "or output");
    if (n < 1) return hd_fail("hn generate: %d new tokens requested (need at least 1)", n);
    const LlamaConfig *tc = &target->cfg;
    if (tc->hidden_size != hn->target.hidden_size || tc->n_layers != hn->target.n_layers ||
        tc->vocab_size != hn->target.vocab_size)
        return hd_fail("hn generate: the target (%d layers, width %d) is not the hypernetwork's "
                       "(%d layers, width %d)",
                       tc->n_layers, tc->hidden_size, hn->target.n_layers, hn->target.hidden_size);
    const int b = batch->b, B = batch->B;
    if (b < 1 || B < 1) return hd_fail("hn generate: bad batch shape %d x %d", b, B);
    if (!batch->base_attn_mask) return hd_fail("hn generate: the batch has no base attention mask");
    HnView v;
    memset(&v, 0, sizeof v);
    hypernet_view(acts, &v);
    if (check_last_forward(&v, batch)) return -1;

    int *plen = hd_malloc((size_t)b * sizeof *plen), *pad = hd_malloc((size_t)b * sizeof *pad);
    int max_prompt = 0;
    int rc = resolve_prompts(batch, prompt_len, plen, pad, &max_prompt);
    if (rc == 0)
        rc = generate_steps(target, hn->cfg.intervention_layer, v.new_hidden, base_ids, plen, pad,
                            max_prompt, b, B, n, out);
    free(plen);
    free(pad);
    return rc;
}
