/* Collectives across the processes of an MPI job (ryft/dist.h): the mesh of
 * a collective has one device per process, process r being device r of the
 * row-major mesh. Each kernel finds its group (the processes whose mesh
 * coordinates differ only along `axes`, ordered by their coordinates along
 * `axes` as in the replica groups of the StableHLO emitter), then moves
 * bytes with rydist_exchange and combines them here:
 *
 *   all_reduce      reduce-scatter then all-gather: member j combines
 *                   block j of every member's operand, then every member
 *                   gathers the combined blocks (2(g-1)/g of the operand
 *                   sent per member);
 *   reduce_scatter  member j combines block j of dim of every operand;
 *   all_gather      every member sends its operand to every other;
 *   collective_broadcast  the source member sends its operand to every
 *                   other (the others send nothing).
 *
 * Values are combined in member order (((x0 op x1) op x2) ..., rounded to
 * the dtype after each op), so every run and every rank computes the same
 * bits. */
#include "interp.h"
#include "../../dist/dist.h"

typedef struct group {
  int n, me;
  int *peers; /* world ranks, in member order */
} group;

static int64_t mesh_numel(const ry_axes *m) {
  int64_t d = 1;
  for (int i = 0; i < m->n; i++) d *= m->v[i];
  return d;
}

static ry_status find_group(const ry_node *n, group *gr) {
  const ry_axes *mesh = &n->attrs.collective.mesh, *axes = &n->attrs.collective.axes;
  int64_t nd = mesh_numel(mesh), gs = ry__group_size(mesh, axes);
  int P = ry_dist_size(), rank = ry_dist_rank();
  if (nd != P)
    return ry__err(RY_ERR_INVALID_ARGUMENT,
                   "a mesh of %lld devices in a job of %d processes: under MPI a collective's mesh has one device per "
                   "process (mesh size = ry_dist_size())",
                   (long long)nd, P);
  int64_t coord[RY_MAX_RANK], rest = rank;
  for (int i = mesh->n - 1; i >= 0; i--) {
    coord[i] = rest % mesh->v[i];
    rest /= mesh->v[i];
  }
  gr->n = (int)gs;
  gr->me = -1;
  if (!(gr->peers = ry__malloc((size_t)gs * sizeof(int)))) return ry__oom();
  for (int64_t pos = 0; pos < gs; pos++) {
    int64_t c[RY_MAX_RANK], p = pos;
    memcpy(c, coord, sizeof c);
    for (int i = axes->n - 1; i >= 0; i--) {
      c[axes->v[i]] = p % mesh->v[axes->v[i]];
      p /= mesh->v[axes->v[i]];
    }
    int64_t dev = 0;
    for (int i = 0; i < mesh->n; i++) dev = dev * mesh->v[i] + c[i];
    gr->peers[pos] = (int)dev;
    if (dev == rank) gr->me = (int)pos;
  }
  return NULL;
}

/* p + off, where an empty array's or block's p may be NULL */
static char *at(const void *p, size_t off) { return p ? (char *)p + off : NULL; }

static void group_free(group *gr) { ry__free(gr->peers, (size_t)gr->n * sizeof(int)); }

/* dst[i] = dst[i] op src[i] for i < count, in dtype t, rounded once. */
static void combine(ry_reduce_kind k, ry_dtype t, void *dst, const void *src, int64_t count) {
  /* the gradients' case: f32/f64 sums in their own type (one rounding,
   * the same bits as through double) */
  if (k == RY_SUM && t == RY_F32) {
    float *d = dst;
    const float *x = src;
    for (int64_t i = 0; i < count; i++) d[i] += x[i];
    return;
  }
  if (k == RY_SUM && t == RY_F64) {
    double *d = dst;
    const double *x = src;
    for (int64_t i = 0; i < count; i++) d[i] += x[i];
    return;
  }
  if (ry_dtype_is_float(t)) {
    for (int64_t i = 0; i < count; i++) {
      double a = ry__load_f64(t, dst, i), b = ry__load_f64(t, src, i), r;
      switch (k) {
      case RY_SUM: r = a + b; break;
      case RY_PROD: r = a * b; break;
      case RY_MAX: r = ryx_fmax(a, b); break;
      default: r = ryx_fmin(a, b); break;
      }
      ryi_store_f64(t, dst, i, r);
    }
    return;
  }
  for (int64_t i = 0; i < count; i++) {
    int64_t a = ry__load_i64(t, dst, i), b = ry__load_i64(t, src, i), r;
    switch (k) {
    case RY_SUM: r = (int64_t)((uint64_t)a + (uint64_t)b); break;
    case RY_PROD: r = (int64_t)((uint64_t)a * (uint64_t)b); break;
    case RY_MAX: r = ryi_ikey(t, a) > ryi_ikey(t, b) ? a : b; break;
    default: r = ryi_ikey(t, a) < ryi_ikey(t, b) ? a : b; break;
    }
    ry__store_i64(t, dst, i, r);
  }
}

/* out (bytes elements of dtype t) = block[0] op block[1] op ... in member
 * order; block[me] is this member's own contribution. */
static void combine_blocks(ry_reduce_kind k, ry_dtype t, void *out, void *const *block, int n, int64_t count) {
  size_t bytes = (size_t)count * ry_dtype_size(t);
  if (bytes) memcpy(out, block[0], bytes);
  for (int j = 1; j < n; j++) combine(k, t, out, block[j], count);
}

typedef struct xfer {
  void **send, **recv;
  size_t *sbytes, *rbytes;
  int n;
} xfer;

static ry_status xfer_new(int n, xfer *x) {
  x->n = n;
  x->send = ry__calloc((size_t)n, sizeof(void *));
  x->recv = ry__calloc((size_t)n, sizeof(void *));
  x->sbytes = ry__calloc((size_t)n, sizeof(size_t));
  x->rbytes = ry__calloc((size_t)n, sizeof(size_t));
  return x->send && x->recv && x->sbytes && x->rbytes ? NULL : ry__oom();
}
static void xfer_free(xfer *x) {
  ry__free(x->send, (size_t)x->n * sizeof(void *));
  ry__free(x->recv, (size_t)x->n * sizeof(void *));
  ry__free(x->sbytes, (size_t)x->n * sizeof(size_t));
  ry__free(x->rbytes, (size_t)x->n * sizeof(size_t));
}

static void split_at(const ry_shape *s, int64_t dim, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < s->rank; i++) {
    if (i < dim) *outer *= s->dims[i];
    if (i > dim) *inner *= s->dims[i];
  }
}

ry_status ryi_dist_all_reduce(const ry_node *n, const ry_array *x, ry_array *o) {
  group gr = {0};
  xfer xf = {0};
  ry_status s = find_group(n, &gr);
  if (s) return s;
  ry_dtype t = x->type.dtype;
  size_t es = ry_dtype_size(t);
  int64_t N = ry_shape_numel(x->type.shape), g = gr.n;
  char *tmp = NULL;
  size_t tmp_bytes = 0;
  int64_t lo = gr.me * N / g, cnt = (gr.me + 1) * N / g - lo;
  if (!(s = xfer_new(gr.n, &xf))) {
    /* phase 1: block j of x to member j; block me of every member here */
    tmp_bytes = (size_t)(cnt * g) * es;
    if (tmp_bytes && !(tmp = ry__malloc(tmp_bytes))) s = ry__oom();
    for (int j = 0; j < gr.n && !s; j++) {
      int64_t jl = j * N / g, jc = (j + 1) * N / g - jl;
      xf.send[j] = at(x->data, (size_t)jl * es);
      xf.sbytes[j] = (size_t)jc * es;
      xf.recv[j] = j == gr.me ? xf.send[j] : at(tmp, (size_t)(j * cnt) * es);
      xf.rbytes[j] = (size_t)cnt * es;
    }
    if (!s) s = rydist_exchange("all_reduce", gr.n, gr.peers, gr.me, xf.send, xf.sbytes, xf.recv, xf.rbytes);
    if (!s) combine_blocks(n->attrs.collective.kind, t, at(o->data, (size_t)lo * es), xf.recv, gr.n, cnt);
    /* phase 2: the combined block me to everyone, block j from member j */
    for (int j = 0; j < gr.n && !s; j++) {
      int64_t jl = j * N / g, jc = (j + 1) * N / g - jl;
      xf.send[j] = at(o->data, (size_t)lo * es);
      xf.sbytes[j] = (size_t)cnt * es;
      xf.recv[j] = at(o->data, (size_t)jl * es);
      xf.rbytes[j] = (size_t)jc * es;
    }
    if (!s) s = rydist_exchange("all_reduce", gr.n, gr.peers, gr.me, xf.send, xf.sbytes, xf.recv, xf.rbytes);
  }
  ry__free(tmp, tmp_bytes);
  xfer_free(&xf);
  group_free(&gr);
  return s;
}

ry_status ryi_dist_reduce_scatter(const ry_node *n, const ry_array *x, ry_array *o) {
  group gr = {0};
  xfer xf = {0};
  ry_status s = find_group(n, &gr);
  if (s) return s;
  ry_dtype t = x->type.dtype;
  size_t es = ry_dtype_size(t);
  int64_t outer, inner, d = x->type.shape.dims[n->attrs.collective.dim], g = gr.n;
  split_at(&x->type.shape, n->attrs.collective.dim, &outer, &inner);
  size_t row = (size_t)(d / g * inner) * es, blk = (size_t)outer * row; /* one member's block */
  char *buf = NULL;
  size_t buf_bytes = 2 * blk * (size_t)g;
  if (!(s = xfer_new(gr.n, &xf)) && buf_bytes && !(buf = ry__malloc(buf_bytes))) s = ry__oom();
  if (!s) {
    /* pack: block j = rows [j d/g, (j+1) d/g) of dim, for every outer index */
    char *pack = buf, *in = at(buf, blk * (size_t)g);
    for (int64_t j = 0; j < g; j++)
      for (int64_t a = 0; a < outer && row; a++)
        memcpy(pack + (size_t)j * blk + (size_t)a * row, (const char *)x->data + ((size_t)(a * g + j)) * row, row);
    for (int j = 0; j < gr.n; j++) {
      xf.send[j] = at(pack, (size_t)j * blk);
      xf.sbytes[j] = blk;
      xf.recv[j] = j == gr.me ? xf.send[j] : at(in, (size_t)j * blk);
      xf.rbytes[j] = blk;
    }
    s = rydist_exchange("reduce_scatter", gr.n, gr.peers, gr.me, xf.send, xf.sbytes, xf.recv, xf.rbytes);
    if (!s) combine_blocks(n->attrs.collective.kind, t, o->data, xf.recv, gr.n, ry_shape_numel(o->type.shape));
  }
  ry__free(buf, buf_bytes);
  xfer_free(&xf);
  group_free(&gr);
  return s;
}

ry_status ryi_dist_all_gather(const ry_node *n, const ry_array *x, ry_array *o) {
  group gr = {0};
  xfer xf = {0};
  ry_status s = find_group(n, &gr);
  if (s) return s;
  int64_t outer, inner, d = x->type.shape.dims[n->attrs.collective.dim];
  split_at(&x->type.shape, n->attrs.collective.dim, &outer, &inner);
  size_t row = (size_t)(d * inner) * ry_dtype_size(x->type.dtype), nb = x->nbytes;
  char *buf = NULL;
  size_t buf_bytes = nb * (size_t)gr.n;
  if (!(s = xfer_new(gr.n, &xf)) && buf_bytes && !(buf = ry__malloc(buf_bytes))) s = ry__oom();
  if (!s) {
    for (int j = 0; j < gr.n; j++) {
      xf.send[j] = x->data;
      xf.sbytes[j] = nb;
      xf.recv[j] = j == gr.me ? x->data : at(buf, (size_t)j * nb);
      xf.rbytes[j] = nb;
    }
    s = rydist_exchange("all_gather", gr.n, gr.peers, gr.me, xf.send, xf.sbytes, xf.recv, xf.rbytes);
    for (int64_t a = 0; !s && a < outer && row; a++)
      for (int c = 0; c < gr.n; c++)
        memcpy((char *)o->data + (size_t)(a * gr.n + c) * row, (const char *)xf.recv[c] + (size_t)a * row, row);
  }
  ry__free(buf, buf_bytes);
  xfer_free(&xf);
  group_free(&gr);
  return s;
}

ry_status ryi_dist_collective_broadcast(const ry_node *n, const ry_array *x, ry_array *o) {
  group gr = {0};
  xfer xf = {0};
  ry_status s = find_group(n, &gr);
  if (s) return s;
  int src = (int)n->attrs.collective.source;
  if (!(s = xfer_new(gr.n, &xf))) {
    bool me_src = gr.me == src;
    if (me_src && o->nbytes) memcpy(o->data, x->data, o->nbytes);
    for (int j = 0; j < gr.n; j++) {
      /* the source sends to every member; every other member hears only the source */
      xf.send[j] = o->data;
      xf.sbytes[j] = me_src ? o->nbytes : 0;
      xf.recv[j] = j == src ? o->data : NULL;
      xf.rbytes[j] = j == src ? o->nbytes : 0;
    }
    s = rydist_exchange("collective_broadcast", gr.n, gr.peers, gr.me, xf.send, xf.sbytes, xf.recv, xf.rbytes);
  }
  xfer_free(&xf);
  group_free(&gr);
  return s;
}
