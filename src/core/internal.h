/* Internal helpers shared by every module: allocation through the user's
 * allocator, status construction, the array struct, growable vectors, f16/bf16
 * conversion and typed element access. */
#ifndef RYFT_CORE_INTERNAL_H
#define RYFT_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "ryft/core.h"

#if defined(__GNUC__)
#define RY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RY_PRINTF(a, b)
#endif

/* ---- allocation (alloc.c) ---- */
void *ry__malloc(size_t n);               /* NULL on failure */
void *ry__calloc(size_t count, size_t n); /* zeroed; NULL on failure/overflow */
void *ry__realloc(void *p, size_t old_n, size_t n);
void ry__free(void *p, size_t n);
/* Array buffers: like ry__malloc / ry__free, but large blocks are cached for
 * the next allocation of the same size (alloc.c). Not zeroed. */
void *ry__data_alloc(size_t n);
void ry__data_free(void *p, size_t n);
void ry__buffer_cache_flush(void); /* give every cached block back (tests) */
/* Sized-free bookkeeping is awkward for strings; these carry their size. */
char *ry__strdup(const char *s);           /* NULL on failure or NULL s */
/* n bytes of p and a NUL, freed like a string (ry__strfree, ry_free); NULL on failure */
char *ry__memdup(const void *p, size_t n);
void ry__strfree(char *s);

/* ---- status (status.c) ---- */
ry_status ry__err(ry_code code, const char *fmt, ...) RY_PRINTF(2, 3);
ry_status ry__verr(ry_code code, const char *fmt, va_list ap);
ry_status ry__oom(void); /* a static status; ry_status_free ignores it */
/* Prefix an existing status's message: "prefix: old". Returns s. */
ry_status ry__err_prefix(ry_status s, const char *fmt, ...) RY_PRINTF(2, 3);

/* ---- arrays (array.c) ---- */

/* Storage in a device's memory, owned by the backend that made it (pjrt.c):
 * an array holding one is a device array. ops->to_host copies its bytes out;
 * ops->free releases it (once, when the array dies). Backends embed this
 * struct at the start of their own and recognise theirs by `ops`. */
typedef struct ry_devbuf ry_devbuf;
typedef struct ry_devbuf_ops {
  ry_status (*to_host)(ry_devbuf *b, void *dst, size_t nbytes);
  void (*free)(ry_devbuf *b);
} ry_devbuf_ops;
struct ry_devbuf {
  const ry_devbuf_ops *ops;
};

struct ry_array {
  int refcount;        /* atomic */
  ry_type type;
  size_t nbytes;
  /* nbytes, owned. For a device array NULL until its bytes are first read
   * (ry__array_sync), then the host copy, set once (atomically) and never
   * changed: arrays are immutable, so the copy cannot go stale. */
  void *data;
  ry_devbuf *dev;      /* owned; NULL for a host array */
  /* ry_array_borrow: data is the caller's (never freed, written or reused);
   * borrow_release(borrow_ctx) runs when the last reference goes */
  bool borrowed;
  void (*borrow_release)(void *ctx);
  void *borrow_ctx;
  /* A backend's other layout of a borrowed array's bytes (weights repacked
   * for a kernel), made on first use, set once (atomically), freed with the
   * array by derived_free. Only borrowed arrays carry one: their bytes never
   * change, so it cannot go stale. */
  void *derived;
  void (*derived_free)(void *derived);
  /* A borrowed array whose bytes are a read-only private mapping of a file
   * (a GGUF's tensor data): its pages can be given back to the OS, and a
   * later read faults them in again from the file (ry__array_drop_pages). */
  bool file_pages;
  int pages_dropped; /* atomic: given back already */
};
/* The run holds the only reference and may write over or reuse the bytes. */
static inline bool ry__array_exclusive(const ry_array *a) {
  return __atomic_load_n(&a->refcount, __ATOMIC_ACQUIRE) == 1 && !a->borrowed;
}
/* A new uninitialised (zeroed) array of the given type, refcount 1. */
ry_status ry__array_new(ry_type t, ry_array **out);
/* The same without zeroing the elements: for producers that write them all. */
ry_status ry__array_new_uninit(ry_type t, ry_array **out);
/* A device array of type t holding b (taken over: freed on failure too). */
ry_status ry__array_wrap_dev(ry_type t, ry_devbuf *b, ry_array **out);
/* Make a->data valid: a no-op for host arrays; for a device array, copy its
 * bytes to host memory the first time (thread-safe). Call it wherever an
 * array that came from a user is about to be read through ->data. */
ry_status ry__array_sync(const ry_array *a);
static inline void *ry__array_mut(ry_array *a) { return a->data; }
/* The derived layout of a borrowed array: the one already made, else
 * make(a->data, ctx) (NULL: none, the caller keeps the plain bytes; make
 * NULL: only look), kept
 * and freed with the array by free_fn. NULL for an array that is not
 * borrowed. Thread-safe: when two threads make one, one copy is kept. */
void *ry__array_derived(ry_array *a, void *(*make)(const void *data, void *ctx), void *ctx, void (*free_fn)(void *));
/* Where a backend reads a file_pages array through its derived layout from
 * now on, the plain bytes need not stay in the process's memory: their
 * whole pages are unmapped (once; a no-op for any other array), and the
 * page cache keeps the file's pages until the kernel reclaims them. Reading
 * them again costs page faults and gives the file's bytes: a file rewritten
 * on disk while mapped would give its new bytes (truncated: SIGBUS), as any
 * page the kernel reclaims from a mapping would. */
void ry__array_drop_pages(ry_array *a);

/* ---- growable int32 vector ---- */
typedef struct ry_ivec {
  int32_t *v;
  int32_t n, cap;
} ry_ivec;
bool ry__ivec_push(ry_ivec *a, int32_t x); /* false on OOM */
void ry__ivec_free(ry_ivec *a);

/* ---- element helpers (dtype.c) ---- */
float ry__f16_to_f32(uint16_t h);
uint16_t ry__f32_to_f16(float f);   /* round to nearest even */
float ry__bf16_to_f32(uint16_t h);
uint16_t ry__f32_to_bf16(float f);  /* round to nearest even, NaN kept quiet */
/* Load element i of raw data of dtype t as double / int64 (bool -> 0/1). */
double ry__load_f64(ry_dtype t, const void *data, int64_t i);
int64_t ry__load_i64(ry_dtype t, const void *data, int64_t i);
/* Store a double into element i with convert semantics (float->int truncates,
 * saturates, NaN -> 0; ->bool is != 0). */
void ry__store_f64(ry_dtype t, void *data, int64_t i, double v);
/* Store an int64 with wraparound to the dtype's width (->bool is != 0). */
void ry__store_i64(ry_dtype t, void *data, int64_t i, int64_t v);

/* Row-major strides (in elements) of a shape. */
void ry__strides(ry_shape s, int64_t strides[RY_MAX_RANK]);

/* ---- a growable string (strbuf.c) ----
 * The one string builder: the text IR printer, the StableHLO emitter and the
 * cpu backend's code generator write into it. Appending never fails loudly:
 * running out of memory sets oom, later appends do nothing, and the owner
 * checks oom once at the end. s is NUL-terminated whenever n > 0. */
typedef struct ry__buf {
  char *s;
  size_t n, cap;
  bool oom;
} ry__buf;
void ry__buf_printf(ry__buf *b, const char *fmt, ...) RY_PRINTF(2, 3);
void ry__buf_vprintf(ry__buf *b, const char *fmt, va_list ap);
void ry__buf_put(ry__buf *b, const char *s, size_t n); /* n bytes of s */
/* dst += src; a src that ran out of memory makes dst out of memory too, so
 * a truncated piece is never pasted into a whole */
void ry__buf_append(ry__buf *dst, const ry__buf *src);
void ry__buf_free(ry__buf *b); /* back to empty */

#endif
