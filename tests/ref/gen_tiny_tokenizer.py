"""Writes tests/fixtures/tiny-llama-f32/tokenizer.json: a byte-level BPE
tokenizer whose 256 tokens are the 256 bytes (id == byte value, no merges),
so that the tiny random model (vocab 256) can run the real tools end to end
in CI: ravel-pairs | hd-filter | cache-acts.  Built and saved by Hugging Face
`tokenizers` itself, so the file is in the library's own format.  The BOS
is the config's bos_token_id (1); the tokenizer adds no special tokens.
Run after gen_tiny_llama.py (make fixtures runs generators in name order)."""
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from tokenizers.pre_tokenizers import ByteLevel

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "tiny-llama-f32")


def main():
    alphabet = ByteLevel.alphabet()          # the 256 printable stand-ins of bytes
    # the GPT-2 byte -> unicode map, to give id == byte value
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_to_char = {b: chr(c) for b, c in zip(bs, cs)}
    assert sorted(byte_to_char.values()) == sorted(alphabet)
    vocab = {byte_to_char[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.save(os.path.join(OUT, "tokenizer.json"))
    ids = tok.encode("Paris is in France").ids
    assert ids == list(b"Paris is in France"), ids


if __name__ == "__main__":
    main()
