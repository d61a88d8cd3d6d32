/* Shared helpers of src/nn: short names for the public ops with the caller's
 * location forwarded, and the one internal call nn makes (recording a
 * builder error with an nn-specific message). */
#ifndef RYFT_NN_INTERNAL_H
#define RYFT_NN_INTERNAL_H

#include <math.h>
#include <stdbool.h>

#include "ryft/nn.h"
#include "ryft/ryft.h"

#include <stdarg.h>
#include <stdio.h>

/* Record "name: message at file:line" as the builder's sticky error. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline void nn_failf(ry_builder *b, ry_loc loc, ry_code code, const char *name, const char *fmt, ...) {
  if (!b || ry_builder_error(b)) return;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ry_builder_set_error(b, ry_status_make(code, "%s: %s at %s:%d", name, msg, loc.file ? loc.file : "?", loc.line));
}
#define nn_fail(b, loc, name, ...) nn_failf((b), (loc), RY_ERR_INVALID_ARGUMENT, (name), __VA_ARGS__)
#define nn_fail_shape(b, loc, name, ...) nn_failf((b), (loc), RY_ERR_SHAPE, (name), __VA_ARGS__)

static inline bool nn_ok(ry_builder *b) { return ry_builder_error(b) == NULL; }

#define NONE ((ry_value){0})
#define ADD(x, y) ry_add_(b, loc, (x), (y))
#define SUB(x, y) ry_sub_(b, loc, (x), (y))
#define MUL(x, y) ry_mul_(b, loc, (x), (y))
#define DIV(x, y) ry_div_(b, loc, (x), (y))
#define C(x, v) ry_const_like_(b, loc, (x), (v))
#define SHAPE(v) ry_value_shape(b, (v))
#define DTYPE(v) ry_value_dtype(b, (v))

static inline bool nn_valid(ry_builder *b, ry_loc loc, const char *name, ry_value v, const char *what) {
  if (!nn_ok(b)) return false;
  if (!ry_value_ok(v)) {
    nn_fail(b, loc, name, "%s is not a valid value", what);
    return false;
  }
  return true;
}

#endif
