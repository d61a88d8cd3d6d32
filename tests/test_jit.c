/* Tests of ry_jit (src/runtime/jit.c), donated inputs (ry_execute_donated,
 * in-place kernels of the cpu backend) and the cpu backend's memory planning:
 * trace once per signature, a bounded cache, concurrent callers, errors;
 * results identical with and without donation, a shared donated input never
 * written; bounded peak bytes of a long chain; the MLP train step of the
 * benchmark on cpu against the interpreter. */
#include <pthread.h>
#include <stdlib.h>

#include "../bench/mlp_step.h"
#include "backend/cpu/cpu.h"
#include "testlib.h"

static ry_device *dev(const char *name) {
  ry_device *d = NULL;
  CHECK_OK(ry_device_get(name, &d));
  return d;
}

static ry_array *ramp(ry_dtype t, ry_shape s, double scale) {
  int64_t n = ry_shape_numel(s);
  double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
  for (int64_t i = 0; i < n; i++) v[i] = scale * (double)((i * 37) % 101 - 50) / 50.0;
  ry_array *a = NULL, *c = NULL;
  CHECK_OK(ry_array_from_host(RY_F64, s, v, &a));
  free(v);
  if (t == RY_F64) return a;
  /* convert through a tiny program */
  ry_builder *b = ry_builder_new("cvt");
  ry_value x = ry_input(b, "x", (ry_type){RY_F64, s});
  ry_value y = ry_convert(b, x, t);
  ry_graph *g = NULL;
  CHECK_OK(ry_builder_finish(b, 1, &y, &g));
  CHECK_OK(ry_run(g, dev("interp"), 1, &a, 1, &c));
  ry_graph_release(g);
  ry_array_release(a);
  return c;
}

static bool same_bytes(const ry_array *a, const ry_array *b) {
  return a && b && ry_type_equal(ry_array_type(a), ry_array_type(b)) &&
         memcmp(ry_array_data(a), ry_array_data(b), ry_array_nbytes(a)) == 0;
}

/* ---- ry_jit ---- */

typedef struct {
  int traces;
} counter;

/* f(x, y) = x * 2 + y, counting its traces */
static int axpy_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ((counter *)ctx)->traces++;
  out[0] = ry_add(b, ry_mul(b, in[0], ry_scalar(b, ry_value_dtype(b, in[0]), 2)), in[1]);
  return 1;
}

TEST(jit_traces_once_per_signature) {
  counter c = {0};
  ry_jit *j = NULL;
  CHECK_OK(ry_jit_new("axpy", axpy_fn, &c, dev("cpu"), &j));
  CHECK_EQ_INT(ry_jit_cache_size(j), 0);
  ry_array *x4 = ramp(RY_F32, RY_SHAPE(4), 1), *y4 = ramp(RY_F32, RY_SHAPE(4), 3);
  ry_array *x5 = ramp(RY_F32, RY_SHAPE(5), 1), *y5 = ramp(RY_F32, RY_SHAPE(5), 3);
  ry_array *xd = ramp(RY_F64, RY_SHAPE(4), 1), *yd = ramp(RY_F64, RY_SHAPE(4), 3);
  for (int rep = 0; rep < 3; rep++) {
    ry_array *in[2] = {x4, y4}, *out = NULL;
    CHECK_OK(ry_jit_call(j, 2, in, 1, &out));
    for (int i = 0; out && i < 4; i++)
      CHECK_NEAR(ry_array_get_f64(out, i), 2 * ry_array_get_f64(x4, i) + ry_array_get_f64(y4, i), 1e-6);
    ry_array_release(out);
  }
  CHECK_EQ_INT(c.traces, 1);
  CHECK_EQ_INT(ry_jit_trace_count(j), 1);
  ry_array *in5[2] = {x5, y5}, *ind[2] = {xd, yd}, *in4[2] = {x4, y4}, *out = NULL;
  CHECK_OK(ry_jit_call(j, 2, in5, 1, &out)); /* new shape */
  CHECK_EQ_INT(ry_array_shape(out).dims[0], 5);
  ry_array_release(out);
  CHECK_OK(ry_jit_call(j, 2, ind, 1, &out)); /* new dtype */
  CHECK_EQ_INT(ry_array_dtype(out), RY_F64);
  ry_array_release(out);
  CHECK_OK(ry_jit_call(j, 2, in4, 1, &out)); /* cached */
  ry_array_release(out);
  CHECK_EQ_INT(c.traces, 3);
  CHECK_EQ_INT(ry_jit_cache_size(j), 3);
  /* ahead of time: the cached executable for a signature */
  ry_type t4[2] = {{RY_F32, RY_SHAPE(4)}, {RY_F32, RY_SHAPE(4)}};
  ry_executable *e = NULL;
  CHECK_OK(ry_jit_lower(j, 2, t4, &e));
  CHECK(e != NULL);
  CHECK_EQ_INT(c.traces, 3);
  CHECK_OK(ry_execute(e, 2, in4, 1, &out));
  ry_array_release(out);
  ry_array *all[6] = {x4, y4, x5, y5, xd, yd};
  for (int i = 0; i < 6; i++) ry_array_release(all[i]);
  ry_jit_free(j);
}

TEST(jit_cache_is_bounded_lru) {
  counter c = {0};
  ry_jit *j = NULL;
  CHECK_OK(ry_jit_new("axpy", axpy_fn, &c, dev("interp"), &j));
  int n = RY_JIT_CACHE_SIZE + 5;
  for (int k = 1; k <= n; k++) {
    ry_array *x = ramp(RY_F32, RY_SHAPE(k), 1), *in[2] = {x, x}, *out = NULL;
    CHECK_OK(ry_jit_call(j, 2, in, 1, &out));
    ry_array_release(out);
    /* keep shape 1 recently used: it must survive */
    ry_array *x1 = ramp(RY_F32, RY_SHAPE(1), 1), *in1[2] = {x1, x1};
    CHECK_OK(ry_jit_call(j, 2, in1, 1, &out));
    ry_array_release(out);
    ry_array_release(x1);
    ry_array_release(x);
  }
  CHECK_EQ_INT(ry_jit_cache_size(j), RY_JIT_CACHE_SIZE);
  CHECK_EQ_INT(c.traces, n);
  ry_array *x1 = ramp(RY_F32, RY_SHAPE(1), 1), *in1[2] = {x1, x1}, *out = NULL;
  CHECK_OK(ry_jit_call(j, 2, in1, 1, &out)); /* still cached */
  ry_array_release(out);
  CHECK_EQ_INT(c.traces, n);
  ry_array *x2 = ramp(RY_F32, RY_SHAPE(2), 1), *in2[2] = {x2, x2};
  CHECK_OK(ry_jit_call(j, 2, in2, 1, &out)); /* evicted long ago: traced again */
  ry_array_release(out);
  CHECK_EQ_INT(c.traces, n + 1);
  CHECK_EQ_INT(ry_jit_cache_size(j), RY_JIT_CACHE_SIZE);
  ry_array_release(x1);
  ry_array_release(x2);
  ry_jit_free(j);
}

typedef struct {
  ry_jit *j;
  int id, fails;
} worker;

static void *jit_worker(void *arg) {
  worker *w = arg;
  for (int it = 0; it < 50; it++) {
    int64_t len = (it + w->id) % 2 ? 6 : 3;
    ry_array *x = NULL, *out = NULL;
    if (ry_array_full(RY_F32, RY_SHAPE(len), (double)w->id, &x)) {
      w->fails++;
      continue;
    }
    ry_array *in[2] = {x, x};
    ry_status s = ry_jit_call(w->j, 2, in, 1, &out);
    if (s || ry_array_numel(out) != len || ry_array_get_f64(out, len - 1) != 3.0 * w->id) w->fails++;
    ry_status_free(s);
    ry_array_release(out);
    ry_array_release(x);
  }
  return NULL;
}

TEST(jit_concurrent_callers_compile_each_signature_once) {
  counter c = {0}; /* written while tracing: once per signature, never on two threads at once (the TSan job checks) */
  ry_jit *j = NULL;
  CHECK_OK(ry_jit_new("axpy", axpy_fn, &c, dev("cpu"), &j));
  pthread_t th[4];
  worker w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){j, i + 1, 0};
    pthread_create(&th[i], NULL, jit_worker, &w[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(w[i].fails, 0);
  }
  CHECK_EQ_INT(ry_jit_trace_count(j), 2);
  CHECK_EQ_INT(ry_jit_cache_size(j), 2);
  ry_jit_free(j);
}

static int failing_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_add(b, in[0], in[1]); /* shapes f32[2] and f32[3]: an error */
  return 1;
}

TEST(jit_errors) {
  counter c = {0};
  ry_jit *j = NULL;
  CHECK_ERR(ry_jit_new("x", NULL, NULL, dev("cpu"), &j), RY_ERR_INVALID_ARGUMENT, "fn is NULL");
  CHECK_ERR(ry_jit_new("x", axpy_fn, &c, NULL, &j), RY_ERR_INVALID_ARGUMENT, "device");
  CHECK(j == NULL);
  CHECK_OK(ry_jit_new("bad", failing_fn, NULL, dev("cpu"), &j));
  ry_array *a = ramp(RY_F32, RY_SHAPE(2), 1), *b = ramp(RY_F32, RY_SHAPE(3), 1), *out = NULL;
  ry_array *in[2] = {a, b};
  CHECK_ERR(ry_jit_call(j, 2, in, 1, &out), RY_ERR_SHAPE, "ry_jit_call 'bad'", "broadcast");
  CHECK_EQ_INT(ry_jit_cache_size(j), 0); /* a failed signature is not cached */
  CHECK_ERR(ry_jit_call(j, 2, in, 1, &out), RY_ERR_SHAPE, "broadcast");
  CHECK_EQ_INT(ry_jit_trace_count(j), 2);
  ry_jit_free(j);
  CHECK_OK(ry_jit_new("axpy", axpy_fn, &c, dev("cpu"), &j));
  ry_array *in2[2] = {a, a}, *outs[2] = {NULL, NULL};
  CHECK_ERR(ry_jit_call(j, 2, in2, 2, outs), RY_ERR_INVALID_ARGUMENT, "room for 2 outputs");
  CHECK(outs[0] == NULL && outs[1] == NULL);
  ry_array *in1[2] = {a, NULL};
  CHECK_ERR(ry_jit_call(j, 2, in1, 1, &out), RY_ERR_INVALID_ARGUMENT, "input 1 is NULL");
  /* a donated input is consumed even when the call fails */
  ry_array *d = ry_array_retain(a), *ind[2] = {d, NULL};
  CHECK_ERR(ry_jit_call_donated(j, 2, ind, (const bool[]){true, false}, 1, &out), RY_ERR_INVALID_ARGUMENT,
            "input 1 is NULL");
  CHECK(ind[0] == NULL);
  CHECK_ERR(ry_jit_call(NULL, 2, in2, 1, &out), RY_ERR_INVALID_ARGUMENT, "jit is NULL");
  ry_jit_free(j);
  ry_jit_free(NULL);
  ry_array_release(a);
  ry_array_release(b);
}

/* ---- donated inputs ---- */

/* (p, m, g) -> (p - 0.1 * (0.9 m + g), 0.9 m + g): an optimizer-shaped update */
static int update_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value m2 = ry_add(b, ry_mul(b, ry_scalar(b, RY_F32, 0.9), in[1]), in[2]);
  out[0] = ry_sub(b, in[0], ry_mul(b, ry_scalar(b, RY_F32, 0.1), m2));
  out[1] = m2;
  return 2;
}

static ry_executable *compile_fn(ry_fn fn, int n_in, const ry_type *types, const char *device) {
  ry_graph *g = NULL;
  ry_executable *e = NULL;
  CHECK_OK(ry_trace("f", fn, NULL, n_in, types, NULL, &g));
  CHECK_OK(ry_compile(g, dev(device), &e));
  ry_graph_release(g);
  return e;
}

static void check_donation(const char *device) {
  ry_shape s = RY_SHAPE(64, 48);
  ry_type t[3] = {{RY_F32, s}, {RY_F32, s}, {RY_F32, s}};
  ry_executable *e = compile_fn(update_fn, 3, t, device);
  ry_array *p = ramp(RY_F32, s, 1), *m = ramp(RY_F32, s, 0.5), *g = ramp(RY_F32, s, 2);
  ry_array *in[3] = {p, m, g}, *ref[2] = {NULL, NULL};
  CHECK_OK(ry_execute(e, 3, in, 2, ref));
  /* donate copies with refcount 1 (the caller keeps nothing) */
  ry_array *pd = NULL, *md = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, s, ry_array_data(p), &pd));
  CHECK_OK(ry_array_from_host(RY_F32, s, ry_array_data(m), &md));
  const void *pd_data = ry_array_data(pd), *md_data = ry_array_data(md);
  ry_array *din[3] = {pd, md, g}, *out[2] = {NULL, NULL};
  CHECK_OK(ry_execute_donated(e, 3, din, (const bool[]){true, true, false}, 2, out));
  CHECK(din[0] == NULL && din[1] == NULL && din[2] == g);
  CHECK(same_bytes(out[0], ref[0]));
  CHECK(same_bytes(out[1], ref[1]));
  if (strcmp(device, "cpu") == 0) {
    /* the outputs were written over the donated buffers */
    ryc_run_stats st;
    ryc_last_run_stats(&st);
    CHECK_EQ_INT(st.in_place, 2);
    CHECK(ry_array_data(out[0]) == pd_data || ry_array_data(out[0]) == md_data);
    CHECK(ry_array_data(out[1]) == pd_data || ry_array_data(out[1]) == md_data);
  }
  for (int i = 0; i < 2; i++) ry_array_release(out[i]);
  /* donated but also held by the caller (refcount 2): read, never written */
  ry_array *keep_p = ry_array_retain(p), *keep_m = ry_array_retain(m);
  ry_array *pbefore = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, s, ry_array_data(p), &pbefore));
  ry_array *sin[3] = {p, m, g};
  CHECK_OK(ry_execute_donated(e, 3, sin, (const bool[]){true, true, false}, 2, out));
  CHECK(sin[0] == NULL && sin[1] == NULL);
  CHECK(same_bytes(keep_p, pbefore));
  CHECK(same_bytes(out[0], ref[0]));
  CHECK(same_bytes(out[1], ref[1]));
  CHECK(ry_array_data(out[0]) != ry_array_data(keep_p) && ry_array_data(out[1]) != ry_array_data(keep_p));
  CHECK(ry_array_data(out[0]) != ry_array_data(keep_m) && ry_array_data(out[1]) != ry_array_data(keep_m));
  for (int i = 0; i < 2; i++) ry_array_release(out[i]);
  /* the same array passed twice, its one reference donated: the other use
   * still reads it during the run */
  ry_array *twice = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, s, ry_array_data(keep_p), &twice));
  ry_array *tin[3] = {twice, twice, g}, *tref[2] = {NULL, NULL};
  CHECK_OK(ry_execute(e, 3, tin, 2, tref));
  CHECK_OK(ry_execute_donated(e, 3, tin, (const bool[]){true, false, false}, 2, out));
  CHECK(tin[0] == NULL && tin[1] == twice);
  CHECK(same_bytes(out[0], tref[0]));
  CHECK(same_bytes(out[1], tref[1]));
  /* the caller held one reference: it was donated, so nothing is left to release */
  for (int i = 0; i < 2; i++) ry_array_release(out[i]), ry_array_release(tref[i]), ry_array_release(ref[i]);
  /* a wrong type: an error, and the donated reference is still consumed */
  ry_array *bad = ramp(RY_F32, RY_SHAPE(3), 1), *bin[3] = {bad, keep_m, g};
  CHECK_ERR(ry_execute_donated(e, 3, bin, (const bool[]){true, false, false}, 2, out), RY_ERR_SHAPE, "input 0");
  CHECK(bin[0] == NULL && out[0] == NULL);
  ry_array_release(keep_p);
  ry_array_release(keep_m);
  ry_array_release(pbefore);
  ry_array_release(g);
  ry_executable_free(e);
}

TEST(cpu_donated_inputs_in_place) { check_donation("cpu"); }
TEST(jit_donated_inputs_interp_ignores_donation) { check_donation("interp"); }

/* a cache updated at a position (a KV cache step): the donated cache's
 * buffer is written in place; a cache the caller still holds, or a borrowed
 * one, is copied and left as it was */
static int cache_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value zero = ry_scalar(b, RY_I32, 0.0), st[3] = {zero, in[2], zero};
  out[0] = ry_dynamic_update_slice(b, in[0], in[1], st);
  return 1;
}

TEST(cpu_cache_update_in_place) {
  ry_shape cs = RY_SHAPE(3, 40, 16);
  ry_type t[3] = {{RY_F32, cs}, {RY_F32, RY_SHAPE(3, 2, 16)}, {RY_I32, RY_SCALAR}};
  ry_executable *e = compile_fn(cache_fn, 3, t, "cpu");
  ry_array *c = ramp(RY_F32, cs, 1), *u = ramp(RY_F32, RY_SHAPE(3, 2, 16), -7), *pos = NULL, *ref = NULL;
  int32_t p = 37; /* clamped to 38 - 0: the update's end is the cache's */
  CHECK_OK(ry_array_from_host(RY_I32, RY_SCALAR, &p, &pos));
  ry_array *in[3] = {c, u, pos};
  CHECK_OK(ry_execute(e, 3, in, 1, &ref));
  ry_device *interp = dev("interp");
  ry_array *iref = NULL;
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("f", cache_fn, NULL, 3, t, NULL, &g));
  CHECK_OK(ry_run(g, interp, 3, in, 1, &iref));
  CHECK(same_bytes(ref, iref));
  /* donated with refcount 1: written in place */
  ry_array *cd = NULL, *out = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, cs, ry_array_data(c), &cd));
  const void *cd_data = ry_array_data(cd);
  ry_array *din[3] = {cd, u, pos};
  CHECK_OK(ry_execute_donated(e, 3, din, (const bool[]){true, false, false}, 1, &out));
  ryc_run_stats st;
  ryc_last_run_stats(&st);
  CHECK_EQ_INT(st.in_place, 1);
  CHECK(out && ry_array_data(out) == cd_data);
  CHECK(same_bytes(out, ref));
  ry_array_release(out);
  /* borrowed and donated: never written */
  float *mem = malloc(ry_array_nbytes(c));
  memcpy(mem, ry_array_data(c), ry_array_nbytes(c));
  ry_array *bw = NULL;
  CHECK_OK(ry_array_borrow(RY_F32, cs, mem, NULL, NULL, &bw));
  ry_array *bin[3] = {bw, u, pos};
  CHECK_OK(ry_execute_donated(e, 3, bin, (const bool[]){true, false, false}, 1, &out));
  CHECK(out && ry_array_data(out) != (const void *)mem);
  CHECK(same_bytes(out, ref));
  CHECK(!memcmp(mem, ry_array_data(c), ry_array_nbytes(c)));
  ry_array_release(out);
  free(mem);
  ry_array_release(c);
  ry_array_release(u);
  ry_array_release(pos);
  ry_array_release(ref);
  ry_array_release(iref);
  ry_graph_release(g);
  ry_executable_free(e);
}

/* ---- memory planning ---- */

/* 24 rounds of x = tanh(x @ w): every matmul result is materialized */
static int chain_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value x = in[0];
  for (int i = 0; i < 24; i++) x = ry_tanh(b, ry_matmul(b, x, in[1]));
  out[0] = x;
  return 1;
}

TEST(cpu_peak_bytes_of_a_chain_stay_bounded) {
  ry_type t[2] = {{RY_F32, RY_SHAPE(64, 64)}, {RY_F32, RY_SHAPE(64, 64)}};
  ry_executable *e = compile_fn(chain_fn, 2, t, "cpu");
  ry_array *in[2] = {ramp(RY_F32, RY_SHAPE(64, 64), 1), ramp(RY_F32, RY_SHAPE(64, 64), 0.05)}, *out = NULL, *ref = NULL;
  CHECK_OK(ry_execute(e, 2, in, 1, &out));
  ryc_run_stats st;
  ryc_last_run_stats(&st);
  size_t one = 64 * 64 * sizeof(float);
  /* 48 values of 16 KB are computed; at most a few buffers live at once */
  CHECK_MSG(st.peak_bytes <= 3 * one, "peak %zu bytes, want <= %zu", st.peak_bytes, 3 * one);
  CHECK_MSG(st.fresh_bytes <= 3 * one, "allocated %zu bytes, want <= %zu", st.fresh_bytes, 3 * one);
  CHECK(st.reused + st.in_place >= 40);
  ry_executable *ei = compile_fn(chain_fn, 2, t, "interp");
  CHECK_OK(ry_execute(ei, 2, in, 1, &ref));
  for (int64_t i = 0; i < 64 * 64; i += 97) CHECK_NEAR(ry_array_get_f64(out, i), ry_array_get_f64(ref, i), 1e-4);
  ry_array_release(out);
  ry_array_release(ref);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_executable_free(e);
  ry_executable_free(ei);
}

/* ---- the benchmark's MLP train step ---- */

/* tol: absolute, on the loss and every output */
static void mlp_cpu_vs_interp(int bf16, double tol) {
  mlp_cfg cfg = {16, {20, 32, 24, 10}, 1e-3, 0.9, 0.999, 1e-8, bf16};
  ry_jit *jc = NULL, *ji = NULL;
  CHECK_OK(ry_jit_new("mlp_step", mlp_step_fn, &cfg, dev("cpu"), &jc));
  CHECK_OK(ry_jit_new("mlp_step", mlp_step_fn, &cfg, dev("interp"), &ji));
  ry_array *st_c[MLP_N_IN], *st_i[MLP_N_IN];
  CHECK_OK(mlp_inputs(&cfg, st_c));
  for (int i = 0; i < MLP_N_IN; i++) st_i[i] = ry_array_retain(st_c[i]);
  bool donate[MLP_N_IN] = {0};
  for (int i = 0; i < 18; i++) donate[i] = true;
  double first = 0, last = 0;
  for (int step = 1; step <= 5; step++) {
    ry_array *oc[MLP_N_OUT], *oi[MLP_N_OUT];
    ry_array *t = NULL;
    CHECK_OK(ry_array_full(RY_F32, RY_SCALAR, step, &t));
    ry_array_release(st_c[18]);
    ry_array_release(st_i[18]);
    st_c[18] = t;
    st_i[18] = ry_array_retain(t);
    CHECK_OK(ry_jit_call_donated(jc, MLP_N_IN, st_c, donate, MLP_N_OUT, oc));
    CHECK_OK(ry_jit_call(ji, MLP_N_IN, st_i, MLP_N_OUT, oi));
    CHECK_NEAR(ry_array_get_f64(oc[0], 0), ry_array_get_f64(oi[0], 0), tol);
    for (int k = 1; k < MLP_N_OUT; k++)
      for (int64_t q = 0; q < ry_array_numel(oc[k]); q += 13)
        CHECK_NEAR(ry_array_get_f64(oc[k], q), ry_array_get_f64(oi[k], q), tol);
    if (step == 1) first = ry_array_get_f64(oc[0], 0);
    last = ry_array_get_f64(oc[0], 0);
    for (int k = 0; k < 18; k++) {
      ry_array_release(st_i[k]);
      st_c[k] = oc[1 + k];
      st_i[k] = oi[1 + k];
    }
    ry_array_release(oc[0]);
    ry_array_release(oi[0]);
  }
  CHECK_MSG(last < first, "loss %g -> %g does not fall", first, last);
  CHECK_EQ_INT(ry_jit_trace_count(jc), 1);
  for (int i = 0; i < MLP_N_IN; i++) ry_array_release(st_c[i]), ry_array_release(st_i[i]);
  ry_jit_free(jc);
  ry_jit_free(ji);
}

TEST(jit_mlp_train_step_cpu_matches_interp) { mlp_cpu_vs_interp(0, 1e-4); }
/* mixed precision: the cpu device's bf16 GEMMs (converts folded into their
 * packing) against the interpreter's bf16 dot_generals; a bf16 result may
 * round one step (2^-8) apart where the f32 sums differ in the last bit */
TEST(jit_mlp_train_step_bf16_cpu_matches_interp) { mlp_cpu_vs_interp(1, 2e-3); }
