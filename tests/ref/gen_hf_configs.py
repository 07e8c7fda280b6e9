"""config.json of the model families the loader must accept, and what
transformers makes of them.

Writes tests/fixtures/hf_configs/NAME/config.json, copies of the published
config.json files of meta-llama/Llama-2-7b-hf, meta-llama/Meta-Llama-3-8B and
meta-llama/Llama-3.1-8B-Instruct (weights are not needed: the C test only
parses them), plus tests/fixtures/hf_configs/expected.safetensors:
  NAME.inv_freq  F32 [head_dim/2]  the RoPE inverse frequencies transformers
                 4.46.3 computes for that config (ROPE_INIT_FUNCTIONS, so
                 the llama3 rule for 3.1)
  metadata NAME  JSON of the values transformers' LlamaConfig resolves
                 (defaults included): vocab_size, hidden_size,
                 intermediate_size, num_hidden_layers, num_attention_heads,
                 num_key_value_heads, head_dim, max_position_embeddings,
                 rms_norm_eps, rope_theta, tie_word_embeddings, bos_token_id,
                 eos_token_id (int or list)
"""
import json
import os

import torch
from deterministic_safetensors import save as save_file
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf_configs")

COMMON = {"architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "initializer_range": 0.02,
          "model_type": "llama", "pretraining_tp": 1, "use_cache": True}
CONFIGS = {
    "llama2-7b": dict(COMMON, **{
        "_name_or_path": "meta-llama/Llama-2-7b-hf", "bos_token_id": 1, "eos_token_id": 2,
        "hidden_size": 4096, "intermediate_size": 11008, "max_position_embeddings": 4096,
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
        "rms_norm_eps": 1e-05, "rope_scaling": None, "tie_word_embeddings": False,
        "torch_dtype": "float16", "transformers_version": "4.31.0.dev0", "vocab_size": 32000}),
    "llama3-8b": dict(COMMON, **{
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 128000,
        "eos_token_id": 128001, "hidden_size": 4096, "intermediate_size": 14336,
        "max_position_embeddings": 8192, "num_attention_heads": 32, "num_hidden_layers": 32,
        "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.40.0.dev0", "vocab_size": 128256}),
    "llama3.1-8b-instruct": dict(COMMON, **{
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "hidden_size": 4096, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.42.3", "vocab_size": 128256}),
}
KEYS = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta",
        "tie_word_embeddings", "bos_token_id", "eos_token_id"]


def main():
    tensors, meta = {}, {"generator": "tests/ref/gen_hf_configs.py"}
    for name, cfg in CONFIGS.items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        c = LlamaConfig.from_pretrained(d)
        rope_type = (c.rope_scaling or {}).get("rope_type", "default")
        inv_freq, _ = ROPE_INIT_FUNCTIONS[rope_type](c, "cpu")
        tensors[name + ".inv_freq"] = inv_freq.float().contiguous()
        meta[name] = json.dumps({k: getattr(c, k) for k in KEYS})
    path = os.path.join(OUT, "expected.safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"gen_hf_configs: wrote {OUT}")


if __name__ == "__main__":
    main()
