/* Train a small CNN on Fashion-MNIST for one epoch and report test accuracy:
 * the complete loop in one file (`ryft train` is the full-featured version,
 * tools/train.c). Usage: example_fashion_mnist_cnn [DATA_DIR]
 * (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist). */
#include <stdio.h>

#include <ryft/nn.h>
#include <ryft/ryft.h>

enum { B = 128, NP = 8 };

/* params: conv1 w[3,3,1,16] b[16], conv2 w[3,3,16,32] b[32], fc1 w[1568,128] b[128], fc2 w[128,10] b[10] */
static const int64_t k_shapes[NP][4] = {{3, 3, 1, 16}, {16}, {3, 3, 16, 32}, {32}, {1568, 128}, {128}, {128, 10}, {10}};
static const int k_ranks[NP] = {4, 1, 4, 1, 2, 1, 2, 1};

static ry_value model(ry_builder *b, const ry_value *p, ry_value images /* u8[n, 28, 28] */) {
  int64_t n = ry_value_shape(b, images).dims[0];
  ry_value x = ry_div(b, ry_convert(b, images, RY_F32), ry_scalar(b, RY_F32, 255.0));
  x = ry_reshape(b, x, RY_SHAPE(n, 28, 28, 1));
  ry_nn_conv_opts conv = {.padding = RY_NN_SAME}; /* convolution ops: im2col + GEMM on the cpu device */
  x = ry_nn_max_pool2d(b, ry_relu(b, ry_nn_conv2d(b, x, p[0], p[1], &conv)), 2, 2); /* [n,14,14,16] */
  x = ry_nn_max_pool2d(b, ry_relu(b, ry_nn_conv2d(b, x, p[2], p[3], &conv)), 2, 2); /* [n,7,7,32] */
  x = ry_relu(b, ry_nn_linear(b, ry_reshape(b, x, RY_SHAPE(n, 1568)), p[4], p[5]));
  return ry_nn_linear(b, x, p[6], p[7]); /* logits [n,10] */
}

static int loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_cross_entropy(b, model(b, in, in[NP]), ry_convert(b, in[NP + 1], RY_I32));
  return 1;
}

typedef struct ctx {
  ry_graph *vg; /* value_and_grad(loss) */
  ry_nn_optimizer opt;
} ctx;

/* (params[8], adam state[17], images, labels) -> (params[8], state[17], loss) */
static int step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  ctx *c = vctx;
  ry_value args[NP + 2], res[NP + 1];
  for (int i = 0; i < NP; i++) args[i] = in[i];
  args[NP] = in[NP + 17];
  args[NP + 1] = in[NP + 18];
  ry_call(b, c->vg, NP + 2, args, res);
  ry_nn_opt_update(b, &c->opt, NP, in, res + 1, in + NP, out, out + NP);
  out[NP + 17] = res[0];
  return NP + 18;
}

static int eval_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  (void)vctx;
  out[0] = ry_nn_correct_count(b, model(b, in, in[NP]), ry_convert(b, in[NP + 1], RY_I32));
  return 1;
}

static int init_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  (void)in;
  (void)vctx;
  ry_value keys[NP];
  ry_random_split_keys(b, ry_random_key(b, 0), NP, keys);
  for (int i = 0; i < NP; i++)
    out[i] = ry_nn_initialize(b, k_ranks[i] == 1 ? RY_NN_INIT_ZEROS : RY_NN_INIT_LECUN_NORMAL, keys[i], RY_F32,
                              ry_shape_make(k_ranks[i], k_shapes[i]), 0);
  return NP;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  char p1[1024], p2[1024];
  ry_array *tr[2] = {NULL, NULL}, *te[2] = {NULL, NULL}, *st[NP + 19] = {0}, *out[NP + 18] = {0};
  ry_device *cpu = NULL;
  ry_graph *loss = NULL;
  ctx c = {NULL, ry_nn_optimizer_default(RY_NN_ADAM, 2e-3)};
  ry_jit *init = NULL, *step = NULL, *eval = NULL;
  ry_batches *batches = NULL;
  snprintf(p1, sizeof p1, "%s/train-images-idx3-ubyte.gz", dir);
  snprintf(p2, sizeof p2, "%s/train-labels-idx1-ubyte.gz", dir);
  ry_status s = ry_idx_read_pair(p1, p2, 10, &tr[0], &tr[1]);
  snprintf(p1, sizeof p1, "%s/t10k-images-idx3-ubyte.gz", dir);
  snprintf(p2, sizeof p2, "%s/t10k-labels-idx1-ubyte.gz", dir);
  if (!s) s = ry_idx_read_pair(p1, p2, 10, &te[0], &te[1]);
  if (!s) s = ry_device_get("cpu", &cpu);
  if (!s) s = ry_jit_new("init", init_fn, NULL, cpu, &init);
  if (!s) s = ry_jit_call(init, 0, NULL, NP, st);
  ry_type types[NP + 2];
  for (int i = 0; i < NP && !s; i++) types[i] = ry_array_type(st[i]);
  types[NP] = (ry_type){RY_U8, RY_SHAPE(B, 28, 28)};
  types[NP + 1] = (ry_type){RY_U8, RY_SHAPE(B)};
  int argnums[NP] = {0, 1, 2, 3, 4, 5, 6, 7};
  ry_grad_opts go = {NP, argnums, 0};
  if (!s) s = ry_trace("loss", loss_fn, NULL, NP + 2, types, NULL, &loss);
  if (!s) s = ry_value_and_grad(loss, &go, &c.vg);
  if (!s) s = ry_jit_new("step", step_fn, &c, cpu, &step);
  if (!s) s = ry_jit_new("eval", eval_fn, NULL, cpu, &eval);
  for (int i = 0; i < NP && !s; i++) /* Adam's mu and nu for each parameter, then the count */
    for (int j = 0; j < 2 && !s; j++) s = ry_array_zeros(RY_F32, ry_array_shape(st[i]), &st[NP + 2 * i + j]);
  if (!s) s = ry_array_zeros(RY_I32, RY_SCALAR, &st[NP + 16]);
  ry_key key = ry_key_from_seed(0);
  if (!s) s = ry_batches_new(2, tr, B, &key, 1, &batches);
  for (int64_t it = 1; !s; it++) {
    ry_array *batch[2];
    if ((s = ry_batches_next(batches, batch)) || !batch[0]) break;
    st[NP + 17] = batch[0];
    st[NP + 18] = batch[1];
    s = ry_jit_call(step, NP + 19, st, NP + 18, out);
    for (int i = 0; i < NP + 19; i++) ry_array_release(st[i]), st[i] = NULL;
    if (s) break;
    for (int i = 0; i < NP + 17; i++) st[i] = out[i];
    if (it % 100 == 0) printf("step %lld loss %.4f\n", (long long)it, ry_array_get_f64(out[NP + 17], 0));
    ry_array_release(out[NP + 17]);
  }
  /* test accuracy: 20 batches of 500 */
  int64_t correct = 0;
  ry_batches_free(batches);
  batches = NULL;
  if (!s) s = ry_batches_new(2, te, 500, NULL, 0, &batches);
  while (!s) {
    ry_array *batch[2], *cnt = NULL;
    if ((s = ry_batches_next(batches, batch)) || !batch[0]) break;
    ry_array *in[NP + 2];
    for (int i = 0; i < NP; i++) in[i] = st[i];
    in[NP] = batch[0];
    in[NP + 1] = batch[1];
    s = ry_jit_call(eval, NP + 2, in, 1, &cnt);
    if (!s) correct += ry_array_get_i64(cnt, 0);
    ry_array_release(cnt);
    ry_array_release(batch[0]);
    ry_array_release(batch[1]);
  }
  if (!s) printf("test accuracy after one epoch: %.2f%%\n", 100.0 * (double)correct / 10000.0);
  int rc = s ? 1 : 0;
  if (s) fprintf(stderr, "error: %s\n", ry_status_message(s));
  ry_status_free(s);
  for (int i = 0; i < NP + 19; i++) ry_array_release(st[i]);
  for (int i = 0; i < 2; i++) ry_array_release(tr[i]), ry_array_release(te[i]);
  ry_batches_free(batches);
  ry_jit_free(init);
  ry_jit_free(step);
  ry_jit_free(eval);
  ry_graph_release(loss);
  ry_graph_release(c.vg);
  return rc;
}
