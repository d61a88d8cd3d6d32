/* GGUF reader (ryft/gguf.h): map a file, validate every byte of its header,
 * and index its metadata and tensors for lookup.
 *
 * Layout (ggml's docs/gguf.md; gguf-py's gguf_reader.py): u32 magic "GGUF",
 * u32 version, u64 tensor count, u64 key/value count; each key/value is a
 * string key (u64 length + bytes), a u32 value type and the value (arrays:
 * u32 element type, u64 count, elements; nested arrays the same, without a
 * key, and without a type tag); each tensor info is a string name, u32 n_dims, n_dims u64 dims, u32
 * ggml type and u64 offset into the data section, which starts at the next
 * multiple of the alignment after the infos. Version 1 (u32 counts) is
 * refused; versions 2 and 3 share this layout. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_internal.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define MAX_DEPTH 8            /* nested arrays */

/* ---- the cursor --------------------------------------------------------------- */

typedef struct rd {
  const uint8_t *base;
  size_t size, pos;
  const char *src;
  ry_status err;
} rd;

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Fail with "<src>: <what> at byte <pos>: <msg>"; keeps the first error. */
static bool rfail(rd *r, size_t at, const char *what, const char *fmt, ...) RY_PRINTF(4, 5);
static bool rfail(rd *r, size_t at, const char *what, const char *fmt, ...) {
  if (r->err) return false;
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->err = ry__err(RY_ERR_PARSE, "%s: %s at byte %zu: %s", r->src, what, at, msg);
  return false;
}

static bool need(rd *r, size_t n, const char *what, const char *field) {
  if (r->size - r->pos >= n) return true;
  return rfail(r, r->pos, what, "truncated: %s needs %zu bytes, the file has %zu left (file size %zu)", field, n,
               r->size - r->pos, r->size);
}

static bool rd_u32(rd *r, uint32_t *v, const char *what, const char *field) {
  if (!need(r, 4, what, field)) return false;
  *v = (uint32_t)le(r->base + r->pos, 4);
  r->pos += 4;
  return true;
}

static bool rd_u64(rd *r, uint64_t *v, const char *what, const char *field) {
  if (!need(r, 8, what, field)) return false;
  *v = le(r->base + r->pos, 8);
  r->pos += 8;
  return true;
}

/* A string: u64 length then bytes; *s points into the file. */
static bool rd_str(rd *r, const char **s, uint64_t *len, const char *what, const char *field) {
  size_t at = r->pos;
  if (!rd_u64(r, len, what, field)) return false;
  if (*len > r->size - r->pos)
    return rfail(r, at, what, "%s length %llu runs past the end of the file (%zu bytes left)", field,
                 (unsigned long long)*len, r->size - r->pos);
  *s = (const char *)r->base + r->pos;
  r->pos += (size_t)*len;
  return true;
}

/* A key or tensor name: not empty, no NUL; copied NUL-terminated. */
static bool rd_name(rd *r, char **out, const char *what, const char *field) {
  size_t at = r->pos;
  const char *s = NULL;
  uint64_t len = 0;
  if (!rd_str(r, &s, &len, what, field)) return false;
  if (len == 0) return rfail(r, at, what, "empty %s", field);
  if (memchr(s, 0, (size_t)len)) return rfail(r, at, what, "%s contains a NUL byte", field);
  char *c = ry__malloc((size_t)len + 1);
  char *d = NULL;
  if (c) {
    memcpy(c, s, (size_t)len);
    c[len] = 0;
    d = ry__strdup(c); /* ry__strfree's sized allocation */
    ry__free(c, (size_t)len + 1);
  }
  if (!d) {
    if (!r->err) r->err = ry__oom();
    return false;
  }
  *out = d;
  return true;
}

/* ---- value types ---------------------------------------------------------------- */

static const struct {
  const char *name;
  int size; /* bytes of a scalar; 0 for string and array */
} k_vtypes[RY_GGUF_TYPE_COUNT] = {
    [RY_GGUF_U8] = {"u8", 1},   [RY_GGUF_I8] = {"i8", 1},   [RY_GGUF_U16] = {"u16", 2},      [RY_GGUF_I16] = {"i16", 2},
    [RY_GGUF_U32] = {"u32", 4}, [RY_GGUF_I32] = {"i32", 4}, [RY_GGUF_F32] = {"f32", 4},      [RY_GGUF_BOOL] = {"bool", 1},
    [RY_GGUF_STRING] = {"string", 0}, [RY_GGUF_ARRAY] = {"array", 0}, [RY_GGUF_U64] = {"u64", 8},
    [RY_GGUF_I64] = {"i64", 8}, [RY_GGUF_F64] = {"f64", 8},
};

const char *ry_gguf_type_name(int type) {
  return type >= 0 && type < RY_GGUF_TYPE_COUNT ? k_vtypes[type].name : "?";
}

int ry__gguf_scalar_size(int type) { return type >= 0 && type < RY_GGUF_TYPE_COUNT ? k_vtypes[type].size : 0; }

void ry__gguf_node_free(ry_gguf_node *n) {
  if (!n) return;
  if (n->offs) ry__free(n->offs, (size_t)n->cap * sizeof *n->offs);
  if (n->kids) {
    for (uint64_t i = 0; i < n->cap; i++) ry__gguf_node_free(&n->kids[i]);
    ry__free(n->kids, (size_t)n->cap * sizeof *n->kids);
  }
  n->offs = NULL;
  n->kids = NULL;
}

static bool oom(rd *r) {
  if (!r->err) r->err = ry__oom();
  return false;
}

/* The payload of a value of `type` at the cursor into n (type already read). */
static bool rd_value(rd *r, ry_gguf_node *n, uint32_t type, int depth, const char *what) {
  memset(n, 0, sizeof *n);
  size_t at = r->pos;
  if (type >= RY_GGUF_TYPE_COUNT)
    return rfail(r, at >= 4 ? at - 4 : at, what, "unknown value type %u (known: 0..%d)", type, RY_GGUF_TYPE_COUNT - 1);
  n->v.type = (ry_gguf_type)type;
  n->v.node_ = n;
  n->raw_off = at;
  if (type == RY_GGUF_STRING) {
    const char *s;
    if (!rd_str(r, &s, &n->v.n, what, "string")) return false;
    n->v.data = s;
  } else if (type == RY_GGUF_ARRAY) {
    if (depth >= MAX_DEPTH) return rfail(r, at, what, "arrays nested deeper than %d", MAX_DEPTH);
    uint32_t et;
    uint64_t cnt;
    if (!rd_u32(r, &et, what, "array element type")) return false;
    if (et >= RY_GGUF_TYPE_COUNT)
      return rfail(r, at, what, "unknown array element type %u (known: 0..%d)", et, RY_GGUF_TYPE_COUNT - 1);
    if (!rd_u64(r, &cnt, what, "array count")) return false;
    n->v.elem = (ry_gguf_type)et;
    n->v.data = r->base + r->pos;
    int es = k_vtypes[et].size;
    /* every element takes at least min bytes: a bound on the count before
       anything is allocated */
    size_t min = es ? (size_t)es : et == RY_GGUF_STRING ? 8 : 12;
    if (cnt > (r->size - r->pos) / min)
      return rfail(r, at, what, "array of %llu %s elements needs at least %llu bytes, the file has %zu left",
                   (unsigned long long)cnt, k_vtypes[et].name,
                   cnt > UINT64_MAX / min ? UINT64_MAX : (unsigned long long)(cnt * min), r->size - r->pos);
    n->v.n = cnt;
    if (es) {
      if (et == RY_GGUF_BOOL)
        for (uint64_t i = 0; i < cnt; i++)
          if (r->base[r->pos + i] > 1)
            return rfail(r, r->pos + (size_t)i, what, "array element %llu: bool value %u is not 0 or 1",
                         (unsigned long long)i, r->base[r->pos + i]);
      r->pos += (size_t)cnt * (size_t)es;
    } else if (et == RY_GGUF_STRING) {
      if (cnt && !(n->offs = ry__malloc((size_t)cnt * sizeof *n->offs))) return oom(r);
      n->cap = cnt;
      for (uint64_t i = 0; i < cnt; i++) {
        n->offs[i] = r->pos;
        const char *s;
        uint64_t len;
        char field[64];
        snprintf(field, sizeof field, "array element %llu", (unsigned long long)i);
        if (!rd_str(r, &s, &len, what, field)) return false;
      }
    } else {
      if (cnt && !(n->kids = ry__calloc((size_t)cnt, sizeof *n->kids))) return oom(r);
      n->cap = cnt;
      /* a nested array is encoded without its own type tag: element
         type, count, elements (as gguf-py writes and reads it) */
      for (uint64_t i = 0; i < cnt; i++)
        if (!rd_value(r, &n->kids[i], RY_GGUF_ARRAY, depth + 1, what)) return false;
    }
  } else {
    int es = k_vtypes[type].size;
    if (!need(r, (size_t)es, what, k_vtypes[type].name)) return false;
    if (type == RY_GGUF_BOOL && r->base[r->pos] > 1)
      return rfail(r, at, what, "bool value %u is not 0 or 1", r->base[r->pos]);
    n->v.data = r->base + r->pos;
    r->pos += (size_t)es;
  }
  n->raw_len = r->pos - at;
  return true;
}

/* ---- value access ------------------------------------------------------------------ */

static ry_status mismatch(const ry_gguf_value *v, const char *want) {
  if (v->type == RY_GGUF_ARRAY)
    return ry__err(RY_ERR_DTYPE, "value is an array of %s, expected %s", ry_gguf_type_name(v->elem), want);
  return ry__err(RY_ERR_DTYPE, "value is %s, expected %s", ry_gguf_type_name(v->type), want);
}

ry_status ry_gguf_value_int(const ry_gguf_value *v, int64_t *out) {
  if (!v || !out || !v->data) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_value_int: NULL argument");
  const uint8_t *p = v->data;
  switch (v->type) {
  case RY_GGUF_U8: *out = p[0]; return NULL;
  case RY_GGUF_I8: *out = (int8_t)p[0]; return NULL;
  case RY_GGUF_U16: *out = (int64_t)le(p, 2); return NULL;
  case RY_GGUF_I16: *out = (int16_t)le(p, 2); return NULL;
  case RY_GGUF_U32: *out = (int64_t)le(p, 4); return NULL;
  case RY_GGUF_I32: *out = (int32_t)(uint32_t)le(p, 4); return NULL;
  case RY_GGUF_I64: *out = (int64_t)le(p, 8); return NULL;
  case RY_GGUF_U64: {
    uint64_t x = le(p, 8);
    if (x > (uint64_t)INT64_MAX) return ry__err(RY_ERR_DTYPE, "u64 value %llu does not fit in an int64", (unsigned long long)x);
    *out = (int64_t)x;
    return NULL;
  }
  default: return mismatch(v, "an integer");
  }
}

ry_status ry_gguf_value_float(const ry_gguf_value *v, double *out) {
  if (!v || !out || !v->data) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_value_float: NULL argument");
  if (v->type == RY_GGUF_F32) {
    uint32_t b = (uint32_t)le(v->data, 4);
    float f;
    memcpy(&f, &b, 4);
    *out = f;
    return NULL;
  }
  if (v->type == RY_GGUF_F64) {
    uint64_t b = le(v->data, 8);
    memcpy(out, &b, 8);
    return NULL;
  }
  return mismatch(v, "f32 or f64");
}

ry_status ry_gguf_value_bool(const ry_gguf_value *v, int *out) {
  if (!v || !out || !v->data) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_value_bool: NULL argument");
  if (v->type != RY_GGUF_BOOL) return mismatch(v, "bool");
  *out = *(const uint8_t *)v->data != 0;
  return NULL;
}

ry_status ry_gguf_value_str(const ry_gguf_value *v, const char **s, size_t *len) {
  if (!v || !s) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_value_str: NULL argument");
  if (v->type != RY_GGUF_STRING) return mismatch(v, "string");
  *s = v->data;
  if (len) *len = (size_t)v->n;
  return NULL;
}

ry_status ry_gguf_arr_get(const ry_gguf_value *v, uint64_t i, ry_gguf_value *out) {
  if (!v || !out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_arr_get: NULL argument");
  if (v->type != RY_GGUF_ARRAY) return mismatch(v, "an array");
  if ((unsigned)v->elem >= RY_GGUF_TYPE_COUNT) return ry__err(RY_ERR_INVALID_ARGUMENT, "array of unknown type %d", (int)v->elem);
  if (i >= v->n)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "array index %llu out of range (%llu elements)", (unsigned long long)i,
                   (unsigned long long)v->n);
  const ry_gguf_node *n = v->node_;
  int fixed = k_vtypes[v->elem].size;
  if ((fixed && !v->data) || (!fixed && (!n || i >= n->cap || (v->elem == RY_GGUF_STRING ? !n->offs : !n->kids))))
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_arr_get: an array of %s that was not read from a file",
                   ry_gguf_type_name(v->elem));
  memset(out, 0, sizeof *out);
  out->type = v->elem;
  int es = k_vtypes[v->elem].size;
  if (es) {
    out->data = (const uint8_t *)v->data + i * (uint64_t)es;
  } else if (v->elem == RY_GGUF_STRING) {
    const uint8_t *p = n->base + n->offs[i];
    out->n = le(p, 8);
    out->data = p + 8;
  } else {
    *out = n->kids[i].v;
  }
  return NULL;
}

ry_status ry_gguf_arr_str(const ry_gguf_value *v, uint64_t i, const char **s, size_t *len) {
  if (v && v->type == RY_GGUF_ARRAY && v->elem != RY_GGUF_STRING) return mismatch(v, "an array of string");
  ry_gguf_value e;
  ry_status st = ry_gguf_arr_get(v, i, &e);
  if (st) return st;
  return ry_gguf_value_str(&e, s, len);
}

/* ---- the handle ------------------------------------------------------------------- */

void ry_gguf_close(ry_gguf *g) {
  if (!g) return;
  for (int64_t i = 0; i < g->n_kv; i++) {
    ry__strfree(g->keys[i]);
    ry__gguf_node_free(&g->kv[i]);
  }
  if (g->keys) ry__free(g->keys, g->cap_kv * sizeof *g->keys);
  if (g->kv) ry__free(g->kv, g->cap_kv * sizeof *g->kv);
  if (g->kv_sorted) ry__free(g->kv_sorted, (size_t)g->n_kv * sizeof *g->kv_sorted);
  for (int64_t i = 0; i < g->n_t; i++) ry__strfree((char *)g->tensors[i].name);
  if (g->tensors) ry__free(g->tensors, g->cap_t * sizeof *g->tensors);
  if (g->t_at) ry__free(g->t_at, g->cap_t * sizeof *g->t_at);
  if (g->t_sorted) ry__free(g->t_sorted, (size_t)g->n_t * sizeof *g->t_sorted);
  if (g->mapped) munmap((void *)g->base, g->size);
  ry__strfree(g->source);
  ry__free(g, sizeof *g);
}

/* Sorting indices by name: a small merge sort (qsort has no context). */
static void sort_idx(int64_t *idx, int64_t *tmp, int64_t n, const ry_gguf *g, int tensors) {
  if (n < 2) return;
  int64_t h = n / 2;
  sort_idx(idx, tmp, h, g, tensors);
  sort_idx(idx + h, tmp, n - h, g, tensors);
  int64_t i = 0, j = h, k = 0;
  while (i < h && j < n) {
    const char *a = tensors ? g->tensors[idx[i]].name : g->keys[idx[i]];
    const char *b = tensors ? g->tensors[idx[j]].name : g->keys[idx[j]];
    tmp[k++] = strcmp(a, b) <= 0 ? idx[i++] : idx[j++];
  }
  while (i < h) tmp[k++] = idx[i++];
  while (j < n) tmp[k++] = idx[j++];
  memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static int64_t *sorted_index(const ry_gguf *g, int64_t n, int tensors) {
  if (n == 0) return NULL;
  int64_t *idx = ry__malloc((size_t)n * sizeof *idx), *tmp = ry__malloc((size_t)n * sizeof *tmp);
  if (!idx || !tmp) {
    if (idx) ry__free(idx, (size_t)n * sizeof *idx);
    if (tmp) ry__free(tmp, (size_t)n * sizeof *tmp);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) idx[i] = i;
  sort_idx(idx, tmp, n, g, tensors);
  ry__free(tmp, (size_t)n * sizeof *tmp);
  return idx;
}

static int64_t lookup(const ry_gguf *g, const int64_t *idx, int64_t n, const char *name, int tensors) {
  if (!g || !name) return -1;
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    const char *s = tensors ? g->tensors[idx[mid]].name : g->keys[idx[mid]];
    int c = strcmp(s, name);
    if (c == 0) return idx[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

static bool parse_kvs(rd *r, ry_gguf *g, uint64_t n_kv) {
  if (!n_kv) return true;
  g->cap_kv = (size_t)n_kv;
  g->keys = ry__calloc((size_t)n_kv, sizeof *g->keys);
  g->kv = ry__calloc((size_t)n_kv, sizeof *g->kv);
  if (!g->keys || !g->kv) return oom(r);
  for (uint64_t i = 0; i < n_kv; i++) {
    char what[96];
    size_t at = r->pos;
    snprintf(what, sizeof what, "key/value %llu", (unsigned long long)i);
    if (!rd_name(r, &g->keys[i], what, "key")) return false;
    g->n_kv = (int64_t)i + 1;
    char what2[400];
    snprintf(what2, sizeof what2, "key '%.300s'", g->keys[i]);
    uint32_t type;
    if (!rd_u32(r, &type, what2, "value type")) return false;
    if (!rd_value(r, &g->kv[i], type, 0, what2)) return false;
    g->kv[i].key_off = at;
  }
  return true;
}

/* Nested nodes need the file base too (arr_get reads offsets against it). */
static void set_base(ry_gguf_node *n, const uint8_t *base) {
  n->base = base;
  if (n->kids)
    for (uint64_t i = 0; i < n->v.n; i++) set_base(&n->kids[i], base);
}

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

static bool parse_tensors(rd *r, ry_gguf *g, uint64_t n_t) {
  if (!n_t) return true;
  g->cap_t = (size_t)n_t;
  g->tensors = ry__calloc((size_t)n_t, sizeof *g->tensors);
  g->t_at = ry__calloc((size_t)n_t, sizeof *g->t_at);
  if (!g->tensors || !g->t_at) return oom(r);
  for (uint64_t i = 0; i < n_t; i++) {
    ry_gguf_tensor *t = &g->tensors[i];
    char what[400];
    size_t at = r->pos;
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
    char *name;
    if (!rd_name(r, &name, what, "tensor name")) return false;
    t->name = name;
    g->n_t = (int64_t)i + 1;
    g->t_at[i] = at;
    snprintf(what, sizeof what, "tensor '%.300s'", name);
    uint32_t nd;
    size_t nd_at = r->pos;
    if (!rd_u32(r, &nd, what, "n_dims")) return false;
    if (nd > RY_GGUF_MAX_DIMS) return rfail(r, nd_at, what, "%u dims, at most %d are allowed", nd, RY_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    for (int d = 0; d < RY_GGUF_MAX_DIMS; d++) t->dims[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
      uint64_t x;
      size_t dat = r->pos;
      if (!rd_u64(r, &x, what, "dim")) return false;
      if (x > (uint64_t)INT64_MAX) return rfail(r, dat, what, "dim %u is %llu, too large", d, (unsigned long long)x);
      t->dims[d] = (int64_t)x;
    }
    uint32_t type;
    size_t type_at = r->pos;
    if (!rd_u32(r, &type, what, "type")) return false;
    if (!ry_ggml_type_name((int)type))
      return rfail(r, type_at, what, "unknown ggml type %u", type);
    t->type = (ry_ggml_type)type;
    if (!rd_u64(r, &t->offset, what, "offset")) return false;
    /* size: row bytes times the other dims, each step overflow-checked */
    int64_t bs = ry_ggml_block_size((int)type);
    if (t->dims[0] % bs)
      return rfail(r, at, what, "row length %lld is not a multiple of the %s block size %lld", (long long)t->dims[0],
                   ry_ggml_type_name((int)type), (long long)bs);
    uint64_t size = (uint64_t)(t->dims[0] / bs) * ry_ggml_type_size((int)type); /* dims[0]/bs < 2^63, size <= 256 */
    if (t->dims[0] / bs && size / ry_ggml_type_size((int)type) != (uint64_t)(t->dims[0] / bs))
      return rfail(r, at, what, "size overflows");
    for (int d = 1; d < RY_GGUF_MAX_DIMS; d++) {
      uint64_t x = (uint64_t)t->dims[d];
      if (x && size > UINT64_MAX / x) return rfail(r, at, what, "size of %s[...] overflows", ry_ggml_type_name((int)type));
      size *= x;
    }
    if (size > SIZE_MAX) return rfail(r, at, what, "size overflows");
    /* and the product of the nonzero dims fits an int64: a zero dim makes
       the size 0, but a shape's element count multiplies in any order */
    uint64_t nel = 1;
    for (int d = 0; d < RY_GGUF_MAX_DIMS; d++) {
      uint64_t x = (uint64_t)t->dims[d];
      if (x && nel > (uint64_t)INT64_MAX / x) return rfail(r, at, what, "element count overflows");
      if (x) nel *= x;
    }
    t->size = (size_t)size;
  }
  return true;
}

static ry_status finish(rd *r, ry_gguf *g, ry_gguf **out) {
  if (r->err) {
    ry_gguf_close(g);
    return r->err;
  }
  *out = g;
  return NULL;
}

static ry_status parse(const uint8_t *base, size_t size, const char *source, int mapped, ry_gguf **out) {
  *out = NULL;
  ry_gguf *g = ry__calloc(1, sizeof *g);
  if (!g) {
    if (mapped) munmap((void *)base, size);
    return ry__oom();
  }
  g->base = base;
  g->size = size;
  g->mapped = mapped;
  rd r = {base, size, 0, source, NULL};
  if (!(g->source = ry__strdup(source))) {
    r.err = ry__oom();
    return finish(&r, g, out);
  }
  r.src = g->source;
  uint32_t magic, version;
  uint64_t n_t, n_kv;
  if (!rd_u32(&r, &magic, "header", "magic")) return finish(&r, g, out);
  if (magic != GGUF_MAGIC) {
    rfail(&r, 0, "header", "bad magic %02x %02x %02x %02x, expected \"GGUF\"", base[0], base[1], base[2], base[3]);
    return finish(&r, g, out);
  }
  if (!rd_u32(&r, &version, "header", "version")) return finish(&r, g, out);
  if (version == 1) rfail(&r, 4, "header", "GGUF version 1 is not supported (versions 2 and 3 are)");
  else if ((version & 0xFFFF) == 0 && version)
    rfail(&r, 4, "header", "big-endian GGUF (version field %08x) is not supported", version);
  else if (version != 2 && version != 3) rfail(&r, 4, "header", "unsupported GGUF version %u (versions 2 and 3 are)", version);
  if (r.err) return finish(&r, g, out);
  g->version = version;
  if (!rd_u64(&r, &n_t, "header", "tensor count") || !rd_u64(&r, &n_kv, "header", "key/value count"))
    return finish(&r, g, out);
  /* a key/value takes at least 13 bytes (8 length + 1 key byte + 4 type;
     the value is more), a tensor info at least 25 */
  size_t left = size - r.pos;
  if (n_kv > left / 13) {
    rfail(&r, 16, "header", "key/value count %llu is more than the %zu bytes after the header can hold",
          (unsigned long long)n_kv, left);
    return finish(&r, g, out);
  }
  if (n_t > left / 25) {
    rfail(&r, 8, "header", "tensor count %llu is more than the %zu bytes after the header can hold",
          (unsigned long long)n_t, left);
    return finish(&r, g, out);
  }
  if (!parse_kvs(&r, g, n_kv)) return finish(&r, g, out);
  for (int64_t i = 0; i < g->n_kv; i++) set_base(&g->kv[i], base);
  if (g->n_kv && !(g->kv_sorted = sorted_index(g, g->n_kv, 0))) {
    r.err = ry__oom();
    return finish(&r, g, out);
  }
  for (int64_t i = 1; i < g->n_kv; i++) {
    const char *a = g->keys[g->kv_sorted[i - 1]], *b = g->keys[g->kv_sorted[i]];
    if (strcmp(a, b) == 0) {
      int64_t second = g->kv_sorted[i] > g->kv_sorted[i - 1] ? g->kv_sorted[i] : g->kv_sorted[i - 1];
      rfail(&r, g->kv[second].key_off, "key/value", "duplicate key '%.300s'", b);
      return finish(&r, g, out);
    }
  }
  g->alignment = 32;
  const ry_gguf_value *al = ry_gguf_find(g, "general.alignment");
  if (al) {
    size_t at = al->node_->raw_off;
    if (al->type != RY_GGUF_U32)
      rfail(&r, at, "key 'general.alignment'", "type is %s, expected u32", ry_gguf_type_name(al->type));
    else if (!is_pow2(le(al->data, 4)))
      rfail(&r, at, "key 'general.alignment'", "alignment %u is not a power of two", (unsigned)le(al->data, 4));
    if (r.err) return finish(&r, g, out);
    g->alignment = (uint32_t)le(al->data, 4);
  }
  if (!parse_tensors(&r, g, n_t)) return finish(&r, g, out);
  if (g->n_t && !(g->t_sorted = sorted_index(g, g->n_t, 1))) {
    r.err = ry__oom();
    return finish(&r, g, out);
  }
  for (int64_t i = 1; i < g->n_t; i++) {
    const char *a = g->tensors[g->t_sorted[i - 1]].name, *b = g->tensors[g->t_sorted[i]].name;
    if (strcmp(a, b) == 0) {
      int64_t second = g->t_sorted[i] > g->t_sorted[i - 1] ? g->t_sorted[i] : g->t_sorted[i - 1];
      rfail(&r, g->t_at[second], "tensor info", "duplicate tensor name '%.300s'", b);
      return finish(&r, g, out);
    }
  }
  /* the data section */
  size_t hdr_end = r.pos, pad = (g->alignment - hdr_end % g->alignment) % g->alignment;
  if (pad > size - hdr_end) {
    if (g->n_t) {
      rfail(&r, hdr_end, "data section", "truncated: the file ends inside the padding before the tensor data");
      return finish(&r, g, out);
    }
    pad = size - hdr_end;
  }
  g->data_off = hdr_end + pad;
  size_t data_size = size - g->data_off;
  for (int64_t i = 0; i < g->n_t; i++) {
    ry_gguf_tensor *t = &g->tensors[i];
    char what[400];
    snprintf(what, sizeof what, "tensor '%.300s'", t->name);
    if (t->offset % g->alignment) {
      rfail(&r, g->t_at[i], what, "data offset %llu is not a multiple of the alignment %u", (unsigned long long)t->offset,
            g->alignment);
      return finish(&r, g, out);
    }
    if (t->offset > data_size || t->size > data_size - t->offset) {
      rfail(&r, g->t_at[i], what, "data [%llu, +%zu) runs past the end of the file (data section of %zu bytes at byte %zu)",
            (unsigned long long)t->offset, t->size, data_size, g->data_off);
      return finish(&r, g, out);
    }
    t->data = base + g->data_off + t->offset;
  }
  /* no two tensors overlap: sort by offset (reuse a merge over indices) */
  if (g->n_t > 1) {
    int64_t *idx = ry__malloc((size_t)g->n_t * sizeof *idx);
    if (!idx) {
      r.err = ry__oom();
      return finish(&r, g, out);
    }
    for (int64_t i = 0; i < g->n_t; i++) idx[i] = i;
    /* a bottom-up merge sort by offset */
    int64_t *tmp = ry__malloc((size_t)g->n_t * sizeof *tmp);
    if (!tmp) {
      ry__free(idx, (size_t)g->n_t * sizeof *idx);
      r.err = ry__oom();
      return finish(&r, g, out);
    }
    for (int64_t w = 1; w < g->n_t; w *= 2) {
      for (int64_t lo = 0; lo < g->n_t; lo += 2 * w) {
        int64_t mid = lo + w < g->n_t ? lo + w : g->n_t, hi = lo + 2 * w < g->n_t ? lo + 2 * w : g->n_t;
        int64_t a = lo, b = mid, k = lo;
        while (a < mid && b < hi) tmp[k++] = g->tensors[idx[a]].offset <= g->tensors[idx[b]].offset ? idx[a++] : idx[b++];
        while (a < mid) tmp[k++] = idx[a++];
        while (b < hi) tmp[k++] = idx[b++];
      }
      memcpy(idx, tmp, (size_t)g->n_t * sizeof *idx);
    }
    for (int64_t i = 1; i < g->n_t && !r.err; i++) {
      const ry_gguf_tensor *p = &g->tensors[idx[i - 1]], *q = &g->tensors[idx[i]];
      if (p->size && q->size && p->offset + p->size > q->offset) {
        char what[400];
        snprintf(what, sizeof what, "tensor '%.300s'", q->name);
        rfail(&r, g->t_at[idx[i]], what, "data at offset %llu overlaps tensor '%.300s' [%llu, +%zu)",
              (unsigned long long)q->offset, p->name, (unsigned long long)p->offset, p->size);
      }
    }
    ry__free(tmp, (size_t)g->n_t * sizeof *tmp);
    ry__free(idx, (size_t)g->n_t * sizeof *idx);
  }
  return finish(&r, g, out);
}

ry_status ry_gguf_parse(const void *data, size_t size, const char *source, ry_gguf **out) {
  if (!out || (!data && size)) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_parse: NULL argument");
  *out = NULL;
  static const uint8_t empty[1];
  return parse(data ? data : empty, size, source ? source : "<memory>", 0, out);
}

ry_status ry_gguf_open(const char *path, ry_gguf **out) {
  if (!path || !out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_open: NULL argument");
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ry__err(RY_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return ry__err(RY_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return ry__err(RY_ERR_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  if (size == 0) {
    close(fd);
    return ry__err(RY_ERR_PARSE, "%s: empty file, not GGUF", path);
  }
  void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED) return ry__err(RY_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
  return parse(m, size, path, 1, out);
}

/* ---- lookups ------------------------------------------------------------------------- */

uint32_t ry_gguf_version(const ry_gguf *g) { return g ? g->version : 0; }
uint32_t ry_gguf_alignment(const ry_gguf *g) { return g ? g->alignment : 0; }
size_t ry_gguf_data_offset(const ry_gguf *g) { return g ? g->data_off : 0; }
size_t ry_gguf_file_size(const ry_gguf *g) { return g ? g->size : 0; }
int64_t ry_gguf_n_kv(const ry_gguf *g) { return g ? g->n_kv : 0; }
const char *ry_gguf_key(const ry_gguf *g, int64_t i) { return g && i >= 0 && i < g->n_kv ? g->keys[i] : NULL; }
const ry_gguf_value *ry_gguf_kv_value(const ry_gguf *g, int64_t i) {
  return g && i >= 0 && i < g->n_kv ? &g->kv[i].v : NULL;
}
const ry_gguf_value *ry_gguf_find(const ry_gguf *g, const char *key) {
  int64_t i = g ? lookup(g, g->kv_sorted, g->n_kv, key, 0) : -1;
  return i < 0 ? NULL : &g->kv[i].v;
}
int64_t ry_gguf_n_tensors(const ry_gguf *g) { return g ? g->n_t : 0; }
const ry_gguf_tensor *ry_gguf_tensor_at(const ry_gguf *g, int64_t i) {
  return g && i >= 0 && i < g->n_t ? &g->tensors[i] : NULL;
}
const ry_gguf_tensor *ry_gguf_find_tensor(const ry_gguf *g, const char *name) {
  int64_t i = g ? lookup(g, g->t_sorted, g->n_t, name, 1) : -1;
  return i < 0 ? NULL : &g->tensors[i];
}

static ry_status get(const ry_gguf *g, const char *key, const ry_gguf_value **v) {
  if (!g || !key) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_get: NULL argument");
  if (!(*v = ry_gguf_find(g, key))) return ry__err(RY_ERR_NOT_FOUND, "%s: no key '%s'", g->source, key);
  return NULL;
}

#define GETTER(fn, T, call)                                                  \
  ry_status fn(const ry_gguf *g, const char *key, T *out) {                  \
    const ry_gguf_value *v;                                                  \
    ry_status s = get(g, key, &v);                                           \
    if (!s) s = call(v, out);                                                \
    return s && g && key && ry_status_code(s) != RY_ERR_NOT_FOUND ? ry__err_prefix(s, "%s: key '%s'", g->source, key) : s; \
  }
GETTER(ry_gguf_get_int, int64_t, ry_gguf_value_int)
GETTER(ry_gguf_get_float, double, ry_gguf_value_float)
GETTER(ry_gguf_get_bool, int, ry_gguf_value_bool)

ry_status ry_gguf_get_str(const ry_gguf *g, const char *key, const char **str, size_t *len) {
  const ry_gguf_value *v;
  ry_status s = get(g, key, &v);
  if (!s) s = ry_gguf_value_str(v, str, len);
  return s && g && key && ry_status_code(s) != RY_ERR_NOT_FOUND ? ry__err_prefix(s, "%s: key '%s'", g->source, key) : s;
}

ry_status ry_gguf_get_arr(const ry_gguf *g, const char *key, ry_gguf_type elem, ry_gguf_value *out) {
  const ry_gguf_value *v;
  ry_status s = get(g, key, &v);
  if (s) return s;
  if (v->type != RY_GGUF_ARRAY || (elem != RY_GGUF_TYPE_COUNT && v->elem != elem)) {
    char want[32];
    snprintf(want, sizeof want, "an array of %s", elem == RY_GGUF_TYPE_COUNT ? "any type" : ry_gguf_type_name(elem));
    return ry__err_prefix(mismatch(v, want), "%s: key '%s'", g->source, key);
  }
  *out = *v;
  return NULL;
}

ry_shape ry_gguf_tensor_shape(const ry_gguf_tensor *t) {
  ry_shape s = {0, {0}};
  if (!t) return s;
  s.rank = t->n_dims;
  for (int i = 0; i < t->n_dims; i++) s.dims[i] = t->dims[t->n_dims - 1 - i];
  return s;
}

ry_status ry_gguf_tensor_to_f32(const ry_gguf_tensor *t, ry_array **out) {
  if (!t || !out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_tensor_to_f32: NULL argument");
  *out = NULL;
  ry_type ty = {RY_F32, ry_gguf_tensor_shape(t)};
  ry_array *a;
  ry_status s = ry__array_new_uninit(ty, &a);
  if (s) return s;
  s = ry_ggml_dequantize(t->type, t->data, ry__array_mut(a), ry_shape_numel(ty.shape));
  if (s) {
    ry_array_release(a);
    return ry__err_prefix(s, "tensor '%s'", t->name);
  }
  *out = a;
  return NULL;
}

bool ry__gguf_mapped(const ry_gguf *g) { return g && g->mapped; }
