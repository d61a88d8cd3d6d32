/* Graph simplification: dead-code elimination and common-subexpression
 * elimination (constants included), by re-emitting the live nodes of the
 * body once each. Nested regions are copied whole. */
#include "transform.h"

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

ry_status ry_simplify(ry_graph *f, ry_graph **out) {
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
  ry_builder *b = ry_builder_new(f->name);
  ry_status s = NULL;
  if (!live || !map || !table || !in || !res || !b) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  for (int i = 0; i < r0->results.n; i++) live[r0->results.v[i]] = true;
  for (int k = r0->nodes.n - 1; k >= 0; k--) {
    const ry_node *n = &f->nodes[r0->nodes.v[k]];
    bool l = false;
    for (int i = 0; i < n->n_results; i++) l |= live[ry_node_results(f, n)[i]];
    if (l)
      for (int i = 0; i < n->n_operands; i++) live[ry_node_operands(f, n)[i]] = true;
  }
  for (int i = 0; i < r0->params.n; i++) map[r0->params.v[i]] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  for (int k = 0; k < r0->nodes.n && ryb_ok(b); k++) {
    int32_t id = r0->nodes.v[k];
    const ry_node *n = &f->nodes[id];
    bool l = false;
    for (int i = 0; i < n->n_results; i++) l |= live[ry_node_results(f, n)[i]];
    if (!l) continue;
    if (n->n_operands > 1024) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, ry_op_table[n->op].name, "too many operands");
      break;
    }
    /* common subexpressions: pure nodes without regions */
    bool cse = n->n_regions == 0 && n->op != RY_OP_CUSTOM_CALL;
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
  return s;
}
