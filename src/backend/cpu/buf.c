/* The string buffer the cpu backend writes C source and reports into. */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* ---- string buffer ---- */

void ryc_printf(ryc_buf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->oom = true;
      return;
    }
    if (b->s && (size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t ncap = b->cap ? b->cap * 2 : 4096;
    while (ncap < b->n + (size_t)k + 1) ncap *= 2;
    char *ns = ry__realloc(b->s, b->cap, ncap);
    if (!ns) {
      b->oom = true;
      return;
    }
    b->s = ns;
    b->cap = ncap;
  }
}

void ryc_append(ryc_buf *dst, const ryc_buf *src) {
  if (src->oom) dst->oom = true;
  else if (src->s) ryc_printf(dst, "%s", src->s);
}

void ryc_buf_free(ryc_buf *b) {
  ry__free(b->s, b->cap);
  memset(b, 0, sizeof *b);
}
