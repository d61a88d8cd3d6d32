/* The text IR parser (docs/IR.md): a hand-written lexer and recursive-descent
 * parser that builds graphs with the ry__graph_* functions and checks every
 * node's written result types against its shape rule (ry__infer).
 *
 * It is meant to survive arbitrary bytes: region nesting is limited, numbers
 * and dimensions are range-checked, the element count of every type is
 * bounded, names live in hash tables, and every temporary lives on one of the
 * parser's scratch stacks, which are freed together whatever happens. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"
#include "parse_internal.h"


/* ---- lexer ------------------------------------------------------------------ */


static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_name(int c) { return is_alpha(c) || is_digit(c) || c == '.'; }

static void lex(lexer *L, tok *t) {
  const char *p = L->p, *e = L->end;
  for (;;) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
      if (*p == '\n') {
        L->line++;
        L->line_start = p + 1;
      }
      p++;
    }
    if (p < e && *p == '#') {
      while (p < e && *p != '\n') p++;
      continue;
    }
    break;
  }
  memset(t, 0, sizeof *t);
  t->s = p;
  t->line = L->line;
  t->col = (long)(p - L->line_start) + 1;
  if (p >= e) {
    t->k = T_EOF;
    L->p = p;
    return;
  }
  const char *s = p;
  char c = *p;
  if (is_alpha(c)) {
    while (p < e && is_name(*p)) p++;
    t->k = T_IDENT;
  } else if (c == '%' || c == '@') {
    p++;
    while (p < e && is_name(*p)) p++;
    t->k = c == '%' ? T_VALUE : T_FUNC;
    if (p == s + 1) {
      t->k = T_BAD;
      t->bad = c == '%' ? "'%' without a value name" : "'@' without a function name";
    }
  } else if (is_digit(c) || (c == '-' && p + 1 < e && (is_name(p[1]))) || (c == '.' && p + 1 < e && is_digit(p[1]))) {
    p++;
    while (p < e && (is_name(*p) || ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))) p++;
    t->k = T_NUMBER;
  } else if (c == '"') {
    p++;
    while (p < e && *p != '"' && *p != '\n') p += (*p == '\\' && p + 1 < e && p[1] != '\n') ? 2 : 1;
    if (p < e && *p == '"') {
      p++;
      t->k = T_STRING;
    } else {
      t->k = T_BAD;
      t->bad = "an unterminated string";
    }
  } else if (c == '-' && p + 1 < e && p[1] == '>') {
    p += 2;
    t->k = T_ARROW;
  } else {
    p++;
    switch (c) {
    case '(': t->k = T_LPAREN; break;
    case ')': t->k = T_RPAREN; break;
    case '[': t->k = T_LBRACK; break;
    case ']': t->k = T_RBRACK; break;
    case '{': t->k = T_LBRACE; break;
    case '}': t->k = T_RBRACE; break;
    case ',': t->k = T_COMMA; break;
    case ':': t->k = T_COLON; break;
    case '=': t->k = T_EQUAL; break;
    default: t->k = T_BAD; t->bad = NULL; break; /* described from the character */
    }
  }
  t->n = (size_t)(p - s);
  L->p = p;
}

/* ---- hash map: name (slice of the source) -> value / graph ---------------- */


static uint64_t hash_mem(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

entry *ryg_map_find(const map *m, const char *k, size_t n) {
  if (!m->cap) return NULL;
  for (size_t i = hash_mem(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    entry *e = &m->e[i];
    if (!e->k) return NULL;
    if (e->n == n && memcmp(e->k, k, n) == 0) return e;
  }
}

/* Insert a new key (the caller checked it is absent); NULL on OOM. */
static entry *map_add(map *m, const char *k, size_t n) {
  if (2 * (m->n + 1) > m->cap) {
    size_t nc = m->cap ? 2 * m->cap : 64;
    entry *ne = ry__calloc(nc, sizeof *ne);
    if (!ne) return NULL;
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->e[i].k) continue;
      size_t j = hash_mem(m->e[i].k, m->e[i].n) & (nc - 1);
      while (ne[j].k) j = (j + 1) & (nc - 1);
      ne[j] = m->e[i];
    }
    ry__free(m->e, m->cap * sizeof *m->e);
    m->e = ne;
    m->cap = nc;
  }
  size_t i = hash_mem(k, n) & (m->cap - 1);
  while (m->e[i].k) i = (i + 1) & (m->cap - 1);
  m->e[i].k = k;
  m->e[i].n = n;
  m->n++;
  return &m->e[i];
}

static void map_free(map *m) {
  ry__free(m->e, m->cap * sizeof *m->e);
  memset(m, 0, sizeof *m);
}

/* ---- scratch stacks ------------------------------------------------------------ */


bool ryg_stack_reserve(void **v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return true;
  size_t nc = *cap ? *cap : 16;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / elem) return false;
    nc *= 2;
  }
  void *nv = ry__realloc(*v, *cap * elem, nc * elem);
  if (!nv) return false;
  *v = nv;
  *cap = nc;
  return true;
}

/* ---- parser state ----------------------------------------------------------------- */


void ryg_advance(parser *p) {
  p->cur = p->nxt;
  if (p->cur.k != T_EOF) lex(&p->L, &p->nxt);
}

/* A printable, truncated description of a token for messages. */
const char *ryg_describe(const tok *t, char *buf, size_t size) {
  if (t->k == T_EOF) return "end of input";
  if (t->k == T_BAD && t->bad) return t->bad;
  size_t k = 0;
  const char *lead = t->k == T_BAD ? "invalid character '" : "'";
  k += (size_t)snprintf(buf, size, "%s", lead);
  size_t n = t->k == T_BAD ? 1 : t->n;
  for (size_t i = 0; i < n && k + 8 < size; i++) {
    unsigned char c = (unsigned char)t->s[i];
    if (i == 40) {
      k += (size_t)snprintf(buf + k, size - k, "...");
      break;
    }
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'')
      k += (size_t)snprintf(buf + k, size - k, "\\x%02x", c);
    else
      buf[k++] = (char)c;
  }
  snprintf(buf + k, size - k, "'");
  return buf;
}

/* A value or function name with its sigil, unquoted (names are [A-Za-z0-9_.]). */
const char *ryg_sym(const tok *t, char *buf, size_t size) {
  snprintf(buf, size, "%.*s%s", t->n > 64 ? 64 : (int)t->n, t->s, t->n > 64 ? "..." : "");
  return buf;
}

bool ryg_fail_at(parser *p, const tok *t, const char *fmt, ...) RY_PRINTF(3, 4);
bool ryg_fail_at(parser *p, const tok *t, const char *fmt, ...) {
  if (p->err) return false;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  p->err = ry__err(RY_ERR_PARSE, "%s:%ld:%ld: %s", p->source, t->line, t->col, msg);
  return false;
}

bool ryg_oom(parser *p) {
  if (!p->err) p->err = ry__oom();
  return false;
}

/* "expected X but found Y" at the current token. */
bool ryg_expected(parser *p, const char *what) {
  char d[128];
  return ryg_fail_at(p, &p->cur, "expected %s but found %s", what, ryg_describe(&p->cur, d, sizeof d));
}

bool ryg_expect(parser *p, tkind k, const char *what) {
  if (p->cur.k != k) return ryg_expected(p, what);
  ryg_advance(p);
  return true;
}

bool ryg_is_word(const tok *t, const char *w) { return t->k == T_IDENT && t->n == strlen(w) && memcmp(t->s, w, t->n) == 0; }

/* A NUL-terminated copy of n bytes in the scratch string buffer. */
const char *ryg_cstr(parser *p, const char *s, size_t n) {
  if (n + 1 > p->sbuf_cap) {
    size_t nc = p->sbuf_cap ? p->sbuf_cap : 64;
    while (nc < n + 1) nc *= 2;
    char *nb = ry__realloc(p->sbuf, p->sbuf_cap, nc);
    if (!nb) {
      ryg_oom(p);
      return NULL;
    }
    p->sbuf = nb;
    p->sbuf_cap = nc;
  }
  memcpy(p->sbuf, s, n);
  p->sbuf[n] = 0;
  return p->sbuf;
}

/* ---- numbers ----------------------------------------------------------------------- */

/* Decimal integer: 0 ok, 1 not an integer, 2 out of int64 range. */
static int int_of(const tok *t, int64_t *out) {
  if (t->k != T_NUMBER) return 1;
  const char *s = t->s, *e = t->s + t->n;
  bool neg = false;
  if (s < e && *s == '-') {
    neg = true;
    s++;
  }
  if (s == e) return 1;
  uint64_t v = 0;
  bool big = false;
  for (; s < e; s++) {
    if (!is_digit(*s)) return 1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      big = true;
    else
      v = v * 10 + d;
  }
  if (big || v > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) return 2;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v; /* 0 - v wraps to the right value */
  return 0;
}

/* A u64 element: digits only, up to 2^64 - 1. */
bool ryg_parse_u64(parser *p, const char *what, uint64_t *out) {
  char d[128];
  const char *s = p->cur.s, *e = p->cur.s + p->cur.n;
  uint64_t v = 0;
  bool ok = p->cur.k == T_NUMBER && s < e;
  for (; ok && s < e; s++) {
    unsigned dg = (unsigned)(*s - '0');
    if (!is_digit(*s) || v > (UINT64_MAX - dg) / 10) ok = false;
    else v = v * 10 + dg;
  }
  if (!ok) return ryg_fail_at(p, &p->cur, "expected %s (0..18446744073709551615) but found %s", what, ryg_describe(&p->cur, d, sizeof d));
  *out = v;
  ryg_advance(p);
  return true;
}

bool ryg_parse_int(parser *p, int64_t lo, int64_t hi, const char *what, int64_t *out) {
  char d[128];
  int rc = int_of(&p->cur, out);
  if (rc == 1) return ryg_fail_at(p, &p->cur, "expected %s but found %s", what, ryg_describe(&p->cur, d, sizeof d));
  if (rc == 2 || *out < lo || *out > hi)
    return ryg_fail_at(p, &p->cur, "%s %s is out of range (%lld..%lld)", what, ryg_describe(&p->cur, d, sizeof d), (long long)lo,
                   (long long)hi);
  ryg_advance(p);
  return true;
}

/* A float literal: [-]digits[.digits][e[+-]digits], or nan, inf, -inf. */
bool ryg_float_of(const tok *t, double *out, bool *finite_text) {
  *finite_text = false;
  if (t->k == T_IDENT && ryg_is_word(t, "nan")) {
    *out = NAN;
    return true;
  }
  if (t->k == T_IDENT && ryg_is_word(t, "inf")) {
    *out = INFINITY;
    return true;
  }
  if (t->k != T_NUMBER) return false;
  if (t->n == 4 && memcmp(t->s, "-inf", 4) == 0) {
    *out = -INFINITY;
    return true;
  }
  const char *s = t->s, *e = t->s + t->n;
  if (s < e && *s == '-') s++;
  int mant = 0;
  while (s < e && is_digit(*s)) s++, mant++;
  if (s < e && *s == '.') {
    s++;
    while (s < e && is_digit(*s)) s++, mant++;
  }
  if (!mant) return false;
  if (s < e && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < e && (*s == '+' || *s == '-')) s++;
    int ex = 0;
    while (s < e && is_digit(*s)) s++, ex++;
    if (!ex) return false;
  }
  if (s != e || t->n > 400) return false;
  char buf[408];
  memcpy(buf, t->s, t->n);
  buf[t->n] = 0;
  const char *dp = localeconv()->decimal_point;
  if (dp && dp[0] && dp[0] != '.' && !dp[1])
    for (char *c = buf; *c; c++)
      if (*c == '.') *c = dp[0];
  char *end;
  *out = strtod(buf, &end);
  if (*end) return false;
  *finite_text = true;
  return true;
}

/* ---- types ------------------------------------------------------------------------- */

static bool parse_type(parser *p, ry_type *t) {
  char d[128];
  tok dt = p->cur;
  if (dt.k != T_IDENT) return ryg_expected(p, "a type");
  ry_dtype dtype;
  if (dt.n > 8 || !ry_dtype_from_name(ryg_cstr(p, dt.s, dt.n), &dtype)) {
    if (p->err) return false;
    return ryg_fail_at(p, &dt, "unknown dtype %s", ryg_describe(&dt, d, sizeof d));
  }
  ryg_advance(p);
  if (!ryg_expect(p, T_LBRACK, "'['")) return false;
  memset(t, 0, sizeof *t);
  t->dtype = dtype;
  if (p->cur.k != T_RBRACK)
    for (;;) {
      if (t->shape.rank == RY_MAX_RANK) return ryg_fail_at(p, &p->cur, "a type has at most %d dimensions", RY_MAX_RANK);
      if (!ryg_parse_int(p, 0, INT64_MAX, "a dimension size", &t->shape.dims[t->shape.rank])) return false;
      t->shape.rank++;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
  if (!ryg_expect(p, T_RBRACK, "',' or ']'")) return false;
  int64_t prod = 1;
  for (int i = 0; i < t->shape.rank; i++) {
    int64_t x = t->shape.dims[i] ? t->shape.dims[i] : 1;
    if (x > MAX_NUMEL / prod) return ryg_fail_at(p, &dt, "type has too many elements (the limit is 2^53)");
    prod *= x;
  }
  return true;
}

/* ---- values and scopes ------------------------------------------------------------- */

static bool define_name(parser *p, const tok *t, entry **out) {
  char d[128];
  if (ryg_map_find(&p->vals, t->s + 1, t->n - 1))
    return ryg_fail_at(p, t, "value %s is defined twice", ryg_sym(t, d, sizeof d));
  if (p->vals.n >= (size_t)MAX_ITEMS) return ryg_fail_at(p, t, "too many values in one function");
  entry *e = map_add(&p->vals, t->s + 1, t->n - 1);
  if (!e) return ryg_oom(p);
  e->val = 0;
  e->region = -1;
  *out = e;
  return true;
}

/* Resolve a use of the value at the current token in region scope[depth]. */
static bool use_value(parser *p, int32_t *v) {
  char d[128];
  tok t = p->cur;
  if (t.k != T_VALUE) return ryg_expected(p, "a value name");
  entry *e = ryg_map_find(&p->vals, t.s + 1, t.n - 1);
  int32_t r = p->scope[p->depth];
  if (!e || e->val == 0) return ryg_fail_at(p, &t, "value %s is not defined", ryg_sym(&t, d, sizeof d));
  if (e->region != r) {
    for (int i = 0; i < p->depth; i++)
      if (p->scope[i] == e->region)
        return ryg_fail_at(p, &t, "use of %s from an enclosing scope: regions are closed", ryg_sym(&t, d, sizeof d));
    return ryg_fail_at(p, &t, "value %s is not defined in this region", ryg_sym(&t, d, sizeof d));
  }
  *v = e->val;
  ryg_advance(p);
  return true;
}

/* `%a: T, %b: T` parameters of region r, up to ')'. */
static bool parse_params(parser *p, int32_t r, bool named) {
  if (!ryg_expect(p, T_LPAREN, "'('")) return false;
  if (p->cur.k != T_RPAREN)
    for (;;) {
      tok nt = p->cur;
      entry *e;
      ry_type t;
      if (nt.k != T_VALUE) return ryg_expected(p, "a parameter name");
      ryg_advance(p);
      if (!ryg_expect(p, T_COLON, "':'") || !parse_type(p, &t)) return false;
      if (!define_name(p, &nt, &e)) return false;
      const char *name = named ? ryg_cstr(p, nt.s + 1, nt.n - 1) : NULL;
      if (named && !name) return false;
      int32_t v = ry__graph_add_param(p->g, r, t, name);
      if (v < 0) return ryg_oom(p);
      e = ryg_map_find(&p->vals, nt.s + 1, nt.n - 1);
      e->val = v;
      e->region = r;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
  return ryg_expect(p, T_RPAREN, "',' or ')'");
}

/* ---- instructions, regions, functions ----------------------------------------------- */

static bool parse_body(parser *p, int32_t r);

/* label (%p: T, ...) { body } as a new region; writes its id. */
static bool parse_region(parser *p, int32_t *rid) {
  if (p->depth >= MAX_DEPTH) return ryg_fail_at(p, &p->cur, "regions are nested more than %d deep", MAX_DEPTH);
  int32_t r = ry__graph_add_region(p->g, -1);
  if (r < 0) return ryg_oom(p);
  *rid = r;
  ryg_advance(p); /* label */
  if (!parse_params(p, r, false)) return false;
  if (!ryg_expect(p, T_LBRACE, "'{'")) return false;
  p->scope[++p->depth] = r;
  bool ok = parse_body(p, r);
  p->depth--;
  return ok && ryg_expect(p, T_RBRACE, "'}'");
}

static bool parse_instr_inner(parser *p, int32_t r, ry_attrs *attrs, ry_op *opp) {
  char d[128], t1[RY_MAX_RANK * 21 + 16], t2[RY_MAX_RANK * 21 + 16];
  size_t tb = p->types.n, ib = p->ints.n, kb = p->toks.n;
  int nres = 0;
  /* the stacks are never NULL below (pointer arithmetic on them) */
  if (!RESERVE(p->types, 1) || !RESERVE(p->ints, 1) || !RESERVE(p->toks, 2)) return ryg_oom(p);
  /* results: %a: T, ... = */
  if (p->cur.k == T_VALUE) {
    for (;;) {
      tok nt = p->cur;
      ry_type t;
      if (nt.k != T_VALUE) return ryg_expected(p, "a result name");
      ryg_advance(p);
      if (!ryg_expect(p, T_COLON, "':'")) return false;
      tok tt = p->cur;
      if (!parse_type(p, &t)) return false;
      if (nres >= MAX_ITEMS) return ryg_fail_at(p, &nt, "too many results");
      if (!RESERVE(p->types, 1) || !RESERVE(p->toks, 2)) return ryg_oom(p);
      p->types.v[p->types.n++] = t;
      p->toks.v[p->toks.n++] = nt;
      p->toks.v[p->toks.n++] = tt;
      nres++;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
    if (!ryg_expect(p, T_EQUAL, "',' or '='")) return false;
    for (int i = 0; i < nres; i++) {
      entry *e;
      if (!define_name(p, &p->toks.v[kb + 2 * (size_t)i], &e)) return false;
    }
  }
  /* op */
  tok optok = p->cur;
  if (optok.k != T_IDENT) return ryg_expected(p, nres ? "an op name" : "an instruction or 'return'");
  ry_op op;
  if (!ryg_op_from_name(optok.s, optok.n, &op)) return ryg_fail_at(p, &optok, "unknown op %s", ryg_describe(&optok, d, sizeof d));
  *opp = op;
  ryg_advance(p);
  /* operands */
  int n_in = 0;
  if (p->cur.k == T_VALUE)
    for (;;) {
      int32_t v;
      if (!use_value(p, &v)) return false;
      if (n_in >= MAX_ITEMS) return ryg_fail_at(p, &p->cur, "too many operands");
      if (!RESERVE(p->ints, 1)) return ryg_oom(p);
      p->ints.v[p->ints.n++] = v;
      n_in++;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
      if (p->cur.k != T_VALUE) return ryg_expected(p, "an operand");
    }
  /* attributes */
  if (p->cur.k == T_LBRACE) {
    if (!ryg_parse_attrs(p, op, &optok, attrs, nres, nres ? &p->types.v[tb] : NULL)) return false;
  } else if (!ryg_check_missing(p, op, &optok, 0)) {
    return false;
  }
  /* regions: label ( ... */
  size_t rb = p->ints.n;
  int n_reg = 0;
  while (p->cur.k == T_IDENT && p->nxt.k == T_LPAREN) {
    const char *want = op == RY_OP_WHILE  ? (n_reg == 0 ? "cond" : n_reg == 1 ? "body" : NULL)
                       : op == RY_OP_SCAN ? (n_reg == 0 ? "body" : NULL)
                       : op == RY_OP_COND ? "branch"
                                          : NULL;
    if (!want) {
      if (op == RY_OP_WHILE) return ryg_fail_at(p, &p->cur, "while takes exactly 2 regions (cond and body)");
      if (op == RY_OP_SCAN) return ryg_fail_at(p, &p->cur, "scan takes exactly 1 region (body)");
      return ryg_fail_at(p, &p->cur, "%s takes no regions but found %s", ryg_op_table[op].name, ryg_describe(&p->cur, d, sizeof d));
    }
    if (!ryg_is_word(&p->cur, want))
      return ryg_fail_at(p, &p->cur, "expected region '%s' but found %s", want, ryg_describe(&p->cur, d, sizeof d));
    int32_t rid = -1;
    if (!parse_region(p, &rid)) return false;
    if (!RESERVE(p->ints, 1)) return ryg_oom(p);
    p->ints.v[p->ints.n++] = rid;
    n_reg++;
  }
  if (op == RY_OP_WHILE && n_reg < 2) return ryg_expected(p, n_reg ? "region 'body'" : "region 'cond'");
  if (op == RY_OP_COND && n_reg < 1) return ryg_expected(p, "region 'branch'");
  if (op == RY_OP_SCAN && n_reg < 1) return ryg_expected(p, "region 'body'");
  /* types: operand types (at least one slot), then room for the rule's results */
  /* custom_call takes the written results as they are: its capacity is the count */
  int cap = ryg_op_table[op].n_results < 0 ? RY_MAX_OUTPUTS : 2;
  if (cap < nres) cap = nres;
  if (cap < n_in) cap = n_in;
  if (op == RY_OP_CUSTOM_CALL) cap = nres;
  size_t n_types = (size_t)(n_in ? n_in : 1) + (size_t)(cap ? cap : 1);
  if (!RESERVE(p->types, n_types)) return ryg_oom(p);
  ry_type *in = p->types.v + p->types.n, *res = in + (n_in ? n_in : 1);
  memset(in, 0, n_types * sizeof *in);
  for (int i = 0; i < n_in; i++) in[i] = p->g->values[p->ints.v[ib + (size_t)i]].type;
  const ry_type *written = p->types.v + tb;
  for (int i = 0; i < nres; i++) res[i] = written[i];
  int nr = cap;
  ry_status s = ry__infer(op, attrs, n_in, in, p->g, n_reg, p->ints.v + rb, res, &nr, (ry_loc){NULL, 0});
  if (s) {
    bool o = ry_status_code(s) == RY_ERR_OUT_OF_MEMORY;
    if (!o) ryg_fail_at(p, &optok, "%s", ry_status_message(s));
    ry_status_free(s);
    return o ? ryg_oom(p) : false;
  }
  if (nr != nres)
    return ryg_fail_at(p, nres ? &p->toks.v[kb] : &optok, "%s gives %d result%s but %d %s written", ryg_op_table[op].name, nr,
                   nr == 1 ? "" : "s", nres, nres == 1 ? "is" : "are");
  for (int i = 0; i < nres; i++)
    if (!ry_type_equal(res[i], written[i])) {
      const tok *nt = &p->toks.v[kb + 2 * (size_t)i], *tt = nt + 1;
      return ryg_fail_at(p, tt, "%s has type %s but %s gives %s", ryg_sym(nt, d, sizeof d),
                     ry_type_str(written[i], t1, sizeof t1), ryg_op_table[op].name, ry_type_str(res[i], t2, sizeof t2));
    }
  int32_t id = ry__graph_add_node(p->g, r, op, n_in, p->ints.v + ib, nres, written, n_reg, p->ints.v + rb, attrs,
                                  (ry_loc){NULL, (int)(optok.line > INT32_MAX ? 0 : optok.line)});
  if (id < 0) return ryg_oom(p);
  memset(attrs, 0, sizeof *attrs); /* now owned by the graph */
  const ry_node *n = &p->g->nodes[id];
  for (int i = 0; i < nres; i++) {
    const tok *nt = &p->toks.v[kb + 2 * (size_t)i];
    entry *e = ryg_map_find(&p->vals, nt->s + 1, nt->n - 1);
    e->val = ry_node_results(p->g, n)[i];
    e->region = r;
  }
  p->types.n = tb;
  p->ints.n = ib;
  p->toks.n = kb;
  return true;
}

static bool parse_instr(parser *p, int32_t r) {
  ry_attrs attrs;
  memset(&attrs, 0, sizeof attrs);
  ry_op op = RY_OP_NEG;
  size_t tb = p->types.n, ib = p->ints.n, kb = p->toks.n;
  bool ok = parse_instr_inner(p, r, &attrs, &op);
  if (!ok) {
    ry__attrs_free(op, &attrs);
    p->types.n = tb;
    p->ints.n = ib;
    p->toks.n = kb;
  }
  return ok;
}

/* Instructions up to and including `return ...` (the '}' is left). */
static bool parse_body(parser *p, int32_t r) {
  for (;;) {
    if (ryg_is_word(&p->cur, "return")) break;
    if (p->cur.k != T_VALUE && p->cur.k != T_IDENT) return ryg_expected(p, "an instruction or 'return'");
    if (!parse_instr(p, r)) return false;
  }
  p->ret_kw = p->cur;
  p->rets.n = 0;
  ryg_advance(p);
  if (p->cur.k == T_VALUE)
    for (;;) {
      int32_t v;
      if (!RESERVE(p->rets, 1)) return ryg_oom(p);
      p->rets.v[p->rets.n++] = p->cur;
      if (!use_value(p, &v)) return false;
      if (!ry__ivec_push(&p->g->regions[r].results, v)) return ryg_oom(p);
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
      if (p->cur.k != T_VALUE) return ryg_expected(p, "a value name");
    }
  if (p->cur.k != T_RBRACE) return ryg_expected(p, "',' or '}' after return");
  return true;
}

static bool parse_function(parser *p) {
  char d[128], t1[RY_MAX_RANK * 21 + 16], t2[RY_MAX_RANK * 21 + 16];
  if (!ryg_is_word(&p->cur, "func")) return ryg_expected(p, "'func'");
  ryg_advance(p);
  tok nt = p->cur;
  if (nt.k != T_FUNC) return ryg_expected(p, "a function name ('@name')");
  if (ryg_map_find(&p->funcs, nt.s + 1, nt.n - 1))
    return ryg_fail_at(p, &nt, "function %s is defined twice", ryg_sym(&nt, d, sizeof d));
  if (p->n_graphs == p->cap_graphs) {
    int32_t nc = p->cap_graphs ? 2 * p->cap_graphs : 8;
    if (nc > MAX_ITEMS) return ryg_fail_at(p, &nt, "too many functions");
    ry_graph **ng = ry__realloc(p->graphs, (size_t)p->cap_graphs * sizeof *ng, (size_t)nc * sizeof *ng);
    if (!ng) return ryg_oom(p);
    p->graphs = ng;
    p->cap_graphs = nc;
  }
  const char *name = ryg_cstr(p, nt.s + 1, nt.n - 1);
  if (!name) return false;
  ry_graph *g = ry__graph_new(name);
  if (!g) return ryg_oom(p);
  p->graphs[p->n_graphs++] = g;
  p->g = g;
  map_free(&p->vals);
  p->depth = 0;
  p->scope[0] = 0;
  ryg_advance(p);
  if (!parse_params(p, 0, true)) return false;
  if (!ryg_expect(p, T_ARROW, "'->'") || !ryg_expect(p, T_LPAREN, "'('")) return false;
  size_t tb = p->types.n;
  if (p->cur.k != T_RPAREN)
    for (;;) {
      ry_type t;
      if (!parse_type(p, &t)) return false;
      if (p->types.n - tb >= (size_t)MAX_ITEMS) return ryg_fail_at(p, &p->cur, "too many results");
      if (!RESERVE(p->types, 1)) return ryg_oom(p);
      p->types.v[p->types.n++] = t;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
  if (!ryg_expect(p, T_RPAREN, "',' or ')'") || !ryg_expect(p, T_LBRACE, "'{'")) return false;
  if (!parse_body(p, 0)) return false;
  /* the returned values must match the signature; errors point at the
     `return` or at the value */
  const ry_ivec *res = &g->regions[0].results;
  size_t nsig = p->types.n - tb;
  if ((size_t)res->n != nsig)
    return ryg_fail_at(p, &p->ret_kw, "@%s returns %zu value%s but %d are returned", g->name, nsig, nsig == 1 ? "" : "s", res->n);
  for (int32_t i = 0; i < res->n; i++) {
    ry_type t = g->values[res->v[i]].type;
    if (!ry_type_equal(t, p->types.v[tb + (size_t)i]))
      return ryg_fail_at(p, (size_t)i < p->rets.n ? &p->rets.v[i] : &p->ret_kw, "return value %d has type %s but @%s returns %s", (int)i, ry_type_str(t, t1, sizeof t1),
                     g->name, ry_type_str(p->types.v[tb + (size_t)i], t2, sizeof t2));
  }
  p->types.n = tb;
  ryg_advance(p); /* '}' */
  entry *e = map_add(&p->funcs, nt.s + 1, nt.n - 1);
  if (!e) return ryg_oom(p);
  e->val = p->n_graphs - 1;
  return true;
}

static void parser_free(parser *p) {
  for (int32_t i = 0; i < p->n_graphs; i++) ry_graph_release(p->graphs[i]);
  ry__free(p->graphs, (size_t)p->cap_graphs * sizeof *p->graphs);
  map_free(&p->funcs);
  map_free(&p->vals);
  STACK_FREE(p->types);
  STACK_FREE(p->ints);
  STACK_FREE(p->toks);
  STACK_FREE(p->rets);
  STACK_FREE(p->elems);
  ry__free(p->sbuf, p->sbuf_cap);
}

ry_status ry_graph_parse(const char *text, long len, const char *source, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_parse: out is NULL");
  *out = NULL;
  if (!text || len < -1) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_parse: %s", text ? "negative length" : "text is NULL");
  size_t n = len < 0 ? strlen(text) : (size_t)len;
  parser p;
  memset(&p, 0, sizeof p);
  p.source = source ? source : "<input>";
  p.L.p = p.L.line_start = text;
  p.L.end = text + n;
  p.L.line = 1;
  lex(&p.L, &p.nxt);
  ryg_advance(&p);
  /* the scratch stacks are never NULL (pointer arithmetic on them) */
  if (!RESERVE(p.types, 1) || !RESERVE(p.ints, 1) || !RESERVE(p.toks, 2) || !RESERVE(p.elems, 1)) ryg_oom(&p);
  while (!p.err && p.cur.k != T_EOF)
    if (!parse_function(&p)) break;
  ry_graph *main_g = NULL;
  if (!p.err) {
    entry *e = ryg_map_find(&p.funcs, "main", 4);
    if (!e)
      ryg_fail_at(&p, &p.cur, "the module has no function @main");
    else
      main_g = ry_graph_retain(p.graphs[e->val]);
  }
  ry_status s = p.err;
  parser_free(&p);
  if (!s) {
    s = ry_graph_verify(main_g);
    if (s) {
      ry_graph_release(main_g);
      main_g = NULL;
    }
  }
  *out = main_g;
  return s;
}

ry_status ry_graph_parse_file(const char *path, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_parse_file: out is NULL");
  *out = NULL;
  if (!path) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_graph_parse_file: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return ry__err(RY_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  ry_status s = NULL;
  for (;;) {
    if (n == cap) {
      size_t nc = cap ? 2 * cap : 65536;
      if (nc > (size_t)LONG_MAX || nc < cap) {
        s = ry__err(RY_ERR_IO, "cannot read '%s': the file is too large", path);
        break;
      }
      char *nb = ry__realloc(buf, cap, nc);
      if (!nb) {
        s = ry__oom();
        break;
      }
      buf = nb;
      cap = nc;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0) {
      if (ferror(f)) s = ry__err(RY_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (!s) s = ry_graph_parse(buf ? buf : "", (long)n, path, out);
  ry__free(buf, cap);
  return s;
}
