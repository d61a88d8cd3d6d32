/* The IR: op ids from ops.def, typed attributes, and the graph data
 * structure shared by the builder, parser, printer, verifier, transforms and
 * backends.
 *
 * A graph is flat tables indexed by int32 ids:
 *   values[v]   type, defining node (or -1 for a region parameter), region;
 *               value id 0 is reserved as "invalid".
 *   nodes[n]    op, operands/results (offsets into the int pool), attributes,
 *               nested region ids, source location.
 *   regions[r]  parameters, nodes in order, results. Region 0 is the graph's
 *               body: its params are the graph inputs, its results the outputs.
 * Regions are closed: a node in region r uses only values defined in r
 * (parameters or results of earlier nodes of r). */
#ifndef RYFT_IR_GRAPH_H
#define RYFT_IR_GRAPH_H

#include "../core/internal.h"
#include "ryft/graph.h"

typedef enum ry_op {
#define OP(id, name, nin, nout, attrs, kind, dt, fl) RY_OP_##id,
#include "ops.def"
#undef OP
  RY_OP_COUNT
} ry_op;

/* Attribute schemas: which member of ry_attrs an op uses. */
typedef enum ry_attr_kind {
  RY_ATTR_NONE, RY_ATTR_COMPARE, RY_ATTR_BROADCAST, RY_ATTR_TRANSPOSE, RY_ATTR_SLICE,
  RY_ATTR_DYNAMIC_SLICE, RY_ATTR_CONCATENATE, RY_ATTR_PAD, RY_ATTR_REVERSE, RY_ATTR_IOTA,
  RY_ATTR_CONSTANT, RY_ATTR_REDUCE, RY_ATTR_ARG, RY_ATTR_CUMULATIVE, RY_ATTR_WINDOW, RY_ATTR_DOT, RY_ATTR_CONV,
  RY_ATTR_GATHER, RY_ATTR_SCATTER, RY_ATTR_SORT, RY_ATTR_WHILE, RY_ATTR_SCAN, RY_ATTR_CALL, RY_ATTR_CUSTOM,
  RY_ATTR_ALL_REDUCE, RY_ATTR_ALL_GATHER, RY_ATTR_REDUCE_SCATTER, RY_ATTR_COLLECTIVE_BROADCAST, RY_ATTR_SHARDING, RY_ATTR_QUANT,
  RY_ATTR_KIND_COUNT
} ry_attr_kind;

/* Shape-rule families. */
typedef enum ry_op_kind {
  RY_KIND_UNARY, RY_KIND_UNARY_PRED, RY_KIND_BINARY, RY_KIND_COMPARE, RY_KIND_SELECT, RY_KIND_CLAMP,
  RY_KIND_CONVERT, RY_KIND_BITCAST, RY_KIND_BROADCAST, RY_KIND_RESHAPE, RY_KIND_TRANSPOSE, RY_KIND_SLICE,
  RY_KIND_DYNAMIC_SLICE, RY_KIND_DYNAMIC_UPDATE_SLICE, RY_KIND_CONCATENATE, RY_KIND_PAD, RY_KIND_REVERSE,
  RY_KIND_IOTA, RY_KIND_CONSTANT, RY_KIND_REDUCE, RY_KIND_ARG, RY_KIND_CUMULATIVE, RY_KIND_REDUCE_WINDOW,
  RY_KIND_SELECT_AND_SCATTER, RY_KIND_SELECT_AND_GATHER, RY_KIND_DOT, RY_KIND_CONV,
  RY_KIND_GATHER, RY_KIND_SCATTER, RY_KIND_SORT, RY_KIND_THREEFRY, RY_KIND_DEQUANTIZE, RY_KIND_COND, RY_KIND_WHILE, RY_KIND_SCAN, RY_KIND_CALL,
  RY_KIND_CUSTOM, RY_KIND_ALL_REDUCE, RY_KIND_ALL_GATHER, RY_KIND_REDUCE_SCATTER, RY_KIND_COLLECTIVE_BROADCAST,
  RY_KIND_SHARDING, RY_KIND_COUNT
} ry_op_kind;

/* Operand dtype classes enforced by the shape rules. */
typedef enum ry_dt_class {
  RY_DT_ANY, RY_DT_NUM, RY_DT_SNUM, RY_DT_FLOAT, RY_DT_INT, RY_DT_INTB, RY_DT_CLASS_COUNT
} ry_dt_class;

typedef struct ry_op_info {
  const char *name;
  int n_operands, n_results; /* -1 = variadic */
  ry_attr_kind attrs;
  ry_op_kind kind;
  ry_dt_class dtypes;
  unsigned flags; /* RY_OPF_* */
} ry_op_info;

/* Op flags (the FLAGS column of ops.def) */
#define RY_OPF_NONE 0u
#define RY_OPF_LINEAR 1u /* linear in its tangent operands: reverse mode transposes it */
#define RY_OPF_IMPURE 2u /* opaque: never folded, deduplicated or removed as dead */
/* Elementwise: unary, binary, compare, select, clamp, convert, bitcast (by KIND). */
bool ryg_op_elementwise(ry_op op);
/* A collective (all_reduce, all_gather, reduce_scatter,
 * collective_broadcast): its value depends on the other devices (processes
 * under MPI), so it is never folded to a constant. */
bool ryg_op_collective(ry_op op);

extern const ry_op_info ryg_op_table[RY_OP_COUNT];
bool ryg_op_from_name(const char *name, size_t len, ry_op *out);
const char *ryg_dt_class_name(ry_dt_class c); /* "float", "integer", ... */
bool ryg_dt_class_has(ry_dt_class c, ry_dtype t);

/* Enum names used by the printer, parser and messages. */
extern const char *const ryg_cmp_names[RY_CMP_COUNT];           /* "eq" ... */
extern const char *const ryg_reduce_names[RY_REDUCE_COUNT];     /* "sum" ... */
extern const char *const ryg_scatter_names[RY_SCATTER_COUNT];   /* "replace" ... */

/* Typed attributes; the member is chosen by ryg_op_table[op].attrs. Result
 * types carry the rest (convert dtype, reshape/broadcast/iota shapes, the
 * index dtype of argmax, the dot_general result dtype). */
typedef union ry_attrs {
  struct { ry_cmp dir; } compare;
  struct { ry_axes dims; } broadcast;
  struct { ry_axes perm; } transpose;
  struct { ry_axes start, limit, stride; } slice;
  struct { ry_axes sizes; } dynamic_slice;
  struct { int64_t dim; } concatenate;
  struct { ry_axes low, high, interior; } pad;
  struct { ry_axes dims; } reverse;
  struct { int64_t dim; } iota;
  struct { ry_array *value; } constant;          /* owned reference */
  struct { ry_reduce_kind kind; ry_axes axes; } reduce;
  struct { int64_t axis; } arg;
  struct { ry_reduce_kind kind; int64_t axis; bool reverse; } cumulative;
  /* reduce_window (kind: the reduction), select_and_scatter and
   * select_and_gather (kind: RY_MAX selects the first maximum, RY_MIN the
   * first minimum); normalized: every list has one entry per dimension */
  struct { ry_reduce_kind kind; ry_window_dims w; } window;
  ry_dot_dims dot;
  ry_conv_dims conv;       /* normalized: every list filled, groups >= 1 */
  ry_gather_dims gather;
  ry_scatter_dims scatter;
  struct { int64_t dim, num_keys; bool descending, stable; } sort;
  struct { int64_t n_consts; } while_;
  /* scan: operands (consts..., carry..., xs...); body region (consts...,
   * carry..., x slices...) -> (carry..., y slices...); results (carry...,
   * ys...) with ys stacked along a new leading axis of `length`. */
  struct { int64_t length, n_consts, n_carry; bool reverse; } scan;
  /* call: callee, plus optional differentiation rules (owned references):
   * jvp (custom_jvp): (x..., t...) -> (y..., ty...);
   * fwd/bwd (custom_vjp): fwd x... -> (y..., res...), bwd (res..., ct_y...) -> ct_x...;
   * remat (checkpoint): RY_REMAT_* policy, 0 for a plain call. A call that has
   * only bwd set is the linear half of a custom_vjp: operands (x..., res...,
   * t...), callee computes the tangents by forward mode, bwd transposes it. */
  struct { ry_graph *callee, *jvp, *fwd, *bwd; int64_t remat; } call;
  struct { char *target; } custom;              /* owned (ry__strdup) */
  /* all_reduce (kind), all_gather (dim), reduce_scatter (dim, kind),
   * collective_broadcast (source: the position in its group of the member
   * whose value every member receives): devices form a row-major mesh of
   * shape `mesh` (product = devices the program runs on); a group is the
   * devices whose mesh coordinates differ only along `axes`, ordered
   * row-major over `axes` as listed. */
  struct { ry_reduce_kind kind; int64_t dim, source; ry_axes mesh, axes; } collective;
  /* sharding: dims[i] is the mesh axis that splits dimension i, or -1
   * (replicated along it); mesh axes no dimension uses replicate the value. */
  struct { ry_axes mesh, dims; } sharding;
  /* dequantize: format is the ggml type number (RY_GGML_*); act8 nonzero
   * lets a dot_general that consumes the result on the cpu backend round
   * its other operand to 8-bit blocks (llama.cpp's Q8 activations) */
  struct { int64_t format; bool act8; } quant;
} ry_attrs;

typedef struct ry_valinfo {
  ry_type type;
  int32_t node;   /* defining node, -1 for a region parameter */
  int32_t index;  /* result index in the node, or parameter index */
  int32_t region; /* region the value belongs to */
  char *name;     /* optional (ry__strdup), graph inputs only */
} ry_valinfo;

typedef struct ry_node {
  ry_op op;
  int32_t region;
  int32_t n_operands, operands; /* operands: offset into pool */
  int32_t n_results, results;
  int32_t n_regions, regions;   /* region ids, offset into pool */
  ry_attrs attrs;
  ry_loc loc;                   /* file may be NULL; not owned (string literal or parser-owned) */
} ry_node;

typedef struct ry_region {
  int32_t node;                 /* owning node, -1 for region 0 */
  ry_ivec params, nodes, results;
  /* builder only: values of enclosing regions captured into params */
  ry_ivec cap_outer, cap_param;
} ry_region;

struct ry_graph {
  int refcount;
  char *name;
  ry_valinfo *values;
  int32_t n_values, cap_values;
  ry_node *nodes;
  int32_t n_nodes, cap_nodes;
  ry_region *regions;
  int32_t n_regions, cap_regions;
  int32_t *pool;
  int32_t n_pool, cap_pool;
};

/* Accessors. */
/* (empty lists may point nowhere: the pool is NULL until something is stored) */
static inline const int32_t *ry_node_operands(const ry_graph *g, const ry_node *n) { return g->pool ? g->pool + n->operands : NULL; }
static inline const int32_t *ry_node_results(const ry_graph *g, const ry_node *n) { return g->pool ? g->pool + n->results : NULL; }
static inline const int32_t *ry_node_regions(const ry_graph *g, const ry_node *n) { return g->pool ? g->pool + n->regions : NULL; }
static inline ry_type ry_vtype(const ry_graph *g, int32_t v) { return g->values[v].type; }

/* ---- construction (graph.c) ---- */
ry_graph *ry__graph_new(const char *name); /* NULL on OOM; region 0 created */
/* Shrink a finished graph's arrays to their contents (see graph.c). */
void ry__graph_trim(ry_graph *g);
int32_t ry__graph_add_region(ry_graph *g, int32_t owner_node); /* -1 on OOM */
/* A new parameter of region r; returns value id or -1 on OOM. */
int32_t ry__graph_add_param(ry_graph *g, int32_t r, ry_type t, const char *name);
/* Append a node in region r with operands, results of the given types and
 * nested regions; attributes are copied (constant/callee/target ownership is
 * transferred to the graph). Returns node id or -1 on OOM; result value ids
 * are node results 0..n_results-1. */
int32_t ry__graph_add_node(ry_graph *g, int32_t r, ry_op op, int n_operands, const int32_t *operands, int n_results,
                           const ry_type *result_types, int n_regions, const int32_t *regions, const ry_attrs *attrs,
                           ry_loc loc);
/* The attribute schema (attrs.c): per attribute kind, its fields in print
 * order; the parser, the printer and the functions below walk it. */
typedef enum ryg_ftype {
  RYG_F_AXES, RYG_F_INT, RYG_F_BOOL, RYG_F_CMP, RYG_F_REDUCE, RYG_F_SCATTER, RYG_F_CONST, RYG_F_CALLEE, RYG_F_STRING
} ryg_ftype;
typedef struct ryg_field {
  const char *name;
  ryg_ftype type;
  size_t off;    /* in ry_attrs */
  bool optional; /* may be left out (stays zero); printed only when set */
} ryg_field;
typedef struct ryg_schema {
  const ryg_field *f;
  int n;
} ryg_schema;
extern const ryg_schema ryg_attr_schemas[RY_ATTR_KIND_COUNT];
/* Release the references an attrs struct owns (constant, callee, target). */
void ry__attrs_free(ry_op op, ry_attrs *a);
/* Copy attributes taking new references. false on OOM. */
bool ry__attrs_copy(ry_op op, ry_attrs *dst, const ry_attrs *src);
bool ry__attrs_equal(ry_op op, const ry_attrs *a, const ry_attrs *b);
/* Devices in one group of a collective: the product of mesh[axes] (0 when
 * the attributes are invalid). */
int64_t ry__group_size(const ry_axes *mesh, const ry_axes *axes);

/* ---- shape rules (shape.c) ----
 * A rule checks operand types and attributes and computes result types.
 * `res` arrives filled with `*n_res` requested result types (what the builder
 * asks for or what the parsed text says; ignored by ops that infer
 * everything); its capacity is at least RY_MAX_OUTPUTS entries. The rule
 * writes the final types and their count into res / *n_res. On
 * error it writes a message (without op name or location) into msg and
 * returns the code; the caller adds op name, operand types and location. */
typedef struct ry_rule_ctx {
  ry_op op;
  const ry_attrs *attrs;
  int n_in;
  const ry_type *in;
  const ry_graph *g;        /* for control flow: region signatures */
  int n_regions;
  const int32_t *regions;
  ry_type *res;
  int *n_res;
  char *msg;
  size_t msg_size;
} ry_rule_ctx;
typedef ry_code (*ry_shape_rule)(ry_rule_ctx *c);
extern const ry_shape_rule ryg_shape_rules[RY_OP_COUNT];
/* Run op's rule and format a full error status on failure:
 * "add: shapes f32[2,3] and f32[4] do not match (operands: f32[2,3], f32[4]) at file.c:12" */
ry_status ry__infer(ry_op op, const ry_attrs *attrs, int n_in, const ry_type *in, const ry_graph *g, int n_regions,
                    const int32_t *regions, ry_type *res, int *n_res, ry_loc loc);

/* ---- verifier (verify.c), printer (print.c), parser (parse.c) ---- */

#endif
