/* libFuzzer target for the StableHLO importer (ry_stablehlo_parse): any
 * input must import or fail cleanly with a located message; an imported
 * graph must verify, export, and import again from its own export. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ry_graph *g = NULL;
  ry_status s = ry_stablehlo_parse((const char *)data, (long)size, "fuzz", &g);
  if (s) {
    ry_code c = ry_status_code(s);
    if (c != RY_ERR_OUT_OF_MEMORY && !strstr(ry_status_message(s), "fuzz:"))
      fuzz_die("fuzz_stablehlo", "an error without its place", s);
    fuzz_expect_input_error("fuzz_stablehlo", s);
    return 0;
  }
  if ((s = ry_graph_verify(g))) fuzz_die("fuzz_stablehlo", "imported graph does not verify", s);
  char *text = NULL;
  s = ry_stablehlo_emit(g, &text);
  if (!s) {
    ry_graph *g2 = NULL;
    s = ry_stablehlo_parse(text, -1, "export", &g2);
    if (s && ry_status_code(s) != RY_ERR_UNSUPPORTED && ry_status_code(s) != RY_ERR_OUT_OF_MEMORY)
      fuzz_die("fuzz_stablehlo", "its own export does not import", s);
    ry_status_free(s);
    ry_graph_release(g2);
  } else {
    ry_status_free(s);
  }
  ry_free(text);
  ry_graph_release(g);
  return 0;
}
