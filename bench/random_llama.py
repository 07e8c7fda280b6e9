"""Write a Hugging Face Llama directory with random bf16 weights, for timing.

Step time, memory and tokens/s depend on a model's shapes, not on its
weights, and a lent GPU machine can fetch nothing: this makes a model of the
named shapes there in seconds (numpy only).  Its config_hash (hyperdas(7)) is
the real model's, so acts records made by the real model are accepted by
hd-train -m DIR.

  python3 bench/random_llama.py SHAPE TOKENIZER_DIR OUT_DIR [--layers N]

SHAPE: smollm2 (SmolLM2-135M-Instruct: 576 x 30 layers, GQA 9/3, vocab
49152, tied embeddings) or llama3-8b (4096 x 32 layers, GQA 32/8, vocab
128256).  TOKENIZER_DIR's tokenizer.json (and tokenizer_config.json, if
there) are copied in; its ids must fit the vocabulary.  --layers N overrides
the layer count (a quick check of this script on a small machine).

Weights are N(0, 0.02) (norm weights 1), bf16.  To keep writing at disk
speed, one pool of random bf16 values is drawn once and every tensor is a
window of it at its own offset: timing does not care that tensors repeat.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

SHAPES = {
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
                    rms_norm_eps=1e-5, rope_theta=100000.0, rope_scaling=None, tie_word_embeddings=True,
                    bos_token_id=1, eos_token_id=2),
    "llama3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=8192,
                      rms_norm_eps=1e-5, rope_theta=500000.0, rope_scaling=None, tie_word_embeddings=False,
                      bos_token_id=128000, eos_token_id=128001),
}


def tensor_list(c):
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    out = [("model.embed_tokens.weight", (V, H))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (H,)), (p + "self_attn.q_proj.weight", (q, H)),
                (p + "self_attn.k_proj.weight", (kv, H)), (p + "self_attn.v_proj.weight", (kv, H)),
                (p + "self_attn.o_proj.weight", (H, q)), (p + "post_attention_layernorm.weight", (H,)),
                (p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.up_proj.weight", (I, H)),
                (p + "mlp.down_proj.weight", (H, I))]
    out.append(("model.norm.weight", (H,)))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, H)))
    return out


def bf16_bits(x):
    """float32 -> bf16 bit patterns (round to nearest even), as uint16."""
    u = x.astype(np.float32).view(np.uint32)
    u = u + (0x7FFF + ((u >> 16) & 1))
    return (u >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("tokenizer_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int)
    a = ap.parse_args()
    c = dict(SHAPES[a.shape])
    if a.layers:
        c["num_hidden_layers"] = a.layers
    if not os.path.exists(os.path.join(a.tokenizer_dir, "tokenizer.json")):
        sys.exit(f"random_llama: {a.tokenizer_dir}: no tokenizer.json")
    os.makedirs(a.out_dir, exist_ok=True)
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
               attention_bias=False, mlp_bias=False, torch_dtype="bfloat16", **c)
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(a.tokenizer_dir, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(a.out_dir, name))

    tensors = tensor_list(c)
    header, off = {}, 0
    for name, shape in tensors:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    pool_n = 1 << 26  # 64 Mi values (128 MiB): windows of it make every tensor
    rng = np.random.default_rng(0)
    pool = bf16_bits(rng.standard_normal(2 * pool_n, dtype=np.float32) * 0.02)
    one = bf16_bits(np.ones(1, dtype=np.float32))[0]
    path = os.path.join(a.out_dir, "model.safetensors")
    with open(path + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for k, (name, shape) in enumerate(tensors):
            n = int(np.prod(shape))
            if name.endswith("norm.weight"):
                f.write(np.full(n, one, dtype=np.uint16).tobytes())
                continue
            start = (k * 7919) % pool_n
            while n > 0:
                m = min(n, pool_n)
                f.write(pool[start:start + m].tobytes())
                n -= m
    os.replace(path + ".part", path)
    print(f"random_llama: {a.shape} ({c['num_hidden_layers']} layers) -> {path}: {off / 2**30:.2f} GiB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
