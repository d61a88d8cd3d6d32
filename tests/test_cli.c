/* The `ryft` command line, run as a child process (posix_spawn, no shell) on
 * the programs and inputs in tests/data/cli/: exit status, stdout and stderr
 * of every command, and every way a command line or an input can be wrong. */
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

extern char **environ;

/* ---- running the binary ----------------------------------------------------- */

typedef struct cli_result {
  int status; /* exit status, or 128 + signal */
  char *out, *err;
} cli_result;

static char g_tmp_dir[1024];
static void remove_tmp_dir(void) { rmdir(g_tmp_dir); }

static const char *tmp_dir(void) {
  char *dir = g_tmp_dir;
  if (!dir[0]) {
    snprintf(dir, sizeof g_tmp_dir, "%s/test_tmp", RYFT_BINARY_DIR);
    mkdir(dir, 0777);
    snprintf(dir, sizeof g_tmp_dir, "%s/test_tmp/cli_%ld", RYFT_BINARY_DIR, (long)getpid());
    mkdir(dir, 0777);
    atexit(remove_tmp_dir); /* empty by then: every test removes its files */
  }
  return dir;
}

static const char *tmp_path(const char *name) {
  static char buf[4][1100];
  static int k;
  char *b = buf[k++ & 3];
  snprintf(b, sizeof buf[0], "%s/%s", tmp_dir(), name);
  return b;
}

static const char *data(const char *name) {
  static char buf[16][1024];
  static int k;
  char *b = buf[k++ & 15];
  snprintf(b, sizeof buf[0], "%s/tests/data/cli/%s", rt_source_dir(), name);
  return b;
}

static char *slurp_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  for (size_t got; b && (got = fread(b + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (n + 1 == cap) {
      char *nb = realloc(b, cap * 2);
      if (!nb) break;
      b = nb;
      cap *= 2;
    }
  }
  if (b) b[n] = 0;
  fclose(f);
  return b;
}

/* Run RYFT_CLI with args (NULL-terminated, argv[0] excluded). */
static cli_result run_cli(const char *const *args) {
  cli_result r = {-1, NULL, NULL};
  const char *argv[64];
  int n = 0;
  argv[n++] = RYFT_CLI;
  while (*args && n < 63) argv[n++] = *args++;
  argv[n] = NULL;
  char outp[1200], errp[1200];
  snprintf(outp, sizeof outp, "%s", tmp_path("stdout.txt"));
  snprintf(errp, sizeof errp, "%s", tmp_path("stderr.txt"));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  int rc = posix_spawn(&pid, RYFT_CLI, &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    rt_fail(__FILE__, __LINE__, "posix_spawn %s: %s", RYFT_CLI, strerror(rc));
    return r;
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    ;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  r.out = slurp_text(outp);
  r.err = slurp_text(errp);
  if (!r.out) r.out = calloc(1, 1);
  if (!r.err) r.err = calloc(1, 1);
  remove(outp);
  remove(errp);
  return r;
}
#define RUN(...) run_cli((const char *const[]){__VA_ARGS__, NULL})

static void result_free(cli_result *r) {
  free(r->out);
  free(r->err);
}

/* Check the exit status, and that `text` contains every keyword. */
static void expect(const char *file, int line, const cli_result *r, int status, const char *which, ...) {
  if (r->status != status)
    rt_fail(file, line, "exit status %d, expected %d\n  stdout: %s\n  stderr: %s", r->status, status, r->out, r->err);
  const char *text = strcmp(which, "out") == 0 ? r->out : r->err;
  va_list ap;
  va_start(ap, which);
  for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *))
    if (!text || !strstr(text, k)) rt_fail(file, line, "std%s lacks \"%s\":\n%s", which, k, text ? text : "(null)");
  va_end(ap);
}
/* EXPECT(r, status, "out" | "err", keywords...) */
#define EXPECT(r, status, which, ...) expect(__FILE__, __LINE__, &(r), (status), (which), __VA_ARGS__, (const char *)NULL)

/* A usage error: status 2, a one-line message and the usage on stderr, and
 * nothing on stdout. */
#define EXPECT_USAGE(r, ...)                                   \
  do {                                                         \
    EXPECT(r, 2, "err", "ryft: ", "usage: ryft", __VA_ARGS__); \
    CHECK_STR((r).out, "");                                    \
  } while (0)

/* ---- positive ------------------------------------------------------------------- */

TEST(cli_help_and_version) {
  cli_result r = RUN("help");
  EXPECT(r, 0, "out", "usage: ryft", "check FILE", "run FILE", "--in NAME=FILE.npy", "devices", "demo");
  result_free(&r);
  r = RUN("--help");
  EXPECT(r, 0, "out", "usage: ryft");
  result_free(&r);
  /* a command's --help is that command's usage, not the global one */
  r = RUN("run", "--help");
  EXPECT(r, 0, "out", "usage: ryft run FILE [--device NAME]", "DIR/out0.npy");
  CHECK_MSG(!strstr(r.out, "commands:") && !strstr(r.out, "vmap FILE"), "%s", r.out);
  result_free(&r);
  r = RUN("grad", "-h");
  EXPECT(r, 0, "out", "usage: ryft grad FILE [--argnums");
  CHECK(!strstr(r.out, "run FILE"));
  result_free(&r);
  r = RUN("version");
  EXPECT(r, 0, "out", "ryft ", ry_version());
  result_free(&r);
}

TEST(cli_devices) {
  cli_result r = RUN("devices");
  EXPECT(r, 0, "out", "interp");
  /* one line per device, each with a description */
  int lines = 0;
  for (const char *p = r.out; *p; p++) lines += *p == '\n';
  CHECK_EQ_INT(lines, ry_device_count());
  for (int i = 0; i < ry_device_count(); i++) CHECK(strstr(r.out, ry_device_description(ry_device_at(i))) != NULL);
  result_free(&r);
}

TEST(cli_check_ok) {
  cli_result r = RUN("check", data("add.ryft"));
  EXPECT(r, 0, "out", "add.ryft: ok (1 ops)");
  CHECK_STR(r.err, "");
  result_free(&r);
  r = RUN("check", data("call_reduce.ryft"));
  EXPECT(r, 0, "out", "call_reduce.ryft: ok (");
  result_free(&r);
}

TEST(cli_print_is_canonical) {
  cli_result r = RUN("print", data("call_reduce.ryft"));
  EXPECT(r, 0, "out", "func @square_sum(", "func @main(", "call %x {callee=@square_sum}", "reduce");
  /* the printed text parses and prints back to itself */
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(r.out, -1, "printed", &g));
  char *again = NULL;
  if (g) CHECK_OK(ry_graph_to_string(g, &again));
  if (again) CHECK_STR(again, r.out);
  ry_free(again);
  ry_graph_release(g);
  /* comments are gone from the canonical text */
  CHECK(strstr(r.out, "#") == NULL);
  result_free(&r);
}

/* ryft import: StableHLO (here JAX's) as ryft's IR; other commands read .mlir */
TEST(cli_import_stablehlo) {
  char mlir[1100], bad[1100];
  snprintf(mlir, sizeof mlir, "%s/tests/data/stablehlo/rnn.mlir", rt_source_dir());
  cli_result r = RUN("import", mlir);
  EXPECT(r, 0, "out", "func @main(%arg0: f32[4,4], %arg1: f32[3,4], %arg2: f32[6,3]) -> (f32[])", "= scan ");
  CHECK_STR(r.err, "");
  result_free(&r);
  r = RUN("check", mlir);
  EXPECT(r, 0, "out", "rnn.mlir: ok (");
  result_free(&r);
  r = RUN("grad", mlir);
  EXPECT(r, 0, "out", "func @main(", "scan");
  result_free(&r);
  snprintf(bad, sizeof bad, "%s", tmp_path("bad.mlir"));
  FILE *f = fopen(bad, "w");
  CHECK(f != NULL);
  if (f) {
    fputs("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.fft %a : tensor<2xf32>\n"
          "  return %0 : tensor<2xf32>\n}\n",
          f);
    fclose(f);
  }
  r = RUN("import", bad);
  EXPECT(r, 1, "err", "bad.mlir:2:3: stablehlo.fft: op not supported by ryft");
  CHECK_STR(r.out, "");
  result_free(&r);
  remove(bad);
}

TEST(cli_run_named_inputs) {
  char x[1200], y[1200];
  snprintf(x, sizeof x, "x=%s", data("x3.npy"));
  snprintf(y, sizeof y, "y=%s", data("y3.npy"));
  cli_result r = RUN("run", data("add.ryft"), "--in", y, "--in", x);
  EXPECT(r, 0, "out", "out0: f32[3]", "[11. 22. 33.]");
  CHECK_STR(r.err, "");
  result_free(&r);
  /* --in=SPEC and %name spellings */
  snprintf(x, sizeof x, "--in=%%x=%s", data("x3.npy"));
  r = RUN("run", "--in", y, x, data("add.ryft"));
  EXPECT(r, 0, "out", "[11. 22. 33.]");
  result_free(&r);
}

TEST(cli_run_positional_and_mixed) {
  cli_result r = RUN("run", data("add.ryft"), "--in", data("y3.npy"), "--in", data("x3.npy"));
  EXPECT(r, 0, "out", "[11. 22. 33.]");
  result_free(&r);
  /* y by name, the positional one fills x */
  char y[1200];
  snprintf(y, sizeof y, "y=%s", data("x3.npy"));
  r = RUN("run", data("add.ryft"), "--in", data("y3.npy"), "--in", y);
  EXPECT(r, 0, "out", "[11. 22. 33.]");
  result_free(&r);
  /* two outputs, a call, an i32 scalar input named arg1 */
  char n[1200];
  snprintf(n, sizeof n, "arg1=%s", data("n7_i32.npy"));
  r = RUN("run", data("call_reduce.ryft"), "--in", n, "--in", data("x3.npy"), "--device", "interp");
  EXPECT(r, 0, "out", "out0: f32[]", "14.", "out1: i32[]", "7");
  result_free(&r);
}

TEST(cli_run_writes_npy) {
  const char *dir = tmp_path("outdir");
  cli_result r = RUN("run", data("call_reduce.ryft"), "--in", data("x3.npy"), "--in", data("n7_i32.npy"), "--out", dir);
  EXPECT(r, 0, "out", "out0.npy", "out1.npy");
  result_free(&r);
  char p[1300];
  ry_array *a = NULL;
  snprintf(p, sizeof p, "%s/out0.npy", dir);
  CHECK_OK(ry_npy_read(p, &a));
  if (a) {
    CHECK_EQ_INT(ry_array_dtype(a), RY_F32);
    CHECK_EQ_INT(ry_array_shape(a).rank, 0);
    CHECK_NEAR(ry_array_get_f64(a, 0), 14.0, 0);
  }
  ry_array_release(a);
  a = NULL;
  remove(p);
  snprintf(p, sizeof p, "%s/out1.npy", dir);
  CHECK_OK(ry_npy_read(p, &a));
  if (a) CHECK(ry_array_dtype(a) == RY_I32 && ry_array_get_i64(a, 0) == 7);
  ry_array_release(a);
  remove(p);
  rmdir(dir);
}

TEST(cli_demo) {
  cli_result r = RUN("demo");
  EXPECT(r, 0, "out", "func @main(", "dot_general", "tanh", "reduce", "exp", "interp", "x: f32[4,3]",
         "result matches plain C: yes");
  CHECK_STR(r.err, "");
  result_free(&r);
}

/* ---- negative: the command line ----------------------------------------------- */

TEST(cli_err_no_command) {
  cli_result r = RUN("");
  EXPECT_USAGE(r, "unknown command ''");
  result_free(&r);
  const char *none[] = {NULL};
  r = run_cli(none);
  EXPECT_USAGE(r, "missing COMMAND");
  result_free(&r);
}

TEST(cli_err_unknown_command) {
  cli_result r = RUN("frobnicate");
  EXPECT_USAGE(r, "unknown command 'frobnicate'");
  result_free(&r);
  r = RUN("--frob");
  EXPECT_USAGE(r, "unknown option '--frob'");
  result_free(&r);
}

TEST(cli_err_unknown_option) {
  cli_result r = RUN("run", data("add.ryft"), "--bogus");
  EXPECT_USAGE(r, "unknown option '--bogus'");
  result_free(&r);
  r = RUN("check", "-x", data("add.ryft"));
  EXPECT_USAGE(r, "unknown option '-x'");
  result_free(&r);
}

TEST(cli_err_missing_file_argument) {
  cli_result r = RUN("check");
  EXPECT_USAGE(r, "check: missing FILE");
  result_free(&r);
  r = RUN("print");
  EXPECT_USAGE(r, "print: missing FILE");
  result_free(&r);
  r = RUN("run", "--device", "interp");
  EXPECT_USAGE(r, "run: missing FILE");
  result_free(&r);
}

TEST(cli_err_extra_arguments) {
  cli_result r = RUN("check", data("add.ryft"), data("add.ryft"));
  EXPECT_USAGE(r, "unexpected argument");
  result_free(&r);
  r = RUN("version", "now");
  EXPECT_USAGE(r, "unexpected argument 'now'");
  result_free(&r);
  r = RUN("devices", "all");
  EXPECT_USAGE(r, "unexpected argument 'all'");
  result_free(&r);
  r = RUN("run", data("add.ryft"), data("x3.npy"));
  EXPECT_USAGE(r, "unexpected argument", "--in");
  result_free(&r);
}

TEST(cli_err_option_needs_value) {
  cli_result r = RUN("run", data("add.ryft"), "--device");
  EXPECT_USAGE(r, "--device needs a NAME");
  result_free(&r);
  r = RUN("run", data("add.ryft"), "--in");
  EXPECT_USAGE(r, "--in needs");
  result_free(&r);
  r = RUN("run", data("add.ryft"), "--out");
  EXPECT_USAGE(r, "--out needs a DIR");
  result_free(&r);
  r = RUN("run", data("add.ryft"), "--device", "interp", "--device", "interp");
  EXPECT_USAGE(r, "--device is given twice");
  result_free(&r);
}

/* ---- negative: programs ---------------------------------------------------------- */

TEST(cli_err_missing_program) {
  cli_result r = RUN("check", data("no_such_program.ryft"));
  EXPECT(r, 1, "err", "no_such_program.ryft");
  CHECK_STR(r.out, "");
  result_free(&r);
  r = RUN("run", data("no_such_program.ryft"), "--in", data("x3.npy"));
  EXPECT(r, 1, "err", "no_such_program.ryft");
  result_free(&r);
}

TEST(cli_err_malformed_program) {
  /* FILE:LINE:COL of the missing comma, on line 3 */
  cli_result r = RUN("check", data("malformed.ryft"));
  EXPECT(r, 1, "err", "malformed.ryft:3:");
  CHECK_STR(r.out, "");
  result_free(&r);
  r = RUN("print", data("malformed.ryft"));
  EXPECT(r, 1, "err", "malformed.ryft:3:");
  CHECK_STR(r.out, "");
  result_free(&r);
  r = RUN("run", data("malformed.ryft"), "--in", data("x3.npy"));
  EXPECT(r, 1, "err", "malformed.ryft:3:");
  result_free(&r);
}

TEST(cli_err_undefined_value_and_unknown_op) {
  cli_result r = RUN("check", data("undefined_value.ryft"));
  EXPECT(r, 1, "err", "undefined_value.ryft:3:", "nope");
  result_free(&r);
  r = RUN("check", data("unknown_op.ryft"));
  EXPECT(r, 1, "err", "unknown_op.ryft:3:", "frobnicate");
  result_free(&r);
}

TEST(cli_err_ill_typed_program) {
  cli_result r = RUN("check", data("bad_type.ryft"));
  EXPECT(r, 1, "err", "bad_type.ryft", "add");
  CHECK(strstr(r.out, "ok") == NULL);
  result_free(&r);
}

/* ---- negative: inputs -------------------------------------------------------------- */

TEST(cli_err_missing_input) {
  char x[1200];
  snprintf(x, sizeof x, "x=%s", data("x3.npy"));
  cli_result r = RUN("run", data("add.ryft"), "--in", x);
  EXPECT(r, 1, "err", "missing input 'y'", "f32[3]", "--in y=FILE.npy");
  CHECK_STR(r.out, "");
  result_free(&r);
  r = RUN("run", data("add.ryft"));
  EXPECT(r, 1, "err", "missing input 'x'", "missing input 'y'");
  result_free(&r);
}

TEST(cli_err_unknown_input_name) {
  char z[1200];
  snprintf(z, sizeof z, "z=%s", data("x3.npy"));
  cli_result r = RUN("run", data("add.ryft"), "--in", z, "--in", data("x3.npy"), "--in", data("y3.npy"));
  EXPECT(r, 1, "err", "unknown input 'z'", "x: f32[3]", "y: f32[3]");
  result_free(&r);
}

TEST(cli_err_input_given_twice_or_too_many) {
  char x[1200];
  snprintf(x, sizeof x, "x=%s", data("x3.npy"));
  cli_result r = RUN("run", data("add.ryft"), "--in", x, "--in", x, "--in", data("y3.npy"));
  EXPECT(r, 1, "err", "input 'x' is given more than once");
  result_free(&r);
  r = RUN("run", data("add.ryft"), "--in", data("x3.npy"), "--in", data("y3.npy"), "--in", data("x4.npy"));
  EXPECT(r, 1, "err", "too many inputs", "x4.npy", "takes 2");
  result_free(&r);
}

TEST(cli_err_wrong_dtype) {
  char x[1200];
  snprintf(x, sizeof x, "x=%s", data("x3_f64.npy"));
  cli_result r = RUN("run", data("add.ryft"), "--in", x, "--in", data("y3.npy"));
  EXPECT(r, 1, "err", "input 'x'", "x3_f64.npy", "expected f32[3]", "got f64[3]");
  CHECK_STR(r.out, "");
  result_free(&r);
}

TEST(cli_err_wrong_shape) {
  cli_result r = RUN("run", data("add.ryft"), "--in", data("x3.npy"), "--in", data("x4.npy"));
  EXPECT(r, 1, "err", "input 'y'", "expected f32[3]", "got f32[4]");
  result_free(&r);
}

TEST(cli_err_corrupt_or_missing_npy) {
  cli_result r = RUN("run", data("add.ryft"), "--in", data("corrupt.npy"), "--in", data("y3.npy"));
  EXPECT(r, 1, "err", "corrupt.npy", "not a .npy file");
  result_free(&r);
  r = RUN("run", data("add.ryft"), "--in", data("x3.npy"), "--in", data("absent.npy"));
  EXPECT(r, 1, "err", "absent.npy", "No such file");
  result_free(&r);
}

TEST(cli_err_unknown_device) {
  cli_result r = RUN("run", data("add.ryft"), "--device", "nosuchdev", "--in", data("x3.npy"), "--in", data("y3.npy"));
  EXPECT(r, 1, "err", "nosuchdev", "interp");
  CHECK_STR(r.out, "");
  result_free(&r);
  r = RUN("demo", "--device=nosuchdev");
  EXPECT(r, 1, "err", "nosuchdev");
  result_free(&r);
}

TEST(cli_err_out_not_a_directory) {
  const char *f = tmp_path("plain_file");
  FILE *fp = fopen(f, "w");
  if (fp) fclose(fp);
  cli_result r = RUN("run", data("add.ryft"), "--in", data("x3.npy"), "--in", data("y3.npy"), "--out", f);
  EXPECT(r, 1, "err", "plain_file", "not a directory");
  result_free(&r);
  remove(f);
}

/* ---- transforms ------------------------------------------------------------------- */

TEST(cli_transforms_print_programs) {
  cli_result r = RUN("grad", data("loss.ryft"), "--argnums", "0,1");
  EXPECT(r, 0, "out", "func @main(%x: f32[3], %w: f32[3]) -> (f32[3], f32[3])", "tanh");
  result_free(&r);
  r = RUN("grad", data("loss.ryft"));
  EXPECT(r, 0, "out", "-> (f32[3])");
  result_free(&r);
  r = RUN("jvp", data("loss.ryft"));
  EXPECT(r, 0, "out", "f32[3], %arg2: f32[3], %arg3: f32[3]) -> (f32[], f32[])");
  result_free(&r);
  /* vjp prints one module that parses: forward, backward and a @main
     (x..., ct...) -> (y..., ct_x...) calling both */
  r = RUN("vjp", data("loss.ryft"));
  EXPECT(r, 0, "out", "the forward program", "the backward program", "residuals",
         "func @main(%x: f32[3], %w: f32[3], %ct0: f32[]) -> (f32[], f32[3], f32[3])");
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(r.out, -1, "vjp output", &g));
  if (g) {
    /* and it computes the function and its gradient: loss.ryft is sum(tanh(x * w)) */
    ry_device *dev = NULL;
    CHECK_OK(ry_device_get("interp", &dev));
    float xv[3] = {0.5f, -1, 2}, wv[3] = {1, 0.25f, -0.5f}, ct = 1;
    ry_array *in[3] = {0}, *o[3] = {0};
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(3), xv, &in[0]));
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(3), wv, &in[1]));
    CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &ct, &in[2]));
    CHECK_OK(ry_run(g, dev, 3, in, 3, o));
    if (o[1]) {
      double y = 0;
      for (int i = 0; i < 3; i++) {
        double th = tanh((double)xv[i] * wv[i]);
        y += th;
        CHECK_NEAR(ry_array_get_f64(o[1], i), (1 - th * th) * wv[i], 1e-5);
      }
      CHECK_NEAR(ry_array_get_f64(o[0], 0), y, 1e-5);
    }
    for (int i = 0; i < 3; i++) ry_array_release(in[i]), ry_array_release(o[i]);
  }
  ry_graph_release(g);
  result_free(&r);
  r = RUN("vmap", data("loss.ryft"), "--size", "5", "--in-axes", "0,none");
  EXPECT(r, 0, "out", "func @main(%x: f32[5,3], %w: f32[3]) -> (f32[5])");
  result_free(&r);
  r = RUN("vmap", data("add.ryft"), "--size", "2", "--in-axes", "1,0", "--out-axes", "1");
  EXPECT(r, 0, "out", "(%x: f32[3,2], %y: f32[2,3]) -> (f32[3,2])");
  result_free(&r);
}

TEST(cli_err_transforms) {
  cli_result r = RUN("grad", data("add.ryft"));
  EXPECT(r, 1, "err", "grad", "f32[3]", "scalar");
  result_free(&r);
  r = RUN("grad", data("loss.ryft"), "--argnums", "7");
  EXPECT(r, 1, "err", "argnum 7", "out of range");
  result_free(&r);
  r = RUN("grad", data("loss.ryft"), "--argnums", "x");
  EXPECT_USAGE(r, "--argnums", "not a list of integers");
  result_free(&r);
  r = RUN("vmap", data("loss.ryft"), "--in-axes", "0,0");
  EXPECT_USAGE(r, "--size N is required");
  result_free(&r);
  r = RUN("vmap", data("loss.ryft"), "--size", "4", "--in-axes", "0");
  EXPECT_USAGE(r, "--in-axes has 1 entries", "2 inputs");
  result_free(&r);
  r = RUN("vmap", data("loss.ryft"), "--size", "4", "--in-axes", "3,none");
  EXPECT(r, 1, "err", "vmap", "3");
  result_free(&r);
  r = RUN("vmap", data("loss.ryft"), "--size", "4", "--out-axes", "2");
  EXPECT(r, 1, "err", "vmap", "out");
  result_free(&r);
}

/* ---- ryft generate, with the real SmolLM2 model ---- */

TEST(cli_generate_smollm2) {
  const char *model = rt_smollm2_path();
  if (!model) {
    rt_skip("smollm2", "no SmolLM2 GGUF (make model, or set RYFT_TEST_SMOLLM2)");
    return;
  }
  /* greedy: the model's own answer, streamed after the prompt; timing on stderr */
  cli_result r = RUN("generate", model, "-p", "The capital of France is", "-n", "6", "--temp", "0", "--ctx", "64");
  EXPECT(r, 0, "out", "The capital of France is Paris");
  EXPECT(r, 0, "err", "prompt tokens", "generated", "first token", "prefill", "decode", "tokens/s");
  result_free(&r);
  /* f32 products instead of 8-bit activations: the same answer here */
  r = RUN("generate", model, "-p", "The capital of France is", "-n", "6", "--temp", "0", "--ctx", "64", "--exact", "--no-stats");
  EXPECT(r, 0, "out", "The capital of France is Paris");
  result_free(&r);
  /* the same seed gives the same text */
  cli_result a = RUN("generate", model, "-p", "Once upon a time", "-n", "8", "--seed", "7", "--ctx", "64", "--no-stats");
  cli_result b = RUN("generate", model, "-p", "Once upon a time", "-n", "8", "--seed", "7", "--ctx", "64", "--no-stats");
  CHECK_EQ_INT(a.status, 0);
  CHECK_STR(a.out, b.out);
  CHECK_STR(a.err, "");
  result_free(&a);
  result_free(&b);
  /* bad input: named, exit 1, nothing half-written */
  r = RUN("generate", model, "-p", "bad \xff utf8", "-n", "2");
  EXPECT(r, 1, "err", "invalid UTF-8 at byte 4");
  CHECK_STR(r.out, "");
  result_free(&r);
  r = RUN("generate", model, "-p", "one two three four five six", "--ctx", "4");
  EXPECT(r, 1, "err", "the prompt has", "does not fit the context of 4");
  result_free(&r);
  r = RUN("generate", model, "-p", "x", "--ctx", "100000");
  EXPECT(r, 1, "err", "max_ctx 100000", "[1, 8192]");
  result_free(&r);
}

TEST(cli_generate_bad_command_lines) {
  cli_result r = RUN("generate", data("nothere.gguf"), "-p", "x");
  EXPECT(r, 1, "err", "nothere.gguf", "cannot open");
  result_free(&r);
  r = RUN("generate", data("add.ryft"), "-p", "x");
  EXPECT(r, 1, "err", "add.ryft");
  result_free(&r);
  r = RUN("generate", "m.gguf", "--bogus");
  EXPECT(r, 2, "err", "unknown option '--bogus'");
  result_free(&r);
  r = RUN("generate", "m.gguf");
  EXPECT(r, 2, "err", "needs a prompt");
  result_free(&r);
  r = RUN("generate", "m.gguf", "-p", "x", "--top-p", "2");
  EXPECT(r, 2, "err", "--top-p wants a number in (0, 1], not '2'");
  result_free(&r);
  r = RUN("generate", "m.gguf", "-p");
  EXPECT(r, 2, "err", "-p needs a value");
  result_free(&r);
  r = RUN("generate", "--help");
  EXPECT(r, 0, "out", "usage: ryft generate MODEL.gguf -p PROMPT", "--temp", "--top-k", "--seed");
  result_free(&r);
}
