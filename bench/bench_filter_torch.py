"""The model filter of hd-filter, done the usual way in Hugging Face transformers.

For each pair record (JSON lines from `hd-cat PAIRS`), run BOS + verify_input
+ answer_sep + label teacher-forced and keep the pair when every label token
is the argmax at the position before it: the rule HyperDAS's data
preparation uses.  Batched as the original code is, in input order, b pairs
per forward pass, right-padded with an attention mask; every pair is run,
also when another pair had the same verify prompt (the original code does
not deduplicate).  The answer tokens are those after the token count of
BOS + verify_input tokenised alone, as in hd-filter.

SmolLM2 is loaded from the same Q4_1 GGUF hd-filter reads, dequantised to
fp32 by transformers' own GGUF path (tests/ref/gen_smollm2_fixtures.py),
attention "sdpa", torch.set_num_threads(THREADS).

    python bench/bench_filter_torch.py PAIRS.jsonl --threads 2 --batch 16 --out kept.txt

Prints one line: pairs, kept, seconds, pairs/s; --out writes "id<TAB>0|1"
per pair so bench_filter.sh can check that both filters keep the same pairs.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from gen_smollm2_fixtures import GGUF_DIR, GGUF_NAME, build_model  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    pairs = []
    with open(args.pairs) as f:
        for line in f:
            r = json.loads(line)
            if r.get("t") == "pair":
                pairs.append(r)

    t_load = time.perf_counter()
    model = build_model()
    model.config._attn_implementation = "sdpa"
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    bos = tok.bos_token_id
    load_s = time.perf_counter() - t_load

    t0 = time.perf_counter()
    seqs = []
    for p in pairs:
        ids = [bos] + tok(p["verify_input"] + p["answer_sep"] + p["label"], add_special_tokens=False)["input_ids"]
        n_prompt = 1 + len(tok(p["verify_input"], add_special_tokens=False)["input_ids"])
        seqs.append((ids, n_prompt))
    kept = []
    with torch.inference_mode():
        for i in range(0, len(seqs), args.batch):
            chunk = seqs[i:i + args.batch]
            width = max(len(ids) for ids, _ in chunk)
            x = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.long)
            for j, (ids, _) in enumerate(chunk):
                x[j, :len(ids)] = torch.tensor(ids)
                mask[j, :len(ids)] = 1
            pred = model(input_ids=x, attention_mask=mask).logits.argmax(-1)
            for j, (ids, n_prompt) in enumerate(chunk):
                ok = n_prompt < len(ids) and all(int(pred[j, t - 1]) == ids[t] for t in range(n_prompt, len(ids)))
                kept.append(ok)
    secs = time.perf_counter() - t0

    if args.out:
        with open(args.out, "w") as f:
            for p, k in zip(pairs, kept):
                f.write(f"{p['id']}\t{int(k)}\n")
    print(f"transformers: threads={args.threads} b={args.batch} pairs={len(pairs)} kept={sum(kept)} "
          f"seconds={secs:.2f} pairs/s={len(pairs) / secs:.2f} (model load {load_s:.1f} s, not counted)")


if __name__ == "__main__":
    main()
