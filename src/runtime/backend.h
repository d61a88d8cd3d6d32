/* The interface every backend implements, and the device registry. */
#ifndef RYFT_RUNTIME_BACKEND_H
#define RYFT_RUNTIME_BACKEND_H

#include "../ir/graph.h"
#include "ryft/runtime.h"

typedef struct ry_backend {
  const char *name;        /* device name: "interp", "cpu", ... */
  const char *description;
  /* Prepare g for execution; *state is handed to execute and free. */
  ry_status (*compile)(ry_graph *g, void **state);
  /* Run; inputs already checked against the graph's input types; must set
   * every out[i] on success and none on failure. Must be thread-safe. */
  ry_status (*execute)(void *state, ry_graph *g, int n_in, ry_array *const *in, int n_out, ry_array **out);
  /* Optional: execute where the backend owns one reference of every in[i]
   * with donated[i] true (ry_execute_donated) and must release it, success or
   * not; it may reuse such a buffer when that reference is the last one.
   * NULL: the runtime calls execute and releases the donated references. */
  ry_status (*execute_donated)(void *state, ry_graph *g, int n_in, ry_array *const *in, const bool *donated,
                               int n_out, ry_array **out);
  void (*free_state)(void *state);
  /* Optional, for a device with its own memory: a new device array holding
   * a copy of a (host or device array). A backend with `put` gets device
   * arrays in execute/execute_donated as they are and must check that they
   * are its own. NULL: the device computes in host memory; ry_device_put
   * gives host arrays, and the runtime hands execute only arrays whose host
   * copy is there (fetched once), never marking a device array as donated
   * (it releases those references after the run). */
  ry_status (*put)(const ry_array *a, ry_array **out);
} ry_backend;

/* Look up a custom_call target (registry in runtime.c); NULL if unknown. */
ry_custom_call_fn ry__custom_call_lookup(const char *target, void **ud);

/* The backends the device registry (runtime.c) lists, each defined by its
 * module: interp/interp.c, cpu/cpu.c, pjrt/pjrt.c (with RYFT_HAVE_PJRT). */
extern const ry_backend ryi_backend;
extern const ry_backend ryc_backend;
#ifdef RYFT_HAVE_PJRT
extern ry_backend ryp_backend;
#endif

#endif
