/* ryft/jit.h - ry_jit: a traced C function as a callable, like jax.jit.
 *
 * A jit object holds a traced function (ry_fn + ctx + name) and a device.
 * Calling it with concrete arrays traces fn and compiles the program for the
 * device only when the signature (the number of inputs and each input's
 * dtype and shape) is new; later calls with the same signature run the cached
 * executable. Like JAX, fn runs only while tracing: side effects in fn happen
 * once per new signature, and fn must build the same program every time it
 * is traced with the same types (it may read ctx, which must stay valid for
 * the jit object's lifetime).
 *
 * The cache is per jit object and bounded: it keeps the RY_JIT_CACHE_SIZE most
 * recently used signatures and frees the least recently used executable when
 * a new one would exceed that. A jit object may be called from several
 * threads at once; two threads that bring the same new signature trace and
 * compile it once (the second waits for the first). fn never runs on two
 * threads at once (tracing is serialized per jit object, compiling is not),
 * so fn may update ctx without a lock. */
#ifndef RYFT_JIT_H
#define RYFT_JIT_H

#include "runtime.h"
#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RY_JIT_CACHE_SIZE 32

typedef struct ry_jit ry_jit;

/* name names the traced graphs (NULL = "main"; copied); device must not be
 * NULL. Nothing is traced until the first call. */
RY_API ry_status ry_jit_new(const char *name, ry_fn fn, void *ctx, ry_device *device, ry_jit **out);
RY_API void ry_jit_free(ry_jit *j); /* NULL is fine; no call may be running */

/* Run fn's program on in (traced and compiled first if this signature is new).
 * n_out must equal the number of outputs fn returns; writes n_out new arrays
 * (refcount 1, the caller releases them). */
RY_API ry_status ry_jit_call(ry_jit *j, int n_in, ry_array *const *in, int n_out, ry_array **out);
/* The same with donated inputs, as ry_execute_donated: the call takes over
 * the caller's reference of every in[i] with donate[i] true and sets in[i] to
 * NULL, whatever the result. donate may be NULL (nothing donated). */
RY_API ry_status ry_jit_call_donated(ry_jit *j, int n_in, ry_array **in, const bool *donate, int n_out, ry_array **out);

/* The executable for the signature of `types` (traced and compiled if new),
 * owned by the jit object: valid until ry_jit_free, or until RY_JIT_CACHE_SIZE
 * other signatures have been used after it (do not mix with other threads'
 * calls then). Ahead-of-time use: compile before the first call, time the
 * compile, or run it with ry_execute. */
RY_API ry_status ry_jit_lower(ry_jit *j, int n_in, const ry_type *types, ry_executable **out);

/* Introspection (JAX's _cache_size): signatures cached now, and how many
 * times fn has been traced. */
RY_API int ry_jit_cache_size(const ry_jit *j);
RY_API long ry_jit_trace_count(const ry_jit *j);

#ifdef __cplusplus
}
#endif
#endif
