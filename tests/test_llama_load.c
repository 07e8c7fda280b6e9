/* Model loading: config.json of the Llama families vs transformers, the
 * tiny random model from sharded f32 and bf16 safetensors vs the torch
 * weights, the same model written as a GGUF (Q/K rows permuted the way
 * llama.cpp does) loading back identically, and SmolLM2's dequantised
 * weights vs transformers' GGUF loader. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "float16.h"
#include "model/hf_config.h"
#include "model/llama_load.h"
#include "loader_test_util.h"
#include "formats/safetensors.h"

#define TINY_F32 "tests/fixtures/tiny-llama-f32"
#define TINY_BF16 "tests/fixtures/tiny-llama-bf16"
#define SMOLLM2 "models/SmolLM2-135M-Instruct.Q4_1.gguf"

/* The view of the HF parameter `name` in m, and its element count. */
static float *view_for(const LlamaModel *m, const char *name, size_t *numel)
{
    const LlamaConfig *c = &m->cfg;
    size_t d = (size_t)c->hidden_size, q = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv = (size_t)c->n_kv_heads * (size_t)c->head_dim, ffn = (size_t)c->intermediate_size;
    size_t V = (size_t)c->vocab_size;
    if (!strcmp(name, "model.embed_tokens.weight")) return *numel = V * d, m->tok_embed;
    if (!strcmp(name, "lm_head.weight")) return *numel = V * d, m->lm_head;
    if (!strcmp(name, "model.norm.weight")) return *numel = d, m->final_norm;
    int l, off;
    if (sscanf(name, "model.layers.%d.%n", &l, &off) != 1 || l < 0 || l >= c->n_layers) return NULL;
    const LlamaLayerWeights *w = &m->layers[l];
    const char *s = name + off;
    if (!strcmp(s, "input_layernorm.weight")) return *numel = d, w->attn_norm;
    if (!strcmp(s, "self_attn.q_proj.weight")) return *numel = q * d, w->wq;
    if (!strcmp(s, "self_attn.k_proj.weight")) return *numel = kv * d, w->wk;
    if (!strcmp(s, "self_attn.v_proj.weight")) return *numel = kv * d, w->wv;
    if (!strcmp(s, "self_attn.o_proj.weight")) return *numel = d * q, w->wo;
    if (!strcmp(s, "post_attention_layernorm.weight")) return *numel = d, w->ffn_norm;
    if (!strcmp(s, "mlp.gate_proj.weight")) return *numel = ffn * d, w->w_gate;
    if (!strcmp(s, "mlp.up_proj.weight")) return *numel = ffn * d, w->w_up;
    if (!strcmp(s, "mlp.down_proj.weight")) return *numel = d * ffn, w->w_down;
    return NULL;
}

/* ---- configurations ---- */

static json_t *metadata_json(const StFile *f, const char *key)
{
    const char *text = st_metadata(f, key);
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void config_matches_transformers(void **state)
{
    (void)state;
    StFile ref;
    assert_int_equal(st_open(&ref, "tests/fixtures/hf_configs/expected.safetensors"), 0);
    const char *names[] = {"llama2-7b", "llama3-8b", "llama3.1-8b-instruct"};
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/hf_configs/%s", names[k]);
        LlamaConfig c;
        assert_int_equal(hf_config_load(&c, path), 0);
        assert_string_equal(c.model_id, names[k]);
        json_t *j = metadata_json(&ref, names[k]);
#define EXPECT_INT(field, key) assert_int_equal(c.field, json_integer_value(json_object_get(j, key)))
        EXPECT_INT(vocab_size, "vocab_size");
        EXPECT_INT(hidden_size, "hidden_size");
        EXPECT_INT(intermediate_size, "intermediate_size");
        EXPECT_INT(n_layers, "num_hidden_layers");
        EXPECT_INT(n_heads, "num_attention_heads");
        EXPECT_INT(n_kv_heads, "num_key_value_heads");
        EXPECT_INT(head_dim, "head_dim");
        EXPECT_INT(max_position_embeddings, "max_position_embeddings");
        EXPECT_INT(bos_token_id, "bos_token_id");
#undef EXPECT_INT
        assert_true(c.rms_norm_eps == (float)json_number_value(json_object_get(j, "rms_norm_eps")));
        assert_true(c.rope_theta == (float)json_number_value(json_object_get(j, "rope_theta")));
        assert_int_equal(c.tie_word_embeddings, json_is_true(json_object_get(j, "tie_word_embeddings")));
        json_t *eos = json_object_get(j, "eos_token_id");
        if (json_is_array(eos)) {
            assert_int_equal(c.n_eos_token_ids, json_array_size(eos));
            for (size_t i = 0; i < json_array_size(eos); i++)
                assert_int_equal(c.eos_token_ids[i], json_integer_value(json_array_get(eos, i)));
            assert_int_equal(c.eos_token_id, c.eos_token_ids[0]);
        } else {
            assert_int_equal(c.n_eos_token_ids, 1);
            assert_int_equal(c.eos_token_id, json_integer_value(eos));
        }
        json_decref(j);
        assert_int_equal(c.rope_scaling, k == 2 ? ROPE_SCALING_LLAMA3 : ROPE_SCALING_NONE);

        char key[64];
        snprintf(key, sizeof key, "%s.inv_freq", names[k]);
        const StTensor *t = st_find(&ref, key);
        assert_non_null(t);
        assert_int_equal(t->numel, c.head_dim / 2);
        float want[512], got[512];
        st_tensor_to_f32(t, want);
        llama_config_rope_inv_freq(&c, got);
        for (size_t i = 0; i < t->numel; i++) {
            double rel = fabs((double)got[i] - want[i]) / want[i];
            if (rel > worst) worst = rel;
        }
    }
    /* float32 steps in transformers' order: expected bit-identical */
    printf("# rope inv_freq vs transformers: max relative difference %.3g\n", worst);
    assert_true(worst == 0);
    st_close(&ref);
}

static int parse_text(LlamaConfig *c, const char *text) { return hf_config_parse(c, text, strlen(text), "cfg.json"); }

static void config_rejects_what_it_cannot_run(void **state)
{
    (void)state;
    LlamaConfig c;
    const char *base = "\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,"
                       "\"num_attention_heads\":2";
    char text[1024];
    snprintf(text, sizeof text, "{%s}", base);
    assert_int_equal(parse_text(&c, text), 0);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.head_dim, 4);
    assert_true(c.rope_theta == 10000.0f);
    assert_true(c.rms_norm_eps == 1e-6f);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.eos_token_id, -1);
    assert_int_equal(c.n_eos_token_ids, 0);
    assert_int_equal(strlen(c.config_hash), 64);

    struct {
        const char *extra, *what;
    } bad[] = {
        {",\"model_type\":\"mistral\"", "model_type is \"mistral\""},
        {",\"hidden_act\":\"gelu\"", "hidden_act"},
        {",\"attention_bias\":true", "attention_bias"},
        {",\"num_key_value_heads\":3", "key/value heads"},
        {",\"head_dim\":3", "head_dim"},
        {",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}", "rope_scaling type \"linear\""},
        {",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}", "rope_scaling: missing \"low_freq_factor\""},
        {",\"eos_token_id\":[1,\"x\"]", "eos_token_id"},
        {",\"bos_token_id\":99", "beyond the vocabulary"},
        {",\"rope_theta\":\"big\"", "rope_theta"},
        {",\"tie_word_embeddings\":1", "tie_word_embeddings"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{%s%s}", base, bad[i].extra);
        assert_int_equal(parse_text(&c, text), -1);
        assert_error_mentions("cfg.json: ", bad[i].what);
    }
    assert_int_equal(parse_text(&c, "{\"hidden_size\":8}"), -1);
    assert_error_mentions("cfg.json: ", "missing \"vocab_size\"");
    assert_int_equal(parse_text(&c, "{\"hidden_size\":"), -1);
    assert_error_mentions("cfg.json: ", "not valid JSON");
    assert_int_equal(hf_config_load(&c, scratch_dir), -1);
    assert_error_mentions("config.json", "cannot open");
}

static void config_hash_is_canonical(void **state)
{
    (void)state;
    LlamaConfig a, b, c;
    assert_int_equal(parse_text(&a, "{\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,"
                                    "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"rope_theta\":500000}"),
                     0);
    assert_int_equal(parse_text(&b, "{ \"rope_theta\": 500000.0, \"num_attention_heads\": 2, \"num_key_value_heads\": 2,\n"
                                    "  \"num_hidden_layers\": 1, \"intermediate_size\": 16, \"hidden_size\": 8,\n"
                                    "  \"head_dim\": 4, \"vocab_size\": 10, \"torch_dtype\": \"bfloat16\" }"),
                     0);
    assert_string_equal(a.config_hash, b.config_hash);
    assert_int_equal(parse_text(&c, "{\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,"
                                    "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"rope_theta\":500001}"),
                     0);
    assert_string_not_equal(a.config_hash, c.config_hash);
}

/* ---- the tiny model from safetensors ---- */

/* Compares every parameter with the sums and samples torch recorded. */
static void check_weights(const LlamaModel *m, const char *checks_name)
{
    StFile ref;
    assert_int_equal(st_open(&ref, TINY_F32 "/expected.safetensors"), 0);
    json_t *names = metadata_json(&ref, "weight_names");
    const StTensor *t = st_find(&ref, checks_name);
    assert_non_null(t);
    assert_int_equal(t->shape[0], json_array_size(names));
    double *want = malloc(t->nbytes);
    memcpy(want, t->data, t->nbytes);
    size_t covered = 0;
    for (size_t k = 0; k < json_array_size(names); k++) {
        const char *name = json_string_value(json_array_get(names, k));
        size_t n = 0;
        const float *v = view_for(m, name, &n);
        if (!v) fprintf(stderr, "no view for %s\n", name);
        assert_non_null(v);
        covered += n;
        double sum = 0, sumsq = 0;
        for (size_t i = 0; i < n; i++) sum += v[i], sumsq += (double)v[i] * v[i];
        const double *w = want + 5 * k;
        if (fabs(sum - w[0]) > 1e-9 * (fabs(w[1]) + 1) || fabs(sumsq - w[1]) > 1e-9 * w[1])
            fprintf(stderr, "%s: sum %.17g vs %.17g, sumsq %.17g vs %.17g\n", name, sum, w[0], sumsq, w[1]);
        assert_true(fabs(sum - w[0]) <= 1e-9 * (fabs(w[1]) + 1));
        assert_true(fabs(sumsq - w[1]) <= 1e-9 * w[1]);
        assert_true(v[0] == w[2] && v[n / 2] == w[3] && v[n - 1] == w[4]);
    }
    assert_int_equal(covered, m->n_params);   /* every parameter was checked */
    free(want);
    json_decref(names);
    st_close(&ref);
}

static void tiny_from_sharded_f32(void **state)
{
    (void)state;
    LlamaModel m;
    assert_int_equal(llama_load(&m, TINY_F32), 0);
    const LlamaConfig *c = &m.cfg;
    assert_int_equal(c->vocab_size, 256);
    assert_int_equal(c->hidden_size, 64);
    assert_int_equal(c->n_layers, 3);
    assert_int_equal(c->n_heads, 4);
    assert_int_equal(c->n_kv_heads, 2);
    assert_int_equal(c->head_dim, 16);
    assert_int_equal(c->rope_scaling, ROPE_SCALING_LLAMA3);
    assert_true(c->rope_factor == 8 && c->rope_low_freq_factor == 1 && c->rope_high_freq_factor == 4);
    assert_int_equal(c->rope_original_max_position, 8192);
    assert_int_equal(c->tie_word_embeddings, 0);
    assert_string_equal(c->model_id, "tiny-llama-f32");
    assert_ptr_not_equal(m.lm_head, m.tok_embed);
    assert_int_equal(m.n_params, llama_param_count(c));
    check_weights(&m, "weight_checks");

    /* the llama3 inverse frequencies the forward pass will use */
    StFile ref;
    assert_int_equal(st_open(&ref, TINY_F32 "/expected.safetensors"), 0);
    float want[8], got[8];
    st_tensor_to_f32(st_find(&ref, "rope_inv_freq"), want);
    llama_config_rope_inv_freq(c, got);
    for (int i = 0; i < 8; i++) assert_true(got[i] == want[i]);
    st_close(&ref);
    llama_model_free(&m);
}

static void tiny_from_sharded_bf16(void **state)
{
    (void)state;
    LlamaModel m, f;
    assert_int_equal(llama_load(&m, TINY_BF16), 0);
    check_weights(&m, "weight_checks_bf16");
    /* and it is exactly the f32 model rounded to bf16 */
    assert_int_equal(llama_load(&f, TINY_F32), 0);
    assert_int_equal(m.n_params, f.n_params);
    size_t bad = 0;
    for (size_t i = 0; i < m.n_params; i++)
        if (m.params[i] != bf16_to_f32(f32_to_bf16(f.params[i]))) bad++;
    assert_int_equal(bad, 0);
    /* same architecture, so the same config hash whatever the dtype */
    assert_string_equal(m.cfg.config_hash, f.cfg.config_hash);
    llama_model_free(&m);
    llama_model_free(&f);
}

static void missing_pieces_are_named(void **state)
{
    (void)state;
    LlamaModel m;
    assert_int_equal(llama_load(&m, scratch_path("nothing-here")), -1);
    assert_error_mentions("nothing-here", "no such file");
    /* a checkpoint with a tensor missing: only the first shard */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/partial", scratch_dir);
    mkdir(dir, 0700);
    size_t n;
    unsigned char *b = read_bytes(TINY_BF16 "/config.json", &n);
    write_bytes(scratch_path("partial/config.json"), b, n);
    free(b);
    b = read_bytes(TINY_BF16 "/model-00001-of-00002.safetensors", &n);
    write_bytes(scratch_path("partial/model.safetensors"), b, n);
    free(b);
    assert_int_equal(llama_load(&m, dir), -1);
    assert_error_mentions("partial", "no tensor 'model.");
    assert_null(m.params);
}

/* ---- the tiny model as a GGUF ---- */

typedef struct {
    char name[64];
    uint64_t ne0, ne1;   /* ne1 == 0: a vector */
    const float *data;
    int rope_heads;      /* > 0: permute rows the way llama.cpp's converter does */
} GgufOut;

/* Writes the f32 model as a llama GGUF (F32 tensors); tied drops
 * output.weight.  The llama.* metadata says `meta`, the tensors are m's:
 * the two differ only in a test of a file whose metadata lies. */
static void write_gguf(const LlamaModel *m, const LlamaConfig *meta, const char *path, int tied)
{
    const LlamaConfig *c = &m->cfg;
    uint64_t d = (uint64_t)c->hidden_size, q = (uint64_t)c->n_heads * c->head_dim;
    uint64_t kv = (uint64_t)c->n_kv_heads * c->head_dim, ffn = (uint64_t)c->intermediate_size;
    GgufOut t[64];
    int nt = 0;
    float rope_freqs[64];
    /* llama.cpp's convert_hf_to_gguf.py for rope_type llama3 */
    for (int j = 0; j < c->head_dim / 2; j++) {
        double freq = 1.0 / pow(c->rope_theta, (2.0 * j) / c->head_dim);
        double wavelen = 2 * M_PI / freq, old = c->rope_original_max_position;
        double lo = old / c->rope_low_freq_factor, hi = old / c->rope_high_freq_factor;
        if (wavelen < hi) rope_freqs[j] = 1;
        else if (wavelen > lo) rope_freqs[j] = c->rope_factor;
        else {
            double s = (old / wavelen - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
            rope_freqs[j] = (float)(1 / ((1 - s) / c->rope_factor + s));
        }
    }
    t[nt++] = (GgufOut){"token_embd.weight", d, (uint64_t)c->vocab_size, m->tok_embed, 0};
    t[nt++] = (GgufOut){"output_norm.weight", d, 0, m->final_norm, 0};
    t[nt++] = (GgufOut){"rope_freqs.weight", (uint64_t)c->head_dim / 2, 0, rope_freqs, 0};
    if (!tied) t[nt++] = (GgufOut){"output.weight", d, (uint64_t)c->vocab_size, m->lm_head, 0};
    for (int l = 0; l < c->n_layers; l++) {
        const LlamaLayerWeights *w = &m->layers[l];
        GgufOut layer[] = {
            {"attn_norm", d, 0, w->attn_norm, 0},        {"attn_q", d, q, w->wq, c->n_heads},
            {"attn_k", d, kv, w->wk, c->n_kv_heads},     {"attn_v", d, kv, w->wv, 0},
            {"attn_output", q, d, w->wo, 0},             {"ffn_norm", d, 0, w->ffn_norm, 0},
            {"ffn_gate", d, ffn, w->w_gate, 0},          {"ffn_up", d, ffn, w->w_up, 0},
            {"ffn_down", ffn, d, w->w_down, 0},
        };
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            t[nt] = layer[k];
            snprintf(t[nt].name, sizeof t[nt].name, "blk.%d.%.30s.weight", l, layer[k].name);
            nt++;
        }
    }
    Buf o = {0};
    put_header(&o, 3, (uint64_t)nt, 13);
    put_key(&o, "general.architecture", GGUF_STRING), put_str(&o, "llama");
    put_key(&o, "llama.block_count", GGUF_UINT32), put_u32(&o, (uint32_t)meta->n_layers);
    put_key(&o, "llama.context_length", GGUF_UINT32), put_u32(&o, (uint32_t)meta->max_position_embeddings);
    put_key(&o, "llama.embedding_length", GGUF_UINT32), put_u32(&o, (uint32_t)meta->hidden_size);
    put_key(&o, "llama.feed_forward_length", GGUF_UINT32), put_u32(&o, (uint32_t)meta->intermediate_size);
    put_key(&o, "llama.attention.head_count", GGUF_UINT32), put_u32(&o, (uint32_t)meta->n_heads);
    put_key(&o, "llama.attention.head_count_kv", GGUF_UINT32), put_u32(&o, (uint32_t)meta->n_kv_heads);
    put_key(&o, "llama.rope.freq_base", GGUF_FLOAT32), put_f32(&o, meta->rope_theta);
    put_key(&o, "llama.attention.layer_norm_rms_epsilon", GGUF_FLOAT32), put_f32(&o, meta->rms_norm_eps);
    put_key(&o, "llama.rope.dimension_count", GGUF_UINT32), put_u32(&o, (uint32_t)meta->head_dim);
    put_key(&o, "llama.vocab_size", GGUF_UINT32), put_u32(&o, (uint32_t)meta->vocab_size);
    put_key(&o, "tokenizer.ggml.bos_token_id", GGUF_UINT32), put_u32(&o, (uint32_t)meta->bos_token_id);
    put_key(&o, "tokenizer.ggml.eos_token_id", GGUF_UINT32), put_u32(&o, (uint32_t)meta->eos_token_id);
    uint64_t offset = 0;
    for (int k = 0; k < nt; k++) {
        uint64_t n = t[k].ne0 * (t[k].ne1 ? t[k].ne1 : 1);
        put_tensor(&o, t[k].name, t[k].ne1 ? 2 : 1, (uint64_t[]){t[k].ne0, t[k].ne1}, GGML_F32, offset);
        offset += (n * 4 + 31) / 32 * 32;
    }
    pad_to(&o, 32);
    for (int k = 0; k < nt; k++) {
        uint64_t rows = t[k].ne1 ? t[k].ne1 : 1, cols = t[k].ne0;
        int hd = c->head_dim;
        for (uint64_t r = 0; r < rows; r++) {
            /* GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i */
            uint64_t src = r;
            if (t[k].rope_heads) {
                uint64_t h = r / hd, within = r % hd, i = within / 2, j = within % 2;
                src = h * hd + j * (hd / 2) + i;
            }
            for (uint64_t col = 0; col < cols; col++) put_f32(&o, t[k].data[src * cols + col]);
        }
        pad_to(&o, 32);
    }
    write_bytes(path, o.b, o.n);
    free(o.b);
}

static void write_tiny_gguf(const LlamaModel *m, const char *path, int tied) { write_gguf(m, &m->cfg, path, tied); }

static void tiny_round_trips_through_gguf(void **state)
{
    (void)state;
    LlamaModel hf, gg;
    assert_int_equal(llama_load(&hf, TINY_F32), 0);
    const char *path = scratch_path("tiny.gguf");
    write_tiny_gguf(&hf, path, 0);
    assert_int_equal(llama_load(&gg, path), 0);
    assert_string_equal(gg.cfg.model_id, "tiny");
    assert_int_equal(gg.cfg.rope_scaling, ROPE_SCALING_LLAMA3);   /* recognised from rope_freqs */
    assert_true(gg.cfg.rope_factor == 8);
    assert_int_equal(gg.cfg.tie_word_embeddings, 0);
    /* everything that defines the computation is equal, hence the hash */
    assert_string_equal(gg.cfg.config_hash, hf.cfg.config_hash);
    assert_int_equal(gg.n_params, hf.n_params);
    assert_memory_equal(gg.params, hf.params, hf.n_params * sizeof(float));
    /* the permutation helper agrees with the converter's reshape */
    assert_int_equal(gguf_rope_row(1, 16), 2);
    assert_int_equal(gguf_rope_row(8, 16), 1);
    assert_int_equal(gguf_rope_row(16 + 9, 16), 16 + 3);
    llama_model_free(&gg);

    /* without output.weight the model is tied */
    write_tiny_gguf(&hf, path, 1);
    assert_int_equal(llama_load(&gg, path), 0);
    assert_int_equal(gg.cfg.tie_word_embeddings, 1);
    assert_ptr_equal(gg.lm_head, gg.tok_embed);
    assert_int_equal(gg.n_params, hf.n_params - (size_t)256 * 64);
    assert_memory_equal(gg.layers[2].wk, hf.layers[2].wk, 32 * 64 * sizeof(float));
    assert_string_not_equal(gg.cfg.config_hash, hf.cfg.config_hash);
    llama_model_free(&gg);
    llama_model_free(&hf);
}

/* Metadata that does not match the tensors is refused before the fp32
 * buffer is allocated, naming the file and the first tensor that differs:
 * here feed_forward_length and block_count claim ~800 GB of weights, whose
 * allocation would fail (or, overcommitted, succeed and waste the time)
 * before any shape was looked at. */
static void gguf_metadata_must_match_tensors(void **state)
{
    (void)state;
    LlamaModel hf, gg;
    assert_int_equal(llama_load(&hf, TINY_F32), 0);
    const char *path = scratch_path("lying.gguf");
    LlamaConfig meta = hf.cfg;
    meta.intermediate_size = 1 << 20;
    meta.n_layers = 1024;
    write_gguf(&hf, &meta, path, 0);
    assert_int_equal(llama_load(&gg, path), -1);
    assert_error_mentions("lying.gguf", "tensor 'blk.0.ffn_gate.weight'", "[64, 128]", "metadata implies [64, 1048576]");
    assert_null(gg.params);

    /* a smaller lie, one head count: the K projection is named */
    meta = hf.cfg;
    meta.n_kv_heads = 4;
    write_gguf(&hf, &meta, path, 0);
    assert_int_equal(llama_load(&gg, path), -1);
    assert_error_mentions("lying.gguf", "tensor 'blk.0.attn_k.weight'", "[64, 32]", "implies [64, 64]");
    assert_null(gg.params);

    /* and the vocabulary: the embedding is the first tensor checked */
    meta = hf.cfg;
    meta.vocab_size = 1 << 24;
    write_gguf(&hf, &meta, path, 0);
    assert_int_equal(llama_load(&gg, path), -1);
    assert_error_mentions("lying.gguf", "tensor 'token_embd.weight'", "[64, 256]", "implies [64, 16777216]");
    assert_null(gg.params);
    llama_model_free(&hf);
}

static void gguf_that_is_not_llama(void **state)
{
    (void)state;
    Buf o = {0};
    put_header(&o, 3, 0, 1);
    put_key(&o, "general.architecture", GGUF_STRING), put_str(&o, "gemma");
    const char *path = scratch_path("gemma.gguf");
    write_bytes(path, o.b, o.n);
    free(o.b);
    LlamaModel m;
    assert_int_equal(llama_load(&m, path), -1);
    assert_error_mentions("gemma.gguf", "'gemma', not 'llama'");
}

/* A GGUF written by gguf-py with every supported tensor type and llama.cpp's
 * own permute(), against transformers' GGUF loader (gen_gguf_fixtures.py). */
static void gguf_py_file_matches_transformers(void **state)
{
    (void)state;
    LlamaModel m;
    assert_int_equal(llama_load(&m, "tests/fixtures/gguf/tiny-mixed.gguf"), 0);
    StFile ref;
    assert_int_equal(st_open(&ref, "tests/fixtures/gguf/expected.safetensors"), 0);
    json_t *cfg = metadata_json(&ref, "config");
    const LlamaConfig *c = &m.cfg;
    assert_int_equal(c->vocab_size, json_integer_value(json_object_get(cfg, "vocab_size")));
    assert_int_equal(c->hidden_size, json_integer_value(json_object_get(cfg, "hidden_size")));
    assert_int_equal(c->intermediate_size, json_integer_value(json_object_get(cfg, "intermediate_size")));
    assert_int_equal(c->n_layers, json_integer_value(json_object_get(cfg, "num_hidden_layers")));
    assert_int_equal(c->n_heads, json_integer_value(json_object_get(cfg, "num_attention_heads")));
    assert_int_equal(c->n_kv_heads, json_integer_value(json_object_get(cfg, "num_key_value_heads")));
    assert_int_equal(c->head_dim, json_integer_value(json_object_get(cfg, "head_dim")));
    assert_int_equal(c->max_position_embeddings, json_integer_value(json_object_get(cfg, "max_position_embeddings")));
    assert_true(c->rms_norm_eps == (float)json_number_value(json_object_get(cfg, "rms_norm_eps")));
    assert_true(c->rope_theta == (float)json_number_value(json_object_get(cfg, "rope_theta")));
    assert_int_equal(c->bos_token_id, json_integer_value(json_object_get(cfg, "bos_token_id")));
    assert_int_equal(c->eos_token_id, json_integer_value(json_object_get(cfg, "eos_token_id")));
    json_decref(cfg);
    size_t covered = 0;
    for (int k = 0; k < ref.n_tensors; k++) {
        const StTensor *t = &ref.tensors[k];
        size_t n = 0;
        const float *v = view_for(&m, t->name, &n);
        assert_non_null(v);
        assert_int_equal(n, t->numel);
        float *want = malloc(n * sizeof(float));
        st_tensor_to_f32(t, want);
        if (memcmp(v, want, n * sizeof(float)) != 0) fprintf(stderr, "%s differs\n", t->name);
        assert_memory_equal(v, want, n * sizeof(float));
        free(want);
        covered += n;
    }
    assert_int_equal(covered, m.n_params);
    st_close(&ref);
    llama_model_free(&m);
}

/* ---- SmolLM2 vs transformers' GGUF loader ---- */

static void smollm2_matches_transformers(void **state)
{
    (void)state;
    if (!file_exists(SMOLLM2)) skip();   /* needs `make model` */
    LlamaModel m;
    assert_int_equal(llama_load(&m, SMOLLM2), 0);
    const LlamaConfig *c = &m.cfg;
    assert_int_equal(c->n_layers, 30);
    assert_int_equal(c->hidden_size, 576);
    assert_int_equal(c->intermediate_size, 1536);
    assert_int_equal(c->n_heads, 9);
    assert_int_equal(c->n_kv_heads, 3);
    assert_int_equal(c->head_dim, 64);
    assert_int_equal(c->vocab_size, 49152);
    assert_int_equal(c->max_position_embeddings, 8192);
    assert_true(c->rms_norm_eps == 1e-5f);
    assert_true(c->rope_theta == 100000.0f);
    assert_int_equal(c->tie_word_embeddings, 1);
    assert_int_equal(c->rope_scaling, ROPE_SCALING_NONE);
    assert_ptr_equal(m.lm_head, m.tok_embed);
    assert_int_equal(m.n_params, 134515008);   /* 134.5 M */

    StFile ref;
    assert_int_equal(st_open(&ref, "tests/fixtures/smollm2/reference.safetensors"), 0);
    double worst = 0;
    int checked = 0;
    for (int k = 0; k < ref.n_tensors; k++) {
        const StTensor *t = &ref.tensors[k];
        size_t len = strlen(t->name);
        if (strncmp(t->name, "w.", 2) != 0 || (len > 5 && !strcmp(t->name + len - 5, ".rows"))) continue;
        char rows_name[160];
        snprintf(rows_name, sizeof rows_name, "%s.rows", t->name);
        const StTensor *rows = st_find(&ref, rows_name);
        assert_non_null(rows);
        size_t n = 0;
        const float *v = view_for(&m, t->name + 2, &n);
        assert_non_null(v);
        size_t cols = (size_t)t->shape[1];
        float *want = malloc(t->numel * sizeof(float));
        st_tensor_to_f32(t, want);
        for (size_t r = 0; r < (size_t)rows->numel; r++) {
            int64_t row;
            memcpy(&row, rows->data + 8 * r, 8);
            for (size_t col = 0; col < cols; col++) {
                double diff = fabs((double)v[(size_t)row * cols + col] - want[r * cols + col]);
                if (diff > worst) worst = diff;
            }
        }
        free(want);
        checked++;
    }
    printf("# SmolLM2: %d weight slices vs transformers, max |difference| %.3g\n", checked, worst);
    assert_int_equal(checked, 10);
    assert_true(worst == 0);
    st_close(&ref);
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_matches_transformers),
        cmocka_unit_test(config_rejects_what_it_cannot_run),
        cmocka_unit_test(config_hash_is_canonical),
        cmocka_unit_test(tiny_from_sharded_f32),
        cmocka_unit_test(tiny_from_sharded_bf16),
        cmocka_unit_test(missing_pieces_are_named),
        cmocka_unit_test(tiny_round_trips_through_gguf),
        cmocka_unit_test(gguf_metadata_must_match_tensors),
        cmocka_unit_test(gguf_that_is_not_llama),
        cmocka_unit_test(gguf_py_file_matches_transformers),
        cmocka_unit_test(smollm2_matches_transformers),
    };
    return cmocka_run_group_tests_name("llama_load", tests, scratch_setup, scratch_cleanup);
}
