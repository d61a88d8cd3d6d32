/* Graph passes of the cpu backend. Each pass is one walk that rebuilds the
 * graph into a new one:
 *   inline    calls in the body are replaced by the callee's nodes;
 *   simplify  x+0, x*1, x-0, x/1, identity convert/reshape/transpose/
 *             broadcast, select on a constant predicate;
 *   fold      ops whose operands are all small constants run through the
 *             interpreter's kernels at compile time;
 *   cse       identical nodes (op, operands, attributes, types) merge;
 *   dce       nodes whose results nobody uses are dropped.
 * Nested regions (cond/while bodies) are copied as they are. */
#include <math.h>

#include "../interp/interp.h"
#include "passes.h"

enum { P_INLINE = 1, P_SIMPLIFY = 2, P_FOLD = 4, P_CSE = 8, P_DCE = 16 };

#define FOLD_MAX_ELEMS 4096
#define INLINE_MAX_DEPTH 32

typedef struct {
  ry_graph *dst;
  int flags;
  int32_t *cse;      /* open-addressing table of dst node ids, -1 empty */
  int32_t cse_cap, cse_n;
} pctx;

/* ---- copying regions verbatim ---- */

static ry_status copy_region(pctx *c, const ry_graph *src, int32_t r, int32_t *map, int32_t *out_r);

static ry_status copy_node(pctx *c, const ry_graph *src, const ry_node *n, int32_t dr, int32_t *map) {
  int32_t ops_small[16], *ops = ops_small;
  int32_t regs_small[8], *regs = regs_small;
  ry_type types_small[8], *types = types_small;
  size_t ops_size = (size_t)n->n_operands * sizeof(int32_t), regs_size = (size_t)n->n_regions * sizeof(int32_t),
         types_size = (size_t)n->n_results * sizeof(ry_type);
  ry_status s = NULL;
  if (n->n_operands > 16) ops = ry__malloc(ops_size);
  if (n->n_regions > 8) regs = ry__malloc(regs_size);
  if (n->n_results > 8) types = ry__malloc(types_size);
  if (!ops || !regs || !types) {
    s = ry__oom();
    goto done;
  }
  const int32_t *so = ry_node_operands(src, n), *sr = ry_node_results(src, n), *sg = ry_node_regions(src, n);
  for (int i = 0; i < n->n_operands; i++) ops[i] = map[so[i]];
  for (int i = 0; i < n->n_results; i++) types[i] = src->values[sr[i]].type;
  for (int i = 0; i < n->n_regions && !s; i++) s = copy_region(c, src, sg[i], map, &regs[i]);
  if (s) goto done;
  ry_attrs a;
  if (!ry__attrs_copy(n->op, &a, &n->attrs)) {
    s = ry__oom();
    goto done;
  }
  int32_t id = ry__graph_add_node(c->dst, dr, n->op, n->n_operands, ops, n->n_results, types, n->n_regions, regs, &a,
                                  n->loc);
  if (id < 0) {
    ry__attrs_free(n->op, &a);
    s = ry__oom();
    goto done;
  }
  const int32_t *dres = ry_node_results(c->dst, &c->dst->nodes[id]);
  for (int i = 0; i < n->n_results; i++) map[sr[i]] = dres[i];
done:
  if (ops != ops_small) ry__free(ops, ops_size);
  if (regs != regs_small) ry__free(regs, regs_size);
  if (types != types_small) ry__free(types, types_size);
  return s;
}

static ry_status copy_region(pctx *c, const ry_graph *src, int32_t r, int32_t *map, int32_t *out_r) {
  const ry_region *reg = &src->regions[r];
  int32_t dr = ry__graph_add_region(c->dst, -1);
  if (dr < 0) return ry__oom();
  for (int32_t i = 0; i < reg->params.n; i++) {
    int32_t v = reg->params.v[i];
    int32_t nv = ry__graph_add_param(c->dst, dr, src->values[v].type, src->values[v].name);
    if (nv < 0) return ry__oom();
    map[v] = nv;
  }
  for (int32_t k = 0; k < reg->nodes.n; k++) {
    ry_status s = copy_node(c, src, &src->nodes[reg->nodes.v[k]], dr, map);
    if (s) return s;
  }
  for (int32_t i = 0; i < reg->results.n; i++)
    if (!ry__ivec_push(&c->dst->regions[dr].results, map[reg->results.v[i]])) return ry__oom();
  *out_r = dr;
  return NULL;
}

/* ---- helpers on the graph being built ---- */

static const ry_node *def_node(const ry_graph *g, int32_t v) {
  return g->values[v].node >= 0 ? &g->nodes[g->values[v].node] : NULL;
}

static const ry_array *const_of(const ry_graph *g, int32_t v) {
  const ry_node *n = def_node(g, v);
  return n && n->op == RY_OP_CONSTANT ? n->attrs.constant.value : NULL;
}

/* Every element of constant v equals x (as a double, -0 == +0 when !exact_sign). */
static bool const_all(const ry_graph *g, int32_t v, double x) {
  const ry_array *a = const_of(g, v);
  if (!a) return false;
  int64_t n = ry_shape_numel(a->type.shape);
  if (n == 0 || n > FOLD_MAX_ELEMS) return false;
  for (int64_t i = 0; i < n; i++) {
    double e = ry__load_f64(a->type.dtype, a->data, i);
    if (e != x || signbit(e)) return false; /* x - (-0) is not x for x = -0 */
  }
  return true;
}

/* x + 0 for floats is not x when x = -0; only integer adds simplify. */
static int32_t simplify(const ry_graph *g, ry_op op, const int32_t *ops, const ry_type *rt, const ry_attrs *a) {
  ry_type t0 = ops ? g->values[ops[0]].type : rt[0];
  bool same = ops && ry_type_equal(t0, rt[0]);
  bool is_int = ry_dtype_is_int(rt[0].dtype);
  switch (op) {
  case RY_OP_ADD:
    if (is_int && same && const_all(g, ops[1], 0)) return ops[0];
    if (is_int && ry_type_equal(g->values[ops[1]].type, rt[0]) && const_all(g, ops[0], 0)) return ops[1];
    return -1;
  case RY_OP_SUB:
    /* x - (+0) == x also for floats (-0 - 0 = -0) */
    return same && const_all(g, ops[1], 0) ? ops[0] : -1;
  case RY_OP_MUL:
    if (same && const_all(g, ops[1], 1)) return ops[0];
    if (ry_type_equal(g->values[ops[1]].type, rt[0]) && const_all(g, ops[0], 1)) return ops[1];
    return -1;
  case RY_OP_DIV:
    if (same && const_all(g, ops[1], 1)) return ops[0];
    return -1;
  case RY_OP_CONVERT:
  case RY_OP_RESHAPE:
    return same ? ops[0] : -1;
  case RY_OP_TRANSPOSE: {
    if (!same) return -1;
    for (int i = 0; i < a->transpose.perm.n; i++)
      if (a->transpose.perm.v[i] != i) return -1;
    return ops[0];
  }
  case RY_OP_BROADCAST: {
    if (!same) return -1;
    for (int i = 0; i < a->broadcast.dims.n; i++)
      if (a->broadcast.dims.v[i] != i) return -1;
    return ops[0];
  }
  case RY_OP_SELECT: {
    const ry_array *p = const_of(g, ops[0]);
    if (!p || ry_shape_numel(p->type.shape) > FOLD_MAX_ELEMS) return -1;
    int64_t n = ry_shape_numel(p->type.shape);
    if (n == 0) return -1;
    bool all_t = true, all_f = true;
    for (int64_t i = 0; i < n; i++) {
      if (((const uint8_t *)p->data)[i]) all_f = false;
      else all_t = false;
    }
    if (all_t && ry_type_equal(g->values[ops[1]].type, rt[0])) return ops[1];
    if (all_f && ry_type_equal(g->values[ops[2]].type, rt[0])) return ops[2];
    return -1;
  }
  default: return -1;
  }
}

/* ---- CSE table ---- */

static uint64_t node_hash(const ry_graph *g, ry_op op, int n_ops, const int32_t *ops, int n_res, const ry_type *rt) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)op;
  for (int i = 0; i < n_ops; i++) h = (h ^ (uint64_t)ops[i]) * 1099511628211ull;
  for (int i = 0; i < n_res; i++) {
    h = (h ^ (uint64_t)rt[i].dtype) * 1099511628211ull;
    for (int d = 0; d < rt[i].shape.rank; d++) h = (h ^ (uint64_t)rt[i].shape.dims[d]) * 1099511628211ull;
  }
  (void)g;
  return h;
}

static bool cse_ok(ry_op op, int n_regions) {
  return n_regions == 0 && !(ryg_op_table[op].flags & RY_OPF_IMPURE) && op != RY_OP_CALL;
}

static int32_t cse_find(pctx *c, uint64_t h, ry_op op, int n_ops, const int32_t *ops, int n_res, const ry_type *rt,
                        const ry_attrs *a) {
  if (!c->cse_cap) return -1;
  const ry_graph *g = c->dst;
  for (int32_t i = (int32_t)(h % (uint64_t)c->cse_cap);; i = (i + 1) % c->cse_cap) {
    int32_t id = c->cse[i];
    if (id < 0) return -1;
    const ry_node *n = &g->nodes[id];
    if (n->op != op || n->n_operands != n_ops || n->n_results != n_res) continue;
    if (memcmp(ry_node_operands(g, n), ops, (size_t)n_ops * sizeof(int32_t)) != 0) continue;
    bool eq = true;
    for (int k = 0; k < n_res && eq; k++) eq = ry_type_equal(g->values[ry_node_results(g, n)[k]].type, rt[k]);
    if (eq && ry__attrs_equal(op, &n->attrs, a)) return id;
  }
}

static ry_status cse_add(pctx *c, uint64_t h, int32_t id) {
  if ((c->cse_n + 1) * 2 > c->cse_cap) {
    int32_t ncap = c->cse_cap ? c->cse_cap * 2 : 256;
    int32_t *nt = ry__malloc((size_t)ncap * sizeof(int32_t));
    if (!nt) return ry__oom();
    for (int32_t i = 0; i < ncap; i++) nt[i] = -1;
    for (int32_t i = 0; i < c->cse_cap; i++) {
      int32_t old = c->cse[i];
      if (old < 0) continue;
      const ry_node *n = &c->dst->nodes[old];
      ry_type rt[RY_MAX_OUTPUTS > 64 ? 64 : RY_MAX_OUTPUTS];
      int nr = n->n_results < 64 ? n->n_results : 64;
      for (int k = 0; k < nr; k++) rt[k] = c->dst->values[ry_node_results(c->dst, n)[k]].type;
      uint64_t oh = node_hash(c->dst, n->op, n->n_operands, ry_node_operands(c->dst, n), nr, rt);
      int32_t j = (int32_t)(oh % (uint64_t)ncap);
      while (nt[j] >= 0) j = (j + 1) % ncap;
      nt[j] = old;
    }
    ry__free(c->cse, (size_t)c->cse_cap * sizeof(int32_t));
    c->cse = nt;
    c->cse_cap = ncap;
  }
  int32_t j = (int32_t)(h % (uint64_t)c->cse_cap);
  while (c->cse[j] >= 0) j = (j + 1) % c->cse_cap;
  c->cse[j] = id;
  c->cse_n++;
  return NULL;
}

/* ---- constant folding ---- */

static bool foldable(const ry_graph *g, const ry_node *n, const int32_t *ops) {
  if (n->n_operands == 0 || n->n_regions > 0 || n->n_results != 1 || (ryg_op_table[n->op].flags & RY_OPF_IMPURE))
    return false;
  switch (n->op) {
  case RY_OP_CALL: case RY_OP_COND: case RY_OP_WHILE: case RY_OP_CONSTANT: return false;
  default: break;
  }
  if (ryg_op_collective(n->op)) return false;
  if (!ryi_kernels[n->op]) return false;
  for (int i = 0; i < n->n_operands; i++) {
    const ry_array *a = const_of(g, ops[i]);
    if (!a || ry_shape_numel(a->type.shape) > FOLD_MAX_ELEMS) return false;
  }
  return true;
}

/* Run the interpreter kernel of src node n on the constant operands; on
 * success *out is a new array of the result type. Failures just skip folding. */
static bool fold(const ry_graph *src, const ry_node *n, const ry_graph *dst, const int32_t *ops, ry_array **out) {
  const int32_t *res = ry_node_results(src, n);
  int64_t numel = ry_shape_numel(src->values[res[0]].type.shape), biggest = 1;
  if (numel > FOLD_MAX_ELEMS) return false;
  ry_array *in[8];
  if (n->n_operands > 8) return false;
  for (int i = 0; i < n->n_operands; i++) {
    in[i] = (ry_array *)const_of(dst, ops[i]);
    if (ry_shape_numel(in[i]->type.shape) > biggest) biggest = ry_shape_numel(in[i]->type.shape);
  }
  /* never expand data: a broadcast constant stays a literal in the loop */
  if (numel > biggest) return false;
  ryi_frame f = {src, NULL, NULL, NULL};
  ry_array *o[1] = {NULL};
  ry_status s = ryi_kernels[n->op](&f, n, in, o);
  if (s) {
    ry_status_free(s);
    ry_array_release(o[0]);
    return false;
  }
  if (!o[0] || !ry_type_equal(o[0]->type, src->values[res[0]].type)) {
    ry_array_release(o[0]);
    return false;
  }
  *out = o[0];
  return true;
}

/* ---- the main walk over a body ---- */

static ry_status walk_body(pctx *c, const ry_graph *src, const int32_t *args, int depth, const bool *live,
                           int32_t *results_out);

static ry_status walk_node(pctx *c, const ry_graph *src, const ry_node *n, int32_t *map, int depth) {
  const int32_t *so = ry_node_operands(src, n), *sr = ry_node_results(src, n);
  ry_status s = NULL;
  if ((c->flags & P_INLINE) && n->op == RY_OP_CALL && n->attrs.call.callee && depth < INLINE_MAX_DEPTH) {
    const ry_graph *callee = n->attrs.call.callee;
    if (callee->regions[0].params.n == n->n_operands && callee->regions[0].results.n == n->n_results) {
      int32_t args_small[16], *args = args_small, res_small[16], *res = res_small;
      size_t asz = (size_t)n->n_operands * sizeof(int32_t), rsz = (size_t)n->n_results * sizeof(int32_t);
      if (n->n_operands > 16) args = ry__malloc(asz);
      if (n->n_results > 16) res = ry__malloc(rsz);
      if (!args || !res) s = ry__oom();
      for (int i = 0; !s && i < n->n_operands; i++) args[i] = map[so[i]];
      if (!s) s = walk_body(c, callee, args, depth + 1, NULL, res);
      for (int i = 0; !s && i < n->n_results; i++) map[sr[i]] = res[i];
      if (args != args_small) ry__free(args, asz);
      if (res != res_small) ry__free(res, rsz);
      return s;
    }
  }
  if (n->n_regions > 0 || n->n_operands > 64 || n->n_results > 64) return copy_node(c, src, n, 0, map);
  int32_t ops[64];
  ry_type rt[64];
  for (int i = 0; i < n->n_operands; i++) ops[i] = map[so[i]];
  for (int i = 0; i < n->n_results; i++) rt[i] = src->values[sr[i]].type;
  if ((c->flags & P_SIMPLIFY) && n->n_results == 1 && n->n_operands > 0) {
    int32_t v = simplify(c->dst, n->op, ops, rt, &n->attrs);
    if (v >= 0 && ry_type_equal(c->dst->values[v].type, rt[0])) {
      map[sr[0]] = v;
      return NULL;
    }
  }
  ry_array *folded = NULL;
  ry_op op = n->op;
  ry_attrs a;
  int n_ops = n->n_operands;
  if ((c->flags & P_FOLD) && foldable(c->dst, n, ops) && fold(src, n, c->dst, ops, &folded)) {
    op = RY_OP_CONSTANT;
    memset(&a, 0, sizeof a);
    a.constant.value = folded;
    n_ops = 0;
  } else if (!ry__attrs_copy(op, &a, &n->attrs)) {
    return ry__oom();
  }
  uint64_t h = 0;
  bool use_cse = (c->flags & P_CSE) && cse_ok(op, 0);
  if (use_cse) {
    h = node_hash(c->dst, op, n_ops, ops, n->n_results, rt);
    int32_t id = cse_find(c, h, op, n_ops, ops, n->n_results, rt, &a);
    if (id >= 0) {
      ry__attrs_free(op, &a);
      const int32_t *dres = ry_node_results(c->dst, &c->dst->nodes[id]);
      for (int i = 0; i < n->n_results; i++) map[sr[i]] = dres[i];
      return NULL;
    }
  }
  int32_t id = ry__graph_add_node(c->dst, 0, op, n_ops, ops, n->n_results, rt, 0, NULL, &a, n->loc);
  if (id < 0) {
    ry__attrs_free(op, &a);
    return ry__oom();
  }
  const int32_t *dres = ry_node_results(c->dst, &c->dst->nodes[id]);
  for (int i = 0; i < n->n_results; i++) map[sr[i]] = dres[i];
  if (use_cse) s = cse_add(c, h, id);
  return s;
}

/* Walk region 0 of src into region 0 of c->dst with its params bound to
 * args (dst values); the body's results land in results_out. */
static ry_status walk_body(pctx *c, const ry_graph *src, const int32_t *args, int depth, const bool *live,
                           int32_t *results_out) {
  size_t msz = (size_t)src->n_values * sizeof(int32_t);
  int32_t *map = ry__malloc(msz ? msz : 1);
  if (!map) return ry__oom();
  for (int32_t v = 0; v < src->n_values; v++) map[v] = -1;
  const ry_region *reg = &src->regions[0];
  for (int32_t i = 0; i < reg->params.n; i++) map[reg->params.v[i]] = args[i];
  ry_status s = NULL;
  for (int32_t k = 0; k < reg->nodes.n && !s; k++) {
    int32_t nid = reg->nodes.v[k];
    if (live && !live[nid]) continue;
    s = walk_node(c, src, &src->nodes[nid], map, depth);
  }
  for (int32_t i = 0; !s && i < reg->results.n; i++) results_out[i] = map[reg->results.v[i]];
  ry__free(map, msz ? msz : 1);
  return s;
}

static ry_status run_pass(const ry_graph *src, int flags, ry_graph **out) {
  *out = NULL;
  pctx c = {ry__graph_new(src->name), flags, NULL, 0, 0};
  if (!c.dst) return ry__oom();
  bool *live = NULL;
  size_t lsz = (size_t)src->n_nodes * sizeof(bool);
  ry_status s = NULL;
  if (flags & P_DCE) {
    /* mark backwards over region 0: a node lives when a result is used by a
     * live node or is a graph result; custom calls always live */
    live = ry__calloc(1, lsz ? lsz : 1);
    bool *vlive = ry__calloc(1, (size_t)src->n_values + 1);
    if (!live || !vlive) {
      ry__free(live, lsz ? lsz : 1);
      ry__free(vlive, (size_t)src->n_values + 1);
      ry_graph_release(c.dst);
      return ry__oom();
    }
    const ry_region *reg = &src->regions[0];
    for (int32_t i = 0; i < reg->results.n; i++) vlive[reg->results.v[i]] = true;
    for (int32_t k = reg->nodes.n - 1; k >= 0; k--) {
      int32_t nid = reg->nodes.v[k];
      const ry_node *n = &src->nodes[nid];
      bool l = (ryg_op_table[n->op].flags & RY_OPF_IMPURE) != 0;
      for (int i = 0; i < n->n_results && !l; i++) l = vlive[ry_node_results(src, n)[i]];
      if (!l) continue;
      live[nid] = true;
      for (int i = 0; i < n->n_operands; i++) vlive[ry_node_operands(src, n)[i]] = true;
    }
    ry__free(vlive, (size_t)src->n_values + 1);
  }
  const ry_region *reg = &src->regions[0];
  int32_t *args = ry__malloc((size_t)(reg->params.n + 1) * sizeof(int32_t));
  int32_t *res = ry__malloc((size_t)(reg->results.n + 1) * sizeof(int32_t));
  if (!args || !res) s = ry__oom();
  for (int32_t i = 0; !s && i < reg->params.n; i++) {
    int32_t v = reg->params.v[i];
    args[i] = ry__graph_add_param(c.dst, 0, src->values[v].type, src->values[v].name);
    if (args[i] < 0) s = ry__oom();
  }
  if (!s) s = walk_body(&c, src, args, 0, live, res);
  for (int32_t i = 0; !s && i < reg->results.n; i++)
    if (!ry__ivec_push(&c.dst->regions[0].results, res[i])) s = ry__oom();
  ry__free(args, (size_t)(reg->params.n + 1) * sizeof(int32_t));
  ry__free(res, (size_t)(reg->results.n + 1) * sizeof(int32_t));
  ry__free(live, lsz ? lsz : 1);
  ry__free(c.cse, (size_t)c.cse_cap * sizeof(int32_t));
  if (s) {
    ry_graph_release(c.dst);
    return s;
  }
  *out = c.dst;
  return NULL;
}

ry_status ryc_optimize(const ry_graph *g, const ryc_dump *d, ry_graph **out) {
  static const struct {
    int flags;
    const char *name;
  } passes[] = {
      {P_INLINE, "01-inline.ir"},
      {P_SIMPLIFY | P_FOLD | P_CSE, "02-simplify-fold-cse.ir"},
      {P_DCE, "03-dce.ir"},
  };
  ryc_dump_graph(d, "00-input.ir", g);
  ry_graph *cur = ry_graph_retain((ry_graph *)g);
  for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++) {
    ry_graph *next;
    ry_status s = run_pass(cur, passes[i].flags, &next);
    ry_graph_release(cur);
    if (s) return ry__err_prefix(s, "cpu pass %s", passes[i].name);
    cur = next;
    ryc_dump_graph(d, passes[i].name, cur);
  }
  ry_status s = ry_graph_verify(cur);
  if (s) {
    ry_graph_release(cur);
    return ry__err_prefix(s, "cpu: the optimized graph does not verify (a bug in the passes)");
  }
  ry__graph_trim(cur); /* the program keeps it */
  *out = cur;
  return NULL;
}
