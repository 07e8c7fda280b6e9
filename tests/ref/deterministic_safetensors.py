"""Byte-reproducible safetensors files for committed fixtures.

safetensors (Rust) keeps __metadata__ in a HashMap, so a file with two or
more metadata keys comes out with a different header order on every run
and `make fixtures` would rewrite unchanged fixtures.  save() writes with
safetensors, then rewrites the header JSON with sorted keys (still padded
with spaces to a multiple of 8); the data buffer and offsets are untouched.
"""
import json

from safetensors.torch import save_file


def canonicalize(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data[8 + n:])


def save(tensors, path, metadata=None):
    """safetensors.torch.save_file, then canonicalize."""
    save_file(tensors, path, metadata=metadata)
    canonicalize(path)
