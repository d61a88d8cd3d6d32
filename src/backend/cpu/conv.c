/* Convolution on the GEMM for the cpu backend (f32 / f64).
 *
 * Per group g (feature or batch group), the convolution is one matrix
 * product: C (M, Og) = P (M, K) * B (K, Og), where
 *   M  = output batch x output spatial positions (the "m axes"),
 *   K  = input features of the group x kernel window (the "k axes"),
 *   Og = output features of the group,
 *   P  = the patches of the input (im2col): P[m, k] is the input element the
 *        kernel tap k sees from output position m, or 0 in padding and in
 *        the holes of lhs dilation,
 *   B  = the kernel of the group as (K, Og).
 * The m axes are ordered as the output stores them and the k axes as the
 * input does, so for the usual layouts (NHWC/HWIO, and the transposed
 * convolutions JAX's transpose rules make of them) the product writes the
 * output in place and reads the kernel without packing. The patch matrix is
 * stored (M, K) or, when the input's innermost dimension runs along the m
 * axes (NCHW inputs, the kernel gradient of NHWC), transposed (K, M), so
 * that im2col copies contiguous runs of the input.
 *
 * M is cut into blocks of a size fixed by the shapes (not the thread
 * count); the pool runs (group, block) units, each filling its patch block
 * and multiplying it while it is in cache. Each output element is computed
 * by one GEMM call accumulating over all of K in a fixed order, so results
 * do not depend on the thread count. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cpu.h"

enum { AX_B, AX_F, AX_OS, AX_KS };

static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

bool ryc_conv_plan(const ry_graph *g, const ry_node *n, ryc_conv *c, const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  *why = NULL;
  if (n->op != RY_OP_CONVOLUTION) return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_type lt = ry_vtype(g, ops[0]), kt = ry_vtype(g, ops[1]), ot = ry_vtype(g, ry_node_results(g, n)[0]);
  if (lt.dtype != kt.dtype || lt.dtype != ot.dtype || (lt.dtype != RY_F32 && lt.dtype != RY_F64)) {
    *why = "the GEMM path takes f32/f64 operands and result of one dtype";
    return false;
  }
  const ry_conv_dims *d = &n->attrs.conv;
  int rank = lt.shape.rank, nsp = rank - 2;
  if (nsp < 0 || d->input_dims.n != rank || d->kernel_dims.n != rank || d->output_dims.n != rank ||
      d->stride.n != nsp || d->pad_low.n != nsp || d->lhs_dilation.n != nsp || d->rhs_dilation.n != nsp) {
    *why = "attributes not normalized";
    return false;
  }
  int64_t fgc = d->feature_groups, bgc = d->batch_groups;
  if (fgc > 1 && bgc > 1) {
    *why = "both feature and batch groups";
    return false;
  }
  memset(c, 0, sizeof *c);
  c->dt = lt.dtype;
  c->nsp = nsp;
  int64_t lst[RY_MAX_RANK], kst[RY_MAX_RANK], ost[RY_MAX_RANK];
  ry__strides(lt.shape, lst);
  ry__strides(kt.shape, kst);
  ry__strides(ot.shape, ost);
  const int64_t *in_d = d->input_dims.v, *k_d = d->kernel_dims.v, *out_d = d->output_dims.v;
  int64_t Bo = ot.shape.dims[out_d[0]], O = kt.shape.dims[k_d[0]], I = kt.shape.dims[k_d[1]];
  c->groups = fgc * bgc;
  c->Og = O / c->groups;
  c->in_goff = fgc > 1 ? I * lst[in_d[1]] : Bo * lst[in_d[0]];
  c->w_goff = c->Og * kst[k_d[0]];
  c->o_goff = c->Og * ost[out_d[1]];
  c->w_ost = kst[k_d[0]];
  c->o_fst = ost[out_d[1]];
  for (int k = 0; k < nsp; k++) {
    int64_t len = lt.shape.dims[in_d[2 + k]];
    c->lo[k] = d->pad_low.v[k];
    c->ld[k] = d->lhs_dilation.v[k];
    c->dil[k] = len ? (len - 1) * c->ld[k] + 1 : 0;
    c->sp_st[k] = lst[in_d[2 + k]];
  }
  /* m axes in output order, k axes in input order */
  for (int pos = 0; pos < rank; pos++) {
    for (int r = 0; r < rank; r++) {
      if (out_d[r] == pos && r != 1) {
        ryc_conv_axis *a = &c->m[c->n_m++];
        a->size = ot.shape.dims[pos];
        a->o_st = ost[pos];
        if (r == 0) {
          a->kind = AX_B;
          a->in_st = lst[in_d[0]];
        } else {
          a->kind = AX_OS;
          a->sp = r - 2;
          a->mul = d->stride.v[r - 2];
        }
      }
      if (in_d[r] == pos && r != 0) {
        ryc_conv_axis *a = &c->k[c->n_k++];
        if (r == 1) {
          a->kind = AX_F;
          a->size = I;
          a->in_st = lst[in_d[1]];
          a->w_st = kst[k_d[1]];
        } else {
          a->kind = AX_KS;
          a->sp = r - 2;
          a->size = kt.shape.dims[k_d[r]];
          a->mul = d->rhs_dilation.v[r - 2];
          a->w_st = kst[k_d[r]];
        }
      }
    }
  }
  c->M = 1;
  c->K = 1;
  for (int i = 0; i < c->n_m; i++) c->M *= c->m[i].size;
  for (int i = 0; i < c->n_k; i++) c->K *= c->k[i].size;
  /* patch orientation: transposed when the input's innermost dimension is
   * walked by the innermost m axis with unit steps */
  int inner = -1;
  for (int r = 0; r < rank; r++)
    if (in_d[r] == rank - 1) inner = r;
  const ryc_conv_axis *lm = &c->m[c->n_m - 1];
  if (inner == 0) c->kt = lm->kind == AX_B;
  else if (inner >= 2)
    c->kt = lm->kind == AX_OS && lm->sp == inner - 2 && lm->mul == 1 && c->ld[inner - 2] == 1;
  /* B straight from the kernel when it is (K, Og) or (Og, K) row-major */
  if (c->groups == 1) {
    bool kn = c->w_ost == 1 || O <= 1, nk = true;
    int64_t e1 = O, e2 = 1;
    for (int i = c->n_k - 1; i >= 0; i--) {
      if (c->k[i].size > 1) {
        kn = kn && c->k[i].w_st == e1;
        nk = nk && c->k[i].w_st == e2;
      }
      e1 *= c->k[i].size;
      e2 *= c->k[i].size;
    }
    nk = nk && (c->w_ost == c->K || O <= 1);
    c->b_mode = kn ? 1 : nk ? 2 : 0;
  }
  /* the product writes the output directly when the m axes then the
   * feature are the output's row-major order */
  if (c->groups == 1) {
    bool ok = c->o_fst == 1 || c->Og <= 1;
    int64_t e = c->Og;
    for (int i = c->n_m - 1; i >= 0; i--) {
      if (c->m[i].size > 1) ok = ok && c->m[i].o_st == e;
      e *= c->m[i].size;
    }
    c->direct = ok;
  }
  int64_t bm = 49152 / (c->K > 0 ? c->K : 1);
  bm = bm < 16 ? 16 : bm > 4096 ? 4096 : bm;
  c->bm = bm > c->M ? (c->M > 0 ? c->M : 1) : bm;
  return true;
}

/* ---- im2col ---- */

typedef struct {
  int64_t off;               /* input offset of the batch / feature parts */
  int64_t pos[RY_MAX_RANK];  /* position in the dilated, padded input */
} cstate;

static void add_axis(const ryc_conv_axis *a, int64_t v, cstate *s) {
  if (a->kind == AX_B || a->kind == AX_F) s->off += v * a->in_st;
  else s->pos[a->sp] += v * a->mul;
}

/* input offset of s ignoring spatial dim `skip`, or -1 in padding / holes */
static int64_t resolve(const ryc_conv *c, const cstate *s, int skip) {
  int64_t off = s->off;
  for (int k = 0; k < c->nsp; k++) {
    if (k == skip) continue;
    int64_t p = s->pos[k];
    if (p < 0 || p >= c->dil[k]) return -1;
    if (c->ld[k] > 1) {
      if (p % c->ld[k]) return -1;
      p /= c->ld[k];
    }
    off += p * c->sp_st[k];
  }
  return off;
}

#define DEFINE_RUN(NAME, T)                                                                                        \
  static void NAME(const ryc_conv *c, const T *x, T *dst, const ryc_conv_axis *a, int64_t v0, int64_t run,        \
                   const cstate *s) {                                                                              \
    if (a->kind == AX_B || a->kind == AX_F) {                                                                      \
      int64_t o = resolve(c, s, -1);                                                                               \
      if (o < 0) {                                                                                                 \
        for (int64_t i = 0; i < run; i++) dst[i] = 0;                                                              \
        return;                                                                                                    \
      }                                                                                                            \
      const T *src = x + o + v0 * a->in_st;                                                                        \
      if (a->in_st == 1) memcpy(dst, src, (size_t)run * sizeof(T));                                                \
      else                                                                                                         \
        for (int64_t i = 0; i < run; i++) dst[i] = src[i * a->in_st];                                              \
      return;                                                                                                      \
    }                                                                                                              \
    int k = a->sp;                                                                                                 \
    int64_t o = resolve(c, s, k);                                                                                  \
    if (o < 0) {                                                                                                   \
      for (int64_t i = 0; i < run; i++) dst[i] = 0;                                                                \
      return;                                                                                                      \
    }                                                                                                              \
    int64_t p = s->pos[k] + v0 * a->mul, ld = c->ld[k], dl = c->dil[k], st = c->sp_st[k];                          \
    if (ld == 1) {                                                                                                 \
      for (int64_t i = 0; i < run; i++, p += a->mul) dst[i] = p >= 0 && p < dl ? x[o + p * st] : (T)0;             \
    } else {                                                                                                       \
      for (int64_t i = 0; i < run; i++, p += a->mul)                                                               \
        dst[i] = p >= 0 && p < dl && p % ld == 0 ? x[o + p / ld * st] : (T)0;                                      \
    }                                                                                                              \
  }
DEFINE_RUN(run_f32, float)
DEFINE_RUN(run_f64, double)

/* fill dst[0 .. c1-c0) with the elements [c0, c1) of the row-major walk over
 * axes ax[0..n) starting from state base */
static void fill_line(const ryc_conv *c, const void *x, void *dst, const ryc_conv_axis *ax, int n, int64_t c0,
                      int64_t c1, const cstate *base) {
  size_t es = c->dt == RY_F64 ? 8 : 4;
  if (n == 0) {
    if (c1 > c0) {
      int64_t o = resolve(c, base, -1);
      if (o < 0) memset(dst, 0, es);
      else memcpy(dst, (const char *)x + (size_t)o * es, es);
    }
    return;
  }
  int64_t idx[RY_MAX_RANK], r = c0;
  for (int i = n - 1; i >= 0; i--) {
    idx[i] = r % ax[i].size;
    r /= ax[i].size;
  }
  char *out = dst;
  for (int64_t cur = c0; cur < c1;) {
    cstate s = *base;
    for (int i = 0; i < n - 1; i++) add_axis(&ax[i], idx[i], &s);
    int64_t run = imin(ax[n - 1].size - idx[n - 1], c1 - cur);
    if (c->dt == RY_F64) run_f64(c, x, (double *)(void *)out, &ax[n - 1], idx[n - 1], run, &s);
    else run_f32(c, x, (float *)(void *)out, &ax[n - 1], idx[n - 1], run, &s);
    out += (size_t)run * es;
    cur += run;
    idx[n - 1] = 0;
    for (int i = n - 2; i >= 0; i--) {
      if (++idx[i] < ax[i].size) break;
      idx[i] = 0;
    }
  }
}

/* state of linear index v over axes ax[0..n) added to s */
static void add_linear(const ryc_conv_axis *ax, int n, int64_t v, cstate *s) {
  for (int i = n - 1; i >= 0; i--) {
    add_axis(&ax[i], v % ax[i].size, s);
    v /= ax[i].size;
  }
}

/* ---- the run ---- */

typedef struct {
  const ryc_conv *c;
  const char *x, *w;
  char *out;
  const char *bpack;        /* packed kernels [groups][K][Og], or NULL */
  int64_t nblk;
  char *scratch;            /* one slot per task: patch block + C block */
  int64_t slot_bytes;
  atomic_int next_slot;
  int max_slots;
} conv_job;

static void gemm(const ryc_conv *c, int ta, int tb, int64_t m, const void *a, const void *b, void *out) {
  if (c->dt == RY_F64) ryc_dgemm(ta, tb, m, c->Og, c->K, a, b, out);
  else ryc_sgemm(ta, tb, m, c->Og, c->K, a, b, out);
}

static void conv_task(void *ctx, int64_t lo, int64_t hi) {
  conv_job *j = ctx;
  const ryc_conv *c = j->c;
  size_t es = c->dt == RY_F64 ? 8 : 4;
  int slot = atomic_fetch_add(&j->next_slot, 1);
  if (slot >= j->max_slots) slot = j->max_slots - 1; /* not reached: one call per pool thread */
  char *P = j->scratch + (size_t)slot * (size_t)j->slot_bytes;
  char *Cb = P + (size_t)(c->bm * c->K) * es;
  for (int64_t u = lo; u < hi; u++) {
    int64_t g = u / j->nblk, m0 = (u % j->nblk) * c->bm, m1 = imin(m0 + c->bm, c->M), bm = m1 - m0;
    cstate base;
    memset(&base, 0, sizeof base);
    base.off = g * c->in_goff;
    for (int k = 0; k < c->nsp; k++) base.pos[k] = -c->lo[k];
    if (c->K > 0) {
      if (!c->kt) {
        for (int64_t m = m0; m < m1; m++) {
          cstate s = base;
          add_linear(c->m, c->n_m, m, &s);
          fill_line(c, j->x, P + (size_t)((m - m0) * c->K) * es, c->k, c->n_k, 0, c->K, &s);
        }
      } else {
        for (int64_t kk = 0; kk < c->K; kk++) {
          cstate s = base;
          add_linear(c->k, c->n_k, kk, &s);
          fill_line(c, j->x, P + (size_t)(kk * bm) * es, c->m, c->n_m, m0, m1, &s);
        }
      }
    }
    const char *B = j->bpack ? j->bpack + (size_t)(g * c->K * c->Og) * es : j->w;
    int tb = j->bpack ? 0 : c->b_mode == 2;
    char *C = c->direct ? j->out + (size_t)(m0 * c->Og) * es : Cb;
    gemm(c, c->kt, tb, bm, P, B, C);
    if (c->direct) continue;
    for (int64_t m = m0; m < m1; m++) {
      int64_t off = g * c->o_goff, v = m;
      for (int i = c->n_m - 1; i >= 0; i--) {
        off += (v % c->m[i].size) * c->m[i].o_st;
        v /= c->m[i].size;
      }
      const char *row = C + (size_t)((m - m0) * c->Og) * es;
      if (es == 8)
        for (int64_t o = 0; o < c->Og; o++) ((double *)(void *)j->out)[off + o * c->o_fst] = ((const double *)(const void *)row)[o];
      else
        for (int64_t o = 0; o < c->Og; o++) ((float *)(void *)j->out)[off + o * c->o_fst] = ((const float *)(const void *)row)[o];
    }
  }
}

typedef struct {
  const ryc_conv *c;
  const char *w;
  char *bpack;
} pack_job;

/* rows [lo, hi) of (group, kk): bpack[g][kk][o] = w[g*Og + o, taps of kk] */
static void pack_task(void *ctx, int64_t lo, int64_t hi) {
  const pack_job *j = ctx;
  const ryc_conv *c = j->c;
  for (int64_t r = lo; r < hi; r++) {
    int64_t g = r / c->K, kk = r % c->K, off = g * c->w_goff, v = kk;
    for (int i = c->n_k - 1; i >= 0; i--) {
      off += (v % c->k[i].size) * c->k[i].w_st;
      v /= c->k[i].size;
    }
    if (c->dt == RY_F64) {
      double *dst = (double *)(void *)j->bpack + r * c->Og;
      const double *w = (const double *)(const void *)j->w;
      for (int64_t o = 0; o < c->Og; o++) dst[o] = w[off + o * c->w_ost];
    } else {
      float *dst = (float *)(void *)j->bpack + r * c->Og;
      const float *w = (const float *)(const void *)j->w;
      for (int64_t o = 0; o < c->Og; o++) dst[o] = w[off + o * c->w_ost];
    }
  }
}

ry_status ryc_conv_run(const ryc_conv *c, const void *x, const void *w, void *out) {
  size_t es = c->dt == RY_F64 ? 8 : 4;
  if (c->M <= 0 || c->Og <= 0) return NULL; /* an empty result */
  int64_t min_work = ryc_parallel_threshold();
  char *bpack = NULL;
  size_t bpack_bytes = 0;
  if (c->b_mode == 0 && c->K > 0) {
    bpack_bytes = (size_t)(c->groups * c->K * c->Og) * es;
    if (!(bpack = ry__malloc(bpack_bytes))) return ry__oom();
    pack_job pj = {c, w, bpack};
    int64_t rows = c->groups * c->K;
    ryc_parallel_for(rows, imin(rows, 1 + min_work / (c->Og > 0 ? c->Og : 1)), pack_task, &pj);
  }
  int64_t nblk = (c->M + c->bm - 1) / c->bm, units = c->groups * nblk;
  int max_slots = ryc_num_threads();
  if (max_slots < 1) max_slots = 1;
  int64_t slot_bytes = (c->bm * c->K + (c->direct ? 0 : c->bm * c->Og)) * (int64_t)es;
  slot_bytes = (slot_bytes + 63) / 64 * 64;
  size_t sbytes = (size_t)slot_bytes * (size_t)max_slots + 64;
  char *scratch = ry__malloc(sbytes);
  if (!scratch) {
    if (bpack) ry__free(bpack, bpack_bytes);
    return ry__oom();
  }
  conv_job j = {c, x, w, out, bpack, nblk, (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), slot_bytes, 0,
                max_slots};
  atomic_init(&j.next_slot, 0);
  /* one unit is a patch block and its product: split when the whole is big */
  int64_t work = c->groups * c->M * (c->K > 0 ? c->K : 1) * (c->Og > 0 ? c->Og : 1);
  ryc_parallel_for(units, work < min_work * 8 ? units : 1, conv_task, &j);
  ry__free(scratch, sbytes);
  if (bpack) ry__free(bpack, bpack_bytes);
  return NULL;
}

void ryc_conv_describe(const ryc_conv *c, ryc_buf *b) {
  static const char *const kn[] = {"b", "f", "o", "k"};
  ryc_printf(b, "groups=%" PRId64 " m=%" PRId64 " n=%" PRId64 " k=%" PRId64 " block=%" PRId64 " patches=%s kernel=%s out=%s m_axes=", c->groups,
             c->M, c->Og, c->K, c->bm, c->kt ? "(k,m)" : "(m,k)", c->b_mode == 1 ? "direct" : c->b_mode == 2 ? "direct-t" : "packed",
             c->direct ? "direct" : "scatter");
  for (int i = 0; i < c->n_m; i++) ryc_printf(b, "%s%s%d", i ? "," : "", kn[c->m[i].kind], c->m[i].kind >= AX_OS ? c->m[i].sp : 0);
  ryc_printf(b, " k_axes=");
  for (int i = 0; i < c->n_k; i++) ryc_printf(b, "%s%s%d", i ? "," : "", kn[c->k[i].kind], c->k[i].kind >= AX_OS ? c->k[i].sp : 0);
}
