"""A tiny llama GGUF written by gguf-py, and what transformers reads from it.

Writes tests/fixtures/gguf/:
  tiny-mixed.gguf   a random 1-layer Llama (vocab 64, hidden 32, ffn 64,
                    4 query heads, 2 KV heads of 8, rope_theta 10000, eps
                    1e-5, untied) written with gguf.GGUFWriter, every tensor
                    type the loader supports:
                      token_embd Q8_0, output Q4_1, attn_q Q4_0, attn_k Q8_0,
                      attn_v F16, attn_output BF16, ffn_gate Q4_0, ffn_up
                      Q4_1, ffn_down F32, norms F32
                    attn_q / attn_k rows permuted with the `permute` function
                    of llama.cpp's convert_hf_to_gguf.py (copied below), plus
                    metadata of many value types (also the fuzz seed).
  expected.safetensors  every tensor as transformers 4.46.3's GGUF loader
                    returns it (load_gguf_checkpoint: gguf-py dequantize,
                    then its own reverse permutation of Q/K), HF names and
                    orientation, float32; metadata "config" = JSON of the
                    config transformers derives from the file.
The C test loads the GGUF with llama_load and requires equality, bit for bit.
"""
import json
import os

import numpy as np
import torch
from gguf import GGMLQuantizationType as Q, GGUFWriter
from gguf.quants import quantize
from deterministic_safetensors import save as save_file
from transformers import AutoConfig
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")
V, D, FFN, H, HKV, HD = 64, 32, 64, 4, 2, 8


def permute(weights, n_head, n_head_kv):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def main():
    rng = np.random.default_rng(7)
    w = lambda *shape: (rng.standard_normal(shape) * 0.1).astype(np.float32)
    norm = lambda n: (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    tensors = [
        ("token_embd.weight", w(V, D), Q.Q8_0),
        ("output.weight", w(V, D), Q.Q4_1),
        ("output_norm.weight", norm(D), Q.F32),
        ("blk.0.attn_norm.weight", norm(D), Q.F32),
        ("blk.0.attn_q.weight", permute(w(H * HD, D), H, H), Q.Q4_0),
        ("blk.0.attn_k.weight", permute(w(HKV * HD, D), H, HKV), Q.Q8_0),
        ("blk.0.attn_v.weight", w(HKV * HD, D), Q.F16),
        ("blk.0.attn_output.weight", w(D, H * HD), Q.BF16),
        ("blk.0.ffn_norm.weight", norm(D), Q.F32),
        ("blk.0.ffn_gate.weight", w(FFN, D), Q.Q4_0),
        ("blk.0.ffn_up.weight", w(FFN, D), Q.Q4_1),
        ("blk.0.ffn_down.weight", w(D, FFN), Q.F32),
    ]
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "tiny-mixed.gguf")
    gw = GGUFWriter(path, "llama")
    gw.add_name("tiny-mixed")
    gw.add_block_count(1)
    gw.add_context_length(256)
    gw.add_embedding_length(D)
    gw.add_feed_forward_length(FFN)
    gw.add_head_count(H)
    gw.add_head_count_kv(HKV)
    gw.add_rope_freq_base(10000.0)
    gw.add_layer_norm_rms_eps(1e-5)
    gw.add_rope_dimension_count(HD)
    gw.add_vocab_size(V)
    gw.add_bos_token_id(1)
    gw.add_eos_token_id(2)
    gw.add_tokenizer_model("gpt2")
    gw.add_tokenizer_pre("default")
    gw.add_token_list([chr(ord("a") + i % 26) * (1 + i // 26) for i in range(V)])
    gw.add_token_types([1] * V)
    gw.add_token_merges(["a a", "b b"])
    gw.add_int8("test.i8", -3)
    gw.add_uint16("test.u16", 65535)
    gw.add_int64("test.i64", -(1 << 40))
    gw.add_float64("test.f64", 0.125)
    gw.add_bool("test.bool", True)
    gw.add_array("test.floats", [0.5, -1.5])
    for name, data, qtype in tensors:
        if qtype == Q.F32:
            gw.add_tensor(name, data)
        elif qtype == Q.F16:
            gw.add_tensor(name, data.astype(np.float16))
        else:
            gw.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)
    gw.write_header_to_file()
    gw.write_kv_data_to_file()
    gw.write_tensors_to_file()
    gw.close()

    cfg = AutoConfig.from_pretrained(OUT, gguf_file="tiny-mixed.gguf")
    state = load_gguf_checkpoint(path, return_tensors=True)["tensors"]
    expected = {k: v.float().contiguous() for k, v in state.items()}
    keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta",
            "bos_token_id", "eos_token_id"]
    meta = {"config": json.dumps({k: getattr(cfg, k) for k in keys}), "generator": "tests/ref/gen_gguf_fixtures.py"}
    save_file(expected, os.path.join(OUT, "expected.safetensors"), metadata=meta)
    size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"gen_gguf_fixtures: wrote {OUT} ({size / 1024:.0f} KiB, {len(expected)} tensors)")


if __name__ == "__main__":
    main()
