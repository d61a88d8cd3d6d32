#!/usr/bin/env python3
"""Generate the ryft golden test data (*.golden) from JAX.

Usage (needs jax, numpy and ml_dtypes; never run in CI):

    /work/jaxenv/bin/python tests/golden/gen_goldens.py [OUTDIR]

OUTDIR defaults to the directory of this script.  Every case is a ryft IR
program (docs/IR.md) plus its inputs and the outputs computed with the
matching jax.lax primitive on the CPU backend; the file format is described
in tests/golden/FORMAT.md.  The output is deterministic: all inputs come from
fixed numpy seeds, so running the script twice gives identical files.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from functools import partial

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

import ml_dtypes
import numpy as np
from jax import lax
from jax._src import core, dispatch
from jax._src.interpreters import mlir
from jax._src.lax.control_flow.conditionals import cond_p
from jax._src.lax.slicing import dynamic_slice_p, dynamic_update_slice_p
from jax._src.lib.mlir.dialects import hlo
from jax._src.random.threefry2x32 import threefry2x32_p

assert sys.byteorder == "little"

BF16 = np.dtype(ml_dtypes.bfloat16)
DT = {
    "bool": np.dtype(np.bool_),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "f16": np.dtype(np.float16),
    "bf16": BF16,
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
}
DTNAME = {v: k for k, v in DT.items()}
FLOATS = ("f16", "bf16", "f32", "f64")
SINTS = ("i8", "i16", "i32", "i64")
UINTS = ("u8", "u32")
INTS = SINTS + UINTS

# integer stablehlo.power: lax.pow only accepts float bases, so bind a tiny
# primitive that lowers straight to stablehlo.power (XLA's integer pow).
ipow_p = core.Primitive("ryft_golden_ipow")
ipow_p.def_abstract_eval(lambda x, y: core.ShapedArray(x.shape, x.dtype))
ipow_p.def_impl(partial(dispatch.apply_primitive, ipow_p))
mlir.register_lowering(ipow_p, lambda ctx, x, y: [hlo.power(x, y)])


# ----------------------------------------------------------------------------
# helpers: types, hex, IR text
# ----------------------------------------------------------------------------

def tname(dtype):
    return DTNAME[np.dtype(dtype)]


def tstr(a):
    return "%s[%s]" % (tname(a.dtype), ",".join(str(d) for d in a.shape))


def ttype(dt, shape):
    return "%s[%s]" % (dt, ",".join(str(d) for d in shape))


def hexa(a):
    a = np.ascontiguousarray(a)
    if a.size == 0:
        return "-"
    return a.tobytes().hex()


def arr(values, dt):
    """numpy array of dtype name dt from a python list / array."""
    d = DT[dt]
    if dt in ("bf16", "f16"):
        return np.asarray(np.asarray(values, np.float32).astype(d))
    return np.asarray(values, dtype=d)


class Raw(str):
    pass


def fmt_attr(v):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_attr(x) for x in v) + "]"
    if isinstance(v, str):
        return v
    raise TypeError(v)


def fmt_attrs(attrs):
    if not attrs:
        return ""
    return " {" + ", ".join("%s=%s" % (k, fmt_attr(v)) for k, v in attrs) + "}"


def fmt_scalar(v, dt):
    if dt == "bool":
        return "true" if bool(v) else "false"
    if dt in INTS:
        return str(int(v))
    f = float(v)
    if np.isnan(f):
        return "nan"
    if np.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == 0.0:
        return "-0.0" if np.signbit(f) else "0"
    return ("%.17g" if dt == "f64" else "%.9g") % f


def const_value(a):
    dt = tname(a.dtype)
    return Raw("[" + ", ".join(fmt_scalar(v, dt) for v in np.asarray(a).reshape(-1)) + "]")


def ir_single(op, in_types, out_types, attrs=None, n_operands=None):
    """IR text of `func @main` holding a single instruction on all inputs."""
    params = ", ".join("%%arg%d: %s" % (i, t) for i, t in enumerate(in_types))
    n = len(in_types) if n_operands is None else n_operands
    res = ", ".join("%%%d: %s" % (i, t) for i, t in enumerate(out_types))
    line = "  %s = %s" % (res, op)
    if n:
        line += " " + ", ".join("%%arg%d" % i for i in range(n))
    line += fmt_attrs(attrs)
    ret = ", ".join("%%%d" % i for i in range(len(out_types)))
    return "func @main(%s) -> (%s) {\n%s\n  return %s\n}\n" % (
        params, ", ".join(out_types), line, ret)


# ----------------------------------------------------------------------------
# case collection
# ----------------------------------------------------------------------------

FILES = {}
NAMES = set()


def to_np(x):
    return np.asarray(jax.device_get(x))


def add_case(fname, name, tol, ir, ins, outs):
    assert name not in NAMES, name
    NAMES.add(name)
    ins = [np.asarray(a) for a in ins]
    outs = [to_np(a) for a in outs]
    for a in ins + outs:
        tname(a.dtype)  # check dtype is supported
    if tol != "exact":
        tol = "%g %g" % tol
    FILES.setdefault(fname, []).append((name, tol, ir, ins, outs))


def check_types(ir, outs):
    head = ir.split("\n", 1)[0]
    want = head[head.index("-> (") + 4: head.rindex(")")]
    got = ", ".join(tstr(to_np(o)) for o in outs)
    assert want == got, (want, got, ir)


def single(fname, name, op, fn, ins, attrs=None, tol="exact", n_operands=None):
    """One-instruction case: outputs = fn(*ins); IR operands = all inputs."""
    outs = fn(*ins)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    outs = [to_np(o) for o in outs]
    ir = ir_single(op, [tstr(a) for a in ins], [tstr(o) for o in outs], attrs,
                   n_operands)
    add_case(fname, name, tol, ir, ins, outs)


def program(fname, name, ir, fn, ins, tol="exact"):
    outs = fn(*ins)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    outs = [to_np(o) for o in outs]
    check_types(ir, outs)
    add_case(fname, name, tol, ir, ins, outs)


def has_nan(*arrs):
    return any(np.issubdtype(np.asarray(a).dtype, np.floating) or np.asarray(a).dtype == BF16
               for a in arrs) and any(np.isnan(np.asarray(a, np.float64)).any() for a in arrs)


def write_files(outdir):
    for fname, cases in FILES.items():
        path = os.path.join(outdir, fname)
        with open(path, "w") as f:
            f.write("# Generated by tests/golden/gen_goldens.py from JAX %s (CPU, x64).\n"
                    % jax.__version__)
            f.write("# Do not edit. Regenerate with:\n")
            f.write("#   /work/jaxenv/bin/python tests/golden/gen_goldens.py\n")
            f.write("# %d cases.\n\n" % len(cases))
            for name, tol, ir, ins, outs in cases:
                f.write("case %s\n" % name)
                f.write("tol %s\n" % tol)
                f.write("ir\n")
                f.write(ir)
                f.write("end_ir\n")
                for a in ins:
                    f.write("in %s %s\n" % (tstr(a), hexa(a)))
                for a in outs:
                    f.write("out %s %s\n" % (tstr(a), hexa(a)))
                f.write("end\n\n")


# ----------------------------------------------------------------------------
# tolerances
# ----------------------------------------------------------------------------

TOL_ARITH = {"f32": (1e-6, 0), "f64": (1e-12, 0), "f16": (1e-3, 0), "bf16": (1e-2, 0)}
TOL_TRANS = {"f32": (1e-5, 1e-6), "f64": (1e-12, 1e-14), "f16": (4e-3, 1e-4),
             "bf16": (2e-2, 1e-3)}
TOL_SUM = {"f32": (1e-5, 1e-6), "f64": (1e-12, 1e-13), "f16": (5e-3, 1e-3),
           "bf16": (2e-2, 1e-2)}


def tol_of(table, dt):
    return table[dt] if dt in table else "exact"


# ----------------------------------------------------------------------------
# input generators
# ----------------------------------------------------------------------------

def rng_for(tag):
    seed = sum((i + 1) * ord(c) for i, c in enumerate(tag)) % (2 ** 32)
    return np.random.default_rng(seed)


def rand_float(rng, dt, shape, lo=-4.0, hi=4.0):
    return arr(rng.uniform(lo, hi, size=shape), dt)


def rand_int(rng, dt, shape, lo=None, hi=None):
    info = np.iinfo(DT[dt])
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64).astype(DT[dt])


def rand_bool(rng, shape):
    return rng.integers(0, 2, size=shape).astype(np.bool_)


INF = float("inf")
NAN = float("nan")


# ============================================================================
# elementwise.golden
# ============================================================================

def gen_elementwise():
    F = "elementwise.golden"
    un = {
        "neg": lax.neg, "abs": lax.abs, "sign": lax.sign, "exp": lax.exp,
        "exp2": lax.exp2, "log": lax.log, "log1p": lax.log1p, "expm1": lax.expm1,
        "sqrt": lax.sqrt, "rsqrt": lax.rsqrt, "cbrt": lax.cbrt, "sin": lax.sin,
        "cos": lax.cos, "tan": lax.tan, "tanh": lax.tanh, "logistic": lax.logistic,
        "erf": lax.erf, "erf_inv": lax.erf_inv, "atanh": lax.atanh, "floor": lax.floor, "ceil": lax.ceil,
        "round": lambda x: lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO),
        "round_even": lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN),
    }
    dom = {"neg": (-4, 4), "abs": (-4, 4), "sign": (-4, 4), "exp": (-5, 5),
           "exp2": (-5, 5), "log": (0.05, 20), "log1p": (-0.9, 5), "expm1": (-3, 3),
           "sqrt": (0, 20), "rsqrt": (0.05, 20), "cbrt": (-10, 10), "sin": (-6, 6),
           "cos": (-6, 6), "tan": (-1.3, 1.3), "tanh": (-4, 4), "logistic": (-8, 8),
           "erf": (-3, 3), "erf_inv": (-0.95, 0.95), "atanh": (-0.95, 0.95)}
    exact_ops = ("neg", "abs", "sign", "floor", "ceil", "round", "round_even")
    shapes = {"f32": (2, 3, 4), "f64": (7,), "f16": (3, 4), "bf16": (6,)}
    for op, fn in un.items():
        for dt in FLOATS:
            rng = rng_for("un" + op + dt)
            shape = shapes[dt]
            if op in dom:
                x = rand_float(rng, dt, shape, *dom[op])
            else:  # rounding ops: multiples of 0.25 hit the .5 ties
                x = arr(rng.integers(-20, 21, size=shape) / 4.0, dt)
            tol = "exact" if op in exact_ops else TOL_TRANS[dt]
            single(F, "%s/%s/basic" % (op, dt), op, fn, [x], tol=tol)
    # scalar and empty shapes
    for op in ("neg", "exp", "sqrt", "floor", "tanh"):
        x = arr(2.25, "f32")
        tol = "exact" if op in exact_ops else TOL_TRANS["f32"]
        single(F, "%s/f32/scalar" % op, op, un[op], [x], tol=tol)
        single(F, "%s/f32/empty" % op, op, un[op], [arr(np.zeros((0, 3)), "f32")], tol=tol)
    # special values: NaN / inf / -0.0
    specials = [NAN, INF, -INF, -0.0, 0.0, 1.0, -1.0]
    for op in ("neg", "abs", "sign", "floor", "ceil", "round", "round_even", "exp",
               "log", "sqrt", "tanh", "logistic", "sin", "log1p", "expm1", "erf", "rsqrt",
               "cbrt", "exp2", "erf_inv", "atanh"):
        for dt in ("f32", "f64"):
            x = arr(specials, dt)
            single(F, "%s/%s/special" % (op, dt), op, un[op], [x], tol=(1e-6, 0) if dt == "f32" else (1e-14, 0))
    # signed zeros checked bit-exactly (no NaN in the output)
    for op in ("neg", "abs", "sign", "floor", "ceil", "round", "round_even", "sqrt"):
        for dt in ("f32", "f64", "f16", "bf16"):
            x = arr([-0.0, 0.0, 2.0, -2.0] if op == "sqrt" else [-0.0, 0.0, -0.25, 0.25, -0.5, -3.0, 7.5],
                    dt)
            if op == "sqrt":
                x = arr([-0.0, 0.0, 4.0, 2.25], dt)
            single(F, "%s/%s/signed_zero" % (op, dt), op, un[op], [x], tol="exact")
    # rounding ties
    ties = [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 0.49999997, -0.49999997, 0.50000006,
            8388607.5, -8388607.5, 1e30, -0.0]
    for op in ("round", "round_even", "floor", "ceil"):
        single(F, "%s/f32/ties" % op, op, un[op], [arr(ties, "f32")])
        single(F, "%s/f64/ties" % op, op, un[op],
               [arr([0.5, 1.5, 2.5, -0.5, -2.5, 4503599627370495.5, 0.49999999999999994], "f64")])
    # signed int neg/abs/sign (incl. INT_MIN wraparound)
    for op in ("neg", "abs", "sign"):
        for dt in SINTS:
            info = np.iinfo(DT[dt])
            x = np.concatenate([arr([info.min, info.min + 1, -1, 0, 1, info.max], dt),
                                rand_int(rng_for(op + dt), dt, (6,))])
            single(F, "%s/%s/basic" % (op, dt), op, un[op], [x])
    # is_finite
    for dt in FLOATS:
        x = arr([NAN, INF, -INF, -0.0, 0.0, 1.5, -65504.0, 3e38 if dt in ("f32", "f64", "bf16") else 6e4], dt)
        single(F, "is_finite/%s/special" % dt, "is_finite", lax.is_finite, [x])
    single(F, "is_finite/f32/empty", "is_finite", lax.is_finite, [arr(np.zeros((2, 0)), "f32")])
    # not / popcnt
    single(F, "not/bool/basic", "not", lax.bitwise_not, [rand_bool(rng_for("notb"), (2, 5))])
    single(F, "not/bool/scalar", "not", lax.bitwise_not, [np.bool_(True)])
    for dt in INTS:
        x = rand_int(rng_for("not" + dt), dt, (3, 4))
        single(F, "not/%s/basic" % dt, "not", lax.bitwise_not, [x])
        info = np.iinfo(DT[dt])
        x = np.concatenate([arr([info.min, info.max, 0, 1, -1 if dt in SINTS else 255], dt),
                            rand_int(rng_for("pop" + dt), dt, (7,))])
        single(F, "popcnt/%s/basic" % dt, "popcnt", lax.population_count, [x])

    # ---------------- binary float
    binf = {"add": lax.add, "sub": lax.sub, "mul": lax.mul, "div": lax.div,
            "rem": lax.rem, "pow": lax.pow, "max": lax.max, "min": lax.min,
            "atan2": lax.atan2}
    bshapes = {"f32": (3, 5), "f64": (2, 2, 3), "f16": (8,), "bf16": (4, 2)}
    for op, fn in binf.items():
        for dt in FLOATS:
            rng = rng_for("bin" + op + dt)
            shape = bshapes[dt]
            if op == "pow":
                x = rand_float(rng, dt, shape, 0.1, 4)
                y = rand_float(rng, dt, shape, -3, 3)
            elif op in ("div", "rem"):
                x = rand_float(rng, dt, shape, -10, 10)
                y = arr(np.asarray(rand_float(rng, dt, shape, 0.5, 4), np.float32)
                        * np.where(rng.integers(0, 2, shape) == 0, -1, 1), dt)
            else:
                x = rand_float(rng, dt, shape)
                y = rand_float(rng, dt, shape)
            if op in ("max", "min"):
                tol = "exact"
            elif op in ("add", "sub", "mul", "div"):
                tol = TOL_ARITH[dt]
            elif op == "rem":
                tol = TOL_ARITH[dt] if dt != "f32" else (1e-6, 1e-6)
            else:
                tol = TOL_TRANS[dt]
            single(F, "%s/%s/basic" % (op, dt), op, fn, [x, y], tol=tol)
    # scalar / empty / 3-d
    single(F, "add/f32/scalar", "add", lax.add, [arr(1.25, "f32"), arr(-3.5, "f32")], tol=TOL_ARITH["f32"])
    single(F, "mul/f32/empty", "mul", lax.mul, [arr(np.zeros((0, 3)), "f32"), arr(np.zeros((0, 3)), "f32")])
    single(F, "add/f32/empty3", "add", lax.add, [arr(np.zeros((2, 0, 3)), "f32"), arr(np.zeros((2, 0, 3)), "f32")])
    # special values
    sx = [NAN, 1.0, NAN, INF, -INF, INF, 0.0, -0.0, 2.0, -3.0]
    sy = [1.0, NAN, NAN, INF, INF, 2.0, 0.0, 0.0, -0.0, -INF]
    for op in ("add", "sub", "mul", "div", "max", "min", "rem", "pow", "atan2"):
        for dt in ("f32", "f64"):
            single(F, "%s/%s/special" % (op, dt), op, binf[op], [arr(sx, dt), arr(sy, dt)],
                   tol=(1e-6, 0) if dt == "f32" else (1e-14, 0))
    for dt in ("f16", "bf16"):
        for op in ("max", "min"):
            single(F, "%s/%s/nan" % (op, dt), op, binf[op],
                   [arr([NAN, 1.0, NAN, -INF], dt), arr([1.0, NAN, NAN, 2.0], dt)], tol=(0, 0))
    # max/min of +-0: XLA orders -0 < +0
    for op in ("max", "min"):
        single(F, "%s/f32/signed_zero" % op, op, binf[op],
               [arr([-0.0, 0.0, -0.0, 0.0], "f32"), arr([0.0, -0.0, -0.0, 0.0], "f32")])
    single(F, "div/f32/by_zero", "div", lax.div,
           [arr([1.0, -1.0, 0.0, -0.0, 5.0], "f32"), arr([0.0, 0.0, 0.0, 0.0, -0.0], "f32")], tol=(0, 0))
    single(F, "pow/f32/edge", "pow", lax.pow,
           [arr([0.0, -2.0, -2.0, 2.0, 1.0, 0.0, -8.0, 4.0], "f32"),
            arr([0.0, 3.0, 0.5, -1.0, NAN, -1.0, 2.0, 0.5], "f32")], tol=(1e-6, 0))

    # ---------------- binary integer
    bini = {"add": lax.add, "sub": lax.sub, "mul": lax.mul, "div": lax.div,
            "rem": lax.rem, "max": lax.max, "min": lax.min}
    ishapes = {"i8": (9,), "i16": (2, 4), "i32": (3, 4), "i64": (5,), "u8": (2, 3, 2), "u32": (6,)}
    for op, fn in bini.items():
        for dt in INTS:
            rng = rng_for("bini" + op + dt)
            shape = ishapes[dt]
            x = rand_int(rng, dt, shape)
            if op in ("div", "rem"):
                y = rand_int(rng, dt, shape, -20 if dt in SINTS else 1, 20)
                y[y == 0] = 3
            else:
                y = rand_int(rng, dt, shape)
            single(F, "%s/%s/basic" % (op, dt), op, fn, [x, y])
    single(F, "add/i32/scalar", "add", lax.add, [arr(2147483647, "i32"), arr(1, "i32")])
    single(F, "add/i8/wrap", "add", lax.add,
           [arr([127, 127, -128, -128, 100, -100], "i8"), arr([1, 127, -1, -128, 100, -100], "i8")])
    single(F, "sub/i8/wrap", "sub", lax.sub,
           [arr([-128, 127, 0, -1], "i8"), arr([1, -1, -128, 127], "i8")])
    single(F, "mul/i8/wrap", "mul", lax.mul,
           [arr([127, -128, 16, -128, 99], "i8"), arr([2, -1, 16, -128, -3], "i8")])
    single(F, "add/i32/wrap", "add", lax.add,
           [arr([2147483647, -2147483648, 2147483000, -5], "i32"),
            arr([1, -1, 2147483000, -2147483644], "i32")])
    single(F, "mul/i32/wrap", "mul", lax.mul,
           [arr([2147483647, -2147483648, 65536, 123456789, -1], "i32"),
            arr([2, -1, 65536, 987654321, -2147483648], "i32")])
    single(F, "mul/i64/wrap", "mul", lax.mul,
           [arr([9223372036854775807, -9223372036854775808, 4294967296], "i64"),
            arr([3, -1, 4294967296], "i64")])
    single(F, "add/u8/wrap", "add", lax.add, [arr([255, 200, 0], "u8"), arr([1, 100, 0], "u8")])
    single(F, "sub/u32/wrap", "sub", lax.sub, [arr([0, 5, 4294967295], "u32"), arr([1, 7, 4294967295], "u32")])
    single(F, "mul/u32/wrap", "mul", lax.mul, [arr([4294967295, 65536, 3000000000], "u32"),
                                              arr([4294967295, 65536, 2], "u32")])
    for dt in SINTS:
        info = np.iinfo(DT[dt])
        x = arr([7, -7, 7, -7, 1, -1, 0, 5, -5, info.min, info.min, info.max, 3, -3], dt)
        y = arr([2, 2, -2, -2, 7, 7, 0, 0, 0, -1, 1, -1, 5, 5], dt)
        single(F, "div/%s/signs_zero" % dt, "div", lax.div, [x, y])
        single(F, "rem/%s/signs_zero" % dt, "rem", lax.rem, [x, y])
    for dt in UINTS:
        info = np.iinfo(DT[dt])
        x = arr([7, 0, info.max, info.max, 5, 100], dt)
        y = arr([2, 0, 0, info.max, 7, 9], dt)
        single(F, "div/%s/zero" % dt, "div", lax.div, [x, y])
        single(F, "rem/%s/zero" % dt, "rem", lax.rem, [x, y])
    # integer pow (stablehlo.power on integers)
    for dt in ("i32", "i64", "i8"):
        x = arr([2, -1, -1, 1, 1, 3, 0, 0, 2, -2, 0, 7, 2, -3, 5], dt)
        y = arr([-1, -3, -2, -2, -7, 0, 0, -1, 10, 3, 5, 13, 40, 5, 2], dt)
        single(F, "pow/%s/basic" % dt, "pow", lambda a, b: ipow_p.bind(a, b), [x, y])
    single(F, "pow/u8/basic", "pow", lambda a, b: ipow_p.bind(a, b),
           [arr([2, 3, 0, 1, 255, 16], "u8"), arr([3, 5, 0, 200, 2, 2], "u8")])
    # bitwise
    for op, fn in (("and", lax.bitwise_and), ("or", lax.bitwise_or), ("xor", lax.bitwise_xor)):
        a = np.array([False, False, True, True])
        b = np.array([False, True, False, True])
        single(F, "%s/bool/table" % op, op, fn, [a, b])
        single(F, "%s/bool/scalar" % op, op, fn, [np.bool_(True), np.bool_(False)])
        for dt in INTS:
            rng = rng_for("bit" + op + dt)
            shape = ishapes[dt]
            single(F, "%s/%s/basic" % (op, dt), op, fn,
                   [rand_int(rng, dt, shape), rand_int(rng, dt, shape)])
    # shifts, including counts >= bit width
    shf = {"shift_left": lax.shift_left, "shift_right_logical": lax.shift_right_logical,
           "shift_right_arithmetic": lax.shift_right_arithmetic}
    for op, fn in shf.items():
        for dt in INTS:
            bits = DT[dt].itemsize * 8
            rng = rng_for("sh" + op + dt)
            x = rand_int(rng, dt, (10,))
            info = np.iinfo(DT[dt])
            x[:3] = [info.min if dt in SINTS else info.max, -1 if dt in SINTS else 1, 1]
            cnt = np.array([1, 0, bits - 1, bits, bits + 1, 2 * bits + 3, 3, bits - 1, bits, 5],
                           dtype=DT[dt])
            single(F, "%s/%s/basic" % (op, dt), op, fn, [x, cnt])


# ============================================================================
# compare_select.golden
# ============================================================================

def gen_compare_select():
    F = "compare_select.golden"
    dirs = ["eq", "ne", "lt", "le", "gt", "ge"]
    fns = {"eq": lax.eq, "ne": lax.ne, "lt": lax.lt, "le": lax.le, "gt": lax.gt, "ge": lax.ge}
    fx = [NAN, 1.0, NAN, INF, -INF, -0.0, 2.0, 3.0, -1.0, 1.0]
    fy = [1.0, NAN, NAN, INF, INF, 0.0, 2.0, 1.0, 5.0, -INF]
    for d in dirs:
        for dt in FLOATS:
            single(F, "compare/%s/%s_special" % (dt, d), "compare", fns[d],
                   [arr(fx, dt), arr(fy, dt)], attrs=[("dir", d)])
        rng = rng_for("cmp" + d)
        for dt in INTS:
            x = rand_int(rng, dt, (3, 4), None, None)
            y = x.copy()
            y.reshape(-1)[::2] = rand_int(rng, dt, (6,))
            if dt in ("u8", "u32"):
                x.reshape(-1)[1] = np.iinfo(DT[dt]).max  # large unsigned vs small
                y.reshape(-1)[1] = 1
            single(F, "compare/%s/%s" % (dt, d), "compare", fns[d], [x, y], attrs=[("dir", d)])
        single(F, "compare/f32/%s_scalar" % d, "compare", fns[d],
               [arr(1.5, "f32"), arr(2.5, "f32")], attrs=[("dir", d)])
    for d in ("eq", "ne"):
        a = np.array([False, False, True, True])
        b = np.array([False, True, False, True])
        single(F, "compare/bool/%s" % d, "compare", fns[d], [a, b], attrs=[("dir", d)])
    single(F, "compare/f32/lt_empty", "compare", lax.lt,
           [arr(np.zeros((0, 2)), "f32"), arr(np.zeros((0, 2)), "f32")], attrs=[("dir", "lt")])

    # select
    rng = rng_for("select")
    p = rand_bool(rng, (3, 4))
    for dt in ("f32", "f64", "f16", "bf16", "i32", "i8", "u32", "i64"):
        a = rand_float(rng, dt, (3, 4)) if dt in FLOATS else rand_int(rng, dt, (3, 4))
        b = rand_float(rng, dt, (3, 4)) if dt in FLOATS else rand_int(rng, dt, (3, 4))
        single(F, "select/%s/basic" % dt, "select", lax.select, [p, a, b])
    a = rand_float(rng, "f32", (2, 3))
    b = rand_float(rng, "f32", (2, 3))
    single(F, "select/f32/scalar_pred_true", "select", lax.select, [np.bool_(True), a, b])
    single(F, "select/f32/scalar_pred_false", "select", lax.select, [np.bool_(False), a, b])
    single(F, "select/bool/basic", "select", lax.select,
           [rand_bool(rng, (6,)), rand_bool(rng, (6,)), rand_bool(rng, (6,))])
    single(F, "select/f32/scalar", "select", lax.select,
           [np.bool_(False), arr(1.0, "f32"), arr(-0.0, "f32")])
    single(F, "select/f32/nan_negzero", "select", lax.select,
           [np.array([True, False, True, False]), arr([NAN, 1, -0.0, 2], "f32"), arr([0, NAN, 0, -0.0], "f32")],
           tol=(0, 0))
    single(F, "select/f32/empty", "select", lax.select,
           [np.zeros((0, 3), np.bool_), arr(np.zeros((0, 3)), "f32"), arr(np.zeros((0, 3)), "f32")])
    single(F, "select/i32/3d", "select", lax.select,
           [rand_bool(rng, (2, 3, 2)), rand_int(rng, "i32", (2, 3, 2)), rand_int(rng, "i32", (2, 3, 2))])

    # clamp
    x = rand_float(rng, "f32", (3, 4), -3, 3)
    single(F, "clamp/f32/scalar_bounds", "clamp", lax.clamp, [arr(-1.0, "f32"), x, arr(1.5, "f32")])
    lo = rand_float(rng, "f32", (3, 4), -2, 0)
    hi = rand_float(rng, "f32", (3, 4), 0, 2)
    single(F, "clamp/f32/array_bounds", "clamp", lax.clamp, [lo, x, hi])
    single(F, "clamp/f32/nan", "clamp", lax.clamp,
           [arr(0.0, "f32"), arr([NAN, -1, 5, 0.5, INF, -INF], "f32"), arr(1.0, "f32")], tol=(0, 0))
    xi = rand_int(rng, "i32", (10,), -100, 100)
    single(F, "clamp/i32/scalar_bounds", "clamp", lax.clamp, [arr(-10, "i32"), xi, arr(20, "i32")])
    single(F, "clamp/u8/scalar_bounds", "clamp", lax.clamp,
           [arr(10, "u8"), rand_int(rng, "u8", (8,)), arr(200, "u8")])
    single(F, "clamp/f64/array_bounds", "clamp", lax.clamp,
           [rand_float(rng, "f64", (5,), -2, 0), rand_float(rng, "f64", (5,), -3, 3),
            rand_float(rng, "f64", (5,), 0, 2)])
    single(F, "clamp/bf16/scalar_bounds", "clamp", lax.clamp,
           [arr(-0.5, "bf16"), rand_float(rng, "bf16", (6,)), arr(0.5, "bf16")])
    single(F, "clamp/i64/scalar", "clamp", lax.clamp, [arr(0, "i64"), arr(-7, "i64"), arr(3, "i64")])


# ============================================================================
# convert.golden
# ============================================================================

def gen_convert():
    F = "convert.golden"
    rng = rng_for("convert")

    def conv(name, x, to, tol="exact"):
        single(F, name, "convert", lambda a: lax.convert_element_type(a, DT[to]), [x], tol=tol)

    # float -> int, in range (truncation toward zero)
    vals = [0.0, -0.0, 0.4, -0.4, 0.99, -0.99, 1.5, -1.5, 2.7, -2.7, 100.25, -100.75]
    for src in FLOATS:
        for dst in INTS:
            v = vals if dst in SINTS else [abs(x) for x in vals]
            conv("convert/%s_%s/trunc" % (src, dst), arr(v, src), dst)
    # float -> int, saturation, NaN -> 0 (verified: XLA CPU saturates)
    sat = [NAN, INF, -INF, 3e9, -3e9, 1e20, -1e20, 127.5, -128.9, 300.0, -300.0, 65535.9, 70000.0,
           2147483520.0, -2147483648.0, 4294967040.0]
    for src in ("f32", "f64"):
        for dst in INTS:
            conv("convert/%s_%s/saturate" % (src, dst), arr(sat, src), dst)
    conv("convert/f16_i8/saturate", arr([NAN, INF, -INF, 300, -300, 65504], "f16"), "i8")
    conv("convert/bf16_i32/saturate", arr([NAN, INF, -INF, 3e9, -3e9, 1e30], "bf16"), "i32")
    conv("convert/f64_i64/saturate_extreme", arr([NAN, 1e19, -1e19, 9.2233720368547748e18, -9.2233720368547758e18], "f64"), "i64")
    # int -> float
    for src in INTS:
        x = np.concatenate([rand_int(rng, src, (6,)),
                            arr([np.iinfo(DT[src]).min, np.iinfo(DT[src]).max, 0], src)])
        for dst in FLOATS:
            conv("convert/%s_%s/basic" % (src, dst), x, dst)
    conv("convert/i32_f32/rounding", arr([16777217, 16777219, -16777217, 2147483647, 33554435], "i32"), "f32")
    conv("convert/i64_f64/rounding", arr([9007199254740993, -9007199254740993, 9223372036854775807], "i64"), "f64")
    conv("convert/u32_f32/rounding", arr([4294967295, 16777217, 2147483649], "u32"), "f32")
    conv("convert/i32_f16/overflow", arr([65504, 65519, 65520, 100000, -100000, 2049, 2051], "i32"), "f16")
    conv("convert/i32_bf16/rounding", arr([257, 259, 65535, -257, 16777216], "i32"), "bf16")
    # float -> float
    f32v = arr([1.0, 1.0009766, 1.00048828125, 1.0014648, 65504.0, 65519.99, 65520.0, 1e5, -1e5, 6.1e-5,
                1e-6, 5.96e-8, 2.9e-8, 1e-9, -1e-9, 3.14159265, 0.1, -0.0], "f32")
    conv("convert/f32_f16/rounding", f32v, "f16")
    bfv = arr([1.0, 1.00390625, 1.0078125, 1.01171875, 1.005859375, 3.0e38, 3.4e38, -3.4e38, 1e-39,
               1e-45, 3.14159265, 0.1, -0.0, 65504.0], "f32")
    conv("convert/f32_bf16/rounding", bfv, "bf16")
    conv("convert/f32_f16/special", arr([NAN, INF, -INF], "f32"), "f16", tol=(0, 0))
    conv("convert/f32_bf16/special", arr([NAN, INF, -INF], "f32"), "bf16", tol=(0, 0))
    conv("convert/f64_f32/rounding", arr([0.1, 1.0000000596046448, 1.0000001788139343, 1e39, -1e39,
                                          1e-46, 3.4028235e38, np.pi, -0.0], "f64"), "f32")
    conv("convert/f64_f32/special", arr([NAN, INF, -INF], "f64"), "f32", tol=(0, 0))
    for src, dst in (("f16", "f32"), ("bf16", "f32"), ("f32", "f64"), ("f16", "f64"), ("bf16", "f64"),
                     ("f16", "bf16"), ("bf16", "f16"), ("f64", "f16"), ("f64", "bf16"), ("f32", "f32")):
        x = arr(np.concatenate([rng.uniform(-100, 100, 6), [-0.0, 1e-3, 6e-8, 60000.0]]), src)
        conv("convert/%s_%s/basic" % (src, dst), x, dst)
    conv("convert/bf16_f16/overflow", arr([1e5, -7e4, 1e-8, 3e38], "bf16"), "f16")
    # int -> int
    for src in INTS:
        x = np.concatenate([rand_int(rng, src, (6,)),
                            arr([np.iinfo(DT[src]).min, np.iinfo(DT[src]).max, 0], src)])
        for dst in INTS:
            if dst != src:
                conv("convert/%s_%s/basic" % (src, dst), x, dst)
    # -> bool / bool ->
    conv("convert/f32_bool/basic", arr([0.0, -0.0, 1.0, -2.5, NAN, INF, 1e-40, 0.5], "f32"), "bool")
    conv("convert/f64_bool/basic", arr([0.0, -0.0, 1e-300, NAN], "f64"), "bool")
    conv("convert/bf16_bool/basic", arr([0.0, -0.0, 1.0, NAN], "bf16"), "bool")
    for src in INTS:
        conv("convert/%s_bool/basic" % src, arr([0, 1, 2, 64, 128 if src == "u8" else 100, 0], src), "bool")
    b = np.array([True, False, True, True, False])
    for dst in INTS + FLOATS:
        conv("convert/bool_%s/basic" % dst, b, dst)
    conv("convert/bool_bool/basic", b, "bool")
    conv("convert/f32_i32/scalar", arr(-7.9, "f32"), "i32")
    conv("convert/i32_f32/empty", arr(np.zeros((0, 4)), "i32"), "f32")
    conv("convert/f32_f64/3d", rand_float(rng, "f32", (2, 3, 2)), "f64")

    # bitcast_convert
    def bc(name, x, to):
        single(F, name, "bitcast_convert", lambda a: lax.bitcast_convert_type(a, DT[to]), [x])

    fv = arr([1.0, -0.0, 0.0, INF, -INF, NAN, 1e-45, -3.5, 3.4028235e38, 0.1], "f32")
    bc("bitcast_convert/f32_u32/basic", fv, "u32")
    bc("bitcast_convert/f32_i32/basic", fv, "i32")
    uv = arr([0x3f800000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fc00001, 0xffc00000,
              0x7f800001, 0x00000001, 0xdeadbeef], "u32")
    bc("bitcast_convert/u32_f32/nan_payloads", uv, "f32")
    bc("bitcast_convert/i32_f32/basic", arr([1065353216, -2147483648, -1, 0, 1078530011], "i32"), "f32")
    bc("bitcast_convert/f64_i64/basic", arr([1.0, -0.0, INF, 0.1, -2.5e-310], "f64"), "i64")
    bc("bitcast_convert/i64_f64/basic", arr([4607182418800017408, -9223372036854775808, 1, -1, 0x7ff8000000000001], "i64"), "f64")
    bc("bitcast_convert/f16_i16/basic", arr([1.0, -0.0, INF, 65504.0, 6e-8, -2.5], "f16"), "i16")
    bc("bitcast_convert/i16_f16/basic", arr([15360, -32768, 31744, 32767, 1, -1024], "i16"), "f16")
    bc("bitcast_convert/bf16_i16/basic", arr([1.0, -0.0, INF, 3e38, -2.5, 0.1], "bf16"), "i16")
    bc("bitcast_convert/i16_bf16/basic", arr([16256, -32768, 32640, 32767, 1, -16512], "i16"), "bf16")
    bc("bitcast_convert/u8_i8/basic", arr([0, 127, 128, 255, 1], "u8"), "i8")
    bc("bitcast_convert/i8_u8/basic", arr([0, 127, -128, -1, 1], "i8"), "u8")
    bc("bitcast_convert/i32_u32/2d", rand_int(rng, "i32", (2, 3)), "u32")
    bc("bitcast_convert/u32_i32/basic", rand_int(rng, "u32", (5,)), "i32")
    bc("bitcast_convert/f32_u32/scalar", arr(-1.5, "f32"), "u32")


# ============================================================================
# shape.golden
# ============================================================================

def gen_shape():
    F = "shape.golden"
    rng = rng_for("shape")

    def rf(shape, dt="f32"):
        if dt == "bool":
            return rand_bool(rng, shape)
        if dt in FLOATS:
            return rand_float(rng, dt, shape)
        return rand_int(rng, dt, shape, -100 if dt in SINTS else 0, 100)

    # broadcast_in_dim
    def bid(name, x, shape, dims):
        single(F, "broadcast_in_dim/" + name, "broadcast_in_dim",
               lambda a: lax.broadcast_in_dim(a, shape, dims), [x], attrs=[("dims", list(dims))])

    bid("f32/scalar", arr(2.5, "f32"), (2, 3), ())
    bid("f32/row", rf((3,)), (2, 3), (1,))
    bid("f32/col", rf((2,)), (2, 3), (0,))
    bid("f32/expand1", rf((3, 1)), (3, 4), (0, 1))
    bid("f32/3d_mid", rf((2, 3)), (2, 4, 3), (0, 2))
    bid("f32/3d_size1", rf((1, 3, 1)), (2, 3, 4), (0, 1, 2))
    bid("f32/transposing", rf((2, 3)), (3, 2), (1, 0))
    bid("i32/rank4", rf((3,), "i32"), (2, 2, 3, 2), (2,))
    bid("bool/basic", rf((4,), "bool"), (4, 3), (0,))
    bid("i64/scalar", arr(-5, "i64"), (3,), ())
    bid("bf16/basic", rf((2,), "bf16"), (2, 2), (1,))
    bid("f32/empty", rf((0,)), (2, 0), (1,))
    bid("f32/to_empty", arr(1.0, "f32"), (0, 3), ())
    bid("u8/same", rf((2, 3), "u8"), (2, 3), (0, 1))

    # reshape
    def rs(name, x, shape):
        single(F, "reshape/" + name, "reshape", lambda a: lax.reshape(a, shape), [x])

    rs("f32/3d_2d", rf((2, 3, 4)), (6, 4))
    rs("f32/flatten", rf((2, 3, 4)), (24,))
    rs("f32/unflatten", rf((12,)), (3, 2, 2))
    rs("f32/to_scalar", rf((1, 1)), ())
    rs("f32/from_scalar", arr(3.0, "f32"), (1, 1))
    rs("f32/empty", rf((0, 3)), (3, 0))
    rs("bf16/basic", rf((4, 2), "bf16"), (2, 4))
    rs("i8/basic", rf((6,), "i8"), (2, 1, 3))
    rs("bool/basic", rf((2, 3), "bool"), (3, 2))
    rs("f64/rank5", rf((2, 2, 2, 2, 2), "f64"), (4, 8))

    # transpose
    def tr(name, x, perm):
        single(F, "transpose/" + name, "transpose", lambda a: lax.transpose(a, perm), [x],
               attrs=[("perm", list(perm))])

    tr("f32/2d", rf((3, 4)), (1, 0))
    tr("f32/3d_201", rf((2, 3, 4)), (2, 0, 1))
    tr("f32/3d_120", rf((2, 3, 4)), (1, 2, 0))
    tr("f32/3d_021", rf((2, 3, 4)), (0, 2, 1))
    tr("f32/4d", rf((2, 3, 4, 5)), (3, 1, 0, 2))
    tr("i8/4d", rf((2, 1, 3, 2), "i8"), (0, 3, 2, 1))
    tr("bool/3d", rf((2, 2, 3), "bool"), (2, 1, 0))
    tr("f16/2d", rf((2, 5), "f16"), (1, 0))
    tr("f32/identity", rf((2, 3)), (0, 1))
    tr("f32/empty", rf((0, 2, 3)), (2, 0, 1))
    tr("i64/scalar", arr(4, "i64"), ())

    # slice
    def sl(name, x, start, limit, stride):
        single(F, "slice/" + name, "slice", lambda a: lax.slice(a, start, limit, stride), [x],
               attrs=[("start", list(start)), ("limit", list(limit)), ("stride", list(stride))])

    sl("f32/1d", rf((10,)), (2,), (7,), (1,))
    sl("f32/stride2", rf((10,)), (1,), (10,), (2,))
    sl("f32/stride3_2d", rf((7, 8)), (1, 0), (7, 8), (3, 3))
    sl("f32/3d", rf((4, 5, 6)), (1, 2, 0), (3, 5, 6), (1, 2, 4))
    sl("f32/empty_result", rf((5, 4)), (2, 1), (2, 4), (1, 1))
    sl("u8/full", rf((3, 3), "u8"), (0, 0), (3, 3), (1, 1))
    sl("i64/stride_big", rf((9,), "i64"), (0,), (9,), (5,))
    sl("bool/2d", rf((4, 6), "bool"), (1, 1), (4, 6), (2, 2))
    sl("f32/scalar", arr(1.0, "f32"), (), (), ())

    # dynamic_slice / dynamic_update_slice: bind the primitives directly, because
    # lax.dynamic_slice first wraps negative starts Python-style (i + dim), which
    # is not the StableHLO (clamp-only) semantics the IR specifies.
    def ds(name, x, starts, sizes, idt="i32"):
        idx = [arr(s, idt) for s in starts]
        single(F, "dynamic_slice/" + name, "dynamic_slice",
               lambda a, *i: dynamic_slice_p.bind(a, *i, slice_sizes=tuple(sizes)), [x] + idx,
               attrs=[("sizes", list(sizes))])

    x = rf((5, 6))
    ds("f32/in_range", x, (1, 2), (3, 2))
    ds("f32/clamp_high", x, (4, 5), (3, 2))
    ds("f32/clamp_negative", x, (-2, -100), (2, 3))
    ds("f32/clamp_mixed", x, (100, 1), (5, 4))
    ds("f32/i64_index", x, (2, 3), (2, 3), "i64")
    ds("f32/i64_clamp", x, (-9223372036854775807, 9223372036854775807), (2, 3), "i64")
    ds("i32/1d", rf((8,), "i32"), (5,), (4,))
    ds("f32/3d", rf((3, 4, 5)), (1, -1, 3), (2, 2, 3))
    ds("f32/zero_size", x, (2, 2), (0, 3))
    ds("bool/2d", rf((4, 4), "bool"), (3, 0), (2, 2))
    ds("f32/u32_index", x, (3, 4), (2, 2), "u32")

    # dynamic_update_slice
    def dus(name, x, u, starts, idt="i32"):
        idx = [arr(s, idt) for s in starts]
        single(F, "dynamic_update_slice/" + name, "dynamic_update_slice",
               lambda a, b, *i: dynamic_update_slice_p.bind(a, b, *i), [x, u] + idx)

    x = rf((5, 6))
    dus("f32/in_range", x, rf((2, 3)), (1, 2))
    dus("f32/clamp_high", x, rf((2, 3)), (4, 5))
    dus("f32/clamp_negative", x, rf((3, 2)), (-3, -1))
    dus("f32/full", x, rf((5, 6)), (1, 1))
    dus("i32/1d", rf((8,), "i32"), rf((3,), "i32"), (6,))
    dus("f32/3d_i64", rf((3, 4, 2)), rf((2, 2, 2)), (1, 3, 0), "i64")
    dus("f32/empty_update", x, rf((0, 2)), (1, 1))
    dus("bool/2d", rf((3, 3), "bool"), rf((1, 2), "bool"), (2, 2))

    # concatenate
    def cc(name, xs, dim):
        single(F, "concatenate/" + name, "concatenate",
               lambda *a: lax.concatenate(a, dim), xs, attrs=[("dim", dim)])

    cc("f32/3ops_dim0", [rf((2, 3)), rf((1, 3)), rf((3, 3))], 0)
    cc("f32/3ops_dim1_zero", [rf((2, 2)), rf((2, 0)), rf((2, 3))], 1)
    cc("f32/single", [rf((2, 3))], 1)
    cc("i32/1d", [rf((3,), "i32"), rf((4,), "i32")], 0)
    cc("f32/3d_dim2", [rf((2, 2, 1)), rf((2, 2, 3)), rf((2, 2, 2))], 2)
    cc("bool/dim0", [rf((1, 2), "bool"), rf((2, 2), "bool")], 0)
    cc("f32/all_empty", [rf((0, 2)), rf((0, 2))], 0)
    cc("bf16/dim1", [rf((2, 1), "bf16"), rf((2, 2), "bf16")], 1)
    cc("u8/4ops", [rf((1,), "u8"), rf((2,), "u8"), rf((0,), "u8"), rf((3,), "u8")], 0)

    # pad
    def pd(name, x, val, low, high, interior):
        cfg = list(zip(low, high, interior))
        single(F, "pad/" + name, "pad", lambda a, v: lax.pad(a, v, cfg), [x, val],
               attrs=[("low", list(low)), ("high", list(high)), ("interior", list(interior))])

    pd("f32/1d", rf((4,)), arr(0.0, "f32"), (2,), (1,), (0,))
    pd("f32/interior", rf((4,)), arr(-1.0, "f32"), (0,), (0,), (2,))
    pd("f32/negative", rf((6,)), arr(9.0, "f32"), (-2,), (-1,), (0,))
    pd("f32/neg_interior", rf((4,)), arr(9.0, "f32"), (-2,), (-3,), (1,))
    pd("f32/2d_mixed", rf((3, 4)), arr(0.5, "f32"), (1, -1), (-1, 2), (1, 0))
    pd("f32/3d", rf((2, 2, 2)), arr(0.0, "f32"), (0, 1, 1), (1, 0, 1), (1, 1, 0))
    pd("i32/2d", rf((2, 3), "i32"), arr(-7, "i32"), (1, 0), (0, 2), (0, 1))
    pd("bool/1d", rf((3,), "bool"), np.bool_(True), (1,), (1,), (1,))
    pd("f32/empty_operand", rf((0, 2)), arr(3.0, "f32"), (1, 0), (2, 1), (3, 0))
    pd("f32/to_empty", rf((3,)), arr(3.0, "f32"), (-2,), (-1,), (0,))
    pd("bf16/2d", rf((2, 2), "bf16"), arr(-0.0, "bf16"), (1, 1), (1, 1), (0, 0))
    pd("f64/scalar", arr(1.0, "f64"), arr(2.0, "f64"), (), (), ())

    # reverse
    def rv(name, x, dims):
        single(F, "reverse/" + name, "reverse", lambda a: lax.rev(a, dims), [x],
               attrs=[("dims", list(dims))])

    rv("f32/1d", rf((5,)), (0,))
    rv("f32/3d_02", rf((2, 3, 4)), (0, 2))
    rv("f32/3d_all", rf((2, 3, 4)), (0, 1, 2))
    rv("f32/none", rf((2, 3)), ())
    rv("bool/2d", rf((3, 2), "bool"), (1,))
    rv("i16/2d", rf((3, 4), "i16"), (0,))
    rv("f32/empty", rf((0, 3)), (0, 1))

    # iota
    def io(name, dt, shape, dim):
        single(F, "iota/" + name, "iota", lambda: lax.broadcasted_iota(DT[dt], shape, dim), [],
               attrs=[("dim", dim)])

    io("i32/1d", "i32", (5,), 0)
    io("i32/2d_dim1", "i32", (3, 4), 1)
    io("i32/2d_dim0", "i32", (3, 4), 0)
    io("i64/3d_dim2", "i64", (2, 3, 4), 2)
    io("u8/1d", "u8", (7,), 0)
    io("u32/2d", "u32", (2, 3), 1)
    io("i8/1d", "i8", (4,), 0)
    io("i16/1d", "i16", (3,), 0)
    io("f32/2d_dim0", "f32", (4, 2), 0)
    io("f64/1d", "f64", (6,), 0)
    io("f16/1d", "f16", (5,), 0)
    io("bf16/3d_dim1", "bf16", (2, 3, 2), 1)
    io("i32/empty", "i32", (0, 3), 1)

    # constant
    def cst(name, a):
        a = np.asarray(a)
        single(F, "constant/" + name, "constant", lambda: a, [], attrs=[("value", const_value(a))],
               tol="exact" if not has_nan(a) else (0, 0))

    cst("f32/special", arr([1.0, 2.5, -0.0, NAN, INF, -INF, 0.1, 1e-45, 3.4028235e38, -1.17549435e-38],
                           "f32").reshape(2, 5))
    cst("f32/signed_zero", arr([-0.0, 0.0, 0.1, -3.75], "f32").reshape(2, 2))
    cst("f64/basic", arr([0.1, -1e300, 5e-324, -0.0, np.pi], "f64"))
    cst("f16/basic", arr([0.1, 65504, -6e-8, -0.0, 1.0009766], "f16"))
    cst("bf16/basic", arr([0.1, 3e38, -1.0078125, -0.0], "bf16"))
    cst("i32/basic", arr([0, -1, 2147483647, -2147483648], "i32"))
    cst("i64/basic", arr([9223372036854775807, -9223372036854775808, 0], "i64"))
    cst("u32/basic", arr([4294967295, 0, 7], "u32"))
    cst("u8/basic", arr([255, 0, 128], "u8"))
    cst("i8/basic", arr([-128, 127, 0], "i8"))
    cst("i16/basic", arr([-32768, 32767, 5], "i16"))
    cst("bool/basic", np.array([[True, False, True], [False, False, True]]))
    cst("f32/scalar", arr(-2.5, "f32"))
    cst("f32/empty", arr(np.zeros((0, 2)), "f32"))
    cst("f32/3d", rf((2, 2, 3)))


# ============================================================================
# reduce.golden
# ============================================================================

REDUCE = {"sum": lax.reduce_sum, "prod": lax.reduce_prod, "max": lax.reduce_max,
          "min": lax.reduce_min, "and": lax.reduce_and, "or": lax.reduce_or}


def gen_reduce():
    F = "reduce.golden"
    rng = rng_for("reduce")

    def red(name, kind, x, axes, tol=None):
        dt = tname(x.dtype)
        if tol is None:
            if kind in ("max", "min", "and", "or") or dt not in FLOATS:
                tol = "exact"
            else:
                tol = TOL_SUM[dt]
        single(F, "reduce/%s/%s" % (dt, name), "reduce",
               lambda a: REDUCE[kind](a, tuple(axes)), [x],
               attrs=[("kind", kind), ("axes", list(axes))], tol=tol)

    for kind in ("sum", "prod", "max", "min"):
        for dt in ("f32", "f64", "f16", "bf16", "i32", "i64", "u8", "i8", "u32"):
            if dt in FLOATS:
                if kind == "prod":
                    x = arr(rng.uniform(0.6, 1.5, (3, 4, 5)) * np.where(rng.integers(0, 2, (3, 4, 5)), 1, -1), dt)
                elif kind == "sum" and dt in ("f16", "bf16"):
                    x = rand_float(rng, dt, (3, 4, 5), 0.5, 2.0)
                else:
                    x = rand_float(rng, dt, (3, 4, 5))
            else:
                if kind == "prod":
                    x = rand_int(rng, dt, (3, 4, 5), -3 if dt in SINTS else 0, 3)
                else:
                    x = rand_int(rng, dt, (3, 4, 5))
            red("%s_axis1" % kind, kind, x, [1])
            if dt in ("f32", "i32"):
                red("%s_axes02" % kind, kind, x, [0, 2])
                red("%s_all" % kind, kind, x, [0, 1, 2])
                red("%s_none" % kind, kind, x, [])
                red("%s_axis0_2d" % kind, kind, x[0], [0])
    # empty reductions give the identity
    for kind in ("sum", "prod", "max", "min"):
        for dt in ("f32", "i32", "u8", "f64", "bf16", "i8"):
            x = arr(np.zeros((0, 4)), dt)
            red("%s_empty" % kind, kind, x, [0])
        red("%s_empty_all" % kind, kind, arr(np.zeros((2, 0)), "f32"), [0, 1])
        red("%s_empty_keep" % kind, kind, arr(np.zeros((0, 4)), "f32"), [1])
    # NaN propagation
    xn = arr([[1.0, NAN, 3.0], [-INF, 2.0, INF], [NAN, NAN, 0.5]], "f32")
    for kind in ("max", "min", "sum", "prod"):
        red("%s_nan" % kind, kind, xn, [1], tol=(1e-6, 0))
        red("%s_nan_all" % kind, kind, xn, [0, 1], tol=(1e-6, 0))
    red("max_inf", "max", arr([[-INF, -INF], [-INF, 1.0]], "f32"), [1])
    red("min_inf", "min", arr([[INF, INF], [INF, -1.0]], "f32"), [0])
    red("sum_wrap", "sum", arr([[2147483647, 1], [-2147483648, -1]], "i32"), [1])
    red("sum_wrap", "sum", arr([200, 100, 10], "u8"), [0])
    red("prod_wrap", "prod", arr([16, 16, 3], "i8"), [0])
    # bool and/or
    for kind in ("and", "or"):
        b = rand_bool(rng, (3, 4, 2))
        b[1] = True if kind == "and" else False
        red("%s_axis1" % kind, kind, b, [1])
        red("%s_axes02" % kind, kind, b, [0, 2])
        red("%s_all" % kind, kind, b, [0, 1, 2])
        red("%s_empty" % kind, kind, np.zeros((0, 3), np.bool_), [0])
        red("%s_rows" % kind, kind, np.array([[True, True], [True, False], [False, False]]), [1])
    red("sum_scalar_none", "sum", arr(2.0, "f32"), [])

    # argmax / argmin
    def am(name, op, x, axis, idt):
        fn = lax.argmax if op == "argmax" else lax.argmin
        single(F, "%s/%s/%s" % (op, tname(x.dtype), name), op,
               lambda a: fn(a, axis, DT[idt]), [x], attrs=[("axis", axis)])

    for op in ("argmax", "argmin"):
        x = rand_float(rng, "f32", (3, 4, 5))
        am("axis0_i32", op, x, 0, "i32")
        am("axis1_i64", op, x, 1, "i64")
        am("axis2_i32", op, x, 2, "i32")
        xt = arr([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0], [-5.0, 0.0, -5.0, 0.0]], "f32")
        am("ties_i32", op, xt, 1, "i32")
        am("ties_axis0_i64", op, xt, 0, "i64")
        xn = arr([[1.0, NAN, 3.0, NAN], [NAN, 2.0, INF, 1.0], [-INF, 0.0, NAN, 5.0],
                  [INF, -INF, 1.0, 1.0]], "f32")
        am("nan_axis1", op, xn, 1, "i32")
        am("nan_axis0", op, xn, 0, "i64")
        am("inf", op, arr([[-INF, -INF, -INF], [INF, INF, INF]], "f32"), 1, "i32")
        xi = rand_int(rng, "i32", (4, 6), -3, 3)
        am("ties_axis1", op, xi, 1, "i32")
        am("axis0_i64", op, xi, 0, "i64")
        am("basic", op, rand_int(rng, "u8", (7,)), 0, "i32")
        am("basic", op, rand_int(rng, "i8", (2, 5), -2, 2), 1, "i64")
        am("basic", op, rand_float(rng, "bf16", (3, 4), -2, 2), 1, "i32")
        am("basic", op, rand_float(rng, "f64", (5, 2)), 0, "i32")
        am("basic", op, rand_float(rng, "f16", (6,)), 0, "i64")
        am("empty_other", op, rand_float(rng, "f32", (0, 3)), 1, "i32")
        am("nan_f64", op, arr([2.0, NAN, NAN, 7.0], "f64"), 0, "i32")
        am("i64_operand", op, rand_int(rng, "i64", (3, 3)), 1, "i64")
        am("u32_operand", op, rand_int(rng, "u32", (5,)), 0, "i32")


# ============================================================================
# dot.golden
# ============================================================================

def gen_dot():
    F = "dot.golden"
    rng = rng_for("dot")

    def dg(name, a, b, lb, rb, lc, rc, pref=None, tol=None):
        dn = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
        out_dt = tname(pref) if pref is not None else tname(a.dtype)
        if tol is None:
            tol = TOL_SUM.get(out_dt, "exact")
            if out_dt == "f64" and tname(a.dtype) != "f64":
                tol = (1e-12, 1e-13)
        single(F, "dot_general/" + name, "dot_general",
               lambda x, y: lax.dot_general(x, y, dn, precision=lax.Precision.HIGHEST,
                                            preferred_element_type=pref),
               [a, b], attrs=[("lhs_batch", list(lb)), ("rhs_batch", list(rb)),
                              ("lhs_contract", list(lc)), ("rhs_contract", list(rc))], tol=tol)

    f = lambda s, dt="f32": rand_float(rng, dt, s, -1, 1)
    dg("f32/matmul", f((3, 4)), f((4, 5)), [], [], [1], [0])
    dg("f32/matmul_big", f((8, 16)), f((16, 7)), [], [], [1], [0])
    dg("f32/batched", f((2, 3, 4)), f((2, 4, 5)), [0], [0], [2], [1])
    dg("f32/two_contract", f((2, 3, 4)), f((3, 4, 5)), [], [], [1, 2], [0, 1])
    dg("f32/vector_dot", f((6,)), f((6,)), [], [], [0], [0])
    dg("f32/matvec", f((3, 6)), f((6,)), [], [], [1], [0])
    dg("f32/vecmat", f((6,)), f((6, 2)), [], [], [0], [0])
    dg("f32/outer", f((3,)), f((4,)), [], [], [], [])
    dg("f32/lhs_transposed", f((4, 3)), f((4, 5)), [], [], [0], [0])
    dg("f32/rhs_transposed", f((3, 4)), f((5, 4)), [], [], [1], [1])
    dg("f32/batch_not_leading", f((3, 2, 4)), f((4, 5, 2)), [1], [2], [2], [0])
    dg("f32/two_batch", f((2, 3, 2, 4)), f((3, 2, 4, 2)), [0, 1], [1, 0], [3], [2])
    dg("f32/empty_contract", f((3, 0)), f((0, 4)), [], [], [1], [0])
    dg("f32/empty_free", f((0, 3)), f((3, 4)), [], [], [1], [0])
    dg("f32/batched_multi_contract", f((2, 3, 2, 4)), f((2, 4, 2, 5)), [0], [0], [3, 2], [1, 2])
    dg("f32_f64/matmul", f((3, 4)), f((4, 2)), [], [], [1], [0], pref=np.float64)
    dg("f64/batched", f((2, 3, 4), "f64"), f((2, 4, 3), "f64"), [0], [0], [2], [1])
    dg("i32/matmul", rand_int(rng, "i32", (3, 4), -50, 50), rand_int(rng, "i32", (4, 2), -50, 50),
       [], [], [1], [0])
    dg("i32/wrap", arr([[2147483647, 2], [65536, 1]], "i32"), arr([[2, 0], [65536, 3]], "i32"),
       [], [], [1], [0])
    dg("i8_i32/matmul", rand_int(rng, "i8", (3, 5)), rand_int(rng, "i8", (5, 2)), [], [], [1], [0],
       pref=np.int32)
    dg("i64/batched", rand_int(rng, "i64", (2, 2, 3), -9, 9), rand_int(rng, "i64", (2, 3, 2), -9, 9),
       [0], [0], [2], [1])
    dg("u8_u32/matmul", rand_int(rng, "u8", (2, 3)), rand_int(rng, "u8", (3, 2)), [], [], [1], [0],
       pref=np.uint32)
    dg("bf16_f32/matmul", f((4, 8), "bf16"), f((8, 3), "bf16"), [], [], [1], [0], pref=np.float32,
       tol=(1e-5, 1e-6))
    dg("bf16/matmul", f((4, 8), "bf16"), f((8, 3), "bf16"), [], [], [1], [0], tol=(1e-2, 1e-2))
    dg("f16/matmul", f((3, 4), "f16"), f((4, 3), "f16"), [], [], [1], [0], tol=(5e-3, 2e-3))
    dg("f16_f32/matmul", f((3, 4), "f16"), f((4, 3), "f16"), [], [], [1], [0], pref=np.float32)
    dg("f32/scalar_result_batched", f((3, 5)), f((3, 5)), [0], [0], [1], [1])
    dg("f32/special", arr([[1.0, INF], [NAN, 2.0]], "f32"), arr([[1.0, 0.0], [2.0, 1.0]], "f32"),
       [], [], [1], [0], tol=(1e-6, 0))


# ============================================================================
# conv.golden
# ============================================================================

def gen_conv():
    F = "conv.golden"
    rng = rng_for("conv")

    def cv(name, lhs_shape, rhs_shape, idims, kdims, odims, stride=None, pads=None, ld=None,
           rd=None, fg=1, bg=1, dt="f32", pref=None, tol=None):
        ns = len(idims) - 2
        stride = stride or [1] * ns
        pads = pads or [(0, 0)] * ns
        ld = ld or [1] * ns
        rd = rd or [1] * ns
        a = rand_float(rng, dt, lhs_shape, -1, 1)
        b = rand_float(rng, dt, rhs_shape, -1, 1)
        dn = lax.ConvDimensionNumbers(tuple(idims), tuple(kdims), tuple(odims))
        out_dt = tname(pref) if pref is not None else dt
        if tol is None:
            tol = TOL_SUM[out_dt]
        single(F, "convolution/" + name, "convolution",
               lambda x, y: lax.conv_general_dilated(
                   x, y, stride, [tuple(p) for p in pads], ld, rd, dn, fg, bg,
                   precision=lax.Precision.HIGHEST, preferred_element_type=pref),
               [a, b],
               attrs=[("stride", list(stride)), ("pad_low", [p[0] for p in pads]),
                      ("pad_high", [p[1] for p in pads]), ("lhs_dilation", list(ld)),
                      ("rhs_dilation", list(rd)), ("feature_groups", fg), ("batch_groups", bg),
                      ("input_dims", list(idims)), ("kernel_dims", list(kdims)),
                      ("output_dims", list(odims))], tol=tol)

    N1 = ([0, 1, 2], [0, 1, 2], [0, 1, 2])
    cv("f32/1d", (2, 3, 10), (4, 3, 3), *N1)
    cv("f32/1d_stride_pad", (2, 3, 10), (4, 3, 3), *N1, stride=[2], pads=[(1, 2)])
    cv("f32/1d_nwc", (2, 9, 3), (3, 3, 4), [0, 2, 1], [2, 1, 0], [0, 2, 1], pads=[(2, 0)])
    cv("f32/1d_lhs_dilation", (1, 2, 5), (3, 2, 3), *N1, ld=[2], pads=[(2, 2)])
    cv("f32/1d_rhs_dilation", (1, 2, 12), (2, 2, 3), *N1, rd=[3])
    N2 = ([0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3])
    NHWC = ([0, 3, 1, 2], [3, 2, 0, 1], [0, 3, 1, 2])  # lhs NHWC, kernel HWIO, out NHWC
    cv("f32/2d_nchw", (2, 3, 6, 6), (4, 3, 3, 3), *N2)
    cv("f32/2d_nchw_stride_pad", (2, 3, 6, 7), (4, 3, 3, 3), *N2, stride=[2, 1], pads=[(1, 1), (0, 2)])
    cv("f32/2d_nhwc", (2, 6, 7, 3), (3, 3, 3, 4), *NHWC)
    cv("f32/2d_nhwc_same", (1, 5, 5, 2), (3, 3, 2, 3), *NHWC, pads=[(1, 1), (1, 1)])
    cv("f32/2d_nhwc_stride2", (2, 7, 8, 3), (3, 3, 3, 2), *NHWC, stride=[2, 2], pads=[(1, 1), (0, 1)])
    cv("f32/2d_lhs_dilation", (1, 2, 4, 4), (3, 2, 3, 3), *N2, ld=[2, 2], pads=[(2, 2), (1, 2)])
    cv("f32/2d_rhs_dilation", (1, 2, 8, 7), (2, 2, 3, 2), *N2, rd=[2, 3], pads=[(1, 1), (0, 0)])
    cv("f32/2d_all_dilations", (1, 1, 5, 5), (2, 1, 2, 2), *N2, stride=[2, 1], ld=[2, 1], rd=[1, 2],
       pads=[(1, 0), (2, 1)])
    cv("f32/2d_feature_groups2", (2, 4, 5, 5), (6, 2, 3, 3), *N2, fg=2)
    cv("f32/2d_depthwise", (1, 5, 5, 3), (3, 3, 1, 6), *NHWC, fg=3, pads=[(1, 1), (1, 1)])
    cv("f32/2d_batch_groups2", (4, 3, 5, 5), (4, 3, 3, 3), *N2, bg=2)
    cv("f32/1d_batch_groups2_nwc", (2, 6, 2), (3, 2, 4), [0, 2, 1], [2, 1, 0], [0, 2, 1], bg=2)
    cv("f32/3d", (1, 2, 4, 5, 4), (3, 2, 2, 3, 2), [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    cv("f32/3d_ndhwc_stride", (1, 5, 4, 6, 2), (2, 2, 3, 2, 3), [0, 4, 1, 2, 3], [4, 3, 0, 1, 2],
       [0, 4, 1, 2, 3], stride=[2, 1, 2], pads=[(1, 0), (0, 1), (1, 1)])
    cv("f32/2d_odd_layout", (3, 4, 2, 2), (2, 2, 2, 3), [2, 3, 0, 1], [3, 2, 0, 1], [1, 0, 2, 3])
    cv("f32/2d_1x1_stride3", (1, 2, 7, 7), (3, 2, 1, 1), *N2, stride=[3, 3], pads=[(0, 2), (0, 2)])
    cv("f32/0d", (3, 4), (5, 4), [0, 1], [0, 1], [0, 1])
    cv("f64/2d", (1, 2, 4, 4), (2, 2, 2, 2), *N2, dt="f64", pads=[(1, 0), (0, 1)])
    cv("bf16_f32/2d", (1, 2, 4, 4), (2, 2, 2, 2), *N2, dt="bf16", pref=np.float32)
    cv("f16/1d", (1, 2, 6), (2, 2, 3), *N1, dt="f16", tol=(5e-3, 2e-3))
    cv("f32/2d_kernel_bigger_than_input_padded", (1, 1, 2, 2), (1, 1, 3, 3), *N2,
       pads=[(1, 1), (2, 2)])


# ============================================================================
# gather_scatter.golden
# ============================================================================

CLIP = lax.GatherScatterMode.CLIP
DROP = lax.GatherScatterMode.FILL_OR_DROP


def gen_gather_scatter():
    F = "gather_scatter.golden"
    rng = rng_for("gather")

    def ga(name, operand, indices, offset_dims, collapsed, sim, ivd, sizes):
        """IR indices may put the index vector at dim ivd; lax wants it last."""
        def fn(op, idx):
            idx = np.asarray(idx)
            if ivd == idx.ndim:
                idx = idx[..., None]
            else:
                idx = np.moveaxis(idx, ivd, -1)
            dn = lax.GatherDimensionNumbers(tuple(offset_dims), tuple(collapsed), tuple(sim))
            return lax.gather(op, idx, dn, tuple(sizes), mode=CLIP)
        single(F, "gather/" + name, "gather", fn, [operand, indices],
               attrs=[("offset_dims", list(offset_dims)), ("collapsed_slice_dims", list(collapsed)),
                      ("start_index_map", list(sim)), ("index_vector_dim", ivd),
                      ("slice_sizes", list(sizes))])

    emb = rand_float(rng, "f32", (10, 4))
    ga("f32/embedding", emb, arr([[3], [0], [9], [3], [5]], "i32"), [1], [0], [0], 1, [1, 4])
    ga("f32/embedding_seq", emb, rand_int(rng, "i32", (2, 3, 1), 0, 9), [2], [0], [0], 2, [1, 4])
    ga("f32/embedding_clamped", emb, arr([[12], [-3], [10], [9]], "i32"), [1], [0], [0], 1, [1, 4])
    ga("f32/embedding_implicit_ivd", emb, arr([1, 8, 2], "i32"), [1], [0], [0], 1, [1, 4])
    ga("f32/embedding_i64", emb, arr([[7], [7], [-1], [100]], "i64"), [1], [0], [0], 1, [1, 4])
    ga("i32/embedding_u32", rand_int(rng, "i32", (5, 3)), arr([[4], [0], [4000000000]], "u32"),
       [1], [0], [0], 1, [1, 3])
    # take_along_axis (axis 1) of a [3,5] array with [3,2] indices
    x = rand_float(rng, "f32", (3, 5))
    cols = np.array([[4, 0], [2, 2], [1, 7]])
    rows = np.broadcast_to(np.arange(3)[:, None], (3, 2))
    ga("f32/take_along_axis", x, np.stack([rows, cols], -1).astype(np.int32), [], [0, 1], [0, 1], 2,
       [1, 1])
    # take_along_axis on axis 0
    rows0 = np.array([[2, 0, 1, 1, 0], [0, 0, 2, -1, 5]])
    cols0 = np.broadcast_to(np.arange(5)[None, :], (2, 5))
    ga("f32/take_along_axis0", x, np.stack([rows0, cols0], -1).astype(np.int32), [], [0, 1], [0, 1], 2,
       [1, 1])
    # general multi-dim
    op3 = rand_float(rng, "f32", (4, 5, 6))
    ga("f32/window_no_collapse", op3, arr([[0, 1], [3, 4], [2, 0]], "i32"), [1, 2, 3], [], [0, 2], 1,
       [2, 3, 2])
    ga("f32/partial_collapse", op3, arr([[1, 2], [3, 0]], "i32"), [1, 2], [0], [0, 1], 1, [1, 2, 6])
    ga("f32/permuted_map", op3, arr([[5, 1], [0, 3], [2, 2]], "i32"), [1, 2], [1], [2, 1], 1, [2, 1, 3])
    ga("f32/ivd0", op3, arr([[1, 3, 0], [2, 4, 1]], "i32"), [1, 2], [0], [0, 1], 0, [1, 2, 6])
    ga("f32/clamped_window", op3, arr([[3, 4], [-2, 9], [100, -100]], "i32"), [1, 2, 3], [], [0, 1], 1,
       [2, 3, 6])
    ga("f32/offset_first", rand_float(rng, "f32", (5, 4)), arr([[2], [0], [4]], "i32"), [0], [1], [1], 1,
       [5, 1])
    ga("f32/batch_index_2d", op3, rand_int(rng, "i32", (2, 2, 3), 0, 3), [2], [0, 1], [0, 1, 2], 2,
       [1, 1, 2])
    ga("bool/embedding", rand_bool(rng, (4, 3)), arr([[1], [3]], "i32"), [1], [0], [0], 1, [1, 3])
    ga("bf16/embedding", rand_float(rng, "bf16", (4, 2)), arr([[1], [3], [0]], "i32"), [1], [0], [0], 1,
       [1, 2])
    ga("f32/scalar_index", emb, arr([6], "i32"), [0], [0], [0], 0, [1, 4])
    ga("f32/empty_indices", emb, arr(np.zeros((0, 1)), "i32"), [1], [0], [0], 1, [1, 4])

    # scatter
    def sc(name, kind, operand, indices, updates, uwd, iwd, sdod, ivd, tol="exact"):
        fns = {"replace": lax.scatter, "add": lax.scatter_add, "mul": lax.scatter_mul,
               "max": lax.scatter_max, "min": lax.scatter_min}

        def fn(op, idx, upd):
            idx = np.asarray(idx)
            if ivd == idx.ndim:
                idx = idx[..., None]
            else:
                idx = np.moveaxis(idx, ivd, -1)
            dn = lax.ScatterDimensionNumbers(tuple(uwd), tuple(iwd), tuple(sdod))
            return fns[kind](op, idx, upd, dn, mode=DROP)
        single(F, "scatter/" + name, "scatter", fn, [operand, indices, updates],
               attrs=[("update_window_dims", list(uwd)), ("inserted_window_dims", list(iwd)),
                      ("scatter_dims_to_operand_dims", list(sdod)), ("index_vector_dim", ivd),
                      ("kind", kind)], tol=tol)

    rng = rng_for("scatter")
    idx_dup = arr([[1], [4], [1], [0], [1]], "i32")
    sc("f32/add_embedding_grad", "add", arr(np.zeros((6, 3)), "f32"), idx_dup,
       rand_float(rng, "f32", (5, 3)), [1], [0], [0], 1, tol=TOL_SUM["f32"])
    sc("f32/add_nonzero_operand", "add", rand_float(rng, "f32", (6, 3)), idx_dup,
       rand_float(rng, "f32", (5, 3)), [1], [0], [0], 1, tol=TOL_SUM["f32"])
    sc("f32/replace_unique", "replace", rand_float(rng, "f32", (6, 3)), arr([[5], [0], [2]], "i32"),
       rand_float(rng, "f32", (3, 3)), [1], [0], [0], 1)
    for kind in ("max", "min", "mul"):
        sc("f32/%s_dup" % kind, kind, rand_float(rng, "f32", (5, 2)), arr([[2], [0], [2], [2]], "i32"),
           rand_float(rng, "f32", (4, 2)), [1], [0], [0], 1,
           tol="exact" if kind != "mul" else TOL_ARITH["f32"])
        sc("i32/%s_dup" % kind, kind, rand_int(rng, "i32", (5,), -9, 9), arr([[1], [1], [3]], "i32"),
           rand_int(rng, "i32", (3,), -9, 9), [], [0], [0], 1)
    sc("f32/add_out_of_range_dropped", "add", rand_float(rng, "f32", (6, 3)),
       arr([[6], [-1], [2], [100]], "i32"), rand_float(rng, "f32", (4, 3)), [1], [0], [0], 1,
       tol=TOL_ARITH["f32"])
    sc("f32/replace_out_of_range_dropped", "replace", rand_float(rng, "f32", (6, 3)),
       arr([[7], [3], [-2]], "i64"), rand_float(rng, "f32", (3, 3)), [1], [0], [0], 1)
    # window partially out of bounds -> whole window skipped
    sc("f32/add_window_partially_oob", "add", arr(np.zeros((4, 6)), "f32"),
       arr([[0, 0], [3, 2], [2, 4], [1, 5]], "i32"), arr(np.ones((4, 2, 2)), "f32"),
       [1, 2], [], [0, 1], 1, tol=TOL_ARITH["f32"])
    sc("f32/add_full_coords", "add", rand_float(rng, "f32", (4, 5)),
       arr([[0, 1], [3, 4], [0, 1], [2, 2]], "i32"), rand_float(rng, "f32", (4,)), [], [0, 1], [0, 1], 1,
       tol=TOL_ARITH["f32"])
    sc("f32/replace_window", "replace", rand_float(rng, "f32", (4, 6)), arr([[0, 0], [2, 3]], "i32"),
       rand_float(rng, "f32", (2, 2, 3)), [1, 2], [], [0, 1], 1)
    sc("f32/add_ivd0", "add", arr(np.zeros((3, 4)), "f32"), arr([[0, 2, 0], [1, 3, 1]], "i32"),
       rand_float(rng, "f32", (3,)), [], [0, 1], [0, 1], 0, tol=TOL_ARITH["f32"])
    sc("f32/add_implicit_ivd", "add", arr(np.zeros((5, 2)), "f32"), arr([4, 0, 4, 9], "i32"),
       rand_float(rng, "f32", (4, 2)), [1], [0], [0], 1, tol=TOL_ARITH["f32"])
    sc("f32/add_middle_dim", "add", arr(np.zeros((2, 5, 3)), "f32"), arr([[1], [4], [1]], "i32"),
       rand_float(rng, "f32", (2, 3, 3)), [0, 2], [1], [1], 1, tol=TOL_ARITH["f32"])
    sc("f32/add_batched_indices", "add", arr(np.zeros((4, 2)), "f32"),
       rand_int(rng, "i32", (2, 3, 1), 0, 3), rand_float(rng, "f32", (2, 3, 2)), [2], [0], [0], 2,
       tol=TOL_SUM["f32"])
    sc("i32/add_dup", "add", arr(np.zeros((4,)), "i32"), arr([[0], [3], [3], [3], [1]], "i32"),
       rand_int(rng, "i32", (5,), -100, 100), [], [0], [0], 1)
    sc("i64/add_dup", "add", rand_int(rng, "i64", (3, 2), -5, 5), arr([[2], [2]], "i32"),
       rand_int(rng, "i64", (2, 2), -5, 5), [1], [0], [0], 1)
    sc("u8/add_wrap", "add", arr([250, 1, 2], "u8"), arr([[0], [0]], "i32"), arr([3, 10], "u8"),
       [], [0], [0], 1)
    sc("f64/add_dup", "add", arr(np.zeros((3, 2)), "f64"), arr([[1], [1], [0]], "i32"),
       rand_float(rng, "f64", (3, 2)), [1], [0], [0], 1, tol=TOL_SUM["f64"])
    sc("f16/add", "add", rand_float(rng, "f16", (3, 2)), arr([[1], [2]], "i32"),
       rand_float(rng, "f16", (2, 2)), [1], [0], [0], 1, tol=TOL_ARITH["f16"])
    sc("bool/replace", "replace", np.zeros((5,), np.bool_), arr([[1], [3]], "i32"),
       np.array([True, True]), [], [0], [0], 1)
    sc("f32/max_nan", "max", arr([1.0, 2.0, 3.0], "f32"), arr([[0], [1], [1]], "i32"),
       arr([NAN, 5.0, 1.0], "f32"), [], [0], [0], 1, tol=(0, 0))
    sc("f32/add_empty_updates", "add", rand_float(rng, "f32", (3, 2)), arr(np.zeros((0, 1)), "i32"),
       arr(np.zeros((0, 2)), "f32"), [1], [0], [0], 1)


# ============================================================================
# sort_scan.golden
# ============================================================================

def _desc_key(k):
    """A key whose ascending JAX order equals the descending order of k."""
    k = np.asarray(k)
    if k.dtype == np.bool_:
        return np.logical_not(k)
    if np.issubdtype(k.dtype, np.integer):
        return np.invert(k)
    # floats: map to signed ints in total order (-inf < ... < -0 < +0 < ... <
    # inf < NaN), then invert.  (Negating the float would not do: JAX's sort
    # comparator canonicalizes every NaN to +NaN, which always sorts last.)
    ity = {2: np.int16, 4: np.int32, 8: np.int64}[k.dtype.itemsize]
    i = k.view(ity)
    mag = np.array(np.iinfo(ity).max, ity)
    ordered = np.where(i < 0, i ^ mag, i).astype(ity)
    return np.invert(ordered)


def gen_sort_scan():
    F = "sort_scan.golden"
    rng = rng_for("sort")

    def so(name, ops, dim=0, num_keys=1, descending=False, stable=False):
        def fn(*xs):
            if descending:
                keys = [_desc_key(x) for x in xs[:num_keys]]
                res = lax.sort(tuple(keys) + tuple(xs), dimension=dim, is_stable=stable,
                               num_keys=num_keys)
                return list(res[num_keys:])
            return list(lax.sort(tuple(xs), dimension=dim, is_stable=stable, num_keys=num_keys))
        tol = (0, 0) if has_nan(*ops) else "exact"
        single(F, "sort/" + name, "sort", fn, ops,
               attrs=[("dim", dim), ("num_keys", num_keys), ("descending", descending),
                      ("stable", stable)], tol=tol)

    perm = lambda n: rng.permutation(n)
    so("f32/asc", [arr(perm(10) * 0.5 - 2, "f32")])
    so("f32/desc", [arr(perm(10) * 0.5 - 2, "f32")], descending=True)
    so("f32/asc_stable", [arr(perm(10) * 0.5 - 2, "f32")], stable=True)
    so("f32/desc_stable", [arr(perm(10) * 0.5 - 2, "f32")], descending=True, stable=True)
    sp = arr([3.0, NAN, -INF, 1.0, INF, -0.0, -2.0, NAN, 0.5], "f32")
    so("f32/asc_special", [sp])
    so("f32/desc_special", [sp], descending=True)
    # -0.0 and +0.0 together: JAX compares them equal, so only stable cases where
    # the input order already agrees with the -0 < +0 total order are emitted.
    so("f32/asc_signed_zero_stable", [arr([1.0, -0.0, -1.0, 0.0, -0.0, 0.0], "f32")], stable=True)
    so("f32/desc_signed_zero_stable", [arr([0.0, -1.0, 0.0, -0.0, 2.0, -0.0], "f32")],
       descending=True, stable=True)
    so("f64/asc_special", [arr([2.0, NAN, -INF, 0.25, INF, -3.0], "f64")])
    so("f16/asc", [arr(perm(8) - 3.5, "f16")])
    so("bf16/desc", [arr(perm(8) - 3.5, "bf16")], descending=True)
    for dt in ("i32", "i8", "u8", "u32", "i64", "i16"):
        x = rand_int(rng, dt, (9,))
        x[0] = np.iinfo(DT[dt]).min
        x[1] = np.iinfo(DT[dt]).max
        so("%s/asc" % dt, [x])
        so("%s/desc" % dt, [x.copy()], descending=True)
    so("i32/asc_dups", [rand_int(rng, "i32", (12,), -3, 3)])
    so("f32/2d_dim1", [rand_float(rng, "f32", (3, 6))], dim=1)
    so("f32/2d_dim0", [rand_float(rng, "f32", (5, 3))], dim=0)
    so("f32/3d_dim1_desc", [rand_float(rng, "f32", (2, 5, 3))], dim=1, descending=True)
    so("i32/3d_dim2", [rand_int(rng, "i32", (2, 2, 6), -50, 50)], dim=2)
    # multiple operands
    keys = arr([3.0, 1.0, 2.0, 1.0, 3.0, 0.0, 2.0, 1.0], "f32")
    iota = arr(np.arange(8), "i32")
    so("f32_i32/argsort_stable", [keys, iota], stable=True)
    so("f32_i32/argsort_stable_desc", [keys, iota], stable=True, descending=True)
    so("f32_i32/argsort_unique", [arr(perm(8), "f32"), iota])
    k1 = arr([2, 1, 2, 1, 2, 0, 1, 2], "i32")
    k2 = arr([0.5, 0.5, -1.0, 0.25, 0.5, 9.0, 0.5, -1.0], "f32")
    pay = rand_float(rng, "f32", (8,))
    so("i32_f32_f32/two_keys_stable", [k1, k2, pay], num_keys=2, stable=True)
    so("i32_f32_f32/two_keys_stable_desc", [k1, k2, pay], num_keys=2, stable=True, descending=True)
    so("i32_f32_f32/one_key_stable", [k1, k2, pay], num_keys=1, stable=True)
    so("i32_f32_f32/one_key_stable_desc", [k1, k2, pay], num_keys=1, stable=True, descending=True)
    so("u8_i64/two_keys_unique", [arr([1, 0, 1, 0, 2], "u8"), arr([5, 3, -1, 7, 0], "i64")], num_keys=2)
    so("f32_bool/2d_dim1_stable", [arr([[1, 0, 1, 0], [2, 2, -1, -1]], "f32"),
                                   np.array([[True, False, False, True], [False, True, True, False]])],
       dim=1, stable=True)
    so("f32_i32/2d_dim0_stable", [arr([[1, 0], [0, 0], [1, 1]], "f32"), arr([[0, 1], [2, 3], [4, 5]], "i32")],
       dim=0, stable=True)
    so("f32/empty", [arr(np.zeros((2, 0)), "f32")], dim=1)
    so("f32/single_elem", [arr([[4.0], [2.0]], "f32")], dim=1)
    so("f32/scalar_axis_len1", [arr([[4.0, 2.0]], "f32")], dim=0)

    # cumulative
    cum = {"sum": lax.cumsum, "prod": lax.cumprod, "max": lax.cummax, "min": lax.cummin}

    def cu(name, kind, x, axis, reverse, tol=None):
        dt = tname(x.dtype)
        if tol is None:
            if kind in ("max", "min") or dt not in FLOATS:
                tol = "exact"
            else:
                tol = TOL_SUM[dt]
        single(F, "cumulative/%s/%s" % (dt, name), "cumulative",
               lambda a: cum[kind](a, axis=axis, reverse=reverse), [x],
               attrs=[("kind", kind), ("axis", axis), ("reverse", reverse)], tol=tol)

    rng = rng_for("cumulative")
    for kind in cum:
        def fx(shape):
            if kind == "prod":
                return arr(rng.uniform(0.7, 1.4, shape) * np.where(rng.integers(0, 2, shape), 1, -1), "f32")
            return rand_float(rng, "f32", shape)
        ix = (lambda s: rand_int(rng, "i32", s, -3, 3)) if kind == "prod" else \
            (lambda s: rand_int(rng, "i32", s, -1000, 1000))
        cu("%s_axis0" % kind, kind, fx((4, 5)), 0, False)
        cu("%s_axis1_rev" % kind, kind, fx((4, 5)), 1, True)
        cu("%s_axis1" % kind, kind, fx((4, 5)), 1, False)
        cu("%s_axis0_rev" % kind, kind, fx((4, 5)), 0, True)
        cu("%s_axis1" % kind, kind, ix((3, 6)), 1, False)
        cu("%s_axis0_rev" % kind, kind, ix((3, 6)), 0, True)
        cu("%s_3d_axis1" % kind, kind, fx((2, 4, 3)), 1, False)
        cu("%s_1d" % kind, kind, arr(rng.uniform(0.5, 1.5, 9), "f64"), 0, False)
        cu("%s_1d_rev" % kind, kind, arr(rng.uniform(0.5, 1.5, 9), "f64"), 0, True)
        cu("%s_empty" % kind, kind, arr(np.zeros((0, 3)), "f32"), 0, False)
    cu("sum_wrap", "sum", arr([200, 100, 10, 255], "u8"), 0, False)
    cu("prod_wrap", "prod", arr([16, 16, 3, -1], "i8"), 0, False)
    cu("max_nan", "max", arr([1.0, NAN, 3.0, 0.0], "f32"), 0, False, tol=(0, 0))
    cu("min_nan_rev", "min", arr([1.0, NAN, -3.0, 0.0], "f32"), 0, True, tol=(0, 0))
    cu("sum_bf16", "sum", rand_float(rng, "bf16", (6,), 0.5, 2), 0, False)
    cu("sum_f16", "sum", rand_float(rng, "f16", (2, 5), 0.5, 2), 1, True)
    cu("max_u32", "max", rand_int(rng, "u32", (7,)), 0, False)
    cu("min_i64", "min", rand_int(rng, "i64", (7,)), 0, True)


# ============================================================================
# random.golden
# ============================================================================

def gen_random():
    F = "random.golden"
    rng = rng_for("threefry")

    def tf(name, k0, k1, x0, x1):
        single(F, "threefry2x32/" + name, "threefry2x32",
               lambda a, b, c, d: list(threefry2x32_p.bind(a, b, c, d)), [k0, k1, x0, x1])

    u = lambda v: arr(v, "u32")
    tf("known_answer", u(0x13198a2e), u(0x03707344), u(0x243f6a88), u(0x85a308d3))
    tf("zeros", u([0]), u([0]), u([0]), u([0]))
    tf("ones", u([0xffffffff] * 2), u([0xffffffff] * 2), u([0xffffffff] * 2), u([0xffffffff] * 2))
    # the counters JAX uses for random.bits on key(0) / key(42)
    for seed in (0, 42):
        n = 8
        k0 = u(np.full((n,), 0, np.uint32))
        k1 = u(np.full((n,), seed, np.uint32))
        tf("key%d_iota" % seed, k0, k1, u(np.arange(n)), u(np.arange(n, 2 * n)))
    for i, shape in enumerate([(5,), (2, 3), (2, 2, 3), (16,)]):
        k0 = rand_int(rng, "u32", shape)
        k1 = rand_int(rng, "u32", shape)
        x0 = rand_int(rng, "u32", shape)
        x1 = rand_int(rng, "u32", shape)
        tf("random_%d" % i, k0, k1, x0, x1)
    k = rand_int(rng, "u32", (2,))
    tf("same_key_counter", u([k[0]] * 6), u([k[1]] * 6), u(np.arange(6)), u(np.zeros(6)))
    tf("empty", u(np.zeros((0,))), u(np.zeros((0,))), u(np.zeros((0,))), u(np.zeros((0,))))


# ============================================================================
# control.golden
# ============================================================================

def raw_switch(index, branches, *args):
    """lax.switch without the index clamp: binds cond_p with the raw index,
    so XLA's out-of-range rule (any index outside [0, n) runs the last branch)
    applies."""
    jaxpr = jax.make_jaxpr(lambda i, *a: lax.switch(i, branches, *a))(index, *args)
    eqn = [e for e in jaxpr.eqns if e.primitive is cond_p][0]
    return cond_p.bind(np.asarray(index), *args, **eqn.params)


def gen_control():
    F = "control.golden"
    rng = rng_for("control")

    # ---- cond with a bool index (branch 0 = false)
    ir = """func @main(%p: bool[], %x: f32[3], %y: f32[3]) -> (f32[3]) {
  %0: f32[3] = cond %p, %x, %y
    branch (%1: f32[3], %2: f32[3]) {
      %3: f32[3] = sub %1, %2
      return %3
    }
    branch (%4: f32[3], %5: f32[3]) {
      %6: f32[3] = mul %4, %5
      return %6
    }
  return %0
}
"""
    x = rand_float(rng, "f32", (3,))
    y = rand_float(rng, "f32", (3,))
    for p in (False, True):
        program(F, "cond/bool/%s" % ("true" if p else "false"), ir,
                lambda p_, a, b: lax.cond(p_, lambda a, b: a * b, lambda a, b: a - b, a, b),
                [np.bool_(p), x, y], tol=TOL_ARITH["f32"])

    # ---- cond with an i32 index, 3 branches, two args and two results
    ir = """func @main(%i: i32[], %x: f32[2], %k: i32[]) -> (f32[2], i32[]) {
  %0: f32[2], %1: i32[] = cond %i, %x, %k
    branch (%2: f32[2], %3: i32[]) {
      %4: f32[2] = neg %2
      %5: i32[] = constant {value=[1]}
      %6: i32[] = add %3, %5
      return %4, %6
    }
    branch (%7: f32[2], %8: i32[]) {
      %9: f32[2] = add %7, %7
      %10: i32[] = mul %8, %8
      return %9, %10
    }
    branch (%11: f32[2], %12: i32[]) {
      %13: f32[] = constant {value=[0.5]}
      %14: f32[2] = broadcast_in_dim %13 {dims=[]}
      %15: f32[2] = mul %11, %14
      %16: i32[] = neg %12
      return %15, %16
    }
  return %0, %1
}
"""
    br = [lambda a, k: (-a, k + np.int32(1)),
          lambda a, k: (a + a, k * k),
          lambda a, k: (a * np.float32(0.5), -k)]
    x = rand_float(rng, "f32", (2,))
    for i in (0, 1, 2, 3, 7, -1, -100, 2147483647):
        program(F, "cond/i32/index_%s" % (str(i).replace("-", "neg")), ir,
                lambda i_, a, k: raw_switch(i_, br, a, k),
                [arr(i, "i32"), x, arr(7, "i32")], tol="exact")

    # ---- cond with two branches, i32 index; branches ignore an arg and use constants
    ir = """func @main(%i: i32[], %x: f32[2,2]) -> (f32[2,2], bool[]) {
  %0: f32[2,2], %1: bool[] = cond %i, %x
    branch (%2: f32[2,2]) {
      %3: f32[2,2] = constant {value=[1, 2, 3, 4]}
      %4: bool[] = constant {value=[false]}
      return %3, %4
    }
    branch (%5: f32[2,2]) {
      %6: f32[2,2] = transpose %5 {perm=[1, 0]}
      %7: bool[] = constant {value=[true]}
      return %6, %7
    }
  return %0, %1
}
"""
    def c1234(a):  # [[1, 2], [3, 4]] without a captured constant
        r = lax.broadcasted_iota(np.int32, (2, 2), 0) * np.int32(2) + \
            lax.broadcasted_iota(np.int32, (2, 2), 1) + np.int32(1)
        return lax.convert_element_type(r, np.float32)
    br2 = [lambda a: (c1234(a), np.bool_(False)),
           lambda a: (a.T, np.bool_(True))]
    x = rand_float(rng, "f32", (2, 2))
    for i in (0, 1, 5):
        program(F, "cond/i32_2branch/index_%d" % i, ir, lambda i_, a: raw_switch(i_, br2, a),
                [arr(i, "i32"), x])

    # ---- cond with no args
    ir = """func @main(%p: bool[]) -> (i32[]) {
  %0: i32[] = cond %p
    branch () {
      %1: i32[] = constant {value=[10]}
      return %1
    }
    branch () {
      %2: i32[] = constant {value=[20]}
      return %2
    }
  return %0
}
"""
    for p in (False, True):
        program(F, "cond/bool_noargs/%s" % ("true" if p else "false"), ir,
                lambda p_: lax.cond(p_, lambda: np.int32(20), lambda: np.int32(10)), [np.bool_(p)])

    # ---- while: the IR.md example
    ir = """func @main(%n: i32[]) -> (i32[], f32[]) {
  %0: i32[] = constant {value=[0]}
  %1: f32[] = constant {value=[1]}
  %2: i32[], %3: f32[] = while %n, %0, %1 {n_consts=1}
    cond (%4: i32[], %5: i32[], %6: f32[]) {
      %7: bool[] = compare %5, %4 {dir=lt}
      return %7
    }
    body (%8: i32[], %9: i32[], %10: f32[]) {
      %11: i32[] = constant {value=[1]}
      %12: i32[] = add %9, %11
      %13: f32[] = add %10, %10
      return %12, %13
    }
  return %2, %3
}
"""

    def ex(n):
        return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + np.int32(1), c[1] + c[1]),
                              (np.int32(0), np.float32(1)))
    for n in (5, 0, -3, 1, 20):
        program(F, "while/doubling/n_%s" % str(n).replace("-", "neg"), ir, ex, [arr(n, "i32")])

    # ---- while: sum of an array via dynamic_slice (one const, two carries)
    ir = """func @main(%x: f32[6]) -> (i32[], f32[]) {
  %0: i32[] = constant {value=[0]}
  %1: f32[] = constant {value=[0]}
  %2: i32[], %3: f32[] = while %x, %0, %1 {n_consts=1}
    cond (%4: f32[6], %5: i32[], %6: f32[]) {
      %7: i32[] = constant {value=[6]}
      %8: bool[] = compare %5, %7 {dir=lt}
      return %8
    }
    body (%9: f32[6], %10: i32[], %11: f32[]) {
      %12: f32[1] = dynamic_slice %9, %10 {sizes=[1]}
      %13: f32[] = reshape %12
      %14: f32[] = add %11, %13
      %15: i32[] = constant {value=[1]}
      %16: i32[] = add %10, %15
      return %16, %14
    }
  return %2, %3
}
"""

    def sumloop(x):
        def body(c):
            i, acc = c
            return i + np.int32(1), acc + lax.reshape(lax.dynamic_slice(x, (i,), (1,)), ())
        return lax.while_loop(lambda c: c[0] < 6, body, (np.int32(0), np.float32(0)))
    program(F, "while/array_sum", ir, sumloop, [rand_float(rng, "f32", (6,))], tol=TOL_SUM["f32"])

    # ---- while: two consts, three carries (affine recurrence with a step limit)
    ir = """func @main(%a: f32[3], %b: f32[3], %n: i32[], %x0: f32[3]) -> (i32[], f32[3], i32[2]) {
  %0: i32[] = constant {value=[0]}
  %1: i32[2] = constant {value=[1, -1]}
  %2: i32[], %3: f32[3], %4: i32[2] = while %a, %b, %n, %0, %x0, %1 {n_consts=3}
    cond (%5: f32[3], %6: f32[3], %7: i32[], %8: i32[], %9: f32[3], %10: i32[2]) {
      %11: bool[] = compare %8, %7 {dir=lt}
      return %11
    }
    body (%12: f32[3], %13: f32[3], %14: i32[], %15: i32[], %16: f32[3], %17: i32[2]) {
      %18: f32[3] = mul %16, %12
      %19: f32[3] = add %18, %13
      %20: i32[] = constant {value=[1]}
      %21: i32[] = add %15, %20
      %22: i32[2] = add %17, %17
      return %21, %19, %22
    }
  return %2, %3, %4
}
"""

    def affine(a, b, n, x0):
        def body(c):
            i, x, v = c
            return i + np.int32(1), x * a + b, v + v
        return lax.while_loop(lambda c: c[0] < n, body, (np.int32(0), x0, np.array([1, -1], np.int32)))
    a = rand_float(rng, "f32", (3,), -0.9, 0.9)
    b = rand_float(rng, "f32", (3,), -1, 1)
    x0 = rand_float(rng, "f32", (3,))
    for n in (0, 4, 12):
        program(F, "while/affine/n_%d" % n, ir, affine, [a, b, arr(n, "i32"), x0], tol=(1e-5, 1e-6))

    # ---- while with a cond nested in its body (Collatz step count)
    ir = """func @main(%n: i32[]) -> (i32[], i32[]) {
  %0: i32[] = constant {value=[0]}
  %1: i32[], %2: i32[] = while %n, %0 {n_consts=0}
    cond (%3: i32[], %4: i32[]) {
      %5: i32[] = constant {value=[1]}
      %6: bool[] = compare %3, %5 {dir=gt}
      return %6
    }
    body (%7: i32[], %8: i32[]) {
      %9: i32[] = constant {value=[2]}
      %10: i32[] = rem %7, %9
      %11: i32[] = constant {value=[0]}
      %12: bool[] = compare %10, %11 {dir=ne}
      %13: i32[] = cond %12, %7
        branch (%14: i32[]) {
          %15: i32[] = constant {value=[2]}
          %16: i32[] = div %14, %15
          return %16
        }
        branch (%17: i32[]) {
          %18: i32[] = constant {value=[3]}
          %19: i32[] = mul %17, %18
          %20: i32[] = constant {value=[1]}
          %21: i32[] = add %19, %20
          return %21
        }
      %22: i32[] = constant {value=[1]}
      %23: i32[] = add %8, %22
      return %13, %23
    }
  return %1, %2
}
"""

    def collatz(n):
        def body(c):
            m, s = c
            m2 = lax.cond(lax.rem(m, np.int32(2)) != 0, lambda v: v * np.int32(3) + np.int32(1),
                          lambda v: lax.div(v, np.int32(2)), m)
            return m2, s + np.int32(1)
        return lax.while_loop(lambda c: c[0] > 1, body, (n, np.int32(0)))
    for n in (27, 1, 6):
        program(F, "while/collatz_nested_cond/n_%d" % n, ir, collatz, [arr(n, "i32")])

    # ---- while whose carry is an array, no consts, loop on a reduce
    ir = """func @main(%x: f32[4]) -> (f32[4]) {
  %0: f32[4] = while %x {n_consts=0}
    cond (%1: f32[4]) {
      %2: f32[] = reduce %1 {kind=sum, axes=[0]}
      %3: f32[] = constant {value=[100]}
      %4: bool[] = compare %2, %3 {dir=lt}
      return %4
    }
    body (%5: f32[4]) {
      %6: f32[] = constant {value=[1.5]}
      %7: f32[4] = broadcast_in_dim %6 {dims=[]}
      %8: f32[4] = mul %5, %7
      return %8
    }
  return %0
}
"""

    def grow(x):
        return lax.while_loop(lambda v: lax.reduce_sum(v, (0,)) < np.float32(100),
                              lambda v: v * np.float32(1.5), x)
    program(F, "while/array_carry", ir, grow, [arr([1.0, 2.0, 0.5, 0.25], "f32")], tol=(1e-6, 0))
    program(F, "while/array_carry_zero_trips", ir, grow, [arr([100.0, 2.0, 0.5, 0.25], "f32")],
            tol="exact")


# ============================================================================
# window.golden: reduce_window, select_and_scatter, select_and_gather
# ============================================================================

def gen_window():
    from jax._src.lax import windowed_reductions as wr
    F = "window.golden"
    rng = rng_for("window")
    red_fn = {"sum": (lax.add, 0), "prod": (lax.mul, 1), "max": (lax.max, None),
              "min": (lax.min, None), "and": (lax.bitwise_and, None), "or": (lax.bitwise_or, None)}

    def ident(kind, dt):
        npdt = DT[dt]
        if kind in ("sum", "or"):
            return np.zeros((), npdt)
        if kind == "prod":
            return np.ones((), npdt)
        if kind == "and":
            return np.array(True if dt == "bool" else -1, npdt)
        if dt in FLOATS:
            return np.array(-np.inf if kind == "max" else np.inf, npdt)
        info = np.iinfo(npdt)
        return np.array(info.min if kind == "max" else info.max, npdt)

    def wattrs(kind, r, window, stride, base, wdil, pads):
        return [("kind", kind), ("window", list(window)), ("stride", list(stride or [1] * r)),
                ("base_dilation", list(base or [1] * r)), ("window_dilation", list(wdil or [1] * r)),
                ("pad_low", [p[0] for p in pads] if pads else [0] * r),
                ("pad_high", [p[1] for p in pads] if pads else [0] * r)]

    def rw(name, kind, x, window, stride=None, pads=None, base=None, wdil=None, tol=None):
        dt = tname(x.dtype)
        r = x.ndim
        if tol is None:
            tol = TOL_SUM[dt] if kind in ("sum", "prod") and dt in FLOATS else "exact"

        def fn(a):
            return lax.reduce_window(a, ident(kind, dt), red_fn[kind][0], tuple(window),
                                     tuple(stride or [1] * r), pads or [(0, 0)] * r,
                                     base_dilation=base and tuple(base), window_dilation=wdil and tuple(wdil))
        single(F, "reduce_window/%s/%s" % (dt, name), "reduce_window", fn, [x],
               attrs=wattrs(kind, r, window, stride, base, wdil, pads), tol=tol)

    # max pooling (NHWC and NCHW), average (sum) pooling with SAME padding
    rw("max_pool_nhwc", "max", rand_float(rng, "f32", (2, 6, 6, 3)), (1, 2, 2, 1), (1, 2, 2, 1))
    rw("max_pool_nchw_overlap", "max", rand_float(rng, "f32", (2, 3, 5, 5)), (1, 1, 3, 3), (1, 1, 2, 2),
       [(0, 0), (0, 0), (1, 1), (1, 1)])
    rw("sum_pool_same", "sum", rand_float(rng, "f32", (2, 5, 5, 3)), (1, 3, 3, 1), (1, 2, 2, 1),
       [(0, 0), (1, 1), (1, 1), (0, 0)])
    rw("sum_pool_same", "sum", rand_float(rng, "f64", (2, 5, 5, 3)), (1, 3, 3, 1), (1, 2, 2, 1),
       [(0, 0), (1, 1), (1, 1), (0, 0)])
    rw("max_pool", "max", rand_float(rng, "f16", (3, 7)), (2, 3), (1, 2))
    rw("max_pool", "max", rand_float(rng, "bf16", (3, 7)), (2, 3), (1, 2))
    rw("min_window", "min", rand_float(rng, "f32", (4, 6)), (2, 2), (2, 1), [(1, 0), (0, 1)])
    rw("prod_window", "prod", arr(rng.uniform(0.5, 1.5, (4, 5)), "f32"), (2, 2), (1, 1))
    # dilations, negative padding, windows bigger than the input
    rw("max_base_dilated", "max", rand_float(rng, "f32", (4, 5)), (2, 3), (1, 2), [(1, 0), (0, 2)],
       base=(2, 1), wdil=(1, 2))
    rw("sum_base_dilated", "sum", rand_float(rng, "f32", (3, 4)), (1, 3), (1, 1), [(0, 0), (1, 1)],
       base=(1, 2))
    rw("sum_window_dilated", "sum", rand_float(rng, "f32", (2, 9)), (1, 3), (1, 2), None, wdil=(1, 3))
    rw("max_negative_pad", "max", rand_float(rng, "f32", (5, 6)), (2, 2), (1, 2), [(-1, 0), (0, -1)])
    rw("sum_empty_result", "sum", rand_float(rng, "f32", (2, 3)), (1, 4), (1, 1))
    rw("sum_cumulative", "sum", rand_float(rng, "f32", (6,)), (6,), (1,), [(5, 0)])
    # integers and bool
    rw("sum_pool", "sum", rand_int(rng, "i32", (3, 6)), (2, 2), (1, 2), [(0, 1), (1, 0)])
    rw("max_pool", "max", rand_int(rng, "i32", (3, 6)), (2, 3), (1, 1))
    rw("min_pool_padded", "min", rand_int(rng, "u8", (4, 4)), (2, 2), (2, 2), [(1, 1), (0, 0)])
    rw("max_pool", "max", rand_int(rng, "i64", (5,)), (3,), (2,))
    rw("and_window", "and", rand_bool(rng, (3, 5)), (2, 2), (1, 1))
    rw("or_window", "or", rand_bool(rng, (3, 5)), (1, 3), (1, 2), [(0, 0), (1, 1)])
    # NaN propagates through max
    rw("max_nan", "max", arr([[1.0, NAN, 3.0, 0.0], [2.0, -1.0, INF, -INF]], "f32"), (2, 2), (1, 2))

    # select_and_scatter (max pooling's gradient) and select_and_gather (its transpose)
    def sas(name, kind, x, window, stride, pads=None):
        dt = tname(x.dtype)
        r = x.ndim
        pads = pads or [(0, 0)] * r
        sel = lax.ge_p if kind == "max" else lax.le_p
        out_shape = lax.reduce_window(x, ident(kind, dt), red_fn[kind][0], tuple(window), tuple(stride),
                                      pads).shape
        src = rand_float(rng, dt, out_shape)
        single(F, "select_and_scatter/%s/%s" % (dt, name), "select_and_scatter",
               lambda a, s: wr._select_and_scatter_add(s, a, sel, tuple(window), tuple(stride), tuple(pads)),
               [x, src], attrs=wattrs(kind, r, window, stride, None, None, pads),
               tol=TOL_SUM[dt])

    def sag(name, kind, x, window, stride, pads=None, base=None, wdil=None):
        dt = tname(x.dtype)
        r = x.ndim
        pads = pads or [(0, 0)] * r
        sel = lax.ge_p if kind == "max" else lax.le_p
        t = rand_float(rng, dt, x.shape)
        single(F, "select_and_gather/%s/%s" % (dt, name), "select_and_gather",
               lambda a, tt: wr._select_and_gather_add(tt, a, sel, tuple(window), tuple(stride), tuple(pads),
                                                       tuple(base or [1] * r), tuple(wdil or [1] * r)),
               [x, t], attrs=wattrs(kind, r, window, stride, base, wdil, pads))

    for dt in ("f32", "f64"):
        sas("max_pool_nhwc", "max", rand_float(rng, dt, (2, 4, 6, 2)), (1, 2, 2, 1), (1, 2, 2, 1))
        sas("max_overlap_padded", "max", rand_float(rng, dt, (2, 5, 5)), (1, 3, 3), (1, 2, 2),
            [(0, 0), (1, 1), (1, 1)])
        sas("min_overlap", "min", rand_float(rng, dt, (6, 5)), (3, 2), (1, 1))
        sag("max_pool_nhwc", "max", rand_float(rng, dt, (2, 4, 6, 2)), (1, 2, 2, 1), (1, 2, 2, 1))
        sag("max_overlap_padded", "max", rand_float(rng, dt, (2, 5, 5)), (1, 3, 3), (1, 2, 2),
            [(0, 0), (1, 1), (1, 1)])
        sag("min_dilated", "min", rand_float(rng, dt, (5, 7)), (2, 2), (1, 2), [(1, 0), (0, 1)],
            base=(2, 1), wdil=(1, 2))
    sas("max_ties_first", "max", arr([[1.0, 1.0, 0.0], [1.0, 0.5, 1.0]], "f32"), (2, 2), (1, 1))


# ============================================================================
# unsigned.golden: u16 and u64 through the ops that read integers' values
# (u64 values of 2^63 and more are where an int64 view goes wrong)
# ============================================================================

def gen_clz():
    # after every other elementwise case, so their random inputs stay as they were
    F = "elementwise.golden"
    for dt in INTS + ("u16", "u64"):
        info = np.iinfo(DT[dt])
        edge = [info.min, info.max, 0, 1, 2, info.max // 2 + 1, info.max // 3]
        if dt == "u64":
            x = np.concatenate([np.array(edge, np.uint64), rng_for("clz" + dt).integers(0, 2 ** 63, size=(6,), dtype=np.uint64)])
        else:
            x = np.concatenate([arr(edge, dt), rand_int(rng_for("clz" + dt), dt, (6,))])
        single(F, "clz/%s/basic" % dt, "clz", lax.clz, [x])


def gen_unsigned():
    F = "unsigned.golden"
    rng = rng_for("unsigned")
    TOP = 2 ** 64 - 1

    def u64(shape):
        v = rng.integers(0, 2 ** 63, size=shape, dtype=np.uint64) * np.uint64(2)
        v = v + rng.integers(0, 2, size=shape, dtype=np.uint64)
        flat = v.reshape(-1)
        for i, s in enumerate([0, 1, 2 ** 63 - 1, 2 ** 63, TOP, 5]):
            if i < flat.size:
                flat[(i * 7) % flat.size] = s
        return v

    def u16(shape):
        v = rng.integers(0, 2 ** 16, size=shape).astype(np.uint16)
        flat = v.reshape(-1)
        for i, s in enumerate([0, 1, 32767, 32768, 65535]):
            if i < flat.size:
                flat[(i * 5) % flat.size] = s
        return v

    gens = {"u16": u16, "u64": u64}
    binary = {"add": lax.add, "sub": lax.sub, "mul": lax.mul, "div": lax.div, "rem": lax.rem,
              "max": lax.max, "min": lax.min, "and": lax.bitwise_and, "or": lax.bitwise_or,
              "xor": lax.bitwise_xor, "shift_left": lax.shift_left,
              "shift_right_logical": lax.shift_right_logical,
              "shift_right_arithmetic": lax.shift_right_arithmetic}
    for dt, g in gens.items():
        bits = 16 if dt == "u16" else 64
        for name, fn in binary.items():
            x, y = g((3, 4)), g((3, 4))
            if name.startswith("shift"):
                y = (y % np.array(bits + 3, DT[dt])).astype(DT[dt])
            if name in ("div", "rem"):
                y.reshape(-1)[3] = 0  # x / 0 = all ones, x % 0 = x
                y.reshape(-1)[5] = 3
            single(F, "%s/%s/basic" % (name, dt), name, fn, [x, y])
        single(F, "popcnt/%s/basic" % dt, "popcnt", lax.population_count, [g((2, 5))])
        single(F, "not/%s/basic" % dt, "not", lax.bitwise_not, [g((2, 5))])
        for d, fn in (("lt", lax.lt), ("le", lax.le), ("gt", lax.gt), ("ge", lax.ge), ("eq", lax.eq)):
            x, y = g((3, 4)), g((3, 4))
            y.reshape(-1)[::3] = x.reshape(-1)[::3]
            single(F, "compare/%s/%s" % (dt, d), "compare", fn, [x, y], attrs=[("dir", d)])
        single(F, "clamp/%s/basic" % dt, "clamp", lambda lo, x, hi: lax.clamp(lo, x, hi),
               [np.array(100, DT[dt]), g((8,)), np.array(2 ** (bits - 1) + 7, DT[dt])])
        for to in ("f32", "f64", "i64", "i32", "u8", "u16", "u64", "bool"):
            if to == dt:
                continue
            single(F, "convert/%s_to_%s/basic" % (dt, to), "convert",
                   lambda a, to=to: lax.convert_element_type(a, DT[to]), [g((2, 6))])
        fsrc = arr([0.0, 1.5, -3.0, 65535.9, 70000.0, 1.8e19, 2.0e19, 9.3e18, NAN, INF, -INF, 4e9], "f64")
        single(F, "convert/f64_to_%s/saturate" % dt, "convert", lambda a: lax.convert_element_type(a, DT[dt]), [fsrc])
        single(F, "convert/i64_to_%s/wrap" % dt, "convert", lambda a: lax.convert_element_type(a, DT[dt]),
               [arr([-1, 0, 5, -(2 ** 63), 2 ** 63 - 1, 65536], "i64")])
        for kind, fn in (("max", lax.reduce_max), ("min", lax.reduce_min), ("sum", lax.reduce_sum)):
            single(F, "reduce/%s/%s_axis1" % (dt, kind), "reduce", lambda a, fn=fn: fn(a, (1,)), [g((3, 5))],
                   attrs=[("kind", kind), ("axes", [1])])
        single(F, "argmax/%s/axis1" % dt, "argmax", lambda a: lax.argmax(a, 1, np.int32), [g((3, 5))],
               attrs=[("axis", 1)])
        single(F, "argmin/%s/axis0" % dt, "argmin", lambda a: lax.argmin(a, 0, np.int32), [g((3, 5))],
               attrs=[("axis", 0)])
        single(F, "cumulative/%s/max_axis1" % dt, "cumulative", lambda a: lax.cummax(a, axis=1), [g((2, 6))],
               attrs=[("kind", "max"), ("axis", 1), ("reverse", False)])
        single(F, "sort/%s/dim1" % dt, "sort", lambda a: lax.sort(a, dimension=1, is_stable=True), [g((3, 6))],
               attrs=[("dim", 1), ("num_keys", 1), ("descending", False), ("stable", True)])
        single(F, "reduce_window/%s/max_pool" % dt, "reduce_window",
               lambda a: lax.reduce_window(a, np.array(0, DT[dt]), lax.max, (2, 2), (1, 2), "VALID"),
               [g((3, 6))], attrs=[("kind", "max"), ("window", [2, 2]), ("stride", [1, 2]),
                                    ("base_dilation", [1, 1]), ("window_dilation", [1, 1]),
                                    ("pad_low", [0, 0]), ("pad_high", [0, 0])])
        single(F, "bitcast_convert/%s/signed" % dt, "bitcast_convert",
               lambda a: lax.bitcast_convert_type(a, DT["i16" if dt == "u16" else "i64"]), [g((5,))])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    gen_elementwise()
    gen_compare_select()
    gen_convert()
    gen_shape()
    gen_reduce()
    gen_dot()
    gen_conv()
    gen_gather_scatter()
    gen_sort_scan()
    gen_window()
    gen_unsigned()
    gen_clz()
    gen_random()
    gen_control()
    write_files(outdir)
    total = 0
    for fname, cases in FILES.items():
        print("%-22s %4d cases" % (fname, len(cases)))
        total += len(cases)
    print("%-22s %4d cases" % ("total", total))


if __name__ == "__main__":
    main()
