/* lm_internal.h - what the GGUF loader (gguf_model.c) shares with the
 * model (model.c). Internal to src/llm; names carry the ryl_ prefix. */
#ifndef RYFT_LLM_LM_INTERNAL_H
#define RYFT_LLM_LM_INTERNAL_H

#include "ryft/model.h"

/* The ggml type of weight `name` when the tree holds its raw blocks
 * (u8[rows, row bytes]), or -1 when it holds f32 values. */
typedef int (*ryl_qtype_fn)(const char *name, void *ctx);

/* ry_lm_new with quantized matrices: the 2-D weights for which qtype gives
 * a type stay blocks, and every product with them runs from the blocks
 * (ry_dequantize_act8). qtype NULL: every weight is f32 (ry_lm_new). */
ry_status ryl_lm_new(const ry_lm_config *c, const ry_params *weights, ryl_qtype_fn qtype, void *qctx, ry_device *dev,
                     int max_ctx, ry_lm **out);

#endif
