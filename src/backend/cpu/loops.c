/* Loop nests: an elementwise or reduction kernel as a C function over
 * coalesced loops, the outer loop split by the thread pool. */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"

const char *ryf_load_fmt(ry_dtype t) {
  switch (t) {
  case RY_F16: return "ry_h2f(%s)";
  case RY_BF16: return "ry_b2f(%s)";
  default: return "%s";
  }
}


void ryf_coalesce(kgen *k, const int *order, int n_order, const bool *is_red, const int64_t *out_coef,
                     loops *lp) {
  lp->n = 0;
  for (int d = 0; d < RY_MAX_RANK; d++) lp->of[d] = -1;
  for (int i = 0; i < n_order; i++) {
    int d = order[i];
    bool keep0 = k->keep0 && d == 0;
    if (k->loop[d] == 1 && !keep0) continue;
    int j = lp->n++;
    lp->of[d] = (int8_t)j;
    lp->keep[j] = k->nl_dim[d] || keep0;
    lp->size[j] = k->loop[d];
    lp->red[j] = is_red ? is_red[d] : false;
    for (int a = 0; a < k->n_acc; a++) lp->coef[a][j] = k->acc[a].coef[d];
    lp->coef[k->n_acc][j] = out_coef[d];
  }
  /* merge j-1 and j when every access allows it */
  for (int j = lp->n - 1; j >= 1; j--) {
    bool ok = lp->red[j] == lp->red[j - 1] && !lp->keep[j] && !lp->keep[j - 1];
    for (int a = 0; ok && a <= k->n_acc; a++) ok = lp->coef[a][j - 1] == lp->coef[a][j] * lp->size[j];
    if (!ok) continue;
    lp->size[j - 1] *= lp->size[j];
    for (int a = 0; a <= k->n_acc; a++) lp->coef[a][j - 1] = lp->coef[a][j];
    for (int d = 0; d < RY_MAX_RANK; d++)
      if (lp->of[d] >= j) lp->of[d]--;
    for (int i = j; i + 1 < lp->n; i++) {
      lp->size[i] = lp->size[i + 1];
      lp->red[i] = lp->red[i + 1];
      lp->keep[i] = lp->keep[i + 1];
      for (int a = 0; a <= k->n_acc; a++) lp->coef[a][i] = lp->coef[a][i + 1];
    }
    lp->n--;
  }
}

static void print_offset(ry__buf *b, int64_t base, const int64_t *coef, int n) {
  ry__buf_printf(b, "%" PRId64, base);
  for (int j = 0; j < n; j++)
    if (coef[j]) ry__buf_printf(b, " + j%d * %" PRId64, j, coef[j]);
}

/* the terms of an access that divide (interior padding) */
static void print_nl(ry__buf *b, const access *x, const loops *lp) {
  for (int i = 0; i < x->n_nl; i++) {
    const nlterm *t = &x->nl[i];
    int j = lp->of[t->src];
    if (j >= 0)
      ry__buf_printf(b, " + %" PRId64 " * ((%" PRId64 " * j%d + %" PRId64 ") / %" PRId64 ")", t->stride, t->mul, j, t->add, t->div);
    else ry__buf_printf(b, " + %" PRId64 " * (%" PRId64 " / %" PRId64 ")", t->stride, t->add, t->div);
  }
}

/* A one-byte load (a bool mask) in a reduction's lanes loop: gcc sizes a
 * loop's vectors by its narrowest type, RY_LANES bytes are no vector, and
 * the loop stayed scalar; such loads are staged as int32 lanes by a loop of
 * their own first (here and in row kernels, rowkern.c). */
bool ryf_lane_staged(const access *x) { return x->buf >= 0 && ry_dtype_size(x->dt) == 1; }

enum { LOADS_ALL, LOADS_STAGE, LOADS_LANES };

/* LOADS_STAGE: only the one-byte loads, into w<a>[l]; LOADS_LANES: every
 * load, the one-byte ones from their stage */
static void print_loads_as(kgen *k, ry__buf *b, const loops *lp, int mode) {
  for (int a = 0; a < k->n_acc; a++) {
    const access *x = &k->acc[a];
    bool st = mode != LOADS_ALL && ryf_lane_staged(x);
    if (mode == LOADS_STAGE && !st) continue;
    if (mode == LOADS_LANES && st) {
      ry__buf_printf(b, "      const %s a%d = (%s)w%d[l];\n", ryf_ctype(x->dt), a, ryf_ctype(x->dt), a);
      continue;
    }
    if (x->buf < 0) {
      ry__buf_printf(b, "      const int64_t a%d = ", a);
      print_offset(b, x->base, lp->coef[a], lp->n);
      print_nl(b, x, lp);
      ry__buf_printf(b, ";\n");
      continue;
    }
    char ref[64];
    snprintf(ref, sizeof ref, "p%d[o%d]", x->buf, a);
    ry__buf_printf(b, "      const int64_t o%d%s = ", a, x->clamp > 0 ? "_" : "");
    print_offset(b, x->base, lp->coef[a], lp->n);
    print_nl(b, x, lp);
    if (x->clamp > 0)
      ry__buf_printf(b, ";\n      const int64_t o%d = o%d_ < 0 ? 0 : o%d_ >= %" PRId64 " ? %" PRId64 " : o%d_", a, a, a, x->clamp,
                 x->clamp - 1, a);
    if (mode == LOADS_STAGE) {
      ry__buf_printf(b, ";\n      w%d[l] = %s;\n", a, ref);
      continue;
    }
    ry__buf_printf(b, ";\n      const %s a%d = ", ryf_ctype(x->dt), a);
    ry__buf_printf(b, ryf_load_fmt(x->dt), ref);
    ry__buf_printf(b, ";\n");
  }
}

static void print_loads(kgen *k, ry__buf *b, const loops *lp) { print_loads_as(k, b, lp, LOADS_ALL); }

/* inplace > 0: slot `inplace` is written (it replaces the output p0, which
 * is not declared), so the pointer is not const and there is no aliasing.
 * any_alias (ryk_<kernel>_ipm): the outputs and the slots an output may take
 * over are not restrict, for they may share buffers. */
static void print_ptrs_as(kgen *k, ry__buf *b, int inplace, bool any_alias) {
  int n_out = 1 + k->n_extra;
  for (int i = inplace ? 1 : 0; i < k->n_bufs; i++) {
    ry_dtype t = ry_vtype(k->g, k->bufs[i]).dtype;
    const char *c = i >= n_out && i != inplace ? "const " : "";
    bool shared = false;
    for (int v = 0; any_alias && v < k->n_ipm; v++) shared |= k->ipm_slot[v] == i;
    const char *r = any_alias && (i < n_out || shared) ? "" : "restrict ";
    ry__buf_printf(b, "  %s%s *%sp%d = (%s%s *)b[%d];\n", c, ryf_stype(t), r, i, c, ryf_stype(t), i);
  }
}

static void print_ptrs(kgen *k, ry__buf *b, int inplace) { print_ptrs_as(k, b, inplace, false); }

/* storing a temp of the value's own type: a bf16 temp is already a bf16
   value (expr.c rounds every one it makes, a loaded one is exact), so its
   top half is the element */
static const char *temp_store_fmt(ry_dtype t) { return t == RY_BF16 ? "ry_bbits(%s)" : ryf_store_fmt(t); }

const char *ryf_store_fmt(ry_dtype t) {
  switch (t) {
  case RY_F16: return "ry_f2h(%s)";
  case RY_BF16: return "ry_f2b(%s)";
  case RY_BOOL: return "(uint8_t)(%s != 0)";
  default: return "%s";
  }
}

static void gen_ew_body(kgen *k, ry__buf *out, const loops *lp, const int *t, int ip, bool any_alias);
static bool gen_prefetch_blocks(kgen *k, ry__buf *out, const loops *lp);

/* Kernels touching few elements gain nothing from vectorization and loop
 * transformations but cost as much compile time as big ones (a train step
 * has dozens over biases, losses and scalars): they are compiled at -O1
 * (RY_SMALL, defined by the prelude for GCC), halving a cold compile. An
 * element of a costly op (exp, erf, ...) counts as COSTLY_WORK: at -O1 its
 * polynomial is a scalar call per element (a decode step's SwiGLU over 1536
 * elements: 12 us instead of about 1). */
#define SMALL_WORK 4096
#define COSTLY_WORK 16
static const char *small_work(const kgen *k, int64_t elements) {
  return elements * (k->n_costly ? COSTLY_WORK : 1) < SMALL_WORK ? "RY_SMALL " : "";
}

/* elementwise kernel rooted at value r: the loop is r's shape */
/* A concatenate that is a kernel's root: one loop nest per (non-empty)
 * operand writing its slab of the output, so each element is computed
 * once. Loop 0 is dim 0 of the output, split by the pool: all of it for
 * each operand (concatenation along a later dim), or the operand's part of
 * [lo, hi) (along dim 0). */
static bool gen_concat_root(kgen *k, int idx, ry__buf *out, int64_t *outer, int64_t *work) {
  const ry_graph *g = k->g;
  const ry_node *n = &g->nodes[ryf_def_of(g, k->root)];
  const int32_t *ops = ry_node_operands(g, n);
  ry_type rt = ry_vtype(g, k->root);
  int dim = (int)n->attrs.concatenate.dim, L = rt.shape.rank;
  int64_t st[RY_MAX_RANK];
  ryf_rowmajor(rt.shape, st);
  ry__buf pieces = {0};
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  int64_t off = 0;
  for (int q = 0; q < n->n_operands && !k->fail; q++) {
    ry_type xt = ry_vtype(g, ops[q]);
    int64_t sz = xt.shape.dims[dim];
    if (sz == 0) continue;
    /* a fresh loop nest; the buffer slots are shared by all pieces */
    ry__buf_free(&k->body);
    k->n_temps = k->n_acc = k->n_memo = 0;
    k->guard = 0;
    memset(k->nl_dim, 0, sizeof k->nl_dim);
    k->keep0 = true;
    k->L = L;
    for (int d = 0; d < L; d++) k->loop[d] = xt.shape.dims[d];
    vmap id = {L, {0}, {0}, {0}, {0}};
    for (int d = 0; d < L; d++) {
      id.src[d] = (int8_t)d;
      id.mul[d] = 1;
    }
    int t = ryf_emit(k, ops[q], &id);
    if (k->fail || k->body.oom) break;
    int order[RY_MAX_RANK];
    for (int d = 0; d < L; d++) order[d] = d;
    ryf_coalesce(k, order, L, NULL, st, lp);
    ry__buf_printf(&pieces, "  { /* operand %d */\n", q);
    if (dim == 0)
      ry__buf_printf(&pieces, "   const int64_t lo_ = (lo > %" PRId64 " ? lo : %" PRId64 ") - %" PRId64 ", hi_ = (hi < %" PRId64
                          " ? hi : %" PRId64 ") - %" PRId64 ";\n",
                 off, off, off, off + sz, off + sz, off);
    else ry__buf_printf(&pieces, "   const int64_t lo_ = lo, hi_ = hi;\n");
    for (int j = 0; j < lp->n; j++) {
      if (j == 0) ry__buf_printf(&pieces, "  for (int64_t j0 = lo_; j0 < hi_; j0++) {\n");
      else ry__buf_printf(&pieces, "  for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    }
    print_loads(k, &pieces, lp);
    ry__buf_append(&pieces, &k->body);
    ry__buf_printf(&pieces, "      p0[");
    print_offset(&pieces, off * st[dim], lp->coef[k->n_acc], lp->n);
    char tv[32];
    snprintf(tv, sizeof tv, "t%d", t);
    ry__buf_printf(&pieces, "] = ");
    ry__buf_printf(&pieces, temp_store_fmt(rt.dtype), tv);
    ry__buf_printf(&pieces, ";\n");
    for (int j = 0; j < lp->n; j++) ry__buf_printf(&pieces, "  }\n");
    ry__buf_printf(&pieces, "  }\n");
    off += sz;
  }
  bool ok = !k->fail && !k->body.oom && !pieces.oom;
  if (ok) {
    ry__buf_printf(out, "void ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", idx);
    print_ptrs(k, out, 0);
    ry__buf_append(out, &pieces);
    ry__buf_printf(out, "}\n\n");
  }
  k->n_ip = 0;
  *outer = L ? rt.shape.dims[0] : 1;
  *work = ry_shape_numel(rt.shape);
  ry__buf_free(&pieces);
  ry__free(lp, sizeof *lp);
  return ok;
}

bool ryf_gen_ew(kgen *k, int idx, ry__buf *out, int64_t *outer, int64_t *work) {
  ry_type rt = ry_vtype(k->g, k->root);
  if (k->g->nodes[ryf_def_of(k->g, k->root)].op == RY_OP_CONCATENATE && rt.shape.rank > 0) {
    if (k->n_extra) {
      k->fail = true;
      k->fail_why = "a concatenate kernel stores no other values";
      return false;
    }
    return gen_concat_root(k, idx, out, outer, work);
  }
  k->L = rt.shape.rank;
  for (int d = 0; d < k->L; d++) k->loop[d] = rt.shape.dims[d];
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  /* the values this kernel stores besides its root (slots 1..n_extra),
   * computed at the root's elements (ryf_emit recomputes them wherever the
   * root reads them) */
  int n_out = 1 + k->n_extra, t[RYC_MAX_EW_OUT];
  for (int e = 0; e < k->n_extra; e++) {
    if (!ry_shape_equal(ry_vtype(k->g, k->extra[e]).shape, rt.shape)) {
      k->fail = true;
      k->fail_why = "a value stored beside the root has another shape";
      return false;
    }
    k->bufs[1 + e] = k->extra[e];
  }
  k->n_bufs = n_out;
  for (int e = 0; e < k->n_extra; e++) t[1 + e] = ryf_emit(k, k->extra[e], &id);
  t[0] = ryf_emit_node(k, k->root, &id);
  if (k->fail || k->body.oom) return false;
  int64_t st[RY_MAX_RANK];
  ryf_rowmajor(rt.shape, st);
  int order[RY_MAX_RANK];
  for (int d = 0; d < k->L; d++) order[d] = d;
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  ryf_coalesce(k, order, k->L, NULL, st, lp);
  /* slot i is read only at the output's own element when every read of it
   * has the same size, offset 0 and the output's strides (loads come before
   * the stores in each iteration): an output of its dtype may be written
   * over it */
  k->n_ip = k->n_ipm = 0;
  int64_t numel = ry_shape_numel(rt.shape);
  for (int i = n_out; i < k->n_bufs; i++) {
    ry_type bt = ry_vtype(k->g, k->bufs[i]);
    bool ok = ry_shape_numel(bt.shape) == numel && numel > 0;
    for (int a = 0; ok && a < k->n_acc; a++) {
      if (k->acc[a].buf != i) continue;
      ok = k->acc[a].base == 0 && k->acc[a].n_nl == 0 && k->acc[a].clamp == 0;
      for (int j = 0; ok && j < lp->n; j++) ok = lp->coef[a][j] == lp->coef[k->n_acc][j];
    }
    k->idread[i] = ok && ry_shape_equal(bt.shape, rt.shape);
    bool dt = false;
    for (int o = 0; o < n_out; o++) dt |= ry_vtype(k->g, k->bufs[o]).dtype == bt.dtype;
    if (!ok || !dt) continue;
    if (n_out == 1 && k->n_ip < RYC_MAX_INPLACE) k->ip_slot[k->n_ip++] = i;
    if (n_out > 1 && k->n_ipm < RYC_MAX_IPM) k->ipm_slot[k->n_ipm++] = i;
  }
  const char *attr = small_work(k, numel);
  for (int v = -1; v < k->n_ip; v++) {
    int ip = v < 0 ? 0 : k->ip_slot[v];
    ry__buf *o = v < 0 ? out : &k->ip_src[v];
    if (v < 0) ry__buf_printf(o, "%svoid ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", attr, idx);
    else ry__buf_printf(o, "%svoid ryk_%d_ip%d(char *const *b, int64_t lo, int64_t hi) {\n", attr, idx, ip);
    gen_ew_body(k, o, lp, t, ip, false);
  }
  if (k->n_ipm) {
    ry__buf_printf(&k->ipm_src, "%svoid ryk_%d_ipm(char *const *b, int64_t lo, int64_t hi) {\n", attr, idx);
    gen_ew_body(k, &k->ipm_src, lp, t, 0, true);
  }
  *outer = lp->n ? lp->size[0] : 1;
  *work = numel;
  ry__free(lp, sizeof *lp);
  return true;
}

/* The loop nest and its stores: output 0 into slot ip (its in-place
 * variant), the others into their own slots. any_alias: the stores may
 * write over buffers the loop reads (each at its own element only), so the
 * innermost loop says it carries no dependence (RY_IVDEP) for the compiler
 * to vectorize it without restrict pointers. */
static void gen_ew_body(kgen *k, ry__buf *out, const loops *lp, const int *t, int ip, bool any_alias) {
  print_ptrs_as(k, out, ip, any_alias);
  const char *iv = any_alias ? "RY_IVDEP " : "";
  bool strip = gen_prefetch_blocks(k, out, lp);
  if (lp->n == 0) ry__buf_printf(out, "  %sfor (int64_t j_ = lo; j_ < hi; j_++) {\n    {\n", iv);
  for (int j = 0; j < lp->n; j++) {
    const char *ivj = j == lp->n - 1 ? iv : "";
    if (j == 0 && strip) ry__buf_printf(out, "  %sfor (int64_t j0 = jb_; j0 < je_; j0++) {\n", ivj);
    else if (j == 0) ry__buf_printf(out, "  %sfor (int64_t j0 = lo; j0 < hi; j0++) {\n", ivj);
    else ry__buf_printf(out, "  %*s%sfor (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j * 2, "", ivj, j, j, lp->size[j], j);
  }
  print_loads(k, out, lp);
  ry__buf_append(out, &k->body);
  for (int o = 0; o < 1 + k->n_extra; o++) {
    ry__buf_printf(out, "      p%d[", o ? o : ip);
    print_offset(out, 0, lp->coef[k->n_acc], lp->n);
    ry__buf_printf(out, "] = ");
    char tv[32];
    snprintf(tv, sizeof tv, "t%d", t[o]);
    ry__buf_printf(out, temp_store_fmt(ry_vtype(k->g, k->bufs[o]).dtype), tv);
    ry__buf_printf(out, ";\n");
  }
  for (int j = lp->n - 1; j >= 0; j--) ry__buf_printf(out, "  }\n");
  if (lp->n == 0) ry__buf_printf(out, "    }\n  }\n");
  if (strip) ry__buf_printf(out, "  }\n");
  ry__buf_printf(out, "}\n\n");
}

/* A flat loop over at least PF_MIN elements whose body has a costly op
 * (ryf_ew_costly: exp, erf, ...) runs in blocks of PF_BLOCK, each first
 * asking for its streamed operands' bytes PF_AHEAD further on
 * (those read at the loop's own index, once per buffer and offset): a
 * fused chain with a long body (gelu's erf) otherwise keeps too few of its
 * loads in flight and pays memory's latency on top of its arithmetic (on
 * an Intel Xeon, gelu over 16M floats: 13.4-14.4 -> 17.6-19.6 GB/s, 2 threads).
 * Blocks start where the chunk does (a multiple of 64), so every element
 * takes the same vector or scalar path whatever the split, as before.
 * The blocks cost the compiler time (gelu's module: 104 -> 126 ms), so a
 * cheap body, whose loads the core keeps enough of in flight, has none.
 * Opens the block loop (the caller closes it) and returns true, or returns
 * false and prints nothing. */
#define PF_MIN (1 << 18)
#define PF_BLOCK 256
#define PF_AHEAD 2048 /* bytes; 1, 4 and 8 KB were slower */
static bool gen_prefetch_blocks(kgen *k, ry__buf *out, const loops *lp) {
  if (lp->n != 1 || lp->size[0] < PF_MIN || !k->n_costly) return false;
  int streams[16]; /* more streams than this are not worth more prefetches */
  int n = 0;
  for (int a = 0; a < k->n_acc; a++) {
    const access *x = &k->acc[a];
    if (x->buf < 0 || lp->coef[a][0] != 1 || x->n_nl || x->clamp) continue;
    bool seen = false;
    for (int i = 0; i < n; i++) seen |= k->acc[streams[i]].buf == x->buf && k->acc[streams[i]].base == x->base;
    if (!seen && n < 16) streams[n++] = a;
  }
  if (!n) return false;
  ry__buf_printf(out, "  for (int64_t jb_ = lo; jb_ < hi; jb_ += %d) {\n", PF_BLOCK);
  ry__buf_printf(out, "   const int64_t je_ = hi - jb_ > %d ? jb_ + %d : hi;\n", PF_BLOCK, PF_BLOCK);
  for (int i = 0; i < n; i++) {
    const access *x = &k->acc[streams[i]];
    ry__buf_printf(out, "   RY_PREFETCH(p%d + (%" PRId64 " + jb_), %d, %zu, 0);\n", x->buf, x->base, PF_AHEAD,
                   (size_t)PF_BLOCK * ry_dtype_size(x->dt));
  }
  return true;
}

const char *ryf_red_identity(ry_reduce_kind kind, ry_dtype t) {
  bool f = ryf_is_f(t);
  switch (kind) {
  case RY_SUM: return "0";
  case RY_PROD: return "1";
  case RY_MAX: return f ? "-__builtin_inf()" : t == RY_BOOL ? "0" : ryf_int_min(t);
  case RY_MIN: return f ? "__builtin_inf()" : ryf_int_max(t);
  case RY_AND: return t == RY_BOOL ? "1" : "-1";
  case RY_OR: return "0";
  default: return "0";
  }
}

/* step(acc, x) in C for the accumulator type */
void ryf_red_step(ry__buf *b, ry_reduce_kind kind, ry_dtype t, const char *acc, const char *x) {
  if (t == RY_BOOL) {
    if (kind == RY_SUM || kind == RY_MAX) kind = RY_OR;
    if (kind == RY_PROD || kind == RY_MIN) kind = RY_AND;
  }
  bool f = ryf_is_f(t), d = t == RY_F64;
  const char *ct = ryf_ctype(t), *u = ryf_utype(t);
  switch (kind) {
  /* integer sums and products accumulate in the unsigned type (wrapping, no
   * UB); see lane_acc_type: casting the accumulator back to signed on every
   * step trips a GCC 12 -O3 vectorizer bug (wrong sums with AVX2/AVX-512) */
  case RY_SUM:
    if (f) ry__buf_printf(b, "%s = %s + %s;", acc, acc, x);
    else ry__buf_printf(b, "%s = (%s)(%s + (%s)%s);", acc, u, acc, u, x);
    break;
  case RY_PROD:
    if (f) ry__buf_printf(b, "%s = %s * %s;", acc, acc, x);
    else ry__buf_printf(b, "%s = (%s)(%s * (%s)%s);", acc, u, acc, u, x);
    break;
  case RY_MAX:
    if (f) ry__buf_printf(b, "%s = %s(%s, %s);", acc, d ? "ryx_fmax" : "ryx_fmaxf", acc, x);
    else ry__buf_printf(b, "%s = %s > %s ? %s : %s;", acc, acc, x, acc, x);
    break;
  case RY_MIN:
    if (f) ry__buf_printf(b, "%s = %s(%s, %s);", acc, d ? "ryx_fmin" : "ryx_fminf", acc, x);
    else ry__buf_printf(b, "%s = %s < %s ? %s : %s;", acc, acc, x, acc, x);
    break;
  case RY_AND: ry__buf_printf(b, "%s = (%s)(%s & %s);", acc, ct, acc, x); break;
  case RY_OR: ry__buf_printf(b, "%s = (%s)(%s | %s);", acc, ct, acc, x); break;
  default: break;
  }
}

/* The accumulator type of a reduction: the unsigned type for integer sums and
 * products (see ryf_red_step), else the compute type. */
static const char *lane_acc_type(ry_reduce_kind kind, ry_dtype t) {
  bool wrap = ry_dtype_is_int(t) && (kind == RY_SUM || kind == RY_PROD);
  return wrap ? ryf_utype(t) : ryf_ctype(t);
}

bool ryf_gen_reduce(kgen *k, int idx, ry__buf *out, int64_t *outer, int64_t *work) {
  const ry_graph *g = k->g;
  const ry_node *n = &g->nodes[ryf_def_of(g, k->root)];
  int32_t x = ry_node_operands(g, n)[0];
  ry_type xt = ry_vtype(g, x), rt = ry_vtype(g, k->root);
  ry_dtype t = xt.dtype;
  ry_reduce_kind kind = n->attrs.reduce.kind;
  k->L = xt.shape.rank;
  bool red[RY_MAX_RANK] = {false};
  for (int i = 0; i < n->attrs.reduce.axes.n; i++) red[n->attrs.reduce.axes.v[i]] = true;
  for (int d = 0; d < k->L; d++) k->loop[d] = xt.shape.dims[d];
  vmap id = {k->L, {0}, {0}, {0}, {0}};
  for (int d = 0; d < k->L; d++) {
    id.src[d] = (int8_t)d;
    id.mul[d] = 1;
  }
  /* the operand: a buffer when materialized, else its expression */
  int tv = k->p->mat[x] ? (int)(ryf_emit(k, x, &id)) : ryf_emit_node(k, x, &id);
  if (k->fail || k->body.oom) return false;
  /* output coefficients: strides of the kept dims */
  int64_t ost[RY_MAX_RANK], oc[RY_MAX_RANK] = {0};
  ryf_rowmajor(rt.shape, ost);
  for (int d = 0, o = 0; d < k->L; d++)
    if (!red[d]) oc[d] = ost[o++];
  /* inner style when the last non-unit dim is reduced (or f16/bf16/bool, whose
   * accumulator differs from the storage) */
  int last = -1;
  for (int d = 0; d < k->L; d++)
    if (k->loop[d] != 1) last = d;
  bool acc_is_store = t == RY_F32 || t == RY_F64 || ry_dtype_is_int(t);
  bool inner = last < 0 || red[last] || !acc_is_store;
  int order[RY_MAX_RANK], no = 0;
  if (inner) {
    for (int d = 0; d < k->L; d++)
      if (!red[d]) order[no++] = d;
    for (int d = 0; d < k->L; d++)
      if (red[d]) order[no++] = d;
  } else {
    for (int d = 0; d < k->L; d++) order[no++] = d;
  }
  loops *lp = ry__malloc(sizeof *lp);
  if (!lp) return false;
  ryf_coalesce(k, order, no, red, oc, lp);
  const char *act = ryf_ctype(t); /* float for f16/bf16, int for bool */
  char acc[16], val[16];
  snprintf(val, sizeof val, "t%d", tv);
  ry__buf_printf(out, "%svoid ryk_%d(char *const *b, int64_t lo, int64_t hi) {\n", small_work(k, ry_shape_numel(xt.shape)), idx);
  print_ptrs(k, out, 0);
  int nk = 0; /* kept loops (outer) */
  while (nk < lp->n && !lp->red[nk]) nk++;
  if (inner) {
    /* kept loops, then lanes over the reduced loops */
    if (nk == 0) ry__buf_printf(out, "  for (int64_t j_ = lo; j_ < hi; j_++) {\n");
    for (int j = 0; j < nk; j++) {
      if (j == 0) ry__buf_printf(out, "  for (int64_t j0 = lo; j0 < hi; j0++) {\n");
      else ry__buf_printf(out, "  for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    }
    const char *lat = lane_acc_type(kind, t);
    ry__buf_printf(out, "    %s acc[RY_LANES];\n    for (int l = 0; l < RY_LANES; l++) acc[l] = (%s)%s;\n", lat, lat,
               ryf_red_identity(kind, t));
    for (int j = nk; j + 1 < lp->n; j++)
      ry__buf_printf(out, "    for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    if (lp->n > nk) {
      int j = lp->n - 1;
      int64_t len = lp->size[j];
      ry__buf_printf(out, "    int64_t jv = 0;\n");
      ry__buf_printf(out, "    for (; jv + RY_LANES <= %" PRId64 "; jv += RY_LANES) {\n", len);
      bool any_staged = false;
      for (int a2 = 0; a2 < k->n_acc; a2++)
        if (ryf_lane_staged(&k->acc[a2])) {
          any_staged = true;
          ry__buf_printf(out, "     int32_t w%d[RY_LANES];\n", a2);
        }
      if (any_staged) {
        ry__buf_printf(out, "     for (int l = 0; l < RY_LANES; l++) {\n      const int64_t j%d = jv + l;\n", j);
        print_loads_as(k, out, lp, LOADS_STAGE);
        ry__buf_printf(out, "     }\n");
      }
      ry__buf_printf(out, "     for (int l = 0; l < RY_LANES; l++) {\n      const int64_t j%d = jv + l;\n", j);
      print_loads_as(k, out, lp, LOADS_LANES);
      ry__buf_append(out, &k->body);
      ry__buf_printf(out, "      ");
      ryf_red_step(out, kind, t, "acc[l]", val);
      ry__buf_printf(out, "\n     }\n    }\n");
      ry__buf_printf(out, "    for (; jv < %" PRId64 "; jv++) {\n     {\n      const int64_t j%d = jv;\n", len, j);
      print_loads(k, out, lp);
      ry__buf_append(out, &k->body);
      ry__buf_printf(out, "      ");
      ryf_red_step(out, kind, t, "acc[0]", val);
      ry__buf_printf(out, "\n     }\n    }\n");
    } else {
      ry__buf_printf(out, "    {\n");
      print_loads(k, out, lp);
      ry__buf_append(out, &k->body);
      ry__buf_printf(out, "      ");
      ryf_red_step(out, kind, t, "acc[0]", val);
      ry__buf_printf(out, "\n    }\n");
    }
    for (int j = nk; j + 1 < lp->n; j++) ry__buf_printf(out, "    }\n");
    ry__buf_printf(out, "    %s r_ = acc[0];\n    for (int l = 1; l < RY_LANES; l++) { ", lat);
    ryf_red_step(out, kind, t, "r_", "acc[l]");
    ry__buf_printf(out, " }\n    const %s r = (%s)r_;\n    p0[", act, act);
    print_offset(out, 0, lp->coef[k->n_acc], nk);
    ry__buf_printf(out, "] = ");
    ry__buf_printf(out, ryf_store_fmt(rt.dtype), "r");
    ry__buf_printf(out, ";\n");
    for (int j = 0; j < (nk ? nk : 1); j++) ry__buf_printf(out, "  }\n");
    *outer = nk ? lp->size[0] : 1;
  } else {
    /* accumulate into the output in input order; split a kept dim 0, or
     * the innermost loop when it is the only one kept (a column sum such
     * as a bias gradient): each output element still sums in input order */
    bool split = lp->n > 0 && !lp->red[0];
    bool split_last = !split && lp->n >= 2 && !lp->red[lp->n - 1];
    for (int j = 0; split_last && j + 1 < lp->n; j++) split_last = lp->red[j];
    int64_t ocount = 1; /* output elements per unit of loop 0 */
    if (split) ocount = lp->coef[k->n_acc][0];
    if (split) {
      ry__buf_printf(out, "  for (int64_t i = lo * %" PRId64 "; i < hi * %" PRId64 "; i++) p0[i] = (%s)%s;\n", ocount,
                 ocount, act, ryf_red_identity(kind, t));
    } else if (split_last) {
      /* in units of 64 elements: whatever the split, the same elements take
       * the vector loop and the same the scalar tail */
      int64_t len = lp->size[lp->n - 1];
      ry__buf_printf(out, "  const int64_t c0 = lo * 64, c1 = hi * 64 < %" PRId64 " ? hi * 64 : %" PRId64 ";\n", len, len);
      ry__buf_printf(out, "  for (int64_t i = c0; i < c1; i++) p0[i * %" PRId64 "] = (%s)%s;\n", lp->coef[k->n_acc][lp->n - 1],
                 act, ryf_red_identity(kind, t));
    } else {
      ry__buf_printf(out, "  for (int64_t i = 0; i < %" PRId64 "; i++) p0[i] = (%s)%s;\n", ry_shape_numel(rt.shape), act,
                 ryf_red_identity(kind, t));
      ry__buf_printf(out, "  (void)lo; (void)hi;\n");
    }
    for (int j = 0; j < lp->n; j++) {
      if (j == 0 && split) ry__buf_printf(out, "  for (int64_t j0 = lo; j0 < hi; j0++) {\n");
      else if (j == lp->n - 1 && split_last) ry__buf_printf(out, "  for (int64_t j%d = c0; j%d < c1; j%d++) {\n", j, j, j);
      else ry__buf_printf(out, "  for (int64_t j%d = 0; j%d < %" PRId64 "; j%d++) {\n", j, j, lp->size[j], j);
    }
    print_loads(k, out, lp);
    ry__buf_append(out, &k->body);
    ry__buf_printf(out, "      const int64_t oo = ");
    print_offset(out, 0, lp->coef[k->n_acc], lp->n);
    ry__buf_printf(out, ";\n      %s r = (%s)p0[oo];\n      ", lane_acc_type(kind, t), lane_acc_type(kind, t));
    ryf_red_step(out, kind, t, "r", val);
    ry__buf_printf(out, "\n      p0[oo] = (%s)r;\n", act);
    for (int j = 0; j < lp->n; j++) ry__buf_printf(out, "  }\n");
    *outer = split ? lp->size[0] : split_last ? (lp->size[lp->n - 1] + 63) / 64 : 1;
  }
  ry__buf_printf(out, "}\n\n");
  (void)acc;
  *work = ry_shape_numel(xt.shape);
  ry__free(lp, sizeof *lp);
  return true;
}
