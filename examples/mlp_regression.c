/* Fit y = sin(3x) on [-1, 1] with a small MLP: the loss, its gradient and the
 * Adam update are one traced program, compiled once by ry_jit for the cpu
 * device and run 2000 times. */
#include <math.h>
#include <stdio.h>

#include <ryft/nn.h>
#include <ryft/ryft.h>

enum { N = 256, H = 32, N_PARAMS = 6 };

/* params: w1[1,H] b1[H] w2[H,H] b2[H] w3[H,1] b3[1]; x, y: [N, 1] */
static int loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_nn_linear(b, in[6], in[0], in[1]));
  h = ry_tanh(b, ry_nn_linear(b, h, in[2], in[3]));
  out[0] = ry_nn_mse(b, ry_nn_linear(b, h, in[4], in[5]), in[7]);
  return 1;
}

typedef struct step_ctx {
  ry_graph *value_and_grad;
  ry_nn_optimizer opt;
} step_ctx;

/* (params[6], adam state[13], x, y) -> (params[6], state[13], loss) */
static int step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  step_ctx *c = vctx;
  ry_value args[8], res[7];
  for (int i = 0; i < N_PARAMS; i++) args[i] = in[i];
  args[6] = in[19];
  args[7] = in[20];
  ry_call(b, c->value_and_grad, 8, args, res); /* (loss, grads...) */
  ry_nn_opt_update(b, &c->opt, N_PARAMS, in, res + 1, in + N_PARAMS, out, out + N_PARAMS);
  out[19] = res[0];
  return 20;
}

/* Glorot-uniform weights and zero biases from a PRNG key */
static int init_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)in;
  (void)ctx;
  static const int64_t shapes[N_PARAMS][2] = {{1, H}, {H, 0}, {H, H}, {H, 0}, {H, 1}, {1, 0}};
  ry_value keys[N_PARAMS];
  ry_random_split_keys(b, ry_random_key(b, 0), N_PARAMS, keys);
  for (int i = 0; i < N_PARAMS; i++) {
    int bias = shapes[i][1] == 0;
    ry_shape s = bias ? RY_SHAPE(shapes[i][0]) : RY_SHAPE(shapes[i][0], shapes[i][1]);
    out[i] = ry_nn_initialize(b, bias ? RY_NN_INIT_ZEROS : RY_NN_INIT_GLOROT_UNIFORM, keys[i], RY_F32, s, 0);
  }
  return N_PARAMS;
}

int main(void) {
  float xs[N], ys[N];
  for (int i = 0; i < N; i++) {
    xs[i] = -1.0f + 2.0f * (float)i / (N - 1);
    ys[i] = sinf(3.0f * xs[i]);
  }
  ry_status s = NULL;
  ry_device *cpu = NULL;
  ry_graph *loss = NULL;
  step_ctx c = {NULL, ry_nn_optimizer_default(RY_NN_ADAM, 1e-2)};
  ry_jit *init = NULL, *step = NULL;
  ry_array *p[21] = {0}, *out[20] = {0};
  ry_type types[8];
  if (!(s = ry_device_get("cpu", &cpu)) && !(s = ry_jit_new("init", init_fn, NULL, cpu, &init)))
    s = ry_jit_call(init, 0, NULL, N_PARAMS, p);
  if (!s) {
    for (int i = 0; i < N_PARAMS; i++) types[i] = ry_array_type(p[i]);
    types[6] = types[7] = (ry_type){RY_F32, RY_SHAPE(N, 1)};
    int argnums[N_PARAMS] = {0, 1, 2, 3, 4, 5};
    ry_grad_opts go = {N_PARAMS, argnums, 0};
    if (!(s = ry_trace("loss", loss_fn, NULL, 8, types, NULL, &loss)) && !(s = ry_value_and_grad(loss, &go, &c.value_and_grad)))
      s = ry_jit_new("step", step_fn, &c, cpu, &step);
  }
  /* Adam state: mu and nu per parameter, then the step count */
  for (int i = 0; i < N_PARAMS && !s; i++)
    for (int j = 0; j < 2 && !s; j++) s = ry_array_zeros(RY_F32, ry_array_shape(p[i]), &p[N_PARAMS + 2 * i + j]);
  if (!s) s = ry_array_zeros(RY_I32, RY_SCALAR, &p[18]);
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(N, 1), xs, &p[19]);
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(N, 1), ys, &p[20]);
  for (int it = 1; it <= 2000 && !s; it++) {
    if ((s = ry_jit_call(step, 21, p, 20, out))) break;
    for (int i = 0; i < 19; i++) {
      ry_array_release(p[i]);
      p[i] = out[i];
    }
    if (it % 400 == 0) printf("step %4d  mse %.6f\n", it, ry_array_get_f64(out[19], 0));
    ry_array_release(out[19]);
  }
  if (s) fprintf(stderr, "error: %s\n", ry_status_message(s));
  ry_status_free(s);
  for (int i = 0; i < 21; i++) ry_array_release(p[i]);
  ry_jit_free(init);
  ry_jit_free(step);
  ry_graph_release(loss);
  ry_graph_release(c.value_and_grad);
  return s ? 1 : 0;
}
