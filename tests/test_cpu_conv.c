/* The cpu backend's convolution on the GEMM (src/backend/cpu/conv.c) and
 * its generated pad / concatenate (fuse.c): each case against the
 * interpreter, bitwise identical with 1 and 2 threads, and a plan with no
 * interpreter step for them. The cases reach every path of the
 * planner: patch matrices stored (M, K) and (K, M), kernels read in place
 * (both orientations) or packed, outputs written directly or scattered,
 * the swapped product for few output features, the K split of kernel
 * gradients, feature and batch groups, lhs and rhs dilation, negative
 * padding, 1-D / 3-D, f64, an empty K and an empty result; and the
 * gradients of convolutions, which the transpose rules make of
 * convolutions with swapped dimension numbers, lhs dilation and batch
 * groups. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/cpu.h"
#include "testlib.h"

static ry_device *device(const char *name) {
  ry_device *d = NULL;
  CHECK_OK(ry_device_get(name, &d));
  return d;
}

static ry_array *pattern(ry_type t, uint32_t seed) {
  int64_t n = ry_shape_numel(t.shape);
  void *v = calloc((size_t)(n ? n : 1), 8);
  uint32_t s = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    double x = (double)(s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
    if (ry_dtype_is_float(t.dtype)) ry__store_f64(t.dtype, v, i, x);
    else ry__store_i64(t.dtype, v, i, (int64_t)(s >> 8) % 200 - 100);
  }
  ry_array *a = NULL;
  CHECK_OK(ry_array_from_host(t.dtype, t.shape, v, &a));
  free(v);
  return a;
}

/* The fusion report of g's plan on the cpu backend (malloc'd), and how many
 * steps of op `op` run in the interpreter. */
static char *plan_report(ry_graph *g, ry_op op, int *interp_steps) {
  ryc_dump d;
  memset(&d, 0, sizeof d);
  ry_graph *og = NULL;
  ryc_plan p;
  *interp_steps = -1;
  CHECK_OK(ryc_optimize(g, &d, &og));
  if (!og) return NULL;
  char *rep = NULL;
  ry_status s = ryc_plan_build(og, &p);
  CHECK_OK(s);
  if (!s) {
    *interp_steps = 0;
    for (int i = 0; i < p.n_steps; i++)
      if (p.steps[i].kind == RYC_STEP_INTERP && og->nodes[p.steps[i].node].op == op) (*interp_steps)++;
    rep = strdup(p.report ? p.report : "");
    ryc_plan_free(&p);
  }
  ry_graph_release(og);
  return rep;
}

/* |cpu - interp| <= rtol * max|interp| elementwise */
static void check_close(const char *name, int idx, ry_array *got, ry_array *ref, double rtol) {
  if (!got || !ref) return;
  CHECK(ry_type_equal(ry_array_type(got), ry_array_type(ref)));
  int64_t n = ry_array_numel(ref);
  double scale = 0, worst = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ry_array_get_f64(ref, i)));
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(ry_array_get_f64(got, i) - ry_array_get_f64(ref, i)));
  CHECK_MSG(worst <= rtol * (scale > 0 ? scale : 1), "%s: output %d differs from the interpreter by %g (scale %g)", name, idx,
            worst, scale);
}

/* Run g on interp and on cpu with 1 and 2 threads; compare. */
static void run_compare(const char *name, ry_graph *g, double rtol) {
  int n_in = ry_graph_num_inputs(g), n_out = ry_graph_num_outputs(g);
  ry_array *in[8] = {0}, *ref[8] = {0}, *o1[8] = {0}, *o2[8] = {0};
  for (int i = 0; i < n_in && i < 8; i++) in[i] = pattern(ry_graph_input_type(g, i), (uint32_t)i + 1);
  CHECK_OK(ry_run(g, device("interp"), n_in, in, n_out, ref));
  ryc_set_parallel_threshold(1);
  ryc_set_num_threads(1);
  CHECK_OK(ry_run(g, device("cpu"), n_in, in, n_out, o1));
  ryc_set_num_threads(2);
  CHECK_OK(ry_run(g, device("cpu"), n_in, in, n_out, o2));
  ryc_set_num_threads(0);
  ryc_set_parallel_threshold(0);
  for (int i = 0; i < n_out; i++) {
    check_close(name, i, o1[i], ref[i], rtol);
    if (o1[i] && o2[i])
      CHECK_MSG(ry_array_nbytes(o1[i]) == ry_array_nbytes(o2[i]) &&
                    memcmp(ry_array_data(o1[i]), ry_array_data(o2[i]), ry_array_nbytes(o1[i])) == 0,
                "%s: output %d differs between 1 and 2 threads", name, i);
  }
  for (int i = 0; i < 8; i++) {
    ry_array_release(in[i]);
    ry_array_release(ref[i]);
    ry_array_release(o1[i]);
    ry_array_release(o2[i]);
  }
}

typedef struct {
  const char *name;
  ry_dtype dt;
  ry_shape xs, ws;
  ry_conv_dims d;
  const char *expect[3]; /* substrings of the plan's conv line */
} conv_case;

static ry_conv_dims dims(int nsp, const int64_t *in, const int64_t *k, const int64_t *out) {
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.stride.n = d.pad_low.n = d.pad_high.n = d.lhs_dilation.n = d.rhs_dilation.n = nsp;
  for (int i = 0; i < nsp; i++) d.stride.v[i] = d.lhs_dilation.v[i] = d.rhs_dilation.v[i] = 1;
  d.feature_groups = d.batch_groups = 1;
  d.input_dims.n = d.kernel_dims.n = d.output_dims.n = nsp + 2;
  for (int i = 0; i < nsp + 2; i++) {
    d.input_dims.v[i] = in[i];
    d.kernel_dims.v[i] = k[i];
    d.output_dims.v[i] = out[i];
  }
  return d;
}

static const int64_t NHWC[] = {0, 3, 1, 2}, HWIO[] = {3, 2, 0, 1}, NCHW[] = {0, 1, 2, 3};
static const int64_t NWC[] = {0, 2, 1}, WIO[] = {2, 1, 0}, NDHWC[] = {0, 4, 1, 2, 3}, DHWIO[] = {4, 3, 0, 1, 2};

static ry_graph *conv_graph(const conv_case *c) {
  ry_builder *b = ry_builder_new("conv");
  ry_value x = ry_input(b, "x", (ry_type){c->dt, c->xs}), w = ry_input(b, "w", (ry_type){c->dt, c->ws});
  ry_value y = ry_convolution(b, x, w, &c->d);
  ry_graph *g = NULL;
  CHECK_OK(ry_builder_finish(b, 1, &y, &g));
  return g;
}

static int make_cases(conv_case *cs) {
  int n = 0;
  conv_case *c;
#define NEW(nm, dt_, xs_, ws_, nsp, in, k, out)                                                                        \
  (c = &cs[n++], memset(c, 0, sizeof *c), c->name = (nm), c->dt = (dt_), c->xs = (xs_), c->ws = (ws_),                  \
   c->d = dims((nsp), (in), (k), (out)), c)
  /* the CNN's layer: NHWC / HWIO, SAME */
  c = NEW("nhwc_same", RY_F32, RY_SHAPE(8, 12, 12, 16), RY_SHAPE(3, 3, 16, 32), 2, NHWC, HWIO, NHWC);
  c->d.pad_low = c->d.pad_high = RY_AXES(1, 1);
  c->expect[0] = "kernel=direct out=direct";
  c->expect[1] = "patches=(m,k)";
  c->expect[2] = "run=16";
  /* few output features: the swapped product */
  c = NEW("nhwc_swapped", RY_F32, RY_SHAPE(8, 12, 12, 16), RY_SHAPE(3, 3, 16, 3), 2, NHWC, HWIO, NHWC);
  c->d.pad_low = c->d.pad_high = RY_AXES(1, 1);
  c->expect[0] = "swapped";
  /* strides, asymmetric and negative padding, rhs dilation */
  c = NEW("nhwc_stride_dil", RY_F32, RY_SHAPE(4, 17, 15, 6), RY_SHAPE(3, 2, 6, 40), 2, NHWC, HWIO, NHWC);
  c->d.stride = RY_AXES(2, 3);
  c->d.pad_low = RY_AXES(2, -1);
  c->d.pad_high = RY_AXES(-1, 3);
  c->d.rhs_dilation = RY_AXES(2, 3);
  /* lhs dilation (a transposed convolution) */
  c = NEW("nhwc_lhs_dil", RY_F32, RY_SHAPE(3, 9, 8, 5), RY_SHAPE(3, 3, 5, 36), 2, NHWC, HWIO, NHWC);
  c->d.lhs_dilation = RY_AXES(2, 3);
  c->d.pad_low = RY_AXES(2, 1);
  c->d.pad_high = RY_AXES(2, -2);
  c->d.stride = RY_AXES(1, 2);
  /* NCHW / OIHW: patches (K, M), kernel (Og, K) */
  c = NEW("nchw", RY_F32, RY_SHAPE(4, 6, 20, 20), RY_SHAPE(40, 6, 3, 3), 2, NCHW, NCHW, NCHW);
  c->d.pad_low = c->d.pad_high = RY_AXES(1, 0);
  c->expect[0] = "patches=(k,m)";
  c->expect[1] = "kernel=direct-t";
  /* feature groups, depthwise, batch groups */
  c = NEW("feature_groups", RY_F32, RY_SHAPE(4, 11, 11, 8), RY_SHAPE(3, 3, 2, 12), 2, NHWC, HWIO, NHWC);
  c->d.feature_groups = 4;
  c->d.pad_low = c->d.pad_high = RY_AXES(1, 1);
  c->expect[0] = "groups=4";
  c = NEW("depthwise", RY_F32, RY_SHAPE(2, 13, 13, 8), RY_SHAPE(3, 3, 1, 16), 2, NHWC, HWIO, NHWC);
  c->d.feature_groups = 8;
  c->d.stride = RY_AXES(2, 2);
  c = NEW("batch_groups", RY_F32, RY_SHAPE(8, 9, 9, 6), RY_SHAPE(3, 3, 6, 4), 2, NHWC, HWIO, NHWC);
  c->d.batch_groups = 2;
  c->expect[0] = "groups=2";
  /* a kernel gradient: batch and feature swapped, a long K split in chunks */
  {
    static const int64_t in[] = {3, 0, 1, 2}, k[] = {3, 0, 1, 2}, out[] = {2, 3, 0, 1};
    c = NEW("kernel_grad_ksplit", RY_F32, RY_SHAPE(128, 12, 12, 4), RY_SHAPE(128, 12, 12, 8), 2, in, k, out);
    c->d.pad_low = c->d.pad_high = RY_AXES(1, 1);
    c->expect[0] = "patches=(k,m)";
    c->expect[1] = "k_chunks=4";
  }
  /* 1-D and 3-D */
  c = NEW("nwc_1d", RY_F32, RY_SHAPE(5, 40, 7), RY_SHAPE(5, 7, 9), 1, NWC, WIO, NWC);
  c->d.stride = RY_AXES(3);
  c->d.rhs_dilation = RY_AXES(2);
  c->d.pad_low = RY_AXES(4);
  c = NEW("ndhwc_3d", RY_F32, RY_SHAPE(2, 6, 7, 8, 3), RY_SHAPE(2, 3, 3, 3, 5), 3, NDHWC, DHWIO, NDHWC);
  c->d.pad_low = RY_AXES(0, 1, 1);
  c->d.pad_high = RY_AXES(1, 1, 0);
  c->d.stride = RY_AXES(1, 2, 1);
  /* an odd output layout (scattered), f64 */
  {
    static const int64_t out[] = {2, 0, 3, 1};
    c = NEW("odd_layout_f64", RY_F64, RY_SHAPE(3, 10, 9, 4), RY_SHAPE(3, 3, 4, 6), 2, NHWC, HWIO, out);
    c->d.pad_low = RY_AXES(1, 0);
    c->expect[0] = "out=scatter";
  }
  c = NEW("nchw_f64", RY_F64, RY_SHAPE(2, 3, 11, 12), RY_SHAPE(5, 3, 2, 3), 2, NCHW, NCHW, NCHW);
  c->d.stride = RY_AXES(2, 1);
  /* empty K (no input features) gives zeros; an empty result */
  c = NEW("empty_k", RY_F32, RY_SHAPE(2, 5, 5, 0), RY_SHAPE(3, 3, 0, 4), 2, NHWC, HWIO, NHWC);
  c = NEW("empty_result", RY_F32, RY_SHAPE(2, 2, 2, 3), RY_SHAPE(3, 3, 3, 4), 2, NHWC, HWIO, NHWC);
#undef NEW
  return n;
}

TEST(cpu_conv_cases_match_interp) {
  conv_case cs[32];
  int n = make_cases(cs);
  for (int i = 0; i < n; i++) {
    ry_graph *g = conv_graph(&cs[i]);
    if (!g) continue;
    int interp = -1;
    char *rep = plan_report(g, RY_OP_CONVOLUTION, &interp);
    CHECK_MSG(interp == 0, "%s: the convolution runs in the interpreter:\n%s", cs[i].name, rep ? rep : "");
    for (int e = 0; e < 3 && cs[i].expect[e]; e++)
      CHECK_MSG(rep && strstr(rep, cs[i].expect[e]), "%s: plan lacks '%s':\n%s", cs[i].name, cs[i].expect[e], rep ? rep : "");
    free(rep);
    run_compare(cs[i].name, g, cs[i].dt == RY_F64 ? 1e-12 : 2e-5);
    ry_graph_release(g);
  }
}

/* ---- gradients of convolutions ---- */

typedef struct {
  ry_conv_dims d;
} grad_ctx;

/* sum(tanh(conv(x, w)) * cos(iota)) */
static int conv_loss(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const grad_ctx *c = vctx;
  ry_value y = ry_tanh(b, ry_convolution(b, in[0], in[1], &c->d));
  ry_shape s = ry_value_shape(b, y);
  ry_value wgt = ry_cos(b, ry_convert(b, ry_iota(b, RY_I32, RY_SHAPE(ry_shape_numel(s)), 0), ry_value_dtype(b, y)));
  out[0] = ry_sum(b, ry_mul(b, y, ry_reshape(b, wgt, s)), RY_AXES(0, 1, 2, 3));
  return 1;
}

static void grad_case(const char *name, ry_dtype dt, ry_shape xs, ry_shape ws, ry_conv_dims d) {
  grad_ctx c = {d};
  ry_type in[2] = {{dt, xs}, {dt, ws}};
  ry_graph *f = NULL, *gr = NULL;
  CHECK_OK(ry_trace(name, conv_loss, &c, 2, in, NULL, &f));
  if (!f) return;
  int argn[2] = {0, 1};
  ry_grad_opts o = {2, argn, 0};
  CHECK_OK(ry_grad(f, &o, &gr));
  if (gr) {
    int interp = -1;
    char *rep = plan_report(gr, RY_OP_CONVOLUTION, &interp);
    int convs = 0;
    for (const char *p = rep; p && (p = strstr(p, "conv: ")); p++) convs++;
    CHECK_MSG(interp == 0 && convs == 3, "%s: %d convolutions in the interpreter, %d on the GEMM:\n%s", name, interp, convs,
              rep ? rep : "");
    free(rep);
    run_compare(name, gr, dt == RY_F64 ? 1e-12 : 2e-5);
  }
  ry_graph_release(gr);
  ry_graph_release(f);
}

TEST(cpu_conv_gradients_take_the_gemm) {
  ry_conv_dims d = dims(2, NHWC, HWIO, NHWC);
  d.stride = RY_AXES(2, 2);
  d.pad_low = RY_AXES(1, 0);
  d.pad_high = RY_AXES(1, 1);
  grad_case("grad_nhwc_stride2", RY_F32, RY_SHAPE(16, 13, 13, 4), RY_SHAPE(3, 3, 4, 8), d); /* lhs dilation in dx */
  d = dims(2, NHWC, HWIO, NHWC);
  d.feature_groups = 2;
  d.rhs_dilation = RY_AXES(2, 1);
  d.pad_low = d.pad_high = RY_AXES(2, 1);
  grad_case("grad_feature_groups", RY_F32, RY_SHAPE(4, 10, 10, 6), RY_SHAPE(3, 3, 3, 8), d); /* batch groups in dw */
  d = dims(2, NHWC, HWIO, NHWC);
  d.batch_groups = 2;
  grad_case("grad_batch_groups", RY_F32, RY_SHAPE(8, 7, 7, 3), RY_SHAPE(2, 2, 3, 4), d);
  d = dims(2, NCHW, NCHW, NCHW);
  d.lhs_dilation = RY_AXES(2, 2);
  d.pad_low = d.pad_high = RY_AXES(1, 1);
  grad_case("grad_nchw_lhs_dil_f64", RY_F64, RY_SHAPE(2, 3, 6, 5), RY_SHAPE(4, 3, 3, 3), d);
  d = dims(2, NHWC, HWIO, NHWC);
  d.pad_low = d.pad_high = RY_AXES(1, 1);
  grad_case("grad_cnn_layer_ksplit", RY_F32, RY_SHAPE(128, 14, 14, 4), RY_SHAPE(3, 3, 4, 8), d);
}

/* ---- pad and concatenate in generated kernels ---- */

/* A producer fused into a pad with negative and interior padding, the pad
 * under a reduction, a 2-way concatenate fused into its consumer, and a
 * 6-way concatenate of slices of the pad written one operand at a time. */
static const char *k_pad_concat =
    "func @main(%%x: %1$s[5,7], %%w: %1$s[5,7], %%v: %1$s[], %%s: %1$s[2,20], %%z: %1$s[11,20]) -> (%1$s[11,20], %1$s[9], %1$s[9,18]) {\n"
    "  %%0: %1$s[5,7] = min %%x, %%w\n"
    "  %%1: %1$s[9,20] = pad %%0, %%v {low=[1, -2], high=[-1, 3], interior=[1, 2]}\n"
    "  %%2: %1$s[11,20] = concatenate %%1, %%s {dim=0}\n"
    "  %%3: %1$s[11,20] = max %%2, %%z\n"
    "  %%4: %1$s[9] = reduce %%1 {kind=max, axes=[1]}\n"
    "  %%5: %1$s[9,3] = slice %%1 {start=[0, 0], limit=[9, 3], stride=[1, 1]}\n"
    "  %%6: %1$s[9,3] = slice %%1 {start=[0, 1], limit=[9, 7], stride=[1, 2]}\n"
    "  %%7: %1$s[9,3] = slice %%1 {start=[0, 17], limit=[9, 20], stride=[1, 1]}\n"
    "  %%8: %1$s[9,18] = concatenate %%5, %%6, %%7, %%5, %%6, %%7 {dim=1}\n"
    "  return %%3, %%4, %%8\n"
    "}\n";

TEST(cpu_pad_concat_generated_all_dtypes) {
  static const ry_dtype dts[] = {RY_BOOL, RY_I8, RY_I16, RY_I32, RY_I64, RY_U8, RY_U32, RY_F16, RY_BF16, RY_F32, RY_F64};
  for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
    char text[2048];
    snprintf(text, sizeof text, k_pad_concat, ry_dtype_name(dts[i]));
    ry_graph *g = NULL;
    CHECK_OK(ry_graph_parse(text, -1, "pad_concat", &g));
    if (!g) continue;
    int ip = -1, ic = -1;
    char *rep = plan_report(g, RY_OP_PAD, &ip);
    free(rep);
    rep = plan_report(g, RY_OP_CONCATENATE, &ic);
    CHECK_MSG(ip == 0 && ic == 0, "%s: pad / concatenate in the interpreter:\n%s", ry_dtype_name(dts[i]), rep ? rep : "");
    free(rep);
    run_compare(ry_dtype_name(dts[i]), g, 0); /* a copy: exact */
    ry_graph_release(g);
  }
}

/* Pads in a chain (a pad of a pad with interior padding: divisions that
 * compose), a reversed and transposed padded value, an empty operand, and
 * a concatenate along dim 0 whose operands are split across threads. */
TEST(cpu_pad_concat_compose) {
  static const char *text =
      "func @main(%x: f32[6,5], %e: f32[0,5], %y: f32[300,5], %v: f32[]) -> (f32[9,13], f32[13,9], f32[4,5], f32[306,5]) {\n"
      "  %0: f32[6,5] = exp %x\n"
      "  %1: f32[11,5] = pad %0, %v {low=[0, 0], high=[0, 0], interior=[1, 0]}\n"
      "  %2: f32[9,13] = pad %1, %v {low=[-3, 2], high=[1, -2], interior=[0, 2]}\n"
      "  %3: f32[9,13] = reverse %2 {dims=[0, 1]}\n"
      "  %4: f32[13,9] = transpose %3 {perm=[1, 0]}\n"
      "  %5: f32[13,9] = tanh %4\n"
      "  %6: f32[4,5] = pad %e, %v {low=[2, 0], high=[2, 0], interior=[0, 0]}\n"
      "  %7: f32[306,5] = concatenate %x, %e, %y {dim=0}\n"
      "  return %2, %5, %6, %7\n"
      "}\n";
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(text, -1, "pad_compose", &g));
  if (!g) return;
  int ip = -1, ic = -1;
  free(plan_report(g, RY_OP_PAD, &ip));
  free(plan_report(g, RY_OP_CONCATENATE, &ic));
  CHECK(ip == 0 && ic == 0);
  run_compare("pad_compose", g, 1e-6);
  ry_graph_release(g);
}
