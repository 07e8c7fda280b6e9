/* Tokenizer parity with Hugging Face `tokenizers` (fixtures written by
 * tests/ref/gen_tokenizer_fixtures.py; see its docstring for the formats).
 *
 *  - three tiny tokenizers trained by the generator (byte-level with digit
 *    split, Llama 3 style, SentencePiece style): always run, also in a fresh
 *    clone, through both tokenizer.json and the GGUF-style arrays;
 *  - the real Llama 2, 3 and 3.1 tokenizers (../shared/tokenizers) and
 *    SmolLM2 (built from the GGUF in models/): every RAVEL template of every
 *    domain filled with every entity, the Wikipedia templates, a hard corpus
 *    and sampled prompts.  Skipped when the files are absent.
 *
 * HD_TEST_QUICK=1 (the default under AddressSanitizer; HD_TEST_QUICK=0
 * forces the full run) sweeps every 8th template only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cli.h"
#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer_test_util.h"

#define FIX "tests/fixtures/tokenizer"
#define SHARED "../shared/tokenizers"
#define RAVEL "data/ravel"
#define SMOL_GGUF "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define SMOL_JSON "models/SmolLM2-135M-Instruct.tokenizer.json"

/* ---- the corpus ---------------------------------------------------------- */

typedef struct {
    const char **s;
    size_t *len;
    size_t n, n_hard;
    json_t *root;
} Corpus;

static void corpus_load(Corpus *c)
{
    c->root = load_json(FIX "/corpus.json");
    json_t *hard = json_object_get(c->root, "hard"), *sample = json_object_get(c->root, "sample");
    assert_true(json_is_array(hard) && json_is_array(sample));
    c->n_hard = json_array_size(hard);
    c->n = c->n_hard + json_array_size(sample);
    c->s = calloc(c->n, sizeof *c->s);
    c->len = calloc(c->n, sizeof *c->len);
    for (size_t i = 0; i < c->n; i++) {
        json_t *v = i < c->n_hard ? json_array_get(hard, i) : json_array_get(sample, i - c->n_hard);
        c->s[i] = json_string_value(v);
        c->len[i] = json_string_length(v);
    }
}

static void corpus_free(Corpus *c)
{
    free(c->s);
    free(c->len);
    json_decref(c->root);
}

static void print_escaped(const char *label, const char *s, size_t n)
{
    printf("#   %s \"", label);
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == '"' || ch == '\\') printf("\\x%02x", ch);
        else putchar(ch);
    }
    printf("\"\n");
}

static void print_ids(const char *label, const int32_t *a, size_t n)
{
    printf("#   %s [", label);
    for (size_t i = 0; i < n && i < 60; i++) printf("%s%d", i ? " " : "", a[i]);
    printf("]\n");
}

static int ids_equal(json_t *arr, const int32_t *ids, size_t n)
{
    if (json_array_size(arr) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != ids[i]) return 0;
    return 1;
}

static void json_ids(json_t *arr, int32_t *out)
{
    for (size_t i = 0; i < json_array_size(arr); i++) out[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

/* Encodes the first n corpus strings and compares ids and byte offsets with
 * expect["encode"]; returns the number of strings that differ. */
static size_t check_encode(const char *name, const Tokenizer *t, const Corpus *c, size_t n, json_t *expect)
{
    json_t *enc = json_object_get(expect, "encode");
    assert_true(json_array_size(enc) >= n);
    TokenList tl = {0};
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tokenizer_encode(t, c->s[i], c->len[i], 0, &tl), 0);
        json_t *e = json_array_get(enc, i);
        json_t *ids = json_object_get(e, "ids"), *offs = json_object_get(e, "offsets");
        int ok = ids_equal(ids, tl.ids, tl.n) && json_array_size(offs) == 2 * tl.n;
        for (size_t k = 0; ok && k < tl.n; k++)
            ok = json_integer_value(json_array_get(offs, 2 * k)) == tl.start[k] &&
                 json_integer_value(json_array_get(offs, 2 * k + 1)) == tl.end[k];
        if (!ok && bad++ < 5) {
            printf("# %s: corpus string %zu differs\n", name, i);
            print_escaped("text", c->s[i], c->len[i]);
            int32_t want[4096];
            size_t nw = json_array_size(ids) < 4096 ? json_array_size(ids) : 4096;
            json_ids(ids, want);
            print_ids("want", want, nw);
            print_ids("got ", tl.ids, tl.n);
            for (size_t k = 0; k < tl.n && k < 20; k++)
                printf("#   token %zu: got [%d,%d) want [%lld,%lld)\n", k, tl.start[k], tl.end[k],
                       json_integer_value(json_array_get(offs, 2 * k)),
                       json_integer_value(json_array_get(offs, 2 * k + 1)));
        }
    }
    token_list_free(&tl);
    return bad;
}

/* add_special, decode (keep / skip special), random-id decode, id<->token. */
static size_t check_rest(const char *name, const Tokenizer *t, const Corpus *c, size_t n, json_t *expect)
{
    size_t bad = 0;
    TokenList tl = {0};
    json_t *special = json_object_get(expect, "special_ids");
    for (size_t i = 0; i < json_array_size(special); i++) {
        assert_int_equal(tokenizer_encode(t, c->s[i], c->len[i], 1, &tl), 0);
        if (!ids_equal(json_array_get(special, i), tl.ids, tl.n) && bad++ < 5) {
            printf("# %s: add_special differs on corpus string %zu\n", name, i);
            print_ids("got", tl.ids, tl.n);
        }
    }
    json_t *dec = json_object_get(expect, "decode");
    for (size_t i = 0; i < n && i < json_array_size(dec); i++) {
        assert_int_equal(tokenizer_encode(t, c->s[i], c->len[i], 1, &tl), 0);
        for (int skip = 0; skip < 2; skip++) {
            json_t *want = json_array_get(json_array_get(dec, i), (size_t)skip);
            size_t len;
            char *got = tokenizer_decode(t, tl.ids, tl.n, skip, &len);
            if ((len != json_string_length(want) || memcmp(got, json_string_value(want), len)) && bad++ < 5) {
                printf("# %s: decode (skip_special %d) of corpus string %zu differs\n", name, skip, i);
                print_escaped("want", json_string_value(want), json_string_length(want));
                print_escaped("got ", got, len);
            }
            free(got);
        }
    }
    json_t *rnd = json_object_get(expect, "decode_random");
    for (size_t i = 0; i < json_array_size(rnd); i++) {
        json_t *r = json_array_get(rnd, i);
        int32_t ids[64];
        size_t n_ids = json_array_size(json_object_get(r, "ids"));
        assert_true(n_ids <= 64);
        json_ids(json_object_get(r, "ids"), ids);
        for (int skip = 0; skip < 2; skip++) {
            json_t *want = json_object_get(r, skip ? "skip" : "keep");
            size_t len;
            char *got = tokenizer_decode(t, ids, n_ids, skip, &len);
            if ((len != json_string_length(want) || memcmp(got, json_string_value(want), len)) && bad++ < 5) {
                printf("# %s: decode (skip_special %d) of random ids %zu differs\n", name, skip, i);
                print_ids("ids", ids, n_ids);
                print_escaped("want", json_string_value(want), json_string_length(want));
                print_escaped("got ", got, len);
            }
            free(got);
        }
    }
    json_t *toks = json_object_get(expect, "tokens");
    for (size_t i = 0; i < json_array_size(toks); i++) {
        json_t *p = json_array_get(toks, i);
        int32_t id = (int32_t)json_integer_value(json_array_get(p, 0));
        const char *want = json_string_value(json_array_get(p, 1));
        const char *got = tokenizer_id_to_token(t, id);
        if (!want) continue;
        if ((!got || strcmp(got, want) || tokenizer_token_to_id(t, want) != id) && bad++ < 5)
            printf("# %s: token %d is '%s', want '%s'\n", name, id, got ? got : "(none)", want);
    }
    json_t *vs = json_object_get(expect, "vocab_size");
    if (json_is_integer(vs)) assert_int_equal(tokenizer_vocab_size(t), json_integer_value(vs));
    token_list_free(&tl);
    return bad;
}

/* ---- the sweep over RAVEL prompts ------------------------------------------ */

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv_word(uint64_t h, uint64_t w) { return (h ^ w) * FNV_PRIME; }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
    const char **entities;
    size_t n_entities;
    const char **templates;
    size_t n_templates;
    const char **wiki;
    const char **wiki_entity; /* NULL: fill with every entity */
    size_t n_wiki;
    json_t *roots[3];
} Domain;

static json_t *ravel_json(const char *fmt, const char *domain)
{
    char path[512];
    snprintf(path, sizeof path, fmt, domain);
    return load_json(path);
}

static void domain_load(Domain *d, const char *name)
{
    memset(d, 0, sizeof *d);
    json_t *ents = d->roots[0] = ravel_json(RAVEL "/ravel_%s_entity_attributes.json", name);
    json_t *a2p = d->roots[1] = ravel_json(RAVEL "/ravel_%s_attribute_to_prompts.json", name);
    json_t *wiki = d->roots[2] = ravel_json(RAVEL "/wikipedia_%s_entity_prompts.json", name);
    const char *key;
    json_t *v;
    d->entities = calloc(json_object_size(ents), sizeof *d->entities);
    json_object_foreach(ents, key, v) d->entities[d->n_entities++] = key;
    qsort(d->entities, d->n_entities, sizeof *d->entities, cmp_str);
    size_t cap = 0;
    json_object_foreach(a2p, key, v) cap += json_array_size(v);
    d->templates = calloc(cap, sizeof *d->templates);
    json_object_foreach(a2p, key, v) {
        for (size_t i = 0; i < json_array_size(v); i++) d->templates[d->n_templates++] = json_string_value(json_array_get(v, i));
    }
    qsort(d->templates, d->n_templates, sizeof *d->templates, cmp_str);
    size_t u = 0; /* distinct templates */
    for (size_t i = 0; i < d->n_templates; i++)
        if (u == 0 || strcmp(d->templates[u - 1], d->templates[i])) d->templates[u++] = d->templates[i];
    d->n_templates = u;
    d->wiki = calloc(json_object_size(wiki), sizeof *d->wiki);
    d->wiki_entity = calloc(json_object_size(wiki), sizeof *d->wiki_entity);
    json_object_foreach(wiki, key, v) d->wiki[d->n_wiki++] = key;
    qsort(d->wiki, d->n_wiki, sizeof *d->wiki, cmp_str);
    for (size_t i = 0; i < d->n_wiki; i++)
        d->wiki_entity[i] = json_string_value(json_object_get(json_object_get(wiki, d->wiki[i]), "entity"));
}

static void domain_free(Domain *d)
{
    free(d->entities);
    free(d->templates);
    free(d->wiki);
    free(d->wiki_entity);
    for (int i = 0; i < 3; i++) json_decref(d->roots[i]);
}

/* template % entity: the single %s replaced. */
static size_t fill(char **buf, size_t *cap, const char *tpl, const char *entity)
{
    const char *at = strstr(tpl, "%s");
    size_t a = at ? (size_t)(at - tpl) : strlen(tpl), e = at ? strlen(entity) : 0;
    size_t rest = at ? strlen(at + 2) : 0, n = a + e + rest;
    if (n + 1 > *cap) *buf = realloc(*buf, *cap = 2 * n + 64);
    memcpy(*buf, tpl, a);
    memcpy(*buf + a, entity, e);
    if (at) memcpy(*buf + a + e, at + 2, rest);
    (*buf)[n] = 0;
    return n;
}

typedef struct {
    const Tokenizer *t;
    TokenList tl;
    char *buf;
    size_t cap;
    size_t strings;
} Sweep;

/* Fingerprints (ids, offsets) of one template filled with each entity. */
static void fingerprint(Sweep *s, const char *tpl, const char **ents, size_t n, uint64_t out[2])
{
    uint64_t hi = FNV_BASIS, ho = FNV_BASIS;
    for (size_t e = 0; e < n; e++) {
        size_t len = fill(&s->buf, &s->cap, tpl, ents[e]);
        if (tokenizer_encode(s->t, s->buf, len, 0, &s->tl)) fail_msg("%s", hd_last_error());
        uint64_t a = fnv_word(FNV_BASIS, s->tl.n), b = a;
        for (size_t k = 0; k < s->tl.n; k++) {
            a = fnv_word(a, (uint32_t)s->tl.ids[k]);
            b = fnv_word(fnv_word(b, (uint32_t)s->tl.start[k]), (uint32_t)s->tl.end[k]);
        }
        hi = fnv_word(hi, a);
        ho = fnv_word(ho, b);
    }
    s->strings += n;
    out[0] = hi;
    out[1] = ho;
}

static uint64_t read_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Returns the number of templates whose fingerprints differ. */
static size_t check_sweep(const char *name, const Tokenizer *t, json_t *expect)
{
    json_t *sw = json_object_get(expect, "sweep");
    char path[512];
    snprintf(path, sizeof path, FIX "/%s", json_string_value(json_object_get(sw, "file")));
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *blob = malloc((size_t)size + 1);
    assert_int_equal(fread(blob, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    int quick = quick_mode();
    Sweep s = {t, {0}, NULL, 0, 0};
    size_t rec = 0, bad = 0, bad_offsets = 0, templates = 0;
    double t0 = hd_now_seconds();
    json_t *domains = json_object_get(sw, "domains");
    for (size_t di = 0; di < json_array_size(domains); di++) {
        json_t *dj = json_array_get(domains, di);
        const char *dname = json_string_value(json_object_get(dj, "domain"));
        Domain d;
        domain_load(&d, dname);
        assert_int_equal(d.n_entities, json_integer_value(json_object_get(dj, "entities")));
        assert_int_equal(d.n_templates, json_integer_value(json_object_get(dj, "templates")));
        assert_int_equal(d.n_wiki, json_integer_value(json_object_get(dj, "wiki_templates")));
        size_t n_groups = d.n_templates + d.n_wiki;
        for (size_t g = 0; g < n_groups; g++, rec++) {
            size_t local = g < d.n_templates ? g : g - d.n_templates;
            if (quick && local % 8) continue;
            assert_true((rec + 1) * 16 <= (size_t)size);
            uint64_t fp[2];
            const char *tpl;
            if (g < d.n_templates) {
                tpl = d.templates[g];
                fingerprint(&s, tpl, d.entities, d.n_entities, fp);
            } else {
                tpl = d.wiki[local];
                const char *own = d.wiki_entity[local];
                if (own) {
                    const char *ents[5] = {own};
                    for (int j = 0; j < 4; j++) ents[1 + j] = d.entities[(size_t)j * d.n_entities / 4];
                    fingerprint(&s, tpl, ents, 5, fp);
                } else {
                    fingerprint(&s, tpl, d.entities, d.n_entities, fp);
                }
            }
            templates++;
            int ids_ok = fp[0] == read_u64(blob + rec * 16), offs_ok = fp[1] == read_u64(blob + rec * 16 + 8);
            if (!ids_ok) bad++;
            if (ids_ok && !offs_ok) bad_offsets++;
            if ((!ids_ok || !offs_ok) && bad + bad_offsets <= 10)
                printf("# %s: %s %s template differs in %s: \"%s\"\n", name, dname,
                       g < d.n_templates ? "RAVEL" : "Wikipedia", ids_ok ? "offsets only" : "ids", tpl);
        }
        domain_free(&d);
    }
    assert_int_equal(rec * 16, (size_t)size);
    printf("# %s: sweep of %zu templates, %zu strings (%s): %zu differ in ids, %zu in offsets only, %.2f s\n", name,
           templates, s.strings, quick ? "quick: every 8th template" : "full", bad, bad_offsets,
           hd_now_seconds() - t0);
    if (!quick)
        assert_int_equal(s.strings, json_integer_value(json_object_get(sw, "strings")));
    token_list_free(&s.tl);
    free(s.buf);
    free(blob);
    return bad + bad_offsets;
}

/* ---- tests: tiny tokenizers (always) ------------------------------------------ */

static void tiny_json(const char *name)
{
    Corpus c;
    corpus_load(&c);
    char path[256], epath[256];
    snprintf(path, sizeof path, FIX "/%s.json", name);
    snprintf(epath, sizeof epath, FIX "/%s.expect.json", name);
    Tokenizer *t = tokenizer_load_json(path, NULL);
    if (!t) fail_msg("%s", hd_last_error());
    json_t *expect = load_json(epath);
    size_t bad = check_encode(name, t, &c, c.n_hard, expect) + check_rest(name, t, &c, c.n_hard, expect);
    printf("# %s (tokenizer.json): %zu hard-corpus strings, %zu differ\n", name, c.n_hard, bad);
    assert_int_equal(bad, 0);
    json_decref(expect);
    tokenizer_free(t);
    corpus_free(&c);
}

static void tiny_bytelevel_json(void **state) { (void)state; tiny_json("tiny_bytelevel"); }
static void tiny_llama3_json(void **state) { (void)state; tiny_json("tiny_llama3"); }
static void tiny_spm_json(void **state) { (void)state; tiny_json("tiny_spm"); }

static void tiny_arrays(const char *name, const char *model, const char *pre, int32_t bos)
{
    Corpus c;
    corpus_load(&c);
    char path[256], epath[256];
    snprintf(path, sizeof path, FIX "/%s.json", name);
    snprintf(epath, sizeof epath, FIX "/%s.expect.json", name);
    JsonArrays j;
    arrays_from_json(&j, path, 1);
    j.a.model = model;
    j.a.pre = pre;
    j.a.bos_id = bos;
    j.a.add_bos = bos >= 0;
    j.a.unk_id = !strcmp(model, "llama") ? 0 : -1;
    Tokenizer *t = tokenizer_from_arrays(&j.a, name);
    if (!t) fail_msg("%s", hd_last_error());
    json_t *expect = load_json(epath);
    size_t bad = check_encode(name, t, &c, c.n_hard, expect) + check_rest(name, t, &c, c.n_hard, expect);
    printf("# %s (arrays, %s/%s): %zu hard-corpus strings, %zu differ\n", name, model, pre ? pre : "-", c.n_hard, bad);
    assert_int_equal(bad, 0);
    assert_int_equal(tokenizer_bos_id(t), bos);
    json_decref(expect);
    tokenizer_free(t);
    arrays_free(&j);
    corpus_free(&c);
}

static void tiny_bytelevel_arrays(void **state) { (void)state; tiny_arrays("tiny_bytelevel", "gpt2", "smollm", 1); }
static void tiny_llama3_arrays(void **state) { (void)state; tiny_arrays("tiny_llama3", "gpt2", "llama-bpe", -1); }
static void tiny_spm_arrays(void **state) { (void)state; tiny_arrays("tiny_spm", "llama", NULL, 1); }

/* The same results from several threads sharing one Tokenizer. */
static void threads_share_a_tokenizer(void **state)
{
    (void)state;
    Corpus c;
    corpus_load(&c);
    Tokenizer *t = tokenizer_load_json(FIX "/tiny_llama3.json", NULL);
    if (!t) fail_msg("%s", hd_last_error());
    uint64_t serial = FNV_BASIS;
    TokenList tl = {0};
    for (size_t i = 0; i < c.n; i++) {
        assert_int_equal(tokenizer_encode(t, c.s[i], c.len[i], 1, &tl), 0);
        for (size_t k = 0; k < tl.n; k++) serial = fnv_word(serial, (uint32_t)tl.ids[k] ^ (uint64_t)tl.end[k] << 32);
    }
    token_list_free(&tl);
    int mismatches = 0;
#pragma omp parallel num_threads(2) reduction(+ : mismatches)
    {
        TokenList mine = {0};
        for (int rep = 0; rep < 20; rep++) {
            uint64_t h = FNV_BASIS;
            for (size_t i = 0; i < c.n; i++) {
                if (tokenizer_encode(t, c.s[i], c.len[i], 1, &mine)) mismatches++;
                for (size_t k = 0; k < mine.n; k++) h = fnv_word(h, (uint32_t)mine.ids[k] ^ (uint64_t)mine.end[k] << 32);
            }
            mismatches += h != serial;
        }
        token_list_free(&mine);
    }
    assert_int_equal(mismatches, 0);
    tokenizer_free(t);
    corpus_free(&c);
}

/* The bytes of the tokens, one by one, spell the text again: what a
 * streaming printer relies on.  Byte-level: exactly the text; SentencePiece
 * style: the text after a space (the prepended U+2581). */
static void token_bytes_spell_the_text(void **state)
{
    (void)state;
    Corpus c;
    corpus_load(&c);
    const char *names[2] = {FIX "/tiny_bytelevel.json", FIX "/tiny_spm.json"};
    for (int k = 0; k < 2; k++) {
        Tokenizer *t = tokenizer_load_json(names[k], NULL);
        if (!t) fail_msg("%s", hd_last_error());
        TokenList tl = {0};
        size_t checked = 0;
        for (size_t i = 0; i < c.n; i++) {
            assert_int_equal(tokenizer_encode(t, c.s[i], c.len[i], 0, &tl), 0);
            int has_special = 0;
            for (size_t j = 0; j < tl.n; j++) has_special |= tokenizer_is_special(t, tl.ids[j]);
            if (has_special || c.len[i] == 0) continue;
            char *buf = malloc(2 * c.len[i] + 8);
            size_t n = 0;
            for (size_t j = 0; j < tl.n; j++) {
                size_t len;
                const char *b = tokenizer_token_bytes(t, tl.ids[j], &len);
                assert_non_null(b);
                memcpy(buf + n, b, len);
                n += len;
            }
            size_t skip = k == 1 ? 1 : 0;
            if (n != c.len[i] + skip || (skip && buf[0] != ' ') || memcmp(buf + skip, c.s[i], c.len[i]) != 0) {
                print_escaped("text", c.s[i], c.len[i]);
                print_escaped("bytes", buf, n);
                fail_msg("%s: token bytes do not spell corpus string %zu", names[k], i);
            }
            free(buf);
            checked++;
        }
        assert_true(checked > 100);
        token_list_free(&tl);
        tokenizer_free(t);
    }
    corpus_free(&c);
}

/* ---- tests: errors --------------------------------------------------------------- */

static void expect_load_error(const char *json, const char *needle)
{
    Tokenizer *t = tokenizer_load_json_text(json, strlen(json), NULL, 0, "bad.json");
    if (t) {
        tokenizer_free(t);
        fail_msg("loaded a bad tokenizer.json, expected an error containing '%s'", needle);
    }
    const char *msg = hd_last_error();
    if (!strstr(msg, needle) || strncmp(msg, "bad.json: ", 10)) fail_msg("message '%s' lacks '%s'", msg, needle);
    assert_null(strchr(msg, '\n'));
}

#define TINY_MODEL "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}"

static void bad_input_gives_one_clear_error(void **state)
{
    (void)state;
    assert_null(tokenizer_load_json("no/such/tokenizer.json", NULL));
    assert_non_null(strstr(hd_last_error(), "no/such/tokenizer.json"));
    expect_load_error("{\"model\": ", "line 1");
    expect_load_error("[]", "not a JSON object");
    expect_load_error("{}", "no model");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "WordPiece");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}", "right part");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", "merged token");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"ab\"]}}", "no space");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3}}}", "out of range");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999}}}", "out of range");
    expect_load_error("{" TINY_MODEL ",\"normalizer\":{\"type\":\"NFKC\"}}", "normalizer 'NFKC'");
    expect_load_error("{" TINY_MODEL ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                      "\"behavior\":\"Isolated\"}}", "does not compile");
    expect_load_error("{" TINY_MODEL ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
                      "\"behavior\":\"Removed\"}}", "Isolated");
    expect_load_error("{" TINY_MODEL ",\"decoder\":{\"type\":\"WordPiece\"}}", "decoder 'WordPiece'");
    expect_load_error("{" TINY_MODEL ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":"
                      "[{\"SpecialToken\":{\"id\":\"<s>\"}}],\"special_tokens\":{}}}", "<s>");
    expect_load_error("{" TINY_MODEL ",\"added_tokens\":[{\"id\":5,\"content\":\"x\",\"single_word\":true}]}",
                      "single_word");

    /* A good tiny tokenizer: invalid UTF-8 is refused with its position. */
    const char *good = "{" TINY_MODEL "}";
    Tokenizer *t = tokenizer_load_json_text(good, strlen(good), NULL, 0, "good.json");
    if (!t) fail_msg("%s", hd_last_error());
    TokenList tl = {0};
    assert_int_equal(tokenizer_encode(t, "ab\xff", 3, 0, &tl), -1);
    assert_non_null(strstr(hd_last_error(), "not valid UTF-8 at byte 2"));
    assert_int_equal(tokenizer_encode(t, "abab", 4, 1, &tl), 0);
    assert_int_equal(tl.n, 2);
    assert_int_equal(tl.ids[0], 2);
    /* a word none of whose characters is in the vocabulary (no unk token)
     * gives no token, the first time and from the word cache, here as the
     * first word a fresh tokenizer sees (found by fuzz_tokenizer_json:
     * UBSan, the cache's arrays still NULL) */
    Tokenizer *fresh = tokenizer_load_json_text(good, strlen(good), NULL, 0, "good.json");
    TokenList none = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tokenizer_encode(fresh, "c", 1, 0, &none), 0);
        assert_int_equal(none.n, 0);
    }
    token_list_free(&none);
    tokenizer_free(fresh);
    assert_null(tokenizer_id_to_token(t, 7));
    assert_int_equal(tokenizer_token_to_id(t, "zz"), -1);
    token_list_free(&tl);
    tokenizer_free(t);

    TokenizerArrays a;
    memset(&a, 0, sizeof a);
    const char *toks[] = {"a", "b"};
    a.model = "bert";
    a.tokens = toks;
    a.n_tokens = 2;
    assert_null(tokenizer_from_arrays(&a, "x.gguf"));
    assert_non_null(strstr(hd_last_error(), "x.gguf: tokenizer.ggml.model 'bert'"));
    a.model = "gpt2";
    a.pre = "qwen2";
    assert_null(tokenizer_from_arrays(&a, "x.gguf"));
    assert_non_null(strstr(hd_last_error(), "qwen2"));
}

/* A normalizer chain that doubles every space on each of 40 steps would
 * need 2^40 bytes for "a b c": refused with one line naming the file,
 * before allocating (fuzz_tokenizer_json reached a 32 GiB allocation).  A
 * real tokenizer's growth (Replace " " by U+2581: 3x) still works on a
 * text of nothing but spaces. */
static void normalizer_growth_is_bounded(void **state)
{
    (void)state;
    char json[4096];
    int n = snprintf(json, sizeof json, "{" TINY_MODEL ",\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < 40; i++)
        n += snprintf(json + n, sizeof json - (size_t)n, "%s{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                      "\"content\":\"  \"}", i ? "," : "");
    snprintf(json + n, sizeof json - (size_t)n, "]}}");
    Tokenizer *t = tokenizer_load_json_text(json, strlen(json), NULL, 0, "grow.json");
    if (!t) fail_msg("%s", hd_last_error());
    TokenList tl = {0};
    assert_int_equal(tokenizer_encode(t, "a b c", 5, 0, &tl), -1);
    const char *msg = hd_last_error();
    if (strncmp(msg, "grow.json: ", 11) || !strstr(msg, "normalizer grows a 5-byte text")) fail_msg("%s", msg);
    assert_null(strchr(msg, '\n'));
    tokenizer_free(t);

    const char *meta = "{" TINY_MODEL ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                       "\"content\":\"\u2581\"}}";
    t = tokenizer_load_json_text(meta, strlen(meta), NULL, 0, "meta.json");
    if (!t) fail_msg("%s", hd_last_error());
    char spaces[10000];
    memset(spaces, ' ', sizeof spaces);
    assert_int_equal(tokenizer_encode(t, spaces, sizeof spaces, 0, &tl), 0);
    assert_int_equal(tokenizer_encode(t, "ab ab", 5, 0, &tl), 0);
    assert_int_equal(tl.n, 2);
    token_list_free(&tl);
    tokenizer_free(t);
}

/* ---- tests: the real tokenizers ---------------------------------------------------- */

static void real_tokenizer(const char *name)
{
    char path[512], cpath[512], fpath[512];
    snprintf(path, sizeof path, SHARED "/%s/tokenizer.json", name);
    snprintf(cpath, sizeof cpath, SHARED "/%s/tokenizer_config.json", name);
    snprintf(fpath, sizeof fpath, FIX "/%s.json", name);
    if (!exists(path)) {
        printf("# %s: %s is missing (a fresh clone has no ../shared/tokenizers): skipped\n", name, path);
        skip();
    }
    double t0 = hd_now_seconds();
    Tokenizer *t = tokenizer_load_json(path, cpath);
    if (!t) fail_msg("%s", hd_last_error());
    double load_s = hd_now_seconds() - t0;
    json_t *expect = load_json(fpath);
    assert_int_equal(tokenizer_bos_id(t), json_integer_value(json_object_get(expect, "bos_id")));
    assert_int_equal(tokenizer_eos_id(t), json_integer_value(json_object_get(expect, "eos_id")));
    Corpus c;
    corpus_load(&c);
    size_t bad = check_encode(name, t, &c, c.n, expect) + check_rest(name, t, &c, c.n, expect);
    printf("# %s: loaded in %.2f s; %zu corpus strings (hard + sampled prompts), %zu differ\n", name, load_s, c.n, bad);
    bad += check_sweep(name, t, expect);
    assert_int_equal(bad, 0);
    corpus_free(&c);
    json_decref(expect);
    tokenizer_free(t);
}

static void llama2_matches_hf(void **state) { (void)state; real_tokenizer("llama2"); }
static void llama3_matches_hf(void **state) { (void)state; real_tokenizer("llama3"); }
static void llama31_matches_hf(void **state) { (void)state; real_tokenizer("llama3.1"); }

/* Llama 2's vocabulary as GGUF "llama" arrays without merges: merges come
 * from the scores (-id here) the way transformers' GGUF converter makes them. */
static void llama2_arrays_merges_from_scores(void **state)
{
    (void)state;
    if (!exists(SHARED "/llama2/tokenizer.json")) skip();
    JsonArrays j;
    arrays_from_json(&j, SHARED "/llama2/tokenizer.json", 0);
    j.a.model = "llama";
    j.a.bos_id = 1;
    j.a.eos_id = 2;
    j.a.unk_id = 0;
    Tokenizer *t = tokenizer_from_arrays(&j.a, "llama2 arrays");
    if (!t) fail_msg("%s", hd_last_error());
    Corpus c;
    corpus_load(&c);
    json_t *expect = load_json(FIX "/llama2_scores.json");
    size_t bad = check_encode("llama2 (merges from scores)", t, &c, c.n_hard, expect);
    printf("# llama2 arrays, merges from scores: %zu hard-corpus strings, %zu differ\n", c.n_hard, bad);
    assert_int_equal(bad, 0);
    assert_true(tokenizer_adds_bos(t));
    json_decref(expect);
    corpus_free(&c);
    tokenizer_free(t);
    arrays_free(&j);
}

static void smollm2_from_gguf_matches_hf(void **state)
{
    (void)state;
    if (!exists(SMOL_GGUF)) {
        printf("# smollm2: %s is missing (make model): skipped\n", SMOL_GGUF);
        skip();
    }
    double t0 = hd_now_seconds();
    GgufFile g;
    if (gguf_open(&g, SMOL_GGUF)) fail_msg("%s", hd_last_error());
    Tokenizer *t = tokenizer_from_gguf(&g);
    if (!t) fail_msg("%s", hd_last_error());
    gguf_close(&g);
    double load_s = hd_now_seconds() - t0;
    json_t *expect = load_json(FIX "/smollm2.json");
    assert_int_equal(tokenizer_bos_id(t), 1);
    assert_int_equal(tokenizer_eos_id(t), 2);
    assert_false(tokenizer_adds_bos(t)); /* tokenizer.ggml.add_bos_token is false */
    Corpus c;
    corpus_load(&c);
    size_t bad = check_encode("smollm2", t, &c, c.n, expect) + check_rest("smollm2", t, &c, c.n, expect);
    printf("# smollm2 (GGUF): built in %.2f s; %zu corpus strings, %zu differ\n", load_s, c.n, bad);
    bad += check_sweep("smollm2", t, expect);
    assert_int_equal(bad, 0);
    tokenizer_free(t);
    /* The patched tokenizer.json the generator saved, when present. */
    if (exists(SMOL_JSON)) {
        t = tokenizer_load_json(SMOL_JSON, NULL);
        if (!t) fail_msg("%s", hd_last_error());
        bad = check_encode("smollm2 json", t, &c, c.n, expect);
        printf("# smollm2 (%s): %zu corpus strings, %zu differ\n", SMOL_JSON, c.n, bad);
        assert_int_equal(bad, 0);
        tokenizer_free(t);
    }
    corpus_free(&c);
    json_decref(expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_bytelevel_json),
        cmocka_unit_test(tiny_llama3_json),
        cmocka_unit_test(tiny_spm_json),
        cmocka_unit_test(tiny_bytelevel_arrays),
        cmocka_unit_test(tiny_llama3_arrays),
        cmocka_unit_test(tiny_spm_arrays),
        cmocka_unit_test(threads_share_a_tokenizer),
        cmocka_unit_test(token_bytes_spell_the_text),
        cmocka_unit_test(bad_input_gives_one_clear_error),
        cmocka_unit_test(normalizer_growth_is_bounded),
        cmocka_unit_test(llama2_matches_hf),
        cmocka_unit_test(llama3_matches_hf),
        cmocka_unit_test(llama31_matches_hf),
        cmocka_unit_test(llama2_arrays_merges_from_scores),
        cmocka_unit_test(smollm2_from_gguf_matches_hf),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
