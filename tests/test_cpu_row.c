/* Row kernels of the cpu backend (src/backend/cpu/fuse.c, "row kernels"):
 * softmax, log-softmax, layer norm and RMS norm, forward and backward (from
 * ry_grad), each become one row kernel with the expected number of passes
 * in the fusion report (RYFT_DUMP); they match the interpreter, also for
 * rows of length 1, lengths that are no multiple of the lanes, -inf and NaN
 * in softmax, reductions over several trailing axes and f64; results are
 * bitwise the same with 1 and 2 threads. */
#include <stdlib.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "ryft/nn.h"
#include "testlib.h"

static ry_device *dev(const char *name) {
  ry_device *d = NULL;
  CHECK_OK(ry_device_get(name, &d));
  return d;
}

/* ---- functions under test ---- */

typedef struct {
  int kind;     /* one of the K_* below */
  ry_dtype dt;
} rcfg;

enum { K_SOFTMAX, K_LOG_SOFTMAX, K_LAYER_NORM, K_RMS_NORM, K_SOFTMAX_SG };

/* forward: y = f(x, ...) */
static ry_value fwd(ry_builder *b, const rcfg *c, const ry_value *in) {
  switch (c->kind) {
  case K_SOFTMAX: return ry_softmax(b, in[0], -1);
  case K_LOG_SOFTMAX: return ry_log_softmax(b, in[0], -1);
  case K_LAYER_NORM: return ry_nn_layer_norm(b, in[0], in[1], in[2], 1e-5);
  case K_SOFTMAX_SG: { /* jax.nn.softmax: the max is a constant to the gradient */
    ry_value m = ry_stop_gradient(b, ry_max_keepdims(b, in[0], RY_AXES(-1), 1));
    ry_value e = ry_exp(b, ry_sub(b, in[0], m));
    return ry_div(b, e, ry_sum_keepdims(b, e, RY_AXES(-1), 1));
  }
  default: return ry_nn_rms_norm(b, in[0], in[1], 1e-6);
  }
}

static int n_params(const rcfg *c) { return c->kind == K_LAYER_NORM ? 3 : c->kind == K_RMS_NORM ? 2 : 1; }

static int f_fwd(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = fwd(b, ctx, in);
  return 1;
}

/* loss = sum(f(x, ...) * w): its gradient is the backward pass of f */
static int f_loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const rcfg *c = ctx;
  ry_value y = fwd(b, c, in);
  ry_axes all = {0, {0}};
  for (int d = 0; d < ry_value_type(b, y).shape.rank; d++) all.v[all.n++] = d;
  out[0] = ry_sum(b, ry_mul(b, y, in[n_params(c)]), all);
  return 1;
}

static ry_graph *trace_fwd(rcfg *c, ry_shape xs) {
  ry_type t[4];
  int n = n_params(c);
  t[0] = (ry_type){c->dt, xs};
  ry_shape ps = RY_SHAPE(xs.dims[xs.rank - 1]);
  for (int i = 1; i < n; i++) t[i] = (ry_type){c->dt, ps};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("fwd", f_fwd, c, n, t, NULL, &g));
  return g;
}

/* the gradient of the loss with respect to every input but w */
static ry_graph *trace_grad(rcfg *c, ry_shape xs) {
  ry_type t[4];
  int n = n_params(c);
  t[0] = (ry_type){c->dt, xs};
  ry_shape ps = RY_SHAPE(xs.dims[xs.rank - 1]);
  for (int i = 1; i < n; i++) t[i] = (ry_type){c->dt, ps};
  t[n] = (ry_type){c->dt, xs};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace("loss", f_loss, c, n + 1, t, NULL, &f));
  int argnums[3] = {0, 1, 2};
  ry_grad_opts o = {n, argnums, 0};
  if (f) CHECK_OK(ry_grad(f, &o, &g));
  ry_graph_release(f);
  return g;
}

/* deterministic inputs; `special` puts -inf / NaN rows into input 0 */
static double wave(int64_t i, int k) { return sin((double)i * 0.37 + k) * 3.0 + (double)(i % 7) * 0.1; }

/* an f32 / f64 array of t with element i = wave(i, k), or a special value
 * where special(i) says so (1: -inf, 2: NaN, 3: -0, 4: +0, 5: +inf) */
static ry_array *array_of(ry_type t, int k, int (*special)(int64_t)) {
  int64_t n = ry_shape_numel(t.shape);
  double *d = malloc((size_t)(n ? n : 1) * sizeof(double));
  float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    int sp = special ? special(i) : 0;
    d[i] = sp == 1 ? -INFINITY : sp == 2 ? NAN : sp == 3 ? -0.0 : sp == 4 ? 0.0 : sp == 5 ? INFINITY : wave(i, k);
    f[i] = (float)d[i];
  }
  ry_array *a = NULL;
  CHECK_OK(ry_array_from_host(t.dtype, t.shape, t.dtype == RY_F64 ? (void *)d : (void *)f, &a));
  free(d);
  free(f);
  return a;
}

static ry_array *input(ry_type t, int k) { return array_of(t, k, NULL); }

/* ---- plan report and runs ---- */


/* The fusion report of g compiled on cpu (caller frees). */
static char *fusion_report(ry_graph *g) {
  char dir[] = "/tmp/ryft-test-row-XXXXXX";
  if (!mkdtemp(dir)) return NULL;
  setenv("RYFT_DUMP", dir, 1);
  ry_executable *e = NULL;
  CHECK_OK(ry_compile(g, dev("cpu"), &e));
  unsetenv("RYFT_DUMP");
  ry_executable_free(e);
  char *rep = rt_read_dump(dir, "04-fusion.txt");
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (getenv("RYFT_TEST_DEBUG")) fprintf(stderr, "dump in %s\n", dir);
  else if (system(cmd) != 0) rt_fail(__FILE__, __LINE__, "could not remove %s", dir);
  if (getenv("RYFT_TEST_DEBUG") && rep) fprintf(stderr, "%s", rep);
  return rep;
}

/* row kernels in a report and the passes of each */
static int row_kernels(const char *rep, int *passes, int max) {
  int n = 0;
  for (const char *s = rep; s && (s = strstr(s, "row kernel ")); s++) {
    const char *p = strstr(s, " passes");
    const char *c = p;
    while (c && c > s && c[-1] >= '0' && c[-1] <= '9') c--;
    if (n < max) passes[n] = p ? atoi(c) : -1;
    n++;
  }
  return n;
}

/* plain kernels (not row kernels) that are reductions, in a report */
static int plain_reductions(const char *rep) {
  int n = 0;
  for (const char *s = rep; s && (s = strstr(s, "\nkernel ")); s++) {
    const char *e = strchr(s + 1, '\n');
    const char *r = strstr(s, "= reduce,");
    if (r && (!e || r < e)) n++;
  }
  return n;
}

/* Run g on cpu with 1 and 2 threads (split at every row) and on the
 * interpreter: cpu results bitwise equal across thread counts, close to the
 * interpreter (NaN where it has NaN, the same infinities). */
static void check_runs(ry_graph *g, int k0, double tol, ry_array *const *given) {
  int n_in = ry_graph_num_inputs(g), n_out = ry_graph_num_outputs(g);
  ry_array *in[8] = {0}, *o1[8] = {0}, *o2[8] = {0}, *ref[8] = {0};
  for (int i = 0; i < n_in; i++) in[i] = given && given[i] ? ry_array_retain(given[i]) : input(ry_graph_input_type(g, i), k0 + i);
  CHECK_OK(ry_run(g, dev("interp"), n_in, in, n_out, ref));
  ryc_set_parallel_threshold(1);
  ryc_set_num_threads(1);
  CHECK_OK(ry_run(g, dev("cpu"), n_in, in, n_out, o1));
  ryc_set_num_threads(2);
  CHECK_OK(ry_run(g, dev("cpu"), n_in, in, n_out, o2));
  ryc_set_num_threads(0);
  ryc_set_parallel_threshold(0);
  for (int i = 0; i < n_out; i++) {
    if (!o1[i] || !o2[i] || !ref[i]) continue;
    CHECK(ry_array_nbytes(o1[i]) == ry_array_nbytes(o2[i]) &&
          memcmp(ry_array_data(o1[i]), ry_array_data(o2[i]), ry_array_nbytes(o1[i])) == 0);
    double scale = 1;
    for (int64_t j = 0; j < ry_array_numel(ref[i]); j++) {
      double w = fabs(ry_array_get_f64(ref[i], j));
      if (isfinite(w) && w > scale) scale = w;
    }
    for (int64_t j = 0; j < ry_array_numel(ref[i]); j++) {
      double a = ry_array_get_f64(o1[i], j), b = ry_array_get_f64(ref[i], j);
      bool ok = isnan(b) ? isnan(a) : isinf(b) ? a == b : fabs(a - b) <= tol * scale;
      if (!ok) {
        rt_fail(__FILE__, __LINE__, "output %d element %lld: cpu %.9g, interpreter %.9g", i, (long long)j, a, b);
        break;
      }
    }
  }
  for (int i = 0; i < 8; i++) {
    ry_array_release(in[i]);
    ry_array_release(o1[i]);
    ry_array_release(o2[i]);
    ry_array_release(ref[i]);
  }
}

/* ---- the plan: row kernels with their passes ---- */

/* g compiles to row kernels making want[0], want[1], ... passes (n_want of
 * them), no other reduction along the rows is left; it runs right */
static void check_plan(rcfg c, bool grad, int n_want, const int *want) {
  ry_shape xs = RY_SHAPE(64, 40);
  ry_graph *g = grad ? trace_grad(&c, xs) : trace_fwd(&c, xs);
  if (!g) return;
  char *rep = fusion_report(g);
  int passes[8];
  int n = row_kernels(rep, passes, 8);
  CHECK_MSG(n == n_want, "%d row kernels, want %d:\n%s", n, n_want, rep ? rep : "(no report)");
  for (int i = 0; i < n && i < n_want; i++)
    CHECK_MSG(passes[i] == want[i], "row kernel %d makes %d passes, want %d:\n%s", i, passes[i], want[i], rep);
  /* what is left are reductions over the rows (gradients of scale / bias) */
  int plain = plain_reductions(rep);
  CHECK_MSG(plain == (grad ? c.kind == K_LAYER_NORM ? 2 : c.kind == K_RMS_NORM ? 1 : 0 : 0),
            "%d reductions outside row kernels:\n%s", plain, rep);
  free(rep);
  check_runs(g, 1, c.dt == RY_F64 ? 1e-12 : 2e-5, NULL);
  ry_graph_release(g);
}

/* softmax: max, sum of exp, then the output */
TEST(cpu_row_softmax_is_one_row_kernel) { check_plan((rcfg){K_SOFTMAX, RY_F32}, false, 1, (int[]){3}); }
TEST(cpu_row_log_softmax_is_one_row_kernel) { check_plan((rcfg){K_LOG_SOFTMAX, RY_F32}, false, 1, (int[]){3}); }
/* layer norm: mean, variance of the centred values, then the output */
TEST(cpu_row_layer_norm_is_one_row_kernel) { check_plan((rcfg){K_LAYER_NORM, RY_F32}, false, 1, (int[]){3}); }
/* RMS norm: mean square, then the output */
TEST(cpu_row_rms_norm_is_one_row_kernel) { check_plan((rcfg){K_RMS_NORM, RY_F32}, false, 1, (int[]){2}); }

/* The gradients, forward included. ryft's softmax differentiates through
 * the max (no stop_gradient), which adds the count of maxima and a last
 * reduction: softmax grad = max | sum exp, count | sum(g*y) | sum over the
 * max's path | output; log-softmax grad = max, sum(-g) | sum exp, count |
 * sum over the max's path | output. Layer / RMS norm: the gradients of
 * scale and bias reduce over the rows and need the forward's per-row
 * values, so the forward (mean, variance / mean square) is one row kernel
 * and the backward another (two sums, then the output). */
TEST(cpu_row_softmax_grad_is_one_row_kernel) { check_plan((rcfg){K_SOFTMAX, RY_F32}, true, 1, (int[]){5}); }
TEST(cpu_row_log_softmax_grad_is_one_row_kernel) { check_plan((rcfg){K_LOG_SOFTMAX, RY_F32}, true, 1, (int[]){4}); }
TEST(cpu_row_layer_norm_grad_is_two_row_kernels) { check_plan((rcfg){K_LAYER_NORM, RY_F32}, true, 2, (int[]){2, 3}); }
TEST(cpu_row_rms_norm_grad_is_two_row_kernels) { check_plan((rcfg){K_RMS_NORM, RY_F32}, true, 2, (int[]){1, 2}); }
/* JAX's softmax (stop_gradient on the max): max | sum exp | sum over the
 * cotangent | output */
TEST(cpu_row_jax_softmax_grad_is_one_row_kernel) { check_plan((rcfg){K_SOFTMAX_SG, RY_F32}, true, 1, (int[]){4}); }
TEST(cpu_row_f64_softmax_and_layer_norm_grads) {
  check_plan((rcfg){K_SOFTMAX, RY_F64}, true, 1, (int[]){5});
  check_plan((rcfg){K_LAYER_NORM, RY_F64}, true, 2, (int[]){2, 3});
}

/* ---- edge cases, as IR programs ---- */

static ry_graph *parse(const char *text) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(text, -1, "test", &g));
  return g;
}

/* the row kernels in g's plan; runs g as check_runs does */
static int plan_and_run(const char *text, ry_array *const *given, int *passes) {
  ry_graph *g = parse(text);
  if (!g) return -1;
  char *rep = fusion_report(g);
  int n = row_kernels(rep, passes, 8);
  free(rep);
  check_runs(g, 3, 1e-5, given);
  ry_graph_release(g);
  return n;
}

/* softmax over rows of length n returning the row max and the softmax */
static void softmax_rows(char *buf, size_t size, const char *dt, int rows, int n) {
  snprintf(buf, size,
           "func @main(%%x: %s[%d,%d]) -> (%s[%d], %s[%d,%d]) {\n"
           "  %%0: %s[%d] = reduce %%x {kind=max, axes=[1]}\n"
           "  %%1: %s[%d,%d] = broadcast_in_dim %%0 {dims=[0]}\n"
           "  %%2: %s[%d,%d] = sub %%x, %%1\n"
           "  %%3: %s[%d,%d] = exp %%2\n"
           "  %%4: %s[%d] = reduce %%3 {kind=sum, axes=[1]}\n"
           "  %%5: %s[%d,%d] = broadcast_in_dim %%4 {dims=[0]}\n"
           "  %%6: %s[%d,%d] = div %%3, %%5\n"
           "  return %%0, %%6\n"
           "}\n",
           dt, rows, n, dt, rows, dt, rows, n, dt, rows, dt, rows, n, dt, rows, n, dt, rows, n, dt, rows, dt, rows, n,
           dt, rows, n);
}

/* A softmax masked by a bool input plus an i8 input: the one-byte loads
 * of the reduction's lanes loop are staged as int32 lanes (rowkern.c,
 * row_stage) so the loop vectorizes; rows of 37 (two lanes loops and a
 * tail) and of 7 (the tail alone), rows with masked elements and one whose
 * max is 0 (the fast max is redone by the exact step, staged too). */
static int f_masked_softmax(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value s = ry_add(b, in[0], ry_convert(b, in[2], RY_F32));
  ry_value ninf = ry_full(b, RY_F32, ry_value_type(b, s).shape, -INFINITY);
  out[0] = ry_softmax(b, ry_select(b, in[1], s, ninf), -1);
  return 1;
}

TEST(cpu_row_masked_softmax_with_byte_inputs) {
  static const int64_t lens[] = {37, 7};
  for (int li = 0; li < 2; li++) {
    int64_t rows = 6, len = lens[li];
    ry_shape xs = RY_SHAPE(rows, len);
    ry_type t[3] = {{RY_F32, xs}, {RY_BOOL, xs}, {RY_I8, xs}};
    ry_graph *g = NULL;
    CHECK_OK(ry_trace("masked_softmax", f_masked_softmax, NULL, 3, t, NULL, &g));
    if (!g) return;
    char *rep = fusion_report(g);
    int passes[8];
    CHECK_MSG(row_kernels(rep, passes, 8) == 1, "not one row kernel:\n%s", rep ? rep : "(no report)");
    free(rep);
    uint8_t *mask = malloc((size_t)(rows * len));
    int8_t *bias = malloc((size_t)(rows * len));
    float *x = malloc((size_t)(rows * len) * sizeof *x);
    for (int64_t i = 0; i < rows * len; i++) {
      mask[i] = (uint8_t)((i * 7 + i / len) % 5 != 0);
      bias[i] = (int8_t)((i * 13) % 9 - 4);
      x[i] = (float)((i * 29) % 17) * 0.25f - 2.0f;
      if (i / len == 2) { /* a row whose largest score is 0: the max is redone by the exact step */
        x[i] = -(float)(i % 3);
        bias[i] = 0;
        mask[i] = 1;
      }
    }
    ry_array *given[3] = {NULL, NULL, NULL};
    CHECK_OK(ry_array_from_host(RY_F32, xs, x, &given[0]));
    CHECK_OK(ry_array_from_host(RY_BOOL, xs, mask, &given[1]));
    CHECK_OK(ry_array_from_host(RY_I8, xs, bias, &given[2]));
    check_runs(g, 1, 2e-6, given);
    for (int i = 0; i < 3; i++) ry_array_release(given[i]);
    free(mask);
    free(bias);
    free(x);
    ry_graph_release(g);
  }
}

TEST(cpu_row_lengths_1_and_odd) {
  static const int lens[] = {1, 2, 15, 16, 17, 37, 100};
  char text[2048];
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    for (int d = 0; d < 2; d++) {
      softmax_rows(text, sizeof text, d ? "f64" : "f32", 9, lens[i]);
      int passes[8];
      int n = plan_and_run(text, NULL, passes);
      CHECK_MSG(n == 1, "length %d: %d row kernels", lens[i], n);
    }
  }
}

/* specials per element of a (8, 20) input: row 0 all -inf, row 1 a NaN,
 * row 2 a +inf, row 3 some -inf, row 4 only -0, row 5 -0 then +0, row 6 +0
 * then -0, row 7 a NaN in the tail (past the lanes) */
static int special8x20(int64_t i) {
  int64_t r = i / 20, c = i % 20;
  switch (r) {
  case 0: return 1;
  case 1: return c == 3 ? 2 : 0;
  case 2: return c == 5 ? 5 : 0;
  case 3: return c % 3 == 0 ? 1 : 0;
  case 4: return 3;
  case 5: return c < 10 ? 3 : 4;
  case 6: return c < 10 ? 4 : 3;
  default: return c == 18 ? 2 : 0;
  }
}

TEST(cpu_row_softmax_with_inf_nan_and_signed_zeros) {
  char text[2048];
  softmax_rows(text, sizeof text, "f32", 8, 20);
  ry_array *x = array_of((ry_type){RY_F32, RY_SHAPE(8, 20)}, 0, special8x20);
  int passes[8];
  int n = plan_and_run(text, &x, passes);
  CHECK_EQ_INT(n, 1);
  /* the row max bit for bit: -0 only when every element is -0 */
  ry_graph *g = parse(text);
  ry_array *o[2] = {0};
  if (g) CHECK_OK(ry_run(g, dev("cpu"), 1, &x, 2, o));
  if (o[0]) {
    const float *m = ry_array_data(o[0]);
    CHECK(isinf(m[0]) && m[0] < 0);
    CHECK(isnan(m[1]) && isnan(m[7]));
    CHECK(isinf(m[2]) && m[2] > 0);
    CHECK(m[4] == 0 && signbit(m[4]));
    CHECK(m[5] == 0 && !signbit(m[5]));
    CHECK(m[6] == 0 && !signbit(m[6]));
  }
  ry_array_release(o[0]);
  ry_array_release(o[1]);
  ry_array_release(x);
  ry_graph_release(g);
}

/* softmax over the two trailing axes of (4, 6, 5, 3), layer norm over the
 * two trailing axes of (3, 4, 8) with a scale over the last one */
TEST(cpu_row_reductions_over_several_trailing_axes) {
  int passes[8];
  int n = plan_and_run("func @main(%x: f32[4,6,5,3]) -> (f32[4,6,5,3]) {\n"
                       "  %0: f32[4,6] = reduce %x {kind=max, axes=[2, 3]}\n"
                       "  %1: f32[4,6,5,3] = broadcast_in_dim %0 {dims=[0, 1]}\n"
                       "  %2: f32[4,6,5,3] = sub %x, %1\n"
                       "  %3: f32[4,6,5,3] = exp %2\n"
                       "  %4: f32[4,6] = reduce %3 {kind=sum, axes=[2, 3]}\n"
                       "  %5: f32[4,6,5,3] = broadcast_in_dim %4 {dims=[0, 1]}\n"
                       "  %6: f32[4,6,5,3] = div %3, %5\n"
                       "  return %6\n"
                       "}\n",
                       NULL, passes);
  CHECK(n == 1 && passes[0] == 3);
  n = plan_and_run("func @main(%x: f64[3,4,8], %s: f64[8]) -> (f64[3,4,8], f64[3]) {\n"
                   "  %0: f64[3] = reduce %x {kind=sum, axes=[1, 2]}\n"
                   "  %1: f64[] = constant {value=[0.03125]}\n"
                   "  %2: f64[3] = broadcast_in_dim %1 {dims=[]}\n"
                   "  %3: f64[3] = mul %0, %2\n"
                   "  %4: f64[3,4,8] = broadcast_in_dim %3 {dims=[0]}\n"
                   "  %5: f64[3,4,8] = sub %x, %4\n"
                   "  %6: f64[3,4,8] = mul %5, %5\n"
                   "  %7: f64[3] = reduce %6 {kind=sum, axes=[1, 2]}\n"
                   "  %8: f64[3] = mul %7, %2\n"
                   "  %9: f64[3] = rsqrt %8\n"
                   "  %10: f64[3,4,8] = broadcast_in_dim %9 {dims=[0]}\n"
                   "  %11: f64[3,4,8] = mul %5, %10\n"
                   "  %12: f64[3,4,8] = broadcast_in_dim %s {dims=[2]}\n"
                   "  %13: f64[3,4,8] = mul %11, %12\n"
                   "  return %13, %9\n"
                   "}\n",
                   NULL, passes);
  CHECK(n == 1 && passes[0] == 3);
}

/* Not row kernels: a reduction over a leading axis (batch norm's shape), and
 * a row value read at another row (reversed), which the row kernel cannot
 * do: planned as before, and right. */
/* A plain reduction kernel (the reverse keeps it out of row kernels) over a
 * bool mask and an i8 input: its lanes loop stages the one-byte loads too
 * (loops.c, print_loads_as); rows of 40 (two lanes loops and a tail). */
TEST(cpu_plain_reduction_with_byte_inputs) {
  int64_t rows = 30, len = 40;
  uint8_t mask[30 * 40];
  int8_t q[30 * 40];
  for (int64_t i = 0; i < rows * len; i++) {
    mask[i] = (uint8_t)((i * 11) % 7 > 2);
    q[i] = (int8_t)((i * 37) % 251 - 125);
  }
  ry_array *given[3] = {NULL, NULL, NULL};
  CHECK_OK(ry_array_from_host(RY_BOOL, RY_SHAPE(rows, len), mask, &given[1]));
  CHECK_OK(ry_array_from_host(RY_I8, RY_SHAPE(rows, len), q, &given[2]));
  int passes[8];
  int n = plan_and_run("func @main(%x: f32[30,40], %m: bool[30,40], %q: i8[30,40]) -> (f32[30]) {\n"
                       "  %0: f32[30,40] = convert %m\n"
                       "  %1: f32[30,40] = convert %q\n"
                       "  %2: f32[30,40] = mul %x, %0\n"
                       "  %3: f32[30,40] = add %2, %1\n"
                       "  %4: f32[30] = reduce %3 {kind=sum, axes=[1]}\n"
                       "  %5: f32[30] = reverse %4 {dims=[0]}\n"
                       "  return %5\n"
                       "}\n",
                       given, passes);
  CHECK_EQ_INT(n, 0);
  ry_array_release(given[1]);
  ry_array_release(given[2]);
}

TEST(cpu_row_other_shapes_stay_plain_kernels) {
  int passes[8];
  int n = plan_and_run("func @main(%x: f32[30,20]) -> (f32[30,20]) {\n"
                       "  %0: f32[20] = reduce %x {kind=sum, axes=[0]}\n"
                       "  %1: f32[30,20] = broadcast_in_dim %0 {dims=[1]}\n"
                       "  %2: f32[30,20] = sub %x, %1\n"
                       "  %3: f32[30,20] = mul %2, %2\n"
                       "  %4: f32[20] = reduce %3 {kind=sum, axes=[0]}\n"
                       "  %5: f32[30,20] = broadcast_in_dim %4 {dims=[1]}\n"
                       "  %6: f32[30,20] = div %2, %5\n"
                       "  return %6\n"
                       "}\n",
                       NULL, passes);
  CHECK_EQ_INT(n, 0);
  n = plan_and_run("func @main(%x: f32[30,20]) -> (f32[30,20]) {\n"
                   "  %0: f32[30] = reduce %x {kind=max, axes=[1]}\n"
                   "  %1: f32[30] = reverse %0 {dims=[0]}\n"
                   "  %2: f32[30,20] = broadcast_in_dim %1 {dims=[0]}\n"
                   "  %3: f32[30,20] = sub %x, %2\n"
                   "  %4: f32[30] = reduce %3 {kind=sum, axes=[1]}\n"
                   "  %5: f32[30,20] = broadcast_in_dim %4 {dims=[0]}\n"
                   "  %6: f32[30,20] = mul %3, %5\n"
                   "  return %6\n"
                   "}\n",
                   NULL, passes);
  CHECK_EQ_INT(n, 0);
}

/* The gradients of scale and bias are column sums; they split over the
 * columns (in blocks of 64, so the same elements take the vector loop for
 * any split) and stay bitwise the same for 1 and 2 threads. */
TEST(cpu_column_sums_split_over_columns) {
  int passes[8];
  ry_graph *g = parse("func @main(%x: f32[300,200]) -> (f32[200]) {\n"
                      "  %0: f32[300,200] = tanh %x\n"
                      "  %1: f32[200] = reduce %0 {kind=sum, axes=[0]}\n"
                      "  return %1\n"
                      "}\n");
  if (!g) return;
  char *rep = fusion_report(g);
  CHECK_MSG(rep && strstr(rep, "loop trip 4"), "the column sum is not split in 4 blocks:\n%s", rep ? rep : "(none)");
  CHECK_EQ_INT(row_kernels(rep, passes, 8), 0);
  free(rep);
  check_runs(g, 5, 1e-5, NULL);
  ry_graph_release(g);
}

/* Found in review: a pad or concatenate feeding a row-kernel member (its
 * loads clamp or divide the index, which row kernels do not print) made the
 * kernel read the wrong rows or outside the buffers; such a member now leaves
 * the group. And a row kernel whose first output is empty still runs for the
 * others. Each must match the interpreter. */
TEST(cpu_row_pad_concat_and_empty_outputs) {
  static const char *const progs[] = {
      "func @main(%x: f32[64,30], %y: f32[64,20]) -> (f32[64,50]) {\n"
      "  %1: f32[64,50] = concatenate %x, %y {dim=1}\n"
      "  %2: f32[64] = reduce %1 {kind=max, axes=[1]}\n"
      "  %3: f32[64,50] = broadcast_in_dim %2 {dims=[0]}\n"
      "  %4: f32[64,50] = sub %1, %3\n"
      "  %5: f32[64,50] = exp %4\n"
      "  %6: f32[64] = reduce %5 {kind=sum, axes=[1]}\n"
      "  %7: f32[64,50] = broadcast_in_dim %6 {dims=[0]}\n"
      "  %8: f32[64,50] = div %5, %7\n"
      "  return %8\n"
      "}\n",
      "func @main(%x: f32[64,3000], %y: f32[64,2000]) -> (f32[64,5000]) {\n"
      "  %1: f32[64,5000] = concatenate %x, %y {dim=1}\n"
      "  %2: f32[64] = reduce %1 {kind=max, axes=[1]}\n"
      "  %3: f32[64,5000] = broadcast_in_dim %2 {dims=[0]}\n"
      "  %4: f32[64,5000] = sub %1, %3\n"
      "  %5: f32[64,5000] = exp %4\n"
      "  %6: f32[64] = reduce %5 {kind=sum, axes=[1]}\n"
      "  %7: f32[64,5000] = broadcast_in_dim %6 {dims=[0]}\n"
      "  %8: f32[64,5000] = div %5, %7\n"
      "  return %8\n"
      "}\n",
      "func @main(%x: f32[64,50], %v: f32[]) -> (f32[64,100]) {\n"
      "  %1: f32[64,100] = pad %x, %v {low=[0, 0], high=[0, 1], interior=[0, 1]}\n"
      "  %2: f32[64] = reduce %1 {kind=max, axes=[1]}\n"
      "  %3: f32[64,100] = broadcast_in_dim %2 {dims=[0]}\n"
      "  %4: f32[64,100] = sub %1, %3\n"
      "  %5: f32[64,100] = exp %4\n"
      "  %6: f32[64] = reduce %5 {kind=sum, axes=[1]}\n"
      "  %7: f32[64,100] = broadcast_in_dim %6 {dims=[0]}\n"
      "  %8: f32[64,100] = div %5, %7\n"
      "  return %8\n"
      "}\n",
      "func @main(%x: f32[16,60000], %v: f32[]) -> (f32[16,60000]) {\n"
      "  %1: f32[16,60000] = pad %x, %v {low=[0, -59999], high=[0, 59999], interior=[0, 0]}\n"
      "  %2: f32[16] = reduce %1 {kind=max, axes=[1]}\n"
      "  %3: f32[16,60000] = broadcast_in_dim %2 {dims=[0]}\n"
      "  %4: f32[16,60000] = sub %1, %3\n"
      "  %5: f32[16,60000] = exp %4\n"
      "  %6: f32[16] = reduce %5 {kind=sum, axes=[1]}\n"
      "  %7: f32[16,60000] = broadcast_in_dim %6 {dims=[0]}\n"
      "  %8: f32[16,60000] = div %5, %7\n"
      "  return %8\n"
      "}\n",
      "func @main(%x: f32[32,50], %v: f32[]) -> (f32[63,50]) {\n"
      "  %1: f32[63,50] = pad %x, %v {low=[0, 0], high=[0, 0], interior=[1, 0]}\n"
      "  %2: f32[63] = reduce %1 {kind=max, axes=[1]}\n"
      "  %3: f32[63,50] = broadcast_in_dim %2 {dims=[0]}\n"
      "  %4: f32[63,50] = sub %1, %3\n"
      "  %5: f32[63,50] = exp %4\n"
      "  %6: f32[63] = reduce %5 {kind=sum, axes=[1]}\n"
      "  %7: f32[63,50] = broadcast_in_dim %6 {dims=[0]}\n"
      "  %8: f32[63,50] = div %5, %7\n"
      "  return %8\n"
      "}\n",
      "func @main(%x: f32[4,0]) -> (f32[4,0], f32[4]) {\n"
      "  %0: f32[4] = reduce %x {kind=sum, axes=[1]}\n"
      "  %2: f32[4,0] = broadcast_in_dim %0 {dims=[0]}\n"
      "  %3: f32[4,0] = mul %x, %2\n"
      "  %4: f32[4] = reduce %3 {kind=sum, axes=[1]}\n"
      "  %5: f32[4] = add %4, %0\n"
      "  return %3, %5\n"
      "}\n",
  };
  for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
    int passes[8];
    char name[64];
    snprintf(name, sizeof name, "review case %zu", i);
    rt_case_begin(name);
    plan_and_run(progs[i], NULL, passes);
    rt_case_end();
  }
}
