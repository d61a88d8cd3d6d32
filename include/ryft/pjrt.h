/* ryft/pjrt.h - run graphs on any XLA device through a PJRT plugin.
 *
 * A PJRT plugin is a shared library (the XLA CPU plugin, or JAX's CUDA, ROCm
 * and TPU plugins) exporting GetPjrtApi(). ryft loads it with dlopen, checks
 * its PJRT C API version, emits the graph as StableHLO (ryft/stablehlo.h),
 * compiles it with the plugin and runs it on the plugin's devices.
 *
 * The simplest use is the "pjrt" device: ry_device_get("pjrt", &d) and then
 * ry_compile/ry_execute as on any device. It uses a client of the plugin
 * named by the environment variable RYFT_PJRT_PLUGIN, created on first use
 * and kept until ry_pjrt_shutdown(). The calls below give explicit clients
 * (another plugin, several CPU devices, replicated execution).
 *
 * Available when ryft is built with -DRYFT_PJRT=ON; otherwise every call
 * returns RY_ERR_UNSUPPORTED. */
#ifndef RYFT_PJRT_H
#define RYFT_PJRT_H

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ry_pjrt_client ry_pjrt_client;
typedef struct ry_pjrt_executable ry_pjrt_executable;

typedef struct ry_pjrt_options {
  const char *plugin_path; /* NULL: $RYFT_PJRT_PLUGIN */
  int cpu_device_count;    /* > 0: ask a CPU plugin for this many devices */
} ry_pjrt_options;

/* Load the plugin (once per process; plugins are never unloaded), check its
 * API version, initialize it and create a client. opts may be NULL. In an
 * MPI job of several ranks (ryft/dist.h) the client is created as node
 * `rank` of `size` (the create options node_id and num_nodes) with the job's
 * key-value store as its kv get / try-get / put callbacks, which plugins of
 * several nodes (GPU) use to find each other; the XLA CPU plugin ignores
 * them. */
RY_API ry_status ry_pjrt_client_create(const ry_pjrt_options *opts, ry_pjrt_client **out);
RY_API void ry_pjrt_client_free(ry_pjrt_client *c); /* NULL is fine; executables keep it alive */

RY_API const char *ry_pjrt_client_platform(const ry_pjrt_client *c);         /* "cpu", "cuda", ... */
RY_API const char *ry_pjrt_client_platform_version(const ry_pjrt_client *c);
/* The PJRT C API version the plugin reports. */
RY_API void ry_pjrt_client_api_version(const ry_pjrt_client *c, int *major, int *minor);
RY_API int ry_pjrt_client_device_count(const ry_pjrt_client *c);             /* addressable devices */
RY_API const char *ry_pjrt_client_device_kind(const ry_pjrt_client *c, int i); /* "" when out of range */
RY_API int ry_pjrt_client_memory_count(const ry_pjrt_client *c);             /* addressable memories */
RY_API const char *ry_pjrt_client_memory_kind(const ry_pjrt_client *c, int i);

/* Compile g for `num_devices` devices (>= 1): the program is replicated on
 * the client's first num_devices devices (num_replicas = num_devices). */
RY_API ry_status ry_pjrt_compile(ry_pjrt_client *c, ry_graph *g, int num_devices, ry_pjrt_executable **out);
/* Compile g for SPMD partitioning over `num_devices` devices (XLA's
 * use_spmd_partitioning, num_partitions = num_devices): g is the global
 * program, annotated with ry_shard (ryft/trace.h) whose meshes have
 * num_devices devices; XLA splits the computation and inserts the
 * communication. Unannotated inputs and outputs are replicated.
 * ry_pjrt_execute then takes the global inputs (ryft hands each device its
 * block) and returns num_outputs global arrays (assembled from the blocks). */
RY_API ry_status ry_pjrt_compile_spmd(ry_pjrt_client *c, ry_graph *g, int num_devices, ry_pjrt_executable **out);
/* Compile StableHLO text directly (as ry_stablehlo_emit writes it). */
RY_API ry_status ry_pjrt_compile_mlir(ry_pjrt_client *c, const char *mlir, int num_devices, ry_pjrt_executable **out);
RY_API void ry_pjrt_executable_free(ry_pjrt_executable *e); /* NULL is fine */
RY_API int ry_pjrt_executable_num_outputs(const ry_pjrt_executable *e);
RY_API int ry_pjrt_executable_num_devices(const ry_pjrt_executable *e);

/* Device arrays (see ry_device_put in ryft/runtime.h): a new array whose
 * storage is a buffer on device `device` (0 .. device_count - 1) of c,
 * holding a copy of a. An array already there is returned retained. */
RY_API ry_status ry_pjrt_put(ry_pjrt_client *c, int device, const ry_array *a, ry_array **out);

/* Run: every device gets the same n_in inputs; out receives
 * n_out = num_outputs * num_devices new arrays, device by device. Inputs are
 * checked against the graph's input types when compiled from a graph. For a
 * partitioned executable (ry_pjrt_compile_spmd) see there: global inputs,
 * n_out = num_outputs global outputs.
 * Inputs may be host arrays (copied to the device for the call) or device
 * arrays of this client on the device that runs them (used in place; an
 * array of another client or device is an error). Outputs are device arrays
 * on the device that computed them (as jax.jit's), read like host arrays;
 * a partitioned executable takes and returns host arrays. */
RY_API ry_status ry_pjrt_execute(ry_pjrt_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out);
/* ry_pjrt_execute with donated inputs, as ry_execute_donated: the call takes
 * over the reference in[i] for every donate[i] and sets in[i] to NULL. When
 * it was the array's last reference, its device buffer goes to XLA, which
 * writes the output paired with that input over it (each input of a graph is
 * compiled as may-alias with the first output of its type that no earlier
 * input claimed), so a train step whose state comes first among its inputs
 * updates that state in place. Other inputs are never written. */
RY_API ry_status ry_pjrt_execute_donated(ry_pjrt_executable *e, int n_in, ry_array **in, const bool *donate, int n_out,
                                  ry_array **out);
/* Copy every output to a host array at the end of each run instead
 * (the behaviour before device arrays; for measuring, or when every result
 * is read on the host anyway). Set it before running. */
RY_API void ry_pjrt_executable_set_host_outputs(ry_pjrt_executable *e, bool host);
/* Run a replicated executable (ry_pjrt_compile) with different inputs per
 * device, as jax.pmap does: in holds num_devices x n graph inputs, device by
 * device (n_in = num_devices * n); out as for ry_pjrt_execute. Collectives
 * (ry_all_reduce, ry_psum, ...) in the graph combine the devices' values. */
RY_API ry_status ry_pjrt_execute_per_device(ry_pjrt_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out);
/* The same with donated inputs (donate has n_in entries, device by device). */
RY_API ry_status ry_pjrt_execute_per_device_donated(ry_pjrt_executable *e, int n_in, ry_array **in, const bool *donate,
                                             int n_out, ry_array **out);

/* Free the "pjrt" device's shared client (compiled executables and device
 * arrays stay valid: they hold the client). */
RY_API void ry_pjrt_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
