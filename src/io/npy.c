/* NumPy .npy files: reading (format 1.0, 2.0 and 3.0 headers) and atomic
 * writing (format 1.0, or 2.0 when the header does not fit in 64 KiB).
 *
 * The layout (numpy/lib/format.py, "NEP 1"):
 *   "\x93NUMPY" major minor
 *   header length: u16 LE (1.0) or u32 LE (2.0, 3.0)
 *   header: a Python dict literal {'descr': '<f4', 'fortran_order': False,
 *           'shape': (2, 3), } padded with spaces and ended by '\n' so the
 *           data starts at a multiple of 64 (16 in old files)
 *   data: the elements, C order, in the descr's byte order.
 * ryft reads little-endian descrs only, and only the dtypes it has. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/internal.h"
#include "ryft/io.h"

static const unsigned char k_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* descr <-> dtype. One-byte types are written with '|' (as NumPy does) but
 * read with any byte-order mark, since byte order means nothing for them. */
static const struct {
  ry_dtype dtype;
  const char *descr;
} k_descrs[] = {
    {RY_BOOL, "|b1"}, {RY_I8, "|i1"}, {RY_I16, "<i2"}, {RY_I32, "<i4"}, {RY_I64, "<i8"},
    {RY_U8, "|u1"},   {RY_U16, "<u2"}, {RY_U32, "<u4"}, {RY_U64, "<u8"}, {RY_F16, "<f2"}, {RY_F32, "<f4"}, {RY_F64, "<f8"},
};
#define N_DESCRS (sizeof k_descrs / sizeof k_descrs[0])
#define SUPPORTED_DESCRS "|b1 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 <f2 <f4 <f8"

static const char *descr_of(ry_dtype t) {
  for (size_t i = 0; i < N_DESCRS; i++)
    if (k_descrs[i].dtype == t) return k_descrs[i].descr;
  return NULL;
}

/* What the header says. */
typedef struct npy_info {
  ry_type type;
  size_t data_offset; /* bytes before the data */
  size_t data_bytes;  /* numel * itemsize */
} npy_info;

/* ---- the header dict ------------------------------------------------------ */

typedef struct hparser {
  const char *p, *end;
  const char *src;
} hparser;

static void skip_ws(hparser *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static ry_status herr(const hparser *h, const char *what) {
  return ry__err(RY_ERR_PARSE, "%s: malformed .npy header: %s", h->src, what);
}

/* A Python string literal ('...' or "...", no escapes needed for our keys and
 * descrs; a backslash is refused) into buf. */
static ry_status parse_str(hparser *h, char *buf, size_t size, const char *what) {
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected a string for %s", what);
    return herr(h, msg);
  }
  char q = *h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q) {
    if (*h->p == '\\' || *h->p == '\n') return herr(h, "unsupported character in a string");
    if (n + 1 < size) buf[n++] = *h->p;
    else return herr(h, "string is too long");
    h->p++;
  }
  if (h->p >= h->end) return herr(h, "unterminated string");
  h->p++;
  buf[n] = 0;
  return NULL;
}

static int match_word(hparser *h, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return 0;
  const char *after = h->p + n;
  if (after < h->end && (((*after | 32) >= 'a' && (*after | 32) <= 'z') || (*after >= '0' && *after <= '9') || *after == '_'))
    return 0;
  h->p = after;
  return 1;
}

static ry_status parse_shape(hparser *h, ry_shape *shape) {
  if (h->p >= h->end || *h->p != '(') return herr(h, "expected a tuple for 'shape'");
  h->p++;
  int rank = 0;
  int64_t dims[RY_MAX_RANK];
  for (;;) {
    skip_ws(h);
    if (h->p < h->end && *h->p == ')') {
      h->p++;
      break;
    }
    int neg = 0;
    if (h->p < h->end && *h->p == '-') {
      neg = 1;
      h->p++;
    }
    if (h->p >= h->end || *h->p < '0' || *h->p > '9') return herr(h, "expected an integer in 'shape'");
    uint64_t v = 0;
    int overflow = 0;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
      unsigned d = (unsigned)(*h->p - '0');
      if (v > ((uint64_t)INT64_MAX - d) / 10) overflow = 1;
      else v = v * 10 + d;
      h->p++;
    }
    if (h->p < h->end && *h->p == 'L') h->p++; /* Python 2 longs */
    if (neg && v != 0)
      return ry__err(RY_ERR_PARSE, "%s: .npy shape has a negative dimension (-%llu)", h->src, (unsigned long long)v);
    if (overflow) return ry__err(RY_ERR_PARSE, "%s: .npy shape has a dimension that overflows int64", h->src);
    if (rank == RY_MAX_RANK) {
      /* count the rest for the message */
      int total = rank + 1;
      for (const char *q = h->p; q < h->end && *q != ')'; q++)
        if (*q == ',' && q + 1 < h->end) {
          const char *r = q + 1;
          while (r < h->end && *r == ' ') r++;
          if (r < h->end && *r != ')') total++;
        }
      return ry__err(RY_ERR_PARSE, "%s: .npy array has rank %d, more than ryft's maximum of %d", h->src, total,
                     RY_MAX_RANK);
    }
    dims[rank++] = (int64_t)v;
    skip_ws(h);
    if (h->p < h->end && *h->p == ',') {
      h->p++;
      continue;
    }
    if (h->p < h->end && *h->p == ')') {
      h->p++;
      break;
    }
    return herr(h, "expected ',' or ')' in 'shape'");
  }
  *shape = ry_shape_make(rank, dims);
  return NULL;
}

static ry_status parse_descr(hparser *h, ry_dtype *dtype) {
  if (h->p < h->end && *h->p == '[')
    return ry__err(RY_ERR_DTYPE, "%s: structured .npy dtypes (a list descr) are not supported; ryft reads " SUPPORTED_DESCRS,
                   h->src);
  char d[64];
  ry_status s = parse_str(h, d, sizeof d, "'descr'");
  if (s) return s;
  size_t n = strlen(d);
  if (n == 3 && d[2] == '1' && (d[0] == '|' || d[0] == '<' || d[0] == '>' || d[0] == '=')) {
    char one[4] = {'|', d[1], '1', 0};
    for (size_t i = 0; i < N_DESCRS; i++)
      if (strcmp(k_descrs[i].descr, one) == 0) {
        *dtype = k_descrs[i].dtype;
        return NULL;
      }
  }
  for (size_t i = 0; i < N_DESCRS; i++)
    if (strcmp(k_descrs[i].descr, d) == 0) {
      *dtype = k_descrs[i].dtype;
      return NULL;
    }
  if (d[0] == '>') {
    char little[64];
    snprintf(little, sizeof little, "<%s", d + 1);
    for (size_t i = 0; i < N_DESCRS; i++)
      if (strcmp(k_descrs[i].descr, little) == 0)
        return ry__err(RY_ERR_DTYPE,
                       "%s: big-endian descr '%s' is not supported; ryft reads little-endian .npy files "
                       "(save with arr.astype('%s'))",
                       h->src, d, little);
  }
  return ry__err(RY_ERR_DTYPE, "%s: unsupported .npy descr '%s'; ryft reads " SUPPORTED_DESCRS, h->src, d);
}

/* Parse the dict in header[0..n). */
static ry_status parse_dict(const char *header, size_t n, const char *src, ry_type *type) {
  hparser h = {header, header + n, src};
  int have_descr = 0, have_fortran = 0, have_shape = 0;
  ry_dtype dtype = RY_F32;
  ry_shape shape = RY_SCALAR;
  ry_status s;
  skip_ws(&h);
  if (h.p >= h.end || *h.p != '{') return herr(&h, "expected '{'");
  h.p++;
  for (;;) {
    skip_ws(&h);
    if (h.p < h.end && *h.p == '}') {
      h.p++;
      break;
    }
    char key[32];
    if ((s = parse_str(&h, key, sizeof key, "a key"))) return s;
    skip_ws(&h);
    if (h.p >= h.end || *h.p != ':') return herr(&h, "expected ':' after a key");
    h.p++;
    skip_ws(&h);
    if (strcmp(key, "descr") == 0) {
      if (have_descr++) return herr(&h, "duplicate key 'descr'");
      if ((s = parse_descr(&h, &dtype))) return s;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (have_fortran++) return herr(&h, "duplicate key 'fortran_order'");
      if (match_word(&h, "True"))
        return ry__err(RY_ERR_PARSE,
                       "%s: .npy array is stored in Fortran order (fortran_order: True); ryft reads C order only "
                       "(save np.ascontiguousarray(a))",
                       src);
      if (!match_word(&h, "False")) return herr(&h, "expected True or False for 'fortran_order'");
    } else if (strcmp(key, "shape") == 0) {
      if (have_shape++) return herr(&h, "duplicate key 'shape'");
      if ((s = parse_shape(&h, &shape))) return s;
    } else {
      char msg[96];
      snprintf(msg, sizeof msg, "unexpected key '%s'", key);
      return herr(&h, msg);
    }
    skip_ws(&h);
    if (h.p < h.end && *h.p == ',') {
      h.p++;
      continue;
    }
    if (h.p < h.end && *h.p == '}') {
      h.p++;
      break;
    }
    return herr(&h, "expected ',' or '}'");
  }
  skip_ws(&h);
  while (h.p < h.end && *h.p == '\0') h.p++; /* some writers pad with NULs */
  if (h.p != h.end) return herr(&h, "unexpected text after the dict");
  if (!have_descr) return herr(&h, "missing key 'descr'");
  if (!have_fortran) return herr(&h, "missing key 'fortran_order'");
  if (!have_shape) return herr(&h, "missing key 'shape'");
  type->dtype = dtype;
  type->shape = shape;
  return NULL;
}

/* ---- the fixed prefix ----------------------------------------------------- */

/* Check magic and version in the first `avail` bytes of a file of
 * `total` bytes; sets the prefix length and the header length. */
static ry_status parse_preamble(const unsigned char *p, size_t avail, size_t total, const char *src, size_t *prefix,
                                size_t *hlen) {
  size_t m = avail < sizeof k_magic ? avail : sizeof k_magic;
  if (memcmp(p, k_magic, m) != 0 || total == 0)
    return ry__err(RY_ERR_PARSE, "%s: not a .npy file (bad magic; expected \"\\x93NUMPY\")", src);
  if (total < 8) return ry__err(RY_ERR_PARSE, "%s: truncated .npy header (file is %zu bytes)", src, total);
  unsigned major = p[6], minor = p[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return ry__err(RY_ERR_PARSE, "%s: unsupported .npy format version %u.%u (ryft reads 1.0, 2.0 and 3.0)", src, major,
                   minor);
  size_t pre = major == 1 ? 10 : 12;
  if (total < pre) return ry__err(RY_ERR_PARSE, "%s: truncated .npy header (file is %zu bytes)", src, total);
  size_t n = major == 1 ? (size_t)p[8] | (size_t)p[9] << 8
                        : (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
  if (total - pre < n)
    return ry__err(RY_ERR_PARSE, "%s: truncated .npy header (header says %zu bytes, file has %zu after the prefix)", src,
                   n, total - pre);
  *prefix = pre;
  *hlen = n;
  return NULL;
}

/* Validate the sizes implied by the type against what the file holds. */
static ry_status check_sizes(npy_info *info, size_t total, const char *src) {
  size_t item = ry_dtype_size(info->type.dtype);
  uint64_t bytes = item;
  for (int i = 0; i < info->type.shape.rank; i++) {
    uint64_t d = (uint64_t)info->type.shape.dims[i];
    if (d && bytes > (UINT64_C(1) << 62) / d) {
      /* the product overflows (or is absurd); zero-size arrays never get here
       * unless a zero dim comes later, so check for one first */
      int has_zero = 0;
      for (int j = 0; j < info->type.shape.rank; j++) has_zero |= info->type.shape.dims[j] == 0;
      if (has_zero) {
        bytes = 0;
        break;
      }
      char sh[RY_MAX_RANK * 21 + 3];
      return ry__err(RY_ERR_PARSE, "%s: .npy shape %s overflows (too many elements)", src,
                     ry_shape_str(info->type.shape, sh, sizeof sh));
    }
    bytes *= d;
  }
  size_t actual = total - info->data_offset;
  if (bytes != (uint64_t)actual) {
    char ty[RY_MAX_RANK * 21 + 16];
    return ry__err(RY_ERR_PARSE, "%s: .npy data size mismatch: %s needs %llu bytes, the file has %zu (%s)", src,
                   ry_type_str(info->type, ty, sizeof ty), (unsigned long long)bytes, actual,
                   (uint64_t)actual < bytes ? "truncated data" : "trailing bytes");
  }
  info->data_bytes = (size_t)bytes;
  return NULL;
}

static ry_status new_array(const npy_info *info, const char *src, ry_array **out) {
  ry_status s = ry__array_new(info->type, out);
  if (s) return ry__err_prefix(s, "%s", src);
  return NULL;
}

/* NumPy bools are 0/1, but normalise any other byte to 1. */
static void fix_bools(ry_array *a) {
  if (a->type.dtype != RY_BOOL) return;
  uint8_t *p = a->data;
  for (size_t i = 0; i < a->nbytes; i++) p[i] = p[i] != 0;
}

ry_status ry_npy_parse(const void *data, size_t size, const char *source, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_npy_parse: out is NULL");
  *out = NULL;
  const char *src = source ? source : "<npy>";
  if (!data && size) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_npy_parse: data is NULL");
  const unsigned char *p = data;
  size_t prefix = 0, hlen = 0; /* set by parse_preamble; gcc -O3 cannot see it */
  ry_status s = parse_preamble(p, size < 12 ? size : 12, size, src, &prefix, &hlen);
  if (s) return s;
  npy_info info;
  if ((s = parse_dict((const char *)p + prefix, hlen, src, &info.type))) return s;
  info.data_offset = prefix + hlen;
  if ((s = check_sizes(&info, size, src))) return s;
  ry_array *a;
  if ((s = new_array(&info, src, &a))) return s;
  if (info.data_bytes) memcpy(a->data, p + info.data_offset, info.data_bytes);
  fix_bools(a);
  *out = a;
  return NULL;
}

/* ---- reading files -------------------------------------------------------- */

static ry_status io_err(const char *path, const char *what, int err) {
  return ry__err(RY_ERR_IO, "%s: cannot %s: %s", path, what, strerror(err));
}

/* Read a whole non-seekable stream (a pipe) and parse it from memory. */
static ry_status read_stream(FILE *f, const char *path, ry_array **out) {
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = ry__malloc(cap);
  if (!buf) return ry__oom();
  for (;;) {
    if (n == cap) {
      unsigned char *nb = ry__realloc(buf, cap, cap * 2);
      if (!nb) {
        ry__free(buf, cap);
        return ry__oom();
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  ry_status s = ferror(f) ? io_err(path, "read", errno) : ry_npy_parse(buf, n, path, out);
  ry__free(buf, cap);
  return s;
}

static ry_status read_file(FILE *f, const char *path, ry_array **out) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0) return io_err(path, "stat", errno);
  if (S_ISDIR(st.st_mode)) return ry__err(RY_ERR_IO, "%s: cannot read: %s", path, strerror(EISDIR));
  if (!S_ISREG(st.st_mode)) return read_stream(f, path, out);
  if (st.st_size < 0) return io_err(path, "stat", EINVAL);
  size_t total = (size_t)st.st_size;
  unsigned char pre[12];
  size_t got = fread(pre, 1, total < sizeof pre ? total : sizeof pre, f);
  if (ferror(f)) return io_err(path, "read", errno);
  size_t prefix = 0, hlen = 0; /* set by parse_preamble; gcc -O3 cannot see it */
  ry_status s = parse_preamble(pre, got, total, path, &prefix, &hlen);
  if (s) return s;
  char *header = ry__malloc(hlen);
  if (!header) return ry__oom();
  if (fseek(f, (long)prefix, SEEK_SET) != 0 || fread(header, 1, hlen, f) != hlen) {
    int err = errno;
    ry__free(header, hlen);
    return ferror(f) ? io_err(path, "read", err)
                     : ry__err(RY_ERR_PARSE, "%s: truncated .npy header (the file shrank while reading)", path);
  }
  npy_info info;
  s = parse_dict(header, hlen, path, &info.type);
  ry__free(header, hlen);
  if (s) return s;
  info.data_offset = prefix + hlen;
  if ((s = check_sizes(&info, total, path))) return s;
  ry_array *a;
  if ((s = new_array(&info, path, &a))) return s;
  if (info.data_bytes && fread(a->data, 1, info.data_bytes, f) != info.data_bytes) {
    int err = errno;
    s = ferror(f) ? io_err(path, "read", err)
                  : ry__err(RY_ERR_PARSE, "%s: truncated .npy data (the file shrank while reading)", path);
    ry_array_release(a);
    return s;
  }
  fix_bools(a);
  *out = a;
  return NULL;
}

ry_status ry_npy_read(const char *path, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_npy_read: out is NULL");
  *out = NULL;
  if (!path) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_npy_read: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return io_err(path, "open", errno);
  ry_status s = read_file(f, path, out);
  fclose(f);
  return s;
}

/* ---- writing -------------------------------------------------------------- */

/* The header dict exactly as NumPy writes it (numpy/lib/format.py), so a file
 * ryft writes is byte-identical to np.save's: keys sorted, 21 - len(repr(dim0))
 * spaces of room to grow the first axis in place, then spaces and '\n' so
 * that the data starts at a multiple of 64 (always at least one space).
 * Returns the header length; sets *version (1, or 2 past 64 KiB: never for
 * rank <= 8, kept for the format's sake). */
static size_t make_header(const ry_array *a, const char *descr, char *buf, size_t size, int *version) {
  ry_shape sh = a->type.shape;
  int n = snprintf(buf, size, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < sh.rank; i++)
    n += snprintf(buf + n, size - (size_t)n, i ? ", %lld" : "%lld", (long long)sh.dims[i]);
  n += snprintf(buf + n, size - (size_t)n, "%s), }", sh.rank == 1 ? "," : "");
  if (sh.rank > 0) {
    char d0[24];
    int grow = 21 - snprintf(d0, sizeof d0, "%lld", (long long)sh.dims[0]);
    for (int i = 0; i < grow; i++) buf[n++] = ' ';
  }
  size_t len = (size_t)n + 1; /* + '\n' */
  *version = len + 10 + 64 > 65535 ? 2 : 1;
  size_t pre = *version == 1 ? 10 : 12;
  size_t pad = 64 - (pre + len) % 64;
  memset(buf + n, ' ', pad);
  buf[(size_t)n + pad] = '\n';
  return (size_t)n + pad + 1;
}

static int write_all(int fd, const void *data, size_t n) {
  const unsigned char *p = data;
  while (n) {
    size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static atomic_uint g_tmp_counter;

ry_status ry_npy_write(const char *path, const ry_array *a) {
  if (!path || !a) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_npy_write: %s is NULL", path ? "array" : "path");
  if (a->type.dtype == RY_BF16)
    return ry__err(RY_ERR_DTYPE, "%s: cannot write a bf16 array to .npy (NumPy has no bfloat16); convert it to f32 first",
                   path);
  const char *descr = descr_of(a->type.dtype);
  if (!descr) return ry__err(RY_ERR_DTYPE, "%s: cannot write dtype %s to .npy", path, ry_dtype_name(a->type.dtype));
  ry_status hs = ry__array_sync(a); /* a device array: its bytes first */
  if (hs) return ry__err_prefix(hs, "%s", path);

  char header[512];
  int version;
  size_t hlen = make_header(a, descr, header, sizeof header, &version);
  unsigned char pre[12];
  memcpy(pre, k_magic, sizeof k_magic);
  pre[6] = (unsigned char)version;
  pre[7] = 0;
  size_t npre = version == 1 ? 10 : 12;
  for (size_t i = 8; i < npre; i++) pre[i] = (unsigned char)(hlen >> (8 * (i - 8)));

  /* write a temp file next to the target, then rename it into place */
  size_t tsize = strlen(path) + 64;
  char *tmp = ry__malloc(tsize);
  if (!tmp) return ry__oom();
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(tmp, tsize, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&g_tmp_counter, 1));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    ry_status s = ry__err(RY_ERR_IO, "%s: cannot write: cannot create the temporary file %s: %s", path, tmp,
                          strerror(errno));
    ry__free(tmp, tsize);
    return s;
  }
  int err = 0;
  if (write_all(fd, pre, npre) || write_all(fd, header, hlen) || (a->nbytes && write_all(fd, a->data, a->nbytes)) ||
      fsync(fd) != 0)
    err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err && rename(tmp, path) != 0) err = errno;
  if (err) {
    unlink(tmp);
    ry__free(tmp, tsize);
    return io_err(path, "write", err);
  }
  ry__free(tmp, tsize);
  return NULL;
}
