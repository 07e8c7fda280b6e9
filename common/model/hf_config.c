#include "model/hf_config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/sha256.h"

/* Sizes above these are not a Llama we can hold; they also keep every
 * product of two sizes far from overflowing. */
#define MAX_DIM (1 << 20)
#define MAX_VOCAB (1 << 24)

static int get_int(json_t *root, const char *key, int required, int fallback, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return hd_fail("missing \"%s\"", key);
        *out = fallback;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_VOCAB * 64LL)
        return hd_fail("\"%s\" is not a non-negative integer", key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_float(json_t *root, const char *key, int required, double fallback, float *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return hd_fail("missing \"%s\"", key);
        *out = (float)fallback;
        return 0;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v))) return hd_fail("\"%s\" is not a number", key);
    *out = (float)json_number_value(v);
    return 0;
}

/* An id, a list of ids or null; the first becomes the single id. */
static int get_token_ids(json_t *root, const char *key, int *first, int *ids, int cap, int *n)
{
    json_t *v = json_object_get(root, key);
    *first = -1;
    if (n) *n = 0;
    if (!v || json_is_null(v)) return 0;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= MAX_VOCAB)
            return hd_fail("\"%s\" is not a token id or a list of them", key);
        int id = (int)json_integer_value(e);
        if (i == 0) *first = id;
        if (n && *n < cap) ids[(*n)++] = id;
    }
    return 0;
}

static int parse_rope_scaling(LlamaConfig *c, json_t *root)
{
    json_t *rs = json_object_get(root, "rope_scaling");
    c->rope_scaling = ROPE_SCALING_NONE;
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs)) return hd_fail("\"rope_scaling\" is not an object");
    json_t *type = json_object_get(rs, "rope_type");
    if (!type) type = json_object_get(rs, "type");   /* the older spelling */
    const char *t = json_is_string(type) ? json_string_value(type) : NULL;
    if (!t) return hd_fail("\"rope_scaling\" has no rope_type");
    if (strcmp(t, "default") == 0) return 0;
    if (strcmp(t, "llama3") != 0)
        return hd_fail("rope_scaling type \"%s\" is not supported (only llama3)", t);
    c->rope_scaling = ROPE_SCALING_LLAMA3;
    if (get_float(rs, "factor", 1, 0, &c->rope_factor) || get_float(rs, "low_freq_factor", 1, 0, &c->rope_low_freq_factor) ||
        get_float(rs, "high_freq_factor", 1, 0, &c->rope_high_freq_factor) ||
        get_int(rs, "original_max_position_embeddings", 1, 0, &c->rope_original_max_position))
        return hd_fail_prefix("rope_scaling: ");
    if (!(c->rope_factor > 0) || !(c->rope_low_freq_factor > 0) ||
        !(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_original_max_position <= 0)
        return hd_fail("rope_scaling: llama3 needs factor > 0 and high_freq_factor > low_freq_factor > 0");
    return 0;
}

static int expect_false(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    if (v && json_is_true(v)) return hd_fail("\"%s\" is true: biases are not supported", key);
    return 0;
}

static int parse_root(LlamaConfig *c, json_t *root)
{
    if (!json_is_object(root)) return hd_fail("not a JSON object");
    json_t *mt = json_object_get(root, "model_type");
    if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "llama") != 0))
        return hd_fail("model_type is \"%s\", not \"llama\"", json_is_string(mt) ? json_string_value(mt) : "?");
    json_t *act = json_object_get(root, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return hd_fail("hidden_act is \"%s\", only silu is supported", json_is_string(act) ? json_string_value(act) : "?");
    if (expect_false(root, "attention_bias") || expect_false(root, "mlp_bias")) return -1;
    if (get_int(root, "vocab_size", 1, 0, &c->vocab_size) || get_int(root, "hidden_size", 1, 0, &c->hidden_size) ||
        get_int(root, "intermediate_size", 1, 0, &c->intermediate_size) ||
        get_int(root, "num_hidden_layers", 1, 0, &c->n_layers) ||
        get_int(root, "num_attention_heads", 1, 0, &c->n_heads))
        return -1;
    if (c->n_heads == 0) return hd_fail("num_attention_heads is 0");
    if (get_int(root, "num_key_value_heads", 0, c->n_heads, &c->n_kv_heads) ||
        get_int(root, "head_dim", 0, c->hidden_size / c->n_heads, &c->head_dim) ||
        get_int(root, "max_position_embeddings", 0, 2048, &c->max_position_embeddings) ||
        get_float(root, "rms_norm_eps", 0, 1e-6, &c->rms_norm_eps) ||
        get_float(root, "rope_theta", 0, 10000.0, &c->rope_theta))
        return -1;
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie)) return hd_fail("\"tie_word_embeddings\" is not a boolean");
    c->tie_word_embeddings = tie && json_is_true(tie);
    if (get_token_ids(root, "bos_token_id", &c->bos_token_id, NULL, 0, NULL) ||
        get_token_ids(root, "eos_token_id", &c->eos_token_id, c->eos_token_ids, 8, &c->n_eos_token_ids))
        return -1;
    return parse_rope_scaling(c, root);
}

int hf_config_parse(LlamaConfig *cfg, const char *text, size_t len, const char *name)
{
    memset(cfg, 0, sizeof *cfg);
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) return hd_fail("%s: not valid JSON: %s (line %d)", name, err.text, err.line);
    int rc = parse_root(cfg, root);
    json_decref(root);
    if (rc != 0) return hd_fail_prefix("%s: ", name);
    if (llama_config_validate(cfg, name) != 0) return -1;
    llama_config_finish(cfg, name);
    return 0;
}

/* The last path component that is not empty ("a/b/" -> "b"). */
static void base_name(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    size_t len = n - b < cap - 1 ? n - b : cap - 1;
    memcpy(out, path + b, len);
    out[len] = 0;
}

int hf_config_load(LlamaConfig *cfg, const char *path)
{
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    size_t n = strlen(path) + 16;
    char *file = hd_malloc(n);
    snprintf(file, n, is_dir ? "%s/config.json" : "%s", path);
    FILE *fp = fopen(file, "rb");
    if (!fp) {
        hd_fail("%s: cannot open", file);
        free(file);
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[8192];
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (len + got > cap) text = hd_realloc(text, cap = 2 * (len + got));
        memcpy(text + len, chunk, got);
        len += got;
    }
    fclose(fp);
    int rc = hf_config_parse(cfg, text ? text : "", len, file);
    free(text);
    free(file);
    if (rc == 0) {   /* model_id: the folder's name, also when config.json was named */
        char dir[4096], id[256];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = is_dir ? NULL : strrchr(dir, '/');
        if (slash) *slash = 0;
        else if (!is_dir) snprintf(dir, sizeof dir, ".");
        base_name(dir, id, sizeof id);
        llama_config_finish(cfg, id);
    }
    return rc;
}

int llama_config_validate(const LlamaConfig *c, const char *name)
{
    const char *why = NULL;
    if (c->vocab_size <= 0 || c->vocab_size > MAX_VOCAB) why = "vocab_size out of range";
    else if (c->hidden_size <= 0 || c->hidden_size > MAX_DIM) why = "hidden_size out of range";
    else if (c->intermediate_size <= 0 || c->intermediate_size > MAX_DIM) why = "intermediate_size out of range";
    else if (c->n_layers <= 0 || c->n_layers > 1024) why = "number of layers out of range";
    else if (c->n_heads <= 0 || c->n_heads > 4096) why = "number of heads out of range";
    else if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0) why = "key/value heads do not divide the query heads";
    else if (c->head_dim <= 0 || c->head_dim % 2 != 0 || (long long)c->head_dim * c->n_heads > MAX_DIM)
        why = "head_dim must be positive and even";
    else if (!(c->rms_norm_eps > 0)) why = "rms_norm_eps must be positive";
    else if (!(c->rope_theta > 1)) why = "rope_theta must be above 1";
    else if (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size) why = "bos/eos id beyond the vocabulary";
    if (why) return hd_fail("%s: %s", name, why);
    return 0;
}

int llama_config_canonical(const LlamaConfig *c, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "arch llama\nvocab_size %d\nhidden_size %d\nintermediate_size %d\nn_layers %d\n"
                     "n_heads %d\nn_kv_heads %d\nhead_dim %d\nmax_position_embeddings %d\n"
                     "rms_norm_eps %.9g\nrope_theta %.9g\nrope_scaling %s\n",
                     c->vocab_size, c->hidden_size, c->intermediate_size, c->n_layers, c->n_heads,
                     c->n_kv_heads, c->head_dim, c->max_position_embeddings, c->rms_norm_eps,
                     c->rope_theta, c->rope_scaling == ROPE_SCALING_LLAMA3 ? "llama3" : "none");
    if (c->rope_scaling == ROPE_SCALING_LLAMA3 && n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n,
                      "rope_factor %.9g\nrope_low_freq_factor %.9g\nrope_high_freq_factor %.9g\n"
                      "rope_original_max_position %d\n",
                      c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor,
                      c->rope_original_max_position);
    if (n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "tie_word_embeddings %d\n", c->tie_word_embeddings ? 1 : 0);
    return n;
}

void llama_config_finish(LlamaConfig *c, const char *model_id)
{
    char text[1024];
    int n = llama_config_canonical(c, text, sizeof text);
    sha256_hex(text, (size_t)n, c->config_hash);
    snprintf(c->model_id, sizeof c->model_id, "%s", model_id);
}

void llama_config_rope_inv_freq(const LlamaConfig *c, float *inv_freq)
{
    /* Every step in float32, in transformers' order (torch computes these
     * on float32 tensors), so the frequencies are bit-identical to its. */
    int half = c->head_dim / 2;
    for (int j = 0; j < half; j++) {
        float exponent = (float)(2 * j) / (float)c->head_dim;
        float f = 1.0f / (float)pow((double)c->rope_theta, (double)exponent);
        if (c->rope_scaling == ROPE_SCALING_LLAMA3) {
            float old_ctx = (float)c->rope_original_max_position, factor = c->rope_factor;
            float low = c->rope_low_freq_factor, high = c->rope_high_freq_factor;
            float wavelen = (float)(2 * M_PI) / f;
            if (wavelen > old_ctx / low) {
                f = f / factor;                       /* long wavelengths: interpolate fully */
            } else if (!(wavelen < old_ctx / high)) { /* the band between: blend */
                float smooth = (old_ctx / wavelen - low) / (high - low);
                f = (1 - smooth) * f / factor + smooth * f;
            }
        }
        inv_freq[j] = f;
    }
}
