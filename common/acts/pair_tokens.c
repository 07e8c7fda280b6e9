#include "acts/pair_tokens.h"
#include "base/error.h"
#include "stream/msgpack_util.h"

#include <stdlib.h>
#include <string.h>

static int get_str(const msgpack_object *rec, const char *key, const char **s, size_t *n)
{
    const msgpack_object *o = mp_map_get(rec, key);
    if (!o || o->type != MSGPACK_OBJECT_STR) return hd_fail("pair record has no string '%s'", key);
    *s = o->via.str.ptr;
    *n = o->via.str.size;
    return 0;
}

static int get_span(const msgpack_object *rec, const char *key, int64_t span[2])
{
    const msgpack_object *o = mp_map_get(rec, key);
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
        mp_get_int64(&o->via.array.ptr[0], &span[0]) < 0 ||
        mp_get_int64(&o->via.array.ptr[1], &span[1]) < 0 || span[0] < 0 || span[1] <= span[0])
        return hd_fail("pair record has no valid '%s' [start, end]", key);
    return 0;
}

/* Last token overlapping the byte span [a, b). */
static int last_overlapping(const int32_t *starts, const int32_t *ends, int n, int64_t a, int64_t b)
{
    int last = -1;
    for (int i = 0; i < n; i++)
        if (starts[i] < b && ends[i] > a) last = i;
    return last;
}

/* prompt + sep + answer, tokenised in context; prompt alone for its length. */
static int encode_with_answer(const TargetModel *t, const char *prompt, size_t np, const char *sep,
                              size_t ns, const char *answer, size_t na, const int64_t *span,
                              TokenSeq *seq)
{
    size_t total = np + ns + na;
    if (target_model_check_length(t, total) < 0) return -1;   /* before copying it */
    char *text = hd_malloc(total + 1);
    memcpy(text, prompt, np);
    memcpy(text + np, sep, ns);
    memcpy(text + np + ns, answer, na);
    int32_t *starts = NULL, *ends = NULL, *alone = NULL;
    int n_alone;
    int rc = target_model_encode(t, text, total, &seq->ids, &seq->n, &starts, &ends);
    if (rc == 0) rc = target_model_encode(t, prompt, np, &alone, &n_alone, NULL, NULL);
    if (rc == 0) {
        seq->prompt_len = n_alone;
        if (n_alone > seq->n || (na > 0 && n_alone == seq->n))
            rc = hd_fail("the answer adds no token after the prompt");
        seq->entity_last = span ? last_overlapping(starts, ends, seq->prompt_len, span[0], span[1]) : -1;
        if (span && seq->entity_last < 0) rc = hd_fail("no token covers the entity span");
    }
    free(alone);
    free(starts);
    free(ends);
    free(text);
    return rc;
}

int pair_tokens_build(const TargetModel *t, const msgpack_object *pair, PairTokens *out)
{
    memset(out, 0, sizeof *out);
    const char *base = NULL, *sep = NULL, *label = NULL, *source = NULL, *verify = NULL, *instr = NULL;
    size_t nb = 0, ns = 0, nl = 0, nsrc = 0, nv = 0, ni = 0;
    int64_t bspan[2], sspan[2];
    if (get_str(pair, "base_input", &base, &nb) < 0 || get_str(pair, "answer_sep", &sep, &ns) < 0 ||
        get_str(pair, "label", &label, &nl) < 0 || get_str(pair, "source_input", &source, &nsrc) < 0 ||
        get_str(pair, "verify_input", &verify, &nv) < 0 ||
        get_str(pair, "instruction", &instr, &ni) < 0 ||
        get_span(pair, "base_entity_span", bspan) < 0 ||
        get_span(pair, "source_entity_span", sspan) < 0)
        return -1;
    if (nl == 0) return hd_fail("pair record has an empty label");
    if ((size_t)bspan[1] > nb) return hd_fail("base_entity_span lies outside base_input");
    if ((size_t)sspan[1] > nsrc) return hd_fail("source_entity_span lies outside source_input");
    /* a failing sequence is named by its prompt's field */
    const char *field = "base_input";
    int rc = encode_with_answer(t, base, nb, sep, ns, label, nl, bspan, &out->base);
    if (rc == 0) {
        field = "source_input";
        rc = encode_with_answer(t, source, nsrc, "", 0, "", 0, sspan, &out->source);
    }
    if (rc == 0) {
        field = "verify_input";
        rc = encode_with_answer(t, verify, nv, sep, ns, label, nl, NULL, &out->verify);
    }
    if (rc == 0) {
        field = "instruction";
        rc = encode_with_answer(t, instr, ni, "", 0, "", 0, NULL, &out->instruction);
    }
    if (rc < 0) {
        hd_fail_prefix("%s: ", field);
        pair_tokens_free(out);
    }
    return rc;
}

int pair_tokens_answer(const TargetModel *t, const char *prompt, size_t np, const char *sep, size_t ns,
                       const char *answer, size_t na, TokenSeq *out)
{
    memset(out, 0, sizeof *out);
    if (na == 0) return hd_fail("empty answer");
    int rc = encode_with_answer(t, prompt, np, sep, ns, answer, na, NULL, out);
    if (rc < 0) {
        free(out->ids);
        out->ids = NULL;
    }
    return rc;
}

void pair_tokens_free(PairTokens *p)
{
    free(p->base.ids);
    free(p->source.ids);
    free(p->verify.ids);
    free(p->instruction.ids);
    memset(p, 0, sizeof *p);
}
