/* Loading a Hugging Face tokenizer.json (+ tokenizer_config.json) with
 * jansson.  Each component is read strictly: a component or option we do
 * not implement is an error that names it, so a tokenizer is never
 * silently approximated. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "base/unicode.h"

static const char *type_of(json_t *obj)
{
    json_t *t = json_object_get(obj, "type");
    return json_is_string(t) ? json_string_value(t) : "";
}

static int get_bool(json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* {"String": s} patterns only; regex patterns are not supported here. */
static int string_pattern(json_t *obj, const char *where, const char **s, size_t *len)
{
    json_t *p = json_object_get(obj, "pattern");
    json_t *str = json_object_get(p, "String");
    if (!json_is_string(str))
        return hd_fail("%s: only {\"String\": ...} patterns are supported", where);
    *s = json_string_value(str);
    *len = json_string_length(str);
    return 0;
}

/* ---- model --------------------------------------------------------------- */

static int load_vocab(Tokenizer *t, json_t *model)
{
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return hd_fail("model.vocab is missing or not an object");
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val)) return hd_fail("model.vocab['%s'] is not an integer id", key);
        json_int_t id = json_integer_value(val);
        if (id < 0 || id > INT32_MAX) return hd_fail("model.vocab['%s']: id %lld is out of range", key, (long long)id);
        if (tokenizer_set_token(t, (int32_t)id, key, strlen(key))) return hd_fail_prefix("model.vocab: ");
    }
    return 0;
}

static int check_model_options(json_t *model)
{
    const char *type = type_of(model);
    if (type[0] && strcmp(type, "BPE") != 0)
        return hd_fail("model type '%s' is not supported (only BPE)", type);
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return hd_fail("model.dropout is not supported");
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(model, affixes[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return hd_fail("model.%s is not supported", affixes[i]);
    }
    return 0;
}

static int load_merges(Tokenizer *t, json_t *model)
{
    json_t *merges = json_object_get(model, "merges");
    if (!merges) return 0;
    if (!json_is_array(merges)) return hd_fail("model.merges is not an array");
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        const char *l, *r;
        size_t llen, rlen;
        if (json_is_string(m)) { /* "left right" */
            const char *s = json_string_value(m);
            const char *sp = memchr(s, ' ', json_string_length(m));
            if (!sp) return hd_fail("model.merges[%zu] '%s' has no space", i, s);
            l = s;
            llen = (size_t)(sp - s);
            r = sp + 1;
            rlen = json_string_length(m) - llen - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) { /* ["left", "right"] */
            l = json_string_value(json_array_get(m, 0));
            llen = json_string_length(json_array_get(m, 0));
            r = json_string_value(json_array_get(m, 1));
            rlen = json_string_length(json_array_get(m, 1));
        } else {
            return hd_fail("model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", i);
        }
        if (i > INT32_MAX) return hd_fail("model.merges: too many merges");
        if (tokenizer_add_merge(t, l, llen, r, rlen, (int32_t)i)) return hd_fail_prefix("model.merges: ");
    }
    return 0;
}

/* HF re-derives the ids of added tokens as it adds them one by one (an
 * existing token keeps its id, a new one gets the next id after the
 * model's vocabulary); in every well-formed file that is the id written
 * there, and where it is not, HF's id is the one that counts. */
static int load_added_tokens(Tokenizer *t, json_t *root, int has_normalizer, size_t n_model)
{
    json_t *added = json_object_get(root, "added_tokens");
    if (!added || json_is_null(added)) return 0;
    if (!json_is_array(added)) return hd_fail("added_tokens is not an array");
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || !json_is_string(content))
            return hd_fail("added_tokens[%zu] needs an integer id and a string content", i);
        if (get_bool(a, "single_word", 0))
            return hd_fail("added_tokens[%zu]: single_word is not supported", i);
        int special = get_bool(a, "special", 0), normalized = get_bool(a, "normalized", !special);
        if (normalized && has_normalizer)
            return hd_fail("added_tokens[%zu]: normalized added tokens with a normalizer are not supported", i);
        const char *c = json_string_value(content);
        size_t len = json_string_length(content);
        if (tokenizer_add_added(t, tokenizer_next_added_id(t, c, len, n_model), c, len, special,
                                get_bool(a, "lstrip", 0), get_bool(a, "rstrip", 0), normalized))
            return hd_fail_prefix("added_tokens[%zu]: ", i);
    }
    return 0;
}

/* ---- normalizer and pre-tokenizer ---------------------------------------- */

static int load_normalizer(Tokenizer *t, json_t *n)
{
    if (!n || json_is_null(n)) return 0;
    const char *type = type_of(n);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) return hd_fail("normalizer Sequence has no normalizers list");
        size_t i;
        json_t *sub;
        json_array_foreach(list, i, sub) if (load_normalizer(t, sub)) return -1;
        return 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        json_t *p = json_object_get(n, "prepend");
        if (!json_is_string(p)) return hd_fail("normalizer Prepend has no prepend string");
        tokenizer_add_norm(t, NORM_PREPEND, NULL, 0, json_string_value(p), json_string_length(p));
        return 0;
    }
    if (strcmp(type, "Replace") == 0) {
        const char *pat;
        size_t plen;
        json_t *c = json_object_get(n, "content");
        if (string_pattern(n, "normalizer Replace", &pat, &plen)) return -1;
        if (!json_is_string(c)) return hd_fail("normalizer Replace has no content string");
        tokenizer_add_norm(t, NORM_REPLACE, pat, plen, json_string_value(c), json_string_length(c));
        return 0;
    }
    return hd_fail("normalizer '%s' is not supported", type);
}

/* A literal string as a PCRE2 pattern. */
static char *quote_regex(const char *s, size_t len)
{
    char *out = hd_malloc(2 * len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i]) && s[i]) *o++ = '\\';
        *o++ = s[i];
    }
    *o = 0;
    return out;
}

static int load_pre_tokenizer(Tokenizer *t, json_t *p)
{
    if (!p || json_is_null(p)) return 0;
    const char *type = type_of(p);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list)) return hd_fail("pre_tokenizer Sequence has no pretokenizers list");
        size_t i;
        json_t *sub;
        json_array_foreach(list, i, sub) if (load_pre_tokenizer(t, sub)) return -1;
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        json_t *pat = json_object_get(p, "pattern");
        json_t *behavior = json_object_get(p, "behavior");
        if (!json_is_string(behavior) || strcmp(json_string_value(behavior), "Isolated") != 0)
            return hd_fail("pre_tokenizer Split: only behavior \"Isolated\" is supported");
        if (get_bool(p, "invert", 0)) return hd_fail("pre_tokenizer Split: invert is not supported");
        json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (json_is_string(re)) return tokenizer_add_pre_regex(t, json_string_value(re));
        if (json_is_string(str)) {
            char *q = quote_regex(json_string_value(str), json_string_length(str));
            int rc = tokenizer_add_pre_regex(t, q);
            free(q);
            return rc;
        }
        return hd_fail("pre_tokenizer Split has no Regex or String pattern");
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (t->byte_level) return hd_fail("pre_tokenizer ByteLevel appears twice");
        t->byte_level = 1;
        if (get_bool(p, "add_prefix_space", 0)) {
            /* Only as the first step, where it acts on the whole text. */
            if (t->n_pre) return hd_fail("pre_tokenizer ByteLevel add_prefix_space after another split is not supported");
            t->prefix_space = 1;
        }
        if (get_bool(p, "use_regex", 1)) return tokenizer_add_pre_regex(t, PATTERN_GPT2);
        return 0;
    }
    if (strcmp(type, "Digits") == 0)
        return tokenizer_add_pre_regex(t, get_bool(p, "individual_digits", 0) ? PATTERN_DIGIT : PATTERN_DIGIT "+");
    return hd_fail("pre_tokenizer '%s' is not supported", type);
}

/* ---- post-processor and decoder ------------------------------------------ */

typedef struct {
    int32_t ids[64];
    size_t n;
} IdList;

static int push_ids(IdList *l, json_t *ids, const char *what)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (!json_is_integer(v) || l->n == 64) return hd_fail("post_processor: bad ids for %s", what);
        l->ids[l->n++] = (int32_t)json_integer_value(v);
    }
    return 0;
}

static int load_template(json_t *p, IdList *pre, IdList *post)
{
    json_t *single = json_object_get(p, "single"), *specials = json_object_get(p, "special_tokens");
    if (!json_is_array(single)) return hd_fail("post_processor TemplateProcessing has no single template");
    int seen_a = 0;
    size_t i;
    json_t *item;
    json_array_foreach(single, i, item) {
        json_t *sp = json_object_get(item, "SpecialToken");
        if (json_object_get(item, "Sequence")) {
            seen_a = 1;
            continue;
        }
        json_t *name = json_object_get(sp, "id");
        if (!json_is_string(name)) return hd_fail("post_processor: template item %zu is not understood", i);
        json_t *ids = json_object_get(json_object_get(specials, json_string_value(name)), "ids");
        if (!json_is_array(ids))
            return hd_fail("post_processor: special token '%s' is not in special_tokens", json_string_value(name));
        if (push_ids(seen_a ? post : pre, ids, json_string_value(name))) return -1;
    }
    return 0;
}

/* RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id]. */
static int pair_id(json_t *p, const char *key, IdList *l)
{
    json_t *v = json_object_get(p, key);
    if (!json_is_array(v) || !json_is_integer(json_array_get(v, 1)) || l->n == 64)
        return hd_fail("post_processor: '%s' is not [token, id]", key);
    l->ids[l->n++] = (int32_t)json_integer_value(json_array_get(v, 1));
    return 0;
}

static int load_post_processor(json_t *p, IdList *pre, IdList *post)
{
    if (!p || json_is_null(p)) return 0;
    const char *type = type_of(p);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(p, "processors");
        if (!json_is_array(list)) return hd_fail("post_processor Sequence has no processors list");
        size_t i;
        json_t *sub;
        json_array_foreach(list, i, sub) if (load_post_processor(sub, pre, post)) return -1;
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) return 0; /* offsets only; we never trim */
    if (strcmp(type, "TemplateProcessing") == 0) {
        /* A later processor wraps what the earlier ones produced. */
        IdList p2 = {{0}, 0}, s2 = {{0}, 0};
        if (load_template(p, &p2, &s2)) return -1;
        if (p2.n + pre->n > 64 || s2.n + post->n > 64) return hd_fail("post_processor: template too long");
        memmove(pre->ids + p2.n, pre->ids, pre->n * sizeof *pre->ids);
        memcpy(pre->ids, p2.ids, p2.n * sizeof *p2.ids);
        pre->n += p2.n;
        memcpy(post->ids + post->n, s2.ids, s2.n * sizeof *s2.ids);
        post->n += s2.n;
        return 0;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        if (pre->n || post->n) return hd_fail("post_processor: %s inside a Sequence is not supported", type);
        return pair_id(p, "cls", pre) || pair_id(p, "sep", post) ? -1 : 0;
    }
    return hd_fail("post_processor '%s' is not supported", type);
}

static int load_decoder(Tokenizer *t, json_t *d)
{
    if (!d || json_is_null(d)) return 0;
    const char *type = type_of(d);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(d, "decoders");
        if (!json_is_array(list)) return hd_fail("decoder Sequence has no decoders list");
        size_t i;
        json_t *sub;
        t->has_decoder = 1; /* even an empty Sequence joins with "" */
        json_array_foreach(list, i, sub) if (load_decoder(t, sub)) return -1;
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        tokenizer_add_dec(t, DEC_BYTE_LEVEL);
    } else if (strcmp(type, "ByteFallback") == 0) {
        tokenizer_add_dec(t, DEC_BYTE_FALLBACK);
    } else if (strcmp(type, "Fuse") == 0) {
        tokenizer_add_dec(t, DEC_FUSE);
    } else if (strcmp(type, "Replace") == 0) {
        const char *pat;
        size_t plen;
        json_t *c = json_object_get(d, "content");
        if (string_pattern(d, "decoder Replace", &pat, &plen)) return -1;
        if (!json_is_string(c)) return hd_fail("decoder Replace has no content string");
        DecStep *s = tokenizer_add_dec(t, DEC_REPLACE);
        s->pattern = hd_strndup(pat, plen);
        s->pattern_len = plen;
        s->content = hd_strndup(json_string_value(c), json_string_length(c));
        s->content_len = json_string_length(c);
    } else if (strcmp(type, "Strip") == 0) {
        json_t *c = json_object_get(d, "content");
        uint32_t cp;
        if (!json_is_string(c) || json_string_length(c) == 0 ||
            utf8_decode((const uint8_t *)json_string_value(c), json_string_length(c), &cp) !=
                (int)json_string_length(c))
            return hd_fail("decoder Strip needs a one-character content");
        json_t *start = json_object_get(d, "start"), *stop = json_object_get(d, "stop");
        if (!json_is_integer(start) || !json_is_integer(stop) || json_integer_value(start) < 0 ||
            json_integer_value(stop) < 0 || json_integer_value(start) > 1000 || json_integer_value(stop) > 1000)
            return hd_fail("decoder Strip needs small non-negative start and stop");
        DecStep *s = tokenizer_add_dec(t, DEC_STRIP);
        s->strip_char = cp;
        s->strip_start = (int)json_integer_value(start);
        s->strip_stop = (int)json_integer_value(stop);
    } else {
        return hd_fail("decoder '%s' is not supported", type);
    }
    return 0;
}

/* ---- tokenizer_config.json ------------------------------------------------ */

/* "bos_token": "<s>" or {"content": "<s>", ...}; absent or null: -2. */
static int config_token(Tokenizer *t, json_t *config, const char *key, int32_t *id)
{
    json_t *v = json_object_get(config, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!v || json_is_null(v)) {
        *id = -2;
        return 0;
    }
    if (!json_is_string(v)) return hd_fail("tokenizer config: %s is not a string", key);
    *id = tokenizer_token_to_id(t, json_string_value(v));
    if (*id < 0) return hd_fail("tokenizer config: %s '%s' is not a token", key, json_string_value(v));
    return 0;
}

static int apply_config(Tokenizer *t, json_t *config, IdList *pre, IdList *post)
{
    /* Without a config: BOS is what the template puts first. */
    if (pre->n == 1) t->bos_id = pre->ids[0];
    if (post->n == 1) t->eos_id = post->ids[0];
    if (!config) return 0;
    int32_t bos, eos;
    if (config_token(t, config, "bos_token", &bos) || config_token(t, config, "eos_token", &eos)) return -1;
    if (bos != -2) t->bos_id = bos;
    if (eos != -2) t->eos_id = eos;
    json_t *add_bos = json_object_get(config, "add_bos_token"), *add_eos = json_object_get(config, "add_eos_token");
    if (json_is_boolean(add_bos) || json_is_boolean(add_eos)) {
        /* transformers' LlamaTokenizerFast rebuilds the template from these. */
        pre->n = post->n = 0;
        if (json_is_true(add_bos) && t->bos_id >= 0) pre->ids[pre->n++] = t->bos_id;
        if (json_is_true(add_eos) && t->eos_id >= 0) post->ids[post->n++] = t->eos_id;
    }
    return 0;
}

/* ---- putting it together -------------------------------------------------- */

static int build(Tokenizer *t, json_t *root, json_t *config)
{
    if (!json_is_object(root)) return hd_fail("not a JSON object");
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return hd_fail("no model object");
    if (check_model_options(model) || load_vocab(t, model)) return -1;
    json_t *normalizer = json_object_get(root, "normalizer");
    if (load_normalizer(t, normalizer)) return -1;
    json_t *version = json_object_get(root, "version");
    if (version && !(json_is_string(version) && strcmp(json_string_value(version), "1.0") == 0))
        return hd_fail("unknown tokenizer.json version (only \"1.0\")");
    if (load_added_tokens(t, root, t->n_norm > 0, json_object_size(json_object_get(model, "vocab")))) return -1;
    if (load_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"))) return -1;
    if (tokenizer_finish_vocab(t)) return -1;
    t->bpe.byte_fallback = get_bool(model, "byte_fallback", 0);
    t->bpe.fuse_unk = get_bool(model, "fuse_unk", 0);
    t->bpe.ignore_merges = get_bool(model, "ignore_merges", 0);
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        t->bpe.unk_id = t->unk_id = strmap_get(&t->bpe.vocab, json_string_value(unk), json_string_length(unk));
        if (t->byte_level) t->bpe.unk_id = t->unk_id = tokenizer_token_to_id(t, json_string_value(unk));
        if (t->unk_id < 0) return hd_fail("model.unk_token '%s' is not in the vocabulary", json_string_value(unk));
    }
    if (load_merges(t, model)) return -1;
    IdList pre = {{0}, 0}, post = {{0}, 0};
    if (load_post_processor(json_object_get(root, "post_processor"), &pre, &post)) return -1;
    if (apply_config(t, config, &pre, &post)) return -1;
    for (size_t i = 0; i < pre.n + post.n; i++) {
        int32_t id = i < pre.n ? pre.ids[i] : post.ids[i - pre.n];
        if (!tokenizer_id_to_token(t, id)) return hd_fail("post_processor: token id %d does not exist", id);
    }
    tokenizer_set_template(t, pre.ids, pre.n, post.ids, post.n);
    if (load_decoder(t, json_object_get(root, "decoder"))) return -1;
    return tokenizer_finish(t);
}

static Tokenizer *build_or_fail(json_t *root, json_t *config, const char *name)
{
    Tokenizer *t = tokenizer_alloc(name);
    int rc = build(t, root, config);
    json_decref(root);
    if (config) json_decref(config);
    if (rc) {
        hd_fail_prefix("%s: ", name);
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* The whole file in memory: jansson's own file reader goes through getc
 * and takes several times longer on a 9 MB tokenizer.json. */
static char *read_whole_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        hd_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = hd_malloc(cap);
    for (;;) {
        if (n == cap) buf = hd_realloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        hd_fail("%s: read error", path);
        return NULL;
    }
    *len = n;
    return buf;
}

Tokenizer *tokenizer_load_json(const char *path, const char *config_path)
{
    size_t len, config_len = 0;
    char *text = read_whole_file(path, &len);
    if (!text) return NULL;
    char *config = NULL;
    if (config_path && !(config = read_whole_file(config_path, &config_len))) {
        free(text);
        return NULL;
    }
    Tokenizer *t = tokenizer_load_json_text(text, len, config, config_len, path);
    if (!t && config_path && strstr(hd_last_error(), "tokenizer config: ")) {
        /* name the config file rather than tokenizer.json */
        const char *msg = strstr(hd_last_error(), "tokenizer config: ") + strlen("tokenizer config: ");
        char copy[512];
        snprintf(copy, sizeof copy, "%s", msg);
        hd_fail("%s: %s", config_path, copy);
    }
    free(text);
    free(config);
    return t;
}

Tokenizer *tokenizer_load_json_text(const char *json, size_t len, const char *config_json,
                                    size_t config_len, const char *name)
{
    if (!name) name = "tokenizer.json";
    json_error_t err;
    json_t *root = json_loadb(json, len, 0, &err);
    if (!root) {
        hd_fail("%s: %s (line %d, column %d)", name, err.text, err.line, err.column);
        return NULL;
    }
    json_t *config = NULL;
    if (config_json) {
        config = json_loadb(config_json, config_len, JSON_DECODE_INT_AS_REAL, &err);
        if (!config || !json_is_object(config)) {
            hd_fail("%s: tokenizer config: %s (line %d, column %d)", name, config ? "not a JSON object" : err.text,
                    err.line, err.column);
            json_decref(root);
            if (config) json_decref(config);
            return NULL;
        }
    }
    return build_or_fail(root, config, name);
}
