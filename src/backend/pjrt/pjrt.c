/* The PJRT backend: load a PJRT plugin (dlopen + GetPjrtApi), check its API
 * version, create clients, compile emitted StableHLO with a CompileOptions
 * message ryft encodes itself, move arrays to and from devices, execute and
 * await. Every PJRT object created here is destroyed here; a PJRT buffer
 * that outlives a call is owned by exactly one device array (ryp_buf), whose
 * last release destroys it. Built only with RYFT_PJRT (the header comes
 * from tools/fetch-pjrt.sh).
 *
 * Internal names carry the prefix `ryp_`. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <pjrt_c_api.h>

#include "../../core/trust.h"
#include "ryft/dist.h"
#include "../../runtime/backend.h"
#include "../stablehlo/stablehlo.h"
#include "pjrt.h"
#include "ryft/pjrt.h"
#include "pjrt_internal.h"

/* Oldest plugin API minor version accepted with this header's major. Every
 * entry point ryft calls exists since well before it; ryft is tested with
 * the header's own version (PJRT_API_MINOR). */
#define RYP_MIN_MINOR 40

/* ---- plugins: loaded once, never unloaded ---- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ryp_plugin *g_plugins; /* reachable: never reported as a leak */


static const char *code_name(PJRT_Error_Code c) {
  static const char *names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                "UNAUTHENTICATED"};
  return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

/* Turn a PJRT_Error into a status "pjrt: <what>: <CODE>: <message>" and free it. */
ry_status ryp_perr(const PJRT_Api *api, PJRT_Error *e, const char *what) {
  if (!e) return NULL;
  PJRT_Error_Message_Args m = {.struct_size = PJRT_Error_Message_Args_STRUCT_SIZE, .error = e};
  api->PJRT_Error_Message(&m);
  PJRT_Error_GetCode_Args gc = {.struct_size = PJRT_Error_GetCode_Args_STRUCT_SIZE, .error = e};
  PJRT_Error *e2 = api->PJRT_Error_GetCode(&gc);
  PJRT_Error_Code code = e2 ? PJRT_Error_Code_UNKNOWN : gc.code;
  if (e2) {
    PJRT_Error_Destroy_Args d2 = {.struct_size = PJRT_Error_Destroy_Args_STRUCT_SIZE, .error = e2};
    api->PJRT_Error_Destroy(&d2);
  }
  ry_code rc = code == PJRT_Error_Code_INVALID_ARGUMENT ? RY_ERR_INVALID_ARGUMENT
               : code == PJRT_Error_Code_UNIMPLEMENTED ? RY_ERR_UNSUPPORTED
               : code == PJRT_Error_Code_NOT_FOUND ? RY_ERR_NOT_FOUND
               : code == PJRT_Error_Code_RESOURCE_EXHAUSTED ? RY_ERR_OUT_OF_MEMORY
                                                            : RY_ERR_INTERNAL;
  ry_status s = ry__err(rc, "pjrt: %s: %s: %.*s", what, code_name(code), (int)m.message_size, m.message ? m.message : "");
  PJRT_Error_Destroy_Args d = {.struct_size = PJRT_Error_Destroy_Args_STRUCT_SIZE, .error = e};
  api->PJRT_Error_Destroy(&d);
  return s;
}


static ry_status check_api(const char *path, const PJRT_Api *api) {
  if (!api) return ry__err(RY_ERR_INVALID_ARGUMENT, "pjrt: '%s': GetPjrtApi() returned NULL", path);
  int major = api->pjrt_api_version.major_version, minor = api->pjrt_api_version.minor_version;
  if (major != PJRT_API_MAJOR)
    return ry__err(RY_ERR_UNSUPPORTED,
                   "pjrt: plugin '%s' implements PJRT C API version %d.%d, but ryft was built for %d.%d "
                   "(major versions must match)",
                   path, major, minor, PJRT_API_MAJOR, PJRT_API_MINOR);
  if (minor < RYP_MIN_MINOR)
    return ry__err(RY_ERR_UNSUPPORTED,
                   "pjrt: plugin '%s' is older than ryft supports: it implements PJRT C API %d.%d, ryft needs "
                   "%d.%d or newer (built against %d.%d)",
                   path, major, minor, PJRT_API_MAJOR, RYP_MIN_MINOR, PJRT_API_MAJOR, PJRT_API_MINOR);
  if (!(HAS_FN(api, PJRT_Error_Destroy) && HAS_FN(api, PJRT_Error_Message) && HAS_FN(api, PJRT_Error_GetCode) &&
        HAS_FN(api, PJRT_Plugin_Initialize) && HAS_FN(api, PJRT_Client_Create) && HAS_FN(api, PJRT_Client_Destroy) &&
        HAS_FN(api, PJRT_Client_Compile) && HAS_FN(api, PJRT_Client_BufferFromHostBuffer) &&
        HAS_FN(api, PJRT_LoadedExecutable_Execute) && HAS_FN(api, PJRT_Buffer_ToHostBuffer) &&
        HAS_FN(api, PJRT_Event_Await) && HAS_FN(api, PJRT_Event_Destroy) && HAS_FN(api, PJRT_Buffer_Destroy) &&
        HAS_FN(api, PJRT_LoadedExecutable_Destroy) && HAS_FN(api, PJRT_Client_AddressableDevices)))
    return ry__err(RY_ERR_UNSUPPORTED, "pjrt: plugin '%s' (API %d.%d) lacks functions ryft needs", path, major, minor);
  return NULL;
}

/* Find or load the plugin at path; call with g_lock held. */
static ry_status plugin_get(const char *path, ryp_plugin **out) {
  for (ryp_plugin *p = g_plugins; p; p = p->next)
    if (strcmp(p->path, path) == 0) {
      *out = p;
      return NULL;
    }
  /* a path names the code that runs: only from where no other user can
     change it (a bare name is dlopen's search of the system's library path) */
  char untrusted[PATH_MAX + 200];
  if (strchr(path, '/') && access(path, F_OK) == 0 && !ry__object_trusted(path, untrusted, sizeof untrusted))
    return ry__err(RY_ERR_IO, "pjrt: refusing to load plugin '%s': %s", path, untrusted);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    return ry__err(RY_ERR_NOT_FOUND, "pjrt: cannot load plugin '%s': %s", path, why ? why : "dlopen failed");
  }
  typedef const PJRT_Api *(*get_api_fn)(void);
  get_api_fn get;
  void *sym = dlsym(h, "GetPjrtApi");
  memcpy(&get, &sym, sizeof get);
  if (!sym) {
    dlclose(h);
    return ry__err(RY_ERR_NOT_FOUND, "pjrt: '%s' is not a PJRT plugin: it has no GetPjrtApi symbol", path);
  }
  const PJRT_Api *api = get();
  ry_status s = check_api(path, api);
  if (s) {
    dlclose(h);
    return s;
  }
  PJRT_Plugin_Initialize_Args ia = {.struct_size = PJRT_Plugin_Initialize_Args_STRUCT_SIZE};
  s = ryp_perr(api, api->PJRT_Plugin_Initialize(&ia), "initializing the plugin");
  if (s) return s; /* keep it loaded: a plugin may not survive dlclose after init */
  ryp_plugin *p = ry__calloc(1, sizeof *p);
  if (!p || !(p->path = ry__strdup(path))) {
    ry__free(p, sizeof *p);
    return ry__oom();
  }
  p->handle = h;
  p->api = api;
  p->next = g_plugins;
  g_plugins = p;
  *out = p;
  return NULL;
}

/* ---- clients ---- */

static char *dup_n(const char *s, size_t n) {
  char *tmp = malloc(n + 1);
  if (!tmp) return NULL;
  memcpy(tmp, s ? s : "", s ? n : 0);
  tmp[s ? n : 0] = 0;
  char *r = ry__strdup(tmp);
  free(tmp);
  return r;
}

static void client_destroy(ry_pjrt_client *c) {
  if (!c) return;
  const PJRT_Api *api = c->plugin ? c->plugin->api : NULL;
  if (c->client && api) {
    PJRT_Client_Destroy_Args a = {.struct_size = PJRT_Client_Destroy_Args_STRUCT_SIZE, .client = c->client};
    ry_status_free(ryp_perr(api, api->PJRT_Client_Destroy(&a), "destroying the client"));
  }
  for (int i = 0; i < c->n_devices; i++)
    if (c->device_kinds) ry__strfree(c->device_kinds[i]);
  for (int i = 0; i < c->n_memories; i++)
    if (c->memory_kinds) ry__strfree(c->memory_kinds[i]);
  ry__free(c->devices, (size_t)c->n_devices * sizeof *c->devices);
  ry__free(c->device_kinds, (size_t)c->n_devices * sizeof *c->device_kinds);
  ry__free(c->device_ids, (size_t)c->n_devices * sizeof *c->device_ids);
  ry__free(c->memories, (size_t)c->n_memories * sizeof *c->memories);
  ry__free(c->memory_kinds, (size_t)c->n_memories * sizeof *c->memory_kinds);
  ry__strfree(c->platform);
  ry__strfree(c->platform_version);
  ry__free(c, sizeof *c);
}

static ry_status client_describe(ry_pjrt_client *c) {
  const PJRT_Api *api = c->plugin->api;
  PJRT_Client_AddressableDevices_Args da = {.struct_size = PJRT_Client_AddressableDevices_Args_STRUCT_SIZE,
                                            .client = c->client};
  ry_status s = ryp_perr(api, api->PJRT_Client_AddressableDevices(&da), "listing devices");
  if (s) return s;
  int nd = (int)da.num_addressable_devices;
  c->devices = ry__calloc((size_t)nd + 1, sizeof *c->devices);
  c->device_kinds = ry__calloc((size_t)nd + 1, sizeof *c->device_kinds);
  c->device_ids = ry__calloc((size_t)nd + 1, sizeof *c->device_ids);
  if (!c->devices || !c->device_kinds || !c->device_ids) return ry__oom();
  c->n_devices = nd;
  for (int i = 0; i < nd; i++) {
    c->devices[i] = da.addressable_devices[i];
    c->device_ids[i] = i;
    if (HAS_FN(api, PJRT_Device_GetDescription)) {
      PJRT_Device_GetDescription_Args ga = {.struct_size = PJRT_Device_GetDescription_Args_STRUCT_SIZE,
                                            .device = c->devices[i]};
      s = ryp_perr(api, api->PJRT_Device_GetDescription(&ga), "describing a device");
      if (s) return s;
      PJRT_DeviceDescription_Id_Args ia = {.struct_size = PJRT_DeviceDescription_Id_Args_STRUCT_SIZE,
                                           .device_description = ga.device_description};
      if (HAS_FN(api, PJRT_DeviceDescription_Id) && !(s = ryp_perr(api, api->PJRT_DeviceDescription_Id(&ia), "device id")))
        c->device_ids[i] = ia.id;
      ry_status_free(s);
      PJRT_DeviceDescription_Kind_Args ka = {.struct_size = PJRT_DeviceDescription_Kind_Args_STRUCT_SIZE,
                                             .device_description = ga.device_description};
      s = NULL;
      if (HAS_FN(api, PJRT_DeviceDescription_Kind)) s = ryp_perr(api, api->PJRT_DeviceDescription_Kind(&ka), "device kind");
      if (!s) c->device_kinds[i] = dup_n(ka.device_kind, ka.device_kind_size);
      ry_status_free(s);
    }
    if (!c->device_kinds[i] && !(c->device_kinds[i] = ry__strdup(""))) return ry__oom();
  }
  if (HAS_FN(api, PJRT_Client_AddressableMemories)) {
    PJRT_Client_AddressableMemories_Args ma = {.struct_size = PJRT_Client_AddressableMemories_Args_STRUCT_SIZE,
                                               .client = c->client};
    s = ryp_perr(api, api->PJRT_Client_AddressableMemories(&ma), "listing memories");
    if (s) return s;
    int nm = (int)ma.num_addressable_memories;
    c->memories = ry__calloc((size_t)nm + 1, sizeof *c->memories);
    c->memory_kinds = ry__calloc((size_t)nm + 1, sizeof *c->memory_kinds);
    if (!c->memories || !c->memory_kinds) return ry__oom();
    c->n_memories = nm;
    for (int i = 0; i < nm; i++) {
      c->memories[i] = ma.addressable_memories[i];
      PJRT_Memory_Kind_Args ka = {.struct_size = PJRT_Memory_Kind_Args_STRUCT_SIZE, .memory = c->memories[i]};
      s = HAS_FN(api, PJRT_Memory_Kind) ? ryp_perr(api, api->PJRT_Memory_Kind(&ka), "memory kind") : NULL;
      c->memory_kinds[i] = s ? ry__strdup("") : dup_n(ka.kind, ka.kind_size);
      ry_status_free(s);
      if (!c->memory_kinds[i]) return ry__oom();
    }
  }
  PJRT_Client_PlatformName_Args pa = {.struct_size = PJRT_Client_PlatformName_Args_STRUCT_SIZE, .client = c->client};
  s = HAS_FN(api, PJRT_Client_PlatformName) ? ryp_perr(api, api->PJRT_Client_PlatformName(&pa), "platform name") : NULL;
  c->platform = s ? ry__strdup("?") : dup_n(pa.platform_name, pa.platform_name_size);
  ry_status_free(s);
  PJRT_Client_PlatformVersion_Args va = {.struct_size = PJRT_Client_PlatformVersion_Args_STRUCT_SIZE,
                                         .client = c->client};
  s = HAS_FN(api, PJRT_Client_PlatformVersion) ? ryp_perr(api, api->PJRT_Client_PlatformVersion(&va), "platform version")
                                               : NULL;
  c->platform_version = s ? ry__strdup("?") : dup_n(va.platform_version, va.platform_version_size);
  ry_status_free(s);
  if (!c->platform || !c->platform_version) return ry__oom();
  return NULL;
}

/* ---- the key-value callbacks: the job's store (ryft/dist.h) ----
 * Under MPI a client is created with node_id = rank, num_nodes = size and
 * these callbacks, which multi-node plugins (GPU) use to exchange their
 * topology; the XLA CPU plugin ignores all of them. */

static void kv_value_free(char *v) { ry_free(v); }

static PJRT_Error *kv_fail(PJRT_CallbackError *cb, ry_status s, PJRT_Error_Code code) {
  const char *m = ry_status_message(s);
  PJRT_Error *e = cb && *cb ? (*cb)(code, m, strlen(m)) : NULL;
  ry_status_free(s);
  return e;
}

static PJRT_Error *kv_lookup(const char *key, size_t key_size, int timeout_ms, PJRT_CallbackError *cb, char **value,
                             size_t *value_size) {
  char *k = dup_n(key, key_size);
  if (!k) return kv_fail(cb, ry__oom(), PJRT_Error_Code_RESOURCE_EXHAUSTED);
  void *v = NULL;
  ry_status s = ry_dist_kv_get(k, timeout_ms, &v, value_size);
  ry__strfree(k);
  if (s) {
    PJRT_Error_Code code = ry_status_code(s) != RY_ERR_NOT_FOUND ? PJRT_Error_Code_UNAVAILABLE
                           : timeout_ms > 0                       ? PJRT_Error_Code_DEADLINE_EXCEEDED
                                                                  : PJRT_Error_Code_NOT_FOUND;
    return kv_fail(cb, s, code);
  }
  *value = v;
  return NULL;
}

static PJRT_Error *kv_get(PJRT_KeyValueGetCallback_Args *a) {
  a->value_deleter_callback = kv_value_free;
  return kv_lookup(a->key, a->key_size, a->timeout_in_ms > 0 ? a->timeout_in_ms : 1, a->callback_error, &a->value,
                   &a->value_size);
}

static PJRT_Error *kv_try_get(PJRT_KeyValueTryGetCallback_Args *a) {
  a->value_deleter_callback = kv_value_free;
  return kv_lookup(a->key, a->key_size, 0, a->callback_error, &a->value, &a->value_size);
}

static PJRT_Error *kv_put(PJRT_KeyValuePutCallback_Args *a) {
  char *k = dup_n(a->key, a->key_size);
  if (!k) return kv_fail(a->callback_error, ry__oom(), PJRT_Error_Code_RESOURCE_EXHAUSTED);
  ry_status s = ry_dist_kv_put(k, a->value, a->value_size);
  ry__strfree(k);
  return s ? kv_fail(a->callback_error, s, PJRT_Error_Code_UNAVAILABLE) : NULL;
}

static PJRT_NamedValue int_option(const char *name, int64_t v) {
  PJRT_NamedValue nv = {.struct_size = PJRT_NamedValue_STRUCT_SIZE,
                        .name = name,
                        .name_size = strlen(name),
                        .type = PJRT_NamedValue_kInt64,
                        .value_size = 1};
  nv.int64_value = v;
  return nv;
}

ry_status ry_pjrt_client_create(const ry_pjrt_options *opts, ry_pjrt_client **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_client_create: out is NULL");
  *out = NULL;
  const char *path = opts && opts->plugin_path ? opts->plugin_path : getenv("RYFT_PJRT_PLUGIN");
  if (!path || !*path)
    return ry__err(RY_ERR_INVALID_ARGUMENT,
                   "ry_pjrt_client_create: no plugin path: pass one or set RYFT_PJRT_PLUGIN to a PJRT plugin "
                   "(e.g. xla_cpu_pjrt.so from tools/fetch-pjrt.sh)");
  if (opts && opts->cpu_device_count < 0)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_client_create: cpu_device_count is %d", opts->cpu_device_count);
  ryp_plugin *p = NULL;
  pthread_mutex_lock(&g_lock);
  ry_status s = plugin_get(path, &p);
  pthread_mutex_unlock(&g_lock);
  if (s) return s;
  const PJRT_Api *api = p->api;
  ry_pjrt_client *c = ry__calloc(1, sizeof *c);
  if (!c) return ry__oom();
  c->refcount = 1;
  c->plugin = p;
  PJRT_NamedValue nv[3];
  size_t n_nv = 0;
  if (opts && opts->cpu_device_count > 0) nv[n_nv++] = int_option("cpu_device_count", opts->cpu_device_count);
  PJRT_Client_Create_Args ca = {.struct_size = PJRT_Client_Create_Args_STRUCT_SIZE};
  if (ry_dist_size() > 1) { /* one node per rank, finding each other through the job's store */
    nv[n_nv++] = int_option("node_id", ry_dist_rank());
    nv[n_nv++] = int_option("num_nodes", ry_dist_size());
    ca.kv_get_callback = kv_get;
    ca.kv_put_callback = kv_put;
    ca.kv_try_get_callback = kv_try_get; /* a plugin older than this member reads struct_size and skips it */
  }
  ca.create_options = n_nv ? nv : NULL;
  ca.num_options = n_nv;
  s = ryp_perr(api, api->PJRT_Client_Create(&ca), "creating a client");
  if (!s) {
    c->client = ca.client;
    s = client_describe(c);
  }
  if (s) {
    client_destroy(c);
    return ry__err_prefix(s, "plugin '%s'", path);
  }
  *out = c;
  return NULL;
}

ry_pjrt_client *ryp_client_retain(ry_pjrt_client *c) {
  __atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
  return c;
}

void ry_pjrt_client_free(ry_pjrt_client *c) {
  if (c && __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) == 0) client_destroy(c);
}

const char *ry_pjrt_client_platform(const ry_pjrt_client *c) { return c ? c->platform : ""; }
const char *ry_pjrt_client_platform_version(const ry_pjrt_client *c) { return c ? c->platform_version : ""; }
void ry_pjrt_client_api_version(const ry_pjrt_client *c, int *major, int *minor) {
  if (major) *major = c ? c->plugin->api->pjrt_api_version.major_version : 0;
  if (minor) *minor = c ? c->plugin->api->pjrt_api_version.minor_version : 0;
}
int ry_pjrt_client_device_count(const ry_pjrt_client *c) { return c ? c->n_devices : 0; }
const char *ry_pjrt_client_device_kind(const ry_pjrt_client *c, int i) {
  return c && i >= 0 && i < c->n_devices ? c->device_kinds[i] : "";
}
int ry_pjrt_client_memory_count(const ry_pjrt_client *c) { return c ? c->n_memories : 0; }
const char *ry_pjrt_client_memory_kind(const ry_pjrt_client *c, int i) {
  return c && i >= 0 && i < c->n_memories ? c->memory_kinds[i] : "";
}

/* ---- CompileOptionsProto, encoded by hand ----
 * CompileOptionsProto.executable_build_options (3) = ExecutableBuildOptionsProto {
 *   num_replicas (4), num_partitions (5),
 *   device_assignment (9) = DeviceAssignmentProto { replica_count (1),
 *     computation_count (2), computation_devices (3) = { replica_device_ids (1) } } } */

typedef struct pbuf {
  uint8_t b[512];
  size_t n;
  bool overflow;
} pbuf;

static void pb_byte(pbuf *p, uint8_t x) {
  if (p->n < sizeof p->b) p->b[p->n++] = x;
  else p->overflow = true;
}
static void pb_varint(pbuf *p, uint64_t v) {
  do {
    uint8_t x = v & 0x7f;
    v >>= 7;
    pb_byte(p, (uint8_t)(x | (v ? 0x80 : 0)));
  } while (v);
}
static void pb_int(pbuf *p, int field, uint64_t v) {
  pb_varint(p, (uint64_t)field << 3 | 0);
  pb_varint(p, v);
}
static void pb_bytes(pbuf *p, int field, const pbuf *sub) {
  pb_varint(p, (uint64_t)field << 3 | 2);
  pb_varint(p, sub->n);
  for (size_t i = 0; i < sub->n; i++) pb_byte(p, sub->b[i]);
  if (sub->overflow) p->overflow = true;
}

/* Exposed for the unit test: bytes of the options for n replicas on device ids. */
size_t ryp_compile_options(int num_replicas, const int *device_ids, uint8_t *out, size_t cap) {
  return ryp_compile_options_spmd(num_replicas, 1, device_ids, out, cap);
}

/* Field numbers checked against XLA's xla/pjrt/proto/compile_options.proto
 * (ExecutableBuildOptionsProto: num_replicas 4, num_partitions 5,
 * use_spmd_partitioning 6, device_assignment 9; CompileOptionsProto:
 * executable_build_options 3) and xla/xla_data.proto (DeviceAssignmentProto:
 * replica_count 1, computation_count 2, computation_devices 3;
 * ComputationDevice: replica_device_ids 1). A computation is a partition:
 * computation_devices[p].replica_device_ids[r] runs replica r of partition p. */
size_t ryp_compile_options_spmd(int num_replicas, int num_partitions, const int *device_ids, uint8_t *out, size_t cap) {
  pbuf build = {0}, da = {0}, top = {0};
  pb_int(&build, 4, (uint64_t)num_replicas);
  pb_int(&build, 5, (uint64_t)num_partitions);
  if (num_partitions > 1) pb_int(&build, 6, 1);
  if (device_ids && num_replicas * num_partitions > 1) {
    pb_int(&da, 1, (uint64_t)num_replicas);
    pb_int(&da, 2, (uint64_t)num_partitions);
    for (int p = 0; p < num_partitions; p++) {
      pbuf comp = {0}, ids = {0};
      for (int r = 0; r < num_replicas; r++) pb_varint(&ids, (uint64_t)device_ids[p * num_replicas + r]);
      pb_bytes(&comp, 1, &ids); /* packed repeated int64 */
      pb_bytes(&da, 3, &comp);
    }
    pb_bytes(&build, 9, &da);
  }
  pb_bytes(&top, 3, &build);
  if (top.overflow || top.n > cap) return 0;
  memcpy(out, top.b, top.n);
  return top.n;
}

/* CompileOptionsProto.env_option_overrides (7): map<string, OptionOverrideProto>,
 * an entry {key (1), value (2) = {bool_field (2)}} for an XLA debug option by
 * name, appended to the n bytes of options at out (a message's fields may
 * come in any order). Returns the new length, 0 when it does not fit.
 * Exposed for the unit test. */
size_t ryp_append_bool_option(uint8_t *out, size_t n, size_t cap, const char *name, bool v) {
  pbuf key = {0}, val = {0}, entry = {0}, top = {0};
  for (const char *q = name; *q; q++) pb_byte(&key, (uint8_t)*q);
  pb_int(&val, 2, v);
  pb_bytes(&entry, 1, &key);
  pb_bytes(&entry, 2, &val);
  pb_bytes(&top, 7, &entry);
  if (!n || top.overflow || n + top.n > cap) return 0;
  memcpy(out + n, top.b, top.n);
  return n + top.n;
}

/* ---- compile ---- */

static ry_status compile_text(ry_pjrt_client *c, const char *mlir, size_t len, int num_devices, bool spmd,
                              PJRT_LoadedExecutable **out_exe, int *num_outputs) {
  const PJRT_Api *api = c->plugin->api;
  if (num_devices < 1) return ry__err(RY_ERR_INVALID_ARGUMENT, "pjrt compile: num_devices is %d (must be >= 1)", num_devices);
  if (num_devices > c->n_devices)
    return ry__err(RY_ERR_INVALID_ARGUMENT,
                   "pjrt compile: %d devices requested but the %s client has only %d (for CPU, set "
                   "ry_pjrt_options.cpu_device_count)",
                   num_devices, c->platform, c->n_devices);
  uint8_t opts[512];
  size_t nopts = spmd ? ryp_compile_options_spmd(1, num_devices, c->device_ids, opts, sizeof opts)
                      : ryp_compile_options(num_devices, c->device_ids, opts, sizeof opts);
  /* XLA's CPU runtime deadlocks a program run on several devices of one
     process when an XNNPACK fusion tears down its thread pool on one intra-op
     thread while another waits in a collective for the device it holds up
     (seen on 2 cores with the MLP train step data-parallel over 2 devices,
     most runs); such programs compile without XNNPACK */
  if (num_devices > 1 && c->platform && strcmp(c->platform, "cpu") == 0)
    nopts = ryp_append_bool_option(opts, nopts, sizeof opts, "xla_cpu_use_xnnpack", false);
  if (!nopts) return ry__err(RY_ERR_INVALID_ARGUMENT, "pjrt compile: too many devices for the compile options (%d)", num_devices);
  PJRT_Program prog = {.struct_size = PJRT_Program_STRUCT_SIZE,
                       .code = (char *)mlir,
                       .code_size = len,
                       .format = "mlir",
                       .format_size = 4};
  PJRT_Client_Compile_Args ca = {.struct_size = PJRT_Client_Compile_Args_STRUCT_SIZE,
                                 .client = c->client,
                                 .program = &prog,
                                 .compile_options = (const char *)opts,
                                 .compile_options_size = nopts};
  ry_status s = ryp_perr(api, api->PJRT_Client_Compile(&ca), "compiling the StableHLO module");
  if (s) return s;
  *out_exe = ca.executable;
  *num_outputs = -1;
  if (HAS_FN(api, PJRT_LoadedExecutable_GetExecutable) && HAS_FN(api, PJRT_Executable_NumOutputs)) {
    PJRT_LoadedExecutable_GetExecutable_Args ga = {.struct_size = PJRT_LoadedExecutable_GetExecutable_Args_STRUCT_SIZE,
                                                   .loaded_executable = ca.executable};
    s = ryp_perr(api, api->PJRT_LoadedExecutable_GetExecutable(&ga), "getting the executable");
    if (!s) {
      PJRT_Executable_NumOutputs_Args na = {.struct_size = PJRT_Executable_NumOutputs_Args_STRUCT_SIZE,
                                            .executable = ga.executable};
      s = ryp_perr(api, api->PJRT_Executable_NumOutputs(&na), "counting outputs");
      if (!s) *num_outputs = (int)na.num_outputs;
      if (HAS_FN(api, PJRT_Executable_Destroy)) {
        PJRT_Executable_Destroy_Args xa = {.struct_size = PJRT_Executable_Destroy_Args_STRUCT_SIZE,
                                           .executable = ga.executable};
        ry_status_free(ryp_perr(api, api->PJRT_Executable_Destroy(&xa), "destroying the executable view"));
      }
    }
    if (s) {
      PJRT_LoadedExecutable_Destroy_Args da = {.struct_size = PJRT_LoadedExecutable_Destroy_Args_STRUCT_SIZE,
                                               .executable = ca.executable};
      ry_status_free(ryp_perr(api, api->PJRT_LoadedExecutable_Destroy(&da), "destroying the executable"));
      *out_exe = NULL;
      return s;
    }
  }
  return NULL;
}

static ry_status exe_new(ry_pjrt_client *c, ry_graph *g, const char *mlir, int num_devices, bool spmd,
                         ry_pjrt_executable **out) {
  PJRT_LoadedExecutable *le = NULL;
  int nout = -1;
  ry_status s = compile_text(c, mlir, strlen(mlir), num_devices, spmd, &le, &nout);
  if (s) return s;
  ry_pjrt_executable *e = ry__calloc(1, sizeof *e);
  if (!e) {
    const PJRT_Api *api = c->plugin->api;
    PJRT_LoadedExecutable_Destroy_Args da = {.struct_size = PJRT_LoadedExecutable_Destroy_Args_STRUCT_SIZE,
                                             .executable = le};
    ry_status_free(ryp_perr(api, api->PJRT_LoadedExecutable_Destroy(&da), "destroying the executable"));
    return ry__oom();
  }
  e->client = ryp_client_retain(c);
  e->exe = le;
  e->graph = g ? ry_graph_retain(g) : NULL;
  e->num_devices = num_devices;
  e->num_outputs = g ? ry_graph_num_outputs(g) : nout;
  e->spmd = spmd;
  *out = e;
  return NULL;
}

/* The first custom_call in g or anything it calls, or NULL. */
static const char *find_custom_call(const ry_graph *g) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const ry_node *n = &g->nodes[i];
    if (n->op == RY_OP_CUSTOM_CALL) return n->attrs.custom.target ? n->attrs.custom.target : "";
    if (n->op == RY_OP_CALL) {
      const char *t = find_custom_call(n->attrs.call.callee);
      if (t) return t;
    }
  }
  return NULL;
}

static int64_t mesh_size(const ry_axes *m) {
  int64_t n = 1;
  for (int i = 0; i < m->n; i++) n *= m->v[i];
  return n;
}

/* Collectives run across replicas and sharding annotations across
 * partitions: their meshes must match the devices the program is compiled
 * for. The first mismatch in g or anything it calls, or NULL. */
static ry_status check_meshes(const ry_graph *g, int num_devices, bool spmd) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const ry_node *n = &g->nodes[i];
    if (n->op == RY_OP_CALL) {
      ry_status s = check_meshes(n->attrs.call.callee, num_devices, spmd);
      if (s) return s;
      continue;
    }
    bool coll = ryg_op_collective(n->op);
    if (!coll && n->op != RY_OP_SHARDING) continue;
    int64_t m = mesh_size(coll ? &n->attrs.collective.mesh : &n->attrs.sharding.mesh);
    if (m == 1) continue;
    if (coll && spmd)
      return ry__err(RY_ERR_UNSUPPORTED,
                     "pjrt: %s over a mesh of %lld devices in an SPMD (sharded) program: collectives run across "
                     "replicas; compile the per-device program with ry_pjrt_compile",
                     ryg_op_table[n->op].name, (long long)m);
    if (!coll && !spmd)
      return ry__err(RY_ERR_INVALID_ARGUMENT,
                     "pjrt: the graph has a sharding annotation over %lld devices: compile it with "
                     "ry_pjrt_compile_spmd",
                     (long long)m);
    if (m != num_devices)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "pjrt: %s has a device mesh of %lld devices but the program is compiled for %d",
                     ryg_op_table[n->op].name, (long long)m, num_devices);
  }
  return NULL;
}

static ry_status compile_graph(ry_pjrt_client *c, ry_graph *g, int num_devices, bool spmd, ry_pjrt_executable **out);

ry_status ry_pjrt_compile(ry_pjrt_client *c, ry_graph *g, int num_devices, ry_pjrt_executable **out) {
  return compile_graph(c, g, num_devices, false, out);
}

ry_status ry_pjrt_compile_spmd(ry_pjrt_client *c, ry_graph *g, int num_devices, ry_pjrt_executable **out) {
  return compile_graph(c, g, num_devices, true, out);
}

static ry_status compile_graph(ry_pjrt_client *c, ry_graph *g, int num_devices, bool spmd, ry_pjrt_executable **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile: out is NULL");
  *out = NULL;
  if (!c) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile: client is NULL");
  if (!g) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile: graph is NULL");
  const char *cc = find_custom_call(g);
  if (cc)
    return ry__err(RY_ERR_UNSUPPORTED,
                   "pjrt: graph '%s' uses custom_call '%s', a host C function registered with ryft, which a PJRT "
                   "device cannot call",
                   g->name ? g->name : "main", cc);
  if (num_devices >= 1 && num_devices <= c->n_devices) {
    ry_status ms = check_meshes(g, num_devices, spmd);
    if (ms) return ms;
  }
  /* Every input may share its buffer with the first unclaimed output of its
   * type (XLA's may-alias): when ryp_run() donates the input's buffer, XLA writes
   * that output over it; otherwise XLA copies. A partitioned program runs on
   * buffers made per call from host blocks, so it gets no aliasing. */
  int n_in = ry_graph_num_inputs(g), n_out = ry_graph_num_outputs(g);
  int *alias = spmd ? NULL : ry__calloc((size_t)n_in + 1, sizeof *alias);
  bool *taken = spmd ? NULL : ry__calloc((size_t)n_out + 1, sizeof *taken);
  if (!spmd && (!alias || !taken)) {
    ry__free(alias, ((size_t)n_in + 1) * sizeof *alias);
    ry__free(taken, ((size_t)n_out + 1) * sizeof *taken);
    return ry__oom();
  }
  for (int i = 0; alias && i < n_in; i++) {
    alias[i] = -1;
    for (int o = 0; o < n_out && alias[i] < 0; o++)
      if (!taken[o] && ry_type_equal(ry_graph_input_type(g, i), ry_graph_output_type(g, o))) {
        alias[i] = o;
        taken[o] = true;
      }
  }
  char *text;
  ry_status s = rys_emit_aliased(g, alias, &text);
  ry__free(alias, ((size_t)n_in + 1) * sizeof *alias);
  ry__free(taken, ((size_t)n_out + 1) * sizeof *taken);
  if (s) return s;
  s = exe_new(c, g, text, num_devices, spmd, out);
  ry_free(text);
  return s;
}

ry_status ry_pjrt_compile_mlir(ry_pjrt_client *c, const char *mlir, int num_devices, ry_pjrt_executable **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile_mlir: out is NULL");
  *out = NULL;
  if (!c) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile_mlir: client is NULL");
  if (!mlir) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_compile_mlir: text is NULL");
  return exe_new(c, NULL, mlir, num_devices, false, out);
}

void ry_pjrt_executable_free(ry_pjrt_executable *e) {
  if (!e) return;
  const PJRT_Api *api = e->client->plugin->api;
  PJRT_LoadedExecutable_Destroy_Args da = {.struct_size = PJRT_LoadedExecutable_Destroy_Args_STRUCT_SIZE,
                                           .executable = e->exe};
  ry_status_free(ryp_perr(api, api->PJRT_LoadedExecutable_Destroy(&da), "destroying the executable"));
  ry_graph_release(e->graph);
  ry_pjrt_client_free(e->client);
  ry__free(e, sizeof *e);
}

int ry_pjrt_executable_num_outputs(const ry_pjrt_executable *e) { return e ? e->num_outputs : 0; }
void ry_pjrt_executable_set_host_outputs(ry_pjrt_executable *e, bool host) {
  if (e) e->host_outputs = host;
}
int ry_pjrt_executable_num_devices(const ry_pjrt_executable *e) { return e ? e->num_devices : 0; }

/* ---- the "pjrt" device ---- */

static ry_pjrt_client *g_default; /* under g_default_lock */
static pthread_mutex_t g_default_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_desc[512];

static ry_status default_client(ry_pjrt_client **out) {
  ry_status s = NULL;
  *out = NULL;
  pthread_mutex_lock(&g_default_lock);
  if (!g_default) {
    s = ry_pjrt_client_create(NULL, &g_default);
    if (!s) {
      int ma, mi;
      ry_pjrt_client_api_version(g_default, &ma, &mi);
      snprintf(g_desc, sizeof g_desc, "XLA through the PJRT plugin %s: platform %s (%s), PJRT C API %d.%d, %d device%s",
               g_default->plugin->path, g_default->platform, g_default->platform_version, ma, mi, g_default->n_devices,
               g_default->n_devices == 1 ? "" : "s");
      __atomic_store_n(&ryp_backend.description, (const char *)g_desc, __ATOMIC_RELEASE);
    }
  }
  if (g_default) *out = ryp_client_retain(g_default);
  pthread_mutex_unlock(&g_default_lock);
  return s;
}

void ry_pjrt_shutdown(void) {
  pthread_mutex_lock(&g_default_lock);
  ry_pjrt_client *c = g_default;
  g_default = NULL;
  pthread_mutex_unlock(&g_default_lock);
  ry_pjrt_client_free(c);
}

static ry_status backend_compile(ry_graph *g, void **state) {
  ry_pjrt_client *c = NULL;
  ry_status s = default_client(&c);
  if (s) return s;
  ry_pjrt_executable *e;
  s = ry_pjrt_compile(c, g, 1, &e);
  ry_pjrt_client_free(c);
  if (s) return s;
  *state = e;
  return NULL;
}

static ry_status backend_execute(void *state, ry_graph *g, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  (void)g;
  return ry_pjrt_execute(state, n_in, in, n_out, out);
}

static ry_status backend_execute_donated(void *state, ry_graph *g, int n_in, ry_array *const *in, const bool *donated,
                                        int n_out, ry_array **out) {
  (void)g;
  return ryp_execute_owned(state, false, n_in, in, donated, n_out, out);
}

static void backend_free(void *state) { ry_pjrt_executable_free(state); }

/* ry_device_put on "pjrt": the shared client's first device */
static ry_status backend_put(const ry_array *a, ry_array **out) {
  ry_pjrt_client *c = NULL;
  ry_status s = default_client(&c);
  if (!s) s = ry_pjrt_put(c, 0, a, out);
  ry_pjrt_client_free(c);
  return s;
}

ry_backend ryp_backend = {
    .name = "pjrt",
    .description = "XLA through a PJRT plugin (set RYFT_PJRT_PLUGIN; not loaded yet)",
    .compile = backend_compile,
    .execute = backend_execute,
    .execute_donated = backend_execute_donated,
    .free_state = backend_free,
    .put = backend_put,
};
