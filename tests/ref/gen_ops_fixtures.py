"""Single-op references for kernels/cpu, from PyTorch and Hugging Face code.

Writes tests/fixtures/ops/ops.safetensors (run from the repository root by
`make fixtures`; 43 KiB, byte-reproducible).  Every op gets float32 inputs (the C kernel
reads exactly these values), an upstream gradient `*_dy`, and the outputs
and input gradients computed by torch autograd in FLOAT64 from those same
float32 values (names end in _f64), so the C side measures its own error
and not the reference's rounding.

  matmul     F.linear:      mm_x [5,12], mm_w [7,12], mm_b [7]
                            -> mm_y_f64, mm_dx_f64, mm_dw_f64, mm_db_f64
  rmsnorm    LlamaRMSNorm (eps 1e-5): rn_x [5,64], rn_w [64]
                            -> rn_y_f64, rn_dx_f64, rn_dw_f64;
                            rn_y_f32 is the float32 module's own output
  rope       transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb
             (rotate-half):
             rope_inv_freq_llama3 [8]   head_dim 16, theta 500000, llama3
                                        scaling (8, 1, 4, 8192): the tiny
                                        test model's configuration
             rope_inv_freq_default [32] head_dim 64, theta 100000 (SmolLM2)
             rope_inv_freq_llama3_128 [64] head_dim 128, theta 500000,
                                        llama3 scaling (Llama 3.1 8B)
             rope_pos I32 [6] = -1, 0, 1, 5, 37, 8191
             rope_x [6,3,16]            rotated with the llama3 table
                            -> rope_y_f64, rope_dx_f64; rope_y_f32 from
                               the float32 HF path
  attention  HF eager attention: repeat_kv, q k^T / sqrt(hd), additive
             causal + padding mask of finfo.min, softmax in float32, @ v.
             att_q [2,5,4,8] (b, T, H, hd), att_k, att_v [2,5,2,8] (GQA 2),
             att_mask I32 [2,5] = left padding [[0,0,1,1,1],[1,1,1,1,1]]
                            -> att_y_f64 [2,5,4,8]; att_dy is zero at the
                               pad query rows (their HF value is arbitrary),
                               att_dq_f64, att_dk_f64, att_dv_f64
  swiglu     F.silu(g) * u: sw_g, sw_u [7,24] (g spans -12..12)
                            -> sw_y_f64, sw_dg_f64, sw_du_f64
  xent       F.cross_entropy(reduction="none"): xe_logits [4,50],
             xe_targets I32 [4] (one -100, ignored), xe_dloss [4]
                            -> xe_loss_f64, xe_dlogits_f64 (gradient of
                               sum(dloss * loss))
"""
import os

import torch
import torch.nn.functional as F
from deterministic_safetensors import save as save_file
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (LlamaRMSNorm, LlamaRotaryEmbedding,
                                                      apply_rotary_pos_emb, repeat_kv)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "ops")


def leaf64(t):
    return t.detach().double().requires_grad_(True)


def rope_config(head_dim, theta, llama3):
    kw = dict(hidden_size=head_dim * 3, num_attention_heads=3, head_dim=head_dim,
              rope_theta=theta, max_position_embeddings=131072)
    if llama3:
        kw["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    return LlamaConfig(**kw)


def main():
    torch.manual_seed(7)
    out = {}

    # matmul
    x, w, b = torch.randn(5, 12), torch.randn(7, 12) * 0.3, torch.randn(7)
    dy = torch.randn(5, 7)
    x6, w6, b6 = leaf64(x), leaf64(w), leaf64(b)
    y = F.linear(x6, w6, b6)
    (y * dy.double()).sum().backward()
    out.update(mm_x=x, mm_w=w, mm_b=b, mm_dy=dy, mm_y_f64=y.detach(), mm_dx_f64=x6.grad,
               mm_dw_f64=w6.grad, mm_db_f64=b6.grad)

    # rmsnorm
    x, w = torch.randn(5, 64) * 2.0, 1.0 + 0.1 * torch.randn(64)
    dy = torch.randn(5, 64)
    norm = LlamaRMSNorm(64, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(w)
        y32 = norm(x)
    norm64 = LlamaRMSNorm(64, eps=1e-5).double()
    with torch.no_grad():
        norm64.weight.copy_(w.double())
    x6 = leaf64(x)
    y = norm64(x6)
    (y * dy.double()).sum().backward()
    out.update(rn_x=x, rn_w=w, rn_dy=dy, rn_y_f32=y32, rn_y_f64=y.detach(), rn_dx_f64=x6.grad,
               rn_dw_f64=norm64.weight.grad)

    # rope
    cfg = rope_config(16, 500000.0, True)
    rot = LlamaRotaryEmbedding(config=cfg)
    out["rope_inv_freq_llama3"] = rot.inv_freq.float().clone()
    out["rope_inv_freq_default"] = LlamaRotaryEmbedding(
        config=rope_config(64, 100000.0, False)).inv_freq.float().clone()
    out["rope_inv_freq_llama3_128"] = LlamaRotaryEmbedding(
        config=rope_config(128, 500000.0, True)).inv_freq.float().clone()
    pos = torch.tensor([-1, 0, 1, 5, 37, 8191])
    x = torch.randn(6, 3, 16)
    dy = torch.randn(6, 3, 16)
    cos, sin = rot(x, pos[None, :])                       # [1, 6, 16] float32
    xq = x.transpose(0, 1)[None]                          # [1, H, N, hd] as HF lays it out
    y32, _ = apply_rotary_pos_emb(xq, xq, cos, sin)
    x6 = leaf64(x)
    y6, _ = apply_rotary_pos_emb(x6.transpose(0, 1)[None], x6.transpose(0, 1)[None],
                                 cos.double(), sin.double())
    y6 = y6[0].transpose(0, 1)
    (y6 * dy.double()).sum().backward()
    out.update(rope_pos=pos.int(), rope_x=x, rope_dy=dy, rope_y_f32=y32[0].transpose(0, 1).contiguous(),
               rope_y_f64=y6.detach().contiguous(), rope_dx_f64=x6.grad)

    # attention
    b, T, H, Hkv, hd = 2, 5, 4, 2, 8
    q, k, v = torch.randn(b, T, H, hd), torch.randn(b, T, Hkv, hd), torch.randn(b, T, Hkv, hd)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    dy = torch.randn(b, T, H, hd) * mask[:, :, None, None]
    q6, k6, v6 = leaf64(q), leaf64(k), leaf64(v)

    def eager(q, k, v, dtype):
        qh = q.transpose(1, 2)                            # [b, H, T, hd]
        kh = repeat_kv(k.transpose(1, 2), H // Hkv)
        vh = repeat_kv(v.transpose(1, 2), H // Hkv)
        scores = torch.matmul(qh, kh.transpose(2, 3)) / (hd ** 0.5)
        min_v = torch.finfo(dtype).min
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        blocked = causal[None, None] | (mask[:, None, None, :] == 0)
        scores = scores + torch.zeros_like(scores).masked_fill(blocked, min_v)
        p = F.softmax(scores, dim=-1, dtype=dtype)
        return torch.matmul(p, vh).transpose(1, 2)        # [b, T, H, hd]

    y = eager(q6, k6, v6, torch.float64)
    (y * dy.double()).sum().backward()
    out.update(att_q=q, att_k=k, att_v=v, att_mask=mask.int(), att_dy=dy,
               att_y_f64=y.detach().contiguous(), att_dq_f64=q6.grad, att_dk_f64=k6.grad,
               att_dv_f64=v6.grad)

    # swiglu
    g = torch.linspace(-12, 12, 7 * 24).reshape(7, 24)[torch.randperm(7)] + 0.05 * torch.randn(7, 24)
    u = torch.randn(7, 24)
    dy = torch.randn(7, 24)
    g6, u6 = leaf64(g), leaf64(u)
    y = F.silu(g6) * u6
    (y * dy.double()).sum().backward()
    out.update(sw_g=g, sw_u=u, sw_dy=dy, sw_y_f64=y.detach(), sw_dg_f64=g6.grad, sw_du_f64=u6.grad)

    # softmax cross-entropy
    logits = torch.randn(4, 50) * 3.0
    targets = torch.tensor([3, 49, -100, 0])
    dloss = torch.tensor([0.5, 1.0, 2.0, 3.5])
    l6 = leaf64(logits)
    loss = F.cross_entropy(l6, targets, reduction="none", ignore_index=-100)
    (loss * dloss.double()).sum().backward()
    out.update(xe_logits=logits, xe_targets=targets.int(), xe_dloss=dloss,
               xe_loss_f64=loss.detach(), xe_dlogits_f64=l6.grad)

    out = {k: v.detach().contiguous() for k, v in out.items()}
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "ops.safetensors")
    save_file(out, path, metadata={"generator": "tests/ref/gen_ops_fixtures.py",
                                   "torch": torch.__version__,
                                   "transformers": __import__("transformers").__version__})
    print(f"gen_ops_fixtures: wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
