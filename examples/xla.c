#include <stdio.h>
#include <ryft/ryft.h>

int main(void) {
  /* y = 2x + 1, summed, as a text-IR program (or trace it with ry_trace) */
  const char *src =
      "func @main(%x: f32[3]) -> (f32[]) {\n"
      "  %0: f32[3] = add %x, %x\n"
      "  %1: f32[3] = constant {value=[1, 1, 1]}\n"
      "  %2: f32[3] = add %0, %1\n"
      "  %3: f32[] = reduce %2 {kind=sum, axes=[0]}\n"
      "  return %3\n"
      "}\n";
  ry_graph *g;
  ry_device *xla;
  ry_array *x, *y;
  float data[3] = {1, 2, 3};
  ry_status s = ry_graph_parse(src, -1, "example", &g);
  if (!s) s = ry_device_get("pjrt", &xla); /* plugin from $RYFT_PJRT_PLUGIN */
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(3), data, &x);
  if (!s) s = ry_run(g, xla, 1, &x, 1, &y); /* emit StableHLO, compile with XLA, run */
  if (s) {
    fprintf(stderr, "%s\n", ry_status_message(s));
    return 1;
  }
  printf("%s: %g\n", ry_device_description(xla), ry_array_get_f64(y, 0)); /* 15 */
  ry_array_release(x);
  ry_array_release(y);
  ry_graph_release(g);
  ry_pjrt_shutdown();
  return 0;
}
