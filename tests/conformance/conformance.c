/* The StableHLO interpreter suite on ryft: each `// -----` module of
 * stablehlo/tests/interpret/NAME.mlir is imported with its check ops collected
 * (shlo_import: the checked values become extra outputs), run on interp and
 * on cpu, and each check compared: expect_eq_const exactly (NaN equals NaN),
 * expect_almost_eq_const within its absolute tolerance (default 1e-4). A
 * module passes when every check holds on both devices; what the importer
 * refuses is unsupported, with the reason. */
#include "conformance.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/shlo_internal.h"
#include "ryft/runtime.h"

#define MAX_REASONS 256

typedef struct reason {
  char text[120];
  int count;
  char example[160];
} reason;

typedef struct report {
  reason r[MAX_REASONS];
  int n;
  char *fails; /* markdown rows */
  size_t fails_len, fails_cap;
} report;

static void add_reason(report *rp, const char *msg, const char *where) {
  /* drop "file:line:col: " */
  const char *p = msg;
  for (int colons = 0; *p && colons < 3; p++)
    if (*p == ':') colons++;
  while (*p == ' ') p++;
  if (!*p) p = msg;
  char text[120];
  snprintf(text, sizeof text, "%s", p);
  for (char *q = text; *q; q++)
    if (*q == '|' || *q == '\n') *q = ' ';
  for (int i = 0; i < rp->n; i++)
    if (strcmp(rp->r[i].text, text) == 0) {
      rp->r[i].count++;
      return;
    }
  if (rp->n == MAX_REASONS) return;
  snprintf(rp->r[rp->n].text, sizeof rp->r[rp->n].text, "%s", text);
  snprintf(rp->r[rp->n].example, sizeof rp->r[rp->n].example, "%s", where);
  rp->r[rp->n++].count = 1;
}

static void add_fail(report *rp, const char *fmt, ...) {
  char row[600];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(row, sizeof row, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof row) n = (int)sizeof row - 1;
  if (rp->fails_len + (size_t)n + 2 > rp->fails_cap) {
    size_t nc = rp->fails_cap ? 2 * rp->fails_cap : 4096;
    while (nc < rp->fails_len + (size_t)n + 2) nc *= 2;
    char *nf = realloc(rp->fails, nc);
    if (!nf) return;
    rp->fails = nf;
    rp->fails_cap = nc;
  }
  memcpy(rp->fails + rp->fails_len, row, (size_t)n);
  rp->fails_len += (size_t)n;
  rp->fails[rp->fails_len++] = '\n';
  rp->fails[rp->fails_len] = 0;
}

/* Whether check c holds on the outputs; writes the first difference. */
static bool check_holds(const shlo_check *c, ry_array *const *out, char *diff, size_t size) {
  const ry_array *got = out[c->output], *want = c->other >= 0 ? out[c->other] : c->expected;
  if (!ry_type_equal(ry_array_type(got), ry_array_type(want))) {
    snprintf(diff, size, "type differs");
    return false;
  }
  bool fl = ry_dtype_is_float(ry_array_dtype(want));
  for (int64_t k = 0; k < ry_array_numel(want); k++) {
    bool ok;
    if (fl) {
      double g = ry_array_get_f64(got, k), w = ry_array_get_f64(want, k);
      ok = (isnan(g) && isnan(w)) || g == w || (c->almost && fabs(g - w) <= c->tol);
      if (ok && !c->almost && g == 0 && w == 0) ok = signbit(g) == signbit(w);
      if (!ok) snprintf(diff, size, "element %lld: got %.9g, want %.9g", (long long)k, g, w);
    } else {
      int64_t g = ry_array_get_i64(got, k), w = ry_array_get_i64(want, k);
      ok = g == w;
      if (!ok) snprintf(diff, size, "element %lld: got %lld, want %lld", (long long)k, (long long)g, (long long)w);
    }
    if (!ok) return false;
  }
  return true;
}

static const char *const k_devices[] = {"interp", "cpu"};

/* 1 passed, 0 failed, -1 unsupported */
static int run_module(const char *text, size_t len, const char *name, report *rp) {
  shlo_result r;
  ry_status s = shlo_import(text, len, name, true, &r);
  if (s) {
    add_reason(rp, ry_status_message(s), name);
    ry_status_free(s);
    return -1;
  }
  int result = 1;
  if (ry_graph_num_inputs(r.g) != 0) {
    add_reason(rp, "a test function with arguments", name);
    shlo_result_free(&r);
    return -1;
  }
  if (r.n_checks == 0) {
    add_reason(rp, "no check ops (nothing to compare)", name);
    shlo_result_free(&r);
    return -1;
  }
  int n_out = ry_graph_num_outputs(r.g);
  for (size_t d = 0; d < sizeof k_devices / sizeof k_devices[0] && result == 1; d++) {
    ry_device *dev = NULL;
    if ((s = ry_device_get(k_devices[d], &dev))) {
      ry_status_free(s);
      continue;
    }
    ry_array **out = calloc((size_t)n_out + 1, sizeof *out);
    if (!out) return 0;
    s = ry_run(r.g, dev, 0, NULL, n_out, out);
    if (s) {
      add_fail(rp, "| %s | %s | run failed: %.200s |", name, k_devices[d], ry_status_message(s));
      ry_status_free(s);
      result = 0;
    } else {
      for (int k = 0; k < r.n_checks && result == 1; k++) {
        char diff[200];
        if (!check_holds(&r.checks[k], out, diff, sizeof diff)) {
          add_fail(rp, "| %s | %s | check at line %d: %s |", name, k_devices[d], r.checks[k].line, diff);
          result = 0;
        }
      }
    }
    for (int k = 0; k < n_out; k++) ry_array_release(out[k]);
    free(out);
  }
  shlo_result_free(&r);
  return result;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmp_reason(const void *a, const void *b) {
  const reason *x = a, *y = b;
  return y->count != x->count ? y->count - x->count : strcmp(x->text, y->text);
}

int conformance_run(const char *root, FILE *md, conf_stats *st) {
  memset(st, 0, sizeof *st);
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/stablehlo/tests/interpret", root);
  DIR *dp = opendir(dir);
  if (!dp) return -1;
  char *names[512];
  int n = 0;
  for (struct dirent *e; (e = readdir(dp)) && n < 512;) {
    size_t l = strlen(e->d_name);
    if (l > 5 && strcmp(e->d_name + l - 5, ".mlir") == 0) names[n++] = strdup(e->d_name);
  }
  closedir(dp);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  report *rp = calloc(1, sizeof *rp);
  if (!rp) return -1;
  if (md) fprintf(md, "| file | modules | passed | failed | unsupported |\n|---|---|---|---|---|\n");
  for (int i = 0; i < n; i++) {
    char path[1600];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
      free(text);
      fclose(f);
      continue;
    }
    fclose(f);
    text[len] = 0;
    st->files++;
    int fm = 0, fp = 0, ff = 0, fu = 0;
    char *start = text;
    for (int idx = 0; start && *start; idx++) {
      char *sep = strstr(start, "\n// -----");
      size_t mlen = sep ? (size_t)(sep - start) + 1 : strlen(start);
      char name[300];
      snprintf(name, sizeof name, "%s#%d", names[i], idx);
      /* a module that is only comments (the RUN line) is not one */
      bool has_func = false;
      for (size_t k = 0; k + 9 < mlen && !has_func; k++) has_func = memcmp(start + k, "func.func", 9) == 0;
      if (has_func) {
        int r = run_module(start, mlen, name, rp);
        fm++;
        if (r == 1) fp++;
        else if (r == 0) ff++;
        else fu++;
      }
      if (!sep) break;
      start = strchr(sep + 1, '\n');
      if (start) start++;
    }
    if (md) fprintf(md, "| %s | %d | %d | %d | %d |\n", names[i], fm, fp, ff, fu);
    st->modules += fm;
    st->passed += fp;
    st->failed += ff;
    st->unsupported += fu;
    free(text);
    free(names[i]);
  }
  if (md) {
    int sup = st->passed + st->failed;
    fprintf(md, "| **total** | **%d** | **%d** | **%d** | **%d** |\n\n", st->modules, st->passed, st->failed, st->unsupported);
    fprintf(md, "Of the %d modules ryft imports, %d pass on both interp and cpu (%.1f%%).\n\n", sup, st->passed,
            sup ? 100.0 * st->passed / sup : 0.0);
    fprintf(md, "### Failures\n\n| module | device | difference |\n|---|---|---|\n%s\n", rp->fails ? rp->fails : "");
    qsort(rp->r, (size_t)rp->n, sizeof rp->r[0], cmp_reason);
    fprintf(md, "### Unsupported, by reason\n\n| modules | reason | first met in |\n|---|---|---|\n");
    for (int k = 0; k < rp->n; k++) fprintf(md, "| %d | %s | %s |\n", rp->r[k].count, rp->r[k].text, rp->r[k].example);
  }
  free(rp->fails);
  free(rp);
  return 0;
}
