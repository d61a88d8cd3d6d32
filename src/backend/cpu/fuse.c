/* Fusion and C code generation for the cpu backend.
 *
 * Fusion is a decision about which values of the body are materialized
 * (stored in a buffer). Everything else is an expression that is computed
 * where it is used, inside the loop nest of the kernel whose root uses it:
 *   - inputs, outputs, results of nodes that are not generated (interpreter
 *     ops, GEMMs, reductions) and operands of interpreter ops and GEMMs are
 *     materialized;
 *   - broadcast, transpose, slice, reverse compose into the index map of a
 *     load (no code); reshape only directly over a buffer; pad maps the
 *     index into its operand (dividing by interior + 1) and selects the
 *     padding value outside it, concatenate selects its operand by the
 *     index along the axis (a concatenate kernel root is instead one loop
 *     nest per operand);
 *   - an elementwise value used by several nodes is recomputed unless its
 *     expression is expensive; one under an expanding broadcast is stored.
 * Each materialized value computed by elementwise / view / iota / reduce
 * nodes is the root of one kernel: a C function over a loop nest, loops
 * coalesced where every access allows it, the outer loop split by the
 * thread pool. A reduction kernel evaluates its operand expression inside
 * the reduction loop; reductions along the innermost axis use 16 fixed
 * partial sums (vectorizable, deterministic), others accumulate into the
 * output in input order. Reductions along trailing axes with the values
 * that broadcast them back over the same rows (softmax, layer norm and
 * their gradients) become one row kernel instead (see "row kernels").
 * dot_general in f32/f64 whose dimensions are a (batched) matrix product
 * becomes a GEMM step, an f32/f64 convolution a CONV step (conv.c: im2col +
 * GEMM); anything else runs through the interpreter's kernel. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "cpu.h"
#include "prelude.h"

/* ---- string buffer ---- */

void ryc_printf(ryc_buf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->oom = true;
      return;
    }
    if (b->s && (size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t ncap = b->cap ? b->cap * 2 : 4096;
    while (ncap < b->n + (size_t)k + 1) ncap *= 2;
    char *ns = ry__realloc(b->s, b->cap, ncap);
    if (!ns) {
      b->oom = true;
      return;
    }
    b->s = ns;
    b->cap = ncap;
  }
}

void ryc_append(ryc_buf *dst, const ryc_buf *src) {
  if (src->oom) dst->oom = true;
  else if (src->s) ryc_printf(dst, "%s", src->s);
}

void ryc_buf_free(ryc_buf *b) {
  ry__free(b->s, b->cap);
  memset(b, 0, sizeof *b);
}

/* ---- op classification ---- */

static bool is_f(ry_dtype t) { return ry_dtype_is_float(t) != 0; }

static bool is_view(ry_op op) {
  return op == RY_OP_BROADCAST || op == RY_OP_TRANSPOSE || op == RY_OP_SLICE || op == RY_OP_REVERSE ||
         op == RY_OP_RESHAPE;
}

static bool float_unary_ok(ry_op op) {
  switch (op) {
  case RY_OP_NEG: case RY_OP_ABS: case RY_OP_SIGN: case RY_OP_EXP: case RY_OP_EXP2: case RY_OP_LOG:
  case RY_OP_LOG1P: case RY_OP_EXPM1: case RY_OP_SQRT: case RY_OP_RSQRT: case RY_OP_CBRT: case RY_OP_SIN:
  case RY_OP_COS: case RY_OP_TAN: case RY_OP_TANH: case RY_OP_LOGISTIC: case RY_OP_ERF: case RY_OP_FLOOR:
  case RY_OP_CEIL: case RY_OP_ROUND: case RY_OP_ROUND_EVEN: case RY_OP_IS_FINITE:
    return true;
  default: return false;
  }
}

/* Can codegen compute node n elementwise (or as a view / iota / scalar)? */
static bool ew_ok(const ry_graph *g, const ry_node *n) {
  if (n->n_results != 1) return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_dtype rt = ry_vtype(g, ry_node_results(g, n)[0]).dtype;
  ry_dtype t0 = n->n_operands > 0 ? ry_vtype(g, ops[0]).dtype : rt;
  switch (ryg_op_table[n->op].kind) {
  case RY_KIND_UNARY:
  case RY_KIND_UNARY_PRED:
    if (is_f(t0)) return float_unary_ok(n->op);
    if (t0 == RY_BOOL) return n->op == RY_OP_NOT;
    return n->op == RY_OP_NEG || n->op == RY_OP_ABS || n->op == RY_OP_SIGN || n->op == RY_OP_NOT ||
           n->op == RY_OP_POPCNT;
  case RY_KIND_BINARY:
    if (is_f(t0))
      return n->op == RY_OP_ADD || n->op == RY_OP_SUB || n->op == RY_OP_MUL || n->op == RY_OP_DIV ||
             n->op == RY_OP_REM || n->op == RY_OP_POW || n->op == RY_OP_MAX || n->op == RY_OP_MIN ||
             n->op == RY_OP_ATAN2;
    if (t0 == RY_BOOL)
      return n->op == RY_OP_AND || n->op == RY_OP_OR || n->op == RY_OP_XOR || n->op == RY_OP_MAX || n->op == RY_OP_MIN;
    return n->op != RY_OP_ATAN2;
  case RY_KIND_COMPARE:
  case RY_KIND_SELECT:
  case RY_KIND_CLAMP:
    return true;
  case RY_KIND_CONVERT:
    if ((rt == RY_F16 || rt == RY_BF16) && !(is_f(t0) && t0 != RY_F64) && t0 != RY_BOOL && t0 != RY_I8 &&
        t0 != RY_U8 && t0 != RY_I16)
      return false; /* would round twice */
    return true;
  case RY_KIND_BITCAST: /* between 4- or 8-byte types, element for element */
    return ry_dtype_size(rt) == ry_dtype_size(t0) && (ry_dtype_size(rt) == 4 || ry_dtype_size(rt) == 8) &&
           rt != RY_BOOL && t0 != RY_BOOL;
  case RY_KIND_BROADCAST:
  case RY_KIND_TRANSPOSE:
  case RY_KIND_SLICE:
  case RY_KIND_REVERSE:
  case RY_KIND_RESHAPE:
  case RY_KIND_IOTA:
  case RY_KIND_PAD:
  case RY_KIND_CONCATENATE:
    return true;
  case RY_KIND_CONSTANT: return ry_shape_numel(ry_vtype(g, ry_node_results(g, n)[0]).shape) == 1;
  default: return false;
  }
}

static bool reduce_ok(const ry_graph *g, const ry_node *n) {
  if (n->op != RY_OP_REDUCE) return false;
  ry_dtype t = ry_vtype(g, ry_node_operands(g, n)[0]).dtype;
  ry_reduce_kind k = n->attrs.reduce.kind;
  if (is_f(t)) return k == RY_SUM || k == RY_PROD || k == RY_MAX || k == RY_MIN;
  return true;
}

/* dot_general as (batched) GEMM: batch dims lead in order on both sides, the
 * contracting dims are consecutive and in the same order on both sides. */
static bool gemm_plan(const ry_graph *g, const ry_node *n, ryc_gemm *gm) {
  if (n->op != RY_OP_DOT_GENERAL) return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type lt = ry_vtype(g, ops[0]), rt = ry_vtype(g, ops[1]), ot = ry_vtype(g, ry_node_results(g, n)[0]);
  if (lt.dtype != rt.dtype || lt.dtype != ot.dtype || (lt.dtype != RY_F32 && lt.dtype != RY_F64)) return false;
  const ry_dot_dims *d = &n->attrs.dot;
  int nb = d->lhs_batch.n, nc = d->lhs_contract.n;
  if (d->rhs_batch.n != nb || d->rhs_contract.n != nc) return false;
  int64_t batch = 1, m = 1, nn = 1, k = 1;
  for (int i = 0; i < nb; i++) {
    if (d->lhs_batch.v[i] != i || d->rhs_batch.v[i] != i) return false;
    batch *= lt.shape.dims[i];
  }
  /* lhs: after batch either [free..., contract...] or [contract..., free...] */
  int lfree = lt.shape.rank - nb - nc, rfree = rt.shape.rank - nb - nc;
  if (lfree < 0 || rfree < 0) return false;
  for (int i = 0; i < nc; i++) k *= lt.shape.dims[d->lhs_contract.v[i]];
  for (int i = 1; i < nc; i++)
    if (d->lhs_contract.v[i] != d->lhs_contract.v[i - 1] + 1 || d->rhs_contract.v[i] != d->rhs_contract.v[i - 1] + 1)
      return false;
  int lc0 = nc ? (int)d->lhs_contract.v[0] : lt.shape.rank, rc0 = nc ? (int)d->rhs_contract.v[0] : nb;
  if (nc && lc0 == nb + lfree) gm->trans_a = 0;
  else if (nc && lc0 == nb) gm->trans_a = 1;
  else if (!nc) gm->trans_a = 0;
  else return false;
  if (nc && rc0 == nb) gm->trans_b = 0;
  else if (nc && rc0 == nb + rfree) gm->trans_b = 1;
  else if (!nc) gm->trans_b = 0;
  else return false;
  for (int i = 0; i < lt.shape.rank; i++) {
    bool is_b = i < nb, is_c = false;
    for (int j = 0; j < nc; j++) is_c |= d->lhs_contract.v[j] == i;
    if (!is_b && !is_c) m *= lt.shape.dims[i];
  }
  for (int i = 0; i < rt.shape.rank; i++) {
    bool is_b = i < nb, is_c = false;
    for (int j = 0; j < nc; j++) is_c |= d->rhs_contract.v[j] == i;
    if (!is_b && !is_c) nn *= rt.shape.dims[i];
  }
  gm->batch = batch;
  gm->m = m;
  gm->n = nn;
  gm->k = k;
  gm->a_bstride = m * k;
  gm->b_bstride = k * nn;
  gm->dt = lt.dtype;
  return true;
}

/* ---- cost model for recomputation ---- */

static int op_cost(ry_op op) {
  switch (op) {
  case RY_OP_EXP: case RY_OP_EXP2: case RY_OP_LOG: case RY_OP_LOG1P: case RY_OP_EXPM1: case RY_OP_SIN:
  case RY_OP_COS: case RY_OP_TAN: case RY_OP_TANH: case RY_OP_LOGISTIC: case RY_OP_ERF: case RY_OP_CBRT:
  case RY_OP_POW: case RY_OP_ATAN2: case RY_OP_REM:
    return 8;
  case RY_OP_DIV: case RY_OP_SQRT: case RY_OP_RSQRT: return 3;
  case RY_OP_BROADCAST: case RY_OP_TRANSPOSE: case RY_OP_SLICE: case RY_OP_REVERSE: case RY_OP_RESHAPE:
  case RY_OP_CONSTANT: case RY_OP_IOTA:
    return 0;
  default: return 1;
  }
}
#define RECOMPUTE_MAX_COST 20

/* ---- planning ---- */

typedef enum { V_NONE, V_EW, V_REDUCE, V_GEMM, V_INTERP, V_PARAM, V_CONV } vclass;

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

static vclass classify(const ry_graph *g, const ry_node *n, const bool *force) {
  ryc_gemm gm;
  if (force[n - g->nodes]) return V_INTERP;
  if (ew_ok(g, n)) return V_EW;
  if (reduce_ok(g, n)) return V_REDUCE;
  if (gemm_plan(g, n, &gm)) return V_GEMM;
  if (n->op == RY_OP_CONVOLUTION) {
    ryc_conv cv;
    if (ryc_conv_plan(g, n, &cv, NULL)) return V_CONV;
  }
  return V_INTERP;
}

static void set_mat(planner *p, int32_t v, const char *why, const char *op) {
  if (p->mat[v]) return;
  p->mat[v] = true;
  p->why[v] = why;
  p->why_op[v] = op;
}

static int32_t def_of(const ry_graph *g, int32_t v) { return g->values[v].node; }

static const char k_costly[] = "used by several nodes and costly to recompute";
#define UNSHARE_MAX 128

/* Does node u read operand x at its own output element (so a kernel's memo
 * computes x once per element for every such use)? */
static bool same_index(const ry_graph *g, const ry_node *u, int32_t x) {
  switch (ryg_op_table[u->op].kind) {
  case RY_KIND_UNARY: case RY_KIND_UNARY_PRED: case RY_KIND_BINARY: case RY_KIND_COMPARE: case RY_KIND_SELECT:
  case RY_KIND_CLAMP: case RY_KIND_CONVERT: case RY_KIND_BITCAST:
    return u->n_results == 1 && ry_shape_equal(ry_vtype(g, x).shape, ry_vtype(g, ry_node_results(g, u)[0]).shape);
  default: return false;
  }
}

/* A value stored only because several nodes use it needs no buffer when all
 * those uses end up in one kernel at the same element: that kernel computes
 * it once. (Long elementwise chains with shared intermediates, such as the
 * PRNG's exact erf_inv, would otherwise become dozens of kernels.) owner[v]
 * is the root whose kernel computes v: -1 not seen, -2 several roots or read
 * at another element. Nodes are visited last to first, so a value's owner
 * is complete when its own node is reached. */
static void unshare(planner *p) {
  const ry_graph *g = p->g;
  const ry_region *body = &g->regions[0];
  int32_t *owner = ry__malloc(((size_t)g->n_values + 1) * sizeof *owner);
  if (!owner) return; /* keep every buffer: correct, only slower */
  for (int32_t v = 0; v <= g->n_values; v++) owner[v] = -1;
  for (int32_t k = body->nodes.n - 1; k >= 0; k--) {
    const ry_node *n = &g->nodes[body->nodes.v[k]];
    const int32_t *ops = ry_node_operands(g, n);
    int32_t r = n->n_results == 1 ? ry_node_results(g, n)[0] : -1, o = -2;
    if (r >= 0 && p->cls[r] == V_EW) {
      if (!p->mat[r]) o = owner[r];
      else o = p->why[r] == k_costly && owner[r] >= 0 ? owner[r] : r;
    } else if (r >= 0 && p->cls[r] == V_REDUCE) {
      o = r; /* the reduction's kernel reads its operand at the operand's own elements */
    }
    for (int i = 0; i < n->n_operands; i++) {
      int32_t x = ops[i];
      int32_t ox = o >= 0 && (p->cls[r] == V_REDUCE || same_index(g, n, x)) ? o : -2;
      owner[x] = owner[x] == -1 || owner[x] == ox ? ox : -2;
    }
  }
  /* at most UNSHARE_MAX values go back into one kernel (its memo holds
   * MAX_MEMO): past that they stay stored, splitting a very long chain */
  int32_t *taken = ry__calloc((size_t)g->n_values + 1, sizeof *taken);
  for (int32_t v = 0; taken && v <= g->n_values; v++)
    if (p->mat[v] && p->why[v] == k_costly && owner[v] >= 0 && taken[owner[v]]++ < UNSHARE_MAX) {
      p->mat[v] = false;
      p->why[v] = NULL;
    }
  ry__free(taken, ((size_t)g->n_values + 1) * sizeof *taken);
  ry__free(owner, ((size_t)g->n_values + 1) * sizeof *owner);
}

static void decide(planner *p) {
  const ry_graph *g = p->g;
  const ry_region *body = &g->regions[0];
  for (int32_t i = 0; i < body->params.n; i++) {
    p->mat[body->params.v[i]] = true;
    p->cls[body->params.v[i]] = V_PARAM;
    p->why[body->params.v[i]] = "input";
  }
  for (int32_t k = 0; k < body->nodes.n; k++) {
    const ry_node *n = &g->nodes[body->nodes.v[k]];
    vclass c = classify(g, n, p->force);
    const int32_t *res = ry_node_results(g, n), *ops = ry_node_operands(g, n);
    for (int i = 0; i < n->n_results; i++) {
      p->cls[res[i]] = (uint8_t)c;
      if (c != V_EW)
        set_mat(p, res[i], c == V_REDUCE ? "reduction result" : c == V_GEMM ? "gemm result" : c == V_CONV ? "convolution result" : "interpreter op result", NULL);
    }
    for (int i = 0; i < n->n_operands; i++) {
      p->nusers[ops[i]]++;
      if (c == V_GEMM || c == V_INTERP || c == V_CONV) set_mat(p, ops[i], "operand of", ryg_op_table[n->op].name);
    }
  }
  for (int32_t i = 0; i < body->results.n; i++) set_mat(p, body->results.v[i], "graph output", NULL);
  /* reverse: reshape wants a buffer (or a reshape of one) under it; an
   * expanding broadcast of a computed value stores the small value */
  for (int32_t k = body->nodes.n - 1; k >= 0; k--) {
    const ry_node *n = &g->nodes[body->nodes.v[k]];
    if (p->cls[ry_node_results(g, n)[0]] != V_EW) continue;
    int32_t r = ry_node_results(g, n)[0];
    int32_t x = n->n_operands ? ry_node_operands(g, n)[0] : 0;
    if (n->op == RY_OP_RESHAPE || p->need_flat[r]) {
      if (n->op == RY_OP_RESHAPE && !p->mat[r] && p->need_flat[r]) { /* chain continues */ }
      if (n->op != RY_OP_RESHAPE && !p->mat[r]) set_mat(p, r, "reshaped (a reshape reads a buffer)", NULL);
    }
    if (n->op == RY_OP_RESHAPE && !p->mat[x] && p->cls[x] == V_EW) {
      int32_t dn = def_of(g, x);
      if (dn >= 0 && g->nodes[dn].op == RY_OP_RESHAPE) p->need_flat[x] = true;
      else set_mat(p, x, "operand of", "reshape");
    }
    if (n->op == RY_OP_CONCATENATE && !p->mat[r] && n->n_operands > 4)
      set_mat(p, r, "concatenate of many operands (one loop per operand)", NULL);
    if (n->op == RY_OP_BROADCAST && !p->mat[x] && p->cls[x] == V_EW) {
      int32_t dn = def_of(g, x);
      ry_op xo = g->nodes[dn].op;
      bool cheap = xo == RY_OP_CONSTANT || xo == RY_OP_IOTA || (is_view(xo) && xo != RY_OP_RESHAPE);
      if (!cheap && ry_shape_numel(ry_vtype(g, x).shape) < ry_shape_numel(ry_vtype(g, r).shape))
        set_mat(p, x, "operand of expanding", "broadcast_in_dim");
    }
  }
  /* forward: expensive expressions used more than once are stored */
  for (int32_t k = 0; k < body->nodes.n; k++) {
    const ry_node *n = &g->nodes[body->nodes.v[k]];
    int32_t r = ry_node_results(g, n)[0];
    if (n->n_results != 1 || p->cls[r] != V_EW) continue;
    int c = op_cost(n->op);
    for (int i = 0; i < n->n_operands; i++) {
      int32_t x = ry_node_operands(g, n)[i];
      if (!p->mat[x]) c += p->cost[x];
    }
    if (!p->mat[r] && p->nusers[r] > 1 && c > RECOMPUTE_MAX_COST) set_mat(p, r, k_costly, NULL);
    p->cost[r] = p->mat[r] ? 0 : c;
  }
  unshare(p);
}

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

static int64_t vdiv(const vmap *m, int d) { return m->div[d] > 1 ? m->div[d] : 1; }

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
  ryc_buf body;                /* temps */
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
  /* in-place variants of an elementwise kernel (gen_ew): the slot each one
   * writes over and its text, a function ryk_<kernel>_ip<slot> */
  int n_ip;
  int ip_slot[RYC_MAX_INPLACE];
  ryc_buf ip_src[RYC_MAX_INPLACE];
  struct rowgen *row;          /* set while generating a row kernel */
} kgen;

static bool row_emit(kgen *k, int32_t v, const vmap *m, int *t);

static const char *ctype(ry_dtype t) { /* compute type */
  switch (t) {
  case RY_BOOL: return "int";
  case RY_I8: return "int8_t";
  case RY_I16: return "int16_t";
  case RY_I32: return "int32_t";
  case RY_I64: return "int64_t";
  case RY_U8: return "uint8_t";
  case RY_U32: return "uint32_t";
  case RY_F16: case RY_BF16: case RY_F32: return "float";
  case RY_F64: return "double";
  default: return "int";
  }
}

static const char *stype(ry_dtype t) { /* storage type */
  switch (t) {
  case RY_BOOL: return "uint8_t";
  case RY_F16: return "ry_f16";
  case RY_BF16: return "ry_bf16";
  case RY_F32: return "float";
  case RY_F64: return "double";
  default: return ctype(t);
  }
}

static const char *utype(ry_dtype t) { return ry_dtype_size(t) == 8 ? "uint64_t" : "uint32_t"; }

static const char *int_min(ry_dtype t) {
  switch (t) {
  case RY_I8: return "INT8_MIN";
  case RY_I16: return "INT16_MIN";
  case RY_I32: return "INT32_MIN";
  case RY_I64: return "INT64_MIN";
  default: return "0";
  }
}
static const char *int_max(ry_dtype t) {
  switch (t) {
  case RY_I8: return "INT8_MAX";
  case RY_I16: return "INT16_MAX";
  case RY_I32: return "INT32_MAX";
  case RY_I64: return "INT64_MAX";
  case RY_U8: return "UINT8_MAX";
  case RY_U32: return "UINT32_MAX";
  case RY_BOOL: return "1";
  default: return "0";
  }
}

static int new_temp(kgen *k, ry_dtype t, const char *fmt, ...) RY_PRINTF(3, 4);
static int new_temp(kgen *k, ry_dtype t, const char *fmt, ...) {
  int id = k->n_temps++;
  char expr[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(expr, sizeof expr, fmt, ap);
  va_end(ap);
  const char *round = t == RY_F16 ? "ry_rh" : t == RY_BF16 ? "ry_rb" : "";
  ryc_printf(&k->body, "      const %s t%d = %s(%s);\n", ctype(t), id, round, expr);
  return id;
}

static void rowmajor(ry_shape s, int64_t st[RY_MAX_RANK]) { ry__strides(s, st); }

/* An access to buffer value w read through `shape` (w's shape, or a reshape
 * of it with the same element count) at map m. */
static int add_access(kgen *k, int32_t w, ry_shape shape, const vmap *m, ry_dtype dt) {
  if (k->n_acc >= MAX_ACC) {
    k->fail = true;
    k->fail_why = "too many loads";
    return 0;
  }
  access *a = &k->acc[k->n_acc];
  memset(a, 0, sizeof *a);
  a->dt = dt;
  if (w < 0) {
    a->buf = -1;
  } else {
    int slot = -1;
    for (int i = 1; i < k->n_bufs; i++)
      if (k->bufs[i] == w) slot = i;
    if (slot < 0) {
      if (k->n_bufs >= MAX_ACC) {
        k->fail = true;
        k->fail_why = "too many buffers";
        return 0;
      }
      slot = k->n_bufs++;
      k->bufs[slot] = w;
    }
    a->buf = slot;
  }
  int64_t st[RY_MAX_RANK];
  rowmajor(shape, st);
  for (int d = 0; d < m->rank; d++) {
    int64_t s = w < 0 ? 1 : st[d], dv = vdiv(m, d);
    if (dv > 1 && m->src[d] >= 0) {
      nlterm *t = &a->nl[a->n_nl++];
      *t = (nlterm){m->src[d], m->mul[d], m->add[d], dv, s};
      k->nl_dim[m->src[d]] = true;
      continue;
    }
    if (m->src[d] >= 0) a->coef[m->src[d]] += m->mul[d] * s;
    a->base += (dv > 1 ? m->add[d] / dv : m->add[d]) * s;
  }
  if (w >= 0 && k->guard > 0) a->clamp = ry_shape_numel(shape);
  return k->n_acc++;
}

static void literal(kgen *k, const ry_array *c, char *buf, size_t size) {
  ry_dtype t = c->type.dtype;
  if (is_f(t)) {
    double v = ry__load_f64(t, c->data, 0);
    const char *suf = t == RY_F64 ? "" : "f";
    if (isnan(v) && t == RY_F64) { /* by its bits: sign and payload matter to bitcast_convert */
      uint64_t u;
      memcpy(&u, c->data, 8);
      snprintf(buf, size, "ry_u2d(0x%016" PRIx64 "ull)", u);
    } else if (isnan(v) && t == RY_F32) {
      uint32_t u;
      memcpy(&u, c->data, 4);
      snprintf(buf, size, "ry_u2f(0x%08" PRIx32 "u)", u);
    } else if (isnan(v)) snprintf(buf, size, "%s", "__builtin_nanf(\"\")");
    else if (isinf(v)) snprintf(buf, size, "%s%s", v < 0 ? "-" : "", t == RY_F64 ? "__builtin_inf()" : "__builtin_inff()");
    else snprintf(buf, size, "%a%s", t == RY_F64 ? v : (double)(float)v, suf);
  } else {
    int64_t v = ry__load_i64(t, c->data, 0);
    if (v == INT64_MIN) snprintf(buf, size, "(%s)(-9223372036854775807LL - 1)", ctype(t));
    else snprintf(buf, size, "(%s)%" PRId64 "LL", ctype(t), v);
  }
  (void)k;
}

static int emit(kgen *k, int32_t v, const vmap *m);
#define RY_MAX_CONCAT_FUSED 64

static int emit_at(kgen *k, int32_t v, const vmap *m, int32_t user_rank) {
  /* a scalar operand of select/clamp next to array operands */
  if (ry_vtype(k->g, v).shape.rank == 0 && user_rank > 0) {
    vmap s = {0, {0}, {0}, {0}, {0}};
    return emit(k, v, &s);
  }
  return emit(k, v, m);
}

static const char *fname(ry_op op, bool dbl) {
  switch (op) {
  case RY_OP_EXP: return dbl ? "exp" : "ry_expf"; /* prelude.h */
  case RY_OP_EXP2: return dbl ? "exp2" : "exp2f";
  case RY_OP_LOG: return dbl ? "log" : "logf";
  case RY_OP_LOG1P: return dbl ? "log1p" : "log1pf";
  case RY_OP_EXPM1: return dbl ? "expm1" : "expm1f";
  case RY_OP_SQRT: return dbl ? "sqrt" : "sqrtf";
  case RY_OP_CBRT: return dbl ? "cbrt" : "cbrtf";
  case RY_OP_SIN: return dbl ? "sin" : "sinf";
  case RY_OP_COS: return dbl ? "cos" : "cosf";
  case RY_OP_TAN: return dbl ? "tan" : "tanf";
  case RY_OP_TANH: return dbl ? "tanh" : "tanhf";
  case RY_OP_ERF: return dbl ? "erf" : "ry_erff"; /* prelude.h */
  case RY_OP_FLOOR: return dbl ? "floor" : "floorf";
  case RY_OP_CEIL: return dbl ? "ceil" : "ceilf";
  case RY_OP_ROUND: return dbl ? "round" : "roundf";
  case RY_OP_ROUND_EVEN: return dbl ? "rint" : "rintf";
  case RY_OP_ABS: return dbl ? "fabs" : "fabsf";
  case RY_OP_SIGN: return dbl ? "ry_sign" : "ry_signf";
  case RY_OP_LOGISTIC: return dbl ? "ry_logistic" : "ry_logisticf";
  case RY_OP_REM: return dbl ? "fmod" : "fmodf";
  case RY_OP_POW: return dbl ? "pow" : "powf";
  case RY_OP_ATAN2: return dbl ? "atan2" : "atan2f";
  case RY_OP_MAX: return dbl ? "ry_fmax" : "ry_fmaxf";
  case RY_OP_MIN: return dbl ? "ry_fmin" : "ry_fminf";
  default: return "?";
  }
}

static const char *cmp_c(ry_cmp c) {
  static const char *const s[] = {"==", "!=", "<", "<=", ">", ">="};
  return (int)c >= 0 && c < RY_CMP_COUNT ? s[c] : "==";
}

/* pad: per padded dim d the output index i maps to q = i - low, the operand
 * index q / (interior + 1); the element is the operand's where every q is a
 * multiple of interior + 1 inside the operand, else the padding value. The
 * operand is emitted under the guard (its loads are clamped), so it may be
 * computed at indices that are then not selected. */
static int emit_pad(kgen *k, const ry_node *n, const vmap *m) {
  const ry_graph *g = k->g;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type xt = ry_vtype(g, ops[0]), vt = ry_vtype(g, ry_node_results(g, n)[0]);
  vmap sm = {0, {0}, {0}, {0}, {0}};
  int pv = emit(k, ops[1], &sm);
  if (ry_shape_numel(xt.shape) == 0) return pv;
  const ry_axes *lo = &n->attrs.pad.low, *hi = &n->attrs.pad.high, *in = &n->attrs.pad.interior;
  vmap xm = *m;
  int cond = -1;
  for (int d = 0; d < xt.shape.rank; d++) {
    int64_t l = lo->v[d], s = (in->n ? in->v[d] : 0) + 1, dv = vdiv(m, d);
    if (l == 0 && s == 1 && hi->v[d] == 0) continue;
    vmap qm = {1, {m->src[d]}, {m->mul[d]}, {m->add[d] - l * dv}, {dv}};
    int a = add_access(k, -1, RY_SCALAR, &qm, RY_I64);
    int c;
    if (s > 1)
      c = new_temp(k, RY_BOOL, "a%d >= 0 && a%d < %" PRId64 " && a%d %% %" PRId64 " == 0", a, a,
                   (xt.shape.dims[d] - 1) * s + 1, a, s);
    else c = new_temp(k, RY_BOOL, "a%d >= 0 && a%d < %" PRId64, a, a, xt.shape.dims[d]);
    cond = cond < 0 ? c : new_temp(k, RY_BOOL, "t%d && t%d", cond, c);
    xm.add[d] = m->add[d] - l * dv;
    xm.div[d] = dv * s;
  }
  if (cond < 0) return emit(k, ops[0], &xm);
  k->guard++;
  int xv = emit(k, ops[0], &xm);
  k->guard--;
  return new_temp(k, vt.dtype, "t%d ? t%d : t%d", cond, xv, pv);
}

/* concatenate: operand q where the index along dim lies in its range */
static int emit_concat(kgen *k, const ry_node *n, const vmap *m) {
  const ry_graph *g = k->g;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type vt = ry_vtype(g, ry_node_results(g, n)[0]);
  int dim = (int)n->attrs.concatenate.dim;
  int64_t dv = vdiv(m, dim), offs[RY_MAX_CONCAT_FUSED + 1];
  int qs[RY_MAX_CONCAT_FUSED], nq = 0;
  int64_t off = 0;
  for (int q = 0; q < n->n_operands; q++) {
    int64_t sz = ry_vtype(g, ops[q]).shape.dims[dim];
    if (sz > 0) {
      if (nq == RY_MAX_CONCAT_FUSED) {
        k->fail = true;
        k->fail_why = "concatenate of too many operands";
        return 0;
      }
      offs[nq] = off;
      qs[nq++] = q;
    }
    off += sz;
  }
  offs[nq] = off;
  if (nq <= 1) return emit(k, ops[nq ? qs[0] : 0], m);
  vmap im = {1, {m->src[dim]}, {m->mul[dim]}, {m->add[dim]}, {dv}};
  int ia = add_access(k, -1, RY_SCALAR, &im, RY_I64);
  k->guard++;
  int res = -1;
  for (int i = nq - 1; i >= 0; i--) {
    vmap xm = *m;
    xm.add[dim] = m->add[dim] - offs[i] * dv;
    int xv = emit(k, ops[qs[i]], &xm);
    res = res < 0 ? xv : new_temp(k, vt.dtype, "a%d < %" PRId64 " ? t%d : t%d", ia, offs[i + 1], xv, res);
  }
  k->guard--;
  return res;
}

static int emit_node(kgen *k, int32_t v, const vmap *m) {
  const ry_graph *g = k->g;
  const ry_node *n = &g->nodes[def_of(g, v)];
  const int32_t *ops = ry_node_operands(g, n);
  ry_type vt = ry_vtype(g, v);
  ry_dtype t = vt.dtype;
  ry_dtype t0 = n->n_operands ? ry_vtype(g, ops[0]).dtype : t;
  bool dbl = t0 == RY_F64;
  int rank = vt.shape.rank;
  switch (n->op) {
  case RY_OP_CONSTANT: {
    char lit[128];
    literal(k, n->attrs.constant.value, lit, sizeof lit);
    return new_temp(k, t, "%s", lit);
  }
  case RY_OP_IOTA: {
    int id = (int)n->attrs.iota.dim;
    vmap im = {1, {m->src[id]}, {m->mul[id]}, {m->add[id]}, {m->div[id]}};
    int a = add_access(k, -1, RY_SCALAR, &im, t);
    return new_temp(k, t, "(%s)a%d", ctype(t), a);
  }
  case RY_OP_BROADCAST: {
    ry_type xt = ry_vtype(g, ops[0]);
    vmap xm = {xt.shape.rank, {0}, {0}, {0}, {0}};
    for (int i = 0; i < xt.shape.rank; i++) {
      int od = (int)n->attrs.broadcast.dims.v[i];
      if (xt.shape.dims[i] == 1 && vt.shape.dims[od] != 1) {
        xm.src[i] = -1;
        xm.mul[i] = 0;
        xm.add[i] = 0;
      } else {
        xm.src[i] = m->src[od];
        xm.mul[i] = m->mul[od];
        xm.add[i] = m->add[od];
        xm.div[i] = m->div[od];
      }
    }
    return emit(k, ops[0], &xm);
  }
  case RY_OP_TRANSPOSE: {
    vmap xm = {rank, {0}, {0}, {0}, {0}};
    for (int i = 0; i < rank; i++) {
      int pd = (int)n->attrs.transpose.perm.v[i];
      xm.src[pd] = m->src[i];
      xm.mul[pd] = m->mul[i];
      xm.add[pd] = m->add[i];
      xm.div[pd] = m->div[i];
    }
    return emit(k, ops[0], &xm);
  }
  case RY_OP_SLICE: {
    vmap xm = *m;
    for (int d = 0; d < rank; d++) {
      int64_t st = n->attrs.slice.stride.v[d], s0 = n->attrs.slice.start.v[d];
      xm.mul[d] = m->mul[d] * st;
      xm.add[d] = m->add[d] * st + s0 * vdiv(m, d);
    }
    return emit(k, ops[0], &xm);
  }
  case RY_OP_REVERSE: {
    vmap xm = *m;
    for (int i = 0; i < n->attrs.reverse.dims.n; i++) {
      int d = (int)n->attrs.reverse.dims.v[i];
      xm.mul[d] = -m->mul[d];
      xm.add[d] = (vt.shape.dims[d] - 1) * vdiv(m, d) - m->add[d];
    }
    return emit(k, ops[0], &xm);
  }
  case RY_OP_PAD: return emit_pad(k, n, m);
  case RY_OP_CONCATENATE: return emit_concat(k, n, m);
  case RY_OP_RESHAPE: {
    int32_t w = ops[0];
    while (!k->p->mat[w]) {
      const ry_node *wn = &g->nodes[def_of(g, w)];
      if (wn->op != RY_OP_RESHAPE) {
        k->fail = true;
        k->fail_why = "reshape of a computed value";
        return 0;
      }
      w = ry_node_operands(g, wn)[0];
    }
    int a = add_access(k, w, vt.shape, m, t);
    return new_temp(k, t, "a%d", a);
  }
  case RY_OP_COMPARE: {
    int a = emit(k, ops[0], m), b = emit(k, ops[1], m);
    return new_temp(k, t, "t%d %s t%d", a, cmp_c(n->attrs.compare.dir), b);
  }
  case RY_OP_SELECT: {
    int c = emit_at(k, ops[0], m, rank), a = emit(k, ops[1], m), b = emit(k, ops[2], m);
    return new_temp(k, t, "t%d ? t%d : t%d", c, a, b);
  }
  case RY_OP_CLAMP: {
    int lo = emit_at(k, ops[0], m, rank), x = emit(k, ops[1], m), hi = emit_at(k, ops[2], m, rank);
    if (is_f(t)) {
      bool d = t == RY_F64;
      return new_temp(k, t, "%s(%s(t%d, t%d), t%d)", d ? "ry_fmin" : "ry_fminf", d ? "ry_fmax" : "ry_fmaxf", x, lo, hi);
    }
    int c = new_temp(k, t, "t%d < t%d ? t%d : t%d", x, lo, lo, x);
    return new_temp(k, t, "t%d > t%d ? t%d : t%d", c, hi, hi, c);
  }
  case RY_OP_BITCAST: { /* through the unsigned integer of the same size (ew_ok: 4 or 8 bytes) */
    int a = emit(k, ops[0], m);
    bool w = ry_dtype_size(t) == 8; /* 8 bytes: f64 and i64 (the bits held in an int64_t) */
    int u = is_f(t0) ? new_temp(k, w ? RY_I64 : RY_U32, w ? "(int64_t)ry_d2u(t%d)" : "ry_f2u(t%d)", a)
                     : new_temp(k, w ? RY_I64 : RY_U32, w ? "(int64_t)t%d" : "(uint32_t)t%d", a);
    if (is_f(t)) return new_temp(k, t, w ? "ry_u2d((uint64_t)t%d)" : "ry_u2f(t%d)", u);
    return new_temp(k, t, "(%s)t%d", ctype(t), u);
  }
  case RY_OP_CONVERT: {
    int a = emit(k, ops[0], m);
    if (t == RY_BOOL) {
      /* XLA:CPU compares with denormals as zero in f32/bf16/f64 */
      if (t0 == RY_F64) return new_temp(k, t, "t%d != 0 && !(fabs(t%d) < 0x1p-1022)", a, a);
      if (t0 == RY_F32 || t0 == RY_BF16) return new_temp(k, t, "t%d != 0 && !(fabsf(t%d) < 0x1p-126f)", a, a);
      return new_temp(k, t, "t%d != 0", a);
    }
    if (is_f(t)) return new_temp(k, t, "(%s)t%d", ctype(t), a);
    if (is_f(t0)) return new_temp(k, t, "RY_F2I(%s, %s, %s, (double)t%d)", ctype(t), int_min(t), int_max(t), a);
    return new_temp(k, t, "(%s)t%d", ctype(t), a);
  }
  default: break;
  }
  ry_op_kind kind = ryg_op_table[n->op].kind;
  if (kind == RY_KIND_UNARY || kind == RY_KIND_UNARY_PRED) {
    int a = emit(k, ops[0], m);
    if (n->op == RY_OP_IS_FINITE) return new_temp(k, t, "isfinite(t%d) != 0", a);
    if (is_f(t0)) {
      if (n->op == RY_OP_NEG) return new_temp(k, t, "-t%d", a);
      if (n->op == RY_OP_RSQRT) return new_temp(k, t, dbl ? "1.0 / sqrt(t%d)" : "1.0f / sqrtf(t%d)", a);
      return new_temp(k, t, "%s(t%d)", fname(n->op, dbl), a);
    }
    if (t0 == RY_BOOL) return new_temp(k, t, "!t%d", a);
    const char *u = utype(t0);
    switch (n->op) {
    case RY_OP_NEG: return new_temp(k, t, "(%s)(0u - (%s)t%d)", ctype(t), u, a);
    case RY_OP_ABS: return new_temp(k, t, "(%s)(t%d < 0 ? 0u - (%s)t%d : (%s)t%d)", ctype(t), a, u, a, u, a);
    case RY_OP_SIGN: return new_temp(k, t, "(%s)((t%d > 0) - (t%d < 0))", ctype(t), a, a);
    case RY_OP_NOT: return new_temp(k, t, "(%s)~t%d", ctype(t), a);
    case RY_OP_POPCNT:
      return new_temp(k, t, "(%s)__builtin_popcountll(ry_zext((uint64_t)(int64_t)t%d, %d))", ctype(t), a,
                      (int)ry_dtype_size(t0) * 8);
    default: break;
    }
  } else if (kind == RY_KIND_BINARY) {
    int a = emit(k, ops[0], m), b = emit(k, ops[1], m);
    if (is_f(t0)) {
      switch (n->op) {
      case RY_OP_ADD: return new_temp(k, t, "t%d + t%d", a, b);
      case RY_OP_SUB: return new_temp(k, t, "t%d - t%d", a, b);
      case RY_OP_MUL: return new_temp(k, t, "t%d * t%d", a, b);
      case RY_OP_DIV: return new_temp(k, t, "t%d / t%d", a, b);
      default: return new_temp(k, t, "%s(t%d, t%d)", fname(n->op, dbl), a, b);
      }
    }
    const char *u = utype(t0), *ct = ctype(t);
    int bits = (int)ry_dtype_size(t0) * 8;
    switch (n->op) {
    case RY_OP_ADD: return new_temp(k, t, "(%s)((%s)t%d + (%s)t%d)", ct, u, a, u, b);
    case RY_OP_SUB: return new_temp(k, t, "(%s)((%s)t%d - (%s)t%d)", ct, u, a, u, b);
    case RY_OP_MUL: return new_temp(k, t, "(%s)((%s)t%d * (%s)t%d)", ct, u, a, u, b);
    case RY_OP_DIV: return new_temp(k, t, "(%s)ry_idiv(t%d, t%d)", ct, a, b);
    case RY_OP_REM: return new_temp(k, t, "(%s)ry_irem(t%d, t%d)", ct, a, b);
    case RY_OP_POW: return new_temp(k, t, "(%s)ry_ipow(t%d, t%d)", ct, a, b);
    case RY_OP_MAX: return new_temp(k, t, "t%d > t%d ? t%d : t%d", a, b, a, b);
    case RY_OP_MIN: return new_temp(k, t, "t%d < t%d ? t%d : t%d", a, b, a, b);
    case RY_OP_AND: return new_temp(k, t, "(%s)(t%d & t%d)", ct, a, b);
    case RY_OP_OR: return new_temp(k, t, "(%s)(t%d | t%d)", ct, a, b);
    case RY_OP_XOR: return new_temp(k, t, "(%s)(t%d ^ t%d)", ct, a, b);
    case RY_OP_SHL: return new_temp(k, t, "(%s)ry_shl(t%d, t%d, %d)", ct, a, b, bits);
    case RY_OP_SHR_LOGICAL: return new_temp(k, t, "(%s)ry_shrl(t%d, t%d, %d)", ct, a, b, bits);
    case RY_OP_SHR_ARITH: return new_temp(k, t, "(%s)ry_shra(t%d, t%d, %d)", ct, a, b, bits);
    default: break;
    }
  }
  k->fail = true;
  k->fail_why = "op without codegen";
  return 0;
}

static bool vmap_eq(const vmap *a, const vmap *b) {
  if (a->rank != b->rank) return false;
  for (int d = 0; d < a->rank; d++)
    if (a->src[d] != b->src[d] || a->mul[d] != b->mul[d] || a->add[d] != b->add[d] || vdiv(a, d) != vdiv(b, d))
      return false;
  return true;
}

static int emit(kgen *k, int32_t v, const vmap *m) {
  if (k->fail) return 0;
  for (int i = 0; i < k->n_memo; i++)
    if (k->memos[i].v == v && vmap_eq(&k->memos[i].m, m)) return k->memos[i].temp;
  int t;
  ry_type vt = ry_vtype(k->g, v);
  if (k->row && row_emit(k, v, m, &t)) {
    /* a row kernel's own value: a local, a scratch row or recomputed */
  } else if (k->p->mat[v] && v != k->root) {
    int a = add_access(k, v, vt.shape, m, vt.dtype);
    t = new_temp(k, vt.dtype, "a%d", a);
  } else {
    t = emit_node(k, v, m);
  }
  if (k->n_memo == MAX_MEMO) {
    /* without the memo shared values would be regenerated per use, doubling
     * with every level: give the kernel up (its root runs elsewhere) */
    k->fail = true;
    k->fail_why = "too many distinct values in one kernel";
    return 0;
  }
  memo *mm = &k->memos[k->n_memo++];
  mm->v = v;
  mm->m = *m;
  mm->temp = t;
  return t;
}

static const char *load_fmt(ry_dtype t) {
  switch (t) {
  case RY_F16: return "ry_h2f(%s)";
  case RY_BF16: return "ry_b2f(%s)";
  default: return "%s";
  }
}

/* Loop dims after coalescing. order[] lists original dims, outer first. */
typedef struct {
  int n;
  int64_t size[RY_MAX_RANK];
  int64_t coef[MAX_ACC + 1][RY_MAX_RANK]; /* per access, per loop; last row = output */
  bool red[RY_MAX_RANK];
  int8_t of[RY_MAX_RANK];  /* original loop dim -> loop, -1 when dropped (size 1) */
  bool keep[RY_MAX_RANK];  /* never merged: holds a divided dim, or dim 0 of a concatenate piece */
} loops;

static void coalesce(kgen *k, const int *order, int n_order, const bool *is_red, const int64_t *out_coef,
                     loops *lp) {
  lp->n = 0;
  for (int d = 0; d < RY_MAX_RANK; d++) lp->of[d] = -1;
  for (int i = 0; i < n_order; i++) {
    int d = order[i];
    bool keep0 = k->keep0 && d == 0;
    if (k->loop[d] == 1 && !keep0) continue;
    int j = lp->n++;
    lp->of[d] = (int8_t)j;
    lp->keep[j] = k->nl_dim[d] || keep0;
    lp->size[j] = k->loop[d];
    lp->red[j] = is_red ? is_red[d] : false;
    for (int a = 0; a < k->n_acc; a++) lp->coef[a][j] = k->acc[a].coef[d];
    lp->coef[k->n_acc][j] = out_coef[d];
  }
  /* merge j-1 and j when every access allows it */
  for (int j = lp->n - 1; j >= 1; j--) {
    bool ok = lp->red[j] == lp->red[j - 1] && !lp->keep[j] && !lp->keep[j - 1];
    for (int a = 0; ok && a <= k->n_acc; a++) ok = lp->coef[a][j - 1] == lp->coef[a][j] * lp->size[j];
    if (!ok) continue;
    lp->size[j - 1] *= lp->size[j];
    for (int a = 0; a <= k->n_acc; a++) lp->coef[a][j - 1] = lp->coef[a][j];
    for (int d = 0; d < RY_MAX_RANK; d++)
      if (lp->of[d] >= j) lp->of[d]--;
    for (int i = j; i + 1 < lp->n; i++) {
      lp->size[i] = lp->size[i + 1];
      lp->red[i] = lp->red[i + 1];
      lp->keep[i] = lp->keep[i + 1];
      for (int a = 0; a <= k->n_acc; a++) lp->coef[a][i] = lp->coef[a][i + 1];
    }
    lp->n--;
  }
}

static void print_offset(ryc_buf *b, int64_t base, const int64_t *coef, int n) {
  ryc_printf(b, "%" PRId64, base);
  for (int j = 0; j < n; j++)
    if (coef[j]) ryc_printf(b, " + j%d * %" PRId64, j, coef[j]);
}

/* the terms of an access that divide (interior padding) */
static void print_nl(ryc_buf *b, const access *x, const loops *lp) {
  for (int i = 0; i < x->n_nl; i++) {
    const nlterm *t = &x->nl[i];
    int j = lp->of[t->src];
    if (j >= 0)
      ryc_printf(b, " + %" PRId64 " * ((%" PRId64 " * j%d + %" PRId64 ") / %" PRId64 ")", t->stride, t->mul, j, t->add, t->div);
    else ryc_printf(b, " + %" PRId64 " * (%" PRId64 " / %" PRId64 ")", t->stride, t->add, t->div);
  }
}

static void print_loads(kgen *k, ryc_buf *b, const loops *lp) {
  for (int a = 0; a < k->n_acc; a++) {
    const access *x = &k->acc[a];
    if (x->buf < 0) {
      ryc_printf(b, "      const int64_t a%d = ", a);
      print_offset(b, x->base, lp->coef[a], lp->n);
      print_nl(b, x, lp);
      ryc_printf(b, ";\n");
      continue;
    }
    char ref[64];
    snprintf(ref, sizeof ref, "p%d[o%d]", x->buf, a);
    ryc_printf(b, "      const int64_t o%d%s = ", a, x->clamp > 0 ? "_" : "");
    print_offset(b, x->base, lp->coef[a], lp->n);
    print_nl(b, x, lp);
    if (x->clamp > 0)
      ryc_printf(b, ";\n      const int64_t o%d = o%d_ < 0 ? 0 : o%d_ >= %" PRId64 " ? %" PRId64 " : o%d_", a, a, a, x->clamp,
                 x->clamp - 1, a);
    ryc_printf(b, ";\n      const %s a%d = ", ctype(x->dt), a);
    ryc_printf(b, load_fmt(x->dt), ref);
    ryc_printf(b, ";\n");
  }
}

/* inplace > 0: slot `inplace` is written (it replaces the output p0, which
 * is not declared), so the pointer is not const and there is no aliasing */
static void print_ptrs(kgen *k, ryc_buf *b, int inplace) {
  for (int i = inplace ? 1 : 0; i < k->n_bufs; i++) {
    ry_dtype t = ry_vtype(k->g, k->bufs[i]).dtype;
    const char *c = i && i != inplace ? "const " : "";
    ryc_printf(b, "  %s%s *restrict p%d = (%s%s *)b[%d];\n", c, stype(t), i, c, stype(t), i);
  }
}

static const char *store_fmt(ry_dtype t) {
  switch (t) {
  case RY_F16: return "ry_f2h(%s)";
  case RY_BF16: return "ry_f2b(%s)";
  case RY_BOOL: return "(uint8_t)(%s != 0)";
  default: return "%s";
  }
}

static void gen_ew_body(kgen *k, ryc_buf *out, const loops *lp, int t, ry_dtype dt, int ip);

/* Kernels touching few elements gain nothing from vectorization and loop
 * transformations but cost as much compile time as big ones (a train step
 * has dozens over biases, losses and scalars): they are compiled at -O1
 * (RY_SMALL, defined by the prelude for GCC), halving a cold compile. */
#define SMALL_WORK 4096
static const char *small_work(int64_t elements) { return elements < SMALL_WORK ? "RY_SMALL " : ""; }

/* elementwise kernel rooted at value r: the loop is r's shape */
/* A concatenate that is a kernel's root: one loop nest per (non-empty)
 * operand writing its slab of the output, so each element is computed
 * once. Loop 0 is dim 0 of the output, split by the pool: all of it for
 * each operand (concatenation along a later dim), or the operand's part of
 * [lo, hi) (along dim 0). */
static bool gen_concat_root(kgen *k, int idx, ryc_buf *out, int64_t *outer, int64_t *work) {
  const ry_graph *g = k->g;
  const ry_node *n = &g->nodes[def_of(g, k->root)];
  const int32_t *ops = ry_node_operands(g, n);
  ry_type rt = ry_vtype(g, k->root);
  int dim = (int)n->attrs.concatenate.dim, L = rt.shape.rank;
  int64_t st[RY_MAX_RANK];
  rowmajor(rt.shape, st);
  ryc_buf pieces = {0};
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  int64_t off = 0;
  for (int q = 0; q < n->n_operands && !k->fail; q++) {
    ry_type xt = ry_vtype(g, ops[q]);
    int64_t sz = xt.shape.dims[dim];
    if (sz == 0) continue;
    /* a fresh loop nest; the buffer slots are shared by all pieces */
    ryc_buf_free(&k->body);
    k->n_temps = k->n_acc = k->n_memo = 0;
    k->guard = 0;
    memset(k->nl_dim, 0, sizeof k->nl_dim);
    k->keep0 = true;
    k->L = L;
    for (int d = 0; d < L; d++) k->loop[d] = xt.shape.dims[d];
    vmap id = {L, {0}, {0}, {0}, {0}};
    for (int d = 0; d < L; d++) {
      id.src[d] = (int8_t)d;
      id.mul[d] = 1;
    }
    int t = emit(k, ops[q], &id);
    if (k->fail || k->body.oom) break;
    int order[RY_MAX_RANK];
    for (int d = 0; d < L; d++) order[d] = d;
    coalesce(k, order, L, NULL, st, lp);
    ryc_printf(&pieces, "  { /* operand %d */\n", q);
    if (dim == 0)
      ryc_printf(&pieces, "   const int64_t lo_ = (lo > %" PRId64 " ? lo : %" PRId64 ") - %" PRId64 ", hi_ = (hi < %" PRId64
                          " ? hi : %" PRId64 ") - %" PRId64 ";\n",
                 off, off, off, off + sz, off + sz, off);
    else ryc_printf(&pieces, "   const int64_t lo_ = lo, hi_ = hi;\n");
    for (int j = 0; j < lp->n; j++) {
      if (j == 0) ryc_printf(&pieces, "  for (int64_t j0 = lo_; j0 < hi_; j0++) {\n");
      else ryc_printf(&pieces, "  for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    }
    print_loads(k, &pieces, lp);
    ryc_append(&pieces, &k->body);
    ryc_printf(&pieces, "      p0[");
    print_offset(&pieces, off * st[dim], lp->coef[k->n_acc], lp->n);
    char tv[32];
    snprintf(tv, sizeof tv, "t%d", t);
    ryc_printf(&pieces, "] = ");
    ryc_printf(&pieces, store_fmt(rt.dtype), tv);
    ryc_printf(&pieces, ";\n");
    for (int j = 0; j < lp->n; j++) ryc_printf(&pieces, "  }\n");
    ryc_printf(&pieces, "  }\n");
    off += sz;
  }
  bool ok = !k->fail && !k->body.oom && !pieces.oom;
  if (ok) {
    ryc_printf(out, "void ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", idx);
    print_ptrs(k, out, 0);
    ryc_append(out, &pieces);
    ryc_printf(out, "}\n\n");
  }
  k->n_ip = 0;
  *outer = L ? rt.shape.dims[0] : 1;
  *work = ry_shape_numel(rt.shape);
  ryc_buf_free(&pieces);
  ry__free(lp, sizeof *lp);
  return ok;
}

static bool gen_ew(kgen *k, int idx, ryc_buf *out, int64_t *outer, int64_t *work) {
  ry_type rt = ry_vtype(k->g, k->root);
  if (k->g->nodes[def_of(k->g, k->root)].op == RY_OP_CONCATENATE && rt.shape.rank > 0)
    return gen_concat_root(k, idx, out, outer, work);
  k->L = rt.shape.rank;
  for (int d = 0; d < k->L; d++) k->loop[d] = rt.shape.dims[d];
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  int t = emit_node(k, k->root, &id);
  if (k->fail || k->body.oom) return false;
  int64_t st[RY_MAX_RANK];
  rowmajor(rt.shape, st);
  int order[RY_MAX_RANK];
  for (int d = 0; d < k->L; d++) order[d] = d;
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  coalesce(k, order, k->L, NULL, st, lp);
  /* slot i may be written over by the output when every read of it is at
   * the output's own element: same dtype and size, offset 0, the output's
   * strides (loads come before the store in each iteration) */
  k->n_ip = 0;
  for (int i = 1; i < k->n_bufs && k->n_ip < RYC_MAX_INPLACE; i++) {
    ry_type bt = ry_vtype(k->g, k->bufs[i]);
    bool ok = bt.dtype == rt.dtype && ry_shape_numel(bt.shape) == ry_shape_numel(rt.shape) && ry_shape_numel(rt.shape) > 0;
    for (int a = 0; ok && a < k->n_acc; a++) {
      if (k->acc[a].buf != i) continue;
      ok = k->acc[a].base == 0 && k->acc[a].n_nl == 0 && k->acc[a].clamp == 0;
      for (int j = 0; ok && j < lp->n; j++) ok = lp->coef[a][j] == lp->coef[k->n_acc][j];
    }
    if (ok) k->ip_slot[k->n_ip++] = i;
  }
  for (int v = -1; v < k->n_ip; v++) {
    int ip = v < 0 ? 0 : k->ip_slot[v];
    ryc_buf *o = v < 0 ? out : &k->ip_src[v];
    const char *attr = small_work(ry_shape_numel(rt.shape));
    if (v < 0) ryc_printf(o, "%svoid ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", attr, idx);
    else ryc_printf(o, "%svoid ryk_%d_ip%d(char *const *b, int64_t lo, int64_t hi) {\n", attr, idx, ip);
    gen_ew_body(k, o, lp, t, rt.dtype, ip);
  }
  *outer = lp->n ? lp->size[0] : 1;
  *work = ry_shape_numel(rt.shape);
  ry__free(lp, sizeof *lp);
  return true;
}

static void gen_ew_body(kgen *k, ryc_buf *out, const loops *lp, int t, ry_dtype dt, int ip) {
  print_ptrs(k, out, ip);
  if (lp->n == 0) ryc_printf(out, "  for (int64_t j_ = lo; j_ < hi; j_++) {\n    {\n");
  for (int j = 0; j < lp->n; j++) {
    if (j == 0) ryc_printf(out, "  for (int64_t j0 = lo; j0 < hi; j0++) {\n");
    else ryc_printf(out, "  %*sfor (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j * 2, "", j, j, lp->size[j], j);
  }
  print_loads(k, out, lp);
  ryc_append(out, &k->body);
  ryc_printf(out, "      p%d[", ip);
  print_offset(out, 0, lp->coef[k->n_acc], lp->n);
  ryc_printf(out, "] = ");
  char tv[32];
  snprintf(tv, sizeof tv, "t%d", t);
  ryc_printf(out, store_fmt(dt), tv);
  ryc_printf(out, ";\n");
  for (int j = lp->n - 1; j >= 0; j--) ryc_printf(out, "  }\n");
  if (lp->n == 0) ryc_printf(out, "    }\n  }\n");
  ryc_printf(out, "}\n\n");
}

static const char *red_identity(ry_reduce_kind kind, ry_dtype t) {
  bool f = is_f(t);
  switch (kind) {
  case RY_SUM: return "0";
  case RY_PROD: return "1";
  case RY_MAX: return f ? "-__builtin_inf()" : t == RY_BOOL ? "0" : int_min(t);
  case RY_MIN: return f ? "__builtin_inf()" : int_max(t);
  case RY_AND: return t == RY_BOOL ? "1" : "-1";
  case RY_OR: return "0";
  default: return "0";
  }
}

/* step(acc, x) in C for the accumulator type */
static void red_step(ryc_buf *b, ry_reduce_kind kind, ry_dtype t, const char *acc, const char *x) {
  if (t == RY_BOOL) {
    if (kind == RY_SUM || kind == RY_MAX) kind = RY_OR;
    if (kind == RY_PROD || kind == RY_MIN) kind = RY_AND;
  }
  bool f = is_f(t), d = t == RY_F64;
  const char *ct = ctype(t), *u = utype(t);
  switch (kind) {
  /* integer sums and products accumulate in the unsigned type (wrapping, no
   * UB); see lane_acc_type: casting the accumulator back to signed on every
   * step trips a GCC 12 -O3 vectorizer bug (wrong sums with AVX2/AVX-512) */
  case RY_SUM:
    if (f) ryc_printf(b, "%s = %s + %s;", acc, acc, x);
    else ryc_printf(b, "%s = (%s)(%s + (%s)%s);", acc, u, acc, u, x);
    break;
  case RY_PROD:
    if (f) ryc_printf(b, "%s = %s * %s;", acc, acc, x);
    else ryc_printf(b, "%s = (%s)(%s * (%s)%s);", acc, u, acc, u, x);
    break;
  case RY_MAX:
    if (f) ryc_printf(b, "%s = %s(%s, %s);", acc, d ? "ry_fmax" : "ry_fmaxf", acc, x);
    else ryc_printf(b, "%s = %s > %s ? %s : %s;", acc, acc, x, acc, x);
    break;
  case RY_MIN:
    if (f) ryc_printf(b, "%s = %s(%s, %s);", acc, d ? "ry_fmin" : "ry_fminf", acc, x);
    else ryc_printf(b, "%s = %s < %s ? %s : %s;", acc, acc, x, acc, x);
    break;
  case RY_AND: ryc_printf(b, "%s = (%s)(%s & %s);", acc, ct, acc, x); break;
  case RY_OR: ryc_printf(b, "%s = (%s)(%s | %s);", acc, ct, acc, x); break;
  default: break;
  }
}

/* The accumulator type of a reduction: the unsigned type for integer sums and
 * products (see red_step), else the compute type. */
static const char *lane_acc_type(ry_reduce_kind kind, ry_dtype t) {
  bool wrap = ry_dtype_is_int(t) && (kind == RY_SUM || kind == RY_PROD);
  return wrap ? utype(t) : ctype(t);
}

static bool gen_reduce(kgen *k, int idx, ryc_buf *out, int64_t *outer, int64_t *work) {
  const ry_graph *g = k->g;
  const ry_node *n = &g->nodes[def_of(g, k->root)];
  int32_t x = ry_node_operands(g, n)[0];
  ry_type xt = ry_vtype(g, x), rt = ry_vtype(g, k->root);
  ry_dtype t = xt.dtype;
  ry_reduce_kind kind = n->attrs.reduce.kind;
  k->L = xt.shape.rank;
  bool red[RY_MAX_RANK] = {false};
  for (int i = 0; i < n->attrs.reduce.axes.n; i++) red[n->attrs.reduce.axes.v[i]] = true;
  for (int d = 0; d < k->L; d++) k->loop[d] = xt.shape.dims[d];
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  /* the operand: a buffer when materialized, else its expression */
  int tv = k->p->mat[x] ? (int)(emit(k, x, &id)) : emit_node(k, x, &id);
  if (k->fail || k->body.oom) return false;
  /* output coefficients: strides of the kept dims */
  int64_t ost[RY_MAX_RANK], oc[RY_MAX_RANK] = {0};
  rowmajor(rt.shape, ost);
  for (int d = 0, o = 0; d < k->L; d++)
    if (!red[d]) oc[d] = ost[o++];
  /* inner style when the last non-unit dim is reduced (or f16/bf16/bool, whose
   * accumulator differs from the storage) */
  int last = -1;
  for (int d = 0; d < k->L; d++)
    if (k->loop[d] != 1) last = d;
  bool acc_is_store = t == RY_F32 || t == RY_F64 || ry_dtype_is_int(t);
  bool inner = last < 0 || red[last] || !acc_is_store;
  int order[RY_MAX_RANK], no = 0;
  if (inner) {
    for (int d = 0; d < k->L; d++)
      if (!red[d]) order[no++] = d;
    for (int d = 0; d < k->L; d++)
      if (red[d]) order[no++] = d;
  } else {
    for (int d = 0; d < k->L; d++) order[no++] = d;
  }
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  coalesce(k, order, no, red, oc, lp);
  const char *act = ctype(t); /* float for f16/bf16, int for bool */
  char acc[16], val[16];
  snprintf(val, sizeof val, "t%d", tv);
  ryc_printf(out, "%svoid ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", small_work(ry_shape_numel(xt.shape)), idx);
  print_ptrs(k, out, 0);
  int nk = 0; /* kept loops (outer) */
  while (nk < lp->n && !lp->red[nk]) nk++;
  if (inner) {
    /* kept loops, then lanes over the reduced loops */
    if (nk == 0) ryc_printf(out, "  for (int64_t j_ = lo; j_ < hi; j_++) {\n");
    for (int j = 0; j < nk; j++) {
      if (j == 0) ryc_printf(out, "  for (int64_t j0 = lo; j0 < hi; j0++) {\n");
      else ryc_printf(out, "  for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    }
    const char *lat = lane_acc_type(kind, t);
    ryc_printf(out, "    %s acc[RY_LANES];\n    for (int l = 0; l < RY_LANES; l++) acc[l] = (%s)%s;\n", lat, lat,
               red_identity(kind, t));
    for (int j = nk; j + 1 < lp->n; j++)
      ryc_printf(out, "    for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    if (lp->n > nk) {
      int j = lp->n - 1;
      int64_t len = lp->size[j];
      ryc_printf(out, "    int64_t jv = 0;\n");
      ryc_printf(out, "    for (; jv + RY_LANES <= %" PRId64 "; jv += RY_LANES) {\n", len);
      ryc_printf(out, "     for (int l = 0; l < RY_LANES; l++) {\n      const int64_t j%d = jv + l;\n", j);
      print_loads(k, out, lp);
      ryc_append(out, &k->body);
      ryc_printf(out, "      ");
      red_step(out, kind, t, "acc[l]", val);
      ryc_printf(out, "\n     }\n    }\n");
      ryc_printf(out, "    for (; jv < %" PRId64 "; jv++) {\n     {\n      const int64_t j%d = jv;\n", len, j);
      print_loads(k, out, lp);
      ryc_append(out, &k->body);
      ryc_printf(out, "      ");
      red_step(out, kind, t, "acc[0]", val);
      ryc_printf(out, "\n     }\n    }\n");
    } else {
      ryc_printf(out, "    {\n");
      print_loads(k, out, lp);
      ryc_append(out, &k->body);
      ryc_printf(out, "      ");
      red_step(out, kind, t, "acc[0]", val);
      ryc_printf(out, "\n    }\n");
    }
    for (int j = nk; j + 1 < lp->n; j++) ryc_printf(out, "    }\n");
    ryc_printf(out, "    %s r_ = acc[0];\n    for (int l = 1; l < RY_LANES; l++) { ", lat);
    red_step(out, kind, t, "r_", "acc[l]");
    ryc_printf(out, " }\n    const %s r = (%s)r_;\n    p0[", act, act);
    print_offset(out, 0, lp->coef[k->n_acc], nk);
    ryc_printf(out, "] = ");
    ryc_printf(out, store_fmt(rt.dtype), "r");
    ryc_printf(out, ";\n");
    for (int j = 0; j < (nk ? nk : 1); j++) ryc_printf(out, "  }\n");
    *outer = nk ? lp->size[0] : 1;
  } else {
    /* accumulate into the output in input order; split a kept dim 0, or
     * the innermost loop when it is the only one kept (a column sum such
     * as a bias gradient): each output element still sums in input order */
    bool split = lp->n > 0 && !lp->red[0];
    bool split_last = !split && lp->n >= 2 && !lp->red[lp->n - 1];
    for (int j = 0; split_last && j + 1 < lp->n; j++) split_last = lp->red[j];
    int64_t ocount = 1; /* output elements per unit of loop 0 */
    if (split) ocount = lp->coef[k->n_acc][0];
    if (split) {
      ryc_printf(out, "  for (int64_t i = lo * %" PRId64 "; i < hi * %" PRId64 "; i++) p0[i] = (%s)%s;\n", ocount,
                 ocount, act, red_identity(kind, t));
    } else if (split_last) {
      /* in units of 64 elements: whatever the split, the same elements take
       * the vector loop and the same the scalar tail */
      int64_t len = lp->size[lp->n - 1];
      ryc_printf(out, "  const int64_t c0 = lo * 64, c1 = hi * 64 < %" PRId64 " ? hi * 64 : %" PRId64 ";\n", len, len);
      ryc_printf(out, "  for (int64_t i = c0; i < c1; i++) p0[i * %" PRId64 "] = (%s)%s;\n", lp->coef[k->n_acc][lp->n - 1],
                 act, red_identity(kind, t));
    } else {
      ryc_printf(out, "  for (int64_t i = 0; i < %" PRId64 "; i++) p0[i] = (%s)%s;\n", ry_shape_numel(rt.shape), act,
                 red_identity(kind, t));
      ryc_printf(out, "  (void)lo; (void)hi;\n");
    }
    for (int j = 0; j < lp->n; j++) {
      if (j == 0 && split) ryc_printf(out, "  for (int64_t j0 = lo; j0 < hi; j0++) {\n");
      else if (j == lp->n - 1 && split_last) ryc_printf(out, "  for (int64_t j%d = c0; j%d < c1; j%d++) {\n", j, j, j);
      else ryc_printf(out, "  for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    }
    print_loads(k, out, lp);
    ryc_append(out, &k->body);
    ryc_printf(out, "      const int64_t oo = ");
    print_offset(out, 0, lp->coef[k->n_acc], lp->n);
    ryc_printf(out, ";\n      %s r = (%s)p0[oo];\n      ", lane_acc_type(kind, t), lane_acc_type(kind, t));
    red_step(out, kind, t, "r", val);
    ryc_printf(out, "\n      p0[oo] = (%s)r;\n", act);
    for (int j = 0; j < lp->n; j++) ryc_printf(out, "  }\n");
    *outer = split ? lp->size[0] : split_last ? (lp->size[lp->n - 1] + 63) / 64 : 1;
  }
  ryc_printf(out, "}\n\n");
  (void)acc;
  *work = ry_shape_numel(xt.shape);
  ry__free(lp, sizeof *lp);
  return true;
}

/* ---- row kernels ----
 *
 * Softmax, log-softmax, layer / RMS norm and their gradients reduce along
 * trailing axes and broadcast the results back over the same rows. Planned
 * as separate kernels they read the data once per reduction, recompute or
 * store the intermediates. A row kernel runs, for each row (rows split over
 * the pool), the reductions as passes over the row while it stays in cache,
 * then the elementwise outputs, with the per-row results in locals.
 *
 * Grouping (row_plan, after decide): kernel roots are visited in order. A
 * reduction whose reduced non-unit dims all follow its kept ones has a row
 * space, its kept non-unit dims ("rows"). A kernel root whose expression
 * reads a member of an open group joins it when it is a reduction over the
 * same rows, a value of the rows' shape (unit dims aside: a row scalar such
 * as a mean or 1/sum) or of the rows followed by more dims (full: outputs).
 * A step outside the group that reads a member seals the group (nothing
 * joins after it, so the group can run where its last member was) and
 * makes that member an output of the row kernel. Open groups over the same
 * rows that one value reads merge into one. A group of one member stays an
 * ordinary kernel. A member whose code cannot be generated in the row
 * kernel (a row value read at another row, a reshape that reorders a row's
 * elements) leaves the group when the plan is made again (row_step).
 *
 * Schedule (gen_row): a reduction's level is one more than the deepest row
 * scalar it reads, a row scalar's is that of the deepest it reads, a full
 * output's one more. Pass L evaluates the level-L reductions and full
 * outputs, those with the same loop shape in one loop; the row scalars of
 * level L follow it. An expensive expression (cost of a transcendental)
 * that several passes evaluate at the same elements is stored by the first
 * pass in a scratch row on the stack and read back by the others, so
 * softmax computes exp once. Full members read by other members are
 * recomputed from their expression (or come from scratch), never reloaded.
 *
 * Reductions keep RY_LANES partial sums over the innermost loop in the
 * order gen_reduce uses, and a row is always computed whole by one thread:
 * results do not depend on the thread count. A float max / min first
 * keeps the plain larger (smaller) value with a NaN flag per lane, which
 * vectorizes without a long dependency chain, and redoes a row with the
 * exact step (NaN propagation, +0 above -0) only when the row holds a NaN
 * or its result is zero. */

enum { ROW_NONE, ROW_SCALAR, ROW_FULL, ROW_RED };
#define ROW_SCRATCH_MAX (96 * 1024) /* bytes of scratch rows per kernel */
#define ROW_MAX_SCRATCH 8
#define ROW_MAX_STORES 64

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

/* Match shape s against G's rows: rowdim[d] = the row dim that dim d is, or
 * -1. ROW_SCALAR when s is the rows (unit dims aside), ROW_FULL when the
 * rows lead and more non-unit dims follow, ROW_NONE otherwise. */
static int row_match(const rowgroup *G, ry_shape s, int8_t rowdim[RY_MAX_RANK]) {
  int q = 0;
  bool inner = false;
  for (int d = 0; d < s.rank; d++) {
    rowdim[d] = -1;
    if (s.dims[d] == 1) continue;
    if (q < G->rank) {
      if (s.dims[d] != G->dims[q]) return ROW_NONE;
      rowdim[d] = (int8_t)q++;
    } else {
      inner = true;
    }
  }
  if (q < G->rank) return ROW_NONE;
  return inner ? ROW_FULL : ROW_SCALAR;
}

/* The rows of reduction n (its kept non-unit dims) when every reduced
 * non-unit dim follows them; *inner = elements reduced per row. */
static bool row_key(const ry_graph *g, const ry_node *n, rowgroup *G, int64_t *inner) {
  ry_shape xs = ry_vtype(g, ry_node_operands(g, n)[0]).shape;
  bool red[RY_MAX_RANK] = {false}, seen = false;
  for (int i = 0; i < n->attrs.reduce.axes.n; i++) red[n->attrs.reduce.axes.v[i]] = true;
  memset(G, 0, sizeof *G);
  G->rows = 1;
  *inner = 1;
  for (int d = 0; d < xs.rank; d++) {
    if (xs.dims[d] == 1) continue;
    if (red[d]) {
      seen = true;
      *inner *= xs.dims[d];
    } else {
      if (seen) return false;
      G->dims[G->rank++] = xs.dims[d];
      G->rows *= xs.dims[d];
    }
  }
  return true;
}

/* The materialized values node n reads into rp->leaf: its operands, or with
 * `expr` the buffers under its expression; with through >= 0 the full
 * members of that group are looked through too (a row kernel recomputes
 * them). */
static void row_leaves(planner *p, const ry_node *n, bool expr, int through) {
  rowplan *rp = p->rows;
  const ry_graph *g = p->g;
  rp->cur++;
  rp->leaf.n = 0;
  rp->stack.n = 0;
  const int32_t *ops = ry_node_operands(g, n);
  for (int i = 0; i < n->n_operands; i++) rp->oom |= !ry__ivec_push(&rp->stack, ops[i]);
  while (rp->stack.n > 0 && !rp->oom) {
    int32_t x = rp->stack.v[--rp->stack.n];
    if (rp->stamp[x] == rp->cur) continue;
    rp->stamp[x] = rp->cur;
    bool look = expr && (p->mat[x] ? through >= 0 && rp->grp[x] == through && rp->role[x] == ROW_FULL
                                   : p->cls[x] == V_EW && def_of(g, x) >= 0);
    if (!look) {
      rp->oom |= !ry__ivec_push(&rp->leaf, x);
      continue;
    }
    const ry_node *xn = &g->nodes[def_of(g, x)];
    const int32_t *xo = ry_node_operands(g, xn);
    for (int i = 0; i < xn->n_operands; i++) rp->oom |= !ry__ivec_push(&rp->stack, xo[i]);
  }
}

static bool same_rows(const rowgroup *a, const rowgroup *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

/* Form the groups (see above). False on OOM. */
static bool row_plan(planner *p) {
  rowplan *rp = p->rows;
  const ry_graph *g = p->g;
  const ry_region *body = &g->regions[0];
  for (int32_t v = 0; v <= g->n_values; v++) rp->grp[v] = -1;
  for (int32_t kk = 0; kk < body->nodes.n && !rp->oom; kk++) {
    int32_t nid = body->nodes.v[kk];
    const ry_node *n = &g->nodes[nid];
    int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
    vclass c = r >= 0 ? (vclass)p->cls[r] : V_INTERP;
    bool expr = c == V_EW || c == V_REDUCE;
    if (c == V_EW && !p->mat[r]) continue; /* not a step */
    row_leaves(p, n, expr, -1);
    int join = -1, role = ROW_NONE;
    ry_dtype dt = r >= 0 ? ry_vtype(g, r).dtype : RY_F32;
    if (expr && !rp->norow[nid] && n->n_results == 1 && (dt == RY_F32 || dt == RY_F64) && n->op != RY_OP_CONSTANT) {
      int best = -1;
      for (int i = 0; i < rp->leaf.n; i++) {
        int gi = rp->grp[rp->leaf.v[i]];
        if (gi > best && !rp->groups[gi].sealed) best = gi;
      }
      rowgroup key;
      int64_t inner = 0;
      bool keyed = c == V_REDUCE && ry_vtype(g, ry_node_operands(g, n)[0]).dtype == dt && row_key(g, n, &key, &inner);
      if (best >= 0) {
        int8_t rd[RY_MAX_RANK];
        if (c == V_REDUCE) role = keyed && same_rows(&key, &rp->groups[best]) ? ROW_RED : ROW_NONE;
        else role = row_match(&rp->groups[best], ry_vtype(g, r).shape, rd);
        if (role != ROW_NONE) join = best;
      }
      /* other open groups over the same rows that this value reads merge
       * into the one it joins (nothing outside them has read them yet) */
      for (int i = 0; join >= 0 && i < rp->leaf.n; i++) {
        int gi = rp->grp[rp->leaf.v[i]];
        if (gi < 0 || gi == join || rp->groups[gi].sealed || !same_rows(&rp->groups[gi], &rp->groups[join])) continue;
        for (int32_t v = 0; v <= g->n_values; v++)
          if (rp->grp[v] == gi) rp->grp[v] = join;
        rp->groups[join].n_members += rp->groups[gi].n_members;
        rp->groups[gi].n_members = 0;
        rp->groups[gi].sealed = true;
      }
      /* a new group: enough rows to share among threads, or short rows */
      if (join < 0 && keyed && key.rows >= 2 && (key.rows >= 16 || inner <= 65536)) {
        if (rp->n_groups == rp->cap) {
          int ncap = rp->cap ? 2 * rp->cap : 8;
          rowgroup *ng = ry__realloc(rp->groups, (size_t)rp->cap * sizeof *ng, (size_t)ncap * sizeof *ng);
          if (!ng) return false;
          rp->groups = ng;
          rp->cap = ncap;
        }
        rp->groups[rp->n_groups] = key;
        join = rp->n_groups++;
        role = ROW_RED;
      }
    }
    if (join >= 0) {
      rp->grp[r] = join;
      rp->role[r] = (uint8_t)role;
      rp->groups[join].n_members++;
      rp->groups[join].last = nid;
    }
    for (int i = 0; i < rp->leaf.n; i++) {
      int32_t x = rp->leaf.v[i];
      if (rp->grp[x] >= 0 && rp->grp[x] != join) {
        rp->groups[rp->grp[x]].sealed = true;
        rp->out[x] = true;
      }
    }
  }
  for (int32_t i = 0; i < body->results.n; i++) rp->out[body->results.v[i]] = true;
  for (int32_t v = 0; v <= g->n_values; v++)
    if (rp->grp[v] >= 0 && rp->groups[rp->grp[v]].n_members < 2) rp->grp[v] = -1;
  return !rp->oom;
}

/* State of one row kernel's generation. */
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
} rowgen;

static int row_acc(kgen *k, int buf, ry_dtype dt, const int64_t *coef, bool store, int sc) {
  if (k->n_acc >= MAX_ACC) {
    k->fail = true;
    k->fail_why = "too many loads";
    return 0;
  }
  access *a = &k->acc[k->n_acc];
  memset(a, 0, sizeof *a);
  a->buf = buf;
  a->dt = dt;
  for (int d = 0; d < k->L; d++) a->coef[d] = coef[d];
  k->row->store[k->n_acc] = store;
  k->row->scl[k->n_acc] = sc;
  return k->n_acc++;
}

static void row_store(kgen *k, int acc, int temp, ry_dtype dt) {
  rowgen *rg = k->row;
  if (rg->n_st >= ROW_MAX_STORES) {
    k->fail = true;
    k->fail_why = "row kernel: too many stores";
    return;
  }
  rg->st[rg->n_st].acc = acc;
  rg->st[rg->n_st].temp = temp;
  rg->st[rg->n_st++].dt = dt;
}

/* m reads value v (shape s) at the row being computed, and only there */
static bool row_at_row(const rowgen *rg, const vmap *m, ry_shape s) {
  int q = 0;
  for (int e = 0; e < s.rank; e++) {
    if (s.dims[e] == 1) continue;
    if (m->src[e] < 0 || rg->rowdim[m->src[e]] != q || m->mul[e] != 1 || m->add[e] != 0) return false;
    q++;
  }
  return q == rg->G->rank;
}

/* m reads value v (shape s) at the loop's own element */
static bool row_identity(const kgen *k, const vmap *m, ry_shape s) {
  if (s.rank != k->L) return false;
  for (int d = 0; d < s.rank; d++) {
    if (s.dims[d] != k->loop[d]) return false;
    if (s.dims[d] != 1 && (m->src[d] != d || m->mul[d] != 1 || m->add[d] != 0)) return false;
  }
  return true;
}

/* row-major strides of the loop's inner (non-row) dims; returns their count */
static int64_t row_inner_strides(const kgen *k, const int8_t *rowdim, int64_t coef[RY_MAX_RANK]) {
  int64_t st = 1;
  for (int d = k->L - 1; d >= 0; d--) {
    coef[d] = 0;
    if (rowdim[d] >= 0 || k->loop[d] == 1) continue;
    coef[d] = st;
    st *= k->loop[d];
  }
  return st;
}

/* The emit hook inside a row kernel: members of the group are locals (row
 * scalars) or recomputed (full values); chosen expressions come from a
 * scratch row. False: emit v as usual. */
static bool row_emit(kgen *k, int32_t v, const vmap *m, int *t) {
  rowgen *rg = k->row;
  planner *p = k->p;
  rowplan *rp = p->rows;
  const ry_graph *g = k->g;
  ry_type vt = ry_vtype(g, v);
  const ry_node *vn = def_of(g, v) >= 0 ? &g->nodes[def_of(g, v)] : NULL;
  /* a reshape that only adds or drops unit dims, over a member or another
   * such reshape, reads its operand at the same element */
  if (vn && vn->op == RY_OP_RESHAPE && (rp->grp[v] == rg->gi ? rp->role[v] == ROW_FULL : !p->mat[v])) {
    int32_t x = ry_node_operands(g, vn)[0];
    ry_shape xs = ry_vtype(g, x).shape;
    const ry_node *xn = def_of(g, x) >= 0 ? &g->nodes[def_of(g, x)] : NULL;
    bool via = rp->grp[x] == rg->gi || (!p->mat[x] && xn && xn->op == RY_OP_RESHAPE);
    vmap xm = {xs.rank, {0}, {0}, {0}, {0}};
    int e = 0;
    for (int d = 0; via && d < xs.rank; d++) {
      xm.src[d] = -1;
      if (xs.dims[d] == 1) continue;
      while (e < vt.shape.rank && vt.shape.dims[e] == 1) e++;
      if (e == vt.shape.rank || vt.shape.dims[e] != xs.dims[d]) via = false;
      else {
        xm.src[d] = m->src[e];
        xm.mul[d] = m->mul[e];
        xm.add[d] = m->add[e];
        xm.div[d] = m->div[e];
        e++;
      }
    }
    while (via && e < vt.shape.rank && vt.shape.dims[e] == 1) e++;
    if (via && e == vt.shape.rank) {
      *t = emit(k, x, &xm);
      return true;
    }
  }
  int32_t w = v;
  /* a reshape over a member reads the member */
  while (rp->grp[w] != rg->gi && !p->mat[w] && g->nodes[def_of(g, w)].op == RY_OP_RESHAPE)
    w = ry_node_operands(g, &g->nodes[def_of(g, w)])[0];
  if (rp->grp[w] == rg->gi) {
    if (rp->role[w] == ROW_FULL && w == v) {
      *t = emit_node(k, v, m);
      return true;
    }
    int8_t rd[RY_MAX_RANK];
    if (rp->role[w] == ROW_FULL || row_match(rg->G, vt.shape, rd) != ROW_SCALAR || !row_at_row(rg, m, vt.shape)) {
      k->fail = true;
      k->fail_why = "row kernel: a member read at another row or reshaped";
      *t = 0;
      return true;
    }
    if (!rg->done[w]) {
      k->fail = true;
      k->fail_why = "row kernel: a row value read before it is computed";
      *t = 0;
      return true;
    }
    *t = new_temp(k, vt.dtype, "rs%d", (int)w);
    return true;
  }
  if (p->mat[v] || p->cost[v] < 8 || !row_identity(k, m, vt.shape)) return false;
  int s = -1;
  for (int i = 0; i < rg->n_sc; i++)
    if (rg->sc[i].v == v) s = i;
  if (rg->trial) {
    if (s < 0 && rg->n_sc < ROW_MAX_SCRATCH) {
      s = rg->n_sc++;
      rg->sc[s].v = v;
      rg->sc[s].first = rg->pass;
      rg->sc[s].n_pass = 0;
      rg->sc[s].last_pass = -1;
    }
    if (s >= 0 && rg->sc[s].last_pass != rg->pass) {
      rg->sc[s].n_pass++;
      rg->sc[s].last_pass = rg->pass;
    }
    return false;
  }
  if (s < 0 || !rg->sc[s].use) return false;
  int64_t coef[RY_MAX_RANK];
  row_inner_strides(k, rg->rowdim, coef);
  if (rg->pass == rg->sc[s].first) {
    *t = emit_node(k, v, m);
    row_store(k, row_acc(k, -2 - s, vt.dtype, coef, true, s), *t, vt.dtype);
  } else {
    int a = row_acc(k, -2 - s, vt.dtype, coef, false, s);
    *t = new_temp(k, vt.dtype, "a%d", a);
  }
  return true;
}

static void row_kgen_init(rowgen *rg, kgen *k, planner *p, ry_shape s, const int8_t *rowdim) {
  ryc_buf_free(&k->body);
  memset(k, 0, sizeof *k);
  k->p = p;
  k->g = p->g;
  k->root = -1;
  k->row = rg;
  k->L = s.rank;
  for (int d = 0; d < s.rank; d++) k->loop[d] = s.dims[d];
  memcpy(k->bufs, rg->bufs, sizeof rg->bufs);
  k->n_bufs = rg->n_bufs;
  rg->rowdim = rowdim;
  rg->n_st = 0;
  memset(rg->store, 0, sizeof rg->store);
}

static void row_kgen_done(rowgen *rg, kgen *k) {
  /* row_loads prints neither division terms nor clamps: a member under a
   * pad / concatenate leaves the group */
  for (int a = 0; a < k->n_acc; a++)
    if (k->acc[a].n_nl > 0 || k->acc[a].clamp > 0) {
      k->fail = true;
      k->fail_why = "row kernel: a pad / concatenate (clamped or divided index)";
    }
  /* the kernel computes its members: it never loads one (a reshape of a
   * full member would) */
  for (int i = rg->n_bufs; i < k->n_bufs; i++)
    if (k->p->rows->grp[k->bufs[i]] == rg->gi) {
      k->fail = true;
      k->fail_why = "row kernel: a member read from memory";
    }
  memcpy(rg->bufs, k->bufs, sizeof rg->bufs);
  rg->n_bufs = k->n_bufs;
}

static int out_slot(const rowgen *rg, int32_t v) {
  for (int i = 0; i < rg->n_out; i++)
    if (rg->bufs[i] == v) return i;
  return -1;
}

/* base + row part + inner loops part of access a */
static void row_offset(ryc_buf *b, const kgen *k, const rowgen *rg, int a, const loops *lp) {
  const access *x = &k->acc[a];
  ryc_printf(b, "%" PRId64, x->base);
  for (int d = 0; d < k->L; d++)
    if (rg->rowdim[d] >= 0 && x->coef[d]) ryc_printf(b, " + r%d * %" PRId64, rg->rowdim[d], x->coef[d]);
  for (int j = 0; lp && j < lp->n; j++)
    if (lp->coef[a][j]) ryc_printf(b, " + j%d * %" PRId64, j, lp->coef[a][j]);
}

static void row_loads(ryc_buf *b, const kgen *k, const rowgen *rg, const loops *lp) {
  for (int a = 0; a < k->n_acc; a++) {
    const access *x = &k->acc[a];
    if (rg->store[a]) continue;
    if (x->buf == -1) {
      ryc_printf(b, "      const int64_t a%d = ", a);
      row_offset(b, k, rg, a, lp);
      ryc_printf(b, ";\n");
      continue;
    }
    ryc_buf off = {0}, ref = {0};
    row_offset(&off, k, rg, a, lp);
    if (x->buf <= -2) ryc_printf(&ref, "sc%d[", rg->scl[a]);
    else ryc_printf(&ref, "p%d[", x->buf);
    ryc_append(&ref, &off);
    ryc_printf(&ref, "]");
    ryc_buf_free(&off);
    ryc_printf(b, "      const %s a%d = ", ctype(x->dt), a);
    if (ref.oom) b->oom = true; /* never a truncated or missing offset */
    else ryc_printf(b, x->buf <= -2 ? "%s" : load_fmt(x->dt), ref.s);
    ryc_buf_free(&ref);
    ryc_printf(b, ";\n");
  }
}

static void row_stores(ryc_buf *b, const kgen *k, const rowgen *rg, const loops *lp) {
  for (int i = 0; i < rg->n_st; i++) {
    int a = rg->st[i].acc;
    char tv[32];
    snprintf(tv, sizeof tv, "t%d", rg->st[i].temp);
    if (k->acc[a].buf <= -2) ryc_printf(b, "      sc%d[", rg->scl[a]);
    else ryc_printf(b, "      p%d[", k->acc[a].buf);
    row_offset(b, k, rg, a, lp);
    ryc_printf(b, "] = ");
    ryc_printf(b, k->acc[a].buf <= -2 ? "%s" : store_fmt(rg->st[i].dt), tv);
    ryc_printf(b, ";\n");
  }
}

/* A float max / min with a fast first try: lanes keep the plain larger
 * (smaller) value and a NaN flag; a row with a NaN or a zero result (where
 * -0 and +0 differ) is reduced again with the exact step. */
static bool row_fast_minmax(const ry_graph *g, int32_t v) {
  ry_reduce_kind kind = g->nodes[def_of(g, v)].attrs.reduce.kind;
  return kind == RY_MAX || kind == RY_MIN;
}

/* The loops of a pass over the row. exact < 0: every member of mem, with
 * the stores; exact = i: member i alone with the exact step (the second
 * try of a fast max / min). */
static void row_loops(rowgen *rg, kgen *k, planner *p, ryc_buf *o, const loops *lp, const int32_t *mem, int n_mem,
                      const int *tv, int exact) {
  const ry_graph *g = p->g;
  const char *body = k->body.s ? k->body.s : "";
  if (k->body.oom) o->oom = true;
  bool any_red = false;
  for (int i = 0; i < n_mem; i++) {
    if (p->rows->role[mem[i]] != ROW_RED || (exact >= 0 && i != exact)) continue;
    any_red = true;
    ry_dtype t = ry_vtype(g, mem[i]).dtype;
    ry_reduce_kind kind = g->nodes[def_of(g, mem[i])].attrs.reduce.kind;
    ryc_printf(o, "    %s acc%d[RY_LANES];\n    for (int l = 0; l < RY_LANES; l++) acc%d[l] = (%s)%s;\n", ctype(t), i,
               i, ctype(t), red_identity(kind, t));
    if (exact < 0 && row_fast_minmax(g, mem[i]))
      ryc_printf(o, "    int nan%d[RY_LANES];\n    for (int l = 0; l < RY_LANES; l++) nan%d[l] = 0;\n", i, i);
  }
  ryc_printf(o, "    {\n");
  for (int j = 0; j + 1 < lp->n; j++)
    ryc_printf(o, "    for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
  /* the innermost loop: RY_LANES at a time when reducing, then the tail.
   * `unroll 1` keeps gcc vectorizing the lanes (not the outer loop, which
   * turns each lane into an in-order scalar reduction) */
  for (int part = 0; part < 2; part++) {
    const char *acc_l = "[0]";
    if (lp->n == 0) {
      if (part) break;
      ryc_printf(o, "    {\n     {\n");
    } else if (!any_red) {
      if (part) break;
      int j = lp->n - 1;
      ryc_printf(o, "    for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n     {\n", j, j, lp->size[j], j);
    } else if (part == 0) {
      ryc_printf(o, "    int64_t jv = 0;\n    for (; jv + RY_LANES <= %" PRId64 "; jv += RY_LANES) {\n", lp->size[lp->n - 1]);
      ryc_printf(o, "     _Pragma(\"GCC unroll 1\")\n     for (int l = 0; l < RY_LANES; l++) {\n      const int64_t j%d = jv + l;\n",
                 lp->n - 1);
      acc_l = "[l]";
    } else {
      ryc_printf(o, "    for (; jv < %" PRId64 "; jv++) {\n     {\n      const int64_t j%d = jv;\n", lp->size[lp->n - 1],
                 lp->n - 1);
    }
    row_loads(o, k, rg, lp);
    ryc_printf(o, "%s", body);
    for (int i = 0; i < n_mem; i++) {
      if (p->rows->role[mem[i]] != ROW_RED || (exact >= 0 && i != exact)) continue;
      ry_dtype t = ry_vtype(g, mem[i]).dtype;
      ry_reduce_kind kind = g->nodes[def_of(g, mem[i])].attrs.reduce.kind;
      char acc[32], val[32];
      snprintf(acc, sizeof acc, "acc%d%s", i, acc_l);
      snprintf(val, sizeof val, "t%d", tv[i]);
      if (exact < 0 && row_fast_minmax(g, mem[i])) {
        ryc_printf(o, "      %s = %s %s %s ? %s : %s;\n      nan%d%s |= %s != %s;\n", acc, acc, kind == RY_MAX ? ">" : "<",
                   val, acc, val, i, acc_l, val, val);
        continue;
      }
      ryc_printf(o, "      ");
      red_step(o, kind, t, acc, val);
      ryc_printf(o, "\n");
    }
    if (exact < 0) row_stores(o, k, rg, lp);
    ryc_printf(o, "     }\n    }\n");
  }
  for (int j = 0; j + 1 < lp->n; j++) ryc_printf(o, "    }\n");
  ryc_printf(o, "    }\n");
  for (int i = 0; i < n_mem; i++) {
    int32_t v = mem[i];
    if (p->rows->role[v] != ROW_RED || (exact >= 0 && i != exact)) continue;
    ry_dtype t = ry_vtype(g, v).dtype;
    ry_reduce_kind kind = g->nodes[def_of(g, v)].attrs.reduce.kind;
    char rv[32], al[32];
    snprintf(rv, sizeof rv, "rs%d", (int)v);
    snprintf(al, sizeof al, "acc%d[l]", i);
    ryc_printf(o, "    rs%d = acc%d[0];\n    for (int l = 1; l < RY_LANES; l++) { ", (int)v, i);
    red_step(o, kind, t, rv, al);
    ryc_printf(o, " }\n");
    if (exact < 0 && row_fast_minmax(g, v)) {
      ryc_printf(o, "    int nany%d = 0;\n    for (int l = 0; l < RY_LANES; l++) nany%d |= nan%d[l];\n", i, i, i);
      ryc_printf(o, "    if (nany%d || rs%d == 0) {\n", i, (int)v);
      row_loops(rg, k, p, o, lp, mem, n_mem, tv, i);
      ryc_printf(o, "    }\n");
    }
    rg->done[v] = 1;
  }
}

/* One pass over the row: the reductions among mem (RY_LANES partial sums
 * each) and the full outputs, over loop shape s. */
static bool row_pass(rowgen *rg, kgen *k, planner *p, ryc_buf *o, const int32_t *mem, int n_mem, ry_shape s,
                     const int8_t *rowdim) {
  const ry_graph *g = p->g;
  row_kgen_init(rg, k, p, s, rowdim);
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  int tv[ROW_MAX_STORES];
  for (int i = 0; i < n_mem && !k->fail; i++) {
    int32_t v = mem[i];
    if (p->rows->role[v] == ROW_RED) {
      tv[i] = emit(k, ry_node_operands(g, &g->nodes[def_of(g, v)])[0], &id);
    } else {
      tv[i] = emit(k, v, &id);
      int64_t st[RY_MAX_RANK];
      rowmajor(s, st);
      row_store(k, row_acc(k, out_slot(rg, v), ry_vtype(g, v).dtype, st, true, -1), tv[i], ry_vtype(g, v).dtype);
    }
    row_kgen_done(rg, k);
    if (k->fail && rg->fail_v < 0) rg->fail_v = v;
  }
  row_kgen_done(rg, k);
  if (k->fail || k->body.oom) return false;
  int order[RY_MAX_RANK], no = 0;
  for (int d = 0; d < k->L; d++)
    if (rowdim[d] < 0) order[no++] = d;
  int64_t zero[RY_MAX_RANK] = {0};
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  coalesce(k, order, no, NULL, zero, lp);
  ryc_printf(o, "    { /* pass %d */\n", rg->pass);
  row_loops(rg, k, p, o, lp, mem, n_mem, tv, -1);
  ryc_printf(o, "    }\n");
  ry__free(lp, sizeof *lp);
  return true;
}

/* store row scalar v (a local) to its output buffer */
static void row_store_scalar(rowgen *rg, const ry_graph *g, ryc_buf *o, int32_t v) {
  int slot = out_slot(rg, v);
  if (slot < 0) return;
  ry_shape s = ry_vtype(g, v).shape;
  int64_t st[RY_MAX_RANK];
  rowmajor(s, st);
  ryc_printf(o, "    p%d[0", slot);
  for (int d = 0, q = 0; d < s.rank; d++)
    if (s.dims[d] != 1) ryc_printf(o, " + r%d * %" PRId64, q++, st[d]);
  char rv[32];
  snprintf(rv, sizeof rv, "rs%d", (int)v);
  ryc_printf(o, "] = ");
  ryc_printf(o, store_fmt(ry_vtype(g, v).dtype), rv);
  ryc_printf(o, ";\n");
}

/* a row scalar computed from locals and buffers at the row */
static bool row_scalar(rowgen *rg, kgen *k, planner *p, ryc_buf *o, int32_t v) {
  ry_shape s = ry_vtype(p->g, v).shape;
  int8_t rowdim[RY_MAX_RANK];
  row_match(rg->G, s, rowdim);
  row_kgen_init(rg, k, p, s, rowdim);
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  const ry_graph *g = p->g;
  const ry_node *n = &g->nodes[def_of(g, v)];
  int32_t w = ry_node_operands(g, n)[0];
  while (n->op == RY_OP_RESHAPE && p->rows->grp[w] != rg->gi && !p->mat[w] && g->nodes[def_of(g, w)].op == RY_OP_RESHAPE)
    w = ry_node_operands(g, &g->nodes[def_of(g, w)])[0];
  if (n->op == RY_OP_RESHAPE && p->rows->grp[w] == rg->gi && p->rows->role[w] != ROW_FULL) {
    /* a reshape between two row values keeps the order: a copy */
    row_kgen_done(rg, k);
    if (!rg->done[w]) {
      k->fail = true;
      k->fail_why = "row kernel: a row value read before it is computed";
      return false;
    }
    ryc_printf(o, "    rs%d = rs%d;\n", (int)v, (int)w);
    rg->done[v] = 1;
    return true;
  }
  int t = emit_node(k, v, &id);
  row_kgen_done(rg, k);
  if (k->fail && rg->fail_v < 0) rg->fail_v = v;
  if (k->fail || k->body.oom) return false;
  ryc_printf(o, "    {\n");
  row_loads(o, k, rg, NULL);
  ryc_append(o, &k->body);
  ryc_printf(o, "      rs%d = t%d;\n    }\n", (int)v, t);
  rg->done[v] = 1;
  return true;
}

/* The row kernel of group gi as function ryk_<idx>: its text in *out, the
 * buffers it takes (outputs first) in rg. */
static bool gen_row_text(rowgen *rg, kgen *k, planner *p, int idx, const int32_t *lev, ryc_buf *out, int *n_passes) {
  const ry_graph *g = p->g;
  const ry_region *body = &g->regions[0];
  const rowgroup *G = rg->G;
  rowplan *rp = p->rows;
  ryc_buf pb = {0};
  memset(rg->done, 0, (size_t)g->n_values + 1);
  rg->n_bufs = rg->n_out;
  int maxlev = 0;
  for (int32_t kk = 0; kk < body->nodes.n; kk++) {
    const ry_node *n = &g->nodes[body->nodes.v[kk]];
    int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
    if (r >= 0 && rp->grp[r] == rg->gi && lev[r] > maxlev) maxlev = lev[r];
  }
  rg->pass = 0;
  bool ok = true;
  int32_t *mem = ry__malloc(((size_t)body->nodes.n + 1) * sizeof(int32_t));
  bool *taken = ry__calloc((size_t)g->n_values + 1, sizeof(bool));
  if (!mem || !taken) ok = false;
  for (int L = 0; ok && L <= maxlev; L++) {
    /* pass L: reductions and full outputs of level L, one loop per shape */
    for (int32_t kk = 0; ok && L > 0 && kk < body->nodes.n; kk++) {
      const ry_node *n = &g->nodes[body->nodes.v[kk]];
      int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
      if (r < 0 || rp->grp[r] != rg->gi || lev[r] != L || taken[r]) continue;
      int role = rp->role[r];
      if (role == ROW_SCALAR || (role == ROW_FULL && !rp->out[r])) continue;
      ry_shape s = role == ROW_RED ? ry_vtype(g, ry_node_operands(g, n)[0]).shape : ry_vtype(g, r).shape;
      int nm = 0;
      for (int32_t jj = kk; jj < body->nodes.n && nm < ROW_MAX_STORES; jj++) {
        const ry_node *m = &g->nodes[body->nodes.v[jj]];
        int32_t u = m->n_results ? ry_node_results(g, m)[0] : -1;
        if (u < 0 || rp->grp[u] != rg->gi || lev[u] != L || taken[u]) continue;
        int ro = rp->role[u];
        if (ro == ROW_SCALAR || (ro == ROW_FULL && !rp->out[u])) continue;
        ry_shape su = ro == ROW_RED ? ry_vtype(g, ry_node_operands(g, m)[0]).shape : ry_vtype(g, u).shape;
        if (!ry_shape_equal(su, s)) continue;
        mem[nm++] = u;
        taken[u] = true;
      }
      int8_t rowdim[RY_MAX_RANK];
      row_match(G, s, rowdim);
      ok = row_pass(rg, k, p, &pb, mem, nm, s, rowdim);
      rg->pass++;
    }
    for (int32_t kk = 0; ok && kk < body->nodes.n; kk++) {
      const ry_node *n = &g->nodes[body->nodes.v[kk]];
      int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
      if (r >= 0 && rp->grp[r] == rg->gi && lev[r] == L && rp->role[r] == ROW_SCALAR) ok = row_scalar(rg, k, p, &pb, r);
    }
  }
  *n_passes = rg->pass;
  if (ok && !pb.oom) {
    ryc_printf(out, "void ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", idx);
    for (int i = 0; i < rg->n_bufs; i++) {
      ry_dtype t = ry_vtype(g, rg->bufs[i]).dtype;
      const char *c = i >= rg->n_out ? "const " : "";
      ryc_printf(out, "  %s%s *restrict p%d = (%s%s *)b[%d];\n", c, stype(t), i, c, stype(t), i);
    }
    for (int i = 0; i < rg->n_sc; i++)
      if (rg->sc[i].use) ryc_printf(out, "  %s sc%d[%" PRId64 "];\n", ctype(ry_vtype(g, rg->sc[i].v).dtype), i, rg->sc[i].len);
    ryc_printf(out, "  for (int64_t i = lo; i < hi; i++) {\n");
    int64_t st = G->rows;
    for (int q = 0; q < G->rank; q++) {
      st /= G->dims[q];
      ryc_printf(out, "    const int64_t r%d = i / %" PRId64 " %% %" PRId64 ";\n", q, st, G->dims[q]);
    }
    for (int32_t v = 0; v < g->n_values; v++)
      if (rp->grp[v] == rg->gi && rp->role[v] != ROW_FULL)
        ryc_printf(out, "    %s rs%d;\n", ctype(ry_vtype(g, v).dtype), (int)v);
    ryc_append(out, &pb);
    for (int32_t v = 0; v < g->n_values; v++)
      if (rp->grp[v] == rg->gi && rp->role[v] != ROW_FULL) row_store_scalar(rg, g, out, v);
    ryc_printf(out, "  }\n}\n\n");
  }
  if (pb.oom || out->oom) { /* out of memory writing the passes: report that, not a codegen failure to re-plan around */
    ok = false;
    k->fail = false;
  }
  ryc_buf_free(&pb);
  ry__free(mem, ((size_t)body->nodes.n + 1) * sizeof(int32_t));
  ry__free(taken, ((size_t)g->n_values + 1) * sizeof(bool));
  return ok;
}

/* Generate the row kernel of group gi: text, buffers (outputs first) and
 * the numbers for the step and the report. */
static bool gen_row(planner *p, kgen *k, int gi, int idx, ryc_buf *out, rowgen *rg, int *n_passes, int *n_scratch) {
  const ry_graph *g = p->g;
  rowplan *rp = p->rows;
  const ry_region *body = &g->regions[0];
  memset(rg, 0, sizeof *rg);
  rg->fail_v = -1;
  rg->gi = gi;
  rg->G = &rp->groups[gi];
  size_t nv = (size_t)g->n_values + 1;
  rg->done = ry__calloc(nv, 1);
  int32_t *lev = ry__calloc(nv, sizeof(int32_t));
  bool ok = rg->done && lev;
  /* outputs, in node order */
  for (int32_t v = 0; ok && v < g->n_values; v++)
    if (rp->grp[v] == gi && rp->out[v]) {
      if (rg->n_out >= MAX_ACC / 2) {
        ok = false;
        k->fail = true;
        k->fail_why = "row kernel: too many outputs";
      } else {
        rg->bufs[rg->n_out++] = v;
      }
    }
  /* levels */
  for (int32_t kk = 0; ok && kk < body->nodes.n; kk++) {
    const ry_node *n = &g->nodes[body->nodes.v[kk]];
    int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
    if (r < 0 || rp->grp[r] != gi) continue;
    row_leaves(p, n, true, gi);
    if (rp->oom) ok = false;
    int dep = 0;
    for (int i = 0; i < rp->leaf.n; i++) {
      int32_t x = rp->leaf.v[i];
      if (rp->grp[x] == gi && rp->role[x] != ROW_FULL && lev[x] > dep) dep = lev[x];
    }
    lev[r] = rp->role[r] == ROW_SCALAR ? dep : dep + 1;
  }
  rg->trial = true;
  ryc_buf tb = {0};
  ok = ok && gen_row_text(rg, k, p, idx, lev, &tb, n_passes);
  /* scratch rows for the expressions several passes evaluate */
  *n_scratch = 0;
  int64_t bytes = 0;
  for (int i = 0; ok && i < rg->n_sc; i++) {
    ry_type t = ry_vtype(g, rg->sc[i].v);
    int8_t rowdim[RY_MAX_RANK];
    if (row_match(rg->G, t.shape, rowdim) != ROW_FULL) continue;
    int64_t len = 1;
    for (int d = 0; d < t.shape.rank; d++)
      if (rowdim[d] < 0) len *= t.shape.dims[d];
    int64_t sz = len * (int64_t)ry_dtype_size(t.dtype);
    if (rg->sc[i].n_pass < 2 || bytes + sz > ROW_SCRATCH_MAX || (t.dtype != RY_F32 && t.dtype != RY_F64)) continue;
    rg->sc[i].use = true;
    rg->sc[i].len = len;
    bytes += sz;
    (*n_scratch)++;
  }
  if (ok && *n_scratch) {
    rg->trial = false;
    ok = gen_row_text(rg, k, p, idx, lev, out, n_passes);
  } else if (ok) {
    ryc_append(out, &tb);
  }
  ryc_buf_free(&tb);
  ry__free(rg->done, nv);
  rg->done = NULL;
  ry__free(lev, nv * sizeof(int32_t));
  return ok && !out->oom;
}

/* ---- the plan ---- */

static ry_status add_step(ryc_plan *p, int *cap, const ryc_step *s) {
  if (p->n_steps == *cap) {
    int ncap = *cap ? *cap * 2 : 16;
    ryc_step *ns = ry__realloc(p->steps, (size_t)*cap * sizeof *ns, (size_t)ncap * sizeof *ns);
    if (!ns) return ry__oom();
    p->steps = ns;
    *cap = ncap;
  }
  p->steps[p->n_steps++] = *s;
  return NULL;
}

static int32_t *dup_ids(const int32_t *v, int n) {
  int32_t *r = ry__malloc((size_t)(n ? n : 1) * sizeof(int32_t));
  if (r && n) memcpy(r, v, (size_t)n * sizeof(int32_t));
  return r;
}

static void report_value(ryc_buf *rep, const planner *pl, int32_t v) {
  char ts[96];
  ryc_printf(rep, "  boundary %%v%d: %s = %s: materialized: %s%s%s\n", (int)v,
             ry_type_str(ry_vtype(pl->g, v), ts, sizeof ts), ryg_op_table[pl->g->nodes[def_of(pl->g, v)].op].name,
             pl->why[v] ? pl->why[v] : "?", pl->why_op[v] ? " " : "", pl->why_op[v] ? pl->why_op[v] : "");
}

static ry_status row_step(planner *pl, kgen *k, ryc_plan *p, int32_t nid, ryc_buf *src, ryc_buf *rep, ryc_step *st,
                          bool *retry);

static ry_status plan_try(const ry_graph *g, ryc_plan *p, bool *force, bool *norow, bool *retry) {
  memset(p, 0, sizeof *p);
  p->g = g;
  size_t nv = (size_t)g->n_values + 1;
  planner pl = {g,
                ry__calloc(nv, sizeof(bool)),
                ry__calloc(nv, sizeof(char *)),
                ry__calloc(nv, sizeof(char *)),
                ry__calloc(nv, 1),
                ry__calloc(nv, sizeof(int32_t)),
                ry__calloc(nv, sizeof(int32_t)),
                ry__calloc(nv, sizeof(bool)),
                force,
                NULL};
  kgen *k = ry__calloc(1, sizeof *k);
  ryc_buf src = {0}, rep = {0};
  ry_status s = NULL;
  int32_t *lastuse = ry__malloc(nv * sizeof(int32_t));
  /* in-place variants waiting for the liveness analysis: (step, slot, text) */
  typedef struct {
    int step, slot;
    ryc_buf text;
  } ipvar;
  ipvar *ipv = NULL;
  int n_ipv = 0, ipv_cap = 0;
  rowplan rp = {0}; /* before the first goto: `done` frees its arrays */
  if (!pl.mat || !pl.why || !pl.why_op || !pl.cls || !pl.nusers || !pl.cost || !pl.need_flat || !k || !lastuse) {
    s = ry__oom();
    goto done;
  }
  decide(&pl);
  rp.grp = ry__malloc(nv * sizeof(int32_t));
  rp.role = ry__calloc(nv, 1);
  rp.out = ry__calloc(nv, sizeof(bool));
  rp.stamp = ry__calloc(nv, sizeof(int32_t));
  rp.norow = norow;
  pl.rows = &rp;
  if (!rp.grp || !rp.role || !rp.out || !rp.stamp || !row_plan(&pl)) {
    s = ry__oom();
    goto done;
  }
  for (int i = 0; ryc_prelude[i]; i++) ryc_printf(&src, "%s", ryc_prelude[i]);
  ryc_printf(&src, "%s", RYC_PRELUDE_END);
  const ry_region *body = &g->regions[0];
  for (int32_t kk = 0; kk < body->nodes.n && !s; kk++) {
    int32_t nid = body->nodes.v[kk];
    const ry_node *n = &g->nodes[nid];
    int32_t r0 = n->n_results ? ry_node_results(g, n)[0] : 0;
    ryc_step st;
    memset(&st, 0, sizeof st);
    st.node = nid;
    vclass c = n->n_results ? (vclass)pl.cls[r0] : V_INTERP;
    if (n->n_results && rp.grp[r0] >= 0) {
      /* a row kernel runs where its group's last member was */
      if (rp.groups[rp.grp[r0]].last != nid) continue;
      s = row_step(&pl, k, p, nid, &src, &rep, &st, retry);
      if (!s) s = add_step(p, &p->steps_cap, &st);
      if (s) ry__free(st.bufs, (size_t)(st.n_bufs ? st.n_bufs : 1) * sizeof(int32_t));
      continue;
    }
    if (c == V_EW && !pl.mat[r0]) continue; /* fused into its users */
    if (c == V_EW && n->op == RY_OP_CONSTANT) c = V_INTERP;
    if (c == V_EW || c == V_REDUCE) {
      ryc_buf_free(&k->body);
      for (int v = 0; v < k->n_ip; v++) ryc_buf_free(&k->ip_src[v]);
      memset(k, 0, sizeof *k);
      k->p = &pl;
      k->g = g;
      k->root = r0;
      k->n_bufs = 1;
      k->bufs[0] = r0;
      ryc_buf kb = {0};
      int64_t outer = 1, work = 1;
      bool ok = c == V_EW ? gen_ew(k, p->n_kernels, &kb, &outer, &work)
                          : gen_reduce(k, p->n_kernels, &kb, &outer, &work);
      if (ok && !kb.oom) {
        ryc_printf(&src, "%s%s", RYC_SPLIT, kb.s);
        st.kind = RYC_STEP_KERNEL;
        st.kernel = p->n_kernels++;
        st.n_bufs = k->n_bufs;
        st.n_out = 1;
        st.bufs = dup_ids(k->bufs, k->n_bufs);
        st.outer = outer;
        st.work = work;
        if (!st.bufs) s = ry__oom();
        for (int v = 0; !s && v < k->n_ip; v++) {
          if (n_ipv == ipv_cap) {
            int ncap = ipv_cap ? 2 * ipv_cap : 16;
            ipvar *nv2 = ry__realloc(ipv, (size_t)ipv_cap * sizeof *ipv, (size_t)ncap * sizeof *ipv);
            if (!nv2) {
              s = ry__oom();
              break;
            }
            ipv = nv2;
            ipv_cap = ncap;
          }
          ipv[n_ipv].step = p->n_steps;
          ipv[n_ipv].slot = k->ip_slot[v];
          ipv[n_ipv++].text = k->ip_src[v];
          memset(&k->ip_src[v], 0, sizeof k->ip_src[v]);
        }
        char ts[96];
        ryc_printf(&rep, "kernel %d: %%v%d: %s = %s, %d buffers read, loop trip %" PRId64 "\n", st.kernel, (int)r0,
                   ry_type_str(ry_vtype(g, r0), ts, sizeof ts), ryg_op_table[n->op].name, k->n_bufs - 1, outer);
        report_value(&rep, &pl, r0);
      } else {
        /* plan again with this node in the interpreter */
        if (!k->fail) s = ry__oom();
        else {
          force[nid] = true;
          *retry = true;
          s = ry__err(RY_ERR_INTERNAL, "cpu: codegen failed (%s)", k->fail_why ? k->fail_why : "?");
        }
      }
      ryc_buf_free(&kb);
    } else if (c == V_GEMM) {
      st.kind = RYC_STEP_GEMM;
      gemm_plan(g, n, &st.gemm);
      ryc_printf(&rep, "gemm: %%v%d = dot_general batch=%" PRId64 " m=%" PRId64 " n=%" PRId64 " k=%" PRId64
                       " trans_a=%d trans_b=%d\n",
                 (int)r0, st.gemm.batch, st.gemm.m, st.gemm.n, st.gemm.k, st.gemm.trans_a, st.gemm.trans_b);
    } else if (c == V_CONV) {
      st.kind = RYC_STEP_CONV;
      if (!(st.conv = ry__malloc(sizeof *st.conv))) s = ry__oom();
      else {
        ryc_conv_plan(g, n, st.conv, NULL);
        ryc_printf(&rep, "conv: %%v%d = convolution as im2col + gemm: ", (int)r0);
        ryc_conv_describe(st.conv, &rep);
        ryc_printf(&rep, "\n");
      }
    } else {
      st.kind = RYC_STEP_INTERP;
      const char *why = "no code generation for this op/dtype";
      ryc_conv cv;
      if (n->op == RY_OP_CONVOLUTION && !ryc_conv_plan(g, n, &cv, &why) && !why) why = "?";
      ryc_printf(&rep, "interp: %%v%d = %s (%s)\n", (int)r0, ryg_op_table[n->op].name, why);
    }
    if (!s) s = add_step(p, &p->steps_cap, &st);
    if (s) {
      ry__free(st.bufs, (size_t)(st.n_bufs ? st.n_bufs : 1) * sizeof(int32_t));
      ry__free(st.conv, sizeof *st.conv);
    }
  }
  if (s) goto done;
  /* a failed kernel turned its operands into buffers: those must be produced;
   * verify every read value is materialized (params or a step's result) */
  for (int i = 0; i < p->n_steps; i++) {
    const ryc_step *st = &p->steps[i];
    if (st->kind != RYC_STEP_KERNEL) {
      const ry_node *n = &g->nodes[st->node];
      for (int j = 0; j < n->n_operands; j++) {
        int32_t v = ry_node_operands(g, n)[j];
        if (!pl.mat[v] || (pl.cls[v] == V_EW && def_of(g, v) >= 0)) {
          /* materialized by a kernel step? */
          bool produced = pl.cls[v] == V_PARAM;
          for (int q = 0; q < i && !produced; q++) {
            const ryc_step *o = &p->steps[q];
            const ry_node *on = &g->nodes[o->node];
            for (int r = 0; r < on->n_results; r++) produced |= ry_node_results(g, on)[r] == v;
            for (int r = 0; o->kind == RYC_STEP_KERNEL && r < o->n_out; r++) produced |= o->bufs[r] == v;
          }
          if (!produced) {
            s = ry__err(RY_ERR_UNSUPPORTED, "cpu: value %d needed by %s is not computed (codegen fallback)", (int)v,
                        ryg_op_table[n->op].name);
            goto done;
          }
        }
      }
    }
  }
  /* releases: last step reading each value */
  for (size_t v = 0; v < nv; v++) lastuse[v] = -1;
  for (int i = 0; i < p->n_steps; i++) {
    const ryc_step *st = &p->steps[i];
    if (st->kind == RYC_STEP_KERNEL) {
      for (int j = st->n_out; j < st->n_bufs; j++) lastuse[st->bufs[j]] = i;
    } else {
      const ry_node *n = &g->nodes[st->node];
      for (int j = 0; j < n->n_operands; j++) lastuse[ry_node_operands(g, n)[j]] = i;
    }
    const ry_node *n = &g->nodes[st->node];
    for (int r = 0; r < n->n_results; r++) {
      int32_t v = ry_node_results(g, n)[r];
      if (lastuse[v] < 0) lastuse[v] = i; /* unused results die at once */
    }
    for (int r = 0; st->kind == RYC_STEP_KERNEL && r < st->n_out; r++)
      if (lastuse[st->bufs[r]] < 0) lastuse[st->bufs[r]] = i;
  }
  for (int32_t i = 0; i < body->results.n; i++) lastuse[body->results.v[i]] = INT32_MAX;
  for (int32_t i = 0; i < body->params.n; i++)
    if (lastuse[body->params.v[i]] < 0) lastuse[body->params.v[i]] = -1;
  {
    int32_t *cnt = ry__calloc((size_t)p->n_steps + 1, sizeof(int32_t));
    if (!cnt) s = ry__oom();
    for (size_t v = 0; !s && v < nv; v++)
      if (lastuse[v] >= 0 && lastuse[v] < p->n_steps) cnt[lastuse[v]]++;
    for (int i = 0; !s && i < p->n_steps; i++) {
      p->steps[i].release = ry__malloc((size_t)(cnt[i] ? cnt[i] : 1) * sizeof(int32_t));
      if (!p->steps[i].release) {
        s = ry__oom();
        /* ryc_plan_free frees by n_release, which is still 0: free these here */
        for (int j = 0; j < i; j++) {
          ry__free(p->steps[j].release, (size_t)(cnt[j] ? cnt[j] : 1) * sizeof(int32_t));
          p->steps[j].release = NULL;
        }
      }
    }
    for (size_t v = 0; !s && v < nv; v++)
      if (lastuse[v] >= 0 && lastuse[v] < p->n_steps) {
        ryc_step *st = &p->steps[lastuse[v]];
        st->release[st->n_release++] = (int32_t)v;
      }
    ry__free(cnt, ((size_t)p->n_steps + 1) * sizeof(int32_t));
  }
  /* keep the in-place variants whose slot dies at their step: only there can
   * the output take over the input's buffer */
  for (int i = 0; !s && i < n_ipv; i++) {
    ryc_step *st = &p->steps[ipv[i].step];
    int32_t v = st->bufs[ipv[i].slot];
    if (lastuse[v] != ipv[i].step || st->n_inplace >= RYC_MAX_INPLACE) continue;
    st->inplace_slot[st->n_inplace++] = ipv[i].slot;
    ryc_printf(&src, "%s%s", RYC_SPLIT, ipv[i].text.s ? ipv[i].text.s : "");
    ryc_printf(&rep, "kernel %d: may write over %%v%d in place (its last use)\n", st->kernel, (int)v);
  }
  if (src.oom || rep.oom) s = ry__oom();
done:
  for (int i = 0; i < n_ipv; i++) ryc_buf_free(&ipv[i].text);
  ry__free(ipv, (size_t)ipv_cap * sizeof *ipv);
  if (!s) {
    p->mat = pl.mat;
    pl.mat = NULL;
    p->source = src.s;
    p->source_len = src.n;
    p->source_cap = src.cap;
    p->report = rep.s;
    p->report_len = rep.n;
    p->report_cap = rep.cap;
    src.s = NULL;
    rep.s = NULL;
  }
  if (s) {
    ryc_buf_free(&src);
    ryc_buf_free(&rep);
  }
  ry__free(pl.mat, nv * sizeof(bool));
  ry__free(pl.why, nv * sizeof(char *));
  ry__free(pl.why_op, nv * sizeof(char *));
  ry__free(pl.cls, nv);
  ry__free(pl.nusers, nv * sizeof(int32_t));
  ry__free(pl.cost, nv * sizeof(int32_t));
  ry__free(pl.need_flat, nv * sizeof(bool));
  ry__free(rp.grp, nv * sizeof(int32_t));
  ry__free(rp.role, nv);
  ry__free(rp.out, nv * sizeof(bool));
  ry__free(rp.stamp, nv * sizeof(int32_t));
  ry__free(rp.groups, (size_t)rp.cap * sizeof(rowgroup));
  ry__ivec_free(&rp.stack);
  ry__ivec_free(&rp.leaf);
  if (k) {
    ryc_buf_free(&k->body);
    for (int v = 0; v < k->n_ip; v++) ryc_buf_free(&k->ip_src[v]);
  }
  ry__free(k, sizeof *k);
  ry__free(lastuse, nv * sizeof(int32_t));
  if (s) ryc_plan_free(p);
  return s;
}

/* The step of the row kernel whose group's last member is node nid. A
 * kernel that cannot be generated sends its members back to ordinary
 * kernels (*retry). */
static ry_status row_step(planner *pl, kgen *k, ryc_plan *p, int32_t nid, ryc_buf *src, ryc_buf *rep, ryc_step *st,
                          bool *retry) {
  const ry_graph *g = pl->g;
  rowplan *rp = pl->rows;
  int gi = rp->grp[ry_node_results(g, &g->nodes[nid])[0]];
  const rowgroup *G = &rp->groups[gi];
  rowgen *rg = ry__calloc(1, sizeof *rg);
  if (!rg) return ry__oom();
  ryc_buf kb = {0};
  int n_passes = 0, n_scratch = 0;
  ry_status s = NULL;
  if (!gen_row(pl, k, gi, p->n_kernels, &kb, rg, &n_passes, &n_scratch) || kb.oom) {
    if (!k->fail) {
      s = ry__oom();
    } else {
      /* plan again without the member that failed (or the whole group) */
      const ry_region *body = &g->regions[0];
      for (int32_t kk = 0; kk < body->nodes.n; kk++) {
        const ry_node *n = &g->nodes[body->nodes.v[kk]];
        int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
        if (r >= 0 && rp->grp[r] == gi && (rg->fail_v < 0 || r == rg->fail_v)) rp->norow[body->nodes.v[kk]] = true;
      }
      *retry = true;
      s = ry__err(RY_ERR_INTERNAL, "cpu: row kernel failed (%s)", k->fail_why ? k->fail_why : "?");
    }
  } else {
    ryc_printf(src, "%s%s", RYC_SPLIT, kb.s);
    st->kind = RYC_STEP_KERNEL;
    st->kernel = p->n_kernels++;
    st->n_bufs = rg->n_bufs;
    st->n_out = rg->n_out;
    st->bufs = dup_ids(rg->bufs, rg->n_bufs);
    st->outer = G->rows;
    st->work = G->rows;
    if (!st->bufs) s = ry__oom();
    ryc_printf(rep, "row kernel %d: %" PRId64 " rows, %d passes, %d scratch rows, %d outputs, %d buffers read\n",
               st->kernel, G->rows, n_passes, n_scratch, rg->n_out, rg->n_bufs - rg->n_out);
    for (int32_t v = 0; v < g->n_values; v++) {
      if (rp->grp[v] != gi) continue;
      static const char *const roles[] = {"", "row value", "full", "reduction"};
      const ry_node *n = &g->nodes[def_of(g, v)];
      int64_t numel = ry_shape_numel(ry_vtype(g, n->op == RY_OP_REDUCE ? ry_node_operands(g, n)[0] : v).shape);
      if (numel > st->work) st->work = numel;
      char ts[96];
      ryc_printf(rep, "  member %%v%d: %s = %s (%s)%s\n", (int)v, ry_type_str(ry_vtype(g, v), ts, sizeof ts),
                 ryg_op_table[n->op].name, roles[rp->role[v]], rp->out[v] ? ", stored" : "");
    }
  }
  ryc_buf_free(&kb);
  ry__free(rg, sizeof *rg);
  return s;
}

void ryc_plan_free(ryc_plan *p) {
  for (int i = 0; i < p->n_steps; i++) {
    ry__free(p->steps[i].bufs, (size_t)(p->steps[i].n_bufs ? p->steps[i].n_bufs : 1) * sizeof(int32_t));
    ry__free(p->steps[i].release, (size_t)(p->steps[i].n_release ? p->steps[i].n_release : 1) * sizeof(int32_t));
    ry__free(p->steps[i].conv, sizeof(ryc_conv));
  }
  ry__free(p->steps, (size_t)p->steps_cap * sizeof(ryc_step));
  if (p->mat) ry__free(p->mat, ((size_t)p->g->n_values + 1) * sizeof(bool));
  ry__free(p->source, p->source_cap);
  ry__free(p->report, p->report_cap);
  memset(p, 0, sizeof *p);
}

ry_status ryc_plan_build(const ry_graph *g, ryc_plan *p) {
  size_t fsz = (size_t)g->n_nodes + 1;
  bool *force = ry__calloc(fsz, sizeof(bool)), *norow = ry__calloc(fsz, sizeof(bool));
  ry_status s;
  for (;;) {
    bool retry = false;
    if (!force || !norow) {
      s = ry__oom();
      break;
    }
    s = plan_try(g, p, force, norow, &retry);
    if (!s || !retry) break;
    ry_status_free(s);
  }
  ry__free(force, fsz * sizeof(bool));
  ry__free(norow, fsz * sizeof(bool));
  return s;
}
