/* The CPU JIT backend: graph passes, fusion, C code generation, the compiler
 * driver with its memory and disk cache, a persistent thread pool and GEMM.
 *
 * Pipeline (cpu.c drives it):
 *   graph --passes.c--> optimized graph (calls inlined, folded, CSE, DCE)
 *         --fuse.c-->   plan: which values are materialized, one step per
 *                        kernel / GEMM / interpreter node
 *         --codegen.c--> one C module (a function per fused kernel)
 *         --jit.c-->     cc -O3 -march=native -shared, cached, dlopen
 *   execute: steps in order, kernels split over the pool (pool.c), GEMMs
 *   (gemm.c) and convolutions (conv.c: im2col + GEMM).
 *
 * Cross-file names of this module carry the prefix `ryc_`. */
#ifndef RYFT_BACKEND_CPU_H
#define RYFT_BACKEND_CPU_H

#include <stdio.h>

#include "../interp/interp.h"

extern const ry_backend ryc_backend;

/* ---- dump (cpu.c): RYFT_DUMP=dir ---- */
typedef struct ryc_dump {
  char dir[768]; /* empty: no dump */
  int seq;       /* program number in this process */
} ryc_dump;
/* Open dir/<prog>.<stage> for writing; NULL when not dumping. */
FILE *ryc_dump_open(const ryc_dump *d, const char *stage);
void ryc_dump_graph(const ryc_dump *d, const char *stage, const ry_graph *g);

/* ---- passes (passes.c) ---- */
/* Inline calls, simplify, fold constants, CSE, then DCE; a new graph. Each
 * stage is dumped when d is dumping. */
ry_status ryc_optimize(const ry_graph *g, const ryc_dump *d, ry_graph **out);

/* ---- plan (fuse.c) ---- */
typedef enum ryc_step_kind { RYC_STEP_KERNEL, RYC_STEP_GEMM, RYC_STEP_INTERP, RYC_STEP_CONV } ryc_step_kind;

typedef struct ryc_gemm {
  int64_t batch, m, n, k;
  int64_t a_bstride, b_bstride; /* elements between batches (0 = shared) */
  int trans_a, trans_b;         /* A stored (k, m) / B stored (n, k) */
  ry_dtype dt;                  /* f32 or f64 */
} ryc_gemm;

/* A convolution as im2col + GEMM per group (conv.c). An axis of the patch
 * matrix: batch / input feature / output spatial / kernel spatial. */
typedef struct ryc_conv_axis {
  int64_t size;
  int kind;       /* 0 batch, 1 feature, 2 output spatial, 3 kernel spatial */
  int sp;         /* spatial dim (kinds 2, 3) */
  int64_t mul;    /* spatial kinds: steps in the dilated input per unit */
  int64_t in_st;  /* batch / feature: input stride */
  int64_t w_st;   /* k axes: kernel stride */
  int64_t o_st;   /* m axes: output stride */
} ryc_conv_axis;

#define RYC_CONV_BM_MAX 1024 /* rows of a patch block at most */

#define RYC_CONV_BM_MAX 1024 /* rows of a patch block at most */

typedef struct ryc_conv {
  ry_dtype dt;                        /* f32 or f64 */
  int nsp;                            /* spatial dims */
  int64_t groups, M, K, Og;           /* per group C (M, Og) = P (M, K) B (K, Og) */
  int64_t bm;                         /* rows of M a block */
  int64_t kc, ksplit;                 /* K in ksplit chunks of kc, summed in order */
  int64_t run;                        /* patch elements copied as one contiguous run */
  int64_t in_goff, w_goff, o_goff;    /* element offsets between groups */
  int64_t w_ost, o_fst;               /* kernel / output stride of the output feature */
  int kt;                             /* patches stored (K, M) */
  int b_mode;                         /* 0 packed, 1 kernel is (K, Og), 2 kernel is (Og, K) */
  int direct;                         /* C rows are the output's rows */
  int swap;                           /* compute C^T = B^T P^T (few output features) */
  int n_m, n_k;
  ryc_conv_axis m[RY_MAX_RANK], k[RY_MAX_RANK]; /* outer first */
  int64_t lo[RY_MAX_RANK], dil[RY_MAX_RANK], ld[RY_MAX_RANK], sp_st[RY_MAX_RANK]; /* per spatial dim */
} ryc_conv;

/* Plan convolution node n; false (with *why) when the GEMM path does not
 * take it. */
bool ryc_conv_plan(const ry_graph *g, const ry_node *n, ryc_conv *c, const char **why);
/* out = conv(x, w): threads over the pool, results independent of their count */
ry_status ryc_conv_run(const ryc_conv *c, const void *x, const void *w, void *out);

#define RYC_MAX_INPLACE 4

typedef struct ryc_step {
  ryc_step_kind kind;
  int32_t node;         /* the node of the optimized graph (root for kernels) */
  int kernel;           /* KERNEL: index of the generated function */
  int n_bufs;           /* KERNEL: buffers passed, outputs first */
  int32_t *bufs;        /* value ids (owned) */
  int n_out;            /* KERNEL: how many of bufs are outputs */
  int64_t outer;        /* KERNEL: trip count of the parallel loop */
  int64_t work;         /* KERNEL: elements touched (to decide on threads) */
  ryc_gemm gemm;        /* GEMM */
  ryc_conv *conv;       /* CONV (owned) */
  int32_t *release;     /* values whose last use is this step (owned) */
  int n_release;
  /* KERNEL: variants ryk_<kernel>_ip<slot> that write the output over
   * bufs[slot] (read only at the output's own elements, dying here); used
   * when that buffer's last reference is the run's (a donated input or a
   * temporary) */
  int n_inplace;
  int inplace_slot[RYC_MAX_INPLACE];
} ryc_step;

typedef struct ryc_plan {
  const ry_graph *g;    /* the optimized graph (not owned here) */
  bool *mat;            /* [n_values] materialized values */
  ryc_step *steps;
  int n_steps, steps_cap;
  int n_kernels;
  char *source;         /* the generated C module (owned, NUL-terminated) */
  size_t source_len, source_cap;
  char *report;         /* the fusion report (owned, NUL-terminated) */
  size_t report_len, report_cap;
} ryc_plan;

ry_status ryc_plan_build(const ry_graph *g, ryc_plan *p);
void ryc_plan_free(ryc_plan *p);

/* ---- a growable string (codegen) ---- */
typedef struct ryc_buf {
  char *s;
  size_t n, cap;
  bool oom;
} ryc_buf;
void ryc_printf(ryc_buf *b, const char *fmt, ...) RY_PRINTF(2, 3);
void ryc_buf_free(ryc_buf *b);
/* dst += src; a src that ran out of memory makes dst out of memory too, so a
 * truncated piece of code is never pasted into a kernel */
void ryc_append(ryc_buf *dst, const ryc_buf *src);
/* One line describing a convolution plan (the fusion report). */
void ryc_conv_describe(const ryc_conv *c, ryc_buf *b);

/* ---- compiler driver and cache (jit.c) ---- */
/* Codegen ends the prelude with RYC_PRELUDE_END and puts RYC_SPLIT before
 * each top-level kernel function; the driver may cut a big module at a
 * RYC_SPLIT to compile its halves in parallel, each with the prelude. */
#define RYC_PRELUDE_END "\n/* ryc:end of prelude */\n"
#define RYC_SPLIT "\n/* ryc:split */\n"
typedef struct ryc_module ryc_module;
/* True when a C compiler runs here (checked once per process). */
bool ryc_have_compiler(void);
/* Compile `src` (or find it in the memory / disk cache) and load it. */
ry_status ryc_module_get(const char *src, size_t len, const ryc_dump *d, ryc_module **out);
void *ryc_module_sym(ryc_module *m, const char *name);
void ryc_module_release(ryc_module *m);
/* Statistics for tests: live modules held in memory, disk hits, compiles,
 * bad entries rebuilt, lookups that found the cache directory untrusted. */
typedef struct ryc_cache_stats {
  int live_modules;
  long mem_hits, disk_hits, compiles, corrupt, untrusted;
} ryc_cache_stats;
void ryc_cache_stats_get(ryc_cache_stats *s);
/* The configured cache directory ($RYFT_CACHE_DIR, $XDG_CACHE_HOME/ryft,
 * ~/.cache/ryft, else $TMPDIR-or-/tmp/ryft-cache-<euid>), before the trust
 * check of jit.c that decides whether it is used. */
void ryc_cache_dir(char *buf, size_t size);
/* Drop idle modules from the memory cache (tests). */
void ryc_cache_trim(void);

/* Memory of the last run on this thread (tests): bytes of the buffers a run
 * holds (temporaries and outputs, including those waiting for reuse; the
 * caller's inputs count only once a donated one is taken over), their peak,
 * bytes newly allocated, buffers reused from the free list, and outputs
 * written over a dying input. */
typedef struct ryc_run_stats {
  size_t live_bytes, peak_bytes, fresh_bytes;
  long reused, in_place;
} ryc_run_stats;
void ryc_last_run_stats(ryc_run_stats *out);

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

/* ---- GEMM (gemm.c) ---- */
/* C (m, n) = A (m, k) * B (k, n), row-major; trans flags say A is stored
 * (k, m) and B (n, k). Threads split n and m; results do not depend on the
 * thread count. */
void ryc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c);
void ryc_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c);
/* Which implementation ryc_sgemm uses ("ryft-avx512", "portable", ...). */
const char *ryc_gemm_impl(void);

#endif
