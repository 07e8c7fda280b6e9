#!/usr/bin/env python3
"""Reference token ids for tests/test_tokenizer.c, from Hugging Face `tokenizers`.

Writes tests/fixtures/tokenizer/:

  corpus.json        the strings compared exactly: a hand-written hard corpus
                     (unicode, emoji, CJK, numbers, runs of spaces and
                     newlines, special-token text) and a deterministic sample
                     of RAVEL and Wikipedia prompts.
  NAME.json          per tokenizer (llama2, llama3, llama3.1, smollm2): HF's
                     ids and byte offsets for every corpus string, decodes,
                     id -> token samples, and the sweep's layout.
  NAME.fnv           the sweep: for every RAVEL template of every domain
                     filled with every entity, and every Wikipedia template
                     (named ones with their own entity plus 4 others,
                     entity-less ones with every entity), two FNV-1a
                     fingerprints per template (ids, offsets); see fnv_*().
  tiny_*.json        three small tokenizers trained here with `tokenizers`
  tiny_*.expect.json (byte-level with digit split, Llama-3 style with
                     ignore_merges, SentencePiece style with byte fallback)
                     and HF's output on the hard corpus, so that a fresh clone
                     without ../shared/tokenizers still tests the algorithms.
  llama2_scores.json ids of the hard corpus for the Llama 2 vocabulary with
                     merges derived from scores (-id) by transformers' GGUF
                     converter: the tokenizer_from_arrays "llama" path.
  classes.json       strings where a Unicode character class decides the
                     split (see class_corpus()) and every tokenizer's ids and
                     byte offsets for them (tests/test_tokenizer_classes.c);
  tiny_classes_*.json  two small tokenizers whose ids show any such split
                     (see class_tokenizers()); `classes` as the argument
                     rewrites these three files alone.

SmolLM2: transformers 4.46 builds its tokenizer from the GGUF with a plain
GPT-2 ByteLevel pre-tokenizer and ignores tokenizer.ggml.pre = "smollm", so
it does not split digits off one by one as SmolLM2's own tokenizer.json and
llama.cpp do (the model was trained with the split).  The reference used
here is transformers' tokenizer with the pre-tokenizer set to SmolLM2's
Sequence[Digits(individual), ByteLevel], no post-processor
(tokenizer.ggml.add_bos_token is false) and a ByteLevel decoder; how many
RAVEL strings transformers' unpatched tokenizer tokenizes differently is
printed.  The patched tokenizer.json is also saved, git-ignored, as
models/SmolLM2-135M-Instruct.tokenizer.json.

Offsets: HF gives character offsets into the Python str; they are converted
to byte offsets of the UTF-8 text, which is what the C side produces.

Fingerprints (little-endian words, FNV-1a 64 applied word by word:
h = (h ^ w) * 0x100000001b3 mod 2^64, from 0xcbf29ce484222325):
  string ids hash      over [n, id_0, ..., id_{n-1}]         (32-bit words)
  string offsets hash  over [n, s_0, e_0, ..., s_{n-1}, e_{n-1}]
  template fingerprint over the string hashes of its fills, in order (64-bit words)
Entities and templates are sorted by their UTF-8 bytes; a template is filled
by replacing its single "%s".  Encoding without special tokens.
"""
import hashlib
import itertools
import json
import os
import random
import sys
import time

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import processors

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "tokenizers"))
RAVEL = os.path.join(ROOT, "data", "ravel")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
MODELS = os.path.join(ROOT, "models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DOMAINS = ["city", "nobel_prize_winner", "occupation", "physical_object", "verb"]
WIKI_SAMPLE = 4
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

FNV_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1


def bkey(s):
    return s.encode("utf-8")


def fill(template, entity):
    return template.replace("%s", entity, 1)


# ---- RAVEL prompts -----------------------------------------------------------

def load_domain(d):
    ents = json.load(open(os.path.join(RAVEL, f"ravel_{d}_entity_attributes.json"), encoding="utf-8"))
    a2p = json.load(open(os.path.join(RAVEL, f"ravel_{d}_attribute_to_prompts.json"), encoding="utf-8"))
    wiki = json.load(open(os.path.join(RAVEL, f"wikipedia_{d}_entity_prompts.json"), encoding="utf-8"))
    entities = sorted(ents, key=bkey)
    templates = sorted({t for ts in a2p.values() for t in ts}, key=bkey)
    wiki_templates = sorted(wiki, key=bkey)
    return entities, templates, [(w, wiki[w]["entity"]) for w in wiki_templates]


def wiki_fills(entities, own):
    """The entities a Wikipedia template is filled with."""
    if own is None:
        return entities
    n = len(entities)
    return [own] + [entities[j * n // WIKI_SAMPLE] for j in range(WIKI_SAMPLE)]


def sweep_layout():
    """[(domain, [(kind, template, [strings])...])] in the order the C test uses."""
    out = []
    for d in DOMAINS:
        entities, templates, wiki = load_domain(d)
        groups = [("ravel", t, [fill(t, e) for e in entities]) for t in templates]
        groups += [("wiki", w, [fill(w, e) for e in wiki_fills(entities, own)]) for w, own in wiki]
        out.append((d, entities, templates, wiki, groups))
    return out


# ---- hashing -----------------------------------------------------------------

def string_hashes(seqs):
    """FNV-1a over 32-bit words of every sequence, vectorised over sequences."""
    n = len(seqs)
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
    width = int(lens.max()) if n else 0
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.uint64, count=int(lens.sum()))
    mat = np.zeros((n, width), dtype=np.uint64)
    mask = np.arange(width)[None, :] < lens[:, None]
    mat[mask] = flat
    h = np.full(n, FNV_BASIS, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME)
    for j in range(width):
        act = mask[:, j]
        h[act] = (h[act] ^ mat[act, j]) * prime
    return h


def combine(hashes):
    h = FNV_BASIS
    for x in hashes.tolist():
        h = ((h ^ x) * FNV_PRIME) & MASK64
    return h


def byte_offsets(text, offsets):
    """HF character offsets -> UTF-8 byte offsets."""
    if text.isascii():
        return [v for se in offsets for v in se]
    pos = [0]
    for ch in text:
        pos.append(pos[-1] + len(ch.encode("utf-8")))
    return [pos[v] for se in offsets for v in se]


def encode_all(tok, texts, add_special=False):
    encs = tok.encode_batch(texts, add_special_tokens=add_special)
    ids = [e.ids for e in encs]
    offs = [byte_offsets(t, e.offsets) for t, e in zip(texts, encs)]
    return ids, offs


# ---- the hard corpus ---------------------------------------------------------

def hard_corpus():
    c = [
        "", " ", "  ", "   ", "    x", "x    ", " x ", "\t", "\t\tx", "\n", "\n\n", "\n\n\n",
        "\r\n", "\r\n\r\n", " \n ", "a\n\n\nb", "a \n b", "a  \n\n  b", "\n \n  \n   ", "x" + " " * 33 + "y",
        " " * 17, "\n" * 9 + "z", "tab\there", "mixed \t\n\r\x0b\x0c ws",
        "Hello world", "Hello, world!", "HELLO WORLD", "hello   world", "  leading", "trailing  ",
        "I'm", "you'RE", "it's", "They'LL", "we'd", "'s", "''s", "can't", "DON'T", "I'M HERE", "o'clock", "rock 'n' roll",
        "'ſ", "I'ſ x", "1", "12", "123", "1234", "12345", "123456789012345678901234567890", "3.14159", "1,000,000",
        "-42", "+7", "1e10", "0x1F", "2024-01-31", "10:30pm", "١٢٣٤", "²³", "½ cup", "Ⅻ", "۱۲۳", "𝟘𝟙𝟚", "a1b2c3",
        "x  1", "x   12  345", " 1990s", "abc123def", "Room 101, floor 3",
        "héllo", "naïve café", "Ωmega ωmega", "Привет, мир!", "中文字符测试", "日本語のテキストです。", "한국어 텍스트",
        "العربية النص", "עברית טקסט", "हिन्दी पाठ", "ไทย ภาษา", "Ελληνικά", "Tiếng Việt có dấu", "ǅemal ǈ", "straße STRASSE",
        "e\u0301 combining", "Z\u0324\u0354\u0367\u0311\u0313a\u0356\u032d\u0308\u0307lgo", "\u200b zero\u200bwidth", "\ufeffBOM",
        "nel\u0085x", "ls\u2028ps\u2029", "nbsp\u00a0x", "ideo\u3000space", "mongol\u180ex", "private\ue000use", "\uffff",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀀𠀁 ext-b", "😀", "😀😃😄", "👨\u200d👩\u200d👧\u200d👦 family", "🇫🇷🇩🇪", "👍🏽 ok", "emoji😀in😀text",
        " 🎉", "🎉 ", "a😀", "\x00", "nul\x00inside", "\x01\x02\x03", "\x7f del", "\x1b[31mred\x1b[0m",
        "<s>", "</s>", "<unk>", "a<s>b", "<s><s>", " <s> ", "<<s>>", "<s", "s>", "<|begin_of_text|>", "<|eot_id|>Hi",
        "<|begin_of_text|><|end_of_text|>", "<|begin_of_text", "<|reserved_special_token_250|>", "x<|start_header_id|>user<|end_header_id|>\n\nhi",
        "<|im_start|>user\nHi<|im_end|>\n", "<|endoftext|>", "<|im_start", " <|im_end|> ", "<repo_name>x<file_sep>",
        "def f(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
        '{"a": [1, 2, {"b": null}]}', "https://example.com/path?q=1&r=two#frag", "~/path/to/file.txt", "C++ and C#",
        "e.g. U.S.A. etc...", "!!!???", "—–-", "“quotes” ‘single’ «guillemets»", "$100 €50 £3 ¥9", "100% #tag @user",
        "a" * 300, "ab" * 150, "The quick brown fox jumps over the lazy dog. " * 4,
        "%s is a city in the country of", "[{\"city\": \"%s\", \"country\": \"",
        "Suad Liçi (born 24 March 1974 in Shkoder) is an Albanian football midfielder who last played for",
        "Peter Grünberg won the Nobel Prize in", "/əˈbændən/", "Ærøskøbing is in", "São Paulo", "Zürich", "Kraków",
    ]
    return c


def class_corpus():
    """Strings whose pieces depend on which characters a class holds.

    Whitespace: HF's regexes run on Oniguruma, whose \\s is the Unicode
    White_Space property; PCRE2's \\s under UCP also takes U+180E (which
    lost White_Space in Unicode 6.3).  Every code point some engine or
    version might class differently is put after runs of spaces, between
    words and before newlines.

    Digits: HF's Digits pre-tokenizer is Rust's char::is_numeric (Unicode
    15 in tokenizers 0.20.3), its regexes use Oniguruma's tables (Unicode
    14, like PCRE2 10.42's): the Unicode 15 digits and numerals (Kawi,
    Kaktovik, Nag Mundari) are split off by the one and not by the other.
    A few Unicode 16 digits, which neither knows, are included too."""
    spaces = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x180E,
              0x2000, 0x2007, 0x200A, 0x200B, 0x200C, 0x200D, 0x2028, 0x2029, 0x202F, 0x205F, 0x2060,
              0x3000, 0xFEFF]
    out = ["420    \u180ewith"]
    for cp in spaces:
        c = chr(cp)
        out += [f"a  {c}b", f"a {c} b", f"x{c}{c}", f"{c}  y", f"1 {c}\n2", f"word{c}", f"420    {c}with"]
    unicode15 = [*range(0x11F50, 0x11F5A), *range(0x1D2C0, 0x1D2D4), *range(0x1E4F0, 0x1E4FA)]
    for cp in unicode15:
        d = chr(cp)
        out += [f"x{d}{d}{d}{d} y", f"1{d}2"]
    out += ["Kawi \U00011F50\U00011F51\U00011F52\U00011F53 and 1234", " \U0001E4F1\U0001E4F2\U0001E4F3",
            "a\U0001D2C5b\U0001D2D3", "12\U00011F53\U00011F5434"]
    for cp in (0x10D40, 0x11BF0, 0x116D0, 0x16D70, 0x1CCF0, 0x1E5F1):
        out.append(f"x{chr(cp)}{chr(cp)}{chr(cp)} 5")
    return out


def class_tokenizers():
    """Two byte-level BPEs trained on the class corpus with no split at all,
    so that their merges cross every boundary HF's pre-tokenizers draw (a
    run of spaces, a space and what follows, a run of digits): a piece cut
    anywhere else then gives other ids, where the real vocabularies often
    give the same ones.  They are then given SmolLM2's pre-tokenizer (digits
    split off one by one, GPT-2 regex) and Llama 3's (its regex,
    ignore_merges) and saved as tiny_classes_smollm.json and
    tiny_classes_llama3.json."""
    pres = {
        "tiny_classes_smollm": ({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}, False),
        "tiny_classes_llama3": ({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, True),
    }
    out = []
    for name, (pre, ignore_merges) in pres.items():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tok.train_from_iterator(class_corpus() * 4, trainers.BpeTrainer(
            vocab_size=700, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        j = json.loads(tok.to_str())
        j["pre_tokenizer"] = pre
        j["model"]["ignore_merges"] = ignore_merges
        j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
        tok = Tokenizer.from_str(json.dumps(j))
        tok.save(os.path.join(OUT, name + ".json"))
        out.append((name, Tokenizer.from_file(os.path.join(OUT, name + ".json"))))
    return out


def write_classes(named):
    """classes.json: the class corpus encoded by the class tokenizers and
    every tokenizer in named [(name, Tokenizer)]; entries of tokenizers not
    in named are kept from the existing file when its strings are the same."""
    strings = class_corpus()
    named = class_tokenizers() + list(named)
    path = os.path.join(OUT, "classes.json")
    old = {}
    if os.path.exists(path):
        prev = json.load(open(path, encoding="utf-8"))
        if prev.get("strings") == strings:
            old = prev["tokenizers"]
    for name, tok in named:
        ids, offs = encode_all(tok, strings)
        old[name] = [{"ids": i, "offsets": o} for i, o in zip(ids, offs)]
    import tokenizers
    dump(path, {"tokenizers_version": tokenizers.__version__, "strings": strings,
                "tokenizers": dict(sorted(old.items()))})
    print(f"  classes.json: {len(strings)} strings, tokenizers {', '.join(sorted(old))}")


def sample_prompts(layout, n_ravel=70, n_wiki=30):
    rng = random.Random(20240611)
    ravel, wiki = [], []
    for d, entities, templates, wikis, groups in layout:
        for kind, t, strings in groups:
            (ravel if kind == "ravel" else wiki).append(strings)
    out = []
    for pool, n in ((ravel, n_ravel), (wiki, n_wiki)):
        for _ in range(n):
            strings = pool[rng.randrange(len(pool))]
            out.append(strings[rng.randrange(len(strings))])
    return out


# ---- tokenizers --------------------------------------------------------------

def smollm2_tokenizer():
    """Returns (patched, as_transformers_builds_it) or (None, None)."""
    path = os.path.join(MODELS, GGUF)
    if not os.path.exists(path):
        return None, None
    try:
        import torch  # noqa: F401
    except ImportError:
        # Only the tokenizer is read (return_tensors=False): transformers'
        # torch check guards the tensors, which are never touched here, so
        # `classes` runs in a venv with tokenizers, transformers and gguf.
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
        gguf_utils.is_torch_available = lambda: True
    from transformers import AutoTokenizer
    t = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF)
    raw = t.backend_tokenizer
    j = json.loads(raw.to_str())
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    j["post_processor"] = None
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    text = json.dumps(j, ensure_ascii=False)
    with open(os.path.join(MODELS, "SmolLM2-135M-Instruct.tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
    return Tokenizer.from_str(text), Tokenizer.from_str(raw.to_str())


def real_tokenizers():
    out = []
    for name in ["llama2", "llama3", "llama3.1"]:
        path = os.path.join(SHARED, name, "tokenizer.json")
        if not os.path.exists(path):
            sys.exit(f"gen_tokenizer_fixtures: {path} is missing (needs ../shared/tokenizers)")
        cfg = json.load(open(os.path.join(SHARED, name, "tokenizer_config.json"), encoding="utf-8"))
        tok = Tokenizer.from_file(path)
        info = {"tokenizer": f"{name}/tokenizer.json", "config": f"{name}/tokenizer_config.json",
                "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                "bos_id": tok.token_to_id(cfg["bos_token"]), "eos_id": tok.token_to_id(cfg["eos_token"])}
        out.append((name, tok, info))
    smol, smol_raw = smollm2_tokenizer()
    if smol is None:
        print("gen_tokenizer_fixtures: models/%s missing (make model): SmolLM2 fixtures not written" % GGUF)
    else:
        info = {"gguf": GGUF, "bos_id": 1, "eos_id": 2, "transformers_unpatched": smol_raw}
        out.append(("smollm2", smol, info))
    return out


# ---- tiny tokenizers trained here --------------------------------------------

def training_text(layout):
    rng = random.Random(7)
    lines = []
    for d, entities, templates, wikis, groups in layout:
        for t in templates:
            lines.append(fill(t, rng.choice(entities)))
        for w, own in wikis[:200]:
            lines.append(fill(w, own or rng.choice(entities)))
    return lines


def tiny_tokenizers(layout):
    lines = training_text(layout)
    out = {}
    # Byte-level with SmolLM2's digit split, BOS template.
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=420, special_tokens=specials, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<|im_start|> $A", special_tokens=[("<|im_start|>", 1)])
    out["tiny_bytelevel"] = tok
    # Llama 3 style: Split regex + ByteLevel without regex, ignore_merges.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=420, special_tokens=["<|begin_of_text|>", "<|eot_id|>"],
                                                       show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(j))
    tok.decoder = decoders.ByteLevel()
    out["tiny_llama3"] = tok
    # SentencePiece style: <unk> <s> </s> <0x00>..<0xFF>, Prepend/Replace
    # normalizer, byte fallback, no pre-tokenizer (trained with a Metaspace
    # split so that no merge crosses a U+2581, as in Llama 2).
    byte_tokens = ["<0x%02X>" % b for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    # Trained on the ASCII letters and spaces only (BpeTrainer's
    # limit_alphabet breaks frequency ties at random), so that everything
    # else in the corpus goes through byte fallback.
    ascii_lines = ["".join(ch for ch in line if ch.isascii() and (ch.isalpha() or ch == " ")) for line in lines]
    tok.train_from_iterator(ascii_lines, trainers.BpeTrainer(vocab_size=420, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
                                                             show_progress=False))
    j = json.loads(tok.to_str())
    j["pre_tokenizer"] = None
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] in ("<unk>", "<s>", "</s>")]
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tok = Tokenizer.from_str(json.dumps(j))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    out["tiny_spm"] = tok
    return out


def llama2_from_scores():
    """HF's tokenizer for the Llama 2 vocabulary with scores -id and no merges,
    built by transformers' GGUF converter (the tokenizer_from_arrays path)."""
    from transformers.integrations.ggml import GGUFLlamaConverter
    j = json.load(open(os.path.join(SHARED, "llama2", "tokenizer.json"), encoding="utf-8"))
    vocab = j["model"]["vocab"]
    tokens = [None] * len(vocab)
    for k, i in vocab.items():
        tokens[i] = k
    types = [2 if t == "<unk>" else 3 if t in ("<s>", "</s>") else 6 if t.startswith("<0x") and len(t) == 6 else 1
             for t in tokens]
    class TokenList(list):
        """transformers tests `piece in tokens` on a list (32000 x 32000
        comparisons); same answers, from a set."""
        def __init__(self, items):
            super().__init__(items)
            self._set = set(items)

        def __contains__(self, item):
            return item in self._set

    tokens = TokenList(tokens)
    conv = GGUFLlamaConverter({"tokens": tokens, "scores": [-float(i) for i in range(len(tokens))],
                               "token_type": types, "unk_token_id": 0, "bos_token_id": 1, "eos_token_id": 2})
    tok = conv.converted()
    # llama.cpp (and tokenizer_from_arrays) also match the unknown token in text.
    tok.add_special_tokens([AddedToken("<unk>", normalized=False, special=True)])
    return tok


# ---- writing -----------------------------------------------------------------

def dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def corpus_expectations(tok, corpus, vocab_ids, rng, full=True):
    ids, offs = encode_all(tok, corpus)
    res = {"encode": [{"ids": i, "offsets": o} for i, o in zip(ids, offs)]}
    if not full:
        return res
    sp_ids = [e.ids for e in tok.encode_batch(corpus, add_special_tokens=True)]
    res["special_ids"] = sp_ids[:24]
    res["decode"] = [[tok.decode(i, skip_special_tokens=False), tok.decode(i, skip_special_tokens=True)] for i in sp_ids]
    randoms = []
    for k in range(40):
        seq = [rng.choice(vocab_ids) for _ in range(rng.randint(1, 10))]
        randoms.append({"ids": seq, "keep": tok.decode(seq, skip_special_tokens=False),
                        "skip": tok.decode(seq, skip_special_tokens=True)})
    res["decode_random"] = randoms
    res["tokens"] = [[i, tok.id_to_token(i)] for i in sorted(rng.sample(vocab_ids, 80))]
    return res


def sweep(tok, layout, name, raw=None):
    """Fingerprints of every group; returns (bytes, domain info, counts)."""
    blob = bytearray()
    info = []
    total = 0
    differ = checked = 0
    for d, entities, templates, wikis, groups in layout:
        n_ravel = n_wiki = 0
        for kind, t, strings in groups:
            ids, offs = encode_all(tok, strings)
            hi = combine(string_hashes([[len(x)] + x for x in ids]))
            ho = combine(string_hashes([[len(x) // 2] + x for x in offs]))
            blob += hi.to_bytes(8, "little") + ho.to_bytes(8, "little")
            if kind == "ravel":
                n_ravel += len(strings)
            else:
                n_wiki += len(strings)
            if raw is not None:
                digits = [k for k, s in enumerate(strings) if any(c.isnumeric() for c in s)]
                if digits:
                    rids = raw.encode_batch([strings[k] for k in digits], add_special_tokens=False)
                    differ += sum(1 for k, e in zip(digits, rids) if e.ids != ids[k])
                    checked += len(digits)
        info.append({"domain": d, "entities": len(entities), "templates": len(templates), "wiki_templates": len(wikis),
                     "ravel_strings": n_ravel, "wiki_strings": n_wiki})
        total += n_ravel + n_wiki
    if raw is not None:
        print(f"  {name}: transformers' unpatched GGUF tokenizer differs on {differ} of {checked} "
              f"sweep strings that contain a digit (the others cannot differ)")
    return bytes(blob), info, total, differ


def main():
    """Usage: gen_tokenizer_fixtures.py [all|tiny|classes]; "tiny" redoes
    only the files that need neither ../shared/tokenizers nor the model
    (seconds, against about 13 minutes for everything on two cores);
    "classes" only classes.json, from the committed tiny tokenizers, the
    real ones and SmolLM2 (seconds)."""
    only_tiny = len(sys.argv) > 1 and sys.argv[1] == "tiny"
    os.makedirs(OUT, exist_ok=True)
    tiny_names = ["tiny_bytelevel", "tiny_llama3", "tiny_spm"]
    if len(sys.argv) > 1 and sys.argv[1] == "classes":
        named = [(n, Tokenizer.from_file(os.path.join(OUT, n + ".json"))) for n in tiny_names]
        named += [(name, tok) for name, tok, info in real_tokenizers()]
        write_classes(named)
        return
    layout = sweep_layout()
    corpus = hard_corpus()
    samples = sample_prompts(layout)
    dump(os.path.join(OUT, "corpus.json"), {"hard": corpus, "sample": samples,
                                            "wiki_sample": WIKI_SAMPLE, "domains": DOMAINS})
    all_strings = corpus + samples

    for name, tok in tiny_tokenizers(layout).items():
        tok.save(os.path.join(OUT, name + ".json"))
        vocab_ids = list(range(tok.get_vocab_size(with_added_tokens=True)))
        exp = corpus_expectations(tok, corpus, vocab_ids, random.Random(name), full=True)
        exp.update({"vocab_size": tok.get_vocab_size(with_added_tokens=True)})
        dump(os.path.join(OUT, name + ".expect.json"), exp)

    # read back from the files the C test loads
    tiny_loaded = [(n, Tokenizer.from_file(os.path.join(OUT, n + ".json"))) for n in tiny_names]
    if only_tiny:
        write_classes(tiny_loaded)
        return
    tok = llama2_from_scores()
    ids, offs = encode_all(tok, corpus)
    dump(os.path.join(OUT, "llama2_scores.json"), {"encode": [{"ids": i, "offsets": o} for i, o in zip(ids, offs)]})

    reals = real_tokenizers()
    write_classes(tiny_loaded + [(name, tok) for name, tok, info in reals])
    for name, tok, info in reals:
        t0 = time.time()
        raw = info.pop("transformers_unpatched", None)
        vocab_ids = list(range(tok.get_vocab_size(with_added_tokens=True)))
        exp = corpus_expectations(tok, all_strings, vocab_ids, random.Random(name))
        blob, dom, total, differ = sweep(tok, layout, name, raw)
        with open(os.path.join(OUT, name + ".fnv"), "wb") as f:
            f.write(blob)
        exp.update(info)
        exp.update({"name": name, "vocab_size": tok.get_vocab_size(with_added_tokens=True),
                    "sweep": {"file": name + ".fnv", "domains": dom, "strings": total},
                    "strings_compared": total + len(all_strings)})
        if raw is not None:
            exp["transformers_gguf_digit_differences"] = differ
        dump(os.path.join(OUT, name + ".json"), exp)
        print(f"  {name}: {total} sweep strings + {len(all_strings)} corpus strings, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
