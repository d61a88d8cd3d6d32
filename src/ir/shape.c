/* Shape and dtype rules: one function per op kind, in a table indexed by op.
 * Each checks its operands and attributes and computes the result types; the
 * builder, the parser and the verifier all go through ry__infer, so a graph
 * that exists is a graph these rules accept. */
#include <stdarg.h>
#include <stdio.h>

#include "graph.h"
#include "shape_internal.h"
#include "ryft/gguf.h"

ry_code ryg_fail(ry_rule_ctx *c, ry_code code, const char *fmt, ...) RY_PRINTF(3, 4);
ry_code ryg_fail(ry_rule_ctx *c, ry_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, c->msg_size, fmt, ap);
  va_end(ap);
  return code;
}


ry_code ryg_set1(ry_rule_ctx *c, ry_type t) {
  c->res[0] = t;
  *c->n_res = 1;
  return RY_OK;
}

ry_code ryg_need_class(ry_rule_ctx *c, int i) {
  ry_dt_class cls = ryg_op_table[c->op].dtypes;
  if (!ryg_dt_class_has(cls, c->in[i].dtype))
    return ryg_fail(c, RY_ERR_DTYPE, "operand %d has dtype %s but the op needs a %s dtype", i, ry_dtype_name(c->in[i].dtype),
                ryg_dt_class_name(cls));
  return RY_OK;
}

ry_code ryg_need_requested(ry_rule_ctx *c) {
  if (*c->n_res < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "the result type must be given");
  if ((int)c->res[0].dtype < 0 || c->res[0].dtype >= RY_DTYPE_COUNT)
    return ryg_fail(c, RY_ERR_DTYPE, "invalid result dtype %d", (int)c->res[0].dtype);
  if (c->res[0].shape.rank < 0 || c->res[0].shape.rank > RY_MAX_RANK)
    return ryg_fail(c, RY_ERR_SHAPE, "result rank %d is outside 0..%d", c->res[0].shape.rank, RY_MAX_RANK);
  for (int i = 0; i < c->res[0].shape.rank; i++)
    if (c->res[0].shape.dims[i] < 0)
      return ryg_fail(c, RY_ERR_SHAPE, "result dimension %d is negative (%lld)", i, (long long)c->res[0].shape.dims[i]);
  return RY_OK;
}

/* axes: each in [0, rank), no repeats; `what` names the attribute. */
ry_code ryg_check_axes(ry_rule_ctx *c, const ry_axes *a, int rank, const char *what) {
  if (a->n < 0 || a->n > RY_MAX_RANK) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s has %d entries", what, a->n);
  for (int i = 0; i < a->n; i++) {
    if (a->v[i] < 0 || a->v[i] >= rank)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s: axis %lld is out of range for rank %d", what, ASTR(*a),
                  (long long)a->v[i], rank);
    for (int j = 0; j < i; j++)
      if (a->v[j] == a->v[i])
        return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s: axis %lld appears twice", what, ASTR(*a), (long long)a->v[i]);
  }
  return RY_OK;
}

static ry_code check_sorted(ry_rule_ctx *c, const ry_axes *a, const char *what) {
  for (int i = 1; i < a->n; i++)
    if (a->v[i] <= a->v[i - 1]) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s must be sorted", what, ASTR(*a));
  return RY_OK;
}

static bool in_axes(const ry_axes *a, int64_t x) {
  for (int i = 0; i < a->n; i++)
    if (a->v[i] == x) return true;
  return false;
}


/* ---- elementwise ---- */

static ry_code rule_unary(ry_rule_ctx *c) {
  TRY(ryg_need_class(c, 0));
  return ryg_set1(c, c->in[0]);
}

static ry_code rule_unary_pred(ry_rule_ctx *c) {
  TRY(ryg_need_class(c, 0));
  return ryg_set1(c, (ry_type){RY_BOOL, c->in[0].shape});
}

static ry_code same_types(ry_rule_ctx *c, int a, int b) {
  if (c->in[a].dtype != c->in[b].dtype)
    return ryg_fail(c, RY_ERR_DTYPE, "dtypes %s and %s differ (operands %d and %d)", ry_dtype_name(c->in[a].dtype),
                ry_dtype_name(c->in[b].dtype), a, b);
  if (!ry_shape_equal(c->in[a].shape, c->in[b].shape))
    return ryg_fail(c, RY_ERR_SHAPE, "shapes %s and %s differ (operands %d and %d)", SSTR(c->in[a].shape),
                SSTR(c->in[b].shape), a, b);
  return RY_OK;
}

static ry_code rule_binary(ry_rule_ctx *c) {
  TRY(same_types(c, 0, 1));
  TRY(ryg_need_class(c, 0));
  return ryg_set1(c, c->in[0]);
}

static ry_code rule_compare(ry_rule_ctx *c) {
  TRY(same_types(c, 0, 1));
  if ((int)c->attrs->compare.dir < 0 || c->attrs->compare.dir >= RY_CMP_COUNT)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "invalid comparison direction %d", (int)c->attrs->compare.dir);
  return ryg_set1(c, (ry_type){RY_BOOL, c->in[0].shape});
}

static ry_code rule_select(ry_rule_ctx *c) {
  if (c->in[0].dtype != RY_BOOL)
    return ryg_fail(c, RY_ERR_DTYPE, "the predicate has dtype %s, not bool", ry_dtype_name(c->in[0].dtype));
  TRY(same_types(c, 1, 2));
  if (c->in[0].shape.rank != 0 && !ry_shape_equal(c->in[0].shape, c->in[1].shape))
    return ryg_fail(c, RY_ERR_SHAPE, "the predicate shape %s is neither scalar nor the operands' shape %s",
                SSTR(c->in[0].shape), SSTR(c->in[1].shape));
  return ryg_set1(c, c->in[1]);
}

static ry_code rule_clamp(ry_rule_ctx *c) {
  for (int i = 0; i < 3; i += 2) {
    if (c->in[i].dtype != c->in[1].dtype)
      return ryg_fail(c, RY_ERR_DTYPE, "bound %d has dtype %s but x has %s", i, ry_dtype_name(c->in[i].dtype),
                  ry_dtype_name(c->in[1].dtype));
    if (c->in[i].shape.rank != 0 && !ry_shape_equal(c->in[i].shape, c->in[1].shape))
      return ryg_fail(c, RY_ERR_SHAPE, "bound %d has shape %s, neither scalar nor x's shape %s", i, SSTR(c->in[i].shape),
                  SSTR(c->in[1].shape));
  }
  return ryg_set1(c, c->in[1]);
}

static ry_code rule_convert(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  return ryg_set1(c, (ry_type){c->res[0].dtype, c->in[0].shape});
}

static ry_code rule_bitcast(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  if (ry_dtype_size(c->res[0].dtype) != ry_dtype_size(c->in[0].dtype) || c->res[0].dtype == RY_BOOL ||
      c->in[0].dtype == RY_BOOL)
    return ryg_fail(c, RY_ERR_DTYPE, "cannot bitcast %s to %s: the bit widths differ or one is bool",
                ry_dtype_name(c->in[0].dtype), ry_dtype_name(c->res[0].dtype));
  return ryg_set1(c, (ry_type){c->res[0].dtype, c->in[0].shape});
}

/* ---- shape ops ---- */

static ry_code rule_broadcast(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  ry_shape out = c->res[0].shape;
  const ry_axes *d = &c->attrs->broadcast.dims;
  if (d->n != c->in[0].shape.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dims %s has %d entries but the operand has rank %d", ASTR(*d), d->n,
                c->in[0].shape.rank);
  TRY(ryg_check_axes(c, d, out.rank, "dims"));
  for (int i = 0; i < d->n; i++) {
    int64_t od = out.dims[d->v[i]], id = c->in[0].shape.dims[i];
    if (id != 1 && id != od)
      return ryg_fail(c, RY_ERR_SHAPE, "operand dimension %d (size %lld) cannot broadcast to result dimension %lld (size %lld) of %s",
                  i, (long long)id, (long long)d->v[i], (long long)od, SSTR(out));
  }
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code rule_reshape(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  if (ry_shape_numel(c->res[0].shape) != ry_shape_numel(c->in[0].shape))
    return ryg_fail(c, RY_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s (%lld elements)", SSTR(c->in[0].shape),
                (long long)ry_shape_numel(c->in[0].shape), SSTR(c->res[0].shape), (long long)ry_shape_numel(c->res[0].shape));
  return ryg_set1(c, (ry_type){c->in[0].dtype, c->res[0].shape});
}

static ry_code rule_transpose(ry_rule_ctx *c) {
  const ry_axes *p = &c->attrs->transpose.perm;
  ry_shape in = c->in[0].shape;
  if (p->n != in.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "perm %s has %d entries but the operand has rank %d", ASTR(*p), p->n, in.rank);
  TRY(ryg_check_axes(c, p, in.rank, "perm"));
  ry_shape out = in;
  for (int i = 0; i < in.rank; i++) out.dims[i] = in.dims[p->v[i]];
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code rule_slice(ry_rule_ctx *c) {
  ry_shape in = c->in[0].shape, out = in;
  const ry_axes *st = &c->attrs->slice.start, *li = &c->attrs->slice.limit, *sd = &c->attrs->slice.stride;
  if (st->n != in.rank || li->n != in.rank || sd->n != in.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "start %s, limit %s and stride %s need %d entries (the operand's rank)",
                ASTR(*st), ASTR(*li), ASTR(*sd), in.rank);
  for (int i = 0; i < in.rank; i++) {
    if (st->v[i] < 0 || st->v[i] > li->v[i] || li->v[i] > in.dims[i])
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dimension %d: need 0 <= start (%lld) <= limit (%lld) <= size (%lld)", i,
                  (long long)st->v[i], (long long)li->v[i], (long long)in.dims[i]);
    if (sd->v[i] < 1)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dimension %d: stride %lld must be >= 1", i, (long long)sd->v[i]);
    int64_t len = li->v[i] - st->v[i]; /* >= 0; + stride could overflow */
    out.dims[i] = len == 0 ? 0 : (len - 1) / sd->v[i] + 1;
  }
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code check_index_scalars(ry_rule_ctx *c, int first) {
  for (int i = first; i < c->n_in; i++)
    if (c->in[i].shape.rank != 0 || !ry_dtype_is_int(c->in[i].dtype))
      return ryg_fail(c, RY_ERR_DTYPE, "start index operand %d has type %s; it must be an integer scalar", i, TSTR(c->in[i]));
  return RY_OK;
}

static ry_code rule_dynamic_slice(ry_rule_ctx *c) {
  if (c->n_in < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs an operand");
  ry_shape in = c->in[0].shape, out = in;
  if (c->n_in != 1 + in.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs %d start indices (the operand's rank), got %d", in.rank, c->n_in - 1);
  TRY(check_index_scalars(c, 1));
  const ry_axes *sz = &c->attrs->dynamic_slice.sizes;
  if (sz->n != in.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "sizes %s needs %d entries (the operand's rank)", ASTR(*sz), in.rank);
  for (int i = 0; i < in.rank; i++) {
    if (sz->v[i] < 0 || sz->v[i] > in.dims[i])
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "size %lld of dimension %d is outside 0..%lld", (long long)sz->v[i], i,
                  (long long)in.dims[i]);
    out.dims[i] = sz->v[i];
  }
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code rule_dynamic_update_slice(ry_rule_ctx *c) {
  if (c->n_in < 2) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs an operand and an update");
  ry_shape in = c->in[0].shape, up = c->in[1].shape;
  if (c->in[1].dtype != c->in[0].dtype)
    return ryg_fail(c, RY_ERR_DTYPE, "update dtype %s differs from operand dtype %s", ry_dtype_name(c->in[1].dtype),
                ry_dtype_name(c->in[0].dtype));
  if (up.rank != in.rank) return ryg_fail(c, RY_ERR_SHAPE, "update rank %d differs from operand rank %d", up.rank, in.rank);
  if (c->n_in != 2 + in.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs %d start indices (the operand's rank), got %d", in.rank, c->n_in - 2);
  TRY(check_index_scalars(c, 2));
  for (int i = 0; i < in.rank; i++)
    if (up.dims[i] > in.dims[i])
      return ryg_fail(c, RY_ERR_SHAPE, "update %s is larger than operand %s in dimension %d", SSTR(up), SSTR(in), i);
  return ryg_set1(c, c->in[0]);
}

static ry_code rule_concatenate(ry_rule_ctx *c) {
  if (c->n_in < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs at least one operand");
  int64_t dim = c->attrs->concatenate.dim;
  ry_shape out = c->in[0].shape;
  if (dim < 0 || dim >= out.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dim %lld is out of range for rank %d", (long long)dim, out.rank);
  out.dims[dim] = 0;
  for (int i = 0; i < c->n_in; i++) {
    ry_shape s = c->in[i].shape;
    if (c->in[i].dtype != c->in[0].dtype)
      return ryg_fail(c, RY_ERR_DTYPE, "operand %d has dtype %s but operand 0 has %s", i, ry_dtype_name(c->in[i].dtype),
                  ry_dtype_name(c->in[0].dtype));
    if (s.rank != out.rank) return ryg_fail(c, RY_ERR_SHAPE, "operand %d has rank %d but operand 0 has %d", i, s.rank, out.rank);
    for (int d = 0; d < s.rank; d++)
      if (d != dim && s.dims[d] != c->in[0].shape.dims[d])
        return ryg_fail(c, RY_ERR_SHAPE, "operand %d shape %s differs from operand 0 shape %s outside dim %lld", i, SSTR(s),
                    SSTR(c->in[0].shape), (long long)dim);
    if (s.dims[dim] > INT64_MAX - out.dims[dim]) return ryg_fail(c, RY_ERR_SHAPE, "the concatenated dimension is too large");
    out.dims[dim] += s.dims[dim];
  }
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code rule_pad(ry_rule_ctx *c) {
  ry_shape in = c->in[0].shape, out = in;
  if (c->in[1].dtype != c->in[0].dtype || c->in[1].shape.rank != 0)
    return ryg_fail(c, RY_ERR_DTYPE, "padding value %s must be a scalar of the operand's dtype %s", TSTR(c->in[1]),
                ry_dtype_name(c->in[0].dtype));
  const ry_axes *lo = &c->attrs->pad.low, *hi = &c->attrs->pad.high, *it = &c->attrs->pad.interior;
  if (lo->n != in.rank || hi->n != in.rank || it->n != in.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "low %s, high %s and interior %s need %d entries (the operand's rank)",
                ASTR(*lo), ASTR(*hi), ASTR(*it), in.rank);
  for (int i = 0; i < in.rank; i++) {
    if (it->v[i] < 0 || it->v[i] > (INT64_C(1) << 40))
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "interior padding %lld of dimension %d must be >= 0", (long long)it->v[i], i);
    if (lo->v[i] < -(INT64_C(1) << 40) || lo->v[i] > (INT64_C(1) << 40) || hi->v[i] < -(INT64_C(1) << 40) ||
        hi->v[i] > (INT64_C(1) << 40))
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "padding of dimension %d is too large", i);
    int64_t d = in.dims[i];
    if (d > (INT64_C(1) << 60) || (d > 1 && it->v[i] > 0 && d - 1 > (INT64_C(1) << 60) / it->v[i]))
      return ryg_fail(c, RY_ERR_SHAPE, "dimension %d is too large after padding", i);
    int64_t n = lo->v[i] + hi->v[i] + d + (d > 0 ? (d - 1) * it->v[i] : 0);
    if (n < 0)
      return ryg_fail(c, RY_ERR_SHAPE, "dimension %d would have negative size %lld after padding", i, (long long)n);
    out.dims[i] = n;
  }
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code rule_reverse(ry_rule_ctx *c) {
  TRY(ryg_check_axes(c, &c->attrs->reverse.dims, c->in[0].shape.rank, "dims"));
  return ryg_set1(c, c->in[0]);
}

static ry_code rule_iota(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  ry_type t = c->res[0];
  if (t.dtype == RY_BOOL) return ryg_fail(c, RY_ERR_DTYPE, "iota needs a numeric dtype, not bool");
  if (t.shape.rank < 1) return ryg_fail(c, RY_ERR_SHAPE, "iota needs a result of rank >= 1");
  if (c->attrs->iota.dim < 0 || c->attrs->iota.dim >= t.shape.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dim %lld is out of range for rank %d", (long long)c->attrs->iota.dim,
                t.shape.rank);
  return ryg_set1(c, t);
}

static ry_code rule_constant(ry_rule_ctx *c) {
  if (!c->attrs->constant.value) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "constant has no value");
  return ryg_set1(c, ry_array_type(c->attrs->constant.value));
}

/* ---- reductions ---- */

static ry_shape drop_axes(ry_shape in, const ry_axes *axes) {
  ry_shape out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < in.rank; i++)
    if (!in_axes(axes, i)) out.dims[out.rank++] = in.dims[i];
  return out;
}

/* a reduction kind and the operand dtype it needs (reduce, reduce_window) */
static ry_code reduce_kind_ok(ry_rule_ctx *c, ry_reduce_kind k, ry_dtype t) {
  if ((int)k < 0 || k >= RY_REDUCE_COUNT) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "invalid reduction kind %d", (int)k);
  if ((k == RY_AND || k == RY_OR) && !ryg_dt_class_has(RY_DT_INTB, t))
    return ryg_fail(c, RY_ERR_DTYPE, "reduction '%s' needs an integer or bool operand, not %s", ryg_reduce_names[k], ry_dtype_name(t));
  if ((k == RY_SUM || k == RY_PROD) && t == RY_BOOL)
    return ryg_fail(c, RY_ERR_DTYPE, "reduction '%s' needs a numeric operand, not bool", ryg_reduce_names[k]);
  return RY_OK;
}

static ry_code rule_reduce(ry_rule_ctx *c) {
  ry_reduce_kind k = c->attrs->reduce.kind;
  ry_dtype t = c->in[0].dtype;
  TRY(reduce_kind_ok(c, k, t));
  TRY(ryg_check_axes(c, &c->attrs->reduce.axes, c->in[0].shape.rank, "axes"));
  return ryg_set1(c, (ry_type){t, drop_axes(c->in[0].shape, &c->attrs->reduce.axes)});
}

static ry_code rule_arg(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  if (!ry_dtype_is_int(c->res[0].dtype))
    return ryg_fail(c, RY_ERR_DTYPE, "index dtype %s is not an integer dtype", ry_dtype_name(c->res[0].dtype));
  int64_t axis = c->attrs->arg.axis;
  if (axis < 0 || axis >= c->in[0].shape.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d", (long long)axis, c->in[0].shape.rank);
  if (c->in[0].shape.dims[axis] == 0) return ryg_fail(c, RY_ERR_SHAPE, "axis %lld has size 0", (long long)axis);
  ry_axes a = {1, {axis}};
  return ryg_set1(c, (ry_type){c->res[0].dtype, drop_axes(c->in[0].shape, &a)});
}

static ry_code rule_cumulative(ry_rule_ctx *c) {
  ry_reduce_kind k = c->attrs->cumulative.kind;
  if (k != RY_SUM && k != RY_PROD && k != RY_MAX && k != RY_MIN)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "cumulative kind must be sum, prod, max or min");
  TRY(ryg_need_class(c, 0));
  int64_t axis = c->attrs->cumulative.axis;
  if (axis < 0 || axis >= c->in[0].shape.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d", (long long)axis, c->in[0].shape.rank);
  return ryg_set1(c, c->in[0]);
}

/* ---- windowed reductions ---- */

/* The windows' result shape over an operand of shape `in` (every list one
 * entry per dimension): dilated and padded size, less the dilated window,
 * over the stride, plus one (0 when the window does not fit). */
static ry_code window_shape(ry_rule_ctx *c, ry_shape in, ry_shape *out) {
  const ry_window_dims *w = &c->attrs->window.w;
  const ry_axes *lists[6] = {&w->window, &w->stride, &w->base_dilation, &w->window_dilation, &w->pad_low, &w->pad_high};
  const char *names[6] = {"window", "stride", "base_dilation", "window_dilation", "pad_low", "pad_high"};
  *out = in;
  for (int k = 0; k < 6; k++) {
    if (lists[k]->n != in.rank)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s needs %d entries (the operand's rank)", names[k], ASTR(*lists[k]), in.rank);
    for (int i = 0; i < in.rank; i++) {
      int64_t v = lists[k]->v[i];
      if (k < 4 && v < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s: entries must be >= 1", names[k], ASTR(*lists[k]));
      if (v > (INT64_C(1) << 32) || v < -(INT64_C(1) << 32))
        return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s: entry out of range", names[k], ASTR(*lists[k]));
    }
  }
  for (int i = 0; i < in.rank; i++) {
    int64_t d = in.dims[i];
    if (d > (INT64_C(1) << 40) || (d > 1 && d - 1 > (INT64_C(1) << 60) / w->base_dilation.v[i]) ||
        w->window.v[i] - 1 > (INT64_C(1) << 60) / w->window_dilation.v[i])
      return ryg_fail(c, RY_ERR_SHAPE, "dimension %d is too large after dilation", i);
    int64_t dd = (d == 0 ? 0 : (d - 1) * w->base_dilation.v[i] + 1) + w->pad_low.v[i] + w->pad_high.v[i];
    int64_t dw = (w->window.v[i] - 1) * w->window_dilation.v[i] + 1;
    if (dd < 0) return ryg_fail(c, RY_ERR_SHAPE, "dimension %d has negative size %lld after padding", i, (long long)dd);
    out->dims[i] = dd < dw ? 0 : (dd - dw) / w->stride.v[i] + 1;
  }
  return RY_OK;
}

static ry_code rule_reduce_window(ry_rule_ctx *c) {
  ry_reduce_kind k = c->attrs->window.kind;
  ry_dtype t = c->in[0].dtype;
  TRY(reduce_kind_ok(c, k, t));
  ry_shape out;
  TRY(window_shape(c, c->in[0].shape, &out));
  return ryg_set1(c, (ry_type){t, out});
}

/* select_and_scatter(x, source) and select_and_gather(x, t): kind max or
 * min, operands of one dtype; returns the windows' shape over x. */
static ry_code select_common(ry_rule_ctx *c, ry_shape *win) {
  ry_reduce_kind k = c->attrs->window.kind;
  if (k != RY_MAX && k != RY_MIN) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "kind must be max or min (what a window selects)");
  TRY(ryg_need_class(c, 0));
  if (c->in[1].dtype != c->in[0].dtype)
    return ryg_fail(c, RY_ERR_DTYPE, "operand dtypes %s and %s differ", ry_dtype_name(c->in[0].dtype), ry_dtype_name(c->in[1].dtype));
  return window_shape(c, c->in[0].shape, win);
}

static ry_code rule_select_and_scatter(ry_rule_ctx *c) {
  ry_shape win;
  TRY(select_common(c, &win));
  const ry_window_dims *w = &c->attrs->window.w;
  for (int i = 0; i < c->in[0].shape.rank; i++)
    if (w->base_dilation.v[i] != 1 || w->window_dilation.v[i] != 1)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "select_and_scatter takes no dilations (base %s, window %s)",
                      ASTR(w->base_dilation), ASTR(w->window_dilation));
  if (!ry_shape_equal(c->in[1].shape, win))
    return ryg_fail(c, RY_ERR_SHAPE, "source %s must have the windows' shape %s", SSTR(c->in[1].shape), SSTR(win));
  return ryg_set1(c, c->in[0]);
}

static ry_code rule_select_and_gather(ry_rule_ctx *c) {
  ry_shape win;
  TRY(select_common(c, &win));
  if (!ry_shape_equal(c->in[1].shape, c->in[0].shape))
    return ryg_fail(c, RY_ERR_SHAPE, "t %s must have the shape of x %s", SSTR(c->in[1].shape), SSTR(c->in[0].shape));
  return ryg_set1(c, (ry_type){c->in[0].dtype, win});
}

/* ---- contractions ---- */

static ry_code rule_dot(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  const ry_dot_dims *d = &c->attrs->dot;
  ry_shape l = c->in[0].shape, r = c->in[1].shape;
  if (c->in[0].dtype != c->in[1].dtype)
    return ryg_fail(c, RY_ERR_DTYPE, "operand dtypes %s and %s differ", ry_dtype_name(c->in[0].dtype), ry_dtype_name(c->in[1].dtype));
  TRY(ryg_need_class(c, 0));
  if (c->res[0].dtype == RY_BOOL) return ryg_fail(c, RY_ERR_DTYPE, "result dtype must be numeric");
  TRY(ryg_check_axes(c, &d->lhs_batch, l.rank, "lhs_batch"));
  TRY(ryg_check_axes(c, &d->rhs_batch, r.rank, "rhs_batch"));
  TRY(ryg_check_axes(c, &d->lhs_contract, l.rank, "lhs_contract"));
  TRY(ryg_check_axes(c, &d->rhs_contract, r.rank, "rhs_contract"));
  if (d->lhs_batch.n != d->rhs_batch.n)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "lhs_batch %s and rhs_batch %s differ in length", ASTR(d->lhs_batch), ASTR(d->rhs_batch));
  if (d->lhs_contract.n != d->rhs_contract.n)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "lhs_contract %s and rhs_contract %s differ in length", ASTR(d->lhs_contract),
                ASTR(d->rhs_contract));
  for (int i = 0; i < d->lhs_batch.n; i++) {
    if (in_axes(&d->lhs_contract, d->lhs_batch.v[i]) || in_axes(&d->rhs_contract, d->rhs_batch.v[i]))
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "a dimension is both batch and contracting");
    if (l.dims[d->lhs_batch.v[i]] != r.dims[d->rhs_batch.v[i]])
      return ryg_fail(c, RY_ERR_SHAPE, "batch dimension %d: lhs size %lld != rhs size %lld", i,
                  (long long)l.dims[d->lhs_batch.v[i]], (long long)r.dims[d->rhs_batch.v[i]]);
  }
  for (int i = 0; i < d->lhs_contract.n; i++)
    if (l.dims[d->lhs_contract.v[i]] != r.dims[d->rhs_contract.v[i]])
      return ryg_fail(c, RY_ERR_SHAPE, "contracting dimension %d: lhs %s dim %lld (size %lld) != rhs %s dim %lld (size %lld)", i,
                  SSTR(l), (long long)d->lhs_contract.v[i], (long long)l.dims[d->lhs_contract.v[i]], SSTR(r),
                  (long long)d->rhs_contract.v[i], (long long)r.dims[d->rhs_contract.v[i]]);
  ry_shape out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < d->lhs_batch.n; i++) out.dims[out.rank++] = l.dims[d->lhs_batch.v[i]];
  for (int i = 0; i < l.rank; i++)
    if (!in_axes(&d->lhs_batch, i) && !in_axes(&d->lhs_contract, i)) out.dims[out.rank++] = l.dims[i];
  for (int i = 0; i < r.rank; i++)
    if (!in_axes(&d->rhs_batch, i) && !in_axes(&d->rhs_contract, i)) {
      if (out.rank == RY_MAX_RANK) return ryg_fail(c, RY_ERR_SHAPE, "result rank would exceed %d", RY_MAX_RANK);
      out.dims[out.rank++] = r.dims[i];
    }
  return ryg_set1(c, (ry_type){c->res[0].dtype, out});
}

static ry_code check_perm(ry_rule_ctx *c, const ry_axes *a, int rank, const char *what) {
  if (a->n != rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s needs %d entries (the rank)", what, ASTR(*a), rank);
  return ryg_check_axes(c, a, rank, what);
}

static ry_code rule_conv(ry_rule_ctx *c) {
  TRY(ryg_need_requested(c));
  const ry_conv_dims *d = &c->attrs->conv;
  ry_shape l = c->in[0].shape, r = c->in[1].shape;
  if (c->in[0].dtype != c->in[1].dtype)
    return ryg_fail(c, RY_ERR_DTYPE, "operand dtypes %s and %s differ", ry_dtype_name(c->in[0].dtype), ry_dtype_name(c->in[1].dtype));
  TRY(ryg_need_class(c, 0));
  if (l.rank < 2) return ryg_fail(c, RY_ERR_SHAPE, "lhs %s needs rank >= 2 (batch and feature)", SSTR(l));
  if (r.rank != l.rank) return ryg_fail(c, RY_ERR_SHAPE, "lhs %s and rhs %s ranks differ", SSTR(l), SSTR(r));
  int ns = l.rank - 2;
  TRY(check_perm(c, &d->input_dims, l.rank, "input_dims"));
  TRY(check_perm(c, &d->kernel_dims, l.rank, "kernel_dims"));
  TRY(check_perm(c, &d->output_dims, l.rank, "output_dims"));
  const ry_axes *lists[5] = {&d->stride, &d->pad_low, &d->pad_high, &d->lhs_dilation, &d->rhs_dilation};
  const char *names[5] = {"stride", "pad_low", "pad_high", "lhs_dilation", "rhs_dilation"};
  for (int k = 0; k < 5; k++) {
    if (lists[k]->n != ns)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s needs %d entries (one per spatial dim)", names[k], ASTR(*lists[k]), ns);
    for (int i = 0; i < ns; i++) {
      int64_t v = lists[k]->v[i];
      if ((k == 0 || k >= 3) && v < 1)
        return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s: entries must be >= 1", names[k], ASTR(*lists[k]));
      if (v > (INT64_C(1) << 32) || v < -(INT64_C(1) << 32))
        return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "%s %s: entry out of range", names[k], ASTR(*lists[k]));
    }
  }
  int64_t fg = d->feature_groups, bg = d->batch_groups;
  if (fg < 1 || bg < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "feature_groups (%lld) and batch_groups (%lld) must be >= 1", (long long)fg, (long long)bg);
  if (fg > 1 && bg > 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "feature_groups and batch_groups cannot both be > 1");
  int64_t batch = l.dims[d->input_dims.v[0]], in_f = l.dims[d->input_dims.v[1]];
  int64_t k_in = r.dims[d->kernel_dims.v[1]], k_out = r.dims[d->kernel_dims.v[0]];
  if (k_in > INT64_MAX / fg || in_f != k_in * fg)
    return ryg_fail(c, RY_ERR_SHAPE, "input features (%lld) must equal kernel input features (%lld) * feature_groups (%lld)",
                (long long)in_f, (long long)k_in, (long long)fg);
  if (k_out % fg || k_out % bg)
    return ryg_fail(c, RY_ERR_SHAPE, "kernel output features (%lld) must be divisible by the group counts", (long long)k_out);
  if (batch % bg) return ryg_fail(c, RY_ERR_SHAPE, "batch (%lld) must be divisible by batch_groups (%lld)", (long long)batch, (long long)bg);
  ry_shape out;
  memset(&out, 0, sizeof out);
  out.rank = l.rank;
  out.dims[d->output_dims.v[0]] = batch / bg;
  out.dims[d->output_dims.v[1]] = k_out;
  for (int i = 0; i < ns; i++) {
    int64_t in = l.dims[d->input_dims.v[2 + i]], k = r.dims[d->kernel_dims.v[2 + i]];
    if ((in > 1 && in - 1 > (INT64_C(1) << 60) / d->lhs_dilation.v[i]) ||
        (k > 1 && k - 1 > (INT64_C(1) << 60) / d->rhs_dilation.v[i]))
      return ryg_fail(c, RY_ERR_SHAPE, "spatial dimension %d is too large after dilation", i);
    int64_t din = in == 0 ? 0 : (in - 1) * d->lhs_dilation.v[i] + 1;
    din += d->pad_low.v[i] + d->pad_high.v[i];
    int64_t dk = k == 0 ? 0 : (k - 1) * d->rhs_dilation.v[i] + 1;
    int64_t o = (din < dk || din <= 0) ? 0 : (din - dk) / d->stride.v[i] + 1;
    out.dims[d->output_dims.v[2 + i]] = o;
  }
  return ryg_set1(c, (ry_type){c->res[0].dtype, out});
}

/* ---- indexing ---- */

static ry_code rule_gather(ry_rule_ctx *c) {
  const ry_gather_dims *d = &c->attrs->gather;
  ry_shape op = c->in[0].shape, ix = c->in[1].shape;
  if (!ry_dtype_is_int(c->in[1].dtype))
    return ryg_fail(c, RY_ERR_DTYPE, "indices have dtype %s, not an integer dtype", ry_dtype_name(c->in[1].dtype));
  int64_t ivd = d->index_vector_dim;
  if (ivd < 0 || ivd > ix.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "index_vector_dim %lld is outside 0..%d", (long long)ivd, ix.rank);
  int64_t nidx = ivd == ix.rank ? 1 : ix.dims[ivd];
  if (d->slice_sizes.n != op.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "slice_sizes %s needs %d entries (the operand's rank)", ASTR(d->slice_sizes), op.rank);
  for (int i = 0; i < op.rank; i++)
    if (d->slice_sizes.v[i] < 0 || d->slice_sizes.v[i] > op.dims[i])
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "slice size %lld of dimension %d is outside 0..%lld", (long long)d->slice_sizes.v[i],
                  i, (long long)op.dims[i]);
  TRY(ryg_check_axes(c, &d->collapsed_slice_dims, op.rank, "collapsed_slice_dims"));
  TRY(check_sorted(c, &d->collapsed_slice_dims, "collapsed_slice_dims"));
  for (int i = 0; i < d->collapsed_slice_dims.n; i++)
    if (d->slice_sizes.v[d->collapsed_slice_dims.v[i]] > 1)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "collapsed dimension %lld has slice size %lld; it must be <= 1",
                  (long long)d->collapsed_slice_dims.v[i], (long long)d->slice_sizes.v[d->collapsed_slice_dims.v[i]]);
  TRY(ryg_check_axes(c, &d->start_index_map, op.rank, "start_index_map"));
  if (d->start_index_map.n != nidx)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "start_index_map %s has %d entries but index vectors have %lld",
                ASTR(d->start_index_map), d->start_index_map.n, (long long)nidx);
  int batch_rank = ivd == ix.rank ? ix.rank : ix.rank - 1;
  int out_rank = batch_rank + d->offset_dims.n;
  if (d->offset_dims.n != op.rank - d->collapsed_slice_dims.n)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "offset_dims %s needs %d entries (operand rank minus collapsed dims)",
                ASTR(d->offset_dims), op.rank - d->collapsed_slice_dims.n);
  if (out_rank > RY_MAX_RANK) return ryg_fail(c, RY_ERR_SHAPE, "result rank %d exceeds %d", out_rank, RY_MAX_RANK);
  TRY(ryg_check_axes(c, &d->offset_dims, out_rank, "offset_dims"));
  TRY(check_sorted(c, &d->offset_dims, "offset_dims"));
  ry_shape out;
  memset(&out, 0, sizeof out);
  out.rank = out_rank;
  int bi = 0, oi = 0;
  for (int i = 0; i < out_rank; i++) {
    if (in_axes(&d->offset_dims, i)) {
      while (in_axes(&d->collapsed_slice_dims, oi)) oi++;
      out.dims[i] = d->slice_sizes.v[oi++];
    } else {
      if (bi == ivd) bi++;
      out.dims[i] = ix.dims[bi++];
    }
  }
  return ryg_set1(c, (ry_type){c->in[0].dtype, out});
}

static ry_code rule_scatter(ry_rule_ctx *c) {
  const ry_scatter_dims *d = &c->attrs->scatter;
  ry_shape op = c->in[0].shape, ix = c->in[1].shape, up = c->in[2].shape;
  if (!ry_dtype_is_int(c->in[1].dtype))
    return ryg_fail(c, RY_ERR_DTYPE, "indices have dtype %s, not an integer dtype", ry_dtype_name(c->in[1].dtype));
  if (c->in[2].dtype != c->in[0].dtype)
    return ryg_fail(c, RY_ERR_DTYPE, "updates dtype %s differs from operand dtype %s", ry_dtype_name(c->in[2].dtype),
                ry_dtype_name(c->in[0].dtype));
  if ((int)d->kind < 0 || d->kind >= RY_SCATTER_COUNT) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "invalid scatter kind");
  if ((d->kind == RY_SCATTER_ADD || d->kind == RY_SCATTER_MUL) && c->in[0].dtype == RY_BOOL)
    return ryg_fail(c, RY_ERR_DTYPE, "scatter %s needs a numeric operand", ryg_scatter_names[d->kind]);
  int64_t ivd = d->index_vector_dim;
  if (ivd < 0 || ivd > ix.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "index_vector_dim %lld is outside 0..%d", (long long)ivd, ix.rank);
  int64_t nidx = ivd == ix.rank ? 1 : ix.dims[ivd];
  int batch_rank = ivd == ix.rank ? ix.rank : ix.rank - 1;
  TRY(ryg_check_axes(c, &d->update_window_dims, up.rank, "update_window_dims"));
  TRY(check_sorted(c, &d->update_window_dims, "update_window_dims"));
  TRY(ryg_check_axes(c, &d->inserted_window_dims, op.rank, "inserted_window_dims"));
  TRY(check_sorted(c, &d->inserted_window_dims, "inserted_window_dims"));
  TRY(ryg_check_axes(c, &d->scatter_dims_to_operand_dims, op.rank, "scatter_dims_to_operand_dims"));
  if (d->scatter_dims_to_operand_dims.n != nidx)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "scatter_dims_to_operand_dims %s has %d entries but index vectors have %lld",
                ASTR(d->scatter_dims_to_operand_dims), d->scatter_dims_to_operand_dims.n, (long long)nidx);
  if (d->update_window_dims.n + d->inserted_window_dims.n != op.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "update_window_dims %s and inserted_window_dims %s must together cover the operand rank %d",
                ASTR(d->update_window_dims), ASTR(d->inserted_window_dims), op.rank);
  if (up.rank != d->update_window_dims.n + batch_rank)
    return ryg_fail(c, RY_ERR_SHAPE, "updates %s need rank %d (window dims plus index batch dims)", SSTR(up),
                d->update_window_dims.n + batch_rank);
  int wi = 0, bi = 0;
  for (int i = 0; i < up.rank; i++) {
    if (in_axes(&d->update_window_dims, i)) {
      while (in_axes(&d->inserted_window_dims, wi)) wi++;
      if (up.dims[i] > op.dims[wi])
        return ryg_fail(c, RY_ERR_SHAPE, "update window dimension %d (size %lld) exceeds operand dimension %d (size %lld)", i,
                    (long long)up.dims[i], wi, (long long)op.dims[wi]);
      wi++;
    } else {
      if (bi == ivd) bi++;
      if (up.dims[i] != ix.dims[bi])
        return ryg_fail(c, RY_ERR_SHAPE, "updates %s dimension %d (size %lld) must match indices %s dimension %d", SSTR(up), i,
                    (long long)up.dims[i], SSTR(ix), bi);
      bi++;
    }
  }
  return ryg_set1(c, c->in[0]);
}

static ry_code rule_sort(ry_rule_ctx *c) {
  if (c->n_in < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs at least one operand");
  for (int i = 1; i < c->n_in; i++)
    if (!ry_shape_equal(c->in[i].shape, c->in[0].shape))
      return ryg_fail(c, RY_ERR_SHAPE, "operand %d shape %s differs from operand 0 shape %s", i, SSTR(c->in[i].shape),
                  SSTR(c->in[0].shape));
  int64_t dim = c->attrs->sort.dim, nk = c->attrs->sort.num_keys;
  if (dim < 0 || dim >= c->in[0].shape.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dim %lld is out of range for rank %d", (long long)dim, c->in[0].shape.rank);
  if (nk < 1 || nk > c->n_in)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "num_keys %lld must be in 1..%d", (long long)nk, c->n_in);
  for (int i = 0; i < c->n_in; i++) c->res[i] = c->in[i];
  *c->n_res = c->n_in;
  return RY_OK;
}

static ry_code rule_threefry(ry_rule_ctx *c) {
  for (int i = 0; i < 4; i++) {
    if (c->in[i].dtype != RY_U32)
      return ryg_fail(c, RY_ERR_DTYPE, "operand %d has dtype %s; threefry2x32 needs u32", i, ry_dtype_name(c->in[i].dtype));
    if (!ry_shape_equal(c->in[i].shape, c->in[0].shape))
      return ryg_fail(c, RY_ERR_SHAPE, "operand %d shape %s differs from operand 0 shape %s", i, SSTR(c->in[i].shape),
                  SSTR(c->in[0].shape));
  }
  c->res[0] = c->res[1] = c->in[0];
  *c->n_res = 2;
  return RY_OK;
}

/* dequantize: u8[..., k * type_size] raw ggml blocks -> f32[..., k * block_size] */
static ry_code rule_dequantize(ry_rule_ctx *c) {
  int64_t fmt = c->attrs->quant.format;
  const char *name = fmt >= 0 && fmt < INT32_MAX ? ry_ggml_type_name((int)fmt) : NULL;
  if (!name) return ryg_fail(c, RY_ERR_UNSUPPORTED, "unknown ggml type %lld", (long long)fmt);
  ry_status st = ry_ggml_dequantize((int)fmt, NULL, NULL, 0);
  if (st) {
    ry_status_free(st);
    return ryg_fail(c, RY_ERR_UNSUPPORTED, "ggml type %s has no dequantizer", name);
  }
  ry_shape s = c->in[0].shape;
  int64_t ts = (int64_t)ry_ggml_type_size((int)fmt), bs = ry_ggml_block_size((int)fmt);
  if (c->in[0].dtype != RY_U8 || s.rank < 1 || s.dims[s.rank - 1] % ts)
    return ryg_fail(c, RY_ERR_SHAPE, "%s blocks are u8[..., k*%lld], not %s[%s]", name, (long long)ts,
                    ry_dtype_name(c->in[0].dtype), SSTR(s));
  s.dims[s.rank - 1] = s.dims[s.rank - 1] / ts * bs;
  return ryg_set1(c, (ry_type){RY_F32, s});
}

/* ---- the table ---- */

/* Each op's rule is its kind's rule: RULE_<KIND> names the function. */
#define RULE_ALL_REDUCE ryg_rule_all_reduce
#define RULE_ALL_GATHER ryg_rule_all_gather
#define RULE_REDUCE_SCATTER ryg_rule_reduce_scatter
#define RULE_COLLECTIVE_BROADCAST ryg_rule_collective_broadcast
#define RULE_SHARDING ryg_rule_sharding
#define RULE_UNARY rule_unary
#define RULE_UNARY_PRED rule_unary_pred
#define RULE_BINARY rule_binary
#define RULE_COMPARE rule_compare
#define RULE_SELECT rule_select
#define RULE_CLAMP rule_clamp
#define RULE_CONVERT rule_convert
#define RULE_BITCAST rule_bitcast
#define RULE_BROADCAST rule_broadcast
#define RULE_RESHAPE rule_reshape
#define RULE_TRANSPOSE rule_transpose
#define RULE_SLICE rule_slice
#define RULE_DYNAMIC_SLICE rule_dynamic_slice
#define RULE_DYNAMIC_UPDATE_SLICE rule_dynamic_update_slice
#define RULE_CONCATENATE rule_concatenate
#define RULE_PAD rule_pad
#define RULE_REVERSE rule_reverse
#define RULE_IOTA rule_iota
#define RULE_CONSTANT rule_constant
#define RULE_REDUCE rule_reduce
#define RULE_ARG rule_arg
#define RULE_CUMULATIVE rule_cumulative
#define RULE_REDUCE_WINDOW rule_reduce_window
#define RULE_SELECT_AND_SCATTER rule_select_and_scatter
#define RULE_SELECT_AND_GATHER rule_select_and_gather
#define RULE_DOT rule_dot
#define RULE_CONV rule_conv
#define RULE_GATHER rule_gather
#define RULE_SCATTER rule_scatter
#define RULE_SORT rule_sort
#define RULE_THREEFRY rule_threefry
#define RULE_DEQUANTIZE rule_dequantize
#define RULE_COND ryg_rule_cond
#define RULE_WHILE ryg_rule_while
#define RULE_SCAN ryg_rule_scan
#define RULE_CALL ryg_rule_call
#define RULE_CUSTOM ryg_rule_custom

const ry_shape_rule ryg_shape_rules[RY_OP_COUNT] = {
#define OP(id, nm, nin, nout, at, kd, dt, fl) [RY_OP_##id] = RULE_##kd,
#include "ops.def"
#undef OP
};

ry_status ry__infer(ry_op op, const ry_attrs *attrs, int n_in, const ry_type *in, const ry_graph *g, int n_regions,
                    const int32_t *regions, ry_type *res, int *n_res, ry_loc loc) {
  char msg[1024];
  msg[0] = 0;
  ry_code code = RY_OK;
  if ((int)op < 0 || op >= RY_OP_COUNT) return ry__err(RY_ERR_INVALID_ARGUMENT, "invalid op id %d", (int)op);
  const ry_op_info *info = &ryg_op_table[op];
  ry_shape_rule rule = ryg_shape_rules[op];
  if (info->n_operands >= 0 && n_in != info->n_operands) {
    code = RY_ERR_INVALID_ARGUMENT;
    snprintf(msg, sizeof msg, "takes %d operand%s, got %d", info->n_operands, info->n_operands == 1 ? "" : "s", n_in);
  } else if (!rule) {
    code = RY_ERR_UNSUPPORTED;
    snprintf(msg, sizeof msg, "has no shape rule");
  } else {
    ry_rule_ctx c = {op, attrs, n_in, in, g, n_regions, regions, res, n_res, msg, sizeof msg};
    code = rule(&c);
  }
  if (code == RY_OK) return NULL;
  /* "op: message (operands: f32[2], i32[]) at file:line" */
  char ops[512];
  size_t k = 0;
  ops[0] = 0;
  for (int i = 0; i < n_in && k < sizeof ops - 1; i++) {
    char t[RY_MAX_RANK * 21 + 16];
    if (i == 6 && n_in > 7) {
      k += (size_t)snprintf(ops + k, sizeof ops - k, ", ... (%d in all)", n_in);
      break;
    }
    k += (size_t)snprintf(ops + k, sizeof ops - k, "%s%s", i ? ", " : "", ry_type_str(in[i], t, sizeof t));
  }
  if (loc.file)
    return ry__err(code, "%s: %s (operands: %s) at %s:%d", info->name, msg, n_in ? ops : "none", loc.file, loc.line);
  return ry__err(code, "%s: %s (operands: %s)", info->name, msg, n_in ? ops : "none");
}
