/* Composite functions built only from the public ops: what jax.numpy and
 * jax.nn provide on top of lax. They carry the caller's location so errors
 * point at user code. */
#include <math.h>

#include "builder.h"
#include "ryft/gguf.h"

static ry_type ty(ry_builder *b, ry_value v) { return ry_value_type(b, v); }
static int rank_of(ry_builder *b, ry_value v) { return ty(b, v).shape.rank; }

static bool ok_value(ry_builder *b, ry_loc loc, const char *name, ry_value v) {
  if (!ryb_ok(b)) return false;
  if (v.id == 0 || v.id >= (uint32_t)b->g->n_values) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "operand is not a valid value (id %u)", v.id);
    return false;
  }
  return true;
}

static bool norm_axis(ry_builder *b, ry_loc loc, const char *name, int64_t *axis, int rank) {
  if (*axis < -rank || *axis >= rank) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "axis %lld is out of range for rank %d", (long long)*axis, rank);
    return false;
  }
  if (*axis < 0) *axis += rank;
  return true;
}

/* Normalised axes; an empty list means every axis. */
static bool axes_or_all(ry_builder *b, ry_loc loc, const char *name, ry_axes *axes, int rank) {
  if (axes->n < 0 || axes->n > RY_MAX_RANK) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "an axis list has %d entries", axes->n);
    return false;
  }
  if (axes->n == 0) {
    axes->n = rank;
    for (int i = 0; i < rank; i++) axes->v[i] = i;
    return true;
  }
  for (int i = 0; i < axes->n; i++) {
    if (!norm_axis(b, loc, name, &axes->v[i], rank)) return false;
    for (int j = 0; j < i; j++)
      if (axes->v[j] == axes->v[i]) {
        ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "axis %lld appears twice", (long long)axes->v[i]);
        return false;
      }
  }
  return true;
}

static bool has_axis(const ry_axes *a, int64_t x) {
  for (int i = 0; i < a->n; i++)
    if (a->v[i] == x) return true;
  return false;
}

/* Reshape a reduced value back to rank with size-1 reduced axes. */
static ry_value keep(ry_builder *b, ry_loc loc, ry_value r, ry_shape in, const ry_axes *axes) {
  ry_shape s = in;
  for (int i = 0; i < in.rank; i++)
    if (has_axis(axes, i)) s.dims[i] = 1;
  return ry_reshape_(b, loc, r, s);
}

static ry_value reduce_kd(ry_builder *b, ry_loc loc, const char *name, ry_value x, ry_reduce_kind k, ry_axes axes, int keepdims) {
  if (!ok_value(b, loc, name, x)) return (ry_value){0};
  ry_shape in = ty(b, x).shape;
  if (!axes_or_all(b, loc, name, &axes, in.rank)) return (ry_value){0};
  ry_value r = ry_reduce_(b, loc, x, k, axes);
  return keepdims ? keep(b, loc, r, in, &axes) : r;
}

ry_value ry_sum_keepdims_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims) {
  return reduce_kd(b, loc, "sum", x, RY_SUM, axes, keepdims);
}

ry_value ry_max_keepdims_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims) {
  return reduce_kd(b, loc, "max", x, RY_MAX, axes, keepdims);
}

static ry_value to_float(ry_builder *b, ry_loc loc, ry_value x) {
  return ry_dtype_is_float(ty(b, x).dtype) ? x : ry_convert_(b, loc, x, RY_F32);
}

ry_value ry_mean_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims) {
  if (!ok_value(b, loc, "mean", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  ry_shape in = ty(b, x).shape;
  if (!axes_or_all(b, loc, "mean", &axes, in.rank)) return (ry_value){0};
  int64_t n = 1;
  for (int i = 0; i < axes.n; i++) n *= in.dims[axes.v[i]];
  ry_value s = ry_sum_keepdims_(b, loc, x, axes, keepdims);
  return ry_div_(b, loc, s, ry_const_like_(b, loc, s, (double)n));
}

ry_value ry_var_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims) {
  if (!ok_value(b, loc, "var", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  ry_value m = ry_mean_(b, loc, x, axes, 1);
  ry_value d = ry_sub_(b, loc, x, m);
  return ry_mean_(b, loc, ry_mul_(b, loc, d, d), axes, keepdims);
}

ry_value ry_logsumexp_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims) {
  if (!ok_value(b, loc, "logsumexp", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  ry_shape in = ty(b, x).shape;
  if (!axes_or_all(b, loc, "logsumexp", &axes, in.rank)) return (ry_value){0};
  ry_value m = ry_max_keepdims_(b, loc, x, axes, 1);
  /* an all -inf slice would give nan from -inf - -inf: use 0 as the shift there */
  ry_value finite = ry_is_finite_(b, loc, m);
  m = ry_select_(b, loc, finite, m, ry_const_like_(b, loc, m, 0));
  ry_value s = ry_sum_keepdims_(b, loc, ry_exp_(b, loc, ry_sub_(b, loc, x, m)), axes, 1);
  ry_value r = ry_add_(b, loc, ry_log_(b, loc, s), m);
  if (keepdims) return r;
  ry_shape out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < in.rank; i++)
    if (!has_axis(&axes, i)) out.dims[out.rank++] = in.dims[i];
  return ry_reshape_(b, loc, r, out);
}

ry_value ry_softmax_(ry_builder *b, ry_loc loc, ry_value x, int axis) {
  if (!ok_value(b, loc, "softmax", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  ry_axes a = {1, {axis}};
  if (!axes_or_all(b, loc, "softmax", &a, rank_of(b, x))) return (ry_value){0};
  ry_value m = ry_max_keepdims_(b, loc, x, a, 1);
  ry_value e = ry_exp_(b, loc, ry_sub_(b, loc, x, m));
  return ry_div_(b, loc, e, ry_sum_keepdims_(b, loc, e, a, 1));
}

ry_value ry_log_softmax_(ry_builder *b, ry_loc loc, ry_value x, int axis) {
  if (!ok_value(b, loc, "log_softmax", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  ry_axes a = {1, {axis}};
  if (!axes_or_all(b, loc, "log_softmax", &a, rank_of(b, x))) return (ry_value){0};
  ry_value m = ry_max_keepdims_(b, loc, x, a, 1);
  ry_value sh = ry_sub_(b, loc, x, m);
  ry_value lse = ry_log_(b, loc, ry_sum_keepdims_(b, loc, ry_exp_(b, loc, sh), a, 1));
  return ry_sub_(b, loc, sh, lse);
}

ry_value ry_relu_(ry_builder *b, ry_loc loc, ry_value x) {
  if (!ok_value(b, loc, "relu", x)) return (ry_value){0};
  return ry_max_(b, loc, x, ry_const_like_(b, loc, x, 0));
}

ry_value ry_sigmoid_(ry_builder *b, ry_loc loc, ry_value x) { return ry_logistic_(b, loc, x); }

ry_value ry_silu_(ry_builder *b, ry_loc loc, ry_value x) {
  if (!ok_value(b, loc, "silu", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  return ry_mul_(b, loc, x, ry_logistic_(b, loc, x));
}

ry_value ry_gelu_(ry_builder *b, ry_loc loc, ry_value x, int approximate) {
  if (!ok_value(b, loc, "gelu", x)) return (ry_value){0};
  x = to_float(b, loc, x);
  ry_value half = ry_const_like_(b, loc, x, 0.5), one = ry_const_like_(b, loc, x, 1.0);
  if (approximate) {
    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    ry_value x3 = ry_mul_(b, loc, ry_mul_(b, loc, x, x), x);
    ry_value inner = ry_add_(b, loc, x, ry_mul_(b, loc, ry_const_like_(b, loc, x, 0.044715), x3));
    inner = ry_mul_(b, loc, ry_const_like_(b, loc, x, sqrt(2.0 / 3.14159265358979323846)), inner);
    return ry_mul_(b, loc, ry_mul_(b, loc, half, x), ry_add_(b, loc, one, ry_tanh_(b, loc, inner)));
  }
  /* 0.5 x (1 + erf(x / sqrt 2)) */
  ry_value e = ry_erf_(b, loc, ry_mul_(b, loc, x, ry_const_like_(b, loc, x, 0.70710678118654752440)));
  return ry_mul_(b, loc, ry_mul_(b, loc, half, x), ry_add_(b, loc, one, e));
}

ry_value ry_where_(ry_builder *b, ry_loc loc, ry_value pred, ry_value x, ry_value y) { return ry_select_(b, loc, pred, x, y); }

ry_value ry_clip_(ry_builder *b, ry_loc loc, ry_value x, double lo, double hi) {
  if (!ok_value(b, loc, "clip", x)) return (ry_value){0};
  if (!(lo <= hi)) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "clip", "lower bound %g is above upper bound %g", lo, hi);
    return (ry_value){0};
  }
  return ry_clamp_(b, loc, ry_const_like_(b, loc, x, lo), x, ry_const_like_(b, loc, x, hi));
}

ry_value ry_one_hot_(ry_builder *b, ry_loc loc, ry_value labels, int64_t n, ry_dtype dtype) {
  if (!ok_value(b, loc, "one_hot", labels)) return (ry_value){0};
  ry_type t = ty(b, labels);
  if (!ry_dtype_is_int(t.dtype)) {
    ryb_failf(b, loc, RY_ERR_DTYPE, "one_hot", "labels have dtype %s; they must be integers", ry_dtype_name(t.dtype));
    return (ry_value){0};
  }
  if (n < 1 || t.shape.rank >= RY_MAX_RANK) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "one_hot", "needs n >= 1 (got %lld) and labels of rank < %d", (long long)n, RY_MAX_RANK);
    return (ry_value){0};
  }
  ry_shape s = t.shape;
  s.dims[s.rank++] = n;
  ry_value classes = ry_iota_(b, loc, t.dtype, s, s.rank - 1);
  ry_axes dims = {t.shape.rank, {0}};
  for (int i = 0; i < t.shape.rank; i++) dims.v[i] = i;
  ry_value lab = ry_broadcast_in_dim_(b, loc, labels, s, dims);
  return ry_convert_(b, loc, ry_eq(b, lab, classes), dtype);
}

ry_value ry_expand_dims_(ry_builder *b, ry_loc loc, ry_value x, int axis) {
  if (!ok_value(b, loc, "expand_dims", x)) return (ry_value){0};
  ry_shape s = ty(b, x).shape;
  int64_t a = axis;
  if (s.rank >= RY_MAX_RANK) {
    ryb_failf(b, loc, RY_ERR_SHAPE, "expand_dims", "rank would exceed %d", RY_MAX_RANK);
    return (ry_value){0};
  }
  if (!norm_axis(b, loc, "expand_dims", &a, s.rank + 1)) return (ry_value){0};
  ry_shape o = s;
  o.rank = s.rank + 1;
  for (int i = 0, j = 0; i < o.rank; i++) o.dims[i] = i == a ? 1 : s.dims[j++];
  return ry_reshape_(b, loc, x, o);
}

ry_value ry_squeeze_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes) {
  if (!ok_value(b, loc, "squeeze", x)) return (ry_value){0};
  ry_shape s = ty(b, x).shape;
  if (axes.n == 0) {
    for (int i = 0; i < s.rank; i++)
      if (s.dims[i] == 1) axes.v[axes.n++] = i;
  } else if (!axes_or_all(b, loc, "squeeze", &axes, s.rank)) {
    return (ry_value){0};
  }
  ry_shape o;
  memset(&o, 0, sizeof o);
  for (int i = 0; i < s.rank; i++) {
    if (has_axis(&axes, i)) {
      if (s.dims[i] != 1) {
        ryb_failf(b, loc, RY_ERR_SHAPE, "squeeze", "axis %d has size %lld, not 1", i, (long long)s.dims[i]);
        return (ry_value){0};
      }
    } else {
      o.dims[o.rank++] = s.dims[i];
    }
  }
  return ry_reshape_(b, loc, x, o);
}

ry_value ry_matmul_(ry_builder *b, ry_loc loc, ry_value x, ry_value y) {
  if (!ok_value(b, loc, "matmul", x) || !ok_value(b, loc, "matmul", y)) return (ry_value){0};
  ry_type tx = ty(b, x), ty_ = ty(b, y);
  if (tx.shape.rank == 0 || ty_.shape.rank == 0) {
    ryb_failf(b, loc, RY_ERR_SHAPE, "matmul", "operands must have rank >= 1 (got %d and %d)", tx.shape.rank, ty_.shape.rank);
    return (ry_value){0};
  }
  ry_dtype dt = ry_promote(tx.dtype, ty_.dtype);
  x = ry_convert_(b, loc, x, dt);
  y = ry_convert_(b, loc, y, dt);
  bool vx = tx.shape.rank == 1, vy = ty_.shape.rank == 1;
  if (vx) x = ry_expand_dims_(b, loc, x, 0);
  if (vy) y = ry_expand_dims_(b, loc, y, 1);
  if (!ryb_ok(b)) return (ry_value){0};
  ry_shape sx = ty(b, x).shape, sy = ty(b, y).shape;
  if (sx.dims[sx.rank - 1] != sy.dims[sy.rank - 2]) {
    char a[200], c[200];
    ryb_failf(b, loc, RY_ERR_SHAPE, "matmul", "contracting dimensions differ: %s @ %s", ry_type_str(tx, a, sizeof a),
              ry_type_str(ty_, c, sizeof c));
    return (ry_value){0};
  }
  /* broadcast the batch dims */
  int nb = (sx.rank > sy.rank ? sx.rank : sy.rank) - 2;
  ry_shape bx = sx, by = sy, batch;
  memset(&batch, 0, sizeof batch);
  batch.rank = nb;
  for (int i = 0; i < nb; i++) {
    int ix = sx.rank - 2 - nb + i, iy = sy.rank - 2 - nb + i;
    int64_t dx = ix >= 0 ? sx.dims[ix] : 1, dy = iy >= 0 ? sy.dims[iy] : 1;
    if (dx != dy && dx != 1 && dy != 1) {
      char a[200], c[200];
      ryb_failf(b, loc, RY_ERR_SHAPE, "matmul", "batch dimensions do not broadcast: %s @ %s", ry_type_str(tx, a, sizeof a),
                ry_type_str(ty_, c, sizeof c));
      return (ry_value){0};
    }
    batch.dims[i] = dx == 1 ? dy : dx;
  }
  bx.rank = by.rank = nb + 2;
  for (int i = 0; i < nb; i++) bx.dims[i] = by.dims[i] = batch.dims[i];
  bx.dims[nb] = sx.dims[sx.rank - 2];
  bx.dims[nb + 1] = sx.dims[sx.rank - 1];
  by.dims[nb] = sy.dims[sy.rank - 2];
  by.dims[nb + 1] = sy.dims[sy.rank - 1];
  x = ry_broadcast_to_(b, loc, x, bx);
  y = ry_broadcast_to_(b, loc, y, by);
  ry_dot_dims d;
  memset(&d, 0, sizeof d);
  d.lhs_batch.n = d.rhs_batch.n = nb;
  for (int i = 0; i < nb; i++) d.lhs_batch.v[i] = d.rhs_batch.v[i] = i;
  d.lhs_contract = (ry_axes){1, {nb + 1}};
  d.rhs_contract = (ry_axes){1, {nb}};
  ry_value r = ry_dot_general_(b, loc, x, y, d, dt);
  if (vx || vy) {
    ry_shape rs = ty(b, r).shape, o;
    memset(&o, 0, sizeof o);
    for (int i = 0; i < nb; i++) o.dims[o.rank++] = rs.dims[i];
    if (!vx) o.dims[o.rank++] = rs.dims[nb];
    if (!vy) o.dims[o.rank++] = rs.dims[nb + 1];
    r = ry_reshape_(b, loc, r, o);
  }
  return r;
}

ry_value ry_take_(ry_builder *b, ry_loc loc, ry_value x, ry_value indices, int axis) {
  if (!ok_value(b, loc, "take", x) || !ok_value(b, loc, "take", indices)) return (ry_value){0};
  ry_shape s = ty(b, x).shape, is = ty(b, indices).shape;
  int64_t a = axis;
  if (!norm_axis(b, loc, "take", &a, s.rank)) return (ry_value){0};
  if (s.rank - 1 + is.rank > RY_MAX_RANK) {
    ryb_failf(b, loc, RY_ERR_SHAPE, "take", "result rank would exceed %d", RY_MAX_RANK);
    return (ry_value){0};
  }
  /* rows of a dequantized table (an embedding of quantized weights): take
     the blocks' rows and dequantize only those (the op is row-wise along
     the last axis, which this take leaves whole) */
  const ry_node *dq = ryb_def_node(b, x);
  if (dq && dq->op == RY_OP_DEQUANTIZE && a != s.rank - 1) {
    ry_value blocks = {(uint32_t)ry_node_operands(b->g, dq)[0]};
    int fmt = (int)dq->attrs.quant.format;
    bool act8 = dq->attrs.quant.act8;
    ry_value rows = ry_take_(b, loc, blocks, indices, (int)a);
    return act8 ? ry_dequantize_act8_(b, loc, rows, fmt) : ry_dequantize_(b, loc, rows, fmt);
  }
  ry_gather_dims d;
  memset(&d, 0, sizeof d);
  d.index_vector_dim = is.rank;
  d.collapsed_slice_dims = (ry_axes){1, {a}};
  d.start_index_map = (ry_axes){1, {a}};
  d.slice_sizes.n = s.rank;
  for (int i = 0; i < s.rank; i++) d.slice_sizes.v[i] = i == a ? 1 : s.dims[i];
  /* output: x dims before axis, index dims, x dims after axis */
  for (int i = 0; i < s.rank; i++)
    if (i != a) d.offset_dims.v[d.offset_dims.n++] = i < a ? i : i - 1 + is.rank;
  return ry_gather_(b, loc, x, indices, &d);
}

ry_value ry_take_along_axis_(ry_builder *b, ry_loc loc, ry_value x, ry_value indices, int axis) {
  if (!ok_value(b, loc, "take_along_axis", x) || !ok_value(b, loc, "take_along_axis", indices)) return (ry_value){0};
  ry_shape s = ty(b, x).shape, is = ty(b, indices).shape;
  ry_dtype it = ty(b, indices).dtype;
  int64_t a = axis;
  if (!norm_axis(b, loc, "take_along_axis", &a, s.rank)) return (ry_value){0};
  if (is.rank != s.rank) {
    ryb_failf(b, loc, RY_ERR_SHAPE, "take_along_axis", "indices rank %d differs from the operand rank %d", is.rank, s.rank);
    return (ry_value){0};
  }
  if (!ry_dtype_is_int(it)) {
    ryb_failf(b, loc, RY_ERR_DTYPE, "take_along_axis", "indices have dtype %s; they must be integers", ry_dtype_name(it));
    return (ry_value){0};
  }
  for (int i = 0; i < s.rank; i++)
    if (i != a && is.dims[i] != s.dims[i] && s.dims[i] != 1) {
      ryb_failf(b, loc, RY_ERR_SHAPE, "take_along_axis", "indices dimension %d (size %lld) does not match the operand (%lld)", i,
                (long long)is.dims[i], (long long)s.dims[i]);
      return (ry_value){0};
    }
  if (s.rank + 1 > RY_MAX_RANK) {
    ryb_failf(b, loc, RY_ERR_SHAPE, "take_along_axis", "rank is too large");
    return (ry_value){0};
  }
  /* full index vectors: iota for every axis but `axis`, the indices there */
  ry_shape out = is;
  ry_shape vs = out;
  vs.dims[vs.rank++] = 1;
  ry_value parts[RY_MAX_RANK];
  for (int i = 0; i < s.rank; i++) {
    ry_value p = i == a ? ry_reshape_(b, loc, indices, vs) : ry_iota_(b, loc, it, vs, i);
    parts[i] = p;
  }
  ry_value idx = ry_concatenate_(b, loc, s.rank, parts, s.rank);
  ry_gather_dims d;
  memset(&d, 0, sizeof d);
  d.index_vector_dim = s.rank;
  d.collapsed_slice_dims.n = d.start_index_map.n = d.slice_sizes.n = s.rank;
  for (int i = 0; i < s.rank; i++) {
    d.collapsed_slice_dims.v[i] = i;
    d.start_index_map.v[i] = i;
    d.slice_sizes.v[i] = 1;
  }
  return ry_gather_(b, loc, x, idx, &d);
}
