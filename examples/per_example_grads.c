/* Per-example gradients with vmap: grad of one example's loss, vectorized
 * over the batch (JAX's vmap(grad(loss), in_axes=(None, 0, 0))). */
#include <math.h>
#include <stdio.h>

#include <ryft/nn.h>
#include <ryft/ryft.h>

/* loss(w[3,2], x[3], y[]) for ONE example: cross-entropy of x @ w */
static int loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value logits = ry_reshape(b, ry_matmul(b, ry_reshape(b, in[1], RY_SHAPE(1, 3)), in[0]), RY_SHAPE(1, 2));
  out[0] = ry_nn_cross_entropy(b, logits, ry_reshape(b, in[2], RY_SHAPE(1)));
  return 1;
}

int main(void) {
  enum { B = 4 };
  ry_type t[3] = {{RY_F32, RY_SHAPE(3, 2)}, {RY_F32, RY_SHAPE(3)}, {RY_I32, RY_SCALAR}};
  ry_graph *loss = NULL, *grad = NULL, *per_example = NULL;
  ry_status s = ry_trace("loss", loss_fn, NULL, 3, t, NULL, &loss);
  if (!s) s = ry_grad(loss, NULL, &grad); /* d loss / d w: [3,2] */
  /* map over the batch axis of x and y; w is shared */
  int in_axes[3] = {RY_NOT_BATCHED, 0, 0};
  if (!s) s = ry_vmap(grad, B, in_axes, NULL, &per_example); /* -> [B,3,2] */

  float w[6] = {0.1f, -0.2f, 0.3f, 0.0f, -0.1f, 0.2f};
  float x[B * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
  int32_t y[B] = {0, 1, 0, 1};
  ry_array *in[3] = {NULL, NULL, NULL}, *g = NULL;
  ry_device *cpu = NULL;
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(3, 2), w, &in[0]);
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(B, 3), x, &in[1]);
  if (!s) s = ry_array_from_host(RY_I32, RY_SHAPE(B), y, &in[2]);
  if (!s) s = ry_device_get("cpu", &cpu);
  if (!s) s = ry_run(per_example, cpu, 3, in, 1, &g);
  if (!s) {
    printf("per-example gradients [%d,3,2]:\n", B);
    ry_array_print(g, stdout);
    for (int i = 0; i < B; i++) {
      double n2 = 0;
      for (int k = 0; k < 6; k++) n2 += pow(ry_array_get_f64(g, i * 6 + k), 2);
      printf("example %d: gradient norm %.5f\n", i, sqrt(n2));
    }
  } else {
    fprintf(stderr, "error: %s\n", ry_status_message(s));
  }
  int rc = s ? 1 : 0;
  ry_status_free(s);
  for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  ry_array_release(g);
  ry_graph_release(loss);
  ry_graph_release(grad);
  ry_graph_release(per_example);
  return rc;
}
