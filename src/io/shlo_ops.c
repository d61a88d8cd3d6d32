/* StableHLO ops onto ryft's, one converter per op (the inverse of
 * src/backend/stablehlo/rules.c). Attributes are read in both spellings
 * (pretty keywords and generic names). Regions are mapped by their shape:
 * a reduce/scatter body onto its kind, a variadic reduce over (x, iota) with
 * a comparing body onto argmax/argmin, a sort comparator onto the key and
 * order, a `while` with a constant trip count (JAX's scan and fori_loop)
 * onto `scan` so that reverse mode works, `case`/`if` onto cond. What ryft
 * cannot represent is refused with the op's name and place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "shlo_internal.h"

typedef shlo_x X;

#define OPN x->op->name.n, x->op->name.p

bool shlo_xfail(X *x, ry_code code, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  shlo_fail(x->im, x->b, x->op->at, code, "%.*s: %s", OPN, msg);
  return false;
}

/* The attribute under any of its names (NULL-terminated list). */
const shlo_span *shlo_attr(X *x, const char *a, const char *b2) {
  const shlo_span *s = shlo_kv_get(x->op, a);
  if (!s && b2) s = shlo_kv_get(x->op, b2);
  return s;
}

bool shlo_need_axes(X *x, const char *a, const char *b2, ry_axes *out) {
  const shlo_span *s = shlo_attr(x, a, b2);
  if (!s) return shlo_xfail(x, RY_ERR_PARSE, "missing attribute %s", a);
  if (!shlo_axes(*s, out)) return shlo_xfail(x, RY_ERR_PARSE, "malformed attribute %s", a);
  return true;
}

static bool need_int(X *x, const char *a, const char *b2, int64_t *v) {
  const shlo_span *s = shlo_attr(x, a, b2);
  if (!s) return shlo_xfail(x, RY_ERR_PARSE, "missing attribute %s", a);
  if (!shlo_int(*s, v)) return shlo_xfail(x, RY_ERR_PARSE, "malformed attribute %s", a);
  return true;
}

/* Bind the results, checking ryft's types against the written ones. */
bool shlo_finish(X *x, int n, const ry_value *v) {
  if (!ryb_ok(x->b)) return false;
  if (n != x->n_res) return shlo_xfail(x, RY_ERR_PARSE, "%d results written; the op has %d", x->n_res, n);
  for (int i = 0; i < n; i++) {
    ry_type t = ry_value_type(x->b, v[i]);
    if (!ry_type_equal(t, x->rt[i])) {
      char a[128], c[128];
      return shlo_xfail(x, RY_ERR_UNSUPPORTED, "result %d is written %s; ryft's op gives %s", i, ry_type_str(x->rt[i], a, sizeof a),
                   ry_type_str(t, c, sizeof c));
    }
  }
  return shlo_bind_results(x->im, x->b, x->sc, x->op, n, v);
}

static bool emit(X *x, ry_op op, int n, const ry_value *in, ry_attrs *a) {
  ry_value out[1];
  int k = ryb_emit(x->b, x->loc, op, n, in, a, x->n_res, x->rt, 0, NULL, out);
  if (!k) return false;
  return shlo_finish(x, 1, out);
}

bool shlo_finish1(X *x, ry_value v) { return ryb_ok(x->b) && shlo_finish(x, 1, &v); }

/* ---- elementwise ---- */

static const struct {
  const char *name;
  ry_op op;
} k_plain[] = {
    {"stablehlo.negate", RY_OP_NEG},
    {"stablehlo.abs", RY_OP_ABS},
    {"stablehlo.sign", RY_OP_SIGN},
    {"stablehlo.exponential", RY_OP_EXP},
    {"stablehlo.log", RY_OP_LOG},
    {"stablehlo.log_plus_one", RY_OP_LOG1P},
    {"stablehlo.exponential_minus_one", RY_OP_EXPM1},
    {"stablehlo.sqrt", RY_OP_SQRT},
    {"stablehlo.rsqrt", RY_OP_RSQRT},
    {"stablehlo.cbrt", RY_OP_CBRT},
    {"stablehlo.sine", RY_OP_SIN},
    {"stablehlo.cosine", RY_OP_COS},
    {"stablehlo.tan", RY_OP_TAN},
    {"chlo.tan", RY_OP_TAN},
    {"stablehlo.tanh", RY_OP_TANH},
    {"stablehlo.logistic", RY_OP_LOGISTIC},
    {"chlo.erf", RY_OP_ERF},
    {"chlo.erf_inv", RY_OP_ERF_INV},
    {"stablehlo.floor", RY_OP_FLOOR},
    {"stablehlo.ceil", RY_OP_CEIL},
    {"stablehlo.round_nearest_afz", RY_OP_ROUND},
    {"stablehlo.round_nearest_even", RY_OP_ROUND_EVEN},
    {"stablehlo.is_finite", RY_OP_IS_FINITE},
    {"stablehlo.not", RY_OP_NOT},
    {"stablehlo.popcnt", RY_OP_POPCNT},
    {"stablehlo.count_leading_zeros", RY_OP_CLZ},
    {"stablehlo.add", RY_OP_ADD},
    {"stablehlo.subtract", RY_OP_SUB},
    {"stablehlo.multiply", RY_OP_MUL},
    {"stablehlo.divide", RY_OP_DIV},
    {"stablehlo.remainder", RY_OP_REM},
    {"stablehlo.power", RY_OP_POW},
    {"stablehlo.maximum", RY_OP_MAX},
    {"stablehlo.minimum", RY_OP_MIN},
    {"stablehlo.atan2", RY_OP_ATAN2},
    {"stablehlo.and", RY_OP_AND},
    {"stablehlo.or", RY_OP_OR},
    {"stablehlo.xor", RY_OP_XOR},
    {"stablehlo.shift_left", RY_OP_SHL},
    {"stablehlo.shift_right_logical", RY_OP_SHR_LOGICAL},
    {"stablehlo.shift_right_arithmetic", RY_OP_SHR_ARITH},
    {"stablehlo.select", RY_OP_SELECT},
    {"stablehlo.clamp", RY_OP_CLAMP},
    {"stablehlo.convert", RY_OP_CONVERT},
    {"stablehlo.bitcast_convert", RY_OP_BITCAST},
    {"stablehlo.reshape", RY_OP_RESHAPE},
    {"stablehlo.dynamic_update_slice", RY_OP_DYNAMIC_UPDATE_SLICE},
};

static bool c_compare(X *x) {
  static const char *dirs[RY_CMP_COUNT] = {"EQ", "NE", "LT", "LE", "GT", "GE"};
  shlo_span w = {0};
  const shlo_span *s = shlo_attr(x, "comparison_direction", NULL);
  if (s) w = shlo_enum_word(*s);
  else if (x->op->n_word) w = x->op->word[0];
  ry_attrs a;
  memset(&a, 0, sizeof a);
  int d = -1;
  for (int i = 0; i < RY_CMP_COUNT; i++)
    if (shlo_span_is(w, dirs[i])) d = i;
  if (d < 0) return shlo_xfail(x, RY_ERR_PARSE, "missing or unknown comparison direction");
  a.compare.dir = (ry_cmp)d;
  return emit(x, RY_OP_COMPARE, x->n_in, x->in, &a);
}

static bool c_constant(X *x) {
  const shlo_span *s = shlo_attr(x, "value", NULL);
  if (!s && x->op->n_word) s = &x->op->word[0];
  if (!s) return shlo_xfail(x, RY_ERR_PARSE, "missing value");
  if (x->n_res != 1) return shlo_xfail(x, RY_ERR_PARSE, "a constant has one result");
  ry_status err = NULL;
  ry_array *arr = shlo_dense(*s, x->rt[0], &err);
  if (!arr) {
    shlo_xfail(x, ry_status_code(err), "%s", ry_status_message(err));
    ry_status_free(err);
    return false;
  }
  ry_value v = ry_constant_(x->b, x->loc, arr);
  ry_array_release(arr);
  return shlo_finish1(x, v);
}

/* ---- shape ops ---- */

static bool c_iota(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!need_int(x, "dim", "iota_dimension", &a.iota.dim)) return false;
  return emit(x, RY_OP_IOTA, 0, NULL, &a);
}

static bool c_broadcast(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!shlo_need_axes(x, "dims", "broadcast_dimensions", &a.broadcast.dims)) return false;
  return emit(x, RY_OP_BROADCAST, x->n_in, x->in, &a);
}

static bool c_transpose(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!shlo_need_axes(x, "dims", "permutation", &a.transpose.perm)) return false;
  return emit(x, RY_OP_TRANSPOSE, x->n_in, x->in, &a);
}

static bool c_reverse(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!shlo_need_axes(x, "dims", "dimensions", &a.reverse.dims)) return false;
  return emit(x, RY_OP_REVERSE, x->n_in, x->in, &a);
}

static bool c_concatenate(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!need_int(x, "dim", "dimension", &a.concatenate.dim)) return false;
  return emit(x, RY_OP_CONCATENATE, x->n_in, x->in, &a);
}

static bool c_dynamic_slice(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!shlo_need_axes(x, "sizes", "slice_sizes", &a.dynamic_slice.sizes)) return false;
  return emit(x, RY_OP_DYNAMIC_SLICE, x->n_in, x->in, &a);
}

static bool c_pad(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (!shlo_need_axes(x, "low", "edge_padding_low", &a.pad.low) || !shlo_need_axes(x, "high", "edge_padding_high", &a.pad.high) ||
      !shlo_need_axes(x, "interior", "interior_padding", &a.pad.interior))
    return false;
  return emit(x, RY_OP_PAD, x->n_in, x->in, &a);
}

/* pretty `[0:2, 1:5:2]` or generic start_indices/limit_indices/strides */
static bool c_slice(X *x) {
  ry_attrs a;
  memset(&a, 0, sizeof a);
  if (shlo_attr(x, "start_indices", NULL)) {
    if (!shlo_need_axes(x, "start_indices", NULL, &a.slice.start) || !shlo_need_axes(x, "limit_indices", NULL, &a.slice.limit) ||
        !shlo_need_axes(x, "strides", NULL, &a.slice.stride))
      return false;
    return emit(x, RY_OP_SLICE, x->n_in, x->in, &a);
  }
  if (!x->op->n_word) return shlo_xfail(x, RY_ERR_PARSE, "missing slice bounds");
  shlo_span w = x->op->word[0];
  const char *p = w.p, *e = w.p + w.n;
  if (p >= e || *p != '[') return shlo_xfail(x, RY_ERR_PARSE, "malformed slice bounds");
  p++;
  int d = 0;
  while (p < e && *p != ']') {
    int64_t v[3] = {0, 0, 1};
    int k = 0;
    while (p < e && *p != ',' && *p != ']') {
      while (p < e && *p == ' ') p++;
      char buf[32];
      int n = 0;
      while (p < e && n < 31 && ((*p >= '0' && *p <= '9') || *p == '-')) buf[n++] = *p++;
      buf[n] = 0;
      if (!n || k > 2) return shlo_xfail(x, RY_ERR_PARSE, "malformed slice bounds");
      v[k++] = strtoll(buf, NULL, 10);
      while (p < e && *p == ' ') p++;
      if (p < e && *p == ':') p++;
    }
    if (k < 2 || d >= RY_MAX_RANK) return shlo_xfail(x, RY_ERR_PARSE, "malformed slice bounds");
    a.slice.start.v[d] = v[0];
    a.slice.limit.v[d] = v[1];
    a.slice.stride.v[d] = v[2];
    d++;
    if (p < e && *p == ',') p++;
  }
  a.slice.start.n = a.slice.limit.n = a.slice.stride.n = d;
  return emit(x, RY_OP_SLICE, x->n_in, x->in, &a);
}

/* ---- regions by their shape ---- */

/* The op of region r that defines `name` (NULL: a block argument or outside). */
const shlo_op *shlo_def_in(const shlo_region *r, shlo_span name) {
  shlo_span base = name;
  for (int i = 0; i < name.n; i++)
    if (name.p[i] == '#') base.n = i;
  for (int i = 0; i < r->n_op; i++)
    for (int k = 0; k < r->op[i]->n_resg; k++) {
      shlo_span rn = r->op[i]->resg[k];
      if (rn.n == base.n && memcmp(rn.p, base.p, (size_t)base.n) == 0) return r->op[i];
    }
  return NULL;
}

int shlo_arg_index(const shlo_region *r, const shlo_span *names, int n_names, shlo_span name) {
  (void)r;
  for (int i = 0; i < n_names; i++)
    if (names[i].n == name.n && memcmp(names[i].p, name.p, (size_t)name.n) == 0) return i;
  return -1;
}

const shlo_op *shlo_region_ret(const shlo_region *r) { return r->n_op ? r->op[r->n_op - 1] : NULL; }

/* The reduction a body computes on (arg a, arg b): `return op(a, b)`. */
bool shlo_body_kind(const shlo_region *r, int a, int bb, shlo_span *opname) {
  const shlo_op *ret = shlo_region_ret(r);
  if (!ret || ret->n_opd < 1) return false;
  const shlo_op *d = shlo_def_in(r, ret->opd[0]);
  if (!d) return false;
  if (shlo_span_is(d->name, "stablehlo.select")) {
    /* IEEE maximum/minimum spelled out with selects (as ryft writes them):
     * the first ordering comparison of the two arguments says which */
    for (int i = 0; i < r->n_op; i++) {
      const shlo_op *o = r->op[i];
      if (!shlo_span_is(o->name, "stablehlo.compare") || o->n_opd != 2) continue;
      int c0 = shlo_arg_index(r, r->arg_name, r->n_arg, o->opd[0]), c1 = shlo_arg_index(r, r->arg_name, r->n_arg, o->opd[1]);
      if (!((c0 == a && c1 == bb) || (c0 == bb && c1 == a))) continue;
      shlo_span w = o->n_word ? o->word[0] : (shlo_span){0};
      const shlo_span *cd = shlo_kv_get(o, "comparison_direction");
      if (cd) w = shlo_enum_word(*cd);
      bool gt = shlo_span_is(w, "GT"), lt = shlo_span_is(w, "LT");
      if (!gt && !lt) continue;
      static const char mx[] = "stablehlo.maximum", mn[] = "stablehlo.minimum";
      bool is_max = gt == (c0 == a);
      *opname = (shlo_span){is_max ? mx : mn, (int)strlen(is_max ? mx : mn)};
      return true;
    }
    return false;
  }
  if (d->n_opd != 2) return false;
  int i0 = shlo_arg_index(r, r->arg_name, r->n_arg, d->opd[0]), i1 = shlo_arg_index(r, r->arg_name, r->n_arg, d->opd[1]);
  if (!((i0 == a && i1 == bb) || (i0 == bb && i1 == a))) return false;
  *opname = d->name;
  return true;
}

bool shlo_kind_of(shlo_span name, ry_dtype d, ry_reduce_kind *k) {
  bool bl = d == RY_BOOL;
  if (shlo_span_is(name, "stablehlo.add")) *k = bl ? RY_OR : RY_SUM;
  else if (shlo_span_is(name, "stablehlo.multiply")) *k = bl ? RY_AND : RY_PROD;
  else if (shlo_span_is(name, "stablehlo.maximum")) *k = bl ? RY_OR : RY_MAX;
  else if (shlo_span_is(name, "stablehlo.minimum")) *k = bl ? RY_AND : RY_MIN;
  else if (shlo_span_is(name, "stablehlo.and")) *k = RY_AND;
  else if (shlo_span_is(name, "stablehlo.or")) *k = RY_OR;
  else return false;
  return true;
}

/* Whether the constant c is kind k's identity. */
bool shlo_is_identity(const ry_array *c, ry_reduce_kind k) {
  if (!c || ry_shape_numel(c->type.shape) != 1) return false;
  ry_dtype d = c->type.dtype;
  if (ry_dtype_is_float(d)) {
    double v = ry__load_f64(d, c->data, 0);
    switch (k) {
    case RY_SUM: return v == 0;
    case RY_PROD: return v == 1;
    case RY_MAX: return isinf(v) && v < 0;
    case RY_MIN: return isinf(v) && v > 0;
    default: return false;
    }
  }
  int64_t v = ry__load_i64(d, c->data, 0);
  int bits = (int)(8 * ry_dtype_size(d));
  bool sg = ry_dtype_is_signed(d);
  int64_t hi = d == RY_BOOL ? 1 : sg ? (int64_t)((UINT64_C(1) << (bits - 1)) - 1) : bits >= 64 ? -1 : (int64_t)((UINT64_C(1) << bits) - 1);
  int64_t lo = d == RY_BOOL ? 0 : sg ? -hi - 1 : 0;
  switch (k) {
  case RY_SUM: case RY_OR: return v == 0;
  case RY_PROD: return v == 1;
  case RY_MAX: return v == lo;
  case RY_MIN: return v == hi;
  case RY_AND: return d == RY_BOOL ? v == 1 : (v == -1 || v == hi);
  default: return false;
  }
}

static const ry_op k_combine[RY_REDUCE_COUNT] = {
    [RY_SUM] = RY_OP_ADD, [RY_PROD] = RY_OP_MUL, [RY_MAX] = RY_OP_MAX, [RY_MIN] = RY_OP_MIN, [RY_AND] = RY_OP_AND, [RY_OR] = RY_OP_OR,
};

/* r op= broadcast(init) when init is not the identity. */
ry_value shlo_with_init(X *x, ry_value r, ry_value init, ry_reduce_kind k) {
  if (shlo_is_identity(shlo_const_of(x->b, init), k)) return r;
  ry_value bi = ry_broadcast_in_dim_(x->b, x->loc, init, ry_value_shape(x->b, r), RY_NO_AXES);
  ry_value ops[2] = {r, bi};
  return ryb_emit1(x->b, x->loc, k_combine[k], 2, ops, NULL, NULL);
}

static bool c_argminmax(X *x, const shlo_region *r, ry_axes dims) {
  /* (x, iota along the axis) with a body that compares the values */
  if (dims.n != 1) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a variadic reduce over %d dimensions", dims.n);
  int32_t node = x->b->g->values[x->in[1].id].node;
  if (node < 0 || x->b->g->nodes[node].op != RY_OP_IOTA || x->b->g->nodes[node].attrs.iota.dim != dims.v[0])
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a variadic reduce that is not argmax/argmin (its second operand is not an iota along the reduced dimension)");
  int dir = 0;
  for (int i = 0; i < r->n_op && !dir; i++) {
    const shlo_op *o = r->op[i];
    if (!shlo_span_is(o->name, "stablehlo.compare") || o->n_opd != 2) continue;
    int a = shlo_arg_index(r, r->arg_name, r->n_arg, o->opd[0]), c = shlo_arg_index(r, r->arg_name, r->n_arg, o->opd[1]);
    shlo_span w = o->n_word ? o->n_word && o->word[0].n ? o->word[0] : o->word[0] : (shlo_span){0};
    const shlo_span *cd = shlo_kv_get(o, "comparison_direction");
    if (cd) w = shlo_enum_word(*cd);
    bool gt = shlo_span_is(w, "GT") || shlo_span_is(w, "GE"), lt = shlo_span_is(w, "LT") || shlo_span_is(w, "LE");
    if (a == 0 && c == 2) dir = gt ? 1 : lt ? -1 : 0;
    else if (a == 2 && c == 0) dir = gt ? -1 : lt ? 1 : 0;
  }
  if (!dir) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a variadic reduce whose body is not argmax/argmin");
  ry_value out[2];
  out[0] = ry_reduce_(x->b, x->loc, x->in[0], dir > 0 ? RY_MAX : RY_MIN, dims);
  out[1] = dir > 0 ? ry_argmax_(x->b, x->loc, x->in[0], (int)dims.v[0], x->rt[1].dtype)
                   : ry_argmin_(x->b, x->loc, x->in[0], (int)dims.v[0], x->rt[1].dtype);
  return ryb_ok(x->b) && shlo_finish(x, 2, out);
}

static bool c_reduce(X *x) {
  ry_axes dims;
  if (!shlo_need_axes(x, "dimensions", NULL, &dims)) return false;
  int k = x->n_in / 2;
  if (x->n_in % 2 || k < 1) return shlo_xfail(x, RY_ERR_PARSE, "expects inputs and as many init values");
  const shlo_region *r = x->op->n_reg ? x->op->reg[0] : NULL;
  shlo_span opname = {0};
  if (k == 1) {
    if (x->op->n_word >= 2 && shlo_span_is(x->op->word[0], "applies")) opname = x->op->word[1];
    else if (!r || !shlo_body_kind(r, 0, 1, &opname)) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a reduce body that is not one binary op");
    ry_reduce_kind kind;
    if (!shlo_kind_of(opname, ry_value_dtype(x->b, x->in[0]), &kind))
      return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a reduce body %.*s", opname.n, opname.p);
    ry_value v = ry_reduce_(x->b, x->loc, x->in[0], kind, dims);
    return shlo_finish1(x, shlo_with_init(x, v, x->in[1], kind));
  }
  if (k == 2 && r && r->n_arg == 4 && x->n_res == 2) return c_argminmax(x, r, dims);
  return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a reduce of %d operands", k);
}

/* ---- contractions ---- */

/* `[0, 1] x [0, 1]` */
static bool pair_axes(shlo_span s, ry_axes *l, ry_axes *r) {
  int i = 0;
  while (i < s.n && s.p[i] != ']') i++;
  if (i >= s.n) return false;
  shlo_span a = {s.p, i + 1};
  int j = i + 1;
  while (j < s.n && s.p[j] != '[') j++;
  shlo_span b = {s.p + j, s.n - j};
  return j < s.n && shlo_axes(a, l) && shlo_axes(b, r);
}

static bool c_dot(X *x) {
  if (x->n_in != 2) return shlo_xfail(x, RY_ERR_PARSE, "expects 2 operands");
  ry_dot_dims d;
  memset(&d, 0, sizeof d);
  const shlo_span *s;
  if ((s = shlo_attr(x, "dot_dimension_numbers", NULL))) {
    shlo_span f;
    if (shlo_field(*s, "lhs_batching_dimensions", &f) && !shlo_axes(f, &d.lhs_batch)) return shlo_xfail(x, RY_ERR_PARSE, "bad dims");
    if (shlo_field(*s, "rhs_batching_dimensions", &f) && !shlo_axes(f, &d.rhs_batch)) return shlo_xfail(x, RY_ERR_PARSE, "bad dims");
    if (shlo_field(*s, "lhs_contracting_dimensions", &f) && !shlo_axes(f, &d.lhs_contract))
      return shlo_xfail(x, RY_ERR_PARSE, "bad dims");
    if (shlo_field(*s, "rhs_contracting_dimensions", &f) && !shlo_axes(f, &d.rhs_contract))
      return shlo_xfail(x, RY_ERR_PARSE, "bad dims");
  } else if (shlo_span_is(x->op->name, "stablehlo.dot")) {
    int lr = ry_value_shape(x->b, x->in[0]).rank;
    d.lhs_contract = (ry_axes){1, {lr - 1}};
    d.rhs_contract = (ry_axes){1, {0}};
  } else {
    if ((s = shlo_attr(x, "batching_dims", NULL)) && !pair_axes(*s, &d.lhs_batch, &d.rhs_batch))
      return shlo_xfail(x, RY_ERR_PARSE, "malformed batching_dims");
    if ((s = shlo_attr(x, "contracting_dims", NULL)) && !pair_axes(*s, &d.lhs_contract, &d.rhs_contract))
      return shlo_xfail(x, RY_ERR_PARSE, "malformed contracting_dims");
  }
  if (x->n_res != 1) return shlo_xfail(x, RY_ERR_PARSE, "one result");
  return shlo_finish1(x, ry_dot_general_(x->b, x->loc, x->in[0], x->in[1], d, x->rt[0].dtype));
}

/* `[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]` */
static bool conv_labels(shlo_span s, ry_axes out[3]) {
  const char *p = s.p, *e = s.p + s.n;
  for (int l = 0; l < 3; l++) {
    while (p < e && *p != '[') p++;
    if (p >= e) return false;
    p++;
    int pos = 0;
    ry_axes *a = &out[l];
    memset(a, 0, sizeof *a);
    bool seen[RY_MAX_RANK] = {false};
    while (p < e && *p != ']') {
      while (p < e && *p == ' ') p++;
      int slot;
      char ch = p < e ? *p : 0;
      if (ch >= '0' && ch <= '9') slot = 2 + (ch - '0');
      else if ((l != 1 && ch == 'b') || (l == 1 && ch == 'o')) slot = 0;
      else if ((l != 1 && ch == 'f') || (l == 1 && ch == 'i')) slot = 1;
      else return false;
      p++;
      if (slot >= RY_MAX_RANK || pos >= RY_MAX_RANK || seen[slot]) return false;
      seen[slot] = true;
      a->v[slot] = pos++;
      while (p < e && *p == ' ') p++;
      if (p < e && *p == ',') p++;
    }
    a->n = pos;
    for (int i = 0; i < pos; i++)
      if (!seen[i]) return false;
  }
  return true;
}

static bool c_conv(X *x) {
  if (x->n_in != 2 || x->n_res != 1) return shlo_xfail(x, RY_ERR_PARSE, "expects 2 operands and 1 result");
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  ry_axes lab[3];
  const shlo_span *s = shlo_attr(x, "dim_numbers", "dimension_numbers");
  if (!s || !conv_labels(*s, lab)) return shlo_xfail(x, RY_ERR_PARSE, "missing or malformed dimension numbers");
  d.input_dims = lab[0];
  d.kernel_dims = lab[1];
  d.output_dims = lab[2];
  int ns = d.input_dims.n - 2;
  const shlo_span *win = shlo_attr(x, "window", NULL);
  shlo_span f;
  ry_axes rev = {0, {0}};
  int64_t pad[2 * RY_MAX_RANK];
  int np = 0;
  bool ok = true;
  if (win) {
    if (shlo_field(*win, "stride", &f)) ok &= shlo_axes(f, &d.stride);
    if (shlo_field(*win, "pad", &f)) ok &= shlo_ints(f, pad, 2 * RY_MAX_RANK, &np);
    if (shlo_field(*win, "lhs_dilate", &f)) ok &= shlo_axes(f, &d.lhs_dilation);
    if (shlo_field(*win, "rhs_dilate", &f)) ok &= shlo_axes(f, &d.rhs_dilation);
    if (shlo_field(*win, "reverse", &f)) ok &= shlo_axes(f, &rev);
  } else {
    if ((s = shlo_attr(x, "window_strides", NULL))) ok &= shlo_axes(*s, &d.stride);
    if ((s = shlo_attr(x, "padding", NULL))) ok &= shlo_ints(*s, pad, 2 * RY_MAX_RANK, &np);
    if ((s = shlo_attr(x, "lhs_dilation", NULL))) ok &= shlo_axes(*s, &d.lhs_dilation);
    if ((s = shlo_attr(x, "rhs_dilation", NULL))) ok &= shlo_axes(*s, &d.rhs_dilation);
    if ((s = shlo_attr(x, "window_reversal", NULL))) ok &= shlo_axes(*s, &rev);
  }
  if (!ok) return shlo_xfail(x, RY_ERR_PARSE, "malformed window attributes");
  for (int i = 0; i < rev.n; i++)
    if (rev.v[i]) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "window reversal");
  if (np == 1 && ns > 0) { /* a splat dense<0> */
    for (int i = 1; i < 2 * ns; i++) pad[i] = pad[0];
    np = 2 * ns;
  }
  if (np && np != 2 * ns) return shlo_xfail(x, RY_ERR_PARSE, "padding has %d numbers for %d spatial dimensions", np, ns);
  if (np) {
    d.pad_low.n = d.pad_high.n = ns;
    for (int i = 0; i < ns; i++) {
      d.pad_low.v[i] = pad[2 * i];
      d.pad_high.v[i] = pad[2 * i + 1];
    }
  }
  int64_t fg = 1, bg = 1;
  if ((s = shlo_attr(x, "feature_group_count", NULL)) && !shlo_int(*s, &fg)) return shlo_xfail(x, RY_ERR_PARSE, "bad feature_group_count");
  if ((s = shlo_attr(x, "batch_group_count", NULL)) && !shlo_int(*s, &bg)) return shlo_xfail(x, RY_ERR_PARSE, "bad batch_group_count");
  d.feature_groups = fg;
  d.batch_groups = bg;
  /* every list filled (the attribute is normalized), the written result
   * dtype requested (bf16 x bf16 -> f32 accumulates in f32) */
  ry_axes *lists[5] = {&d.stride, &d.pad_low, &d.pad_high, &d.lhs_dilation, &d.rhs_dilation};
  const int64_t fillv[5] = {1, 0, 0, 1, 1};
  for (int i = 0; i < 5; i++) {
    if (lists[i]->n == 0) {
      lists[i]->n = ns > 0 ? ns : 0;
      for (int k = 0; k < lists[i]->n; k++) lists[i]->v[k] = fillv[i];
    }
    if (lists[i]->n != ns) return shlo_xfail(x, RY_ERR_PARSE, "window lists need %d entries", ns);
  }
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.conv = d;
  return emit(x, RY_OP_CONVOLUTION, 2, x->in, &a);
}

/* ---- indexing ---- */

/* A dimension-numbers field, from the struct attribute or the op itself. */
static bool dn_axes(X *x, const shlo_span *st, const char *name, ry_axes *a, bool required) {
  shlo_span f;
  memset(a, 0, sizeof *a);
  const shlo_span *s = shlo_kv_get(x->op, name);
  if (s) f = *s;
  else if (!st || !shlo_field(*st, name, &f)) return required ? shlo_xfail(x, RY_ERR_PARSE, "missing %s", name) : true;
  if (!shlo_axes(f, a)) return shlo_xfail(x, RY_ERR_PARSE, "malformed %s", name);
  return true;
}

/* Batching dimensions as ordinary ones: each pair (operand dim ob, index
 * dim ib) adds to the indices an iota component along ib, which picks the
 * matching operand slice; ob joins `map` and `collapsed` (kept sorted).
 * *idx and *ivd are updated. */
static bool unbatch(X *x, ry_value *idx, int64_t *ivd, const ry_axes *ob, const ry_axes *ib, ry_axes *map, ry_axes *collapsed) {
  if (ob->n != ib->n) return shlo_xfail(x, RY_ERR_PARSE, "operand and index batching dimensions differ in number");
  if (!ob->n) return true;
  ry_type it = ry_value_type(x->b, *idx);
  int64_t v = *ivd;
  if (v < 0 || v > it.shape.rank || it.shape.rank >= RY_MAX_RANK) return shlo_xfail(x, RY_ERR_PARSE, "bad index_vector_dim");
  if (v == it.shape.rank) {
    ry_shape ns = it.shape;
    ns.dims[ns.rank++] = 1;
    *idx = ry_reshape_(x->b, x->loc, *idx, ns);
    it.shape = ns;
  }
  ry_value parts[1 + RY_MAX_RANK];
  parts[0] = *idx;
  ry_shape one = it.shape;
  one.dims[v] = 1;
  for (int k = 0; k < ob->n; k++) {
    if (ib->v[k] < 0 || ib->v[k] >= it.shape.rank || ib->v[k] == v) return shlo_xfail(x, RY_ERR_PARSE, "bad batching dimension");
    parts[1 + k] = ry_iota_(x->b, x->loc, it.dtype, one, (int)ib->v[k]);
    if (map->n >= RY_MAX_RANK || collapsed->n >= RY_MAX_RANK) return shlo_xfail(x, RY_ERR_PARSE, "too many dimensions");
    map->v[map->n++] = ob->v[k];
    collapsed->v[collapsed->n++] = ob->v[k];
  }
  *idx = ry_concatenate_(x->b, x->loc, 1 + ob->n, parts, (int)v);
  *ivd = v;
  for (int i = 1; i < collapsed->n; i++)
    for (int j = i; j > 0 && collapsed->v[j - 1] > collapsed->v[j]; j--) {
      int64_t t = collapsed->v[j];
      collapsed->v[j] = collapsed->v[j - 1];
      collapsed->v[j - 1] = t;
    }
  return ryb_ok(x->b);
}

static bool c_gather(X *x) {
  if (x->n_in != 2 || x->n_res != 1) return shlo_xfail(x, RY_ERR_PARSE, "expects 2 operands and 1 result");
  const shlo_span *st = shlo_attr(x, "dimension_numbers", NULL);
  ry_gather_dims d;
  ry_axes b1, b2, ivd;
  if (!dn_axes(x, st, "offset_dims", &d.offset_dims, false) ||
      !dn_axes(x, st, "collapsed_slice_dims", &d.collapsed_slice_dims, false) ||
      !dn_axes(x, st, "start_index_map", &d.start_index_map, true) || !dn_axes(x, st, "index_vector_dim", &ivd, true) ||
      !dn_axes(x, st, "operand_batching_dims", &b1, false) || !dn_axes(x, st, "start_indices_batching_dims", &b2, false) ||
      !shlo_need_axes(x, "slice_sizes", NULL, &d.slice_sizes))
    return false;
  if (ivd.n != 1) return shlo_xfail(x, RY_ERR_PARSE, "malformed index_vector_dim");
  d.index_vector_dim = ivd.v[0];
  ry_value idx = x->in[1];
  if (!unbatch(x, &idx, &d.index_vector_dim, &b1, &b2, &d.start_index_map, &d.collapsed_slice_dims)) return false;
  return shlo_finish1(x, ry_gather_(x->b, x->loc, x->in[0], idx, &d));
}

static bool c_scatter(X *x) {
  if (x->n_in != 3 || x->n_res != 1) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "scatter of %d operands", x->n_in);
  const shlo_span *st = shlo_attr(x, "scatter_dimension_numbers", NULL);
  ry_scatter_dims d;
  memset(&d, 0, sizeof d);
  ry_axes b1, b2, ivd;
  if (!dn_axes(x, st, "update_window_dims", &d.update_window_dims, false) ||
      !dn_axes(x, st, "inserted_window_dims", &d.inserted_window_dims, false) ||
      !dn_axes(x, st, "scatter_dims_to_operand_dims", &d.scatter_dims_to_operand_dims, true) ||
      !dn_axes(x, st, "index_vector_dim", &ivd, true) || !dn_axes(x, st, "input_batching_dims", &b1, false) ||
      !dn_axes(x, st, "scatter_indices_batching_dims", &b2, false))
    return false;
  if (ivd.n != 1) return shlo_xfail(x, RY_ERR_PARSE, "malformed index_vector_dim");
  d.index_vector_dim = ivd.v[0];
  ry_value idx = x->in[1];
  if (!unbatch(x, &idx, &d.index_vector_dim, &b1, &b2, &d.scatter_dims_to_operand_dims, &d.inserted_window_dims))
    return false;
  const shlo_region *r = x->op->n_reg ? x->op->reg[0] : NULL;
  if (!r || r->n_arg != 2) return shlo_xfail(x, RY_ERR_PARSE, "needs a body of two arguments");
  const shlo_op *ret = shlo_region_ret(r);
  shlo_span opname;
  ry_reduce_kind k;
  if (ret && ret->n_opd == 1 && shlo_arg_index(r, r->arg_name, r->n_arg, ret->opd[0]) == 1) d.kind = RY_SCATTER_REPLACE;
  else if (shlo_body_kind(r, 0, 1, &opname) && shlo_kind_of(opname, x->rt[0].dtype, &k) && k <= RY_MIN)
    d.kind = k == RY_SUM ? RY_SCATTER_ADD : k == RY_PROD ? RY_SCATTER_MUL : k == RY_MAX ? RY_SCATTER_MAX : RY_SCATTER_MIN;
  else return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a scatter body that is neither a replacement nor one binary op");
  return shlo_finish1(x, ry_scatter_(x->b, x->loc, x->in[0], idx, x->in[2], &d));
}

/* The block argument a comparator operand comes from, through the selects
 * and conversions JAX's total order adds. */
static int trace_arg(const shlo_region *r, shlo_span v) {
  for (int step = 0; step < 16; step++) {
    int a = shlo_arg_index(r, r->arg_name, r->n_arg, v);
    if (a >= 0) return a;
    const shlo_op *d = shlo_def_in(r, v);
    if (!d || d->n_opd < 1) return -1;
    if (shlo_span_is(d->name, "stablehlo.select") && d->n_opd == 3) v = d->opd[2];
    else if (shlo_span_is(d->name, "stablehlo.convert") || shlo_span_is(d->name, "stablehlo.bitcast_convert")) v = d->opd[0];
    else return -1;
  }
  return -1;
}

static bool c_sort(X *x) {
  int64_t dim = -1, stable = 0;
  const shlo_span *s;
  if ((s = shlo_attr(x, "dimension", NULL)) && !shlo_int(*s, &dim)) return shlo_xfail(x, RY_ERR_PARSE, "bad dimension");
  if ((s = shlo_attr(x, "is_stable", NULL)) && !shlo_int(*s, &stable)) stable = 1;
  const shlo_region *r = x->op->n_reg ? x->op->reg[0] : NULL;
  if (!r || r->n_arg != 2 * x->n_in) return shlo_xfail(x, RY_ERR_PARSE, "needs a comparator of %d arguments", 2 * x->n_in);
  /* the first ordering comparison of the two elements of one operand (JAX
   * canonicalizes -0 and NaN with selects first; ryft's own total order adds
   * NaN terms after it) */
  int a = -1, c = -1;
  bool lt = false, gt = false;
  for (int i = 0; i < r->n_op && a < 0; i++) {
    const shlo_op *cmp = r->op[i];
    if (!shlo_span_is(cmp->name, "stablehlo.compare") || cmp->n_opd != 2) continue;
    shlo_span w = cmp->n_word ? cmp->word[0] : (shlo_span){0};
    const shlo_span *cd = shlo_kv_get(cmp, "comparison_direction");
    if (cd) w = shlo_enum_word(*cd);
    int a0 = trace_arg(r, cmp->opd[0]), c0 = trace_arg(r, cmp->opd[1]);
    lt = shlo_span_is(w, "LT") || shlo_span_is(w, "LE");
    gt = shlo_span_is(w, "GT") || shlo_span_is(w, "GE");
    if (a0 < 0 || c0 < 0 || a0 / 2 != c0 / 2 || a0 == c0 || (!lt && !gt)) continue;
    a = a0;
    c = c0;
  }
  if (a < 0 || c < 0) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a sort comparator ryft does not recognise");
  if (a / 2 != 0) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a sort keyed on operand %d (ryft sorts by the first)", a / 2);
  bool desc = gt;
  if (a % 2) desc = !desc;
  if (dim < 0) dim = ry_value_shape(x->b, x->in[0]).rank - 1;
  ry_value out[RY_MAX_OUTPUTS > 64 ? 64 : RY_MAX_OUTPUTS];
  if (x->n_in > 64) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "sort of %d operands", x->n_in);
  if (!ry_sort_(x->b, x->loc, x->n_in, x->in, (int)dim, 1, desc, (int)stable, out)) return false;
  return shlo_finish(x, x->n_in, out);
}

/* ---- dispatch ---- */

static bool dispatch(X *x) {
  const shlo_span nm = x->op->name;
  if (shlo_span_is(nm, "stablehlo.bitcast_convert") && x->n_in == 1 && x->n_res == 1 &&
      (ry_dtype_size(ry_value_dtype(x->b, x->in[0])) != ry_dtype_size(x->rt[0].dtype) ||
       (ry_value_dtype(x->b, x->in[0]) == RY_BOOL) != (x->rt[0].dtype == RY_BOOL)))
    return shlo_c_bitcast_resize(x);
  if (shlo_span_is(nm, "stablehlo.rng_bit_generator")) return shlo_c_rng_bit_generator(x);
  if (shlo_span_is(nm, "stablehlo.reduce_precision")) return shlo_c_reduce_precision(x);
  if (shlo_span_is(nm, "stablehlo.triangular_solve")) return shlo_c_triangular_solve(x);
  for (size_t i = 0; i < sizeof k_plain / sizeof k_plain[0]; i++) {
    if (!shlo_span_is(nm, k_plain[i].name)) continue;
    ry_op op = k_plain[i].op;
    ry_dtype d = x->n_in ? ry_value_dtype(x->b, x->in[0]) : RY_F32;
    /* StableHLO's i1 arithmetic is logic; unsigned negation wraps around */
    if (d == RY_BOOL && op == RY_OP_ADD) op = RY_OP_OR;
    if (d == RY_BOOL && op == RY_OP_MUL) op = RY_OP_AND;
    if (op == RY_OP_NEG && (d == RY_U8 || d == RY_U16 || d == RY_U32 || d == RY_U64) && x->n_in == 1) {
      ry_type t = ry_value_type(x->b, x->in[0]);
      ry_value ops[2] = {ry_full_(x->b, x->loc, t.dtype, t.shape, 0), x->in[0]};
      return emit(x, RY_OP_SUB, 2, ops, NULL);
    }
    return emit(x, op, x->n_in, x->in, NULL);
  }
  if (shlo_span_is(nm, "stablehlo.compare")) return c_compare(x);
  if (shlo_span_is(nm, "stablehlo.constant")) return c_constant(x);
  if (shlo_span_is(nm, "stablehlo.iota")) return c_iota(x);
  if (shlo_span_is(nm, "stablehlo.broadcast_in_dim")) return c_broadcast(x);
  if (shlo_span_is(nm, "stablehlo.transpose")) return c_transpose(x);
  if (shlo_span_is(nm, "stablehlo.reverse")) return c_reverse(x);
  if (shlo_span_is(nm, "stablehlo.concatenate")) return c_concatenate(x);
  if (shlo_span_is(nm, "stablehlo.dynamic_slice")) return c_dynamic_slice(x);
  if (shlo_span_is(nm, "stablehlo.pad")) return c_pad(x);
  if (shlo_span_is(nm, "stablehlo.slice")) return c_slice(x);
  if (shlo_span_is(nm, "stablehlo.reduce")) return c_reduce(x);
  if (shlo_span_is(nm, "stablehlo.reduce_window")) return shlo_c_reduce_window(x);
  if (shlo_span_is(nm, "stablehlo.select_and_scatter")) return shlo_c_select_and_scatter(x);
  if (shlo_span_is(nm, "stablehlo.dot_general") || shlo_span_is(nm, "stablehlo.dot")) return c_dot(x);
  if (shlo_span_is(nm, "stablehlo.convolution")) return c_conv(x);
  if (shlo_span_is(nm, "stablehlo.gather")) return c_gather(x);
  if (shlo_span_is(nm, "stablehlo.scatter")) return c_scatter(x);
  if (shlo_span_is(nm, "stablehlo.sort")) return c_sort(x);
  if (shlo_span_is(nm, "stablehlo.while")) return shlo_c_while(x);
  if (shlo_span_is(nm, "stablehlo.case")) return shlo_c_case(x, false);
  if (shlo_span_is(nm, "stablehlo.if")) return shlo_c_case(x, true);
  if (shlo_span_is(nm, "func.call") || shlo_span_is(nm, "call")) return shlo_c_call(x);
  if (shlo_span_is(nm, "stablehlo.optimization_barrier")) return shlo_finish(x, x->n_in, x->in);
  if (shlo_span_is(nm, "stablehlo.all_reduce") || shlo_span_is(nm, "stablehlo.all_gather") ||
      shlo_span_is(nm, "stablehlo.reduce_scatter") || shlo_span_is(nm, "stablehlo.collective_broadcast"))
    return shlo_c_collective(x);
  if (shlo_span_is(nm, "sdy.sharding_constraint")) {
    if (x->n_in != 1 || x->op->n_word < 1) return shlo_xfail(x, RY_ERR_PARSE, "expects a value and a sharding");
    ry_value v = shlo_sharded(x->im, x->b, x->op->at, x->op->word[0], x->in[0]);
    return v.id && shlo_finish1(x, v);
  }
  if (shlo_span_is(nm, "stablehlo.custom_call")) {
    const shlo_span *t = shlo_attr(x, "call_target_name", NULL);
    shlo_span tn = t ? *t : x->op->n_word ? x->op->word[0] : (shlo_span){"?", 1};
    const shlo_span *sh = shlo_attr(x, "mhlo.sharding", NULL);
    if (shlo_span_is(tn, "@lapack_strsm_ffi") || shlo_span_is(tn, "@lapack_dtrsm_ffi") ||
        shlo_span_is(tn, "\"lapack_strsm_ffi\"") || shlo_span_is(tn, "\"lapack_dtrsm_ffi\""))
      return shlo_c_lapack_trsm(x);
    if ((shlo_span_is(tn, "\"Sharding\"") || shlo_span_is(tn, "@Sharding")) && sh && x->n_in == 1) {
      /* with_sharding_constraint as GSPMD writes it (and ryft exports it) */
      ry_value v = shlo_sharded(x->im, x->b, x->op->at, *sh, x->in[0]);
      return v.id && shlo_finish1(x, v);
    }
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "custom_call target %.*s is not supported", tn.n > 80 ? 80 : tn.n, tn.p);
  }
  return shlo_xfail(x, RY_ERR_UNSUPPORTED, "op not supported by ryft");
}

bool shlo_convert_op(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op) {
  if (op->name.n > 6 && memcmp(op->name.p, "check.", 6) == 0) return shlo_record_check(im, b, sc, op);
  X x = {.im = im, .b = b, .sc = sc, .op = op, .n_in = op->n_opd, .n_res = shlo_n_results(op), .loc = shlo_loc(im, op->at)};
  x.in = ry__calloc((size_t)x.n_in + 1, sizeof *x.in);
  x.rt = ry__calloc((size_t)x.n_res + 1, sizeof *x.rt);
  bool ok = false;
  if (!x.in || !x.rt) {
    ryb_fail(b, ry__oom());
  } else {
    ok = true;
    for (int i = 0; i < x.n_in && ok; i++) ok = (x.in[i] = shlo_lookup(im, b, sc, op, op->opd[i])).id != 0;
    bool is_ctl = shlo_span_is(op->name, "stablehlo.while") || shlo_span_is(op->name, "stablehlo.case") ||
                  shlo_span_is(op->name, "stablehlo.if") || shlo_span_is(op->name, "func.call") ||
                  shlo_span_is(op->name, "call") || shlo_span_is(op->name, "stablehlo.optimization_barrier");
    if (ok && x.n_res && !(is_ctl && op->n_tout == 0)) ok = shlo_result_types(im, b, op, x.n_res, x.rt);
    if (ok && is_ctl && op->n_tout == 0)
      for (int i = 0; i < x.n_res; i++) x.rt[i] = i < x.n_in ? ry_value_type(b, x.in[i]) : x.rt[i];
    bool had_err = b->err != NULL;
    if (ok) ok = dispatch(&x);
    /* an error from the builder (a shape rule) gets the op's place */
    const char *src = im->m->source ? im->m->source : "";
    if (!had_err && b->err && strncmp(ry_status_message(b->err), src, strlen(src)) != 0 &&
        ry_status_code(b->err) != RY_ERR_OUT_OF_MEMORY) {
      char where[300];
      shlo_where(im->m, op->at, where, sizeof where);
      ry_code code = ry_status_code(b->err);
      if (code == RY_ERR_INVALID_ARGUMENT || code == RY_ERR_VERIFY) {
        /* attribute values the op rejects: the text is wrong */
        ry_status e = ry__err(RY_ERR_PARSE, "%s: %.*s: %s", where, op->name.n, op->name.p, ry_status_message(b->err));
        ry_status_free(b->err);
        b->err = e;
      } else {
        b->err = ry__err_prefix(b->err, "%s: %.*s", where, op->name.n, op->name.p);
      }
    }
  }
  ry__free(x.in, ((size_t)x.n_in + 1) * sizeof *x.in);
  ry__free(x.rt, ((size_t)x.n_res + 1) * sizeof *x.rt);
  return ok && ryb_ok(b);
}
