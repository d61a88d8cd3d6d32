/* The expansion of the dequantize op (ryft/gguf.h) into integer ops: what
 * the StableHLO emitter writes for it, so that any PJRT plugin runs it.
 *
 * Every field of a block (a 2-8 bit code, a 4-6 bit sub-scale) is
 *   v = (((B[i1] >> s1) & m1) | (((B[i2] >> s2) & m2) << t2)) - off
 * over the block's bytes B, optionally sign-extended from 8 bits. The
 * constants (i1, s1, ..) are per-field tables made here from the layouts in
 * src/io/quant.c; a field is one `take` with constant indices, shifts and
 * masks. The f16 scales are two bytes joined and bitcast. The float steps
 * are those of ggml's reference dequantizers, in the same order (a product
 * and then a sum, never fused), so the result is bit-identical to
 * ry_ggml_dequantize on a backend that does not contract a*b+c into an FMA.
 * docs/QUANT.md describes the formats and the plan for a fused primitive. */
#include "nn_internal.h"
#include "ryft/gguf.h"
#include "dequant.h"

#define MAXL 256 /* fields per block: at most the block size */

typedef struct field {
  int n;
  int32_t i1[MAXL], s1[MAXL], m1[MAXL], i2[MAXL], s2[MAXL], m2[MAXL], t2[MAXL];
  int off, sx; /* subtracted after; sign-extend an 8-bit value first */
} field;

static void set(field *f, int k, int i1, int s1, int m1, int i2, int s2, int m2, int t2) {
  f->i1[k] = i1, f->s1[k] = s1, f->m1[k] = m1, f->i2[k] = i2, f->s2[k] = s2, f->m2[k] = m2, f->t2[k] = t2;
}

static ry_value consti32(ry_builder *b, ry_loc loc, int n, const int32_t *v) {
  ry_array *a = NULL;
  ry_status s = ry_array_from_host(RY_I32, RY_SHAPE(n), v, &a);
  if (s) {
    ry_builder_set_error(b, s);
    return NONE;
  }
  ry_value c = ry_constant_(b, loc, a);
  ry_array_release(a);
  return c;
}

static bool any_nonzero(int n, const int32_t *v) {
  for (int i = 0; i < n; i++)
    if (v[i]) return true;
  return false;
}

/* the field's values: i32[..., nb, n] from the block bytes B i32[..., nb, ts] */
static ry_value extract(ry_builder *b, ry_loc loc, ry_value B, const field *f) {
  int axis = SHAPE(B).rank - 1;
  ry_value v = ry_take_(b, loc, B, consti32(b, loc, f->n, f->i1), axis);
  if (any_nonzero(f->n, f->s1)) v = ry_shift_right_logical_(b, loc, v, consti32(b, loc, f->n, f->s1));
  v = ry_and_(b, loc, v, consti32(b, loc, f->n, f->m1));
  if (any_nonzero(f->n, f->m2)) {
    ry_value h = ry_take_(b, loc, B, consti32(b, loc, f->n, f->i2), axis);
    h = ry_shift_right_logical_(b, loc, h, consti32(b, loc, f->n, f->s2));
    h = ry_and_(b, loc, h, consti32(b, loc, f->n, f->m2));
    v = ry_or_(b, loc, v, ry_shift_left_(b, loc, h, consti32(b, loc, f->n, f->t2)));
  }
  if (f->sx) /* v - ((v >> 7) << 8) */
    v = SUB(v, ry_shift_left_(b, loc, ry_shift_right_logical_(b, loc, v, C(v, 7)), C(v, 8)));
  if (f->off) v = SUB(v, C(v, f->off));
  return v;
}

/* the f16 at byte o of each block, as f32[..., nb, 1] */
static ry_value f16_at(ry_builder *b, ry_loc loc, ry_value B, int o) {
  field f = {.n = 1};
  set(&f, 0, o, 0, 255, o + 1, 0, 255, 8);
  ry_value v = extract(b, loc, B, &f); /* 0..65535 */
  /* into i16's range without relying on a wrapping convert */
  v = SUB(v, ry_shift_left_(b, loc, ry_shift_right_logical_(b, loc, v, C(v, 15)), C(v, 16)));
  v = ry_bitcast_convert_(b, loc, ry_convert_(b, loc, v, RY_I16), RY_F16);
  return ry_convert_(b, loc, v, RY_F32);
}

/* per-group values g[..., nb, G] spread to the elements (group e / (bs / G)) */
static ry_value spread(ry_builder *b, ry_loc loc, ry_value g, int bs) {
  int G = (int)SHAPE(g).dims[SHAPE(g).rank - 1];
  if (G == 1) return g; /* broadcasts */
  int32_t idx[MAXL];
  for (int e = 0; e < bs; e++) idx[e] = e / (bs / G);
  return ry_take_(b, loc, g, consti32(b, loc, bs, idx), SHAPE(g).rank - 1);
}

/* the 6-bit scales (mins = 0) or mins (mins = 1) of Q4_K/Q5_K, at byte 4 */
static void k4_scales(field *f, int mins) {
  f->n = 8;
  for (int j = 0; j < 8; j++) {
    if (j < 4) set(f, j, 4 + j + 4 * mins, 0, 63, 0, 0, 0, 0);
    else if (!mins) set(f, j, 4 + j + 4, 0, 15, 4 + j - 4, 6, 3, 4);
    else set(f, j, 4 + j + 4, 4, 15, 4 + j, 6, 3, 4);
  }
}

ry_value ryn_dequantize_expand(ry_builder *b, ry_loc loc, ry_value blocks, int type) {
  if (!nn_ok(b)) return NONE;
  const char *name = ry_ggml_type_name(type);
  ry_type t = ry_value_type(b, blocks);
  int64_t bs = ry_ggml_block_size(type), ts = (int64_t)ry_ggml_type_size(type);
  if (!name) {
    nn_failf(b, loc, RY_ERR_UNSUPPORTED, "dequantize", "unknown ggml type %d", type);
    return NONE;
  }
  if (t.dtype != RY_U8 || t.shape.rank < 1 || t.shape.dims[t.shape.rank - 1] % ts) {
    char ty[64];
    nn_fail_shape(b, loc, "dequantize", "%s blocks are u8[..., k*%lld], not %s", name, (long long)ts,
                  ry_type_str(t, ty, sizeof ty));
    return NONE;
  }
  int r = t.shape.rank;
  int64_t nb = t.shape.dims[r - 1] / ts;
  ry_shape blk = t.shape, out = t.shape;
  blk.rank = r + 1;
  blk.dims[r - 1] = nb;
  blk.dims[r] = ts;
  out.dims[r - 1] = nb * bs;
  if (r + 1 > RY_MAX_RANK) {
    nn_fail_shape(b, loc, "dequantize", "rank %d is too high", r);
    return NONE;
  }
  ry_value B = ry_convert_(b, loc, ry_reshape_(b, loc, blocks, blk), RY_I32);
  field qf = {0}, sf = {0}, *q = &qf, *s = &sf; /* 7 KB each */
  ry_value y = NONE, A = NONE, Cv = NONE; /* y = A * q + Cv */
  q->n = (int)bs;
  switch (type) {
  case RY_GGML_F32:
  case RY_GGML_BF16: { /* bits into u32, bitcast */
    int n = type == RY_GGML_F32 ? 4 : 2, sh = type == RY_GGML_F32 ? 0 : 16;
    ry_value U = ry_convert_(b, loc, B, RY_U32);
    /* byte k of every element, shifted into place */
    ry_value acc = NONE;
    for (int k = 0; k < n; k++) {
      int32_t idx[1] = {k};
      ry_value v = ry_take_(b, loc, U, consti32(b, loc, 1, idx), r);
      v = ry_shift_left_(b, loc, v, C(v, 8 * k + sh));
      acc = k ? ry_or_(b, loc, acc, v) : v;
    }
    y = ry_bitcast_convert_(b, loc, acc, RY_F32);
    break;
  }
  case RY_GGML_F16:
    y = f16_at(b, loc, B, 0);
    break;
  case RY_GGML_Q4_0:
  case RY_GGML_Q4_1: {
    int o = type == RY_GGML_Q4_0 ? 2 : 4;
    for (int e = 0; e < 32; e++) set(q, e, o + e % 16, 4 * (e / 16), 15, 0, 0, 0, 0);
    q->off = type == RY_GGML_Q4_0 ? 8 : 0;
    A = f16_at(b, loc, B, 0);
    if (type == RY_GGML_Q4_1) Cv = f16_at(b, loc, B, 2);
    break;
  }
  case RY_GGML_Q5_0:
  case RY_GGML_Q5_1: {
    int h = type == RY_GGML_Q5_0 ? 2 : 4;
    for (int e = 0; e < 32; e++) set(q, e, h + 4 + e % 16, 4 * (e / 16), 15, h + e / 8, e % 8, 1, 4);
    q->off = type == RY_GGML_Q5_0 ? 16 : 0;
    A = f16_at(b, loc, B, 0);
    if (type == RY_GGML_Q5_1) Cv = f16_at(b, loc, B, 2);
    break;
  }
  case RY_GGML_Q8_0:
    for (int e = 0; e < 32; e++) set(q, e, 2 + e, 0, 255, 0, 0, 0, 0);
    q->sx = 1;
    A = f16_at(b, loc, B, 0);
    break;
  case RY_GGML_Q2_K: {
    for (int e = 0; e < 256; e++) set(q, e, 16 + (e / 128) * 32 + e % 32, 2 * ((e % 128) / 32), 3, 0, 0, 0, 0);
    s->n = 16;
    for (int g = 0; g < 16; g++) set(s, g, g, 0, 15, 0, 0, 0, 0);
    A = MUL(f16_at(b, loc, B, 80), ry_convert_(b, loc, extract(b, loc, B, s), RY_F32));
    for (int g = 0; g < 16; g++) set(s, g, g, 4, 15, 0, 0, 0, 0);
    Cv = ry_neg_(b, loc, MUL(f16_at(b, loc, B, 82), ry_convert_(b, loc, extract(b, loc, B, s), RY_F32)));
    break;
  }
  case RY_GGML_Q3_K: {
    for (int e = 0; e < 256; e++) {
      int half = e / 128, sub = (e % 128) / 32, l = e % 32;
      set(q, e, 32 + half * 32 + l, 2 * sub, 3, l, half * 4 + sub, 1, 2);
    }
    q->off = 4;
    s->n = 16;
    for (int k = 0; k < 16; k++) set(s, k, 96 + k % 8, 4 * (k / 8), 15, 104 + k % 4, 2 * (k / 4), 3, 4);
    s->off = 32;
    A = MUL(f16_at(b, loc, B, 108), ry_convert_(b, loc, extract(b, loc, B, s), RY_F32));
    break;
  }
  case RY_GGML_Q4_K:
  case RY_GGML_Q5_K: {
    for (int e = 0; e < 256; e++) {
      int j = e / 32, l = e % 32;
      if (type == RY_GGML_Q4_K) set(q, e, 16 + (j / 2) * 32 + l, 4 * (j % 2), 15, 0, 0, 0, 0);
      else set(q, e, 48 + (j / 2) * 32 + l, 4 * (j % 2), 15, 16 + l, j, 1, 4);
    }
    k4_scales(s, 0);
    A = MUL(f16_at(b, loc, B, 0), ry_convert_(b, loc, extract(b, loc, B, s), RY_F32));
    k4_scales(s, 1);
    Cv = ry_neg_(b, loc, MUL(f16_at(b, loc, B, 2), ry_convert_(b, loc, extract(b, loc, B, s), RY_F32)));
    break;
  }
  case RY_GGML_Q6_K: {
    for (int e = 0; e < 256; e++) {
      int half = e / 128, rr = e % 128;
      set(q, e, half * 64 + rr % 64, 4 * (rr / 64), 15, 128 + half * 32 + rr % 32, 2 * (rr / 32), 3, 4);
    }
    q->off = 32;
    s->n = 16;
    for (int g = 0; g < 16; g++) set(s, g, 192 + g, 0, 255, 0, 0, 0, 0);
    s->sx = 1;
    A = MUL(f16_at(b, loc, B, 208), ry_convert_(b, loc, extract(b, loc, B, s), RY_F32));
    break;
  }
  default:
    nn_failf(b, loc, RY_ERR_UNSUPPORTED, "dequantize", "ggml type %s is not supported", name);
  }
  if (nn_ok(b) && !ry_value_ok(y)) {
    y = MUL(spread(b, loc, A, (int)bs), ry_convert_(b, loc, extract(b, loc, B, q), RY_F32));
    if (ry_value_ok(Cv)) y = ADD(y, spread(b, loc, Cv, (int)bs));
  }
  if (!nn_ok(b)) return NONE;
  return ry_reshape_(b, loc, y, out);
}
