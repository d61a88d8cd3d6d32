#include <stdio.h>
#include <ryft/ryft.h>

/* One gradient step on 0.5 |w - t|^2: (w, t) -> (w - 0.5 (w - t), |w - t|^2) */
static int step(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value d = ry_sub(b, in[0], in[1]);
  out[0] = ry_sub(b, in[0], ry_mul(b, ry_scalar(b, RY_F32, 0.5), d));
  out[1] = ry_sum(b, ry_mul(b, d, d), RY_AXES(0));
  return 2;
}

int main(void) {
  float w0[3] = {0, 0, 0}, t0[3] = {1, 2, 3}, loss = 0;
  static const bool donate[2] = {true, false}; /* w is updated in place, t is kept */
  ry_device *xla = NULL;
  ry_jit *j = NULL;
  ry_array *host[2] = {0}, *in[2] = {0};
  ry_status s = ry_device_get("pjrt", &xla); /* plugin from $RYFT_PJRT_PLUGIN */
  if (!s) s = ry_jit_new("step", step, NULL, xla, &j);
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(3), w0, &host[0]);
  if (!s) s = ry_array_from_host(RY_F32, RY_SHAPE(3), t0, &host[1]);
  for (int i = 0; i < 2 && !s; i++) s = ry_device_put(xla, host[i], &in[i]); /* to the device, once */
  for (int k = 1; k <= 20 && !s; k++) {
    ry_array *out[2];
    s = ry_jit_call_donated(j, 2, in, donate, 2, out); /* compiled by XLA on the first call */
    if (s) break;
    in[0] = out[0]; /* the new w: a device array, fed back without a copy */
    if (k % 5 == 0 && !(s = ry_array_to_host(out[1], &loss, sizeof loss))) /* fetches 4 bytes */
      printf("step %2d: loss %g\n", k, loss);
    ry_array_release(out[1]);
  }
  if (s) {
    fprintf(stderr, "%s\n", ry_status_message(s));
    return 1;
  }
  printf("w (%s): ", ry_array_on_device(in[0]) ? "on the device" : "on the host");
  ry_array_print(in[0], stdout); /* reading it copies it to the host once */
  for (int i = 0; i < 2; i++) {
    ry_array_release(host[i]);
    ry_array_release(in[i]);
  }
  ry_jit_free(j);
  ry_pjrt_shutdown();
  return 0;
}
