/* Decoder-only transformer language models (ryft/model.h): the traced
 * forward pass with a key/value cache, weight checks, and ry_lm, which
 * compiles a handful of bucketed programs and runs prompts and decoding
 * steps through them. Public API only, like src/nn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/jit.h"
#include "ryft/model.h"
#include "ryft/nn.h"
#include "ryft/gguf.h"
#include "lm_internal.h"

#define FAIL(b, loc, ...) ry_builder_set_error((b), ry_status_make(RY_ERR_INVALID_ARGUMENT, __VA_ARGS__))

/* ---- config and weights ---- */

static const char *const k_arch_names[] = {[RY_LM_LLAMA] = "llama", [RY_LM_QWEN2] = "qwen2", [RY_LM_GEMMA] = "gemma",
                                           [RY_LM_GPT2] = "gpt2"};

const char *ry_lm_arch_name(ry_lm_arch a) {
  return (int)a >= 0 && (size_t)a < sizeof k_arch_names / sizeof k_arch_names[0] ? k_arch_names[a] : NULL;
}

int ry_lm_arch_from_name(const char *name, ry_lm_arch *out) {
  for (size_t i = 0; name && i < sizeof k_arch_names / sizeof k_arch_names[0]; i++)
    if (!strcmp(name, k_arch_names[i])) {
      *out = (ry_lm_arch)i;
      return 1;
    }
  return 0;
}

ry_status ry_lm_config_check(const ry_lm_config *c) {
  if (!c) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: NULL");
  struct {
    const char *name;
    int v;
  } pos[] = {{"n_layers", c->n_layers},     {"n_embd", c->n_embd},     {"n_ff", c->n_ff},
             {"n_heads", c->n_heads},       {"n_kv_heads", c->n_kv_heads}, {"head_dim", c->head_dim},
             {"n_vocab", c->n_vocab},       {"n_ctx_train", c->n_ctx_train}};
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (pos[i].v <= 0) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: %s is %d, not positive", pos[i].name, pos[i].v);
  if (!ry_lm_arch_name(c->arch)) return ry_status_make(RY_ERR_UNSUPPORTED, "lm config: unknown architecture %d", (int)c->arch);
  if (c->arch == RY_LM_GPT2 && c->n_heads != c->n_kv_heads)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: gpt2 has as many kv heads as heads (%d, not %d)", c->n_heads,
                          c->n_kv_heads);
  if (c->arch == RY_LM_GPT2 && (int64_t)c->n_heads * c->head_dim != c->n_embd)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: gpt2 needs n_heads * head_dim = n_embd (%d * %d != %d)",
                          c->n_heads, c->head_dim, c->n_embd);
  if (c->n_heads % c->n_kv_heads != 0)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: n_heads %d is not a multiple of n_kv_heads %d", c->n_heads,
                          c->n_kv_heads);
  if (c->rope != RY_ROPE_NONE && (c->head_dim % 2 != 0 || !(c->rope_base > 0)))
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: rotary embeddings need an even head_dim (%d) and a positive base (%g)",
                          c->head_dim, c->rope_base);
  if (!(c->norm_eps > 0)) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lm config: norm_eps %g is not positive", c->norm_eps);
  return NULL;
}

typedef struct wspec {
  char name[64];
  int rank;
  int64_t dims[2];
  int optional;
} wspec;

/* the tensors of config c, in a fixed order; returns how many */
static int weight_specs(const ry_lm_config *c, wspec *ws, int cap) {
  int n = 0;
#define W(opt, r, d0, d1, ...)                                          \
  do {                                                                  \
    if (n < cap) {                                                      \
      snprintf(ws[n].name, sizeof ws[n].name, __VA_ARGS__);             \
      ws[n].rank = (r);                                                 \
      ws[n].dims[0] = (d0);                                             \
      ws[n].dims[1] = (d1);                                             \
      ws[n].optional = (opt);                                           \
    }                                                                   \
    n++;                                                                \
  } while (0)
  int64_t E = c->n_embd, F = c->n_ff, Q = (int64_t)c->n_heads * c->head_dim, K = (int64_t)c->n_kv_heads * c->head_dim;
  bool gpt2 = c->arch == RY_LM_GPT2;
  W(0, 2, c->n_vocab, E, "token_embd.weight");
  if (gpt2) W(0, 2, c->n_ctx_train, E, "position_embd.weight");
  for (int l = 0; l < c->n_layers; l++) {
    W(0, 1, E, 0, "blk.%d.attn_norm.weight", l);
    if (gpt2) {
      W(0, 1, E, 0, "blk.%d.attn_norm.bias", l);
      W(0, 2, 3 * E, E, "blk.%d.attn_qkv.weight", l);
      W(0, 1, 3 * E, 0, "blk.%d.attn_qkv.bias", l);
    } else {
      W(0, 2, Q, E, "blk.%d.attn_q.weight", l);
      W(0, 2, K, E, "blk.%d.attn_k.weight", l);
      W(0, 2, K, E, "blk.%d.attn_v.weight", l);
    }
    if (c->arch == RY_LM_QWEN2) {
      W(0, 1, Q, 0, "blk.%d.attn_q.bias", l);
      W(0, 1, K, 0, "blk.%d.attn_k.bias", l);
      W(0, 1, K, 0, "blk.%d.attn_v.bias", l);
    }
    W(0, 2, E, Q, "blk.%d.attn_output.weight", l);
    if (gpt2) W(0, 1, E, 0, "blk.%d.attn_output.bias", l);
    W(0, 1, E, 0, "blk.%d.ffn_norm.weight", l);
    if (gpt2) {
      W(0, 1, E, 0, "blk.%d.ffn_norm.bias", l);
      W(0, 2, F, E, "blk.%d.ffn_up.weight", l);
      W(0, 1, F, 0, "blk.%d.ffn_up.bias", l);
      W(0, 2, E, F, "blk.%d.ffn_down.weight", l);
      W(0, 1, E, 0, "blk.%d.ffn_down.bias", l);
    } else {
      W(0, 2, F, E, "blk.%d.ffn_gate.weight", l);
      W(0, 2, F, E, "blk.%d.ffn_up.weight", l);
      W(0, 2, E, F, "blk.%d.ffn_down.weight", l);
    }
  }
  W(0, 1, E, 0, "output_norm.weight");
  if (gpt2) W(0, 1, E, 0, "output_norm.bias");
  if (!c->tied_embeddings) W(0, 2, c->n_vocab, E, "output.weight");
#undef W
  return n;
}

/* with qtype: a 2-D weight for which qtype gives a ggml type is its raw
   blocks, u8[rows, row bytes] */
ry_status ryl_check_weights(const ry_lm_config *c, const ry_params *w, ryl_qtype_fn qtype, void *qctx) {
  ry_status s = ry_lm_config_check(c);
  if (s) return s;
  int n = weight_specs(c, NULL, 0);
  wspec *ws = calloc((size_t)n, sizeof *ws);
  if (!ws) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm weights: out of memory");
  weight_specs(c, ws, n);
  for (int i = 0; i < n && !s; i++) {
    ry_array *a = ry_params_get(w, ws[i].name);
    if (!a) {
      if (!ws[i].optional) s = ry_status_make(RY_ERR_NOT_FOUND, "lm weights: tensor '%s' is missing", ws[i].name);
      continue;
    }
    ry_shape want = ws[i].rank == 1 ? RY_SHAPE(ws[i].dims[0]) : RY_SHAPE(ws[i].dims[0], ws[i].dims[1]);
    int qt = qtype && ws[i].rank == 2 ? qtype(ws[i].name, qctx) : -1;
    size_t rb = 0;
    if (qt >= 0) {
      s = ry_ggml_row_size(qt, ws[i].dims[1], &rb);
      if (s) {
        ry_status e = ry_status_make(ry_status_code(s), "lm weights: tensor '%s': %s", ws[i].name, ry_status_message(s));
        ry_status_free(s);
        s = e;
        break;
      }
      want.dims[1] = (int64_t)rb;
    }
    if (!ry_shape_equal(ry_array_shape(a), want)) {
      char t1[64], t2[64];
      s = ry_status_make(RY_ERR_SHAPE, "lm weights: tensor '%s' has shape %s, but the hyperparameters say %s", ws[i].name,
                         ry_shape_str(ry_array_shape(a), t1, sizeof t1), ry_shape_str(want, t2, sizeof t2));
    } else if (qt >= 0 ? ry_array_dtype(a) != RY_U8 : !ry_dtype_is_float(ry_array_dtype(a))) {
      s = ry_status_make(RY_ERR_DTYPE, "lm weights: tensor '%s' has dtype %s; a float dtype is needed", ws[i].name,
                         ry_dtype_name(ry_array_dtype(a)));
    }
  }
  free(ws);
  return s;
}

ry_status ry_lm_check_weights(const ry_lm_config *c, const ry_params *w) { return ryl_check_weights(c, w, NULL, NULL); }

/* ---- the traced forward pass ---- */

/* x[..., in] @ w[out, in]^T (GGUF's layout: rows are outputs) */
static ry_value linear_t(ry_builder *b, ry_loc loc, ry_value x, ry_value w) {
  int r = ry_value_shape(b, x).rank;
  ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(r - 1), RY_AXES(1)};
  return ry_dot_general_(b, loc, x, w, d, ry_value_dtype(b, x));
}

/* rotary embeddings on x[B, T, H, D] for positions pos0 + t; cs, sn [T, D/2] */
static ry_value rope(ry_builder *b, ry_loc loc, const ry_lm_config *cfg, ry_value x, ry_value cs, ry_value sn) {
  ry_rope_kind kind = cfg->rope;
  ry_shape s = ry_value_shape(b, x);
  int64_t B = s.dims[0], T = s.dims[1], H = s.dims[2], D = s.dims[3], h = D / 2;
  ry_shape hs = RY_SHAPE(B, T, H, h);
  ry_value c = ry_broadcast_in_dim_(b, loc, cs, hs, RY_AXES(1, 3));
  ry_value n = ry_broadcast_in_dim_(b, loc, sn, hs, RY_AXES(1, 3));
  ry_value x0, x1;
  if (kind == RY_ROPE_NORM) { /* pairs (2i, 2i+1): strided slices, no reshape, so the cpu backend fuses it all */
    x0 = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, 0), RY_AXES(B, T, H, D), RY_AXES(1, 1, 1, 2));
    x1 = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, 1), RY_AXES(B, T, H, D), RY_AXES(1, 1, 1, 2));
  } else { /* halves (i, i + D/2) */
    x0 = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, 0), RY_AXES(B, T, H, h), RY_NO_AXES);
    x1 = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, h), RY_AXES(B, T, H, D), RY_NO_AXES);
  }
  ry_value y0, y1;
  if (cfg->ggml_numerics) {
    y0 = ryl_rotate_ggml(b, loc, x0, c, x1, n, -1);
    y1 = ryl_rotate_ggml(b, loc, x0, n, x1, c, 1);
  } else {
    y0 = ry_sub_(b, loc, ry_mul_(b, loc, x0, c), ry_mul_(b, loc, x1, n));
    y1 = ry_add_(b, loc, ry_mul_(b, loc, x0, n), ry_mul_(b, loc, x1, c));
  }
  if (kind == RY_ROPE_NORM) { /* interleaved again: y0 at the even places, y1 at the odd (each plus a zero) */
    ry_value z = ry_scalar_(b, loc, ry_value_dtype(b, x), 0.0);
    ry_value e = ry_pad_(b, loc, y0, z, RY_AXES(0, 0, 0, 0), RY_AXES(0, 0, 0, 1), RY_AXES(0, 0, 0, 1));
    ry_value o = ry_pad_(b, loc, y1, z, RY_AXES(0, 0, 0, 1), RY_AXES(0, 0, 0, 0), RY_AXES(0, 0, 0, 1));
    return ry_add_(b, loc, e, o);
  }
  ry_value p[2] = {y0, y1};
  return ry_concatenate_(b, loc, 2, p, 3);
}

/* cos and sin [T, D/2] of (pos0 + t) * base^(-2i/D); positions stay below
 * rows (ggml's tables are computed for them all) */
static void rope_tables(ry_builder *b, ry_loc loc, const ry_lm_config *c, int64_t rows, int64_t T, ry_value pos0,
                        ry_value *cs, ry_value *sn) {
  int h = c->head_dim / 2;
  if (c->ggml_numerics) {
    ryl_rope_tables_ggml(b, loc, c->rope_base, c->head_dim, rows, T, pos0, cs, sn);
    return;
  }
  float *inv = malloc((size_t)h * sizeof *inv);
  ry_array *ia = NULL;
  if (!inv) {
    ry_builder_set_error(b, ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm forward: out of memory"));
    *cs = *sn = (ry_value){0};
    return;
  }
  for (int i = 0; i < h; i++) inv[i] = (float)pow(c->rope_base, -2.0 * i / c->head_dim);
  ry_status s = ry_array_from_host(RY_F32, RY_SHAPE(h), inv, &ia);
  free(inv);
  if (s) {
    ry_builder_set_error(b, s);
    *cs = *sn = (ry_value){0};
    return;
  }
  ry_value invv = ry_broadcast_in_dim_(b, loc, ry_constant_(b, loc, ia), RY_SHAPE(T, h), RY_AXES(1));
  ry_array_release(ia);
  ry_value t = ry_add_(b, loc, ry_iota_(b, loc, RY_I32, RY_SHAPE(T, h), 0), pos0);
  ry_value ang = ry_mul_(b, loc, ry_convert_(b, loc, t, RY_F32), invv);
  *cs = ry_cos_(b, loc, ang);
  *sn = ry_sin_(b, loc, ang);
}

static ry_value wget(ry_pvalues *w, ry_loc loc, const char *fmt, int l) {
  char name[96];
  snprintf(name, sizeof name, fmt, l);
  return ry_pvalues_get_(w, loc, name);
}

static ry_value add_bias(ry_builder *b, ry_loc loc, ry_pvalues *w, const char *fmt, int l, ry_value x) {
  char name[96];
  snprintf(name, sizeof name, fmt, l);
  if (!ry_pvalues_has(w, name)) return x;
  ry_value bias = ry_pvalues_get_(w, loc, name);
  ry_shape s = ry_value_shape(b, x);
  return ry_add_(b, loc, x, ry_broadcast_in_dim_(b, loc, bias, s, RY_AXES(s.rank - 1)));
}

/* the architecture's norm over the last axis: "<prefix>.weight" (and
   ".bias" for gpt2's LayerNorm); prefix may contain one %d for the layer */
static ry_value norm(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, const char *prefix, int l, ry_value x) {
  char fmt[96], name[96];
  snprintf(fmt, sizeof fmt, "%s.weight", prefix);
  snprintf(name, sizeof name, fmt, l);
  ry_value g = ry_pvalues_get_(w, loc, name);
  if (c->arch != RY_LM_GPT2 && c->ggml_numerics) return ryl_rms_norm_ggml(b, loc, x, g, c->norm_eps);
  if (c->arch != RY_LM_GPT2) return ry_nn_rms_norm_(b, loc, x, g, c->norm_eps);
  snprintf(fmt, sizeof fmt, "%s.bias", prefix);
  snprintf(name, sizeof name, fmt, l);
  return ry_nn_layer_norm_(b, loc, x, g, ry_pvalues_get_(w, loc, name), c->norm_eps);
}

/* Block l of the decoder on the residual stream x [B, T, E]: attention
   (through the caches when k_cache is set, as in decoder()) and the
   feed-forward, each added to x. */
static ry_value block(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, int l, ry_value x, ry_value mask,
                      ry_value cs, ry_value sn, ry_value pos0, const ry_value *k_cache, const ry_value *v_cache, int64_t window,
                      ry_value *k_out, ry_value *v_out) {
  ry_shape xs = ry_value_shape(b, x);
  int64_t B = xs.dims[0], T = xs.dims[1], S = k_cache ? ry_value_shape(b, k_cache[0]).dims[2] : T;
  int64_t Hq = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, G = Hq / Hk, E = c->n_embd;
  bool gpt2 = c->arch == RY_LM_GPT2;
  ry_value zero = ry_scalar_(b, loc, RY_I32, 0.0);
  ry_value h = norm(b, loc, c, w, "blk.%d.attn_norm", l, x);
  ry_value q, k, v;
  if (gpt2) {
    ry_value qkv = add_bias(b, loc, w, "blk.%d.attn_qkv.bias", l, linear_t(b, loc, h, wget(w, loc, "blk.%d.attn_qkv.weight", l)));
    q = ry_slice_(b, loc, qkv, RY_AXES(0, 0, 0), RY_AXES(B, T, E), RY_NO_AXES);
    k = ry_slice_(b, loc, qkv, RY_AXES(0, 0, E), RY_AXES(B, T, 2 * E), RY_NO_AXES);
    v = ry_slice_(b, loc, qkv, RY_AXES(0, 0, 2 * E), RY_AXES(B, T, 3 * E), RY_NO_AXES);
  } else {
    q = add_bias(b, loc, w, "blk.%d.attn_q.bias", l, linear_t(b, loc, h, wget(w, loc, "blk.%d.attn_q.weight", l)));
    k = add_bias(b, loc, w, "blk.%d.attn_k.bias", l, linear_t(b, loc, h, wget(w, loc, "blk.%d.attn_k.weight", l)));
    v = add_bias(b, loc, w, "blk.%d.attn_v.bias", l, linear_t(b, loc, h, wget(w, loc, "blk.%d.attn_v.weight", l)));
  }
  q = ry_reshape_(b, loc, q, RY_SHAPE(B, T, Hq, D));
  k = ry_reshape_(b, loc, k, RY_SHAPE(B, T, Hk, D));
  v = ry_reshape_(b, loc, v, RY_SHAPE(B, T, Hk, D));
  if (c->rope != RY_ROPE_NONE) {
    q = rope(b, loc, c, q, cs, sn);
    k = rope(b, loc, c, k, cs, sn);
  }
  if (c->ggml_numerics) {
    q = ryl_round_f16(b, loc, q);
    k = ryl_round_f16(b, loc, k);
    v = ryl_round_f16(b, loc, v);
  }
  /* heads first: each head's positions are contiguous */
  ry_value kt = ry_transpose_(b, loc, k, RY_AXES(0, 2, 1, 3)), vt = ry_transpose_(b, loc, v, RY_AXES(0, 2, 1, 3));
  ry_value kw = kt, vw = vt; /* [B, Hk, W, D] */
  if (k_cache) {
    /* write this step's keys and values into layer l's cache at positions pos0.. */
    ry_value starts[4] = {zero, zero, pos0, zero};
    k_out[l] = ry_dynamic_update_slice_(b, loc, k_cache[l], kt, starts);
    v_out[l] = ry_dynamic_update_slice_(b, loc, v_cache[l], vt, starts);
    ry_axes lo = RY_AXES(0, 0, 0, 0), hi = RY_AXES(B, Hk, window, D);
    kw = window == S ? k_out[l] : ry_slice_(b, loc, k_out[l], lo, hi, RY_NO_AXES);
    vw = window == S ? v_out[l] : ry_slice_(b, loc, v_out[l], lo, hi, RY_NO_AXES);
  }
  /* grouped-query attention over the window, as batched matrix products
     over (batch, kv head): the G query heads of a kv head and the T
     positions are the T*G rows */
  ry_value qh = ry_reshape_(b, loc, q, RY_SHAPE(B, T, Hk, G, D));
  qh = ry_reshape_(b, loc, ry_transpose_(b, loc, qh, RY_AXES(0, 2, 1, 3, 4)), RY_SHAPE(B, Hk, T * G, D));
  ry_value scale = ry_scalar_(b, loc, RY_F32, 1.0 / sqrt((double)D)), lg, p, o;
  if (c->ggml_numerics) { /* llama.cpp's: f16 operands, ggml's sums, the scale on the scores */
    lg = ry_mul_(b, loc, ryl_dot_f16_ggml(b, loc, qh, kw, 0, T > 1), scale); /* [B, Hk, T*G, W] */
    lg = ry_select_(b, loc, mask, lg, ry_scalar_(b, loc, RY_F32, -INFINITY));
    p = ryl_round_f16(b, loc, ryl_softmax_ggml(b, loc, lg));
    o = ryl_dot_f16_ggml(b, loc, p, vw, 1, T > 1); /* [B, Hk, T*G, D] */
  } else {
    ry_dot_dims d1 = {RY_AXES(0, 1), RY_AXES(0, 1), RY_AXES(3), RY_AXES(3)};
    lg = ry_dot_general_(b, loc, ry_mul_(b, loc, qh, scale), kw, d1, RY_F32); /* [B, Hk, T*G, W] */
    lg = ry_select_(b, loc, mask, lg, ry_scalar_(b, loc, RY_F32, -INFINITY));
    p = ry_softmax_(b, loc, lg, -1);
    ry_dot_dims d2 = {RY_AXES(0, 1), RY_AXES(0, 1), RY_AXES(3), RY_AXES(2)};
    o = ry_dot_general_(b, loc, p, vw, d2, RY_F32); /* [B, Hk, T*G, D] */
  }
  o = ry_transpose_(b, loc, ry_reshape_(b, loc, o, RY_SHAPE(B, Hk, T, G, D)), RY_AXES(0, 2, 1, 3, 4));
  o = ry_reshape_(b, loc, o, RY_SHAPE(B, T, Hq * D));
  o = add_bias(b, loc, w, "blk.%d.attn_output.bias", l, linear_t(b, loc, o, wget(w, loc, "blk.%d.attn_output.weight", l)));
  x = ry_add_(b, loc, x, o);
  /* the feed-forward block */
  h = norm(b, loc, c, w, "blk.%d.ffn_norm", l, x);
  ry_value f;
  if (gpt2) {
    ry_value u = add_bias(b, loc, w, "blk.%d.ffn_up.bias", l, linear_t(b, loc, h, wget(w, loc, "blk.%d.ffn_up.weight", l)));
    f = add_bias(b, loc, w, "blk.%d.ffn_down.bias", l,
                 linear_t(b, loc, ry_gelu_(b, loc, u, 1), wget(w, loc, "blk.%d.ffn_down.weight", l)));
  } else {
    ry_value g = linear_t(b, loc, h, wget(w, loc, "blk.%d.ffn_gate.weight", l));
    ry_value u = linear_t(b, loc, h, wget(w, loc, "blk.%d.ffn_up.weight", l));
    if (c->arch == RY_LM_GEMMA) g = ry_mul_(b, loc, ry_gelu_(b, loc, g, 1), u);
    else g = c->ggml_numerics ? ryl_swiglu_ggml(b, loc, g, u) : ry_mul_(b, loc, ry_silu_(b, loc, g), u);
    f = linear_t(b, loc, g, wget(w, loc, "blk.%d.ffn_down.weight", l));
  }
  x = ry_add_(b, loc, x, f);
  return x;
}

/* A block as its own graph called through ry_checkpoint: reverse mode
   recomputes its activations instead of saving them. Inputs: x, the
   block's weights ("blk.<l>.*" of w, in w's order), the mask, and the rope
   tables when the model has them. */
typedef struct remat_ctx {
  const ry_lm_config *c;
  int l, nw;
  const char **paths;
  ry_dtype mm; /* the outer trace's matmul precision */
} remat_ctx;

static int remat_block_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const remat_ctx *rc = vctx;
  if (!ry_builder_set_matmul_dtype(b, rc->mm)) return -1;
  ry_pvalues *pv = ry_pvalues_new(b);
  if (!pv) return ry_builder_set_error(b, ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm remat: out of memory")), -1;
  for (int i = 0; i < rc->nw; i++) ry_pvalues_set(pv, rc->paths[i], in[1 + i]);
  bool rope = rc->c->rope != RY_ROPE_NONE;
  ry_value none = {0};
  out[0] = block(b, RY_HERE, rc->c, pv, rc->l, in[0], in[1 + rc->nw], rope ? in[2 + rc->nw] : none, rope ? in[3 + rc->nw] : none,
                 ry_scalar(b, RY_I32, 0.0), NULL, NULL, ry_value_shape(b, in[0]).dims[1], NULL, NULL);
  ry_pvalues_free(pv);
  return ry_builder_error(b) ? -1 : 1;
}

static ry_value remat_block(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, int l, ry_value x, ry_value mask,
                            ry_value cs, ry_value sn) {
  char prefix[32];
  int len = snprintf(prefix, sizeof prefix, "blk.%d.", l), n = ry_pvalues_count(w), nw = 0, extra = c->rope != RY_ROPE_NONE ? 2 : 0;
  const char **paths = calloc((size_t)n + 1, sizeof *paths);
  ry_value *args = calloc((size_t)n + 4, sizeof *args);
  ry_type *types = calloc((size_t)n + 4, sizeof *types);
  ry_value out = {0};
  if (!paths || !args || !types) {
    ry_builder_set_error(b, ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm remat: out of memory"));
    goto done;
  }
  args[0] = x;
  for (int i = 0; i < n; i++)
    if (!strncmp(ry_pvalues_path(w, i), prefix, (size_t)len)) {
      paths[nw] = ry_pvalues_path(w, i);
      args[1 + nw++] = ry_pvalues_at(w, i);
    }
  args[1 + nw] = mask;
  if (extra) args[2 + nw] = cs, args[3 + nw] = sn;
  for (int i = 0; i < 2 + nw + extra; i++) types[i] = ry_value_type(b, args[i]);
  remat_ctx rc = {c, l, nw, paths, ry_builder_matmul_dtype(b)};
  ry_graph *g = NULL;
  char name[48];
  snprintf(name, sizeof name, "blk%d_remat", l);
  ry_status s = ry_builder_error(b) ? NULL : ry_trace(name, remat_block_fn, &rc, 2 + nw + extra, types, NULL, &g);
  if (s) ry_builder_set_error(b, s);
  if (g && ry_checkpoint_(b, loc, g, RY_REMAT_SAVE_NOTHING, 2 + nw + extra, args, &out) != 1 && !ry_builder_error(b))
    ry_builder_set_error(b, ry_status_make(RY_ERR_INTERNAL, "lm remat: block %d's checkpoint returned no value", l));
  ry_graph_release(g);
done:
  free(paths);
  free(args);
  free(types);
  return out;
}

/* The decoder blocks on tokens [B, T] at positions pos0 .. pos0+T-1: the
   residual stream x [B, T, E] after the last block (before output_norm).
   With caches (k_cache != NULL) this step's keys and values are written into
   them (k_out, v_out) and the attention reads `window` cache positions;
   without, it reads this step's own keys and values (window = T). */
static ry_value decoder(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens, ry_value pos0,
                        const ry_value *k_cache, const ry_value *v_cache, int64_t window, ry_value *k_out, ry_value *v_out,
                        const unsigned char *remat) {
  ry_shape ts = ry_value_shape(b, tokens);
  int64_t B = ts.dims[0], T = ts.dims[1];
  int64_t Hk = c->n_kv_heads, G = c->n_heads / Hk, E = c->n_embd;
  bool gpt2 = c->arch == RY_LM_GPT2;
  ry_value x = ry_nn_embedding_(b, loc, ry_pvalues_get_(w, loc, "token_embd.weight"), tokens); /* [B, T, E] */
  if (c->arch == RY_LM_GEMMA) x = ry_mul_(b, loc, x, ry_scalar_(b, loc, RY_F32, sqrt((double)E)));
  if (gpt2) { /* learned positions pos0 .. pos0+T-1 (a padded chunk's tail may run past the table: clamped) */
    ry_value ids = ry_add_(b, loc, ry_iota_(b, loc, RY_I32, RY_SHAPE(T), 0), pos0);
    ids = ry_min_(b, loc, ids, ry_scalar_(b, loc, RY_I32, (double)(c->n_ctx_train - 1)));
    ry_value pe = ry_nn_embedding_(b, loc, ry_pvalues_get_(w, loc, "position_embd.weight"), ids);
    x = ry_add_(b, loc, x, ry_broadcast_in_dim_(b, loc, pe, RY_SHAPE(B, T, E), RY_AXES(1, 2)));
  }
  ry_value cs = {0}, sn = {0};
  if (c->rope != RY_ROPE_NONE) {
    /* with caches a chunk starts in the cache and may be padded past its
       end; without (logits, loss) the positions are 0 .. T-1 */
    int64_t rows = k_cache ? ry_value_shape(b, k_cache[0]).dims[2] + T : T;
    rope_tables(b, loc, c, rows, T, pos0, &cs, &sn);
  }
  /* the mask: query t (position pos0 + t) sees cache positions s <= pos0 + t */
  ry_value qpos = ry_add_(b, loc, ry_iota_(b, loc, RY_I32, RY_SHAPE(T, window), 0), pos0);
  ry_value mask = ry_compare_(b, loc, ry_iota_(b, loc, RY_I32, RY_SHAPE(T, window), 1), qpos, RY_LE);
  mask = ry_broadcast_in_dim_(b, loc, mask, RY_SHAPE(B, Hk, T, G, window), RY_AXES(2, 4));
  mask = ry_reshape_(b, loc, mask, RY_SHAPE(B, Hk, T * G, window));
  for (int l = 0; l < c->n_layers && !ry_builder_error(b); l++)
    x = !k_cache && remat && remat[l] ? remat_block(b, loc, c, w, l, x, mask, cs, sn)
                                      : block(b, loc, c, w, l, x, mask, cs, sn, pos0, k_cache, v_cache, window, k_out, v_out);
  return x;
}

/* output_norm and the vocabulary projection of x[..., E] */
static ry_value lm_head(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value x) {
  x = norm(b, loc, c, w, "output_norm", -1, x);
  const char *head = c->tied_embeddings ? "token_embd.weight" : "output.weight";
  return linear_t(b, loc, x, ry_pvalues_get_(w, loc, head));
}

int ry_lm_forward_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens, ry_value pos0,
                   ry_value last, const ry_value *k_cache, const ry_value *v_cache, int64_t window, ry_value *logits,
                   ry_value *k_out, ry_value *v_out) {
  ry_status s = ry_lm_config_check(c);
  if (s) return ry_builder_set_error(b, s);
  ry_shape ts = ry_value_shape(b, tokens), ks = ry_value_shape(b, k_cache[0]);
  if (ry_builder_error(b)) return 0;
  if (ts.rank != 2 || ry_value_dtype(b, tokens) != RY_I32)
    return FAIL(b, loc, "lm forward: tokens must be i32[batch, seq]");
  int64_t B = ts.dims[0], T = ts.dims[1], S = ks.rank == 4 ? ks.dims[2] : 0;
  int64_t Hk = c->n_kv_heads, D = c->head_dim, E = c->n_embd;
  ry_shape want = RY_SHAPE(B, Hk, S, D);
  for (int l = 0; l < c->n_layers; l++)
    if (!ry_shape_equal(ry_value_shape(b, k_cache[l]), want) || !ry_shape_equal(ry_value_shape(b, v_cache[l]), want) ||
        ry_value_dtype(b, k_cache[l]) != RY_F32 || ry_value_dtype(b, v_cache[l]) != RY_F32) {
      char t1[64];
      return FAIL(b, loc, "lm forward: layer %d's caches must be f32[%lld, %lld, S, %lld] like layer 0's %s", l,
                  (long long)B, (long long)Hk, (long long)D, ry_shape_str(ks, t1, sizeof t1));
    }
  if (window < T || window > S)
    return FAIL(b, loc, "lm forward: window %lld must be in [%lld, %lld] (tokens per step, cache length)", (long long)window,
                (long long)T, (long long)S);
  ry_value x = decoder(b, loc, c, w, tokens, pos0, k_cache, v_cache, window, k_out, v_out, NULL);
  /* logits of position `last` only: the vocabulary projection is the largest matmul */
  ry_value zero = ry_scalar_(b, loc, RY_I32, 0.0);
  ry_value st3[3] = {zero, last, zero};
  ry_value xl = ry_reshape_(b, loc, ry_dynamic_slice_(b, loc, x, st3, RY_AXES(B, 1, E)), RY_SHAPE(B, E));
  *logits = lm_head(b, loc, c, w, xl);
  return ry_builder_error(b) ? 0 : 1 + 2 * c->n_layers;
}

/* tokens (and targets) i32[B, T] with 1 <= T <= n_ctx_train; 0 after setting the error */
static int check_sequence(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_value tokens, const char *what) {
  ry_status s = ry_lm_config_check(c);
  if (s) return ry_builder_set_error(b, s), 0;
  ry_shape ts = ry_value_shape(b, tokens);
  if (ry_builder_error(b)) return 0;
  if (ts.rank != 2 || ry_value_dtype(b, tokens) != RY_I32 || ts.dims[1] < 1) {
    char t1[64];
    FAIL(b, loc, "lm logits: %s must be i32[batch, seq], not %s", what, ry_type_str(ry_value_type(b, tokens), t1, sizeof t1));
    return 0;
  }
  if (ts.dims[1] > c->n_ctx_train) {
    FAIL(b, loc, "lm logits: a sequence of %lld tokens is longer than the model's context of %d", (long long)ts.dims[1],
         c->n_ctx_train);
    return 0;
  }
  return 1;
}

static ry_value logits_remat(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens,
                             const unsigned char *remat) {
  if (!check_sequence(b, loc, c, tokens, "tokens")) return (ry_value){0};
  ry_value x = decoder(b, loc, c, w, tokens, ry_scalar_(b, loc, RY_I32, 0.0), NULL, NULL, ry_value_shape(b, tokens).dims[1],
                       NULL, NULL, remat);
  return lm_head(b, loc, c, w, x);
}

ry_value ry_lm_logits_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens) {
  return logits_remat(b, loc, c, w, tokens, NULL);
}

ry_value ry_lm_loss_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens, ry_value targets) {
  return ry_lm_loss_remat_(b, loc, c, w, tokens, targets, NULL);
}

ry_value ry_lm_loss_remat_(ry_builder *b, ry_loc loc, const ry_lm_config *c, ry_pvalues *w, ry_value tokens, ry_value targets,
                           const unsigned char *remat) {
  if (!check_sequence(b, loc, c, tokens, "tokens") || !check_sequence(b, loc, c, targets, "targets")) return (ry_value){0};
  if (!ry_shape_equal(ry_value_shape(b, tokens), ry_value_shape(b, targets))) {
    char t1[64], t2[64];
    FAIL(b, loc, "lm loss: targets %s and tokens %s differ in shape", ry_shape_str(ry_value_shape(b, targets), t1, sizeof t1),
         ry_shape_str(ry_value_shape(b, tokens), t2, sizeof t2));
    return (ry_value){0};
  }
  return ry_nn_cross_entropy_(b, loc, logits_remat(b, loc, c, w, tokens, remat), targets);
}

int ryl_weight_names(const ry_lm_config *c, char (*names)[64], int *ranks, int cap) {
  int n = weight_specs(c, NULL, 0);
  wspec *ws = n > 0 ? calloc((size_t)n, sizeof *ws) : NULL;
  if (!ws) return n > 0 ? -1 : n;
  weight_specs(c, ws, n);
  for (int i = 0; i < n && i < cap; i++) {
    memcpy(names[i], ws[i].name, sizeof names[i]);
    ranks[i] = ws[i].rank;
  }
  free(ws);
  return n;
}
