/* The runtime: the device registry (a static table of backends), compiling
 * and executing graphs with argument checks, and the custom_call registry. */
#include <pthread.h>
#include <stdio.h>

#include "backend.h"

/* ---- devices ---- */

struct ry_device {
  const ry_backend *backend;
};

/* Add a backend here (and its file under src/backend/) to make it a device. */
static ry_device g_devices[] = {
    {&ryi_backend},
    {&ryc_backend},
#ifdef RYFT_HAVE_PJRT
    {&ryp_backend},
#endif
};
#define N_DEVICES ((int)(sizeof g_devices / sizeof g_devices[0]))

int ry_device_count(void) { return N_DEVICES; }

ry_device *ry_device_at(int i) { return i >= 0 && i < N_DEVICES ? &g_devices[i] : NULL; }

ry_status ry_device_get(const char *name, ry_device **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_device_get: out is NULL");
  *out = NULL;
  if (!name) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_device_get: name is NULL");
  for (int i = 0; i < N_DEVICES; i++)
    if (strcmp(g_devices[i].backend->name, name) == 0) {
      *out = &g_devices[i];
      return NULL;
    }
  char known[256];
  size_t len = 0;
  known[0] = 0;
  for (int i = 0; i < N_DEVICES && len < sizeof known; i++)
    len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", g_devices[i].backend->name);
  return ry__err(RY_ERR_NOT_FOUND, "ry_device_get: unknown device '%s' (known devices: %s)", name, known);
}

const char *ry_device_name(const ry_device *d) { return d ? d->backend->name : "(null)"; }

const char *ry_device_description(const ry_device *d) { return d ? d->backend->description : ""; }

ry_status ry_device_put(ry_device *d, const ry_array *a, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_device_put: out is NULL");
  *out = NULL;
  if (!d) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_device_put: device is NULL");
  if (!a) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_device_put: array is NULL");
  ry_status s = NULL;
  if (d->backend->put) s = d->backend->put(a, out);
  else if (!a->dev) *out = ry_array_retain((ry_array *)a);
  else if (!(s = ry__array_sync(a))) s = ry_array_from_host(a->type.dtype, a->type.shape, a->data, out);
  return s ? ry__err_prefix(s, "ry_device_put on %s", d->backend->name) : NULL;
}

/* ---- executables ---- */

struct ry_executable {
  const ry_device *device;
  ry_graph *graph; /* retained */
  void *state;     /* the backend's */
};

ry_status ry_compile(ry_graph *g, ry_device *d, ry_executable **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_compile: out is NULL");
  *out = NULL;
  if (!g) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_compile: graph is NULL");
  if (!d) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_compile: device is NULL (use ry_device_get(\"interp\", &d))");
  ry_executable *e = ry__calloc(1, sizeof *e);
  if (!e) return ry__oom();
  ry_status s = d->backend->compile(g, &e->state);
  if (s) {
    ry__free(e, sizeof *e);
    return ry__err_prefix(s, "ry_compile on %s", d->backend->name);
  }
  e->device = d;
  e->graph = ry_graph_retain(g);
  *out = e;
  return NULL;
}

void ry_executable_free(ry_executable *e) {
  if (!e) return;
  e->device->backend->free_state(e->state);
  ry_graph_release(e->graph);
  ry__free(e, sizeof *e);
}

static ry_status check_inputs(const ry_graph *g, int n_in, ry_array *const *in) {
  int want = ry_graph_num_inputs(g);
  if (n_in != want)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: got %d input%s but the graph '%s' takes %d", n_in,
                   n_in == 1 ? "" : "s", g->name, want);
  if (n_in > 0 && !in) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: inputs array is NULL");
  for (int i = 0; i < n_in; i++) {
    const char *name = ry_graph_input_name(g, i);
    char label[96];
    if (name) snprintf(label, sizeof label, "input %d ('%s')", i, name);
    else snprintf(label, sizeof label, "input %d", i);
    if (!in[i])
      return ry__err(RY_ERR_INVALID_ARGUMENT,
                     "ry_execute: %s is NULL (a donated input is consumed: ry_execute_donated sets it to NULL; pass the "
                     "output that replaces it)",
                     label);
    ry_type have = in[i]->type, expect = ry_graph_input_type(g, i);
    if (!ry_type_equal(have, expect)) {
      char a[128], b[128];
      return ry__err(have.dtype != expect.dtype ? RY_ERR_DTYPE : RY_ERR_SHAPE,
                     "ry_execute: %s has type %s but the graph expects %s", label, ry_type_str(have, a, sizeof a),
                     ry_type_str(expect, b, sizeof b));
    }
  }
  return NULL;
}

/* For a backend computing in host memory: fetch the host copy of every
 * device array among the inputs (already checked). */
static ry_status host_inputs(const ry_executable *e, int n_in, ry_array *const *in) {
  if (e->device->backend->put) return NULL;
  for (int i = 0; i < n_in; i++) {
    ry_status s = ry__array_sync(in[i]);
    if (s) return ry__err_prefix(s, "ry_execute: input %d is a device array whose bytes cannot be read", i);
  }
  return NULL;
}

ry_status ry_execute(ry_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  if (!e) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: executable is NULL");
  const ry_graph *g = e->graph;
  int want_out = ry_graph_num_outputs(g);
  if (n_out > 0 && !out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: outputs array is NULL");
  for (int i = 0; i < n_out; i++) out[i] = NULL;
  if (n_out != want_out)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: room for %d output%s but the graph '%s' returns %d", n_out,
                   n_out == 1 ? "" : "s", g->name, want_out);
  ry_status s = check_inputs(g, n_in, in);
  if (!s) s = host_inputs(e, n_in, in);
  if (s) return s;
  s = e->device->backend->execute(e->state, e->graph, n_in, in, n_out, out);
  if (s) {
    for (int i = 0; i < n_out; i++) out[i] = NULL;
    return ry__err_prefix(s, "ry_execute on %s", e->device->backend->name);
  }
  return NULL;
}

ry_status ry_execute_donated(ry_executable *e, int n_in, ry_array **in, const bool *donate, int n_out,
                             ry_array **out) {
  bool any = false;
  for (int i = 0; donate && in && i < n_in; i++) any |= donate[i] && in[i];
  if (!any) return ry_execute(e, n_in, in, n_out, out);
  /* take over the donated references first: they are consumed whatever happens */
  typedef struct {
    ry_array *a;
    bool owned;
  } arg;
  arg small[32], *args = small;
  size_t asz = (size_t)n_in * sizeof(arg);
  ry_array *ptr_small[32], **ptrs = ptr_small;
  size_t psz = (size_t)n_in * sizeof(ry_array *);
  if (n_in > 32) {
    args = ry__malloc(asz);
    ptrs = ry__malloc(psz);
  }
  if (!args || !ptrs) {
    for (int i = 0; i < n_in; i++)
      if (donate[i]) {
        ry_array_release(in[i]);
        in[i] = NULL;
      }
    if (args != small) ry__free(args, asz);
    if (ptrs != ptr_small) ry__free(ptrs, psz);
    return ry__oom();
  }
  bool owned_small[32], *owned = n_in > 32 ? (bool *)NULL : owned_small;
  for (int i = 0; i < n_in; i++) {
    args[i].a = ptrs[i] = in[i];
    args[i].owned = donate[i] && in[i];
    if (args[i].owned) in[i] = NULL;
  }
  ry_status s = NULL;
  if (!e) s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: executable is NULL");
  if (!s) {
    const ry_graph *g = e->graph;
    if (n_out > 0 && !out) s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: outputs array is NULL");
    for (int i = 0; !s && i < n_out; i++) out[i] = NULL;
    if (!s && n_out != ry_graph_num_outputs(g))
      s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_execute: room for %d output%s but the graph '%s' returns %d", n_out,
                  n_out == 1 ? "" : "s", g->name, ry_graph_num_outputs(g));
    if (!s) s = check_inputs(g, n_in, ptrs);
    if (!s) s = host_inputs(e, n_in, ptrs);
  }
  if (!s) {
    const ry_backend *be = e->device->backend;
    if (be->execute_donated) {
      if (!owned) owned = ry__malloc((size_t)n_in * sizeof(bool));
      if (!owned) s = ry__oom();
      /* a host backend never reuses a device array's storage: its device
       * buffer would go stale; such references are released below */
      for (int i = 0; !s && i < n_in; i++) owned[i] = args[i].owned && (be->put || !ptrs[i]->dev);
      if (!s) {
        s = be->execute_donated(e->state, e->graph, n_in, ptrs, owned, n_out, out);
        for (int i = 0; i < n_in; i++)
          if (owned[i]) args[i].owned = false; /* the backend released them */
      }
    } else {
      s = be->execute(e->state, e->graph, n_in, ptrs, n_out, out);
    }
    if (s) {
      for (int i = 0; i < n_out; i++) out[i] = NULL;
      s = ry__err_prefix(s, "ry_execute on %s", be->name);
    }
  }
  for (int i = 0; i < n_in; i++)
    if (args[i].owned) ry_array_release(args[i].a);
  if (owned && owned != owned_small) ry__free(owned, (size_t)n_in * sizeof(bool));
  if (args != small) ry__free(args, asz);
  if (ptrs != ptr_small) ry__free(ptrs, psz);
  return s;
}

ry_status ry_run(ry_graph *g, ry_device *d, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  for (int i = 0; out && i < n_out; i++) out[i] = NULL;
  ry_executable *e;
  ry_status s = ry_compile(g, d, &e);
  if (s) return s;
  s = ry_execute(e, n_in, in, n_out, out);
  ry_executable_free(e);
  return s;
}

/* ---- custom_call registry ----
 * A linked list under a mutex. Entries are never freed (a replaced target
 * updates its entry in place), so a looked-up function stays valid; the list
 * head is static, which keeps every entry reachable for LeakSanitizer. */

typedef struct cc_entry {
  struct cc_entry *next;
  char *target; /* ry__strdup */
  ry_custom_call_fn fn;
  void *ud;
} cc_entry;

static pthread_mutex_t g_cc_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_entry *g_cc_head;

static cc_entry *cc_find(const char *target) {
  for (cc_entry *e = g_cc_head; e; e = e->next)
    if (strcmp(e->target, target) == 0) return e;
  return NULL;
}

ry_status ry_custom_call_register(const char *target, ry_custom_call_fn fn, void *ud) {
  if (!target || !*target) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_custom_call_register: target name is empty");
  if (!fn) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_custom_call_register: function for '%s' is NULL", target);
  ry_status s = NULL;
  pthread_mutex_lock(&g_cc_lock);
  cc_entry *e = cc_find(target);
  if (e) {
    e->fn = fn;
    e->ud = ud;
  } else if ((e = ry__malloc(sizeof *e)) && (e->target = ry__strdup(target))) {
    e->fn = fn;
    e->ud = ud;
    e->next = g_cc_head;
    g_cc_head = e;
  } else {
    ry__free(e, sizeof *e);
    s = ry__oom();
  }
  pthread_mutex_unlock(&g_cc_lock);
  return s;
}

ry_custom_call_fn ry__custom_call_lookup(const char *target, void **ud) {
  ry_custom_call_fn fn = NULL;
  if (!target) return NULL;
  pthread_mutex_lock(&g_cc_lock);
  cc_entry *e = cc_find(target);
  if (e) {
    fn = e->fn;
    if (ud) *ud = e->ud;
  }
  pthread_mutex_unlock(&g_cc_lock);
  return fn;
}
