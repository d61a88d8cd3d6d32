/* libFuzzer target for the safetensors reader (ry_safetensors_parse): any
 * bytes must parse into a parameter tree of consistent arrays with distinct
 * paths, or fail with a clean input error. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ry_params *p = NULL;
  ry_status s = ry_safetensors_parse(data, size, "fuzz.safetensors", &p);
  if (s) {
    if (p) fuzz_die("fuzz_safetensors", "an error with a tree", NULL);
    fuzz_expect_input_error("fuzz_safetensors", s);
    return 0;
  }
  int n = ry_params_count(p);
  for (int i = 0; i < n; i++) {
    const char *path = ry_params_path(p, i);
    if (!path) fuzz_die("fuzz_safetensors", "an entry without a path", NULL);
    if (ry_params_index(p, path) != i) fuzz_die("fuzz_safetensors", "a path that does not find its own entry", NULL);
    fuzz_touch("fuzz_safetensors", ry_params_at(p, i));
  }
  ry_params_free(p);
  return 0;
}
