/* The op table expanded from ops.def, and the enum name tables. */
#include "graph.h"

const ry_op_info ryg_op_table[RY_OP_COUNT] = {
#define OP(id, nm, nin, nout, at, kd, dt, fl)                                                                    \
  [RY_OP_##id] = {.name = nm, .n_operands = nin, .n_results = nout, .attrs = RY_ATTR_##at, .kind = RY_KIND_##kd, \
                  .dtypes = RY_DT_##dt, .flags = RY_OPF_##fl},
#include "ops.def"
#undef OP
};

bool ryg_op_elementwise(ry_op op) {
  if ((int)op < 0 || op >= RY_OP_COUNT) return false;
  switch (ryg_op_table[op].kind) {
  case RY_KIND_UNARY: case RY_KIND_UNARY_PRED: case RY_KIND_BINARY: case RY_KIND_COMPARE: case RY_KIND_SELECT:
  case RY_KIND_CLAMP: case RY_KIND_CONVERT: case RY_KIND_BITCAST:
    return true;
  default: return false;
  }
}

bool ryg_op_collective(ry_op op) {
  if ((int)op < 0 || op >= RY_OP_COUNT) return false;
  switch (ryg_op_table[op].kind) {
  case RY_KIND_ALL_REDUCE: case RY_KIND_ALL_GATHER: case RY_KIND_REDUCE_SCATTER: case RY_KIND_COLLECTIVE_BROADCAST:
    return true;
  default: return false;
  }
}

bool ryg_op_from_name(const char *name, size_t len, ry_op *out) {
  for (int i = 0; i < RY_OP_COUNT; i++)
    if (strlen(ryg_op_table[i].name) == len && memcmp(ryg_op_table[i].name, name, len) == 0) {
      *out = (ry_op)i;
      return true;
    }
  return false;
}

const char *const ryg_cmp_names[RY_CMP_COUNT] = {[RY_EQ] = "eq", [RY_NE] = "ne", [RY_LT] = "lt",
                                                [RY_LE] = "le", [RY_GT] = "gt", [RY_GE] = "ge"};
const char *const ryg_reduce_names[RY_REDUCE_COUNT] = {[RY_SUM] = "sum", [RY_PROD] = "prod", [RY_MAX] = "max",
                                                      [RY_MIN] = "min", [RY_AND] = "and",   [RY_OR] = "or"};
const char *const ryg_scatter_names[RY_SCATTER_COUNT] = {[RY_SCATTER_REPLACE] = "replace", [RY_SCATTER_ADD] = "add",
                                                        [RY_SCATTER_MUL] = "mul",         [RY_SCATTER_MAX] = "max",
                                                        [RY_SCATTER_MIN] = "min"};

const char *ryg_dt_class_name(ry_dt_class c) {
  static const char *names[RY_DT_CLASS_COUNT] = {
      [RY_DT_ANY] = "any", [RY_DT_NUM] = "numeric (integer or float)", [RY_DT_SNUM] = "signed integer or float",
      [RY_DT_FLOAT] = "float", [RY_DT_INT] = "integer", [RY_DT_INTB] = "integer or bool"};
  return (c >= 0 && c < RY_DT_CLASS_COUNT) ? names[c] : "?";
}

bool ryg_dt_class_has(ry_dt_class c, ry_dtype t) {
  switch (c) {
  case RY_DT_ANY: return true;
  case RY_DT_NUM: return t != RY_BOOL;
  case RY_DT_SNUM: return ry_dtype_is_signed(t);
  case RY_DT_FLOAT: return ry_dtype_is_float(t);
  case RY_DT_INT: return ry_dtype_is_int(t);
  case RY_DT_INTB: return ry_dtype_is_int(t) || t == RY_BOOL;
  default: return false;
  }
}
