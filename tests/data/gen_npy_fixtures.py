#!/usr/bin/env python3
"""Write the NumPy-made .npy fixtures that tests/test_npy.c reads.

Run from anywhere with a Python that has NumPy:
    python3 tests/data/gen_npy_fixtures.py
The files are small and committed; rerunning rewrites them byte for byte
(NumPy's .npy writer is deterministic). The expected values are repeated in
tests/test_npy.c, so keep the two in step.
"""
import os

import numpy as np
from numpy.lib import format as npf

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, arr, version=None):
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        npf.write_array(f, arr, version=version, allow_pickle=False)


# readable: every supported dtype, scalars, empty arrays, format versions
save("np_f32_2x3.npy", (np.arange(6, dtype="<f4").reshape(2, 3) * 0.5 - 1))
save("np_f64_3.npy", np.array([0.1, -2.5e300, np.inf], dtype="<f8"))
save("np_f16_3.npy", np.array([1.5, -2.0, 65504.0], dtype="<f2"))
save("np_i8_3.npy", np.array([-128, 0, 127], dtype="i1"))
save("np_i16_2x2.npy", np.array([[-32768, 1], [2, 32767]], dtype="<i2"))
save("np_i32_4.npy", np.array([-7, 0, 1 << 30, -(1 << 31)], dtype="<i4"))
save("np_i64_3.npy", np.array([-3, 1 << 40, -(1 << 62)], dtype="<i8"))
save("np_u8_scalar.npy", np.array(200, dtype="u1"))
save("np_u32_2.npy", np.array([0, 4294967295], dtype="<u4"))
save("np_bool_2x2.npy", np.array([[True, False], [False, True]]))
save("np_f64_0x3.npy", np.zeros((0, 3), dtype="<f8"))
save("np_i32_v2.npy", np.array([1, 2, 3], dtype="<i4"), version=(2, 0))
save("np_f32_v3.npy", np.array([[4.0], [5.0]], dtype="<f4"), version=(3, 0))
save("np_u16.npy", np.array([1, 2], dtype="<u2"))

# refused: made by NumPy, so the headers are exactly what users will have
save("np_bad_f4_bigendian.npy", np.array([1.0, 2.0], dtype=">f4"))
save("np_bad_c8.npy", np.array([1 + 2j], dtype="<c8"))
save("np_bad_fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
save("np_bad_rank9.npy", np.zeros((1,) * 9, dtype="<f4"))

# inputs for the command-line tests (tests/test_cli.c, tests/data/cli/*.ryft)
CLI = os.path.join(HERE, "cli")
os.makedirs(CLI, exist_ok=True)
save("cli/x3.npy", np.array([1.0, 2.0, 3.0], dtype="<f4"))
save("cli/y3.npy", np.array([10.0, 20.0, 30.0], dtype="<f4"))
save("cli/x3_f64.npy", np.array([1.0, 2.0, 3.0], dtype="<f8"))
save("cli/x4.npy", np.array([1.0, 2.0, 3.0, 4.0], dtype="<f4"))
save("cli/n7_i32.npy", np.array(7, dtype="<i4"))
with open(os.path.join(CLI, "corrupt.npy"), "wb") as f:
    f.write(b"this is not an npy file\n")
