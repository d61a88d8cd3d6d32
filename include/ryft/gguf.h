/* ryft/gguf.h - GGUF model files (llama.cpp / ggml) and ggml's block
 * quantization formats.
 *
 * A GGUF file is a little-endian header (magic "GGUF", version 2 or 3, the
 * tensor and key/value counts), typed key/value metadata, tensor infos (name,
 * dims, ggml type, offset) and, at the next multiple of `general.alignment`
 * (default 32), the tensor data. ry_gguf_open maps the file read-only: tensor
 * data and metadata strings are read in place, never copied, and stay valid
 * until ry_gguf_close. Everything is validated on open (magic, version,
 * counts and lengths against the file size, integer overflow, value and
 * tensor types, duplicate keys and tensor names, tensor data in bounds and
 * aligned); errors name the file, the key or tensor and the byte offset.
 *
 * Dims are in ggml order: dims[0] is the length of a row (the fastest
 * varying), so a ggml [ne0, ne1] tensor is a row-major ryft [ne1, ne0]
 * array (ry_gguf_tensor_shape). Big-endian GGUF files are refused. */
#ifndef RYFT_GGUF_H
#define RYFT_GGUF_H

#include "core.h"
#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ggml tensor types ------------------------------------------------------
 * The values are ggml's (enum ggml_type). Every type below is known: its
 * block size and bytes per block are in one table, so files holding any of
 * them open and are size-checked; ry_ggml_dequantize handles F32, F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K. */
typedef enum ry_ggml_type {
  RY_GGML_F32 = 0, RY_GGML_F16 = 1, RY_GGML_Q4_0 = 2, RY_GGML_Q4_1 = 3,
  RY_GGML_Q5_0 = 6, RY_GGML_Q5_1 = 7, RY_GGML_Q8_0 = 8, RY_GGML_Q8_1 = 9,
  RY_GGML_Q2_K = 10, RY_GGML_Q3_K = 11, RY_GGML_Q4_K = 12, RY_GGML_Q5_K = 13,
  RY_GGML_Q6_K = 14, RY_GGML_Q8_K = 15, RY_GGML_IQ2_XXS = 16, RY_GGML_IQ2_XS = 17,
  RY_GGML_IQ3_XXS = 18, RY_GGML_IQ1_S = 19, RY_GGML_IQ4_NL = 20, RY_GGML_IQ3_S = 21,
  RY_GGML_IQ2_S = 22, RY_GGML_IQ4_XS = 23, RY_GGML_I8 = 24, RY_GGML_I16 = 25,
  RY_GGML_I32 = 26, RY_GGML_I64 = 27, RY_GGML_F64 = 28, RY_GGML_IQ1_M = 29,
  RY_GGML_BF16 = 30, RY_GGML_TQ1_0 = 34, RY_GGML_TQ2_0 = 35, RY_GGML_MXFP4 = 39,
  RY_GGML_TYPE_LIMIT = 40 /* every known type is below this */
} ry_ggml_type;

/* "Q4_1", or NULL for an unknown type number. */
RY_API const char *ry_ggml_type_name(int type);
/* Elements per block (1 for the plain types) and bytes per block; 0 for an
 * unknown type. */
RY_API int64_t ry_ggml_block_size(int type);
RY_API size_t ry_ggml_type_size(int type);
/* Bytes of n elements of `type` (a row); an error when the type is unknown,
 * n is not a multiple of the block size, or the size overflows. */
RY_API ry_status ry_ggml_row_size(int type, int64_t n, size_t *out);

/* Dequantize n elements (a multiple of the block size) from src (ggml's
 * layout, any alignment) to f32, bit-identical to ggml's reference code and
 * the gguf Python package's gguf.quants.dequantize. RY_ERR_UNSUPPORTED names
 * a type this cannot read (the IQ and TQ types, Q8_1, Q8_K, ints). */
RY_API ry_status ry_ggml_dequantize(int type, const void *src, float *dst, int64_t n);
/* Quantize n f32 values to `type` in ggml's layout, bit-identical to
 * gguf.quants.quantize: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. The
 * K-quants have no quantizer here (the gguf package has none either):
 * RY_ERR_UNSUPPORTED. dst holds ry_ggml_row_size(type, n) bytes. */
RY_API ry_status ry_ggml_quantize(int type, const float *src, void *dst, int64_t n);

/* Traced dequantization: u8[..., k * type_size] raw blocks of `type` (a row
 * per last axis, as a GGUF tensor's bytes) -> f32[..., k * block_size], the
 * `dequantize` op. Every type ry_ggml_dequantize reads; bit-identical to it
 * on every backend: the interpreter runs the reference dequantizers, the
 * StableHLO emitter expands the op into integer ops (src/nn/dequant.c) so any
 * PJRT plugin runs it, and the cpu backend multiplies a dot_general's operand
 * by the blocks without materializing the f32 weights. The blocks are
 * integers, so they carry no tangent: gradients flow to whatever the result
 * is combined with (the activations of a matmul), never into the weights. */
RY_API ry_value ry_dequantize_(ry_builder *b, ry_loc loc, ry_value blocks, int type);
#define ry_dequantize(b, blocks, type) ry_dequantize_((b), RY_HERE, (blocks), (type))
/* The same, allowing a dot_general that consumes the result on the cpu
 * backend to round its other operand to 8 bits per block of 32 (llama.cpp's
 * Q8 activations: an int8 dot product per block, several times faster, with
 * a relative error of about 1e-3 in the product). Elsewhere it is
 * ry_dequantize. For inference; ry_lm_load uses it. */
RY_API ry_value ry_dequantize_act8_(ry_builder *b, ry_loc loc, ry_value blocks, int type);
#define ry_dequantize_act8(b, blocks, type) ry_dequantize_act8_((b), RY_HERE, (blocks), (type))

/* ---- metadata values ------------------------------------------------------ */
typedef enum ry_gguf_type {
  RY_GGUF_U8 = 0, RY_GGUF_I8 = 1, RY_GGUF_U16 = 2, RY_GGUF_I16 = 3,
  RY_GGUF_U32 = 4, RY_GGUF_I32 = 5, RY_GGUF_F32 = 6, RY_GGUF_BOOL = 7,
  RY_GGUF_STRING = 8, RY_GGUF_ARRAY = 9, RY_GGUF_U64 = 10, RY_GGUF_I64 = 11,
  RY_GGUF_F64 = 12, RY_GGUF_TYPE_COUNT
} ry_gguf_type;
RY_API const char *ry_gguf_type_name(int type); /* "u32", "string", "array"; "?" */

typedef struct ry_gguf_node ry_gguf_node; /* private */

/* A metadata value, read in place from the file (valid until the handle is
 * closed). Scalars: `data` points at the little-endian value (unaligned);
 * strings: `data` at `n` bytes, not NUL-terminated (they may hold NULs);
 * arrays: `elem` is the element type, `n` the count; read elements with
 * ry_gguf_arr_get (any element type, nested arrays too) or, for arrays of
 * numbers, straight from `data` (packed little-endian, unaligned). */
typedef struct ry_gguf_value {
  ry_gguf_type type;
  ry_gguf_type elem; /* arrays only */
  uint64_t n;        /* array: element count; string: length in bytes */
  const void *data;
  const ry_gguf_node *node_; /* private: the parsed node */
} ry_gguf_value;

/* Typed reads of a value; an error (RY_ERR_DTYPE) names both types on a
 * mismatch. _int accepts every integer type (and refuses a u64 above
 * INT64_MAX), _float f32 and f64, _bool bool, _str strings. */
RY_API ry_status ry_gguf_value_int(const ry_gguf_value *v, int64_t *out);
RY_API ry_status ry_gguf_value_float(const ry_gguf_value *v, double *out);
RY_API ry_status ry_gguf_value_bool(const ry_gguf_value *v, int *out);
RY_API ry_status ry_gguf_value_str(const ry_gguf_value *v, const char **s, size_t *len);
/* Element i of an array as a value (RY_ERR_INVALID_ARGUMENT out of range or
 * when v is not an array). */
RY_API ry_status ry_gguf_arr_get(const ry_gguf_value *v, uint64_t i, ry_gguf_value *out);
/* Element i of an array of strings (the common case: vocabularies). */
RY_API ry_status ry_gguf_arr_str(const ry_gguf_value *v, uint64_t i, const char **s, size_t *len);

/* ---- reading a file ------------------------------------------------------ */
typedef struct ry_gguf ry_gguf;

#define RY_GGUF_MAX_DIMS 4 /* as ggml */
typedef struct ry_gguf_tensor {
  const char *name;  /* NUL-terminated, owned by the handle */
  int n_dims;        /* 0..RY_GGUF_MAX_DIMS */
  int64_t dims[RY_GGUF_MAX_DIMS]; /* ggml order: dims[0] is the row length; unused dims are 1 */
  ry_ggml_type type;
  uint64_t offset;   /* from the start of the data section */
  size_t size;       /* bytes */
  const void *data;  /* in the mapping */
} ry_gguf_tensor;

/* Map and validate a file (RY_ERR_IO when it cannot be opened, RY_ERR_PARSE
 * for bad contents, RY_ERR_UNSUPPORTED for a valid file ryft cannot read). */
RY_API ry_status ry_gguf_open(const char *path, ry_gguf **out);
/* The same for a file in memory, which is borrowed, not copied: it must stay
 * valid and unchanged until ry_gguf_close. `source` names it in messages. */
RY_API ry_status ry_gguf_parse(const void *data, size_t size, const char *source, ry_gguf **out);
RY_API void ry_gguf_close(ry_gguf *g); /* NULL is fine */

RY_API uint32_t ry_gguf_version(const ry_gguf *g);   /* 2 or 3 */
RY_API uint32_t ry_gguf_alignment(const ry_gguf *g); /* general.alignment or 32 */
RY_API size_t ry_gguf_data_offset(const ry_gguf *g); /* file offset of the tensor data */
RY_API size_t ry_gguf_file_size(const ry_gguf *g);

/* Metadata, in file order. */
RY_API int64_t ry_gguf_n_kv(const ry_gguf *g);
RY_API const char *ry_gguf_key(const ry_gguf *g, int64_t i); /* NULL out of range */
RY_API const ry_gguf_value *ry_gguf_kv_value(const ry_gguf *g, int64_t i);
/* The value of a key, or NULL when absent. */
RY_API const ry_gguf_value *ry_gguf_find(const ry_gguf *g, const char *key);

/* Typed getters by key: RY_ERR_NOT_FOUND names a missing key, RY_ERR_DTYPE a
 * value of another type (naming the key and both types). */
RY_API ry_status ry_gguf_get_int(const ry_gguf *g, const char *key, int64_t *out);
RY_API ry_status ry_gguf_get_float(const ry_gguf *g, const char *key, double *out);
RY_API ry_status ry_gguf_get_bool(const ry_gguf *g, const char *key, int *out);
RY_API ry_status ry_gguf_get_str(const ry_gguf *g, const char *key, const char **s, size_t *len);
/* An array whose elements have type `elem` (any element type when elem is
 * RY_GGUF_TYPE_COUNT). */
RY_API ry_status ry_gguf_get_arr(const ry_gguf *g, const char *key, ry_gguf_type elem, ry_gguf_value *out);

/* Tensors, in file order. */
RY_API int64_t ry_gguf_n_tensors(const ry_gguf *g);
RY_API const ry_gguf_tensor *ry_gguf_tensor_at(const ry_gguf *g, int64_t i); /* NULL out of range */
RY_API const ry_gguf_tensor *ry_gguf_find_tensor(const ry_gguf *g, const char *name); /* NULL if absent */
/* The ryft (row-major) shape of a tensor: its dims reversed. */
RY_API ry_shape ry_gguf_tensor_shape(const ry_gguf_tensor *t);
/* A new f32 array of the tensor's values (dequantized), shape as above. */
RY_API ry_status ry_gguf_tensor_to_f32(const ry_gguf_tensor *t, ry_array **out);

/* ---- writing a file ------------------------------------------------------
 * Collect metadata and tensors, then write a version 3 file atomically (temp
 * file + fsync + rename). Keys and values are copied when added; tensor data
 * is borrowed until ry_gguf_writer_write returns. The alignment is the
 * `general.alignment` u32 when one was added, 32 otherwise. Adding a key or
 * tensor name twice is an error. */
typedef struct ry_gguf_writer ry_gguf_writer;
RY_API ry_status ry_gguf_writer_new(ry_gguf_writer **out);
RY_API void ry_gguf_writer_free(ry_gguf_writer *w); /* NULL is fine */
RY_API ry_status ry_gguf_writer_add_int(ry_gguf_writer *w, const char *key, ry_gguf_type type, int64_t v); /* an integer type or bool */
RY_API ry_status ry_gguf_writer_add_float(ry_gguf_writer *w, const char *key, ry_gguf_type type, double v); /* f32 or f64 */
RY_API ry_status ry_gguf_writer_add_str(ry_gguf_writer *w, const char *key, const char *s, size_t len);
/* An array of n numbers or bools of type elem, packed little-endian. */
RY_API ry_status ry_gguf_writer_add_arr(ry_gguf_writer *w, const char *key, ry_gguf_type elem, uint64_t n, const void *data);
/* An array of n strings (lens may be NULL for NUL-terminated strings). */
RY_API ry_status ry_gguf_writer_add_str_arr(ry_gguf_writer *w, const char *key, uint64_t n, const char *const *strs,
                                     const size_t *lens);
/* Any value read from a file (nested arrays included), copied. */
RY_API ry_status ry_gguf_writer_add_value(ry_gguf_writer *w, const char *key, const ry_gguf_value *v);
/* A tensor of `type` with ggml-order dims; `data` holds exactly the
 * ry_ggml_row_size of all its elements (checked). */
RY_API ry_status ry_gguf_writer_add_tensor(ry_gguf_writer *w, const char *name, ry_ggml_type type, int n_dims,
                                    const int64_t *dims, const void *data, size_t size);
/* Every key/value and tensor of g, in order (g must outlive the write). */
RY_API ry_status ry_gguf_writer_add_all(ry_gguf_writer *w, const ry_gguf *g);
RY_API ry_status ry_gguf_writer_write(const ry_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
