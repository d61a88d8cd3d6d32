/* Per-machine choices by measurement: the vector width of generated loops.
 *
 * gcc's -march=native keeps 256-bit vectors on many AVX-512 CPUs; which
 * width is faster for ryft's fused loops differs by vendor and core (on a
 * Zen 4 here 512-bit vectors halve softmax's bandwidth, bench/RESULTS.md),
 * so it is measured once per machine and compiler, not assumed. */
#define _GNU_SOURCE /* mkdtemp */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../core/internal.h"
#include "../../core/trust.h"
#include "jit.h"
#include "prelude.h"
#include "tune.h"

/* The probe: loops shaped like generated kernels over the prelude's math. */
static const char k_probe[] =
    "void probe_gelu(const float *restrict x, float *restrict y, int64_t n) {\n"
    "  for (int64_t i = 0; i < n; i++) { float v = x[i]; y[i] = 0.5f * v * (1.0f + ry_erff(v * 0x1.6a09e6p-1f)); }\n"
    "}\n"
    "void probe_softmax(const float *restrict x, float *restrict y, int64_t rows, int64_t cols) {\n"
    "  for (int64_t r = 0; r < rows; r++) {\n"
    "    const float *xr = x + r * cols; float *yr = y + r * cols; float m = xr[0], s = 0.0f;\n"
    "    for (int64_t c = 1; c < cols; c++) m = xr[c] > m ? xr[c] : m;\n"
    "    for (int64_t c = 0; c < cols; c++) { float e = ry_expf(xr[c] - m); yr[c] = e; s += e; }\n"
    "    float inv = 1.0f / s;\n"
    "    for (int64_t c = 0; c < cols; c++) yr[c] *= inv;\n"
    "  }\n"
    "}\n";

static bool cpu_line(const char *key, char *out, size_t size) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return false;
  char line[8192];
  bool hit = false;
  size_t kl = strlen(key);
  while (!hit && fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl)) {
      const char *v = strchr(line, ':');
      snprintf(out, size, "%s", v ? v + 1 : "");
      hit = true;
    }
  fclose(f);
  return hit;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef void (*gelu_fn)(const float *, float *, int64_t);
typedef void (*softmax_fn)(const float *, float *, int64_t, int64_t);

typedef struct probe {
  void *h;
  gelu_fn gelu;
  softmax_fn softmax;
  double gelu_ms, softmax_ms; /* best so far */
} probe;

/* compile the probe with `extra` flags and load it */
static bool probe_load(const char *dir, const char *cc, const char *cflags, const char *extra, const char *tag, probe *p) {
  char src[600], so[600], qs[700], qo[700], cmd[3000];
  snprintf(src, sizeof src, "%s/probe.c", dir);
  snprintf(so, sizeof so, "%s/probe-%s.so", dir, tag);
  FILE *f = fopen(src, "w");
  if (!f) return false;
  for (int i = 0; ryc_prelude[i]; i++) fputs(ryc_prelude[i], f);
  for (int i = 0; ryc_math_lines[i]; i++) fputs(ryc_math_lines[i], f);
  fputs(k_probe, f);
  if (fclose(f) != 0) return false;
  ryc_shquote(src, qs, sizeof qs);
  ryc_shquote(so, qo, sizeof qo);
  snprintf(cmd, sizeof cmd, "%s %s %s -fPIC -shared -o %s %s -lm 2>/dev/null", cc, cflags, extra, qo, qs);
  int rc = ryc_run_sh(cmd);
  unlink(src);
  p->h = rc == 0 ? dlopen(so, RTLD_NOW | RTLD_LOCAL) : NULL;
  unlink(so);
  if (!p->h) return false;
  void *g = dlsym(p->h, "probe_gelu"), *s = dlsym(p->h, "probe_softmax");
  memcpy(&p->gelu, &g, sizeof p->gelu);
  memcpy(&p->softmax, &s, sizeof p->softmax);
  p->gelu_ms = p->softmax_ms = 1e30;
  return p->gelu && p->softmax;
}

static void probe_time(probe *p, const float *x, float *y, int64_t n) {
  double t0 = now_s();
  p->gelu(x, y, n);
  double t1 = now_s();
  p->softmax(x, y, n / 1024, 1024);
  double t2 = now_s();
  if ((t1 - t0) * 1e3 < p->gelu_ms) p->gelu_ms = (t1 - t0) * 1e3;
  if ((t2 - t1) * 1e3 < p->softmax_ms) p->softmax_ms = (t2 - t1) * 1e3;
}

/* measure: both widths compiled, then timed in alternation (best of 8 each,
   after a round that touches the pages), so a busy machine slows both
   alike; 512 when it is at least 10% faster over gelu + softmax, else 256
   (0 when the probe cannot be built); the measurements go to note */
static int measure(const char *cc, const char *cflags, char *note, size_t note_size) {
  char dir[] = "/tmp/ryft-tune-XXXXXX";
  if (!mkdtemp(dir)) return 0;
  const int64_t n = (int64_t)1 << 22;
  float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
  probe p[2];
  memset(p, 0, sizeof p);
  bool ok[2] = {false, false};
  int w = 0;
  if (x && y) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 8000) / 1000.0f - 4.0f;
    ok[0] = probe_load(dir, cc, cflags, "-mprefer-vector-width=256", "256", &p[0]);
    ok[1] = ok[0] && probe_load(dir, cc, cflags, "-mprefer-vector-width=512", "512", &p[1]);
  }
  if (ok[0] && ok[1]) {
    for (int r = 0; r < 9; r++)
      for (int i = 0; i < 2; i++) {
        probe_time(&p[i], x, y, n);
        if (r == 0) p[i].gelu_ms = p[i].softmax_ms = 1e30;
      }
    double t256 = p[0].gelu_ms + p[0].softmax_ms, t512 = p[1].gelu_ms + p[1].softmax_ms;
    w = t512 < 0.9 * t256 ? 512 : 256;
    snprintf(note, note_size,
             "# 256-bit: gelu %.2f ms, softmax %.2f ms; 512-bit: gelu %.2f ms, softmax %.2f ms (4M floats, 1 thread)\n",
             p[0].gelu_ms, p[0].softmax_ms, p[1].gelu_ms, p[1].softmax_ms);
  } else if (ok[0]) {
    w = 256;
    snprintf(note, note_size, "# 512-bit vectors could not be compiled\n");
  }
  for (int i = 0; i < 2; i++)
    if (p[i].h) dlclose(p[i].h);
  free(x);
  free(y);
  rmdir(dir);
  return w;
}

int ryc_tune_parse(FILE *f) {
  char line[512];
  bool at_start = true; /* line begins a line of the file, not the rest of a long one */
  for (;;) {
    /* fgets writes the buffer's last byte (its NUL) only when the line
       filled it, which strlen cannot tell when a NUL byte comes first; then
       the line ended only if the byte before is its newline */
    line[sizeof line - 1] = 1;
    if (!fgets(line, sizeof line, f)) break;
    bool from_start = at_start;
    at_start = line[sizeof line - 1] != 0 || line[sizeof line - 2] == '\n';
    if (!from_start || strncmp(line, "vector_width", 12)) continue;
    /* strtol, not sscanf's %d: a number past int's range is not wrapped into one */
    char *end;
    errno = 0;
    long v = strtol(line + 12, &end, 10);
    if (end != line + 12 && errno == 0 && (v == 256 || v == 512)) return (int)v;
  }
  return 0;
}

int ryc_tune_vector_width(const char *cc, const char *cflags, const char *ccver, bool *measured) {
  if (measured) *measured = false;
  const char *e = getenv("RYFT_VECTOR_WIDTH");
  if (e && (!strcmp(e, "256") || !strcmp(e, "512"))) return atoi(e);
  char model[256] = "", flags[4096] = "";
  cpu_line("flags", flags, sizeof flags);
  if (!strstr(flags, " avx512f")) return 0; /* one width to choose from */
  cpu_line("model name", model, sizeof model);
  uint64_t k = ryc_fnv(model, strlen(model), 1469598103934665603ull);
  k = ryc_fnv(flags, strlen(flags), k);
  k = ryc_fnv(cc, strlen(cc) + 1, k);
  k = ryc_fnv(cflags, strlen(cflags) + 1, k);
  k = ryc_fnv(ccver, strlen(ccver) + 1, k);
  char dir[4096], path[4200], tmp[4300];
  bool cache = ryc_cache_dir_trusted(dir, sizeof dir, true);
  if (cache) {
    snprintf(path, sizeof path, "%s/tune-%016llx.txt", dir, (unsigned long long)k);
    int fd = ry__open_safe(path, O_RDONLY, 0);
    char why[256];
    FILE *f = fd >= 0 && ry__file_trusted(fd, false, why, sizeof why) ? fdopen(fd, "r") : NULL;
    if (!f && fd >= 0) close(fd);
    int w = f ? ryc_tune_parse(f) : 0;
    if (f) fclose(f);
    if (w) return w;
  }
  char note[512] = "";
  int w = measure(cc, cflags, note, sizeof note);
  if (measured) *measured = w != 0;
  if (w && cache) { /* a temporary name renamed into place: readers never see half a file */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = ry__open_safe(tmp, O_WRONLY | O_CREAT, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f && fd >= 0) close(fd);
    if (f) {
      fprintf(f, "# ryft: -mprefer-vector-width for generated loops on%s%s", model, note);
      fprintf(f, "vector_width %d\n", w);
      if (fclose(f) != 0 || rename(tmp, path) != 0) unlink(tmp);
    }
  }
  return w;
}
