/* Time of one all_reduce (sum, f32) across the ranks of an MPI job, as the
 * data-parallel train step does it: a cpu-device program of one psum, called
 * in a loop; each size is run ITERS times after a warm-up, the median call
 * is reported by rank 0. Built and run by bench/dist_allreduce.sh. */
#include <ryft/ryft.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int psum(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_psum(b, in[0], ry_dist_size());
  return 1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  ry_status s = ry_dist_init(&argc, &argv);
  ry_device *dev = NULL;
  ry_jit *j = NULL;
  if (!s) s = ry_device_get("cpu", &dev);
  if (!s) s = ry_jit_new("psum", psum, NULL, dev, &j);
  static const int64_t sizes[] = {1, 1024, 65536, 206922, 1048576, 4194304};
  enum { ITERS = 30 };
  if (!s && ry_dist_rank() == 0) printf("| f32 elements | bytes | median all_reduce (%d ranks) | per byte |\n|---|---|---|---|\n", ry_dist_size());
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0] && !s; k++) {
    ry_array *x = NULL;
    double t[ITERS];
    if ((s = ry_array_full(RY_F32, RY_SHAPE(sizes[k]), 1.0, &x))) break;
    for (int i = -3; i < ITERS && !s; i++) {
      ry_array *y = NULL;
      double t0 = now_s();
      s = ry_jit_call(j, 1, &x, 1, &y);
      if (i >= 0) t[i] = now_s() - t0;
      ry_array_release(y);
    }
    ry_array_release(x);
    if (s) break;
    qsort(t, ITERS, sizeof t[0], cmp);
    if (ry_dist_rank() == 0)
      printf("| %lld | %.2f MB | %.3f ms | %.2f GB/s |\n", (long long)sizes[k], 4e-6 * (double)sizes[k], 1e3 * t[ITERS / 2],
             4e-9 * (double)sizes[k] / t[ITERS / 2]);
  }
  if (s) fprintf(stderr, "rank %d: %s\n", ry_dist_rank(), ry_status_message(s));
  ry_status_free(s);
  ry_jit_free(j);
  ry_status_free(ry_dist_finalize());
  return 0;
}
