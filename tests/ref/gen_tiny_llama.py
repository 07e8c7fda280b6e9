"""Tiny random Llama checkpoints and the forward-pass references for them.

Writes (run from the repository root by `make fixtures`):

  tests/fixtures/tiny-llama-f32/   HF checkpoint, float32, SHARDED:
      config.json, generation_config.json, model.safetensors.index.json,
      model-0000K-of-0000N.safetensors (N >= 2), README.md, expected.safetensors
  tests/fixtures/tiny-llama-bf16/  the same weights rounded to bfloat16,
      sharded the same way (no expected.safetensors)

Model (transformers 4.46.3 LlamaForCausalLM, torch.manual_seed(1234)):
  vocab 256, hidden 64, intermediate 128, 3 layers, 4 query heads, 2 KV
  heads, head_dim 16, rope_theta 500000, rope_scaling llama3 (factor 8,
  low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings
  8192), rms_norm_eps 1e-5, untied embeddings, bos 1, eos 2, pad 0.
  Linear/embedding weights ~ N(0, 0.1) (initializer_range 0.1, so the
  activations are not all tiny); every RMSNorm weight is 1 + 0.1*N(0,1)
  (so a loader that mixes the norms up is caught); embedding row 0 (pad) is
  zero as nn.Embedding(padding_idx=0) makes it.

expected.safetensors (every float tensor float32 unless the name ends _f64):
  input_ids        I64 [3, 9]   rows of 9, 6 and 4 real tokens, LEFT padded
                                with pad id 0
  attention_mask   I64 [3, 9]   1 = real token
  position_ids     I64 [3, 9]   cumsum(mask) * mask - 1: real tokens 0..n-1,
                                pads -1 (the HyperDAS convention, hyperdas(7)
                                2.4; NOT clipped: generate() would
                                put 1 on pads, which changes nothing at real
                                positions)
  hidden_states    F32 [4, 3, 9, 64]  output_hidden_states of the padded
                                batch: [0] = embeddings, [1], [2] = residual
                                stream after layers 0 and 1, [3] = AFTER THE
                                FINAL RMSNorm (HF convention; the raw residual
                                after the last layer is not in the tuple)
  last_residual    F32 [3, 9, 64]  residual stream after the last layer,
                                before the final norm (forward hook)
  logits           F32 [3, 9, 256]
  hidden_states_f64, logits_f64 F64: the same forward in float64 (model
                                cast with .double()), each prompt run alone
                                unpadded; pad positions hold 0.  To judge how
                                much of a float32 difference is rounding
  rope_inv_freq    F32 [8]      model.model.rotary_emb.inv_freq (llama3 rule)
  prompt_lengths   I64 [3]      9, 6, 4
  greedy_ids       I64 [3, 8]   8 greedy tokens after each prompt run alone
                                (unpadded, positions 0..n-1, no mask), by a
                                plain loop: full forward, argmax of the last
                                logits, append.  greedy_margin F32 [3, 8] is
                                top1 - top2 of each step's logits (all > 1e-3,
                                so float32 noise cannot flip them)
  weight_checks    F64 [n, 5]   per parameter of the f32 model, in the order
                                of the metadata key "weight_names" (a JSON
                                list of HF names): sum, sum of squares,
                                element [0], element [numel // 2], element [-1]
                                of the flattened tensor
  weight_checks_bf16 F64 [n, 5] the same for the bf16 checkpoint's values

Compare only positions with attention_mask == 1: at pad positions HF eager
attention sees a fully masked row (every score is finfo.min) and attends
uniformly to all keys, future ones included; nothing real depends on it.
Computed with attn_implementation="eager", float32, torch 2.5.1 on CPU.
"""
import json
import os
import sys

import numpy as np
import torch
from deterministic_safetensors import save as save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
F32_DIR = os.path.join(ROOT, "tests", "fixtures", "tiny-llama-f32")
BF16_DIR = os.path.join(ROOT, "tests", "fixtures", "tiny-llama-bf16")
SHARD = "200KB"   # f32 model is ~0.6 MB: 4 shards; bf16: 2 shards


def build_model():
    torch.manual_seed(1234)
    cfg = LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        initializer_range=0.1, attention_bias=False, mlp_bias=False,
        attn_implementation="eager", torch_dtype="float32")
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return model


def batch_inputs():
    g = torch.Generator().manual_seed(99)
    lengths = [9, 6, 4]
    T = max(lengths)
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    mask = torch.zeros(len(lengths), T, dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, T - n:] = torch.randint(3, 256, (n,), generator=g)
        ids[r, T - n] = 1  # each prompt starts with BOS
        mask[r, T - n:] = 1
    pos = torch.cumsum(mask, dim=1) * mask - 1
    return ids, mask, pos, lengths


def greedy(model, prompt, steps=8):
    seq = prompt.clone()
    out, margins = [], []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=seq[None]).logits[0, -1]
            top2 = torch.topk(logits, 2)
            out.append(int(top2.indices[0]))
            margins.append(float(top2.values[0] - top2.values[1]))
            seq = torch.cat([seq, top2.indices[:1]])
    return out, margins


def checks(model):
    names, rows = [], []
    for name, p in model.state_dict().items():
        v = p.detach().to(torch.float64).flatten()
        names.append(name)
        rows.append([float(v.sum()), float((v * v).sum()), float(v[0]), float(v[v.numel() // 2]), float(v[-1])])
    return names, torch.tensor(rows, dtype=torch.float64)


def save_sharded(model, path):
    os.makedirs(path, exist_ok=True)
    for f in os.listdir(path):
        if f.endswith(".safetensors") or f.endswith(".json"):
            os.remove(os.path.join(path, f))
    model.save_pretrained(path, max_shard_size=SHARD, safe_serialization=True)
    shards = [f for f in os.listdir(path) if f.startswith("model-")]
    assert len(shards) >= 2 and os.path.exists(os.path.join(path, "model.safetensors.index.json")), shards


def main():
    torch.set_default_dtype(torch.float32)
    model = build_model()
    ids, mask, pos, lengths = batch_inputs()

    hooked = {}
    h = model.model.layers[-1].register_forward_hook(lambda m, i, o: hooked.__setitem__("res", o[0]))
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True)
    h.remove()
    # float64: each prompt alone (a padded float64 batch gives NaN at pad
    # rows, which 0-weight attention then spreads as 0*NaN); real positions
    # do not depend on pads, so this is the same function of the inputs.
    model64 = build_model().double()
    T = ids.shape[1]
    hs64 = torch.zeros(len(out.hidden_states), *ids.shape, model.config.hidden_size, dtype=torch.float64)
    logits64 = torch.zeros(*ids.shape, model.config.vocab_size, dtype=torch.float64)
    with torch.no_grad():
        for r, n in enumerate(lengths):
            o = model64(input_ids=ids[r:r + 1, T - n:], output_hidden_states=True)
            hs64[:, r, T - n:] = torch.stack(o.hidden_states)[:, 0]
            logits64[r, T - n:] = o.logits[0]

    greedy_ids, greedy_margin = [], []
    for r, n in enumerate(lengths):
        toks, margins = greedy(model, ids[r, ids.shape[1] - n:])
        greedy_ids.append(toks)
        greedy_margin.append(margins)
    if min(min(m) for m in greedy_margin) <= 1e-3:
        sys.exit("gen_tiny_llama: a greedy step is a near tie; pick another seed")

    save_sharded(model, F32_DIR)
    model_bf16 = build_model().to(torch.bfloat16)
    save_sharded(model_bf16, BF16_DIR)

    names, wc = checks(model)
    names_b, wc_b = checks(model_bf16)
    assert names == names_b
    expected = {
        "input_ids": ids, "attention_mask": mask, "position_ids": pos,
        "hidden_states": torch.stack(out.hidden_states).contiguous(),
        "last_residual": hooked["res"].contiguous(),
        "logits": out.logits.contiguous(),
        "hidden_states_f64": hs64, "logits_f64": logits64,
        "rope_inv_freq": model.model.rotary_emb.inv_freq.float().contiguous(),
        "prompt_lengths": torch.tensor(lengths, dtype=torch.long),
        "greedy_ids": torch.tensor(greedy_ids, dtype=torch.long),
        "greedy_margin": torch.tensor(greedy_margin, dtype=torch.float32),
        "weight_checks": wc, "weight_checks_bf16": wc_b,
    }
    meta = {"weight_names": json.dumps(names), "generator": "tests/ref/gen_tiny_llama.py",
            "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    save_file(expected, os.path.join(F32_DIR, "expected.safetensors"), metadata=meta)
    with open(os.path.join(F32_DIR, "README.md"), "w") as f:
        f.write("# tiny-llama-f32: a random Llama-3-style model and its reference outputs\n\n"
                "Generated by `tests/ref/gen_tiny_llama.py` (run `make fixtures`); do not edit.\n"
                "The script's docstring is the specification of every file here:\n\n```\n"
                + __doc__.strip() + "\n```\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d in (F32_DIR, BF16_DIR) for f in os.listdir(d))
    print(f"gen_tiny_llama: wrote {F32_DIR} and {BF16_DIR} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
