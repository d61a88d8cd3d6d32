/* A persistent thread pool for the cpu backend. Workers are started on first
 * use and live for the process; a job is split into one contiguous chunk
 * per thread. Chunks are claimed, not assigned: the caller and the woken
 * workers take the next unclaimed chunk until none is left, so a worker the
 * OS has not scheduled yet (a machine busier than its cores) costs nothing
 * but the chunks it would have run, which the caller runs instead. Chunk
 * boundaries depend on the thread count, but every kernel computes each
 * output element entirely in one chunk in a fixed order, so results are
 * bitwise identical for any thread count and whoever runs a chunk. A second
 * caller while the pool is busy runs its job inline. RYFT_NUM_THREADS sets
 * the count (default: online cores). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool.h"

#define MAX_THREADS 256

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;   /* sleeping and waking */
static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER;   /* one job at a time */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;
static int g_started;          /* workers running (under g_lock) */
static unsigned long g_gen;    /* job generation (under g_busy) */
/* g_work[i]: the generation worker i is woken for. g_claim: the job being
 * split, (generation & 0xffffff) << 40 | chunks << 20 | next chunk. The
 * caller writes the job below, then opens it with a release store of
 * g_claim; a thread owns a chunk by a compare-and-swap that moves the next
 * chunk on, which fails for a job that has changed, so a late worker never
 * reads another job's fields. The caller does not change the job until
 * g_left (chunks not finished) is 0, so an owner reads a stable job. */
static atomic_ulong g_work[MAX_THREADS];
static _Atomic uint64_t g_claim;
static atomic_int g_left;
static int g_nchunks;
static int64_t g_n, g_grain;
static ryc_task_fn g_fn;
static void *g_ctx;
static atomic_int g_threads;   /* 0 = not decided yet */

/* Steps of a program come back to back, so waiting threads first spin a
 * little (about 50 us) before they sleep on a condition variable. */
#define SPIN_ITERS 4000
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

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

/* Run chunks of job `gen` while any is unclaimed; a thread that finishes
 * the last one wakes a caller asleep in ryc_parallel_for. Returns how many
 * it ran. */
static int run_chunks(unsigned long gen) {
  uint64_t c = atomic_load_explicit(&g_claim, memory_order_acquire);
  for (int ran = 0;; ran++) {
    if ((c >> 40) != (gen & 0xffffff) || (c & 0xfffff) >= ((c >> 20) & 0xfffff)) return ran;
    if (!atomic_compare_exchange_weak_explicit(&g_claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire)) {
      ran--;
      continue;
    }
    int64_t lo, hi;
    chunk(g_n, g_grain, g_nchunks, (int)(c & 0xfffff), &lo, &hi);
    if (lo < hi) g_fn(g_ctx, lo, hi);
    if (atomic_fetch_sub_explicit(&g_left, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&g_lock);
      pthread_cond_signal(&g_done);
      pthread_mutex_unlock(&g_lock);
    }
    c = atomic_load_explicit(&g_claim, memory_order_acquire);
  }
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg; /* 1.. */
  unsigned long seen = 0;
  int spin = SPIN_ITERS;
  for (;;) {
    unsigned long gen;
    for (int i = 0; (gen = atomic_load_explicit(&g_work[id], memory_order_acquire)) == seen && i < spin; i++)
      cpu_relax();
    if (gen == seen) {
      pthread_mutex_lock(&g_lock);
      while ((gen = atomic_load_explicit(&g_work[id], memory_order_acquire)) == seen) pthread_cond_wait(&g_wake, &g_lock);
      pthread_mutex_unlock(&g_lock);
    }
    seen = gen;
    /* a wake-up that found every chunk taken means the caller ran them: the
       cores are busier than the pool, so spin less (spinning takes the
       caller's core); back to the full spin once a chunk is ours again */
    spin = run_chunks(gen) ? SPIN_ITERS : spin > 64 ? spin / 2 : 32;
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
  pthread_mutex_unlock(&g_lock);
  if (nchunks <= 1) {
    pthread_mutex_unlock(&g_busy);
    fn(ctx, 0, n);
    return;
  }
  g_fn = fn;
  g_ctx = ctx;
  g_n = n;
  g_grain = grain;
  g_nchunks = nchunks;
  atomic_store_explicit(&g_left, nchunks, memory_order_relaxed);
  unsigned long gen = ++g_gen;
  atomic_store_explicit(&g_claim, (uint64_t)(gen & 0xffffff) << 40 | (uint64_t)nchunks << 20, memory_order_release);
  pthread_mutex_lock(&g_lock);
  for (int i = 1; i < nchunks; i++) atomic_store_explicit(&g_work[i], gen, memory_order_release);
  pthread_cond_broadcast(&g_wake);
  pthread_mutex_unlock(&g_lock);
  run_chunks(gen);
  /* only chunks other threads own and are still running are left */
  for (int i = 0; atomic_load_explicit(&g_left, memory_order_acquire) > 0 && i < SPIN_ITERS; i++) cpu_relax();
  if (atomic_load_explicit(&g_left, memory_order_acquire) > 0) {
    pthread_mutex_lock(&g_lock);
    while (atomic_load_explicit(&g_left, memory_order_acquire) > 0) pthread_cond_wait(&g_done, &g_lock);
    pthread_mutex_unlock(&g_lock);
  }
  pthread_mutex_unlock(&g_busy);
}
