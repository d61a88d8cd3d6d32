/* The PJRT backend's internal interface (the public one is ryft/pjrt.h).
 * Its description changes once the plugin is loaded (platform, version), so
 * the struct is not const; pjrt.c publishes the new text atomically. */
#ifndef RYFT_BACKEND_PJRT_H
#define RYFT_BACKEND_PJRT_H

#include <stddef.h>
#include <stdint.h>

#include "../../runtime/backend.h"

/* The serialized CompileOptionsProto for num_replicas replicas on the given
 * device ids (NULL = default assignment): its length, 0 if cap is too small. */
size_t ryp_compile_options(int num_replicas, const int *device_ids, uint8_t *out, size_t cap);
/* The same for num_replicas x num_partitions devices (use_spmd_partitioning
 * when num_partitions > 1); device_ids[p * num_replicas + r]. */
size_t ryp_compile_options_spmd(int num_replicas, int num_partitions, const int *device_ids, uint8_t *out, size_t cap);
/* CompileOptionsProto.env_option_overrides entry {name: bool v} appended to
   the n bytes at out; the new length, 0 when it does not fit in cap */
size_t ryp_append_bool_option(uint8_t *out, size_t n, size_t cap, const char *name, bool v);
/* For tests: the device memory address of a PJRT device array's buffer
 * (equal addresses before and after a step show a donated buffer was
 * written in place), 0 for any other array or when the plugin cannot say. */
uintptr_t ryp_array_device_address(const ry_array *a);

#endif
