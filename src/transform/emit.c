/* Re-tracing: copy nodes and regions of a graph into a builder. */
#include "transform.h"

typedef struct {
  const ry_graph *g;
  int32_t r;
} region_src;

static int inline_region_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx);

static int copy_region_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const region_src *src = ctx;
  int n = ryt_inline_region(b, src->g, src->r, in, out);
  return ryb_ok(b) ? n : 0;
}

/* Copy node n with its regions re-traced by region_fn (plain copy or
 * copy-with-inlining). */
static int copy_node_with(ry_builder *b, const ry_graph *g, const ry_node *n, const ry_value *in, ry_value *out, ry_fn region_fn) {
  if (!ryb_ok(b)) return 0;
  const char *name = ryg_op_table[n->op].name;
  if (n->n_regions > 64 || n->n_results > 64)
    return ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, name, "more than 64 regions or results");
  ry_attrs a;
  if (!ry__attrs_copy(n->op, &a, &n->attrs)) return ryb_fail(b, ry__oom());
  ry_type req[64];
  for (int i = 0; i < n->n_results; i++) req[i] = ry_vtype(g, ry_node_results(g, n)[i]);
  int32_t regions[64];
  const int32_t *srcr = ry_node_regions(g, n);
  for (int k = 0; k < n->n_regions; k++) {
    const ry_region *sr = &g->regions[srcr[k]];
    ry_type *pt = ry__calloc((size_t)sr->params.n + 1, sizeof *pt);
    if (!pt) {
      ry__attrs_free(n->op, &a);
      return ryb_fail(b, ry__oom());
    }
    for (int i = 0; i < sr->params.n; i++) pt[i] = ry_vtype(g, sr->params.v[i]);
    region_src src = {g, srcr[k]};
    int nres;
    int ok = ryb_trace_region(b, n->loc, name, region_fn, &src, sr->params.n, pt, &regions[k], &nres);
    ry__free(pt, ((size_t)sr->params.n + 1) * sizeof *pt);
    if (!ok) {
      ry__attrs_free(n->op, &a);
      return 0;
    }
  }
  return ryb_emit(b, n->loc, n->op, n->n_operands, in, &a, n->n_results, req, n->n_regions, regions, out);
}

int ryt_copy_node(ry_builder *b, const ry_graph *g, const ry_node *n, const ry_value *in, ry_value *out) {
  return copy_node_with(b, g, n, in, out, copy_region_fn);
}

static int inline_impl(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *args, ry_value *out, bool calls);

int ryt_inline_region(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *args, ry_value *out) {
  return inline_impl(b, g, r, args, out, false);
}

ry_value ryt_emit1(ry_builder *b, ry_loc loc, ry_op op, int n, const ry_value *in, ry_attrs *a, const ry_type *req) {
  return ryb_emit1(b, loc, op, n, in, a, req);
}

ry_value ryt_full_like(ry_builder *b, ry_loc loc, ry_type t, double v) {
  ry_value s = ry_scalar_(b, loc, t.dtype, v);
  if (t.shape.rank == 0) return s;
  ry_attrs a;
  memset(&a, 0, sizeof a);
  return ryb_emit1(b, loc, RY_OP_BROADCAST, 1, &s, &a, &t);
}

ry_value ryt_zeros(ry_builder *b, ry_loc loc, ry_type t) { return ryt_full_like(b, loc, t, 0.0); }

/* ---- call inlining ---- */

static int inline_region_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const region_src *src = ctx;
  return inline_impl(b, src->g, src->r, in, out, true);
}

/* Emit region r's nodes with its params bound to args; with `calls`, plain
 * calls are replaced by their bodies, recursively (also inside regions). */
static int inline_impl(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *args, ry_value *out, bool calls) {
  if (!ryb_ok(b)) return 0;
  ry_value *map = ry__calloc((size_t)g->n_values, sizeof *map);
  ry_value *ins = ry__calloc(1024, sizeof *ins);
  ry_value *res = ry__calloc(RY_MAX_OUTPUTS, sizeof *res);
  const ry_region *reg = &g->regions[r];
  int nres = 0;
  if (!map || !ins || !res) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < reg->params.n; i++) map[reg->params.v[i]] = args[i];
  for (int k = 0; k < reg->nodes.n && ryb_ok(b); k++) {
    const ry_node *n = &g->nodes[reg->nodes.v[k]];
    if (n->n_operands > 1024) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, ryg_op_table[n->op].name, "more than 1024 operands");
      break;
    }
    const int32_t *ops = ry_node_operands(g, n);
    for (int i = 0; i < n->n_operands; i++) ins[i] = map[ops[i]];
    int m;
    if (calls && n->op == RY_OP_CALL && ryt_call_is_plain(&n->attrs)) {
      m = inline_impl(b, n->attrs.call.callee, 0, ins, res, true);
    } else if (calls && n->n_regions) {
      m = copy_node_with(b, g, n, ins, res, inline_region_fn);
    } else {
      m = ryt_copy_node(b, g, n, ins, res);
    }
    if (!ryb_ok(b)) break;
    const int32_t *rs = ry_node_results(g, n);
    for (int i = 0; i < m && i < n->n_results; i++) map[rs[i]] = res[i];
  }
  if (ryb_ok(b)) {
    for (int i = 0; i < reg->results.n; i++) out[i] = map[reg->results.v[i]];
    nres = reg->results.n;
  }
done:
  ry__free(map, (size_t)g->n_values * sizeof *map);
  ry__free(ins, 1024 * sizeof *ins);
  ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
  return nres;
}

int ryt_inline_region_all(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *args, ry_value *out) {
  return inline_impl(b, g, r, args, out, true);
}

ry_status ryt_inline_calls(ry_graph *g, ry_graph **out) {
  *out = NULL;
  ry_builder *b = ry_builder_new(g->name);
  if (!b) return ry__oom();
  int n_in = ry_graph_num_inputs(g);
  ry_value *in = ry__calloc((size_t)n_in + 1, sizeof *in);
  ry_value *res = ry__calloc(RY_MAX_OUTPUTS, sizeof *res);
  if (!in || !res) {
    ry_builder_free(b);
    ry__free(in, ((size_t)n_in + 1) * sizeof *in);
    ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
    return ry__oom();
  }
  for (int i = 0; i < n_in; i++) in[i] = ry_input(b, ry_graph_input_name(g, i), ry_graph_input_type(g, i));
  int n = inline_impl(b, g, 0, in, res, true);
  ry_status s = ry_builder_finish(b, ryb_ok(b) ? n : 0, res, out);
  ry__free(in, ((size_t)n_in + 1) * sizeof *in);
  ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
  return s;
}
