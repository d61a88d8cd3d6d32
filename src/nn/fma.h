/* fma.h - f32 fused multiply-add as a composite of ordinary ops. */
#ifndef RYFT_NN_FMA_H
#define RYFT_NN_FMA_H

#include "ryft/trace.h"

/* f32 x * y + z with one rounding, exactly (ties included), from f64 ops:
 * the IR has no fma, and the JAX-exact samplers (random.c) and ggml's
 * arithmetic (llm/ggml_arith.c) need the rounding a fused multiply-add
 * gives on every backend. */
ry_value ryn_fma_f32(ry_builder *b, ry_loc loc, ry_value x, ry_value y, ry_value z);
/* The same in 5 ops instead of 14: the exact product summed in f64 and
 * rounded to f32, which differs from one rounding only when the f64 sum
 * lands exactly on an f32 tie (about once in 2^29 random operands), for
 * graphs that take that to stay small (ggml's exp, run per element). */
ry_value ryn_fma_f32_rounded_twice(ry_builder *b, ry_loc loc, ry_value x, ry_value y, ry_value z);

#endif
