/* The collectives of a StableHLO program: all_reduce, all_gather,
 * reduce_scatter and collective_broadcast, each with one operand, as ryft's
 * collectives over a device mesh (docs/IR.md, "Collectives and sharding").
 *
 * ryft names a group by mesh axes, StableHLO lists replica ids. The groups
 * are read back as the mesh [a, n, b] and the group axis 1: each group is
 * the ids s + k*b (k < n) with s = i*n*b + l, which covers what ryft's
 * emitter writes for a group along one mesh axis (a contiguous block, b = 1,
 * or a strided set, a = 1) and JAX's groups over one named axis; axes of
 * size 1 are dropped (mesh [4] with axes [0] reads back as written). Groups of one are
 * axes []. Other groupings (a group along two axes of a 3-d mesh, an
 * unsorted group of all_gather / reduce_scatter, whose order is the order of
 * the blocks) are refused by name. collective_broadcast's source is the
 * first id of each group (StableHLO's rule), so it must sit at the same
 * position of every sorted group. channel_handle and use_global_device_ids
 * are ignored: ids are the devices of ryft's mesh either way. */
#include "shlo_internal.h"

/* 1 with mesh/axes (and, for src, the source's position), 0 malformed,
 * -1 a grouping ryft cannot hold (why says which). */
static int read_groups(shlo_x *x, bool sorted_only, ry_axes *mesh, ry_axes *axes, int64_t *src, char *why, size_t why_size) {
  const shlo_span *s = shlo_attr(x, "replica_groups", NULL);
  if (!s) return 0;
  /* the groups' shape from the written type (`... : tensor<2x2xi64>`) */
  shlo_span ts = {0};
  for (int i = 0; i + 7 <= s->n; i++)
    if (memcmp(s->p + i, "tensor<", 7) == 0) {
      ts = (shlo_span){s->p + i, s->n - i};
      break;
    }
  ry_type t;
  char tw[64];
  if (!ts.p || shlo_type(ts, &t, tw, sizeof tw) != 1 || t.shape.rank != 2) return 0;
  int64_t ng = t.shape.dims[0], gs = t.shape.dims[1], N = ng * gs;
  if (N == 0) {
    snprintf(why, why_size, "empty replica_groups (all replicas, a count the program does not say)");
    return -1;
  }
  if (N > 1024) {
    snprintf(why, why_size, "replica_groups of %lld devices (ryft's meshes have at most 1024)", (long long)N);
    return -1;
  }
  int64_t ids[1024];
  int n_ids = 0;
  if (!shlo_ints(*s, ids, 1024, &n_ids) || n_ids != N) return 0;
  /* sort each group, noting where its first id went */
  int64_t pos0 = -1;
  bool seen[1024] = {false};
  for (int64_t g = 0; g < ng; g++) {
    int64_t *row = ids + g * gs, first = row[0];
    for (int64_t i = 0; i < gs; i++) {
      if (row[i] < 0 || row[i] >= N || seen[row[i]]) {
        snprintf(why, why_size, "replica_groups that do not list each of the ids 0..%lld once", (long long)N - 1);
        return -1;
      }
      seen[row[i]] = true;
    }
    for (int64_t i = 1; i < gs; i++) /* insertion sort: at most 1024 ids */
      for (int64_t j = i; j > 0 && row[j - 1] > row[j]; j--) {
        if (sorted_only) {
          snprintf(why, why_size, "a replica group not in increasing order (ryft's groups are ordered by device)");
          return -1;
        }
        int64_t tmp = row[j];
        row[j] = row[j - 1];
        row[j - 1] = tmp;
      }
    int64_t p = 0;
    while (row[p] != first) p++;
    if (src && g > 0 && p != pos0) {
      snprintf(why, why_size, "collective_broadcast sources at different positions of their groups");
      return -1;
    }
    pos0 = p;
  }
  if (src) *src = pos0;
  int64_t b = gs > 1 ? ids[1] - ids[0] : 1;
  bool ok = b >= 1 && N % (gs * b) == 0;
  for (int64_t g = 0; g < ng && ok; g++) {
    const int64_t *row = ids + g * gs;
    ok = (row[0] / b) % gs == 0;
    for (int64_t i = 1; i < gs && ok; i++) ok = row[i] == row[0] + i * b;
  }
  if (!ok) {
    snprintf(why, why_size, "replica groups that are not one axis of a device mesh");
    return -1;
  }
  int64_t a = N / (gs * b), dims[3] = {a, gs, b};
  mesh->n = 0;
  axes->n = 0;
  for (int i = 0; i < 3; i++) {
    if (dims[i] == 1 && !(i == 1 && gs == N)) continue;
    if (i == 1 && gs > 1) axes->v[axes->n++] = mesh->n;
    mesh->v[mesh->n++] = dims[i];
  }
  return 1;
}

bool shlo_c_collective(shlo_x *x) {
  const shlo_span nm = x->op->name;
  bool bcast = shlo_span_is(nm, "stablehlo.collective_broadcast"), gather = shlo_span_is(nm, "stablehlo.all_gather"),
       scatter = shlo_span_is(nm, "stablehlo.reduce_scatter");
  if (x->n_in != 1 || x->n_res != 1) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a collective of %d operands (ryft's take one)", x->n_in);
  ry_axes mesh, axes;
  int64_t src = 0;
  char why[160] = "";
  int r = read_groups(x, gather || scatter, &mesh, &axes, bcast ? &src : NULL, why, sizeof why);
  if (r == 0) return shlo_xfail(x, RY_ERR_PARSE, "missing or malformed replica_groups");
  if (r < 0) return shlo_xfail(x, RY_ERR_UNSUPPORTED, "%s", why);
  ry_value v;
  if (bcast) v = ry_collective_broadcast_(x->b, x->loc, x->in[0], (int)src, mesh, axes);
  else if (gather) {
    int64_t dim;
    const shlo_span *d = shlo_attr(x, "all_gather_dim", NULL);
    if (!d || !shlo_int(*d, &dim)) return shlo_xfail(x, RY_ERR_PARSE, "missing or malformed all_gather_dim");
    v = ry_all_gather_(x->b, x->loc, x->in[0], (int)dim, mesh, axes);
  } else {
    const shlo_region *reg = x->op->n_reg ? x->op->reg[0] : NULL;
    shlo_span opname = {0};
    ry_reduce_kind k;
    if (!reg || !shlo_body_kind(reg, 0, 1, &opname) || !shlo_kind_of(opname, ry_value_dtype(x->b, x->in[0]), &k))
      return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a reduction body that is not one add, multiply, maximum or minimum");
    if (scatter) {
      int64_t dim;
      const shlo_span *d = shlo_attr(x, "scatter_dimension", NULL);
      if (!d || !shlo_int(*d, &dim)) return shlo_xfail(x, RY_ERR_PARSE, "missing or malformed scatter_dimension");
      v = ry_reduce_scatter_(x->b, x->loc, x->in[0], (int)dim, k, mesh, axes);
    } else v = ry_all_reduce_(x->b, x->loc, x->in[0], k, mesh, axes);
  }
  return shlo_finish1(x, v);
}
