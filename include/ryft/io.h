/* ryft/io.h - reading and writing arrays in files. */
#ifndef RYFT_IO_H
#define RYFT_IO_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NumPy .npy (format 1.0-3.0, little-endian, C order). Dtypes map as
 * |b1 bool, i1 i2 i4 i8, u1 u4, f2 f4 f8; bf16 is written as <V2 is not
 * supported by NumPy, so ryft refuses it with RY_ERR_DTYPE. */
ry_status ry_npy_read(const char *path, ry_array **out);
ry_status ry_npy_parse(const void *data, size_t size, const char *source, ry_array **out);
ry_status ry_npy_write(const char *path, const ry_array *a);

#ifdef __cplusplus
}
#endif
#endif
