#include "ravel/ravel_data.h"
#include "base/error.h"
#include "base/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const split_names[RAVEL_N_SPLITS] = {"train", "val", "test"};

const char *ravel_split_name(int split)
{
    return split >= 0 && split < RAVEL_N_SPLITS ? split_names[split] : "?";
}

int ravel_split_parse(const char *s)
{
    for (int i = 0; i < RAVEL_N_SPLITS; i++)
        if (strcmp(s, split_names[i]) == 0) return i;
    return -1;
}

void ravel_file_name(const char *domain, int file, char *out, size_t size)
{
    static const char *const patterns[RAVEL_N_FILES] = {
        "ravel_%s_entity_attributes.json", "ravel_%s_attribute_to_prompts.json",
        "ravel_%s_entity_to_split.json", "ravel_%s_prompt_to_split.json",
        "wikipedia_%s_entity_prompts.json"};
    snprintf(out, size, patterns[file], domain);
}

int ravel_file_optional(int file)
{
    return file != RAVEL_FILE_ENTITY_ATTRIBUTES && file != RAVEL_FILE_ATTRIBUTE_TO_PROMPTS;
}

static int cmp_str_ptr(const void *a, const void *b);

/* A domain is there when its entity file is: the name of that file is
 * what ravel_D_entity_attributes.json gives back for D. */
int ravel_domain_exists(const char *dir, const char *domain, char **valid)
{
    char name[1024], path[4096];
    ravel_file_name(domain, RAVEL_FILE_ENTITY_ATTRIBUTES, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (!strchr(domain, '/') && *domain && stat(path, &st) == 0) return 1;
    static const char prefix[] = "ravel_", suffix[] = "_entity_attributes.json";
    const size_t np = sizeof prefix - 1, ns = sizeof suffix - 1;
    char **names = NULL;
    int n = 0;
    size_t total = 1;
    DIR *dp = opendir(dir);
    for (struct dirent *de; dp && (de = readdir(dp));) {
        size_t len = strlen(de->d_name);
        if (len <= np + ns || strncmp(de->d_name, prefix, np) != 0 || strcmp(de->d_name + len - ns, suffix) != 0)
            continue;
        names = hd_realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = hd_strndup(de->d_name + np, len - np - ns);
        total += len + 2;
    }
    if (dp) closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    *valid = hd_malloc(total);
    (*valid)[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strcat(*valid, ", ");
        strcat(*valid, names[i]);
        free(names[i]);
    }
    free(names);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of s in a sorted array of strings, or -1. */
static int find_sorted(char *const *names, int n, const char *s)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(names[mid], s);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* The JSON files hold templates with exactly one "%s"; filling is a plain
 * substring replacement of it, so anything else is rejected up front. */
static int count_slots(const char *t)
{
    int n = 0;
    for (const char *p = strstr(t, "%s"); p; p = strstr(p + 2, "%s")) n++;
    return n;
}

/* Keys of a JSON object, duplicated and sorted byte-wise. */
static char **sorted_keys(json_t *obj, int *n_out)
{
    int n = (int)json_object_size(obj);
    char **keys = hd_calloc(n ? n : 1, sizeof *keys);
    int i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) keys[i++] = hd_strdup(k);
    qsort(keys, n, sizeof *keys, cmp_str_ptr);
    *n_out = n;
    return keys;
}

static void free_strings(char **s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* ------------------------------------------------------------ building */

typedef struct {
    RavelDomain *d;
    const char *const *names;   /* file names for messages */
} Build;

static int fail_file(const Build *b, int file, const char *what)
{
    return hd_fail("%s: %s", b->names[file], what);
}

/* Entities and the attribute set: the union of the entities' attribute
 * keys and the prompt file's keys, sorted. */
static int build_attributes(Build *b, json_t *ent_doc, json_t *prompt_doc)
{
    RavelDomain *d = b->d;
    if (!json_is_object(ent_doc)) return fail_file(b, RAVEL_FILE_ENTITY_ATTRIBUTES, "not a JSON object");
    if (!json_is_object(prompt_doc))
        return fail_file(b, RAVEL_FILE_ATTRIBUTE_TO_PROMPTS, "not a JSON object");
    if (json_object_size(ent_doc) == 0) return fail_file(b, RAVEL_FILE_ENTITY_ATTRIBUTES, "no entities");
    if (json_object_size(prompt_doc) == 0)
        return fail_file(b, RAVEL_FILE_ATTRIBUTE_TO_PROMPTS, "no attributes");

    int n_names;
    char **names = sorted_keys(ent_doc, &n_names);
    d->n_entities = n_names;
    d->entities = hd_calloc(n_names, sizeof *d->entities);
    for (int i = 0; i < n_names; i++) d->entities[i].name = names[i];
    free(names);

    /* The attribute set: every key any entity has, and every attribute of
     * the prompt file.  Every entity must have every entity key (RAVEL
     * writes "" for an unknown value), so that a key missing from one
     * entity is reported as that, not taken as "no value". */
    int n_ent_attrs = 0;
    char **ent_attrs = NULL;
    for (int e = 0; e < n_names; e++) {
        json_t *obj = json_object_get(ent_doc, d->entities[e].name);
        if (!json_is_object(obj)) {
            hd_fail("entity '%s': not a JSON object", d->entities[e].name);
            free_strings(ent_attrs, n_ent_attrs);
            return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_ENTITY_ATTRIBUTES]);
        }
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            if (find_sorted(ent_attrs, n_ent_attrs, k) >= 0) continue;
            /* insert in order (few keys; usually every entity has the same) */
            int at = n_ent_attrs;
            while (at > 0 && strcmp(ent_attrs[at - 1], k) > 0) at--;
            ent_attrs = hd_realloc(ent_attrs, (size_t)(n_ent_attrs + 1) * sizeof *ent_attrs);
            memmove(ent_attrs + at + 1, ent_attrs + at, (size_t)(n_ent_attrs - at) * sizeof *ent_attrs);
            ent_attrs[at] = hd_strdup(k);
            n_ent_attrs++;
        }
    }
    int n_prompt_attrs;
    char **prompt_attrs = sorted_keys(prompt_doc, &n_prompt_attrs);
    char **all = hd_calloc((size_t)(n_ent_attrs + n_prompt_attrs) + 1, sizeof *all);
    int n_all = 0;
    for (int i = 0; i < n_ent_attrs; i++) all[n_all++] = ent_attrs[i];
    for (int i = 0; i < n_prompt_attrs; i++)
        if (find_sorted(ent_attrs, n_ent_attrs, prompt_attrs[i]) < 0) all[n_all++] = prompt_attrs[i];
    qsort(all, n_all, sizeof *all, cmp_str_ptr);
    d->n_attributes = n_all;
    d->attributes = hd_calloc(n_all ? (size_t)n_all : 1, sizeof *d->attributes);
    for (int i = 0; i < n_all; i++) d->attributes[i].name = hd_strdup(all[i]);
    free(all);
    free_strings(prompt_attrs, n_prompt_attrs);

    int rc = 0;
    for (int e = 0; e < d->n_entities && rc == 0; e++) {
        RavelEntity *ent = &d->entities[e];
        ent->values = hd_calloc(n_all ? (size_t)n_all : 1, sizeof *ent->values);
        ent->value_ids = hd_calloc(n_all ? (size_t)n_all : 1, sizeof *ent->value_ids);
        json_t *obj = json_object_get(ent_doc, ent->name);
        for (int a = 0; a < n_ent_attrs; a++) {
            json_t *v = json_object_get(obj, ent_attrs[a]);
            if (!v) {
                rc = hd_fail("entity '%s' has no value for attribute '%s' (other entities have one; "
                             "\"\" means unknown)", ent->name, ent_attrs[a]);
                break;
            }
            if (!json_is_string(v)) {
                rc = hd_fail("entity '%s': value of '%s' is not a string", ent->name, ent_attrs[a]);
                break;
            }
            const char *s = json_string_value(v);
            int ai = ravel_attribute_index(d, ent_attrs[a]);
            if (*s) ent->values[ai] = hd_strdup(s);
        }
    }
    free_strings(ent_attrs, n_ent_attrs);
    if (rc < 0) return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_ENTITY_ATTRIBUTES]);
    return 0;
}

typedef struct {
    const char *text;
    int attribute;
} TemplateRef;

static int cmp_template_ref(const void *a, const void *b)
{
    return strcmp(((const TemplateRef *)a)->text, ((const TemplateRef *)b)->text);
}

static int build_templates(Build *b, json_t *prompt_doc)
{
    RavelDomain *d = b->d;
    size_t total = 0;
    const char *attr;
    json_t *list;
    json_object_foreach(prompt_doc, attr, list) {
        if (!json_is_array(list)) {
            hd_fail("attribute '%s': not a JSON array", attr);
            return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_ATTRIBUTE_TO_PROMPTS]);
        }
        total += json_array_size(list);
    }
    TemplateRef *refs = hd_calloc(total ? total : 1, sizeof *refs);
    size_t n = 0;
    int rc = 0;
    json_object_foreach(prompt_doc, attr, list) {
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) {
            if (!json_is_string(t)) {
                rc = hd_fail("attribute '%s': template %zu is not a string", attr, i);
                goto done;
            }
            if (count_slots(json_string_value(t)) != 1) {
                rc = hd_fail("attribute '%s': template '%s' does not contain exactly one %%s",
                             attr, json_string_value(t));
                goto done;
            }
            refs[n].text = json_string_value(t);
            refs[n].attribute = ravel_attribute_index(d, attr);
            n++;
        }
    }
    qsort(refs, n, sizeof *refs, cmp_template_ref);
    for (size_t i = 1; i < n; i++)
        if (strcmp(refs[i - 1].text, refs[i].text) == 0) {
            rc = hd_fail("template '%s' is listed twice (attributes '%s' and '%s')", refs[i].text,
                         d->attributes[refs[i - 1].attribute].name,
                         d->attributes[refs[i].attribute].name);
            goto done;
        }
    d->n_templates = (int)n;
    d->templates = hd_calloc(n ? n : 1, sizeof *d->templates);
    for (size_t i = 0; i < n; i++) {
        d->templates[i].text = hd_strdup(refs[i].text);
        d->templates[i].attribute = refs[i].attribute;
        d->templates[i].split = -1;
    }
done:
    free(refs);
    if (rc < 0) return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_ATTRIBUTE_TO_PROMPTS]);
    return 0;
}

/* A split file must map exactly the given key set to train/val/test. */
static int read_split_file(Build *b, int file, json_t *doc, int n_keys, const char *what,
                           int (*index_of)(const RavelDomain *, const char *), int *(*slot)(RavelDomain *, int))
{
    if (!json_is_object(doc)) return fail_file(b, file, "not a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) {
        int i = index_of(b->d, k);
        if (i < 0) {
            hd_fail("unknown %s '%s'", what, k);
            return hd_fail_prefix("%s: ", b->names[file]);
        }
        int s = json_is_string(v) ? ravel_split_parse(json_string_value(v)) : -1;
        if (s < 0) {
            hd_fail("%s '%s': split is not \"train\", \"val\" or \"test\"", what, k);
            return hd_fail_prefix("%s: ", b->names[file]);
        }
        *slot(b->d, i) = s;
    }
    for (int i = 0; i < n_keys; i++)
        if (*slot(b->d, i) < 0) {
            hd_fail("%s has no split: '%s'", what,
                    file == RAVEL_FILE_ENTITY_TO_SPLIT ? b->d->entities[i].name : b->d->templates[i].text);
            return hd_fail_prefix("%s: ", b->names[file]);
        }
    return 0;
}

static int *entity_split_slot(RavelDomain *d, int i) { return &d->entities[i].split; }
static int *template_split_slot(RavelDomain *d, int i) { return &d->templates[i].split; }

static int build_wiki(Build *b, json_t *doc)
{
    RavelDomain *d = b->d;
    json_t *none = NULL;
    if (!doc) doc = none = json_object();   /* no Wikipedia file: no wiki templates */
    if (!json_is_object(doc)) return fail_file(b, RAVEL_FILE_WIKIPEDIA, "not a JSON object");
    int n;
    char **texts = sorted_keys(doc, &n);
    d->n_wiki = n;
    d->wiki = hd_calloc(n ? n : 1, sizeof *d->wiki);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        RavelWiki *w = &d->wiki[i];
        w->text = texts[i];
        texts[i] = NULL;
        w->entity = -1;
        json_t *obj = json_object_get(doc, w->text);
        if (!json_is_object(obj)) {
            rc = hd_fail("template '%s': not a JSON object", w->text);
            break;
        }
        if (count_slots(w->text) != 1) {
            rc = hd_fail("template '%s' does not contain exactly one %%s", w->text);
            break;
        }
        json_t *ent = json_object_get(obj, "entity");
        json_t *split = json_object_get(obj, "split");
        if (!ent || !(json_is_null(ent) || json_is_string(ent))) {
            rc = hd_fail("template '%s': \"entity\" must be a string or null", w->text);
            break;
        }
        if (json_is_string(ent)) {
            w->entity = ravel_entity_index(d, json_string_value(ent));
            if (w->entity < 0) {
                rc = hd_fail("template '%s': unknown entity '%s'", w->text, json_string_value(ent));
                break;
            }
            d->entities[w->entity].n_wiki++;
        }
        w->split = json_is_string(split) ? ravel_split_parse(json_string_value(split)) : -1;
        if (w->split < 0) {
            rc = hd_fail("template '%s': \"split\" is not \"train\", \"val\" or \"test\"", w->text);
            break;
        }
    }
    free_strings(texts, n);
    json_decref(none);
    if (rc < 0) return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_WIKIPEDIA]);
    /* Per-entity lists, in ascending template order. */
    for (int e = 0; e < d->n_entities; e++) {
        d->entities[e].wiki = hd_calloc(d->entities[e].n_wiki ? d->entities[e].n_wiki : 1, sizeof(int));
        d->entities[e].n_wiki = 0;
    }
    for (int i = 0; i < n; i++) {
        int e = d->wiki[i].entity;
        if (e >= 0) d->entities[e].wiki[d->entities[e].n_wiki++] = i;
    }
    return 0;
}

/* Value ids and per-attribute template lists. */
static void build_indexes(RavelDomain *d)
{
    char **vals = hd_calloc(d->n_entities, sizeof *vals);
    for (int a = 0; a < d->n_attributes; a++) {
        RavelAttribute *at = &d->attributes[a];
        int n = 0;
        for (int e = 0; e < d->n_entities; e++)
            if (d->entities[e].values[a]) vals[n++] = d->entities[e].values[a];
        qsort(vals, n, sizeof *vals, cmp_str_ptr);
        int u = 0;
        for (int i = 0; i < n; i++)
            if (u == 0 || strcmp(vals[u - 1], vals[i]) != 0) vals[u++] = vals[i];
        at->n_values = u;
        at->has_values = u > 0;
        for (int e = 0; e < d->n_entities; e++) {
            const char *v = d->entities[e].values[a];
            d->entities[e].value_ids[a] = v ? find_sorted(vals, u, v) : -1;
        }
        at->n_templates = 0;
        for (int t = 0; t < d->n_templates; t++)
            if (d->templates[t].attribute == a) at->n_templates++;
        at->templates = hd_calloc(at->n_templates ? at->n_templates : 1, sizeof(int));
        at->n_templates = 0;
        for (int t = 0; t < d->n_templates; t++)
            if (d->templates[t].attribute == a) at->templates[at->n_templates++] = t;
    }
    free(vals);
}

/* What sampling cannot work with, said once at load time with the file
 * to fix: an attribute with values and no template (a typo in one of the
 * two files, most likely), or with a single value. */
static int check_attributes(const Build *b)
{
    const RavelDomain *d = b->d;
    for (int a = 0; a < d->n_attributes; a++) {
        const RavelAttribute *at = &d->attributes[a];
        if (at->has_values && at->n_templates == 0) {
            hd_fail("no template for attribute '%s', which the entities give values (%s)", at->name,
                    b->names[RAVEL_FILE_ENTITY_ATTRIBUTES]);
            return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_ATTRIBUTE_TO_PROMPTS]);
        }
        if (at->n_values == 1) {
            const char *v = NULL;
            for (int e = 0; e < d->n_entities && !v; e++) v = d->entities[e].values[a];
            hd_fail("attribute '%s' has one value ('%s') for every entity: no counterfactual "
                    "can change it (give it two values or more, or leave it out)", at->name, v);
            return hd_fail_prefix("%s: ", b->names[RAVEL_FILE_ENTITY_ATTRIBUTES]);
        }
    }
    return 0;
}

RavelDomain *ravel_domain_from_json(const char *domain, json_t *const docs[RAVEL_N_FILES],
                                    const char *const names[RAVEL_N_FILES], const RavelHashSplit *hash)
{
    RavelDomain *d = hd_calloc(1, sizeof *d);
    d->name = hd_strdup(domain);
    d->hash = hash ? *hash : (RavelHashSplit){RAVEL_HASH_VAL_DEFAULT, RAVEL_HASH_TEST_DEFAULT};
    for (int f = 0; f < RAVEL_N_FILES; f++) {
        d->present[f] = docs[f] != NULL;
        d->paths[f] = hd_strdup(names[f]);
    }
    Build b = {d, names};
    for (int f = 0; f < RAVEL_N_FILES; f++)
        if (!docs[f] && !ravel_file_optional(f)) {
            fail_file(&b, f, "missing");
            goto fail;
        }
    if (build_attributes(&b, docs[RAVEL_FILE_ENTITY_ATTRIBUTES], docs[RAVEL_FILE_ATTRIBUTE_TO_PROMPTS]) < 0 ||
        build_templates(&b, docs[RAVEL_FILE_ATTRIBUTE_TO_PROMPTS]) < 0)
        goto fail;
    for (int e = 0; e < d->n_entities; e++) d->entities[e].split = -1;
    if (docs[RAVEL_FILE_ENTITY_TO_SPLIT]) {
        if (read_split_file(&b, RAVEL_FILE_ENTITY_TO_SPLIT, docs[RAVEL_FILE_ENTITY_TO_SPLIT], d->n_entities,
                            "entity", ravel_entity_index, entity_split_slot) < 0)
            goto fail;
    } else {
        ravel_hash_split_entities(d, &d->hash);
    }
    if (docs[RAVEL_FILE_PROMPT_TO_SPLIT]) {
        if (read_split_file(&b, RAVEL_FILE_PROMPT_TO_SPLIT, docs[RAVEL_FILE_PROMPT_TO_SPLIT], d->n_templates,
                            "template", ravel_template_index, template_split_slot) < 0)
            goto fail;
    } else {
        ravel_hash_split_templates(d, &d->hash);
    }
    if (build_wiki(&b, docs[RAVEL_FILE_WIKIPEDIA]) < 0) goto fail;
    build_indexes(d);
    if (check_attributes(&b) < 0) goto fail;
    /* messages about a split (ravel_pools_init) name the file that set it */
    for (int f = RAVEL_FILE_ENTITY_TO_SPLIT; f <= RAVEL_FILE_PROMPT_TO_SPLIT; f++)
        if (!docs[f]) {
            char what[512];
            snprintf(what, sizeof what, "%s (hash split: --val-frac %g --test-frac %g)",
                     f == RAVEL_FILE_ENTITY_TO_SPLIT ? names[RAVEL_FILE_ENTITY_ATTRIBUTES]
                                                     : names[RAVEL_FILE_ATTRIBUTE_TO_PROMPTS],
                     d->hash.val, d->hash.test);
            free(d->paths[f]);
            d->paths[f] = hd_strdup(what);
        }
    return d;
fail:
    ravel_domain_free(d);
    return NULL;
}

RavelDomain *ravel_domain_load(const char *dir, const char *domain, const RavelHashSplit *hash)
{
    json_t *docs[RAVEL_N_FILES] = {0};
    char *paths[RAVEL_N_FILES] = {0};
    char sums[RAVEL_N_FILES][65];
    RavelDomain *d = NULL;
    for (int f = 0; f < RAVEL_N_FILES; f++) {
        char name[256];
        ravel_file_name(domain, f, name, sizeof name);
        size_t len = strlen(dir) + strlen(name) + 2;
        paths[f] = hd_malloc(len);
        snprintf(paths[f], len, "%s/%s", dir, name);
        sums[f][0] = 0;
        struct stat st;
        if (ravel_file_optional(f) && stat(paths[f], &st) < 0 && errno == ENOENT) continue;
        json_error_t err;
        docs[f] = json_load_file(paths[f], JSON_REJECT_DUPLICATES, &err);
        if (!docs[f]) {
            if (err.line >= 1)
                hd_fail("%s: line %d, column %d: %s", paths[f], err.line, err.column, err.text);
            else
                hd_fail("%s: %s", paths[f], err.text);
            goto done;
        }
        if (sha256_file_hex(paths[f], sums[f]) < 0) goto done;
    }
    d = ravel_domain_from_json(domain, docs, (const char *const *)paths, hash);
    if (d)
        for (int f = 0; f < RAVEL_N_FILES; f++) memcpy(d->sha256[f], sums[f], 65);
done:
    for (int f = 0; f < RAVEL_N_FILES; f++) {
        json_decref(docs[f]);
        free(paths[f]);
    }
    return d;
}

void ravel_domain_free(RavelDomain *d)
{
    if (!d) return;
    for (int e = 0; e < d->n_entities; e++) {
        RavelEntity *ent = &d->entities[e];
        free(ent->name);
        if (ent->values)
            for (int a = 0; a < d->n_attributes; a++) free(ent->values[a]);
        free(ent->values);
        free(ent->value_ids);
        free(ent->wiki);
    }
    free(d->entities);
    for (int a = 0; a < d->n_attributes; a++) {
        free(d->attributes[a].name);
        free(d->attributes[a].templates);
    }
    free(d->attributes);
    for (int t = 0; t < d->n_templates; t++) free(d->templates[t].text);
    free(d->templates);
    for (int w = 0; w < d->n_wiki; w++) free(d->wiki[w].text);
    free(d->wiki);
    for (int f = 0; f < RAVEL_N_FILES; f++) free(d->paths[f]);
    free(d->name);
    free(d);
}

/* The arrays below are sorted by name, so one binary search serves all. */
int ravel_attribute_index(const RavelDomain *d, const char *name)
{
    int lo = 0, hi = d->n_attributes - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(d->attributes[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int ravel_entity_index(const RavelDomain *d, const char *name)
{
    int lo = 0, hi = d->n_entities - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(d->entities[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int ravel_template_index(const RavelDomain *d, const char *text)
{
    int lo = 0, hi = d->n_templates - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(d->templates[mid].text, text);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}
