/* Elementwise kernels: unary and binary math, compare, select, clamp,
 * convert and bitcast_convert.
 *
 * Floats: f16/bf16/f32 are computed with the float functions of <math.h>
 * (expf, ...) on the value widened to float and rounded once on store; f64
 * with the double functions. Integers are computed on int64 views in
 * unsigned arithmetic, so overflow wraps (ry__store_i64 truncates to the
 * dtype's width) and nothing is undefined. */
#include <float.h>
#include <math.h>

#include "interp.h"

/* ---- float unary functions ---- */

static float neg_f(float x) { return -x; }
static double neg_d(double x) { return -x; }
static float rsqrt_f(float x) { return 1.0f / sqrtf(x); }
static double rsqrt_d(double x) { return 1.0 / sqrt(x); }
static float round_even_f(float x) { return rintf(x); } /* default rounding mode: to nearest even */
static double round_even_d(double x) { return rint(x); }

static float erf_inv_f(float x) { return (float)ryx_erf_inv(x); }

typedef struct {
  float (*f)(float);
  double (*d)(double);
} float_fn;

static const float_fn g_unary_float[RY_OP_COUNT] = {
    [RY_OP_NEG] = {neg_f, neg_d},
    [RY_OP_ABS] = {fabsf, fabs},
    [RY_OP_SIGN] = {ryx_signf, ryx_sign},
    [RY_OP_EXP] = {expf, exp},
    [RY_OP_EXP2] = {exp2f, exp2},
    [RY_OP_LOG] = {logf, log},
    [RY_OP_LOG1P] = {log1pf, log1p},
    [RY_OP_EXPM1] = {expm1f, expm1},
    [RY_OP_SQRT] = {sqrtf, sqrt},
    [RY_OP_RSQRT] = {rsqrt_f, rsqrt_d},
    [RY_OP_CBRT] = {cbrtf, cbrt},
    [RY_OP_SIN] = {sinf, sin},
    [RY_OP_COS] = {cosf, cos},
    [RY_OP_TAN] = {tanf, tan},
    [RY_OP_TANH] = {tanhf, tanh},
    [RY_OP_LOGISTIC] = {ryx_logisticf, ryx_logistic},
    [RY_OP_ERF] = {erff, erf},
    [RY_OP_ERF_INV] = {erf_inv_f, ryx_erf_inv},
    [RY_OP_ATANH] = {atanhf, atanh},
    [RY_OP_FLOOR] = {floorf, floor},
    [RY_OP_CEIL] = {ceilf, ceil},
    [RY_OP_ROUND] = {roundf, round},
    [RY_OP_ROUND_EVEN] = {round_even_f, round_even_d},
};

static int popcount64(uint64_t x) {
  int c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}

/* Integer unary op on a value of `bits` width; the result is stored with
 * wraparound. */
static bool int_unary(ry_op op, int64_t x, int bits, int64_t *r) {
  uint64_t u = (uint64_t)x;
  switch (op) {
  case RY_OP_NEG: *r = (int64_t)(0 - u); return true;
  case RY_OP_ABS: *r = x < 0 ? (int64_t)(0 - u) : x; return true;
  case RY_OP_SIGN: *r = (x > 0) - (x < 0); return true;
  case RY_OP_NOT: *r = (int64_t)~u; return true;
  case RY_OP_POPCNT: *r = popcount64(ryx_zext(u, bits)); return true;
  case RY_OP_CLZ: *r = ryx_clz(ryx_zext(u, bits), bits); return true;
  default: return false;
  }
}

static ry_status bad_dtype(const ry_node *n, ry_dtype t) {
  return ry__err(RY_ERR_DTYPE, "%s is not defined for %s", ryg_op_table[n->op].name, ry_dtype_name(t));
}

ry_status ryi_unary(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  ry_dtype t = x->type.dtype;
  int64_t numel = ry_shape_numel(x->type.shape);
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  ry_dtype rt = o->type.dtype;
  if (n->op == RY_OP_IS_FINITE) {
    if (!ry_dtype_is_float(t)) goto bad;
    for (int64_t i = 0; i < numel; i++) ry__store_i64(rt, o->data, i, isfinite(ry__load_f64(t, x->data, i)) ? 1 : 0);
  } else if (ry_dtype_is_float(t)) {
    const float_fn *fn = &g_unary_float[n->op];
    if (!fn->f) goto bad;
    if (t == RY_F64) {
      for (int64_t i = 0; i < numel; i++) ((double *)o->data)[i] = fn->d(((const double *)x->data)[i]);
    } else if (t == RY_F32) { /* the same values as below, without the dtype dispatch per element */
      const float *a = x->data;
      float *r = o->data;
      void (*arr)(const float *, float *, int64_t) = !f->math                ? NULL
                                                     : n->op == RY_OP_EXP ? f->math->exp_f32
                                                     : n->op == RY_OP_ERF ? f->math->erf_f32
                                                                          : NULL;
      if (arr) arr(a, r, numel); /* the frame's math (a cold run: the compiled kernels') */
      else
        for (int64_t i = 0; i < numel; i++) r[i] = fn->f(a[i]);
    } else {
      for (int64_t i = 0; i < numel; i++) ry__store_f64(rt, o->data, i, fn->f((float)ry__load_f64(t, x->data, i)));
    }
  } else if (t == RY_BOOL) {
    if (n->op != RY_OP_NOT) goto bad;
    for (int64_t i = 0; i < numel; i++) ((uint8_t *)o->data)[i] = !((const uint8_t *)x->data)[i];
  } else {
    int bits = ryi_bits(t);
    bool is_signed = ry_dtype_is_signed(t);
    if ((n->op == RY_OP_NEG || n->op == RY_OP_ABS || n->op == RY_OP_SIGN) && !is_signed) goto bad;
    for (int64_t i = 0; i < numel; i++) {
      int64_t r;
      if (!int_unary(n->op, ry__load_i64(t, x->data, i), bits, &r)) goto bad;
      ry__store_i64(rt, o->data, i, r);
    }
  }
  out[0] = o;
  return NULL;
bad:
  ry_array_release(o);
  return bad_dtype(n, t);
}

/* ---- binary ---- */

static float float_binary_f(ry_op op, float a, float b) {
  switch (op) {
  case RY_OP_ADD: return a + b;
  case RY_OP_SUB: return a - b;
  case RY_OP_MUL: return a * b;
  case RY_OP_DIV: return a / b;
  case RY_OP_REM: return fmodf(a, b);
  case RY_OP_POW: return powf(a, b);
  case RY_OP_MAX: return ryx_fmaxf(a, b);
  case RY_OP_MIN: return ryx_fminf(a, b);
  case RY_OP_ATAN2: return atan2f(a, b);
  default: return NAN;
  }
}

static double float_binary_d(ry_op op, double a, double b) {
  switch (op) {
  case RY_OP_ADD: return a + b;
  case RY_OP_SUB: return a - b;
  case RY_OP_MUL: return a * b;
  case RY_OP_DIV: return a / b;
  case RY_OP_REM: return fmod(a, b);
  case RY_OP_POW: return pow(a, b);
  case RY_OP_MAX: return ryx_fmax(a, b);
  case RY_OP_MIN: return ryx_fmin(a, b);
  case RY_OP_ATAN2: return atan2(a, b);
  default: return NAN;
  }
}

/* f32 add, sub, mul, div, max, min as plain loops (the compiler vectorizes
 * them): the values of float_binary_f, without the per-element dispatch.
 * False for the other ops. */
static bool binary_f32(ry_op op, const float *a, const float *b, float *r, int64_t numel) {
  switch (op) {
  case RY_OP_ADD: for (int64_t i = 0; i < numel; i++) r[i] = a[i] + b[i]; return true;
  case RY_OP_SUB: for (int64_t i = 0; i < numel; i++) r[i] = a[i] - b[i]; return true;
  case RY_OP_MUL: for (int64_t i = 0; i < numel; i++) r[i] = a[i] * b[i]; return true;
  case RY_OP_DIV: for (int64_t i = 0; i < numel; i++) r[i] = a[i] / b[i]; return true;
  case RY_OP_MAX: for (int64_t i = 0; i < numel; i++) r[i] = ryx_fmaxf(a[i], b[i]); return true;
  case RY_OP_MIN: for (int64_t i = 0; i < numel; i++) r[i] = ryx_fminf(a[i], b[i]); return true;
  default: return false;
  }
}

static bool float_binary_ok(ry_op op) {
  return op == RY_OP_ADD || op == RY_OP_SUB || op == RY_OP_MUL || op == RY_OP_DIV || op == RY_OP_REM || op == RY_OP_POW ||
         op == RY_OP_MAX || op == RY_OP_MIN || op == RY_OP_ATAN2;
}

/* a, b are the operands' values (sign- or zero-extended per dtype). */
static bool int_binary(ry_op op, int64_t a, int64_t b, ry_dtype t, int64_t *r) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  int bits = ryi_bits(t);
  bool wide_u = t == RY_U64; /* unsigned beyond int64: order and division as unsigned */
  switch (op) {
  case RY_OP_ADD: *r = (int64_t)(ua + ub); return true;
  case RY_OP_SUB: *r = (int64_t)(ua - ub); return true;
  case RY_OP_MUL: *r = (int64_t)(ua * ub); return true;
  case RY_OP_DIV: *r = wide_u ? (int64_t)ryx_udiv(ua, ub) : ryx_idiv(a, b); return true;
  case RY_OP_REM: *r = wide_u ? (int64_t)ryx_urem(ua, ub) : ryx_irem(a, b); return true;
  case RY_OP_POW: *r = ryx_ipow(a, b); return true;
  case RY_OP_MAX: *r = ryi_ikey(t, a) > ryi_ikey(t, b) ? a : b; return true;
  case RY_OP_MIN: *r = ryi_ikey(t, a) < ryi_ikey(t, b) ? a : b; return true;
  case RY_OP_AND: *r = (int64_t)(ua & ub); return true;
  case RY_OP_OR: *r = (int64_t)(ua | ub); return true;
  case RY_OP_XOR: *r = (int64_t)(ua ^ ub); return true;
  case RY_OP_SHL: *r = ryx_shl(a, b, bits); return true;
  case RY_OP_SHR_LOGICAL: *r = ryx_shrl(a, b, bits); return true;
  case RY_OP_SHR_ARITH: *r = ryx_shra(a, b, bits); return true;
  default: return false;
  }
}

ry_status ryi_binary(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *y = in[1];
  ry_dtype t = x->type.dtype;
  int64_t numel = ry_shape_numel(x->type.shape);
  if (y->type.dtype != t || ry_shape_numel(y->type.shape) != numel)
    return ry__err(RY_ERR_SHAPE, "operands differ in type");
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  ry_op op = n->op;
  if (ry_dtype_is_float(t)) {
    if (!float_binary_ok(op)) goto bad;
    if (t == RY_F64) {
      const double *a = x->data, *b = y->data;
      double *r = o->data;
      for (int64_t i = 0; i < numel; i++) r[i] = float_binary_d(op, a[i], b[i]);
    } else if (t != RY_F32 || !binary_f32(op, x->data, y->data, o->data, numel)) {
      for (int64_t i = 0; i < numel; i++)
        ry__store_f64(t, o->data, i,
                      float_binary_f(op, (float)ry__load_f64(t, x->data, i), (float)ry__load_f64(t, y->data, i)));
    }
  } else if (t == RY_BOOL && (op == RY_OP_AND || op == RY_OP_OR || op == RY_OP_XOR)) {
    const uint8_t *a = x->data, *b = y->data;
    uint8_t *r = o->data;
    for (int64_t i = 0; i < numel; i++) {
      int u = a[i] != 0, v = b[i] != 0;
      r[i] = (uint8_t)(op == RY_OP_AND ? u & v : op == RY_OP_OR ? u | v : u ^ v);
    }
  } else {
    if (t == RY_BOOL && op != RY_OP_AND && op != RY_OP_OR && op != RY_OP_XOR && op != RY_OP_MAX && op != RY_OP_MIN)
      goto bad;
    for (int64_t i = 0; i < numel; i++) {
      int64_t r;
      if (!int_binary(op, ry__load_i64(t, x->data, i), ry__load_i64(t, y->data, i), t, &r)) goto bad;
      ry__store_i64(t, o->data, i, r);
    }
  }
  out[0] = o;
  return NULL;
bad:
  ry_array_release(o);
  return bad_dtype(n, t);
}

/* ---- compare, select, clamp ---- */

ry_status ryi_compare(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *y = in[1];
  ry_dtype t = x->type.dtype;
  int64_t numel = ry_shape_numel(x->type.shape);
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  ry_cmp dir = n->attrs.compare.dir;
  uint8_t *r = o->data;
  if (t == RY_F32) { /* the same comparisons in float, one plain loop per direction */
    const float *a = x->data, *b = y->data;
    switch (dir) {
    case RY_EQ: for (int64_t i = 0; i < numel; i++) r[i] = a[i] == b[i]; break;
    case RY_NE: for (int64_t i = 0; i < numel; i++) r[i] = a[i] != b[i]; break;
    case RY_LT: for (int64_t i = 0; i < numel; i++) r[i] = a[i] < b[i]; break;
    case RY_LE: for (int64_t i = 0; i < numel; i++) r[i] = a[i] <= b[i]; break;
    case RY_GT: for (int64_t i = 0; i < numel; i++) r[i] = a[i] > b[i]; break;
    default: for (int64_t i = 0; i < numel; i++) r[i] = a[i] >= b[i]; break;
    }
    numel = 0; /* done */
  }
  for (int64_t i = 0; i < numel; i++) {
    bool v;
    if (ry_dtype_is_float(t)) {
      double a = ry__load_f64(t, x->data, i), b = ry__load_f64(t, y->data, i);
      v = dir == RY_EQ ? a == b : dir == RY_NE ? a != b : dir == RY_LT ? a < b : dir == RY_LE ? a <= b : dir == RY_GT ? a > b : a >= b;
    } else {
      int64_t a = ryi_ikey(t, ry__load_i64(t, x->data, i)), b = ryi_ikey(t, ry__load_i64(t, y->data, i));
      v = dir == RY_EQ ? a == b : dir == RY_NE ? a != b : dir == RY_LT ? a < b : dir == RY_LE ? a <= b : dir == RY_GT ? a > b : a >= b;
    }
    r[i] = v;
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_select(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *p = in[0], *a = in[1], *b = in[2];
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  int64_t numel = ry_shape_numel(o->type.shape);
  size_t es = ry_dtype_size(o->type.dtype);
  bool scalar = p->type.shape.rank == 0;
  const uint8_t *pd = p->data;
  if (es == 4 && !scalar) {
    const uint32_t *av = a->data, *bv = b->data;
    uint32_t *r = o->data;
    for (int64_t i = 0; i < numel; i++) r[i] = pd[i] ? av[i] : bv[i];
    numel = 0; /* done */
  }
  for (int64_t i = 0; i < numel; i++) {
    const ry_array *src = pd[scalar ? 0 : i] ? a : b;
    memcpy((char *)o->data + (size_t)i * es, (const char *)src->data + (size_t)i * es, es);
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_clamp(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *lo = in[0], *x = in[1], *hi = in[2];
  ry_dtype t = x->type.dtype;
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  int64_t numel = ry_shape_numel(x->type.shape);
  bool slo = lo->type.shape.rank == 0 && x->type.shape.rank != 0, shi = hi->type.shape.rank == 0 && x->type.shape.rank != 0;
  for (int64_t i = 0; i < numel; i++) {
    int64_t il = slo ? 0 : i, ih = shi ? 0 : i;
    if (ry_dtype_is_float(t)) {
      double v = ryx_fmin(ryx_fmax(ry__load_f64(t, x->data, i), ry__load_f64(t, lo->data, il)), ry__load_f64(t, hi->data, ih));
      ry__store_f64(t, o->data, i, v);
    } else {
      int64_t v = ry__load_i64(t, x->data, i), l = ry__load_i64(t, lo->data, il), h = ry__load_i64(t, hi->data, ih);
      v = ryi_ikey(t, v) < ryi_ikey(t, l) ? l : v;
      v = ryi_ikey(t, v) > ryi_ikey(t, h) ? h : v;
      ry__store_i64(t, o->data, i, v);
    }
  }
  out[0] = o;
  return NULL;
}

/* ---- conversions ---- */

/* The conversions of training programs as plain loops, with the values of
 * the general loop of ryi_convert (f32 <-> f64 and int -> f32 round once,
 * bool is 0 or 1). False for the others. */
static bool convert_plain(ry_dtype from, ry_dtype to, const void *x, void *o, int64_t numel) {
  if (from == RY_F32 && to == RY_F64) {
    for (int64_t i = 0; i < numel; i++) ((double *)o)[i] = (double)((const float *)x)[i];
  } else if (from == RY_F64 && to == RY_F32) {
    for (int64_t i = 0; i < numel; i++) ((float *)o)[i] = (float)((const double *)x)[i];
  } else if (from == RY_BOOL && to == RY_F32) {
    for (int64_t i = 0; i < numel; i++) ((float *)o)[i] = ((const uint8_t *)x)[i] != 0 ? 1.0f : 0.0f;
  } else if (from == RY_I32 && to == RY_F32) {
    for (int64_t i = 0; i < numel; i++) ((float *)o)[i] = (float)((const int32_t *)x)[i];
  } else {
    return false;
  }
  return true;
}

ry_status ryi_convert(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  ry_dtype from = x->type.dtype;
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  ry_dtype to = o->type.dtype;
  int64_t numel = ry_shape_numel(x->type.shape);
  if (convert_plain(from, to, x->data, o->data, numel)) numel = 0; /* done */
  for (int64_t i = 0; i < numel; i++) {
    if (ry_dtype_is_float(from)) {
      double v = ry__load_f64(from, x->data, i);
      /* ->bool is the compare x != 0, which XLA:CPU runs with denormals
       * treated as zero (DAZ) in f32 (also for bf16) and f64 */
      if (to == RY_BOOL && fabs(v) < (from == RY_F64 ? DBL_MIN : from == RY_F16 ? 0 : FLT_MIN)) v = 0;
      if (ry_dtype_is_float(to)) ryi_store_f64(to, o->data, i, v);
      else ry__store_f64(to, o->data, i, v); /* truncates, saturates, NaN -> 0; bool: != 0 */
    } else {
      int64_t v = ry__load_i64(from, x->data, i);
      if (from == RY_U64 && to == RY_F32) ((float *)o->data)[i] = (float)(uint64_t)v;
      else if (from == RY_U64 && ry_dtype_is_float(to)) ryi_store_f64(to, o->data, i, (double)(uint64_t)v);
      else if (to == RY_F32) ((float *)o->data)[i] = (float)v; /* one rounding, also for |v| > 2^53 */
      else if (ry_dtype_is_float(to)) ryi_store_f64(to, o->data, i, (double)v);
      else ry__store_i64(to, o->data, i, v);
    }
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_bitcast(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (o->nbytes != in[0]->nbytes) {
    ry_array_release(o);
    return ry__err(RY_ERR_DTYPE, "bit widths differ (%zu vs %zu bytes)", in[0]->nbytes, o->nbytes);
  }
  if (o->nbytes) memcpy(o->data, in[0]->data, o->nbytes);
  out[0] = o;
  return NULL;
}
