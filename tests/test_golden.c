/* The golden suite: every case in tests/golden/ (*.golden files) (written by
 * gen_goldens.py with JAX) is parsed, round-tripped through the printer,
 * run on the interpreter and compared with JAX's outputs. Each case counts
 * as one test. */
#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>

#include "golden.h"
#include "testlib.h"

typedef struct {
  char *text;
  size_t len;
} gbuf;

char *golden_read_file(const char *path, size_t *len) { return rt_read_file(path, len); }

/* Parse "f32[2,3]" into a type. */
static int parse_type(const char *s, ry_type *t) {
  char name[16];
  int k = 0;
  while (*s && *s != '[' && k < 15) name[k++] = *s++;
  name[k] = 0;
  if (!ry_dtype_from_name(name, &t->dtype) || *s != '[') return 0;
  s++;
  memset(&t->shape, 0, sizeof t->shape);
  while (*s && *s != ']') {
    char *end;
    long long d = strtoll(s, &end, 10);
    if (end == s || t->shape.rank >= RY_MAX_RANK) return 0;
    t->shape.dims[t->shape.rank++] = d;
    s = end;
    if (*s == ',') s++;
  }
  return *s == ']';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* "f32[3] 0000803f..." into a new array. */
ry_array *golden_parse_array(const char *line) {
  char tbuf[256];
  const char *sp = strchr(line, ' ');
  if (!sp || sp - line >= (long)sizeof tbuf) return NULL;
  memcpy(tbuf, line, (size_t)(sp - line));
  tbuf[sp - line] = 0;
  ry_type t;
  if (!parse_type(tbuf, &t)) return NULL;
  const char *hex = sp + 1;
  size_t nbytes = (size_t)ry_shape_numel(t.shape) * ry_dtype_size(t.dtype);
  if (nbytes == 0 ? hex[0] != '-' : strlen(hex) != 2 * nbytes) return NULL;
  unsigned char *data = malloc(nbytes + 1);
  if (!data) return NULL;
  if (nbytes == 0) {
    if (hex[0] != '-') {
      free(data);
      return NULL;
    }
  } else {
    for (size_t i = 0; i < nbytes; i++) {
      int h = hexval(hex[2 * i]), l = h < 0 ? -1 : hexval(hex[2 * i + 1]);
      if (h < 0 || l < 0) {
        free(data);
        return NULL;
      }
      data[i] = (unsigned char)(h * 16 + l);
    }
  }
  ry_array *a = NULL;
  ry_status s = ry_array_from_host(t.dtype, t.shape, data, &a);
  ry_status_free(s);
  free(data);
  return a;
}

static void compare(const char *name, int i, const ry_array *got, const ry_array *want, int exact, double rtol, double atol) {
  char tg[200], tw[200];
  if (!ry_type_equal(ry_array_type(got), ry_array_type(want))) {
    rt_fail(__FILE__, __LINE__, "%s: output %d has type %s, want %s", name, i, ry_type_str(ry_array_type(got), tg, sizeof tg),
            ry_type_str(ry_array_type(want), tw, sizeof tw));
    return;
  }
  ry_dtype dt = ry_array_dtype(got);
  int64_t n = ry_array_numel(got);
  size_t es = ry_dtype_size(dt);
  const unsigned char *pg = ry_array_data(got), *pw = ry_array_data(want);
  int bad = 0;
  for (int64_t k = 0; k < n && bad < 5; k++) {
    bool ok;
    if (exact || !ry_dtype_is_float(dt)) {
      ok = memcmp(pg + k * es, pw + k * es, es) == 0;
      /* NaN payloads may differ between implementations */
      if (!ok && ry_dtype_is_float(dt)) ok = isnan(ry_array_get_f64(got, k)) && isnan(ry_array_get_f64(want, k));
    } else {
      double g = ry_array_get_f64(got, k), w = ry_array_get_f64(want, k);
      if (isnan(w))
        ok = isnan(g);
      else if (isinf(w))
        ok = g == w;
      else
        ok = fabs(g - w) <= atol + rtol * fabs(w);
    }
    if (!ok) {
      bad++;
      rt_fail(__FILE__, __LINE__, "%s: output %d element %lld: got %.9g, want %.9g", name, i, (long long)k,
              ry_array_get_f64(got, k), ry_array_get_f64(want, k));
    }
  }
}

typedef struct {
  int n_cases;
} gstats;

static int g_via_stablehlo; /* golden_run_all_stablehlo: run import(emit(g)) instead of g */

static void run_case(const char *name, const char *ir, ry_array **ins, int n_in, ry_array **outs, int n_out, int exact,
                     double rtol, double atol, ry_device *dev) {
  char full[300];
  snprintf(full, sizeof full, "%s@%s", name, ry_device_name(dev));
  rt_case_begin(full);
  ry_graph *g = NULL;
  ry_status s = ry_graph_parse(ir, -1, name, &g);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s: parse: %s", name, ry_status_message(s));
    ry_status_free(s);
    rt_case_end();
    return;
  }
  /* round trip: print, parse, print again: identical */
  char *p1 = NULL, *p2 = NULL;
  ry_graph *g2 = NULL;
  CHECK_OK(ry_graph_to_string(g, &p1));
  if (p1) {
    s = ry_graph_parse(p1, -1, "printed", &g2);
    if (s) {
      rt_fail(__FILE__, __LINE__, "%s: reparse of printed text: %s\n%s", name, ry_status_message(s), p1);
      ry_status_free(s);
    } else {
      CHECK_OK(ry_graph_to_string(g2, &p2));
      if (p2 && strcmp(p1, p2) != 0) rt_fail(__FILE__, __LINE__, "%s: print(parse(print(g))) differs:\n%s\n---\n%s", name, p1, p2);
    }
  }
  ry_free(p1);
  ry_free(p2);
  ry_graph_release(g2);
  if (g_via_stablehlo) {
    ry_graph *gi = NULL;
    int st = golden_stablehlo_round_trip(name, g, &gi);
    ry_graph_release(g);
    g = gi;
    if (st != 0) {
      rt_case_end();
      return;
    }
  }
  if (ry_graph_num_outputs(g) != n_out || ry_graph_num_inputs(g) != n_in) {
    rt_fail(__FILE__, __LINE__, "%s: graph has %d inputs/%d outputs, data has %d/%d", name, ry_graph_num_inputs(g),
            ry_graph_num_outputs(g), n_in, n_out);
  } else {
    ry_array *got[64] = {0};
    s = ry_run(g, dev, n_in, ins, n_out, got);
    if (s) {
      rt_fail(__FILE__, __LINE__, "%s: run: %s", name, ry_status_message(s));
      ry_status_free(s);
    } else {
      for (int i = 0; i < n_out; i++) {
        compare(name, i, got[i], outs[i], exact, rtol, atol);
        ry_array_release(got[i]);
      }
    }
  }
  ry_graph_release(g);
  rt_case_end();
}

static int run_file(const char *path, ry_device *dev) {
  size_t len;
  char *text = golden_read_file(path, &len);
  if (!text) {
    rt_fail(__FILE__, __LINE__, "cannot read %s", path);
    return 0;
  }
  int count = 0;
  char *save = NULL;
  char name[256] = "";
  char *ir = malloc(len + 1);
  size_t irlen = 0;
  int in_ir = 0, exact = 0, n_in = 0, n_out = 0;
  double rtol = 0, atol = 0;
  ry_array *ins[64], *outs[64];
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (in_ir) {
      if (strcmp(line, "end_ir") == 0) {
        in_ir = 0;
        ir[irlen] = 0;
      } else {
        size_t l = strlen(line);
        memcpy(ir + irlen, line, l);
        irlen += l;
        ir[irlen++] = '\n';
      }
      continue;
    }
    if (line[0] == '#' || line[0] == 0) continue;
    if (strncmp(line, "case ", 5) == 0) {
      snprintf(name, sizeof name, "golden/%s", line + 5);
      n_in = n_out = 0;
      irlen = 0;
      ir[0] = 0;
      exact = 0;
      rtol = atol = 0;
    } else if (strncmp(line, "tol ", 4) == 0) {
      if (strcmp(line + 4, "exact") == 0)
        exact = 1;
      else
        sscanf(line + 4, "%lf %lf", &rtol, &atol);
    } else if (strcmp(line, "ir") == 0) {
      in_ir = 1;
    } else if (strncmp(line, "in ", 3) == 0 || strncmp(line, "out ", 4) == 0) {
      int is_in = line[0] == 'i';
      ry_array *a = golden_parse_array(line + (is_in ? 3 : 4));
      if (!a || (is_in ? n_in : n_out) >= 64) {
        rt_fail(__FILE__, __LINE__, "%s: %s: bad data line: %.60s", path, name, line);
        ry_array_release(a);
      } else if (is_in) {
        ins[n_in++] = a;
      } else {
        outs[n_out++] = a;
      }
    } else if (strcmp(line, "end") == 0) {
      run_case(name, ir, ins, n_in, outs, n_out, exact, rtol, atol, dev);
      for (int i = 0; i < n_in; i++) ry_array_release(ins[i]);
      for (int i = 0; i < n_out; i++) ry_array_release(outs[i]);
      n_in = n_out = 0;
      count++;
    } else {
      rt_fail(__FILE__, __LINE__, "%s: unexpected line: %.60s", path, line);
    }
  }
  for (int i = 0; i < n_in; i++) ry_array_release(ins[i]);
  for (int i = 0; i < n_out; i++) ry_array_release(outs[i]);
  free(ir);
  free(text);
  return count;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int golden_run_all_stablehlo(const char *device_name) {
  g_via_stablehlo = 1;
  int n = golden_run_all(device_name);
  g_via_stablehlo = 0;
  return n;
}

int golden_run_all(const char *device_name) {
  ry_device *dev = NULL;
  ry_status s = ry_device_get(device_name, &dev);
  if (s) {
    rt_fail(__FILE__, __LINE__, "device %s: %s", device_name, ry_status_message(s));
    ry_status_free(s);
    return 0;
  }
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/golden", rt_source_dir());
  DIR *d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  if (!d) return 0;
  char *names[256];
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < 256;) {
    size_t l = strlen(e->d_name);
    if (l > 7 && strcmp(e->d_name + l - 7, ".golden") == 0) names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  int total = 0;
  for (int i = 0; i < n; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    total += run_file(path, dev);
    free(names[i]);
  }
  return total;
}

TEST(golden_interp) {
  int total = golden_run_all("interp");
  CHECK_MSG(total >= 300, "only %d golden cases found (want >= 300)", total);
}
