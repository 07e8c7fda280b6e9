#include "score/score_example.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "plot/plot_heatmap.h"
#include "plot/svg.h"
#include "stream/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_CHARS 24
#define TEXT_CHARS 80

/* The printable form of a string field, or "?" when it is absent or nil;
 * -1 when it is there but not a string. */
static int text_field(const msgpack_object *rec, const char *key, int required, char **out)
{
    const msgpack_object *v = mp_map_get(rec, key);
    if (v && v->type == MSGPACK_OBJECT_STR) {
        *out = visible_text(v->via.str.ptr, v->via.str.size, TEXT_CHARS);
        return 0;
    }
    if (v && v->type == MSGPACK_OBJECT_BIN) { /* text that is not UTF-8 (mp_pack_text) */
        *out = visible_text(v->via.bin.ptr, v->via.bin.size, TEXT_CHARS);
        return 0;
    }
    if (required) return hd_fail("score record has no string '%s'", key);
    if (v && v->type != MSGPACK_OBJECT_NIL) return hd_fail("'%s' is not a string", key);
    *out = hd_strdup("?");
    return 0;
}

static int tokens_field(const msgpack_object *rec, const char *key, char ***out, int *n)
{
    const msgpack_object *v = mp_map_get(rec, key);
    if (!v) return hd_fail("score record has no '%s'", key);
    if (v->type != MSGPACK_OBJECT_ARRAY) return hd_fail("'%s' is not an array", key);
    if (v->via.array.size > 1000000) return hd_fail("'%s' has %u tokens", key, v->via.array.size);
    *n = (int)v->via.array.size;
    *out = hd_calloc((size_t)*n + 1, sizeof **out);
    for (int i = 0; i < *n; i++) {
        const msgpack_object *t = &v->via.array.ptr[i];
        /* a bin: a token holding part of a character (mp_pack_text) */
        if (t->type == MSGPACK_OBJECT_BIN) {
            (*out)[i] = visible_text(t->via.bin.ptr, t->via.bin.size, TOKEN_CHARS);
            continue;
        }
        if (t->type != MSGPACK_OBJECT_STR) return hd_fail("'%s'[%d] is not a string", key, i);
        (*out)[i] = visible_text(t->via.str.ptr, t->via.str.size, TOKEN_CHARS);
    }
    return 0;
}

static int position_field(const msgpack_object *rec, const char *key, int n_tokens, const char *tokens_key,
                          int *out)
{
    const msgpack_object *v = mp_map_get(rec, key);
    int64_t x;
    if (!v) return hd_fail("score record has no '%s'", key);
    if (mp_get_int64(v, &x) < 0) return hd_fail("'%s' is not an integer", key);
    if (x < 0 || x >= n_tokens)
        return hd_fail("%s %lld is outside %s (%d tokens)", key, (long long)x, tokens_key, n_tokens);
    *out = (int)x;
    return 0;
}

static int weights_field(const msgpack_object *rec, ScoreExample *e)
{
    Tensor t;
    if (tensor_from_record(rec, "weights", &t) < 0) return -1;
    int rows = e->S + 1, cols = e->B;
    if (t.ndim != 2 || t.shape[0] != rows || t.shape[1] != cols) {
        char shape[128];
        size_t k = 0;
        for (int i = 0; i < t.ndim && k < sizeof shape - 24; i++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? ", " : "", (long long)t.shape[i]);
        shape[k] = 0;
        tensor_release(&t);
        return hd_fail("weights shape [%s] disagrees with the tokens: %d source and %d base tokens need [%d, %d]",
                       shape, e->S, e->B, rows, cols);
    }
    e->weights = hd_malloc(t.numel * sizeof *e->weights + 1);
    tensor_to_f32(&t, e->weights);
    tensor_release(&t);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        if (!isfinite(e->weights[i]))
            return hd_fail("weights hold %s at [%zu, %zu]", isnan(e->weights[i]) ? "NaN" : "an infinity",
                           i / (size_t)cols, i % (size_t)cols);
    return 0;
}

int score_example_parse(const msgpack_object *rec, ScoreExample *e)
{
    memset(e, 0, sizeof *e);
    e->correct = -1;
    if (text_field(rec, "id", 1, &e->id) < 0 || text_field(rec, "mode", 0, &e->mode) < 0 ||
        text_field(rec, "target_attribute", 0, &e->attribute) < 0 || text_field(rec, "kind", 0, &e->kind) < 0)
        return -1;
    /* label and prediction are shown whole up to TEXT_CHARS: they are short answers */
    if (text_field(rec, "label", 0, &e->label) < 0 || text_field(rec, "prediction", 0, &e->prediction) < 0)
        return -1;
    const msgpack_object *c = mp_map_get(rec, "correct");
    if (c && c->type == MSGPACK_OBJECT_BOOLEAN) e->correct = c->via.boolean;
    else if (c && c->type != MSGPACK_OBJECT_NIL) return hd_fail("'correct' is not a boolean");
    if (tokens_field(rec, "source_tokens", &e->source_tokens, &e->S) < 0 ||
        tokens_field(rec, "base_tokens", &e->base_tokens, &e->B) < 0)
        return -1;
    if (position_field(rec, "base_entity_pos", e->B, "base_tokens", &e->base_entity) < 0 ||
        position_field(rec, "source_entity_pos", e->S, "source_tokens", &e->source_entity) < 0)
        return -1;
    return weights_field(rec, e);
}

void score_example_free(ScoreExample *e)
{
    free(e->id);
    free(e->mode);
    free(e->attribute);
    free(e->kind);
    free(e->label);
    free(e->prediction);
    for (int i = 0; e->source_tokens && e->source_tokens[i]; i++) free(e->source_tokens[i]);
    for (int i = 0; e->base_tokens && e->base_tokens[i]; i++) free(e->base_tokens[i]);
    free(e->source_tokens);
    free(e->base_tokens);
    free(e->weights);
    memset(e, 0, sizeof *e);
}

static char *labelled(int index, const char *text)
{
    size_t n = strlen(text) + 24;
    char *s = hd_malloc(n);
    snprintf(s, n, "%d %s", index, text);
    return s;
}

int score_example_svg(const ScoreExample *e, const char *path)
{
    int rows = e->S + 1, cols = e->B;
    double *values = hd_malloc((size_t)rows * cols * sizeof *values);
    for (size_t i = 0; i < (size_t)rows * cols; i++) values[i] = e->weights[i];
    char **row_labels = hd_malloc((size_t)rows * sizeof *row_labels);
    char **col_labels = hd_malloc((size_t)cols * sizeof *col_labels);
    for (int s = 0; s < e->S; s++) row_labels[s] = labelled(s, e->source_tokens[s]);
    row_labels[e->S] = hd_strdup("(self)");
    for (int t = 0; t < cols; t++) col_labels[t] = labelled(t, e->base_tokens[t]);
    char line2[512], line3[512];
    snprintf(line2, sizeof line2, "mode: %s   target: %s   kind: %s", e->mode, e->attribute, e->kind);
    snprintf(line3, sizeof line3, "label: %s   prediction: %s   correct: %s", e->label, e->prediction,
             e->correct < 0 ? "?" : e->correct ? "yes" : "no");
    Heatmap h = {.rows = rows, .cols = cols, .values = values, .row_labels = row_labels,
                 .col_labels = col_labels, .mark_row = e->source_entity, .mark_col = e->base_entity,
                 .mark_note = "entity's last token", .separate_last_row = 1,
                 .title = {e->id, line2, line3, NULL}, .row_axis = "source tokens", .col_axis = "base tokens"};
    int rc = heatmap_write_svg(&h, path);
    for (int i = 0; i < rows; i++) free(row_labels[i]);
    for (int i = 0; i < cols; i++) free(col_labels[i]);
    free(row_labels);
    free(col_labels);
    free(values);
    return rc;
}

