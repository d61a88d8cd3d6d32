/* ryft/runtime.h - devices, compiling graphs and running them.
 *
 * Every backend implements the same two calls: ry_compile() turns a graph
 * into an executable for a device, ry_execute() runs it on arrays. The
 * reference backend "interp" evaluates every op directly; it is the oracle
 * the other backends are tested against. An executable may be run from
 * several threads at once. */
#ifndef RYFT_RUNTIME_H
#define RYFT_RUNTIME_H

#include <stdbool.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ry_device ry_device;
typedef struct ry_executable ry_executable;

RY_API int ry_device_count(void);
RY_API ry_device *ry_device_at(int i);               /* NULL when out of range */
/* Look a device up by name ("interp"); RY_ERR_NOT_FOUND lists the known ones. */
RY_API ry_status ry_device_get(const char *name, ry_device **out);
RY_API const char *ry_device_name(const ry_device *d);
RY_API const char *ry_device_description(const ry_device *d);

RY_API ry_status ry_compile(ry_graph *g, ry_device *d, ry_executable **out);
RY_API void ry_executable_free(ry_executable *e);    /* NULL is fine */
/* Run with n_in inputs (types must equal the graph's); writes n_out new
 * arrays (refcount 1, the caller releases them). n_out must equal the
 * number of graph outputs. */
RY_API ry_status ry_execute(ry_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out);

/* ry_execute with donated inputs (JAX's donate_argnums), so that a train
 * step can update its parameters in place. For every i with donate[i] true
 * the call takes over the caller's reference of in[i] and sets in[i] to NULL,
 * whether it succeeds or fails. Arrays stay immutable: a donated buffer is
 * reused (an output written over it, or a temporary placed in it) only when
 * that reference was its last one, i.e. its refcount was 1; an array that is
 * also held elsewhere (retained by the caller, passed twice, captured in a
 * graph) is read as usual and never written. donate may be NULL (nothing
 * donated, as ry_execute). Backends without buffer reuse ("interp") simply
 * release the donated references after the run. */
RY_API ry_status ry_execute_donated(ry_executable *e, int n_in, ry_array **in, const bool *donate, int n_out,
                             ry_array **out);

/* Device arrays, as jax.device_put: copy a into d's memory. On a device with
 * its own memory ("pjrt": the first device of its client) *out is a device
 * array, which d's executables read without a copy. Their outputs are device
 * arrays too, so a train loop that feeds them back as inputs (donated with
 * ry_execute_donated, which on "pjrt" lets XLA write the new state over the
 * old) moves no data between host and device; read any result like a host
 * array (see ryft/core.h). On a host device (interp, cpu) *out is a host
 * array: a retained, or a new host copy of a device array. Executables on a
 * host device accept device arrays and read their host copies. */
RY_API ry_status ry_device_put(ry_device *d, const ry_array *a, ry_array **out);

/* Compile for d and run once: a convenience for tools and tests. */
RY_API ry_status ry_run(ry_graph *g, ry_device *d, int n_in, ry_array *const *in, int n_out, ry_array **out);

/* custom_call targets: fn receives the inputs and must set every out[i] to a
 * new array of out_types[i]. Registering an existing name replaces it. */
typedef ry_status (*ry_custom_call_fn)(void *ud, int n_in, ry_array *const *in, int n_out,
                                       const ry_type *out_types, ry_array **out);
RY_API ry_status ry_custom_call_register(const char *target, ry_custom_call_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
