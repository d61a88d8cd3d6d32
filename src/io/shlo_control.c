/* The StableHLO importer's control flow: `while` (a counted loop becomes
 * `scan`: the state the body returns unchanged becomes loop constants, other
 * step counters are derived from the carried one, so ryft's own exported scan
 * imports back to the same scan), `case`/`if` onto cond, and calls. */
#include <stdio.h>
#include <stdlib.h>

#include "shlo_internal.h"

typedef shlo_x X;

/* ---- control flow ---- */

typedef struct rctx {
  X *x;
  const shlo_region *regs[2];
  int next;            /* branches: the next region to trace, via map */
  const int *map;
  int n_state;
  const bool *inv;     /* scan: loop-invariant state entries */
  const ry_value *init;
  const shlo_region *body;
  int ctr;             /* scan: the step counter's state index */
  bool *derived;       /* scan: other counters, ctr + off */
  int64_t *off;
} rctx;

/* k + off in k's dtype (k itself for 0). */
static ry_value offset_of(ry_builder *b, ry_loc loc, ry_value k, int64_t off) {
  if (!off) return k;
  ry_type t = ry_value_type(b, k);
  ry_value c = ry_full_(b, loc, t.dtype, t.shape, (double)off);
  ry_value ops[2] = {k, c};
  return ryb_emit1(b, loc, RY_OP_ADD, 2, ops, NULL, NULL);
}

static int run_region(rctx *c, const shlo_region *r, int n_in, const ry_value *in, ry_value *out) {
  int n = shlo_region_run(c->x->im, c->x->b, c->x->sc, r, n_in, in, out, RY_MAX_OUTPUTS);
  return n < 0 ? 0 : n;
}

static int fn_cond(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)b;
  rctx *c = ctx;
  return run_region(c, c->regs[0], c->n_state, in, out);
}
static int fn_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)b;
  rctx *c = ctx;
  return run_region(c, c->regs[1], c->n_state, in, out);
}
static int fn_branch(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)b;
  rctx *c = ctx;
  int k = c->map[c->next++];
  return run_region(c, c->x->op->reg[k], 0, in, out);
}

/* scan body: invariant state entries are the outer values; the carry is the rest */
static int fn_scan(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  rctx *c = ctx;
  ry_value *all = ry__calloc((size_t)c->n_state + 1, sizeof *all), *res = ry__calloc(RY_MAX_OUTPUTS, sizeof *res);
  int k = 0, n = 0;
  if (!all || !res) {
    ryb_fail(b, ry__oom());
  } else {
    int kpos = 0;
    for (int i = 0; i < c->n_state; i++) {
      if (i == c->ctr) kpos = k;
      all[i] = c->inv[i] ? c->init[i] : c->derived[i] ? (ry_value){0} : in[k++];
    }
    for (int i = 0; i < c->n_state; i++)
      if (c->derived[i]) all[i] = offset_of(b, c->x->loc, in[kpos], c->off[i]);
    int got = run_region(c, c->body, c->n_state, all, res);
    if (got == c->n_state)
      for (int i = 0; i < c->n_state; i++)
        if (!c->inv[i] && !c->derived[i]) out[n++] = res[i];
  }
  ry__free(all, ((size_t)c->n_state + 1) * sizeof *all);
  ry__free(res, RY_MAX_OUTPUTS * sizeof *res);
  return n;
}

/* The integer a name holds when it is a constant (in region r or outside). */
static bool const_int(X *x, const shlo_region *r, shlo_span name, int64_t *v) {
  const shlo_op *d = shlo_def_in(r, name);
  const ry_array *a = NULL;
  ry_array *own = NULL;
  if (d) {
    if (!shlo_span_is(d->name, "stablehlo.constant") || d->n_tout < 1) return false;
    ry_type t;
    char why[64];
    const shlo_span *val = shlo_kv_get(d, "value");
    if (!val && d->n_word) val = &d->word[0];
    if (!val || shlo_type(d->tout[d->n_tout - 1], &t, why, sizeof why) != 1 || t.shape.rank != 0) return false;
    ry_status err = NULL;
    own = shlo_dense(*val, t, &err);
    ry_status_free(err);
    a = own;
  } else {
    /* outside the region: look it up without failing the import */
    ry_status saved = x->b->err;
    x->b->err = NULL;
    ry_value v0 = shlo_lookup(x->im, x->b, x->sc, x->op, name);
    if (x->b->err) ry_status_free(x->b->err);
    x->b->err = saved;
    a = v0.id ? shlo_const_of(x->b, v0) : NULL;
  }
  bool ok = a && ry_shape_numel(a->type.shape) == 1 && !ry_dtype_is_float(a->type.dtype) && a->type.dtype != RY_BOOL;
  if (ok) *v = ry__load_i64(a->type.dtype, a->data, 0);
  ry_array_release(own);
  return ok;
}

/* JAX's counted loop: state k starts at a constant, the cond is `k < N`
 * with N constant, and the body returns `k + 1`. The trip count, or -1. */
static int64_t trip_count(X *x, const shlo_region *cr, const shlo_region *br, int *counter) {
  const shlo_op *ret = shlo_region_ret(cr);
  const shlo_op *cmp = ret && ret->n_opd == 1 ? shlo_def_in(cr, ret->opd[0]) : NULL;
  if (!cmp || !shlo_span_is(cmp->name, "stablehlo.compare") || cmp->n_opd != 2) return -1;
  shlo_span w = cmp->n_word ? cmp->word[0] : (shlo_span){0};
  const shlo_span *cd = shlo_kv_get(cmp, "comparison_direction");
  if (cd) w = shlo_enum_word(*cd);
  if (!shlo_span_is(w, "LT")) return -1;
  int k = shlo_arg_index(cr, cr->arg_name, cr->n_arg, cmp->opd[0]);
  int64_t hi, lo, one;
  if (k < 0 || !const_int(x, cr, cmp->opd[1], &hi)) return -1;
  const ry_array *a0 = shlo_const_of(x->b, x->in[k]);
  if (!a0 || ry_shape_numel(a0->type.shape) != 1 || ry_dtype_is_float(a0->type.dtype) || a0->type.dtype == RY_BOOL) return -1;
  lo = ry__load_i64(a0->type.dtype, a0->data, 0);
  const shlo_op *bret = shlo_region_ret(br);
  if (!bret || bret->n_opd != cr->n_arg) return -1;
  const shlo_op *inc = shlo_def_in(br, bret->opd[k]);
  if (!inc || !shlo_span_is(inc->name, "stablehlo.add") || inc->n_opd != 2) return -1;
  int i0 = shlo_arg_index(br, br->arg_name, br->n_arg, inc->opd[0]), i1 = shlo_arg_index(br, br->arg_name, br->n_arg, inc->opd[1]);
  if (!((i0 == k && const_int(x, br, inc->opd[1], &one)) || (i1 == k && const_int(x, br, inc->opd[0], &one))) || one != 1)
    return -1;
  *counter = k;
  return hi > lo ? hi - lo : 0;
}

/* State entry i counts steps like the counter: a constant start and `+ 1`. */
static bool is_counter(X *x, const shlo_region *br, int i, int64_t *start) {
  const ry_array *a0 = shlo_const_of(x->b, x->in[i]);
  if (!a0 || ry_shape_numel(a0->type.shape) != 1 || a0->type.shape.rank != 0 || ry_dtype_is_float(a0->type.dtype) ||
      a0->type.dtype == RY_BOOL)
    return false;
  const shlo_op *bret = shlo_region_ret(br);
  const shlo_op *inc = shlo_def_in(br, bret->opd[i]);
  int64_t one;
  if (!inc || !shlo_span_is(inc->name, "stablehlo.add") || inc->n_opd != 2) return false;
  int i0 = shlo_arg_index(br, br->arg_name, br->n_arg, inc->opd[0]), i1 = shlo_arg_index(br, br->arg_name, br->n_arg, inc->opd[1]);
  if (!((i0 == i && const_int(x, br, inc->opd[1], &one)) || (i1 == i && const_int(x, br, inc->opd[0], &one))) || one != 1)
    return false;
  *start = ry__load_i64(a0->type.dtype, a0->data, 0);
  return true;
}

bool shlo_c_while(X *x) {
  if (x->op->n_reg != 2) return shlo_xfail(x, RY_ERR_PARSE, "needs cond and body regions");
  int n = x->n_in;
  shlo_region cr = *x->op->reg[0], br = *x->op->reg[1];
  if (cr.n_arg == 0 && x->op->n_barg) { /* pretty form: names in the operand list, types after ':' */
    if (x->op->n_barg != n || x->op->n_tout != n) return shlo_xfail(x, RY_ERR_PARSE, "malformed loop state");
    cr.n_arg = br.n_arg = n;
    cr.arg_name = br.arg_name = x->op->barg;
    cr.arg_type = br.arg_type = x->op->tout;
  }
  rctx c = {.x = x, .regs = {&cr, &br}, .n_state = n, .init = x->in, .body = &br};
  ry_value *out = ry__calloc((size_t)n + 1, sizeof *out), *sout = ry__calloc((size_t)n + 1, sizeof *sout);
  bool *inv = ry__calloc((size_t)n + 1, sizeof *inv);
  c.derived = ry__calloc((size_t)n + 1, sizeof *c.derived);
  c.off = ry__calloc((size_t)n + 1, sizeof *c.off);
  bool ok = false;
  if (!out || !sout || !inv || !c.derived || !c.off) {
    ryb_fail(x->b, ry__oom());
    goto done;
  }
  int ctr = -1;
  int64_t trips = cr.n_arg == n && br.n_arg == n ? trip_count(x, &cr, &br, &ctr) : -1;
  if (trips >= 0) {
    const shlo_op *bret = shlo_region_ret(&br);
    ry_value *init = sout; /* reuse: the carry's initial values */
    int nc = 0;
    /* other step counters (an emitted scan's own next to JAX's) follow the
     * counter: off[i] = their distance from it, not carried */
    int64_t k0 = 0, st0;
    ry_type kt = ry_value_type(x->b, x->in[ctr]);
    /* the carried counter is the last one (the program's, when the loop is
     * ryft's own emitted scan), so that a re-import keeps the same state */
    for (int i = n - 1; i > ctr; i--)
      if (ry_type_equal(ry_value_type(x->b, x->in[i]), kt) && is_counter(x, &br, i, &st0)) {
        ctr = i;
        break;
      }
    is_counter(x, &br, ctr, &k0);
    for (int i = 0; i < n; i++) {
      int64_t st;
      inv[i] = shlo_arg_index(&br, br.arg_name, br.n_arg, bret->opd[i]) == i;
      c.derived[i] = i != ctr && !inv[i] && ry_type_equal(ry_value_type(x->b, x->in[i]), kt) && is_counter(x, &br, i, &st);
      c.off[i] = c.derived[i] ? st - k0 : 0;
      if (!inv[i] && !c.derived[i]) init[nc++] = x->in[i];
    }
    c.inv = inv;
    c.ctr = ctr;
    ry_value *cres = ry__calloc((size_t)nc + 1, sizeof *cres);
    if (!cres) {
      ryb_fail(x->b, ry__oom());
      goto done;
    }
    int got = ry_scan_(x->b, x->loc, fn_scan, &c, trips, nc, init, 0, NULL, 0, cres);
    if (got == nc || (nc == 0 && ryb_ok(x->b))) {
      int k = 0, kpos = 0;
      for (int i = 0; i < n; i++) {
        if (i == ctr) kpos = k;
        out[i] = inv[i] ? x->in[i] : c.derived[i] ? (ry_value){0} : cres[k++];
      }
      for (int i = 0; i < n; i++)
        if (c.derived[i]) out[i] = offset_of(x->b, x->loc, cres[kpos], c.off[i]);
      ok = shlo_finish(x, n, out);
    }
    ry__free(cres, ((size_t)nc + 1) * sizeof *cres);
    goto done;
  }
  if (ry_while_(x->b, x->loc, fn_cond, fn_body, &c, n, x->in, out) == n || (n == 0 && ryb_ok(x->b))) ok = shlo_finish(x, n, out);
done:
  ry__free(out, ((size_t)n + 1) * sizeof *out);
  ry__free(sout, ((size_t)n + 1) * sizeof *sout);
  ry__free(inv, ((size_t)n + 1) * sizeof *inv);
  ry__free(c.derived, ((size_t)n + 1) * sizeof *c.derived);
  ry__free(c.off, ((size_t)n + 1) * sizeof *c.off);
  return ok;
}

bool shlo_c_case(X *x, bool is_if) {
  int nb = x->op->n_reg;
  if (x->n_in != 1 || nb < 1 || (is_if && nb != 2)) return shlo_xfail(x, RY_ERR_PARSE, "malformed branches");
  int *map = ry__calloc((size_t)nb, sizeof *map);
  ry_value *out = ry__calloc(RY_MAX_OUTPUTS, sizeof *out);
  bool ok = false;
  if (!map || !out) {
    ryb_fail(x->b, ry__oom());
    goto done;
  }
  rctx c = {.x = x, .map = map};
  int got;
  if (is_if) {
    map[0] = 1; /* ry_cond traces the false branch first */
    map[1] = 0;
    got = ry_cond_(x->b, x->loc, x->in[0], fn_branch, fn_branch, &c, 0, NULL, out);
  } else {
    for (int i = 0; i < nb; i++) map[i] = i;
    /* ryft's cond, like StableHLO's case, sends every out-of-range index
     * (negative ones too) to the last branch */
    ry_value idx = x->in[0];
    ry_fn *fns = ry__calloc((size_t)nb, sizeof *fns);
    if (!fns) {
      ryb_fail(x->b, ry__oom());
      goto done;
    }
    for (int i = 0; i < nb; i++) fns[i] = fn_branch;
    got = ry_switch_(x->b, x->loc, idx, nb, fns, &c, 0, NULL, out);
    ry__free(fns, (size_t)nb * sizeof *fns);
  }
  if (ryb_ok(x->b)) ok = shlo_finish(x, got, out);
done:
  ry__free(map, (size_t)nb * sizeof *map);
  ry__free(out, RY_MAX_OUTPUTS * sizeof *out);
  return ok;
}

bool shlo_c_call(X *x) {
  const shlo_span *s = shlo_kv_get(x->op, "callee");
  shlo_span name = s ? *s : x->op->n_word ? x->op->word[0] : (shlo_span){0};
  if (!name.n) return shlo_xfail(x, RY_ERR_PARSE, "missing callee");
  ry_graph *g = shlo_callee(x->im, x->b, x->op, name);
  if (!g) return false;
  ry_value *out = ry__calloc(RY_MAX_OUTPUTS, sizeof *out);
  if (!out) return ryb_fail(x->b, ry__oom()), false;
  int got = ry_call_(x->b, x->loc, g, x->n_in, x->in, out);
  bool ok = ryb_ok(x->b) && shlo_finish(x, got, out);
  ry__free(out, RY_MAX_OUTPUTS * sizeof *out);
  return ok;
}

