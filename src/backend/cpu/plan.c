/* Planning: which values of a body are materialized, decided per value from
 * the op classes the code generator handles, a recomputation cost model and
 * the row-kernel grouping. See fuse.c for the whole design. */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"

/* ---- op classification ---- */

bool ryf_is_f(ry_dtype t) { return ry_dtype_is_float(t) != 0; }

static bool is_view(ry_op op) {
  return op == RY_OP_BROADCAST || op == RY_OP_TRANSPOSE || op == RY_OP_SLICE || op == RY_OP_REVERSE ||
         op == RY_OP_RESHAPE;
}

/* Can codegen compute node n elementwise (or as a view / iota / scalar)? */
bool ryf_ew_ok(const ry_graph *g, const ry_node *n) {
  if (n->n_results != 1) return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_dtype rt = ry_vtype(g, ry_node_results(g, n)[0]).dtype;
  ry_dtype t0 = n->n_operands > 0 ? ry_vtype(g, ops[0]).dtype : rt;
  switch (ryg_op_table[n->op].kind) {
  case RY_KIND_UNARY:
  case RY_KIND_UNARY_PRED:
  case RY_KIND_BINARY:
    return ryf_ew_rule_for(n->op, t0) != NULL; /* ew_rules.c */
  case RY_KIND_COMPARE:
  case RY_KIND_SELECT:
  case RY_KIND_CLAMP:
    return true;
  case RY_KIND_CONVERT:
    if ((rt == RY_F16 || rt == RY_BF16) && !(ryf_is_f(t0) && t0 != RY_F64) && t0 != RY_BOOL && t0 != RY_I8 &&
        t0 != RY_U8 && t0 != RY_I16 && t0 != RY_U16)
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
  if (ryf_is_f(t)) return k == RY_SUM || k == RY_PROD || k == RY_MAX || k == RY_MIN;
  return true;
}

/* dot_general as (batched) GEMM: batch dims lead in order on both sides, the
 * contracting dims are consecutive and in the same order on both sides. */
bool ryf_gemm_plan(const ry_graph *g, const ry_node *n, ryc_gemm *gm) {
  if (n->op != RY_OP_DOT_GENERAL) return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type lt = ry_vtype(g, ops[0]), rt = ry_vtype(g, ops[1]), ot = ry_vtype(g, ry_node_results(g, n)[0]);
  /* bf16 operands (mixed precision) sum in f32 and give f32 or bf16 */
  bool bf = lt.dtype == RY_BF16 && rt.dtype == RY_BF16 && (ot.dtype == RY_F32 || ot.dtype == RY_BF16);
  if (!bf && (lt.dtype != rt.dtype || lt.dtype != ot.dtype || (lt.dtype != RY_F32 && lt.dtype != RY_F64))) return false;
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
  gm->dt = ot.dtype;
  gm->in_dt = lt.dtype;
  return true;
}

bool ryf_gemm_window(const ry_graph *g, int32_t v, int nb, int32_t *src, int64_t *bstride) {
  int32_t dn = g->values[v].node;
  if (dn < 0 || g->nodes[dn].op != RY_OP_SLICE || g->nodes[dn].region != 0) return false;
  const ry_node *s = &g->nodes[dn];
  int32_t x = ry_node_operands(g, s)[0];
  ry_shape xs = ry_vtype(g, x).shape, vs = ry_vtype(g, v).shape;
  if (xs.rank != vs.rank || nb >= xs.rank || s->attrs.slice.start.n != xs.rank || s->attrs.slice.stride.n != xs.rank)
    return false;
  int64_t inner = 1;
  for (int d = 0; d < xs.rank; d++) {
    if (s->attrs.slice.start.v[d] != 0 || s->attrs.slice.stride.v[d] != 1) return false;
    if (d != nb && vs.dims[d] != xs.dims[d]) return false;
    if (d >= nb) inner *= xs.dims[d];
  }
  *src = x;
  *bstride = inner;
  return true;
}

bool ryf_qgemm_plan(const ry_graph *g, const ry_node *n, ryc_qgemm *q, int32_t *blocks) {
  ryc_gemm gm;
  if (n->op != RY_OP_DOT_GENERAL || n->region != 0) return false;
  int32_t rhs = ry_node_operands(g, n)[1], dn = g->values[rhs].node;
  if (dn < 0 || g->nodes[dn].op != RY_OP_DEQUANTIZE || g->nodes[dn].region != 0) return false;
  if (!ryf_gemm_plan(g, n, &gm) || gm.dt != RY_F32 || gm.in_dt != RY_F32 || gm.batch != 1 || gm.trans_a || !gm.trans_b) return false;
  if (ry_vtype(g, rhs).shape.rank != 2) return false;
  q->m = gm.m;
  q->n = gm.n;
  q->k = gm.k;
  q->type = (int)g->nodes[dn].attrs.quant.format;
  q->act8 = g->nodes[dn].attrs.quant.act8;
  *blocks = ry_node_operands(g, &g->nodes[dn])[0];
  return true;
}

/* Is v used, not an output of the program, and read only as operands that
 * `reads(g, u, i)` accepts (operand i of node u), none of them of a node
 * forced to the interpreter? The test of a value a step folds into itself.
 * Returns the number of such uses, 0 for no. */
static int only_read_by(const ry_graph *g, int32_t v, const bool *force, bool (*reads)(const ry_graph *, const ry_node *, int)) {
  const ry_region *body = &g->regions[0];
  for (int32_t i = 0; i < body->results.n; i++)
    if (body->results.v[i] == v) return 0;
  int uses = 0;
  for (int32_t k = 0; k < g->n_nodes; k++) {
    const ry_node *u = &g->nodes[k];
    const int32_t *ops = ry_node_operands(g, u);
    for (int i = 0; i < u->n_operands; i++) {
      if (ops[i] != v) continue;
      if (force[k] || !reads(g, u, i)) return 0;
      uses++;
    }
  }
  return uses;
}

/* the weights of a product by ggml-quantized weights (ryf_qgemm_plan) */
static bool qgemm_reads(const ry_graph *g, const ry_node *u, int i) {
  ryc_qgemm q;
  int32_t blocks;
  return i == 1 && ryf_qgemm_plan(g, u, &q, &blocks);
}

/* either operand of a GEMM of bf16 operands */
static bool bgemm_reads(const ry_graph *g, const ry_node *u, int i) {
  (void)i;
  ryc_gemm gm;
  return u->region == 0 && ryf_gemm_plan(g, u, &gm) && gm.in_dt == RY_BF16;
}

/* A dequantize whose every use is such a product (and not an output) */
static bool qfold_ok(const ry_graph *g, const ry_node *n, const bool *force) {
  return n->op == RY_OP_DEQUANTIZE && n->region == 0 && only_read_by(g, ry_node_results(g, n)[0], force, qgemm_reads) > 0;
}

/* An f32 -> bf16 convert whose one use is an operand of a bf16 GEMM (and not
 * an output): the GEMM rounds its operand as it packs it. A value several
 * GEMMs read (an activation's gradient, a weight read forward and backward)
 * is rounded once instead, by a kernel that its producer's loop may fuse:
 * the products then read half the bytes and convert none. */
static bool bfold_ok(const ry_graph *g, const ry_node *n, const bool *force) {
  if (n->op != RY_OP_CONVERT || n->region != 0) return false;
  int32_t v = ry_node_results(g, n)[0];
  return ry_vtype(g, v).dtype == RY_BF16 && ry_vtype(g, ry_node_operands(g, n)[0]).dtype == RY_F32 &&
         only_read_by(g, v, force, bgemm_reads) == 1;
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


static vclass classify(const ry_graph *g, const ry_node *n, const bool *force) {
  ryc_gemm gm;
  if (force[n - g->nodes]) return V_INTERP;
  if (bfold_ok(g, n, force)) return V_BFOLD; /* before V_EW: a convert is elementwise too */
  if (ryf_ew_ok(g, n)) return V_EW;
  if (qfold_ok(g, n, force)) return V_QFOLD;
  int32_t blocks;
  ryc_qgemm q;
  if (ryf_qgemm_plan(g, n, &q, &blocks)) return V_QGEMM;
  if (reduce_ok(g, n)) return V_REDUCE;
  if (ryf_gemm_plan(g, n, &gm)) return V_GEMM;
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

int32_t ryf_def_of(const ry_graph *g, int32_t v) { return g->values[v].node; }

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

void ryf_decide(planner *p) {
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
      if (c != V_EW && c != V_QFOLD && c != V_BFOLD)
        set_mat(p, res[i], c == V_REDUCE ? "reduction result" : c == V_GEMM || c == V_QGEMM ? "gemm result" : c == V_CONV ? "convolution result" : "interpreter op result", NULL);
    }
    for (int i = 0; i < n->n_operands; i++) {
      p->nusers[ops[i]]++;
      int32_t src;
      int64_t bs;
      if (c == V_GEMM && p->cls[ops[i]] == V_BFOLD) { /* its f32 source, made materialized by the convert */
      } else if (c == V_GEMM && ryf_gemm_window(g, ops[i], n->attrs.dot.lhs_batch.n, &src, &bs))
        set_mat(p, src, "read in windows by", ryg_op_table[n->op].name);
      else if (c == V_GEMM || c == V_INTERP || c == V_CONV || (c == V_QGEMM && i == 0))
        set_mat(p, ops[i], "operand of", ryg_op_table[n->op].name);
      if (c == V_QFOLD) set_mat(p, ops[i], "blocks of", "a quantized matrix product");
      if (c == V_BFOLD) set_mat(p, ops[i], "rounded to bf16 by", "a bf16 matrix product");
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
      int32_t dn = ryf_def_of(g, x);
      if (dn >= 0 && g->nodes[dn].op == RY_OP_RESHAPE) p->need_flat[x] = true;
      else set_mat(p, x, "operand of", "reshape");
    }
    if (n->op == RY_OP_CONCATENATE && !p->mat[r] && n->n_operands > 4)
      set_mat(p, r, "concatenate of many operands (one loop per operand)", NULL);
    if (n->op == RY_OP_BROADCAST && !p->mat[x] && p->cls[x] == V_EW) {
      int32_t dn = ryf_def_of(g, x);
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

/* ---- row kernel groups (see rowkern.c for the design) ---- */


/* Match shape s against G's rows: rowdim[d] = the row dim that dim d is, or
 * -1. ROW_SCALAR when s is the rows (unit dims aside), ROW_FULL when the
 * rows lead and more non-unit dims follow, ROW_NONE otherwise. */
int ryf_row_match(const rowgroup *G, ry_shape s, int8_t rowdim[RY_MAX_RANK]) {
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
void ryf_row_leaves(planner *p, const ry_node *n, bool expr, int through) {
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
                                   : p->cls[x] == V_EW && ryf_def_of(g, x) >= 0);
    if (!look) {
      rp->oom |= !ry__ivec_push(&rp->leaf, x);
      continue;
    }
    const ry_node *xn = &g->nodes[ryf_def_of(g, x)];
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
bool ryf_row_plan(planner *p) {
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
    ryf_row_leaves(p, n, expr, -1);
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
        else role = ryf_row_match(&rp->groups[best], ry_vtype(g, r).shape, rd);
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
      /* a new group: enough rows to share among threads, or short rows (one
         short row too: one kernel instead of a reduction and its users) */
      if (join < 0 && keyed && key.rows >= 1 && (key.rows >= 16 || inner <= 65536)) {
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
