/* dequantize: ggml's blocks along the last axis, decoded by the reference
 * dequantizers of src/io/quant.c (bit-identical to ggml and gguf-py). The
 * blocks of every row follow each other, so the whole array is one run. */
#include "interp.h"
#include "ryft/gguf.h"

ry_status ryi_dequantize(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  ry_status s = ryi_new_result(f, n, 0, &out[0]);
  if (s) return s;
  int64_t numel = ry_shape_numel(out[0]->type.shape);
  return ry_ggml_dequantize((int)n->attrs.quant.format, in[0]->data, out[0]->data, numel);
}
