/* The canonical text printer (docs/IR.md).
 *
 * A module is the graph's callees (transitively, each once, callees before
 * callers, in the order their calls appear in print order; a call's jvp, fwd
 * and bwd rules count as callees) followed by the graph itself as @main. Within a function, inputs keep their names and every
 * other value is numbered %0, %1, ... in print order, regions included.
 * Attributes print by the attribute schema (attrs.c). */
#include <math.h>
#include <stdio.h>

#include "graph.h"

/* ---- output (core's ry__buf) ------------------------------------------------- */

static void put_n(ry__buf *b, const char *s, size_t n) { ry__buf_put(b, s, n); }

static void put(ry__buf *b, const char *s) { put_n(b, s, strlen(s)); }

static void put_i64(ry__buf *b, long long v) {
  char t[32];
  int k = snprintf(t, sizeof t, "%lld", v);
  put_n(b, t, (size_t)k);
}

static void put_indent(ry__buf *b, int n) {
  static const char spaces[] = "                                ";
  while (n > 0) {
    int k = n < 32 ? n : 32;
    put_n(b, spaces, (size_t)k);
    n -= k;
  }
}

/* A float with round-trip precision: %.9g (f16, bf16, f32) or %.17g (f64);
 * nan, inf, -inf and -0.0 spelled out. The C locale's '.' is forced. */
static void put_float(ry__buf *b, double d, bool f64) {
  if (isnan(d) || isinf(d) || d == 0) {
    put(b, isnan(d) ? "nan" : isinf(d) ? (d > 0 ? "inf" : "-inf") : signbit(d) ? "-0.0" : "0");
    return;
  }
  char t[64];
  int k = snprintf(t, sizeof t, f64 ? "%.17g" : "%.9g", d);
  if (k < 0 || k >= (int)sizeof t) k = 0;
  for (int i = 0; i < k; i++) {
    char c = t[i];
    if (!((c >= '0' && c <= '9') || c == 'e' || c == 'E' || c == '+' || c == '-')) t[i] = '.';
  }
  put_n(b, t, (size_t)k);
}

static void put_string_lit(ry__buf *b, const char *s) {
  put(b, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char t[8];
    switch (*c) {
    case '"': put(b, "\\\""); break;
    case '\\': put(b, "\\\\"); break;
    case '\n': put(b, "\\n"); break;
    case '\t': put(b, "\\t"); break;
    default:
      if (*c < 0x20 || *c == 0x7f) {
        snprintf(t, sizeof t, "\\x%02x", *c);
        put(b, t);
      } else {
        put_n(b, (const char *)c, 1);
      }
    }
  }
  put(b, "\"");
}

/* ---- string set (names in use) ---------------------------------------------- */

typedef struct nameset {
  char **slot; /* owned (ry__strdup) */
  size_t cap, n;
} nameset;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static bool ns_has(const nameset *ns, const char *s) {
  if (!ns->cap) return false;
  for (size_t i = hash_str(s) & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
    if (!ns->slot[i]) return false;
    if (strcmp(ns->slot[i], s) == 0) return true;
  }
}

/* Takes ownership of s (also on failure). */
static bool ns_add(nameset *ns, char *s) {
  if (!s) return false;
  if (2 * (ns->n + 1) > ns->cap) {
    size_t nc = ns->cap ? 2 * ns->cap : 16;
    char **nsl = ry__calloc(nc, sizeof *nsl);
    if (!nsl) {
      ry__strfree(s);
      return false;
    }
    for (size_t i = 0; i < ns->cap; i++) {
      if (!ns->slot[i]) continue;
      size_t j = hash_str(ns->slot[i]) & (nc - 1);
      while (nsl[j]) j = (j + 1) & (nc - 1);
      nsl[j] = ns->slot[i];
    }
    ry__free(ns->slot, ns->cap * sizeof *ns->slot);
    ns->slot = nsl;
    ns->cap = nc;
  }
  size_t i = hash_str(s) & (ns->cap - 1);
  while (ns->slot[i]) i = (i + 1) & (ns->cap - 1);
  ns->slot[i] = s;
  ns->n++;
  return true;
}

static void ns_free(nameset *ns) {
  for (size_t i = 0; i < ns->cap; i++) ry__strfree(ns->slot[i]);
  ry__free(ns->slot, ns->cap * sizeof *ns->slot);
  memset(ns, 0, sizeof *ns);
}

/* A legal name from an arbitrary string: characters outside [A-Za-z0-9_.]
 * become '_'; an empty or missing name becomes `fallback`. */
static char *sanitize(const char *s, const char *fallback) {
  if (!s || !*s) return ry__strdup(fallback);
  char *out = ry__strdup(s);
  if (!out) return NULL;
  for (char *c = out; *c; c++) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.';
    if (!ok) *c = '_';
  }
  return out;
}

static bool all_digits(const char *s) {
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* Claim base, or the first free base.1, base.2, ... (all-digit names always
 * take a suffix so they never collide with generated value numbers). Returns
 * an owned copy of the claimed name, NULL on OOM. Takes ownership of base. */
static char *claim(nameset *ns, char *base, bool digits_taken) {
  if (!base) return NULL;
  char *cand = NULL;
  if (!(digits_taken && all_digits(base)) && !ns_has(ns, base)) {
    cand = ry__strdup(base);
  } else {
    size_t len = strlen(base);
    char *t = ry__malloc(len + 24);
    if (!t) {
      ry__strfree(base);
      return NULL;
    }
    for (unsigned long long k = 1;; k++) {
      snprintf(t, len + 24, "%s.%llu", base, k);
      if (!ns_has(ns, t)) break;
    }
    cand = ry__strdup(t);
    ry__free(t, len + 24);
  }
  ry__strfree(base);
  if (!cand) return NULL;
  char *copy = ry__strdup(cand);
  if (!copy || !ns_add(ns, copy)) {
    ry__strfree(cand);
    return NULL;
  }
  return cand;
}

/* ---- graph pointer set/map -------------------------------------------------- */

typedef struct gmap {
  const ry_graph **key;
  int32_t *val;
  size_t cap, n;
} gmap;

static size_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (size_t)x;
}

static int32_t gm_get(const gmap *m, const ry_graph *g) {
  if (!m->cap) return -1;
  for (size_t i = hash_ptr(g) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->key[i]) return -1;
    if (m->key[i] == g) return m->val[i];
  }
}

static bool gm_put(gmap *m, const ry_graph *g, int32_t v) {
  if (2 * (m->n + 1) > m->cap) {
    size_t nc = m->cap ? 2 * m->cap : 16;
    const ry_graph **nk = ry__calloc(nc, sizeof *nk);
    int32_t *nv = ry__calloc(nc, sizeof *nv);
    if (!nk || !nv) {
      ry__free(nk, nc * sizeof *nk);
      ry__free(nv, nc * sizeof *nv);
      return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->key[i]) continue;
      size_t j = hash_ptr(m->key[i]) & (nc - 1);
      while (nk[j]) j = (j + 1) & (nc - 1);
      nk[j] = m->key[i];
      nv[j] = m->val[i];
    }
    ry__free(m->key, m->cap * sizeof *m->key);
    ry__free(m->val, m->cap * sizeof *m->val);
    m->key = nk;
    m->val = nv;
    m->cap = nc;
  }
  size_t i = hash_ptr(g) & (m->cap - 1);
  while (m->key[i] && m->key[i] != g) i = (i + 1) & (m->cap - 1);
  if (!m->key[i]) m->n++;
  m->key[i] = g;
  m->val[i] = v;
  return true;
}

static void gm_free(gmap *m) {
  ry__free(m->key, m->cap * sizeof *m->key);
  ry__free(m->val, m->cap * sizeof *m->val);
  memset(m, 0, sizeof *m);
}

/* ---- small pointer vector ---------------------------------------------------- */

typedef struct gvec {
  const ry_graph **v;
  int32_t n, cap;
} gvec;

static bool gv_push(gvec *a, const ry_graph *g) {
  if (a->n == a->cap) {
    int32_t nc = a->cap ? 2 * a->cap : 8;
    const ry_graph **nv = ry__realloc(a->v, (size_t)a->cap * sizeof *nv, (size_t)nc * sizeof *nv);
    if (!nv) return false;
    a->v = nv;
    a->cap = nc;
  }
  a->v[a->n++] = g;
  return true;
}

static void gv_free(gvec *a) {
  ry__free(a->v, (size_t)a->cap * sizeof *a->v);
  memset(a, 0, sizeof *a);
}

/* ---- printer state ------------------------------------------------------------ */

typedef struct printer {
  ry__buf out;
  bool oom;
  /* module */
  gvec order;      /* graphs in print order, entry last */
  gmap index;      /* graph -> position in order */
  char **gname;    /* printed name per position */
  /* current function */
  const ry_graph *g;
  int32_t *num;     /* per value: >= 0 number, <= -2 input -(num+2), -1 none */
  char **inname;    /* per input */
  int32_t n_in;
  uint8_t *rseen;   /* per region: numbered / printed */
} printer;

static bool valid_value(const ry_graph *g, int32_t v) { return v > 0 && v < g->n_values; }
static bool valid_region(const ry_graph *g, int32_t r) { return r >= 0 && r < g->n_regions; }

static bool node_spans_ok(const ry_graph *g, const ry_node *n) {
  int64_t np = g->n_pool;
  return n->n_operands >= 0 && n->operands >= 0 && (int64_t)n->operands + n->n_operands <= np && n->n_results >= 0 &&
         n->results >= 0 && (int64_t)n->results + n->n_results <= np && n->n_regions >= 0 && n->regions >= 0 &&
         (int64_t)n->regions + n->n_regions <= np;
}

static bool valid_node(const ry_graph *g, int32_t id) {
  return id >= 0 && id < g->n_nodes && (int)g->nodes[id].op >= 0 && g->nodes[id].op < RY_OP_COUNT &&
         node_spans_ok(g, &g->nodes[id]);
}

static void put_value(printer *p, int32_t v) {
  ry__buf *b = &p->out;
  int32_t k = valid_value(p->g, v) ? p->num[v] : -1;
  if (!valid_value(p->g, v)) {
    put(b, "%<invalid>");
  } else if (k >= 0) {
    put(b, "%");
    put_i64(b, k);
  } else if (k <= -2) {
    put(b, "%");
    put(b, p->inname[-(k + 2)]);
  } else {
    put(b, "%<unnumbered>");
  }
}

static void put_type(ry__buf *b, ry_type t) {
  char s[RY_MAX_RANK * 21 + 16];
  put(b, ry_type_str(t, s, sizeof s));
}

static void put_axes(ry__buf *b, const ry_axes *a) {
  put(b, "[");
  int n = a->n < 0 ? 0 : a->n > RY_MAX_RANK ? RY_MAX_RANK : a->n;
  for (int i = 0; i < n; i++) {
    if (i) put(b, ", ");
    put_i64(b, a->v[i]);
  }
  put(b, "]");
}

static const char *enum_name(const char *const *names, int count, int v) {
  return v >= 0 && v < count ? names[v] : "<invalid>";
}

/* ---- attributes, by the schema of attrs.c ----------------------------------- */

/* Helpers that write " {" before the first attribute and ", " between. */
typedef struct aw {
  printer *p;
  int n;
} aw;
static void key(aw *w, const char *k) {
  put(&w->p->out, w->n++ ? ", " : " {");
  put(&w->p->out, k);
  put(&w->p->out, "=");
}
static void a_axes(aw *w, const char *k, const ry_axes *a) {
  key(w, k);
  put_axes(&w->p->out, a);
}
static void a_int(aw *w, const char *k, int64_t v) {
  key(w, k);
  put_i64(&w->p->out, v);
}
static void a_bool(aw *w, const char *k, bool v) {
  key(w, k);
  put(&w->p->out, v ? "true" : "false");
}
static void a_word(aw *w, const char *k, const char *v) {
  key(w, k);
  put(&w->p->out, v);
}
static void a_end(aw *w) {
  if (w->n) put(&w->p->out, "}");
}

static void a_constant(aw *w, const char *k, const ry_array *arr) {
  key(w, k);
  ry__buf *b = &w->p->out;
  if (!arr) {
    put(b, "<missing>");
    return;
  }
  ry_dtype t = arr->type.dtype;
  int64_t n = ry_shape_numel(arr->type.shape);
  put(b, "[");
  for (int64_t i = 0; i < n && !b->oom; i++) {
    if (i) put(b, ", ");
    if (t == RY_BOOL)
      put(b, ry__load_i64(t, arr->data, i) ? "true" : "false");
    else if (ry_dtype_is_float(t))
      put_float(b, ry__load_f64(t, arr->data, i), t == RY_F64);
    else if (t == RY_U64) {
      char u[24];
      int m = snprintf(u, sizeof u, "%llu", (unsigned long long)((const uint64_t *)arr->data)[i]);
      put_n(b, u, (size_t)m);
    } else
      put_i64(b, ry__load_i64(t, arr->data, i));
  }
  put(b, "]");
}
static void a_func(aw *w, const char *k, const ry_graph *g) {
  printer *p = w->p;
  int32_t i = g ? gm_get(&p->index, g) : -1;
  key(w, k);
  put(&p->out, "@");
  put(&p->out, i >= 0 ? p->gname[i] : "<missing>");
}
static void a_string(aw *w, const char *k, const char *s) {
  key(w, k);
  if (s)
    put_string_lit(&w->p->out, s);
  else
    put(&w->p->out, "<missing>");
}

/* One field of the attribute schema (attrs.c); an optional one only when set. */
static void a_field(aw *w, const ryg_field *f, const ry_attrs *a) {
  const char *base = (const char *)a + f->off;
  switch (f->type) {
  case RYG_F_AXES: a_axes(w, f->name, (const ry_axes *)base); break;
  case RYG_F_INT:
    if (!f->optional || *(const int64_t *)base) a_int(w, f->name, *(const int64_t *)base);
    break;
  case RYG_F_BOOL:
    if (!f->optional || *(const bool *)base) a_bool(w, f->name, *(const bool *)base);
    break;
  case RYG_F_CMP: a_word(w, f->name, enum_name(ryg_cmp_names, RY_CMP_COUNT, (int)*(const ry_cmp *)base)); break;
  case RYG_F_REDUCE:
    a_word(w, f->name, enum_name(ryg_reduce_names, RY_REDUCE_COUNT, (int)*(const ry_reduce_kind *)base));
    break;
  case RYG_F_SCATTER:
    a_word(w, f->name, enum_name(ryg_scatter_names, RY_SCATTER_COUNT, (int)*(const ry_scatter_kind *)base));
    break;
  case RYG_F_CONST: a_constant(w, f->name, *(ry_array *const *)base); break;
  case RYG_F_CALLEE:
    if (!f->optional || *(ry_graph *const *)base) a_func(w, f->name, *(ry_graph *const *)base);
    break;
  case RYG_F_STRING: a_string(w, f->name, *(char *const *)base); break;
  }
}

/* ---- functions ------------------------------------------------------------------ */

/* Region labels: `branch` for cond, `cond`/`body` for while, `body` for scan. */
static const char *region_label(ry_op op, int i) {
  if (op == RY_OP_WHILE) return i == 0 ? "cond" : i == 1 ? "body" : "region";
  if (op == RY_OP_SCAN) return i == 0 ? "body" : "region";
  if (op == RY_OP_COND) return "branch";
  return "region";
}

/* Number the values of region r in print order: parameters, then for each
 * node its results followed by its regions. */
static void number_region(printer *p, int32_t r, int32_t *next) {
  const ry_graph *g = p->g;
  if (!valid_region(g, r) || p->rseen[r]) return;
  p->rseen[r] = 1;
  const ry_region *rg = &g->regions[r];
  if (r != 0)
    for (int32_t i = 0; i < rg->params.n; i++) {
      int32_t v = rg->params.v[i];
      if (valid_value(g, v) && p->num[v] == -1) p->num[v] = (*next)++;
    }
  for (int32_t i = 0; i < rg->nodes.n; i++) {
    int32_t id = rg->nodes.v[i];
    if (!valid_node(g, id)) continue;
    const ry_node *n = &g->nodes[id];
    for (int32_t k = 0; k < n->n_results; k++) {
      int32_t v = ry_node_results(g, n)[k];
      if (valid_value(g, v) && p->num[v] == -1) p->num[v] = (*next)++;
    }
    for (int32_t k = 0; k < n->n_regions; k++) number_region(p, ry_node_regions(g, n)[k], next);
  }
}

static void print_region_body(printer *p, int32_t r, int indent);

static void print_node(printer *p, const ry_node *n, int indent) {
  const ry_graph *g = p->g;
  ry__buf *b = &p->out;
  put_indent(b, indent);
  for (int32_t k = 0; k < n->n_results; k++) {
    int32_t v = ry_node_results(g, n)[k];
    if (k) put(b, ", ");
    put_value(p, v);
    put(b, ": ");
    if (valid_value(g, v)) put_type(b, g->values[v].type);
  }
  if (n->n_results) put(b, " = ");
  put(b, ryg_op_table[n->op].name);
  for (int32_t k = 0; k < n->n_operands; k++) {
    put(b, k ? ", " : " ");
    put_value(p, ry_node_operands(g, n)[k]);
  }
  const ryg_schema *sc = &ryg_attr_schemas[ryg_op_table[n->op].attrs];
  aw w = {p, 0};
  for (int k = 0; k < sc->n; k++) a_field(&w, &sc->f[k], &n->attrs);
  a_end(&w);
  put(b, "\n");
  for (int32_t k = 0; k < n->n_regions; k++) {
    int32_t r = ry_node_regions(g, n)[k];
    put_indent(b, indent + 2);
    put(b, region_label(n->op, k));
    put(b, " (");
    if (valid_region(g, r))
      for (int32_t i = 0; i < g->regions[r].params.n; i++) {
        int32_t v = g->regions[r].params.v[i];
        if (i) put(b, ", ");
        put_value(p, v);
        put(b, ": ");
        if (valid_value(g, v)) put_type(b, g->values[v].type);
      }
    put(b, ") {\n");
    print_region_body(p, r, indent + 4);
    put_indent(b, indent + 2);
    put(b, "}\n");
  }
}

static void print_region_body(printer *p, int32_t r, int indent) {
  const ry_graph *g = p->g;
  ry__buf *b = &p->out;
  if (valid_region(g, r) && !p->rseen[r]) {
    p->rseen[r] = 1;
    const ry_region *rg = &g->regions[r];
    for (int32_t i = 0; i < rg->nodes.n && !b->oom; i++)
      if (valid_node(g, rg->nodes.v[i])) print_node(p, &g->nodes[rg->nodes.v[i]], indent);
  }
  put_indent(b, indent);
  put(b, "return");
  if (valid_region(g, r))
    for (int32_t i = 0; i < g->regions[r].results.n; i++) {
      put(b, i ? ", " : " ");
      put_value(p, g->regions[r].results.v[i]);
    }
  put(b, "\n");
}

static void func_free(printer *p) {
  const ry_graph *g = p->g;
  if (!g) return;
  ry__free(p->num, (size_t)g->n_values * sizeof *p->num);
  ry__free(p->rseen, (size_t)g->n_regions);
  if (p->inname)
    for (int32_t i = 0; i < p->n_in; i++) ry__strfree(p->inname[i]);
  ry__free(p->inname, (size_t)p->n_in * sizeof *p->inname);
  p->num = NULL;
  p->rseen = NULL;
  p->inname = NULL;
  p->n_in = 0;
  p->g = NULL;
}

static bool print_function(printer *p, const ry_graph *g, const char *name) {
  ry__buf *b = &p->out;
  p->g = g;
  p->n_in = g->n_regions > 0 ? g->regions[0].params.n : 0;
  p->num = ry__malloc((size_t)g->n_values * sizeof *p->num);
  p->rseen = ry__calloc((size_t)g->n_regions, 1);
  p->inname = ry__calloc((size_t)p->n_in, sizeof *p->inname);
  nameset used = {0};
  bool ok = p->num && p->rseen && p->inname;
  if (ok) {
    for (int32_t v = 0; v < g->n_values; v++) p->num[v] = -1;
    /* input names: sanitized, deduplicated, never all digits */
    for (int32_t i = 0; i < p->n_in && ok; i++) {
      int32_t v = g->regions[0].params.v[i];
      char fb[32];
      snprintf(fb, sizeof fb, "arg%d", (int)i);
      const char *nm = valid_value(g, v) ? g->values[v].name : NULL;
      p->inname[i] = claim(&used, sanitize(nm, fb), true);
      if (!p->inname[i]) ok = false;
      if (valid_value(g, v) && p->num[v] == -1) p->num[v] = -2 - i;
    }
  }
  ns_free(&used);
  if (!ok) {
    func_free(p);
    return false;
  }
  int32_t next = 0;
  number_region(p, 0, &next);
  memset(p->rseen, 0, (size_t)g->n_regions);

  put(b, "func @");
  put(b, name);
  put(b, "(");
  for (int32_t i = 0; i < p->n_in; i++) {
    int32_t v = g->regions[0].params.v[i];
    if (i) put(b, ", ");
    put_value(p, v);
    put(b, ": ");
    if (valid_value(g, v)) put_type(b, g->values[v].type);
  }
  put(b, ") -> (");
  if (g->n_regions > 0)
    for (int32_t i = 0; i < g->regions[0].results.n; i++) {
      int32_t v = g->regions[0].results.v[i];
      if (i) put(b, ", ");
      if (valid_value(g, v))
        put_type(b, g->values[v].type);
      else
        put(b, "<invalid>");
    }
  put(b, ") {\n");
  print_region_body(p, 0, 2);
  put(b, "}\n");
  func_free(p);
  return !b->oom;
}

/* ---- module --------------------------------------------------------------------- */

/* The callees of g's call nodes, in print order (duplicates allowed). */
static bool collect_calls(const ry_graph *g, int32_t r, uint8_t *seen, gvec *out) {
  if (!valid_region(g, r) || seen[r]) return true;
  seen[r] = 1;
  const ry_region *rg = &g->regions[r];
  for (int32_t i = 0; i < rg->nodes.n; i++) {
    int32_t id = rg->nodes.v[i];
    if (!valid_node(g, id)) continue;
    const ry_node *n = &g->nodes[id];
    if (ryg_op_table[n->op].attrs == RY_ATTR_CALL) {
      const ry_graph *fs[4] = {n->attrs.call.callee, n->attrs.call.jvp, n->attrs.call.fwd, n->attrs.call.bwd};
      for (int k = 0; k < 4; k++)
        if (fs[k] && !gv_push(out, fs[k])) return false;
    }
    for (int32_t k = 0; k < n->n_regions; k++)
      if (!collect_calls(g, ry_node_regions(g, n)[k], seen, out)) return false;
  }
  return true;
}

typedef struct frame {
  const ry_graph *g;
  gvec calls;
  int32_t next;
} frame;

/* Depth-first postorder over the call graph from root: p->order ends with
 * root; every graph appears once, after all of its callees. */
static bool order_graphs(printer *p, const ry_graph *root) {
  frame *st = NULL;
  int32_t n = 0, cap = 0;
  bool ok = true;
  gmap onstack = {0}; /* visited: value 1 */
#define PUSH_FRAME(gr)                                                                          \
  do {                                                                                          \
    if (n == cap) {                                                                             \
      int32_t nc = cap ? 2 * cap : 8;                                                           \
      frame *ns_ = ry__realloc(st, (size_t)cap * sizeof *st, (size_t)nc * sizeof *st);          \
      if (!ns_) {                                                                               \
        ok = false;                                                                             \
        break;                                                                                  \
      }                                                                                         \
      st = ns_;                                                                                 \
      cap = nc;                                                                                 \
    }                                                                                           \
    memset(&st[n], 0, sizeof st[n]);                                                            \
    st[n].g = (gr);                                                                             \
    uint8_t *seen_ = ry__calloc((size_t)(gr)->n_regions, 1);                                    \
    ok = seen_ && gm_put(&onstack, (gr), 1) && collect_calls((gr), 0, seen_, &st[n].calls);    \
    ry__free(seen_, (size_t)(gr)->n_regions);                                                   \
    n++;                                                                                        \
  } while (0)
  PUSH_FRAME(root);
  while (ok && n > 0) {
    frame *f = &st[n - 1];
    if (f->next < f->calls.n) {
      const ry_graph *c = f->calls.v[f->next++];
      if (gm_get(&onstack, c) < 0) PUSH_FRAME(c);
    } else {
      ok = gm_put(&p->index, f->g, p->order.n) && gv_push(&p->order, f->g);
      gv_free(&f->calls);
      n--;
    }
  }
#undef PUSH_FRAME
  for (int32_t i = 0; i < n; i++) gv_free(&st[i].calls);
  ry__free(st, (size_t)cap * sizeof *st);
  gm_free(&onstack);
  return ok;
}

static bool name_graphs(printer *p) {
  int32_t n = p->order.n;
  p->gname = ry__calloc((size_t)n, sizeof *p->gname);
  if (!p->gname) return false;
  nameset used = {0};
  bool ok = true;
  /* the entry is @main; callees get their own names, deduplicated */
  p->gname[n - 1] = claim(&used, ry__strdup("main"), false);
  if (!p->gname[n - 1]) ok = false;
  for (int32_t i = 0; i < n - 1 && ok; i++) {
    p->gname[i] = claim(&used, sanitize(p->order.v[i]->name, "fn"), false);
    if (!p->gname[i]) ok = false;
  }
  ns_free(&used);
  return ok;
}

static void printer_free(printer *p) {
  if (p->gname)
    for (int32_t i = 0; i < p->order.n; i++) ry__strfree(p->gname[i]);
  ry__free(p->gname, (size_t)p->order.n * sizeof *p->gname);
  gv_free(&p->order);
  gm_free(&p->index);
  ry__free(p->out.s, p->out.cap);
}

/* The module text into p->out. */
static ry_status print_module(printer *p, const ry_graph *g) {
  if (!order_graphs(p, g) || !name_graphs(p)) return ry__oom();
  for (int32_t i = 0; i < p->order.n; i++) {
    if (i) put(&p->out, "\n");
    if (!print_function(p, p->order.v[i], p->gname[i])) return ry__oom();
  }
  if (p->out.oom) return ry__oom();
  if (!p->out.s) put(&p->out, "");
  return p->out.oom ? ry__oom() : NULL;
}

ry_status ry_graph_to_string(const ry_graph *g, char **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_to_string: out is NULL");
  *out = NULL;
  if (!g) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_to_string: graph is NULL");
  printer p;
  memset(&p, 0, sizeof p);
  ry_status s = print_module(&p, g);
  if (!s) {
    *out = ry__strdup(p.out.s);
    if (!*out) s = ry__oom();
  }
  printer_free(&p);
  return s;
}

ry_status ry_graph_print(const ry_graph *g, FILE *f) {
  if (!g || !f) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_print: %s is NULL", g ? "file" : "graph");
  printer p;
  memset(&p, 0, sizeof p);
  ry_status s = print_module(&p, g);
  if (!s && (fwrite(p.out.s, 1, p.out.n, f) != p.out.n || fflush(f) != 0))
    s = ry__err(RY_ERR_IO, "ry_graph_print: write failed");
  printer_free(&p);
  return s;
}
