/* vmath.h - f32 functions over arrays as the generated kernels compute them
 * (module/math_f32.h), for the nodes the cpu backend runs in the interpreter
 * (cold runs while a module compiles, interpreter steps): the same bits as
 * the compiled program, vectorized for the widest x86-64 level the CPU
 * supports. */
#ifndef RYFT_BACKEND_CPU_VMATH_H
#define RYFT_BACKEND_CPU_VMATH_H

#include "../interp/interp.h"

const ryi_math *ryc_vmath(void);

#endif
