/* Graph simplification, by re-emitting the live nodes of the body once each:
 * dead-code elimination, common subexpressions (constants included),
 * constant folding of small results, and peepholes that are exact in IEEE
 * arithmetic: x*1, x/1, x-0, integer x+0, neg(neg x), double converts that
 * widen and come back, reshape/transpose/broadcast chains, and a transpose
 * that only swaps the free dims of its dot_general operand (the shape reverse
 * mode gives weight gradients) becomes the dot_general with its operands
 * swapped, so the product is written in the layout its users read. Nested
 * regions are copied whole. */
#include <math.h>

#include "ryft/runtime.h" /* constant folding evaluates on the reference interpreter, through the public API */
#include "transform.h"

/* The node that defines builder value v, or NULL for a parameter. */
static const ry_node *def(ry_builder *b, ry_value v) {
  int32_t n = b->g->values[v.id].node;
  return n < 0 ? NULL : &b->g->nodes[n];
}

/* Is v a constant (or a broadcast of one) whose every element equals x? */
static bool is_splat(ry_builder *b, ry_value v, double x) {
  const ry_node *n = def(b, v);
  while (n && n->op == RY_OP_BROADCAST) n = def(b, (ry_value){(uint32_t)ry_node_operands(b->g, n)[0]});
  if (!n || n->op != RY_OP_CONSTANT) return false;
  const ry_array *a = n->attrs.constant.value;
  int64_t cnt = ry_array_numel(a);
  if (cnt == 0 || cnt > 4096) return false;
  for (int64_t i = 0; i < cnt; i++) {
    double e = ry_array_get_f64(a, i);
    if (e != x || (x == 0 && signbit(e))) return false;
  }
  return true;
}

static ry_value opnd(ry_builder *b, const ry_node *n, int i) { return (ry_value){(uint32_t)ry_node_operands(b->g, n)[i]}; }

/* transpose(dot_general(a, b), p) == dot_general(b, a) when p keeps the
 * batch dims and moves b's free dims before a's: the same products summed in
 * the same order, so the result is identical. Returns the swapped product or
 * id 0. */
static ry_value transposed_dot(ry_builder *b, const ry_node *d, ry_axes p, ry_dtype dt) {
  const ry_dot_dims *dd = &d->attrs.dot;
  ry_value lhs = opnd(b, d, 0), rhs = opnd(b, d, 1);
  int nb = dd->lhs_batch.n;
  int nl = ry_value_shape(b, lhs).rank - nb - dd->lhs_contract.n;
  int nr = ry_value_shape(b, rhs).rank - nb - dd->rhs_contract.n;
  if (p.n != nb + nl + nr || nl == 0 || nr == 0) return (ry_value){0};
  for (int i = 0; i < p.n; i++) {
    int want = i < nb ? i : i < nb + nr ? nb + nl + (i - nb) : nb + (i - nb - nr);
    if (p.v[i] != want) return (ry_value){0};
  }
  ry_dot_dims sw = {dd->rhs_batch, dd->lhs_batch, dd->rhs_contract, dd->lhs_contract};
  return ry_dot_general_(b, d->loc, rhs, lhs, sw, dt);
}

/* A value that can stand for node n (with mapped operands `in`) without
 * emitting it, or id 0. `uses` counts the uses of each value of f. */
static ry_value peephole(ry_builder *b, const ry_graph *f, const ry_node *n, const ry_value *in, const int32_t *uses) {
  ry_type rt = ry_vtype(f, ry_node_results(f, n)[0]);
  switch (n->op) {
  case RY_OP_MUL:
    if (is_splat(b, in[1], 1)) return in[0];
    if (is_splat(b, in[0], 1)) return in[1];
    break;
  case RY_OP_DIV:
    if (is_splat(b, in[1], 1)) return in[0];
    break;
  case RY_OP_SUB:
    if (is_splat(b, in[1], 0)) return in[0];
    break;
  case RY_OP_ADD: /* for floats -0 + 0 is +0, so only integers */
    if (!ry_dtype_is_float(rt.dtype)) {
      if (is_splat(b, in[1], 0)) return in[0];
      if (is_splat(b, in[0], 0)) return in[1];
    }
    break;
  case RY_OP_NEG: {
    const ry_node *d = def(b, in[0]);
    if (d && d->op == RY_OP_NEG) return opnd(b, d, 0);
    break;
  }
  case RY_OP_RESHAPE: {
    ry_value x = in[0];
    const ry_node *d = def(b, x);
    if (d && d->op == RY_OP_RESHAPE) x = opnd(b, d, 0);
    if (ry_shape_equal(ry_value_shape(b, x), rt.shape)) return x;
    if (x.id != in[0].id) return ry_reshape_(b, n->loc, x, rt.shape);
    break;
  }
  case RY_OP_TRANSPOSE: {
    ry_axes p = n->attrs.transpose.perm;
    ry_value x = in[0];
    const ry_node *d = def(b, x);
    if (d && d->op == RY_OP_TRANSPOSE) { /* transpose(transpose(y, q), p) = transpose(y, q o p) */
      const ry_axes *q = &d->attrs.transpose.perm;
      ry_axes c = p;
      for (int i = 0; i < p.n; i++) c.v[i] = q->v[p.v[i]];
      p = c;
      x = opnd(b, d, 0);
    }
    bool ident = true;
    for (int i = 0; i < p.n; i++) ident &= p.v[i] == i;
    if (ident) return x;
    if (d && d->op == RY_OP_DOT_GENERAL && uses[ry_node_operands(f, n)[0]] == 1) {
      ry_value v = transposed_dot(b, d, p, rt.dtype);
      if (v.id) return v;
    }
    if (x.id != in[0].id) return ry_transpose_(b, n->loc, x, p);
    break;
  }
  case RY_OP_BROADCAST: {
    const ry_node *d = def(b, in[0]);
    if (ry_shape_equal(ry_value_shape(b, in[0]), rt.shape)) {
      bool ident = true;
      for (int i = 0; i < n->attrs.broadcast.dims.n; i++) ident &= n->attrs.broadcast.dims.v[i] == i;
      if (ident) return in[0];
    }
    if (d && d->op == RY_OP_BROADCAST) { /* compose: operand dim i -> outer[inner[i]] */
      const ry_axes *inner = &d->attrs.broadcast.dims, *outer = &n->attrs.broadcast.dims;
      ry_axes c = *inner;
      for (int i = 0; i < inner->n; i++) c.v[i] = outer->v[inner->v[i]];
      return ry_broadcast_in_dim_(b, n->loc, opnd(b, d, 0), rt.shape, c);
    }
    break;
  }
  case RY_OP_CONVERT: {
    /* convert(convert(x: A -> B) -> A) = x when B holds every value of A exactly */
    const ry_node *d = def(b, in[0]);
    if (d && d->op == RY_OP_CONVERT) {
      ry_value x = opnd(b, d, 0);
      ry_dtype a = ry_value_dtype(b, x), mid = ry_value_dtype(b, in[0]);
      bool widen = (a == RY_F32 && mid == RY_F64) || ((a == RY_F16 || a == RY_BF16) && (mid == RY_F32 || mid == RY_F64)) ||
                   (ry_dtype_is_int(a) && ry_dtype_is_int(mid) && ry_dtype_is_signed(a) == ry_dtype_is_signed(mid) &&
                    ry_dtype_size(mid) >= ry_dtype_size(a));
      if (widen && a == rt.dtype) return x;
    }
    break;
  }
  default: break;
  }
  return (ry_value){0};
}

/* Fold a small node whose operands are all constants: evaluate it on the
 * interpreter. Returns the constant, or id 0. */
static ry_value fold(ry_builder *b, const ry_graph *f, const ry_node *n, const ry_value *in) {
  /* a broadcast of a constant stays a broadcast: it is cheaper than a big literal */
  if (n->n_regions || n->n_results != 1 || (ryg_op_table[n->op].flags & RY_OPF_IMPURE) || n->op == RY_OP_CALL || n->op == RY_OP_CONSTANT ||
      n->op == RY_OP_BROADCAST ||
      ryg_op_collective(n->op) ||
      n->n_operands == 0 || n->n_operands > 8)
    return (ry_value){0};
  ry_type rt = ry_vtype(f, ry_node_results(f, n)[0]);
  if (ry_shape_numel(rt.shape) > 64) return (ry_value){0};
  ry_array *args[8] = {0};
  for (int i = 0; i < n->n_operands; i++) {
    const ry_node *d = def(b, in[i]);
    if (!d || d->op != RY_OP_CONSTANT) return (ry_value){0};
    args[i] = d->attrs.constant.value;
  }
  /* a one-node graph, run on the interpreter */
  ry_builder *t = ry_builder_new("fold");
  if (!t) return (ry_value){0};
  ry_value ti[8], r;
  for (int i = 0; i < n->n_operands; i++) ti[i] = ry_input(t, NULL, ry_array_type(args[i]));
  ryt_copy_node(t, f, n, ti, &r);
  ry_graph *g = NULL;
  ry_status s = ry_builder_finish(t, 1, &r, &g);
  ry_device *dev = NULL;
  ry_array *out = NULL;
  if (!s) s = ry_device_get("interp", &dev);
  if (!s) s = ry_run(g, dev, n->n_operands, args, 1, &out);
  ry_graph_release(g);
  ry_value v = {0};
  if (!s) v = ry_constant_(b, n->loc, out);
  ry_status_free(s); /* a node that cannot be folded is simply emitted */
  ry_array_release(out);
  return v;
}

static uint64_t node_hash(const ry_graph *g, const ry_node *n, const ry_value *map) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)n->op;
  for (int i = 0; i < n->n_operands; i++) h = (h ^ map[ry_node_operands(g, n)[i]].id) * 1099511628211ull;
  for (int i = 0; i < n->n_results; i++) {
    ry_type t = ry_vtype(g, ry_node_results(g, n)[i]);
    h = (h ^ (uint64_t)t.dtype) * 1099511628211ull;
    for (int d = 0; d < t.shape.rank; d++) h = (h ^ (uint64_t)t.shape.dims[d]) * 1099511628211ull;
  }
  if (n->op == RY_OP_CONSTANT) {
    const ry_array *a = n->attrs.constant.value;
    const unsigned char *p = ry_array_data(a);
    size_t nb = ry_array_nbytes(a);
    for (size_t i = 0; i < nb && i < 256; i++) h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}

static bool same_node(const ry_graph *g, const ry_node *a, const ry_node *b, const ry_value *map) {
  if (a->op != b->op || a->n_operands != b->n_operands || a->n_results != b->n_results) return false;
  for (int i = 0; i < a->n_operands; i++)
    if (map[ry_node_operands(g, a)[i]].id != map[ry_node_operands(g, b)[i]].id) return false;
  for (int i = 0; i < a->n_results; i++)
    if (!ry_type_equal(ry_vtype(g, ry_node_results(g, a)[i]), ry_vtype(g, ry_node_results(g, b)[i]))) return false;
  return ry__attrs_equal(a->op, &a->attrs, &b->attrs);
}

static ry_status simplify_once(ry_graph *f, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_simplify: out is NULL");
  *out = NULL;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_simplify: the graph is NULL");
  const ry_region *r0 = &f->regions[0];
  bool *live = ry__calloc((size_t)f->n_values, sizeof *live);
  ry_value *map = ry__calloc((size_t)f->n_values, sizeof *map);
  int32_t cap = 16;
  while (cap < 2 * r0->nodes.n + 16) cap *= 2;
  int32_t *table = ry__calloc((size_t)cap, sizeof *table); /* source node index + 1 */
  ry_value *in = ry__calloc(1024, sizeof *in), *res = ry__calloc(RY_MAX_OUTPUTS, sizeof *res);
  int32_t *uses = ry__calloc((size_t)f->n_values, sizeof *uses);
  ry_builder *b = ry_builder_new(f->name);
  ry_status s = NULL;
  if (!live || !map || !table || !in || !res || !uses || !b) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  for (int i = 0; i < r0->results.n; i++) live[r0->results.v[i]] = true, uses[r0->results.v[i]]++;
  for (int k = r0->nodes.n - 1; k >= 0; k--) {
    const ry_node *n = &f->nodes[r0->nodes.v[k]];
    bool l = false;
    for (int i = 0; i < n->n_results; i++) l |= live[ry_node_results(f, n)[i]];
    if (l)
      for (int i = 0; i < n->n_operands; i++) live[ry_node_operands(f, n)[i]] = true, uses[ry_node_operands(f, n)[i]]++;
  }
  for (int i = 0; i < r0->params.n; i++) map[r0->params.v[i]] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  for (int k = 0; k < r0->nodes.n && ryb_ok(b); k++) {
    int32_t id = r0->nodes.v[k];
    const ry_node *n = &f->nodes[id];
    bool l = false;
    for (int i = 0; i < n->n_results; i++) l |= live[ry_node_results(f, n)[i]];
    if (!l) continue;
    if (n->n_operands > 1024) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, ryg_op_table[n->op].name, "too many operands");
      break;
    }
    /* common subexpressions: pure nodes without regions */
    bool cse = n->n_regions == 0 && !(ryg_op_table[n->op].flags & RY_OPF_IMPURE);
    if (cse) {
      uint64_t h = node_hash(f, n, map);
      int32_t slot = (int32_t)(h & (uint64_t)(cap - 1));
      const ry_node *hit = NULL;
      while (table[slot]) {
        const ry_node *o = &f->nodes[table[slot] - 1];
        if (same_node(f, o, n, map)) {
          hit = o;
          break;
        }
        slot = (slot + 1) & (cap - 1);
      }
      if (hit) {
        for (int i = 0; i < n->n_results; i++) map[ry_node_results(f, n)[i]] = map[ry_node_results(f, hit)[i]];
        continue;
      }
      table[slot] = id + 1;
    }
    for (int i = 0; i < n->n_operands; i++) in[i] = map[ry_node_operands(f, n)[i]];
    if (n->n_results == 1 && n->n_regions == 0) {
      ry_value v = peephole(b, f, n, in, uses);
      if (!v.id) v = fold(b, f, n, in);
      if (v.id && ryb_ok(b) && ry_type_equal(ry_value_type(b, v), ry_vtype(f, ry_node_results(f, n)[0]))) {
        map[ry_node_results(f, n)[0]] = v;
        continue;
      }
    }
    int m = ryt_copy_node(b, f, n, in, res);
    for (int i = 0; i < m; i++) map[ry_node_results(f, n)[i]] = res[i];
  }
  for (int i = 0; i < r0->results.n; i++) res[i] = map[r0->results.v[i]];
  s = ry_builder_finish(b, ryb_ok(b) ? r0->results.n : 0, res, out);
done:
  if (live) ry__free(live, (size_t)f->n_values * sizeof *live);
  if (map) ry__free(map, (size_t)f->n_values * sizeof *map);
  if (table) ry__free(table, (size_t)cap * sizeof *table);
  if (in) ry__free(in, 1024 * sizeof *in);
  if (res) ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
  if (uses) ry__free(uses, (size_t)f->n_values * sizeof *uses);
  return s;
}

/* Peepholes and folding can leave nodes dead: repeat until nothing shrinks. */
ry_status ry_simplify(ry_graph *f, ry_graph **out) {
  ry_graph *cur = NULL;
  ry_status s = simplify_once(f, &cur);
  for (int it = 0; !s && it < 4; it++) {
    ry_graph *next = NULL;
    s = simplify_once(cur, &next);
    if (s) break;
    bool done = ry_graph_num_ops(next) >= ry_graph_num_ops(cur);
    ry_graph_release(cur);
    cur = next;
    if (done) break;
  }
  if (s) {
    ry_graph_release(cur);
    cur = NULL;
  }
  *out = cur;
  return s;
}
