/* Reading attribute and type text of the StableHLO importer: tensor types,
 * integers and integer lists in their several spellings, fields of
 * #stablehlo.* struct attributes, enum words and dense literals (nested
 * lists, splats, hex floats, hex blobs). Every reader is bounded by its span. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../backend/stablehlo/stablehlo.h"
#include "shlo_internal.h"

#define MAX_CONST_NUMEL (INT64_C(1) << 28)

typedef struct cur {
  const char *p, *e;
} cur;

static void cws(cur *c) {
  while (c->p < c->e && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}
static bool cat(cur *c, const char *lit) {
  size_t n = strlen(lit);
  return (size_t)(c->e - c->p) >= n && memcmp(c->p, lit, n) == 0;
}
static bool ceat(cur *c, char ch) {
  cws(c);
  if (c->p < c->e && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}
static bool is_w(int ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
}

bool shlo_span_is(shlo_span s, const char *lit) {
  size_t n = strlen(lit);
  return s.p && (size_t)s.n == n && memcmp(s.p, lit, n) == 0;
}

const shlo_span *shlo_kv_get(const shlo_op *op, const char *key) {
  for (int i = 0; i < op->n_kv; i++)
    if (shlo_span_is(op->kv[i].key, key)) return &op->kv[i].val;
  return NULL;
}

/* ---- types ---- */

static const struct {
  const char *name;
  ry_dtype t;
} k_elems[] = {{"i1", RY_BOOL}, {"i8", RY_I8},   {"i16", RY_I16},   {"i32", RY_I32}, {"i64", RY_I64}, {"ui8", RY_U8}, {"ui16", RY_U16}, {"ui64", RY_U64},
               {"ui32", RY_U32}, {"f16", RY_F16}, {"bf16", RY_BF16}, {"f32", RY_F32}, {"f64", RY_F64}};

static int elem_type(const char *p, int n, ry_dtype *t) {
  for (size_t i = 0; i < sizeof k_elems / sizeof k_elems[0]; i++)
    if ((size_t)n == strlen(k_elems[i].name) && memcmp(p, k_elems[i].name, (size_t)n) == 0) {
      *t = k_elems[i].t;
      return 1;
    }
  return -1;
}

int shlo_type(shlo_span s, ry_type *t, char *why, size_t why_size) {
  memset(t, 0, sizeof *t);
  cur c = {s.p, s.p + s.n};
  cws(&c);
  if (!cat(&c, "tensor<")) {
    /* a bare element type is a scalar */
    const char *b = c.p;
    while (c.p < c.e && is_w(*c.p)) c.p++;
    if (c.p > b && c.p == c.e && elem_type(b, (int)(c.p - b), &t->dtype) == 1) return 1;
    snprintf(why, why_size, "type %.*s", s.n > 60 ? 60 : s.n, s.p);
    return c.p > b || (s.n && s.p[0] == '!') ? -1 : 0;
  }
  c.p += 7;
  int rank = 0;
  for (;;) {
    cws(&c);
    if (c.p < c.e && (*c.p == '?' || *c.p == '*')) {
      snprintf(why, why_size, "dynamic shape %.*s", s.n > 60 ? 60 : s.n, s.p);
      return -1;
    }
    if (c.p < c.e && *c.p >= '0' && *c.p <= '9') {
      int64_t d = 0;
      while (c.p < c.e && *c.p >= '0' && *c.p <= '9') {
        if (d > (INT64_C(1) << 40)) return 0;
        d = d * 10 + (*c.p++ - '0');
      }
      if (c.p >= c.e || *c.p != 'x') return 0;
      c.p++;
      if (rank == RY_MAX_RANK) {
        snprintf(why, why_size, "rank above %d", RY_MAX_RANK);
        return -1;
      }
      t->shape.dims[rank++] = d;
      continue;
    }
    break;
  }
  t->shape.rank = rank;
  const char *b = c.p;
  while (c.p < c.e && (is_w(*c.p) || *c.p == '!')) c.p++;
  int n = (int)(c.p - b);
  if (n == 0) return 0;
  int depth = 0;
  const char *tail = c.p;
  while (c.p < c.e && (depth > 0 || *c.p != '>')) { /* complex<f32>, !quant.uniform<...>, encodings */
    if (*c.p == '<') depth++;
    if (*c.p == '>') depth--;
    c.p++;
  }
  if (c.p >= c.e) return 0;
  if (tail != c.p || elem_type(b, n, &t->dtype) != 1) {
    snprintf(why, why_size, "element type %.*s", (int)(c.p - b) > 40 ? 40 : (int)(c.p - b), b);
    return -1;
  }
  c.p++;
  cws(&c);
  return c.p == c.e ? 1 : 0;
}

/* ---- integers ---- */

static bool read_int(cur *c, int64_t *v) {
  cws(c);
  if (cat(c, "true")) {
    c->p += 4;
    *v = 1;
    return true;
  }
  if (cat(c, "false")) {
    c->p += 5;
    *v = 0;
    return true;
  }
  char buf[40];
  int n = 0;
  while (c->p < c->e && n < 39 && (is_w(*c->p) || *c->p == '-' || *c->p == '+')) buf[n++] = *c->p++;
  buf[n] = 0;
  if (!n) return false;
  char *end;
  errno = 0;
  long long x = strtoll(buf, &end, 0);
  if (errno || *end) return false;
  *v = x;
  return true;
}

bool shlo_int(shlo_span s, int64_t *v) {
  cur c = {s.p, s.p + s.n};
  return read_int(&c, v);
}

bool shlo_ints(shlo_span s, int64_t *v, int cap, int *n) {
  cur c = {s.p, s.p + s.n};
  *n = 0;
  cws(&c);
  if (cat(&c, "array<")) {
    c.p += 6;
    while (c.p < c.e && *c.p != ':' && *c.p != '>') c.p++;
    if (c.p < c.e && *c.p == '>') return true; /* array<i64> */
    c.p++;
    for (;;) {
      cws(&c);
      if (c.p < c.e && *c.p == '>') return true;
      if (*n >= cap || !read_int(&c, &v[*n])) return false;
      (*n)++;
      if (!ceat(&c, ',')) return ceat(&c, '>');
    }
  }
  bool dense = false;
  if (cat(&c, "dense<")) {
    c.p += 6;
    dense = true;
  }
  cws(&c);
  if (c.p < c.e && *c.p != '[') { /* one integer */
    if (!read_int(&c, &v[0]) || cap < 1) return false;
    *n = 1;
    return true;
  }
  int depth = 0;
  do {
    cws(&c);
    if (c.p >= c.e) return false;
    if (*c.p == '[') {
      depth++;
      c.p++;
    } else if (*c.p == ']') {
      depth--;
      c.p++;
    } else if (*c.p == ',') {
      c.p++;
    } else {
      if (*n >= cap || !read_int(&c, &v[*n])) return false;
      (*n)++;
    }
  } while (depth > 0);
  return !dense || ceat(&c, '>');
}

bool shlo_axes(shlo_span s, ry_axes *a) {
  memset(a, 0, sizeof *a);
  return shlo_ints(s, a->v, RY_MAX_RANK, &a->n);
}

bool shlo_field(shlo_span s, const char *name, shlo_span *out) {
  cur c = {s.p, s.p + s.n};
  while (c.p < c.e && *c.p != '<' && *c.p != '{') c.p++;
  if (c.p >= c.e) return false;
  c.p++;
  size_t nl = strlen(name);
  for (;;) {
    cws(&c);
    const char *k = c.p;
    while (c.p < c.e && is_w(*c.p)) c.p++;
    size_t kn = (size_t)(c.p - k);
    if (!kn || !ceat(&c, '=')) return false;
    cws(&c);
    const char *vb = c.p;
    int depth = 0;
    while (c.p < c.e) {
      char ch = *c.p;
      if (ch == '[' || ch == '<' || ch == '(') depth++;
      else if (ch == ']' || ch == ')' || (ch == '>' && depth > 0)) depth--;
      else if (depth == 0 && (ch == ',' || ch == '>' || ch == '}')) break;
      c.p++;
    }
    if (kn == nl && memcmp(k, name, nl) == 0) {
      out->p = vb;
      out->n = (int)(c.p - vb);
      return true;
    }
    if (c.p >= c.e || *c.p == '>' || *c.p == '}') return false;
    c.p++;
  }
}

shlo_span shlo_enum_word(shlo_span s) {
  if (s.n < 1 || s.p[0] != '#') return s;
  const char *e = s.p + s.n;
  while (e > s.p && (e[-1] == '>' || e[-1] == ' ')) e--;
  const char *b = e;
  while (b > s.p && is_w(b[-1])) b--;
  shlo_span w = {b, (int)(e - b)};
  return w;
}

/* ---- dense literals ---- */

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* One element into a (index i). */
static bool read_elem(cur *c, ry_array *a, int64_t i) {
  ry_dtype d = a->type.dtype;
  cws(c);
  if (c->p < c->e && *c->p == '(') return false; /* complex */
  if (d == RY_BOOL) {
    int64_t v;
    if (!read_int(c, &v)) return false;
    ((uint8_t *)a->data)[i] = v != 0;
    return true;
  }
  char buf[64];
  int n = 0;
  while (c->p < c->e && n < 63 && (is_w(*c->p) || *c->p == '-' || *c->p == '+')) buf[n++] = *c->p++;
  buf[n] = 0;
  if (!n) return false;
  bool hex = n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X');
  if (ry_dtype_is_float(d)) {
    size_t sz = ry_dtype_size(d);
    if (hex) { /* the bit pattern */
      uint64_t bits = 0;
      for (int k = 2; k < n; k++) {
        int h = hexval(buf[k]);
        if (h < 0 || k > 17) return false;
        bits = bits << 4 | (uint64_t)h;
      }
      uint8_t *dst = (uint8_t *)a->data + (size_t)i * sz;
      for (size_t k = 0; k < sz; k++) dst[k] = (uint8_t)(bits >> (8 * k));
      return true;
    }
    char *end;
    double v = strtod(buf, &end);
    if (*end) return false;
    ry__store_f64(d, a->data, i, v);
    return true;
  }
  char *end;
  errno = 0;
  long long v = hex ? (long long)strtoull(buf, &end, 16) : strtoll(buf, &end, 10);
  if (errno || *end) {
    errno = 0;
    unsigned long long u = strtoull(buf, &end, 0);
    if (errno || *end) return false;
    v = (long long)u;
  }
  ry__store_i64(d, a->data, i, v);
  return true;
}

ry_array *shlo_dense(shlo_span s, ry_type t, ry_status *err) {
  *err = NULL;
  int64_t numel = ry_shape_numel(t.shape);
  if (numel > MAX_CONST_NUMEL) {
    *err = ry__err(RY_ERR_UNSUPPORTED, "constant of %lld elements (at most %lld)", (long long)numel,
                   (long long)MAX_CONST_NUMEL);
    return NULL;
  }
  cur c = {s.p, s.p + s.n};
  cws(&c);
  if (!cat(&c, "dense<")) {
    *err = ry__err(RY_ERR_PARSE, "expected a dense<...> literal");
    return NULL;
  }
  c.p += 6;
  ry_array *a = NULL;
  if ((*err = ry__array_new(t, &a))) return NULL;
  size_t esz = ry_dtype_size(t.dtype);
  cws(&c);
  if (c.p < c.e && *c.p == '"') { /* "0x..." raw little-endian bytes */
    c.p++;
    if (!cat(&c, "0x") && !cat(&c, "0X")) goto bad;
    c.p += 2;
    const char *h = c.p;
    while (c.p < c.e && hexval(*c.p) >= 0) c.p++;
    size_t nb = (size_t)(c.p - h) / 2;
    if ((c.p - h) % 2 || !ceat(&c, '"')) goto bad;
    bool splat = nb == esz && numel != 1;
    if (nb != (size_t)numel * esz && !splat) {
      ry_array_release(a);
      *err = ry__err(RY_ERR_PARSE, "hex constant has %zu bytes; the type needs %zu", nb, (size_t)numel * esz);
      return NULL;
    }
    uint8_t *dst = a->data;
    if (numel == 0) nb = 0; /* an empty splat: nothing to write */
    for (size_t k = 0; k < nb; k++) dst[k] = (uint8_t)(hexval(h[2 * k]) << 4 | hexval(h[2 * k + 1]));
    if (t.dtype == RY_BOOL)
      for (size_t k = 0; k < nb; k++) dst[k] = dst[k] != 0;
    if (splat)
      for (int64_t k = 1; k < numel; k++) memcpy(dst + (size_t)k * esz, dst, esz);
    if (!ceat(&c, '>')) goto bad;
    return a;
  }
  if (ceat(&c, '>')) { /* dense<> */
    if (numel == 0) return a;
    goto bad;
  }
  if (c.p < c.e && *c.p != '[') { /* splat */
    if (numel == 0) { /* read the element into a scalar and drop it */
      ry_type st = {t.dtype, {0, {0}}};
      ry_array *one = NULL;
      if ((*err = ry__array_new(st, &one))) {
        ry_array_release(a);
        return NULL;
      }
      bool ok = read_elem(&c, one, 0);
      ry_array_release(one);
      if (!ok) goto bad;
    } else {
      if (!read_elem(&c, a, 0)) goto bad;
      for (int64_t k = 1; k < numel; k++) memcpy((uint8_t *)a->data + (size_t)k * esz, a->data, esz);
    }
    if (!ceat(&c, '>')) goto bad;
    return a;
  }
  int64_t k = 0;
  int depth = 0;
  do {
    cws(&c);
    if (c.p >= c.e) goto bad;
    if (*c.p == '[') {
      if (++depth > RY_MAX_RANK + 1) goto bad;
      c.p++;
    } else if (*c.p == ']') {
      depth--;
      c.p++;
    } else if (*c.p == ',') {
      c.p++;
    } else {
      if (k >= numel || !read_elem(&c, a, k)) goto bad;
      k++;
    }
  } while (depth > 0);
  if (k != numel) {
    ry_array_release(a);
    *err = ry__err(RY_ERR_PARSE, "constant has %lld elements; the type needs %lld", (long long)k, (long long)numel);
    return NULL;
  }
  if (!ceat(&c, '>')) goto bad;
  return a;
bad:
  ry_array_release(a);
  *err = ry__err(RY_ERR_PARSE, "malformed dense literal for %s", ry_type_str(t, (char[128]){0}, 128));
  return NULL;
}

/* ---- Shardy shardings ---- */

/* `"name"` at c into out; false when absent. */
static bool quoted(cur *c, shlo_span *out) {
  cws(c);
  if (c->p >= c->e || *c->p != '"') return false;
  const char *b = ++c->p;
  while (c->p < c->e && *c->p != '"') c->p++;
  if (c->p >= c->e) return false;
  out->p = b;
  out->n = (int)(c->p - b);
  c->p++;
  return true;
}

int shlo_sharding(const shlo_module *m, shlo_span s, int rank, ry_axes *mesh, ry_axes *dims, char *why, size_t why_size) {
  memset(mesh, 0, sizeof *mesh);
  memset(dims, 0, sizeof *dims);
  cur c = {s.p, s.p + s.n};
  while (c.p < c.e && *c.p != '<') c.p++;
  if (!ceat(&c, '<') || !ceat(&c, '@')) {
    snprintf(why, why_size, "a sharding without a named mesh");
    return -1;
  }
  const char *nb = c.p;
  while (c.p < c.e && is_w(*c.p)) c.p++;
  shlo_span name = {nb, (int)(c.p - nb)};
  const shlo_mesh *mh = NULL;
  for (int i = 0; i < m->n_mesh; i++)
    if (m->mesh[i].name.n == name.n && memcmp(m->mesh[i].name.p, name.p, (size_t)name.n) == 0) mh = &m->mesh[i];
  if (!mh) {
    snprintf(why, why_size, "sharding over an unknown mesh @%.*s", name.n > 40 ? 40 : name.n, name.p);
    return 0;
  }
  /* the mesh: <["x"=2, "y"=2]> */
  shlo_span axis_names[RY_MAX_RANK];
  cur mc = {mh->axes.p, mh->axes.p + mh->axes.n};
  if (!ceat(&mc, '<') || !ceat(&mc, '[')) return 0;
  cws(&mc);
  while (mc.p < mc.e && *mc.p != ']') {
    int64_t size;
    if (mesh->n == RY_MAX_RANK) {
      snprintf(why, why_size, "a mesh of more than %d axes", RY_MAX_RANK);
      return -1;
    }
    if (!quoted(&mc, &axis_names[mesh->n]) || !ceat(&mc, '=') || !read_int(&mc, &size) || size < 1) return 0;
    mesh->v[mesh->n++] = size;
    cws(&mc);
    if (mc.p < mc.e && *mc.p == ',') mc.p++;
    cws(&mc);
  }
  /* the dimensions: [{"x"}, {}] */
  if (!ceat(&c, ',') || !ceat(&c, '[')) return 0;
  for (;;) {
    cws(&c);
    if (c.p < c.e && *c.p == ']') break;
    if (!ceat(&c, '{')) return 0;
    if (dims->n == RY_MAX_RANK) return 0;
    int64_t axis = -1;
    int n_axes = 0;
    for (;;) {
      cws(&c);
      if (c.p < c.e && *c.p == '}') break;
      if (c.p < c.e && *c.p == '?') { /* open: the partitioner may choose; ryft leaves it unsplit */
        c.p++;
        continue;
      }
      shlo_span an;
      if (!quoted(&c, &an)) return 0;
      if (c.p < c.e && *c.p == ':') {
        snprintf(why, why_size, "a sharding over a sub-axis");
        return -1;
      }
      int found = -1;
      for (int a = 0; a < mesh->n; a++)
        if (axis_names[a].n == an.n && memcmp(axis_names[a].p, an.p, (size_t)an.n) == 0) found = a;
      if (found < 0) return 0;
      axis = found;
      n_axes++;
      cws(&c);
      if (c.p < c.e && *c.p == ',') c.p++;
    }
    c.p++;
    while (c.p < c.e && *c.p != ',' && *c.p != ']') c.p++; /* a priority suffix such as p0 */
    if (n_axes > 1) {
      snprintf(why, why_size, "a dimension split over several mesh axes");
      return -1;
    }
    dims->v[dims->n++] = axis;
    cws(&c);
    if (c.p < c.e && *c.p == ',') c.p++;
  }
  if (dims->n != rank) return 0;
  return 1;
}

/* ---- GSPMD sharding strings ---- */

static bool next_perm(int *a, int n) {
  int i = n - 2;
  while (i >= 0 && a[i] >= a[i + 1]) i--;
  if (i < 0) return false;
  int j = n - 1;
  while (a[j] <= a[i]) j--;
  int t = a[i];
  a[i] = a[j];
  a[j] = t;
  for (int l = i + 1, r = n - 1; l < r; l++, r--) {
    t = a[l];
    a[l] = a[r];
    a[r] = t;
  }
  return true;
}

/* `"{devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}"` (or `<=[N]` for the
 * devices in order, or `{replicated}`): the mesh and dims whose
 * rys_sharding_str is this string, trying every order of the mesh axes.
 * 1 found, 2 replicated (no sharding op), 0 malformed, -1 not expressible. */
int shlo_gspmd(shlo_span s, int rank, ry_axes *mesh, ry_axes *dims, char *why, size_t why_size) {
  memset(mesh, 0, sizeof *mesh);
  memset(dims, 0, sizeof *dims);
  cur c = {s.p, s.p + s.n};
  cws(&c);
  if (c.p < c.e && *c.p == '"') c.p++;
  if (cat(&c, "{replicated}")) return 2;
  if (!cat(&c, "{devices=[")) {
    snprintf(why, why_size, "a sharding %.*s", s.n > 60 ? 60 : s.n, s.p);
    return -1;
  }
  c.p += 10;
  int64_t tiles[RY_MAX_RANK + 2];
  int nt = 0;
  for (;;) {
    int64_t v;
    if (nt == RY_MAX_RANK + 1 || !read_int(&c, &v) || v < 1 || v > 4096) return 0;
    tiles[nt++] = v;
    if (ceat(&c, ']')) break;
    if (!ceat(&c, ',')) return 0;
  }
  int64_t total = 1;
  for (int i = 0; i < nt; i++) total *= tiles[i];
  if (total > 4096) return -1;
  /* the device list, made explicit */
  size_t cap = (size_t)total * 6 + 64, k = 0;
  char *want = ry__malloc(cap);
  char *got = ry__malloc(RYS_SHARDING);
  int result = 0;
  if (!want || !got) goto done;
  k += (size_t)snprintf(want + k, cap - k, "{devices=[");
  for (int i = 0; i < nt; i++) k += (size_t)snprintf(want + k, cap - k, i ? ",%lld" : "%lld", (long long)tiles[i]);
  k += (size_t)snprintf(want + k, cap - k, "]");
  cws(&c);
  if (cat(&c, "<=[")) {
    c.p += 3;
    int64_t n;
    if (!read_int(&c, &n) || n != total || !ceat(&c, ']')) {
      snprintf(why, why_size, "a permuted device iota");
      result = c.p < c.e && *c.p == 'T' ? -1 : 0;
      goto done;
    }
    for (int64_t d = 0; d < total; d++) k += (size_t)snprintf(want + k, cap - k, d ? ",%lld" : "%lld", (long long)d);
  } else {
    for (int64_t d = 0; d < total; d++) {
      int64_t v;
      if ((d && !ceat(&c, ',')) || !read_int(&c, &v)) goto done;
      k += (size_t)snprintf(want + k, cap - k, d ? ",%lld" : "%lld", (long long)v);
    }
  }
  cws(&c);
  bool rep = false;
  if (cat(&c, "last_tile_dim_replicate")) {
    c.p += 23;
    rep = true;
  }
  if (!ceat(&c, '}')) goto done;
  if (nt != rank + (rep ? 1 : 0)) goto done;
  snprintf(want + k, cap - k, "%s}", rep ? " last_tile_dim_replicate" : "");
  /* mesh axes: each split dimension, then the replication */
  int64_t size[RY_MAX_RANK + 1];
  int dim_of[RY_MAX_RANK + 1], na = 0;
  for (int i = 0; i < nt; i++)
    if (tiles[i] > 1 || (rep && i == nt - 1)) {
      if (na == RY_MAX_RANK) {
        result = -1;
        goto done;
      }
      size[na] = tiles[i];
      dim_of[na++] = i < rank ? i : -1;
    }
  if (na > 5) {
    snprintf(why, why_size, "a mesh of %d axes", na);
    result = -1;
    goto done;
  }
  int perm[RY_MAX_RANK];
  for (int i = 0; i < na; i++) perm[i] = i;
  do { /* mesh axis j is axis perm[j] of the list above */
    mesh->n = na;
    dims->n = rank;
    for (int i = 0; i < rank; i++) dims->v[i] = -1;
    for (int j = 0; j < na; j++) {
      mesh->v[j] = size[perm[j]];
      if (dim_of[perm[j]] >= 0) dims->v[dim_of[perm[j]]] = j;
    }
    rys_sharding_str(mesh, dims, got, RYS_SHARDING);
    if (strcmp(got, want) == 0) {
      result = 1;
      goto done;
    }
  } while (next_perm(perm, na));
  snprintf(why, why_size, "a device order no mesh of ryft's gives (%.60s)", want);
  result = -1;
done:
  ry__free(want, cap);
  ry__free(got, RYS_SHARDING);
  return result;
}
