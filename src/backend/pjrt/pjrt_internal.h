/* pjrt_internal.h - what pjrt.c (plugins, clients, compile) and pjrt_array.c
 * (buffers, execution, device arrays, SPMD) share */
#ifndef RYFT_BACKEND_PJRT_INTERNAL_H
#define RYFT_BACKEND_PJRT_INTERNAL_H

#include <stdbool.h>

#include <pjrt_c_api.h>

#include "../../runtime/backend.h"
#include "ryft/pjrt.h"


typedef struct ryp_plugin {
  struct ryp_plugin *next;
  char *path;
  void *handle;
  const PJRT_Api *api;
} ryp_plugin;
struct ry_pjrt_client {
  int refcount; /* atomic */
  ryp_plugin *plugin;
  PJRT_Client *client;
  PJRT_Device **devices; /* addressable */
  int n_devices;
  char **device_kinds;
  int *device_ids;
  PJRT_Memory **memories;
  int n_memories;
  char **memory_kinds;
  char *platform, *platform_version;
  /* atomic: launches of multi-device programs so far. Each launch passes
     the next count as its launch_id, which XLA's CPU runtime takes as the
     run id its collectives meet under: launches sharing one (all 0) can
     join each other's rendezvous and wait forever. Processes that launch
     the same programs in the same order agree on it (never 0: no id). */
  unsigned launches;
};

struct ry_pjrt_executable {
  ry_pjrt_client *client;
  PJRT_LoadedExecutable *exe;
  ry_graph *graph; /* retained; NULL when compiled from text */
  int num_devices, num_outputs;
  bool spmd;         /* partitioned (ry_pjrt_compile_spmd): global inputs and outputs */
  bool host_outputs; /* ry_pjrt_executable_set_host_outputs */
};
/* Is the function pointer at byte offset `off` inside the plugin's table? */
#define HAS_FN(api, field) ((api)->struct_size >= offsetof(PJRT_Api, field) + sizeof(void *) && (api)->field)
typedef struct ryp_buf {
  ry_devbuf base;
  ry_pjrt_client *client; /* retained: the client outlives its buffers */
  int device;             /* index in client->devices */
  PJRT_Buffer *buf;       /* owned */
} ryp_buf;

ry_pjrt_client *ryp_client_retain(ry_pjrt_client *c);
ry_status ryp_execute_donated(ry_pjrt_executable *e, bool per_device, int n_in, ry_array **in, const bool *donate,
                                 int n_out, ry_array **out);
ry_status ryp_execute_owned(ry_pjrt_executable *e, bool per_device, int n_in, ry_array *const *in,
                               const bool *owned, int n_out, ry_array **out);
ry_status ryp_perr(const PJRT_Api *api, PJRT_Error *e, const char *what);
ry_status ryp_run(ry_pjrt_executable *e, int n_in, ry_array *const *in, const bool *donate, const ry_type *out_types,
                     bool host_out, ry_array **out);

#endif
