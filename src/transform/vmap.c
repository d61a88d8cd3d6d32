/* Vectorizing map: one batching rule per op, and the driver that re-traces a
 * graph with a "batched" flag beside every value. A batched value carries the
 * batch at axis 0 (inputs are moved there on entry, outputs moved to out_axes
 * on exit); an unbatched value is the same for every lane and stays unbatched
 * until an op mixes it with batched ones (then it is broadcast). Control flow
 * follows JAX: cond with a batched index becomes a select over every
 * branch's results; while with a batched predicate runs until every lane is
 * done and keeps the carry of finished lanes with a select. */
#include "transform.h"
#include "vmap_internal.h"



/* ---- elementwise ---- */

/* Every operand broadcast to batched, the op unchanged. */
static void r_elementwise(ryt_vmap_args *a) {
  ry_value in[64];
  int n = a->n->n_operands;
  if (n > 64) { ryb_failf(B, L, RY_ERR_UNSUPPORTED, "vmap", "too many operands"); return; }
  for (int i = 0; i < n; i++) in[i] = mat(a, i);
  emit_batched(a, in, NULL);
}
/* A scalar-or-full operand (select's predicate, clamp's bounds): a scalar
 * stays scalar while unbatched, and a batched scalar becomes full. */
static ry_value scalar_or_full(ryt_vmap_args *a, int i, ry_shape full) {
  if (src_in(a, i).shape.rank != 0) return mat(a, i);
  return BX(i) ? bcast_lead(B, L, X(i), full) : X(i);
}
static void r_select(ryt_vmap_args *a) {
  ry_value in[3] = {{0}, mat(a, 1), mat(a, 2)};
  in[0] = scalar_or_full(a, 0, T(B, in[1]).shape);
  emit_batched(a, in, NULL);
}
static void r_clamp(ryt_vmap_args *a) {
  ry_value in[3] = {{0}, mat(a, 1), {0}};
  ry_shape s = T(B, in[1]).shape;
  in[0] = scalar_or_full(a, 0, s);
  in[2] = scalar_or_full(a, 2, s);
  emit_batched(a, in, NULL);
}

/* ---- shape ops ---- */

static void r_broadcast(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.broadcast.dims = shift1(a->n->attrs.broadcast.dims, true);
  ry_value in = X(0);
  emit_batched(a, &in, &at);
}
static void r_transpose(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.transpose.perm = shift1(a->n->attrs.transpose.perm, true);
  emit_batched(a, a->x, &at);
}
static void r_slice(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.slice.start = prepend(a->n->attrs.slice.start, 0);
  at.slice.limit = prepend(a->n->attrs.slice.limit, N);
  at.slice.stride = prepend(a->n->attrs.slice.stride, 1);
  emit_batched(a, a->x, &at);
}
static void r_reverse(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.reverse.dims = shift1(a->n->attrs.reverse.dims, false);
  emit_batched(a, a->x, &at);
}
static void r_concatenate(ryt_vmap_args *a) {
  int n = a->n->n_operands;
  ry_value *in = ry__calloc((size_t)n, sizeof *in);
  if (!in) { ryb_fail(B, ry__oom()); return; }
  for (int i = 0; i < n; i++) in[i] = mat(a, i);
  ry_attrs at = zattrs();
  at.concatenate.dim = a->n->attrs.concatenate.dim + 1;
  emit_batched(a, in, &at);
  ry__free(in, (size_t)n * sizeof *in);
}
static void r_pad(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.pad.low = prepend(a->n->attrs.pad.low, 0);
  at.pad.high = prepend(a->n->attrs.pad.high, 0);
  at.pad.interior = prepend(a->n->attrs.pad.interior, 0);
  if (!BX(1)) {
    ry_value in[2] = {X(0), X(1)};
    emit_batched(a, in, &at);
    return;
  }
  /* a batched padding value: pad with zero, then select the value where a
   * padded mask is false (as JAX does) */
  ry_type xt = src_in(a, 0);
  ry_value in[2] = {mat(a, 0), ry_scalar_(B, L, xt.dtype, 0)};
  ry_value y = ry_pad_(B, L, in[0], in[1], at.pad.low, at.pad.high, at.pad.interior);
  ry_value ones = ryt_full_like(B, L, (ry_type){RY_BOOL, xt.shape}, 1);
  ry_value mask = ry_pad_(B, L, ones, ry_scalar_(B, L, RY_BOOL, 0), a->n->attrs.pad.low, a->n->attrs.pad.high,
                          a->n->attrs.pad.interior);
  ry_shape ys = T(B, y).shape;
  ry_value mb = bcast_batch(B, L, mask, N);
  a->y[0] = ry_select_(B, L, mb, y, bcast_lead(B, L, X(1), ys));
  a->by[0] = true;
}
/* No operands, so never batched: iota, constant. */
static void r_copy(ryt_vmap_args *a) { ryt_copy_node(B, a->g, a->n, a->x, a->y); }

/* ---- collectives: the batch axis rides along (it is not a device axis) ---- */

static void r_collective(ryt_vmap_args *a) {
  ry_attrs at = a->n->attrs;
  if (a->n->op == RY_OP_ALL_GATHER || a->n->op == RY_OP_REDUCE_SCATTER) at.collective.dim++;
  if (a->n->op == RY_OP_SHARDING) at.sharding.dims = prepend(at.sharding.dims, -1);
  emit_batched(a, a->x, &at);
}

/* ---- reductions ---- */

static void r_reduce(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.reduce.kind = a->n->attrs.reduce.kind;
  at.reduce.axes = shift1(a->n->attrs.reduce.axes, false);
  emit_batched(a, a->x, &at);
}
static void r_arg(ryt_vmap_args *a) {
  ry_attrs at = zattrs();
  at.arg.axis = a->n->attrs.arg.axis + 1;
  emit_batched(a, a->x, &at);
}
static void r_cumulative(ryt_vmap_args *a) {
  ry_attrs at = a->n->attrs;
  at.cumulative.axis++;
  emit_batched(a, a->x, &at);
}
/* row-wise along the last axis: a leading batch axis changes nothing */
static void r_dequantize(ryt_vmap_args *a) {
  ry_attrs at = a->n->attrs;
  emit_batched(a, a->x, &at);
}
/* Windowed ops: a window of 1 along the batch axis, every operand batched. */
static void r_window(ryt_vmap_args *a) {
  ry_attrs at = a->n->attrs;
  ry_window_dims *w = &at.window.w;
  w->window = prepend(w->window, 1);
  w->stride = prepend(w->stride, 1);
  w->base_dilation = prepend(w->base_dilation, 1);
  w->window_dilation = prepend(w->window_dilation, 1);
  w->pad_low = prepend(w->pad_low, 0);
  w->pad_high = prepend(w->pad_high, 0);
  ry_value in[2];
  for (int i = 0; i < a->n->n_operands && i < 2; i++) in[i] = mat(a, i);
  emit_batched(a, in, &at);
}
static void r_sort(ryt_vmap_args *a) {
  int n = a->n->n_operands;
  ry_value *in = ry__calloc((size_t)n, sizeof *in);
  if (!in) { ryb_fail(B, ry__oom()); return; }
  for (int i = 0; i < n; i++) in[i] = mat(a, i);
  ry_attrs at = a->n->attrs;
  at.sort.dim++;
  emit_batched(a, in, &at);
  ry__free(in, (size_t)n * sizeof *in);
}

/* ---- contractions ---- */

static int count_free(int rank, const ry_axes *batch, const ry_axes *contract) {
  int k = rank;
  return k - batch->n - contract->n;
}
/* Both batched: the batch axis becomes a leading dot batch dimension. One
 * side batched: its axis 0 is a free dimension, moved to 0 afterwards. */
static void r_dot(ryt_vmap_args *a) {
  const ry_dot_dims *d = &a->n->attrs.dot;
  ry_attrs at = zattrs();
  ry_dot_dims *nd = &at.dot;
  bool both = BX(0) && BX(1);
  nd->lhs_batch = shift1(d->lhs_batch, both);
  nd->rhs_batch = shift1(d->rhs_batch, both);
  nd->lhs_contract = shift1(d->lhs_contract, false);
  nd->rhs_contract = shift1(d->rhs_contract, false);
  if (!BX(0)) nd->lhs_batch = d->lhs_batch, nd->lhs_contract = d->lhs_contract;
  if (!BX(1)) nd->rhs_batch = d->rhs_batch, nd->rhs_contract = d->rhs_contract;
  ry_type out = src_out(a, 0);
  ry_value y = ry_dot_general_(B, L, X(0), X(1), *nd, out.dtype);
  int pos = 0;
  if (!both) {
    pos = d->lhs_batch.n;
    if (BX(1)) pos += count_free(src_in(a, 0).shape.rank, &d->lhs_batch, &d->lhs_contract);
  }
  a->y[0] = moveaxis(B, L, y, pos, 0);
  a->by[0] = true;
}

/* Merge axis 0 of v into axis `dst` of the rest (axis 0 major): JAX's
 * _reshape_axis_into(0, dst, v). */
static ry_value axis_into(ry_builder *b, ry_loc loc, ry_value v, int src, int dst) {
  ry_shape s = T(b, v).shape;
  ry_value t = moveaxis(b, loc, v, src, dst);
  ry_shape o = {0, {0}};
  for (int i = 0; i < s.rank; i++)
    if (i != src) o.dims[o.rank++] = s.dims[i];
  o.dims[dst] *= s.dims[src];
  return ry_reshape_(b, loc, t, o);
}
/* Split axis src of v into (size, rest): JAX's _reshape_axis_out_of. */
static ry_value axis_out_of(ry_builder *b, ry_loc loc, ry_value v, int src, int64_t size) {
  ry_shape s = T(b, v).shape, o = {0, {0}};
  for (int i = 0; i < s.rank; i++) {
    if (i == src) {
      o.dims[o.rank++] = size;
      o.dims[o.rank++] = size ? s.dims[i] / size : 0;
    } else {
      o.dims[o.rank++] = s.dims[i];
    }
  }
  return ry_reshape_(b, loc, v, o);
}
/* convolution, as JAX's _conv_general_dilated_batch_rule: the batch axis is
 * folded into the lhs batch or feature dimension or the rhs output feature
 * dimension, and split out of the result. */
static void r_conv(ryt_vmap_args *a) {
  ry_conv_dims d = a->n->attrs.conv;
  int ls0 = (int)d.input_dims.v[0], ls1 = (int)d.input_dims.v[1], rs0 = (int)d.kernel_dims.v[0];
  int os0 = (int)d.output_dims.v[0], os1 = (int)d.output_dims.v[1];
  ry_value lhs = X(0), rhs = X(1), y;
  int64_t fg = d.feature_groups, bg = d.batch_groups;
  int out_dim;
  if (BX(0) && BX(1)) {
    if (bg > 1) {
      lhs = axis_into(B, L, lhs, 0, ls0);
      d.batch_groups = bg * N;
    } else {
      lhs = axis_into(B, L, lhs, 0, ls1);
      d.feature_groups = fg * N;
    }
    rhs = axis_into(B, L, rhs, 0, rs0);
    y = ry_convolution_(B, L, lhs, rhs, &d);
    y = axis_out_of(B, L, y, os1, N);
    out_dim = os1;
  } else if (BX(0)) {
    if (bg == 1) {
      lhs = axis_into(B, L, lhs, 0, ls0);
    } else {
      lhs = axis_out_of(B, L, lhs, ls0 + 1, bg);
      lhs = axis_into(B, L, lhs, 0, ls0 + 1);
      lhs = axis_into(B, L, lhs, ls0, ls0);
    }
    y = ry_convolution_(B, L, lhs, rhs, &d);
    y = axis_out_of(B, L, y, os0, N);
    out_dim = os0;
  } else {
    if (fg == 1 && bg == 1) {
      rhs = axis_into(B, L, rhs, 0, rs0);
      y = ry_convolution_(B, L, lhs, rhs, &d);
      y = axis_out_of(B, L, y, os1, N);
    } else {
      int64_t gc = fg > 1 ? fg : bg;
      rhs = axis_out_of(B, L, rhs, rs0 + 1, gc);
      rhs = axis_into(B, L, rhs, 0, rs0 + 1);
      rhs = axis_into(B, L, rhs, rs0, rs0);
      y = ry_convolution_(B, L, lhs, rhs, &d);
      y = axis_out_of(B, L, y, os1, gc);
      y = axis_out_of(B, L, y, os1 + 1, N);
      y = axis_into(B, L, y, os1, os1 + 1);
    }
    out_dim = os1;
  }
  a->y[0] = moveaxis(B, L, y, out_dim, 0);
  a->by[0] = true;
}

/* ---- indexing ---- */

/* An index dtype that holds 0..n-1 (JAX's _promote_dtype_for_size). */
static ry_dtype index_dtype_for(ry_dtype t, int64_t n) {
  int64_t max = 0;
  switch (t) {
  case RY_I8: max = 127; break;
  case RY_U8: max = 255; break;
  case RY_U16: max = 65535; break;
  case RY_I16: max = 32767; break;
  default: return t;
  }
  return n - 1 <= max ? t : RY_I32;
}
/* Batched indices (batch at 0) with an explicit index vector dim `ivd` (of
 * the batched shape; == rank means implicit) get an iota counting the batch
 * prepended to every index vector. Returns the new indices; *ivd_out is
 * their index vector dim. */
static ry_value index_with_counter(ry_builder *b, ry_loc loc, ry_value idx, int64_t ivd, int64_t n, int64_t *ivd_out) {
  ry_type t = T(b, idx);
  if (ivd == t.shape.rank) {
    ry_shape s = t.shape;
    s.dims[s.rank++] = 1;
    idx = ry_reshape_(b, loc, idx, s);
    t = T(b, idx);
  }
  ry_dtype dt = index_dtype_for(t.dtype, n);
  if (dt != t.dtype) idx = ry_convert_(b, loc, idx, dt);
  ry_shape cs = t.shape;
  cs.dims[ivd] = 1;
  ry_value counts = ry_iota_(b, loc, dt, cs, 0);
  ry_value parts[2] = {counts, idx};
  *ivd_out = ivd;
  return ry_concatenate_(b, loc, 2, parts, (int)ivd);
}

static void r_gather(ryt_vmap_args *a) {
  const ry_gather_dims *d = &a->n->attrs.gather;
  ry_attrs at = zattrs();
  ry_gather_dims *nd = &at.gather;
  ry_value in[2] = {X(0), X(1)};
  if (BX(0) && !BX(1)) {
    nd->slice_sizes = prepend(d->slice_sizes, N);
    nd->offset_dims = shift1(d->offset_dims, true);
    nd->collapsed_slice_dims = shift1(d->collapsed_slice_dims, false);
    nd->start_index_map = shift1(d->start_index_map, false);
    nd->index_vector_dim = d->index_vector_dim;
  } else if (!BX(0)) {
    *nd = *d;
    nd->offset_dims = shift1(d->offset_dims, false);
    nd->index_vector_dim = d->index_vector_dim + 1;
  } else {
    if (N == 0) {
      a->y[0] = ryt_zeros(B, L, bt(src_out(a, 0), N));
      a->by[0] = true;
      return;
    }
    in[1] = index_with_counter(B, L, X(1), d->index_vector_dim + 1, N, &nd->index_vector_dim);
    nd->slice_sizes = prepend(d->slice_sizes, 1);
    nd->collapsed_slice_dims = shift1(d->collapsed_slice_dims, true);
    nd->offset_dims = shift1(d->offset_dims, false);
    nd->start_index_map = shift1(d->start_index_map, true);
  }
  emit_batched(a, in, &at);
}

static void r_scatter(ryt_vmap_args *a) {
  const ry_scatter_dims *d = &a->n->attrs.scatter;
  ry_attrs at = zattrs();
  ry_scatter_dims *nd = &at.scatter;
  nd->kind = d->kind;
  ry_value in[3] = {mat(a, 0), X(1), mat(a, 2)};
  if (!BX(1)) {
    nd->inserted_window_dims = shift1(d->inserted_window_dims, false);
    nd->update_window_dims = shift1(d->update_window_dims, true);
    nd->scatter_dims_to_operand_dims = shift1(d->scatter_dims_to_operand_dims, false);
    nd->index_vector_dim = d->index_vector_dim;
  } else {
    in[1] = index_with_counter(B, L, X(1), d->index_vector_dim + 1, N, &nd->index_vector_dim);
    nd->update_window_dims = shift1(d->update_window_dims, false);
    nd->inserted_window_dims = shift1(d->inserted_window_dims, true);
    nd->scatter_dims_to_operand_dims = shift1(d->scatter_dims_to_operand_dims, true);
  }
  emit_batched(a, in, &at);
}

/* Start indices first..first+r-1 as an [N, r] (+1 with a leading counter
 * column when `counter`) index array of one integer dtype; each start is
 * clamped into [0, hi[k]] when hi is given. */
static ry_value stack_starts(ryt_vmap_args *a, int first, int r, const int64_t *hi, bool counter) {
  ry_dtype dt = RY_I32;
  for (int k = 0; k < r; k++) {
    ry_dtype t = T(B, X(first + k)).dtype;
    if (t == RY_I64 || t == RY_U32 || t == RY_U64) dt = RY_I64;
  }
  ry_value parts[RY_MAX_RANK + 1];
  int np = 0;
  if (counter) parts[np++] = ry_iota_(B, L, dt, RY_SHAPE(N, 1), 0);
  for (int k = 0; k < r; k++) {
    ry_value v = X(first + k);
    if (T(B, v).dtype != dt) v = ry_convert_(B, L, v, dt);
    if (hi) v = ry_clamp_(B, L, ry_scalar_(B, L, dt, 0), v, ry_scalar_(B, L, dt, (double)hi[k]));
    if (!BX(first + k)) v = bcast_batch(B, L, v, N);
    parts[np++] = ry_reshape_(B, L, v, RY_SHAPE(N, 1));
  }
  return ry_concatenate_(B, L, np, parts, 1);
}
static bool any_batched(const ryt_vmap_args *a, int from) {
  for (int i = from; i < a->n->n_operands; i++)
    if (BX(i)) return true;
  return false;
}
/* Unbatched starts: one more start (0) for the batch axis. Batched starts:
 * a gather, as JAX does. */
static void r_dynamic_slice(ryt_vmap_args *a) {
  int r = src_in(a, 0).shape.rank;
  const ry_axes *sizes = &a->n->attrs.dynamic_slice.sizes;
  if (!any_batched(a, 1)) {
    ry_value in[RY_MAX_RANK + 2];
    in[0] = X(0);
    in[1] = ry_scalar_(B, L, r ? T(B, X(1)).dtype : RY_I32, 0);
    for (int k = 0; k < r; k++) in[2 + k] = X(1 + k);
    ry_attrs at = zattrs();
    at.dynamic_slice.sizes = prepend(*sizes, N);
    ry_type req = bt(src_out(a, 0), N);
    a->y[0] = ryb_emit1(B, L, RY_OP_DYNAMIC_SLICE, r + 2, in, &at, &req);
    a->by[0] = true;
    return;
  }
  ry_gather_dims gd;
  memset(&gd, 0, sizeof gd);
  gd.index_vector_dim = 1;
  gd.offset_dims = iota_axes(1, r);
  if (BX(0)) {
    gd.collapsed_slice_dims = (ry_axes){1, {0}};
    gd.start_index_map = iota_axes(0, r + 1);
    gd.slice_sizes = prepend(*sizes, 1);
  } else {
    gd.start_index_map = iota_axes(0, r);
    gd.slice_sizes = *sizes;
  }
  ry_value idx = stack_starts(a, 1, r, NULL, BX(0));
  a->y[0] = ry_gather_(B, L, X(0), idx, &gd);
  a->by[0] = true;
}
static void r_dynamic_update_slice(ryt_vmap_args *a) {
  ry_type xt = src_in(a, 0), ut = src_in(a, 1);
  int r = xt.shape.rank;
  if (!any_batched(a, 2)) {
    ry_value in[RY_MAX_RANK + 3];
    in[0] = mat(a, 0);
    in[1] = mat(a, 1);
    in[2] = ry_scalar_(B, L, r ? T(B, X(2)).dtype : RY_I32, 0);
    for (int k = 0; k < r; k++) in[3 + k] = X(2 + k);
    ry_type req = bt(src_out(a, 0), N);
    a->y[0] = ryb_emit1(B, L, RY_OP_DYNAMIC_UPDATE_SLICE, r + 3, in, NULL, &req);
    a->by[0] = true;
    return;
  }
  /* a scatter with the starts clamped as dynamic_update_slice clamps them */
  int64_t hi[RY_MAX_RANK] = {0};
  for (int k = 0; k < r; k++) hi[k] = xt.shape.dims[k] - ut.shape.dims[k];
  ry_value idx = stack_starts(a, 2, r, hi, true);
  ry_scatter_dims sd;
  memset(&sd, 0, sizeof sd);
  sd.update_window_dims = iota_axes(1, r);
  sd.inserted_window_dims = (ry_axes){1, {0}};
  sd.scatter_dims_to_operand_dims = iota_axes(0, r + 1);
  sd.index_vector_dim = 1;
  sd.kind = RY_SCATTER_REPLACE;
  a->y[0] = ry_scatter_(B, L, mat(a, 0), idx, mat(a, 1), &sd);
  a->by[0] = true;
}

/* ---- the table ---- */

/* The batching rule of every op follows from its KIND in ops.def (every
 * elementwise kind batches the same way), so a new op of an existing kind
 * needs no line here. */
#define BATCH_OF_UNARY r_elementwise
#define BATCH_OF_UNARY_PRED r_elementwise
#define BATCH_OF_BINARY r_elementwise
#define BATCH_OF_COMPARE r_elementwise
#define BATCH_OF_SELECT r_select
#define BATCH_OF_CLAMP r_clamp
#define BATCH_OF_CONVERT r_elementwise
#define BATCH_OF_BITCAST r_elementwise
#define BATCH_OF_BROADCAST r_broadcast
#define BATCH_OF_RESHAPE r_elementwise
#define BATCH_OF_TRANSPOSE r_transpose
#define BATCH_OF_SLICE r_slice
#define BATCH_OF_DYNAMIC_SLICE r_dynamic_slice
#define BATCH_OF_DYNAMIC_UPDATE_SLICE r_dynamic_update_slice
#define BATCH_OF_CONCATENATE r_concatenate
#define BATCH_OF_PAD r_pad
#define BATCH_OF_REVERSE r_reverse
#define BATCH_OF_IOTA r_copy
#define BATCH_OF_CONSTANT r_copy
#define BATCH_OF_REDUCE r_reduce
#define BATCH_OF_ARG r_arg
#define BATCH_OF_CUMULATIVE r_cumulative
#define BATCH_OF_REDUCE_WINDOW r_window
#define BATCH_OF_SELECT_AND_SCATTER r_window
#define BATCH_OF_SELECT_AND_GATHER r_window
#define BATCH_OF_DOT r_dot
#define BATCH_OF_CONV r_conv
#define BATCH_OF_GATHER r_gather
#define BATCH_OF_SCATTER r_scatter
#define BATCH_OF_SORT r_sort
#define BATCH_OF_THREEFRY r_elementwise
#define BATCH_OF_DEQUANTIZE r_dequantize
#define BATCH_OF_COND ryt_r_cond
#define BATCH_OF_WHILE ryt_r_while
#define BATCH_OF_SCAN ryt_r_scan
#define BATCH_OF_CALL ryt_r_call
#define BATCH_OF_CUSTOM ryt_r_custom_call
#define BATCH_OF_ALL_REDUCE r_collective
#define BATCH_OF_ALL_GATHER r_collective
#define BATCH_OF_REDUCE_SCATTER r_collective
#define BATCH_OF_COLLECTIVE_BROADCAST r_collective
#define BATCH_OF_SHARDING r_collective
#define OP(id, name, n_operands, n_results, attrs, kind, dtypes, flags) [RY_OP_##id] = BATCH_OF_##kind,
const ry_batch_rule ryt_batch_rules[RY_OP_COUNT] = {
#include "../ir/ops.def"
};
#undef OP

/* ---- the driver ---- */

int ryt_vmap_region(ry_builder *b, const ry_graph *g, int32_t r, int64_t size, const ry_value *x, const bool *bx, ry_value *y,
                    bool *by) {
  if (!ryb_ok(b)) return 0;
  const ry_region *reg = &g->regions[r];
  ry_value *V = ry__calloc((size_t)g->n_values, sizeof *V);
  bool *Bv = ry__calloc((size_t)g->n_values, sizeof *Bv);
  ry_value *in = ry__calloc(1024, sizeof *in), *out = ry__calloc(RY_MAX_OUTPUTS, sizeof *out);
  bool *bin = ry__calloc(1024, sizeof *bin), *bout = ry__calloc(RY_MAX_OUTPUTS, sizeof *bout);
  int nres = 0;
  if (!V || !Bv || !in || !out || !bin || !bout) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < reg->params.n; i++) {
    V[reg->params.v[i]] = x[i];
    Bv[reg->params.v[i]] = bx[i];
  }
  for (int k = 0; k < reg->nodes.n && ryb_ok(b); k++) {
    const ry_node *n = &g->nodes[reg->nodes.v[k]];
    const char *name = ryg_op_table[n->op].name;
    if (n->n_operands > 1024 || n->n_results > RY_MAX_OUTPUTS) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, name, "too many operands for vmap");
      break;
    }
    const int32_t *ops = ry_node_operands(g, n);
    bool any = false;
    for (int i = 0; i < n->n_operands; i++) {
      in[i] = V[ops[i]];
      bin[i] = Bv[ops[i]];
      any |= bin[i];
    }
    int m = n->n_results;
    for (int i = 0; i < m; i++) {
      out[i] = (ry_value){0};
      bout[i] = false;
    }
    if (!any) {
      m = ryt_copy_node(b, g, n, in, out);
    } else {
      for (int i = 0; i < n->n_results; i++)
        if (ry_vtype(g, ry_node_results(g, n)[i]).shape.rank >= RY_MAX_RANK) {
          ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, name, "vmap: a batched result would have rank %d, more than %d",
                    RY_MAX_RANK + 1, RY_MAX_RANK);
          break;
        }
      for (int i = 0; i < n->n_operands && ryb_ok(b); i++)
        if (ry_vtype(g, ops[i]).shape.rank >= RY_MAX_RANK)
          ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, name, "vmap: a batched operand would have rank %d, more than %d",
                    RY_MAX_RANK + 1, RY_MAX_RANK);
      if (!ryb_ok(b)) break;
      ryt_vmap_args a = {b, n->loc, g, n, size, in, bin, out, bout};
      ryt_batch_rules[n->op](&a);
    }
    if (!ryb_ok(b)) break;
    const int32_t *rs = ry_node_results(g, n);
    for (int i = 0; i < n->n_results; i++) {
      if (!out[i].id) {
        ryb_failf(b, n->loc, RY_ERR_INTERNAL, name, "vmap: the batching rule produced no result %d", i);
        break;
      }
      V[rs[i]] = out[i];
      Bv[rs[i]] = bout[i];
    }
  }
  if (ryb_ok(b)) {
    for (int i = 0; i < reg->results.n; i++) {
      y[i] = V[reg->results.v[i]];
      by[i] = Bv[reg->results.v[i]];
    }
    nres = reg->results.n;
  }
done:
  ry__free(V, (size_t)g->n_values * sizeof *V);
  ry__free(Bv, (size_t)g->n_values * sizeof *Bv);
  ry__free(in, 1024 * sizeof *in);
  ry__free(out, RY_MAX_OUTPUTS * sizeof *out);
  ry__free(bin, 1024 * sizeof *bin);
  ry__free(bout, RY_MAX_OUTPUTS * sizeof *bout);
  return nres;
}

/* ---- the public entry ---- */

static int norm_axis(int ax, int rank) { return ax < 0 ? ax + rank : ax; }

ry_status ry_vmap_typed(ry_graph *f, const ry_type *in_types, const int *in_axes, const int *out_axes, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_vmap: out is NULL");
  *out = NULL;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_vmap: the graph is NULL");
  if (!in_types) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_vmap: in_types is NULL");
  int n_in = ry_graph_num_inputs(f), n_out = ry_graph_num_outputs(f);
  int64_t size = -1;
  int first = -1;
  char b1[96], b2[96], b3[96];
  for (int i = 0; i < n_in; i++) {
    int ax = in_axes ? in_axes[i] : 0;
    ry_type ft = ry_graph_input_type(f, i), t = in_types[i];
    if (ax == RY_NOT_BATCHED) {
      if (!ry_type_equal(t, ft))
        return ry__err(RY_ERR_SHAPE, "vmap: input %d is not batched, so its type %s must be @%s's input type %s", i,
                       ry_type_str(t, b1, sizeof b1), f->name, ry_type_str(ft, b2, sizeof b2));
      continue;
    }
    int r = t.shape.rank, na = norm_axis(ax, r);
    if (na < 0 || na >= r)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "vmap: in_axes[%d] = %d is out of range for input %d of rank %d (%s)", i, ax, i,
                     r, ry_type_str(t, b1, sizeof b1));
    ry_type et = t;
    et.shape.rank = r - 1;
    for (int k = na; k < r - 1; k++) et.shape.dims[k] = t.shape.dims[k + 1];
    et.shape.dims[r - 1] = 0;
    if (!ry_type_equal(et, ft))
      return ry__err(RY_ERR_SHAPE, "vmap: input %d of type %s without its mapped axis %d is %s, but @%s takes %s", i,
                     ry_type_str(t, b1, sizeof b1), na, ry_type_str(et, b2, sizeof b2), f->name, ry_type_str(ft, b3, sizeof b3));
    if (first < 0) {
      first = i;
      size = t.shape.dims[na];
    } else if (t.shape.dims[na] != size) {
      return ry__err(RY_ERR_SHAPE, "vmap: input %d has size %lld along axis %d but input %d has %lld", i,
                     (long long)t.shape.dims[na], na, first, (long long)size);
    }
  }
  if (first < 0)
    return ry__err(RY_ERR_INVALID_ARGUMENT,
                   "vmap: every input of @%s is RY_NOT_BATCHED; at least one input must be mapped to give the batch size", f->name);
  for (int j = 0; j < n_out; j++) {
    int ax = out_axes ? out_axes[j] : 0;
    if (ax == RY_NOT_BATCHED) continue;
    int r = ry_graph_output_type(f, j).shape.rank + 1;
    int na = norm_axis(ax, r);
    if (na < 0 || na >= r)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "vmap: out_axes[%d] = %d is out of range for output %d of rank %d (with the batch axis)",
                     j, ax, j, r);
    if (r > RY_MAX_RANK)
      return ry__err(RY_ERR_UNSUPPORTED, "vmap: output %d would have rank %d, more than %d", j, r, RY_MAX_RANK);
  }
  ry_graph *fi = NULL;
  ry_status s = ryt_inline_calls(f, &fi);
  if (s) return s;
  ry_builder *b = ry_builder_new(fi->name);
  ry_value *x = ry__calloc((size_t)n_in + 1, sizeof *x), *y = ry__calloc(RY_MAX_OUTPUTS, sizeof *y);
  bool *bx = ry__calloc((size_t)n_in + 1, sizeof *bx), *by = ry__calloc(RY_MAX_OUTPUTS, sizeof *by);
  ry_graph *v = NULL;
  if (!b || !x || !y || !bx || !by) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  ry_loc loc = {0};
  for (int i = 0; i < n_in; i++) {
    int ax = in_axes ? in_axes[i] : 0;
    x[i] = ry_input(b, ry_graph_input_name(fi, i), in_types[i]);
    if (ax != RY_NOT_BATCHED) {
      bx[i] = true;
      x[i] = moveaxis(b, loc, x[i], norm_axis(ax, in_types[i].shape.rank), 0);
    }
  }
  int m = ryt_vmap_region(b, fi, 0, size, x, bx, y, by);
  for (int j = 0; j < m && ryb_ok(b); j++) {
    int ax = out_axes ? out_axes[j] : 0;
    if (ax == RY_NOT_BATCHED) {
      if (by[j])
        ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "vmap",
                  "out_axes[%d] is RY_NOT_BATCHED but output %d depends on a mapped input", j, j);
      continue;
    }
    if (!by[j]) y[j] = bcast_batch(b, loc, y[j], size);
    y[j] = moveaxis(b, loc, y[j], 0, norm_axis(ax, ry_value_type(b, y[j]).shape.rank));
  }
  s = ry_builder_finish(b, ryb_ok(b) ? m : 0, y, &v);
  if (!s) s = ry_simplify(v, out);
done:
  ry_graph_release(v);
  ry_graph_release(fi);
  ry__free(x, ((size_t)n_in + 1) * sizeof *x);
  ry__free(y, RY_MAX_OUTPUTS * sizeof *y);
  ry__free(bx, ((size_t)n_in + 1) * sizeof *bx);
  ry__free(by, RY_MAX_OUTPUTS * sizeof *by);
  return s;
}

ry_status ry_vmap(ry_graph *f, int64_t axis_size, const int *in_axes, const int *out_axes, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_vmap: out is NULL");
  *out = NULL;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_vmap: the graph is NULL");
  if (axis_size < 0) return ry__err(RY_ERR_INVALID_ARGUMENT, "vmap: axis_size %lld is negative", (long long)axis_size);
  int n_in = ry_graph_num_inputs(f);
  ry_type *t = ry__calloc((size_t)n_in + 1, sizeof *t);
  if (!t) return ry__oom();
  ry_status s = NULL;
  for (int i = 0; i < n_in && !s; i++) {
    int ax = in_axes ? in_axes[i] : 0;
    t[i] = ry_graph_input_type(f, i);
    if (ax == RY_NOT_BATCHED) continue;
    int r = t[i].shape.rank + 1, na = norm_axis(ax, r);
    if (na < 0 || na >= r) {
      s = ry__err(RY_ERR_INVALID_ARGUMENT, "vmap: in_axes[%d] = %d is out of range for input %d of rank %d (with the batch axis)",
                  i, ax, i, r);
      break;
    }
    if (r > RY_MAX_RANK) {
      s = ry__err(RY_ERR_UNSUPPORTED, "vmap: input %d would have rank %d, more than %d", i, r, RY_MAX_RANK);
      break;
    }
    for (int k = r - 1; k > na; k--) t[i].shape.dims[k] = t[i].shape.dims[k - 1];
    t[i].shape.dims[na] = axis_size;
    t[i].shape.rank = r;
  }
  if (!s) s = ry_vmap_typed(f, t, in_axes, out_axes, out);
  ry__free(t, ((size_t)n_in + 1) * sizeof *t);
  return s;
}
