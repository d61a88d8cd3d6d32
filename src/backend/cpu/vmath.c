/* The array math of the interpreter's nodes in cpu runs (module/vmath.c:
 * cold runs and interpreter steps): the widest level built into
 * the library that the CPU supports, else the loops built for the build's
 * own target, here. */
#include <pthread.h>
#include <stdbool.h>

#include "gemm.h"
#include "vmath.h"

#define RYG(name) ryg_generic_##name
#include "module/vmath.c"

#ifdef RYFT_GEMM_BUILTIN
#define LEVEL_DECL(l)                                                 \
  void ryg_##l##_exp_f32(const float *x, float *y, int64_t n);        \
  void ryg_##l##_erf_f32(const float *x, float *y, int64_t n);
LEVEL_DECL(avx512bf16)
LEVEL_DECL(avx512)
LEVEL_DECL(avx2)
#define LEVEL_MATH(l) {ryg_##l##_exp_f32, ryg_##l##_erf_f32}
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const ryi_math *g_math;

static void choose(void) {
  static const ryi_math generic = {ryg_generic_exp_f32, ryg_generic_erf_f32};
  g_math = &generic;
#ifdef RYFT_GEMM_BUILTIN
  static const ryi_math bf16 = LEVEL_MATH(avx512bf16), w512 = LEVEL_MATH(avx512), w256 = LEVEL_MATH(avx2);
  switch (ryc_builtin_level()) {
  case RYC_LEVEL_AVX512BF16: g_math = &bf16; break;
  case RYC_LEVEL_AVX512: g_math = &w512; break;
  case RYC_LEVEL_AVX2: g_math = &w256; break;
  default: break;
  }
#endif
}

const ryi_math *ryc_vmath(void) {
  pthread_once(&g_once, choose);
  return g_math;
}
