/* GGUF metadata -> TokenizerArrays.  GGUF strings are not NUL-terminated,
 * so tokens and merges go over as pointers into the mapping plus lengths;
 * numeric arrays are decoded into plain C arrays of the width asked for. */
#include "tokenizer/gguf_tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* Optional integer key: -1 when absent; -2 (message set) when mistyped. */
static int64_t optional_int(const GgufFile *g, const char *key)
{
    int64_t v;
    if (!gguf_find_kv(g, key)) return -1;
    if (gguf_get_int(g, key, &v) != 0) return -2;
    return v;
}

static int optional_bool(const GgufFile *g, const char *key, int *out)
{
    *out = -1;
    if (!gguf_find_kv(g, key)) return 0;
    return gguf_get_bool(g, key, out);
}

/* A string array as pointer + length pairs. */
static int string_array(const GgufFile *g, const char *key, size_t expect_n, const char ***ptrs, uint32_t **lens,
                        size_t *n)
{
    const GgufKV *kv;
    if (gguf_get_array(g, key, GGUF_STRING, &kv) != 0) return -1;
    if (expect_n && kv->n != expect_n)
        return hd_fail("%s: '%s' has %llu entries, expected %zu", g->path, key, (unsigned long long)kv->n, expect_n);
    *n = (size_t)kv->n;
    *ptrs = hd_calloc(*n ? *n : 1, sizeof(char *));
    *lens = hd_calloc(*n ? *n : 1, sizeof(uint32_t));
    for (size_t i = 0; i < *n; i++) {
        if (kv->strs[i].len > UINT32_MAX) return hd_fail("%s: '%s'[%zu] is too long", g->path, key, i);
        (*ptrs)[i] = kv->strs[i].ptr;
        (*lens)[i] = (uint32_t)kv->strs[i].len;
    }
    return 0;
}

Tokenizer *tokenizer_from_gguf(const GgufFile *g)
{
    TokenizerArrays a;
    memset(&a, 0, sizeof a);
    char *model = NULL, *pre = NULL;
    const char **tokens = NULL, **merges = NULL;
    uint32_t *token_lens = NULL, *merge_lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    Tokenizer *t = NULL;
    const GgufKV *kv;

    if (gguf_get_string(g, "tokenizer.ggml.model", &model) != 0) goto done;
    if (gguf_find_kv(g, "tokenizer.ggml.pre") && gguf_get_string(g, "tokenizer.ggml.pre", &pre) != 0) goto done;
    if (string_array(g, "tokenizer.ggml.tokens", 0, &tokens, &token_lens, &a.n_tokens) != 0) goto done;
    if (gguf_find_kv(g, "tokenizer.ggml.merges") &&
        string_array(g, "tokenizer.ggml.merges", 0, &merges, &merge_lens, &a.n_merges) != 0)
        goto done;
    if (gguf_find_kv(g, "tokenizer.ggml.scores")) {
        if (gguf_get_array(g, "tokenizer.ggml.scores", GGUF_FLOAT32, &kv) != 0) goto done;
        if (kv->n != a.n_tokens) {
            hd_fail("%s: tokenizer.ggml.scores has %llu entries for %zu tokens", g->path, (unsigned long long)kv->n, a.n_tokens);
            goto done;
        }
        scores = hd_malloc((a.n_tokens ? a.n_tokens : 1) * sizeof(float));
        for (size_t i = 0; i < a.n_tokens; i++) scores[i] = (float)gguf_array_float(kv, i);
    }
    if (gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        if (gguf_get_array(g, "tokenizer.ggml.token_type", GGUF_INT32, &kv) != 0) goto done;
        if (kv->n != a.n_tokens) {
            hd_fail("%s: tokenizer.ggml.token_type has %llu entries for %zu tokens", g->path, (unsigned long long)kv->n,
                    a.n_tokens);
            goto done;
        }
        types = hd_malloc((a.n_tokens ? a.n_tokens : 1) * sizeof(int32_t));
        for (size_t i = 0; i < a.n_tokens; i++) types[i] = (int32_t)gguf_array_int(kv, i);
    }
    int64_t bos = optional_int(g, "tokenizer.ggml.bos_token_id"), eos = optional_int(g, "tokenizer.ggml.eos_token_id");
    int64_t unk = optional_int(g, "tokenizer.ggml.unknown_token_id"), pad = optional_int(g, "tokenizer.ggml.padding_token_id");
    if (bos == -2 || eos == -2 || unk == -2 || pad == -2) goto done;
    int64_t ids[4] = {bos, eos, unk, pad};
    for (int k = 0; k < 4; k++)
        if (ids[k] >= (int64_t)a.n_tokens) {
            hd_fail("%s: special token id %lld is beyond the %zu tokens", g->path, (long long)ids[k], a.n_tokens);
            goto done;
        }
    if (optional_bool(g, "tokenizer.ggml.add_bos_token", &a.add_bos) || optional_bool(g, "tokenizer.ggml.add_eos_token", &a.add_eos) ||
        optional_bool(g, "tokenizer.ggml.add_space_prefix", &a.add_space_prefix))
        goto done;
    a.model = model;
    a.pre = pre;
    a.tokens = tokens;
    a.token_lens = token_lens;
    a.scores = scores;
    a.token_types = types;
    a.merges = merges;
    a.merge_lens = merge_lens;
    a.bos_id = (int32_t)bos, a.eos_id = (int32_t)eos, a.unk_id = (int32_t)unk, a.pad_id = (int32_t)pad;
    t = tokenizer_from_arrays(&a, g->path);
done:
    free(model);
    free(pre);
    free(tokens);
    free(token_lens);
    free(merges);
    free(merge_lens);
    free(scores);
    free(types);
    return t;
}

Tokenizer *tokenizer_load_gguf(const char *path)
{
    GgufFile g;
    Tokenizer *t = NULL;
    if (gguf_open(&g, path) == 0) t = tokenizer_from_gguf(&g);
    gguf_close(&g);
    return t;
}
