/* LoRA adapters for language models (ryft/lm_train.h): their initial
 * values and the merge W + scale * B A on the host. Public API only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/lm_train.h"
#include "ryft/ryft.h"

ry_status ry_lm_lora_init(const ry_params *base, int n, const char *const *targets, int rank, uint64_t seed, ry_params **out) {
  *out = NULL;
  if (!base || n < 1 || !targets || rank < 1)
    return ry_status_make(RY_ERR_INVALID_ARGUMENT, "lora: need base weights, at least one target and a positive rank");
  for (int k = 0; k < n; k++) {
    int hits = 0;
    for (int i = 0; i < ry_params_count(base); i++)
      if (ry_path_match(targets[k], ry_params_path(base, i))) hits += ry_array_shape(ry_params_at(base, i)).rank == 2 ? 1 : 0;
    if (!hits) {
      const char *example = "?"; /* a matrix of a block, to show the names */
      for (int i = ry_params_count(base) - 1; i >= 0; i--)
        if (ry_array_shape(ry_params_at(base, i)).rank == 2 && !strncmp(ry_params_path(base, i), "blk.", 4))
          example = ry_params_path(base, i);
      return ry_status_make(RY_ERR_NOT_FOUND, "lora: target '%s' names no matrix of the model (its matrices are named like '%s')",
                            targets[k], example);
    }
  }
  ry_params *t = ry_params_new();
  if (!t) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "lora: out of memory");
  ry_status s = NULL;
  ry_key key = ry_key_from_seed((int64_t)seed);
  char path[RY_PARAMS_MAX_PATH + 16];
  for (int i = 0; !s && i < ry_params_count(base); i++) {
    const char *p = ry_params_path(base, i);
    ry_shape sh = ry_array_shape(ry_params_at(base, i));
    int hit = 0;
    for (int k = 0; k < n; k++) hit |= ry_path_match(targets[k], p);
    if (!hit || sh.rank != 2) continue;
    int64_t o = sh.dims[0], in = sh.dims[1], na = (int64_t)rank * in;
    float *a = malloc((size_t)na * sizeof *a);
    uint32_t *bits = malloc((size_t)na * sizeof *bits);
    ry_array *A = NULL, *B = NULL;
    if (!a || !bits) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "lora: out of memory");
    if (!s) {
      ry_key_bits32(ry_key_fold_in(key, (uint32_t)i), na, bits);
      double bound = 1.0 / sqrt((double)in);
      for (int64_t j = 0; j < na; j++) a[j] = (float)(bound * (2.0 * ((bits[j] >> 8) * (1.0 / 16777216.0)) - 1.0));
      s = ry_array_from_host(RY_F32, RY_SHAPE(rank, in), a, &A);
    }
    if (!s) s = ry_array_zeros(RY_F32, RY_SHAPE(o, rank), &B);
    snprintf(path, sizeof path, "%s.lora_a", p);
    if (!s) s = ry_params_set_owned(t, path, A);
    else ry_array_release(A);
    A = NULL;
    snprintf(path, sizeof path, "%s.lora_b", p);
    if (!s) s = ry_params_set_owned(t, path, B);
    else ry_array_release(B);
    free(a);
    free(bits);
  }
  if (s) {
    ry_params_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

ry_status ry_lm_lora_merge(const ry_params *base, const ry_params *lora, double scale, ry_params **out) {
  *out = NULL;
  ry_params *m = NULL;
  ry_status s = ry_params_clone(base, &m);
  char pa[RY_PARAMS_MAX_PATH + 16], pb[RY_PARAMS_MAX_PATH + 16];
  for (int i = 0; !s && i < ry_params_count(base); i++) {
    const char *p = ry_params_path(base, i);
    snprintf(pa, sizeof pa, "%s.lora_a", p);
    snprintf(pb, sizeof pb, "%s.lora_b", p);
    const ry_array *A = ry_params_get(lora, pa), *B = ry_params_get(lora, pb), *W = ry_params_at(base, i);
    if (!A && !B) continue;
    ry_shape ws = ry_array_shape(W), as = A ? ry_array_shape(A) : RY_SCALAR, bs = B ? ry_array_shape(B) : RY_SCALAR;
    if (!A || !B || ws.rank != 2 || as.rank != 2 || bs.rank != 2 || as.dims[1] != ws.dims[1] || bs.dims[0] != ws.dims[0] ||
        as.dims[0] != bs.dims[1] || ry_array_dtype(A) != RY_F32 || ry_array_dtype(B) != RY_F32 || ry_array_dtype(W) != RY_F32) {
      s = ry_status_make(RY_ERR_SHAPE, "lora merge: the adapters of '%s' do not fit it (need f32 %s [r, in] and %s [out, r])", p, pa,
                         pb);
      break;
    }
    int64_t O = ws.dims[0], I = ws.dims[1], R = as.dims[0];
    const float *a = ry_array_data(A), *b = ry_array_data(B), *w = ry_array_data(W);
    float *r = malloc((size_t)(O * I) * sizeof *r);
    ry_array *M = NULL;
    if (!r) {
      s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "lora merge: out of memory");
      break;
    }
    for (int64_t o = 0; o < O; o++)
      for (int64_t j = 0; j < I; j++) {
        double acc = 0;
        for (int64_t k = 0; k < R; k++) acc += (double)b[o * R + k] * a[k * I + j];
        r[o * I + j] = (float)(w[o * I + j] + scale * acc);
      }
    s = ry_array_from_host(RY_F32, ws, r, &M);
    free(r);
    if (!s) s = ry_params_set_owned(m, p, M);
  }
  if (s) {
    ry_params_free(m);
    return s;
  }
  *out = m;
  return NULL;
}
