/* Status objects: NULL is success; errors carry a code and a message. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct ry_status_s {
  ry_code code;
  size_t size; /* allocation size, 0 for the static out-of-memory status */
  char msg[];
};

static struct {
  ry_code code;
  size_t size;
  char msg[32];
} g_oom = {RY_ERR_OUT_OF_MEMORY, 0, "out of memory"};

ry_status ry__oom(void) { return (ry_status)(void *)&g_oom; }

ry_status ry__verr(ry_code code, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int len = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (len < 0) len = 0;
  size_t size = sizeof(struct ry_status_s) + (size_t)len + 1;
  ry_status s = ry__malloc(size);
  if (!s) return ry__oom();
  s->code = code;
  s->size = size;
  vsnprintf(s->msg, (size_t)len + 1, fmt, ap);
  return s;
}

ry_status ry__err(ry_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ry_status s = ry__verr(code, fmt, ap);
  va_end(ap);
  return s;
}

ry_status ry_status_make(ry_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ry_status s = ry__verr(code == RY_OK ? RY_ERR_INTERNAL : code, fmt, ap);
  va_end(ap);
  return s;
}

ry_status ry__err_prefix(ry_status s, const char *fmt, ...) {
  if (!s || s == ry__oom()) return s;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  ry_status n = ry__err(s->code, "%s: %s", prefix, s->msg);
  if (n == ry__oom()) return s;
  ry_status_free(s);
  return n;
}

ry_code ry_status_code(ry_status s) { return s ? s->code : RY_OK; }
const char *ry_status_message(ry_status s) { return s ? s->msg : ""; }

void ry_status_free(ry_status s) {
  if (s && s->size) ry__free(s, s->size);
}

const char *ry_code_name(ry_code c) {
  static const char *names[RY_CODE_COUNT] = {
      [RY_OK] = "ok",
      [RY_ERR_INVALID_ARGUMENT] = "invalid argument",
      [RY_ERR_SHAPE] = "shape error",
      [RY_ERR_DTYPE] = "dtype error",
      [RY_ERR_PARSE] = "parse error",
      [RY_ERR_VERIFY] = "verification error",
      [RY_ERR_IO] = "I/O error",
      [RY_ERR_OUT_OF_MEMORY] = "out of memory",
      [RY_ERR_UNSUPPORTED] = "unsupported",
      [RY_ERR_NOT_FOUND] = "not found",
      [RY_ERR_INTERNAL] = "internal error",
  };
  return (c >= 0 && c < RY_CODE_COUNT) ? names[c] : "unknown error";
}

const char *ry_version(void) { return "0.1.0"; }
