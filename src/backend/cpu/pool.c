/* A persistent thread pool for the cpu backend. Workers are started on first
 * use and live for the process; a job is split into one contiguous chunk
 * per thread (the caller runs chunk 0). Chunk boundaries depend on the
 * thread count, but every kernel computes each output element entirely in
 * one chunk in a fixed order, so results are bitwise identical for any
 * thread count. A second caller while the pool is busy runs its job inline.
 * RYFT_NUM_THREADS sets the count (default: online cores). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cpu.h"

#define MAX_THREADS 256

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;   /* the pool's state */
static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER;   /* one job at a time */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;
static int g_started;          /* workers running */
static unsigned long g_gen;    /* job generation */
static int g_pending;          /* chunks not finished */
static int g_nchunks;
static int64_t g_n, g_grain;
static ryc_task_fn g_fn;
static void *g_ctx;
static atomic_int g_threads;   /* 0 = not decided yet */

static int default_threads(void) {
  const char *e = getenv("RYFT_NUM_THREADS");
  if (e && *e) {
    long v = strtol(e, NULL, 10);
    if (v >= 1) return v > MAX_THREADS ? MAX_THREADS : (int)v;
  }
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c < 1 ? 1 : c > MAX_THREADS ? MAX_THREADS : (int)c;
}

int ryc_num_threads(void) {
  int t = atomic_load(&g_threads);
  if (!t) {
    t = default_threads();
    atomic_store(&g_threads, t);
  }
  return t;
}

#define DEFAULT_PAR_MIN_WORK 32768
static _Atomic int64_t g_par_min = DEFAULT_PAR_MIN_WORK;
int64_t ryc_parallel_threshold(void) { return atomic_load(&g_par_min); }
void ryc_set_parallel_threshold(int64_t n) { atomic_store(&g_par_min, n > 0 ? n : DEFAULT_PAR_MIN_WORK); }

void ryc_set_num_threads(int n) { atomic_store(&g_threads, n <= 0 ? 0 : n > MAX_THREADS ? MAX_THREADS : n); }

static void chunk(int64_t n, int64_t grain, int nchunks, int i, int64_t *lo, int64_t *hi) {
  /* split into nchunks pieces aligned to grain */
  int64_t units = (n + grain - 1) / grain;
  int64_t a = units * i / nchunks, b = units * (i + 1) / nchunks;
  *lo = a * grain < n ? a * grain : n;
  *hi = b * grain < n ? b * grain : n;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg; /* 1.. */
  unsigned long seen = 0;
  pthread_mutex_lock(&g_lock);
  for (;;) {
    while (g_gen == seen) pthread_cond_wait(&g_wake, &g_lock);
    seen = g_gen;
    if (id >= g_nchunks) continue;
    ryc_task_fn fn = g_fn;
    void *ctx = g_ctx;
    int64_t lo, hi;
    chunk(g_n, g_grain, g_nchunks, id, &lo, &hi);
    pthread_mutex_unlock(&g_lock);
    if (lo < hi) fn(ctx, lo, hi);
    pthread_mutex_lock(&g_lock);
    if (--g_pending == 0) pthread_cond_signal(&g_done);
  }
  return NULL;
}

void ryc_parallel_for(int64_t n, int64_t grain, ryc_task_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int t = ryc_num_threads();
  int64_t units = (n + grain - 1) / grain;
  int nchunks = units < t ? (int)units : t;
  if (nchunks <= 1 || pthread_mutex_trylock(&g_busy) != 0) {
    fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&g_lock);
  while (g_started < nchunks - 1) {
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, worker, (void *)(intptr_t)(g_started + 1));
    pthread_attr_destroy(&attr);
    if (rc != 0) break;
    g_started++;
  }
  if (nchunks > g_started + 1) nchunks = g_started + 1;
  if (nchunks <= 1) {
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_unlock(&g_busy);
    fn(ctx, 0, n);
    return;
  }
  g_fn = fn;
  g_ctx = ctx;
  g_n = n;
  g_grain = grain;
  g_nchunks = nchunks;
  g_pending = nchunks - 1;
  g_gen++;
  pthread_cond_broadcast(&g_wake);
  pthread_mutex_unlock(&g_lock);
  int64_t lo, hi;
  chunk(n, grain, nchunks, 0, &lo, &hi);
  if (lo < hi) fn(ctx, lo, hi);
  pthread_mutex_lock(&g_lock);
  while (g_pending > 0) pthread_cond_wait(&g_done, &g_lock);
  pthread_mutex_unlock(&g_lock);
  pthread_mutex_unlock(&g_busy);
}
