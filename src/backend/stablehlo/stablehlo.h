/* The StableHLO emitter: a graph becomes a textual MLIR module with
 * `func.func @main` and `stablehlo.*` ops in MLIR's generic syntax (the
 * most conservative form, parsed by every StableHLO version).
 *
 * One emission rule per op, in `rys_rules` (rules.c), indexed by op
 * id. A rule writes the instructions for node n and names its results in
 * c->names. Cross-file helpers of this module carry the prefix `rys_`. */
#ifndef RYFT_BACKEND_STABLEHLO_H
#define RYFT_BACKEND_STABLEHLO_H

#include "../../ir/graph.h"
#include "ryft/stablehlo.h"

#define RYS_NAME 32 /* "%n123456#12" and friends */

/* ry_stablehlo_emit with input/output aliasing: input i of @main is marked
 * `tf.aliasing_output = alias[i]` when alias[i] >= 0 (same type as that
 * output; each output at most once), so XLA may write that output over the
 * input's buffer when the buffer is donated at run time. alias may be NULL. */
ry_status rys_emit_aliased(const ry_graph *g, const int *alias, char **out);


typedef struct rys_module rys_module;

typedef struct rys_ctx {
  rys_module *m;
  const ry_graph *g;
  ry__buf *out;
  char (*names)[RYS_NAME]; /* [g->n_values]: SSA name of each value */
  int indent;
  int ntmp;
  ry_status err; /* first error; rules stop emitting after it */
} rys_ctx;

/* A callee made while emitting (an op's expansion into other ops): the
 * module takes the reference and emits it once; rys_owned_callee finds one
 * already adopted by its graph name (NULL: none). */
const char *rys_adopt_callee(rys_ctx *c, ry_graph *callee);
ry_graph *rys_owned_callee(rys_ctx *c, const char *name);

typedef void (*ry_stablehlo_rule)(rys_ctx *c, const ry_node *n);
extern const ry_stablehlo_rule rys_rules[RY_OP_COUNT];

/* ---- helpers (emit.c) ---- */
void rys_printf(rys_ctx *c, const char *fmt, ...) RY_PRINTF(2, 3);
void rys_indent(rys_ctx *c);
/* "tensor<2x3xf32>" into buf (>= 128 bytes). */
const char *rys_type(ry_type t, char *buf);
const char *rys_elem(ry_dtype t); /* "f32", "i1", "ui8" */
void rys_tmp(rys_ctx *c, char name[RYS_NAME]);
void rys_fail(rys_ctx *c, ry_code code, const char *fmt, ...) RY_PRINTF(3, 4);
static inline ry_type rys_vtype(const rys_ctx *c, int32_t v) { return c->g->values[v].type; }

/* One generic op: `res = "op"(args) {attrs} : (in types) -> out types`.
 * res NULL for an op without results; n_out > 1 writes `res:n_out`.
 * attrs is the dictionary body without braces, or NULL. */
void rys_op(rys_ctx *c, const char *res, const char *op, int n_in, const char *const *args, const ry_type *in_types,
            const char *attrs, int n_out, const ry_type *out_types);
/* The same split around regions: rys_op_begin writes `res = "op"(args)`,
 * rys_region_begin opens a region (with block args named by `params`, or none)
 * and rys_region_end closes it; rys_op_end writes attrs and the signature. */
void rys_op_begin(rys_ctx *c, const char *res, int n_out, const char *op, int n_in, const char *const *args);
void rys_region_begin(rys_ctx *c, bool first, int n_params, const char *const *params, const ry_type *types);
void rys_region_end(rys_ctx *c, int n_ret, const char *const *rets, const ry_type *types);
void rys_op_end(rys_ctx *c, const char *attrs, int n_in, const ry_type *in_types, int n_out, const ry_type *out_types);
/* rys_op_end after regions: closes the region list first. */
void rys_op_end_regions(rys_ctx *c, const char *attrs, int n_in, const ry_type *in_types, int n_out,
                        const ry_type *out_types);
/* A splat constant of type t from one element's bytes (little-endian). */
void rys_const_splat(rys_ctx *c, const char *res, ry_type t, const void *elem);
void rys_const_f64(rys_ctx *c, const char *res, ry_type t, double v);
void rys_const_i64(rys_ctx *c, const char *res, ry_type t, int64_t v);
/* A full constant from an array (any dtype). */
void rys_const_array(rys_ctx *c, const char *res, const ry_array *a);
/* Emit region r of the graph as a region body whose parameters are
 * already named; writes the `stablehlo.return` (or `func.return`), or no
 * return at all when ret_op is NULL. */
void rys_emit_region_body(rys_ctx *c, int32_t r, const char *ret_op, int n_extra_ret, const char *const *extra_ret,
                          const ry_type *extra_types);
/* The name under which @callee is emitted in this module (queued once). */
const char *rys_callee_name(rys_ctx *c, const ry_graph *callee);
/* "[1, 2]" for attributes such as #stablehlo.dot<...>; "array<i64: 1, 2>". */
char *rys_list(char *buf, size_t size, const ry_axes *a);
char *rys_array_i64(char *buf, size_t size, const ry_axes *a);

/* XLA's HloSharding text for a value split as `dims` over `mesh` (the
 * sharding op's attributes): "{replicated}" or "{devices=[2,1]0,1}". */
#define RYS_SHARDING 8192
char *rys_sharding_str(const ry_axes *mesh, const ry_axes *dims, char *buf, size_t size);

/* The sharding of input (or output) i of g's body: true when it is given by a
 * sharding op (the first one applied to the input; the one defining the
 * output), with its mesh and dims. has_any: g's body has a sharding op. */
bool rys_io_sharding(const ry_graph *g, bool input, int i, ry_axes *mesh, ry_axes *dims);
bool rys_has_sharding(const ry_graph *g);

#endif
