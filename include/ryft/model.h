/* ryft/model.h - decoder-only transformer language models, written with
 * ryft's NN library as traced functions, so the same model can be jitted,
 * differentiated, vmapped and sent to XLA.
 *
 * Architectures, as llama.cpp runs them from GGUF files:
 * - "llama" (Llama 2/3, SmolLM2, Mistral, TinyLlama): RMS norm, rotary
 *   embeddings on adjacent pairs (ggml's LLAMA rope), grouped-query
 *   attention, SwiGLU;
 * - "qwen2": the same with biases on q, k, v and GPT-NeoX rotary embeddings
 *   on the two halves of a head;
 * - "gemma": embeddings scaled by sqrt(n_embd), NeoX rope, a GELU (tanh)
 *   gated feed-forward, tied embeddings (GGUF stores its norm weights with
 *   Gemma's +1 already added);
 * - "gpt2": learned positions ("position_embd.weight" [n_ctx_train,
 *   n_embd]), LayerNorm with biases, one fused q/k/v projection
 *   ("blk.N.attn_qkv.weight" [3*n_embd, n_embd] and its bias), biases on
 *   every projection, a GELU (tanh) MLP ("ffn_up" and "ffn_down" with
 *   biases), no rope.
 *
 * Weights are a parameter tree (ryft/params.h) with GGUF's tensor names and
 * row-major shapes, rows being outputs: "token_embd.weight" [n_vocab, n_embd],
 * "blk.N.attn_norm.weight" [n_embd], "blk.N.attn_q.weight" [n_heads*head_dim,
 * n_embd], "blk.N.attn_k.weight" / "attn_v.weight" [n_kv_heads*head_dim,
 * n_embd], "blk.N.attn_output.weight" [n_embd, n_heads*head_dim],
 * "blk.N.ffn_norm.weight" [n_embd], "blk.N.ffn_gate.weight" / "ffn_up.weight"
 * [n_ff, n_embd], "blk.N.ffn_down.weight" [n_embd, n_ff],
 * "output_norm.weight" [n_embd] and "output.weight" [n_vocab, n_embd] (absent
 * when the embeddings are tied); qwen2 adds "blk.N.attn_{q,k,v}.bias".
 *
 * The key/value cache is two arrays per layer, f32[batch, n_kv_heads,
 * cache_len, head_dim], that each step updates at the positions it
 * processes (with donation, in place). A query at position p sees the keys
 * at positions <= p, so cache slots past the current position may hold
 * anything. */
#ifndef RYFT_MODEL_H
#define RYFT_MODEL_H

#include "gguf.h"
#include "params.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ry_lm_arch { RY_LM_LLAMA, RY_LM_QWEN2, RY_LM_GEMMA, RY_LM_GPT2 } ry_lm_arch;
/* "llama", "qwen2", "gemma", "gpt2" (GGUF's general.architecture) */
RY_API const char *ry_lm_arch_name(ry_lm_arch a);
/* 0 when the name is not one of them */
RY_API int ry_lm_arch_from_name(const char *name, ry_lm_arch *out);

/* How rotary embeddings pair a head's features: NORM rotates (x[2i],
 * x[2i+1]) (ggml's default, used for llama-family GGUF files, whose q/k
 * weights the converter permuted for it); NEOX rotates (x[i], x[i + d/2])
 * (Hugging Face's rotate_half; qwen2, gemma). Frequencies base^(-2i/d). */
typedef enum ry_rope_kind { RY_ROPE_NONE, RY_ROPE_NORM, RY_ROPE_NEOX } ry_rope_kind;

typedef struct ry_lm_config {
  ry_lm_arch arch;
  int n_layers, n_embd, n_ff, n_heads, n_kv_heads, head_dim, n_vocab;
  int n_ctx_train; /* the context the model was trained for (a limit) */
  double rope_base, norm_eps;
  ry_rope_kind rope;
  int tied_embeddings; /* no output.weight: the logits use token_embd */
  /* Follow ggml's CPU arithmetic (llama.cpp's AVX2 build) where ryft's
   * rounds differently, so that llama.cpp's int8 activations round the same
   * way: a 1-ulp difference before a rounding to 8 bits can move a code
   * (docs/QUANT.md, "Agreeing with llama.cpp"). The RMS norm as ggml's
   * (squares summed in double, 1 / sqrtf(mean + eps), (x * scale) * g);
   * RoPE's angles multiplied up pair by pair and its rotation with the
   * first product fused, as ggml compiled with FMA; the attention's
   * operands in f16 as llama.cpp's default f16 KV cache has them (keys,
   * values, queries, probabilities), K.Q and P.V summed in the lane order
   * of ggml_vec_dot_f16 (one query row) or llamafile's tinyBLAS (several),
   * the 1/sqrt(head_dim) scale on the scores, the softmax and SwiGLU with
   * ggml's vectorized exp and sums. 0: ryft's f32 arithmetic. ry_lm sets it
   * after ry_lm_set_ggml_numerics for a model with quantized weights, unless
   * ry_lm_set_exact, in chunks of up to 64 tokens. */
  int ggml_numerics;
} ry_lm_config;

/* A config that is internally consistent (positive sizes, heads a multiple
 * of kv heads, even head_dim for rope); the error names the field. */
RY_API ry_status ry_lm_config_check(const ry_lm_config *c);
/* Every tensor the config needs is in w, with its shape and a float dtype;
 * the error names the tensor, its shape and the one expected. */
RY_API ry_status ry_lm_check_weights(const ry_lm_config *c, const ry_params *w);

/* Trace the forward pass of tokens i32[B, T] at positions pos0 .. pos0+T-1
 * (pos0: i32 scalar) with the caches k_cache[l] / v_cache[l] f32[B,
 * n_kv_heads, S, head_dim] (l < n_layers) of any length S >= pos0 + T.
 * `window` (W, with pos0 + T <= W <= S) is how many cache positions the
 * attention reads: a static bound that keeps early decoding steps from
 * reading the whole cache. `last` (i32 scalar in [0, T)) picks the position
 * whose logits are returned. Writes *logits f32[B, n_vocab] of position last
 * and k_out[l], v_out[l], the updated caches. Returns 1 + 2 * n_layers, or 0
 * after an error (the builder's sticky error names it). */
RY_API int ry_lm_forward_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens, ry_value pos0,
                   ry_value last, const ry_value *k_cache, const ry_value *v_cache, int64_t window, ry_value *logits,
                   ry_value *k_out, ry_value *v_out);
#define ry_lm_forward(b, c, w, tok, pos0, last, kc, vc, win, lg, ko, vo) \
  ry_lm_forward_((b), RY_HERE, (c), (w), (tok), (pos0), (last), (kc), (vc), (win), (lg), (ko), (vo))

/* ---- training: whole sequences, no cache ----
 * The forward pass of tokens i32[B, T] at positions 0 .. T-1 with causal
 * attention (the same blocks as ry_lm_forward), for training and scoring:
 * the logits of every position, f32[B, T, n_vocab]. T above the model's
 * n_ctx_train sets the builder's error ("a sequence of 2048 tokens is
 * longer than the model's context of 1024"). */
RY_API ry_value ry_lm_logits_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens);
#define ry_lm_logits(b, c, w, tok) ry_lm_logits_((b), RY_HERE, (c), (w), (tok))
/* The mean next-token cross-entropy (f32 scalar) of the logits of tokens
 * against targets i32[B, T] (usually the tokens shifted by one). */
RY_API ry_value ry_lm_loss_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens, ry_value targets);
#define ry_lm_loss(b, c, w, tok, tgt) ry_lm_loss_((b), RY_HERE, (c), (w), (tok), (tgt))
/* The same with activation checkpointing: block l with remat[l] nonzero
 * (remat: n_layers flags, or NULL for none) is its own graph called
 * through ry_checkpoint (RY_REMAT_SAVE_NOTHING), so reverse mode recomputes
 * its activations from its input instead of keeping them. */
RY_API ry_value ry_lm_loss_remat_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens,
                                  ry_value targets, const unsigned char *remat);
#define ry_lm_loss_remat(b, c, w, tok, tgt, rm) ry_lm_loss_remat_((b), RY_HERE, (c), (w), (tok), (tgt), (rm))

typedef struct ry_lm ry_lm;

/* ---- from GGUF files ----
 * The hyperparameters under llama.cpp's keys ("<arch>.block_count",
 * ".embedding_length", ".feed_forward_length", ".attention.head_count",
 * ".attention.head_count_kv", ".attention.key_length",
 * ".attention.layer_norm_rms_epsilon" (gpt2: ".layer_norm_epsilon"),
 * ".rope.freq_base", ".context_length"; the vocabulary is token_embd's row
 * count; tied when there is no output.weight). RY_ERR_UNSUPPORTED names an
 * architecture that is not one of the four. */
RY_API ry_status ry_lm_config_from_gguf(const ry_gguf *g, ry_lm_config *out);
/* The model's tensors dequantized to f32 (any type ry_ggml_dequantize
 * reads; an unsupported one is named with its tensor), checked against c. */
RY_API ry_status ry_lm_weights_from_gguf(const ry_gguf *g, const ry_lm_config *c, ry_params **out);
/* Open a GGUF file and build its model on dev (max_ctx <= 0: the model's
 * context, at most 2048). Errors name the file. The quantized matrices are
 * not copied: they stay blocks in the file's mapping (open until the model
 * and every array of it are gone), and the cpu backend multiplies by them
 * directly, with activations rounded to 8 bits as llama.cpp does (see
 * ry_lm_set_exact). F32, F16 and BF16 tensors become f32 copies. */
RY_API ry_status ry_lm_load(const char *path, ry_device *dev, int max_ctx, ry_lm **out);

/* Write a model as a GGUF file that ryft and llama.cpp load: the
 * hyperparameters under llama.cpp's keys (as ry_lm_config_from_gguf reads
 * them), every 1- or 2-dimensional tensor of w as F32 under its name, and
 * the tokenizer.* keys of tokenizer_from (may be NULL: no tokenizer).
 * Architectures gpt2 and llama. Written atomically. */
RY_API ry_status ry_lm_save_gguf(const char *path, const ry_lm_config *c, const ry_params *w, const ry_gguf *tokenizer_from);

/* ---- a runnable model ----
 * Weights, a device, a cache of max_ctx positions and the compiled steps:
 * prompts run in chunks padded to a few fixed lengths (1, 16, 64, 128, 256) and
 * the attention reads a window rounded up to a power of two (>= 64), so a
 * model compiles a handful of programs, never one per token or per prompt
 * length. */

/* Retains the arrays of `weights` (the caller keeps its tree). max_ctx:
 * positions the cache holds (<= n_ctx_train). */
RY_API ry_status ry_lm_new(const ry_lm_config *c, const ry_params *weights, ry_device *dev, int max_ctx, ry_lm **out);
RY_API void ry_lm_free(ry_lm *m); /* NULL is fine */
/* Process n >= 1 tokens after the ones already seen and write the logits of
 * the last one (n_vocab floats). RY_ERR_INVALID_ARGUMENT when the cache would
 * overflow or a token id is out of range (both named). */
RY_API ry_status ry_lm_eval(ry_lm *m, const int32_t *tokens, int n, float *logits);
/* New weights of the same paths and types (the compiled programs stay
 * valid: a trainer can sample from its model after every eval); the
 * position goes back to 0. Errors name a missing or mismatched tensor. */
RY_API ry_status ry_lm_set_weights(ry_lm *m, const ry_params *w);
RY_API void ry_lm_reset(ry_lm *m);        /* forget the tokens seen (position 0) */
/* exact nonzero: products with quantized weights in f32 from the exactly
 * dequantized weights (the interpreter's numbers, several times slower on
 * the cpu backend); 0 (the default): activations rounded to 8-bit blocks and
 * int8 dot products, as llama.cpp computes them (ry_dequantize_act8). Takes
 * effect at the next ry_lm_eval (the steps compile again). */
RY_API void ry_lm_set_exact(ry_lm *m, int exact);
/* on nonzero: with quantized weights (and not exact), steps of up to 64
 * tokens in llama.cpp's CPU arithmetic op by op (ry_lm_config.ggml_numerics:
 * the same greedy tokens as llama.cpp), at about half the decode speed on
 * 2 threads; 0 (the default): ryft's own f32 arithmetic around the int8
 * products. Takes effect at the next ry_lm_eval. */
RY_API void ry_lm_set_ggml_numerics(ry_lm *m, int on);
RY_API int ry_lm_position(const ry_lm *m); /* tokens seen so far */
RY_API const ry_lm_config *ry_lm_config_of(const ry_lm *m);

/* ---- sampling and generation ----
 * The sampler applies, in llama.cpp's default order: the repetition penalty
 * (over the last repeat_last_n tokens of the history: a positive logit is
 * divided by the penalty, a negative one multiplied), top-k, top-p (the
 * smallest set of most likely tokens whose probability reaches top_p),
 * min-p (tokens below min_p times the most likely one's probability go),
 * then temperature, and draws with ryft's threefry (the key of step i is
 * fold_in(key(seed), i)), so a seed gives the same text on every run and
 * machine. temperature 0 is greedy (ties: the lowest id), whatever the
 * other fields. */
typedef struct ry_sample_opts {
  float temperature;    /* 0: greedy; default 0.8 */
  int top_k;            /* 0: off; default 40 */
  float top_p;          /* 1: off; default 0.95 */
  float min_p;          /* 0: off; default 0.05 */
  float repeat_penalty; /* 1: off; default 1.0 */
  int repeat_last_n;    /* default 64 */
  uint64_t seed;
} ry_sample_opts;
#define RY_SAMPLE_DEFAULTS ((ry_sample_opts){0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 0})

typedef struct ry_sampler ry_sampler;
RY_API ry_status ry_sampler_new(const ry_sample_opts *o, int n_vocab, ry_sampler **out); /* NULL o: defaults */
RY_API void ry_sampler_free(ry_sampler *s);                                              /* NULL is fine */
/* The next token from logits[n_vocab] given the tokens so far (history may
 * be NULL when n_history is 0). Advances the sampler's step. */
RY_API int32_t ry_sampler_next(ry_sampler *s, const float *logits, const int32_t *history, int n_history);

/* Called with each generated token (and its position in the output);
 * returning nonzero stops the generation there. */
typedef int (*ry_token_fn)(int32_t token, int index, void *ctx);

typedef struct ry_gen_stats {
  int prompt_tokens, generated_tokens;
  double first_token_s; /* prompt in, first token out */
  double prefill_tok_s, decode_tok_s;
} ry_gen_stats;

/* Feed the prompt (after the tokens m has already seen) and generate up to
 * max_tokens tokens, stopping early at a token of stop_ids (which is
 * reported to the callback, then generation ends) or when on_token returns
 * nonzero. stats may be NULL. */
RY_API ry_status ry_lm_generate(ry_lm *m, const int32_t *prompt, int n_prompt, const ry_sample_opts *o, int max_tokens,
                         const int32_t *stop_ids, int n_stop, ry_token_fn on_token, void *ctx, ry_gen_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
