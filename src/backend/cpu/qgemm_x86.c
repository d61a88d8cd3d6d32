/* The int8 kernels of the quantized matrix product (qgemm_kern.h) with
 * x86 vectors: AVX2 (vpmaddubsw + vpmaddwd) and AVX-512 VNNI (vpdpbusd),
 * 256 bits a block; and weights repacked sixteen rows at a time (a 512-bit
 * vector for VNNI, two 256-bit halves for AVX2). Every kernel gives each
 * row the bits of qgemm.c's portable one: its lanes' integer sums are exact
 * and its f32 steps are the portable kernel's, in its order (llama.cpp's for
 * Q4_0, Q4_1 and Q8_0: qgemm.c, dot_q4). Compiled for any x86-64 with
 * target attributes; qgemm.c asks the CPU which level runs. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "qgemm_kern.h"
#include "ryft/gguf.h"

/* every level's bits are the same only if no compiler fuses a * b + c on
   its own: gcc in ISO C mode does not, clang would (-ffp-contract=on)
   wherever the function's target has FMA */
#ifdef __clang__
#pragma clang fp contract(off)
#endif

#ifdef HAVE_X86
/* helpers that both levels inline (a subset of either's target) */
#define A2 __attribute__((target("avx2,fma,f16c")))
#define VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,f16c,fma")))

A2 static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

A2 static inline float h16(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2); /* little-endian, as ggml stores it */
  return _cvtsh_ss(h);
}

A2 static inline __m256i load32(const uint8_t *q) { return _mm256_loadu_si256((const __m256i *)q); }
/* the 32 nibbles of a Q4 block in element order: low nibbles, then high */
A2 static inline __m256i nibbles(const uint8_t *qs) {
  __m128i p = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(p, 4), m), _mm_and_si128(p, m));
}
/* Q8_0's s8 codes as u8 (q + 128); the 128 * sum(qx) this adds is taken off */
A2 static inline __m256i flipped(const uint8_t *q) { return _mm256_xor_si256(load32(q), _mm256_set1_epi8((char)0x80)); }

/* The products of 32 u8 codes w with 32 s8 x codes, as eight s32 lanes of
 * four consecutive products each (lane l: elements 4l..4l+3).
 * VNNI: one vpdpbusd. AVX2: vpmaddubsw (pairs, to s16 with saturation) and
 * vpmaddwd by ones (pairs of pairs); exact while a pair stays within s16:
 * codes up to 128 against |x| <= 127 (quantize_row's range), which the
 * Q4, Q4_K and Q6_K codes and the offsets below keep. Q8_0's codes take dp_s8_avx2: the
 * absolute code against x with the code's sign (vpsignb twice), as
 * llama.cpp's AVX2 kernel does, instead of flipping them to u8 (up to
 * 255: a pair would saturate). */
VNNI static inline __m256i dp_vnni(__m256i w, __m256i x) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x); }
A2 static inline __m256i dp_avx2(__m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}
A2 static inline __m256i dp_s8_avx2(__m256i w, __m256i x) { return dp_avx2(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)); }

/* R weight rows (rs bytes apart) against one x row, one block per 256-bit
 * vector; R = 4 keeps four accumulator chains in flight and loads each x
 * block once. The per-row order of every sum is the same for R = 1 and
 * R = 4, so which rows a thread groups does not change any result. ATTR:
 * the level's target, TS: block bytes, QO: offset of the codes, W1: the
 * block's codes as the level's DOT takes them, OFF: what those codes add
 * to each lane (taken off in integers), CORR: the block's scalar term
 * (Q4_1's minimum times f16(d_x sum(q_x))). Each lane and the f32 order
 * are llama.cpp's (qgemm.c, dot_q4). (512-bit vectors over two blocks
 * measured slower on Zen 4: the per-block f16 scales, not the products,
 * bound the loop.) */
/* the one-row and four-row entry points of a kernel name##_r(..., R) */
#define ROW_ENTRIES(name, ATTR)                                                                   \
  ATTR static float name(const uint8_t *w, const q8blk *x, int64_t nb) {                          \
    float o;                                                                                      \
    name##_r(w, 0, x, nb, &o, 1);                                                                 \
    return o;                                                                                     \
  }                                                                                               \
  ATTR static void name##4(const uint8_t *w, size_t rs, const q8blk *x, int64_t nb, float *out) { \
    name##_r(w, rs, x, nb, out, 4);                                                               \
  }

#define PREFETCH_BYTES 512 /* ahead in each weight row: the rows stream from memory in decode */
/* the head of a kernel name##_r(..., R): R rows' vector and scalar sums */
#define KERNEL_R_HEAD(name, ATTR)                                                                                 \
  ATTR static inline __attribute__((always_inline)) void name##_r(const uint8_t *w, size_t rs, const q8blk *x, \
                                                                  int64_t nb, float *out, const int R) {          \
    __m256 acc[4];                                                                                                \
    float corr[4];                                                                                                \
    for (int r = 0; r < R; r++) {                                                                                 \
      acc[r] = _mm256_setzero_ps();                                                                               \
      corr[r] = 0.0f;                                                                                             \
    }
#define ROWS_KERNEL(name, ATTR, TS, QO, W1, DOT, OFF, CORR)                                                           \
  KERNEL_R_HEAD(name, ATTR)                                                                                       \
    for (int64_t b = 0; b < nb; b++) {                                                                            \
      __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].q), off = OFF(xq);                                  \
      for (int r = 0; r < R; r++) {                                                                               \
        const uint8_t *blk = w + (size_t)r * rs + (size_t)b * TS;                                                 \
        _mm_prefetch((const char *)blk + PREFETCH_BYTES, _MM_HINT_T0);                                            \
        __m256i sv = _mm256_sub_epi32(DOT(W1(blk + QO), xq), off);                                                \
        float d = h16(blk) * x[b].d;                                                                              \
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sv), _mm256_set1_ps(d), acc[r]);                             \
        corr[r] += CORR(blk, d, x[b]);                                                                            \
      }                                                                                                           \
    }                                                                                                             \
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]) + corr[r];                                                 \
  }                                                                                                               \
  ROW_ENTRIES(name, ATTR)

/* 4 weight rows x 4 x rows (xs blocks apart), VNNI: each weight block unpacked
   once for four x rows, two x rows per 512-bit vpdpbusd (each 256-bit half
   the lanes the one-row kernel has); out[c * ldo + r]; the same per-pair
   order of every sum as above */
#define ROWS44_KERNEL(name, TS, QO, W1, OFF, CORR)                                                                    \
  VNNI static void name##44(const uint8_t *w, size_t rs, const q8blk *x, int64_t xs, int64_t nb, float *out,       \
                            int64_t ldo) {                                                                        \
    __m512 acc[4][2];                                                                                             \
    float corr[4][4];                                                                                             \
    for (int r = 0; r < 4; r++) {                                                                                 \
      acc[r][0] = acc[r][1] = _mm512_setzero_ps();                                                                \
      for (int c = 0; c < 4; c++) corr[r][c] = 0.0f;                                                              \
    }                                                                                                             \
    for (int64_t b = 0; b < nb; b++) {                                                                            \
      __m512i xq[2], off[2];                                                                                      \
      __m512 xd[2];                                                                                               \
      for (int h = 0; h < 2; h++) {                                                                               \
        const q8blk *x0 = &x[2 * h * xs + b], *x1 = &x[(2 * h + 1) * xs + b];                                     \
        __m256i q0 = _mm256_loadu_si256((const __m256i *)x0->q), q1 = _mm256_loadu_si256((const __m256i *)x1->q); \
        xq[h] = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);                                            \
        off[h] = _mm512_inserti64x4(_mm512_castsi256_si512(OFF(q0)), OFF(q1), 1);                                 \
        xd[h] = _mm512_insertf32x8(_mm512_set1_ps(x0->d), _mm256_set1_ps(x1->d), 1);                              \
      }                                                                                                           \
      for (int r = 0; r < 4; r++) {                                                                               \
        const uint8_t *blk = w + (size_t)r * rs + (size_t)b * TS;                                                 \
        __m256i wv = W1(blk + QO);                                                                                \
        __m512i wv2 = _mm512_inserti64x4(_mm512_castsi256_si512(wv), wv, 1);                                     \
        float dw = h16(blk);                                                                                      \
        __m512 dwv = _mm512_set1_ps(dw);                                                                          \
        for (int h = 0; h < 2; h++) {                                                                             \
          __m512i sv = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wv2, xq[h]), off[h]);        \
          acc[r][h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sv), _mm512_mul_ps(dwv, xd[h]), acc[r][h]);             \
        }                                                                                                         \
        for (int c = 0; c < 4; c++) {                                                                             \
          const q8blk *xb = &x[c * xs + b];                                                                       \
          corr[r][c] += CORR(blk, dw * xb->d, *xb);                                                               \
        }                                                                                                         \
      }                                                                                                           \
    }                                                                                                             \
    for (int r = 0; r < 4; r++)                                                                                   \
      for (int h = 0; h < 2; h++) {                                                                               \
        out[(2 * h) * ldo + r] = hsum8(_mm512_castps512_ps256(acc[r][h])) + corr[r][2 * h];                       \
        out[(2 * h + 1) * ldo + r] = hsum8(_mm512_extractf32x8_ps(acc[r][h], 1)) + corr[r][2 * h + 1];            \
      }                                                                                                           \
  }

/* OFF: per lane, what the u8 codes add to the products (8 sum(q_x) for
   Q4_0's codes, 128 sum(q_x) for Q8_0's flipped ones), taken off in
   integers so each lane holds llama.cpp's exact sum; CORR: Q4_1's minimum */
A2 static inline __m256i off_none(__m256i xq) { return (void)xq, _mm256_setzero_si256(); }
VNNI static inline __m256i off_8(__m256i xq) { return dp_vnni(_mm256_set1_epi8(8), xq); }
VNNI static inline __m256i off_128(__m256i xq) { return dp_vnni(_mm256_set1_epi8((char)0x80), xq); }
A2 static inline __m256i off_8_avx2(__m256i xq) { return dp_avx2(_mm256_set1_epi8(8), xq); }
#define CORR_NONE(blk, d, xb) ((void)(xb), 0.0f)
#define CORR_Q4_1(blk, d, xb) (h16((blk) + 2) * (xb).ds)
ROWS_KERNEL(dot_q4_0_vnni, VNNI, 18, 2, nibbles, dp_vnni, off_8, CORR_NONE)
ROWS_KERNEL(dot_q4_1_vnni, VNNI, 20, 4, nibbles, dp_vnni, off_none, CORR_Q4_1)
ROWS_KERNEL(dot_q8_0_vnni, VNNI, 34, 2, flipped, dp_vnni, off_128, CORR_NONE)
ROWS44_KERNEL(dot_q4_0_vnni, 18, 2, nibbles, off_8, CORR_NONE)
ROWS44_KERNEL(dot_q4_1_vnni, 20, 4, nibbles, off_none, CORR_Q4_1)
ROWS44_KERNEL(dot_q8_0_vnni, 34, 2, flipped, off_128, CORR_NONE)
ROWS_KERNEL(dot_q4_0_avx2, A2, 18, 2, nibbles, dp_avx2, off_8_avx2, CORR_NONE)
ROWS_KERNEL(dot_q4_1_avx2, A2, 20, 4, nibbles, dp_avx2, off_none, CORR_Q4_1)
ROWS_KERNEL(dot_q8_0_avx2, A2, 34, 2, load32, dp_s8_avx2, off_none, CORR_NONE)

/* ---- sixteen rows interleaved (decode and prompt chunks) ----
 * A weight matrix borrowed from a file is repacked once, on first use
 * (ry__array_derived), so that one 512-bit vpdpbusd multiplies four codes
 * of sixteen rows by the same four x codes, row r in 32-bit lane r (AVX2:
 * eight rows, a 256-bit half, rows8_avx2 below). Record
 * of rows 16g..16g+15 and block b: the sixteen f16 scales, Q4_1's sixteen
 * f16 minimums, then 64-byte chunks holding row r's four bytes at 4r:
 * Q4 chunk c the bytes 4c..4c+3 of each row's nibbles (low nibbles:
 * elements 4c..4c+3, lane c of dot_*_vnni; high: 16+4c.., lane c+4), Q8_0
 * chunk j elements 4j..4j+3 flipped to u8. The same bytes as the blocks,
 * and each row's integer lane sums and f32 steps are dot_*_vnni's (an fma
 * per lane and block, the lanes added as hsum8 adds them, Q4_1's minimum
 * term last), so the results are bit-identical; the scales are converted
 * sixteen at a time and a record's bytes are read once instead of a
 * block's scalars per row (4-5x fewer instructions per weight byte). */

void ryc_rows16_free(void *v) {
  rows16 *r = v;
  free(r->p);
  free(r);
}

typedef struct rows16_job {
  const rows16 *r;
  const uint8_t *w;
  size_t row_bytes;
} rows16_job;

static size_t block_bytes(int t) { return t == RY_GGML_Q4_0 ? 18 : t == RY_GGML_Q4_1 ? 20 : 34; }

/* One block of row r (0..15 in its record, rec the record of that block):
   to_rec moves its plain bytes blk into the record, else the record's back
   into blk (only read when to_rec). The one statement of the layout
   above, both ways. */
static void rec_block(const rows16 *p, uint8_t *rec, int r, uint8_t *blk, bool to_rec) {
  int t = p->type;
  size_t qo = t == RY_GGML_Q4_1 ? 4 : 2;
  uint8_t flip = t == RY_GGML_Q8_0 ? 0x80 : 0; /* Q8_0's s8 codes as u8 */
  if (to_rec) {
    memcpy(rec + 2 * r, blk, 2);
    if (t == RY_GGML_Q4_1) memcpy(rec + 32 + 2 * r, blk + 2, 2);
  } else {
    memcpy(blk, rec + 2 * r, 2);
    if (t == RY_GGML_Q4_1) memcpy(blk + 2, rec + 32 + 2 * r, 2);
  }
  for (int c = 0; c < (t == RY_GGML_Q8_0 ? 8 : 4); c++)
    for (int e = 0; e < 4; e++) {
      uint8_t *in_rec = rec + p->hdr + 64 * c + 4 * r + e, *in_blk = blk + qo + 4 * c + e;
      if (to_rec) *in_rec = (uint8_t)(*in_blk ^ flip);
      else *in_blk = (uint8_t)(*in_rec ^ flip);
    }
}

/* records of groups [lo, hi) */
static void rows16_fill(void *ctx, int64_t lo, int64_t hi) {
  const rows16_job *j = ctx;
  const rows16 *r = j->r;
  size_t ts = block_bytes(r->type);
  for (int64_t g = lo; g < hi; g++)
    for (int64_t b = 0; b < r->nb; b++)
      for (int row = 0; row < R16; row++)
        rec_block(r, r->p + (size_t)(g * r->nb + b) * r->rec, row,
                  (uint8_t *)(uintptr_t)(j->w + (size_t)(g * R16 + row) * j->row_bytes + (size_t)b * ts), true);
}

void *ryc_rows16_make(const void *data, void *ctx) {
  const ryc_qgemm *q = ctx;
  int t = q->type;
  size_t ts = block_bytes(t);
  rows16 *r = malloc(sizeof *r);
  if (!r) return NULL;
  *r = (rows16){t, q->n / R16 * R16, q->k, q->k / QK, t == RY_GGML_Q4_1 ? 64 : 32, 0, NULL};
  r->rec = r->hdr + (t == RY_GGML_Q8_0 ? 512 : 256);
  size_t bytes = (size_t)(r->n / R16 * r->nb) * r->rec, row_bytes = (size_t)r->nb * ts;
  r->p = bytes ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL; /* a multiple of the alignment */
  if (!r->p) {
    free(r);
    return NULL;
  }
  rows16_job j = {r, data, row_bytes};
  ryc_parallel_for(r->n / R16, 8, rows16_fill, &j);
  return r;
}

/* Row `row` (below p->n) as the type's plain blocks again, into out
   (nb blocks): the bytes rows16_fill took, put back. */
void ryc_rows16_blocks(const rows16 *p, int64_t row, uint8_t *out) {
  size_t ts = block_bytes(p->type);
  for (int64_t b = 0; b < p->nb; b++)
    rec_block(p, p->p + (size_t)(row / R16 * p->nb + b) * p->rec, (int)(row % R16), out + (size_t)b * ts, false);
}

/* rows 16g..16g+15 of type T against X x rows (1 or 2, xs blocks apart):
   out[c * ldo + 0..15]; each x row's accumulators and order are those of
   one. T is a constant, so Q4_1 (codes with no offset) computes none. */
VNNI static inline __attribute__((always_inline)) void rows16_x(const rows16 *p, int64_t g, const q8blk *x, int64_t xs,
                                                                float *out, int64_t ldo, const int X, const int T) {
  const uint8_t *rec = p->p + (size_t)(g * p->nb) * p->rec;
  const __m512i m4 = _mm512_set1_epi8(15), zero = _mm512_setzero_si512();
  const bool q8 = T == RY_GGML_Q8_0, q41 = T == RY_GGML_Q4_1;
  __m512 acc[2][8], corr[2];
  for (int c = 0; c < X; c++) {
    corr[c] = _mm512_setzero_ps();
    for (int j = 0; j < 8; j++) acc[c][j] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < p->nb; b++, rec += p->rec) {
    int32_t xw[2][8], off[2][8];
    __m512 d[2];
    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)rec));
    for (int c = 0; c < X; c++) {
      const q8blk *xb = &x[c * xs + b];
      memcpy(xw[c], xb->q, sizeof xw[c]);
      for (int j = 0; !q41 && j < 8; j++) { /* what the u8 codes add per lane (Q4_0: 8, Q8_0: 128 per x code) */
        int s4 = xb->q[4 * j] + xb->q[4 * j + 1] + xb->q[4 * j + 2] + xb->q[4 * j + 3];
        off[c][j] = q8 ? 128 * s4 : q41 ? 0 : 8 * s4;
      }
      d[c] = _mm512_mul_ps(dw, _mm512_set1_ps(xb->d));
    }
    if (q8) {
      for (int j = 0; j < 8; j++) {
        __m512i v = _mm512_loadu_si512(rec + p->hdr + 64 * j);
        for (int c = 0; c < X; c++) {
          __m512i sv = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, v, _mm512_set1_epi32(xw[c][j])), _mm512_set1_epi32(off[c][j]));
          acc[c][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sv), d[c], acc[c][j]);
        }
      }
    } else {
      for (int q = 0; q < 4; q++) {
        __m512i v = _mm512_loadu_si512(rec + p->hdr + 64 * q);
        __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        for (int c = 0; c < X; c++) {
          __m512i s0 = _mm512_dpbusd_epi32(zero, lo, _mm512_set1_epi32(xw[c][q]));
          __m512i s1 = _mm512_dpbusd_epi32(zero, hi, _mm512_set1_epi32(xw[c][q + 4]));
          if (!q41) {
            s0 = _mm512_sub_epi32(s0, _mm512_set1_epi32(off[c][q]));
            s1 = _mm512_sub_epi32(s1, _mm512_set1_epi32(off[c][q + 4]));
          }
          acc[c][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d[c], acc[c][q]);
          acc[c][q + 4] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), d[c], acc[c][q + 4]);
        }
      }
      if (q41) {
        __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(rec + 32)));
        for (int c = 0; c < X; c++) corr[c] = _mm512_add_ps(corr[c], _mm512_mul_ps(mw, _mm512_set1_ps(x[c * xs + b].ds)));
      }
    }
  }
  for (int c = 0; c < X; c++) {
    __m512 *a = acc[c];
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
                             _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])));
    _mm512_storeu_ps(out + c * ldo, _mm512_add_ps(s, corr[c]));
  }
}

/* The same records with AVX2: rows 8h..8h+7 of the group, one x row, read
   as the 32-byte halves of the 64-byte chunks (eight f32 sums per lane
   leave room in sixteen registers for one x row only). The products are
   vpmaddubsw + vpmaddwd: Q4 nibbles as they are, Q8_0's codes flipped back
   to s8 and taken as |q_w| against q_x with q_w's sign (dp_s8_avx2), so
   every lane holds rows16_x's exact sum and the f32 steps are its own. */
A2 static inline __attribute__((always_inline)) void rows8_avx2(const rows16 *p, int64_t g, int h, const q8blk *x,
                                                                 float *out, const int T) {
  const uint8_t *rec = p->p + (size_t)(g * p->nb) * p->rec;
  const __m256i m4 = _mm256_set1_epi8(15), flip = _mm256_set1_epi8((char)0x80);
  const bool q8 = T == RY_GGML_Q8_0, q41 = T == RY_GGML_Q4_1;
  __m256 acc[8], corr = _mm256_setzero_ps();
  for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < p->nb; b++, rec += p->rec) {
    const q8blk *xb = &x[b];
    int32_t xw[8];
    memcpy(xw, xb->q, sizeof xw);
    __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 16 * h))), _mm256_set1_ps(xb->d));
    if (q8) {
      for (int j = 0; j < 8; j++) {
        __m256i v = _mm256_xor_si256(load32(rec + p->hdr + 64 * j + 32 * h), flip);
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp_s8_avx2(v, _mm256_set1_epi32(xw[j]))), d, acc[j]);
      }
    } else {
      for (int q = 0; q < 4; q++) {
        __m256i v = load32(rec + p->hdr + 64 * q + 32 * h);
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        __m256i s0 = dp_avx2(lo, _mm256_set1_epi32(xw[q])), s1 = dp_avx2(hi, _mm256_set1_epi32(xw[q + 4]));
        if (!q41) { /* Q4_0's codes are the nibbles minus 8 */
          s0 = _mm256_sub_epi32(s0, _mm256_set1_epi32(8 * (xb->q[4 * q] + xb->q[4 * q + 1] + xb->q[4 * q + 2] + xb->q[4 * q + 3])));
          int e = 4 * (q + 4);
          s1 = _mm256_sub_epi32(s1, _mm256_set1_epi32(8 * (xb->q[e] + xb->q[e + 1] + xb->q[e + 2] + xb->q[e + 3])));
        }
        acc[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), d, acc[q]);
        acc[q + 4] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), d, acc[q + 4]);
      }
      if (q41) {
        __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rec + 32 + 16 * h)));
        corr = _mm256_add_ps(corr, _mm256_mul_ps(mw, _mm256_set1_ps(xb->ds)));
      }
    }
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                           _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])));
  _mm256_storeu_ps(out, _mm256_add_ps(s, corr));
}

A2 static void rows16_avx2(const rows16 *p, int64_t g, const q8blk *x, float *out) {
  for (int h = 0; h < 2; h++) switch (p->type) {
    case RY_GGML_Q4_0: rows8_avx2(p, g, h, x, out + 8 * h, RY_GGML_Q4_0); break;
    case RY_GGML_Q4_1: rows8_avx2(p, g, h, x, out + 8 * h, RY_GGML_Q4_1); break;
    default: rows8_avx2(p, g, h, x, out + 8 * h, RY_GGML_Q8_0); break;
    }
}

#define ROWS16_TYPED(X)                                                                            \
  switch (p->type) {                                                                               \
  case RY_GGML_Q4_0: rows16_x(p, g, x, xs, out, ldo, X, RY_GGML_Q4_0); break;                      \
  case RY_GGML_Q4_1: rows16_x(p, g, x, xs, out, ldo, X, RY_GGML_Q4_1); break;                      \
  default: rows16_x(p, g, x, xs, out, ldo, X, RY_GGML_Q8_0); break;                                \
  }
VNNI static void rows16_vnni(const rows16 *p, int64_t g, const q8blk *x, float *out) {
  const int64_t xs = 0, ldo = 0;
  ROWS16_TYPED(1)
}
VNNI static void rows16_vnni2(const rows16 *p, int64_t g, const q8blk *x, int64_t xs, float *out, int64_t ldo) {
  ROWS16_TYPED(2)
}

void ryc_rows16_dot(int level, const rows16 *p, int64_t g, const q8blk *x, float *out) {
  if (level == QK_VNNI) rows16_vnni(p, g, x, out);
  else rows16_avx2(p, g, x, out);
}

void ryc_rows16_dot2(int level, const rows16 *p, int64_t g, const q8blk *x, int64_t xs, float *out, int64_t ldo) {
  if (level == QK_VNNI) {
    rows16_vnni2(p, g, x, xs, out, ldo);
  } else {
    rows16_avx2(p, g, x, out);
    rows16_avx2(p, g, x + xs, out + ldo);
  }
}
/* K-quants, R rows at a time as above; each row's order is the same for
 * R = 1 and R = 4 (and the portable kernel's, qgemm.c) */
A2 static inline __m256i q4k_codes(const uint8_t *blk, int j) {
  __m256i p = _mm256_loadu_si256((const __m256i *)(blk + 16 + (j / 2) * 32));
  return _mm256_and_si256(j & 1 ? _mm256_srli_epi16(p, 4) : p, _mm256_set1_epi8(15));
}

#define Q4K_KERNEL(name, ATTR, DOT)                                                                                  \
  KERNEL_R_HEAD(name, ATTR)                                                                                         \
    for (int64_t sb = 0; sb < nb / 8; sb++)                                                                         \
      for (int j = 0; j < 8; j++) {                                                                                 \
        const q8blk *xb = &x[sb * 8 + j];                                                                           \
        __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);                                                    \
        for (int r = 0; r < R; r++) {                                                                               \
          const uint8_t *blk = w + (size_t)r * rs + (size_t)sb * 144;                                               \
          int sc, m;                                                                                                \
          scale_min_k4(blk + 4, j, &sc, &m);                                                                        \
          __m256i sv = DOT(q4k_codes(blk, j), xq);                                                                  \
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sv), _mm256_set1_ps(h16(blk) * (float)sc * xb->d), acc[r]); \
          corr[r] += h16(blk + 2) * (float)m * (xb->d * (float)xb->sum);                                            \
        }                                                                                                           \
      }                                                                                                             \
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]) - corr[r];                                                   \
  }                                                                                                                 \
  ROW_ENTRIES(name, ATTR)

/* Q6_K: the codes' dot products minus 32 sum(q_x), per group of four bytes,
 * scaled per 16 elements (lanes 0-3 and 4-7) */
A2 static inline __m256i q6k_codes(const uint8_t *blk, int j) {
  int half = j / 4, jj = j % 4;
  __m256i lo = _mm256_loadu_si256((const __m256i *)(blk + half * 64 + 32 * (jj % 2)));
  __m256i hi = _mm256_loadu_si256((const __m256i *)(blk + 128 + half * 32));
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  lo = _mm256_and_si256(jj / 2 ? _mm256_srli_epi16(lo, 4) : lo, m4);
  hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * jj)), m2);
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

#define Q6K_KERNEL(name, ATTR, DOT)                                                                                  \
  ATTR static inline __attribute__((always_inline)) void name##_r(const uint8_t *w, size_t rs, const q8blk *x,     \
                                                                  int64_t nb, float *out, const int R) {            \
    __m256 acc[4];                                                                                                  \
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();                                                       \
    const __m256i k32 = _mm256_set1_epi8(32);                                                                       \
    for (int64_t sb = 0; sb < nb / 8; sb++)                                                                         \
      for (int j = 0; j < 8; j++) {                                                                                 \
        const q8blk *xb = &x[sb * 8 + j];                                                                           \
        __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);                                                    \
        __m256i off = DOT(k32, xq);                                                                                 \
        for (int r = 0; r < R; r++) {                                                                               \
          const uint8_t *blk = w + (size_t)r * rs + (size_t)sb * 210;                                               \
          const int8_t *sc = (const int8_t *)(blk + 192);                                                           \
          float dd = h16(blk + 208) * xb->d;                                                                        \
          __m256i sv = _mm256_sub_epi32(DOT(q6k_codes(blk, j), xq), off);                                           \
          __m256 scl = _mm256_set_m128(_mm_set1_ps(dd * (float)sc[2 * j + 1]), _mm_set1_ps(dd * (float)sc[2 * j])); \
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sv), scl, acc[r]);                                            \
        }                                                                                                           \
      }                                                                                                             \
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]);                                                             \
  }                                                                                                                 \
  ROW_ENTRIES(name, ATTR)

Q4K_KERNEL(dot_q4_k_vnni, VNNI, dp_vnni)
Q6K_KERNEL(dot_q6_k_vnni, VNNI, dp_vnni)
Q4K_KERNEL(dot_q4_k_avx2, A2, dp_avx2)
Q6K_KERNEL(dot_q6_k_avx2, A2, dp_avx2)

/* quantize_row (qgemm.c) with vectors: the same values (the products
 * x * id, and rounding to nearest even, are the same operations; the codes
 * are within [-127, 127], so packing them to s8 saturates none) */
VNNI static void quantize_row_vnni(const float *x, int64_t k, q8blk *out) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < k / QK; b++) {
    __m512 v0 = _mm512_loadu_ps(x + b * QK), v1 = _mm512_loadu_ps(x + b * QK + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    __m512 vid = _mm512_set1_ps(id);
    __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    _mm_storeu_si128((__m128i *)out[b].q, _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(out[b].q + 16), _mm512_cvtsepi32_epi8(q1));
    int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    out[b].d = ry__f16_to_f32(ry__f32_to_f16(d));
    out[b].sum = sum;
    out[b].ds = ry__f16_to_f32(ry__f32_to_f16(d * (float)sum));
  }
}

A2 static void quantize_row_avx2(const float *x, int64_t k, q8blk *out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  /* vpackssdw + vpacksswb leave four-code groups in the order 0 4 1 5 2 6 3 7 */
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < k / QK; b++) {
    __m256 v[4];
    for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(x + b * QK + 8 * i);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int i = 0; i < 4; i++) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    int32_t sum = _mm_cvtsi128_si32(s4);
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)out[b].q, _mm256_permutevar8x32_epi32(p, order));
    out[b].d = ry__f16_to_f32(ry__f32_to_f16(d));
    out[b].sum = sum;
    out[b].ds = ry__f16_to_f32(ry__f32_to_f16(d * (float)sum));
  }
}

void ryc_qk_x86_quantize_row(int level, const float *x, int64_t k, q8blk *out) {
  if (level == QK_VNNI) quantize_row_vnni(x, k, out);
  else quantize_row_avx2(x, k, out);
}

bool ryc_qk_x86(int level, int type, qkern *k) {
  bool v = level == QK_VNNI;
  switch (type) {
  case RY_GGML_Q4_0: *k = v ? (qkern){dot_q4_0_vnni, dot_q4_0_vnni4, dot_q4_0_vnni44} : (qkern){dot_q4_0_avx2, dot_q4_0_avx24, NULL}; return true;
  case RY_GGML_Q4_1: *k = v ? (qkern){dot_q4_1_vnni, dot_q4_1_vnni4, dot_q4_1_vnni44} : (qkern){dot_q4_1_avx2, dot_q4_1_avx24, NULL}; return true;
  case RY_GGML_Q8_0: *k = v ? (qkern){dot_q8_0_vnni, dot_q8_0_vnni4, dot_q8_0_vnni44} : (qkern){dot_q8_0_avx2, dot_q8_0_avx24, NULL}; return true;
  case RY_GGML_Q4_K: *k = v ? (qkern){dot_q4_k_vnni, dot_q4_k_vnni4, NULL} : (qkern){dot_q4_k_avx2, dot_q4_k_avx24, NULL}; return true;
  case RY_GGML_Q6_K: *k = v ? (qkern){dot_q6_k_vnni, dot_q6_k_vnni4, NULL} : (qkern){dot_q6_k_avx2, dot_q6_k_avx24, NULL}; return true;
  default: return false;
  }
}
#endif
