/* ryft/random.h - counter-based random numbers, bit-identical to jax.random.
 *
 * A key is a u32[2] value, like JAX's legacy `jax.random.PRNGKey` keys with
 * the default threefry2x32 implementation (and its default
 * jax_threefry_partitionable=True counter layout). Every sampler is built
 * from the threefry2x32 primitive and ordinary ops, so it traces into the
 * program, runs on every device and composes with vmap. For the same key,
 * shape and dtype the results equal JAX's bit for bit (tests/test_random.c
 * checks goldens written by tests/golden/gen_random_goldens.py).
 *
 * The traced functions follow trace.h: errors are sticky on the builder, and
 * each is a macro capturing the caller's file:line. Shapes are ry_shape; the
 * result dtype is named where JAX takes a dtype. f64 results need 64 random
 * bits per element, as JAX does with jax_enable_x64 on.
 *
 * Host versions of the key functions and of permutation exist for data
 * pipelines (shuffling) that run outside a program. */
#ifndef RYFT_RANDOM_H
#define RYFT_RANDOM_H

#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys (traced) ------------------------------------------------------- */

/* jax.random.PRNGKey(seed): the constant key [seed >> 32, seed & 0xffffffff]
 * (JAX with x64 on; with x64 off JAX takes int32 seeds, equal for seed >= 0). */
RY_API ry_value ry_random_key_(ry_builder *b, ry_loc loc, int64_t seed);
/* The same from a traced integer scalar. */
RY_API ry_value ry_random_key_from_(ry_builder *b, ry_loc loc, ry_value seed);
/* jax.random.split(key, n): u32[n,2]. */
RY_API ry_value ry_random_split_(ry_builder *b, ry_loc loc, ry_value key, int64_t n);
/* Split into n keys written to out[0..n) (each u32[2]); returns n (0 on error). */
RY_API int ry_random_split_keys_(ry_builder *b, ry_loc loc, ry_value key, int n, ry_value *out);
/* keys[i] of a u32[n,2] key array: a u32[2] key. */
RY_API ry_value ry_random_key_at_(ry_builder *b, ry_loc loc, ry_value keys, int64_t i);
/* jax.random.fold_in(key, data): data is an integer scalar (as uint32). */
RY_API ry_value ry_random_fold_in_(ry_builder *b, ry_loc loc, ry_value key, ry_value data);
RY_API ry_value ry_random_fold_in_int_(ry_builder *b, ry_loc loc, ry_value key, uint32_t data);

/* ---- samplers (traced) ---------------------------------------------------- */

/* jax.random.bits / the internal _random_bits: bit_width 8 -> u8, 32 -> u32,
 * 16 -> i16 and 64 -> i64 holding the same bit patterns (ryft has no u16 or
 * u64 dtype). */
RY_API ry_value ry_random_bits_(ry_builder *b, ry_loc loc, ry_value key, int bit_width, ry_shape shape);
/* jax.random.uniform(key, shape, dtype, minval, maxval): floats in
 * [minval, maxval). dtype f16, bf16, f32 or f64. */
RY_API ry_value ry_random_uniform_(ry_builder *b, ry_loc loc, ry_value key, ry_shape shape, ry_dtype dtype, double minval,
                            double maxval);
/* jax.random.normal(key, shape, dtype): sqrt(2) * erf_inv(uniform(key, shape,
 * dtype, nextafter(-1, 0), 1)). */
RY_API ry_value ry_random_normal_(ry_builder *b, ry_loc loc, ry_value key, ry_shape shape, ry_dtype dtype);
/* jax.random.truncated_normal(key, lower, upper, shape, dtype): values in
 * the open interval (lower, upper). */
RY_API ry_value ry_random_truncated_normal_(ry_builder *b, ry_loc loc, ry_value key, double lower, double upper, ry_shape shape,
                                     ry_dtype dtype);
/* jax.random.bernoulli(key, p, shape) with p a Python float (f32): bool. */
RY_API ry_value ry_random_bernoulli_(ry_builder *b, ry_loc loc, ry_value key, double p, ry_shape shape);
/* jax.random.gumbel(key, shape, dtype) (mode "low"). */
RY_API ry_value ry_random_gumbel_(ry_builder *b, ry_loc loc, ry_value key, ry_shape shape, ry_dtype dtype);
/* jax.random.categorical(key, logits, axis): i32 indices with logits' shape
 * without `axis` (axis may be negative). */
RY_API ry_value ry_random_categorical_(ry_builder *b, ry_loc loc, ry_value key, ry_value logits, int axis);
/* jax.random.permutation(key, n): a shuffled arange(n) as i32[n]. */
RY_API ry_value ry_random_permutation_(ry_builder *b, ry_loc loc, ry_value key, int64_t n);
/* jax.random.permutation(key, x): x shuffled along axis 0 (for rank 1 the
 * elements themselves are sorted, for higher rank rows are taken by a
 * shuffled index, as JAX does; the results are the same). */
RY_API ry_value ry_random_shuffle_(ry_builder *b, ry_loc loc, ry_value key, ry_value x);

#define ry_random_key(b, seed) ry_random_key_((b), RY_HERE, (seed))
#define ry_random_key_from(b, seed) ry_random_key_from_((b), RY_HERE, (seed))
#define ry_random_split(b, key, n) ry_random_split_((b), RY_HERE, (key), (n))
#define ry_random_split_keys(b, key, n, out) ry_random_split_keys_((b), RY_HERE, (key), (n), (out))
#define ry_random_key_at(b, keys, i) ry_random_key_at_((b), RY_HERE, (keys), (i))
#define ry_random_fold_in(b, key, data) ry_random_fold_in_((b), RY_HERE, (key), (data))
#define ry_random_fold_in_int(b, key, data) ry_random_fold_in_int_((b), RY_HERE, (key), (data))
#define ry_random_bits(b, key, w, s) ry_random_bits_((b), RY_HERE, (key), (w), (s))
#define ry_random_uniform(b, key, s, t, lo, hi) ry_random_uniform_((b), RY_HERE, (key), (s), (t), (lo), (hi))
#define ry_random_normal(b, key, s, t) ry_random_normal_((b), RY_HERE, (key), (s), (t))
#define ry_random_truncated_normal(b, key, lo, hi, s, t) ry_random_truncated_normal_((b), RY_HERE, (key), (lo), (hi), (s), (t))
#define ry_random_bernoulli(b, key, p, s) ry_random_bernoulli_((b), RY_HERE, (key), (p), (s))
#define ry_random_gumbel(b, key, s, t) ry_random_gumbel_((b), RY_HERE, (key), (s), (t))
#define ry_random_categorical(b, key, logits, axis) ry_random_categorical_((b), RY_HERE, (key), (logits), (axis))
#define ry_random_permutation(b, key, n) ry_random_permutation_((b), RY_HERE, (key), (n))
#define ry_random_shuffle(b, key, x) ry_random_shuffle_((b), RY_HERE, (key), (x))

/* ---- on the host ------------------------------------------------------------
 * The same algorithms in plain C for code outside a program. A key is
 * uint32_t[2]. */

typedef struct ry_key { uint32_t k[2]; } ry_key;

RY_API ry_key ry_key_from_seed(int64_t seed);                 /* = ry_random_key */
/* split(key, n) into out[0..n). */
RY_API void ry_key_split(ry_key key, int64_t n, ry_key *out);
RY_API ry_key ry_key_fold_in(ry_key key, uint32_t data);
/* _random_bits(key, 32, (n,)) into out[0..n). */
RY_API void ry_key_bits32(ry_key key, int64_t n, uint32_t *out);
/* jax.random.permutation(key, n) into out[0..n). */
RY_API ry_status ry_key_permutation(ry_key key, int64_t n, int64_t *out);
/* The key as a u32[2] array (refcount 1), to pass into a program. */
RY_API ry_status ry_key_to_array(ry_key key, ry_array **out);
/* A u32[2] array back to a key. */
RY_API ry_status ry_key_from_array(const ry_array *a, ry_key *out);
/* One threefry2x32 block (20 rounds) on the host. */
RY_API void ry_threefry2x32_block(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t out[2]);

#ifdef __cplusplus
}
#endif
#endif
