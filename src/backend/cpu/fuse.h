/* fuse.h - the fusion pipeline of the cpu backend, shared by its stages:
 *   plan.c    which values are materialized (classification, cost model,
 *             recomputation, row-kernel groups);
 *   expr.c    the C expression of a value at an index map (elementwise
 *             rules, views, pad, concatenate);
 *   loops.c   loop nests: elementwise and reduction kernels;
 *   rowkern.c row kernels (softmax, norms and their gradients);
 *   fuse.c    the plan: steps in order, the module source, the report.
 * Include order, no cycles: cpu.h <- fuse.h <- {plan,expr,loops,rowkern,fuse}.c.
 * Internal to src/backend/cpu; names carry the ryf_ prefix. */
#ifndef RYFT_BACKEND_CPU_FUSE_H
#define RYFT_BACKEND_CPU_FUSE_H

#include <stdbool.h>

#include "plan.h"

/* ---- planning (plan.c) ---- */

/* V_QGEMM: a dot_general by dequantized weights, computed from the blocks;
 * V_QFOLD: a dequantize read only by such products (never materialized)
 * V_BFOLD: an f32 -> bf16 convert read only by bf16 GEMMs, which round its
 *          f32 operand as they pack it (never materialized) */
typedef enum { V_NONE, V_EW, V_REDUCE, V_GEMM, V_INTERP, V_PARAM, V_CONV, V_QGEMM, V_QFOLD, V_BFOLD } vclass;

typedef struct {
  const ry_graph *g;
  bool *mat;
  const char **why;     /* reason a fusible value is materialized */
  const char **why_op;  /* the consumer's op name, when the reason names one */
  uint8_t *cls;         /* vclass of the defining node */
  int32_t *nusers;
  int32_t *cost;
  bool *need_flat;
  bool *force;          /* [n_nodes] nodes that must run in the interpreter */
  struct rowplan *rows; /* row kernels (see "row kernels" below) */
} planner;


/* ---- kernel code generation ---- */

/* Index of value dim d: (mul[d] * j[src[d]] + add[d]) / div[d] (div 0 or 1:
 * no division). A division comes from interior padding; it is exact
 * wherever the value is used, elsewhere the index is garbage and only a
 * clamped (memory-safe) load sees it. */
typedef struct {
  int rank;                    /* of the value */
  int8_t src[RY_MAX_RANK];     /* loop dim, -1 = constant */
  int64_t mul[RY_MAX_RANK], add[RY_MAX_RANK];
  int64_t div[RY_MAX_RANK];
} vmap;

static inline int64_t vdiv(const vmap *m, int d) { return m->div[d] > 1 ? m->div[d] : 1; }

/* a term stride * ((mul * j[src] + add) / div) of an access */
typedef struct {
  int8_t src;
  int64_t mul, add, div, stride;
} nlterm;

typedef struct {
  int buf;                     /* buffer slot, -1 for an iota index */
  ry_dtype dt;                 /* element type of the buffer / iota result */
  int64_t coef[RY_MAX_RANK];   /* per original loop dim */
  int64_t base;
  int n_nl;                    /* terms with a division (interior padding) */
  nlterm nl[RY_MAX_RANK];
  int64_t clamp;               /* > 0: offsets clamped to [0, clamp) (a load under a pad / concatenate guard) */
} access;

typedef struct {
  int32_t v;
  vmap m;
  int temp;
} memo;

#define MAX_ACC 256
#define MAX_MEMO 1024

typedef struct {
  planner *p;
  const ry_graph *g;
  int32_t root;
  int L;                       /* loop rank (original) */
  int64_t loop[RY_MAX_RANK];
  ry__buf body;                /* temps */
  int n_temps;
  access acc[MAX_ACC];
  int n_acc;
  int32_t bufs[MAX_ACC];       /* value ids, slot 0 = output */
  int n_bufs;
  memo memos[MAX_MEMO];
  int n_memo;
  bool fail;
  const char *fail_why;
  int guard;                   /* > 0 while emitting operands of pad / concatenate */
  bool nl_dim[RY_MAX_RANK];    /* loop dims some access divides */
  bool keep0;                  /* loop dim 0 stays a loop of its own (concatenate pieces) */
  /* in-place variants of an elementwise kernel (ryf_gen_ew): the slot each one
   * writes over and its text, a function ryk_<kernel>_ip<slot> */
  int n_ip;
  int ip_slot[RYC_MAX_INPLACE];
  ry__buf ip_src[RYC_MAX_INPLACE];
  /* a plain elementwise kernel's further outputs (ryf_gen_ew): values of the
   * root's shape that the root reads at its own elements only, computed in
   * its loop and stored too, in slots 1..n_extra (plan_try decides) */
  int n_extra;
  int32_t extra[RYC_MAX_EW_OUT - 1];
  /* with further outputs: the input slots an output may be written over (all
   * their reads at the output's own element, the same dtype and size), and
   * the text of ryk_<kernel>_ipm, which lets any output alias any of them */
  int n_ipm;
  int ipm_slot[RYC_MAX_IPM];
  ry__buf ipm_src;
  /* slots whose every read is at the output's own element, same shape */
  bool idread[MAX_ACC];
  struct rowgen *row;          /* set while generating a row kernel */
  int n_costly;                /* elementwise ops of ryf_ew_costly emitted */
} kgen;


/* Loop dims after coalescing. order[] lists original dims, outer first. */
typedef struct {
  int n;
  int64_t size[RY_MAX_RANK];
  int64_t coef[MAX_ACC + 1][RY_MAX_RANK]; /* per access, per loop; last row = output */
  bool red[RY_MAX_RANK];
  int8_t of[RY_MAX_RANK];  /* original loop dim -> loop, -1 when dropped (size 1) */
  bool keep[RY_MAX_RANK];  /* never merged: holds a divided dim, or dim 0 of a concatenate piece */
} loops;

enum { ROW_NONE, ROW_SCALAR, ROW_FULL, ROW_RED };
#define ROW_SCRATCH_MAX (96 * 1024) /* bytes of scratch rows per kernel */
#define ROW_MAX_SCRATCH 8
#define ROW_MAX_STORES 64
#define ROW_MAX_PF 8 /* streams a row kernel asks for ahead */

typedef struct {
  int rank;
  int64_t dims[RY_MAX_RANK]; /* the rows: the first reduction's kept non-unit dims */
  int64_t rows;
  bool sealed;
  int n_members;
  int32_t last;              /* node of the last member: the step runs there */
} rowgroup;

typedef struct rowplan {
  int32_t *grp;   /* [nv] group of a member, -1 */
  uint8_t *role;  /* [nv] ROW_* of a member */
  bool *out;      /* [nv] member read outside its group: stored */
  bool *norow;    /* [n_nodes] nodes kept out of row kernels (after a failure) */
  rowgroup *groups;
  int n_groups, cap;
  /* scratch of the graph walks */
  int32_t *stamp; /* [nv] */
  int32_t cur;
  ry_ivec stack, leaf;
  bool oom;
} rowplan;

typedef struct rowgen {
  int gi;
  const rowgroup *G;
  const int8_t *rowdim;  /* of the loop being generated: loop dim -> row dim, -1 */
  int pass;
  bool trial;            /* first generation: note what scratch rows would serve */
  uint8_t *done;         /* [nv] row scalars computed so far */
  struct {
    int32_t v;
    int first, n_pass, last_pass;
    int64_t len;
    bool use;
  } sc[ROW_MAX_SCRATCH];
  int n_sc;
  struct {
    int acc, temp;
    ry_dtype dt;
  } st[ROW_MAX_STORES];  /* stores after the body */
  int n_st;
  int scl[MAX_ACC];      /* scratch row an access reads or writes, -1 */
  bool store[MAX_ACC];   /* the access is a store */
  int32_t bufs[MAX_ACC]; /* slots, outputs first */
  int n_bufs, n_out;
  int32_t fail_v;        /* the member whose code could not be generated, -1 */
  /* the next row's streams, asked for while a costly pass computes this
     row (ryf_gen_row): noted by the trial generation, printed by the next */
  int pf_pass;           /* the pass that asks for them, -1: none */
  struct {
    int buf;             /* slot */
    bool store;          /* written: asked for writing */
    size_t size;         /* bytes per element */
    int64_t base, len;   /* offset; the row's elements, one contiguous run */
    int64_t coef[RY_MAX_RANK]; /* per row dim */
  } pf[ROW_MAX_PF];
  int n_pf;
} rowgen;

/* ---- elementwise rules (ew_rules.c) ---- */

/* The C of an elementwise op per operand class (see ew_rules.c). */
typedef struct ryf_ew_rule {
  const char *f32, *f64, *i, *b;
} ryf_ew_rule;
extern const ryf_ew_rule ryf_ew_rules[RY_OP_COUNT];
/* The rule of op for an operand of dtype `operand`; NULL: not compiled. */
const char *ryf_ew_rule_for(ry_op op, ry_dtype operand);
bool ryf_ew_costly(ry_op op);

/* ---- functions shared between the stages ---- */
/* a load of a reduction's lanes loop staged first as int32 lanes (loops.c) */
bool ryf_lane_staged(const access *x);

void ryf_coalesce(kgen *k, const int *order, int n_order, const bool *is_red, const int64_t *out_coef,
                     loops *lp);
const char *ryf_ctype(ry_dtype t);
void ryf_decide(planner *p);
int32_t ryf_def_of(const ry_graph *g, int32_t v);
int ryf_emit(kgen *k, int32_t v, const vmap *m);
int ryf_emit_node(kgen *k, int32_t v, const vmap *m);
bool ryf_ew_ok(const ry_graph *g, const ry_node *n);
bool ryf_gemm_plan(const ry_graph *g, const ry_node *n, ryc_gemm *gm);
/* A GEMM operand v that is a leading window of a buffer (a slice with zero
 * starts and unit strides shortening only dimension nb, the first after the
 * nb batch dimensions, as an attention reads the first positions of a KV
 * cache): the GEMM reads *src with *bstride elements between batches
 * instead of a copy of the window. */
bool ryf_gemm_window(const ry_graph *g, int32_t v, int nb, int32_t *src, int64_t *bstride);
/* dot_general(x f32[..., k], dequantize(w)[n, k]) contracting k: the product
 * from the blocks; *blocks = the dequantize's operand. */
bool ryf_qgemm_plan(const ry_graph *g, const ry_node *n, ryc_qgemm *q, int32_t *blocks);
bool ryf_gen_ew(kgen *k, int idx, ry__buf *out, int64_t *outer, int64_t *work);
bool ryf_gen_reduce(kgen *k, int idx, ry__buf *out, int64_t *outer, int64_t *work);
bool ryf_gen_row(planner *p, kgen *k, int gi, int idx, ry__buf *out, rowgen *rg, int *n_passes, int *n_scratch);
const char *ryf_int_max(ry_dtype t);
const char *ryf_int_min(ry_dtype t);
bool ryf_is_f(ry_dtype t);
const char *ryf_load_fmt(ry_dtype t);
int ryf_new_temp(kgen *k, ry_dtype t, const char *fmt, ...) RY_PRINTF(3, 4);
const char *ryf_red_identity(ry_reduce_kind kind, ry_dtype t);
void ryf_red_step(ry__buf *b, ry_reduce_kind kind, ry_dtype t, const char *acc, const char *x);
bool ryf_row_emit(kgen *k, int32_t v, const vmap *m, int *t);
void ryf_row_leaves(planner *p, const ry_node *n, bool expr, int through);
int ryf_row_match(const rowgroup *G, ry_shape s, int8_t rowdim[RY_MAX_RANK]);
bool ryf_row_plan(planner *p);
ry_status ryf_row_step(planner *pl, kgen *k, ryc_plan *p, int32_t nid, ry__buf *src, ry__buf *rep, ryc_step *st,
                          bool *retry);
void ryf_rowmajor(ry_shape s, int64_t st[RY_MAX_RANK]);
/* The kernel's next access, zeroed, of dtype dt; NULL (and k->fail set)
 * past MAX_ACC. The caller fills it in and counts it (k->n_acc++). */
access *ryf_new_access(kgen *k, ry_dtype dt);
const char *ryf_store_fmt(ry_dtype t);
const char *ryf_stype(ry_dtype t);
const char *ryf_utype(ry_dtype t);

#endif
