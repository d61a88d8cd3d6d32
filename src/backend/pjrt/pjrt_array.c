/* The PJRT backend's data path: buffers to and from the host, execution, device
 * arrays (an ry_array whose storage is one PJRT buffer) and SPMD (global
 * arrays split into per-device blocks and back). Internal names carry the
 * prefix `ryp_`. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <pjrt_c_api.h>

#include "../../runtime/backend.h"
#include "../stablehlo/stablehlo.h"
#include "pjrt.h"
#include "ryft/pjrt.h"

#include "pjrt_internal.h"

/* ---- buffers and execution ---- */

static PJRT_Buffer_Type to_pjrt(ry_dtype t) {
  switch (t) {
  case RY_BOOL: return PJRT_Buffer_Type_PRED;
  case RY_I8: return PJRT_Buffer_Type_S8;
  case RY_I16: return PJRT_Buffer_Type_S16;
  case RY_I32: return PJRT_Buffer_Type_S32;
  case RY_I64: return PJRT_Buffer_Type_S64;
  case RY_U8: return PJRT_Buffer_Type_U8;
  case RY_U16: return PJRT_Buffer_Type_U16;
  case RY_U32: return PJRT_Buffer_Type_U32;
  case RY_U64: return PJRT_Buffer_Type_U64;
  case RY_F16: return PJRT_Buffer_Type_F16;
  case RY_BF16: return PJRT_Buffer_Type_BF16;
  case RY_F32: return PJRT_Buffer_Type_F32;
  case RY_F64: return PJRT_Buffer_Type_F64;
  default: return PJRT_Buffer_Type_INVALID;
  }
}

static bool from_pjrt(PJRT_Buffer_Type t, ry_dtype *out) {
  for (int d = 0; d < RY_DTYPE_COUNT; d++)
    if (to_pjrt((ry_dtype)d) == t) {
      *out = (ry_dtype)d;
      return true;
    }
  return false;
}

static void buffer_destroy(const PJRT_Api *api, PJRT_Buffer *b) {
  if (!b) return;
  PJRT_Buffer_Destroy_Args a = {.struct_size = PJRT_Buffer_Destroy_Args_STRUCT_SIZE, .buffer = b};
  ry_status_free(ryp_perr(api, api->PJRT_Buffer_Destroy(&a), "destroying a buffer"));
}

/* Await and destroy an event; the status of the awaited work. */
static ry_status event_finish(const PJRT_Api *api, PJRT_Event *ev, const char *what) {
  if (!ev) return NULL;
  PJRT_Event_Await_Args aa = {.struct_size = PJRT_Event_Await_Args_STRUCT_SIZE, .event = ev};
  ry_status s = ryp_perr(api, api->PJRT_Event_Await(&aa), what);
  PJRT_Event_Destroy_Args da = {.struct_size = PJRT_Event_Destroy_Args_STRUCT_SIZE, .event = ev};
  ry_status_free(ryp_perr(api, api->PJRT_Event_Destroy(&da), "destroying an event"));
  return s;
}

static ry_status to_device(ry_pjrt_client *c, const ry_array *a, PJRT_Device *dev, PJRT_Buffer **out) {
  const PJRT_Api *api = c->plugin->api;
  static const uint64_t dummy = 0;
  PJRT_Client_BufferFromHostBuffer_Args ba = {.struct_size = PJRT_Client_BufferFromHostBuffer_Args_STRUCT_SIZE,
                                              .client = c->client,
                                              .data = a->nbytes ? a->data : (const void *)&dummy,
                                              .type = to_pjrt(a->type.dtype),
                                              .dims = a->type.shape.dims,
                                              .num_dims = (size_t)a->type.shape.rank,
                                              .host_buffer_semantics = PJRT_HostBufferSemantics_kImmutableOnlyDuringCall,
                                              .device = dev};
  ry_status s = ryp_perr(api, api->PJRT_Client_BufferFromHostBuffer(&ba), "copying an input to the device");
  if (s) return s;
  s = event_finish(api, ba.done_with_host_buffer, "copying an input to the device");
  if (s) {
    buffer_destroy(api, ba.buffer);
    return s;
  }
  *out = ba.buffer;
  return NULL;
}

/* The dtype and shape PJRT reports for b. */
static ry_status buffer_type(const PJRT_Api *api, PJRT_Buffer *b, ry_type *t) {
  PJRT_Buffer_ElementType_Args ea = {.struct_size = PJRT_Buffer_ElementType_Args_STRUCT_SIZE, .buffer = b};
  ry_status s = ryp_perr(api, api->PJRT_Buffer_ElementType(&ea), "reading an output's type");
  if (s) return s;
  if (!from_pjrt(ea.type, &t->dtype))
    return ry__err(RY_ERR_DTYPE, "pjrt: an output has PJRT element type %d, which ryft has no dtype for", (int)ea.type);
  PJRT_Buffer_Dimensions_Args da = {.struct_size = PJRT_Buffer_Dimensions_Args_STRUCT_SIZE, .buffer = b};
  s = ryp_perr(api, api->PJRT_Buffer_Dimensions(&da), "reading an output's shape");
  if (s) return s;
  if (da.num_dims > RY_MAX_RANK) return ry__err(RY_ERR_SHAPE, "pjrt: an output has rank %zu (> %d)", da.num_dims, RY_MAX_RANK);
  t->shape = ry_shape_make((int)da.num_dims, da.dims);
  return NULL;
}

/* Copy b's nbytes bytes (its whole contents, checked) to dst and wait. */
static ry_status buffer_read(const PJRT_Api *api, PJRT_Buffer *b, void *dst, size_t nbytes) {
  if (HAS_FN(api, PJRT_Buffer_IsDeleted)) {
    PJRT_Buffer_IsDeleted_Args da = {.struct_size = PJRT_Buffer_IsDeleted_Args_STRUCT_SIZE, .buffer = b};
    ry_status s = ryp_perr(api, api->PJRT_Buffer_IsDeleted(&da), "checking a buffer");
    if (s) return s;
    if (da.is_deleted)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "pjrt: the device buffer was donated to an execution and no longer exists");
  }
  PJRT_Buffer_ToHostBuffer_Args ha = {.struct_size = PJRT_Buffer_ToHostBuffer_Args_STRUCT_SIZE, .src = b};
  ry_status s = ryp_perr(api, api->PJRT_Buffer_ToHostBuffer(&ha), "sizing a buffer");
  if (!s && ha.dst_size != nbytes)
    s = ry__err(RY_ERR_SHAPE, "pjrt: a device buffer holds %zu bytes but its array needs %zu", ha.dst_size, nbytes);
  if (!s && nbytes) {
    PJRT_Buffer_ToHostBuffer_Args ha2 = {.struct_size = PJRT_Buffer_ToHostBuffer_Args_STRUCT_SIZE,
                                         .src = b,
                                         .dst = dst,
                                         .dst_size = nbytes};
    s = ryp_perr(api, api->PJRT_Buffer_ToHostBuffer(&ha2), "copying a buffer to the host");
    if (!s) s = event_finish(api, ha2.event, "copying a buffer to the host");
  }
  return s;
}

static ry_status to_host(ry_pjrt_client *c, PJRT_Buffer *b, const ry_type *want, ry_array **out) {
  const PJRT_Api *api = c->plugin->api;
  ry_type t = {0};
  ry_status s = want ? (t = *want, NULL) : buffer_type(api, b, &t);
  if (s) return s;
  ry_array *a;
  s = ry__array_new(t, &a);
  if (s) return s;
  s = buffer_read(api, b, a->data, a->nbytes);
  if (s) {
    ry_array_release(a);
    return s;
  }
  *out = a;
  return NULL;
}

/* ---- device arrays: an ry_array whose storage is one PJRT buffer ---- */


static ry_status ryp_buf_to_host(ry_devbuf *b, void *dst, size_t nbytes) {
  ryp_buf *pb = (ryp_buf *)b;
  ry_status s = buffer_read(pb->client->plugin->api, pb->buf, dst, nbytes);
  return s ? ry__err_prefix(s, "reading a device array (device %d of the %s client)", pb->device, pb->client->platform)
           : NULL;
}

static void ryp_buf_free(ry_devbuf *b) {
  ryp_buf *pb = (ryp_buf *)b;
  buffer_destroy(pb->client->plugin->api, pb->buf);
  ry_pjrt_client_free(pb->client);
  ry__free(pb, sizeof *pb);
}

static const ry_devbuf_ops ryp_buf_ops = {ryp_buf_to_host, ryp_buf_free};

/* a's PJRT buffer, or NULL when a is not a PJRT device array */
static ryp_buf *pjrt_buf(const ry_array *a) {
  return a && a->dev && a->dev->ops == &ryp_buf_ops ? (ryp_buf *)a->dev : NULL;
}

/* A device array of type t (queried from b when NULL) owning b, which lives
 * on device `dev` of c; b is destroyed on failure. */
static ry_status wrap_buffer(ry_pjrt_client *c, int dev, PJRT_Buffer *b, const ry_type *t, ry_array **out) {
  const PJRT_Api *api = c->plugin->api;
  ry_type bt = {0};
  ry_status s = t ? (bt = *t, NULL) : buffer_type(api, b, &bt);
  ryp_buf *pb = s ? NULL : ry__calloc(1, sizeof *pb);
  if (!s && !pb) s = ry__oom();
  if (s) {
    buffer_destroy(api, b);
    return s;
  }
  pb->base.ops = &ryp_buf_ops;
  pb->client = ryp_client_retain(c);
  pb->device = dev;
  pb->buf = b;
  return ry__array_wrap_dev(bt, &pb->base, out); /* frees pb on failure */
}

uintptr_t ryp_array_device_address(const ry_array *a) {
  const ryp_buf *pb = pjrt_buf(a);
  if (!pb) return 0;
  const PJRT_Api *api = pb->client->plugin->api;
  if (!HAS_FN(api, PJRT_Buffer_UnsafePointer)) return 0;
  PJRT_Buffer_UnsafePointer_Args ua = {.struct_size = PJRT_Buffer_UnsafePointer_Args_STRUCT_SIZE, .buffer = pb->buf};
  ry_status s = ryp_perr(api, api->PJRT_Buffer_UnsafePointer(&ua), "buffer address");
  if (s) {
    ry_status_free(s);
    return 0;
  }
  return ua.buffer_pointer;
}

ry_status ry_pjrt_put(ry_pjrt_client *c, int device, const ry_array *a, ry_array **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_put: out is NULL");
  *out = NULL;
  if (!c) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_put: client is NULL");
  if (!a) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_put: array is NULL");
  if (device < 0 || device >= c->n_devices)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_put: device %d does not exist (the %s client has %d)", device,
                   c->platform, c->n_devices);
  const ryp_buf *pb = pjrt_buf(a);
  if (pb && pb->client == c && pb->device == device) { /* already there */
    *out = ry_array_retain((ry_array *)a);
    return NULL;
  }
  ry_status s = ry__array_sync(a); /* another device's array goes through the host */
  if (s) return ry__err_prefix(s, "ry_pjrt_put");
  PJRT_Buffer *b = NULL;
  s = to_device(c, a, c->devices[device], &b);
  if (s) return ry__err_prefix(s, "ry_pjrt_put");
  return wrap_buffer(c, device, b, &a->type, out);
}

/* Check device d's inputs against the graph. */
static ry_status check_inputs(const ry_pjrt_executable *e, int n_in, ry_array *const *in, int d) {
  for (int i = 0; i < n_in; i++)
    if (!in[i])
      return ry__err(RY_ERR_INVALID_ARGUMENT,
                     "ry_pjrt_execute: input %d is NULL (a donated input is consumed: the _donated calls set it to "
                     "NULL; pass the output that replaces it)",
                     i);
  if (!e->graph) return NULL;
  if (n_in != ry_graph_num_inputs(e->graph))
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute: got %d inputs but the graph '%s' takes %d", n_in,
                   e->graph->name, ry_graph_num_inputs(e->graph));
  for (int i = 0; i < n_in; i++) {
    ry_type want = ry_graph_input_type(e->graph, i);
    if (!ry_type_equal(in[i]->type, want)) {
      char a[128], b[128], dev[48] = "";
      if (d >= 0) snprintf(dev, sizeof dev, " (device %d)", d);
      return ry__err(in[i]->type.dtype != want.dtype ? RY_ERR_DTYPE : RY_ERR_SHAPE,
                     "ry_pjrt_execute: input %d%s has type %s but the graph expects %s", i, dev,
                     ry_type_str(in[i]->type, a, sizeof a), ry_type_str(want, b, sizeof b));
    }
  }
  return NULL;
}

/* Does in[k] appear elsewhere among the na arguments? */
static bool passed_twice(ry_array *const *in, size_t na, size_t k) {
  for (size_t j = 0; j < na; j++)
    if (j != k && in[j] == in[k]) return true;
  return false;
}

/* Run with per-device inputs in[d * n_in + i]; outputs out[d * no + i], new
 * device arrays on device d, or host arrays when host_out (of types
 * out_types[i] when given). A host input is copied to the device for this
 * call; a device array is used in place and must live on this client's
 * device d. donate[d * n_in + i] (NULL: none) says the caller owns that
 * reference and gives up the array's buffer: it goes to XLA (which may
 * write an aliased output over it) only when that reference is the array's
 * last one (refcount 1) and the array is passed nowhere else in the call;
 * the caller still releases the reference. Every other input is listed as
 * non-donatable, so XLA copies instead of writing over it. */
ry_status ryp_run(ry_pjrt_executable *e, int n_in, ry_array *const *in, const bool *donate, const ry_type *out_types,
                     bool host_out, ry_array **out) {
  ry_pjrt_client *c = e->client;
  const PJRT_Api *api = c->plugin->api;
  int nd = e->num_devices, no = e->num_outputs;
  size_t nargs = (size_t)n_in, nouts = (size_t)no, na = (size_t)nd * nargs;
  PJRT_Buffer **args = ry__calloc(na + 1, sizeof *args);
  bool *temp = ry__calloc(na + 1, sizeof *temp); /* args[k] made for this call */
  bool *keep = ry__calloc(nargs + 1, sizeof *keep); /* input i must not be donated */
  int64_t *keep_idx = ry__calloc(nargs + 1, sizeof *keep_idx);
  PJRT_Buffer **outs = ry__calloc((size_t)nd * nouts + 1, sizeof *outs);
  PJRT_Buffer **arg_lists[64], **out_lists[64];
  PJRT_Event *events[64] = {0};
  ry_status s = NULL;
  if (nd > 64) s = ry__err(RY_ERR_UNSUPPORTED, "ry_pjrt_execute: %d devices (at most 64)", nd);
  else if (!args || !temp || !keep || !keep_idx || !outs) s = ry__oom();
  for (int d = 0; d < nd && !s; d++) {
    arg_lists[d] = args + (size_t)d * nargs;
    out_lists[d] = outs + (size_t)d * nouts;
    for (size_t i = 0; i < nargs && !s; i++) {
      size_t k = (size_t)d * nargs + i;
      ry_array *a = in[k];
      const ryp_buf *pb = pjrt_buf(a);
      if (pb && pb->client != c) {
        s = ry__err(RY_ERR_INVALID_ARGUMENT,
                    "ry_pjrt_execute: input %zu is a device array of another PJRT client (device %d of a %s client); "
                    "copy it to this client with ry_pjrt_put or ry_device_put",
                    i, pb->device, pb->client->platform);
      } else if (pb && pb->device != d) {
        s = ry__err(RY_ERR_INVALID_ARGUMENT,
                    "ry_pjrt_execute: input %zu is a device array on device %d, but device %d runs this copy of the "
                    "program; give each device its own arrays (ry_pjrt_execute_per_device) or pass a host array",
                    i, pb->device, d);
      } else if (pb) {
        arg_lists[d][i] = pb->buf;
        bool give = donate && donate[k] && __atomic_load_n(&a->refcount, __ATOMIC_ACQUIRE) == 1 && !passed_twice(in, na, k);
        if (!give) keep[i] = true;
      } else {
        s = ry__array_sync(a); /* another backend's device array: its host copy */
        if (!s) s = to_device(c, a, c->devices[d], &arg_lists[d][i]);
        temp[k] = !s;
      }
    }
  }
  if (!s) {
    size_t n_keep = 0;
    for (size_t i = 0; i < nargs; i++)
      if (keep[i]) keep_idx[n_keep++] = (int64_t)i;
    PJRT_ExecuteOptions eo = {.struct_size = PJRT_ExecuteOptions_STRUCT_SIZE,
                              .launch_id = nd > 1 ? (int)(__atomic_add_fetch(&c->launches, 1, __ATOMIC_RELAXED) % 0x7fffffffu + 1) : 0,
                              .non_donatable_input_indices = keep_idx,
                              .num_non_donatable_input_indices = n_keep};
    PJRT_LoadedExecutable_Execute_Args xa = {.struct_size = PJRT_LoadedExecutable_Execute_Args_STRUCT_SIZE,
                                             .executable = e->exe,
                                             .options = &eo,
                                             .argument_lists = (PJRT_Buffer *const *const *)arg_lists,
                                             .num_devices = (size_t)nd,
                                             .num_args = nargs,
                                             .output_lists = out_lists,
                                             .device_complete_events = events};
    s = ryp_perr(api, api->PJRT_LoadedExecutable_Execute(&xa), "executing");
    for (int d = 0; d < nd; d++) {
      ry_status s2 = event_finish(api, events[d], "executing");
      if (!s) s = s2;
      else ry_status_free(s2);
    }
  }
  for (int d = 0; d < nd && !s; d++)
    for (int i = 0; i < no && !s; i++) {
      const ry_type *t = out_types ? &out_types[i] : NULL;
      if (host_out) {
        s = to_host(c, out_lists[d][i], t, &out[d * no + i]);
      } else {
        s = wrap_buffer(c, d, out_lists[d][i], t, &out[d * no + i]);
        out_lists[d][i] = NULL; /* the array owns it now (or destroyed it) */
      }
    }
  for (size_t k = 0; args && temp && k < na; k++)
    if (temp[k]) buffer_destroy(api, args[k]);
  if (outs)
    for (size_t i = 0; i < (size_t)nd * nouts; i++) buffer_destroy(api, outs[i]);
  ry__free(args, (na + 1) * sizeof *args);
  ry__free(temp, (na + 1) * sizeof *temp);
  ry__free(keep, (nargs + 1) * sizeof *keep);
  ry__free(keep_idx, (nargs + 1) * sizeof *keep_idx);
  ry__free(outs, ((size_t)nd * nouts + 1) * sizeof *outs);
  if (s)
    for (int i = 0; i < nd * no; i++) {
      ry_array_release(out[i]);
      out[i] = NULL;
    }
  return s;
}

/* ---- SPMD: global arrays <-> per-device blocks ---- */

/* The block of a value split as (mesh, dims) that partition `dev` holds:
 * its shape and its offset in the global array. */
static ry_shape block_of(ry_shape global, const ry_axes *mesh, const ry_axes *dims, int dev, int64_t *offset) {
  int64_t coord[RY_MAX_RANK] = {0}, rest = dev;
  for (int a = mesh->n - 1; a >= 0; a--) {
    coord[a] = rest % mesh->v[a];
    rest /= mesh->v[a];
  }
  ry_shape s = global;
  for (int i = 0; i < global.rank; i++) {
    offset[i] = 0;
    if (i < dims->n && dims->v[i] >= 0) {
      s.dims[i] = global.dims[i] / mesh->v[dims->v[i]];
      offset[i] = coord[dims->v[i]] * s.dims[i];
    }
  }
  return s;
}

/* Copy the block at `offset` between the global array and the local one,
 * a row of the last dimension at a time. */
static void block_copy(ry_array *global, ry_array *local, const int64_t *offset, bool to_local) {
  ry_shape gs = global->type.shape, ls = local->type.shape;
  size_t es = ry_dtype_size(global->type.dtype);
  int r = gs.rank;
  if (r == 0) {
    if (to_local) memcpy(local->data, global->data, es);
    else memcpy(global->data, local->data, es);
    return;
  }
  int64_t numel = ry_shape_numel(ls);
  if (numel == 0) return;
  int64_t row = ls.dims[r - 1], idx[RY_MAX_RANK] = {0};
  ry_shape outer = ls;
  outer.dims[r - 1] = 1;
  for (int64_t k = 0; k < numel / row; k++) {
    int64_t g = 0;
    for (int i = 0; i < r; i++) g = g * gs.dims[i] + idx[i] + offset[i];
    char *gp = (char *)global->data + (size_t)g * es, *lp = (char *)local->data + (size_t)(k * row) * es;
    if (to_local) memcpy(lp, gp, (size_t)row * es);
    else memcpy(gp, lp, (size_t)row * es);
    for (int d = r - 1; d >= 0; d--) {
      if (++idx[d] < outer.dims[d]) break;
      idx[d] = 0;
    }
  }
}

static ry_status execute_spmd(ry_pjrt_executable *e, int n_in, ry_array *const *in, ry_array **out) {
  int nd = e->num_devices, no = e->num_outputs;
  const ry_graph *g = e->graph;
  ry_array **local = ry__calloc((size_t)nd * (size_t)n_in + 1, sizeof *local);
  ry_array **lout = ry__calloc((size_t)nd * (size_t)no + 1, sizeof *lout);
  ry_type *otypes = ry__calloc((size_t)no + 1, sizeof *otypes);
  ry_status s = (!local || !lout || !otypes) ? ry__oom() : NULL;
  int64_t off[RY_MAX_RANK];
  /* the blocks are cut from host memory: device arrays' host copies (a
   * replicated device array becomes a host array, valid on every device) */
  for (int i = 0; i < n_in && !s; i++) {
    ry_axes mesh, dims;
    bool split = rys_io_sharding(g, true, i, &mesh, &dims);
    s = ry__array_sync(in[i]);
    ry_array *whole = NULL;
    if (!s && !split) {
      if (in[i]->dev) s = ry_array_from_host(in[i]->type.dtype, in[i]->type.shape, in[i]->data, &whole);
      else whole = ry_array_retain(in[i]);
    }
    for (int d = 0; d < nd && !s; d++) {
      if (!split) {
        local[d * n_in + i] = ry_array_retain(whole);
        continue;
      }
      ry_type lt = {in[i]->type.dtype, block_of(in[i]->type.shape, &mesh, &dims, d, off)};
      s = ry__array_new(lt, &local[d * n_in + i]);
      if (!s) block_copy(in[i], local[d * n_in + i], off, true);
    }
    ry_array_release(whole);
  }
  for (int i = 0; i < no && !s; i++) {
    ry_axes mesh, dims;
    otypes[i] = ry_graph_output_type(g, i);
    if (rys_io_sharding(g, false, i, &mesh, &dims)) otypes[i].shape = block_of(otypes[i].shape, &mesh, &dims, 0, off);
  }
  if (!s) s = ryp_run(e, n_in, local, NULL, otypes, true, lout);
  for (int i = 0; i < no && !s; i++) {
    ry_axes mesh, dims;
    if (!rys_io_sharding(g, false, i, &mesh, &dims)) {
      out[i] = ry_array_retain(lout[i]); /* replicated: device 0's copy */
      continue;
    }
    s = ry__array_new(ry_graph_output_type(g, i), &out[i]);
    for (int d = 0; d < nd && !s; d++) {
      block_of(out[i]->type.shape, &mesh, &dims, d, off);
      block_copy(out[i], lout[d * no + i], off, false);
    }
  }
  if (local)
    for (int i = 0; i < nd * n_in; i++) ry_array_release(local[i]);
  if (lout)
    for (int i = 0; i < nd * no; i++) ry_array_release(lout[i]);
  ry__free(local, ((size_t)nd * (size_t)n_in + 1) * sizeof *local);
  ry__free(lout, ((size_t)nd * (size_t)no + 1) * sizeof *lout);
  ry__free(otypes, ((size_t)no + 1) * sizeof *otypes);
  if (s)
    for (int i = 0; i < no; i++) {
      ry_array_release(out[i]);
      out[i] = NULL;
    }
  return s;
}

/* donate: as for ryp_run(), per input (per_device: per device and input) */
static ry_status execute_common(ry_pjrt_executable *e, bool per_device, int n_in, ry_array *const *in,
                                const bool *donate, int n_out, ry_array **out) {
  if (!e) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute: executable is NULL");
  if (n_out > 0 && !out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute: outputs array is NULL");
  for (int i = 0; i < n_out; i++) out[i] = NULL;
  if (n_in > 0 && !in) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute: inputs array is NULL");
  int nd = e->num_devices, no = e->num_outputs;
  if (no < 0) return ry__err(RY_ERR_UNSUPPORTED, "ry_pjrt_execute: the plugin did not report the number of outputs");
  if (nd > 64) return ry__err(RY_ERR_UNSUPPORTED, "ry_pjrt_execute: %d devices (at most 64)", nd);
  if (e->spmd) {
    if (per_device)
      return ry__err(RY_ERR_INVALID_ARGUMENT,
                     "ry_pjrt_execute_per_device: the executable is partitioned (SPMD): pass global arrays to "
                     "ry_pjrt_execute");
    if (n_out != no)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute: room for %d outputs but the partitioned executable makes %d",
                     n_out, no);
    ry_status s = check_inputs(e, n_in, in, -1);
    return s ? s : execute_spmd(e, n_in, in, out);
  }
  if (n_out != no * nd)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute: room for %d outputs but the executable makes %d (%d per device x %d devices)",
                   n_out, no * nd, no, nd);
  ry_type *otypes = NULL;
  if (e->graph) {
    otypes = ry__calloc((size_t)no + 1, sizeof *otypes);
    if (!otypes) return ry__oom();
    for (int i = 0; i < no; i++) otypes[i] = ry_graph_output_type(e->graph, i);
  }
  ry_status s = NULL;
  ry_array **args = NULL;
  if (per_device) {
    if (n_in % nd)
      s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_pjrt_execute_per_device: %d inputs is not a multiple of the %d devices", n_in, nd);
    for (int d = 0; d < nd && !s; d++) s = check_inputs(e, n_in / nd, in + (size_t)d * (size_t)(n_in / nd), d);
    if (!s) s = ryp_run(e, n_in / nd, in, donate, otypes, e->host_outputs, out);
  } else {
    /* the same inputs on every device (an array passed to several devices
     * is never donated: ryp_run() sees it passed more than once) */
    s = check_inputs(e, n_in, in, -1);
    if (!s && !(args = ry__calloc((size_t)nd * (size_t)n_in + 1, sizeof *args))) s = ry__oom();
    for (int d = 0; d < nd && !s; d++)
      for (int i = 0; i < n_in; i++) args[d * n_in + i] = in[i];
    if (!s) s = ryp_run(e, n_in, args, nd == 1 ? donate : NULL, otypes, e->host_outputs, out);
  }
  ry__free(args, ((size_t)nd * (size_t)n_in + 1) * sizeof *args);
  ry__free(otypes, ((size_t)no + 1) * sizeof *otypes);
  return s;
}

ry_status ry_pjrt_execute(ry_pjrt_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  return execute_common(e, false, n_in, in, NULL, n_out, out);
}

ry_status ry_pjrt_execute_per_device(ry_pjrt_executable *e, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  return execute_common(e, true, n_in, in, NULL, n_out, out);
}

/* Execute where the call owns the reference in[i] for every owned[i] and
 * releases it afterwards, whatever happens. */
ry_status ryp_execute_owned(ry_pjrt_executable *e, bool per_device, int n_in, ry_array *const *in,
                               const bool *owned, int n_out, ry_array **out) {
  ry_status s = execute_common(e, per_device, n_in, in, owned, n_out, out);
  for (int i = 0; owned && in && i < n_in; i++)
    if (owned[i]) ry_array_release(in[i]);
  return s;
}

/* ry_pjrt_execute_donated and _per_device_donated: take the donated
 * references over (in[i] = NULL), then run. */
ry_status ryp_execute_donated(ry_pjrt_executable *e, bool per_device, int n_in, ry_array **in, const bool *donate,
                                 int n_out, ry_array **out) {
  if (!donate || !in || n_in <= 0) return execute_common(e, per_device, n_in, in, NULL, n_out, out);
  ry_array **args = ry__calloc((size_t)n_in, sizeof *args);
  bool *owned = ry__calloc((size_t)n_in, sizeof *owned);
  ry_status s = NULL;
  for (int i = 0; i < n_in; i++) {
    if (args) args[i] = in[i];
    if (owned) owned[i] = donate[i] && in[i];
    if (donate[i] && in[i] && (!args || !owned)) ry_array_release(in[i]); /* consumed even on failure */
    if (donate[i]) in[i] = NULL;
  }
  if (!args || !owned) {
    s = ry__oom();
    for (int i = 0; out && i < n_out; i++) out[i] = NULL;
  } else {
    s = ryp_execute_owned(e, per_device, n_in, args, owned, n_out, out);
  }
  ry__free(args, (size_t)n_in * sizeof *args);
  ry__free(owned, (size_t)n_in * sizeof *owned);
  return s;
}

ry_status ry_pjrt_execute_donated(ry_pjrt_executable *e, int n_in, ry_array **in, const bool *donate, int n_out,
                                  ry_array **out) {
  return ryp_execute_donated(e, false, n_in, in, donate, n_out, out);
}

ry_status ry_pjrt_execute_per_device_donated(ry_pjrt_executable *e, int n_in, ry_array **in, const bool *donate,
                                             int n_out, ry_array **out) {
  return ryp_execute_donated(e, true, n_in, in, donate, n_out, out);
}
