/* The MLP train step of bench/mlp_step.h (784-512-512-10, batch 128,
 * forward, ry_value_and_grad, Adam) through PJRT/XLA:CPU next to ryft's own
 * cpu backend, and the time from a ryft graph to a loaded XLA executable.
 *
 *   pjrt_bench [plugin.so]       (default: $RYFT_PJRT_PLUGIN)
 *
 * Prints "RESULT <workload> <system> <value> <unit>" lines like ryft_bench.
 * The train step runs three ways on XLA: "pjrt-copy" copies its 21 inputs to
 * the device and its 19 outputs back every step (host arrays in and out,
 * ry_pjrt_executable_set_host_outputs); "pjrt-resident" keeps the state on
 * the device (ry_pjrt_put once, outputs left on the device, parameters and
 * moments donated so XLA updates them in place), as jax.jit does. "cpu" is
 * ryft's own backend on the same graph, also donating. The data-parallel
 * variant splits the batch over 2 CPU devices with ry_shard (SPMD). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlp_step.h"
#include "ryft/pjrt.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(ry_status s, const char *what) {
  if (!s) return;
  fprintf(stderr, "pjrt_bench: %s: %s\n", what, ry_status_message(s));
  exit(1);
}

static void result(const char *w, const char *sys, double v, const char *unit) {
  printf("RESULT %s %s %.4g %s\n", w, sys, v, unit);
  fflush(stdout);
}

/* the step with x and y split over n devices along the batch */
typedef struct {
  mlp_cfg *cfg;
  int n;
} shard_ctx;
static int sharded_step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  shard_ctx *s = ctx;
  ry_value a[MLP_N_IN];
  memcpy(a, in, sizeof a);
  a[19] = ry_shard(b, in[19], RY_AXES(s->n), RY_AXES(0, -1));
  a[20] = ry_shard(b, in[20], RY_AXES(s->n), RY_AXES(0));
  return mlp_step_fn(b, a, out, s->cfg);
}

/* The transfers alone: a program returning (sum of x, p, m, v), so the
 * same arrays go to the device and back as in the step. */
static int transfer_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_sum(b, in[19], RY_AXES(0, 1));
  for (int i = 0; i < 18; i++) out[1 + i] = ry_neg(b, ry_neg(b, in[i]));
  return MLP_N_OUT;
}

/* the train loop donates p, m and v (inputs 0..17) */
static const bool k_donate[MLP_N_IN] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

typedef ry_status (*step_run)(void *exe, ry_array **st, ry_array **out);
static ry_status run_pjrt(void *exe, ry_array **st, ry_array **out) { return ry_pjrt_execute(exe, MLP_N_IN, st, MLP_N_OUT, out); }
static ry_status run_pjrt_donated(void *exe, ry_array **st, ry_array **out) {
  return ry_pjrt_execute_donated(exe, MLP_N_IN, st, k_donate, MLP_N_OUT, out);
}
static ry_status run_cpu(void *exe, ry_array **st, ry_array **out) {
  return ry_execute_donated(exe, MLP_N_IN, st, k_donate, MLP_N_OUT, out);
}

/* best steps/s over 5 timed rounds of `steps` (after one warm-up round);
 * the state is fed back as in a train loop */
static double steps_per_s(step_run run, void *exe, ry_array **st, int steps) {
  double best = 1e30;
  for (int r = 0; r < 6; r++) {
    double t0 = now();
    for (int k = 0; k < steps; k++) {
      ry_array *out[MLP_N_OUT];
      die(run(exe, st, out), "step");
      ry_array_release(out[0]);
      for (int i = 0; i < 18; i++) {
        ry_array_release(st[i]); /* NULL when donated */
        st[i] = out[1 + i];
      }
    }
    double t = (now() - t0) / steps;
    if (r > 0 && t < best) best = t;
  }
  return 1 / best;
}

int main(int argc, char **argv) {
  mlp_cfg cfg = {128, {784, 512, 512, 10}, 1e-3, 0.9, 0.999, 1e-8, 0};
  ry_array *st[MLP_N_IN];
  die(mlp_inputs(&cfg, st), "inputs");
  ry_type types[MLP_N_IN];
  for (int i = 0; i < MLP_N_IN; i++) types[i] = ry_array_type(st[i]);

  double t0 = now();
  ry_graph *g;
  die(ry_trace("mlp_step", mlp_step_fn, &cfg, MLP_N_IN, types, NULL, &g), "trace");
  result("trace-grad-mlp", "ryft", (now() - t0) * 1e3, "ms");

  ry_pjrt_options o = {.plugin_path = argc > 1 ? argv[1] : NULL, .cpu_device_count = 2};
  ry_pjrt_client *c;
  die(ry_pjrt_client_create(&o, &c), "client");

  /* graph -> StableHLO text -> XLA compile -> loaded executable */
  t0 = now();
  char *text;
  die(ry_stablehlo_emit(g, &text), "emit");
  double t_emit = now() - t0;
  result("emit-stablehlo-mlp", "pjrt", t_emit * 1e3, "ms");
  printf("# StableHLO module: %zu bytes\n", strlen(text));
  ry_free(text);
  double best_compile = 1e30;
  ry_pjrt_executable *e = NULL;
  for (int r = 0; r < 3; r++) {
    ry_pjrt_executable_free(e);
    t0 = now();
    die(ry_pjrt_compile(c, g, 1, &e), "compile");
    double t = now() - t0;
    if (t < best_compile) best_compile = t;
  }
  result("graph-to-executable-mlp", "pjrt", best_compile * 1e3, "ms");

  /* every step copies: host arrays in, host arrays out */
  ry_pjrt_executable_set_host_outputs(e, true);
  double copy_sps = steps_per_s(run_pjrt, e, st, 20);
  result("mlp-train-step", "pjrt-copy", copy_sps, "steps/s");
  /* the state on the device: put once, outputs stay there, p/m/v donated */
  ry_pjrt_executable_set_host_outputs(e, false);
  ry_array *dst[MLP_N_IN];
  for (int i = 0; i < MLP_N_IN; i++) die(ry_pjrt_put(c, 0, st[i], &dst[i]), "put");
  double res_sps = steps_per_s(run_pjrt_donated, e, dst, 20);
  result("mlp-train-step", "pjrt-resident", res_sps, "steps/s");
  printf("# resident loop: w1 %s after %d steps\n", ry_array_on_device(dst[0]) ? "still on the device" : "on the host",
         6 * 20);
  for (int i = 0; i < MLP_N_IN; i++) ry_array_release(dst[i]);
  ry_pjrt_executable_free(e);
  /* the transfers alone, as the copying step makes them */
  ry_graph *gt;
  die(ry_trace("transfers", transfer_fn, NULL, MLP_N_IN, types, NULL, &gt), "trace transfers");
  die(ry_pjrt_compile(c, gt, 1, &e), "compile transfers");
  ry_pjrt_executable_set_host_outputs(e, true);
  result("mlp-step-transfers-only", "pjrt-copy", 1e3 / steps_per_s(run_pjrt, e, st, 20), "ms");
  ry_pjrt_executable_free(e);
  ry_graph_release(gt);

  /* data parallel over 2 CPU devices (SPMD) */
  ry_array_release(st[0]); /* fresh state */
  for (int i = 1; i < MLP_N_IN; i++) ry_array_release(st[i]);
  die(mlp_inputs(&cfg, st), "inputs");
  shard_ctx sc = {&cfg, 2};
  ry_graph *gs;
  die(ry_trace("mlp_step_sharded", sharded_step_fn, &sc, MLP_N_IN, types, NULL, &gs), "trace sharded");
  t0 = now();
  die(ry_pjrt_compile_spmd(c, gs, 2, &e), "compile spmd");
  result("graph-to-executable-mlp-spmd2", "pjrt", (now() - t0) * 1e3, "ms");
  result("mlp-train-step-spmd2", "pjrt", steps_per_s(run_pjrt, e, st, 20), "steps/s");
  ry_pjrt_executable_free(e);
  ry_graph_release(gs);

  /* ryft's own cpu backend, same graph, same loop (donating, as above) */
  for (int i = 0; i < MLP_N_IN; i++) ry_array_release(st[i]);
  die(mlp_inputs(&cfg, st), "inputs");
  ry_device *cpu;
  die(ry_device_get("cpu", &cpu), "cpu device");
  ry_executable *x;
  t0 = now();
  die(ry_compile(g, cpu, &x), "cpu compile");
  result("graph-to-executable-mlp", "cpu", (now() - t0) * 1e3, "ms");
  result("mlp-train-step", "cpu", steps_per_s(run_cpu, x, st, 20), "steps/s");
  ry_executable_free(x);

  for (int i = 0; i < MLP_N_IN; i++) ry_array_release(st[i]);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
  ry_pjrt_shutdown();
  return 0;
}
