#include "model/target_model.h"
#include "base/cli.h"
#include "base/error.h"
#include "tokenizer/gguf_tokenizer.h"
#include "model/llama_load.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_MODEL_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *target_model_resolve(const char *given)
{
    static char path[PATH_MAX];
    if (given) {
        if (!exists(given)) { hd_fail("%s: no such model file or directory", given); return NULL; }
        return given;
    }
    const char *env = getenv("HD_MODEL");
    if (env && *env) {
        if (!exists(env)) { hd_fail("%s (from HD_MODEL): no such model", env); return NULL; }
        return env;
    }
    /* a build tree (bin/../models), or an install under another prefix */
    static const char *const beside[] = {"../models/" DEFAULT_MODEL_FILE,
                                         "../share/hyperdas/models/" DEFAULT_MODEL_FILE};
    for (int i = 0; i < 2; i++)
        if (hd_exe_relative(beside[i], path, sizeof path) == 0 && exists(path)) return path;
    snprintf(path, sizeof path, "%s/models/%s", HD_DATADIR, DEFAULT_MODEL_FILE);
    if (exists(path)) return path;
    hd_fail("no model given and the default " DEFAULT_MODEL_FILE " is not there: "
            "run 'make model' in the source tree, or pass --model PATH (a GGUF file or a "
            "Hugging Face directory)");
    return NULL;
}

static Tokenizer *load_tokenizer(const char *path)
{
    if (!is_dir(path)) return tokenizer_load_gguf(path);
    char tj[PATH_MAX], tc[PATH_MAX];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", path);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", path);
    if (!exists(tj)) {
        hd_fail("%s: no tokenizer.json in the model directory", path);
        return NULL;
    }
    return tokenizer_load_json(tj, exists(tc) ? tc : NULL);
}

int target_model_load(TargetModel *t, const char *path, int use_bos)
{
    memset(t, 0, sizeof *t);
    if (llama_load(&t->model, path) < 0) return -1;
    t->tok = load_tokenizer(path);
    if (!t->tok) {
        llama_model_free(&t->model);
        return -1;
    }
    t->path = hd_strdup(path);
    /* The tokenizer's own BOS, else the one the model config names. */
    int32_t bos = tokenizer_bos_id(t->tok);
    if (bos < 0) bos = t->model.cfg.bos_token_id;
    t->bos_id = use_bos ? bos : -1;
    return 0;
}

void target_model_free(TargetModel *t)
{
    llama_model_free(&t->model);
    tokenizer_free(t->tok);
    free(t->path);
    memset(t, 0, sizeof *t);
}

void target_model_pack_info(MapWriter *h, const TargetModel *t)
{
    map_str(h, "model", t->path);
    map_str(h, "model_id", t->model.cfg.model_id);
    map_str(h, "config_hash", t->model.cfg.config_hash);
    msgpack_pack_int(map_key(h, "n_layers"), t->model.cfg.n_layers);
    msgpack_pack_int(map_key(h, "hidden_size"), t->model.cfg.hidden_size);
    msgpack_pack_int(map_key(h, "bos_id"), t->bos_id);
}

void target_model_limit_tokens(TargetModel *t, int max_tokens)
{
    /* Every token stands for at most `longest` bytes of the text: its
     * decoded bytes, or its vocabulary string for a special token matched
     * as written (Llama 2's U+2581 for a space makes that string longer
     * than the bytes it covers, which only loosens the bound). */
    size_t longest = 1, n_vocab = tokenizer_vocab_size(t->tok);
    for (size_t id = 0; id < n_vocab; id++) {
        size_t len = 0;
        const char *s = tokenizer_id_to_token(t->tok, (int32_t)id);
        if (s && strlen(s) > longest) longest = strlen(s);
        if (tokenizer_token_bytes(t->tok, (int32_t)id, &len) && len > longest) longest = len;
    }
    t->max_tokens = max_tokens;
    t->max_text_bytes = max_tokens > 0 ? (size_t)max_tokens * longest : 0;
}

int target_model_check_length(const TargetModel *t, size_t len)
{
    if (t->max_text_bytes && len > t->max_text_bytes)
        return hd_fail("%zu bytes of text, too long for --max-len %d tokens (at most %zu bytes)", len,
                       t->max_tokens, t->max_text_bytes);
    return 0;
}

int target_model_check_max_len(const TargetModel *t, long long n, const char *option)
{
    int cap = t->model.cfg.max_position_embeddings;
    if (cap > 0 && n > cap)
        return hd_fail("%s %lld is beyond the model's max_position_embeddings %d (%s/config.json)", option, n,
                       cap, t->path);
    if (n > TARGET_MAX_TOKENS)
        return hd_fail("%s %lld is beyond the limit of %d tokens", option, n, TARGET_MAX_TOKENS);
    return 0;
}

int target_model_encode(const TargetModel *t, const char *text, size_t len, int32_t **ids,
                        int *n, int32_t **starts, int32_t **ends)
{
    if (target_model_check_length(t, len) < 0) return -1;
    TokenList list = {0};
    if (tokenizer_encode(t->tok, text, len, 0, &list) < 0) {
        token_list_free(&list);
        return -1;
    }
    int extra = t->bos_id >= 0 ? 1 : 0;
    if (t->max_tokens && list.n + (size_t)extra > (size_t)t->max_tokens) {
        hd_fail("%zu tokens, longer than --max-len %d", list.n + (size_t)extra, t->max_tokens);
        token_list_free(&list);
        return -1;
    }
    int total = (int)list.n + extra;
    *ids = hd_malloc((size_t)total * sizeof **ids);
    if (starts) *starts = hd_malloc((size_t)total * sizeof **starts);
    if (ends) *ends = hd_malloc((size_t)total * sizeof **ends);
    if (extra) {
        (*ids)[0] = t->bos_id;
        if (starts) (*starts)[0] = 0;
        if (ends) (*ends)[0] = 0;
    }
    for (size_t i = 0; i < list.n; i++) {
        (*ids)[extra + i] = list.ids[i];
        if (starts) (*starts)[extra + i] = list.start[i];
        if (ends) (*ends)[extra + i] = list.end[i];
    }
    *n = total;
    token_list_free(&list);
    return 0;
}
