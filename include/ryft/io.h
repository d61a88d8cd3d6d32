/* ryft/io.h - reading and writing arrays in files: .npy, IDX (MNIST),
 * safetensors checkpoints, and a shuffling batch iterator. */
#ifndef RYFT_IO_H
#define RYFT_IO_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NumPy .npy files (format versions 1.0-3.0, C order). Reads little-endian
 * |b1 bool, i1 i2 i4 i8, u1 u4, f2 f4 f8 into the matching dtype; writes the
 * same, atomically (temp file + rename). NumPy has no bf16, so bf16 arrays
 * are refused with RY_ERR_DTYPE. Errors name the file and what was wrong. */
RY_API ry_status ry_npy_read(const char *path, ry_array **out);
RY_API ry_status ry_npy_parse(const void *data, size_t size, const char *source, ry_array **out);
RY_API ry_status ry_npy_write(const char *path, const ry_array *a);

/* ---- IDX (the MNIST file format) ------------------------------------------
 * Big-endian header: two zero bytes, a type byte (0x08 u8, 0x09 i8, 0x0B i16,
 * 0x0C i32, 0x0D f32, 0x0E f64), the rank, then rank u32 dims; the data
 * follows row-major, big-endian. Files may be gzip-compressed (detected by
 * the gzip magic, whatever the name). Errors (RY_ERR_IO for missing or
 * unreadable files, RY_ERR_PARSE for bad contents) name the file and what
 * was wrong: bad magic, rank, dims, truncated or trailing data. */
RY_API ry_status ry_idx_read(const char *path, ry_array **out);
/* The same from memory (raw or gzip); `source` names it in messages. */
RY_API ry_status ry_idx_parse(const void *data, size_t size, const char *source, ry_array **out);
/* Read and check the kind: images are magic 0x00000803 (u8, [n, rows, cols]),
 * labels 0x00000801 (u8, [n]). */
RY_API ry_status ry_idx_read_images(const char *path, ry_array **out);
RY_API ry_status ry_idx_read_labels(const char *path, ry_array **out);
/* Images and labels of one split, checking that the counts agree and that
 * every label is below `num_classes` (0 = no check). */
RY_API ry_status ry_idx_read_pair(const char *images_path, const char *labels_path, int num_classes, ry_array **images,
                           ry_array **labels);
/* Write an array as a raw (uncompressed) IDX file, atomically; u8 i8 i16 i32
 * f32 f64 only. For fixtures and tools. */
RY_API ry_status ry_idx_write(const char *path, const ry_array *a);

/* Decompress a gzip stream (one or more members) into a new buffer freed
 * with ry_free. RY_ERR_PARSE names `source` on corrupt or truncated data. */
RY_API ry_status ry_gunzip(const void *data, size_t size, const char *source, void **out, size_t *out_size);

/* ---- safetensors ------------------------------------------------------------
 * u64 LE header length, a JSON object {"name": {"dtype": "F32", "shape":
 * [..], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}},
 * then the data, little-endian. Dtypes: BOOL I8 I16 I32 I64 U8 U32 F16 BF16
 * F32 F64. A parameter tree maps to a file one tensor per path, in order. */
typedef struct ry_params ry_params; /* ryft/params.h */
typedef struct ry_meta { const char *key, *value; } ry_meta;

/* Write atomically: a temp file next to `path`, fsync, rename, so a crash or
 * an error leaves any previous file at `path` intact. n_meta key/value
 * strings go into "__metadata__" (meta may be NULL when n_meta is 0). */
RY_API ry_status ry_safetensors_write(const char *path, const ry_params *p, int n_meta, const ry_meta *meta);
/* Every tensor, in header order. Errors name the file and the tensor. */
RY_API ry_status ry_safetensors_read(const char *path, ry_params **out);
RY_API ry_status ry_safetensors_parse(const void *data, size_t size, const char *source, ry_params **out);
/* Load a checkpoint into the shape of `like`: every path of like must be in
 * the file with the same dtype and shape (errors name the tensor and both
 * types, e.g. "mlp/fc1/w: file has f32[784,128], expected f32[784,64]");
 * the result has like's order. Tensors the file has beyond like's are
 * ignored. */
RY_API ry_status ry_safetensors_load(const char *path, const ry_params *like, ry_params **out);
/* One "__metadata__" value: *value is a new string (ry_free) or NULL when the
 * key is absent. */
RY_API ry_status ry_safetensors_metadata(const char *path, const char *key, char **value);

/* ---- batches ------------------------------------------------------------------
 * Iterate over n arrays that share a leading axis (images, labels) in
 * batches. With a key, each pass visits the rows in the order of
 * jax.random.permutation(key, rows); without one, in order. With drop_last a
 * final short batch is skipped, otherwise it is returned short. */
typedef struct ry_batches ry_batches;
struct ry_key;
RY_API ry_status ry_batches_new(int n, ry_array *const *arrays, int64_t batch_size, const struct ry_key *key, int drop_last,
                         ry_batches **out);
RY_API void ry_batches_free(ry_batches *it);      /* NULL is fine */
RY_API int64_t ry_batches_count(const ry_batches *it); /* batches per pass */
/* The next batch: n new arrays (refcount 1, caller releases) written to out,
 * or out[0..n) set to NULL after the last batch of the pass. */
RY_API ry_status ry_batches_next(ry_batches *it, ry_array **out);
/* Start a new pass, reshuffled with `key` (NULL keeps the current order). */
RY_API ry_status ry_batches_reset(ry_batches *it, const struct ry_key *key);
/* The row order of the current pass (count = the leading dim; borrowed). */
RY_API const int64_t *ry_batches_order(const ry_batches *it);

#ifdef __cplusplus
}
#endif
#endif
