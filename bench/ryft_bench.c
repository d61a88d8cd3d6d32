/* ryft's side of the benchmark suite (bench/run.sh runs it beside the peers
 * in bench/peers/ with the same thread count). Prints one line per result:
 *   RESULT <workload> <system> <value> <unit>
 * Workloads: memcpy and the AVX-512 FMA peak (the limits), the fused
 * elementwise chain gelu(x*a+b) over 16M f32, row softmax and layer norm over
 * (4096,1024) and their gradients, sgemm 1024^3 and 512x512x2048, the bf16 GEMM 1024^3 of mixed
 * precision and its error against f64 products, tiny-call overhead, the
 * first call of a program with an empty compile cache (compile in the background, the default,
 * and before the call), cold compile and warm (disk cache hit) compile, and the MLP 784-512-512-10 train
 * step (bench/mlp_step.h: forward, ry_value_and_grad, Adam; batch 128) through
 * ry_jit with donated parameters: steps/s, cold compile and warm (disk cache
 * hit) compile. Timing: best of several runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "mlp_step.h"
#include "ryft/ryft.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(ry_status s, const char *what) {
  if (!s) return;
  fprintf(stderr, "ryft_bench: %s: %s\n", what, ry_status_message(s));
  exit(1);
}

static ry_graph *parse(const char *text) {
  ry_graph *g;
  die(ry_graph_parse(text, -1, "bench", &g), "parse");
  return g;
}

static ry_array *randn(ry_shape s) {
  int64_t n = ry_shape_numel(s);
  float *v = malloc((size_t)n * sizeof(float));
  uint32_t x = 12345;
  for (int64_t i = 0; i < n; i++) {
    x = x * 1664525u + 1013904223u;
    v[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 4.0f;
  }
  ry_array *a;
  die(ry_array_from_host(RY_F32, s, v, &a), "array");
  free(v);
  return a;
}

/* best time of `reps` runs of e on in */
static double time_exec(ry_executable *e, int n_in, ry_array **in, int n_out, int reps) {
  ry_array *out[4];
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    die(ry_execute(e, n_in, in, n_out, out), "execute");
    double t = now() - t0;
    for (int i = 0; i < n_out; i++) ry_array_release(out[i]);
    if (t < best) best = t;
  }
  return best;
}

static void result(const char *w, double v, const char *unit) { printf("RESULT %s ryft %.6g %s\n", w, v, unit); }

/* ---- limits ---- */

/* the widest vector this build's target has: 12 chains of them and their
   two operands fit the registers (16 on AVX2, 32 on AVX-512) */
#if defined(__AVX512F__)
#define PEAK_VL 16
#elif defined(__AVX__)
#define PEAK_VL 8
#else
#define PEAK_VL 4
#endif
typedef float vpeak __attribute__((vector_size(PEAK_VL * 4)));
/* 12 independent FMA chains of PEAK_VL floats, kept in registers */
static double fma_peak_1thread(void) {
  vpeak m, a, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
  for (int j = 0; j < PEAK_VL; j++) m[j] = 0.999999f, a[j] = 1e-7f;
  c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = c10 = c11 = a;
  long iters = 50000000;
  double best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    for (long it = 0; it < iters; it++) {
      c0 = c0 * m + a; c1 = c1 * m + a; c2 = c2 * m + a; c3 = c3 * m + a;
      c4 = c4 * m + a; c5 = c5 * m + a; c6 = c6 * m + a; c7 = c7 * m + a;
      c8 = c8 * m + a; c9 = c9 * m + a; c10 = c10 * m + a; c11 = c11 * m + a;
      __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7),
                       "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
    }
    double t = now() - t0;
    if (t < best) best = t;
  }
  return (double)iters * 12 * PEAK_VL * 2 / best / 1e9;
}

typedef struct {
  char *dst;
  const char *src;
} copy_job;

static void copy_task(void *ctx, int64_t lo, int64_t hi) {
  const copy_job *j = ctx;
  memcpy(j->dst + lo, j->src + lo, (size_t)(hi - lo));
}

/* memcpy of 64 MB split over the same thread pool and thread count as the
 * workloads: the bandwidth limit they are measured against */
static double memcpy_gbs(void) {
  size_t n = (size_t)64 << 20;
  char *a = malloc(n), *b = malloc(n);
  memset(a, 1, n);
  memset(b, 2, n);
  copy_job j = {b, a};
  double best = 1e30;
  for (int r = 0; r < 30; r++) {
    double t0 = now();
    ryc_parallel_for((int64_t)n, 1 << 20, copy_task, &j);
    double t = now() - t0;
    if (t < best) best = t;
  }
  free(a);
  free(b);
  return 2.0 * (double)n / best / 1e9; /* read + write */
}

static const char *k_gelu =
    "func @main(%x: f32[16777216], %a: f32[], %b: f32[]) -> (f32[16777216]) {\n"
    "  %0: f32[16777216] = broadcast_in_dim %a {dims=[]}\n"
    "  %1: f32[16777216] = broadcast_in_dim %b {dims=[]}\n"
    "  %2: f32[16777216] = mul %x, %0\n"
    "  %3: f32[16777216] = add %2, %1\n"
    "  %4: f32[] = constant {value=[0.70710678]}\n"
    "  %5: f32[16777216] = broadcast_in_dim %4 {dims=[]}\n"
    "  %6: f32[16777216] = mul %3, %5\n"
    "  %7: f32[16777216] = erf %6\n"
    "  %8: f32[] = constant {value=[1]}\n"
    "  %9: f32[16777216] = broadcast_in_dim %8 {dims=[]}\n"
    "  %10: f32[16777216] = add %7, %9\n"
    "  %11: f32[16777216] = mul %3, %10\n"
    "  %12: f32[] = constant {value=[0.5]}\n"
    "  %13: f32[16777216] = broadcast_in_dim %12 {dims=[]}\n"
    "  %14: f32[16777216] = mul %11, %13\n"
    "  return %14\n"
    "}\n";

static const char *k_softmax =
    "func @main(%x: f32[4096,1024]) -> (f32[4096,1024]) {\n"
    "  %0: f32[4096] = reduce %x {kind=max, axes=[1]}\n"
    "  %1: f32[4096,1024] = broadcast_in_dim %0 {dims=[0]}\n"
    "  %2: f32[4096,1024] = sub %x, %1\n"
    "  %3: f32[4096,1024] = exp %2\n"
    "  %4: f32[4096] = reduce %3 {kind=sum, axes=[1]}\n"
    "  %5: f32[4096,1024] = broadcast_in_dim %4 {dims=[0]}\n"
    "  %6: f32[4096,1024] = div %3, %5\n"
    "  return %6\n"
    "}\n";

static const char *k_layernorm =
    "func @main(%x: f32[4096,1024]) -> (f32[4096,1024]) {\n"
    "  %0: f32[4096] = reduce %x {kind=sum, axes=[1]}\n"
    "  %1: f32[] = constant {value=[0.0009765625]}\n"
    "  %2: f32[4096] = broadcast_in_dim %1 {dims=[]}\n"
    "  %3: f32[4096] = mul %0, %2\n"
    "  %4: f32[4096,1024] = broadcast_in_dim %3 {dims=[0]}\n"
    "  %5: f32[4096,1024] = sub %x, %4\n"
    "  %6: f32[4096,1024] = mul %5, %5\n"
    "  %7: f32[4096] = reduce %6 {kind=sum, axes=[1]}\n"
    "  %8: f32[4096] = mul %7, %2\n"
    "  %9: f32[] = constant {value=[1e-5]}\n"
    "  %10: f32[4096] = broadcast_in_dim %9 {dims=[]}\n"
    "  %11: f32[4096] = add %8, %10\n"
    "  %12: f32[4096] = rsqrt %11\n"
    "  %13: f32[4096,1024] = broadcast_in_dim %12 {dims=[0]}\n"
    "  %14: f32[4096,1024] = mul %5, %13\n"
    "  return %14\n"
    "}\n";

static void bench_graph(const char *name, ry_graph *g, int n_in, ry_shape *shapes, int n_out, double bytes, double flops) {
  ry_device *d;
  die(ry_device_get("cpu", &d), "device");
  ry_executable *e;
  die(ry_compile(g, d, &e), "compile");
  ry_array *in[4];
  for (int i = 0; i < n_in; i++) in[i] = randn(shapes[i]);
  time_exec(e, n_in, in, n_out, 2);
  double t = time_exec(e, n_in, in, n_out, 30); /* best of many: the machine is shared */
  if (bytes > 0) result(name, bytes / t / 1e9, "GB/s");
  if (flops > 0) result(name, flops / t / 1e9, "GFLOP/s");
  printf("RESULT %s-ms ryft %.6g ms\n", name, t * 1e3);
  for (int i = 0; i < n_in; i++) ry_array_release(in[i]);
  ry_executable_free(e);
}

static void bench_prog(const char *name, const char *text, int n_in, ry_shape *shapes, double bytes, double flops) {
  ry_graph *g = parse(text);
  bench_graph(name, g, n_in, shapes, 1, bytes, flops);
  ry_graph_release(g);
}

/* Gradients of sum(f(x) * w) as jax.grad gives them: f = softmax over the
 * last axis in JAX's form (stop_gradient on the max), with respect to x;
 * f = layer norm with scale and bias (eps 1e-5), with respect to x, scale
 * and bias. */
static int grad_loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ry_value y;
  if (*(const int *)ctx == 0) {
    ry_value m = ry_stop_gradient(b, ry_max_keepdims(b, in[0], RY_AXES(-1), 1));
    ry_value e = ry_exp(b, ry_sub(b, in[0], m));
    y = ry_div(b, e, ry_sum_keepdims(b, e, RY_AXES(-1), 1));
  } else {
    ry_value mu = ry_mean(b, in[0], RY_AXES(-1), 1);
    ry_value c = ry_sub(b, in[0], mu);
    ry_value var = ry_mean(b, ry_mul(b, c, c), RY_AXES(-1), 1);
    y = ry_mul(b, c, ry_rsqrt(b, ry_add(b, var, ry_const_like(b, var, 1e-5))));
    y = ry_add(b, ry_mul(b, y, in[2]), in[3]);
  }
  out[0] = ry_sum(b, ry_mul(b, y, in[1]), RY_AXES(0, 1));
  return 1;
}

static void bench_grad(const char *name, int kind) {
  int n_in = kind == 0 ? 2 : 4;
  ry_shape s[4] = {RY_SHAPE(4096, 1024), RY_SHAPE(4096, 1024), RY_SHAPE(1024), RY_SHAPE(1024)};
  ry_type t[4];
  for (int i = 0; i < 4; i++) t[i] = (ry_type){RY_F32, s[i]};
  ry_graph *f, *g;
  die(ry_trace("loss", grad_loss_fn, &kind, n_in, t, NULL, &f), "trace");
  int argnums[3] = {0, 2, 3};
  ry_grad_opts o = {kind == 0 ? 1 : 3, argnums, 0};
  die(ry_grad(f, &o, &g), "grad");
  /* x and w read, dx written */
  bench_graph(name, g, n_in, s, o.n_argnums, 3.0 * 4 * 4096 * 1024, 0);
  ry_graph_release(f);
  ry_graph_release(g);
}

static void bench_gemm(const char *name, int64_t m, int64_t n, int64_t k) {
  char text[512];
  snprintf(text, sizeof text,
           "func @main(%%a: f32[%lld,%lld], %%b: f32[%lld,%lld]) -> (f32[%lld,%lld]) {\n"
           "  %%0: f32[%lld,%lld] = dot_general %%a, %%b {lhs_batch=[], rhs_batch=[], lhs_contract=[1], rhs_contract=[0]}\n"
           "  return %%0\n}\n",
           (long long)m, (long long)k, (long long)k, (long long)n, (long long)m, (long long)n, (long long)m,
           (long long)n);
  ry_shape s[2] = {RY_SHAPE(m, k), RY_SHAPE(k, n)};
  bench_prog(name, text, 2, s, 0, 2.0 * (double)m * (double)n * (double)k);
}

/* The bf16 GEMM of mixed precision (f32 operands rounded to bf16 as they
 * are packed, f32 sums; AVX512-BF16's vdpbf16ps where the CPU has it),
 * 1024^3, and its error: the largest |C - C64| over the largest |C64|, for
 * C64 the f64 product of the f32 operands (what rounding them costs) and of
 * the bf16-rounded ones (the f32 sums alone). */
static double bf16_value(float x) { /* nearest even (finite x) */
  uint32_t u;
  memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

static void bench_bgemm(void) {
  const int64_t n = 1024;
  char text[640];
  snprintf(text, sizeof text,
           "func @main(%%a: f32[%lld,%lld], %%b: f32[%lld,%lld]) -> (f32[%lld,%lld]) {\n"
           "  %%0: bf16[%lld,%lld] = convert %%a\n"
           "  %%1: bf16[%lld,%lld] = convert %%b\n"
           "  %%2: f32[%lld,%lld] = dot_general %%0, %%1 {lhs_batch=[], rhs_batch=[], lhs_contract=[1], rhs_contract=[0]}\n"
           "  return %%2\n}\n",
           (long long)n, (long long)n, (long long)n, (long long)n, (long long)n, (long long)n, (long long)n,
           (long long)n, (long long)n, (long long)n, (long long)n, (long long)n);
  ry_graph *g = parse(text);
  ry_device *d;
  die(ry_device_get("cpu", &d), "device");
  ry_executable *e;
  die(ry_compile(g, d, &e), "compile");
  ry_array *in[2] = {randn(RY_SHAPE(n, n)), randn(RY_SHAPE(n, n))}, *c = NULL;
  time_exec(e, 2, in, 1, 2);
  double t = time_exec(e, 2, in, 1, 30);
  result("bgemm-1024^3", 2.0 * (double)(n * n * n) / t / 1e9, "GFLOP/s");
  die(ry_execute(e, 2, in, 1, &c), "bgemm");
  const float *a = ry_array_data(in[0]), *b = ry_array_data(in[1]), *cv = ry_array_data(c);
  double *a64 = malloc(sizeof(double) * (size_t)(n * n * 2)), *b64 = malloc(sizeof(double) * (size_t)(n * n * 2));
  for (int64_t i = 0; i < n * n; i++) { /* [0, n*n): the f32 values, [n*n, 2*n*n): rounded to bf16 */
    a64[i] = a[i], b64[i] = b[i];
    a64[n * n + i] = bf16_value(a[i]), b64[n * n + i] = bf16_value(b[i]);
  }
  double err[2] = {0, 0}, big[2] = {0, 0};
  double *row = malloc(sizeof(double) * (size_t)n);
  for (int v = 0; v < 2; v++)
    for (int64_t i = 0; i < n; i += 7) { /* every 7th row of C: 147 rows, 150k elements */
      for (int64_t j = 0; j < n; j++) row[j] = 0;
      for (int64_t p = 0; p < n; p++) {
        double x = a64[v * n * n + i * n + p];
        const double *br = b64 + v * n * n + p * n;
        for (int64_t j = 0; j < n; j++) row[j] += x * br[j];
      }
      for (int64_t j = 0; j < n; j++) {
        double dlt = fabs((double)cv[i * n + j] - row[j]);
        if (dlt > err[v]) err[v] = dlt;
        if (fabs(row[j]) > big[v]) big[v] = fabs(row[j]);
      }
    }
  printf("RESULT bgemm-1024^3-err-vs-f64 ryft %.3g relative\n", err[0] / big[0]);
  printf("RESULT bgemm-1024^3-err-vs-bf16-f64 ryft %.3g relative\n", err[1] / big[1]);
  printf("# bgemm: %s\n", ryc_bgemm_impl());
  free(row);
  free(a64);
  free(b64);
  ry_array_release(c);
  for (int i = 0; i < 2; i++) ry_array_release(in[i]);
  ry_executable_free(e);
  ry_graph_release(g);
}

static int tiny_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_add(b, in[0], in[1]);
  return 1;
}

/* MLP 784-512-512-10 train step, batch 128, parameters and Adam moments
 * donated so they are updated in place. Cold: trace + grad + compile with an
 * empty disk cache; warm: a new jit object after the memory cache is dropped
 * (the disk cache hits). */
/* the best of 5 rounds of 20 donated steps (after one round of warm-up), s/step */
static double mlp_timed(ry_jit *j, ry_array **st) {
  bool donate[MLP_N_IN] = {0};
  for (int i = 0; i < 18; i++) donate[i] = true;
  double best = 1e30;
  int steps = 20;
  for (int r = 0; r < 6; r++) {
    double t1 = now();
    for (int k = 0; k < steps; k++) {
      ry_array *out[MLP_N_OUT];
      die(ry_jit_call_donated(j, MLP_N_IN, st, donate, MLP_N_OUT, out), "mlp step");
      ry_array_release(out[0]);
      for (int i = 0; i < 18; i++) st[i] = out[1 + i];
    }
    double t = (now() - t1) / steps;
    if (r > 0 && t < best) best = t;
  }
  return best;
}

static void bench_mlp(void) {
  mlp_cfg cfg = {128, {784, 512, 512, 10}, 1e-3, 0.9, 0.999, 1e-8, 0};
  ry_device *d;
  die(ry_device_get("cpu", &d), "device");
  char dir[] = "/tmp/ryft-bench-mlp-XXXXXX";
  if (!mkdtemp(dir)) return;
  const char *old = getenv("RYFT_CACHE_DIR");
  char *saved = old ? strdup(old) : NULL;
  setenv("RYFT_CACHE_DIR", dir, 1);
  ry_array *st[MLP_N_IN];
  die(mlp_inputs(&cfg, st), "inputs");
  ry_type types[MLP_N_IN];
  for (int i = 0; i < MLP_N_IN; i++) types[i] = ry_array_type(st[i]);
  ry_executable *e;
  /* the first step of a fresh jit object with an empty cache: trace + grad +
   * compile (in the background) + the step */
  {
    char dir0[] = "/tmp/ryft-bench-mlp-XXXXXX";
    if (!mkdtemp(dir0)) return;
    setenv("RYFT_CACHE_DIR", dir0, 1);
    ry_jit *j0;
    ry_array *out[MLP_N_OUT];
    ryc_cache_trim();
    double t0 = now();
    die(ry_jit_new("mlp_step", mlp_step_fn, &cfg, d, &j0), "jit");
    die(ry_jit_call(j0, MLP_N_IN, st, MLP_N_OUT, out), "mlp step");
    result("first-call-cold-mlp", (now() - t0) * 1e3, "ms");
    for (int i = 0; i < MLP_N_OUT; i++) ry_array_release(out[i]);
    ry_jit_free(j0); /* waits for the compile */
    setenv("RYFT_CACHE_DIR", dir, 1);
  }
  ry_jit *cold;
  ryc_set_background_compiles(0); /* the compile itself, as before cold starts */
  die(ry_jit_new("mlp_step", mlp_step_fn, &cfg, d, &cold), "jit");
  ryc_cache_trim();
  double t0 = now();
  die(ry_jit_lower(cold, MLP_N_IN, types, &e), "compile");
  result("compile-cold-mlp", (now() - t0) * 1e3, "ms");
  ry_jit_free(cold);
  ryc_cache_trim();
  ry_jit *j;
  die(ry_jit_new("mlp_step", mlp_step_fn, &cfg, d, &j), "jit");
  t0 = now();
  die(ry_jit_lower(j, MLP_N_IN, types, &e), "compile");
  result("compile-warm-mlp", (now() - t0) * 1e3, "ms");
  ryc_set_background_compiles(-1);
  double best = mlp_timed(j, st);
  ryc_run_stats ms;
  ryc_last_run_stats(&ms);
  printf("# mlp step memory: %ld outputs written in place, %ld buffers reused, %zu bytes allocated, peak %zu bytes\n",
         ms.in_place, ms.reused, ms.fresh_bytes, ms.peak_bytes);
  result("mlp-train-step", 1.0 / best, "steps/s");
  printf("RESULT mlp-train-step-ms ryft %.6g ms\n", best * 1e3);
  for (int i = 0; i < MLP_N_IN; i++) ry_array_release(st[i]);
  ry_jit_free(j);
  /* mixed precision: the same step with bf16 products (f32 master weights) */
  mlp_cfg cb = cfg;
  cb.bf16 = 1;
  die(mlp_inputs(&cb, st), "inputs");
  ryc_set_background_compiles(0); /* time the compiled step, not a cold one */
  die(ry_jit_new("mlp_step_bf16", mlp_step_fn, &cb, d, &j), "jit");
  double bbest = mlp_timed(j, st);
  ryc_set_background_compiles(-1);
  result("mlp-train-step-bf16", 1.0 / bbest, "steps/s");
  printf("RESULT mlp-train-step-bf16-vs-f32 ryft %.3f x\n", best / bbest);
  for (int i = 0; i < MLP_N_IN; i++) ry_array_release(st[i]);
  ry_jit_free(j);
  if (saved) setenv("RYFT_CACHE_DIR", saved, 1);
  else unsetenv("RYFT_CACHE_DIR");
  free(saved);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  printf("# ryft cpu backend, %d threads, gemm: %s\n", ryc_num_threads(), ryc_gemm_impl());
  if (!only || strstr(only, "limits")) {
    result("memcpy", memcpy_gbs(), "GB/s");
    result("fma-peak-1thread", fma_peak_1thread(), "GFLOP/s");
  }
  if (!only || strstr(only, "gelu")) {
    ry_shape s[3] = {RY_SHAPE(16777216), RY_SCALAR, RY_SCALAR};
    bench_prog("gelu-16M", k_gelu, 3, s, 2.0 * 4 * 16777216, 0);
  }
  if (!only || strstr(only, "softmax")) {
    ry_shape s[1] = {RY_SHAPE(4096, 1024)};
    bench_prog("softmax-4096x1024", k_softmax, 1, s, 2.0 * 4 * 4096 * 1024, 0);
  }
  if (!only || strstr(only, "layernorm")) {
    ry_shape s[1] = {RY_SHAPE(4096, 1024)};
    bench_prog("layernorm-4096x1024", k_layernorm, 1, s, 2.0 * 4 * 4096 * 1024, 0);
  }
  if (!only || strstr(only, "grads")) {
    bench_grad("softmax-grad-4096x1024", 0);
    bench_grad("layernorm-grad-4096x1024", 1);
  }
  if (!only || strstr(only, "sgemm")) {
    bench_gemm("sgemm-1024^3", 1024, 1024, 1024);
    bench_gemm("sgemm-512x512x2048", 512, 512, 2048);
  }
  if (!only || strstr(only, "bgemm")) bench_bgemm();
  if (!only || strstr(only, "tiny")) {
    /* a jitted x + y over f32[4]: signature lookup, argument checks, run */
    ry_device *d;
    die(ry_device_get("cpu", &d), "device");
    ry_jit *j;
    die(ry_jit_new("tiny", tiny_fn, NULL, d, &j), "jit");
    ry_array *in[2] = {randn(RY_SHAPE(4)), randn(RY_SHAPE(4))}, *out;
    die(ry_jit_call(j, 2, in, 1, &out), "jit call");
    ry_array_release(out);
    int n = 200000;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
      double t0 = now();
      for (int i = 0; i < n; i++) {
        die(ry_jit_call(j, 2, in, 1, &out), "jit call");
        ry_array_release(out);
      }
      double t = (now() - t0) / n;
      if (t < best) best = t;
    }
    result("tiny-call", best * 1e6, "us");
    ry_array_release(in[0]);
    ry_array_release(in[1]);
    ry_jit_free(j);
  }
  if (!only || strstr(only, "mlp")) bench_mlp();
  if (!only || strstr(only, "compile")) {
    /* first-call-cold: ry_compile + the first run with an empty cache
     * directory, as a program's first call pays it (the default: the module
     * compiles in the background); first-call-cold-sync: the same with
     * RYFT_COMPILE_SYNC (cc before the first run); compile-cold: that
     * compile alone; compile-warm: the same program from disk. Best of 5,
     * each with a new cache directory and the run's buffers already in
     * ryft's buffer cache (a run on the interpreter first): first touches of
     * fresh memory cost either way, and much more on some virtual machines
     * (0.4 s for the first 2 MB pages of a process here). */
    ry_device *d, *interp;
    die(ry_device_get("cpu", &d), "device");
    die(ry_device_get("interp", &interp), "device");
    const char *progs[] = {k_softmax, k_layernorm, k_gelu};
    const char *names[] = {"softmax", "layernorm", "gelu"};
    for (int i = 0; i < 3; i++) {
      ry_graph *g = parse(progs[i]);
      ry_array *in[3], *out;
      int n_in = 1;
      if (i == 2) {
        in[0] = randn(RY_SHAPE(16777216));
        in[1] = randn(RY_SCALAR);
        in[2] = randn(RY_SCALAR);
        n_in = 3;
      } else {
        in[0] = randn(RY_SHAPE(4096, 1024));
      }
      double first[2] = {1e30, 1e30}, compile = 1e30, warm = 1e30;
      for (int rep = 0; rep < 5; rep++)
        for (int sync = 0; sync < 2; sync++) {
          char dir[] = "/tmp/ryft-bench-cache-XXXXXX";
          if (!mkdtemp(dir)) return 1;
          setenv("RYFT_CACHE_DIR", dir, 1);
          ryc_set_background_compiles(!sync);
          die(ry_run(g, interp, n_in, in, 1, &out), "interp");
          ry_array_release(out);
          ry_executable *e;
          ryc_cache_trim();
          double t0 = now();
          die(ry_compile(g, d, &e), "compile");
          double t1 = now();
          die(ry_execute(e, n_in, in, 1, &out), "execute");
          double t2 = now();
          ry_array_release(out);
          ry_executable_free(e); /* background: waits for the compile */
          if (t2 - t0 < first[sync]) first[sync] = t2 - t0;
          if (!sync) continue;
          if (t1 - t0 < compile) compile = t1 - t0;
          ryc_cache_trim();
          t0 = now();
          die(ry_compile(g, d, &e), "compile");
          if (now() - t0 < warm) warm = now() - t0;
          ry_executable_free(e);
        }
      ryc_set_background_compiles(-1);
      char w[64];
      snprintf(w, sizeof w, "first-call-cold-%s", names[i]);
      result(w, first[0] * 1e3, "ms");
      snprintf(w, sizeof w, "first-call-cold-sync-%s", names[i]);
      result(w, first[1] * 1e3, "ms");
      snprintf(w, sizeof w, "compile-cold-%s", names[i]);
      result(w, compile * 1e3, "ms");
      snprintf(w, sizeof w, "compile-warm-%s", names[i]);
      result(w, warm * 1e3, "ms");
      for (int k = 0; k < n_in; k++) ry_array_release(in[k]);
      ry_graph_release(g);
    }
  }
  return 0;
}
