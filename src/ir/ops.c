/* The public op constructors: NumPy-style broadcasting and promotion at the
 * user level, then one primitive node each (see builder.c for emission). */
#include <math.h>

#include "builder.h"
#include "ryft/gguf.h"

static ry_type vtype(ry_builder *b, ry_value v) { return ry_value_type(b, v); }

static bool check_value(ry_builder *b, ry_loc loc, const char *name, ry_value v, int i) {
  if (!ryb_ok(b)) return false;
  if (v.id == 0 || v.id >= (uint32_t)b->g->n_values) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "operand %d is not a valid value (id %u)", i, v.id);
    return false;
  }
  return true;
}

/* Normalise a possibly negative axis; out-of-range values are left for the
 * shape rule to report. */
static int64_t norm_axis(int64_t a, int rank) { return (a < 0 && a >= -rank) ? a + rank : a; }
static ry_axes norm_axes(ry_axes a, int rank) {
  for (int i = 0; i < a.n && i < RY_MAX_RANK; i++) a.v[i] = norm_axis(a.v[i], rank);
  return a;
}

static bool valid_axes_list(ry_builder *b, ry_loc loc, const char *name, const ry_axes *a) {
  if (a->n < 0 || a->n > RY_MAX_RANK) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "an axis list has %d entries (at most %d)", a->n, RY_MAX_RANK);
    return false;
  }
  return true;
}

/* ---- constants ---- */

ry_value ry_constant_(ry_builder *b, ry_loc loc, const ry_array *a) {
  if (!ryb_ok(b)) return (ry_value){0};
  if (!a) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "constant", "the array is NULL"), (ry_value){0};
  ry_status hs = ry__array_sync(a); /* a device array: the graph holds its bytes on the host */
  if (hs) {
    ryb_failf(b, loc, ry_status_code(hs), "constant", "the device array cannot be read: %s", ry_status_message(hs));
    ry_status_free(hs);
    return (ry_value){0};
  }
  ry_attrs at;
  memset(&at, 0, sizeof at);
  at.constant.value = ry_array_retain((ry_array *)a);
  return ryb_emit1(b, loc, RY_OP_CONSTANT, 0, NULL, &at, NULL);
}

ry_value ry_full_(ry_builder *b, ry_loc loc, ry_dtype t, ry_shape s, double v) {
  if (!ryb_ok(b)) return (ry_value){0};
  ry_array *a;
  ry_status st = ry_array_full(t, s, v, &a);
  if (st) return ryb_fail(b, ry__err_prefix(st, "full at %s:%d", loc.file ? loc.file : "?", loc.line)), (ry_value){0};
  ry_value r = ry_constant_(b, loc, a);
  ry_array_release(a);
  return r;
}

ry_value ry_scalar_(ry_builder *b, ry_loc loc, ry_dtype t, double v) { return ry_full_(b, loc, t, ry_shape_make(0, NULL), v); }

ry_value ry_iota_(ry_builder *b, ry_loc loc, ry_dtype t, ry_shape s, int dim) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.iota.dim = norm_axis(dim, s.rank);
  ry_type req = {t, s};
  return ryb_emit1(b, loc, RY_OP_IOTA, 0, NULL, &a, &req);
}

ry_value ry_const_like_(ry_builder *b, ry_loc loc, ry_value x, double v) {
  if (!check_value(b, loc, "const_like", x, 0)) return (ry_value){0};
  return ry_scalar_(b, loc, vtype(b, x).dtype, v);
}

/* ---- broadcasting helpers ---- */

ry_value ry_broadcast_in_dim_(ry_builder *b, ry_loc loc, ry_value x, ry_shape shape, ry_axes dims) {
  if (!valid_axes_list(b, loc, "broadcast_in_dim", &dims)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.broadcast.dims = dims;
  ry_type req = {check_value(b, loc, "broadcast_in_dim", x, 0) ? vtype(b, x).dtype : RY_F32, shape};
  return ryb_emit1(b, loc, RY_OP_BROADCAST, 1, &x, &a, &req);
}

ry_value ry_broadcast_to_(ry_builder *b, ry_loc loc, ry_value x, ry_shape shape) {
  if (!check_value(b, loc, "broadcast_to", x, 0)) return (ry_value){0};
  ry_shape s = vtype(b, x).shape;
  if (ry_shape_equal(s, shape)) return x;
  if (s.rank > shape.rank) {
    char a[200], c[200];
    return ryb_failf(b, loc, RY_ERR_SHAPE, "broadcast_to", "cannot broadcast %s to the lower-rank shape %s",
                     ry_shape_str(s, a, sizeof a), ry_shape_str(shape, c, sizeof c)),
           (ry_value){0};
  }
  ry_axes dims = {s.rank, {0}};
  for (int i = 0; i < s.rank; i++) dims.v[i] = shape.rank - s.rank + i;
  return ry_broadcast_in_dim_(b, loc, x, shape, dims);
}

/* The NumPy broadcast of two shapes; false if incompatible. */
static bool broadcast_shapes(ry_shape a, ry_shape c, ry_shape *out) {
  ry_shape r;
  memset(&r, 0, sizeof r);
  r.rank = a.rank > c.rank ? a.rank : c.rank;
  for (int i = 0; i < r.rank; i++) {
    int ia = a.rank - r.rank + i, ic = c.rank - r.rank + i;
    int64_t da = ia >= 0 ? a.dims[ia] : 1, dc = ic >= 0 ? c.dims[ic] : 1;
    if (da != dc && da != 1 && dc != 1) return false;
    r.dims[i] = da == 1 ? dc : da;
  }
  *out = r;
  return true;
}

/* Promote and broadcast n operands in place (the NumPy user-level rule). */
static bool harmonize(ry_builder *b, ry_loc loc, const char *name, int n, ry_value *v, int skip_dtype_from) {
  for (int i = 0; i < n; i++)
    if (!check_value(b, loc, name, v[i], i)) return false;
  ry_dtype dt = vtype(b, v[0]).dtype;
  for (int i = 1; i < n && i < skip_dtype_from; i++) dt = ry_promote(dt, vtype(b, v[i]).dtype);
  ry_shape s = vtype(b, v[0]).shape;
  for (int i = 1; i < n; i++) {
    ry_shape si = vtype(b, v[i]).shape;
    if (!broadcast_shapes(s, si, &s)) {
      char t0[200], t1[200];
      ryb_failf(b, loc, RY_ERR_SHAPE, name, "shapes %s and %s are not broadcast-compatible (operands 0 and %d)",
                ry_type_str(vtype(b, v[0]), t0, sizeof t0), ry_type_str(vtype(b, v[i]), t1, sizeof t1), i);
      return false;
    }
  }
  for (int i = 0; i < n; i++) {
    if (i < skip_dtype_from && vtype(b, v[i]).dtype != dt) v[i] = ry_convert_(b, loc, v[i], dt);
    v[i] = ry_broadcast_to_(b, loc, v[i], s);
  }
  return ryb_ok(b);
}

/* ---- elementwise ---- */

static ry_value unary(ry_builder *b, ry_loc loc, ry_op op, ry_value x) {
  if (op == RY_OP_COUNT) return ryb_failf(b, loc, RY_ERR_INTERNAL, "ops", "unknown op"), (ry_value){0};
  if (!check_value(b, loc, ryg_op_table[op].name, x, 0)) return (ry_value){0};
  /* float math on integers computes in f32, as jnp does */
  ry_dtype t = vtype(b, x).dtype;
  if (ryg_op_table[op].dtypes == RY_DT_FLOAT && !ry_dtype_is_float(t)) x = ry_convert_(b, loc, x, RY_F32);
  return ryb_emit1(b, loc, op, 1, &x, NULL, NULL);
}

static ry_value binary(ry_builder *b, ry_loc loc, ry_op op, ry_value x, ry_value y) {
  if (op == RY_OP_COUNT) return ryb_failf(b, loc, RY_ERR_INTERNAL, "ops", "unknown op"), (ry_value){0};
  ry_value v[2] = {x, y};
  if (!harmonize(b, loc, ryg_op_table[op].name, 2, v, 2)) return (ry_value){0};
  if (ryg_op_table[op].dtypes == RY_DT_FLOAT && !ry_dtype_is_float(vtype(b, v[0]).dtype)) {
    v[0] = ry_convert_(b, loc, v[0], RY_F32);
    v[1] = ry_convert_(b, loc, v[1], RY_F32);
  }
  return ryb_emit1(b, loc, op, 2, v, NULL, NULL);
}

/* The public constructor of every elementwise op is ry_<name>_, <name> being
 * its name in ops.def; trace.h lists the names once (RY__UNARY, RY__BINARY)
 * and test_optable checks that the lists and ops.def agree. */
static ry_op op_named(const char *name) {
  ry_op op = RY_OP_COUNT;
  ryg_op_from_name(name, strlen(name), &op);
  return op;
}
#define DEF_UNARY(n) \
  ry_value ry_##n##_(ry_builder *b, ry_loc loc, ry_value x) { return unary(b, loc, op_named(#n), x); }
#define DEF_BINARY(n) \
  ry_value ry_##n##_(ry_builder *b, ry_loc loc, ry_value x, ry_value y) { return binary(b, loc, op_named(#n), x, y); }
RY__UNARY(DEF_UNARY)
RY__BINARY(DEF_BINARY)
#undef DEF_UNARY
#undef DEF_BINARY

ry_value ry_compare_(ry_builder *b, ry_loc loc, ry_value x, ry_value y, ry_cmp dir) {
  ry_value v[2] = {x, y};
  if (!harmonize(b, loc, "compare", 2, v, 2)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.compare.dir = dir;
  return ryb_emit1(b, loc, RY_OP_COMPARE, 2, v, &a, NULL);
}

ry_value ry_select_(ry_builder *b, ry_loc loc, ry_value pred, ry_value on_true, ry_value on_false) {
  if (!check_value(b, loc, "select", pred, 0)) return (ry_value){0};
  if (vtype(b, pred).dtype != RY_BOOL) {
    char t[200];
    return ryb_failf(b, loc, RY_ERR_DTYPE, "select", "the predicate has type %s; it must be bool",
                     ry_type_str(vtype(b, pred), t, sizeof t)),
           (ry_value){0};
  }
  ry_value v[3] = {pred, on_true, on_false};
  /* promote the two branches only; broadcast all three */
  ry_value br[2] = {on_true, on_false};
  if (!check_value(b, loc, "select", on_true, 1) || !check_value(b, loc, "select", on_false, 2)) return (ry_value){0};
  ry_dtype dt = ry_promote(vtype(b, br[0]).dtype, vtype(b, br[1]).dtype);
  v[1] = vtype(b, on_true).dtype == dt ? on_true : ry_convert_(b, loc, on_true, dt);
  v[2] = vtype(b, on_false).dtype == dt ? on_false : ry_convert_(b, loc, on_false, dt);
  if (!harmonize(b, loc, "select", 3, v, 0)) return (ry_value){0};
  return ryb_emit1(b, loc, RY_OP_SELECT, 3, v, NULL, NULL);
}

ry_value ry_clamp_(ry_builder *b, ry_loc loc, ry_value lo, ry_value x, ry_value hi) {
  ry_value v[3] = {lo, x, hi};
  if (!harmonize(b, loc, "clamp", 3, v, 3)) return (ry_value){0};
  return ryb_emit1(b, loc, RY_OP_CLAMP, 3, v, NULL, NULL);
}

ry_value ry_convert_(ry_builder *b, ry_loc loc, ry_value x, ry_dtype to) {
  if (!check_value(b, loc, "convert", x, 0)) return (ry_value){0};
  if (vtype(b, x).dtype == to) return x;
  ry_type req = {to, vtype(b, x).shape};
  return ryb_emit1(b, loc, RY_OP_CONVERT, 1, &x, NULL, &req);
}

ry_value ry_bitcast_convert_(ry_builder *b, ry_loc loc, ry_value x, ry_dtype to) {
  if (!check_value(b, loc, "bitcast_convert", x, 0)) return (ry_value){0};
  ry_type req = {to, vtype(b, x).shape};
  return ryb_emit1(b, loc, RY_OP_BITCAST, 1, &x, NULL, &req);
}

/* ---- shape ops ---- */

ry_value ry_reshape_(ry_builder *b, ry_loc loc, ry_value x, ry_shape shape) {
  if (!check_value(b, loc, "reshape", x, 0)) return (ry_value){0};
  ry_type t = vtype(b, x);
  int infer = -1;
  int64_t known = 1;
  if (shape.rank < 0 || shape.rank > RY_MAX_RANK)
    return ryb_failf(b, loc, RY_ERR_SHAPE, "reshape", "rank %d is outside 0..%d", shape.rank, RY_MAX_RANK), (ry_value){0};
  for (int i = 0; i < shape.rank; i++) {
    if (shape.dims[i] == -1) {
      if (infer >= 0)
        return ryb_failf(b, loc, RY_ERR_SHAPE, "reshape", "only one dimension can be -1"), (ry_value){0};
      infer = i;
    } else if (shape.dims[i] < 0) {
      return ryb_failf(b, loc, RY_ERR_SHAPE, "reshape", "dimension %d is negative (%lld)", i, (long long)shape.dims[i]),
             (ry_value){0};
    } else {
      known *= shape.dims[i];
    }
  }
  if (infer >= 0) {
    int64_t n = ry_shape_numel(t.shape);
    if (known == 0 || n % known) {
      char s1[200];
      return ryb_failf(b, loc, RY_ERR_SHAPE, "reshape", "cannot infer the -1 dimension: %lld elements of %s do not divide by %lld",
                       (long long)n, ry_type_str(t, s1, sizeof s1), (long long)known),
             (ry_value){0};
    }
    shape.dims[infer] = n / known;
  }
  if (ry_shape_equal(shape, t.shape)) return x;
  ry_type req = {t.dtype, shape};
  return ryb_emit1(b, loc, RY_OP_RESHAPE, 1, &x, NULL, &req);
}

ry_value ry_transpose_(ry_builder *b, ry_loc loc, ry_value x, ry_axes perm) {
  if (!valid_axes_list(b, loc, "transpose", &perm)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.transpose.perm = perm;
  return ryb_emit1(b, loc, RY_OP_TRANSPOSE, 1, &x, &a, NULL);
}

ry_value ry_slice_(ry_builder *b, ry_loc loc, ry_value x, ry_axes start, ry_axes limit, ry_axes strides) {
  if (!check_value(b, loc, "slice", x, 0)) return (ry_value){0};
  if (!valid_axes_list(b, loc, "slice", &start) || !valid_axes_list(b, loc, "slice", &limit) ||
      !valid_axes_list(b, loc, "slice", &strides))
    return (ry_value){0};
  if (strides.n == 0) {
    strides.n = vtype(b, x).shape.rank;
    for (int i = 0; i < strides.n; i++) strides.v[i] = 1;
  }
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.slice.start = start;
  a.slice.limit = limit;
  a.slice.stride = strides;
  return ryb_emit1(b, loc, RY_OP_SLICE, 1, &x, &a, NULL);
}

/* lax.dynamic_slice semantics: a negative start counts from the end (then
 * the primitive clamps). Integer scalar starts only; others are left for the
 * shape rule to report. */
static ry_value wrap_start(ry_builder *b, ry_loc loc, ry_value i, int64_t dim) {
  if (!ryb_ok(b) || i.id == 0 || i.id >= (uint32_t)b->g->n_values) return i;
  ry_type t = vtype(b, i);
  if (t.shape.rank != 0 || !ry_dtype_is_signed(t.dtype) || ry_dtype_is_float(t.dtype)) return i;
  ry_value zero = ry_scalar_(b, loc, t.dtype, 0), d = ry_scalar_(b, loc, t.dtype, (double)dim);
  return ry_select_(b, loc, ry_compare_(b, loc, i, zero, RY_LT), ry_add_(b, loc, i, d), i);
}

ry_value ry_dynamic_slice_(ry_builder *b, ry_loc loc, ry_value x, const ry_value *starts, ry_axes sizes) {
  if (!check_value(b, loc, "dynamic_slice", x, 0)) return (ry_value){0};
  if (!valid_axes_list(b, loc, "dynamic_slice", &sizes)) return (ry_value){0};
  int r = vtype(b, x).shape.rank;
  if (r && !starts)
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "dynamic_slice", "starts is NULL"), (ry_value){0};
  ry_value ops[1 + RY_MAX_RANK];
  ops[0] = x;
  for (int i = 0; i < r; i++) ops[1 + i] = wrap_start(b, loc, starts[i], vtype(b, x).shape.dims[i]);
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.dynamic_slice.sizes = sizes;
  return ryb_emit1(b, loc, RY_OP_DYNAMIC_SLICE, 1 + r, ops, &a, NULL);
}

ry_value ry_dynamic_update_slice_(ry_builder *b, ry_loc loc, ry_value x, ry_value update, const ry_value *starts) {
  if (!check_value(b, loc, "dynamic_update_slice", x, 0)) return (ry_value){0};
  int r = vtype(b, x).shape.rank;
  if (r && !starts)
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "dynamic_update_slice", "starts is NULL"), (ry_value){0};
  ry_value ops[2 + RY_MAX_RANK];
  ops[0] = x;
  ops[1] = update;
  for (int i = 0; i < r; i++) ops[2 + i] = wrap_start(b, loc, starts[i], vtype(b, x).shape.dims[i]);
  return ryb_emit1(b, loc, RY_OP_DYNAMIC_UPDATE_SLICE, 2 + r, ops, NULL, NULL);
}

ry_value ry_concatenate_(ry_builder *b, ry_loc loc, int n, const ry_value *xs, int dim) {
  if (!ryb_ok(b)) return (ry_value){0};
  if (n < 1 || !xs)
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "concatenate", "needs at least one operand"), (ry_value){0};
  if (!check_value(b, loc, "concatenate", xs[0], 0)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.concatenate.dim = norm_axis(dim, vtype(b, xs[0]).shape.rank);
  return ryb_emit1(b, loc, RY_OP_CONCATENATE, n, xs, &a, NULL);
}

ry_value ry_pad_(ry_builder *b, ry_loc loc, ry_value x, ry_value value, ry_axes low, ry_axes high, ry_axes interior) {
  if (!check_value(b, loc, "pad", x, 0)) return (ry_value){0};
  if (!valid_axes_list(b, loc, "pad", &low) || !valid_axes_list(b, loc, "pad", &high) || !valid_axes_list(b, loc, "pad", &interior))
    return (ry_value){0};
  if (interior.n == 0) interior.n = vtype(b, x).shape.rank;
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.pad.low = low;
  a.pad.high = high;
  a.pad.interior = interior;
  ry_value ops[2] = {x, value};
  return ryb_emit1(b, loc, RY_OP_PAD, 2, ops, &a, NULL);
}

ry_value ry_reverse_(ry_builder *b, ry_loc loc, ry_value x, ry_axes dims) {
  if (!check_value(b, loc, "reverse", x, 0) || !valid_axes_list(b, loc, "reverse", &dims)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.reverse.dims = norm_axes(dims, vtype(b, x).shape.rank);
  return ryb_emit1(b, loc, RY_OP_REVERSE, 1, &x, &a, NULL);
}

/* ---- reductions ---- */

ry_value ry_reduce_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, ry_axes axes) {
  if (!check_value(b, loc, "reduce", x, 0) || !valid_axes_list(b, loc, "reduce", &axes)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.reduce.kind = kind;
  a.reduce.axes = norm_axes(axes, vtype(b, x).shape.rank);
  return ryb_emit1(b, loc, RY_OP_REDUCE, 1, &x, &a, NULL);
}

static ry_value arg(ry_builder *b, ry_loc loc, ry_op op, ry_value x, int axis, ry_dtype index_dtype) {
  if (!check_value(b, loc, ryg_op_table[op].name, x, 0)) return (ry_value){0};
  ry_type t = vtype(b, x);
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.arg.axis = norm_axis(axis, t.shape.rank);
  ry_type req = {index_dtype, {0, {0}}};
  return ryb_emit1(b, loc, op, 1, &x, &a, &req);
}

ry_value ry_argmax_(ry_builder *b, ry_loc loc, ry_value x, int axis, ry_dtype index_dtype) {
  return arg(b, loc, RY_OP_ARGMAX, x, axis, index_dtype);
}
ry_value ry_argmin_(ry_builder *b, ry_loc loc, ry_value x, int axis, ry_dtype index_dtype) {
  return arg(b, loc, RY_OP_ARGMIN, x, axis, index_dtype);
}

ry_value ry_cumulative_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, int axis, int reverse) {
  if (!check_value(b, loc, "cumulative", x, 0)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.cumulative.kind = kind;
  a.cumulative.axis = norm_axis(axis, vtype(b, x).shape.rank);
  a.cumulative.reverse = reverse != 0;
  return ryb_emit1(b, loc, RY_OP_CUMULATIVE, 1, &x, &a, NULL);
}

/* ---- quantized blocks ---- */

static ry_value dequantize(ry_builder *b, ry_loc loc, ry_value blocks, int type, bool act8) {
  if (!check_value(b, loc, "dequantize", blocks, 0)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.quant.format = type;
  a.quant.act8 = act8;
  return ryb_emit1(b, loc, RY_OP_DEQUANTIZE, 1, &blocks, &a, NULL);
}
ry_value ry_dequantize_(ry_builder *b, ry_loc loc, ry_value blocks, int type) { return dequantize(b, loc, blocks, type, false); }
ry_value ry_dequantize_act8_(ry_builder *b, ry_loc loc, ry_value blocks, int type) {
  return dequantize(b, loc, blocks, type, true);
}

/* ---- contractions ---- */

ry_value ry_dot_general_(ry_builder *b, ry_loc loc, ry_value lhs, ry_value rhs, ry_dot_dims dims, ry_dtype out) {
  if (!valid_axes_list(b, loc, "dot_general", &dims.lhs_batch) || !valid_axes_list(b, loc, "dot_general", &dims.rhs_batch) ||
      !valid_axes_list(b, loc, "dot_general", &dims.lhs_contract) ||
      !valid_axes_list(b, loc, "dot_general", &dims.rhs_contract))
    return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.dot = dims;
  ry_value ops[2] = {lhs, rhs};
  /* bf16 matmul precision: the product of f32 operands in bf16, explicitly */
  ry_dtype lt = ryb_ok(b) ? ry_value_dtype(b, lhs) : RY_F32, rt = ryb_ok(b) ? ry_value_dtype(b, rhs) : RY_F32;
  bool bf = ryb_ok(b) && b->mm_dtype == RY_BF16 && out == RY_F32 && (lt == RY_F32 || lt == RY_BF16) &&
            (rt == RY_F32 || rt == RY_BF16) && (lt == RY_F32 || rt == RY_F32);
  if (bf) { /* an operand stored in bf16 already (frozen weights) is taken as it is */
    if (lt == RY_F32) ops[0] = ry_convert_(b, loc, lhs, RY_BF16);
    if (rt == RY_F32) ops[1] = ry_convert_(b, loc, rhs, RY_BF16);
  }
  ry_type req = {bf ? RY_BF16 : out, {0, {0}}};
  ry_value r = ryb_emit1(b, loc, RY_OP_DOT_GENERAL, 2, ops, &a, &req);
  return bf ? ry_convert_(b, loc, r, RY_F32) : r;
}

static void fill(ry_axes *a, int n, int64_t v) {
  if (a->n != 0) return;
  a->n = n;
  for (int i = 0; i < n; i++) a->v[i] = v;
}

ry_value ry_convolution_(ry_builder *b, ry_loc loc, ry_value lhs, ry_value rhs, const ry_conv_dims *d) {
  if (!check_value(b, loc, "convolution", lhs, 0) || !check_value(b, loc, "convolution", rhs, 1)) return (ry_value){0};
  if (!d) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "convolution", "dimension numbers are NULL"), (ry_value){0};
  ry_conv_dims c = *d;
  const ry_axes *all[8] = {&c.stride, &c.pad_low, &c.pad_high, &c.lhs_dilation, &c.rhs_dilation, &c.input_dims, &c.kernel_dims, &c.output_dims};
  for (int i = 0; i < 8; i++)
    if (!valid_axes_list(b, loc, "convolution", all[i])) return (ry_value){0};
  int rank = vtype(b, lhs).shape.rank, ns = rank - 2 > 0 ? rank - 2 : 0;
  fill(&c.stride, ns, 1);
  fill(&c.pad_low, ns, 0);
  fill(&c.pad_high, ns, 0);
  fill(&c.lhs_dilation, ns, 1);
  fill(&c.rhs_dilation, ns, 1);
  if (c.feature_groups == 0) c.feature_groups = 1;
  if (c.batch_groups == 0) c.batch_groups = 1;
  ry_axes *layouts[3] = {&c.input_dims, &c.kernel_dims, &c.output_dims};
  for (int k = 0; k < 3; k++)
    if (layouts[k]->n == 0) {
      layouts[k]->n = rank;
      for (int i = 0; i < rank; i++) layouts[k]->v[i] = i;
    }
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.conv = c;
  ry_value ops[2] = {lhs, rhs};
  ry_type req = {vtype(b, lhs).dtype, {0, {0}}};
  return ryb_emit1(b, loc, RY_OP_CONVOLUTION, 2, ops, &a, &req);
}

/* ---- windowed reductions ---- */

static ry_value window_op(ry_builder *b, ry_loc loc, ry_op op, int n, const ry_value *in, ry_reduce_kind kind,
                          const ry_window_dims *w) {
  const char *name = ryg_op_table[op].name;
  for (int i = 0; i < n; i++)
    if (!check_value(b, loc, name, in[i], i)) return (ry_value){0};
  if (!w) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "window dimensions are NULL"), (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.window.kind = kind;
  a.window.w = *w;
  ry_window_dims *c = &a.window.w;
  ry_axes *all[6] = {&c->window, &c->stride, &c->base_dilation, &c->window_dilation, &c->pad_low, &c->pad_high};
  for (int i = 0; i < 6; i++)
    if (!valid_axes_list(b, loc, name, all[i])) return (ry_value){0};
  int rank = vtype(b, in[0]).shape.rank;
  fill(&c->window, rank, 1);
  fill(&c->stride, rank, 1);
  fill(&c->base_dilation, rank, 1);
  fill(&c->window_dilation, rank, 1);
  fill(&c->pad_low, rank, 0);
  fill(&c->pad_high, rank, 0);
  return ryb_emit1(b, loc, op, n, in, &a, NULL);
}

ry_value ry_reduce_window_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, const ry_window_dims *w) {
  return window_op(b, loc, RY_OP_REDUCE_WINDOW, 1, &x, kind, w);
}
ry_value ry_select_and_scatter_(ry_builder *b, ry_loc loc, ry_value x, ry_value source, ry_reduce_kind kind,
                                const ry_window_dims *w) {
  ry_value in[2] = {x, source};
  return window_op(b, loc, RY_OP_SELECT_AND_SCATTER, 2, in, kind, w);
}
ry_value ry_select_and_gather_(ry_builder *b, ry_loc loc, ry_value x, ry_value t, ry_reduce_kind kind,
                               const ry_window_dims *w) {
  ry_value in[2] = {x, t};
  return window_op(b, loc, RY_OP_SELECT_AND_GATHER, 2, in, kind, w);
}

/* ---- indexing ---- */

ry_value ry_gather_(ry_builder *b, ry_loc loc, ry_value operand, ry_value indices, const ry_gather_dims *d) {
  if (!ryb_ok(b)) return (ry_value){0};
  if (!d) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "gather", "dimension numbers are NULL"), (ry_value){0};
  const ry_axes *all[4] = {&d->offset_dims, &d->collapsed_slice_dims, &d->start_index_map, &d->slice_sizes};
  for (int i = 0; i < 4; i++)
    if (!valid_axes_list(b, loc, "gather", all[i])) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.gather = *d;
  ry_value ops[2] = {operand, indices};
  return ryb_emit1(b, loc, RY_OP_GATHER, 2, ops, &a, NULL);
}

ry_value ry_scatter_(ry_builder *b, ry_loc loc, ry_value operand, ry_value indices, ry_value updates, const ry_scatter_dims *d) {
  if (!ryb_ok(b)) return (ry_value){0};
  if (!d) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "scatter", "dimension numbers are NULL"), (ry_value){0};
  const ry_axes *all[3] = {&d->update_window_dims, &d->inserted_window_dims, &d->scatter_dims_to_operand_dims};
  for (int i = 0; i < 3; i++)
    if (!valid_axes_list(b, loc, "scatter", all[i])) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.scatter = *d;
  ry_value ops[3] = {operand, indices, updates};
  return ryb_emit1(b, loc, RY_OP_SCATTER, 3, ops, &a, NULL);
}

int ry_sort_(ry_builder *b, ry_loc loc, int n, const ry_value *xs, int dim, int num_keys, int descending, int stable,
             ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (n < 1 || !xs || !out) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "sort", "needs at least one operand and an output array");
  if (!check_value(b, loc, "sort", xs[0], 0)) return 0;
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.sort.dim = norm_axis(dim, vtype(b, xs[0]).shape.rank);
  a.sort.num_keys = num_keys;
  a.sort.descending = descending != 0;
  a.sort.stable = stable != 0;
  return ryb_emit(b, loc, RY_OP_SORT, n, xs, &a, 0, NULL, 0, NULL, out);
}

void ry_threefry2x32_(ry_builder *b, ry_loc loc, ry_value k0, ry_value k1, ry_value x0, ry_value x1, ry_value out[2]) {
  out[0] = out[1] = (ry_value){0};
  ry_value v[4] = {k0, k1, x0, x1};
  if (!harmonize(b, loc, "threefry2x32", 4, v, 0)) return;
  ryb_emit(b, loc, RY_OP_THREEFRY, 4, v, NULL, 0, NULL, 0, NULL, out);
}

/* ---- collectives and sharding ---- */

static ry_value collective(ry_builder *b, ry_loc loc, ry_op op, ry_value x, ry_reduce_kind kind, int dim, ry_axes mesh,
                           ry_axes axes) {
  if (!check_value(b, loc, ryg_op_table[op].name, x, 0)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.collective.kind = kind;
  a.collective.dim = op == RY_OP_ALL_REDUCE ? 0 : norm_axis(dim, vtype(b, x).shape.rank);
  a.collective.mesh = mesh;
  a.collective.axes = axes;
  return ryb_emit1(b, loc, op, 1, &x, &a, NULL);
}

ry_value ry_all_reduce_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, ry_axes mesh, ry_axes axes) {
  return collective(b, loc, RY_OP_ALL_REDUCE, x, kind, 0, mesh, axes);
}
ry_value ry_all_gather_(ry_builder *b, ry_loc loc, ry_value x, int dim, ry_axes mesh, ry_axes axes) {
  return collective(b, loc, RY_OP_ALL_GATHER, x, RY_SUM, dim, mesh, axes);
}
ry_value ry_reduce_scatter_(ry_builder *b, ry_loc loc, ry_value x, int dim, ry_reduce_kind kind, ry_axes mesh, ry_axes axes) {
  return collective(b, loc, RY_OP_REDUCE_SCATTER, x, kind, dim, mesh, axes);
}
ry_value ry_collective_broadcast_(ry_builder *b, ry_loc loc, ry_value x, int source, ry_axes mesh, ry_axes axes) {
  if (!check_value(b, loc, "collective_broadcast", x, 0)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.collective.source = source;
  a.collective.mesh = mesh;
  a.collective.axes = axes;
  return ryb_emit1(b, loc, RY_OP_COLLECTIVE_BROADCAST, 1, &x, &a, NULL);
}
ry_value ry_psum_(ry_builder *b, ry_loc loc, ry_value x, int n_devices) {
  return collective(b, loc, RY_OP_ALL_REDUCE, x, RY_SUM, 0, (ry_axes){1, {n_devices}}, (ry_axes){1, {0}});
}
ry_value ry_pmean_(ry_builder *b, ry_loc loc, ry_value x, int n_devices) {
  ry_value s = ry_psum_(b, loc, x, n_devices);
  return ry_div_(b, loc, s, ry_const_like_(b, loc, s, (double)n_devices));
}
ry_value ry_shard_(ry_builder *b, ry_loc loc, ry_value x, ry_axes mesh, ry_axes dims) {
  if (!check_value(b, loc, "sharding", x, 0)) return (ry_value){0};
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.sharding.mesh = mesh;
  a.sharding.dims = dims;
  return ryb_emit1(b, loc, RY_OP_SHARDING, 1, &x, &a, NULL);
}
