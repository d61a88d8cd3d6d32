#!/usr/bin/env python3
"""Fixtures for tests/test_idx.c and tests/test_safetensors.c.

    /work/jaxenv/bin/python tests/data/gen_io_fixtures.py

IDX: a small u8 image file (3 images of 4x5, pixel = 10*i + 2*r + c) and
its labels [7, 0, 9], raw and gzip-compressed, plus an i16 and an f32 file
(big-endian data). safetensors: a file written by the Python safetensors
package (numpy API) with several dtypes and metadata.
"""
import gzip
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def idx_bytes(code, arr, be_fmt):
    hdr = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return hdr + arr.astype(be_fmt).tobytes()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


imgs = np.array([[[10 * i + 2 * r + c for c in range(5)] for r in range(4)] for i in range(3)], dtype=np.uint8)
labels = np.array([7, 0, 9], dtype=np.uint8)
write("idx_images_3x4x5.idx", idx_bytes(0x08, imgs, ">u1"))
write("idx_labels_3.idx", idx_bytes(0x08, labels, ">u1"))
# mtime=0 keeps the gzip bytes reproducible
write("idx_images_3x4x5.idx.gz", gzip.compress(idx_bytes(0x08, imgs, ">u1"), mtime=0))
write("idx_labels_3.idx.gz", gzip.compress(idx_bytes(0x08, labels, ">u1"), mtime=0))
write("idx_i16_2x3.idx", idx_bytes(0x0B, np.array([[1, -2, 300], [-32768, 32767, 0]], dtype=np.int16), ">i2"))
write("idx_f32_4.idx", idx_bytes(0x0D, np.array([1.5, -0.25, 1e30, -0.0], dtype=np.float32), ">f4"))

try:
    from safetensors.numpy import save
    tensors = {
        "mlp/fc1/w": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
        "mlp/fc1/b": np.array([1, -2, 3], dtype=np.int64),
        "half": np.array([0.5, -1.0], dtype=np.float16),
        "flags": np.array([True, False, True], dtype=np.bool_),
        "bytes": np.array([[1, 2], [3, 255]], dtype=np.uint8),
        "scalar": np.array(2.5, dtype=np.float64),
    }
    write("st_python.safetensors", save(tensors, metadata={"format": "np", "step": "12"}))
except ImportError:
    print("safetensors is not installed; st_python.safetensors not written")
