/* f32 math that vectorizes (inline polynomials, no calls), shared by every
 * module the cpu backend generates (the build pastes this file into their
 * prelude as text, after prelude.h's definitions) and by the library's
 * loops over arrays (module/vmath.c) that a program's runs use node by node
 * while its module compiles: both compute the same bits. Needs <math.h>,
 * <stdint.h> and <string.h> first. */
/* expf inline, so loops with exp vectorize without a call: 2^n e^r with
 * n = rint(x log2 e), r = x - n ln2 (ln2 in two parts), e^r by its Taylor
 * polynomial of degree 7 (|r| <= ln2/2: under 1 ulp from exp), 2^n applied
 * in two factors so results down to the subnormals round once */
static inline float ry_expf(float x) {
  /* x clamped below at -110 (NaN kept), n above at 128 (NaN to 128: the
     int conversion below is defined): beyond 89 the result overflows to
     inf as it did with x clamped at 89, and a NaN x flows through r and p
     to the result. Two compares and two blends once vectorized: clamping
     x on both sides, gcc merged the two selects into four of each */
  float xc = x < -110.0f ? -110.0f : x;
  float n = __builtin_rintf(xc * 0x1.715476p+0f);
  n = n < 128.0f ? n : 128.0f;
  float r = __builtin_fmaf(n, -0x1.62e400p-1f, xc);
  r = __builtin_fmaf(n, -0x1.7f7d1cp-20f, r);
  float p = 0x1.a01a02p-13f;
  p = __builtin_fmaf(p, r, 0x1.6c16c2p-10f); p = __builtin_fmaf(p, r, 0x1.111112p-7f);
  p = __builtin_fmaf(p, r, 0x1.555556p-5f); p = __builtin_fmaf(p, r, 0x1.555556p-3f);
  p = __builtin_fmaf(p, r, 0.5f); p = __builtin_fmaf(p, r, 1.0f); p = __builtin_fmaf(p, r, 1.0f);
  int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
  uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
  float s1, s2; memcpy(&s1, &b1, 4); memcpy(&s2, &b2, 4);
  return p * s1 * s2; }
/* erff inline, vectorizable (glibc's vector erff made gelu compute-bound):
 * |x| <= 1: x (c0 + u Q(u)), u = x^2, Q of degree 5; 1 < |x| < 3.92: a degree-14
 * polynomial in t = (|x| - 2.46) / 1.46; 1 beyond. Both are least-squares fits on
 * Chebyshev nodes to mpmath's erf; at most 2.2 ulp over every f32 (checked
 * exhaustively against double erf), odd, NaN kept */
static inline float ry_erff(float x) {
  float a = fabsf(x), u = a * a;
  float q = 0x1.4a9db4p-14f;
  q = __builtin_fmaf(q, u, -0x1.a46b4ep-11f); q = __builtin_fmaf(q, u, 0x1.541638p-8f);
  q = __builtin_fmaf(q, u, -0x1.b7fb38p-6f); q = __builtin_fmaf(q, u, 0x1.ce2d18p-4f);
  q = __builtin_fmaf(q, u, -0x1.81273ep-2f);
  float small = __builtin_fmaf(a, 0x1.20dd74p+0f, a * (u * q));
  float t = (a - 0x1.3ae148p+1f) * 0x1.5eaf58p-1f;
  float p = 0x1.caf194p-13f;
  p = __builtin_fmaf(p, t, 0x1.b37492p-17f); p = __builtin_fmaf(p, t, -0x1.aa35eap-10f);
  p = __builtin_fmaf(p, t, 0x1.a022e0p-10f); p = __builtin_fmaf(p, t, 0x1.b563a8p-9f);
  p = __builtin_fmaf(p, t, -0x1.27eeccp-7f); p = __builtin_fmaf(p, t, 0x1.e188e2p-8f);
  p = __builtin_fmaf(p, t, 0x1.a9ac80p-8f); p = __builtin_fmaf(p, t, -0x1.d21614p-6f);
  p = __builtin_fmaf(p, t, 0x1.718446p-5f); p = __builtin_fmaf(p, t, -0x1.7106f4p-5f);
  p = __builtin_fmaf(p, t, 0x1.f55978p-6f); p = __builtin_fmaf(p, t, -0x1.c86ccap-7f);
  p = __builtin_fmaf(p, t, 0x1.fc4fa6p-9f); p = __builtin_fmaf(p, t, 0x1.ffbe06p-1f);
  /* a NaN x (a NaN a) fails every test below and takes p's path, which
     carries it to the result, copysign giving back x's sign: no select
     for NaN */
  float r = a <= 1.0f ? small : a >= 3.92f ? 1.0f : p > 1.0f ? 1.0f : p;
  return copysignf(r, x);
}
