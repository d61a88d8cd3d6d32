/* pool.h - the persistent thread pool of the cpu backend. */
#ifndef RYFT_BACKEND_CPU_POOL_H
#define RYFT_BACKEND_CPU_POOL_H

#include <stdint.h>

/* ---- thread pool (pool.c) ---- */
typedef void (*ryc_task_fn)(void *ctx, int64_t lo, int64_t hi);
/* Run fn over [0, n) split into contiguous chunks of at least `grain`
 * items; the caller takes part. Chunks never overlap. */
void ryc_parallel_for(int64_t n, int64_t grain, ryc_task_fn fn, void *ctx);
int ryc_num_threads(void);
/* Work (elements) below which a kernel runs on the calling thread alone;
 * tests set it to 1 to exercise the split on tiny programs. */
int64_t ryc_parallel_threshold(void);
void ryc_set_parallel_threshold(int64_t n); /* <= 0: the default */
/* Set the thread count (tests); 0 = back to RYFT_NUM_THREADS / cores. */
void ryc_set_num_threads(int n);

#endif
