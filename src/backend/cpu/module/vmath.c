/* f32 math over arrays as the generated kernels compute it (math_f32.h),
 * for the nodes the cpu backend runs in the interpreter: every node of a
 * cold run (cpu.c, while a program's module compiles) and the interpreter
 * steps of compiled programs (a loop body, say): one loop per function, built into the library per
 * x86-64 level by module/builtin.c and once for the build's own target by
 * vmath.c, which picks the widest the CPU supports. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "math_f32.h"

#ifndef RYG
#define RYG(name) ryg_##name
#endif

void RYG(exp_f32)(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ry_expf(x[i]);
}

void RYG(erf_f32)(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ry_erff(x[i]);
}
