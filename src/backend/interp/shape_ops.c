/* Shape kernels: broadcast_in_dim, reshape, transpose, slice, dynamic_slice,
 * dynamic_update_slice, concatenate, pad, reverse, iota, constant. They move
 * elements as bytes (memcpy of the element size), so every dtype works. */
#include "interp.h"

#define ELEM(a, i, es) ((char *)(a)->data + (size_t)(i) * (es))

static int64_t dot_idx(int rank, const int64_t *idx, const int64_t *strides) {
  int64_t off = 0;
  for (int d = 0; d < rank; d++) off += idx[d] * strides[d];
  return off;
}

static ry_status bad_attr(const char *what) { return ry__err(RY_ERR_VERIFY, "malformed attribute: %s", what); }

ry_status ryi_broadcast(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  const ry_axes *dims = &n->attrs.broadcast.dims;
  if (dims->n != x->type.shape.rank) return bad_attr("dims");
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  const ry_shape *os = &o->type.shape;
  int64_t xst[RY_MAX_RANK], ost[RY_MAX_RANK] = {0}; /* ost: operand stride per result dim */
  ry__strides(x->type.shape, xst);
  for (int i = 0; i < dims->n; i++) {
    int64_t d = dims->v[i];
    if (d < 0 || d >= os->rank) {
      ry_array_release(o);
      return bad_attr("dims");
    }
    if (x->type.shape.dims[i] != 1) ost[d] = xst[i];
  }
  size_t es = ry_dtype_size(o->type.dtype);
  int64_t numel = ry_shape_numel(*os), idx[RY_MAX_RANK] = {0};
  /* the trailing result dims the operand does not vary along: each source
   * element fills a run of `run` elements (a scalar broadcast, a row of
   * means over its row) */
  int k = os->rank;
  int64_t run = 1;
  while (k > 0 && ost[k - 1] == 0) run *= os->dims[--k];
  if (run > 1 && numel > 0) {
    ry_shape outer = *os;
    outer.rank = k;
    for (int64_t i = 0; i < numel; i += run, ryi_next(idx, &outer)) {
      const char *src = ELEM(x, dot_idx(k, idx, ost), es);
      char *dst = ELEM(o, i, es);
      if (es == 4) {
        uint32_t v;
        memcpy(&v, src, 4);
        for (int64_t j = 0; j < run; j++) ((uint32_t *)(void *)dst)[j] = v;
      } else {
        for (int64_t j = 0; j < run; j++) memcpy(dst + (size_t)j * es, src, es);
      }
    }
  } else if (numel > 0) {
    /* the trailing result dims the operand holds contiguously, in order (a
     * bias over the last dim): each source run is copied as a block */
    run = 1;
    while (k > 0 && ost[k - 1] == run) run *= os->dims[--k];
    ry_shape outer = *os;
    outer.rank = k;
    for (int64_t i = 0; i < numel; i += run, ryi_next(idx, &outer))
      memcpy(ELEM(o, i, es), ELEM(x, dot_idx(k, idx, ost), es), (size_t)run * es);
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_reshape(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (o->nbytes != in[0]->nbytes) {
    ry_array_release(o);
    return ry__err(RY_ERR_SHAPE, "element counts differ");
  }
  if (o->nbytes) memcpy(o->data, in[0]->data, o->nbytes);
  out[0] = o;
  return NULL;
}

ry_status ryi_transpose(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  const ry_axes *perm = &n->attrs.transpose.perm;
  int rank = x->type.shape.rank;
  if (perm->n != rank) return bad_attr("perm");
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  int64_t xst[RY_MAX_RANK], ost[RY_MAX_RANK];
  ry__strides(x->type.shape, xst);
  for (int i = 0; i < rank; i++) ost[i] = xst[perm->v[i]];
  size_t es = ry_dtype_size(o->type.dtype);
  const ry_shape *os = &o->type.shape;
  int64_t numel = ry_shape_numel(*os), idx[RY_MAX_RANK] = {0};
  for (int64_t i = 0; i < numel; i++, ryi_next(idx, os)) memcpy(ELEM(o, i, es), ELEM(x, dot_idx(rank, idx, ost), es), es);
  out[0] = o;
  return NULL;
}

ry_status ryi_slice(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  int rank = x->type.shape.rank;
  const ry_axes *start = &n->attrs.slice.start, *stride = &n->attrs.slice.stride;
  if (start->n != rank || (stride->n != rank && stride->n != 0)) return bad_attr("start/stride");
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  int64_t xst[RY_MAX_RANK], ost[RY_MAX_RANK], base = 0;
  ry__strides(x->type.shape, xst);
  for (int d = 0; d < rank; d++) {
    ost[d] = xst[d] * (stride->n ? stride->v[d] : 1);
    base += start->v[d] * xst[d];
  }
  size_t es = ry_dtype_size(o->type.dtype);
  const ry_shape *os = &o->type.shape;
  int64_t numel = ry_shape_numel(*os), idx[RY_MAX_RANK] = {0};
  for (int64_t i = 0; i < numel; i++, ryi_next(idx, os))
    memcpy(ELEM(o, i, es), ELEM(x, base + dot_idx(rank, idx, ost), es), es);
  out[0] = o;
  return NULL;
}

/* Starts from integer scalar operands, clamped to [0, dim - size]. */
static void clamped_starts(int rank, ry_array *const *idx, const ry_shape *xs, const int64_t *sizes, int64_t *st) {
  for (int d = 0; d < rank; d++) {
    int64_t v = ry__load_i64(idx[d]->type.dtype, idx[d]->data, 0), hi = xs->dims[d] - sizes[d];
    if (idx[d]->type.dtype == RY_U64 && v < 0) v = hi; /* 2^63 and more: past the end */
    if (v > hi) v = hi;
    if (v < 0) v = 0;
    st[d] = v;
  }
}

/* Copy a block of `shape` between two arrays of the same rank: element idx
 * from src at src_base + idx . src_st to dst at dst_base + idx . dst_st,
 * in runs along the last axis (contiguous in both) */
static void copy_block(ry_array *dst, int64_t dst_base, const int64_t *dst_st, const ry_array *src, int64_t src_base,
                       const int64_t *src_st, const ry_shape *shape) {
  int rank = shape->rank;
  size_t es = ry_dtype_size(dst->type.dtype);
  int64_t numel = ry_shape_numel(*shape), idx[RY_MAX_RANK] = {0};
  if (!numel) return;
  int64_t run = rank ? shape->dims[rank - 1] : 1;
  ry_shape outer = *shape;
  if (rank) outer.dims[rank - 1] = 1;
  for (int64_t i = 0; i < numel; i += run, ryi_next(idx, &outer))
    memcpy(ELEM(dst, dst_base + dot_idx(rank, idx, dst_st), es), ELEM(src, src_base + dot_idx(rank, idx, src_st), es),
           (size_t)run * es);
}

ry_status ryi_dynamic_slice(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  int rank = x->type.shape.rank;
  if (n->n_operands != rank + 1) return ry__err(RY_ERR_VERIFY, "needs %d start indices, has %d", rank, n->n_operands - 1);
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  const ry_shape *os = &o->type.shape;
  int64_t st[RY_MAX_RANK], xst[RY_MAX_RANK], ost[RY_MAX_RANK];
  clamped_starts(rank, in + 1, &x->type.shape, os->dims, st);
  ry__strides(x->type.shape, xst);
  ry__strides(*os, ost);
  copy_block(o, 0, ost, x, dot_idx(rank, st, xst), xst, os);
  out[0] = o;
  return NULL;
}

void ryi_update_slice(ry_array *o, const ry_array *u, ry_array *const *starts) {
  int rank = o->type.shape.rank;
  const ry_shape *us = &u->type.shape;
  int64_t st[RY_MAX_RANK], xst[RY_MAX_RANK], ust[RY_MAX_RANK];
  clamped_starts(rank, starts, &o->type.shape, us->dims, st);
  ry__strides(o->type.shape, xst);
  ry__strides(*us, ust);
  copy_block(o, dot_idx(rank, st, xst), xst, u, 0, ust, us);
}

ry_status ryi_dynamic_update_slice(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  int rank = x->type.shape.rank;
  if (n->n_operands != rank + 2) return ry__err(RY_ERR_VERIFY, "needs %d start indices, has %d", rank, n->n_operands - 2);
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (o->nbytes) memcpy(o->data, x->data, o->nbytes);
  ryi_update_slice(o, in[1], in + 2);
  out[0] = o;
  return NULL;
}

ry_status ryi_concatenate(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  int64_t dim = n->attrs.concatenate.dim;
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  const ry_shape *os = &o->type.shape;
  if (dim < 0 || dim >= os->rank) {
    ry_array_release(o);
    return bad_attr("dim");
  }
  /* Row-major: the result is `outer` blocks; each block is the operands'
   * blocks (dims[dim..] of each) one after another. */
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; d++) outer *= os->dims[d];
  for (int d = (int)dim + 1; d < os->rank; d++) inner *= os->dims[d];
  size_t es = ry_dtype_size(o->type.dtype);
  char *dst = o->data;
  for (int64_t b = 0; b < outer; b++)
    for (int k = 0; k < n->n_operands; k++) {
      size_t chunk = (size_t)(in[k]->type.shape.dims[dim] * inner) * es;
      if (chunk) memcpy(dst, (const char *)in[k]->data + (size_t)b * chunk, chunk);
      dst += chunk;
    }
  out[0] = o;
  return NULL;
}

ry_status ryi_pad(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *pv = in[1];
  int rank = x->type.shape.rank;
  const ry_axes *lo = &n->attrs.pad.low, *interior = &n->attrs.pad.interior;
  if (lo->n != rank || (interior->n != rank && interior->n != 0)) return bad_attr("low/interior");
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  size_t es = ry_dtype_size(o->type.dtype);
  const ry_shape *os = &o->type.shape;
  int64_t onum = ry_shape_numel(*os);
  for (int64_t i = 0; i < onum; i++) memcpy(ELEM(o, i, es), pv->data, es);
  int64_t ost[RY_MAX_RANK];
  ry__strides(*os, ost);
  const ry_shape *xs = &x->type.shape;
  int64_t xnum = ry_shape_numel(*xs), idx[RY_MAX_RANK] = {0};
  for (int64_t i = 0; i < xnum; i++, ryi_next(idx, xs)) {
    int64_t off = 0;
    bool inside = true;
    for (int d = 0; d < rank && inside; d++) {
      int64_t p = lo->v[d] + idx[d] * ((interior->n ? interior->v[d] : 0) + 1);
      inside = p >= 0 && p < os->dims[d];
      off += p * ost[d];
    }
    if (inside) memcpy(ELEM(o, off, es), ELEM(x, i, es), es);
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_reverse(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  int rank = x->type.shape.rank;
  const ry_axes *dims = &n->attrs.reverse.dims;
  bool rev[RY_MAX_RANK] = {false};
  for (int i = 0; i < dims->n; i++) {
    if (dims->v[i] < 0 || dims->v[i] >= rank) return bad_attr("dims");
    rev[dims->v[i]] = true;
  }
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  const ry_shape *xs = &x->type.shape;
  int64_t xst[RY_MAX_RANK], src[RY_MAX_RANK];
  ry__strides(*xs, xst);
  size_t es = ry_dtype_size(o->type.dtype);
  int64_t numel = ry_shape_numel(*xs), idx[RY_MAX_RANK] = {0};
  for (int64_t i = 0; i < numel; i++, ryi_next(idx, xs)) {
    for (int d = 0; d < rank; d++) src[d] = rev[d] ? xs->dims[d] - 1 - idx[d] : idx[d];
    memcpy(ELEM(o, i, es), ELEM(x, dot_idx(rank, src, xst), es), es);
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_iota(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  (void)in;
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  const ry_shape *os = &o->type.shape;
  int64_t dim = n->attrs.iota.dim;
  if (dim < 0 || dim >= os->rank) {
    ry_array_release(o);
    return bad_attr("dim");
  }
  ry_dtype t = o->type.dtype;
  int64_t numel = ry_shape_numel(*os), idx[RY_MAX_RANK] = {0};
  for (int64_t i = 0; i < numel; i++, ryi_next(idx, os)) {
    if (ry_dtype_is_float(t)) ryi_store_f64(t, o->data, i, (double)idx[dim]);
    else ry__store_i64(t, o->data, i, idx[dim]);
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_constant(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  (void)in;
  ry_array *v = n->attrs.constant.value;
  if (!v) return ry__err(RY_ERR_VERIFY, "constant has no value");
  if (!ry_type_equal(v->type, ryi_result_type(f, n, 0))) return ry__err(RY_ERR_VERIFY, "constant's value has the wrong type");
  out[0] = ry_array_retain(v); /* arrays are immutable: share it */
  return NULL;
}
