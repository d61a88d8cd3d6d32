/* The sgemm module and the array math of cold runs compiled into the
 * library, once per x86-64 level (CMakeLists.txt builds this file with each
 * level's -m flags and RYG_LEVEL), so that products need no compiler at
 * run time: gemm.c takes the widest level the CPU supports (and compiles
 * module/sgemm.c with the JIT only where none does), vmath.c likewise. The
 * functions are named ryg_<level>_<name>. */
#define RYG_NAME_(level, name) ryg_##level##_##name
#define RYG_NAME(level, name) RYG_NAME_(level, name)
#define RYG(name) RYG_NAME(RYG_LEVEL, name)
#include "sgemm.c"
#include "vmath.c"
