/* vmap_internal.h - the batching rules' shorthands and helpers, shared by
 * vmap.c and vmap_control.c */
#ifndef RYFT_TRANSFORM_VMAP_INTERNAL_H
#define RYFT_TRANSFORM_VMAP_INTERNAL_H

#include <string.h>

#include "transform.h"

#define B (a->b)
#define L (a->loc)
#define X(i) (a->x[i])
#define BX(i) (a->bx[i])
#define N (a->size)
static inline ry_type T(ry_builder *b, ry_value v) { return ry_value_type(b, v); }
/* Source types of node n's operands / results. */
static inline ry_type src_in(const ryt_vmap_args *a, int i) { return ry_vtype(a->g, ry_node_operands(a->g, a->n)[i]); }
static inline ry_type src_out(const ryt_vmap_args *a, int i) { return ry_vtype(a->g, ry_node_results(a->g, a->n)[i]); }

static inline ry_shape push_front(ry_shape s, int64_t n) {
  ry_shape r = s;
  if (s.rank >= RY_MAX_RANK) return s;
  r.rank = s.rank + 1;
  r.dims[0] = n;
  for (int i = 0; i < s.rank; i++) r.dims[i + 1] = s.dims[i];
  return r;
}
static inline ry_type bt(ry_type t, int64_t n) { return (ry_type){t.dtype, push_front(t.shape, n)}; }
static inline ry_axes iota_axes(int from, int n) {
  ry_axes r = {0, {0}};
  for (int i = 0; i < n; i++) r.v[r.n++] = from + i;
  return r;
}
static inline ry_axes shift1(ry_axes x, bool lead0) {
  ry_axes r = {0, {0}};
  if (lead0) r.v[r.n++] = 0;
  for (int i = 0; i < x.n && r.n < RY_MAX_RANK; i++) r.v[r.n++] = x.v[i] + 1;
  return r;
}
static inline ry_axes prepend(ry_axes x, int64_t v) {
  ry_axes r = {0, {0}};
  r.v[r.n++] = v;
  for (int i = 0; i < x.n && r.n < RY_MAX_RANK; i++) r.v[r.n++] = x.v[i];
  return r;
}

/* v (unbatched) broadcast to [n, v's shape]. */
static inline ry_value bcast_batch(ry_builder *b, ry_loc loc, ry_value v, int64_t n) {
  ry_type t = T(b, v);
  return ry_broadcast_in_dim_(b, loc, v, push_front(t.shape, n), iota_axes(1, t.shape.rank));
}
/* v of shape [n] broadcast along axis 0 of `shape`. */
static inline ry_value bcast_lead(ry_builder *b, ry_loc loc, ry_value v, ry_shape shape) {
  return ry_broadcast_in_dim_(b, loc, v, shape, (ry_axes){1, {0}});
}
/* Operand i with a batch axis. */
static inline ry_value mat(ryt_vmap_args *a, int i) { return BX(i) ? X(i) : bcast_batch(B, L, X(i), N); }
/* Move axis `from` of v to position `to`. */
static inline ry_value moveaxis(ry_builder *b, ry_loc loc, ry_value v, int from, int to) {
  if (from == to) return v;
  int r = T(b, v).shape.rank;
  ry_axes p = {0, {0}};
  for (int i = 0; i < r; i++)
    if (i != from) p.v[p.n++] = i;
  for (int i = p.n; i > to; i--) p.v[i] = p.v[i - 1];
  p.v[to] = from;
  p.n = r;
  return ry_transpose_(b, loc, v, p);
}

/* Emit the node's op on batched operands with the given attributes (NULL:
 * a copy of the node's), every result batched. */
static inline void emit_batched(ryt_vmap_args *a, const ry_value *in, ry_attrs *at) {
  ry_attrs own;
  if (!at) {
    if (!ry__attrs_copy(a->n->op, &own, &a->n->attrs)) {
      ryb_fail(B, ry__oom());
      return;
    }
    at = &own;
  }
  ry_type req[64];
  req[0] = (ry_type){0}; /* (gcc -O3 cannot see that nr >= 1) */
  int nr = a->n->n_results;
  if (nr > 64) {
    ry__attrs_free(a->n->op, at);
    ryb_failf(B, L, RY_ERR_UNSUPPORTED, "vmap", "more than 64 results");
    return;
  }
  for (int i = 0; i < nr; i++) req[i] = bt(src_out(a, i), N);
  if (!ryb_emit(B, L, a->n->op, a->n->n_operands, in, at, nr, req, 0, NULL, a->y)) return;
  for (int i = 0; i < nr; i++) a->by[i] = true;
}
static inline ry_attrs zattrs(void) {
  ry_attrs at;
  memset(&at, 0, sizeof at);
  return at;
}

void ryt_r_call(ryt_vmap_args *a);
void ryt_r_cond(ryt_vmap_args *a);
void ryt_r_custom_call(ryt_vmap_args *a);
void ryt_r_scan(ryt_vmap_args *a);
void ryt_r_while(ryt_vmap_args *a);

#endif
