/* `ryft train`: train a classifier on Fashion-MNIST on the cpu device.
 *
 * The whole training step - forward, ry_value_and_grad, the optimizer
 * update - is one traced program compiled once (ry_jit) and run with the
 * parameters and optimizer state donated, so they are updated in place.
 * Data come from the IDX files (ry_idx_read_pair), batches from ry_batches
 * shuffled by jax.random.permutation(fold_in(PRNGKey(seed), epoch)), the
 * initial parameters from Flax's default initializers traced with the same
 * key, checkpoints are safetensors written atomically. Everything depends
 * only on the seed and the epoch, so a run resumed from a checkpoint is
 * bitwise identical to an uninterrupted one.
 *
 * Under MPI (`mpirun -np N ryft train`, ryft/dist.h) every rank draws the
 * same global batch and trains on its rows of it (ry_dist_shard_rows); the
 * step averages the loss and gradients over the ranks inside the compiled
 * program (ry_nn_data_parallel_mean), so every rank applies the same update.
 * Rank 0 alone prints, writes the logs, checkpoints and the plot; the
 * checkpoint does not depend on the rank count, so --resume works with
 * another one.
 *
 * Uses only the public API. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"
#include "train_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ryft/nn.h"
#include "ryft/ryft.h"

enum { T_OK = 0, T_FAIL = 1, T_USAGE = 2 };

static const char k_train_usage[] =
    "usage: ryft train [OPTIONS]\n"
    "\n"
    "Train a classifier on Fashion-MNIST on the cpu device, evaluate test\n"
    "accuracy after every epoch, write a checkpoint and a CSV of the metrics.\n"
    "\n"
    "  --model cnn|mlp     the model (default cnn)\n"
    "  --epochs N          total epochs (default: cnn 4, mlp 20)\n"
    "  --batch N           batch size (default 128)\n"
    "  --lr X              peak learning rate of Adam with warmup + cosine decay\n"
    "                      (default: cnn 3e-3, mlp 2e-3)\n"
    "  --seed N            PRNG seed: initial parameters and shuffling (default 0)\n"
    "  --data DIR          the dataset (default: $RYFT_DATA, then\n"
    "                      /usr/share/datasets/fashion-mnist); files\n"
    "                      {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "  --out DIR           where to write checkpoint.safetensors, metrics.csv,\n"
    "                      steps.csv and loss.png (default train-out)\n"
    "  --resume FILE       continue from a checkpoint up to --epochs (the learning\n"
    "                      rate schedule spans --epochs, so resume with the same\n"
    "                      --epochs as the interrupted run for identical results)\n"
    "  --stop-after N      stop after epoch N as if interrupted (default --epochs)\n"
    "  --limit-train N     use the first N training examples (default all)\n"
    "  --limit-test N      use the first N test examples (default all)\n"
    "  --device NAME       the device (default cpu)\n"
    "  --no-plot           do not run gnuplot\n"
    "\n"
    "The progress bar is drawn when stdout is a terminal; otherwise progress is\n"
    "printed as plain lines.\n"
    "\n"
    "Started by mpirun (mpirun -np N ryft train ...), the N processes train\n"
    "data-parallel: each takes batch/N rows of every batch and the gradients are\n"
    "averaged over the processes in each step; rank 0 writes the output.\n";

/* ---- small helpers ---- */

/* the options that take a value (the others: --help, --no-plot) */
static int is_value_option(const char *name) {
  static const char *const k[] = {"--model", "--epochs", "--batch", "--lr", "--seed", "--data", "--out",
                                  "--resume", "--stop-after", "--limit-train", "--limit-test", "--device"};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(name, k[i])) return 1;
  return 0;
}

static int fail(ry_status s, const char *what) {
  fprintf(stderr, "ryft train: %s%s%s\n", what ? what : "", what ? ": " : "", ry_status_message(s));
  ry_status_free(s);
  return T_FAIL;
}

static int usage(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ryft train: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n\n", stderr);
  fputs(k_train_usage, stderr);
  va_end(ap);
  return T_USAGE;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* DIR/base.gz or DIR/base; 1 when found */
static int find_file(const char *dir, const char *base, char *out, size_t size) {
  snprintf(out, size, "%s/%s.gz", dir, base);
  if (file_exists(out)) return 1;
  snprintf(out, size, "%s/%s", dir, base);
  return file_exists(out);
}

/* ---- models ----------------------------------------------------------------
 * A model is its parameter list (path, shape, initializer) and an apply
 * function that reads parameters by path from a ry_pvalues view. */

typedef struct param_spec {
  const char *path;
  int rank;
  int64_t dims[4];
  ry_nn_init init;
} param_spec;

typedef ry_value (*apply_fn)(ry_builder *b, ry_pvalues *p, ry_value x); /* x: f32[B, 28, 28, 1] -> logits [B, 10] */

typedef struct model_def {
  const char *name;
  int n_params;
  const param_spec *params;
  apply_fn apply;
  int64_t epochs;
  double lr;
} model_def;

/* conv 3x3 (16) -> relu -> max pool 2 -> conv 3x3 (32) -> relu -> max pool 2
 * -> dense 128 -> relu -> dense 10 */
static ry_value cnn_apply(ry_builder *b, ry_pvalues *p, ry_value x) {
  ry_nn_conv_opts conv = {.padding = RY_NN_SAME}; /* convolution ops: im2col + GEMM on the cpu device */
  x = ry_relu(b, ry_nn_conv2d(b, x, ry_pvalues_get(p, "conv1/w"), ry_pvalues_get(p, "conv1/b"), &conv));
  x = ry_nn_max_pool2d(b, x, 2, 2);
  x = ry_relu(b, ry_nn_conv2d(b, x, ry_pvalues_get(p, "conv2/w"), ry_pvalues_get(p, "conv2/b"), &conv));
  x = ry_nn_max_pool2d(b, x, 2, 2);
  x = ry_reshape(b, x, RY_SHAPE(ry_value_shape(b, x).dims[0], -1));
  x = ry_relu(b, ry_nn_linear(b, x, ry_pvalues_get(p, "fc1/w"), ry_pvalues_get(p, "fc1/b")));
  return ry_nn_linear(b, x, ry_pvalues_get(p, "fc2/w"), ry_pvalues_get(p, "fc2/b"));
}

static const param_spec k_cnn_params[] = {
    {"conv1/w", 4, {3, 3, 1, 16}, RY_NN_INIT_LECUN_NORMAL}, {"conv1/b", 1, {16}, RY_NN_INIT_ZEROS},
    {"conv2/w", 4, {3, 3, 16, 32}, RY_NN_INIT_LECUN_NORMAL}, {"conv2/b", 1, {32}, RY_NN_INIT_ZEROS},
    {"fc1/w", 2, {7 * 7 * 32, 128}, RY_NN_INIT_LECUN_NORMAL}, {"fc1/b", 1, {128}, RY_NN_INIT_ZEROS},
    {"fc2/w", 2, {128, 10}, RY_NN_INIT_LECUN_NORMAL},        {"fc2/b", 1, {10}, RY_NN_INIT_ZEROS},
};

/* 784 -> 256 -> relu -> 128 -> relu -> 10 */
static ry_value mlp_apply(ry_builder *b, ry_pvalues *p, ry_value x) {
  x = ry_reshape(b, x, RY_SHAPE(ry_value_shape(b, x).dims[0], 784));
  x = ry_relu(b, ry_nn_linear(b, x, ry_pvalues_get(p, "fc1/w"), ry_pvalues_get(p, "fc1/b")));
  x = ry_relu(b, ry_nn_linear(b, x, ry_pvalues_get(p, "fc2/w"), ry_pvalues_get(p, "fc2/b")));
  return ry_nn_linear(b, x, ry_pvalues_get(p, "fc3/w"), ry_pvalues_get(p, "fc3/b"));
}

static const param_spec k_mlp_params[] = {
    {"fc1/w", 2, {784, 256}, RY_NN_INIT_LECUN_NORMAL}, {"fc1/b", 1, {256}, RY_NN_INIT_ZEROS},
    {"fc2/w", 2, {256, 128}, RY_NN_INIT_LECUN_NORMAL}, {"fc2/b", 1, {128}, RY_NN_INIT_ZEROS},
    {"fc3/w", 2, {128, 10}, RY_NN_INIT_LECUN_NORMAL},  {"fc3/b", 1, {10}, RY_NN_INIT_ZEROS},
};

static const model_def k_models[] = {
    {"cnn", 8, k_cnn_params, cnn_apply, 4, 3e-3},
    {"mlp", 6, k_mlp_params, mlp_apply, 20, 2e-3},
};

/* ---- traced programs ---- */

typedef struct train_ctx {
  const model_def *m;
  const ry_params *like;   /* parameter paths and types */
  ry_nn_optimizer opt;
  uint64_t seed;
  int n_ranks;             /* processes of the MPI job (1: none) */
  ry_graph *loss_vg;       /* (params..., x, y) -> (loss, grads...) */
} train_ctx;

/* images u8[B, 28, 28] -> f32[B, 28, 28, 1] in [0, 1] */
static ry_value prep_images(ry_builder *b, ry_value img) {
  ry_shape s = ry_value_shape(b, img);
  ry_value x = ry_div(b, ry_convert(b, img, RY_F32), ry_scalar(b, RY_F32, 255.0));
  return ry_reshape(b, x, RY_SHAPE(s.dims[0], s.dims[1], s.dims[2], 1));
}

/* init: () -> params, initialized from split(PRNGKey(seed), n_params) */
static int init_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  (void)in;
  const train_ctx *c = vctx;
  int n = c->m->n_params;
  ry_value keys[64];
  ry_value root = ry_random_key(b, (int64_t)c->seed);
  if (!ry_random_split_keys(b, root, n, keys)) return -1;
  for (int i = 0; i < n; i++) {
    const param_spec *ps = &c->m->params[i];
    out[i] = ry_nn_initialize(b, ps->init, keys[i], RY_F32, ry_shape_make(ps->rank, ps->dims), 0.0);
  }
  return n;
}

/* loss: (params..., images u8, labels u8) -> mean cross-entropy */
static int loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const train_ctx *c = vctx;
  int n = c->m->n_params;
  ry_pvalues *pv = NULL;
  ry_status s = ry_pvalues_from(b, c->like, in, &pv);
  if (s) return ry_builder_set_error(b, s), -1;
  ry_value logits = c->m->apply(b, pv, prep_images(b, in[n]));
  out[0] = ry_nn_cross_entropy(b, logits, ry_convert(b, in[n + 1], RY_I32));
  ry_pvalues_free(pv);
  return 1;
}

/* step: (params..., opt state..., images, labels) -> (params..., state..., loss) */
static int step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const train_ctx *c = vctx;
  int n = c->m->n_params, n_state = n * ry_nn_opt_state_per_param(&c->opt) + 1;
  ry_value args[70], res[70];
  for (int i = 0; i < n; i++) args[i] = in[i];
  args[n] = in[n + n_state];
  args[n + 1] = in[n + n_state + 1];
  if (ry_call(b, c->loss_vg, n + 2, args, res) != n + 1) return -1;
  /* data-parallel: the mean of the loss and grads over the ranks' shards */
  ry_nn_data_parallel_mean(b, n + 1, res, c->n_ranks, res);
  ry_nn_opt_update(b, &c->opt, n, in, res + 1, in + n, out, out + n);
  out[n + n_state] = res[0];
  return n + n_state + 1;
}

/* eval: (params..., images, labels) -> (correct count i32, summed loss f32) */
static int eval_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const train_ctx *c = vctx;
  int n = c->m->n_params;
  ry_pvalues *pv = NULL;
  ry_status s = ry_pvalues_from(b, c->like, in, &pv);
  if (s) return ry_builder_set_error(b, s), -1;
  ry_value logits = c->m->apply(b, pv, prep_images(b, in[n]));
  ry_value y = ry_convert(b, in[n + 1], RY_I32);
  out[0] = ry_nn_correct_count(b, logits, y);
  out[1] = ry_sum_keepdims(b, ry_nn_cross_entropy_per_example(b, logits, y), RY_NO_AXES, 0); /* all axes */
  ry_pvalues_free(pv);
  return 2;
}

/* ---- checkpoints ---- */

/* One tree: "params/<path>" for the parameters, then "opt/<slot>/<path>"
 * and "opt/count" for the optimizer state (ry_nn_opt_state_tree's paths). */
static ry_status build_tree(const ry_params *like, const ry_params *state_like, ry_array *const *params, ry_array *const *state,
                            ry_params **out) {
  ry_params *t = ry_params_new();
  if (!t) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "out of memory");
  ry_status s = NULL;
  char path[RY_PARAMS_MAX_PATH + 16];
  for (int i = 0; i < ry_params_count(like) && !s; i++) {
    snprintf(path, sizeof path, "params/%s", ry_params_path(like, i));
    s = ry_params_set(t, path, params[i]);
  }
  for (int i = 0; i < ry_params_count(state_like) && !s; i++) {
    snprintf(path, sizeof path, "opt/%s", ry_params_path(state_like, i));
    s = ry_params_set(t, path, state[i]);
  }
  if (s) {
    ry_params_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

static ry_status write_checkpoint(const char *path, const ry_params *like, const ry_params *state_like, ry_array *const *params,
                                  ry_array *const *state, const char *model, int64_t epoch, uint64_t seed) {
  ry_params *t = NULL;
  ry_status s = build_tree(like, state_like, params, state, &t);
  if (s) return s;
  char ep[32], sd[32];
  snprintf(ep, sizeof ep, "%" PRId64, epoch);
  snprintf(sd, sizeof sd, "%" PRIu64, seed);
  ry_meta meta[4] = {{"format", "ryft-train-1"}, {"model", model}, {"epoch", ep}, {"seed", sd}};
  s = ry_safetensors_write(path, t, 4, meta);
  ry_params_free(t);
  return s;
}

/* Load `path` into params/state (replacing the arrays there). */
static ry_status read_checkpoint(const char *path, const ry_params *like, const ry_params *state_like, ry_array **params,
                                 ry_array **state, const char *model, int64_t *epoch) {
  char *v = NULL;
  ry_status s = ry_safetensors_metadata(path, "model", &v);
  if (s) return s;
  if (!v || strcmp(v, model) != 0) {
    s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "%s: the checkpoint is of model '%s', not '%s' (pass --model %s)", path,
                       v ? v : "?", model, v ? v : "?");
    ry_free(v);
    return s;
  }
  ry_free(v);
  v = NULL;
  s = ry_safetensors_metadata(path, "epoch", &v);
  if (s) return s;
  int64_t ep = -1;
  if (!v || !tr_parse_i64(v, &ep) || ep < 0) {
    s = ry_status_make(RY_ERR_PARSE, "%s: the checkpoint has no valid \"epoch\" metadata", path);
    ry_free(v);
    return s;
  }
  ry_free(v);
  ry_params *want = NULL, *got = NULL;
  s = build_tree(like, state_like, params, state, &want);
  if (!s) s = ry_safetensors_load(path, want, &got);
  /* a NaN or an infinity in a checkpoint would only show later as a NaN
     loss: name the tensor and the element now */
  for (int i = 0; !s && i < ry_params_count(got); i++) {
    const ry_array *a = ry_params_at(got, i);
    if (!ry_dtype_is_float(ry_array_dtype(a))) continue;
    for (int64_t k = 0, n = ry_array_numel(a); k < n; k++) {
      double x = ry_array_get_f64(a, k);
      if (isfinite(x)) continue;
      s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "%s: '%s' holds %g at element %" PRId64 " of %" PRId64
                         "; a checkpoint with non-finite values cannot be resumed",
                         path, ry_params_path(got, i), x, k, n);
      break;
    }
  }
  if (!s) {
    /* got has want's order: the parameters, then the state */
    int n = ry_params_count(like), n_state = ry_params_count(state_like);
    for (int i = 0; i < n; i++) {
      ry_array_release(params[i]);
      params[i] = ry_array_retain(ry_params_at(got, i));
    }
    for (int i = 0; i < n_state; i++) {
      ry_array_release(state[i]);
      state[i] = ry_array_retain(ry_params_at(got, n + i));
    }
    *epoch = ep;
  }
  ry_params_free(want);
  ry_params_free(got);
  return s;
}

/* A non-finite loss: say which parameter went non-finite with it, if one
 * did, before advising a smaller learning rate. */
static void report_non_finite(double loss, int64_t epoch, int64_t step, const model_def *m, ry_array *const *params, int n) {
  fprintf(stderr, "\nryft train: the loss is %g at epoch %" PRId64 " step %" PRId64, loss, epoch, step);
  for (int i = 0; i < n; i++) {
    for (int64_t k = 0, numel = ry_array_numel(params[i]); k < numel; k++) {
      double x = ry_array_get_f64(params[i], k);
      if (isfinite(x)) continue;
      fprintf(stderr, ", and parameter '%s' is %g at element %" PRId64 " after the step", m->params[i].path, x, k);
      i = n;
      break;
    }
  }
  fprintf(stderr, "; the training diverged: try a smaller --lr\n");
}

/* ---- data ---- */

static ry_status take_rows(ry_array **a, int64_t limit) {
  ry_shape s = ry_array_shape(*a);
  if (limit <= 0 || limit >= s.dims[0]) return NULL;
  s.dims[0] = limit; /* row-major: the first `limit` rows are a prefix */
  ry_array *r = NULL;
  ry_status st = ry_array_from_host(ry_array_dtype(*a), s, ry_array_data(*a), &r);
  if (st) return st;
  ry_array_release(*a);
  *a = r;
  return NULL;
}

static ry_status load_split(const char *dir, const char *prefix, int64_t limit, ry_array **images, ry_array **labels) {
  char ip[1200], lp[1200], base[64];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
  if (!find_file(dir, base, ip, sizeof ip))
    return ry_status_make(RY_ERR_IO, "%s/%s[.gz] not found (install Debian's dataset-fashion-mnist, or pass --data DIR)", dir, base);
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
  if (!find_file(dir, base, lp, sizeof lp))
    return ry_status_make(RY_ERR_IO, "%s/%s[.gz] not found (install Debian's dataset-fashion-mnist, or pass --data DIR)", dir, base);
  ry_status s = ry_idx_read_pair(ip, lp, 10, images, labels);
  if (s) return s;
  ry_shape is = ry_array_shape(*images);
  if (is.dims[1] != 28 || is.dims[2] != 28) {
    s = ry_status_make(RY_ERR_SHAPE, "%s: images are %" PRId64 "x%" PRId64 ", the models expect 28x28", ip, is.dims[1], is.dims[2]);
  }
  if (!s) s = take_rows(images, limit);
  if (!s) s = take_rows(labels, limit);
  if (s) {
    ry_array_release(*images);
    ry_array_release(*labels);
    *images = *labels = NULL;
  }
  return s;
}

static const char *default_data_dir(void) {
  const char *e = getenv("RYFT_DATA");
  if (e && *e) return e;
  return "/usr/share/datasets/fashion-mnist";
}

/* ---- plot ---- */

static void plot(const char *dir) {
  char body[1600];
  snprintf(body, sizeof body,
           "set key autotitle columnhead\n"
           "set multiplot layout 1,2\n"
           "set title 'training loss'\nset xlabel 'step'\nset ylabel 'loss'\n"
           "plot '%s/steps.csv' using 1:2 with lines title 'train loss'\n"
           "set title 'test accuracy'\nset xlabel 'epoch'\nset ylabel 'accuracy'\n"
           "plot '%s/metrics.csv' using 1:5 with linespoints title 'test accuracy'\n"
           "unset multiplot\n",
           dir, dir);
  tr_plot(dir, "metrics.csv", body);
}

/* ---- the command ---- */

typedef struct train_opts {
  const model_def *m;
  int64_t epochs, batch, limit_train, limit_test, stop_after;
  double lr;
  uint64_t seed;
  const char *data, *out, *resume, *device;
  int no_plot;
} train_opts;

static int run(const train_opts *o);

static int run_ctx(const void *o) { return run(o); }

int ryft_cmd_train(int argc, char **argv) {
  train_opts o = {0};
  o.m = &k_models[0];
  o.epochs = -1;
  o.batch = 128;
  o.lr = -1;
  o.data = NULL;
  o.out = "train-out";
  o.device = "cpu";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(k_train_usage, stdout);
      return T_OK;
    }
    if (strcmp(a, "--no-plot") == 0) {
      o.no_plot = 1;
      continue;
    }
    const char *v = NULL;
    const char *eq = strchr(a, '=');
    char name[64];
    if (strncmp(a, "--", 2) != 0) return usage("unexpected argument '%s'", a);
    if (eq) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
      v = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
      if (!is_value_option(name)) return usage("unknown option '%s'", name);
      if (i + 1 >= argc) return usage("%s needs a value", a);
      v = argv[++i];
    }
    int64_t iv;
    double dv;
    if (strcmp(name, "--model") == 0) {
      o.m = NULL;
      for (size_t k = 0; k < sizeof k_models / sizeof k_models[0]; k++)
        if (strcmp(v, k_models[k].name) == 0) o.m = &k_models[k];
      if (!o.m) return usage("unknown model '%s' (cnn or mlp)", v);
    } else if (strcmp(name, "--epochs") == 0) {
      if (!tr_parse_i64(v, &iv) || iv < 1 || iv > 100000) return usage("--epochs wants an integer in [1, 100000], not '%s'", v);
      o.epochs = iv;
    } else if (strcmp(name, "--batch") == 0) {
      if (!tr_parse_i64(v, &iv) || iv < 1 || iv > 65536) return usage("--batch wants an integer in [1, 65536], not '%s'", v);
      o.batch = iv;
    } else if (strcmp(name, "--lr") == 0) {
      if (!tr_parse_f64(v, &dv) || dv <= 0) return usage("--lr wants a positive number, not '%s'", v);
      o.lr = dv;
    } else if (strcmp(name, "--seed") == 0) {
      if (!tr_parse_i64(v, &iv) || iv < 0 || iv > 0x7fffffff) return usage("--seed wants an integer in [0, 2^31), not '%s'", v);
      o.seed = (uint64_t)iv;
    } else if (strcmp(name, "--stop-after") == 0) {
      if (!tr_parse_i64(v, &iv) || iv < 1) return usage("--stop-after wants a positive integer, not '%s'", v);
      o.stop_after = iv;
    } else if (strcmp(name, "--limit-train") == 0) {
      if (!tr_parse_i64(v, &iv) || iv < 1) return usage("--limit-train wants a positive integer, not '%s'", v);
      o.limit_train = iv;
    } else if (strcmp(name, "--limit-test") == 0) {
      if (!tr_parse_i64(v, &iv) || iv < 1) return usage("--limit-test wants a positive integer, not '%s'", v);
      o.limit_test = iv;
    } else if (strcmp(name, "--data") == 0) {
      o.data = v;
    } else if (strcmp(name, "--out") == 0) {
      o.out = v;
    } else if (strcmp(name, "--resume") == 0) {
      o.resume = v;
    } else if (strcmp(name, "--device") == 0) {
      o.device = v;
    } else {
      return usage("unknown option '%s'", name);
    }
  }
  if (o.epochs < 0) o.epochs = o.m->epochs;
  if (o.lr < 0) o.lr = o.m->lr;
  if (!o.data) o.data = default_data_dir();
  return tr_run_ranks("train", &argc, &argv, run_ctx, &o);
}


static int run(const train_opts *o) {
  const model_def *m = o->m;
  int n = m->n_params;
  int rc = T_FAIL;
  ry_status s = NULL;
  double t_start = tr_now_s();
  ry_array *tr_x = NULL, *tr_y = NULL, *te_x = NULL, *te_y = NULL;
  ry_params *like = NULL, *state_like = NULL;
  ry_graph *loss_g = NULL;
  ry_jit *step_j = NULL, *eval_j = NULL, *init_j = NULL;
  ry_batches *train_it = NULL, *test_it = NULL;
  ry_device *dev = NULL;
  ry_array *params[64] = {0}, *state[140] = {0};
  FILE *csv = NULL, *steps_csv = NULL;
  train_ctx c = {0};
  int n_state = 0;
  int n_ranks = ry_dist_size(), lead = ry_dist_rank() == 0;
  /* only rank 0 prints; errors go to stderr on every rank */
  if (!lead && !freopen("/dev/null", "w", stdout)) return T_FAIL;
  if (o->batch % n_ranks) {
    fprintf(stderr, "ryft train: --batch %" PRId64 " cannot be split over %d ranks (make it a multiple of %d)\n", o->batch, n_ranks,
            n_ranks);
    return T_FAIL;
  }

  /* data */
  if ((s = load_split(o->data, "train", o->limit_train, &tr_x, &tr_y))) return fail(s, NULL);
  if ((s = load_split(o->data, "t10k", o->limit_test, &te_x, &te_y))) {
    rc = fail(s, NULL);
    goto done;
  }
  int64_t n_train = ry_array_shape(tr_x).dims[0], n_test = ry_array_shape(te_x).dims[0];
  if (n_train < o->batch) {
    fprintf(stderr, "ryft train: %" PRId64 " training examples are fewer than one batch of %" PRId64 "\n", n_train, o->batch);
    goto done;
  }
  int64_t steps_per_epoch = n_train / o->batch, total_steps = steps_per_epoch * o->epochs;

  if ((s = ry_device_get(o->device, &dev))) {
    rc = fail(s, NULL);
    goto done;
  }

  /* optimizer: Adam, linear warmup over the first 2% of steps, cosine decay to 0 */
  c.m = m;
  c.seed = o->seed;
  c.n_ranks = n_ranks;
  c.opt = ry_nn_optimizer_default(RY_NN_ADAM, o->lr);
  c.opt.lr.kind = RY_NN_SCHED_WARMUP_COSINE;
  c.opt.lr.init_value = 0.0;
  c.opt.lr.value = o->lr;
  c.opt.lr.end_value = 0.0;
  c.opt.lr.warmup_steps = total_steps / 50;
  c.opt.lr.decay_steps = total_steps;
  n_state = n * ry_nn_opt_state_per_param(&c.opt) + 1;

  /* the parameter tree's paths and types */
  like = ry_params_new();
  if (!like) {
    fprintf(stderr, "ryft train: out of memory\n");
    goto done;
  }
  for (int i = 0; i < n && !s; i++) {
    ry_array *z = NULL;
    s = ry_array_zeros(RY_F32, ry_shape_make(m->params[i].rank, m->params[i].dims), &z);
    if (!s) s = ry_params_set_owned(like, m->params[i].path, z);
  }
  if (s) {
    rc = fail(s, "building the parameter tree");
    goto done;
  }
  c.like = like;

  /* programs */
  ry_type ltypes[66];
  ry_params_types(like, ltypes);
  ltypes[n] = (ry_type){RY_U8, RY_SHAPE(o->batch / n_ranks, 28, 28)};
  ltypes[n + 1] = (ry_type){RY_U8, RY_SHAPE(o->batch / n_ranks)};
  int argnums[64];
  for (int i = 0; i < n; i++) argnums[i] = i;
  ry_grad_opts go = {n, argnums, 0};
  if ((s = ry_trace("loss", loss_fn, &c, n + 2, ltypes, NULL, &loss_g)) || (s = ry_value_and_grad(loss_g, &go, &c.loss_vg)) ||
      (s = ry_jit_new("train_step", step_fn, &c, dev, &step_j)) || (s = ry_jit_new("eval", eval_fn, &c, dev, &eval_j)) ||
      (s = ry_jit_new("init", init_fn, &c, dev, &init_j))) {
    rc = fail(s, "building the training program");
    goto done;
  }

  /* Adam's state as a tree: mu/<path>, nu/<path> per parameter, then count */
  if ((s = ry_nn_opt_state_tree(&c.opt, like, &state_like))) {
    rc = fail(s, NULL);
    goto done;
  }
  /* the train step is lowered now, so that its module compiles while the
     parameters are initialized and the first batches are read (the cpu
     device compiles in the background), not at the first step */
  {
    ry_type st_types[210];
    ry_executable *ahead;
    for (int i = 0; i < n; i++) st_types[i] = ltypes[i];
    for (int i = 0; i < n_state; i++) st_types[n + i] = ry_array_type(ry_params_at(state_like, i));
    st_types[n + n_state] = ltypes[n];
    st_types[n + n_state + 1] = ltypes[n + 1];
    if ((s = ry_jit_lower(step_j, n + n_state + 2, st_types, &ahead))) {
      rc = fail(s, "compiling the training step");
      goto done;
    }
  }
  /* initial parameters and optimizer state */
  if ((s = ry_jit_call(init_j, 0, NULL, n, params))) {
    rc = fail(s, "initializing the parameters");
    goto done;
  }
  for (int i = 0; i < n_state; i++) state[i] = ry_array_retain(ry_params_at(state_like, i));
  int64_t start_epoch = 0;
  if (o->resume) {
    if ((s = read_checkpoint(o->resume, like, state_like, params, state, m->name, &start_epoch))) {
      rc = fail(s, "--resume");
      goto done;
    }
    if (start_epoch >= o->epochs) {
      printf("checkpoint %s has already trained %" PRId64 " of %" PRId64 " epochs: nothing to do\n", o->resume, start_epoch,
             o->epochs);
      rc = T_OK;
      goto done;
    }
  }

  if (lead && mkdir(o->out, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "ryft train: cannot create %s: %s\n", o->out, strerror(errno));
    goto done;
  }
  char path[1200], ckpt[1200];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", o->out);
  snprintf(path, sizeof path, "%s/metrics.csv", o->out);
  csv = lead ? tr_open_log(path, o->resume) : NULL;
  if (csv && !o->resume) fprintf(csv, "epoch,steps,train_loss,test_loss,test_accuracy,seconds\n");
  snprintf(path, sizeof path, "%s/steps.csv", o->out);
  steps_csv = lead ? tr_open_log(path, o->resume) : NULL;
  if (steps_csv && !o->resume) fprintf(steps_csv, "step,loss\n");
  if (lead && (!csv || !steps_csv)) {
    fprintf(stderr, "ryft train: cannot write %s: %s\n", path, strerror(errno));
    goto done;
  }

  {
    ry_array *tr[2] = {tr_x, tr_y}, *te[2] = {te_x, te_y};
    int64_t eval_batch = 500;
    if ((s = ry_batches_new(2, tr, o->batch, NULL, 1, &train_it)) || (s = ry_batches_new(2, te, eval_batch, NULL, 0, &test_it))) {
      rc = fail(s, NULL);
      goto done;
    }
  }

  printf("ryft train: model %s (%" PRId64 " parameters), %" PRId64 " train / %" PRId64 " test examples, batch %" PRId64
         ", %" PRId64 " epochs, Adam lr %g (warmup + cosine), device %s\n",
         m->name, ry_params_numel(like), n_train, n_test, o->batch, o->epochs, o->lr, ry_device_name(dev));
  if (n_ranks > 1)
    printf("data-parallel over %d MPI ranks: %" PRId64 " rows of each batch per rank, gradients averaged in the step\n", n_ranks,
           o->batch / n_ranks);
  if (o->resume) printf("resuming from %s after epoch %" PRId64 "\n", o->resume, start_epoch);
  fflush(stdout);

  tr_progress pg = {0};
  bool donate[210];
  for (int i = 0; i < n + n_state + 2; i++) donate[i] = i < n + n_state;
  double last_acc = 0;
  int64_t end_epoch = o->stop_after > 0 && o->stop_after < o->epochs ? o->stop_after : o->epochs;
  for (int64_t epoch = start_epoch; epoch < end_epoch; epoch++) {
    ry_key key = ry_key_fold_in(ry_key_from_seed((int64_t)o->seed), (uint32_t)epoch);
    if ((s = ry_batches_reset(train_it, &key))) {
      rc = fail(s, NULL);
      goto done;
    }
    tr_progress_start(&pg, steps_per_epoch);
    double comm0 = ry_dist_comm_seconds();
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", (int)epoch + 1, (int)o->epochs);
    double loss_sum = 0;
    for (int64_t st = 0; st < steps_per_epoch; st++) {
      ry_array *batch[2] = {NULL, NULL};
      if ((s = ry_batches_next(train_it, batch)) || !batch[0]) {
        if (!s) s = ry_status_make(RY_ERR_INTERNAL, "the batch iterator ended early");
        rc = fail(s, NULL);
        goto done;
      }
      if (n_ranks > 1) { /* this rank's rows of the global batch */
        for (int k = 0; k < 2 && !s; k++) {
          ry_array *local = NULL;
          s = ry_dist_shard_rows(batch[k], &local);
          ry_array_release(batch[k]);
          batch[k] = local;
        }
        if (s) {
          ry_array_release(batch[0]);
          ry_array_release(batch[1]);
          rc = fail(s, NULL);
          goto done;
        }
      }
      ry_array *in[210], *out[210];
      for (int i = 0; i < n; i++) in[i] = params[i];
      for (int i = 0; i < n_state; i++) in[n + i] = state[i];
      in[n + n_state] = batch[0];
      in[n + n_state + 1] = batch[1];
      /* params and state are donated: the call takes our references */
      for (int i = 0; i < n; i++) params[i] = NULL;
      for (int i = 0; i < n_state; i++) state[i] = NULL;
      s = ry_jit_call_donated(step_j, n + n_state + 2, in, donate, n + n_state + 1, out);
      ry_array_release(batch[0]);
      ry_array_release(batch[1]);
      if (s) {
        rc = fail(s, "training step");
        goto done;
      }
      for (int i = 0; i < n; i++) params[i] = out[i];
      for (int i = 0; i < n_state; i++) state[i] = out[n + i];
      double loss = ry_array_get_f64(out[n + n_state], 0);
      ry_array_release(out[n + n_state]);
      if (!isfinite(loss)) {
        report_non_finite(loss, epoch + 1, st + 1, m, params, n);
        goto done;
      }
      loss_sum += loss;
      if (steps_csv) fprintf(steps_csv, "%" PRId64 ",%.6f\n", epoch * steps_per_epoch + st + 1, loss);
      tr_progress_draw(&pg, label, st + 1, loss_sum / (double)(st + 1), st + 1 == steps_per_epoch);
    }
    double train_time = tr_now_s() - pg.t0, comm_time = ry_dist_comm_seconds() - comm0;
    /* evaluate */
    int64_t correct = 0;
    double test_loss = 0;
    if ((s = ry_batches_reset(test_it, NULL))) {
      rc = fail(s, NULL);
      goto done;
    }
    for (;;) {
      ry_array *batch[2] = {NULL, NULL}, *in[66], *out[2];
      if ((s = ry_batches_next(test_it, batch))) {
        rc = fail(s, NULL);
        goto done;
      }
      if (!batch[0]) break;
      for (int i = 0; i < n; i++) in[i] = params[i];
      in[n] = batch[0];
      in[n + 1] = batch[1];
      s = ry_jit_call(eval_j, n + 2, in, 2, out);
      ry_array_release(batch[0]);
      ry_array_release(batch[1]);
      if (s) {
        rc = fail(s, "evaluation");
        goto done;
      }
      correct += ry_array_get_i64(out[0], 0);
      test_loss += ry_array_get_f64(out[1], 0);
      ry_array_release(out[0]);
      ry_array_release(out[1]);
    }
    last_acc = (double)correct / (double)n_test;
    printf("epoch %" PRId64 "/%" PRId64 ": train loss %.4f, test loss %.4f, test accuracy %.2f%% (%.1f s, %.1f steps/s)\n", epoch + 1,
           o->epochs, loss_sum / (double)steps_per_epoch, test_loss / (double)n_test, 100.0 * last_acc, train_time,
           (double)steps_per_epoch / train_time);
    if (n_ranks > 1)
      printf("  communication: %.2f ms per step (%.0f%% of the step time)\n", 1e3 * comm_time / (double)steps_per_epoch,
             100.0 * comm_time / train_time);
    if (!lead) continue;
    fprintf(csv, "%" PRId64 ",%" PRId64 ",%.6f,%.6f,%.6f,%.3f\n", epoch + 1, (epoch + 1) * steps_per_epoch,
            loss_sum / (double)steps_per_epoch, test_loss / (double)n_test, last_acc, tr_now_s() - t_start);
    fflush(csv);
    fflush(steps_csv);
    if ((s = write_checkpoint(ckpt, like, state_like, params, state, m->name, epoch + 1, o->seed))) {
      rc = fail(s, "writing the checkpoint");
      goto done;
    }
    fflush(stdout);
  }
  if (csv) fclose(csv);
  if (steps_csv) fclose(steps_csv);
  csv = steps_csv = NULL;
  printf("final test accuracy %.2f%% in %.1f s; checkpoint %s, metrics %s/metrics.csv\n", 100.0 * last_acc, tr_now_s() - t_start, ckpt,
         o->out);
  if (!o->no_plot && lead) plot(o->out);
  rc = T_OK;

done:
  if (csv) fclose(csv);
  if (steps_csv) fclose(steps_csv);
  for (int i = 0; i < 64; i++) ry_array_release(params[i]);
  for (int i = 0; i < 140; i++) ry_array_release(state[i]);
  ry_batches_free(train_it);
  ry_batches_free(test_it);
  ry_jit_free(step_j);
  ry_jit_free(eval_j);
  ry_jit_free(init_j);
  ry_graph_release(c.loss_vg);
  ry_graph_release(loss_g);
  ry_params_free(like);
  ry_params_free(state_like);
  ry_array_release(tr_x);
  ry_array_release(tr_y);
  ry_array_release(te_x);
  ry_array_release(te_y);
  return rc;
}
