"""PyTorch side of bench_llama_forward_cpu: the same forward (a random
Llama with SmolLM2-135M's shapes, float32, batch b x T, left padding r % 5)
through transformers' LlamaForCausalLM, best of a few runs, on the CPU.

    python3 bench/bench_llama_forward_torch.py [b] [T] [threads]
"""
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    b = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    T = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(threads)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                      num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                      rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                      attn_implementation="eager")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).float().eval()
    ids = torch.randint(0, 49152, (b, T))
    mask = torch.ones(b, T, dtype=torch.long)
    for r in range(b):
        mask[r, : r % 5] = 0
    pos = (mask.cumsum(-1) * mask - 1).clamp(min=0)
    best = float("inf")
    with torch.no_grad():
        for _ in range(3):
            t0 = time.perf_counter()
            # hidden states of every layer, logits only at the last position,
            # as hd-filter and cache-acts ask for them
            out = model.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                              output_hidden_states=True)
            model.lm_head(out.last_hidden_state[:, -1])
            best = min(best, time.perf_counter() - t0)
    print(f"torch forward b={b} T={T} ({b*T} tokens) threads={threads}: {best:.3f} s, "
          f"{b*T/best:.0f} tokens/s (torch {torch.__version__})")


if __name__ == "__main__":
    main()
