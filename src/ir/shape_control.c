/* Shape and dtype rules of control flow, calls, custom calls, collectives and
 * sharding: regions checked against their operands and results, callee
 * signatures, mesh axes. See shape.c. */
#include <stdarg.h>
#include <stdio.h>

#include "graph.h"

#include "shape_internal.h"

/* ---- control flow ---- */

static ry_code region_params_match(ry_rule_ctx *c, int32_t rid, int first, int count, const char *what) {
  const ry_region *r = &c->g->regions[rid];
  if (r->params.n != count)
    return ryg_fail(c, RY_ERR_SHAPE, "%s takes %d parameters but the op passes %d", what, r->params.n, count);
  for (int i = 0; i < count; i++) {
    ry_type p = c->g->values[r->params.v[i]].type;
    if (!ry_type_equal(p, c->in[first + i]))
      return ryg_fail(c, RY_ERR_SHAPE, "%s parameter %d has type %s but the op passes %s", what, i, TSTR(p), TSTR(c->in[first + i]));
  }
  return RY_OK;
}

ry_code ryg_rule_cond(ry_rule_ctx *c) {
  if (c->n_in < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs an index operand");
  ry_type ix = c->in[0];
  if (ix.shape.rank != 0 || (ix.dtype != RY_BOOL && ix.dtype != RY_I32))
    return ryg_fail(c, RY_ERR_DTYPE, "the index has type %s; it must be bool[] or i32[]", TSTR(ix));
  if (c->n_regions < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs at least one branch");
  if (ix.dtype == RY_BOOL && c->n_regions != 2)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "a bool index needs exactly 2 branches, not %d", c->n_regions);
  const ry_region *r0 = &c->g->regions[c->regions[0]];
  if (r0->results.n > RY_MAX_OUTPUTS) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "too many results");
  for (int b = 0; b < c->n_regions; b++) {
    char what[32];
    snprintf(what, sizeof what, "branch %d", b);
    TRY(region_params_match(c, c->regions[b], 1, c->n_in - 1, what));
    const ry_region *r = &c->g->regions[c->regions[b]];
    if (r->results.n != r0->results.n)
      return ryg_fail(c, RY_ERR_SHAPE, "branch %d returns %d values but branch 0 returns %d", b, r->results.n, r0->results.n);
    for (int i = 0; i < r->results.n; i++) {
      ry_type t = c->g->values[r->results.v[i]].type, t0 = c->g->values[r0->results.v[i]].type;
      if (!ry_type_equal(t, t0))
        return ryg_fail(c, RY_ERR_SHAPE, "branch %d result %d has type %s but branch 0 returns %s", b, i, TSTR(t), TSTR(t0));
    }
  }
  for (int i = 0; i < r0->results.n; i++) c->res[i] = c->g->values[r0->results.v[i]].type;
  *c->n_res = r0->results.n;
  return RY_OK;
}

ry_code ryg_rule_while(ry_rule_ctx *c) {
  int64_t nc = c->attrs->while_.n_consts;
  if (nc < 0 || nc > c->n_in)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "n_consts %lld is outside 0..%d", (long long)nc, c->n_in);
  if (c->n_regions != 2) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs a cond and a body region");
  TRY(region_params_match(c, c->regions[0], 0, c->n_in, "cond"));
  TRY(region_params_match(c, c->regions[1], 0, c->n_in, "body"));
  const ry_region *cr = &c->g->regions[c->regions[0]], *br = &c->g->regions[c->regions[1]];
  if (cr->results.n != 1 || !ry_type_equal(c->g->values[cr->results.v[0]].type, (ry_type){RY_BOOL, {0, {0}}}))
    return ryg_fail(c, RY_ERR_SHAPE, "cond must return one bool[]");
  int ncarry = c->n_in - (int)nc;
  if (br->results.n != ncarry)
    return ryg_fail(c, RY_ERR_SHAPE, "body returns %d values but the loop carries %d", br->results.n, ncarry);
  for (int i = 0; i < ncarry; i++) {
    ry_type t = c->g->values[br->results.v[i]].type;
    if (!ry_type_equal(t, c->in[nc + i]))
      return ryg_fail(c, RY_ERR_SHAPE, "body result %d has type %s but the carry has %s", i, TSTR(t), TSTR(c->in[nc + i]));
    c->res[i] = t;
  }
  *c->n_res = ncarry;
  return RY_OK;
}

/* The optional differentiation rules of a call must fit the callee. */
static ry_code sig_match(ry_rule_ctx *c, const ry_graph *rule, const char *what, int n_in, const ry_type *in, int n_out,
                         const ry_type *out) {
  if (ry_graph_num_inputs(rule) != n_in || ry_graph_num_outputs(rule) != n_out)
    return ryg_fail(c, RY_ERR_SHAPE, "the %s rule @%s takes %d inputs and returns %d outputs; it must take %d and return %d", what,
                rule->name, ry_graph_num_inputs(rule), ry_graph_num_outputs(rule), n_in, n_out);
  for (int i = 0; i < n_in; i++)
    if (in && !ry_type_equal(ry_graph_input_type(rule, i), in[i]))
      return ryg_fail(c, RY_ERR_SHAPE, "input %d of the %s rule @%s has type %s; it must be %s", i, what, rule->name,
                  TSTR(ry_graph_input_type(rule, i)), TSTR(in[i]));
  for (int i = 0; i < n_out; i++)
    if (out && !ry_type_equal(ry_graph_output_type(rule, i), out[i]))
      return ryg_fail(c, RY_ERR_SHAPE, "output %d of the %s rule @%s has type %s; it must be %s", i, what, rule->name,
                  TSTR(ry_graph_output_type(rule, i)), TSTR(out[i]));
  return RY_OK;
}

static ry_code check_call_rules(ry_rule_ctx *c, const ry_graph *callee) {
  const ry_attrs *a = c->attrs;
  int n = ry_graph_num_inputs(callee), m = ry_graph_num_outputs(callee);
  if (a->call.remat < 0 || a->call.remat > 3) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "invalid remat policy %lld", (long long)a->call.remat);
  if (n > 512 || m > 512) return RY_OK;
  ry_type in[1024], out[1024];
  for (int i = 0; i < n; i++) in[i] = in[n + i] = ry_graph_input_type(callee, i);
  for (int i = 0; i < m; i++) out[i] = out[m + i] = ry_graph_output_type(callee, i);
  if (a->call.jvp) TRY(sig_match(c, a->call.jvp, "jvp", 2 * n, in, 2 * m, out));
  if (a->call.fwd) {
    if (!a->call.bwd) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "a custom_vjp call needs both fwd and bwd");
    int nr = ry_graph_num_outputs(a->call.fwd) - m;
    if (nr < 0 || nr > 512) return ryg_fail(c, RY_ERR_SHAPE, "the fwd rule @%s returns fewer values than @%s", a->call.fwd->name, callee->name);
    TRY(sig_match(c, a->call.fwd, "fwd", n, in, nr + m, NULL));
    for (int i = 0; i < m; i++)
      if (!ry_type_equal(ry_graph_output_type(a->call.fwd, i), out[i]))
        return ryg_fail(c, RY_ERR_SHAPE, "output %d of the fwd rule @%s has type %s; it must be %s", i, a->call.fwd->name,
                    TSTR(ry_graph_output_type(a->call.fwd, i)), TSTR(out[i]));
    ry_type bin[1024];
    for (int i = 0; i < nr; i++) bin[i] = ry_graph_output_type(a->call.fwd, m + i);
    for (int i = 0; i < m; i++) bin[nr + i] = out[i];
    TRY(sig_match(c, a->call.bwd, "bwd", nr + m, bin, n, in));
  }
  return RY_OK;
}

ry_code ryg_rule_scan(ry_rule_ctx *c) {
  int64_t len = c->attrs->scan.length, nc = c->attrs->scan.n_consts, ncar = c->attrs->scan.n_carry;
  if (len < 0 || nc < 0 || ncar < 0 || nc + ncar > c->n_in)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "length %lld, n_consts %lld and n_carry %lld do not fit %d operands", (long long)len,
                (long long)nc, (long long)ncar, c->n_in);
  if (c->n_regions != 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "needs one body region");
  ry_type pt[1024];
  if (c->n_in > 1024) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "too many operands");
  for (int i = 0; i < c->n_in; i++) {
    pt[i] = c->in[i];
    if (i >= nc + ncar) {
      ry_shape s = c->in[i].shape;
      if (s.rank < 1 || s.dims[0] != len)
        return ryg_fail(c, RY_ERR_SHAPE, "scanned operand %d has shape %s; its leading dimension must be the length %lld", i, SSTR(s),
                    (long long)len);
      for (int k = 0; k + 1 < s.rank; k++) pt[i].shape.dims[k] = s.dims[k + 1];
      pt[i].shape.dims[s.rank - 1] = 0;
      pt[i].shape.rank = s.rank - 1;
    }
  }
  const ry_region *r = &c->g->regions[c->regions[0]];
  if (r->params.n != c->n_in) return ryg_fail(c, RY_ERR_SHAPE, "body takes %d parameters but the op passes %d", r->params.n, c->n_in);
  for (int i = 0; i < c->n_in; i++) {
    ry_type p = c->g->values[r->params.v[i]].type;
    if (!ry_type_equal(p, pt[i]))
      return ryg_fail(c, RY_ERR_SHAPE, "body parameter %d has type %s but the op passes %s", i, TSTR(p), TSTR(pt[i]));
  }
  if (r->results.n < ncar) return ryg_fail(c, RY_ERR_SHAPE, "body returns %d values but the loop carries %lld", r->results.n, (long long)ncar);
  if (r->results.n > RY_MAX_OUTPUTS) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "too many results");
  for (int i = 0; i < r->results.n; i++) {
    ry_type t = c->g->values[r->results.v[i]].type;
    if (i < ncar) {
      if (!ry_type_equal(t, c->in[nc + i]))
        return ryg_fail(c, RY_ERR_SHAPE, "body result %d has type %s but the carry has %s", i, TSTR(t), TSTR(c->in[nc + i]));
      c->res[i] = t;
    } else {
      if (t.shape.rank >= RY_MAX_RANK) return ryg_fail(c, RY_ERR_SHAPE, "stacked result %d would exceed rank %d", i, RY_MAX_RANK);
      ry_type st = t;
      for (int k = t.shape.rank; k > 0; k--) st.shape.dims[k] = t.shape.dims[k - 1];
      st.shape.dims[0] = len;
      st.shape.rank = t.shape.rank + 1;
      c->res[i] = st;
    }
  }
  *c->n_res = r->results.n;
  return RY_OK;
}

ry_code ryg_rule_call(ry_rule_ctx *c) {
  const ry_graph *callee = c->attrs->call.callee;
  if (!callee) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "no callee");
  int n = ry_graph_num_inputs(callee);
  if (c->n_in != n)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "@%s takes %d arguments, got %d", callee->name, n, c->n_in);
  for (int i = 0; i < n; i++)
    if (!ry_type_equal(ry_graph_input_type(callee, i), c->in[i]))
      return ryg_fail(c, RY_ERR_SHAPE, "argument %d of @%s has type %s but the function takes %s", i, callee->name, TSTR(c->in[i]),
                  TSTR(ry_graph_input_type(callee, i)));
  int no = ry_graph_num_outputs(callee);
  if (no > RY_MAX_OUTPUTS) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "too many results");
  TRY(check_call_rules(c, callee));
  for (int i = 0; i < no; i++) c->res[i] = ry_graph_output_type(callee, i);
  *c->n_res = no;
  return RY_OK;
}

ry_code ryg_rule_custom(ry_rule_ctx *c) {
  if (!c->attrs->custom.target || !c->attrs->custom.target[0])
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "custom_call needs a target name");
  for (int i = 0; i < *c->n_res; i++) {
    ry_type save = c->res[0];
    c->res[0] = c->res[i];
    ry_code rc = ryg_need_requested(c);
    c->res[0] = save;
    if (rc) return rc;
  }
  return RY_OK; /* result types are as requested */
}

/* ---- collectives and sharding ---- */

/* mesh: 1..8 axes of size >= 1; axes: distinct mesh axes. */
static ry_code check_mesh(ry_rule_ctx *c, const ry_axes *mesh, const ry_axes *axes) {
  if (mesh->n < 1) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "mesh is empty (give the device mesh shape, e.g. [4])");
  for (int i = 0; i < mesh->n; i++)
    if (mesh->v[i] < 1 || mesh->v[i] > 1024)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "mesh %s: axis %d has size %lld", ASTR(*mesh), i, (long long)mesh->v[i]);
  int64_t total = 1;
  for (int i = 0; i < mesh->n; i++) total *= mesh->v[i];
  if (total > 1024) return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "mesh %s has %lld devices (at most 1024)", ASTR(*mesh), (long long)total);
  if (axes) TRY(ryg_check_axes(c, axes, mesh->n, "mesh axes"));
  return RY_OK;
}

static ry_code check_collective_kind(ry_rule_ctx *c) {
  ry_reduce_kind k = c->attrs->collective.kind;
  if (k != RY_SUM && k != RY_PROD && k != RY_MAX && k != RY_MIN)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "kind must be sum, prod, max or min");
  return ryg_need_class(c, 0);
}

ry_code ryg_rule_all_reduce(ry_rule_ctx *c) {
  TRY(check_mesh(c, &c->attrs->collective.mesh, &c->attrs->collective.axes));
  TRY(check_collective_kind(c));
  return ryg_set1(c, c->in[0]);
}

/* all_gather multiplies dimension `dim` by the group size, reduce_scatter
 * divides it. */
static ry_code rule_gather_scatter(ry_rule_ctx *c, bool gather) {
  const ry_axes *mesh = &c->attrs->collective.mesh;
  TRY(check_mesh(c, mesh, &c->attrs->collective.axes));
  if (!gather) TRY(check_collective_kind(c));
  ry_type t = c->in[0];
  int64_t d = c->attrs->collective.dim;
  if (d < 0 || d >= t.shape.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dim %lld is out of range for rank %d", (long long)d, t.shape.rank);
  int64_t n = ry__group_size(mesh, &c->attrs->collective.axes);
  if (gather) t.shape.dims[d] *= n;
  else if (t.shape.dims[d] % n)
    return ryg_fail(c, RY_ERR_SHAPE, "dimension %lld (size %lld) is not divisible by the group size %lld", (long long)d,
                (long long)t.shape.dims[d], (long long)n);
  else t.shape.dims[d] /= n;
  return ryg_set1(c, t);
}
ry_code ryg_rule_all_gather(ry_rule_ctx *c) { return rule_gather_scatter(c, true); }
ry_code ryg_rule_reduce_scatter(ry_rule_ctx *c) { return rule_gather_scatter(c, false); }

/* collective_broadcast: the same type; source is a position in the group. */
ry_code ryg_rule_collective_broadcast(ry_rule_ctx *c) {
  const ry_axes *mesh = &c->attrs->collective.mesh;
  TRY(check_mesh(c, mesh, &c->attrs->collective.axes));
  int64_t n = ry__group_size(mesh, &c->attrs->collective.axes), src = c->attrs->collective.source;
  if (src < 0 || src >= n)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "source %lld is not a member of a group of %lld devices (0..%lld)", (long long)src,
                    (long long)n, (long long)n - 1);
  return ryg_set1(c, c->in[0]);
}

ry_code ryg_rule_sharding(ry_rule_ctx *c) {
  const ry_axes *mesh = &c->attrs->sharding.mesh, *dims = &c->attrs->sharding.dims;
  ry_shape s = c->in[0].shape;
  TRY(check_mesh(c, mesh, NULL));
  if (dims->n != s.rank)
    return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dims %s has %d entries but the value has rank %d (one mesh axis or -1 per dimension)",
                ASTR(*dims), dims->n, s.rank);
  for (int i = 0; i < dims->n; i++) {
    int64_t a = dims->v[i];
    if (a == -1) continue;
    if (a < -1 || a >= mesh->n)
      return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dims %s: mesh axis %lld is out of range for mesh %s", ASTR(*dims), (long long)a,
                  ASTR(*mesh));
    for (int j = 0; j < i; j++)
      if (dims->v[j] == a)
        return ryg_fail(c, RY_ERR_INVALID_ARGUMENT, "dims %s: mesh axis %lld splits two dimensions", ASTR(*dims), (long long)a);
    if (s.dims[i] % mesh->v[a])
      return ryg_fail(c, RY_ERR_SHAPE,
                  "dimension %d (size %lld) cannot be split evenly over mesh axis %lld of size %lld", i, (long long)s.dims[i],
                  (long long)a, (long long)mesh->v[a]);
  }
  return ryg_set1(c, c->in[0]);
}
