/* The sgemm module built into the library (module/builtin.c, one x86-64
 * level per object) against the same module compiled by the JIT for the
 * host: f32 products, matrix-vector products and bf16 products give the same
 * bits, every transpose combination and shapes crossing the packing blocks,
 * so which of the two a process uses (RYFT_GEMM=jit) changes no result. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/jit.h"
#include "cpu_testlib.h"

typedef void (*sgemm_fn)(int, int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t, int64_t,
                         int64_t, int64_t, float *);
typedef void (*sgemv_fn)(int, int64_t, int64_t, int64_t, const float *, const float *, float *, int64_t, int64_t);
typedef void (*bgemm_fn)(int, int, int64_t, int64_t, int64_t, const void *, int, const void *, int, float *, uint16_t *,
                         int64_t, int64_t, int64_t, int64_t, float *);

static float val(int64_t i, int salt) { return (float)((i * (7 + salt) + salt) % 23) * 0.125f - 1.3f; }

/* The GEMM module as the JIT compiles it for this host (-march=native), or
 * NULL: skipped without a compiler, failed when it does not build. */
static ryc_module *jit_gemm_module(void) {
  if (!ryc_have_compiler()) {
    rt_skip("cc", "no C compiler for the JIT's module");
    return NULL;
  }
  size_t len = 0;
  char *src = gemm_module_source(&len);
  ryc_module *m = NULL;
  CHECK_OK(ryc_module_get(src, len, NULL, &m));
  free(src);
  return m;
}

TEST(cpu_builtin_gemm_matches_the_jit_module) {
  const char *impl = ryc_gemm_impl();
  if (!strstr(impl, "built in")) {
    rt_skip("builtin gemm", "this build or CPU has no built-in level (ryft gemm: %s)", impl);
    return;
  }
  ryc_module *m = jit_gemm_module();
  if (!m) return;
  sgemm_fn sg;
  sgemv_fn sv;
  bgemm_fn bg;
  int64_t (*ws)(void);
  void *p[4] = {ryc_module_sym(m, "ryg_sgemm"), ryc_module_sym(m, "ryg_sgemv"), ryc_module_sym(m, "ryg_bgemm"),
                ryc_module_sym(m, "ryg_ws_floats")};
  CHECK(p[0] && p[1] && p[2] && p[3]);
  if (!p[0] || !p[1] || !p[2] || !p[3]) {
    ryc_module_release(m);
    return;
  }
  memcpy(&sg, &p[0], sizeof sg);
  memcpy(&sv, &p[1], sizeof sv);
  memcpy(&bg, &p[2], sizeof bg);
  memcpy(&ws, &p[3], sizeof ws);
  float *w = aligned_alloc(64, (size_t)(ws() + 16) * sizeof(float));
  CHECK(w != NULL);
  if (!w) {
    ryc_module_release(m);
    return;
  }
  static const int64_t shapes[][3] = {{1, 1, 1}, {3, 50, 77}, {7, 33, 5}, {13, 65, 17}, {100, 70, 1537},
                                      {97, 3105, 9}, {385, 33, 131}, {203, 100, 777}};
  int n_cases = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *a = malloc(sizeof(float) * (size_t)(M * K)), *b = malloc(sizeof(float) * (size_t)(K * N));
    float *c1 = malloc(sizeof(float) * (size_t)(M * N)), *c2 = malloc(sizeof(float) * (size_t)(M * N));
    uint16_t *a16 = malloc(2 * (size_t)(M * K)), *b16 = malloc(2 * (size_t)(K * N));
    for (int64_t i = 0; i < M * K; i++) a[i] = val(i, 1), a16[i] = ry__f32_to_bf16(val(i, 3));
    for (int64_t i = 0; i < K * N; i++) b[i] = val(i, 2), b16[i] = ry__f32_to_bf16(val(i, 4));
    for (int t = 0; t < 4; t++) {
      int ta = t & 1, tb = t >> 1;
      if (M > 4 || ta) { /* (at most 4 rows of A in place: the matrix-vector path, below) */
        ryc_sgemm(ta, tb, M, N, K, a, b, c1);
        sg(ta, tb, M, N, K, a, b, c2, 0, M, 0, N, w + 16);
        CHECK_MSG(!memcmp(c1, c2, sizeof(float) * (size_t)(M * N)), "sgemm %ldx%ldx%ld ta=%d tb=%d differs",
                  (long)M, (long)N, (long)K, ta, tb);
        n_cases++;
      }
      /* bf16 operands, one of them f32 rounded as it is packed */
      CHECK_OK(ryc_bgemm(ta, tb, M, N, K, a16, false, b, true, c1, NULL));
      bg(ta, tb, M, N, K, a16, 0, b, 1, c2, NULL, 0, M, 0, N, w + 16);
      CHECK_MSG(!memcmp(c1, c2, sizeof(float) * (size_t)(M * N)), "bgemm %ldx%ldx%ld ta=%d tb=%d differs",
                (long)M, (long)N, (long)K, ta, tb);
      n_cases++;
    }
    if (M <= 4) { /* the matrix-vector path, both layouts of B */
      for (int tb = 0; tb < 2; tb++) {
        ryc_sgemm(0, tb, M, N, K, a, b, c1);
        sv(tb, M, N, K, a, b, c2, 0, N);
        CHECK_MSG(!memcmp(c1, c2, sizeof(float) * (size_t)(M * N)), "sgemv %ldx%ldx%ld tb=%d differs", (long)M,
                  (long)N, (long)K, tb);
        n_cases++;
      }
    }
    free(a);
    free(b);
    free(c1);
    free(c2);
    free(a16);
    free(b16);
  }
  printf("  %s against the JIT's module: %d products bitwise equal\n", impl, n_cases);
  free(w);
  ryc_module_release(m);
}

/* The JIT's GEMV (compiled -march=native, so with the host's tuning) gives a
 * column the same bits whichever of its paths computes it (blocks of four
 * vectors, single vectors, the scalar tail): the threads split the columns
 * anywhere. gcc tuned for some cores (znver3) leaves some multiply-adds
 * unfused when they are left to contraction; the module writes them out. */
TEST(cpu_gemv_bits_do_not_depend_on_the_column_split) {
  ryc_module *m = jit_gemm_module();
  if (!m) return;
  void *sym = ryc_module_sym(m, "ryg_sgemv");
  CHECK(sym != NULL);
  if (!sym) {
    ryc_module_release(m);
    return;
  }
  sgemv_fn sv;
  memcpy(&sv, &sym, sizeof sv);
  static const int64_t shapes[][3] = {{1, 37, 9}, {3, 50, 77}, {4, 100, 300}, {2, 131, 1000}};
  int n_cases = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *a = malloc(sizeof(float) * (size_t)(M * K)), *b = malloc(sizeof(float) * (size_t)(K * N));
    float *c1 = malloc(sizeof(float) * (size_t)(M * N)), *c2 = malloc(sizeof(float) * (size_t)(M * N));
    /* values whose products and sums round: fractions with odd denominators */
    for (int64_t i = 0; i < M * K; i++) a[i] = (float)((i * 7 + 3) % 29) / 9.0f - 1.3f;
    for (int64_t i = 0; i < K * N; i++) b[i] = (float)((i * 5 + 1) % 31) / 11.0f - 0.9f;
    for (int tb = 0; tb < 2; tb++) {
      sv(tb, M, N, K, a, b, c1, 0, N);
      for (int64_t cut = 1; cut < N; cut += 3) { /* every offset modulo the vector widths */
        sv(tb, M, N, K, a, b, c2, 0, cut);
        sv(tb, M, N, K, a, b, c2, cut, N);
        CHECK_MSG(!memcmp(c1, c2, sizeof(float) * (size_t)(M * N)), "sgemv %ldx%ldx%ld tb=%d split at %ld differs",
                  (long)M, (long)N, (long)K, tb, (long)cut);
        n_cases++;
      }
    }
    free(a);
    free(b);
    free(c1);
    free(c2);
  }
  printf("  %d splits bitwise equal to the whole\n", n_cases);
  ryc_module_release(m);
}
