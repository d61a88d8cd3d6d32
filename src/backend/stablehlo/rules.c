/* StableHLO emission rules, one per op, indexed by op id. Every rule names
 * its results in c->names and writes generic-syntax MLIR. Semantics follow
 * docs/IR.md; where StableHLO differs (argmax, the sort order, exp2,
 * cumulative scans, threefry) the rule spells the IR's meaning out in
 * StableHLO ops. */
#include <math.h>
#include <stdio.h>

#include "stablehlo.h"
#include "rules_internal.h"
#include "../../nn/dequant.h"
#include "ryft/gguf.h"


void rys_name_result(rys_ctx *c, const ry_node *n) {
  int32_t v = RES(0);
  snprintf(NAME(v), RYS_NAME, "%%v%d", v);
}

/* A multi-result node is `%nK:M`; its results are `%nK#i` (i from skip). */
void rys_name_results(rys_ctx *c, const ry_node *n, char base[RYS_NAME], int skip) {
  int id = (int)(n - c->g->nodes);
  snprintf(base, RYS_NAME, "%%n%d", id);
  for (int i = 0; i < n->n_results; i++) snprintf(NAME(RES(i)), RYS_NAME, "%%n%d#%d", id, i + skip);
}

/* Operand names and types of n into arrays of at least n->n_operands. */

void rys_free_opnds(opnds *o) {
  ry__free(o->names, ((size_t)o->n + 1) * sizeof *o->names);
  ry__free(o->types, ((size_t)o->n + 1) * sizeof *o->types);
  o->names = NULL;
  o->types = NULL;
}

bool rys_get_opnds(rys_ctx *c, const ry_node *n, opnds *o) {
  o->n = n->n_operands;
  o->names = ry__calloc((size_t)o->n + 1, sizeof *o->names);
  o->types = ry__calloc((size_t)o->n + 1, sizeof *o->types);
  if (!o->names || !o->types) {
    rys_free_opnds(o);
    c->out->oom = true;
    return false;
  }
  for (int i = 0; i < o->n; i++) {
    o->names[i] = NAME(OPD(i));
    o->types[i] = rys_vtype(c, OPD(i));
  }
  return true;
}

/* The result types of n in a new array (NULL on OOM, flagged). */
ry_type *rys_result_types(rys_ctx *c, const ry_node *n) {
  ry_type *t = ry__calloc((size_t)n->n_results + 1, sizeof *t);
  if (!t) {
    c->out->oom = true;
    return NULL;
  }
  for (int i = 0; i < n->n_results; i++) t[i] = rys_vtype(c, RES(i));
  return t;
}
void rys_free_types(const ry_node *n, ry_type *t) { ry__free(t, ((size_t)n->n_results + 1) * sizeof *t); }

/* All operands in, one result out, optional attributes. */
static void simple(rys_ctx *c, const ry_node *n, const char *op, const char *attrs) {
  opnds o;
  if (!rys_get_opnds(c, n, &o)) return;
  rys_name_result(c, n);
  ry_type rt = rys_vtype(c, RES(0));
  rys_op(c, NAME(RES(0)), op, o.n, o.names, o.types, attrs, 1, &rt);
  rys_free_opnds(&o);
}

/* ---- temporaries ---- */

void rys_t_op1(rys_ctx *c, char out[RYS_NAME], const char *op, const char *a, ry_type ta, ry_type tr) {
  rys_tmp(c, out);
  const char *args[1] = {a};
  rys_op(c, out, op, 1, args, &ta, NULL, 1, &tr);
}

void rys_t_op2(rys_ctx *c, char out[RYS_NAME], const char *op, const char *a, const char *b, ry_type t, ry_type tr) {
  rys_tmp(c, out);
  const char *args[2] = {a, b};
  ry_type ts[2] = {t, t};
  rys_op(c, out, op, 2, args, ts, NULL, 1, &tr);
}

static const char *cmp_dir[RY_CMP_COUNT] = {"EQ", "NE", "LT", "LE", "GT", "GE"};

static const char *cmp_type(ry_dtype t) {
  if (ry_dtype_is_float(t)) return "FLOAT";
  if (ry_dtype_is_signed(t)) return "SIGNED";
  return "UNSIGNED";
}

static void cmp_attrs(char *buf, size_t size, ry_cmp dir, ry_dtype t) {
  snprintf(buf, size,
           "comparison_direction = #stablehlo<comparison_direction %s>, compare_type = #stablehlo<comparison_type %s>",
           cmp_dir[dir], cmp_type(t));
}

static ry_type as_bool(ry_type t) {
  t.dtype = RY_BOOL;
  return t;
}

void rys_t_cmp(rys_ctx *c, char out[RYS_NAME], ry_cmp dir, const char *a, const char *b, ry_type t) {
  char attrs[200];
  cmp_attrs(attrs, sizeof attrs, dir, t.dtype);
  rys_tmp(c, out);
  const char *args[2] = {a, b};
  ry_type ts[2] = {t, t};
  ry_type rt = as_bool(t);
  rys_op(c, out, "stablehlo.compare", 2, args, ts, attrs, 1, &rt);
}

static void t_const(rys_ctx *c, char out[RYS_NAME], ry_type t, double v) {
  rys_tmp(c, out);
  rys_const_f64(c, out, t, v);
}

void rys_t_const_i(rys_ctx *c, char out[RYS_NAME], ry_type t, int64_t v) {
  rys_tmp(c, out);
  rys_const_i64(c, out, t, v);
}

ry_type rys_scalar_of(ry_dtype d) {
  ry_type t = {d, {0, {0}}};
  return t;
}

/* IEEE 754-2019 maximum/minimum, spelled out: NaN propagates and
 * max(-0, +0) = +0, min(-0, +0) = -0 in either order. stablehlo.maximum
 * leaves both to the backend (XLA:CPU's fast min/max ignores them). */
static void t_fminmax(rys_ctx *c, char out[RYS_NAME], bool is_max, const char *a, const char *b, ry_type t) {
  if (!ry_dtype_is_float(t.dtype)) {
    rys_t_op2(c, out, is_max ? "stablehlo.maximum" : "stablehlo.minimum", a, b, t, t);
    return;
  }
  ry_type bt = as_bool(t), it = t;
  it.dtype = ry_dtype_size(t.dtype) == 2 ? RY_I16 : ry_dtype_size(t.dtype) == 4 ? RY_I32 : RY_I64;
  char anan[RYS_NAME], bnan[RYS_NAME], gt[RYS_NAME], lt[RYS_NAME], ia[RYS_NAME], ib[RYS_NAME], ie[RYS_NAME],
      eqv[RYS_NAME], s1[RYS_NAME], s2[RYS_NAME], s3[RYS_NAME];
  rys_t_cmp(c, anan, RY_NE, a, a, t);
  rys_t_cmp(c, bnan, RY_NE, b, b, t);
  rys_t_cmp(c, gt, is_max ? RY_GT : RY_LT, a, b, t);
  rys_t_cmp(c, lt, is_max ? RY_LT : RY_GT, a, b, t);
  rys_t_op1(c, ia, "stablehlo.bitcast_convert", a, t, it);
  rys_t_op1(c, ib, "stablehlo.bitcast_convert", b, t, it);
  rys_t_op2(c, ie, is_max ? "stablehlo.and" : "stablehlo.or", ia, ib, it, it);
  rys_t_op1(c, eqv, "stablehlo.bitcast_convert", ie, it, t);
  const char *a1[3] = {lt, b, eqv};
  ry_type ts[3] = {bt, t, t};
  rys_tmp(c, s1);
  rys_op(c, s1, "stablehlo.select", 3, a1, ts, NULL, 1, &t);
  const char *a2[3] = {gt, a, s1};
  rys_tmp(c, s2);
  rys_op(c, s2, "stablehlo.select", 3, a2, ts, NULL, 1, &t);
  const char *a3[3] = {bnan, b, s2};
  rys_tmp(c, s3);
  rys_op(c, s3, "stablehlo.select", 3, a3, ts, NULL, 1, &t);
  const char *a4[3] = {anan, a, s3};
  rys_tmp(c, out);
  rys_op(c, out, "stablehlo.select", 3, a4, ts, NULL, 1, &t);
}

static void minmax_node(rys_ctx *c, const ry_node *n, bool is_max) {
  ry_type t = rys_vtype(c, RES(0));
  char r[RYS_NAME];
  t_fminmax(c, r, is_max, NAME(OPD(0)), NAME(OPD(1)), t);
  memcpy(NAME(RES(0)), r, RYS_NAME);
}
static void r_max(rys_ctx *c, const ry_node *n) { minmax_node(c, n, true); }
static void r_min(rys_ctx *c, const ry_node *n) { minmax_node(c, n, false); }

/* clamp(lo, x, hi) = min(max(x, lo), hi) with scalar bounds broadcast. */
static void r_clamp(rys_ctx *c, const ry_node *n) {
  ry_type t = rys_vtype(c, RES(0));
  if (!ry_dtype_is_float(t.dtype)) {
    simple(c, n, "stablehlo.clamp", NULL);
    return;
  }
  char lo[RYS_NAME], hi[RYS_NAME], m[RYS_NAME], r[RYS_NAME];
  const int which[2] = {0, 2};
  char *dst[2] = {lo, hi};
  for (int k = 0; k < 2; k++) {
    ry_type bt = rys_vtype(c, OPD(which[k]));
    if (bt.shape.rank == t.shape.rank) {
      memcpy(dst[k], NAME(OPD(which[k])), RYS_NAME);
    } else {
      rys_tmp(c, dst[k]);
      const char *args[1] = {NAME(OPD(which[k]))};
      rys_op(c, dst[k], "stablehlo.broadcast_in_dim", 1, args, &bt, "broadcast_dimensions = array<i64>", 1, &t);
    }
  }
  t_fminmax(c, m, true, NAME(OPD(1)), lo, t);
  t_fminmax(c, r, false, m, hi, t);
  memcpy(NAME(RES(0)), r, RYS_NAME);
}

/* ---- elementwise ---- */

#define EW(fn, op) \
  static void fn(rys_ctx *c, const ry_node *n) { simple(c, n, op, NULL); }
EW(r_neg, "stablehlo.negate")
EW(r_abs, "stablehlo.abs")
EW(r_sign, "stablehlo.sign")
EW(r_exp, "stablehlo.exponential")
EW(r_log, "stablehlo.log")
EW(r_log1p, "stablehlo.log_plus_one")
EW(r_expm1, "stablehlo.exponential_minus_one")
EW(r_sqrt, "stablehlo.sqrt")
EW(r_rsqrt, "stablehlo.rsqrt")
EW(r_cbrt, "stablehlo.cbrt")
EW(r_sin, "stablehlo.sine")
EW(r_cos, "stablehlo.cosine")
EW(r_tan, "stablehlo.tan")
EW(r_tanh, "stablehlo.tanh")
EW(r_logistic, "stablehlo.logistic")
EW(r_erf, "chlo.erf")
EW(r_erf_inv, "chlo.erf_inv")
EW(r_atanh, "chlo.atanh")
EW(r_floor, "stablehlo.floor")
EW(r_ceil, "stablehlo.ceil")
EW(r_round, "stablehlo.round_nearest_afz")
EW(r_round_even, "stablehlo.round_nearest_even")
EW(r_is_finite, "stablehlo.is_finite")
EW(r_not, "stablehlo.not")
EW(r_popcnt, "stablehlo.popcnt")
EW(r_clz, "stablehlo.count_leading_zeros")
EW(r_add, "stablehlo.add")
EW(r_sub, "stablehlo.subtract")
EW(r_mul, "stablehlo.multiply")
EW(r_div, "stablehlo.divide")
EW(r_rem, "stablehlo.remainder")
EW(r_pow, "stablehlo.power")
EW(r_atan2, "stablehlo.atan2")
EW(r_and, "stablehlo.and")
EW(r_or, "stablehlo.or")
EW(r_xor, "stablehlo.xor")
EW(r_shl, "stablehlo.shift_left")
EW(r_shr_logical, "stablehlo.shift_right_logical")
EW(r_shr_arith, "stablehlo.shift_right_arithmetic")
EW(r_select, "stablehlo.select")
EW(r_convert, "stablehlo.convert")
EW(r_bitcast, "stablehlo.bitcast_convert")
EW(r_reshape, "stablehlo.reshape")
EW(r_dynamic_update_slice, "stablehlo.dynamic_update_slice")
#undef EW

/* exp2(x) = exp(ln 2 * x), as JAX lowers it. */
static void r_exp2(rys_ctx *c, const ry_node *n) {
  ry_type t = rys_vtype(c, OPD(0));
  char ln2[RYS_NAME], prod[RYS_NAME];
  t_const(c, ln2, t, 0.69314718055994530942);
  rys_t_op2(c, prod, "stablehlo.multiply", ln2, NAME(OPD(0)), t, t);
  rys_name_result(c, n);
  const char *args[1] = {prod};
  rys_op(c, NAME(RES(0)), "stablehlo.exponential", 1, args, &t, NULL, 1, &t);
}

static void r_compare(rys_ctx *c, const ry_node *n) {
  char attrs[200];
  cmp_attrs(attrs, sizeof attrs, n->attrs.compare.dir, rys_vtype(c, OPD(0)).dtype);
  simple(c, n, "stablehlo.compare", attrs);
}

/* ---- shape ops ---- */

static void r_broadcast(rys_ctx *c, const ry_node *n) {
  char a[256], attrs[300];
  snprintf(attrs, sizeof attrs, "broadcast_dimensions = %s", rys_array_i64(a, sizeof a, &n->attrs.broadcast.dims));
  simple(c, n, "stablehlo.broadcast_in_dim", attrs);
}

static void r_transpose(rys_ctx *c, const ry_node *n) {
  char a[256], attrs[300];
  snprintf(attrs, sizeof attrs, "permutation = %s", rys_array_i64(a, sizeof a, &n->attrs.transpose.perm));
  simple(c, n, "stablehlo.transpose", attrs);
}

static void r_slice(rys_ctx *c, const ry_node *n) {
  char a[256], b[256], d[256], attrs[900];
  snprintf(attrs, sizeof attrs, "start_indices = %s, limit_indices = %s, strides = %s",
           rys_array_i64(a, sizeof a, &n->attrs.slice.start), rys_array_i64(b, sizeof b, &n->attrs.slice.limit),
           rys_array_i64(d, sizeof d, &n->attrs.slice.stride));
  simple(c, n, "stablehlo.slice", attrs);
}

static void r_dynamic_slice(rys_ctx *c, const ry_node *n) {
  char a[256], attrs[300];
  snprintf(attrs, sizeof attrs, "slice_sizes = %s", rys_array_i64(a, sizeof a, &n->attrs.dynamic_slice.sizes));
  simple(c, n, "stablehlo.dynamic_slice", attrs);
}

static void r_concatenate(rys_ctx *c, const ry_node *n) {
  char attrs[64];
  snprintf(attrs, sizeof attrs, "dimension = %lld : i64", (long long)n->attrs.concatenate.dim);
  simple(c, n, "stablehlo.concatenate", attrs);
}

static void r_pad(rys_ctx *c, const ry_node *n) {
  char a[256], b[256], d[256], attrs[900];
  snprintf(attrs, sizeof attrs, "edge_padding_low = %s, edge_padding_high = %s, interior_padding = %s",
           rys_array_i64(a, sizeof a, &n->attrs.pad.low), rys_array_i64(b, sizeof b, &n->attrs.pad.high),
           rys_array_i64(d, sizeof d, &n->attrs.pad.interior));
  simple(c, n, "stablehlo.pad", attrs);
}

static void r_reverse(rys_ctx *c, const ry_node *n) {
  char a[256], attrs[300];
  snprintf(attrs, sizeof attrs, "dimensions = %s", rys_array_i64(a, sizeof a, &n->attrs.reverse.dims));
  simple(c, n, "stablehlo.reverse", attrs);
}

static void r_iota(rys_ctx *c, const ry_node *n) {
  char attrs[64];
  snprintf(attrs, sizeof attrs, "iota_dimension = %lld : i64", (long long)n->attrs.iota.dim);
  simple(c, n, "stablehlo.iota", attrs);
}

static void r_constant(rys_ctx *c, const ry_node *n) {
  rys_name_result(c, n);
  rys_const_array(c, NAME(RES(0)), n->attrs.constant.value);
}

/* ---- reductions ---- */

/* The identity of a reduction kind for dtype t. */
void rys_identity(rys_ctx *c, char out[RYS_NAME], ry_reduce_kind k, ry_dtype d) {
  ry_type t = rys_scalar_of(d);
  bool fl = ry_dtype_is_float(d), sg = ry_dtype_is_signed(d);
  int bits = (int)(8 * ry_dtype_size(d));
  int64_t hi = d == RY_BOOL ? 1 : sg ? (int64_t)((UINT64_C(1) << (bits - 1)) - 1) : bits >= 64 ? -1 : (int64_t)((UINT64_C(1) << bits) - 1);
  int64_t lo = d == RY_BOOL ? 0 : sg ? -hi - 1 : 0;
  switch (k) {
  case RY_SUM: rys_t_const_i(c, out, t, 0); break;
  case RY_PROD: rys_t_const_i(c, out, t, 1); break;
  case RY_MAX: if (fl) t_const(c, out, t, -INFINITY); else rys_t_const_i(c, out, t, lo); break;
  case RY_MIN: if (fl) t_const(c, out, t, INFINITY); else rys_t_const_i(c, out, t, hi); break;
  case RY_AND: rys_t_const_i(c, out, t, d == RY_BOOL ? 1 : -1); break;
  case RY_OR: rys_t_const_i(c, out, t, 0); break;
  default: rys_t_const_i(c, out, t, 0); break;
  }
}

const char *rys_reduce_op(ry_reduce_kind k, ry_dtype d) {
  if (d == RY_BOOL) {
    switch (k) {
    case RY_SUM: case RY_MAX: case RY_OR: return "stablehlo.or";
    default: return "stablehlo.and";
    }
  }
  switch (k) {
  case RY_SUM: return "stablehlo.add";
  case RY_PROD: return "stablehlo.multiply";
  case RY_MAX: return "stablehlo.maximum";
  case RY_MIN: return "stablehlo.minimum";
  case RY_AND: return "stablehlo.and";
  default: return "stablehlo.or";
  }
}

/* A region (acc, x) -> op(acc, x) on scalars of d. */
void rys_scalar_reducer(rys_ctx *c, bool first, ry_reduce_kind k, ry_dtype d) {
  char a[RYS_NAME], b[RYS_NAME], r[RYS_NAME];
  rys_tmp(c, a);
  rys_tmp(c, b);
  const char *ps[2] = {a, b};
  ry_type t = rys_scalar_of(d), ts[2] = {t, t};
  rys_region_begin(c, first, 2, ps, ts);
  if ((k == RY_MAX || k == RY_MIN) && ry_dtype_is_float(d)) t_fminmax(c, r, k == RY_MAX, a, b, t);
  else rys_t_op2(c, r, rys_reduce_op(k, d), a, b, t, t);
  const char *rr[1] = {r};
  rys_region_end(c, 1, rr, &t);
}

static void r_reduce(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0)), rt = rys_vtype(c, RES(0));
  char init[RYS_NAME], a[256], attrs[300];
  rys_identity(c, init, n->attrs.reduce.kind, xt.dtype);
  rys_name_result(c, n);
  const char *args[2] = {NAME(OPD(0)), init};
  ry_type ts[2] = {xt, rys_scalar_of(xt.dtype)};
  rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.reduce", 2, args);
  rys_scalar_reducer(c, true, n->attrs.reduce.kind, xt.dtype);
  snprintf(attrs, sizeof attrs, "dimensions = %s", rys_array_i64(a, sizeof a, &n->attrs.reduce.axes));
  rys_op_end_regions(c, attrs, 2, ts, 1, &rt);
}

/* argmax/argmin: a variadic reduce over (x, iota). The comparator picks the
 * extreme value, NaN beating everything, and the lower index on ties
 * (NaN ties NaN), which makes it associative and commutative. */
static void arg_minmax(rys_ctx *c, const ry_node *n, bool is_max) {
  ry_type xt = rys_vtype(c, OPD(0)), rt = rys_vtype(c, RES(0));
  ry_dtype vd = xt.dtype, id = rt.dtype;
  int64_t axis = n->attrs.arg.axis;
  ry_type it = xt;
  it.dtype = id;
  char iota[RYS_NAME], attrs[256], vinit[RYS_NAME], iinit[RYS_NAME];
  rys_tmp(c, iota);
  snprintf(attrs, sizeof attrs, "iota_dimension = %lld : i64", (long long)axis);
  rys_op(c, iota, "stablehlo.iota", 0, NULL, NULL, attrs, 1, &it);
  rys_identity(c, vinit, is_max ? RY_MAX : RY_MIN, vd);
  rys_t_const_i(c, iinit, rys_scalar_of(id), 0);
  char base[RYS_NAME];
  snprintf(base, RYS_NAME, "%%n%d", (int)(n - c->g->nodes));
  snprintf(NAME(RES(0)), RYS_NAME, "%%n%d#1", (int)(n - c->g->nodes));
  const char *args[4] = {NAME(OPD(0)), iota, vinit, iinit};
  ry_type ts[4] = {xt, it, rys_scalar_of(vd), rys_scalar_of(id)};
  rys_op_begin(c, base, 2, "stablehlo.reduce", 4, args);
  /* region (av, ai, bv, bi) */
  char av[RYS_NAME], ai[RYS_NAME], bv[RYS_NAME], bi[RYS_NAME];
  rys_tmp(c, av);
  rys_tmp(c, ai);
  rys_tmp(c, bv);
  rys_tmp(c, bi);
  const char *ps[4] = {av, ai, bv, bi};
  ry_type sv = rys_scalar_of(vd), si = rys_scalar_of(id), bt = rys_scalar_of(RY_BOOL);
  ry_type pts[4] = {sv, si, sv, si};
  rys_region_begin(c, true, 4, ps, pts);
  char better[RYS_NAME], eq[RYS_NAME], ilt[RYS_NAME], tie[RYS_NAME], pick[RYS_NAME], rv[RYS_NAME], ri[RYS_NAME];
  rys_t_cmp(c, better, is_max ? RY_GT : RY_LT, av, bv, sv);
  rys_t_cmp(c, eq, RY_EQ, av, bv, sv);
  if (ry_dtype_is_float(vd)) {
    char anan[RYS_NAME], bnan[RYS_NAME], bok[RYS_NAME], anan_only[RYS_NAME], both[RYS_NAME], b2[RYS_NAME], e2[RYS_NAME];
    rys_t_cmp(c, anan, RY_NE, av, av, sv);
    rys_t_cmp(c, bnan, RY_NE, bv, bv, sv);
    rys_t_op1(c, bok, "stablehlo.not", bnan, bt, bt);
    rys_t_op2(c, anan_only, "stablehlo.and", anan, bok, bt, bt);
    rys_t_op2(c, b2, "stablehlo.or", better, anan_only, bt, bt);
    rys_t_op2(c, both, "stablehlo.and", anan, bnan, bt, bt);
    rys_t_op2(c, e2, "stablehlo.or", eq, both, bt, bt);
    memcpy(better, b2, RYS_NAME);
    memcpy(eq, e2, RYS_NAME);
  }
  rys_t_cmp(c, ilt, RY_LT, ai, bi, si);
  rys_t_op2(c, tie, "stablehlo.and", eq, ilt, bt, bt);
  rys_t_op2(c, pick, "stablehlo.or", better, tie, bt, bt);
  {
    rys_tmp(c, rv);
    const char *sa[3] = {pick, av, bv};
    ry_type st[3] = {bt, sv, sv};
    rys_op(c, rv, "stablehlo.select", 3, sa, st, NULL, 1, &sv);
    rys_tmp(c, ri);
    const char *sb[3] = {pick, ai, bi};
    ry_type sbt[3] = {bt, si, si};
    rys_op(c, ri, "stablehlo.select", 3, sb, sbt, NULL, 1, &si);
  }
  const char *rr[2] = {rv, ri};
  ry_type rrt[2] = {sv, si};
  rys_region_end(c, 2, rr, rrt);
  ry_axes dims = {1, {axis}};
  char a[64];
  snprintf(attrs, sizeof attrs, "dimensions = %s", rys_array_i64(a, sizeof a, &dims));
  ry_type vt = rt;
  vt.dtype = vd;
  ry_type outs[2] = {vt, rt};
  rys_op_end_regions(c, attrs, 4, ts, 2, outs);
}

static void r_argmax(rys_ctx *c, const ry_node *n) { arg_minmax(c, n, true); }
static void r_argmin(rys_ctx *c, const ry_node *n) { arg_minmax(c, n, false); }

/* Inclusive scan: a reduce_window whose window spans the whole axis, padded
 * on the low side (high side when reversed) with the identity. */
static void r_cumulative(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0));
  int64_t axis = n->attrs.cumulative.axis, len = xt.shape.dims[axis];
  if (len == 0 || ry_shape_numel(xt.shape) == 0) {
    memcpy(NAME(RES(0)), NAME(OPD(0)), RYS_NAME);
    return;
  }
  char init[RYS_NAME];
  rys_identity(c, init, n->attrs.cumulative.kind, xt.dtype);
  rys_name_result(c, n);
  const char *args[2] = {NAME(OPD(0)), init};
  ry_type ts[2] = {xt, rys_scalar_of(xt.dtype)};
  rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.reduce_window", 2, args);
  rys_scalar_reducer(c, true, n->attrs.cumulative.kind, xt.dtype);
  ry_axes win = {xt.shape.rank, {0}}, str = {xt.shape.rank, {0}};
  char pad[400];
  size_t k = (size_t)snprintf(pad, sizeof pad, "dense<[");
  for (int d = 0; d < xt.shape.rank; d++) {
    win.v[d] = d == axis ? len : 1;
    str.v[d] = 1;
    int64_t lo = d == axis && !n->attrs.cumulative.reverse ? len - 1 : 0;
    int64_t hi = d == axis && n->attrs.cumulative.reverse ? len - 1 : 0;
    k += (size_t)snprintf(pad + k, sizeof pad - k, "%s[%lld, %lld]", d ? ", " : "", (long long)lo, (long long)hi);
  }
  snprintf(pad + k, sizeof pad - k, "]> : tensor<%dx2xi64>", xt.shape.rank);
  char a[256], b[256], attrs[1200];
  snprintf(attrs, sizeof attrs, "window_dimensions = %s, window_strides = %s, padding = %s", rys_array_i64(a, sizeof a, &win),
           rys_array_i64(b, sizeof b, &str), pad);
  rys_op_end_regions(c, attrs, 2, ts, 1, &xt);
}

/* ---- contractions ---- */

static void r_dot(rys_ctx *c, const ry_node *n) {
  const ry_dot_dims *d = &n->attrs.dot;
  char attrs[1200], l[4][200];
  size_t k = (size_t)snprintf(attrs, sizeof attrs, "dot_dimension_numbers = #stablehlo.dot<");
  const char *fields[4] = {"lhs_batching_dimensions", "rhs_batching_dimensions", "lhs_contracting_dimensions",
                           "rhs_contracting_dimensions"};
  const ry_axes *lists[4] = {&d->lhs_batch, &d->rhs_batch, &d->lhs_contract, &d->rhs_contract};
  bool any = false;
  for (int i = 0; i < 4; i++) {
    if (lists[i]->n == 0) continue;
    k += (size_t)snprintf(attrs + k, sizeof attrs - k, "%s%s = %s", any ? ", " : "", fields[i],
                          rys_list(l[i], sizeof l[i], lists[i]));
    any = true;
  }
  snprintf(attrs + k, sizeof attrs - k, ">");
  simple(c, n, "stablehlo.dot_general", attrs);
}

static void conv_labels(char *buf, size_t size, const ry_axes *dims, const char *l0, const char *l1) {
  const char *lab[RY_MAX_RANK];
  char sp[RY_MAX_RANK][16];
  for (int i = 0; i < dims->n; i++) {
    int64_t pos = dims->v[i];
    if (pos < 0 || pos >= RY_MAX_RANK) continue;
    if (i == 0) lab[pos] = l0;
    else if (i == 1) lab[pos] = l1;
    else {
      snprintf(sp[i], sizeof sp[i], "%d", i - 2);
      lab[pos] = sp[i];
    }
  }
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < dims->n && k < size; i++) k += (size_t)snprintf(buf + k, size - k, "%s%s", i ? ", " : "", lab[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
}

static void r_conv(rys_ctx *c, const ry_node *n) {
  const ry_conv_dims *d = &n->attrs.conv;
  char in[128], kr[128], out[128], pad[400], a[256], b[256], e[256], attrs[2400];
  conv_labels(in, sizeof in, &d->input_dims, "b", "f");
  conv_labels(kr, sizeof kr, &d->kernel_dims, "o", "i");
  conv_labels(out, sizeof out, &d->output_dims, "b", "f");
  int ns = d->input_dims.n - 2;
  size_t k = (size_t)snprintf(attrs, sizeof attrs, "dimension_numbers = #stablehlo.conv<%sx%s->%s>, feature_group_count = %lld : i64, batch_group_count = %lld : i64",
                              in, kr, out, (long long)(d->feature_groups ? d->feature_groups : 1),
                              (long long)(d->batch_groups ? d->batch_groups : 1));
  if (ns > 0) {
    size_t p = (size_t)snprintf(pad, sizeof pad, "dense<[");
    for (int i = 0; i < ns; i++)
      p += (size_t)snprintf(pad + p, sizeof pad - p, "%s[%lld, %lld]", i ? ", " : "", (long long)d->pad_low.v[i],
                            (long long)d->pad_high.v[i]);
    snprintf(pad + p, sizeof pad - p, "]> : tensor<%dx2xi64>", ns);
    snprintf(attrs + k, sizeof attrs - k, ", window_strides = %s, padding = %s, lhs_dilation = %s, rhs_dilation = %s",
             rys_array_i64(a, sizeof a, &d->stride), pad, rys_array_i64(b, sizeof b, &d->lhs_dilation),
             rys_array_i64(e, sizeof e, &d->rhs_dilation));
  }
  simple(c, n, "stablehlo.convolution", attrs);
}

/* ---- indexing ---- */

static void r_gather(rys_ctx *c, const ry_node *n) {
  const ry_gather_dims *d = &n->attrs.gather;
  char a[200], b[200], e[200], s[256], attrs[1400];
  snprintf(attrs, sizeof attrs,
           "dimension_numbers = #stablehlo.gather<offset_dims = %s, collapsed_slice_dims = %s, start_index_map = %s, "
           "index_vector_dim = %lld>, slice_sizes = %s, indices_are_sorted = false",
           rys_list(a, sizeof a, &d->offset_dims), rys_list(b, sizeof b, &d->collapsed_slice_dims),
           rys_list(e, sizeof e, &d->start_index_map), (long long)d->index_vector_dim,
           rys_array_i64(s, sizeof s, &d->slice_sizes));
  simple(c, n, "stablehlo.gather", attrs);
}

static void r_scatter(rys_ctx *c, const ry_node *n) {
  const ry_scatter_dims *d = &n->attrs.scatter;
  opnds o;
  if (!rys_get_opnds(c, n, &o)) return;
  ry_type rt = rys_vtype(c, RES(0));
  ry_type st = rys_scalar_of(rt.dtype);
  rys_name_result(c, n);
  rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.scatter", o.n, o.names);
  char p0[RYS_NAME], p1[RYS_NAME], r[RYS_NAME];
  rys_tmp(c, p0);
  rys_tmp(c, p1);
  const char *ps[2] = {p0, p1};
  ry_type ts[2] = {st, st};
  rys_region_begin(c, true, 2, ps, ts);
  const char *ret = p1;
  if (d->kind != RY_SCATTER_REPLACE) {
    ry_reduce_kind k = d->kind == RY_SCATTER_ADD ? RY_SUM : d->kind == RY_SCATTER_MUL ? RY_PROD
                                                                  : d->kind == RY_SCATTER_MAX ? RY_MAX : RY_MIN;
    if ((k == RY_MAX || k == RY_MIN) && ry_dtype_is_float(rt.dtype)) t_fminmax(c, r, k == RY_MAX, p0, p1, st);
    else rys_t_op2(c, r, rys_reduce_op(k, rt.dtype), p0, p1, st, st);
    ret = r;
  }
  rys_region_end(c, 1, &ret, &st);
  char a[200], b[200], e[200], attrs[1000];
  snprintf(attrs, sizeof attrs,
           "scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = %s, inserted_window_dims = %s, "
           "scatter_dims_to_operand_dims = %s, index_vector_dim = %lld>, indices_are_sorted = false, unique_indices = false",
           rys_list(a, sizeof a, &d->update_window_dims), rys_list(b, sizeof b, &d->inserted_window_dims),
           rys_list(e, sizeof e, &d->scatter_dims_to_operand_dims), (long long)d->index_vector_dim);
  rys_op_end_regions(c, attrs, o.n, o.types, 1, &rt);
  rys_free_opnds(&o);
}

/* less(a, b) on scalars of d in IR.md's total order: -inf < ... < inf < NaN,
 * -0 == +0, NaN == NaN. */
static void t_less(rys_ctx *c, char out[RYS_NAME], const char *a, const char *b, ry_dtype d) {
  ry_type t = rys_scalar_of(d), bt = rys_scalar_of(RY_BOOL);
  if (!ry_dtype_is_float(d)) {
    rys_t_cmp(c, out, RY_LT, a, b, t);
    return;
  }
  char lt[RYS_NAME], bnan[RYS_NAME], aok[RYS_NAME], nan_case[RYS_NAME];
  rys_t_cmp(c, lt, RY_LT, a, b, t);
  rys_t_cmp(c, bnan, RY_NE, b, b, t);
  rys_t_cmp(c, aok, RY_EQ, a, a, t);
  rys_t_op2(c, nan_case, "stablehlo.and", bnan, aok, bt, bt);
  rys_t_op2(c, out, "stablehlo.or", lt, nan_case, bt, bt);
}

static void r_sort(rys_ctx *c, const ry_node *n) {
  opnds o;
  if (!rys_get_opnds(c, n, &o)) return;
  int nk = (int)n->attrs.sort.num_keys;
  bool desc = n->attrs.sort.descending;
  char base[RYS_NAME];
  rys_name_results(c, n, base, 0);
  rys_op_begin(c, base, n->n_results, "stablehlo.sort", o.n, o.names);
  char(*ps)[RYS_NAME] = ry__calloc((size_t)(2 * o.n), RYS_NAME);
  const char *pn[128];
  ry_type pt[128];
  if (!ps || o.n > 64) {
    if (!ps) c->out->oom = true;
    else rys_fail(c, RY_ERR_UNSUPPORTED, "stablehlo: sort of %d operands (at most 64)", o.n);
    ry__free(ps, (size_t)(2 * o.n) * RYS_NAME);
    rys_free_opnds(&o);
    return;
  }
  for (int i = 0; i < 2 * o.n; i++) {
    rys_tmp(c, ps[i]);
    pn[i] = ps[i];
    pt[i] = rys_scalar_of(o.types[i / 2].dtype);
  }
  rys_region_begin(c, true, 2 * o.n, pn, pt);
  ry_type bt = rys_scalar_of(RY_BOOL);
  char acc[RYS_NAME] = "";
  for (int k = nk - 1; k >= 0; k--) {
    const char *a = ps[2 * k], *b = ps[2 * k + 1];
    if (desc) {
      const char *tmp = a;
      a = b;
      b = tmp;
    }
    char lt[RYS_NAME];
    t_less(c, lt, a, b, o.types[k].dtype);
    if (k == nk - 1) {
      memcpy(acc, lt, RYS_NAME);
      continue;
    }
    char gt[RYS_NAME], ne[RYS_NAME], eq[RYS_NAME], tie[RYS_NAME], nacc[RYS_NAME];
    t_less(c, gt, b, a, o.types[k].dtype);
    rys_t_op2(c, ne, "stablehlo.or", lt, gt, bt, bt);
    rys_t_op1(c, eq, "stablehlo.not", ne, bt, bt);
    rys_t_op2(c, tie, "stablehlo.and", eq, acc, bt, bt);
    rys_t_op2(c, nacc, "stablehlo.or", lt, tie, bt, bt);
    memcpy(acc, nacc, RYS_NAME);
  }
  const char *rr[1] = {acc};
  rys_region_end(c, 1, rr, &bt);
  ry__free(ps, (size_t)(2 * o.n) * RYS_NAME);
  char attrs[128];
  snprintf(attrs, sizeof attrs, "dimension = %lld : i64, is_stable = true", (long long)n->attrs.sort.dim);
  rys_op_end_regions(c, attrs, o.n, o.types, o.n, o.types);
  rys_free_opnds(&o);
}

/* ---- dequantize: a private function of integer ops (src/nn/dequant.c),
 * one per format and operand type ---- */

static int expand_dequantize(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ryn_dequantize_expand(b, RY_HERE, in[0], *(const int *)ctx);
  return 1;
}

static void r_dequantize(rys_ctx *c, const ry_node *n) {
  int fmt = (int)n->attrs.quant.format;
  ry_type t = rys_vtype(c, OPD(0));
  char name[160], ts[96];
  ry_type_str(t, ts, sizeof ts);
  snprintf(name, sizeof name, "dequantize_%s_%s", ry_ggml_type_name(fmt), ts);
  ry_graph *g = rys_owned_callee(c, name);
  const char *callee = g ? rys_callee_name(c, g) : NULL;
  if (!g) {
    ry_status s = ry_trace(name, expand_dequantize, &fmt, 1, &t, NULL, &g);
    if (s) {
      rys_fail(c, ry_status_code(s), "stablehlo: dequantize: %s", ry_status_message(s));
      ry_status_free(s);
      return;
    }
    callee = rys_adopt_callee(c, g);
  }
  char attrs[200];
  snprintf(attrs, sizeof attrs, "callee = @%s", callee);
  rys_name_result(c, n);
  const char *arg = NAME(OPD(0));
  ry_type out = rys_vtype(c, RES(0));
  rys_op(c, NAME(RES(0)), "func.call", 1, &arg, &t, attrs, 1, &out);
}

/* ---- random bits: Threefry-2x32, 20 rounds, as in JAX ---- */

static void r_threefry(rys_ctx *c, const ry_node *n) {
  ry_type t = rys_vtype(c, OPD(0));
  char k0[RYS_NAME], k1[RYS_NAME], k2[RYS_NAME], x0[RYS_NAME], x1[RYS_NAME], tmp[RYS_NAME], cst[RYS_NAME];
  memcpy(k0, NAME(OPD(0)), RYS_NAME);
  memcpy(k1, NAME(OPD(1)), RYS_NAME);
  rys_t_const_i(c, cst, t, 0x1BD11BDA);
  rys_t_op2(c, tmp, "stablehlo.xor", k0, k1, t, t);
  rys_t_op2(c, k2, "stablehlo.xor", tmp, cst, t, t);
  const char *ks[3] = {k0, k1, k2};
  static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  rys_t_op2(c, x0, "stablehlo.add", NAME(OPD(2)), k0, t, t);
  rys_t_op2(c, x1, "stablehlo.add", NAME(OPD(3)), k1, t, t);
  for (int blk = 0; blk < 5; blk++) {
    for (int r = 0; r < 4; r++) {
      int d = rot[blk % 2][r];
      char nx0[RYS_NAME], sl[RYS_NAME], sr[RYS_NAME], rl[RYS_NAME], nx1[RYS_NAME], cl[RYS_NAME], cr[RYS_NAME];
      rys_t_op2(c, nx0, "stablehlo.add", x0, x1, t, t);
      rys_t_const_i(c, cl, t, d);
      rys_t_const_i(c, cr, t, 32 - d);
      rys_t_op2(c, sl, "stablehlo.shift_left", x1, cl, t, t);
      rys_t_op2(c, sr, "stablehlo.shift_right_logical", x1, cr, t, t);
      rys_t_op2(c, rl, "stablehlo.or", sl, sr, t, t);
      rys_t_op2(c, nx1, "stablehlo.xor", rl, nx0, t, t);
      memcpy(x0, nx0, RYS_NAME);
      memcpy(x1, nx1, RYS_NAME);
    }
    char a0[RYS_NAME], a1[RYS_NAME], a2[RYS_NAME], inc[RYS_NAME];
    rys_t_op2(c, a0, "stablehlo.add", x0, ks[(blk + 1) % 3], t, t);
    rys_t_const_i(c, inc, t, blk + 1);
    rys_t_op2(c, a1, "stablehlo.add", x1, ks[(blk + 2) % 3], t, t);
    rys_t_op2(c, a2, "stablehlo.add", a1, inc, t, t);
    memcpy(x0, a0, RYS_NAME);
    memcpy(x1, a2, RYS_NAME);
  }
  memcpy(NAME(RES(0)), x0, RYS_NAME);
  memcpy(NAME(RES(1)), x1, RYS_NAME);
}

const ry_stablehlo_rule rys_rules[RY_OP_COUNT] = {
    [RY_OP_NEG] = r_neg, [RY_OP_ABS] = r_abs, [RY_OP_SIGN] = r_sign, [RY_OP_EXP] = r_exp, [RY_OP_EXP2] = r_exp2,
    [RY_OP_LOG] = r_log, [RY_OP_LOG1P] = r_log1p, [RY_OP_EXPM1] = r_expm1, [RY_OP_SQRT] = r_sqrt,
    [RY_OP_RSQRT] = r_rsqrt, [RY_OP_CBRT] = r_cbrt, [RY_OP_SIN] = r_sin, [RY_OP_COS] = r_cos, [RY_OP_TAN] = r_tan,
    [RY_OP_TANH] = r_tanh, [RY_OP_LOGISTIC] = r_logistic, [RY_OP_ERF] = r_erf, [RY_OP_ERF_INV] = r_erf_inv, [RY_OP_ATANH] = r_atanh,
    [RY_OP_FLOOR] = r_floor, [RY_OP_CEIL] = r_ceil, [RY_OP_ROUND] = r_round, [RY_OP_ROUND_EVEN] = r_round_even,
    [RY_OP_IS_FINITE] = r_is_finite, [RY_OP_NOT] = r_not, [RY_OP_POPCNT] = r_popcnt, [RY_OP_CLZ] = r_clz,
    [RY_OP_ADD] = r_add, [RY_OP_SUB] = r_sub, [RY_OP_MUL] = r_mul, [RY_OP_DIV] = r_div, [RY_OP_REM] = r_rem,
    [RY_OP_POW] = r_pow, [RY_OP_MAX] = r_max, [RY_OP_MIN] = r_min, [RY_OP_ATAN2] = r_atan2, [RY_OP_AND] = r_and,
    [RY_OP_OR] = r_or, [RY_OP_XOR] = r_xor, [RY_OP_SHL] = r_shl, [RY_OP_SHR_LOGICAL] = r_shr_logical,
    [RY_OP_SHR_ARITH] = r_shr_arith, [RY_OP_COMPARE] = r_compare, [RY_OP_SELECT] = r_select,
    [RY_OP_CLAMP] = r_clamp, [RY_OP_CONVERT] = r_convert, [RY_OP_BITCAST] = r_bitcast,
    [RY_OP_BROADCAST] = r_broadcast, [RY_OP_RESHAPE] = r_reshape, [RY_OP_TRANSPOSE] = r_transpose,
    [RY_OP_SLICE] = r_slice, [RY_OP_DYNAMIC_SLICE] = r_dynamic_slice,
    [RY_OP_DYNAMIC_UPDATE_SLICE] = r_dynamic_update_slice, [RY_OP_CONCATENATE] = r_concatenate, [RY_OP_PAD] = r_pad,
    [RY_OP_REVERSE] = r_reverse, [RY_OP_IOTA] = r_iota, [RY_OP_CONSTANT] = r_constant, [RY_OP_REDUCE] = r_reduce,
    [RY_OP_ARGMAX] = r_argmax, [RY_OP_ARGMIN] = r_argmin, [RY_OP_CUMULATIVE] = r_cumulative,
    [RY_OP_REDUCE_WINDOW] = rys_r_reduce_window, [RY_OP_SELECT_AND_SCATTER] = rys_r_select_and_scatter,
    [RY_OP_SELECT_AND_GATHER] = rys_r_select_and_gather,
    [RY_OP_DOT_GENERAL] = r_dot, [RY_OP_CONVOLUTION] = r_conv, [RY_OP_GATHER] = r_gather,
    [RY_OP_SCATTER] = r_scatter, [RY_OP_SORT] = r_sort, [RY_OP_THREEFRY] = r_threefry, [RY_OP_DEQUANTIZE] = r_dequantize, [RY_OP_COND] = rys_r_cond,
    [RY_OP_WHILE] = rys_r_while, [RY_OP_SCAN] = rys_r_scan, [RY_OP_CALL] = rys_r_call, [RY_OP_CUSTOM_CALL] = rys_r_custom_call,
    [RY_OP_ALL_REDUCE] = rys_r_collective, [RY_OP_ALL_GATHER] = rys_r_collective, [RY_OP_REDUCE_SCATTER] = rys_r_collective,
    [RY_OP_COLLECTIVE_BROADCAST] = rys_r_collective,
    [RY_OP_SHARDING] = rys_r_sharding,
};
