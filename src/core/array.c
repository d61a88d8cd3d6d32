/* Arrays: refcounted immutable buffers in host memory or (through a
 * backend's ry_devbuf) in a device's, the lazy host copy of device arrays,
 * and NumPy-style printing. */
#define _DEFAULT_SOURCE /* madvise */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static ry_status check_type(ry_dtype dtype, ry_shape shape, size_t *nbytes) {
  *nbytes = 0;
  if ((int)dtype < 0 || dtype >= RY_DTYPE_COUNT) return ry__err(RY_ERR_DTYPE, "array: invalid dtype %d", (int)dtype);
  if (shape.rank < 0 || shape.rank > RY_MAX_RANK)
    return ry__err(RY_ERR_SHAPE, "array: rank %d is outside 0..%d", shape.rank, RY_MAX_RANK);
  uint64_t n = 1;
  for (int i = 0; i < shape.rank; i++) {
    if (shape.dims[i] < 0) return ry__err(RY_ERR_SHAPE, "array: dimension %d is negative (%lld)", i, (long long)shape.dims[i]);
    if (shape.dims[i] && n > (UINT64_C(1) << 46) / (uint64_t)shape.dims[i])
      return ry__err(RY_ERR_SHAPE, "array: shape is too large");
    n *= (uint64_t)shape.dims[i];
  }
  if (n > (UINT64_C(1) << 46) / 8) return ry__err(RY_ERR_SHAPE, "array: shape is too large");
  *nbytes = (size_t)n * ry_dtype_size(dtype);
  return NULL;
}

ry_status ry__array_new(ry_type t, ry_array **out) {
  ry_status s = ry__array_new_uninit(t, out);
  if (!s) memset((*out)->data, 0, (*out)->nbytes ? (*out)->nbytes : 1);
  return s;
}

ry_status ry__array_new_uninit(ry_type t, ry_array **out) {
  size_t nbytes = 0;
  ry_status s = check_type(t.dtype, t.shape, &nbytes);
  if (s) return s;
  ry_array *a = ry__calloc(1, sizeof *a);
  if (!a) return ry__oom();
  a->data = ry__data_alloc(nbytes ? nbytes : 1);
  if (!a->data) {
    ry__free(a, sizeof *a);
    return ry__oom();
  }
  atomic_init((_Atomic int *)&a->refcount, 1);
  a->type = t;
  memset(a->type.shape.dims + t.shape.rank, 0, sizeof(int64_t) * (size_t)(RY_MAX_RANK - t.shape.rank));
  a->nbytes = nbytes;
  a->dev = NULL;
  *out = a;
  return NULL;
}

ry_status ry__array_wrap_dev(ry_type t, ry_devbuf *b, ry_array **out) {
  size_t nbytes = 0;
  ry_status s = check_type(t.dtype, t.shape, &nbytes);
  ry_array *a = s ? NULL : ry__calloc(1, sizeof *a);
  if (!s && !a) s = ry__oom();
  if (s) {
    b->ops->free(b);
    return s;
  }
  atomic_init((_Atomic int *)&a->refcount, 1);
  a->type = t;
  memset(a->type.shape.dims + t.shape.rank, 0, sizeof(int64_t) * (size_t)(RY_MAX_RANK - t.shape.rank));
  a->nbytes = nbytes;
  a->data = NULL;
  a->dev = b;
  *out = a;
  return NULL;
}

/* A device array's host copy is fetched once, by the first thread that
 * needs it, under one of these locks (picked by the array's address); the
 * pointer is published with a release store, so a thread that sees it
 * (acquire load, or the lock) also sees the bytes. */
#define SYNC_LOCKS 64
static pthread_mutex_t g_sync_locks[SYNC_LOCKS];
static pthread_once_t g_sync_once = PTHREAD_ONCE_INIT;

static void sync_locks_init(void) {
  for (int i = 0; i < SYNC_LOCKS; i++) pthread_mutex_init(&g_sync_locks[i], NULL);
}

ry_status ry__array_sync(const ry_array *a) {
  if (!a->dev || __atomic_load_n(&a->data, __ATOMIC_ACQUIRE)) return NULL;
  pthread_once(&g_sync_once, sync_locks_init);
  pthread_mutex_t *lock = &g_sync_locks[((uintptr_t)a >> 6) % SYNC_LOCKS];
  pthread_mutex_lock(lock);
  ry_status s = NULL;
  if (!a->data) {
    size_t n = a->nbytes ? a->nbytes : 1;
    void *buf = ry__data_alloc(n);
    s = !buf ? ry__oom() : a->nbytes ? a->dev->ops->to_host(a->dev, buf, a->nbytes) : NULL;
    if (s && buf) ry__data_free(buf, n);
    else if (!s) __atomic_store_n(&((ry_array *)a)->data, buf, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(lock);
  return s;
}

int ry_array_on_device(const ry_array *a) { return a && a->dev; }

ry_status ry_array_from_host(ry_dtype dtype, ry_shape shape, const void *data, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_from_host: out is NULL");
  *out = NULL;
  ry_array *a;
  ry_status s = ry__array_new((ry_type){dtype, shape}, &a);
  if (s) return s;
  if (a->nbytes) {
    if (!data) {
      size_t n = a->nbytes;
      ry_array_release(a);
      return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_from_host: data is NULL for %zu bytes", n);
    }
    memcpy(a->data, data, a->nbytes);
  }
  *out = a;
  return NULL;
}

ry_status ry_array_full(ry_dtype dtype, ry_shape shape, double value, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_full: out is NULL");
  *out = NULL;
  ry_array *a;
  ry_status s = ry__array_new((ry_type){dtype, shape}, &a);
  if (s) return s;
  int64_t n = ry_shape_numel(shape);
  if (value != 0.0 || signbit(value)) /* new arrays are zeroed: +0 is every dtype's zero bits */
    for (int64_t i = 0; i < n; i++) ry__store_f64(dtype, a->data, i, value);
  *out = a;
  return NULL;
}

ry_status ry_array_zeros(ry_dtype dtype, ry_shape shape, ry_array **out) { return ry_array_full(dtype, shape, 0, out); }

ry_status ry_array_to_host(const ry_array *a, void *dst, size_t size) {
  if (!a) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_to_host: array is NULL");
  if (size < a->nbytes)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_to_host: buffer of %zu bytes is smaller than the array's %zu", size,
                   a->nbytes);
  if (a->nbytes && !dst) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_to_host: dst is NULL");
  ry_status s = ry__array_sync(a);
  if (s) return ry__err_prefix(s, "ry_array_to_host");
  if (a->nbytes) memcpy(dst, a->data, a->nbytes);
  return NULL;
}

ry_array *ry_array_retain(ry_array *a) {
  if (a) atomic_fetch_add((_Atomic int *)&a->refcount, 1);
  return a;
}

ry_status ry_array_borrow(ry_dtype dtype, ry_shape shape, const void *data, void (*release)(void *ctx), void *ctx,
                          ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_borrow: out is NULL");
  *out = NULL;
  if ((int)dtype < 0 || dtype >= RY_DTYPE_COUNT || shape.rank < 0 || shape.rank > RY_MAX_RANK)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_borrow: bad dtype or rank");
  for (int i = 0; i < shape.rank; i++)
    if (shape.dims[i] < 0) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_borrow: negative dimension");
  size_t nbytes = (size_t)ry_shape_numel(shape) * ry_dtype_size(dtype);
  if (nbytes && !data) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_array_borrow: data is NULL");
  ry_array *a = ry__calloc(1, sizeof *a);
  if (!a) return ry__oom();
  a->refcount = 1;
  a->type = (ry_type){dtype, shape};
  a->nbytes = nbytes;
  a->data = (void *)(uintptr_t)data; /* never written: arrays are immutable and borrowed ones never reused */
  a->borrowed = true;
  a->borrow_release = release;
  a->borrow_ctx = ctx;
  *out = a;
  return NULL;
}

void ry_array_release(ry_array *a) {
  if (!a) return;
  if (atomic_fetch_sub((_Atomic int *)&a->refcount, 1) == 1) {
    if (a->dev) a->dev->ops->free(a->dev);
    if (a->derived) a->derived_free(a->derived);
    if (a->borrowed) {
      if (a->borrow_release) a->borrow_release(a->borrow_ctx);
    } else if (a->data) {
      ry__data_free(a->data, a->nbytes ? a->nbytes : 1);
    }
    ry__free(a, sizeof *a);
  }
}

void ry__array_drop_pages(ry_array *a) {
  if (!a || !a->file_pages || __atomic_load_n(&a->pages_dropped, __ATOMIC_ACQUIRE) ||
      __atomic_exchange_n(&a->pages_dropped, 1, __ATOMIC_ACQ_REL))
    return;
  long ps = sysconf(_SC_PAGESIZE);
  if (ps <= 0) return;
  uintptr_t lo = ((uintptr_t)a->data + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps,
            hi = ((uintptr_t)a->data + a->nbytes) / (uintptr_t)ps * (uintptr_t)ps; /* whole pages inside */
  if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* a hint: nothing depends on it */
}

void *ry__array_derived(ry_array *a, void *(*make)(const void *data, void *ctx), void *ctx, void (*free_fn)(void *)) {
  if (!a->borrowed) return NULL;
  void *d = __atomic_load_n(&a->derived, __ATOMIC_ACQUIRE);
  if (d || !make) return d;
  void *mine = make(a->data, ctx), *none = NULL;
  if (!mine) return NULL;
  /* derived_free is the same function for every maker of one array's layout */
  __atomic_store_n(&a->derived_free, free_fn, __ATOMIC_RELAXED);
  if (__atomic_compare_exchange_n(&a->derived, &none, mine, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return mine;
  free_fn(mine);
  return none;
}

ry_dtype ry_array_dtype(const ry_array *a) { return a->type.dtype; }
ry_shape ry_array_shape(const ry_array *a) { return a->type.shape; }
ry_type ry_array_type(const ry_array *a) { return a->type; }
int64_t ry_array_numel(const ry_array *a) { return ry_shape_numel(a->type.shape); }
size_t ry_array_nbytes(const ry_array *a) { return a->nbytes; }
const void *ry_array_data(const ry_array *a) {
  if (!a) return NULL;
  ry_status s = ry__array_sync(a);
  if (s) {
    ry_status_free(s);
    return NULL;
  }
  return a->data;
}

/* the host copy of a for the element readers, or NULL when it cannot be had */
static const void *host_or_null(const ry_array *a) {
  ry_status s = ry__array_sync(a);
  if (!s) return a->data;
  ry_status_free(s);
  return NULL;
}

double ry_array_get_f64(const ry_array *a, int64_t i) {
  if (!a || i < 0 || i >= ry_array_numel(a) || !host_or_null(a)) return NAN;
  return ry__load_f64(a->type.dtype, a->data, i);
}

int64_t ry_array_get_i64(const ry_array *a, int64_t i) {
  if (!a || i < 0 || i >= ry_array_numel(a) || !host_or_null(a)) return 0;
  return ry__load_i64(a->type.dtype, a->data, i);
}

/* ---- printing ----
 * Like NumPy: floats share one format chosen from the values (fixed with up
 * to 8 significant decimals, or scientific when the range is wide), columns
 * are right-aligned to the widest element, long axes are summarised with
 * "..." when the array has more than 1000 elements. */

typedef struct {
  char *buf;
  size_t size, len;
} sbuf;

static void put(sbuf *b, const char *s) {
  size_t n = strlen(s);
  if (b->len < b->size) {
    size_t room = b->size - b->len - 1;
    memcpy(b->buf + b->len, s, n < room ? n : room);
    b->buf[b->len + (n < room ? n : room)] = 0;
  }
  b->len += n;
}

enum { EDGE = 3, THRESHOLD = 1000 };

typedef struct {
  const ry_array *a;
  bool summarize, sci;
  int prec, width;
} pfmt;

/* The fewest decimals (<= max) with which v reads back as the same value
 * of dtype t. */
static int digits_needed(ry_dtype t, double v, int max) {
  char c[400];
  unsigned char tmp[8];
  ry__store_f64(t, tmp, 0, v);
  double want = ry__load_f64(t, tmp, 0);
  for (int p = 0; p < max; p++) {
    snprintf(c, sizeof c, "%.*f", p, v);
    ry__store_f64(t, tmp, 0, strtod(c, NULL));
    if (ry__load_f64(t, tmp, 0) == want) return p;
  }
  return max;
}

static void fmt_elem(const pfmt *f, int64_t i, char *out, size_t n) {
  ry_dtype t = f->a->type.dtype;
  if (t == RY_BOOL) {
    snprintf(out, n, "%s", ry__load_i64(t, f->a->data, i) ? "True" : "False");
  } else if (!ry_dtype_is_float(t)) {
    if (t == RY_U64)
      snprintf(out, n, "%" PRIu64, ((const uint64_t *)f->a->data)[i]);
    else if (t == RY_U32)
      snprintf(out, n, "%" PRIu32, ((const uint32_t *)f->a->data)[i]);
    else
      snprintf(out, n, "%lld", (long long)ry__load_i64(t, f->a->data, i));
  } else {
    double v = ry__load_f64(t, f->a->data, i);
    if (isnan(v))
      snprintf(out, n, "nan");
    else if (isinf(v))
      snprintf(out, n, v > 0 ? "inf" : "-inf");
    else if (f->sci)
      snprintf(out, n, "%.*e", f->prec, v);
    else if (f->prec == 0)
      snprintf(out, n, "%.0f.", v);
    else {
      /* NumPy prints each value with the fewest digits that read back as the
       * same value, padded with spaces so the decimal points align */
      int p = digits_needed(t, v, f->prec);
      int len = snprintf(out, n, "%.*f", p, v);
      if (p == 0 && len + 1 < (int)n) out[len++] = '.', out[len] = 0;
      for (int k = p; k < f->prec && len + 1 < (int)n; k++) out[len++] = ' ', out[len] = 0;
    }
  }
}

/* Visit the element indices that are printed. */
static bool shown(const pfmt *f, int64_t idx, int64_t dim) {
  return !f->summarize || dim <= 2 * EDGE || idx < EDGE || idx >= dim - EDGE;
}

static void measure(pfmt *f, int axis, int64_t off, const int64_t *strides) {
  const ry_shape *s = &f->a->type.shape;
  if (axis == s->rank) {
    char e[64];
    fmt_elem(f, off, e, sizeof e);
    int w = (int)strlen(e);
    if (w > f->width) f->width = w;
    return;
  }
  for (int64_t i = 0; i < s->dims[axis]; i++)
    if (shown(f, i, s->dims[axis])) measure(f, axis + 1, off + i * strides[axis], strides);
}

static void emit(const pfmt *f, sbuf *b, int axis, int64_t off, const int64_t *strides, int indent) {
  const ry_shape *s = &f->a->type.shape;
  if (axis == s->rank) {
    char e[64], pad[80];
    fmt_elem(f, off, e, sizeof e);
    int w = f->width - (int)strlen(e);
    if (w < 0) w = 0;
    if (w > 70) w = 70;
    memset(pad, ' ', (size_t)w);
    pad[w] = 0;
    put(b, pad);
    put(b, e);
    return;
  }
  put(b, "[");
  int64_t d = s->dims[axis];
  bool last_axis = axis == s->rank - 1, first = true;
  for (int64_t i = 0; i < d; i++) {
    bool ellipsis = !shown(f, i, d);
    if (ellipsis && i != EDGE) continue; /* print "..." once, at the first hidden index */
    if (!first) {
      if (last_axis) {
        put(b, " ");
      } else {
        for (int k = axis; k < s->rank - 1; k++) put(b, "\n");
        for (int k = 0; k <= indent; k++) put(b, " ");
      }
    }
    first = false;
    if (ellipsis)
      put(b, "...");
    else
      emit(f, b, axis + 1, off + i * strides[axis], strides, indent + 1);
  }
  put(b, "]");
}

static void choose_float_format(pfmt *f) {
  int64_t n = ry_array_numel(f->a);
  double maxabs = 0, minabs = INFINITY;
  bool all_int = true;
  for (int64_t i = 0; i < n; i++) {
    double v = fabs(ry__load_f64(f->a->type.dtype, f->a->data, i));
    if (!isfinite(v)) continue;
    if (v > maxabs) maxabs = v;
    if (v != 0 && v < minabs) minabs = v;
    if (v != floor(v)) all_int = false;
  }
  f->sci = maxabs >= 1e8 || (minabs < 1e-4 && minabs > 0) || (minabs != INFINITY && maxabs / minabs > 1e3 && minabs < 1e-3);
  f->prec = f->sci ? 8 : (all_int ? 0 : 8);
  if (f->sci) {
    /* shortest precision that still distinguishes values is overkill here */
    f->prec = 8;
  } else if (!all_int) {
    /* the most digits any value needs (NumPy's unique repr, precision 8) */
    int best = 0;
    for (int64_t i = 0; i < n && i < 100000 && best < 8; i++) {
      double v = ry__load_f64(f->a->type.dtype, f->a->data, i);
      if (isfinite(v)) {
        int p = digits_needed(f->a->type.dtype, v, 8);
        if (p > best) best = p;
      }
    }
    f->prec = best;
  }
}

size_t ry_array_format(const ry_array *a, char *buf, size_t size) {
  sbuf b = {buf, size, 0};
  if (size) buf[0] = 0;
  if (!a) {
    put(&b, "(null)");
    return b.len;
  }
  ry_status s = ry__array_sync(a);
  if (s) {
    put(&b, "(unreadable device array: ");
    put(&b, ry_status_message(s));
    put(&b, ")");
    ry_status_free(s);
    return b.len;
  }
  pfmt f = {a, ry_array_numel(a) > THRESHOLD, false, 0, 0};
  if (ry_dtype_is_float(a->type.dtype)) choose_float_format(&f);
  int64_t strides[RY_MAX_RANK];
  ry__strides(a->type.shape, strides);
  if (ry_array_numel(a) == 0) {
    put(&b, "[]");
  } else {
    measure(&f, 0, 0, strides);
    emit(&f, &b, 0, 0, strides, 0);
  }
  return b.len;
}

void ry_array_print(const ry_array *a, FILE *out) {
  size_t n = ry_array_format(a, NULL, 0);
  char *buf = ry__malloc(n + 1);
  if (!buf) {
    fputs("(out of memory)\n", out);
    return;
  }
  ry_array_format(a, buf, n + 1);
  fputs(buf, out);
  fputc('\n', out);
  ry__free(buf, n + 1);
}
