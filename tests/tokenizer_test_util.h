/* Helpers shared by the tokenizer tests (test_tokenizer, test_tokenizer_classes,
 * test_tokenizer_codepoints): whether a file exists, the quick mode,
 * reading a fixture and turning a tokenizer.json into the GGUF-style arrays
 * of tokenizer_from_arrays.  Header-only: every function is static and each
 * test includes it once. */
#ifndef HD_TOKENIZER_TEST_UTIL_H
#define HD_TOKENIZER_TEST_UTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tokenizer.h"

/* The long sweeps run a sample under AddressSanitizer (too slow in full)
 * or when HD_TEST_QUICK is set to anything but 0. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static __attribute__((unused)) int quick_mode(void)
{
    const char *q = getenv("HD_TEST_QUICK");
    if (q && *q) return strcmp(q, "0") != 0;
    return UNDER_ASAN;
}

static __attribute__((unused)) int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static __attribute__((unused)) json_t *load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &err);
    if (!j) fail_msg("%s: %s (line %d)", path, err.text, err.line);
    return j;
}

/* ---- building from arrays (the GGUF path) from a tokenizer.json ---- */

typedef struct {
    TokenizerArrays a;
    const char **tokens;
    const char **merges;
    char **merge_buf;
    float *scores;
    int32_t *types;
    json_t *root;
} JsonArrays;

/* The vocabulary of tokenizer.json as GGUF-style arrays: token_type 3 for
 * special added tokens, 2 for the unknown token, 6 for <0xXX>. */
static __attribute__((unused)) void arrays_from_json(JsonArrays *j, const char *path, int with_merges)
{
    memset(j, 0, sizeof *j);
    j->root = load_json(path);
    json_t *model = json_object_get(j->root, "model"), *vocab = json_object_get(model, "vocab");
    size_t n = json_object_size(vocab);
    json_t *added = json_object_get(j->root, "added_tokens");
    for (size_t i = 0; i < json_array_size(added); i++) {
        size_t id = (size_t)json_integer_value(json_object_get(json_array_get(added, i), "id"));
        if (id + 1 > n) n = id + 1;
    }
    j->tokens = calloc(n, sizeof *j->tokens);
    j->types = calloc(n, sizeof *j->types);
    j->scores = calloc(n, sizeof *j->scores);
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        size_t id = (size_t)json_integer_value(v);
        j->tokens[id] = key;
        j->types[id] = strlen(key) == 6 && !strncmp(key, "<0x", 3) ? 6 : 1;
        j->scores[id] = -(float)id;
    }
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        size_t id = (size_t)json_integer_value(json_object_get(a, "id"));
        j->tokens[id] = json_string_value(json_object_get(a, "content"));
        j->types[id] = unk && !strcmp(unk, j->tokens[id]) ? 2 : json_is_true(json_object_get(a, "special")) ? 3 : 4;
    }
    json_t *merges = json_object_get(model, "merges");
    if (with_merges) {
        size_t m = json_array_size(merges);
        j->merges = calloc(m, sizeof *j->merges);
        j->merge_buf = calloc(m, sizeof *j->merge_buf);
        for (size_t i = 0; i < m; i++) {
            json_t *e = json_array_get(merges, i);
            if (json_is_string(e)) {
                j->merges[i] = json_string_value(e);
            } else {
                const char *l = json_string_value(json_array_get(e, 0)), *r = json_string_value(json_array_get(e, 1));
                j->merge_buf[i] = malloc(strlen(l) + strlen(r) + 2);
                sprintf(j->merge_buf[i], "%s %s", l, r);
                j->merges[i] = j->merge_buf[i];
            }
        }
        j->a.merges = j->merges;
        j->a.n_merges = m;
    }
    j->a.n_tokens = n;
    j->a.tokens = j->tokens;
    j->a.token_types = j->types;
    j->a.scores = j->scores;
    j->a.bos_id = j->a.eos_id = j->a.unk_id = j->a.pad_id = -1;
    j->a.add_bos = j->a.add_eos = j->a.add_space_prefix = -1;
}

static __attribute__((unused)) void arrays_free(JsonArrays *j)
{
    for (size_t i = 0; j->merge_buf && i < j->a.n_merges; i++) free(j->merge_buf[i]);
    free(j->merge_buf);
    free(j->merges);
    free(j->tokens);
    free(j->types);
    free(j->scores);
    json_decref(j->root);
}

#endif
