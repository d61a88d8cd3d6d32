/* The sgemm module the cpu backend compiles for the host the first time a
 * program needs a GEMM (gemm.c loads it): packing, the MR x NR micro-kernels
 * (ukr: packed A, ukr_d: A read in place), the few-row GEMV, and the bf16
 * GEMM of mixed precision (ryg_bgemm: bf16 operands, f32 sums; on AMX tiles
 * where the CPU and Linux allow them). This file is
 * not part of the library build: cmake/embed.cmake pastes it into gemm.c as
 * text (gemm_module.inc), and the JIT compiles it with -march=native. */
/* ryft sgemm: packed, register-blocked */
/* the names it exports: ryg_<name> when the JIT compiles it for the host;
   module/builtin.c names each level it builds into the library */
#ifndef RYG
#define RYG(name) ryg_##name
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__FMA__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
#ifndef MR
#define MR 6 /* rows of the micro-kernels: 6, 8, 12 or 14 */
#endif
#if MR == 6
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#elif MR == 8
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#elif MR == 12
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif MR == 14
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#endif
#define NR (2 * VL)
/* The default shape was measured best on AMD Zen 4/5; gemm.c builds and
   picks a tall one (MR 12, KC 512, the k loop unrolled twice) for Intel
   cores with AVX-512, where it measured 15% faster (bench/RESULTS.md) */
#ifndef UNROLL_K
#define UNROLL_K 1
#endif
#define SG_PRAGMA_(x) _Pragma(#x)
#define SG_PRAGMA(x) SG_PRAGMA_(x)
#ifndef KC
#define KC 384
#endif
#ifndef MC
#define MC 96
#endif
#ifndef NC
#define NC 3072
#endif
#ifndef DIRECT_PANELS
#define DIRECT_PANELS 4
#endif
typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));
/* a * b + c, fused where the target has FMA: written out rather than left
   to contraction, which gcc's tuning for some cores skips in some loops and
   not in others (-mtune=znver3 avoids FMA chains), so a GEMV's column would
   round differently by the path it took and the library's built-in levels
   (generic tuning) would differ from the JIT's -march=native module.
   VSPLAT: a float in every lane */
#if defined(__FMA__) && VL == 16
#define VFMA(a, b, c) ((vf)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define VSPLAT(x) ((vf)_mm512_set1_ps(x))
#elif defined(__FMA__) && VL == 8
#define VFMA(a, b, c) ((vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define VSPLAT(x) ((vf)_mm256_set1_ps(x))
#elif defined(__FMA__) && VL == 4
#define VFMA(a, b, c) ((vf)_mm_fmadd_ps((__m128)(a), (__m128)(b), (__m128)(c)))
#define VSPLAT(x) ((vf)_mm_set1_ps(x))
#endif
#ifdef VFMA
#define SFMA(a, b, c) __builtin_fmaf(a, b, c)
#else /* no FMA instruction: nothing to contract into */
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VSPLAT(x) vsplat(x)
static inline vf vsplat(float x) { vf v; for (int l = 0; l < VL; l++) v[l] = x; return v; }
#define SFMA(a, b, c) ((a) * (b) + (c))
#endif
/* a micro-kernel stores its tile of C after kc steps: fetch the lines meanwhile */
#define PREFETCH_C for (int i = 0; i < mr; i++) { __builtin_prefetch(c + i * ldc, 1); __builtin_prefetch(c + i * ldc + NR - 1, 1); }
/* What is above goes into both halves when the JIT compiles this module as
   two processes at once (jit.c cuts it at the split mark below): the f32
   GEMM and GEMV, and the bf16 GEMM, which share only the definitions above. */

/* ryc:end of prelude */
static inline float A_at(const float *a, int ta, int64_t m, int64_t k, int64_t i, int64_t p) {
  return ta ? a[p * m + i] : a[i * k + p]; }
static inline float B_at(const float *b, int tb, int64_t k, int64_t n, int64_t p, int64_t j) {
  return tb ? b[j * k + p] : b[p * n + j]; }
/* pack A[i0:i0+mc, p0:p0+kc] into MR-row strips, zero padded */
static void pack_a(const float *a, int ta, int64_t m, int64_t k, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float *ap) {
  if (ta) { /* A stored (k, m): read each row's mc elements once, place them in every strip */
    for (int64_t p = 0; p < kc; p++) {
      const float *src = a + (p0 + p) * m + i0;
      /* the rows are far apart: ask for this row's next block now */
      if (i0 + 2 * mc <= m) for (int64_t q = 0; q < mc; q += 16) __builtin_prefetch(src + mc + q);
      for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = ap + ir * kc + p * MR;
        if (mr == MR) memcpy(dst, src + ir, MR * sizeof(float));
        else for (int i = 0; i < MR; i++) dst[i] = i < mr ? src[ir + i] : 0.0f;
      }
    }
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {
    int64_t mr = mc - ir < MR ? mc - ir : MR;
    if (mr == MR) {
      for (int64_t p = 0; p < kc; p++) for (int i = 0; i < MR; i++) ap[p * MR + i] = a[(i0 + ir + i) * k + p0 + p];
    } else {
      for (int64_t p = 0; p < kc; p++) for (int i = 0; i < MR; i++)
        ap[p * MR + i] = i < mr ? a[(i0 + ir + i) * k + p0 + p] : 0.0f;
    }
    ap += MR * kc;
  }
}
static void pack_b(const float *b, int tb, int64_t k, int64_t n, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *bp) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    int64_t nr = nc - jr < NR ? nc - jr : NR;
    if (!tb && nr == NR) {
      for (int64_t p = 0; p < kc; p++) memcpy(bp + p * NR, b + (p0 + p) * n + j0 + jr, NR * sizeof(float));
    } else if (tb && nr == NR) { /* B stored (n, k): read each row along k in blocks of 8 */
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8)
        for (int j = 0; j < NR; j++) { const float *src = b + (j0 + jr + j) * k + p0 + p;
          for (int q = 0; q < 8; q++) bp[(p + q) * NR + j] = src[q]; }
      for (; p < kc; p++) for (int j = 0; j < NR; j++) bp[p * NR + j] = b[(j0 + jr + j) * k + p0 + p];
    } else if (tb) { /* a partial panel of B stored (n, k) */
      for (int j = 0; j < NR; j++) {
        const float *src = b + (j0 + jr + j) * k + p0;
        if (j < nr) for (int64_t p = 0; p < kc; p++) bp[p * NR + j] = src[p];
        else for (int64_t p = 0; p < kc; p++) bp[p * NR + j] = 0.0f;
      }
    } else {
      for (int64_t p = 0; p < kc; p++) for (int j = 0; j < NR; j++)
        bp[p * NR + j] = j < nr ? B_at(b, tb, k, n, p0 + p, j0 + jr + j) : 0.0f;
    }
    bp += NR * kc;
  }
}
#define ROW(i) vf c##i##0 = z, c##i##1 = z;
#define FMA(i) { vf ai = VSPLAT(ap[p * MR + i]); c##i##0 = VFMA(ai, b0, c##i##0); c##i##1 = VFMA(ai, b1, c##i##1); }
#define STORE(i) if (i < mr) { float *r = c + (int64_t)i * ldc; \
  if (nr == NR) { vfu *r0 = (vfu *)r, *r1 = (vfu *)(r + VL); \
    if (first) { *r0 = c##i##0; *r1 = c##i##1; } else { *r0 += c##i##0; *r1 += c##i##1; } } \
  else { float t[NR]; memcpy(t, &c##i##0, VL * 4); memcpy(t + VL, &c##i##1, VL * 4); \
    for (int j = 0; j < nr; j++) r[j] = first ? t[j] : r[j] + t[j]; } }
static void ukr(int64_t kc, const float *restrict ap, const float *restrict bp, float *restrict c, int64_t ldc,
                int mr, int nr, int first) {
  const vf z = {0};
  PREFETCH_C
  FOR_ROWS(ROW)
  SG_PRAGMA(GCC unroll UNROLL_K)
  for (int64_t p = 0; p < kc; p++) {
    vf b0 = *(const vf *)(bp + p * NR), b1 = *(const vf *)(bp + p * NR + VL);
    FOR_ROWS(FMA)
  }
  FOR_ROWS(STORE)
}
/* the same product reading A (row-major, unpacked) through MR row pointers:
   when C has at most DIRECT_PANELS panels of columns, each A element is used
   a few times and packing it (a scalar transpose) would cost more than
   reading it in place from L1 for each panel (convolutions, the input
   gradient of a language model's output layer) */
#define FMAD(i) { vf ai = VSPLAT(a##i[p]); c##i##0 = VFMA(ai, b0, c##i##0); c##i##1 = VFMA(ai, b1, c##i##1); }
static void ukr_d(int64_t kc, const float *a, int64_t lda, const float *restrict bp, float *restrict c, int64_t ldc,
                  int mr, int nr, int first) {
  const vf z = {0};
  /* rows past mr (never stored) read the last real row */
#define AROW(i) const float *a##i = a + (mr > i ? i : mr - 1) * lda;
  FOR_ROWS(AROW)
  PREFETCH_C
  FOR_ROWS(ROW)
  for (int64_t p = 0; p < kc; p++) {
    vf b0 = *(const vf *)(bp + p * NR), b1 = *(const vf *)(bp + p * NR + VL);
    FOR_ROWS(FMAD)
  }
  FOR_ROWS(STORE)
}
/* a few rows of A (matrix-vector products: decoding a language model):
   no packing, B streamed once. B stored (n, k): C[i, j] is the dot product
   of two contiguous rows, in VL-wide partial sums then a fixed tree; B
   stored (k, n): rows of B scaled and added, p ascending. Either way an
   element's order depends on k alone, not on the columns a thread gets. */
#if defined(__has_builtin) && VL == 16
#if __has_builtin(__builtin_shufflevector)
#define HSUM_SHUFFLE 1
#endif
#endif
#ifdef HSUM_SHUFFLE /* the same tree in registers: lane q + lane q + w, w = 8, 4, 2, 1 */
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf4 __attribute__((vector_size(16)));
typedef float vf2 __attribute__((vector_size(8)));
static inline float hsum(vf v) {
  vf8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  vf4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  vf2 c = __builtin_shufflevector(b, b, 0, 1) + __builtin_shufflevector(b, b, 2, 3);
  return c[0] + c[1]; }
#else
static inline float hsum(vf v) { float t[VL]; memcpy(t, &v, sizeof t);
  for (int w = VL / 2; w > 0; w /= 2) for (int q = 0; q < w; q++) t[q] += t[q + w];
  return t[0]; }
#endif
void RYG(sgemv)(int tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, int64_t j_lo,
               int64_t j_hi) {
  const vf z = {0};
  if (tb) {
    for (int64_t j = j_lo; j < j_hi; j++) {
      const float *br = b + j * k;
      for (int64_t i = 0; i < m; i++) {
        const float *ar = a + i * k;
        vf s0 = z, s1 = z, s2 = z, s3 = z;
        int64_t p = 0;
        for (; p + 4 * VL <= k; p += 4 * VL) {
          s0 = VFMA(*(const vfu *)(ar + p), *(const vfu *)(br + p), s0);
          s1 = VFMA(*(const vfu *)(ar + p + VL), *(const vfu *)(br + p + VL), s1);
          s2 = VFMA(*(const vfu *)(ar + p + 2 * VL), *(const vfu *)(br + p + 2 * VL), s2);
          s3 = VFMA(*(const vfu *)(ar + p + 3 * VL), *(const vfu *)(br + p + 3 * VL), s3);
        }
        for (; p + VL <= k; p += VL) s0 = VFMA(*(const vfu *)(ar + p), *(const vfu *)(br + p), s0);
        float acc = hsum((s0 + s1) + (s2 + s3));
        for (; p < k; p++) acc = SFMA(ar[p], br[p], acc);
        c[i * n + j] = acc;
      }
    }
    return;
  }
  /* up to four rows of A at a time, their sums held in registers over all
     of k: four vectors of columns, then single vectors (a thread's columns
     need not be whole blocks), then the scalar tail; each element's sum is
     over p in order, as for one row alone */
  for (int64_t i0 = 0; i0 < m; i0 += 4) {
    const int64_t mr = m - i0 < 4 ? m - i0 : 4;
    const float *a0 = a + i0 * k;
    float *c0 = c + i0 * n;
    int64_t j = j_lo;
    for (; j + 4 * VL <= j_hi; j += 4 * VL) {
      vf s[4][4];
      for (int64_t i = 0; i < mr; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = z;
      for (int64_t p = 0; p < k; p++) {
        const float *br = b + p * n + j;
        vf b0 = *(const vfu *)br, b1 = *(const vfu *)(br + VL), b2 = *(const vfu *)(br + 2 * VL), b3 = *(const vfu *)(br + 3 * VL);
        for (int64_t i = 0; i < mr; i++) {
          const vf ap = VSPLAT(a0[i * k + p]);
          s[i][0] = VFMA(ap, b0, s[i][0]);
          s[i][1] = VFMA(ap, b1, s[i][1]);
          s[i][2] = VFMA(ap, b2, s[i][2]);
          s[i][3] = VFMA(ap, b3, s[i][3]);
        }
      }
      for (int64_t i = 0; i < mr; i++)
        for (int q = 0; q < 4; q++) *(vfu *)(c0 + i * n + j + q * VL) = s[i][q];
    }
    for (; j + VL <= j_hi; j += VL) {
      vf s[4];
      for (int64_t i = 0; i < mr; i++) s[i] = z;
      for (int64_t p = 0; p < k; p++) {
        vf b0 = *(const vfu *)(b + p * n + j);
        for (int64_t i = 0; i < mr; i++) s[i] = VFMA(VSPLAT(a0[i * k + p]), b0, s[i]);
      }
      for (int64_t i = 0; i < mr; i++) *(vfu *)(c0 + i * n + j) = s[i];
    }
    for (int64_t i = 0; i < mr; i++) {
      float *cr = c0 + i * n;
      const float *ar = a0 + i * k;
      for (int64_t q = j; q < j_hi; q++) cr[q] = 0.0f;
      for (int64_t p = 0; p < k && j < j_hi; p++)
        for (int64_t q = j; q < j_hi; q++) cr[q] = SFMA(ar[p], b[p * n + q], cr[q]);
    }
  }
}
int RYG(nr)(void) { return NR; }
int RYG(vl)(void) { return VL; }
/* floats of packing workspace one call needs (64-byte aligned) */
int64_t RYG(ws_floats)(void) { return (int64_t)KC * (NC + NR) + (int64_t)KC * (MC + MR); }
int RYG(mr)(void) { return MR; }
/* rows [i_lo, i_hi) x columns [j_lo, j_hi) of C (m, n) = A * B; ws:
   ryg_ws_floats() floats. Each element is summed over k in the same order
   whatever the block, so any split of C gives the same bits. */
void RYG(sgemm)(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c,
               int64_t i_lo, int64_t i_hi, int64_t j_lo, int64_t j_hi, float *ws) {
  if (k == 0) { for (int64_t i = i_lo; i < i_hi; i++) for (int64_t j = j_lo; j < j_hi; j++) c[i * n + j] = 0.0f; return; }
  float *bp = ws, *ap = ws + (int64_t)KC * (NC + NR);
  int direct = !ta && j_hi - j_lo <= DIRECT_PANELS * NR; /* A read in place (ukr_d) */
  for (int64_t j0 = j_lo; j0 < j_hi; j0 += NC) {
    int64_t nc = j_hi - j0 < NC ? j_hi - j0 : NC;
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
      int64_t kc = k - p0 < KC ? k - p0 : KC;
      pack_b(b, tb, k, n, p0, kc, j0, nc, bp);
      for (int64_t i0 = i_lo; i0 < i_hi; i0 += MC) {
        int64_t mc = i_hi - i0 < MC ? i_hi - i0 : MC;
        if (!direct) pack_a(a, ta, m, k, i0, mc, p0, kc, ap);
        if (direct) /* a strip of A stays in L1 for all the panels */
          for (int64_t ir = 0; ir < mc; ir += MR)
            for (int64_t jr = 0; jr < nc; jr += NR) {
              int mr = (int)(mc - ir < MR ? mc - ir : MR), nr = (int)(nc - jr < NR ? nc - jr : NR);
              ukr_d(kc, a + (i0 + ir) * k + p0, k, bp + jr * kc, c + (i0 + ir) * n + j0 + jr, n, mr, nr, p0 == 0);
            }
        else
          for (int64_t jr = 0; jr < nc; jr += NR)
            for (int64_t ir = 0; ir < mc; ir += MR) {
              int mr = (int)(mc - ir < MR ? mc - ir : MR), nr = (int)(nc - jr < NR ? nc - jr : NR);
              ukr(kc, ap + ir * kc, bp + jr * kc, c + (i0 + ir) * n + j0 + jr, n, mr, nr, p0 == 0);
            }
      }
    }
  }
}


/* ryc:split */
/* ---- bf16 x bf16 -> f32 ----
 * Operands are bf16 bit patterns; every product is exact in f32 and the sums
 * are f32. k is packed in pairs: an A strip holds (a[i][p], a[i][p+1]) as one
 * 32-bit word per row, a B panel NR such words per pair, so one vdpbf16ps
 * (AVX512-BF16) does two k steps. Without it the same pairs are widened to
 * f32 and added in vdpbf16ps's order (the odd product, then the even one), so
 * both give the same sums except that vdpbf16ps flushes denormals. Blocking
 * as in ryg_sgemm, with KC pairs: the packed panels take the same workspace. */
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef uint32_t vuu __attribute__((vector_size(VL * 4), aligned(4)));
/* element i of an operand as bf16 bits: stored bf16, or f32 rounded to
   nearest even here (a convert folded into the packing; NaN kept quiet) */
static inline uint32_t E16(const void *p, int f32, int64_t i) {
  if (!f32) return ((const uint16_t *)p)[i];
  uint32_t x; memcpy(&x, (const float *)p + i, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40;
  return (x + 0x7fffu + ((x >> 16) & 1)) >> 16;
}
static inline uint32_t A16(const void *a, int f, int ta, int64_t m, int64_t k, int64_t i, int64_t p) {
  return p < k ? E16(a, f, ta ? p * m + i : i * k + p) : 0; }
static inline uint32_t B16(const void *b, int f, int tb, int64_t k, int64_t n, int64_t p, int64_t j) {
  return p < k ? E16(b, f, tb ? j * k + p : p * n + j) : 0; }
typedef uint16_t vh __attribute__((vector_size(VL * 2)));
/* VL f32 as bf16 bits (E16's rounding) */
static inline vh round16(vu x) {
  vu nan = (x & 0x7fffffffu) > 0x7f800000u;
  vu r = (((x + 0x7fffu + ((x >> 16) & 1)) >> 16) & ~nan) | (((x >> 16) | 0x40) & nan);
  return __builtin_convertvector(r, vh);
}
/* n f32 from src rounded to bf16 bits into t, VL at a time */
static void round_run(const float *src, int64_t n, uint16_t *t) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) {
    vu x; memcpy(&x, src + i, sizeof x);
    vh h = round16(x);
    memcpy(t + i, &h, sizeof h);
  }
  for (; i < n; i++) t[i] = (uint16_t)E16(src, 1, i);
}
/* n elements from off as bf16 bits: the operand itself when it is bf16,
   else rounded into t */
static inline const uint16_t *bits16(const void *p, int f32, int64_t off, int64_t n, uint16_t *t) {
  if (!f32) return (const uint16_t *)p + off;
  round_run((const float *)p + off, n, t);
  return t;
}
#define KP2 (2 * KC)
/* A[i0:i0+mc, p0:p0+2*kp] into MR-row strips of pairs, zero padded */
static void pack_a16(const void *a, int f, int ta, int64_t m, int64_t k, int64_t i0, int64_t mc, int64_t p0, int64_t kp,
                     uint32_t *ap) {
  uint16_t t0[KP2 > MC ? KP2 : MC], t1[MC];
  if (!ta && p0 + 2 * kp <= k) { /* rows of A hold the pairs: a row (rounded if f32), then its words */
    for (int64_t ir = 0; ir < mc; ir += MR) {
      int64_t mr = mc - ir < MR ? mc - ir : MR;
      for (int i = 0; i < MR; i++) {
        if (i >= mr) { for (int64_t q = 0; q < kp; q++) ap[q * MR + i] = 0; continue; }
        const uint16_t *r = bits16(a, f, (i0 + ir + i) * k + p0, 2 * kp, t0);
        for (int64_t q = 0; q < kp; q++) ap[q * MR + i] = (uint32_t)r[2 * q] | (uint32_t)r[2 * q + 1] << 16;
      }
      ap += MR * kp;
    }
    return;
  }
  if (ta && p0 + 2 * kp <= k) { /* A stored (k, m): a pair spans two rows; both rows' mc elements */
    int64_t es = f ? 4 : 2; /* bytes per element */
    for (int64_t q = 0; q < kp; q++) {
      /* the rows are far apart: ask for both rows' next block now */
      if (i0 + 2 * mc <= m)
        for (int64_t b = 0; b < mc * es; b += 64) {
          __builtin_prefetch((const char *)a + ((p0 + 2 * q) * m + i0 + mc) * es + b);
          __builtin_prefetch((const char *)a + ((p0 + 2 * q + 1) * m + i0 + mc) * es + b);
        }
      const uint16_t *r0 = bits16(a, f, (p0 + 2 * q) * m + i0, mc, t0), *r1 = bits16(a, f, (p0 + 2 * q + 1) * m + i0, mc, t1);
      uint32_t *dst = ap;
      for (int64_t ir = 0; ir < mc; ir += MR, dst += MR * kp) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        for (int i = 0; i < MR; i++)
          dst[q * MR + i] = i < mr ? (uint32_t)r0[ir + i] | (uint32_t)r1[ir + i] << 16 : 0;
      }
    }
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += MR) {
    int64_t mr = mc - ir < MR ? mc - ir : MR;
    for (int64_t q = 0; q < kp; q++) for (int i = 0; i < MR; i++) {
      int64_t p = p0 + 2 * q, r = i0 + ir + i;
      ap[q * MR + i] = i < mr ? A16(a, f, ta, m, k, r, p) | A16(a, f, ta, m, k, r, p + 1) << 16 : 0;
    }
    ap += MR * kp;
  }
}
static void pack_b16(const void *b, int f, int tb, int64_t k, int64_t n, int64_t p0, int64_t kp, int64_t j0, int64_t nc,
                     uint32_t *bp) {
  uint16_t t0[KP2 > NR ? KP2 : NR], t1[NR];
  for (int64_t jr = 0; jr < nc; jr += NR) {
    int64_t nr = nc - jr < NR ? nc - jr : NR;
    if (!tb && nr == NR && p0 + 2 * kp <= k) { /* B stored (k, n): round two rows of NR, interleave them */
      for (int64_t q = 0; q < kp; q++) {
        const uint16_t *r0 = bits16(b, f, (p0 + 2 * q) * n + j0 + jr, NR, t0), *r1 = bits16(b, f, (p0 + 2 * q + 1) * n + j0 + jr, NR, t1);
        for (int j = 0; j < NR; j++) bp[q * NR + j] = (uint32_t)r0[j] | (uint32_t)r1[j] << 16;
      }
    } else if (tb && nr == NR && p0 + 2 * kp <= k) { /* B stored (n, k): a column's pairs are contiguous */
      for (int j = 0; j < NR; j++) {
        const uint16_t *r = bits16(b, f, (j0 + jr + j) * k + p0, 2 * kp, t0);
        for (int64_t q = 0; q < kp; q++) bp[q * NR + j] = (uint32_t)r[2 * q] | (uint32_t)r[2 * q + 1] << 16;
      }
    } else {
      for (int64_t q = 0; q < kp; q++) for (int j = 0; j < NR; j++) {
        int64_t p = p0 + 2 * q, c = j0 + jr + j;
        bp[q * NR + j] = j < nr ? B16(b, f, tb, k, n, p, c) | B16(b, f, tb, k, n, p + 1, c) << 16 : 0;
      }
    }
    bp += NR * kp;
  }
}
#if defined(__AVX512BF16__) && VL == 16
#define BROW(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define BDOTW(i, word) { __m512bh ai = (__m512bh)_mm512_set1_epi32((int)(word)); \
  c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0); c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1); }
#define BLOAD __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + q * NR), b1 = (__m512bh)_mm512_loadu_si512(bp + q * NR + VL);
#define BVF(x) ((vf)(x))
#else
static inline float lo16(uint32_t w) { uint32_t u = w << 16; float f; memcpy(&f, &u, 4); return f; }
static inline float hi16(uint32_t w) { uint32_t u = w & 0xffff0000u; float f; memcpy(&f, &u, 4); return f; }
#define BROW(i) vf c##i##0 = z, c##i##1 = z;
#define BDOTW(i, word) { uint32_t w = (word); float ae = lo16(w), ao = hi16(w); \
  vf o = VSPLAT(ao), e = VSPLAT(ae); \
  c##i##0 = VFMA(e, be0, VFMA(o, bo0, c##i##0)); c##i##1 = VFMA(e, be1, VFMA(o, bo1, c##i##1)); }
#define BLOAD vu w0 = *(const vuu *)(bp + q * NR), w1 = *(const vuu *)(bp + q * NR + VL); \
  vf be0 = (vf)(w0 << 16), bo0 = (vf)(w0 & 0xffff0000u), be1 = (vf)(w1 << 16), bo1 = (vf)(w1 & 0xffff0000u);
#define BVF(x) (x)
#endif
#define BDOT(i) BDOTW(i, ap[q * MR + i])
/* a pair of row i of A read in place (bf16, not transposed) */
static inline uint32_t word_at(const uint16_t *r, int64_t q) { uint32_t w; memcpy(&w, r + 2 * q, 4); return w; }
#define BDOTD(i) BDOTW(i, word_at(a##i, q))
#define BSTORE(i) if (i < mr) { float *r = c + (int64_t)i * ldc; vf v0 = BVF(c##i##0), v1 = BVF(c##i##1); \
  if (nr == NR) { vfu *r0 = (vfu *)r, *r1 = (vfu *)(r + VL); \
    if (first) { *r0 = v0; *r1 = v1; } else { *r0 += v0; *r1 += v1; } } \
  else { float t[NR]; memcpy(t, &v0, VL * 4); memcpy(t + VL, &v1, VL * 4); \
    for (int j = 0; j < nr; j++) r[j] = first ? t[j] : r[j] + t[j]; } }
/* row i of the tile rounded to bf16 straight from the sums */
#define BSTORE16(i) if (i < mr) { uint16_t *r = c16 + (int64_t)i * ldc; vf v0 = BVF(c##i##0), v1 = BVF(c##i##1); \
  vu x0, x1; memcpy(&x0, &v0, sizeof x0); memcpy(&x1, &v1, sizeof x1); vh h0 = round16(x0), h1 = round16(x1); \
  if (nr == NR) { memcpy(r, &h0, sizeof h0); memcpy(r + VL, &h1, sizeof h1); } \
  else { uint16_t t[NR]; memcpy(t, &h0, sizeof h0); memcpy(t + VL, &h1, sizeof h1); memcpy(r, t, (size_t)nr * 2); } }
/* the start and end of a bf16 micro-kernel: prefetch the tile it will
   write, zero the sums; store them (below) */
#define BSTART \
  if (c16 && first && last) { for (int i = 0; i < mr; i++) __builtin_prefetch(c16 + i * ldc, 1); } \
  else { PREFETCH_C } \
  FOR_ROWS(BROW)
#define BFINISH \
  if (c16 && first && last) { FOR_ROWS(BSTORE16) return; } \
  FOR_ROWS(BSTORE) \
  if (c16 && last) for (int i = 0; i < mr; i++) round_run(c + (int64_t)i * ldc, nr, c16 + (int64_t)i * ldc);
/* the tile's sums into c (stored, or added to c after the first depth
   block); with c16 at the last depth block the result is rounded to bf16
   there instead: straight from the registers when this block is the only
   one (c untouched), else from c while the tile is in L1 */
static void ukr16(int64_t kp, const uint32_t *restrict ap, const uint32_t *restrict bp, float *restrict c,
                  uint16_t *restrict c16, int64_t ldc, int mr, int nr, int first, int last) {
  const vf z = {0};
  (void)z;
  BSTART
  for (int64_t q = 0; q < kp; q++) {
    BLOAD
    FOR_ROWS(BDOT)
  }
  BFINISH
}
/* the same reading the pairs of A (bf16, not transposed, whole pairs) in
   place through MR row pointers, as ukr_d does for f32 */
static void ukr16_d(int64_t kp, const uint16_t *a, int64_t lda, const uint32_t *restrict bp, float *restrict c,
                    uint16_t *restrict c16, int64_t ldc, int mr, int nr, int first, int last) {
  const vf z = {0};
  (void)z;
#define AROW16(i) const uint16_t *a##i = a + (mr > i ? i : mr - 1) * lda;
  FOR_ROWS(AROW16)
  BSTART
  for (int64_t q = 0; q < kp; q++) {
    BLOAD
    FOR_ROWS(BDOTD)
  }
  BFINISH
}
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && VL == 16 && defined(__linux__)
#define AMX 1
/* ---- bf16 on AMX tiles ----
 * A 32 x 32 block of C is four 16 x 16 f32 tiles (tmm0-3), fed by two
 * 16-row strips of A (tmm4-5: 16 rows of 16 pairs) and the two halves of a
 * B panel (tmm6-7: 16 pairs of 16 columns: the pairs format of pack_b16,
 * NR = 32 words a pair, read with a 128-byte stride). Each tdpbf16ps does
 * 16 pairs; the depth of a block is padded to whole tiles with zeros. The
 * sums are f32 but the tile adds its 32 products in its own order, so the
 * bits differ from vdpbf16ps's (not from one split of C to another: each
 * element's sum runs over the same tiles in the same order). Used where the
 * CPU has AMX-BF16 and Linux grants the process the tile state, unless
 * RYFT_AMX=0. */
#include <cpuid.h>
long syscall(long, ...);
#define AMX_ROWS 32 /* rows of C a micro-kernel computes */
#ifndef AMX_KC
#define AMX_KC 384 /* pairs of k in a depth block */
#endif
#ifndef AMX_NC
#define AMX_NC NC /* columns of B packed at a time */
#endif
#ifndef AMX_MC
#define AMX_MC MC /* rows of A packed at a time (the workspace holds MC + MR) */
#endif
/* 1 once the process may use the tiles, -1 when it may not (asked once) */
static int amx_state;
static int amx_usable(void) {
  int s = __atomic_load_n(&amx_state, __ATOMIC_ACQUIRE);
  if (s) return s > 0;
  unsigned a, b, c, d;
  const char *env = getenv("RYFT_AMX");
  /* CPUID.(7,0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE; then arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) */
  s = (!env || strcmp(env, "0") != 0) && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1) && (d >> 24 & 1) &&
      syscall(158 /* SYS_arch_prctl */, 0x1023, 18) == 0 ? 1 : -1;
  __atomic_store_n(&amx_state, s, __ATOMIC_RELEASE);
  return s > 0;
}
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } amx_config;
static void amx_start(void) {
  amx_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
  _tile_loadconfig(&cfg);
}
/* n (at most 32) elements from s as 32 bf16 words in order, zero past n:
   f32 rounded by vcvtne2ps2bf16 (nearest even, NaN quieted as E16 does;
   it reads denormals as zero, as the tiles read bf16 ones), or bf16 */
static inline __m512i bf16x32(const void *s, int f32, int64_t n) {
  if (!f32) return _mm512_maskz_loadu_epi16(n >= 32 ? ~0u : (1u << n) - 1, s);
  __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1), m1 = n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
  const float *x = s;
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m0, x));
}
/* A[i0:i0+mc, p0:p0+2*kp] as 16-row strips of kq pairs (kq: kp padded to
   16): strip s, tile t holds rows 16s.. as 16 rows of 16 words, so each
   tile is 1 KB in a row; rows past mc and pairs past kp are zero */
static void pack_a_amx(const void *a, int f, int ta, int64_t m, int64_t k, int64_t i0, int64_t mc, int64_t p0, int64_t kp,
                       int64_t kq, uint32_t *ap) {
  int64_t strips = (mc + 15) / 16, es = f ? 4 : 2;
  if (!ta && p0 + 2 * kp <= k) { /* a row of A holds its pairs in order: 16 pairs a vector */
    if (mc % 16) memset(ap + (strips - 1) * 16 * kq, 0, (size_t)(16 * kq) * 4);
    for (int64_t i = 0; i < mc; i++) {
      const char *r = (const char *)a + ((i0 + i) * k + p0) * es;
      uint32_t *dst = ap + (i / 16) * 16 * kq + (i % 16) * 16;
      for (int64_t q = 0; q < kq; q += 16)
        _mm512_storeu_si512(dst + q * 16, bf16x32(r + 2 * q * es, f, 2 * (kp - q)));
    }
    return;
  }
  memset(ap, 0, (size_t)(strips * 16 * kq) * 4);
  uint16_t t0[KP2 > AMX_MC ? KP2 : AMX_MC], t1[AMX_MC];
  if (ta && p0 + 2 * kp <= k) { /* A stored (k, m): a pair spans two rows of mc elements each */
    for (int64_t q = 0; q < kp; q++) {
      const uint16_t *r0 = bits16(a, f, (p0 + 2 * q) * m + i0, mc, t0), *r1 = bits16(a, f, (p0 + 2 * q + 1) * m + i0, mc, t1);
      uint32_t *dst = ap + (q / 16) * 256 + q % 16;
      for (int64_t i = 0; i < mc; i++) dst[(i / 16) * 16 * kq + (i % 16) * 16] = (uint32_t)r0[i] | (uint32_t)r1[i] << 16;
    }
    return;
  }
  for (int64_t i = 0; i < mc; i++) /* a half pair at the end of k */
    for (int64_t q = 0; q < kp; q++) {
      int64_t p = p0 + 2 * q, r = i0 + i;
      ap[(i / 16) * 16 * kq + (q / 16) * 256 + (i % 16) * 16 + q % 16] = A16(a, f, ta, m, k, r, p) | A16(a, f, ta, m, k, r, p + 1) << 16;
    }
}
/* B[p0:p0+2*kp, j0:j0+nc] as pack_b16's panels of NR columns, each kq pairs long (zero past kp) */
static void pack_b_amx(const void *b, int f, int tb, int64_t k, int64_t n, int64_t p0, int64_t kp, int64_t kq, int64_t j0,
                       int64_t nc, uint32_t *bp) {
  /* words (r0[j], r1[j]) of two rows converted by bf16x32 into one vector */
  const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                         20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  int64_t es = f ? 4 : 2;
  for (int64_t jr = 0; jr < nc; jr += NR, bp += NR * kq) {
    int64_t nr = nc - jr < NR ? nc - jr : NR;
    if (!tb && p0 + 2 * kp <= k) { /* B stored (k, n): two rows of 16 a vector, interleaved */
      for (int64_t q = 0; q < kp; q++)
        for (int h = 0; h < NR; h += 16) {
          int64_t w = nr - h < 0 ? 0 : nr - h < 16 ? nr - h : 16;
          const char *r0 = (const char *)b + ((p0 + 2 * q) * n + j0 + jr + h) * es, *r1 = r0 + n * es;
          __m512i x0 = bf16x32(r0, f, w), x1 = bf16x32(r1, f, w);
          _mm512_storeu_si512(bp + q * NR + h, _mm512_permutexvar_epi16(pairs, _mm512_inserti64x4(x0, _mm512_castsi512_si256(x1), 1)));
        }
    } else {
      pack_b16(b, f, tb, k, n, p0, kp, j0 + jr, nr, bp);
    }
    memset(bp + NR * kp, 0, (size_t)(NR * (kq - kp)) * 4);
  }
}
/* C[0:mr, 0:nr] (at most 32 x 32) over kq pairs: strips a0 and a1 of A
   (a1 NULL when mr <= 16), panel bp. As ukr16: stored, or added to c after
   the first depth block; with c16 at the last, rounded to bf16 there */
static void amx_kernel(int64_t kq, const uint32_t *a0, const uint32_t *a1, const uint32_t *bp, float *c, uint16_t *c16,
                       int64_t ldc, int mr, int nr, int first, int last) {
  /* whole tiles straight to and from C; else through t */
  float t[AMX_ROWS * NR] __attribute__((aligned(64)));
  int direct = mr == AMX_ROWS && nr == NR && !(c16 && last);
  float *cc = direct ? c : t;
  int64_t ld = direct ? ldc * 4 : NR * 4;
  if (!direct && !first)
    for (int i = 0; i < mr; i++) memcpy(t + i * NR, c + i * ldc, (size_t)nr * 4);
  if (first) { _tile_zero(0); _tile_zero(1); if (a1) { _tile_zero(2); _tile_zero(3); } }
  else {
    _tile_loadd(0, cc, ld); _tile_loadd(1, cc + 16, ld);
    if (a1) { _tile_loadd(2, (char *)cc + 16 * ld, ld); _tile_loadd(3, (char *)cc + 16 * ld + 64, ld); }
  }
  if (a1)
    for (int64_t q = 0; q < kq; q += 16) {
      _tile_loadd(4, a0 + q * 16, 64);
      _tile_loadd(6, bp + q * NR, NR * 4);
      _tile_loadd(7, bp + q * NR + 16, NR * 4);
      _tile_dpbf16ps(0, 4, 6);
      _tile_loadd(5, a1 + q * 16, 64);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  else
    for (int64_t q = 0; q < kq; q += 16) {
      _tile_loadd(4, a0 + q * 16, 64);
      _tile_loadd(6, bp + q * NR, NR * 4);
      _tile_loadd(7, bp + q * NR + 16, NR * 4);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
    }
  _tile_stored(0, cc, ld); _tile_stored(1, cc + 16, ld);
  if (a1) { _tile_stored(2, (char *)cc + 16 * ld, ld); _tile_stored(3, (char *)cc + 16 * ld + 64, ld); }
  if (direct) return;
  for (int i = 0; i < mr; i++) {
    if (c16 && last) round_run(t + i * NR, nr, c16 + i * ldc);
    else memcpy(c + i * ldc, t + i * NR, (size_t)nr * 4);
  }
}
/* ryg_bgemm on the tiles: the same blocks of k (KC pairs), so the same
   scratch rule for a bf16 result */
static void bgemm_amx(int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a, int a32, const void *b, int b32,
                      float *c, uint16_t *c16, int64_t i_lo, int64_t i_hi, int64_t j_lo, int64_t j_hi, float *ws) {
  uint32_t *bp = (uint32_t *)ws, *ap = (uint32_t *)ws + (int64_t)KC * (NC + NR);
  amx_start();
  for (int64_t j0 = j_lo; j0 < j_hi; j0 += AMX_NC) {
    int64_t nc = j_hi - j0 < AMX_NC ? j_hi - j0 : AMX_NC;
    for (int64_t p0 = 0; p0 < k; p0 += 2 * AMX_KC) {
      int64_t kp = (k - p0 < 2 * AMX_KC ? k - p0 + 1 : 2 * AMX_KC) / 2, kq = (kp + 15) / 16 * 16;
      int last = p0 + 2 * AMX_KC >= k;
      pack_b_amx(b, b32, tb, k, n, p0, kp, kq, j0, nc, bp);
      for (int64_t i0 = i_lo; i0 < i_hi; i0 += AMX_MC) {
        int64_t mc = i_hi - i0 < AMX_MC ? i_hi - i0 : AMX_MC;
        pack_a_amx(a, a32, ta, m, k, i0, mc, p0, kp, kq, ap);
        for (int64_t jr = 0; jr < nc; jr += NR)
          for (int64_t ir = 0; ir < mc; ir += AMX_ROWS) {
            int mr = (int)(mc - ir < AMX_ROWS ? mc - ir : AMX_ROWS), nr = (int)(nc - jr < NR ? nc - jr : NR);
            int64_t off = (i0 + ir) * n + j0 + jr;
            const uint32_t *a0 = ap + ir * kq;
            amx_kernel(kq, a0, mr > 16 ? a0 + 16 * kq : NULL, bp + jr * kq, c ? c + off : NULL, c16 ? c16 + off : NULL, n,
                       mr, nr, p0 == 0, last);
          }
      }
    }
  }
  _tile_release();
}
#endif
/* 1 when the micro-kernel runs on vdpbf16ps, 2 on AMX tiles */
int RYG(bf16_native)(void) {
#if defined(AMX)
  return amx_usable() ? 2 : 1;
#elif defined(__AVX512BF16__) && VL == 16
  return 1;
#else
  return 0;
#endif
}
/* rows [i_lo, i_hi) x columns [j_lo, j_hi) of C (m, n) f32 = A * B, A and B
   bf16 (or f32, a32 / b32, rounded to bf16 as they are packed); ws as
   ryg_sgemm's. With c16 the result is C rounded to bf16 there (nearest even,
   NaN kept quiet) and c is f32 scratch, unused (may be NULL) when k is at
   most ryg_bgemm_k1(): one depth block. */
int64_t RYG(bgemm_k1)(void) {
#ifdef AMX
  if (amx_usable()) return 2 * AMX_KC;
#endif
  return 2 * KC;
}
void RYG(bgemm)(int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a, int a32, const void *b, int b32, float *c,
               uint16_t *c16, int64_t i_lo, int64_t i_hi, int64_t j_lo, int64_t j_hi, float *ws) {
  if (k == 0) {
    for (int64_t i = i_lo; i < i_hi; i++) for (int64_t j = j_lo; j < j_hi; j++) {
      if (c16) c16[i * n + j] = 0; else c[i * n + j] = 0.0f; }
    return;
  }
#ifdef AMX
  if (amx_usable()) { bgemm_amx(ta, tb, m, n, k, a, a32, b, b32, c, c16, i_lo, i_hi, j_lo, j_hi, ws); return; }
#endif
  uint32_t *bp = (uint32_t *)ws, *ap = (uint32_t *)ws + (int64_t)KC * (NC + NR);
  for (int64_t j0 = j_lo; j0 < j_hi; j0 += NC) {
    int64_t nc = j_hi - j0 < NC ? j_hi - j0 : NC;
    for (int64_t p0 = 0; p0 < k; p0 += 2 * KC) {
      int64_t kp = (k - p0 < 2 * KC ? k - p0 + 1 : 2 * KC) / 2;
      int last = p0 + 2 * KC >= k;
      pack_b16(b, b32, tb, k, n, p0, kp, j0, nc, bp);
      /* A read in place: bf16, not transposed, whole pairs, few panels */
      int direct = !ta && !a32 && p0 + 2 * kp <= k && j_hi - j_lo <= DIRECT_PANELS * NR;
      for (int64_t i0 = i_lo; i0 < i_hi; i0 += MC) {
        int64_t mc = i_hi - i0 < MC ? i_hi - i0 : MC;
        if (direct) {
          for (int64_t ir = 0; ir < mc; ir += MR)
            for (int64_t jr = 0; jr < nc; jr += NR) {
              int mr = (int)(mc - ir < MR ? mc - ir : MR), nr = (int)(nc - jr < NR ? nc - jr : NR);
              int64_t off = (i0 + ir) * n + j0 + jr;
              ukr16_d(kp, (const uint16_t *)a + (i0 + ir) * k + p0, k, bp + jr * kp, c ? c + off : NULL,
                      c16 ? c16 + off : NULL, n, mr, nr, p0 == 0, last);
            }
          continue;
        }
        pack_a16(a, a32, ta, m, k, i0, mc, p0, kp, ap);
        for (int64_t jr = 0; jr < nc; jr += NR)
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int mr = (int)(mc - ir < MR ? mc - ir : MR), nr = (int)(nc - jr < NR ? nc - jr : NR);
            int64_t off = (i0 + ir) * n + j0 + jr;
            ukr16(kp, ap + ir * kp, bp + jr * kp, c ? c + off : NULL, c16 ? c16 + off : NULL, n, mr, nr, p0 == 0, last);
          }
      }
    }
  }
}
