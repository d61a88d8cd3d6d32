/* The jax.nn.initializers as traced ops on ryft/random.h's samplers (the
 * same threefry bits as jax.random for the same key). */
#include "nn_internal.h"

ry_value ry_nn_initialize_(ry_builder *b, ry_loc loc, ry_nn_init kind, ry_value key, ry_dtype t, ry_shape s, double scale) {
  if (!nn_ok(b)) return NONE;
  if (kind == RY_NN_INIT_ZEROS) return ry_full_(b, loc, t, s, 0.0);
  if (kind == RY_NN_INIT_ONES) return ry_full_(b, loc, t, s, 1.0);
  if (kind == RY_NN_INIT_NORMAL) return MUL(ry_random_normal_(b, loc, key, s, t), ry_scalar_(b, loc, t, scale));
  double fan_in, fan_out;
  if (s.rank < 1) {
    fan_in = fan_out = 1;
  } else if (s.rank == 1) {
    fan_in = fan_out = (double)s.dims[0];
  } else {
    double rf = 1;
    for (int i = 0; i < s.rank - 2; i++) rf *= (double)s.dims[i];
    fan_in = (double)s.dims[s.rank - 2] * rf;
    fan_out = (double)s.dims[s.rank - 1] * rf;
  }
  double vs, den;
  int uniform;
  switch (kind) {
  case RY_NN_INIT_GLOROT_UNIFORM: vs = 1, den = (fan_in + fan_out) / 2, uniform = 1; break;
  case RY_NN_INIT_GLOROT_NORMAL: vs = 1, den = (fan_in + fan_out) / 2, uniform = 0; break;
  case RY_NN_INIT_HE_UNIFORM: vs = 2, den = fan_in, uniform = 1; break;
  case RY_NN_INIT_HE_NORMAL: vs = 2, den = fan_in, uniform = 0; break;
  case RY_NN_INIT_LECUN_NORMAL: vs = 1, den = fan_in, uniform = 0; break;
  default: nn_fail(b, loc, "nn.initialize", "unknown initializer %d", (int)kind); return NONE;
  }
  if (den <= 0) den = 1;
  double var = vs / den;
  /* JAX computes these factors in the parameter dtype (f32) */
  float v32 = (float)var;
  if (uniform) return MUL(ry_random_uniform_(b, loc, key, s, t, -1.0, 1.0), ry_scalar_(b, loc, t, sqrtf(3.0f * v32)));
  return MUL(ry_random_truncated_normal_(b, loc, key, -2.0, 2.0, s, t), ry_scalar_(b, loc, t, sqrtf(v32) / .87962566103423978f));
}
