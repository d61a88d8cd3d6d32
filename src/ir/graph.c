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

/* Storage of a finished graph at its size: the doubling that built it can
 * leave up to half of the node and value arrays unused (megabytes for a
 * model's program, held as long as the program). Nothing may hold a
 * pointer into the arrays. Failing to shrink leaves them as they are. */
#define TRIM_MIN_BYTES (64 << 10) /* smaller slack stays: a constant fold's tiny graphs */
#define TRIM(ptr, n, cap, type)                                                                      \
  do {                                                                                               \
    if ((n) > 0 && (size_t)((cap) - (n)) * sizeof(type) >= TRIM_MIN_BYTES) {                         \
      type *np_ = ry__realloc((ptr), (size_t)(cap) * sizeof(type), (size_t)(n) * sizeof(type));      \
      if (np_) {                                                                                     \
        (ptr) = np_;                                                                                 \
        (cap) = (n);                                                                                 \
      }                                                                                              \
    }                                                                                                \
  } while (0)

void ry__graph_trim(ry_graph *g) {
  if (!g) return;
  TRIM(g->nodes, g->n_nodes, g->cap_nodes, ry_node);
  TRIM(g->values, g->n_values, g->cap_values, ry_valinfo);
  TRIM(g->pool, g->n_pool, g->cap_pool, int32_t);
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
