/* Train a model defined in JAX from C: the loss was lowered to StableHLO with
 * jax.jit(loss).lower(...).as_text() (tests/data/stablehlo/gen_jax_stablehlo.py),
 * ryft imports it, differentiates it and runs SGD on its cpu backend. */
#include <stdio.h>
#include <stdlib.h>

#include "ryft/ryft.h"

#define TRY(expr)                                                        \
  do {                                                                   \
    ry_status s_ = (expr);                                               \
    if (s_) {                                                            \
      fprintf(stderr, "%s: %s\n", #expr, ry_status_message(s_));         \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "mlp.mlir";
  /* loss(w1: f32[4,8], b1: f32[8], w2: f32[8,3], x: f32[5,4], y: f32[5,3]) -> f32[] */
  ry_graph *loss = NULL, *step = NULL;
  TRY(ry_stablehlo_parse_file(path, &loss));
  const int params[3] = {0, 1, 2};
  ry_grad_opts opts = {3, params, 0};
  TRY(ry_value_and_grad(loss, &opts, &step)); /* -> (loss, dw1, db1, dw2) */
  ry_device *cpu = NULL;
  ry_executable *exe = NULL;
  TRY(ry_device_get("cpu", &cpu));
  TRY(ry_compile(step, cpu, &exe));

  /* parameters and a small batch, one class per row */
  ry_array *in[5];
  srand(1);
  for (int i = 0; i < 5; i++) {
    ry_shape s = ry_graph_input_type(loss, i).shape;
    int64_t n = 1;
    for (int d = 0; d < s.rank; d++) n *= s.dims[d];
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t k = 0; k < n; k++) v[k] = i == 4 ? (k % 3 == (k / 3) % 3) : (float)((double)rand() / RAND_MAX - 0.5);
    TRY(ry_array_from_host(RY_F32, s, v, &in[i]));
    free(v);
  }
  for (int it = 0; it <= 200; it++) {
    ry_array *out[4];
    TRY(ry_execute(exe, 5, in, 4, out));
    if (it % 50 == 0) printf("step %3d: loss %.4f\n", it, ry_array_get_f64(out[0], 0));
    for (int p = 0; p < 3; p++) { /* w -= 0.5 * dw */
      int64_t n = ry_array_numel(in[p]);
      float *w = malloc((size_t)n * sizeof *w);
      for (int64_t k = 0; k < n; k++) w[k] = (float)(ry_array_get_f64(in[p], k) - 0.5 * ry_array_get_f64(out[1 + p], k));
      ry_array_release(in[p]);
      TRY(ry_array_from_host(RY_F32, ry_array_shape(out[1 + p]), w, &in[p]));
      free(w);
    }
    for (int k = 0; k < 4; k++) ry_array_release(out[k]);
  }
  for (int i = 0; i < 5; i++) ry_array_release(in[i]);
  ry_executable_free(exe);
  ry_graph_release(step);
  ry_graph_release(loss);
  return 0;
}
