/* The builder's internal interface, used by the op constructors (ops.c,
 * composites.c) and by transforms that build graphs. */
#ifndef RYFT_IR_BUILDER_H
#define RYFT_IR_BUILDER_H

#include "graph.h"

#define RY_MAX_REGION_DEPTH 64

struct ry_builder {
  ry_graph *g;
  ry_status err;                        /* first error, sticky */
  int32_t stack[RY_MAX_REGION_DEPTH];   /* open regions, stack[depth-1] is current */
  int depth;
  ry_dtype mm_dtype;                    /* ry_builder_set_matmul_dtype; 0 (RY_BOOL): f32 */
};

/* Record err as the builder's error unless one is already set (then err is
 * freed). Always returns 0 for convenience. */
int ryb_fail(ry_builder *b, ry_status err);
/* Set a formatted error "opname: message at file:line". */
int ryb_failf(ry_builder *b, ry_loc loc, ry_code code, const char *opname, const char *fmt, ...) RY_PRINTF(5, 6);
static inline bool ryb_ok(const ry_builder *b) { return b && !b->err; }

/* The node that defines v in the graph being built; NULL for an input or a
 * region parameter. (Valid until the next node is added.) */
static inline const ry_node *ryb_def_node(const ry_builder *b, ry_value v) {
  if (!b || v.id == 0 || v.id >= (uint32_t)b->g->n_values) return NULL;
  int32_t n = b->g->values[v.id].node;
  return n >= 0 ? &b->g->nodes[n] : NULL;
}

/* Emit one node in the current region: operands are lifted into the region,
 * result types come from the shape rule (req/n_req are the requested types,
 * see ry__infer). attrs ownership passes to the graph, also on failure.
 * Writes the results to out (may be NULL when the op has one result and the
 * caller uses the return value) and returns the result count, 0 on error. */
int ryb_emit(ry_builder *b, ry_loc loc, ry_op op, int n_in, const ry_value *in, ry_attrs *attrs, int n_req,
             const ry_type *req, int n_regions, const int32_t *regions, ry_value *out);
/* Single-result convenience. */
ry_value ryb_emit1(ry_builder *b, ry_loc loc, ry_op op, int n_in, const ry_value *in, ry_attrs *attrs, const ry_type *req);

/* Trace fn as a new region whose parameters have the given types. Writes the
 * region id and the number of results; 0 on error (sticky error set). */
int ryb_trace_region(ry_builder *b, ry_loc loc, const char *what, ry_fn fn, void *ctx, int n_params, const ry_type *types,
                     int32_t *region_out, int *n_results_out);

#endif
