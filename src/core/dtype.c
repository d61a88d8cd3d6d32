/* Dtypes: names, sizes, JAX type promotion, half-precision conversion and
 * typed element loads/stores used by every backend that touches raw data. */
#include <math.h>

#include "internal.h"

static const struct {
  const char *name;
  size_t size;
} g_dtypes[RY_DTYPE_COUNT] = {
    [RY_BOOL] = {"bool", 1}, [RY_I8] = {"i8", 1},   [RY_I16] = {"i16", 2},   [RY_I32] = {"i32", 4},
    [RY_I64] = {"i64", 8},   [RY_U8] = {"u8", 1},   [RY_U16] = {"u16", 2}, [RY_U32] = {"u32", 4}, [RY_U64] = {"u64", 8},   [RY_F16] = {"f16", 2},
    [RY_BF16] = {"bf16", 2}, [RY_F32] = {"f32", 4}, [RY_F64] = {"f64", 8},
};

static bool valid(ry_dtype t) { return (int)t >= 0 && t < RY_DTYPE_COUNT; }

const char *ry_dtype_name(ry_dtype t) { return valid(t) ? g_dtypes[t].name : "?"; }
size_t ry_dtype_size(ry_dtype t) { return valid(t) ? g_dtypes[t].size : 0; }

int ry_dtype_from_name(const char *name, ry_dtype *out) {
  for (int i = 0; i < RY_DTYPE_COUNT; i++)
    if (name && strcmp(name, g_dtypes[i].name) == 0) {
      *out = (ry_dtype)i;
      return 1;
    }
  return 0;
}

int ry_dtype_is_float(ry_dtype t) { return t == RY_F16 || t == RY_BF16 || t == RY_F32 || t == RY_F64; }
int ry_dtype_is_int(ry_dtype t) { return t == RY_I8 || t == RY_I16 || t == RY_I32 || t == RY_I64 || t == RY_U8 || t == RY_U16 || t == RY_U32 ||
                                   t == RY_U64; }
int ry_dtype_is_signed(ry_dtype t) { return ry_dtype_is_float(t) || t == RY_I8 || t == RY_I16 || t == RY_I32 || t == RY_I64; }

static ry_dtype signed_of_bits(size_t bits) {
  return bits <= 8 ? RY_I8 : bits <= 16 ? RY_I16 : bits <= 32 ? RY_I32 : RY_I64;
}

ry_dtype ry_promote(ry_dtype a, ry_dtype b) {
  if (a == b) return a;
  if (a == RY_BOOL) return b;
  if (b == RY_BOOL) return a;
  bool fa = ry_dtype_is_float(a), fb = ry_dtype_is_float(b);
  if (fa && fb) {
    if ((a == RY_F16 && b == RY_BF16) || (a == RY_BF16 && b == RY_F16)) return RY_F32;
    return ry_dtype_size(a) >= ry_dtype_size(b) ? a : b;
  }
  if (fa) return a;
  if (fb) return b;
  bool sa = ry_dtype_is_signed(a), sb = ry_dtype_is_signed(b);
  size_t ba = 8 * ry_dtype_size(a), bb = 8 * ry_dtype_size(b);
  if (sa == sb) return ba >= bb ? a : b;
  size_t sbits = sa ? ba : bb, ubits = sa ? bb : ba;
  if (ubits >= 64) return RY_F64; /* no signed type holds u64: JAX's lattice joins them at the float */
  return signed_of_bits(sbits > ubits ? sbits : 2 * ubits);
}

/* ---- half precision ---- */

float ry__f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal */
      float f = ldexpf((float)man, -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t ry__f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) /* inf or nan */
    return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
  if (ax < 0x38800000u) {                                  /* below smallest normal */
    float a;
    memcpy(&a, &ax, 4);
    /* value in units of 2^-24, round to nearest even */
    float q = a * 16777216.0f;
    float r = nearbyintf(q); /* default rounding mode is nearest-even */
    return (uint16_t)(sign | (uint16_t)r);
  }
  uint32_t mant = ax & 0x7fffff, e = (ax >> 23) - 112;
  uint32_t h = (e << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

float ry__bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t ry__f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  uint32_t lsb = (x >> 16) & 1;
  x += 0x7fffu + lsb;
  return (uint16_t)(x >> 16);
}

/* ---- typed loads and stores ---- */

double ry__load_f64(ry_dtype t, const void *data, int64_t i) {
  switch (t) {
  case RY_BOOL: return ((const uint8_t *)data)[i] != 0;
  case RY_I8: return ((const int8_t *)data)[i];
  case RY_I16: return ((const int16_t *)data)[i];
  case RY_I32: return ((const int32_t *)data)[i];
  case RY_I64: return (double)((const int64_t *)data)[i];
  case RY_U8: return ((const uint8_t *)data)[i];
  case RY_U16: return ((const uint16_t *)data)[i];
  case RY_U32: return ((const uint32_t *)data)[i];
  case RY_U64: return (double)((const uint64_t *)data)[i];
  case RY_F16: return ry__f16_to_f32(((const uint16_t *)data)[i]);
  case RY_BF16: return ry__bf16_to_f32(((const uint16_t *)data)[i]);
  case RY_F32: return ((const float *)data)[i];
  case RY_F64: return ((const double *)data)[i];
  default: return NAN;
  }
}

int64_t ry__load_i64(ry_dtype t, const void *data, int64_t i) {
  switch (t) {
  case RY_BOOL: return ((const uint8_t *)data)[i] != 0;
  case RY_I8: return ((const int8_t *)data)[i];
  case RY_I16: return ((const int16_t *)data)[i];
  case RY_I32: return ((const int32_t *)data)[i];
  case RY_I64: return ((const int64_t *)data)[i];
  case RY_U8: return ((const uint8_t *)data)[i];
  case RY_U16: return ((const uint16_t *)data)[i];
  case RY_U32: return ((const uint32_t *)data)[i];
  case RY_U64: return (int64_t)((const uint64_t *)data)[i]; /* the bits: >= 2^63 loads negative */
  default: {
    double d = ry__load_f64(t, data, i);
    if (isnan(d)) return 0;
    if (d >= 9.2233720368547758e18) return INT64_MAX;
    if (d <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)d;
  }
  }
}

static int64_t sat(double d, double lo, double hi) {
  if (isnan(d)) return 0;
  if (d <= lo) return (int64_t)lo;
  if (d >= hi) return (int64_t)hi;
  return (int64_t)d;
}

void ry__store_f64(ry_dtype t, void *data, int64_t i, double v) {
  switch (t) {
  case RY_BOOL: ((uint8_t *)data)[i] = v != 0; break;
  case RY_I8: ((int8_t *)data)[i] = (int8_t)sat(v, INT8_MIN, INT8_MAX); break;
  case RY_I16: ((int16_t *)data)[i] = (int16_t)sat(v, INT16_MIN, INT16_MAX); break;
  case RY_I32: ((int32_t *)data)[i] = (int32_t)sat(v, INT32_MIN, INT32_MAX); break;
  case RY_I64:
    ((int64_t *)data)[i] = isnan(v) ? 0 : v >= 9.2233720368547758e18 ? INT64_MAX : v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v;
    break;
  case RY_U8: ((uint8_t *)data)[i] = (uint8_t)sat(v, 0, UINT8_MAX); break;
  case RY_U16: ((uint16_t *)data)[i] = (uint16_t)sat(v, 0, UINT16_MAX); break;
  case RY_U32: ((uint32_t *)data)[i] = (uint32_t)sat(v, 0, UINT32_MAX); break;
  case RY_U64: ((uint64_t *)data)[i] = isnan(v) || v <= 0 ? 0 : v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v; break;
  case RY_F16: ((uint16_t *)data)[i] = ry__f32_to_f16((float)v); break;
  case RY_BF16: ((uint16_t *)data)[i] = ry__f32_to_bf16((float)v); break;
  case RY_F32: ((float *)data)[i] = (float)v; break;
  case RY_F64: ((double *)data)[i] = v; break;
  default: break;
  }
}

void ry__store_i64(ry_dtype t, void *data, int64_t i, int64_t v) {
  switch (t) {
  case RY_BOOL: ((uint8_t *)data)[i] = v != 0; break;
  case RY_I8: ((int8_t *)data)[i] = (int8_t)(uint8_t)v; break;
  case RY_I16: ((int16_t *)data)[i] = (int16_t)(uint16_t)v; break;
  case RY_I32: ((int32_t *)data)[i] = (int32_t)(uint32_t)v; break;
  case RY_I64: ((int64_t *)data)[i] = v; break;
  case RY_U8: ((uint8_t *)data)[i] = (uint8_t)v; break;
  case RY_U16: ((uint16_t *)data)[i] = (uint16_t)v; break;
  case RY_U32: ((uint32_t *)data)[i] = (uint32_t)v; break;
  case RY_U64: ((uint64_t *)data)[i] = (uint64_t)v; break;
  default: ry__store_f64(t, data, i, (double)v); break;
  }
}
