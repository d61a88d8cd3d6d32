/* The verifier: every structural invariant of a graph (ids in range, value
 * back-pointers, SSA dominance inside closed regions, region signatures) and
 * every node's types re-checked against its shape rule. Verifies the graph and,
 * once each, every graph it calls (callees and a call's jvp/fwd/bwd rules). */
#include <stdio.h>

#include "graph.h"

#define MAX_VERIFY_DEPTH 256

typedef struct vctx {
  const ry_graph *g;
  uint8_t *vdef;  /* per value: defined (visible once its region is reached) */
  uint8_t *nseen; /* per node */
  uint8_t *rseen; /* per region */
  ry_status err;
} vctx;

static bool vfail(vctx *c, int32_t node, const char *fmt, ...) RY_PRINTF(3, 4);
static bool vfail(vctx *c, int32_t node, const char *fmt, ...) {
  if (c->err) return false;
  char msg[768], where[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  where[0] = 0;
  if (node >= 0) {
    const ry_node *n = &c->g->nodes[node];
    const char *name = (int)n->op >= 0 && n->op < RY_OP_COUNT ? ryg_op_table[n->op].name : "?";
    if (n->loc.file)
      snprintf(where, sizeof where, "%s (node %d) at %s:%d: ", name, (int)node, n->loc.file, n->loc.line);
    else if (n->loc.line > 0)
      snprintf(where, sizeof where, "%s (node %d) at line %d: ", name, (int)node, n->loc.line);
    else
      snprintf(where, sizeof where, "%s (node %d): ", name, (int)node);
  }
  c->err = ry__err(RY_ERR_VERIFY, "verify @%s: %s%s", c->g->name ? c->g->name : "?", where, msg);
  return false;
}

static bool valid_value(const ry_graph *g, int32_t v) { return v > 0 && v < g->n_values; }

static bool spans_ok(const ry_graph *g, int32_t off, int32_t n) {
  return n >= 0 && off >= 0 && (int64_t)off + n <= g->n_pool;
}

/* A node's list in the pool; NULL when empty (the pool may be NULL then). */
static const int32_t *list_of(const ry_graph *g, int32_t off, int32_t n) { return n ? g->pool + off : NULL; }

static const char *tstr(ry_type t, char *buf, size_t n) { return ry_type_str(t, buf, n); }
#define TS(t) tstr((t), (char[RY_MAX_RANK * 21 + 16]){0}, RY_MAX_RANK * 21 + 16)

/* Operand/result/param type lists compared with an expected list. */
static bool types_match(vctx *c, int32_t node, const char *what, int n, const int32_t *vals, int m, const ry_type *want) {
  if (n != m) return vfail(c, node, "%s has %d values but %d are expected", what, n, m);
  for (int i = 0; i < n; i++) {
    ry_type t = c->g->values[vals[i]].type;
    if (!ry_type_equal(t, want[i]))
      return vfail(c, node, "%s %d has type %s but %s is expected", what, i, TS(t), TS(want[i]));
  }
  return true;
}

static bool walk_region(vctx *c, int32_t r, int depth);

/* Region signatures required by the owning op (checked after the regions
 * themselves were verified). */
static bool check_region_sigs(vctx *c, int32_t id, const ry_type *in, const ry_type *out) {
  const ry_graph *g = c->g;
  const ry_node *n = &g->nodes[id];
  const int32_t *rs = list_of(g, n->regions, n->n_regions);
  if (n->op == RY_OP_COND) {
    if (n->n_operands < 1) return vfail(c, id, "cond has no index operand");
    if (n->n_regions < 1) return vfail(c, id, "cond has no branches");
    for (int32_t b = 0; b < n->n_regions; b++) {
      const ry_region *rg = &g->regions[rs[b]];
      char what[48];
      snprintf(what, sizeof what, "branch %d parameter", (int)b);
      if (!types_match(c, id, what, rg->params.n, rg->params.v, n->n_operands - 1, in + 1)) return false;
      snprintf(what, sizeof what, "branch %d result", (int)b);
      if (!types_match(c, id, what, rg->results.n, rg->results.v, n->n_results, out)) return false;
    }
  } else if (n->op == RY_OP_WHILE) {
    if (n->n_regions != 2) return vfail(c, id, "while has %d regions, not 2 (cond and body)", (int)n->n_regions);
    int64_t nc = n->attrs.while_.n_consts;
    if (nc < 0 || nc > n->n_operands) return vfail(c, id, "n_consts %lld is outside 0..%d", (long long)nc, (int)n->n_operands);
    const ry_region *cr = &g->regions[rs[0]], *br = &g->regions[rs[1]];
    ry_type b0 = {RY_BOOL, {0, {0}}};
    if (!types_match(c, id, "cond parameter", cr->params.n, cr->params.v, n->n_operands, in)) return false;
    if (!types_match(c, id, "body parameter", br->params.n, br->params.v, n->n_operands, in)) return false;
    if (!types_match(c, id, "cond result", cr->results.n, cr->results.v, 1, &b0)) return false;
    if (!types_match(c, id, "body result", br->results.n, br->results.v, n->n_operands - (int)nc, in + nc)) return false;
    if (n->n_results != n->n_operands - nc) return vfail(c, id, "while has %d results but carries %d values", (int)n->n_results, (int)(n->n_operands - nc));
    for (int32_t i = 0; i < n->n_results; i++)
      if (!ry_type_equal(out[i], in[nc + i]))
        return vfail(c, id, "result %d has type %s but the carry has %s", (int)i, TS(out[i]), TS(in[nc + i]));
  } else if (n->op == RY_OP_SCAN) {
    if (n->n_regions != 1) return vfail(c, id, "scan has %d regions, not 1 (body)", (int)n->n_regions);
    /* the body's parameter and result types are the shape rule's business */
  } else if (n->n_regions != 0) {
    return vfail(c, id, "%s takes no regions but has %d", ryg_op_table[n->op].name, (int)n->n_regions);
  }
  if (n->op == RY_OP_CALL) {
    const ry_graph *cal = n->attrs.call.callee;
    if (n->n_operands != ry_graph_num_inputs(cal))
      return vfail(c, id, "@%s takes %d arguments but the call passes %d", cal->name, ry_graph_num_inputs(cal), (int)n->n_operands);
    for (int32_t i = 0; i < n->n_operands; i++)
      if (!ry_type_equal(in[i], ry_graph_input_type(cal, i)))
        return vfail(c, id, "argument %d has type %s but @%s takes %s", (int)i, TS(in[i]), cal->name,
                     TS(ry_graph_input_type(cal, i)));
    if (n->n_results != ry_graph_num_outputs(cal))
      return vfail(c, id, "@%s returns %d values but the call has %d results", cal->name, ry_graph_num_outputs(cal), (int)n->n_results);
    for (int32_t i = 0; i < n->n_results; i++)
      if (!ry_type_equal(out[i], ry_graph_output_type(cal, i)))
        return vfail(c, id, "result %d has type %s but @%s returns %s", (int)i, TS(out[i]), cal->name,
                     TS(ry_graph_output_type(cal, i)));
  }
  return true;
}

static bool check_node(vctx *c, int32_t r, int32_t id, int depth) {
  const ry_graph *g = c->g;
  const ry_node *n = &g->nodes[id];
  if ((int)n->op < 0 || n->op >= RY_OP_COUNT) return vfail(c, -1, "node %d has invalid op id %d", (int)id, (int)n->op);
  if (n->region != r) return vfail(c, id, "the node is listed in region %d but says region %d", (int)r, (int)n->region);
  if (!spans_ok(g, n->operands, n->n_operands) || !spans_ok(g, n->results, n->n_results) ||
      !spans_ok(g, n->regions, n->n_regions))
    return vfail(c, id, "operand, result or region lists are out of bounds");
  /* attributes that must be present */
  ry_attr_kind ak = ryg_op_table[n->op].attrs;
  if (ak == RY_ATTR_CONSTANT && !n->attrs.constant.value) return vfail(c, id, "constant has no value");
  if (ak == RY_ATTR_CALL && !n->attrs.call.callee) return vfail(c, id, "call has no callee");
  if (ak == RY_ATTR_CUSTOM && !n->attrs.custom.target) return vfail(c, id, "custom_call has no target");
  /* operands: defined earlier in this same region */
  const int32_t *ops = list_of(g, n->operands, n->n_operands);
  for (int32_t i = 0; i < n->n_operands; i++) {
    int32_t v = ops[i];
    if (!valid_value(g, v)) return vfail(c, id, "operand %d is an invalid value id %d", (int)i, (int)v);
    if (g->values[v].region != r) {
      if (c->vdef[v])
        return vfail(c, id, "operand %d (value %d) comes from region %d, outside this region %d: regions are closed",
                     (int)i, (int)v, (int)g->values[v].region, (int)r);
      return vfail(c, id, "operand %d (value %d) is defined in another region (%d, not %d)", (int)i, (int)v,
                   (int)g->values[v].region, (int)r);
    }
    if (!c->vdef[v]) return vfail(c, id, "operand %d (value %d) is used before its definition", (int)i, (int)v);
  }
  /* results: back-pointers */
  const int32_t *res = list_of(g, n->results, n->n_results);
  for (int32_t i = 0; i < n->n_results; i++) {
    int32_t v = res[i];
    if (!valid_value(g, v)) return vfail(c, id, "result %d is an invalid value id %d", (int)i, (int)v);
    const ry_valinfo *vi = &g->values[v];
    if (vi->node != id || vi->index != i || vi->region != r || c->vdef[v])
      return vfail(c, id, "result %d (value %d) is defined more than once or its value record disagrees", (int)i, (int)v);
  }
  /* nested regions */
  const int32_t *rs = list_of(g, n->regions, n->n_regions);
  for (int32_t k = 0; k < n->n_regions; k++) {
    int32_t rid = rs[k];
    if (rid <= 0 || rid >= g->n_regions) return vfail(c, id, "region %d is an invalid region id %d", (int)k, (int)rid);
    if (c->rseen[rid] || g->regions[rid].node != id)
      return vfail(c, id, "region %d (id %d) belongs to node %d or is used twice", (int)k, (int)rid, (int)g->regions[rid].node);
    if (depth + 1 > MAX_VERIFY_DEPTH) return vfail(c, id, "regions are nested more than %d deep", MAX_VERIFY_DEPTH);
    if (!walk_region(c, rid, depth + 1)) return false;
  }
  /* types: region signatures and the shape rule */
  int n_in = n->n_operands, cap = ryg_op_table[n->op].n_results < 0 ? RY_MAX_OUTPUTS : 2;
  if (cap < n->n_results) cap = n->n_results;
  if (cap < n_in) cap = n_in;
  if (n->op == RY_OP_CUSTOM_CALL) cap = n->n_results; /* results as written */
  size_t nt = (size_t)(n_in ? n_in : 1) + (size_t)n->n_results + (size_t)(cap ? cap : 1);
  ry_type *in = ry__calloc(nt, sizeof *in);
  if (!in) {
    if (!c->err) c->err = ry__oom();
    return false;
  }
  ry_type *out = in + (n_in ? n_in : 1), *inf = out + n->n_results;
  for (int i = 0; i < n_in; i++) in[i] = g->values[ops[i]].type;
  for (int i = 0; i < n->n_results; i++) inf[i] = out[i] = g->values[res[i]].type;
  bool ok = check_region_sigs(c, id, in, out);
  if (ok) {
    int nr = cap;
    ry_status s = ry__infer(n->op, &n->attrs, n_in, in, g, n->n_regions, rs, inf, &nr, n->loc);
    if (s) {
      if (ry_status_code(s) == RY_ERR_OUT_OF_MEMORY) {
        if (!c->err) c->err = ry__oom();
        ok = false;
      } else {
        ok = vfail(c, id, "%s", ry_status_message(s));
      }
      ry_status_free(s);
    } else if (nr != n->n_results) {
      ok = vfail(c, id, "the op gives %d results but the node has %d", nr, (int)n->n_results);
    } else {
      for (int i = 0; i < nr && ok; i++)
        if (!ry_type_equal(inf[i], out[i]))
          ok = vfail(c, id, "result %d has type %s but the op gives %s", i, TS(out[i]), TS(inf[i]));
    }
  }
  ry__free(in, nt * sizeof *in);
  if (!ok) return false;
  for (int32_t i = 0; i < n->n_results; i++) c->vdef[res[i]] = 1;
  return true;
}

static bool walk_region(vctx *c, int32_t r, int depth) {
  const ry_graph *g = c->g;
  c->rseen[r] = 1;
  const ry_region *rg = &g->regions[r];
  for (int32_t i = 0; i < rg->params.n; i++) {
    int32_t v = rg->params.v[i];
    if (!valid_value(g, v)) return vfail(c, rg->node, "region %d parameter %d is an invalid value id %d", (int)r, (int)i, (int)v);
    const ry_valinfo *vi = &g->values[v];
    if (vi->node != -1 || vi->index != i || vi->region != r || c->vdef[v])
      return vfail(c, rg->node, "region %d parameter %d (value %d) is defined more than once or its value record disagrees",
                   (int)r, (int)i, (int)v);
    c->vdef[v] = 1;
  }
  for (int32_t i = 0; i < rg->nodes.n; i++) {
    int32_t id = rg->nodes.v[i];
    if (id < 0 || id >= g->n_nodes) return vfail(c, rg->node, "region %d lists an invalid node id %d", (int)r, (int)id);
    if (c->nseen[id]) return vfail(c, id, "the node appears twice");
    c->nseen[id] = 1;
    if (!check_node(c, r, id, depth)) return false;
  }
  for (int32_t i = 0; i < rg->results.n; i++) {
    int32_t v = rg->results.v[i];
    int32_t owner = r == 0 ? -1 : rg->node;
    if (!valid_value(g, v)) return vfail(c, owner, "region %d result %d is an invalid value id %d", (int)r, (int)i, (int)v);
    if (g->values[v].region != r || !c->vdef[v])
      return vfail(c, owner, "region %d result %d (value %d) is not defined in that region", (int)r, (int)i, (int)v);
  }
  return true;
}

static ry_status verify_one(const ry_graph *g) {
  if (g->n_values < 1 || g->n_regions < 1 || !g->values || !g->regions || g->n_nodes < 0 || g->n_pool < 0)
    return ry__err(RY_ERR_VERIFY, "verify @%s: the graph has no body", g->name ? g->name : "?");
  if (g->regions[0].node != -1)
    return ry__err(RY_ERR_VERIFY, "verify @%s: region 0 is owned by node %d", g->name ? g->name : "?", (int)g->regions[0].node);
  vctx c = {g, NULL, NULL, NULL, NULL};
  c.vdef = ry__calloc((size_t)g->n_values, 1);
  c.nseen = ry__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), 1);
  c.rseen = ry__calloc((size_t)g->n_regions, 1);
  if (!c.vdef || !c.nseen || !c.rseen) {
    c.err = ry__oom();
  } else if (walk_region(&c, 0, 0)) {
    for (int32_t i = 0; i < g->n_nodes; i++)
      if (!c.nseen[i]) {
        vfail(&c, i, "the node is not in any region reachable from the body");
        break;
      }
  }
  ry__free(c.vdef, (size_t)g->n_values);
  ry__free(c.nseen, (size_t)(g->n_nodes ? g->n_nodes : 1));
  ry__free(c.rseen, (size_t)g->n_regions);
  return c.err;
}

/* A set of graph pointers (open addressing). */
typedef struct gset {
  const ry_graph **k;
  size_t n, cap;
} gset;

static size_t gs_hash(const ry_graph *p) { return (size_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull) >> 20); }

/* Insert g; *added tells whether it was new. false on OOM. */
static bool gs_add(gset *s, const ry_graph *g, bool *added) {
  if (2 * (s->n + 1) > s->cap) {
    size_t nc = s->cap ? 2 * s->cap : 16;
    const ry_graph **nk = ry__calloc(nc, sizeof *nk);
    if (!nk) return false;
    for (size_t i = 0; i < s->cap; i++)
      if (s->k[i]) {
        size_t j = gs_hash(s->k[i]) & (nc - 1);
        while (nk[j]) j = (j + 1) & (nc - 1);
        nk[j] = s->k[i];
      }
    ry__free(s->k, s->cap * sizeof *s->k);
    s->k = nk;
    s->cap = nc;
  }
  size_t j = gs_hash(g) & (s->cap - 1);
  while (s->k[j] && s->k[j] != g) j = (j + 1) & (s->cap - 1);
  *added = !s->k[j];
  if (*added) {
    s->k[j] = g;
    s->n++;
  }
  return true;
}

/* Queue g unless it was seen; false on OOM. */
static bool enqueue(gset *seen, const ry_graph ***work, size_t *nw, size_t *cw, const ry_graph *g) {
  bool added;
  if (!gs_add(seen, g, &added)) return false;
  if (!added) return true;
  if (*nw == *cw) {
    size_t nc = *cw ? 2 * *cw : 16;
    const ry_graph **nwk = ry__realloc(*work, *cw * sizeof **work, nc * sizeof **work);
    if (!nwk) return false;
    *work = nwk;
    *cw = nc;
  }
  (*work)[(*nw)++] = g;
  return true;
}

ry_status ry_graph_verify(const ry_graph *g) {
  if (!g) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_verify: graph is NULL");
  /* worklist over the call graph; every graph is queued once */
  const ry_graph **work = NULL;
  size_t nw = 0, cw = 0;
  gset seen = {0};
  ry_status s = enqueue(&seen, &work, &nw, &cw, g) ? NULL : ry__oom();
  while (!s && nw) {
    const ry_graph *cur = work[--nw];
    s = verify_one(cur);
    for (int32_t i = 0; i < cur->n_nodes && !s; i++) {
      const ry_node *n = &cur->nodes[i];
      if (ryg_op_table[n->op].attrs != RY_ATTR_CALL) continue;
      const ry_graph *fs[4] = {n->attrs.call.callee, n->attrs.call.jvp, n->attrs.call.fwd, n->attrs.call.bwd};
      for (int k = 0; k < 4 && !s; k++)
        if (fs[k] && !enqueue(&seen, &work, &nw, &cw, fs[k])) s = ry__oom();
    }
  }
  ry__free(work, cw * sizeof *work);
  ry__free(seen.k, seen.cap * sizeof *seen.k);
  return s;
}
