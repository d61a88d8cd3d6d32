/* Trace a C function into a program, print it, compile it and run it. */
#include <ryft/ryft.h>
#include <stdio.h>

/* y = softmax(tanh(x @ w) * 2) over the last axis */
static int model(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_matmul(b, in[0], in[1]));         /* (2, 3) */
  out[0] = ry_softmax(b, ry_mul(b, h, ry_scalar(b, RY_F32, 2.0)), -1);
  return 1;
}

int main(void) {
  ry_type types[2] = {{RY_F32, RY_SHAPE(2, 4)}, {RY_F32, RY_SHAPE(4, 3)}};
  const char *names[2] = {"x", "w"};
  ry_graph *g = NULL;
  ry_status s = ry_trace("model", model, NULL, 2, types, names, &g);
  if (s) {
    fprintf(stderr, "trace failed: %s\n", ry_status_message(s));
    ry_status_free(s);
    return 1;
  }
  ry_graph_print(g, stdout);

  float x[8] = {1, 2, 3, 4, -1, 0, 1, 0.5f};
  float w[12] = {0.1f, 0.2f, 0.3f, -0.1f, 0.0f, 0.1f, 0.2f, -0.2f, 0.0f, 0.05f, 0.1f, -0.3f};
  ry_array *in[2] = {NULL, NULL}, *out = NULL;
  ry_device *dev = NULL;
  ry_executable *exe = NULL;
  if (!(s = ry_array_from_host(RY_F32, RY_SHAPE(2, 4), x, &in[0])) &&
      !(s = ry_array_from_host(RY_F32, RY_SHAPE(4, 3), w, &in[1])) &&
      !(s = ry_device_get("interp", &dev)) &&
      !(s = ry_compile(g, dev, &exe)) &&
      !(s = ry_execute(exe, 2, in, 1, &out))) {
    printf("result:\n");
    ry_array_print(out, stdout);
  }
  if (s) fprintf(stderr, "error: %s\n", ry_status_message(s));
  ry_status_free(s);
  ry_array_release(out);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_executable_free(exe);
  ry_graph_release(g);
  return s ? 1 : 0;
}
