/* Shapes and types: construction, comparison, formatting. */
#include "internal.h"

ry_shape ry_shape_make(int rank, const int64_t *dims) {
  ry_shape s;
  memset(&s, 0, sizeof s);
  if (rank < 0) rank = 0;
  if (rank > RY_MAX_RANK) rank = RY_MAX_RANK;
  s.rank = rank;
  for (int i = 0; i < rank; i++) s.dims[i] = dims ? dims[i] : 0;
  return s;
}

int64_t ry_shape_numel(ry_shape s) {
  /* a zero dim first: the product of the others may not fit, and need not */
  for (int i = 0; i < s.rank; i++)
    if (s.dims[i] == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++) n *= s.dims[i];
  return n;
}

int ry_shape_equal(ry_shape a, ry_shape b) {
  if (a.rank != b.rank) return 0;
  for (int i = 0; i < a.rank; i++)
    if (a.dims[i] != b.dims[i]) return 0;
  return 1;
}

int ry_type_equal(ry_type a, ry_type b) { return a.dtype == b.dtype && ry_shape_equal(a.shape, b.shape); }

char *ry_shape_str(ry_shape s, char *buf, size_t size) {
  size_t n = 0;
  if (!size) return buf;
  buf[0] = 0;
#define PUT(...) (n += (size_t)snprintf(buf + (n < size ? n : size - 1), n < size ? size - n : 1, __VA_ARGS__))
  PUT("[");
  for (int i = 0; i < s.rank; i++) PUT(i ? ",%lld" : "%lld", (long long)s.dims[i]);
  PUT("]");
#undef PUT
  return buf;
}

char *ry_type_str(ry_type t, char *buf, size_t size) {
  char sh[RY_MAX_RANK * 21 + 3];
  ry_shape_str(t.shape, sh, sizeof sh);
  snprintf(buf, size, "%s%s", ry_dtype_name(t.dtype), sh);
  return buf;
}

void ry__strides(ry_shape s, int64_t strides[RY_MAX_RANK]) {
  int64_t st = 1;
  for (int i = s.rank - 1; i >= 0; i--) {
    strides[i] = st;
    st *= s.dims[i];
  }
}
