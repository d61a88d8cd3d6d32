/* The public PJRT calls when ryft is built without the PJRT backend
 * (RYFT_PJRT off or the PJRT header missing): each says so. */
#ifndef RYFT_HAVE_PJRT
#include "../../core/internal.h"
#include "ryft/pjrt.h"

#define RYP_OFF ry__err(RY_ERR_UNSUPPORTED, "pjrt: this ryft was built without the PJRT backend (cmake -DRYFT_PJRT=ON)")

ry_status ry_pjrt_client_create(const ry_pjrt_options *opts, ry_pjrt_client **out) {
  (void)opts;
  if (out) *out = NULL;
  return RYP_OFF;
}
void ry_pjrt_client_free(ry_pjrt_client *c) { (void)c; }
const char *ry_pjrt_client_platform(const ry_pjrt_client *c) { (void)c; return ""; }
const char *ry_pjrt_client_platform_version(const ry_pjrt_client *c) { (void)c; return ""; }
void ry_pjrt_client_api_version(const ry_pjrt_client *c, int *major, int *minor) {
  (void)c;
  if (major) *major = 0;
  if (minor) *minor = 0;
}
int ry_pjrt_client_device_count(const ry_pjrt_client *c) { (void)c; return 0; }
const char *ry_pjrt_client_device_kind(const ry_pjrt_client *c, int i) { (void)c; (void)i; return ""; }
int ry_pjrt_client_memory_count(const ry_pjrt_client *c) { (void)c; return 0; }
const char *ry_pjrt_client_memory_kind(const ry_pjrt_client *c, int i) { (void)c; (void)i; return ""; }
ry_status ry_pjrt_compile(ry_pjrt_client *c, ry_graph *g, int num_devices, ry_pjrt_executable **out) {
  (void)c; (void)g; (void)num_devices;
  if (out) *out = NULL;
  return RYP_OFF;
}
ry_status ry_pjrt_compile_mlir(ry_pjrt_client *c, const char *mlir, int num_devices, ry_pjrt_executable **out) {
  (void)c; (void)mlir; (void)num_devices;
  if (out) *out = NULL;
  return RYP_OFF;
}
void ry_pjrt_executable_free(ry_pjrt_executable *e) { (void)e; }
int ry_pjrt_executable_num_outputs(const ry_pjrt_executable *e) { (void)e; return 0; }
int ry_pjrt_executable_num_devices(const ry_pjrt_executable *e) { (void)e; return 0; }
ry_status ry_pjrt_execute(ry_pjrt_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  (void)e; (void)n_in; (void)in;
  for (int i = 0; out && i < n_out; i++) out[i] = NULL;
  return RYP_OFF;
}
ry_status ry_pjrt_compile_spmd(ry_pjrt_client *c, ry_graph *g, int num_devices, ry_pjrt_executable **out) {
  return ry_pjrt_compile(c, g, num_devices, out);
}
ry_status ry_pjrt_execute_per_device(ry_pjrt_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  return ry_pjrt_execute(e, n_in, in, n_out, out);
}
ry_status ry_pjrt_put(ry_pjrt_client *c, int device, const ry_array *a, ry_array **out) {
  (void)c; (void)device; (void)a;
  if (out) *out = NULL;
  return RYP_OFF;
}
ry_status ry_pjrt_execute_donated(ry_pjrt_executable *e, int n_in, ry_array **in, const bool *donate, int n_out,
                                  ry_array **out) {
  for (int i = 0; in && donate && i < n_in; i++)
    if (donate[i]) {
      ry_array_release(in[i]);
      in[i] = NULL;
    }
  return ry_pjrt_execute(e, n_in, in, n_out, out);
}
ry_status ry_pjrt_execute_per_device_donated(ry_pjrt_executable *e, int n_in, ry_array **in, const bool *donate,
                                             int n_out, ry_array **out) {
  return ry_pjrt_execute_donated(e, n_in, in, donate, n_out, out);
}
void ry_pjrt_executable_set_host_outputs(ry_pjrt_executable *e, bool host) { (void)e; (void)host; }
void ry_pjrt_shutdown(void) {}
#else
typedef int ryp_stub_unused; /* the real backend is pjrt.c */
#endif
