/* Kernels that store several values (src/backend/cpu/fuse.c, plan_try):
 * an optimizer's update, whose new moments are graph results read only by
 * the parameter's update at its own elements, becomes one loop storing all
 * three; with the state donated each output takes over an input's buffer
 * (ryk_<kernel>_ipm). The values match the interpreter, are bitwise the
 * same with 1 and 2 threads and with or without donation, and a result read
 * by another step or at other elements keeps its own kernel. */
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/pool.h"
#include "cpu_testlib.h"

/* (p, m, v, g, bc1, bc2) -> (p', m', v'): Adam's update, as ry_nn's */
static int f_adam(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value g = in[3];
  ry_value m = ry_add(b, ry_mul(b, ry_const_like(b, g, 0.9), in[1]), ry_mul(b, ry_const_like(b, g, 0.1), g));
  ry_value v = ry_add(b, ry_mul(b, ry_const_like(b, g, 0.999), in[2]),
                      ry_mul(b, ry_const_like(b, g, 0.001), ry_mul(b, g, g)));
  ry_value u = ry_div(b, ry_div(b, m, in[4]), ry_add(b, ry_sqrt(b, ry_div(b, v, in[5])), ry_const_like(b, v, 1e-8)));
  out[0] = ry_sub(b, in[0], ry_mul(b, ry_const_like(b, u, 1e-3), u));
  out[1] = m;
  out[2] = v;
  return 3;
}

/* the same, and m' also read by a reduction (another step): m' keeps its
   kernel, v' is still absorbed */
static int f_adam_msum(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  if (f_adam(b, in, out, ctx) != 3) return -1;
  out[3] = ry_sum(b, out[1], RY_AXES(0, 1));
  return 4;
}

/* p' reads m' transposed (square arrays): at other elements, not absorbed */
static int f_transposed(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value m = ry_add(b, ry_mul(b, ry_const_like(b, in[3], 0.9), in[1]), in[3]);
  out[0] = ry_sub(b, in[0], ry_transpose(b, m, RY_AXES(1, 0)));
  out[1] = m;
  return 2;
}

static ry_graph *trace(const char *name, ry_fn fn, int64_t rows, int64_t cols) {
  ry_type t[6];
  for (int i = 0; i < 4; i++) t[i] = (ry_type){RY_F32, RY_SHAPE(rows, cols)};
  t[4] = t[5] = (ry_type){RY_F32, RY_SCALAR};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace(name, fn, NULL, 6, t, NULL, &g));
  return g;
}

static double w_p(int64_t i) { return sin((double)i * 0.31) * 0.5; }
static double w_m(int64_t i) { return cos((double)i * 0.17) * 0.01; }
static double w_v(int64_t i) { return 1e-4 * (1.0 + sin((double)i * 0.05)); }
static double w_g(int64_t i) { return sin((double)i * 0.73) * 0.02 + (double)(i % 5) * 1e-3; }

static void inputs(int64_t rows, int64_t cols, ry_array **in) {
  ry_shape s = RY_SHAPE(rows, cols);
  in[0] = filled(s, w_p);
  in[1] = filled(s, w_m);
  in[2] = filled(s, w_v);
  in[3] = filled(s, w_g);
  float c1 = 0.1f, c2 = 0.001f; /* 1 - beta^t at t = 1 */
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &c1, &in[4]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &c2, &in[5]));
}

static ry_device *dev_interp(void) {
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  return d;
}

/* a copy the callee may take over */
static ry_array *copy(const ry_array *a) {
  ry_array *c = NULL;
  CHECK_OK(ry_array_from_host(ry_array_dtype(a), ry_array_shape(a), ry_array_data(a), &c));
  return c;
}

TEST(cpu_adam_update_is_one_kernel_with_three_outputs) {
  ry_graph *g = trace("adam", f_adam, 37, 29); /* 1073 elements: no multiple of the lanes */
  if (!g) return;
  ry_executable *e = NULL;
  char dir[256];
  temp_dir(dir, sizeof dir, "absorb");
  setenv("RYFT_DUMP", dir, 1);
  CHECK_OK(ry_compile(g, cpu(), &e));
  unsetenv("RYFT_DUMP");
  char *rep = rt_read_dump(dir, "04-fusion.txt"), *src = rt_read_dump(dir, "05-kernels.c");
  CHECK_MSG(rep && count_of(rep, "also stores") == 2, "the moments are not stored by the update's kernel:\n%s",
            rep ? rep : "(no report)");
  CHECK(rep && strstr(rep, "its outputs may write over"));
  CHECK(src && strstr(src, "void ryk_0(") && strstr(src, "void ryk_0_ipm(") && !strstr(src, "void ryk_1("));
  free(rep);
  free(src);

  /* donated, against the interpreter: every output takes over a buffer */
  ry_array *in[6], *ref[3] = {NULL}, *got[3] = {NULL}, *kept[3] = {NULL};
  inputs(37, 29, in);
  CHECK_OK(ry_run(g, dev_interp(), 6, in, 3, ref));
  ry_array *don[6];
  for (int i = 0; i < 6; i++) don[i] = copy(in[i]);
  bool donate[6] = {true, true, true, true, false, false};
  ryc_set_background_compiles(0);
  if (e) CHECK_OK(ry_execute_donated(e, 6, don, donate, 3, got));
  for (int i = 0; i < 6; i++) ry_array_release(don[i]); /* the two not donated (the others are NULL now) */
  ryc_run_stats st;
  ryc_last_run_stats(&st);
  CHECK_MSG(st.in_place == 3, "%ld outputs written in place, expected 3", st.in_place);
  for (int o = 0; o < 3; o++) {
    CHECK(ref[o] && got[o] && ry_array_numel(ref[o]) == ry_array_numel(got[o]));
    if (!ref[o] || !got[o]) continue;
    const float *r = ry_array_data(ref[o]), *x = ry_array_data(got[o]);
    for (int64_t i = 0; i < ry_array_numel(ref[o]); i++)
      if (fabsf(r[i] - x[i]) > 1e-6f * fabsf(r[i]) + 1e-12f) {
        CHECK_MSG(false, "output %d element %ld: %.9g, interpreter %.9g", o, (long)i, x[i], r[i]);
        break;
      }
  }
  /* not donated: the caller's inputs are read, not written, and the results
     are the same bits */
  if (e) CHECK_OK(ry_execute(e, 6, in, 3, kept));
  for (int o = 0; o < 3; o++) CHECK(same_bits(kept[o], got[o]));
  ry_array *fresh[6];
  inputs(37, 29, fresh);
  for (int i = 0; i < 6; i++) CHECK(same_bits(in[i], fresh[i]));
  ryc_set_background_compiles(-1);
  for (int i = 0; i < 6; i++) {
    ry_array_release(in[i]);
    ry_array_release(fresh[i]);
  }
  for (int o = 0; o < 3; o++) {
    ry_array_release(ref[o]);
    ry_array_release(got[o]);
    ry_array_release(kept[o]);
  }
  ry_executable_free(e);
  ry_graph_release(g);
}

TEST(cpu_adam_update_threads_identical) {
  ry_graph *g = trace("adam_big", f_adam, 300, 301); /* split over the threads */
  if (!g) return;
  ry_executable *e = NULL;
  ryc_set_background_compiles(0);
  CHECK_OK(ry_compile(g, cpu(), &e));
  ry_array *in[6], *out[2][3] = {{NULL}};
  inputs(300, 301, in);
  for (int t = 0; t < 2 && e; t++) {
    ryc_set_num_threads(t + 1);
    ry_array *don[6];
    for (int i = 0; i < 6; i++) don[i] = copy(in[i]);
    bool donate[6] = {true, true, true, true, false, false};
    CHECK_OK(ry_execute_donated(e, 6, don, donate, 3, out[t]));
    for (int i = 0; i < 6; i++) ry_array_release(don[i]); /* the two not donated (the others are NULL now) */
  }
  ryc_set_num_threads(0);
  ryc_set_background_compiles(-1);
  for (int o = 0; o < 3; o++) CHECK_MSG(same_bits(out[0][o], out[1][o]), "output %d differs between 1 and 2 threads", o);
  for (int i = 0; i < 6; i++) ry_array_release(in[i]);
  for (int t = 0; t < 2; t++)
    for (int o = 0; o < 3; o++) ry_array_release(out[t][o]);
  ry_executable_free(e);
  ry_graph_release(g);
}

TEST(cpu_result_read_elsewhere_keeps_its_kernel) {
  ry_graph *g = trace("adam_msum", f_adam_msum, 12, 12);
  ry_executable *e = NULL;
  char *rep = g ? compile_report(g, "absorb2", &e) : NULL;
  CHECK_MSG(rep && count_of(rep, "also stores") == 1, "expected only v' absorbed:\n%s", rep ? rep : "(no report)");
  free(rep);
  ry_executable_free(e);
  ry_graph_release(g);
  g = trace("transposed", f_transposed, 12, 12);
  rep = g ? compile_report(g, "absorb3", &e) : NULL;
  CHECK_MSG(rep && count_of(rep, "also stores") == 0, "a result read transposed was absorbed:\n%s", rep ? rep : "(no report)");
  /* and the values are right */
  ry_array *in[6], *ref[2] = {NULL}, *got[2] = {NULL};
  inputs(12, 12, in);
  if (g) CHECK_OK(ry_run(g, dev_interp(), 6, in, 2, ref));
  if (e) CHECK_OK(ry_execute(e, 6, in, 2, got));
  for (int o = 0; o < 2; o++) CHECK(same_bits(ref[o], got[o]));
  for (int i = 0; i < 6; i++) ry_array_release(in[i]);
  for (int o = 0; o < 2; o++) {
    ry_array_release(ref[o]);
    ry_array_release(got[o]);
  }
  free(rep);
  ry_executable_free(e);
  ry_graph_release(g);
}
