/* ryft/lm_train.h - training decoder-only language models (ryft/model.h):
 * a trainer that holds the weights and the optimizer state and runs one
 * jitted, donated step per update (forward, ry_value_and_grad over
 * `accum` micro-batches, AdamW with weight decay masked by path, global-norm
 * clipping, the schedule), plus the pieces around it: GPT-2's initial
 * weights, batches sampled from a token stream with a PRNG key, and the
 * checkpoint tree.
 *
 *   ry_lm_train_opts o = RY_LM_TRAIN_DEFAULTS;
 *   ry_lm_trainer *t;
 *   ry_lm_trainer_new(&config, weights, &o, dev, &t);
 *   for (step...) {
 *     ry_lm_sample_batch(corpus, n, ry_key_fold_in(key, step), o.accum * o.batch, o.ctx, buf);
 *     ry_lm_trainer_step(t, buf, &loss);
 *   }
 */
#ifndef RYFT_LM_TRAIN_H
#define RYFT_LM_TRAIN_H

#include "model.h"
#include "nn.h"
#include "random.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ry_lm_train_opts {
  int batch;            /* sequences per micro-batch */
  int ctx;              /* tokens per sequence (<= the model's n_ctx_train) */
  int accum;            /* micro-batches per update (gradient accumulation) */
  ry_nn_optimizer opt;  /* kind, schedule, betas, weight decay, clip_norm */
  int n_no_decay;       /* glob patterns of the paths without weight decay */
  const char *const *no_decay;
  /* Fine-tuning: weights the model reads but the trainer does not train
   * (e.g. the other half of ry_params_partition, or a pretrained model
   * under LoRA adapters); NULL: every weight is trained. With frozen, the
   * trained tree may hold LoRA adapters "<W>.lora_a" [rank, in] and
   * "<W>.lora_b" [out, rank] for frozen matrices W: the model then runs
   * with W + lora_scale * B A. */
  const ry_params *frozen;
  double lora_scale;    /* alpha / rank */
  /* Activation checkpointing per block: n_layers flags, block l's
   * activations recomputed in the backward pass when remat[l] is nonzero
   * (ry_lm_loss_remat); NULL: none. Copied by ry_lm_trainer_new. */
  const unsigned char *remat;
  /* Data parallelism over the processes of an MPI job (ryft/dist.h): with
   * n_ranks > 1 (ry_dist_size()), each rank's step takes its batch /
   * n_ranks sequences of every micro-batch and the loss and gradients are
   * averaged over the ranks inside the step (ry_nn_data_parallel_mean), so
   * every rank applies the same update. 0 or 1: one process. */
  int n_ranks;
  /* Mixed precision: RY_BF16 traces the model's matrix products with bf16
   * matmul precision (ry_builder_set_matmul_dtype: bf16 operands and
   * results, f32 sums, forward and backward) while weights, optimizer
   * state, norms, softmax and the loss stay f32 (f32 master weights).
   * RY_F32 (the default) or 0: f32 throughout. */
  ry_dtype matmul_dtype;
} ry_lm_train_opts;

/* batch 8, context 64, no accumulation, f32 matmuls; AdamW (0.9, 0.95, eps 1e-8, weight
 * decay 0.1 except on biases and norms), peak rate 1e-3, clip 1.0 */
RY_API ry_lm_train_opts ry_lm_train_defaults(void);

/* GPT-2's initial weights for c (arch gpt2) from a seed: matrices and
 * embeddings normal(0, 0.02), the projections into the residual stream
 * (attn_output, ffn_down) normal(0, 0.02 / sqrt(2 n_layers)), biases 0,
 * LayerNorm scales 1. Drawn with threefry on dev, so a seed gives the same
 * weights everywhere. */
RY_API ry_status ry_lm_init_gpt2(const ry_lm_config *c, uint64_t seed, ry_device *dev, ry_params **out);

/* n sequences of ctx + 1 consecutive tokens of corpus[n_corpus] at offsets
 * drawn from key (uniform over [0, n_corpus - ctx - 1]) into out[n * (ctx +
 * 1)]; RY_ERR_INVALID_ARGUMENT when the corpus is shorter than ctx + 1. */
RY_API ry_status ry_lm_sample_batch(const int32_t *corpus, int64_t n_corpus, ry_key key, int n, int ctx, int32_t *out);

/* ---- LoRA ----
 * Adapters for the matrices of `base` whose paths match one of the n glob
 * patterns of `targets` (ryft/params.h; "blk.*.attn_q.weight"): A [rank,
 * in] uniform in +-1/sqrt(in) from the seed, B [out, rank] zeros (so the
 * adapted model starts as the base), as PEFT initializes them. A pattern
 * that names no matrix is RY_ERR_NOT_FOUND naming it. */
RY_API ry_status ry_lm_lora_init(const ry_params *base, int n, const char *const *targets, int rank, uint64_t seed,
                                 ry_params **out);
/* base with W + scale * B A for every adapter pair of lora (the others
 * shared), for ry_lm_new or export. */
RY_API ry_status ry_lm_lora_merge(const ry_params *base, const ry_params *lora, double scale, ry_params **out);

typedef struct ry_lm_trainer ry_lm_trainer;

/* Checks the weights against c and the options (ctx against n_ctx_train),
 * retains the weights and starts the optimizer state at zero. */
RY_API ry_status ry_lm_trainer_new(const ry_lm_config *c, const ry_params *weights, const ry_lm_train_opts *o, ry_device *dev,
                                   ry_lm_trainer **out);
RY_API void ry_lm_trainer_free(ry_lm_trainer *t); /* NULL is fine */
/* One update from tokens i32[accum * batch * (ctx + 1)] (each sequence's
 * inputs are its first ctx tokens, its targets the last ctx; with n_ranks >
 * 1, this rank's batch / n_ranks sequences of each micro-batch); *loss is
 * the mean loss before the update (over all ranks). Token ids are checked
 * against the vocabulary. */
RY_API ry_status ry_lm_trainer_step(ry_lm_trainer *t, const int32_t *tokens, double *loss);
/* The mean loss of `batch` sequences of ctx + 1 tokens, no update. */
RY_API ry_status ry_lm_trainer_eval(ry_lm_trainer *t, const int32_t *tokens, double *loss);
/* Updates done so far (the optimizer's count). */
RY_API int64_t ry_lm_trainer_steps(const ry_lm_trainer *t);
/* The current weights (a new tree sharing the trainer's arrays). */
RY_API ry_status ry_lm_trainer_weights(const ry_lm_trainer *t, ry_params **out);
/* Everything a resumed run needs, as one tree: "params/<path>" and
 * "opt/<slot>/<path>", "opt/count" (ry_nn_opt_state_tree's paths). */
RY_API ry_status ry_lm_trainer_state(const ry_lm_trainer *t, ry_params **out);
/* Load such a tree (from ry_safetensors_load with ry_lm_trainer_state's
 * tree as `like`); shapes and dtypes must match. */
RY_API ry_status ry_lm_trainer_set_state(ry_lm_trainer *t, const ry_params *state);

#ifdef __cplusplus
}
#endif
#endif
