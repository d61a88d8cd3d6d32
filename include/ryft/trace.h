/* ryft/trace.h - building programs: builders, values, ops and composites.
 *
 * A program is traced by running ordinary C code against a builder. Values
 * (`ry_value`) are small handles owned by the builder; user code never frees
 * them. Errors are sticky: the first shape/dtype/argument error is recorded
 * with the op name, the operand types and the caller's file:line, every later
 * op returns an invalid value and does nothing, and ry_trace/ry_builder_finish
 * return that first error.
 *
 * Every op below is a macro that captures __FILE__/__LINE__ and calls the
 * function of the same name with a trailing underscore; call the `_` form with
 * an explicit ry_loc to forward a location (composites do this).
 *
 * User-level elementwise ops follow NumPy: operands are broadcast against each
 * other and promoted with ry_promote() before the primitive is emitted. */
#ifndef RYFT_TRACE_H
#define RYFT_TRACE_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ry_builder ry_builder;
typedef struct ry_graph ry_graph;
typedef struct ry_value { uint32_t id; } ry_value; /* id 0 = invalid */
typedef struct ry_loc { const char *file; int line; } ry_loc;
#define RY_HERE ((ry_loc){__FILE__, __LINE__})

/* An axis list / small integer list (axes, permutations, sizes). */
typedef struct ry_axes { int n; int64_t v[RY_MAX_RANK]; } ry_axes;
#define RY_AXES(...) ((ry_axes){(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}})
#define RY_NO_AXES ((ry_axes){0, {0}})

/* ---- tracing ----------------------------------------------------------- */

/* The traced function: reads inputs `in`, writes its outputs into `out`
 * (room for RY_MAX_OUTPUTS) and returns how many it wrote (0..). Returning a
 * negative number aborts the trace with RY_ERR_INVALID_ARGUMENT. */
#define RY_MAX_OUTPUTS 1024
typedef int (*ry_fn)(ry_builder *b, const ry_value *in, ry_value *out, void *ctx);

/* Trace fn over inputs of the given types into a new graph (refcount 1).
 * `name` names the graph (NULL = "main"); input_names may be NULL. */
RY_API ry_status ry_trace(const char *name, ry_fn fn, void *ctx, int n_in, const ry_type *in_types,
                   const char *const *input_names, ry_graph **out);

/* The same without a callback: make a builder, add inputs, add ops, finish. */
RY_API ry_builder *ry_builder_new(const char *name); /* NULL on out of memory */
RY_API ry_value ry_input(ry_builder *b, const char *name, ry_type type); /* name may be NULL */
/* Finish with the given outputs. Consumes the builder in all cases. */
RY_API ry_status ry_builder_finish(ry_builder *b, int n_out, const ry_value *outs, ry_graph **out);
RY_API void ry_builder_free(ry_builder *b); /* discard without finishing */
/* The builder's sticky error (NULL while none); owned by the builder. */
RY_API ry_status ry_builder_error(const ry_builder *b);
/* Record err as the builder's sticky error unless one is set already (then
 * err is freed), for libraries that build on the tracer (ryft/params.h).
 * NULL b frees err. Returns 0. */
RY_API int ry_builder_set_error(ry_builder *b, ry_status err);
/* Matmul precision of the f32 products traced on b from here on (JAX's
 * default_matmul_precision; PyTorch's autocast for matmuls). RY_F32, the
 * default: f32 products in f32. RY_BF16: a dot_general of f32 operands with
 * an f32 result is traced as convert(dot_general(bf16(lhs), bf16(rhs)) ->
 * bf16, f32): operands rounded to bf16, products summed in f32, the result
 * rounded to bf16 and widened back; an operand that is bf16 already (a
 * frozen weight stored in bf16) is used as it is. The graph says so
 * explicitly, so every backend runs it (the cpu backend as a bf16 GEMM) and
 * the backward pass of such a product is bf16 products too. Other
 * dot_generals (f64, integers) are untouched. Any other dtype sets b's error. Returns 0 on error. */
RY_API int ry_builder_set_matmul_dtype(ry_builder *b, ry_dtype compute);
RY_API ry_dtype ry_builder_matmul_dtype(const ry_builder *b); /* RY_F32 unless set */

/* The type of a value (an all-zero f32 scalar type for an invalid value). */
RY_API ry_type ry_value_type(const ry_builder *b, ry_value v);
RY_API ry_dtype ry_value_dtype(const ry_builder *b, ry_value v);
RY_API ry_shape ry_value_shape(const ry_builder *b, ry_value v);
RY_API int ry_value_ok(ry_value v); /* id != 0 */

/* ---- constants --------------------------------------------------------- */

RY_API ry_value ry_constant_(ry_builder *b, ry_loc loc, const ry_array *a); /* retains a */
RY_API ry_value ry_full_(ry_builder *b, ry_loc loc, ry_dtype t, ry_shape s, double v);
RY_API ry_value ry_scalar_(ry_builder *b, ry_loc loc, ry_dtype t, double v);
RY_API ry_value ry_iota_(ry_builder *b, ry_loc loc, ry_dtype t, ry_shape s, int dim);
#define ry_constant(b, a) ry_constant_((b), RY_HERE, (a))
#define ry_full(b, t, s, v) ry_full_((b), RY_HERE, (t), (s), (v))
#define ry_scalar(b, t, v) ry_scalar_((b), RY_HERE, (t), (v))
#define ry_iota(b, t, s, dim) ry_iota_((b), RY_HERE, (t), (s), (dim))

/* ---- elementwise ------------------------------------------------------- */

#define RY__UNARY(X)                                                                     \
  X(neg) X(abs) X(sign) X(exp) X(exp2) X(log) X(log1p) X(expm1) X(sqrt) X(rsqrt) X(cbrt) \
  X(sin) X(cos) X(tan) X(tanh) X(logistic) X(erf) X(erf_inv) X(atanh) X(floor) X(ceil) X(round)  \
  X(round_even) X(is_finite) X(not) X(popcnt) X(clz)
#define RY__BINARY(X)                                                                   \
  X(add) X(sub) X(mul) X(div) X(rem) X(pow) X(max) X(min) X(atan2) X(and) X(or) X(xor) \
  X(shift_left) X(shift_right_logical) X(shift_right_arithmetic)
#define RY__DECL_UNARY(n) RY_API ry_value ry_##n##_(ry_builder *b, ry_loc loc, ry_value x);
#define RY__DECL_BINARY(n) RY_API ry_value ry_##n##_(ry_builder *b, ry_loc loc, ry_value x, ry_value y);
RY__UNARY(RY__DECL_UNARY)
RY__BINARY(RY__DECL_BINARY)
#undef RY__DECL_UNARY
#undef RY__DECL_BINARY
#define ry_neg(b, x) ry_neg_((b), RY_HERE, (x))
#define ry_abs(b, x) ry_abs_((b), RY_HERE, (x))
#define ry_sign(b, x) ry_sign_((b), RY_HERE, (x))
#define ry_exp(b, x) ry_exp_((b), RY_HERE, (x))
#define ry_exp2(b, x) ry_exp2_((b), RY_HERE, (x))
#define ry_log(b, x) ry_log_((b), RY_HERE, (x))
#define ry_log1p(b, x) ry_log1p_((b), RY_HERE, (x))
#define ry_expm1(b, x) ry_expm1_((b), RY_HERE, (x))
#define ry_sqrt(b, x) ry_sqrt_((b), RY_HERE, (x))
#define ry_rsqrt(b, x) ry_rsqrt_((b), RY_HERE, (x))
#define ry_cbrt(b, x) ry_cbrt_((b), RY_HERE, (x))
#define ry_sin(b, x) ry_sin_((b), RY_HERE, (x))
#define ry_cos(b, x) ry_cos_((b), RY_HERE, (x))
#define ry_tan(b, x) ry_tan_((b), RY_HERE, (x))
#define ry_tanh(b, x) ry_tanh_((b), RY_HERE, (x))
#define ry_logistic(b, x) ry_logistic_((b), RY_HERE, (x))
#define ry_erf(b, x) ry_erf_((b), RY_HERE, (x))
#define ry_erf_inv(b, x) ry_erf_inv_((b), RY_HERE, (x))
#define ry_atanh(b, x) ry_atanh_((b), RY_HERE, (x))
#define ry_floor(b, x) ry_floor_((b), RY_HERE, (x))
#define ry_ceil(b, x) ry_ceil_((b), RY_HERE, (x))
#define ry_round(b, x) ry_round_((b), RY_HERE, (x))
#define ry_round_even(b, x) ry_round_even_((b), RY_HERE, (x))
#define ry_is_finite(b, x) ry_is_finite_((b), RY_HERE, (x))
#define ry_not(b, x) ry_not_((b), RY_HERE, (x))
#define ry_popcnt(b, x) ry_popcnt_((b), RY_HERE, (x))
#define ry_clz(b, x) ry_clz_((b), RY_HERE, (x)) /* leading zero bits (the width for 0) */
#define ry_add(b, x, y) ry_add_((b), RY_HERE, (x), (y))
#define ry_sub(b, x, y) ry_sub_((b), RY_HERE, (x), (y))
#define ry_mul(b, x, y) ry_mul_((b), RY_HERE, (x), (y))
#define ry_div(b, x, y) ry_div_((b), RY_HERE, (x), (y))
#define ry_rem(b, x, y) ry_rem_((b), RY_HERE, (x), (y))
#define ry_pow(b, x, y) ry_pow_((b), RY_HERE, (x), (y))
#define ry_max(b, x, y) ry_max_((b), RY_HERE, (x), (y))
#define ry_min(b, x, y) ry_min_((b), RY_HERE, (x), (y))
#define ry_atan2(b, x, y) ry_atan2_((b), RY_HERE, (x), (y))
#define ry_and(b, x, y) ry_and_((b), RY_HERE, (x), (y))
#define ry_or(b, x, y) ry_or_((b), RY_HERE, (x), (y))
#define ry_xor(b, x, y) ry_xor_((b), RY_HERE, (x), (y))
#define ry_shift_left(b, x, y) ry_shift_left_((b), RY_HERE, (x), (y))
#define ry_shift_right_logical(b, x, y) ry_shift_right_logical_((b), RY_HERE, (x), (y))
#define ry_shift_right_arithmetic(b, x, y) ry_shift_right_arithmetic_((b), RY_HERE, (x), (y))

typedef enum ry_cmp { RY_EQ, RY_NE, RY_LT, RY_LE, RY_GT, RY_GE, RY_CMP_COUNT } ry_cmp;
RY_API ry_value ry_compare_(ry_builder *b, ry_loc loc, ry_value x, ry_value y, ry_cmp dir);
#define ry_compare(b, x, y, dir) ry_compare_((b), RY_HERE, (x), (y), (dir))
#define ry_eq(b, x, y) ry_compare_((b), RY_HERE, (x), (y), RY_EQ)
#define ry_ne(b, x, y) ry_compare_((b), RY_HERE, (x), (y), RY_NE)
#define ry_lt(b, x, y) ry_compare_((b), RY_HERE, (x), (y), RY_LT)
#define ry_le(b, x, y) ry_compare_((b), RY_HERE, (x), (y), RY_LE)
#define ry_gt(b, x, y) ry_compare_((b), RY_HERE, (x), (y), RY_GT)
#define ry_ge(b, x, y) ry_compare_((b), RY_HERE, (x), (y), RY_GE)
/* select(pred, a, b): pred is bool; all three broadcast. */
RY_API ry_value ry_select_(ry_builder *b, ry_loc loc, ry_value pred, ry_value on_true, ry_value on_false);
#define ry_select(b, p, t, f) ry_select_((b), RY_HERE, (p), (t), (f))
RY_API ry_value ry_clamp_(ry_builder *b, ry_loc loc, ry_value lo, ry_value x, ry_value hi);
#define ry_clamp(b, lo, x, hi) ry_clamp_((b), RY_HERE, (lo), (x), (hi))
RY_API ry_value ry_convert_(ry_builder *b, ry_loc loc, ry_value x, ry_dtype to);
#define ry_convert(b, x, to) ry_convert_((b), RY_HERE, (x), (to))
RY_API ry_value ry_bitcast_convert_(ry_builder *b, ry_loc loc, ry_value x, ry_dtype to);
#define ry_bitcast_convert(b, x, to) ry_bitcast_convert_((b), RY_HERE, (x), (to))

/* ---- shape ops ----------------------------------------------------------- */

RY_API ry_value ry_broadcast_in_dim_(ry_builder *b, ry_loc loc, ry_value x, ry_shape shape, ry_axes dims);
#define ry_broadcast_in_dim(b, x, s, d) ry_broadcast_in_dim_((b), RY_HERE, (x), (s), (d))
/* NumPy broadcast of x to shape (trailing alignment). */
RY_API ry_value ry_broadcast_to_(ry_builder *b, ry_loc loc, ry_value x, ry_shape shape);
#define ry_broadcast_to(b, x, s) ry_broadcast_to_((b), RY_HERE, (x), (s))
/* reshape; at most one dim of `shape` may be -1 (inferred). */
RY_API ry_value ry_reshape_(ry_builder *b, ry_loc loc, ry_value x, ry_shape shape);
#define ry_reshape(b, x, s) ry_reshape_((b), RY_HERE, (x), (s))
RY_API ry_value ry_transpose_(ry_builder *b, ry_loc loc, ry_value x, ry_axes perm);
#define ry_transpose(b, x, p) ry_transpose_((b), RY_HERE, (x), (p))
/* strides may be RY_NO_AXES (all 1). */
RY_API ry_value ry_slice_(ry_builder *b, ry_loc loc, ry_value x, ry_axes start, ry_axes limit, ry_axes strides);
#define ry_slice(b, x, st, li, str) ry_slice_((b), RY_HERE, (x), (st), (li), (str))
/* starts: rank integer scalars; clamped into range. */
RY_API ry_value ry_dynamic_slice_(ry_builder *b, ry_loc loc, ry_value x, const ry_value *starts, ry_axes sizes);
#define ry_dynamic_slice(b, x, st, sz) ry_dynamic_slice_((b), RY_HERE, (x), (st), (sz))
RY_API ry_value ry_dynamic_update_slice_(ry_builder *b, ry_loc loc, ry_value x, ry_value update, const ry_value *starts);
#define ry_dynamic_update_slice(b, x, u, st) ry_dynamic_update_slice_((b), RY_HERE, (x), (u), (st))
RY_API ry_value ry_concatenate_(ry_builder *b, ry_loc loc, int n, const ry_value *xs, int dim);
#define ry_concatenate(b, n, xs, dim) ry_concatenate_((b), RY_HERE, (n), (xs), (dim))
/* interior may be RY_NO_AXES (all 0). */
RY_API ry_value ry_pad_(ry_builder *b, ry_loc loc, ry_value x, ry_value value, ry_axes low, ry_axes high, ry_axes interior);
#define ry_pad(b, x, v, lo, hi, in) ry_pad_((b), RY_HERE, (x), (v), (lo), (hi), (in))
RY_API ry_value ry_reverse_(ry_builder *b, ry_loc loc, ry_value x, ry_axes dims);
#define ry_reverse(b, x, d) ry_reverse_((b), RY_HERE, (x), (d))

/* ---- reductions and scans ------------------------------------------------ */

typedef enum ry_reduce_kind { RY_SUM, RY_PROD, RY_MAX, RY_MIN, RY_AND, RY_OR, RY_REDUCE_COUNT } ry_reduce_kind;
RY_API ry_value ry_reduce_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, ry_axes axes);
#define ry_reduce(b, x, k, axes) ry_reduce_((b), RY_HERE, (x), (k), (axes))
#define ry_sum(b, x, axes) ry_reduce_((b), RY_HERE, (x), RY_SUM, (axes))
/* Index of the max/min along axis (negative counts from the end). */
RY_API ry_value ry_argmax_(ry_builder *b, ry_loc loc, ry_value x, int axis, ry_dtype index_dtype);
RY_API ry_value ry_argmin_(ry_builder *b, ry_loc loc, ry_value x, int axis, ry_dtype index_dtype);
#define ry_argmax(b, x, axis) ry_argmax_((b), RY_HERE, (x), (axis), RY_I32)
#define ry_argmin(b, x, axis) ry_argmin_((b), RY_HERE, (x), (axis), RY_I32)
/* Inclusive scan: kind is RY_SUM, RY_PROD, RY_MAX or RY_MIN. */
RY_API ry_value ry_cumulative_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, int axis, int reverse);
#define ry_cumsum(b, x, axis) ry_cumulative_((b), RY_HERE, (x), RY_SUM, (axis), 0)
#define ry_cummax(b, x, axis) ry_cumulative_((b), RY_HERE, (x), RY_MAX, (axis), 0)
#define ry_cumulative(b, x, k, axis, rev) ry_cumulative_((b), RY_HERE, (x), (k), (axis), (rev))

/* Windows over every dimension of an operand (StableHLO's reduce_window):
 * the operand is dilated by base_dilation (holes between elements), padded by
 * pad_low/pad_high (negative crops), and a window of `window` elements,
 * spaced by window_dilation, moves by `stride`. One entry per dimension; an
 * empty list means all 1 (all 0 for padding). Holes and padding hold the
 * reduction's identity. */
typedef struct ry_window_dims {
  ry_axes window, stride, base_dilation, window_dilation, pad_low, pad_high;
} ry_window_dims;
/* Reduce each window: max pooling is RY_MAX, sum (average) pooling RY_SUM. */
RY_API ry_value ry_reduce_window_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, const ry_window_dims *w);
#define ry_reduce_window(b, x, k, w) ry_reduce_window_((b), RY_HERE, (x), (k), (w))
/* Max pooling's gradient (kind RY_MAX; RY_MIN for min): zeros shaped like x
 * plus each element of `source` (shaped like the windows' result) added at
 * the first maximum of its window of x. No dilations. */
RY_API ry_value ry_select_and_scatter_(ry_builder *b, ry_loc loc, ry_value x, ry_value source, ry_reduce_kind kind,
                                       const ry_window_dims *w);
#define ry_select_and_scatter(b, x, s, k, w) ry_select_and_scatter_((b), RY_HERE, (x), (s), (k), (w))
/* Its transpose: for each window of x, t (shaped like x) at the window's
 * first maximum (0 for a window of padding only). */
RY_API ry_value ry_select_and_gather_(ry_builder *b, ry_loc loc, ry_value x, ry_value t, ry_reduce_kind kind,
                                      const ry_window_dims *w);
#define ry_select_and_gather(b, x, t, k, w) ry_select_and_gather_((b), RY_HERE, (x), (t), (k), (w))

/* ---- contractions -------------------------------------------------------- */

typedef struct ry_dot_dims {
  ry_axes lhs_batch, rhs_batch, lhs_contract, rhs_contract;
} ry_dot_dims;
/* result dtype = `out` (pass the operands' dtype for the ordinary case). */
RY_API ry_value ry_dot_general_(ry_builder *b, ry_loc loc, ry_value lhs, ry_value rhs, ry_dot_dims dims, ry_dtype out);
#define ry_dot_general(b, l, r, d, t) ry_dot_general_((b), RY_HERE, (l), (r), (d), (t))

typedef struct ry_conv_dims {
  /* one entry per spatial dim; an empty list means all 1 (all 0 for padding) */
  ry_axes stride, pad_low, pad_high, lhs_dilation, rhs_dilation;
  int64_t feature_groups, batch_groups; /* 0 means 1 */
  /* [batch, feature, spatial...] of lhs; [out feature, in feature, spatial...]
   * of rhs; [batch, feature, spatial...] of the result. Empty lists mean the
   * NCHW / OIHW / NCHW layout. */
  ry_axes input_dims, kernel_dims, output_dims;
} ry_conv_dims;
RY_API ry_value ry_convolution_(ry_builder *b, ry_loc loc, ry_value lhs, ry_value rhs, const ry_conv_dims *d);
#define ry_convolution(b, l, r, d) ry_convolution_((b), RY_HERE, (l), (r), (d))

/* ---- indexing ------------------------------------------------------------ */

typedef struct ry_gather_dims {
  ry_axes offset_dims, collapsed_slice_dims, start_index_map, slice_sizes;
  int64_t index_vector_dim;
} ry_gather_dims;
RY_API ry_value ry_gather_(ry_builder *b, ry_loc loc, ry_value operand, ry_value indices, const ry_gather_dims *d);
#define ry_gather(b, x, i, d) ry_gather_((b), RY_HERE, (x), (i), (d))

typedef enum ry_scatter_kind { RY_SCATTER_REPLACE, RY_SCATTER_ADD, RY_SCATTER_MUL, RY_SCATTER_MAX, RY_SCATTER_MIN, RY_SCATTER_COUNT } ry_scatter_kind;
typedef struct ry_scatter_dims {
  ry_axes update_window_dims, inserted_window_dims, scatter_dims_to_operand_dims;
  int64_t index_vector_dim;
  ry_scatter_kind kind;
} ry_scatter_dims;
RY_API ry_value ry_scatter_(ry_builder *b, ry_loc loc, ry_value operand, ry_value indices, ry_value updates, const ry_scatter_dims *d);
#define ry_scatter(b, x, i, u, d) ry_scatter_((b), RY_HERE, (x), (i), (u), (d))

/* Sort n operands of one shape along dim by the first num_keys of them.
 * Writes n results. Returns n (0 on error). */
RY_API int ry_sort_(ry_builder *b, ry_loc loc, int n, const ry_value *xs, int dim, int num_keys, int descending, int stable, ry_value *out);
#define ry_sort(b, n, xs, dim, nk, desc, stable, out) ry_sort_((b), RY_HERE, (n), (xs), (dim), (nk), (desc), (stable), (out))

/* ---- random bits --------------------------------------------------------- */

/* Threefry-2x32 over u32 arrays of one shape (scalars broadcast); writes 2. */
RY_API void ry_threefry2x32_(ry_builder *b, ry_loc loc, ry_value k0, ry_value k1, ry_value x0, ry_value x1, ry_value out[2]);
#define ry_threefry2x32(b, k0, k1, x0, x1, out) ry_threefry2x32_((b), RY_HERE, (k0), (k1), (x0), (x1), (out))

/* ---- control flow and calls ---------------------------------------------
 * Branch/body functions may use values of the enclosing trace (passed in via
 * ctx): the builder lifts them into explicit operands. They return their
 * outputs like an ry_fn. All return the number of results written to out
 * (0 on error). */

/* pred: bool scalar. Both branches receive `args` and must return the same types. */
RY_API int ry_cond_(ry_builder *b, ry_loc loc, ry_value pred, ry_fn true_fn, ry_fn false_fn, void *ctx,
             int n_args, const ry_value *args, ry_value *out);
#define ry_cond(b, p, t, f, ctx, n, args, out) ry_cond_((b), RY_HERE, (p), (t), (f), (ctx), (n), (args), (out))
/* index: i32 scalar; out-of-range picks the last branch (clamped). */
RY_API int ry_switch_(ry_builder *b, ry_loc loc, ry_value index, int n_branches, const ry_fn *branches, void *ctx,
               int n_args, const ry_value *args, ry_value *out);
#define ry_switch(b, i, nb, br, ctx, n, args, out) ry_switch_((b), RY_HERE, (i), (nb), (br), (ctx), (n), (args), (out))
/* while cond_fn(carry) returns one bool scalar: carry = body_fn(carry). */
RY_API int ry_while_(ry_builder *b, ry_loc loc, ry_fn cond_fn, ry_fn body_fn, void *ctx, int n_carry,
              const ry_value *init, ry_value *out);
#define ry_while(b, c, body, ctx, n, init, out) ry_while_((b), RY_HERE, (c), (body), (ctx), (n), (init), (out))
/* scan (lax.scan): body(carry..., x slices...) returns (carry'..., y
 * slices...); it runs `length` times over the leading axis of each xs
 * (reversed when `reverse`), and the result is (final carry..., ys stacked on
 * a new leading axis). n_xs may be 0 (then `length` says how many steps).
 * Returns n_carry + the number of ys. Reverse mode differentiates through it. */
RY_API int ry_scan_(ry_builder *b, ry_loc loc, ry_fn body, void *ctx, int64_t length, int n_carry, const ry_value *init, int n_xs,
             const ry_value *xs, int reverse, ry_value *out);
#define ry_scan(b, body, ctx, len, nc, init, nx, xs, rev, out) \
  ry_scan_((b), RY_HERE, (body), (ctx), (len), (nc), (init), (nx), (xs), (rev), (out))
/* fori_loop with bounds known at trace time: body(i, carry...) returns
 * carry... for i = lo .. hi-1 (i is an i32 scalar). A scan underneath, so it
 * can be differentiated in reverse mode, as in JAX. Returns n_carry. */
RY_API int ry_fori_loop_(ry_builder *b, ry_loc loc, int64_t lo, int64_t hi, ry_fn body, void *ctx, int n_carry, const ry_value *init,
                  ry_value *out);
#define ry_fori_loop(b, lo, hi, body, ctx, n, init, out) ry_fori_loop_((b), RY_HERE, (lo), (hi), (body), (ctx), (n), (init), (out))

/* Call a finished graph (retained by the new graph). */
RY_API int ry_call_(ry_builder *b, ry_loc loc, ry_graph *g, int n_args, const ry_value *args, ry_value *out);
#define ry_call(b, g, n, args, out) ry_call_((b), RY_HERE, (g), (n), (args), (out))
/* Differentiation rules and rematerialization (see ryft/transform.h).
 *
 * ry_custom_jvp: call f, but differentiate it with jvp_rule, a graph
 *   (x..., t...) -> (y..., ty...) (JAX's custom_jvp).
 * ry_custom_vjp: call f, but differentiate it in reverse mode with
 *   fwd: x... -> (y..., residuals...) and bwd: (residuals..., ct_y...) ->
 *   ct_x... (JAX's custom_vjp). Forward mode differentiates f itself.
 * ry_checkpoint: call f and, when differentiated in reverse mode, recompute
 *   its intermediates in the backward pass instead of saving them (JAX's
 *   jax.checkpoint / remat) according to the policy.
 * ry_stop_gradient: x, with a zero derivative. */
typedef enum ry_remat_policy {
  RY_REMAT_SAVE_NOTHING = 1,   /* save only the call's inputs; recompute the rest */
  RY_REMAT_SAVE_DOTS = 2,      /* also save the results of dot_general / convolution */
  RY_REMAT_SAVE_EVERYTHING = 3 /* an ordinary call: save what reverse mode needs */
} ry_remat_policy;
RY_API int ry_custom_jvp_(ry_builder *b, ry_loc loc, ry_graph *f, ry_graph *jvp_rule, int n_args, const ry_value *args, ry_value *out);
RY_API int ry_custom_vjp_(ry_builder *b, ry_loc loc, ry_graph *f, ry_graph *fwd, ry_graph *bwd, int n_args, const ry_value *args,
                   ry_value *out);
RY_API int ry_checkpoint_(ry_builder *b, ry_loc loc, ry_graph *f, ry_remat_policy policy, int n_args, const ry_value *args, ry_value *out);
RY_API ry_value ry_stop_gradient_(ry_builder *b, ry_loc loc, ry_value x);
#define ry_custom_jvp(b, f, j, n, args, out) ry_custom_jvp_((b), RY_HERE, (f), (j), (n), (args), (out))
#define ry_custom_vjp(b, f, fw, bw, n, args, out) ry_custom_vjp_((b), RY_HERE, (f), (fw), (bw), (n), (args), (out))
#define ry_checkpoint(b, f, pol, n, args, out) ry_checkpoint_((b), RY_HERE, (f), (pol), (n), (args), (out))
#define ry_stop_gradient(b, x) ry_stop_gradient_((b), RY_HERE, (x))

/* An op implemented by a function registered under `target` (runtime.h). */
RY_API int ry_custom_call_(ry_builder *b, ry_loc loc, const char *target, int n_args, const ry_value *args,
                    int n_out, const ry_type *out_types, ry_value *out);
#define ry_custom_call(b, t, n, args, no, types, out) ry_custom_call_((b), RY_HERE, (t), (n), (args), (no), (types), (out))

/* ---- composites (built from the ops above) --------------------------------
 * Axis arguments may be negative (from the end). */

/* NumPy matmul: 1-d operands are promoted, leading dims broadcast. */
RY_API ry_value ry_matmul_(ry_builder *b, ry_loc loc, ry_value x, ry_value y);
RY_API ry_value ry_softmax_(ry_builder *b, ry_loc loc, ry_value x, int axis);
RY_API ry_value ry_log_softmax_(ry_builder *b, ry_loc loc, ry_value x, int axis);
RY_API ry_value ry_logsumexp_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims);
RY_API ry_value ry_mean_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims);
RY_API ry_value ry_var_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims);
RY_API ry_value ry_relu_(ry_builder *b, ry_loc loc, ry_value x);
RY_API ry_value ry_gelu_(ry_builder *b, ry_loc loc, ry_value x, int approximate); /* 1 = tanh form */
RY_API ry_value ry_silu_(ry_builder *b, ry_loc loc, ry_value x);
RY_API ry_value ry_sigmoid_(ry_builder *b, ry_loc loc, ry_value x);
RY_API ry_value ry_where_(ry_builder *b, ry_loc loc, ry_value pred, ry_value x, ry_value y);
RY_API ry_value ry_clip_(ry_builder *b, ry_loc loc, ry_value x, double lo, double hi);
RY_API ry_value ry_one_hot_(ry_builder *b, ry_loc loc, ry_value labels, int64_t n, ry_dtype dtype);
/* take rows along axis with integer indices (clamped, like jnp.take mode="clip") */
RY_API ry_value ry_take_(ry_builder *b, ry_loc loc, ry_value x, ry_value indices, int axis);
/* ---- collectives and sharding (docs/IR.md, "Collectives and sharding") --
 * The program runs once per device; devices form a row-major mesh of shape
 * `mesh` (e.g. RY_AXES(4) or RY_AXES(2, 2); its size must equal the number
 * of devices it is compiled for). A collective combines the values of the
 * devices in each group: the devices whose mesh coordinates differ only
 * along `axes` (RY_AXES(0) on a 1-d mesh: all devices). On one device
 * (interp, cpu) a collective acts as if every member of the group held the
 * same value; for a group of one it is the identity. kind: RY_SUM, RY_PROD,
 * RY_MAX or RY_MIN. Differentiable (sum kinds, all_gather; all_reduce
 * max/min too) and batchable. */
RY_API ry_value ry_all_reduce_(ry_builder *b, ry_loc loc, ry_value x, ry_reduce_kind kind, ry_axes mesh, ry_axes axes);
/* Concatenate the group's values along dim (its size grows by the group size). */
RY_API ry_value ry_all_gather_(ry_builder *b, ry_loc loc, ry_value x, int dim, ry_axes mesh, ry_axes axes);
/* Combine over the group, then keep this device's block of dim (divided by the group size). */
RY_API ry_value ry_reduce_scatter_(ry_builder *b, ry_loc loc, ry_value x, int dim, ry_reduce_kind kind, ry_axes mesh, ry_axes axes);
/* Every member of the group receives the value of member `source` (its
 * position in the group, 0 .. group size - 1), as StableHLO's
 * collective_broadcast and jax.lax.pbroadcast. Any dtype. Linear: its JVP
 * broadcasts the tangent; its transpose sums the group's cotangents on the
 * source member and gives the others zero. On one device it is the identity. */
RY_API ry_value ry_collective_broadcast_(ry_builder *b, ry_loc loc, ry_value x, int source, ry_axes mesh, ry_axes axes);
/* psum / pmean over all n_devices devices (a 1-d mesh), as in a function
 * mapped over devices with jax.pmap; the gradient of psum is psum. */
RY_API ry_value ry_psum_(ry_builder *b, ry_loc loc, ry_value x, int n_devices);
RY_API ry_value ry_pmean_(ry_builder *b, ry_loc loc, ry_value x, int n_devices);
/* Sharding annotation (SPMD, for ry_pjrt_compile_spmd): x split over the
 * device mesh `mesh`, dimension i over mesh axis dims.v[i] or replicated
 * along it (-1); mesh axes no dimension uses replicate. dims has one entry
 * per dimension of x, and each split dimension must divide evenly. Applied to
 * a graph input it sets how that input is split over the devices; as a graph
 * output, how the output is; elsewhere it constrains the partitioner
 * (jax.lax.with_sharding_constraint). Everywhere else it is the identity. */
RY_API ry_value ry_shard_(ry_builder *b, ry_loc loc, ry_value x, ry_axes mesh, ry_axes dims);
#define ry_all_reduce(b, x, k, mesh, axes) ry_all_reduce_((b), RY_HERE, (x), (k), (mesh), (axes))
#define ry_all_gather(b, x, dim, mesh, axes) ry_all_gather_((b), RY_HERE, (x), (dim), (mesh), (axes))
#define ry_reduce_scatter(b, x, dim, k, mesh, axes) ry_reduce_scatter_((b), RY_HERE, (x), (dim), (k), (mesh), (axes))
#define ry_collective_broadcast(b, x, src, mesh, axes) ry_collective_broadcast_((b), RY_HERE, (x), (src), (mesh), (axes))
#define ry_psum(b, x, n) ry_psum_((b), RY_HERE, (x), (n))
#define ry_pmean(b, x, n) ry_pmean_((b), RY_HERE, (x), (n))
#define ry_shard(b, x, mesh, dims) ry_shard_((b), RY_HERE, (x), (mesh), (dims))

/* take_along_axis: indices has x's rank */
RY_API ry_value ry_take_along_axis_(ry_builder *b, ry_loc loc, ry_value x, ry_value indices, int axis);
RY_API ry_value ry_expand_dims_(ry_builder *b, ry_loc loc, ry_value x, int axis);
RY_API ry_value ry_squeeze_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes);
/* reductions with keepdims */
RY_API ry_value ry_sum_keepdims_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims);
RY_API ry_value ry_max_keepdims_(ry_builder *b, ry_loc loc, ry_value x, ry_axes axes, int keepdims);
/* A scalar of x's dtype (weakly typed constant, as a Python scalar in JAX). */
RY_API ry_value ry_const_like_(ry_builder *b, ry_loc loc, ry_value x, double v);
#define ry_matmul(b, x, y) ry_matmul_((b), RY_HERE, (x), (y))
#define ry_softmax(b, x, axis) ry_softmax_((b), RY_HERE, (x), (axis))
#define ry_log_softmax(b, x, axis) ry_log_softmax_((b), RY_HERE, (x), (axis))
#define ry_logsumexp(b, x, axes, k) ry_logsumexp_((b), RY_HERE, (x), (axes), (k))
#define ry_mean(b, x, axes, k) ry_mean_((b), RY_HERE, (x), (axes), (k))
#define ry_var(b, x, axes, k) ry_var_((b), RY_HERE, (x), (axes), (k))
#define ry_relu(b, x) ry_relu_((b), RY_HERE, (x))
#define ry_gelu(b, x, approx) ry_gelu_((b), RY_HERE, (x), (approx))
#define ry_silu(b, x) ry_silu_((b), RY_HERE, (x))
#define ry_sigmoid(b, x) ry_sigmoid_((b), RY_HERE, (x))
#define ry_where(b, p, x, y) ry_where_((b), RY_HERE, (p), (x), (y))
#define ry_clip(b, x, lo, hi) ry_clip_((b), RY_HERE, (x), (lo), (hi))
#define ry_one_hot(b, l, n, t) ry_one_hot_((b), RY_HERE, (l), (n), (t))
#define ry_take(b, x, i, axis) ry_take_((b), RY_HERE, (x), (i), (axis))
#define ry_take_along_axis(b, x, i, axis) ry_take_along_axis_((b), RY_HERE, (x), (i), (axis))
#define ry_expand_dims(b, x, axis) ry_expand_dims_((b), RY_HERE, (x), (axis))
#define ry_squeeze(b, x, axes) ry_squeeze_((b), RY_HERE, (x), (axes))
#define ry_sum_keepdims(b, x, axes, k) ry_sum_keepdims_((b), RY_HERE, (x), (axes), (k))
#define ry_max_keepdims(b, x, axes, k) ry_max_keepdims_((b), RY_HERE, (x), (axes), (k))
#define ry_const_like(b, x, v) ry_const_like_((b), RY_HERE, (x), (v))

#ifdef __cplusplus
}
#endif
#endif
