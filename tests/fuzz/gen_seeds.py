#!/usr/bin/env python3
"""Write hand-made seed inputs for the readers' fuzz targets into
tests/fuzz/corpus/{safetensors,npy,idx,stablehlo,tune}/ (plain Python, no
packages): valid files of several dtypes and shapes, and files that are wrong
in one way each, so the fuzzer starts from the interesting edges. The other seeds are copies of
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

# StableHLO importer: the JAX-lowered corpus (tests/data/stablehlo) and small
# modules in both op syntaxes, each with one thing wrong or unusual
shlo_dir = os.path.join(here, "..", "data", "stablehlo")
for fn in sorted(os.listdir(shlo_dir)):
    if fn.endswith(".mlir"):
        with open(os.path.join(shlo_dir, fn), "rb") as f:
            put("stablehlo", fn, f.read())
SHLO = {
    "add_pretty.mlir": "func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.add %a, %a : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
    "add_generic.mlir": "func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = \"stablehlo.add\"(%a, %a) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>\n  \"func.return\"(%0) : (tensor<2xf32>) -> ()\n}\n",
    "consts.mlir": "func.func @main() -> (tensor<2x2xbf16>, tensor<3xi1>, tensor<2xi8>) {\n  %0 = stablehlo.constant dense<[[0x7F80, 1.5], [-0.0, 2.0]]> : tensor<2x2xbf16>\n  %1 = stablehlo.constant dense<[true, false, true]> : tensor<3xi1>\n  %2 = stablehlo.constant dense<\"0x01FF\"> : tensor<2xi8>\n  return %0, %1, %2 : tensor<2x2xbf16>, tensor<3xi1>, tensor<2xi8>\n}\n",
    "while_pretty.mlir": "func.func @main(%x: tensor<f32>) -> tensor<f32> {\n  %c = stablehlo.constant dense<0> : tensor<i32>\n  %0:2 = stablehlo.while(%i = %c, %a = %x) : tensor<i32>, tensor<f32>\n  cond {\n    %n = stablehlo.constant dense<4> : tensor<i32>\n    %p = stablehlo.compare LT, %i, %n, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>\n    stablehlo.return %p : tensor<i1>\n  } do {\n    %one = stablehlo.constant dense<1> : tensor<i32>\n    %j = stablehlo.add %i, %one : tensor<i32>\n    %b = stablehlo.multiply %a, %a : tensor<f32>\n    stablehlo.return %j, %b : tensor<i32>, tensor<f32>\n  }\n  return %0#1 : tensor<f32>\n}\n",
    "case.mlir": "func.func @main(%i: tensor<i32>) -> tensor<f32> {\n  %r = \"stablehlo.case\"(%i) ({\n    %a = stablehlo.constant dense<1.0> : tensor<f32>\n    stablehlo.return %a : tensor<f32>\n  }, {\n    %b = stablehlo.constant dense<2.0> : tensor<f32>\n    stablehlo.return %b : tensor<f32>\n  }) : (tensor<i32>) -> tensor<f32>\n  return %r : tensor<f32>\n}\n",
    "reduce_generic.mlir": "func.func @main(%x: tensor<2x3xf32>) -> tensor<2xf32> {\n  %z = stablehlo.constant dense<0xFF800000> : tensor<f32>\n  %r = \"stablehlo.reduce\"(%x, %z) ({\n  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n    %m = stablehlo.maximum %a, %b : tensor<f32>\n    stablehlo.return %m : tensor<f32>\n  }) {dimensions = array<i64: 1>} : (tensor<2x3xf32>, tensor<f32>) -> tensor<2xf32>\n  return %r : tensor<2xf32>\n}\n",
    "conv_generic.mlir": "func.func @main(%x: tensor<1x1x4x4xf32>, %k: tensor<1x1x3x3xf32>) -> tensor<1x1x2x2xf32> {\n  %0 = \"stablehlo.convolution\"(%x, %k) {batch_group_count = 1 : i64, dimension_numbers = #stablehlo.conv<[b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1]>, feature_group_count = 1 : i64, padding = dense<0> : tensor<2x2xi64>, window_strides = array<i64: 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>) -> tensor<1x1x2x2xf32>\n  return %0 : tensor<1x1x2x2xf32>\n}\n",
    "bad_unterminated.mlir": "func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.add %a, %a : tensor<2xf32>\n",
    "bad_type.mlir": "func.func @main(%a: tensor<2xq32>) -> tensor<2xf32> {\n  return %a : tensor<2xf32>\n}\n",
    "bad_dense.mlir": "func.func @main() -> tensor<2xf32> {\n  %0 = stablehlo.constant dense<[1.0, [2.0]> : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
    "bad_recursion.mlir": "func.func @main(%a: tensor<f32>) -> tensor<f32> {\n  %0 = call @main(%a) : (tensor<f32>) -> tensor<f32>\n  return %0 : tensor<f32>\n}\n",
    "bad_nesting.mlir": "func.func @main() -> () {\n" + "  %0 = \"stablehlo.case\"(%i) ({\n" * 60 + "}\n",
    "sharded.mlir": "sdy.mesh @mesh = <[\"x\"=2, \"y\"=2]>\nfunc.func public @main(%a: tensor<4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{\"x\"}, {}]>}) -> (tensor<4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {\"y\"}]>}) {\n  %0 = sdy.sharding_constraint %a <@mesh, [{}, {\"y\"}]> : tensor<4x4xf32>\n  return %0 : tensor<4x4xf32>\n}\n",
    "gspmd.mlir": 'module @ryft {\n  func.func @main(%arg0: tensor<8x4xf32> {mhlo.sharding = "{devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}"}, %arg1: tensor<8x4xf32> {mhlo.sharding = "{devices=[1,4]0,1,2,3}"}) -> (tensor<8x4xf32> {mhlo.sharding = "{devices=[2,1]0,1}"}) {\n    %v3 = "stablehlo.custom_call"(%arg0) {call_target_name = "Sharding", mhlo.sharding = "{devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>\n    %v4 = "stablehlo.custom_call"(%arg1) {call_target_name = "Sharding", mhlo.sharding = "{devices=[1,4]0,1,2,3}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>\n    %v5 = "stablehlo.add"(%v3, %v4) : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>\n    %v6 = "stablehlo.custom_call"(%v5) {call_target_name = "Sharding", mhlo.sharding = "{devices=[2,2]0,1,2,3}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>\n    %v7 = "stablehlo.multiply"(%v6, %v6) : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>\n    %v8 = "stablehlo.custom_call"(%v7) {call_target_name = "Sharding", mhlo.sharding = "{devices=[2,1]0,1}"} : (tensor<8x4xf32>) -> tensor<8x4xf32>\n    "func.return"(%v8) : (tensor<8x4xf32>) -> ()\n  }\n}\n',
    "collectives.mlir": 'func.func @main(%x: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<8x2xf32>, tensor<2x2xf32>, tensor<4x2xf32>) {\n  %0 = "stablehlo.all_reduce"(%x) ({\n  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n    %s = stablehlo.add %a, %b : tensor<f32>\n    stablehlo.return %s : tensor<f32>\n  }) {replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>} : (tensor<4x2xf32>) -> tensor<4x2xf32>\n  %1 = "stablehlo.all_gather"(%x) {all_gather_dim = 0 : i64, replica_groups = dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>} : (tensor<4x2xf32>) -> tensor<8x2xf32>\n  %2 = "stablehlo.reduce_scatter"(%x) ({\n  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n    %m = stablehlo.maximum %a, %b : tensor<f32>\n    stablehlo.return %m : tensor<f32>\n  }) {replica_groups = dense<[[0, 1], [2, 3]]> : tensor<2x2xi64>, scatter_dimension = 0 : i64} : (tensor<4x2xf32>) -> tensor<2x2xf32>\n  %3 = "stablehlo.collective_broadcast"(%x) {replica_groups = dense<[[2, 0], [3, 1]]> : tensor<2x2xi64>} : (tensor<4x2xf32>) -> tensor<4x2xf32>\n  return %0, %1, %2, %3 : tensor<4x2xf32>, tensor<8x2xf32>, tensor<2x2xf32>, tensor<4x2xf32>\n}\n',
    "bad_big_const.mlir": "func.func @main() -> tensor<99999999999xf32> {\n  %0 = stablehlo.constant dense<1.0> : tensor<99999999999xf32>\n  return %0 : tensor<99999999999xf32>\n}\n",
}
for name, text in SHLO.items():
    put("stablehlo", name, text.encode())

# the cpu backend's tune cache file (tune-<key>.txt): as ryft writes it, each
# width alone, bad values (one past int's range wraps to 256 in a naive
# sscanf), garbage, NUL bytes, and lines longer than the reader's 512-byte
# line buffer, one of them with a width just past the 511th byte
NOTE = "# ryft: -mprefer-vector-width for generated loops on Example CPU\n# 256-bit: gelu 1.00 ms, softmax 2.00 ms; 512-bit: gelu 0.90 ms, softmax 2.10 ms (4M floats, 1 thread)\n"
TUNE = {
    "written_256.txt": NOTE + "vector_width 256\n",
    "written_512.txt": NOTE + "vector_width 512\n",
    "bare_512.txt": "vector_width 512",
    "crlf_256.txt": "vector_width 256\r\n",
    "bad_300.txt": "vector_width 300\n",
    "bad_zero.txt": "vector_width 0\n",
    "bad_negative.txt": "vector_width -256\n",
    "bad_overflow.txt": "vector_width 4294967552\n",
    "bad_no_number.txt": "vector_width\nvector_width x\n",
    "bad_empty.txt": "",
    "bad_key.txt": "vector_widths 256\nVECTOR_WIDTH 512\n",
    "long_comment.txt": "# " + "x" * 2000 + "\nvector_width 256\n",
    "long_split.txt": "#" + " " * 510 + "vector_width 512\n",
    "long_value.txt": "vector_width " + "9" * 1000 + "\n",
}
for name, text in TUNE.items():
    put("tune", name, text.encode())
put("tune", "bad_nul.txt", b"vector_width\x00 256\n\x00vector_width 512\n")
put("tune", "bad_binary.txt", bytes(range(256)) * 3)
put("tune", "long_split_nul.txt", b"\x00" + b" " * 510 + b"vector_width 512\n")
put("tune", "long_exact_line.txt", b"#" + b" " * 509 + b"\nvector_width 256\n")
