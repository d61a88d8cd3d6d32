/* Collectives on host arrays between programs (ryft/dist.h): for devices
 * that cannot run ryft's cross-process collectives inside a program (PJRT:
 * each process drives its own client), values cross the processes here.
 *
 * ry_dist_all_reduce is the all_reduce op itself on a mesh of one device
 * per process, run on the interpreter: the same code, group order and bits
 * as a collective inside a program; ry_dist_broadcast is the
 * collective_broadcast op the same way. */
#include "dist.h"
#include "ryft/ryft.h"

static int all_reduce_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const ry_reduce_kind *k = ctx;
  out[0] = ry_all_reduce(b, in[0], *k, RY_AXES(ry_dist_size()), RY_AXES(0));
  return 1;
}

ry_status ry_dist_all_reduce(const ry_array *x, ry_reduce_kind kind, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_all_reduce: out is NULL");
  *out = NULL;
  if (!x) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_all_reduce: x is NULL");
  if (kind != RY_SUM && kind != RY_PROD && kind != RY_MAX && kind != RY_MIN)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_all_reduce: kind %d is not RY_SUM, RY_PROD, RY_MAX or RY_MIN", (int)kind);
  ry_type t = x->type;
  ry_graph *g = NULL;
  ry_device *dev = NULL;
  ry_status s = ry_trace("dist_all_reduce", all_reduce_fn, &kind, 1, &t, NULL, &g);
  if (!s) s = ry_device_get("interp", &dev);
  if (!s) s = ry_run(g, dev, 1, (ry_array *const *)&x, 1, out);
  ry_graph_release(g);
  return s;
}

static int broadcast_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ry_collective_broadcast(b, in[0], *(const int *)ctx, RY_AXES(ry_dist_size()), RY_AXES(0));
  return 1;
}

ry_status ry_dist_broadcast(const ry_array *x, int root, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_broadcast: out is NULL");
  *out = NULL;
  if (!x) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_broadcast: x is NULL");
  int P = ry_dist_size();
  if (root < 0 || root >= P) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_broadcast: root %d is not a rank of 0..%d", root, P - 1);
  ry_type t = x->type;
  ry_graph *g = NULL;
  ry_device *dev = NULL;
  ry_status s = ry_trace("dist_broadcast", broadcast_fn, &root, 1, &t, NULL, &g);
  if (!s) s = ry_device_get("interp", &dev);
  if (!s) s = ry_run(g, dev, 1, (ry_array *const *)&x, 1, out);
  ry_graph_release(g);
  return s;
}
