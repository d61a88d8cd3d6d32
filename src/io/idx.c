/* IDX files (the MNIST format), raw or gzip-compressed, and gzip itself
 * (through zlib when the build has it).
 *
 * Layout: 0x00 0x00, type byte, rank byte, rank big-endian u32 dims, then
 * the elements row-major and big-endian. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "io_internal.h"
#include "ryft/graph.h"
#include "ryft/io.h"

#ifdef RYFT_HAVE_ZLIB
#include <zlib.h>
#endif

/* ---- gzip ------------------------------------------------------------------ */

/* A buffer that ry_free can release: the size lives in a header word. */
static void *hbuf_alloc(size_t n) {
  size_t *h = ry__malloc(sizeof(size_t) + n + 1);
  if (!h) return NULL;
  h[0] = sizeof(size_t) + n + 1;
  return h + 1;
}
static void *hbuf_grow(void *p, size_t n) {
  size_t *h = p ? (size_t *)p - 1 : NULL;
  size_t old = h ? h[0] : 0;
  size_t *nh = ry__realloc(h, old, sizeof(size_t) + n + 1);
  if (!nh) return NULL;
  nh[0] = sizeof(size_t) + n + 1;
  return nh + 1;
}

static int is_gzip(const unsigned char *d, size_t n) { return n >= 2 && d[0] == 0x1f && d[1] == 0x8b; }

ry_status ry_gunzip(const void *data, size_t size, const char *source, void **out, size_t *out_size) {
  *out = NULL;
  *out_size = 0;
  if (!source) source = "<gzip>";
#ifndef RYFT_HAVE_ZLIB
  (void)data;
  (void)size;
  return ry__err(RY_ERR_UNSUPPORTED, "%s: gzip support is not built in (zlib was not found at build time)", source);
#else
  if (!is_gzip(data, size)) return ry__err(RY_ERR_PARSE, "%s: not gzip data (bad magic)", source);
  size_t cap = size * 4 + 1024, len = 0;
  unsigned char *buf = hbuf_alloc(cap);
  if (!buf) return ry__oom();
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
    ry_free(buf);
    return ry__err(RY_ERR_INTERNAL, "%s: inflateInit2 failed", source);
  }
  const unsigned char *in = data;
  size_t consumed = 0;
  ry_status err = NULL;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap * 2;
      unsigned char *nb = hbuf_grow(buf, ncap);
      if (!nb) {
        err = ry__oom();
        break;
      }
      buf = nb;
      cap = ncap;
    }
    size_t in_left = size - consumed;
    z.next_in = (Bytef *)(in + consumed);
    z.avail_in = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
    size_t out_room = cap - len;
    z.next_out = buf + len;
    z.avail_out = out_room > 0x40000000u ? 0x40000000u : (uInt)out_room;
    uInt ai = z.avail_in, ao = z.avail_out;
    int r = inflate(&z, Z_NO_FLUSH);
    consumed += ai - z.avail_in;
    len += ao - z.avail_out;
    if (r == Z_STREAM_END) {
      /* another member may follow (as gzip concatenation allows) */
      if (consumed < size && is_gzip(in + consumed, size - consumed)) {
        inflateReset(&z);
        continue;
      }
      if (consumed < size) err = ry__err(RY_ERR_PARSE, "%s: %zu bytes of trailing garbage after the gzip data", source, size - consumed);
      break;
    }
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR && consumed == size) {
      err = ry__err(RY_ERR_PARSE, "%s: truncated gzip data (stream ends after %zu compressed bytes)", source, size);
      break;
    }
    if (r == Z_BUF_ERROR) continue; /* out of room: grow */
    err = ry__err(RY_ERR_PARSE, "%s: corrupt gzip data: %s", source, z.msg ? z.msg : "inflate error");
    break;
  }
  inflateEnd(&z);
  if (err) {
    ry_free(buf);
    return err;
  }
  buf[len] = 0;
  *out = buf;
  *out_size = len;
  return NULL;
#endif
}

/* ---- IDX ------------------------------------------------------------------------ */

static int idx_dtype(int code, ry_dtype *t) {
  switch (code) {
  case 0x08: *t = RY_U8; return 1;
  case 0x09: *t = RY_I8; return 1;
  case 0x0B: *t = RY_I16; return 1;
  case 0x0C: *t = RY_I32; return 1;
  case 0x0D: *t = RY_F32; return 1;
  case 0x0E: *t = RY_F64; return 1;
  default: return 0;
  }
}

static int idx_code(ry_dtype t) {
  switch (t) {
  case RY_U8: return 0x08;
  case RY_I8: return 0x09;
  case RY_I16: return 0x0B;
  case RY_I32: return 0x0C;
  case RY_F32: return 0x0D;
  case RY_F64: return 0x0E;
  default: return 0;
  }
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parse uncompressed IDX bytes. */
static ry_status idx_parse_raw(const unsigned char *d, size_t size, const char *src, ry_array **out) {
  if (size < 4) return ry__err(RY_ERR_PARSE, "%s: truncated IDX file: %zu bytes, the header needs at least 4", src, size);
  uint32_t magic = be32(d);
  ry_dtype t;
  if (d[0] != 0 || d[1] != 0 || !idx_dtype(d[2], &t))
    return ry__err(RY_ERR_PARSE, "%s: not an IDX file: magic 0x%08x (expected 0x000008NN with a type byte 08 09 0B 0C 0D 0E)",
                   src, magic);
  int rank = d[3];
  if (rank < 1 || rank > RY_MAX_RANK)
    return ry__err(RY_ERR_PARSE, "%s: IDX rank %d is not supported (1..%d)", src, rank, RY_MAX_RANK);
  size_t hdr = 4 + 4 * (size_t)rank;
  if (size < hdr)
    return ry__err(RY_ERR_PARSE, "%s: truncated IDX header: %zu bytes, rank %d needs %zu", src, size, rank, hdr);
  ry_shape shape = {rank, {0}};
  uint64_t numel = 1;
  for (int i = 0; i < rank; i++) {
    shape.dims[i] = be32(d + 4 + 4 * i);
    numel *= (uint64_t)shape.dims[i];
    if (numel > ((uint64_t)1 << 40))
      return ry__err(RY_ERR_PARSE, "%s: IDX dims are too large (%llu elements at dim %d)", src, (unsigned long long)numel, i);
  }
  size_t esz = ry_dtype_size(t);
  uint64_t need = numel * esz;
  size_t have = size - hdr;
  char sb[96];
  ry_shape_str(shape, sb, sizeof sb);
  if (have < need)
    return ry__err(RY_ERR_PARSE, "%s: truncated IDX data: shape %s needs %llu bytes, the file has %zu", src, sb,
                   (unsigned long long)need, have);
  if (have > need)
    return ry__err(RY_ERR_PARSE, "%s: %llu bytes of trailing data after the IDX data of shape %s", src,
                   (unsigned long long)(have - need), sb);
  ry_array *a;
  ry_type ty = {t, shape};
  ry_status s = ry__array_new(ty, &a);
  if (s) return s;
  unsigned char *o = ry__array_mut(a);
  const unsigned char *p = d + hdr;
  if (esz == 1) {
    memcpy(o, p, (size_t)need);
  } else {
    for (uint64_t i = 0; i < numel; i++)
      for (size_t k = 0; k < esz; k++) o[i * esz + k] = p[i * esz + (esz - 1 - k)]; /* big -> little endian */
  }
  *out = a;
  return NULL;
}

ry_status ry_idx_parse(const void *data, size_t size, const char *source, ry_array **out) {
  *out = NULL;
  if (!source) source = "<idx>";
  if (!data && size) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: NULL data", source);
  if (is_gzip(data, size)) {
    void *raw;
    size_t n;
    ry_status s = ry_gunzip(data, size, source, &raw, &n);
    if (s) return s;
    s = idx_parse_raw(raw, n, source, out);
    ry_free(raw);
    return s;
  }
  return idx_parse_raw(data, size, source, out);
}

ry_status ry_idx_read(const char *path, ry_array **out) {
  *out = NULL;
  unsigned char *buf;
  size_t n;
  ry_status s = ry__read_file(path, &buf, &n);
  if (s) return s;
  s = ry_idx_parse(buf, n, path, out);
  ry__free(buf, n + 1);
  return s;
}

static ry_status read_kind(const char *path, int rank, const char *kind, uint32_t magic, ry_array **out) {
  ry_status s = ry_idx_read(path, out);
  if (s) return s;
  ry_type t = ry_array_type(*out);
  if (t.dtype != RY_U8 || t.shape.rank != rank) {
    uint32_t got = (uint32_t)idx_code(t.dtype) << 8 | (uint32_t)t.shape.rank;
    ry_array_release(*out);
    *out = NULL;
    return ry__err(RY_ERR_PARSE, "%s: not an IDX %s file: magic 0x%08x, expected 0x%08x (u8, rank %d)", path, kind, got, magic,
                   rank);
  }
  return NULL;
}

ry_status ry_idx_read_images(const char *path, ry_array **out) { return read_kind(path, 3, "image", 0x803, out); }
ry_status ry_idx_read_labels(const char *path, ry_array **out) { return read_kind(path, 1, "label", 0x801, out); }

ry_status ry_idx_read_pair(const char *images_path, const char *labels_path, int num_classes, ry_array **images,
                           ry_array **labels) {
  *images = *labels = NULL;
  ry_array *x = NULL, *y = NULL;
  ry_status s = ry_idx_read_images(images_path, &x);
  if (!s) s = ry_idx_read_labels(labels_path, &y);
  if (!s && ry_array_shape(x).dims[0] != ry_array_shape(y).dims[0])
    s = ry__err(RY_ERR_SHAPE, "%s has %lld images but %s has %lld labels", images_path, (long long)ry_array_shape(x).dims[0],
                labels_path, (long long)ry_array_shape(y).dims[0]);
  if (!s && num_classes > 0) {
    const unsigned char *l = ry_array_data(y);
    for (int64_t i = 0; i < ry_array_numel(y); i++)
      if (l[i] >= num_classes) {
        s = ry__err(RY_ERR_PARSE, "%s: label %d at index %lld is not below %d", labels_path, l[i], (long long)i, num_classes);
        break;
      }
  }
  if (s) {
    ry_array_release(x);
    ry_array_release(y);
    return s;
  }
  *images = x;
  *labels = y;
  return NULL;
}

ry_status ry_idx_write(const char *path, const ry_array *a) {
  if (!a) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: NULL array", path ? path : "(null)");
  ry_type t = ry_array_type(a);
  int code = idx_code(t.dtype);
  if (!code) return ry__err(RY_ERR_DTYPE, "%s: IDX cannot hold %s (u8 i8 i16 i32 f32 f64 only)", path, ry_dtype_name(t.dtype));
  if (t.shape.rank < 1) return ry__err(RY_ERR_SHAPE, "%s: IDX needs rank >= 1", path);
  for (int i = 0; i < t.shape.rank; i++)
    if (t.shape.dims[i] > (int64_t)UINT32_MAX) return ry__err(RY_ERR_SHAPE, "%s: dim %d is too large for IDX", path, i);
  ry_status hs = ry__array_sync(a); /* a device array: its bytes first */
  if (hs) return ry__err_prefix(hs, "%s", path);
  ry_atomic_file f;
  ry_status s = ry__atomic_open(&f, path);
  if (s) return s;
  unsigned char hdr[4 + 4 * RY_MAX_RANK];
  hdr[0] = hdr[1] = 0;
  hdr[2] = (unsigned char)code;
  hdr[3] = (unsigned char)t.shape.rank;
  for (int i = 0; i < t.shape.rank; i++) {
    uint32_t d = (uint32_t)t.shape.dims[i];
    hdr[4 + 4 * i] = (unsigned char)(d >> 24);
    hdr[5 + 4 * i] = (unsigned char)(d >> 16);
    hdr[6 + 4 * i] = (unsigned char)(d >> 8);
    hdr[7 + 4 * i] = (unsigned char)d;
  }
  s = ry__atomic_write(&f, hdr, 4 + 4 * (size_t)t.shape.rank);
  size_t esz = ry_dtype_size(t.dtype);
  const unsigned char *p = ry_array_data(a);
  unsigned char chunk[4096];
  size_t total = ry_array_nbytes(a);
  for (size_t off = 0; off < total && !s;) {
    size_t n = total - off < sizeof chunk ? total - off : sizeof chunk;
    for (size_t i = 0; i < n; i += esz)
      for (size_t k = 0; k < esz; k++) chunk[i + k] = p[off + i + (esz - 1 - k)];
    s = ry__atomic_write(&f, chunk, n);
    off += n;
  }
  if (!s) s = ry__atomic_commit(&f);
  return s;
}
