#!/usr/bin/env python3
"""Write tests/golden/random_jax.txt: jax.random results for fixed keys.

Run with the JAX virtualenv (jax 0.10.2, default threefry2x32 PRNG with
jax_threefry_partitionable=True):

    /work/jaxenv/bin/python tests/golden/gen_random_goldens.py

One case per line, fields separated by '|':

    name|op|k0,k1|args|dtype|dims|x64|values

op and args say what to compute (tests/test_random.c builds the same thing
with ryft), dims are comma separated (empty for a scalar), x64 is 1 when the
case was made with jax_enable_x64 on, and values are the raw bit patterns of
the result's elements in hex (bool as 0/1), row-major.

The big normal / truncated normal cases (op normal_sum, truncated_normal_sum)
keep the file small: values holds only the first HEAD elements, and the first
field of args is a checksum of all of them, sum((i + 1) * bits[i]) mod 2^61 - 1
over the u32 bit patterns, so a test still compares every element exactly.
"""
import os
import sys

import numpy as np
import jax

jax.config.update("jax_platforms", "cpu")
import jax.numpy as jnp  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "random_jax.txt")

DT = {"f16": jnp.float16, "bf16": jnp.bfloat16, "f32": jnp.float32, "f64": jnp.float64}
lines = []
HEAD = 64
M61 = 2**61 - 1


def bits_of(a):
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return [str(int(v)) for v in a.ravel()]
    view = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return ["%x" % int(v) for v in a.view(view).ravel()]


def dtname(a):
    a = np.asarray(a)
    if a.dtype == jnp.bfloat16:
        return "bf16"
    return {"bool": "bool", "uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64",
            "int32": "i32", "int64": "i64", "float16": "f16", "float32": "f32",
            "float64": "f64"}[str(a.dtype)]


def emit(name, op, key, args, result, x64):
    a = np.asarray(result)
    k = np.asarray(key)
    lines.append("|".join([name, op, "%d,%d" % (int(k[0]), int(k[1])), args, dtname(a),
                           ",".join(str(d) for d in a.shape), "1" if x64 else "0",
                           " ".join(bits_of(a))]))


def checksum(a):
    bits = np.asarray(a).view(np.uint32).ravel().astype(object)
    return int(sum((i + 1) * int(v) for i, v in enumerate(bits)) % M61)


def emit_sum(name, op, key, args, result):
    a = np.asarray(result)
    k = np.asarray(key)
    chk = "%d;%s" % (checksum(a), args) if args else "%d" % checksum(a)
    lines.append("|".join([name, op, "%d,%d" % (int(k[0]), int(k[1])), chk, dtname(a), ",".join(str(d) for d in a.shape), "0",
                           " ".join(bits_of(a.ravel()[:HEAD]))]))


def f32_normal_cases():
    """f32 normal / truncated_normal, bit for bit: many keys and shapes, big
    samples (the tails, erf_inv's w >= 5 branch, every path of XLA's log1p)."""
    jax.config.update("jax_enable_x64", False)
    f32 = jnp.float32
    keys = [jax.random.PRNGKey(s) for s in (0, 1, 2**31 - 1)] + list(jax.random.split(jax.random.PRNGKey(9), 2))
    for i, key in enumerate(keys):
        for shape in ((), (5, 7, 3), (1000,)):
            r = jax.random.normal(key, shape, f32)
            emit("normal_f32_key%d_%s" % (i, "x".join(map(str, shape)) or "scalar"), "normal", key, "", r, False)
    for i, (lo, hi) in enumerate(((-2.0, 2.0), (-1.0, 0.5), (0.5, 3.0), (-3.0, -2.5), (-6.0, 6.0), (-0.25, 0.25),
                                  (-np.inf, 1.0), (-5.5, 5.25))):
        r = jax.random.truncated_normal(keys[i % len(keys)], lo, hi, (1000,), f32)
        emit("truncnorm_f32_%g_%g" % (lo, hi), "truncated_normal", keys[i % len(keys)], "1000;%r;%r" % (lo, hi), r, False)
    for dt in ("f16", "bf16"):
        for i, (lo, hi) in enumerate(((-2.0, 2.0), (-1.0, 0.5), (-6.0, 6.0), (0.5, 3.0))):
            r = jax.random.truncated_normal(keys[i], lo, hi, (2000,), DT[dt])
            emit("truncnorm_%s_%g_%g" % (dt, lo, hi), "truncated_normal", keys[i], "2000;%r;%r" % (lo, hi), r, False)
        r = jax.random.normal(keys[1], (5000,), DT[dt])
        emit("normal_%s_key1_5000" % dt, "normal", keys[1], "", r, False)
    big = 100000
    emit_sum("normal_sum_key0_%d" % big, "normal_sum", keys[0], "", jax.random.normal(keys[0], (big,), f32))
    emit_sum("normal_sum_key3_250x400", "normal_sum", keys[3], "", jax.random.normal(keys[3], (250, 400), f32))
    for i, (lo, hi) in enumerate(((-2.0, 2.0), (-1.0, 0.5), (-6.0, 6.0))):
        key = keys[(i + 1) % len(keys)]
        r = jax.random.truncated_normal(key, lo, hi, (big,), f32)
        emit_sum("truncnorm_sum_%g_%g_%d" % (lo, hi, big), "truncated_normal_sum", key, "%r;%r" % (lo, hi), r)


def cases(x64):
    jax.config.update("jax_enable_x64", x64)
    tag = "x64" if x64 else "x32"
    seeds = [0, 42, 2**31 - 1] + ([-1, 2**40 + 5] if x64 else [])
    for s in seeds:
        emit("key_%s_%d" % (tag, s), "key", [0, 0], str(s), jax.random.PRNGKey(s), x64)
    key = jax.random.PRNGKey(42)
    key2 = jax.random.PRNGKey(7)
    for n in (1, 2, 3, 5):
        emit("split_%s_%d" % (tag, n), "split", key, str(n), jax.random.split(key, n), x64)
    for d in (0, 1, 12345, 2**32 - 1):
        emit("fold_in_%s_%d" % (tag, d), "fold_in", key, str(d), jax.random.fold_in(key, d), x64)
    for w, shape in ((32, (7,)), (32, (2, 3)), (32, ()), (8, (9,)), (16, (5,))) + (((64, (4,)),) if x64 else ()):
        r = jax.random.bits(key, shape, {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32, 64: jnp.uint64}[w])
        emit("bits_%s_%d_%s" % (tag, w, "x".join(map(str, shape))), "bits", key,
             "%d;%s" % (w, ",".join(map(str, shape))), r, x64)
    dts = ["f32", "f16", "bf16"] + (["f64"] if x64 else [])
    for dt in dts:
        for (lo, hi) in ((0.0, 1.0), (-2.0, 3.0)):
            n = 1000 if dt == "f32" else 200
            r = jax.random.uniform(key2, (n,), DT[dt], lo, hi)
            emit("uniform_%s_%s_%g_%g" % (tag, dt, lo, hi), "uniform", key2, "%d;%r;%r" % (n, lo, hi), r, x64)
    for dt in dts:
        n = 2000 if dt == "f32" else 300
        r = jax.random.normal(key2, (n,), DT[dt])
        emit("normal_%s_%s" % (tag, dt), "normal", key2, "%d" % n, r, x64)
    r = jax.random.normal(key, (3, 4), jnp.float32)
    emit("normal_%s_f32_3x4" % tag, "normal", key, "3,4", r, x64)
    for (lo, hi) in ((-2.0, 2.0), (-1.0, 0.5)):
        for dt in ["f32"] + (["f64"] if x64 else []):
            r = jax.random.truncated_normal(key2, lo, hi, (500,), DT[dt])
            emit("truncnorm_%s_%s_%g_%g" % (tag, dt, lo, hi), "truncated_normal", key2, "500;%r;%r" % (lo, hi), r, x64)
    # with x64 on, a Python float p makes JAX sample in f64; ryft's bernoulli is the f32 form
    for p in ((0.3, 0.5, 0.9) if not x64 else ()):
        r = jax.random.bernoulli(key, p, (200,))
        emit("bernoulli_%s_%g" % (tag, p), "bernoulli", key, "200;%r" % p, r, x64)
    logits = np.asarray(jax.random.normal(key2, (4, 10), jnp.float32))
    ltxt = ",".join("%x" % int(v) for v in logits.view(np.uint32).ravel())
    for axis in (-1, 0):
        r = jax.random.categorical(key, jnp.asarray(logits), axis=axis)
        emit("categorical_%s_axis%d" % (tag, axis), "categorical", key, "%d;4,10;%s" % (axis, ltxt), r, x64)
    for n in (1, 10, 100, 2000):
        r = jax.random.permutation(key, n)
        emit("permutation_%s_%d" % (tag, n), "permutation", key, str(n), r, x64)
    # the training data order: only a checksum and the head, to keep the file small
    p = np.asarray(jax.random.permutation(key2, 60000)).astype(np.int64)
    chk = int(np.sum(p * np.arange(60000, dtype=np.int64)) % (2**61 - 1))
    emit("permutation_%s_60000_head" % tag, "permutation_head", key2, "60000;%d" % chk, p[:32].astype(np.int32), x64)


if __name__ == "__main__":
    cases(False)
    cases(True)
    f32_normal_cases()
    with open(OUT, "w") as f:
        f.write("# jax.random goldens: jax %s, written by gen_random_goldens.py; see its docstring\n" % jax.__version__)
        for ln in lines:
            f.write(ln + "\n")
    print("wrote %d cases to %s" % (len(lines), OUT), file=sys.stderr)
