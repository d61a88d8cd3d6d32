/* The CPU JIT backend: graph passes, fusion, C code generation, the compiler
 * driver with its memory and disk cache, a persistent thread pool and GEMM.
 *
 * Pipeline (cpu.c drives it):
 *   graph --passes.c--> optimized graph (calls inlined, folded, CSE, DCE)
 *         --plan.c, fuse.c--> plan: which values are materialized, one step per
 *                        kernel / GEMM / interpreter node
 *         --expr.c, loops.c, rowkern.c--> one C module (a function per
 *                        fused kernel; fuse.h lists the stages)
 *         --jit.c-->     cc -O3 -march=native -shared, cached, dlopen
 *   execute: steps in order, kernels split over the pool (pool.c), GEMMs
 *   (gemm.c) and convolutions (conv.c: im2col + GEMM).
 *
 * Each stage has its own header, included in this order with no cycles:
 *   pool.h, dump.h (and core's ry__buf) -> jit.h -> gemm.h -> conv.h -> passes.h -> plan.h
 *   -> fuse.h (the fusion stages) -> cpu.h (this file: the backend, and the
 *   umbrella the tests include).
 * Cross-file names of this module carry the prefix `ryc_` (`ryf_` inside
 * the fusion stages). */
#ifndef RYFT_BACKEND_CPU_H
#define RYFT_BACKEND_CPU_H

#include "../interp/interp.h"
#include "conv.h"
#include "dump.h"
#include "gemm.h"
#include "jit.h"
#include "passes.h"
#include "plan.h"
#include "pool.h"


/* Memory of the last run on this thread (tests): bytes of the buffers a run
 * holds (temporaries and outputs, including those waiting for reuse; the
 * caller's inputs count only once a donated one is taken over), their peak,
 * bytes newly allocated, buffers reused from the free list, and outputs
 * written over a dying input. */
typedef struct ryc_run_stats {
  size_t live_bytes, peak_bytes, fresh_bytes;
  long reused, in_place;
  int cold; /* the run went node by node: its module was still compiling (the rest is 0 then) */
} ryc_run_stats;
void ryc_last_run_stats(ryc_run_stats *out);
/* Tests: 1 compiles modules in the background (the default), 0 before
 * ry_compile returns (as RYFT_COMPILE_SYNC=1), 2 never (every run goes node
 * by node), -1 back to the environment. */
void ryc_set_background_compiles(int on);

#endif
