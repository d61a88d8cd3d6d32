/* The StableHLO importer's driver: functions become graphs (the public one,
 * or `main`, or the only one, is the result; the others are callees of
 * `call` nodes, converted on first use), blocks are converted op by op in a
 * chain of name scopes, and region bodies are traced as builder regions, so
 * values a region uses from outside it are lifted the way the tracer lifts a
 * C closure's. The per-op mapping is shlo_ops.c. */
#include <stdio.h>
#include <stdlib.h>

#include "ryft/transform.h"
#include "shlo_internal.h"

#define MAX_CALL_DEPTH 32

/* ---- names ---- */

typedef struct name_entry {
  shlo_span name;
  int n, first; /* values vals[first .. first+n) */
} name_entry;

struct shlo_scope {
  shlo_scope *up;
  name_entry *e;
  int n, cap;
  ry_value *vals;
  int nv, capv;
};

static void scope_free(shlo_scope *s) {
  ry__free(s->e, (size_t)s->cap * sizeof *s->e);
  ry__free(s->vals, (size_t)s->capv * sizeof *s->vals);
}

bool shlo_bind(ry_builder *b, shlo_scope *sc, shlo_span name, int n, const ry_value *v) {
  if (sc->n == sc->cap) {
    int nc = sc->cap ? 2 * sc->cap : 16;
    name_entry *ne = ry__realloc(sc->e, (size_t)sc->cap * sizeof *ne, (size_t)nc * sizeof *ne);
    if (!ne) return ryb_fail(b, ry__oom()), false;
    sc->e = ne;
    sc->cap = nc;
  }
  while (sc->nv + n > sc->capv) {
    int nc = sc->capv ? 2 * sc->capv : 16;
    ry_value *nv = ry__realloc(sc->vals, (size_t)sc->capv * sizeof *nv, (size_t)nc * sizeof *nv);
    if (!nv) return ryb_fail(b, ry__oom()), false;
    sc->vals = nv;
    sc->capv = nc;
  }
  sc->e[sc->n++] = (name_entry){name, n, sc->nv};
  memcpy(sc->vals + sc->nv, v, (size_t)n * sizeof *v);
  sc->nv += n;
  return true;
}

ry_value shlo_lookup(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op, shlo_span name) {
  shlo_span base = name;
  long idx = -1;
  for (int i = 0; i < name.n; i++)
    if (name.p[i] == '#') {
      base.n = i;
      idx = 0;
      for (int k = i + 1; k < name.n && idx < 1000000; k++) {
        if (name.p[k] < '0' || name.p[k] > '9') {
          idx = 1000000;
          break;
        }
        idx = idx * 10 + (name.p[k] - '0');
      }
      break;
    }
  for (shlo_scope *s = sc; s; s = s->up)
    for (int i = s->n - 1; i >= 0; i--) {
      name_entry *e = &s->e[i];
      if (e->name.n != base.n || memcmp(e->name.p, base.p, (size_t)base.n) != 0) continue;
      if (idx < 0 && e->n == 1) return s->vals[e->first];
      if (idx >= 0 && idx < e->n) return s->vals[e->first + idx];
      shlo_fail(im, b, op->at, RY_ERR_PARSE, "%.*s: %.*s names %d results; use %.*s#i", op->name.n, op->name.p, name.n,
                name.p, e->n, base.n, base.p);
      return (ry_value){0};
    }
  shlo_fail(im, b, op->at, RY_ERR_PARSE, "%.*s: unknown value %.*s", op->name.n, op->name.p, name.n, name.p);
  return (ry_value){0};
}

int shlo_n_results(const shlo_op *op) {
  int n = 0;
  for (int i = 0; i < op->n_resg; i++) n += op->resg_count[i];
  return n;
}

bool shlo_bind_results(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op, int n, const ry_value *v) {
  if (shlo_n_results(op) != n)
    return shlo_fail(im, b, op->at, RY_ERR_PARSE, "%.*s: the op has %d results; the text names %d", op->name.n,
                     op->name.p, n, shlo_n_results(op)),
           false;
  int k = 0;
  for (int i = 0; i < op->n_resg; i++) {
    if (!shlo_bind(b, sc, op->resg[i], op->resg_count[i], v + k)) return false;
    k += op->resg_count[i];
  }
  return true;
}

/* ---- errors and locations ---- */

int shlo_fail(shlo_imp *im, ry_builder *b, const char *at, ry_code code, const char *fmt, ...) {
  if (!b || b->err) return 0;
  char where[300], msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ryb_fail(b, ry__err(code, "%s: %s", shlo_where(im->m, at, where, sizeof where), msg));
}

ry_loc shlo_loc(shlo_imp *im, const char *at) {
  (void)im;
  (void)at;
  return (ry_loc){NULL, 0};
}

bool shlo_result_types(shlo_imp *im, ry_builder *b, const shlo_op *op, int n, ry_type *t) {
  const shlo_span *ts = op->tout;
  int nt = op->n_tout;
  if (!op->fn_type && nt > n) { /* `: pred_type, type` (select) or one type for all */
    ts += nt - n;
    nt = n;
  }
  if (nt != n)
    return shlo_fail(im, b, op->at, RY_ERR_PARSE, "%.*s: %d result types written for %d results", op->name.n, op->name.p,
                     nt, n),
           false;
  for (int i = 0; i < n; i++) {
    char why[128];
    int r = shlo_type(ts[i], &t[i], why, sizeof why);
    if (r == 0)
      return shlo_fail(im, b, ts[i].p, RY_ERR_PARSE, "malformed type %.*s", ts[i].n > 80 ? 80 : ts[i].n, ts[i].p), false;
    if (r < 0) return shlo_fail(im, b, ts[i].p, RY_ERR_UNSUPPORTED, "unsupported %s", why), false;
  }
  return true;
}

const ry_array *shlo_const_of(ry_builder *b, ry_value v) {
  if (!v.id || (int32_t)v.id >= b->g->n_values) return NULL;
  int32_t n = b->g->values[v.id].node;
  if (n < 0 || b->g->nodes[n].op != RY_OP_CONSTANT) return NULL;
  return b->g->nodes[n].attrs.constant.value;
}

/* ---- regions ---- */

static bool is_return(const shlo_op *op) {
  return shlo_span_is(op->name, "stablehlo.return") || shlo_span_is(op->name, "func.return") ||
         shlo_span_is(op->name, "return") || shlo_span_is(op->name, "mhlo.return");
}

/* ---- liveness: ops whose results nothing uses are not converted ---- */

typedef struct nameset {
  shlo_span *v;
  int n, cap;
} nameset;

static shlo_span base_name(shlo_span s) {
  for (int i = 0; i < s.n; i++)
    if (s.p[i] == '#') s.n = i;
  return s;
}

static bool ns_has(const nameset *ns, shlo_span s) {
  for (int i = ns->n - 1; i >= 0; i--)
    if (ns->v[i].n == s.n && memcmp(ns->v[i].p, s.p, (size_t)s.n) == 0) return true;
  return false;
}

static bool ns_add(nameset *ns, shlo_span s) {
  s = base_name(s);
  if (ns_has(ns, s)) return true;
  if (ns->n == ns->cap) {
    int nc = ns->cap ? 2 * ns->cap : 64;
    shlo_span *nv = ry__realloc(ns->v, (size_t)ns->cap * sizeof *nv, (size_t)nc * sizeof *nv);
    if (!nv) return false;
    ns->v = nv;
    ns->cap = nc;
  }
  ns->v[ns->n++] = s;
  return true;
}

/* every operand of op and of the ops in its regions */
static bool ns_add_uses(nameset *ns, const shlo_op *op, int depth) {
  for (int i = 0; i < op->n_opd; i++)
    if (!ns_add(ns, op->opd[i])) return false;
  for (int r = 0; r < op->n_reg && depth < 64; r++)
    for (int k = 0; k < op->reg[r]->n_op; k++)
      if (!ns_add_uses(ns, op->reg[r]->op[k], depth + 1)) return false;
  return true;
}

/* live[i]: op i has no results (checks, returns) or a later live op uses one */
static bool liveness(const shlo_region *r, bool *live) {
  nameset ns = {0};
  bool ok = true;
  for (int i = r->n_op - 1; i >= 0 && ok; i--) {
    const shlo_op *op = r->op[i];
    live[i] = op->n_resg == 0;
    for (int k = 0; k < op->n_resg && !live[i]; k++) live[i] = ns_has(&ns, base_name(op->resg[k]));
    if (live[i]) ok = ns_add_uses(&ns, op, 0);
  }
  ry__free(ns.v, (size_t)ns.cap * sizeof *ns.v);
  return ok;
}

int shlo_region_run(shlo_imp *im, ry_builder *b, shlo_scope *up, const shlo_region *r, int n_in, const ry_value *in,
                    ry_value *out, int cap) {
  if (r->n_arg != n_in)
    return shlo_fail(im, b, r->at, RY_ERR_PARSE, "the region has %d arguments; %d expected", r->n_arg, n_in), -1;
  shlo_scope sc = {.up = up};
  int result = -1;
  bool *live = NULL;
  for (int i = 0; i < n_in; i++) {
    ry_type want;
    char why[128];
    int tr = shlo_type(r->arg_type[i], &want, why, sizeof why);
    if (tr == 0) {
      shlo_fail(im, b, r->arg_type[i].p, RY_ERR_PARSE, "malformed type");
      goto done;
    }
    if (tr < 0) {
      shlo_fail(im, b, r->arg_type[i].p, RY_ERR_UNSUPPORTED, "unsupported %s", why);
      goto done;
    }
    ry_type got = ry_value_type(b, in[i]);
    if (!ry_type_equal(got, want)) {
      char g1[128], g2[128];
      shlo_fail(im, b, r->arg_name[i].p, RY_ERR_PARSE, "argument %.*s has type %s; it receives %s", r->arg_name[i].n,
                r->arg_name[i].p, ry_type_str(want, g1, sizeof g1), ry_type_str(got, g2, sizeof g2));
      goto done;
    }
    if (!shlo_bind(b, &sc, r->arg_name[i], 1, &in[i])) goto done;
  }
  live = ry__calloc((size_t)r->n_op + 1, sizeof *live);
  if (!live || !liveness(r, live)) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < r->n_op && ryb_ok(b); i++) {
    const shlo_op *op = r->op[i];
    if (!live[i]) continue;
    if (is_return(op)) {
      if (op->n_opd > cap) {
        shlo_fail(im, b, op->at, RY_ERR_UNSUPPORTED, "return of %d values", op->n_opd);
        goto done;
      }
      for (int k = 0; k < op->n_opd; k++)
        if (!(out[k] = shlo_lookup(im, b, &sc, op, op->opd[k])).id) goto done;
      result = op->n_opd;
      goto done;
    }
    if (!shlo_convert_op(im, b, &sc, op)) goto done;
  }
  if (ryb_ok(b)) shlo_fail(im, b, r->at, RY_ERR_PARSE, "the region does not end with a return");
done:
  scope_free(&sc);
  ry__free(live, (size_t)r->n_op + 1);
  return ryb_ok(b) ? result : -1;
}

/* ---- functions ---- */

static int find_func(const shlo_module *m, shlo_span name) {
  for (int i = 0; i < m->n_func; i++)
    if (m->func[i].name.n == name.n && memcmp(m->func[i].name.p, name.p, (size_t)name.n) == 0) return i;
  return -1;
}


ry_value shlo_sharded(shlo_imp *im, ry_builder *b, const char *at, shlo_span spec, ry_value v) {
  ry_axes mesh, dims;
  char why[128] = "";
  int rank = ry_value_shape(b, v).rank;
  bool gspmd = spec.n && spec.p[0] == '"';
  int r = gspmd ? shlo_gspmd(spec, rank, &mesh, &dims, why, sizeof why)
                : shlo_sharding(im->m, spec, rank, &mesh, &dims, why, sizeof why);
  if (r == 2) return v; /* replicated: nothing to say */
  if (r == 0) {
    shlo_fail(im, b, at, RY_ERR_PARSE, "malformed sharding %.*s%s%s", spec.n > 80 ? 80 : spec.n, spec.p, why[0] ? ": " : "", why);
    return (ry_value){0};
  }
  if (r < 0) {
    shlo_fail(im, b, at, RY_ERR_UNSUPPORTED, "unsupported sharding: %s", why);
    return (ry_value){0};
  }
  /* the same sharding twice (an argument's attribute and its constraint, as
   * ryft and JAX write both) is one */
  int32_t dn = b->g->values[v.id].node;
  if (dn >= 0 && b->g->nodes[dn].op == RY_OP_SHARDING) {
    const ry_axes *m0 = &b->g->nodes[dn].attrs.sharding.mesh, *d0 = &b->g->nodes[dn].attrs.sharding.dims;
    if (m0->n == mesh.n && d0->n == dims.n && !memcmp(m0->v, mesh.v, (size_t)mesh.n * sizeof mesh.v[0]) &&
        !memcmp(d0->v, dims.v, (size_t)dims.n * sizeof dims.v[0]))
      return v;
  }
  ry_value o = ry_shard_(b, (ry_loc){NULL, 0}, v, mesh, dims);
  if (!ryb_ok(b) && ry_status_code(b->err) != RY_ERR_OUT_OF_MEMORY) {
    char where[300];
    ry_status e = ry__err(RY_ERR_PARSE, "%s: %s", shlo_where(im->m, at, where, sizeof where), ry_status_message(b->err));
    ry_status_free(b->err);
    b->err = e;
  }
  return o;
}

static ry_value sharded(shlo_imp *im, ry_builder *b, shlo_span spec, ry_value v) {
  return shlo_sharded(im, b, spec.p, spec, v);
}

static ry_status convert_func(shlo_imp *im, int fi, bool is_main, ry_graph **out) {
  const shlo_func *f = &im->m->func[fi];
  char name[128];
  snprintf(name, sizeof name, "%.*s", f->name.n > 100 ? 100 : f->name.n, f->name.p);
  ry_builder *b = ry_builder_new(name);
  if (!b) return ry__oom();
  int n_in = f->body->n_arg;
  ry_value *in = ry__calloc((size_t)n_in + 1, sizeof *in);
  ry_value *outs = ry__calloc(RY_MAX_OUTPUTS, sizeof *outs);
  if (!in || !outs) {
    ryb_fail(b, ry__oom());
    goto finish;
  }
  for (int i = 0; i < n_in; i++) {
    ry_type t;
    char why[128];
    int r = shlo_type(f->body->arg_type[i], &t, why, sizeof why);
    if (r == 0) shlo_fail(im, b, f->body->arg_type[i].p, RY_ERR_PARSE, "malformed argument type");
    if (r < 0) shlo_fail(im, b, f->body->arg_type[i].p, RY_ERR_UNSUPPORTED, "unsupported %s", why);
    if (r <= 0) goto finish;
    in[i] = ry_input(b, NULL, t);
    if (is_main && f->arg_sharding && f->arg_sharding[i].n && !(in[i] = sharded(im, b, f->arg_sharding[i], in[i])).id)
      goto finish;
  }
  int n_out = shlo_region_run(im, b, NULL, f->body, n_in, in, outs, RY_MAX_OUTPUTS);
  if (n_out < 0) goto finish;
  if (n_out != f->n_res) {
    shlo_fail(im, b, f->at, RY_ERR_PARSE, "@%s returns %d values; its signature has %d", name, n_out, f->n_res);
    goto finish;
  }
  for (int i = 0; i < n_out; i++) {
    ry_type t;
    char why[128];
    if (shlo_type(f->res_type[i], &t, why, sizeof why) != 1 || !ry_type_equal(t, ry_value_type(b, outs[i]))) {
      shlo_fail(im, b, f->res_type[i].p, RY_ERR_PARSE, "@%s: result %d does not have its declared type %.*s", name, i,
                f->res_type[i].n > 80 ? 80 : f->res_type[i].n, f->res_type[i].p);
      goto finish;
    }
  }
  for (int i = 0; is_main && f->res_sharding && i < n_out; i++)
    if (f->res_sharding[i].n && !(outs[i] = sharded(im, b, f->res_sharding[i], outs[i])).id) goto finish;
  if (is_main && im->res && im->has_chk) {
    for (int k = 0; k < im->res->n_checks; k++) {
      im->res->checks[k].output += n_out;
      if (im->res->checks[k].other >= 0) im->res->checks[k].other += n_out;
    }
    if (n_out + im->chk.n > RY_MAX_OUTPUTS) {
      shlo_fail(im, b, f->at, RY_ERR_UNSUPPORTED, "more than %d checks", RY_MAX_OUTPUTS);
      goto finish;
    }
    for (int k = 0; k < im->chk.n; k++) outs[n_out++] = im->chk.v[k];
  }
  ry__free(in, ((size_t)n_in + 1) * sizeof *in);
  in = NULL;
  {
    ry_status s = ry_builder_finish(b, n_out, outs, out);
    ry__free(outs, RY_MAX_OUTPUTS * sizeof *outs);
    return s;
  }
finish:
  ry__free(in, ((size_t)n_in + 1) * sizeof *in);
  ry__free(outs, RY_MAX_OUTPUTS * sizeof *outs);
  return ry_builder_finish(b, 0, NULL, out);
}

ry_graph *shlo_callee(shlo_imp *im, ry_builder *b, const shlo_op *op, shlo_span name) {
  if (name.n && name.p[0] == '@') {
    name.p++;
    name.n--;
  }
  int fi = find_func(im->m, name);
  if (fi < 0)
    return shlo_fail(im, b, op->at, RY_ERR_PARSE, "%.*s: unknown function @%.*s", op->name.n, op->name.p, name.n, name.p),
           NULL;
  if (im->state[fi] == 2) return im->graphs[fi];
  if (im->state[fi] == 1)
    return shlo_fail(im, b, op->at, RY_ERR_UNSUPPORTED, "recursive call of @%.*s", name.n, name.p), NULL;
  if (im->depth >= MAX_CALL_DEPTH)
    return shlo_fail(im, b, op->at, RY_ERR_UNSUPPORTED, "calls nested deeper than %d", MAX_CALL_DEPTH), NULL;
  im->state[fi] = 1;
  im->depth++;
  bool save_collect = im->collect_checks;
  im->collect_checks = false;
  ry_status s = convert_func(im, fi, false, &im->graphs[fi]);
  im->collect_checks = save_collect;
  im->depth--;
  if (s) {
    im->state[fi] = 0;
    ryb_fail(b, s);
    return NULL;
  }
  im->state[fi] = 2;
  return im->graphs[fi];
}

bool shlo_record_check(shlo_imp *im, ry_builder *b, shlo_scope *sc, const shlo_op *op) {
  if (!im->collect_checks || !im->res || !im->has_chk || im->depth != 1 || b->depth != 1)
    return shlo_fail(im, b, op->at, RY_ERR_UNSUPPORTED, "%.*s: check ops are only read by the conformance runner",
                     op->name.n, op->name.p),
           false;
  bool almost = shlo_span_is(op->name, "check.expect_almost_eq_const") || shlo_span_is(op->name, "check.expect_almost_eq");
  bool is_const = shlo_span_is(op->name, "check.expect_eq_const") || shlo_span_is(op->name, "check.expect_almost_eq_const");
  bool is_pair = shlo_span_is(op->name, "check.expect_eq") || shlo_span_is(op->name, "check.expect_almost_eq");
  if (!is_const && !is_pair)
    return shlo_fail(im, b, op->at, RY_ERR_UNSUPPORTED, "unsupported op %.*s", op->name.n, op->name.p), false;
  if (op->n_opd != (is_pair ? 2 : 1) || (is_const && op->n_word < 1))
    return shlo_fail(im, b, op->at, RY_ERR_PARSE, "%.*s: malformed check", op->name.n, op->name.p), false;
  shlo_check c = {.output = im->chk.n, .other = -1, .almost = almost, .tol = 1e-4};
  const shlo_span *tol = shlo_kv_get(op, "tolerance");
  if (tol) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", tol->n > 60 ? 60 : tol->n, tol->p);
    c.tol = strtod(buf, NULL);
  }
  ry_value v[2];
  for (int k = 0; k < op->n_opd; k++)
    if (!(v[k] = shlo_lookup(im, b, sc, op, op->opd[k])).id) return false;
  if (is_const) {
    ry_type t;
    if (!shlo_result_types(im, b, op, 1, &t)) return false;
    ry_status err = NULL;
    c.expected = shlo_dense(op->word[0], t, &err);
    if (!c.expected) return shlo_fail(im, b, op->at, ry_status_code(err), "%.*s: %s", op->name.n, op->name.p,
                                      ry_status_message(err)),
                        ry_status_free(err), false;
  }
  if (im->res->n_checks == im->res->cap_checks) {
    int nc = im->res->cap_checks ? 2 * im->res->cap_checks : 8;
    shlo_check *nk = ry__realloc(im->res->checks, (size_t)im->res->cap_checks * sizeof *nk, (size_t)nc * sizeof *nk);
    if (!nk) return ry_array_release(c.expected), ryb_fail(b, ry__oom()), false;
    im->res->checks = nk;
    im->res->cap_checks = nc;
  }
  for (int k = 0; k < op->n_opd; k++) {
    if (im->chk.n == im->chk.cap) {
      int nc = im->chk.cap ? 2 * im->chk.cap : 8;
      ry_value *nv = ry__realloc(im->chk.v, (size_t)im->chk.cap * sizeof *nv, (size_t)nc * sizeof *nv);
      if (!nv) return ry_array_release(c.expected), ryb_fail(b, ry__oom()), false;
      im->chk.v = nv;
      im->chk.cap = nc;
    }
    im->chk.v[im->chk.n++] = v[k];
  }
  if (is_pair) c.other = c.output + 1;
  c.line = 0;
  for (const char *q = im->m->src; q < op->at; q++) c.line += *q == '\n';
  c.line++;
  im->res->checks[im->res->n_checks++] = c;
  return true;
}

void shlo_result_free(shlo_result *r) {
  for (int i = 0; i < r->n_checks; i++) ry_array_release(r->checks[i].expected);
  ry__free(r->checks, (size_t)r->cap_checks * sizeof *r->checks);
  ry_graph_release(r->g);
  memset(r, 0, sizeof *r);
}

ry_status shlo_import(const char *text, size_t len, const char *source, bool collect_checks, shlo_result *out) {
  memset(out, 0, sizeof *out);
  shlo_module m;
  ry_status s = shlo_parse_module(text, len, source, &m);
  if (s) {
    shlo_module_free(&m);
    return s;
  }
  /* the entry: @main, else the only public function, else the first */
  int entry = -1, n_public = 0, last_public = -1;
  for (int i = 0; i < m.n_func; i++) {
    if (shlo_span_is(m.func[i].name, "main")) entry = i;
    if (!m.func[i].is_private) n_public++, last_public = last_public < 0 ? i : last_public;
  }
  if (entry < 0) entry = n_public >= 1 ? last_public : 0;
  shlo_imp im = {.m = &m, .collect_checks = collect_checks, .res = out};
  im.graphs = ry__calloc((size_t)m.n_func, sizeof *im.graphs);
  im.state = ry__calloc((size_t)m.n_func, sizeof *im.state);
  if (!im.graphs || !im.state) {
    s = ry__oom();
  } else {
    im.state[entry] = 1;
    im.depth = 1;
    im.has_chk = collect_checks;
    s = convert_func(&im, entry, true, &out->g);
  }
  for (int i = 0; im.graphs && i < m.n_func; i++) ry_graph_release(im.graphs[i]);
  ry__free(im.graphs, (size_t)m.n_func * sizeof *im.graphs);
  ry__free(im.state, (size_t)m.n_func * sizeof *im.state);
  ry__free(im.chk.v, (size_t)im.chk.cap * sizeof *im.chk.v);
  shlo_module_free(&m);
  if (s) {
    shlo_result_free(out);
    return s;
  }
  return NULL;
}

ry_status ry_stablehlo_parse(const char *text, long len, const char *source, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_parse: out is NULL");
  *out = NULL;
  if (!text) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_parse: text is NULL");
  size_t n = len < 0 ? strlen(text) : (size_t)len;
  shlo_result r;
  ry_status s = shlo_import(text, n, source ? source : "<stablehlo>", false, &r);
  if (s) return s;
  /* dead code (unused init constants, JAX's unused values) and repeated
   * constants go: a graph imported twice is the same graph */
  s = ry_simplify(r.g, out);
  shlo_result_free(&r);
  return s;
}

ry_status ry_stablehlo_parse_file(const char *path, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_parse_file: out is NULL");
  *out = NULL;
  if (!path) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_parse_file: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return ry__err(RY_ERR_IO, "ry_stablehlo_parse_file: cannot open '%s'", path);
  size_t cap = 1 << 16, n = 0;
  char *buf = ry__malloc(cap);
  ry_status s = NULL;
  while (buf) {
    if (n == cap) {
      char *nb = ry__realloc(buf, cap, 2 * cap);
      if (!nb) break;
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  if (!buf) s = ry__oom();
  else if (ferror(f)) s = ry__err(RY_ERR_IO, "ry_stablehlo_parse_file: cannot read '%s'", path);
  fclose(f);
  if (!s) s = ry_stablehlo_parse(buf, (long)n, path, out);
  ry__free(buf, cap);
  return s;
}
