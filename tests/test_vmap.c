/* vmap: one row per op family, each vmapped with its in_axes/out_axes, run
 * on the interpreter and compared with a loop of the unbatched function over
 * the slices (the oracle); nested vmap, vmap of grad, grad of vmap, and bad
 * input. */
#include <stdlib.h>

#include "ir/graph.h"
#include "ryft/gguf.h"
#include "testlib.h"

static ry_device *dev(void) {
  ry_device *d = NULL;
  ry_status_free(ry_device_get("interp", &d));
  return d;
}
static unsigned g_seed = 777;
static double urand(void) {
  g_seed = g_seed * 1103515245u + 12345u;
  return ((g_seed >> 8) & 0xffffff) / 16777216.0;
}

/* A host array of type t with random values: floats in [lo, hi], ints in
 * [lo, hi] (integers), bools 0/1. */
static ry_array *rand_array(ry_type t, double lo, double hi) {
  int64_t n = ry_shape_numel(t.shape);
  double *v = calloc((size_t)n + 1, sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    double u = urand();
    if (t.dtype == RY_BOOL) v[i] = u < 0.5;
    else if (ry_dtype_is_float(t.dtype)) v[i] = lo + (hi - lo) * u;
    else v[i] = floor(lo + (hi - lo + 1) * u);
  }
  ry_array *f = NULL, *a = NULL;
  ry_status_free(ry_array_from_host(RY_F64, t.shape, v, &f));
  free(v);
  /* convert through a tiny graph-free path: build from typed host data */
  size_t es = ry_dtype_size(t.dtype);
  unsigned char *buf = calloc((size_t)n + 1, es);
  for (int64_t i = 0; i < n; i++) {
    double x = ry_array_get_f64(f, i);
    unsigned char *p = buf + (size_t)i * es;
    switch (t.dtype) {
    case RY_BOOL: *(unsigned char *)p = x != 0; break;
    case RY_I8: *(int8_t *)p = (int8_t)x; break;
    case RY_I16: *(int16_t *)p = (int16_t)x; break;
    case RY_I32: *(int32_t *)p = (int32_t)x; break;
    case RY_I64: *(int64_t *)p = (int64_t)x; break;
    case RY_U8: *(uint8_t *)p = (uint8_t)x; break;
    case RY_U32: *(uint32_t *)p = (uint32_t)x; break;
    case RY_F32: *(float *)p = (float)x; break;
    case RY_F64: *(double *)p = x; break;
    default: break;
    }
  }
  ry_status_free(ry_array_from_host(t.dtype, t.shape, buf, &a));
  free(buf);
  ry_array_release(f);
  return a;
}

/* Slice k of a along axis ax (host copy). */
static ry_array *host_slice(const ry_array *a, int ax, int64_t k) {
  ry_type t = ry_array_type(a);
  ry_shape o = {0, {0}};
  for (int i = 0; i < t.shape.rank; i++)
    if (i != ax) o.dims[o.rank++] = t.shape.dims[i];
  size_t es = ry_dtype_size(t.dtype);
  int64_t inner = 1, outer = 1;
  for (int i = ax + 1; i < t.shape.rank; i++) inner *= t.shape.dims[i];
  for (int i = 0; i < ax; i++) outer *= t.shape.dims[i];
  int64_t n = t.shape.dims[ax];
  unsigned char *buf = calloc((size_t)(outer * inner) + 1, es);
  const unsigned char *src = ry_array_data(a);
  for (int64_t p = 0; p < outer; p++)
    memcpy(buf + (size_t)(p * inner) * es, src + (size_t)((p * n + k) * inner) * es, (size_t)inner * es);
  ry_array *r = NULL;
  ry_status_free(ry_array_from_host(t.dtype, o, buf, &r));
  free(buf);
  return r;
}

static int close_enough(double x, double y) {
  if (isnan(x) && isnan(y)) return 1;
  if (x == y) return 1;
  return fabs(x - y) <= 1e-12 * fmax(1.0, fmax(fabs(x), fabs(y)));
}

/* Compare batched outputs of v (run on `in`) with f run on every slice. */
static void check_against_loop(const char *name, ry_graph *f, ry_graph *v, int64_t n, const int *in_axes, const int *out_axes,
                               ry_array **in) {
  int n_in = ry_graph_num_inputs(f), n_out = ry_graph_num_outputs(f);
  ry_array *out[8] = {0};
  if (n_out > 8) return;
  ry_status s = ry_run(v, dev(), n_in, in, n_out, out);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: run vmapped: %s", name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  for (int64_t k = 0; k < n; k++) {
    ry_array *sl[8] = {0}, *o[8] = {0};
    for (int i = 0; i < n_in; i++) {
      int ax = in_axes ? in_axes[i] : 0;
      if (ax == RY_NOT_BATCHED) sl[i] = ry_array_retain(in[i]);
      else sl[i] = host_slice(in[i], ax < 0 ? ax + ry_array_shape(in[i]).rank : ax, k);
    }
    s = ry_run(f, dev(), n_in, sl, n_out, o);
    if (s) {
      rt_fail(__FILE__, __LINE__, "%s: run slice %lld: %s", name, (long long)k, ry_status_message(s));
      ry_status_free(s);
    } else {
      for (int j = 0; j < n_out; j++) {
        int ax = out_axes ? out_axes[j] : 0;
        int r = ry_array_shape(out[j]).rank;
        ry_array *ys = ax == RY_NOT_BATCHED ? ry_array_retain(out[j]) : host_slice(out[j], ax < 0 ? ax + r : ax, k);
        CHECK_MSG(ry_type_equal(ry_array_type(ys), ry_array_type(o[j])), "%s: output %d type differs", name, j);
        int64_t m = ry_array_numel(o[j]);
        int bad = 0;
        for (int64_t e = 0; e < m && !bad; e++) {
          double p = ry_array_get_f64(ys, e), q = ry_array_get_f64(o[j], e);
          if (!close_enough(p, q)) {
            rt_fail(__FILE__, __LINE__, "%s: lane %lld output %d element %lld: vmap %.17g, loop %.17g", name, (long long)k, j,
                    (long long)e, p, q);
            bad = 1;
          }
        }
        ry_array_release(ys);
      }
    }
    for (int i = 0; i < 8; i++) {
      ry_array_release(sl[i]);
      ry_array_release(o[i]);
    }
  }
  for (int i = 0; i < 8; i++) ry_array_release(out[i]);
}

/* ---- the table ---- */

typedef int (*row_fn)(ry_builder *b, const ry_value *x, ry_value *out);
typedef struct {
  const char *name;
  row_fn fn;
  int n_in;
  ry_type types[4]; /* per-example */
  int in_axes[4];
  int out_axes[6];  /* per output; unused entries 0 */
  int64_t size;
  double lo, hi;
} vrow;

static int row_trace_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const vrow *r = ctx;
  return r->fn(b, in, out);
}

#define SH(...) {(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}}
#define F64(...) {RY_F64, SH(__VA_ARGS__)}
#define F64S {RY_F64, {0, {0}}}
#define I32(...) {RY_I32, SH(__VA_ARGS__)}
#define I32S {RY_I32, {0, {0}}}
#define U32(...) {RY_U32, SH(__VA_ARGS__)}
#define U8(...) {RY_U8, SH(__VA_ARGS__)}
#define BOOLS {RY_BOOL, {0, {0}}}
#define NB RY_NOT_BATCHED

static int f_unary(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_value a = ry_abs(b, x[0]);
  o[0] = ry_add(b, ry_add(b, ry_exp(b, ry_sin(b, x[0])), ry_tanh(b, x[0])), ry_sqrt(b, a));
  o[1] = ry_add(b, ry_add(b, ry_floor(b, x[0]), ry_log1p(b, a)), ry_add(b, ry_logistic(b, x[0]), ry_erf(b, x[0])));
  o[2] = ry_is_finite(b, ry_log(b, x[0]));
  o[3] = ry_neg(b, ry_round_even(b, ry_mul(b, x[0], ry_scalar(b, RY_F64, 3))));
  ry_value h = ry_mul(b, x[0], ry_scalar(b, RY_F64, 0.4));
  o[4] = ry_add(b, ry_add(b, ry_exp2(b, x[0]), ry_expm1(b, x[0])), ry_add(b, ry_rsqrt(b, ry_add(b, a, ry_scalar(b, RY_F64, 1))), ry_cbrt(b, x[0])));
  o[5] = ry_add(b, ry_add(b, ry_cos(b, x[0]), ry_tan(b, h)), ry_add(b, ry_add(b, ry_erf_inv(b, h), ry_atanh(b, h)), ry_add(b, ry_ceil(b, x[0]), ry_round(b, x[0]))));
  return 6;
}
static int f_binary(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_add(b, ry_mul(b, x[0], x[1]), ry_div(b, x[0], x[1]));
  o[1] = ry_add(b, ry_pow(b, ry_abs(b, x[0]), x[1]), ry_atan2(b, x[0], x[1]));
  o[2] = ry_sub(b, ry_max(b, x[0], x[1]), ry_min(b, x[1], x[0]));
  o[3] = ry_rem(b, x[0], x[1]);
  return 4;
}
static int f_intops(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_xor(b, ry_and(b, x[0], x[1]), ry_or(b, x[0], ry_not(b, x[1])));
  o[1] = ry_add(b, ry_shift_left(b, x[0], ry_scalar(b, RY_I32, 2)), ry_shift_right_arithmetic(b, x[1], ry_scalar(b, RY_I32, 1)));
  o[2] = ry_add(b, ry_add(b, ry_popcnt(b, x[0]), ry_clz(b, x[1])), ry_shift_right_logical(b, x[1], ry_scalar(b, RY_I32, 3)));
  o[3] = ry_add(b, ry_div(b, x[0], ry_scalar(b, RY_I32, 3)), ry_sign(b, x[1]));
  return 4;
}
/* select with a scalar predicate input, clamp with scalar bounds */
static int f_select_clamp(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_select(b, x[2], x[0], x[1]);
  o[1] = ry_select(b, ry_lt(b, x[0], x[1]), x[0], x[1]);
  ry_value lo = ry_neg(b, ry_abs(b, x[3]));
  o[2] = ry_clamp(b, lo, x[0], ry_abs(b, x[3]));
  o[3] = ry_clamp(b, ry_scalar(b, RY_F64, -0.5), x[1], ry_scalar(b, RY_F64, 0.5));
  return 4;
}
static int f_convert(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_convert(b, ry_mul(b, x[0], ry_scalar(b, RY_F64, 10)), RY_I32);
  o[1] = ry_bitcast_convert(b, ry_convert(b, x[0], RY_F32), RY_I32);
  o[2] = ry_convert(b, ry_gt(b, x[0], ry_scalar(b, RY_F64, 0)), RY_F64);
  return 3;
}
static int f_shape(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x: [2,3] */
  o[0] = ry_broadcast_in_dim(b, x[0], RY_SHAPE(4, 2, 3), RY_AXES(1, 2));
  o[1] = ry_transpose(b, ry_reshape(b, x[0], RY_SHAPE(3, 2)), RY_AXES(1, 0));
  o[2] = ry_reverse(b, ry_slice(b, x[0], RY_AXES(0, 1), RY_AXES(2, 3), RY_AXES(1, 2)), RY_AXES(1));
  ry_value parts[3] = {x[0], x[1], x[0]};
  o[3] = ry_concatenate(b, 3, parts, 1);
  return 4;
}
static int f_pad(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_pad(b, x[0], ry_scalar(b, RY_F64, 7), RY_AXES(1, -1), RY_AXES(0, 2), RY_AXES(1, 0));
  o[1] = ry_pad(b, x[0], x[1], RY_AXES(1, 0), RY_AXES(-1, 2), RY_AXES(0, 1));
  return 2;
}
static int f_iota_const(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_add(b, x[0], ry_iota(b, RY_F64, RY_SHAPE(2, 3), 1));
  o[1] = ry_mul(b, ry_full(b, RY_F64, RY_SHAPE(2, 3), 2.5), x[0]);
  o[2] = ry_iota(b, RY_I32, RY_SHAPE(4), 0); /* unbatched output, broadcast */
  return 3;
}
static int f_reduce(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_sum(b, x[0], RY_AXES(1));
  o[1] = ry_reduce(b, x[0], RY_MAX, RY_AXES(0, 1));
  o[2] = ry_add(b, ry_argmax(b, x[0], 1), ry_argmin(b, x[0], 1));
  o[3] = ry_add(b, ry_cumsum(b, x[0], 1), ry_cumulative(b, x[0], RY_MAX, 0, 1));
  return 4;
}
/* x: [5,6], s: the windows' shape [2,3] */
static int f_window(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_window_dims w = {RY_AXES(3, 2), RY_AXES(2, 2), RY_NO_AXES, RY_NO_AXES, RY_AXES(1, 0), RY_AXES(0, 0)};
  ry_window_dims d = {RY_AXES(2, 2), RY_AXES(1, 2), RY_AXES(2, 1), RY_AXES(1, 2), RY_AXES(0, 1), RY_AXES(1, 0)};
  o[0] = ry_reduce_window(b, x[0], RY_MAX, &w);
  o[1] = ry_reduce_window(b, x[0], RY_SUM, &d);
  o[2] = ry_select_and_scatter(b, x[0], x[1], RY_MAX, &w);
  o[3] = ry_select_and_gather(b, x[0], ry_sin(b, x[0]), RY_MIN, &d);
  return 4;
}
static int f_reduce_bool(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_value p = ry_gt(b, x[0], ry_scalar(b, RY_F64, 0));
  o[0] = ry_reduce(b, p, RY_AND, RY_AXES(1));
  o[1] = ry_reduce(b, p, RY_OR, RY_AXES(0));
  o[2] = ry_reduce(b, x[0], RY_PROD, RY_AXES(1));
  o[3] = ry_cumulative(b, x[0], RY_PROD, 1, 0);
  return 4;
}
static int f_dot(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x: [2,3,4], y: [2,4,5]: batch 0, contract 2 x 1 */
  ry_dot_dims d = {RY_AXES(0), RY_AXES(0), RY_AXES(2), RY_AXES(1)};
  o[0] = ry_dot_general(b, x[0], x[1], d, RY_F64);
  ry_dot_dims d2 = {RY_NO_AXES, RY_NO_AXES, RY_AXES(1), RY_AXES(0)};
  o[1] = ry_dot_general(b, x[0], x[2], d2, RY_F64); /* [2,3,4] . [3,6] -> [2,4,6] */
  return 2;
}
static int f_conv(ry_builder *b, const ry_value *x, ry_value *o) {
  /* lhs [2,4,5] (N C W), rhs [6,2,3] (O I W), feature_groups 2 */
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.feature_groups = 2;
  d.pad_low = RY_AXES(1);
  d.pad_high = RY_AXES(0);
  o[0] = ry_convolution(b, x[0], x[1], &d);
  ry_conv_dims d1;
  memset(&d1, 0, sizeof d1);
  d1.stride = RY_AXES(2);
  ry_value two[2] = {x[1], x[1]};
  ry_value k = ry_slice(b, ry_concatenate(b, 2, two, 1), RY_AXES(0, 0, 0), RY_AXES(6, 4, 3), RY_NO_AXES);
  o[1] = ry_convolution(b, x[0], k, &d1);
  return 2;
}
static int f_conv_bg(ry_builder *b, const ry_value *x, ry_value *o) {
  /* batch_groups 2: lhs [4,3,5], rhs [6,3,2] */
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.batch_groups = 2;
  o[0] = ry_convolution(b, x[0], x[1], &d);
  return 1;
}
static int f_take(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x [5,3], idx i32[4] */
  o[0] = ry_take(b, x[0], x[1], 0);
  o[1] = ry_take(b, x[0], ry_reshape(b, x[1], RY_SHAPE(2, 2)), 1);
  return 2;
}
static int f_scatter(ry_builder *b, const ry_value *x, ry_value *o) {
  /* operand [5,3], indices i32[4], updates [4,3]: rows */
  ry_scatter_dims d;
  memset(&d, 0, sizeof d);
  d.update_window_dims = RY_AXES(1);
  d.inserted_window_dims = RY_AXES(0);
  d.scatter_dims_to_operand_dims = RY_AXES(0);
  d.index_vector_dim = 1;
  d.kind = RY_SCATTER_ADD;
  o[0] = ry_scatter(b, x[0], x[1], x[2], &d);
  d.kind = RY_SCATTER_REPLACE;
  o[1] = ry_scatter(b, x[0], ry_reverse(b, x[1], RY_AXES(0)), x[2], &d);
  d.kind = RY_SCATTER_MAX;
  o[2] = ry_scatter(b, x[0], x[1], x[2], &d);
  return 3;
}
static int f_dslice(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x [5,4], i, j scalars */
  ry_value st[2] = {x[1], x[2]};
  o[0] = ry_dynamic_slice(b, x[0], st, RY_AXES(2, 3));
  ry_value up = ry_full(b, RY_F64, RY_SHAPE(2, 2), -1);
  o[1] = ry_dynamic_update_slice(b, x[0], ry_add(b, up, ry_slice(b, x[0], RY_AXES(0, 0), RY_AXES(2, 2), RY_NO_AXES)), st);
  return 2;
}
static int f_sort(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_value in[2] = {x[0], ry_iota(b, RY_I32, RY_SHAPE(3, 4), 1)};
  ry_sort(b, 2, in, 1, 1, 0, 1, o);
  ry_value t[1];
  ry_sort(b, 1, x, 0, 1, 1, 1, t);
  o[2] = t[0];
  return 3;
}
/* two Q4_1 rows of 64 (bytes below 100 keep the f16 scales finite) */
static int f_dequantize(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_dequantize(b, x[0], RY_GGML_Q4_1);
  return 1;
}
static int f_threefry(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_value r[2];
  ry_threefry2x32(b, x[0], x[1], x[2], ry_iota(b, RY_U32, RY_SHAPE(4), 0), r);
  o[0] = r[0];
  o[1] = r[1];
  return 2;
}

static int br_true(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, in[0], in[1]);
  out[1] = ry_sum(b, in[0], RY_AXES(0));
  return 2;
}
static int br_false(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_sub(b, in[0], in[1]);
  out[1] = ry_scalar(b, RY_F64, 42);
  return 2;
}
static int br_neg(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_neg(b, in[0]);
  out[1] = ry_scalar(b, RY_F64, -1);
  return 2;
}
static int f_cond(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x [3], y [3], p bool[], k i32[] */
  ry_value args[2] = {x[0], x[1]};
  ry_cond(b, x[2], br_true, br_false, NULL, 2, args, o);
  ry_fn brs[3] = {br_true, br_false, br_neg};
  ry_switch(b, x[3], 3, brs, NULL, 2, args, o + 2);
  return 4;
}
/* while: count how many doublings until |x| > limit (per-lane trip counts) */
static int wc(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_lt(b, ry_abs(b, in[0]), in[2]);
  return 1;
}
static int wb(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, in[0], ry_scalar(b, RY_F64, 2));
  out[1] = ry_add(b, in[1], ry_scalar(b, RY_I32, 1));
  out[2] = in[2];
  out[3] = ry_add(b, in[3], in[0]);
  return 4;
}
static int f_while(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x f64[] (start), lim f64[], v f64[2] (accumulated, shape carry) */
  ry_value init[4] = {x[0], ry_scalar(b, RY_I32, 0), x[1], x[2]};
  ry_value r[4];
  ry_while(b, wc, wb, NULL, 4, init, r);
  o[0] = r[0];
  o[1] = r[1];
  o[2] = r[3];
  return 3;
}
static int wc2(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_lt(b, in[0], ry_scalar(b, RY_I32, 5));
  return 1;
}
static int wb2(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_add(b, in[0], ry_scalar(b, RY_I32, 1));
  out[1] = ry_add(b, ry_mul(b, in[1], ry_scalar(b, RY_F64, 0.5)), in[2]);
  out[2] = in[2];
  return 3;
}
/* fixed trip count: the predicate stays unbatched, the body is batched */
static int f_while_fixed(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_value init[3] = {ry_scalar(b, RY_I32, 0), ry_full(b, RY_F64, ry_value_shape(b, x[0]), 0), x[0]};
  ry_value r[3];
  ry_while(b, wc2, wb2, NULL, 3, init, r);
  o[0] = r[1];
  o[1] = r[0];
  return 2;
}
/* scan: an RNN-like step h' = tanh(h * w + x), ys = 2 h'; w is captured */
typedef struct {
  ry_value w;
} scan_ctx;
static int scan_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  scan_ctx *c = ctx;
  out[0] = ry_tanh(b, ry_add(b, ry_mul(b, in[0], c->w), in[1]));
  out[1] = ry_mul(b, out[0], ry_scalar(b, RY_F64, 2));
  return 2;
}
static int f_scan(ry_builder *b, const ry_value *x, ry_value *o) {
  scan_ctx c = {x[2]};
  /* h0 (3), xs (4,3), w (3) */
  return ry_scan(b, scan_body, &c, -1, 1, &x[0], 1, &x[1], 0, o);
}
static int f_scan_rev(ry_builder *b, const ry_value *x, ry_value *o) {
  scan_ctx c = {x[2]};
  return ry_scan(b, scan_body, &c, -1, 1, &x[0], 1, &x[1], 1, o);
}
static ry_graph *g_callee;
static int f_call(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_call(b, g_callee, 1, x, o);
  o[1] = ry_mul(b, o[0], x[0]);
  return 2;
}
static int f_callee(ry_builder *b, const ry_value *x, ry_value *o) {
  o[0] = ry_exp(b, x[0]);
  return 1;
}

/* collectives (as one device evaluates them) and a sharding annotation */
static int f_collective(ry_builder *b, const ry_value *x, ry_value *o) {
  /* x (4, 2) */
  o[0] = ry_all_reduce(b, x[0], RY_SUM, RY_AXES(2), RY_AXES(0));
  o[1] = ry_all_gather(b, x[0], 1, RY_AXES(2, 2), RY_AXES(1));
  o[2] = ry_reduce_scatter(b, x[0], 0, RY_SUM, RY_AXES(2), RY_AXES(0));
  o[3] = ry_shard(b, x[0], RY_AXES(2), RY_AXES(0, -1));
  o[4] = ry_collective_broadcast(b, x[0], 1, RY_AXES(2, 2), RY_AXES(1));
  return 5;
}

static const vrow rows[] = {
    {"collectives", f_collective, 1, {F64(4, 2)}, {1}, {0, 1, 0, 2, 1}, 3, -1, 1},
    {"unary", f_unary, 1, {F64(2, 3)}, {0}, {0, 1, -1, 2}, 3, -2, 2},
    {"unary_axis1", f_unary, 1, {F64(2, 3)}, {1}, {0, 0, 0, 0}, 4, -2, 2},
    {"binary", f_binary, 2, {F64(3), F64(3)}, {0, NB}, {0, 1, 0, 1}, 4, 0.5, 2},
    {"binary_both", f_binary, 2, {F64(3), F64(3)}, {1, -1}, {0, 0, 0, 0}, 3, 0.5, 2},
    {"binary_rhs", f_binary, 2, {F64(3), F64(3)}, {NB, 0}, {1, 0, 0, 0}, 2, 0.5, 2},
    {"int_ops", f_intops, 2, {I32(4), I32(4)}, {0, NB}, {0, 1, 0, 0}, 3, -50, 50},
    {"select_clamp", f_select_clamp, 4, {F64(3), F64(3), BOOLS, F64S}, {0, NB, 0, 0}, {0, 1, 0, 0}, 5, -1, 1},
    {"select_clamp_unbatched_pred", f_select_clamp, 4, {F64(3), F64(3), BOOLS, F64S}, {NB, 0, NB, NB}, {0}, 3, -1, 1},
    {"select_clamp_only_pred", f_select_clamp, 4, {F64(3), F64(3), BOOLS, F64S}, {NB, NB, 0, 0}, {0}, 4, -1, 1},
    {"convert_bitcast", f_convert, 1, {F64(2, 2)}, {1}, {2, 0, -1}, 3, -3, 3},
    {"shape_ops", f_shape, 2, {F64(2, 3), F64(2, 1)}, {0, NB}, {0, 2, 1, 0}, 3, -1, 1},
    {"shape_ops_axis", f_shape, 2, {F64(2, 3), F64(2, 1)}, {2, 1}, {3, 0, 2, 1}, 2, -1, 1},
    {"pad", f_pad, 2, {F64(2, 3), F64S}, {0, NB}, {0, 1}, 3, -1, 1},
    {"pad_batched_value", f_pad, 2, {F64(2, 3), F64S}, {1, 0}, {1, 0}, 3, -1, 1},
    {"pad_only_value", f_pad, 2, {F64(2, 3), F64S}, {NB, 0}, {0, 0}, 2, -1, 1},
    {"iota_constant", f_iota_const, 1, {F64(2, 3)}, {0}, {0, 1, 1}, 3, -1, 1},
    {"reduce_arg_cumulative", f_reduce, 1, {F64(3, 4)}, {1}, {0, 0, 1, 2}, 3, -2, 2},
    {"window", f_window, 2, {F64(5, 6), F64(2, 3)}, {0, NB}, {0, 1, 2, 0}, 3, -2, 2},
    {"window_source", f_window, 2, {F64(5, 6), F64(2, 3)}, {NB, 1}, {1, 0, 0, 2}, 3, -2, 2},
    {"window_both", f_window, 2, {F64(5, 6), F64(2, 3)}, {1, 0}, {0, 0, 1, 0}, 2, -2, 2},
    {"reduce_bool_prod", f_reduce_bool, 1, {F64(3, 4)}, {0}, {1, 0, 0, 0}, 3, -2, 2},
    {"dot_both", f_dot, 3, {F64(2, 3, 4), F64(2, 4, 5), F64(3, 6)}, {0, 2, NB}, {0, 3}, 3, -1, 1},
    {"dot_lhs", f_dot, 3, {F64(2, 3, 4), F64(2, 4, 5), F64(3, 6)}, {1, NB, NB}, {1, 0}, 2, -1, 1},
    {"dot_rhs", f_dot, 3, {F64(2, 3, 4), F64(2, 4, 5), F64(3, 6)}, {NB, 0, 1}, {0, 2}, 3, -1, 1},
    {"conv_both", f_conv, 2, {F64(2, 4, 5), F64(6, 2, 3)}, {0, 0}, {0, 1}, 3, -1, 1},
    {"conv_lhs", f_conv, 2, {F64(2, 4, 5), F64(6, 2, 3)}, {2, NB}, {0, 3}, 2, -1, 1},
    {"conv_rhs", f_conv, 2, {F64(2, 4, 5), F64(6, 2, 3)}, {NB, 1}, {1, 0}, 3, -1, 1},
    {"conv_batch_groups_lhs", f_conv_bg, 2, {F64(4, 3, 5), F64(6, 3, 2)}, {0, NB}, {0}, 2, -1, 1},
    {"conv_batch_groups_rhs", f_conv_bg, 2, {F64(4, 3, 5), F64(6, 3, 2)}, {NB, 0}, {1}, 2, -1, 1},
    {"conv_batch_groups_both", f_conv_bg, 2, {F64(4, 3, 5), F64(6, 3, 2)}, {0, 2}, {0}, 2, -1, 1},
    {"gather_operand", f_take, 2, {F64(5, 3), I32(4)}, {0, NB}, {0, 1}, 3, 0, 4},
    {"gather_indices", f_take, 2, {F64(5, 3), I32(4)}, {NB, 0}, {1, 0}, 3, 0, 4},
    {"gather_both", f_take, 2, {F64(5, 3), I32(4)}, {1, 1}, {0, 3}, 3, 0, 4},
    {"scatter_operand", f_scatter, 3, {F64(5, 3), I32(4), F64(4, 3)}, {0, NB, NB}, {0, 1, 0}, 3, 0, 4},
    {"scatter_updates", f_scatter, 3, {F64(5, 3), I32(4), F64(4, 3)}, {NB, NB, 2}, {1, 0, 2}, 3, 0, 4},
    {"scatter_indices", f_scatter, 3, {F64(5, 3), I32(4), F64(4, 3)}, {NB, 0, NB}, {0, 0, 0}, 3, 0, 4},
    {"scatter_all", f_scatter, 3, {F64(5, 3), I32(4), F64(4, 3)}, {1, 0, 0}, {0, 2, 1}, 3, 0, 4},
    {"dynamic_slice_unbatched_idx", f_dslice, 3, {F64(5, 4), I32S, I32S}, {0, NB, NB}, {0, 1}, 3, -1, 5},
    {"dynamic_slice_batched_idx", f_dslice, 3, {F64(5, 4), I32S, I32S}, {NB, 0, NB}, {1, 0}, 4, -1, 5},
    {"dynamic_slice_all", f_dslice, 3, {F64(5, 4), I32S, I32S}, {1, 0, 0}, {0, 2}, 4, -1, 5},
    {"sort", f_sort, 1, {F64(3, 4)}, {0}, {0, 1, 2}, 3, -1, 1},
    {"dequantize", f_dequantize, 1, {U8(3, 2, 40)}, {0}, {0}, 3, 0, 99},
    {"threefry", f_threefry, 3, {U32(4), U32(4), U32(4)}, {0, NB, 0}, {0, 1}, 3, 0, 4000000000.0},
    {"cond_batched_pred", f_cond, 4, {F64(3), F64(3), BOOLS, I32S}, {0, NB, 0, 0}, {0, 0, 0, 0}, 6, -1, 3},
    {"cond_unbatched_pred", f_cond, 4, {F64(3), F64(3), BOOLS, I32S}, {0, NB, NB, NB}, {1, 0, 0, 0}, 3, -1, 2},
    {"cond_only_pred", f_cond, 4, {F64(3), F64(3), BOOLS, I32S}, {NB, NB, 0, 0}, {0, 0, 0, 0}, 6, -2, 4},
    {"while_batched_pred", f_while, 3, {F64S, F64S, F64(2)}, {0, 0, 1}, {0, 0, 1}, 5, 0.1, 9},
    {"while_unbatched_pred", f_while_fixed, 1, {F64(3)}, {0}, {1, 0}, 3, -1, 1},
    {"call", f_call, 1, {F64(2)}, {0}, {1, 0}, 3, -1, 1},
    {"scan_all_batched", f_scan, 3, {F64(3), F64(4, 3), F64(3)}, {0, 1, 0}, {0, 1}, 2, -1, 1},
    {"scan_xs_batched", f_scan_rev, 3, {F64(3), F64(4, 3), F64(3)}, {NB, 0, NB}, {0, 0}, 3, -1, 1},
    {"scan_w_batched", f_scan, 3, {F64(3), F64(4, 3), F64(3)}, {NB, NB, 0}, {1, 0}, 2, -1, 1},
};

static void run_row(const vrow *r) {
  ry_graph *f = NULL, *v = NULL;
  ry_status s = ry_trace(r->name, row_trace_fn, (void *)r, r->n_in, r->types, NULL, &f);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: trace: %s", r->name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  s = ry_vmap(f, r->size, r->in_axes, r->out_axes, &v);
  CHECK_ROUNDTRIP(f);
  CHECK_ROUNDTRIP(v);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: vmap: %s", r->name, ry_status_message(s));
    ry_status_free(s);
    ry_graph_release(f);
    return;
  }
  CHECK_OK(ry_graph_verify(v));
  ry_array *in[4] = {0};
  for (int i = 0; i < r->n_in; i++) in[i] = rand_array(ry_graph_input_type(v, i), r->lo, r->hi);
  check_against_loop(r->name, f, v, r->size, r->in_axes, r->out_axes, in);
  for (int i = 0; i < 4; i++) ry_array_release(in[i]);
  ry_graph_release(f);
  ry_graph_release(v);
}

TEST(vmap_ops) {
  ry_type ct = {RY_F64, {1, {2}}};
  CHECK_OK(ry_trace("callee", row_trace_fn,
                    &(vrow){"callee", f_callee, 1, {F64(2)}, {0}, {0}, 1, 0, 0}, 1, &ct, NULL, &g_callee));
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    rt_case_begin(rows[i].name);
    run_row(&rows[i]);
    rt_case_end();
  }
  ry_graph_release(g_callee);
  g_callee = NULL;
}

/* The rows reach every op of ops.def (custom_call is covered by
 * vmap_errors): each row's traced graph is scanned for its ops. */
TEST(vmap_rows_cover_every_op) {
  bool seen[RY_OP_COUNT] = {0};
  ry_type ct = {RY_F64, {1, {2}}};
  CHECK_OK(ry_trace("callee", row_trace_fn, &(vrow){"callee", f_callee, 1, {F64(2)}, {0}, {0}, 1, 0, 0}, 1, &ct, NULL, &g_callee));
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ry_graph *f = NULL;
    CHECK_OK(ry_trace(rows[i].name, row_trace_fn, (void *)&rows[i], rows[i].n_in, rows[i].types, NULL, &f));
    for (int k = 0; f && k < f->n_nodes; k++) seen[f->nodes[k].op] = true;
    ry_graph_release(f);
  }
  ry_graph_release(g_callee);
  g_callee = NULL;
  seen[RY_OP_CUSTOM_CALL] = true;
  for (int op = 0; op < RY_OP_COUNT; op++) CHECK_MSG(seen[op], "no vmap row exercises op %s", ryg_op_table[op].name);
}

/* ---- compositions ---- */

static int f_mlp_loss(ry_builder *b, const ry_value *x, ry_value *o) {
  /* w [3,2], x [3], y [2]: sum((tanh(x w) - y)^2) */
  ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(0), RY_AXES(0)};
  ry_value h = ry_tanh(b, ry_dot_general(b, x[1], x[0], d, RY_F64));
  ry_value e = ry_sub(b, h, x[2]);
  o[0] = ry_sum(b, ry_mul(b, e, e), RY_AXES(0));
  return 1;
}

TEST(vmap_of_grad_is_per_example_gradients) {
  vrow r = {"mlp", f_mlp_loss, 3, {F64(3, 2), F64(3), F64(2)}, {NB, 0, 0}, {0}, 5, -1, 1};
  ry_graph *f = NULL, *g = NULL, *v = NULL;
  CHECK_OK(ry_trace("mlp", row_trace_fn, &r, 3, r.types, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g)); /* d loss / d w */
  CHECK_OK(ry_vmap(g, 5, r.in_axes, NULL, &v));
  if (f && g && v) {
    ry_array *in[3];
    for (int i = 0; i < 3; i++) in[i] = rand_array(ry_graph_input_type(v, i), -1, 1);
    int oa[1] = {0};
    check_against_loop("vmap(grad)", g, v, 5, r.in_axes, oa, in);
    for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  }
  ry_graph_release(f);
  ry_graph_release(g);
  ry_graph_release(v);
}

TEST(vmap_grad_of_vmap) {
  /* loss(w) = sum over a batch of per-example losses, batched by vmap; its
   * gradient must equal the sum of per-example gradients */
  vrow r = {"mlp", f_mlp_loss, 3, {F64(3, 2), F64(3), F64(2)}, {NB, 0, 0}, {0}, 4, -1, 1};
  ry_graph *f = NULL, *v = NULL, *gf = NULL, *tot = NULL, *gv = NULL;
  CHECK_OK(ry_trace("mlp", row_trace_fn, &r, 3, r.types, NULL, &f));
  CHECK_OK(ry_vmap(f, 4, r.in_axes, NULL, &v)); /* (w, X[4,3], Y[4,2]) -> l[4] */
  CHECK_OK(ry_grad(f, NULL, &gf));
  if (!v || !gf) goto done;
  /* total(w, X, Y) = sum(v(w, X, Y)) */
  ry_builder *b = ry_builder_new("total");
  ry_value in[3];
  for (int i = 0; i < 3; i++) in[i] = ry_input(b, NULL, ry_graph_input_type(v, i));
  ry_value l;
  ry_call(b, v, 3, in, &l);
  ry_value t = ry_sum(b, l, RY_AXES(0));
  CHECK_OK(ry_builder_finish(b, 1, &t, &tot));
  CHECK_OK(ry_grad(tot, NULL, &gv));
  if (!gv) goto done;
  ry_array *a[3], *gw = NULL;
  for (int i = 0; i < 3; i++) a[i] = rand_array(ry_graph_input_type(v, i), -1, 1);
  CHECK_OK(ry_run(gv, dev(), 3, a, 1, &gw));
  double acc[6] = {0};
  for (int k = 0; k < 4; k++) {
    ry_array *sl[3] = {ry_array_retain(a[0]), host_slice(a[1], 0, k), host_slice(a[2], 0, k)}, *gk = NULL;
    CHECK_OK(ry_run(gf, dev(), 3, sl, 1, &gk));
    for (int e = 0; gk && e < 6; e++) acc[e] += ry_array_get_f64(gk, e);
    ry_array_release(gk);
    for (int i = 0; i < 3; i++) ry_array_release(sl[i]);
  }
  for (int e = 0; gw && e < 6; e++) CHECK_NEAR(ry_array_get_f64(gw, e), acc[e], 1e-12);
  ry_array_release(gw);
  for (int i = 0; i < 3; i++) ry_array_release(a[i]);
done:
  ry_graph_release(f);
  ry_graph_release(v);
  ry_graph_release(gf);
  ry_graph_release(tot);
  ry_graph_release(gv);
}

TEST(vmap_nested) {
  /* vmap(vmap(f)) over a [4,3] grid of examples equals the double loop */
  vrow r = {"bin", f_binary, 2, {F64(3), F64(3)}, {0, NB}, {0}, 3, 0.5, 2};
  ry_graph *f = NULL, *v1 = NULL, *v2 = NULL;
  CHECK_OK(ry_trace("bin", row_trace_fn, &r, 2, r.types, NULL, &f));
  int ia1[2] = {0, NB}, oa1[4] = {1, 0, 0, 1};
  CHECK_OK(ry_vmap(f, 3, ia1, oa1, &v1));
  int ia2[2] = {1, 0}, oa2[4] = {0, 0, 2, 1};
  if (v1) CHECK_OK(ry_vmap(v1, 4, ia2, oa2, &v2));
  if (v2) {
    ry_array *in[2];
    for (int i = 0; i < 2; i++) in[i] = rand_array(ry_graph_input_type(v2, i), 0.5, 2);
    check_against_loop("vmap(vmap)", v1, v2, 4, ia2, oa2, in);
    for (int i = 0; i < 2; i++) ry_array_release(in[i]);
  }
  ry_graph_release(f);
  ry_graph_release(v1);
  ry_graph_release(v2);
}

/* ---- bad input ---- */

static int f_custom(ry_builder *b, const ry_value *x, ry_value *o) {
  ry_type t = ry_value_type(b, x[0]);
  ry_custom_call(b, "my_kernel", 1, x, 1, &t, o);
  return 1;
}

TEST(vmap_errors) {
  vrow r = {"bin", f_binary, 2, {F64(3), F64(3)}, {0, 0}, {0}, 3, 0.5, 2};
  ry_graph *f = NULL, *v = NULL;
  CHECK_OK(ry_trace("bin", row_trace_fn, &r, 2, r.types, NULL, &f));
  ry_type bad[2] = {{RY_F64, {2, {5, 3}}}, {RY_F64, {2, {3, 3}}}};
  int ia[2] = {0, 0};
  CHECK_ERR(ry_vmap_typed(f, bad, ia, NULL, &v), RY_ERR_SHAPE, "input 1 has size 3 along axis 0 but input 0 has 5");
  int ia_far[2] = {0, 2};
  CHECK_ERR(ry_vmap(f, 3, ia_far, NULL, &v), RY_ERR_INVALID_ARGUMENT, "in_axes[1] = 2", "out of range", "rank 2");
  int ia_neg[2] = {-3, 0};
  CHECK_ERR(ry_vmap(f, 3, ia_neg, NULL, &v), RY_ERR_INVALID_ARGUMENT, "in_axes[0] = -3", "out of range");
  int oa[4] = {0, 0, 5, 0};
  CHECK_ERR(ry_vmap(f, 3, NULL, oa, &v), RY_ERR_INVALID_ARGUMENT, "out_axes[2] = 5", "out of range", "output 2");
  int none[2] = {NB, NB};
  CHECK_ERR(ry_vmap(f, 3, none, NULL, &v), RY_ERR_INVALID_ARGUMENT, "at least one input", "RY_NOT_BATCHED");
  ry_type wrong[2] = {{RY_F64, {2, {5, 4}}}, {RY_F64, {2, {5, 3}}}};
  CHECK_ERR(ry_vmap_typed(f, wrong, ia, NULL, &v), RY_ERR_SHAPE, "input 0", "f64[4]", "f64[3]");
  int oa_nb[4] = {NB, 0, 0, 0};
  CHECK_ERR(ry_vmap(f, 3, NULL, oa_nb, &v), RY_ERR_INVALID_ARGUMENT, "out_axes[0] is RY_NOT_BATCHED", "output 0");
  CHECK(v == NULL);
  ry_graph_release(f);
  /* custom_call: named in the error */
  vrow rc = {"cc", f_custom, 1, {F64(3)}, {0}, {0}, 3, 0, 1};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("cc", row_trace_fn, &rc, 1, rc.types, NULL, &g));
  CHECK_ERR(ry_vmap(g, 3, NULL, NULL, &v), RY_ERR_UNSUPPORTED, "cannot batch custom_call", "my_kernel");
  /* ... but an unbatched custom_call is fine */
  ry_graph_release(g);
}
