/* StableHLO's windowed ops onto ryft's: reduce_window (a cumulative
 * reduction when its window spans one whole axis, as jnp.cumsum lowers;
 * otherwise ryft's reduce_window, max/avg pooling), a reduce_window over
 * (x, t) pairs that keeps the pair of the selected x (select_and_gather, as
 * ryft writes it), and select_and_scatter with a GE/LE select and an add
 * scatter (max/min pooling's gradient). */
#include "shlo_internal.h"

typedef shlo_x X;

/* The window attributes; every list filled to the operand's rank. */
static bool read_window(X *x, int rank, ry_window_dims *w) {
  memset(w, 0, sizeof *w);
  int64_t pad[2 * RY_MAX_RANK] = {0};
  int np = 0;
  const shlo_span *s;
  if (!shlo_need_axes(x, "window_dimensions", NULL, &w->window)) return false;
  bool ok = true;
  if ((s = shlo_attr(x, "window_strides", NULL))) ok &= shlo_axes(*s, &w->stride);
  if ((s = shlo_attr(x, "base_dilations", NULL))) ok &= shlo_axes(*s, &w->base_dilation);
  if ((s = shlo_attr(x, "window_dilations", NULL))) ok &= shlo_axes(*s, &w->window_dilation);
  if ((s = shlo_attr(x, "padding", NULL))) ok &= shlo_ints(*s, pad, 2 * RY_MAX_RANK, &np);
  if (np == 1) {
    for (int i = 1; i < 2 * rank; i++) pad[i] = pad[0];
    np = 2 * rank;
  }
  ry_axes *l[3] = {&w->stride, &w->base_dilation, &w->window_dilation};
  for (int k = 0; k < 3; k++)
    if (ok && l[k]->n == 0) {
      l[k]->n = rank;
      for (int i = 0; i < rank; i++) l[k]->v[i] = 1;
    }
  if (!ok || w->window.n != rank || w->stride.n != rank || w->base_dilation.n != rank || w->window_dilation.n != rank ||
      (np != 0 && np != 2 * rank))
    return shlo_xfail(x, RY_ERR_PARSE, "malformed window attributes (each needs %d entries, padding %d pairs)", rank, rank);
  w->pad_low.n = w->pad_high.n = rank;
  for (int i = 0; i < rank; i++) w->pad_low.v[i] = pad[2 * i], w->pad_high.v[i] = pad[2 * i + 1];
  return true;
}

/* A window spanning one whole axis, padded by its length - 1 on one side,
 * unit strides and dilations elsewhere: that axis (reversed when padded
 * high), else -1. */
static int cumulative_axis(const ry_window_dims *w, ry_shape s, bool *reverse) {
  int axis = -1;
  for (int d = 0; d < s.rank; d++) {
    int64_t lo = w->pad_low.v[d], hi = w->pad_high.v[d];
    if (w->stride.v[d] != 1 || w->base_dilation.v[d] != 1 || w->window_dilation.v[d] != 1) return -1;
    if (w->window.v[d] == 1 && lo == 0 && hi == 0) continue;
    if (axis >= 0 || w->window.v[d] != s.dims[d] || s.dims[d] < 2) return -1;
    if (!((lo == s.dims[d] - 1 && hi == 0) || (lo == 0 && hi == s.dims[d] - 1))) return -1;
    axis = d;
    *reverse = lo == 0;
  }
  return axis;
}

/* The comparison direction of compare op o: +1 when it means a >= b (or
 * a > b when strict is allowed) for arguments a, b of region r, -1 for
 * a <= b, 0 otherwise. */
static int select_dir(const shlo_region *r, const shlo_op *o, int a, int b) {
  if (!o || !shlo_span_is(o->name, "stablehlo.compare") || o->n_opd != 2) return 0;
  int c0 = shlo_arg_index(r, r->arg_name, r->n_arg, o->opd[0]), c1 = shlo_arg_index(r, r->arg_name, r->n_arg, o->opd[1]);
  shlo_span w = o->n_word ? o->word[0] : (shlo_span){0};
  const shlo_span *cd = shlo_kv_get(o, "comparison_direction");
  if (cd) w = shlo_enum_word(*cd);
  int dir = shlo_span_is(w, "GE") ? 1 : shlo_span_is(w, "LE") ? -1 : 0;
  if (c0 == a && c1 == b) return dir;
  if (c0 == b && c1 == a) return -dir;
  return 0;
}

/* (x, t, x_init, t_init) -> (max or min of x, t at the selected x): a body
 * (ax, at, bx, bt) -> (select(p, ax, bx), select(p, at, bt)) with p a
 * GE (max) or LE (min) comparison of ax and bx. */
static bool select_and_gather(X *x, const ry_window_dims *w) {
  const shlo_region *r = x->op->n_reg ? x->op->reg[0] : NULL;
  const shlo_op *ret = r ? shlo_region_ret(r) : NULL;
  int dir = 0;
  if (r && r->n_arg == 4 && ret && ret->n_opd == 2) {
    const shlo_op *s0 = shlo_def_in(r, ret->opd[0]), *s1 = shlo_def_in(r, ret->opd[1]);
    if (s0 && s1 && shlo_span_is(s0->name, "stablehlo.select") && shlo_span_is(s1->name, "stablehlo.select") && s0->n_opd == 3 &&
        s1->n_opd == 3 && s0->opd[0].n == s1->opd[0].n && memcmp(s0->opd[0].p, s1->opd[0].p, (size_t)s0->opd[0].n) == 0 &&
        shlo_arg_index(r, r->arg_name, 4, s0->opd[1]) == 0 && shlo_arg_index(r, r->arg_name, 4, s0->opd[2]) == 2 &&
        shlo_arg_index(r, r->arg_name, 4, s1->opd[1]) == 1 && shlo_arg_index(r, r->arg_name, 4, s1->opd[2]) == 3)
      dir = select_dir(r, shlo_def_in(r, s0->opd[0]), 0, 2);
  }
  ry_reduce_kind kind = dir > 0 ? RY_MAX : RY_MIN;
  if (!dir || !shlo_is_identity(shlo_const_of(x->b, x->in[2]), kind) || !shlo_is_identity(shlo_const_of(x->b, x->in[3]), RY_SUM))
    return shlo_xfail(x, RY_ERR_UNSUPPORTED,
                      "a reduce_window of 2 operands that does not select the pair of the max/min (from the identity and 0)");
  ry_value out[2];
  out[0] = ry_reduce_window_(x->b, x->loc, x->in[0], kind, w);
  out[1] = ry_select_and_gather_(x->b, x->loc, x->in[0], x->in[1], kind, w);
  return shlo_finish(x, 2, out);
}

bool shlo_c_reduce_window(X *x) {
  if (x->n_in != 2 && x->n_in != 4) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a reduce_window of %d operands", x->n_in / 2);
  ry_type t = ry_value_type(x->b, x->in[0]);
  ry_window_dims w;
  if (!read_window(x, t.shape.rank, &w)) return false;
  if (x->n_in == 4) return select_and_gather(x, &w);
  const shlo_region *r = x->op->n_reg ? x->op->reg[0] : NULL;
  shlo_span opname;
  ry_reduce_kind kind;
  if (!r || !shlo_body_kind(r, 0, 1, &opname) || !shlo_kind_of(opname, t.dtype, &kind))
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a reduce_window body that is not one binary op");
  bool reverse = false;
  int axis = cumulative_axis(&w, t.shape, &reverse);
  if (axis >= 0 && kind != RY_AND && kind != RY_OR && t.dtype != RY_BOOL)
    return shlo_finish1(x, shlo_with_init(x, ry_cumulative_(x->b, x->loc, x->in[0], kind, axis, reverse), x->in[1], kind));
  ry_value in = x->in[0];
  bool holes = false;
  for (int d = 0; d < t.shape.rank; d++) holes |= w.pad_low.v[d] || w.pad_high.v[d] || w.base_dilation.v[d] != 1;
  if (holes && (kind == RY_SUM || kind == RY_PROD) && !shlo_is_identity(shlo_const_of(x->b, x->in[1]), kind)) {
    /* padding and holes hold the init value, which a sum or product counts
     * once per place: pad explicitly, then reduce the windows of that */
    ry_axes interior = {t.shape.rank, {0}};
    for (int d = 0; d < t.shape.rank; d++) interior.v[d] = w.base_dilation.v[d] - 1, w.base_dilation.v[d] = 1;
    in = ry_pad_(x->b, x->loc, in, x->in[1], w.pad_low, w.pad_high, interior);
    for (int d = 0; d < t.shape.rank; d++) w.pad_low.v[d] = w.pad_high.v[d] = 0;
  }
  ry_value v = ry_reduce_window_(x->b, x->loc, in, kind, &w);
  return shlo_finish1(x, shlo_with_init(x, v, x->in[1], kind));
}

bool shlo_c_select_and_scatter(X *x) {
  if (x->n_in != 3 || x->op->n_reg != 2) return shlo_xfail(x, RY_ERR_PARSE, "expects operand, source, init and two regions");
  ry_type t = ry_value_type(x->b, x->in[0]);
  ry_window_dims w;
  if (!read_window(x, t.shape.rank, &w)) return false;
  const shlo_region *sel = x->op->reg[0], *sc = x->op->reg[1];
  const shlo_op *ret = shlo_region_ret(sel);
  int dir = sel->n_arg == 2 && ret && ret->n_opd == 1 ? select_dir(sel, shlo_def_in(sel, ret->opd[0]), 0, 1) : 0;
  if (!dir)
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a select_and_scatter whose select is not `compare GE` or `compare LE` of its arguments");
  shlo_span opname;
  ry_reduce_kind sk;
  if (!shlo_body_kind(sc, 0, 1, &opname) || !shlo_kind_of(opname, ry_value_dtype(x->b, x->in[1]), &sk) || sk != RY_SUM)
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a select_and_scatter whose scatter is not an add");
  ry_value v = ry_select_and_scatter_(x->b, x->loc, x->in[0], x->in[1], dir > 0 ? RY_MAX : RY_MIN, &w);
  return shlo_finish1(x, shlo_with_init(x, v, x->in[2], RY_SUM));
}
