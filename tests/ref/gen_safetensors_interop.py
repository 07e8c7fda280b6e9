"""safetensors interoperability, both directions, with Python's safetensors 0.4.5.

1. Python -> C: writes tests/fixtures/safetensors/py_written.safetensors
   with every dtype the C reader converts and the awkward cases:
     f32   F32  [2, 3]  0, 1.5, -2, 3.25, 1e-3, -0.0
     f64   F64  [2]     1/3, -1e300
     f16   F16  [4]     1, -2.5, 65504, 6e-8 (subnormal: 5.96e-08)
     bf16  BF16 [3]     1, -3.140625, 1e38 (as bf16: 0x1.2cp+126 = 9.9692e37)
     i64   I64  [2]     -5, 1099511627776
     i32   I32  [2]     -7, 7
     u8    U8   [3]     0, 128, 255
     bool  BOOL [2]     True, False
     scalar F32 []      7.5
     empty  F32 [0, 4]
     "name with ünicode" F32 [1]  42
   metadata {"note": "written by safetensors 0.4.5"}.
   tests/test_safetensors.c reads it and checks every value.

2. C -> Python: tests/fixtures/safetensors/c_written.safetensors is written
   by hyperdas's own writer (tests/test_safetensors.c regenerates it when
   HD_UPDATE_FIXTURES=1 and otherwise checks its writer still produces it
   byte for byte).  Here we check Python's safetensors loads it and finds
     weights F32 [2, 3] 0.5, -1, 2, 3.25, 0.001, -0.0
     bias    F32 [3]    1, 2, 3
     scalar  F32 []     -4.5
     empty   F32 [0]
     ids     I64 [2]    7, -9
   metadata {"kind": "hypernetwork", "step": "42"}.
"""
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DIR = os.path.join(ROOT, "tests", "fixtures", "safetensors")


def write_py_fixture():
    t = {
        "f32": torch.tensor([[0, 1.5, -2], [3.25, 1e-3, -0.0]], dtype=torch.float32),
        "f64": torch.tensor([1 / 3, -1e300], dtype=torch.float64),
        "f16": torch.tensor([1, -2.5, 65504, 6e-8], dtype=torch.float16),
        "bf16": torch.tensor([1, -3.140625, 1e38], dtype=torch.bfloat16),
        "i64": torch.tensor([-5, 1 << 40], dtype=torch.int64),
        "i32": torch.tensor([-7, 7], dtype=torch.int32),
        "u8": torch.tensor([0, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(7.5, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "name with ünicode": torch.tensor([42.0]),
    }
    os.makedirs(DIR, exist_ok=True)
    path = os.path.join(DIR, "py_written.safetensors")
    # one metadata key: with two, safetensors' HashMap would order them
    # differently on every run and the fixture would never be reproducible
    save_file(t, path, metadata={"note": "written by safetensors 0.4.5"})
    print(f"gen_safetensors_interop: wrote {path}")


def check_c_fixture():
    path = os.path.join(DIR, "c_written.safetensors")
    if not os.path.exists(path):
        print(f"gen_safetensors_interop: {path} absent; run "
              "HD_UPDATE_FIXTURES=1 bin/tests/test_safetensors, then this again")
        return
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    assert n % 8 == 0, "header length is not padded to 8"
    with safe_open(path, "np") as f:
        assert f.metadata() == {"kind": "hypernetwork", "step": "42"}, f.metadata()
        got = {k: f.get_tensor(k) for k in f.keys()}
    want = {
        "weights": np.array([[0.5, -1, 2], [3.25, 0.001, -0.0]], dtype=np.float32),
        "bias": np.array([1, 2, 3], dtype=np.float32),
        "scalar": np.array(-4.5, dtype=np.float32),
        "empty": np.zeros(0, dtype=np.float32),
        "ids": np.array([7, -9], dtype=np.int64),
    }
    assert sorted(got) == sorted(want), sorted(got)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, (k, got[k].dtype, got[k].shape)
        assert got[k].tobytes() == v.tobytes(), (k, got[k], v)
    print(f"gen_safetensors_interop: {path} loads in Python safetensors with the expected values")


def main():
    write_py_fixture()
    try:
        check_c_fixture()
    except AssertionError as e:
        sys.exit(f"gen_safetensors_interop: c_written.safetensors is wrong: {e}")


if __name__ == "__main__":
    main()
