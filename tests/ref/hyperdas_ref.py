"""HyperDAS reference in plain PyTorch, written from hyperdas(7) (man/man7/hyperdas.7).

Functional style: every trainable tensor lives in a dict keyed by the names
of tests/fixtures/hyperdas/README.md (HF orientation [out, in]), so the
fixture names ARE the model's names.  Runs in float32 or float64 (pass the
dtype to the loaders); the fixtures are computed in float64.

Decisions (hyperdas(7) sections in brackets):
  * single BOS, masks built by hand or by the caller (2.2, 14.1)
  * T: causal + key-padding masks, positions cumsum(m)*m-1 for the base
    runs and the source encode run, 0..S-1 for the source run that gives
    Ys (2.4, 14.4; for RoPE this is the same function up to rounding, since
    RoPE scores depend only on position differences)
  * G: positions cumsum(instr_mask); self-attention causal + key padding;
    cross-attention key mask only (query pad rows are unspecified) (14.5)
  * cross-attention q/k/v/o and pre-norms are independent copies of the
    self-attention ones (14.8)
  * head: mean over heads of the UNMASKED logits, then the pair mask, then
    softmax over the S+1 rows of each base column (14.17)
  * fully masked attention rows (pads) attend uniformly to all keys, as HF
    eager does; their values never reach a real position
  * R from PyTorch's orthogonal parametrisation (Householder map with
    trivialisation); X and the buffer Q0 are what is saved (5.4, 14.13)
  * sparsity penalty r if r > 1 else 0, schedule as in the original (6.2, 6.3, 14.12)
  * fp32/fp64 master weights, AdamW as torch.optim.AdamW, global-norm clip
"""
import json
import math
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

IGNORE = -100


# ----------------------------------------------------------------------------
# Target model T


@dataclass
class TargetConfig:
    vocab: int
    d: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn: int
    rms_eps: float
    inv_freq: torch.Tensor  # float32 [head_dim/2], HF rule (incl. rope scaling)
    tied: bool = False


def rope_inv_freq_from_hf_config(hf_cfg):
    """inv_freq exactly as transformers computes it (float32)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    rs = getattr(hf_cfg, "rope_scaling", None) or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    inv, _ = ROPE_INIT_FUNCTIONS[kind](hf_cfg, "cpu")
    return inv.float()


def target_config_from_hf(hf_cfg):
    hd = getattr(hf_cfg, "head_dim", None) or hf_cfg.hidden_size // hf_cfg.num_attention_heads
    return TargetConfig(
        vocab=hf_cfg.vocab_size, d=hf_cfg.hidden_size, n_layers=hf_cfg.num_hidden_layers,
        n_heads=hf_cfg.num_attention_heads, n_kv_heads=hf_cfg.num_key_value_heads,
        head_dim=hd, ffn=hf_cfg.intermediate_size, rms_eps=hf_cfg.rms_norm_eps,
        inv_freq=rope_inv_freq_from_hf_config(hf_cfg),
        tied=bool(getattr(hf_cfg, "tie_word_embeddings", False)))


def load_target_dir(path, dtype=torch.float64):
    """HF checkpoint directory (single file or sharded) -> (TargetConfig, weights)."""
    from transformers import LlamaConfig
    hf_cfg = LlamaConfig.from_pretrained(path)
    idx = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for fn in files:
        w.update(load_file(os.path.join(path, fn)))
    return _finish_target(target_config_from_hf(hf_cfg), w, dtype)


def target_from_hf_model(model, dtype=torch.float32):
    """From an already loaded LlamaForCausalLM (e.g. via gguf_file=)."""
    w = {k: v.detach() for k, v in model.state_dict().items()}
    return _finish_target(target_config_from_hf(model.config), w, dtype)


def _finish_target(cfg, w, dtype):
    w = {k: v.to(dtype) for k, v in w.items() if "rotary_emb" not in k}
    if "lm_head.weight" not in w:
        cfg.tied = True
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


# ----------------------------------------------------------------------------
# Ops


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def linear(x, weight):
    return x @ weight.t()


def rope(x, pos, inv_freq):
    """x (b, h, n, hd), pos (b, n) integer; HF rotate-half layout."""
    ang = pos.to(x.dtype)[:, None, :, None] * inv_freq.to(x.dtype)[None, None, None, :]
    ang = torch.cat([ang, ang], dim=-1)
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * torch.cos(ang) + rot * torch.sin(ang)


def split_heads(x, n_heads, hd):
    b, n, _ = x.shape
    return x.view(b, n, n_heads, hd).transpose(1, 2)


def attention(x_q, x_kv, wq, wk, wv, wo, q_pos, k_pos, allowed, cfg):
    """GQA attention. allowed: bool (b, nq, nk) or (b, 1, nk). Rows with no
    allowed key attend uniformly to all keys (HF eager behaviour)."""
    H, Hkv, hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
    q = rope(split_heads(linear(x_q, wq), H, hd), q_pos, cfg.inv_freq)
    k = rope(split_heads(linear(x_kv, wk), Hkv, hd), k_pos, cfg.inv_freq)
    v = split_heads(linear(x_kv, wv), Hkv, hd)
    rep = H // Hkv
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    scores = scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(x_q.shape[0], x_q.shape[1], H * hd)
    return linear(out, wo)


def swiglu_mlp(x, gate, up, down):
    return linear(F.silu(linear(x, gate)) * linear(x, up), down)


def causal_pad_allowed(mask):
    """(b, n) 0/1 -> bool (b, n, n): key j visible to query i iff j <= i and mask[j]."""
    n = mask.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    return causal[None] & mask.bool()[:, None, :]


def positions_from_mask(mask):
    """cumsum(m)*m - 1: first real token 0, pads -1 (hyperdas(7) 2.4)."""
    return torch.cumsum(mask, 1) * mask - 1


# ----------------------------------------------------------------------------
# Target forward


def target_layer(cfg, w, l, x, pos, allowed):
    p = f"model.layers.{l}."
    h = rms_norm(x, w[p + "input_layernorm.weight"], cfg.rms_eps)
    x = x + attention(h, h, w[p + "self_attn.q_proj.weight"], w[p + "self_attn.k_proj.weight"],
                      w[p + "self_attn.v_proj.weight"], w[p + "self_attn.o_proj.weight"],
                      pos, pos, allowed, cfg)
    h = rms_norm(x, w[p + "post_attention_layernorm.weight"], cfg.rms_eps)
    return x + swiglu_mlp(h, w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"],
                          w[p + "mlp.down_proj.weight"])


def target_forward(cfg, w, ids, mask, pos, replace_at=None, replace_fn=None, stop_at=None,
                   logits=True):
    """Returns (hs, logits). hs[l] as HF output_hidden_states: hs[0] embeddings,
    hs[l] residual after layer l-1, hs[Lt] after the final norm.
    replace_at=L, replace_fn: hs[L] <- replace_fn(hs[L]) before layer L runs
    (the forward hook on layer L-1).  stop_at=l: return after hs[l]."""
    allowed = causal_pad_allowed(mask)
    x = w["model.embed_tokens.weight"][ids]
    hs = [x]
    for l in range(cfg.n_layers):
        if replace_at == l:
            x = replace_fn(x)
            hs[-1] = x
        if stop_at == l:
            return hs, None
        x = target_layer(cfg, w, l, x, pos, allowed)
        hs.append(x)
    if replace_at == cfg.n_layers:
        x = replace_fn(x)
    hs[-1] = rms_norm(x, w["model.norm.weight"], cfg.rms_eps)
    out = linear(hs[-1], w["lm_head.weight"]) if logits else None
    return hs, out


# ----------------------------------------------------------------------------
# HyperDAS configuration and parameters


@dataclass
class HyperConfig:
    n_hyper_layers: int = 2           # Lh
    intervention_layer: int = 2       # L
    das_dim: int = 8                  # k
    subspace: str = "reflect"         # reflect | das | mask | none
    sub_ffn: int = 128                # ReflectSelect / MaskSelect MLP width
    causal_weight: float = 3.5
    iso_weight: float = 0.5
    sparsity: bool = True
    ys_positions: str = "default"     # default (0..S-1, as the original) | mask
    mask_temperature: float = 50.0
    pad_id: int = 2                   # eos: the instruction mask is ids != pad_id
    rms_eps_das: float = 1e-5


def g_param_names(cfg_t, hc):
    names = ["hyper.embed_tokens.weight"]
    for i in range(hc.n_hyper_layers):
        p = f"hyper.layers.{i}."
        names.append(p + "input_layernorm.weight")
        names += [p + f"self_attn.{m}_proj.weight" for m in "qkvo"]
        names.append(p + "src_cross_attn_layernorm.weight")
        names += [p + f"src_cross_attn.{m}_proj.weight" for m in "qkvo"]
        names.append(p + "base_cross_attn_layernorm.weight")
        names += [p + f"base_cross_attn.{m}_proj.weight" for m in "qkvo"]
        names.append(p + "post_attention_layernorm.weight")
        names += [p + f"mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
    names.append("hyper.norm.weight")
    return names


def g_init_source(name):
    """Target tensor a G tensor is copied from (hyperdas(7) 3.1)."""
    if name == "hyper.embed_tokens.weight":
        return "model.embed_tokens.weight"
    if name == "hyper.norm.weight":
        return "model.norm.weight"
    rest = name[len("hyper."):]
    rest = rest.replace("src_cross_attn_layernorm", "input_layernorm")
    rest = rest.replace("base_cross_attn_layernorm", "input_layernorm")
    rest = rest.replace("src_cross_attn.", "self_attn.").replace("base_cross_attn.", "self_attn.")
    return "model." + rest


def head_param_names():
    return ["head.q_proj.weight", "head.k_proj.weight", "head.q_combine.weight"]


def das_param_names(hc):
    if hc.subspace == "none":
        return []
    names = ["das.rotate.X"]
    if hc.subspace == "reflect":
        names += ["das.rv_norm.weight"] + [f"das.rv_mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
    elif hc.subspace == "mask":
        names += ["das.mask_norm.weight"] + [f"das.mask_mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
    return names


def all_param_names(cfg_t, hc):
    return g_param_names(cfg_t, hc) + head_param_names() + das_param_names(hc)


def torch_linear_default_init(out_f, in_f, gen):
    """nn.Linear default (kaiming_uniform a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1.0 / math.sqrt(in_f)
    return (torch.rand(out_f, in_f, generator=gen) * 2 - 1) * bound


def init_rotation(d, k, seed):
    """X (-I), Q0, R from torch's orthogonal parametrisation, float32.  The
    original starts from torch.empty (hyperdas(7) 14.13); we fill the matrix from a seed."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear(k, d, bias=False)   # weight (d, k): tall, like LowRankRotateLayer
    with torch.no_grad():
        lin.weight.copy_(torch.randn(d, k))
    torch.nn.utils.parametrizations.orthogonal(lin, orthogonal_map="householder",
                                               use_trivialization=True)
    X = lin.parametrizations.weight.original.detach().clone()
    Q0 = lin.parametrizations.weight[0].base.detach().clone()
    R = lin.weight.detach().clone()
    return X, Q0, R


def rotation_from_X(X, Q0):
    """Differentiable R = Q0 @ HouseholderProduct(tril(X,-1))[:, :k] * trunc(diag X)."""
    d, k = X.shape
    A = torch.tril(X, -1)
    tau = 2.0 / (1.0 + (A * A).sum(0))
    V = A + torch.eye(d, k, dtype=X.dtype)
    M = torch.eye(d, k, dtype=X.dtype)
    for j in reversed(range(k)):
        vj = V[:, j:j + 1]
        M = M - tau[j] * vj @ (vj.t() @ M)
    M = M * torch.trunc(X.diagonal().detach())[None, :]
    return Q0 @ M


def build_params(cfg_t, tw, hc, head_init, das_init, dtype):
    """Leaf tensors (requires_grad) for every trainable param, plus the buffer Q0.
    head_init / das_init: dicts of float32 tensors (the fixture's stored inits)."""
    p = {}
    for n in g_param_names(cfg_t, hc):
        p[n] = tw[g_init_source(n)].detach().clone().to(dtype)
    for n in head_param_names():
        p[n] = head_init[n].clone().to(dtype)
    for n in das_param_names(hc):
        p[n] = das_init[n].clone().to(dtype)
    for t in p.values():
        t.requires_grad_(True)
    buffers = {}
    if hc.subspace != "none":
        buffers["das.rotate.Q0"] = das_init["das.rotate.Q0"].clone().to(dtype)
    return p, buffers


def make_head_init(cfg_t, gen, std):
    d, H, Hkv, hd = cfg_t.d, cfg_t.n_heads, cfg_t.n_kv_heads, cfg_t.head_dim
    return {
        "head.q_proj.weight": torch.randn(H * hd, d, generator=gen) * std,
        "head.k_proj.weight": torch.randn(Hkv * hd, d, generator=gen) * std,
        "head.q_combine.weight": torch.randn(d, 2 * d, generator=gen) * std,
    }


def make_das_init(cfg_t, hc, gen, X, Q0):
    d, f, k = cfg_t.d, hc.sub_ffn, hc.das_dim
    out = {"das.rotate.X": X.clone(), "das.rotate.Q0": Q0.clone()}
    if hc.subspace in ("reflect", "mask"):
        pre = "das.rv_" if hc.subspace == "reflect" else "das.mask_"
        out[pre + "norm.weight"] = torch.ones(d)
        out[pre + "mlp.gate_proj.weight"] = torch_linear_default_init(f, d, gen)
        out[pre + "mlp.up_proj.weight"] = torch_linear_default_init(f, d, gen)
        out[pre + "mlp.down_proj.weight"] = torch_linear_default_init(d if hc.subspace == "reflect" else k, f, gen)
    return out


# ----------------------------------------------------------------------------
# Step 1-2: encode base and source with T (no grad)


def encode(cfg_t, tw, batch, dtype):
    with torch.no_grad():
        pos_b = positions_from_mask(batch["base_attn_mask"])
        pos_s = positions_from_mask(batch["src_attn_mask"])
        hb, _ = target_forward(cfg_t, tw, batch["base_ids"], batch["base_attn_mask"], pos_b, logits=False)
        hs, _ = target_forward(cfg_t, tw, batch["src_ids"], batch["src_attn_mask"], pos_s, logits=False)
        base_raw = torch.stack(hb, dim=2)   # (b, B, Lt+1, d)
        src_raw = torch.stack(hs, dim=2)
        base_n = base_raw / base_raw.norm(dim=-1, keepdim=True)
        src_n = src_raw / src_raw.norm(dim=-1, keepdim=True)
    nl = cfg_t.n_layers + 1
    b = base_raw.shape[0]
    mb_flat = batch["base_intv_mask"][:, :, None].repeat(1, 1, nl).reshape(b, -1)
    ms_flat = batch["src_intv_mask"][:, :, None].repeat(1, 1, nl).reshape(b, -1)
    return {
        "base_raw": base_raw, "src_raw": src_raw, "base_n": base_n, "src_n": src_n,
        "base_keys": base_n.reshape(b, -1, cfg_t.d), "src_keys": src_n.reshape(b, -1, cfg_t.d),
        "mb_flat": mb_flat, "ms_flat": ms_flat,
        "pk_b": torch.cumsum(mb_flat, 1) * mb_flat, "pk_s": torch.cumsum(ms_flat, 1) * ms_flat,
        "pos_base": pos_b, "pos_src": pos_s,
    }


# ----------------------------------------------------------------------------
# Step 3: the hypernetwork G and its head


def hyper_forward(cfg_t, hc, p, batch, enc, trace=None):
    ids, m_e = batch["instr_ids"], batch["instr_mask"]
    p_e = torch.cumsum(m_e, 1)
    eps = cfg_t.rms_eps
    self_allowed = causal_pad_allowed(m_e)
    ks_allowed = enc["ms_flat"].bool()[:, None, :]
    kb_allowed = enc["mb_flat"].bool()[:, None, :]
    h = p["hyper.embed_tokens.weight"][ids]
    if trace is not None:
        trace["p3.embed"] = h
    for i in range(hc.n_hyper_layers):
        q = f"hyper.layers.{i}."

        def att(block, x_kv, k_pos, allowed, x):
            return attention(x, x_kv, p[q + block + ".q_proj.weight"], p[q + block + ".k_proj.weight"],
                             p[q + block + ".v_proj.weight"], p[q + block + ".o_proj.weight"],
                             p_e, k_pos, allowed, cfg_t)

        x = rms_norm(h, p[q + "input_layernorm.weight"], eps)
        h = h + att("self_attn", x, p_e, self_allowed, x)
        if trace is not None:
            trace[f"p3.layers.{i}.after_self_attn"] = h
        x = rms_norm(h, p[q + "src_cross_attn_layernorm.weight"], eps)
        h = h + att("src_cross_attn", enc["src_keys"], enc["pk_s"], ks_allowed, x)
        if trace is not None:
            trace[f"p3.layers.{i}.after_src_cross"] = h
        x = rms_norm(h, p[q + "base_cross_attn_layernorm.weight"], eps)
        h = h + att("base_cross_attn", enc["base_keys"], enc["pk_b"], kb_allowed, x)
        if trace is not None:
            trace[f"p3.layers.{i}.after_base_cross"] = h
        x = rms_norm(h, p[q + "post_attention_layernorm.weight"], eps)
        h = h + swiglu_mlp(x, p[q + "mlp.gate_proj.weight"], p[q + "mlp.up_proj.weight"],
                           p[q + "mlp.down_proj.weight"])
        if trace is not None:
            trace[f"p3.layers.{i}.after_mlp"] = h
    hg = rms_norm(h, p["hyper.norm.weight"], eps)
    if trace is not None:
        trace["p3.hg"] = hg
    return hg


def head_forward(cfg_t, hc, p, batch, enc, hg, trace=None):
    """InterpreterUnembedCrossAttention (hyperdas(7) 3.5) -> W (b, S+1, B)."""
    L = hc.intervention_layer
    yb = enc["base_n"][:, :, L, :]       # (b, B, d)
    ys = enc["src_n"][:, :, L, :]        # (b, S, d)
    b, B, d = yb.shape
    S = ys.shape[1]
    mb = batch["base_intv_mask"]
    ms = batch["src_intv_mask"]
    wc = p["head.q_combine.weight"]
    pair = torch.cat([yb[:, None, :, :].expand(b, S, B, d), ys[:, :, None, :].expand(b, S, B, d)], dim=-1)
    z = torch.cat([linear(pair, wc), yb[:, None]], dim=1)                # (b, S+1, B, d)
    M = torch.cat([ms[:, :, None] * mb[:, None, :], torch.ones_like(mb)[:, None, :]], dim=1)
    zf = z.reshape(b, (S + 1) * B, d)
    mf = M.reshape(b, (S + 1) * B)
    kpos = torch.cumsum(mf, 1) * mf
    m_e = batch["instr_mask"]
    qpos_all = torch.cumsum(m_e, 1) * m_e
    H, Hkv, hd = cfg_t.n_heads, cfg_t.n_kv_heads, cfg_t.head_dim
    q = rope(split_heads(linear(hg[:, -1:, :], p["head.q_proj.weight"]), H, hd), qpos_all[:, -1:], cfg_t.inv_freq)
    k = rope(split_heads(linear(zf, p["head.k_proj.weight"]), Hkv, hd), kpos, cfg_t.inv_freq)
    k = k.repeat_interleave(H // Hkv, dim=1)
    logits = (q @ k.transpose(-1, -2))[:, :, 0, :] / math.sqrt(hd)      # (b, H, (S+1)B)
    mean = logits.mean(dim=1)                                            # (b, (S+1)B)
    masked = mean.masked_fill(mf == 0, float("-inf"))
    W = torch.softmax(masked.view(b, S + 1, B), dim=1)
    if trace is not None:
        trace.update({"p4.pair_feats": z, "p4.pair_mask": M, "p4.pair_key_pos": kpos,
                      "p4.query_pos": qpos_all[:, -1], "p4.head_logits": logits,
                      "p4.head_mean": mean, "p5.W": W})
    return W


# ----------------------------------------------------------------------------
# Step 4: hard selection modes (eval only, hyperdas(7) 4)


def hard_mode(W, mode, base_entity_pos=None, src_entity_pos=None, threshold=0.1):
    b, S1, B = W.shape
    S = S1 - 1
    if mode in (None, "default"):
        return W
    if mode == "column_argmax":
        idx = torch.argmax(W, dim=1)                                      # (b, B); ties -> lowest
        return F.one_hot(idx, S1).permute(0, 2, 1).to(W.dtype)
    if mode == "bidding_argmax":
        bid = torch.argmax(W[:, :S, :], dim=-1)                           # (b, S)
        keep = torch.cat([F.one_hot(bid, B).to(torch.bool), torch.ones(b, 1, B, dtype=torch.bool)], dim=1)
        w2 = torch.where(keep, W, torch.zeros_like(W))
        selfrow = w2[:, S, :]
        w2[:, S, :] = torch.where(selfrow > threshold, selfrow, torch.full_like(selfrow, threshold))
        idx = torch.argmax(w2, dim=1)
        return F.one_hot(idx, S1).permute(0, 2, 1).to(W.dtype)
    if mode == "global_argmax":
        flat = torch.argmax(W[:, :S, :].reshape(b, -1), dim=1)
        out = torch.zeros_like(W)
        out[:, S, :] = 1.0
        for i in range(b):
            s, t = int(flat[i]) // B, int(flat[i]) % B
            out[i, s, t] = 1.0
            out[i, S, t] = 0.0
        return out
    if mode == "groundtruth":
        out = torch.zeros_like(W)
        out[:, S, :] = 1.0
        for i in range(b):
            out[i, S, int(base_entity_pos[i])] = 0.0
            out[i, int(src_entity_pos[i]), int(base_entity_pos[i])] = 1.0
        return out
    raise ValueError(mode)


# ----------------------------------------------------------------------------
# Steps 5-8: source vectors, mixing, subspace, intervened run


def source_vectors(cfg_t, tw, hc, batch):
    """Ys = raw hs[L] of a separate source run (hyperdas(7) 5.2, 2.4, 14.4)."""
    mask = batch["src_attn_mask"]
    if hc.ys_positions == "default":
        pos = torch.arange(mask.shape[1])[None, :].expand(mask.shape[0], -1)
    else:
        pos = positions_from_mask(mask)
    with torch.no_grad():
        hs, _ = target_forward(cfg_t, tw, batch["src_ids"], mask, pos, stop_at=hc.intervention_layer,
                               logits=False)
    return hs[hc.intervention_layer]


def subspace_apply(cfg_t, hc, p, buffers, hg_last, xb, ysrc, trace=None):
    """new hs[L] for every base position (hyperdas(7) 5.3)."""
    if hc.subspace == "none":
        return ysrc
    R = rotation_from_X(p["das.rotate.X"], buffers["das.rotate.Q0"])
    if trace is not None:
        trace["p8.R"] = R
    diff = ysrc - xb
    if hc.subspace == "das":
        return xb + (diff @ R) @ R.t()
    if hc.subspace == "mask":
        h = rms_norm(hg_last, p["das.mask_norm.weight"], hc.rms_eps_das)
        logit = swiglu_mlp(h, p["das.mask_mlp.gate_proj.weight"], p["das.mask_mlp.up_proj.weight"],
                           p["das.mask_mlp.down_proj.weight"])
        m = torch.sigmoid(logit / hc.mask_temperature)                   # (b, k)
        if trace is not None:
            trace["mask"] = m
        return xb + (m[:, None, :] * (diff @ R)) @ R.t()
    # ReflectSelect
    h = rms_norm(hg_last, p["das.rv_norm.weight"], hc.rms_eps_das)
    u = swiglu_mlp(h, p["das.rv_mlp.gate_proj.weight"], p["das.rv_mlp.up_proj.weight"],
                   p["das.rv_mlp.down_proj.weight"])
    v = u / u.norm(dim=-1, keepdim=True)
    Rr = R[None] - 2.0 * v[:, :, None] * (v[:, None, :] @ R[None])      # (b, d, k)
    if trace is not None:
        trace.update({"p8.rv_in": hg_last, "p8.u": u, "p8.v": v, "p8.R_reflected": Rr})
    return xb + (diff @ Rr) @ Rr.transpose(1, 2)


# ----------------------------------------------------------------------------
# Step 9: loss


def label_targets(labels):
    """(row, position) of every label token, row-major: the logit at position-1 predicts it."""
    rows, cols = torch.nonzero(labels != IGNORE, as_tuple=True)
    assert bool((cols >= 1).all()), "a label at position 0 has no predicting position"
    return rows, cols


def prediction_loss(logits, labels, is_causal, hc, trace=None):
    rows, cols = label_targets(labels)
    lp = torch.log_softmax(logits[rows, cols - 1, :], dim=-1)
    ce = -lp.gather(1, labels[rows, cols][:, None])[:, 0]
    wt = torch.where(is_causal[rows].bool(), torch.tensor(hc.causal_weight, dtype=ce.dtype),
                     torch.tensor(hc.iso_weight, dtype=ce.dtype))
    if trace is not None:
        trace["p10.ce"] = ce
        trace["p10.ce_weight"] = wt
    return (ce * wt).mean()


def sparsity_loss(W, trace=None):
    r = W[:, :-1, :].sum(-1)                                             # (b, S)
    pen = torch.where(r > 1.0, r, torch.zeros_like(r)).sum(-1)
    if trace is not None:
        trace["p10.row_sums"] = r
    return pen.mean()


def sparsity_lambda(step, total_steps, start=0.15, end=1.5, warm_up_ratio=0.5):
    """Computed in float64 (the original stores the schedule in bf16)."""
    sched = torch.linspace(start, end, total_steps + 1, dtype=torch.float64)
    sched[:int(warm_up_ratio * total_steps)] = 0.0
    return float(sched[step])


def temperature_schedule(total_steps, start=50.0, end=0.1):
    return torch.linspace(start, end, total_steps + 1, dtype=torch.float64)


# ----------------------------------------------------------------------------
# One full forward (training mode: soft W)


def forward(cfg_t, tw, hc, p, buffers, batch, lam, dtype, enc=None, ys=None, trace=None,
            inference_mode=None):
    """Returns dict(loss, loss_pred, loss_sp, logits, W, ...)."""
    if hc.subspace != "none" and hc.intervention_layer == 0:
        raise ValueError("intervention_layer 0 is only supported without a subspace module")
    if enc is None:
        enc = encode(cfg_t, tw, batch, dtype)
    hg = hyper_forward(cfg_t, hc, p, batch, enc, trace)
    W = head_forward(cfg_t, hc, p, batch, enc, hg, trace)
    Wmix = W if inference_mode is None else hard_mode(
        W.detach(), inference_mode, batch.get("base_entity_pos"), batch.get("src_entity_pos"))
    if ys is None:
        ys = source_vectors(cfg_t, tw, hc, batch)
    S = ys.shape[1]
    L = hc.intervention_layer
    store = {}

    def replace(xb):
        ysrc = torch.einsum("bst,bsd->btd", Wmix[:, :S, :], ys) + Wmix[:, S, :, None] * xb
        new = subspace_apply(cfg_t, hc, p, buffers, hg[:, -1, :], xb, ysrc, trace)
        store.update(xb=xb, ysrc=ysrc, new=new)
        return new

    _, logits = target_forward(cfg_t, tw, batch["base_ids"], batch["base_attn_mask"], enc["pos_base"],
                               replace_at=L, replace_fn=replace)
    lp = prediction_loss(logits, batch["labels"], batch["is_causal"], hc, trace)
    lsp = sparsity_loss(W, trace) if hc.sparsity else torch.zeros((), dtype=lp.dtype)
    loss = lp + lam * lsp
    if trace is not None:
        trace.update({"p7.ys": ys, "p8.xb": store["xb"], "p8.ysrc": store["ysrc"],
                      "p8.new_hidden": store["new"], "p9.logits": logits})
    return {"loss": loss, "loss_pred": lp, "loss_sp": lsp, "logits": logits, "W": W, "hg": hg,
            "new_hidden": store["new"], "enc": enc, "ys": ys}


# ----------------------------------------------------------------------------
# Optimiser: global-norm clip + AdamW with learning-rate groups (hyperdas(7) 7.1)


@dataclass
class OptimConfig:
    lr: float = 4e-5
    weight_decay: float = 0.01
    lr_rotate: float = 1e-3           # das.rotate.X, weight decay 0
    lr_mask: float = 1e-2             # das.mask_mlp.*, default weight decay
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    clip_max_norm: float = 4.0


def param_group(name, oc):
    """(lr, weight_decay) of a parameter: the original's three groups."""
    if name.startswith("das.rotate."):
        return oc.lr_rotate, 0.0
    if name.startswith("das.mask_mlp."):
        return oc.lr_mask, oc.weight_decay
    return oc.lr, oc.weight_decay


def clip_grads(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_ semantics; returns (norm, coef, clipped grads)."""
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    return norm, coef, {n: g * coef.to(g.dtype) for n, g in grads.items()}


@dataclass
class AdamState:
    step: int = 0
    m: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)


def adamw_step(params, grads, state, oc):
    """torch.optim.AdamW (foreach=False) in place on the leaf tensors."""
    state.step += 1
    b1, b2 = oc.betas
    bc1 = 1 - b1 ** state.step
    bc2 = 1 - b2 ** state.step
    with torch.no_grad():
        for n, prm in params.items():
            g = grads[n]
            lr, wd = param_group(n, oc)
            if n not in state.m:
                state.m[n] = torch.zeros_like(prm)
                state.v[n] = torch.zeros_like(prm)
            prm.mul_(1 - lr * wd)
            state.m[n].mul_(b1).add_(g, alpha=1 - b1)
            state.v[n].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (state.v[n].sqrt() / math.sqrt(bc2)).add_(oc.eps)
            prm.addcdiv_(state.m[n], denom, value=-lr / bc1)


def train_step(cfg_t, tw, hc, p, buffers, batch, lam, oc, state, dtype, enc=None, ys=None, trace=None):
    for t in p.values():
        t.grad = None
    out = forward(cfg_t, tw, hc, p, buffers, batch, lam, dtype, enc=enc, ys=ys, trace=trace)
    names = list(p.keys())
    gl = torch.autograd.grad(out["loss"], [p[n] for n in names])
    grads = dict(zip(names, gl))
    norm, coef, clipped = clip_grads(grads, oc.clip_max_norm)
    adamw_step(p, clipped, state, oc)
    out.update(grads=grads, grad_norm=norm, clip_coef=coef)
    return out


# ----------------------------------------------------------------------------
# Evaluation metric (hyperdas(7) 9.1, 9.3)


def eval_correct(logits, labels, n_tokens=None):
    """Per example: 1 if the argmax at every compared label position is right."""
    pred = logits.argmax(-1)
    res = []
    for i in range(labels.shape[0]):
        cols = torch.nonzero(labels[i] != IGNORE)[:, 0]
        lab = labels[i, cols]
        prd = pred[i, cols - 1]
        if n_tokens is not None and len(lab) > n_tokens:
            lab, prd = lab[:n_tokens], prd[:n_tokens]
        res.append(int(bool((lab == prd).all())))
    return torch.tensor(res, dtype=torch.long)


def eval_scores(correct, is_causal):
    c = is_causal.bool()
    n_c, n_i = int(c.sum()), int((~c).sum())
    cause = float(correct[c].sum()) / n_c if n_c > 0 else 0.0
    iso = float(correct[~c].sum()) / n_i if n_i > 0 else 0.0
    dis = 0.5 * (cause + iso) if n_i > 0 else cause
    return cause, iso, dis
