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
 * with exact integer sums: `vpdpbusd` (u8 x s8 -> s32, AVX-512 VNNI) or
 * `vpmaddubsw` + `vpmaddwd` (AVX2) where the CPU has them (qgemm_x86.c),
 * portable C elsewhere; every level gives the same bits (the same exact
 * integer sums and the same f32 steps in the same order: llama.cpp's for
 * Q4_0, Q4_1 and Q8_0, the portable kernel's eight lanes for the
 * K-quants). Threads split the weight rows; each row's result is
 * computed by one thread in a fixed order, so results do not depend on the
 * thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"
#include "qgemm.h"
#include "qgemm_kern.h"
#include "ryft/gguf.h"
#ifdef HAVE_X86
#include <cpuid.h>
#endif

/* every level's bits are the same only if no compiler fuses a * b + c on
   its own: gcc in ISO C mode does not, clang would (-ffp-contract=on)
   wherever the function's target has FMA */
#ifdef __clang__
#pragma clang fp contract(off)
#endif

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

/* The f32 order of llama.cpp's AVX2 kernels (ggml_vec_dot_q4_0_q8_0 etc.),
 * which the vector kernels (qgemm_x86.c) share: eight lanes, lane l holding the
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
 * int8 scale per 16 elements. The minimum's term uses d_x sum(q_x) in f32.
 * The f32 steps are those of the eight-lane vector kernels (qgemm_x86.c):
 * lane l the exact sum of elements 4l..4l+3, an fma per lane and
 * sub-block, the lanes added as hsum8_ref adds them, Q4_K's minimum term
 * summed apart and taken off last. */
static float dot_q4_k(const uint8_t *w, const q8blk *x, int64_t nb) {
  float acc[8] = {0}, corr = 0.0f;
  for (int64_t sb = 0; sb < nb / 8; sb++, w += 144)
    for (int j = 0; j < 8; j++) {
      const q8blk *xb = &x[sb * 8 + j];
      int sc, m;
      scale_min_k4(w + 4, j, &sc, &m);
      float d = f16le(w) * (float)sc * xb->d;
      for (int l = 0; l < 8; l++) {
        int32_t s = 0;
        for (int e = 4 * l; e < 4 * l + 4; e++) s += ((w[16 + (j / 2) * 32 + e] >> (4 * (j % 2))) & 15) * xb->q[e];
        acc[l] = fmaf((float)s, d, acc[l]);
      }
      corr += f16le(w + 2) * (float)m * (xb->d * (float)xb->sum);
    }
  return hsum8_ref(acc) - corr;
}

static int q6k_code(const uint8_t *blk, int j, int l) {
  int half = j / 4, jj = j % 4;
  int lo = (blk[half * 64 + 32 * (jj % 2) + l] >> (4 * (jj / 2))) & 15;
  int hi = (blk[128 + half * 32 + l] >> (2 * jj)) & 3;
  return lo | hi << 4;
}

static float dot_q6_k(const uint8_t *w, const q8blk *x, int64_t nb) {
  float acc[8] = {0};
  for (int64_t sb = 0; sb < nb / 8; sb++, w += 210) {
    const int8_t *sc = (const int8_t *)(w + 192);
    for (int j = 0; j < 8; j++) {
      const q8blk *xb = &x[sb * 8 + j];
      float dd = f16le(w + 208) * xb->d;
      for (int l = 0; l < 8; l++) {
        int32_t s = 0;
        for (int e = 4 * l; e < 4 * l + 4; e++) s += (q6k_code(w, j, e) - 32) * xb->q[e];
        acc[l] = fmaf((float)s, dd * (float)sc[2 * j + l / 4], acc[l]);
      }
    }
  }
  return hsum8_ref(acc);
}

/* The kernel level: the CPU's best (AVX-512 VNNI, else AVX2 with FMA and
 * F16C, else portable C), at most the one RYFT_QGEMM or ryc_qgemm_force
 * names (tests compare them: every level gives the same bits). */
static int g_level = -1, g_forced = -1; /* -1: not chosen yet, not forced */

static int level_named(const char *name) {
  return !name ? -1 : !strcmp(name, "portable") ? QK_PORTABLE : !strcmp(name, "avx2") ? QK_AVX2 : -1;
}

void ryc_qgemm_force(const char *impl) {
  __atomic_store_n(&g_forced, level_named(impl), __ATOMIC_RELAXED);
  __atomic_store_n(&g_level, -1, __ATOMIC_RELAXED);
}

static int level(void) {
  int c = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
  if (c >= 0) return c;
  c = QK_PORTABLE;
#ifdef HAVE_X86
  __builtin_cpu_init();
  unsigned a, b, c1, d;
  bool f16c = __get_cpuid(1, &a, &b, &c1, &d) && (c1 & bit_F16C); /* clang 14's __builtin_cpu_supports lacks "f16c" */
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c)
    c = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
            ? QK_VNNI
            : QK_AVX2;
#endif
  int cap = __atomic_load_n(&g_forced, __ATOMIC_RELAXED);
  if (cap < 0) cap = level_named(getenv("RYFT_QGEMM"));
  if (cap >= 0 && cap < c) c = cap;
  __atomic_store_n(&g_level, c, __ATOMIC_RELAXED);
  return c;
}

const char *ryc_qgemm_impl(void) {
  static const char *const names[] = {"portable", "avx2", "avx512-vnni"};
  return names[level()];
}

/* the type's kernels at the current level; false: no int8 kernel */
static bool kernels(int type, qkern *k) {
#ifdef HAVE_X86
  if (level() > QK_PORTABLE) return ryc_qk_x86(level(), type, k);
#endif
  *k = (qkern){NULL, NULL, NULL};
  switch (type) {
  case RY_GGML_Q4_0: k->dot = dot_q4_0; break;
  case RY_GGML_Q4_1: k->dot = dot_q4_1; break;
  case RY_GGML_Q8_0: k->dot = dot_q8_0; break;
  case RY_GGML_Q4_K: k->dot = dot_q4_k; break;
  case RY_GGML_Q6_K: k->dot = dot_q6_k; break;
  default: return false;
  }
  return true;
}

bool ryc_qgemm_int8(const ryc_qgemm *q) {
  return q->act8 && q->k % ry_ggml_block_size(q->type) == 0 && q->k % QK == 0 && kernels(q->type, &(qkern){0});
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
  qkern k; /* the int8 kernels (dot4, dot44 NULL: one row, one x row at a time) */
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
      for (; c + 2 <= m; c += 2) ryc_rows16_dot2(level(), j->r16, t / R16, j->xq + c * nb, nb, j->y + c * n + t, n);
      if (c < m) ryc_rows16_dot(level(), j->r16, t / R16, j->xq + c * nb, j->y + c * n + t);
      continue;
    }
#endif
    for (; j->k.dot44 && i + 4 <= m; i += 4) {
      int64_t r = t;
      for (; r + 4 <= te; r += 4) j->k.dot44(j->w + (size_t)r * j->row_bytes, j->row_bytes, j->xq + i * nb, nb, nb, j->y + i * n + r, n);
      for (; r < te; r++)
        for (int64_t c = 0; c < 4; c++) j->y[(i + c) * n + r] = j->k.dot(j->w + (size_t)r * j->row_bytes, j->xq + (i + c) * nb, nb);
    }
    for (; i < m; i++) {
      int64_t r = t;
      float o4[4];
      for (; j->k.dot4 && r + 4 <= te; r += 4) {
        j->k.dot4(j->w + (size_t)r * j->row_bytes, j->row_bytes, j->xq + i * nb, nb, o4);
        for (int e = 0; e < 4; e++) j->y[i * n + r + e] = o4[e];
      }
      for (; r < te; r++) j->y[i * n + r] = j->k.dot(j->w + (size_t)r * j->row_bytes, j->xq + i * nb, nb);
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
      ryc_rows16_blocks(j->r16, r0 + i, row);
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
    if (level() > QK_PORTABLE) ryc_qk_x86_quantize_row(level(), x + i * q->k, q->k, xq + i * nb);
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

static ry_status run(const ryc_qgemm *q, const float *x, const uint8_t *w, const struct rows16 *r16, float *y) {
  size_t row_bytes;
  ry_status s = ry_ggml_row_size(q->type, q->k, &row_bytes);
  if (s) return s;
  job j = {q, x, NULL, w, y, row_bytes, {NULL, NULL, NULL}, NULL, 0, 0};
  if (q->m == 0 || q->n == 0) return NULL;
  if (int8_path(q)) {
    size_t xb;
    q8blk *xq = quantize_x(q, x, &xb);
    if (!xq) return ry__oom();
    j.xq = xq;
    kernels(q->type, &j.k); /* int8_path checked the type */
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
  if (q->n >= R16 && level() >= QK_AVX2 && (q->type == RY_GGML_Q4_0 || q->type == RY_GGML_Q4_1 || q->type == RY_GGML_Q8_0)) {
    /* the int8 products (decode, prompt chunks up to INT8_MAX_ROWS) make
       the copy; wider ones (the f32 panels) read it where it exists */
    bool makes = int8_path(q);
    r16 = ry__array_derived(w, makes ? ryc_rows16_make : NULL, (void *)q, ryc_rows16_free);
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
    g.j[i] = (job){q[i], x, xq, w[i]->data, y[i], row_bytes, {NULL, NULL, NULL}, repacked(q[i], w[i]), 0, 0};
    kernels(q[i]->type, &g.j[i].k); /* groupable checked the type */
    g.start[i + 1] = g.start[i] + q[i]->n;
  }
  if (!s) ryc_parallel_for(g.start[count], ROWS_PER_TILE, group_task, &g);
  ry__free(xq, xb);
  return s;
}
