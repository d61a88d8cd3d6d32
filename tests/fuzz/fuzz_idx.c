/* libFuzzer target for the IDX reader (ry_idx_parse, raw or gzip): any bytes
 * must parse into a consistent array whose size matches the header, or fail
 * with a clean input error. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ry_array *a = NULL;
  ry_status s = ry_idx_parse(data, size, "fuzz.idx", &a);
  if (s) {
    if (a) fuzz_die("fuzz_idx", "an error with an array", NULL);
    fuzz_expect_input_error("fuzz_idx", s);
    return 0;
  }
  fuzz_touch("fuzz_idx", a);
  ry_array_release(a);
  return 0;
}
