/* Batching rules of calls and control flow: custom calls and calls (the
 * callee batched), cond (a batched index becomes a select over every branch's
 * results), while (runs until every lane is done, finished lanes keep their
 * carry) and scan (JAX's rules). */
#include "transform.h"

#include "vmap_internal.h"

/* ---- calls ---- */

void ryt_r_custom_call(ryt_vmap_args *a) {
  ryb_failf(B, L, RY_ERR_UNSUPPORTED, "vmap", "cannot batch custom_call to target \"%s\": custom calls have no batching rule",
            a->n->attrs.custom.target ? a->n->attrs.custom.target : "?");
}
/* g batched over every input and output (axis 0), for a call's graphs. */
static ry_graph *batch_all(ryt_vmap_args *a, ry_graph *g, const char *what) {
  if (!g || !ryb_ok(B)) return NULL;
  ry_graph *v = NULL;
  ry_status s = ry_vmap(g, N, NULL, NULL, &v);
  if (s) ryb_fail(B, ry__err_prefix(s, "vmap of the %s of a call to @%s", what, a->n->attrs.call.callee->name));
  return v;
}
/* A call that transforms do not inline (checkpoint, custom_jvp, custom_vjp,
 * the linear half of a custom_vjp): the same call of the batched graphs,
 * every operand batched. As in JAX, the custom rules are batched with the
 * function, so a derivative of the batched call still uses them. */
void ryt_r_call(ryt_vmap_args *a) {
  const ry_attrs *c = &a->n->attrs;
  int n = a->n->n_operands;
  ry_attrs at;
  memset(&at, 0, sizeof at);
  at.call.remat = c->call.remat;
  at.call.callee = batch_all(a, c->call.callee, "function");
  at.call.jvp = batch_all(a, c->call.jvp, "custom JVP rule");
  at.call.fwd = batch_all(a, c->call.fwd, "custom forward rule");
  at.call.bwd = batch_all(a, c->call.bwd, "custom backward rule");
  ry_value *in = ry__calloc((size_t)n + 1, sizeof *in);
  if (!in) ryb_fail(B, ry__oom());
  for (int i = 0; in && i < n && ryb_ok(B); i++) in[i] = mat(a, i);
  if (!in) { /* ryb_emit owns the attributes from here on, even on failure */
    ry__attrs_free(RY_OP_CALL, &at);
    return;
  }
  ryb_emit(B, L, RY_OP_CALL, n, in, &at, 0, NULL, 0, NULL, a->y);
  for (int j = 0; j < a->n->n_results; j++) a->by[j] = true;
  ry__free(in, ((size_t)n + 1) * sizeof *in);
}

/* ---- control flow ---- */

/* Which results of region r depend on its batched parameters: an upper bound
 * of what the driver batches (every rule batches its results only when an
 * operand is batched). */
static bool dep_region(const ry_graph *g, int32_t r, const bool *pin, bool *pout) {
  bool *d = ry__calloc((size_t)g->n_values, sizeof *d);
  if (!d) return false;
  const ry_region *reg = &g->regions[r];
  for (int i = 0; i < reg->params.n; i++) d[reg->params.v[i]] = pin[i];
  for (int k = 0; k < reg->nodes.n; k++) {
    const ry_node *n = &g->nodes[reg->nodes.v[k]];
    bool any = false;
    for (int i = 0; i < n->n_operands; i++) any |= d[ry_node_operands(g, n)[i]];
    for (int i = 0; i < n->n_results; i++) d[ry_node_results(g, n)[i]] = any;
  }
  for (int i = 0; i < reg->results.n; i++) pout[i] = d[reg->results.v[i]];
  ry__free(d, (size_t)g->n_values * sizeof *d);
  return true;
}

typedef struct {
  const ry_graph *g;
  int32_t r, rcond; /* the region, and for a masked while body the cond region */
  int64_t size;
  const bool *bin;  /* per parameter: batched */
  const bool *bout; /* per result: must be batched */
  int nc;           /* while: number of consts */
} vregion;

/* Batch region r and make results batched where bout says so. */
static int vmap_region_fixed(ry_builder *b, const vregion *v, const ry_value *in, ry_value *out) {
  int n = v->g->regions[v->r].results.n;
  bool *by = ry__calloc((size_t)n + 1, sizeof *by);
  if (!by) return ryb_fail(b, ry__oom());
  int m = ryt_vmap_region(b, v->g, v->r, v->size, in, v->bin, out, by);
  for (int i = 0; ryb_ok(b) && i < m; i++) {
    if (v->bout[i] && !by[i]) out[i] = bcast_batch(b, (ry_loc){0}, out[i], v->size);
    if (!v->bout[i] && by[i]) ryb_failf(b, (ry_loc){0}, RY_ERR_INTERNAL, "vmap", "region result %d is unexpectedly batched", i);
  }
  ry__free(by, ((size_t)n + 1) * sizeof *by);
  return ryb_ok(b) ? m : 0;
}
static int region_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) { return vmap_region_fixed(b, ctx, in, out); }

/* Per lane: does the batched cond index idx pick branch k of nb? (an index
 * out of range picks the last branch) */
static ry_value picks_branch(ryt_vmap_args *a, ry_value idx, int k, int nb) {
  if (T(B, idx).dtype == RY_BOOL) return k ? idx : ry_not_(B, L, idx);
  ry_value p = CMP_EQ(idx, ry_scalar_(B, L, RY_I32, k));
  if (k < nb - 1) return p;
  ry_value ok = ry_and_(B, L, CMP_GE(idx, ry_scalar_(B, L, RY_I32, 0)), CMP_LT(idx, ry_scalar_(B, L, RY_I32, nb)));
  return ry_or_(B, L, p, ry_not_(B, L, ok));
}

/* cond with a batched index: every branch runs and select picks each lane's
 * result (JAX converts to select the same way). As in JAX, a branch sees its
 * float operands through stop_gradient in the lanes that do not pick it, so
 * a derivative taken later stays the picked branch's: a branch that is not
 * finite where it is not taken (sqrt of a negative) cannot make it NaN. */
static void cond_to_select(ryt_vmap_args *a) {
  const ry_graph *g = a->g;
  int nb = a->n->n_regions, nres = a->n->n_results, nargs = a->n->n_operands - 1;
  ry_value *outs = ry__calloc((size_t)nb * (size_t)nres + 1, sizeof *outs);
  ry_value *args = ry__calloc((size_t)nargs + 1, sizeof *args);
  bool *by = ry__calloc((size_t)nres + 1, sizeof *by), *bargs = ry__calloc((size_t)nargs + 1, sizeof *bargs);
  if (!outs || !by || !args || !bargs) {
    ryb_fail(B, ry__oom());
    goto done;
  }
  ry_value idx = X(0);
  for (int k = 0; k < nb && ryb_ok(B); k++) {
    ry_value pick = picks_branch(a, idx, k, nb);
    for (int i = 0; i < nargs; i++) {
      args[i] = X(1 + i), bargs[i] = BX(1 + i);
      if (!ryt_is_float(T(B, args[i]))) continue;
      ry_value v = bargs[i] ? args[i] : bcast_batch(B, L, args[i], N);
      args[i] = ry_select_(B, L, bcast_lead(B, L, pick, T(B, v).shape), v, ry_stop_gradient_(B, L, v));
      bargs[i] = true;
    }
    ry_value *o = outs + (size_t)k * nres;
    ryt_vmap_region(B, g, ry_node_regions(g, a->n)[k], N, args, bargs, o, by);
    for (int j = 0; j < nres && ryb_ok(B); j++)
      if (!by[j]) o[j] = bcast_batch(B, L, o[j], N);
  }
  if (!ryb_ok(B)) goto done;
  for (int j = 0; j < nres; j++) {
    ry_value r = outs[(size_t)(nb - 1) * nres + j];
    ry_shape s = T(B, r).shape;
    for (int k = nb - 2; k >= 0; k--) r = ry_select_(B, L, bcast_lead(B, L, picks_branch(a, idx, k, nb), s), outs[(size_t)k * nres + j], r);
    a->y[j] = r;
    a->by[j] = true;
  }
done:
  ry__free(outs, ((size_t)nb * (size_t)nres + 1) * sizeof *outs);
  ry__free(args, ((size_t)nargs + 1) * sizeof *args);
  ry__free(by, ((size_t)nres + 1) * sizeof *by);
  ry__free(bargs, ((size_t)nargs + 1) * sizeof *bargs);
}

void ryt_r_cond(ryt_vmap_args *a) {
  if (BX(0)) {
    cond_to_select(a);
    return;
  }
  /* unbatched index: a cond whose branches are batched */
  const ry_graph *g = a->g;
  int n = a->n->n_operands, nres = a->n->n_results, nb = a->n->n_regions;
  bool *bres = ry__calloc((size_t)nres + 1, sizeof *bres), *tmp = ry__calloc((size_t)nres + 1, sizeof *tmp);
  ry_type *pt = ry__calloc((size_t)n, sizeof *pt);
  int32_t *regions = ry__calloc((size_t)nb, sizeof *regions);
  if (!bres || !tmp || !pt || !regions) {
    ryb_fail(B, ry__oom());
    goto done;
  }
  for (int k = 0; k < nb; k++) {
    if (!dep_region(g, ry_node_regions(g, a->n)[k], a->bx + 1, tmp)) {
      ryb_fail(B, ry__oom());
      goto done;
    }
    for (int j = 0; j < nres; j++) bres[j] |= tmp[j];
  }
  for (int i = 1; i < n; i++) pt[i - 1] = T(B, X(i));
  for (int k = 0; k < nb; k++) {
    vregion v = {g, ry_node_regions(g, a->n)[k], -1, N, a->bx + 1, bres, 0};
    int nr;
    if (!ryb_trace_region(B, L, "cond (vmap)", region_fn, &v, n - 1, pt, &regions[k], &nr)) goto done;
  }
  if (ryb_emit(B, L, RY_OP_COND, n, a->x, NULL, 0, NULL, nb, regions, a->y))
    for (int j = 0; j < nres; j++) a->by[j] = bres[j];
done:
  ry__free(bres, ((size_t)nres + 1) * sizeof *bres);
  ry__free(tmp, ((size_t)nres + 1) * sizeof *tmp);
  ry__free(pt, (size_t)n * sizeof *pt);
  ry__free(regions, (size_t)nb * sizeof *regions);
}

/* A batched while predicate: the loop runs while any lane runs. */
static int while_any_cond_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const vregion *v = ctx;
  ry_value p;
  bool pb = true;
  vregion c = *v;
  c.bout = &pb;
  if (!vmap_region_fixed(b, &c, in, &p)) return 0;
  ry_attrs at = zattrs();
  at.reduce.kind = RY_OR;
  at.reduce.axes = (ry_axes){1, {0}};
  out[0] = ryb_emit1(b, (ry_loc){0}, RY_OP_REDUCE, 1, &p, &at, NULL);
  return 1;
}
/* ... and a lane whose predicate is false keeps its carry. */
static int while_masked_body_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const vregion *v = ctx;
  ry_value p;
  bool pb = true;
  vregion c = *v;
  c.r = v->rcond;
  c.bout = &pb;
  if (!vmap_region_fixed(b, &c, in, &p)) return 0;
  int m = vmap_region_fixed(b, v, in, out);
  for (int i = 0; ryb_ok(b) && i < m; i++) {
    ry_value old = in[v->nc + i];
    out[i] = ry_select_(b, (ry_loc){0}, bcast_lead(b, (ry_loc){0}, p, ry_value_type(b, old).shape), out[i], old);
  }
  return ryb_ok(b) ? m : 0;
}

void ryt_r_while(ryt_vmap_args *a) {
  const ry_graph *g = a->g;
  int n = a->n->n_operands, nc = (int)a->n->attrs.while_.n_consts, ncarry = n - nc;
  int32_t rc = ry_node_regions(g, a->n)[0], rb = ry_node_regions(g, a->n)[1];
  bool *bin = ry__calloc((size_t)n + 1, sizeof *bin), *tmp = ry__calloc((size_t)n + 1, sizeof *tmp);
  ry_value *ops = ry__calloc((size_t)n + 1, sizeof *ops);
  ry_type *pt = ry__calloc((size_t)n + 1, sizeof *pt);
  if (!bin || !tmp || !ops || !pt) {
    ryb_fail(B, ry__oom());
    goto done;
  }
  for (int i = 0; i < n; i++) bin[i] = BX(i);
  /* the carry is batched where the body makes it batched: iterate to a fixpoint */
  for (bool changed = true; changed;) {
    changed = false;
    if (!dep_region(g, rb, bin, tmp)) { ryb_fail(B, ry__oom()); goto done; }
    for (int i = 0; i < ncarry; i++)
      if (tmp[i] && !bin[nc + i]) bin[nc + i] = changed = true;
  }
  bool pred_b;
  if (!dep_region(g, rc, bin, &pred_b)) { ryb_fail(B, ry__oom()); goto done; }
  if (pred_b)
    for (int i = 0; i < ncarry; i++) bin[nc + i] = true;
  for (int i = 0; i < n; i++) {
    ops[i] = bin[i] && !BX(i) ? bcast_batch(B, L, X(i), N) : X(i);
    pt[i] = T(B, ops[i]);
  }
  bool pfalse = false;
  vregion vc = {g, rc, rc, N, bin, &pfalse, nc};
  vregion vb = {g, rb, rc, N, bin, bin + nc, nc};
  int32_t regions[2];
  int nr;
  if (pred_b) {
    if (!ryb_trace_region(B, L, "while cond (vmap)", while_any_cond_fn, &vc, n, pt, &regions[0], &nr)) goto done;
    if (!ryb_trace_region(B, L, "while body (vmap)", while_masked_body_fn, &vb, n, pt, &regions[1], &nr)) goto done;
  } else {
    if (!ryb_trace_region(B, L, "while cond (vmap)", region_fn, &vc, n, pt, &regions[0], &nr)) goto done;
    if (!ryb_trace_region(B, L, "while body (vmap)", region_fn, &vb, n, pt, &regions[1], &nr)) goto done;
  }
  ry_attrs at = zattrs();
  at.while_.n_consts = nc;
  if (ryb_emit(B, L, RY_OP_WHILE, n, ops, &at, 0, NULL, 2, regions, a->y))
    for (int i = 0; i < ncarry; i++) a->by[i] = bin[nc + i];
done:
  ry__free(bin, ((size_t)n + 1) * sizeof *bin);
  ry__free(tmp, ((size_t)n + 1) * sizeof *tmp);
  ry__free(ops, ((size_t)n + 1) * sizeof *ops);
  ry__free(pt, ((size_t)n + 1) * sizeof *pt);
}

/* scan: batched xs scan over their second axis (the batch stays in front of
 * each slice); the carry is batched where the body makes it so (a
 * fixpoint); stacked ys come out with the batch moved back to axis 0. */
void ryt_r_scan(ryt_vmap_args *a) {
  const ry_graph *g = a->g;
  const ry_attrs *at = &a->n->attrs;
  int n = a->n->n_operands, nc = (int)at->scan.n_consts, ncar = (int)at->scan.n_carry, nres = a->n->n_results;
  int32_t rb = ry_node_regions(g, a->n)[0];
  bool *bin = ry__calloc((size_t)n + 1, sizeof *bin), *bout = ry__calloc((size_t)nres + 1, sizeof *bout);
  ry_value *ops = ry__calloc((size_t)n + 1, sizeof *ops), *res = ry__calloc((size_t)nres + 1, sizeof *res);
  ry_type *pt = ry__calloc((size_t)n + 1, sizeof *pt);
  if (!bin || !bout || !ops || !res || !pt) {
    ryb_fail(B, ry__oom());
    goto done;
  }
  for (int i = 0; i < n; i++) bin[i] = BX(i);
  for (bool changed = true; changed;) {
    changed = false;
    if (!dep_region(g, rb, bin, bout)) {
      ryb_fail(B, ry__oom());
      goto done;
    }
    for (int i = 0; i < ncar; i++)
      if (bout[i] && !bin[nc + i]) bin[nc + i] = changed = true;
  }
  for (int i = 0; i < ncar; i++) bout[i] = bin[nc + i];
  for (int i = 0; i < n; i++) {
    ry_value v = bin[i] && !BX(i) ? bcast_batch(B, L, X(i), N) : X(i);
    if (i >= nc + ncar && bin[i]) v = moveaxis(B, L, v, 0, 1); /* (B, L, ...) -> (L, B, ...) */
    ops[i] = v;
    pt[i] = T(B, v);
    if (i >= nc + ncar) { /* the body sees one slice */
      ry_shape sh = pt[i].shape;
      for (int d = 0; d + 1 < sh.rank; d++) pt[i].shape.dims[d] = sh.dims[d + 1];
      pt[i].shape.dims[sh.rank - 1] = 0;
      pt[i].shape.rank = sh.rank - 1;
    }
  }
  vregion vb = {g, rb, rb, N, bin, bout, nc};
  int32_t region;
  int nr;
  if (!ryb_trace_region(B, L, "scan body (vmap)", region_fn, &vb, n, pt, &region, &nr)) goto done;
  ry_attrs sa = *at;
  if (!ryb_emit(B, L, RY_OP_SCAN, n, ops, &sa, 0, NULL, 1, &region, res)) goto done;
  for (int i = 0; i < nres; i++) {
    a->y[i] = i >= ncar && bout[i] ? moveaxis(B, L, res[i], 1, 0) : res[i];
    a->by[i] = bout[i];
  }
done:
  ry__free(bin, ((size_t)n + 1) * sizeof *bin);
  ry__free(bout, ((size_t)nres + 1) * sizeof *bout);
  ry__free(ops, ((size_t)n + 1) * sizeof *ops);
  ry__free(res, ((size_t)nres + 1) * sizeof *res);
  ry__free(pt, ((size_t)n + 1) * sizeof *pt);
}
