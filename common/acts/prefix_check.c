#include "acts/prefix_check.h"
#include "base/error.h"
#include "model/llama_generate.h"

#include <stdlib.h>
#include <string.h>

/* qsort has no context argument in C11: the sequences being ordered. */
static const TokenSeq *const *sort_seqs;

/* By token ids, shorter first on a common prefix, then by input order (a
 * deterministic order whatever qsort does with ties). */
static int by_ids(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    const TokenSeq *x = sort_seqs[i], *y = sort_seqs[j];
    int n = x->n < y->n ? x->n : y->n;
    for (int t = 0; t < n; t++)
        if (x->ids[t] != y->ids[t]) return x->ids[t] < y->ids[t] ? -1 : 1;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return (i > j) - (i < j);
}

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int common_prefix(const TokenSeq *x, const TokenSeq *y)
{
    int n = x->n < y->n ? x->n : y->n, t = 0;
    while (t < n && x->ids[t] == y->ids[t]) t++;
    return t;
}

/* The longest prefix a sequence may leave to its group: the logits of its
 * first answer token come from position prompt_len - 1, which must be
 * computed with the rest of the sequence. */
static int prefix_cap(const TokenSeq *s)
{
    return s->prompt_len - 1;
}

/* Model cost per sequence of a group of k sharing P tokens, the longest
 * L tokens: P once, then k rows of L - P (pads included).  Compared
 * without division: cost(P2, L2, k2) / k2 <= cost(P, L, k) / k. */
static int cheaper_or_equal(int P2, int L2, int k2, int P, int L, int k)
{
    long long c2 = P2 + (long long)k2 * (L2 - P2), c = P + (long long)k * (L - P);
    return c2 * k <= c * k2;
}

/* A run of sorted sequences sharing their first P tokens. */
typedef struct {
    int first, k, P, S; /* order[first..first+k), prefix P, longest rest S */
} Part;

static const Part *sort_parts;
/* by the length of the rest (then of the prefix): batches of rests that pad little */
static int by_rest(const void *a, const void *b)
{
    const Part *x = &sort_parts[*(const int *)a], *y = &sort_parts[*(const int *)b];
    if (x->S != y->S) return x->S < y->S ? -1 : 1;
    if (x->P != y->P) return x->P < y->P ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}
/* by the length of the prefix: batches of prefixes that pad little */
static int by_prefix(const void *a, const void *b)
{
    const Part *x = &sort_parts[*(const int *)a], *y = &sort_parts[*(const int *)b];
    if (x->P != y->P) return x->P < y->P ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Groups of the sorted sequences: a sequence joins its predecessor's group
 * while that does not raise the group's cost per sequence (a shared prefix
 * that shrinks to BOS ends the group); a group is cut into parts of at
 * most rows sequences. */
static Part *make_parts(const TokenSeq *const *seqs, const int *order, int m, int rows, int *n_parts)
{
    Part *parts = hd_malloc((size_t)m * sizeof *parts);
    int np = 0;
    for (int j = 0; j < m;) {
        const TokenSeq *first = seqs[order[j]];
        int P = prefix_cap(first), L = first->n, k = 1;
        while (j + k < m && k < rows) {
            const TokenSeq *next = seqs[order[j + k]];
            int P2 = common_prefix(seqs[order[j + k - 1]], next);
            if (P2 > P) P2 = P;
            if (P2 > prefix_cap(next)) P2 = prefix_cap(next);
            int L2 = next->n > L ? next->n : L;
            if (!cheaper_or_equal(P2, L2, k + 1, P, L, k)) break;
            P = P2;
            L = L2;
            k++;
        }
        parts[np++] = (Part){j, k, P, L - P};
        j += k;
    }
    *n_parts = np;
    return parts;
}

typedef struct {
    const LlamaModel *m;
    LlamaKVCache *kv;
    int R;                 /* rows of a batch */
    int *ids, *mask, *rows;
    float *logits;
    float *store;          /* every part's prefix keys and values */
    size_t *at;            /* part g's keys at store + at[g], values after them */
    size_t per_step;       /* floats of one time step's keys, all layers */
} Run;

/* Pass 1: the prefixes, R parts per left-padded batch in order of length;
 * each part's keys and values saved to the store. */
static int run_prefixes(Run *run, const TokenSeq *const *seqs, const int *order, const Part *parts,
                        const int *by, int np, PrefixCheckStats *stats)
{
    for (int g = 0; g < np;) {
        int h = g, Pmax = 0;
        while (h < np && h - g < run->R) {
            if (parts[by[h]].P > Pmax) Pmax = parts[by[h]].P;
            h++;
        }
        if (Pmax > 0) {
            for (int i = g; i < h; i++) {
                const Part *p = &parts[by[i]];
                const TokenSeq *s = seqs[order[p->first]];
                int row = i - g, pad = Pmax - p->P;
                for (int t = 0; t < Pmax; t++) {
                    run->ids[row * Pmax + t] = t < pad ? 0 : s->ids[t - pad];
                    run->mask[row * Pmax + t] = t >= pad;
                }
            }
            llama_kv_reset(run->kv);
            if (llama_kv_step(run->m, run->kv, run->ids, run->mask, h - g, Pmax) < 0) return -1;
            for (int i = g; i < h; i++) {
                const Part *p = &parts[by[i]];
                float *k = run->store + run->at[by[i]];
                if (llama_kv_save_row(run->kv, i - g, p->P, k, k + (size_t)p->P * run->per_step) < 0) return -1;
            }
        }
        if (stats) stats->computed += (long long)(h - g) * Pmax;
        g = h;
    }
    return 0;
}

/* Pass 2, one batch: parts[0..np) (at most R rows in all), each row's
 * prefix loaded from the store, then every sequence's rest as one
 * right-padded batch and the answer check on it. */
static int run_rests(Run *run, const TokenSeq *const *seqs, const int *order, const Part *const *parts,
                     const size_t *at, int np, int *correct, PrefixCheckStats *stats)
{
    int Pmax = 0, Smax = 1, R = 0;
    for (int g = 0; g < np; g++) {
        if (parts[g]->P > Pmax) Pmax = parts[g]->P;
        if (parts[g]->S > Smax) Smax = parts[g]->S;
        R += parts[g]->k;
    }
    if (llama_kv_start_rows(run->kv, R, Pmax) < 0) return -1;
    int r = 0, n_rows = 0;
    for (int g = 0; g < np; g++) {
        const Part *p = parts[g];
        const float *k = run->store + at[g];
        for (int i = 0; i < p->k; i++, r++) {
            const TokenSeq *s = seqs[order[p->first + i]];
            if (llama_kv_load_row(run->kv, r, p->P, k, k + (size_t)p->P * run->per_step) < 0) return -1;
            for (int t = 0; t < Smax; t++) {
                int real = p->P + t < s->n;
                run->ids[r * Smax + t] = real ? s->ids[p->P + t] : 0;
                run->mask[r * Smax + t] = real;
            }
            /* answer token t is predicted at position t - 1, row t - 1 - P of the rest */
            for (int t = s->prompt_len; t < s->n; t++) run->rows[n_rows++] = r * Smax + t - 1 - p->P;
        }
    }
    if (llama_kv_step(run->m, run->kv, run->ids, run->mask, R, Smax) < 0) return -1;
    if (llama_kv_logits_rows(run->m, run->kv, run->rows, n_rows, run->logits) < 0) return -1;
    if (stats) stats->computed += (long long)R * Smax;
    const int V = run->m->cfg.vocab_size;
    int row = 0;
    r = 0;
    for (int g = 0; g < np; g++)
        for (int i = 0; i < parts[g]->k; i++, r++) {
            const TokenSeq *s = seqs[order[parts[g]->first + i]];
            int ok = 1;
            for (int t = s->prompt_len; t < s->n; t++, row++)
                if (llama_argmax(run->logits + (size_t)row * V, V) != s->ids[t]) ok = 0;
            correct[order[parts[g]->first + i]] = ok;
        }
    return 0;
}

/* What prefix_check_run will do: the sequences with an answer in token
 * order, their parts, the rests' batches (parts by[batch_end[b-1] ..
 * batch_end[b])) and the prefixes' order (by_p), with the cache's sizes and
 * the token positions the model will run. */
typedef struct {
    int m_run, *order;
    Part *parts;
    int np, *by, *batch_end, n_batches, *by_p;
    int R, need_step, need_cap, max_answer;
    long long cost;
} Plan;

static void plan_make(const TokenSeq *const *seqs, int n, int batch, int *correct, Plan *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->order = hd_malloc((size_t)(n ? n : 1) * sizeof *pl->order);
    pl->max_answer = 1;
    for (int i = 0; i < n; i++) {
        if (correct) correct[i] = 0;
        const TokenSeq *s = seqs[i];
        if (s->prompt_len < 1 || s->prompt_len >= s->n) continue;
        pl->order[pl->m_run++] = i;
        if (s->n - s->prompt_len > pl->max_answer) pl->max_answer = s->n - s->prompt_len;
    }
    sort_seqs = seqs;
    qsort(pl->order, (size_t)pl->m_run, sizeof *pl->order, by_ids);

    /* Batches of up to R rows: two batches' worth, as the rests are short
     * and a GEMM over few rows spends its time packing the weights. */
    const int R = pl->R = 2 * batch;
    int np = 0;
    Part *parts = pl->parts = make_parts(seqs, pl->order, pl->m_run, R, &np);
    pl->np = np;
    pl->need_step = pl->need_cap = 1;
    for (int g = 0; g < np; g++)
        if (parts[g].P > pl->need_step) pl->need_step = parts[g].P;
    /* the rests' batches, in order of length; their sizes size the cache */
    pl->by = hd_malloc((size_t)(np ? np : 1) * sizeof *pl->by);
    pl->batch_end = hd_malloc((size_t)(np ? np : 1) * sizeof *pl->batch_end);
    for (int g = 0; g < np; g++) pl->by[g] = g;
    sort_parts = parts;
    qsort(pl->by, (size_t)np, sizeof *pl->by, by_rest);
    for (int g = 0; g < np;) {
        int rows = 0, Pmax = 0, Smax = 1, h = g;
        while (h < np && rows + parts[pl->by[h]].k <= R) {
            rows += parts[pl->by[h]].k;
            if (parts[pl->by[h]].P > Pmax) Pmax = parts[pl->by[h]].P;
            if (parts[pl->by[h]].S > Smax) Smax = parts[pl->by[h]].S;
            h++;
        }
        pl->batch_end[pl->n_batches++] = h;
        pl->cost += (long long)rows * Smax;
        if (Smax > pl->need_step) pl->need_step = Smax;
        if (Pmax + Smax > pl->need_cap) pl->need_cap = Pmax + Smax;
        g = h;
    }
    if (pl->need_step > pl->need_cap) pl->need_cap = pl->need_step;
    /* the prefixes' batches, in order of length (as run_prefixes cuts them) */
    pl->by_p = hd_malloc((size_t)(np ? np : 1) * sizeof *pl->by_p);
    for (int g = 0; g < np; g++) pl->by_p[g] = g;
    qsort(pl->by_p, (size_t)np, sizeof *pl->by_p, by_prefix);
    for (int g = 0; g < np; g += R) {
        int h = g + R < np ? g + R : np;
        pl->cost += (long long)(h - g) * parts[pl->by_p[h - 1]].P; /* ascending: the last is the longest */
    }
}

static void plan_free(Plan *pl)
{
    free(pl->order);
    free(pl->parts);
    free(pl->by);
    free(pl->batch_end);
    free(pl->by_p);
}

void prefix_check_costs(const TokenSeq *const *seqs, int n, int batch, long long *shared, long long *whole)
{
    Plan pl;
    plan_make(seqs, n, batch < 1 ? 1 : batch, NULL, &pl);
    *shared = pl.cost;
    plan_free(&pl);
    /* model_runner's batches: sorted by length, each left-padded to its longest */
    int *len = hd_malloc((size_t)(n ? n : 1) * sizeof *len);
    for (int i = 0; i < n; i++) len[i] = seqs[i]->n;
    qsort(len, (size_t)n, sizeof *len, int_cmp);
    *whole = 0;
    for (int i = 0; i < n; i += batch) {
        int h = i + batch < n ? i + batch : n;
        *whole += (long long)(h - i) * len[h - 1];
    }
    free(len);
}

int prefix_check_run(const LlamaModel *m, const TokenSeq *const *seqs, int n, int batch,
                     int *correct, PrefixCheckStats *stats)
{
    if (batch < 1) return hd_fail("prefix check: batch of %d", batch);
    /* only sequences with an answer run; the others are not correct */
    Plan pl;
    plan_make(seqs, n, batch, correct, &pl);
    if (pl.m_run == 0) {
        plan_free(&pl);
        return 0;
    }
    const int R = pl.R, np = pl.np;
    const Part *parts = pl.parts;
    const int *order = pl.order;
    const LlamaConfig *cfg = &m->cfg;
    Run run = {m, NULL, R, NULL, NULL, NULL, NULL, NULL, NULL, (size_t)cfg->n_layers * cfg->n_kv_heads * cfg->head_dim};
    run.at = hd_malloc((size_t)np * sizeof *run.at);
    size_t store = 0;
    for (int g = 0; g < np; g++) {
        run.at[g] = store;
        store += 2 * (size_t)parts[g].P * run.per_step;
    }
    if (stats) {
        stats->groups += np;
        for (int j = 0; j < pl.m_run; j++) stats->tokens += seqs[order[j]]->n;
    }

    int rc = 0;
    run.kv = llama_kv_create(cfg, R, pl.need_step, pl.need_cap);
    run.store = malloc((store ? store : 1) * sizeof *run.store);
    run.logits = malloc((size_t)R * pl.max_answer * cfg->vocab_size * sizeof *run.logits);
    if (!run.kv) rc = -1;
    else if (!run.store || !run.logits)
        rc = hd_fail("prefix check: cannot allocate %.1f MiB of prefix keys and values and logits",
                     (store + (double)R * pl.max_answer * cfg->vocab_size) * 4.0 / 1048576.0);
    run.ids = hd_malloc((size_t)R * pl.need_step * sizeof *run.ids);
    run.mask = hd_malloc((size_t)R * pl.need_step * sizeof *run.mask);
    run.rows = hd_malloc((size_t)R * pl.max_answer * sizeof *run.rows);
    const Part **batch_parts = hd_malloc((size_t)R * sizeof *batch_parts);
    size_t *batch_at = hd_malloc((size_t)R * sizeof *batch_at);
    if (rc == 0) rc = run_prefixes(&run, seqs, order, parts, pl.by_p, np, stats);
    for (int b = 0, g = 0; rc == 0 && b < pl.n_batches; g = pl.batch_end[b++]) {
        int k = 0;
        for (int h = g; h < pl.batch_end[b]; h++, k++) {
            batch_parts[k] = &parts[pl.by[h]];
            batch_at[k] = run.at[pl.by[h]];
        }
        rc = run_rests(&run, seqs, order, batch_parts, batch_at, k, correct, stats);
    }
    llama_kv_free(run.kv);
    free(run.store);
    free(run.logits);
    free(run.ids);
    free(run.mask);
    free(run.rows);
    free(run.at);
    free(batch_parts);
    free(batch_at);
    plan_free(&pl);
    return rc;
}
