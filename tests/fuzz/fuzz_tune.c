/* libFuzzer target for the cpu backend's tune cache file (tune-<key>.txt,
 * read by ryc_tune_parse in src/backend/cpu/tune.c): any bytes must give
 * 256, 512 or 0 (measure again), and a width only from a file that names
 * one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/tune.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* a private copy: fmemopen wants a writable buffer even to read */
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  if (size) memcpy(buf, data, size);
  FILE *f = fmemopen(buf, size, "r");
  if (!f) {
    free(buf);
    return 0;
  }
  int w = ryc_tune_parse(f);
  fclose(f);
  buf[size] = 0;
  bool named = false; /* the key occurs in the text (NUL bytes end a line for the parser) */
  for (size_t i = 0; i < size && !named; i += strlen(buf + i) + 1) named = strstr(buf + i, "vector_width") != NULL;
  free(buf);
  if (w != 0 && w != 256 && w != 512) {
    fprintf(stderr, "fuzz_tune: width %d\n", w);
    abort();
  }
  if (w && !named) {
    fprintf(stderr, "fuzz_tune: width %d from a file that names none\n", w);
    abort();
  }
  return 0;
}
