"""SmolLM2-135M-Instruct (Q4_1 GGUF) references from transformers' own GGUF path.

Needs models/SmolLM2-135M-Instruct.Q4_1.gguf (`make model`); stops with a
message if it is missing.  Writes tests/fixtures/smollm2/reference.safetensors.

How the reference model is built: transformers 4.46.3 dequantises and
un-permutes the GGUF with transformers.modeling_gguf_pytorch_utils.
load_gguf_checkpoint (the function from_pretrained(dir, gguf_file=...)
calls; from_pretrained itself additionally insists on `accelerate`, which
the pinned environment does not have), the config comes from
AutoConfig.from_pretrained(dir, gguf_file=...).  One correction: 4.46.3
leaves tie_word_embeddings False although the file has no output.weight,
which would leave lm_head randomly initialised; the model IS tied (llama.cpp
uses token_embd as the output matrix), so we set it True before building
LlamaForCausalLM.  float32, attn_implementation="eager", CPU.

Prompts (plain completions, no chat template, no BOS: ids are
tokenizer(prompt, add_special_tokens=False) of the GGUF's own tokenizer as
transformers converts it; prompts contain no digits, so the "smollm"
digit-splitting pre-tokenizer cannot matter):
  0 "The capital of France is"   1 "Paris is a city in"
  2 "The Eiffel Tower is located in the city of"   3 "Water boils at a temperature of"

reference.safetensors, for prompt k (n_k tokens, positions 0..n_k-1, no mask):
  p{k}.input_ids   I64 [n_k]
  p{k}.hidden      F32 [4, 2, 576]  output_hidden_states[l] for l in
                   HIDDEN_LAYERS = (0, 1, 15, 30) at positions (0, n_k-1);
                   hs[0] = embeddings, hs[30] = after the final RMSNorm
  p{k}.top_ids     I64 [20]  top-20 token ids of the last position's logits
  p{k}.top_logits  F32 [20]  their logits (descending)
  p0.last_logits   F32 [49152]  the whole last-position logits row of prompt 0
Dequantised weights (HF names and orientation [out, in]), rows listed in
  w.NAME.rows I64 [r] and values in w.NAME F32 [r, in]:
  model.embed_tokens.weight (Q8_0), lm_head.weight (== embed, tied),
  model.layers.0.self_attn.q_proj.weight and .k_proj (Q4_1; rows chosen
  across head halves so the RoPE un-permutation is checked), layer 29 k_proj,
  layer 5 v_proj, layer 0 o_proj, layer 29 mlp.down_proj, and full vectors
  model.layers.0.input_layernorm.weight, model.norm.weight (F32) with rows [0].
Metadata: hidden_layers, hidden_positions ("first,last"), prompts (JSON).
"""
import json
import os
import sys

import torch
from deterministic_safetensors import save as save_file
from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GGUF_DIR = os.path.join(ROOT, "models")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "smollm2")
PROMPTS = ["The capital of France is", "Paris is a city in",
           "The Eiffel Tower is located in the city of", "Water boils at a temperature of"]
HIDDEN_LAYERS = (0, 1, 15, 30)
TOPK = 20
WEIGHT_ROWS = {
    "model.embed_tokens.weight": [0, 1, 2, 504, 3575, 49151],
    "lm_head.weight": [0, 504, 49151],
    "model.layers.0.self_attn.q_proj.weight": [0, 1, 2, 31, 32, 33, 63, 64, 96, 575],
    "model.layers.0.self_attn.k_proj.weight": [0, 1, 31, 32, 33, 63, 64, 191],
    "model.layers.29.self_attn.k_proj.weight": [0, 1, 32, 33, 128, 160],
    "model.layers.5.self_attn.v_proj.weight": [0, 1, 191],
    "model.layers.0.self_attn.o_proj.weight": [0, 1, 575],
    "model.layers.29.mlp.down_proj.weight": [0, 575],
    "model.layers.0.input_layernorm.weight": None,
    "model.norm.weight": None,
}


def build_model():
    path = os.path.join(GGUF_DIR, GGUF_NAME)
    cfg = AutoConfig.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    cfg.tie_word_embeddings = True
    cfg._attn_implementation = "eager"
    state = load_gguf_checkpoint(path, return_tensors=True)["tensors"]
    model = LlamaForCausalLM(cfg).float().eval()
    result = model.load_state_dict(state, strict=False)
    assert list(result.missing_keys) == ["lm_head.weight"] and not result.unexpected_keys, result
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


def main():
    if not os.path.exists(os.path.join(GGUF_DIR, GGUF_NAME)):
        sys.exit(f"gen_smollm2_fixtures: {GGUF_DIR}/{GGUF_NAME} is missing; run `make model` first")
    torch.set_default_dtype(torch.float32)
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    model = build_model()
    out = {}
    with torch.no_grad():
        for k, prompt in enumerate(PROMPTS):
            ids = tok(prompt, add_special_tokens=False).input_ids
            x = torch.tensor([ids])
            o = model(input_ids=x, output_hidden_states=True)
            n = len(ids)
            hs = torch.stack([o.hidden_states[l][0, [0, n - 1]] for l in HIDDEN_LAYERS])
            last = o.logits[0, -1]
            top = torch.topk(last, TOPK)
            out[f"p{k}.input_ids"] = torch.tensor(ids, dtype=torch.long)
            out[f"p{k}.hidden"] = hs.contiguous()
            out[f"p{k}.top_ids"] = top.indices.contiguous()
            out[f"p{k}.top_logits"] = top.values.contiguous()
            if k == 0:
                out["p0.last_logits"] = last.contiguous()
            print(f"  prompt {k}: {n} tokens, top-3 {tok.convert_ids_to_tokens(top.indices[:3].tolist())}")
        sd = model.state_dict()
        for name, rows in WEIGHT_ROWS.items():
            w = sd[name]
            if rows is None:
                out[f"w.{name}"] = w[None].clone()
                out[f"w.{name}.rows"] = torch.tensor([0], dtype=torch.long)
            else:
                out[f"w.{name}"] = w[rows].clone()
                out[f"w.{name}.rows"] = torch.tensor(rows, dtype=torch.long)
    os.makedirs(OUT_DIR, exist_ok=True)
    meta = {"hidden_layers": json.dumps(list(HIDDEN_LAYERS)), "hidden_positions": "first,last",
            "prompts": json.dumps(PROMPTS), "generator": "tests/ref/gen_smollm2_fixtures.py",
            "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    path = os.path.join(OUT_DIR, "reference.safetensors")
    save_file(out, path, metadata=meta)
    print(f"gen_smollm2_fixtures: wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
