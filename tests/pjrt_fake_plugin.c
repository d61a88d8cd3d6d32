/* Fake PJRT plugins for the loader's tests (built only with RYFT_PJRT):
 * GetPjrtApi returns an API table with no functions and the version in
 * $RYFT_FAKE_PJRT_VERSION ("major.minor", default "99.0"), so the loader
 * must reject it by version before calling anything. Built with
 * PJRT_FAKE_NO_ENTRY it exports no GetPjrtApi at all.
 *
 * With $RYFT_FAKE_PJRT_KV set it is instead a plugin of several nodes, as
 * a GPU plugin is: PJRT_Client_Create requires the create options node_id
 * and num_nodes and the key-value callbacks, puts "fake/<node_id>", waits
 * with kv_get for every other node's key, checks that kv_try_get of an
 * absent key fails with NOT_FOUND, and names what it saw in its platform
 * name ("fake node 1 of 2 saw 0 1"); it has no devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pjrt_c_api.h"

#ifdef PJRT_FAKE_NO_ENTRY
int pjrt_fake_not_a_plugin(void);
int pjrt_fake_not_a_plugin(void) { return 42; }
#else
static PJRT_Api fake_api;

/* ---- the multi-node fake ($RYFT_FAKE_PJRT_KV) ---- */

struct PJRT_Error {
  PJRT_Error_Code code;
  char msg[256];
};
struct PJRT_Client {
  char platform[256];
};

static PJRT_Error *fake_error(PJRT_Error_Code code, const char *msg, size_t n) {
  PJRT_Error *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->code = code;
  snprintf(e->msg, sizeof e->msg, "%.*s", (int)n, msg);
  return e;
}
static PJRT_Error *fake_errorf(const char *msg) { return fake_error(PJRT_Error_Code_INVALID_ARGUMENT, msg, strlen(msg)); }

static void fake_Error_Destroy(PJRT_Error_Destroy_Args *a) { free(a->error); }
static void fake_Error_Message(PJRT_Error_Message_Args *a) {
  a->message = a->error->msg;
  a->message_size = strlen(a->error->msg);
}
static PJRT_Error *fake_Error_GetCode(PJRT_Error_GetCode_Args *a) {
  a->code = a->error->code;
  return NULL;
}
static PJRT_Error *fake_Plugin_Initialize(PJRT_Plugin_Initialize_Args *a) {
  (void)a;
  return NULL;
}
static PJRT_Error *fake_unimplemented(void *a) {
  (void)a;
  return fake_error(PJRT_Error_Code_UNIMPLEMENTED, "fake plugin", 11);
}

static PJRT_Error *fake_Client_Create(PJRT_Client_Create_Args *a) {
  int64_t node = -1, nodes = -1;
  for (size_t i = 0; i < a->num_options; i++) {
    const PJRT_NamedValue *o = &a->create_options[i];
    if (o->type != PJRT_NamedValue_kInt64) continue;
    if (o->name_size == 7 && !memcmp(o->name, "node_id", 7)) node = o->int64_value;
    if (o->name_size == 9 && !memcmp(o->name, "num_nodes", 9)) nodes = o->int64_value;
  }
  if (node < 0 || nodes < 1) return fake_errorf("fake plugin: no node_id / num_nodes options");
  if (!a->kv_get_callback || !a->kv_put_callback || !a->kv_try_get_callback)
    return fake_errorf("fake plugin: no key-value callbacks");
  char key[64], val[64];
  snprintf(key, sizeof key, "fake/%lld", (long long)node);
  snprintf(val, sizeof val, "node %lld", (long long)node);
  PJRT_KeyValuePutCallback_Args pa = {.struct_size = PJRT_KeyValuePutCallback_Args_STRUCT_SIZE, .key = key,
                                      .key_size = strlen(key), .value = val, .value_size = strlen(val),
                                      .callback_error = (PJRT_CallbackError[]){fake_error}, .user_arg = a->kv_put_user_arg};
  PJRT_Error *e = a->kv_put_callback(&pa);
  if (e) return e;
  PJRT_Client *c = calloc(1, sizeof *c);
  if (!c) return fake_errorf("fake plugin: out of memory");
  size_t k = (size_t)snprintf(c->platform, sizeof c->platform, "fake node %lld of %lld saw", (long long)node, (long long)nodes);
  for (int64_t j = 0; j < nodes; j++) {
    snprintf(key, sizeof key, "fake/%lld", (long long)j);
    PJRT_KeyValueGetCallback_Args ga = {.struct_size = PJRT_KeyValueGetCallback_Args_STRUCT_SIZE, .key = key,
                                        .key_size = strlen(key), .timeout_in_ms = 10000,
                                        .callback_error = (PJRT_CallbackError[]){fake_error}, .user_arg = a->kv_get_user_arg};
    if ((e = a->kv_get_callback(&ga))) {
      free(c);
      return e;
    }
    snprintf(val, sizeof val, "node %lld", (long long)j);
    if (ga.value_size != strlen(val) || memcmp(ga.value, val, ga.value_size)) {
      ga.value_deleter_callback(ga.value);
      free(c);
      return fake_errorf("fake plugin: a node's key has the wrong value");
    }
    ga.value_deleter_callback(ga.value);
    if (k < sizeof c->platform) k += (size_t)snprintf(c->platform + k, sizeof c->platform - k, " %lld", (long long)j);
  }
  PJRT_KeyValueTryGetCallback_Args ta = {.struct_size = PJRT_KeyValueTryGetCallback_Args_STRUCT_SIZE, .key = "fake/absent",
                                         .key_size = 11, .callback_error = (PJRT_CallbackError[]){fake_error},
                                         .user_arg = a->kv_try_get_user_arg};
  e = a->kv_try_get_callback(&ta);
  if (!e || e->code != PJRT_Error_Code_NOT_FOUND || !strstr(e->msg, "fake/absent")) {
    free(e);
    free(c);
    return fake_errorf("fake plugin: try_get of an absent key did not fail with NOT_FOUND naming it");
  }
  free(e);
  a->client = c;
  return NULL;
}

static PJRT_Error *fake_Client_Destroy(PJRT_Client_Destroy_Args *a) {
  free(a->client);
  return NULL;
}
static PJRT_Error *fake_Client_AddressableDevices(PJRT_Client_AddressableDevices_Args *a) {
  a->addressable_devices = NULL;
  a->num_addressable_devices = 0;
  return NULL;
}
static PJRT_Error *fake_Client_PlatformName(PJRT_Client_PlatformName_Args *a) {
  a->platform_name = a->client->platform;
  a->platform_name_size = strlen(a->client->platform);
  return NULL;
}

static void fake_kv_api(void) {
  typedef PJRT_Error *(*any_fn)(void *);
  any_fn un = fake_unimplemented;
  fake_api.pjrt_api_version.major_version = PJRT_API_MAJOR;
  fake_api.pjrt_api_version.minor_version = PJRT_API_MINOR;
  fake_api.PJRT_Error_Destroy = fake_Error_Destroy;
  fake_api.PJRT_Error_Message = fake_Error_Message;
  fake_api.PJRT_Error_GetCode = fake_Error_GetCode;
  fake_api.PJRT_Plugin_Initialize = fake_Plugin_Initialize;
  fake_api.PJRT_Client_Create = fake_Client_Create;
  fake_api.PJRT_Client_Destroy = fake_Client_Destroy;
  fake_api.PJRT_Client_AddressableDevices = fake_Client_AddressableDevices;
  fake_api.PJRT_Client_PlatformName = fake_Client_PlatformName;
  /* present (the loader requires them) but never reached: no devices */
  fake_api.PJRT_Client_Compile = (PJRT_Client_Compile *)(void *)un;
  fake_api.PJRT_Client_BufferFromHostBuffer = (PJRT_Client_BufferFromHostBuffer *)(void *)un;
  fake_api.PJRT_LoadedExecutable_Execute = (PJRT_LoadedExecutable_Execute *)(void *)un;
  fake_api.PJRT_Buffer_ToHostBuffer = (PJRT_Buffer_ToHostBuffer *)(void *)un;
  fake_api.PJRT_Event_Await = (PJRT_Event_Await *)(void *)un;
  fake_api.PJRT_Event_Destroy = (PJRT_Event_Destroy *)(void *)un;
  fake_api.PJRT_Buffer_Destroy = (PJRT_Buffer_Destroy *)(void *)un;
  fake_api.PJRT_LoadedExecutable_Destroy = (PJRT_LoadedExecutable_Destroy *)(void *)un;
}

const PJRT_Api *GetPjrtApi(void);
const PJRT_Api *GetPjrtApi(void) {
  int major = 99, minor = 0;
  const char *v = getenv("RYFT_FAKE_PJRT_VERSION");
  if (v) sscanf(v, "%d.%d", &major, &minor);
  memset(&fake_api, 0, sizeof fake_api);
  fake_api.struct_size = PJRT_Api_STRUCT_SIZE;
  fake_api.pjrt_api_version.struct_size = PJRT_Api_Version_STRUCT_SIZE;
  fake_api.pjrt_api_version.major_version = major;
  fake_api.pjrt_api_version.minor_version = minor;
  if (getenv("RYFT_FAKE_PJRT_KV")) fake_kv_api();
  return &fake_api;
}
#endif
