"""Writes tests/fixtures/records/python.msgpack: a stream produced with the
stock `msgpack` and `numpy` packages only (hyperdas-records(5) promises that Python
reads and writes the format without our code), plus python.expected.json
with what the C reader must find in it.  Deterministic: fixed seed, fixed
timestamp."""
import json
import os
import zlib

import msgpack
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "records")


def tensor(a, dtype_name, codec=None):
    if dtype_name == "bf16":
        bits = a.astype(np.float32).view(np.uint32)
        # round to nearest even, as torch does when casting to bfloat16
        bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
        raw = bits.tobytes()
    else:
        np_dtype = {"f32": "<f4", "f16": "<f2", "i32": "<i4", "i64": "<i8", "u8": "u1"}[dtype_name]
        raw = a.astype(np_dtype).tobytes()
    t = {"dtype": dtype_name, "shape": list(a.shape)}
    if codec == "zlib":
        t["codec"] = "zlib"
        t["nbytes"] = len(raw)
        t["data"] = zlib.compress(raw)
    else:
        t["data"] = raw
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1234)
    header = {"t": "header", "format": "hyperdas", "version": 1, "kind": "acts",
              "tool": "python", "tool_version": "test", "argv": ["gen_records_fixture.py"],
              "created": "2026-01-01T00:00:00Z", "inputs": [], "x_unknown_header_key": [1, 2]}
    records = [header]
    expected = []
    for i, (dt, codec) in enumerate([("f32", None), ("bf16", None), ("f16", "zlib"),
                                     ("i32", None), ("i64", "zlib"), ("u8", None)]):
        shape = (2, 3) if i % 2 == 0 else (5,)
        if dt in ("i32", "i64"):
            a = rng.integers(-1000, 1000, size=shape)
        elif dt == "u8":
            a = rng.integers(0, 256, size=shape)
        else:
            a = rng.standard_normal(shape).astype(np.float32)
        t = tensor(a, dt, codec)
        # the values as the C side must decode them (after rounding to dtype)
        if dt == "bf16":
            bits = np.frombuffer(t["data"], "<u2").astype(np.uint32) << 16
            vals = bits.view(np.float32).astype(np.float64)
        elif dt == "f16":
            vals = a.astype("<f2").astype(np.float64)
        else:
            vals = a.astype(np.float64)
        rec = {"t": "acts", "id": f"py/{i}", "dtype_tested": dt, "tensor": t,
               "nested": {"unknown": [True, None, 1.5, "ü"]}}
        records.append(rec)
        expected.append({"id": f"py/{i}", "dtype": dt, "shape": list(shape),
                         "values": [float(v) for v in vals.ravel()]})
    records.append({"t": "mystery_type", "payload": b"\x00\x01\x02"})
    records.append({"t": "end", "count": len(records) - 1})
    with open(os.path.join(OUT, "python.msgpack"), "wb") as f:
        for r in records:
            f.write(msgpack.packb(r, use_bin_type=True))
    with open(os.path.join(OUT, "python.expected.json"), "w") as f:
        json.dump(expected, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
