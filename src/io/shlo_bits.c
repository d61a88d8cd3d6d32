/* StableHLO's bit-level ops that ryft builds from its own: bitcast_convert
 * between element types of different widths (how JAX turns its u32[4] key
 * into the u64[2] state of rng_bit_generator), reduce_precision, and
 * rng_bit_generator itself,
 * bit for bit as XLA expands it (xla/hlo/builder/lib/prng.cc): THREE_FRY
 * from the threefry2x32 op, PHILOX (and DEFAULT, which XLA's CPU and GPU
 * compilers expand as PHILOX) as Philox-4x32-10 from u32/u64 arithmetic.
 *
 * The state is u64[2] (key, counter) or, for PHILOX, u64[3] (key, a 128-bit
 * counter low then high); a PHILOX u64[2] state counts with (counter, key)
 * as the 128-bit counter, as XLA does. */
#include <stdio.h>

#include "shlo_internal.h"

typedef shlo_x X;
#define B (x->b)
#define L (x->loc)

static ry_value su32(X *x, double v) { return ry_scalar_(B, L, RY_U32, v); }
static ry_value su64(X *x, double v) { return ry_scalar_(B, L, RY_U64, v); }
static ry_value lo32(X *x, ry_value v) { return ry_convert_(B, L, v, RY_U32); }
static ry_value hi32(X *x, ry_value v) { return ry_convert_(B, L, ry_shift_right_logical_(B, L, v, su64(x, 32)), RY_U32); }
static ry_value join64(X *x, ry_value lo, ry_value hi) {
  return ry_or_(B, L, ry_convert_(B, L, lo, RY_U64), ry_shift_left_(B, L, ry_convert_(B, L, hi, RY_U64), su64(x, 32)));
}
static ry_value elem(X *x, ry_value v, int64_t i) { /* v[i] of a rank-1 value, as a scalar */
  return ry_reshape_(B, L, ry_slice_(B, L, v, RY_AXES(i), RY_AXES(i + 1), RY_AXES(1)), (ry_shape){0, {0}});
}
/* the flat indices 0..n-1 of a shape, as u64 */
static ry_value flat_iota(X *x, ry_shape s) {
  int64_t n = ry_shape_numel(s);
  return ry_reshape_(B, L, ry_iota_(B, L, RY_U64, RY_SHAPE(n), 0), s);
}

/* ---- bitcast_convert between widths ---- */

static ry_dtype unsigned_of(size_t bytes) { return bytes == 1 ? RY_U8 : bytes == 2 ? RY_U16 : bytes == 4 ? RY_U32 : RY_U64; }

/* x: (..., r) narrow elements -> (...) wide ones, element 0 the low bits;
 * or the reverse. Little-endian, as StableHLO specifies; an i1 (bool)
 * element is one bit. */
bool shlo_c_bitcast_resize(X *x) {
  ry_type in = ry_value_type(B, x->in[0]), out = x->rt[0];
  size_t bi = ry_dtype_size(in.dtype), bo = ry_dtype_size(out.dtype);
  int ni = in.dtype == RY_BOOL ? 1 : (int)(8 * bi), no = out.dtype == RY_BOOL ? 1 : (int)(8 * bo);
  if (in.dtype == RY_BOOL && out.dtype == RY_BOOL) return shlo_finish1(x, x->in[0]);
  ry_dtype ui = unsigned_of(bi), uo = unsigned_of(bo);
  /* the operand's bits as an unsigned integer (a bool as 0 or 1) */
  ry_value v = in.dtype == RY_BOOL ? ry_convert_(B, L, x->in[0], RY_U8) : ry_bitcast_convert_(B, L, x->in[0], ui);
  if (ni < no) {
    int64_t r = no / ni;
    int rk = in.shape.rank;
    if (rk < 1 || in.shape.dims[rk - 1] != r)
      return shlo_xfail(x, RY_ERR_PARSE, "bitcast_convert to a %lld times wider type needs a last dimension of %lld", (long long)r,
                        (long long)r);
    ry_axes st = {rk, {0}}, li = {rk, {0}}, one = {rk, {0}};
    for (int d = 0; d < rk; d++) li.v[d] = in.shape.dims[d], one.v[d] = 1;
    ry_value acc = {0};
    for (int64_t k = 0; k < r; k++) {
      st.v[rk - 1] = k, li.v[rk - 1] = k + 1;
      ry_value p = ry_convert_(B, L, ry_reshape_(B, L, ry_slice_(B, L, v, st, li, one), out.shape), uo);
      if (k) p = ry_shift_left_(B, L, p, ry_scalar_(B, L, uo, (double)(ni * k)));
      acc = k ? ry_or_(B, L, acc, p) : p;
    }
    v = acc;
  } else {
    int64_t r = ni / no;
    ry_value parts[64];
    if (in.shape.rank >= RY_MAX_RANK) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a result of rank %d", in.shape.rank + 1);
    ry_shape ps = in.shape;
    ps.dims[ps.rank++] = 1;
    for (int64_t k = 0; k < r; k++) {
      ry_value p = k ? ry_shift_right_logical_(B, L, v, ry_scalar_(B, L, ui, (double)(no * k))) : v;
      if (out.dtype == RY_BOOL) p = ry_and_(B, L, p, ry_scalar_(B, L, ui, 1));
      parts[k] = ry_reshape_(B, L, ry_convert_(B, L, p, out.dtype == RY_BOOL ? RY_BOOL : uo), ps);
    }
    v = ry_concatenate_(B, L, (int)r, parts, in.shape.rank);
  }
  if (ry_value_dtype(B, v) != out.dtype) v = ry_bitcast_convert_(B, L, v, out.dtype);
  return shlo_finish1(x, v);
}

/* ---- rng_bit_generator ---- */

/* THREE_FRY, 32-bit words: the shape is halved along its first even
 * dimension (else its longest), each counter gives two words that land side
 * by side along that dimension. */
static ry_value threefry32(X *x, ry_value key, ry_value ctr, ry_shape s, int64_t *used) {
  ry_value k0 = lo32(x, key), k1 = hi32(x, key), o[2];
  if (s.rank == 0) {
    ry_threefry2x32_(B, L, k0, k1, lo32(x, ctr), hi32(x, ctr), o);
    *used = 1;
    return o[0];
  }
  int split = -1;
  for (int d = 0; d < s.rank && split < 0; d++)
    if (s.dims[d] % 2 == 0) split = d;
  if (split < 0) { /* no even dimension: the first longest */
    split = 0;
    for (int d = 1; d < s.rank; d++)
      if (s.dims[d] > s.dims[split]) split = d;
  }
  if (s.rank + 1 > RY_MAX_RANK) return ryb_failf(B, L, RY_ERR_UNSUPPORTED, "rng_bit_generator", "rank %d", s.rank), (ry_value){0};
  ry_shape half = {0, {0}};
  for (int d = 0; d < s.rank; d++) {
    half.dims[half.rank++] = d == split ? (s.dims[d] + 1) / 2 : s.dims[d];
    if (d == split) half.dims[half.rank++] = 1;
  }
  ry_value c = ry_add_(B, L, ry_broadcast_to_(B, L, ctr, half), flat_iota(x, half));
  ry_threefry2x32_(B, L, k0, k1, lo32(x, c), hi32(x, c), o);
  ry_value both = ry_concatenate_(B, L, 2, o, split + 1);
  ry_shape even = s;
  even.dims[split] = half.dims[split] * 2;
  ry_value r = ry_reshape_(B, L, both, even);
  if (even.dims[split] != s.dims[split]) {
    ry_axes st = {s.rank, {0}}, li = {s.rank, {0}}, one = {s.rank, {0}};
    for (int d = 0; d < s.rank; d++) li.v[d] = s.dims[d], one.v[d] = 1;
    r = ry_slice_(B, L, r, st, li, one);
  }
  *used = ry_shape_numel(half);
  return r;
}

/* THREE_FRY, 64-bit words: one counter per element, the two words joined. */
static ry_value threefry64(X *x, ry_value key, ry_value ctr, ry_shape s) {
  ry_value c = ry_add_(B, L, ry_broadcast_to_(B, L, ctr, s), flat_iota(x, s)), o[2];
  ry_threefry2x32_(B, L, lo32(x, key), hi32(x, key), lo32(x, c), hi32(x, c), o);
  return join64(x, o[0], o[1]);
}

/* Philox-4x32-10 on the 128-bit counters (lo, hi) + 0..m-1 with key k:
 * writes the four u32[m] words. */
static void philox(X *x, ry_value key, ry_value lo, ry_value hi, int64_t m, ry_value w[4]) {
  ry_value i = ry_iota_(B, L, RY_U64, RY_SHAPE(m), 0);
  ry_value l = ry_add_(B, L, ry_broadcast_to_(B, L, lo, RY_SHAPE(m)), i);
  ry_value h = ry_add_(B, L, ry_broadcast_to_(B, L, hi, RY_SHAPE(m)),
                       ry_convert_(B, L, ry_compare_(B, L, l, ry_broadcast_to_(B, L, lo, RY_SHAPE(m)), RY_LT), RY_U64));
  ry_value s[4] = {lo32(x, l), hi32(x, l), lo32(x, h), hi32(x, h)};
  ry_value k0 = lo32(x, key), k1 = hi32(x, key);
  for (int round = 0; round < 10; round++) {
    ry_value p0 = ry_mul_(B, L, ry_convert_(B, L, s[0], RY_U64), su64(x, 0xD2511F53u));
    ry_value p1 = ry_mul_(B, L, ry_convert_(B, L, s[2], RY_U64), su64(x, 0xCD9E8D57u));
    ry_value n0 = ry_xor_(B, L, ry_xor_(B, L, hi32(x, p1), s[1]), k0);
    ry_value n2 = ry_xor_(B, L, ry_xor_(B, L, hi32(x, p0), s[3]), k1);
    s[0] = n0, s[1] = lo32(x, p1), s[2] = n2, s[3] = lo32(x, p0);
    k0 = ry_add_(B, L, k0, su32(x, 0x9E3779B9u));
    k1 = ry_add_(B, L, k1, su32(x, 0xBB67AE85u));
  }
  for (int k = 0; k < 4; k++) w[k] = s[k];
}

/* n words taken round-robin from the k parts (each [m]), reshaped to s. */
static ry_value interleave(X *x, int k, ry_value *parts, int64_t m, int64_t n, ry_shape s) {
  for (int j = 0; j < k; j++) parts[j] = ry_reshape_(B, L, parts[j], RY_SHAPE(m, 1));
  ry_value v = ry_reshape_(B, L, ry_concatenate_(B, L, k, parts, 1), RY_SHAPE(m * k));
  v = ry_slice_(B, L, v, RY_AXES(0), RY_AXES(n), RY_AXES(1));
  return ry_reshape_(B, L, v, s);
}

bool shlo_c_rng_bit_generator(X *x) {
  if (x->n_in != 1 || x->n_res != 2) return shlo_xfail(x, RY_ERR_PARSE, "expects a state and two results");
  const shlo_span *a = shlo_attr(x, "rng_algorithm", "algorithm");
  shlo_span alg = a ? shlo_enum_word(*a) : (shlo_span){0};
  bool threefry = shlo_span_is(alg, "THREE_FRY"), phil = shlo_span_is(alg, "PHILOX") || shlo_span_is(alg, "DEFAULT");
  if (!threefry && !phil) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "rng_algorithm %.*s", alg.n > 40 ? 40 : alg.n, alg.p);
  ry_type st = ry_value_type(B, x->in[0]), rt = x->rt[1];
  int64_t ns = st.shape.rank == 1 ? st.shape.dims[0] : 0;
  if (st.dtype != RY_U64 || !(ns == 2 || (phil && ns == 3)))
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "an rng_bit_generator state that is not ui64[2] (or ui64[3] for PHILOX)");
  size_t bytes = ry_dtype_size(rt.dtype);
  if (rt.dtype == RY_BOOL || bytes == 0) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "random bits of type %s", ry_dtype_name(rt.dtype));
  bool wide = bytes == 8;
  ry_value key = elem(x, x->in[0], 0), bits, state;
  int64_t n = ry_shape_numel(rt.shape);
  if (threefry) {
    ry_value ctr = elem(x, x->in[0], 1);
    int64_t used = n;
    bits = wide ? threefry64(x, key, ctr, rt.shape) : threefry32(x, key, ctr, rt.shape, &used);
    ry_value parts[2] = {ry_reshape_(B, L, key, RY_SHAPE(1)), ry_reshape_(B, L, ry_add_(B, L, ctr, su64(x, (double)used)), RY_SHAPE(1))};
    state = ry_concatenate_(B, L, 2, parts, 0);
  } else {
    ry_value lo = elem(x, x->in[0], 1), hi = ns == 3 ? elem(x, x->in[0], 2) : key;
    int64_t words = wide ? 2 * n : n, m = (words + 3) / 4;
    ry_value w[4];
    philox(x, key, lo, hi, m, w);
    if (wide) {
      ry_value p[2] = {join64(x, w[0], w[1]), join64(x, w[2], w[3])};
      bits = interleave(x, 2, p, m, n, rt.shape);
    } else {
      bits = interleave(x, 4, w, m, n, rt.shape);
    }
    ry_value nlo = ry_add_(B, L, lo, su64(x, (double)m));
    ry_value nhi = ry_add_(B, L, hi, ry_convert_(B, L, ry_compare_(B, L, nlo, lo, RY_LT), RY_U64));
    ry_value parts[3] = {ry_reshape_(B, L, key, RY_SHAPE(1)), ry_reshape_(B, L, nlo, RY_SHAPE(1)), ry_reshape_(B, L, nhi, RY_SHAPE(1))};
    state = ry_concatenate_(B, L, (int)ns, parts, 0);
  }
  /* narrow words are the low bits of 32-bit ones; then the element type's bits */
  if (bytes < 4) bits = ry_convert_(B, L, bits, unsigned_of(bytes));
  if (ry_value_dtype(B, bits) != rt.dtype) bits = ry_bitcast_convert_(B, L, bits, rt.dtype);
  ry_value out[2] = {state, bits};
  return shlo_finish(x, 2, out);
}

/* ---- reduce_precision ---- */

/* x rounded to a float of `eb` exponent and `mb` mantissa bits and back, as
 * XLA does it on the bits: round to nearest even at the last kept mantissa
 * bit, then exponents beyond the narrow range become infinity (overflow) or
 * zero (underflow, no subnormals), keeping the sign; NaN stays NaN. That
 * is XLA's CPU result, which JAX programs get; the StableHLO interpreter
 * turns NaN into +inf when no mantissa bit is kept (its suite's
 * reduce_precision.mlir#1 checks that, and fails here). */
bool shlo_c_reduce_precision(X *x) {
  if (x->n_in != 1) return shlo_xfail(x, RY_ERR_PARSE, "expects one operand");
  int64_t eb = -1, mb = -1;
  const shlo_span *f = shlo_attr(x, "format", NULL), *e = shlo_attr(x, "exponent_bits", NULL), *m = shlo_attr(x, "mantissa_bits", NULL);
  if (f) {
    char buf[32];
    int n = f->n < 31 ? f->n : 31;
    memcpy(buf, f->p, (size_t)n);
    buf[n] = 0;
    long long a, b;
    if (sscanf(buf, "e%lldm%lld", &a, &b) == 2) eb = a, mb = b;
  } else if (e && m) {
    shlo_int(*e, &eb);
    shlo_int(*m, &mb);
  }
  ry_type t = ry_value_type(B, x->in[0]);
  int w = (int)(8 * ry_dtype_size(t.dtype));
  int sm = t.dtype == RY_F64 ? 52 : t.dtype == RY_F32 ? 23 : t.dtype == RY_F16 ? 10 : t.dtype == RY_BF16 ? 7 : -1;
  int se = w - 1 - sm;
  if (sm < 0) return shlo_xfail(x, RY_ERR_DTYPE, "reduce_precision of %s (a float dtype)", ry_dtype_name(t.dtype));
  if (eb < 1 || mb < 0 || eb > 64 || mb > 64) return shlo_xfail(x, RY_ERR_PARSE, "malformed exponent and mantissa bit counts");
  ry_dtype ut = unsigned_of((size_t)w / 8);
  ry_value v = ry_bitcast_convert_(B, L, x->in[0], ut);
#define U(c) ry_scalar_(B, L, ut, (double)(c))
  if (mb < sm) {
    int drop = sm - (int)mb;
    uint64_t last = UINT64_C(1) << drop;
    ry_value lastbit = ry_shift_right_logical_(B, L, ry_and_(B, L, v, U(last)), U(drop));
    ry_value bias = ry_add_(B, L, lastbit, U((last >> 1) - 1));
    ry_value mask = ry_not_(B, L, U(last - 1));
    v = ry_and_(B, L, ry_add_(B, L, v, bias), mask);
  }
  if (eb < se) {
    uint64_t expmask = ((UINT64_C(1) << se) - 1) << sm, bias = (UINT64_C(1) << (se - 1)) - 1;
    uint64_t rbias = (UINT64_C(1) << (eb - 1)) - 1;
    ry_value ex = ry_and_(B, L, v, U(expmask));
    ry_value over = ry_compare_(B, L, ex, U((bias + rbias) << sm), RY_GT);
    ry_value under = ry_compare_(B, L, ex, U((bias - rbias) << sm), RY_LE);
    ry_value sz = ry_and_(B, L, v, ry_shift_left_(B, L, U(1), U(w - 1)));
    ry_value sinf = ry_or_(B, L, sz, U(expmask));
    v = ry_select_(B, L, over, sinf, ry_select_(B, L, under, sz, v));
  }
#undef U
  ry_value r = ry_bitcast_convert_(B, L, v, t.dtype);
  r = ry_select_(B, L, ry_compare_(B, L, x->in[0], x->in[0], RY_NE), x->in[0], r);
  return shlo_finish1(x, r);
}
