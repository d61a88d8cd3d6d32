/* StableHLO emission rules of control flow, calls, collectives and sharding:
 * cond as stablehlo.case, while, scan as a counted while, call, custom_call,
 * all_reduce / all_gather / reduce_scatter / collective_broadcast with
 * their replica groups, and
 * sharding annotations. See rules.c. */
#include <math.h>
#include <stdio.h>

#include "stablehlo.h"

#include "rules_internal.h"

/* ---- control flow and calls ---- */

/* cond: stablehlo.case on an i32 index (bool converted: false = branch 0).
 * Branch regions see the enclosing values, so region parameters simply take
 * the names of the cond's operands. */
void rys_r_cond(rys_ctx *c, const ry_node *n) {
  ry_type it = rys_vtype(c, OPD(0));
  char idx[RYS_NAME];
  if (it.dtype != RY_I32) {
    rys_t_op1(c, idx, "stablehlo.convert", NAME(OPD(0)), it, rys_scalar_of(RY_I32));
  } else {
    memcpy(idx, NAME(OPD(0)), RYS_NAME);
  }
  ry_type i32 = rys_scalar_of(RY_I32);
  char base[RYS_NAME];
  rys_name_results(c, n, base, 0);
  const char *args[1] = {idx};
  rys_op_begin(c, n->n_results ? base : NULL, n->n_results, "stablehlo.case", 1, args);
  const int32_t *regs = ry_node_regions(c->g, n);
  for (int b = 0; b < n->n_regions && !c->err; b++) {
    const ry_region *reg = &c->g->regions[regs[b]];
    for (int i = 0; i < reg->params.n; i++) memcpy(NAME(reg->params.v[i]), NAME(OPD(1 + i)), RYS_NAME);
    rys_printf(c, b == 0 ? " ({\n" : ", {\n");
    c->indent++;
    rys_emit_region_body(c, regs[b], "stablehlo.return", 0, NULL, NULL);
    c->indent--;
    rys_indent(c);
    rys_printf(c, "}");
  }
  ry_type *outs = rys_result_types(c, n);
  if (outs) rys_op_end_regions(c, NULL, 1, &i32, n->n_results, outs);
  rys_free_types(n, outs);
}

/* while: consts and carry all travel through the loop state; the body passes
 * the consts back unchanged; the node's results are the carry part. */
void rys_r_while(rys_ctx *c, const ry_node *n) {
  opnds o;
  if (!rys_get_opnds(c, n, &o)) return;
  int k = (int)n->attrs.while_.n_consts;
  char base[RYS_NAME];
  rys_name_results(c, n, base, k);
  rys_op_begin(c, base, o.n, "stablehlo.while", o.n, o.names);
  const int32_t *regs = ry_node_regions(c->g, n);
  for (int b = 0; b < 2 && !c->err; b++) {
    const ry_region *reg = &c->g->regions[regs[b]];
    const char **pn = ry__calloc((size_t)reg->params.n + 1, sizeof *pn);
    ry_type *pt = ry__calloc((size_t)reg->params.n + 1, sizeof *pt);
    if (pn && pt) {
      for (int i = 0; i < reg->params.n; i++) {
        int32_t v = reg->params.v[i];
        snprintf(NAME(v), RYS_NAME, "%%v%d", v);
        pn[i] = NAME(v);
        pt[i] = rys_vtype(c, v);
      }
      rys_region_begin(c, b == 0, reg->params.n, pn, pt);
      rys_emit_region_body(c, regs[b], "stablehlo.return", b == 0 ? 0 : k, pn, pt);
      c->indent--;
      rys_indent(c);
      rys_printf(c, "}");
    } else {
      c->out->oom = true;
    }
    ry__free(pn, ((size_t)reg->params.n + 1) * sizeof *pn);
    ry__free(pt, ((size_t)reg->params.n + 1) * sizeof *pt);
  }
  rys_op_end_regions(c, NULL, o.n, o.types, o.n, o.types);
  rys_free_opnds(&o);
}

/* scan: a stablehlo.while over the state (i, consts, carry, xs, ys) that
 * slices xs at the step index, runs the body and writes each y slice into
 * its stacked result with dynamic_update_slice. */
void rys_r_scan(rys_ctx *c, const ry_node *n) {
  const ry_attrs *at = &n->attrs;
  int nin = n->n_operands, nc = (int)at->scan.n_consts, ncar = (int)at->scan.n_carry, nx = nin - nc - ncar;
  int nres = n->n_results, ny = nres - ncar, ns = 1 + nin + ny;
  const int32_t body = ry_node_regions(c->g, n)[0];
  const ry_region *reg = &c->g->regions[body];
  char (*nm)[RYS_NAME] = ry__calloc((size_t)ns * 3 + 8, sizeof *nm);
  const char **args = ry__calloc((size_t)ns + 1, sizeof *args);
  ry_type *types = ry__calloc((size_t)ns + 1, sizeof *types);
  if (!nm || !args || !types) {
    c->out->oom = true;
    goto done;
  }
  ry_type i32 = rys_scalar_of(RY_I32);
  if (at->scan.length == 0) {
    /* no step: the initial carry and empty ys. (A loop would not compile:
     * XLA checks the size-1 slices of the empty xs even though no step
     * takes them.) */
    for (int i = 0; i < ncar; i++) memmove(NAME(RES(i)), NAME(OPD(nc + i)), RYS_NAME);
    for (int j = 0; j < ny; j++) {
      rys_tmp(c, NAME(RES(ncar + j)));
      rys_const_f64(c, NAME(RES(ncar + j)), rys_vtype(c, RES(ncar + j)), 0);
    }
    goto done;
  }
  /* initial state */
  rys_t_const_i(c, nm[0], i32, 0);
  args[0] = nm[0];
  types[0] = i32;
  for (int i = 0; i < nin; i++) {
    args[1 + i] = NAME(OPD(i));
    types[1 + i] = rys_vtype(c, OPD(i));
  }
  for (int j = 0; j < ny; j++) {
    types[1 + nin + j] = rys_vtype(c, RES(ncar + j));
    rys_tmp(c, nm[1 + nin + j]);
    rys_const_f64(c, nm[1 + nin + j], types[1 + nin + j], 0);
    args[1 + nin + j] = nm[1 + nin + j];
  }
  char base[RYS_NAME], cond_p[RYS_NAME];
  rys_tmp(c, base);
  rys_op_begin(c, base, ns, "stablehlo.while", ns, args);
  /* block arguments */
  char (*bn)[RYS_NAME] = nm + ns;
  const char **bargs = ry__calloc((size_t)ns + 1, sizeof *bargs);
  if (!bargs) {
    c->out->oom = true;
    goto done;
  }
  for (int i = 0; i < ns; i++) {
    rys_tmp(c, bn[i]);
    bargs[i] = bn[i];
  }
  /* cond: i < length */
  rys_region_begin(c, true, ns, bargs, types);
  char len[RYS_NAME];
  rys_t_const_i(c, len, i32, at->scan.length);
  rys_t_cmp(c, cond_p, RY_LT, bn[0], len, i32);
  {
    const char *r[1] = {cond_p};
    ry_type bt = rys_scalar_of(RY_BOOL);
    rys_region_end(c, 1, r, &bt);
  }
  /* body */
  rys_region_begin(c, false, ns, bargs, types);
  char idx[RYS_NAME], zero[RYS_NAME], one[RYS_NAME], next[RYS_NAME];
  rys_t_const_i(c, zero, i32, 0);
  rys_t_const_i(c, one, i32, 1);
  if (at->scan.reverse) {
    char last[RYS_NAME];
    rys_t_const_i(c, last, i32, at->scan.length - 1);
    rys_t_op2(c, idx, "stablehlo.subtract", last, bn[0], i32, i32);
  } else {
    memcpy(idx, bn[0], RYS_NAME);
  }
  for (int i = 0; i < nc + ncar; i++) memcpy(NAME(reg->params.v[i]), bn[1 + i], RYS_NAME);
  for (int k = 0; k < nx && !c->err; k++) {
    ry_type xt = types[1 + nc + ncar + k], st = rys_vtype(c, reg->params.v[nc + ncar + k]);
    ry_type one_t = xt;
    one_t.shape.dims[0] = 1;
    const char *dargs[1 + RY_MAX_RANK];
    ry_type dtypes[1 + RY_MAX_RANK];
    dargs[0] = bn[1 + nc + ncar + k];
    dtypes[0] = xt;
    for (int d = 0; d < xt.shape.rank; d++) {
      dargs[1 + d] = d == 0 ? idx : zero;
      dtypes[1 + d] = i32;
    }
    ry_axes sz = {xt.shape.rank, {0}};
    for (int d = 0; d < xt.shape.rank; d++) sz.v[d] = one_t.shape.dims[d];
    char a[256], attrs[300], t1[RYS_NAME];
    snprintf(attrs, sizeof attrs, "slice_sizes = %s", rys_array_i64(a, sizeof a, &sz));
    rys_tmp(c, t1);
    rys_op(c, t1, "stablehlo.dynamic_slice", 1 + xt.shape.rank, dargs, dtypes, attrs, 1, &one_t);
    rys_t_op1(c, NAME(reg->params.v[nc + ncar + k]), "stablehlo.reshape", t1, one_t, st);
  }
  rys_emit_region_body(c, body, NULL, 0, NULL, NULL);
  if (c->err) goto done_b;
  rys_t_op2(c, next, "stablehlo.add", bn[0], one, i32, i32);
  {
    char (*rn)[RYS_NAME] = nm + 2 * ns;
    const char **rets = ry__calloc((size_t)ns + 1, sizeof *rets);
    if (!rets) {
      c->out->oom = true;
      goto done_b;
    }
    rets[0] = next;
    for (int i = 0; i < nc; i++) rets[1 + i] = bn[1 + i];
    for (int i = 0; i < ncar; i++) rets[1 + nc + i] = NAME(reg->results.v[i]);
    for (int k = 0; k < nx; k++) rets[1 + nc + ncar + k] = bn[1 + nc + ncar + k];
    for (int j = 0; j < ny && !c->err; j++) {
      ry_type acc = types[1 + nin + j], yt = rys_vtype(c, reg->results.v[ncar + j]), one_t = acc;
      one_t.shape.dims[0] = 1;
      char t1[RYS_NAME];
      rys_t_op1(c, t1, "stablehlo.reshape", NAME(reg->results.v[ncar + j]), yt, one_t);
      const char *uargs[2 + RY_MAX_RANK];
      ry_type utypes[2 + RY_MAX_RANK];
      uargs[0] = bn[1 + nin + j];
      utypes[0] = acc;
      uargs[1] = t1;
      utypes[1] = one_t;
      for (int d = 0; d < acc.shape.rank; d++) {
        uargs[2 + d] = d == 0 ? idx : zero;
        utypes[2 + d] = i32;
      }
      rys_tmp(c, rn[j]);
      rys_op(c, rn[j], "stablehlo.dynamic_update_slice", 2 + acc.shape.rank, uargs, utypes, NULL, 1, &acc);
      rets[1 + nin + j] = rn[j];
    }
    rys_region_end(c, ns, rets, types);
    ry__free(rets, ((size_t)ns + 1) * sizeof *rets);
  }
done_b:
  rys_op_end_regions(c, NULL, ns, types, ns, types);
  for (int i = 0; i < ncar; i++) snprintf(NAME(RES(i)), RYS_NAME, "%.16s#%d", base, 1 + nc + i);
  for (int j = 0; j < ny; j++) snprintf(NAME(RES(ncar + j)), RYS_NAME, "%.16s#%d", base, 1 + nin + j);
  ry__free(bargs, ((size_t)ns + 1) * sizeof *bargs);
done:
  ry__free(nm, ((size_t)ns * 3 + 8) * sizeof *nm);
  ry__free(args, ((size_t)ns + 1) * sizeof *args);
  ry__free(types, ((size_t)ns + 1) * sizeof *types);
}

void rys_r_call(rys_ctx *c, const ry_node *n) {
  opnds o;
  if (!rys_get_opnds(c, n, &o)) return;
  const char *callee = rys_callee_name(c, n->attrs.call.callee);
  char attrs[120], base[RYS_NAME];
  snprintf(attrs, sizeof attrs, "callee = @%s", callee);
  if (n->n_results == 1) rys_name_result(c, n);
  else rys_name_results(c, n, base, 0);
  ry_type *outs = rys_result_types(c, n);
  int no = n->n_results;
  if (outs) rys_op(c, no == 0 ? NULL : no == 1 ? NAME(RES(0)) : base, "func.call", o.n, o.names, o.types, attrs, no, outs);
  rys_free_types(n, outs);
  rys_free_opnds(&o);
}

void rys_r_custom_call(rys_ctx *c, const ry_node *n) {
  opnds o;
  if (!rys_get_opnds(c, n, &o)) return;
  const char *target = n->attrs.custom.target ? n->attrs.custom.target : "";
  for (const char *p = target; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) {
      rys_fail(c, RY_ERR_UNSUPPORTED, "stablehlo: custom_call target name '%s' has characters MLIR cannot quote", target);
      rys_free_opnds(&o);
      return;
    }
  char attrs[400], base[RYS_NAME];
  snprintf(attrs, sizeof attrs, "call_target_name = \"%s\", has_side_effect = false", target);
  if (n->n_results == 1) rys_name_result(c, n);
  else rys_name_results(c, n, base, 0);
  ry_type *outs = rys_result_types(c, n);
  int no = n->n_results;
  if (outs)
    rys_op(c, no == 0 ? NULL : no == 1 ? NAME(RES(0)) : base, "stablehlo.custom_call", o.n, o.names, o.types, attrs, no,
           outs);
  rys_free_types(n, outs);
  rys_free_opnds(&o);
}

/* ---- collectives and sharding ----
 * Collectives are cross-replica (no channel handle): the program runs once
 * per replica, as JAX's pmap does, and replica_groups lists the replica ids
 * of each group. */

static int64_t mesh_devices(const ry_axes *mesh) {
  int64_t d = 1;
  for (int i = 0; i < mesh->n; i++) d *= mesh->v[i];
  return d;
}

/* "replica_groups = dense<[[0, 2], [1, 3]]> : tensor<2x2xi64>" into a new
 * buffer (ry__free with *size), or NULL on OOM. With first >= 0 the member
 * at that position of each group is listed first (collective_broadcast's
 * source), the others after it in order. */
static char *replica_groups(const ry_attrs *at, int64_t first, size_t *size) {
  const ry_axes *mesh = &at->collective.mesh, *axes = &at->collective.axes;
  int64_t nd = mesh_devices(mesh), gs = ry__group_size(mesh, axes);
  if (gs < 1 || nd < 1) return NULL;
  int64_t ng = nd / gs;
  bool in_group[RY_MAX_RANK] = {false};
  for (int i = 0; i < axes->n; i++) in_group[axes->v[i]] = true;
  int64_t *table = ry__calloc((size_t)nd, sizeof *table);
  *size = (size_t)nd * 24 + 128;
  char *buf = ry__malloc(*size);
  if (!table || !buf) {
    ry__free(table, (size_t)nd * sizeof *table);
    ry__free(buf, *size);
    return NULL;
  }
  for (int64_t dev = 0; dev < nd; dev++) {
    int64_t coord[RY_MAX_RANK], rest = dev, gi = 0, pos = 0;
    for (int i = mesh->n - 1; i >= 0; i--) {
      coord[i] = rest % mesh->v[i];
      rest /= mesh->v[i];
    }
    for (int i = 0; i < mesh->n; i++)
      if (!in_group[i]) gi = gi * mesh->v[i] + coord[i];
    for (int i = 0; i < axes->n; i++) pos = pos * mesh->v[axes->v[i]] + coord[axes->v[i]];
    table[gi * gs + pos] = dev;
  }
  size_t k = (size_t)snprintf(buf, *size, "replica_groups = dense<[");
  for (int64_t g = 0; g < ng; g++) {
    k += (size_t)snprintf(buf + k, *size - k, g ? ", [" : "[");
    bool lead = true; /* the source first (collective_broadcast), then the others in order */
    if (first >= 0) k += (size_t)snprintf(buf + k, *size - k, "%lld", (long long)table[g * gs + first]), lead = false;
    for (int64_t j = 0; j < gs; j++) {
      if (j == first) continue;
      k += (size_t)snprintf(buf + k, *size - k, lead ? "%lld" : ", %lld", (long long)table[g * gs + j]);
      lead = false;
    }
    k += (size_t)snprintf(buf + k, *size - k, "]");
  }
  snprintf(buf + k, *size - k, "]> : tensor<%lldx%lldxi64>", (long long)ng, (long long)gs);
  ry__free(table, (size_t)nd * sizeof *table);
  return buf;
}

/* The reducer of a collective: XLA's collectives accept only plain binary
 * ops (stablehlo.maximum propagates NaN like ryft's max). */
static void collective_reducer(rys_ctx *c, ry_reduce_kind k, ry_dtype d) {
  char a[RYS_NAME], b[RYS_NAME], r[RYS_NAME];
  rys_tmp(c, a);
  rys_tmp(c, b);
  const char *ps[2] = {a, b};
  ry_type t = rys_scalar_of(d), ts[2] = {t, t};
  rys_region_begin(c, true, 2, ps, ts);
  rys_t_op2(c, r, rys_reduce_op(k, d), a, b, t, t);
  const char *rr[1] = {r};
  rys_region_end(c, 1, rr, &t);
}

void rys_r_collective(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0)), rt = rys_vtype(c, RES(0));
  size_t gsize = 0;
  char *groups = replica_groups(&n->attrs, n->op == RY_OP_COLLECTIVE_BROADCAST ? n->attrs.collective.source : -1, &gsize);
  if (!groups) {
    rys_fail(c, RY_ERR_OUT_OF_MEMORY, "stablehlo: out of memory");
    return;
  }
  size_t asize = gsize + 64;
  char *attrs = ry__malloc(asize);
  if (!attrs) {
    ry__free(groups, gsize);
    rys_fail(c, RY_ERR_OUT_OF_MEMORY, "stablehlo: out of memory");
    return;
  }
  rys_name_result(c, n);
  const char *args[1] = {NAME(OPD(0))};
  long long dim = (long long)n->attrs.collective.dim;
  switch (n->op) {
  case RY_OP_ALL_GATHER:
    snprintf(attrs, asize, "all_gather_dim = %lld : i64, %s", dim, groups);
    rys_op(c, NAME(RES(0)), "stablehlo.all_gather", 1, args, &xt, attrs, 1, &rt);
    break;
  case RY_OP_COLLECTIVE_BROADCAST:
    snprintf(attrs, asize, "%s", groups);
    rys_op(c, NAME(RES(0)), "stablehlo.collective_broadcast", 1, args, &xt, attrs, 1, &rt);
    break;
  case RY_OP_REDUCE_SCATTER:
    snprintf(attrs, asize, "scatter_dimension = %lld : i64, %s", dim, groups);
    rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.reduce_scatter", 1, args);
    collective_reducer(c, n->attrs.collective.kind, xt.dtype);
    rys_op_end_regions(c, attrs, 1, &xt, 1, &rt);
    break;
  default:
    snprintf(attrs, asize, "%s", groups);
    rys_op_begin(c, NAME(RES(0)), 1, "stablehlo.all_reduce", 1, args);
    collective_reducer(c, n->attrs.collective.kind, xt.dtype);
    rys_op_end_regions(c, attrs, 1, &xt, 1, &rt);
    break;
  }
  ry__free(attrs, asize);
  ry__free(groups, gsize);
}

char *rys_sharding_str(const ry_axes *mesh, const ry_axes *dims, char *buf, size_t size) {
  int64_t tiles[RY_MAX_RANK + 1], nt = 0, rep = 1, total = mesh_devices(mesh);
  bool used[RY_MAX_RANK] = {false}, split = false;
  for (int i = 0; i < dims->n; i++)
    if (dims->v[i] >= 0) used[dims->v[i]] = split = true;
  for (int a = 0; a < mesh->n; a++)
    if (!used[a]) rep *= mesh->v[a];
  if (!split || total <= 1) {
    snprintf(buf, size, "{replicated}");
    return buf;
  }
  for (int i = 0; i < dims->n; i++) tiles[nt++] = dims->v[i] >= 0 ? mesh->v[dims->v[i]] : 1;
  if (rep > 1) tiles[nt++] = rep;
  size_t k = (size_t)snprintf(buf, size, "{devices=[");
  for (int i = 0; i < nt && k < size; i++) k += (size_t)snprintf(buf + k, size - k, i ? ",%lld" : "%lld", (long long)tiles[i]);
  if (k < size) k += (size_t)snprintf(buf + k, size - k, "]");
  /* tile index (row-major over tiles) -> mesh coordinates -> device id */
  for (int64_t t = 0; t < total && k < size; t++) {
    int64_t tidx[RY_MAX_RANK + 1], rest = t, coord[RY_MAX_RANK] = {0};
    for (int i = (int)nt - 1; i >= 0; i--) {
      tidx[i] = rest % tiles[i];
      rest /= tiles[i];
    }
    for (int i = 0; i < dims->n; i++)
      if (dims->v[i] >= 0) coord[dims->v[i]] = tidx[i];
    int64_t r = rep > 1 ? tidx[nt - 1] : 0;
    for (int a = mesh->n - 1; a >= 0; a--)
      if (!used[a]) {
        coord[a] = r % mesh->v[a];
        r /= mesh->v[a];
      }
    int64_t dev = 0;
    for (int a = 0; a < mesh->n; a++) dev = dev * mesh->v[a] + coord[a];
    k += (size_t)snprintf(buf + k, size - k, t ? ",%lld" : "%lld", (long long)dev);
  }
  if (k < size) snprintf(buf + k, size - k, "%s}", rep > 1 ? " last_tile_dim_replicate" : "");
  return buf;
}

/* sharding: a custom call XLA's SPMD partitioner reads (as JAX's
 * with_sharding_constraint emits it). */
void rys_r_sharding(rys_ctx *c, const ry_node *n) {
  ry_type xt = rys_vtype(c, OPD(0));
  char sh[RYS_SHARDING], attrs[RYS_SHARDING + 96];
  rys_sharding_str(&n->attrs.sharding.mesh, &n->attrs.sharding.dims, sh, sizeof sh);
  snprintf(attrs, sizeof attrs, "call_target_name = \"Sharding\", mhlo.sharding = \"%s\"", sh);
  rys_name_result(c, n);
  const char *args[1] = {NAME(OPD(0))};
  rys_op(c, NAME(RES(0)), "stablehlo.custom_call", 1, args, &xt, attrs, 1, &xt);
}
