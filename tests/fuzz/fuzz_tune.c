/* libFuzzer target for the cpu backend's tune cache file (tune-<key>.txt,
 * read by ryc_tune_parse in src/backend/cpu/tune.c): any bytes must give
 * 256, 512 or 0 (measure again), and a width only from a file with a line
 * that begins with its key. */
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
  int w = f ? ryc_tune_parse(f) : 0;
  if (f) fclose(f);
  free(buf);
  bool named = false; /* some line of the file begins with the key */
  for (size_t i = 0; i + 12 <= size && !named; i++)
    named = (i == 0 || data[i - 1] == '\n') && !memcmp(data + i, "vector_width", 12);
  if (w != 0 && w != 256 && w != 512) {
    fprintf(stderr, "fuzz_tune: width %d\n", w);
    abort();
  }
  if (w && !named) {
    fprintf(stderr, "fuzz_tune: width %d from a file where no line begins with vector_width\n", w);
    abort();
  }
  return 0;
}
