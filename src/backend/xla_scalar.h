/* xla_scalar.h - XLA's scalar semantics where C's differ, written once.
 *
 * The interpreter compiles this header (interp.h includes it), and the build
 * embeds it verbatim into the prelude of every C module the cpu backend
 * generates (CMake writes it as a string, xla_scalar.inc, see
 * cmake/embed.cmake), so the two backends cannot drift: integer division by
 * zero and of INT_MIN by -1, remainders, integer powers with negative
 * exponents, shifts by the width or more, NaN-propagating max/min where
 * +0 > -0, sign and logistic at NaN, and float-to-integer conversion that
 * saturates and maps NaN to 0; erf_inv, computed the same way by both.
 *
 * Self-contained: it needs only <math.h> and <stdint.h>, and holds nothing
 * but static inline functions and one macro, prefixed ryx_ / RYX_. */
#ifndef RYFT_BACKEND_XLA_SCALAR_H
#define RYFT_BACKEND_XLA_SCALAR_H

#include <math.h>
#include <stdint.h>

/* max/min: NaN propagates (the first NaN operand), +0 beats -0 */
static inline float ryx_fmaxf(float a, float b) { return a != a ? a : b != b ? b : a == b ? (signbit(a) ? b : a) : a > b ? a : b; }
static inline float ryx_fminf(float a, float b) { return a != a ? a : b != b ? b : a == b ? (signbit(a) ? a : b) : a < b ? a : b; }
static inline double ryx_fmax(double a, double b) { return a != a ? a : b != b ? b : a == b ? (signbit(a) ? b : a) : a > b ? a : b; }
static inline double ryx_fmin(double a, double b) { return a != a ? a : b != b ? b : a == b ? (signbit(a) ? a : b) : a < b ? a : b; }

/* sign keeps NaN and the sign of zero */
static inline float ryx_signf(float x) { return x != x ? x : x > 0 ? 1.0f : x < 0 ? -1.0f : x; }
static inline double ryx_sign(double x) { return x != x ? x : x > 0 ? 1.0 : x < 0 ? -1.0 : x; }

/* 1 / (1 + exp(-x)) without overflow: e = exp(-|x|), e / (1 + e) below 0.
   One formula for f32 and f64, the exp the caller's (the cpu backend's
   generated code passes its vectorizable ry_expf). */
#define RYX_LOGISTIC_E(x, e) (((x) >= 0 ? 1 : (e)) / (1 + (e)))
static inline float ryx_logistic_e(float x, float e) { return RYX_LOGISTIC_E(x, e); }
static inline float ryx_logisticf(float x) { return ryx_logistic_e(x, expf(-fabsf(x))); }
static inline double ryx_logistic(double x) { double e = exp(-fabs(x)); return RYX_LOGISTIC_E(x, e); }

/* integer division: x / 0 = -1, x % 0 = x, INT_MIN / -1 wraps, x % -1 = 0 */
static inline int64_t ryx_idiv(int64_t a, int64_t b) { return b == 0 ? -1 : b == -1 ? (int64_t)(0ull - (uint64_t)a) : a / b; }
static inline int64_t ryx_irem(int64_t a, int64_t b) { return b == 0 ? a : b == -1 ? 0 : a % b; }
/* the same for unsigned integers: x / 0 = all ones, x % 0 = x */
static inline uint64_t ryx_udiv(uint64_t a, uint64_t b) { return b == 0 ? ~0ull : a / b; }
static inline uint64_t ryx_urem(uint64_t a, uint64_t b) { return b == 0 ? a : a % b; }

/* integer power by squaring, wrapping; a negative exponent gives 0 except
 * for bases 1 and -1 */
static inline int64_t ryx_ipow(int64_t base, int64_t e) {
  if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
  uint64_t r = 1, b = (uint64_t)base, ue = (uint64_t)e;
  while (ue) { if (ue & 1) r *= b; b *= b; ue >>= 1; }
  return (int64_t)r;
}

/* leading zero bits of the `bits`-wide integer x (its low bits), `bits` for 0 */
static inline int64_t ryx_clz(uint64_t x, int bits) { return x == 0 ? bits : __builtin_clzll(x) - (64 - bits); }

/* the low `bits` bits of x as unsigned / signed */
static inline uint64_t ryx_zext(uint64_t x, int bits) { return bits >= 64 ? x : x & ((1ull << bits) - 1); }
static inline int64_t ryx_sext(uint64_t x, int bits) {
  if (bits >= 64) return (int64_t)x;
  uint64_t m = 1ull << (bits - 1);
  x &= (1ull << bits) - 1;
  return (int64_t)((x ^ m) - m);
}

/* shifts on `bits`-wide integers: the count is unsigned (a negative one is
 * huge); a count of the width or more gives 0, or the sign for an
 * arithmetic right shift */
static inline int64_t ryx_shl(int64_t a, int64_t b, int bits) {
  uint64_t c = ryx_zext((uint64_t)b, bits);
  return c >= (uint64_t)bits ? 0 : (int64_t)((uint64_t)a << c);
}
static inline int64_t ryx_shrl(int64_t a, int64_t b, int bits) {
  uint64_t c = ryx_zext((uint64_t)b, bits);
  return c >= (uint64_t)bits ? 0 : (int64_t)(ryx_zext((uint64_t)a, bits) >> c);
}
static inline int64_t ryx_shra(int64_t a, int64_t b, int bits) {
  uint64_t c = ryx_zext((uint64_t)b, bits);
  int64_t sx = ryx_sext((uint64_t)a, bits);
  if (c >= (uint64_t)bits) c = (uint64_t)bits - 1;
  return sx >= 0 ? sx >> c : ~(~sx >> c);
}

/* Inverse error function to double precision: Giles' single-precision
 * approximation ("Approximating the erfinv function", 2010) as a start, then
 * Newton steps on erf (on log erfc near +-1, where 1-|y| is exact). */
static inline double ryx_erf_inv(double y) {
  if (isnan(y) || y < -1 || y > 1) return NAN;
  if (y == 1) return INFINITY;
  if (y == -1) return -INFINITY;
  if (y == 0) return y;
  double w = -log((1.0 - y) * (1.0 + y)), p;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double x = p * y, a = fabs(y), ax = fabs(x);
  const double two_over_sqrt_pi = 1.1283791670955126;
  for (int it = 0; it < 12; it++) {
    double d = two_over_sqrt_pi * exp(-ax * ax), step;
    if (a < 0.5) {
      step = (erf(ax) - a) / d; /* Newton on erf(ax) = a */
    } else {
      /* near 1: Newton on log(erfc(ax)) = log(1 - a), where 1 - a is exact
       * and the log keeps the steps well scaled in the tail */
      double e = erfc(ax);
      if (!(e > 0)) {
        ax *= 0.9;
        continue;
      }
      step = -(log(e) - log1p(-a)) * e / d;
    }
    ax -= step;
    if (fabs(step) <= 1e-17 * ax) break;
  }
  return y < 0 ? -ax : ax;
}

/* float (as double) to the integer type T of range [LO, HI]: saturating,
 * NaN to 0 */
#define RYX_F2I(T, LO, HI, x) \
  ((x) != (x) ? (T)0 : (x) <= (double)(LO) ? (T)(LO) : (x) >= (double)(HI) ? (T)(HI) : (T)(x))

#endif
