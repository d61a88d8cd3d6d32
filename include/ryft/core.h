/* ryft/core.h - status codes, dtypes, shapes, the allocator and arrays.
 *
 * Everything fallible returns an `ry_status`: NULL means success, anything
 * else is an error object that carries a code and a message and is released
 * with ry_status_free(). Nothing in ryft aborts on a user's mistake. */
#ifndef RYFT_CORE_H
#define RYFT_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* RY_API marks the public functions: the library is built with hidden
 * visibility, so only what carries it is exported from libryft.so. */
#if defined(__GNUC__) || defined(__clang__)
#define RY_API __attribute__((visibility("default")))
#else
#define RY_API
#endif

#define RYFT_VERSION_MAJOR 0
#define RYFT_VERSION_MINOR 1
#define RYFT_VERSION_PATCH 0
RY_API const char *ry_version(void); /* "0.1.0" */

/* ---- status ------------------------------------------------------------ */

typedef enum ry_code {
  RY_OK = 0,
  RY_ERR_INVALID_ARGUMENT, /* a bad argument: NULL, out-of-range axis, ... */
  RY_ERR_SHAPE,            /* shapes do not agree */
  RY_ERR_DTYPE,            /* dtypes do not agree or are not supported */
  RY_ERR_PARSE,            /* malformed IR text or file contents */
  RY_ERR_VERIFY,           /* a graph breaks an IR invariant */
  RY_ERR_IO,               /* a file could not be opened, read or written */
  RY_ERR_OUT_OF_MEMORY,
  RY_ERR_UNSUPPORTED,      /* valid, but not implemented for this case */
  RY_ERR_NOT_FOUND,        /* a named thing (device, function) is unknown */
  RY_ERR_INTERNAL,
  RY_CODE_COUNT
} ry_code;

typedef struct ry_status_s *ry_status; /* NULL == success */

RY_API ry_code ry_status_code(ry_status s);           /* RY_OK for NULL */
RY_API const char *ry_status_message(ry_status s);    /* "" for NULL */
RY_API void ry_status_free(ry_status s);              /* NULL is fine */
RY_API const char *ry_code_name(ry_code c);           /* "shape error", ... */
/* Make a status with a printf-style message (for custom calls and tools). */
RY_API ry_status ry_status_make(ry_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- allocator --------------------------------------------------------- */

/* All memory ryft takes goes through this function, like Lua's lua_Alloc:
 * alloc(ud, NULL, 0, n) allocates, alloc(ud, p, old, n) reallocates and
 * alloc(ud, p, old, 0) frees (returning NULL). Returning NULL for n > 0 is an
 * allocation failure, which ryft reports as RY_ERR_OUT_OF_MEMORY. Set it
 * before creating any object; objects must be freed with the allocator that
 * made them. Passing NULL restores the default (malloc/realloc/free). */
typedef void *(*ry_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t new_size);
RY_API void ry_set_allocator(ry_alloc_fn fn, void *ud);
/* Free memory ryft handed out to the caller (strings, id arrays). NULL is fine. */
RY_API void ry_free(void *p);

/* ---- dtypes ------------------------------------------------------------ */

typedef enum ry_dtype {
  RY_BOOL, RY_I8, RY_I16, RY_I32, RY_I64, RY_U8, RY_U16, RY_U32, RY_U64,
  RY_F16, RY_BF16, RY_F32, RY_F64,
  RY_DTYPE_COUNT
} ry_dtype;

RY_API const char *ry_dtype_name(ry_dtype t);       /* "f32"; "?" if invalid */
RY_API int ry_dtype_from_name(const char *name, ry_dtype *out); /* 1 if known */
RY_API size_t ry_dtype_size(ry_dtype t);            /* bytes per element */
RY_API int ry_dtype_is_float(ry_dtype t);
RY_API int ry_dtype_is_int(ry_dtype t);             /* signed or unsigned, not bool */
RY_API int ry_dtype_is_signed(ry_dtype t);          /* signed ints and floats */
/* JAX's type promotion (jnp.promote_types) for the dtypes ryft has, e.g.
 * i8+u8 -> i16, u32+i32 -> i64, u64+i8 -> f64, i64+f16 -> f16, f16+bf16 -> f32. */
RY_API ry_dtype ry_promote(ry_dtype a, ry_dtype b);

/* ---- shapes ------------------------------------------------------------ */

#define RY_MAX_RANK 8

typedef struct ry_shape {
  int rank;                     /* 0..RY_MAX_RANK */
  int64_t dims[RY_MAX_RANK];    /* each >= 0 */
} ry_shape;

typedef struct ry_type {
  ry_dtype dtype;
  ry_shape shape;
} ry_type;

/* Build a shape from a rank and dims (dims may be NULL when rank is 0). */
RY_API ry_shape ry_shape_make(int rank, const int64_t *dims);
#define RY_SHAPE(...) ry_shape_make((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define RY_SCALAR ry_shape_make(0, NULL)
RY_API int64_t ry_shape_numel(ry_shape s);          /* product of dims; 1 for rank 0 */
RY_API int ry_shape_equal(ry_shape a, ry_shape b);
RY_API int ry_type_equal(ry_type a, ry_type b);
/* "f32[2,3]" into buf (always NUL-terminated); returns buf. */
RY_API char *ry_type_str(ry_type t, char *buf, size_t size);
RY_API char *ry_shape_str(ry_shape s, char *buf, size_t size); /* "[2,3]" */

/* ---- arrays ------------------------------------------------------------ */

/* An immutable, refcounted, row-major array. Its storage is host memory,
 * or a device buffer for a device array (ry_device_put in ryft/runtime.h,
 * and the outputs of executables on a device with its own memory such as
 * "pjrt"). Every call below works on both: the first read of a device
 * array's elements (ry_array_data, ry_array_to_host, ry_array_get_*,
 * printing, saving, a host backend's ry_execute) copies them to host memory
 * once and keeps that copy beside the device buffer, which stays valid. */
typedef struct ry_array ry_array;

/* Copy `data` (numel * dtype size bytes, row-major; may be NULL when there are
 * no elements) into a new array with refcount 1. */
RY_API ry_status ry_array_from_host(ry_dtype dtype, ry_shape shape, const void *data, ry_array **out);
/* An array whose every element is `value` converted to dtype (as convert). */
/* An array that views caller memory instead of copying it (a mapped file's
 * tensor): data must hold the array's bytes and stay valid and unchanged
 * until release(ctx) runs, when the last reference goes (release may be
 * NULL). Nothing writes through it: a program given it as a donated input
 * does not reuse its bytes. */
RY_API ry_status ry_array_borrow(ry_dtype dtype, ry_shape shape, const void *data, void (*release)(void *ctx), void *ctx,
                                 ry_array **out);
RY_API ry_status ry_array_full(ry_dtype dtype, ry_shape shape, double value, ry_array **out);
RY_API ry_status ry_array_zeros(ry_dtype dtype, ry_shape shape, ry_array **out);
/* Copy the elements out; `size` must be at least ry_array_nbytes(a). For a
 * device array this is the explicit fetch: it reports a failed transfer. */
RY_API ry_status ry_array_to_host(const ry_array *a, void *dst, size_t size);

RY_API ry_array *ry_array_retain(ry_array *a);      /* returns a; NULL is fine */
RY_API void ry_array_release(ry_array *a);          /* NULL is fine */
RY_API ry_dtype ry_array_dtype(const ry_array *a);
RY_API ry_shape ry_array_shape(const ry_array *a);
RY_API ry_type ry_array_type(const ry_array *a);
RY_API int64_t ry_array_numel(const ry_array *a);
RY_API size_t ry_array_nbytes(const ry_array *a);
/* Read-only view of the elements (fetched first for a device array; NULL if
 * that transfer fails: ry_array_to_host says why). */
RY_API const void *ry_array_data(const ry_array *a);
RY_API int ry_array_on_device(const ry_array *a); /* 1 for a device array */
/* Element i (row-major) converted to double; NaN for i out of range. */
RY_API double ry_array_get_f64(const ry_array *a, int64_t i);
RY_API int64_t ry_array_get_i64(const ry_array *a, int64_t i);

/* Print like NumPy: nested brackets, aligned columns, and "..." summarising
 * axes longer than 6 when the array has more than 1000 elements. */
RY_API void ry_array_print(const ry_array *a, FILE *f);
/* The same text into buf; returns the length it needed (like snprintf). */
RY_API size_t ry_array_format(const ry_array *a, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
