/* threefry2x32: the Threefry-2x32 block cipher with 20 rounds, exactly as
 * jax._src.prng.threefry2x32 (and Random123) computes it. */
#include "interp.h"

static uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

void ryi_threefry2x32(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t out[2]) {
  static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  x0 += ks[0];
  x1 += ks[1];
  for (uint32_t i = 0; i < 5; i++) {
    const int *r = rot[i % 2];
    for (int j = 0; j < 4; j++) {
      x0 += x1;
      x1 = rotl(x1, r[j]);
      x1 ^= x0;
    }
    /* key injection i+1 */
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + i + 1;
  }
  out[0] = x0;
  out[1] = x1;
}

ry_status ryi_threefry(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  for (int i = 0; i < 4; i++)
    if (in[i]->type.dtype != RY_U32) return ry__err(RY_ERR_DTYPE, "operands must be u32");
  ry_status s = ryi_new_result(f, n, 0, &out[0]);
  if (!s) s = ryi_new_result(f, n, 1, &out[1]);
  if (s) return s;
  int64_t numel = ry_shape_numel(out[0]->type.shape);
  const uint32_t *a[4];
  bool scalar[4];
  for (int i = 0; i < 4; i++) {
    a[i] = in[i]->data;
    scalar[i] = in[i]->type.shape.rank == 0 && numel != 1;
  }
  uint32_t *o0 = out[0]->data, *o1 = out[1]->data;
  for (int64_t e = 0; e < numel; e++) {
    uint32_t r[2];
    ryi_threefry2x32(a[0][scalar[0] ? 0 : e], a[1][scalar[1] ? 0 : e], a[2][scalar[2] ? 0 : e], a[3][scalar[3] ? 0 : e], r);
    o0[e] = r[0];
    o1[e] = r[1];
  }
  return NULL;
}
