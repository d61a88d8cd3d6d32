/* A Hessian-vector product without forming the Hessian: ry_hvp is
 * forward-over-reverse (jvp of grad), as jax.jvp(jax.grad(f), (x,), (v,)). */
#include <stdio.h>

#include <ryft/ryft.h>

/* f(x) = sum(x^4) / 4 + sum(x[i] * x[i+1]) : H = diag(3 x^2) + off-diagonal ones */
static int f(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value x = in[0];
  ry_value x2 = ry_mul(b, x, x);
  ry_value quart = ry_div(b, ry_sum(b, ry_mul(b, x2, x2), RY_AXES(0)), ry_scalar(b, RY_F64, 4.0));
  ry_value lo = ry_slice(b, x, RY_AXES(0), RY_AXES(3), RY_NO_AXES), hi = ry_slice(b, x, RY_AXES(1), RY_AXES(4), RY_NO_AXES);
  out[0] = ry_add(b, quart, ry_sum(b, ry_mul(b, lo, hi), RY_AXES(0)));
  return 1;
}

int main(void) {
  ry_type t = {RY_F64, RY_SHAPE(4)};
  ry_graph *g = NULL, *hvp = NULL;
  ry_status s = ry_trace("f", f, NULL, 1, &t, NULL, &g);
  if (!s) s = ry_hvp(g, 0, &hvp); /* (x, v) -> H(x) v */
  double x[4] = {1, 2, -1, 0.5}, v[4] = {1, 0, 0, 1};
  ry_array *in[2] = {NULL, NULL}, *hv = NULL;
  ry_device *cpu = NULL;
  if (!s) s = ry_array_from_host(RY_F64, RY_SHAPE(4), x, &in[0]);
  if (!s) s = ry_array_from_host(RY_F64, RY_SHAPE(4), v, &in[1]);
  if (!s) s = ry_device_get("cpu", &cpu);
  if (!s) s = ry_run(hvp, cpu, 2, in, 1, &hv);
  if (!s) {
    /* by hand: H v = (3*1*1 + 0, 1 + 0, 0 + 1, 3*0.25*1) = (3, 1, 1, 0.75) */
    printf("H v = ");
    ry_array_print(hv, stdout);
    printf("expected [3, 1, 1, 0.75]\n");
  } else {
    fprintf(stderr, "error: %s\n", ry_status_message(s));
  }
  int rc = s ? 1 : 0;
  ry_status_free(s);
  ry_array_release(in[0]);
  ry_array_release(in[1]);
  ry_array_release(hv);
  ry_graph_release(g);
  ry_graph_release(hvp);
  return rc;
}
