/* conv.h - convolution as im2col + GEMM per group. */
#ifndef RYFT_BACKEND_CPU_CONV_H
#define RYFT_BACKEND_CPU_CONV_H

#include <stdbool.h>
#include "../../ir/graph.h"
#include "../../core/internal.h"

/* A convolution as im2col + GEMM per group (conv.c). An axis of the patch
 * matrix: batch / input feature / output spatial / kernel spatial. */
typedef struct ryc_conv_axis {
  int64_t size;
  int kind;       /* 0 batch, 1 feature, 2 output spatial, 3 kernel spatial */
  int sp;         /* spatial dim (kinds 2, 3) */
  int64_t mul;    /* spatial kinds: steps in the dilated input per unit */
  int64_t in_st;  /* batch / feature: input stride */
  int64_t w_st;   /* k axes: kernel stride */
  int64_t o_st;   /* m axes: output stride */
} ryc_conv_axis;

#define RYC_CONV_BM_MAX 1024 /* rows of a patch block at most */

typedef struct ryc_conv {
  ry_dtype dt;                        /* f32 or f64 */
  int nsp;                            /* spatial dims */
  int64_t groups, M, K, Og;           /* per group C (M, Og) = P (M, K) B (K, Og) */
  int64_t bm;                         /* rows of M a block */
  int64_t kc, ksplit;                 /* K in ksplit chunks of kc, summed in order */
  int64_t run;                        /* patch elements copied as one contiguous run */
  int64_t in_goff, w_goff, o_goff;    /* element offsets between groups */
  int64_t w_ost, o_fst;               /* kernel / output stride of the output feature */
  int kt;                             /* patches stored (K, M) */
  int b_mode;                         /* 0 packed, 1 kernel is (K, Og), 2 kernel is (Og, K) */
  int direct;                         /* C rows are the output's rows */
  int swap;                           /* compute C^T = B^T P^T (few output features) */
  int n_m, n_k;
  ryc_conv_axis m[RY_MAX_RANK], k[RY_MAX_RANK]; /* outer first */
  int64_t lo[RY_MAX_RANK], dil[RY_MAX_RANK], ld[RY_MAX_RANK], sp_st[RY_MAX_RANK]; /* per spatial dim */
} ryc_conv;

/* Plan convolution node n; false (with *why) when the GEMM path does not
 * take it. */
bool ryc_conv_plan(const ry_graph *g, const ry_node *n, ryc_conv *c, const char **why);
/* out = conv(x, w): threads over the pool, results independent of their count */
ry_status ryc_conv_run(const ryc_conv *c, const void *x, const void *w, void *out);

/* One line describing a convolution plan (the fusion report). */
void ryc_conv_describe(const ryc_conv *c, ry__buf *b);

#endif
