/* Cold start of the cpu backend (src/backend/cpu/cpu.c): with a compile
 * cache miss, ry_compile returns before the C compiler has run, the first
 * runs go node by node (the interpreter's kernels, the plan's GEMMs) and
 * the compiled module takes over once it is loaded.
 *
 * - every golden program run node by node on the cpu device matches JAX;
 * - node-by-node runs give the interpreter's bits where no GEMM and no f32
 *   exp or erf is involved; those two are the compiled kernels' functions
 *   (module/math_f32.h), bit for bit; the compiled runs that follow agree
 *   with them to float rounding (contracted multiply-adds and f32 sums are
 *   the compiled code's; the interpreter sums in double);
 * - runs from several threads while the module compiles, and freeing an
 *   executable whose compile is still running (CI's TSan job: "concurrent");
 * - RYFT_COMPILE_SYNC=1 compiles before ry_compile returns;
 * - a module that fails to compile leaves the program running, and says so.
 *
 * The test runner sets RYFT_COMPILE_SYNC=1 for every other test; these turn
 * background compiles on with ryc_set_background_compiles. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "cpu_testlib.h"
#include "golden.h"
#include "testlib.h"

/* a salt no other program of this process has used: the module is in
 * neither cache (with a fresh cache directory) */
static double fresh_salt(void) {
  static atomic_int n;
  return 1.0 + 1e-3 * (double)(getpid() % 997) + 1e-7 * (double)atomic_fetch_add(&n, 1);
}

/* three programs: a row kernel (softmax scaled by the salt), a reduction
 * over the leading axis with a broadcast bias, and a dense layer (a GEMM
 * step) with relu */
static ry_graph *cold_program(int which, double salt) {
  char text[2048];
  if (which == 0)
    snprintf(text, sizeof text,
             "func @main(%%x: f32[64,256]) -> (f32[64,256]) {\n"
             "  %%c: f32[] = constant {value=[%.17g]}\n"
             "  %%cb: f32[64,256] = broadcast_in_dim %%c {dims=[]}\n"
             "  %%xs: f32[64,256] = mul %%x, %%cb\n"
             "  %%0: f32[64] = reduce %%xs {kind=max, axes=[1]}\n"
             "  %%1: f32[64,256] = broadcast_in_dim %%0 {dims=[0]}\n"
             "  %%2: f32[64,256] = sub %%xs, %%1\n"
             "  %%3: f32[64,256] = exp %%2\n"
             "  %%4: f32[64] = reduce %%3 {kind=sum, axes=[1]}\n"
             "  %%5: f32[64,256] = broadcast_in_dim %%4 {dims=[0]}\n"
             "  %%6: f32[64,256] = div %%3, %%5\n"
             "  return %%6\n"
             "}\n",
             salt);
  else if (which == 1)
    snprintf(text, sizeof text,
             "func @main(%%x: f32[64,256]) -> (f32[256], f32[64,256]) {\n"
             "  %%c: f32[] = constant {value=[%.17g]}\n"
             "  %%0: f32[256] = reduce %%x {kind=sum, axes=[0]}\n"
             "  %%cb: f32[256] = broadcast_in_dim %%c {dims=[]}\n"
             "  %%1: f32[256] = mul %%0, %%cb\n"
             "  %%2: f32[64,256] = broadcast_in_dim %%1 {dims=[1]}\n"
             "  %%3: f32[64,256] = add %%x, %%2\n"
             "  %%4: f32[64,256] = tanh %%3\n"
             "  return %%1, %%4\n"
             "}\n",
             salt);
  else
    snprintf(text, sizeof text,
             "func @main(%%x: f32[64,256], %%w: f32[256,32]) -> (f32[64,32]) {\n"
             "  %%c: f32[] = constant {value=[%.17g]}\n"
             "  %%0: f32[64,32] = dot_general %%x, %%w "
             "{lhs_batch=[], rhs_batch=[], lhs_contract=[1], rhs_contract=[0]}\n"
             "  %%cb: f32[64,32] = broadcast_in_dim %%c {dims=[]}\n"
             "  %%1: f32[64,32] = add %%0, %%cb\n"
             "  %%z: f32[] = constant {value=[0]}\n"
             "  %%zb: f32[64,32] = broadcast_in_dim %%z {dims=[]}\n"
             "  %%2: f32[64,32] = max %%1, %%zb\n"
             "  return %%2\n"
             "}\n",
             salt);
  return parse(text);
}

static int cold_inputs(int which, ry_array **in) {
  in[0] = filled(RY_SHAPE(64, 256), wave);
  if (which < 2) return 1;
  in[1] = filled(RY_SHAPE(256, 32), wave);
  return 2;
}

static int cold_outputs(int which) { return which == 1 ? 2 : 1; }

/* largest |a - b| / (floor + |b|) over the elements; -1 when the bits are equal */
static double diff_floor(const ry_array *a, const ry_array *b, double floor) {
  if (ry_array_numel(a) == ry_array_numel(b) && !memcmp(ry_array_data(a), ry_array_data(b), ry_array_nbytes(a)))
    return -1;
  double worst = 0;
  for (int64_t j = 0; j < ry_array_numel(b); j++) {
    double x = ry_array_get_f64(a, j), w = ry_array_get_f64(b, j);
    double e = fabs(x - w) / (floor + fabs(w));
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

static double diff(const ry_array *a, const ry_array *b) { return diff_floor(a, b, 1e-3); }

static int last_run_cold(void) {
  ryc_run_stats st;
  ryc_last_run_stats(&st);
  return st.cold;
}

/* Runs e until a run is not cold (the module is loaded); false after a minute. */
static bool wait_compiled(ry_executable *e, int n_in, ry_array **in, int n_out) {
  for (int i = 0; i < 6000; i++) {
    ry_array *o[2] = {0};
    ry_status s = ry_execute(e, n_in, in, n_out, o);
    if (s) {
      ry_status_free(s);
      return false;
    }
    for (int k = 0; k < n_out; k++) ry_array_release(o[k]);
    if (!last_run_cold()) return true;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}

TEST(cpu_cold_first_runs_go_node_by_node) {
  char dir[256];
  temp_dir(dir, sizeof dir, "cold");
  char *old = use_cache_dir(dir);
  ryc_set_background_compiles(1);
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  for (int which = 0; which < 3; which++) {
    ry_graph *g = cold_program(which, fresh_salt());
    if (!g) continue;
    ry_array *in[2], *want[2] = {0}, *cold[2] = {0}, *hot[2] = {0};
    int n_in = cold_inputs(which, in), n_out = cold_outputs(which);
    CHECK_OK(ry_run(g, interp, n_in, in, n_out, want));
    ry_executable *e = NULL;
    CHECK_OK(ry_compile(g, cpu(), &e));
    CHECK_OK(ry_execute(e, n_in, in, n_out, cold));
    CHECK_MSG(last_run_cold(), "program %d: the first run waited for the compiler", which);
    CHECK_MSG(wait_compiled(e, n_in, in, n_out), "program %d: never compiled", which);
    CHECK_OK(ry_execute(e, n_in, in, n_out, hot));
    CHECK(!last_run_cold());
    for (int k = 0; k < n_out; k++) {
      if (!want[k] || !cold[k] || !hot[k]) continue;
      /* without a GEMM or an exp a cold run is the interpreter, bit for bit;
       * its exp is the compiled kernels' (within an ulp or two of libm's);
       * the GEMM sums 256 products of size up to ~10 in f32, the
       * interpreter in double: f32 rounding of partial sums up to ~100, so
       * relative to 1 + |x| within 1e-4 */
      double dc = which < 2 ? diff(cold[k], want[k]) : diff_floor(cold[k], want[k], 1.0);
      double dh = diff(hot[k], cold[k]);
      double tol = which == 1 ? 0 : which == 0 ? 1e-6 : 1e-4;
      CHECK_MSG(tol == 0 ? dc < 0 : dc < tol, "program %d output %d: cold run differs from the interpreter by %g",
                which, k, dc);
      CHECK_MSG(dh < 1e-5, "program %d output %d: compiled run differs from the cold one by %g", which, k, dh);
    }
    for (int k = 0; k < 2; k++) {
      ry_array_release(want[k]);
      ry_array_release(cold[k]);
      ry_array_release(hot[k]);
    }
    ry_executable_free(e);
    for (int k = 0; k < n_in; k++) ry_array_release(in[k]);
    ry_graph_release(g);
  }
  ryc_set_background_compiles(-1);
  restore_cache_dir(old);
}

/* A donated input is consumed by a cold run as by a compiled one. */
TEST(cpu_cold_run_takes_donated_inputs) {
  char dir[256];
  temp_dir(dir, sizeof dir, "colddon");
  char *old = use_cache_dir(dir);
  ryc_set_background_compiles(1);
  ry_graph *g = cold_program(1, fresh_salt());
  ry_executable *e = NULL;
  if (g) CHECK_OK(ry_compile(g, cpu(), &e));
  if (e) {
    ry_array *in[1], *keep, *o[2] = {0}, *o2[2] = {0};
    cold_inputs(1, in);
    keep = ry_array_retain(in[0]);
    bool donate[1] = {true};
    CHECK_OK(ry_execute(e, 1, &keep, 2, o2));
    CHECK_OK(ry_execute_donated(e, 1, in, donate, 2, o));
    CHECK(last_run_cold());
    for (int k = 0; k < 2; k++)
      if (o[k] && o2[k]) CHECK_MSG(diff(o[k], o2[k]) < 0, "output %d differs when donated", k);
    for (int k = 0; k < 2; k++) {
      ry_array_release(o[k]);
      ry_array_release(o2[k]);
    }
    ry_array_release(keep);
    ry_executable_free(e);
  }
  ry_graph_release(g);
  ryc_set_background_compiles(-1);
  restore_cache_dir(old);
}

typedef struct {
  ry_executable *e;
  const ry_array *want;
  atomic_int bad, cold;
} cold_shared;

static void *cold_worker(void *arg) {
  cold_shared *c = arg;
  ry_array *in[2];
  cold_inputs(0, in);
  for (int r = 0; r < 20; r++) {
    ry_array *o = NULL;
    ry_status s = ry_execute(c->e, 1, in, 1, &o);
    if (s) {
      ry_status_free(s);
      atomic_fetch_add(&c->bad, 1);
      continue;
    }
    if (last_run_cold()) atomic_fetch_add(&c->cold, 1);
    if (!(diff(o, c->want) < 1e-5)) atomic_fetch_add(&c->bad, 1);
    ry_array_release(o);
  }
  ry_array_release(in[0]);
  return NULL;
}

/* Runs from four threads while the module compiles and after; then an
 * executable freed before its compile can have finished. */
TEST(cpu_cold_concurrent_runs_while_compiling) {
  char dir[256];
  temp_dir(dir, sizeof dir, "coldthr");
  char *old = use_cache_dir(dir);
  ryc_set_background_compiles(1);
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  ry_graph *g = cold_program(0, fresh_salt());
  ry_array *in[2], *want = NULL;
  cold_inputs(0, in);
  if (g) CHECK_OK(ry_run(g, interp, 1, in, 1, &want));
  cold_shared c = {NULL, want, 0, 0};
  if (g && want) CHECK_OK(ry_compile(g, cpu(), &c.e));
  if (c.e) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, cold_worker, &c);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(atomic_load(&c.bad), 0);
    CHECK_MSG(atomic_load(&c.cold) > 0, "no run went node by node");
    ry_executable_free(c.e);
  }
  ry_graph_release(g);
  g = cold_program(2, fresh_salt());
  ry_executable *e = NULL;
  if (g) CHECK_OK(ry_compile(g, cpu(), &e));
  ry_executable_free(e); /* joins the compile thread */
  ry_graph_release(g);
  ry_array_release(want);
  ry_array_release(in[0]);
  ryc_set_background_compiles(-1);
  restore_cache_dir(old);
}

/* RYFT_COMPILE_SYNC=1 (the runner sets it) compiles before the first run. */
TEST(cpu_cold_sync_compile_env) {
  char dir[256];
  temp_dir(dir, sizeof dir, "coldsync");
  char *old = use_cache_dir(dir);
  const char *env = getenv("RYFT_COMPILE_SYNC");
  CHECK_MSG(env && !strcmp(env, "1"), "the runner did not set RYFT_COMPILE_SYNC=1");
  ry_graph *g = cold_program(0, fresh_salt());
  ry_executable *e = NULL;
  if (g) CHECK_OK(ry_compile(g, cpu(), &e));
  if (e) {
    ry_array *in[2], *o = NULL;
    cold_inputs(0, in);
    CHECK_OK(ry_execute(e, 1, in, 1, &o));
    CHECK(!last_run_cold());
    ry_array_release(o);
    ry_array_release(in[0]);
    ry_executable_free(e);
  }
  ry_graph_release(g);
  restore_cache_dir(old);
}

/* The compiler fails in the background: the program keeps running node by
 * node, with right results, and the failure is said on stderr. */
TEST(cpu_cold_compile_failure_keeps_running) {
  if (getenv("RYFT_TEST_COLDCC_CHILD")) return;
  char cmd[1400], errp[300], dir[256], self[512];
  temp_dir(dir, sizeof dir, "coldcc");
  snprintf(errp, sizeof errp, "%s/err.txt", dir);
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = 0;
  snprintf(cmd, sizeof cmd,
           "RYFT_CFLAGS=-fno-such-flag-for-ryft RYFT_CACHE_DIR='%s' RYFT_TEST_COLDCC_CHILD=1 '%s' cpu_cold_badcc_child "
           "> '%s' 2>&1",
           dir, self, errp);
  int rc = system(cmd);
  char *out = rt_read_file(errp, NULL);
  CHECK_MSG(rc == 0, "child exit %d: %s", rc, out ? out : "");
  CHECK_MSG(out && strstr(out, "keeps running in the interpreter") && strstr(out, "fno-such-flag-for-ryft"),
            "no message: %s", out ? out : "");
  free(out);
}

TEST(cpu_cold_badcc_child) {
  if (!getenv("RYFT_TEST_COLDCC_CHILD")) return;
  ryc_set_background_compiles(1);
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  ry_graph *g = cold_program(0, fresh_salt());
  ry_array *in[2], *want = NULL;
  cold_inputs(0, in);
  if (g) CHECK_OK(ry_run(g, interp, 1, in, 1, &want));
  ry_executable *e = NULL;
  if (g) CHECK_OK(ry_compile(g, cpu(), &e));
  for (int r = 0; e && want && r < 30; r++) {
    ry_array *o = NULL;
    CHECK_OK(ry_execute(e, 1, in, 1, &o));
    CHECK(last_run_cold());
    if (o) CHECK(diff(o, want) < 1e-6); /* the interpreter's, but for the compiled kernels' exp */
    ry_array_release(o);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  ry_executable_free(e);
  ry_array_release(want);
  ry_array_release(in[0]);
  ry_graph_release(g);
}

/* The golden suite with every run node by node (no module ever loaded):
 * the cold path over every op, against JAX's values. */
TEST(cpu_cold_golden_node_by_node) {
  ryc_set_background_compiles(2);
  int total = golden_run_all("cpu");
  ryc_set_background_compiles(-1);
  CHECK_MSG(total >= 300, "only %d golden cases ran", total);
}

/* f32 exp and erf node by node are the compiled kernels' functions: a cold
 * run (no module ever loaded) and the compiled program give the same bits
 * over a sweep that reaches both ends of each function's range. */
TEST(cpu_cold_exp_erf_bits_are_the_compiled_ones) {
  enum { N = 40000 };
  ry_graph *g = parse("func @main(%x: f32[40000]) -> (f32[40000], f32[40000]) {\n"
                      "  %0: f32[40000] = exp %x\n"
                      "  %1: f32[40000] = erf %x\n"
                      "  return %0, %1\n"
                      "}\n");
  if (!g) return;
  float *xs = malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) xs[i] = -120.0f + 220.0f * (float)i / (float)N + 1e-3f * (float)(i % 7);
  xs[0] = NAN, xs[1] = INFINITY, xs[2] = -INFINITY, xs[3] = -0.0f, xs[4] = 1e-30f;
  ry_array *x = NULL, *cold[2] = {NULL, NULL}, *hot[2] = {NULL, NULL};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(N), xs, &x));
  ry_executable *e = NULL;
  ryc_set_background_compiles(2); /* never compiled: node by node */
  CHECK_OK(ry_compile(g, cpu(), &e));
  if (e) CHECK_OK(ry_execute(e, 1, &x, 2, cold));
  CHECK(last_run_cold());
  ry_executable_free(e);
  e = NULL;
  ryc_set_background_compiles(0);
  CHECK_OK(ry_compile(g, cpu(), &e));
  if (e) CHECK_OK(ry_execute(e, 1, &x, 2, hot));
  CHECK(!last_run_cold());
  ryc_set_background_compiles(-1);
  for (int k = 0; k < 2; k++)
    CHECK_MSG(cold[k] && hot[k] && diff(cold[k], hot[k]) < 0, "%s: node by node and compiled differ by %g",
              k ? "erf" : "exp", cold[k] && hot[k] ? diff(cold[k], hot[k]) : -2.0);
  for (int k = 0; k < 2; k++) {
    ry_array_release(cold[k]);
    ry_array_release(hot[k]);
  }
  ry_array_release(x);
  ry_executable_free(e);
  free(xs);
  ry_graph_release(g);
}
