#!/usr/bin/env python3
"""Every Unicode scalar value in context, tokenized by Hugging Face `tokenizers`:
the reference for tests/test_tokenizer_codepoints.c.

For each tokenizer and every code point c in 0..0x10FFFF except the
surrogates (NUL included: HF takes it as an ordinary character), the string
CONTEXT with every "{c}" replaced by c is encoded without special tokens.
The context puts c after a run of tabs and before a letter (\\s+(?!\\S)),
between digits (Digits, \\p{N}{1,3}), between letters (\\p{L}+ and
[^\\s\\p{L}\\p{N}]), after an apostrophe (the (?i:'s|...) contractions: ſ
folds to s), four times in a row (\\p{N}{1,3} and merges of the character
with itself), before a newline ([\\r\\n]) and at the end of the text.

The tokenizers: llama2, llama3, llama3.1 (../shared/tokenizers) and smollm2
(the GGUF in models/), built exactly as gen_tokenizer_fixtures.py builds
them, and the committed tiny_classes_smollm and tiny_classes_llama3 (their
merges cross the class boundaries; they also run in a fresh clone).  Its
name puts it after gen_tokenizer_fixtures.py in `make fixtures`, which
writes those two (rerun this after its `classes` mode too).

Writes tests/fixtures/tokenizer/codepoints.json (about 70 KB):

  context, block, tokenizers_version, code_points (how many strings)
  suspects     [[first, last], ...]: the code points where the character
               classes of Python's unicodedata, Rust, PCRE2 and Oniguruma
               may disagree (see suspects()), as ranges;
  tokenizers   per tokenizer:
    blocks     one 64-bit hash (16 hex digits) per block of `block` code
               points (block k: k*block .. (k+1)*block-1, surrogates left
               out): FNV-1a 64 over the per-code-point words below, in order;
    suspects   (the real tokenizers) the low 16 bits of the per-code-point
               hash of every suspect, 4 hex digits each, in order: when a
               block differs, the C test names the suspects that differ.

Per code point, as in gen_tokenizer_fixtures.py: a = FNV-1a over the 32-bit
words [n, id_0, ..., id_{n-1}], b = FNV-1a over [n, s_0, e_0, ...] (UTF-8
byte offsets); the per-code-point hash is FNV-1a over the 64-bit words [a, b],
and a block hash folds a then b of each code point into one FNV-1a state.

Usage: gen_tokenizer_unicode_sweep.py [NAME...] (default: all six; entries of
tokenizers not named are kept from the existing file when its context, block
and suspects are the same; naming only tiny ones needs neither
../shared/tokenizers nor the model).  About a minute per tokenizer on two
cores.
"""
import json
import os
import sys
import time
import unicodedata

import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_tokenizer_fixtures as g  # noqa: E402

CONTEXT = "x\t\t{c}y 1{c}2 a{c}b '{c} {c}{c}{c}{c}\n {c}"
BLOCK = 4096
MAX_CP = 0x110000
PATH = os.path.join(g.OUT, "codepoints.json")
CHUNK = 1 << 16
TINY = ["tiny_classes_smollm", "tiny_classes_llama3"]


def code_points():
    return [c for c in range(MAX_CP) if not 0xD800 <= c <= 0xDFFF]


def suspects():
    """Code points whose class membership some engine may see differently:
    whitespace (White_Space, Python's isspace, the Z categories, Cc, Cf such
    as U+180E, U+200B, U+FEFF), numbers (Nd, Nl, No and the Unicode 15 and
    16 digits Python 3.11 / PCRE2 10.42 / Oniguruma 6.9.8 do not know but
    Rust's char::is_numeric may), noncharacters and U+FFFD."""
    out = set()
    for c in code_points():
        ch = chr(c)
        cat = unicodedata.category(ch)
        if cat in ("Nd", "Nl", "No", "Zs", "Zl", "Zp", "Cc", "Cf") or ch.isspace():
            out.add(c)
        if 0xFDD0 <= c <= 0xFDEF or (c & 0xFFFE) == 0xFFFE:
            out.add(c)
    # Unicode 15 (Kawi, Kaktovik, Nag Mundari) and Unicode 16 digits.
    for a, b in ((0x11F50, 0x11F59), (0x1D2C0, 0x1D2D3), (0x1E4F0, 0x1E4F9), (0x10D40, 0x10D49),
                 (0x11BF0, 0x11BF9), (0x116D0, 0x116E3), (0x16D70, 0x16D79), (0x1CCF0, 0x1CCF9),
                 (0x1E5F1, 0x1E5FA), (0x16130, 0x16139)):
        out.update(range(a, b + 1))
    out.add(0xFFFD)
    return sorted(out)


def ranges(cps):
    out = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def byte_maps():
    """For a code point of UTF-8 length L: character index -> byte offset
    in the context string (every other character of CONTEXT is ASCII)."""
    parts = CONTEXT.split("{c}")
    chars = "\0".join(parts)  # one character where each c goes
    maps = {}
    for L in (1, 2, 3, 4):
        pos = [0]
        for ch in chars:
            pos.append(pos[-1] + (L if ch == "\0" else 1))
        maps[L] = pos
    return maps


def utf8_len(c):
    return 1 if c < 0x80 else 2 if c < 0x800 else 3 if c < 0x10000 else 4


def per_code_point(tok, cps):
    """(a, b) arrays: the ids and offsets hash of every code point's string."""
    maps = byte_maps()
    a = np.empty(len(cps), dtype=np.uint64)
    b = np.empty(len(cps), dtype=np.uint64)
    for k in range(0, len(cps), CHUNK):
        part = cps[k:k + CHUNK]
        texts = [CONTEXT.replace("{c}", chr(c)) for c in part]
        encs = tok.encode_batch(texts, add_special_tokens=False)
        ids = [[len(e.ids)] + e.ids for e in encs]
        offs = []
        for c, e in zip(part, encs):
            m = maps[utf8_len(c)]
            offs.append([len(e.offsets)] + [m[v] for se in e.offsets for v in se])
        a[k:k + len(part)] = g.string_hashes(ids)
        b[k:k + len(part)] = g.string_hashes(offs)
    return a, b


def fold(h, a, b):
    for x, y in zip(a.tolist(), b.tolist()):
        h = ((h ^ x) * g.FNV_PRIME) & g.MASK64
        h = ((h ^ y) * g.FNV_PRIME) & g.MASK64
    return h


def named_tokenizers(want):
    """[(name, Tokenizer)]: the tiny class tokenizers (committed, so that a
    fresh clone sweeps too), then the real ones."""
    out = [(n, Tokenizer.from_file(os.path.join(g.OUT, n + ".json"))) for n in TINY if not want or n in want]
    if not want or any(n not in TINY for n in want):
        out += [(n, t) for n, t, info in g.real_tokenizers() if not want or n in want]
    return out


def main():
    import tokenizers
    want = sys.argv[1:]
    cps = code_points()
    sus = suspects()
    index = {c: i for i, c in enumerate(cps)}
    old = {}
    if os.path.exists(PATH):
        prev = json.load(open(PATH, encoding="utf-8"))
        if prev.get("context") == CONTEXT and prev.get("block") == BLOCK and prev.get("suspects") == ranges(sus):
            old = prev["tokenizers"]
    for name, tok in named_tokenizers(want):
        t0 = time.time()
        a, b = per_code_point(tok, cps)
        blocks = []
        arr = np.array(cps)
        for blk in range(MAX_CP // BLOCK):
            lo, hi = np.searchsorted(arr, [blk * BLOCK, (blk + 1) * BLOCK])
            blocks.append("%016x" % fold(g.FNV_BASIS, a[lo:hi], b[lo:hi]))
        old[name] = {"blocks": blocks}
        if name not in TINY:
            old[name]["suspects"] = "".join("%04x" % (fold(g.FNV_BASIS, a[i:i + 1], b[i:i + 1]) & 0xFFFF)
                                            for i in (index[c] for c in sus))
        print(f"  codepoints.json: {name}: {len(cps)} strings, {time.time() - t0:.0f} s")
    g.dump(PATH, {"tokenizers_version": tokenizers.__version__, "context": CONTEXT, "block": BLOCK,
                  "code_points": len(cps), "suspects": ranges(sus), "tokenizers": dict(sorted(old.items()))})
    print(f"  codepoints.json: {len(sus)} suspects, {os.path.getsize(PATH)} bytes")


if __name__ == "__main__":
    main()
