/* A Llama-family model in memory: its configuration and its weights.
 *
 * One struct for every source (Hugging Face safetensors directory, GGUF
 * file) so that the forward pass never knows where the weights came from.
 * Weights are fp32 in one parameter buffer with named views into it (the
 * llm.c layout), in Hugging Face orientation: a projection W of shape
 * [out, in] is stored row-major, y = x W^T.  GGUF's RoPE row permutation of
 * Q and K is undone at load time, so one RoPE kernel (rotate-half) serves
 * both sources. */
#ifndef HD_LLAMA_MODEL_H
#define HD_LLAMA_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ROPE_SCALING_NONE = 0, ROPE_SCALING_LLAMA3 = 1 } RopeScalingType;

typedef struct {
    int vocab_size;
    int hidden_size;          /* d */
    int intermediate_size;    /* SwiGLU width */
    int n_layers;
    int n_heads;              /* query heads */
    int n_kv_heads;           /* key/value heads (GQA) */
    int head_dim;
    int max_position_embeddings;
    float rms_norm_eps;
    float rope_theta;
    RopeScalingType rope_scaling;
    float rope_factor;                 /* llama3 rule: factor, low/high freq */
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_max_position;
    int tie_word_embeddings;
    int bos_token_id;         /* -1 when absent */
    int eos_token_id;         /* the first end-of-sequence id, -1 when absent */
    int n_eos_token_ids;      /* Llama 3.1 instruct lists several: stop on any */
    int eos_token_ids[8];
    char model_id[256];       /* a name for provenance: directory or file base name */
    char config_hash[65];     /* SHA-256 hex of the configuration as loaded */
} LlamaConfig;

typedef struct {
    float *attn_norm;  /* [d] */
    float *wq;         /* [n_heads*head_dim, d] */
    float *wk;         /* [n_kv_heads*head_dim, d] */
    float *wv;         /* [n_kv_heads*head_dim, d] */
    float *wo;         /* [d, n_heads*head_dim] */
    float *ffn_norm;   /* [d] */
    float *w_gate;     /* [ffn, d] */
    float *w_up;       /* [ffn, d] */
    float *w_down;     /* [d, ffn] */
} LlamaLayerWeights;

/* Frozen layers kept as their file stores them (llama_pack.h). */
typedef struct LlamaPacked LlamaPacked;

typedef struct {
    LlamaConfig cfg;
    float *params;            /* the one parameter buffer */
    size_t n_params;
    float *tok_embed;         /* [vocab, d] */
    float *final_norm;        /* [d] */
    float *lm_head;           /* [vocab, d]; == tok_embed when tied */
    LlamaLayerWeights *layers;/* [n_layers] */
    LlamaPacked *packed;      /* NULL unless llama_model_pack_layers */
} LlamaModel;

#endif
