/* libFuzzer target for the text IR parser: any input must parse or fail
 * cleanly; when it parses, its printed text must parse again, print the same
 * and verify. A broken round trip is a real bug and aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/ryft.h"

static void die(const char *what, ry_status s, const char *text) {
  fprintf(stderr, "fuzz_parse: %s: %s\n--- text ---\n%s\n", what, s ? ry_status_message(s) : "", text ? text : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ry_graph *g = NULL;
  ry_status s = ry_graph_parse((const char *)data, (long)size, "fuzz", &g);
  if (s) {
    ry_code c = ry_status_code(s);
    if (c != RY_ERR_PARSE && c != RY_ERR_VERIFY && c != RY_ERR_OUT_OF_MEMORY) die("unexpected error code", s, NULL);
    ry_status_free(s);
    return 0;
  }
  char *a = NULL, *b = NULL;
  ry_graph *g2 = NULL;
  if ((s = ry_graph_to_string(g, &a))) die("print failed", s, NULL);
  if ((s = ry_graph_verify(g))) die("parsed graph does not verify", s, a);
  if ((s = ry_graph_parse(a, -1, "printed", &g2))) die("printed text does not parse", s, a);
  if ((s = ry_graph_to_string(g2, &b))) die("second print failed", s, a);
  if (strcmp(a, b) != 0) {
    fprintf(stderr, "fuzz_parse: print is not a fixed point\n--- first ---\n%s--- second ---\n%s", a, b);
    abort();
  }
  if ((s = ry_graph_verify(g2))) die("reparsed graph does not verify", s, a);
  ry_free(a);
  ry_free(b);
  ry_graph_release(g);
  ry_graph_release(g2);
  return 0;
}
