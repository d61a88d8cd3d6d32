/* The op table is the spine: every op must have every rule. Adding an op to
 * ops.def without its shape rule, interpreter kernel and printer/parser
 * support fails here, naming the op and the missing rule. */
#include "backend/interp/interp.h"
#include "backend/stablehlo/stablehlo.h"
#include "ir/graph.h"
#include "transform/transform.h"
#include "testlib.h"

TEST(optable_complete) {
  for (int op = 0; op < RY_OP_COUNT; op++) {
    const ry_op_info *info = &ry_op_table[op];
    CHECK_MSG(info->name && info->name[0], "op %d has no name", op);
    CHECK_MSG(ry_shape_rules[op] != NULL, "op %s has no shape rule", info->name);
    CHECK_MSG(ry_interp_kernels[op] != NULL, "op %s has no interpreter kernel", info->name);
    CHECK_MSG(ry_jvp_rules[op] != NULL, "op %s has no JVP rule", info->name);
    CHECK_MSG(ry_batch_rules[op] != NULL, "op %s has no batching rule", info->name);
    CHECK_MSG(ry_stablehlo_rules[op] != NULL, "op %s has no StableHLO emission rule", info->name);
    CHECK_MSG(ry_attr_printable[info->attrs], "op %s: attributes cannot be printed", info->name);
    CHECK_MSG(ry_attr_parsable[info->attrs], "op %s: attributes cannot be parsed", info->name);
    ry_op back;
    CHECK_MSG(ry_op_from_name(info->name, strlen(info->name), &back) && back == (ry_op)op, "op %s: name lookup fails",
              info->name);
    for (int j = 0; j < op; j++) CHECK_MSG(strcmp(ry_op_table[j].name, info->name) != 0, "op name %s is used twice", info->name);
  }
}

TEST(optable_enums_named) {
  for (int i = 0; i < RY_CMP_COUNT; i++) CHECK(ry_cmp_names[i] != NULL);
  for (int i = 0; i < RY_REDUCE_COUNT; i++) CHECK(ry_reduce_names[i] != NULL);
  for (int i = 0; i < RY_SCATTER_COUNT; i++) CHECK(ry_scatter_names[i] != NULL);
  for (int i = 0; i < RY_DTYPE_COUNT; i++) {
    ry_dtype t;
    CHECK(ry_dtype_from_name(ry_dtype_name((ry_dtype)i), &t) && t == (ry_dtype)i);
    CHECK(ry_dtype_size((ry_dtype)i) > 0);
  }
}
