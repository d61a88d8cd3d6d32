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

/* model.c's checks of a config and its weights (qtype as below; NULL: all f32) */
ry_status ryl_check_weights(const ry_lm_config *c, const ry_params *w, ryl_qtype_fn qtype, void *qctx);
/* The weights of config c in the programs' input order: up to cap names
 * and ranks written (names may be NULL with cap 0); returns how many there
 * are, or -1 when out of memory. */
int ryl_weight_names(const ry_lm_config *c, char (*names)[64], int *ranks, int cap);

/* ggml's CPU arithmetic out of ryft's ops (ggml_arith.c), for
 * ry_lm_config.ggml_numerics: each gives the bits ggml's op gives. */
ry_value ryl_round_f16(ry_builder *b, ry_loc loc, ry_value x); /* to f16 and back */
ry_value ryl_rms_norm_ggml(ry_builder *b, ry_loc loc, ry_value x, ry_value g, double eps);
/* RoPE cos and sin [T, head_dim / 2] of positions pos0 + t (all below rows) */
void ryl_rope_tables_ggml(ry_builder *b, ry_loc loc, double base, int head_dim, int64_t rows, int64_t T, ry_value pos0,
                          ry_value *cs, ry_value *sn);
/* a * b - c * d (sign < 0) or a * b + c * d, the first product fused */
ry_value ryl_rotate_ggml(ry_builder *b, ry_loc loc, ry_value a, ry_value bb, ry_value c, ry_value d, int sign);
ry_value ryl_softmax_ggml(ry_builder *b, ry_loc loc, ry_value x); /* last axis */
ry_value ryl_swiglu_ggml(ry_builder *b, ry_loc loc, ry_value x, ry_value g);
/* x [B, H, M, K] . y [B, H, N, K] (y_k_first: [B, H, K, N]) -> [B, H, M, N],
   operands holding f16 values, summed in ggml_vec_dot_f16's order
   (tinyblas 0: llama.cpp with one row) or llamafile tinyBLAS's (1: with
   several) */
ry_value ryl_dot_f16_ggml(ry_builder *b, ry_loc loc, ry_value x, ry_value y, int y_k_first, int tinyblas);

#endif
