/* buf.h - the growable string the cpu backend writes C source and reports into. */
#ifndef RYFT_BACKEND_CPU_BUF_H
#define RYFT_BACKEND_CPU_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include "../../core/internal.h"

typedef struct ryc_buf {
  char *s;
  size_t n, cap;
  bool oom;
} ryc_buf;
void ryc_printf(ryc_buf *b, const char *fmt, ...) RY_PRINTF(2, 3);
void ryc_buf_free(ryc_buf *b);
/* dst += src; a src that ran out of memory makes dst out of memory too, so a
 * truncated piece of code is never pasted into a kernel */
void ryc_append(ryc_buf *dst, const ryc_buf *src);

#endif
