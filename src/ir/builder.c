/* Tracing: the builder records ops into a graph as user code calls them.
 * Values from enclosing regions used inside a cond/while region are lifted
 * into explicit region parameters (closure conversion), so regions in the IR
 * stay closed. */
#include <stdio.h>

#include "builder.h"

int ryb_fail(ry_builder *b, ry_status err) {
  if (!b) {
    ry_status_free(err);
    return 0;
  }
  if (b->err)
    ry_status_free(err);
  else
    b->err = err;
  return 0;
}

int ryb_failf(ry_builder *b, ry_loc loc, ry_code code, const char *opname, const char *fmt, ...) {
  if (!b || b->err) return 0;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (loc.file) return ryb_fail(b, ry__err(code, "%s: %s at %s:%d", opname, msg, loc.file, loc.line));
  return ryb_fail(b, ry__err(code, "%s: %s", opname, msg));
}

ry_builder *ry_builder_new(const char *name) {
  ry_builder *b = ry__calloc(1, sizeof *b);
  if (!b) return NULL;
  b->g = ry__graph_new(name);
  if (!b->g) {
    ry__free(b, sizeof *b);
    return NULL;
  }
  b->stack[0] = 0;
  b->depth = 1;
  return b;
}

void ry_builder_free(ry_builder *b) {
  if (!b) return;
  ry_graph_release(b->g);
  ry_status_free(b->err);
  ry__free(b, sizeof *b);
}

ry_status ry_builder_error(const ry_builder *b) { return b ? b->err : NULL; }
int ry_builder_set_error(ry_builder *b, ry_status err) { return ryb_fail(b, err); }

int ry_builder_set_matmul_dtype(ry_builder *b, ry_dtype compute) {
  if (!b) return 0;
  if (compute != RY_F32 && compute != RY_BF16)
    return ryb_fail(b, ry__err(RY_ERR_INVALID_ARGUMENT, "ry_builder_set_matmul_dtype: %s is not a matmul precision (f32 or bf16)",
                               (unsigned)compute < RY_DTYPE_COUNT ? ry_dtype_name(compute) : "an unknown dtype"));
  b->mm_dtype = compute;
  return 1;
}

ry_dtype ry_builder_matmul_dtype(const ry_builder *b) { return b && b->mm_dtype == RY_BF16 ? RY_BF16 : RY_F32; }

int ry_value_ok(ry_value v) { return v.id != 0; }

static bool valid_id(const ry_builder *b, ry_value v) { return v.id != 0 && v.id < (uint32_t)b->g->n_values; }

ry_type ry_value_type(const ry_builder *b, ry_value v) {
  ry_type t = {RY_F32, {0, {0}}};
  if (!b || !valid_id(b, v)) return t;
  return b->g->values[v.id].type;
}
ry_dtype ry_value_dtype(const ry_builder *b, ry_value v) { return ry_value_type(b, v).dtype; }
ry_shape ry_value_shape(const ry_builder *b, ry_value v) { return ry_value_type(b, v).shape; }

static bool valid_type(ry_type t) {
  if ((int)t.dtype < 0 || t.dtype >= RY_DTYPE_COUNT || t.shape.rank < 0 || t.shape.rank > RY_MAX_RANK) return false;
  for (int i = 0; i < t.shape.rank; i++)
    if (t.shape.dims[i] < 0) return false;
  return true;
}

static ry_type clean_type(ry_type t) {
  for (int i = t.shape.rank; i < RY_MAX_RANK; i++) t.shape.dims[i] = 0;
  return t;
}

ry_value ry_input(ry_builder *b, const char *name, ry_type type) {
  ry_value none = {0};
  if (!ryb_ok(b)) return none;
  if (b->depth != 1)
    return ryb_failf(b, (ry_loc){0}, RY_ERR_INVALID_ARGUMENT, "ry_input", "inputs can only be added at the top level"), none;
  if (!valid_type(type)) {
    return ryb_failf(b, (ry_loc){0}, RY_ERR_INVALID_ARGUMENT, "ry_input", "input %d%s%s%s has an invalid type (dtype %d, rank %d)",
                     b->g->regions[0].params.n, name ? " ('" : "", name ? name : "", name ? "')" : "", (int)type.dtype,
                     type.shape.rank),
           none;
  }
  int32_t v = ry__graph_add_param(b->g, 0, clean_type(type), name);
  if (v < 0) return ryb_fail(b, ry__oom()), none;
  return (ry_value){(uint32_t)v};
}

/* Bring value v into region stack[level], adding capture parameters in every
 * region between its own region and that one. */
static int32_t lift(ry_builder *b, int32_t v, int level) {
  int32_t vr = b->g->values[v].region;
  if (vr == b->stack[level]) return v;
  if (level == 0) return -1;
  int32_t outer = lift(b, v, level - 1); /* the value as seen by the parent */
  if (outer < 0) return outer;
  ry_region *r = &b->g->regions[b->stack[level]];
  for (int i = 0; i < r->cap_outer.n; i++)
    if (r->cap_outer.v[i] == outer) return r->cap_param.v[i];
  int32_t p = ry__graph_add_param(b->g, b->stack[level], b->g->values[v].type, NULL);
  if (p < 0) return -2;
  r = &b->g->regions[b->stack[level]];
  if (!ry__ivec_push(&r->cap_outer, outer) || !ry__ivec_push(&r->cap_param, p)) return -2;
  return p;
}

static int32_t use_value(ry_builder *b, ry_loc loc, const char *opname, ry_value v, int i) {
  if (!valid_id(b, v)) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, opname, "operand %d is not a valid value (id %u)", i, v.id);
    return -1;
  }
  int32_t id = lift(b, (int32_t)v.id, b->depth - 1);
  if (id == -2) {
    ryb_fail(b, ry__oom());
    return -1;
  }
  if (id < 0) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, opname,
              "operand %d (%%%u) was defined inside a cond/while/switch region that has already finished", i, v.id);
    return -1;
  }
  return id;
}

int ryb_emit(ry_builder *b, ry_loc loc, ry_op op, int n_in, const ry_value *in, ry_attrs *attrs, int n_req,
             const ry_type *req, int n_regions, const int32_t *regions, ry_value *out) {
  ry_attrs none;
  memset(&none, 0, sizeof none);
  if (!attrs) attrs = &none;
  const char *opname = ryg_op_table[op].name;
  int n_res = 0;
  int32_t *ids = NULL;
  ry_type *types = NULL, *res = NULL;
  if (!ryb_ok(b)) goto fail;
  if (n_in < 0 || n_in > 100000 || (n_in && !in)) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, opname, "invalid operand list (%d operands)", n_in);
    goto fail;
  }
  if (n_req < 0 || n_req > RY_MAX_OUTPUTS) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, opname, "invalid number of results %d", n_req);
    goto fail;
  }
  ids = ry__calloc((size_t)n_in + 1, sizeof *ids);
  types = ry__calloc((size_t)n_in + 1, sizeof *types);
  res = ry__calloc(RY_MAX_OUTPUTS, sizeof *res);
  if (!ids || !types || !res) {
    ryb_fail(b, ry__oom());
    goto fail;
  }
  for (int i = 0; i < n_in; i++) {
    ids[i] = use_value(b, loc, opname, in[i], i);
    if (ids[i] < 0) goto fail;
    types[i] = b->g->values[ids[i]].type;
  }
  for (int i = 0; i < n_req; i++) {
    res[i] = clean_type(req[i]);
    if (!valid_type(res[i])) {
      ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, opname, "requested result type %d is invalid (dtype %d, rank %d)", i,
                (int)req[i].dtype, req[i].shape.rank);
      goto fail;
    }
  }
  n_res = n_req;
  ry_status s = ry__infer(op, attrs, n_in, types, b->g, n_regions, regions, res, &n_res, loc);
  if (s) {
    ryb_fail(b, s);
    goto fail;
  }
  for (int i = 0; i < n_res; i++) res[i] = clean_type(res[i]);
  int32_t node = ry__graph_add_node(b->g, b->stack[b->depth - 1], op, n_in, ids, n_res, res, n_regions, regions, attrs, loc);
  if (node < 0) {
    ryb_fail(b, ry__oom());
    goto fail;
  }
  attrs = &none; /* owned by the graph now */
  if (out) {
    const int32_t *r = ry_node_results(b->g, &b->g->nodes[node]);
    for (int i = 0; i < n_res; i++) out[i] = (ry_value){(uint32_t)r[i]};
  }
  ry__free(ids, ((size_t)n_in + 1) * sizeof *ids);
  ry__free(types, ((size_t)n_in + 1) * sizeof *types);
  ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
  return n_res;
fail:
  ry__attrs_free(op, attrs);
  if (ids) ry__free(ids, ((size_t)n_in + 1) * sizeof *ids);
  if (types) ry__free(types, ((size_t)n_in + 1) * sizeof *types);
  if (res) ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
  return 0;
}

ry_value ryb_emit1(ry_builder *b, ry_loc loc, ry_op op, int n_in, const ry_value *in, ry_attrs *attrs, const ry_type *req) {
  ry_value out[2] = {{0}, {0}};
  int n = ryb_emit(b, loc, op, n_in, in, attrs, req ? 1 : 0, req, 0, NULL, out);
  return n == 1 ? out[0] : (ry_value){0};
}

int ryb_trace_region(ry_builder *b, ry_loc loc, const char *what, ry_fn fn, void *ctx, int n_params, const ry_type *types,
                     int32_t *region_out, int *n_results_out) {
  if (!ryb_ok(b)) return 0;
  if (!fn) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, what, "the function is NULL");
  if (b->depth >= RY_MAX_REGION_DEPTH)
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, what, "regions are nested deeper than %d", RY_MAX_REGION_DEPTH);
  int32_t r = ry__graph_add_region(b->g, -1);
  if (r < 0) return ryb_fail(b, ry__oom());
  ry_value *params = ry__calloc((size_t)n_params + 1, sizeof *params);
  ry_value *outs = ry__calloc(RY_MAX_OUTPUTS, sizeof *outs);
  int ok = 0;
  if (!params || !outs) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < n_params; i++) {
    int32_t p = ry__graph_add_param(b->g, r, clean_type(types[i]), NULL);
    if (p < 0) {
      ryb_fail(b, ry__oom());
      goto done;
    }
    params[i] = (ry_value){(uint32_t)p};
  }
  b->stack[b->depth++] = r;
  int n = fn(b, params, outs, ctx);
  if (ryb_ok(b) && (n < 0 || n > RY_MAX_OUTPUTS)) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, what, "the traced function returned %d (expected 0..%d outputs)", n, RY_MAX_OUTPUTS);
  }
  if (ryb_ok(b)) {
    for (int i = 0; i < n; i++) {
      int32_t id = use_value(b, loc, what, outs[i], i);
      if (id < 0) break;
      if (!ry__ivec_push(&b->g->regions[r].results, id)) {
        ryb_fail(b, ry__oom());
        break;
      }
    }
  }
  b->depth--;
  if (ryb_ok(b)) {
    *region_out = r;
    *n_results_out = n;
    ok = 1;
  }
done:
  ry__free(params, ((size_t)n_params + 1) * sizeof *params);
  ry__free(outs, RY_MAX_OUTPUTS * sizeof *outs);
  return ok;
}

/* Union of the values captured by regions rs (values of the current region). */
static bool capture_union(ry_builder *b, int n, const int32_t *rs, ry_ivec *u) {
  for (int k = 0; k < n; k++) {
    ry_region *r = &b->g->regions[rs[k]];
    for (int i = 0; i < r->cap_outer.n; i++) {
      int32_t v = r->cap_outer.v[i];
      bool seen = false;
      for (int j = 0; j < u->n; j++) seen |= u->v[j] == v;
      if (!seen && !ry__ivec_push(u, v)) return false;
    }
  }
  return true;
}

/* Rebuild region r's params as [captures in u order] + [first n_explicit]
 * (consts_first) or [first n_explicit] + [captures]. Regions that did not
 * capture a value get an unused parameter for it. */
static bool order_params(ry_builder *b, int32_t r, int n_explicit, const ry_ivec *u, bool consts_first) {
  ry_ivec np = {0};
  ry_ivec caps = {0};
  for (int j = 0; j < u->n; j++) {
    ry_region *reg = &b->g->regions[r];
    int32_t p = -1;
    for (int i = 0; i < reg->cap_outer.n; i++)
      if (reg->cap_outer.v[i] == u->v[j]) p = reg->cap_param.v[i];
    if (p < 0) p = ry__graph_add_param(b->g, r, b->g->values[u->v[j]].type, NULL);
    if (p < 0 || !ry__ivec_push(&caps, p)) goto oom;
  }
  ry_region *reg = &b->g->regions[r];
  if (consts_first)
    for (int j = 0; j < caps.n; j++)
      if (!ry__ivec_push(&np, caps.v[j])) goto oom;
  for (int i = 0; i < n_explicit; i++)
    if (!ry__ivec_push(&np, reg->params.v[i])) goto oom;
  if (!consts_first)
    for (int j = 0; j < caps.n; j++)
      if (!ry__ivec_push(&np, caps.v[j])) goto oom;
  ry__ivec_free(&reg->params);
  reg->params = np;
  for (int i = 0; i < np.n; i++) b->g->values[np.v[i]].index = i;
  ry__ivec_free(&reg->cap_outer);
  ry__ivec_free(&reg->cap_param);
  ry__ivec_free(&caps);
  return true;
oom:
  ry__ivec_free(&np);
  ry__ivec_free(&caps);
  return false;
}

static int emit_cond(ry_builder *b, ry_loc loc, const char *name, ry_value index, int n_br, const ry_fn *fns, void *ctx,
                     int n_args, const ry_value *args, ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (n_br < 1 || n_br > 1024 || !fns)
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "needs 1..1024 branches, got %d", n_br);
  if (n_args < 0 || n_args > RY_MAX_OUTPUTS || (n_args && !args))
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "invalid argument list");
  ry_type *types = ry__calloc((size_t)n_args + 1, sizeof *types);
  int32_t *regions = ry__calloc((size_t)n_br, sizeof *regions);
  ry_value *ops = NULL;
  ry_ivec u = {0};
  int result = 0;
  if (!types || !regions) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < n_args; i++) {
    if (!valid_id(b, args[i])) {
      ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, name, "argument %d is not a valid value", i);
      goto done;
    }
    types[i] = b->g->values[args[i].id].type;
  }
  for (int k = 0; k < n_br; k++) {
    int nres;
    char what[64];
    snprintf(what, sizeof what, "%s branch %d", name, k);
    if (!ryb_trace_region(b, loc, what, fns[k], ctx, n_args, types, &regions[k], &nres)) goto done;
  }
  if (!capture_union(b, n_br, regions, &u)) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int k = 0; k < n_br; k++)
    if (!order_params(b, regions[k], n_args, &u, false)) {
      ryb_fail(b, ry__oom());
      goto done;
    }
  ops = ry__calloc((size_t)(1 + n_args + u.n), sizeof *ops);
  if (!ops) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  ops[0] = index;
  for (int i = 0; i < n_args; i++) ops[1 + i] = args[i];
  for (int j = 0; j < u.n; j++) ops[1 + n_args + j] = (ry_value){(uint32_t)u.v[j]};
  result = ryb_emit(b, loc, RY_OP_COND, 1 + n_args + u.n, ops, NULL, 0, NULL, n_br, regions, out);
done:
  ry__free(types, ((size_t)n_args + 1) * sizeof *types);
  ry__free(regions, (size_t)n_br * sizeof *regions);
  if (ops) ry__free(ops, (size_t)(1 + n_args + u.n) * sizeof *ops);
  ry__ivec_free(&u);
  return result;
}

int ry_cond_(ry_builder *b, ry_loc loc, ry_value pred, ry_fn true_fn, ry_fn false_fn, void *ctx, int n_args,
             const ry_value *args, ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (valid_id(b, pred) && b->g->values[pred.id].type.dtype != RY_BOOL)
    return ryb_failf(b, loc, RY_ERR_DTYPE, "cond", "the predicate has type %s; it must be bool[]",
                     ry_type_str(b->g->values[pred.id].type, (char[200]){0}, 200));
  ry_fn fns[2] = {false_fn, true_fn};
  return emit_cond(b, loc, "cond", pred, 2, fns, ctx, n_args, args, out);
}

int ry_switch_(ry_builder *b, ry_loc loc, ry_value index, int n_branches, const ry_fn *branches, void *ctx, int n_args,
               const ry_value *args, ry_value *out) {
  return emit_cond(b, loc, "switch", index, n_branches, branches, ctx, n_args, args, out);
}

int ry_while_(ry_builder *b, ry_loc loc, ry_fn cond_fn, ry_fn body_fn, void *ctx, int n_carry, const ry_value *init,
              ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (n_carry < 0 || n_carry > RY_MAX_OUTPUTS || (n_carry && !init))
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "while", "invalid carry list (%d values)", n_carry);
  ry_type *types = ry__calloc((size_t)n_carry + 1, sizeof *types);
  ry_value *ops = NULL;
  ry_ivec u = {0};
  int32_t regions[2];
  int result = 0, nres;
  if (!types) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < n_carry; i++) {
    if (!valid_id(b, init[i])) {
      ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "while", "initial value %d is not a valid value", i);
      goto done;
    }
    types[i] = b->g->values[init[i].id].type;
  }
  if (!ryb_trace_region(b, loc, "while cond", cond_fn, ctx, n_carry, types, &regions[0], &nres)) goto done;
  if (!ryb_trace_region(b, loc, "while body", body_fn, ctx, n_carry, types, &regions[1], &nres)) goto done;
  if (!capture_union(b, 2, regions, &u) || !order_params(b, regions[0], n_carry, &u, true) ||
      !order_params(b, regions[1], n_carry, &u, true)) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  ops = ry__calloc((size_t)(u.n + n_carry + 1), sizeof *ops);
  if (!ops) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int j = 0; j < u.n; j++) ops[j] = (ry_value){(uint32_t)u.v[j]};
  for (int i = 0; i < n_carry; i++) ops[u.n + i] = init[i];
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.while_.n_consts = u.n;
  result = ryb_emit(b, loc, RY_OP_WHILE, u.n + n_carry, ops, &a, 0, NULL, 2, regions, out);
done:
  ry__free(types, ((size_t)n_carry + 1) * sizeof *types);
  if (ops) ry__free(ops, (size_t)(u.n + n_carry + 1) * sizeof *ops);
  ry__ivec_free(&u);
  return result;
}

int ry_scan_(ry_builder *b, ry_loc loc, ry_fn body, void *ctx, int64_t length, int n_carry, const ry_value *init, int n_xs,
             const ry_value *xs, int reverse, ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (n_carry < 0 || n_xs < 0 || n_carry + n_xs > RY_MAX_OUTPUTS || (n_carry && !init) || (n_xs && !xs))
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "scan", "invalid carry or xs list (%d, %d values)", n_carry, n_xs);
  ry_type *types = ry__calloc((size_t)(n_carry + n_xs) + 1, sizeof *types);
  ry_value *ops = NULL;
  ry_ivec u = {0};
  int32_t region;
  int result = 0, nres;
  if (!types) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < n_carry + n_xs; i++) {
    ry_value v = i < n_carry ? init[i] : xs[i - n_carry];
    if (!valid_id(b, v)) {
      ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "scan", "%s %d is not a valid value", i < n_carry ? "carry" : "xs",
                i < n_carry ? i : i - n_carry);
      goto done;
    }
    types[i] = b->g->values[v.id].type;
    if (i >= n_carry) {
      ry_shape sh = types[i].shape;
      if (sh.rank < 1) {
        ryb_failf(b, loc, RY_ERR_SHAPE, "scan", "xs %d is a scalar; scanned values need a leading axis", i - n_carry);
        goto done;
      }
      if (i == n_carry && n_xs && length < 0) length = sh.dims[0];
      for (int k = 0; k + 1 < sh.rank; k++) types[i].shape.dims[k] = sh.dims[k + 1];
      types[i].shape.dims[sh.rank - 1] = 0;
      types[i].shape.rank = sh.rank - 1;
    }
  }
  if (length < 0) {
    ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "scan", "the length is unknown: pass it, or scan over xs");
    goto done;
  }
  if (!ryb_trace_region(b, loc, "scan body", body, ctx, n_carry + n_xs, types, &region, &nres)) goto done;
  if (!capture_union(b, 1, &region, &u) || !order_params(b, region, n_carry + n_xs, &u, true)) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  ops = ry__calloc((size_t)(u.n + n_carry + n_xs + 1), sizeof *ops);
  if (!ops) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int j = 0; j < u.n; j++) ops[j] = (ry_value){(uint32_t)u.v[j]};
  for (int i = 0; i < n_carry; i++) ops[u.n + i] = init[i];
  for (int i = 0; i < n_xs; i++) ops[u.n + n_carry + i] = xs[i];
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.scan.length = length;
  a.scan.n_consts = u.n;
  a.scan.n_carry = n_carry;
  a.scan.reverse = reverse != 0;
  result = ryb_emit(b, loc, RY_OP_SCAN, u.n + n_carry + n_xs, ops, &a, 0, NULL, 1, &region, out);
done:
  ry__free(types, ((size_t)(n_carry + n_xs) + 1) * sizeof *types);
  if (ops) ry__free(ops, (size_t)(u.n + n_carry + n_xs + 1) * sizeof *ops);
  ry__ivec_free(&u);
  return result;
}

typedef struct {
  ry_fn body;
  void *ctx;
  int n_carry;
} fori_ctx;

static int fori_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const fori_ctx *c = ctx;
  /* in = (i, carry...): the user's body gets the same and returns carry' */
  int n = c->body(b, in, out + 1, c->ctx);
  if (ryb_ok(b) && n != c->n_carry)
    return ryb_failf(b, (ry_loc){0}, RY_ERR_INVALID_ARGUMENT, "fori_loop", "the body returned %d values for a carry of %d", n,
                     c->n_carry);
  out[0] = ry_add_(b, (ry_loc){0}, in[0], ry_scalar_(b, (ry_loc){0}, RY_I32, 1));
  return c->n_carry + 1;
}

int ry_fori_loop_(ry_builder *b, ry_loc loc, int64_t lo, int64_t hi, ry_fn body, void *ctx, int n_carry, const ry_value *init,
                  ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (!body) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "fori_loop", "the body is NULL");
  if (n_carry < 0 || n_carry >= RY_MAX_OUTPUTS || (n_carry && !init))
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "fori_loop", "invalid carry list (%d values)", n_carry);
  if (lo < INT32_MIN || hi > INT32_MAX)
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "fori_loop", "bounds %lld..%lld do not fit i32", (long long)lo, (long long)hi);
  ry_value *c = ry__calloc((size_t)n_carry + 1, sizeof *c), *o = ry__calloc((size_t)n_carry + 1, sizeof *o);
  int r = 0;
  if (!c || !o) {
    ryb_fail(b, ry__oom());
  } else {
    c[0] = ry_scalar_(b, loc, RY_I32, (double)lo);
    for (int i = 0; i < n_carry; i++) c[1 + i] = init[i];
    fori_ctx fc = {body, ctx, n_carry};
    if (ry_scan_(b, loc, fori_body, &fc, hi > lo ? hi - lo : 0, n_carry + 1, c, 0, NULL, 0, o)) {
      for (int i = 0; i < n_carry; i++) out[i] = o[1 + i];
      r = n_carry;
    }
  }
  ry__free(c, ((size_t)n_carry + 1) * sizeof *c);
  ry__free(o, ((size_t)n_carry + 1) * sizeof *o);
  return r;
}

int ry_call_(ry_builder *b, ry_loc loc, ry_graph *g, int n_args, const ry_value *args, ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (!g) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "call", "the graph is NULL");
  if (g == b->g) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "call", "a graph cannot call itself");
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.call.callee = ry_graph_retain(g);
  return ryb_emit(b, loc, RY_OP_CALL, n_args, args, &a, 0, NULL, 0, NULL, out);
}

static int call_with(ry_builder *b, ry_loc loc, const char *api, ry_graph *f, ry_graph *jvp, ry_graph *fwd, ry_graph *bwd,
                     int64_t remat, int n_args, const ry_value *args, ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (!f) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, api, "the function graph is NULL");
  if (f == b->g) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, api, "a graph cannot call itself");
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.call.callee = ry_graph_retain(f);
  a.call.jvp = ry_graph_retain(jvp);
  a.call.fwd = ry_graph_retain(fwd);
  a.call.bwd = ry_graph_retain(bwd);
  a.call.remat = remat;
  return ryb_emit(b, loc, RY_OP_CALL, n_args, args, &a, 0, NULL, 0, NULL, out);
}

int ry_custom_jvp_(ry_builder *b, ry_loc loc, ry_graph *f, ry_graph *jvp_rule, int n_args, const ry_value *args, ry_value *out) {
  if (ryb_ok(b) && !jvp_rule) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "custom_jvp", "the jvp rule is NULL");
  return call_with(b, loc, "custom_jvp", f, jvp_rule, NULL, NULL, 0, n_args, args, out);
}

int ry_custom_vjp_(ry_builder *b, ry_loc loc, ry_graph *f, ry_graph *fwd, ry_graph *bwd, int n_args, const ry_value *args,
                   ry_value *out) {
  if (ryb_ok(b) && (!fwd || !bwd)) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "custom_vjp", "fwd and bwd are both required");
  return call_with(b, loc, "custom_vjp", f, NULL, fwd, bwd, 0, n_args, args, out);
}

int ry_checkpoint_(ry_builder *b, ry_loc loc, ry_graph *f, ry_remat_policy policy, int n_args, const ry_value *args, ry_value *out) {
  if (ryb_ok(b) && (policy < RY_REMAT_SAVE_NOTHING || policy > RY_REMAT_SAVE_EVERYTHING))
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "checkpoint", "unknown policy %d", (int)policy);
  return call_with(b, loc, "checkpoint", f, NULL, NULL, NULL, policy == RY_REMAT_SAVE_EVERYTHING ? 0 : policy, n_args, args, out);
}

/* stop_gradient(x) = x with a zero JVP: a call of the identity whose custom
 * rule returns zero tangents. */
static int sg_identity(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)b;
  (void)ctx;
  out[0] = in[0];
  return 1;
}
static int sg_zero_jvp(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = in[0];
  out[1] = ry_full_(b, (ry_loc){0}, ry_value_dtype(b, in[0]), ry_value_shape(b, in[0]), 0.0);
  return 2;
}

ry_value ry_stop_gradient_(ry_builder *b, ry_loc loc, ry_value x) {
  if (!ryb_ok(b)) return (ry_value){0};
  if (!valid_id(b, x)) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "stop_gradient", "operand is not a valid value"), (ry_value){0};
  ry_type t = b->g->values[x.id].type, t2[2] = {t, t};
  ry_graph *id = NULL, *zj = NULL;
  ry_status s = ry_trace("stop_gradient", sg_identity, NULL, 1, &t, NULL, &id);
  if (!s) s = ry_trace("stop_gradient_jvp", sg_zero_jvp, NULL, 2, t2, NULL, &zj);
  ry_value out = {0};
  if (s)
    ryb_fail(b, s);
  else
    ry_custom_jvp_(b, loc, id, zj, 1, &x, &out);
  ry_graph_release(id);
  ry_graph_release(zj);
  return out;
}

int ry_custom_call_(ry_builder *b, ry_loc loc, const char *target, int n_args, const ry_value *args, int n_out,
                    const ry_type *out_types, ry_value *out) {
  if (!ryb_ok(b)) return 0;
  if (!target || !target[0]) return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "custom_call", "the target name is empty");
  if (n_out < 0 || n_out > RY_MAX_OUTPUTS || (n_out && !out_types))
    return ryb_failf(b, loc, RY_ERR_INVALID_ARGUMENT, "custom_call", "invalid result list (%d results)", n_out);
  ry_attrs a;
  memset(&a, 0, sizeof a);
  a.custom.target = ry__strdup(target);
  if (!a.custom.target) return ryb_fail(b, ry__oom());
  return ryb_emit(b, loc, RY_OP_CUSTOM_CALL, n_args, args, &a, n_out, out_types, 0, NULL, out);
}

ry_status ry_builder_finish(ry_builder *b, int n_out, const ry_value *outs, ry_graph **out) {
  if (out) *out = NULL;
  if (!b) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_builder_finish: builder is NULL");
  ry_status s = NULL;
  if (b->err) {
    s = b->err;
    b->err = NULL;
  } else if (!out) {
    s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_builder_finish: out is NULL");
  } else if (n_out < 0 || n_out > RY_MAX_OUTPUTS || (n_out && !outs)) {
    s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_builder_finish: invalid output list (%d outputs)", n_out);
  } else {
    for (int i = 0; i < n_out && !s; i++) {
      if (!valid_id(b, outs[i])) {
        s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_builder_finish: output %d is not a valid value (id %u)", i, outs[i].id);
      } else if (b->g->values[outs[i].id].region != 0) {
        s = ry__err(RY_ERR_INVALID_ARGUMENT,
                    "ry_builder_finish: output %d was defined inside a cond/while region and cannot escape it", i);
      } else if (!ry__ivec_push(&b->g->regions[0].results, (int32_t)outs[i].id)) {
        s = ry__oom();
      }
    }
  }
  if (!s) {
    /* captures bookkeeping is not needed any more */
    for (int32_t r = 0; r < b->g->n_regions; r++) {
      ry__ivec_free(&b->g->regions[r].cap_outer);
      ry__ivec_free(&b->g->regions[r].cap_param);
    }
    ry__graph_trim(b->g);
    *out = b->g;
    b->g = NULL;
  }
  ry_builder_free(b);
  return s;
}

ry_status ry_trace(const char *name, ry_fn fn, void *ctx, int n_in, const ry_type *in_types, const char *const *input_names,
                   ry_graph **out) {
  if (out) *out = NULL;
  if (!fn) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_trace: the function is NULL");
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_trace: out is NULL");
  if (n_in < 0 || n_in > 100000 || (n_in && !in_types))
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_trace: invalid input list (%d inputs)", n_in);
  ry_builder *b = ry_builder_new(name);
  if (!b) return ry__oom();
  ry_value *in = ry__calloc((size_t)n_in + 1, sizeof *in);
  ry_value *outs = ry__calloc(RY_MAX_OUTPUTS, sizeof *outs);
  ry_status s = NULL;
  if (!in || !outs) {
    ry_builder_free(b);
    s = ry__oom();
    goto done;
  }
  for (int i = 0; i < n_in; i++) in[i] = ry_input(b, input_names ? input_names[i] : NULL, in_types[i]);
  int n = ryb_ok(b) ? fn(b, in, outs, ctx) : 0;
  if (ryb_ok(b) && (n < 0 || n > RY_MAX_OUTPUTS))
    ryb_failf(b, (ry_loc){0}, RY_ERR_INVALID_ARGUMENT, "ry_trace", "the traced function returned %d (expected 0..%d outputs)", n,
              RY_MAX_OUTPUTS);
  s = ry_builder_finish(b, ryb_ok(b) ? n : 0, outs, out);
done:
  if (in) ry__free(in, ((size_t)n_in + 1) * sizeof *in);
  if (outs) ry__free(outs, RY_MAX_OUTPUTS * sizeof *outs);
  return s;
}
