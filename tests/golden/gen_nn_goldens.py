#!/usr/bin/env python3
"""Write tests/golden/nn.ngolden: forward goldens for every layer, loss,
metric and initializer of ryft/nn.h, and several steps of every optimizer,
computed with JAX, Flax and Optax.

Run with a virtualenv that has jax (0.10.x), flax and optax (never in CI):

    /work/jaxenv/bin/python tests/golden/gen_nn_goldens.py

The file reuses the array lines of FORMAT.md; a case is

    case NAME
    tol RTOL ATOL
    in TYPE HEX      (inputs, in the order the C test passes them)
    out TYPE HEX     (expected outputs)
    end

tests/test_nn.c knows, for every NAME, which ryft/nn.h call builds the
program; it fails when a case in the file has no C counterpart.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import flax.linen as fnn

jax.config.update("jax_platforms", "cpu")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn.ngolden")
rng = np.random.default_rng(1234)
cases = []

DT = {np.dtype("float32"): "f32", np.dtype("float64"): "f64", np.dtype("int32"): "i32", np.dtype("uint32"): "u32",
      np.dtype("bool"): "bool", np.dtype("uint8"): "u8"}


def arr_line(kind, a):
    a = np.asarray(a)
    t = DT[a.dtype] + "[" + ",".join(str(d) for d in a.shape) + "]"
    data = np.ascontiguousarray(a).tobytes()
    return f"{kind} {t} {data.hex() if data else '-'}"


def case(name, ins, outs, rtol=1e-5, atol=1e-6):
    lines = [f"case {name}", f"tol {rtol:g} {atol:g}"]
    lines += [arr_line("in", np.asarray(x)) for x in ins]
    lines += [arr_line("out", np.asarray(y)) for y in outs]
    lines.append("end")
    cases.append("\n".join(lines))


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def key_data(seed):
    return np.asarray(jax.random.key_data(jax.random.PRNGKey(seed)), dtype=np.uint32)


# ---- layers ----
x, w, b = randn(3, 4), randn(4, 5), randn(5)
case("linear", [x, w, b], [fnn.Dense(5).apply({"params": {"kernel": w, "bias": b}}, x)])
x3 = randn(2, 3, 4)
case("linear_rank3", [x3, w, b], [fnn.Dense(5).apply({"params": {"kernel": w, "bias": b}}, x3)])

x, w, b = randn(2, 6, 6, 3), randn(3, 3, 3, 4), randn(4)
y = fnn.Conv(4, (3, 3), padding="SAME").apply({"params": {"kernel": w, "bias": b}}, x)
case("conv2d_same", [x, w, b], [y], 1e-4, 1e-5)
x, w, b = randn(2, 7, 7, 2), randn(3, 3, 2, 3), randn(3)
y = fnn.Conv(3, (3, 3), strides=(2, 2), padding="VALID").apply({"params": {"kernel": w, "bias": b}}, x)
case("conv2d_valid_stride2", [x, w, b], [y], 1e-4, 1e-5)
x, w, b = randn(1, 5, 6, 2), randn(2, 3, 2, 3), randn(3)
y = fnn.Conv(3, (2, 3), padding="SAME").apply({"params": {"kernel": w, "bias": b}}, x)
case("conv2d_same_even", [x, w, b], [y], 1e-4, 1e-5)

x = randn(2, 4, 6, 3)
case("max_pool_2", [x], [fnn.max_pool(x, (2, 2), strides=(2, 2))])
case("avg_pool_2", [x], [fnn.avg_pool(x, (2, 2), strides=(2, 2))])
x = randn(2, 7, 7, 2)
case("max_pool_3_s2", [x], [fnn.max_pool(x, (3, 3), strides=(2, 2))])
case("avg_pool_3_s1", [x], [fnn.avg_pool(x, (3, 3), strides=(1, 1))])

x, sc, bi = randn(3, 5), randn(5), randn(5)
case("layer_norm", [x, sc, bi], [fnn.LayerNorm(epsilon=1e-6).apply({"params": {"scale": sc, "bias": bi}}, x)], 1e-4, 1e-5)
case("rms_norm", [x, sc], [fnn.RMSNorm(epsilon=1e-6).apply({"params": {"scale": sc}}, x)], 1e-4, 1e-5)

x, sc, bi = randn(4, 2, 3), randn(3), randn(3)
mean, var = randn(3), np.abs(randn(3)) + 0.5
bn = fnn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)
y, upd = bn.apply({"params": {"scale": sc, "bias": bi}, "batch_stats": {"mean": mean, "var": var}}, x, mutable=["batch_stats"])
case("batch_norm_train", [x, sc, bi, mean, var], [y, upd["batch_stats"]["mean"], upd["batch_stats"]["var"]], 1e-4, 1e-5)
bn = fnn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5)
y = bn.apply({"params": {"scale": sc, "bias": bi}, "batch_stats": {"mean": mean, "var": var}}, x)
case("batch_norm_eval", [x, sc, bi, mean, var], [y], 1e-4, 1e-5)

table, ids = randn(6, 3), np.array([[0, 5, 2], [1, 1, 4]], dtype=np.int32)
case("embedding", [table, ids], [fnn.Embed(6, 3).apply({"params": {"embedding": table}}, ids)])

x, k = randn(4, 5), key_data(3)
keep = jax.random.bernoulli(jax.random.PRNGKey(3), 0.7, (4, 5))
case("dropout", [x, k], [jnp.where(keep, x / 0.7, 0.0)])

x, w1, b1, w2, b2 = randn(2, 4), randn(4, 6), randn(6), randn(6, 3), randn(3)
case("mlp_gelu_tanh", [x, w1, b1, w2, b2], [(jax.nn.gelu(x @ w1 + b1, approximate=True)) @ w2 + b2], 1e-4, 1e-5)
case("mlp_gelu", [x, w1, b1, w2, b2], [(jax.nn.gelu(x @ w1 + b1, approximate=False)) @ w2 + b2], 1e-4, 1e-5)
case("mlp_silu", [x, w1, b1, w2, b2], [(jax.nn.silu(x @ w1 + b1)) @ w2 + b2], 1e-4, 1e-5)
wg, wu, wd = randn(4, 6), randn(4, 6), randn(6, 3)
case("swiglu", [x, wg, wu, wd], [(jax.nn.silu(x @ wg) * (x @ wu)) @ wd], 1e-4, 1e-5)
case("leaky_relu", [x], [jax.nn.leaky_relu(x, 0.1)])


def rope_ref(x, base):
    B, T, H, D = x.shape
    inv = base ** (-np.arange(0, D, 2, dtype=np.float64) / D)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang)[None, :, None, :], np.sin(ang)[None, :, None, :]
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    rot = np.concatenate([-x2, x1], -1)
    return (x * cos + rot * sin).astype(np.float32)


x = randn(1, 5, 2, 4)
case("rope", [x], [rope_ref(x.astype(np.float64), 10000.0)], 1e-4, 1e-5)

q, k_, v = randn(2, 4, 4, 3), randn(2, 4, 2, 3), randn(2, 4, 2, 3)
case("attention_causal_gqa", [q, k_, v], [jax.nn.dot_product_attention(q, k_, v, is_causal=True)], 1e-4, 1e-5)
k2, v2 = randn(2, 6, 4, 3), randn(2, 6, 4, 3)
case("attention_mha", [q, k2, v2], [jax.nn.dot_product_attention(q, k2, v2)], 1e-4, 1e-5)
xe, wq, wk, wv, wo = randn(2, 5, 8), randn(8, 8), randn(8, 4), randn(8, 4), randn(8, 8)


def mha_ref(x, wq, wk, wv, wo):
    B, T, E = x.shape
    q = (x @ wq).reshape(B, T, 4, 2)
    kk = (x @ wk).reshape(B, T, 2, 2)
    vv = (x @ wv).reshape(B, T, 2, 2)
    q = jnp.asarray(rope_ref(np.asarray(q, np.float64), 10000.0))
    kk = jnp.asarray(rope_ref(np.asarray(kk, np.float64), 10000.0))
    o = jax.nn.dot_product_attention(q, kk, vv, is_causal=True)
    return o.reshape(B, T, 8) @ wo


case("mha_rope_gqa", [xe, wq, wk, wv, wo], [mha_ref(xe, wq, wk, wv, wo)], 1e-4, 1e-5)

# ---- initializers (the same key gives the same numbers) ----
I = jax.nn.initializers
kd = key_data(42)
key = jax.random.PRNGKey(42)
case("init_glorot_uniform", [kd], [I.glorot_uniform()(key, (4, 5), jnp.float32)], 1e-6, 1e-7)
case("init_glorot_normal", [kd], [I.glorot_normal()(key, (4, 5), jnp.float32)], 1e-5, 1e-6)
case("init_he_uniform", [kd], [I.he_uniform()(key, (3, 3, 2, 4), jnp.float32)], 1e-6, 1e-7)
case("init_he_normal", [kd], [I.he_normal()(key, (3, 3, 2, 4), jnp.float32)], 1e-5, 1e-6)
case("init_lecun_normal", [kd], [I.lecun_normal()(key, (6, 3), jnp.float32)], 1e-5, 1e-6)
case("init_normal", [kd], [I.normal(0.02)(key, (7,), jnp.float32)], 1e-5, 1e-7)

# ---- losses and metrics ----
logits, labels = randn(6, 5) * 3, np.array([0, 4, 2, 2, 1, 3], dtype=np.int32)
case("cross_entropy", [logits, labels], [optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()])
big = logits * 100
case("cross_entropy_large_logits", [big, labels], [optax.softmax_cross_entropy_with_integer_labels(big, labels).mean()], 1e-5, 1e-4)
targets = (rng.random((6, 5)) > 0.5).astype(np.float32)
case("binary_cross_entropy", [big / 10, targets], [optax.sigmoid_binary_cross_entropy(big / 10, targets).mean()])
pred, tgt = randn(4, 3), randn(4, 3)
case("mse", [pred, tgt], [optax.squared_error(pred, tgt).mean()])
case("accuracy", [logits, labels], [jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32))])
tk = jax.lax.top_k(logits, 2)[1]
case("top2_accuracy", [logits, labels], [jnp.mean(jnp.any(tk == labels[:, None], -1).astype(jnp.float32))])

# ---- optimizers: three steps of Optax's update for fixed gradients ----
p0, p1 = randn(3, 2), randn(4)
grads = [(randn(3, 2), randn(4)) for _ in range(3)]


def run_opt(name, opt):
    params = {"a": jnp.asarray(p0), "b": jnp.asarray(p1)}
    state = opt.init(params)
    outs = []
    for ga, gb in grads:
        g = {"a": jnp.asarray(ga), "b": jnp.asarray(gb)}
        upd, state = opt.update(g, state, params)
        params = optax.apply_updates(params, upd)
        outs += [params["a"], params["b"]]
    ins = [p0, p1] + [g for pair in grads for g in pair]
    case("opt_" + name, ins, outs, 1e-5, 1e-6)


run_opt("sgd", optax.sgd(0.1))
run_opt("sgd_momentum", optax.sgd(0.1, momentum=0.9))
run_opt("sgd_nesterov", optax.sgd(0.1, momentum=0.9, nesterov=True))
run_opt("adam", optax.adam(0.01))
run_opt("adamw", optax.adamw(0.01, weight_decay=0.1))
run_opt("lion", optax.lion(0.01, weight_decay=0.1))
run_opt("adam_clip", optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)))
run_opt("adam_warmup_cosine", optax.adam(optax.warmup_cosine_decay_schedule(0.0, 0.05, 2, 3, 0.001)))
run_opt("sgd_step", optax.sgd(optax.exponential_decay(0.1, 2, 0.5, staircase=True)))

with open(OUT, "w") as f:
    f.write("# generated by tests/golden/gen_nn_goldens.py with jax %s, flax %s, optax %s; do not edit\n"
            % (jax.__version__, __import__("flax").__version__, optax.__version__))
    f.write("\n".join(cases) + "\n")
print(f"wrote {len(cases)} cases to {OUT}")
