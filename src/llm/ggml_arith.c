/* ggml's CPU arithmetic, op by op, for models with quantized weights
 * (ry_lm_config.ggml_numerics; docs/QUANT.md "Agreeing with llama.cpp").
 *
 * llama.cpp rounds the activations of every quantized product to 8 bits and
 * keeps its attention operands in f16, so a last-bit difference before
 * such a rounding moves a code now and then, and greedy decoding notices.
 * Each function here computes what ggml's CPU backend computes (as built by
 * llama-cpp-python with AVX2, FMA and F16C), in the same order of float
 * operations, out of ryft's ordinary ops; double (f64) stands in wherever
 * ggml sums in ggml_float or fuses a product into an FMA. */
#include <math.h>
#include <stdlib.h>

#include "lm_internal.h"
#include "nn/fma.h"
#include "ryft/trace.h"

static ry_value fail_oom(ry_builder *b) {
  ry_builder_set_error(b, ry_status_make(RY_ERR_OUT_OF_MEMORY, "lm forward: out of memory"));
  return (ry_value){0};
}

ry_value ryl_round_f16(ry_builder *b, ry_loc loc, ry_value x) {
  return ry_convert_(b, loc, ry_convert_(b, loc, x, RY_F16), RY_F32);
}

/* ggml_compute_forward_rms_norm_f32 and the multiply by g: the squares
 * (f32) summed in double, the mean rounded to f32, 1 / sqrtf(mean + eps),
 * then (x * scale) * g */
ry_value ryl_rms_norm_ggml(ry_builder *b, ry_loc loc, ry_value x, ry_value g, double eps) {
  ry_value ms = ry_mean_(b, loc, ry_convert_(b, loc, ry_mul_(b, loc, x, x), RY_F64), RY_AXES(-1), 1);
  ry_value den = ry_sqrt_(b, loc, ry_add_(b, loc, ry_convert_(b, loc, ms, RY_F32), ry_scalar_(b, loc, RY_F32, eps)));
  ry_value scale = ry_div_(b, loc, ry_scalar_(b, loc, RY_F32, 1.0), den);
  return ry_mul_(b, loc, ry_mul_(b, loc, x, scale), g);
}

/* ggml_rope_cache_init's cos and sin [T, D/2] of positions pos0 .. pos0 +
 * T - 1: the angle of pair 0 is the position, each next pair's the previous
 * one times theta_scale = powf(base, -2 / D), a rounding per product (not
 * pos * base^(-2i/D)), then libm's scalar cosf and sinf. Both are computed
 * here on the host for positions [0, rows) and sliced at pos0: a generated
 * kernel would vectorize them with libmvec, whose results differ from
 * cosf's in the last bit now and then, and a last bit moved before an
 * 8-bit rounding moves a code (the K/V caches must be llama.cpp's, bit for
 * bit). rows must exceed every position the program reads. */
void ryl_rope_tables_ggml(ry_builder *b, ry_loc loc, double base, int head_dim, int64_t rows, int64_t T, ry_value pos0,
                          ry_value *cs, ry_value *sn) {
  int64_t h = head_dim / 2;
  float *t = malloc((size_t)(2 * rows * h) * sizeof *t);
  *cs = *sn = (ry_value){0};
  if (!t) {
    fail_oom(b);
    return;
  }
  float step = powf((float)base, -2.0f / (float)head_dim);
  for (int64_t p = 0; p < rows; p++) {
    float theta = (float)p;
    for (int64_t i = 0; i < h; i++, theta *= step) {
      t[p * h + i] = cosf(theta);
      t[(rows + p) * h + i] = sinf(theta);
    }
  }
  ry_array *ca = NULL, *sa = NULL;
  ry_status s = ry_array_from_host(RY_F32, RY_SHAPE(rows, h), t, &ca);
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(rows, h), t + rows * h, &sa);
  free(t);
  if (s) {
    ry_builder_set_error(b, s);
    ry_array_release(ca);
    return;
  }
  ry_value starts[2] = {pos0, ry_scalar_(b, loc, ry_value_dtype(b, pos0), 0.0)};
  *cs = ry_dynamic_slice_(b, loc, ry_constant_(b, loc, ca), starts, RY_AXES(T, h));
  *sn = ry_dynamic_slice_(b, loc, ry_constant_(b, loc, sa), starts, RY_AXES(T, h));
  ry_array_release(ca);
  ry_array_release(sa);
}

static ry_value f32c(ry_builder *b, ry_loc loc, float v) { return ry_scalar_(b, loc, RY_F32, v); }

/* a * b - c * d (sign < 0) or a * b + c * d as ggml's rope rotation
 * compiles with FMA contraction: fma(a, b, +-(c * d)) */
ry_value ryl_rotate_ggml(ry_builder *b, ry_loc loc, ry_value a, ry_value bb, ry_value c, ry_value d, int sign) {
  ry_value cd = ry_mul_(b, loc, c, d);
  return ryn_fma_f32_rounded_twice(b, loc, a, bb, sign < 0 ? ry_neg_(b, loc, cd) : cd);
}

/* ggml_v_expf (the AVX2 one, which llama.cpp's softmax and SiLU call): n =
 * x log2(e) rounded to an integer by adding 1.5 * 2^23, the remainder b =
 * x - n ln(2) in two parts (hi, lo), a degree-5 polynomial j(b) with
 * e^b ~ 1 + j, and 2^n (1 + j) as fma(j, 2^n, 2^n); every step an f32
 * rounding or an FMA, in ggml's order and with its coefficients. Where
 * |n| > 126 ggml scales in two steps to reach infinities and subnormals;
 * the callers here only need +inf above (SiLU of very negative x is then
 * -0 where ggml gives about -1e-37) and 0 below (softmax weights that f16
 * rounds to 0 anyway, next to a sum of at least 1). */
static ry_value expf_ggml(ry_builder *b, ry_loc loc, ry_value x) {
  const float shift = 0x1.8p23f;
  ry_value z = ryn_fma_f32_rounded_twice(b, loc, x, f32c(b, loc, 0x1.715476p+0f), f32c(b, loc, shift));
  ry_value n = ry_sub_(b, loc, z, f32c(b, loc, shift));
  ry_value neg_n = ry_neg_(b, loc, n); /* fnmadd(n, c, x) = fma(-n, c, x) */
  ry_value r = ryn_fma_f32_rounded_twice(b, loc, neg_n, f32c(b, loc, 0x1.62e4p-1f), x);
  r = ryn_fma_f32_rounded_twice(b, loc, neg_n, f32c(b, loc, 0x1.7f7d1cp-20f), r);
  ry_value k = ry_exp2_(b, loc, n); /* 2^n, exact for an integer n */
  ry_value u = ry_mul_(b, loc, r, r);
  ry_value hi = ryn_fma_f32_rounded_twice(b, loc, f32c(b, loc, 0x1.0e4020p-7f), r, f32c(b, loc, 0x1.573e2ep-5f));
  ry_value lo = ryn_fma_f32_rounded_twice(b, loc, f32c(b, loc, 0x1.555e66p-3f), r, f32c(b, loc, 0x1.fffdb6p-2f));
  ry_value j = ryn_fma_f32_rounded_twice(b, loc, ryn_fma_f32_rounded_twice(b, loc, hi, u, lo), u, ry_mul_(b, loc, f32c(b, loc, 0x1.ffffecp-1f), r));
  ry_value e = ryn_fma_f32_rounded_twice(b, loc, j, k, k);
  e = ry_select_(b, loc, ry_compare_(b, loc, n, f32c(b, loc, 126.0f), RY_GT), f32c(b, loc, INFINITY), e);
  return ry_select_(b, loc, ry_compare_(b, loc, n, f32c(b, loc, -126.0f), RY_LT), f32c(b, loc, 0.0f), e);
}

/* x[..., a : a + n, ...] along axis ax (negative: from the end) */
static ry_value axis_slice(ry_builder *b, ry_loc loc, ry_value x, int ax, int64_t a, int64_t n) {
  ry_shape s = ry_value_shape(b, x);
  if (ax < 0) ax += s.rank;
  ry_axes lo = {s.rank, {0}}, hi = {s.rank, {0}};
  for (int i = 0; i < s.rank; i++) hi.v[i] = s.dims[i];
  lo.v[ax] = a;
  hi.v[ax] = a + n;
  return ry_slice_(b, loc, x, lo, hi, RY_NO_AXES);
}

/* ggml_compute_forward_soft_max_f32 on the last axis (AVX2): e = exp(x -
 * max) by ggml_v_expf, summed eight at a time in f32 (halves, then pairs)
 * and those sums in double, then each e times (float)(1 / sum). Masked
 * scores are -inf and give 0; the axis is padded with zeros to a multiple
 * of 8 as ggml's cache is. */
ry_value ryl_softmax_ggml(ry_builder *b, ry_loc loc, ry_value x) {
  ry_value e = expf_ggml(b, loc, ry_sub_(b, loc, x, ry_max_keepdims_(b, loc, x, RY_AXES(-1), 1)));
  ry_value d = e;
  ry_shape s = ry_value_shape(b, e);
  if (ry_builder_error(b)) return (ry_value){0};
  int r = s.rank;
  int64_t W = s.dims[r - 1], Wp = (W + 7) / 8 * 8;
  if (Wp != W) {
    ry_axes lo = {r, {0}}, hi = {r, {0}}, in = {r, {0}};
    hi.v[r - 1] = Wp - W;
    d = ry_pad_(b, loc, d, f32c(b, loc, 0.0f), lo, hi, in);
  }
  ry_shape g = s;
  g.dims[r - 1] = Wp / 8;
  g.dims[r] = 8;
  g.rank = r + 1;
  d = ry_reshape_(b, loc, d, g);
  ry_value h4 = ry_add_(b, loc, axis_slice(b, loc, d, -1, 4, 4), axis_slice(b, loc, d, -1, 0, 4));
  ry_value h2 = ry_add_(b, loc, axis_slice(b, loc, h4, -1, 0, 2), axis_slice(b, loc, h4, -1, 2, 2));
  ry_value h1 = ry_add_(b, loc, axis_slice(b, loc, h2, -1, 0, 1), axis_slice(b, loc, h2, -1, 1, 1));
  ry_value sum = ry_reduce_(b, loc, ry_convert_(b, loc, h1, RY_F64), RY_SUM, RY_AXES(r - 1, r)); /* the groups, in double */
  ry_shape ks = s;
  ks.dims[r - 1] = 1;
  sum = ry_reshape_(b, loc, sum, ks);
  ry_value inv = ry_convert_(b, loc, ry_div_(b, loc, ry_scalar_(b, loc, RY_F64, 1.0), sum), RY_F32);
  return ry_mul_(b, loc, e, inv);
}

/* ggml_vec_swiglu_f32 (AVX2): x / (1 + ggml_v_expf(-x)) * g */
ry_value ryl_swiglu_ggml(ry_builder *b, ry_loc loc, ry_value x, ry_value g) {
  ry_value silu = ry_div_(b, loc, x, ry_add_(b, loc, f32c(b, loc, 1.0f), expf_ggml(b, loc, ry_neg_(b, loc, x))));
  return ry_mul_(b, loc, silu, g);
}

/* the lanes of a ggml dot product (axis `ax` of a, LN = 32 or 8 of them)
 * added as the kernel's final reduction adds them: for ggml_vec_dot_f16
 * the four accumulators (0+2, 1+3, then the two), then both kernels the
 * eight floats' halves (high + low 128 bits), then vec_dot_f16 two
 * horizontal adds ((0+1) + (2+3)), tinyBLAS's hsum movehl and movehdup
 * ((0+2) + (1+3)). The lane axis is dropped. */
static ry_value lane_tree(ry_builder *b, ry_loc loc, ry_value a, int ax, int tinyblas) {
  if (!tinyblas)
    a = ry_add_(b, loc, ry_add_(b, loc, axis_slice(b, loc, a, ax, 0, 8), axis_slice(b, loc, a, ax, 16, 8)),
                ry_add_(b, loc, axis_slice(b, loc, a, ax, 8, 8), axis_slice(b, loc, a, ax, 24, 8)));
  ry_value t = ry_add_(b, loc, axis_slice(b, loc, a, ax, 4, 4), axis_slice(b, loc, a, ax, 0, 4));
  int p = tinyblas ? 2 : 1, q = tinyblas ? 1 : 2; /* partners of 0 and of the second pair's first */
  ry_value u0 = ry_add_(b, loc, axis_slice(b, loc, t, ax, 0, 1), axis_slice(b, loc, t, ax, p, 1));
  ry_value u1 = ry_add_(b, loc, axis_slice(b, loc, t, ax, q, 1), axis_slice(b, loc, t, ax, 3, 1));
  ry_value r = ry_add_(b, loc, u0, u1);
  ry_shape s = ry_value_shape(b, r);
  for (int i = ax; i + 1 < s.rank; i++) s.dims[i] = s.dims[i + 1];
  s.rank--;
  return ry_reshape_(b, loc, r, s);
}

/* Products this large or larger sum their lanes through batched matrix
 * products; smaller ones (decoding) as one broadcast product reduced over
 * the chunks, which the cpu backend fuses into a single loop. */
#define LANE_DOT_MIN 65536

/* x [B, H, M, K] . y [B, H, N, K] over K -> [B, H, M, N] for operands that
 * hold f16 values (every product is exact in f32), in the order of the
 * product llama.cpp runs: with one query row (n == 1, decoding)
 * ggml_vec_dot_f16: element i goes to lane i % 32 (4 accumulators of 8
 * floats), each lane sums its elements in order, and the lanes meet as
 * GGML_F16_VEC_REDUCE adds them (accumulators 0+2 and 1+3, then the two;
 * the eight floats' halves; then two horizontal adds); with more rows
 * llamafile's tinyBLAS: 8 lanes summed in order, then its hsum (halves,
 * then 0+2 and 1+3, then the two). K is padded with zeros to a multiple of
 * the lanes (ggml's products past the used cache are zeros too). */
ry_value ryl_dot_f16_ggml(ry_builder *b, ry_loc loc, ry_value x, ry_value y, int y_k_first, int tinyblas) {
  ry_shape xs = ry_value_shape(b, x), ys = ry_value_shape(b, y);
  if (ry_builder_error(b)) return (ry_value){0};
  int64_t B = xs.dims[0], H = xs.dims[1], M = xs.dims[2], K = xs.dims[3], N = ys.dims[y_k_first ? 3 : 2];
  int64_t LN = tinyblas ? 8 : 32, Kp = (K + LN - 1) / LN * LN, C = Kp / LN;
  ry_value zero = ry_scalar_(b, loc, RY_F32, 0.0);
  if (Kp != K) {
    x = ry_pad_(b, loc, x, zero, RY_AXES(0, 0, 0, 0), RY_AXES(0, 0, 0, Kp - K), RY_AXES(0, 0, 0, 0));
    y = ry_pad_(b, loc, y, zero, RY_AXES(0, 0, 0, 0), y_k_first ? RY_AXES(0, 0, Kp - K, 0) : RY_AXES(0, 0, 0, Kp - K),
                RY_AXES(0, 0, 0, 0));
  }
  if (M * N * Kp < LANE_DOT_MIN) { /* lanes [B, H, M, N, LN] or [B, H, M, LN, N] */
    ry_value xb, yb, prod;
    if (y_k_first) {
      ry_shape ps = RY_SHAPE(B, H, M, C, LN, N);
      xb = ry_broadcast_in_dim_(b, loc, ry_reshape_(b, loc, x, RY_SHAPE(B, H, M, C, LN)), ps, RY_AXES(0, 1, 2, 3, 4));
      yb = ry_broadcast_in_dim_(b, loc, ry_reshape_(b, loc, y, RY_SHAPE(B, H, C, LN, N)), ps, RY_AXES(0, 1, 3, 4, 5));
      prod = ry_reduce_(b, loc, ry_mul_(b, loc, xb, yb), RY_SUM, RY_AXES(3));
      return lane_tree(b, loc, prod, 3, tinyblas);
    }
    ry_shape ps = RY_SHAPE(B, H, M, N, C, LN);
    xb = ry_broadcast_in_dim_(b, loc, ry_reshape_(b, loc, x, RY_SHAPE(B, H, M, C, LN)), ps, RY_AXES(0, 1, 2, 4, 5));
    yb = ry_broadcast_in_dim_(b, loc, ry_reshape_(b, loc, y, RY_SHAPE(B, H, N, C, LN)), ps, RY_AXES(0, 1, 3, 4, 5));
    prod = ry_reduce_(b, loc, ry_mul_(b, loc, xb, yb), RY_SUM, RY_AXES(4));
    return lane_tree(b, loc, prod, 4, tinyblas);
  }
  /* [B, H, LN, M or N, C]: lane j holds elements j, LN + j, ... */
  if (y_k_first) y = ry_transpose_(b, loc, y, RY_AXES(0, 1, 3, 2));
  x = ry_transpose_(b, loc, ry_reshape_(b, loc, x, RY_SHAPE(B, H, M, C, LN)), RY_AXES(0, 1, 4, 2, 3));
  y = ry_transpose_(b, loc, ry_reshape_(b, loc, y, RY_SHAPE(B, H, N, C, LN)), RY_AXES(0, 1, 4, 2, 3));
  ry_dot_dims d = {RY_AXES(0, 1, 2), RY_AXES(0, 1, 2), RY_AXES(4), RY_AXES(4)};
  return lane_tree(b, loc, ry_dot_general_(b, loc, x, y, d, RY_F32), 2, tinyblas); /* lanes [B, H, LN, M, N] */
}
