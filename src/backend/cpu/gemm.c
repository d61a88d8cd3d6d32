/* GEMM for the cpu backend.
 *
 * sgemm: ryft's own packed GEMM (BLIS-style loops: NC columns, KC depth, MC
 * rows; an MR x NR register-blocked micro-kernel written with GCC vector
 * extensions) compiled for the host by the JIT (-march=native picks AVX-512,
 * AVX2 or SSE) the first time a program needs it, and cached like any
 * module. When a thread's columns are at most two panels wide and A is not
 * transposed, A is read in place instead of packed (ukr_d). Packing
 * workspaces stay on a free list between calls. Threads split the columns in
 * NR-aligned ranges; every element of C
 * is accumulated over k in the same order whatever the split, so results do
 * not depend on the thread count. At most GEMV_MAX_M rows of A take a
 * matrix-vector path (ryg_sgemv) that streams B once without packing. Without
 * a compiler, or for f64, a portable
 * blocked loop in this file runs instead. bench/gemm_compare.c measures it
 * against OpenBLAS, BLIS, oneDNN and libxsmm (bench/RESULTS.md). */
#include <pthread.h>
#include <stdlib.h>

#include "../../core/internal.h"
#include "gemm.h"
#include "jit.h"
#include "pool.h"

static const char *const g_gemm_src[] = {
    "/* ryft sgemm: packed, register-blocked */\n",
    "#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n",
    "#if defined(__AVX512F__)\n#define VL 16\n#elif defined(__AVX__)\n#define VL 8\n#else\n#define VL 4\n#endif\n",
    "#define MR 6\n#define NR (2 * VL)\n#define KC 384\n#define MC 96\n#define NC 3072\n",
    "typedef float vf __attribute__((vector_size(VL * 4)));\n",
    "typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));\n",
    "static inline float A_at(const float *a, int ta, int64_t m, int64_t k, int64_t i, int64_t p) {\n",
    "  return ta ? a[p * m + i] : a[i * k + p]; }\n",
    "static inline float B_at(const float *b, int tb, int64_t k, int64_t n, int64_t p, int64_t j) {\n",
    "  return tb ? b[j * k + p] : b[p * n + j]; }\n",
    "/* pack A[i0:i0+mc, p0:p0+kc] into MR-row strips, zero padded */\n",
    "static void pack_a(const float *a, int ta, int64_t m, int64_t k, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float *ap) {\n",
    "  for (int64_t ir = 0; ir < mc; ir += MR) {\n",
    "    int64_t mr = mc - ir < MR ? mc - ir : MR;\n",
    "    if (!ta && mr == MR) {\n",
    "      for (int64_t p = 0; p < kc; p++) for (int i = 0; i < MR; i++) ap[p * MR + i] = a[(i0 + ir + i) * k + p0 + p];\n",
    "    } else if (ta && mr == MR) {\n",
    "      for (int64_t p = 0; p < kc; p++) memcpy(ap + p * MR, a + (p0 + p) * m + i0 + ir, MR * sizeof(float));\n",
    "    } else {\n",
    "      for (int64_t p = 0; p < kc; p++) for (int i = 0; i < MR; i++)\n",
    "        ap[p * MR + i] = i < mr ? A_at(a, ta, m, k, i0 + ir + i, p0 + p) : 0.0f;\n",
    "    }\n",
    "    ap += MR * kc;\n",
    "  }\n",
    "}\n",
    "static void pack_b(const float *b, int tb, int64_t k, int64_t n, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float *bp) {\n",
    "  for (int64_t jr = 0; jr < nc; jr += NR) {\n",
    "    int64_t nr = nc - jr < NR ? nc - jr : NR;\n",
    "    if (!tb && nr == NR) {\n",
    "      for (int64_t p = 0; p < kc; p++) memcpy(bp + p * NR, b + (p0 + p) * n + j0 + jr, NR * sizeof(float));\n",
    "    } else if (tb && nr == NR) { /* B stored (n, k): read each row along k in blocks of 8 */\n",
    "      int64_t p = 0;\n",
    "      for (; p + 8 <= kc; p += 8)\n",
    "        for (int j = 0; j < NR; j++) { const float *src = b + (j0 + jr + j) * k + p0 + p;\n",
    "          for (int q = 0; q < 8; q++) bp[(p + q) * NR + j] = src[q]; }\n",
    "      for (; p < kc; p++) for (int j = 0; j < NR; j++) bp[p * NR + j] = b[(j0 + jr + j) * k + p0 + p];\n",
    "    } else if (tb) { /* a partial panel of B stored (n, k) */\n",
    "      for (int j = 0; j < NR; j++) {\n",
    "        const float *src = b + (j0 + jr + j) * k + p0;\n",
    "        if (j < nr) for (int64_t p = 0; p < kc; p++) bp[p * NR + j] = src[p];\n",
    "        else for (int64_t p = 0; p < kc; p++) bp[p * NR + j] = 0.0f;\n",
    "      }\n",
    "    } else {\n",
    "      for (int64_t p = 0; p < kc; p++) for (int j = 0; j < NR; j++)\n",
    "        bp[p * NR + j] = j < nr ? B_at(b, tb, k, n, p0 + p, j0 + jr + j) : 0.0f;\n",
    "    }\n",
    "    bp += NR * kc;\n",
    "  }\n",
    "}\n",
    "#define ROW(i) vf c##i##0 = z, c##i##1 = z;\n",
    "#define FMA(i) { float ai = ap[p * MR + i]; c##i##0 += ai * b0; c##i##1 += ai * b1; }\n",
    "#define STORE(i) if (i < mr) { float *r = c + (int64_t)i * ldc; \\\n",
    "  if (nr == NR) { vfu *r0 = (vfu *)r, *r1 = (vfu *)(r + VL); \\\n",
    "    if (first) { *r0 = c##i##0; *r1 = c##i##1; } else { *r0 += c##i##0; *r1 += c##i##1; } } \\\n",
    "  else { float t[NR]; memcpy(t, &c##i##0, VL * 4); memcpy(t + VL, &c##i##1, VL * 4); \\\n",
    "    for (int j = 0; j < nr; j++) r[j] = first ? t[j] : r[j] + t[j]; } }\n",
    "static void ukr(int64_t kc, const float *restrict ap, const float *restrict bp, float *restrict c, int64_t ldc,\n",
    "                int mr, int nr, int first) {\n",
    "  const vf z = {0};\n",
    "  ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)\n",
    "  for (int64_t p = 0; p < kc; p++) {\n",
    "    vf b0 = *(const vf *)(bp + p * NR), b1 = *(const vf *)(bp + p * NR + VL);\n",
    "    FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5)\n",
    "  }\n",
    "  STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)\n",
    "}\n",
    "/* the same product reading A (row-major, unpacked) through six row pointers:\n",
    "   when C has only a panel or two of columns, each A element is used once or\n",
    "   twice and packing it would cost as much as the product (convolutions) */\n",
    "#define FMAD(i) { float ai = a##i[p]; c##i##0 += ai * b0; c##i##1 += ai * b1; }\n",
    "static void ukr_d(int64_t kc, const float *a, int64_t lda, const float *restrict bp, float *restrict c, int64_t ldc,\n",
    "                  int mr, int nr, int first) {\n",
    "  const vf z = {0};\n",
    "  /* rows past mr (never stored) read the last real row */\n",
    "  const float *a0 = a, *a1 = a + (mr > 1 ? 1 : 0) * lda, *a2 = a + (mr > 2 ? 2 : mr - 1) * lda;\n",
    "  const float *a3 = a + (mr > 3 ? 3 : mr - 1) * lda, *a4 = a + (mr > 4 ? 4 : mr - 1) * lda, *a5 = a + (mr > 5 ? 5 : mr - 1) * lda;\n",
    "  ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)\n",
    "  for (int64_t p = 0; p < kc; p++) {\n",
    "    vf b0 = *(const vf *)(bp + p * NR), b1 = *(const vf *)(bp + p * NR + VL);\n",
    "    FMAD(0) FMAD(1) FMAD(2) FMAD(3) FMAD(4) FMAD(5)\n",
    "  }\n",
    "  STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)\n",
    "}\n",
    "/* a few rows of A (matrix-vector products: decoding a language model):\n",
    "   no packing, B streamed once. B stored (n, k): C[i, j] is the dot product\n",
    "   of two contiguous rows, in VL-wide partial sums then a fixed tree; B\n",
    "   stored (k, n): rows of B scaled and added, p ascending. Either way an\n",
    "   element's order depends on k alone, not on the columns a thread gets. */\n",
    "static inline float hsum(vf v) { float t[VL]; memcpy(t, &v, sizeof t);\n",
    "  for (int w = VL / 2; w > 0; w /= 2) for (int q = 0; q < w; q++) t[q] += t[q + w]; return t[0]; }\n",
    "void ryg_sgemv(int tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, int64_t j_lo,\n",
    "               int64_t j_hi) {\n",
    "  const vf z = {0};\n",
    "  if (tb) {\n",
    "    for (int64_t j = j_lo; j < j_hi; j++) {\n",
    "      const float *br = b + j * k;\n",
    "      for (int64_t i = 0; i < m; i++) {\n",
    "        const float *ar = a + i * k;\n",
    "        vf s0 = z, s1 = z, s2 = z, s3 = z;\n",
    "        int64_t p = 0;\n",
    "        for (; p + 4 * VL <= k; p += 4 * VL) {\n",
    "          s0 += *(const vfu *)(ar + p) * *(const vfu *)(br + p);\n",
    "          s1 += *(const vfu *)(ar + p + VL) * *(const vfu *)(br + p + VL);\n",
    "          s2 += *(const vfu *)(ar + p + 2 * VL) * *(const vfu *)(br + p + 2 * VL);\n",
    "          s3 += *(const vfu *)(ar + p + 3 * VL) * *(const vfu *)(br + p + 3 * VL);\n",
    "        }\n",
    "        for (; p + VL <= k; p += VL) s0 += *(const vfu *)(ar + p) * *(const vfu *)(br + p);\n",
    "        float acc = hsum((s0 + s1) + (s2 + s3));\n",
    "        for (; p < k; p++) acc += ar[p] * br[p];\n",
    "        c[i * n + j] = acc;\n",
    "      }\n",
    "    }\n",
    "    return;\n",
    "  }\n",
    "  for (int64_t i = 0; i < m; i++) {\n",
    "    float *cr = c + i * n;\n",
    "    for (int64_t j = j_lo; j < j_hi; j++) cr[j] = 0.0f;\n",
    "    for (int64_t p = 0; p < k; p++) {\n",
    "      const float ap = a[i * k + p], *br = b + p * n;\n",
    "      int64_t j = j_lo;\n",
    "      for (; j + VL <= j_hi; j += VL) *(vfu *)(cr + j) += ap * *(const vfu *)(br + j);\n",
    "      for (; j < j_hi; j++) cr[j] += ap * br[j];\n",
    "    }\n",
    "  }\n",
    "}\n",
    "int ryg_nr(void) { return NR; }\n",
    "int ryg_vl(void) { return VL; }\n",
    "/* floats of packing workspace one call needs (64-byte aligned) */\n",
    "int64_t ryg_ws_floats(void) { return (int64_t)KC * (NC + NR) + (int64_t)KC * (MC + MR); }\n",
    "/* columns [j_lo, j_hi) of C (m, n) = A * B; ws: ryg_ws_floats() floats */\n",
    "void ryg_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c,\n",
    "               int64_t j_lo, int64_t j_hi, float *ws) {\n",
    "  if (k == 0) { for (int64_t i = 0; i < m; i++) for (int64_t j = j_lo; j < j_hi; j++) c[i * n + j] = 0.0f; return; }\n",
    "  float *bp = ws, *ap = ws + (int64_t)KC * (NC + NR);\n",
    "  int direct = !ta && j_hi - j_lo <= 2 * NR; /* A read in place (ukr_d) */\n",
    "  for (int64_t j0 = j_lo; j0 < j_hi; j0 += NC) {\n",
    "    int64_t nc = j_hi - j0 < NC ? j_hi - j0 : NC;\n",
    "    for (int64_t p0 = 0; p0 < k; p0 += KC) {\n",
    "      int64_t kc = k - p0 < KC ? k - p0 : KC;\n",
    "      pack_b(b, tb, k, n, p0, kc, j0, nc, bp);\n",
    "      for (int64_t i0 = 0; i0 < m; i0 += MC) {\n",
    "        int64_t mc = m - i0 < MC ? m - i0 : MC;\n",
    "        if (!direct) pack_a(a, ta, m, k, i0, mc, p0, kc, ap);\n",
    "        for (int64_t jr = 0; jr < nc; jr += NR)\n",
    "          for (int64_t ir = 0; ir < mc; ir += MR) {\n",
    "            int mr = (int)(mc - ir < MR ? mc - ir : MR), nr = (int)(nc - jr < NR ? nc - jr : NR);\n",
    "            if (direct) ukr_d(kc, a + (i0 + ir) * k + p0, k, bp + jr * kc, c + (i0 + ir) * n + j0 + jr, n, mr, nr, p0 == 0);\n",
    "            else ukr(kc, ap + ir * kc, bp + jr * kc, c + (i0 + ir) * n + j0 + jr, n, mr, nr, p0 == 0);\n",
    "          }\n",
    "      }\n",
    "    }\n",
    "  }\n",
    "}\n",
    NULL};

typedef void (*native_sgemm)(int, int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t,
                             int64_t, float *);

typedef void (*native_sgemv)(int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t, int64_t);

/* at most this many rows of A (not transposed): the matrix-vector path */
#define GEMV_MAX_M 4

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static native_sgemm g_native;
static native_sgemv g_gemv;
static int g_nr = 16;
static int64_t g_ws_floats; /* packing workspace of one native call */
static ryc_module *g_mod; /* held for the process */

static void load_native(void) {
  if (getenv("RYFT_GEMM") && strcmp(getenv("RYFT_GEMM"), "portable") == 0) return;
  if (!ryc_have_compiler()) return;
  ryc_module *m;
  ry__buf src = {0};
  for (int i = 0; g_gemm_src[i]; i++) ry__buf_printf(&src, "%s", g_gemm_src[i]);
  ry_status s = src.oom ? ry__oom() : ryc_module_get(src.s, src.n, NULL, &m);
  ry__buf_free(&src);
  if (s) {
    ry_status_free(s);
    return;
  }
  native_sgemm f;
  int (*nr)(void);
  int64_t (*ws)(void);
  native_sgemv gv;
  void *p = ryc_module_sym(m, "ryg_sgemm"), *q = ryc_module_sym(m, "ryg_nr"), *w = ryc_module_sym(m, "ryg_ws_floats");
  void *v = ryc_module_sym(m, "ryg_sgemv");
  memcpy(&f, &p, sizeof f);
  memcpy(&nr, &q, sizeof nr);
  memcpy(&ws, &w, sizeof ws);
  memcpy(&gv, &v, sizeof gv);
  if (!f || !nr || !ws || !gv) {
    ryc_module_release(m);
    return;
  }
  g_mod = m;
  g_nr = nr();
  g_ws_floats = ws();
  g_native = f;
  g_gemv = gv;
}

const char *ryc_gemm_impl(void) {
  pthread_once(&g_once, load_native);
  return g_native ? "ryft packed (native)" : "portable";
}

/* ---- portable fallback ---- */

#define PKC 256
static void portable_cols(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c,
                          int64_t j_lo, int64_t j_hi) {
  for (int64_t i = 0; i < m; i++) {
    float *cr = c + i * n;
    for (int64_t j = j_lo; j < j_hi; j++) cr[j] = 0.0f;
    for (int64_t p = 0; p < k; p++) {
      float av = ta ? a[p * m + i] : a[i * k + p];
      if (!tb) {
        const float *br = b + p * n;
        for (int64_t j = j_lo; j < j_hi; j++) cr[j] += av * br[j];
      } else {
        for (int64_t j = j_lo; j < j_hi; j++) cr[j] += av * b[j * k + p];
      }
    }
  }
}

typedef struct {
  int ta, tb;
  int64_t m, n, k;
  const void *a, *b;
  void *c;
} gemm_job;

/* Packing workspaces, kept for the process: a call takes one from the free
 * list (or allocates it) and gives it back, so steady-state GEMMs neither
 * allocate nor fault in fresh pages. At most one per thread in a call. */
typedef struct workspace {
  struct workspace *next;
} workspace;
static pthread_mutex_t g_ws_lock = PTHREAD_MUTEX_INITIALIZER;
static workspace *g_ws_free;

static workspace *ws_take(void) {
  pthread_mutex_lock(&g_ws_lock);
  workspace *w = g_ws_free;
  if (w) g_ws_free = w->next;
  pthread_mutex_unlock(&g_ws_lock);
  if (!w) w = aligned_alloc(64, (size_t)(g_ws_floats + 16) * sizeof(float));
  return w;
}

static void ws_give(workspace *w) {
  pthread_mutex_lock(&g_ws_lock);
  w->next = g_ws_free;
  g_ws_free = w;
  pthread_mutex_unlock(&g_ws_lock);
}

static void sgemm_task(void *ctx, int64_t lo, int64_t hi) {
  const gemm_job *j = ctx;
  if (g_gemv && j->m <= GEMV_MAX_M && !j->ta && j->k > 0) {
    g_gemv(j->tb, j->m, j->n, j->k, j->a, j->b, j->c, lo, hi);
    return;
  }
  workspace *w = g_native ? ws_take() : NULL;
  if (w) {
    /* the list link lives in the first 64 bytes; the packed panels after it */
    g_native(j->ta, j->tb, j->m, j->n, j->k, j->a, j->b, j->c, lo, hi, (float *)w + 16);
    ws_give(w);
  } else {
    portable_cols(j->ta, j->tb, j->m, j->n, j->k, j->a, j->b, j->c, lo, hi);
  }
}

void ryc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c) {
  pthread_once(&g_once, load_native);
  if (m <= 0 || n <= 0) return;
  gemm_job j = {trans_a, trans_b, m, n, k, a, b, c};
  int64_t flops = m * n * (k ? k : 1);
  int64_t grain = g_nr;
  if (g_gemv && m <= GEMV_MAX_M && !trans_a && k > 0) { /* no packing: split the columns evenly */
    int64_t bytes = n * k * (int64_t)sizeof(float);
    ryc_parallel_for(n, bytes < (1 << 18) ? n : 64, sgemm_task, &j);
    return;
  }
  /* enough columns per thread that packing pays off */
  int64_t min_work = ryc_parallel_threshold() * 8;
  while (grain < n && grain * m * (k ? k : 1) < min_work) grain *= 2;
  if (flops < min_work * 4) grain = n;
  ryc_parallel_for(n, grain, sgemm_task, &j);
}

static void dgemm_task(void *ctx, int64_t lo, int64_t hi) {
  const gemm_job *j = ctx;
  const double *a = j->a, *b = j->b;
  double *c = j->c;
  for (int64_t i = 0; i < j->m; i++) {
    double *cr = c + i * j->n;
    for (int64_t jj = lo; jj < hi; jj++) cr[jj] = 0.0;
    for (int64_t p = 0; p < j->k; p++) {
      double av = j->ta ? a[p * j->m + i] : a[i * j->k + p];
      if (!j->tb) {
        const double *br = b + p * j->n;
        for (int64_t jj = lo; jj < hi; jj++) cr[jj] += av * br[jj];
      } else {
        for (int64_t jj = lo; jj < hi; jj++) cr[jj] += av * b[jj * j->k + p];
      }
    }
  }
}

void ryc_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c) {
  if (m <= 0 || n <= 0) return;
  gemm_job j = {trans_a, trans_b, m, n, k, a, b, c};
  int64_t grain = 16, min_work = ryc_parallel_threshold() * 8;
  while (grain < n && grain * m * (k ? k : 1) < min_work) grain *= 2;
  ryc_parallel_for(n, grain, dgemm_task, &j);
}
