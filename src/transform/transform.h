/* Internal interface of the transformations. A transformation is an
 * interpreter of a source graph that emits into a builder ("re-tracing"),
 * like JAX's eval_jaxpr: each source value is mapped to a builder value.
 * Cross-file names carry the prefix `ryt_`. */
#ifndef RYFT_TRANSFORM_INTERNAL_H
#define RYFT_TRANSFORM_INTERNAL_H

#include "../ir/builder.h"
#include "ryft/transform.h"

/* Re-emit node n of g into the builder's current region with the given
 * (already mapped) operands; nested regions are copied. Writes the results to
 * out and returns their count (0 on error, sticky error set). */
int ryt_copy_node(ry_builder *b, const ry_graph *g, const ry_node *n, const ry_value *in, ry_value *out);
/* Emit the nodes of region r of g into the current region with the region's
 * parameters bound to args; writes the region's results to out. Returns the
 * result count (0 with the sticky error set on failure; a region may have 0
 * results, so check ryb_ok). */
int ryt_inline_region(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *args, ry_value *out);
/* ryt_inline_region, inlining plain calls inside too. */
int ryt_inline_region_all(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *args, ry_value *out);
/* A copy of g with every call inlined (transforms work on call-free graphs). */
ry_status ryt_inline_calls(ry_graph *g, ry_graph **out);

/* A call without differentiation rules or remat, which transforms inline. */
static inline bool ryt_call_is_plain(const ry_attrs *a) {
  return !a->call.jvp && !a->call.fwd && !a->call.bwd && !a->call.remat;
}
/* The tangent half of the JVP of g: a graph (x..., t...) -> (ty...) with
 * every output tangent materialized. */
ry_status ryt_jvp_tangent_graph(ry_graph *g, ry_graph **out);

/* Zeros / ones shaped like a type. */
ry_value ryt_zeros(ry_builder *b, ry_loc loc, ry_type t);
ry_value ryt_full_like(ry_builder *b, ry_loc loc, ry_type t, double v);
/* Primitive emission helpers with exact types (no promotion). */
ry_value ryt_emit1(ry_builder *b, ry_loc loc, ry_op op, int n, const ry_value *in, ry_attrs *a, const ry_type *req);

/* ---- forward mode (jvp.c) ---- */
typedef struct ryt_jvp_args {
  ry_builder *b;
  ry_loc loc;
  const ry_graph *g;
  const ry_node *n;
  const ry_value *x;    /* primal operands (in the builder) */
  const ry_value *tx;   /* their tangents; id 0 = symbolic zero */
  const ry_value *y;    /* primal results, already emitted */
  ry_value *ty;         /* out: tangents of the results (id 0 = zero) */
  ry_value *y_override; /* out: rules that recompute the primal (cond, while) put new results here */
} ryt_jvp_args;
typedef void (*ry_jvp_rule)(ryt_jvp_args *a);
extern const ry_jvp_rule ryt_jvp_rules[RY_OP_COUNT];
/* JVP of region r of g with primals x and tangents tx (id 0 = zero); writes
 * results y and tangents ty; returns the count. */
int ryt_jvp_region(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *x, const ry_value *tx, ry_value *y, ry_value *ty);
/* The same, where subst[node id] (when non-zero) replaces that node's
 * single primal result instead of recomputing it (checkpoint's saved dots). */
int ryt_jvp_region_subst(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *x, const ry_value *tx, ry_value *y,
                         ry_value *ty, const ry_value *subst);
/* jvp_array.c: the rules of reduce, cumulative and sort, and JAX's
 * _balanced_eq (1 where x alone is the max/min result z, 1/2 where y ties
 * it, 0 elsewhere and where z is NaN). */
void ryt_jvp_reduce(ryt_jvp_args *a);
void ryt_jvp_cumulative(ryt_jvp_args *a);
void ryt_jvp_sort(ryt_jvp_args *a);
void ryt_jvp_window(ryt_jvp_args *a); /* reduce_window, select_and_scatter, select_and_gather */
ry_value ryt_balanced_eq(ryt_jvp_args *a, ry_value x, ry_value z, ry_value y);
/* Tangent t, or zeros of type `like` when t is a symbolic zero. */
ry_value ryt_materialize(ry_builder *b, ry_loc loc, ry_value t, ry_type like);

/* ---- reverse mode (transpose.c, grad.c) ---- */
typedef struct ryt_tr_args {
  ry_builder *b;
  ry_loc loc;
  const ry_graph *g;   /* the linearized (JVP) graph */
  const ry_node *n;
  const bool *lin;     /* per operand: part of the linear (tangent) computation */
  const ry_value *x;   /* per operand: its primal value in the builder (id 0 for linear operands) */
  const ry_value *ct;  /* per result: cotangent (never a symbolic zero) */
  ry_value *ct_in;     /* out: cotangent per linear operand (id 0 = zero) */
} ryt_tr_args;
typedef void (*ry_transpose_rule)(ryt_tr_args *a);
extern const ry_transpose_rule ryt_transpose_rules[RY_OP_COUNT]; /* NULL: not a linear op */
ry_transpose_rule ryt_transpose_rule(ry_op op);                 /* never NULL */
/* The gather that reads back the windows scatter `d` writes. */
ry_gather_dims ryt_scatter_as_gather(const ry_scatter_dims *d, ry_shape operand, ry_shape updates);

/* ---- vectorizing map (vmap.c) ---- */
typedef struct ryt_vmap_args {
  ry_builder *b;
  ry_loc loc;
  const ry_graph *g;
  const ry_node *n;
  int64_t size;       /* the batch size */
  const ry_value *x;  /* operands in the builder; a batched one has the batch at axis 0 */
  const bool *bx;     /* per operand: batched (at least one is) */
  ry_value *y;        /* out: results */
  bool *by;           /* out: per result: batched (then at axis 0) */
} ryt_vmap_args;
typedef void (*ry_batch_rule)(ryt_vmap_args *a);
extern const ry_batch_rule ryt_batch_rules[RY_OP_COUNT];
/* Batch region r of g over `size` lanes: parameters x with flags bx; writes
 * results y with flags by; returns the count (0 with the sticky error set on
 * failure). */
int ryt_vmap_region(ry_builder *b, const ry_graph *g, int32_t r, int64_t size, const ry_value *x, const bool *bx, ry_value *y,
                    bool *by);

static inline bool ryt_is_float(ry_type t) { return ry_dtype_is_float(t.dtype); }

/* Comparisons for rules that define B (the builder) and L (the location of
 * the node being transformed): errors name the user's call site, not the
 * rule's own file and line as ry_eq & co would. */
#define CMP_EQ(x, y) ry_compare_(B, L, (x), (y), RY_EQ)
#define CMP_NE(x, y) ry_compare_(B, L, (x), (y), RY_NE)
#define CMP_LT(x, y) ry_compare_(B, L, (x), (y), RY_LT)
#define CMP_LE(x, y) ry_compare_(B, L, (x), (y), RY_LE)
#define CMP_GT(x, y) ry_compare_(B, L, (x), (y), RY_GT)
#define CMP_GE(x, y) ry_compare_(B, L, (x), (y), RY_GE)

#endif
