/* StableHLO text to a syntax tree: modules, functions, blocks and ops in
 * MLIR's pretty and generic forms. Ops are read with one loop that accepts
 * the pieces every pretty form is made of (operands, `(%a init: %b)` and
 * `(%it = %x)` groups, `key = value`, bare words, literals, attribute
 * dictionaries, regions) up to the type signature, so the per-op meaning is
 * left to shlo_ops.c. Attribute values and types stay spans of the text.
 * Arbitrary bytes end in a "source:line:col: ..." error: nesting is bounded
 * and every allocation lives in one arena. */
#include <stdio.h>

#include "shlo_internal.h"

#define MAX_DEPTH 48

struct shlo_chunk {
  shlo_chunk *next;
  size_t size;
};

typedef struct P {
  shlo_module *m;
  const char *p, *end;
  ry_status err;
  int depth;
} P;

static void *arena_alloc(P *ps, size_t n) {
  if (ps->err) return NULL;
  size_t total = sizeof(shlo_chunk) + ((n + 15) & ~(size_t)15);
  shlo_chunk *c = ry__calloc(1, total);
  if (!c) {
    ps->err = ry__oom();
    return NULL;
  }
  c->size = total;
  c->next = ps->m->arena;
  ps->m->arena = c;
  return c + 1;
}

void shlo_module_free(shlo_module *m) {
  for (shlo_chunk *c = m->arena; c;) {
    shlo_chunk *n = c->next;
    ry__free(c, c->size);
    c = n;
  }
  m->arena = NULL;
}

const char *shlo_where(const shlo_module *m, const char *at, char *buf, size_t size) {
  int line = 1, col = 1;
  for (const char *q = m->src; q < at && q < m->end; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  snprintf(buf, size, "%s:%d:%d", m->source ? m->source : "<text>", line, col);
  return buf;
}

static bool fail(P *ps, const char *at, const char *fmt, ...) RY_PRINTF(3, 4);
static bool fail(P *ps, const char *at, const char *fmt, ...) {
  if (ps->err) return false;
  char where[256], msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ps->err = ry__err(RY_ERR_PARSE, "%s: %s", shlo_where(ps->m, at, where, sizeof where), msg);
  return false;
}

/* A growable list inside the arena (the old block is left to the arena). */
static bool push(P *ps, void **arr, int *n, size_t elem, const void *x) {
  int k = *n;
  if ((k & (k - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to the next power of two */
    size_t cap = k ? 2 * (size_t)k : 1;
    void *na = arena_alloc(ps, cap * elem);
    if (!na) return false;
    if (k) memcpy(na, *arr, (size_t)k * elem);
    *arr = na;
  }
  memcpy((char *)*arr + (size_t)k * elem, x, elem);
  *n = k + 1;
  return true;
}
#define PUSH(ps, arr, n, x) push((ps), (void **)&(arr), &(n), sizeof *(arr), (x))

/* ---- characters ---- */

static bool is_id0(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_idc(int c) { return is_id0(c) || (c >= '0' && c <= '9') || c == '.' || c == '$' || c == '-'; }
static bool is_valc(int c) { return is_idc(c) || c == '#'; }

/* Skip blanks; newlines too when nl. Comments run to the end of the line. */
static void ws(P *ps, bool nl) {
  while (ps->p < ps->end) {
    char c = *ps->p;
    if (c == ' ' || c == '\t' || c == '\r') ps->p++;
    else if (c == '\n' && nl) ps->p++;
    else if (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '/') {
      while (ps->p < ps->end && *ps->p != '\n') ps->p++;
    } else break;
  }
}

static int peek(P *ps) { return ps->p < ps->end ? (unsigned char)*ps->p : -1; }
static bool at_str(P *ps, const char *s) {
  size_t n = strlen(s);
  return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}
static bool eat(P *ps, char c) {
  if (peek(ps) == (unsigned char)c) {
    ps->p++;
    return true;
  }
  return false;
}
static bool expect(P *ps, char c, const char *what) {
  if (eat(ps, c)) return true;
  return fail(ps, ps->p, "expected '%c' %s", c, what);
}

static shlo_span ident(P *ps) {
  shlo_span s = {ps->p, 0};
  if (ps->p < ps->end && is_id0(*ps->p)) {
    while (ps->p < ps->end && is_idc(*ps->p)) ps->p++;
  }
  s.n = (int)(ps->p - s.p);
  return s;
}

/* `%name` or `%name#3` (with the sigil); n = 0 when absent. */
static shlo_span value_name(P *ps) {
  shlo_span s = {ps->p, 0};
  if (peek(ps) != '%') return s;
  ps->p++;
  while (ps->p < ps->end && is_valc(*ps->p)) ps->p++;
  s.n = (int)(ps->p - s.p);
  return s;
}

static bool skip_string(P *ps) {
  const char *start = ps->p++;
  while (ps->p < ps->end && *ps->p != '"') {
    if (*ps->p == '\\' && ps->p + 1 < ps->end) ps->p++;
    if (*ps->p == '\n') break;
    ps->p++;
  }
  if (!eat(ps, '"')) return fail(ps, start, "unterminated string");
  return true;
}

/* Skip one balanced group starting at an opener ( [ { <. "->" inside is an arrow. */
static bool skip_balanced(P *ps) {
  char stack[MAX_DEPTH];
  int d = 0;
  const char *start = ps->p;
  do {
    if (ps->p >= ps->end) return fail(ps, start, "unbalanced brackets");
    char c = *ps->p;
    if (c == '"') {
      if (!skip_string(ps)) return false;
      continue;
    }
    if (c == '-' && ps->p + 1 < ps->end && ps->p[1] == '>') {
      ps->p += 2;
      continue;
    }
    if (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '/') {
      while (ps->p < ps->end && *ps->p != '\n') ps->p++;
      continue;
    }
    if (c == '(' || c == '[' || c == '{' || c == '<') {
      if (d == MAX_DEPTH) return fail(ps, ps->p, "brackets nested too deeply");
      stack[d++] = c == '(' ? ')' : c == '[' ? ']' : c == '{' ? '}' : '>';
    } else if (c == ')' || c == ']' || c == '}' || c == '>') {
      if (d == 0 || stack[d - 1] != c) return fail(ps, ps->p, "unexpected '%c'", c);
      d--;
    }
    ps->p++;
  } while (d > 0);
  return true;
}

/* A type: `tensor<2x3xf32>`, `i32`, `!stablehlo.token`, `tuple<..>`. */
static bool type_span(P *ps, shlo_span *out) {
  ws(ps, false);
  const char *s = ps->p;
  eat(ps, '!');
  if (!ident(ps).n) return fail(ps, s, "expected a type");
  if (peek(ps) == '<' && !skip_balanced(ps)) return false;
  out->p = s;
  out->n = (int)(ps->p - s);
  return true;
}

/* An attribute value: balanced pieces up to a ',' (or ':' when stop_colon,
 * or a '{' after the first piece) at depth 0, a closer or the line's end. */
static bool value_span(P *ps, shlo_span *out, bool stop_colon) {
  ws(ps, false);
  const char *s = ps->p;
  for (;;) {
    ws(ps, false);
    int c = peek(ps);
    if (c < 0 || c == ',' || c == '\n' || c == ')' || c == ']' || c == '}' || c == '>') break;
    if (c == ':' && stop_colon) break;
    if (c == '{' && ps->p > s) break;
    if (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '/') break;
    if (c == '(' || c == '[' || c == '{' || c == '<') {
      if (!skip_balanced(ps)) return false;
    } else if (c == '"') {
      if (!skip_string(ps)) return false;
    } else if (c == '-' && ps->p + 1 < ps->end && ps->p[1] == '>') {
      ps->p += 2;
    } else {
      ps->p++;
    }
  }
  const char *e = ps->p;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
  if (e == s) return fail(ps, s, "expected a value");
  out->p = s;
  out->n = (int)(e - s);
  return true;
}

/* `{k = v, k2, "k3" = v}` (also the `<{...}>` properties form). */
static bool dict(P *ps, shlo_op *op) {
  if (!expect(ps, '{', "to open an attribute dictionary")) return false;
  ws(ps, true);
  if (eat(ps, '}')) return true;
  for (;;) {
    ws(ps, true);
    shlo_kv kv = {{0}, {0}};
    if (peek(ps) == '"') {
      kv.key.p = ps->p + 1;
      if (!skip_string(ps)) return false;
      kv.key.n = (int)(ps->p - kv.key.p - 1);
    } else {
      kv.key = ident(ps);
      if (!kv.key.n) return fail(ps, ps->p, "expected an attribute name");
    }
    ws(ps, true);
    if (eat(ps, '=')) {
      ws(ps, true);
      if (!value_span(ps, &kv.val, false)) return false;
    } else {
      kv.val = kv.key; /* a unit attribute */
    }
    if (op && !PUSH(ps, op->kv, op->n_kv, &kv)) return false;
    ws(ps, true);
    if (eat(ps, ',')) continue;
    return expect(ps, '}', "to close an attribute dictionary");
  }
}

static bool skip_loc(P *ps) {
  ws(ps, false);
  if (at_str(ps, "loc(")) {
    ps->p += 3;
    return skip_balanced(ps);
  }
  return true;
}

static shlo_region *region(P *ps, const shlo_span *args, const shlo_span *types, int n_args);
static bool arg_list_sh(P *ps, shlo_span **names, shlo_span **types, int *n, shlo_span **shardings);
static bool arg_list(P *ps, shlo_span **names, shlo_span **types, int *n) { return arg_list_sh(ps, names, types, n, NULL); }

/* `(%a, %b)`, `(%it = %x, ...)`, `(%x init: %c), (%y init: %d)`. */
static bool paren_group(P *ps, shlo_op *op, shlo_span **inits, int *n_inits) {
  if (!expect(ps, '(', "")) return false;
  ws(ps, true);
  if (eat(ps, ')')) return true;
  for (;;) {
    ws(ps, true);
    shlo_span v = value_name(ps);
    if (!v.n) return fail(ps, ps->p, "expected a value name");
    ws(ps, true);
    if (eat(ps, '=')) { /* block argument = initial value */
      ws(ps, true);
      shlo_span init = value_name(ps);
      if (!init.n) return fail(ps, ps->p, "expected an initial value");
      if (!PUSH(ps, op->barg, op->n_barg, &v) || !PUSH(ps, op->opd, op->n_opd, &init)) return false;
    } else if (at_str(ps, "init:")) {
      ps->p += 5;
      ws(ps, true);
      shlo_span init = value_name(ps);
      if (!init.n) return fail(ps, ps->p, "expected an init value");
      if (!PUSH(ps, op->opd, op->n_opd, &v) || !push(ps, (void **)inits, n_inits, sizeof **inits, &init)) return false;
    } else {
      if (!PUSH(ps, op->opd, op->n_opd, &v)) return false;
    }
    ws(ps, true);
    if (eat(ps, ',')) continue;
    return expect(ps, ')', "to close the operand list");
  }
}

/* An argument's or result's attribute dictionary: its `sdy.sharding`. */
static bool arg_attrs(P *ps, shlo_span *sharding) {
  shlo_op tmp;
  memset(&tmp, 0, sizeof tmp);
  if (!dict(ps, &tmp)) return false;
  const shlo_span *v = shlo_kv_get(&tmp, "sdy.sharding");
  if (!v) v = shlo_kv_get(&tmp, "mhlo.sharding");
  if (v && sharding) *sharding = *v;
  return true;
}

/* `(%a: t, %b: t)` block arguments (shardings: one per argument, or NULL). */
static bool arg_list_sh(P *ps, shlo_span **names, shlo_span **types, int *n, shlo_span **shardings) {
  if (!expect(ps, '(', "to open an argument list")) return false;
  ws(ps, true);
  if (eat(ps, ')')) return true;
  int nt = *n;
  for (;;) {
    ws(ps, true);
    shlo_span v = value_name(ps), t;
    if (!v.n) return fail(ps, ps->p, "expected an argument name");
    ws(ps, true);
    if (!expect(ps, ':', "after an argument name") || !type_span(ps, &t)) return false;
    shlo_span sh = {0};
    int ns = *n;
    if (!push(ps, (void **)names, n, sizeof **names, &v) || !push(ps, (void **)types, &nt, sizeof **types, &t)) return false;
    ws(ps, false);
    if (peek(ps) == '{' && !arg_attrs(ps, &sh)) return false;
    if (shardings && !push(ps, (void **)shardings, &ns, sizeof **shardings, &sh)) return false;
    if (!skip_loc(ps)) return false;
    ws(ps, true);
    if (eat(ps, ',')) continue;
    return expect(ps, ')', "to close the argument list");
  }
}

/* Types after ':': `(a, b) -> c`, `(a) -> (b, c)` or `a, b, c`. */
static bool signature(P *ps, shlo_op *op) {
  ws(ps, true);
  if (peek(ps) == '(') {
    op->fn_type = true;
    ps->p++;
    ws(ps, true);
    if (!eat(ps, ')')) {
      for (;;) {
        shlo_span t;
        ws(ps, true);
        if (!type_span(ps, &t) || !PUSH(ps, op->tin, op->n_tin, &t)) return false;
        ws(ps, true);
        if (eat(ps, ',')) continue;
        if (!expect(ps, ')', "to close the operand types")) return false;
        break;
      }
    }
    ws(ps, true);
    if (!at_str(ps, "->")) return fail(ps, ps->p, "expected '->' in a function type");
    ps->p += 2;
    ws(ps, true);
    bool paren = eat(ps, '(');
    ws(ps, true);
    if (paren && eat(ps, ')')) return true;
    for (;;) {
      shlo_span t;
      if (paren) ws(ps, true);
      if (!type_span(ps, &t) || !PUSH(ps, op->tout, op->n_tout, &t)) return false;
      ws(ps, paren);
      if (peek(ps) == '{' && !dict(ps, NULL)) return false;
      if (!paren) return true;
      if (eat(ps, ',')) continue;
      return expect(ps, ')', "to close the result types");
    }
  }
  for (;;) {
    shlo_span t;
    if (!type_span(ps, &t) || !PUSH(ps, op->tout, op->n_tout, &t)) return false;
    ws(ps, false);
    if (!eat(ps, ',')) return true;
  }
}

/* Regions written after the type signature by pretty forms:
 * while's `cond { } do { }`, reduce's `reducer(%a: t, %c: t) (%b: t, %d: t) { }`. */
static bool trailing_regions(P *ps, shlo_op *op) {
  for (;;) {
    const char *save = ps->p;
    ws(ps, true);
    if (at_str(ps, "cond") || at_str(ps, "do")) {
      shlo_span w = ident(ps);
      if (!shlo_span_is(w, "cond") && !shlo_span_is(w, "do")) {
        ps->p = save;
        return true;
      }
      ws(ps, true);
      shlo_region *r = region(ps, NULL, NULL, 0);
      if (!r || !PUSH(ps, op->reg, op->n_reg, &r)) return false;
      continue;
    }
    if (at_str(ps, "reducer")) {
      ident(ps);
      shlo_span *nm = NULL, *ty = NULL;
      int n = 0;
      ws(ps, true);
      while (peek(ps) == '(') {
        if (!arg_list(ps, &nm, &ty, &n)) return false;
        ws(ps, true);
      }
      /* pairs (lhs_i, rhs_i) -> generic order (lhs..., rhs...) */
      if (n % 2) return fail(ps, ps->p, "reducer arguments come in pairs");
      shlo_span *gn = arena_alloc(ps, sizeof *gn * (size_t)(n + 1)), *gt = arena_alloc(ps, sizeof *gt * (size_t)(n + 1));
      if (!gn || !gt) return false;
      for (int i = 0; i < n / 2; i++) {
        gn[i] = nm[2 * i];
        gt[i] = ty[2 * i];
        gn[n / 2 + i] = nm[2 * i + 1];
        gt[n / 2 + i] = ty[2 * i + 1];
      }
      shlo_region *r = region(ps, gn, gt, n);
      if (!r || !PUSH(ps, op->reg, op->n_reg, &r)) return false;
      continue;
    }
    ps->p = save;
    return true;
  }
}

static bool op_body(P *ps, shlo_op *op) {
  shlo_span *inits = NULL;
  int n_inits = 0;
  for (;;) {
    ws(ps, false);
    int c = peek(ps);
    if (c == '\n' || (c == '/' && ps->p + 1 < ps->end && ps->p[1] == '/')) {
      /* a hand-wrapped op goes on when the next line starts with ':', an
       * attribute dictionary or `key =` */
      const char *save = ps->p;
      ws(ps, true);
      const char *q = ps->p;
      bool more = q < ps->end && (*q == ':' || *q == '{');
      if (!more && q < ps->end && is_id0(*q)) {
        while (q < ps->end && is_idc(*q)) q++;
        while (q < ps->end && (*q == ' ' || *q == '\t')) q++;
        more = q + 1 < ps->end && q[0] == '=' && q[1] != '=';
      }
      if (!more) {
        ps->p = save;
        break;
      }
      continue;
    }
    if (c < 0 || c == '}') break;
    if (c == ',') { /* an op may continue on the next line after a comma */
      ps->p++;
      ws(ps, true);
      continue;
    }
    if (c == ':') {
      ps->p++;
      if (!signature(ps, op)) return false;
      ws(ps, false);
      if (peek(ps) == '{' && !dict(ps, op)) return false; /* `: type {attrs}` (check ops) */
      if (!skip_loc(ps) || !trailing_regions(ps, op)) return false;
      break;
    }
    if (c == '%') {
      shlo_span v = value_name(ps);
      if (!PUSH(ps, op->opd, op->n_opd, &v)) return false;
      continue;
    }
    if (c == '(' && ps->p + 1 < ps->end && ps->p[1] == '{') { /* generic regions ({...}, {...}) */
      ps->p++;
      for (;;) {
        ws(ps, true);
        shlo_region *r = region(ps, NULL, NULL, 0);
        if (!r || !PUSH(ps, op->reg, op->n_reg, &r)) return false;
        ws(ps, true);
        if (eat(ps, ',')) continue;
        if (!expect(ps, ')', "to close the region list")) return false;
        break;
      }
      continue;
    }
    if (c == '(') {
      if (!paren_group(ps, op, &inits, &n_inits)) return false;
      continue;
    }
    if (c == '<' && ps->p + 1 < ps->end && ps->p[1] == '{') { /* <{properties}> */
      ps->p++;
      if (!dict(ps, op) || !expect(ps, '>', "to close the properties")) return false;
      continue;
    }
    if (c == '{') {
      if (!dict(ps, op)) return false;
      continue;
    }
    if (c == '@') {
      shlo_span w = {ps->p, 0};
      ps->p++;
      ident(ps);
      w.n = (int)(ps->p - w.p);
      if (!PUSH(ps, op->word, op->n_word, &w)) return false;
      continue;
    }
    if (c == '[' || c == '"' || c == '#' || c == '-' || c == '<' || (c >= '0' && c <= '9')) {
      shlo_span w;
      if (!value_span(ps, &w, true) || !PUSH(ps, op->word, op->n_word, &w)) return false;
      continue;
    }
    if (is_id0(c)) {
      const char *s = ps->p;
      shlo_span w = ident(ps);
      if (shlo_span_is(w, "loc") && peek(ps) == '(') {
        if (!skip_balanced(ps)) return false;
        continue;
      }
      ws(ps, false);
      if (peek(ps) == '=' ) {
        ps->p++;
        shlo_kv kv = {w, {0}};
        if (!value_span(ps, &kv.val, true) || !PUSH(ps, op->kv, op->n_kv, &kv)) return false;
        continue;
      }
      if (peek(ps) == '<') { /* dense<...>, array<...> as a positional literal */
        ps->p = s;
        if (!value_span(ps, &w, true)) return false;
      }
      if (!PUSH(ps, op->word, op->n_word, &w)) return false;
      continue;
    }
    return fail(ps, ps->p, "unexpected '%c' in op %.*s", c, op->name.n, op->name.p);
  }
  for (int i = 0; i < n_inits; i++)
    if (!PUSH(ps, op->opd, op->n_opd, &inits[i])) return false;
  return true;
}

static shlo_op *op_stmt(P *ps) {
  shlo_op *op = arena_alloc(ps, sizeof *op);
  if (!op) return NULL;
  op->at = ps->p;
  /* results */
  if (peek(ps) == '%') {
    for (;;) {
      ws(ps, false);
      shlo_span r = value_name(ps);
      if (!r.n) return fail(ps, ps->p, "expected a result name"), NULL;
      int cnt = 1;
      if (eat(ps, ':')) {
        const char *d = ps->p;
        long v = 0;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9' && v < 1000000) v = v * 10 + (*ps->p++ - '0');
        if (ps->p == d || v < 1 || v > RY_MAX_OUTPUTS) return fail(ps, d, "bad result count"), NULL;
        cnt = (int)v;
      }
      int nc = op->n_resg;
      if (!PUSH(ps, op->resg_count, nc, &cnt) || !PUSH(ps, op->resg, op->n_resg, &r)) return NULL;
      ws(ps, false);
      if (eat(ps, ',')) continue;
      if (!expect(ps, '=', "after the result names")) return NULL;
      break;
    }
  }
  ws(ps, false);
  if (peek(ps) == '"') {
    op->name.p = ps->p + 1;
    if (!skip_string(ps)) return NULL;
    op->name.n = (int)(ps->p - op->name.p - 1);
  } else {
    op->name = ident(ps);
    if (!op->name.n) return fail(ps, ps->p, "expected an op name"), NULL;
  }
  if (!op_body(ps, op)) return NULL;
  return op;
}

/* `{ [^bb0(%a: t, ...):] op* }`; args given for pretty reducers. */
static shlo_region *region(P *ps, const shlo_span *args, const shlo_span *types, int n_args) {
  if (ps->depth >= MAX_DEPTH) return fail(ps, ps->p, "regions nested too deeply"), NULL;
  shlo_region *r = arena_alloc(ps, sizeof *r);
  if (!r) return NULL;
  r->at = ps->p;
  if (!expect(ps, '{', "to open a region")) return NULL;
  ps->depth++;
  r->n_arg = n_args;
  r->arg_name = (shlo_span *)args;
  r->arg_type = (shlo_span *)types;
  for (;;) {
    ws(ps, true);
    int c = peek(ps);
    if (c < 0) return fail(ps, r->at, "unterminated region"), NULL;
    if (c == '}') {
      ps->p++;
      break;
    }
    if (c == '^') {
      if (r->n_op) return fail(ps, ps->p, "regions with more than one block are not supported"), NULL;
      ps->p++;
      ident(ps);
      ws(ps, false);
      int n = 0;
      shlo_span *nm = NULL, *ty = NULL;
      if (peek(ps) == '(' && !arg_list(ps, &nm, &ty, &n)) return NULL;
      if (!expect(ps, ':', "after a block header")) return NULL;
      r->n_arg = n;
      r->arg_name = nm;
      r->arg_type = ty;
      continue;
    }
    shlo_op *op = op_stmt(ps);
    if (!op || !PUSH(ps, r->op, r->n_op, &op)) return NULL;
  }
  ps->depth--;
  return r;
}

static bool func(P *ps) {
  shlo_func f;
  memset(&f, 0, sizeof f);
  f.at = ps->p;
  ident(ps); /* func.func */
  ws(ps, false);
  const char *s = ps->p;
  shlo_span w = ident(ps);
  if (shlo_span_is(w, "private")) f.is_private = true;
  else if (!shlo_span_is(w, "public")) ps->p = s;
  ws(ps, false);
  if (!expect(ps, '@', "before the function name")) return false;
  f.name = ident(ps);
  if (!f.name.n) return fail(ps, ps->p, "expected a function name");
  ws(ps, false);
  shlo_span *nm = NULL, *ty = NULL, *ash = NULL, *rsh = NULL;
  int n = 0, nr = 0;
  if (!arg_list_sh(ps, &nm, &ty, &n, &ash)) return false;
  f.arg_sharding = ash;
  ws(ps, false);
  if (at_str(ps, "->")) {
    ps->p += 2;
    shlo_op tmp;
    memset(&tmp, 0, sizeof tmp);
    ws(ps, false);
    if (peek(ps) == '(') {
      ps->p++;
      ws(ps, true);
      if (!eat(ps, ')')) {
        for (;;) {
          shlo_span t, sh = {0};
          if (!type_span(ps, &t) || !PUSH(ps, tmp.tout, tmp.n_tout, &t)) return false;
          ws(ps, true);
          if (peek(ps) == '{' && !arg_attrs(ps, &sh)) return false;
          if (!push(ps, (void **)&rsh, &nr, sizeof *rsh, &sh)) return false;
          if (!skip_loc(ps)) return false;
          ws(ps, true);
          if (eat(ps, ',')) continue;
          if (!expect(ps, ')', "to close the result types")) return false;
          break;
        }
      }
    } else {
      shlo_span t;
      if (!type_span(ps, &t) || !PUSH(ps, tmp.tout, tmp.n_tout, &t)) return false;
    }
    f.n_res = tmp.n_tout;
    f.res_type = tmp.tout;
    f.res_sharding = nr == f.n_res ? rsh : NULL;
  }
  ws(ps, true);
  if (at_str(ps, "attributes")) {
    ident(ps);
    ws(ps, true);
    if (!dict(ps, NULL)) return false;
    ws(ps, true);
  }
  if (!(f.body = region(ps, nm, ty, n))) return false;
  return PUSH(ps, ps->m->func, ps->m->n_func, &f);
}

/* Module-level statements: functions, `module @x attributes {..} {`, its
 * closing brace, and others (#loc aliases, sdy meshes) skipped to their end. */
static bool toplevel(P *ps, int *open_modules) {
  for (;;) {
    ws(ps, true);
    int c = peek(ps);
    if (c < 0) break;
    if (c == '}') {
      if (*open_modules == 0) return fail(ps, ps->p, "unexpected '}'");
      (*open_modules)--;
      ps->p++;
      continue;
    }
    if (at_str(ps, "func.func")) {
      if (!func(ps)) return false;
      continue;
    }
    if (at_str(ps, "module")) {
      ident(ps);
      for (;;) {
        ws(ps, true);
        if (peek(ps) == '{') break;
        if (peek(ps) == '@') ps->p++;
        shlo_span w = ident(ps);
        if (!w.n) return fail(ps, ps->p, "expected '{' to open the module");
        if (shlo_span_is(w, "attributes")) {
          ws(ps, true);
          if (!dict(ps, NULL)) return false;
        }
      }
      ps->p++;
      if (++(*open_modules) > MAX_DEPTH) return fail(ps, ps->p, "modules nested too deeply");
      continue;
    }
    if (at_str(ps, "sdy.mesh")) { /* sdy.mesh @name = <["x"=2, ...]> */
      ident(ps);
      ws(ps, false);
      shlo_mesh mh;
      memset(&mh, 0, sizeof mh);
      if (!expect(ps, '@', "before the mesh name")) return false;
      mh.name = ident(ps);
      ws(ps, false);
      if (!expect(ps, '=', "after the mesh name")) return false;
      ws(ps, false);
      mh.axes.p = ps->p;
      if (peek(ps) != '<' || !skip_balanced(ps)) return fail(ps, ps->p, "expected the mesh axes <[...]>");
      mh.axes.n = (int)(ps->p - mh.axes.p);
      if (!PUSH(ps, ps->m->mesh, ps->m->n_mesh, &mh)) return false;
      while (ps->p < ps->end && *ps->p != '\n') { /* its attributes */
        if (*ps->p == '{' || *ps->p == '<' || *ps->p == '(' || *ps->p == '[') {
          if (!skip_balanced(ps)) return false;
        } else if (*ps->p == '"') {
          if (!skip_string(ps)) return false;
        } else {
          ps->p++;
        }
      }
      continue;
    }
    if (c == '#' || is_id0(c)) { /* an alias or another dialect's op: skip the statement */
      const char *s = ps->p;
      while (ps->p < ps->end && *ps->p != '\n') {
        int d = peek(ps);
        if (d == '(' || d == '[' || d == '{' || d == '<') {
          if (!skip_balanced(ps)) return false;
        } else if (d == '"') {
          if (!skip_string(ps)) return false;
        } else {
          ps->p++;
        }
      }
      if (ps->p == s) return fail(ps, s, "unexpected text");
      continue;
    }
    return fail(ps, ps->p, "expected func.func or module, found '%c'", c);
  }
  if (*open_modules) return fail(ps, ps->end, "module not closed");
  return true;
}

ry_status shlo_parse_module(const char *text, size_t len, const char *source, shlo_module *m) {
  memset(m, 0, sizeof *m);
  m->src = text;
  m->end = text + len;
  m->source = source;
  P ps = {.m = m, .p = text, .end = text + len};
  int open = 0;
  toplevel(&ps, &open);
  if (!ps.err && m->n_func == 0) fail(&ps, text, "no func.func in the text");
  return ps.err;
}
