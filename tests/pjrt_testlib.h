/* Shared by the PJRT test files: the plugin under test, and a small program. */
#ifndef RYFT_PJRT_TESTLIB_H
#define RYFT_PJRT_TESTLIB_H

#include <stdlib.h>

/* $RYFT_PJRT_PLUGIN, set to the plugin fetched into the build tree when it
 * is unset (the "pjrt" device reads the variable). */
static inline const char *pjrt_test_plugin(void) {
  const char *p = getenv("RYFT_PJRT_PLUGIN");
  if (!p || !*p) {
    setenv("RYFT_PJRT_PLUGIN", RYFT_PJRT_TEST_PLUGIN, 1);
    p = getenv("RYFT_PJRT_PLUGIN");
  }
  return p;
}

/* y' = a x + y and its sum: the program several PJRT tests run */
static const char *const k_axpy =
    "func @main(%a: f32[], %x: f32[4], %y: f32[4]) -> (f32[4], f32[]) {\n"
    "  %0: f32[4] = broadcast_in_dim %a {dims=[]}\n"
    "  %1: f32[4] = mul %0, %x\n"
    "  %2: f32[4] = add %1, %y\n"
    "  %3: f32[] = reduce %2 {kind=sum, axes=[0]}\n"
    "  return %2, %3\n"
    "}\n";

#endif
