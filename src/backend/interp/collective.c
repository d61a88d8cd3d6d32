/* Collectives and the sharding annotation on the reference interpreter.
 *
 * The interpreter is one device. It evaluates a collective as the first
 * device of its group would if every one of the n members held the same
 * operand: all_reduce gives n*x (sum), x^n (prod) or x (max, min);
 * all_gather concatenates n copies along `dim`; reduce_scatter combines n
 * copies and keeps the first block; collective_broadcast gives x (the
 * source's value is everyone's). For a group of one device (mesh axes of
 * size 1, or no axes) every collective is the identity. This is also what
 * a replicated PJRT run (the same inputs on every device) computes on each
 * device, so the two can be compared. `sharding` is the identity.
 *
 * In an MPI job of several processes (ryft/dist.h) a collective whose mesh
 * has more than one device runs across the processes instead
 * (collective_dist.c). */
#include "interp.h"
#include "../../dist/dist.h"

static bool across_processes(const ry_node *n) {
  const ry_axes *m = &n->attrs.collective.mesh;
  int64_t d = 1;
  for (int i = 0; i < m->n; i++) d *= m->v[i];
  return d > 1 && rydist_active();
}

/* v combined with itself over n devices. */
static double combine_f(ry_reduce_kind k, double v, int64_t n) {
  switch (k) {
  case RY_SUM: return v * (double)n;
  case RY_PROD: {
    double r = 1;
    for (int64_t i = 0; i < n; i++) r *= v;
    return r;
  }
  default: return v;
  }
}
static int64_t combine_i(ry_reduce_kind k, int64_t v, int64_t n) {
  switch (k) {
  case RY_SUM: return (int64_t)((uint64_t)v * (uint64_t)n);
  case RY_PROD: {
    uint64_t r = 1;
    for (int64_t i = 0; i < n; i++) r *= (uint64_t)v;
    return (int64_t)r;
  }
  default: return v;
  }
}

/* o[j] = combine(x[src(j)]) for the elements j of o, src given by (outer, d, inner) blocks. */
static void combine_into(ry_array *o, const ry_array *x, ry_reduce_kind k, int64_t n, int64_t outer, int64_t dx, int64_t dout,
                         int64_t inner) {
  ry_dtype t = o->type.dtype;
  for (int64_t a = 0; a < outer; a++)
    for (int64_t j = 0; j < dout; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t src = (a * dx + j) * inner + i, dst = (a * dout + j) * inner + i;
        if (ry_dtype_is_float(t)) ryi_store_f64(t, o->data, dst, combine_f(k, ry__load_f64(t, x->data, src), n));
        else ry__store_i64(t, o->data, dst, combine_i(k, ry__load_i64(t, x->data, src), n));
      }
}

static void split_at(const ry_shape *s, int64_t dim, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < s->rank; i++) {
    if (i < dim) *outer *= s->dims[i];
    if (i > dim) *inner *= s->dims[i];
  }
}

ry_status ryi_all_reduce(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  int64_t g = ry__group_size(&n->attrs.collective.mesh, &n->attrs.collective.axes);
  ry_reduce_kind k = n->attrs.collective.kind;
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (across_processes(n)) {
    if ((s = ryi_dist_all_reduce(n, in[0], o))) ry_array_release(o);
    else out[0] = o;
    return s;
  }
  if (g == 1 || k == RY_MAX || k == RY_MIN) memcpy(o->data, in[0]->data, o->nbytes);
  else combine_into(o, in[0], k, g, 1, 1, 1, ry_shape_numel(in[0]->type.shape));
  out[0] = o;
  return NULL;
}

ry_status ryi_all_gather(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  int64_t g = ry__group_size(&n->attrs.collective.mesh, &n->attrs.collective.axes), dim = n->attrs.collective.dim;
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (across_processes(n)) {
    if ((s = ryi_dist_all_gather(n, x, o))) ry_array_release(o);
    else out[0] = o;
    return s;
  }
  int64_t outer, inner, d = x->type.shape.dims[dim];
  split_at(&x->type.shape, dim, &outer, &inner);
  size_t row = (size_t)(d * inner) * ry_dtype_size(x->type.dtype);
  for (int64_t a = 0; a < outer && row; a++)
    for (int64_t c = 0; c < g; c++) memcpy((char *)o->data + (size_t)(a * g + c) * row, (const char *)x->data + (size_t)a * row, row);
  out[0] = o;
  return NULL;
}

ry_status ryi_reduce_scatter(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  int64_t g = ry__group_size(&n->attrs.collective.mesh, &n->attrs.collective.axes), dim = n->attrs.collective.dim;
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (across_processes(n)) {
    if ((s = ryi_dist_reduce_scatter(n, x, o))) ry_array_release(o);
    else out[0] = o;
    return s;
  }
  int64_t outer, inner, d = x->type.shape.dims[dim];
  split_at(&x->type.shape, dim, &outer, &inner);
  combine_into(o, x, n->attrs.collective.kind, g, outer, d, d / g, inner);
  out[0] = o;
  return NULL;
}

ry_status ryi_collective_broadcast(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (across_processes(n)) {
    if ((s = ryi_dist_collective_broadcast(n, in[0], o))) ry_array_release(o);
    else out[0] = o;
    return s;
  }
  if (o->nbytes) memcpy(o->data, in[0]->data, o->nbytes);
  out[0] = o;
  return NULL;
}

ry_status ryi_sharding(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  memcpy(o->data, in[0]->data, o->nbytes);
  out[0] = o;
  return NULL;
}
