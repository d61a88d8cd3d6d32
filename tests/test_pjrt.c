/* The PJRT backend on the real XLA CPU plugin (built only with RYFT_PJRT):
 * the whole golden suite through StableHLO + XLA, the plugin loader's error
 * paths (missing file, not a library, no GetPjrtApi, wrong API version, a
 * plugin or plugin directory others can write),
 * programs XLA rejects, bad inputs, too many devices, replicated execution
 * on several CPU devices, 200 compile/execute/free cycles (for the
 * sanitizer build's leak check), collectives on 4 devices, a data-parallel
 * MLP train step on 2 and 4 devices (pmap style with an all_reduce of the
 * gradients, and SPMD with a batch-sharded input) against the
 * single-device step, and the multi-device error paths. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../bench/mlp_step.h"
#include "backend/pjrt/pjrt.h"
#include "golden.h"
#include "pjrt_testlib.h"
#include "testlib.h"

static const char *plugin(void) { return pjrt_test_plugin(); }

static ry_graph *parse(const char *text) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(text, -1, "test", &g));
  return g;
}

static void axpy_inputs(ry_array *in[3]) {
  float a = 2, x[4] = {1, 2, 3, 4}, y[4] = {10, 20, 30, 40};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &a, &in[0]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), x, &in[1]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), y, &in[2]));
}

static void check_axpy(ry_array *const out[2]) {
  static const float want[4] = {12, 24, 36, 48};
  for (int i = 0; i < 4; i++) CHECK_NEAR(ry_array_get_f64(out[0], i), want[i], 0);
  CHECK_NEAR(ry_array_get_f64(out[1], 0), 120, 0);
}

TEST(pjrt_compile_options_bytes) {
  uint8_t b[64];
  size_t n = ryp_compile_options(1, NULL, b, sizeof b);
  static const uint8_t want[] = {0x1a, 0x04, 0x20, 0x01, 0x28, 0x01};
  CHECK_EQ_INT(n, sizeof want);
  CHECK(memcmp(b, want, sizeof want) == 0);
  int ids[2] = {0, 1};
  n = ryp_compile_options(2, ids, b, sizeof b);
  /* 1a LEN 20 02 28 01 4a LEN(da) 08 02 10 01 1a 04 0a 02 00 01 */
  static const uint8_t want2[] = {0x1a, 0x10, 0x20, 0x02, 0x28, 0x01, 0x4a, 0x0a, 0x08, 0x02,
                                  0x10, 0x01, 0x1a, 0x04, 0x0a, 0x02, 0x00, 0x01};
  CHECK_EQ_INT(n, sizeof want2);
  CHECK(memcmp(b, want2, sizeof want2) == 0);
  CHECK_EQ_INT(ryp_compile_options(2, ids, b, 4), 0);
  /* SPMD: 1 replica x 2 partitions, use_spmd_partitioning (6), one
   * computation_devices entry per partition */
  n = ryp_compile_options_spmd(1, 2, ids, b, sizeof b);
  static const uint8_t want3[] = {0x1a, 0x16, 0x20, 0x01, 0x28, 0x02, 0x30, 0x01, 0x4a, 0x0e, 0x08, 0x01,
                                  0x10, 0x02, 0x1a, 0x03, 0x0a, 0x01, 0x00, 0x1a, 0x03, 0x0a, 0x01, 0x01};
  CHECK_EQ_INT(n, sizeof want3);
  CHECK(memcmp(b, want3, sizeof want3) == 0);
  /* + env_option_overrides (7) {"xla_cpu_use_xnnpack": bool_field (2) false}, what programs of several
   * CPU devices are compiled with: 3a LEN 0a 13 <name> 12 02 10 00 */
  size_t m = ryp_append_bool_option(b, n, sizeof b, "xla_cpu_use_xnnpack", false);
  static const uint8_t head4[] = {0x3a, 0x19, 0x0a, 0x13}, tail4[] = {0x12, 0x02, 0x10, 0x00};
  CHECK_EQ_INT(m, n + 4 + 19 + 4);
  if (m == n + 27) {
    CHECK(memcmp(b, want3, sizeof want3) == 0 && memcmp(b + n, head4, 4) == 0);
    CHECK(memcmp(b + n + 4, "xla_cpu_use_xnnpack", 19) == 0 && memcmp(b + n + 23, tail4, 4) == 0);
  }
  CHECK_EQ_INT(ryp_append_bool_option(b, n, n + 10, "xla_cpu_use_xnnpack", false), 0); /* does not fit */
}

TEST(pjrt_client_info) {
  ry_pjrt_options o = {.plugin_path = plugin()};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  if (!c) return;
  CHECK_STR(ry_pjrt_client_platform(c), "cpu");
  int major = -1, minor = -1;
  ry_pjrt_client_api_version(c, &major, &minor);
  CHECK_EQ_INT(major, 0);
  CHECK(minor >= 40);
  CHECK(ry_pjrt_client_device_count(c) >= 1);
  CHECK(ry_pjrt_client_memory_count(c) >= 1);
  CHECK(strlen(ry_pjrt_client_device_kind(c, 0)) > 0);
  CHECK_STR(ry_pjrt_client_device_kind(c, 99), "");
  ry_pjrt_client_free(c);
  /* several CPU devices on request */
  o.cpu_device_count = 4;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  if (c) CHECK_EQ_INT(ry_pjrt_client_device_count(c), 4);
  ry_pjrt_client_free(c);
}

TEST(pjrt_device_registered) {
  plugin();
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("pjrt", &d));
  if (!d) return;
  ry_graph *g = parse(k_axpy);
  ry_array *in[3], *out[2] = {0};
  axpy_inputs(in);
  CHECK_OK(ry_run(g, d, 3, in, 2, out));
  if (out[0]) check_axpy(out);
  /* after first use the description names the platform and API version */
  CHECK_MSG(strstr(ry_device_description(d), "platform cpu") != NULL, "description: %s", ry_device_description(d));
  CHECK_MSG(strstr(ry_device_description(d), "PJRT C API 0.") != NULL, "description: %s", ry_device_description(d));
  for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  for (int i = 0; i < 2; i++) ry_array_release(out[i]);
  ry_graph_release(g);
}

TEST(pjrt_golden) {
  plugin();
  int total = golden_run_all("pjrt");
  CHECK_MSG(total >= 300, "only %d golden cases ran", total);
}

/* JAX-lowered StableHLO imported by ryft, differentiated and batched, then
 * compiled back to StableHLO for XLA (test_stablehlo_import.c) */
TEST(pjrt_jax_corpus) {
  plugin();
  CHECK(jax_corpus_run("pjrt") >= 13);
}

TEST(pjrt_bad_plugins) {
  ry_pjrt_client *c = (ry_pjrt_client *)1;
  ry_pjrt_options o = {.plugin_path = "/nonexistent/dir/libnothing.so"};
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_NOT_FOUND, "cannot load plugin", "/nonexistent/dir/libnothing.so");
  CHECK(c == NULL);
  char path[2048];
  snprintf(path, sizeof path, "%s/tests/golden/FORMAT.md", rt_source_dir());
  o.plugin_path = path;
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_NOT_FOUND, "cannot load plugin", "FORMAT.md");
  o.plugin_path = RYFT_PJRT_NO_ENTRY_PLUGIN;
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_NOT_FOUND, "not a PJRT plugin", "GetPjrtApi");
  o.plugin_path = RYFT_PJRT_FAKE_PLUGIN;
  setenv("RYFT_FAKE_PJRT_VERSION", "99.0", 1);
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_UNSUPPORTED, "99.0", "major versions must match");
  setenv("RYFT_FAKE_PJRT_VERSION", "0.12", 1);
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_UNSUPPORTED, "older than ryft supports", "0.12");
  unsetenv("RYFT_FAKE_PJRT_VERSION");
  /* no path at all */
  const char *saved = getenv("RYFT_PJRT_PLUGIN");
  char keep[2048];
  snprintf(keep, sizeof keep, "%s", saved ? saved : RYFT_PJRT_TEST_PLUGIN);
  unsetenv("RYFT_PJRT_PLUGIN");
  CHECK_ERR(ry_pjrt_client_create(NULL, &c), RY_ERR_INVALID_ARGUMENT, "RYFT_PJRT_PLUGIN");
  setenv("RYFT_PJRT_PLUGIN", keep, 1);
  o.plugin_path = plugin();
  o.cpu_device_count = -2;
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_INVALID_ARGUMENT, "cpu_device_count");
  CHECK_ERR(ry_pjrt_client_create(&o, NULL), RY_ERR_INVALID_ARGUMENT, "out is NULL");
}

/* A plugin path is code that runs: a plugin in a directory others may
 * write, one others may write itself, one of another user, or a link to one
 * in an open directory is refused before it is loaded. */
TEST(pjrt_untrusted_plugin_is_refused) {
  char dir[] = "/tmp/ryft-test-plugin-XXXXXX", lib[300], link[300], cmd[1200];
  if (!mkdtemp(dir)) {
    CHECK_MSG(0, "mkdtemp failed");
    return;
  }
  snprintf(lib, sizeof lib, "%s/open/libfake.so", dir);
  snprintf(link, sizeof link, "%s/libfake-link.so", dir);
  snprintf(cmd, sizeof cmd, "mkdir %s/open && cp '%s' %s", dir, RYFT_PJRT_FAKE_PLUGIN, lib);
  CHECK(system(cmd) == 0);
  ry_pjrt_options o = {.plugin_path = lib};
  ry_pjrt_client *c = NULL;
  char opendir_[300];
  snprintf(opendir_, sizeof opendir_, "%s/open", dir);
  CHECK(chmod(opendir_, 0777) == 0 && chmod(lib, 0755) == 0);
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_IO, "refusing to load plugin", lib, "/open is writable by group or others (mode 0777)");
  CHECK(symlink(lib, link) == 0); /* a link in a private directory does not help */
  o.plugin_path = link;
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_IO, "refusing to load plugin", link, "writable by group or others");
  CHECK(chmod(opendir_, 0755) == 0 && chmod(lib, 0666) == 0);
  CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_IO, "refusing to load plugin", "is writable by group or others (mode 0666)");
  if (geteuid() == 0) {
    CHECK(chmod(lib, 0755) == 0 && chown(lib, 65534, 65534) == 0);
    CHECK_ERR(ry_pjrt_client_create(&o, &c), RY_ERR_IO, "refusing to load plugin", "is owned by uid 65534");
  }
  CHECK(c == NULL);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* tools/fetch-pjrt.sh refuses a wheel cache or a destination that others
 * can write (before downloading anything), naming it and the reason. */
TEST(pjrt_fetch_refuses_open_cache_and_destination) {
  char dir[] = "/tmp/ryft-test-fetch-XXXXXX", cmd[2048], out[300];
  if (!mkdtemp(dir)) {
    CHECK_MSG(0, "mkdtemp failed");
    return;
  }
  snprintf(out, sizeof out, "%s/out.txt", dir);
  /* an open wheel cache, a fresh destination */
  snprintf(cmd, sizeof cmd, "mkdir %s/cache && chmod 777 %s/cache && RYFT_PJRT_CACHE=%s/cache sh '%s/tools/fetch-pjrt.sh' %s/dest > %s 2>&1",
           dir, dir, dir, rt_source_dir(), dir, out);
  int rc = system(cmd);
  char *text = rt_read_file(out, NULL);
  CHECK_MSG(rc != 0 && text && strstr(text, "refusing the wheel cache") && strstr(text, "/cache: writable by group or others (mode 777)"),
            "rc %d: %s", rc, text ? text : "");
  free(text);
  /* an open destination */
  snprintf(cmd, sizeof cmd, "mkdir %s/dest2 && chmod 775 %s/dest2 && sh '%s/tools/fetch-pjrt.sh' %s/dest2 > %s 2>&1", dir, dir,
           rt_source_dir(), dir, out);
  rc = system(cmd);
  text = rt_read_file(out, NULL);
  CHECK_MSG(rc != 0 && text && strstr(text, "refusing the destination") && strstr(text, "writable by group or others (mode 775)"),
            "rc %d: %s", rc, text ? text : "");
  free(text);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

TEST(pjrt_rejected_programs) {
  ry_pjrt_options o = {.plugin_path = plugin()};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  if (!c) return;
  ry_pjrt_executable *e = (ry_pjrt_executable *)1;
  /* not MLIR at all: the parser's message comes through */
  CHECK_ERR(ry_pjrt_compile_mlir(c, "this is not mlir", 1, &e), RY_ERR_INTERNAL, "pjrt: compiling", "UNKNOWN",
            "custom op 'this' is unknown");
  CHECK(e == NULL);
  /* valid StableHLO that XLA cannot compile: an unknown custom-call target */
  const char *bad =
      "module @m {\n"
      "  func.func @main(%arg0: tensor<2xf32>) -> (tensor<2xf32>) {\n"
      "    %0 = \"stablehlo.custom_call\"(%arg0) {call_target_name = \"ryft_no_such_target\"} : (tensor<2xf32>) -> "
      "tensor<2xf32>\n"
      "    \"func.return\"(%0) : (tensor<2xf32>) -> ()\n"
      "  }\n"
      "}\n";
  ry_status s = ry_pjrt_compile_mlir(c, bad, 1, &e);
  CHECK_MSG(s != NULL, "XLA accepted an unknown custom call");
  if (s) CHECK_MSG(strstr(ry_status_message(s), "ryft_no_such_target") != NULL, "message: %s", ry_status_message(s));
  ry_status_free(s);
  if (!s) ry_pjrt_executable_free(e);
  /* a graph with a ryft custom_call is refused before XLA sees it */
  ry_graph *g = parse("func @main(%x: f32[2]) -> (f32[2]) {\n"
                      "  %0: f32[2] = custom_call %x {target=\"test.scale\"}\n"
                      "  return %0\n"
                      "}\n");
  if (g) CHECK_ERR(ry_pjrt_compile(c, g, 1, &e), RY_ERR_UNSUPPORTED, "custom_call", "test.scale");
  ry_graph_release(g);
  /* more devices than the client has */
  g = parse(k_axpy);
  CHECK_ERR(ry_pjrt_compile(c, g, ry_pjrt_client_device_count(c) + 1, &e), RY_ERR_INVALID_ARGUMENT, "devices requested",
            "has only");
  CHECK_ERR(ry_pjrt_compile(c, g, 0, &e), RY_ERR_INVALID_ARGUMENT, "num_devices");
  CHECK_ERR(ry_pjrt_compile(c, NULL, 1, &e), RY_ERR_INVALID_ARGUMENT, "graph is NULL");
  CHECK_ERR(ry_pjrt_compile(NULL, g, 1, &e), RY_ERR_INVALID_ARGUMENT, "client is NULL");
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

TEST(pjrt_bad_inputs) {
  ry_pjrt_options o = {.plugin_path = plugin()};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_graph *g = parse(k_axpy);
  ry_pjrt_executable *e = NULL;
  if (c && g) CHECK_OK(ry_pjrt_compile(c, g, 1, &e));
  if (!e) {
    ry_graph_release(g);
    ry_pjrt_client_free(c);
    return;
  }
  ry_array *in[3], *out[2] = {0}, *bad_shape, *bad_dtype;
  axpy_inputs(in);
  float z[3] = {0};
  double zd[4] = {0};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(3), z, &bad_shape));
  CHECK_OK(ry_array_from_host(RY_F64, RY_SHAPE(4), zd, &bad_dtype));
  ry_array *w1[3] = {in[0], bad_shape, in[2]}, *w2[3] = {in[0], in[1], bad_dtype};
  CHECK_ERR(ry_pjrt_execute(e, 3, w1, 2, out), RY_ERR_SHAPE, "input 1", "f32[3]", "f32[4]");
  CHECK_ERR(ry_pjrt_execute(e, 3, w2, 2, out), RY_ERR_DTYPE, "input 2", "f64[4]");
  CHECK_ERR(ry_pjrt_execute(e, 2, in, 2, out), RY_ERR_INVALID_ARGUMENT, "got 2 inputs");
  CHECK_ERR(ry_pjrt_execute(e, 3, in, 1, out), RY_ERR_INVALID_ARGUMENT, "room for 1 outputs");
  CHECK(out[0] == NULL && out[1] == NULL);
  /* and through ry_execute on the pjrt device */
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("pjrt", &d));
  ry_executable *x = NULL;
  if (d) CHECK_OK(ry_compile(g, d, &x));
  if (x) {
    CHECK_ERR(ry_execute(x, 3, w1, 2, out), RY_ERR_SHAPE, "input 1");
    CHECK_ERR(ry_execute(x, 3, w2, 2, out), RY_ERR_DTYPE, "input 2");
    CHECK_OK(ry_execute(x, 3, in, 2, out));
    if (out[0]) check_axpy(out);
    for (int i = 0; i < 2; i++) ry_array_release(out[i]);
  }
  ry_executable_free(x);
  ry_array_release(bad_shape);
  ry_array_release(bad_dtype);
  for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  ry_pjrt_executable_free(e);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

TEST(pjrt_replicated_devices) {
  for (int nd = 2; nd <= 4; nd += 2) {
    ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = nd};
    ry_pjrt_client *c = NULL;
    CHECK_OK(ry_pjrt_client_create(&o, &c));
    ry_graph *g = parse(k_axpy);
    ry_pjrt_executable *e = NULL;
    if (c && g) CHECK_OK(ry_pjrt_compile(c, g, nd, &e));
    if (e) {
      CHECK_EQ_INT(ry_pjrt_executable_num_devices(e), nd);
      ry_array *in[3], *out[8] = {0};
      axpy_inputs(in);
      CHECK_OK(ry_pjrt_execute(e, 3, in, 2 * nd, out));
      for (int d = 0; d < nd; d++)
        if (out[2 * d]) check_axpy(out + 2 * d);
      for (int i = 0; i < 2 * nd; i++) ry_array_release(out[i]);
      for (int i = 0; i < 3; i++) ry_array_release(in[i]);
    }
    ry_pjrt_executable_free(e);
    ry_graph_release(g);
    ry_pjrt_client_free(c);
  }
}

/* 200 compile/execute/destroy cycles: the sanitizer build's leak checker
 * (with tests/lsan_pjrt.supp for the plugin's own allocations) must stay
 * quiet, and every run must give the same answer. */
TEST(pjrt_cycles_no_leak) {
  ry_pjrt_options o = {.plugin_path = plugin()};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_graph *g = parse(k_axpy);
  if (!c || !g) {
    ry_graph_release(g);
    ry_pjrt_client_free(c);
    return;
  }
  ry_array *in[3];
  axpy_inputs(in);
  int ok = 0;
  for (int i = 0; i < 200; i++) {
    ry_pjrt_executable *e = NULL;
    ry_status s = ry_pjrt_compile(c, g, 1, &e);
    ry_array *out[2] = {0};
    if (!s) s = ry_pjrt_execute(e, 3, in, 2, out);
    if (!s && ry_array_get_f64(out[1], 0) == 120) ok++;
    ry_status_free(s);
    for (int k = 0; k < 2; k++) ry_array_release(out[k]);
    ry_pjrt_executable_free(e);
  }
  CHECK_EQ_INT(ok, 200);
  for (int i = 0; i < 3; i++) ry_array_release(in[i]);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

/* ---- several devices: collectives (pmap style) and SPMD sharding ---- */

enum { MLP_B = 8, MLP_IN = 4, MLP_H = 8, MLP_OUT = 3 };

/* (w1 [4,8], b1 [8], w2 [8,3], x [B,4], y [B,3]) -> mean((tanh(x w1 + b1) w2 - y)^2) */
static int mlp_loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_add(b, ry_matmul(b, in[3], in[0]), in[1]));
  ry_value d = ry_sub(b, ry_matmul(b, h, in[2]), in[4]);
  out[0] = ry_mean(b, ry_mul(b, d, d), RY_AXES(0, 1), 0);
  return 1;
}

typedef struct {
  ry_graph *grad; /* (params..., x, y) -> grads of the params */
  int n_dev;      /* > 1: average the gradients over the devices */
  bool shard;     /* SPMD: the global batch, split over the devices by annotation */
} step_ctx;

/* One SGD step (w1, b1, w2, x, y) -> (w1', b1', w2'). Per device (pmap
 * style) the gradients are all-reduced; in the SPMD version the batch is
 * annotated as split over the devices and XLA inserts the reduction. */
static int train_step(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  step_ctx *s = ctx;
  ry_value args[5] = {in[0], in[1], in[2], in[3], in[4]}, g[3];
  if (s->shard) {
    args[3] = ry_shard(b, in[3], RY_AXES(s->n_dev), RY_AXES(0, -1));
    args[4] = ry_shard(b, in[4], RY_AXES(s->n_dev), RY_AXES(0, -1));
  }
  if (ry_call(b, s->grad, 5, args, g) != 3) return 0;
  for (int i = 0; i < 3; i++) {
    if (s->n_dev > 1 && !s->shard) g[i] = ry_pmean(b, g[i], s->n_dev);
    out[i] = ry_sub(b, in[i], ry_mul(b, ry_scalar(b, RY_F32, 0.5), g[i]));
  }
  return 3;
}

static ry_graph *make_step(int n_dev, int batch, bool shard) {
  ry_type t[5] = {{RY_F32, RY_SHAPE(MLP_IN, MLP_H)}, {RY_F32, RY_SHAPE(MLP_H)}, {RY_F32, RY_SHAPE(MLP_H, MLP_OUT)},
                  {RY_F32, RY_SHAPE(batch, MLP_IN)}, {RY_F32, RY_SHAPE(batch, MLP_OUT)}};
  ry_graph *loss = NULL, *grad = NULL, *step = NULL;
  static const int argnums[3] = {0, 1, 2};
  ry_grad_opts go = {3, argnums, 0};
  CHECK_OK(ry_trace("mlp_loss", mlp_loss, NULL, 5, t, NULL, &loss));
  if (loss) CHECK_OK(ry_grad(loss, &go, &grad));
  step_ctx s = {grad, n_dev, shard};
  if (grad) CHECK_OK(ry_trace("train_step", train_step, &s, 5, t, NULL, &step));
  ry_graph_release(loss);
  ry_graph_release(grad);
  return step;
}

/* Parameters and a batch, deterministic: in[0..2] params, in[3] x, in[4] y. */
static void mlp_data(ry_array *in[5]) {
  float w1[MLP_IN * MLP_H], b1[MLP_H], w2[MLP_H * MLP_OUT], x[MLP_B * MLP_IN], y[MLP_B * MLP_OUT];
  for (int i = 0; i < MLP_IN * MLP_H; i++) w1[i] = 0.3f * sinf(1.7f * (float)i + 0.2f);
  for (int i = 0; i < MLP_H; i++) b1[i] = 0.1f * cosf((float)i);
  for (int i = 0; i < MLP_H * MLP_OUT; i++) w2[i] = 0.4f * cosf(0.9f * (float)i + 1.0f);
  for (int i = 0; i < MLP_B * MLP_IN; i++) x[i] = sinf(0.37f * (float)i * (float)i + 0.5f);
  for (int i = 0; i < MLP_B * MLP_OUT; i++) y[i] = cosf(0.61f * (float)i);
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(MLP_IN, MLP_H), w1, &in[0]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(MLP_H), b1, &in[1]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(MLP_H, MLP_OUT), w2, &in[2]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(MLP_B, MLP_IN), x, &in[3]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(MLP_B, MLP_OUT), y, &in[4]));
}

/* Rows [r0, r0 + n) of a 2-d f32 array. */
static ry_array *rows_of(const ry_array *a, int64_t r0, int64_t n) {
  int64_t cols = a->type.shape.dims[1];
  ry_array *o = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(n, cols), (const float *)a->data + r0 * cols, &o));
  return o;
}

static double max_diff(const ry_array *a, const ry_array *b) {
  if (!a || !b || !ry_type_equal(a->type, b->type)) return 1e30;
  double m = 0;
  for (int64_t i = 0; i < ry_shape_numel(a->type.shape); i++) {
    double d = fabs(ry_array_get_f64(a, i) - ry_array_get_f64(b, i));
    if (d > m) m = d;
  }
  return m;
}

/* How two arrays of one type differ: the norm of the difference relative to
 * a's, how many elements differ by more than far, the largest difference. */
typedef struct {
  double rel_norm, max;
  int64_t n, n_far;
} state_diff;

static state_diff compare_states(const ry_array *a, const ry_array *b, double far) {
  state_diff d = {1e30, 1e30, 0, 0};
  if (!a || !b || !ry_type_equal(a->type, b->type)) return d;
  double num = 0, den = 0;
  d.max = 0;
  d.n = ry_shape_numel(a->type.shape);
  for (int64_t i = 0; i < d.n; i++) {
    double x = ry_array_get_f64(a, i), e = fabs(x - ry_array_get_f64(b, i));
    num += e * e;
    den += x * x;
    d.n_far += e > far;
    if (e > d.max) d.max = e;
  }
  d.rel_norm = den > 0 ? sqrt(num / den) : sqrt(num);
  return d;
}

/* The single-device step on the full batch, on XLA (one device). */
static void reference_step(ry_array *const in[5], ry_array *ref[3]) {
  ry_pjrt_options o = {.plugin_path = plugin()};
  ry_pjrt_client *c = NULL;
  ry_graph *g = make_step(1, MLP_B, false);
  ry_pjrt_executable *e = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  if (c && g) CHECK_OK(ry_pjrt_compile(c, g, 1, &e));
  if (e) CHECK_OK(ry_pjrt_execute(e, 5, in, 3, ref));
  /* the interpreter agrees */
  ry_device *interp = NULL;
  ry_array *iref[3] = {0};
  CHECK_OK(ry_device_get("interp", &interp));
  if (g && interp) CHECK_OK(ry_run(g, interp, 5, in, 3, iref));
  for (int i = 0; i < 3; i++) {
    CHECK(max_diff(ref[i], iref[i]) < 1e-5);
    ry_array_release(iref[i]);
  }
  ry_pjrt_executable_free(e);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

/* Data parallel, pmap style: each of N devices runs the step on its
 * B/N rows, the gradients are averaged with an all_reduce (ry_pmean), and
 * every device ends with the parameters of the single-device full-batch step. */
TEST(pjrt_data_parallel_train_step) {
  ry_array *in[5], *ref[3] = {0};
  mlp_data(in);
  reference_step(in, ref);
  for (int nd = 2; nd <= 4; nd += 2) {
    ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = nd};
    ry_pjrt_client *c = NULL;
    ry_graph *g = make_step(nd, MLP_B / nd, false);
    ry_pjrt_executable *e = NULL;
    CHECK_OK(ry_pjrt_client_create(&o, &c));
    if (c && g) CHECK_OK(ry_pjrt_compile(c, g, nd, &e));
    ry_array *args[4 * 5] = {0}, *out[4 * 3] = {0};
    for (int d = 0; d < nd; d++) {
      for (int i = 0; i < 3; i++) args[d * 5 + i] = ry_array_retain(in[i]);
      args[d * 5 + 3] = rows_of(in[3], d * (MLP_B / nd), MLP_B / nd);
      args[d * 5 + 4] = rows_of(in[4], d * (MLP_B / nd), MLP_B / nd);
    }
    if (e) {
      CHECK_OK(ry_pjrt_execute_per_device(e, 5 * nd, args, 3 * nd, out));
      for (int d = 0; d < nd; d++)
        for (int i = 0; i < 3; i++)
          CHECK_MSG(max_diff(out[d * 3 + i], ref[i]) < 1e-5, "%d devices: device %d parameter %d differs by %g", nd, d, i,
                    max_diff(out[d * 3 + i], ref[i]));
      /* and the parameters moved */
      CHECK(max_diff(out[0], in[0]) > 1e-4);
      /* the same inputs on every device: wrong count, wrong shape */
      ry_array *junk[4 * 3] = {0};
      CHECK_ERR(ry_pjrt_execute_per_device(e, 5, args, 3 * nd, junk), RY_ERR_INVALID_ARGUMENT, "5 inputs is not a multiple of the");
      CHECK_ERR(ry_pjrt_execute(e, 5, in, 3 * nd, junk), RY_ERR_SHAPE, "input 3", "f32[8,4]");
    }
    for (int i = 0; i < 5 * nd; i++) ry_array_release(args[i]);
    for (int i = 0; i < 3 * nd; i++) ry_array_release(out[i]);
    ry_pjrt_executable_free(e);
    ry_graph_release(g);
    ry_pjrt_client_free(c);
  }
  for (int i = 0; i < 3; i++) ry_array_release(ref[i]);
  for (int i = 0; i < 5; i++) ry_array_release(in[i]);
}

/* SPMD: the global step with the batch annotated as split over N devices,
 * compiled with use_spmd_partitioning, equals the unsharded step. */
TEST(pjrt_spmd_sharded_train_step) {
  ry_array *in[5], *ref[3] = {0};
  mlp_data(in);
  reference_step(in, ref);
  for (int nd = 2; nd <= 4; nd += 2) {
    ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = nd};
    ry_pjrt_client *c = NULL;
    ry_graph *g = make_step(nd, MLP_B, true);
    ry_pjrt_executable *e = NULL;
    CHECK_OK(ry_pjrt_client_create(&o, &c));
    if (c && g) CHECK_OK(ry_pjrt_compile_spmd(c, g, nd, &e));
    if (e) {
      ry_array *out[3] = {0};
      CHECK_OK(ry_pjrt_execute(e, 5, in, 3, out));
      for (int i = 0; i < 3; i++)
        CHECK_MSG(max_diff(out[i], ref[i]) < 1e-5, "%d devices: parameter %d differs by %g", nd, i, max_diff(out[i], ref[i]));
      for (int i = 0; i < 3; i++) ry_array_release(out[i]);
      ry_array *many[12] = {0};
      CHECK_ERR(ry_pjrt_execute(e, 5, in, 3 * nd, many), RY_ERR_INVALID_ARGUMENT, "partitioned");
    }
    ry_pjrt_executable_free(e);
    ry_graph_release(g);
    ry_pjrt_client_free(c);
  }
  for (int i = 0; i < 3; i++) ry_array_release(ref[i]);
  for (int i = 0; i < 5; i++) ry_array_release(in[i]);
}

/* Sharded inputs and outputs on 1-d and 2-d meshes: the result is the
 * unsharded one, assembled from the devices' blocks. */
static const char *k_sharded =
    "func @main(%x: f32[8,4], %y: f32[4]) -> (f32[8,4], f32[], f32[8,4]) {\n"
    "  %0: f32[8,4] = sharding %x {mesh=[2,2], dims=[0,1]}\n"
    "  %1: f32[8,4] = broadcast_in_dim %y {dims=[1]}\n"
    "  %2: f32[8,4] = mul %0, %1\n"
    "  %3: f32[8,4] = tanh %2\n"
    "  %4: f32[8,4] = sharding %3 {mesh=[2,2], dims=[1,-1]}\n"
    "  %5: f32[] = reduce %2 {kind=sum, axes=[0,1]}\n"
    "  %6: f32[8,4] = sharding %2 {mesh=[2,2], dims=[-1,0]}\n"
    "  return %4, %5, %6\n"
    "}\n";

TEST(pjrt_spmd_sharded_io) {
  ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = 4};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_graph *g = parse(k_sharded);
  float x[32], y[4] = {0.5f, -1, 2, 0.25f};
  for (int i = 0; i < 32; i++) x[i] = (float)i / 8 - 2;
  ry_array *in[2] = {0}, *want[3] = {0}, *got[3] = {0};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(8, 4), x, &in[0]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), y, &in[1]));
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  if (g) CHECK_OK(ry_run(g, interp, 2, in, 3, want));
  ry_pjrt_executable *e = NULL;
  if (c && g) CHECK_OK(ry_pjrt_compile_spmd(c, g, 4, &e));
  if (e) {
    CHECK_OK(ry_pjrt_execute(e, 2, in, 3, got));
    for (int i = 0; i < 3; i++) CHECK_MSG(max_diff(got[i], want[i]) < 1e-5, "output %d differs", i);
  }
  char *text = NULL;
  if (g) CHECK_OK(ry_stablehlo_emit(g, &text));
  if (text) {
    CHECK(strstr(text, "mhlo.sharding = \"{devices=[2,2]0,1,2,3}\"") != NULL);        /* input 0 */
    CHECK(strstr(text, "mhlo.sharding = \"{devices=[2,1,2]0,2,1,3 last_tile_dim_replicate}\"") != NULL); /* mesh axis 1 on dim 0 */
    CHECK(strstr(text, "mhlo.sharding = \"{devices=[1,2,2]0,1,2,3 last_tile_dim_replicate}\"") != NULL);
    CHECK(strstr(text, "call_target_name = \"Sharding\"") != NULL);
  }
  ry_free(text);
  for (int i = 0; i < 3; i++) {
    ry_array_release(got[i]);
    ry_array_release(want[i]);
  }
  for (int i = 0; i < 2; i++) ry_array_release(in[i]);
  ry_pjrt_executable_free(e);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

/* all_reduce / all_gather / reduce_scatter over 4 devices with different
 * inputs per device, on a 1-d mesh and over one axis of a 2x2 mesh; and with
 * the same input everywhere, device 0 matches the interpreter. */
static const char *k_collectives =
    "func @main(%x: f32[4,2]) -> (f32[4,2], f32[4,2], f32[8,2], f32[1,2], f32[4,2]) {\n"
    "  %0: f32[4,2] = all_reduce %x {kind=sum, mesh=[4], axes=[0]}\n"
    "  %1: f32[4,2] = all_reduce %x {kind=max, mesh=[2,2], axes=[1]}\n"
    "  %2: f32[8,2] = all_gather %x {dim=0, mesh=[2,2], axes=[0]}\n"
    "  %3: f32[1,2] = reduce_scatter %x {dim=0, kind=sum, mesh=[4], axes=[0]}\n"
    "  %4: f32[4,2] = all_reduce %x {kind=prod, mesh=[2,2], axes=[]}\n"
    "  return %0, %1, %2, %3, %4\n"
    "}\n";

TEST(pjrt_collectives) {
  ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = 4};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_graph *g = parse(k_collectives);
  ry_pjrt_executable *e = NULL;
  if (c && g) CHECK_OK(ry_pjrt_compile(c, g, 4, &e));
  ry_array *in[4] = {0}, *out[20] = {0};
  for (int d = 0; d < 4; d++) {
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = (float)(10 * d + i);
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4, 2), x, &in[d]));
  }
  if (e) {
    CHECK_OK(ry_pjrt_execute_per_device(e, 4, in, 20, out));
    for (int d = 0; d < 4 && out[0]; d++) {
      ry_array *const *o5 = out + 5 * d;
      for (int i = 0; i < 8; i++) {
        CHECK_NEAR(ry_array_get_f64(o5[0], i), 60 + 4 * i, 0);                 /* sum of 10d + i */
        CHECK_NEAR(ry_array_get_f64(o5[1], i), 10 * (d | 1) + i, 0);           /* max over {d&2, d&2|1} */
        CHECK_NEAR(ry_array_get_f64(o5[4], i), 10 * d + i, 0);                 /* group of one */
      }
      for (int k = 0; k < 2; k++)                                              /* gather over mesh axis 0: d%2, d%2+2 */
        for (int i = 0; i < 8; i++) CHECK_NEAR(ry_array_get_f64(o5[2], 8 * k + i), 10 * (d % 2 + 2 * k) + i, 0);
      for (int i = 0; i < 2; i++) CHECK_NEAR(ry_array_get_f64(o5[3], i), 60 + 4 * (2 * d + i), 0); /* block d of the sum */
    }
    for (int i = 0; i < 20; i++) {
      ry_array_release(out[i]);
      out[i] = NULL;
    }
    /* replicated inputs: every device computes what the interpreter does,
     * except reduce_scatter, where each device keeps its own block (the
     * interpreter is the first device) */
    ry_device *interp = NULL;
    ry_array *want[5] = {0};
    CHECK_OK(ry_device_get("interp", &interp));
    CHECK_OK(ry_run(g, interp, 1, &in[1], 5, want));
    CHECK_OK(ry_pjrt_execute(e, 1, &in[1], 20, out));
    for (int d = 0; d < 4; d++)
      for (int i = 0; i < 5; i++)
        if (i != 3 || d == 0) CHECK_MSG(max_diff(out[5 * d + i], want[i]) < 1e-3, "device %d output %d", d, i);
    for (int i = 0; i < 5; i++) ry_array_release(want[i]);
  }
  for (int i = 0; i < 20; i++) ry_array_release(out[i]);
  for (int i = 0; i < 4; i++) ry_array_release(in[i]);
  ry_pjrt_executable_free(e);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

/* collective_broadcast over 4 devices with different inputs: the XLA CPU
 * plugin has no collective-broadcast (XLA:CPU's thunk emitter refuses it,
 * and JAX has no CPU lowering of pbroadcast), so compiling says so by name;
 * a plugin that runs it must give every device its source's value. Its
 * results across processes are in test_dist.c. */
TEST(pjrt_collective_broadcast) {
  ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = 4};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_graph *g = parse("func @main(%x: f32[4,2]) -> (f32[4,2], f32[4,2]) {\n"
                      "  %0: f32[4,2] = collective_broadcast %x {source=1, mesh=[4], axes=[0]}\n"
                      "  %1: f32[4,2] = collective_broadcast %x {source=1, mesh=[2,2], axes=[0]}\n"
                      "  return %0, %1\n}\n");
  ry_pjrt_executable *e = NULL;
  ry_status s = c && g ? ry_pjrt_compile(c, g, 4, &e) : NULL;
  if (s) {
    CHECK_MSG(ry_status_code(s) == RY_ERR_UNSUPPORTED && strstr(ry_status_message(s), "collective-broadcast"), "%s",
              ry_status_message(s));
    ry_status_free(s);
  }
  ry_array *in[4] = {0}, *out[8] = {0};
  for (int d = 0; d < 4; d++) {
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = (float)(10 * d + i);
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4, 2), x, &in[d]));
  }
  if (e) {
    CHECK_OK(ry_pjrt_execute_per_device(e, 4, in, 8, out));
    for (int d = 0; d < 4 && out[0]; d++)
      for (int i = 0; i < 8; i++) {
        CHECK_NEAR(ry_array_get_f64(out[2 * d], i), 10 + i, 0);                   /* member 1 of {0,1,2,3} */
        CHECK_NEAR(ry_array_get_f64(out[2 * d + 1], i), 10 * (d % 2 + 2) + i, 0); /* member 1 of {d%2, d%2+2} */
      }
  }
  for (int i = 0; i < 8; i++) ry_array_release(out[i]);
  for (int i = 0; i < 4; i++) ry_array_release(in[i]);
  ry_pjrt_executable_free(e);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}

static int shard_bad(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_shard(b, in[0], RY_AXES(4), RY_AXES(0, -1)); /* 6 rows over 4 devices */
  return 1;
}

TEST(pjrt_multi_device_errors) {
  ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = 2};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_pjrt_executable *e = (ry_pjrt_executable *)1;
  /* more devices than the client has */
  ry_graph *g = make_step(4, MLP_B, true);
  if (c && g) {
    CHECK_ERR(ry_pjrt_compile_spmd(c, g, 4, &e), RY_ERR_INVALID_ARGUMENT, "4 devices requested", "has only 2",
              "cpu_device_count");
    CHECK(e == NULL);
    /* the mesh does not match the devices compiled for */
    CHECK_ERR(ry_pjrt_compile_spmd(c, g, 2, &e), RY_ERR_INVALID_ARGUMENT, "sharding", "mesh of 4 devices", "compiled for 2");
    /* sharded programs need the SPMD compile */
    CHECK_ERR(ry_pjrt_compile(c, g, 2, &e), RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile_spmd");
  }
  ry_graph_release(g);
  g = make_step(4, MLP_B / 4, false);
  if (c && g) {
    CHECK_ERR(ry_pjrt_compile(c, g, 4, &e), RY_ERR_INVALID_ARGUMENT, "4 devices requested");
    CHECK_ERR(ry_pjrt_compile(c, g, 2, &e), RY_ERR_INVALID_ARGUMENT, "all_reduce", "mesh of 4 devices", "compiled for 2");
    CHECK_ERR(ry_pjrt_compile_spmd(c, g, 2, &e), RY_ERR_UNSUPPORTED, "collectives run across replicas");
  }
  ry_graph_release(g);
  /* a sharding that does not divide the dimension */
  ry_type t = {RY_F32, RY_SHAPE(6, 4)};
  g = (ry_graph *)1;
  CHECK_ERR(ry_trace("bad", shard_bad, NULL, 1, &t, NULL, &g), RY_ERR_SHAPE, "sharding", "dimension 0 (size 6)",
            "cannot be split evenly over mesh axis 0 of size 4");
  ry_graph *pg = NULL;
  CHECK_ERR(ry_graph_parse("func @main(%x: f32[6]) -> (f32[6]) {\n  %0: f32[6] = sharding %x {mesh=[4], dims=[0]}\n  return %0\n}\n",
                           -1, "t", &pg),
            RY_ERR_PARSE, "cannot be split evenly");
  CHECK_ERR(ry_graph_parse("func @main(%x: f32[6]) -> (f32[6]) {\n  %0: f32[6] = sharding %x {mesh=[2], dims=[1]}\n  return %0\n}\n",
                           -1, "t", &pg),
            RY_ERR_PARSE, "mesh axis 1 is out of range");
  CHECK_ERR(ry_graph_parse("func @main(%x: f32[6]) -> (f32[3]) {\n  %0: f32[3] = reduce_scatter %x {dim=0, kind=sum, mesh=[4], axes=[0]}\n  return %0\n}\n",
                           -1, "t", &pg),
            RY_ERR_PARSE, "not divisible by the group size 4");
  ry_pjrt_client_free(c);
}

/* The bench's MLP train step data-parallel over 2 CPU devices (x and y split
 * along the batch; XLA all-reduces the gradients), run for 10 steps with the
 * state fed back, against the same steps on one device. XLA's CPU runtime
 * used to deadlock here in most runs (an XNNPACK fusion waiting on an
 * intra-op thread held by the other device's all-reduce); ryft compiles
 * programs of several CPU devices without XNNPACK, and gives each launch
 * its own launch id. */
typedef struct {
  mlp_cfg *cfg;
} dp_ctx;

static int dp_step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  dp_ctx *d = ctx;
  ry_value a[MLP_N_IN];
  memcpy(a, in, sizeof a);
  a[19] = ry_shard(b, in[19], RY_AXES(2), RY_AXES(0, -1));
  a[20] = ry_shard(b, in[20], RY_AXES(2), RY_AXES(0));
  return mlp_step_fn(b, a, out, d->cfg);
}

TEST(pjrt_spmd_train_step_runs_repeatedly) {
  mlp_cfg cfg = {128, {784, 512, 512, 10}, 1e-3, 0.9, 0.999, 1e-8, 0};
  ry_pjrt_options o = {.plugin_path = plugin(), .cpu_device_count = 2};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  ry_array *st[2][MLP_N_IN];
  CHECK_OK(mlp_inputs(&cfg, st[0]));
  CHECK_OK(mlp_inputs(&cfg, st[1]));
  ry_type types[MLP_N_IN];
  for (int i = 0; i < MLP_N_IN; i++) types[i] = ry_array_type(st[0][i]);
  dp_ctx d = {&cfg};
  ry_graph *g[2] = {NULL, NULL};
  CHECK_OK(ry_trace("mlp_step", mlp_step_fn, &cfg, MLP_N_IN, types, NULL, &g[0]));
  CHECK_OK(ry_trace("mlp_step_dp", dp_step_fn, &d, MLP_N_IN, types, NULL, &g[1]));
  ry_pjrt_executable *e[2] = {NULL, NULL};
  if (c && g[0]) CHECK_OK(ry_pjrt_compile(c, g[0], 1, &e[0]));
  if (c && g[1]) CHECK_OK(ry_pjrt_compile_spmd(c, g[1], 2, &e[1]));
  double loss[2] = {0, 0};
  for (int v = 0; v < 2 && e[0] && e[1]; v++)
    for (int step = 0; step < 10; step++) {
      ry_array *out[MLP_N_OUT] = {NULL};
      ry_status s = ry_pjrt_execute(e[v], MLP_N_IN, st[v], MLP_N_OUT, out);
      CHECK_OK(s);
      if (s) break;
      loss[v] = ry_array_get_f64(out[0], 0);
      ry_array_release(out[0]);
      for (int i = 0; i < 18; i++) {
        ry_array_release(st[v][i]);
        st[v][i] = out[1 + i];
      }
      CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &(float){(float)step + 2}, &out[0])); /* t + 1 */
      ry_array_release(st[v][18]);
      st[v][18] = out[0];
    }
  CHECK_MSG(isfinite(loss[0]) && fabs(loss[0] - loss[1]) < 1e-4 * fabs(loss[0]) + 1e-5,
            "the last loss: one device %.9g, two %.9g", loss[0], loss[1]);
  /* The two devices sum each gradient in another order than one device, and
   * Adam divides by the gradient's own scale: an element whose gradient is
   * rounding noise (its unit's ReLU is off for most of the batch) moves by up
   * to lr a step either way, whatever its size (on a Zen 3, 21 elements of
   * w2 by up to 5.4e-4). So the weights agree as vectors (the difference's
   * norm below 1e-3 of theirs: a wrong all-reduce is off by far more), at
   * most one element in a thousand differs by more than 1e-4, none by more
   * than lr per step; the moments (averages of gradients, small) within
   * 1e-4. */
  state_diff worst = {0, 0, 0, 0};
  for (int i = 0; i < 18; i++) {
    state_diff sd = compare_states(st[0][i], st[1][i], 1e-4);
    if (i < 6) {
      worst.rel_norm = fmax(worst.rel_norm, sd.rel_norm);
      worst.max = fmax(worst.max, sd.max);
      worst.n_far += sd.n_far;
    }
    if (i < 6)
      CHECK_MSG(sd.rel_norm < 1e-3 && sd.n_far * 1000 <= sd.n && sd.max < 10 * cfg.lr,
                "weight %d after 10 steps: one device and two differ by %g (relative norm), %ld of %ld elements by "
                "more than 1e-4, at most %g",
                i, sd.rel_norm, (long)sd.n_far, (long)sd.n, sd.max);
    else
      CHECK_MSG(sd.max < 1e-4, "moment %d after 10 steps: one device and two differ by %g", i, sd.max);
  }
  printf("  weights, one device vs two: relative norm <= %.3g, %ld elements beyond 1e-4, largest difference %.3g\n",
         worst.rel_norm, (long)worst.n_far, worst.max);
  for (int v = 0; v < 2; v++) {
    for (int i = 0; i < MLP_N_IN; i++) ry_array_release(st[v][i]);
    ry_pjrt_executable_free(e[v]);
    ry_graph_release(g[v]);
  }
  ry_pjrt_client_free(c);
}
