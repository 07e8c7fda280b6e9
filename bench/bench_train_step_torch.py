"""Seconds per HyperDAS training step of the PyTorch reference (CPU, float32).

One step = the reference's full training step (tests/ref/hyperdas_ref.py):
T encodes base and source (no grad), G + head give W, the source run gives
Ys, the intervened base run gives logits, loss (prediction + sparsity),
backward into G, head and D, global-norm clip, AdamW with the three
learning-rate groups.  Target: SmolLM2-135M-Instruct from the Q4_1 GGUF,
dequantised to float32 by transformers' own GGUF loader.  Inputs are random
token ids with random left padding, built like RAVEL batches (label tokens at
the right end, BOS + prefix visible for the intervention).

Usage (repository root):
  .venv-ref/bin/python bench/bench_train_step_torch.py --threads 2 --steps 3
Prints one line per step and a summary line:
  bench_train_step_torch: threads=T b=.. E=.. B=.. S=.. Lh=.. L=.. k=.. sub_ffn=..
      sec/step median X (min Y) over N steps after W warm-up; peak RSS Z MiB
The reference is plain matmul-bound PyTorch (MKL); compare against the C
tool only on the same machine at the same load (the first measurement, on a
shared 2-core AMD EPYC at load ~5, gave 51-75 s/step and 3.8 GB peak RSS
with 2 threads; that machine did ~10 GFLOP/s on a plain 384x576x1536 matmul).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
import hyperdas_ref as ref  # noqa: E402


def load_smollm2(path):
    from transformers import AutoConfig
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    d, f = os.path.split(path)
    cfg = AutoConfig.from_pretrained(d or ".", gguf_file=f)
    cfg.tie_word_embeddings = True   # the GGUF has no output.weight (see gen_smollm2_fixtures.py)
    tensors = load_gguf_checkpoint(path, return_tensors=True)["tensors"]
    w = {k: torch.as_tensor(v) for k, v in tensors.items()}
    return ref._finish_target(ref.target_config_from_hf(cfg), w, torch.float32)


def random_batch(cfg_t, b, E, B, S, gen, pad_id=2, bos=1):
    V = cfg_t.vocab

    def toks(n):
        return torch.randint(3, V, (n,), generator=gen)

    out = {k: [] for k in ("instr_ids", "instr_mask", "base_ids", "base_attn_mask", "base_intv_mask",
                           "src_ids", "src_attn_mask", "src_intv_mask", "labels")}
    for _ in range(b):
        ne = int(torch.randint(E // 2, E + 1, (1,), generator=gen))
        ids = torch.full((E,), pad_id)
        ids[E - ne:] = toks(ne)
        ids[E - ne] = bos
        out["instr_ids"].append(ids)
        out["instr_mask"].append((ids != pad_id).long())
        for kind, n_tot in (("base", B), ("src", S)):
            n = int(torch.randint(n_tot * 2 // 3, n_tot + 1, (1,), generator=gen))
            ids = torch.full((n_tot,), pad_id)
            ids[n_tot - n:] = toks(n)
            ids[n_tot - n] = bos
            am = torch.zeros(n_tot, dtype=torch.long)
            am[n_tot - n:] = 1
            n_label = 2 if kind == "base" else 0
            n_suffix = 3
            iv = am.clone()
            iv[n_tot - n_label - n_suffix:] = 0     # suffix (and label) hidden
            out[kind + "_ids"].append(ids)
            out[kind + "_attn_mask"].append(am)
            out[kind + "_intv_mask"].append(iv)
            if kind == "base":
                lab = torch.full((n_tot,), ref.IGNORE)
                lab[n_tot - n_label:] = ids[n_tot - n_label:]
                out["labels"].append(lab)
    batch = {k: torch.stack(v) for k, v in out.items()}
    batch["is_causal"] = (torch.rand(b, generator=gen) < 0.5).long()
    return batch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--instr-len", type=int, default=10)
    ap.add_argument("--base-len", type=int, default=24)
    ap.add_argument("--src-len", type=int, default=24)
    ap.add_argument("--hyper-layers", type=int, default=2)
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--das-dim", type=int, default=128)
    ap.add_argument("--sub-ffn", type=int, default=0, help="ReflectSelect MLP width (0: the target's ffn)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not os.path.exists(a.model):
        sys.exit(f"bench_train_step_torch: {a.model} is missing (run `make model`)")

    t0 = time.time()
    cfg_t, tw = load_smollm2(a.model)
    for t in tw.values():
        t.requires_grad_(False)
    load_s = time.time() - t0
    rss_load_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    hc = ref.HyperConfig(n_hyper_layers=a.hyper_layers, intervention_layer=a.layer, das_dim=a.das_dim,
                         subspace="reflect", sub_ffn=a.sub_ffn or cfg_t.ffn)
    gen = torch.Generator().manual_seed(a.seed)
    X, Q0, _ = ref.init_rotation(cfg_t.d, hc.das_dim, a.seed)
    head_init = ref.make_head_init(cfg_t, gen, 0.02)            # production init N(0, 0.02) (hyperdas(7) 14.6)
    das_init = ref.make_das_init(cfg_t, hc, gen, X, Q0)
    p, buffers = ref.build_params(cfg_t, tw, hc, head_init, das_init, torch.float32)
    n_params = sum(t.numel() for t in p.values())
    oc = ref.OptimConfig()                                      # production defaults (lr 4e-5, clip 4.0, ...)
    state = ref.AdamState()
    batch = random_batch(cfg_t, a.batch, a.instr_len, a.base_len, a.src_len, gen)
    print(f"bench_train_step_torch: model loaded in {load_s:.1f} s; trainable params {n_params / 1e6:.1f} M; "
          f"d={cfg_t.d} Lt={cfg_t.n_layers} V={cfg_t.vocab}", flush=True)

    times = []
    total = a.warmup + a.steps
    for step in range(total):
        lam = ref.sparsity_lambda(step, max(total, 1))
        t = time.perf_counter()
        out = ref.train_step(cfg_t, tw, hc, p, buffers, batch, lam, oc, state, torch.float32)
        dt = time.perf_counter() - t
        tag = "warm-up" if step < a.warmup else "timed"
        print(f"  step {step} ({tag}): {dt:.3f} s  loss {float(out['loss']):.4f}  "
              f"grad_norm {float(out['grad_norm']):.3f}", flush=True)
        if step >= a.warmup:
            times.append(dt)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if times:
        print(f"bench_train_step_torch: threads={a.threads} b={a.batch} E={a.instr_len} B={a.base_len} "
              f"S={a.src_len} Lh={a.hyper_layers} L={a.layer} k={a.das_dim} sub_ffn={hc.sub_ffn} "
              f"sec/step median {statistics.median(times):.3f} (min {min(times):.3f}) over {len(times)} steps "
              f"after {a.warmup} warm-up; peak RSS {rss_mib:.0f} MiB (peak after loading the model: "
              f"{rss_load_mib:.0f} MiB)")


if __name__ == "__main__":
    main()
