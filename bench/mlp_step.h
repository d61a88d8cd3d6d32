/* The MLP train step of the benchmark (and of tests/test_jit.c, which checks
 * it on cpu against the interpreter): an MLP in -> h1 -> h2 -> out with ReLU,
 * softmax cross-entropy, the backward pass by ry_value_and_grad, and Adam
 * written with ryft ops. Traced with ry_jit (ctx = an mlp_cfg).
 *
 * inputs (MLP_N_IN):  p[6] = w1 (in,h1) b1 (h1) w2 (h1,h2) b2 (h2) w3 (h2,out) b3 (out),
 *                     m[6], v[6] (Adam moments, shaped like p), t (f32 scalar:
 *                     the step number, from 1), x (batch, in) f32, y (batch) i32
 * outputs (MLP_N_OUT): loss (f32 scalar), p'[6], m'[6], v'[6]
 * A train loop donates p, m and v (inputs 0..17) so they are updated in place. */
#ifndef RYFT_BENCH_MLP_STEP_H
#define RYFT_BENCH_MLP_STEP_H

#include <math.h>

#include "ryft/ryft.h"

#define MLP_N_IN 21
#define MLP_N_OUT 19

typedef struct mlp_cfg {
  int64_t batch, dims[4]; /* in, h1, h2, out */
  double lr, beta1, beta2, eps;
  int bf16; /* mixed precision: the products in bf16 (ry_builder_set_matmul_dtype), f32 master weights */
} mlp_cfg;

/* (w1 b1 w2 b2 w3 b3 x y) -> mean cross-entropy */
static int mlp_loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const mlp_cfg *c = ctx;
  if (c->bf16 && !ry_builder_set_matmul_dtype(b, RY_BF16)) return -1;
  ry_value h = ry_relu(b, ry_add(b, ry_matmul(b, in[6], in[0]), in[1]));    /* (B, h1) */
  h = ry_relu(b, ry_add(b, ry_matmul(b, h, in[2]), in[3]));                 /* (B, h2) */
  ry_value logits = ry_add(b, ry_matmul(b, h, in[4]), in[5]);               /* (B, out) */
  ry_value lp = ry_log_softmax(b, logits, -1);
  ry_value picked = ry_sum(b, ry_mul(b, ry_one_hot(b, in[7], c->dims[3], RY_F32), lp), RY_AXES(1)); /* (B) */
  out[0] = ry_neg(b, ry_mean(b, picked, RY_AXES(0), 0));
  return 1;
}

static int mlp_step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const mlp_cfg *c = ctx;
  ry_type types[8];
  for (int i = 0; i < 6; i++) types[i] = ry_value_type(b, in[i]);
  types[6] = ry_value_type(b, in[19]);
  types[7] = ry_value_type(b, in[20]);
  ry_graph *loss = NULL, *vg = NULL;
  ry_status s = ry_trace("mlp_loss", mlp_loss_fn, ctx, 8, types, NULL, &loss);
  if (!s) s = ry_value_and_grad(loss, &(ry_grad_opts){6, (const int[]){0, 1, 2, 3, 4, 5}, 0}, &vg);
  ry_graph_release(loss);
  if (s) {
    ry_status_free(s);
    return -1;
  }
  ry_value args[8] = {in[0], in[1], in[2], in[3], in[4], in[5], in[19], in[20]}, r[7];
  int n = ry_call(b, vg, 8, args, r); /* (loss, g[6]) */
  ry_graph_release(vg);
  if (n != 7) return -1;
  out[0] = r[0];
  ry_value t = in[18];
  /* bias corrections 1 - beta^t */
  ry_value c1 = ry_sub(b, ry_scalar(b, RY_F32, 1), ry_pow(b, ry_scalar(b, RY_F32, c->beta1), t));
  ry_value c2 = ry_sub(b, ry_scalar(b, RY_F32, 1), ry_pow(b, ry_scalar(b, RY_F32, c->beta2), t));
  ry_value step = ry_div(b, ry_mul(b, ry_scalar(b, RY_F32, c->lr), ry_sqrt(b, c2)), c1);
  for (int i = 0; i < 6; i++) {
    ry_value g = r[1 + i], p = in[i], m = in[6 + i], v = in[12 + i];
    ry_value m2 = ry_add(b, ry_mul(b, ry_scalar(b, RY_F32, c->beta1), m), ry_mul(b, ry_scalar(b, RY_F32, 1 - c->beta1), g));
    ry_value v2 = ry_add(b, ry_mul(b, ry_scalar(b, RY_F32, c->beta2), v),
                         ry_mul(b, ry_scalar(b, RY_F32, 1 - c->beta2), ry_mul(b, g, g)));
    ry_value upd = ry_div(b, ry_mul(b, step, m2), ry_add(b, ry_sqrt(b, v2), ry_scalar(b, RY_F32, c->eps)));
    out[1 + i] = ry_sub(b, p, upd);
    out[7 + i] = m2;
    out[13 + i] = v2;
  }
  return MLP_N_OUT;
}

/* Inputs for cfg with deterministic pseudo-random values (t = 1); `in` gets
 * MLP_N_IN new arrays. */
static ry_status mlp_inputs(const mlp_cfg *c, ry_array **in) {
  ry_status s = NULL;
  uint32_t seed = 2463534242u;
  for (int i = 0; i < MLP_N_IN; i++) in[i] = NULL;
  for (int i = 0; i < MLP_N_IN && !s; i++) {
    int l = (i % 6) / 2;
    ry_shape sh;
    if (i < 18) sh = i % 2 == 0 ? RY_SHAPE(c->dims[l], c->dims[l + 1]) : RY_SHAPE(c->dims[l + 1]);
    else if (i == 18) sh = RY_SCALAR;
    else if (i == 19) sh = RY_SHAPE(c->batch, c->dims[0]);
    else sh = RY_SHAPE(c->batch);
    int64_t n = ry_shape_numel(sh);
    if (i == 20) {
      int32_t *y = malloc((size_t)n * sizeof(int32_t));
      if (!y) return ry_array_zeros(RY_I32, sh, &in[i]); /* not reached in practice */
      for (int64_t k = 0; k < n; k++) y[k] = (int32_t)(k * 7 % c->dims[3]);
      s = ry_array_from_host(RY_I32, sh, y, &in[i]);
      free(y);
      continue;
    }
    float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!v) return ry_array_zeros(RY_F32, sh, &in[i]);
    double scale = i < 6 ? (i % 2 == 0 ? 1.0 / sqrt((double)c->dims[l]) : 0.01) : i < 18 ? 0.0 : 1.0;
    for (int64_t k = 0; k < n; k++) {
      seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
      v[k] = (float)(((double)seed / 4294967296.0 * 2 - 1) * scale);
    }
    if (i == 18) v[0] = 1;
    s = ry_array_from_host(RY_F32, sh, v, &in[i]);
    free(v);
  }
  return s;
}

#endif
