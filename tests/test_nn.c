/* ryft/nn.h: forward goldens from JAX/Flax/Optax (tests/golden/nn.ngolden,
 * written by gen_nn_goldens.py) on the interpreter and the cpu device,
 * gradients of every layer and loss against central finite differences in
 * f64, error messages, and `ryft train`: a fixed seed trains bitwise
 * identically, 2 epochs == 1 epoch + resume 1, and bad datasets and
 * checkpoints fail with clear messages. */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "golden.h"
#include "ryft/nn.h"
#include "testlib.h"
#include "train_testlib.h"

/* ---- the programs of the golden cases (also used by the gradient checks) ---- */

static const ry_nn_conv_opts k_same_im2col = {.padding = RY_NN_SAME, .lowering = RY_NN_CONV_IM2COL};
static const ry_nn_conv_opts k_same_prim = {.padding = RY_NN_SAME, .lowering = RY_NN_CONV_PRIMITIVE};

#define FN(name) static int name(ry_builder *b, const ry_value *in, ry_value *out, void *ctx)
FN(f_linear) { (void)ctx; out[0] = ry_nn_linear(b, in[0], in[1], in[2]); return 1; }
FN(f_conv_same) { out[0] = ry_nn_conv2d(b, in[0], in[1], in[2], ctx ? (const ry_nn_conv_opts *)ctx : &k_same_prim); return 1; }
FN(f_conv_valid_s2) {
  (void)ctx;
  ry_nn_conv_opts o = {.stride = {2, 2}, .padding = RY_NN_VALID}; /* stride 2: the primitive */
  out[0] = ry_nn_conv2d(b, in[0], in[1], in[2], &o);
  return 1;
}
FN(f_max_pool_2) { (void)ctx; out[0] = ry_nn_max_pool2d(b, in[0], 2, 2); return 1; }
FN(f_avg_pool_2) { (void)ctx; out[0] = ry_nn_avg_pool2d(b, in[0], 2, 2); return 1; }
FN(f_max_pool_3_s2) { (void)ctx; out[0] = ry_nn_max_pool2d(b, in[0], 3, 2); return 1; }
FN(f_avg_pool_3_s1) { (void)ctx; out[0] = ry_nn_avg_pool2d(b, in[0], 3, 1); return 1; }
FN(f_layer_norm) { (void)ctx; out[0] = ry_nn_layer_norm(b, in[0], in[1], in[2], 1e-6); return 1; }
FN(f_rms_norm) { (void)ctx; out[0] = ry_nn_rms_norm(b, in[0], in[1], 1e-6); return 1; }
FN(f_bn_train) {
  (void)ctx;
  out[0] = ry_nn_batch_norm(b, in[0], in[1], in[2], in[3], in[4], 1, 0.9, 1e-5, &out[1], &out[2]);
  return 3;
}
FN(f_bn_eval) { (void)ctx; out[0] = ry_nn_batch_norm(b, in[0], in[1], in[2], in[3], in[4], 0, 0.9, 1e-5, NULL, NULL); return 1; }
/* the same with a positive variance for any input (gradient check) */
FN(f_bn_eval_pos) {
  (void)ctx;
  ry_value var = ry_add(b, ry_mul(b, in[4], in[4]), ry_scalar(b, RY_F64, 0.5));
  out[0] = ry_nn_batch_norm(b, in[0], in[1], in[2], in[3], var, 0, 0.9, 1e-5, NULL, NULL);
  return 1;
}
FN(f_embedding) { (void)ctx; out[0] = ry_nn_embedding(b, in[0], in[1]); return 1; }
FN(f_dropout) { (void)ctx; out[0] = ry_nn_dropout(b, in[0], in[1], 0.3, 1); return 1; }
FN(f_mlp_gelu_tanh) { (void)ctx; out[0] = ry_nn_mlp_block(b, in[0], in[1], in[2], in[3], in[4], RY_NN_GELU_TANH); return 1; }
FN(f_mlp_gelu) { (void)ctx; out[0] = ry_nn_mlp_block(b, in[0], in[1], in[2], in[3], in[4], RY_NN_GELU); return 1; }
FN(f_mlp_silu) { (void)ctx; out[0] = ry_nn_mlp_block(b, in[0], in[1], in[2], in[3], in[4], RY_NN_SILU); return 1; }
FN(f_swiglu) { (void)ctx; out[0] = ry_nn_swiglu(b, in[0], in[1], in[2], in[3]); return 1; }
FN(f_leaky_relu) { (void)ctx; out[0] = ry_nn_leaky_relu(b, in[0], 0.1); return 1; }
FN(f_rope) { (void)ctx; out[0] = ry_nn_rope(b, in[0], 10000.0); return 1; }
FN(f_attn_causal) { (void)ctx; out[0] = ry_nn_attention(b, in[0], in[1], in[2], 1); return 1; }
FN(f_attn) { (void)ctx; out[0] = ry_nn_attention(b, in[0], in[1], in[2], 0); return 1; }
FN(f_mha) { (void)ctx; out[0] = ry_nn_mha(b, in[0], in[1], in[2], in[3], in[4], 4, 2, 1, 10000.0); return 1; }
FN(f_ce) { (void)ctx; out[0] = ry_nn_cross_entropy(b, in[0], in[1]); return 1; }
FN(f_bce) { (void)ctx; out[0] = ry_nn_binary_cross_entropy(b, in[0], in[1]); return 1; }
FN(f_mse) { (void)ctx; out[0] = ry_nn_mse(b, in[0], in[1]); return 1; }
FN(f_acc) { (void)ctx; out[0] = ry_nn_accuracy(b, in[0], in[1]); return 1; }
FN(f_top2) { (void)ctx; out[0] = ry_nn_top_k_accuracy(b, in[0], in[1], 2); return 1; }

typedef struct init_case { ry_nn_init kind; double scale; } init_case;
static int f_init(ry_builder *b, const ry_value *in, ry_value *out, void *ctx);
static ry_shape g_init_shape; /* the expected output's shape, set per case */
static int f_init(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const init_case *c = ctx;
  out[0] = ry_nn_initialize(b, c->kind, in[0], RY_F32, g_init_shape, c->scale);
  return 1;
}
static const init_case k_glorot_u = {RY_NN_INIT_GLOROT_UNIFORM, 0}, k_glorot_n = {RY_NN_INIT_GLOROT_NORMAL, 0},
                       k_he_u = {RY_NN_INIT_HE_UNIFORM, 0}, k_he_n = {RY_NN_INIT_HE_NORMAL, 0},
                       k_lecun = {RY_NN_INIT_LECUN_NORMAL, 0}, k_normal = {RY_NN_INIT_NORMAL, 0.02};

/* optimizers: (p0, p1, g1a, g1b, g2a, g2b, g3a, g3b) -> params after each step */
static int f_opt(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const ry_nn_optimizer *o = ctx;
  ry_value p[2] = {in[0], in[1]}, st[8], np[2], nst[8];
  ry_nn_opt_init(b, o, 2, p, st);
  int n_state = 2 * ry_nn_opt_state_per_param(o) + 1;
  for (int step = 0; step < 3; step++) {
    ry_nn_opt_update(b, o, 2, p, in + 2 + 2 * step, st, np, nst);
    for (int i = 0; i < 2; i++) p[i] = out[2 * step + i] = np[i];
    for (int i = 0; i < n_state; i++) st[i] = nst[i];
  }
  return 6;
}

static ry_nn_optimizer g_opts[9];
static void make_opts(void) {
  g_opts[0] = ry_nn_optimizer_default(RY_NN_SGD, 0.1);
  g_opts[1] = ry_nn_optimizer_default(RY_NN_SGD, 0.1);
  g_opts[1].momentum = 0.9;
  g_opts[2] = g_opts[1];
  g_opts[2].nesterov = 1;
  g_opts[3] = ry_nn_optimizer_default(RY_NN_ADAM, 0.01);
  g_opts[4] = ry_nn_optimizer_default(RY_NN_ADAMW, 0.01);
  g_opts[4].weight_decay = 0.1;
  g_opts[5] = ry_nn_optimizer_default(RY_NN_LION, 0.01);
  g_opts[5].weight_decay = 0.1;
  g_opts[6] = ry_nn_optimizer_default(RY_NN_ADAM, 0.01);
  g_opts[6].clip_norm = 1.0;
  g_opts[7] = ry_nn_optimizer_default(RY_NN_ADAM, 0.0);
  g_opts[7].lr = (ry_nn_schedule){.kind = RY_NN_SCHED_WARMUP_COSINE, .init_value = 0.0, .value = 0.05, .end_value = 0.001,
                                  .warmup_steps = 2, .decay_steps = 3};
  g_opts[8] = ry_nn_optimizer_default(RY_NN_SGD, 0.0);
  g_opts[8].lr = (ry_nn_schedule){.kind = RY_NN_SCHED_STEP, .value = 0.1, .step_size = 2, .gamma = 0.5};
}

typedef struct golden_fn {
  const char *name;
  ry_fn fn;
  const void *ctx;
} golden_fn;

static const golden_fn k_golden_fns[] = {
    {"linear", f_linear, NULL},
    {"linear_rank3", f_linear, NULL},
    {"conv2d_same", f_conv_same, &k_same_prim},
    {"conv2d_same_even", f_conv_same, &k_same_prim},
    {"conv2d_valid_stride2", f_conv_valid_s2, NULL},
    {"max_pool_2", f_max_pool_2, NULL},
    {"avg_pool_2", f_avg_pool_2, NULL},
    {"max_pool_3_s2", f_max_pool_3_s2, NULL},
    {"avg_pool_3_s1", f_avg_pool_3_s1, NULL},
    {"layer_norm", f_layer_norm, NULL},
    {"rms_norm", f_rms_norm, NULL},
    {"batch_norm_train", f_bn_train, NULL},
    {"batch_norm_eval", f_bn_eval, NULL},
    {"embedding", f_embedding, NULL},
    {"dropout", f_dropout, NULL},
    {"mlp_gelu_tanh", f_mlp_gelu_tanh, NULL},
    {"mlp_gelu", f_mlp_gelu, NULL},
    {"mlp_silu", f_mlp_silu, NULL},
    {"swiglu", f_swiglu, NULL},
    {"leaky_relu", f_leaky_relu, NULL},
    {"rope", f_rope, NULL},
    {"attention_causal_gqa", f_attn_causal, NULL},
    {"attention_mha", f_attn, NULL},
    {"mha_rope_gqa", f_mha, NULL},
    {"init_glorot_uniform", f_init, &k_glorot_u},
    {"init_glorot_normal", f_init, &k_glorot_n},
    {"init_he_uniform", f_init, &k_he_u},
    {"init_he_normal", f_init, &k_he_n},
    {"init_lecun_normal", f_init, &k_lecun},
    {"init_normal", f_init, &k_normal},
    {"cross_entropy", f_ce, NULL},
    {"cross_entropy_large_logits", f_ce, NULL},
    {"binary_cross_entropy", f_bce, NULL},
    {"mse", f_mse, NULL},
    {"accuracy", f_acc, NULL},
    {"top2_accuracy", f_top2, NULL},
    {"opt_sgd", f_opt, &g_opts[0]},
    {"opt_sgd_momentum", f_opt, &g_opts[1]},
    {"opt_sgd_nesterov", f_opt, &g_opts[2]},
    {"opt_adam", f_opt, &g_opts[3]},
    {"opt_adamw", f_opt, &g_opts[4]},
    {"opt_lion", f_opt, &g_opts[5]},
    {"opt_adam_clip", f_opt, &g_opts[6]},
    {"opt_adam_warmup_cosine", f_opt, &g_opts[7]},
    {"opt_sgd_step", f_opt, &g_opts[8]},
};

static const golden_fn *find_fn(const char *name) {
  for (size_t i = 0; i < sizeof k_golden_fns / sizeof k_golden_fns[0]; i++)
    if (strcmp(k_golden_fns[i].name, name) == 0) return &k_golden_fns[i];
  return NULL;
}

static void compare(const char *what, ry_array *got, ry_array *want, double rtol, double atol) {
  char t1[64], t2[64];
  if (!ry_type_equal(ry_array_type(got), ry_array_type(want))) {
    rt_fail(__FILE__, __LINE__, "%s: got %s, want %s", what, ry_type_str(ry_array_type(got), t1, sizeof t1),
            ry_type_str(ry_array_type(want), t2, sizeof t2));
    return;
  }
  int64_t n = ry_array_numel(want);
  for (int64_t i = 0; i < n; i++) {
    double g = ry_array_get_f64(got, i), w = ry_array_get_f64(want, i);
    if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
      rt_fail(__FILE__, __LINE__, "%s: element %lld: got %.9g, want %.9g", what, (long long)i, g, w);
      return;
    }
  }
}

/* run one case on a device; a conv case also runs with im2col */
static void run_case(const char *name, const golden_fn *gf, const void *ctx, int n_in, ry_array **ins, int n_out, ry_array **outs,
                     double rtol, double atol, const char *device) {
  ry_type types[16];
  for (int i = 0; i < n_in; i++) types[i] = ry_array_type(ins[i]);
  if (gf->fn == f_init) g_init_shape = ry_array_shape(outs[0]);
  ry_graph *g = NULL;
  ry_status s = ry_trace(name, gf->fn, (void *)ctx, n_in, types, NULL, &g);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: trace: %s", name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  ry_device *d = NULL;
  ry_array *got[16] = {0};
  CHECK_OK(ry_device_get(device, &d));
  s = ry_run(g, d, n_in, ins, n_out, got);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s@%s: run: %s", name, device, ry_status_message(s));
    ry_status_free(s);
  } else {
    for (int i = 0; i < n_out; i++) {
      char what[160];
      snprintf(what, sizeof what, "%s@%s output %d", name, device, i);
      compare(what, got[i], outs[i], rtol, atol);
      ry_array_release(got[i]);
    }
  }
  ry_graph_release(g);
}

TEST(nn_goldens) {
  make_opts();
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/golden/nn.ngolden", rt_source_dir());
  size_t len = 0;
  char *text = golden_read_file(path, &len);
  CHECK_MSG(text != NULL, "cannot read %s (run tests/golden/gen_nn_goldens.py)", path);
  if (!text) return;
  int n_cases = 0;
  char name[128] = "";
  double rtol = 1e-5, atol = 1e-6;
  ry_array *ins[16], *outs[16];
  int n_in = 0, n_out = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#') continue;
    if (strncmp(line, "case ", 5) == 0) {
      snprintf(name, sizeof name, "%s", line + 5);
      n_in = n_out = 0;
    } else if (strncmp(line, "tol ", 4) == 0) {
      sscanf(line + 4, "%lf %lf", &rtol, &atol);
    } else if (strncmp(line, "in ", 3) == 0 || strncmp(line, "out ", 4) == 0) {
      int is_in = line[0] == 'i';
      ry_array *a = golden_parse_array(line + (is_in ? 3 : 4));
      if (!a || (is_in ? n_in : n_out) >= 16) {
        rt_fail(__FILE__, __LINE__, "%s: bad line %.60s", name, line);
        ry_array_release(a);
      } else if (is_in) {
        ins[n_in++] = a;
      } else {
        outs[n_out++] = a;
      }
    } else if (strcmp(line, "end") == 0) {
      const golden_fn *gf = find_fn(name);
      char cname[160];
      snprintf(cname, sizeof cname, "nn/%s", name);
      rt_case_begin(cname);
      if (!gf) {
        rt_fail(__FILE__, __LINE__, "golden case %s has no C program in test_nn.c", name);
      } else {
        run_case(name, gf, gf->ctx, n_in, ins, n_out, outs, rtol, atol, "interp");
        run_case(name, gf, gf->ctx, n_in, ins, n_out, outs, rtol, atol, "cpu");
        if (gf->fn == f_conv_same) run_case(name, gf, &k_same_im2col, n_in, ins, n_out, outs, rtol, atol, "cpu");
      }
      rt_case_end();
      n_cases++;
      for (int i = 0; i < n_in; i++) ry_array_release(ins[i]);
      for (int i = 0; i < n_out; i++) ry_array_release(outs[i]);
      n_in = n_out = 0;
    }
  }
  free(text);
  CHECK(n_cases >= (int)(sizeof k_golden_fns / sizeof k_golden_fns[0]));
}

/* ---- gradients against finite differences (f64) ---- */

typedef struct gc_ctx {
  ry_fn fn;
  const void *ctx;
} gc_ctx;

/* scalar = sum(fn(x...)[0] * weights), weights a fixed function of the index */
static int gc_scalar(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const gc_ctx *c = vctx;
  ry_value y[8];
  if (c->fn(b, in, y, (void *)c->ctx) < 1) return -1;
  ry_shape s = ry_value_shape(b, y[0]);
  ry_value idx = ry_reshape(b, ry_iota(b, RY_F64, RY_SHAPE(ry_shape_numel(s)), 0), s);
  ry_value wts = ry_cos(b, ry_mul(b, idx, ry_scalar(b, RY_F64, 0.7)));
  ry_value yy = ry_convert(b, y[0], RY_F64);
  out[0] = ry_sum_keepdims(b, ry_mul(b, yy, wts), RY_NO_AXES, 0);
  return 1;
}

static uint64_t g_lcg = 88172645463325252ull;
static double rnd(void) {
  g_lcg = g_lcg * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_lcg >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* types: inputs (f64 ones are differentiated unless int); int inputs get
 * values in [0, int_hi) */
static void grad_check(const char *name, ry_fn fn, const void *ctx, int n_in, const ry_type *types, int int_hi, const char *device) {
  rt_case_begin(name);
  gc_ctx c = {fn, ctx};
  ry_graph *f = NULL, *gr = NULL;
  ry_array *in[8] = {0};
  int argnums[8], n_arg = 0;
  for (int i = 0; i < n_in; i++) {
    int64_t n = ry_shape_numel(types[i].shape);
    double *buf = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int32_t *ib = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (int64_t k = 0; k < n; k++) {
      buf[k] = rnd();
      ib[k] = (int32_t)((rnd() + 1.0) * 0.5 * int_hi) % (int_hi ? int_hi : 1);
    }
    if (types[i].dtype == RY_F64) {
      CHECK_OK(ry_array_from_host(RY_F64, types[i].shape, buf, &in[i]));
      argnums[n_arg++] = i;
    } else if (types[i].dtype == RY_U32) {
      uint32_t key[2] = {0, 7};
      CHECK_OK(ry_array_from_host(RY_U32, types[i].shape, key, &in[i]));
    } else {
      CHECK_OK(ry_array_from_host(RY_I32, types[i].shape, ib, &in[i]));
    }
    free(buf);
    free(ib);
  }
  ry_grad_opts go = {n_arg, argnums, 0};
  ry_status s = ry_trace(name, gc_scalar, &c, n_in, types, NULL, &f);
  if (!s) s = ry_grad(f, &go, &gr);
  ry_device *d = NULL;
  ry_executable *ef = NULL, *eg = NULL;
  if (!s) s = ry_device_get(device, &d);
  if (!s) s = ry_compile(f, d, &ef);
  if (!s) s = ry_compile(gr, d, &eg);
  ry_array *g[8] = {0};
  if (!s) s = ry_execute(eg, n_in, in, n_arg, g);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: %s", name, ry_status_message(s));
    ry_status_free(s);
  } else {
    const double h = 1e-6;
    for (int a = 0; a < n_arg; a++) {
      int i = argnums[a];
      int64_t n = ry_array_numel(in[i]);
      double *x = malloc(sizeof(double) * (size_t)n);
      CHECK_OK(ry_array_to_host(in[i], x, sizeof(double) * (size_t)n));
      ry_array *orig = in[i];
      int bad = 0;
      for (int64_t k = 0; k < n && !bad; k++) {
        double fv[2];
        for (int sgn = 0; sgn < 2; sgn++) {
          double save = x[k];
          x[k] = save + (sgn ? -h : h);
          ry_array *pert = NULL, *o = NULL;
          CHECK_OK(ry_array_from_host(RY_F64, ry_array_shape(orig), x, &pert));
          in[i] = pert;
          CHECK_OK(ry_execute(ef, n_in, in, 1, &o));
          fv[sgn] = o ? ry_array_get_f64(o, 0) : NAN;
          ry_array_release(o);
          ry_array_release(pert);
          x[k] = save;
        }
        in[i] = orig;
        double fd = (fv[0] - fv[1]) / (2 * h), an = ry_array_get_f64(g[a], k);
        if (!(fabs(fd - an) <= 1e-5 + 1e-5 * fabs(fd))) {
          rt_fail(__FILE__, __LINE__, "%s@%s: d/d input %d [%lld]: grad %.10g, finite difference %.10g", name, device, i, (long long)k,
                  an, fd);
          bad = 1;
        }
      }
      free(x);
    }
  }
  for (int i = 0; i < 8; i++) {
    ry_array_release(in[i]);
    ry_array_release(g[i]);
  }
  ry_executable_free(ef);
  ry_executable_free(eg);
  ry_graph_release(f);
  ry_graph_release(gr);
  rt_case_end();
}

#define T64(...) ((ry_type){RY_F64, RY_SHAPE(__VA_ARGS__)})
#define TI32(...) ((ry_type){RY_I32, RY_SHAPE(__VA_ARGS__)})

TEST(nn_grad_layers) {
  ry_type t[8];
  t[0] = T64(3, 4), t[1] = T64(4, 5), t[2] = T64(5);
  grad_check("grad/linear", f_linear, NULL, 3, t, 0, "interp");
  t[0] = T64(2, 5, 5, 2), t[1] = T64(3, 3, 2, 3), t[2] = T64(3);
  grad_check("grad/conv2d_same", f_conv_same, &k_same_prim, 3, t, 0, "interp");
  grad_check("grad/conv2d_same_im2col", f_conv_same, &k_same_im2col, 3, t, 0, "interp");
  grad_check("grad/conv2d_same_im2col@cpu", f_conv_same, &k_same_im2col, 3, t, 0, "cpu");
  grad_check("grad/conv2d_same@cpu", f_conv_same, &k_same_prim, 3, t, 0, "cpu");
  t[0] = T64(1, 4, 5, 2), t[1] = T64(2, 3, 2, 3), t[2] = T64(3);
  grad_check("grad/conv2d_same_even_im2col", f_conv_same, &k_same_im2col, 3, t, 0, "interp");
  t[0] = T64(1, 7, 7, 2), t[1] = T64(3, 3, 2, 2), t[2] = T64(2);
  grad_check("grad/conv2d_valid_stride2", f_conv_valid_s2, NULL, 3, t, 0, "interp");
  grad_check("grad/conv2d_valid_stride2@cpu", f_conv_valid_s2, NULL, 3, t, 0, "cpu");
  t[0] = T64(2, 4, 6, 3);
  grad_check("grad/max_pool_2", f_max_pool_2, NULL, 1, t, 0, "interp");
  grad_check("grad/avg_pool_2", f_avg_pool_2, NULL, 1, t, 0, "interp");
  t[0] = T64(1, 7, 7, 2);
  grad_check("grad/max_pool_3_s2", f_max_pool_3_s2, NULL, 1, t, 0, "interp");
  grad_check("grad/avg_pool_3_s1", f_avg_pool_3_s1, NULL, 1, t, 0, "interp");
  t[0] = T64(3, 5), t[1] = T64(5), t[2] = T64(5);
  grad_check("grad/layer_norm", f_layer_norm, NULL, 3, t, 0, "interp");
  grad_check("grad/rms_norm", f_rms_norm, NULL, 2, t, 0, "interp");
  t[0] = T64(4, 3), t[1] = T64(3), t[2] = T64(3), t[3] = T64(3), t[4] = T64(3);
  grad_check("grad/batch_norm_train", f_bn_train, NULL, 5, t, 0, "interp");
  grad_check("grad/batch_norm_eval", f_bn_eval_pos, NULL, 5, t, 0, "interp");
  t[0] = T64(6, 3), t[1] = TI32(2, 3);
  grad_check("grad/embedding", f_embedding, NULL, 2, t, 6, "interp");
  t[0] = T64(4, 5), t[1] = (ry_type){RY_U32, RY_SHAPE(2)};
  grad_check("grad/dropout", f_dropout, NULL, 2, t, 0, "interp");
  t[0] = T64(2, 4), t[1] = T64(4, 6), t[2] = T64(6), t[3] = T64(6, 3), t[4] = T64(3);
  grad_check("grad/mlp_gelu_tanh", f_mlp_gelu_tanh, NULL, 5, t, 0, "interp");
  grad_check("grad/mlp_gelu", f_mlp_gelu, NULL, 5, t, 0, "interp");
  grad_check("grad/mlp_silu", f_mlp_silu, NULL, 5, t, 0, "interp");
  t[1] = T64(4, 6), t[2] = T64(4, 6), t[3] = T64(6, 3);
  grad_check("grad/swiglu", f_swiglu, NULL, 4, t, 0, "interp");
  grad_check("grad/leaky_relu", f_leaky_relu, NULL, 1, t, 0, "interp");
  t[0] = T64(1, 5, 2, 4);
  grad_check("grad/rope", f_rope, NULL, 1, t, 0, "interp");
  t[0] = T64(1, 4, 4, 3), t[1] = T64(1, 4, 2, 3), t[2] = T64(1, 4, 2, 3);
  grad_check("grad/attention_causal_gqa", f_attn_causal, NULL, 3, t, 0, "interp");
  t[0] = T64(1, 3, 8), t[1] = T64(8, 8), t[2] = T64(8, 4), t[3] = T64(8, 4), t[4] = T64(8, 8);
  grad_check("grad/mha_rope_gqa", f_mha, NULL, 5, t, 0, "interp");
}

TEST(nn_grad_losses) {
  ry_type t[2];
  t[0] = T64(6, 5), t[1] = TI32(6);
  grad_check("grad/cross_entropy", f_ce, NULL, 2, t, 5, "interp");
  t[1] = T64(6, 5);
  grad_check("grad/binary_cross_entropy", f_bce, NULL, 2, t, 0, "interp");
  grad_check("grad/mse", f_mse, NULL, 2, t, 0, "interp");
}

/* ---- numerics and errors ---- */

TEST(nn_cross_entropy_stable_for_huge_logits) {
  float logits[4] = {1e30f, -1e30f, 0.0f, 3e38f};
  int32_t labels[2] = {0, 0};
  ry_array *in[2] = {NULL, NULL}, *out = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(2, 2), logits, &in[0]));
  CHECK_OK(ry_array_from_host(RY_I32, RY_SHAPE(2), labels, &in[1]));
  ry_type t[2] = {ry_array_type(in[0]), ry_array_type(in[1])};
  ry_graph *g = NULL;
  ry_device *d = NULL;
  CHECK_OK(ry_trace("ce", f_ce, NULL, 2, t, NULL, &g));
  CHECK_OK(ry_device_get("interp", &d));
  CHECK_OK(ry_run(g, d, 2, in, 1, &out));
  /* example 0 is right by a huge margin (loss 0), example 1 wrong by 3e38:
   * the mean is 1.5e38, finite (no exp overflow) */
  if (out) CHECK_NEAR(ry_array_get_f64(out, 0), 1.5e38, 1e32);
  ry_array_release(out);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_graph_release(g);
}

static int bad_linear(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_linear(b, in[0], in[1], RY_NN_NONE);
  return 1;
}
static int bad_conv(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_conv2d(b, in[0], in[1], RY_NN_NONE, NULL);
  return 1;
}
static int bad_ce(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_cross_entropy(b, in[0], in[1]);
  return 1;
}
static int bad_attn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_attention(b, in[0], in[1], in[1], 1);
  return 1;
}

TEST(nn_errors_name_the_layer_and_shapes) {
  ry_graph *g = NULL;
  ry_type t[2] = {{RY_F32, RY_SHAPE(3, 4)}, {RY_F32, RY_SHAPE(5, 2)}};
  CHECK_ERR(ry_trace("x", bad_linear, NULL, 2, t, NULL, &g), RY_ERR_SHAPE, "nn.linear", "[3,4]", "[5,2]", "test_nn.c");
  ry_type tc[2] = {{RY_F32, RY_SHAPE(1, 8, 8, 3)}, {RY_F32, RY_SHAPE(3, 3, 2, 4)}};
  CHECK_ERR(ry_trace("x", bad_conv, NULL, 2, tc, NULL, &g), RY_ERR_SHAPE, "nn.conv2d", "[1,8,8,3]", "[3,3,2,4]");
  ry_type tl[2] = {{RY_F32, RY_SHAPE(4, 10)}, {RY_F32, RY_SHAPE(4)}};
  CHECK_ERR(ry_trace("x", bad_ce, NULL, 2, tl, NULL, &g), RY_ERR_DTYPE, "nn.cross_entropy", "integers");
  ry_type tl2[2] = {{RY_F32, RY_SHAPE(4, 10)}, {RY_I32, RY_SHAPE(5)}};
  CHECK_ERR(ry_trace("x", bad_ce, NULL, 2, tl2, NULL, &g), RY_ERR_SHAPE, "nn.cross_entropy", "[4,10]", "[5]");
  ry_type ta[2] = {{RY_F32, RY_SHAPE(1, 4, 3, 8)}, {RY_F32, RY_SHAPE(1, 4, 2, 8)}};
  CHECK_ERR(ry_trace("x", bad_attn, NULL, 2, ta, NULL, &g), RY_ERR_SHAPE, "nn.attention", "multiple");
}

TEST(nn_schedule_host_matches_graph) {
  ry_nn_schedule s = {.kind = RY_NN_SCHED_WARMUP_COSINE, .init_value = 0, .value = 1.0, .end_value = 0.1, .warmup_steps = 10,
                      .decay_steps = 110};
  CHECK_NEAR(ry_nn_schedule_eval(&s, 0), 0.0, 1e-12);
  CHECK_NEAR(ry_nn_schedule_eval(&s, 5), 0.5, 1e-12);
  CHECK_NEAR(ry_nn_schedule_eval(&s, 10), 1.0, 1e-12);
  CHECK_NEAR(ry_nn_schedule_eval(&s, 60), 0.55, 1e-12);
  CHECK_NEAR(ry_nn_schedule_eval(&s, 1000), 0.1, 1e-12);
  ry_nn_schedule st = {.kind = RY_NN_SCHED_STEP, .value = 1.0, .step_size = 3, .gamma = 0.5};
  CHECK_NEAR(ry_nn_schedule_eval(&st, 2), 1.0, 1e-12);
  CHECK_NEAR(ry_nn_schedule_eval(&st, 3), 0.5, 1e-12);
  CHECK_NEAR(ry_nn_schedule_eval(&st, 7), 0.25, 1e-12);
}

/* ---- `ryft train` ---- */

static char g_dir[1024];

static void remove_dir(void) { rmdir(g_dir); }

static const char *tdir(void) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "%s/test_tmp", RYFT_BINARY_DIR);
    mkdir(g_dir, 0777);
    snprintf(g_dir, sizeof g_dir, "%s/test_tmp/nn_%ld", RYFT_BINARY_DIR, (long)getpid());
    atexit(remove_dir); /* empty by then: every test removes its files */
  }
  mkdir(g_dir, 0777);
  return g_dir;
}

static void rm_sub(const char *sub) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", tdir(), sub);
  (void)!system(cmd);
}

#define sh rt_sh /* a shell command line, stdout+stderr captured (testlib.h) */

static ry_params *read_ckpt(const char *path) {
  ry_params *p = NULL;
  ry_status s = ry_safetensors_read(path, &p);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: %s", path, ry_status_message(s));
    ry_status_free(s);
  }
  return p;
}

#define TRAIN_ARGS "--model mlp --batch 32 --limit-train 256 --limit-test 64 --no-plot --seed 3"

TEST(nn_train_deterministic_and_resume_exact) {
  static char out[16384];
  char data[1100];
  snprintf(data, sizeof data, "%s/data", tdir());
  write_dataset(data, 300, 70);
  int rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --data %s --out %s/a", RYFT_CLI, data, tdir());
  CHECK_MSG(rc == 0, "train a: status %d:\n%s", rc, out);
  CHECK(strstr(out, "epoch 2/2") != NULL);
  CHECK(strstr(out, "test accuracy") != NULL);
  /* not a terminal: plain progress lines, no carriage returns */
  CHECK(strchr(out, '\r') == NULL);
  rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --data %s --out %s/b", RYFT_CLI, data, tdir());
  CHECK_MSG(rc == 0, "train b: status %d:\n%s", rc, out);
  rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --stop-after 1 --data %s --out %s/c", RYFT_CLI, data, tdir());
  CHECK_MSG(rc == 0, "train c: status %d:\n%s", rc, out);
  CHECK(strstr(out, "epoch 2/2") == NULL);
  rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --data %s --out %s/c --resume %s/c/checkpoint.safetensors", RYFT_CLI,
          data, tdir(), tdir());
  CHECK_MSG(rc == 0, "resume c: status %d:\n%s", rc, out);
  CHECK(strstr(out, "resuming") != NULL);
  char pa[1200], pb[1200], pc[1200];
  snprintf(pa, sizeof pa, "%s/a/checkpoint.safetensors", tdir());
  snprintf(pb, sizeof pb, "%s/b/checkpoint.safetensors", tdir());
  snprintf(pc, sizeof pc, "%s/c/checkpoint.safetensors", tdir());
  ry_params *a = read_ckpt(pa), *b = read_ckpt(pb), *c = read_ckpt(pc);
  if (a && b && c) {
    CHECK(ry_params_count(a) > 6);
    CHECK_MSG(ry_params_equal(a, b), "two runs with the same seed differ");
    CHECK_MSG(ry_params_equal(a, c), "1 epoch + resume 1 differs from 2 epochs");
  }
  ry_params_free(a);
  ry_params_free(b);
  ry_params_free(c);
  /* the CSV has a header and one row per epoch */
  char csv[1200];
  snprintf(csv, sizeof csv, "%s/a/metrics.csv", tdir());
  FILE *f = fopen(csv, "r");
  CHECK(f != NULL);
  if (f) {
    int lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) lines += ch == '\n';
    fclose(f);
    CHECK_EQ_INT(lines, 3);
  }
  /* a CNN also trains (tiny) */
  rc = sh(out, sizeof out, "%s train --model cnn --batch 32 --limit-train 64 --limit-test 32 --no-plot --epochs 1 --data %s --out %s/d",
          RYFT_CLI, data, tdir());
  CHECK_MSG(rc == 0, "train cnn: status %d:\n%s", rc, out);
  const char *subs[5] = {"a", "b", "c", "d", "data"};
  for (int i = 0; i < 5; i++) rm_sub(subs[i]);
}

/* the main job's plot: loss.png, drawn by gnuplot (tools/install-deps.sh
   installs it) */
TEST(nn_train_draws_the_plot) {
  static char out[16384];
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    rt_skip("gnuplot", "gnuplot is not installed (tools/install-deps.sh installs gnuplot-nox)");
    return;
  }
  char data[1100], png[1300];
  snprintf(data, sizeof data, "%s/data", tdir());
  write_dataset(data, 64, 32);
  int rc = sh(out, sizeof out, "%s train --model mlp --batch 32 --epochs 2 --seed 1 --data %s --out %s/plot", RYFT_CLI, data,
              tdir());
  CHECK_MSG(rc == 0, "train: status %d:\n%s", rc, out);
  CHECK_MSG(strstr(out, "plot: ") != NULL, "%s", out);
  snprintf(png, sizeof png, "%s/plot/loss.png", tdir());
  size_t len = 0;
  char *bytes = rt_read_file(png, &len);
  CHECK_MSG(bytes && len > 1000 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG (%zu bytes)", png, len);
  free(bytes);
  const char *subs[2] = {"plot", "data"};
  for (int i = 0; i < 2; i++) rm_sub(subs[i]);
}

TEST(nn_train_bad_input) {
  static char out[16384];
  char data[1100], p[1300];
  /* missing dataset */
  int rc = sh(out, sizeof out, "%s train --data %s/nonexistent --out %s/e", RYFT_CLI, tdir(), tdir());
  CHECK_EQ_INT(rc, 1);
  CHECK_MSG(strstr(out, "not found") && strstr(out, "train-images-idx3-ubyte"), "%s", out);
  /* bad command line */
  rc = sh(out, sizeof out, "%s train --model resnet", RYFT_CLI);
  CHECK_EQ_INT(rc, 2);
  CHECK(strstr(out, "unknown model") != NULL);
  rc = sh(out, sizeof out, "%s train --epochs zero", RYFT_CLI);
  CHECK_EQ_INT(rc, 2);
  /* a value past a limit names the limit */
  rc = sh(out, sizeof out, "%s train --batch 70000", RYFT_CLI);
  CHECK_EQ_INT(rc, 2);
  CHECK_MSG(strstr(out, "--batch wants an integer in [1, 65536], not '70000'") != NULL, "%s", out);
  /* an unknown option last on the line is unknown, not missing a value */
  rc = sh(out, sizeof out, "%s train --epochs 1 --bogus", RYFT_CLI);
  CHECK_EQ_INT(rc, 2);
  CHECK_MSG(strstr(out, "unknown option '--bogus'") && !strstr(out, "needs a value"), "%s", out);
  rc = sh(out, sizeof out, "%s train --epochs", RYFT_CLI);
  CHECK_EQ_INT(rc, 2);
  CHECK_MSG(strstr(out, "--epochs needs a value") != NULL, "%s", out);
  /* truncated image file */
  snprintf(data, sizeof data, "%s/trunc", tdir());
  write_dataset(data, 40, 20);
  snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", data);
  CHECK_EQ_INT(truncate(p, 16 + 784 * 10), 0);
  rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --data %s --out %s/f", RYFT_CLI, data, tdir());
  CHECK_EQ_INT(rc, 1);
  CHECK_MSG(strstr(out, "train-images-idx3-ubyte") != NULL, "%s", out);
  /* wrong magic: a labels file where the images should be */
  snprintf(data, sizeof data, "%s/magic", tdir());
  write_dataset(data, 40, 20);
  char cmd[3000];
  snprintf(cmd, sizeof cmd, "cp %s/train-labels-idx1-ubyte %s/train-images-idx3-ubyte", data, data);
  CHECK_EQ_INT(system(cmd), 0);
  rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --data %s --out %s/g", RYFT_CLI, data, tdir());
  CHECK_EQ_INT(rc, 1);
  CHECK_MSG(strstr(out, "magic") != NULL || strstr(out, "0x00000801") != NULL, "%s", out);
  /* checkpoints: missing tensor, mismatched shape, wrong model */
  snprintf(data, sizeof data, "%s/ok", tdir());
  write_dataset(data, 64, 20);
  rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 1 --data %s --out %s/h", RYFT_CLI, data, tdir());
  CHECK_MSG(rc == 0, "%s", out);
  snprintf(p, sizeof p, "%s/h/checkpoint.safetensors", tdir());
  ry_params *ck = read_ckpt(p);
  if (ck) {
    char q[1300];
    ry_params *m = NULL;
    CHECK_OK(ry_params_clone(ck, &m));
    CHECK_OK(ry_params_remove(m, "params/fc2/w"));
    snprintf(q, sizeof q, "%s/h/missing.safetensors", tdir());
    ry_meta meta[3] = {{"format", "ryft-train-1"}, {"model", "mlp"}, {"epoch", "1"}};
    CHECK_OK(ry_safetensors_write(q, m, 3, meta));
    rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --data %s --out %s/h --resume %s", RYFT_CLI, data, tdir(), q);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "params/fc2/w") != NULL, "%s", out);
    ry_params_free(m);
    CHECK_OK(ry_params_clone(ck, &m));
    ry_array *z = NULL;
    CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(256, 64), &z));
    CHECK_OK(ry_params_set_owned(m, "params/fc2/w", z));
    snprintf(q, sizeof q, "%s/h/shape.safetensors", tdir());
    CHECK_OK(ry_safetensors_write(q, m, 3, meta));
    rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --data %s --out %s/h --resume %s", RYFT_CLI, data, tdir(), q);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "params/fc2/w") && strstr(out, "[256,64]") && strstr(out, "[256,128]"), "%s", out);
    rc = sh(out, sizeof out, "%s train --model cnn --batch 32 --limit-train 64 --epochs 2 --no-plot --data %s --out %s/h --resume %s",
            RYFT_CLI, data, tdir(), p);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "model 'mlp'") != NULL, "%s", out);
    ry_params_free(m);
    /* a NaN weight in a checkpoint: named, with the element, before any step
       (not a NaN loss and advice to lower the learning rate) */
    CHECK_OK(ry_params_clone(ck, &m));
    ry_array *w = NULL, *b1 = ry_params_get(m, "params/fc1/b");
    float bv[256] = {0};
    if (b1 && ry_array_numel(b1) <= 256) {
      CHECK_OK(ry_array_to_host(b1, bv, sizeof bv));
      bv[5] = NAN;
      CHECK_OK(ry_array_from_host(RY_F32, ry_array_shape(b1), bv, &w));
      CHECK_OK(ry_params_replace(m, "params/fc1/b", w));
      ry_array_release(w);
    }
    snprintf(q, sizeof q, "%s/h/nan.safetensors", tdir());
    CHECK_OK(ry_safetensors_write(q, m, 3, meta));
    rc = sh(out, sizeof out, "%s train " TRAIN_ARGS " --epochs 2 --data %s --out %s/h --resume %s", RYFT_CLI, data, tdir(), q);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "'params/fc1/b' holds nan at element 5") && !strstr(out, "--lr"), "%s", out);
    ry_params_free(m);
  }
  ry_params_free(ck);
  const char *subs[8] = {"e", "f", "g", "h", "trunc", "magic", "ok", "nonexistent"};
  for (int i = 0; i < 8; i++) rm_sub(subs[i]);
}

/* correct_count / accuracy / top-k on the cpu device equal the interpreter's
 * for batch sizes where a fused i32 reduction once went wrong (512, 1024) */
static int f_counts(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value y = ry_convert(b, in[1], RY_I32);
  out[0] = ry_nn_correct_count(b, in[0], y);
  out[1] = ry_nn_accuracy(b, in[0], y);
  out[2] = ry_nn_top_k_accuracy(b, in[0], y, 3);
  return 3;
}

TEST(nn_metrics_cpu_match_interp) {
  const int sizes[3] = {500, 512, 1024};
  for (int si = 0; si < 3; si++) {
    int n = sizes[si];
    float *d = malloc(sizeof(float) * (size_t)n * 10);
    uint8_t *l = malloc((size_t)n);
    for (int k = 0; k < n * 10; k++) d[k] = (float)sin(k * 0.37);
    for (int k = 0; k < n; k++) l[k] = (uint8_t)((k * 3) % 10);
    ry_array *in[2] = {NULL, NULL}, *a[3] = {0}, *w[3] = {0};
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(n, 10), d, &in[0]));
    CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n), l, &in[1]));
    ry_type t[2] = {ry_array_type(in[0]), ry_array_type(in[1])};
    ry_graph *g = NULL;
    ry_device *cpu = NULL, *ip = NULL;
    CHECK_OK(ry_trace("counts", f_counts, NULL, 2, t, NULL, &g));
    CHECK_OK(ry_device_get("cpu", &cpu));
    CHECK_OK(ry_device_get("interp", &ip));
    CHECK_OK(ry_run(g, cpu, 2, in, 3, a));
    CHECK_OK(ry_run(g, ip, 2, in, 3, w));
    for (int i = 0; i < 3; i++)
      if (a[i] && w[i]) CHECK_MSG(ry_array_get_f64(a[i], 0) == ry_array_get_f64(w[i], 0), "n=%d output %d: cpu %g, interp %g", n, i,
                                  ry_array_get_f64(a[i], 0), ry_array_get_f64(w[i], 0));
    for (int i = 0; i < 3; i++) ry_array_release(a[i]), ry_array_release(w[i]);
    ry_array_release(in[0]);
    ry_array_release(in[1]);
    ry_graph_release(g);
    free(d);
    free(l);
  }
}

TEST(nn_opt_state_tree_matches_update_layout) {
  ry_params *p = ry_params_new(), *st = NULL;
  ry_array *w = NULL, *bias = NULL;
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(3, 2), &w));
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(2), &bias));
  CHECK_OK(ry_params_set_owned(p, "fc/w", w));
  CHECK_OK(ry_params_set_owned(p, "fc/b", bias));
  ry_nn_optimizer adam = ry_nn_optimizer_default(RY_NN_ADAM, 1e-3);
  CHECK_OK(ry_nn_opt_state_tree(&adam, p, &st));
  CHECK_EQ_INT(ry_params_count(st), 2 * ry_nn_opt_state_per_param(&adam) + 1);
  const char *want[5] = {"mu/fc/w", "nu/fc/w", "mu/fc/b", "nu/fc/b", "count"};
  for (int i = 0; i < 5 && i < ry_params_count(st); i++) CHECK_STR(ry_params_path(st, i), want[i]);
  if (ry_params_count(st) == 5) {
    CHECK(ry_shape_equal(ry_params_type(st, 0).shape, RY_SHAPE(3, 2)));
    CHECK_EQ_INT(ry_params_type(st, 4).dtype, RY_I32);
  }
  ry_params_free(st);
  ry_nn_optimizer sgd = ry_nn_optimizer_default(RY_NN_SGD, 0.1);
  CHECK_OK(ry_nn_opt_state_tree(&sgd, p, &st)); /* plain SGD: only the count */
  CHECK_EQ_INT(ry_params_count(st), 1);
  ry_params_free(st);
  sgd.momentum = 0.9;
  CHECK_OK(ry_nn_opt_state_tree(&sgd, p, &st));
  CHECK_STR(ry_params_path(st, 0), "trace/fc/w");
  ry_params_free(st);
  ry_params_free(p);
}
