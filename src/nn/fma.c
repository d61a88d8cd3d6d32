/* f32 fused multiply-add as a composite of ordinary ops (nn/fma.h). */
#include "nn/fma.h"

/* f32 x*y + z with one rounding, from f64 ops. The product of two f32 is
 * exact in f64, and TwoSum gives the f64 sum s and its error err. Rounding
 * s to f32 is then the fma except when s falls exactly halfway between two
 * f32 (the only case where rounding twice differs from rounding once): s +
 * (s - r) is then the other neighbour, and the exact sum is nearer to it
 * when err has the sign of s - r (err * (s - r) cannot underflow for
 * values made from f32). No product meets an add in f32 and there is
 * nothing a compiler could shorten back to f32 arithmetic, so no backend
 * can fuse or re-round this; it has no bitcasts, which would split the cpu
 * backend's kernels. */
ry_value ryn_fma_f32(ry_builder *b, ry_loc loc, ry_value x, ry_value y, ry_value z) {
  ry_value p = ry_mul_(b, loc, ry_convert_(b, loc, x, RY_F64), ry_convert_(b, loc, y, RY_F64));
  ry_value c = ry_convert_(b, loc, z, RY_F64);
  ry_value s = ry_add_(b, loc, p, c);
  ry_value bv = ry_sub_(b, loc, s, p);
  ry_value err = ry_add_(b, loc, ry_sub_(b, loc, p, ry_sub_(b, loc, s, bv)), ry_sub_(b, loc, c, bv));
  ry_value r = ry_convert_(b, loc, s, RY_F32), rd = ry_convert_(b, loc, r, RY_F64);
  ry_value d = ry_sub_(b, loc, s, rd); /* exact */
  ry_value o = ry_add_(b, loc, s, d); /* exact at a tie; never on the f32 grid otherwise */
  ry_value ro = ry_convert_(b, loc, o, RY_F32);
  ry_value tie = ry_compare_(b, loc, ry_convert_(b, loc, ro, RY_F64), o, RY_EQ);
  ry_value beyond = ry_compare_(b, loc, ry_mul_(b, loc, err, d), ry_scalar_(b, loc, RY_F64, 0.0), RY_GT);
  return ry_select_(b, loc, ry_and_(b, loc, tie, beyond), ro, r);
}


ry_value ryn_fma_f32_rounded_twice(ry_builder *b, ry_loc loc, ry_value x, ry_value y, ry_value z) {
  ry_value p = ry_mul_(b, loc, ry_convert_(b, loc, x, RY_F64), ry_convert_(b, loc, y, RY_F64));
  return ry_convert_(b, loc, ry_add_(b, loc, p, ry_convert_(b, loc, z, RY_F64)), RY_F32);
}
