/* gemm.h - GEMM: the plan of a (batched) matrix product and its kernels. */
#ifndef RYFT_BACKEND_CPU_GEMM_H
#define RYFT_BACKEND_CPU_GEMM_H

#include <stdint.h>
#include "../../core/internal.h"

/* C (m, n) = A (m, k) * B (k, n), row-major; trans flags say A is stored
 * (k, m) and B (n, k). Threads split n and m; results do not depend on the
 * thread count. */
void ryc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c);
/* batch such products, A, B and C advancing by a_bstride, b_bstride and
 * m * n elements (a stride 0 shares the operand) */
void ryc_sgemm_batch(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
                     int64_t a_bstride, const float *b, int64_t b_bstride, float *c);
void ryc_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c);
/* Which implementation ryc_sgemm uses ("ryft-avx512", "portable", ...). */
const char *ryc_gemm_impl(void);
/* The widest x86-64 level built into the library (module/builtin.c: the
 * GEMM and the cold runs' array math) that this CPU and its OS support;
 * NONE on other architectures and on builds without the levels. */
typedef enum { RYC_LEVEL_NONE, RYC_LEVEL_AVX2, RYC_LEVEL_AVX512, RYC_LEVEL_AVX512BF16 } ryc_level;
ryc_level ryc_builtin_level(void);
/* Whether the GEMM runs the tall micro-kernel shape (12 rows, depth blocks
 * of 512): on Intel CPUs with AVX-512 unless RYFT_GEMM_ROWS=6 (=12 forces
 * it on any AVX-512 CPU); it measured faster there (gemm.c). */
bool ryc_gemm_tall(void);
/* The GEMM module's C text (module/sgemm.c) line by line, NULL-terminated,
 * with the tall shape's definitions first where ryc_gemm_tall(): what the
 * JIT compiles, as two halves at once where it has two cores. */
const char *const *ryc_gemm_module_text(void);
/* The same product of bf16 operands (bit patterns) with f32 sums: the bf16
 * GEMM of mixed precision (AMX tiles where the CPU has AMX-BF16 and Linux
 * grants them, else vdpbf16ps where it has AVX512-BF16). An operand
 * flagged a32 / b32 is f32, rounded to bf16 (nearest even) as it is
 * packed: a convert folded into the product. The result is f32 in c, or,
 * with c16 (c ignored), the f32 sums rounded to bf16 in c16, tile by tile
 * as they are finished. Fails only for memory (the sums of a deep product
 * with a bf16 result need an f32 scratch). */
ry_status ryc_bgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const void *a, bool a32, const void *b,
                    bool b32, float *c, uint16_t *c16);
const char *ryc_bgemm_impl(void);


typedef struct ryc_gemm {
  int64_t batch, m, n, k;
  int64_t a_bstride, b_bstride; /* elements between batches (0 = shared) */
  int trans_a, trans_b;         /* A stored (k, m) / B stored (n, k) */
  ry_dtype dt;                  /* the result: f32 or f64; f32 or bf16 when in_dt is bf16 */
  ry_dtype in_dt;               /* the operands: dt, or bf16 (sums in f32) */
  bool a_f32, b_f32;            /* bf16: the operand's buffer is the f32 source of a folded convert */
} ryc_gemm;

#endif
