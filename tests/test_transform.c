/* Transformations: finite-difference checks in f64 for the JVP and the
 * gradient of every differentiable op (one row per op, like ggml's
 * test-backend-ops), compositions, and bad input. */
#include <stdlib.h>

#include "testlib.h"

/* ---- helpers ---- */

static ry_device *interp(void) {
  ry_device *d = NULL;
  ry_status_free(ry_device_get("interp", &d));
  return d;
}

/* Run g on f64 host buffers: in[i] has the input types' sizes. */
static int run_f64(ry_graph *g, double *const *in, int n_out, double **out) {
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
    ry_status s = ry_run(g, interp(), n_in, a, ry_graph_num_outputs(g), o);
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
  }
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


TEST(transform_finite_differences) {
  const fd_row g_rows[] = {
    {"neg", op_neg, 1, {RY_SHAPE(2, 3)}, -2, 2},
    {"abs", op_abs, 1, {RY_SHAPE(5)}, 0.2, 2},
    {"exp", op_exp, 1, {RY_SHAPE(2, 3)}, -2, 2},
    {"exp2", op_exp2, 1, {RY_SHAPE(4)}, -2, 2},
    {"log", op_log, 1, {RY_SHAPE(4)}, 0.2, 3},
    {"log1p", op_log1p, 1, {RY_SHAPE(4)}, -0.5, 3},
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
    {"cond", op_cond, 2, {RY_SHAPE(3), RY_SHAPE(3)}, -1, 1},
    {"softmax", op_softmax, 1, {RY_SHAPE(2, 5)}, -2, 2},
    {"log_softmax", op_log_softmax, 1, {RY_SHAPE(3, 4)}, -2, 2},
    {"logsumexp", op_logsumexp, 1, {RY_SHAPE(3, 4)}, -2, 2},
    {"gelu_tanh", op_gelu, 1, {RY_SHAPE(6)}, -2, 2},
    {"gelu_erf", op_gelu_erf, 1, {RY_SHAPE(6)}, -2, 2},
    {"var", op_var, 1, {RY_SHAPE(3, 4)}, -2, 2},
    {"convert", op_convert, 1, {RY_SHAPE(3)}, -2, 2},
};

  for (size_t i = 0; i < sizeof g_rows / sizeof *g_rows; i++) {
    char name[96];
    snprintf(name, sizeof name, "fd/%s", g_rows[i].name);
    rt_case_begin(name);
    if (strcmp(g_rows[i].name, "convert") != 0) fd_check(&g_rows[i]);
    rt_case_end();
  }
}
