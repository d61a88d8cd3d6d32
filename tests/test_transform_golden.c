/* JAX goldens for the transformations: tests/golden/transforms.tgolden
 * (written by gen_transform_goldens.py from JAX, format in
 * tests/golden/FORMAT.md, "Transform goldens") holds composite functions
 * (softmax cross-entropy, layer norm, attention, a conv net, LSTM steps,
 * while-loop Newton iterations, ...) as IR programs, with JAX's values for
 * eval, grad, jvp, vjp, vmap, hvp, jacfwd, jacrev and hessian. For every (function,
 * transform) pair this test applies the ryft transform to the parsed
 * program, runs the result on the interpreter and compares; each pair is one
 * test case, "tgold/<function>/<transform>[ <args>]".
 *
 * Tolerance (f64): an element passes when
 *   |got - want| <= rtol*|want| + atol*max(1, max_k |want_k|)
 * with rtol, atol from the case's `tol` line (1e-9 and 1e-12 by default):
 * the absolute part is scaled by the largest element of the expected array
 * so that values that cancel to ~0 in a large array are not held to a
 * relative bound. Integer and bool arrays must match exactly. */
#include <stdbool.h>
#include <stdlib.h>

#include "golden.h"
#include "testlib.h"

#define TG_MAX 64

typedef struct {
  char kind[32];
  char args[128];
  int n_in, n_out;
  ry_array *in[TG_MAX], *out[TG_MAX];
} tg_check;

typedef struct {
  char name[128];
  double rtol, atol;
  char *ir;
  size_t irlen;
  int n_in;
  ry_array *in[TG_MAX];
} tg_func;

static void tg_compare(const char *what, int i, const ry_array *got, const ry_array *want, double rtol, double atol) {
  char tg[200], tw[200];
  if (!ry_type_equal(ry_array_type(got), ry_array_type(want))) {
    rt_fail(__FILE__, __LINE__, "%s: output %d has type %s, want %s", what, i, ry_type_str(ry_array_type(got), tg, sizeof tg),
            ry_type_str(ry_array_type(want), tw, sizeof tw));
    return;
  }
  ry_dtype dt = ry_array_dtype(got);
  int64_t n = ry_array_numel(got);
  if (!ry_dtype_is_float(dt)) {
    size_t bytes = (size_t)n * ry_dtype_size(dt);
    if (bytes && memcmp(ry_array_data(got), ry_array_data(want), bytes) != 0)
      rt_fail(__FILE__, __LINE__, "%s: integer output %d differs", what, i);
    return;
  }
  double scale = 1;
  for (int64_t k = 0; k < n; k++) {
    double w = fabs(ry_array_get_f64(want, k));
    if (isfinite(w) && w > scale) scale = w;
  }
  int bad = 0;
  double worst = 0;
  int64_t worst_k = -1;
  for (int64_t k = 0; k < n; k++) {
    double g = ry_array_get_f64(got, k), w = ry_array_get_f64(want, k);
    bool ok = isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs(g - w) <= rtol * fabs(w) + atol * scale;
    if (!ok) {
      bad++;
      double e = isnan(g) || isinf(g) ? INFINITY : fabs(g - w);
      if (worst_k < 0 || e > worst) {
        worst = e;
        worst_k = k;
      }
    }
  }
  if (bad)
    rt_fail(__FILE__, __LINE__, "%s: output %d: %d of %lld elements differ; worst [%lld]: got %.17g, want %.17g", what, i, bad,
            (long long)n, (long long)worst_k, ry_array_get_f64(got, worst_k), ry_array_get_f64(want, worst_k));
}

/* Run g on the inputs and compare every output with want[0..n_want). */
static void tg_run_compare(const char *what, ry_graph *g, ry_device *dev, int n_in, ry_array *const *in, int n_want,
                           ry_array *const *want, double rtol, double atol) {
  if (ry_graph_num_inputs(g) != n_in || ry_graph_num_outputs(g) != n_want) {
    rt_fail(__FILE__, __LINE__, "%s: transformed graph has %d inputs/%d outputs, the golden data %d/%d", what,
            ry_graph_num_inputs(g), ry_graph_num_outputs(g), n_in, n_want);
    return;
  }
  ry_array *got[TG_MAX] = {0};
  ry_status s = ry_run(g, dev, n_in, in, n_want, got);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: run: %s", what, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  for (int i = 0; i < n_want; i++) {
    tg_compare(what, i, got[i], want[i], rtol, atol);
    ry_array_release(got[i]);
  }
}

/* Parse "0 none -1" style integer lists; "none" is RY_NOT_BATCHED. */
static int tg_parse_ints(const char *s, int *v, int max) {
  int n = 0;
  while (*s && n < max) {
    while (*s == ' ' || *s == ',') s++;
    if (!*s) break;
    if (strncmp(s, "none", 4) == 0) {
      v[n++] = RY_NOT_BATCHED;
      s += 4;
    } else {
      char *end;
      long x = strtol(s, &end, 10);
      if (end == s) return -1;
      v[n++] = (int)x;
      s = end;
    }
  }
  return n;
}

/* x... -> sum(vmap(g)(x...)[0]), every input batched at axis 0. */
static ry_status tg_sum_of_vmap(ry_graph *g, int64_t size, ry_graph **out) {
  ry_graph *v = NULL;
  ry_status s = ry_vmap(g, size, NULL, NULL, &v);
  if (s) return s;
  int n = ry_graph_num_inputs(v), m = ry_graph_num_outputs(v);
  ry_builder *b = ry_builder_new("sum_of_vmap");
  ry_value x[TG_MAX], y[TG_MAX];
  for (int i = 0; i < n && i < TG_MAX; i++) x[i] = ry_input(b, NULL, ry_graph_input_type(v, i));
  ry_value r = {0};
  if (n <= TG_MAX && m <= TG_MAX && ry_call(b, v, n, x, y) == m && m >= 1) {
    ry_axes all = {ry_graph_output_type(v, 0).shape.rank, {0}};
    for (int k = 0; k < all.n; k++) all.v[k] = k;
    r = ry_sum(b, y[0], all);
  }
  ry_graph_release(v);
  return ry_builder_finish(b, 1, &r, out);
}

static bool tg_status(const char *what, const char *api, ry_status s) {
  if (!s) return true;
  rt_fail(__FILE__, __LINE__, "%s: %s: %s", what, api, ry_status_message(s));
  ry_status_free(s);
  return false;
}

static void tg_run_check(const tg_func *fn, const tg_check *c, ry_device *dev) {
  char what[300];
  snprintf(what, sizeof what, "tgold/%s/%s%s%s", fn->name, c->kind, c->args[0] ? " " : "", c->args);
  rt_case_begin(what);
  ry_graph *g = NULL, *t = NULL;
  ry_graph *sv = NULL; /* gradvmap: sum of the vmapped graph */
  ry_status st = ry_graph_parse(fn->ir, (long)fn->irlen, fn->name, &g);
  if (!tg_status(what, "parse", st)) {
    rt_case_end();
    return;
  }
  ry_array *in[2 * TG_MAX];
  int n_in = 0;
  double rt = fn->rtol, at = fn->atol;
  if (strcmp(c->kind, "eval") == 0) {
    tg_run_compare(what, g, dev, fn->n_in, fn->in, c->n_out, c->out, rt, at);
  } else if (strcmp(c->kind, "grad") == 0) {
    int argnums[TG_MAX];
    int na = tg_parse_ints(c->args, argnums, TG_MAX);
    ry_grad_opts o = {na, argnums, 0};
    if (tg_status(what, "ry_grad", ry_grad(g, &o, &t))) tg_run_compare(what, t, dev, fn->n_in, fn->in, c->n_out, c->out, rt, at);
  } else if (strcmp(c->kind, "jvp") == 0) {
    for (int i = 0; i < fn->n_in; i++) in[n_in++] = fn->in[i];
    for (int i = 0; i < c->n_in; i++) in[n_in++] = c->in[i];
    if (tg_status(what, "ry_jvp", ry_jvp(g, &t))) tg_run_compare(what, t, dev, n_in, in, c->n_out, c->out, rt, at);
  } else if (strcmp(c->kind, "vjp") == 0) {
    ry_graph *fwd = NULL, *bwd = NULL;
    int n_res = 0;
    if (tg_status(what, "ry_vjp", ry_vjp(g, &fwd, &bwd, &n_res))) {
      int n_y = ry_graph_num_outputs(g);
      int n_f = ry_graph_num_outputs(fwd);
      ry_array *fo[2 * TG_MAX] = {0};
      if (n_f > 2 * TG_MAX || n_f != n_y + n_res || n_res + c->n_in > 2 * TG_MAX) {
        rt_fail(__FILE__, __LINE__, "%s: forward graph has %d outputs (%d residuals)", what, n_f, n_res);
      } else if (tg_status(what, "run fwd", ry_run(fwd, dev, fn->n_in, fn->in, n_f, fo))) {
        for (int i = 0; i < n_res; i++) in[n_in++] = fo[n_y + i];
        for (int i = 0; i < c->n_in; i++) in[n_in++] = c->in[i];
        tg_run_compare(what, bwd, dev, n_in, in, c->n_out, c->out, rt, at);
        for (int i = 0; i < n_f; i++) ry_array_release(fo[i]);
      }
    }
    ry_graph_release(fwd);
    ry_graph_release(bwd);
  } else if (strcmp(c->kind, "vmap") == 0) {
    /* args: "AXES out=K" */
    int axes[TG_MAX], out_axes[TG_MAX];
    char buf[128];
    snprintf(buf, sizeof buf, "%s", c->args);
    char *o = strstr(buf, " out=");
    int k = 0;
    if (o) {
      k = atoi(o + 5);
      *o = 0;
    }
    int na = tg_parse_ints(buf, axes, TG_MAX);
    for (int i = 0; i < TG_MAX; i++) out_axes[i] = k;
    if (na != fn->n_in) {
      rt_fail(__FILE__, __LINE__, "%s: %d in_axes for %d inputs", what, na, fn->n_in);
    } else {
      /* the batch size: the mapped axis of the first batched input */
      int64_t size = -1;
      for (int i = 0; i < na && size < 0 && i < c->n_in; i++) {
        if (axes[i] == RY_NOT_BATCHED) continue;
        ry_type bt = ry_array_type(c->in[i]);
        int ax = axes[i] < 0 ? axes[i] + bt.shape.rank : axes[i];
        if (ax >= 0 && ax < bt.shape.rank) size = bt.shape.dims[ax];
      }
      if (tg_status(what, "ry_vmap", ry_vmap(g, size, axes, out_axes, &t)))
        tg_run_compare(what, t, dev, c->n_in, c->in, c->n_out, c->out, rt, at);
    }
  } else if (strcmp(c->kind, "gradvmap") == 0 || strcmp(c->kind, "vmapgrad") == 0) {
    int argnums[TG_MAX];
    int na = tg_parse_ints(c->args, argnums, TG_MAX);
    ry_grad_opts o = {na, argnums, 0};
    int64_t size = c->n_in ? ry_array_type(c->in[0]).shape.dims[0] : 0;
    if (c->kind[0] == 'v') { /* vmap(grad f), every input batched at axis 0 */
      ry_graph *gr = NULL;
      if (tg_status(what, "ry_grad", ry_grad(g, &o, &gr)) && tg_status(what, "ry_vmap", ry_vmap(gr, size, NULL, NULL, &t)))
        tg_run_compare(what, t, dev, c->n_in, c->in, c->n_out, c->out, rt, at);
      ry_graph_release(gr);
    } else if (tg_status(what, "ry_vmap", tg_sum_of_vmap(g, size, &sv)) && tg_status(what, "ry_grad", ry_grad(sv, &o, &t))) {
      /* grad(sum(vmap f)) */
      tg_run_compare(what, t, dev, c->n_in, c->in, c->n_out, c->out, rt, at);
    }
    ry_graph_release(sv);
  } else if (strcmp(c->kind, "linearize") == 0) {
    ry_graph *fwd = NULL, *lin = NULL;
    int n_res = 0;
    if (tg_status(what, "ry_linearize", ry_linearize(g, &fwd, &lin, &n_res))) {
      int n_y = ry_graph_num_outputs(g), n_f = ry_graph_num_outputs(fwd);
      ry_array *fo[2 * TG_MAX] = {0};
      if (n_f > 2 * TG_MAX || n_f != n_y + n_res || n_res + c->n_in > 2 * TG_MAX || 2 * n_y != c->n_out) {
        rt_fail(__FILE__, __LINE__, "%s: forward graph has %d outputs (%d residuals)", what, n_f, n_res);
      } else if (tg_status(what, "run fwd", ry_run(fwd, dev, fn->n_in, fn->in, n_f, fo))) {
        for (int i = 0; i < n_y; i++) tg_compare(what, i, fo[i], c->out[i], rt, at);
        for (int i = 0; i < n_res; i++) in[n_in++] = fo[n_y + i];
        for (int i = 0; i < c->n_in; i++) in[n_in++] = c->in[i];
        tg_run_compare(what, lin, dev, n_in, in, n_y, c->out + n_y, rt, at);
        for (int i = 0; i < n_f; i++) ry_array_release(fo[i]);
      }
    }
    ry_graph_release(fwd);
    ry_graph_release(lin);
  } else if (strcmp(c->kind, "hvp") == 0) {
    int a = atoi(c->args);
    for (int i = 0; i < fn->n_in; i++) in[n_in++] = fn->in[i];
    for (int i = 0; i < c->n_in; i++) in[n_in++] = c->in[i];
    if (tg_status(what, "ry_hvp", ry_hvp(g, a, &t))) tg_run_compare(what, t, dev, n_in, in, c->n_out, c->out, rt, at);
  } else if (strcmp(c->kind, "hessian") == 0) {
    if (tg_status(what, "ry_hessian", ry_hessian(g, atoi(c->args), &t)))
      tg_run_compare(what, t, dev, fn->n_in, fn->in, c->n_out, c->out, rt, at);
  } else if (strcmp(c->kind, "jacfwd") == 0 || strcmp(c->kind, "jacrev") == 0) {
    int a = atoi(c->args);
    bool fwd = c->kind[3] == 'f';
    st = fwd ? ry_jacfwd(g, a, &t) : ry_jacrev(g, a, &t);
    if (tg_status(what, fwd ? "ry_jacfwd" : "ry_jacrev", st))
      tg_run_compare(what, t, dev, fn->n_in, fn->in, c->n_out, c->out, rt, at);
  } else {
    rt_fail(__FILE__, __LINE__, "%s: unknown transform '%s'", what, c->kind);
  }
  ry_graph_release(t);
  ry_graph_release(g);
  rt_case_end();
}

static void tg_clear_check(tg_check *c) {
  for (int i = 0; i < c->n_in; i++) ry_array_release(c->in[i]);
  for (int i = 0; i < c->n_out; i++) ry_array_release(c->out[i]);
  memset(c, 0, sizeof *c);
}

static void tg_clear_func(tg_func *f) {
  for (int i = 0; i < f->n_in; i++) ry_array_release(f->in[i]);
  f->n_in = 0;
  f->irlen = 0;
  f->name[0] = 0;
}

typedef struct {
  int n_funcs, n_checks;
} tg_counts;

static tg_counts tg_run_file(const char *path, ry_device *dev) {
  tg_counts cnt = {0, 0};
  size_t len;
  char *text = golden_read_file(path, &len);
  if (!text) {
    rt_fail(__FILE__, __LINE__, "cannot read %s", path);
    return cnt;
  }
  tg_func fn;
  memset(&fn, 0, sizeof fn);
  fn.ir = malloc(len + 1);
  tg_check chk;
  memset(&chk, 0, sizeof chk);
  bool in_ir = false, have_check = false;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line && fn.ir; line = strtok_r(NULL, "\n", &save)) {
    if (in_ir) {
      if (strcmp(line, "end_ir") == 0) {
        in_ir = false;
        fn.ir[fn.irlen] = 0;
      } else {
        size_t l = strlen(line);
        memcpy(fn.ir + fn.irlen, line, l);
        fn.irlen += l;
        fn.ir[fn.irlen++] = '\n';
      }
      continue;
    }
    if (line[0] == '#' || line[0] == 0) continue;
    if (strncmp(line, "case ", 5) == 0) {
      tg_clear_func(&fn);
      snprintf(fn.name, sizeof fn.name, "%s", line + 5);
      fn.rtol = 1e-9;
      fn.atol = 1e-12;
      cnt.n_funcs++;
    } else if (strncmp(line, "tol ", 4) == 0) {
      if (sscanf(line + 4, "%lf %lf", &fn.rtol, &fn.atol) != 2) rt_fail(__FILE__, __LINE__, "%s: bad tol line", fn.name);
    } else if (strcmp(line, "ir") == 0) {
      in_ir = true;
      fn.irlen = 0;
    } else if (strncmp(line, "check ", 6) == 0 || strcmp(line, "end") == 0) {
      if (have_check) {
        tg_run_check(&fn, &chk, dev);
        cnt.n_checks++;
      }
      tg_clear_check(&chk);
      have_check = false;
      if (line[0] == 'c') {
        const char *k = line + 6, *sp = strchr(k, ' ');
        size_t kl = sp ? (size_t)(sp - k) : strlen(k);
        if (kl >= sizeof chk.kind) kl = sizeof chk.kind - 1;
        memcpy(chk.kind, k, kl);
        chk.kind[kl] = 0;
        snprintf(chk.args, sizeof chk.args, "%s", sp ? sp + 1 : "");
        have_check = true;
      } else {
        tg_clear_func(&fn);
      }
    } else if (strncmp(line, "in ", 3) == 0 || strncmp(line, "out ", 4) == 0) {
      bool is_in = line[0] == 'i';
      ry_array *a = golden_parse_array(line + (is_in ? 3 : 4));
      int *n = have_check ? (is_in ? &chk.n_in : &chk.n_out) : &fn.n_in;
      ry_array **dst = have_check ? (is_in ? chk.in : chk.out) : fn.in;
      if (!a || *n >= TG_MAX || (!have_check && !is_in)) {
        rt_fail(__FILE__, __LINE__, "%s: %s: bad data line: %.60s", path, fn.name, line);
        ry_array_release(a);
      } else {
        dst[(*n)++] = a;
      }
    } else {
      rt_fail(__FILE__, __LINE__, "%s: unexpected line: %.60s", path, line);
    }
  }
  tg_clear_check(&chk);
  tg_clear_func(&fn);
  free(fn.ir);
  free(text);
  return cnt;
}

TEST(tgold_transforms_vs_jax) {
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("interp", &dev));
  if (!dev) return;
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/golden/transforms.tgolden", rt_source_dir());
  tg_counts c = tg_run_file(path, dev);
  /* the issue asks for at least 40 composite functions */
  CHECK_MSG(c.n_funcs >= 40, "only %d functions in %s", c.n_funcs, path);
  CHECK_MSG(c.n_checks >= 6 * c.n_funcs, "only %d checks for %d functions", c.n_checks, c.n_funcs);
}

/* The same transformed programs on the other devices (cpu JIT, XLA through
 * PJRT when built): every transform test graph runs everywhere. */
static void tg_on_device(const char *name) {
  ry_device *dev = NULL;
  ry_status s = ry_device_get(name, &dev);
  if (s) { /* the device is not built in */
    rt_skip(name, "device %s: %s", name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/golden/transforms.tgolden", rt_source_dir());
  tg_counts c = tg_run_file(path, dev);
  CHECK_MSG(c.n_funcs >= 40, "only %d functions ran on %s", c.n_funcs, name);
}

TEST(tgold_transforms_vs_jax_cpu) { tg_on_device("cpu"); }
TEST(tgold_transforms_vs_jax_pjrt) { tg_on_device("pjrt"); }

/* deriv.tgolden: the derivative and batching cases where ryft differed from
 * JAX (issue 18: dropped scatter windows, clamp with lo > hi, cummax ties,
 * grad of a batched cond, abs / pow at 0, while results used without their
 * derivative, empty sorts, vmap of checkpointed and custom-rule calls, an
 * empty scan) and reverse mode through scan with a constant initial carry
 * (issue 10), on every device. */
static void tg_deriv_on(const char *name, const char *file, int min_funcs) {
  ry_device *dev = NULL;
  ry_status s = ry_device_get(name, &dev);
  if (s) {
    rt_skip(name, "the %s device is not built in: %s", name, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  char path[1024];
  const char *env = strcmp(file, "deriv_fuzz.tgolden") == 0 ? getenv("RYFT_DERIV_FUZZ") : NULL;
  if (env && env[0])
    snprintf(path, sizeof path, "%s", env);
  else
    snprintf(path, sizeof path, "%s/tests/golden/%s", rt_source_dir(), file);
  tg_counts c = tg_run_file(path, dev);
  CHECK_MSG(c.n_funcs >= min_funcs && c.n_checks >= 4 * min_funcs, "only %d functions, %d checks in %s", c.n_funcs, c.n_checks,
            path);
}
TEST(tgold_deriv_vs_jax) { tg_deriv_on("interp", "deriv.tgolden", 40); }
TEST(tgold_deriv_vs_jax_cpu) { tg_deriv_on("cpu", "deriv.tgolden", 40); }
TEST(tgold_deriv_vs_jax_pjrt) { tg_deriv_on("pjrt", "deriv.tgolden", 40); }

/* The differential tester's programs (gen_deriv_fuzz.py: random programs
 * over the op table, every transform and composition, JAX's values); the
 * environment variable RYFT_DERIV_FUZZ names a longer run's file instead. */
TEST(tgold_deriv_fuzz) { tg_deriv_on("interp", "deriv_fuzz.tgolden", 40); }
TEST(tgold_deriv_fuzz_cpu) { tg_deriv_on("cpu", "deriv_fuzz.tgolden", 40); }
TEST(tgold_deriv_fuzz_pjrt) { tg_deriv_on("pjrt", "deriv_fuzz.tgolden", 40); }
