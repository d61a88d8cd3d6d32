/* A data-parallel train step over MPI processes: mpirun -np 2 ./example_data_parallel */
#include <ryft/nn.h>
#include <ryft/ryft.h>
#include <stdio.h>

#define B 8 /* the global batch: each of the P ranks trains on B / P rows */

/* mean((x w - y)^2) */
static int loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_mse(b, ry_matmul(b, in[1], in[0]), in[2]);
  return 1;
}

/* (w, x, y) -> w - 0.5 * (the gradient averaged over the ranks) */
static int step(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ry_value g;
  if (ry_call(b, ctx, 3, in, &g) != 1) return -1;
  ry_nn_data_parallel_mean(b, 1, &g, ry_dist_size(), &g); /* one all_reduce across the processes */
  out[0] = ry_sub(b, in[0], ry_mul(b, ry_scalar(b, RY_F32, 0.5), g));
  return 1;
}

int main(int argc, char **argv) {
  ry_status s = ry_dist_init(&argc, &argv); /* "built without MPI" if it was */
  int P = ry_dist_size();
  float xs[B * 2], ys[B], w0[2] = {0, 0};
  for (int i = 0; i < B; i++) {
    xs[2 * i] = (float)i / B;
    xs[2 * i + 1] = 1;
    ys[i] = 3 * xs[2 * i] - 2; /* y = 3 x - 2 */
  }
  ry_array *x = NULL, *y = NULL, *in[3] = {NULL, NULL, NULL};
  ry_graph *lg = NULL, *gg = NULL;
  ry_device *dev = NULL;
  ry_jit *j = NULL;
  ry_type t[3] = {{RY_F32, RY_SHAPE(2, 1)}, {RY_F32, RY_SHAPE(B / P, 2)}, {RY_F32, RY_SHAPE(B / P, 1)}};
  if (!s && !(s = ry_array_from_host(RY_F32, RY_SHAPE(B, 2), xs, &x)) && !(s = ry_array_from_host(RY_F32, RY_SHAPE(B, 1), ys, &y)) &&
      !(s = ry_array_from_host(RY_F32, RY_SHAPE(2, 1), w0, &in[0])) && !(s = ry_dist_shard_rows(x, &in[1])) &&
      !(s = ry_dist_shard_rows(y, &in[2])) && !(s = ry_trace("loss", loss, NULL, 3, t, NULL, &lg)) &&
      !(s = ry_grad(lg, NULL, &gg)) && !(s = ry_device_get("cpu", &dev)) && !(s = ry_jit_new("step", step, gg, dev, &j))) {
    for (int it = 0; it < 500 && !s; it++) {
      ry_array *w = NULL;
      s = ry_jit_call(j, 3, in, 1, &w);
      ry_array_release(in[0]);
      in[0] = w;
    }
    if (!s && ry_dist_rank() == 0)
      printf("%d ranks: w = (%.3f, %.3f)\n", P, ry_array_get_f64(in[0], 0), ry_array_get_f64(in[0], 1));
  }
  if (s) fprintf(stderr, "rank %d: %s\n", ry_dist_rank(), ry_status_message(s));
  int rc = s ? 1 : 0;
  ry_status_free(s);
  for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  ry_array_release(x);
  ry_array_release(y);
  ry_jit_free(j);
  ry_graph_release(gg);
  ry_graph_release(lg);
  ry_status_free(ry_dist_finalize());
  return rc;
}
