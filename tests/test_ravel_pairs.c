/* ravel-pairs: the random number generator against known values, the
 * sampling rules, and the tool's output on the real RAVEL data checked
 * against an independent reading of the JSON files (jansson directly, not
 * common/ravel_data).  The tool is run as $BIN/ravel-pairs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "stream/header.h"
#include "ravel/known_filter.h"
#include "ravel/ravel_data.h"
#include "ravel/ravel_sample.h"
#include "base/rng.h"
#include "base/sha256.h"

#define DATA "data/ravel"
static const char *bin_dir(void)
{
    const char *b = getenv("BIN");
    return b && *b ? b : "bin";
}

/* ------------------------------------------------------------ helpers */

typedef struct {
    char *data;
    size_t size;
} Buf;

/* Runs a shell command, returns its stdout; *status gets the exit status. */
static Buf run(int *status, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    Buf b = {malloc(1 << 16), 0};
    size_t cap = 1 << 16, n;
    while ((n = fread(b.data + b.size, 1, cap - b.size, p)) > 0) {
        b.size += n;
        if (b.size == cap) b.data = realloc(b.data, cap *= 2);
    }
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    b.data = realloc(b.data, b.size + 1);
    b.data[b.size] = 0;
    return b;
}

static Buf run_ok(const char *args)
{
    int st;
    Buf b = run(&st, "%s/ravel-pairs --data " DATA " %s", bin_dir(), args);
    if (st != 0) fail_msg("ravel-pairs %s: exit status %d", args, st);
    return b;
}

/* Independent reference: the five JSON documents of one domain. */
typedef struct {
    json_t *ent, *prompts, *esplit, *psplit, *wiki;
} Ref;

static json_t *load_json(const char *fmt, const char *domain)
{
    char path[512], name[256];
    snprintf(name, sizeof name, fmt, domain);
    snprintf(path, sizeof path, DATA "/%s", name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) fail_msg("%s: %s", path, err.text);
    return j;
}

static Ref ref_load(const char *domain)
{
    Ref r;
    r.ent = load_json("ravel_%s_entity_attributes.json", domain);
    r.prompts = load_json("ravel_%s_attribute_to_prompts.json", domain);
    r.esplit = load_json("ravel_%s_entity_to_split.json", domain);
    r.psplit = load_json("ravel_%s_prompt_to_split.json", domain);
    r.wiki = load_json("wikipedia_%s_entity_prompts.json", domain);
    return r;
}

/* The five domains' JSON, loaded once for the whole test program. */
static const char *domains[] = {"city", "nobel_prize_winner", "occupation", "physical_object", "verb"};
static Ref refs[5];

static const Ref *ref_of(const char *domain)
{
    for (int d = 0; d < 5; d++)
        if (strcmp(domains[d], domain) == 0) return &refs[d];
    fail_msg("unknown domain '%s' in a record", domain);
    return NULL;
}

static void ref_free(Ref *r)
{
    json_decref(r->ent);
    json_decref(r->prompts);
    json_decref(r->esplit);
    json_decref(r->psplit);
    json_decref(r->wiki);
}

/* value(entity, attribute) from the JSON, "" when absent. */
static const char *ref_value(const Ref *r, const char *e, const char *a)
{
    json_t *v = json_object_get(json_object_get(r->ent, e), a);
    return v ? json_string_value(v) : "";
}

static int ref_template_of(const Ref *r, const char *attr, const char *t)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r->prompts, attr), i, x) if (strcmp(json_string_value(x), t) == 0) return 1;
    return 0;
}

/* Which item splits an output split admits. */
typedef struct {
    const char *split;       /* train / val / test */
    const char *split_type;  /* context / entity / both */
    int val_as_test;
} SplitCheck;

static int split_ok(const SplitCheck *s, const char *item)
{
    if (strcmp(item, s->split) == 0) return 1;
    return s->val_as_test && strcmp(s->split, "test") == 0 && strcmp(item, "val") == 0;
}

static char *fill(const char *t, const char *e)
{
    const char *s = strstr(t, "%s");
    assert_non_null(s);
    char *out = malloc(strlen(t) + strlen(e) + 1);
    memcpy(out, t, (size_t)(s - t));
    strcpy(out + (s - t), e);
    strcat(out, s + 2);
    return out;
}

/* A record's fields as C strings (NULL for nil), freed by rec_free. */
typedef struct {
    char *f[40];
    int n;
    const msgpack_object *o;
} Rec;

static const char *rs(Rec *r, const char *key)
{
    const msgpack_object *m = r->o;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0) {
            const msgpack_object *v = &m->via.map.ptr[i].val;
            if (v->type == MSGPACK_OBJECT_NIL) return NULL;
            if (v->type != MSGPACK_OBJECT_STR) fail_msg("field %s is not a string", key);
            char *s = malloc(v->via.str.size + 1);
            memcpy(s, v->via.str.ptr, v->via.str.size);
            s[v->via.str.size] = 0;
            r->f[r->n++] = s;
            return s;
        }
    }
    fail_msg("record has no field '%s'", key);
    return NULL;
}

static const msgpack_object *rget(const msgpack_object *m, const char *key)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static void rec_free(Rec *r)
{
    for (int i = 0; i < r->n; i++) free(r->f[i]);
    r->n = 0;
}

/* Walks the records of a stream: cb(record) for every `pair`. */
typedef void (*RecFn)(void *ctx, const msgpack_object *rec);
static long long for_each_pair(const Buf *b, RecFn cb, void *ctx, msgpack_object *header_out, msgpack_zone *z)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    long long n = 0, end_count = -1;
    int first = 1;
    while (msgpack_unpack_next(&u, b->data, b->size, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *o = &u.data;
        assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
        const msgpack_object *t = rget(o, "t");
        assert_non_null(t);
        if (first) {
            assert_true(t->via.str.size == 6 && memcmp(t->via.str.ptr, "header", 6) == 0);
            first = 0;
            if (header_out) {
                /* keep a deep copy alive in the caller's zone */
                msgpack_sbuffer sb;
                msgpack_sbuffer_init(&sb);
                msgpack_packer pk;
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                msgpack_pack_object(&pk, *o);
                char *copy = msgpack_zone_malloc(z, sb.size);
                memcpy(copy, sb.data, sb.size);
                msgpack_unpack(copy, sb.size, NULL, z, header_out);
                msgpack_sbuffer_destroy(&sb);
            }
            continue;
        }
        if (t->via.str.size == 3 && memcmp(t->via.str.ptr, "end", 3) == 0) {
            end_count = (long long)rget(o, "count")->via.u64;
            continue;
        }
        assert_true(t->via.str.size == 4 && memcmp(t->via.str.ptr, "pair", 4) == 0);
        if (cb) cb(ctx, o);
        n++;
    }
    assert_int_equal(off, b->size);
    assert_int_equal(end_count, n);
    msgpack_unpacked_destroy(&u);
    return n;
}

/* ------------------------------------------------------------ the checker */

typedef struct {
    SplitCheck split;          /* split.split NULL: any output split (the record's) */
    const char *domain;        /* NULL: any domain (the record's) */
    int require_diff_target;   /* isolation pairs must differ in A too */
    long long n;
    long long causal, isolate, wiki_sources;
} Checker;

/* Every claim a pair record makes, checked against the JSON. */
static void check_pair(void *ctx, const msgpack_object *o)
{
    Checker *c = ctx;
    Rec r = {.o = o};
    const char *domain = rs(&r, "domain");
    if (c->domain) assert_string_equal(domain, c->domain);
    const Ref *ref = ref_of(domain);
    SplitCheck split = c->split;
    const char *rsplit = rs(&r, "split");
    if (split.split) assert_string_equal(rsplit, split.split);
    split.split = rsplit;
    const char *kind = rs(&r, "kind"), *A = rs(&r, "target_attribute"), *Q = rs(&r, "queried_attribute");
    const char *e1 = rs(&r, "base_entity"), *e2 = rs(&r, "source_entity");
    const char *bt = rs(&r, "base_template"), *st = rs(&r, "source_template");
    const char *skind = rs(&r, "source_template_kind"), *sattr = rs(&r, "source_template_attribute");
    const char *label = rs(&r, "label"), *blabel = rs(&r, "base_label"), *ilabel = rs(&r, "inv_label");
    const char *slabel = rs(&r, "source_label");
    const char *bin = rs(&r, "base_input"), *sin = rs(&r, "source_input");
    assert_string_equal(rs(&r, "split_type"), split.split_type);
    int causal = strcmp(kind, "causal") == 0;
    assert_true(causal || strcmp(kind, "isolate") == 0);
    if (causal) {
        assert_string_equal(Q, A);
        assert_string_equal(label, ref_value(ref, e2, A));   /* source's value of the target */
        c->causal++;
    } else {
        assert_string_not_equal(Q, A);
        assert_string_equal(label, ref_value(ref, e1, Q));   /* base's value of the queried attribute */
        if (c->require_diff_target) assert_string_not_equal(ref_value(ref, e1, A), ref_value(ref, e2, A));
        c->isolate++;
    }
    assert_string_equal(blabel, ref_value(ref, e1, Q));
    assert_string_equal(ilabel, ref_value(ref, e2, Q));
    assert_string_not_equal(ref_value(ref, e1, Q), ref_value(ref, e2, Q));
    assert_true(*ref_value(ref, e1, Q) && *ref_value(ref, e2, Q) && *ref_value(ref, e1, A) && *ref_value(ref, e2, A));
    /* templates belong where the record says, and to the split */
    assert_true(ref_template_of(ref, Q, bt));
    int entity_split = strcmp(split.split_type, "context") != 0;
    int template_split = strcmp(split.split_type, "entity") != 0;
    if (template_split) assert_true(split_ok(&split, json_string_value(json_object_get(ref->psplit, bt))));
    if (entity_split) {
        assert_true(split_ok(&split, json_string_value(json_object_get(ref->esplit, e1))));
        assert_true(split_ok(&split, json_string_value(json_object_get(ref->esplit, e2))));
    }
    if (strcmp(skind, "wikipedia") == 0) {
        json_t *w = json_object_get(ref->wiki, st);
        assert_non_null(w);
        assert_string_equal(json_string_value(json_object_get(w, "entity")), e2);
        if (template_split) assert_true(split_ok(&split, json_string_value(json_object_get(w, "split"))));
        assert_null(sattr);
        assert_null(slabel);
        c->wiki_sources++;
    } else {
        assert_string_equal(skind, "attribute");
        assert_non_null(sattr);
        assert_true(ref_template_of(ref, sattr, st));
        if (template_split) assert_true(split_ok(&split, json_string_value(json_object_get(ref->psplit, st))));
        const char *v = ref_value(ref, e2, sattr);
        if (*v) assert_string_equal(slabel, v);
        else assert_null(slabel);
    }
    /* texts */
    char *x = fill(bt, e1);
    assert_string_equal(bin, x);
    free(x);
    x = fill(st, e2);
    assert_string_equal(sin, x);
    free(x);
    const char *bp = rs(&r, "base_prefix"), *bs = rs(&r, "base_suffix");
    const char *sp = rs(&r, "source_prefix"), *ss = rs(&r, "source_suffix");
    assert_int_equal(strlen(bp) + strlen(bs), strlen(bin));
    assert_memory_equal(bin, bp, strlen(bp));
    assert_string_equal(bin + strlen(bp), bs);
    assert_int_equal(strlen(sp) + strlen(ss), strlen(sin));
    assert_string_equal(sin + strlen(sp), ss);
    const msgpack_object *span = rget(o, "base_entity_span");
    uint64_t s0 = span->via.array.ptr[0].via.u64, s1 = span->via.array.ptr[1].via.u64;
    assert_int_equal(s1 - s0, strlen(e1));
    assert_int_equal(s1, strlen(bp));
    assert_memory_equal(bin + s0, e1, strlen(e1));
    span = rget(o, "source_entity_span");
    s0 = span->via.array.ptr[0].via.u64, s1 = span->via.array.ptr[1].via.u64;
    assert_int_equal(s1, strlen(sp));
    assert_memory_equal(sin + s0, e2, strlen(e2));
    x = causal ? fill(bt, e2) : strdup(bin);
    assert_string_equal(rs(&r, "verify_input"), x);
    free(x);
    char instr[4096];
    snprintf(instr, sizeof instr, "%s ; %s - %s", e1, e2, A);
    assert_string_equal(rs(&r, "instruction"), instr);
    char last = bin[strlen(bin) - 1];
    assert_string_equal(rs(&r, "answer_sep"), strchr(" \"'(", last) ? "" : " ");
    const char *id = rs(&r, "id");
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/%s/%s/%s/", domain, split.split, A, kind);
    assert_memory_equal(id, prefix, strlen(prefix));
    c->n++;
    rec_free(&r);
}

/* ------------------------------------------------------------ rng */

static void rng_known_values(void **state)
{
    (void)state;
    /* SplitMix64 from 0: the first outputs of Vigna's reference splitmix64.c */
    uint64_t sm = 0;
    assert_true(splitmix64_next(&sm) == 0xe220a8397b1dcdafULL);
    assert_true(splitmix64_next(&sm) == 0x6e789e6aa1b965f4ULL);
    assert_true(splitmix64_next(&sm) == 0x06c45d188009454fULL);
    /* xoshiro256** seeded by SplitMix64(42), computed with a separate
     * Python transcription of the reference C code */
    Rng r;
    rng_seed(&r, 42);
    assert_true(rng_next(&r) == 0x15780b2e0c2ec716ULL);
    assert_true(rng_next(&r) == 0x6104d9866d113a7eULL);
    assert_true(rng_next(&r) == 0xae17533239e499a1ULL);
    assert_true(rng_next(&r) == 0xecb8ad4703b360a1ULL);
    /* FNV-1a-64 published test vectors */
    assert_true(fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
    /* uniform by rejection, same Python transcription */
    rng_seed(&r, 7);
    uint64_t ns[] = {1, 2, 3, 10, 1000, 3552, (1ULL << 63) + 1};
    uint64_t want[] = {0, 0, 0, 4, 664, 521, 1120678062349637716ULL};
    for (int i = 0; i < 7; i++) assert_true(rng_uniform(&r, ns[i]) == want[i]);
    /* the stream key of hyperdas(7) 10.8 */
    assert_true(ravel_stream_key(42, "city", "train", "Country", "causal", "-") == 0x67b5216a749fa3d4ULL);
}

static void rng_uniform_is_fair(void **state)
{
    (void)state;
    Rng r;
    rng_seed(&r, 1);
    int hist[3] = {0};
    for (int i = 0; i < 30000; i++) hist[rng_uniform(&r, 3)]++;
    for (int i = 0; i < 3; i++) assert_true(hist[i] > 9500 && hist[i] < 10500);
    for (int i = 0; i < 1000; i++) assert_true(rng_uniform(&r, 7) < 7);
}

/* ------------------------------------------------------------ loading */

static void loader_matches_spec_counts(void **state)
{
    (void)state;
    RavelDomain *d = ravel_domain_load(DATA, "city", NULL);
    assert_non_null(d);
    assert_int_equal(d->n_entities, 3552);
    assert_int_equal(d->n_templates, 273);
    assert_int_equal(d->n_wiki, 938);
    const char *attrs[] = {"Continent", "Country", "Language", "Latitude", "Longitude", "Timezone"};
    int distinct[] = {6, 158, 171, 122, 317, 267};
    assert_int_equal(d->n_attributes, 6);
    for (int a = 0; a < 6; a++) {
        assert_string_equal(d->attributes[a].name, attrs[a]);
        assert_int_equal(d->attributes[a].n_values, distinct[a]);
    }
    for (int e = 1; e < d->n_entities; e++) assert_true(strcmp(d->entities[e - 1].name, d->entities[e].name) < 0);
    for (int t = 1; t < d->n_templates; t++) assert_true(strcmp(d->templates[t - 1].text, d->templates[t].text) < 0);
    int n_train = 0;
    for (int e = 0; e < d->n_entities; e++) n_train += d->entities[e].split == RAVEL_TRAIN;
    assert_int_equal(n_train, 1787);
    ravel_domain_free(d);
    /* occupation: Gender Bias has templates but no values */
    d = ravel_domain_load(DATA, "occupation", NULL);
    assert_non_null(d);
    int gb = ravel_attribute_index(d, "Gender Bias");
    assert_true(gb >= 0);
    assert_false(d->attributes[gb].has_values);
    assert_int_equal(d->attributes[gb].n_templates, 8);
    ravel_domain_free(d);
    /* nobel: two entities without values are kept but have none */
    d = ravel_domain_load(DATA, "nobel_prize_winner", NULL);
    assert_non_null(d);
    int e = ravel_entity_index(d, "Michael Houghton");
    assert_true(e >= 0);
    assert_null(d->entities[e].values[0]);
    ravel_domain_free(d);
}

static void fill_and_separator(void **state)
{
    (void)state;
    size_t slot;
    char *s = ravel_fill_template("%s is in", "Paris", &slot);
    assert_string_equal(s, "Paris is in");
    assert_int_equal(slot, 0);
    free(s);
    /* no printf semantics: a '%' in the entity stays as it is */
    s = ravel_fill_template("[{\"city\": \"%s\", \"country\": \"", "100% x", &slot);
    assert_string_equal(s, "[{\"city\": \"100% x\", \"country\": \"");
    assert_int_equal(slot, 11);
    free(s);
    assert_string_equal(ravel_answer_sep("is in"), " ");
    assert_string_equal(ravel_answer_sep("is in "), "");
    assert_string_equal(ravel_answer_sep("\"country\": \""), "");
    assert_string_equal(ravel_answer_sep("born ("), "");
    assert_string_equal(ravel_answer_sep("it's '"), "");
    assert_string_equal(ravel_answer_sep("a:"), " ");
}

/* A pool that has one value for an attribute can never give a valid
 * pair: the sampler must fail with a message, not loop.  (A domain with
 * one value for an attribute in all its entities is refused at load.) */
static void impossible_pool_fails_cleanly(void **state)
{
    (void)state;
    json_error_t err;
    json_t *docs[RAVEL_N_FILES] = {
        json_loads("{\"a\":{\"X\":\"1\",\"Y\":\"p\"},\"b\":{\"X\":\"1\",\"Y\":\"q\"},"
                   "\"c\":{\"X\":\"2\",\"Y\":\"r\"}}", 0, &err),
        json_loads("{\"X\":[\"%s has X\"],\"Y\":[\"%s has Y\"]}", 0, &err),
        json_loads("{\"a\":\"train\",\"b\":\"train\",\"c\":\"test\"}", 0, &err),
        json_loads("{\"%s has X\":\"train\",\"%s has Y\":\"train\"}", 0, &err),
        json_loads("{}", 0, &err)};
    const char *names[RAVEL_N_FILES] = {"e", "p", "es", "ps", "w"};
    RavelDomain *d = ravel_domain_from_json("toy", docs, names, NULL);
    assert_non_null(d);
    RavelSplitSpec spec = {RAVEL_TRAIN, RAVEL_SPLIT_BOTH, 0, RAVEL_PROMPTS_BOTH};
    RavelPools p;
    assert_int_equal(ravel_pools_init(&p, d, &spec), 0);
    RavelGroup g;
    assert_int_equal(ravel_group_init(&g, &p, RAVEL_CAUSAL, 0, 0, 0, 42), 0);
    assert_int_equal(g.n_pairs, 0);
    RavelDraw dr;
    assert_int_equal(ravel_group_draw(&g, &dr), -1);
    assert_non_null(strstr(hd_last_error(), "no valid pair"));
    ravel_group_free(&g);
    /* Y differs, so causal Y works and isolation X (queried X) cannot */
    assert_int_equal(ravel_group_init(&g, &p, RAVEL_CAUSAL, 1, 1, 0, 42), 0);
    assert_int_equal(g.n_pairs, 2);          /* (a,b) and (b,a), one template */
    assert_int_equal(ravel_group_draw(&g, &dr), 0);
    assert_true(dr.e1 != dr.e2);
    ravel_group_free(&g);
    ravel_pools_free(&p);
    ravel_domain_free(d);
    /* a template with two slots is refused with the file name */
    json_decref(docs[1]);
    docs[1] = json_loads("{\"X\":[\"%s has %s\"],\"Y\":[\"%s has Y\"]}", 0, &err);
    assert_null(ravel_domain_from_json("toy", docs, names, NULL));
    assert_non_null(strstr(hd_last_error(), "p: attribute 'X'"));
    for (int f = 0; f < RAVEL_N_FILES; f++) json_decref(docs[f]);
}

/* What a domain of one's own gets wrong is refused at load, naming the
 * file: one value for every entity, values without templates, a key
 * missing from one entity. */
static void malformed_domains_name_the_file(void **state)
{
    (void)state;
    static const struct {
        const char *entities, *prompts, *message;
    } cases[] = {
        {"{\"a\":{\"X\":\"1\"},\"b\":{\"X\":\"1\"}}", "{\"X\":[\"%s x\"]}",
         "e: attribute 'X' has one value ('1') for every entity"},
        {"{\"a\":{\"X\":\"1\",\"Z\":\"u\"},\"b\":{\"X\":\"2\",\"Z\":\"v\"}}", "{\"X\":[\"%s x\"]}",
         "p: no template for attribute 'Z'"},
        {"{\"a\":{\"X\":\"1\"},\"b\":{\"X\":\"2\",\"Z\":\"v\"}}", "{\"X\":[\"%s x\"],\"Z\":[\"%s z\"]}",
         "e: entity 'a' has no value for attribute 'Z'"},
        {"{\"a\":{\"X\":\"1\"},\"b\":{\"X\":\"2\"}}", "{\"X\":[\"x\"]}",
         "p: attribute 'X': template 'x' does not contain exactly one %s"},
    };
    const char *names[RAVEL_N_FILES] = {"e", "p", "es", "ps", "w"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t err;
        json_t *docs[RAVEL_N_FILES] = {json_loads(cases[i].entities, 0, &err), json_loads(cases[i].prompts, 0, &err)};
        assert_null(ravel_domain_from_json("toy", docs, names, NULL));
        if (!strstr(hd_last_error(), cases[i].message)) fail_msg("case %zu: %s", i, hd_last_error());
        json_decref(docs[0]);
        json_decref(docs[1]);
    }
}

/* Without split files: the hash split's counts, and a split that depends
 * on the names alone (the same domain written in another key order splits
 * the same). */
static void hash_split_without_split_files(void **state)
{
    (void)state;
    static const int table[][5] = {   /* n, val, test -> n_val, n_test */
        {1, 20, 20, 0, 0}, {2, 20, 20, 0, 1}, {3, 20, 20, 1, 1}, {6, 20, 20, 1, 1},
        {8, 20, 20, 2, 2}, {45, 20, 20, 9, 9}, {10, 0, 30, 0, 3}, {10, 50, 49, 4, 5}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        RavelHashSplit hs = {table[i][1] / 100.0, table[i][2] / 100.0};
        int v, t;
        ravel_hash_split_counts(table[i][0], &hs, &v, &t);
        if (v != table[i][3] || t != table[i][4])
            fail_msg("n %d: val %d test %d, wanted %d %d", table[i][0], v, t, table[i][3], table[i][4]);
    }
    const char *names[RAVEL_N_FILES] = {"e", "p", "es", "ps", "w"};
    static const char *const ents[2] = {
        "{\"a\":{\"X\":\"1\"},\"b\":{\"X\":\"2\"},\"c\":{\"X\":\"3\"},\"d\":{\"X\":\"1\"},\"e\":{\"X\":\"2\"}}",
        "{\"e\":{\"X\":\"2\"},\"d\":{\"X\":\"1\"},\"c\":{\"X\":\"3\"},\"b\":{\"X\":\"2\"},\"a\":{\"X\":\"1\"}}"};
    static const char *const prompts[2] = {"{\"X\":[\"%s 1\",\"%s 2\",\"%s 3\",\"%s 4\"]}",
                                           "{\"X\":[\"%s 4\",\"%s 3\",\"%s 2\",\"%s 1\"]}"};
    int splits[2][9];
    RavelHashSplit hs = {0.2, 0.2};
    for (int k = 0; k < 2; k++) {
        json_error_t err;
        json_t *docs[RAVEL_N_FILES] = {json_loads(ents[k], 0, &err), json_loads(prompts[k], 0, &err)};
        RavelDomain *d = ravel_domain_from_json("toy", docs, names, &hs);
        assert_non_null(d);
        assert_int_equal(d->n_wiki, 0);
        assert_false(d->present[RAVEL_FILE_ENTITY_TO_SPLIT]);
        int count[RAVEL_N_SPLITS] = {0};
        for (int e = 0; e < 5; e++) count[splits[k][e] = d->entities[e].split]++;
        assert_int_equal(count[RAVEL_TRAIN], 3);
        assert_int_equal(count[RAVEL_VAL], 1);
        assert_int_equal(count[RAVEL_TEST], 1);
        for (int t = 0; t < 4; t++) splits[k][5 + t] = d->templates[t].split;
        /* a split message names what set the split */
        assert_non_null(strstr(d->paths[RAVEL_FILE_ENTITY_TO_SPLIT], "e (hash split"));
        ravel_domain_free(d);
        json_decref(docs[0]);
        json_decref(docs[1]);
    }
    assert_memory_equal(splits[0], splits[1], sizeof splits[0]);
}


/* ------------------------------------------------------------ known filter */

typedef struct {
    const char *prompt, *answer;   /* answer NULL: key left out */
    int correct;
    const char *model;             /* NULL: key left out */
} KnownRec;

static void write_known(const char *path, const KnownRec *recs, int n, int with_other)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
#define S(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
    msgpack_pack_map(&pk, 8);
    S("t"), S("header"), S("format"), S("hyperdas"), S("version"), msgpack_pack_int(&pk, 1);
    S("kind"), S("known"), S("tool"), S("test"), S("tool_version"), S("0"), S("argv");
    msgpack_pack_array(&pk, 0);
    S("inputs");
    msgpack_pack_array(&pk, 0);
    if (with_other) {   /* another record type: skipped */
        msgpack_pack_map(&pk, 2);
        S("t"), S("note"), S("prompt"), msgpack_pack_int(&pk, 5);
    }
    for (int i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 3 + (recs[i].answer != NULL) + (recs[i].model != NULL));
        S("t"), S("known"), S("prompt"), S(recs[i].prompt), S("correct");
        if (recs[i].correct) msgpack_pack_true(&pk);
        else msgpack_pack_false(&pk);
        if (recs[i].answer) S("answer"), S(recs[i].answer);
        if (recs[i].model) S("model"), S(recs[i].model);
    }
    msgpack_pack_map(&pk, 2);
    S("t"), S("end"), S("count"), msgpack_pack_int(&pk, n + with_other);
#undef S
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(sb.data, 1, sb.size, f);
    fclose(f);
    msgpack_sbuffer_destroy(&sb);
}

static void known_filter_rules(void **state)
{
    (void)state;
    char path[] = "/tmp/test_known_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    KnownRec recs[] = {
        {"Paris is in", "France", 1, "m"},
        {"Rome is in", "Italy", 0, "m"},
        {"Oslo is in", NULL, 1, "m"},            /* no answer: any answer */
        {"Bern is in", "Switzerland", 1, NULL},  /* no model named: fine */
        {"Bern is in", "Switzerland", 0, "m"},   /* contradiction: not known */
        {"Paris is in", "Frankreich", 1, "m"},   /* another answer for the same prompt */
    };
    write_known(path, recs, 6, 1);
    KnownFilter *f = known_filter_load(path);
    assert_non_null(f);
    assert_int_equal(known_filter_records(f), 6);
    assert_int_equal(known_filter_n_correct(f), 4);
    assert_string_equal(known_filter_model(f), "m");
    assert_int_equal(known_filter_n_headers(f), 1);
    assert_int_equal(known_filter_correct(f, "Paris is in", "France"), 1);
    assert_int_equal(known_filter_correct(f, "Paris is in", "Frankreich"), 1);
    assert_int_equal(known_filter_correct(f, "Paris is in", "Germany"), 0);   /* wrong answer */
    assert_int_equal(known_filter_correct(f, "Rome is in", "Italy"), 0);
    assert_int_equal(known_filter_correct(f, "Oslo is in", "Norway"), 1);
    assert_int_equal(known_filter_correct(f, "Bern is in", "Switzerland"), 0);
    assert_int_equal(known_filter_correct(f, "Lima is in", "Peru"), 0);       /* never asked */
    assert_int_equal(known_filter_correct(f, "Paris is i", "France"), 0);
    known_filter_free(f);
    /* two models in one stream: refused, naming the record */
    KnownRec mixed[] = {{"a", "b", 1, "m1"}, {"c", "d", 1, "m2"}};
    write_known(path, mixed, 2, 0);
    assert_null(known_filter_load(path));
    assert_non_null(strstr(hd_last_error(), "record 3: model 'm2'"));
    /* a known record without a boolean 'correct' */
    FILE *fp = fopen(path, "wb");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    header_pack(&pk, "known", NULL, 0);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "t", 1);
    msgpack_pack_str(&pk, 5), msgpack_pack_str_body(&pk, "known", 5);
    msgpack_pack_str(&pk, 6), msgpack_pack_str_body(&pk, "prompt", 6);
    msgpack_pack_str(&pk, 1), msgpack_pack_str_body(&pk, "x", 1);
    msgpack_pack_str(&pk, 7), msgpack_pack_str_body(&pk, "correct", 7);
    msgpack_pack_int(&pk, 1);
    fwrite(sb.data, 1, sb.size, fp);
    fclose(fp);
    msgpack_sbuffer_destroy(&sb);
    assert_null(known_filter_load(path));
    assert_non_null(strstr(hd_last_error(), "record 2: known record has no boolean 'correct'"));
    unlink(path);
}

/* ------------------------------------------------------------ real data */

/* Runs the tool and checks every record; returns the checker's tallies. */
static Checker check_run(const char *args, SplitCheck split)
{
    Buf b = run_ok(args);
    Checker c = {.split = split};
    long long n = for_each_pair(&b, check_pair, &c, NULL, NULL);
    assert_int_equal(n, c.n);
    assert_true(c.causal > 0 && c.isolate > 0);
    free(b.data);
    return c;
}

/* Labels equal the JSON values, texts are the filled templates, and no
 * entity or template of another split leaks in: every domain, every split
 * and split type, sampled mode.  (One run per split type keeps the test
 * fast under the sanitizers.) */
static void labels_and_splits_match_json(void **state)
{
    (void)state;
    const char *types[] = {"context", "entity", "both"};
    for (int t = 0; t < 3; t++) {
        char args[512];
        snprintf(args, sizeof args, "--domain city,nobel_prize_winner,occupation,physical_object,verb "
                 "--split train,val,test --split-type %s -n 60 --seed 7", types[t]);
        SplitCheck sc = {NULL, types[t], 0};
        Checker c = check_run(args, sc);
        /* 6+5+3+4+4 = 22 targets, 30 causal each, isolation 30/k each, 3 splits */
        assert_int_equal(c.causal, 22 * 30 * 3);
        assert_int_equal(c.isolate, (6 * 5 * 6 + 5 * 4 * 7 + 3 * 2 * 15 + 4 * 3 * 10 + 4 * 3 * 10) * 3);
    }
    /* HyperDAS's test = val + test templates */
    SplitCheck sc = {"test", "context", 1};
    check_run("--domain city --split test --val-as-test -n 400", sc);
    /* wiki-only sources */
    SplitCheck sc2 = {"train", "both", 0};
    Checker c = check_run("--domain verb --split-type both -n 100 --prompts wikipedia", sc2);
    assert_int_equal(c.wiki_sources, c.n);
    /* ravel-only sources */
    c = check_run("--domain occupation -n 100 --prompts ravel", (SplitCheck){"train", "context", 0});
    assert_int_equal(c.wiki_sources, 0);
}

/* -n N with 1:1 and k isolation attributes gives N/2 causal and N/(2k)
 * per isolation attribute (hyperdas(7) 10.5); iso-ratio 0 gives causal only. */
static long long count_kind;
static char count_kind_name[16];
static void count_of_kind(void *ctx, const msgpack_object *o)
{
    (void)ctx;
    const msgpack_object *k = rget(o, "kind");
    if (k->via.str.size == strlen(count_kind_name) && memcmp(k->via.str.ptr, count_kind_name, k->via.str.size) == 0)
        count_kind++;
}

static void counts_follow_ratio(void **state)
{
    (void)state;
    Buf b = run_ok("--domain city --attribute Country -n 1000");
    strcpy(count_kind_name, "causal");
    count_kind = 0;
    assert_int_equal(for_each_pair(&b, count_of_kind, NULL, NULL, NULL), 500 + 5 * 100);
    assert_int_equal(count_kind, 500);
    free(b.data);
    b = run_ok("--domain city --attribute Country -n 1000 --iso-ratio 0");
    assert_int_equal(for_each_pair(&b, NULL, NULL, NULL, NULL), 1000);
    free(b.data);
    b = run_ok("--domain city --attribute Country -n 1000 --iso-ratio 3:1");
    count_kind = 0;
    assert_int_equal(for_each_pair(&b, count_of_kind, NULL, NULL, NULL), 250 + 5 * 150);
    assert_int_equal(count_kind, 250);
    free(b.data);
}

/* Exhaustive mode: every causal base prompt exactly once; isolation base
 * prompts distinct.  Checked on physical_object with the independent
 * checker. */
typedef struct {
    Checker c;
    json_t *seen;     /* "kind|Q|e1|template" -> count */
} Exhaustive;

static void exhaustive_pair(void *ctx, const msgpack_object *o)
{
    Exhaustive *x = ctx;
    check_pair(&x->c, o);
    Rec r = {.o = o};
    char key[4096];
    snprintf(key, sizeof key, "%s|%s|%s|%s|%s", rs(&r, "target_attribute"), rs(&r, "kind"),
             rs(&r, "queried_attribute"), rs(&r, "base_entity"), rs(&r, "base_template"));
    assert_null(json_object_get(x->seen, key));
    json_object_set_new(x->seen, key, json_true());
    rec_free(&r);
}

static void exhaustive_uses_each_base_prompt_once(void **state)
{
    (void)state;
    const Ref *ref = ref_of("physical_object");
    Buf b = run_ok("--domain physical_object --split test --split-type both");
    Exhaustive x = {.c = {.split = {"test", "both", 0}, .domain = "physical_object"}, .seen = json_object()};
    long long n = for_each_pair(&b, exhaustive_pair, &x, NULL, NULL);
    /* independent count of causal base prompts: test entities x test templates per attribute
     * (every physical_object test entity has a partner for every attribute) */
    long long n_ent = 0, causal = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ref->esplit, k, v) n_ent += strcmp(json_string_value(v), "test") == 0;
    json_object_foreach(ref->prompts, k, v) {
        size_t i;
        json_t *t;
        json_array_foreach(v, i, t) causal += n_ent * (strcmp(json_string_value(json_object_get(ref->psplit,
                                                                 json_string_value(t))), "test") == 0);
    }
    assert_int_equal(x.c.causal, causal);
    assert_int_equal(n, x.c.causal + x.c.isolate);
    /* 1:1 up to rounding down per isolation attribute (3 per target) */
    assert_true(x.c.isolate <= causal && x.c.isolate > causal - 4 * 3);
    json_decref(x.seen);
    free(b.data);
}

/* ------------------------------------------------------------ counts */

/* Independent count for one group line of --count-only:
 * entities with values in the pool, base prompts with a partner, and
 * distinct valid (e1, e2, base template) triples. */
static void independent_count(const Ref *ref, const SplitCheck *s, const char *A, const char *Q,
                              long long *ents, long long *tmpl, long long *base_prompts, long long *pairs)
{
    int entity_split = strcmp(s->split_type, "context") != 0;
    int template_split = strcmp(s->split_type, "entity") != 0;
    *tmpl = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(ref->prompts, Q), i, t) {
        const char *sp = json_string_value(json_object_get(ref->psplit, json_string_value(t)));
        *tmpl += !template_split || split_ok(s, sp);
    }
    json_t *value_count = json_object();   /* value of Q -> count, a hash table */
    long long n = 0;
    const char *e;
    json_t *attrs;
    json_object_foreach(ref->ent, e, attrs) {
        const char *sp = json_string_value(json_object_get(ref->esplit, e));
        if (entity_split && !split_ok(s, sp)) continue;
        const char *vq = ref_value(ref, e, Q), *va = ref_value(ref, e, A);
        if (!*vq || !*va) continue;
        n++;
        json_t *c = json_object_get(value_count, vq);
        json_object_set_new(value_count, vq, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    long long with_partner = 0, partners = 0;
    json_object_foreach(ref->ent, e, attrs) {
        const char *sp = json_string_value(json_object_get(ref->esplit, e));
        if (entity_split && !split_ok(s, sp)) continue;
        const char *vq = ref_value(ref, e, Q), *va = ref_value(ref, e, A);
        if (!*vq || !*va) continue;
        long long p = n - json_integer_value(json_object_get(value_count, vq));
        with_partner += p > 0;
        partners += p;
    }
    json_decref(value_count);
    *ents = n;
    *base_prompts = with_partner * *tmpl;
    *pairs = partners * *tmpl;
}

static void count_only_matches_independent_count(void **state)
{
    (void)state;
    const char *types[] = {"context", "entity", "both"};
    for (int ty = 0; ty < 3; ty++) {
        char args[512];
        snprintf(args, sizeof args, "--count-only --domain city,nobel_prize_winner,occupation,physical_object,verb "
                 "--split train,val,test --split-type %s", types[ty]);
        Buf b = run_ok(args);
        int lines = 0;
        for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n")) {
            if (line[0] == '#') continue;
            char f[10][256];
            int nf = sscanf(line, "%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]",
                            f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]);
            assert_int_equal(nf, 10);
            SplitCheck sc = {f[1], types[ty], 0};
            long long ents, tmpl, bp, pairs;
            independent_count(ref_of(f[0]), &sc, f[2], f[4], &ents, &tmpl, &bp, &pairs);
            if (atoll(f[5]) != ents || atoll(f[6]) != tmpl || atoll(f[7]) != bp || atoll(f[8]) != pairs)
                fail_msg("%s: independent count %lld %lld %lld %lld", line, ents, tmpl, bp, pairs);
            /* exhaustive causal emits every base prompt */
            if (strcmp(f[3], "causal") == 0) assert_int_equal(atoll(f[9]), bp);
            else assert_true(atoll(f[9]) <= bp);
            lines++;
        }
        /* 22 targets with (1 + k) groups each, 3 splits */
        assert_int_equal(lines, (6 * 6 + 5 * 5 + 3 * 3 + 4 * 4 + 4 * 4) * 3);
        free(b.data);
    }
}

/* --iso-require-diff-target: every isolation pair differs in A as well,
 * and the pair counts match a brute-force count over all entity pairs. */
static void iso_require_diff_target(void **state)
{
    (void)state;
    const char *args = "--domain physical_object --split train --split-type both -n 200 --iso-require-diff-target";
    Buf b = run_ok(args);
    Checker c = {.split = {"train", "both", 0}, .require_diff_target = 1};
    for_each_pair(&b, check_pair, &c, NULL, NULL);
    assert_int_equal(c.isolate, 4 * 3 * 33);
    free(b.data);
    char cargs[512];
    snprintf(cargs, sizeof cargs, "--count-only %s", args);
    b = run_ok(cargs);
    const Ref *ref = ref_of("physical_object");
    /* train entities and their values, as plain arrays */
    const char *names[1024];
    int n = 0;
    const char *e;
    json_t *v;
    json_object_foreach(ref->esplit, e, v) if (strcmp(json_string_value(v), "train") == 0) names[n++] = e;
    int lines = 0;
    for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char f[10][256];
        assert_int_equal(sscanf(line, "%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]",
                                f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]), 10);
        const char *A = f[2], *Q = f[4];
        long long tmpl = atoll(f[6]), triples = 0, with_partner = 0;
        for (int i = 0; i < n; i++) {
            long long p = 0;
            for (int j = 0; j < n; j++)
                p += strcmp(ref_value(ref, names[i], Q), ref_value(ref, names[j], Q)) != 0 &&
                     strcmp(ref_value(ref, names[i], A), ref_value(ref, names[j], A)) != 0;
            triples += p;
            with_partner += p > 0;
        }
        if (atoll(f[7]) != with_partner * tmpl || atoll(f[8]) != triples * tmpl)
            fail_msg("%s: brute force gives %lld base prompts, %lld pairs", line, with_partner * tmpl, triples * tmpl);
        lines++;
    }
    assert_int_equal(lines, 4 * 4);
    free(b.data);
}

/* The emit column equals what a real run writes, per group. */
typedef struct {
    json_t *counts;   /* "target|kind|queried" -> n */
} GroupCounter;

static void count_group(void *ctx, const msgpack_object *o)
{
    GroupCounter *g = ctx;
    Rec r = {.o = o};
    char key[512];
    snprintf(key, sizeof key, "%s|%s|%s", rs(&r, "target_attribute"), rs(&r, "kind"), rs(&r, "queried_attribute"));
    json_t *c = json_object_get(g->counts, key);
    json_object_set_new(g->counts, key, json_integer(c ? json_integer_value(c) + 1 : 1));
    rec_free(&r);
}

static void compare_emit_column(const char *args, const char *filter_args)
{
    char a[1024];
    snprintf(a, sizeof a, "%s %s", args, filter_args);
    Buf stream = run_ok(a);
    GroupCounter g = {json_object()};
    for_each_pair(&stream, count_group, &g, NULL, NULL);
    snprintf(a, sizeof a, "--count-only %s %s", args, filter_args);
    Buf table = run_ok(a);
    int lines = 0;
    for (char *line = strtok(table.data, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char f[10][256];
        assert_int_equal(sscanf(line, "%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]",
                                f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]), 10);
        char key[1024];
        snprintf(key, sizeof key, "%s|%s|%s", f[2], f[3], f[4]);
        json_t *c = json_object_get(g.counts, key);
        assert_int_equal(c ? json_integer_value(c) : 0, atoll(f[9]));
        lines++;
    }
    assert_int_equal((size_t)lines, json_object_size(g.counts));
    json_decref(g.counts);
    free(stream.data);
    free(table.data);
}

static void count_only_emit_matches_stream(void **state)
{
    (void)state;
    compare_emit_column("--domain occupation --split val", "");
    compare_emit_column("--domain physical_object --split test --split-type both -n 90", "");
}

/* ------------------------------------------------------------ determinism */

static void same_arguments_same_bytes(void **state)
{
    (void)state;
    Buf a = run_ok("--domain nobel_prize_winner,city -n 300 --seed 5");
    Buf b = run_ok("--domain nobel_prize_winner,city -n 300 --seed 5");
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.data, b.data, a.size);
    Buf c = run_ok("--domain nobel_prize_winner,city -n 300 --seed 6");
    assert_true(c.size != a.size || memcmp(a.data, c.data, a.size) != 0);
    free(a.data);
    free(b.data);
    free(c.data);
}

/* Records keyed by id, re-serialised without the fields that legitimately
 * depend on the run (none besides the header). */
typedef struct {
    json_t *by_id;    /* id -> base_input + source_input */
} Collect;

static void collect(void *ctx, const msgpack_object *o)
{
    Collect *c = ctx;
    char buf[1 << 15];
    size_t n = msgpack_object_print_buffer(buf, sizeof buf, *o);
    buf[n < sizeof buf ? n : sizeof buf - 1] = 0;
    Rec r = {.o = o};
    json_object_set_new(c->by_id, rs(&r, "id"), json_string(buf));
    rec_free(&r);
}

static void changing_one_count_keeps_other_records(void **state)
{
    (void)state;
    Buf a = run_ok("--domain city -n 200");
    Buf b = run_ok("--domain city -n 200 -n Country=90");
    Collect ca = {json_object()}, cb = {json_object()};
    for_each_pair(&a, collect, &ca, NULL, NULL);
    for_each_pair(&b, collect, &cb, NULL, NULL);
    const char *id;
    json_t *v;
    int other = 0, country = 0;
    json_object_foreach(cb.by_id, id, v) {
        json_t *w = json_object_get(ca.by_id, id);
        if (strstr(id, "/Country/")) {
            /* 45 causal (a prefix of the 100 drawn before) and 9 per isolation attribute */
            if (strstr(id, "/causal/")) {
                assert_non_null(w);
                assert_string_equal(json_string_value(v), json_string_value(w));
            }
            country++;
            continue;
        }
        assert_non_null(w);
        assert_string_equal(json_string_value(v), json_string_value(w));
        other++;
    }
    assert_int_equal(country, 45 + 5 * 9);
    assert_int_equal(other, 5 * (100 + 5 * 20));
    json_decref(ca.by_id);
    json_decref(cb.by_id);
    free(a.data);
    free(b.data);
}

/* ------------------------------------------------------------ filter */

/* A known stream written by hand (msgpack-c): every Color verification
 * prompt of physical_object, correct when the entity's name starts with a
 * letter before 'm', plus one record with a wrong answer that must not
 * count. */
static const char *write_known_stream(void)
{
    static char path[] = "/tmp/test_ravel_pairs_known_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
#define S(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
    msgpack_pack_map(&pk, 8);
    S("t"), S("header"), S("format"), S("hyperdas"), S("version"), msgpack_pack_int(&pk, 1);
    S("kind"), S("known"), S("tool"), S("test"), S("tool_version"), S("0"), S("argv");
    msgpack_pack_array(&pk, 0);
    S("inputs");
    msgpack_pack_array(&pk, 0);
    const Ref *ref = ref_of("physical_object");
    long long n = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(ref->prompts, "Color"), i, t) {
        const char *e;
        json_t *attrs;
        json_object_foreach(ref->ent, e, attrs) {
            char *prompt = fill(json_string_value(t), e);
            const char *answer = ref_value(ref, e, "Color");
            msgpack_pack_map(&pk, 5);
            S("t"), S("known"), S("prompt"), S(prompt), S("answer"), S(answer), S("correct");
            if (e[0] < 'm') msgpack_pack_true(&pk);
            else msgpack_pack_false(&pk);
            S("model"), S("hand-written");
            free(prompt);
            n++;
        }
    }
    /* a correct record whose answer is not the gold value: must not vouch */
    char *prompt = fill(json_string_value(json_array_get(json_object_get(ref->prompts, "Color"), 0)), "zucchini");
    msgpack_pack_map(&pk, 5);
    S("t"), S("known"), S("prompt"), S(prompt), S("answer"), S("no such colour"), S("correct");
    msgpack_pack_true(&pk);
    S("model"), S("hand-written");
    free(prompt);
    n++;
    msgpack_pack_map(&pk, 2);
    S("t"), S("end"), S("count");
    msgpack_pack_int64(&pk, n);
#undef S
    fwrite(sb.data, 1, sb.size, f);
    fclose(f);
    msgpack_sbuffer_destroy(&sb);
    return path;
}

typedef struct {
    json_t *seq;      /* array of "base_input|source_input" */
    int check_known;
    int n_filtered;
} FilterView;

static void filter_view(void *ctx, const msgpack_object *o)
{
    FilterView *v = ctx;
    Rec r = {.o = o};
    char key[8192];
    snprintf(key, sizeof key, "%s|%s|%s", rs(&r, "kind"), rs(&r, "base_input"), rs(&r, "source_input"));
    json_array_append_new(v->seq, json_string(key));
    const msgpack_object *f = rget(o, "filtered");
    v->n_filtered += f->via.boolean;
    if (v->check_known) {
        /* only causal Color records are asked for; their verification
         * prompt is the base template with e2, known-correct iff e2 < 'm' */
        assert_string_equal(rs(&r, "kind"), "causal");
        assert_true(rs(&r, "source_entity")[0] < 'm');
    }
    rec_free(&r);
}

static void filter_keeps_known_pairs(void **state)
{
    (void)state;
    const char *known = write_known_stream();
    char args[512];
    /* causal only, so every kept record is covered by the known stream */
    Buf all = run_ok("--domain physical_object --attribute Color -n 400 --iso-ratio 0");
    snprintf(args, sizeof args, "--domain physical_object --attribute Color -n 400 --iso-ratio 0 --filter %s", known);
    Buf kept = run_ok(args);
    FilterView va = {json_array(), 0, 0}, vk = {json_array(), 1, 0};
    for_each_pair(&all, filter_view, &va, NULL, NULL);
    long long nk = for_each_pair(&kept, filter_view, &vk, NULL, NULL);
    assert_int_equal(vk.n_filtered, nk);
    assert_int_equal(va.n_filtered, 0);
    /* the filter consumes no random numbers: the kept records are exactly
     * the unfiltered records that pass, in the same order */
    size_t j = 0, i;
    json_t *x;
    json_array_foreach(va.seq, i, x) {
        const char *s = json_string_value(x);
        if (j < json_array_size(vk.seq) && strcmp(s, json_string_value(json_array_get(vk.seq, j))) == 0) j++;
    }
    assert_int_equal(j, json_array_size(vk.seq));
    assert_true(nk > 100 && nk < 400);
    /* --refill reaches the requested count of kept records */
    snprintf(args, sizeof args,
             "--domain physical_object --attribute Color -n 400 --iso-ratio 0 --filter %s --refill", known);
    Buf refill = run_ok(args);
    FilterView vr = {json_array(), 1, 0};
    assert_int_equal(for_each_pair(&refill, filter_view, &vr, NULL, NULL), 400);
    /* exhaustive + refill: every base prompt with a known partner is kept */
    snprintf(args, sizeof args,
             "--domain physical_object --attribute Color --iso-ratio 0 --split-type both --filter %s --refill", known);
    Buf ex = run_ok(args);
    FilterView ve = {json_array(), 1, 0};
    long long ne = for_each_pair(&ex, filter_view, &ve, NULL, NULL);
    snprintf(args, sizeof args, "--count-only --domain physical_object --attribute Color --iso-ratio 0 --split-type both");
    Buf table = run_ok(args);
    char *line = strchr(table.data, '\n') + 1;   /* the one line after the column names */
    long long bp = 0;
    char f[10][256];
    assert_int_equal(sscanf(line, "%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]\t%255[^\t]",
                            f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]), 8);
    bp = atoll(f[7]);
    assert_int_equal(ne, bp);   /* every base prompt has some known source entity */
    json_decref(va.seq);
    json_decref(vk.seq);
    json_decref(vr.seq);
    json_decref(ve.seq);
    free(all.data);
    free(kept.data);
    free(refill.data);
    free(ex.data);
    free(table.data);
    /* the header records the filter */
    msgpack_zone z;
    msgpack_zone_init(&z, 4096);
    msgpack_object h;
    Buf again = run_ok("--domain physical_object --attribute Color -n 10 --iso-ratio 0");
    for_each_pair(&again, NULL, NULL, &h, &z);
    assert_int_equal(rget(&h, "filter")->type, MSGPACK_OBJECT_NIL);
    free(again.data);
    snprintf(args, sizeof args, "--domain physical_object --attribute Color -n 10 --iso-ratio 0 --filter %s", known);
    again = run_ok(args);
    for_each_pair(&again, NULL, NULL, &h, &z);
    const msgpack_object *fo = rget(&h, "filter");
    assert_int_equal(fo->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(rget(fo, "known")->via.u64, 37 * 563 + 1);
    assert_int_equal(rget(&h, "inputs")->via.array.size, 1);
    free(again.data);
    msgpack_zone_destroy(&z);
    unlink(known);
}

/* The header carries the data files' checksums. */
static void header_has_checksums(void **state)
{
    (void)state;
    Buf b = run_ok("--domain verb -n 4");
    msgpack_zone z;
    msgpack_zone_init(&z, 4096);
    msgpack_object h;
    for_each_pair(&b, NULL, NULL, &h, &z);
    const msgpack_object *files = rget(&h, "data_files");
    assert_int_equal(files->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(files->via.map.size, 5);
    char sum[65], path[512];
    snprintf(path, sizeof path, DATA "/ravel_verb_entity_attributes.json");
    assert_int_equal(sha256_file_hex(path, sum), 0);
    const msgpack_object *s = rget(files, "ravel_verb_entity_attributes.json");
    assert_non_null(s);
    assert_memory_equal(s->via.str.ptr, sum, 64);
    assert_int_equal(rget(&h, "seed")->via.u64, 42);
    msgpack_zone_destroy(&z);
    free(b.data);
}

static int setup(void **state)
{
    (void)state;
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    for (int d = 0; d < 5; d++) refs[d] = ref_load(domains[d]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int d = 0; d < 5; d++) ref_free(&refs[d]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_known_values),
        cmocka_unit_test(rng_uniform_is_fair),
        cmocka_unit_test(loader_matches_spec_counts),
        cmocka_unit_test(fill_and_separator),
        cmocka_unit_test(impossible_pool_fails_cleanly),
        cmocka_unit_test(malformed_domains_name_the_file),
        cmocka_unit_test(hash_split_without_split_files),
        cmocka_unit_test(known_filter_rules),
        cmocka_unit_test(labels_and_splits_match_json),
        cmocka_unit_test(counts_follow_ratio),
        cmocka_unit_test(exhaustive_uses_each_base_prompt_once),
        cmocka_unit_test(count_only_matches_independent_count),
        cmocka_unit_test(iso_require_diff_target),
        cmocka_unit_test(count_only_emit_matches_stream),
        cmocka_unit_test(same_arguments_same_bytes),
        cmocka_unit_test(changing_one_count_keeps_other_records),
        cmocka_unit_test(filter_keeps_known_pairs),
        cmocka_unit_test(header_has_checksums),
    };
    /* RAVEL_TEST_FILTER=name runs one test (handy for timing). */
    if (getenv("RAVEL_TEST_FILTER")) cmocka_set_test_filter(getenv("RAVEL_TEST_FILTER"));
    return cmocka_run_group_tests_name("ravel_pairs", tests, setup, teardown);
}
