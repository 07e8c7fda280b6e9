/* The hypernetwork's gradient bookkeeping: which rows of the token
 * embedding's gradient a step wrote (so zeroing clears only those), which
 * rows ever had a gradient (so AdamW can skip the others' zero moments),
 * and the AdamW spans of its parameter groups. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "hypernet/hypernet.h"
#include "hypernet/hypernet_internal.h"

int hypernet_adamw_spans(const Hypernet *hn, const float *group_lr, const float *group_wd,
                         AdamWSpan *spans)
{
    int n = 0;
    for (int i = 0; i < hn->n_info; i++) {
        const HnParam *p = &hn->info[i];
        if (p->group == HN_GROUP_BUFFER) continue;
        spans[n] = (AdamWSpan){p->offset, p->numel, group_lr[p->group], group_wd[p->group], 0};
        n++;
    }
    return n;
}

static void push_span(AdamWSpan **spans, int *n, int *cap, AdamWSpan s)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *spans = hd_realloc(*spans, (size_t)*cap * sizeof **spans);
    }
    (*spans)[(*n)++] = s;
}

int hypernet_adamw_spans_split(const Hypernet *hn, const float *group_lr, const float *group_wd,
                               AdamWSpan **spans, int *cap)
{
    const size_t d = (size_t)hn->target.hidden_size;
    const int V = hn->target.vocab_size;
    int n = 0;
    for (int i = 0; i < hn->n_info; i++) {
        const HnParam *p = &hn->info[i];
        if (p->group == HN_GROUP_BUFFER) continue;
        const float lr = group_lr[p->group], wd = group_wd[p->group];
        if (p->data != hn->w.tok_embed || hn->embed_moved_all) {
            push_span(spans, &n, cap, (AdamWSpan){p->offset, p->numel, lr, wd, 0});
            continue;
        }
        /* runs of rows: moved ones get the full rule, the others (zero
         * gradient and moments) the decay alone */
        for (int r = 0; r < V;) {
            int moved = hn->embed_row_moved[r], e = r + 1;
            while (e < V && hn->embed_row_moved[e] == moved) e++;
            push_span(spans, &n, cap,
                      (AdamWSpan){p->offset + (size_t)r * d, (size_t)(e - r) * d, lr, wd, !moved});
            r = e;
        }
    }
    return n;
}

void hypernet_note_moments(Hypernet *hn, const float *m, const float *v)
{
    if (!hn->w.tok_embed) return;
    /* m and v share the parameter buffer's layout */
    const size_t d = (size_t)hn->target.hidden_size, o = (size_t)(hn->w.tok_embed - hn->params);
    for (int r = 0; r < hn->target.vocab_size; r++) {
        const float *mr = m + o + (size_t)r * d, *vr = v + o + (size_t)r * d;
        for (size_t j = 0; j < d && !hn->embed_row_moved[r]; j++)
            if (mr[j] != 0.0f || vr[j] != 0.0f) hn->embed_row_moved[r] = 1;
    }
}

void hypernet_zero_grad(Hypernet *hn)
{
    float *emb = hn->g.tok_embed;
    const size_t d = (size_t)hn->target.hidden_size;
    if (!emb || hn->grads_all_written) {
        memset(hn->grads, 0, hn->n_params * sizeof(float));
    } else { /* all but the embedding, then its dirty rows */
        size_t lo = (size_t)(emb - hn->grads), n = (size_t)hn->target.vocab_size * d;
        memset(hn->grads, 0, lo * sizeof(float));
        memset(emb + n, 0, (hn->n_params - lo - n) * sizeof(float));
        for (int i = 0; i < hn->n_embed_dirty; i++)
            memset(emb + (size_t)hn->embed_dirty_rows[i] * d, 0, d * sizeof(float));
    }
    for (int i = 0; i < hn->n_embed_dirty; i++) hn->embed_row_dirty[hn->embed_dirty_rows[i]] = 0;
    hn->n_embed_dirty = 0;
    hn->grads_all_written = 0;
}

void hypernet_grads_written(Hypernet *hn)
{
    hn->grads_all_written = 1;
    /* another writer (an all-reduce of other ranks' rows): which rows have
     * moments is no longer known here */
    hn->embed_moved_all = 1;
}

void hn_mark_embed_rows(Hypernet *hn, const int *ids, int n)
{
    const int V = hn->target.vocab_size;
    for (int i = 0; i < n; i++) {
        int r = ids[i];
        if (r < 0 || r >= V || hn->embed_row_dirty[r]) continue; /* the kernel skips bad ids */
        hn->embed_row_dirty[r] = 1;
        hn->embed_row_moved[r] = 1;
        hn->embed_dirty_rows[hn->n_embed_dirty++] = r;
    }
}
