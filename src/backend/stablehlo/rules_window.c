/* StableHLO emission of the windowed reductions: reduce_window, and max
 * pooling's derivatives select_and_scatter (stablehlo.select_and_scatter)
 * and select_and_gather (a reduce_window over (x, t) pairs, as JAX lowers
 * its select_and_gather_add). */
#include <stdio.h>

#include "rules_internal.h"

/* window_dimensions, window_strides, base_dilations, window_dilations and
 * padding; the dilations and the padding only when they are not the
 * default (so select_and_scatter, which has none, shares it). */
static void window_attrs(char *buf, size_t size, const ry_window_dims *w) {
  char a[256];
  size_t k = (size_t)snprintf(buf, size, "window_dimensions = %s", rys_array_i64(a, sizeof a, &w->window));
  k += (size_t)snprintf(buf + k, size - k, ", window_strides = %s", rys_array_i64(a, sizeof a, &w->stride));
  bool bd = false, wd = false, pad = false;
  for (int i = 0; i < w->window.n; i++) {
    bd |= w->base_dilation.v[i] != 1;
    wd |= w->window_dilation.v[i] != 1;
    pad |= w->pad_low.v[i] != 0 || w->pad_high.v[i] != 0;
  }
  if (bd && k < size) k += (size_t)snprintf(buf + k, size - k, ", base_dilations = %s", rys_array_i64(a, sizeof a, &w->base_dilation));
  if (wd && k < size)
    k += (size_t)snprintf(buf + k, size - k, ", window_dilations = %s", rys_array_i64(a, sizeof a, &w->window_dilation));
  if (pad && k < size) {
    k += (size_t)snprintf(buf + k, size - k, ", padding = dense<[");
    for (int i = 0; i < w->window.n && k < size; i++)
      k += (size_t)snprintf(buf + k, size - k, "%s[%lld, %lld]", i ? ", " : "", (long long)w->pad_low.v[i], (long long)w->pad_high.v[i]);
    if (k < size) snprintf(buf + k, size - k, "]> : tensor<%dx2xi64>", w->window.n);
  }
}

void rys_r_reduce_window(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0)), rt = rys_vtype(c, RES(0));
  char init[RYS_NAME], attrs[1600];
  rys_identity(c, init, n->attrs.window.kind, xt.dtype);
  rys_name_result(c, n);
  const char *args[2] = {NAME(OPD(0)), init};
  ry_type ts[2] = {xt, rys_scalar_of(xt.dtype)};
  rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.reduce_window", 2, args);
  rys_scalar_reducer(c, true, n->attrs.window.kind, xt.dtype);
  window_attrs(attrs, sizeof attrs, &n->attrs.window.w);
  rys_op_end_regions(c, attrs, 2, ts, 1, &rt);
}

void rys_r_select_and_scatter(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0)), st = rys_vtype(c, OPD(1));
  ry_type s = rys_scalar_of(xt.dtype), bt = rys_scalar_of(RY_BOOL);
  char init[RYS_NAME], attrs[1600], a[RYS_NAME], b[RYS_NAME], r[RYS_NAME];
  rys_t_const_i(c, init, s, 0);
  rys_name_result(c, n);
  const char *args[3] = {NAME(OPD(0)), NAME(OPD(1)), init};
  ry_type ts[3] = {xt, st, s}, ps[2] = {s, s};
  rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.select_and_scatter", 3, args);
  rys_tmp(c, a);
  rys_tmp(c, b);
  const char *params[2] = {a, b};
  rys_region_begin(c, true, 2, params, ps);
  rys_t_cmp(c, r, n->attrs.window.kind == RY_MAX ? RY_GE : RY_LE, a, b, s);
  const char *rr[1] = {r};
  rys_region_end(c, 1, rr, &bt);
  rys_scalar_reducer(c, false, RY_SUM, xt.dtype);
  window_attrs(attrs, sizeof attrs, &n->attrs.window.w);
  rys_op_end_regions(c, attrs, 3, ts, 1, &xt);
}

/* (x, t) reduced as pairs from (identity, 0): a pair replaces the
 * accumulated one unless the accumulated value is >= it (<= for min). */
void rys_r_select_and_gather(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0)), tt = rys_vtype(c, OPD(1)), rt = rys_vtype(c, RES(0));
  ry_type s = rys_scalar_of(xt.dtype), bt = rys_scalar_of(RY_BOOL);
  char xinit[RYS_NAME], tinit[RYS_NAME], base[RYS_NAME], attrs[1600];
  rys_identity(c, xinit, n->attrs.window.kind, xt.dtype);
  rys_t_const_i(c, tinit, s, 0);
  snprintf(base, RYS_NAME, "%%n%d", (int)(n - c->g->nodes));
  snprintf(NAME(RES(0)), RYS_NAME, "%%n%d#1", (int)(n - c->g->nodes));
  const char *args[4] = {NAME(OPD(0)), NAME(OPD(1)), xinit, tinit};
  ry_type ts[4] = {xt, tt, s, s};
  rys_op_begin(c, base, 2, "stablehlo.reduce_window", 4, args);
  char ax[RYS_NAME], at[RYS_NAME], bx[RYS_NAME], bv[RYS_NAME], keep[RYS_NAME], rx[RYS_NAME], rv[RYS_NAME];
  rys_tmp(c, ax);
  rys_tmp(c, at);
  rys_tmp(c, bx);
  rys_tmp(c, bv);
  const char *ps[4] = {ax, at, bx, bv};
  ry_type pts[4] = {s, s, s, s};
  rys_region_begin(c, true, 4, ps, pts);
  rys_t_cmp(c, keep, n->attrs.window.kind == RY_MAX ? RY_GE : RY_LE, ax, bx, s);
  const char *sx[3] = {keep, ax, bx}, *sv[3] = {keep, at, bv};
  ry_type st[3] = {bt, s, s};
  rys_tmp(c, rx);
  rys_op(c, rx, "stablehlo.select", 3, sx, st, NULL, 1, &s);
  rys_tmp(c, rv);
  rys_op(c, rv, "stablehlo.select", 3, sv, st, NULL, 1, &s);
  const char *rr[2] = {rx, rv};
  ry_type rrt[2] = {s, s};
  rys_region_end(c, 2, rr, rrt);
  window_attrs(attrs, sizeof attrs, &n->attrs.window.w);
  ry_type outs[2] = {rt, rt};
  rys_op_end_regions(c, attrs, 4, ts, 2, outs);
}
