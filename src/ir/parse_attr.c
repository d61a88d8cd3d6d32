/* The text IR parser's attributes: one table of fields per attribute kind
 * (offsetof into ry_attrs), each field parsed by its type: axes, integers,
 * booleans, comparison / reduce / scatter kinds, constants, callees and
 * strings. See parse.c. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"

#include "parse_internal.h"

/* ---- attributes ---------------------------------------------------------------------- */

static bool parse_axes(parser *p, const char *key, ry_axes *a) {
  if (!ryg_expect(p, T_LBRACK, "'['")) return false;
  memset(a, 0, sizeof *a);
  if (p->cur.k != T_RBRACK)
    for (;;) {
      if (a->n == RY_MAX_RANK) return ryg_fail_at(p, &p->cur, "list '%s' has more than %d entries", key, RY_MAX_RANK);
      if (!ryg_parse_int(p, INT64_MIN, INT64_MAX, "an integer", &a->v[a->n])) return false;
      a->n++;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
  return ryg_expect(p, T_RBRACK, "',' or ']'");
}

static bool parse_enum(parser *p, const char *key, const char *const *names, int count, int *out) {
  char d[128], list[128];
  size_t k = 0;
  for (int i = 0; i < count; i++)
    if (p->cur.k == T_IDENT && ryg_is_word(&p->cur, names[i])) {
      *out = i;
      ryg_advance(p);
      return true;
    }
  list[0] = 0;
  for (int i = 0; i < count && k < sizeof list; i++) k += (size_t)snprintf(list + k, sizeof list - k, i ? ", %s" : "%s", names[i]);
  return ryg_fail_at(p, &p->cur, "expected %s (one of %s) but found %s", key, list, ryg_describe(&p->cur, d, sizeof d));
}

static bool parse_bool(parser *p, bool *out) {
  if (ryg_is_word(&p->cur, "true") || ryg_is_word(&p->cur, "false")) {
    *out = p->cur.s[0] == 't';
    ryg_advance(p);
    return true;
  }
  return ryg_expected(p, "true or false");
}

/* One constant element of dtype dt into the element stack. */
static bool parse_element(parser *p, ry_dtype dt) {
  char d[128];
  uint64_t bits = 0;
  if (dt == RY_BOOL) {
    bool b = false;
    if (!ryg_is_word(&p->cur, "true") && !ryg_is_word(&p->cur, "false")) return ryg_expected(p, "true or false (a bool element)");
    if (!parse_bool(p, &b)) return false;
    bits = b;
  } else if (ry_dtype_is_int(dt)) {
    static const struct { int64_t lo, hi; } range[RY_DTYPE_COUNT] = {
        [RY_I8] = {INT8_MIN, INT8_MAX},     [RY_I16] = {INT16_MIN, INT16_MAX}, [RY_I32] = {INT32_MIN, INT32_MAX},
        [RY_I64] = {INT64_MIN, INT64_MAX},  [RY_U8] = {0, UINT8_MAX},          [RY_U16] = {0, UINT16_MAX},
        [RY_U32] = {0, UINT32_MAX}};
    int64_t v;
    char what[40];
    snprintf(what, sizeof what, "an %s element", ry_dtype_name(dt));
    if (dt == RY_U64) {
      if (!ryg_parse_u64(p, what, &bits)) return false;
    } else {
      if (!ryg_parse_int(p, range[dt].lo, range[dt].hi, what, &v)) return false;
      bits = (uint64_t)v;
    }
  } else {
    double v;
    bool finite_text;
    if (!ryg_float_of(&p->cur, &v, &finite_text))
      return ryg_fail_at(p, &p->cur, "expected a %s element (a number, nan, inf or -inf) but found %s", ry_dtype_name(dt),
                     ryg_describe(&p->cur, d, sizeof d));
    bool over = finite_text && isinf(v);
    if (!over && dt != RY_F64 && isfinite(v)) {
      /* values that round to the largest finite float are kept; beyond, overflow */
      if (fabs(v) >= 0x1.ffffffp127) over = true;
      else if (fabs(v) > FLT_MAX) v = copysign(FLT_MAX, v);
      if (!over) {
        uint16_t h = 0;
        float f = (float)v;
        if (dt == RY_F16) h = ry__f32_to_f16(f);
        if (dt == RY_BF16) h = ry__f32_to_bf16(f);
        if (dt == RY_F16 && (h & 0x7fff) == 0x7c00) over = true;
        if (dt == RY_BF16 && (h & 0x7fff) == 0x7f80) over = true;
      }
    }
    if (over) return ryg_fail_at(p, &p->cur, "%s is out of range for %s", ryg_describe(&p->cur, d, sizeof d), ry_dtype_name(dt));
    memcpy(&bits, &v, sizeof bits);
    ryg_advance(p);
  }
  if (!RESERVE(p->elems, 1)) return ryg_oom(p);
  p->elems.v[p->elems.n++] = bits;
  return true;
}

static bool parse_constant(parser *p, const ry_type *rt, ry_array **out) {
  char ts[RY_MAX_RANK * 21 + 16];
  tok open = p->cur;
  size_t base = p->elems.n;
  if (!ryg_expect(p, T_LBRACK, "'['")) return false;
  if (p->cur.k != T_RBRACK)
    for (;;) {
      if (!parse_element(p, rt->dtype)) return false;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
  if (!ryg_expect(p, T_RBRACK, "',' or ']'")) return false;
  int64_t count = (int64_t)(p->elems.n - base), numel = ry_shape_numel(rt->shape);
  if (count != numel)
    return ryg_fail_at(p, &open, "constant of type %s needs %lld elements but %lld are given", ry_type_str(*rt, ts, sizeof ts),
                   (long long)numel, (long long)count);
  ry_array *a;
  ry_status s = ry__array_new(*rt, &a);
  if (s) {
    bool o = ry_status_code(s) == RY_ERR_OUT_OF_MEMORY;
    const char *m = ry_status_message(s);
    if (!o) ryg_fail_at(p, &open, "%s", m);
    ry_status_free(s);
    return o ? ryg_oom(p) : false;
  }
  const uint64_t *e = p->elems.v + base;
  for (int64_t i = 0; i < count; i++) {
    if (ry_dtype_is_float(rt->dtype)) {
      double v;
      memcpy(&v, &e[i], sizeof v);
      ry__store_f64(rt->dtype, ry__array_mut(a), i, v);
    } else {
      ry__store_i64(rt->dtype, ry__array_mut(a), i, (int64_t)e[i]);
    }
  }
  p->elems.n = base;
  *out = a;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string literal: escapes \" \\ \n \t \xHH (not \x00). */
static bool parse_string(parser *p, char **out) {
  tok t = p->cur;
  if (t.k != T_STRING) return ryg_expected(p, "a string");
  if (!ryg_cstr(p, t.s, t.n)) return false; /* makes sbuf large enough */
  char *o = p->sbuf;
  size_t k = 0;
  for (size_t i = 1; i + 1 < t.n; i++) {
    char c = t.s[i];
    if (c == 0) return ryg_fail_at(p, &t, "a string may not contain a NUL byte");
    if (c != '\\') {
      o[k++] = c;
      continue;
    }
    char x = t.s[++i];
    if (x == '"' || x == '\\') o[k++] = x;
    else if (x == 'n') o[k++] = '\n';
    else if (x == 't') o[k++] = '\t';
    else if (x == 'x' && i + 2 < t.n - 1 && hexval(t.s[i + 1]) >= 0 && hexval(t.s[i + 2]) >= 0 &&
             (hexval(t.s[i + 1]) | hexval(t.s[i + 2]))) {
      o[k++] = (char)(hexval(t.s[i + 1]) * 16 + hexval(t.s[i + 2]));
      i += 2;
    } else {
      return ryg_fail_at(p, &t, "invalid escape in string (use \\\" \\\\ \\n \\t or \\xHH, not \\x00)");
    }
  }
  o[k] = 0;
  *out = ry__strdup(o);
  if (!*out) return ryg_oom(p);
  ryg_advance(p);
  return true;
}

/* Every required attribute of op was given (seen: bit per schema field). */
bool ryg_check_missing(parser *p, ry_op op, const tok *optok, uint32_t seen) {
  const ryg_schema *sc = &ryg_attr_schemas[ryg_op_table[op].attrs];
  for (int i = 0; i < sc->n; i++)
    if (!(seen & (1u << i)) && !sc->f[i].optional)
      return ryg_fail_at(p, optok, "attribute '%s' is missing for %s", sc->f[i].name, ryg_op_table[op].name);
  return true;
}

/* The attribute block of a node (the current token is '{'), into *a. */
bool ryg_parse_attrs(parser *p, ry_op op, const tok *optok, ry_attrs *a, int nres, const ry_type *res0) {
  char d[128];
  const ryg_schema *sc = &ryg_attr_schemas[ryg_op_table[op].attrs];
  uint32_t seen = 0;
  ryg_advance(p); /* '{' */
  if (p->cur.k != T_RBRACE)
    for (;;) {
      tok kt = p->cur;
      if (kt.k != T_IDENT) return ryg_expected(p, "an attribute name");
      int fi = -1;
      for (int i = 0; i < sc->n; i++)
        if (ryg_is_word(&kt, sc->f[i].name)) fi = i;
      if (fi < 0)
        return ryg_fail_at(p, &kt, "unknown attribute %s for %s", ryg_describe(&kt, d, sizeof d), ryg_op_table[op].name);
      if (seen & (1u << fi)) return ryg_fail_at(p, &kt, "attribute '%s' is given twice", sc->f[fi].name);
      seen |= 1u << fi;
      ryg_advance(p);
      if (!ryg_expect(p, T_EQUAL, "'='")) return false;
      const ryg_field *f = &sc->f[fi];
      void *dst = (char *)a + f->off;
      bool ok = false;
      int e = 0;
      switch (f->type) {
      case RYG_F_AXES: ok = parse_axes(p, f->name, (ry_axes *)dst); break;
      case RYG_F_INT: ok = ryg_parse_int(p, INT64_MIN, INT64_MAX, "an integer", (int64_t *)dst); break;
      case RYG_F_BOOL: ok = parse_bool(p, (bool *)dst); break;
      case RYG_F_CMP:
        ok = parse_enum(p, f->name, ryg_cmp_names, RY_CMP_COUNT, &e);
        if (ok) *(ry_cmp *)dst = (ry_cmp)e;
        break;
      case RYG_F_REDUCE:
        ok = parse_enum(p, f->name, ryg_reduce_names, RY_REDUCE_COUNT, &e);
        if (ok) *(ry_reduce_kind *)dst = (ry_reduce_kind)e;
        break;
      case RYG_F_SCATTER:
        ok = parse_enum(p, f->name, ryg_scatter_names, RY_SCATTER_COUNT, &e);
        if (ok) *(ry_scatter_kind *)dst = (ry_scatter_kind)e;
        break;
      case RYG_F_CONST:
        if (nres != 1) return ryg_fail_at(p, optok, "constant needs exactly one result, not %d", nres);
        ok = parse_constant(p, res0, (ry_array **)dst);
        break;
      case RYG_F_CALLEE: {
        tok ft = p->cur;
        if (ft.k != T_FUNC) return ryg_expected(p, "a function name ('@name')");
        entry *fe = ryg_map_find(&p->funcs, ft.s + 1, ft.n - 1);
        if (!fe)
          return ryg_fail_at(p, &ft, "function %s is not defined (a function must be defined before it is called)",
                         ryg_sym(&ft, d, sizeof d));
        *(ry_graph **)dst = ry_graph_retain(p->graphs[fe->val]);
        ryg_advance(p);
        ok = true;
        break;
      }
      case RYG_F_STRING: ok = parse_string(p, (char **)dst); break;
      }
      if (!ok) return false;
      if (p->cur.k != T_COMMA) break;
      ryg_advance(p);
    }
  if (!ryg_expect(p, T_RBRACE, "',' or '}'")) return false;
  return ryg_check_missing(p, op, optok, seen);
}
