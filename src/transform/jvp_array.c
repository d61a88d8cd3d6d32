/* Forward-mode rules of the array ops that need more than one line:
 * reduce, cumulative (JAX's associative scan for max/min, so ties split as
 * JAX's do), sort and the windowed reductions. The rest of the JVP rules and the driver are in jvp.c. */
#include "jvp_shorthand.h"


/* reduce: sum is linear; max/min route the tangent to the extremes (ties
 * averaged); prod weights each tangent by the product of the other elements,
 * built from exclusive running products (no division, so zeros are fine). */
/* x shifted by d along axis (towards higher indices, or lower when rev),
 * the vacated places filled with `fill`. */
static ry_value shift_along(ryt_jvp_args *a, ry_value x, int axis, int64_t d, bool rev, double fill) {
  ry_shape s = T(B, x).shape;
  int r = s.rank;
  ry_axes lo = {r, {0}}, hi = {r, {0}}, in = {r, {0}}, st = {r, {0}}, lim = {r, {0}}, one = {r, {0}};
  for (int i = 0; i < r; i++) lim.v[i] = s.dims[i], one.v[i] = 1;
  if (rev) hi.v[axis] = d, st.v[axis] = d, lim.v[axis] = s.dims[axis] + d;
  else lo.v[axis] = d;
  ry_value p = ry_pad_(B, L, x, ry_scalar_(B, L, T(B, x).dtype, fill), lo, hi, in);
  return ry_slice_(B, L, p, st, lim, one);
}

/* The tangent of the inclusive running product of x along axis for the
 * tangent t, with no division by x: the pair (running product, tangent) is
 * carried through the product rule over log2(n) doubling levels of shifted
 * products (Hillis-Steele). */
static ry_value cumprod_tangent(ryt_jvp_args *a, ry_value x, ry_value t, int axis, bool rev) {
  int64_t n = T(B, x).shape.dims[axis];
  ry_value y = x;
  for (int64_t d = 1; d < n; d *= 2) {
    ry_value ys = shift_along(a, y, axis, d, rev, 1.0);
    t = ry_add_(B, L, ry_mul_(B, L, shift_along(a, t, axis, d, rev, 0.0), y), ry_mul_(B, L, ys, t));
    y = ry_mul_(B, L, ys, y);
  }
  return t;
}

/* For each element, the product of the other elements of its reduced set:
 * the reduced axes are moved last and flattened, then exclusive running
 * products from both ends (sequential cumulative products, so a zero keeps
 * the products after it 0 even when the ones before overflow) are
 * multiplied. At least one axis is reduced (j_reduce handles none). */
static ry_value prod_of_others(ryt_jvp_args *a, ry_value x, const ry_axes *axes) {
  ry_shape s = T(B, x).shape;
  int r = s.rank;
  bool red[RY_MAX_RANK] = {false};
  for (int k = 0; k < axes->n; k++) red[axes->v[k]] = true;
  ry_axes perm = {r, {0}}, inv = {r, {0}};
  ry_shape flat = {0, {0}};
  int q = 0;
  int64_t rn = 1;
  for (int i = 0; i < r; i++)
    if (!red[i]) perm.v[q++] = i, flat.dims[flat.rank++] = s.dims[i];
  for (int i = 0; i < r; i++)
    if (red[i]) perm.v[q++] = i, rn *= s.dims[i];
  flat.dims[flat.rank++] = rn;
  for (int i = 0; i < r; i++) inv.v[perm.v[i]] = i;
  ry_value xt = ry_reshape_(B, L, ry_transpose_(B, L, x, perm), flat);
  int ax = flat.rank - 1;
  ry_value left = shift_along(a, ry_cumulative_(B, L, xt, RY_PROD, ax, 0), ax, 1, false, 1.0);
  ry_value right = shift_along(a, ry_cumulative_(B, L, xt, RY_PROD, ax, 1), ax, 1, true, 1.0);
  ry_shape moved = {r, {0}};
  for (int i = 0; i < r; i++) moved.dims[i] = s.dims[perm.v[i]];
  return ry_transpose_(B, L, ry_reshape_(B, L, ry_mul_(B, L, left, right), moved), inv);
}

static ry_value bcast_back(ryt_jvp_args *a, ry_value r, ry_type in, const ry_axes *axes) {
  ry_axes dims = {0, {0}};
  for (int i = 0; i < in.shape.rank; i++) {
    bool red = false;
    for (int k = 0; k < axes->n; k++) red |= axes->v[k] == i;
    if (!red) dims.v[dims.n++] = i;
  }
  return ry_broadcast_in_dim_(B, L, r, in.shape, dims);
}
void ryt_jvp_reduce(ryt_jvp_args *a) {
  if (Z(TX(0))) return;
  const ry_axes *axes = &a->n->attrs.reduce.axes;
  ry_type in = T(B, X(0));
  ry_attrs at;
  memset(&at, 0, sizeof at);
  at.reduce.kind = RY_SUM;
  at.reduce.axes = *axes;
  switch (a->n->attrs.reduce.kind) {
  case RY_SUM: a->ty[0] = ryb_emit1(B, L, RY_OP_REDUCE, 1, &a->tx[0], &at, NULL); break;
  case RY_PROD: {
    if (axes->n == 0) { /* nothing reduced: the identity */
      a->ty[0] = ryb_emit1(B, L, RY_OP_REDUCE, 1, &a->tx[0], &at, NULL);
      break;
    }
    ry_value p = ry_mul_(B, L, TX(0), prod_of_others(a, X(0), axes));
    a->ty[0] = ryb_emit1(B, L, RY_OP_REDUCE, 1, &p, &at, NULL);
    break;
  }
  case RY_MAX:
  case RY_MIN: {
    ry_value mask = ry_convert_(B, L, CMP_EQ(X(0), bcast_back(a, Y(0), in, axes)), in.dtype);
    ry_value cnt = ryb_emit1(B, L, RY_OP_REDUCE, 1, &mask, &at, NULL);
    ry_attrs at2 = at;
    ry_value p = ry_mul_(B, L, TX(0), mask);
    ry_value s = ryb_emit1(B, L, RY_OP_REDUCE, 1, &p, &at2, NULL);
    a->ty[0] = ry_div_(B, L, s, cnt);
    break;
  }
  default: break; /* and/or: not differentiable */
  }
}

/* ---- running max / min: JAX's associative scan ----
 * JAX differentiates cummax / cummin through lax.associative_scan of the
 * pairwise max (each tie of a pair splits its tangent in halves), so which
 * elements share a tie's tangent depends on that scan's tree. These helpers
 * emit the same tree: pairs (value, tangent) combined over strided slices. */
static ry_value slice_dim(ryt_jvp_args *a, ry_value x, int axis, int64_t start, int64_t limit, int64_t stride) {
  ry_shape s = T(B, x).shape;
  ry_axes st = {s.rank, {0}}, li = {s.rank, {0}}, sd = {s.rank, {0}};
  for (int i = 0; i < s.rank; i++) li.v[i] = s.dims[i], sd.v[i] = 1;
  st.v[axis] = start, li.v[axis] = limit < start ? start : limit, sd.v[axis] = stride;
  return ry_slice_(B, L, x, st, li, sd);
}
/* JAX's _balanced_eq: 1 where x alone is the result z, 1/2 where y ties. */
ry_value ryt_balanced_eq(ryt_jvp_args *a, ry_value x, ry_value z, ry_value y) {
  ry_shape s = T(B, x).shape;
  ry_value one = ry_broadcast_to_(B, L, C(x, 1), s), half = ry_broadcast_to_(B, L, C(x, 0.5), s);
  return ry_select_(B, L, CMP_EQ(x, z), ry_select_(B, L, CMP_EQ(y, z), half, one), ry_broadcast_to_(B, L, C(x, 0), s));
}
static void combine_ext(ryt_jvp_args *a, ry_value x, ry_value tx, ry_value y, ry_value ty, bool max, ry_value *z, ry_value *tz) {
  *z = max ? ry_max_(B, L, x, y) : ry_min_(B, L, x, y);
  *tz = ry_add_(B, L, ry_mul_(B, L, tx, ryt_balanced_eq(a, x, *z, y)), ry_mul_(B, L, ty, ryt_balanced_eq(a, y, *z, x)));
}
/* JAX's _interleave: x at even places, y at odd ones (|x| = |y| or |y| + 1). */
static ry_value interleave(ryt_jvp_args *a, ry_value x, ry_value y, int axis) {
  ry_shape s = T(B, x).shape;
  bool same = s.dims[axis] == T(B, y).shape.dims[axis];
  ry_axes lo = {s.rank, {0}}, hi = {s.rank, {0}}, in = {s.rank, {0}};
  ry_value zero = ry_scalar_(B, L, T(B, x).dtype, 0);
  in.v[axis] = 1, hi.v[axis] = same ? 1 : 0;
  ry_value xp = ry_pad_(B, L, x, zero, lo, hi, in);
  lo.v[axis] = 1, hi.v[axis] = same ? 0 : 1;
  return ry_add_(B, L, xp, ry_pad_(B, L, y, zero, lo, hi, in));
}
static void extremal_scan(ryt_jvp_args *a, ry_value *y, ry_value *t, int axis, bool max) {
  int64_t n = T(B, *y).shape.dims[axis];
  if (n < 2 || !ryb_ok(B)) return;
  ry_value ry, rt;
  combine_ext(a, slice_dim(a, *y, axis, 0, n - 1, 2), slice_dim(a, *t, axis, 0, n - 1, 2), slice_dim(a, *y, axis, 1, n, 2),
              slice_dim(a, *t, axis, 1, n, 2), max, &ry, &rt);
  extremal_scan(a, &ry, &rt, axis, max);
  int64_t m = T(B, ry).shape.dims[axis];
  ry_value oy = ry, ot = rt, ey, et;
  if (n % 2 == 0) oy = slice_dim(a, ry, axis, 0, m - 1, 1), ot = slice_dim(a, rt, axis, 0, m - 1, 1);
  combine_ext(a, oy, ot, slice_dim(a, *y, axis, 2, n, 2), slice_dim(a, *t, axis, 2, n, 2), max, &ey, &et);
  ry_value cy[2] = {slice_dim(a, *y, axis, 0, 1, 1), ey}, ct[2] = {slice_dim(a, *t, axis, 0, 1, 1), et};
  ey = ry_concatenate_(B, L, 2, cy, axis);
  et = ry_concatenate_(B, L, 2, ct, axis);
  *y = interleave(a, ey, ry, axis);
  *t = interleave(a, et, rt, axis);
}
void ryt_jvp_cumulative(ryt_jvp_args *a) {
  if (Z(TX(0))) return;
  int64_t axis = a->n->attrs.cumulative.axis;
  bool rev = a->n->attrs.cumulative.reverse;
  switch (a->n->attrs.cumulative.kind) {
  case RY_SUM: a->ty[0] = ry_cumulative_(B, L, TX(0), RY_SUM, (int)axis, rev); break;
  case RY_PROD: a->ty[0] = cumprod_tangent(a, X(0), TX(0), (int)axis, rev); break;
  case RY_MAX:
  case RY_MIN: {
    ry_value y = X(0), t = TX(0);
    if (rev) y = ry_reverse_(B, L, y, (ry_axes){1, {axis}}), t = ry_reverse_(B, L, t, (ry_axes){1, {axis}});
    extremal_scan(a, &y, &t, (int)axis, a->n->attrs.cumulative.kind == RY_MAX);
    a->ty[0] = rev ? ry_reverse_(B, L, t, (ry_axes){1, {axis}}) : t;
    break;
  }
  default: break;
  }
}
void ryt_jvp_sort(ryt_jvp_args *a) {
  int n = a->n->n_operands;
  bool any = false;
  for (int i = 0; i < n; i++) any |= !Z(TX(i)) && ry_dtype_is_float(T(B, X(i)).dtype);
  if (!any) return;
  if (n + 1 > 64) { ryb_failf(B, L, RY_ERR_UNSUPPORTED, "sort", "too many operands"); return; }
  if (ry_shape_numel(T(B, X(0)).shape) == 0) { /* nothing moves: the tangents are as empty as the primals */
    for (int i = 0; i < n; i++)
      if (ry_dtype_is_float(T(B, X(i)).dtype)) a->ty[i] = TX(i);
    return;
  }
  /* sort once more with an iota operand to learn the permutation */
  ry_value in[65], out[65];
  ry_type t0 = T(B, X(0));
  int64_t dim = a->n->attrs.sort.dim;
  for (int i = 0; i < n; i++) in[i] = X(i);
  in[n] = ry_iota_(B, L, RY_I32, t0.shape, (int)dim);
  if (ry_sort_(B, L, n + 1, in, (int)dim, (int)a->n->attrs.sort.num_keys, a->n->attrs.sort.descending, a->n->attrs.sort.stable,
               out) != n + 1)
    return;
  for (int i = 0; i < n; i++)
    if (!Z(TX(i)) && ry_dtype_is_float(T(B, X(i)).dtype)) a->ty[i] = ry_take_along_axis_(B, L, TX(i), out[n], (int)dim);
}

/* ---- windowed reductions (JAX's rules) ----
 * reduce_window sum is linear; max/min take the tangent at each window's
 * selected element (select_and_gather, whose transpose is
 * select_and_scatter: max pooling's gradient); select_and_scatter and
 * select_and_gather are linear in their second operand, the selection
 * being piecewise constant in x. */
void ryt_jvp_window(ryt_jvp_args *a) {
  ry_op op = a->n->op;
  ry_attrs at = a->n->attrs;
  if (op == RY_OP_REDUCE_WINDOW) {
    if (Z(TX(0))) return;
    switch (at.window.kind) {
    case RY_SUM: a->ty[0] = ryb_emit1(B, L, RY_OP_REDUCE_WINDOW, 1, &a->tx[0], &at, NULL); break;
    case RY_MAX:
    case RY_MIN: {
      ry_value in[2] = {X(0), TX(0)};
      a->ty[0] = ryb_emit1(B, L, RY_OP_SELECT_AND_GATHER, 2, in, &at, NULL);
      break;
    }
    case RY_PROD:
      ryb_failf(B, L, RY_ERR_UNSUPPORTED, "reduce_window", "differentiation of a product window is not supported (nor in JAX)");
      break;
    default: break; /* and/or: integers, no tangent */
    }
    return;
  }
  if (Z(TX(1))) return;
  ry_value in[2] = {X(0), TX(1)};
  a->ty[0] = ryb_emit1(B, L, op, 2, in, &at, NULL);
}
