/* Transformations: finite-difference checks in f64 for the JVP and the
 * gradient of every differentiable op (one row per op, like ggml's
 * test-backend-ops), compositions, and bad input. */
#include <stdlib.h>

#include "testlib.h"
#include "transform/transform.h"

/* ---- helpers ---- */

static ry_device *interp(void) {
  ry_device *d = NULL;
  ry_status_free(ry_device_get("interp", &d));
  return d;
}

/* Run g on f64 host buffers: in[i] has the input types' sizes. */
static int run_f64_on(ry_device *dev, ry_graph *g, double *const *in, int n_out, double **out);
static int run_f64(ry_graph *g, double *const *in, int n_out, double **out) { return run_f64_on(interp(), g, in, n_out, out); }

/* The other devices must agree with the interpreter on g (f64, 1e-9). */
static void check_devices_agree(const char *name, ry_graph *g, double *const *in) {
  if (!g) return;
  int n_out = ry_graph_num_outputs(g);
  double *want[16] = {0}, *got[16] = {0};
  if (n_out > 16) return;
  for (int i = 0; i < n_out; i++) {
    int64_t n = ry_shape_numel(ry_graph_output_type(g, i).shape);
    want[i] = calloc((size_t)n + 1, sizeof(double));
    got[i] = calloc((size_t)n + 1, sizeof(double));
  }
  if (run_f64(g, in, n_out, want)) {
    for (int d = 0; d < ry_device_count(); d++) {
      ry_device *dev = ry_device_at(d);
      if (dev == interp()) continue;
      if (!run_f64_on(dev, g, in, n_out, got)) {
        rt_fail(__FILE__, __LINE__, "%s: failed on device %s", name, ry_device_name(dev));
        continue;
      }
      for (int i = 0; i < n_out; i++) {
        int64_t n = ry_shape_numel(ry_graph_output_type(g, i).shape);
        for (int64_t k = 0; k < n; k++)
          if (!(fabs(got[i][k] - want[i][k]) <= 1e-9 * fmax(1, fabs(want[i][k])))) {
            rt_fail(__FILE__, __LINE__, "%s on %s: output %d[%lld] = %.17g, interp %.17g", name, ry_device_name(dev), i,
                    (long long)k, got[i][k], want[i][k]);
            break;
          }
      }
    }
  }
  for (int i = 0; i < n_out; i++) {
    free(want[i]);
    free(got[i]);
  }
}

static int run_f64_on(ry_device *dev, ry_graph *g, double *const *in, int n_out, double **out) {
  int n_in = ry_graph_num_inputs(g);
  ry_array *a[16] = {0}, *o[16] = {0};
  int ok = 1;
  for (int i = 0; i < n_in; i++) {
    ry_type t = ry_graph_input_type(g, i);
    ry_status s = ry_array_from_host(t.dtype, t.shape, in[i], &a[i]);
    if (s) {
      rt_fail(__FILE__, __LINE__, "input %d: %s", i, ry_status_message(s));
      ry_status_free(s);
      ok = 0;
    }
  }
  if (ok) {
    ry_status s = ry_run(g, dev, n_in, a, ry_graph_num_outputs(g), o);
    if (s) {
      rt_fail(__FILE__, __LINE__, "run: %s", ry_status_message(s));
      ry_status_free(s);
      ok = 0;
    }
  }
  for (int i = 0; ok && i < n_out; i++) {
    int64_t n = ry_array_numel(o[i]);
    for (int64_t k = 0; k < n; k++) out[i][k] = ry_array_get_f64(o[i], k);
  }
  for (int i = 0; i < 16; i++) {
    ry_array_release(a[i]);
    ry_array_release(o[i]);
  }
  return ok;
}

/* loss = sum(y * w) with fixed weights w = cos(0.7 i + 0.3), for any y. */
static ry_value weighted_sum(ry_builder *b, ry_value y) {
  ry_shape s = ry_value_shape(b, y);
  int64_t n = ry_shape_numel(s);
  ry_value i = ry_iota(b, RY_F64, RY_SHAPE(n > 0 ? n : 1), 0);
  ry_value w = ry_cos(b, ry_add(b, ry_mul(b, i, ry_scalar(b, RY_F64, 0.7)), ry_scalar(b, RY_F64, 0.3)));
  if (n == 0) return ry_scalar(b, RY_F64, 0);
  w = ry_reshape(b, w, s);
  ry_value yy = ry_convert(b, y, RY_F64);
  ry_axes all = {s.rank, {0, 1, 2, 3, 4, 5, 6, 7}};
  return ry_reduce(b, ry_mul(b, yy, w), RY_SUM, all);
}

typedef ry_value (*op_fn)(ry_builder *b, const ry_value *in);
typedef struct {
  const char *name;
  op_fn op;
  int n_in;
  ry_shape shapes[3];
  double lo, hi;
} fd_row;

static int fd_trace_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const fd_row *row = ctx;
  out[0] = weighted_sum(b, row->op(b, in));
  return 1;
}

static unsigned g_seed = 12345;
static double urand(void) {
  g_seed = g_seed * 1103515245u + 12345u;
  return ((g_seed >> 8) & 0xffffff) / 16777216.0;
}

/* ry_linearize: fwd(x) -> (y, residuals), lin(residuals, t) -> ty must give
 * the JVP's tangent. */
static void check_linearize(const fd_row *row, ry_graph *f, double *const *x, double *const *t, double want) {
  ry_graph *fwd = NULL, *lin = NULL;
  int nres = 0;
  ry_status s = ry_linearize(f, &fwd, &lin, &nres);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: linearize: %s", row->name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  CHECK_ROUNDTRIP(lin);
  ry_array *xa[8] = {0}, *fo[64] = {0}, *la[72] = {0}, *ty = NULL;
  int nf = ry_graph_num_outputs(fwd);
  if (nf > 64 || nres + row->n_in > 72) goto done;
  for (int i = 0; i < row->n_in; i++) ry_status_free(ry_array_from_host(RY_F64, row->shapes[i], x[i], &xa[i]));
  s = ry_run(fwd, interp(), row->n_in, xa, nf, fo);
  if (!s) {
    for (int i = 0; i < nres; i++) la[i] = fo[1 + i];
    for (int i = 0; i < row->n_in; i++) ry_status_free(ry_array_from_host(RY_F64, row->shapes[i], t[i], &la[nres + i]));
    s = ry_run(lin, interp(), nres + row->n_in, la, 1, &ty);
  }
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: linearize run: %s", row->name, ry_status_message(s));
    ry_status_free(s);
  } else {
    CHECK_MSG(fabs(ry_array_get_f64(ty, 0) - want) <= 1e-12 * fmax(1, fabs(want)), "%s: linearize %.17g vs jvp %.17g", row->name,
              ry_array_get_f64(ty, 0), want);
  }
  for (int i = 0; i < row->n_in; i++) {
    ry_array_release(xa[i]);
    ry_array_release(la[nres + i]);
  }
  for (int i = 0; i < nf; i++) ry_array_release(fo[i]);
  ry_array_release(ty);
done:
  ry_graph_release(fwd);
  ry_graph_release(lin);
}

/* Check grad (all inputs) and jvp against central differences. */
static void fd_check(const fd_row *row) {
  ry_type types[3];
  for (int i = 0; i < row->n_in; i++) types[i] = (ry_type){RY_F64, row->shapes[i]};
  ry_graph *f = NULL, *g = NULL, *j = NULL;
  ry_status s = ry_trace(row->name, fd_trace_fn, (void *)row, row->n_in, types, NULL, &f);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: trace: %s", row->name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  int argnums[3] = {0, 1, 2};
  ry_grad_opts o = {row->n_in, argnums, 0};
  s = ry_grad(f, &o, &g);
  if (s) rt_fail(__FILE__, __LINE__, "%s: grad: %s", row->name, ry_status_message(s));
  ry_status_free(s);
  s = ry_jvp(f, &j);
  if (s) rt_fail(__FILE__, __LINE__, "%s: jvp: %s", row->name, ry_status_message(s));
  ry_status_free(s);
  CHECK_ROUNDTRIP(f);
  CHECK_ROUNDTRIP(g);
  CHECK_ROUNDTRIP(j);
  double *x[3], *gr[3], *t[6];
  int64_t n[3];
  for (int i = 0; i < row->n_in; i++) {
    n[i] = ry_shape_numel(row->shapes[i]);
    x[i] = calloc((size_t)n[i] + 1, sizeof(double));
    gr[i] = calloc((size_t)n[i] + 1, sizeof(double));
    t[row->n_in + i] = calloc((size_t)n[i] + 1, sizeof(double));
    for (int64_t k = 0; k < n[i]; k++) {
      x[i][k] = row->lo + (row->hi - row->lo) * urand();
      t[row->n_in + i][k] = urand() - 0.5;
    }
    t[i] = x[i];
  }
  const double h = 1e-6;
  if (g && run_f64(g, x, row->n_in, gr)) {
    double err = 0, norm = 0;
    for (int i = 0; i < row->n_in; i++)
      for (int64_t k = 0; k < n[i]; k++) {
        double save = x[i][k], fp, fm, *pp = &fp, *pm = &fm;
        x[i][k] = save + h;
        run_f64(f, x, 1, &pp);
        x[i][k] = save - h;
        run_f64(f, x, 1, &pm);
        x[i][k] = save;
        double fd = (fp - fm) / (2 * h);
        err += (gr[i][k] - fd) * (gr[i][k] - fd);
        norm += fd * fd;
      }
    double rel = sqrt(err) / fmax(sqrt(norm), 1e-3);
    CHECK_MSG(rel <= 1e-6, "%s: grad vs finite differences: relative error %.3g", row->name, rel);
    check_devices_agree(row->name, g, x);
  }
  check_devices_agree(row->name, j, t);
  if (j) {
    double y[2], *yo[2] = {&y[0], &y[1]};
    if (run_f64(j, t, 2, yo)) {
      /* directional derivative along the tangents */
      double fp, fm, *pp = &fp, *pm = &fm, *xs[3];
      double *shift[3];
      for (int i = 0; i < row->n_in; i++) {
        shift[i] = calloc((size_t)n[i] + 1, sizeof(double));
        xs[i] = shift[i];
        for (int64_t k = 0; k < n[i]; k++) shift[i][k] = x[i][k] + h * t[row->n_in + i][k];
      }
      run_f64(f, xs, 1, &pp);
      for (int i = 0; i < row->n_in; i++)
        for (int64_t k = 0; k < n[i]; k++) shift[i][k] = x[i][k] - h * t[row->n_in + i][k];
      run_f64(f, xs, 1, &pm);
      double fd = (fp - fm) / (2 * h);
      CHECK_MSG(fabs(y[1] - fd) <= 1e-6 * fmax(fabs(fd), 1e-3), "%s: jvp %.12g vs finite differences %.12g", row->name, y[1], fd);
      check_linearize(row, f, x, t + row->n_in, y[1]);
      for (int i = 0; i < row->n_in; i++) free(shift[i]);
    }
  }
  for (int i = 0; i < row->n_in; i++) {
    free(x[i]);
    free(gr[i]);
    free(t[row->n_in + i]);
  }
  ry_graph_release(f);
  ry_graph_release(g);
  ry_graph_release(j);
}

/* ---- the op table ---- */
#define U(nm, expr) static ry_value op_##nm(ry_builder *b, const ry_value *in) { return expr; }
U(neg, ry_neg(b, in[0]))
U(abs, ry_abs(b, in[0]))
U(exp, ry_exp(b, in[0]))
U(exp2, ry_exp2(b, in[0]))
U(log, ry_log(b, in[0]))
U(log1p, ry_log1p(b, in[0]))
U(atanh, ry_atanh(b, in[0]))
U(expm1, ry_expm1(b, in[0]))
U(sqrt, ry_sqrt(b, in[0]))
U(rsqrt, ry_rsqrt(b, in[0]))
U(cbrt, ry_cbrt(b, in[0]))
U(sin, ry_sin(b, in[0]))
U(cos, ry_cos(b, in[0]))
U(tan, ry_tan(b, in[0]))
U(tanh, ry_tanh(b, in[0]))
U(logistic, ry_logistic(b, in[0]))
U(erf, ry_erf(b, in[0]))
U(erf_inv, ry_erf_inv(b, in[0]))
U(add, ry_add(b, in[0], in[1]))
U(sub, ry_sub(b, in[0], in[1]))
U(mul, ry_mul(b, in[0], in[1]))
U(div, ry_div(b, in[0], in[1]))
U(rem, ry_rem(b, in[0], in[1]))
U(pow, ry_pow(b, in[0], in[1]))
U(max, ry_max(b, in[0], in[1]))
U(min, ry_min(b, in[0], in[1]))
U(atan2, ry_atan2(b, in[0], in[1]))
U(select, ry_select(b, ry_gt(b, in[0], ry_scalar(b, RY_F64, 0.5)), ry_mul(b, in[0], in[1]), ry_exp(b, in[1])))
U(clamp, ry_clamp(b, ry_scalar(b, RY_F64, 0.3), in[0], ry_scalar(b, RY_F64, 0.7)))
U(clamp3, ry_clamp(b, in[1], in[0], ry_add(b, in[1], ry_scalar(b, RY_F64, 0.4))))
U(convert, ry_convert(b, ry_convert(b, in[0], RY_F32), RY_F64))
U(broadcast, ry_mul(b, ry_broadcast_in_dim(b, in[0], RY_SHAPE(2, 3, 4), RY_AXES(1, 2)), in[1]))
U(broadcast1, ry_broadcast_in_dim(b, in[0], RY_SHAPE(4, 3, 2), RY_AXES(2, 1)))
U(reshape, ry_reshape(b, ry_sin(b, in[0]), RY_SHAPE(4, 3)))
U(transpose, ry_mul(b, ry_transpose(b, in[0], RY_AXES(2, 0, 1)), ry_transpose(b, ry_exp(b, in[0]), RY_AXES(2, 0, 1))))
U(slice, ry_slice(b, ry_exp(b, in[0]), RY_AXES(1, 0), RY_AXES(5, 3), RY_AXES(2, 2)))
U(pad, ry_pad(b, in[0], in[1], RY_AXES(1, -1), RY_AXES(-1, 2), RY_AXES(1, 0)))
U(concatenate, ry_concatenate(b, 2, ((ry_value[]){ry_exp(b, in[0]), in[1]}), 1))
U(reverse, ry_mul(b, ry_reverse(b, in[0], RY_AXES(0)), in[0]))
U(dynamic_slice, ry_dynamic_slice(b, in[0], ((ry_value[]){ry_scalar(b, RY_I32, 1), ry_scalar(b, RY_I32, 5)}), RY_AXES(2, 2)))
U(dynamic_update_slice, ry_dynamic_update_slice(b, ry_exp(b, in[0]), ry_sin(b, in[1]), ((ry_value[]){ry_scalar(b, RY_I32, 1), ry_scalar(b, RY_I32, 1)})))
U(reduce_sum, ry_reduce(b, ry_exp(b, in[0]), RY_SUM, RY_AXES(1)))
U(reduce_prod, ry_reduce(b, in[0], RY_PROD, RY_AXES(0)))
U(reduce_max, ry_reduce(b, in[0], RY_MAX, RY_AXES(1)))
U(reduce_min, ry_reduce(b, in[0], RY_MIN, RY_AXES(0, 1)))
U(cumsum, ry_cumulative(b, in[0], RY_SUM, 1, 0))
U(cumsum_rev, ry_cumulative(b, in[0], RY_SUM, 0, 1))
U(cumprod, ry_cumulative(b, in[0], RY_PROD, 1, 0))
U(cummax, ry_cumulative(b, in[0], RY_MAX, 1, 0))
U(cummin_rev, ry_cumulative(b, in[0], RY_MIN, 0, 1))
U(matmul, ry_matmul(b, in[0], in[1]))
U(batched_matmul, ry_matmul(b, ry_tanh(b, in[0]), in[1]))
U(dot_general, ry_dot_general(b, in[0], in[1], ((ry_dot_dims){RY_AXES(1), RY_AXES(0), RY_AXES(2, 0), RY_AXES(2, 1)}), RY_F64))
U(take, ry_take(b, in[0], ry_convert(b, ry_iota(b, RY_I32, RY_SHAPE(5), 0), RY_I32), 0))
U(take_along, ry_take_along_axis(b, in[0], ry_reshape(b, ry_argmax(b, in[1], 1), RY_SHAPE(3, 1)), 1))
U(softmax, ry_softmax(b, in[0], -1))
U(log_softmax, ry_log_softmax(b, in[0], 0))
U(logsumexp, ry_logsumexp(b, in[0], RY_AXES(1), 0))
U(gelu, ry_gelu(b, in[0], 1))
U(gelu_erf, ry_gelu(b, in[0], 0))
U(var, ry_var(b, in[0], RY_AXES(1), 0))

static ry_value op_sortkv(ry_builder *b, const ry_value *in) {
  ry_value out[2];
  ry_value xs[2] = {in[0], ry_exp(b, in[1])};
  ry_sort(b, 2, xs, 1, 1, 0, 1, out);
  return ry_add(b, ry_mul(b, out[0], out[0]), out[1]);
}
static ry_value op_scatter_add(ry_builder *b, const ry_value *in) {
  /* rows 0, 2, 0 of a (4,3) operand get (3,3) updates: embedding-gradient form */
  int32_t ix[3] = {0, 2, 0};
  ry_array *ia = NULL;
  ry_status_free(ry_array_from_host(RY_I32, RY_SHAPE(3, 1), ix, &ia));
  ry_value idx = ry_constant(b, ia);
  ry_array_release(ia);
  ry_scatter_dims d = {RY_AXES(1), RY_AXES(0), RY_AXES(0), 1, RY_SCATTER_ADD};
  return ry_scatter(b, ry_sin(b, in[0]), idx, ry_exp(b, in[1]), &d);
}
static ry_value op_scatter_extremal(ry_builder *b, const ry_value *in, ry_scatter_kind kind) {
  int32_t ix[3] = {1, 3, 1}; /* row 1 is hit twice */
  ry_array *ia = NULL;
  ry_status_free(ry_array_from_host(RY_I32, RY_SHAPE(3, 1), ix, &ia));
  ry_value idx = ry_constant(b, ia);
  ry_array_release(ia);
  ry_scatter_dims d = {RY_AXES(1), RY_AXES(0), RY_AXES(0), 1, kind};
  return ry_scatter(b, ry_sin(b, in[0]), idx, ry_mul(b, in[1], ry_scalar(b, RY_F64, 1.5)), &d);
}
static ry_value op_scatter_max(ry_builder *b, const ry_value *in) { return op_scatter_extremal(b, in, RY_SCATTER_MAX); }
static ry_value op_scatter_min(ry_builder *b, const ry_value *in) { return op_scatter_extremal(b, in, RY_SCATTER_MIN); }
static ry_value op_scatter_replace(ry_builder *b, const ry_value *in) {
  int32_t ix[2] = {3, 1};
  ry_array *ia = NULL;
  ry_status_free(ry_array_from_host(RY_I32, RY_SHAPE(2, 1), ix, &ia));
  ry_value idx = ry_constant(b, ia);
  ry_array_release(ia);
  ry_scatter_dims d = {RY_AXES(1), RY_AXES(0), RY_AXES(0), 1, RY_SCATTER_REPLACE};
  return ry_scatter(b, in[0], idx, ry_mul(b, in[1], in[1]), &d);
}
static int cond_t(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, ry_sin(b, in[0]), in[1]);
  return 1;
}
static int cond_f(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_exp(b, in[0]);
  return 1;
}
static ry_value op_cond(ry_builder *b, const ry_value *in) {
  ry_value p = ry_gt(b, ry_reduce(b, in[0], RY_SUM, RY_AXES(0)), ry_scalar(b, RY_F64, 0));
  ry_value out;
  ry_cond(b, p, cond_t, cond_f, NULL, 2, in, &out);
  return out;
}


static ry_value op_conv_nchw(ry_builder *b, const ry_value *in) {
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.stride = RY_AXES(2, 1);
  d.pad_low = RY_AXES(1, 0);
  d.pad_high = RY_AXES(0, 1);
  return ry_convolution(b, in[0], in[1], &d); /* (2,3,5,4) * (4,3,2,2) */
}
static ry_value op_conv_nhwc_dilated(ry_builder *b, const ry_value *in) {
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.lhs_dilation = RY_AXES(2, 1);
  d.rhs_dilation = RY_AXES(1, 2);
  d.pad_low = RY_AXES(1, 1);
  d.pad_high = RY_AXES(-1, 1);
  d.input_dims = RY_AXES(0, 3, 1, 2);  /* NHWC */
  d.kernel_dims = RY_AXES(3, 2, 0, 1); /* HWIO */
  d.output_dims = RY_AXES(0, 3, 1, 2);
  return ry_convolution(b, in[0], in[1], &d); /* (1,4,5,2) * (2,2,2,3) */
}
static ry_value op_conv_groups(ry_builder *b, const ry_value *in) {
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.feature_groups = 2;
  return ry_convolution(b, in[0], in[1], &d); /* (2,4,5) * (6,2,3): 1-d, grouped */
}
static ry_value op_conv_batch_groups(ry_builder *b, const ry_value *in) {
  ry_conv_dims d;
  memset(&d, 0, sizeof d);
  d.batch_groups = 2;
  d.stride = RY_AXES(2);
  return ry_convolution(b, in[0], in[1], &d); /* (4,3,6) * (4,3,2) */
}

/* scan: h' = tanh(h * w + x) over rows of xs, ys = h' * h' */
typedef struct {
  ry_value w;
} fd_scan_ctx;
static int fd_scan_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  fd_scan_ctx *c = ctx;
  out[0] = ry_tanh(b, ry_add(b, ry_mul(b, in[0], c->w), in[1]));
  out[1] = ry_mul(b, out[0], out[0]);
  return 2;
}
static ry_value scan_common(ry_builder *b, const ry_value *in, int reverse) {
  fd_scan_ctx c = {in[2]};
  ry_value o[2];
  ry_scan(b, fd_scan_body, &c, -1, 1, &in[0], 1, &in[1], reverse, o);
  return ry_add(b, ry_sum(b, o[1], RY_AXES(0)), o[0]);
}
static ry_value op_scan(ry_builder *b, const ry_value *in) { return scan_common(b, in, 0); }
static ry_value op_scan_rev(ry_builder *b, const ry_value *in) { return scan_common(b, in, 1); }
static int fd_fori_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  /* in = (i, x): x = sin(x) * 1.1 + 0.1 i */
  ry_value i = ry_convert(b, in[0], RY_F64);
  out[0] = ry_add(b, ry_mul(b, ry_sin(b, in[1]), ry_scalar(b, RY_F64, 1.1)), ry_mul(b, i, ry_scalar(b, RY_F64, 0.1)));
  return 1;
}
/* carries that start as constants (h0 = zeros) or come through round:
 * reverse mode must still reach w and xs (issue 10) */
static int fd_fori_w_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const ry_value *w = ctx;
  ry_value i = ry_convert(b, in[0], RY_F64);
  out[0] = ry_tanh(b, ry_add(b, ry_mul(b, in[1], *w), ry_mul(b, i, ry_scalar(b, RY_F64, 0.1))));
  return 1;
}
static ry_value op_fori_const_carry(ry_builder *b, const ry_value *in) {
  ry_value o, h0 = ry_full(b, RY_F64, RY_SHAPE(4), 0.0);
  ry_fori_loop(b, 0, 5, fd_fori_w_body, (void *)&in[0], 1, &h0, &o);
  return ry_mul(b, o, o);
}
static ry_value op_scan_const_carry(ry_builder *b, const ry_value *in) {
  fd_scan_ctx c = {in[0]};
  ry_value o[2], h0 = ry_full(b, RY_F64, RY_SHAPE(3), 0.0);
  ry_scan(b, fd_scan_body, &c, -1, 1, &h0, 1, &in[1], 0, o);
  return ry_add(b, ry_sum(b, o[1], RY_AXES(0)), o[0]);
}
static ry_value op_scan_round_carry(ry_builder *b, const ry_value *in) {
  fd_scan_ctx c = {in[0]};
  ry_value o[2], h0 = ry_round(b, ry_mul(b, in[0], ry_scalar(b, RY_F64, 3.0)));
  ry_scan(b, fd_scan_body, &c, -1, 1, &h0, 1, &in[1], 0, o);
  return ry_add(b, ry_sum(b, o[1], RY_AXES(0)), o[0]);
}
static ry_value op_fori(ry_builder *b, const ry_value *in) {
  ry_value o;
  ry_fori_loop(b, 2, 7, fd_fori_body, NULL, 1, in, &o);
  return o;
}

/* convert through f32 loses precision that finite differences would see:
 * check its gradient against the exact answer, the weights rounded to f32. */
static void convert_check(const fd_row *row) {
  ry_type t = {RY_F64, row->shapes[0]};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace(row->name, fd_trace_fn, (void *)row, 1, &t, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g));
  double x[3] = {0.5, -1, 2}, gr[3], *in[1] = {x}, *o[1] = {gr};
  if (g && run_f64(g, in, 1, o))
    for (int k = 0; k < 3; k++) CHECK_NEAR(gr[k], (double)(float)cos(0.7 * k + 0.3), 0);
  ry_graph_release(f);
  ry_graph_release(g);
}

TEST(transform_finite_differences) {
  const fd_row g_rows[] = {
    {"neg", op_neg, 1, {RY_SHAPE(2, 3)}, -2, 2},
    {"abs", op_abs, 1, {RY_SHAPE(5)}, 0.2, 2},
    {"exp", op_exp, 1, {RY_SHAPE(2, 3)}, -2, 2},
    {"exp2", op_exp2, 1, {RY_SHAPE(4)}, -2, 2},
    {"log", op_log, 1, {RY_SHAPE(4)}, 0.2, 3},
    {"log1p", op_log1p, 1, {RY_SHAPE(4)}, -0.5, 3},
    {"atanh", op_atanh, 1, {RY_SHAPE(4)}, -0.8, 0.8},
    {"expm1", op_expm1, 1, {RY_SHAPE(4)}, -1, 1},
    {"sqrt", op_sqrt, 1, {RY_SHAPE(4)}, 0.2, 3},
    {"rsqrt", op_rsqrt, 1, {RY_SHAPE(4)}, 0.2, 3},
    {"cbrt", op_cbrt, 1, {RY_SHAPE(4)}, 0.2, 3},
    {"sin", op_sin, 1, {RY_SHAPE(4)}, -3, 3},
    {"cos", op_cos, 1, {RY_SHAPE(4)}, -3, 3},
    {"tan", op_tan, 1, {RY_SHAPE(4)}, -1, 1},
    {"tanh", op_tanh, 1, {RY_SHAPE(4)}, -2, 2},
    {"logistic", op_logistic, 1, {RY_SHAPE(4)}, -3, 3},
    {"erf", op_erf, 1, {RY_SHAPE(4)}, -2, 2},
    {"erf_inv", op_erf_inv, 1, {RY_SHAPE(4)}, -0.9, 0.9},
    {"add", op_add, 2, {RY_SHAPE(2, 3), RY_SHAPE(2, 3)}, -2, 2},
    {"add_broadcast", op_add, 2, {RY_SHAPE(2, 3), RY_SHAPE(3)}, -2, 2},
    {"sub", op_sub, 2, {RY_SHAPE(3), RY_SHAPE(3)}, -2, 2},
    {"mul", op_mul, 2, {RY_SHAPE(2, 3), RY_SHAPE(1, 3)}, -2, 2},
    {"div", op_div, 2, {RY_SHAPE(4), RY_SHAPE(4)}, 0.5, 2},
    {"rem", op_rem, 2, {RY_SHAPE(4), RY_SHAPE(4)}, 1.1, 1.9},
    {"pow", op_pow, 2, {RY_SHAPE(4), RY_SHAPE(4)}, 0.5, 2},
    {"max", op_max, 2, {RY_SHAPE(6), RY_SHAPE(6)}, -2, 2},
    {"min", op_min, 2, {RY_SHAPE(6), RY_SHAPE(6)}, -2, 2},
    {"atan2", op_atan2, 2, {RY_SHAPE(4), RY_SHAPE(4)}, 0.3, 2},
    {"select", op_select, 2, {RY_SHAPE(6), RY_SHAPE(6)}, 0, 1},
    {"clamp", op_clamp, 1, {RY_SHAPE(8)}, 0, 1},
    {"clamp_bounds", op_clamp3, 2, {RY_SHAPE(8), RY_SHAPE(8)}, 0, 1},
    {"broadcast_in_dim", op_broadcast, 2, {RY_SHAPE(3, 4), RY_SHAPE(2, 3, 4)}, -1, 1},
    {"broadcast_in_dim_perm", op_broadcast1, 1, {RY_SHAPE(2, 3)}, -1, 1},
    {"reshape", op_reshape, 1, {RY_SHAPE(2, 6)}, -1, 1},
    {"transpose", op_transpose, 1, {RY_SHAPE(2, 3, 4)}, -1, 1},
    {"slice", op_slice, 1, {RY_SHAPE(6, 4)}, -1, 1},
    {"pad", op_pad, 2, {RY_SHAPE(3, 4), {0, {0}}}, -1, 1},
    {"concatenate", op_concatenate, 2, {RY_SHAPE(2, 3), RY_SHAPE(2, 2)}, -1, 1},
    {"reverse", op_reverse, 1, {RY_SHAPE(3, 2)}, -1, 1},
    {"dynamic_slice", op_dynamic_slice, 1, {RY_SHAPE(4, 4)}, -1, 1},
    {"dynamic_update_slice", op_dynamic_update_slice, 2, {RY_SHAPE(4, 4), RY_SHAPE(2, 3)}, -1, 1},
    {"reduce_sum", op_reduce_sum, 1, {RY_SHAPE(3, 4)}, -1, 1},
    {"reduce_prod", op_reduce_prod, 1, {RY_SHAPE(3, 4)}, 0.5, 1.5},
    {"reduce_max", op_reduce_max, 1, {RY_SHAPE(3, 4)}, -1, 1},
    {"reduce_min", op_reduce_min, 1, {RY_SHAPE(3, 4)}, -1, 1},
    {"cumsum", op_cumsum, 1, {RY_SHAPE(3, 4)}, -1, 1},
    {"cumsum_reverse", op_cumsum_rev, 1, {RY_SHAPE(3, 4)}, -1, 1},
    {"cumprod", op_cumprod, 1, {RY_SHAPE(2, 4)}, 0.5, 1.5},
    {"cummax", op_cummax, 1, {RY_SHAPE(2, 5)}, -1, 1},
    {"cummin_reverse", op_cummin_rev, 1, {RY_SHAPE(4, 2)}, -1, 1},
    {"matmul", op_matmul, 2, {RY_SHAPE(3, 4), RY_SHAPE(4, 2)}, -1, 1},
    {"matvec", op_matmul, 2, {RY_SHAPE(3, 4), RY_SHAPE(4)}, -1, 1},
    {"batched_matmul", op_batched_matmul, 2, {RY_SHAPE(2, 3, 4), RY_SHAPE(2, 4, 2)}, -1, 1},
    {"dot_general", op_dot_general, 2, {RY_SHAPE(2, 3, 4), RY_SHAPE(3, 2, 4, 5)}, -1, 1},
    {"take", op_take, 1, {RY_SHAPE(3, 2)}, -1, 1},
    {"take_along_axis", op_take_along, 2, {RY_SHAPE(3, 4), RY_SHAPE(3, 4)}, -1, 1},
    {"sort", op_sortkv, 2, {RY_SHAPE(2, 5), RY_SHAPE(2, 5)}, -1, 1},
    {"scatter_add", op_scatter_add, 2, {RY_SHAPE(4, 3), RY_SHAPE(3, 3)}, -1, 1},
    {"scatter_replace", op_scatter_replace, 2, {RY_SHAPE(5, 2), RY_SHAPE(2, 2)}, -1, 1},
    {"scatter_max", op_scatter_max, 2, {RY_SHAPE(5, 4), RY_SHAPE(3, 4)}, -1, 1},
    {"scatter_min", op_scatter_min, 2, {RY_SHAPE(5, 4), RY_SHAPE(3, 4)}, -1, 1},
    {"cond", op_cond, 2, {RY_SHAPE(3), RY_SHAPE(3)}, -1, 1},
    {"softmax", op_softmax, 1, {RY_SHAPE(2, 5)}, -2, 2},
    {"log_softmax", op_log_softmax, 1, {RY_SHAPE(3, 4)}, -2, 2},
    {"logsumexp", op_logsumexp, 1, {RY_SHAPE(3, 4)}, -2, 2},
    {"gelu_tanh", op_gelu, 1, {RY_SHAPE(6)}, -2, 2},
    {"gelu_erf", op_gelu_erf, 1, {RY_SHAPE(6)}, -2, 2},
    {"var", op_var, 1, {RY_SHAPE(3, 4)}, -2, 2},
    {"convert", op_convert, 1, {RY_SHAPE(3)}, -2, 2},
    {"scan", op_scan, 3, {RY_SHAPE(3), RY_SHAPE(4, 3), RY_SHAPE(3)}, -1, 1},
    {"scan_reverse", op_scan_rev, 3, {RY_SHAPE(3), RY_SHAPE(5, 3), RY_SHAPE(3)}, -1, 1},
    {"fori_loop", op_fori, 1, {RY_SHAPE(4)}, -1, 1},
    {"fori_loop_const_carry", op_fori_const_carry, 1, {RY_SHAPE(4)}, -1, 1},
    {"scan_const_carry", op_scan_const_carry, 2, {RY_SHAPE(3), RY_SHAPE(4, 3)}, -1, 1},
    {"scan_round_carry", op_scan_round_carry, 2, {RY_SHAPE(3), RY_SHAPE(4, 3)}, -1, 1},
    {"convolution_nchw_stride_pad", op_conv_nchw, 2, {RY_SHAPE(2, 3, 5, 4), RY_SHAPE(4, 3, 2, 2)}, -1, 1},
    {"convolution_nhwc_dilated", op_conv_nhwc_dilated, 2, {RY_SHAPE(1, 4, 5, 2), RY_SHAPE(2, 2, 2, 3)}, -1, 1},
    {"convolution_feature_groups", op_conv_groups, 2, {RY_SHAPE(2, 4, 5), RY_SHAPE(6, 2, 3)}, -1, 1},
    {"convolution_batch_groups", op_conv_batch_groups, 2, {RY_SHAPE(4, 3, 6), RY_SHAPE(4, 3, 2)}, -1, 1},
};

  for (size_t i = 0; i < sizeof g_rows / sizeof *g_rows; i++) {
    char name[96];
    snprintf(name, sizeof name, "fd/%s", g_rows[i].name);
    rt_case_begin(name);
    if (strcmp(g_rows[i].name, "convert") != 0)
      fd_check(&g_rows[i]);
    else
      convert_check(&g_rows[i]);
    rt_case_end();
  }
}

/* ---- compositions, sizes, errors ---- */

static int f_tanh(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_tanh(b, in[0]);
  return 1;
}

static double run_scalar(ry_graph *g, double x) {
  double *in[1] = {&x}, y = NAN, *o[1] = {&y};
  run_f64(g, in, 1, o);
  return y;
}

TEST(transform_grad_of_grad_of_grad_tanh) {
  ry_type t = {RY_F64, RY_SCALAR};
  ry_graph *f = NULL, *g1 = NULL, *g2 = NULL, *g3 = NULL;
  CHECK_OK(ry_trace("tanh", f_tanh, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g1));
  CHECK_OK(ry_grad(g1, NULL, &g2));
  CHECK_OK(ry_grad(g2, NULL, &g3));
  CHECK_ROUNDTRIP(g3);
  if (g3) {
    for (double x = -1.5; x <= 1.5; x += 0.75) {
      double th = tanh(x), s2 = 1 - th * th;
      CHECK_NEAR(run_scalar(g1, x), s2, 1e-14);
      CHECK_NEAR(run_scalar(g2, x), -2 * th * s2, 1e-14);
      CHECK_NEAR(run_scalar(g3, x), -2 * s2 * s2 + 4 * th * th * s2, 1e-13);
    }
  }
  ry_graph_release(f);
  ry_graph_release(g1);
  ry_graph_release(g2);
  ry_graph_release(g3);
}

/* a 3-layer MLP loss: x (4,8), w1 (8,16), w2 (16,16), w3 (16,3), labels one-hot (4,3) */
static int f_mlp3(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_matmul(b, in[0], in[1]));
  h = ry_relu(b, ry_matmul(b, h, in[2]));
  ry_value logits = ry_matmul(b, h, in[3]);
  ry_value lp = ry_log_softmax(b, logits, -1);
  out[0] = ry_neg(b, ry_mean(b, ry_sum(b, ry_mul(b, lp, in[4]), RY_AXES(1)), RY_NO_AXES, 0));
  return 1;
}

TEST(transform_grad_graph_size) {
  ry_type t[5] = {{RY_F64, RY_SHAPE(4, 8)}, {RY_F64, RY_SHAPE(8, 16)}, {RY_F64, RY_SHAPE(16, 16)}, {RY_F64, RY_SHAPE(16, 3)},
                  {RY_F64, RY_SHAPE(4, 3)}};
  ry_graph *f = NULL, *fs = NULL, *g = NULL, *h = NULL;
  CHECK_OK(ry_trace("mlp", f_mlp3, NULL, 5, t, NULL, &f));
  CHECK_OK(ry_simplify(f, &fs));
  int argnums[3] = {1, 2, 3};
  ry_grad_opts o = {3, argnums, 0};
  CHECK_OK(ry_grad(f, &o, &g));
  if (g && fs) {
    int nf = ry_graph_num_ops(fs), ng = ry_graph_num_ops(g);
    printf("     grad graph of a 3-layer MLP loss: %d ops, forward %d ops (%.2fx)\n", ng, nf, (double)ng / nf);
    CHECK_MSG(ng <= 3 * nf, "grad graph has %d ops, forward %d: more than 3x", ng, nf);
  }
  CHECK_OK(ry_hessian(f, 3, &h));
  CHECK_ROUNDTRIP(h);
  if (h) {
    printf("     hessian (48x48) of the same loss w.r.t. w3: %d ops\n", ry_graph_num_ops(h));
    CHECK(ry_graph_num_ops(h) <= 20 * ry_graph_num_ops(fs));
  }
  ry_graph_release(f);
  ry_graph_release(fs);
  ry_graph_release(g);
  ry_graph_release(h);
}

static int f_cubic(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  /* sum(x^3) + sum(x) * sum(x): Hessian = diag(6x) + 2 */
  ry_value x3 = ry_mul(b, ry_mul(b, in[0], in[0]), in[0]);
  ry_value s = ry_sum(b, in[0], RY_AXES(0));
  out[0] = ry_add(b, ry_sum(b, x3, RY_AXES(0)), ry_mul(b, s, s));
  return 1;
}

TEST(transform_hvp_and_hessian) {
  ry_type t = {RY_F64, RY_SHAPE(3)};
  ry_graph *f = NULL, *hv = NULL, *h = NULL, *jf = NULL, *jr = NULL;
  CHECK_OK(ry_trace("cubic", f_cubic, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_hvp(f, 0, &hv));
  CHECK_ROUNDTRIP(hv);
  double x[3] = {0.5, -1, 2}, v[3] = {1, 2, -1}, hvv[3], *in[2] = {x, v}, *o[1] = {hvv};
  if (hv && run_f64(hv, in, 1, o)) {
    double sv = v[0] + v[1] + v[2];
    for (int i = 0; i < 3; i++) CHECK_NEAR(hvv[i], 6 * x[i] * v[i] + 2 * sv, 1e-12);
  }
  CHECK_OK(ry_hessian(f, 0, &h));
  double hm[9], *ho[1] = {hm};
  if (h && run_f64(h, in, 1, ho))
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) CHECK_NEAR(hm[i * 3 + j], (i == j ? 6 * x[i] : 0) + 2, 1e-12);
  ry_graph_release(f);
  ry_graph_release(hv);
  ry_graph_release(h);
  ry_graph_release(jf);
  ry_graph_release(jr);
}

static int f_vecfn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  /* (2,3) -> (3,): tanh(x0 * x1) column products */
  out[0] = ry_tanh(b, ry_reduce(b, ry_sin(b, in[0]), RY_PROD, RY_AXES(0)));
  return 1;
}

TEST(transform_jacfwd_equals_jacrev) {
  ry_type t = {RY_F64, RY_SHAPE(2, 3)};
  ry_graph *f = NULL, *jf = NULL, *jr = NULL;
  CHECK_OK(ry_trace("vecfn", f_vecfn, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_jacfwd(f, 0, &jf));
  CHECK_OK(ry_jacrev(f, 0, &jr));
  CHECK_ROUNDTRIP(jf);
  CHECK_ROUNDTRIP(jr);
  if (jf && jr) {
    char buf[64];
    CHECK_STR(ry_type_str(ry_graph_output_type(jf, 0), buf, sizeof buf), "f64[3,2,3]");
    CHECK_STR(ry_type_str(ry_graph_output_type(jr, 0), buf, sizeof buf), "f64[3,2,3]");
    double x[6] = {0.3, -0.7, 1.1, 0.4, 0.9, -0.2}, a[18], c[18], *in[1] = {x}, *oa[1] = {a}, *oc[1] = {c};
    if (run_f64(jf, in, 1, oa) && run_f64(jr, in, 1, oc)) {
      for (int k = 0; k < 18; k++) CHECK_NEAR(a[k], c[k], 1e-13);
      /* d y_j / d x_ij = (1 - y_j^2) * cos(x_ij) * sin(x_(1-i)j) */
      for (int j = 0; j < 3; j++) {
        double p = sin(x[j]) * sin(x[3 + j]), y = tanh(p);
        CHECK_NEAR(a[j * 6 + 0 * 3 + j], (1 - y * y) * cos(x[j]) * sin(x[3 + j]), 1e-13);
        CHECK_NEAR(a[j * 6 + 1 * 3 + ((j + 1) % 3)], 0, 0);
      }
    }
  }
  ry_graph_release(f);
  ry_graph_release(jf);
  ry_graph_release(jr);
}

/* ---- bad input ---- */

static int f_vec_out(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_exp(b, in[0]);
  return 1;
}
static int f_int_in(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_sum(b, ry_mul(b, in[0], ry_convert(b, in[1], RY_F64)), RY_AXES(0));
  return 1;
}
static int w_cond(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_lt(b, in[0], ry_scalar(b, RY_F64, 10));
  return 1;
}
static int w_body(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, in[0], ry_scalar(b, RY_F64, 1.5));
  return 1;
}
static int f_while(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  return ry_while(b, w_cond, w_body, NULL, 1, in, out);
}

TEST(transform_bad_input) {
  ry_type v3 = {RY_F64, RY_SHAPE(3)}, two[2] = {{RY_F64, RY_SHAPE(3)}, {RY_I32, RY_SHAPE(3)}}, sc = {RY_F64, RY_SCALAR};
  ry_graph *f = NULL, *fi = NULL, *fw = NULL, *g = NULL;
  CHECK_OK(ry_trace("vec", f_vec_out, NULL, 1, &v3, NULL, &f));
  CHECK_OK(ry_trace("mixed", f_int_in, NULL, 2, two, NULL, &fi));
  CHECK_OK(ry_trace("loop", f_while, NULL, 1, &sc, NULL, &fw));
  CHECK_ERR(ry_grad(f, NULL, &g), RY_ERR_SHAPE, "output 0", "f64[3]", "scalar");
  int bad[1] = {2};
  ry_grad_opts o = {1, bad, 0};
  CHECK_ERR(ry_grad(fi, &o, &g), RY_ERR_INVALID_ARGUMENT, "argnum 2", "out of range", "2 inputs");
  int one[1] = {1};
  ry_grad_opts oi = {1, one, 0};
  CHECK_ERR(ry_grad(fi, &oi, &g), RY_ERR_DTYPE, "input 1", "i32[3]", "only float inputs");
  CHECK_ERR(ry_grad(fw, NULL, &g), RY_ERR_UNSUPPORTED, "while", "trip count", "ry_jvp");
  ry_graph *vf = NULL, *vb = NULL;
  CHECK_ERR(ry_vjp(fw, &vf, &vb, NULL), RY_ERR_UNSUPPORTED, "while", "trip count", "ry_jvp");
  CHECK(vf == NULL && vb == NULL);
  CHECK_ERR(ry_grad(NULL, NULL, &g), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_ERR(ry_hvp(fi, 5, &g), RY_ERR_INVALID_ARGUMENT, "argnum 5");
  CHECK_ERR(ry_jacrev(fi, 1, &g), RY_ERR_DTYPE, "i32");
  CHECK(g == NULL);
  /* forward mode through the same while loop works: d(x * 1.5^k)/dx = 1.5^k */
  ry_graph *j = NULL;
  CHECK_OK(ry_jvp(fw, &j));
  if (j) {
    double x = 1, t = 1, y[2], *in[2] = {&x, &t}, *o2[2] = {&y[0], &y[1]};
    if (run_f64(j, in, 2, o2)) {
      CHECK_NEAR(y[0], pow(1.5, 6), 1e-12);
      CHECK_NEAR(y[1], pow(1.5, 6), 1e-12);
    }
  }
  ry_graph_release(j);
  ry_graph_release(f);
  ry_graph_release(fi);
  ry_graph_release(fw);
}

/* ---- custom rules, stop_gradient, checkpoint ---- */

static int f_softplus(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_log1p(b, ry_exp(b, in[0]));
  return 1;
}
/* (x, t) -> (softplus(x), 2 * t * sigmoid(x)): deliberately twice the truth */
static int f_softplus_jvp(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_log1p(b, ry_exp(b, in[0]));
  out[1] = ry_mul(b, ry_mul(b, in[1], ry_logistic(b, in[0])), ry_scalar(b, RY_F64, 2));
  return 2;
}
static int f_cube(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, ry_mul(b, in[0], in[0]), in[0]);
  return 1;
}
static int f_cube_fwd(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, ry_mul(b, in[0], in[0]), in[0]);
  out[1] = in[0]; /* residual */
  return 2;
}
/* (res, ct) -> 10 * 3 x^2 ct: ten times the truth, to see that it is used */
static int f_cube_bwd(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, ry_mul(b, ry_mul(b, in[0], in[0]), in[1]), ry_scalar(b, RY_F64, 30));
  return 1;
}
TEST(transform_custom_jvp_and_vjp) {
  ry_type t = {RY_F64, RY_SHAPE(3)}, t2[2] = {t, t};
  ry_graph *sp = NULL, *sp_jvp = NULL, *cube = NULL, *fwd = NULL, *bwd = NULL, *g = NULL, *j = NULL, *main_g = NULL;
  CHECK_OK(ry_trace("softplus", f_softplus, NULL, 1, &t, NULL, &sp));
  CHECK_OK(ry_trace("softplus_jvp", f_softplus_jvp, NULL, 2, t2, NULL, &sp_jvp));
  CHECK_OK(ry_trace("cube", f_cube, NULL, 1, &t, NULL, &cube));
  CHECK_OK(ry_trace("cube_fwd", f_cube_fwd, NULL, 1, &t, NULL, &fwd));
  CHECK_OK(ry_trace("cube_bwd", f_cube_bwd, NULL, 2, t2, NULL, &bwd));
  ry_builder *b = ry_builder_new("main");
  ry_value x = ry_input(b, "x", t), a, c;
  ry_custom_jvp(b, sp, sp_jvp, 1, &x, &a);
  ry_custom_vjp(b, cube, fwd, bwd, 1, &x, &c);
  ry_value y = ry_add(b, ry_sum(b, a, RY_AXES(0)), ry_sum(b, c, RY_AXES(0)));
  CHECK_OK(ry_builder_finish(b, 1, &y, &main_g));
  CHECK_OK(ry_grad(main_g, NULL, &g));
  CHECK_ROUNDTRIP(main_g);
  CHECK_ROUNDTRIP(g);
  CHECK_OK(ry_jvp(main_g, &j));
  double xv[3] = {-1, 0.5, 2}, gr[3], *in[1] = {xv}, *o[1] = {gr};
  if (g && run_f64(g, in, 1, o))
    for (int i = 0; i < 3; i++) {
      double sig = 1 / (1 + exp(-xv[i]));
      CHECK_NEAR(gr[i], 2 * sig + 30 * xv[i] * xv[i], 1e-12); /* both custom rules used */
    }
  if (j) {
    /* forward mode: the custom jvp rule, and the cube differentiated itself */
    double tv[3] = {1, 1, 1}, yv[2], *in2[2] = {xv, tv}, *o2[2] = {&yv[0], &yv[1]};
    if (run_f64(j, in2, 2, o2)) {
      double want = 0;
      for (int i = 0; i < 3; i++) want += 2 / (1 + exp(-xv[i])) + 3 * xv[i] * xv[i];
      CHECK_NEAR(yv[1], want, 1e-12);
    }
  }
  ry_graph_release(sp);
  ry_graph_release(cube);
  ry_graph_release(sp_jvp);
  ry_graph_release(fwd);
  ry_graph_release(bwd);
  ry_graph_release(g);
  ry_graph_release(j);
  ry_graph_release(main_g);
}

static int f_bad_jvp(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = in[0];
  out[1] = ry_reduce(b, in[1], RY_SUM, RY_AXES(0)); /* wrong shape: f64[] for f64[3] */
  return 2;
}

TEST(transform_custom_rule_bad_shapes) {
  ry_type t = {RY_F64, RY_SHAPE(3)}, t2[2] = {t, t};
  ry_graph *sp = NULL, *bad = NULL, *g = NULL;
  CHECK_OK(ry_trace("softplus", f_softplus, NULL, 1, &t, NULL, &sp));
  CHECK_OK(ry_trace("bad_jvp", f_bad_jvp, NULL, 2, t2, NULL, &bad));
  ry_builder *b = ry_builder_new("main");
  ry_value x = ry_input(b, "x", t), a;
  ry_custom_jvp(b, sp, bad, 1, &x, &a);
  CHECK_ERR(ry_builder_finish(b, 1, &a, &g), RY_ERR_SHAPE, "jvp rule", "@bad_jvp", "output 1", "f64[]", "f64[3]");
  ry_graph_release(sp);
  ry_graph_release(bad);
}

static int f_stopgrad(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_sum(b, ry_mul(b, in[0], ry_stop_gradient(b, in[0])), RY_AXES(0));
  return 1;
}

TEST(transform_stop_gradient) {
  ry_type t = {RY_F64, RY_SHAPE(3)};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace("sg", f_stopgrad, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g));
  double x[3] = {1, -2, 3}, gr[3], *in[1] = {x}, *o[1] = {gr};
  if (g && run_f64(g, in, 1, o))
    for (int i = 0; i < 3; i++) CHECK_NEAR(gr[i], x[i], 0); /* d(x * sg(x)) = sg(x) */
  ry_graph_release(f);
  ry_graph_release(g);
}

/* one layer: z = h @ w; tanh(z) * logistic(z) */
static int f_layer(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value z = ry_matmul(b, in[0], in[1]);
  out[0] = ry_mul(b, ry_tanh(b, z), ry_logistic(b, z));
  return 1;
}
typedef struct {
  ry_graph *layer;
  int policy; /* 0: plain call */
} mlp4_ctx;
static int f_mlp4(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  mlp4_ctx *c = ctx;
  ry_value h = in[0];
  for (int l = 0; l < 4; l++) {
    ry_value args[2] = {h, in[1 + l]};
    if (c->policy)
      ry_checkpoint(b, c->layer, (ry_remat_policy)c->policy, 2, args, &h);
    else
      ry_call(b, c->layer, 2, args, &h);
  }
  out[0] = ry_sum(b, ry_mul(b, h, h), RY_AXES(0, 1));
  return 1;
}

TEST(transform_checkpoint_saves_fewer_residuals) {
  ry_type lt[2] = {{RY_F64, RY_SHAPE(2, 4)}, {RY_F64, RY_SHAPE(4, 4)}};
  ry_type mt[5] = {lt[0], lt[1], lt[1], lt[1], lt[1]};
  ry_graph *layer = NULL;
  CHECK_OK(ry_trace("layer", f_layer, NULL, 2, lt, NULL, &layer));
  int policies[3] = {0, RY_REMAT_SAVE_DOTS, RY_REMAT_SAVE_NOTHING};
  int nres[3] = {0};
  double grads[3][16];
  double x[8], w[4][16];
  for (int i = 0; i < 8; i++) x[i] = 0.3 * sin(i + 1.0);
  for (int l = 0; l < 4; l++)
    for (int i = 0; i < 16; i++) w[l][i] = 0.5 * cos(3.0 * i + l);
  for (int p = 0; p < 3; p++) {
    mlp4_ctx c = {layer, policies[p]};
    ry_graph *f = NULL, *fwd = NULL, *bwd = NULL, *g = NULL;
    CHECK_OK(ry_trace("mlp4", f_mlp4, &c, 5, mt, NULL, &f));
    CHECK_OK(ry_vjp(f, &fwd, &bwd, &nres[p]));
    CHECK_ROUNDTRIP(f);
    CHECK_ROUNDTRIP(fwd);
    CHECK_ROUNDTRIP(bwd);
    int argnum = 1;
    ry_grad_opts o = {1, &argnum, 0};
    CHECK_OK(ry_grad(f, &o, &g));
    double *in[5] = {x, w[0], w[1], w[2], w[3]}, *out[1] = {grads[p]};
    if (g) run_f64(g, in, 1, out);
    ry_graph_release(f);
    ry_graph_release(fwd);
    ry_graph_release(bwd);
    ry_graph_release(g);
  }
  printf("     residuals of a 4-layer MLP: plain %d, save dots %d, save nothing %d\n", nres[0], nres[1], nres[2]);
  CHECK_MSG(nres[2] < nres[1] && nres[1] < nres[0], "residuals: plain %d, dots %d, nothing %d", nres[0], nres[1], nres[2]);
  for (int p = 1; p < 3; p++)
    for (int i = 0; i < 16; i++) CHECK_NEAR(grads[p][i], grads[0][i], 1e-14);
  ry_graph_release(layer);
}

static int f_simplifiable(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value x = in[0];                                                   /* (2,3) */
  ry_value t = ry_transpose(b, ry_transpose(b, x, RY_AXES(1, 0)), RY_AXES(1, 0)); /* = x */
  ry_value one = ry_full(b, RY_F64, RY_SHAPE(2, 3), 1.0);
  ry_value m = ry_mul(b, t, one);                                       /* = x */
  ry_value r = ry_reshape(b, ry_reshape(b, m, RY_SHAPE(3, 2)), RY_SHAPE(6)); /* one reshape */
  ry_value c = ry_add(b, ry_scalar(b, RY_F64, 2), ry_scalar(b, RY_F64, 3));  /* folds to 5 */
  ry_value unused = ry_exp(b, x);                                       /* dead */
  (void)unused;
  out[0] = ry_mul(b, r, c);
  out[1] = ry_neg(b, ry_neg(b, x));                                     /* = x */
  return 2;
}

TEST(transform_simplify) {
  ry_type t = {RY_F64, RY_SHAPE(2, 3)};
  ry_graph *f = NULL, *s = NULL;
  CHECK_OK(ry_trace("simp", f_simplifiable, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_simplify(f, &s));
  if (!s) return;
  /* reshape, constant 5 (folded), broadcast of it, mul: 4 ops */
  CHECK_MSG(ry_graph_num_ops(s) <= 4, "simplified to %d ops (from %d)", ry_graph_num_ops(s), ry_graph_num_ops(f));
  double x[6] = {1, -2, 3, 0.5, -0.25, 6}, a[6], c[6], *in[1] = {x}, *o[2] = {a, c};
  if (run_f64(s, in, 2, o))
    for (int i = 0; i < 6; i++) {
      CHECK_NEAR(a[i], 5 * x[i], 0);
      CHECK_NEAR(c[i], x[i], 0);
    }
  CHECK_ROUNDTRIP(s);
  ry_graph_release(f);
  ry_graph_release(s);
}

/* transpose(dot_general(a, b)) with only the free dims swapped, the shape of a
 * weight gradient, becomes dot_general(b, a): no transpose left, the same
 * values; a transpose whose dot has another user stays. */
static int f_dot_transposed(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(0), RY_AXES(0)};
  ry_value p = ry_dot_general(b, in[0], in[1], d, RY_F64); /* (3, 4) */
  out[0] = ry_transpose(b, p, RY_AXES(1, 0));
  ry_value q = ry_dot_general(b, in[1], in[0], d, RY_F64); /* (4, 3), used twice */
  out[1] = ry_add(b, ry_transpose(b, q, RY_AXES(1, 0)), ry_transpose(b, q, RY_AXES(1, 0)));
  out[2] = q;
  return 3;
}

TEST(transform_simplify_folds_transpose_into_dot) {
  ry_type t[2] = {{RY_F64, RY_SHAPE(2, 3)}, {RY_F64, RY_SHAPE(2, 4)}};
  ry_graph *f = NULL, *s = NULL;
  CHECK_OK(ry_trace("dot_t", f_dot_transposed, NULL, 2, t, NULL, &f));
  CHECK_OK(ry_simplify(f, &s));
  if (!s) return;
  char *text = NULL;
  CHECK_OK(ry_graph_to_string(s, &text));
  int transposes = 0;
  for (const char *c = text; c && (c = strstr(c, "= transpose")); c++) transposes++;
  CHECK_MSG(transposes == 1, "%d transposes left:\n%s", transposes, text ? text : "");
  ry_free(text);
  double x[6] = {1, -2, 3, 0.5, -0.25, 6}, y[8] = {2, 1, -1, 0.5, 3, -2, 0.25, 4};
  double o0[12], o1[12], o2[12], *in[2] = {x, y}, *o[3] = {o0, o1, o2};
  if (run_f64(s, in, 3, o))
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 3; j++) {
        double ref = x[j] * y[i] + x[3 + j] * y[4 + i]; /* (a^T b)^T [i][j] */
        CHECK_NEAR(o0[i * 3 + j], ref, 0);
        CHECK_NEAR(o1[j * 4 + i], 2 * o2[i * 3 + j], 0);
      }
  check_devices_agree("dot_t", s, in);
  CHECK_ROUNDTRIP(s);
  ry_graph_release(f);
  ry_graph_release(s);
}

/* Products with zeros in them: the derivative is the product of the other
 * elements (JAX gives the same), never a NaN from dividing by x. */
static int f_prod_all(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_reduce(b, in[0], RY_PROD, RY_AXES(0, 1));
  return 1;
}
static int f_sum_cumprod(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ry_value y = ry_cumulative(b, in[0], RY_PROD, 1, *(const int *)ctx);
  out[0] = ry_sum(b, ry_mul(b, y, ry_iota(b, RY_F64, RY_SHAPE(2, 3), 1)), RY_AXES(0, 1));
  return 1;
}

TEST(transform_prod_derivatives_with_zeros) {
  ry_type t = {RY_F64, RY_SHAPE(2, 3)};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace("prod", f_prod_all, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g));
  double one_zero[6] = {2, 0, 3, 4, 0.5, 1}, two_zeros[6] = {0, 2, 0, 3, 1, 1}, d[6], *in[1], *o[1] = {d};
  in[0] = one_zero;
  if (run_f64(g, in, 1, o)) {
    double want[6] = {0, 12, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++) CHECK_NEAR(d[i], want[i], 1e-12);
  }
  check_devices_agree("grad prod", g, in);
  in[0] = two_zeros;
  if (run_f64(g, in, 1, o))
    for (int i = 0; i < 6; i++) CHECK_NEAR(d[i], 0, 0);
  ry_graph_release(f);
  ry_graph_release(g);
  /* sum(cumprod(x, axis 1) * [0, 1, 2]) in both directions, x row 0 = [2, 0, 3] */
  for (int rev = 0; rev < 2; rev++) {
    CHECK_OK(ry_trace("cumprod", f_sum_cumprod, &rev, 1, &t, NULL, &f));
    CHECK_OK(ry_grad(f, NULL, &g));
    double x[6] = {2, 0, 3, 0, 0, 5};
    in[0] = x;
    if (run_f64(g, in, 1, o)) {
      /* forward: y = [x0, x0x1, x0x1x2] weighted 0, 1, 2; reverse: y = [x0x1x2, x1x2, x2] */
      double want[2][6] = {{0 + 1 * x[1] + 2 * x[1] * x[2], 1 * x[0] + 2 * x[0] * x[2], 2 * x[0] * x[1],
                            x[4] + 2 * x[4] * x[5], x[3] + 2 * x[3] * x[5], 2 * x[3] * x[4]},
                           {0, 0 * x[0] * x[2] + 1 * x[2], 0 * x[0] * x[1] + 1 * x[1] + 2,
                            0, 0 * x[3] * x[5] + 1 * x[5], 0 * x[3] * x[4] + 1 * x[4] + 2}};
      want[1][0] = 0 * x[1] * x[2];
      want[1][3] = 0 * x[4] * x[5];
      for (int i = 0; i < 6; i++) CHECK_MSG(fabs(d[i] - want[rev][i]) <= 1e-12, "rev=%d d[%d] = %g, want %g", rev, i, d[i], want[rev][i]);
    }
    check_devices_agree("grad cumprod", g, in);
    ry_graph_release(f);
    ry_graph_release(g);
  }
}

/* Edge cases of the prod rule: nothing reduced (rank 8, the identity), and
 * partial products that overflow next to a zero (the others' product is
 * still 0 or inf, never NaN). */
static int f_prod_none(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_sum(b, ry_reduce(b, in[0], RY_PROD, RY_NO_AXES), RY_AXES(0, 1, 2, 3, 4, 5, 6, 7));
  return 1;
}
static int f_prod_f32(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_reduce(b, in[0], RY_PROD, RY_AXES(0));
  return 1;
}

TEST(transform_prod_edge_cases) {
  ry_type t8 = {RY_F64, RY_SHAPE(1, 1, 1, 1, 1, 1, 1, 2)};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace("prod_none", f_prod_none, NULL, 1, &t8, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g));
  double x8[2] = {3, -4}, d8[2], *in[1] = {x8}, *o[1] = {d8};
  if (g && run_f64(g, in, 1, o)) CHECK(d8[0] == 1 && d8[1] == 1);
  ry_graph_release(f);
  ry_graph_release(g);
  ry_type t = {RY_F32, RY_SHAPE(4)};
  CHECK_OK(ry_trace("prod_f32", f_prod_f32, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g));
  if (g) {
    float xs[4] = {0, 1e30f, 1e30f, 2};
    ry_array *x = NULL, *d = NULL;
    ry_device *interp;
    CHECK_OK(ry_device_get("interp", &interp));
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), xs, &x));
    CHECK_OK(ry_run(g, interp, 1, &x, 1, &d));
    if (d) {
      CHECK(isinf(ry_array_get_f64(d, 0)));
      for (int i = 1; i < 4; i++) CHECK_MSG(ry_array_get_f64(d, i) == 0, "d[%d] = %g", i, ry_array_get_f64(d, i));
    }
    ry_array_release(x);
    ry_array_release(d);
  }
  ry_graph_release(f);
  ry_graph_release(g);
}

/* L(s) = mean cross-entropy of a 2-layer MLP whose weights are scaled by s */
static int f_mlp_scaled(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value s = in[0];
  ry_value x = ry_cos(b, ry_reshape(b, ry_iota(b, RY_F64, RY_SHAPE(12), 0), RY_SHAPE(3, 4)));
  ry_value w1 = ry_sin(b, ry_reshape(b, ry_iota(b, RY_F64, RY_SHAPE(20), 0), RY_SHAPE(4, 5)));
  ry_value w2 = ry_cos(b, ry_mul(b, ry_reshape(b, ry_iota(b, RY_F64, RY_SHAPE(10), 0), RY_SHAPE(5, 2)), ry_scalar(b, RY_F64, 1.3)));
  ry_value h = ry_tanh(b, ry_matmul(b, x, ry_mul(b, w1, s)));
  ry_value lp = ry_log_softmax(b, ry_matmul(b, h, ry_mul(b, w2, s)), -1);
  ry_value labels = ry_one_hot(b, ry_convert(b, ry_iota(b, RY_I32, RY_SHAPE(3), 0), RY_I32), 2, RY_F64);
  out[0] = ry_neg(b, ry_mean(b, ry_sum(b, ry_mul(b, lp, labels), RY_AXES(1)), RY_NO_AXES, 0));
  return 1;
}

TEST(transform_third_derivative_of_mlp_loss) {
  ry_type t = {RY_F64, RY_SCALAR};
  ry_graph *f = NULL, *g1 = NULL, *g2 = NULL, *g3 = NULL;
  CHECK_OK(ry_trace("mlp_scaled", f_mlp_scaled, NULL, 1, &t, NULL, &f));
  CHECK_OK(ry_grad(f, NULL, &g1));
  CHECK_OK(ry_grad(g1, NULL, &g2));
  CHECK_OK(ry_grad(g2, NULL, &g3));
  CHECK_ROUNDTRIP(g3);
  if (!g3) goto done;
  for (double s = 0.3; s < 1.5; s += 0.4) {
    const double h = 1e-5;
    double d1 = run_scalar(g1, s), d2 = run_scalar(g2, s), d3 = run_scalar(g3, s);
    double fd1 = (run_scalar(f, s + h) - run_scalar(f, s - h)) / (2 * h);
    double fd2 = (run_scalar(g1, s + h) - run_scalar(g1, s - h)) / (2 * h);
    double fd3 = (run_scalar(g2, s + h) - run_scalar(g2, s - h)) / (2 * h);
    CHECK_NEAR(d1, fd1, 1e-8 * fmax(1, fabs(fd1)));
    CHECK_NEAR(d2, fd2, 1e-7 * fmax(1, fabs(fd2)));
    CHECK_NEAR(d3, fd3, 1e-6 * fmax(1, fabs(fd3)));
  }
done:
  ry_graph_release(f);
  ry_graph_release(g1);
  ry_graph_release(g2);
  ry_graph_release(g3);
}

TEST(transform_transpose_rules_cover_linear_ops) {
  /* the ops flagged LINEAR in ops.def (those JVP rules emit on tangents) have
   * a transpose rule, and only they; cond, scan and call are transposed in grad.c */
  int n_linear = 0;
  for (int op = 0; op < RY_OP_COUNT; op++) {
    bool linear = (ryg_op_table[op].flags & RY_OPF_LINEAR) != 0;
    n_linear += linear;
    CHECK_MSG(linear == (ryt_transpose_rules[op] != NULL), "op %s: flagged %s in ops.def but %s a transpose rule",
              ryg_op_table[op].name, linear ? "LINEAR" : "not LINEAR", linear ? "lacks" : "has");
  }
  CHECK(n_linear >= 22);
}

static int f_aux(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value y = ry_mul(b, in[0], in[1]);
  out[0] = ry_sum(b, ry_mul(b, y, y), RY_AXES(0)); /* loss */
  out[1] = ry_argmax(b, y, 0);                     /* aux: an integer */
  out[2] = y;                                      /* aux: a float array */
  return 3;
}

TEST(transform_value_and_grad_argnums_has_aux) {
  ry_type t[2] = {{RY_F64, RY_SHAPE(3)}, {RY_F64, RY_SHAPE(3)}};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace("aux", f_aux, NULL, 2, t, NULL, &f));
  int argnums[2] = {1, 0};
  ry_grad_opts o = {2, argnums, 1};
  CHECK_OK(ry_value_and_grad(f, &o, &g));
  if (!g) return;
  CHECK_EQ_INT(ry_graph_num_outputs(g), 5); /* value, d/dx1, d/dx0, aux0, aux1 */
  double a[3] = {1, -2, 0.5}, c[3] = {3, 1, -4}, v, g1[3], g0[3], ax[3], *in[2] = {a, c};
  ry_array *ai[2] = {NULL, NULL}, *out[5] = {0};
  ry_status_free(ry_array_from_host(RY_F64, RY_SHAPE(3), a, &ai[0]));
  ry_status_free(ry_array_from_host(RY_F64, RY_SHAPE(3), c, &ai[1]));
  (void)in;
  CHECK_OK(ry_run(g, interp(), 2, ai, 5, out));
  if (out[0]) {
    v = 0;
    for (int i = 0; i < 3; i++) v += a[i] * c[i] * a[i] * c[i];
    CHECK_NEAR(ry_array_get_f64(out[0], 0), v, 1e-12);
    for (int i = 0; i < 3; i++) {
      g1[i] = 2 * a[i] * c[i] * a[i];
      g0[i] = 2 * a[i] * c[i] * c[i];
      ax[i] = a[i] * c[i];
      CHECK_NEAR(ry_array_get_f64(out[1], i), g1[i], 1e-12);
      CHECK_NEAR(ry_array_get_f64(out[2], i), g0[i], 1e-12);
      CHECK_NEAR(ry_array_get_f64(out[4], i), ax[i], 0);
    }
    CHECK_EQ_INT(ry_array_get_i64(out[3], 0), 0); /* argmax of (3, -2, -2) */
  }
  for (int i = 0; i < 5; i++) ry_array_release(out[i]);
  ry_array_release(ai[0]);
  ry_array_release(ai[1]);
  ry_graph *bad = NULL;
  ry_grad_opts no_aux = {1, argnums, 0};
  CHECK_ERR(ry_grad(f, &no_aux, &bad), RY_ERR_INVALID_ARGUMENT, "3 outputs", "has_aux");
  ry_graph_release(f);
  ry_graph_release(g);
}

/* Collectives on one device (the interpreter evaluates a group of n as n
 * equal values): f(x) = sum(psum(x)^2 + pmax(x)) over a mesh of 2, so
 * psum(x) = 2x, pmax(x) = x, f = sum(4x^2 + x), grad = 8x + 1; the
 * transpose of psum is psum. all_gather/reduce_scatter: f = sum(rs(ag(x))^2)
 * where ag then rs(sum) gives 2x, grad 8x: in all 16x + 1. */
static int f_collective_loss(ry_builder *b, const ry_value *x, ry_value *o, void *ctx) {
  (void)ctx;
  ry_value s = ry_psum(b, x[0], 2), m = ry_all_reduce(b, x[0], RY_MAX, RY_AXES(2), RY_AXES(0));
  ry_value r = ry_reduce_scatter(b, ry_all_gather(b, x[0], 0, RY_AXES(2), RY_AXES(0)), 0, RY_SUM, RY_AXES(2), RY_AXES(0));
  o[0] = ry_sum(b, ry_add(b, ry_add(b, ry_mul(b, s, s), m), ry_mul(b, r, r)), RY_AXES(0));
  return 1;
}

TEST(transform_grad_of_collectives_on_one_device) {
  ry_type t = {RY_F64, RY_SHAPE(3)};
  ry_graph *f = NULL, *g = NULL;
  CHECK_OK(ry_trace("coll", f_collective_loss, NULL, 1, &t, NULL, &f));
  if (f) CHECK_OK(ry_grad(f, NULL, &g));
  double xv[3] = {0.5, -1.25, 2};
  ry_array *x = NULL, *gx = NULL;
  CHECK_OK(ry_array_from_host(RY_F64, RY_SHAPE(3), xv, &x));
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  if (g && d) CHECK_OK(ry_run(g, d, 1, &x, 1, &gx));
  for (int i = 0; gx && i < 3; i++) CHECK_NEAR(ry_array_get_f64(gx, i), 16 * xv[i] + 1, 1e-12);
  ry_array_release(gx);
  ry_array_release(x);
  ry_graph_release(g);
  ry_graph_release(f);
}
