/* qgemm.h - matrix products with ggml-quantized weights (docs/QUANT.md):
 * y[m, n] = x[m, k] . dequantize(w)[n, k]^T, reading the weight blocks
 * directly instead of materializing f32 weights. */
#ifndef RYFT_BACKEND_CPU_QGEMM_H
#define RYFT_BACKEND_CPU_QGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "../../core/internal.h"

/* The plan of a dot_general(x, dequantize(w)) step: x f32[m, k] (row-major),
 * w u8[n, k / block * type_size] of ggml `type`, y f32[m, n]. */
typedef struct ryc_qgemm {
  int64_t m, n, k;
  int type;  /* RY_GGML_* */
  bool act8; /* x may be rounded to Q8 blocks (int8 dot products) */
} ryc_qgemm;

/* Whether the product is computed with int8 dot products for this type
 * (act8 and a type with an integer kernel: Q4_0, Q4_1, Q8_0, Q4_K, Q6_K),
 * else exactly:
 * weights dequantized by the reference code and f32 products. */
bool ryc_qgemm_int8(const ryc_qgemm *q);
/* Run the product; threads split the weight rows. Results do not depend
 * on the thread count. */
ry_status ryc_qgemm_run(const ryc_qgemm *q, const float *x, const uint8_t *w, float *y);
/* The same with the weights as an array: a borrowed one (bytes that never
 * change, such as a GGUF mapping's) is read repacked by the int8 kernels,
 * the layout kept with the array (the same results, faster; docs/QUANT.md). */
ry_status ryc_qgemm_run_array(const ryc_qgemm *q, const float *x, ry_array *w, float *y);
/* Several products of one x run as one job (x quantized once, the threads
 * splitting all the matrices' rows), with each row's result what
 * ryc_qgemm_run_array gives: q[i] x w[i] -> y[i]. ryc_qgemm_groupable says
 * whether b can join a group that a leads (int8 products alike in m, k and
 * type, whole tiles of rows); a group that cannot be one runs its products
 * one by one. */
#define RYC_QGEMM_GROUP_MAX 8 /* products in one group at most */
bool ryc_qgemm_groupable(const ryc_qgemm *a, const ryc_qgemm *b);
ry_status ryc_qgemm_run_group(int count, const ryc_qgemm *const *q, const float *x, ry_array *const *w, float *const *y);
/* The integer kernels in use: "avx512-vnni", "avx2" or "portable". */
const char *ryc_qgemm_impl(void);
/* Tests: the kernels at most at level impl ("portable", "avx2"; RYFT_QGEMM
 * names one too), NULL for the CPU's best again. Every level gives the same
 * bits. */
void ryc_qgemm_force(const char *impl);

#endif
