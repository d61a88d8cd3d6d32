/* Out of memory everywhere a user's program can get it: with the k-th
 * allocation failing (and, in one variant, every later one too), for every
 * k until the operation succeeds, each of grad, a cpu compile + run, and the
 * safetensors, IDX and .npy loaders must return RY_ERR_OUT_OF_MEMORY (or
 * succeed), produce no output object on failure and leak nothing
 * (tests/runner.c's allocator counts the bytes). Trace + interpreter and the
 * text parser have their own such tests in test_core.c, test_interp.c and
 * test_text.c. */
#include <stdlib.h>

#include "testlib.h"

static int mlp_loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_matmul(b, in[0], in[1]));
  out[0] = ry_sum(b, ry_mul(b, ry_softmax(b, h, -1), h), RY_AXES(0, 1));
  return 1;
}

static ry_graph *mlp_graph(void) {
  ry_type in[2] = {{RY_F32, RY_SHAPE(2, 3)}, {RY_F32, RY_SHAPE(3, 4)}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("mlp", mlp_loss, NULL, 2, in, NULL, &g));
  return g;
}

/* One operation under every allocation failure. op returns a status and
 * releases whatever it made before returning. */
typedef ry_status (*oom_op)(void *ctx);

static void every_failure(const char *what, oom_op op, void *ctx, int all_after, long min_allocs) {
  long k = 0;
  for (; k < 200000; k++) {
    rt_oom_arm(k, all_after);
    ry_status s = op(ctx);
    int refused = rt_oom_failed();
    ry_code code = ry_status_code(s);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", s ? ry_status_message(s) : "");
    ry_status_free(s);
    long long live = rt_oom_disarm();
    if (live != 0) {
      rt_fail(__FILE__, __LINE__, "%s: allocation %ld failing leaked %lld bytes", what, k, live);
      return;
    }
    if (s && code != RY_ERR_OUT_OF_MEMORY) {
      rt_fail(__FILE__, __LINE__, "%s: allocation %ld failing gave %s: %s", what, k, ry_code_name(code), msg);
      return;
    }
    if (!s && !refused) break; /* it succeeded without reaching the failure */
  }
  CHECK_MSG(k >= min_allocs, "%s: only %ld allocations: the failures were not exercised", what, k);
  CHECK_MSG(k < 200000, "%s: never succeeded", what);
}

/* ---- grad ---- */

static ry_status op_grad(void *ctx) {
  ry_graph *g = ctx, *dg = NULL;
  int argnums[2] = {0, 1};
  ry_grad_opts o = {2, argnums, 0};
  ry_status s = ry_value_and_grad(g, &o, &dg);
  if (!s && ry_graph_num_outputs(dg) != 3) s = ry_status_make(RY_ERR_INTERNAL, "value_and_grad has %d outputs", ry_graph_num_outputs(dg));
  ry_graph_release(dg);
  return s;
}

TEST(oom_grad) {
  ry_graph *g = mlp_graph();
  if (!g) return;
  every_failure("value_and_grad", op_grad, g, 0, 50);
  every_failure("value_and_grad (all later fail)", op_grad, g, 1, 50);
  ry_graph_release(g);
}

/* ---- a cpu compile and run ----
 * The module is compiled once beforehand, so the loop exercises planning,
 * code generation, the cache lookup, loading and the run without invoking
 * cc thousands of times. */
typedef struct cpu_ctx {
  ry_graph *g;
  ry_device *dev;
  ry_array *in[2];
  double want;
} cpu_ctx;

static ry_status op_cpu(void *vctx) {
  cpu_ctx *c = vctx;
  ry_executable *e = NULL;
  ry_array *out = NULL;
  ry_array *outs[2] = {0};
  ry_status s = ry_compile(c->g, c->dev, &e);
  if (!s) s = ry_execute(e, 2, c->in, 2, outs);
  out = outs[0];
  ry_array_release(outs[1]);
  if (!s && fabs(ry_array_get_f64(out, 0) - c->want) > 1e-5)
    s = ry_status_make(RY_ERR_INTERNAL, "wrong result %g, want %g", ry_array_get_f64(out, 0), c->want);
  ry_array_release(out);
  ry_executable_free(e);
  return s;
}

TEST(oom_cpu_compile_and_run) {
  cpu_ctx c = {0};
  CHECK_OK(ry_device_get("cpu", &c.dev));
  ry_graph *g = mlp_graph();
  if (!g || !c.dev) {
    ry_graph_release(g);
    return;
  }
  /* differentiate it too: the cpu backend compiles the gradient program */
  int argnums[1] = {1};
  ry_grad_opts o = {1, argnums, 0};
  CHECK_OK(ry_value_and_grad(g, &o, &c.g));
  ry_graph_release(g);
  CHECK_OK(ry_array_full(RY_F32, RY_SHAPE(2, 3), 0.5, &c.in[0]));
  CHECK_OK(ry_array_full(RY_F32, RY_SHAPE(3, 4), 0.25, &c.in[1]));
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  ry_array *ref[2] = {0};
  if (c.g && interp) CHECK_OK(ry_run(c.g, interp, 2, c.in, 2, ref));
  if (ref[0]) {
    c.want = ry_array_get_f64(ref[0], 0);
    /* warm the compile cache, then fail every allocation in turn */
    ry_status s = op_cpu(&c);
    CHECK_OK(s);
    every_failure("cpu compile + run", op_cpu, &c, 0, 30);
  }
  ry_array_release(ref[0]);
  ry_array_release(ref[1]);
  ry_array_release(c.in[0]);
  ry_array_release(c.in[1]);
  ry_graph_release(c.g);
}

/* ---- loaders ---- */

static const char *data_path(const char *name) {
  static char buf[4][1024];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, sizeof buf[0], "%s/tests/data/%s", rt_source_dir(), name);
  return b;
}

static ry_status op_safetensors(void *ctx) {
  (void)ctx;
  ry_params *p = NULL;
  ry_status s = ry_safetensors_read(data_path("st_python.safetensors"), &p);
  if (!s && ry_params_count(p) < 1) s = ry_status_make(RY_ERR_INTERNAL, "no tensors");
  ry_params_free(p);
  return s;
}

static ry_status op_safetensors_write(void *ctx) {
  ry_params *p = ctx;
  return ry_safetensors_write(rt_tmp_path("oom", "w.safetensors"), p, 0, NULL);
}

static ry_status op_idx(void *ctx) {
  (void)ctx;
  ry_array *x = NULL, *y = NULL;
  ry_status s = ry_idx_read_pair(data_path("idx_images_3x4x5.idx.gz"), data_path("idx_labels_3.idx.gz"), 10, &x, &y);
  if (!s && (!x || !y)) s = ry_status_make(RY_ERR_INTERNAL, "no arrays");
  ry_array_release(x);
  ry_array_release(y);
  return s;
}

static ry_status op_npy(void *ctx) {
  (void)ctx;
  ry_array *a = NULL;
  ry_status s = ry_npy_read(data_path("np_f32_2x3.npy"), &a);
  ry_array_release(a);
  return s;
}

TEST(oom_loaders) {
  every_failure("safetensors read", op_safetensors, NULL, 0, 5);
  every_failure("safetensors read (all later fail)", op_safetensors, NULL, 1, 5);
  ry_params *p = NULL;
  CHECK_OK(ry_safetensors_read(data_path("st_python.safetensors"), &p));
  if (p) every_failure("safetensors write", op_safetensors_write, p, 0, 2);
  ry_params_free(p);
  remove(rt_tmp_path("oom", "w.safetensors"));
  every_failure("idx read (gzip)", op_idx, NULL, 0, 3);
  every_failure("npy read", op_npy, NULL, 0, 1);
}
