/* vmath.h - f32 functions over arrays as the generated kernels compute them
 * (module/math_f32.h), for the cpu backend's runs that go node by node while
 * a module compiles: the same bits as the compiled program, vectorized for
 * the widest x86-64 level the CPU supports. */
#ifndef RYFT_BACKEND_CPU_VMATH_H
#define RYFT_BACKEND_CPU_VMATH_H

#include "../interp/interp.h"

const ryi_math *ryc_vmath(void);

#endif
