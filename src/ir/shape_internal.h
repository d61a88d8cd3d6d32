/* shape_internal.h - what the shape rules of shape.c and shape_control.c
 * share: the error helper, type and axis formatting, TRY */
#ifndef RYFT_IR_SHAPE_INTERNAL_H
#define RYFT_IR_SHAPE_INTERNAL_H

#include "graph.h"

#define TSTR(t) ry_type_str((t), (char[RY_MAX_RANK * 21 + 16]){0}, RY_MAX_RANK * 21 + 16)
#define SSTR(s) ry_shape_str((s), (char[RY_MAX_RANK * 21 + 4]){0}, RY_MAX_RANK * 21 + 4)

static inline const char *axes_str(const ry_axes *a, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < a->n && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)a->v[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}
#define ASTR(a) axes_str(&(a), (char[RY_MAX_RANK * 21 + 4]){0}, RY_MAX_RANK * 21 + 4)
#define TRY(e)                       \
  do {                               \
    ry_code rc_ = (e);               \
    if (rc_ != RY_OK) return rc_;    \
  } while (0)

ry_code ryg_check_axes(ry_rule_ctx *c, const ry_axes *a, int rank, const char *what);
ry_code ryg_fail(ry_rule_ctx *c, ry_code code, const char *fmt, ...) RY_PRINTF(3, 4);
ry_code ryg_need_class(ry_rule_ctx *c, int i);
ry_code ryg_need_requested(ry_rule_ctx *c);
ry_code ryg_rule_all_gather(ry_rule_ctx *c);
ry_code ryg_rule_all_reduce(ry_rule_ctx *c);
ry_code ryg_rule_call(ry_rule_ctx *c);
ry_code ryg_rule_cond(ry_rule_ctx *c);
ry_code ryg_rule_custom(ry_rule_ctx *c);
ry_code ryg_rule_reduce_scatter(ry_rule_ctx *c);
ry_code ryg_rule_collective_broadcast(ry_rule_ctx *c);
ry_code ryg_rule_scan(ry_rule_ctx *c);
ry_code ryg_rule_sharding(ry_rule_ctx *c);
ry_code ryg_rule_while(ry_rule_ctx *c);
ry_code ryg_set1(ry_rule_ctx *c, ry_type t);

#endif
