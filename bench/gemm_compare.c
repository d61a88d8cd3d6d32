/* sgemm candidates on this machine, same shapes, same thread count:
 * ryft's own packed GEMM (src/backend/cpu/gemm.c, JIT-compiled for the host),
 * and, loaded with dlopen when their Debian packages are installed,
 * OpenBLAS (libopenblas-dev), BLIS (libblis-dev), oneDNN (libdnnl-dev).
 * (libxsmm-dev 1.17 ships only a static library needing its own build
 * glue; it is not measured.) Prints RESULT lines like ryft_bench. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                               float *, int);
typedef int (*dnnl_sgemm_fn)(char, char, long, long, long, float, const float *, long, const float *, long, float,
                             float *, long);

static void report(const char *impl, const char *shape, double t, double flops) {
  printf("RESULT gemm-%s %s %.6g GFLOP/s\n", shape, impl, flops / t / 1e9);
}

int main(void) {
  int shapes[2][3] = {{1024, 1024, 1024}, {512, 512, 2048}};
  const char *names[2] = {"1024^3", "512x512x2048"};
  void *ob = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL), *bl = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
  void *dn = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
  cblas_sgemm_fn ob_f = NULL, bl_f = NULL;
  dnnl_sgemm_fn dn_f = NULL;
  if (ob) *(void **)&ob_f = dlsym(ob, "cblas_sgemm");
  if (bl) *(void **)&bl_f = dlsym(bl, "cblas_sgemm");
  if (dn) *(void **)&dn_f = dlsym(dn, "dnnl_sgemm");
  printf("# threads %d; ryft gemm: %s\n", ryc_num_threads(), ryc_gemm_impl());
  for (int s = 0; s < 2; s++) {
    int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n),
          *c = malloc(sizeof(float) * (size_t)m * n);
    for (long i = 0; i < (long)m * k; i++) a[i] = (float)((i * 7) % 13) * 0.1f;
    for (long i = 0; i < (long)k * n; i++) b[i] = (float)((i * 5) % 11) * 0.1f;
    double flops = 2.0 * m * n * k;
    for (int impl = 0; impl < 4; impl++) {
      double best = 1e30;
      const char *label = impl == 0 ? "ryft" : impl == 1 ? "openblas" : impl == 2 ? "blis" : "onednn";
      if ((impl == 1 && !ob_f) || (impl == 2 && !bl_f) || (impl == 3 && !dn_f)) continue;
      for (int r = 0; r < 8; r++) {
        double t0 = now();
        if (impl == 0) ryc_sgemm(0, 0, m, n, k, a, b, c);
        else if (impl == 1) ob_f(101, 111, 111, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        else if (impl == 2) bl_f(101, 111, 111, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        else dn_f('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        double t = now() - t0;
        if (r > 0 && t < best) best = t;
      }
      report(label, names[s], best, flops);
    }
    free(a);
    free(b);
    free(c);
  }
  return 0;
}
