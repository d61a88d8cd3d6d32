/* Matrix products with ggml-quantized weights (qgemm.h, docs/QUANT.md).
 *
 * Two modes. Exact: the weights are dequantized by the reference code
 * (src/io/quant.c) a row at a time (few x rows: the product streams the
 * blocks) or all at once into the packed GEMM (many x rows); the result is
 * the interpreter's up to f32 summation order. Int8 (act8; Q4_0, Q4_1,
 * Q8_0, and the K-quants Q4_K and Q6_K further down): llama.cpp's scheme. Each x row is rounded to Q8 blocks of 32 (d = max|x| /
 * 127, q = round(x / d); d and d * sum(q) are then rounded to f16, as
 * ggml's block_q8_0 / block_q8_1 store them), and a weight block times an x
 * block is
 *   Q8_0: dw dx sum(qw qx)
 *   Q4_0: dw dx (sum(nib qx) - 8 sum(qx))
 *   Q4_1: dw dx sum(nib qx) + mw dx sum(qx)
 * with exact integer sums: `vpdpbusd` (u8 x s8 -> s32, AVX-512 VNNI) where
 * the CPU has it, portable C elsewhere; the integer sums are the same on
 * both, only the f32 accumulation order differs. Threads split the weight
 * rows; each row's result is computed by one thread in a fixed order, so
 * results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"
#include "qgemm.h"
#include "ryft/gguf.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define QK 32

/* an x block rounded to 8 bits: d, its sum of codes (and d times it) */
typedef struct q8blk {
  float d, ds;
  int32_t sum;
  int8_t q[QK];
} q8blk;

static float f16le(const uint8_t *p) { return ry__f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static void quantize_row(const float *x, int64_t k, q8blk *out) {
  for (int64_t b = 0; b < k / QK; b++) {
    const float *v = x + b * QK;
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(v[j]));
    float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < QK; j++) {
      int q = (int)nearbyintf(v[j] * id); /* ties to even, as ggml's AVX2 rounding */
      out[b].q[j] = (int8_t)q;
      sum += q;
    }
    out[b].d = ry__f16_to_f32(ry__f32_to_f16(d));
    out[b].sum = sum;
    out[b].ds = ry__f16_to_f32(ry__f32_to_f16(d * (float)sum));
  }
}

/* ---- int8 dot products of one weight row with one x row: portable ---- */

typedef float (*dot_fn)(const uint8_t *w, const q8blk *x, int64_t nb);
/* four rows rs bytes apart: out[r] exactly as dot_fn gives row r */
typedef void (*dot4_fn)(const uint8_t *w, size_t rs, const q8blk *x, int64_t nb, float *out);
/* four rows by four x rows (xs blocks apart): out[c * ldo + r], the same */
typedef void (*dot44_fn)(const uint8_t *w, size_t rs, const q8blk *x, int64_t xs, int64_t nb, float *out, int64_t ldo);

/* The f32 order of llama.cpp's AVX2 kernels (ggml_vec_dot_q4_0_q8_0 etc.),
 * which the VNNI kernels below share: eight lanes, lane l holding the
 * exact integer sum of the block's elements 4l..4l+3 (Q4 codes: the low
 * nibbles are elements 0-15, the high ones 16-31), accumulated as
 * fma(sum, d_w d_x, acc[l]) block after block; then the lanes added as
 * hsum_float_8 adds them, ((0+4) + (2+6)) + ((1+5) + (3+7)); Q4_1's
 * minimum times f16(d_x sum(q_x)) is summed apart and added last. */
static float hsum8_ref(const float *a) {
  float t[4];
  for (int i = 0; i < 4; i++) t[i] = a[i] + a[4 + i];
  return (t[0] + t[2]) + (t[1] + t[3]);
}

/* the code of element e of a Q4 block (offset 0 for Q4_1, 8 for Q4_0) */
static int q4_code(const uint8_t *qs, int e, int off) { return (e < 16 ? qs[e] & 15 : qs[e - 16] >> 4) - off; }

static float dot_q4(const uint8_t *w, const q8blk *x, int64_t nb, int ts, int qo, int off, bool minimum) {
  float acc[8] = {0}, corr = 0.0f;
  for (int64_t b = 0; b < nb; b++, w += ts) {
    float d = f16le(w) * x[b].d;
    for (int l = 0; l < 8; l++) {
      int32_t s = 0;
      for (int e = 4 * l; e < 4 * l + 4; e++) s += q4_code(w + qo, e, off) * x[b].q[e];
      acc[l] = fmaf((float)s, d, acc[l]);
    }
    if (minimum) corr += f16le(w + 2) * x[b].ds;
  }
  return hsum8_ref(acc) + corr;
}

static float dot_q4_0(const uint8_t *w, const q8blk *x, int64_t nb) { return dot_q4(w, x, nb, 18, 2, 8, false); }
static float dot_q4_1(const uint8_t *w, const q8blk *x, int64_t nb) { return dot_q4(w, x, nb, 20, 4, 0, true); }

static float dot_q8_0(const uint8_t *w, const q8blk *x, int64_t nb) {
  float acc[8] = {0};
  for (int64_t b = 0; b < nb; b++, w += 34) {
    float d = f16le(w) * x[b].d;
    for (int l = 0; l < 8; l++) {
      int32_t s = 0;
      for (int e = 4 * l; e < 4 * l + 4; e++) s += (int8_t)w[2 + e] * x[b].q[e];
      acc[l] = fmaf((float)s, d, acc[l]);
    }
  }
  return hsum8_ref(acc);
}

/* K-quants: 256-element super-blocks of 32-element sub-blocks j, each
 * against its own x block. Q4_K: codes (qs[32 (j / 2) + l] >> 4 (j % 2)) &
 * 15, value d sc_j q - dmin m_j (6-bit sc, m packed in 12 bytes); Q6_K: a
 * 6-bit code (4 low bits in ql, 2 in qh) minus 32, value d sc q with an
 * int8 scale per 16 elements. The minimum's term uses d_x sum(q_x) in f32. */
static void scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

static float dot_q4_k(const uint8_t *w, const q8blk *x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t sb = 0; sb < nb / 8; sb++, w += 144)
    for (int j = 0; j < 8; j++) {
      const q8blk *xb = &x[sb * 8 + j];
      int sc, m;
      scale_min_k4(w + 4, j, &sc, &m);
      int32_t s = 0;
      for (int l = 0; l < 32; l++) s += ((w[16 + (j / 2) * 32 + l] >> (4 * (j % 2))) & 15) * xb->q[l];
      acc += f16le(w) * (float)sc * xb->d * (float)s - f16le(w + 2) * (float)m * (xb->d * (float)xb->sum);
    }
  return acc;
}

static int q6k_code(const uint8_t *blk, int j, int l) {
  int half = j / 4, jj = j % 4;
  int lo = (blk[half * 64 + 32 * (jj % 2) + l] >> (4 * (jj / 2))) & 15;
  int hi = (blk[128 + half * 32 + l] >> (2 * jj)) & 3;
  return lo | hi << 4;
}

static float dot_q6_k(const uint8_t *w, const q8blk *x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t sb = 0; sb < nb / 8; sb++, w += 210) {
    const int8_t *sc = (const int8_t *)(w + 192);
    float d = f16le(w + 208);
    for (int j = 0; j < 8; j++) {
      const q8blk *xb = &x[sb * 8 + j];
      int32_t s0 = 0, s1 = 0;
      for (int l = 0; l < 16; l++) s0 += (q6k_code(w, j, l) - 32) * xb->q[l];
      for (int l = 16; l < 32; l++) s1 += (q6k_code(w, j, l) - 32) * xb->q[l];
      acc += d * (float)sc[2 * j] * xb->d * (float)s0 + d * (float)sc[2 * j + 1] * xb->d * (float)s1;
    }
  }
  return acc;
}

/* ---- the same with AVX-512 VNNI (256-bit vectors: one block each) ---- */

#ifdef HAVE_X86
#define VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,f16c,fma")))

VNNI static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

VNNI static inline float h16(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2); /* little-endian, as ggml stores it */
  return _cvtsh_ss(h);
}

/* the 32 nibbles of a Q4 block in element order: low nibbles, then high */
VNNI static inline __m256i nibbles(const uint8_t *qs) {
  __m128i p = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(p, 4), m), _mm_and_si128(p, m));
}
/* Q8_0's s8 codes as u8 (q + 128); the 128 * sum(qx) this adds is taken off */
VNNI static inline __m256i flipped(const uint8_t *q) {
  return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), _mm256_set1_epi8((char)0x80));
}
/* R weight rows (rs bytes apart) against one x row, one block per 256-bit
 * vpdpbusd; R = 4 keeps four accumulator chains in flight and loads each x
 * block once. The per-row order of every sum is the same for R = 1 and
 * R = 4, so which rows a thread groups does not change any result. TS:
 * block bytes, QO: offset of the codes, W1: the block's codes as u8, OFF:
 * what those u8 codes add to each lane (taken off in integers), CORR: the
 * block's scalar term (Q4_1's minimum times f16(d_x sum(q_x))). Each lane
 * and the f32 order are llama.cpp's (dot_q4 above). (512-bit vectors over
 * two blocks measured slower on Zen 4:
 * the per-block f16 scales, not the products, bound the loop.) */
/* the one-row and four-row entry points of a kernel name##_r(..., R) */
#define ROW_ENTRIES(name)                                                                         \
  VNNI static float name(const uint8_t *w, const q8blk *x, int64_t nb) {                          \
    float o;                                                                                      \
    name##_r(w, 0, x, nb, &o, 1);                                                                 \
    return o;                                                                                     \
  }                                                                                               \
  VNNI static void name##4(const uint8_t *w, size_t rs, const q8blk *x, int64_t nb, float *out) { \
    name##_r(w, rs, x, nb, out, 4);                                                               \
  }

#define PREFETCH_BYTES 512 /* ahead in each weight row: the rows stream from memory in decode */
#define ROWS_KERNEL(name, TS, QO, W1, OFF, CORR)                                                                      \
  VNNI static inline __attribute__((always_inline)) void name##_r(const uint8_t *w, size_t rs, const q8blk *x, \
                                                                  int64_t nb, float *out, const int R) {          \
    __m256 acc[4];                                                                                                \
    float corr[4];                                                                                                \
    for (int r = 0; r < R; r++) {                                                                                 \
      acc[r] = _mm256_setzero_ps();                                                                               \
      corr[r] = 0.0f;                                                                                             \
    }                                                                                                             \
    for (int64_t b = 0; b < nb; b++) {                                                                            \
      __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].q), off = OFF(xq);                                  \
      for (int r = 0; r < R; r++) {                                                                               \
        const uint8_t *blk = w + (size_t)r * rs + (size_t)b * TS;                                                 \
        _mm_prefetch((const char *)blk + PREFETCH_BYTES, _MM_HINT_T0);                                            \
        __m256i sv = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), W1(blk + QO), xq), off);       \
        float d = h16(blk) * x[b].d;                                                                              \
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sv), _mm256_set1_ps(d), acc[r]);                             \
        corr[r] += CORR(blk, d, x[b]);                                                                            \
      }                                                                                                           \
    }                                                                                                             \
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]) + corr[r];                                                 \
  }                                                                                                               \
  ROW_ENTRIES(name)                                                                                               \
  /* 4 weight rows x 4 x rows (xs blocks apart): each weight block unpacked   \
     once for four x rows, two x rows per 512-bit vpdpbusd (each 256-bit half \
     the lanes the one-row kernel has); out[c * ldo + r]; the same per-pair  \
     order of every sum as above */                                           \
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
VNNI static inline __m256i off_none(__m256i xq) { return (void)xq, _mm256_setzero_si256(); }
VNNI static inline __m256i off_8(__m256i xq) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), xq); }
VNNI static inline __m256i off_128(__m256i xq) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), xq);
}
#define CORR_NONE(blk, d, xb) ((void)(xb), 0.0f)
#define CORR_Q4_1(blk, d, xb) (h16((blk) + 2) * (xb).ds)
ROWS_KERNEL(dot_q4_0_vnni, 18, 2, nibbles, off_8, CORR_NONE)
ROWS_KERNEL(dot_q4_1_vnni, 20, 4, nibbles, off_none, CORR_Q4_1)
ROWS_KERNEL(dot_q8_0_vnni, 34, 2, flipped, off_128, CORR_NONE)

/* ---- sixteen rows interleaved (decode and prompt chunks) ----
 * A weight matrix borrowed from a file is repacked once, on first use
 * (ry__array_derived), so that one 512-bit vpdpbusd multiplies four codes
 * of sixteen rows by the same four x codes, row r in 32-bit lane r. Record
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
#define R16 16
typedef struct rows16 {
  int type;
  int64_t n, k, nb;   /* rows repacked (a multiple of 16), elements per row, blocks per row */
  size_t hdr, rec;    /* bytes of a record's scales, of a record */
  uint8_t *p;
} rows16;

static void rows16_free(void *v) {
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

static void *rows16_make(const void *data, void *ctx) {
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
static void rows16_blocks(const rows16 *p, int64_t row, uint8_t *out) {
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
#define ROWS16_TYPED(X)                                                                            \
  switch (p->type) {                                                                               \
  case RY_GGML_Q4_0: rows16_x(p, g, x, xs, out, ldo, X, RY_GGML_Q4_0); break;                      \
  case RY_GGML_Q4_1: rows16_x(p, g, x, xs, out, ldo, X, RY_GGML_Q4_1); break;                      \
  default: rows16_x(p, g, x, xs, out, ldo, X, RY_GGML_Q8_0); break;                                \
  }
VNNI static void dot_rows16(const rows16 *p, int64_t g, const q8blk *x, float *out) {
  const int64_t xs = 0, ldo = 0;
  ROWS16_TYPED(1)
}
VNNI static void dot_rows16_2(const rows16 *p, int64_t g, const q8blk *x, int64_t xs, float *out, int64_t ldo) {
  ROWS16_TYPED(2)
}

/* K-quants, R rows at a time as above; each row's order is the same for
 * R = 1 and R = 4 */
VNNI static inline __m256i q4k_codes(const uint8_t *blk, int j) {
  __m256i p = _mm256_loadu_si256((const __m256i *)(blk + 16 + (j / 2) * 32));
  return _mm256_and_si256(j & 1 ? _mm256_srli_epi16(p, 4) : p, _mm256_set1_epi8(15));
}

VNNI static inline __attribute__((always_inline)) void dot_q4_k_vnni_r(const uint8_t *w, size_t rs, const q8blk *x, int64_t nb,
                                                                  float *out, const int R) {
  __m256 acc[4];
  float corr[4];
  for (int r = 0; r < R; r++) {
    acc[r] = _mm256_setzero_ps();
    corr[r] = 0.0f;
  }
  for (int64_t sb = 0; sb < nb / 8; sb++)
    for (int j = 0; j < 8; j++) {
      const q8blk *xb = &x[sb * 8 + j];
      __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);
      for (int r = 0; r < R; r++) {
        const uint8_t *blk = w + (size_t)r * rs + (size_t)sb * 144;
        int sc, m;
        scale_min_k4(blk + 4, j, &sc, &m);
        __m256i sv = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q4k_codes(blk, j), xq);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sv), _mm256_set1_ps(h16(blk) * (float)sc * xb->d), acc[r]);
        corr[r] += h16(blk + 2) * (float)m * (xb->d * (float)xb->sum);
      }
    }
  for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]) - corr[r];
}

/* Q6_K: the codes' dot products minus 32 sum(q_x), per group of four bytes,
 * scaled per 16 elements (lanes 0-3 and 4-7) */
VNNI static inline __m256i q6k_codes(const uint8_t *blk, int j) {
  int half = j / 4, jj = j % 4;
  __m256i lo = _mm256_loadu_si256((const __m256i *)(blk + half * 64 + 32 * (jj % 2)));
  __m256i hi = _mm256_loadu_si256((const __m256i *)(blk + 128 + half * 32));
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
  lo = _mm256_and_si256(jj / 2 ? _mm256_srli_epi16(lo, 4) : lo, m4);
  hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * jj)), m2);
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

VNNI static inline __attribute__((always_inline)) void dot_q6_k_vnni_r(const uint8_t *w, size_t rs, const q8blk *x, int64_t nb,
                                                                  float *out, const int R) {
  __m256 acc[4];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  const __m256i k32 = _mm256_set1_epi8(32);
  for (int64_t sb = 0; sb < nb / 8; sb++)
    for (int j = 0; j < 8; j++) {
      const q8blk *xb = &x[sb * 8 + j];
      __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);
      __m256i off = _mm256_dpbusd_epi32(_mm256_setzero_si256(), k32, xq);
      for (int r = 0; r < R; r++) {
        const uint8_t *blk = w + (size_t)r * rs + (size_t)sb * 210;
        const int8_t *sc = (const int8_t *)(blk + 192);
        float dd = h16(blk + 208) * xb->d;
        __m256i sv = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q6k_codes(blk, j), xq), off);
        __m256 scl = _mm256_set_m128(_mm_set1_ps(dd * (float)sc[2 * j + 1]), _mm_set1_ps(dd * (float)sc[2 * j]));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sv), scl, acc[r]);
      }
    }
  for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]);
}

ROW_ENTRIES(dot_q4_k_vnni)
ROW_ENTRIES(dot_q6_k_vnni)


/* quantize_row with AVX-512: the same values (the products x * id, and
 * rounding to nearest even, are the same operations) */
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
#endif

/* RYFT_QGEMM=portable forces the portable kernels (tests compare both) */
static int g_cached = -1, g_portable;

void ryc_qgemm_force_portable(int on) {
  __atomic_store_n(&g_portable, on, __ATOMIC_RELAXED);
  __atomic_store_n(&g_cached, -1, __ATOMIC_RELAXED);
}

static int use_vnni(void) {
#ifdef HAVE_X86
  int c = __atomic_load_n(&g_cached, __ATOMIC_RELAXED);
  if (c < 0) {
    const char *e = getenv("RYFT_QGEMM");
    __builtin_cpu_init();
    c = !(e && !strcmp(e, "portable")) && !__atomic_load_n(&g_portable, __ATOMIC_RELAXED) &&
        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    __atomic_store_n(&g_cached, c, __ATOMIC_RELAXED);
  }
  return c;
#else
  return 0;
#endif
}

const char *ryc_qgemm_impl(void) { return use_vnni() ? "avx512-vnni" : "portable"; }

static dot_fn pick(int type) {
  bool v = use_vnni();
  switch (type) {
#ifdef HAVE_X86
  case RY_GGML_Q4_0: return v ? dot_q4_0_vnni : dot_q4_0;
  case RY_GGML_Q4_1: return v ? dot_q4_1_vnni : dot_q4_1;
  case RY_GGML_Q8_0: return v ? dot_q8_0_vnni : dot_q8_0;
  case RY_GGML_Q4_K: return v ? dot_q4_k_vnni : dot_q4_k;
  case RY_GGML_Q6_K: return v ? dot_q6_k_vnni : dot_q6_k;
#else
  case RY_GGML_Q4_0: return (void)v, dot_q4_0;
  case RY_GGML_Q4_1: return dot_q4_1;
  case RY_GGML_Q8_0: return dot_q8_0;
  case RY_GGML_Q4_K: return dot_q4_k;
  case RY_GGML_Q6_K: return dot_q6_k;
#endif
  default: return NULL;
  }
}

static dot4_fn pick4(int type) {
#ifdef HAVE_X86
  if (use_vnni()) switch (type) {
    case RY_GGML_Q4_0: return dot_q4_0_vnni4;
    case RY_GGML_Q4_1: return dot_q4_1_vnni4;
    case RY_GGML_Q8_0: return dot_q8_0_vnni4;
    case RY_GGML_Q4_K: return dot_q4_k_vnni4;
    case RY_GGML_Q6_K: return dot_q6_k_vnni4;
    default: break;
    }
#endif
  (void)type;
  return NULL;
}

static dot44_fn pick44(int type) {
#ifdef HAVE_X86
  if (use_vnni()) switch (type) {
    case RY_GGML_Q4_0: return dot_q4_0_vnni44;
    case RY_GGML_Q4_1: return dot_q4_1_vnni44;
    case RY_GGML_Q8_0: return dot_q8_0_vnni44;
    default: break;
    }
#endif
  (void)type;
  return NULL;
}

bool ryc_qgemm_int8(const ryc_qgemm *q) {
  return q->act8 && q->k % ry_ggml_block_size(q->type) == 0 && q->k % QK == 0 && pick(q->type) != NULL;
}

/* ---- the product ---- */

#define ROWS_PER_TILE 16 /* weight rows kept in L1 while every x row passes */
#ifdef HAVE_X86
_Static_assert(ROWS_PER_TILE == R16, "int8_task's tiles are the repacked groups");
#endif
/* Int8 products of Q4_0, Q4_1 and Q8_0 run the int8 kernels up to
 * INT8_MAX_ROWS x rows, as llama.cpp does: the packed f32 GEMM over panels
 * of dequantized weights is exact, not llama.cpp's arithmetic, and the
 * difference moves the 8-bit codes of later products enough to change
 * greedy choices (docs/QUANT.md). Measured on one core (EPYC, cpu time of
 * a SmolLM2 prefill): 16 rows 68 ms int8 against 93 ms panels, 64 rows 225
 * against 210, 128 rows 453 against 388; so the longest prefill chunks
 * (128 and 256 tokens, where ry_lm drops llama.cpp's arithmetic too) keep
 * the panels. The K-quants (no 4x4 kernel, and not llama.cpp's Q8_K
 * rounding anyway) take the panels from INT8_MAX_ROWS_K x rows on. */
#define INT8_MAX_ROWS 64
#define INT8_MAX_ROWS_K 16
#define PANEL_ROWS 256
#define PANEL_BYTES (512 << 10) /* a panel of f32 weights stays in L2 */

typedef struct job {
  const ryc_qgemm *q;
  const float *x;
  const q8blk *xq;
  const uint8_t *w;
  float *y;
  size_t row_bytes;
  dot_fn dot;
  dot4_fn dot4;   /* NULL: one row at a time */
  dot44_fn dot44; /* NULL: one x row at a time */
  const struct rows16 *r16; /* the rows repacked sixteen at a time, or NULL */
  int64_t np;               /* panels: weight rows dequantized at a time */
  int oom; /* exact mode: a task could not allocate its row */
} job;

static void int8_task(void *ctx, int64_t lo, int64_t hi) {
  const job *j = ctx;
  int64_t m = j->q->m, n = j->q->n, nb = j->q->k / QK;
  for (int64_t t = lo; t < hi; t += ROWS_PER_TILE) {
    int64_t te = t + ROWS_PER_TILE < hi ? t + ROWS_PER_TILE : hi;
    int64_t i = 0;
#ifdef HAVE_X86
    /* a tile that is a whole group of sixteen repacked rows (tiles are
       groups: ROWS_PER_TILE == R16), two x rows at a time */
    if (j->r16 && t % R16 == 0 && te - t == R16 && te <= j->r16->n) {
      int64_t c = 0;
      for (; c + 2 <= m; c += 2) dot_rows16_2(j->r16, t / R16, j->xq + c * nb, nb, j->y + c * n + t, n);
      if (c < m) dot_rows16(j->r16, t / R16, j->xq + c * nb, j->y + c * n + t);
      continue;
    }
#endif
    for (; j->dot44 && i + 4 <= m; i += 4) {
      int64_t r = t;
      for (; r + 4 <= te; r += 4) j->dot44(j->w + (size_t)r * j->row_bytes, j->row_bytes, j->xq + i * nb, nb, nb, j->y + i * n + r, n);
      for (; r < te; r++)
        for (int64_t c = 0; c < 4; c++) j->y[(i + c) * n + r] = j->dot(j->w + (size_t)r * j->row_bytes, j->xq + (i + c) * nb, nb);
    }
    for (; i < m; i++) {
      int64_t r = t;
      float o4[4];
      for (; j->dot4 && r + 4 <= te; r += 4) {
        j->dot4(j->w + (size_t)r * j->row_bytes, j->row_bytes, j->xq + i * nb, nb, o4);
        for (int e = 0; e < 4; e++) j->y[i * n + r + e] = o4[e];
      }
      for (; r < te; r++) j->y[i * n + r] = j->dot(j->w + (size_t)r * j->row_bytes, j->xq + i * nb, nb);
    }
  }
}

/* weight rows [lo, hi) in panels of np: dequantized, multiplied (the GEMM
   runs on this thread: the pool is busy with this job), copied into y */
static void panel_task(void *ctx, int64_t lo, int64_t hi) {
  job *j = ctx;
  const ryc_qgemm *q = j->q;
  size_t wb = (size_t)(j->np * q->k) * sizeof(float), cb = (size_t)(q->m * j->np) * sizeof(float);
  float *wf = ry__malloc(wb), *c = ry__malloc(cb);
  uint8_t *row = j->r16 ? ry__malloc(j->row_bytes) : NULL;
  for (int64_t r0 = lo; wf && c && (row || !j->r16) && r0 < hi; r0 += j->np) {
    int64_t nr = hi - r0 < j->np ? hi - r0 : j->np, i = 0;
#ifdef HAVE_X86
    /* weights repacked for decode: dequantized from there, so that the
       file's own blocks are not read again (the same bytes, the same f32) */
    for (; j->r16 && r0 + i < j->r16->n && i < nr; i++) {
      rows16_blocks(j->r16, r0 + i, row);
      ry_status_free(ry_ggml_dequantize(q->type, row, wf + i * q->k, q->k));
    }
#endif
    if (i < nr) /* the type was checked */
      ry_status_free(ry_ggml_dequantize(q->type, j->w + (size_t)(r0 + i) * j->row_bytes, wf + i * q->k, (nr - i) * q->k));
    ryc_sgemm(0, 1, q->m, nr, q->k, j->x, wf, c);
    for (int64_t e = 0; e < q->m; e++) memcpy(j->y + e * q->n + r0, c + e * nr, (size_t)nr * sizeof(float));
  }
  if (!wf || !c || (j->r16 && !row)) __atomic_store_n(&j->oom, 1, __ATOMIC_RELAXED);
  if (wf) ry__free(wf, wb);
  if (c) ry__free(c, cb);
  if (row) ry__free(row, j->row_bytes);
}

/* exact, few x rows: each weight row dequantized once, then its dots */
static void exact_task(void *ctx, int64_t lo, int64_t hi) {
  job *j = ctx;
  int64_t m = j->q->m, n = j->q->n, k = j->q->k;
  float *row = malloc((size_t)k * sizeof *row);
  if (!row) {
    __atomic_store_n(&j->oom, 1, __ATOMIC_RELAXED);
    return;
  }
  for (int64_t r = lo; r < hi; r++) {
    ry_status_free(ry_ggml_dequantize(j->q->type, j->w + (size_t)r * j->row_bytes, row, k)); /* the type was checked */
    for (int64_t i = 0; i < m; i++) {
      const float *x = j->x + i * k;
      float acc = 0.0f;
      for (int64_t e = 0; e < k; e++) acc += x[e] * row[e];
      j->y[i * n + r] = acc;
    }
  }
  free(row);
}

/* x's m rows as Q8 blocks for the int8 kernels (*bytes: what to free) */
static q8blk *quantize_x(const ryc_qgemm *q, const float *x, size_t *bytes) {
  int64_t nb = q->k / QK;
  *bytes = (size_t)(q->m * nb) * sizeof(q8blk);
  if (!*bytes) *bytes = 1;
  q8blk *xq = ry__malloc(*bytes);
  for (int64_t i = 0; xq && i < q->m; i++)
#ifdef HAVE_X86
    if (use_vnni()) quantize_row_vnni(x + i * q->k, q->k, xq + i * nb);
    else
#endif
      quantize_row(x + i * q->k, q->k, xq + i * nb);
  return xq;
}

/* Does the product run the int8 kernels? Int8 activations and a type with an
   integer kernel, for at most INT8_MAX_ROWS x rows (INT8_MAX_ROWS_K - 1 for
   the K-quants); more rows take the f32 panels. */
static bool int8_path(const ryc_qgemm *q) {
  bool k_quant = q->type == RY_GGML_Q4_K || q->type == RY_GGML_Q6_K;
  return ryc_qgemm_int8(q) && (k_quant ? q->m < INT8_MAX_ROWS_K : q->m <= INT8_MAX_ROWS);
}

/* an int8 job's kernels for its type */
static void pick_int8(job *j) {
  j->dot = pick(j->q->type);
  j->dot4 = pick4(j->q->type);
  j->dot44 = pick44(j->q->type);
}

static ry_status run(const ryc_qgemm *q, const float *x, const uint8_t *w, const struct rows16 *r16, float *y) {
  size_t row_bytes;
  ry_status s = ry_ggml_row_size(q->type, q->k, &row_bytes);
  if (s) return s;
  job j = {q, x, NULL, w, y, row_bytes, NULL, NULL, NULL, NULL, 0, 0};
  if (q->m == 0 || q->n == 0) return NULL;
  if (int8_path(q)) {
    size_t xb;
    q8blk *xq = quantize_x(q, x, &xb);
    if (!xq) return ry__oom();
    j.xq = xq;
    pick_int8(&j);
    j.r16 = r16;
    ryc_parallel_for(q->n, ROWS_PER_TILE, int8_task, &j);
    ry__free(xq, xb);
    return NULL;
  }
  if (q->m < 4) {
    ryc_parallel_for(q->n, 8, exact_task, &j);
    return __atomic_load_n(&j.oom, __ATOMIC_RELAXED) ? ry__oom() : NULL;
  }
  /* many x rows: panels of f32 weights (they stay in cache) into the packed
     GEMM, each panel's columns copied into y; threads take whole panels
     (dequantizing their own), each running its GEMM alone */
  int64_t np = (int64_t)(PANEL_BYTES / ((size_t)q->k * sizeof(float))) / 32 * 32;
  np = np < 32 ? 32 : np > PANEL_ROWS ? PANEL_ROWS : np;
  j.np = np < q->n ? np : q->n;
  j.r16 = r16;
  ryc_parallel_for(q->n, j.np, panel_task, &j);
  return __atomic_load_n(&j.oom, __ATOMIC_RELAXED) ? ry__oom() : NULL;
}

ry_status ryc_qgemm_run(const ryc_qgemm *q, const float *x, const uint8_t *w, float *y) { return run(q, x, w, NULL, y); }

/* the int8 products of a borrowed weight matrix read it repacked (NULL: not
   this one) */
static const struct rows16 *repacked(const ryc_qgemm *q, ry_array *w) {
  const struct rows16 *r16 = NULL;
#ifdef HAVE_X86
  if (q->n >= R16 && use_vnni() && (q->type == RY_GGML_Q4_0 || q->type == RY_GGML_Q4_1 || q->type == RY_GGML_Q8_0)) {
    /* the int8 products (decode, prompt chunks up to INT8_MAX_ROWS) make
       the copy; wider ones (the f32 panels) read it where it exists */
    bool makes = int8_path(q);
    r16 = ry__array_derived(w, makes ? rows16_make : NULL, (void *)q, rows16_free);
    if (r16 && (r16->type != q->type || r16->k != q->k || r16->n != q->n / R16 * R16)) r16 = NULL; /* made for another use */
    /* the products on this cpu read the copy from now on (the rows past
       the last sixteen, exact products of few rows and an embedding's
       lookups read the blocks, faulting their pages in again): the file's
       pages of the blocks can go */
    if (r16 && makes) ry__array_drop_pages(w);
  }
#else
  (void)q, (void)w;
#endif
  return r16;
}

ry_status ryc_qgemm_run_array(const ryc_qgemm *q, const float *x, ry_array *w, float *y) {
  return run(q, x, w->data, repacked(q, w), y);
}

/* Products by several weight matrices of one x (a layer's query, key and
 * value projections), run as one job over all their rows: x is quantized
 * once and the threads split the rows of every matrix at once. */
typedef struct group_job {
  int count;
  job j[RYC_QGEMM_GROUP_MAX];
  int64_t start[RYC_QGEMM_GROUP_MAX + 1]; /* the group's row where matrix i starts */
} group_job;

static void group_task(void *ctx, int64_t lo, int64_t hi) {
  const group_job *g = ctx;
  for (int i = 0; i < g->count; i++) {
    int64_t a = lo > g->start[i] ? lo : g->start[i], b = hi < g->start[i + 1] ? hi : g->start[i + 1];
    if (a < b) int8_task((void *)&g->j[i], a - g->start[i], b - g->start[i]);
  }
}

/* Whether q can join the int8 group that first leads: the same x and kind
   of product, whole tiles of rows (so a tile never spans two matrices and
   every row is computed as it would be alone) */
static bool groupable(const ryc_qgemm *first, const ryc_qgemm *q) {
  return q->m == first->m && q->k == first->k && q->type == first->type && q->act8 == first->act8 && int8_path(q) &&
         q->n % ROWS_PER_TILE == 0;
}

bool ryc_qgemm_groupable(const ryc_qgemm *a, const ryc_qgemm *b) { return groupable(a, a) && groupable(a, b); }

ry_status ryc_qgemm_run_group(int count, const ryc_qgemm *const *q, const float *x, ry_array *const *w, float *const *y) {
  bool ok = count > 1 && count <= RYC_QGEMM_GROUP_MAX;
  for (int i = 0; ok && i < count; i++) ok = groupable(q[0], q[i]);
  if (!ok) {
    for (int i = 0; i < count; i++) {
      ry_status s = ryc_qgemm_run_array(q[i], x, w[i], y[i]);
      if (s) return s;
    }
    return NULL;
  }
  if (q[0]->m == 0) return NULL;
  size_t xb;
  q8blk *xq = quantize_x(q[0], x, &xb);
  if (!xq) return ry__oom();
  group_job g = {.count = count};
  ry_status s = NULL;
  for (int i = 0; i < count && !s; i++) {
    size_t row_bytes;
    s = ry_ggml_row_size(q[i]->type, q[i]->k, &row_bytes);
    g.j[i] = (job){q[i], x, xq, w[i]->data, y[i], row_bytes, NULL, NULL, NULL, repacked(q[i], w[i]), 0, 0};
    pick_int8(&g.j[i]);
    g.start[i + 1] = g.start[i] + q[i]->n;
  }
  if (!s) ryc_parallel_for(g.start[count], ROWS_PER_TILE, group_task, &g);
  ry__free(xq, xb);
  return s;
}
