/* The growable string of core/internal.h (ry__buf). */
#include <stdint.h>
#include <stdio.h>

#include "internal.h"

static bool reserve(ry__buf *b, size_t more) {
  if (b->oom) return false;
  if (b->n + more + 1 <= b->cap) return true;
  size_t ncap = b->cap ? b->cap : 4096;
  while (ncap < b->n + more + 1) {
    if (ncap > SIZE_MAX / 2) {
      b->oom = true;
      return false;
    }
    ncap *= 2;
  }
  char *ns = ry__realloc(b->s, b->cap, ncap);
  if (!ns) {
    b->oom = true;
    return false;
  }
  b->s = ns;
  b->cap = ncap;
  return true;
}

void ry__buf_vprintf(ry__buf *b, const char *fmt, va_list ap) {
  if (b->oom) return;
  va_list ap2;
  va_copy(ap2, ap);
  size_t room = b->cap - b->n;
  int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap2);
  va_end(ap2);
  if (k < 0) {
    b->oom = true;
    return;
  }
  if (!b->s || (size_t)k >= room) {
    if (!reserve(b, (size_t)k)) return;
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
  }
  b->n += (size_t)k;
}

void ry__buf_printf(ry__buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ry__buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void ry__buf_put(ry__buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

void ry__buf_append(ry__buf *dst, const ry__buf *src) {
  if (src->oom) dst->oom = true;
  else if (src->n) ry__buf_put(dst, src->s, src->n);
}

void ry__buf_free(ry__buf *b) {
  ry__free(b->s, b->cap);
  memset(b, 0, sizeof *b);
}
