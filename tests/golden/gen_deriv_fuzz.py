#!/usr/bin/env python3
"""Differential tester for ryft's transforms: random programs against JAX.

Usage (needs jax, numpy; never run in CI):

    /work/jaxenv/bin/python tests/golden/gen_deriv_fuzz.py [--n N] [--seed S] [--out PATH]

Each program is a random composition (a fixed seed per program) of ops drawn
from most of the op table: elementwise unary and binary ops (also the ones
with kinks or zero derivatives: abs, max, min, clamp, floor, round, sign),
reductions, cumulative sum / prod / max / min, sort, reverse, pad, slice,
concatenate, dot_general, gather, scatter (with a window that is dropped),
cond, scan, over inputs that have ties, exact zeros and, for some programs,
an empty dimension. The script translates each program to ryft's IR with
gen_transform_goldens.py's translator and writes JAX's values for eval,
grad, jvp, vjp, linearize, vmap (two in_axes variants), grad of vmap and vmap
of grad to a tgolden file (FORMAT.md, "Transform goldens").
tests/test_transform_golden.c runs the file on interp, cpu and pjrt
(tgold_deriv_fuzz*). It also checks JAX's gradient against central finite
differences and prints the programs where they disagree (a kink or a tie:
there JAX's convention is the reference).

The committed file (tests/golden/deriv_fuzz.tgolden) is the CI size, the
default --n 40 --seed 18. The longer mode writes a larger file elsewhere and
points the test at it:

    gen_deriv_fuzz.py --n 400 --seed 1018 --out /tmp/fuzz.tgolden
    RYFT_DERIV_FUZZ=/tmp/fuzz.tgolden ./build/ryft_tests tgold_deriv_fuzz
"""

import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen_transform_goldens as G  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

DROP = lax.GatherScatterMode.FILL_OR_DROP


def _scatter(a, b):
    # rows 1 and 5 of the last axis (5 is dropped when C <= 5)
    idx = jnp.array([[1], [5]], dtype=jnp.int32)
    d = lax.ScatterDimensionNumbers(update_window_dims=(0,), inserted_window_dims=(1,),
                                    scatter_dims_to_operand_dims=(1,))
    return lax.scatter_add(a, idx, b[:, :2], d, mode=DROP)


def _scan(a, b):
    def step(c, r):
        h = jnp.tanh(c * r[0] + r[1])
        return h, h * c
    h, ys = lax.scan(step, jnp.zeros(a.shape[1]), (a, b))
    return ys + h


def _cond(a, b):
    return lax.cond(jnp.sum(a) > jnp.sum(b), lambda u, v: jnp.sin(u) * v, lambda u, v: u - jnp.cos(v), a, b)


UNARY = [
    ("sin", jnp.sin), ("cos", jnp.cos), ("tanh", jnp.tanh), ("exp_tanh", lambda a: jnp.exp(jnp.tanh(a))),
    ("log1p_sq", lambda a: jnp.log1p(a * a)), ("sqrt_pos", lambda a: jnp.sqrt(a * a + 0.5)), ("abs", jnp.abs),
    ("logistic", jax.nn.sigmoid), ("neg", lambda a: -a), ("square", lambda a: a * a), ("floor", jnp.floor),
    ("round", jnp.round), ("sign_mul", lambda a: jnp.sign(a) * a), ("erf", lax.erf),
    ("atan2", lambda a: jnp.arctan2(a, 1.5)), ("clamp", lambda a: lax.clamp(-0.5, a, 0.7)),
    ("relu", lambda a: jnp.maximum(a, 0.0)), ("cube", lambda a: a * a * a),
    ("softmax", lambda a: jax.nn.softmax(a, axis=-1)), ("center_max", lambda a: a - jnp.max(a, axis=-1, keepdims=True)),
    ("min_rows", lambda a: a * lax.reduce_min(a, (0,))[None, :]), ("prod_rows", lambda a: a * jnp.prod(a, axis=-1, keepdims=True)),
    ("cumsum", lambda a: jnp.cumsum(a, axis=-1)), ("cummax", lambda a: lax.cummax(a, axis=a.ndim - 1)),
    ("cummin_rev", lambda a: lax.cummin(a, axis=0, reverse=True)), ("cumprod", lambda a: jnp.cumprod(1.0 + 0.3 * a, axis=-1)),
    ("sort", lambda a: jnp.sort(a, axis=-1)), ("reverse", lambda a: a[:, ::-1]),
    ("pad_slice", lambda a: jnp.pad(a, ((0, 0), (1, 1)))[:, 2:] * 2.0 + jnp.pad(a, ((0, 0), (1, 1)))[:, :-2]),
    ("roll", lambda a: jnp.concatenate([a[:, 1:], a[:, :1]], axis=1)),
    ("gather", lambda a: a[:, jnp.array([3, 0, 0, 2])]),
]
BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (1.0 + b * b)), ("max", jnp.maximum), ("min", jnp.minimum),
    ("pow", lambda a, b: lax.pow(1.2 + a * a, b)), ("where", lambda a, b: jnp.where(a > b, a, jnp.sin(b))),
    ("dot", lambda a, b: a @ jnp.tanh(b.T @ b * 0.3)), ("scatter", _scatter), ("scan", _scan), ("cond", _cond),
    ("clamp3", lambda a, b: lax.clamp(a, b, a + 0.5)),
]


def draw(rng, shape):
    """Inputs with ties and exact zeros: a third of the entries are multiples
    of 1/2 between -1 and 1."""
    v = rng.normal(size=shape)
    m = rng.random(size=shape) < 0.35
    v[m] = rng.integers(-2, 3, size=int(m.sum())) * 0.5
    return v


def make_program(seed):
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([3, 3, 3, 1, 0]))  # some programs have an empty dimension
    shape = (rows, 4)
    steps = []
    n_vals = 2
    for _ in range(int(rng.integers(2, 6))):
        if rng.random() < 0.55:
            name, _ = UNARY[rng.integers(len(UNARY))]
            steps.append(("u", name, int(rng.integers(n_vals))))
        else:
            name, _ = BINARY[rng.integers(len(BINARY))]
            steps.append(("b", name, int(rng.integers(n_vals)), int(rng.integers(n_vals))))
        n_vals += 1
    w = rng.normal(size=shape)
    un, bn = dict(UNARY), dict(BINARY)

    def fn(x, y):
        vals = [x, y]
        for s in steps:
            vals.append(un[s[1]](vals[s[2]]) if s[0] == "u" else bn[s[1]](vals[s[2]], vals[s[3]]))
        return jnp.sum(jnp.sin(vals[-1]) * w) + 0.5 * jnp.sum(jnp.tanh(vals[-2]))

    desc = " ".join(s[1] for s in steps)
    args = [draw(rng, shape), draw(rng, shape)]
    batched = [np.stack([draw(rng, shape) for _ in range(G.B)]) for _ in range(2)]
    return fn, shape, args, batched, desc


def fd_grad(fn, args, h=1e-6):
    out = []
    for k in range(len(args)):
        g = np.zeros_like(args[k])
        for i in np.ndindex(args[k].shape):
            a1 = [np.array(a) for a in args]
            a2 = [np.array(a) for a in args]
            a1[k][i] += h
            a2[k][i] -= h
            g[i] = (float(fn(*a1)) - float(fn(*a2))) / (2 * h)
        out.append(g)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "deriv_fuzz.tgolden"))
    o = ap.parse_args()
    cases, kinks = [], 0
    for i in range(o.n):
        seed = o.seed * 100003 + i
        fn, shape, args, batched, desc = make_program(seed)
        name = "fuzz_%d" % seed
        spec = dict(name=name, fn=fn, ins=[G.In("x", shape, value=args[0]), G.In("y", shape, value=args[1])],
                    fwd_only=False, argnums=None, jac_argnum=None, vmap=[(0, 0), (1, None)], tol=(1e-8, 1e-11),
                    ir=None, kinds={"grad", "jvp", "vjp", "linearize", "vmap", "gradvmap", "vmapgrad"},
                    grads=None, native_scan=True, batched=batched)
        c = G.build_case(spec)
        c["prims"] = set(c["prims"]) | {"| program: " + desc}
        jg = jax.grad(fn, argnums=(0, 1))(*args)
        fd = fd_grad(fn, args)
        bad = [float(np.max(np.abs(np.asarray(a) - b) / (1e-3 + np.abs(b)))) if b.size else 0.0 for a, b in zip(jg, fd)]
        if max(bad) > 1e-4:
            kinks += 1
            print("%s: JAX's gradient differs from finite differences (rel %.2g): %s" % (name, max(bad), desc))
        cases.append(c)
    n = G.write(cases, o.out, "# Random programs of tests/golden/gen_deriv_fuzz.py --n %d --seed %d.\n" % (o.n, o.seed))
    print("%s: %d programs, %d checks; %d where JAX's gradient is not the finite difference (kinks, ties)"
          % (o.out, len(cases), n, kinks))


if __name__ == "__main__":
    main()
