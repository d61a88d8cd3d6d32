/* The reference interpreter: one kernel per op, evaluated node by node.
 *
 * A kernel reads its operand arrays `in` (n->n_operands of them, types as in
 * the graph) and sets every `out[i]` (n->n_results of them) to an array of
 * the node's declared result type. On failure it returns a status and leaves
 * `out` as it found it or partly filled; the evaluator releases whatever was
 * set. The evaluator adds the op name and location to the message, so a
 * kernel's message says only what went wrong.
 *
 * Cross-file helpers of this module carry the prefix `ryi_`. */
#ifndef RYFT_BACKEND_INTERP_H
#define RYFT_BACKEND_INTERP_H

#include "../../runtime/backend.h"
#include "../xla_scalar.h"

/* f32 functions over arrays that a frame may compute instead of libm's
 * element by element: the cpu backend's runs node by node pass those its
 * compiled kernels compute (the same bits, vectorized); NULL members and a
 * NULL table mean libm. */
typedef struct ryi_math {
  void (*exp_f32)(const float *x, float *y, int64_t n);
  void (*erf_f32)(const float *x, float *y, int64_t n);
} ryi_math;

/* One invocation of a graph: its value table and last-use table. Regions of
 * the graph share them (regions never run re-entrantly within one graph). */
typedef struct ryi_frame {
  const ry_graph *g;
  ry_array **vals;   /* [g->n_values] */
  int32_t *last_use; /* [g->n_values]: position of the last using node in its region; -1 unused; INT32_MAX region result */
  const ryi_math *math; /* NULL: libm (the interpreter's own semantics) */
} ryi_frame;

typedef ry_status (*ry_interp_kernel)(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
extern const ry_interp_kernel ryi_kernels[RY_OP_COUNT];

/* Evaluate region r of f->g on n_in arrays; sets out[0..results) (new
 * references). */
/* Evaluate node n: its operands from f->vals, its results stored there; an
 * error names the op and the node's source location. The cpu backend runs
 * the nodes it does not compile through this. */
ry_status ryi_eval_node(const ryi_frame *f, const ry_node *n);
ry_status ryi_eval_region(const ryi_frame *f, int32_t r, int n_in, ry_array *const *in, ry_array **out);
/* Run region 0 of g (a fresh frame). */
ry_status ryi_run_graph(const ry_graph *g, int n_in, ry_array *const *in, int n_out, ry_array **out);

/* ---- helpers (interp.c) ---- */
/* A new zeroed array of the node's i-th result type into *out. */
ry_status ryi_new_result(const ryi_frame *f, const ry_node *n, int i, ry_array **out);
/* The same, not zeroed: for kernels that write every element. */
ry_status ryi_new_result_uninit(const ryi_frame *f, const ry_node *n, int i, ry_array **out);
static inline ry_type ryi_result_type(const ryi_frame *f, const ry_node *n, int i) {
  return ry_vtype(f->g, ry_node_results(f->g, n)[i]);
}
/* Store a double with one correct rounding also for f16/bf16 (ry__store_f64
 * rounds through f32 first, which can double-round). */
void ryi_store_f64(ry_dtype t, void *data, int64_t i, double v);
/* Advance a row-major multi-index over `shape`; false after the last one. */
static inline bool ryi_next(int64_t *idx, const ry_shape *shape) {
  for (int d = shape->rank - 1; d >= 0; d--) {
    if (++idx[d] < shape->dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}
/* The collectives across the processes of an MPI job (collective_dist.c):
 * x combined into o, the node's new result. */
ry_status ryi_dist_all_reduce(const ry_node *n, const ry_array *x, ry_array *o);
ry_status ryi_dist_all_gather(const ry_node *n, const ry_array *x, ry_array *o);
ry_status ryi_dist_reduce_scatter(const ry_node *n, const ry_array *x, ry_array *o);
ry_status ryi_dist_collective_broadcast(const ry_node *n, const ry_array *x, ry_array *o);
static inline int ryi_bits(ry_dtype t) { return (int)(8 * ry_dtype_size(t)); }
/* An integer as ry__load_i64 gives it, as a key whose signed order is the
 * dtype's order: u64 values of 2^63 and more load negative, so their sign
 * bit is flipped (every other dtype fits an int64 as it is). */
static inline int64_t ryi_ikey(ry_dtype t, int64_t v) {
  return t == RY_U64 ? (int64_t)((uint64_t)v ^ (UINT64_C(1) << 63)) : v;
}

/* ---- kernels, one family per file ---- */
/* elementwise.c */
ry_status ryi_unary(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_binary(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_compare(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_select(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_clamp(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_convert(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_bitcast(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* shape_ops.c */
ry_status ryi_broadcast(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_reshape(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_transpose(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_slice(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_dynamic_slice(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_dynamic_update_slice(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* dynamic_update_slice's write: u into o at the clamped starts (scalar
 * arrays, one per dim of o); the cpu backend calls it on a dying operand */
void ryi_update_slice(ry_array *o, const ry_array *u, ry_array *const *starts);
/* scatter node n's updates into o, which holds the operand (in place) */
ry_status ryi_scatter_into(const ry_node *n, ry_array *o, const ry_array *ind, const ry_array *upd);
ry_status ryi_concatenate(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_pad(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_reverse(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_iota(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_constant(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* reduce.c */
ry_status ryi_reduce(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_argmax(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_cumulative(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_reduce_window(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_select_and_scatter(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_select_and_gather(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* dot_conv.c */
ry_status ryi_dot_general(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_convolution(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* gather_scatter.c */
ry_status ryi_gather(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_scatter(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* sort.c */
ry_status ryi_sort(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* random.c */
ry_status ryi_threefry(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_dequantize(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
void ryi_threefry2x32(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t out[2]);
/* interp.c: control flow and calls */
ry_status ryi_cond(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_while(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_scan(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_call(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_custom_call(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
/* collective.c: collectives (one device: see the file) and sharding */
ry_status ryi_all_reduce(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_all_gather(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_reduce_scatter(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_collective_broadcast(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);
ry_status ryi_sharding(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out);

#endif
