/* Tracing through the public API: graphs, control flow with captured values,
 * calls, composites (checked against plain C), and the sticky errors with
 * op name, operand types and the caller's file:line. */
#include <stdint.h>
#include <stdlib.h>

#include "testlib.h"

static ry_array *arr_f32(ry_shape s, const float *v) {
  ry_array *a = NULL;
  ry_status st = ry_array_from_host(RY_F32, s, v, &a);
  ry_status_free(st);
  return a;
}

/* Run g on the interpreter with the given inputs; returns output 0. */
static ry_array *run1(ry_graph *g, int n, ry_array **in) {
  ry_device *d = NULL;
  ry_status_free(ry_device_get("interp", &d));
  ry_array *out[8] = {0};
  ry_status s = ry_run(g, d, n, in, ry_graph_num_outputs(g), out);
  if (s) {
    rt_fail(__FILE__, __LINE__, "run: %s", ry_status_message(s));
    ry_status_free(s);
    return NULL;
  }
  for (int i = 1; i < ry_graph_num_outputs(g); i++) ry_array_release(out[i]);
  return out[0];
}

static int f_affine(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  /* broadcasting: (2,3) * (3,) + scalar */
  out[0] = ry_add(b, ry_mul(b, in[0], in[1]), ry_scalar(b, RY_F32, 1.0));
  out[1] = ry_sum(b, out[0], RY_AXES(1));
  return 2;
}

TEST(trace_broadcast_and_outputs) {
  ry_type t[2] = {{RY_F32, RY_SHAPE(2, 3)}, {RY_F32, RY_SHAPE(3)}};
  const char *names[2] = {"x", "w"};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("affine", f_affine, NULL, 2, t, names, &g));
  if (!g) return;
  CHECK_EQ_INT(ry_graph_num_inputs(g), 2);
  CHECK_EQ_INT(ry_graph_num_outputs(g), 2);
  CHECK_STR(ry_graph_input_name(g, 0), "x");
  char buf[64];
  CHECK_STR(ry_type_str(ry_graph_output_type(g, 1), buf, sizeof buf), "f32[2]");
  CHECK_OK(ry_graph_verify(g));
  float x[6] = {1, 2, 3, 4, 5, 6}, w[3] = {1, 10, 100};
  ry_array *in[2] = {arr_f32(RY_SHAPE(2, 3), x), arr_f32(RY_SHAPE(3), w)};
  ry_array *o = run1(g, 2, in);
  if (o) {
    CHECK_NEAR(ry_array_get_f64(o, 0), 2, 0);
    CHECK_NEAR(ry_array_get_f64(o, 5), 601, 0);
  }
  ry_array_release(o);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_graph_release(g);
}

/* while with a captured value from the enclosing trace: x * 2^k while < limit */
typedef struct {
  ry_value limit;
} loop_ctx;
static int loop_cond(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  loop_ctx *c = ctx;
  out[0] = ry_lt(b, in[0], c->limit); /* captured from outside */
  return 1;
}
static int loop_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, in[0], ry_scalar(b, RY_F32, 2.0));
  out[1] = ry_add(b, in[1], ry_scalar(b, RY_I32, 1));
  return 2;
}
static int f_loop(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  loop_ctx c = {in[1]};
  ry_value init[2] = {in[0], ry_scalar(b, RY_I32, 0)};
  return ry_while(b, loop_cond, loop_body, &c, 2, init, out);
}

TEST(trace_while_with_capture) {
  ry_type t[2] = {{RY_F32, RY_SCALAR}, {RY_F32, RY_SCALAR}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("loop", f_loop, NULL, 2, t, NULL, &g));
  if (!g) return;
  CHECK_OK(ry_graph_verify(g));
  float x = 3, lim = 100;
  ry_array *in[2] = {arr_f32(RY_SCALAR, &x), arr_f32(RY_SCALAR, &lim)};
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  ry_array *out[2] = {0};
  CHECK_OK(ry_run(g, d, 2, in, 2, out));
  if (out[0]) {
    CHECK_NEAR(ry_array_get_f64(out[0], 0), 192, 0);
    CHECK_EQ_INT(ry_array_get_i64(out[1], 0), 6);
  }
  ry_array_release(out[0]);
  ry_array_release(out[1]);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_graph_release(g);
}

/* cond nested in cond, each capturing values of enclosing scopes */
typedef struct {
  ry_value a, b;
} cc;
static int inner_t(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  cc *c = ctx;
  out[0] = ry_add(b, in[0], c->b); /* captured across two levels */
  return 1;
}
static int inner_f(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_neg(b, in[0]);
  return 1;
}
static int outer_t(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  cc *c = ctx;
  ry_value p = ry_gt(b, c->a, ry_scalar(b, RY_F32, 0));
  return ry_cond(b, p, inner_t, inner_f, ctx, 1, in, out);
}
static int outer_f(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = in[0];
  return 1;
}
static int f_nested(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  cc c = {in[1], in[2]};
  ry_value p = ry_lt(b, in[0], ry_scalar(b, RY_F32, 10));
  return ry_cond(b, p, outer_t, outer_f, &c, 1, in, out);
}

TEST(trace_nested_cond_captures) {
  ry_type t[3] = {{RY_F32, RY_SCALAR}, {RY_F32, RY_SCALAR}, {RY_F32, RY_SCALAR}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("nested", f_nested, NULL, 3, t, NULL, &g));
  if (!g) return;
  CHECK_OK(ry_graph_verify(g));
  struct {
    float x, a, b, want;
  } cases[] = {{1, 1, 5, 6}, {1, -1, 5, -1}, {20, 1, 5, 20}};
  for (int k = 0; k < 3; k++) {
    ry_array *in[3] = {arr_f32(RY_SCALAR, &cases[k].x), arr_f32(RY_SCALAR, &cases[k].a), arr_f32(RY_SCALAR, &cases[k].b)};
    ry_array *o = run1(g, 3, in);
    if (o) CHECK_NEAR(ry_array_get_f64(o, 0), cases[k].want, 0);
    ry_array_release(o);
    for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  }
  ry_graph_release(g);
}

static int f_square(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, in[0], in[0]);
  return 1;
}
static int f_caller(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ry_graph *sq = ctx;
  ry_value r;
  ry_call(b, sq, 1, in, &r);
  ry_call(b, sq, 1, &r, out);
  return 1;
}

TEST(trace_call_another_graph) {
  ry_type t = {RY_F32, RY_SHAPE(3)};
  ry_graph *sq = NULL, *g = NULL;
  CHECK_OK(ry_trace("square", f_square, NULL, 1, &t, NULL, &sq));
  CHECK_OK(ry_trace("main", f_caller, sq, 1, &t, NULL, &g));
  ry_graph_release(sq); /* the caller keeps its own reference */
  if (!g) return;
  float x[3] = {1, 2, 3};
  ry_array *in = arr_f32(RY_SHAPE(3), x);
  ry_array *o = run1(g, 1, &in);
  if (o) CHECK_NEAR(ry_array_get_f64(o, 2), 81, 0);
  ry_array_release(o);
  ry_array_release(in);
  char *text = NULL;
  CHECK_OK(ry_graph_to_string(g, &text));
  if (text) CHECK(strstr(text, "func @square") && strstr(text, "call %x") == NULL);
  ry_free(text);
  ry_graph_release(g);
}

/* composites against plain C */
static int f_composites(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value x = in[0];
  out[0] = ry_softmax(b, x, -1);
  out[1] = ry_log_softmax(b, x, 1);
  out[2] = ry_logsumexp(b, x, RY_AXES(-1), 0);
  out[3] = ry_mean(b, x, RY_AXES(0), 0);
  out[4] = ry_var(b, x, RY_AXES(1), 1);
  out[5] = ry_gelu(b, x, 1);
  out[6] = ry_gelu(b, x, 0);
  out[7] = ry_silu(b, ry_relu(b, x));
  return 8;
}

TEST(trace_composites_match_plain_c) {
  ry_type t = {RY_F32, RY_SHAPE(2, 3)};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("comp", f_composites, NULL, 1, &t, NULL, &g));
  if (!g) return;
  float x[6] = {0.5f, -1.0f, 2.0f, 3.0f, 0.0f, -0.25f};
  ry_array *in = arr_f32(RY_SHAPE(2, 3), x);
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  ry_array *o[8] = {0};
  CHECK_OK(ry_run(g, d, 1, &in, 8, o));
  if (o[0]) {
    for (int r = 0; r < 2; r++) {
      double m = -INFINITY, s = 0;
      for (int c = 0; c < 3; c++) m = fmax(m, x[r * 3 + c]);
      for (int c = 0; c < 3; c++) s += exp(x[r * 3 + c] - m);
      double mean = (x[r * 3] + x[r * 3 + 1] + x[r * 3 + 2]) / 3.0, var = 0;
      for (int c = 0; c < 3; c++) var += (x[r * 3 + c] - mean) * (x[r * 3 + c] - mean) / 3.0;
      for (int c = 0; c < 3; c++) {
        double v = x[r * 3 + c];
        CHECK_NEAR(ry_array_get_f64(o[0], r * 3 + c), exp(v - m) / s, 1e-6);
        CHECK_NEAR(ry_array_get_f64(o[1], r * 3 + c), v - m - log(s), 1e-6);
        CHECK_NEAR(ry_array_get_f64(o[5], r * 3 + c), 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v))), 1e-6);
        CHECK_NEAR(ry_array_get_f64(o[6], r * 3 + c), 0.5 * v * (1 + erf(v / sqrt(2))), 1e-6);
        double rl = v > 0 ? v : 0;
        CHECK_NEAR(ry_array_get_f64(o[7], r * 3 + c), rl / (1 + exp(-rl)), 1e-6);
      }
      CHECK_NEAR(ry_array_get_f64(o[2], r), m + log(s), 1e-6);
      CHECK_NEAR(ry_array_get_f64(o[4], r), var, 1e-6);
    }
    CHECK_NEAR(ry_array_get_f64(o[3], 1), (x[1] + x[4]) / 2, 1e-7);
  }
  for (int i = 0; i < 8; i++) ry_array_release(o[i]);
  ry_array_release(in);
  ry_graph_release(g);
}

static int f_indexing(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_take(b, in[0], in[1], 0);                     /* embedding lookup: (3,) rows of (4,2) */
  out[1] = ry_one_hot(b, in[1], 4, RY_F32);                 /* (3,4) */
  out[2] = ry_argmax(b, in[0], 1);                          /* (4,) */
  out[3] = ry_matmul(b, in[0], ry_full(b, RY_F32, RY_SHAPE(2), 1.0)); /* (4,) matrix @ vector */
  out[4] = ry_squeeze(b, ry_expand_dims(b, in[0], 1), RY_AXES(1));
  out[5] = ry_clip(b, in[0], -1, 1);
  ry_value idx2 = ry_reshape(b, ry_convert(b, ry_argmax(b, in[0], 1), RY_I32), RY_SHAPE(4, 1));
  out[6] = ry_take_along_axis(b, in[0], idx2, 1);           /* (4,1): the row maxima */
  return 7;
}

TEST(trace_indexing_composites) {
  ry_type t[2] = {{RY_F32, RY_SHAPE(4, 2)}, {RY_I32, RY_SHAPE(3)}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("idx", f_indexing, NULL, 2, t, NULL, &g));
  if (!g) return;
  float x[8] = {0, 1, 5, 2, -3, -4, 9, 9};
  int32_t ix[3] = {3, 0, 7}; /* 7 is out of range: clamped to 3 */
  ry_array *in[2] = {arr_f32(RY_SHAPE(4, 2), x), NULL};
  CHECK_OK(ry_array_from_host(RY_I32, RY_SHAPE(3), ix, &in[1]));
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  ry_array *o[7] = {0};
  CHECK_OK(ry_run(g, d, 2, in, 7, o));
  if (o[0]) {
    CHECK_NEAR(ry_array_get_f64(o[0], 0), 9, 0);
    CHECK_NEAR(ry_array_get_f64(o[0], 2), 0, 0);
    CHECK_NEAR(ry_array_get_f64(o[0], 4), 9, 0);
    CHECK_NEAR(ry_array_get_f64(o[1], 0 * 4 + 3), 1, 0);
    CHECK_NEAR(ry_array_get_f64(o[1], 1 * 4 + 0), 1, 0);
    CHECK_NEAR(ry_array_get_f64(o[1], 2 * 4 + 3), 0, 0); /* one_hot of 7 with n=4 is all zero */
    CHECK_EQ_INT(ry_array_get_i64(o[2], 0), 1);
    CHECK_EQ_INT(ry_array_get_i64(o[2], 1), 0);
    CHECK_EQ_INT(ry_array_get_i64(o[2], 2), 0);
    CHECK_EQ_INT(ry_array_get_i64(o[2], 3), 0); /* ties: first index */
    CHECK_NEAR(ry_array_get_f64(o[3], 1), 7, 0);
    CHECK_NEAR(ry_array_get_f64(o[4], 3), 2, 0);
    CHECK_NEAR(ry_array_get_f64(o[5], 2), 1, 0);
    CHECK_NEAR(ry_array_get_f64(o[5], 4), -1, 0);
    CHECK_NEAR(ry_array_get_f64(o[6], 0), 1, 0);
    CHECK_NEAR(ry_array_get_f64(o[6], 1), 5, 0);
    CHECK_NEAR(ry_array_get_f64(o[6], 2), -3, 0);
  }
  for (int i = 0; i < 7; i++) ry_array_release(o[i]);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_graph_release(g);
}

/* ---- errors: sticky, with op name, operand types and file:line ---- */

static int g_err_line;
static int f_bad_add(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  g_err_line = __LINE__ + 1;
  ry_value bad = ry_add(b, in[0], in[1]);
  out[0] = ry_exp(b, bad); /* no-op after the error */
  return 1;
}

TEST(trace_error_names_op_shapes_and_line) {
  ry_type t[2] = {{RY_F32, RY_SHAPE(2, 3)}, {RY_F32, RY_SHAPE(4)}};
  ry_graph *g = NULL;
  ry_status s = ry_trace("bad", f_bad_add, NULL, 2, t, NULL, &g);
  char line[32];
  snprintf(line, sizeof line, "test_trace.c:%d", g_err_line);
  CHECK_ERR(s, RY_ERR_SHAPE, "add", "f32[2,3]", "f32[4]", "broadcast", line);
  CHECK(g == NULL);
}

/* A table of bad calls: each traced alone, each must fail with the code and words. */
typedef struct {
  const char *name;
  ry_fn fn;
  ry_code code;
  const char *words[4];
} bad_case;

#define BAD(nm) static int nm(ry_builder *b, const ry_value *in, ry_value *out, void *ctx)
BAD(bad_matmul) { (void)ctx; out[0] = ry_matmul(b, in[0], in[0]); return 1; } /* (2,3)@(2,3) */
BAD(bad_transpose) { (void)ctx; out[0] = ry_transpose(b, in[0], RY_AXES(0, 0)); return 1; }
BAD(bad_perm_len) { (void)ctx; out[0] = ry_transpose(b, in[0], RY_AXES(1, 0, 2)); return 1; }
BAD(bad_reduce_axis) { (void)ctx; out[0] = ry_sum(b, in[0], RY_AXES(5)); return 1; }
BAD(bad_reshape) { (void)ctx; out[0] = ry_reshape(b, in[0], RY_SHAPE(4, 2)); return 1; }
BAD(bad_reshape_infer) { (void)ctx; out[0] = ry_reshape(b, in[0], RY_SHAPE(-1, 4)); return 1; }
BAD(bad_and_float) { (void)ctx; out[0] = ry_and(b, in[0], in[0]); return 1; }
BAD(bad_shift_float) { (void)ctx; out[0] = ry_shift_left(b, in[0], in[0]); return 1; }
BAD(bad_slice) { (void)ctx; out[0] = ry_slice(b, in[0], RY_AXES(0, 2), RY_AXES(2, 5), RY_NO_AXES); return 1; }
BAD(bad_slice_stride) { (void)ctx; out[0] = ry_slice(b, in[0], RY_AXES(0, 0), RY_AXES(2, 3), RY_AXES(1, 0)); return 1; }
BAD(bad_concat) {
  (void)ctx;
  ry_value xs[2] = {in[0], ry_transpose(b, in[0], RY_AXES(1, 0))};
  out[0] = ry_concatenate(b, 2, xs, 0);
  return 1;
}
BAD(bad_concat_dtype) {
  (void)ctx;
  ry_value xs[2] = {in[0], ry_convert(b, in[0], RY_I32)};
  out[0] = ry_concatenate(b, 2, xs, 1);
  return 1;
}
BAD(bad_select_pred) { (void)ctx; out[0] = ry_select(b, in[0], in[0], in[0]); return 1; }
BAD(bad_broadcast_dims) { (void)ctx; out[0] = ry_broadcast_in_dim(b, in[0], RY_SHAPE(2, 4), RY_AXES(0, 1)); return 1; }
BAD(bad_dot_contract) {
  (void)ctx;
  ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(1), RY_AXES(1)};
  out[0] = ry_dot_general(b, in[0], ry_full(b, RY_F32, RY_SHAPE(5, 4), 0), d, RY_F32);
  return 1;
}
BAD(bad_dot_dtype) {
  (void)ctx;
  ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(1), RY_AXES(0)};
  out[0] = ry_dot_general(b, in[0], ry_full(b, RY_I32, RY_SHAPE(3, 4), 0), d, RY_F32);
  return 1;
}
BAD(bad_conv_features) {
  (void)ctx;
  ry_conv_dims cd;
  memset(&cd, 0, sizeof cd);
  ry_value lhs = ry_full(b, RY_F32, RY_SHAPE(1, 3, 8, 8), 0), rhs = ry_full(b, RY_F32, RY_SHAPE(4, 2, 3, 3), 0);
  out[0] = ry_convolution(b, lhs, rhs, &cd);
  return 1;
}
BAD(bad_gather_index_dtype) {
  (void)ctx;
  out[0] = ry_take(b, in[0], ry_full(b, RY_F32, RY_SHAPE(2), 0), 0);
  return 1;
}
BAD(bad_one_hot) { (void)ctx; out[0] = ry_one_hot(b, in[0], 3, RY_F32); return 1; }
BAD(bad_argmax_axis) { (void)ctx; out[0] = ry_argmax(b, in[0], 2); return 1; }
BAD(bad_softmax_axis) { (void)ctx; out[0] = ry_softmax(b, in[0], -3); return 1; }
BAD(bad_pad) {
  (void)ctx;
  out[0] = ry_pad(b, in[0], ry_scalar(b, RY_F32, 0), RY_AXES(-3, 0), RY_AXES(0, 0), RY_NO_AXES);
  return 1;
}
BAD(bad_iota) { (void)ctx; out[0] = ry_iota(b, RY_I32, RY_SHAPE(3), 1); return 1; }
BAD(bad_sort_keys) {
  (void)ctx;
  ry_sort(b, 1, in, 1, 2, 0, 1, out);
  return 1;
}
BAD(bad_bitcast) { (void)ctx; out[0] = ry_bitcast_convert(b, in[0], RY_I64); return 1; }
BAD(bad_cond_pred) {
  (void)ctx;
  return ry_cond(b, in[0], NULL, NULL, NULL, 0, NULL, out);
}
static int br_a(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)b; (void)ctx;
  out[0] = in[0];
  return 1;
}
static int br_b(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_convert(b, in[0], RY_I32);
  return 1;
}
BAD(bad_cond_branch_types) {
  (void)ctx;
  ry_value p = ry_scalar(b, RY_BOOL, 1);
  return ry_cond(b, p, br_a, br_b, NULL, 1, in, out);
}
static ry_value g_escaped;
static int br_leak(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  g_escaped = ry_exp(b, in[0]);
  out[0] = in[0];
  return 1;
}
BAD(bad_escape) {
  (void)ctx;
  ry_value p = ry_scalar(b, RY_BOOL, 1);
  ry_cond(b, p, br_leak, br_a, NULL, 1, in, out);
  out[0] = ry_add(b, g_escaped, in[0]); /* value from a finished region */
  return 1;
}
static int cond_not_bool(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)b; (void)ctx;
  out[0] = in[0];
  return 1;
}
BAD(bad_while_cond) { (void)ctx; return ry_while(b, cond_not_bool, br_a, NULL, 1, in, out); }
BAD(bad_while_body) { (void)ctx; return ry_while(b, cond_not_bool, br_b, NULL, 1, in, out); }
BAD(bad_invalid_value) { (void)ctx; out[0] = ry_exp(b, (ry_value){12345}); return 1; }
BAD(bad_negative_return) { (void)b; (void)ctx; (void)in; (void)out; return -1; }
BAD(bad_custom_name) { (void)ctx; ry_type t = {RY_F32, RY_SHAPE(2)}; return ry_custom_call(b, "", 1, in, 1, &t, out); }
BAD(bad_clip_bounds) { (void)ctx; out[0] = ry_clip(b, in[0], 2, 1); return 1; }
BAD(bad_squeeze) { (void)ctx; out[0] = ry_squeeze(b, in[0], RY_AXES(0)); return 1; }
BAD(bad_dynamic_slice) {
  (void)ctx;
  ry_value st[2] = {ry_scalar(b, RY_I32, 0), ry_scalar(b, RY_F32, 0)};
  out[0] = ry_dynamic_slice(b, in[0], st, RY_AXES(1, 1));
  return 1;
}
BAD(bad_dus_shape) {
  (void)ctx;
  ry_value st[2] = {ry_scalar(b, RY_I32, 0), ry_scalar(b, RY_I32, 0)};
  out[0] = ry_dynamic_update_slice(b, in[0], ry_full(b, RY_F32, RY_SHAPE(3, 3), 0), st);
  return 1;
}

TEST(trace_bad_input_table) {
  static const bad_case cases[] = {
      {"matmul", bad_matmul, RY_ERR_SHAPE, {"matmul", "f32[2,3]", "test_trace.c"}},
      {"transpose dup", bad_transpose, RY_ERR_INVALID_ARGUMENT, {"transpose", "appears twice"}},
      {"transpose len", bad_perm_len, RY_ERR_INVALID_ARGUMENT, {"transpose", "rank 2"}},
      {"reduce axis", bad_reduce_axis, RY_ERR_INVALID_ARGUMENT, {"reduce", "axis 5", "out of range"}},
      {"reshape", bad_reshape, RY_ERR_SHAPE, {"reshape", "6 elements", "8 elements"}},
      {"reshape -1", bad_reshape_infer, RY_ERR_SHAPE, {"reshape", "-1"}},
      {"and float", bad_and_float, RY_ERR_DTYPE, {"and", "f32", "integer or bool"}},
      {"shift float", bad_shift_float, RY_ERR_DTYPE, {"shift_left", "f32"}},
      {"slice", bad_slice, RY_ERR_INVALID_ARGUMENT, {"slice", "limit (5)", "size (3)"}},
      {"slice stride", bad_slice_stride, RY_ERR_INVALID_ARGUMENT, {"slice", "stride 0"}},
      {"concat", bad_concat, RY_ERR_SHAPE, {"concatenate", "f32[3,2]"}},
      {"concat dtype", bad_concat_dtype, RY_ERR_DTYPE, {"concatenate", "i32"}},
      {"select pred", bad_select_pred, RY_ERR_DTYPE, {"select", "bool"}},
      {"broadcast", bad_broadcast_dims, RY_ERR_SHAPE, {"broadcast_in_dim", "size 3", "size 4"}},
      {"dot contract", bad_dot_contract, RY_ERR_SHAPE, {"dot_general", "contracting", "size 3", "size 4"}},
      {"dot dtype", bad_dot_dtype, RY_ERR_DTYPE, {"dot_general", "f32", "i32"}},
      {"conv", bad_conv_features, RY_ERR_SHAPE, {"convolution", "features"}},
      {"gather dtype", bad_gather_index_dtype, RY_ERR_DTYPE, {"gather", "indices"}},
      {"one_hot", bad_one_hot, RY_ERR_DTYPE, {"one_hot", "integers"}},
      {"argmax axis", bad_argmax_axis, RY_ERR_INVALID_ARGUMENT, {"argmax", "axis 2"}},
      {"softmax axis", bad_softmax_axis, RY_ERR_INVALID_ARGUMENT, {"softmax", "axis -3"}},
      {"pad", bad_pad, RY_ERR_SHAPE, {"pad", "negative size"}},
      {"iota", bad_iota, RY_ERR_INVALID_ARGUMENT, {"iota", "dim 1"}},
      {"sort keys", bad_sort_keys, RY_ERR_INVALID_ARGUMENT, {"sort", "num_keys"}},
      {"bitcast", bad_bitcast, RY_ERR_DTYPE, {"bitcast", "f32", "i64"}},
      {"cond pred", bad_cond_pred, RY_ERR_DTYPE, {"cond", "bool"}},
      {"cond branches", bad_cond_branch_types, RY_ERR_SHAPE, {"cond", "branch 1", "i32"}},
      {"escape", bad_escape, RY_ERR_INVALID_ARGUMENT, {"add", "region that has already finished"}},
      {"while cond", bad_while_cond, RY_ERR_SHAPE, {"while", "cond must return one bool"}},
      {"while body", bad_while_body, RY_ERR_SHAPE, {"while"}},
      {"invalid value", bad_invalid_value, RY_ERR_INVALID_ARGUMENT, {"exp", "not a valid value"}},
      {"negative return", bad_negative_return, RY_ERR_INVALID_ARGUMENT, {"returned -1"}},
      {"custom name", bad_custom_name, RY_ERR_INVALID_ARGUMENT, {"custom_call", "target"}},
      {"clip", bad_clip_bounds, RY_ERR_INVALID_ARGUMENT, {"clip", "lower bound"}},
      {"squeeze", bad_squeeze, RY_ERR_SHAPE, {"squeeze", "size 2"}},
      {"dynamic_slice", bad_dynamic_slice, RY_ERR_DTYPE, {"dynamic_slice", "integer scalar"}},
      {"dynamic_update_slice", bad_dus_shape, RY_ERR_SHAPE, {"dynamic_update_slice", "larger"}},
  };
  ry_type t = {RY_F32, RY_SHAPE(2, 3)};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    rt_case_begin(cases[i].name);
    ry_graph *g = NULL;
    ry_status s = ry_trace("bad", cases[i].fn, NULL, 1, &t, NULL, &g);
    rt_check_err(__FILE__, __LINE__, cases[i].name, s, cases[i].code, cases[i].words[0], cases[i].words[1],
                 cases[i].words[2], cases[i].words[3], (const char *)NULL);
    CHECK(g == NULL);
    rt_case_end();
  }
}

TEST(trace_bad_arguments) {
  ry_graph *g = NULL;
  ry_type t = {RY_F32, RY_SHAPE(2)};
  CHECK_ERR(ry_trace("x", NULL, NULL, 1, &t, NULL, &g), RY_ERR_INVALID_ARGUMENT, "function is NULL");
  CHECK_ERR(ry_trace("x", f_square, NULL, 1, NULL, NULL, &g), RY_ERR_INVALID_ARGUMENT, "input list");
  ry_type bad = {RY_F32, RY_SHAPE(2, -4)};
  CHECK_ERR(ry_trace("x", f_square, NULL, 1, &bad, NULL, &g), RY_ERR_INVALID_ARGUMENT, "invalid type");
  ry_builder *b = ry_builder_new("m");
  ry_value x = ry_input(b, "x", t);
  ry_value y = ry_exp(b, x);
  ry_value outs[2] = {y, {999}};
  CHECK_ERR(ry_builder_finish(b, 2, outs, &g), RY_ERR_INVALID_ARGUMENT, "output 1");
  CHECK(g == NULL);
}

/* ---- matmul precision ---- */

static int f_mm_bf16(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  if (ctx && !ry_builder_set_matmul_dtype(b, *(const ry_dtype *)ctx)) return -1;
  out[0] = ry_sum(b, ry_matmul(b, in[0], in[1]), RY_AXES(0, 1));
  out[1] = ry_matmul(b, in[0], in[1]);
  return 2;
}

/* v rounded to bf16, to nearest even (finite values) */
static double bf16_round(double v) {
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}

/* the printed graph: does it hold a dot_general with this result type? */
static bool prints(ry_graph *g, const char *needle) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return false;
  ry_status_free(ry_graph_print(g, f));
  fclose(f);
  bool hit = text && strstr(text, needle);
  free(text);
  return hit;
}

/* ry_builder_set_matmul_dtype(RY_BF16): the f32 product becomes an explicit
 * bf16 dot_general (operands and result rounded to bf16, f32 sums) with the
 * values of that definition on interp and cpu, and its gradient's products
 * are bf16 too; another dtype is refused by name. */
TEST(trace_matmul_dtype_bf16) {
  ry_dtype bf = RY_BF16;
  ry_type t[2] = {{RY_F32, RY_SHAPE(3, 37)}, {RY_F32, RY_SHAPE(37, 4)}};
  ry_graph *g = NULL, *dg = NULL;
  CHECK_OK(ry_trace("mm", f_mm_bf16, &bf, 2, t, NULL, &g));
  if (!g) return;
  CHECK(prints(g, "bf16[3,4] = dot_general"));
  ry_grad_opts go = {1, (const int[]){0}, 1};
  CHECK_OK(ry_grad(g, &go, &dg));
  CHECK(dg && prints(dg, "bf16[3,37] = dot_general") && !prints(dg, "f32[3,37] = dot_general"));
  float x[3 * 37], w[37 * 4];
  for (int i = 0; i < 3 * 37; i++) x[i] = (float)sin(0.37 * i) * 1.7f;
  for (int i = 0; i < 37 * 4; i++) w[i] = (float)cos(0.23 * i) * 0.9f;
  ry_array *in[2] = {arr_f32(t[0].shape, x), arr_f32(t[1].shape, w)};
  const char *devs[] = {"interp", "cpu"};
  for (int d = 0; d < 2; d++) {
    ry_device *dev = NULL;
    CHECK_OK(ry_device_get(devs[d], &dev));
    ry_array *y[2] = {0}, *gr[2] = {0};
    CHECK_OK(ry_run(g, dev, 2, in, 2, y));
    if (dg) CHECK_OK(ry_run(dg, dev, 2, in, 2, gr));
    for (int i = 0; y[1] && i < 3; i++)
      for (int j = 0; j < 4; j++) {
        double r = 0;
        for (int k = 0; k < 37; k++) r += bf16_round(x[i * 37 + k]) * bf16_round(w[k * 4 + j]);
        double v = ((const float *)ry_array_data(y[1]))[i * 4 + j];
        /* one bf16 step (2^-8) where the f32 sum lands beside a rounding tie */
        CHECK_MSG(v == bf16_round(r) || fabs(v - r) <= 0x1p-8 * fabs(r), "%s: y[%d][%d] = %.8g, want %.8g", devs[d], i, j, v,
                  bf16_round(r));
      }
    /* d sum / dx[i][k] = sum_j w[k][j], from bf16 operands (ones and w) */
    for (int i = 0; gr[0] && i < 3; i++)
      for (int k = 0; k < 37; k++) {
        double r = 0;
        for (int j = 0; j < 4; j++) r += bf16_round(w[k * 4 + j]);
        double v = ((const float *)ry_array_data(gr[0]))[i * 37 + k];
        CHECK_MSG(v == bf16_round(r) || fabs(v - r) <= 0x1p-8 * fabs(r), "%s: dx[%d][%d] = %.8g, want %.8g", devs[d], i, k, v,
                  bf16_round(r));
      }
    for (int i = 0; i < 2; i++) ry_array_release(y[i]), ry_array_release(gr[i]);
  }
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_graph_release(g);
  ry_graph_release(dg);
  ry_dtype f16 = RY_F16;
  ry_graph *bad = NULL;
  CHECK_ERR(ry_trace("mm", f_mm_bf16, &f16, 2, t, NULL, &bad), RY_ERR_INVALID_ARGUMENT, "f16 is not a matmul precision");
}
