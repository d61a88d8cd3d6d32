/* GEMM for the cpu backend.
 *
 * sgemm: ryft's own packed GEMM (BLIS-style loops: NC columns, KC depth, MC
 * rows; an MR x NR register-blocked micro-kernel written with GCC vector
 * extensions) compiled for the host by the JIT (-march=native picks AVX-512,
 * AVX2 or SSE) the first time a program needs it, and cached like any
 * module. When a thread's columns are at most four panels wide and A is not
 * transposed, A is read in place instead of packed (ukr_d; ukr16_d for a
 * bf16 A stored as bf16, whole pairs of k). Packing
 * workspaces stay on a free list between calls. Threads split the columns in
 * NR-aligned ranges, or the rows when A is the larger operand (run_split);
 * every element of C is accumulated over k in the same order whatever the
 * split, so results do not depend on the thread count. At most GEMV_MAX_M
 * rows of A take a matrix-vector path (ryg_sgemv) that streams B once
 * without packing. Without a compiler, or for f64, a portable blocked loop
 * in this file runs instead. bench/gemm_compare.c measures it
 * against OpenBLAS, BLIS, oneDNN and libxsmm (bench/RESULTS.md). */
#include <pthread.h>
#include <stdlib.h>

#include "../../core/internal.h"
#include "gemm.h"
#include "jit.h"
#include "pool.h"

#include "gemm_module.inc" /* ryc_gemm_module_lines: module/sgemm.c, line by line */

typedef void (*native_sgemm)(int, int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t,
                             int64_t, int64_t, int64_t, float *);

typedef void (*native_sgemv)(int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t, int64_t);

typedef void (*native_bgemm)(int, int, int64_t, int64_t, int64_t, const void *, int, const void *, int, float *,
                             uint16_t *, int64_t, int64_t, int64_t, int64_t, float *);

/* at most this many rows of A (not transposed): the matrix-vector path */
#define GEMV_MAX_M 4

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static native_sgemm g_native;
static native_sgemv g_gemv;
static native_bgemm g_bgemm;
static int g_bgemm_dp; /* the bf16 micro-kernel runs on vdpbf16ps (1) or AMX tiles (2) */
static int g_nr = 16, g_mr = 6;
static int64_t g_ws_floats; /* packing workspace of one native call */
static int64_t g_bgemm_k1;  /* a bf16 product this deep rounds its result from the registers */
static const char *g_impl = "portable";
static ryc_module *g_mod; /* the JIT's module, held for the process */

/* what a build of module/sgemm.c exports */
typedef struct gemm_fns {
  native_sgemm sgemm;
  native_sgemv sgemv;
  native_bgemm bgemm;
  int (*nr)(void), (*mr)(void), (*bf16_native)(void);
  int64_t (*ws_floats)(void), (*bgemm_k1)(void);
} gemm_fns;

static void use_fns(const gemm_fns *f, const char *impl) {
  g_nr = f->nr();
  g_mr = f->mr();
  g_ws_floats = f->ws_floats();
  g_bgemm_k1 = f->bgemm_k1();
  g_native = f->sgemm;
  g_gemv = f->sgemv;
  g_bgemm = f->bgemm;
  g_bgemm_dp = f->bf16_native();
  g_impl = impl;
}

#ifdef RYFT_GEMM_BUILTIN
/* module/builtin.c: the module built into the library per x86-64 level */
#define LEVEL_DECL(l)                                                                                                  \
  void ryg_##l##_sgemm(int, int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t, int64_t,   \
                       int64_t, int64_t, float *);                                                                     \
  void ryg_##l##_sgemv(int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t, int64_t);     \
  void ryg_##l##_bgemm(int, int, int64_t, int64_t, int64_t, const void *, int, const void *, int, float *, uint16_t *, \
                       int64_t, int64_t, int64_t, int64_t, float *);                                                  \
  int ryg_##l##_nr(void);                                                                                              \
  int ryg_##l##_mr(void);                                                                                              \
  int ryg_##l##_bf16_native(void);                                                                                     \
  int64_t ryg_##l##_ws_floats(void);                                                                                   \
  int64_t ryg_##l##_bgemm_k1(void);
#define LEVEL_FNS(l)                                                                                                   \
  {ryg_##l##_sgemm, ryg_##l##_sgemv, ryg_##l##_bgemm, ryg_##l##_nr, ryg_##l##_mr, ryg_##l##_bf16_native,              \
   ryg_##l##_ws_floats, ryg_##l##_bgemm_k1}
LEVEL_DECL(avx512bf16)
LEVEL_DECL(avx512bf16t)
LEVEL_DECL(avx512)
LEVEL_DECL(avx512t)
LEVEL_DECL(avx2)

ryc_level ryc_builtin_level(void) {
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  return avx512 && __builtin_cpu_supports("avx512bf16") ? RYC_LEVEL_AVX512BF16
         : avx512                                        ? RYC_LEVEL_AVX512
         : avx2                                          ? RYC_LEVEL_AVX2
                                                         : RYC_LEVEL_NONE;
}

static bool load_builtin(void) {
  static const gemm_fns k_bf16 = LEVEL_FNS(avx512bf16), k_bf16t = LEVEL_FNS(avx512bf16t), k_512 = LEVEL_FNS(avx512),
                        k_512t = LEVEL_FNS(avx512t), k_2 = LEVEL_FNS(avx2);
  bool tall = ryc_gemm_tall();
  switch (ryc_builtin_level()) {
  case RYC_LEVEL_AVX512BF16:
    if (tall) use_fns(&k_bf16t, "ryft packed (built in, avx512bf16, 12 rows)");
    else use_fns(&k_bf16, "ryft packed (built in, avx512bf16)");
    break;
  case RYC_LEVEL_AVX512:
    if (tall) use_fns(&k_512t, "ryft packed (built in, avx512, 12 rows)");
    else use_fns(&k_512, "ryft packed (built in, avx512)");
    break;
  case RYC_LEVEL_AVX2: use_fns(&k_2, "ryft packed (built in, avx2)"); break;
  default: break;
  }
  return g_native != NULL;
}
#else
ryc_level ryc_builtin_level(void) { return RYC_LEVEL_NONE; }
static bool load_builtin(void) { return false; }
#endif

/* The micro-kernel shape: the tall one (12 rows, depth blocks of 512,
 * the k loop unrolled twice) measured 15% faster than the default (6 rows,
 * 384) on an Intel Xeon with AVX-512 and is what Intel CPUs with AVX-512
 * get; the default was measured best on AMD Zen 4/5 (bench/RESULTS.md).
 * RYFT_GEMM_ROWS=12 or =6 chooses. Only AVX-512 has the registers for it. */
bool ryc_gemm_tall(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return false;
  const char *env = getenv("RYFT_GEMM_ROWS");
  if (env && strcmp(env, "12") == 0) return true;
  if (env && strcmp(env, "6") == 0) return false;
  return __builtin_cpu_is("intel");
#else
  return false;
#endif
}

/* module/sgemm.c as the JIT compiles it: the tall shape's definitions
   first where ryc_gemm_tall() */
static const char *g_text[sizeof ryc_gemm_module_lines / sizeof *ryc_gemm_module_lines + 1];
static pthread_once_t g_text_once = PTHREAD_ONCE_INIT;
static void make_text(void) {
  int n = 0;
  if (ryc_gemm_tall()) g_text[n++] = "#define MR 12\n#define KC 512\n#define UNROLL_K 2\n";
  for (int i = 0; ryc_gemm_module_lines[i]; i++) g_text[n++] = ryc_gemm_module_lines[i];
  g_text[n] = NULL;
}

const char *const *ryc_gemm_module_text(void) {
  pthread_once(&g_text_once, make_text);
  return g_text;
}

/* module/sgemm.c compiled by the JIT for the host (-march=native) */
static void load_jit(void) {
  if (!ryc_have_compiler()) return;
  ryc_module *m;
  ry__buf src = {0};
  const char *const *lines = ryc_gemm_module_text();
  for (int i = 0; lines[i]; i++) ry__buf_printf(&src, "%s", lines[i]);
  ry_status s = src.oom ? ry__oom() : ryc_module_get(src.s, src.n, NULL, &m);
  ry__buf_free(&src);
  if (s) {
    ry_status_free(s);
    return;
  }
  static const char *const names[] = {"ryg_sgemm", "ryg_sgemv", "ryg_bgemm", "ryg_nr", "ryg_mr", "ryg_bf16_native",
                                      "ryg_ws_floats", "ryg_bgemm_k1"};
  void *p[8];
  bool all = true;
  for (int i = 0; i < 8; i++) all &= (p[i] = ryc_module_sym(m, names[i])) != NULL;
  if (!all) {
    ryc_module_release(m);
    return;
  }
  gemm_fns f;
  memcpy(&f.sgemm, &p[0], sizeof f.sgemm);
  memcpy(&f.sgemv, &p[1], sizeof f.sgemv);
  memcpy(&f.bgemm, &p[2], sizeof f.bgemm);
  memcpy(&f.nr, &p[3], sizeof f.nr);
  memcpy(&f.mr, &p[4], sizeof f.mr);
  memcpy(&f.bf16_native, &p[5], sizeof f.bf16_native);
  memcpy(&f.ws_floats, &p[6], sizeof f.ws_floats);
  memcpy(&f.bgemm_k1, &p[7], sizeof f.bgemm_k1);
  g_mod = m;
  use_fns(&f, ryc_gemm_tall() ? "ryft packed (JIT, -march=native, 12 rows)" : "ryft packed (JIT, -march=native)");
}

/* RYFT_GEMM=portable: the loops below; =jit: the JIT's module even where a
   built-in level would do */
static void load_native(void) {
  const char *env = getenv("RYFT_GEMM");
  if (env && strcmp(env, "portable") == 0) return;
  if ((env && strcmp(env, "jit") == 0) || !load_builtin()) load_jit();
}

const char *ryc_gemm_impl(void) {
  pthread_once(&g_once, load_native);
  return g_impl;
}

const char *ryc_bgemm_impl(void) {
  pthread_once(&g_once, load_native);
  return !g_bgemm        ? "portable"
         : g_bgemm_dp == 2 ? "ryft packed (amx-bf16 tiles)"
         : g_bgemm_dp == 1 ? "ryft packed (avx512-bf16)"
                           : "ryft packed (f32 arithmetic)";
}

/* ---- portable fallback ---- */

#define PKC 256
static void portable_block(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c,
                           int64_t i_lo, int64_t i_hi, int64_t j_lo, int64_t j_hi) {
  for (int64_t i = i_lo; i < i_hi; i++) {
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

static float bf(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* element i of a bf16 GEMM operand: bf16, or f32 rounded to bf16 */
static float bf_at(const void *p, bool f32, int64_t i) {
  return bf(f32 ? ry__f32_to_bf16(((const float *)p)[i]) : ((const uint16_t *)p)[i]);
}

/* bf16 operands: the pair order of the packed kernel (odd product, then
   even); a bf16 result (c16) is rounded as each sum is done, c unused */
static void portable_bblock(int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a, bool a32, const void *b,
                            bool b32, float *c, uint16_t *c16, int64_t i_lo, int64_t i_hi, int64_t j_lo, int64_t j_hi) {
  for (int64_t i = i_lo; i < i_hi; i++)
    for (int64_t j = j_lo; j < j_hi; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; p += 2) {
        float a0 = bf_at(a, a32, ta ? p * m + i : i * k + p), b0 = bf_at(b, b32, tb ? j * k + p : p * n + j);
        if (p + 1 < k)
          acc += bf_at(a, a32, ta ? (p + 1) * m + i : i * k + p + 1) * bf_at(b, b32, tb ? j * k + p + 1 : (p + 1) * n + j);
        acc += a0 * b0;
      }
      if (c16) c16[i * n + j] = ry__f32_to_bf16(acc);
      else c[i * n + j] = acc;
    }
}

typedef struct {
  int ta, tb;
  int64_t m, n, k;
  const void *a, *b;
  void *c;
  uint16_t *c16; /* bf16 GEMM with a bf16 result: c is its f32 scratch (NULL for one depth block) */
  bool a32, b32; /* bf16 GEMM: the operand is f32, rounded as it is packed */
  bool rows;     /* the threads split C's rows, not its columns */
} gemm_job;

/* The block of C a task's range [lo, hi) names: columns, or rows. */
static void task_block(const gemm_job *j, int64_t lo, int64_t hi, int64_t *i_lo, int64_t *i_hi, int64_t *j_lo,
                       int64_t *j_hi) {
  *i_lo = j->rows ? lo : 0;
  *i_hi = j->rows ? hi : j->m;
  *j_lo = j->rows ? 0 : lo;
  *j_hi = j->rows ? j->n : hi;
}

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
  int64_t i_lo, i_hi, j_lo, j_hi;
  task_block(j, lo, hi, &i_lo, &i_hi, &j_lo, &j_hi);
  workspace *w = g_native ? ws_take() : NULL;
  if (w) {
    /* the list link lives in the first 64 bytes; the packed panels after it */
    g_native(j->ta, j->tb, j->m, j->n, j->k, j->a, j->b, j->c, i_lo, i_hi, j_lo, j_hi, (float *)w + 16);
    ws_give(w);
  } else {
    portable_block(j->ta, j->tb, j->m, j->n, j->k, j->a, j->b, j->c, i_lo, i_hi, j_lo, j_hi);
  }
}

/* Split a packed product over the threads. Every thread packs the part of A
 * its rows need and the part of B its columns need, so splitting the columns
 * has each thread pack all of A again, and splitting the rows all of B.
 * Columns (NR-aligned) unless A is the larger operand by at least 2x (C tall
 * and narrow: a weight gradient, a product into few outputs), then rows
 * (MR-aligned); each range at least enough work that packing pays off, and
 * small products in one piece. */
static void run_split(gemm_job *j, ryc_task_fn fn) {
  int64_t k = j->k ? j->k : 1, min_work = ryc_parallel_threshold() * 8;
  j->rows = j->m >= 2 * j->n;
  int64_t len = j->rows ? j->m : j->n, other = j->rows ? j->n : j->m, grain = j->rows ? g_mr : g_nr;
  while (grain < len && grain * other * k < min_work) grain *= 2;
  if (j->m * j->n * k < min_work * 4) grain = len;
  ryc_parallel_for(len, grain, fn, j);
}

/* The matrix-vector products of a batch (attention while decoding: one per
 * key/value head, over the cache window) as one job of (product, column)
 * units, so both threads stream B even when each product alone is too small
 * to split. Any split gives the same bits (ryg_sgemv). */
typedef struct {
  int tb;
  int64_t m, n, k, a_bstride, b_bstride;
  const float *a, *b;
  float *c;
} gemv_job;

/* below this many bytes of B in all, one thread */
#define GEMV_SPLIT_BYTES (16 << 10)
#define GEMV_GRAIN 16 /* columns */

static void gemv_task(void *ctx, int64_t lo, int64_t hi) {
  const gemv_job *j = ctx;
  while (lo < hi) {
    int64_t i = lo / j->n, c0 = lo - i * j->n, c1 = hi - i * j->n < j->n ? hi - i * j->n : j->n;
    g_gemv(j->tb, j->m, j->n, j->k, j->a + i * j->a_bstride, j->b + i * j->b_bstride, j->c + i * j->m * j->n, c0, c1);
    lo = i * j->n + c1;
  }
}

void ryc_sgemm_batch(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                     int64_t a_bstride, const float *b, int64_t b_bstride, float *c) {
  pthread_once(&g_once, load_native);
  if (m <= 0 || n <= 0 || batch <= 0) return;
  if (g_gemv && m <= GEMV_MAX_M && !trans_a && k > 0) { /* no packing */
    gemv_job j = {trans_b, m, n, k, a_bstride, b_bstride, a, b, c};
    int64_t units = batch * n, bytes = units * k * (int64_t)sizeof(float);
    ryc_parallel_for(units, bytes < GEMV_SPLIT_BYTES ? units : GEMV_GRAIN, gemv_task, &j);
    return;
  }
  for (int64_t i = 0; i < batch; i++) {
    gemm_job j = {trans_a, trans_b, m, n, k, a + i * a_bstride, b + i * b_bstride, c + i * m * n, NULL, false, false, false};
    run_split(&j, sgemm_task);
  }
}

void ryc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c) {
  ryc_sgemm_batch(trans_a, trans_b, 1, m, n, k, a, 0, b, 0, c);
}

static void bgemm_task(void *ctx, int64_t lo, int64_t hi) {
  const gemm_job *j = ctx;
  int64_t i_lo, i_hi, j_lo, j_hi;
  task_block(j, lo, hi, &i_lo, &i_hi, &j_lo, &j_hi);
  workspace *w = g_bgemm ? ws_take() : NULL;
  if (w) { /* the module rounds a bf16 result itself, tile by tile */
    g_bgemm(j->ta, j->tb, j->m, j->n, j->k, j->a, j->a32, j->b, j->b32, j->c, j->c16, i_lo, i_hi, j_lo, j_hi,
            (float *)w + 16);
    ws_give(w);
    return;
  }
  /* no module, or no workspace: c may be NULL (no scratch for one depth block) */
  portable_bblock(j->ta, j->tb, j->m, j->n, j->k, j->a, j->a32, j->b, j->b32, j->c, j->c16, i_lo, i_hi, j_lo, j_hi);
}


ry_status ryc_bgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const void *a, bool a32, const void *b,
                    bool b32, float *c, uint16_t *c16) {
  pthread_once(&g_once, load_native);
  if (m <= 0 || n <= 0) return NULL;
  /* f32 sums of a bf16 result: a scratch C only for the module's products
     deeper than one depth block (it rounds a one-block product from its
     registers; the portable loop rounds each sum as it finishes) */
  float *tmp = NULL;
  size_t bytes = (size_t)m * (size_t)n * sizeof(float);
  if (c16 && g_bgemm && k > g_bgemm_k1 && !(tmp = ry__data_alloc(bytes))) return ry__oom();
  gemm_job j = {trans_a, trans_b, m, n, k, a, b, c16 ? tmp : c, c16, a32, b32, false};
  run_split(&j, bgemm_task);
  ry__data_free(tmp, bytes);
  return NULL;
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
  gemm_job j = {trans_a, trans_b, m, n, k, a, b, c, NULL, false, false, false};
  int64_t grain = 16, min_work = ryc_parallel_threshold() * 8;
  while (grain < n && grain * m * (k ? k : 1) < min_work) grain *= 2;
  ryc_parallel_for(n, grain, dgemm_task, &j);
}
