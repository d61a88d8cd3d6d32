/* ryft_conformance CHECKOUT [OUT.md]: the StableHLO interpreter suite on
 * ryft (conformance.c). CHECKOUT is a StableHLO source tree (or set
 * RYFT_STABLEHLO_SRC); the markdown table goes to OUT.md or stdout. */
#include <stdlib.h>

#include "conformance.h"

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : getenv("RYFT_STABLEHLO_SRC");
  if (!root) {
    fprintf(stderr, "usage: ryft_conformance STABLEHLO_CHECKOUT [OUT.md] (or set RYFT_STABLEHLO_SRC)\n");
    return 2;
  }
  FILE *md = argc > 2 ? fopen(argv[2], "w") : stdout;
  if (!md) {
    perror(argv[2]);
    return 1;
  }
  conf_stats st;
  if (conformance_run(root, md, &st) != 0) {
    fprintf(stderr, "ryft_conformance: cannot read %s/stablehlo/tests/interpret\n", root);
    return 1;
  }
  if (md != stdout) fclose(md);
  fprintf(stderr, "%d modules: %d passed, %d failed, %d unsupported\n", st.modules, st.passed, st.failed, st.unsupported);
  return 0;
}
