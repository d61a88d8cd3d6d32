/* The sgemm module and the array math of cold runs compiled into the
 * library, once per x86-64 level (CMakeLists.txt builds this file with each
 * level's -m flags and RYG_LEVEL), so that products need no compiler at
 * run time: gemm.c takes the widest level the CPU supports (and compiles
 * module/sgemm.c with the JIT only where none does), vmath.c likewise. The
 * functions are named ryg_<level>_<name>. The AVX-512 levels are built a
 * second time with the tall micro-kernel shape (levels avx512t and
 * avx512bf16t: MR 12, KC 512), the GEMM only. */
#define RYG_NAME_(level, name) ryg_##level##_##name
#define RYG_NAME(level, name) RYG_NAME_(level, name)
#define RYG(name) RYG_NAME(RYG_LEVEL, name)
#include "sgemm.c"
#ifndef RYG_GEMM_ONLY /* the tall GEMM shapes' levels share the math of their own level */
#include "vmath.c"
#endif
