/* libFuzzer target for the .npy reader (ry_npy_parse): any bytes must parse
 * into a consistent array or fail with a clean input error. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ry_array *a = NULL;
  ry_status s = ry_npy_parse(data, size, "fuzz.npy", &a);
  if (s) {
    if (a) fuzz_die("fuzz_npy", "an error with an array", NULL);
    fuzz_expect_input_error("fuzz_npy", s);
    return 0;
  }
  fuzz_touch("fuzz_npy", a);
  ry_array_release(a);
  return 0;
}
