/* A batch iterator over arrays sharing a leading axis, shuffled per pass in
 * the order of jax.random.permutation(key, rows) (ryft/io.h). */
#include <string.h>

#include "io_internal.h"
#include "ryft/io.h"
#include "ryft/random.h"

#define MAX_ARRAYS 16

struct ry_batches {
  int n;
  ry_array *arrays[MAX_ARRAYS];
  int64_t rows, batch, pos;
  int drop_last;
  int64_t *order; /* [rows] */
};

void ry_batches_free(ry_batches *it) {
  if (!it) return;
  for (int i = 0; i < it->n; i++) ry_array_release(it->arrays[i]);
  ry__free(it->order, (size_t)(it->rows ? it->rows : 1) * sizeof *it->order);
  ry__free(it, sizeof *it);
}

ry_status ry_batches_reset(ry_batches *it, const ry_key *key) {
  if (!it) return ry__err(RY_ERR_INVALID_ARGUMENT, "batches: NULL iterator");
  it->pos = 0;
  if (!key) return NULL;
  return ry_key_permutation(*key, it->rows, it->order);
}

ry_status ry_batches_new(int n, ry_array *const *arrays, int64_t batch_size, const ry_key *key, int drop_last,
                         ry_batches **out) {
  *out = NULL;
  if (n < 1 || n > MAX_ARRAYS || !arrays)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "batches: %d arrays (1..%d)", n, MAX_ARRAYS);
  if (batch_size < 1) return ry__err(RY_ERR_INVALID_ARGUMENT, "batches: batch size %lld must be >= 1", (long long)batch_size);
  int64_t rows = -1;
  for (int i = 0; i < n; i++) {
    if (!arrays[i]) return ry__err(RY_ERR_INVALID_ARGUMENT, "batches: array %d is NULL", i);
    ry_status hs = ry__array_sync(arrays[i]); /* batches are cut from host memory */
    if (hs) return ry__err_prefix(hs, "batches: array %d", i);
    ry_shape s = ry_array_shape(arrays[i]);
    if (s.rank < 1) return ry__err(RY_ERR_SHAPE, "batches: array %d is a scalar; it needs a leading axis", i);
    if (rows >= 0 && s.dims[0] != rows) {
      char b0[96], bi[96];
      ry_shape_str(ry_array_shape(arrays[0]), b0, sizeof b0);
      ry_shape_str(s, bi, sizeof bi);
      return ry__err(RY_ERR_SHAPE, "batches: array 0 has shape %s but array %d has %s: the leading dims differ", b0, i, bi);
    }
    rows = s.dims[0];
  }
  if (rows > INT32_MAX) return ry__err(RY_ERR_INVALID_ARGUMENT, "batches: %lld rows is too many", (long long)rows);
  ry_batches *it = ry__calloc(1, sizeof *it);
  if (!it) return ry__oom();
  it->order = ry__malloc((size_t)(rows ? rows : 1) * sizeof *it->order);
  if (!it->order) {
    ry__free(it, sizeof *it);
    return ry__oom();
  }
  it->n = n;
  for (int i = 0; i < n; i++) it->arrays[i] = ry_array_retain(arrays[i]);
  it->rows = rows;
  it->batch = batch_size;
  it->drop_last = drop_last;
  for (int64_t i = 0; i < rows; i++) it->order[i] = i;
  ry_status s = ry_batches_reset(it, key);
  if (s) {
    ry_batches_free(it);
    return s;
  }
  *out = it;
  return NULL;
}

int64_t ry_batches_count(const ry_batches *it) {
  if (!it) return 0;
  return it->drop_last ? it->rows / it->batch : (it->rows + it->batch - 1) / it->batch;
}

const int64_t *ry_batches_order(const ry_batches *it) { return it ? it->order : NULL; }

ry_status ry_batches_next(ry_batches *it, ry_array **out) {
  if (!it) return ry__err(RY_ERR_INVALID_ARGUMENT, "batches: NULL iterator");
  for (int i = 0; i < it->n; i++) out[i] = NULL;
  int64_t left = it->rows - it->pos;
  int64_t m = left < it->batch ? left : it->batch;
  if (m <= 0 || (it->drop_last && m < it->batch)) return NULL; /* end of the pass */
  for (int i = 0; i < it->n; i++) {
    ry_type t = ry_array_type(it->arrays[i]);
    size_t row = ry_array_nbytes(it->arrays[i]) / (size_t)(it->rows ? it->rows : 1);
    t.shape.dims[0] = m;
    ry_array *a;
    ry_status s = ry__array_new(t, &a);
    if (s) {
      for (int k = 0; k < i; k++) {
        ry_array_release(out[k]);
        out[k] = NULL;
      }
      return s;
    }
    unsigned char *dst = ry__array_mut(a);
    const unsigned char *src = ry_array_data(it->arrays[i]);
    for (int64_t r = 0; r < m; r++) memcpy(dst + (size_t)r * row, src + (size_t)it->order[it->pos + r] * row, row);
    out[i] = a;
  }
  it->pos += m;
  return NULL;
}
