/* safetensors files for parameter trees (ryft/io.h).
 *
 * Layout (huggingface/safetensors, "format"): an 8-byte little-endian
 * header length N, N bytes of JSON (an object: tensor name -> {"dtype",
 * "shape", "data_offsets": [begin, end]} relative to the data section, and
 * an optional "__metadata__" string -> string object), then the data. The
 * writer pads the header with spaces to a multiple of 8 as the reference
 * implementation does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_internal.h"
#include "ryft/graph.h"
#include "ryft/io.h"
#include "ryft/params.h"

#define MAX_HEADER ((uint64_t)100 << 20) /* 100 MB, as the reference reader */

static const struct {
  ry_dtype t;
  const char *name;
} k_dtypes[] = {{RY_BOOL, "BOOL"}, {RY_I8, "I8"},   {RY_I16, "I16"},   {RY_I32, "I32"}, {RY_I64, "I64"}, {RY_U8, "U8"},
                {RY_U16, "U16"},   {RY_U32, "U32"}, {RY_U64, "U64"},   {RY_F16, "F16"}, {RY_BF16, "BF16"}, {RY_F32, "F32"}, {RY_F64, "F64"}};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

static const char *st_name(ry_dtype t) {
  for (size_t i = 0; i < N_DTYPES; i++)
    if (k_dtypes[i].t == t) return k_dtypes[i].name;
  return NULL;
}

/* ---- a small JSON reader for the header ------------------------------------------ */

typedef struct jp {
  const char *p, *start, *end;
  const char *src;
  ry_status err;
} jp;

static bool jfail(jp *j, const char *what) {
  if (!j->err)
    j->err = ry__err(RY_ERR_PARSE, "%s: bad safetensors header: %s at header byte %ld", j->src, what, (long)(j->p - j->start));
  return false;
}

static void jws(jp *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool jlit(jp *j, char c) {
  jws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return true;
  }
  return false;
}

static void put_utf8(char *buf, size_t *n, size_t cap, uint32_t cp) {
  unsigned char tmp[4];
  size_t k = 0;
  if (cp < 0x80) tmp[k++] = (unsigned char)cp;
  else if (cp < 0x800) {
    tmp[k++] = (unsigned char)(0xC0 | cp >> 6);
    tmp[k++] = (unsigned char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    tmp[k++] = (unsigned char)(0xE0 | cp >> 12);
    tmp[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    tmp[k++] = (unsigned char)(0x80 | (cp & 0x3F));
  } else {
    tmp[k++] = (unsigned char)(0xF0 | cp >> 18);
    tmp[k++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    tmp[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    tmp[k++] = (unsigned char)(0x80 | (cp & 0x3F));
  }
  for (size_t i = 0; i < k && *n + 1 < cap; i++) buf[(*n)++] = (char)tmp[i];
}

static bool jhex4(jp *j, uint32_t *v) {
  if (j->end - j->p < 4) return jfail(j, "truncated \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *j->p++;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return jfail(j, "bad \\u escape");
    *v = *v << 4 | (uint32_t)d;
  }
  return true;
}

/* A string into buf (cap bytes incl. NUL); longer strings are an error. */
static bool jstr(jp *j, char *buf, size_t cap) {
  jws(j);
  if (j->p >= j->end || *j->p != '"') return jfail(j, "expected a string");
  j->p++;
  size_t n = 0;
  while (j->p < j->end && *j->p != '"') {
    unsigned char c = (unsigned char)*j->p++;
    if (c < 0x20) return jfail(j, "control character in a string");
    if (c == '\\') {
      if (j->p >= j->end) break;
      char e = *j->p++;
      uint32_t cp;
      switch (e) {
      case '"': case '\\': case '/': c = (unsigned char)e; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u':
        if (!jhex4(j, &cp)) return false;
        if (cp >= 0xD800 && cp < 0xDC00) {
          uint32_t lo;
          if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') return jfail(j, "unpaired surrogate");
          j->p += 2;
          if (!jhex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF) return jfail(j, "bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) return jfail(j, "NUL in a string");
        put_utf8(buf, &n, cap, cp);
        if (n + 1 >= cap) return jfail(j, "string too long");
        continue;
      default: return jfail(j, "bad escape in a string");
      }
    }
    if (n + 1 >= cap) return jfail(j, "string too long");
    buf[n++] = (char)c;
  }
  if (j->p >= j->end) return jfail(j, "unterminated string");
  j->p++;
  buf[n] = 0;
  return true;
}

static bool juint(jp *j, uint64_t *v) {
  jws(j);
  if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jfail(j, "expected a non-negative integer");
  uint64_t x = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    if (x > (UINT64_MAX - 9) / 10) return jfail(j, "integer too large");
    x = x * 10 + (uint64_t)(*j->p++ - '0');
  }
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) return jfail(j, "expected an integer");
  *v = x;
  return true;
}

/* Skip any JSON value (for unknown keys). */
static bool jskip(jp *j, int depth) {
  jws(j);
  if (depth > 32) return jfail(j, "nesting too deep");
  if (j->p >= j->end) return jfail(j, "unexpected end");
  char c = *j->p;
  if (c == '"') {
    char tmp[4096];
    return jstr(j, tmp, sizeof tmp);
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    j->p++;
    if (jlit(j, close)) return true;
    do {
      if (c == '{') {
        char tmp[4096];
        if (!jstr(j, tmp, sizeof tmp) || !jlit(j, ':')) return jfail(j, "expected a key");
      }
      if (!jskip(j, depth + 1)) return false;
    } while (jlit(j, ','));
    return jlit(j, close) ? true : jfail(j, "expected ',' or a closing bracket");
  }
  const char *s = j->p;
  while (j->p < j->end && (strchr("+-.eE0123456789", *j->p) || (*j->p >= 'a' && *j->p <= 'z'))) j->p++;
  return j->p > s ? true : jfail(j, "unexpected character");
}

/* ---- reading ------------------------------------------------------------------------- */

typedef struct st_entry {
  char name[RY_PARAMS_MAX_PATH];
  ry_type type;
  uint64_t begin, end;
} st_entry;

typedef struct st_file {
  st_entry *e;
  int n, cap;
  char **meta; /* key, value pairs (ry__strdup) */
  int n_meta, meta_cap;
  const unsigned char *data; /* the data section */
  uint64_t data_size;
} st_file;

static void st_free(st_file *f) {
  ry__free(f->e, (size_t)f->cap * sizeof *f->e);
  for (int i = 0; i < 2 * f->n_meta; i++) ry__strfree(f->meta[i]);
  ry__free(f->meta, (size_t)f->meta_cap * 2 * sizeof *f->meta);
  memset(f, 0, sizeof *f);
}

static bool parse_tensor(jp *j, st_entry *e) {
  bool have_dtype = false, have_shape = false, have_off = false;
  if (!jlit(j, '{')) return jfail(j, "expected an object for a tensor");
  if (!jlit(j, '}')) do {
      char key[64];
      if (!jstr(j, key, sizeof key) || !jlit(j, ':')) return jfail(j, "expected a key");
      if (!strcmp(key, "dtype")) {
        char dt[32];
        if (!jstr(j, dt, sizeof dt)) return false;
        bool ok = false;
        for (size_t i = 0; i < N_DTYPES; i++)
          if (!strcmp(dt, k_dtypes[i].name)) {
            e->type.dtype = k_dtypes[i].t;
            ok = true;
          }
        if (!ok) {
          if (!j->err)
            j->err = ry__err(RY_ERR_DTYPE, "%s: tensor \"%s\" has dtype %s, which ryft does not have (BOOL I8 I16 I32 I64 U8 U32 F16 BF16 F32 F64)",
                             j->src, e->name, dt);
          return false;
        }
        have_dtype = true;
      } else if (!strcmp(key, "shape")) {
        if (!jlit(j, '[')) return jfail(j, "expected a shape list");
        e->type.shape.rank = 0;
        if (!jlit(j, ']')) {
          do {
            uint64_t d;
            if (!juint(j, &d)) return false;
            if (e->type.shape.rank == RY_MAX_RANK) return jfail(j, "shape has more than 8 dims");
            if (d > ((uint64_t)1 << 40)) return jfail(j, "dimension too large");
            e->type.shape.dims[e->type.shape.rank++] = (int64_t)d;
          } while (jlit(j, ','));
          if (!jlit(j, ']')) return jfail(j, "expected ',' or ']' in a shape");
        }
        /* the element count must fit (every later size computation relies
           on it; found by fuzz_safetensors) */
        bool empty = false;
        for (int i = 0; i < e->type.shape.rank; i++) empty |= e->type.shape.dims[i] == 0;
        uint64_t count = 1;
        for (int i = 0; !empty && i < e->type.shape.rank; i++) {
          uint64_t d = (uint64_t)e->type.shape.dims[i];
          if (count > ((uint64_t)1 << 48) / d) return jfail(j, "the shape has more than 2^48 elements");
          count *= d;
        }
        have_shape = true;
      } else if (!strcmp(key, "data_offsets")) {
        if (!jlit(j, '[') || !juint(j, &e->begin) || !jlit(j, ',') || !juint(j, &e->end) || !jlit(j, ']'))
          return jfail(j, "data_offsets must be [begin, end]");
        have_off = true;
      } else if (!jskip(j, 1)) {
        return false;
      }
    } while (jlit(j, ','));
  else goto done;
  if (!jlit(j, '}')) return jfail(j, "expected ',' or '}' in a tensor");
done:
  if (!have_dtype || !have_shape || !have_off) {
    if (!j->err)
      j->err = ry__err(RY_ERR_PARSE, "%s: tensor \"%s\" lacks %s", j->src, e->name,
                       !have_dtype ? "\"dtype\"" : !have_shape ? "\"shape\"" : "\"data_offsets\"");
    return false;
  }
  return true;
}

static bool add_meta(jp *j, st_file *f, const char *k, const char *v) {
  if (f->n_meta == f->meta_cap) {
    int cap = f->meta_cap ? f->meta_cap * 2 : 8;
    char **m = ry__realloc(f->meta, (size_t)f->meta_cap * 2 * sizeof *m, (size_t)cap * 2 * sizeof *m);
    if (!m) {
      if (!j->err) j->err = ry__oom();
      return false;
    }
    f->meta = m;
    f->meta_cap = cap;
  }
  f->meta[2 * f->n_meta] = ry__strdup(k);
  f->meta[2 * f->n_meta + 1] = ry__strdup(v);
  f->n_meta++;
  if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1]) {
    if (!j->err) j->err = ry__oom();
    return false;
  }
  return true;
}

static ry_status st_parse(const unsigned char *d, size_t size, const char *src, st_file *f) {
  memset(f, 0, sizeof *f);
  if (size < 8) return ry__err(RY_ERR_PARSE, "%s: truncated safetensors file: %zu bytes, the header length needs 8", src, size);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | d[i];
  if (hl > MAX_HEADER) return ry__err(RY_ERR_PARSE, "%s: safetensors header length %llu is too large", src, (unsigned long long)hl);
  if (hl > size - 8)
    return ry__err(RY_ERR_PARSE, "%s: truncated safetensors header: it claims %llu bytes, the file has %zu after the length", src,
                   (unsigned long long)hl, size - 8);
  jp j = {(const char *)d + 8, (const char *)d + 8, (const char *)d + 8 + hl, src, NULL};
  f->data = d + 8 + hl;
  f->data_size = size - 8 - hl;
  if (!jlit(&j, '{')) {
    jfail(&j, "the header is not a JSON object");
    return j.err;
  }
  if (!jlit(&j, '}')) {
    do {
      char name[RY_PARAMS_MAX_PATH];
      if (!jstr(&j, name, sizeof name) || !jlit(&j, ':')) {
        jfail(&j, "expected a tensor name");
        break;
      }
      if (!strcmp(name, "__metadata__")) {
        if (!jlit(&j, '{')) {
          jfail(&j, "__metadata__ must be an object");
          break;
        }
        if (jlit(&j, '}')) continue;
        do {
          char k[1024], v[4096];
          if (!jstr(&j, k, sizeof k) || !jlit(&j, ':') || !jstr(&j, v, sizeof v)) {
            jfail(&j, "__metadata__ values must be strings");
            break;
          }
          if (!add_meta(&j, f, k, v)) break;
        } while (jlit(&j, ','));
        if (j.err) break;
        if (!jlit(&j, '}')) {
          jfail(&j, "expected ',' or '}' in __metadata__");
          break;
        }
        continue;
      }
      for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) {
          j.err = ry__err(RY_ERR_PARSE, "%s: tensor \"%s\" appears twice", src, name);
          break;
        }
      if (j.err) break;
      if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 16;
        st_entry *ne = ry__realloc(f->e, (size_t)f->cap * sizeof *ne, (size_t)cap * sizeof *ne);
        if (!ne) {
          j.err = ry__oom();
          break;
        }
        f->e = ne;
        f->cap = cap;
      }
      st_entry *e = &f->e[f->n];
      memset(e, 0, sizeof *e);
      snprintf(e->name, sizeof e->name, "%s", name);
      if (!parse_tensor(&j, e)) break;
      f->n++;
      uint64_t need = (uint64_t)ry_shape_numel(e->type.shape) * ry_dtype_size(e->type.dtype);
      char tb[96];
      ry_type_str(e->type, tb, sizeof tb);
      if (e->begin > e->end || e->end > f->data_size) {
        j.err = ry__err(RY_ERR_PARSE, "%s: tensor \"%s\": data_offsets [%llu, %llu] out of range (the data section has %llu bytes)",
                        src, name, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)f->data_size);
        break;
      }
      if (e->end - e->begin != need) {
        j.err = ry__err(RY_ERR_PARSE, "%s: tensor \"%s\": %s needs %llu bytes but data_offsets [%llu, %llu] span %llu", src, name,
                        tb, (unsigned long long)need, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)(e->end - e->begin));
        break;
      }
    } while (jlit(&j, ','));
    if (!j.err && !jlit(&j, '}')) jfail(&j, "expected ',' or '}' after a tensor");
  }
  if (!j.err) {
    jws(&j);
    if (j.p != j.end) jfail(&j, "trailing characters after the header object");
  }
  if (j.err) {
    st_free(f);
    return j.err;
  }
  return NULL;
}

static ry_status entry_array(const st_file *f, const st_entry *e, ry_array **out) {
  return ry_array_from_host(e->type.dtype, e->type.shape, f->data + e->begin, out);
}

/* A tensor name that is no parameter path (an empty segment, too long) is
 * bad file contents, not a bad argument of the caller. */
static ry_status as_parse_error(ry_status s) {
  if (!s || ry_status_code(s) != RY_ERR_INVALID_ARGUMENT) return s;
  ry_status e = ry__err(RY_ERR_PARSE, "%s", ry_status_message(s));
  ry_status_free(s);
  return e;
}

ry_status ry_safetensors_parse(const void *data, size_t size, const char *source, ry_params **out) {
  *out = NULL;
  if (!source) source = "<safetensors>";
  st_file f;
  ry_status s = st_parse(data, size, source, &f);
  if (s) return s;
  ry_params *p = ry_params_new();
  if (!p) s = ry__oom();
  for (int i = 0; i < f.n && !s; i++) {
    ry_array *a = NULL;
    s = entry_array(&f, &f.e[i], &a);
    if (!s) s = as_parse_error(ry_params_set_owned(p, f.e[i].name, a));
    if (s) s = ry__err_prefix(s, "%s: tensor \"%s\"", source, f.e[i].name);
  }
  st_free(&f);
  if (s) {
    ry_params_free(p);
    return s;
  }
  *out = p;
  return NULL;
}

ry_status ry_safetensors_read(const char *path, ry_params **out) {
  *out = NULL;
  unsigned char *buf;
  size_t n;
  ry_status s = ry__read_file(path, &buf, &n);
  if (s) return s;
  s = ry_safetensors_parse(buf, n, path, out);
  ry__free(buf, n + 1);
  return s;
}

ry_status ry_safetensors_load(const char *path, const ry_params *like, ry_params **out) {
  *out = NULL;
  unsigned char *buf;
  size_t n;
  ry_status s = ry__read_file(path, &buf, &n);
  if (s) return s;
  st_file f;
  s = st_parse(buf, n, path, &f);
  if (s) {
    ry__free(buf, n + 1);
    return s;
  }
  ry_params *p = ry_params_new();
  if (!p) s = ry__oom();
  for (int i = 0; i < ry_params_count(like) && !s; i++) {
    const char *name = ry_params_path(like, i);
    ry_type want = ry_params_type(like, i);
    const st_entry *e = NULL;
    for (int k = 0; k < f.n; k++)
      if (!strcmp(f.e[k].name, name)) e = &f.e[k];
    char wb[96], hb[96];
    ry_type_str(want, wb, sizeof wb);
    if (!e) {
      s = ry__err(RY_ERR_NOT_FOUND, "%s: checkpoint has no tensor \"%s\" (expected %s)", path, name, wb);
      break;
    }
    if (!ry_type_equal(e->type, want)) {
      ry_type_str(e->type, hb, sizeof hb);
      s = ry__err(e->type.dtype != want.dtype ? RY_ERR_DTYPE : RY_ERR_SHAPE, "%s: tensor \"%s\": file has %s, expected %s", path,
                  name, hb, wb);
      break;
    }
    ry_array *a = NULL;
    s = entry_array(&f, e, &a);
    if (!s) s = as_parse_error(ry_params_set_owned(p, name, a));
  }
  st_free(&f);
  ry__free(buf, n + 1);
  if (s) {
    ry_params_free(p);
    return s;
  }
  *out = p;
  return NULL;
}

ry_status ry_safetensors_metadata(const char *path, const char *key, char **value) {
  *value = NULL;
  unsigned char *buf;
  size_t n;
  ry_status s = ry__read_file(path, &buf, &n);
  if (s) return s;
  st_file f;
  s = st_parse(buf, n, path, &f);
  if (!s) {
    for (int i = 0; i < f.n_meta; i++)
      if (key && !strcmp(f.meta[2 * i], key)) {
        *value = ry__strdup(f.meta[2 * i + 1]);
        if (!*value) s = ry__oom();
        break;
      }
    st_free(&f);
  }
  ry__free(buf, n + 1);
  return s;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct sb {
  char *p;
  size_t n, cap;
  bool oom;
} sb;

static void sb_put(sb *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->n + n + 1 > cap) cap *= 2;
    char *np = ry__realloc(b->p, b->cap, cap);
    if (!np) {
      b->oom = true;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void sb_str(sb *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json(sb *b, const char *s) {
  sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      sb_put(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      sb_put(b, esc, 6);
    } else {
      sb_put(b, (const char *)&c, 1);
    }
  }
  sb_put(b, "\"", 1);
}

ry_status ry_safetensors_write(const char *path, const ry_params *p, int n_meta, const ry_meta *meta) {
  if (!path || !p) return ry__err(RY_ERR_INVALID_ARGUMENT, "safetensors write: NULL %s", path ? "tree" : "path");
  if (n_meta < 0 || (n_meta > 0 && !meta)) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: bad metadata count %d", path, n_meta);
  for (int i = 0; i < ry_params_count(p); i++) { /* device arrays: their bytes first */
    ry_status hs = ry__array_sync(ry_params_at(p, i));
    if (hs) return ry__err_prefix(hs, "%s: tensor '%s'", path, ry_params_path(p, i));
  }
  sb h = {0};
  sb_str(&h, "{");
  bool first = true;
  if (n_meta > 0) {
    sb_str(&h, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (!meta[i].key || !meta[i].value) {
        ry__free(h.p, h.cap);
        return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: metadata entry %d has a NULL key or value", path, i);
      }
      if (i) sb_str(&h, ",");
      sb_json(&h, meta[i].key);
      sb_str(&h, ":");
      sb_json(&h, meta[i].value);
    }
    sb_str(&h, "}");
    first = false;
  }
  uint64_t off = 0;
  for (int i = 0; i < ry_params_count(p); i++) {
    ry_array *a = ry_params_at(p, i);
    ry_type t = ry_array_type(a);
    char num[64];
    if (!first) sb_str(&h, ",");
    first = false;
    sb_json(&h, ry_params_path(p, i));
    sb_str(&h, ":{\"dtype\":\"");
    sb_str(&h, st_name(t.dtype));
    sb_str(&h, "\",\"shape\":[");
    for (int k = 0; k < t.shape.rank; k++) {
      snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)t.shape.dims[k]);
      sb_str(&h, num);
    }
    uint64_t nb = ry_array_nbytes(a);
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + nb));
    sb_str(&h, num);
    off += nb;
  }
  sb_str(&h, "}");
  while (!h.oom && h.n % 8) sb_str(&h, " ");
  if (h.oom) {
    ry__free(h.p, h.cap);
    return ry__oom();
  }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
  ry_atomic_file f;
  ry_status s = ry__atomic_open(&f, path);
  if (!s) s = ry__atomic_write(&f, len8, 8);
  if (!s) s = ry__atomic_write(&f, h.p, h.n);
  for (int i = 0; i < ry_params_count(p) && !s; i++) {
    ry_array *a = ry_params_at(p, i);
    s = ry__atomic_write(&f, ry_array_data(a), ry_array_nbytes(a));
  }
  if (!s) s = ry__atomic_commit(&f);
  ry__free(h.p, h.cap);
  return s;
}
