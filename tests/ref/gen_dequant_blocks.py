"""Dequantisation references from the gguf Python package (gguf-py 0.10.0).

Needs models/SmolLM2-135M-Instruct.Q4_1.gguf (`make model`) for the real
blocks; stops with a message if it is missing.  Writes
tests/fixtures/dequant/blocks.safetensors with, for each case NAME:
  NAME.raw  U8  [n_blocks, block_bytes]   the bytes as stored in a GGUF
            (for f16/bf16: [n, 2], one value per row)
  NAME.f32  F32 [n_blocks, 32] (or [n, 1])  gguf.quants.dequantize(raw, type)
Cases:
  q4_1.real  the first 16 blocks of blk.0.attn_q.weight (Q4_1) of SmolLM2
  q8_0.real  the first 16 blocks of token_embd.weight (Q8_0) of SmolLM2
  q4_0.rand, q4_1.rand, q8_0.rand  16 blocks of random bytes whose f16
             scale fields are random finite values (one subnormal, one
             negative zero) - Q4_0 has no real tensor in our model
  f16        4096 half bit patterns: every special class (zeros, smallest
             and largest subnormals and normals, infinities, NaNs with
             payloads) and random ones; reference = numpy float16 -> float32
  bf16       4096 bfloat16 bit patterns, same idea; reference = gguf BF16
Compare bit for bit (NaN payloads included).
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFReader
from gguf.quants import dequantize
from deterministic_safetensors import canonicalize
from safetensors.numpy import save_file

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "tests", "fixtures", "dequant", "blocks.safetensors")
BLOCK_BYTES = {Q.Q4_0: 18, Q.Q4_1: 20, Q.Q8_0: 34}


def real_blocks(reader, name, qtype, n=16):
    t = next(t for t in reader.tensors if t.name == name)
    assert t.tensor_type == qtype, (name, t.tensor_type)
    raw = np.asarray(t.data).reshape(-1)[: n * BLOCK_BYTES[qtype]].reshape(n, BLOCK_BYTES[qtype]).copy()
    return raw


def random_scales(rng, n):
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    bits[(bits & 0x7C00) == 0x7C00] &= 0xBBFF   # no inf/NaN scales
    bits[0] = 0x0003                            # a subnormal scale
    bits[1] = 0x8000                            # negative zero
    return bits


def random_blocks(rng, qtype, n=16):
    raw = rng.integers(0, 256, size=(n, BLOCK_BYTES[qtype]), dtype=np.uint8)
    raw[:, 0:2] = random_scales(rng, n).view(np.uint8).reshape(n, 2)
    if qtype == Q.Q4_1:   # the min m is an f16 too
        raw[:, 2:4] = random_scales(rng, n).view(np.uint8).reshape(n, 2)
    return raw


def special_halves():
    return [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00,
            0x7C00, 0xFC00, 0x7C01, 0x7E00, 0xFE00, 0x7FFF, 0x3555, 0x0200]


def special_bf16():
    return [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80,
            0x7F80, 0xFF80, 0x7F81, 0x7FC0, 0xFFC0, 0x7FFF]


def main():
    if not os.path.exists(GGUF):
        sys.exit(f"gen_dequant_blocks: {GGUF} is missing; run `make model` first")
    rng = np.random.default_rng(2024)
    reader = GGUFReader(GGUF)
    cases = {
        "q4_1.real": (real_blocks(reader, "blk.0.attn_q.weight", Q.Q4_1), Q.Q4_1),
        "q8_0.real": (real_blocks(reader, "token_embd.weight", Q.Q8_0), Q.Q8_0),
        "q4_0.rand": (random_blocks(rng, Q.Q4_0), Q.Q4_0),
        "q4_1.rand": (random_blocks(rng, Q.Q4_1), Q.Q4_1),
        "q8_0.rand": (random_blocks(rng, Q.Q8_0), Q.Q8_0),
    }
    out = {}
    for name, (raw, qtype) in cases.items():
        out[name + ".raw"] = np.ascontiguousarray(raw)
        with np.errstate(all="ignore"):
            out[name + ".f32"] = np.ascontiguousarray(dequantize(raw, qtype).reshape(raw.shape[0], 32).astype(np.float32))
    for name, specials, qtype in (("f16", special_halves(), Q.F16), ("bf16", special_bf16(), Q.BF16)):
        bits = np.concatenate([np.array(specials, dtype=np.uint16),
                               rng.integers(0, 1 << 16, size=4096 - len(specials), dtype=np.uint16)])
        raw = bits.view(np.uint8).reshape(-1, 2)
        with np.errstate(all="ignore"):
            ref = dequantize(raw.reshape(-1), qtype).reshape(-1, 1).astype(np.float32)
        out[name + ".raw"] = np.ascontiguousarray(raw)
        out[name + ".f32"] = np.ascontiguousarray(ref)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(out, OUT, metadata={"generator": "tests/ref/gen_dequant_blocks.py", "gguf": "0.10.0"})
    canonicalize(OUT)
    print(f"gen_dequant_blocks: wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
