/* Row kernels.
 *
 * Softmax, log-softmax, layer / RMS norm and their gradients reduce along
 * trailing axes and broadcast the results back over the same rows. Planned
 * as separate kernels they read the data once per reduction, recompute or
 * store the intermediates. A row kernel runs, for each row (rows split over
 * the pool), the reductions as passes over the row while it stays in cache,
 * then the elementwise outputs, with the per-row results in locals.
 *
 * Grouping (ryf_row_plan, after ryf_decide): kernel roots are visited in order. A
 * reduction whose reduced non-unit dims all follow its kept ones has a row
 * space, its kept non-unit dims ("rows"). A kernel root whose expression
 * reads a member of an open group joins it when it is a reduction over the
 * same rows, a value of the rows' shape (unit dims aside: a row scalar such
 * as a mean or 1/sum) or of the rows followed by more dims (full: outputs).
 * A step outside the group that reads a member seals the group (nothing
 * joins after it, so the group can run where its last member was) and
 * makes that member an output of the row kernel. Open groups over the same
 * rows that one value reads merge into one. A group of one member stays an
 * ordinary kernel. A member whose code cannot be generated in the row
 * kernel (a row value read at another row, a reshape that reorders a row's
 * elements) leaves the group when the plan is made again (ryf_row_step).
 *
 * Schedule (ryf_gen_row): a reduction's level is one more than the deepest row
 * scalar it reads, a row scalar's is that of the deepest it reads, a full
 * output's one more. Pass L evaluates the level-L reductions and full
 * outputs, those with the same loop shape in one loop; the row scalars of
 * level L follow it. An expensive expression (cost of a transcendental)
 * that several passes evaluate at the same elements is stored by the first
 * pass in a scratch row on the stack and read back by the others, so
 * softmax computes exp once. Full members read by other members are
 * recomputed from their expression (or come from scratch), never reloaded.
 * The first pass with a costly op asks for the next row's loads and stores
 * while it computes (row_note_streams).
 *
 * Reductions keep RY_LANES partial sums over the innermost loop in the
 * order ryf_gen_reduce uses, and a row is always computed whole by one thread:
 * results do not depend on the thread count. A float max / min first
 * keeps the plain larger (smaller) value with a NaN flag per lane, which
 * vectorizes without a long dependency chain, and redoes a row with the
 * exact step (NaN propagation, +0 above -0) only when the row holds a NaN
 * or its result is zero. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"




static int row_acc(kgen *k, int buf, ry_dtype dt, const int64_t *coef, bool store, int sc) {
  access *a = ryf_new_access(k, dt);
  if (!a) return 0;
  a->buf = buf;
  for (int d = 0; d < k->L; d++) a->coef[d] = coef[d];
  k->row->store[k->n_acc] = store;
  k->row->scl[k->n_acc] = sc;
  return k->n_acc++;
}

static void row_store(kgen *k, int acc, int temp, ry_dtype dt) {
  rowgen *rg = k->row;
  if (rg->n_st >= ROW_MAX_STORES) {
    k->fail = true;
    k->fail_why = "row kernel: too many stores";
    return;
  }
  rg->st[rg->n_st].acc = acc;
  rg->st[rg->n_st].temp = temp;
  rg->st[rg->n_st++].dt = dt;
}

/* m reads value v (shape s) at the row being computed, and only there */
static bool row_at_row(const rowgen *rg, const vmap *m, ry_shape s) {
  int q = 0;
  for (int e = 0; e < s.rank; e++) {
    if (s.dims[e] == 1) continue;
    if (m->src[e] < 0 || rg->rowdim[m->src[e]] != q || m->mul[e] != 1 || m->add[e] != 0) return false;
    q++;
  }
  return q == rg->G->rank;
}

/* m reads value v (shape s) at the loop's own element */
static bool row_identity(const kgen *k, const vmap *m, ry_shape s) {
  if (s.rank != k->L) return false;
  for (int d = 0; d < s.rank; d++) {
    if (s.dims[d] != k->loop[d]) return false;
    if (s.dims[d] != 1 && (m->src[d] != d || m->mul[d] != 1 || m->add[d] != 0)) return false;
  }
  return true;
}

/* row-major strides of the loop's inner (non-row) dims; returns their count */
static int64_t row_inner_strides(const kgen *k, const int8_t *rowdim, int64_t coef[RY_MAX_RANK]) {
  int64_t st = 1;
  for (int d = k->L - 1; d >= 0; d--) {
    coef[d] = 0;
    if (rowdim[d] >= 0 || k->loop[d] == 1) continue;
    coef[d] = st;
    st *= k->loop[d];
  }
  return st;
}

/* The ryf_emit hook inside a row kernel: members of the group are locals (row
 * scalars) or recomputed (full values); chosen expressions come from a
 * scratch row. False: ryf_emit v as usual. */
bool ryf_row_emit(kgen *k, int32_t v, const vmap *m, int *t) {
  rowgen *rg = k->row;
  planner *p = k->p;
  rowplan *rp = p->rows;
  const ry_graph *g = k->g;
  ry_type vt = ry_vtype(g, v);
  const ry_node *vn = ryf_def_of(g, v) >= 0 ? &g->nodes[ryf_def_of(g, v)] : NULL;
  /* a reshape that only adds or drops unit dims, over a member or another
   * such reshape, reads its operand at the same element */
  if (vn && vn->op == RY_OP_RESHAPE && (rp->grp[v] == rg->gi ? rp->role[v] == ROW_FULL : !p->mat[v])) {
    int32_t x = ry_node_operands(g, vn)[0];
    ry_shape xs = ry_vtype(g, x).shape;
    const ry_node *xn = ryf_def_of(g, x) >= 0 ? &g->nodes[ryf_def_of(g, x)] : NULL;
    bool via = rp->grp[x] == rg->gi || (!p->mat[x] && xn && xn->op == RY_OP_RESHAPE);
    vmap xm = {xs.rank, {0}, {0}, {0}, {0}};
    int e = 0;
    for (int d = 0; via && d < xs.rank; d++) {
      xm.src[d] = -1;
      if (xs.dims[d] == 1) continue;
      while (e < vt.shape.rank && vt.shape.dims[e] == 1) e++;
      if (e == vt.shape.rank || vt.shape.dims[e] != xs.dims[d]) via = false;
      else {
        xm.src[d] = m->src[e];
        xm.mul[d] = m->mul[e];
        xm.add[d] = m->add[e];
        xm.div[d] = m->div[e];
        e++;
      }
    }
    while (via && e < vt.shape.rank && vt.shape.dims[e] == 1) e++;
    if (via && e == vt.shape.rank) {
      *t = ryf_emit(k, x, &xm);
      return true;
    }
  }
  int32_t w = v;
  /* a reshape over a member reads the member */
  while (rp->grp[w] != rg->gi && !p->mat[w] && g->nodes[ryf_def_of(g, w)].op == RY_OP_RESHAPE)
    w = ry_node_operands(g, &g->nodes[ryf_def_of(g, w)])[0];
  if (rp->grp[w] == rg->gi) {
    if (rp->role[w] == ROW_FULL && w == v) {
      *t = ryf_emit_node(k, v, m);
      return true;
    }
    int8_t rd[RY_MAX_RANK];
    if (rp->role[w] == ROW_FULL || ryf_row_match(rg->G, vt.shape, rd) != ROW_SCALAR || !row_at_row(rg, m, vt.shape)) {
      k->fail = true;
      k->fail_why = "row kernel: a member read at another row or reshaped";
      *t = 0;
      return true;
    }
    if (!rg->done[w]) {
      k->fail = true;
      k->fail_why = "row kernel: a row value read before it is computed";
      *t = 0;
      return true;
    }
    *t = ryf_new_temp(k, vt.dtype, "rs%d", (int)w);
    return true;
  }
  if (p->mat[v] || p->cost[v] < 8 || !row_identity(k, m, vt.shape)) return false;
  int s = -1;
  for (int i = 0; i < rg->n_sc; i++)
    if (rg->sc[i].v == v) s = i;
  if (rg->trial) {
    if (s < 0 && rg->n_sc < ROW_MAX_SCRATCH) {
      s = rg->n_sc++;
      rg->sc[s].v = v;
      rg->sc[s].first = rg->pass;
      rg->sc[s].n_pass = 0;
      rg->sc[s].last_pass = -1;
    }
    if (s >= 0 && rg->sc[s].last_pass != rg->pass) {
      rg->sc[s].n_pass++;
      rg->sc[s].last_pass = rg->pass;
    }
    return false;
  }
  if (s < 0 || !rg->sc[s].use) return false;
  int64_t coef[RY_MAX_RANK];
  row_inner_strides(k, rg->rowdim, coef);
  if (rg->pass == rg->sc[s].first) {
    *t = ryf_emit_node(k, v, m);
    row_store(k, row_acc(k, -2 - s, vt.dtype, coef, true, s), *t, vt.dtype);
  } else {
    int a = row_acc(k, -2 - s, vt.dtype, coef, false, s);
    *t = ryf_new_temp(k, vt.dtype, "a%d", a);
  }
  return true;
}

static void row_kgen_init(rowgen *rg, kgen *k, planner *p, ry_shape s, const int8_t *rowdim) {
  ry__buf_free(&k->body);
  memset(k, 0, sizeof *k);
  k->p = p;
  k->g = p->g;
  k->root = -1;
  k->row = rg;
  k->L = s.rank;
  for (int d = 0; d < s.rank; d++) k->loop[d] = s.dims[d];
  memcpy(k->bufs, rg->bufs, sizeof rg->bufs);
  k->n_bufs = rg->n_bufs;
  rg->rowdim = rowdim;
  rg->n_st = 0;
  memset(rg->store, 0, sizeof rg->store);
}

static void row_kgen_done(rowgen *rg, kgen *k) {
  /* row_loads prints neither division terms nor clamps: a member under a
   * pad / concatenate leaves the group */
  for (int a = 0; a < k->n_acc; a++)
    if (k->acc[a].n_nl > 0 || k->acc[a].clamp > 0) {
      k->fail = true;
      k->fail_why = "row kernel: a pad / concatenate (clamped or divided index)";
    }
  /* the kernel computes its members: it never loads one (a reshape of a
   * full member would) */
  for (int i = rg->n_bufs; i < k->n_bufs; i++)
    if (k->p->rows->grp[k->bufs[i]] == rg->gi) {
      k->fail = true;
      k->fail_why = "row kernel: a member read from memory";
    }
  memcpy(rg->bufs, k->bufs, sizeof rg->bufs);
  rg->n_bufs = k->n_bufs;
}

static int out_slot(const rowgen *rg, int32_t v) {
  for (int i = 0; i < rg->n_out; i++)
    if (rg->bufs[i] == v) return i;
  return -1;
}

/* base + row part + inner loops part of access a */
static void row_offset(ry__buf *b, const kgen *k, const rowgen *rg, int a, const loops *lp) {
  const access *x = &k->acc[a];
  ry__buf_printf(b, "%" PRId64, x->base);
  for (int d = 0; d < k->L; d++)
    if (rg->rowdim[d] >= 0 && x->coef[d]) ry__buf_printf(b, " + r%d * %" PRId64, rg->rowdim[d], x->coef[d]);
  for (int j = 0; lp && j < lp->n; j++)
    if (lp->coef[a][j]) ry__buf_printf(b, " + j%d * %" PRId64, j, lp->coef[a][j]);
}

/* a load of the lanes loop staged as int32 lanes (ryf_lane_staged; a
 * decode step's masked softmax ran 4x slower unstaged) */
static bool row_staged(const kgen *k, const rowgen *rg, int a) { return !rg->store[a] && ryf_lane_staged(&k->acc[a]); }

static void row_stage(ry__buf *b, const kgen *k, const rowgen *rg, const loops *lp) {
  for (int a = 0; a < k->n_acc; a++) {
    if (!row_staged(k, rg, a)) continue;
    ry__buf_printf(b, "     int32_t w%d[RY_LANES];\n     for (int l = 0; l < RY_LANES; l++) {\n", a);
    ry__buf_printf(b, "      const int64_t j%d = jv + l;\n      w%d[l] = p%d[", lp->n - 1, a, k->acc[a].buf);
    row_offset(b, k, rg, a, lp);
    ry__buf_printf(b, "];\n     }\n");
  }
}

/* staged: in the lanes loop after row_stage */
static void row_loads(ry__buf *b, const kgen *k, const rowgen *rg, const loops *lp, bool staged) {
  for (int a = 0; a < k->n_acc; a++) {
    const access *x = &k->acc[a];
    if (rg->store[a]) continue;
    if (staged && row_staged(k, rg, a)) {
      ry__buf_printf(b, "      const %s a%d = (%s)w%d[l];\n", ryf_ctype(x->dt), a, ryf_ctype(x->dt), a);
      continue;
    }
    if (x->buf == -1) {
      ry__buf_printf(b, "      const int64_t a%d = ", a);
      row_offset(b, k, rg, a, lp);
      ry__buf_printf(b, ";\n");
      continue;
    }
    ry__buf off = {0}, ref = {0};
    row_offset(&off, k, rg, a, lp);
    if (x->buf <= -2) ry__buf_printf(&ref, "sc%d[", rg->scl[a]);
    else ry__buf_printf(&ref, "p%d[", x->buf);
    ry__buf_append(&ref, &off);
    ry__buf_printf(&ref, "]");
    ry__buf_free(&off);
    ry__buf_printf(b, "      const %s a%d = ", ryf_ctype(x->dt), a);
    if (ref.oom) b->oom = true; /* never a truncated or missing offset */
    else ry__buf_printf(b, x->buf <= -2 ? "%s" : ryf_load_fmt(x->dt), ref.s);
    ry__buf_free(&ref);
    ry__buf_printf(b, ";\n");
  }
}

static void row_stores(ry__buf *b, const kgen *k, const rowgen *rg, const loops *lp) {
  for (int i = 0; i < rg->n_st; i++) {
    int a = rg->st[i].acc;
    char tv[32];
    snprintf(tv, sizeof tv, "t%d", rg->st[i].temp);
    if (k->acc[a].buf <= -2) ry__buf_printf(b, "      sc%d[", rg->scl[a]);
    else ry__buf_printf(b, "      p%d[", k->acc[a].buf);
    row_offset(b, k, rg, a, lp);
    ry__buf_printf(b, "] = ");
    ry__buf_printf(b, k->acc[a].buf <= -2 ? "%s" : ryf_store_fmt(rg->st[i].dt), tv);
    ry__buf_printf(b, ";\n");
  }
}

/* The trial generation notes the streams a row reads and writes (each
 * buffer's row one contiguous run along a pass's single loop, and a
 * different run at each row) and the first pass with a costly op
 * (ryf_ew_costly: softmax's exp) that reduces along such a loop: that pass
 * asks for the next row's streams, a cache line of each per RY_LANES
 * elements, so memory brings them in while the row computes. A row kernel
 * otherwise touches its row's memory only in its first pass (the loads)
 * and its last (the stores) and waits for each. On an AMD EPYC (Zen 3),
 * softmax 4096x1024, 2 threads: 3.9 -> 2.1-2.4 ms; the writes asked for as
 * such (the stores' lines are read first otherwise) were half of it; the
 * next row asked for all at once at the row's start was no faster than
 * none. */
static void row_note_streams(rowgen *rg, const kgen *k, const planner *p, const loops *lp, const int32_t *mem, int n_mem) {
  if (lp->n != 1) return;
  bool red = false;
  for (int i = 0; i < n_mem; i++) red |= p->rows->role[mem[i]] == ROW_RED;
  if (red && k->n_costly && rg->pf_pass < 0) rg->pf_pass = rg->pass;
  for (int a = 0; a < k->n_acc; a++) {
    const access *x = &k->acc[a];
    if (x->buf < 0 || lp->coef[a][0] != 1 || x->n_nl || x->clamp || row_staged(k, rg, a)) continue;
    int64_t coef[RY_MAX_RANK] = {0};
    bool moves = false;
    for (int d = 0; d < k->L; d++)
      if (rg->rowdim[d] >= 0) {
        coef[rg->rowdim[d]] += x->coef[d];
        moves |= x->coef[d] != 0;
      }
    if (!moves) continue; /* the same elements at every row: in cache */
    int f = 0;
    while (f < rg->n_pf && !(rg->pf[f].buf == x->buf && rg->pf[f].base == x->base && rg->pf[f].len == lp->size[0] &&
                             !memcmp(rg->pf[f].coef, coef, sizeof coef)))
      f++;
    if (f == rg->n_pf) {
      if (f == ROW_MAX_PF) continue;
      rg->n_pf++;
      rg->pf[f].buf = x->buf;
      rg->pf[f].store = false;
      rg->pf[f].size = ry_dtype_size(x->dt);
      rg->pf[f].base = x->base;
      rg->pf[f].len = lp->size[0];
      memcpy(rg->pf[f].coef, coef, sizeof coef);
    }
    rg->pf[f].store |= rg->store[a];
  }
}

/* in the asking pass's loop of RY_LANES elements at jv: the next row's
   streams of its length */
static void row_prefetch(ry__buf *o, const rowgen *rg, const loops *lp) {
  for (int f = 0; f < rg->n_pf; f++) {
    if (rg->pf[f].len != lp->size[0]) continue;
    ry__buf_printf(o, "     RY_PREFETCH(p%d + (%" PRId64, rg->pf[f].buf, rg->pf[f].base);
    for (int q = 0; q < rg->G->rank; q++)
      if (rg->pf[f].coef[q]) ry__buf_printf(o, " + nr%d * %" PRId64, q, rg->pf[f].coef[q]);
    ry__buf_printf(o, " + jv), 0, RY_LANES * %zu, %d);\n", rg->pf[f].size, rg->pf[f].store ? 1 : 0);
  }
}

/* A float max / min with a fast first try: lanes keep the plain larger
 * (smaller) value and a NaN flag; a row with a NaN or a zero result (where
 * -0 and +0 differ) is reduced again with the exact step. */
static bool row_fast_minmax(const ry_graph *g, int32_t v) {
  ry_reduce_kind kind = g->nodes[ryf_def_of(g, v)].attrs.reduce.kind;
  return kind == RY_MAX || kind == RY_MIN;
}

/* The loops of a pass over the row. exact < 0: every member of mem, with
 * the stores; exact = i: member i alone with the exact step (the second
 * try of a fast max / min). */
static void row_loops(rowgen *rg, kgen *k, planner *p, ry__buf *o, const loops *lp, const int32_t *mem, int n_mem,
                      const int *tv, int exact) {
  const ry_graph *g = p->g;
  const char *body = k->body.s ? k->body.s : "";
  if (k->body.oom) o->oom = true;
  bool any_red = false;
  for (int i = 0; i < n_mem; i++) {
    if (p->rows->role[mem[i]] != ROW_RED || (exact >= 0 && i != exact)) continue;
    any_red = true;
    ry_dtype t = ry_vtype(g, mem[i]).dtype;
    ry_reduce_kind kind = g->nodes[ryf_def_of(g, mem[i])].attrs.reduce.kind;
    ry__buf_printf(o, "    %s acc%d[RY_LANES];\n    for (int l = 0; l < RY_LANES; l++) acc%d[l] = (%s)%s;\n", ryf_ctype(t), i,
               i, ryf_ctype(t), ryf_red_identity(kind, t));
    if (exact < 0 && row_fast_minmax(g, mem[i]))
      ry__buf_printf(o, "    int nan%d[RY_LANES];\n    for (int l = 0; l < RY_LANES; l++) nan%d[l] = 0;\n", i, i);
  }
  ry__buf_printf(o, "    {\n");
  for (int j = 0; j + 1 < lp->n; j++)
    ry__buf_printf(o, "    for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
  /* the innermost loop: RY_LANES at a time when reducing, then the tail.
   * `unroll 1` keeps gcc vectorizing the lanes (not the outer loop, which
   * turns each lane into an in-order scalar reduction) */
  for (int part = 0; part < 2; part++) {
    const char *acc_l = "[0]";
    if (lp->n == 0) {
      if (part) break;
      ry__buf_printf(o, "    {\n     {\n");
    } else if (!any_red) {
      if (part) break;
      int j = lp->n - 1;
      ry__buf_printf(o, "    for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n     {\n", j, j, lp->size[j], j);
    } else if (part == 0) {
      ry__buf_printf(o, "    int64_t jv = 0;\n    for (; jv + RY_LANES <= %" PRId64 "; jv += RY_LANES) {\n", lp->size[lp->n - 1]);
      if (!rg->trial && exact < 0 && rg->pass == rg->pf_pass) row_prefetch(o, rg, lp);
      row_stage(o, k, rg, lp);
      ry__buf_printf(o, "     _Pragma(\"GCC unroll 1\")\n     for (int l = 0; l < RY_LANES; l++) {\n      const int64_t j%d = jv + l;\n",
                 lp->n - 1);
      acc_l = "[l]";
    } else {
      ry__buf_printf(o, "    for (; jv < %" PRId64 "; jv++) {\n     {\n      const int64_t j%d = jv;\n", lp->size[lp->n - 1],
                 lp->n - 1);
    }
    row_loads(o, k, rg, lp, any_red && part == 0 && lp->n > 0);
    ry__buf_printf(o, "%s", body);
    for (int i = 0; i < n_mem; i++) {
      if (p->rows->role[mem[i]] != ROW_RED || (exact >= 0 && i != exact)) continue;
      ry_dtype t = ry_vtype(g, mem[i]).dtype;
      ry_reduce_kind kind = g->nodes[ryf_def_of(g, mem[i])].attrs.reduce.kind;
      char acc[32], val[32];
      snprintf(acc, sizeof acc, "acc%d%s", i, acc_l);
      snprintf(val, sizeof val, "t%d", tv[i]);
      if (exact < 0 && row_fast_minmax(g, mem[i])) {
        ry__buf_printf(o, "      %s = %s %s %s ? %s : %s;\n      nan%d%s |= %s != %s;\n", acc, acc, kind == RY_MAX ? ">" : "<",
                   val, acc, val, i, acc_l, val, val);
        continue;
      }
      ry__buf_printf(o, "      ");
      ryf_red_step(o, kind, t, acc, val);
      ry__buf_printf(o, "\n");
    }
    if (exact < 0) row_stores(o, k, rg, lp);
    ry__buf_printf(o, "     }\n    }\n");
  }
  for (int j = 0; j + 1 < lp->n; j++) ry__buf_printf(o, "    }\n");
  ry__buf_printf(o, "    }\n");
  for (int i = 0; i < n_mem; i++) {
    int32_t v = mem[i];
    if (p->rows->role[v] != ROW_RED || (exact >= 0 && i != exact)) continue;
    ry_dtype t = ry_vtype(g, v).dtype;
    ry_reduce_kind kind = g->nodes[ryf_def_of(g, v)].attrs.reduce.kind;
    char rv[32], al[32];
    snprintf(rv, sizeof rv, "rs%d", (int)v);
    snprintf(al, sizeof al, "acc%d[l]", i);
    ry__buf_printf(o, "    rs%d = acc%d[0];\n    for (int l = 1; l < RY_LANES; l++) { ", (int)v, i);
    ryf_red_step(o, kind, t, rv, al);
    ry__buf_printf(o, " }\n");
    if (exact < 0 && row_fast_minmax(g, v)) {
      ry__buf_printf(o, "    int nany%d = 0;\n    for (int l = 0; l < RY_LANES; l++) nany%d |= nan%d[l];\n", i, i, i);
      ry__buf_printf(o, "    if (nany%d || rs%d == 0) {\n", i, (int)v);
      row_loops(rg, k, p, o, lp, mem, n_mem, tv, i);
      ry__buf_printf(o, "    }\n");
    }
    rg->done[v] = 1;
  }
}

/* One pass over the row: the reductions among mem (RY_LANES partial sums
 * each) and the full outputs, over loop shape s. */
static bool row_pass(rowgen *rg, kgen *k, planner *p, ry__buf *o, const int32_t *mem, int n_mem, ry_shape s,
                     const int8_t *rowdim) {
  const ry_graph *g = p->g;
  row_kgen_init(rg, k, p, s, rowdim);
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  int tv[ROW_MAX_STORES];
  for (int i = 0; i < n_mem && !k->fail; i++) {
    int32_t v = mem[i];
    if (p->rows->role[v] == ROW_RED) {
      tv[i] = ryf_emit(k, ry_node_operands(g, &g->nodes[ryf_def_of(g, v)])[0], &id);
    } else {
      tv[i] = ryf_emit(k, v, &id);
      int64_t st[RY_MAX_RANK];
      ryf_rowmajor(s, st);
      row_store(k, row_acc(k, out_slot(rg, v), ry_vtype(g, v).dtype, st, true, -1), tv[i], ry_vtype(g, v).dtype);
    }
    row_kgen_done(rg, k);
    if (k->fail && rg->fail_v < 0) rg->fail_v = v;
  }
  row_kgen_done(rg, k);
  if (k->fail || k->body.oom) return false;
  int order[RY_MAX_RANK], no = 0;
  for (int d = 0; d < k->L; d++)
    if (rowdim[d] < 0) order[no++] = d;
  int64_t zero[RY_MAX_RANK] = {0};
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  ryf_coalesce(k, order, no, NULL, zero, lp);
  if (rg->trial) row_note_streams(rg, k, p, lp, mem, n_mem);
  ry__buf_printf(o, "    { /* pass %d */\n", rg->pass);
  row_loops(rg, k, p, o, lp, mem, n_mem, tv, -1);
  ry__buf_printf(o, "    }\n");
  ry__free(lp, sizeof *lp);
  return true;
}

/* store row scalar v (a local) to its output buffer */
static void row_store_scalar(rowgen *rg, const ry_graph *g, ry__buf *o, int32_t v) {
  int slot = out_slot(rg, v);
  if (slot < 0) return;
  ry_shape s = ry_vtype(g, v).shape;
  int64_t st[RY_MAX_RANK];
  ryf_rowmajor(s, st);
  ry__buf_printf(o, "    p%d[0", slot);
  for (int d = 0, q = 0; d < s.rank; d++)
    if (s.dims[d] != 1) ry__buf_printf(o, " + r%d * %" PRId64, q++, st[d]);
  char rv[32];
  snprintf(rv, sizeof rv, "rs%d", (int)v);
  ry__buf_printf(o, "] = ");
  ry__buf_printf(o, ryf_store_fmt(ry_vtype(g, v).dtype), rv);
  ry__buf_printf(o, ";\n");
}

/* a row scalar computed from locals and buffers at the row */
static bool row_scalar(rowgen *rg, kgen *k, planner *p, ry__buf *o, int32_t v) {
  ry_shape s = ry_vtype(p->g, v).shape;
  int8_t rowdim[RY_MAX_RANK];
  ryf_row_match(rg->G, s, rowdim);
  row_kgen_init(rg, k, p, s, rowdim);
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  const ry_graph *g = p->g;
  const ry_node *n = &g->nodes[ryf_def_of(g, v)];
  int32_t w = ry_node_operands(g, n)[0];
  while (n->op == RY_OP_RESHAPE && p->rows->grp[w] != rg->gi && !p->mat[w] && g->nodes[ryf_def_of(g, w)].op == RY_OP_RESHAPE)
    w = ry_node_operands(g, &g->nodes[ryf_def_of(g, w)])[0];
  if (n->op == RY_OP_RESHAPE && p->rows->grp[w] == rg->gi && p->rows->role[w] != ROW_FULL) {
    /* a reshape between two row values keeps the order: a copy */
    row_kgen_done(rg, k);
    if (!rg->done[w]) {
      k->fail = true;
      k->fail_why = "row kernel: a row value read before it is computed";
      return false;
    }
    ry__buf_printf(o, "    rs%d = rs%d;\n", (int)v, (int)w);
    rg->done[v] = 1;
    return true;
  }
  int t = ryf_emit_node(k, v, &id);
  row_kgen_done(rg, k);
  if (k->fail && rg->fail_v < 0) rg->fail_v = v;
  if (k->fail || k->body.oom) return false;
  ry__buf_printf(o, "    {\n");
  row_loads(o, k, rg, NULL, false);
  ry__buf_append(o, &k->body);
  ry__buf_printf(o, "      rs%d = t%d;\n    }\n", (int)v, t);
  rg->done[v] = 1;
  return true;
}

/* The row kernel of group gi as function ryk_<idx>: its text in *out, the
 * buffers it takes (outputs first) in rg. */
static bool gen_row_text(rowgen *rg, kgen *k, planner *p, int idx, const int32_t *lev, ry__buf *out, int *n_passes) {
  const ry_graph *g = p->g;
  const ry_region *body = &g->regions[0];
  const rowgroup *G = rg->G;
  rowplan *rp = p->rows;
  ry__buf pb = {0};
  memset(rg->done, 0, (size_t)g->n_values + 1);
  rg->n_bufs = rg->n_out;
  int maxlev = 0;
  for (int32_t kk = 0; kk < body->nodes.n; kk++) {
    const ry_node *n = &g->nodes[body->nodes.v[kk]];
    int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
    if (r >= 0 && rp->grp[r] == rg->gi && lev[r] > maxlev) maxlev = lev[r];
  }
  rg->pass = 0;
  bool ok = true;
  int32_t *mem = ry__malloc(((size_t)body->nodes.n + 1) * sizeof(int32_t));
  bool *taken = ry__calloc((size_t)g->n_values + 1, sizeof(bool));
  if (!mem || !taken) ok = false;
  for (int L = 0; ok && L <= maxlev; L++) {
    /* pass L: reductions and full outputs of level L, one loop per shape */
    for (int32_t kk = 0; ok && L > 0 && kk < body->nodes.n; kk++) {
      const ry_node *n = &g->nodes[body->nodes.v[kk]];
      int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
      if (r < 0 || rp->grp[r] != rg->gi || lev[r] != L || taken[r]) continue;
      int role = rp->role[r];
      if (role == ROW_SCALAR || (role == ROW_FULL && !rp->out[r])) continue;
      ry_shape s = role == ROW_RED ? ry_vtype(g, ry_node_operands(g, n)[0]).shape : ry_vtype(g, r).shape;
      int nm = 0;
      for (int32_t jj = kk; jj < body->nodes.n && nm < ROW_MAX_STORES; jj++) {
        const ry_node *m = &g->nodes[body->nodes.v[jj]];
        int32_t u = m->n_results ? ry_node_results(g, m)[0] : -1;
        if (u < 0 || rp->grp[u] != rg->gi || lev[u] != L || taken[u]) continue;
        int ro = rp->role[u];
        if (ro == ROW_SCALAR || (ro == ROW_FULL && !rp->out[u])) continue;
        ry_shape su = ro == ROW_RED ? ry_vtype(g, ry_node_operands(g, m)[0]).shape : ry_vtype(g, u).shape;
        if (!ry_shape_equal(su, s)) continue;
        mem[nm++] = u;
        taken[u] = true;
      }
      int8_t rowdim[RY_MAX_RANK];
      ryf_row_match(G, s, rowdim);
      ok = row_pass(rg, k, p, &pb, mem, nm, s, rowdim);
      rg->pass++;
    }
    for (int32_t kk = 0; ok && kk < body->nodes.n; kk++) {
      const ry_node *n = &g->nodes[body->nodes.v[kk]];
      int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
      if (r >= 0 && rp->grp[r] == rg->gi && lev[r] == L && rp->role[r] == ROW_SCALAR) ok = row_scalar(rg, k, p, &pb, r);
    }
  }
  *n_passes = rg->pass;
  if (ok && !pb.oom) {
    ry__buf_printf(out, "void ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", idx);
    for (int i = 0; i < rg->n_bufs; i++) {
      ry_dtype t = ry_vtype(g, rg->bufs[i]).dtype;
      const char *c = i >= rg->n_out ? "const " : "";
      ry__buf_printf(out, "  %s%s *restrict p%d = (%s%s *)b[%d];\n", c, ryf_stype(t), i, c, ryf_stype(t), i);
    }
    for (int i = 0; i < rg->n_sc; i++)
      if (rg->sc[i].use) ry__buf_printf(out, "  %s sc%d[%" PRId64 "];\n", ryf_ctype(ry_vtype(g, rg->sc[i].v).dtype), i, rg->sc[i].len);
    ry__buf_printf(out, "  for (int64_t i = lo; i < hi; i++) {\n");
    int64_t st = G->rows;
    for (int q = 0; q < G->rank; q++) {
      st /= G->dims[q];
      ry__buf_printf(out, "    const int64_t r%d = i / %" PRId64 " %% %" PRId64 ";\n", q, st, G->dims[q]);
      if (!rg->trial && rg->pf_pass >= 0 && rg->n_pf) /* the next row (past the last: the first) */
        ry__buf_printf(out, "    const int64_t nr%d = (i + 1) / %" PRId64 " %% %" PRId64 ";\n", q, st, G->dims[q]);
    }
    for (int32_t v = 0; v < g->n_values; v++)
      if (rp->grp[v] == rg->gi && rp->role[v] != ROW_FULL)
        ry__buf_printf(out, "    %s rs%d;\n", ryf_ctype(ry_vtype(g, v).dtype), (int)v);
    ry__buf_append(out, &pb);
    for (int32_t v = 0; v < g->n_values; v++)
      if (rp->grp[v] == rg->gi && rp->role[v] != ROW_FULL) row_store_scalar(rg, g, out, v);
    ry__buf_printf(out, "  }\n}\n\n");
  }
  if (pb.oom || out->oom) { /* out of memory writing the passes: report that, not a codegen failure to re-plan around */
    ok = false;
    k->fail = false;
  }
  ry__buf_free(&pb);
  ry__free(mem, ((size_t)body->nodes.n + 1) * sizeof(int32_t));
  ry__free(taken, ((size_t)g->n_values + 1) * sizeof(bool));
  return ok;
}

/* Generate the row kernel of group gi: text, buffers (outputs first) and
 * the numbers for the step and the report. */
bool ryf_gen_row(planner *p, kgen *k, int gi, int idx, ry__buf *out, rowgen *rg, int *n_passes, int *n_scratch) {
  const ry_graph *g = p->g;
  rowplan *rp = p->rows;
  const ry_region *body = &g->regions[0];
  memset(rg, 0, sizeof *rg);
  rg->fail_v = -1;
  rg->pf_pass = -1;
  rg->gi = gi;
  rg->G = &rp->groups[gi];
  size_t nv = (size_t)g->n_values + 1;
  rg->done = ry__calloc(nv, 1);
  int32_t *lev = ry__calloc(nv, sizeof(int32_t));
  bool ok = rg->done && lev;
  /* outputs, in node order */
  for (int32_t v = 0; ok && v < g->n_values; v++)
    if (rp->grp[v] == gi && rp->out[v]) {
      if (rg->n_out >= MAX_ACC / 2) {
        ok = false;
        k->fail = true;
        k->fail_why = "row kernel: too many outputs";
      } else {
        rg->bufs[rg->n_out++] = v;
      }
    }
  /* levels */
  for (int32_t kk = 0; ok && kk < body->nodes.n; kk++) {
    const ry_node *n = &g->nodes[body->nodes.v[kk]];
    int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
    if (r < 0 || rp->grp[r] != gi) continue;
    ryf_row_leaves(p, n, true, gi);
    if (rp->oom) ok = false;
    int dep = 0;
    for (int i = 0; i < rp->leaf.n; i++) {
      int32_t x = rp->leaf.v[i];
      if (rp->grp[x] == gi && rp->role[x] != ROW_FULL && lev[x] > dep) dep = lev[x];
    }
    lev[r] = rp->role[r] == ROW_SCALAR ? dep : dep + 1;
  }
  rg->trial = true;
  ry__buf tb = {0};
  ok = ok && gen_row_text(rg, k, p, idx, lev, &tb, n_passes);
  /* scratch rows for the expressions several passes evaluate */
  *n_scratch = 0;
  int64_t bytes = 0;
  for (int i = 0; ok && i < rg->n_sc; i++) {
    ry_type t = ry_vtype(g, rg->sc[i].v);
    int8_t rowdim[RY_MAX_RANK];
    if (ryf_row_match(rg->G, t.shape, rowdim) != ROW_FULL) continue;
    int64_t len = 1;
    for (int d = 0; d < t.shape.rank; d++)
      if (rowdim[d] < 0) len *= t.shape.dims[d];
    int64_t sz = len * (int64_t)ry_dtype_size(t.dtype);
    if (rg->sc[i].n_pass < 2 || bytes + sz > ROW_SCRATCH_MAX || (t.dtype != RY_F32 && t.dtype != RY_F64)) continue;
    rg->sc[i].use = true;
    rg->sc[i].len = len;
    bytes += sz;
    (*n_scratch)++;
  }
  if (ok && (*n_scratch || (rg->pf_pass >= 0 && rg->n_pf))) {
    rg->trial = false;
    ok = gen_row_text(rg, k, p, idx, lev, out, n_passes);
  } else if (ok) {
    ry__buf_append(out, &tb);
  }
  ry__buf_free(&tb);
  ry__free(rg->done, nv);
  rg->done = NULL;
  ry__free(lev, nv * sizeof(int32_t));
  return ok && !out->oom;
}
