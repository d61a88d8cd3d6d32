/* The StableHLO importer (ry_stablehlo_parse): both op syntaxes, regions
 * mapped onto ryft's ops, line:column errors, and the round trip
 * emit(import(emit(g))) over every golden case, run against the goldens. */
#include <math.h>
#include <stdlib.h>

#include "conformance/conformance.h"
#include "golden.h"
#include "testlib.h"

/* ---- the round trip over the golden suite ---- */

static int g_rt_ok, g_rt_unsupported, g_rt_late;
static char g_rt_reasons[2048];

int golden_stablehlo_round_trip(const char *name, const ry_graph *g, ry_graph **out) {
  *out = NULL;
  char *t1 = NULL, *t2 = NULL, *t3 = NULL;
  ry_graph *g2 = NULL, *g3 = NULL;
  int result = -1;
  ry_status s = ry_stablehlo_emit(g, &t1);
  if (s) {
    /* a graph the emitter refuses has nothing to import */
    ry_status_free(s);
    g_rt_unsupported++;
    return 1;
  }
  s = ry_stablehlo_parse(t1, -1, name, &g2);
  if (s && ry_status_code(s) == RY_ERR_UNSUPPORTED) {
    /* remember the reason (the op), once */
    const char *m = ry_status_message(s), *op = strstr(m, ": stablehlo.");
    char reason[80];
    snprintf(reason, sizeof reason, "%.40s", op ? op + 2 : m);
    char *colon = strchr(reason, ':');
    if (colon) *colon = 0;
    if (!strstr(g_rt_reasons, reason) && strlen(g_rt_reasons) + strlen(reason) + 3 < sizeof g_rt_reasons) {
      strcat(g_rt_reasons, reason);
      strcat(g_rt_reasons, "; ");
    }
    ry_status_free(s);
    g_rt_unsupported++;
    ry_free(t1);
    return 1;
  }
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: import(emit(g)): %s", name, ry_status_message(s));
    ry_status_free(s);
    goto done;
  }
  CHECK_OK(ry_graph_verify(g2));
  CHECK_OK(ry_stablehlo_emit(g2, &t2));
  if (!t2) goto done;
  s = ry_stablehlo_parse(t2, -1, name, &g3);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: import(emit(import(emit(g)))): %s", name, ry_status_message(s));
    ry_status_free(s);
    goto done;
  }
  CHECK_OK(ry_stablehlo_emit(g3, &t3));
  if (t3 && strcmp(t2, t3) != 0) {
    /* a loop the first import made a scan (with the emitted counter beside
     * the program's) settles one round later, its constants reordered */
    char *t4 = NULL;
    ry_graph *g4 = NULL;
    CHECK_OK(ry_stablehlo_parse(t3, -1, name, &g4));
    if (g4) CHECK_OK(ry_stablehlo_emit(g4, &t4));
    bool fixed = t4 && strcmp(t3, t4) == 0;
    ry_free(t4);
    ry_graph_release(g4);
    if (!fixed) {
      rt_fail(__FILE__, __LINE__, "%s: emit(import(emit(g))) is not stable", name);
      goto done;
    }
    g_rt_late++;
  }
  *out = g2;
  g2 = NULL;
  g_rt_ok++;
  result = 0;
done:
  ry_free(t1);
  ry_free(t2);
  ry_free(t3);
  ry_graph_release(g2);
  ry_graph_release(g3);
  return result;
}

TEST(stablehlo_import_golden_round_trip) {
  g_rt_ok = g_rt_unsupported = g_rt_late = 0;
  g_rt_reasons[0] = 0;
  int total = golden_run_all_stablehlo("interp");
  printf("  stablehlo round trip: %d of %d golden cases imported and run (%d stable one round later); %d refused (%s)\n",
         g_rt_ok, total, g_rt_late, g_rt_unsupported, g_rt_reasons);
  CHECK(total >= 300);
  CHECK_MSG(g_rt_ok * 100 >= total * 90, "only %d of %d cases survive the round trip", g_rt_ok, total);
}

/* ---- hand-written modules ---- */

static ry_graph *import_ok(const char *text) {
  ry_graph *g = NULL;
  CHECK_OK(ry_stablehlo_parse(text, -1, "test.mlir", &g));
  if (g) CHECK_OK(ry_graph_verify(g));
  return g;
}

static ry_array *host(ry_dtype t, ry_shape s, const void *data) {
  ry_array *a = NULL;
  CHECK_OK(ry_array_from_host(t, s, data, &a));
  return a;
}

static void run1(ry_graph *g, int n_in, ry_array **in, int n_out, ry_array **out) {
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("interp", &dev));
  CHECK_OK(ry_run(g, dev, n_in, in, n_out, out));
}

/* JAX's pretty form: a module with attributes, result_info, a private callee,
 * a pretty reduce, dot_general with contracting_dims, compare, select, iota. */
static const char *k_pretty =
    "module @jit_f attributes {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} {\n"
    "  func.func public @main(%arg0: tensor<2x3xf32>, %arg1: tensor<3xf32>) -> (tensor<2xf32> {jax.result_info = \"result\"}, tensor<i32>) {\n"
    "    %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0], precision = [DEFAULT, DEFAULT] : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2xf32>\n"
    "    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>\n"
    "    %1 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<2xf32>\n"
    "    %2 = stablehlo.compare  GT, %0, %1,  FLOAT : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xi1>\n"
    "    %3 = call @relu(%2, %0, %1) : (tensor<2xi1>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>\n"
    "    %4 = stablehlo.iota dim = 0 : tensor<4xi32>\n"
    "    %c = stablehlo.constant dense<10> : tensor<i32>\n"
    "    %5 = stablehlo.reduce(%4 init: %c) applies stablehlo.add across dimensions = [0] : (tensor<4xi32>, tensor<i32>) -> tensor<i32>\n"
    "    return %3, %5 : tensor<2xf32>, tensor<i32>\n"
    "  }\n"
    "  func.func private @relu(%arg0: tensor<2xi1>, %arg1: tensor<2xf32>, %arg2: tensor<2xf32>) -> tensor<2xf32> {\n"
    "    %0 = stablehlo.select %arg0, %arg1, %arg2 : tensor<2xi1>, tensor<2xf32> loc(\"x.py\":3:1)\n"
    "    return %0 : tensor<2xf32>\n"
    "  }\n"
    "}\n";

TEST(stablehlo_import_pretty) {
  ry_graph *g = import_ok(k_pretty);
  if (!g) return;
  CHECK_EQ_INT(ry_graph_num_inputs(g), 2);
  CHECK_EQ_INT(ry_graph_num_outputs(g), 2);
  float xv[6] = {1, 2, 3, -1, -2, -3}, yv[3] = {1, 1, 1};
  ry_array *in[2] = {host(RY_F32, RY_SHAPE(2, 3), xv), host(RY_F32, RY_SHAPE(3), yv)};
  ry_array *out[2] = {0};
  run1(g, 2, in, 2, out);
  if (out[0] && out[1]) {
    CHECK_NEAR(ry_array_get_f64(out[0], 0), 6, 0);
    CHECK_NEAR(ry_array_get_f64(out[0], 1), 0, 0);
    CHECK_NEAR(ry_array_get_f64(out[1], 0), 16, 0); /* 10 + 0+1+2+3: a non-identity init */
  }
  for (int i = 0; i < 2; i++) {
    ry_array_release(in[i]);
    ry_array_release(out[i]);
  }
  ry_graph_release(g);
}

/* The generic form (as ryft and older JAX print it), hex blobs, splats, a
 * `%r:2` result group, a sort comparator, a case and a while that is not a
 * counted loop (so it stays a while). */
static const char *k_generic =
    "func.func @main(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xi32>, tensor<i64>, tensor<2xf32>) {\n"
    "  %i = \"stablehlo.constant\"() {value = dense<[3, 1, 2, 0]> : tensor<4xi32>} : () -> tensor<4xi32>\n"
    "  %s:2 = \"stablehlo.sort\"(%x, %i) ({\n"
    "  ^bb0(%a: tensor<f32>, %b: tensor<f32>, %c: tensor<i32>, %d: tensor<i32>):\n"
    "    %lt = \"stablehlo.compare\"(%b, %a) {comparison_direction = #stablehlo<comparison_direction LT>} : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
    "    \"stablehlo.return\"(%lt) : (tensor<i1>) -> ()\n"
    "  }) {dimension = 0 : i64, is_stable = true} : (tensor<4xf32>, tensor<4xi32>) -> (tensor<4xf32>, tensor<4xi32>)\n"
    "  %one = \"stablehlo.constant\"() {value = dense<\"0x0100000000000000\"> : tensor<i64>} : () -> tensor<i64>\n"
    "  %w:2 = \"stablehlo.while\"(%one, %one) ({\n"
    "  ^bb0(%p: tensor<i64>, %q: tensor<i64>):\n"
    "    %lim = stablehlo.constant dense<100> : tensor<i64>\n"
    "    %c2 = stablehlo.compare LT, %p, %lim, SIGNED : (tensor<i64>, tensor<i64>) -> tensor<i1>\n"
    "    stablehlo.return %c2 : tensor<i1>\n"
    "  }, {\n"
    "  ^bb0(%p: tensor<i64>, %q: tensor<i64>):\n"
    "    %p2 = stablehlo.add %p, %p : tensor<i64>\n"
    "    %q2 = stablehlo.add %q, %one : tensor<i64>\n"
    "    stablehlo.return %p2, %q2 : tensor<i64>, tensor<i64>\n"
    "  }) : (tensor<i64>, tensor<i64>) -> (tensor<i64>, tensor<i64>)\n"
    "  %k = stablehlo.constant dense<-1> : tensor<i32>\n"
    "  %r = \"stablehlo.case\"(%k) ({\n"
    "    %z = stablehlo.constant dense<0x7F800000> : tensor<2xf32>\n"
    "    stablehlo.return %z : tensor<2xf32>\n"
    "  }, {\n"
    "    %z = stablehlo.constant dense<[1.5, -2.0]> : tensor<2xf32>\n"
    "    stablehlo.return %z : tensor<2xf32>\n"
    "  }) : (tensor<i32>) -> tensor<2xf32>\n"
    "  \"func.return\"(%s#0, %s#1, %w#1, %r) : (tensor<4xf32>, tensor<4xi32>, tensor<i64>, tensor<2xf32>) -> ()\n"
    "}\n";

TEST(stablehlo_import_generic) {
  ry_graph *g = import_ok(k_generic);
  if (!g) return;
  float xv[4] = {0.5f, 3, -1, 2};
  ry_array *in = host(RY_F32, RY_SHAPE(4), xv);
  ry_array *out[4] = {0};
  run1(g, 1, &in, 4, out);
  if (out[0] && out[1] && out[2] && out[3]) {
    /* descending (the comparator is b < a) */
    static const double want[4] = {3, 2, 0.5, -1};
    static const int64_t widx[4] = {1, 0, 3, 2};
    for (int i = 0; i < 4; i++) {
      CHECK_NEAR(ry_array_get_f64(out[0], i), want[i], 0);
      CHECK_EQ_INT(ry_array_get_i64(out[1], i), widx[i]);
    }
    CHECK_EQ_INT(ry_array_get_i64(out[2], 0), 8); /* p doubles 1 -> 128 in 7 steps; q counts them from 1 */
    CHECK_NEAR(ry_array_get_f64(out[3], 0), 1.5, 0); /* index -1 takes the last branch */
  }
  ry_array_release(in);
  for (int i = 0; i < 4; i++) ry_array_release(out[i]);
  ry_graph_release(g);
}

/* JAX's scan: a while with a constant trip count becomes `scan`, so reverse
 * mode goes through it. */
static const char *k_scan =
    "func.func public @main(%arg0: tensor<f32>) -> tensor<f32> {\n"
    "  %c = stablehlo.constant dense<0> : tensor<i32>\n"
    "  %0:2 = stablehlo.while(%iterArg = %c, %iterArg_0 = %arg0) : tensor<i32>, tensor<f32>\n"
    "  cond {\n"
    "    %c_1 = stablehlo.constant dense<3> : tensor<i32>\n"
    "    %1 = stablehlo.compare  LT, %iterArg, %c_1,  SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>\n"
    "    stablehlo.return %1 : tensor<i1>\n"
    "  } do {\n"
    "    %1 = stablehlo.multiply %iterArg_0, %arg0 : tensor<f32>\n"
    "    %c_1 = stablehlo.constant dense<1> : tensor<i32>\n"
    "    %2 = stablehlo.add %iterArg, %c_1 : tensor<i32>\n"
    "    stablehlo.return %2, %1 : tensor<i32>, tensor<f32>\n"
    "  }\n"
    "  return %0#1 : tensor<f32>\n"
    "}\n";

TEST(stablehlo_import_scan_grad) {
  ry_graph *g = import_ok(k_scan);
  if (!g) return;
  char *text = NULL;
  CHECK_OK(ry_graph_to_string(g, &text));
  if (text) CHECK_MSG(strstr(text, "scan") != NULL, "the counted loop is not a scan:\n%s", text);
  ry_free(text);
  ry_graph *dg = NULL;
  CHECK_OK(ry_grad(g, NULL, &dg));
  if (dg) {
    /* f(x) = x^4, f'(x) = 4x^3 */
    float xv = 1.5f;
    ry_array *in = host(RY_F32, RY_SCALAR, &xv), *out[1] = {0};
    run1(dg, 1, &in, 1, out);
    if (out[0]) CHECK_NEAR(ry_array_get_f64(out[0], 0), 4 * 1.5 * 1.5 * 1.5, 1e-5);
    ry_array_release(in);
    ry_array_release(out[0]);
  }
  ry_graph_release(dg);
  ry_graph_release(g);
}

/* ry_vmap of an imported rng_bit_generator is a per-lane map (jax.vmap is
 * not: it batches with the first lane's key only, so the JAX corpus has no
 * vmap check for it): each lane of the batched program equals the program
 * run on that lane's key alone, states and bits. */
TEST(stablehlo_import_rng_vmap_per_lane) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/stablehlo/rng_bits.mlir", rt_source_dir());
  ry_graph *g = NULL, *v = NULL;
  CHECK_OK(ry_stablehlo_parse_file(path, &g));
  if (!g) return;
  int n_out = ry_graph_num_outputs(g);
  int in_axes[1] = {0}, out_axes[16] = {0};
  CHECK(n_out > 0 && n_out <= 16);
  CHECK_OK(ry_vmap(g, 3, in_axes, out_axes, &v));
  uint32_t keys[3][4] = {{7, 9, 0xFFFFFFFFu, 0xFFFFFFFFu}, {1, 2, 3, 4}, {0, 0, 0xFFFFFFF0u, 5}};
  ry_array *kb = host(RY_U32, RY_SHAPE(3, 4), keys), *vout[16] = {0};
  if (v && n_out <= 16) run1(v, 1, &kb, n_out, vout);
  for (int lane = 0; lane < 3 && v && vout[0]; lane++) {
    ry_array *k = host(RY_U32, RY_SHAPE(4), keys[lane]), *out[16] = {0};
    run1(g, 1, &k, n_out, out);
    for (int i = 0; i < n_out && out[i]; i++) {
      size_t nb = ry_array_nbytes(out[i]);
      const char *all = ry_array_data(vout[i]);
      CHECK_MSG(all && memcmp(all + (size_t)lane * nb, ry_array_data(out[i]), nb) == 0, "lane %d, output %d differs", lane, i);
      ry_array_release(out[i]);
    }
    ry_array_release(k);
  }
  for (int i = 0; i < n_out && i < 16; i++) ry_array_release(vout[i]);
  ry_array_release(kb);
  ry_graph_release(v);
  ry_graph_release(g);
}

/* Errors: malformed text names line:column; what ryft lacks is refused by name. */
TEST(stablehlo_import_errors) {
  static const struct {
    const char *text;
    ry_code code;
    const char *where, *what;
  } cases[] = {
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.add %a, %b : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       RY_ERR_PARSE, "t.mlir:2:3", "unknown value %b"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.fft %a : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       RY_ERR_UNSUPPORTED, "t.mlir:2:3", "stablehlo.fft"},
      {"func.func @main(%a: tensor<2xui4>) -> tensor<2xui4> {\n  return %a : tensor<2xui4>\n}\n", RY_ERR_UNSUPPORTED,
       "t.mlir:1:21", "element type ui4"},
      {"func.func @main(%a: tensor<?xf32>) -> tensor<2xf32> {\n  return %a : tensor<2xf32>\n}\n", RY_ERR_UNSUPPORTED,
       "t.mlir:1:21", "dynamic shape"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.add %a, %a : tensor<2xf32>\n", RY_ERR_PARSE,
       "t.mlir:1:53", "unterminated region"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<3xf32> {\n  %0 = stablehlo.add %a, %a : tensor<3xf32>\n  return %0 : tensor<3xf32>\n}\n",
       RY_ERR_UNSUPPORTED, "t.mlir:2:3", "written f32[3]; ryft's op gives f32[2]"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.constant dense<[1.0, 2.0, 3.0]> : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       RY_ERR_PARSE, "t.mlir:2:3", "malformed dense literal"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = func.call @nope(%a) : (tensor<2xf32>) -> tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       RY_ERR_PARSE, "t.mlir:2:3", "unknown function @nope"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = func.call @main(%a) : (tensor<2xf32>) -> tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       RY_ERR_UNSUPPORTED, "t.mlir:2:3", "recursive call"},
      {"", RY_ERR_PARSE, "t.mlir:1:1", "no func.func"},
      {"module {\n  func.func @main() -> () {\n    return\n  }\n", RY_ERR_PARSE, "t.mlir:5:1", "module not closed"},
      {"func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.custom_call @foo(%a) : (tensor<2xf32>) -> tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       RY_ERR_UNSUPPORTED, "t.mlir:2:3", "custom_call target @foo"},
      {"func.func @main(%k: tensor<4xui32>) -> tensor<3xui32> {\n  %s, %o = stablehlo.rng_bit_generator %k, algorithm = THREE_FRY : "
       "(tensor<4xui32>) -> (tensor<4xui32>, tensor<3xui32>)\n  return %o : tensor<3xui32>\n}\n",
       RY_ERR_UNSUPPORTED, "t.mlir:2:3", "state that is not ui64[2]"},
      {"func.func @main(%k: tensor<2xui64>) -> tensor<3xui32> {\n  %s, %o = stablehlo.rng_bit_generator %k, algorithm = MERSENNE : "
       "(tensor<2xui64>) -> (tensor<2xui64>, tensor<3xui32>)\n  return %o : tensor<3xui32>\n}\n",
       RY_ERR_UNSUPPORTED, "t.mlir:2:3", "rng_algorithm MERSENNE"},
      {"func.func @main(%k: tensor<3xui32>) -> tensor<ui64> {\n  %0 = stablehlo.bitcast_convert %k : (tensor<3xui32>) -> tensor<ui64>\n"
       "  return %0 : tensor<ui64>\n}\n",
       RY_ERR_PARSE, "t.mlir:2:3", "last dimension of 2"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ry_graph *g = (ry_graph *)1;
    ry_status s = ry_stablehlo_parse(cases[i].text, -1, "t.mlir", &g);
    CHECK_MSG(s != NULL, "case %zu: no error", i);
    CHECK(g == NULL);
    if (!s) continue;
    const char *m = ry_status_message(s);
    CHECK_MSG(ry_status_code(s) == cases[i].code, "case %zu: code %d: %s", i, (int)ry_status_code(s), m);
    CHECK_MSG(strstr(m, cases[i].where) != NULL, "case %zu: no '%s' in: %s", i, cases[i].where, m);
    CHECK_MSG(strstr(m, cases[i].what) != NULL, "case %zu: no '%s' in: %s", i, cases[i].what, m);
    ry_status_free(s);
  }
  ry_graph *g = NULL;
  CHECK_ERR(ry_stablehlo_parse(NULL, -1, "x", &g), RY_ERR_INVALID_ARGUMENT, "text is NULL");
  CHECK_ERR(ry_stablehlo_parse("", -1, "x", NULL), RY_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(ry_stablehlo_parse_file("/nonexistent/x.mlir", &g), RY_ERR_IO, "/nonexistent/x.mlir");
}

/* ---- the JAX-lowered corpus (tests/data/stablehlo, gen_jax_stablehlo.py) ---- */

static void corpus_compare(const char *what, const char *name, int i, ry_array *got, ry_array *want, double rtol, double atol) {
  if (!got || !want) return;
  if (!ry_type_equal(ry_array_type(got), ry_array_type(want))) {
    char a[128], b[128];
    rt_fail(__FILE__, __LINE__, "%s: %s %d: type %s, want %s", name, what, i, ry_type_str(ry_array_type(got), a, sizeof a),
            ry_type_str(ry_array_type(want), b, sizeof b));
    return;
  }
  int bad = 0;
  for (int64_t k = 0; k < ry_array_numel(want) && bad < 5; k++) {
    double g = ry_array_get_f64(got, k), w = ry_array_get_f64(want, k);
    bool same = g == w || (isnan(g) && isnan(w)); /* infinities, NaN, and exact cases (tol 0) */
    if (!same && !(fabs(g - w) <= atol + rtol * fabs(w))) {
      bad++;
      rt_fail(__FILE__, __LINE__, "%s: %s %d element %lld: got %.9g, want %.9g", name, what, i, (long long)k, g, w);
    }
  }
}

static void corpus_case(const char *dir, const char *name, ry_device *dev, ry_array **ins, int n_in, ry_array **outs,
                        int n_out, ry_array *grad, ry_array *vin, ry_array **vouts, int n_vout, double rtol, double atol) {
  char path[1200], full[300];
  snprintf(full, sizeof full, "jax_corpus/%s@%s", name, ry_device_name(dev));
  rt_case_begin(full);
  snprintf(path, sizeof path, "%s/%s.mlir", dir, name);
  ry_graph *g = NULL;
  CHECK_OK(ry_stablehlo_parse_file(path, &g));
  if (!g) {
    rt_case_end();
    return;
  }
  ry_array *got[16] = {0};
  CHECK_OK(ry_run(g, dev, n_in, ins, n_out, got));
  for (int i = 0; i < n_out; i++) {
    corpus_compare("output", name, i, got[i], outs[i], rtol, atol);
    ry_array_release(got[i]);
    got[i] = NULL;
  }
  if (grad) { /* ry_grad of the imported program against jax.grad */
    ry_graph *dg = NULL;
    CHECK_OK(ry_grad(g, NULL, &dg));
    if (dg) {
      CHECK_OK(ry_run(dg, dev, n_in, ins, 1, got));
      corpus_compare("grad", name, 0, got[0], grad, rtol * 10, atol * 10);
      ry_array_release(got[0]);
      got[0] = NULL;
    }
    ry_graph_release(dg);
  }
  if (vin) { /* ry_vmap over input 0 against jax.vmap */
    int axes[16];
    for (int i = 0; i < n_in; i++) axes[i] = i == 0 ? 0 : RY_NOT_BATCHED;
    ry_graph *vg = NULL;
    CHECK_OK(ry_vmap(g, 3, axes, NULL, &vg));
    if (vg) {
      ry_array *vi[16];
      vi[0] = vin;
      for (int i = 1; i < n_in; i++) vi[i] = ins[i];
      CHECK_OK(ry_run(vg, dev, n_in, vi, n_vout, got));
      for (int i = 0; i < n_vout; i++) {
        corpus_compare("vmap output", name, i, got[i], vouts[i], rtol, atol);
        ry_array_release(got[i]);
      }
    }
    ry_graph_release(vg);
  }
  ry_graph_release(g);
  rt_case_end();
}

int jax_corpus_run(const char *device_name) {
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get(device_name, &dev));
  if (!dev) return 0;
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/tests/data/stablehlo", rt_source_dir());
  snprintf(path, sizeof path, "%s/jax_corpus.txt", dir);
  size_t len;
  char *text = golden_read_file(path, &len);
  CHECK_MSG(text != NULL, "cannot read %s", path);
  if (!text) return 0;
  char name[128] = "";
  ry_array *ins[16], *outs[16], *vouts[16], *grad = NULL, *vin = NULL;
  int n_in = 0, n_out = 0, n_vout = 0, count = 0;
  double rtol = 0, atol = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') continue;
    if (strncmp(line, "case ", 5) == 0) {
      snprintf(name, sizeof name, "%s", line + 5);
    } else if (strncmp(line, "tol ", 4) == 0) {
      sscanf(line + 4, "%lf %lf", &rtol, &atol);
    } else if (strcmp(line, "end") == 0) {
      corpus_case(dir, name, dev, ins, n_in, outs, n_out, grad, vin, vouts, n_vout, rtol, atol);
      for (int i = 0; i < n_in; i++) ry_array_release(ins[i]);
      for (int i = 0; i < n_out; i++) ry_array_release(outs[i]);
      for (int i = 0; i < n_vout; i++) ry_array_release(vouts[i]);
      ry_array_release(grad);
      ry_array_release(vin);
      grad = vin = NULL;
      n_in = n_out = n_vout = 0;
      count++;
    } else {
      char *sp = strchr(line, ' ');
      ry_array *a = sp ? golden_parse_array(sp + 1) : NULL;
      if (!a) {
        rt_fail(__FILE__, __LINE__, "%s: bad line %.40s", path, line);
        continue;
      }
      size_t k = (size_t)(sp - line);
      if (k == 2 && strncmp(line, "in", 2) == 0 && n_in < 16) ins[n_in++] = a;
      else if (k == 3 && strncmp(line, "out", 3) == 0 && n_out < 16) outs[n_out++] = a;
      else if (k == 4 && strncmp(line, "grad", 4) == 0) grad = a;
      else if (k == 3 && strncmp(line, "vin", 3) == 0) vin = a;
      else if (k == 4 && strncmp(line, "vout", 4) == 0 && n_vout < 16) vouts[n_vout++] = a;
      else {
        rt_fail(__FILE__, __LINE__, "%s: bad line %.40s", path, line);
        ry_array_release(a);
      }
    }
  }
  free(text);
  return count;
}

TEST(stablehlo_import_jax_corpus_interp) { CHECK(jax_corpus_run("interp") >= 13); }
TEST(stablehlo_import_jax_corpus_cpu) { CHECK(jax_corpus_run("cpu") >= 13); }

/* The StableHLO project's interpreter suite (tests/conformance), when a
 * checkout is named by RYFT_STABLEHLO_SRC: at least 90% of the modules ryft
 * imports pass on interp and cpu (docs/CONFORMANCE.md has the table). */
TEST(stablehlo_conformance) {
  const char *root = getenv("RYFT_STABLEHLO_SRC");
  if (!root || !*root) {
    rt_skip("stablehlo-src", "set RYFT_STABLEHLO_SRC to a StableHLO checkout to run its interpreter suite");
    return;
  }
  conf_stats st;
  CHECK_MSG(conformance_run(root, NULL, &st) == 0, "cannot read %s/stablehlo/tests/interpret", root);
  printf("  conformance: %d modules, %d passed, %d failed, %d unsupported\n", st.modules, st.passed, st.failed,
         st.unsupported);
  CHECK(st.modules >= 400);
  CHECK_MSG(st.passed * 10 >= (st.passed + st.failed) * 9, "%d of %d importable modules pass", st.passed,
            st.passed + st.failed);
}

/* Shardy shardings (what JAX 0.10 writes) are kept as `sharding` ops: on
 * main's inputs and outputs, and for sharding constraints. */
TEST(stablehlo_import_shardings) {
  static const char *text =
      "module @jit_f attributes {mhlo.num_partitions = 4 : i32, mhlo.num_replicas = 1 : i32} {\n"
      "  sdy.mesh @mesh = <[\"x\"=2, \"y\"=2]> {stablehlo.mesh = {axes = [{name = \"x\", size = 2 : i64}]}}\n"
      "  func.func public @main(%arg0: tensor<4x4xf32> {sdy.sharding = #sdy.sharding<@mesh, [{\"x\"}, {}]>}) -> (tensor<4x4xf32> {jax.result_info = \"result\", sdy.sharding = #sdy.sharding<@mesh, [{\"x\"}, {}]>}) {\n"
      "    %1 = stablehlo.multiply %arg0, %arg0 : tensor<4x4xf32>\n"
      "    %2 = sdy.sharding_constraint %1 <@mesh, [{}, {\"y\"}]> : tensor<4x4xf32>\n"
      "    return %2 : tensor<4x4xf32>\n"
      "  }\n"
      "}\n";
  ry_graph *g = import_ok(text);
  char *ir = NULL;
  if (g) CHECK_OK(ry_graph_to_string(g, &ir));
  if (ir) {
    CHECK_MSG(strstr(ir, "sharding %arg0 {mesh=[2, 2], dims=[0, -1]}") != NULL, "%s", ir);
    CHECK_MSG(strstr(ir, "{mesh=[2, 2], dims=[-1, 1]}") != NULL, "%s", ir);
  }
  ry_free(ir);
  ry_graph_release(g);
  static const char *two_axes =
      "sdy.mesh @m = <[\"x\"=2, \"y\"=2]>\n"
      "func.func @main(%a: tensor<4xf32> {sdy.sharding = #sdy.sharding<@m, [{\"x\", \"y\"}]>}) -> tensor<4xf32> {\n"
      "  return %a : tensor<4xf32>\n"
      "}\n";
  CHECK_ERR(ry_stablehlo_parse(two_axes, -1, "s.mlir", &g), RY_ERR_UNSUPPORTED, "s.mlir:2:", "several mesh axes");
  static const char *no_mesh =
      "func.func @main(%a: tensor<4xf32> {sdy.sharding = #sdy.sharding<@m, [{\"x\"}]>}) -> tensor<4xf32> {\n"
      "  return %a : tensor<4xf32>\n"
      "}\n";
  CHECK_ERR(ry_stablehlo_parse(no_mesh, -1, "s.mlir", &g), RY_ERR_PARSE, "s.mlir:1:", "unknown mesh @m");
}

/* GSPMD sharding strings (ryft's own export, older JAX): every mesh and dims
 * ryft exports comes back as itself, the same sharding written twice (the
 * argument's attribute and its Sharding custom call) is one op. */
TEST(stablehlo_import_gspmd_round_trip) {
  static const char *ir =
      "func @main(%x: f32[8,4], %y: f32[8,4]) -> (f32[8,4]) {\n"
      "  %0: f32[8,4] = sharding %x {mesh=[2, 2], dims=[1, -1]}\n"
      "  %1: f32[8,4] = sharding %y {mesh=[4], dims=[-1, 0]}\n"
      "  %2: f32[8,4] = add %0, %1\n"
      "  %3: f32[8,4] = sharding %2 {mesh=[2, 2], dims=[0, 1]}\n"
      "  %4: f32[8,4] = mul %3, %3\n"
      "  %5: f32[8,4] = sharding %4 {mesh=[2], dims=[0, -1]}\n"
      "  return %5\n"
      "}\n";
  ry_graph *g = NULL, *g2 = NULL;
  CHECK_OK(ry_graph_parse(ir, -1, "t", &g));
  char *t1 = NULL, *t2 = NULL, *p1 = NULL, *p2 = NULL;
  if (g) CHECK_OK(ry_stablehlo_emit(g, &t1));
  if (t1) CHECK_OK(ry_stablehlo_parse(t1, -1, "export", &g2));
  if (g2) {
    CHECK_OK(ry_stablehlo_emit(g2, &t2));
    CHECK_OK(ry_graph_to_string(g, &p1));
    CHECK_OK(ry_graph_to_string(g2, &p2));
  }
  if (t1 && t2) CHECK_STR(t2, t1);
  if (p1 && p2) { /* the same program, names aside */
    const char *a = strstr(p1, "sharding"), *b = strstr(p2, "sharding");
    CHECK_MSG(a && b && strstr(p2, "{mesh=[2, 2], dims=[1, -1]}") && strstr(p2, "{mesh=[4], dims=[-1, 0]}") &&
                  strstr(p2, "{mesh=[2, 2], dims=[0, 1]}") && strstr(p2, "{mesh=[2], dims=[0, -1]}"),
              "%s", p2);
    int n1 = 0, n2 = 0;
    for (const char *q = p1; (q = strstr(q, "= sharding")); q++) n1++;
    for (const char *q = p2; (q = strstr(q, "= sharding")); q++) n2++;
    CHECK_EQ_INT(n2, n1);
  }
  ry_free(t1);
  ry_free(t2);
  ry_free(p1);
  ry_free(p2);
  ry_graph_release(g);
  ry_graph_release(g2);
  static const char *maximal =
      "func.func @main(%a: tensor<4xf32> {mhlo.sharding = \"{maximal device=0}\"}) -> tensor<4xf32> {\n"
      "  return %a : tensor<4xf32>\n"
      "}\n";
  CHECK_ERR(ry_stablehlo_parse(maximal, -1, "m.mlir", &g), RY_ERR_UNSUPPORTED, "m.mlir:1:", "maximal device=0");
}

/* Collectives: ryft's export reads back as the same program (a mesh whose
 * groups are single devices reads back as one axis: the same groups), the
 * ops as JAX writes them (generic form, channel_handle,
 * use_global_device_ids) import, and groupings ryft's mesh axes cannot say
 * are refused by name. */
TEST(stablehlo_import_collectives_round_trip) {
  static const char *ir =
      "func @main(%x: f32[4,2], %y: i32[4]) -> (f32[4,2], f32[8,2], f32[2,2], f32[4,2], i32[4], f32[4,2], i32[4]) {\n"
      "  %0: f32[4,2] = all_reduce %x {kind=sum, mesh=[4], axes=[0]}\n"
      "  %1: f32[8,2] = all_gather %x {dim=0, mesh=[2, 2], axes=[0]}\n"
      "  %2: f32[2,2] = reduce_scatter %x {dim=0, kind=max, mesh=[2, 2], axes=[1]}\n"
      "  %3: f32[4,2] = collective_broadcast %x {source=1, mesh=[2, 2], axes=[0]}\n"
      "  %4: i32[4] = collective_broadcast %y {source=2, mesh=[4], axes=[0]}\n"
      "  %5: f32[4,2] = all_reduce %x {kind=min, mesh=[4], axes=[]}\n"
      "  %6: i32[4] = all_reduce %y {kind=prod, mesh=[2, 2, 2], axes=[1]}\n"
      "  return %0, %1, %2, %3, %4, %5, %6\n"
      "}\n";
  ry_graph *g = NULL, *g2 = NULL;
  CHECK_OK(ry_graph_parse(ir, -1, "t", &g));
  char *t1 = NULL, *t2 = NULL, *p2 = NULL;
  if (g) CHECK_OK(ry_stablehlo_emit(g, &t1));
  if (t1) CHECK_OK(ry_stablehlo_parse(t1, -1, "export", &g2));
  if (g2) {
    CHECK_OK(ry_stablehlo_emit(g2, &t2));
    CHECK_OK(ry_graph_to_string(g2, &p2));
  }
  if (t1 && t2) CHECK_STR(t2, t1);
  static const char *const want[] = {
      "= all_reduce %arg0 {kind=sum, mesh=[4], axes=[0]}", "= all_gather %arg0 {dim=0, mesh=[2, 2], axes=[0]}",
      "= reduce_scatter %arg0 {dim=0, kind=max, mesh=[2, 2], axes=[1]}", "= collective_broadcast %arg0 {source=1, mesh=[2, 2], axes=[0]}",
      "= collective_broadcast %arg1 {source=2, mesh=[4], axes=[0]}", "= all_reduce %arg0 {kind=min, mesh=[4], axes=[]}",
      "= all_reduce %arg1 {kind=prod, mesh=[2, 2, 2], axes=[1]}"};
  for (size_t i = 0; p2 && i < sizeof want / sizeof *want; i++) CHECK_MSG(strstr(p2, want[i]), "no '%s' in\n%s", want[i], p2);
  ry_free(t1);
  ry_free(t2);
  ry_free(p2);
  ry_graph_release(g);
  ry_graph_release(g2);
  /* JAX's spelling (jax.lax.psum / all_gather / psum_scatter over 4 devices) */
  static const char *jax =
      "func.func @main(%arg0: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<16x2xf32>, tensor<1x2xf32>) {\n"
      "  %2 = \"stablehlo.all_reduce\"(%arg0) <{channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, replica_groups = "
      "dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, use_global_device_ids}> ({\n"
      "  ^bb0(%arg2: tensor<f32>, %arg3: tensor<f32>):\n"
      "    %10 = stablehlo.add %arg2, %arg3 : tensor<f32>\n"
      "    stablehlo.return %10 : tensor<f32>\n"
      "  }) : (tensor<4x2xf32>) -> tensor<4x2xf32>\n"
      "  %3 = \"stablehlo.all_gather\"(%arg0) <{all_gather_dim = 0 : i64, channel_handle = #stablehlo.channel_handle<handle = 1, "
      "type = 1>, replica_groups = dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, use_global_device_ids}> : (tensor<4x2xf32>) -> "
      "tensor<16x2xf32>\n"
      "  %4 = \"stablehlo.reduce_scatter\"(%arg0) <{channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, replica_groups "
      "= dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>, scatter_dimension = 0 : i64, use_global_device_ids}> ({\n"
      "  ^bb0(%arg2: tensor<f32>, %arg3: tensor<f32>):\n"
      "    %10 = stablehlo.add %arg2, %arg3 : tensor<f32>\n"
      "    stablehlo.return %10 : tensor<f32>\n"
      "  }) : (tensor<4x2xf32>) -> tensor<1x2xf32>\n"
      "  return %2, %3, %4 : tensor<4x2xf32>, tensor<16x2xf32>, tensor<1x2xf32>\n"
      "}\n";
  g = import_ok(jax);
  char *p = NULL;
  if (g) CHECK_OK(ry_graph_to_string(g, &p));
  if (p)
    CHECK_MSG(strstr(p, "all_reduce %arg0 {kind=sum, mesh=[4], axes=[0]}") && strstr(p, "all_gather %arg0 {dim=0, mesh=[4], axes=[0]}") &&
                  strstr(p, "reduce_scatter %arg0 {dim=0, kind=sum, mesh=[4], axes=[0]}"),
              "%s", p);
  ry_free(p);
  ry_graph_release(g);
  /* groupings that are not one mesh axis, or not in ryft's order */
  static const char *const bad[][2] = {
      {"\"stablehlo.collective_broadcast\"(%a) {replica_groups = dense<[[0, 3], [1, 2]]> : tensor<2x2xi64>}", "not one axis of a device mesh"},
      {"\"stablehlo.collective_broadcast\"(%a) {replica_groups = dense<[[1, 0], [2, 3]]> : tensor<2x2xi64>}", "different positions"},
      {"\"stablehlo.all_gather\"(%a) {all_gather_dim = 0 : i64, replica_groups = dense<[[1, 0]]> : tensor<1x2xi64>}", "increasing order"},
      {"\"stablehlo.collective_broadcast\"(%a) {replica_groups = dense<[[0, 1], [1, 2]]> : tensor<2x2xi64>}", "each of the ids 0..3 once"},
      {"\"stablehlo.collective_broadcast\"(%a) {replica_groups = dense<> : tensor<0x0xi64>}", "empty replica_groups"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    bool gather = strstr(bad[i][0], "all_gather") != NULL;
    char text[1024];
    snprintf(text, sizeof text, "func.func @main(%%a: tensor<4xf32>) -> tensor<%dxf32> {\n  %%0 = %s : (tensor<4xf32>) -> tensor<%dxf32>\n"
             "  return %%0 : tensor<%dxf32>\n}\n", gather ? 8 : 4, bad[i][0], gather ? 8 : 4, gather ? 8 : 4);
    g = NULL;
    CHECK_ERR(ry_stablehlo_parse(text, -1, "c.mlir", &g), RY_ERR_UNSUPPORTED, "c.mlir:2:", bad[i][1]);
    ry_graph_release(g);
  }
}
