/* ggml's tensor types: one table of block sizes, and the block formats'
 * dequantization and quantization (ryft/gguf.h).
 *
 * Block layouts are ggml's (ggml-common.h): every quantized block starts or
 * ends with f16 scales; Q4/Q5 pack two 4-bit values per byte (element j in
 * the low nibble of byte j, element j+16 in the high one), Q5 keeps the
 * fifth bits in a u32; the K-quants hold 256 elements in 16 or 8 sub-blocks
 * with 4- or 6-bit sub-scales.
 *
 * Bit-identical results: each float operation is written as its own
 * statement, in the order of ggml's reference code and the gguf package,
 * so that no compiler may contract a multiply and an add into an FMA (GCC
 * does not contract in ISO C mode; clang contracts only within one
 * expression). */
#include <math.h>
#include <string.h>

#include "gguf_internal.h"

#define QK_K 256

static const struct {
  const char *name;
  int blck;
  int size;
} k_types[RY_GGML_TYPE_LIMIT] = {
    [RY_GGML_F32] = {"F32", 1, 4},
    [RY_GGML_F16] = {"F16", 1, 2},
    [RY_GGML_Q4_0] = {"Q4_0", 32, 2 + 16},
    [RY_GGML_Q4_1] = {"Q4_1", 32, 2 + 2 + 16},
    [RY_GGML_Q5_0] = {"Q5_0", 32, 2 + 4 + 16},
    [RY_GGML_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16},
    [RY_GGML_Q8_0] = {"Q8_0", 32, 2 + 32},
    [RY_GGML_Q8_1] = {"Q8_1", 32, 4 + 4 + 32},
    [RY_GGML_Q2_K] = {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    [RY_GGML_Q3_K] = {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    [RY_GGML_Q4_K] = {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    [RY_GGML_Q5_K] = {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    [RY_GGML_Q6_K] = {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    [RY_GGML_Q8_K] = {"Q8_K", QK_K, 4 + QK_K + QK_K / 8},
    [RY_GGML_IQ2_XXS] = {"IQ2_XXS", QK_K, 2 + QK_K / 4},
    [RY_GGML_IQ2_XS] = {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32},
    [RY_GGML_IQ3_XXS] = {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8},
    [RY_GGML_IQ1_S] = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16},
    [RY_GGML_IQ4_NL] = {"IQ4_NL", 32, 2 + 16},
    [RY_GGML_IQ3_S] = {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    [RY_GGML_IQ2_S] = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16},
    [RY_GGML_IQ4_XS] = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    [RY_GGML_I8] = {"I8", 1, 1},
    [RY_GGML_I16] = {"I16", 1, 2},
    [RY_GGML_I32] = {"I32", 1, 4},
    [RY_GGML_I64] = {"I64", 1, 8},
    [RY_GGML_F64] = {"F64", 1, 8},
    [RY_GGML_IQ1_M] = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    [RY_GGML_BF16] = {"BF16", 1, 2},
    [RY_GGML_TQ1_0] = {"TQ1_0", QK_K, 2 + 4 * 13},
    [RY_GGML_TQ2_0] = {"TQ2_0", QK_K, 2 + 64},
    [RY_GGML_MXFP4] = {"MXFP4", 32, 1 + 16},
};

const char *ry_ggml_type_name(int type) {
  return type >= 0 && type < RY_GGML_TYPE_LIMIT ? k_types[type].name : NULL;
}
int64_t ry_ggml_block_size(int type) { return ry_ggml_type_name(type) ? k_types[type].blck : 0; }
size_t ry_ggml_type_size(int type) { return ry_ggml_type_name(type) ? (size_t)k_types[type].size : 0; }

ry_status ry_ggml_row_size(int type, int64_t n, size_t *out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_ggml_row_size: NULL argument");
  if (!ry_ggml_type_name(type)) return ry__err(RY_ERR_UNSUPPORTED, "unknown ggml type %d", type);
  int64_t bs = k_types[type].blck;
  if (n < 0 || n % bs)
    return ry__err(RY_ERR_SHAPE, "%lld elements are not a whole number of %s blocks of %lld", (long long)n,
                   k_types[type].name, (long long)bs);
  uint64_t blocks = (uint64_t)(n / bs);
  if (blocks > SIZE_MAX / (size_t)k_types[type].size)
    return ry__err(RY_ERR_SHAPE, "%lld %s elements overflow a size", (long long)n, k_types[type].name);
  *out = (size_t)blocks * (size_t)k_types[type].size;
  return NULL;
}

/* ---- little helpers ---------------------------------------------------------- */

static float f16(const uint8_t *p) { return ry__f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static void put_f16(uint8_t *p, float f) {
  uint16_t h = ry__f32_to_f16(f);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}
static uint32_t u32le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* d*q + m in two roundings */
static inline float mad2(float d, float q, float m) {
  float p = d * q;
  return p + m;
}

/* ---- dequantization ------------------------------------------------------------- */

static void dq_q4_0(const uint8_t *b, float *y) {
  float d = f16(b);
  const uint8_t *qs = b + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((qs[j] & 0xF) - 8) * d;
    y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void dq_q4_1(const uint8_t *b, float *y) {
  float d = f16(b), m = f16(b + 2);
  const uint8_t *qs = b + 4;
  for (int j = 0; j < 16; j++) {
    y[j] = mad2(d, (float)(qs[j] & 0xF), m);
    y[j + 16] = mad2(d, (float)(qs[j] >> 4), m);
  }
}

static void dq_q5_0(const uint8_t *b, float *y) {
  float d = f16(b);
  uint32_t qh = u32le(b + 2);
  const uint8_t *qs = b + 6;
  for (int j = 0; j < 16; j++) {
    int x0 = (int)((qs[j] & 0xF) | ((qh >> j) & 1) << 4) - 16;
    int x1 = (int)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16;
    y[j] = (float)x0 * d;
    y[j + 16] = (float)x1 * d;
  }
}

static void dq_q5_1(const uint8_t *b, float *y) {
  float d = f16(b), m = f16(b + 2);
  uint32_t qh = u32le(b + 4);
  const uint8_t *qs = b + 8;
  for (int j = 0; j < 16; j++) {
    unsigned x0 = (qs[j] & 0xFu) | ((qh >> j) & 1) << 4;
    unsigned x1 = (qs[j] >> 4u) | ((qh >> (j + 16)) & 1) << 4;
    y[j] = mad2(d, (float)x0, m);
    y[j + 16] = mad2(d, (float)x1, m);
  }
}

static void dq_q8_0(const uint8_t *b, float *y) {
  float d = f16(b);
  for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void dq_q2_k(const uint8_t *b, float *y) {
  const uint8_t *sc = b, *qs = b + 16;
  float d = f16(b + 80), dmin = f16(b + 82);
  for (int e = 0; e < QK_K; e++) {
    int half = e / 128, s = (e % 128) / 32, l = e % 32, g = e / 16;
    float dl = d * (float)(sc[g] & 0xF), ml = dmin * (float)(sc[g] >> 4);
    float q = (float)((qs[half * 32 + l] >> (2 * s)) & 3);
    float p = dl * q;
    y[e] = p - ml;
  }
}

static void dq_q3_k(const uint8_t *b, float *y) {
  const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
  float d = f16(b + 108);
  float dl[16];
  for (int k = 0; k < 16; k++) {
    int lo = (sc[k % 8] >> (4 * (k / 8))) & 0xF, hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
    dl[k] = d * (float)((lo | hi << 4) - 32);
  }
  for (int e = 0; e < QK_K; e++) {
    int half = e / 128, s = (e % 128) / 32, l = e % 32;
    int q = (qs[half * 32 + l] >> (2 * s)) & 3;
    int h = (hm[l] >> (half * 4 + s)) & 1;
    y[e] = dl[e / 16] * (float)(q - ((h ^ 1) << 2));
  }
}

/* the 6-bit sub-block scales and mins of Q4_K and Q5_K */
static void scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

static void dq_q4_k(const uint8_t *b, float *y) {
  float d = f16(b), dmin = f16(b + 2);
  const uint8_t *scales = b + 4, *qs = b + 16;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    scale_min_k4(scales, j, &sc, &m);
    float ds = d * (float)sc, dm = dmin * (float)m;
    for (int l = 0; l < 32; l++) {
      float q = (float)((qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0xF);
      float p = ds * q;
      y[j * 32 + l] = p - dm;
    }
  }
}

static void dq_q5_k(const uint8_t *b, float *y) {
  float d = f16(b), dmin = f16(b + 2);
  const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + 48;
  for (int j = 0; j < 8; j++) {
    int sc, m;
    scale_min_k4(scales, j, &sc, &m);
    float ds = d * (float)sc, dm = dmin * (float)m;
    for (int l = 0; l < 32; l++) {
      int q = ((qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0xF) | ((qh[l] >> j) & 1) << 4;
      float p = ds * (float)q;
      y[j * 32 + l] = p - dm;
    }
  }
}

static void dq_q6_k(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t *sc = (const int8_t *)(b + 192);
  float d = f16(b + 208);
  for (int e = 0; e < QK_K; e++) {
    int half = e / 128, r = e % 128;
    int lo = (ql[half * 64 + r % 64] >> (4 * (r / 64))) & 0xF;
    int hi = (qh[half * 32 + r % 32] >> (2 * (r / 32))) & 3;
    float ds = d * (float)sc[e / 16];
    y[e] = ds * (float)((lo | hi << 4) - 32);
  }
}

ry_status ry_ggml_dequantize(int type, const void *src, float *dst, int64_t n) {
  size_t bytes;
  ry_status s = ry_ggml_row_size(type, n, &bytes);
  if (s) return s;
  if (n && (!src || !dst)) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_ggml_dequantize: NULL argument");
  const uint8_t *b = src;
  void (*fn)(const uint8_t *, float *) = NULL;
  switch (type) {
  case RY_GGML_F32:
    if (n) memcpy(dst, src, bytes);
    return NULL;
  case RY_GGML_F16:
    for (int64_t i = 0; i < n; i++) dst[i] = f16(b + 2 * i);
    return NULL;
  case RY_GGML_BF16:
    for (int64_t i = 0; i < n; i++) dst[i] = ry__bf16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
    return NULL;
  case RY_GGML_Q4_0: fn = dq_q4_0; break;
  case RY_GGML_Q4_1: fn = dq_q4_1; break;
  case RY_GGML_Q5_0: fn = dq_q5_0; break;
  case RY_GGML_Q5_1: fn = dq_q5_1; break;
  case RY_GGML_Q8_0: fn = dq_q8_0; break;
  case RY_GGML_Q2_K: fn = dq_q2_k; break;
  case RY_GGML_Q3_K: fn = dq_q3_k; break;
  case RY_GGML_Q4_K: fn = dq_q4_k; break;
  case RY_GGML_Q5_K: fn = dq_q5_k; break;
  case RY_GGML_Q6_K: fn = dq_q6_k; break;
  default: return ry__err(RY_ERR_UNSUPPORTED, "dequantizing ggml type %s is not supported", k_types[type].name);
  }
  int64_t bs = k_types[type].blck, ts = k_types[type].size;
  for (int64_t i = 0; i < n / bs; i++) fn(b + i * ts, dst + i * bs);
  return NULL;
}

/* ---- quantization (gguf-py's quants.py, which matches ggml's *_ref) ------------ */

/* the block's element of largest magnitude, the first of equals */
static float absmax_signed(const float *x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (fabsf(x[j]) > amax) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  return max;
}

static void minmax(const float *x, float *mn, float *mx) {
  *mn = x[0];
  *mx = x[0];
  for (int j = 1; j < 32; j++) {
    if (x[j] < *mn) *mn = x[j];
    if (x[j] > *mx) *mx = x[j];
  }
}

/* trunc(x*id + off) clipped to [0, top]: the 4/5-bit code of one element */
static int code(float x, float id, float off, int top) {
  float p = x * id;
  float t = truncf(p + off);
  return t >= (float)top ? top : t > 0 ? (int)t : 0; /* NaN: 0 */
}

static int code_min(float x, float mn, float id, int top) {
  float dx = x - mn;
  return code(dx, id, 0.5f, top);
}

static void q_q4_0(const float *x, uint8_t *b) {
  float d = absmax_signed(x) / -8.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(b, d);
  for (int j = 0; j < 16; j++)
    b[2 + j] = (uint8_t)(code(x[j], id, 8.5f, 15) | code(x[j + 16], id, 8.5f, 15) << 4);
}

static void q_q4_1(const float *x, uint8_t *b) {
  float mn, mx;
  minmax(x, &mn, &mx);
  float d = (mx - mn) / 15.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(b, d);
  put_f16(b + 2, mn);
  for (int j = 0; j < 16; j++)
    b[4 + j] = (uint8_t)(code_min(x[j], mn, id, 15) | code_min(x[j + 16], mn, id, 15) << 4);
}

static void pack5(const int *q, uint8_t *qh, uint8_t *qs) {
  uint32_t h = 0;
  for (int j = 0; j < 32; j++) h |= (uint32_t)(q[j] >> 4) << j;
  for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
  for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0xF) | (q[j + 16] & 0xF) << 4);
}

static void q_q5_0(const float *x, uint8_t *b) {
  float d = absmax_signed(x) / -16.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  int q[32];
  for (int j = 0; j < 32; j++) q[j] = code(x[j], id, 16.5f, 31);
  put_f16(b, d);
  pack5(q, b + 2, b + 6);
}

static void q_q5_1(const float *x, uint8_t *b) {
  float mn, mx;
  minmax(x, &mn, &mx);
  float d = (mx - mn) / 31.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  int q[32];
  for (int j = 0; j < 32; j++) q[j] = code_min(x[j], mn, id, 31);
  put_f16(b, d);
  put_f16(b + 2, mn);
  pack5(q, b + 4, b + 8);
}

static void q_q8_0(const float *x, uint8_t *b) {
  float amax = 0;
  for (int j = 0; j < 32; j++)
    if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
  float d = amax / 127.0f;
  float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(b, d);
  for (int j = 0; j < 32; j++) {
    float p = x[j] * id;
    float r = roundf(p);
    int q = r >= 127.0f ? 127 : r <= -128.0f ? -128 : r == r ? (int)r : 0;
    b[2 + j] = (uint8_t)(int8_t)q;
  }
}

ry_status ry_ggml_quantize(int type, const float *src, void *dst, int64_t n) {
  size_t bytes;
  ry_status s = ry_ggml_row_size(type, n, &bytes);
  if (s) return s;
  if (n && (!src || !dst)) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_ggml_quantize: NULL argument");
  uint8_t *b = dst;
  void (*fn)(const float *, uint8_t *) = NULL;
  switch (type) {
  case RY_GGML_F32:
    if (n) memcpy(dst, src, bytes);
    return NULL;
  case RY_GGML_F16:
    for (int64_t i = 0; i < n; i++) put_f16(b + 2 * i, src[i]);
    return NULL;
  case RY_GGML_BF16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t h = ry__f32_to_bf16(src[i]);
      b[2 * i] = (uint8_t)h;
      b[2 * i + 1] = (uint8_t)(h >> 8);
    }
    return NULL;
  case RY_GGML_Q4_0: fn = q_q4_0; break;
  case RY_GGML_Q4_1: fn = q_q4_1; break;
  case RY_GGML_Q5_0: fn = q_q5_0; break;
  case RY_GGML_Q5_1: fn = q_q5_1; break;
  case RY_GGML_Q8_0: fn = q_q8_0; break;
  default: return ry__err(RY_ERR_UNSUPPORTED, "quantizing to ggml type %s is not supported", k_types[type].name);
  }
  int64_t bs = k_types[type].blck, ts = k_types[type].size;
  for (int64_t i = 0; i < n / bs; i++) fn(src + i * bs, b + i * ts);
  return NULL;
}
