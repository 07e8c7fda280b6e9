#include "acts/model_runner.h"
#include "base/error.h"
#include "model/llama_cuda.h"
#include "model/llama_generate.h"

#include <stdlib.h>
#include <string.h>

void model_runner_init(ModelRunner *r, const LlamaModel *m, int max_len)
{
    memset(r, 0, sizeof *r);
    r->model = m;
    r->max_len = max_len;
}

void model_runner_free(ModelRunner *r)
{
    llama_acts_free(r->acts);
    free(r->ids);
    free(r->mask);
    free(r->pad);
    memset(r, 0, sizeof *r);
}

/* Activation buffers sized for the largest batch seen so far; a batch that
 * does not fit rebuilds them (sizes settle after the first few batches). */
static int ensure(ModelRunner *r, int b, int T)
{
    if (r->acts && b <= r->cap_b && T <= r->cap_T) return 0;
    int nb = b > r->cap_b ? b : r->cap_b;
    int nT = T > r->cap_T ? T : r->cap_T;
    llama_acts_free(r->acts);
    r->acts = llama_acts_create(&r->model->cfg, nb, nT, r->model->cfg.n_layers);
    if (!r->acts) return -1;
    r->cap_b = nb;
    r->cap_T = nT;
    return 0;
}

int model_runner_forward(ModelRunner *r, const TokenSeq *const *seqs, int n)
{
    int T = 1;
    for (int i = 0; i < n; i++) {
        if (seqs[i]->n > r->max_len)
            return hd_fail("a sequence of %d tokens is longer than --max-len %d", seqs[i]->n, r->max_len);
        if (seqs[i]->n > T) T = seqs[i]->n;
    }
    if (ensure(r, n, T) < 0) return -1;
    r->b = n;
    r->T = T;
    r->ids = hd_realloc(r->ids, (size_t)n * T * sizeof *r->ids);
    r->mask = hd_realloc(r->mask, (size_t)n * T * sizeof *r->mask);
    r->pad = hd_realloc(r->pad, (size_t)n * sizeof *r->pad);
    for (int i = 0; i < n; i++) {
        int pad = T - seqs[i]->n;
        r->pad[i] = pad;
        for (int t = 0; t < T; t++) {
            r->ids[i * T + t] = t < pad ? 0 : seqs[i]->ids[t - pad];
            r->mask[i * T + t] = t >= pad;
        }
    }
    if (r->gpu) return llama_cuda_forward(r->gpu, r->acts, r->ids, r->mask, n, T);
    return llama_forward(r->model, r->acts, r->ids, r->mask, NULL, n, T);
}

int model_runner_answer_check(ModelRunner *r, const TokenSeq *const *seqs, int n, int32_t **pred,
                              int *correct)
{
    int n_rows = 0;
    for (int i = 0; i < n; i++) n_rows += seqs[i]->n - seqs[i]->prompt_len;
    int *rows = hd_malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof *rows);
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int t = seqs[i]->prompt_len; t < seqs[i]->n; t++) rows[k++] = model_runner_row(r, i, t - 1);
    if (n_rows > 0 && llama_forward_logits(r->model, r->acts, rows, n_rows) < 0) {
        free(rows);
        return -1;
    }
    int V = r->model->cfg.vocab_size;
    k = 0;
    for (int i = 0; i < n; i++) {
        int na = seqs[i]->n - seqs[i]->prompt_len;
        pred[i] = hd_malloc((size_t)(na > 0 ? na : 1) * sizeof **pred);
        correct[i] = na > 0;
        for (int j = 0; j < na; j++, k++) {
            pred[i][j] = llama_argmax(r->acts->logits + (size_t)k * V, V);
            if (pred[i][j] != seqs[i]->ids[seqs[i]->prompt_len + j]) correct[i] = 0;
        }
    }
    free(rows);
    return 0;
}
