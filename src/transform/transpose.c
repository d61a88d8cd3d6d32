/* Reverse mode, JAX's way: linearize (JVP, then split the primal part from
 * the part linear in the tangents) and transpose the linear part. Only the
 * linear ops that JVP rules emit need a transpose rule. */
#include <math.h>

#include "transform.h"

#define B (a->b)
#define L (a->loc)
static ry_type OT(const ryt_tr_args *a, int i) { return ry_vtype(a->g, ry_node_operands(a->g, a->n)[i]); }
static ry_type RT(const ryt_tr_args *a, int i) { return ry_vtype(a->g, ry_node_results(a->g, a->n)[i]); }

static void t_unsupported(ryt_tr_args *a) {
  ryb_failf(B, L, RY_ERR_UNSUPPORTED, ryg_op_table[a->n->op].name, "reverse-mode differentiation through this op is not supported");
}
static void t_nonlinear(ryt_tr_args *a) {
  ryb_failf(B, L, RY_ERR_INTERNAL, ryg_op_table[a->n->op].name, "op is not linear in its tangent operands");
}

static void t_add(ryt_tr_args *a) {
  for (int i = 0; i < 2; i++)
    if (a->lin[i]) a->ct_in[i] = a->ct[0];
}
static void t_sub(ryt_tr_args *a) {
  if (a->lin[0]) a->ct_in[0] = a->ct[0];
  if (a->lin[1]) a->ct_in[1] = ry_neg_(B, L, a->ct[0]);
}
static void t_neg(ryt_tr_args *a) { a->ct_in[0] = ry_neg_(B, L, a->ct[0]); }
static void t_mul(ryt_tr_args *a) {
  if (a->lin[0] && a->lin[1]) { t_nonlinear(a); return; }
  int i = a->lin[0] ? 0 : 1;
  a->ct_in[i] = ry_mul_(B, L, a->ct[0], a->x[1 - i]);
}
static void t_div(ryt_tr_args *a) {
  if (a->lin[1]) { t_nonlinear(a); return; }
  a->ct_in[0] = ry_div_(B, L, a->ct[0], a->x[1]);
}
static void t_convert(ryt_tr_args *a) { a->ct_in[0] = ry_convert_(B, L, a->ct[0], OT(a, 0).dtype); }
static void t_select(ryt_tr_args *a) {
  if (a->lin[0]) { t_nonlinear(a); return; }
  ry_value z = ryt_zeros(B, L, RT(a, 0));
  if (a->lin[1]) a->ct_in[1] = ry_select_(B, L, a->x[0], a->ct[0], z);
  if (a->lin[2]) a->ct_in[2] = ry_select_(B, L, a->x[0], z, a->ct[0]);
}
static void t_reshape(ryt_tr_args *a) { a->ct_in[0] = ry_reshape_(B, L, a->ct[0], OT(a, 0).shape); }
static void t_transpose(ryt_tr_args *a) {
  const ry_axes *p = &a->n->attrs.transpose.perm;
  ry_axes inv = {p->n, {0}};
  for (int i = 0; i < p->n; i++) inv.v[p->v[i]] = i;
  a->ct_in[0] = ry_transpose_(B, L, a->ct[0], inv);
}
static void t_reverse(ryt_tr_args *a) { a->ct_in[0] = ry_reverse_(B, L, a->ct[0], a->n->attrs.reverse.dims); }
static void t_broadcast(ryt_tr_args *a) {
  ry_shape s = OT(a, 0).shape, S = RT(a, 0).shape;
  const ry_axes *d = &a->n->attrs.broadcast.dims;
  ry_axes sum = {0, {0}};
  bool kept[RY_MAX_RANK] = {false};
  for (int i = 0; i < d->n; i++)
    if (!(s.dims[i] == 1 && S.dims[d->v[i]] != 1)) kept[d->v[i]] = true;
  for (int j = 0; j < S.rank; j++)
    if (!kept[j]) sum.v[sum.n++] = j;
  ry_value r = sum.n ? ry_reduce_(B, L, a->ct[0], RY_SUM, sum) : a->ct[0];
  /* remaining dims are the kept result dims in increasing order; put them in operand order */
  ry_axes order = {0, {0}};
  for (int i = 0; i < d->n; i++)
    if (kept[d->v[i]]) order.v[order.n++] = d->v[i];
  /* rank of each kept result dim among kept dims */
  ry_axes perm = {order.n, {0}};
  for (int i = 0; i < order.n; i++) {
    int rank = 0;
    for (int j = 0; j < order.n; j++) rank += order.v[j] < order.v[i];
    perm.v[i] = rank;
  }
  bool ident = true;
  for (int i = 0; i < perm.n; i++) ident &= perm.v[i] == i;
  if (!ident) r = ry_transpose_(B, L, r, perm);
  a->ct_in[0] = ry_reshape_(B, L, r, s);
}
static void t_slice(ryt_tr_args *a) {
  ry_shape s = OT(a, 0).shape, r = RT(a, 0).shape;
  if (ry_shape_numel(r) == 0) {
    a->ct_in[0] = ryt_zeros(B, L, OT(a, 0));
    return;
  }
  const ry_axes *st = &a->n->attrs.slice.start, *sd = &a->n->attrs.slice.stride;
  ry_axes lo = {s.rank, {0}}, hi = {s.rank, {0}}, in = {s.rank, {0}};
  for (int i = 0; i < s.rank; i++) {
    lo.v[i] = st->v[i];
    in.v[i] = sd->v[i] - 1;
    hi.v[i] = s.dims[i] - (st->v[i] + (r.dims[i] - 1) * sd->v[i] + 1);
  }
  a->ct_in[0] = ry_pad_(B, L, a->ct[0], ry_scalar_(B, L, OT(a, 0).dtype, 0), lo, hi, in);
}
static void t_pad(ryt_tr_args *a) {
  ry_type xt = OT(a, 0);
  const ry_axes *lo = &a->n->attrs.pad.low, *hi = &a->n->attrs.pad.high, *it = &a->n->attrs.pad.interior;
  ry_value ctx;
  if (ry_shape_numel(xt.shape) == 0) {
    ctx = ryt_zeros(B, L, xt);
  } else {
    ry_axes nlo = {xt.shape.rank, {0}}, nhi = {xt.shape.rank, {0}}, zero = {xt.shape.rank, {0}};
    ry_axes st = {xt.shape.rank, {0}}, li = {xt.shape.rank, {0}}, sd = {xt.shape.rank, {0}};
    for (int i = 0; i < xt.shape.rank; i++) {
      nlo.v[i] = -lo->v[i];
      nhi.v[i] = -hi->v[i];
      li.v[i] = xt.shape.dims[i] + (xt.shape.dims[i] - 1) * it->v[i];
      sd.v[i] = it->v[i] + 1;
    }
    ry_value un = ry_pad_(B, L, a->ct[0], ry_scalar_(B, L, xt.dtype, 0), nlo, nhi, zero);
    ctx = ry_slice_(B, L, un, st, li, sd);
  }
  if (a->lin[0]) a->ct_in[0] = ctx;
  if (a->lin[1]) {
    ry_value all = ry_reduce_(B, L, a->ct[0], RY_SUM, (ry_axes){RT(a, 0).shape.rank, {0, 1, 2, 3, 4, 5, 6, 7}});
    ry_value inner = ry_reduce_(B, L, ctx, RY_SUM, (ry_axes){xt.shape.rank, {0, 1, 2, 3, 4, 5, 6, 7}});
    a->ct_in[1] = ry_sub_(B, L, all, inner);
  }
}
static void t_concatenate(ryt_tr_args *a) {
  int64_t dim = a->n->attrs.concatenate.dim, off = 0;
  ry_shape S = RT(a, 0).shape;
  for (int i = 0; i < a->n->n_operands; i++) {
    ry_shape s = OT(a, i).shape;
    if (a->lin[i]) {
      ry_axes st = {S.rank, {0}}, li = {S.rank, {0}};
      for (int k = 0; k < S.rank; k++) li.v[k] = S.dims[k];
      st.v[dim] = off;
      li.v[dim] = off + s.dims[dim];
      a->ct_in[i] = ry_slice_(B, L, a->ct[0], st, li, RY_NO_AXES);
    }
    off += s.dims[dim];
  }
}
static void t_reduce(ryt_tr_args *a) {
  if (a->n->attrs.reduce.kind != RY_SUM) { t_nonlinear(a); return; }
  ry_shape s = OT(a, 0).shape;
  const ry_axes *ax = &a->n->attrs.reduce.axes;
  ry_axes dims = {0, {0}};
  for (int i = 0; i < s.rank; i++) {
    bool red = false;
    for (int k = 0; k < ax->n; k++) red |= ax->v[k] == i;
    if (!red) dims.v[dims.n++] = i;
  }
  a->ct_in[0] = ry_broadcast_in_dim_(B, L, a->ct[0], s, dims);
}
static void t_cumulative(ryt_tr_args *a) {
  if (a->n->attrs.cumulative.kind != RY_SUM) { t_nonlinear(a); return; }
  a->ct_in[0] = ry_cumulative_(B, L, a->ct[0], RY_SUM, (int)a->n->attrs.cumulative.axis, !a->n->attrs.cumulative.reverse);
}
/* reduce_window sum (JAX's _reduce_window_sum_transpose_rule): the
 * cotangent, dilated by the strides and padded as a convolution's input
 * gradient, summed over windows that move by the base dilation. */
static int64_t dilated(int64_t n, int64_t d) { return n == 0 ? 0 : 1 + d * (n - 1); }
static void t_reduce_window(ryt_tr_args *a) {
  if (a->n->attrs.window.kind != RY_SUM) { t_nonlinear(a); return; }
  const ry_window_dims *w = &a->n->attrs.window.w;
  ry_shape in = OT(a, 0).shape, out = RT(a, 0).shape;
  int r = in.rank;
  ry_axes lo = {r, {0}}, hi = {r, {0}}, interior = {r, {0}};
  ry_window_dims tw = {w->window, w->base_dilation, {r, {0}}, w->window_dilation, {r, {0}}, {r, {0}}};
  for (int i = 0; i < r; i++) {
    int64_t win = dilated(w->window.v[i], w->window_dilation.v[i]);
    lo.v[i] = win - w->pad_low.v[i] - 1;
    hi.v[i] = dilated(in.dims[i], w->base_dilation.v[i]) + win - 1 - dilated(out.dims[i], w->stride.v[i]) - lo.v[i];
    interior.v[i] = w->stride.v[i] - 1;
    tw.base_dilation.v[i] = 1;
  }
  ry_value p = ry_pad_(B, L, a->ct[0], ry_scalar_(B, L, RT(a, 0).dtype, 0), lo, hi, interior);
  a->ct_in[0] = ry_reduce_window_(B, L, p, RY_SUM, &tw);
}
/* select_and_scatter <-> select_and_gather, in the operand that carries the
 * tangent (the second); the selection's operand x stays primal. A base
 * dilation is undone as JAX does: x padded with the identity in the holes,
 * scattered, and the holes sliced away; window dilation is refused, as in
 * JAX. */
static void t_select_and_scatter(ryt_tr_args *a) {
  if (a->lin[0]) { t_nonlinear(a); return; }
  ry_value in[2] = {a->x[0], a->ct[0]};
  ry_attrs at = a->n->attrs;
  a->ct_in[1] = ryb_emit1(B, L, RY_OP_SELECT_AND_GATHER, 2, in, &at, NULL);
}
static void t_select_and_gather(ryt_tr_args *a) {
  if (a->lin[0]) { t_nonlinear(a); return; }
  ry_attrs at = a->n->attrs;
  ry_window_dims *w = &at.window.w;
  ry_shape xs = OT(a, 0).shape;
  int r = xs.rank;
  bool base = false;
  for (int i = 0; i < r; i++) {
    if (w->window_dilation.v[i] != 1) {
      ryb_failf(B, L, RY_ERR_UNSUPPORTED, "select_and_gather",
                "reverse mode through a max/min pooling with window dilation is not supported (nor in JAX)");
      return;
    }
    base |= w->base_dilation.v[i] != 1;
  }
  ry_value x = a->x[0];
  ry_axes zero = {r, {0}}, interior = {r, {0}}, lim = {r, {0}};
  if (base) {
    for (int i = 0; i < r; i++) interior.v[i] = w->base_dilation.v[i] - 1;
    double id = at.window.kind == RY_MAX ? -INFINITY : INFINITY;
    x = ry_pad_(B, L, x, ry_scalar_(B, L, OT(a, 0).dtype, id), zero, zero, interior);
  }
  ry_axes bd = w->base_dilation;
  for (int i = 0; i < r; i++) w->base_dilation.v[i] = 1;
  ry_value in[2] = {x, a->ct[0]};
  ry_value s = ryb_emit1(B, L, RY_OP_SELECT_AND_SCATTER, 2, in, &at, NULL);
  if (base) {
    for (int i = 0; i < r; i++) lim.v[i] = dilated(xs.dims[i], bd.v[i]);
    s = ry_slice_(B, L, s, zero, lim, bd);
  }
  a->ct_in[1] = s;
}
static void t_dynamic_slice(ryt_tr_args *a) {
  int r = OT(a, 0).shape.rank;
  ry_value ops[2 + RY_MAX_RANK];
  ops[0] = ryt_zeros(B, L, OT(a, 0));
  ops[1] = a->ct[0];
  for (int i = 0; i < r; i++) ops[2 + i] = a->x[1 + i];
  a->ct_in[0] = ryb_emit1(B, L, RY_OP_DYNAMIC_UPDATE_SLICE, 2 + r, ops, NULL, NULL);
}
static void t_dus(ryt_tr_args *a) {
  int r = OT(a, 0).shape.rank;
  ry_value ops[2 + RY_MAX_RANK];
  ry_type ut = OT(a, 1);
  if (a->lin[0]) {
    ops[0] = a->ct[0];
    ops[1] = ryt_zeros(B, L, ut);
    for (int i = 0; i < r; i++) ops[2 + i] = a->x[2 + i];
    a->ct_in[0] = ryb_emit1(B, L, RY_OP_DYNAMIC_UPDATE_SLICE, 2 + r, ops, NULL, NULL);
  }
  if (a->lin[1]) {
    ry_attrs at;
    memset(&at, 0, sizeof at);
    at.dynamic_slice.sizes.n = r;
    for (int i = 0; i < r; i++) at.dynamic_slice.sizes.v[i] = ut.shape.dims[i];
    ops[0] = a->ct[0];
    for (int i = 0; i < r; i++) ops[1 + i] = a->x[2 + i];
    a->ct_in[1] = ryb_emit1(B, L, RY_OP_DYNAMIC_SLICE, 1 + r, ops, &at, NULL);
  }
}
/* The largest in-bounds start index of each window, op.dims[d] - sizes[d]
 * for the operand dims d in map, laid out along idx's index vector dim. */
static ry_value index_limits(ryt_tr_args *a, ry_value idx, ry_shape op, const ry_axes *map, const ry_axes *sizes, int64_t ivd) {
  ry_type it = ry_value_type(B, idx);
  int k = map->n;
  ry_array *hi = NULL;
  ry_shape hs = ry_shape_make(1, (int64_t[]){k});
  ry_status s = ry_array_zeros(it.dtype, hs, &hi);
  if (s) {
    ryb_fail(B, s);
    return idx;
  }
  for (int j = 0; j < k; j++) {
    int64_t d = map->v[j];
    ry__store_i64(it.dtype, ry__array_mut(hi), j, op.dims[d] - sizes->v[d]);
  }
  ry_value hv = ry_constant_(B, L, hi);
  ry_array_release(hi);
  if (ivd == it.shape.rank) return ry_broadcast_to_(B, L, ry_reshape_(B, L, hv, ry_shape_make(0, NULL)), it.shape);
  return ry_broadcast_in_dim_(B, L, hv, it.shape, (ry_axes){1, {ivd}});
}
/* gather clamps start indices; make that explicit so the scatter-add that
 * transposes it hits the same windows. */
static ry_value clamp_indices(ryt_tr_args *a, ry_value idx, ry_shape op, const ry_axes *map, const ry_axes *sizes, int64_t ivd) {
  ry_value hb = index_limits(a, idx, op, map, sizes, ivd);
  return ry_clamp_(B, L, ryt_zeros(B, L, ry_value_type(B, idx)), idx, hb);
}
/* ct gathered at the windows of scatter d, zero for the windows the scatter
 * dropped because they do not fit in the operand (JAX's gather with
 * mode=fill): the transpose of the scatter's dependence on its updates. */
static ry_value gather_kept_windows(ryt_tr_args *a, ry_value ct, ry_value idx, const ry_scatter_dims *d, ry_shape op, ry_type ut) {
  ry_gather_dims g = ryt_scatter_as_gather(d, op, ut.shape);
  ry_value got = ry_gather_(B, L, ct, idx, &g);
  ry_type it = ry_value_type(B, idx);
  ry_value hb = index_limits(a, idx, op, &d->scatter_dims_to_operand_dims, &g.slice_sizes, d->index_vector_dim);
  ry_value ok = ry_and_(B, L, CMP_GE(idx, ryt_zeros(B, L, it)), CMP_LE(idx, hb));
  if (d->index_vector_dim < it.shape.rank) {
    ry_attrs at;
    memset(&at, 0, sizeof at);
    at.reduce.kind = RY_AND;
    at.reduce.axes = (ry_axes){1, {d->index_vector_dim}};
    ok = ryb_emit1(B, L, RY_OP_REDUCE, 1, &ok, &at, NULL);
  }
  /* the scatter dims of the updates, in order, are the index dims but ivd */
  ry_axes dims = {0, {0}};
  for (int i = 0; i < ut.shape.rank; i++) {
    bool win = false;
    for (int k = 0; k < d->update_window_dims.n; k++) win |= d->update_window_dims.v[k] == i;
    if (!win) dims.v[dims.n++] = i;
  }
  ok = ry_broadcast_in_dim_(B, L, ok, ut.shape, dims);
  return ry_select_(B, L, ok, got, ryt_zeros(B, L, ut));
}
static void t_gather(ryt_tr_args *a) {
  const ry_gather_dims *d = &a->n->attrs.gather;
  ry_type ot = OT(a, 0);
  ry_value idx = clamp_indices(a, a->x[1], ot.shape, &d->start_index_map, &d->slice_sizes, d->index_vector_dim);
  ry_scatter_dims sd;
  memset(&sd, 0, sizeof sd);
  sd.update_window_dims = d->offset_dims;
  sd.inserted_window_dims = d->collapsed_slice_dims;
  sd.scatter_dims_to_operand_dims = d->start_index_map;
  sd.index_vector_dim = d->index_vector_dim;
  sd.kind = RY_SCATTER_ADD;
  /* a window narrower than the operand: the gather's slice sizes give the
   * update window; collapsed dims must have size 1 */
  a->ct_in[0] = ry_scatter_(B, L, ryt_zeros(B, L, ot), idx, a->ct[0], &sd);
}
static void t_scatter(ryt_tr_args *a) {
  const ry_scatter_dims *d = &a->n->attrs.scatter;
  if (a->lin[1]) { t_nonlinear(a); return; }
  ry_type ot = OT(a, 0), ut = OT(a, 2);
  if (d->kind != RY_SCATTER_ADD && d->kind != RY_SCATTER_REPLACE) { t_unsupported(a); return; }
  if (a->lin[0]) {
    if (d->kind == RY_SCATTER_ADD) {
      a->ct_in[0] = a->ct[0];
    } else {
      ry_scatter_dims r = *d;
      a->ct_in[0] = ry_scatter_(B, L, a->ct[0], a->x[1], ryt_zeros(B, L, ut), &r);
    }
  }
  if (a->lin[2]) {
    a->ct_in[2] = gather_kept_windows(a, a->ct[0], a->x[1], d, ot.shape, ut);
  }
}

/* dot_general: the cotangent of one side is a dot of the cotangent with the
 * other side, transposed back into the side's dimension order. */
static void t_dot(ryt_tr_args *a) {
  if (a->lin[0] && a->lin[1]) { t_nonlinear(a); return; }
  const ry_dot_dims *d = &a->n->attrs.dot;
  int side = a->lin[0] ? 0 : 1; /* the linear operand */
  ry_type lt = OT(a, side), pt = OT(a, 1 - side);
  const ry_axes *my_batch = side == 0 ? &d->lhs_batch : &d->rhs_batch, *my_con = side == 0 ? &d->lhs_contract : &d->rhs_contract;
  const ry_axes *ot_batch = side == 0 ? &d->rhs_batch : &d->lhs_batch, *ot_con = side == 0 ? &d->rhs_contract : &d->lhs_contract;
  int nb = my_batch->n;
  /* free dims of each side, in order */
  ry_axes my_free = {0, {0}}, ot_free = {0, {0}};
  for (int i = 0; i < lt.shape.rank; i++) {
    bool used = false;
    for (int k = 0; k < my_batch->n; k++) used |= my_batch->v[k] == i;
    for (int k = 0; k < my_con->n; k++) used |= my_con->v[k] == i;
    if (!used) my_free.v[my_free.n++] = i;
  }
  for (int i = 0; i < pt.shape.rank; i++) {
    bool used = false;
    for (int k = 0; k < ot_batch->n; k++) used |= ot_batch->v[k] == i;
    for (int k = 0; k < ot_con->n; k++) used |= ot_con->v[k] == i;
    if (!used) ot_free.v[ot_free.n++] = i;
  }
  /* positions in ct: [batch, lhs_free, rhs_free] */
  int ct_my_free0 = side == 0 ? nb : nb + ot_free.n, ct_ot_free0 = side == 0 ? nb + my_free.n : nb;
  ry_dot_dims nd;
  memset(&nd, 0, sizeof nd);
  nd.lhs_batch.n = nd.rhs_batch.n = nb;
  for (int i = 0; i < nb; i++) {
    nd.lhs_batch.v[i] = i;
    nd.rhs_batch.v[i] = ot_batch->v[i];
  }
  nd.lhs_contract.n = nd.rhs_contract.n = ot_free.n;
  for (int i = 0; i < ot_free.n; i++) {
    nd.lhs_contract.v[i] = ct_ot_free0 + i;
    nd.rhs_contract.v[i] = ot_free.v[i];
  }
  ry_dtype cdt = RT(a, 0).dtype;
  ry_value other = ry_convert_(B, L, a->x[1 - side], cdt);
  ry_value r = ry_dot_general_(B, L, a->ct[0], other, nd, cdt);
  /* r dims: [batch (nb), ct's my_free (in order), other's contract dims in increasing index order] */
  (void)ct_my_free0;
  ry_axes perm = {lt.shape.rank, {0}};
  for (int i = 0; i < nb; i++) perm.v[my_batch->v[i]] = i;
  for (int i = 0; i < my_free.n; i++) perm.v[my_free.v[i]] = nb + i;
  for (int k = 0; k < my_con->n; k++) {
    int rank = 0;
    for (int j = 0; j < ot_con->n; j++) rank += ot_con->v[j] < ot_con->v[k];
    perm.v[my_con->v[k]] = nb + my_free.n + rank;
  }
  bool ident = true;
  for (int i = 0; i < perm.n; i++) ident &= perm.v[i] == i;
  if (!ident) r = ry_transpose_(B, L, r, perm);
  a->ct_in[side] = ry_convert_(B, L, r, lt.dtype);
}

/* ---- convolution (JAX's _conv_general_dilated_transpose_lhs/rhs) ---- */

static int64_t dilate(int64_t d, int64_t k) { return d == 0 ? 0 : 1 + k * (d - 1); }
static ry_axes swap01(ry_axes a) {
  int64_t t = a.v[0];
  a.v[0] = a.v[1];
  a.v[1] = t;
  return a;
}
/* split axis src of x into (size1, n / size1) */
static ry_value axis_out_of(ryt_tr_args *a, int src, int64_t size1, ry_value x) {
  ry_shape s = ry_value_shape(B, x), o;
  memset(&o, 0, sizeof o);
  for (int i = 0; i < s.rank; i++) {
    if (i == src) {
      o.dims[o.rank++] = size1;
      o.dims[o.rank++] = s.dims[i] / size1;
    } else {
      o.dims[o.rank++] = s.dims[i];
    }
  }
  return ry_reshape_(B, L, x, o);
}
/* merge axis src into axis dst (dst counted with src removed), src major */
static ry_value axis_into(ryt_tr_args *a, int src, int dst, ry_value x) {
  ry_shape s = ry_value_shape(B, x);
  ry_axes perm = {0, {0}};
  for (int i = 0; i < s.rank; i++)
    if (i != src) perm.v[perm.n++] = i;
  for (int i = perm.n; i > dst; i--) perm.v[i] = perm.v[i - 1];
  perm.v[dst] = src;
  perm.n = s.rank;
  ry_value t = ry_transpose_(B, L, x, perm);
  ry_shape ts = ry_value_shape(B, t), o;
  memset(&o, 0, sizeof o);
  for (int i = 0; i < ts.rank; i++) {
    if (i == dst) {
      o.dims[o.rank++] = ts.dims[i] * ts.dims[i + 1];
      i++;
    } else {
      o.dims[o.rank++] = ts.dims[i];
    }
  }
  return ry_reshape_(B, L, t, o);
}

static void t_conv(ryt_tr_args *a) {
  if (a->lin[0] && a->lin[1]) {
    t_nonlinear(a);
    return;
  }
  const ry_conv_dims *d = &a->n->attrs.conv;
  ry_type lt = OT(a, 0), kt = OT(a, 1), gt = RT(a, 0);
  int ns = lt.shape.rank - 2;
  ry_dtype cdt = gt.dtype;
  ry_value g = a->ct[0];
  if (a->lin[0]) { /* d lhs */
    ry_value w = ry_convert_(B, L, a->x[1], cdt);
    int64_t fg = d->feature_groups, bg = d->batch_groups;
    if (fg > 1) {
      w = axis_out_of(a, (int)d->kernel_dims.v[0], fg, w);
      w = axis_into(a, (int)d->kernel_dims.v[0], (int)d->kernel_dims.v[1], w);
    } else if (bg > 1) {
      w = axis_out_of(a, (int)d->kernel_dims.v[0], bg, w);
      w = axis_into(a, (int)d->kernel_dims.v[0], (int)d->kernel_dims.v[1], w);
      fg = bg;
    }
    ry_conv_dims t;
    memset(&t, 0, sizeof t);
    t.input_dims = d->output_dims;
    t.kernel_dims = swap01(d->kernel_dims);
    t.output_dims = d->input_dims;
    t.stride = d->lhs_dilation;
    t.lhs_dilation = d->stride;
    t.rhs_dilation = d->rhs_dilation;
    t.feature_groups = fg;
    t.batch_groups = 1;
    t.pad_low.n = t.pad_high.n = ns;
    ry_axes sp = {ns, {0}};
    for (int i = 0; i < ns; i++) {
      int64_t in = lt.shape.dims[d->input_dims.v[2 + i]], k = kt.shape.dims[d->kernel_dims.v[2 + i]];
      int64_t out = gt.shape.dims[d->output_dims.v[2 + i]];
      int64_t ld = dilate(in, d->lhs_dilation.v[i]), rd = dilate(k, d->rhs_dilation.v[i]), od = dilate(out, d->stride.v[i]);
      t.pad_low.v[i] = rd - d->pad_low.v[i] - 1;
      t.pad_high.v[i] = ld + rd - 1 - od - t.pad_low.v[i];
      sp.v[i] = d->kernel_dims.v[2 + i];
    }
    ry_value rw = ry_reverse_(B, L, w, sp);
    ry_value out = ry_convolution_(B, L, g, rw, &t);
    if (d->batch_groups > 1) {
      out = axis_out_of(a, (int)d->input_dims.v[1], d->batch_groups, out);
      out = axis_into(a, (int)d->input_dims.v[1], (int)d->input_dims.v[0], out);
    }
    a->ct_in[0] = ry_convert_(B, L, out, lt.dtype);
  } else { /* d rhs */
    if (ry_shape_numel(gt.shape) == 0) {
      a->ct_in[1] = ryt_zeros(B, L, kt);
      return;
    }
    ry_value x = ry_convert_(B, L, a->x[0], cdt);
    ry_conv_dims t;
    memset(&t, 0, sizeof t);
    t.input_dims = swap01(d->input_dims);
    t.kernel_dims = swap01(d->output_dims);
    t.output_dims = swap01(d->kernel_dims);
    t.stride = d->rhs_dilation;
    t.lhs_dilation = d->lhs_dilation;
    t.rhs_dilation = d->stride;
    t.feature_groups = d->batch_groups > 1 ? d->batch_groups : 1;
    t.batch_groups = d->feature_groups > 1 ? d->feature_groups : 1;
    t.pad_low.n = t.pad_high.n = ns;
    for (int i = 0; i < ns; i++) {
      int64_t in = lt.shape.dims[d->input_dims.v[2 + i]], k = kt.shape.dims[d->kernel_dims.v[2 + i]];
      int64_t out = gt.shape.dims[d->output_dims.v[2 + i]];
      int64_t ld = dilate(in, d->lhs_dilation.v[i]), rd = dilate(k, d->rhs_dilation.v[i]), od = dilate(out, d->stride.v[i]);
      t.pad_low.v[i] = d->pad_low.v[i];
      t.pad_high.v[i] = (od - ld) + (rd - d->pad_low.v[i] - 1);
    }
    ry_value out = ry_convolution_(B, L, x, g, &t);
    a->ct_in[1] = ry_convert_(B, L, out, kt.dtype);
  }
}

/* As in JAX: psum transposes to psum, all_gather to a summing
 * reduce_scatter (psum_scatter) and back; a sharding annotation to the same
 * annotation on the cotangent. */
static void t_collective(ryt_tr_args *a) {
  ry_op op = a->n->op;
  ry_attrs at = a->n->attrs;
  if (op != RY_OP_SHARDING && op != RY_OP_ALL_GATHER && at.collective.kind != RY_SUM) { t_nonlinear(a); return; }
  if (op == RY_OP_ALL_GATHER) op = RY_OP_REDUCE_SCATTER;
  else if (op == RY_OP_REDUCE_SCATTER) op = RY_OP_ALL_GATHER;
  if (op != RY_OP_SHARDING) at.collective.kind = RY_SUM;
  a->ct_in[0] = ryb_emit1(B, L, op, 1, &a->ct[0], &at, NULL);
}

/* collective_broadcast: the group's cotangents summed on the source member,
 * zero on the others (JAX's pbroadcast is psum of the source-masked value,
 * and transposes so). A device learns its position in the group without an
 * op of its own: a summing reduce_scatter of iota(g) gives member j the
 * value g*j (on one device, simulating the group's first member: 0). */
static void t_collective_broadcast(ryt_tr_args *a) {
  ry_attrs at = a->n->attrs;
  int64_t g = ry__group_size(&at.collective.mesh, &at.collective.axes);
  ry_type ct = RT(a, 0);
  at.collective.kind = RY_SUM;
  at.collective.dim = 0;
  ry_value sum = ryb_emit1(B, L, RY_OP_ALL_REDUCE, 1, &a->ct[0], &at, NULL);
  ry_value iota = ry_iota_(B, L, RY_I32, ry_shape_make(1, (int64_t[]){g}), 0);
  ry_value pos = ry_reshape_(B, L, ryb_emit1(B, L, RY_OP_REDUCE_SCATTER, 1, &iota, &at, NULL), ry_shape_make(0, NULL));
  ry_value is_src = ry_compare_(B, L, pos, ry_scalar_(B, L, RY_I32, (double)(g * at.collective.source)), RY_EQ);
  a->ct_in[0] = ry_select_(B, L, ry_broadcast_to_(B, L, is_src, ct.shape), sum, ryt_zeros(B, L, ct));
}

/* The gather that reads back the windows a scatter writes. */
ry_gather_dims ryt_scatter_as_gather(const ry_scatter_dims *d, ry_shape operand, ry_shape updates) {
  ry_gather_dims g;
  memset(&g, 0, sizeof g);
  g.offset_dims = d->update_window_dims;
  g.collapsed_slice_dims = d->inserted_window_dims;
  g.start_index_map = d->scatter_dims_to_operand_dims;
  g.index_vector_dim = d->index_vector_dim;
  g.slice_sizes.n = operand.rank;
  int w = 0;
  for (int i = 0; i < operand.rank; i++) {
    bool ins = false;
    for (int k = 0; k < d->inserted_window_dims.n; k++) ins |= d->inserted_window_dims.v[k] == i;
    g.slice_sizes.v[i] = ins ? 1 : updates.dims[d->update_window_dims.v[w++]];
  }
  return g;
}

const ry_transpose_rule ryt_transpose_rules[RY_OP_COUNT] = {
    [RY_OP_ADD] = t_add, [RY_OP_SUB] = t_sub, [RY_OP_NEG] = t_neg, [RY_OP_MUL] = t_mul, [RY_OP_DIV] = t_div,
    [RY_OP_CONVERT] = t_convert, [RY_OP_SELECT] = t_select, [RY_OP_BROADCAST] = t_broadcast, [RY_OP_RESHAPE] = t_reshape,
    [RY_OP_TRANSPOSE] = t_transpose, [RY_OP_SLICE] = t_slice, [RY_OP_PAD] = t_pad, [RY_OP_CONCATENATE] = t_concatenate,
    [RY_OP_REDUCE] = t_reduce, [RY_OP_CUMULATIVE] = t_cumulative, [RY_OP_DYNAMIC_SLICE] = t_dynamic_slice,
    [RY_OP_REDUCE_WINDOW] = t_reduce_window, [RY_OP_SELECT_AND_SCATTER] = t_select_and_scatter,
    [RY_OP_SELECT_AND_GATHER] = t_select_and_gather,
    [RY_OP_DYNAMIC_UPDATE_SLICE] = t_dus, [RY_OP_GATHER] = t_gather, [RY_OP_SCATTER] = t_scatter, [RY_OP_REVERSE] = t_reverse,
    [RY_OP_DOT_GENERAL] = t_dot, [RY_OP_CONVOLUTION] = t_conv, [RY_OP_ALL_REDUCE] = t_collective,
    [RY_OP_ALL_GATHER] = t_collective, [RY_OP_REDUCE_SCATTER] = t_collective, [RY_OP_SHARDING] = t_collective,
    [RY_OP_COLLECTIVE_BROADCAST] = t_collective_broadcast,
};

ry_transpose_rule ryt_transpose_rule(ry_op op) { return ryt_transpose_rules[op] ? ryt_transpose_rules[op] : t_unsupported; }
