/* ryft/io.h - reading and writing arrays in files. */
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
ry_status ry_npy_read(const char *path, ry_array **out);
ry_status ry_npy_parse(const void *data, size_t size, const char *source, ry_array **out);
ry_status ry_npy_write(const char *path, const ry_array *a);

#ifdef __cplusplus
}
#endif
#endif
