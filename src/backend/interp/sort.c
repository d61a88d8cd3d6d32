/* sort: every operand is permuted along `dim` by the lexicographic order of
 * the first num_keys operands. Floats use the order of JAX's sort comparator:
 * -inf < ... < inf < NaN, with all NaNs equal and -0 equal to +0 (JAX
 * canonicalizes both before comparing; the golden data confirms it, while
 * docs/IR.md says -0 < +0). descending reverses the comparison (NaN first). The sort is always stable (a merge sort), which also
 * satisfies stable=false. */
#include <math.h>

#include "interp.h"

typedef struct {
  int nkeys;
  const bool *is_float;
  double *const *fk; /* [nkeys][len] */
  int64_t *const *ik;
  bool descending;
} keyset;

static int total_cmp(double a, double b) {
  bool na = isnan(a), nb = isnan(b);
  if (na || nb) return (int)na - (int)nb;
  if (a < b) return -1;
  return a > b; /* -0 == +0, as JAX's sort comparator canonicalizes them */
}

static int cmp(const keyset *ks, int64_t x, int64_t y) {
  for (int k = 0; k < ks->nkeys; k++) {
    int c;
    if (ks->is_float[k]) c = total_cmp(ks->fk[k][x], ks->fk[k][y]);
    else c = ks->ik[k][x] < ks->ik[k][y] ? -1 : ks->ik[k][x] > ks->ik[k][y];
    if (c) return ks->descending ? -c : c;
  }
  return 0;
}

/* Stable bottom-up merge sort of perm[0..len) using tmp. */
static void merge_sort(const keyset *ks, int64_t *perm, int64_t *tmp, int64_t len) {
  for (int64_t w = 1; w < len; w *= 2) {
    for (int64_t lo = 0; lo < len; lo += 2 * w) {
      int64_t mid = lo + w < len ? lo + w : len, hi = lo + 2 * w < len ? lo + 2 * w : len;
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = cmp(ks, perm[j], perm[i]) < 0 ? perm[j++] : perm[i++];
      while (i < mid) tmp[k++] = perm[i++];
      while (j < hi) tmp[k++] = perm[j++];
    }
    memcpy(perm, tmp, (size_t)len * sizeof(int64_t));
  }
}

ry_status ryi_sort(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  int nops = n->n_operands;
  int64_t dim = n->attrs.sort.dim, nkeys = n->attrs.sort.num_keys;
  if (nops < 1 || n->n_results != nops) return ry__err(RY_ERR_VERIFY, "sort needs as many results as operands");
  const ry_shape *xs = &in[0]->type.shape;
  if (dim < 0 || dim >= xs->rank) return ry__err(RY_ERR_VERIFY, "dim %lld out of range", (long long)dim);
  if (nkeys < 1 || nkeys > nops) return ry__err(RY_ERR_VERIFY, "num_keys %lld out of range", (long long)nkeys);
  for (int i = 0; i < nops; i++)
    if (!ry_shape_equal(in[i]->type.shape, *xs)) return ry__err(RY_ERR_SHAPE, "operands differ in shape");
  int64_t len = xs->dims[dim], inner = 1, outer = 1;
  for (int d = 0; d < dim; d++) outer *= xs->dims[d];
  for (int d = (int)dim + 1; d < xs->rank; d++) inner *= xs->dims[d];
  int nk = (int)nkeys;
  size_t lsize = (size_t)(len ? len : 1) * 8;
  /* one block: perm, tmp, then nk key lines */
  size_t total = lsize * (size_t)(2 + nk) + (size_t)nk * (sizeof(bool) + 2 * sizeof(void *));
  char *mem = ry__malloc(total);
  if (!mem) return ry__oom();
  int64_t *perm = (int64_t *)mem, *tmp = (int64_t *)(mem + lsize);
  double **fk = (double **)(mem + lsize * (size_t)(2 + nk));
  int64_t **ik = (int64_t **)(fk + nk);
  bool *is_float = (bool *)(ik + nk);
  for (int k = 0; k < nk; k++) {
    fk[k] = (double *)(mem + lsize * (size_t)(2 + k));
    ik[k] = (int64_t *)fk[k];
    is_float[k] = ry_dtype_is_float(in[k]->type.dtype);
  }
  keyset ks = {nk, is_float, fk, ik, n->attrs.sort.descending};
  ry_status s = NULL;
  for (int i = 0; i < nops && !s; i++) s = ryi_new_result(f, n, i, &out[i]);
  for (int64_t a = 0; a < outer && !s; a++)
    for (int64_t b = 0; b < inner; b++) {
      int64_t base = a * len * inner + b;
      for (int64_t e = 0; e < len; e++) {
        perm[e] = e;
        for (int k = 0; k < nk; k++) {
          if (is_float[k]) fk[k][e] = ry__load_f64(in[k]->type.dtype, in[k]->data, base + e * inner);
          else ik[k][e] = ryi_ikey(in[k]->type.dtype, ry__load_i64(in[k]->type.dtype, in[k]->data, base + e * inner));
        }
      }
      merge_sort(&ks, perm, tmp, len);
      for (int i = 0; i < nops; i++) {
        size_t es = ry_dtype_size(in[i]->type.dtype);
        for (int64_t e = 0; e < len; e++)
          memcpy((char *)out[i]->data + (size_t)(base + e * inner) * es,
                 (const char *)in[i]->data + (size_t)(base + perm[e] * inner) * es, es);
      }
    }
  ry__free(mem, total);
  return s; /* on failure the evaluator releases the results already made */
}
