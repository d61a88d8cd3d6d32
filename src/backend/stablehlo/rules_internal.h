/* rules_internal.h - the StableHLO rules' shorthands and helpers, shared by
 * rules.c, rules_control.c and rules_window.c */
#ifndef RYFT_BACKEND_STABLEHLO_RULES_INTERNAL_H
#define RYFT_BACKEND_STABLEHLO_RULES_INTERNAL_H

#include "stablehlo.h"

#define OPD(i) ry_node_operands(c->g, n)[i]
#define RES(i) ry_node_results(c->g, n)[i]
#define NAME(v) c->names[v]
typedef struct opnds {
  const char **names;
  ry_type *types;
  int n;
} opnds;

void rys_free_opnds(opnds *o);
void rys_free_types(const ry_node *n, ry_type *t);
bool rys_get_opnds(rys_ctx *c, const ry_node *n, opnds *o);
void rys_name_result(rys_ctx *c, const ry_node *n);
void rys_name_results(rys_ctx *c, const ry_node *n, char base[RYS_NAME], int skip);
void rys_r_call(rys_ctx *c, const ry_node *n);
void rys_r_collective(rys_ctx *c, const ry_node *n);
void rys_r_cond(rys_ctx *c, const ry_node *n);
void rys_r_custom_call(rys_ctx *c, const ry_node *n);
void rys_r_scan(rys_ctx *c, const ry_node *n);
void rys_r_sharding(rys_ctx *c, const ry_node *n);
void rys_r_while(rys_ctx *c, const ry_node *n);
void rys_r_reduce_window(rys_ctx *c, const ry_node *n);
void rys_r_select_and_scatter(rys_ctx *c, const ry_node *n);
void rys_r_select_and_gather(rys_ctx *c, const ry_node *n);
/* The scalar constant identity of reduction k for dtype d, into out. */
void rys_identity(rys_ctx *c, char out[RYS_NAME], ry_reduce_kind k, ry_dtype d);
/* A reduction body region over two scalars (first: the op's first region). */
void rys_scalar_reducer(rys_ctx *c, bool first, ry_reduce_kind k, ry_dtype d);
const char *rys_reduce_op(ry_reduce_kind k, ry_dtype d);
ry_type *rys_result_types(rys_ctx *c, const ry_node *n);
ry_type rys_scalar_of(ry_dtype d);
void rys_t_cmp(rys_ctx *c, char out[RYS_NAME], ry_cmp dir, const char *a, const char *b, ry_type t);
void rys_t_const_i(rys_ctx *c, char out[RYS_NAME], ry_type t, int64_t v);
void rys_t_op1(rys_ctx *c, char out[RYS_NAME], const char *op, const char *a, ry_type ta, ry_type tr);
void rys_t_op2(rys_ctx *c, char out[RYS_NAME], const char *op, const char *a, const char *b, ry_type t, ry_type tr);

#endif
