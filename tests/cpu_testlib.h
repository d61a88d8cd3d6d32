/* Helpers shared by the cpu backend's tests (test_cpu*.c): the device, the
 * GEMM module's text, counting in a text, comparing arrays bit for bit, a
 * parsed program, a scratch directory, pointing the compile cache at it,
 * and a program whose generated source is unique to a salt. */
#ifndef RYFT_TESTS_CPU_TESTLIB_H
#define RYFT_TESTS_CPU_TESTLIB_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/gemm.h"
#include "testlib.h"

static inline ry_device *cpu(void) {
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("cpu", &d));
  return d;
}

/* module/sgemm.c as the JIT compiles it, one string of *len bytes (free it) */
static inline char *gemm_module_source(size_t *len) {
  const char *const *lines = ryc_gemm_module_text();
  *len = 0;
  for (int i = 0; lines[i]; i++) *len += strlen(lines[i]);
  char *src = malloc(*len + 1), *at = src;
  if (src) *src = 0;
  for (int i = 0; src && lines[i]; i++) at = stpcpy(at, lines[i]);
  return src;
}

/* occurrences of needle in text (not overlapping; 0 for a NULL text) */
static inline int count_of(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

/* a and b hold the same bytes */
static inline bool same_bits(const ry_array *a, const ry_array *b) {
  return a && b && ry_array_nbytes(a) == ry_array_nbytes(b) &&
         memcmp(ry_array_data(a), ry_array_data(b), ry_array_nbytes(a)) == 0;
}

static inline ry_graph *parse(const char *text) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(text, -1, "test", &g));
  return g;
}

/* a fresh directory under /tmp */
static inline void temp_dir(char *buf, size_t size, const char *tag) {
  snprintf(buf, size, "/tmp/ryft-test-%s-XXXXXX", tag);
  if (!mkdtemp(buf)) buf[0] = 0;
}

/* point the compile cache at dir; returns the old setting for restore_cache_dir */
/* Compile g on the cpu device with RYFT_DUMP set: the fusion report (free
 * it; NULL if none), the executable in *e. */
static inline char *compile_report(ry_graph *g, const char *tag, ry_executable **e) {
  char dir[256];
  temp_dir(dir, sizeof dir, tag);
  setenv("RYFT_DUMP", dir, 1);
  *e = NULL;
  CHECK_OK(ry_compile(g, cpu(), e));
  unsetenv("RYFT_DUMP");
  return rt_read_dump(dir, "04-fusion.txt");
}

static inline char *use_cache_dir(const char *dir) {
  char *old = getenv("RYFT_CACHE_DIR") ? strdup(getenv("RYFT_CACHE_DIR")) : NULL;
  setenv("RYFT_CACHE_DIR", dir, 1);
  return old;
}

static inline void restore_cache_dir(char *old) {
  if (old) setenv("RYFT_CACHE_DIR", old, 1);
  else unsetenv("RYFT_CACHE_DIR");
  free(old);
}

static inline ry_array *filled(ry_shape s, double (*fn)(int64_t)) {
  int64_t n = ry_shape_numel(s);
  float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) v[i] = (float)fn(i);
  ry_array *a = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, s, v, &a));
  free(v);
  return a;
}

static inline double wave(int64_t i) { return sin((double)i * 0.37) * 3.0 + (double)(i % 7) * 0.1; }

/* a program whose generated source is unique to `salt` */
static inline ry_graph *salted(double salt) {
  char text[512];
  snprintf(text, sizeof text,
           "func @main(%%x: f32[64]) -> (f32[64]) {\n"
           "  %%0: f32[] = constant {value=[%.17g]}\n"
           "  %%1: f32[64] = broadcast_in_dim %%0 {dims=[]}\n"
           "  %%2: f32[64] = mul %%x, %%1\n"
           "  %%3: f32[64] = exp %%2\n"
           "  return %%3\n"
           "}\n",
           salt);
  return parse(text);
}

static inline bool run_salted(ry_graph *g, double salt) {
  ry_array *x = filled(RY_SHAPE(64), wave), *o = NULL;
  ry_status s = ry_run(g, cpu(), 1, &x, 1, &o);
  bool ok = !s;
  if (s) {
    fprintf(stderr, "run_salted: %s\n", ry_status_message(s));
    ry_status_free(s);
  }
  for (int i = 0; ok && i < 64; i++) {
    double want = exp((double)(float)((float)wave(i) * (float)salt));
    ok = fabs(ry_array_get_f64(o, i) - want) <= 1e-5 * fabs(want) + 1e-30;
  }
  ry_array_release(x);
  ry_array_release(o);
  return ok;
}

static inline double unique_salt(void) { return 1.0 + (double)(getpid() % 1000) * 1e-4 + (double)rand() * 1e-12; }

#endif
