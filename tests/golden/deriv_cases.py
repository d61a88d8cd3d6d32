"""The cases of deriv.tgolden: derivatives and batching where ryft differed
from JAX (issue 18, found by differential testing) and reverse mode through
scan with a constant initial carry (issue 10, item 3). Each case is a JAX
function; gen_transform_goldens.py translates it to the IR (or takes the IR
written here, for calls with custom rules) and writes JAX's values.

Run through gen_transform_goldens.py, never on its own."""

import numpy as np


def register(g):
    import jax
    import jax.numpy as jnp
    from jax import lax

    In, func, D = g.In, g.func, g.DERIV

    def V(name, value, dtype="f64"):
        a = np.asarray(value, dtype=np.float64 if dtype == "f64" else np.int32)
        return In(name, a.shape, dtype=dtype, value=a)

    N, U = g.N, g.U
    sdn = lax.ScatterDimensionNumbers

    # ---- 1. scatter drops out-of-bounds windows; their updates get no cotangent
    @func("scatter_add_oob_update", [N("x", 3), N("u", 2)], into=D, kinds={"grad", "jvp", "vjp", "vmap"})
    def scatter_add_oob_update(x, u):
        idx = jnp.array([[5], [1]], dtype=jnp.int32)
        d = sdn(update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,))
        y = lax.scatter_add(x, idx, u * u, d, mode=lax.GatherScatterMode.FILL_OR_DROP)
        return jnp.sum(y * jnp.array([1.0, 2.0, 3.0]))

    @func("scatter_replace_window_part_oob", [N("x", 3), N("u", 2, 2)], into=D, kinds={"grad", "jvp", "vjp"})
    def scatter_replace_window_part_oob(x, u):
        idx = jnp.array([[2], [0]], dtype=jnp.int32)
        d = sdn(update_window_dims=(1,), inserted_window_dims=(), scatter_dims_to_operand_dims=(0,))
        y = lax.scatter(x, idx, u, d, mode=lax.GatherScatterMode.FILL_OR_DROP)
        return jnp.sum(y * jnp.array([1.0, 2.0, 3.0]))

    # ---- 2. clamp with lo > hi (JAX's rule; also lo == hi)
    for tag, (lo, x, hi) in {"lo_gt_hi": (1.0, 0.0, -1.0), "lo_gt_hi_below": (1.0, -2.0, -1.0),
                             "lo_eq_hi": (2.0, 3.0, 2.0), "lo_eq_hi_below": (2.0, 1.0, 2.0)}.items():
        func("clamp_" + tag, [V("lo", lo), V("x", x), V("hi", hi)], into=D,
             kinds={"grad", "jvp", "vjp"})(lambda lo, x, hi: lax.clamp(lo, x, hi))

    @func("clamp_vector_mixed", [V("lo", [0.5, -1.0, 0.0, 1.0, 2.0]), V("x", [0.0, 0.3, -2.0, 1.0, 5.0]),
                                 V("hi", [-0.5, 1.0, 0.0, 3.0, 2.0])], into=D, kinds={"grad", "jvp", "vjp"})
    def clamp_vector_mixed(lo, x, hi):
        return jnp.sum(lax.clamp(lo, x, hi) * jnp.arange(1.0, 6.0))

    # ---- 3. cummax / cummin at ties (JAX: the associative scan's tree)
    @func("cummax_tie_pair", [V("x", [0.0, 0.0])], into=D, kinds={"grad", "jvp", "vjp"})
    def cummax_tie_pair(x):
        return jnp.sum(jnp.array([1.0, 2.0]) * lax.cummax(x))

    @func("cummax_ties_7", [V("x", [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])], into=D, kinds={"grad", "jvp", "vjp"})
    def cummax_ties_7(x):
        return jnp.sum(jnp.arange(1.0, 8.0) * lax.cummax(x))

    @func("cummin_ties_rev_2d", [V("x", [[1.0, 0.0, 0.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 0.0, 1.0, 0.0]])],
          into=D, kinds={"grad", "jvp", "vjp"})
    def cummin_ties_rev_2d(x):
        return jnp.sum(jnp.arange(1.0, 16.0).reshape(3, 5) * lax.cummin(x, axis=1, reverse=True))

    @func("cummax_ties_axis0", [V("x", [[0.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])], into=D,
          kinds={"grad", "jvp", "vjp"})
    def cummax_ties_axis0(x):
        return jnp.sum(jnp.arange(1.0, 9.0).reshape(4, 2) * lax.cummax(x, axis=0))

    # ---- 4. grad of vmap through a cond with a batched predicate
    @func("cond_batched_pred_sqrt", [V("x", 4.0)], into=D, kinds={"grad", "jvp", "gradvmap", "vmapgrad"},
          batched=[[0.0, -1.0, 4.0]])
    def cond_batched_pred_sqrt(x):
        return lax.cond(x > 0, jnp.sqrt, lambda v: v * v, x)

    @func("switch_batched_index_log", [V("x", 2.0), V("y", 0.5)], into=D, kinds={"grad", "gradvmap", "vmapgrad"},
          batched=[[-1.0, 0.5, 2.5, 0.0], [0.3, -0.2, 1.5, 2.0]])
    def switch_batched_index_log(x, y):
        i = jnp.clip(jnp.floor(x), 0, 2).astype(jnp.int32)
        return lax.switch(i, [lambda a, b: a * b, lambda a, b: jnp.log(a) * b, lambda a, b: jnp.sqrt(a - 1.0) + b], x, y)

    # ---- 5. abs at 0 and -0, pow at (0, 0)
    @func("abs_at_zero", [V("x", [0.0, -0.0, 1.5, -2.0])], into=D, kinds={"grad", "jvp", "vjp"})
    def abs_at_zero(x):
        return jnp.sum(jnp.abs(x) * jnp.array([1.0, 2.0, 3.0, 4.0]))

    @func("pow_at_zero", [V("x", [0.0, 0.0, 2.0, 0.0]), V("y", [0.0, 1.5, 0.5, 1.0])], into=D,
          kinds={"grad", "jvp", "vjp"})
    def pow_at_zero(x, y):
        return jnp.sum(lax.pow(x, y))

    @func("max_min_nan_and_ties", [V("x", [np.nan, 1.0, 2.0, 0.5]), V("y", [1.0, np.nan, 2.0, -0.5])], into=D,
          kinds={"grad", "jvp", "vjp"})
    def max_min_nan_and_ties(x, y):
        return jnp.sum(jnp.maximum(x, y) * jnp.array([1.0, 2.0, 3.0, 4.0])) + jnp.sum(jnp.minimum(x, y))

    # ---- 6. a while whose result does not depend on the differentiated input
    def three_sins(x):
        return lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, jnp.sin(s[1])), (0, x))[1]

    @func("while_result_as_cond_index", [V("x", 2.0), V("y", 0.3)], into=D, grads=[(1,), (0, 1)],
          kinds={"grad", "jvp", "linearize"})
    def while_result_as_cond_index(x, y):
        k = three_sins(x).astype(jnp.int32)
        return lax.switch(k, [jnp.sin, jnp.cos], y)

    @func("while_floor_times_y", [V("x", 2.0), V("y", 0.3)], into=D, grads=[(1,), (0, 1)],
          kinds={"grad", "jvp", "linearize"})
    def while_floor_times_y(x, y):
        return jnp.floor(three_sins(x) * 3.0) * y

    # ---- 7. linearize through a while (forward mode)
    @func("while_linearize", [N("x", 3), U("r", 0.2, 0.8)], into=D, kinds={"jvp", "linearize"})
    def while_linearize(x, r):
        return lax.while_loop(lambda s: s[0] < 4, lambda s: (s[0] + 1, jnp.sin(s[1]) * r + s[1] * 0.5), (0, x))[1]

    # ---- 8. sort / cummax / cummin over a size-0 dimension
    for shape in [(2, 0), (0, 2), (0,)]:
        tag = "x".join(str(d) for d in shape)
        func("sort_empty_" + tag, [N("x", *shape)], into=D, kinds={"grad", "jvp", "vjp"})(
            lambda x: jnp.sum(jnp.sort(x, axis=-1)))
        func("cummax_empty_" + tag, [N("x", *shape)], into=D, kinds={"grad", "jvp", "vjp"})(
            lambda x: jnp.sum(lax.cummax(x, axis=x.ndim - 1)))
        func("cummin_empty_" + tag, [N("x", *shape)], into=D, kinds={"grad", "jvp", "vjp"})(
            lambda x: jnp.sum(lax.cummin(x, axis=0, reverse=True)))

    # ---- 9. vmap of calls with remat / custom rules (IR written here: the
    # translator inlines such calls)
    ckpt_ir = """func @f(%a: f64[3], %b: f64[3]) -> (f64[3]) {
  %0: f64[3] = mul %a, %b
  %1: f64[3] = sin %0
  %2: f64[3] = mul %1, %a
  return %2
}
func @main(%x: f64[3], %w: f64[3]) -> (f64[]) {
  %0: f64[3] = call %x, %w {callee=@f, remat=1}
  %1: f64[] = reduce %0 {kind=sum, axes=[0]}
  return %1
}
"""

    @func("checkpoint_call", [N("x", 3), N("w", 3)], into=D, ir=ckpt_ir,
          kinds={"grad", "vmap", "gradvmap", "vmapgrad", "jacfwd", "jacrev", "hessian", "hvp"})
    @jax.checkpoint
    def checkpoint_call(x, w):
        return jnp.sum(jnp.sin(x * w) * x)

    cjvp_ir = """func @f(%a: f64[3]) -> (f64[3]) {
  %0: f64[3] = sin %a
  return %0
}
func @f_jvp(%a: f64[3], %t: f64[3]) -> (f64[3], f64[3]) {
  %0: f64[3] = sin %a
  %1: f64[3] = cos %a
  %2: f64[3] = mul %1, %t
  %3: f64[3] = add %2, %2
  return %0, %3
}
func @main(%x: f64[3], %w: f64[3]) -> (f64[]) {
  %0: f64[3] = call %x {callee=@f, jvp=@f_jvp}
  %1: f64[3] = mul %0, %w
  %2: f64[] = reduce %1 {kind=sum, axes=[0]}
  return %2
}
"""

    @jax.custom_jvp
    def sin2(a):
        return jnp.sin(a)

    @sin2.defjvp
    def sin2_jvp(p, t):
        return jnp.sin(p[0]), 2.0 * jnp.cos(p[0]) * t[0]

    @func("custom_jvp_call", [N("x", 3), N("w", 3)], into=D, ir=cjvp_ir,
          kinds={"grad", "jvp", "vmap", "gradvmap", "vmapgrad", "jacfwd", "jacrev"})
    def custom_jvp_call(x, w):
        return jnp.sum(sin2(x) * w)

    cvjp_ir = """func @f(%a: f64[3]) -> (f64[3]) {
  %0: f64[3] = sin %a
  return %0
}
func @f_fwd(%a: f64[3]) -> (f64[3], f64[3]) {
  %0: f64[3] = sin %a
  %1: f64[3] = cos %a
  return %0, %1
}
func @f_bwd(%r: f64[3], %c: f64[3]) -> (f64[3]) {
  %0: f64[3] = mul %r, %c
  %1: f64[] = constant {value=[3]}
  %2: f64[3] = broadcast_in_dim %1 {dims=[]}
  %3: f64[3] = mul %0, %2
  return %3
}
func @main(%x: f64[3], %w: f64[3]) -> (f64[]) {
  %0: f64[3] = call %x {callee=@f, fwd=@f_fwd, bwd=@f_bwd}
  %1: f64[3] = mul %0, %w
  %2: f64[] = reduce %1 {kind=sum, axes=[0]}
  return %2
}
"""

    @jax.custom_vjp
    def sin3(a):
        return jnp.sin(a)

    sin3.defvjp(lambda a: (jnp.sin(a), jnp.cos(a)), lambda r, c: (3.0 * r * c,))

    @func("custom_vjp_call", [N("x", 3), N("w", 3)], into=D, ir=cvjp_ir,
          kinds={"grad", "vmap", "gradvmap", "vmapgrad", "jacrev"})
    def custom_vjp_call(x, w):
        return jnp.sum(sin3(x) * w)

    # ---- 10. a scan of length 0 (pjrt), every transform
    @func("scan_length0", [N("h", 2), N("xs", 0, 2), N("w", 2)], into=D, native_scan=True,
          kinds={"grad", "jvp", "vjp", "vmap", "linearize"})
    def scan_length0(h, xs, w):
        hT, ys = lax.scan(lambda c, x: (jnp.tanh(c * w + x), c * x), h, xs)
        return jnp.sum(hT * w) + jnp.sum(ys)

    # ---- issue 10 item 3: reverse mode through scan with a constant carry
    S = {"grad", "jvp", "vjp", "linearize", "hvp", "jacrev"}
    G2 = [(0,), (1,), (0, 1)]

    def rnn(h0_of):
        def f(w, xs):
            def step(h, x):
                h = jnp.tanh(h * w + x)
                return h, h * x
            hT, ys = lax.scan(step, h0_of(w), xs)
            return jnp.sum(hT ** 2) + jnp.sum(ys)
        return f

    for tag, h0 in {"const": lambda w: jnp.zeros(3), "ones": lambda w: jnp.ones(3),
                    "zero_times_w": lambda w: 0.0 * w, "w": lambda w: w, "round_w": lambda w: jnp.round(w * 3.0)}.items():
        func("scan_h0_%s_captured" % tag, [N("w", 3), N("xs", 4, 3)], into=D, native_scan=True, grads=G2,
             kinds=S)(rnn(h0))

    def rnn_uncaptured(h0_of):
        def f(w, xs):
            hT, ys = lax.scan(lambda h, x: (jnp.sin(h) + x, h * h), h0_of(w), xs)
            return jnp.sum(hT * w) + jnp.sum(ys)
        return f

    for tag, h0 in {"const": lambda w: jnp.zeros(3), "zero_times_w": lambda w: 0.0 * w, "w": lambda w: w,
                    "round_w": lambda w: jnp.round(w * 3.0)}.items():
        func("scan_h0_%s_uncaptured" % tag, [N("w", 3), N("xs", 4, 3)], into=D, native_scan=True, grads=G2,
             kinds=S)(rnn_uncaptured(h0))

    @func("fori_loop_const_carry", [N("w", 3), N("b", 3)], into=D, native_scan=True, grads=G2, kinds=S)
    def fori_loop_const_carry(w, b):
        h = lax.fori_loop(0, 4, lambda i, h: jnp.tanh(h * w + b * i), jnp.zeros(3))
        return jnp.sum(h * h)

    @func("rnn_two_layer_zero_state", [U("w1", -0.6, 0.6, 3, 4), U("u1", -0.6, 0.6, 4, 4), U("w2", -0.6, 0.6, 4, 2),
                                       U("u2", -0.6, 0.6, 2, 2), N("xs", 5, 3)],
          into=D, native_scan=True, grads=[(0, 1, 2, 3), (4,), (0, 1, 2, 3, 4)], kinds=S)
    def rnn_two_layer_zero_state(w1, u1, w2, u2, xs):
        def step(c, x):
            h1, h2 = c
            h1 = jnp.tanh(x @ w1 + h1 @ u1)
            h2 = jnp.tanh(h1 @ w2 + h2 @ u2)
            return (h1, h2), h2
        _, ys = lax.scan(step, (jnp.zeros(4), jnp.zeros(2)), xs)
        return jnp.sum(ys ** 2) + 0.1 * jnp.sum(ys)
