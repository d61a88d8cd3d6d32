/* Shared by the PJRT test files: the plugin under test. */
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

#endif
