/* gguf_info: print a GGUF file's metadata and tensors, and dequantize one
 * tensor.
 *
 *   example_gguf_info MODEL.gguf [TENSOR]
 */
#include <ryft/ryft.h>
#include <stdio.h>

static int fail(ry_status s) {
  fprintf(stderr, "gguf_info: %s\n", ry_status_message(s));
  ry_status_free(s);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.gguf [TENSOR]\n", argv[0]);
    return 2;
  }
  ry_gguf *g;
  ry_status s = ry_gguf_open(argv[1], &g);
  if (s) return fail(s);
  printf("GGUF v%u, %lld keys, %lld tensors, alignment %u\n", ry_gguf_version(g), (long long)ry_gguf_n_kv(g),
         (long long)ry_gguf_n_tensors(g), ry_gguf_alignment(g));
  for (int64_t i = 0; i < ry_gguf_n_kv(g); i++) {
    const ry_gguf_value *v = ry_gguf_kv_value(g, i);
    const char *str;
    size_t len;
    int64_t n;
    double f;
    printf("  %-40s ", ry_gguf_key(g, i));
    if (!ry_gguf_value_str(v, &str, &len) && len <= 60) printf("\"%.*s\"\n", (int)len, str);
    else if (v->type == RY_GGUF_STRING) printf("string of %zu bytes\n", len);
    else if (v->type == RY_GGUF_ARRAY) printf("array of %llu %s\n", (unsigned long long)v->n, ry_gguf_type_name(v->elem));
    else if (!(s = ry_gguf_value_int(v, &n))) printf("%lld\n", (long long)n);
    else if ((ry_status_free(s), s = ry_gguf_value_float(v, &f)) == NULL) printf("%g\n", f);
    else printf("%s\n", ry_gguf_type_name(v->type));
    ry_status_free(s);
    s = NULL;
  }
  for (int64_t i = 0; i < ry_gguf_n_tensors(g) && i < 8; i++) {
    const ry_gguf_tensor *t = ry_gguf_tensor_at(g, i);
    char shape[64];
    printf("  %-28s %-5s %s\n", t->name, ry_ggml_type_name(t->type), ry_shape_str(ry_gguf_tensor_shape(t), shape, sizeof shape));
  }
  if (argc > 2) {
    const ry_gguf_tensor *t = ry_gguf_find_tensor(g, argv[2]);
    ry_array *w = NULL;
    if (!t) fprintf(stderr, "gguf_info: no tensor %s\n", argv[2]);
    else if ((s = ry_gguf_tensor_to_f32(t, &w))) fail(s);
    else printf("%s as f32: first %g, last %g\n", t->name, ry_array_get_f64(w, 0), ry_array_get_f64(w, ry_array_numel(w) - 1));
    ry_array_release(w);
  }
  ry_gguf_close(g);
  return 0;
}
