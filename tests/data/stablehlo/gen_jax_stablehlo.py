"""Lower JAX models to StableHLO text for ryft's importer tests.

Run with JAX (jax 0.10.2 here): /work/jaxenv/bin/python gen_jax_stablehlo.py
It writes NAME.mlir (jax.jit(f).lower(*args).as_text(), unmodified) and
jax_corpus.txt beside this script. tests/test_stablehlo_import.c imports every
module, runs it on interp, cpu (and pjrt in test_pjrt.c), differentiates the
imported graph with ry_grad and batches it with ry_vmap, and compares with
JAX's outputs, jax.grad and jax.vmap recorded here.

jax_corpus.txt, per case:
  case NAME            the module is NAME.mlir
  tol RTOL ATOL
  in  DTYPE[SHAPE] HEX  the inputs, in order (little-endian raw bytes)
  out ...              f(inputs)
  grad ...             jax.grad(f)(inputs) w.r.t. input 0 (float scalar f only)
  vin ...              input 0 batched (a new leading axis of 3; the others shared)
  vout ...             jax.vmap(f, in_axes=(0, None, ...))(vin, inputs[1:]...)
  end
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

jax.config.update("jax_platform_name", "cpu")
HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(15)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def mlp(w1, b1, w2, x, y):
    h = jnp.tanh(x @ w1 + b1)
    logits = h @ w2
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.sum(logp * y, axis=-1))


def cnn(k, x, w):
    y = lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = jax.nn.relu(y)
    n, h, wd, c = y.shape
    y = y.reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))  # 2x2 max pooling
    return jnp.sum(y.reshape(n, -1) @ w)


def attention(wq, wk, wv, x):
    q, k, v = x @ wq, x @ wk, x @ wv
    s = q @ k.T / np.float32(np.sqrt(q.shape[-1]))
    return jnp.sum(jax.nn.softmax(s, axis=-1) @ v)


def rnn(w, u, xs):
    def step(h, x):
        h = jnp.tanh(h @ w + x @ u)
        return h, h

    h, ys = lax.scan(step, jnp.zeros(w.shape[0], jnp.float32), xs)
    return jnp.sum(ys * ys) + jnp.sum(h)


def argmax(x):
    return jnp.argmax(x, axis=1).astype(jnp.int32), jnp.argmin(x, axis=0).astype(jnp.int32)


def sort(x, w):
    return jnp.sum(jnp.sort(x, axis=1) * w)


def indexing(x, i, j):
    return jnp.sum(x[i, 1:3] ** 2) + jnp.sum(x[:, j] * 3.0) + jnp.sum(jnp.take_along_axis(x, jnp.argsort(x, axis=0)[:1], axis=0))


def cumulative(x, w):
    return jnp.sum(jnp.cumsum(x, axis=1) * w) + jnp.sum(lax.cummax(x, axis=0)) + jnp.sum(jnp.cumsum(x[:, ::-1], axis=1))


def max_pool(x, window, strides, padding="VALID"):
    # flax.linen.max_pool: reduce_window of max from -inf over NHWC
    return lax.reduce_window(x, -jnp.inf, lax.max, (1,) + window + (1,), (1,) + strides + (1,), padding)


def avg_pool(x, window, strides, padding="VALID"):
    # flax.linen.avg_pool: a sum window over the window's size
    y = lax.reduce_window(x, 0.0, lax.add, (1,) + window + (1,), (1,) + strides + (1,), padding)
    return y / np.float32(np.prod(window))


def cnn_pool(k, x, w):
    # conv -> relu -> 2x2 max pool -> 3x3/2 SAME avg pool -> dense
    y = lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = max_pool(jax.nn.relu(y), (2, 2), (2, 2))
    y = avg_pool(y, (3, 3), (2, 2), "SAME")
    return jnp.sum(jnp.tanh(y.reshape(y.shape[0], -1) @ w))


def pool_grad(x, w):
    # a program holding max pooling's gradient (select_and_scatter) itself
    g = jax.grad(lambda v: jnp.sum(jnp.sin(max_pool(v, (3, 3), (2, 2), "SAME")) * w))(x)
    return jnp.sum(g * jnp.cos(x))


def rng_bits(key):
    # lax.rng_bit_generator, bit for bit as XLA expands it: THREE_FRY, and
    # DEFAULT (PHILOX on CPU), in 32-, 64- and 16-bit words
    out = []
    for shape, dt, alg in (((3, 5), jnp.uint32, lax.RandomAlgorithm.RNG_THREE_FRY),
                           ((7,), jnp.uint32, lax.RandomAlgorithm.RNG_DEFAULT),
                           ((2, 3), jnp.uint64, lax.RandomAlgorithm.RNG_THREE_FRY),
                           ((5,), jnp.uint16, lax.RandomAlgorithm.RNG_PHILOX)):
        state, bits = lax.rng_bit_generator(key, shape, dtype=dt, algorithm=alg)
        out += [state, bits]
    return tuple(out)


def reduce_precision(x):
    # lax.reduce_precision to fp16, bf16, fp8 e4m3/e5m2 and a mantissa-free format
    return tuple(lax.reduce_precision(x, exponent_bits=e, mantissa_bits=m)
                 for e, m in ((5, 10), (8, 7), (4, 3), (5, 2), (3, 0))) + \
        (lax.reduce_precision(x.astype(jnp.bfloat16), exponent_bits=4, mantissa_bits=3).astype(jnp.float32),)


RP_X = np.concatenate([np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65520.0, 1e-8, 6e-5, 3.14159, np.nan, np.inf, -np.inf,
                                 1.00048828125, 1.0009765625, 1e30, -2.5e-40, 240.0, 248.0, 0.0625, -7.5], np.float32),
                       np.random.default_rng(1515).standard_normal(12).astype(np.float32) * 100])


def trisolve(a, b):
    # lax.linalg.triangular_solve from both sides, both triangles, transposed,
    # unit diagonal, batched (jax.scipy.linalg.solve_triangular's primitive)
    eye = 4.0 * jnp.eye(a.shape[-1], dtype=a.dtype)
    lo, up = jnp.tril(a) + eye, jnp.triu(a) + eye
    tsolve = jax.lax.linalg.triangular_solve
    x1 = tsolve(lo, b, left_side=True, lower=True)
    x2 = tsolve(up, b, left_side=True, lower=False, transpose_a=True)
    x3 = tsolve(lo, jnp.swapaxes(b, -1, -2), left_side=False, lower=True, unit_diagonal=True)
    x4 = tsolve(up, jnp.swapaxes(b, -1, -2), left_side=False, lower=False, transpose_a=True)
    return jnp.sum(x1 * x1) + jnp.sum(jnp.sin(x2)) + jnp.sum(x3 * x4) + jnp.sum(x4)


SCATTER_IDX = np.array([[0, 2], [1, 1], [3, 0]], np.int32)


def scatter(x, v):
    x = jnp.asarray(x)
    put = jnp.put_along_axis(x, SCATTER_IDX, v, axis=1, inplace=False)
    return jnp.sum(put ** 2) + jnp.sum(x.at[jnp.arange(3)[:, None], SCATTER_IDX].add(v * 2.0) ** 2)


CASES = [
    ("mlp", mlp, [f32(4, 8), f32(8), f32(8, 3), f32(5, 4), np.eye(3, dtype=np.float32)[[0, 1, 2, 1, 0]]], 1e-4, 1e-5),
    ("cnn", cnn, [f32(3, 3, 2, 4), f32(2, 6, 6, 2), f32(36, 1)], 1e-4, 1e-4),
    ("attention", attention, [f32(6, 4), f32(6, 4), f32(6, 4), f32(5, 6)], 1e-4, 1e-5),
    ("rnn", rnn, [f32(4, 4) * 0.5, f32(3, 4), f32(6, 3)], 1e-4, 1e-5),
    ("argmax", argmax, [f32(4, 5)], 0, 0),
    ("sort", sort, [f32(3, 5), f32(3, 5)], 1e-5, 1e-6),
    ("indexing", indexing, [f32(5, 4), np.array([1, 3, -1], np.int32), np.array([2, 0], np.int32)], 1e-5, 1e-6),
    ("cumulative", cumulative, [f32(3, 6), f32(3, 6)], 1e-5, 1e-5),
    ("scatter", scatter, [f32(3, 4), f32(3, 2)], 1e-5, 1e-5),
    ("cnn_pool", cnn_pool, [f32(3, 3, 2, 4), f32(2, 8, 8, 2), f32(16, 3)], 1e-4, 1e-4),
    ("rng_bits", rng_bits, [np.array([7, 9, 0xFFFFFFFF, 0xFFFFFFFF], np.uint32)], 0, 0),  # under x64 (uint64 bits)
    ("reduce_precision", reduce_precision, [RP_X], 0, 0),
    ("pool_grad", pool_grad, [f32(2, 6, 5, 3), f32(2, 3, 3, 3)], 1e-4, 1e-5),
    ("trisolve", trisolve, [f32(2, 4, 4), f32(2, 4, 3)], 1e-4, 1e-5),
]

TYPES = {np.float32: "f32", np.int32: "i32", np.int64: "i64", np.bool_: "bool", np.uint8: "u8", np.uint16: "u16",
         np.uint32: "u32", np.uint64: "u64"}


def arr(a):
    a = np.asarray(a)
    t = TYPES[a.dtype.type]
    return "%s[%s] %s" % (t, ",".join(str(d) for d in a.shape), a.tobytes().hex())


# jax.vmap is not a per-lane map here: JAX batches rng_bit_generator with
# the first lane's key only, so there is no jax.vmap to compare ry_vmap with
NO_VMAP = {"rng_bits"}


def main():
    lines = ["# written by gen_jax_stablehlo.py (jax %s); do not edit" % jax.__version__]
    for name, f, args, rtol, atol in CASES:
        with jax.enable_x64(name == "rng_bits"):
            record(lines, name, f, args, rtol, atol)
    with open(os.path.join(HERE, "jax_corpus.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def record(lines, name, f, args, rtol, atol):
    text = jax.jit(f).lower(*args).as_text()
    with open(os.path.join(HERE, name + ".mlir"), "w") as fh:
        fh.write(text)
    outs = f(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    lines += ["case " + name, "tol %g %g" % (rtol, atol)]
    lines += ["in " + arr(a) for a in args]
    lines += ["out " + arr(o) for o in outs]
    if len(outs) == 1 and np.asarray(outs[0]).dtype == np.float32 and np.asarray(outs[0]).shape == ():
        lines.append("grad " + arr(jax.grad(f)(*args)))
    if name in NO_VMAP:
        lines.append("end")
        return
    a0 = np.asarray(args[0])
    vin = np.stack([a0 + np.float32(0.25 * k) for k in range(3)]).astype(a0.dtype)
    vouts = jax.vmap(f, in_axes=(0,) + (None,) * (len(args) - 1))(vin, *args[1:])
    vouts = vouts if isinstance(vouts, tuple) else (vouts,)
    lines.append("vin " + arr(vin))
    lines += ["vout " + arr(o) for o in vouts]
    lines.append("end")


if __name__ == "__main__":
    main()
