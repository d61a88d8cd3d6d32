/* gather and scatter, following StableHLO's general definitions (without
 * batching dims). gather clamps each start index so the whole slice is in
 * bounds (lax mode "clip"); scatter skips an update window that does not fit
 * whole (lax mode "drop") and combines in update order. */
#include <math.h>

#include "interp.h"

/* Read the index vector for batch position `bidx` (indices rank without the
 * index vector dim) into start[0..nvec). */
static void read_index_vector(const ry_array *ind, int64_t ivd, const int64_t *bidx, int nvec, int64_t *start) {
  const ry_shape *is = &ind->type.shape;
  int64_t st[RY_MAX_RANK];
  ry__strides(*is, st);
  int64_t base = 0;
  for (int d = 0, b = 0; d < is->rank; d++)
    if (d != ivd) base += bidx[b++] * st[d];
  for (int k = 0; k < nvec; k++)
    start[k] = ry__load_i64(ind->type.dtype, ind->data, base + (ivd < is->rank ? k * st[ivd] : 0));
  for (int k = 0; k < nvec; k++) /* u64 indices of 2^63 and more are past every end, not negative */
    if (ind->type.dtype == RY_U64 && start[k] < 0) start[k] = INT64_C(1) << 62;
}

static int index_vector_len(const ry_array *ind, int64_t ivd) {
  return ivd < ind->type.shape.rank ? (int)ind->type.shape.dims[ivd] : 1;
}

static bool in_list(const ry_axes *a, int64_t d) {
  for (int i = 0; i < a->n; i++)
    if (a->v[i] == d) return true;
  return false;
}

/* Elements that go as one contiguous run: when the last window dim of the
 * result (gather) or of the updates (scatter) is their last dim and takes the
 * operand's last dim, consecutive elements along it are consecutive in both
 * (an embedding row and its gradient), so indices are worked out once per
 * run. The iteration then runs over `outer`, that shape with the last dim 1. */
static int64_t inner_run(const ry_shape *s, const ry_axes *window_dims, int64_t last_window_operand_dim,
                         int operand_rank, ry_shape *outer) {
  *outer = *s;
  int r = s->rank, nw = window_dims->n;
  if (r == 0 || nw == 0 || window_dims->v[nw - 1] != r - 1 || last_window_operand_dim != operand_rank - 1) return 1;
  outer->dims[r - 1] = 1;
  return s->dims[r - 1];
}

ry_status ryi_gather(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *ind = in[1];
  const ry_gather_dims *gd = &n->attrs.gather;
  const ry_shape *xs = &x->type.shape;
  int64_t ivd = gd->index_vector_dim;
  if (ivd < 0 || ivd > ind->type.shape.rank) return ry__err(RY_ERR_VERIFY, "index_vector_dim out of range");
  int nvec = index_vector_len(ind, ivd);
  if (nvec != gd->start_index_map.n || gd->slice_sizes.n != xs->rank)
    return ry__err(RY_ERR_VERIFY, "start_index_map/slice_sizes do not match the shapes");
  for (int k = 0; k < nvec; k++)
    if (gd->start_index_map.v[k] < 0 || gd->start_index_map.v[k] >= xs->rank)
      return ry__err(RY_ERR_VERIFY, "start_index_map out of range");
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  const ry_shape *os = &o->type.shape;
  /* operand dims that receive offsets, in order */
  int64_t off_operand[RY_MAX_RANK];
  int n_off = 0;
  for (int d = 0; d < xs->rank; d++)
    if (!in_list(&gd->collapsed_slice_dims, d)) off_operand[n_off++] = d;
  if (n_off != gd->offset_dims.n) {
    ry_array_release(o);
    return ry__err(RY_ERR_VERIFY, "offset_dims do not match collapsed_slice_dims");
  }
  int64_t xst[RY_MAX_RANK];
  ry__strides(*xs, xst);
  size_t es = ry_dtype_size(o->type.dtype);
  ry_shape outer;
  int64_t run = inner_run(os, &gd->offset_dims, n_off ? off_operand[n_off - 1] : -1, xs->rank, &outer);
  int64_t onum = ry_shape_numel(outer), idx[RY_MAX_RANK] = {0};
  if (run == 0) onum = 0;
  for (int64_t j = 0; j < onum; j++, ryi_next(idx, &outer)) {
    int64_t bidx[RY_MAX_RANK], start[RY_MAX_RANK], full[RY_MAX_RANK] = {0};
    int nb = 0;
    for (int d = 0; d < os->rank; d++)
      if (!in_list(&gd->offset_dims, d)) bidx[nb++] = idx[d];
    read_index_vector(ind, ivd, bidx, nvec, start);
    for (int k = 0; k < nvec; k++) {
      int64_t d = gd->start_index_map.v[k], hi = xs->dims[d] - gd->slice_sizes.v[d], v = start[k];
      full[d] = v > hi ? hi : v < 0 ? 0 : v;
    }
    for (int k = 0; k < n_off; k++) full[off_operand[k]] += idx[gd->offset_dims.v[k]];
    int64_t src = 0;
    for (int d = 0; d < xs->rank; d++) src += full[d] * xst[d];
    memcpy((char *)o->data + (size_t)(j * run) * es, (const char *)x->data + (size_t)src * es, (size_t)run * es);
  }
  out[0] = o;
  return NULL;
}

static void combine(ry_scatter_kind kind, ry_dtype t, void *dst, int64_t i, const void *src, int64_t k) {
  if (kind == RY_SCATTER_REPLACE) {
    size_t es = ry_dtype_size(t);
    memcpy((char *)dst + (size_t)i * es, (const char *)src + (size_t)k * es, es);
  } else if (ry_dtype_is_float(t)) {
    double a = ry__load_f64(t, dst, i), b = ry__load_f64(t, src, k);
    double r = kind == RY_SCATTER_ADD ? a + b : kind == RY_SCATTER_MUL ? a * b : kind == RY_SCATTER_MAX ? ryx_fmax(a, b) : ryx_fmin(a, b);
    ryi_store_f64(t, dst, i, r);
  } else {
    int64_t a = ry__load_i64(t, dst, i), b = ry__load_i64(t, src, k), r;
    if (t == RY_BOOL && kind == RY_SCATTER_ADD) r = a | b;
    else if (t == RY_BOOL && kind == RY_SCATTER_MUL) r = a & b;
    else if (kind == RY_SCATTER_ADD) r = (int64_t)((uint64_t)a + (uint64_t)b);
    else if (kind == RY_SCATTER_MUL) r = (int64_t)((uint64_t)a * (uint64_t)b);
    else if (kind == RY_SCATTER_MAX) r = ryi_ikey(t, a) > ryi_ikey(t, b) ? a : b;
    else r = ryi_ikey(t, a) < ryi_ikey(t, b) ? a : b;
    ry__store_i64(t, dst, i, r);
  }
}

ry_status ryi_scatter(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (o->nbytes) memcpy(o->data, in[0]->data, o->nbytes);
  if ((s = ryi_scatter_into(n, o, in[1], in[2]))) {
    ry_array_release(o);
    return s;
  }
  out[0] = o;
  return NULL;
}

ry_status ryi_scatter_into(const ry_node *n, ry_array *o, const ry_array *ind, const ry_array *upd) {
  const ry_array *x = o;
  const ry_scatter_dims *sd = &n->attrs.scatter;
  const ry_shape *xs = &x->type.shape, *us = &upd->type.shape;
  int64_t ivd = sd->index_vector_dim;
  if (ivd < 0 || ivd > ind->type.shape.rank) return ry__err(RY_ERR_VERIFY, "index_vector_dim out of range");
  if ((int)sd->kind < 0 || sd->kind >= RY_SCATTER_COUNT) return ry__err(RY_ERR_VERIFY, "unknown scatter kind");
  int nvec = index_vector_len(ind, ivd);
  if (nvec != sd->scatter_dims_to_operand_dims.n) return ry__err(RY_ERR_VERIFY, "scatter_dims_to_operand_dims does not match the indices");
  for (int k = 0; k < nvec; k++)
    if (sd->scatter_dims_to_operand_dims.v[k] < 0 || sd->scatter_dims_to_operand_dims.v[k] >= xs->rank)
      return ry__err(RY_ERR_VERIFY, "scatter_dims_to_operand_dims out of range");
  /* operand dims covered by update window dims, in order, and window sizes */
  int64_t win_operand[RY_MAX_RANK], wsize[RY_MAX_RANK];
  int nw = 0;
  for (int d = 0; d < xs->rank; d++) {
    wsize[d] = 1;
    if (!in_list(&sd->inserted_window_dims, d)) {
      if (nw >= sd->update_window_dims.n) return ry__err(RY_ERR_VERIFY, "update_window_dims do not match inserted_window_dims");
      int64_t ud = sd->update_window_dims.v[nw];
      if (ud < 0 || ud >= us->rank) return ry__err(RY_ERR_VERIFY, "update_window_dims out of range");
      wsize[d] = us->dims[ud];
      win_operand[nw++] = d;
    }
  }
  if (nw != sd->update_window_dims.n) return ry__err(RY_ERR_VERIFY, "update_window_dims do not match inserted_window_dims");
  int64_t xst[RY_MAX_RANK];
  ry__strides(*xs, xst);
  ry_dtype t = o->type.dtype;
  ry_shape outer;
  int64_t run = inner_run(us, &sd->update_window_dims, nw ? win_operand[nw - 1] : -1, xs->rank, &outer);
  int64_t unum = ry_shape_numel(outer), idx[RY_MAX_RANK] = {0};
  if (run == 0) unum = 0;
  for (int64_t j = 0; j < unum; j++, ryi_next(idx, &outer)) {
    int64_t bidx[RY_MAX_RANK], start[RY_MAX_RANK], full[RY_MAX_RANK] = {0};
    int nb = 0;
    for (int d = 0; d < us->rank; d++)
      if (!in_list(&sd->update_window_dims, d)) bidx[nb++] = idx[d];
    read_index_vector(ind, ivd, bidx, nvec, start);
    for (int k = 0; k < nvec; k++) full[sd->scatter_dims_to_operand_dims.v[k]] = start[k];
    bool fits = true;
    for (int d = 0; d < xs->rank && fits; d++) fits = full[d] >= 0 && full[d] <= xs->dims[d] - wsize[d];
    if (!fits) continue;
    for (int k = 0; k < nw; k++) full[win_operand[k]] += idx[sd->update_window_dims.v[k]];
    int64_t dst = 0;
    for (int d = 0; d < xs->rank; d++) dst += full[d] * xst[d];
    if (t == RY_F32 && sd->kind == RY_SCATTER_ADD) { /* an f32 sum rounds as combine's sum in double does */
      float *d = (float *)o->data + dst;
      const float *u = (const float *)upd->data + j * run;
      for (int64_t e = 0; e < run; e++) d[e] += u[e];
    } else {
      for (int64_t e = 0; e < run; e++) combine(sd->kind, t, o->data, dst + e, upd->data, j * run + e);
    }
  }
  return NULL;
}
