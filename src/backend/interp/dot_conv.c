/* Contractions: dot_general and convolution (lax.conv_general_dilated).
 *
 * Both load their operands once into double (float operands or a float
 * result) or int64 arrays, accumulate in double or wrapping uint64, and round
 * once into the result dtype, which may differ from the operands' (the
 * preferred element type). */
#include <math.h>

#include "interp.h"

typedef struct {
  bool is_float;
  double *f;
  int64_t *i;
  size_t size;
} loaded;

static ry_status load(const ry_array *a, bool as_float, loaded *l) {
  int64_t numel = ry_shape_numel(a->type.shape);
  l->is_float = as_float;
  l->size = (size_t)(numel ? numel : 1) * 8;
  void *p = ry__malloc(l->size);
  if (!p) return ry__oom();
  l->f = p;
  l->i = p;
  ry_dtype t = a->type.dtype;
  for (int64_t k = 0; k < numel; k++) {
    if (as_float) l->f[k] = ry__load_f64(t, a->data, k);
    else l->i[k] = ry__load_i64(t, a->data, k);
  }
  return NULL;
}

static void unload(loaded *l) { ry__free(l->f, l->size); }

static void store_acc(ry_array *o, int64_t j, bool is_float, double fa, uint64_t ia) {
  if (is_float) ryi_store_f64(o->type.dtype, o->data, j, fa);
  else ry__store_i64(o->type.dtype, o->data, j, (int64_t)ia);
}

/* ---- dot_general ---- */

ry_status ryi_dot_general(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *y = in[1];
  const ry_dot_dims *dd = &n->attrs.dot;
  const ry_shape *ls = &x->type.shape, *rs = &y->type.shape;
  if (dd->lhs_batch.n != dd->rhs_batch.n || dd->lhs_contract.n != dd->rhs_contract.n)
    return ry__err(RY_ERR_VERIFY, "batch/contracting dimension lists differ in length");
  bool lused[RY_MAX_RANK] = {false}, rused[RY_MAX_RANK] = {false};
  const ry_axes *lists[4] = {&dd->lhs_batch, &dd->lhs_contract, &dd->rhs_batch, &dd->rhs_contract};
  for (int li = 0; li < 4; li++)
    for (int i = 0; i < lists[li]->n; i++) {
      int64_t d = lists[li]->v[i];
      int rank = li < 2 ? ls->rank : rs->rank;
      if (d < 0 || d >= rank) return ry__err(RY_ERR_VERIFY, "dimension %lld out of range", (long long)d);
      (li < 2 ? lused : rused)[d] = true;
    }
  int64_t lst[RY_MAX_RANK], rst[RY_MAX_RANK];
  ry__strides(*ls, lst);
  ry__strides(*rs, rst);
  /* result dim -> (lhs stride, rhs stride) */
  int64_t olst[RY_MAX_RANK] = {0}, orst[RY_MAX_RANK] = {0};
  int od = 0;
  for (int i = 0; i < dd->lhs_batch.n; i++, od++) {
    olst[od] = lst[dd->lhs_batch.v[i]];
    orst[od] = rst[dd->rhs_batch.v[i]];
  }
  for (int d = 0; d < ls->rank; d++)
    if (!lused[d]) olst[od++] = lst[d];
  for (int d = 0; d < rs->rank; d++)
    if (!rused[d]) orst[od++] = rst[d];
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  if (od != o->type.shape.rank) {
    ry_array_release(o);
    return ry__err(RY_ERR_VERIFY, "result rank %d does not match the dimension numbers (%d)", o->type.shape.rank, od);
  }
  /* contraction offsets */
  ry_shape cs = {dd->lhs_contract.n, {0}};
  for (int i = 0; i < cs.rank; i++) cs.dims[i] = ls->dims[dd->lhs_contract.v[i]];
  int64_t K = ry_shape_numel(cs);
  size_t ksize = (size_t)(K ? K : 1) * sizeof(int64_t);
  int64_t *lco = ry__malloc(ksize), *rco = ry__malloc(ksize);
  bool is_float = ry_dtype_is_float(x->type.dtype) || ry_dtype_is_float(y->type.dtype) || ry_dtype_is_float(o->type.dtype);
  loaded L = {0}, R = {0};
  if (!lco || !rco || (s = load(x, is_float, &L)) || (s = load(y, is_float, &R))) goto done;
  int64_t cidx[RY_MAX_RANK] = {0};
  for (int64_t k = 0; k < K; k++, ryi_next(cidx, &cs)) {
    lco[k] = rco[k] = 0;
    for (int i = 0; i < cs.rank; i++) {
      lco[k] += cidx[i] * lst[dd->lhs_contract.v[i]];
      rco[k] += cidx[i] * rst[dd->rhs_contract.v[i]];
    }
  }
  const ry_shape *os = &o->type.shape;
  int64_t onum = ry_shape_numel(*os), idx[RY_MAX_RANK] = {0};
  for (int64_t j = 0; j < onum; j++, ryi_next(idx, os)) {
    int64_t lo = 0, ro = 0;
    for (int d = 0; d < os->rank; d++) {
      lo += idx[d] * olst[d];
      ro += idx[d] * orst[d];
    }
    double fa = 0;
    uint64_t ia = 0;
    if (is_float)
      for (int64_t k = 0; k < K; k++) fa += L.f[lo + lco[k]] * R.f[ro + rco[k]];
    else
      for (int64_t k = 0; k < K; k++) ia += (uint64_t)L.i[lo + lco[k]] * (uint64_t)R.i[ro + rco[k]];
    store_acc(o, j, is_float, fa, ia);
  }
done:
  if (!s && (!lco || !rco)) s = ry__oom();
  ry__free(lco, ksize);
  ry__free(rco, ksize);
  if (L.f) unload(&L);
  if (R.f) unload(&R);
  if (s) {
    ry_array_release(o);
    return s;
  }
  out[0] = o;
  return NULL;
}

/* ---- convolution ---- */

static int64_t at(const ry_axes *a, int i, int64_t dflt) { return a->n ? a->v[i] : dflt; }

ry_status ryi_convolution(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *w = in[1];
  const ry_conv_dims *cd = &n->attrs.conv;
  const ry_shape *ls = &x->type.shape, *ks = &w->type.shape;
  int rank = ls->rank, nsp = rank - 2;
  if (rank < 2 || ks->rank != rank) return ry__err(RY_ERR_VERIFY, "operands must have the same rank >= 2");
  /* layouts: [batch, feature, spatial...] positions; empty means NCHW/OIHW */
  int64_t in_d[RY_MAX_RANK], k_d[RY_MAX_RANK], out_d[RY_MAX_RANK];
  for (int i = 0; i < rank; i++) {
    in_d[i] = at(&cd->input_dims, i, i);
    k_d[i] = at(&cd->kernel_dims, i, i);
    out_d[i] = at(&cd->output_dims, i, i);
    if (in_d[i] < 0 || in_d[i] >= rank || k_d[i] < 0 || k_d[i] >= rank || out_d[i] < 0 || out_d[i] >= rank)
      return ry__err(RY_ERR_VERIFY, "dimension numbers out of range");
  }
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  const ry_shape *os = &o->type.shape;
  int64_t fgc = cd->feature_groups > 0 ? cd->feature_groups : 1, bgc = cd->batch_groups > 0 ? cd->batch_groups : 1;
  int64_t C = ls->dims[in_d[1]], O = ks->dims[k_d[0]], I = ks->dims[k_d[1]], Bo = os->dims[out_d[0]];
  if (O % fgc || O % bgc || C != I * fgc || os->dims[out_d[1]] != O || ls->dims[in_d[0]] != Bo * bgc) {
    ry_array_release(o);
    return ry__err(RY_ERR_VERIFY, "feature/batch group counts do not match the shapes");
  }
  int64_t stride[RY_MAX_RANK], plo[RY_MAX_RANK], ld[RY_MAX_RANK], rd[RY_MAX_RANK], dil[RY_MAX_RANK];
  for (int k = 0; k < nsp; k++) {
    stride[k] = at(&cd->stride, k, 1);
    plo[k] = at(&cd->pad_low, k, 0);
    ld[k] = at(&cd->lhs_dilation, k, 1);
    rd[k] = at(&cd->rhs_dilation, k, 1);
    if (stride[k] < 1 || ld[k] < 1 || rd[k] < 1) {
      ry_array_release(o);
      return ry__err(RY_ERR_VERIFY, "strides and dilations must be >= 1");
    }
    int64_t len = ls->dims[in_d[2 + k]];
    dil[k] = len ? (len - 1) * ld[k] + 1 : 0;
  }
  bool is_float = ry_dtype_is_float(x->type.dtype) || ry_dtype_is_float(w->type.dtype) || ry_dtype_is_float(o->type.dtype);
  loaded L = {0}, R = {0};
  if ((s = load(x, is_float, &L)) || (s = load(w, is_float, &R))) goto done;
  int64_t lst[RY_MAX_RANK], kst[RY_MAX_RANK];
  ry__strides(*ls, lst);
  ry__strides(*ks, kst);
  ry_shape kspace = {nsp, {0}}; /* kernel spatial window */
  for (int k = 0; k < nsp; k++) kspace.dims[k] = ks->dims[k_d[2 + k]];
  int64_t knum = ry_shape_numel(kspace);
  int64_t onum = ry_shape_numel(*os), idx[RY_MAX_RANK] = {0};
  for (int64_t j = 0; j < onum; j++, ryi_next(idx, os)) {
    int64_t b = idx[out_d[0]], oc = idx[out_d[1]];
    int64_t gf = oc / (O / fgc), gb = oc / (O / bgc);
    int64_t lbase = (gb * Bo + b) * lst[in_d[0]], kbase = oc * kst[k_d[0]];
    double fa = 0;
    uint64_t ia = 0;
    for (int64_t i = 0; i < I; i++) {
      int64_t lb = lbase + (gf * I + i) * lst[in_d[1]], kb = kbase + i * kst[k_d[1]];
      int64_t kidx[RY_MAX_RANK] = {0};
      for (int64_t t = 0; t < knum; t++, ryi_next(kidx, &kspace)) {
        int64_t lo = lb, ko = kb;
        bool ok = true;
        for (int k = 0; k < nsp && ok; k++) {
          int64_t p = idx[out_d[2 + k]] * stride[k] + kidx[k] * rd[k] - plo[k];
          ok = p >= 0 && p < dil[k] && p % ld[k] == 0;
          lo += (p / ld[k]) * lst[in_d[2 + k]];
          ko += kidx[k] * kst[k_d[2 + k]];
        }
        if (!ok) continue;
        if (is_float) fa += L.f[lo] * R.f[ko];
        else ia += (uint64_t)L.i[lo] * (uint64_t)R.i[ko];
      }
    }
    store_acc(o, j, is_float, fa, ia);
  }
done:
  if (L.f) unload(&L);
  if (R.f) unload(&R);
  if (s) {
    ry_array_release(o);
    return s;
  }
  out[0] = o;
  return NULL;
}
