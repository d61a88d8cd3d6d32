/* Shared between the GGUF reader (gguf.c), writer (gguf_write.c) and the
 * quantization formats (quant.c). */
#ifndef RYFT_GGUF_INTERNAL_H
#define RYFT_GGUF_INTERNAL_H

#include <stdint.h>

#include "io_internal.h"
#include "ryft/gguf.h"

/* A parsed metadata value. Arrays of strings keep the file offset of each
 * element's length prefix (offs); arrays of arrays their parsed elements
 * (kids). raw_off/raw_len span the value's encoding (after its type), which
 * the writer copies verbatim. */
struct ry_gguf_node {
  ry_gguf_value v;
  const uint8_t *base; /* the file */
  uint64_t *offs;
  ry_gguf_node *kids;
  uint64_t cap; /* elements allocated in offs or kids */
  size_t raw_off, raw_len;
  size_t key_off; /* top-level values: where the key starts */
};
void ry__gguf_node_free(ry_gguf_node *n);
int ry__gguf_scalar_size(int type); /* bytes of a scalar value type; 0 for string, array, unknown */

struct ry_gguf {
  const uint8_t *base;
  size_t size;
  int mapped; /* base is our mmap */
  char *source;
  uint32_t version, alignment;
  size_t data_off;
  int64_t n_kv, n_t;     /* parsed so far */
  size_t cap_kv, cap_t;  /* allocated */
  char **keys;
  ry_gguf_node *kv;
  int64_t *kv_sorted; /* key indices in name order (lookup, duplicates) */
  ry_gguf_tensor *tensors;
  size_t *t_at;       /* file offset of each tensor info */
  int64_t *t_sorted;
};

#endif
