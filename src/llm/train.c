/* Training decoder-only language models (ryft/lm_train.h): GPT-2's
 * initial weights, PRNG batches, and the trainer, whose update is one traced
 * program (value_and_grad of ry_lm_loss over the micro-batches, then the
 * masked optimizer update) run with the weights and the optimizer state
 * donated. Public API only, like src/nn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/jit.h"
#include "ryft/lm_train.h"
#include "ryft/ryft.h"

static const char *const k_no_decay[] = {"*.bias", "*norm*"};

ry_lm_train_opts ry_lm_train_defaults(void) {
  ry_lm_train_opts o = {0};
  o.batch = 8;
  o.ctx = 64;
  o.accum = 1;
  o.matmul_dtype = RY_F32;
  o.opt = ry_nn_optimizer_default(RY_NN_ADAMW, 1e-3);
  o.opt.b2 = 0.95;
  o.opt.weight_decay = 0.1;
  o.opt.clip_norm = 1.0;
  o.n_no_decay = 2;
  o.no_decay = k_no_decay;
  return o;
}

/* ---- initial weights ---- */

typedef struct init_ctx {
  const ry_params *like;
  const double *std; /* per entry; < 0: ones */
  uint64_t seed;
} init_ctx;

static int init_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  (void)in;
  const init_ctx *ic = vctx;
  int n = ry_params_count(ic->like);
  ry_value root = ry_random_key(b, (int64_t)ic->seed);
  for (int i = 0; i < n; i++) {
    ry_type t = ry_params_type(ic->like, i);
    if (ic->std[i] < 0)
      out[i] = ry_full(b, t.dtype, t.shape, 1.0);
    else if (ic->std[i] == 0)
      out[i] = ry_full(b, t.dtype, t.shape, 0.0);
    else
      out[i] = ry_mul(b, ry_random_normal(b, ry_random_fold_in_int(b, root, (uint32_t)i), t.shape, t.dtype),
                      ry_scalar(b, t.dtype, ic->std[i]));
  }
  return n;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

ry_status ry_lm_init_gpt2(const ry_lm_config *c, uint64_t seed, ry_device *dev, ry_params **out) {
  *out = NULL;
  ry_status s = ry_lm_config_check(c);
  if (s) return s;
  if (c->arch != RY_LM_GPT2) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_init_gpt2: the config is not gpt2");
  if (!dev) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_init_gpt2: no device");
  /* the tree's paths and shapes: a zero model, checked by the model code */
  int64_t E = c->n_embd, F = c->n_ff, V = c->n_vocab, P = c->n_ctx_train;
  ry_params *like = ry_params_new();
  if (!like) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_init_gpt2: out of memory");
  char name[96];
#define ADD(shape, ...)                                               \
  do {                                                                \
    ry_array *z = NULL;                                               \
    snprintf(name, sizeof name, __VA_ARGS__);                         \
    if (!s) s = ry_array_zeros(RY_F32, shape, &z);                    \
    if (!s) s = ry_params_set_owned(like, name, z);                   \
  } while (0)
  ADD(RY_SHAPE(V, E), "token_embd.weight");
  ADD(RY_SHAPE(P, E), "position_embd.weight");
  for (int l = 0; l < c->n_layers; l++) {
    ADD(RY_SHAPE(E), "blk.%d.attn_norm.weight", l);
    ADD(RY_SHAPE(E), "blk.%d.attn_norm.bias", l);
    ADD(RY_SHAPE(3 * E, E), "blk.%d.attn_qkv.weight", l);
    ADD(RY_SHAPE(3 * E), "blk.%d.attn_qkv.bias", l);
    ADD(RY_SHAPE(E, E), "blk.%d.attn_output.weight", l);
    ADD(RY_SHAPE(E), "blk.%d.attn_output.bias", l);
    ADD(RY_SHAPE(E), "blk.%d.ffn_norm.weight", l);
    ADD(RY_SHAPE(E), "blk.%d.ffn_norm.bias", l);
    ADD(RY_SHAPE(F, E), "blk.%d.ffn_up.weight", l);
    ADD(RY_SHAPE(F), "blk.%d.ffn_up.bias", l);
    ADD(RY_SHAPE(E, F), "blk.%d.ffn_down.weight", l);
    ADD(RY_SHAPE(E), "blk.%d.ffn_down.bias", l);
  }
  ADD(RY_SHAPE(E), "output_norm.weight");
  ADD(RY_SHAPE(E), "output_norm.bias");
  if (!c->tied_embeddings) ADD(RY_SHAPE(V, E), "output.weight");
#undef ADD
  if (!s) s = ry_lm_check_weights(c, like);
  int n = ry_params_count(like);
  double *std = calloc((size_t)n + 1, sizeof *std);
  if (!s && !std) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_init_gpt2: out of memory");
  for (int i = 0; !s && i < n; i++) {
    const char *p = ry_params_path(like, i);
    if (ends_with(p, ".bias"))
      std[i] = 0;
    else if (strstr(p, "norm"))
      std[i] = -1;
    else if (ends_with(p, "attn_output.weight") || ends_with(p, "ffn_down.weight"))
      std[i] = 0.02 / sqrt(2.0 * c->n_layers);
    else
      std[i] = 0.02;
  }
  init_ctx ic = {like, std, seed};
  ry_jit *j = NULL;
  ry_array **arr = calloc((size_t)n + 1, sizeof *arr);
  if (!s && !arr) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_init_gpt2: out of memory");
  if (!s) s = ry_jit_new("lm_init", init_fn, &ic, dev, &j);
  if (!s) s = ry_jit_call(j, 0, NULL, n, arr);
  if (!s) s = ry_params_unflatten_owned(like, n, arr, out);
  ry_jit_free(j);
  free(arr);
  free(std);
  ry_params_free(like);
  return s;
}

/* ---- batches ---- */

ry_status ry_lm_sample_batch(const int32_t *corpus, int64_t n_corpus, ry_key key, int n, int ctx, int32_t *out) {
  if (!corpus || n < 1 || ctx < 1)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_sample_batch: need a corpus, n >= 1 and ctx >= 1");
  if (n_corpus < (int64_t)ctx + 1)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT,
                          "ry_lm_sample_batch: the corpus has %lld tokens, fewer than one sequence of %d + 1",
                          (long long)n_corpus, ctx);
  uint64_t range = (uint64_t)(n_corpus - ctx - 1) + 1; /* offsets 0 .. n_corpus - ctx - 1 */
  uint32_t *bits = malloc((size_t)n * 2 * sizeof *bits);
  if (!bits) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_sample_batch: out of memory");
  ry_key_bits32(key, 2 * (int64_t)n, bits);
  for (int i = 0; i < n; i++) {
    uint64_t r = ((uint64_t)bits[2 * i] << 32 | bits[2 * i + 1]) % range;
    memcpy(out + (size_t)i * (ctx + 1), corpus + r, (size_t)(ctx + 1) * sizeof *out);
  }
  free(bits);
  return NULL;
}

/* ---- the trainer ---- */

/* The paths and types of a tree without its arrays: the trainer keeps no
   reference to an array it does not train with, so donated buffers are
   reused in place and the initial weights and optimizer state are freed
   after the first step. */
typedef struct names {
  int n;
  char **paths;
  ry_type *types;
} names;

static void names_free(names *nm) {
  for (int i = 0; nm->paths && i < nm->n; i++) free(nm->paths[i]);
  free(nm->paths);
  free(nm->types);
  memset(nm, 0, sizeof *nm);
}

static ry_status names_of(const ry_params *p, names *out) {
  memset(out, 0, sizeof *out);
  int n = ry_params_count(p);
  out->paths = calloc((size_t)n + 1, sizeof *out->paths);
  out->types = calloc((size_t)n + 1, sizeof *out->types);
  if (!out->paths || !out->types) return names_free(out), ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory");
  out->n = n;
  ry_params_types(p, out->types);
  for (int i = 0; i < n; i++)
    if (!(out->paths[i] = strdup(ry_params_path(p, i))))
      return names_free(out), ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory");
  return NULL;
}

/* "<prefix><path>" -> arrays[i] for every name, appended to dst (shared) */
static ry_status names_tree(const names *nm, const char *prefix, ry_array *const *arrays, ry_params *dst) {
  char path[RY_PARAMS_MAX_PATH + 16];
  ry_status s = NULL;
  for (int i = 0; i < nm->n && !s; i++) {
    snprintf(path, sizeof path, "%s%s", prefix, nm->paths[i]);
    s = ry_params_set(dst, path, arrays[i]);
  }
  return s;
}

struct ry_lm_trainer {
  ry_lm_config c;
  ry_lm_train_opts o;
  ry_device *dev;
  names like, state_like; /* the trained weights' and the optimizer state's */
  ry_params *frozen; /* inputs that are not trained (NULL: none) */
  int nf;
  unsigned char *decay;
  int n, n_state;
  ry_array **params, **state; /* n, n_state: the current values */
  ry_graph *loss_g, *loss_vg;
  ry_jit *step_j, *eval_j;
  int lost; /* a failed step took the donated weights with it */
  int n_ranks;     /* >= 1 */
  int64_t bl;      /* sequences of a micro-batch this rank's step takes: batch / n_ranks */
  unsigned char *remat; /* n_layers flags, or NULL */
};

static int is_adapter(const char *path) {
  return ends_with(path, ".lora_a") || ends_with(path, ".lora_b");
}

/* The weights the model reads: the frozen ones, with W + scale * B A where
   the trained tree has adapters for W, and the trained ones that are not
   adapters. NULL (the builder's error set) on failure. */
static ry_pvalues *model_view(ry_builder *b, const ry_lm_trainer *t, ry_pvalues *train, ry_pvalues *frozen) {
  ry_pvalues *v = ry_pvalues_new(b);
  if (!v) return ry_builder_set_error(b, ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory")), NULL;
  char pa[RY_PARAMS_MAX_PATH + 16], pb[RY_PARAMS_MAX_PATH + 16];
  for (int i = 0; i < ry_pvalues_count(frozen); i++) {
    const char *p = ry_pvalues_path(frozen, i);
    ry_value w = ry_pvalues_at(frozen, i);
    snprintf(pa, sizeof pa, "%s.lora_a", p);
    snprintf(pb, sizeof pb, "%s.lora_b", p);
    if (ry_pvalues_has(train, pa)) { /* B [out, r] @ A [r, in] */
      ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(1), RY_AXES(0)};
      ry_value ba = ry_dot_general(b, ry_pvalues_get(train, pb), ry_pvalues_get(train, pa), d, RY_F32);
      w = ry_add(b, w, ry_mul(b, ba, ry_scalar(b, RY_F32, t->o.lora_scale)));
    }
    ry_pvalues_set(v, p, w);
  }
  for (int i = 0; i < ry_pvalues_count(train); i++)
    if (!is_adapter(ry_pvalues_path(train, i))) ry_pvalues_set(v, ry_pvalues_path(train, i), ry_pvalues_at(train, i));
  return v;
}

/* (params..., frozen..., tokens i32[B, T + 1]) -> loss */
static int loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  ry_lm_trainer *t = vctx;
  ry_pvalues *pv = NULL, *pf = NULL, *view = NULL;
  ry_status s = NULL;
  if (t->o.matmul_dtype == RY_BF16 && !ry_builder_set_matmul_dtype(b, RY_BF16)) return -1;
  pv = ry_pvalues_new(b);
  if (!pv) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory");
  for (int i = 0; !s && i < t->n; i++)
    if (!ry_pvalues_set(pv, t->like.paths[i], in[i])) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory");
  if (!s && t->frozen) s = ry_pvalues_from(b, t->frozen, in + t->n, &pf);
  if (s) {
    ry_pvalues_free(pv);
    return ry_builder_set_error(b, s), -1;
  }
  if (t->frozen) {
    view = model_view(b, t, pv, pf);
    ry_pvalues_free(pf);
    ry_pvalues_free(pv);
    pv = view;
    if (!pv) return -1;
  }
  ry_value tok = in[t->n + t->nf];
  ry_shape ts = ry_value_shape(b, tok);
  int64_t B = ts.dims[0], T = ts.dims[1] - 1;
  ry_value x = ry_slice(b, tok, RY_AXES(0, 0), RY_AXES(B, T), RY_NO_AXES);
  ry_value y = ry_slice(b, tok, RY_AXES(0, 1), RY_AXES(B, T + 1), RY_NO_AXES);
  out[0] = ry_lm_loss_remat(b, &t->c, pv, x, y, t->remat);
  ry_pvalues_free(pv);
  return ry_builder_error(b) ? -1 : 1;
}

/* (params..., state..., frozen..., tokens i32[A, B, T + 1]) -> (params...,
   state..., loss): the gradients averaged over the A micro-batches, then
   one update */
static int step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  ry_lm_trainer *t = vctx;
  int n = t->n, ns = t->n_state, nf = t->nf;
  int64_t A = t->o.accum, B = t->bl, T1 = (int64_t)t->o.ctx + 1;
  ry_value *args = calloc((size_t)(n + nf) + 1, sizeof *args), *res = calloc((size_t)n + 1, sizeof *res),
           *grads = calloc((size_t)n + 1, sizeof *grads);
  if (!args || !res || !grads) {
    free(args), free(res), free(grads);
    return ry_builder_set_error(b, ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm train step: out of memory")), -1;
  }
  for (int i = 0; i < n; i++) args[i] = in[i];
  for (int i = 0; i < nf; i++) args[n + i] = in[n + ns + i];
  ry_value loss = {0};
  for (int64_t a = 0; a < A && !ry_builder_error(b); a++) {
    ry_value tok = ry_slice(b, in[n + ns + nf], RY_AXES(a, 0, 0), RY_AXES(a + 1, B, T1), RY_NO_AXES);
    args[n + nf] = ry_reshape(b, tok, RY_SHAPE(B, T1));
    if (ry_call(b, t->loss_vg, n + nf + 1, args, res) != n + 1) break;
    loss = a ? ry_add(b, loss, res[0]) : res[0];
    for (int i = 0; i < n; i++) grads[i] = a ? ry_add(b, grads[i], res[1 + i]) : res[1 + i];
  }
  if (A > 1 && !ry_builder_error(b)) {
    ry_value inv = ry_scalar(b, RY_F32, 1.0 / (double)A);
    loss = ry_mul(b, loss, inv);
    for (int i = 0; i < n; i++) grads[i] = ry_mul(b, grads[i], ry_convert(b, inv, ry_value_dtype(b, grads[i])));
  }
  if (t->n_ranks > 1 && !ry_builder_error(b)) { /* the mean over the ranks' shards, one all-reduce per dtype */
    res[0] = loss;
    for (int i = 0; i < n; i++) res[1 + i] = grads[i];
    ry_nn_data_parallel_mean(b, n + 1, res, t->n_ranks, res);
    loss = res[0];
    for (int i = 0; i < n; i++) grads[i] = res[1 + i];
  }
  if (!ry_builder_error(b)) ry_nn_opt_update_masked(b, &t->o.opt, n, in, grads, in + n, t->decay, out, out + n);
  out[n + ns] = loss;
  free(args), free(res), free(grads);
  return ry_builder_error(b) ? -1 : n + ns + 1;
}

static int eval_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) { return loss_fn(b, in, out, vctx); }

void ry_lm_trainer_free(ry_lm_trainer *t) {
  if (!t) return;
  for (int i = 0; t->params && i < t->n; i++) ry_array_release(t->params[i]);
  for (int i = 0; t->state && i < t->n_state; i++) ry_array_release(t->state[i]);
  free(t->params);
  free(t->state);
  free(t->decay);
  free(t->remat);
  ry_jit_free(t->step_j);
  ry_jit_free(t->eval_j);
  ry_graph_release(t->loss_vg);
  ry_graph_release(t->loss_g);
  names_free(&t->like);
  names_free(&t->state_like);
  ry_params_free(t->frozen);
  free(t);
}

/* Mixed precision on a frozen base: its blocks' matrices (and an untied
 * output matrix) kept in bf16, what the bf16 products read anyway (a
 * weight rounded once instead of at every pack), in half the memory of
 * f32. The token embedding stays f32: the gathered rows start the residual
 * stream. Only this tree's entries change; the caller's arrays are shared,
 * not touched. */
static ry_status frozen_to_bf16(ry_params *p) {
  for (int i = 0; i < ry_params_count(p); i++) {
    const char *path = ry_params_path(p, i);
    const ry_array *a = ry_params_at(p, i);
    ry_shape sh = ry_array_shape(a);
    if (ry_array_dtype(a) != RY_F32 || sh.rank != 2 || (strncmp(path, "blk.", 4) && strcmp(path, "output.weight"))) continue;
    int64_t n = ry_array_numel(a);
    const float *src = ry_array_data(a);
    uint16_t *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    if (!h || (n && !src)) {
      free(h);
      return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_new: out of memory converting '%s' to bf16", path);
    }
    for (int64_t e = 0; e < n; e++) { /* to nearest even, NaN kept quiet */
      uint32_t u;
      memcpy(&u, &src[e], 4);
      h[e] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40) : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    }
    ry_array *b = NULL;
    ry_status s = ry_array_from_host(RY_BF16, sh, h, &b);
    free(h);
    if (!s) s = ry_params_set_owned(p, path, b);
    if (s) return s;
  }
  return NULL;
}

ry_status ry_lm_trainer_new(const ry_lm_config *c, const ry_params *weights, const ry_lm_train_opts *o, ry_device *dev,
                            ry_lm_trainer **out) {
  *out = NULL;
  if (!o || !dev) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_new: no options or no device");
  ry_status s = ry_lm_check_weights(c, o->frozen ? o->frozen : weights);
  if (s) return s;
  for (int i = 0; o->frozen && i < ry_params_count(weights); i++) { /* adapters of frozen matrices */
    const char *p = ry_params_path(weights, i);
    if (!is_adapter(p)) continue;
    char base[RY_PARAMS_MAX_PATH];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(p) - 7), p);
    if (!ry_params_get(o->frozen, base))
      return ry_status_make(RY_ERR_NOT_FOUND, "ry_lm_trainer_new: adapter '%s' is for '%s', which the frozen weights lack", p, base);
  }
  if (o->batch < 1 || o->accum < 1 || o->ctx < 1)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_new: batch %d, accum %d and ctx %d must be positive", o->batch,
                          o->accum, o->ctx);
  int n_ranks = o->n_ranks > 1 ? o->n_ranks : 1;
  if (o->batch % n_ranks)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_new: a batch of %d sequences cannot be split over %d ranks",
                          o->batch, n_ranks);
  if (o->ctx > c->n_ctx_train)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_new: a context of %d tokens is longer than the model's %d",
                          o->ctx, c->n_ctx_train);
  if (o->matmul_dtype != 0 && o->matmul_dtype != RY_F32 && o->matmul_dtype != RY_BF16)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_new: matmul_dtype %s is not f32 or bf16",
                          ry_dtype_name(o->matmul_dtype));
  ry_lm_trainer *t = calloc(1, sizeof *t);
  if (!t) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_new: out of memory");
  t->c = *c;
  t->n_ranks = n_ranks;
  t->bl = o->batch / n_ranks;
  t->o = *o;
  t->dev = dev;
  t->n = ry_params_count(weights);
  for (int i = 0; i < t->n && !s; i++)
    if (ry_array_dtype(ry_params_at(weights, i)) != RY_F32)
      s = ry_status_make(RY_ERR_DTYPE, "ry_lm_trainer_new: '%s' is %s; training keeps f32 weights", ry_params_path(weights, i),
                         ry_dtype_name(ry_array_dtype(ry_params_at(weights, i))));
  ry_params *state0 = NULL;
  if (!s) s = names_of(weights, &t->like);
  if (!s && o->frozen) s = ry_params_clone(o->frozen, &t->frozen);
  if (!s && t->frozen && o->matmul_dtype == RY_BF16) s = frozen_to_bf16(t->frozen);
  t->nf = ry_params_count(t->frozen);
  t->o.frozen = NULL; /* the caller's tree is not kept (t->frozen shares its arrays) */
  if (!s && o->remat) {
    t->remat = malloc((size_t)c->n_layers);
    if (!t->remat) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_new: out of memory");
    else memcpy(t->remat, o->remat, (size_t)c->n_layers);
  }
  t->o.remat = NULL;
  if (!s) s = ry_nn_opt_state_tree(&o->opt, weights, &state0);
  if (!s) s = names_of(state0, &t->state_like);
  if (!s) {
    t->n_state = t->state_like.n;
    t->params = calloc((size_t)t->n + 1, sizeof *t->params);
    t->state = calloc((size_t)t->n_state + 1, sizeof *t->state);
    t->decay = calloc((size_t)t->n + 1, 1);
    if (!t->params || !t->state || !t->decay) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_new: out of memory");
  }
  if (!s) {
    for (int i = 0; i < t->n; i++) t->params[i] = ry_array_retain(ry_params_at(weights, i));
    for (int i = 0; i < t->n_state; i++) t->state[i] = ry_array_retain(ry_params_at(state0, i));
    ry_nn_decay_mask(weights, o->n_no_decay, o->no_decay, t->decay);
    t->o.no_decay = NULL; /* the caller's patterns are not kept */
    t->o.n_no_decay = 0;
  }
  /* the loss and its gradient for one micro-batch */
  ry_type *types = s ? NULL : calloc((size_t)(t->n + t->nf) + 1, sizeof *types);
  if (!s && !types) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_new: out of memory");
  int *argnums = s ? NULL : calloc((size_t)t->n + 1, sizeof *argnums);
  if (!s && !argnums) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_new: out of memory");
  if (!s) {
    memcpy(types, t->like.types, (size_t)t->n * sizeof *types);
    if (t->frozen) ry_params_types(t->frozen, types + t->n);
    types[t->n + t->nf] = (ry_type){RY_I32, RY_SHAPE(t->bl, (int64_t)o->ctx + 1)};
    for (int i = 0; i < t->n; i++) argnums[i] = i;
    ry_grad_opts go = {t->n, argnums, 0};
    s = ry_trace("lm_loss", loss_fn, t, t->n + t->nf + 1, types, NULL, &t->loss_g);
    if (!s) s = ry_value_and_grad(t->loss_g, &go, &t->loss_vg);
  }
  free(types);
  ry_params_free(state0); /* the trainer holds its arrays */
  free(argnums);
  if (!s) s = ry_jit_new("lm_train_step", step_fn, t, dev, &t->step_j);
  if (!s) s = ry_jit_new("lm_eval", eval_fn, t, dev, &t->eval_j);
  if (s) {
    ry_lm_trainer_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

static ry_status check_tokens(const ry_lm_trainer *t, const int32_t *tokens, int64_t n) {
  if (!tokens) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm trainer: no tokens");
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= t->c.n_vocab)
      return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm trainer: token %d (at %lld) is not in [0, %d)", tokens[i], (long long)i,
                            t->c.n_vocab);
  return NULL;
}

ry_status ry_lm_trainer_step(ry_lm_trainer *t, const int32_t *tokens, double *loss) {
  if (!t) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_step: no trainer");
  int n = t->n, ns = t->n_state, nf = t->nf, nin = n + ns + nf + 1;
  int64_t A = t->o.accum, B = t->bl, T1 = (int64_t)t->o.ctx + 1;
  ry_status s = check_tokens(t, tokens, A * B * T1);
  if (s) return s;
  if (t->lost) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_step: a failed step lost the weights; set a state");
  ry_array **in = calloc((size_t)(nin + n + ns + 1) + 1, sizeof *in), **outv = in ? in + nin : NULL;
  bool *donate = calloc((size_t)nin, sizeof *donate);
  if (!in || !donate) {
    free(in), free(donate);
    return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_step: out of memory");
  }
  s = ry_array_from_host(RY_I32, RY_SHAPE(A, B, T1), tokens, &in[nin - 1]);
  if (!s) {
    /* the weights and the state are donated: updated in place; the frozen
       weights are only read */
    for (int i = 0; i < n; i++) in[i] = t->params[i], t->params[i] = NULL, donate[i] = true;
    for (int i = 0; i < ns; i++) in[n + i] = t->state[i], t->state[i] = NULL, donate[n + i] = true;
    for (int i = 0; i < nf; i++) in[n + ns + i] = ry_params_at(t->frozen, i);
    s = ry_jit_call_donated(t->step_j, nin, in, donate, n + ns + 1, outv);
    if (s) { /* the donated arrays went with the failed call */
      t->lost = 1;
    } else {
      for (int i = 0; i < n; i++) t->params[i] = outv[i];
      for (int i = 0; i < ns; i++) t->state[i] = outv[n + i];
      if (loss) *loss = ry_array_get_f64(outv[n + ns], 0);
      ry_array_release(outv[n + ns]);
    }
  }
  ry_array_release(in[nin - 1]);
  free(in);
  free(donate);
  return s;
}

ry_status ry_lm_trainer_eval(ry_lm_trainer *t, const int32_t *tokens, double *loss) {
  if (!t) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_eval: no trainer");
  int n = t->n, nf = t->nf;
  int64_t B = t->o.batch, T1 = (int64_t)t->o.ctx + 1;
  ry_status s = check_tokens(t, tokens, B * T1);
  if (s) return s;
  if (t->lost) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_eval: a failed step lost the weights; set a state");
  ry_array **in = calloc((size_t)(n + nf) + 1, sizeof *in), *res = NULL;
  if (!in) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "ry_lm_trainer_eval: out of memory");
  for (int i = 0; i < n; i++) in[i] = t->params[i];
  for (int i = 0; i < nf; i++) in[n + i] = ry_params_at(t->frozen, i);
  s = ry_array_from_host(RY_I32, RY_SHAPE(B, T1), tokens, &in[n + nf]);
  if (!s) s = ry_jit_call(t->eval_j, n + nf + 1, in, 1, &res);
  if (!s && loss) *loss = ry_array_get_f64(res, 0);
  ry_array_release(res);
  ry_array_release(in[n + nf]);
  free(in);
  return s;
}

int64_t ry_lm_trainer_steps(const ry_lm_trainer *t) {
  return t && !t->lost && t->state[t->n_state - 1] ? ry_array_get_i64(t->state[t->n_state - 1], 0) : 0;
}

ry_status ry_lm_trainer_weights(const ry_lm_trainer *t, ry_params **out) {
  *out = NULL;
  if (!t || t->lost) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_weights: no trainer");
  ry_params *w = ry_params_new();
  ry_status s = w ? names_tree(&t->like, "", t->params, w) : ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory");
  if (s) {
    ry_params_free(w);
    return s;
  }
  *out = w;
  return NULL;
}

ry_status ry_lm_trainer_state(const ry_lm_trainer *t, ry_params **out) {
  *out = NULL;
  if (!t || t->lost) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_state: no trainer, or its weights were lost");
  ry_params *tr = ry_params_new();
  ry_status s = tr ? names_tree(&t->like, "params/", t->params, tr) : ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm trainer: out of memory");
  if (!s) s = names_tree(&t->state_like, "opt/", t->state, tr);
  if (s) {
    ry_params_free(tr);
    return s;
  }
  *out = tr;
  return NULL;
}

/* st's array for "<prefix><name i>" with nm's type i, or an error naming it */
static ry_status state_entry(const ry_params *st, const names *nm, int i, const char *prefix, ry_array **out) {
  char p[RY_PARAMS_MAX_PATH + 16];
  snprintf(p, sizeof p, "%s%s", prefix, nm->paths[i]);
  ry_array *a = ry_params_get(st, p);
  *out = a;
  if (!a) return ry_status_make(RY_ERR_NOT_FOUND, "lm trainer state: '%s' is missing (a checkpoint of another model?)", p);
  ry_type got = {ry_array_dtype(a), ry_array_shape(a)};
  if (!ry_type_equal(got, nm->types[i])) {
    char t1[64], t2[64];
    return ry_status_make(RY_ERR_SHAPE, "lm trainer state: '%s' is %s, the model has %s (a checkpoint of another configuration?)", p,
                          ry_type_str(got, t1, sizeof t1), ry_type_str(nm->types[i], t2, sizeof t2));
  }
  return NULL;
}

ry_status ry_lm_trainer_set_state(ry_lm_trainer *t, const ry_params *st) {
  if (!t || !st) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "ry_lm_trainer_set_state: no trainer or no state");
  ry_array *a;
  ry_status s = NULL;
  /* every entry present with its type, before anything changes */
  for (int i = 0; i < t->n && !s; i++) s = state_entry(st, &t->like, i, "params/", &a);
  for (int i = 0; i < t->n_state && !s; i++) s = state_entry(st, &t->state_like, i, "opt/", &a);
  for (int i = 0; i < t->n && !s; i++) {
    state_entry(st, &t->like, i, "params/", &a);
    ry_array_release(t->params[i]);
    t->params[i] = ry_array_retain(a);
  }
  for (int i = 0; i < t->n_state && !s; i++) {
    state_entry(st, &t->state_like, i, "opt/", &a);
    ry_array_release(t->state[i]);
    t->state[i] = ry_array_retain(a);
  }
  if (!s) t->lost = 0;
  return s;
}
