#!/usr/bin/env python3
"""Write hand-made seed inputs for the readers' fuzz targets into
tests/fuzz/corpus/{safetensors,npy,idx}/ (plain Python, no packages): valid
files of several dtypes and shapes, and files that are wrong in one way each,
so the fuzzer starts from the interesting edges. The other seeds are copies of
tests/data's fixtures. Run from anywhere; deterministic."""
import json, os, struct

here = os.path.dirname(os.path.abspath(__file__))

def put(kind, name, data):
    d = os.path.join(here, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def safetensors(tensors, meta=None, pad=True):
    header, blob = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob

put("safetensors", "scalar_f32.safetensors", safetensors({"x": ("F32", [], struct.pack("<f", 1.5))}))
put("safetensors", "multi_meta.safetensors", safetensors({
    "a/w": ("F32", [2, 3], struct.pack("<6f", *range(6))),
    "a/b": ("BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
    "c": ("I64", [2], struct.pack("<2q", -1, 7)),
    "d": ("U8", [0, 4], b""),
}, {"format": "ryft", "epoch": "3"}))
put("safetensors", "escapes.safetensors", safetensors({"a\"b\\u00e9/\\n": ("F16", [1], b"\x00\x3c")}))
put("safetensors", "bad_offsets.safetensors", safetensors({"x": ("F32", [2], struct.pack("<f", 1.0))}))
put("safetensors", "bad_dtype.safetensors", safetensors({"x": ("C64", [1], b"\0" * 8)}))
put("safetensors", "huge_header_len.safetensors", struct.pack("<Q", 1 << 62) + b"{}")

def npy(descr, shape, raw, version=1, fortran=False):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, repr(tuple(shape)))
    hl = 4 if version >= 2 else 2
    total = 6 + 2 + hl + len(d) + 1
    d += " " * (-total % 64) + "\n"
    ln = struct.pack("<I" if version >= 2 else "<H", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + ln + d.encode() + raw

put("npy", "seed_u4_big_shape.npy", npy("<u4", [1 << 40, 1 << 30], b""))
put("npy", "seed_f8_neg_shape.npy", npy("<f8", [-1], b""))
put("npy", "seed_v2_i4.npy", npy("<i4", [2], struct.pack("<2i", 3, -4), version=2))

def idx(typ, dims, raw):
    return bytes([0, 0, typ, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + raw

put("idx", "seed_huge_dims.idx", idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF], b""))
put("idx", "seed_rank0.idx", idx(0x0D, [], struct.pack(">f", 2.0)))
put("idx", "seed_bad_type.idx", idx(0x0A, [2], b"ab"))
