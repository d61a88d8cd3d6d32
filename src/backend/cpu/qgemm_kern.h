/* qgemm_kern.h - the int8 kernels of the quantized matrix product, shared
 * by qgemm.c (the portable kernels, the choice of kernels, the product)
 * and qgemm_x86.c (the same kernels with AVX2 and with AVX-512 VNNI, and
 * the weights repacked sixteen rows at a time). Internal to those two. */
#ifndef RYFT_BACKEND_CPU_QGEMM_KERN_H
#define RYFT_BACKEND_CPU_QGEMM_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qgemm.h"

#define QK 32

/* an x block rounded to 8 bits: d, its sum of codes (and d times it) */
typedef struct q8blk {
  float d, ds;
  int32_t sum;
  int8_t q[QK];
} q8blk;

/* one weight row (nb blocks) with one x row */
typedef float (*dot_fn)(const uint8_t *w, const q8blk *x, int64_t nb);
/* four rows rs bytes apart: out[r] exactly as dot_fn gives row r */
typedef void (*dot4_fn)(const uint8_t *w, size_t rs, const q8blk *x, int64_t nb, float *out);
/* four rows by four x rows (xs blocks apart): out[c * ldo + r], the same */
typedef void (*dot44_fn)(const uint8_t *w, size_t rs, const q8blk *x, int64_t xs, int64_t nb, float *out, int64_t ldo);

/* a type's kernels at one level: dot always; dot4, dot44 NULL where the
 * level has none. Every level gives every row the same bits: the integer
 * sums are exact, and the f32 steps are the same (qgemm.c's head comment). */
typedef struct qkern {
  dot_fn dot;
  dot4_fn dot4;
  dot44_fn dot44;
} qkern;

/* the kernel levels, each for the CPUs that have the one before */
enum { QK_PORTABLE, QK_AVX2, QK_VNNI };

/* Q4_K's 6-bit scale and minimum of sub-block j (12 packed bytes s) */
static inline void scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86 1

/* qgemm_x86.c: the kernels of `type` at `level` (QK_AVX2 or QK_VNNI);
 * false where the level has none for the type */
bool ryc_qk_x86(int level, int type, qkern *k);
/* x's k elements as Q8 blocks at `level`: the values of qgemm.c's
 * quantize_row */
void ryc_qk_x86_quantize_row(int level, const float *x, int64_t k, q8blk *out);

/* Weights repacked sixteen rows at a time for the AVX2 and AVX-512 VNNI
 * kernels (the layout is described in qgemm_x86.c) */
#define R16 16
typedef struct rows16 {
  int type;
  int64_t n, k, nb;   /* rows repacked (a multiple of 16), elements per row, blocks per row */
  size_t hdr, rec;    /* bytes of a record's scales, of a record */
  uint8_t *p;
} rows16;

/* ry__array_derived's make and free: data the blocks, ctx the ryc_qgemm */
void *ryc_rows16_make(const void *data, void *ctx);
void ryc_rows16_free(void *v);
/* row `row` (below p->n) as the type's plain blocks again, into out */
void ryc_rows16_blocks(const rows16 *p, int64_t row, uint8_t *out);
/* rows 16g..16g+15 against one x row (out[0..15]), or against two x rows
 * xs blocks apart (out[c * ldo + 0..15]), at `level` (QK_AVX2 or QK_VNNI);
 * each row's bits are those its dot gives */
void ryc_rows16_dot(int level, const rows16 *p, int64_t g, const q8blk *x, float *out);
void ryc_rows16_dot2(int level, const rows16 *p, int64_t g, const q8blk *x, int64_t xs, float *out, int64_t ldo);
#endif

#endif
