/* GGUF writer (ryft/gguf.h): metadata and tensors to a version 3 file,
 * written atomically. The layout is gguf-py's GGUFWriter's: key/values and
 * tensor infos in the order they were added, the header padded to the
 * alignment, then each tensor's data padded to the alignment, so that
 * rewriting a file gguf-py wrote (ry_gguf_writer_add_all) gives the same
 * bytes. */
#include <stdlib.h>
#include <string.h>

#include "gguf_internal.h"

typedef struct wkv {
  char *key;
  uint32_t type;
  uint8_t *payload; /* the value's encoding after its type */
  size_t len;
} wkv;

typedef struct wtensor {
  char *name;
  ry_ggml_type type;
  int n_dims;
  int64_t dims[RY_GGUF_MAX_DIMS];
  const void *data;
  size_t size;
} wtensor;

struct ry_gguf_writer {
  wkv *kv;
  size_t n_kv, cap_kv;
  wtensor *t;
  size_t n_t, cap_t;
};

ry_status ry_gguf_writer_new(ry_gguf_writer **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_writer_new: NULL argument");
  *out = ry__calloc(1, sizeof **out);
  return *out ? NULL : ry__oom();
}

void ry_gguf_writer_free(ry_gguf_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_kv; i++) {
    ry__strfree(w->kv[i].key);
    if (w->kv[i].payload) ry__free(w->kv[i].payload, w->kv[i].len);
  }
  if (w->kv) ry__free(w->kv, w->cap_kv * sizeof *w->kv);
  for (size_t i = 0; i < w->n_t; i++) ry__strfree(w->t[i].name);
  if (w->t) ry__free(w->t, w->cap_t * sizeof *w->t);
  ry__free(w, sizeof *w);
}

/* ---- a byte buffer ------------------------------------------------------------ */

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
  bool oom;
} buf;

static void put(buf *b, const void *data, size_t n) {
  if (b->oom || n == 0) return;
  if (n > b->cap - b->n) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n < n) {
      if (cap > SIZE_MAX / 2) {
        b->oom = true;
        return;
      }
      cap *= 2;
    }
    uint8_t *p = ry__realloc(b->p, b->cap, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

static void put_le(buf *b, uint64_t v, int n) {
  uint8_t t[8];
  for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
  put(b, t, (size_t)n);
}

static void put_str(buf *b, const char *s, size_t len) {
  put_le(b, len, 8);
  put(b, s, len);
}

static void buf_free(buf *b) {
  if (b->p) ry__free(b->p, b->cap);
  memset(b, 0, sizeof *b);
}

/* ---- adding metadata ------------------------------------------------------------ */

static ry_status check_key(const ry_gguf_writer *w, const char *key) {
  if (!w || !key) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_writer: NULL argument");
  if (!*key) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: empty key");
  for (size_t i = 0; i < w->n_kv; i++)
    if (strcmp(w->kv[i].key, key) == 0) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: duplicate key '%s'", key);
  return NULL;
}

/* Take over b's bytes as the payload of a new key. */
static ry_status add_kv(ry_gguf_writer *w, const char *key, uint32_t type, buf *b) {
  ry_status s = check_key(w, key);
  if (s || b->oom) {
    buf_free(b);
    return s ? s : ry__oom();
  }
  if (w->n_kv == w->cap_kv) {
    size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
    wkv *kv = ry__realloc(w->kv, w->cap_kv * sizeof *kv, cap * sizeof *kv);
    if (!kv) {
      buf_free(b);
      return ry__oom();
    }
    w->kv = kv;
    w->cap_kv = cap;
  }
  char *k = ry__strdup(key);
  if (!k) {
    buf_free(b);
    return ry__oom();
  }
  /* shrink the payload to its length (the free needs the exact size) */
  uint8_t *p = NULL;
  if (b->n) {
    p = ry__realloc(b->p, b->cap, b->n);
    if (!p) {
      ry__strfree(k);
      buf_free(b);
      return ry__oom();
    }
  } else {
    buf_free(b);
  }
  w->kv[w->n_kv++] = (wkv){k, type, p, p ? b->n : 0};
  return NULL;
}

static bool int_fits(ry_gguf_type t, int64_t v) {
  switch (t) {
  case RY_GGUF_U8: return v >= 0 && v <= UINT8_MAX;
  case RY_GGUF_I8: return v >= INT8_MIN && v <= INT8_MAX;
  case RY_GGUF_U16: return v >= 0 && v <= UINT16_MAX;
  case RY_GGUF_I16: return v >= INT16_MIN && v <= INT16_MAX;
  case RY_GGUF_U32: return v >= 0 && v <= (int64_t)UINT32_MAX;
  case RY_GGUF_I32: return v >= INT32_MIN && v <= INT32_MAX;
  case RY_GGUF_BOOL: return v == 0 || v == 1;
  case RY_GGUF_U64: return v >= 0;
  case RY_GGUF_I64: return true;
  default: return false;
  }
}

ry_status ry_gguf_writer_add_int(ry_gguf_writer *w, const char *key, ry_gguf_type type, int64_t v) {
  if ((unsigned)type >= RY_GGUF_TYPE_COUNT || type == RY_GGUF_F32 || type == RY_GGUF_F64 || !ry__gguf_scalar_size(type))
    return ry__err(RY_ERR_DTYPE, "gguf writer: key '%s': %s is not an integer type", key ? key : "", ry_gguf_type_name(type));
  if (!int_fits(type, v))
    return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': %lld does not fit in %s", key ? key : "", (long long)v,
                   ry_gguf_type_name(type));
  buf b = {0};
  put_le(&b, (uint64_t)v, ry__gguf_scalar_size(type));
  return add_kv(w, key, type, &b);
}

static void put_float(buf *b, ry_gguf_type type, double v) {
  if (type == RY_GGUF_F32) {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(b, u, 4);
  } else {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_le(b, u, 8);
  }
}

ry_status ry_gguf_writer_add_float(ry_gguf_writer *w, const char *key, ry_gguf_type type, double v) {
  if (type != RY_GGUF_F32 && type != RY_GGUF_F64)
    return ry__err(RY_ERR_DTYPE, "gguf writer: key '%s': %s is not f32 or f64", key ? key : "", ry_gguf_type_name(type));
  buf b = {0};
  put_float(&b, type, v);
  return add_kv(w, key, type, &b);
}

ry_status ry_gguf_writer_add_str(ry_gguf_writer *w, const char *key, const char *s, size_t len) {
  if (!s && len) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': NULL string", key ? key : "");
  buf b = {0};
  put_str(&b, s, len);
  return add_kv(w, key, RY_GGUF_STRING, &b);
}

ry_status ry_gguf_writer_add_arr(ry_gguf_writer *w, const char *key, ry_gguf_type elem, uint64_t n, const void *data) {
  int es = ry__gguf_scalar_size(elem);
  if (!es)
    return ry__err(RY_ERR_DTYPE, "gguf writer: key '%s': ry_gguf_writer_add_arr takes numbers or bools, not %s",
                   key ? key : "", ry_gguf_type_name(elem));
  if (n && !data) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': NULL data", key ? key : "");
  if (n > SIZE_MAX / (size_t)es) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': array too large", key ? key : "");
  if (elem == RY_GGUF_BOOL)
    for (uint64_t i = 0; i < n; i++)
      if (((const uint8_t *)data)[i] > 1)
        return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': bool element %llu is not 0 or 1", key ? key : "",
                       (unsigned long long)i);
  buf b = {0};
  put_le(&b, (uint64_t)elem, 4);
  put_le(&b, n, 8);
  put(&b, data, (size_t)n * (size_t)es); /* the host is little-endian */
  return add_kv(w, key, RY_GGUF_ARRAY, &b);
}

ry_status ry_gguf_writer_add_str_arr(ry_gguf_writer *w, const char *key, uint64_t n, const char *const *strs,
                                     const size_t *lens) {
  if (n && !strs) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': NULL strings", key ? key : "");
  buf b = {0};
  put_le(&b, RY_GGUF_STRING, 4);
  put_le(&b, n, 8);
  for (uint64_t i = 0; i < n; i++) {
    if (!strs[i] && (!lens || lens[i])) {
      buf_free(&b);
      return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': string %llu is NULL", key ? key : "",
                     (unsigned long long)i);
    }
    put_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
  }
  return add_kv(w, key, RY_GGUF_ARRAY, &b);
}

ry_status ry_gguf_writer_add_value(ry_gguf_writer *w, const char *key, const ry_gguf_value *v) {
  if (!v) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': NULL value", key ? key : "");
  buf b = {0};
  if (v->node_) { /* read from a file: its encoding, verbatim */
    const ry_gguf_node *n = v->node_;
    put(&b, n->base + n->raw_off, n->raw_len);
    return add_kv(w, key, v->type, &b);
  }
  int es = ry__gguf_scalar_size(v->type);
  if (es) {
    put(&b, v->data, (size_t)es);
    return add_kv(w, key, v->type, &b);
  }
  if (v->type == RY_GGUF_STRING) return ry_gguf_writer_add_str(w, key, v->data, (size_t)v->n);
  if (v->type == RY_GGUF_ARRAY && ry__gguf_scalar_size(v->elem)) return ry_gguf_writer_add_arr(w, key, v->elem, v->n, v->data);
  return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: key '%s': a %s value not read from a file", key ? key : "",
                 ry_gguf_type_name(v->type));
}

/* ---- tensors ------------------------------------------------------------------------- */

ry_status ry_gguf_writer_add_tensor(ry_gguf_writer *w, const char *name, ry_ggml_type type, int n_dims,
                                    const int64_t *dims, const void *data, size_t size) {
  if (!w || !name || (n_dims && !dims)) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_writer_add_tensor: NULL argument");
  if (!*name) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: empty tensor name");
  if (!ry_ggml_type_name((int)type)) return ry__err(RY_ERR_UNSUPPORTED, "gguf writer: tensor '%s': unknown ggml type %d", name, (int)type);
  if (n_dims < 0 || n_dims > RY_GGUF_MAX_DIMS)
    return ry__err(RY_ERR_SHAPE, "gguf writer: tensor '%s': %d dims, 0..%d allowed", name, n_dims, RY_GGUF_MAX_DIMS);
  for (size_t i = 0; i < w->n_t; i++)
    if (strcmp(w->t[i].name, name) == 0) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: duplicate tensor name '%s'", name);
  wtensor t = {NULL, type, n_dims, {1, 1, 1, 1}, data, size};
  int64_t rest = 1;
  for (int i = 0; i < n_dims; i++) {
    if (dims[i] < 0) return ry__err(RY_ERR_SHAPE, "gguf writer: tensor '%s': dim %d is negative", name, i);
    t.dims[i] = dims[i];
    if (i > 0) {
      if (dims[i] && rest > INT64_MAX / dims[i]) return ry__err(RY_ERR_SHAPE, "gguf writer: tensor '%s': size overflows", name);
      rest *= dims[i];
    }
  }
  size_t row;
  ry_status s = ry_ggml_row_size((int)type, t.dims[0], &row);
  if (s) return ry__err_prefix(s, "gguf writer: tensor '%s'", name);
  if (rest && row > SIZE_MAX / (uint64_t)rest) return ry__err(RY_ERR_SHAPE, "gguf writer: tensor '%s': size overflows", name);
  if (row * (size_t)rest != size)
    return ry__err(RY_ERR_SHAPE, "gguf writer: tensor '%s': %s data of %zu bytes, its dims need %zu", name,
                   ry_ggml_type_name((int)type), size, row * (size_t)rest);
  if (size && !data) return ry__err(RY_ERR_INVALID_ARGUMENT, "gguf writer: tensor '%s': NULL data", name);
  if (w->n_t == w->cap_t) {
    size_t cap = w->cap_t ? 2 * w->cap_t : 16;
    wtensor *nt = ry__realloc(w->t, w->cap_t * sizeof *nt, cap * sizeof *nt);
    if (!nt) return ry__oom();
    w->t = nt;
    w->cap_t = cap;
  }
  if (!(t.name = ry__strdup(name))) return ry__oom();
  w->t[w->n_t++] = t;
  return NULL;
}

ry_status ry_gguf_writer_add_all(ry_gguf_writer *w, const ry_gguf *g) {
  if (!w || !g) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_writer_add_all: NULL argument");
  for (int64_t i = 0; i < g->n_kv; i++) {
    ry_status s = ry_gguf_writer_add_value(w, g->keys[i], &g->kv[i].v);
    if (s) return s;
  }
  for (int64_t i = 0; i < g->n_t; i++) {
    const ry_gguf_tensor *t = &g->tensors[i];
    ry_status s = ry_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->dims, t->data, t->size);
    if (s) return s;
  }
  return NULL;
}

/* ---- writing ------------------------------------------------------------------------- */

static size_t pad_to(size_t n, size_t a) { return (a - n % a) % a; }

ry_status ry_gguf_writer_write(const ry_gguf_writer *w, const char *path) {
  if (!w || !path) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_gguf_writer_write: NULL argument");
  size_t align = 32;
  for (size_t i = 0; i < w->n_kv; i++)
    if (strcmp(w->kv[i].key, "general.alignment") == 0) {
      uint64_t a = 0;
      if (w->kv[i].type == RY_GGUF_U32)
        for (int k = 0; k < 4; k++) a |= (uint64_t)w->kv[i].payload[k] << (8 * k);
      if (w->kv[i].type != RY_GGUF_U32 || !a || (a & (a - 1)))
        return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: general.alignment must be a u32 power of two", path);
      align = (size_t)a;
    }
  buf b = {0};
  put_le(&b, 0x46554747u, 4);
  put_le(&b, 3, 4);
  put_le(&b, w->n_t, 8);
  put_le(&b, w->n_kv, 8);
  for (size_t i = 0; i < w->n_kv; i++) {
    put_str(&b, w->kv[i].key, strlen(w->kv[i].key));
    put_le(&b, w->kv[i].type, 4);
    put(&b, w->kv[i].payload, w->kv[i].len);
  }
  size_t off = 0;
  for (size_t i = 0; i < w->n_t; i++) {
    const wtensor *t = &w->t[i];
    put_str(&b, t->name, strlen(t->name));
    put_le(&b, (uint64_t)t->n_dims, 4);
    for (int d = 0; d < t->n_dims; d++) put_le(&b, (uint64_t)t->dims[d], 8);
    put_le(&b, (uint64_t)t->type, 4);
    put_le(&b, off, 8);
    size_t p = pad_to(t->size, align);
    if (t->size > SIZE_MAX - p || off > SIZE_MAX - t->size - p) {
      buf_free(&b);
      return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: tensor data too large", path);
    }
    off += t->size + p;
  }
  static const uint8_t zeros[256];
  size_t hp = pad_to(b.n, align);
  while (hp) {
    size_t k = hp < sizeof zeros ? hp : sizeof zeros;
    put(&b, zeros, k);
    hp -= k;
  }
  if (b.oom) {
    buf_free(&b);
    return ry__oom();
  }
  ry_atomic_file f;
  ry_status s = ry__atomic_open(&f, path);
  if (!s) s = ry__atomic_write(&f, b.p, b.n);
  buf_free(&b);
  for (size_t i = 0; i < w->n_t && !s; i++) {
    if (w->t[i].size) s = ry__atomic_write(&f, w->t[i].data, w->t[i].size);
    for (size_t p = pad_to(w->t[i].size, align); p && !s;) {
      size_t k = p < sizeof zeros ? p : sizeof zeros;
      s = ry__atomic_write(&f, zeros, k);
      p -= k;
    }
  }
  if (!s) return ry__atomic_commit(&f);
  if (f.fp) ry__atomic_abort(&f);
  return s;
}
