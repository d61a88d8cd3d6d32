/* Graph storage: construction, attribute ownership, refcounting and the
 * public read-only accessors. */
#include <stdatomic.h>

#include "graph.h"

#define GROW(ptr, n, cap, type, fail)                                                                  \
  do {                                                                                                 \
    if ((n) == (cap)) {                                                                                \
      int32_t ncap_ = (cap) ? (cap) * 2 : 16;                                                          \
      type *np_ = ry__realloc((ptr), (size_t)(cap) * sizeof(type), (size_t)ncap_ * sizeof(type));      \
      if (!np_) fail;                                                                                  \
      (ptr) = np_;                                                                                     \
      (cap) = ncap_;                                                                                   \
    }                                                                                                  \
  } while (0)

ry_graph *ry__graph_new(const char *name) {
  ry_graph *g = ry__calloc(1, sizeof *g);
  if (!g) return NULL;
  atomic_init((_Atomic int *)&g->refcount, 1);
  g->name = ry__strdup(name ? name : "main");
  if (!g->name) goto fail;
  /* value 0 is the invalid value */
  GROW(g->values, g->n_values, g->cap_values, ry_valinfo, goto fail);
  memset(&g->values[0], 0, sizeof g->values[0]);
  g->values[0].node = -1;
  g->n_values = 1;
  if (ry__graph_add_region(g, -1) != 0) goto fail;
  return g;
fail:
  ry_graph_release(g);
  return NULL;
}

int32_t ry__graph_add_region(ry_graph *g, int32_t owner_node) {
  GROW(g->regions, g->n_regions, g->cap_regions, ry_region, return -1);
  ry_region *r = &g->regions[g->n_regions];
  memset(r, 0, sizeof *r);
  r->node = owner_node;
  return g->n_regions++;
}

static int32_t add_value(ry_graph *g, ry_type t, int32_t node, int32_t index, int32_t region, const char *name) {
  GROW(g->values, g->n_values, g->cap_values, ry_valinfo, return -1);
  ry_valinfo *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  v->type = t;
  v->node = node;
  v->index = index;
  v->region = region;
  if (name) {
    v->name = ry__strdup(name);
    if (!v->name) return -1;
  }
  return g->n_values++;
}

int32_t ry__graph_add_param(ry_graph *g, int32_t r, ry_type t, const char *name) {
  int32_t v = add_value(g, t, -1, g->regions[r].params.n, r, name);
  if (v < 0) return -1;
  if (!ry__ivec_push(&g->regions[r].params, v)) return -1;
  return v;
}

static int32_t pool_add(ry_graph *g, int n, const int32_t *xs) {
  while (g->n_pool + n > g->cap_pool) {
    int32_t ncap = g->cap_pool ? g->cap_pool * 2 : 64;
    int32_t *np = ry__realloc(g->pool, (size_t)g->cap_pool * sizeof(int32_t), (size_t)ncap * sizeof(int32_t));
    if (!np) return -1;
    g->pool = np;
    g->cap_pool = ncap;
  }
  int32_t off = g->n_pool;
  if (n && xs) memcpy(g->pool + off, xs, (size_t)n * sizeof(int32_t));
  g->n_pool += n;
  return off;
}

int32_t ry__graph_add_node(ry_graph *g, int32_t r, ry_op op, int n_operands, const int32_t *operands, int n_results,
                           const ry_type *result_types, int n_regions, const int32_t *regions, const ry_attrs *attrs,
                           ry_loc loc) {
  GROW(g->nodes, g->n_nodes, g->cap_nodes, ry_node, return -1);
  int32_t id = g->n_nodes;
  ry_node n;
  memset(&n, 0, sizeof n);
  n.op = op;
  n.region = r;
  n.loc = loc;
  n.n_operands = n_operands;
  n.operands = pool_add(g, n_operands, operands);
  n.n_regions = n_regions;
  n.regions = pool_add(g, n_regions, regions);
  n.n_results = n_results;
  n.results = pool_add(g, n_results, NULL);
  if (n.operands < 0 || n.regions < 0 || n.results < 0) return -1;
  for (int i = 0; i < n_results; i++) {
    int32_t v = add_value(g, result_types[i], id, i, r, NULL);
    if (v < 0) return -1;
    g->pool[n.results + i] = v;
  }
  if (!ry__ivec_push(&g->regions[r].nodes, id)) return -1;
  for (int i = 0; i < n_regions; i++) g->regions[regions[i]].node = id;
  if (attrs) n.attrs = *attrs; /* ownership transferred */
  g->nodes[id] = n;
  g->n_nodes++;
  return id;
}

void ry__attrs_free(ry_op op, ry_attrs *a) {
  switch (ryg_op_table[op].attrs) {
  case RY_ATTR_CONSTANT: ry_array_release(a->constant.value); a->constant.value = NULL; break;
  case RY_ATTR_CALL:
    ry_graph_release(a->call.callee);
    ry_graph_release(a->call.jvp);
    ry_graph_release(a->call.fwd);
    ry_graph_release(a->call.bwd);
    a->call.callee = a->call.jvp = a->call.fwd = a->call.bwd = NULL;
    break;
  case RY_ATTR_CUSTOM: ry__strfree(a->custom.target); a->custom.target = NULL; break;
  default: break;
  }
}

bool ry__attrs_copy(ry_op op, ry_attrs *dst, const ry_attrs *src) {
  *dst = *src;
  switch (ryg_op_table[op].attrs) {
  case RY_ATTR_CONSTANT: ry_array_retain(dst->constant.value); break;
  case RY_ATTR_CALL:
    ry_graph_retain(dst->call.callee);
    ry_graph_retain(dst->call.jvp);
    ry_graph_retain(dst->call.fwd);
    ry_graph_retain(dst->call.bwd);
    break;
  case RY_ATTR_CUSTOM:
    dst->custom.target = ry__strdup(src->custom.target);
    if (!dst->custom.target) return false;
    break;
  default: break;
  }
  return true;
}

static bool axes_eq(const ry_axes *a, const ry_axes *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++)
    if (a->v[i] != b->v[i]) return false;
  return true;
}

bool ry__attrs_equal(ry_op op, const ry_attrs *a, const ry_attrs *b) {
  switch (ryg_op_table[op].attrs) {
  case RY_ATTR_NONE: return true;
  case RY_ATTR_COMPARE: return a->compare.dir == b->compare.dir;
  case RY_ATTR_BROADCAST: return axes_eq(&a->broadcast.dims, &b->broadcast.dims);
  case RY_ATTR_TRANSPOSE: return axes_eq(&a->transpose.perm, &b->transpose.perm);
  case RY_ATTR_SLICE:
    return axes_eq(&a->slice.start, &b->slice.start) && axes_eq(&a->slice.limit, &b->slice.limit) &&
           axes_eq(&a->slice.stride, &b->slice.stride);
  case RY_ATTR_DYNAMIC_SLICE: return axes_eq(&a->dynamic_slice.sizes, &b->dynamic_slice.sizes);
  case RY_ATTR_CONCATENATE: return a->concatenate.dim == b->concatenate.dim;
  case RY_ATTR_PAD:
    return axes_eq(&a->pad.low, &b->pad.low) && axes_eq(&a->pad.high, &b->pad.high) &&
           axes_eq(&a->pad.interior, &b->pad.interior);
  case RY_ATTR_REVERSE: return axes_eq(&a->reverse.dims, &b->reverse.dims);
  case RY_ATTR_IOTA: return a->iota.dim == b->iota.dim;
  case RY_ATTR_CONSTANT: {
    const ry_array *x = a->constant.value, *y = b->constant.value;
    return x == y || (ry_type_equal(x->type, y->type) && memcmp(x->data, y->data, x->nbytes) == 0);
  }
  case RY_ATTR_REDUCE: return a->reduce.kind == b->reduce.kind && axes_eq(&a->reduce.axes, &b->reduce.axes);
  case RY_ATTR_ARG: return a->arg.axis == b->arg.axis;
  case RY_ATTR_ALL_REDUCE:
  case RY_ATTR_ALL_GATHER:
  case RY_ATTR_REDUCE_SCATTER:
    return a->collective.kind == b->collective.kind && a->collective.dim == b->collective.dim &&
           axes_eq(&a->collective.mesh, &b->collective.mesh) && axes_eq(&a->collective.axes, &b->collective.axes);
  case RY_ATTR_SHARDING: return axes_eq(&a->sharding.mesh, &b->sharding.mesh) && axes_eq(&a->sharding.dims, &b->sharding.dims);
  case RY_ATTR_CUMULATIVE:
    return a->cumulative.kind == b->cumulative.kind && a->cumulative.axis == b->cumulative.axis &&
           a->cumulative.reverse == b->cumulative.reverse;
  case RY_ATTR_DOT:
    return axes_eq(&a->dot.lhs_batch, &b->dot.lhs_batch) && axes_eq(&a->dot.rhs_batch, &b->dot.rhs_batch) &&
           axes_eq(&a->dot.lhs_contract, &b->dot.lhs_contract) && axes_eq(&a->dot.rhs_contract, &b->dot.rhs_contract);
  case RY_ATTR_CONV: {
    const ry_conv_dims *x = &a->conv, *y = &b->conv;
    return axes_eq(&x->stride, &y->stride) && axes_eq(&x->pad_low, &y->pad_low) && axes_eq(&x->pad_high, &y->pad_high) &&
           axes_eq(&x->lhs_dilation, &y->lhs_dilation) && axes_eq(&x->rhs_dilation, &y->rhs_dilation) &&
           x->feature_groups == y->feature_groups && x->batch_groups == y->batch_groups &&
           axes_eq(&x->input_dims, &y->input_dims) && axes_eq(&x->kernel_dims, &y->kernel_dims) &&
           axes_eq(&x->output_dims, &y->output_dims);
  }
  case RY_ATTR_GATHER: {
    const ry_gather_dims *x = &a->gather, *y = &b->gather;
    return axes_eq(&x->offset_dims, &y->offset_dims) && axes_eq(&x->collapsed_slice_dims, &y->collapsed_slice_dims) &&
           axes_eq(&x->start_index_map, &y->start_index_map) && axes_eq(&x->slice_sizes, &y->slice_sizes) &&
           x->index_vector_dim == y->index_vector_dim;
  }
  case RY_ATTR_SCATTER: {
    const ry_scatter_dims *x = &a->scatter, *y = &b->scatter;
    return axes_eq(&x->update_window_dims, &y->update_window_dims) &&
           axes_eq(&x->inserted_window_dims, &y->inserted_window_dims) &&
           axes_eq(&x->scatter_dims_to_operand_dims, &y->scatter_dims_to_operand_dims) &&
           x->index_vector_dim == y->index_vector_dim && x->kind == y->kind;
  }
  case RY_ATTR_SORT:
    return a->sort.dim == b->sort.dim && a->sort.num_keys == b->sort.num_keys && a->sort.descending == b->sort.descending &&
           a->sort.stable == b->sort.stable;
  case RY_ATTR_WHILE: return a->while_.n_consts == b->while_.n_consts;
  case RY_ATTR_SCAN:
    return a->scan.length == b->scan.length && a->scan.n_consts == b->scan.n_consts && a->scan.n_carry == b->scan.n_carry &&
           a->scan.reverse == b->scan.reverse;
  case RY_ATTR_CALL:
    return a->call.callee == b->call.callee && a->call.jvp == b->call.jvp && a->call.fwd == b->call.fwd &&
           a->call.bwd == b->call.bwd && a->call.remat == b->call.remat;
  case RY_ATTR_CUSTOM: return strcmp(a->custom.target, b->custom.target) == 0;
  default: return false;
  }
}

ry_graph *ry_graph_retain(ry_graph *g) {
  if (g) atomic_fetch_add((_Atomic int *)&g->refcount, 1);
  return g;
}

void ry_graph_release(ry_graph *g) {
  if (!g) return;
  if (atomic_fetch_sub((_Atomic int *)&g->refcount, 1) != 1) return;
  for (int32_t i = 0; i < g->n_nodes; i++) ry__attrs_free(g->nodes[i].op, &g->nodes[i].attrs);
  for (int32_t i = 0; i < g->n_values; i++) ry__strfree(g->values[i].name);
  for (int32_t i = 0; i < g->n_regions; i++) {
    ry_region *r = &g->regions[i];
    ry__ivec_free(&r->params);
    ry__ivec_free(&r->nodes);
    ry__ivec_free(&r->results);
    ry__ivec_free(&r->cap_outer);
    ry__ivec_free(&r->cap_param);
  }
  ry__free(g->values, (size_t)g->cap_values * sizeof(ry_valinfo));
  ry__free(g->nodes, (size_t)g->cap_nodes * sizeof(ry_node));
  ry__free(g->regions, (size_t)g->cap_regions * sizeof(ry_region));
  ry__free(g->pool, (size_t)g->cap_pool * sizeof(int32_t));
  ry__strfree(g->name);
  ry__free(g, sizeof *g);
}

const char *ry_graph_name(const ry_graph *g) { return g->name; }
int ry_graph_num_inputs(const ry_graph *g) { return g->regions[0].params.n; }
int ry_graph_num_outputs(const ry_graph *g) { return g->regions[0].results.n; }

ry_type ry_graph_input_type(const ry_graph *g, int i) {
  ry_type t = {RY_F32, {0, {0}}};
  if (i < 0 || i >= g->regions[0].params.n) return t;
  return g->values[g->regions[0].params.v[i]].type;
}

ry_type ry_graph_output_type(const ry_graph *g, int i) {
  ry_type t = {RY_F32, {0, {0}}};
  if (i < 0 || i >= g->regions[0].results.n) return t;
  return g->values[g->regions[0].results.v[i]].type;
}

const char *ry_graph_input_name(const ry_graph *g, int i) {
  if (i < 0 || i >= g->regions[0].params.n) return NULL;
  return g->values[g->regions[0].params.v[i]].name;
}

int ry_graph_num_ops(const ry_graph *g) { return g->n_nodes; }

int64_t ry__group_size(const ry_axes *mesh, const ry_axes *axes) {
  int64_t n = 1;
  if (mesh->n < 1 || mesh->n > RY_MAX_RANK || axes->n < 0 || axes->n > mesh->n) return 0;
  for (int i = 0; i < axes->n; i++) {
    if (axes->v[i] < 0 || axes->v[i] >= mesh->n) return 0;
    n *= mesh->v[axes->v[i]];
  }
  return n;
}
