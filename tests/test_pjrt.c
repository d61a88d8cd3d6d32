/* The PJRT backend on the real XLA CPU plugin (built only with RYFT_PJRT):
 * the whole golden suite through StableHLO + XLA, the plugin loader's error
 * paths (missing file, not a library, no GetPjrtApi, wrong API version),
 * programs XLA rejects, bad inputs, too many devices, replicated execution
 * on several CPU devices, and 200 compile/execute/free cycles (for the
 * sanitizer build's leak check). */
#include <stdlib.h>

#include "backend/pjrt/pjrt.h"
#include "golden.h"
#include "testlib.h"

static const char *plugin(void) {
  const char *p = getenv("RYFT_PJRT_PLUGIN");
  if (!p || !*p) {
    setenv("RYFT_PJRT_PLUGIN", RYFT_PJRT_TEST_PLUGIN, 1);
    p = getenv("RYFT_PJRT_PLUGIN");
  }
  return p;
}

static ry_graph *parse(const char *text) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(text, -1, "test", &g));
  return g;
}

static const char *k_axpy =
    "func @main(%a: f32[], %x: f32[4], %y: f32[4]) -> (f32[4], f32[]) {\n"
    "  %0: f32[4] = broadcast_in_dim %a {dims=[]}\n"
    "  %1: f32[4] = mul %0, %x\n"
    "  %2: f32[4] = add %1, %y\n"
    "  %3: f32[] = reduce %2 {kind=sum, axes=[0]}\n"
    "  return %2, %3\n"
    "}\n";

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
