/* libFuzzer target for the GGUF reader: any input must parse or fail
 * cleanly with a parse error; when it parses, every key/value (nested
 * arrays included), every tensor's data (dequantized where ryft can) and a
 * copy into a writer must be readable without touching a byte outside the
 * input. A status other than a parse error, or an inconsistent result, is a
 * real bug and aborts. Seeds: tests/fuzz/corpus/gguf/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/ryft.h"

static void die(const char *what, ry_status s) {
  fprintf(stderr, "fuzz_gguf: %s: %s\n", what, s ? ry_status_message(s) : "");
  abort();
}

static uint64_t sink;

static void walk(const ry_gguf_value *v, int depth) {
  int64_t i;
  double f;
  int b;
  const char *s;
  size_t n;
  ry_status st = NULL;
  switch (v->type) {
  case RY_GGUF_STRING:
    if ((st = ry_gguf_value_str(v, &s, &n))) die("string", st);
    for (size_t k = 0; k < n; k++) sink += (unsigned char)s[k];
    return;
  case RY_GGUF_F32:
  case RY_GGUF_F64:
    if ((st = ry_gguf_value_float(v, &f))) die("float", st);
    return;
  case RY_GGUF_BOOL:
    if ((st = ry_gguf_value_bool(v, &b))) die("bool", st);
    if (b != 0 && b != 1) die("bool not 0/1", NULL);
    return;
  case RY_GGUF_ARRAY:
    if (depth > 16) die("nesting deeper than the reader allows", NULL);
    for (uint64_t k = 0; k < v->n; k++) {
      ry_gguf_value e;
      if ((st = ry_gguf_arr_get(v, k, &e))) die("array element", st);
      if (e.type != v->elem) die("element type", NULL);
      walk(&e, depth + 1);
    }
    return;
  default:
    st = ry_gguf_value_int(v, &i);
    if (st && v->type != RY_GGUF_U64) die("int", st); /* a u64 above INT64_MAX is refused */
    ry_status_free(st);
    return;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ry_gguf *g = NULL;
  ry_status s = ry_gguf_parse(data, size, "fuzz", &g);
  if (s) {
    ry_code c = ry_status_code(s);
    if (c != RY_ERR_PARSE && c != RY_ERR_OUT_OF_MEMORY) die("unexpected error code", s);
    if (g) die("error with a handle", s);
    ry_status_free(s);
    return 0;
  }
  for (int64_t k = 0; k < ry_gguf_n_kv(g); k++) {
    const char *key = ry_gguf_key(g, k);
    if (!key || ry_gguf_find(g, key) != ry_gguf_kv_value(g, k)) die("key lookup", NULL);
    walk(ry_gguf_kv_value(g, k), 0);
  }
  const uint8_t *end = data + size;
  for (int64_t k = 0; k < ry_gguf_n_tensors(g); k++) {
    const ry_gguf_tensor *t = ry_gguf_tensor_at(g, k);
    if (ry_gguf_find_tensor(g, t->name) != t) die("tensor lookup", NULL);
    const uint8_t *p = t->data;
    if (p < data || t->size > (size_t)(end - p)) die("tensor data out of bounds", NULL);
    int64_t n = 1;
    for (int d = 0; d < RY_GGUF_MAX_DIMS; d++) n *= t->dims[d];
    if (n > (1 << 16)) continue; /* large but valid: not worth the time */
    float *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    if (!y) continue;
    ry_status d = ry_ggml_dequantize(t->type, t->data, y, n);
    if (d && ry_status_code(d) != RY_ERR_UNSUPPORTED) die("dequantize", d);
    ry_status_free(d);
    free(y);
  }
  ry_gguf_writer *w = NULL;
  if ((s = ry_gguf_writer_new(&w))) die("writer", s);
  if ((s = ry_gguf_writer_add_all(w, g))) die("writer add_all of a file that parsed", s);
  ry_gguf_writer_free(w);
  ry_gguf_close(g);
  return 0;
}
