/* ryft/nn.h - neural-network layers, initializers, losses, metrics and
 * optimizers, all as functions that build graph ops.
 *
 * Nothing here owns parameters: a layer takes its parameters as ry_value
 * handles (graph inputs, or values computed in the trace) and returns the
 * values it builds, like a Flax `apply` or a pure JAX function. So a whole
 * training step - forward, ry_value_and_grad, optimizer update - traces into
 * one program that the cpu device compiles once.
 *
 * Layouts follow Flax: dense kernels are [in, out] (y = x @ w + b), images
 * NHWC, convolution kernels HWIO, attention inputs [batch, seq, features].
 *
 * Every function is a macro capturing the caller's file:line (as in trace.h);
 * errors are the builder's sticky errors. An "absent" optional value is
 * RY_NN_NONE (id 0). */
#ifndef RYFT_NN_H
#define RYFT_NN_H

#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RY_NN_NONE ((ry_value){0})

/* ---- layers ------------------------------------------------------------ */

/* x[..., in] @ w[in, out] (+ bias[out] when given). */
RY_API ry_value ry_nn_linear_(ry_builder *b, ry_loc loc, ry_value x, ry_value w, ry_value bias);
#define ry_nn_linear(b, x, w, bias) ry_nn_linear_((b), RY_HERE, (x), (w), (bias))

typedef enum ry_nn_padding { RY_NN_SAME = 0, RY_NN_VALID = 1, RY_NN_EXPLICIT = 2 } ry_nn_padding;
typedef enum ry_nn_conv_lowering { RY_NN_CONV_AUTO = 0, RY_NN_CONV_PRIMITIVE = 1, RY_NN_CONV_IM2COL = 2 } ry_nn_conv_lowering;
typedef struct ry_nn_conv_opts {
  int64_t stride[2];       /* 0 means 1 */
  int64_t dilation[2];     /* kernel dilation; 0 means 1 */
  ry_nn_padding padding;   /* SAME (as Flax/lax "SAME"), VALID, or EXPLICIT */
  int64_t pad[2][2];       /* EXPLICIT: {{top, bottom}, {left, right}} */
  int64_t groups;          /* feature groups; 0 means 1 */
  /* How the convolution is built. RY_NN_CONV_PRIMITIVE: one `convolution`
   * op, which the cpu device runs as im2col + GEMM (its gradients are
   * convolutions too) and XLA devices as they like. RY_NN_CONV_IM2COL: the
   * k*k shifted windows are concatenated along channels and multiplied by
   * the kernel reshaped to [kh*kw*in, out] (one GEMM; the same numbers up to
   * summation order), differentiated by its own VJP: dx is the same im2col
   * convolution of dy with the flipped, transposed kernel, dw = cols^T dy.
   * It needs stride, dilation and groups of 1 (else the primitive is used);
   * on the cpu device it is slower than the primitive (bench/RESULTS.md).
   * RY_NN_CONV_AUTO (0, the default): the primitive. */
  ry_nn_conv_lowering lowering;
} ry_nn_conv_opts;
/* x[N, H, W, C] conv w[KH, KW, C/groups, O] (+ bias[O]) -> [N, H', W', O].
 * opts may be NULL: stride 1, SAME padding, automatic lowering. */
RY_API ry_value ry_nn_conv2d_(ry_builder *b, ry_loc loc, ry_value x, ry_value w, ry_value bias, const ry_nn_conv_opts *opts);
#define ry_nn_conv2d(b, x, w, bias, opts) ry_nn_conv2d_((b), RY_HERE, (x), (w), (bias), (opts))

/* Pooling over NHWC windows of size k with stride s (0 means s = k), VALID
 * padding. Non-overlapping windows (s == k, H and W divisible by k) are a
 * reshape [N, H/k, k, W/k, k, C] and one reduce over the two window axes;
 * other cases take the max/mean over the k*k strided slices of x. Average
 * pooling divides by k*k (as flax.linen.avg_pool with VALID padding). */
RY_API ry_value ry_nn_max_pool2d_(ry_builder *b, ry_loc loc, ry_value x, int64_t k, int64_t s);
RY_API ry_value ry_nn_avg_pool2d_(ry_builder *b, ry_loc loc, ry_value x, int64_t k, int64_t s);
#define ry_nn_max_pool2d(b, x, k, s) ry_nn_max_pool2d_((b), RY_HERE, (x), (k), (s))
#define ry_nn_avg_pool2d(b, x, k, s) ry_nn_avg_pool2d_((b), RY_HERE, (x), (k), (s))

/* Normalization over the last axis (scale/bias [features] optional). Flax's
 * LayerNorm (eps 1e-6 by default there; pass it) and RMSNorm. */
RY_API ry_value ry_nn_layer_norm_(ry_builder *b, ry_loc loc, ry_value x, ry_value scale, ry_value bias, double eps);
RY_API ry_value ry_nn_rms_norm_(ry_builder *b, ry_loc loc, ry_value x, ry_value scale, double eps);
#define ry_nn_layer_norm(b, x, sc, bi, eps) ry_nn_layer_norm_((b), RY_HERE, (x), (sc), (bi), (eps))
#define ry_nn_rms_norm(b, x, sc, eps) ry_nn_rms_norm_((b), RY_HERE, (x), (sc), (eps))

/* Batch norm over every axis but the last (features), as flax.linen.BatchNorm.
 * train != 0: normalize with the batch statistics and write the updated
 * running statistics into new_mean/new_var (running = momentum * running +
 * (1 - momentum) * batch; the biased batch variance, like Flax); these are
 * extra outputs of the step. train == 0: normalize with mean/var and copy
 * them to new_mean/new_var. new_mean/new_var may be NULL. */
RY_API ry_value ry_nn_batch_norm_(ry_builder *b, ry_loc loc, ry_value x, ry_value scale, ry_value bias, ry_value mean, ry_value var,
                           int train, double momentum, double eps, ry_value *new_mean, ry_value *new_var);
#define ry_nn_batch_norm(b, x, sc, bi, m, v, tr, mom, eps, nm, nv) \
  ry_nn_batch_norm_((b), RY_HERE, (x), (sc), (bi), (m), (v), (tr), (mom), (eps), (nm), (nv))

/* table[vocab, dim] rows for integer ids of any shape -> ids.shape + [dim]. */
RY_API ry_value ry_nn_embedding_(ry_builder *b, ry_loc loc, ry_value table, ry_value ids);
#define ry_nn_embedding(b, t, ids) ry_nn_embedding_((b), RY_HERE, (t), (ids))

/* Inverted dropout: keep with probability 1 - rate, scale kept by 1/(1-rate).
 * `key` is a u32[2] PRNG key (ryft/random.h); the mask is
 * jax.random.bernoulli(key, 1 - rate, x.shape), as flax.linen.Dropout draws it. rate 0 or train 0 returns x. */
RY_API ry_value ry_nn_dropout_(ry_builder *b, ry_loc loc, ry_value x, ry_value key, double rate, int train);
#define ry_nn_dropout(b, x, key, rate, train) ry_nn_dropout_((b), RY_HERE, (x), (key), (rate), (train))

/* Activations not in trace.h. */
RY_API ry_value ry_nn_leaky_relu_(ry_builder *b, ry_loc loc, ry_value x, double slope);
#define ry_nn_leaky_relu(b, x, s) ry_nn_leaky_relu_((b), RY_HERE, (x), (s))

typedef enum ry_nn_act { RY_NN_RELU, RY_NN_GELU, RY_NN_GELU_TANH, RY_NN_SILU, RY_NN_TANH, RY_NN_IDENTITY } ry_nn_act;
RY_API ry_value ry_nn_activation_(ry_builder *b, ry_loc loc, ry_value x, ry_nn_act act);
#define ry_nn_activation(b, x, a) ry_nn_activation_((b), RY_HERE, (x), (a))
/* MLP block: act(x @ w1 + b1) @ w2 + b2 (biases optional). */
RY_API ry_value ry_nn_mlp_block_(ry_builder *b, ry_loc loc, ry_value x, ry_value w1, ry_value b1, ry_value w2, ry_value b2, ry_nn_act act);
#define ry_nn_mlp_block(b, x, w1, b1, w2, b2, act) ry_nn_mlp_block_((b), RY_HERE, (x), (w1), (b1), (w2), (b2), (act))
/* SwiGLU block (LLaMA): (silu(x @ w_gate) * (x @ w_up)) @ w_down. */
RY_API ry_value ry_nn_swiglu_(ry_builder *b, ry_loc loc, ry_value x, ry_value w_gate, ry_value w_up, ry_value w_down);
#define ry_nn_swiglu(b, x, wg, wu, wd) ry_nn_swiglu_((b), RY_HERE, (x), (wg), (wu), (wd))

/* Rotary position embedding on x[batch, seq, heads, head_dim] (head_dim
 * even), positions 0..seq-1, the "rotate half" form (GPT-NeoX / LLaMA in
 * Hugging Face): x*cos + rotate_half(x)*sin with inverse frequencies
 * base^(-2i/head_dim). */
RY_API ry_value ry_nn_rope_(ry_builder *b, ry_loc loc, ry_value x, double base);
#define ry_nn_rope(b, x, base) ry_nn_rope_((b), RY_HERE, (x), (base))

/* Scaled dot-product attention: q[B, T, Hq, D], k/v[B, S, Hkv, D] with Hq a
 * multiple of Hkv (grouped-query; Hkv == Hq is multi-head, 1 is multi-query)
 * -> [B, T, Hq, D], as jax.nn.dot_product_attention. Query head h uses kv
 * head h / (Hq / Hkv). Logits are scaled by 1/sqrt(D). causal: query t sees
 * keys s <= t (jnp.tril of a [T, S] mask, as JAX's is_causal). */
RY_API ry_value ry_nn_attention_(ry_builder *b, ry_loc loc, ry_value q, ry_value k, ry_value v, int causal);
#define ry_nn_attention(b, q, k, v, causal) ry_nn_attention_((b), RY_HERE, (q), (k), (v), (causal))
/* Multi-head attention block on x[B, T, E]: q = x@wq [E, Hq*D], k = x@wk,
 * v = x@wv [E, Hkv*D], optional rotary embeddings (rope_base > 0), attention,
 * output projection wo [Hq*D, E]. No biases. */
RY_API ry_value ry_nn_mha_(ry_builder *b, ry_loc loc, ry_value x, ry_value wq, ry_value wk, ry_value wv, ry_value wo, int n_heads,
                    int n_kv_heads, int causal, double rope_base);
#define ry_nn_mha(b, x, wq, wk, wv, wo, h, hkv, causal, rope) \
  ry_nn_mha_((b), RY_HERE, (x), (wq), (wk), (wv), (wo), (h), (hkv), (causal), (rope))

/* ---- initializers (traced, from a u32[2] PRNG key) -----------------------
 * fan_in/fan_out as jax.nn.initializers: for a shape [..receptive.., in, out]
 * fan_in = in * receptive, fan_out = out * receptive. The samples use JAX's
 * threefry bits, so they equal jax.nn.initializers.* for the same key. */
typedef enum ry_nn_init {
  RY_NN_INIT_ZEROS,
  RY_NN_INIT_ONES,
  RY_NN_INIT_NORMAL,          /* stddev * normal; stddev = scale (Flax default 1e-2) */
  RY_NN_INIT_GLOROT_UNIFORM,  /* xavier_uniform: variance_scaling(1, fan_avg, uniform) */
  RY_NN_INIT_GLOROT_NORMAL,   /* xavier_normal: variance_scaling(1, fan_avg, truncated_normal) */
  RY_NN_INIT_HE_UNIFORM,      /* kaiming_uniform: variance_scaling(2, fan_in, uniform) */
  RY_NN_INIT_HE_NORMAL,       /* kaiming_normal: variance_scaling(2, fan_in, truncated_normal) */
  RY_NN_INIT_LECUN_NORMAL     /* Flax Dense/Conv default: variance_scaling(1, fan_in, truncated_normal) */
} ry_nn_init;
RY_API ry_value ry_nn_initialize_(ry_builder *b, ry_loc loc, ry_nn_init kind, ry_value key, ry_dtype dtype, ry_shape shape, double scale);
#define ry_nn_initialize(b, kind, key, t, s, scale) ry_nn_initialize_((b), RY_HERE, (kind), (key), (t), (s), (scale))

/* ---- losses and metrics ----------------------------------------------------
 * Each returns the mean over examples as a scalar (the _per_example forms
 * where noted return one value per example). */

/* logits[..., C], integer labels[...]: -log_softmax(logits)[label]
 * (optax.softmax_cross_entropy_with_integer_labels), computed as
 * logsumexp(logits) - logits[label] with the label's logit picked by an
 * iota compare, so the gradient is one fused pass over the logits. A label
 * outside [0, C) picks no logit: its loss is logsumexp(logits) - max(logits). */
RY_API ry_value ry_nn_cross_entropy_per_example_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels);
RY_API ry_value ry_nn_cross_entropy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels);
/* logits and 0/1 float targets of one shape: max(x,0) - x*t + log1p(exp(-|x|))
 * (optax.sigmoid_binary_cross_entropy). */
RY_API ry_value ry_nn_binary_cross_entropy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value targets);
RY_API ry_value ry_nn_mse_(ry_builder *b, ry_loc loc, ry_value pred, ry_value target);
/* Fraction (f32 scalar) of examples whose argmax (resp. any of the k largest
 * logits) is the label. Ties count as in jnp.argmax / lax.top_k. */
RY_API ry_value ry_nn_accuracy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels);
RY_API ry_value ry_nn_top_k_accuracy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels, int k);
/* Number of correct predictions (i32 scalar), to sum over eval batches. */
RY_API ry_value ry_nn_correct_count_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels);
#define ry_nn_cross_entropy_per_example(b, l, y) ry_nn_cross_entropy_per_example_((b), RY_HERE, (l), (y))
#define ry_nn_cross_entropy(b, l, y) ry_nn_cross_entropy_((b), RY_HERE, (l), (y))
#define ry_nn_binary_cross_entropy(b, l, t) ry_nn_binary_cross_entropy_((b), RY_HERE, (l), (t))
#define ry_nn_mse(b, p, t) ry_nn_mse_((b), RY_HERE, (p), (t))
#define ry_nn_accuracy(b, l, y) ry_nn_accuracy_((b), RY_HERE, (l), (y))
#define ry_nn_top_k_accuracy(b, l, y, k) ry_nn_top_k_accuracy_((b), RY_HERE, (l), (y), (k))
#define ry_nn_correct_count(b, l, y) ry_nn_correct_count_((b), RY_HERE, (l), (y))

/* ---- learning-rate schedules ---------------------------------------------
 * Evaluated in the graph from a step counter (an integer or float scalar
 * value: the number of updates done so far, as Optax's count). */
typedef enum ry_nn_sched_kind { RY_NN_SCHED_CONSTANT, RY_NN_SCHED_WARMUP_COSINE, RY_NN_SCHED_STEP } ry_nn_sched_kind;
typedef struct ry_nn_schedule {
  ry_nn_sched_kind kind;
  double value;        /* constant: the rate; warmup_cosine: peak; step: initial */
  double init_value;   /* warmup_cosine: the rate at step 0 */
  double end_value;    /* warmup_cosine: the rate after decay_steps */
  int64_t warmup_steps;
  int64_t decay_steps; /* warmup_cosine: total steps incl. warmup (optax.warmup_cosine_decay_schedule) */
  int64_t step_size;   /* step: multiply by gamma every step_size steps */
  double gamma;
} ry_nn_schedule;
/* The rate at `count` as an f32 scalar (optax.constant_schedule,
 * warmup_cosine_decay_schedule, exponential_decay(staircase=True)). */
RY_API ry_value ry_nn_schedule_value_(ry_builder *b, ry_loc loc, const ry_nn_schedule *s, ry_value count);
/* The same on the host (for logging). */
RY_API double ry_nn_schedule_eval(const ry_nn_schedule *s, int64_t count);
#define ry_nn_schedule_value(b, s, c) ry_nn_schedule_value_((b), RY_HERE, (s), (c))

/* ---- optimizers --------------------------------------------------------------
 * An optimizer is a description; its state is `n_state_per_param` arrays per
 * parameter (each of the parameter's type) plus one i32 scalar step count.
 * ry_nn_opt_init builds the initial state, ry_nn_opt_update the new params
 * and state from grads, both inside a trace, matching Optax's
 * sgd/adam/adamw/lion (+ clip_by_global_norm when clip_norm > 0 - applied
 * to the gradients first, as optax.chain(clip_by_global_norm(c), opt)). */
typedef enum ry_nn_opt_kind { RY_NN_SGD, RY_NN_ADAM, RY_NN_ADAMW, RY_NN_LION } ry_nn_opt_kind;
typedef struct ry_nn_optimizer {
  ry_nn_opt_kind kind;
  ry_nn_schedule lr;
  double momentum;      /* SGD: 0 = plain SGD */
  int nesterov;         /* SGD */
  double b1, b2, eps;   /* Adam/AdamW (0.9, 0.999, 1e-8); Lion b1, b2 (0.9, 0.99) */
  double weight_decay;  /* AdamW (optax default 1e-4), Lion (default 1e-3 in optax) */
  double clip_norm;     /* > 0: clip the global gradient norm to this */
} ry_nn_optimizer;
/* Defaults as Optax's for the kind, constant learning rate lr. */
RY_API ry_nn_optimizer ry_nn_optimizer_default(ry_nn_opt_kind kind, double lr);
RY_API int ry_nn_opt_state_per_param(const ry_nn_optimizer *o); /* 0, 1 or 2 */
/* state layout: state[p * per + j] for parameter p and slot j (mu, nu),
 * then the count at state[n_params * per]. n_state = n_params * per + 1. */
RY_API void ry_nn_opt_init_(ry_builder *b, ry_loc loc, const ry_nn_optimizer *o, int n_params, const ry_value *params, ry_value *state);
/* Writes n_params new params and n_state new state values. */
RY_API void ry_nn_opt_update_(ry_builder *b, ry_loc loc, const ry_nn_optimizer *o, int n_params, const ry_value *params,
                       const ry_value *grads, const ry_value *state, ry_value *new_params, ry_value *new_state);
/* The same with weight decay (AdamW, Lion) only on the parameters p whose
 * decay[p] is nonzero, as optax's `mask` (decay NULL: every parameter).
 * ry_nn_decay_mask fills decay from parameter paths. */
RY_API void ry_nn_opt_update_masked_(ry_builder *b, ry_loc loc, const ry_nn_optimizer *o, int n_params, const ry_value *params,
                                     const ry_value *grads, const ry_value *state, const unsigned char *decay,
                                     ry_value *new_params, ry_value *new_state);
#define ry_nn_opt_update_masked(b, o, n, p, g, st, dm, np, nst) \
  ry_nn_opt_update_masked_((b), RY_HERE, (o), (n), (p), (g), (st), (dm), (np), (nst))
/* decay[i] = 1 for entry i of params unless its path matches one of the n
 * glob patterns of no_decay (ryft/params.h), e.g. {"*.bias", "*norm*"} for GGUF names. */
struct ry_params;
RY_API void ry_nn_decay_mask(const struct ry_params *params, int n, const char *const *no_decay, unsigned char *decay);
/* The initial state as a parameter tree (ryft/params.h), in exactly the
 * order of the state values above: for each parameter path P, one zero array
 * per slot named "<slot>/P" ("mu"/"nu" for Adam and AdamW, "trace" for SGD
 * with momentum, "mu" for Lion), then "count" (i32 scalar). So a state tree
 * flattens to the inputs ry_nn_opt_update reads and unflattens from the
 * values it writes, and it can be checkpointed like the parameters. */
struct ry_params;
RY_API ry_status ry_nn_opt_state_tree(const ry_nn_optimizer *o, const struct ry_params *params, struct ry_params **out);
/* The name of slot j ("mu", "nu", "trace"). */
RY_API const char *ry_nn_opt_slot_name(const ry_nn_optimizer *o, int j);

/* sqrt(sum of squares of every grad) (optax.global_norm), f32 scalar. */
RY_API ry_value ry_nn_global_norm_(ry_builder *b, ry_loc loc, int n, const ry_value *xs);
/* ---- data parallelism (ryft/dist.h) -----------------------------------------
 * Makes a train step data-parallel over the processes of an MPI job: each
 * rank computes the loss and gradients on its rows of the global batch
 * (ry_dist_shard_rows), and this replaces each of the n values with its mean
 * over the n_ranks ranks (n_ranks = ry_dist_size()), before the optimizer
 * update, so every rank applies the same update. Values of one dtype are
 * all-reduced as one buffer. With n_ranks 1 the values pass unchanged, so
 * the same step runs in a single process. out may be xs. */
RY_API void ry_nn_data_parallel_mean_(ry_builder *b, ry_loc loc, int n, const ry_value *xs, int n_ranks, ry_value *out);
#define ry_nn_data_parallel_mean(b, n, xs, r, out) ry_nn_data_parallel_mean_((b), RY_HERE, (n), (xs), (r), (out))

#define ry_nn_opt_init(b, o, n, p, st) ry_nn_opt_init_((b), RY_HERE, (o), (n), (p), (st))
#define ry_nn_opt_update(b, o, n, p, g, st, np, nst) ry_nn_opt_update_((b), RY_HERE, (o), (n), (p), (g), (st), (np), (nst))
#define ry_nn_global_norm(b, n, xs) ry_nn_global_norm_((b), RY_HERE, (n), (xs))

#ifdef __cplusplus
}
#endif
#endif
