/* Shared by the libFuzzer targets of the file readers (fuzz_npy.c,
 * fuzz_idx.c, fuzz_safetensors.c, ...): what a reader may answer to any
 * input, and a read of every byte of what it returned so that AddressSanitizer
 * sees any overrun. A violation aborts, which libFuzzer reports with the
 * input. */
#ifndef RYFT_FUZZ_COMMON_H
#define RYFT_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/ryft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_die(const char *target, const char *what, ry_status s) {
  fprintf(stderr, "%s: %s%s%s\n", target, what, s ? ": " : "", s ? ry_status_message(s) : "");
  abort();
}

/* Bad contents must be reported as such (parse, dtype, shape, unsupported,
 * or out of memory for absurd sizes), with a message; never an internal
 * error, an invalid-argument error (a misuse of ryft's own API) or an I/O
 * error (there is no file). Frees s. */
static void fuzz_expect_input_error(const char *target, ry_status s) {
  ry_code c = ry_status_code(s);
  if (c != RY_ERR_PARSE && c != RY_ERR_DTYPE && c != RY_ERR_SHAPE && c != RY_ERR_UNSUPPORTED && c != RY_ERR_OUT_OF_MEMORY)
    fuzz_die(target, "unexpected error code", s);
  const char *m = ry_status_message(s);
  if (!m || strlen(m) < 8) fuzz_die(target, "an error without a message", s);
  ry_status_free(s);
}

/* Every byte of a returned array, and its element count against its bytes. */
static uint64_t fuzz_touch(const char *target, const ry_array *a) {
  if (!a) fuzz_die(target, "success without an array", NULL);
  size_t n = ry_array_nbytes(a);
  if ((size_t)ry_array_numel(a) * ry_dtype_size(ry_array_dtype(a)) != n) fuzz_die(target, "numel * dtype size != nbytes", NULL);
  const unsigned char *p = ry_array_data(a);
  uint64_t h = 0;
  for (size_t i = 0; i < n; i++) h = h * 31 + p[i];
  return h;
}

#endif
