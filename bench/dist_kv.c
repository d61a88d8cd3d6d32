/* Latency of the job's key-value store (ryft/dist.h) on rank 1 of an MPI
 * job, whose requests go to rank 0's service thread: put, get of a key that
 * is there, and try-get (timeout 0) of one that is not; median of ITERS
 * calls each, for small and 64 KB values. Built and run by
 * bench/dist_kv.sh. */
#include <ryft/ryft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { ITERS = 200 };

int main(int argc, char **argv) {
  ry_status s = ry_dist_init(&argc, &argv);
  static char val[65536];
  memset(val, 'v', sizeof val);
  static const size_t sizes[] = {16, 65536};
  if (!s && ry_dist_rank() == 1) {
    printf("| value bytes | put | get (present) | try-get (absent) |\n|---|---|---|---|\n");
    for (size_t k = 0; k < 2 && !s; k++) {
      double t[3][ITERS];
      for (int i = 0; i < ITERS && !s; i++) {
        char key[32];
        snprintf(key, sizeof key, "bench/%zu/%d", k, i);
        void *v = NULL;
        double t0 = now_s();
        s = ry_dist_kv_put(key, val, sizes[k]);
        double t1 = now_s();
        if (!s) s = ry_dist_kv_get(key, 1000, &v, NULL);
        double t2 = now_s();
        ry_free(v);
        ry_status miss = s ? NULL : ry_dist_kv_get("bench/absent", 0, &v, NULL);
        double t3 = now_s();
        ry_status_free(miss);
        t[0][i] = t1 - t0, t[1][i] = t2 - t1, t[2][i] = t3 - t2;
      }
      for (int j = 0; j < 3; j++) qsort(t[j], ITERS, sizeof(double), cmp);
      if (!s)
        printf("| %zu | %.0f us | %.0f us | %.0f us |\n", sizes[k], t[0][ITERS / 2] * 1e6, t[1][ITERS / 2] * 1e6,
               t[2][ITERS / 2] * 1e6);
    }
  }
  if (s) {
    fprintf(stderr, "dist_kv: rank %d: %s\n", ry_dist_rank(), ry_status_message(s));
    ry_status_free(s);
    ry_dist_abort(1);
  }
  s = ry_dist_finalize();
  ry_status_free(s);
  return 0;
}
