/* Code generation of expressions: the C text of a value at an index map
 * (elementwise ops, views composed into loads, pad, concatenate). */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"


const char *ryf_ctype(ry_dtype t) { /* compute type */
  switch (t) {
  case RY_BOOL: return "int";
  case RY_I8: return "int8_t";
  case RY_I16: return "int16_t";
  case RY_I32: return "int32_t";
  case RY_I64: return "int64_t";
  case RY_U8: return "uint8_t";
  case RY_U16: return "uint16_t";
  case RY_U32: return "uint32_t";
  case RY_U64: return "uint64_t";
  case RY_F16: case RY_BF16: case RY_F32: return "float";
  case RY_F64: return "double";
  default: return "int";
  }
}

const char *ryf_stype(ry_dtype t) { /* storage type */
  switch (t) {
  case RY_BOOL: return "uint8_t";
  case RY_F16: return "ry_f16";
  case RY_BF16: return "ry_bf16";
  case RY_F32: return "float";
  case RY_F64: return "double";
  default: return ryf_ctype(t);
  }
}

const char *ryf_utype(ry_dtype t) { return ry_dtype_size(t) == 8 ? "uint64_t" : "uint32_t"; }

const char *ryf_int_min(ry_dtype t) {
  switch (t) {
  case RY_I8: return "INT8_MIN";
  case RY_I16: return "INT16_MIN";
  case RY_I32: return "INT32_MIN";
  case RY_I64: return "INT64_MIN";
  default: return "0";
  }
}
const char *ryf_int_max(ry_dtype t) {
  switch (t) {
  case RY_I8: return "INT8_MAX";
  case RY_I16: return "INT16_MAX";
  case RY_I32: return "INT32_MAX";
  case RY_I64: return "INT64_MAX";
  case RY_U8: return "UINT8_MAX";
  case RY_U16: return "UINT16_MAX";
  case RY_U32: return "UINT32_MAX";
  case RY_U64: return "UINT64_MAX";
  case RY_BOOL: return "1";
  default: return "0";
  }
}

int ryf_new_temp(kgen *k, ry_dtype t, const char *fmt, ...) RY_PRINTF(3, 4);
int ryf_new_temp(kgen *k, ry_dtype t, const char *fmt, ...) {
  int id = k->n_temps++;
  char expr[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(expr, sizeof expr, fmt, ap);
  va_end(ap);
  const char *round = t == RY_F16 ? "ry_rh" : t == RY_BF16 ? "ry_rb" : "";
  ry__buf_printf(&k->body, "      const %s t%d = %s(%s);\n", ryf_ctype(t), id, round, expr);
  return id;
}

/* a temp holding load a: the loaded value is already one of t's (a bf16 or
   f16 element widened exactly), so no rounding */
static int load_temp(kgen *k, ry_dtype t, int a) {
  int id = k->n_temps++;
  ry__buf_printf(&k->body, "      const %s t%d = a%d;\n", ryf_ctype(t), id, a);
  return id;
}

void ryf_rowmajor(ry_shape s, int64_t st[RY_MAX_RANK]) { ry__strides(s, st); }

access *ryf_new_access(kgen *k, ry_dtype dt) {
  if (k->n_acc >= MAX_ACC) {
    k->fail = true;
    k->fail_why = "too many loads";
    return NULL;
  }
  access *a = &k->acc[k->n_acc];
  memset(a, 0, sizeof *a);
  a->dt = dt;
  return a;
}

/* An access to buffer value w read through `shape` (w's shape, or a reshape
 * of it with the same element count) at map m. */
static int add_access(kgen *k, int32_t w, ry_shape shape, const vmap *m, ry_dtype dt) {
  access *a = ryf_new_access(k, dt);
  if (!a) return 0;
  if (w < 0) {
    a->buf = -1;
  } else {
    int slot = -1;
    for (int i = 1; i < k->n_bufs; i++)
      if (k->bufs[i] == w) slot = i;
    if (slot < 0) {
      if (k->n_bufs >= MAX_ACC) {
        k->fail = true;
        k->fail_why = "too many buffers";
        return 0;
      }
      slot = k->n_bufs++;
      k->bufs[slot] = w;
    }
    a->buf = slot;
  }
  int64_t st[RY_MAX_RANK];
  ryf_rowmajor(shape, st);
  for (int d = 0; d < m->rank; d++) {
    int64_t s = w < 0 ? 1 : st[d], dv = vdiv(m, d);
    if (dv > 1 && m->src[d] >= 0) {
      nlterm *t = &a->nl[a->n_nl++];
      *t = (nlterm){m->src[d], m->mul[d], m->add[d], dv, s};
      k->nl_dim[m->src[d]] = true;
      continue;
    }
    if (m->src[d] >= 0) a->coef[m->src[d]] += m->mul[d] * s;
    a->base += (dv > 1 ? m->add[d] / dv : m->add[d]) * s;
  }
  if (w >= 0 && k->guard > 0) a->clamp = ry_shape_numel(shape);
  return k->n_acc++;
}

static void literal(kgen *k, const ry_array *c, char *buf, size_t size) {
  ry_dtype t = c->type.dtype;
  if (ryf_is_f(t)) {
    double v = ry__load_f64(t, c->data, 0);
    const char *suf = t == RY_F64 ? "" : "f";
    if (isnan(v) && t == RY_F64) { /* by its bits: sign and payload matter to bitcast_convert */
      uint64_t u;
      memcpy(&u, c->data, 8);
      snprintf(buf, size, "ry_u2d(0x%016" PRIx64 "ull)", u);
    } else if (isnan(v) && t == RY_F32) {
      uint32_t u;
      memcpy(&u, c->data, 4);
      snprintf(buf, size, "ry_u2f(0x%08" PRIx32 "u)", u);
    } else if (isnan(v)) snprintf(buf, size, "%s", "__builtin_nanf(\"\")");
    else if (isinf(v)) snprintf(buf, size, "%s%s", v < 0 ? "-" : "", t == RY_F64 ? "__builtin_inf()" : "__builtin_inff()");
    else snprintf(buf, size, "%a%s", t == RY_F64 ? v : (double)(float)v, suf);
  } else {
    int64_t v = ry__load_i64(t, c->data, 0);
    if (v == INT64_MIN) snprintf(buf, size, "(%s)(-9223372036854775807LL - 1)", ryf_ctype(t));
    else snprintf(buf, size, "(%s)%" PRId64 "LL", ryf_ctype(t), v);
  }
  (void)k;
}

int ryf_emit(kgen *k, int32_t v, const vmap *m);
#define RY_MAX_CONCAT_FUSED 64

static int emit_at(kgen *k, int32_t v, const vmap *m, int32_t user_rank) {
  /* a scalar operand of select/clamp next to array operands */
  if (ry_vtype(k->g, v).shape.rank == 0 && user_rank > 0) {
    vmap s = {0, {0}, {0}, {0}, {0}};
    return ryf_emit(k, v, &s);
  }
  return ryf_emit(k, v, m);
}

/* A rule of ew_rules.c for node operands a, b: %0 %1 %T %U %B expanded. */
static int emit_rule(kgen *k, const char *rule, ry_dtype t, ry_dtype t0, int a, int b) {
  char c[512];
  size_t n = 0;
  for (const char *p = rule; *p && n + 40 < sizeof c; p++) {
    if (*p != '%') {
      c[n++] = *p;
      continue;
    }
    switch (*++p) {
    case '0': n += (size_t)snprintf(c + n, sizeof c - n, "t%d", a); break;
    case '1': n += (size_t)snprintf(c + n, sizeof c - n, "t%d", b); break;
    case 'T': n += (size_t)snprintf(c + n, sizeof c - n, "%s", ryf_ctype(t)); break;
    case 'U': n += (size_t)snprintf(c + n, sizeof c - n, "%s", ryf_utype(t0)); break;
    case 'B': n += (size_t)snprintf(c + n, sizeof c - n, "%d", (int)ry_dtype_size(t0) * 8); break;
    default: /* a bad rule: test_optable expands every rule */
      k->fail = true;
      k->fail_why = "bad elementwise rule";
      return 0;
    }
  }
  c[n] = 0;
  return ryf_new_temp(k, t, "%s", c);
}

static const char *cmp_c(ry_cmp c) {
  static const char *const s[] = {"==", "!=", "<", "<=", ">", ">="};
  return (int)c >= 0 && c < RY_CMP_COUNT ? s[c] : "==";
}

/* pad: per padded dim d the output index i maps to q = i - low, the operand
 * index q / (interior + 1); the element is the operand's where every q is a
 * multiple of interior + 1 inside the operand, else the padding value. The
 * operand is emitted under the guard (its loads are clamped), so it may be
 * computed at indices that are then not selected. */
static int emit_pad(kgen *k, const ry_node *n, const vmap *m) {
  const ry_graph *g = k->g;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type xt = ry_vtype(g, ops[0]), vt = ry_vtype(g, ry_node_results(g, n)[0]);
  vmap sm = {0, {0}, {0}, {0}, {0}};
  int pv = ryf_emit(k, ops[1], &sm);
  if (ry_shape_numel(xt.shape) == 0) return pv;
  const ry_axes *lo = &n->attrs.pad.low, *hi = &n->attrs.pad.high, *in = &n->attrs.pad.interior;
  vmap xm = *m;
  int cond = -1;
  for (int d = 0; d < xt.shape.rank; d++) {
    int64_t l = lo->v[d], s = (in->n ? in->v[d] : 0) + 1, dv = vdiv(m, d);
    if (l == 0 && s == 1 && hi->v[d] == 0) continue;
    vmap qm = {1, {m->src[d]}, {m->mul[d]}, {m->add[d] - l * dv}, {dv}};
    int a = add_access(k, -1, RY_SCALAR, &qm, RY_I64);
    int c;
    if (s > 1)
      c = ryf_new_temp(k, RY_BOOL, "a%d >= 0 && a%d < %" PRId64 " && a%d %% %" PRId64 " == 0", a, a,
                   (xt.shape.dims[d] - 1) * s + 1, a, s);
    else c = ryf_new_temp(k, RY_BOOL, "a%d >= 0 && a%d < %" PRId64, a, a, xt.shape.dims[d]);
    cond = cond < 0 ? c : ryf_new_temp(k, RY_BOOL, "t%d && t%d", cond, c);
    xm.add[d] = m->add[d] - l * dv;
    xm.div[d] = dv * s;
  }
  if (cond < 0) return ryf_emit(k, ops[0], &xm);
  k->guard++;
  int xv = ryf_emit(k, ops[0], &xm);
  k->guard--;
  return ryf_new_temp(k, vt.dtype, "t%d ? t%d : t%d", cond, xv, pv);
}

/* concatenate: operand q where the index along dim lies in its range */
static int emit_concat(kgen *k, const ry_node *n, const vmap *m) {
  const ry_graph *g = k->g;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type vt = ry_vtype(g, ry_node_results(g, n)[0]);
  int dim = (int)n->attrs.concatenate.dim;
  int64_t dv = vdiv(m, dim), offs[RY_MAX_CONCAT_FUSED + 1];
  int qs[RY_MAX_CONCAT_FUSED], nq = 0;
  int64_t off = 0;
  for (int q = 0; q < n->n_operands; q++) {
    int64_t sz = ry_vtype(g, ops[q]).shape.dims[dim];
    if (sz > 0) {
      if (nq == RY_MAX_CONCAT_FUSED) {
        k->fail = true;
        k->fail_why = "concatenate of too many operands";
        return 0;
      }
      offs[nq] = off;
      qs[nq++] = q;
    }
    off += sz;
  }
  offs[nq] = off;
  if (nq <= 1) return ryf_emit(k, ops[nq ? qs[0] : 0], m);
  vmap im = {1, {m->src[dim]}, {m->mul[dim]}, {m->add[dim]}, {dv}};
  int ia = add_access(k, -1, RY_SCALAR, &im, RY_I64);
  k->guard++;
  int res = -1;
  for (int i = nq - 1; i >= 0; i--) {
    vmap xm = *m;
    xm.add[dim] = m->add[dim] - offs[i] * dv;
    int xv = ryf_emit(k, ops[qs[i]], &xm);
    res = res < 0 ? xv : ryf_new_temp(k, vt.dtype, "a%d < %" PRId64 " ? t%d : t%d", ia, offs[i + 1], xv, res);
  }
  k->guard--;
  return res;
}

int ryf_emit_node(kgen *k, int32_t v, const vmap *m) {
  const ry_graph *g = k->g;
  const ry_node *n = &g->nodes[ryf_def_of(g, v)];
  const int32_t *ops = ry_node_operands(g, n);
  ry_type vt = ry_vtype(g, v);
  ry_dtype t = vt.dtype;
  ry_dtype t0 = n->n_operands ? ry_vtype(g, ops[0]).dtype : t;
  int rank = vt.shape.rank;
  switch (n->op) {
  case RY_OP_CONSTANT: {
    char lit[128];
    literal(k, n->attrs.constant.value, lit, sizeof lit);
    return ryf_new_temp(k, t, "%s", lit);
  }
  case RY_OP_IOTA: {
    int id = (int)n->attrs.iota.dim;
    vmap im = {1, {m->src[id]}, {m->mul[id]}, {m->add[id]}, {m->div[id]}};
    int a = add_access(k, -1, RY_SCALAR, &im, t);
    return ryf_new_temp(k, t, "(%s)a%d", ryf_ctype(t), a);
  }
  case RY_OP_BROADCAST: {
    ry_type xt = ry_vtype(g, ops[0]);
    vmap xm = {xt.shape.rank, {0}, {0}, {0}, {0}};
    for (int i = 0; i < xt.shape.rank; i++) {
      int od = (int)n->attrs.broadcast.dims.v[i];
      if (xt.shape.dims[i] == 1 && vt.shape.dims[od] != 1) {
        xm.src[i] = -1;
        xm.mul[i] = 0;
        xm.add[i] = 0;
      } else {
        xm.src[i] = m->src[od];
        xm.mul[i] = m->mul[od];
        xm.add[i] = m->add[od];
        xm.div[i] = m->div[od];
      }
    }
    return ryf_emit(k, ops[0], &xm);
  }
  case RY_OP_TRANSPOSE: {
    vmap xm = {rank, {0}, {0}, {0}, {0}};
    for (int i = 0; i < rank; i++) {
      int pd = (int)n->attrs.transpose.perm.v[i];
      xm.src[pd] = m->src[i];
      xm.mul[pd] = m->mul[i];
      xm.add[pd] = m->add[i];
      xm.div[pd] = m->div[i];
    }
    return ryf_emit(k, ops[0], &xm);
  }
  case RY_OP_SLICE: {
    vmap xm = *m;
    for (int d = 0; d < rank; d++) {
      int64_t st = n->attrs.slice.stride.v[d], s0 = n->attrs.slice.start.v[d];
      xm.mul[d] = m->mul[d] * st;
      xm.add[d] = m->add[d] * st + s0 * vdiv(m, d);
    }
    return ryf_emit(k, ops[0], &xm);
  }
  case RY_OP_REVERSE: {
    vmap xm = *m;
    for (int i = 0; i < n->attrs.reverse.dims.n; i++) {
      int d = (int)n->attrs.reverse.dims.v[i];
      xm.mul[d] = -m->mul[d];
      xm.add[d] = (vt.shape.dims[d] - 1) * vdiv(m, d) - m->add[d];
    }
    return ryf_emit(k, ops[0], &xm);
  }
  case RY_OP_PAD: return emit_pad(k, n, m);
  case RY_OP_CONCATENATE: return emit_concat(k, n, m);
  case RY_OP_RESHAPE: {
    int32_t w = ops[0];
    while (!k->p->mat[w]) {
      const ry_node *wn = &g->nodes[ryf_def_of(g, w)];
      if (wn->op != RY_OP_RESHAPE) {
        k->fail = true;
        k->fail_why = "reshape of a computed value";
        return 0;
      }
      w = ry_node_operands(g, wn)[0];
    }
    int a = add_access(k, w, vt.shape, m, t);
    return load_temp(k, t, a);
  }
  case RY_OP_COMPARE: {
    int a = ryf_emit(k, ops[0], m), b = ryf_emit(k, ops[1], m);
    return ryf_new_temp(k, t, "t%d %s t%d", a, cmp_c(n->attrs.compare.dir), b);
  }
  case RY_OP_SELECT: {
    int c = emit_at(k, ops[0], m, rank), a = ryf_emit(k, ops[1], m), b = ryf_emit(k, ops[2], m);
    return ryf_new_temp(k, t, "t%d ? t%d : t%d", c, a, b);
  }
  case RY_OP_CLAMP: {
    int lo = emit_at(k, ops[0], m, rank), x = ryf_emit(k, ops[1], m), hi = emit_at(k, ops[2], m, rank);
    if (ryf_is_f(t)) {
      bool d = t == RY_F64;
      return ryf_new_temp(k, t, "%s(%s(t%d, t%d), t%d)", d ? "ryx_fmin" : "ryx_fminf", d ? "ryx_fmax" : "ryx_fmaxf", x, lo, hi);
    }
    int c = ryf_new_temp(k, t, "t%d < t%d ? t%d : t%d", x, lo, lo, x);
    return ryf_new_temp(k, t, "t%d > t%d ? t%d : t%d", c, hi, hi, c);
  }
  case RY_OP_BITCAST: { /* through the unsigned integer of the same size (ryf_ew_ok: 4 or 8 bytes) */
    int a = ryf_emit(k, ops[0], m);
    bool w = ry_dtype_size(t) == 8; /* 8 bytes: f64 and i64 (the bits held in an int64_t) */
    int u = ryf_is_f(t0) ? ryf_new_temp(k, w ? RY_I64 : RY_U32, w ? "(int64_t)ry_d2u(t%d)" : "ry_f2u(t%d)", a)
                     : ryf_new_temp(k, w ? RY_I64 : RY_U32, w ? "(int64_t)t%d" : "(uint32_t)t%d", a);
    if (ryf_is_f(t)) return ryf_new_temp(k, t, w ? "ry_u2d((uint64_t)t%d)" : "ry_u2f(t%d)", u);
    return ryf_new_temp(k, t, "(%s)t%d", ryf_ctype(t), u);
  }
  case RY_OP_CONVERT: {
    int a = ryf_emit(k, ops[0], m);
    if (t == RY_BOOL) {
      /* XLA:CPU compares with denormals as zero in f32/bf16/f64 */
      if (t0 == RY_F64) return ryf_new_temp(k, t, "t%d != 0 && !(fabs(t%d) < 0x1p-1022)", a, a);
      if (t0 == RY_F32 || t0 == RY_BF16) return ryf_new_temp(k, t, "t%d != 0 && !(fabsf(t%d) < 0x1p-126f)", a, a);
      return ryf_new_temp(k, t, "t%d != 0", a);
    }
    if (ryf_is_f(t)) return ryf_new_temp(k, t, "(%s)t%d", ryf_ctype(t), a);
    if (ryf_is_f(t0)) return ryf_new_temp(k, t, "RYX_F2I(%s, %s, %s, (double)t%d)", ryf_ctype(t), ryf_int_min(t), ryf_int_max(t), a);
    return ryf_new_temp(k, t, "(%s)t%d", ryf_ctype(t), a);
  }
  default: break;
  }
  ry_op_kind kind = ryg_op_table[n->op].kind;
  const char *rule = ryf_ew_rule_for(n->op, t0);
  if (rule && ryf_ew_costly(n->op)) k->n_costly++;
  if (rule && (kind == RY_KIND_UNARY || kind == RY_KIND_UNARY_PRED)) return emit_rule(k, rule, t, t0, ryf_emit(k, ops[0], m), 0);
  if (rule && kind == RY_KIND_BINARY) {
    int a = ryf_emit(k, ops[0], m), b = ryf_emit(k, ops[1], m);
    return emit_rule(k, rule, t, t0, a, b);
  }
  k->fail = true;
  k->fail_why = "op without codegen";
  return 0;
}

static bool vmap_eq(const vmap *a, const vmap *b) {
  if (a->rank != b->rank) return false;
  for (int d = 0; d < a->rank; d++)
    if (a->src[d] != b->src[d] || a->mul[d] != b->mul[d] || a->add[d] != b->add[d] || vdiv(a, d) != vdiv(b, d))
      return false;
  return true;
}

/* v is one of the values the kernel stores besides its root: computed here */
static bool stored_here(const kgen *k, int32_t v) {
  for (int e = 0; e < k->n_extra; e++)
    if (k->extra[e] == v) return true;
  return false;
}

int ryf_emit(kgen *k, int32_t v, const vmap *m) {
  if (k->fail) return 0;
  for (int i = 0; i < k->n_memo; i++)
    if (k->memos[i].v == v && vmap_eq(&k->memos[i].m, m)) return k->memos[i].temp;
  int t;
  ry_type vt = ry_vtype(k->g, v);
  if (k->row && ryf_row_emit(k, v, m, &t)) {
    /* a row kernel's own value: a local, a scratch row or recomputed */
  } else if (k->p->mat[v] && v != k->root && !stored_here(k, v)) {
    int a = add_access(k, v, vt.shape, m, vt.dtype);
    t = load_temp(k, vt.dtype, a);
  } else {
    t = ryf_emit_node(k, v, m);
  }
  if (k->n_memo == MAX_MEMO) {
    /* without the memo shared values would be regenerated per use, doubling
     * with every level: give the kernel up (its root runs elsewhere) */
    k->fail = true;
    k->fail_why = "too many distinct values in one kernel";
    return 0;
  }
  memo *mm = &k->memos[k->n_memo++];
  mm->v = v;
  mm->m = *m;
  mm->temp = t;
  return t;
}
