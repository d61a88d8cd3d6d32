/* plan.h - the plan of a program: which values are materialized, and the
 * steps (kernels, GEMMs, convolutions, interpreter nodes) in order, with the
 * generated C module. Built by the fusion stages (fuse.h). */
#ifndef RYFT_BACKEND_CPU_PLAN_H
#define RYFT_BACKEND_CPU_PLAN_H

#include <stdbool.h>
#include "conv.h"
#include "gemm.h"
#include "qgemm.h"

typedef enum ryc_step_kind { RYC_STEP_KERNEL, RYC_STEP_GEMM, RYC_STEP_INTERP, RYC_STEP_CONV, RYC_STEP_QGEMM } ryc_step_kind;

#define RYC_MAX_INPLACE 4
#define RYC_MAX_EW_OUT 4 /* outputs of one elementwise kernel: its root and up to 3 values it absorbed */
#define RYC_MAX_IPM 8    /* slots the outputs of such a kernel may take over */

typedef struct ryc_step {
  ryc_step_kind kind;
  int32_t node;         /* the node of the optimized graph (root for kernels) */
  int kernel;           /* KERNEL: index of the generated function */
  int n_bufs;           /* KERNEL: buffers passed, outputs first; QGEMM: y, x, blocks; GEMM: y, a, b */
  int32_t *bufs;        /* value ids (owned) */
  int n_out;            /* KERNEL: how many of bufs are outputs */
  int64_t outer;        /* KERNEL: trip count of the parallel loop */
  int64_t work;         /* KERNEL: elements touched (to decide on threads) */
  ryc_gemm gemm;        /* GEMM */
  ryc_qgemm qgemm;      /* QGEMM: dot_general(x, dequantize(blocks)) */
  ryc_conv *conv;       /* CONV (owned) */
  int32_t *release;     /* values whose last use is this step (owned) */
  int n_release;
  /* KERNEL: variants ryk_<kernel>_ip<slot> that write the output over
   * bufs[slot] (read only at the output's own elements, dying here); used
   * when that buffer's last reference is the run's (a donated input or a
   * temporary) */
  int n_inplace;
  int inplace_slot[RYC_MAX_INPLACE];
  /* KERNEL with several outputs (an elementwise root and the values it
   * absorbed): ryk_<kernel>_ipm, the loop with no restrict pointers, lets
   * each output take over one of these input slots (each read only at the
   * output's own element, dying here, same dtype and size) */
  int n_ipm;
  int ipm_slot[RYC_MAX_IPM];
} ryc_step;

typedef struct ryc_plan {
  const ry_graph *g;    /* the optimized graph (not owned here) */
  bool *mat;            /* [n_values] materialized values */
  ryc_step *steps;
  int n_steps, steps_cap;
  int n_kernels;
  char *source;         /* the generated C module (owned, NUL-terminated) */
  size_t source_len, source_cap;
  char *report;         /* the fusion report (owned, NUL-terminated) */
  size_t report_len, report_cap;
} ryc_plan;

ry_status ryc_plan_build(const ry_graph *g, ryc_plan *p);
void ryc_plan_free(ryc_plan *p);

#endif
