/* The public differentiation API: jvp, vjp, grad, value_and_grad. Reverse
 * mode linearizes with the JVP, copies the primal part, and transposes the
 * part that is linear in the tangents (transpose.c). */
#include "transform.h"

/* f with calls inlined and its JVP traced: inputs (x..., t...), outputs
 * (y..., ty...) with every tangent materialized. */
static ry_status build_jvp(ry_graph *f, ry_graph **out) {
  *out = NULL;
  ry_graph *fi = NULL;
  ry_status s = ryt_inline_calls(f, &fi);
  if (s) return s;
  int n = ry_graph_num_inputs(fi);
  ry_builder *b = ry_builder_new(fi->name);
  ry_value *x = ry__calloc((size_t)2 * n + 1, sizeof *x);
  ry_value *y = ry__calloc(2 * RY_MAX_OUTPUTS, sizeof *y);
  if (!b || !x || !y) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  for (int i = 0; i < n; i++) x[i] = ry_input(b, ry_graph_input_name(fi, i), ry_graph_input_type(fi, i));
  for (int i = 0; i < n; i++) x[n + i] = ry_input(b, NULL, ry_graph_input_type(fi, i));
  int m = ryt_jvp_region(b, fi, 0, x, x + n, y, y + RY_MAX_OUTPUTS);
  if (m > RY_MAX_OUTPUTS / 2) ryb_failf(b, (ry_loc){0}, RY_ERR_UNSUPPORTED, "jvp", "too many outputs");
  ry_value *outs = y;
  if (ryb_ok(b)) {
    for (int i = 0; i < m; i++) outs[m + i] = ryt_materialize(b, (ry_loc){0}, y[RY_MAX_OUTPUTS + i], ry_value_type(b, y[i]));
  }
  s = ry_builder_finish(b, ryb_ok(b) ? 2 * m : 0, outs, out);
done:
  ry__free(x, ((size_t)2 * n + 1) * sizeof *x);
  ry__free(y, 2 * RY_MAX_OUTPUTS * sizeof *y);
  ry_graph_release(fi);
  return s;
}

ry_status ry_jvp(ry_graph *f, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jvp: out is NULL");
  *out = NULL;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jvp: the graph is NULL");
  ry_graph *j = NULL;
  ry_status s = build_jvp(f, &j);
  if (s) return ry__err_prefix(s, "jvp of @%s", f->name);
  s = ry_simplify(j, out);
  ry_graph_release(j);
  return s;
}

/* Mark the values of region r that depend on its linear parameters
 * (param_lin[i] for parameter i) in lin[], which is indexed by value id. */
static void mark_linear(const ry_graph *J, int32_t r, const bool *param_lin, bool *lin) {
  const ry_region *reg = &J->regions[r];
  for (int i = 0; i < reg->params.n; i++) lin[reg->params.v[i]] = param_lin[i];
  for (int k = 0; k < reg->nodes.n; k++) {
    const ry_node *n = &J->nodes[reg->nodes.v[k]];
    bool any = false;
    for (int i = 0; i < n->n_operands; i++) any |= lin[ry_node_operands(J, n)[i]];
    for (int i = 0; i < n->n_results; i++) lin[ry_node_results(J, n)[i]] = any;
  }
}

/* lin[] for J's body whose inputs are (x..., t...): the t's are linear. */
static bool *linear_values(const ry_graph *J, int n_x) {
  bool *lin = ry__calloc((size_t)J->n_values, sizeof *lin);
  bool *pl = ry__calloc((size_t)J->regions[0].params.n + 1, sizeof *pl);
  if (lin && pl) {
    for (int i = n_x; i < J->regions[0].params.n; i++) pl[i] = true;
    mark_linear(J, 0, pl, lin);
  } else if (lin) { /* out of memory: no half-marked table */
    ry__free(lin, (size_t)J->n_values * sizeof *lin);
    lin = NULL;
  }
  ry__free(pl, ((size_t)J->regions[0].params.n + 1) * sizeof *pl);
  return lin;
}

static bool node_is_linear(const ry_graph *J, const bool *lin, const ry_node *n) {
  for (int i = 0; i < n->n_operands; i++)
    if (lin[ry_node_operands(J, n)[i]]) return true;
  return false;
}

/* Copy the primal (non-linear) nodes of region r of J into b; R maps J
 * values to b's. */
static void copy_primal(ry_builder *b, const ry_graph *J, int32_t r, const bool *lin, ry_value *R) {
  const ry_region *reg = &J->regions[r];
  ry_value in[1024], out[1024];
  for (int k = 0; k < reg->nodes.n && ryb_ok(b); k++) {
    const ry_node *n = &J->nodes[reg->nodes.v[k]];
    if (node_is_linear(J, lin, n)) continue;
    if (n->n_operands > 1024 || n->n_results > 1024) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, ryg_op_table[n->op].name, "too many operands");
      return;
    }
    for (int i = 0; i < n->n_operands; i++) in[i] = R[ry_node_operands(J, n)[i]];
    int m = ryt_copy_node(b, J, n, in, out);
    for (int i = 0; i < m; i++) R[ry_node_results(J, n)[i]] = out[i];
  }
}

static void transpose_into(ry_builder *b, const ry_graph *J, int32_t r, bool *lin, const ry_value *R, const ry_value *ct_out,
                           ry_value *ct_in);

/* cond with linear operands: a cond over the same index whose branches are
 * the transposed branches: (primal args..., cotangents...) -> cotangents of
 * the linear args. */
typedef struct {
  const ry_graph *J;
  int32_t r;
  bool *lin;
  const bool *op_lin; /* per cond argument (operands 1..) */
  int nargs, nres;
} tcond;

static int tcond_branch(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const tcond *c = ctx;
  const ry_region *reg = &c->J->regions[c->r];
  ry_value *R = ry__calloc((size_t)c->J->n_values, sizeof *R);
  ry_value cts[256], cin[256];
  if (!R) return ryb_fail(b, ry__oom());
  mark_linear(c->J, c->r, c->op_lin, c->lin);
  int k = 0;
  for (int i = 0; i < c->nargs; i++)
    if (!c->op_lin[i]) R[reg->params.v[i]] = in[k++];
  for (int i = 0; i < c->nres; i++) cts[i] = in[k++];
  copy_primal(b, c->J, c->r, c->lin, R);
  transpose_into(b, c->J, c->r, c->lin, R, cts, cin);
  int m = 0;
  for (int i = 0; i < c->nargs && ryb_ok(b); i++)
    if (c->op_lin[i]) out[m++] = ryt_materialize(b, (ry_loc){0}, cin[i], ry_vtype(c->J, reg->params.v[i]));
  ry__free(R, (size_t)c->J->n_values * sizeof *R);
  return m;
}

static void transpose_cond(ry_builder *b, const ry_graph *J, const ry_node *n, bool *lin, const ry_value *x,
                           const ry_value *cres, ry_value *cin) {
  int nargs = n->n_operands - 1, nres = n->n_results;
  if (nargs > 256 || nres > 256 || n->n_regions > 64) {
    ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, "cond", "too many values to transpose");
    return;
  }
  const int32_t *ops = ry_node_operands(J, n);
  bool op_lin[256];
  ry_value nops[513];
  ry_type pt[512];
  int k = 0;
  nops[k++] = x[0];
  for (int i = 0; i < nargs; i++) {
    op_lin[i] = lin[ops[1 + i]];
    if (!op_lin[i]) nops[k++] = x[1 + i];
  }
  for (int i = 0; i < nres; i++) nops[k++] = cres[i];
  for (int i = 1; i < k; i++) pt[i - 1] = ry_value_type(b, nops[i]);
  int32_t regions[64];
  const int32_t *rs = ry_node_regions(J, n);
  for (int q = 0; q < n->n_regions; q++) {
    tcond c = {J, rs[q], lin, op_lin, nargs, nres};
    int nr;
    if (!ryb_trace_region(b, n->loc, "cond (transpose)", tcond_branch, &c, k - 1, pt, &regions[q], &nr)) return;
  }
  ry_value out[256];
  int m = ryb_emit(b, n->loc, RY_OP_COND, k, nops, NULL, 0, NULL, n->n_regions, regions, out);
  if (!m && !ryb_ok(b)) return;
  int t = 0;
  for (int i = 0; i < nargs; i++)
    if (op_lin[i]) cin[1 + i] = out[t++];
}

/* A graph (non-linear params..., cotangents of G's outputs...) -> cotangents
 * of G's linear params, recomputing G's primal part inside. */
static ry_status transpose_graph(ry_graph *G, const bool *param_lin, ry_graph **out) {
  *out = NULL;
  const ry_region *r0 = &G->regions[0];
  bool *lin = ry__calloc((size_t)G->n_values, sizeof *lin);
  ry_value *R = ry__calloc((size_t)G->n_values, sizeof *R);
  ry_value *cts = ry__calloc((size_t)r0->results.n + 1, sizeof *cts), *cin = ry__calloc((size_t)r0->params.n + 1, sizeof *cin);
  ry_value *outs = ry__calloc((size_t)r0->params.n + 1, sizeof *outs);
  ry_builder *b = ry_builder_new(G->name);
  ry_status s;
  if (!lin || !R || !cts || !cin || !outs || !b) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  mark_linear(G, 0, param_lin, lin);
  for (int i = 0; i < r0->params.n; i++)
    if (!param_lin[i]) R[r0->params.v[i]] = ry_input(b, NULL, ry_vtype(G, r0->params.v[i]));
  for (int i = 0; i < r0->results.n; i++) cts[i] = ry_input(b, NULL, ry_vtype(G, r0->results.v[i]));
  copy_primal(b, G, 0, lin, R);
  transpose_into(b, G, 0, lin, R, cts, cin);
  int k = 0;
  for (int i = 0; i < r0->params.n && ryb_ok(b); i++)
    if (param_lin[i]) outs[k++] = ryt_materialize(b, (ry_loc){0}, cin[i], ry_vtype(G, r0->params.v[i]));
  s = ry_builder_finish(b, ryb_ok(b) ? k : 0, outs, out);
done:
  if (lin) ry__free(lin, (size_t)G->n_values * sizeof *lin);
  if (R) ry__free(R, (size_t)G->n_values * sizeof *R);
  ry__free(cts, ((size_t)r0->results.n + 1) * sizeof *cts);
  ry__free(cin, ((size_t)r0->params.n + 1) * sizeof *cin);
  ry__free(outs, ((size_t)r0->params.n + 1) * sizeof *outs);
  return s;
}

/* Calls in the linear part: the linear half of a custom_vjp (transposed by
 * the user's bwd) or a checkpointed tangent call (transposed by a graph that
 * recomputes the primal values it needs). */
static void transpose_call(ry_builder *b, const ry_graph *J, const ry_node *n, const bool *lin, const ry_value *x,
                           const ry_value *cres, ry_value *cin) {
  const ry_attrs *at = &n->attrs;
  const int32_t *ops = ry_node_operands(J, n);
  int nops = n->n_operands;
  if (nops > 1024) {
    ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, "call", "too many operands");
    return;
  }
  if (at->call.bwd && !at->call.fwd) {
    int nx = ry_graph_num_outputs(at->call.bwd), nres = nops - 2 * nx;
    for (int i = 0; i < nx + nres; i++)
      if (lin[ops[i]]) {
        ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, "custom_vjp", "the primal inputs of a custom_vjp function cannot depend on tangents");
        return;
      }
    ry_value in[1024], ct[1024];
    for (int i = 0; i < nres; i++) in[i] = x[nx + i];
    for (int i = 0; i < n->n_results; i++) in[nres + i] = cres[i];
    if (!ry_call_(b, n->loc, at->call.bwd, nres + n->n_results, in, ct)) return;
    for (int i = 0; i < nx; i++) cin[nx + nres + i] = ct[i];
    return;
  }
  if (!at->call.remat) {
    ryb_failf(b, n->loc, RY_ERR_INTERNAL, "call", "a plain call in the linear part of a program");
    return;
  }
  bool pl[1024];
  ry_value in[2048], ct[1024];
  for (int i = 0; i < nops; i++) pl[i] = lin[ops[i]];
  ry_graph *tg = NULL;
  ry_status s = transpose_graph(at->call.callee, pl, &tg);
  if (s) {
    ryb_fail(b, s);
    return;
  }
  int k = 0;
  for (int i = 0; i < nops; i++)
    if (!pl[i]) in[k++] = x[i];
  for (int i = 0; i < n->n_results; i++) in[k++] = cres[i];
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.call.callee = tg; /* the reference passes to the node */
  a.call.remat = at->call.remat;
  int m = ryb_emit(b, n->loc, RY_OP_CALL, k, in, &a, 0, NULL, 0, NULL, ct);
  if (!m && !ryb_ok(b)) return;
  int t = 0;
  for (int i = 0; i < nops; i++)
    if (pl[i]) cin[i] = ct[t++];
}

/* scan with linear operands: a scan in the other direction over the
 * transposed body. Its carry holds the carry cotangents and the sums of the
 * linear consts' cotangents; it scans the primal xs and the ys' cotangents
 * and stacks the linear xs' cotangents. */
typedef struct {
  const ry_graph *J;
  int32_t r;
  bool *lin;
  const bool *op_lin;
  int nc, ncar, nx, nres;
} tscan;

static int tscan_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const tscan *t = ctx;
  const ry_region *reg = &t->J->regions[t->r];
  int n = t->nc + t->ncar + t->nx;
  ry_value *R = ry__calloc((size_t)t->J->n_values, sizeof *R);
  ry_value cts[512], cin[512], acc[512];
  if (!R) return ryb_fail(b, ry__oom());
  mark_linear(t->J, t->r, t->op_lin, t->lin);
  int k = 0, na = 0;
  for (int i = 0; i < t->nc; i++)
    if (!t->op_lin[i]) R[reg->params.v[i]] = in[k++];
  for (int i = 0; i < t->ncar; i++) cts[i] = in[k++];
  for (int i = 0; i < t->nc; i++)
    if (t->op_lin[i]) acc[na++] = in[k++];
  for (int i = t->nc + t->ncar; i < n; i++)
    if (!t->op_lin[i]) R[reg->params.v[i]] = in[k++];
  for (int i = t->ncar; i < t->nres; i++) cts[i] = in[k++];
  copy_primal(b, t->J, t->r, t->lin, R);
  transpose_into(b, t->J, t->r, t->lin, R, cts, cin);
  int m = 0;
  if (ryb_ok(b)) {
    for (int i = 0; i < t->ncar; i++)
      out[m++] = ryt_materialize(b, (ry_loc){0}, cin[t->nc + i], ry_vtype(t->J, reg->params.v[t->nc + i]));
    int q = 0;
    for (int i = 0; i < t->nc; i++)
      if (t->op_lin[i]) {
        out[m++] = cin[i].id ? ry_add_(b, (ry_loc){0}, acc[q], cin[i]) : acc[q];
        q++;
      }
    for (int i = t->nc + t->ncar; i < n; i++)
      if (t->op_lin[i]) out[m++] = ryt_materialize(b, (ry_loc){0}, cin[i], ry_vtype(t->J, reg->params.v[i]));
  }
  ry__free(R, (size_t)t->J->n_values * sizeof *R);
  return m;
}

static void transpose_scan(ry_builder *b, const ry_graph *J, const ry_node *n, bool *lin, const ry_value *x,
                           const ry_value *cres, ry_value *cin) {
  const ry_attrs *at = &n->attrs;
  int nops = n->n_operands, nc = (int)at->scan.n_consts, ncar = (int)at->scan.n_carry, nx = nops - nc - ncar, nres = n->n_results;
  if (nops > 256 || nres > 256) {
    ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, "scan", "too many values to transpose");
    return;
  }
  const int32_t *ops = ry_node_operands(J, n);
  bool op_lin[256];
  for (int i = 0; i < nops; i++) op_lin[i] = lin[ops[i]];
  /* A scan with linear operands is the tangent scan of j_scan: every carry
   * is a tangent, linear in the body. One whose initial value does not
   * depend on the inputs' tangents (a materialized zero: the carry started
   * as a constant, or came through round) is still transposed as linear; its
   * cotangent has nowhere to go and transpose_into drops it. */
  for (int i = 0; i < ncar; i++) op_lin[nc + i] = true;
  ry_value nops_v[1024];
  ry_type pt[1024];
  int k = 0, nc2, ncar2;
  for (int i = 0; i < nc; i++)
    if (!op_lin[i]) nops_v[k++] = x[i];
  nc2 = k;
  for (int i = 0; i < ncar; i++) nops_v[k++] = cres[i];
  for (int i = 0; i < nc; i++)
    if (op_lin[i]) nops_v[k++] = ryt_zeros(b, n->loc, ry_vtype(J, ops[i]));
  ncar2 = k - nc2;
  for (int i = nc + ncar; i < nops; i++)
    if (!op_lin[i]) nops_v[k++] = x[i];
  for (int i = ncar; i < nres; i++) nops_v[k++] = cres[i];
  for (int i = 0; i < k; i++) {
    pt[i] = ry_value_type(b, nops_v[i]);
    if (i >= nc2 + ncar2) {
      ry_shape sh = pt[i].shape;
      for (int d = 0; d + 1 < sh.rank; d++) pt[i].shape.dims[d] = sh.dims[d + 1];
      pt[i].shape.dims[sh.rank - 1] = 0;
      pt[i].shape.rank = sh.rank - 1;
    }
  }
  tscan t = {J, ry_node_regions(J, n)[0], lin, op_lin, nc, ncar, nx, nres};
  int32_t region;
  int nr;
  if (!ryb_trace_region(b, n->loc, "scan (transpose)", tscan_body, &t, k, pt, &region, &nr)) return;
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.scan.length = at->scan.length;
  a.scan.n_consts = nc2;
  a.scan.n_carry = ncar2;
  a.scan.reverse = !at->scan.reverse;
  ry_value out[1024];
  if (!ryb_emit(b, n->loc, RY_OP_SCAN, k, nops_v, &a, 0, NULL, 1, &region, out)) return;
  int o = 0;
  for (int i = 0; i < ncar; i++) cin[nc + i] = out[o++];
  for (int i = 0; i < nc; i++)
    if (op_lin[i]) cin[i] = out[o++];
  for (int i = nc + ncar; i < nops; i++)
    if (op_lin[i]) cin[i] = out[o++];
}

/* Transpose the linear part of region r of J into b. ct_out: cotangents of
 * the region's results (id 0 = zero); R: builder values of the primal values
 * that linear nodes use. Writes the cotangent of every region parameter to
 * ct_in (id 0 = zero). */
static void transpose_into(ry_builder *b, const ry_graph *J, int32_t r, bool *lin, const ry_value *R, const ry_value *ct_out,
                           ry_value *ct_in) {
  ry_value *ct = ry__calloc((size_t)J->n_values, sizeof *ct);
  if (!ct) {
    ryb_fail(b, ry__oom());
    return;
  }
  const ry_region *reg = &J->regions[r];
  for (int i = 0; i < reg->results.n && ryb_ok(b); i++) {
    int32_t v = reg->results.v[i];
    if (!ct_out[i].id || !lin[v]) continue;
    ct[v] = ct[v].id ? ry_add_(b, (ry_loc){0}, ct[v], ct_out[i]) : ct_out[i];
  }
  bool flags[1024];
  ry_value x[1024], cin[1024], cres[64];
  for (int k = reg->nodes.n - 1; k >= 0 && ryb_ok(b); k--) {
    const ry_node *n = &J->nodes[reg->nodes.v[k]];
    if (!node_is_linear(J, lin, n)) continue;
    const int32_t *res = ry_node_results(J, n), *ops = ry_node_operands(J, n);
    bool any = false;
    for (int i = 0; i < n->n_results; i++) any |= ct[res[i]].id != 0;
    if (!any) continue;
    const char *name = ryg_op_table[n->op].name;
    if (n->op == RY_OP_WHILE) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, name,
                "reverse-mode differentiation of a while loop is not supported: its trip count is unknown "
                "(use forward mode, ry_jvp, as in JAX)");
      break;
    }
    if (n->n_operands > 1024 || n->n_results > 64) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, name, "too many operands");
      break;
    }
    for (int i = 0; i < n->n_results; i++)
      cres[i] = ct[res[i]].id ? ct[res[i]] : ryt_zeros(b, n->loc, ry_vtype(J, res[i]));
    for (int i = 0; i < n->n_operands; i++) {
      flags[i] = lin[ops[i]];
      x[i] = flags[i] ? (ry_value){0} : R[ops[i]];
      cin[i] = (ry_value){0};
    }
    if (n->op == RY_OP_COND) {
      transpose_cond(b, J, n, lin, x, cres, cin);
    } else if (n->op == RY_OP_CALL) {
      transpose_call(b, J, n, lin, x, cres, cin);
    } else if (n->op == RY_OP_SCAN) {
      transpose_scan(b, J, n, lin, x, cres, cin);
    } else {
      ryt_tr_args a = {b, n->loc, J, n, flags, x, cres, cin};
      ryt_transpose_rule(n->op)(&a);
    }
    for (int i = 0; i < n->n_operands && ryb_ok(b); i++) {
      if (!flags[i] || !cin[i].id) continue;
      ct[ops[i]] = ct[ops[i]].id ? ry_add_(b, n->loc, ct[ops[i]], cin[i]) : cin[i];
    }
  }
  for (int i = 0; i < reg->params.n; i++) ct_in[i] = ct[reg->params.v[i]];
  ry__free(ct, (size_t)J->n_values * sizeof *ct);
}

/* ---- grad / value_and_grad ---- */

static ry_status grad_impl(ry_graph *f, const ry_grad_opts *opts, bool with_value, ry_graph **out) {
  const char *api = with_value ? "ry_value_and_grad" : "ry_grad";
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: out is NULL", api);
  *out = NULL;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: the graph is NULL", api);
  int argnum0 = 0;
  ry_grad_opts o = {1, &argnum0, 0};
  if (opts) o = *opts;
  int n_in = ry_graph_num_inputs(f), n_out = ry_graph_num_outputs(f);
  if (o.n_argnums < 1 || o.n_argnums > n_in || !o.argnums)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: need 1..%d argnums for @%s, got %d", api, n_in, f->name, o.n_argnums);
  for (int k = 0; k < o.n_argnums; k++) {
    int a = o.argnums[k];
    if (a < 0 || a >= n_in)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: argnum %d is out of range: @%s has %d inputs", api, a, f->name, n_in);
    ry_type t = ry_graph_input_type(f, a);
    if (!ry_dtype_is_float(t.dtype)) {
      char ts[200];
      return ry__err(RY_ERR_DTYPE, "%s: input %d of @%s has type %s; only float inputs can be differentiated", api, a, f->name,
                     ry_type_str(t, ts, sizeof ts));
    }
  }
  if (n_out < 1) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: @%s has no outputs", api, f->name);
  if (!o.has_aux && n_out != 1)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: @%s has %d outputs; grad needs exactly one (or has_aux for the rest)", api,
                   f->name, n_out);
  ry_type t0 = ry_graph_output_type(f, 0);
  if (t0.shape.rank != 0 || !ry_dtype_is_float(t0.dtype)) {
    char ts[200];
    return ry__err(RY_ERR_SHAPE, "%s: output 0 of @%s has type %s; grad needs a float scalar (use ry_vjp or ry_jacrev for others)",
                   api, f->name, ry_type_str(t0, ts, sizeof ts));
  }
  ry_graph *J = NULL;
  ry_status s = build_jvp(f, &J);
  if (s) return ry__err_prefix(s, "%s of @%s", api, f->name);
  bool *lin = linear_values(J, n_in);
  ry_value *R = ry__calloc((size_t)J->n_values, sizeof *R);
  ry_value *ct_out = ry__calloc((size_t)2 * n_out + 1, sizeof *ct_out);
  ry_value *ct_in = ry__calloc((size_t)2 * n_in + 1, sizeof *ct_in);
  ry_value *outs = ry__calloc((size_t)n_out + (size_t)o.n_argnums + 1, sizeof *outs);
  ry_builder *b = ry_builder_new(f->name);
  if (!lin || !R || !ct_out || !ct_in || !outs || !b) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  for (int i = 0; i < n_in; i++) R[J->regions[0].params.v[i]] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  copy_primal(b, J, 0, lin, R);
  ct_out[n_out] = ry_scalar_(b, (ry_loc){0}, t0.dtype, 1.0); /* d(out0) = 1 */
  transpose_into(b, J, 0, lin, R, ct_out, ct_in);
  int k = 0;
  if (ryb_ok(b)) {
    if (with_value) outs[k++] = R[J->regions[0].results.v[0]];
    for (int q = 0; q < o.n_argnums; q++) {
      int a = o.argnums[q];
      outs[k++] = ryt_materialize(b, (ry_loc){0}, ct_in[n_in + a], ry_graph_input_type(f, a));
    }
    for (int i = 1; i < n_out; i++) outs[k++] = R[J->regions[0].results.v[i]];
  }
  ry_graph *g = NULL;
  s = ry_builder_finish(b, ryb_ok(b) ? k : 0, outs, &g);
  if (s) {
    s = ry__err_prefix(s, "%s of @%s", api, f->name);
  } else {
    s = ry_simplify(g, out);
    ry_graph_release(g);
  }
done:
  if (lin) ry__free(lin, (size_t)J->n_values * sizeof *lin);
  if (R) ry__free(R, (size_t)J->n_values * sizeof *R);
  ry__free(ct_out, ((size_t)2 * n_out + 1) * sizeof *ct_out);
  ry__free(ct_in, ((size_t)2 * n_in + 1) * sizeof *ct_in);
  ry__free(outs, ((size_t)n_out + (size_t)o.n_argnums + 1) * sizeof *outs);
  ry_graph_release(J);
  return s;
}

ry_status ry_grad(ry_graph *f, const ry_grad_opts *opts, ry_graph **out) { return grad_impl(f, opts, false, out); }
ry_status ry_value_and_grad(ry_graph *f, const ry_grad_opts *opts, ry_graph **out) { return grad_impl(f, opts, true, out); }

/* ---- vjp: forward graph with residuals, backward graph ---- */

/* Copy the linear nodes of J (region 0) into b: the tangent computation as
 * its own program of residuals and tangents (what ry_linearize returns). */
static void copy_linear(ry_builder *b, const ry_graph *J, const bool *lin, ry_value *M) {
  const ry_region *r0 = &J->regions[0];
  ry_value in[1024], out[1024];
  for (int k = 0; k < r0->nodes.n && ryb_ok(b); k++) {
    const ry_node *n = &J->nodes[r0->nodes.v[k]];
    if (!node_is_linear(J, lin, n)) continue;
    if (n->n_operands > 1024 || n->n_results > 1024) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, ryg_op_table[n->op].name, "too many operands");
      return;
    }
    for (int i = 0; i < n->n_operands; i++) in[i] = M[ry_node_operands(J, n)[i]];
    int m = ryt_copy_node(b, J, n, in, out);
    for (int i = 0; i < m; i++) M[ry_node_results(J, n)[i]] = out[i];
  }
}

/* Reverse mode (ry_vjp: the second graph transposes the linear part) or
 * linearization (ry_linearize: the second graph is the linear part). */
static ry_status split_linear(const char *api, bool transpose, ry_graph *f, ry_graph **fwd, ry_graph **bwd, int *n_residuals) {
  if (!fwd || !bwd) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: output graph pointer is NULL", api);
  *fwd = *bwd = NULL;
  if (n_residuals) *n_residuals = 0;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: the graph is NULL", api);
  int n_in = ry_graph_num_inputs(f), n_out = ry_graph_num_outputs(f);
  ry_graph *J = NULL;
  ry_status s = build_jvp(f, &J);
  if (s) return ry__err_prefix(s, "%s of @%s", api, f->name);
  bool *lin = linear_values(J, n_in);
  ry_value *R = ry__calloc((size_t)J->n_values, sizeof *R), *R2 = ry__calloc((size_t)J->n_values, sizeof *R2);
  int32_t *resid = ry__calloc((size_t)J->n_values, sizeof *resid);
  ry_value *ct_out = ry__calloc((size_t)2 * n_out + 1, sizeof *ct_out);
  ry_value *ct_in = ry__calloc((size_t)2 * n_in + 1, sizeof *ct_in);
  ry_value *outs = ry__calloc((size_t)J->n_values + (size_t)n_out + (size_t)n_in + 1, sizeof *outs);
  bool *seen = ry__calloc((size_t)J->n_values, sizeof *seen);
  ry_builder *bf = ry_builder_new(f->name), *bb = NULL;
  int n_res = 0;
  if (!lin || !R || !R2 || !resid || !ct_out || !ct_in || !outs || !seen || !bf) {
    s = ry__oom();
    ry_builder_free(bf);
    goto done;
  }
  /* residuals: primal values that linear nodes use */
  const ry_region *r0 = &J->regions[0];
  for (int k = 0; k < r0->nodes.n; k++) {
    const ry_node *n = &J->nodes[r0->nodes.v[k]];
    if (!node_is_linear(J, lin, n)) continue;
    for (int i = 0; i < n->n_operands; i++) {
      int32_t v = ry_node_operands(J, n)[i];
      if (!lin[v] && !seen[v]) {
        seen[v] = true;
        resid[n_res++] = v;
      }
    }
  }
  for (int i = 0; i < n_in; i++) R[r0->params.v[i]] = ry_input(bf, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  copy_primal(bf, J, 0, lin, R);
  int k = 0;
  for (int i = 0; i < n_out; i++) outs[k++] = R[r0->results.v[i]];
  for (int i = 0; i < n_res; i++) outs[k++] = R[resid[i]];
  s = ry_builder_finish(bf, ryb_ok(bf) ? k : 0, outs, fwd);
  if (s) goto done;
  bb = ry_builder_new(f->name);
  if (!bb) {
    s = ry__oom();
    goto done;
  }
  for (int i = 0; i < n_res; i++) R2[resid[i]] = ry_input(bb, NULL, ry_vtype(J, resid[i]));
  k = 0;
  if (transpose) {
    for (int i = 0; i < n_out; i++) {
      ry_type t = ry_graph_output_type(f, i);
      ry_value c = ry_input(bb, NULL, t);
      if (ry_dtype_is_float(t.dtype)) ct_out[n_out + i] = c;
    }
    transpose_into(bb, J, 0, lin, R2, ct_out, ct_in);
    if (ryb_ok(bb))
      for (int i = 0; i < n_in; i++) outs[k++] = ryt_materialize(bb, (ry_loc){0}, ct_in[n_in + i], ry_graph_input_type(f, i));
  } else {
    for (int i = 0; i < n_in; i++) R2[r0->params.v[n_in + i]] = ry_input(bb, NULL, ry_graph_input_type(f, i));
    copy_linear(bb, J, lin, R2);
    for (int i = 0; i < n_out && ryb_ok(bb); i++) {
      int32_t v = r0->results.v[n_out + i];
      outs[k++] = lin[v] ? R2[v] : ryt_zeros(bb, (ry_loc){0}, ry_graph_output_type(f, i));
    }
  }
  ry_graph *g = NULL;
  s = ry_builder_finish(bb, ryb_ok(bb) ? k : 0, outs, &g);
  if (!s) {
    s = ry_simplify(g, bwd);
    ry_graph_release(g);
  }
  if (!s && n_residuals) *n_residuals = n_res;
done:
  if (s) {
    ry_graph_release(*fwd);
    *fwd = NULL;
    s = ry__err_prefix(s, "%s of @%s", api, f->name);
  }
  if (lin) ry__free(lin, (size_t)J->n_values * sizeof *lin);
  if (R) ry__free(R, (size_t)J->n_values * sizeof *R);
  if (R2) ry__free(R2, (size_t)J->n_values * sizeof *R2);
  if (resid) ry__free(resid, (size_t)J->n_values * sizeof *resid);
  if (seen) ry__free(seen, (size_t)J->n_values * sizeof *seen);
  if (outs) ry__free(outs, ((size_t)J->n_values + (size_t)n_out + (size_t)n_in + 1) * sizeof *outs);
  ry__free(ct_out, ((size_t)2 * n_out + 1) * sizeof *ct_out);
  ry__free(ct_in, ((size_t)2 * n_in + 1) * sizeof *ct_in);
  ry_graph_release(J);
  return s;
}

ry_status ry_vjp(ry_graph *f, ry_graph **fwd, ry_graph **bwd, int *n_residuals) {
  return split_linear("ry_vjp", true, f, fwd, bwd, n_residuals);
}

ry_status ry_linearize(ry_graph *f, ry_graph **fwd, ry_graph **lin, int *n_residuals) {
  return split_linear("ry_linearize", false, f, fwd, lin, n_residuals);
}
