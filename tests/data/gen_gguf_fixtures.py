#!/usr/bin/env python3
"""Fixtures for tests/test_gguf.c, written with the `gguf` package (gguf-py,
llama.cpp's Python reader/writer) and NumPy; bad files with a small raw
serializer below, since gguf-py refuses to write them.

    /work/jaxenv/bin/python tests/data/gen_gguf_fixtures.py

Writes tests/data/gguf/:
  all_types.gguf     v3: every metadata value type, arrays of each, nested
                     arrays, and one tensor per ggml type ryft dequantizes
                     ("t.<TYPE>", 3 rows of 256) plus the f32 "input" they
                     were quantized from (the simple formats through
                     gguf.quants.quantize; the K-quants, which gguf-py cannot
                     quantize, are random blocks with finite scales), and a
                     4-d tensor.
  expect_dequant.gguf  "t.<TYPE>" = gguf.quants.dequantize of each tensor
                     above, as F32: ryft must match these bit for bit.
  v2.gguf            a version 2 file.
  align64.gguf       general.alignment 64 and tensors of odd sizes.
  writer_expected.gguf  what tests/test_gguf.c's writer test builds with the
                     C writer API, as gguf-py writes it: the C output must be
                     byte-identical.
  raw_edge.gguf      valid corner cases gguf-py cannot write: an empty array,
                     an empty string, no tensors and no padding.
  bad_*.gguf         malformed files; tests/test_gguf.c checks the error
                     message of each (and tests/fuzz/corpus/gguf/ seeds
                     from them).
  ../fuzz/corpus/gguf/seed_all_types.gguf  every value type and one block
                     of every tensor type, small: the fuzzer's richest seed.
  smollm2_golden.txt  with --smollm2 MODEL.gguf (tools/fetch-model.sh): gguf-py's
                     dequantization of a few tensors of the real model,
                     folded to 64 bits, for the gguf_smollm2 test.
With --check FILE it reads FILE back with gguf.GGUFReader and compares
every key/value and tensor with writer_expected.gguf (the script check of
the C writer; tests/test_gguf.c leaves its output in test_tmp/).
"""
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gguf")

SIMPLE = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
KQ = [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
# byte offsets of the f16 scales in each K-quant block (kept finite)
KQ_F16 = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def path(name):
    return os.path.join(OUT, name)


def quant_input(rng):
    """3 rows of 256: normal values at several scales, plus blocks that hit
    the corner cases of the quantizers (all zero, constant, exact halves,
    a single large value, tiny values whose scale is an f16 subnormal)."""
    x = (rng.standard_normal((3, 256)) * np.array([[0.02], [1.0], [30.0]])).astype(np.float32)
    x[0, 0:32] = 0.0
    x[0, 32:64] = 0.75
    x[0, 64:96] = np.arange(32, dtype=np.float32) * 0.5 - 8.0
    x[0, 96:128] = 0.0
    x[0, 100] = -1000.0
    x[1, 0:32] = rng.standard_normal(32).astype(np.float32) * 1e-6
    x[1, 32:64] = np.float32(-3.0)
    x[1, 35] = np.float32(3.0)  # |max| ties: the first one wins
    return x


def kquant_blocks(rng, t, rows):
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    nb = rows * 256 // bs
    raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    for off in KQ_F16[t]:
        d = (rng.standard_normal(nb) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(nb, 2)
    return raw.reshape(rows, -1)


def add_every_value(w):
    w.add_uint8("v.u8", 200)
    w.add_int8("v.i8", -100)
    w.add_uint16("v.u16", 60000)
    w.add_int16("v.i16", -30000)
    w.add_uint32("v.u32", 4000000000)
    w.add_int32("v.i32", -2000000000)
    w.add_float32("v.f32", 1.5)
    w.add_bool("v.bool", True)
    w.add_string("v.str", "h\u00e9llo \u2713")
    w.add_uint64("v.u64", 2**63 + 5)
    w.add_int64("v.i64", -(2**62))
    w.add_float64("v.f64", 3.141592653589793)
    w.add_key_value("a.u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("a.i8", [-1, 2, -128], V.ARRAY, sub_type=V.INT8)
    w.add_key_value("a.u16", [1, 65535], V.ARRAY, sub_type=V.UINT16)
    w.add_key_value("a.i16", [-32768, 7], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("a.u32", [0, 4294967295], V.ARRAY, sub_type=V.UINT32)
    w.add_key_value("a.i32", [-5, 6, -7], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("a.f32", [0.5, -2.25, 1e-3], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("a.bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    w.add_key_value("a.u64", [2**64 - 1, 3], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("a.i64", [-(2**63), 9], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("a.f64", [2.5, -1e300], V.ARRAY, sub_type=V.FLOAT64)
    w.add_key_value("a.str", ["a", "", "\u00fc", "tok en"], V.ARRAY, sub_type=V.STRING)
    w.add_key_value("a.nested", [[1, 2], [3], [4, 5, 6]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("a.nested_str", [["x", "yz"], ["w"]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("a.nested3", [[[7, 8]], [[9], [10, 11]]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("v.empty_str", "", V.STRING)


def write_all_types(rng):
    w = gguf.GGUFWriter(path("all_types.gguf"), "ryfttest")
    add_every_value(w)

    x = quant_input(rng)
    w.add_tensor("input", x)
    expect = {}
    for t in SIMPLE:
        q = gguf.quants.quantize(x, t)
        raw = q.view(np.uint8).reshape(3, -1)
        w.add_tensor(f"t.{t.name}", raw, raw_dtype=t)
        expect[t] = gguf.quants.dequantize(raw, t).astype(np.float32).reshape(3, 256)
    for t in KQ:
        raw = kquant_blocks(rng, t, 3)
        w.add_tensor(f"t.{t.name}", raw, raw_dtype=t)
        expect[t] = gguf.quants.dequantize(raw, t).astype(np.float32).reshape(3, 256)
    w.add_tensor("t.4d", np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    e = gguf.GGUFWriter(path("expect_dequant.gguf"), "ryfttest")
    for t, v in expect.items():
        e.add_tensor(f"t.{t.name}", v)
    e.write_header_to_file()
    e.write_kv_data_to_file()
    e.write_tensors_to_file()
    e.close()


def write_fuzz_seed(rng):
    """tests/fuzz/corpus/gguf/seed_all_types.gguf: every value type and one
    block of every tensor type ryft dequantizes, small enough to mutate."""
    w = gguf.GGUFWriter(os.path.join(HERE, "..", "fuzz", "corpus", "gguf", "seed_all_types.gguf"), "ryfttest")
    add_every_value(w)
    for t in SIMPLE + KQ:
        bs, ts = gguf.GGML_QUANT_SIZES[t]
        n = 256 if t in KQ else 32
        raw = rng.integers(0, 256, size=(1, n // bs * ts), dtype=np.uint8)
        w.add_tensor(f"t.{t.name}", raw, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_small(name, alignment=None, version=3):
    w = gguf.GGUFWriter(path(name), "ryfttest")
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_uint32("small.n", 7)
    w.add_string("small.s", "abc")
    w.add_tensor("a", np.array([1.0, 2.0, 3.0], dtype=np.float32))
    w.add_tensor("b", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float16))
    w.add_tensor("c", np.array([9.0], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if version != 3:
        with open(path(name), "r+b") as f:
            f.seek(4)
            f.write(struct.pack("<I", version))


def write_writer_expected():
    """Must match test_gguf.c's gguf_writer_matches_gguf_py exactly."""
    w = gguf.GGUFWriter(path("writer_expected.gguf"), "ryfttest")
    w.add_uint32("w.u32", 123456)
    w.add_int32("w.i32", -42)
    w.add_float32("w.f32", 0.25)
    w.add_bool("w.bool", False)
    w.add_string("w.str", "ryft")
    w.add_float64("w.f64", -1.5)
    w.add_uint64("w.u64", 2**40)
    w.add_int64("w.i64", -(2**40))
    w.add_uint8("w.u8", 9)
    w.add_int16("w.i16", -300)
    w.add_key_value("w.af32", [1.0, 2.0, 3.5], V.ARRAY, sub_type=V.FLOAT32)
    w.add_key_value("w.ai32", [-1, 0, 1], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("w.astr", ["<s>", "</s>", "hello"], V.ARRAY, sub_type=V.STRING)
    w.add_tensor("w.f32", np.arange(6, dtype=np.float32).reshape(2, 3))
    blk = gguf.quants.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), T.Q8_0)
    w.add_tensor("w.q8", blk, raw_dtype=T.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- a raw serializer for the files gguf-py will not write ----

def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def ti(name, dims, ttype, offset):
    return s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + \
        struct.pack("<IQ", ttype, offset)


def gguf_file(kvs, tis, data=b"", version=3, align=32, magic=b"GGUF", n_kv=None, n_t=None, pad=True):
    head = magic + struct.pack("<I", version) + struct.pack("<QQ", len(tis) if n_t is None else n_t,
                                                            len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tis)
    if pad:
        body += b"\0" * ((align - len(body) % align) % align)
    return body + data


def u32(v):
    return struct.pack("<I", v)


def f32_tensor_file(dims=(4,), offset=0, data=None, ttype=0):
    if data is None:
        data = b"\0" * 16
    return gguf_file([kv("general.architecture", V.STRING, s("x"))], [ti("w", list(dims), ttype, offset)], data)


def write_raw():
    files = {}
    files["raw_edge.gguf"] = gguf_file(
        [kv("e.arr", V.ARRAY, u32(V.INT32) + struct.pack("<Q", 0)), kv("e.str", V.STRING, s(""))], [], pad=False)
    ok = f32_tensor_file()
    files["bad_magic.gguf"] = b"GGUX" + ok[4:]
    files["bad_version1.gguf"] = ok[:4] + u32(1) + ok[8:]
    files["bad_version9.gguf"] = ok[:4] + u32(9) + ok[8:]
    files["bad_bigendian.gguf"] = ok[:4] + struct.pack(">I", 3) + ok[8:]
    for cut in (3, 10, 20, 30, 60, len(ok) - 40, len(ok) - 1):
        files[f"bad_trunc_{cut}.gguf"] = ok[:cut]
    files["bad_dup_key.gguf"] = gguf_file([kv("k", V.UINT8, b"\1"), kv("j", V.UINT8, b"\2"), kv("k", V.UINT8, b"\3")], [])
    files["bad_dup_tensor.gguf"] = gguf_file([], [ti("w", [4], 0, 0), ti("w", [4], 0, 32)], b"\0" * 64)
    files["bad_offset_past_end.gguf"] = f32_tensor_file(offset=1 << 20)
    files["bad_size_past_end.gguf"] = f32_tensor_file(dims=(4, 2))
    files["bad_misaligned.gguf"] = f32_tensor_file(offset=4, data=b"\0" * 32)
    files["bad_overflow.gguf"] = f32_tensor_file(dims=(1 << 40, 1 << 40))
    files["bad_dim_too_large.gguf"] = f32_tensor_file(dims=(1 << 63,))
    files["bad_vtype.gguf"] = gguf_file([kv("k", 13, b"\0" * 8)], [])
    files["bad_elem_type.gguf"] = gguf_file([kv("k", V.ARRAY, u32(77) + struct.pack("<Q", 1) + b"\0" * 8)], [])
    files["bad_ggml_type.gguf"] = f32_tensor_file(ttype=4)
    files["bad_ggml_type99.gguf"] = f32_tensor_file(ttype=99)
    files["bad_str_len.gguf"] = gguf_file([kv("k", V.STRING, struct.pack("<Q", 1 << 62) + b"abc")], [])
    files["bad_key_len.gguf"] = b"GGUF" + u32(3) + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 2**64 - 1) + b"k" * 20
    files["bad_arr_count.gguf"] = gguf_file([kv("k", V.ARRAY, u32(V.UINT32) + struct.pack("<Q", 1 << 60) + b"\0" * 8)], [])
    files["bad_kv_count.gguf"] = gguf_file([kv("k", V.UINT8, b"\1")], [], n_kv=1 << 40)
    files["bad_tensor_count.gguf"] = gguf_file([], [ti("w", [4], 0, 0)], b"\0" * 16, n_t=1 << 40)
    files["bad_alignment.gguf"] = gguf_file([kv("general.alignment", V.UINT32, u32(48))], [])
    files["bad_alignment_type.gguf"] = gguf_file([kv("general.alignment", V.STRING, s("32"))], [])
    files["bad_bool.gguf"] = gguf_file([kv("k", V.BOOL, b"\2")], [])
    files["bad_ndims.gguf"] = gguf_file([], [ti("w", [1, 1, 1, 1, 4], 0, 0)], b"\0" * 16)
    files["bad_block.gguf"] = f32_tensor_file(dims=(16,), ttype=int(T.Q4_0))
    files["bad_overlap.gguf"] = gguf_file([], [ti("a", [16], 0, 0), ti("b", [4], 0, 32)], b"\0" * 64)
    files["bad_empty_key.gguf"] = gguf_file([kv("", V.UINT8, b"\1")], [])
    files["bad_nul_name.gguf"] = gguf_file([], [ti("a\0b", [4], 0, 0)], b"\0" * 16)
    nest = u32(V.INT32) + struct.pack("<Q", 0)
    for _ in range(9):
        nest = u32(V.ARRAY) + struct.pack("<Q", 1) + nest
    files["bad_nest_depth.gguf"] = gguf_file([kv("deep", V.ARRAY, nest)], [])
    for name, data in files.items():
        with open(path(name), "wb") as f:
            f.write(data)


def check(written):
    """gguf-py reads the C writer's file back: same keys, types, values and
    tensors as writer_expected.gguf."""
    a = gguf.GGUFReader(path("writer_expected.gguf"))
    b = gguf.GGUFReader(written)
    assert list(a.fields) == list(b.fields), (list(a.fields), list(b.fields))
    for k in a.fields:
        fa, fb = a.fields[k], b.fields[k]
        assert fa.types == fb.types, k
        assert fa.contents() == fb.contents(), (k, fa.contents(), fb.contents())
    assert [t.name for t in a.tensors] == [t.name for t in b.tensors]
    for ta, tb in zip(a.tensors, b.tensors):
        assert ta.tensor_type == tb.tensor_type and list(ta.shape) == list(tb.shape), ta.name
        assert np.array_equal(np.asarray(ta.data).view(np.uint8), np.asarray(tb.data).view(np.uint8)), ta.name
    print(f"gguf-py reads {written} back as writer_expected.gguf: {len(a.fields)} keys, {len(a.tensors)} tensors")


SMOLLM2_TENSORS = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight",
                   "blk.0.attn_norm.weight", "output_norm.weight"]


def fold(y):
    """sum of bits[i] * (2i + 1) mod 2^64, as test_gguf.c's fold()"""
    bits = np.ascontiguousarray(y, dtype=np.float32).ravel().view(np.uint32).astype(np.uint64)
    w = np.arange(bits.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return int(np.sum(bits * w, dtype=np.uint64))


def smollm2_golden(model):
    """tests/data/gguf/smollm2_golden.txt: gguf-py's dequantization of a few
    tensors of the SmolLM2 GGUF (tools/fetch-model.sh), folded to 64 bits."""
    r = gguf.GGUFReader(model)
    by_name = {t.name: t for t in r.tensors}
    lines = ["# name elements fold(dequantized f32 bits) first last  (gen_gguf_fixtures.py --smollm2)"]
    for name in SMOLLM2_TENSORS:
        t = by_name[name]
        y = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).ravel()
        lines.append(f"{name} {y.size} {fold(y):x} {y[0]:.9g} {y[-1]:.9g}")
    with open(path("smollm2_golden.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--smollm2":
        smollm2_golden(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(13)
    write_all_types(rng)
    write_small("v2.gguf", version=2)
    write_small("align64.gguf", alignment=64)
    write_writer_expected()
    write_raw()
    write_fuzz_seed(rng)
    # gguf-py itself must read every valid file
    for name in ("all_types.gguf", "expect_dequant.gguf", "v2.gguf", "align64.gguf", "writer_expected.gguf",
                 "raw_edge.gguf"):
        r = gguf.GGUFReader(path(name))
        print(f"{name}: v{r.fields['GGUF.version'].contents()}, {len(r.fields)} fields, {len(r.tensors)} tensors")


if __name__ == "__main__":
    main()
