#!/usr/bin/env python3
"""Generate tests/golden/transforms.tgolden: JAX goldens for ryft's transforms.

Usage (needs jax, numpy and ml_dtypes; never run in CI):

    /work/jaxenv/bin/python tests/golden/gen_transform_goldens.py [OUTDIR]

Each case is a composite function written with jax.numpy / jax.lax / jax.nn.
The script traces it with jax.make_jaxpr (x64, f64 inputs) and translates the
jaxpr into ryft's text IR (docs/IR.md) with a small jaxpr -> IR translator
(one case per lax primitive; anything unmapped is an error). It then asks JAX
for the function's outputs and for grad, jvp, vjp, vmap, hvp (jvp of grad),
jacfwd, jacrev and (for small inputs) the full Hessian, and writes everything
to transforms.tgolden in the format described in tests/golden/FORMAT.md
("Transform goldens"). tests/test_transform_golden.c applies the matching
ryft transforms to the IR and compares. All inputs come from fixed numpy seeds: the output is deterministic.

Notes on the translation:
- jit / pjit / closed_call / custom_jvp_call / custom_vjp_call are inlined: the
  derivative ryft computes is that of the primal implementation, which equals
  JAX's custom rule away from kinks (relu at 0 and the like are avoided).
- stop_gradient is translated as the identity. It is used only where it does
  not change the derivative (the max shift in logsumexp / softmax, whose
  contribution cancels exactly), so JAX's derivatives remain the reference.
- integer_pow is expanded into multiplications (and a division for y < 0),
  erfc into 1 - erf; lax.scan is unrolled (ryft has no reverse mode through
  a while loop); implicit scalar / size-1 broadcasting becomes broadcast_in_dim.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402
from jax.extend import core as jcore  # noqa: E402

from gen_goldens import Raw, const_value, fmt_attrs, hexa, tname, tstr, ttype  # noqa: E402

# ----------------------------------------------------------------------------
# jaxpr -> ryft IR
# ----------------------------------------------------------------------------

UNARY = {
    "neg": "neg", "abs": "abs", "sign": "sign", "exp": "exp", "exp2": "exp2", "log": "log",
    "log1p": "log1p", "expm1": "expm1", "sqrt": "sqrt", "rsqrt": "rsqrt", "cbrt": "cbrt",
    "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "logistic": "logistic",
    "erf": "erf", "erf_inv": "erf_inv", "floor": "floor", "ceil": "ceil",
    "is_finite": "is_finite", "not": "not",
}
BINARY = {
    "add": "add", "sub": "sub", "mul": "mul", "div": "div", "rem": "rem", "pow": "pow",
    "max": "max", "min": "min", "atan2": "atan2", "and": "and", "or": "or", "xor": "xor",
}
COMPARE = {"eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge"}
REDUCE = {"reduce_sum": "sum", "reduce_max": "max", "reduce_min": "min", "reduce_prod": "prod",
          "reduce_and": "and", "reduce_or": "or"}
CUMULATIVE = {"cumsum": "sum", "cumprod": "prod", "cummax": "max", "cummin": "min"}
REDUCE_WINDOW = {"reduce_window_sum": "sum", "reduce_window_max": "max", "reduce_window_min": "min"}
INLINE = {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
          "custom_vjp_call_jaxpr", "remat", "checkpoint", "custom_lin"}
IDENTITY = {"stop_gradient", "copy", "copy_p", "optimization_barrier"}


class Unmapped(Exception):
    pass


def aval_type(aval):
    return ttype(tname(aval.dtype), aval.shape)


class Emitter:
    """Writes the instructions of one function (regions nested inside it)."""

    def __init__(self):
        self.n = 0

    def fresh(self):
        self.n += 1
        return "%%v%d" % (self.n - 1)


class Scope:
    def __init__(self, em, indent):
        self.em = em
        self.ind = "  " * indent
        self.indent = indent
        self.lines = []
        self.env = {}  # jaxpr Var -> (name, dtype name, shape)

    # -- emitting
    def emit(self, op, operands, out_types, attrs=None, regions=None):
        names = [self.em.fresh() for _ in out_types]
        res = ", ".join("%s: %s" % (n, ttype(dt, sh)) for n, (dt, sh) in zip(names, out_types))
        line = "%s%s = %s" % (self.ind, res, op)
        if operands:
            line += " " + ", ".join(o[0] for o in operands)
        line += fmt_attrs(attrs)
        self.lines.append(line)
        if regions:
            for r in regions:
                self.lines.extend(r)
        return [(n, dt, tuple(sh)) for n, (dt, sh) in zip(names, out_types)]

    def emit1(self, op, operands, dt, shape, attrs=None):
        return self.emit(op, operands, [(dt, tuple(shape))], attrs)[0]

    def const(self, value, dt):
        a = np.asarray(value)
        if dt in ("f64", "f32"):
            a = a.astype(np.float64 if dt == "f64" else np.float32)
        else:
            a = a.astype(np.dtype({"i32": np.int32, "i64": np.int64, "bool": np.bool_,
                                   "u32": np.uint32, "u8": np.uint8, "i8": np.int8,
                                   "i16": np.int16}[dt]))
        return self.emit1("constant", [], dt, a.shape, [("value", const_value(a))])

    def bcast_scalar(self, v, shape):
        """Implicit broadcasting in jaxprs: rank-0 operands and (in recent JAX)
        size-1 dimensions of an operand of the result's rank."""
        if tuple(v[2]) == tuple(shape):
            return v
        if v[2] == ():
            dims = []
        else:
            assert len(v[2]) == len(shape), (v, shape)
            assert all(a in (1, b) for a, b in zip(v[2], shape)), (v, shape)
            dims = list(range(len(shape)))
        return self.emit1("broadcast_in_dim", [v], v[1], shape, [("dims", dims)])

    def convert(self, v, dt):
        if v[1] == dt:
            return v
        return self.emit1("convert", [v], dt, v[2])

    # -- reading jaxpr atoms
    def read(self, atom):
        if isinstance(atom, jcore.Literal):
            aval = atom.aval
            return self.const(np.asarray(atom.val), tname(aval.dtype))
        return self.env[atom]

    def bind(self, var, val):
        if type(var).__name__ == "DropVar":
            return
        self.env[var] = val


def translate_jaxpr(sc, jaxpr, consts, args):
    """Emit jaxpr's equations into scope sc; args are IR values for invars.
    Returns IR values for outvars."""
    for v, c in zip(jaxpr.constvars, consts):
        sc.bind(v, sc.const(np.asarray(c), tname(np.asarray(c).dtype)))
    for v, a in zip(jaxpr.invars, args):
        sc.bind(v, a)
    for eqn in jaxpr.eqns:
        ins = [sc.read(x) for x in eqn.invars]
        outs = translate_eqn(sc, eqn, ins)
        assert len(outs) == len(eqn.outvars), eqn
        for var, o in zip(eqn.outvars, outs):
            want = (tname(var.aval.dtype), tuple(var.aval.shape))
            assert (o[1], tuple(o[2])) == want, (eqn.primitive.name, o, want)
            sc.bind(var, o)
    return [sc.read(x) for x in jaxpr.outvars]


def closed_parts(j):
    if hasattr(j, "jaxpr") and hasattr(j, "consts"):
        return j.jaxpr, j.consts
    return j, []


def region(sc, label, closed, param_types, n_skip_params=0):
    """A region: params of param_types; the jaxpr takes params[n_skip:]
    (leading params it does not use are still declared)."""
    jaxpr, consts = closed_parts(closed)
    sub = Scope(sc.em, sc.indent + 2)
    params = [(sub.em.fresh(), dt, tuple(sh)) for dt, sh in param_types]
    used = params[n_skip_params:]
    outs = translate_jaxpr(sub, jaxpr, consts, used)
    head = "%s%s (%s) {" % ("  " * (sc.indent + 1), label,
                             ", ".join("%s: %s" % (p[0], ttype(p[1], p[2])) for p in params))
    body = [head] + sub.lines
    body.append("%sreturn %s" % ("  " * (sc.indent + 2), ", ".join(o[0] for o in outs)))
    body.append("%s}" % ("  " * (sc.indent + 1)))
    return body


def int_pow(sc, x, y):
    if y == 0:
        return sc.bcast_scalar(sc.const(1.0, x[1]), x[2])
    n = abs(y)
    acc = None
    base = x
    while n:
        if n & 1:
            acc = base if acc is None else sc.emit1("mul", [acc, base], x[1], x[2])
        n >>= 1
        if n:
            base = sc.emit1("mul", [base, base], x[1], x[2])
    if y < 0:
        one = sc.bcast_scalar(sc.const(1.0, x[1]), x[2])
        acc = sc.emit1("div", [one, acc], x[1], x[2])
    return acc


def translate_eqn(sc, eqn, ins):
    p = eqn.primitive.name
    prm = eqn.params
    outs_av = [v.aval for v in eqn.outvars]
    odt = tname(outs_av[0].dtype) if outs_av else None
    osh = tuple(outs_av[0].shape) if outs_av else None

    if p in INLINE:
        j = prm.get("jaxpr") or prm.get("call_jaxpr") or prm.get("fun_jaxpr")
        if j is None:
            raise Unmapped("%s without a jaxpr param: %s" % (p, list(prm)))
        jaxpr, consts = closed_parts(j)
        inner = Scope(sc.em, sc.indent)  # its own environment, same instruction list
        inner.lines = sc.lines
        return translate_jaxpr(inner, jaxpr, consts, ins)
    if p in IDENTITY:
        return list(ins)
    if p in UNARY:
        return [sc.emit1(UNARY[p], ins, odt, osh)]
    if p == "erfc":  # 1 - erf(x)
        e = sc.emit1("erf", ins, odt, osh)
        return [sc.emit1("sub", [sc.bcast_scalar(sc.const(1.0, odt), osh), e], odt, osh)]
    if p == "square":
        return [sc.emit1("mul", [ins[0], ins[0]], odt, osh)]
    if p == "round":
        op = "round_even" if int(prm["rounding_method"]) == 1 else "round"
        return [sc.emit1(op, ins, odt, osh)]
    if p in BINARY or p in COMPARE:
        a, b = sc.bcast_scalar(ins[0], osh), sc.bcast_scalar(ins[1], osh)
        if p in BINARY:
            return [sc.emit1(BINARY[p], [a, b], odt, osh)]
        return [sc.emit1("compare", [a, b], odt, osh, [("dir", Raw(COMPARE[p]))])]
    if p == "integer_pow":
        return [int_pow(sc, ins[0], int(prm["y"]))]
    if p == "select_n":
        pred, cases = ins[0], ins[1:]
        if len(cases) != 2 or pred[1] != "bool":
            raise Unmapped("select_n with %d cases / %s predicate" % (len(cases), pred[1]))
        f_, t_ = sc.bcast_scalar(cases[0], osh), sc.bcast_scalar(cases[1], osh)
        return [sc.emit1("select", [pred, t_, f_], odt, osh)]
    if p == "clamp":
        lo, x, hi = ins
        lo = lo if lo[2] == () else sc.bcast_scalar(lo, osh)
        hi = hi if hi[2] == () else sc.bcast_scalar(hi, osh)
        return [sc.emit1("clamp", [lo, x, hi], odt, osh)]
    if p == "convert_element_type":
        x = ins[0]
        if x[1] == odt:
            return [x]
        return [sc.emit1("convert", [x], odt, osh)]
    if p == "broadcast_in_dim":
        x = ins[0]
        if tuple(x[2]) == osh:
            return [x]
        return [sc.emit1("broadcast_in_dim", [x], odt, osh,
                         [("dims", list(prm["broadcast_dimensions"]))])]
    if p in ("reshape", "squeeze", "expand_dims"):
        if p == "reshape" and prm.get("dimensions") is not None:
            raise Unmapped("reshape with dimensions")
        x = ins[0]
        if tuple(x[2]) == osh:
            return [x]
        return [sc.emit1("reshape", [x], odt, osh)]
    if p == "transpose":
        return [sc.emit1("transpose", ins, odt, osh, [("perm", list(prm["permutation"]))])]
    if p in REDUCE:
        return [sc.emit1("reduce", ins, odt, osh, [("kind", Raw(REDUCE[p])),
                                                   ("axes", list(prm["axes"]))])]
    if p in ("argmax", "argmin"):
        (ax,) = prm["axes"]
        return [sc.emit1(p, ins, odt, osh, [("axis", int(ax))])]
    if p in CUMULATIVE:
        return [sc.emit1("cumulative", ins, odt, osh,
                         [("kind", Raw(CUMULATIVE[p])), ("axis", int(prm["axis"])),
                          ("reverse", bool(prm["reverse"]))])]
    if p in REDUCE_WINDOW:
        pads = prm["padding"]
        return [sc.emit1("reduce_window", ins, odt, osh, [
            ("kind", Raw(REDUCE_WINDOW[p])), ("window", list(prm["window_dimensions"])),
            ("stride", list(prm["window_strides"])), ("base_dilation", list(prm["base_dilation"])),
            ("window_dilation", list(prm["window_dilation"])), ("pad_low", [q[0] for q in pads]),
            ("pad_high", [q[1] for q in pads])])]
    if p == "dot_general":
        (lc, rc), (lb, rb) = prm["dimension_numbers"]
        return [sc.emit1("dot_general", ins, odt, osh,
                         [("lhs_batch", list(lb)), ("rhs_batch", list(rb)),
                          ("lhs_contract", list(lc)), ("rhs_contract", list(rc))])]
    if p == "conv_general_dilated":
        dn = prm["dimension_numbers"]
        pads = prm["padding"]
        return [sc.emit1("convolution", ins, odt, osh, [
            ("stride", list(prm["window_strides"])), ("pad_low", [q[0] for q in pads]),
            ("pad_high", [q[1] for q in pads]), ("lhs_dilation", list(prm["lhs_dilation"])),
            ("rhs_dilation", list(prm["rhs_dilation"])),
            ("feature_groups", int(prm["feature_group_count"])),
            ("batch_groups", int(prm["batch_group_count"])),
            ("input_dims", list(dn.lhs_spec)), ("kernel_dims", list(dn.rhs_spec)),
            ("output_dims", list(dn.out_spec))])]
    if p == "slice":
        strides = prm["strides"] or [1] * len(osh)
        return [sc.emit1("slice", ins, odt, osh, [("start", list(prm["start_indices"])),
                                                  ("limit", list(prm["limit_indices"])),
                                                  ("stride", list(strides))])]
    if p == "dynamic_slice":
        return [sc.emit1("dynamic_slice", ins, odt, osh, [("sizes", list(prm["slice_sizes"]))])]
    if p == "dynamic_update_slice":
        return [sc.emit1("dynamic_update_slice", ins, odt, osh)]
    if p == "concatenate":
        return [sc.emit1("concatenate", ins, odt, osh, [("dim", int(prm["dimension"]))])]
    if p == "split":
        x = ins[0]
        ax = int(prm["axis"])
        res, off = [], 0
        for av in outs_av:
            sz = av.shape[ax]
            st = [0] * len(x[2])
            lim = list(x[2])
            st[ax], lim[ax] = off, off + sz
            res.append(sc.emit1("slice", [x], tname(av.dtype), av.shape,
                                [("start", st), ("limit", lim), ("stride", [1] * len(st))]))
            off += sz
        return res
    if p == "pad":
        cfg = prm["padding_config"]
        return [sc.emit1("pad", ins, odt, osh, [("low", [c[0] for c in cfg]),
                                                ("high", [c[1] for c in cfg]),
                                                ("interior", [c[2] for c in cfg])])]
    if p == "rev":
        return [sc.emit1("reverse", ins, odt, osh, [("dims", list(prm["dimensions"]))])]
    if p == "iota":
        return [sc.emit1("iota", [], odt, osh, [("dim", int(prm["dimension"]))])]
    if p == "sort":
        return sc.emit("sort", ins, [(tname(a.dtype), a.shape) for a in outs_av],
                       [("dim", int(prm["dimension"])), ("num_keys", int(prm["num_keys"])),
                        ("descending", False), ("stable", bool(prm["is_stable"]))])
    if p == "gather":
        dn = prm["dimension_numbers"]
        if dn.operand_batching_dims or dn.start_indices_batching_dims:
            raise Unmapped("gather with batching dims")
        idx = ins[1]
        return [sc.emit1("gather", ins, odt, osh, [
            ("offset_dims", list(dn.offset_dims)),
            ("collapsed_slice_dims", list(dn.collapsed_slice_dims)),
            ("start_index_map", list(dn.start_index_map)),
            ("index_vector_dim", len(idx[2]) - 1),
            ("slice_sizes", list(prm["slice_sizes"]))])]
    if p in ("scatter-add", "scatter_add", "scatter"):
        dn = prm["dimension_numbers"]
        if dn.operand_batching_dims or dn.scatter_indices_batching_dims:
            raise Unmapped("scatter with batching dims")
        idx = ins[1]
        return [sc.emit1("scatter", ins, odt, osh, [
            ("update_window_dims", list(dn.update_window_dims)),
            ("inserted_window_dims", list(dn.inserted_window_dims)),
            ("scatter_dims_to_operand_dims", list(dn.scatter_dims_to_operand_dims)),
            ("index_vector_dim", len(idx[2]) - 1),
            ("kind", Raw("replace" if p == "scatter" else "add"))])]
    if p == "scan":
        if NATIVE_SCAN[0]:
            return native_scan(sc, prm, ins, outs_av)
        return unroll_scan(sc, prm, ins)
    if p == "while":
        cn, bn = int(prm["cond_nconsts"]), int(prm["body_nconsts"])
        cconsts, bconsts, carry = ins[:cn], ins[cn:cn + bn], ins[cn + bn:]
        ptypes = [(v[1], v[2]) for v in cconsts + bconsts + carry]
        # cond sees (cond consts, body consts, carry) but uses cond consts + carry:
        # declare all, translate with a reordered argument list
        rc = region_while(sc, "cond", prm["cond_jaxpr"], ptypes, cn, bn, use="cond")
        rb = region_while(sc, "body", prm["body_jaxpr"], ptypes, cn, bn, use="body")
        return sc.emit("while", cconsts + bconsts + carry, [(a[1], a[2]) for a in carry],
                       [("n_consts", cn + bn)], [rc, rb])
    if p == "cond":
        idx, args = ins[0], ins[1:]
        ptypes = [(v[1], v[2]) for v in args]
        regs = [region(sc, "branch", br, ptypes) for br in prm["branches"]]
        if idx[1] not in ("i32", "bool"):
            idx = sc.convert(idx, "i32")
        return sc.emit("cond", [idx] + args, [(tname(a.dtype), a.shape) for a in outs_av],
                       None, regs)
    raise Unmapped("no IR translation for primitive %r (params %s)" % (p, sorted(prm)))


NATIVE_SCAN = [False]  # set per case (func(native_scan=True)): lax.scan -> ryft's scan op


def native_scan(sc, prm, ins, outs_av):
    """lax.scan as ryft's scan op: body (consts, carry, x slices) -> (carry, y slices)."""
    n, nc, nk = int(prm["length"]), int(prm["num_consts"]), int(prm["num_carry"])
    ptypes = [(v[1], v[2]) for v in ins[:nc + nk]] + [(v[1], v[2][1:]) for v in ins[nc + nk:]]
    body = region(sc, "body", prm["jaxpr"], ptypes)
    return sc.emit("scan", ins, [(tname(a.dtype), a.shape) for a in outs_av],
                   [("length", n), ("n_consts", nc), ("n_carry", nk), ("reverse", bool(prm["reverse"]))],
                   [body])


def unroll_scan(sc, prm, ins):
    """lax.scan unrolled: ryft's reverse mode cannot go through a while loop,
    so a scan of static length becomes `length` inlined copies of its body,
    slicing xs and stacking ys (concatenate of reshaped slices)."""
    n, nc, nk = int(prm["length"]), int(prm["num_consts"]), int(prm["num_carry"])
    jaxpr, consts = closed_parts(prm["jaxpr"])
    cs, carry, xs = ins[:nc], list(ins[nc:nc + nk]), ins[nc + nk:]
    ys_parts = None
    order = range(n - 1, -1, -1) if prm["reverse"] else range(n)
    for t in order:
        xt = []
        for x in xs:
            sh = list(x[2])
            st = [0] * len(sh)
            lim = list(sh)
            st[0], lim[0] = t, t + 1
            s1 = sc.emit1("slice", [x], x[1], [1] + sh[1:],
                          [("start", st), ("limit", lim), ("stride", [1] * len(sh))])
            xt.append(sc.emit1("reshape", [s1], x[1], sh[1:]))
        inner = Scope(sc.em, sc.indent)
        inner.lines = sc.lines
        outs = translate_jaxpr(inner, jaxpr, consts, list(cs) + carry + xt)
        carry = outs[:nk]
        ys = outs[nk:]
        if ys_parts is None:
            ys_parts = [[None] * n for _ in ys]
        for k, y in enumerate(ys):
            ys_parts[k][t] = sc.emit1("reshape", [y], y[1], (1,) + tuple(y[2]))
    res = list(carry)
    for parts in ys_parts or []:
        y0 = parts[0]
        res.append(sc.emit1("concatenate", parts, y0[1], (n,) + tuple(y0[2][1:]), [("dim", 0)]))
    return res


def region_while(sc, label, closed, ptypes, cn, bn, use):
    jaxpr, consts = closed_parts(closed)
    sub = Scope(sc.em, sc.indent + 2)
    params = [(sub.em.fresh(), dt, tuple(sh)) for dt, sh in ptypes]
    if use == "cond":
        args = params[:cn] + params[cn + bn:]
    else:
        args = params[cn:cn + bn] + params[cn + bn:]
    outs = translate_jaxpr(sub, jaxpr, consts, args)
    head = "%s%s (%s) {" % ("  " * (sc.indent + 1), label,
                             ", ".join("%s: %s" % (p[0], ttype(p[1], p[2])) for p in params))
    body = [head] + sub.lines
    body.append("%sreturn %s" % ("  " * (sc.indent + 2), ", ".join(o[0] for o in outs)))
    body.append("%s}" % ("  " * (sc.indent + 1)))
    return body


def to_ir(fn, args, argnames):
    closed = jax.make_jaxpr(fn)(*args)
    em = Emitter()
    sc = Scope(em, 1)
    params = [("%" + n, tname(np.asarray(a).dtype), tuple(np.shape(a))) for n, a in zip(argnames, args)]
    outs = translate_jaxpr(sc, closed.jaxpr, closed.consts, params)
    head = "func @main(%s) -> (%s) {" % (
        ", ".join("%s: %s" % (q[0], ttype(q[1], q[2])) for q in params),
        ", ".join(ttype(o[1], o[2]) for o in outs))
    text = "\n".join([head] + sc.lines + ["  return %s" % ", ".join(o[0] for o in outs), "}"]) + "\n"
    prims = set()

    def walk(j):
        for e in j.eqns:
            prims.add(e.primitive.name)
            for v in e.params.values():
                for sub in (v if isinstance(v, (list, tuple)) else [v]):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)
    walk(closed.jaxpr)
    return text, prims


# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------

B = 3  # vmap batch size


class In:
    """An input: a name, a shape and how to draw it (so vmap can draw a
    batched version with the same distribution)."""

    def __init__(self, name, shape, kind="normal", lo=-1.0, hi=1.0, dtype="f64", value=None):
        self.name, self.shape, self.kind = name, tuple(shape), kind
        self.lo, self.hi, self.dtype, self.value = lo, hi, dtype, value

    @property
    def is_float(self):
        return self.dtype == "f64"

    def draw(self, rng, shape=None):
        shape = self.shape if shape is None else tuple(shape)
        if self.value is not None and shape == self.shape:
            return np.asarray(self.value, dtype=np.float64 if self.is_float else np.int32)
        if self.kind == "normal":
            return rng.normal(size=shape).astype(np.float64)
        if self.kind == "unif":
            return rng.uniform(self.lo, self.hi, size=shape).astype(np.float64)
        if self.kind == "int":
            return rng.integers(int(self.lo), int(self.hi), size=shape).astype(np.int32)
        if self.kind == "perm":  # distinct values: no ties for sort/max
            n = int(np.prod(shape))
            v = (rng.permutation(n) + rng.uniform(0.1, 0.9, size=n)) / max(n, 1) * 4.0 - 2.0
            return v.reshape(shape)
        raise ValueError(self.kind)


def N(name, *shape):
    return In(name, shape)


def U(name, lo, hi, *shape):
    return In(name, shape, "unif", lo, hi)


def I(name, lo, hi, *shape):
    return In(name, shape, "int", lo, hi, dtype="i32")


def P(name, *shape):
    return In(name, shape, "perm")


FUNCS = []
DERIV = []  # deriv.tgolden: the cases of issues 18 and 10 (derivatives that differed from JAX)


def func(name, ins, fwd_only=False, argnums=None, jac_argnum=None, vmap=None, tol=(1e-9, 1e-12), into=None,
         ir=None, kinds=None, grads=None, native_scan=False, batched=None):
    """Register fn(*inputs) as a golden function. fwd_only: no reverse mode
    (while loops), so no grad / vjp / hvp / jacrev. vmap: list of in_axes
    tuples (None = not batched); default: all inputs at axis 0, and input 0
    at its last axis with the others unbatched.
    For deriv.tgolden (into=DERIV): ir, the program as IR text when the
    translator cannot write it (calls with custom rules); kinds, the checks to
    write (default: all that apply); grads, several argnum tuples to check;
    native_scan, lax.scan as ryft's scan op instead of unrolled; batched, the
    inputs (batch axis 0) of the gradvmap / vmapgrad checks."""
    def deco(fn):
        (FUNCS if into is None else into).append(dict(
            name=name, fn=fn, ins=ins, fwd_only=fwd_only, argnums=argnums, jac_argnum=jac_argnum,
            vmap=vmap, tol=tol, ir=ir, kinds=kinds, grads=grads, native_scan=native_scan,
            batched=batched))
        return fn
    return deco


# ----------------------------------------------------------------------------
# JAX references
# ----------------------------------------------------------------------------

def as_tuple(o):
    return tuple(o) if isinstance(o, (tuple, list)) else (o,)


def npa(x):
    return np.asarray(jax.device_get(x))


def float_fn(fn, args, float_idx):
    """fn as a function of its float inputs only (others fixed)."""
    def g(*fl):
        a = list(args)
        for i, v in zip(float_idx, fl):
            a[i] = v
        return fn(*a)
    return g


def rng_for(tag):
    seed = sum((i + 1) * ord(c) for i, c in enumerate(tag)) % (2 ** 32)
    return np.random.default_rng(seed)


def build_case(spec):
    name, fn, ins = spec["name"], spec["fn"], spec["ins"]
    rng = rng_for(name)
    args = [i.draw(rng) for i in ins]
    fidx = [k for k, i in enumerate(ins) if i.is_float]
    NATIVE_SCAN[0] = spec.get("native_scan", False)
    if spec.get("ir"):
        ir, prims = spec["ir"], {"(IR written by hand)"}
    else:
        ir, prims = to_ir(fn, args, [i.name for i in ins])
    NATIVE_SCAN[0] = False
    kinds = spec.get("kinds")

    def want(kind):
        return kinds is None or kind in kinds
    outs = [npa(o) for o in as_tuple(fn(*args))]
    checks = [("eval", "", [], outs)]
    scalar = len(outs) == 1 and outs[0].shape == () and outs[0].dtype == np.float64
    rev = not spec["fwd_only"]
    # grad
    if scalar and rev and want("grad"):
        for argnums in spec.get("grads") or [spec["argnums"] or fidx]:
            g = jax.grad(fn, argnums=tuple(argnums))(*args)
            checks.append(("grad", " ".join(str(a) for a in argnums), [], [npa(x) for x in g]))
    # compositions with vmap over axis 0 of every input (deriv.tgolden)
    if scalar and (want("gradvmap") or want("vmapgrad")) and kinds is not None:
        argnums = tuple(spec["argnums"] or fidx)
        bargs = [inp.draw(rng, (B,) + inp.shape) for inp in ins]
        if spec.get("batched") is not None:
            bargs = [np.asarray(v) for v in spec["batched"]]
        if want("gradvmap"):
            g = jax.grad(lambda *a: jnp.sum(jax.vmap(fn)(*a)), argnums=argnums)(*bargs)
            checks.append(("gradvmap", " ".join(str(a) for a in argnums), bargs, [npa(x) for x in g]))
        if want("vmapgrad"):
            g = jax.vmap(jax.grad(fn, argnums=argnums))(*bargs)
            checks.append(("vmapgrad", " ".join(str(a) for a in argnums), bargs, [npa(x) for x in g]))
    # jvp: tangents for every input (zeros for integer ones)
    tans = [rng.normal(size=a.shape) if ins[k].is_float else np.zeros(a.shape, a.dtype)
            for k, a in enumerate(args)]
    ff = float_fn(fn, args, fidx)
    if want("jvp") or want("linearize"):
        po, to = jax.jvp(lambda *fl: as_tuple(ff(*fl)), tuple(args[k] for k in fidx),
                         tuple(tans[k] for k in fidx))
        to = [npa(t) if o.dtype == np.float64 else np.zeros(o.shape, o.dtype) for t, o in zip(to, outs)]
        if want("jvp"):
            checks.append(("jvp", "", tans, [npa(x) for x in po] + to))
        if kinds is not None and want("linearize"):
            _, lin = jax.linearize(lambda *fl: as_tuple(ff(*fl)), *(args[k] for k in fidx))
            lo = lin(*(tans[k] for k in fidx))
            lo = [npa(t) if o.dtype == np.float64 else np.zeros(o.shape, o.dtype) for t, o in zip(lo, outs)]
            checks.append(("linearize", "", tans, [npa(x) for x in po] + lo))
    # vjp: cotangents for every output (zeros for integer ones)
    if rev and want("vjp"):
        cts = [rng.normal(size=o.shape) if o.dtype == np.float64 else np.zeros(o.shape, o.dtype)
               for o in outs]
        _, pull = jax.vjp(lambda *fl: as_tuple(ff(*fl)), *(args[k] for k in fidx))
        jcts = tuple(c if o.dtype == np.float64 else np.zeros(o.shape, jax.dtypes.float0)
                     for c, o in zip(cts, outs))
        gi = pull(jcts)
        res = [np.zeros(a.shape, a.dtype) for a in args]
        for k, v in zip(fidx, gi):
            res[k] = npa(v)
        checks.append(("vjp", "", cts, res))
    # vmap
    variants = spec["vmap"]
    if variants is None:
        variants = [tuple(0 for _ in ins)]
        mix = tuple([len(ins[0].shape)] + [None] * (len(ins) - 1))
        variants.append(mix)
    for axes in (variants if want("vmap") else []):
        bargs = []
        for k, (inp, ax) in enumerate(zip(ins, axes)):
            if ax is None:
                bargs.append(args[k])
            else:
                sh = list(inp.shape)
                sh.insert(ax if ax >= 0 else len(sh) + 1 + ax, B)
                bargs.append(inp.draw(rng, sh))
        mixed = any(a is None for a in axes) or any(a not in (0, None) for a in axes)
        out_axes = -1 if mixed else 0
        vo = jax.vmap(lambda *a: as_tuple(fn(*a)), in_axes=tuple(axes), out_axes=out_axes)(*bargs)
        desc = "%s out=%d" % (",".join("none" if a is None else str(a) for a in axes), out_axes)
        checks.append(("vmap", desc, bargs, [npa(x) for x in vo]))
    # hvp and jacobians w.r.t. one float input
    ja = spec["jac_argnum"] if spec["jac_argnum"] is not None else fidx[0]

    def f_of(x):
        a = list(args)
        a[ja] = x
        return as_tuple(fn(*a))
    if scalar and rev and want("hvp"):
        v = rng.normal(size=args[ja].shape)
        hv = jax.jvp(jax.grad(lambda x: f_of(x)[0]), (args[ja],), (v,))[1]
        checks.append(("hvp", str(ja), [v], [npa(hv)]))
        if args[ja].size <= 24 and want("hessian"):  # the full Hessian (ry_hessian: jacfwd of jacrev)
            h = jax.hessian(lambda x: f_of(x)[0])(args[ja])
            checks.append(("hessian", str(ja), [], [npa(h)]))
    if outs[0].dtype == np.float64 and want("jacfwd"):
        jf = jax.jacfwd(lambda x: f_of(x)[0])(args[ja])
        checks.append(("jacfwd", str(ja), [], [npa(jf)]))
    if outs[0].dtype == np.float64 and want("jacrev"):
        if rev:
            jr = jax.jacrev(lambda x: f_of(x)[0])(args[ja])
            checks.append(("jacrev", str(ja), [], [npa(jr)]))
    return dict(name=name, tol=spec["tol"], ir=ir, args=args, checks=checks, prims=prims)


def write(cases, path, about=""):
    n_checks = sum(len(c["checks"]) for c in cases)
    with open(path, "w") as f:
        f.write("# Generated by tests/golden/gen_transform_goldens.py from JAX %s (CPU, x64).\n"
                % jax.__version__)
        if about:
            f.write(about)
        f.write("# Do not edit. Regenerate with:\n")
        f.write("#   /work/jaxenv/bin/python tests/golden/gen_transform_goldens.py\n")
        f.write("# %d functions, %d (function, transform) checks. Format: FORMAT.md,\n"
                "# section \"Transform goldens\".\n\n" % (len(cases), n_checks))
        for c in cases:
            f.write("case %s\n" % c["name"])
            f.write("# primitives: %s\n" % " ".join(sorted(c["prims"])))
            f.write("tol %g %g\n" % c["tol"])
            f.write("ir\n")
            f.write(c["ir"])
            f.write("end_ir\n")
            for a in c["args"]:
                f.write("in %s %s\n" % (tstr(a), hexa(a)))
            for kind, desc, extra, outs in c["checks"]:
                f.write("check %s%s\n" % (kind, (" " + desc) if desc else ""))
                for a in extra:
                    a = np.asarray(a)
                    f.write("in %s %s\n" % (tstr(a), hexa(a)))
                for a in outs:
                    a = np.asarray(a)
                    f.write("out %s %s\n" % (tstr(a), hexa(a)))
            f.write("end\n\n")
    return n_checks


# ----------------------------------------------------------------------------
# the functions
# ----------------------------------------------------------------------------

def _xent(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(logp[jnp.arange(logits.shape[0]), labels])


@func("softmax_xent_gather", [N("logits", 4, 5), I("labels", 0, 5, 4)])
def softmax_xent_gather(logits, labels):
    return _xent(logits, labels)


@func("softmax_xent_onehot", [N("logits", 3, 6), I("labels", 0, 6, 3)])
def softmax_xent_onehot(logits, labels):
    oh = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return -jnp.sum(oh * jax.nn.log_softmax(logits)) / logits.shape[0]


@func("softmax", [N("x", 3, 5)])
def softmax(x):
    return jax.nn.softmax(x, axis=-1)


@func("log_softmax", [N("x", 2, 6)])
def log_softmax(x):
    return jax.nn.log_softmax(x, axis=-1)


@func("logsumexp", [N("x", 3, 6)])
def logsumexp(x):
    return jax.nn.logsumexp(x, axis=-1)


@func("logsumexp_scalar", [N("x", 7)])
def logsumexp_scalar(x):
    return jax.nn.logsumexp(2.0 * x)


def _layer_norm(x, g, b, eps=1e-5):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) * lax.rsqrt(var + eps) * g + b


@func("layer_norm", [N("x", 3, 6), U("gamma", 0.5, 1.5, 6), N("beta", 6)])
def layer_norm(x, g, b):
    return _layer_norm(x, g, b)


@func("layer_norm_loss", [N("x", 4, 5), U("gamma", 0.5, 1.5, 5), N("beta", 5)])
def layer_norm_loss(x, g, b):
    return jnp.sum(jnp.sin(_layer_norm(x, g, b)))


def _rms_norm(x, w, eps=1e-6):
    return x * lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * w


@func("rms_norm", [N("x", 3, 8), U("w", 0.5, 1.5, 8)])
def rms_norm(x, w):
    return _rms_norm(x, w)


def _mha(x, wq, wk, wv, wo, heads=2):
    t, d = x.shape
    hd = d // heads
    q = (x @ wq).reshape(t, heads, hd).transpose(1, 0, 2)
    k = (x @ wk).reshape(t, heads, hd).transpose(1, 0, 2)
    v = (x @ wv).reshape(t, heads, hd).transpose(1, 0, 2)
    s = jnp.einsum("hqd,hkd->hqk", q, k) / jnp.sqrt(float(hd))
    mask = jnp.tril(jnp.ones((t, t), dtype=bool))
    s = jnp.where(mask[None], s, -1e9)
    a = jax.nn.softmax(s, axis=-1)
    o = jnp.einsum("hqk,hkd->hqd", a, v).transpose(1, 0, 2).reshape(t, d)
    return o @ wo


W8 = [U(n, -0.5, 0.5, 8, 8) for n in ("wq", "wk", "wv", "wo")]


@func("mha_causal", [N("x", 4, 8)] + W8)
def mha_causal(x, wq, wk, wv, wo):
    return _mha(x, wq, wk, wv, wo)


@func("mha_causal_loss", [N("x", 4, 8)] + W8, jac_argnum=1)
def mha_causal_loss(x, wq, wk, wv, wo):
    return jnp.mean(_mha(x, wq, wk, wv, wo) ** 2)


@func("attention_single_head", [N("q", 3, 4), N("k", 5, 4), N("v", 5, 2)])
def attention_single_head(q, k, v):
    return jax.nn.softmax(q @ k.T / 2.0, axis=-1) @ v


@func("transformer_block_loss", [N("x", 4, 8), U("g", 0.5, 1.5, 8)] + W8[:3] +
      [U("w1", -0.5, 0.5, 8, 6), U("w2", -0.5, 0.5, 6, 8)])
def transformer_block_loss(x, g, wq, wk, wv, w1, w2):
    h = x + _mha(_rms_norm(x, g), wq, wk, wv, jnp.eye(8))
    h = h + jax.nn.gelu(_layer_norm(h, g, 0.0) @ w1) @ w2
    return jnp.mean(h ** 2)


def _conv_net(x, k1, b1, w, b):
    y = lax.conv_general_dilated(x, k1, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    y = jax.nn.relu(y + b1[None, :, None, None])
    n, c, hh, ww = y.shape
    y = y.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))  # 2x2 max pool
    return y.reshape(n, -1) @ w + b


CONV_INS = [N("x", 2, 1, 4, 4), U("k1", -0.5, 0.5, 3, 1, 3, 3), U("b1", 0.05, 0.2, 3),
            U("w", -0.5, 0.5, 12, 3), N("b", 3)]


@func("conv_net_logits", CONV_INS)
def conv_net_logits(x, k1, b1, w, b):
    return _conv_net(x, k1, b1, w, b)


@func("conv_net_xent", CONV_INS + [I("labels", 0, 3, 2)], jac_argnum=1)
def conv_net_xent(x, k1, b1, w, b, labels):
    return _xent(_conv_net(x, k1, b1, w, b), labels)


@func("conv1d_stride_mean_pool", [N("x", 2, 2, 9), U("k", -0.5, 0.5, 3, 2, 3)])
def conv1d_stride_mean_pool(x, k):
    y = lax.conv_general_dilated(x, k, (2,), [(1, 1)])
    return jnp.tanh(y).mean(axis=-1)


def _rnn(h, x, wh, wx, b):
    return jnp.tanh(h @ wh + x @ wx + b)


RNN_INS = [N("h", 4), N("x", 3), U("wh", -0.6, 0.6, 4, 4), U("wx", -0.6, 0.6, 3, 4), N("b", 4)]


@func("rnn_step", RNN_INS)
def rnn_step(h, x, wh, wx, b):
    return _rnn(h, x, wh, wx, b)


@func("rnn_scan_loss", [N("h", 4), N("xs", 5, 3), U("wh", -0.6, 0.6, 4, 4), U("wx", -0.6, 0.6, 3, 4),
                        N("b", 4)])
def rnn_scan_loss(h, xs, wh, wx, b):
    def step(c, x):
        c = _rnn(c, x, wh, wx, b)
        return c, jnp.sum(c)
    hT, ys = lax.scan(step, h, xs)
    return jnp.sum(hT ** 2) + jnp.sum(ys * jnp.arange(1.0, 6.0))


def _lstm(h, c, x, w, b):
    z = jnp.concatenate([h, x]) @ w + b
    i, f, g, o = jnp.split(z, 4)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


LSTM_W = [U("w", -0.5, 0.5, 6, 12), N("b", 12)]


@func("lstm_step", [N("h", 3), N("c", 3), N("x", 3)] + LSTM_W)
def lstm_step(h, c, x, w, b):
    return _lstm(h, c, x, w, b)


@func("lstm_unrolled_loss", [N("h", 3), N("c", 3), N("xs", 3, 3)] + LSTM_W)
def lstm_unrolled_loss(h, c, xs, w, b):
    loss = 0.0
    for t in range(xs.shape[0]):
        h, c = _lstm(h, c, xs[t], w, b)
        loss = loss + jnp.sum(h * (t + 1.0))
    return loss + jnp.sum(c ** 2)


@func("lstm_scan_loss", [N("h", 3), N("c", 3), N("xs", 4, 3)] + LSTM_W)
def lstm_scan_loss(h, c, xs, w, b):
    def step(carry, x):
        hh, cc = _lstm(carry[0], carry[1], x, w, b)
        return (hh, cc), hh
    (hT, cT), hs = lax.scan(step, (h, c), xs)
    return jnp.sum(hs ** 2) + jnp.sum(hT * cT)


def _newton_sqrt(a):
    def cond(s):
        x, i = s
        return jnp.logical_and(jnp.any(jnp.abs(x * x - a) > 1e-12 * a), i < 50)

    def body(s):
        x, i = s
        return 0.5 * (x + a / x), i + 1
    return lax.while_loop(cond, body, (a + 1.0, 0))[0]


@func("newton_sqrt_while", [U("a", 0.5, 4.0, 4)], fwd_only=True)
def newton_sqrt_while(a):
    return _newton_sqrt(a) * jnp.sum(a)


@func("newton_sqrt_while_scalar", [U("a", 0.5, 9.0)], fwd_only=True)
def newton_sqrt_while_scalar(a):
    return _newton_sqrt(a)


@func("newton_kepler_while", [U("m", 0.2, 3.0, 3), U("e", 0.1, 0.6)], fwd_only=True)
def newton_kepler_while(m, e):
    # solve E - e sin E = M for E
    def cond(s):
        E, i = s
        return jnp.logical_and(jnp.max(jnp.abs(E - e * jnp.sin(E) - m)) > 1e-13, i < 60)

    def body(s):
        E, i = s
        return E - (E - e * jnp.sin(E) - m) / (1.0 - e * jnp.cos(E)), i + 1
    return lax.while_loop(cond, body, (m, 0))[0]


@func("fixed_trip_while", [N("x", 3), U("r", 0.2, 0.8)], fwd_only=True)
def fixed_trip_while(x, r):
    def body(s):
        i, v = s
        return i + 1, jnp.sin(v) * r + v * 0.5
    return lax.while_loop(lambda s: s[0] < 4, body, (0, x))[1]


@func("embedding_lookup_loss", [U("table", -1.0, 1.0, 6, 4), I("ids", 0, 6, 5), U("w", -0.5, 0.5, 4, 2)])
def embedding_lookup_loss(table, ids, w):
    e = table[ids]
    return jnp.sum(jnp.tanh(e @ w))


@func("embedding_bag_mean", [N("table", 7, 3), I("ids", 0, 7, 2, 3)])
def embedding_bag_mean(table, ids):
    return jnp.take(table, ids, axis=0).mean(axis=1)


@func("median_sort", [P("x", 7)])
def median_sort(x):
    return jnp.median(x)


@func("median_even_rows", [P("x", 3, 6)])
def median_even_rows(x):
    return jnp.median(x, axis=1) * jnp.arange(1.0, 4.0)


@func("sort_topk_weighted", [P("x", 6), N("w", 3)])
def sort_topk_weighted(x, w):
    return jnp.sum(jnp.sort(x)[-3:] * w)


@func("sort_with_payload", [P("k", 5), N("v", 5)])
def sort_with_payload(k, v):
    ks, vs = lax.sort((k, v), num_keys=1)
    return vs * jnp.exp(ks)


@func("cumsum_mix", [N("x", 6), N("y", 6)])
def cumsum_mix(x, y):
    return jnp.cumsum(x * y) + lax.cumsum(jnp.sin(x), reverse=True)


@func("cumsum_2d_loss", [N("x", 3, 4)])
def cumsum_2d_loss(x):
    return jnp.sum(jnp.cumsum(x, axis=1) ** 2) + jnp.sum(jnp.cumsum(x, axis=0) * x)


def _pool(x, init, op, window, strides, padding, base=None, wdil=None):
    return lax.reduce_window(x, init, op, window, strides, padding, base_dilation=base,
                             window_dilation=wdil)


@func("max_pool_loss", [N("x", 2, 6, 6, 3), N("w", 2, 3, 3, 3)])
def max_pool_loss(x, w):
    # flax's nn.max_pool: NHWC, 2x2 windows, stride 2, VALID
    y = _pool(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return jnp.sum(jnp.tanh(y) * w)


@func("max_pool_same_overlap", [N("x", 2, 5, 5)])
def max_pool_same_overlap(x):
    y = _pool(x, -jnp.inf, lax.max, (1, 3, 3), (1, 2, 2), "SAME")
    return jnp.sum(y * y)


@func("avg_pool_padded", [N("x", 2, 5, 6, 2)])
def avg_pool_padded(x):
    y = _pool(x, 0.0, lax.add, (1, 3, 2, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (0, 1), (0, 0))) / 6.0
    return jnp.sin(y)


@func("min_pool_dilated", [N("x", 3, 9)], fwd_only=True)  # JAX: no VJP with window dilation
def min_pool_dilated(x):
    y = _pool(x, jnp.inf, lax.min, (1, 3), (1, 2), ((0, 0), (1, 2)), base=(1, 1), wdil=(1, 2))
    return jnp.sum(y ** 3)


@func("sum_window_base_dilated", [N("x", 2, 4)])
def sum_window_base_dilated(x):
    y = _pool(x, 0.0, lax.add, (1, 3), (1, 1), ((0, 0), (1, 1)), base=(1, 2), wdil=(1, 1))
    return jnp.exp(y)


@func("cumprod", [U("x", 0.5, 1.5, 5)])
def cumprod(x):
    return jnp.cumprod(x)


def _mlp(x, w1, b1, w2, b2, act):
    return act(x @ w1 + b1) @ w2 + b2


MLP_INS = [N("x", 5, 3), U("w1", -0.7, 0.7, 3, 8), N("b1", 8), U("w2", -0.7, 0.7, 8, 2), N("b2", 2)]


@func("mlp_mse_tanh", MLP_INS + [N("y", 5, 2)], jac_argnum=1)
def mlp_mse_tanh(x, w1, b1, w2, b2, y):
    return jnp.mean((_mlp(x, w1, b1, w2, b2, jnp.tanh) - y) ** 2)


@func("mlp_xent_relu", MLP_INS + [I("labels", 0, 2, 5)], jac_argnum=1)
def mlp_xent_relu(x, w1, b1, w2, b2, labels):
    return _xent(_mlp(x, w1, b1, w2, b2, jax.nn.relu), labels)


@func("mlp_gelu_outputs", MLP_INS)
def mlp_gelu_outputs(x, w1, b1, w2, b2):
    return _mlp(x, w1, b1, w2, b2, jax.nn.gelu)


@func("gelu_tanh", [N("x", 7)])
def gelu_tanh(x):
    return jax.nn.gelu(x, approximate=True)


@func("gelu_erf", [N("x", 7)])
def gelu_erf(x):
    return jax.nn.gelu(x, approximate=False)


@func("silu_swish_loss", [N("x", 6)])
def silu_swish_loss(x):
    return jnp.sum(jax.nn.silu(x) + 0.3 * x * jax.nn.sigmoid(1.7 * x))


@func("softplus_mish", [N("x", 6)])
def softplus_mish(x):
    return x * jnp.tanh(jax.nn.softplus(x))


@func("poly_trig_mix", [N("x", 5), N("y", 5)])
def poly_trig_mix(x, y):
    return jnp.sum(jnp.sin(x) * jnp.cos(y) + x ** 3 - 2.0 * x * y + jnp.tan(0.3 * x) + y ** 4 / 12.0)


@func("trig_atan2_exp", [N("x", 5), N("y", 5)])
def trig_atan2_exp(x, y):
    return jnp.arctan2(x, y + 3.0) + jnp.exp(-x ** 2) * jnp.sin(3.0 * y)


@func("rational_sqrt", [N("x", 4), N("y", 4)])
def rational_sqrt(x, y):
    return (x ** 2 + 1.0) / (y ** 2 + 2.0) + jnp.sqrt(x ** 2 + y ** 2 + 1.0) + x ** -2 * 0.01


@func("pow_log_exp", [U("x", 0.5, 2.0, 5), U("y", 0.5, 2.0, 5)])
def pow_log_exp(x, y):
    return jnp.sum(x ** y + jnp.log(x) * jnp.expm1(0.5 * y) + jnp.log1p(x * y))


@func("l2_norm", [N("x", 3, 4)])
def l2_norm(x):
    return jnp.linalg.norm(x)


@func("lp3_norm", [N("x", 6)])
def lp3_norm(x):
    return jnp.sum(jnp.abs(x) ** 3) ** (1.0 / 3.0)


@func("frobenius_of_matmul", [N("a", 3, 4), N("b", 4, 2)])
def frobenius_of_matmul(a, b):
    return jnp.linalg.norm(a @ b)


@func("cosine_similarity", [N("a", 4, 5), N("b", 4, 5)])
def cosine_similarity(a, b):
    return jnp.sum(a * b, axis=-1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1))


@func("huber_loss", [N("pred", 8), N("target", 8)])
def huber_loss(pred, target):
    r = 1.5 * (pred - target)
    d = 1.0
    return jnp.mean(jnp.where(jnp.abs(r) < d, 0.5 * r ** 2, d * (jnp.abs(r) - 0.5 * d)))


@func("bce_with_logits", [N("z", 6), U("y", 0.0, 1.0, 6)])
def bce_with_logits(z, y):
    return jnp.mean(-y * jax.nn.log_sigmoid(z) - (1.0 - y) * jax.nn.log_sigmoid(-z))


@func("logistic_regression", [N("x", 5, 3), N("w", 3), I("y", 0, 2, 5)])
def logistic_regression(x, w, y):
    p = jax.nn.sigmoid(x @ w)
    yf = y.astype(jnp.float64)
    return -jnp.mean(yf * jnp.log(p) + (1.0 - yf) * jnp.log1p(-p)) + 0.1 * jnp.sum(w ** 2)


@func("kl_div_softmax", [N("p_logits", 2, 5), N("q_logits", 2, 5)])
def kl_div_softmax(pl, ql):
    p = jax.nn.softmax(pl)
    return jnp.sum(p * (jax.nn.log_softmax(pl) - jax.nn.log_softmax(ql)))


@func("batch_norm_train", [N("x", 5, 3), U("g", 0.5, 1.5, 3), N("b", 3)])
def batch_norm_train(x, g, b):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return (x - mu) / jnp.sqrt(var + 1e-5) * g + b


@func("quadratic_form", [N("x", 4), N("a", 4, 4)])
def quadratic_form(x, a):
    return x @ (a @ a.T) @ x + jnp.trace(a) * jnp.sum(x)


@func("piecewise_where_clip", [N("x", 8)])
def piecewise_where_clip(x):
    y = jnp.where(x > 0.1, x ** 2, jnp.sin(x))
    return y * jnp.clip(x, -0.8, 0.8) + jnp.maximum(x, 0.3 * x) - jnp.minimum(x, -0.2)


@func("glu_split", [N("x", 3, 4), U("w", -0.5, 0.5, 4, 6)])
def glu_split(x, w):
    a, b = jnp.split(x @ w, 2, axis=-1)
    return a * jax.nn.sigmoid(b)


@func("concat_pad_reverse", [N("x", 4), N("y", 3)])
def concat_pad_reverse(x, y):
    z = jnp.concatenate([x, y ** 2, jnp.sin(x[:2])])
    z = jnp.pad(z, (1, 2)) * jnp.arange(12.0)
    return z[::-1] * z + z[1:-1:2].sum()


@func("cond_branches", [N("x", 4), N("s", )], jac_argnum=0)
def cond_branches(x, s):
    return lax.cond(s > 0.0, lambda v: jnp.sum(jnp.sin(v) * s), lambda v: jnp.sum(v ** 2) - s, x)


@func("dynamic_slice_window", [N("x", 7), I("i", 0, 4)])
def dynamic_slice_window(x, i):
    w = lax.dynamic_slice(x, (i,), (3,))
    return jnp.sum(jnp.exp(w) * jnp.array([1.0, -2.0, 0.5]))


@func("scatter_add_segment_sum", [N("v", 6), I("seg", 0, 3, 6)])
def scatter_add_segment_sum(v, seg):
    s = jnp.zeros(3).at[seg].add(v * v)
    return jnp.tanh(s)


@func("argmax_pick", [P("x", 3, 5)])
def argmax_pick(x):
    i = jnp.argmax(x, axis=1)
    return jnp.max(x, axis=1) * 2.0 + jnp.sum(x, axis=1), i


@func("polyval_horner", [N("c", 5), N("x", 3)], jac_argnum=0)
def polyval_horner(c, x):
    return jnp.polyval(c, x)


@func("max_pool_relu", [N("x", 2, 6)])
def max_pool_relu(x):
    return jax.nn.relu(x.reshape(2, 3, 2).max(axis=-1)) + x.reshape(2, 3, 2).min(axis=-1) * 0.1


@func("conv2d_nhwc_depthwise_dilated", [N("x", 1, 5, 6, 2), U("k", -0.5, 0.5, 2, 3, 1, 4)],
      vmap=[(0, 0), (3, None), (None, 2)])
def conv2d_nhwc_depthwise_dilated(x, k):
    y = lax.conv_general_dilated(x, k, (1, 2), [(1, 0), (1, 1)], rhs_dilation=(2, 1),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=2)
    return jnp.sum(jnp.tanh(y) ** 2)


@func("conv1d_lhs_dilated_grouped", [N("x", 2, 4, 5), U("k", -0.5, 0.5, 6, 2, 2)])
def conv1d_lhs_dilated_grouped(x, k):
    return lax.conv_general_dilated(x, k, (1,), [(1, 2)], lhs_dilation=(2,), feature_group_count=2)


@func("layer_norm_vmap_axes", [N("x", 3, 6), U("gamma", 0.5, 1.5, 6), N("beta", 6)],
      vmap=[(1, None, 0), (-1, 0, None), (0, 0, 0)])
def layer_norm_vmap_axes(x, g, b):
    return _layer_norm(x, g, b)


@func("dynamic_update_slice_roll", [N("x", 6), N("u", 2), I("i", 0, 5)])
def dynamic_update_slice_roll(x, u, i):
    y = lax.dynamic_update_slice(jnp.sin(x), u * u, (i,))
    return jnp.roll(y, 2) * x


@func("cond_vmap_grad", [N("x", 3), N("w", 3)], vmap=[(0, 0), (None, 0), (0, None)])
def cond_vmap_grad(x, w):
    return lax.cond(jnp.dot(x, w) > 0.0, lambda a, b: jnp.sum(jnp.exp(a * b)),
                    lambda a, b: jnp.sum(a ** 2 * jnp.cos(b)), x, w)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    only = sys.argv[2] if len(sys.argv) > 2 else None
    deriv_only = only == "--deriv"  # only deriv.tgolden
    if deriv_only:
        only = None
    cases = []
    for spec in ([] if deriv_only else FUNCS):
        if only and only not in spec["name"]:
            continue
        cases.append(build_case(spec))
    path = os.path.join(outdir, "transforms.tgolden")
    n = write(cases, path) if not deriv_only else 0
    print("%s: %d functions, %d checks, %d bytes" % (path, len(cases), n, os.path.getsize(path)))
    import deriv_cases
    deriv_cases.register(sys.modules[__name__])
    cases = [build_case(spec) for spec in DERIV if not only or only in spec["name"]]
    path = os.path.join(outdir, "deriv.tgolden")
    n = write(cases, path, "# The derivative cases of issues 18 and 10 (tests/golden/deriv_cases.py).\n")
    print("%s: %d functions, %d checks, %d bytes" % (path, len(cases), n, os.path.getsize(path)))


if __name__ == "__main__":
    main()
