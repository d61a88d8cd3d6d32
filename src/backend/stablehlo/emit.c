/* The StableHLO emitter's driver: text buffer, names, generic-op writer,
 * constants, regions, functions and the module; the per-op rules are in
 * rules.c. */
#include <errno.h>
#include <stdio.h>

#include "stablehlo.h"

struct rys_module {
  ry__buf buf;
  const ry_graph **funcs; /* [0] is @main; the rest are callees in emission order */
  char (*fnames)[64];
  int n_funcs, cap_funcs;
  const int *alias; /* rys_emit_aliased: per input of @main, an output index or -1 */
  ry_status err;
  ry_graph **owned; /* callees made while emitting (expansions), released with the module */
  int n_owned, cap_owned;
};

/* ---- text ---- */

void rys_printf(rys_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ry__buf_vprintf(c->out, fmt, ap);
  va_end(ap);
}

void rys_indent(rys_ctx *c) { rys_printf(c, "%*s", 2 * c->indent, ""); }

void rys_fail(rys_ctx *c, ry_code code, const char *fmt, ...) {
  if (c->err) return;
  va_list ap;
  va_start(ap, fmt);
  c->err = ry__verr(code, fmt, ap);
  va_end(ap);
}

const char *rys_elem(ry_dtype t) {
  switch (t) {
  case RY_BOOL: return "i1";
  case RY_I8: return "i8";
  case RY_I16: return "i16";
  case RY_I32: return "i32";
  case RY_I64: return "i64";
  case RY_U8: return "ui8";
  case RY_U16: return "ui16";
  case RY_U32: return "ui32";
  case RY_U64: return "ui64";
  case RY_F16: return "f16";
  case RY_BF16: return "bf16";
  case RY_F32: return "f32";
  case RY_F64: return "f64";
  default: return "?";
  }
}

const char *rys_type(ry_type t, char *buf) {
  size_t n = 0, size = 128;
  n += (size_t)snprintf(buf, size, "tensor<");
  for (int i = 0; i < t.shape.rank && n < size; i++) n += (size_t)snprintf(buf + n, size - n, "%lldx", (long long)t.shape.dims[i]);
  if (n < size) snprintf(buf + n, size - n, "%s>", rys_elem(t.dtype));
  return buf;
}

void rys_tmp(rys_ctx *c, char name[RYS_NAME]) { snprintf(name, RYS_NAME, "%%t%d", c->ntmp++); }

char *rys_list(char *buf, size_t size, const ry_axes *a) {
  size_t n = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < a->n && n < size; i++) n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)a->v[i]);
  if (n < size) snprintf(buf + n, size - n, "]");
  return buf;
}

char *rys_array_i64(char *buf, size_t size, const ry_axes *a) {
  size_t n = (size_t)snprintf(buf, size, "array<i64");
  for (int i = 0; i < a->n && n < size; i++) n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : ": ", (long long)a->v[i]);
  if (n < size) snprintf(buf + n, size - n, ">");
  return buf;
}

/* ---- generic ops ---- */

static void write_types(rys_ctx *c, int n, const ry_type *t, bool paren) {
  char tb[128];
  if (paren || n != 1) rys_printf(c, "(");
  for (int i = 0; i < n; i++) rys_printf(c, "%s%s", i ? ", " : "", rys_type(t[i], tb));
  if (paren || n != 1) rys_printf(c, ")");
}

void rys_op_begin(rys_ctx *c, const char *res, int n_out, const char *op, int n_in, const char *const *args) {
  rys_indent(c);
  if (res && n_out == 1) rys_printf(c, "%s = ", res);
  else if (res && n_out > 1) rys_printf(c, "%s:%d = ", res, n_out);
  rys_printf(c, "\"%s\"(", op);
  for (int i = 0; i < n_in; i++) rys_printf(c, "%s%s", i ? ", " : "", args[i]);
  rys_printf(c, ")");
}

void rys_op_end(rys_ctx *c, const char *attrs, int n_in, const ry_type *in_types, int n_out, const ry_type *out_types) {
  if (attrs && attrs[0]) rys_printf(c, " {%s}", attrs);
  rys_printf(c, " : ");
  write_types(c, n_in, in_types, true);
  rys_printf(c, " -> ");
  write_types(c, n_out, out_types, false);
  rys_printf(c, "\n");
}

void rys_op_end_regions(rys_ctx *c, const char *attrs, int n_in, const ry_type *in_types, int n_out,
                        const ry_type *out_types) {
  rys_printf(c, ")");
  rys_op_end(c, attrs, n_in, in_types, n_out, out_types);
}

void rys_op(rys_ctx *c, const char *res, const char *op, int n_in, const char *const *args, const ry_type *in_types,
            const char *attrs, int n_out, const ry_type *out_types) {
  rys_op_begin(c, res, n_out, op, n_in, args);
  rys_op_end(c, attrs, n_in, in_types, n_out, out_types);
}

void rys_region_begin(rys_ctx *c, bool first, int n_params, const char *const *params, const ry_type *types) {
  char tb[128];
  rys_printf(c, first ? " ({\n" : ", {\n");
  if (n_params > 0) {
    rys_indent(c);
    rys_printf(c, "^bb0(");
    for (int i = 0; i < n_params; i++) rys_printf(c, "%s%s: %s", i ? ", " : "", params[i], rys_type(types[i], tb));
    rys_printf(c, "):\n");
  }
  c->indent++;
}

void rys_region_end(rys_ctx *c, int n_ret, const char *const *rets, const ry_type *types) {
  rys_op(c, NULL, "stablehlo.return", n_ret, rets, types, NULL, 0, NULL);
  c->indent--;
  rys_indent(c);
  rys_printf(c, "}");
}

/* ---- constants ---- */

static void write_hex(rys_ctx *c, const uint8_t *p, size_t n) {
  static const char hx[] = "0123456789ABCDEF";
  char chunk[513];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    chunk[k++] = hx[p[i] >> 4];
    chunk[k++] = hx[p[i] & 15];
    if (k == 512) {
      chunk[k] = 0;
      rys_printf(c, "%s", chunk);
      k = 0;
    }
  }
  chunk[k] = 0;
  rys_printf(c, "%s", chunk);
}

static void const_begin(rys_ctx *c, const char *res) {
  rys_indent(c);
  rys_printf(c, "%s = \"stablehlo.constant\"() {value = dense<", res);
}

static void const_end(rys_ctx *c, ry_type t) {
  char tb[128];
  rys_type(t, tb);
  rys_printf(c, "> : %s} : () -> %s\n", tb, tb);
}

void rys_const_splat(rys_ctx *c, const char *res, ry_type t, const void *elem) {
  const_begin(c, res);
  if (t.dtype == RY_BOOL) {
    rys_printf(c, "%s", *(const uint8_t *)elem ? "true" : "false");
  } else {
    rys_printf(c, "\"0x");
    write_hex(c, elem, ry_dtype_size(t.dtype));
    rys_printf(c, "\"");
  }
  const_end(c, t);
}

void rys_const_f64(rys_ctx *c, const char *res, ry_type t, double v) {
  uint8_t e[8] = {0};
  if (ry_dtype_is_float(t.dtype)) ry__store_f64(t.dtype, e, 0, v);
  else ry__store_i64(t.dtype, e, 0, (int64_t)v);
  rys_const_splat(c, res, t, e);
}

void rys_const_i64(rys_ctx *c, const char *res, ry_type t, int64_t v) {
  uint8_t e[8] = {0};
  if (ry_dtype_is_float(t.dtype)) ry__store_f64(t.dtype, e, 0, (double)v);
  else ry__store_i64(t.dtype, e, 0, v);
  rys_const_splat(c, res, t, e);
}

static void bool_nested(rys_ctx *c, const uint8_t *p, const ry_shape *s, int d, int64_t *pos) {
  if (d == s->rank) {
    rys_printf(c, "%s", p[(*pos)++] ? "true" : "false");
    return;
  }
  rys_printf(c, "[");
  for (int64_t i = 0; i < s->dims[d]; i++) {
    if (i) rys_printf(c, ", ");
    bool_nested(c, p, s, d + 1, pos);
  }
  rys_printf(c, "]");
}

void rys_const_array(rys_ctx *c, const char *res, const ry_array *a) {
  ry_type t = a->type;
  const_begin(c, res);
  if (ry_shape_numel(t.shape) == 0) {
    /* dense<> */
  } else if (t.dtype == RY_BOOL) {
    int64_t pos = 0;
    bool_nested(c, a->data, &t.shape, 0, &pos);
  } else {
    rys_printf(c, "\"0x");
    write_hex(c, a->data, a->nbytes);
    rys_printf(c, "\"");
  }
  const_end(c, t);
}

/* ---- regions, functions, module ---- */

void rys_emit_region_body(rys_ctx *c, int32_t r, const char *ret_op, int n_extra_ret, const char *const *extra_ret,
                          const ry_type *extra_types) {
  const ry_region *reg = &c->g->regions[r];
  for (int32_t i = 0; i < reg->nodes.n && !c->err; i++) {
    const ry_node *n = &c->g->nodes[reg->nodes.v[i]];
    ry_stablehlo_rule rule = rys_rules[n->op];
    if (!rule) {
      rys_fail(c, RY_ERR_UNSUPPORTED, "stablehlo: no emission rule for op %s", ryg_op_table[n->op].name);
      return;
    }
    rule(c, n);
  }
  if (c->err || !ret_op) return; /* no ret_op: the caller writes the return */
  int nr = n_extra_ret + reg->results.n;
  const char **rets = ry__calloc((size_t)nr + 1, sizeof *rets);
  ry_type *types = ry__calloc((size_t)nr + 1, sizeof *types);
  if (!rets || !types) {
    c->out->oom = true;
  } else {
    for (int i = 0; i < n_extra_ret; i++) {
      rets[i] = extra_ret[i];
      types[i] = extra_types[i];
    }
    for (int i = 0; i < reg->results.n; i++) {
      rets[n_extra_ret + i] = c->names[reg->results.v[i]];
      types[n_extra_ret + i] = rys_vtype(c, reg->results.v[i]);
    }
    rys_op(c, NULL, ret_op, nr, rets, types, NULL, 0, NULL);
  }
  ry__free(rets, ((size_t)nr + 1) * sizeof *rets);
  ry__free(types, ((size_t)nr + 1) * sizeof *types);
}

ry_graph *rys_owned_callee(rys_ctx *c, const char *name) {
  for (int i = 0; i < c->m->n_owned; i++)
    if (!strcmp(c->m->owned[i]->name, name)) return c->m->owned[i];
  return NULL;
}

const char *rys_adopt_callee(rys_ctx *c, ry_graph *callee) {
  rys_module *m = c->m;
  if (m->n_owned == m->cap_owned) {
    int ncap = m->cap_owned ? 2 * m->cap_owned : 4;
    ry_graph **no = ry__realloc(m->owned, (size_t)m->cap_owned * sizeof *no, (size_t)ncap * sizeof *no);
    if (!no) {
      ry_graph_release(callee);
      c->out->oom = true;
      return "oom";
    }
    m->owned = no;
    m->cap_owned = ncap;
  }
  m->owned[m->n_owned++] = callee;
  return rys_callee_name(c, callee);
}

const char *rys_callee_name(rys_ctx *c, const ry_graph *callee) {
  rys_module *m = c->m;
  for (int i = 0; i < m->n_funcs; i++)
    if (m->funcs[i] == callee) return m->fnames[i];
  if (m->n_funcs == m->cap_funcs) {
    int ncap = m->cap_funcs ? 2 * m->cap_funcs : 8;
    const ry_graph **nf = ry__realloc(m->funcs, (size_t)m->cap_funcs * sizeof *nf, (size_t)ncap * sizeof *nf);
    if (!nf) {
      c->out->oom = true;
      return "oom";
    }
    m->funcs = nf;
    char(*nn)[64] = ry__realloc(m->fnames, (size_t)m->cap_funcs * sizeof *nn, (size_t)ncap * sizeof *nn);
    if (!nn) {
      c->out->oom = true;
      return "oom";
    }
    m->fnames = nn;
    m->cap_funcs = ncap;
  }
  /* a symbol name: the graph's name made safe, with the index for uniqueness */
  char base[40];
  const char *gn = callee->name ? callee->name : "f";
  size_t k = 0;
  for (; gn[k] && k < sizeof base - 1; k++) {
    char ch = gn[k];
    base[k] = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_') ? ch : '_';
  }
  base[k] = 0;
  snprintf(m->fnames[m->n_funcs], 64, "%s_%d", base, m->n_funcs);
  m->funcs[m->n_funcs] = callee;
  return m->fnames[m->n_funcs++];
}

bool rys_has_sharding(const ry_graph *g) {
  const ry_region *body = &g->regions[0];
  for (int k = 0; k < body->nodes.n; k++)
    if (g->nodes[body->nodes.v[k]].op == RY_OP_SHARDING) return true;
  return false;
}

bool rys_io_sharding(const ry_graph *g, bool input, int i, ry_axes *mesh, ry_axes *dims) {
  const ry_region *body = &g->regions[0];
  const ry_ivec *vs = input ? &body->params : &body->results;
  if (i < 0 || i >= vs->n) return false;
  int32_t v = vs->v[i];
  const ry_node *def = NULL;
  if (input) {
    for (int k = 0; k < body->nodes.n && !def; k++) {
      const ry_node *n = &g->nodes[body->nodes.v[k]];
      if (n->op == RY_OP_SHARDING && ry_node_operands(g, n)[0] == v) def = n;
    }
  } else if (g->values[v].node >= 0 && g->nodes[g->values[v].node].op == RY_OP_SHARDING) {
    def = &g->nodes[g->values[v].node];
  }
  if (!def) return false;
  *mesh = def->attrs.sharding.mesh;
  *dims = def->attrs.sharding.dims;
  return true;
}

/* The attributes of input/output i of @main: `mhlo.sharding = "..."` when
 * the module is sharded, `tf.aliasing_output = k : i32` for an input that
 * may share its buffer with output k (as JAX writes for donated arguments). */
static void io_attrs(rys_ctx *c, bool sharded, bool input, int i) {
  int alias = input && c->m->alias ? c->m->alias[i] : -1;
  if (!sharded && alias < 0) return;
  rys_printf(c, " {");
  if (sharded) {
    ry_axes mesh, dims;
    char sh[RYS_SHARDING];
    if (rys_io_sharding(c->g, input, i, &mesh, &dims)) rys_sharding_str(&mesh, &dims, sh, sizeof sh);
    else snprintf(sh, sizeof sh, "{replicated}");
    rys_printf(c, "mhlo.sharding = \"%s\"%s", sh, alias >= 0 ? ", " : "");
  }
  if (alias >= 0) rys_printf(c, "tf.aliasing_output = %d : i32", alias);
  rys_printf(c, "}");
}

static ry_status emit_function(rys_module *m, int fi) {
  const ry_graph *g = m->funcs[fi];
  rys_ctx c = {.m = m, .g = g, .out = &m->buf};
  c.names = ry__calloc((size_t)g->n_values + 1, sizeof *c.names);
  if (!c.names) return ry__oom();
  const ry_region *body = &g->regions[0];
  for (int i = 0; i < body->params.n; i++) snprintf(c.names[body->params.v[i]], RYS_NAME, "%%arg%d", i);
  char tb[128];
  rys_printf(&c, "  func.func %s@%s(", fi == 0 ? "" : "private ", m->fnames[fi]);
  bool sharded = fi == 0 && rys_has_sharding(g);
  for (int i = 0; i < body->params.n; i++) {
    rys_printf(&c, "%s%s: %s", i ? ", " : "", c.names[body->params.v[i]], rys_type(rys_vtype(&c, body->params.v[i]), tb));
    if (fi == 0) io_attrs(&c, sharded, true, i);
  }
  rys_printf(&c, ") -> (");
  for (int i = 0; i < body->results.n; i++) {
    rys_printf(&c, "%s%s", i ? ", " : "", rys_type(rys_vtype(&c, body->results.v[i]), tb));
    if (fi == 0) io_attrs(&c, sharded, false, i);
  }
  rys_printf(&c, ") {\n");
  c.indent = 2;
  rys_emit_region_body(&c, 0, "func.return", 0, NULL, NULL);
  rys_printf(&c, "  }\n");
  ry__free(c.names, ((size_t)g->n_values + 1) * sizeof *c.names);
  if (c.err) return ry__err_prefix(c.err, "stablehlo: function @%s", g->name ? g->name : "main");
  return NULL;
}

static void module_free(rys_module *m) {
  for (int i = 0; i < m->n_owned; i++) ry_graph_release(m->owned[i]);
  ry__free(m->owned, (size_t)m->cap_owned * sizeof *m->owned);
  ry__free(m->buf.s, m->buf.cap);
  ry__free(m->funcs, (size_t)m->cap_funcs * sizeof *m->funcs);
  ry__free(m->fnames, (size_t)m->cap_funcs * sizeof *m->fnames);
}

ry_status ry_stablehlo_emit(const ry_graph *g, char **out) { return rys_emit_aliased(g, NULL, out); }

ry_status rys_emit_aliased(const ry_graph *g, const int *alias, char **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_emit: out is NULL");
  *out = NULL;
  if (!g) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_emit: graph is NULL");
  rys_module m = {.alias = alias};
  rys_ctx top = {.m = &m, .out = &m.buf};
  rys_callee_name(&top, g); /* @main is function 0 */
  if (m.n_funcs == 1) snprintf(m.fnames[0], 64, "main");
  rys_printf(&top, "module @ryft {\n");
  ry_status s = NULL;
  for (int i = 0; i < m.n_funcs && !s && !m.buf.oom; i++) s = emit_function(&m, i);
  rys_printf(&top, "}\n");
  if (!s && m.buf.oom) s = ry__oom();
  if (!s && !(*out = ry__strdup(m.buf.s ? m.buf.s : ""))) s = ry__oom();
  module_free(&m);
  return s;
}

ry_status ry_stablehlo_emit_file(const ry_graph *g, const char *path) {
  if (!path) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_stablehlo_emit_file: path is NULL");
  char *text;
  ry_status s = ry_stablehlo_emit(g, &text);
  if (s) return s;
  FILE *f = fopen(path, "w");
  if (!f) {
    s = ry__err(RY_ERR_IO, "ry_stablehlo_emit_file: cannot open '%s' for writing: %s", path, strerror(errno));
  } else {
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0) ok = false;
    if (!ok) s = ry__err(RY_ERR_IO, "ry_stablehlo_emit_file: cannot write '%s'", path);
  }
  ry_free(text);
  return s;
}
