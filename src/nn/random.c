/* Random numbers as traced ops (ryft/random.h), following jax.random with
 * the threefry2x32 implementation and JAX's default partitionable counter
 * layout (jax/_src/random/threefry2x32.py, jax/_src/random/core.py):
 *
 *   split(key, n)        threefry(key, hi=0, lo=iota(n)) -> stack([b1, b2], -1)
 *   fold_in(key, d)      threefry(key, [0], [d]) -> [b1, b2]
 *   random_bits(key, w)  b1, b2 = threefry(key, iota_2x32(shape));
 *                        32: b1 ^ b2; 64: b1 << 32 | b2; 8/16: low bits of b1 ^ b2
 *   uniform              mantissa bits | bits of 1.0, bitcast, minus 1, scale,
 *                        max with minval
 *   normal               sqrt(2) * erf_inv(uniform(nextafter(-1, 0), 1))
 *   truncated_normal     sqrt(2) * erf_inv(uniform(erf(lo/sqrt(2)), erf(hi/sqrt(2)))),
 *                        clamped inside (lo, hi)
 *
 * In f32 the arithmetic is XLA:CPU's, rounding for rounding (see "XLA:CPU's
 * f32 arithmetic" below), so the samples are JAX's bits.
 *
 * The host functions at the end run the same algorithms in plain C. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "core/internal.h"
#include "nn/fma.h"
#include "ryft/random.h"

/* ---- helpers ------------------------------------------------------------------ */

static ry_value none(void) { return (ry_value){0}; }

static ry_value fail(ry_builder *b, ry_loc loc, ry_code code, const char *fmt, ...) RY_PRINTF(4, 5);
static ry_value fail(ry_builder *b, ry_loc loc, ry_code code, const char *fmt, ...) {
  if (!b || ry_builder_error(b)) return none();
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ry_builder_set_error(b, ry__err(code, "%s at %s:%d", msg, loc.file ? loc.file : "?", loc.line));
  return none();
}

/* Split a u32[2] key into two u32 scalars; false (error set) otherwise. */
static bool key_parts(ry_builder *b, ry_loc loc, const char *fn, ry_value key, ry_value *k0, ry_value *k1) {
  if (!b || ry_builder_error(b)) return false;
  ry_type t = ry_value_type(b, key);
  if (!ry_value_ok(key) || t.dtype != RY_U32 || t.shape.rank != 1 || t.shape.dims[0] != 2) {
    char buf[96];
    fail(b, loc, RY_ERR_INVALID_ARGUMENT, "%s: a key must be u32[2], got %s", fn, ry_type_str(t, buf, sizeof buf));
    return false;
  }
  *k0 = ry_reshape_(b, loc, ry_slice_(b, loc, key, RY_AXES(0), RY_AXES(1), RY_NO_AXES), RY_SCALAR);
  *k1 = ry_reshape_(b, loc, ry_slice_(b, loc, key, RY_AXES(1), RY_AXES(2), RY_NO_AXES), RY_SCALAR);
  return !ry_builder_error(b);
}

static bool check_shape(ry_builder *b, ry_loc loc, const char *fn, ry_shape s) {
  if (s.rank < 0 || s.rank > RY_MAX_RANK) {
    fail(b, loc, RY_ERR_SHAPE, "%s: bad rank %d", fn, s.rank);
    return false;
  }
  for (int i = 0; i < s.rank; i++)
    if (s.dims[i] < 0) {
      fail(b, loc, RY_ERR_SHAPE, "%s: negative dimension %lld", fn, (long long)s.dims[i]);
      return false;
    }
  if (ry_shape_numel(s) > (int64_t)UINT32_MAX) {
    fail(b, loc, RY_ERR_UNSUPPORTED, "%s: more than 2^32 elements", fn);
    return false;
  }
  return true;
}

/* threefry over iota_2x32(shape): the two 32-bit halves of each counter.
 * Counts below 2^32 have hi = 0. */
static void threefry_iota(ry_builder *b, ry_loc loc, ry_value k0, ry_value k1, ry_shape shape, ry_value out[2]) {
  ry_value hi = ry_full_(b, loc, RY_U32, shape, 0), lo;
  if (shape.rank == 0) {
    lo = hi;
  } else {
    int64_t n = ry_shape_numel(shape);
    lo = ry_reshape_(b, loc, ry_iota_(b, loc, RY_U32, RY_SHAPE(n), 0), shape);
  }
  ry_value kb0 = ry_broadcast_to_(b, loc, k0, shape), kb1 = ry_broadcast_to_(b, loc, k1, shape);
  ry_threefry2x32_(b, loc, kb0, kb1, hi, lo, out);
}

/* ---- keys ---------------------------------------------------------------------------- */

ry_value ry_random_key_(ry_builder *b, ry_loc loc, int64_t seed) {
  ry_key k = ry_key_from_seed(seed);
  ry_array *a = NULL;
  ry_status s = ry_key_to_array(k, &a);
  if (s) {
    ry_builder_set_error(b, s);
    return none();
  }
  ry_value v = ry_constant_(b, loc, a);
  ry_array_release(a);
  return v;
}

ry_value ry_random_key_from_(ry_builder *b, ry_loc loc, ry_value seed) {
  if (!b || ry_builder_error(b)) return none();
  ry_type t = ry_value_type(b, seed);
  if (!ry_dtype_is_int(t.dtype) || t.shape.rank != 0) {
    char buf[96];
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random key: the seed must be an integer scalar, got %s",
                ry_type_str(t, buf, sizeof buf));
  }
  ry_value hi, lo = ry_convert_(b, loc, seed, RY_U32); /* wraps: the low 32 bits */
  if (ry_dtype_size(t.dtype) == 8)
    hi = ry_convert_(b, loc, ry_shift_right_logical_(b, loc, seed, ry_scalar_(b, loc, t.dtype, 32)), RY_U32);
  else
    hi = ry_scalar_(b, loc, RY_U32, 0);
  ry_value parts[2] = {ry_reshape_(b, loc, hi, RY_SHAPE(1)), ry_reshape_(b, loc, lo, RY_SHAPE(1))};
  return ry_concatenate_(b, loc, 2, parts, 0);
}

ry_value ry_random_split_(ry_builder *b, ry_loc loc, ry_value key, int64_t n) {
  ry_value k0, k1;
  if (!key_parts(b, loc, "random split", key, &k0, &k1)) return none();
  if (n < 0 || n > (int64_t)UINT32_MAX) return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random split: bad count %lld", (long long)n);
  ry_value bits[2];
  threefry_iota(b, loc, k0, k1, RY_SHAPE(n), bits);
  ry_value cols[2] = {ry_reshape_(b, loc, bits[0], RY_SHAPE(n, 1)), ry_reshape_(b, loc, bits[1], RY_SHAPE(n, 1))};
  return ry_concatenate_(b, loc, 2, cols, 1);
}

ry_value ry_random_key_at_(ry_builder *b, ry_loc loc, ry_value keys, int64_t i) {
  if (!b || ry_builder_error(b)) return none();
  ry_type t = ry_value_type(b, keys);
  if (t.dtype != RY_U32 || t.shape.rank != 2 || t.shape.dims[1] != 2) {
    char buf[96];
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random key_at: keys must be u32[n,2], got %s", ry_type_str(t, buf, sizeof buf));
  }
  if (i < 0 || i >= t.shape.dims[0])
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random key_at: index %lld out of range [0, %lld)", (long long)i,
                (long long)t.shape.dims[0]);
  ry_value row = ry_slice_(b, loc, keys, RY_AXES(i, 0), RY_AXES(i + 1, 2), RY_NO_AXES);
  return ry_reshape_(b, loc, row, RY_SHAPE(2));
}

int ry_random_split_keys_(ry_builder *b, ry_loc loc, ry_value key, int n, ry_value *out) {
  ry_value keys = ry_random_split_(b, loc, key, n);
  for (int i = 0; i < n; i++) out[i] = ry_random_key_at_(b, loc, keys, i);
  return ry_builder_error(b) ? 0 : n;
}

ry_value ry_random_fold_in_(ry_builder *b, ry_loc loc, ry_value key, ry_value data) {
  ry_value k0, k1;
  if (!key_parts(b, loc, "random fold_in", key, &k0, &k1)) return none();
  ry_type t = ry_value_type(b, data);
  if (!ry_dtype_is_int(t.dtype) || t.shape.rank != 0) {
    char buf[96];
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random fold_in: data must be an integer scalar, got %s",
                ry_type_str(t, buf, sizeof buf));
  }
  ry_value d = ry_convert_(b, loc, data, RY_U32);
  ry_value out[2];
  ry_threefry2x32_(b, loc, k0, k1, ry_scalar_(b, loc, RY_U32, 0), d, out);
  ry_value parts[2] = {ry_reshape_(b, loc, out[0], RY_SHAPE(1)), ry_reshape_(b, loc, out[1], RY_SHAPE(1))};
  return ry_concatenate_(b, loc, 2, parts, 0);
}

ry_value ry_random_fold_in_int_(ry_builder *b, ry_loc loc, ry_value key, uint32_t data) {
  return ry_random_fold_in_(b, loc, key, ry_scalar_(b, loc, RY_U32, (double)data));
}

/* ---- bits and samplers ------------------------------------------------------------------- */

ry_value ry_random_bits_(ry_builder *b, ry_loc loc, ry_value key, int bit_width, ry_shape shape) {
  ry_value k0, k1;
  if (!key_parts(b, loc, "random bits", key, &k0, &k1)) return none();
  if (!check_shape(b, loc, "random bits", shape)) return none();
  if (bit_width != 8 && bit_width != 16 && bit_width != 32 && bit_width != 64)
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random bits: bit width %d is not 8, 16, 32 or 64", bit_width);
  ry_value bits[2];
  threefry_iota(b, loc, k0, k1, shape, bits);
  if (bit_width == 64) {
    ry_value hi = ry_convert_(b, loc, bits[0], RY_I64), lo = ry_convert_(b, loc, bits[1], RY_I64);
    hi = ry_shift_left_(b, loc, hi, ry_scalar_(b, loc, RY_I64, 32));
    return ry_or_(b, loc, hi, lo);
  }
  ry_value x = ry_xor_(b, loc, bits[0], bits[1]);
  if (bit_width == 32) return x;
  return ry_convert_(b, loc, x, bit_width == 8 ? RY_U8 : RY_I16); /* wraps to the low bits */
}

/* ---- XLA:CPU's f32 arithmetic, op for op ---------------------------------------------
 *
 * JAX's f32 normal and truncated_normal run on XLA:CPU, whose results come
 * from its own algorithms: erf_inv is lowered (CHLO) to a polynomial in
 * w = -log1p(-x*x), log1p and log are XLA's own approximations, erf is a
 * rational approximation, and LLVM contracts a product feeding an add into
 * one fused multiply-add wherever it can. The code below builds the same
 * computations out of exact primitive ops, so every ryft backend gives
 * JAX's bits without depending on a libm:
 *
 * - every rounding that XLA fuses is an fma_f32 (one rounding of a*b + c);
 * - every other product that meets an add is exact (a power of two times a
 *   value, or small integers), or reaches the add only through fma_f32, so
 *   a backend that fuses (the cpu JIT's cc, XLA itself under PJRT) cannot
 *   change a result by fusing it.
 *
 * The algorithms were checked against jax 0.10.2 on CPU for every f32 that
 * normal can draw (all 2^23 uniform values) and for erf on 10^8 inputs. */

static ry_value f32c(ry_builder *b, ry_loc loc, double v) { return ry_scalar_(b, loc, RY_F32, v); }

/* f32 x + y, safe from being fused with a product that computed x or y. */
static ry_value add_f32(ry_builder *b, ry_loc loc, ry_value x, ry_value y) {
  return ryn_fma_f32(b, loc, x, f32c(b, loc, 1.0), y);
}

/* XLA:CPU's f32 log (the Cephes polynomial), for x > 0 finite (the only
 * inputs erf_inv gives it below |x| = 1): x = m * 2^e with m in
 * [sqrt(1/2), sqrt(2)), log = log1p(m - 1) by a polynomial plus e*log(2) in
 * two parts. */
static const double k_log_p[9] = {7.0376836292E-2,  -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, +1.4249322787E-1,
                                  -1.6668057665E-1, +2.0000714765E-1, -2.4999993993E-1, +3.3333331174E-1};

static ry_value log_f32(ry_builder *b, ry_loc loc, ry_value x) {
  x = ry_max_(b, loc, x, f32c(b, loc, FLT_MIN));
  ry_value bits = ry_bitcast_convert_(b, loc, x, RY_U32);
  ry_value ebits = ry_shift_right_logical_(b, loc, bits, ry_scalar_(b, loc, RY_U32, 23));
  /* the mantissa as a value in [0.5, 1) */
  ry_value m = ry_and_(b, loc, bits, ry_scalar_(b, loc, RY_U32, 0x807FFFFF));
  m = ry_or_(b, loc, m, ry_scalar_(b, loc, RY_U32, 0x3F000000));
  m = ry_bitcast_convert_(b, loc, m, RY_F32);
  ry_value small = ry_compare_(b, loc, m, f32c(b, loc, 0.707106781186547524), RY_LT);
  /* e = exponent + 1, less one when m < sqrt(1/2), which then doubles (all exact) */
  ry_value e = ry_sub_(b, loc, ry_convert_(b, loc, ebits, RY_F32), f32c(b, loc, 126.0));
  e = ry_sub_(b, loc, e, ry_select_(b, loc, small, f32c(b, loc, 1.0), f32c(b, loc, 0.0)));
  ry_value t = ry_add_(b, loc, ry_sub_(b, loc, m, f32c(b, loc, 1.0)), ry_select_(b, loc, small, m, f32c(b, loc, 0.0)));
  ry_value t2 = ry_mul_(b, loc, t, t), t3 = ry_mul_(b, loc, t2, t);
  /* three interleaved Horner chains joined by t^3 */
  ry_value y0 = ryn_fma_f32(b, loc, t, f32c(b, loc, k_log_p[0]), f32c(b, loc, k_log_p[1]));
  ry_value y1 = ryn_fma_f32(b, loc, t, f32c(b, loc, k_log_p[3]), f32c(b, loc, k_log_p[4]));
  ry_value y2 = ryn_fma_f32(b, loc, t, f32c(b, loc, k_log_p[6]), f32c(b, loc, k_log_p[7]));
  y0 = ryn_fma_f32(b, loc, y0, t, f32c(b, loc, k_log_p[2]));
  y1 = ryn_fma_f32(b, loc, y1, t, f32c(b, loc, k_log_p[5]));
  y2 = ryn_fma_f32(b, loc, y2, t, f32c(b, loc, k_log_p[8]));
  ry_value y = ryn_fma_f32(b, loc, y0, t3, y1);
  y = ryn_fma_f32(b, loc, y, t3, y2);
  y = ryn_fma_f32(b, loc, y, t3, ry_mul_(b, loc, e, f32c(b, loc, -2.12194440e-4)));
  /* t - t^2/2 + y + e*0.693359375: both products are exact */
  ry_value r = ry_sub_(b, loc, t, ry_mul_(b, loc, t2, f32c(b, loc, 0.5)));
  r = ry_add_(b, loc, r, y);
  return ry_add_(b, loc, r, ry_mul_(b, loc, e, f32c(b, loc, 0.693359375)));
}

/* XLA's f32 log1p: log(1 + x) for |x| >= sqrt(2) - 1, else a rational
 * approximation (from Cephes) x - x^2/2 + x^3 * P(x)/Q(x). */
static const double k_log1p_num[7] = {4.5270000862445199635215E-5, 4.9854102823193375972212E-1, 6.5787325942061044846969E0,
                                      2.9911919328553073277375E1,  6.0949667980987787057556E1,  5.7112963590585538103336E1,
                                      2.0039553499201281259648E1};
static const double k_log1p_den[7] = {1.,
                                      1.5062909083469192043167E1,
                                      8.3047565967967209469434E1,
                                      2.2176239823732856465394E2,
                                      3.0909872225312059774938E2,
                                      2.1642788614495947685003E2,
                                      6.0118660497603843919306E1};

static ry_value log1p_f32(ry_builder *b, ry_loc loc, ry_value x) {
  ry_value large = log_f32(b, loc, add_f32(b, loc, x, f32c(b, loc, 1.0)));
  ry_value num = f32c(b, loc, k_log1p_num[0]), den = f32c(b, loc, k_log1p_den[0]);
  for (int i = 1; i < 7; i++) {
    num = ryn_fma_f32(b, loc, num, x, f32c(b, loc, k_log1p_num[i]));
    den = ryn_fma_f32(b, loc, den, x, f32c(b, loc, k_log1p_den[i]));
  }
  ry_value x2 = ry_mul_(b, loc, x, x);
  ry_value s = ry_mul_(b, loc, ry_mul_(b, loc, x, x2), ry_div_(b, loc, num, den));
  s = add_f32(b, loc, x, ryn_fma_f32(b, loc, x2, f32c(b, loc, -0.5), s));
  ry_value small = ry_compare_(b, loc, ry_abs_(b, loc, x), f32c(b, loc, 0.41421356237309504880), RY_LT);
  return ry_select_(b, loc, small, s, large);
}

/* XLA's f32 erf_inv (M. Giles, "Approximating the erfinv function", 2010),
 * as JAX lowers chlo.erf_inv: w = -log1p(-x*x); w < 5 ? w - 2.5 :
 * sqrt(w) - 3; p = Horner(w); p * x, and +-inf at |x| = 1. */
static const double k_erfinv_lt5[9] = {2.81022636e-08,  3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                                       -0.00125372503, -0.00417768164, 0.246640727,    1.50140941};
static const double k_erfinv_ge5[9] = {-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                                       -0.0076224613,   0.00943887047,  1.00167406,    2.83297682};

static ry_value erf_inv_f32(ry_builder *b, ry_loc loc, ry_value x) {
  ry_value w = ry_neg_(b, loc, log1p_f32(b, loc, ry_mul_(b, loc, x, ry_neg_(b, loc, x))));
  ry_value lt = ry_compare_(b, loc, w, f32c(b, loc, 5.0), RY_LT);
  w = ry_select_(b, loc, lt, ry_sub_(b, loc, w, f32c(b, loc, 2.5)), ry_sub_(b, loc, ry_sqrt_(b, loc, w), f32c(b, loc, 3.0)));
  ry_value p = ry_select_(b, loc, lt, f32c(b, loc, k_erfinv_lt5[0]), f32c(b, loc, k_erfinv_ge5[0]));
  for (int i = 1; i < 9; i++)
    p = ryn_fma_f32(b, loc, p, w, ry_select_(b, loc, lt, f32c(b, loc, k_erfinv_lt5[i]), f32c(b, loc, k_erfinv_ge5[i])));
  ry_value r = ry_mul_(b, loc, p, x);
  ry_value edge = ry_compare_(b, loc, ry_abs_(b, loc, x), f32c(b, loc, 1.0), RY_EQ);
  return ry_select_(b, loc, edge, ry_mul_(b, loc, x, f32c(b, loc, INFINITY)), r);
}

/* XLA:CPU's f32 erf as it runs in truncated_normal (fused with the scaling
 * of the bound): an odd/even rational approximation (the one in Eigen),
 * +-1 from |x| >= 3.7439211627767994. On the host, for the bounds. */
static float erf_f32_host(float x) {
  static const float num[5] = {0.00022905065861350646f, 0.0034082910107109506f, 0.050955695062380861f, 0.18520832239976145f,
                               1.128379143519084f};
  static const float den[7] = {-1.1791602954361697e-7f, 0.000023547966471313185f, 0.0010179625278914885f, 0.014070470171167667f,
                               0.11098505178285362f,    0.49746925110067538f,     1.0f};
  if (fabsf(x) >= 3.7439211627767994f) return copysignf(1.0f, x);
  float x2 = x * x, p = num[0], q = den[0];
  for (int i = 1; i < 5; i++) p = fmaf(x2, p, num[i]);
  for (int i = 1; i < 7; i++) q = fmaf(x2, q, den[i]);
  p = x * p;
  return p / q;
}

/* Mantissa bits and the integer dtype holding a float's bits. */
static bool float_info(ry_dtype t, int *nbits, int *nmant, ry_dtype *bits_dtype, double *one_bits) {
  switch (t) {
  case RY_F16: *nbits = 16; *nmant = 10; *bits_dtype = RY_I16; *one_bits = 0x3C00; return true;
  case RY_BF16: *nbits = 16; *nmant = 7; *bits_dtype = RY_I16; *one_bits = 0x3F80; return true;
  case RY_F32: *nbits = 32; *nmant = 23; *bits_dtype = RY_U32; *one_bits = 0x3F800000; return true;
  case RY_F64: *nbits = 64; *nmant = 52; *bits_dtype = RY_I64; *one_bits = 4607182418800017408.0; return true;
  default: return false;
  }
}

/* uniform with minval/maxval as scalar values of dtype (JAX's _uniform). */
static ry_value uniform_v(ry_builder *b, ry_loc loc, const char *fn, ry_value key, ry_shape shape, ry_dtype dtype,
                          ry_value minval, ry_value maxval) {
  int nbits, nmant;
  ry_dtype bdt;
  double one_bits;
  if (!b || ry_builder_error(b)) return none();
  if (!float_info(dtype, &nbits, &nmant, &bdt, &one_bits))
    return fail(b, loc, RY_ERR_DTYPE, "%s: dtype %s is not a float (f16, bf16, f32, f64)", fn, ry_dtype_name(dtype));
  int rng_bits = nmant < 8 ? 8 : nbits;
  ry_value bits = ry_random_bits_(b, loc, key, rng_bits, shape);
  if (rng_bits != nbits) bits = ry_convert_(b, loc, bits, bdt);
  ry_value fb = ry_shift_right_logical_(b, loc, bits, ry_scalar_(b, loc, bdt, rng_bits - nmant));
  fb = ry_or_(b, loc, fb, ry_scalar_(b, loc, bdt, one_bits));
  ry_value floats = ry_sub_(b, loc, ry_bitcast_convert_(b, loc, fb, dtype), ry_scalar_(b, loc, dtype, 1.0));
  ry_value range = ry_sub_(b, loc, maxval, minval), scaled;
  if (dtype == RY_F32) /* XLA:CPU fuses floats * range + minval into one fma */
    scaled = ryn_fma_f32(b, loc, floats, range, minval);
  else
    scaled = ry_add_(b, loc, ry_mul_(b, loc, floats, range), minval);
  return ry_max_(b, loc, minval, scaled);
}

ry_value ry_random_uniform_(ry_builder *b, ry_loc loc, ry_value key, ry_shape shape, ry_dtype dtype, double minval,
                            double maxval) {
  if (!b || ry_builder_error(b)) return none();
  if (!ry_dtype_is_float(dtype))
    return fail(b, loc, RY_ERR_DTYPE, "random uniform: dtype %s is not a float", ry_dtype_name(dtype));
  return uniform_v(b, loc, "random uniform", key, shape, dtype, ry_scalar_(b, loc, dtype, minval),
                   ry_scalar_(b, loc, dtype, maxval));
}

/* erf_inv in dtype: the f32 formulation for f32 (f16/bf16 through f32), the
 * primitive for f64. */
static ry_value erf_inv_any(ry_builder *b, ry_loc loc, ry_value x, ry_dtype dtype) {
  if (dtype == RY_F64) return ry_erf_inv_(b, loc, x);
  if (dtype == RY_F32) return erf_inv_f32(b, loc, x);
  return ry_convert_(b, loc, erf_inv_f32(b, loc, ry_convert_(b, loc, x, RY_F32)), dtype);
}

/* v rounded to dtype. */
static double round_to(ry_dtype t, double v) {
  switch (t) {
  case RY_F16: return ry__f16_to_f32(ry__f32_to_f16((float)v));
  case RY_BF16: return ry__bf16_to_f32(ry__f32_to_bf16((float)v));
  case RY_F32: return (float)v;
  default: return v;
  }
}

/* nextafter(v, toward) rounded to dtype first (np.nextafter in dtype). */
static double next_in(ry_dtype t, double v, double toward) {
  if (t == RY_F64) return nextafter(v, toward);
  if (t == RY_F32) return (double)nextafterf((float)v, (float)toward);
  /* f16 / bf16: step the bit pattern */
  uint16_t h = t == RY_F16 ? ry__f32_to_f16((float)v) : ry__f32_to_bf16((float)v);
  float f = t == RY_F16 ? ry__f16_to_f32(h) : ry__bf16_to_f32(h);
  if (isnan(f) || (double)f == toward) return f;
  if (f == 0) h = (uint16_t)((toward > 0 ? 0x0000 : 0x8000) | 1);
  else if ((f < toward) == (f > 0)) h++;
  else h--;
  return t == RY_F16 ? ry__f16_to_f32(h) : ry__bf16_to_f32(h);
}

/* XLA:CPU runs with subnormals flushed to zero. */
static float flush_subnormal(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

/* erf(bound / sqrt(2)) in dtype (f16, bf16, f32) as JAX's truncated_normal
 * gets it from XLA:CPU, which turns the division into a product with a
 * reciprocal: f32(1/f32(sqrt 2)) in f32, f16(1/f16(sqrt 2)) in f16, and for
 * bf16 the f32 reciprocal of bf16(sqrt 2) with the product rounded to bf16;
 * erf runs in f32 (checked for every f16 and bf16 bound and 8*10^5 f32 ones). */
static double erf_bound_host(ry_dtype t, double bound) {
  float x = flush_subnormal((float)round_to(t, bound)), q;
  if (t == RY_F32) q = x * (1.0f / (float)sqrt(2.0));
  else if (t == RY_F16) q = (float)round_to(t, x * (float)round_to(t, 1.0 / round_to(t, sqrt(2.0))));
  else q = (float)round_to(t, x * (float)(1.0 / round_to(t, sqrt(2.0))));
  return round_to(t, erf_f32_host(flush_subnormal(q)));
}

ry_value ry_random_normal_(ry_builder *b, ry_loc loc, ry_value key, ry_shape shape, ry_dtype dtype) {
  if (!b || ry_builder_error(b)) return none();
  if (!ry_dtype_is_float(dtype)) return fail(b, loc, RY_ERR_DTYPE, "random normal: dtype %s is not a float", ry_dtype_name(dtype));
  double lo = next_in(dtype, -1.0, 0.0);
  ry_value u = uniform_v(b, loc, "random normal", key, shape, dtype, ry_scalar_(b, loc, dtype, lo), ry_scalar_(b, loc, dtype, 1.0));
  return ry_mul_(b, loc, ry_scalar_(b, loc, dtype, sqrt(2.0)), erf_inv_any(b, loc, u, dtype));
}

ry_value ry_random_truncated_normal_(ry_builder *b, ry_loc loc, ry_value key, double lower, double upper, ry_shape shape,
                                     ry_dtype dtype) {
  if (!b || ry_builder_error(b)) return none();
  if (!ry_dtype_is_float(dtype))
    return fail(b, loc, RY_ERR_DTYPE, "random truncated_normal: dtype %s is not a float", ry_dtype_name(dtype));
  ry_value sqrt2 = ry_scalar_(b, loc, dtype, sqrt(2.0)), a, bb;
  if (dtype == RY_F64) {
    ry_value lo = ry_scalar_(b, loc, dtype, lower), hi = ry_scalar_(b, loc, dtype, upper);
    a = ry_erf_(b, loc, ry_div_(b, loc, lo, sqrt2));
    bb = ry_erf_(b, loc, ry_div_(b, loc, hi, sqrt2));
  } else {
    a = ry_scalar_(b, loc, dtype, erf_bound_host(dtype, lower));
    bb = ry_scalar_(b, loc, dtype, erf_bound_host(dtype, upper));
  }
  ry_value u = uniform_v(b, loc, "random truncated_normal", key, shape, dtype, a, bb);
  ry_value out = ry_mul_(b, loc, sqrt2, erf_inv_any(b, loc, u, dtype));
  /* rounded to dtype first, like lax.nextafter on the converted bounds */
  double lo_c = round_to(dtype, lower), hi_c = round_to(dtype, upper);
  ry_value cl = ry_scalar_(b, loc, dtype, next_in(dtype, lo_c, INFINITY));
  ry_value ch = ry_scalar_(b, loc, dtype, next_in(dtype, hi_c, -INFINITY));
  return ry_min_(b, loc, ry_max_(b, loc, out, cl), ch);
}

ry_value ry_random_bernoulli_(ry_builder *b, ry_loc loc, ry_value key, double p, ry_shape shape) {
  ry_value u = ry_random_uniform_(b, loc, key, shape, RY_F32, 0.0, 1.0);
  return ry_compare_(b, loc, u, ry_scalar_(b, loc, RY_F32, p), RY_LT);
}

static double tiny_of(ry_dtype t) {
  switch (t) {
  case RY_F16: return 6.103515625e-05;
  case RY_BF16: return 1.1754943508222875e-38;
  case RY_F32: return FLT_MIN;
  default: return DBL_MIN;
  }
}

ry_value ry_random_gumbel_(ry_builder *b, ry_loc loc, ry_value key, ry_shape shape, ry_dtype dtype) {
  if (!b || ry_builder_error(b)) return none();
  if (!ry_dtype_is_float(dtype)) return fail(b, loc, RY_ERR_DTYPE, "random gumbel: dtype %s is not a float", ry_dtype_name(dtype));
  ry_value u = ry_random_uniform_(b, loc, key, shape, dtype, tiny_of(dtype), 1.0);
  return ry_neg_(b, loc, ry_log_(b, loc, ry_neg_(b, loc, ry_log_(b, loc, u))));
}

ry_value ry_random_categorical_(ry_builder *b, ry_loc loc, ry_value key, ry_value logits, int axis) {
  if (!b || ry_builder_error(b)) return none();
  ry_type t = ry_value_type(b, logits);
  if (!ry_dtype_is_float(t.dtype) || t.shape.rank < 1) {
    char buf[96];
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random categorical: logits must be floats of rank >= 1, got %s",
                ry_type_str(t, buf, sizeof buf));
  }
  int ax = axis < 0 ? axis + t.shape.rank : axis;
  if (ax < 0 || ax >= t.shape.rank)
    return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random categorical: axis %d out of range for rank %d", axis, t.shape.rank);
  ry_value g = ry_random_gumbel_(b, loc, key, t.shape, t.dtype);
  return ry_argmax_(b, loc, ry_add_(b, loc, g, logits), ax, RY_I32);
}

static int shuffle_rounds(int64_t n) {
  double r = ceil(3.0 * log((double)(n > 1 ? n : 1)) / log(4294967295.0));
  return (int)r;
}

/* _shuffle on a rank-1 value. */
static ry_value shuffle1(ry_builder *b, ry_loc loc, ry_value key, ry_value x, int64_t n) {
  int rounds = shuffle_rounds(n);
  for (int r = 0; r < rounds; r++) {
    ry_value keys[2];
    if (!ry_random_split_keys_(b, loc, key, 2, keys)) return none();
    key = keys[0];
    ry_value sk = ry_random_bits_(b, loc, keys[1], 32, RY_SHAPE(n));
    ry_value ops[2] = {sk, x}, out[2];
    if (!ry_sort_(b, loc, 2, ops, 0, 1, 0, 1, out)) return none();
    x = out[1];
  }
  return x;
}

ry_value ry_random_permutation_(ry_builder *b, ry_loc loc, ry_value key, int64_t n) {
  if (!b || ry_builder_error(b)) return none();
  if (n < 0 || n > INT32_MAX) return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random permutation: bad size %lld", (long long)n);
  return shuffle1(b, loc, key, ry_iota_(b, loc, RY_I32, RY_SHAPE(n), 0), n);
}

ry_value ry_random_shuffle_(ry_builder *b, ry_loc loc, ry_value key, ry_value x) {
  if (!b || ry_builder_error(b)) return none();
  ry_type t = ry_value_type(b, x);
  if (t.shape.rank < 1) return fail(b, loc, RY_ERR_INVALID_ARGUMENT, "random shuffle: x must have rank >= 1");
  int64_t n = t.shape.dims[0];
  if (t.shape.rank == 1) return shuffle1(b, loc, key, x, n);
  ry_value perm = ry_random_permutation_(b, loc, key, n);
  return ry_take_(b, loc, x, perm, 0);
}

/* ---- on the host ------------------------------------------------------------------------------ */

static uint32_t rotl32(uint32_t v, int r) { return (v << r) | (v >> (32 - r)); }

void ry_threefry2x32_block(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t out[2]) {
  static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  x0 += ks[0];
  x1 += ks[1];
  for (int i = 0; i < 5; i++) {
    for (int j = 0; j < 4; j++) {
      x0 += x1;
      x1 = rotl32(x1, rot[i % 2][j]);
      x1 ^= x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + (uint32_t)(i + 1);
  }
  out[0] = x0;
  out[1] = x1;
}

ry_key ry_key_from_seed(int64_t seed) {
  ry_key k;
  k.k[0] = (uint32_t)((uint64_t)seed >> 32);
  k.k[1] = (uint32_t)((uint64_t)seed & 0xFFFFFFFFu);
  return k;
}

void ry_key_split(ry_key key, int64_t n, ry_key *out) {
  for (int64_t i = 0; i < n; i++) ry_threefry2x32_block(key.k[0], key.k[1], (uint32_t)((uint64_t)i >> 32), (uint32_t)i, out[i].k);
}

ry_key ry_key_fold_in(ry_key key, uint32_t data) {
  ry_key k;
  ry_threefry2x32_block(key.k[0], key.k[1], 0, data, k.k);
  return k;
}

void ry_key_bits32(ry_key key, int64_t n, uint32_t *out) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t o[2];
    ry_threefry2x32_block(key.k[0], key.k[1], (uint32_t)((uint64_t)i >> 32), (uint32_t)i, o);
    out[i] = o[0] ^ o[1];
  }
}

typedef struct perm_item {
  uint32_t key;
  int64_t pos, value;
} perm_item;

static int perm_cmp(const void *a, const void *b) {
  const perm_item *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos; /* stable */
}

ry_status ry_key_permutation(ry_key key, int64_t n, int64_t *out) {
  if (n < 0 || n > INT32_MAX) return ry__err(RY_ERR_INVALID_ARGUMENT, "random permutation: bad size %lld", (long long)n);
  for (int64_t i = 0; i < n; i++) out[i] = i;
  int rounds = shuffle_rounds(n);
  if (rounds == 0 || n < 2) return NULL;
  perm_item *items = ry__malloc((size_t)n * sizeof *items);
  uint32_t *bits = ry__malloc((size_t)n * sizeof *bits);
  if (!items || !bits) {
    ry__free(items, (size_t)n * sizeof *items);
    ry__free(bits, (size_t)n * sizeof *bits);
    return ry__oom();
  }
  for (int r = 0; r < rounds; r++) {
    ry_key keys[2];
    ry_key_split(key, 2, keys);
    key = keys[0];
    ry_key_bits32(keys[1], n, bits);
    for (int64_t i = 0; i < n; i++) items[i] = (perm_item){bits[i], i, out[i]};
    qsort(items, (size_t)n, sizeof *items, perm_cmp);
    for (int64_t i = 0; i < n; i++) out[i] = items[i].value;
  }
  ry__free(items, (size_t)n * sizeof *items);
  ry__free(bits, (size_t)n * sizeof *bits);
  return NULL;
}

ry_status ry_key_to_array(ry_key key, ry_array **out) {
  return ry_array_from_host(RY_U32, RY_SHAPE(2), key.k, out);
}

ry_status ry_key_from_array(const ry_array *a, ry_key *out) {
  if (!a || ry_array_dtype(a) != RY_U32 || ry_array_shape(a).rank != 1 || ry_array_shape(a).dims[0] != 2) {
    char buf[96] = "NULL";
    if (a) ry_type_str(ry_array_type(a), buf, sizeof buf);
    return ry__err(RY_ERR_INVALID_ARGUMENT, "random: a key array must be u32[2], got %s", buf);
  }
  return ry_array_to_host(a, out->k, sizeof out->k); /* fetches a device array */
}
