"""HyperDAS parity fixtures (hyperdas(7) 13, P0-P14).

Writes tests/fixtures/hyperdas/{reflect,variant_das,variant_maskselect,
hard_modes,eval_metric}.safetensors and config.json; the tensor contract is
tests/fixtures/hyperdas/README.md.  Target model: tests/fixtures/tiny-llama-f32.

Everything is computed in float64 from float32-representable weights and
rounded to float32 once when written.  Self-checks (asserts) run first:
  * my target forward == transformers LlamaForCausalLM (eager) and the
    tiny-llama expected.safetensors at real positions
  * R from my Householder code == torch's orthogonal parametrisation
  * W columns sum to 1; masked base columns are one-hot on the self row;
    masked source rows are exactly 0
  * R'^T R' = I_k
  * literal ports of the original code's head (mask inside the head mean),
    hard modes and flat-shift loss agree with the reference
  * my clip + AdamW == torch.nn.utils.clip_grad_norm_ + torch.optim.AdamW
  * torch.autograd.gradcheck (float64) of the whole loss w.r.t. slices of
    several parameters
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hyperdas_ref as ref  # noqa: E402
from deterministic_safetensors import save as save_file  # noqa: E402

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TARGET_DIR = os.path.join(ROOT, "tests", "fixtures", "tiny-llama-f32")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "hyperdas")
F64 = torch.float64

HEAD_SEED, HEAD_STD = 2024, 0.25
ROT_SEED = 7
DAS_SEED = 31
MASK_SEED = 32
TOTAL_STEPS, WARM_UP = 2, 0.0
LAMBDA_START, LAMBDA_END = 0.15, 1.5
MASK_TAU = 0.5
OPTIM = ref.OptimConfig(lr=1e-3, weight_decay=0.1, lr_rotate=1e-2, lr_mask=2e-2, clip_max_norm=0.5, eps=1e-6)


def lam(step):
    return ref.sparsity_lambda(step, TOTAL_STEPS, LAMBDA_START, LAMBDA_END, WARM_UP)


# ----------------------------------------------------------------------------
# Hand-built batch (hyperdas(7) 13): b=3, E=6, B=9, S=7


def make_batch():
    g = torch.Generator().manual_seed(5)
    PAD, BOS = 2, 1

    def row(n_pad, n_real, length):
        ids = torch.full((length,), PAD, dtype=torch.long)
        ids[n_pad:] = torch.randint(3, 256, (n_real,), generator=g)
        ids[n_pad] = BOS
        mask = torch.zeros(length, dtype=torch.long)
        mask[n_pad:] = 1
        return ids, mask

    def visible(length, lo, hi):
        m = torch.zeros(length, dtype=torch.long)
        m[lo:hi] = 1
        return m

    instr = [row(0, 6, 6), row(2, 4, 6), row(1, 5, 6)]
    # base: (pads, prefix incl. entity, suffix, label); BOS + prefix visible
    base_spec = [(2, 3, 2, 1), (0, 4, 2, 2), (3, 2, 1, 2)]
    # source: (pads, prefix, suffix); row 2 has ONE visible token (the entity)
    src_spec = [(1, 4, 1), (3, 1, 2), (2, 2, 2)]
    B, S = 9, 7
    bi, bm, bv, lab, bent = [], [], [], [], []
    for (pad, pre, suf, nl) in base_spec:
        ids, m = row(pad, 1 + pre + suf + nl, B)
        bi.append(ids)
        bm.append(m)
        bv.append(visible(B, pad, pad + 1 + pre))
        lb = torch.full((B,), ref.IGNORE, dtype=torch.long)
        lb[B - nl:] = ids[B - nl:]
        lab.append(lb)
        bent.append(pad + pre)
    si, sm, sv, sent = [], [], [], []
    for r, (pad, pre, suf) in enumerate(src_spec):
        ids, m = row(pad, 1 + pre + suf, S)
        si.append(ids)
        sm.append(m)
        sv.append(visible(S, pad + pre, pad + pre + 1) if r == 2 else visible(S, pad, pad + 1 + pre))
        sent.append(pad + pre)
    batch = {
        "instr_ids": torch.stack([r[0] for r in instr]),
        "instr_mask": torch.stack([r[1] for r in instr]),
        "base_ids": torch.stack(bi), "base_attn_mask": torch.stack(bm), "base_intv_mask": torch.stack(bv),
        "src_ids": torch.stack(si), "src_attn_mask": torch.stack(sm), "src_intv_mask": torch.stack(sv),
        "labels": torch.stack(lab), "is_causal": torch.tensor([1, 0, 0]),
        "base_entity_pos": torch.tensor(bent), "src_entity_pos": torch.tensor(sent),
    }
    assert torch.equal(batch["instr_mask"], (batch["instr_ids"] != PAD).long())
    return batch


# ----------------------------------------------------------------------------
# Self-checks


def check_target(cfg_t, tw64, batch):
    from transformers import LlamaForCausalLM
    model = LlamaForCausalLM.from_pretrained(TARGET_DIR, torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
    cfg32, tw32 = ref.load_target_dir(TARGET_DIR, torch.float32)
    ids, mask = batch["base_ids"], batch["base_attn_mask"]
    pos = ref.positions_from_mask(mask)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True)
        hs32, lg32 = ref.target_forward(cfg32, tw32, ids, mask, pos)
        hs64, lg64 = ref.target_forward(cfg_t, tw64, ids, mask, pos)
    real = mask.bool()
    worst = 0.0
    for l in range(len(hs32)):
        a, b_, c = out.hidden_states[l][real], hs32[l][real], hs64[l][real]
        assert torch.allclose(a, b_, rtol=1e-5, atol=1e-5), f"hs[{l}] ref vs HF"
        worst = max(worst, float((a.double() - c).abs().max()))
    assert torch.allclose(out.logits[real].double(), lg64[real], rtol=1e-4, atol=1e-4)
    worst = max(worst, float((out.logits[real].double() - lg64[real]).abs().max()))
    # the tiny-llama fixture's own expected outputs
    from safetensors.torch import load_file
    exp = load_file(os.path.join(TARGET_DIR, "expected.safetensors"))
    m2 = exp["attention_mask"]
    with torch.no_grad():
        hs, lg = ref.target_forward(cfg_t, tw64, exp["input_ids"], m2, exp["position_ids"])
    r2 = m2.bool()
    assert torch.allclose(lg[r2], exp["logits_f64"][r2], rtol=1e-5, atol=1e-5), "vs tiny-llama logits_f64 (HF computes RoPE cos/sin in float32)"
    print(f"  target forward vs HF eager f32: max |diff| {worst:.2e}; vs tiny-llama f64 logits: "
          f"{float((lg[r2] - exp['logits_f64'][r2]).abs().max()):.1e}")


def check_rotation(X, Q0, R):
    R_mine = ref.rotation_from_X(X.double(), Q0.double())
    assert torch.allclose(R_mine, R.double(), atol=1e-6), "Householder R vs torch"
    # a non-trivial X as well (after training the strictly-lower part moves)
    Xr = X.clone().double()
    Xr += torch.tril(torch.randn(X.shape, generator=torch.Generator().manual_seed(1), dtype=F64), -1) * 0.3
    orth = torch.nn.utils.parametrizations._Orthogonal(Xr, torch.nn.utils.parametrizations._OrthMaps.householder)
    orth.base = Q0.double()
    assert torch.allclose(ref.rotation_from_X(Xr, Q0.double()), orth(Xr), atol=1e-12), "Householder general X"


def original_head_literal(W_logits_per_head, M):
    """The original head's mask handling (layers.py:527-541): the dtype-min
    mask is added to every head's logits, THEN the mean is taken, softmax
    over dim 1.  Used to confirm adding the mask after the mean (hyperdas(7) 14.17) gives
    the same W."""
    b, H, N = W_logits_per_head.shape
    mf = M.reshape(b, N).to(W_logits_per_head.dtype)
    mask = torch.zeros_like(mf).masked_fill(mf == 0, torch.finfo(mf.dtype).min)
    x = (W_logits_per_head + mask[:, None, :]).mean(dim=1)
    return torch.softmax(x.view(b, M.shape[1], M.shape[2]), dim=1)


def original_loss_literal(logits, labels, is_causal, cw, iw):
    """model.py:117-154, the flat-shift selection."""
    lp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=1)
    w = torch.ones_like(labels, dtype=lp.dtype)
    w[is_causal.bool(), :] = cw
    w[~is_causal.bool(), :] = iw
    lab = labels.reshape(-1)
    w = w.reshape(-1)
    li = lab != -100
    oi = torch.zeros_like(li)
    oi[:-1] = li[1:]
    return (F.nll_loss(lp[oi], lab[li], reduction="none") * w[li]).mean()


def original_hard_modes_literal(W, threshold=0.1):
    """modules.py:600-626 ported literally (one-hot via the original's ops)."""
    out = {}
    b, S1, B = W.shape
    idx = torch.argmax(W, dim=1)
    out["column_argmax"] = F.one_hot(idx, num_classes=S1).permute(0, 2, 1).to(W.dtype)
    bw = torch.argmax(W[:, :-1, :], dim=-1)
    bw = F.one_hot(bw, num_classes=B).to(W.dtype)
    bw = torch.cat([bw, torch.ones(b, 1, B, dtype=W.dtype)], dim=1)
    iw = torch.where(bw == 1, W, torch.zeros_like(W))
    thr = torch.tensor([threshold], dtype=W.dtype).repeat(b, B)
    iw[:, -1, :] = torch.where(iw[:, -1, :] > threshold, iw[:, -1, :], thr)
    iw = torch.argmax(iw, dim=1)
    out["bidding_argmax"] = F.one_hot(iw, num_classes=S1).permute(0, 2, 1).to(W.dtype)
    flat = W[:, :-1, :].reshape(b, -1)
    mx = torch.argmax(flat, dim=1)
    gw = torch.zeros_like(W)
    gw[:, -1, :] = 1.0
    for i in range(b):
        s, t = mx[i] // B, mx[i] % B
        gw[i, s, t] = 1.0
        gw[i, -1, t] = 0.0
    out["global_argmax"] = gw
    return out


def check_W(W, batch):
    S = W.shape[1] - 1
    assert torch.allclose(W.sum(1), torch.ones_like(W.sum(1)), atol=1e-12), "W columns sum to 1"
    mb, ms = batch["base_intv_mask"].bool(), batch["src_intv_mask"].bool()
    for i in range(W.shape[0]):
        for t in range(W.shape[2]):
            if not mb[i, t]:
                assert float(W[i, S, t]) == 1.0 and float(W[i, :S, t].abs().sum()) == 0.0, "masked column one-hot"
        for s in range(S):
            if not ms[i, s]:
                assert float(W[i, s].abs().sum()) == 0.0, "masked source row is 0"


def check_optimiser(p0, grads, oc):
    """My clip + AdamW vs torch's, two steps, float64."""
    names = list(p0.keys())
    mine = {n: p0[n].detach().clone() for n in names}
    theirs = [p0[n].detach().clone().requires_grad_(True) for n in names]
    groups = []
    for n, t in zip(names, theirs):
        lr, wd = ref.param_group(n, oc)
        groups.append({"params": [t], "lr": lr, "weight_decay": wd})
    opt = torch.optim.AdamW(groups, lr=oc.lr, betas=oc.betas, eps=oc.eps, weight_decay=oc.weight_decay,
                            foreach=False)
    st = ref.AdamState()
    for k in range(2):
        g = {n: grads[n] * (1.0 + 0.5 * k) for n in names}
        _, coef, clipped = ref.clip_grads(g, oc.clip_max_norm)
        ref.adamw_step(mine, clipped, st, oc)
        for n, t in zip(names, theirs):
            t.grad = g[n].clone()
        tn = torch.nn.utils.clip_grad_norm_(theirs, oc.clip_max_norm)
        assert abs(float(tn) - float(ref.clip_grads(g, oc.clip_max_norm)[0])) < 1e-9
        opt.step()
    for n, t in zip(names, theirs):
        assert torch.allclose(mine[n], t.detach(), rtol=1e-12, atol=1e-14), f"AdamW {n}"


def run_gradcheck(cfg_t, tw, hc, p, buffers, batch, enc, ys, lam0):
    """gradcheck of the whole loss w.r.t. small slices of several params."""
    targets = [
        ("das.rotate.X", (slice(5, 8), slice(1, 3))),
        ("das.rv_mlp.down_proj.weight", (slice(0, 2), slice(0, 3))),
        ("head.q_combine.weight", (slice(3, 5), slice(60, 70, 4))),
        ("head.k_proj.weight", (slice(0, 2), slice(0, 2))),
        ("hyper.layers.0.src_cross_attn.k_proj.weight", (slice(0, 2), slice(0, 3))),
        ("hyper.layers.1.base_cross_attn.v_proj.weight", (slice(4, 6), slice(7, 9))),
        ("hyper.layers.0.mlp.gate_proj.weight", (slice(0, 2), slice(0, 3))),
        ("hyper.embed_tokens.weight", (int(batch["instr_ids"][0, 2]), slice(0, 4))),
    ]
    for name, idx in targets:
        base_val = p[name].detach().clone()

        def f(delta, name=name, idx=idx, base_val=base_val):
            q = dict(p)
            full = torch.zeros_like(base_val)
            full[idx] = delta
            q[name] = base_val + full
            return ref.forward(cfg_t, tw, hc, q, buffers, batch, lam0, F64, enc=enc, ys=ys)["loss"]

        delta = torch.zeros_like(base_val[idx]).requires_grad_(True)
        ok = torch.autograd.gradcheck(f, (delta,), eps=1e-6, atol=1e-7, rtol=1e-5)
        assert ok, name
    print(f"  gradcheck (float64, whole loss) passed on slices of {len(targets)} parameters")


def gauge_block(shape):
    """X[i, j] with j < i < k: their gradient is analytically 0 for ReflectSelect
    and DAS (they rotate R inside its own column span, R R^T is unchanged), so
    a float32 run gets pure rounding noise there, which AdamW amplifies."""
    d, k = shape
    blk = torch.zeros(d, k, dtype=torch.bool)
    blk[:k, :k] = torch.ones(k, k, dtype=torch.bool).tril(-1)
    return blk


def float32_agreement(batch, hc, head_init, das_init, T):
    """Run the same reference in float32 and measure how far it lands from the
    float64 fixture: the noise floor a correct float32 C implementation has.
    Metric per tensor: max|a - b| / max|b| (norm-relative)."""
    cfg32, tw32 = ref.load_target_dir(TARGET_DIR, torch.float32)
    p, buffers = ref.build_params(cfg32, tw32, hc, head_init, das_init, torch.float32)
    names = list(p.keys())
    tr = {}
    out = ref.forward(cfg32, tw32, hc, p, buffers, batch, lam(0), torch.float32, trace=tr)
    grads = dict(zip(names, torch.autograd.grad(out["loss"], [p[n] for n in names])))
    ba = batch["base_attn_mask"].bool()

    def rel(a, b):
        b = b.double()
        return float((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-30))

    worst = {"W": rel(out["W"].detach(), T["p5.W"]),
             "logits": rel(f32(out["logits"], ba), T["p9.logits"]),
             "new_hidden": rel(f32(out["new_hidden"], ba), T["p8.new_hidden"]),
             "loss": rel(out["loss"].detach().reshape(1), T["p10.loss_total"])}
    worst["grads"] = max(rel(grads[n], T["grad." + n]) for n in names)
    worst_elem = max(float(((grads[n].double() - T["grad." + n].double()).abs()
                            / T["grad." + n].double().abs().clamp_min(1e-3 * float(T["grad." + n].abs().max())))
                           .max()) for n in names)
    st = ref.AdamState()
    _, _, cl = ref.clip_grads(grads, OPTIM.clip_max_norm)
    ref.adamw_step(p, cl, st, OPTIM)
    o1 = ref.train_step(cfg32, tw32, hc, p, buffers, batch, lam(1), OPTIM, st, torch.float32)
    worst["p13.loss"] = rel(o1["loss"].detach().reshape(1), T["p13.loss_total"])
    step_dev, step_where = 0.0, ""
    for n in names:
        if "step2." + n in T:
            diff = (p[n].detach().double() - T["step2." + n].double()).abs()
            if n == "das.rotate.X":
                diff = diff * (~gauge_block(diff.shape)).double()
            dv = float(diff.max())
            if dv > step_dev:
                step_dev, step_where = dv, n
    print("  float32 run of this reference vs the float64 fixture (max|diff|/max|ref|): "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
          + f"; grads elementwise (floor 1e-3*max) {worst_elem:.1e}; step2 params max |diff| {step_dev:.1e} ({step_where})")
    worst["step2_params_max_abs"] = step_dev
    return worst


# ----------------------------------------------------------------------------
# Fixture helpers


def valid_masks(batch):
    ba, sa = batch["base_attn_mask"].bool(), batch["src_attn_mask"].bool()
    pair = torch.cat([sa[:, :, None] & ba[:, None, :], ba[:, None, :]], dim=1)   # (b, S+1, B)
    return ba, sa, batch["instr_mask"].bool(), pair


def f32(t, valid=None):
    t = t.detach().to(F64).clone()
    if valid is not None:
        v = valid
        while v.dim() < t.dim():
            v = v[..., None]
        t = torch.where(v, t, torch.zeros_like(t))
    return t.to(torch.float32).contiguous()


# G tensors whose full values after each AdamW step are stored (all head.*
# and das.* are stored too); every tensor has a checksum row in stepN_checks.
STEP_SUBSET = [
    "hyper.embed_tokens.weight", "hyper.layers.0.input_layernorm.weight",
    "hyper.layers.0.self_attn.q_proj.weight", "hyper.layers.0.src_cross_attn.v_proj.weight",
    "hyper.layers.1.base_cross_attn.k_proj.weight", "hyper.layers.1.src_cross_attn_layernorm.weight",
    "hyper.layers.1.mlp.down_proj.weight", "hyper.norm.weight",
]


def param_checks(values, names):
    """F64 [n, 3] per parameter (flattened, as float32 values): sum, sum of
    squares, sum of w_i * p_i with w_i = (i mod 7) - 3 (i = flat index)."""
    rows = []
    for n in names:
        v = values[n].detach().float().double().flatten()
        w = (torch.arange(v.numel()) % 7 - 3).double()
        rows.append([float(v.sum()), float((v * v).sum()), float((w * v).sum())])
    return torch.tensor(rows, dtype=F64)


def scalar(x):
    return torch.tensor([float(x)], dtype=torch.float32)


def dump_trace(trace, batch, S):
    ba, sa, ia, pair = valid_masks(batch)
    b = ba.shape[0]
    out = {}
    for k, v in trace.items():
        if k.startswith("p3."):
            out[k] = f32(v, ia)
        elif k == "p4.pair_feats":
            out[k] = f32(v, pair)
        elif k in ("p4.head_logits",):
            out[k] = f32(v, pair.reshape(b, 1, -1).expand(v.shape))
        elif k == "p4.head_mean":
            out[k] = f32(v, pair.reshape(b, -1))
        elif k in ("p4.pair_mask", "p4.pair_key_pos", "p4.query_pos"):
            out[k] = v.to(torch.long).contiguous()
        elif k in ("p7.ys", "p7.ys_maskpos"):
            out[k] = f32(v, sa)
        elif k in ("p8.xb", "p8.ysrc", "p8.new_hidden", "p9.logits"):
            out[k] = f32(v, ba)
        elif k in ("p10.ce", "p10.ce_weight", "p10.row_sums", "p5.W", "p8.rv_in", "p8.u", "p8.v",
                   "p8.R", "p8.R_reflected", "mask"):
            out[k] = f32(v)
        else:
            raise KeyError(k)
    return out


# ----------------------------------------------------------------------------


def main():
    torch.set_default_dtype(torch.float32)
    if not os.path.exists(os.path.join(TARGET_DIR, "config.json")):
        sys.exit(f"gen_hyperdas_fixtures: {TARGET_DIR} is missing (it is written by gen_tiny_llama.py)")
    os.makedirs(OUT_DIR, exist_ok=True)
    cfg_t, tw = ref.load_target_dir(TARGET_DIR, F64)
    batch = make_batch()
    print("gen_hyperdas_fixtures: self-checks")
    check_target(cfg_t, tw, batch)

    hc = ref.HyperConfig(n_hyper_layers=2, intervention_layer=2, das_dim=8, subspace="reflect",
                         sub_ffn=128, causal_weight=3.5, iso_weight=0.5, ys_positions="default")
    d, k, S, B, E = cfg_t.d, hc.das_dim, batch["src_ids"].shape[1], batch["base_ids"].shape[1], batch["instr_ids"].shape[1]
    X, Q0, R0 = ref.init_rotation(d, k, ROT_SEED)
    check_rotation(X, Q0, R0)
    head_init = ref.make_head_init(cfg_t, torch.Generator().manual_seed(HEAD_SEED), HEAD_STD)
    das_init = ref.make_das_init(cfg_t, hc, torch.Generator().manual_seed(DAS_SEED), X, Q0)
    p, buffers = ref.build_params(cfg_t, tw, hc, head_init, das_init, F64)
    names = list(p.keys())
    assert names == ref.all_param_names(cfg_t, hc)

    # --- step 0 forward with trace
    trace = {}
    enc = ref.encode(cfg_t, tw, batch, F64)
    ys = ref.source_vectors(cfg_t, tw, hc, batch)
    out0 = ref.forward(cfg_t, tw, hc, p, buffers, batch, lam(0), F64, enc=enc, ys=ys, trace=trace)
    W = out0["W"].detach()
    check_W(W, batch)
    r = trace["p10.row_sums"]
    assert float((r - 1).abs().min()) > 0.05, f"a source row sum is too close to 1: {r}"
    assert bool((r > 1).any()) and bool((r[batch['src_intv_mask'].bool()] < 1).any()), "sparsity on/off mix"
    Rr = trace["p8.R_reflected"]
    eye = torch.eye(k, dtype=F64)
    err_orth = float((Rr.transpose(1, 2) @ Rr - eye).abs().max())
    assert err_orth < 1e-6, err_orth
    # literal ports of the original code agree
    Wlit = original_head_literal(trace["p4.head_logits"].detach(), trace["p4.pair_mask"])
    assert torch.allclose(Wlit, W, atol=1e-12), "head mask after mean (hyperdas(7) 14.17)"
    lit = original_loss_literal(out0["logits"].detach(), batch["labels"], batch["is_causal"], 3.5, 0.5)
    assert abs(float(lit) - float(out0["loss_pred"])) < 1e-12, "loss flat shift"
    hm_lit = original_hard_modes_literal(W)
    for m in ("column_argmax", "bidding_argmax", "global_argmax"):
        assert torch.equal(hm_lit[m], ref.hard_mode(W, m)), m
    # batch independence: each row alone (b=1) gives the same W, new hs[L], CE
    for i in range(3):
        one = {kk: v[i:i + 1] for kk, v in batch.items()}
        o1 = ref.forward(cfg_t, tw, hc, p, buffers, one, lam(0), F64)
        real = one["base_attn_mask"][0].bool()
        assert torch.allclose(o1["W"].detach()[0], W[i], atol=1e-12), f"row {i} W alone"
        assert torch.allclose(o1["new_hidden"].detach()[0][real], out0["new_hidden"].detach()[i][real], atol=1e-10)
    # L = 0 is rejected with a subspace module
    try:
        ref.forward(cfg_t, tw, ref.HyperConfig(**{**hc.__dict__, "intervention_layer": 0}), p, buffers,
                    batch, lam(0), F64)
        raise AssertionError("L=0 with a subspace module must be rejected")
    except ValueError:
        pass
    # Ys: default positions vs mask positions (hyperdas(7) 14.4)
    hc_mask = ref.HyperConfig(**{**hc.__dict__, "ys_positions": "mask"})
    ys_mask = ref.source_vectors(cfg_t, tw, hc_mask, batch)
    sa = batch["src_attn_mask"].bool()
    ys_gap = float((ys[sa] - ys_mask[sa]).abs().max())
    assert ys_gap < 1e-9, ys_gap
    assert torch.allclose(ys_mask[sa], enc["src_raw"][:, :, hc.intervention_layer][sa], atol=1e-12)
    trace["p7.ys_maskpos"] = ys_mask

    # --- gradients at step 0
    gl = torch.autograd.grad(out0["loss"], [p[n] for n in names])
    grads = dict(zip(names, gl))
    # helper activation grads: dL/dW, dL/dHg[:, E-1], dL/dnew_hidden, dL/dR
    t_out = ref.forward(cfg_t, tw, hc, p, buffers, batch, lam(0), F64, enc=enc, ys=ys, trace=(tr2 := {}))
    ga = torch.autograd.grad(t_out["loss"], [t_out["W"], t_out["hg"], t_out["new_hidden"], tr2["p8.R"]])
    X_grad = grads["das.rotate.X"]
    assert float(torch.triu(X_grad).abs().max()) == 0.0, "X grad only on the strictly-lower part"
    for n in names:
        g = grads[n].abs()
        tiny = int(((g > 0) & (g < 1e-7)).sum())
        assert float(g.max()) > 1e-6, f"gradient of {n} is (almost) zero"
        if tiny:
            print(f"  note: {n}: {tiny} of {g.numel()} gradient entries are nonzero but < 1e-7")
    check_optimiser({n: p[n] for n in names}, grads, OPTIM)
    run_gradcheck(cfg_t, tw, hc, p, buffers, batch, enc, ys, lam(0))

    # --- two training steps
    state = ref.AdamState()
    norm0, coef0, clipped0 = ref.clip_grads(grads, OPTIM.clip_max_norm)
    ref.adamw_step(p, clipped0, state, OPTIM)
    step1 = {n: p[n].detach().clone() for n in names}
    R1 = ref.rotation_from_X(p["das.rotate.X"].detach(), buffers["das.rotate.Q0"])
    out1 = ref.train_step(cfg_t, tw, hc, p, buffers, batch, lam(1), OPTIM, state, F64, enc=enc, ys=ys)
    step2 = {n: p[n].detach().clone() for n in names}
    R2 = ref.rotation_from_X(p["das.rotate.X"].detach(), buffers["das.rotate.Q0"])
    assert float(coef0) < 1.0 and float(out1["clip_coef"]) < 1.0, "clipping must be active in both steps"
    norm_after = math.sqrt(sum(float((g ** 2).sum()) for g in clipped0.values()))
    assert abs(norm_after - OPTIM.clip_max_norm) < 1e-5

    # --- write reflect.safetensors
    ba, sa, ia, pair = valid_masks(batch)
    T = {}
    pos_instr = torch.cumsum(batch["instr_mask"], 1)
    ins = {"instr_ids": batch["instr_ids"], "instr_mask": batch["instr_mask"], "base_ids": batch["base_ids"],
           "base_attn_mask": batch["base_attn_mask"], "base_intv_mask": batch["base_intv_mask"],
           "src_ids": batch["src_ids"], "src_attn_mask": batch["src_attn_mask"],
           "src_intv_mask": batch["src_intv_mask"], "labels": batch["labels"], "is_causal": batch["is_causal"],
           "base_entity_pos": batch["base_entity_pos"], "src_entity_pos": batch["src_entity_pos"],
           "pos_base": ref.positions_from_mask(batch["base_attn_mask"]),
           "pos_src_encode": ref.positions_from_mask(batch["src_attn_mask"]),
           "pos_src_ys": torch.arange(S)[None].expand(3, -1), "pos_instr": pos_instr}
    for kk, v in ins.items():
        T["in." + kk] = v.to(torch.long).contiguous()
    for n in ref.head_param_names():
        T["init." + n] = head_init[n].float().contiguous()
    for n, v in das_init.items():
        T["init." + n] = v.float().contiguous()
    T["init.das.rotate.R"] = f32(ref.rotation_from_X(X.double(), Q0.double()))
    T["p1.base_stack_raw"] = f32(enc["base_raw"], ba)
    T["p1.src_stack_raw"] = f32(enc["src_raw"], sa)
    T["p1.base_stack"] = f32(enc["base_n"], ba)
    T["p1.src_stack"] = f32(enc["src_n"], sa)
    T["p2.base_key_mask"] = enc["mb_flat"].long().contiguous()
    T["p2.src_key_mask"] = enc["ms_flat"].long().contiguous()
    T["p2.base_key_pos"] = enc["pk_b"].long().contiguous()
    T["p2.src_key_pos"] = enc["pk_s"].long().contiguous()
    T.update(dump_trace(trace, batch, S))
    for m in ("column_argmax", "bidding_argmax", "global_argmax", "groundtruth"):
        T["p6." + m] = f32(ref.hard_mode(W, m, batch["base_entity_pos"], batch["src_entity_pos"]))
    T["p10.loss_pred"] = scalar(out0["loss_pred"])
    T["p10.loss_sparsity"] = scalar(out0["loss_sp"])
    T["p10.lambda_sp"] = scalar(lam(0))
    T["p10.loss_total"] = scalar(out0["loss"])
    T["p10.lambda_table"] = torch.tensor([ref.sparsity_lambda(s, 10) for s in range(11)], dtype=torch.float32)
    T["p10.temperature_table"] = ref.temperature_schedule(10).float()
    for n in names:
        T["grad." + n] = f32(grads[n])
    T["grad.das.rotate.R"] = f32(ga[3])
    gW = ga[0]
    T["gradact.W"] = f32(gW, torch.cat([sa, torch.ones_like(sa[:, :1])], 1)[:, :, None].expand(gW.shape))
    T["gradact.hg_last"] = f32(ga[1][:, E - 1, :])
    assert float(ga[1][:, :E - 1].abs().max()) == 0.0
    T["gradact.new_hidden"] = f32(ga[2], ba)
    T["p12.grad_norm"] = scalar(norm0)
    T["p12.clip_coef"] = scalar(coef0)
    T["p12.grad_norm_clipped"] = scalar(norm_after)
    for n in names:
        if n in STEP_SUBSET or not n.startswith("hyper."):
            T["step1." + n] = f32(step1[n])
            T["step2." + n] = f32(step2[n])
    T["step1_checks"] = param_checks(step1, names)
    T["step2_checks"] = param_checks(step2, names)
    T["step1.das.rotate.R"] = f32(R1)
    T["step2.das.rotate.R"] = f32(R2)
    T["p13.loss_pred"] = scalar(out1["loss_pred"])
    T["p13.loss_sparsity"] = scalar(out1["loss_sp"])
    T["p13.lambda_sp"] = scalar(lam(1))
    T["p13.loss_total"] = scalar(out1["loss"])
    T["p13.grad_norm"] = scalar(out1["grad_norm"])
    T["p13.clip_coef"] = scalar(out1["clip_coef"])

    f32_noise = float32_agreement(batch, hc, head_init, das_init, T)

    config = {
        "target_dir": "tests/fixtures/tiny-llama-f32",
        "vocab": cfg_t.vocab, "d": d, "n_heads": cfg_t.n_heads, "n_kv_heads": cfg_t.n_kv_heads,
        "head_dim": cfg_t.head_dim, "ffn": cfg_t.ffn, "target_layers": cfg_t.n_layers, "rms_eps": cfg_t.rms_eps,
        "batch": 3, "instr_len": E, "base_len": B, "src_len": S, "pad_id": 2,
        "hyper_layers": hc.n_hyper_layers, "intervention_layer": hc.intervention_layer, "das_dim": k,
        "sub_ffn": hc.sub_ffn, "subspace": "ReflectSelect", "ys_positions": "default (0..S-1)",
        "causal_loss_weight": hc.causal_weight, "iso_loss_weight": hc.iso_weight,
        "sparsity_loss": True, "sparsity_start": LAMBDA_START, "sparsity_end": LAMBDA_END,
        "sparsity_total_steps": TOTAL_STEPS, "sparsity_warm_up_ratio": WARM_UP,
        "lambda_step0": lam(0), "lambda_step1": lam(1),
        "lr": OPTIM.lr, "weight_decay": OPTIM.weight_decay, "lr_rotate": OPTIM.lr_rotate,
        "weight_decay_rotate": 0.0, "lr_mask": OPTIM.lr_mask, "weight_decay_mask": OPTIM.weight_decay,
        "adam_beta1": OPTIM.betas[0], "adam_beta2": OPTIM.betas[1], "adam_eps": OPTIM.eps,
        "clip_max_norm": OPTIM.clip_max_norm, "clip_eps": 1e-6,
        "mask_temperature": MASK_TAU, "bidding_threshold": 0.1,
        "head_init_std": HEAD_STD, "seeds": {"head": HEAD_SEED, "rotation": ROT_SEED, "reflect_mlp": DAS_SEED,
                                             "mask_mlp": MASK_SEED, "batch": 5},
        "computed_in": "float64, written as float32",
        "float32_reference_noise": f32_noise,
        "param_names": names,
        "g_init_from_target": {n: ref.g_init_source(n) for n in ref.g_param_names(cfg_t, hc)},
    }
    meta = {"config": json.dumps(config, sort_keys=True), "param_names": json.dumps(names),
            "generator": "tests/ref/gen_hyperdas_fixtures.py", "torch": torch.__version__}
    save_file(T, os.path.join(OUT_DIR, "reflect.safetensors"), metadata=meta)
    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        json.dump(config, f, indent=1, sort_keys=True)
        f.write("\n")

    # --- variants: DAS and MaskSelect (same G/head, same X/Q0)
    for sub, fname, seed in (("das", "variant_das.safetensors", None), ("mask", "variant_maskselect.safetensors", MASK_SEED)):
        hv = ref.HyperConfig(**{**hc.__dict__, "subspace": sub, "mask_temperature": MASK_TAU})
        dinit = ref.make_das_init(cfg_t, hv, torch.Generator().manual_seed(seed or 0), X, Q0)
        pv, bv = ref.build_params(cfg_t, tw, hv, head_init, dinit, F64)
        tv = {}
        ov = ref.forward(cfg_t, tw, hv, pv, bv, batch, lam(0), F64, enc=enc, ys=ys, trace=tv)
        assert torch.equal(ov["W"].detach(), W)
        vn = list(pv.keys())
        gv = dict(zip(vn, torch.autograd.grad(ov["loss"], [pv[n] for n in vn])))
        nv, cv, clv = ref.clip_grads(gv, OPTIM.clip_max_norm)
        stv = ref.AdamState()
        ref.adamw_step(pv, clv, stv, OPTIM)
        V = {}
        for n, v in dinit.items():
            V["init." + n] = v.float().contiguous()
        V["new_hidden"] = f32(ov["new_hidden"], ba)
        V["loss_pred"] = scalar(ov["loss_pred"])
        V["loss_sparsity"] = scalar(ov["loss_sp"])
        V["lambda_sp"] = scalar(lam(0))
        V["loss_total"] = scalar(ov["loss"])
        if sub == "mask":
            V["temperature"] = scalar(MASK_TAU)
            V["mask"] = f32(tv["mask"])
        keep = [n for n in vn if n.startswith("das.")] + [
            "head.q_combine.weight", "hyper.norm.weight", "hyper.layers.1.base_cross_attn.k_proj.weight"]
        for n in keep:
            V["grad." + n] = f32(gv[n])
        V["grad_norm"] = scalar(nv)
        V["clip_coef"] = scalar(cv)
        for n in vn:
            if n.startswith("das."):
                V["step1." + n] = f32(pv[n])
        save_file(V, os.path.join(OUT_DIR, fname),
                  metadata={"subspace": sub, "param_names": json.dumps(vn),
                            "generator": "tests/ref/gen_hyperdas_fixtures.py"})
        extra = ""
        if sub == "mask":
            extra = f" mask range [{float(tv['mask'].min()):.3f}, {float(tv['mask'].max()):.3f}]"
        print(f"  {fname}: loss {float(ov['loss']):.6f} grad_norm {float(nv):.4f}{extra}")

    write_hard_modes()
    write_eval_metric()
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"  step 0: loss_pred {float(out0['loss_pred']):.6f} loss_sp {float(out0['loss_sp']):.6f} "
          f"grad_norm {float(norm0):.4f} (clip coef {float(coef0):.4f}); step 1: loss {float(out1['loss']):.6f} "
          f"grad_norm {float(out1['grad_norm']):.4f}; max |R'^T R' - I| {err_orth:.1e}; Ys pos gap {ys_gap:.1e}")
    print(f"gen_hyperdas_fixtures: wrote {OUT_DIR} ({total / 1024:.0f} KiB)")


def write_hard_modes():
    """P6: hand-made W (b=2, S=4, B=6) with ties and self weights below 0.1."""
    W = torch.tensor([
        [[0.30, 0.05, 0.00, 0.20, 0.00, 0.02],
         [0.30, 0.50, 0.00, 0.20, 0.00, 0.02],   # ties with row 0 at t=0 and t=3
         [0.00, 0.40, 0.05, 0.10, 0.00, 0.90],
         [0.35, 0.00, 0.00, 0.45, 0.00, 0.02],
         [0.05, 0.05, 0.95, 0.05, 1.00, 0.04]],  # self row: several below 0.1
        [[0.10, 0.10, 0.10, 0.00, 0.00, 0.00],
         [0.00, 0.00, 0.00, 0.00, 0.00, 0.00],   # masked source row: argmax ties -> t=0
         [0.45, 0.20, 0.45, 0.00, 0.00, 0.00],   # tie between t=0 and t=2
         [0.36, 0.60, 0.36, 0.00, 0.00, 0.00],
         [0.09, 0.10, 0.09, 1.00, 1.00, 1.00]],
    ], dtype=F64)
    W[0] = W[0] / W[0].sum(0, keepdim=True)
    bent, sent = torch.tensor([1, 0]), torch.tensor([2, 3])
    out = {"W": W.float(), "base_entity_pos": bent, "src_entity_pos": sent}
    Wf = W.float().double()   # modes are computed on the stored float32 values
    lit = original_hard_modes_literal(Wf)
    for m in ("column_argmax", "bidding_argmax", "global_argmax", "groundtruth"):
        o = ref.hard_mode(Wf, m, bent, sent)
        if m in lit:
            assert torch.equal(o, lit[m]), m
        out[m] = o.float().contiguous()
    save_file(out, os.path.join(OUT_DIR, "hard_modes.safetensors"),
              metadata={"generator": "tests/ref/gen_hyperdas_fixtures.py", "bidding_threshold": "0.1"})


def write_eval_metric():
    """P14: teacher-forced first-3-token exact match on a hand-built batch."""
    b, Bn, V = 6, 8, 12
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(b, Bn, V, generator=g)
    labels = torch.full((b, Bn), ref.IGNORE, dtype=torch.long)
    is_causal = torch.tensor([1, 1, 1, 0, 0, 0])
    # (number of label tokens, which label tokens the prediction gets WRONG)
    spec = [(1, []), (4, [3]), (2, [1]), (5, []), (3, [0]), (4, [3])]
    for i, (n, wrong) in enumerate(spec):
        for j in range(n):
            pos = Bn - n + j
            tok = int(torch.randint(0, V, (1,), generator=g))
            labels[i, pos] = tok
            row = logits[i, pos - 1]
            want = (tok + 1) % V if j in wrong else tok
            row[want] = row.max() + 1.0
    c3 = ref.eval_correct(logits, labels, 3)
    ca = ref.eval_correct(logits, labels, None)
    assert c3.tolist() == [1, 1, 0, 1, 0, 1] and ca.tolist() == [1, 0, 0, 1, 0, 0]
    s3 = ref.eval_scores(c3, is_causal)
    sa_ = ref.eval_scores(ca, is_causal)
    out = {"logits": logits, "labels": labels, "is_causal": is_causal,
           "correct_first3": c3, "correct_all": ca,
           "cause_acc_first3": scalar(s3[0]), "isolate_acc_first3": scalar(s3[1]),
           "disentangle_first3": scalar(s3[2]), "cause_acc_all": scalar(sa_[0]),
           "isolate_acc_all": scalar(sa_[1]), "disentangle_all": scalar(sa_[2])}
    save_file(out, os.path.join(OUT_DIR, "eval_metric.safetensors"),
              metadata={"generator": "tests/ref/gen_hyperdas_fixtures.py"})


if __name__ == "__main__":
    main()
