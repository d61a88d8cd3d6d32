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

#include "../../core/internal.h"
#include "conv.h"
#include "gemm.h"
#include "pool.h"

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
  /* contiguous runs: the innermost axis of a patch row read with unit stride */
  c->run = 1;
  if (!c->kt && c->n_k && c->k[c->n_k - 1].kind == AX_F && c->k[c->n_k - 1].in_st == 1) c->run = c->k[c->n_k - 1].size;
  if (c->kt && c->m[c->n_m - 1].kind == AX_B && c->m[c->n_m - 1].in_st == 1 && c->m[c->n_m - 1].size <= RYC_CONV_BM_MAX)
    c->run = c->m[c->n_m - 1].size;
  if (c->run < 1) c->run = 1;
  /* blocks of about 128K patch elements, a whole number of runs (fixed by
   * the shapes, never by the thread count) */
  int64_t bm = 131072 / (c->K > 0 ? c->K : 1);
  bm = bm < 16 ? 16 : bm > RYC_CONV_BM_MAX ? RYC_CONV_BM_MAX : bm;
  if (c->kt && c->run > 1) bm = bm < c->run ? c->run : bm / c->run * c->run;
  c->bm = bm > c->M ? (c->M > 0 ? c->M : 1) : bm;
  /* few blocks and a long K (the kernel gradient): split K in chunks whose
   * partial products are summed in chunk order */
  int64_t nblk = (c->M + c->bm - 1) / c->bm;
  c->ksplit = 1;
  c->kc = c->K;
  if (c->groups * nblk < 8 && c->K >= 8192) {
    int64_t S = c->K / 4096 < 16 ? c->K / 4096 : 16;
    int64_t kc = (c->K + S - 1) / S, r = c->kt ? 1 : c->run;
    kc = (kc + r - 1) / r * r;
    c->kc = kc;
    c->ksplit = (c->K + kc - 1) / kc;
    if (c->ksplit > 1 && c->b_mode == 2) c->b_mode = 0;
  }
  /* very few output features: C^T = B^T P^T keeps the GEMM's register
   * block busy (measured: no gain at 8 or 16 features, where packing the
   * transposed patches costs what the idle lanes do) */
  c->swap = c->Og <= 4 && c->bm >= 48;
  return true;
}

/* ---- im2col over offset tables ----
 * The input element of patch (m, kk) sits at position
 *   p_k = mp_k[m] + kp_k[kk] - lo_k   in each dilated, padded spatial dim k
 * (mp: output position * stride, kp: tap * rhs dilation) and offset
 *   mb[m] + kb[kk] + sum_k (p_k / ld_k) * sp_st_k   when every p_k is inside
 * [0, dil_k) and a multiple of ld_k, else the element is 0. The k tables
 * are built once per run, the m tables per block. Without lhs dilation the
 * offset is moff[m] + koff[kk] - lo_off, and a row whose taps all fall
 * inside is a plain gather (or copies of contiguous runs). */

typedef struct {
  int64_t *kb, *kp[RY_MAX_RANK], *koff; /* [K] */
  int64_t kpmin[RY_MAX_RANK], kpmax[RY_MAX_RANK];
  int64_t lo_off;                       /* sum_k lo_k * sp_st_k */
  bool no_ld;                           /* no lhs dilation */
} ktables;

typedef struct {
  int64_t mb[RYC_CONV_BM_MAX], mp[RY_MAX_RANK][RYC_CONV_BM_MAX], moff[RYC_CONV_BM_MAX];
  int64_t mpmin[RY_MAX_RANK], mpmax[RY_MAX_RANK];
} mtables;

/* tables of linear index range [i0, i1) over axes ax[0..n): base (batch /
 * feature part) and per-spatial position parts */
static void axis_tables(const ryc_conv *c, const ryc_conv_axis *ax, int n, int64_t i0, int64_t i1, int64_t *base,
                        int64_t *const *pos, int64_t *pmin, int64_t *pmax) {
  for (int k = 0; k < c->nsp; k++) {
    pmin[k] = INT64_MAX;
    pmax[k] = INT64_MIN;
  }
  if (i1 <= i0) return;
  /* an odometer from i0: the index along each axis, and the parts it adds */
  int64_t idx[RY_MAX_RANK], v = i0, b = 0, ps[RY_MAX_RANK] = {0};
  for (int a = n - 1; a >= 0; a--) {
    idx[a] = v % ax[a].size;
    v /= ax[a].size;
    if (ax[a].kind == AX_B || ax[a].kind == AX_F) b += idx[a] * ax[a].in_st;
    else ps[ax[a].sp] += idx[a] * ax[a].mul;
  }
  for (int64_t i = i0; i < i1; i++) {
    base[i - i0] = b;
    for (int k = 0; k < c->nsp; k++) {
      pos[k][i - i0] = ps[k];
      if (ps[k] < pmin[k]) pmin[k] = ps[k];
      if (ps[k] > pmax[k]) pmax[k] = ps[k];
    }
    for (int a = n - 1; a >= 0; a--) {
      bool bf = ax[a].kind == AX_B || ax[a].kind == AX_F;
      if (++idx[a] < ax[a].size) {
        if (bf) b += ax[a].in_st;
        else ps[ax[a].sp] += ax[a].mul;
        break;
      }
      if (bf) b -= (ax[a].size - 1) * ax[a].in_st;
      else ps[ax[a].sp] -= (ax[a].size - 1) * ax[a].mul;
      idx[a] = 0;
    }
  }
}

/* the input offset of patch (m, kk) in general (lhs dilation), or -1 */
static int64_t patch_off(const ryc_conv *c, const ktables *kt, const mtables *mt, int64_t m, int64_t kk) {
  int64_t off = mt->mb[m] + kt->kb[kk];
  for (int k = 0; k < c->nsp; k++) {
    int64_t p = mt->mp[k][m] + kt->kp[k][kk] - c->lo[k];
    if (p < 0 || p >= c->dil[k]) return -1;
    if (c->ld[k] > 1) {
      if (p % c->ld[k]) return -1;
      p /= c->ld[k];
    }
    off += p * c->sp_st[k];
  }
  return off;
}

/* without lhs dilation: is the tap at positions q_k + kp_k[kk] inside */
static inline bool inside(const ryc_conv *c, const int64_t *q, int64_t *const *pos, int64_t i) {
  for (int k = 0; k < c->nsp; k++)
    if ((uint64_t)(q[k] + pos[k][i]) >= (uint64_t)c->dil[k]) return false;
  return true;
}

/* are the positions q_k + [pmin_k, pmax_k] all inside */
static bool range_inside(const ryc_conv *c, const int64_t *q, const int64_t *pmin, const int64_t *pmax) {
  for (int k = 0; k < c->nsp; k++)
    if (q[k] + pmin[k] < 0 || q[k] + pmax[k] >= c->dil[k]) return false;
  return true;
}

/* Fill the patch block: m in [0, bm) of the block, kk in [k0, k1); stored
 * (bm, k1-k0) or, transposed, (k1-k0, bm). */
#define DEFINE_FILL(NAME, T)                                                                                       \
  static void NAME(const ryc_conv *c, const ktables *kt, const mtables *mt, const T *x, T *P, int64_t bm,          \
                   int64_t k0, int64_t k1) {                                                                       \
    int64_t kc = k1 - k0, R = c->run;                                                                              \
    int64_t *mp[RY_MAX_RANK];                                                                                      \
    for (int k = 0; k < c->nsp; k++) mp[k] = (int64_t *)mt->mp[k];                                                 \
    int64_t q[RY_MAX_RANK];                                                                                        \
    if (!c->kt) {                                                                                                  \
      for (int64_t m = 0; m < bm; m++) {                                                                           \
        T *restrict row = P + m * kc;                                                                               \
        if (!kt->no_ld) {                                                                                          \
          for (int64_t kk = k0; kk < k1; kk++) {                                                                   \
            int64_t o = patch_off(c, kt, mt, m, kk);                                                               \
            row[kk - k0] = o < 0 ? (T)0 : x[o];                                                                         \
          }                                                                                                        \
          continue;                                                                                                \
        }                                                                                                          \
        int64_t b0 = mt->moff[m] - kt->lo_off;                                                                     \
        const int64_t *restrict ko = kt->koff;                                                                     \
        for (int k = 0; k < c->nsp; k++) q[k] = mt->mp[k][m] - c->lo[k];                                           \
        bool all = range_inside(c, q, kt->kpmin, kt->kpmax);                                                       \
        if (R >= 4) {                                                                                              \
          for (int64_t kk = k0; kk < k1; kk += R) {                                                                \
            if (all || inside(c, q, kt->kp, kk)) memcpy(row + (kk - k0), x + b0 + ko[kk], (size_t)R * sizeof(T));         \
            else memset(row + (kk - k0), 0, (size_t)R * sizeof(T));                                                       \
          }                                                                                                        \
        } else if (all) {                                                                                          \
          for (int64_t kk = k0; kk < k1; kk++) row[kk - k0] = x[b0 + ko[kk]];                                           \
        } else {                                                                                                   \
          for (int64_t kk = k0; kk < k1; kk++) row[kk - k0] = inside(c, q, kt->kp, kk) ? x[b0 + ko[kk]] : (T)0;    \
        }                                                                                                          \
      }                                                                                                            \
    } else {                                                                                                       \
      for (int64_t kk = k0; kk < k1; kk++) {                                                                       \
        T *restrict row = P + (kk - k0) * bm;                                                                      \
        if (!kt->no_ld) {                                                                                          \
          for (int64_t m = 0; m < bm; m++) {                                                                       \
            int64_t o = patch_off(c, kt, mt, m, kk);                                                               \
            row[m] = o < 0 ? (T)0 : x[o];                                                                          \
          }                                                                                                        \
          continue;                                                                                                \
        }                                                                                                          \
        int64_t b0 = kt->koff[kk] - kt->lo_off;                                                                    \
        const int64_t *restrict mo = mt->moff;                                                                     \
        for (int k = 0; k < c->nsp; k++) q[k] = kt->kp[k][kk] - c->lo[k];                                          \
        bool all = range_inside(c, q, mt->mpmin, mt->mpmax);                                                       \
        if (R >= 4) {                                                                                              \
          for (int64_t m = 0; m < bm; m += R) {                                                                    \
            if (all || inside(c, q, mp, m)) memcpy(row + m, x + b0 + mo[m], (size_t)R * sizeof(T));                \
            else memset(row + m, 0, (size_t)R * sizeof(T));                                                        \
          }                                                                                                        \
        } else if (all) {                                                                                          \
          for (int64_t m = 0; m < bm; m++) row[m] = x[b0 + mo[m]];                                                 \
        } else {                                                                                                   \
          for (int64_t m = 0; m < bm; m++) row[m] = inside(c, q, mp, m) ? x[b0 + mo[m]] : (T)0;                    \
        }                                                                                                          \
      }                                                                                                            \
    }                                                                                                              \
  }
DEFINE_FILL(fill_f32, float)
DEFINE_FILL(fill_f64, double)

/* ---- the run ---- */

typedef struct {
  const ryc_conv *c;
  const ktables *kt;
  const char *x, *w;
  char *out;
  const char *bpack;        /* packed kernels [groups][K][Og], or NULL */
  char *part;               /* ksplit > 1: partial products [ksplit][groups][M][Og] */
  int64_t nblk;
  char *scratch;            /* one slot per task: m tables, patch block, C blocks */
  int64_t slot_bytes;
  atomic_int next_slot;
  int max_slots;
} conv_job;

static void gemm(const ryc_conv *c, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a, const void *b,
                 void *out) {
  if (c->dt == RY_F64) ryc_dgemm(ta, tb, m, n, k, a, b, out);
  else ryc_sgemm(ta, tb, m, n, k, a, b, out);
}

/* output offset of row m of group g (not direct) */
static int64_t out_row(const ryc_conv *c, int64_t g, int64_t m) {
  int64_t off = g * c->o_goff;
  for (int i = c->n_m - 1; i >= 0; i--) {
    off += (m % c->m[i].size) * c->m[i].o_st;
    m /= c->m[i].size;
  }
  return off;
}

/* write the block R(m, o) = r[m * rs_m + o * rs_o] of rows [m0, m0+bm) */
#define DEFINE_EMIT(NAME, T)                                                                                       \
  static void NAME(const ryc_conv *c, T *out, int64_t g, int64_t m0, int64_t bm, const T *r, int64_t rs_m,         \
                   int64_t rs_o) {                                                                                 \
    for (int64_t m = 0; m < bm; m++) {                                                                             \
      const T *src = r + m * rs_m;                                                                                 \
      if (c->direct) {                                                                                             \
        T *dst = out + (m0 + m) * c->Og;                                                                           \
        for (int64_t o = 0; o < c->Og; o++) dst[o] = src[o * rs_o];                                                \
      } else {                                                                                                     \
        T *dst = out + out_row(c, g, m0 + m);                                                                      \
        for (int64_t o = 0; o < c->Og; o++) dst[o * c->o_fst] = src[o * rs_o];                                     \
      }                                                                                                            \
    }                                                                                                              \
  }
DEFINE_EMIT(emit_f32, float)
DEFINE_EMIT(emit_f64, double)

static void emit(const ryc_conv *c, void *out, int64_t g, int64_t m0, int64_t bm, const void *r, int64_t rs_m,
                 int64_t rs_o) {
  if (c->dt == RY_F64) emit_f64(c, out, g, m0, bm, r, rs_m, rs_o);
  else emit_f32(c, out, g, m0, bm, r, rs_m, rs_o);
}

static void conv_task(void *ctx, int64_t lo, int64_t hi) {
  conv_job *j = ctx;
  const ryc_conv *c = j->c;
  size_t es = c->dt == RY_F64 ? 8 : 4;
  int slot = atomic_fetch_add(&j->next_slot, 1);
  if (slot >= j->max_slots) slot = j->max_slots - 1; /* not reached: at most max_slots chunks */
  mtables *mt = (mtables *)(void *)(j->scratch + (size_t)slot * (size_t)j->slot_bytes);
  char *P = (char *)(mt + 1);
  char *Cb = P + (size_t)(c->bm * c->kc) * es;
  int64_t cur_blk = -1;
  for (int64_t u = lo; u < hi; u++) {
    int64_t s = u % c->ksplit, blk = (u / c->ksplit) % j->nblk, g = u / c->ksplit / j->nblk;
    int64_t m0 = blk * c->bm, bm = imin(m0 + c->bm, c->M) - m0;
    int64_t k0 = s * c->kc, k1 = imin(k0 + c->kc, c->K), kc = k1 - k0;
    if (blk != cur_blk) {
      int64_t *mp[RY_MAX_RANK];
      for (int k = 0; k < RY_MAX_RANK; k++) mp[k] = mt->mp[k];
      axis_tables(c, c->m, c->n_m, m0, m0 + bm, mt->mb, mp, mt->mpmin, mt->mpmax);
      for (int64_t m = 0; m < bm; m++) {
        int64_t o = mt->mb[m];
        for (int k = 0; k < c->nsp; k++) o += mt->mp[k][m] * c->sp_st[k];
        mt->moff[m] = o;
      }
      cur_blk = blk;
    }
    /* group offset of the input, applied through x */
    const char *x = j->x + (size_t)(g * c->in_goff) * es;
    if (kc > 0) {
      if (c->dt == RY_F64) fill_f64(c, j->kt, mt, (const double *)(const void *)x, (double *)(void *)P, bm, k0, k1);
      else fill_f32(c, j->kt, mt, (const float *)(const void *)x, (float *)(void *)P, bm, k0, k1);
    }
    /* B rows [k0, k1) of group g */
    const char *B = j->bpack ? j->bpack + (size_t)((g * c->K + k0) * c->Og) * es
                    : j->w + (size_t)(k0 * c->Og) * es; /* b_mode 2 never splits K */
    int b_kn = j->bpack || c->b_mode == 1; /* B stored (K, Og) */
    /* where C (bm, Og) goes: a partial, the output, or a block to scatter */
    char *dst = j->part ? j->part + (size_t)(((s * c->groups + g) * c->M + m0) * c->Og) * es
                : c->direct ? j->out + (size_t)(m0 * c->Og) * es
                            : Cb;
    if (!c->swap) {
      gemm(c, c->kt, !b_kn, bm, c->Og, kc, P, B, dst);
    } else {
      /* C^T (Og, bm) = B^T (Og, kc) P^T (kc, bm) */
      char *Ct = Cb + (size_t)(c->bm * c->Og) * es;
      gemm(c, b_kn, !c->kt, c->Og, bm, kc, B, P, Ct);
      if (j->part || c->direct) {
        ryc_conv plain = *c;
        plain.direct = 1;
        emit(&plain, dst, 0, 0, bm, Ct, 1, bm);
        continue;
      }
      emit(c, j->out, g, m0, bm, Ct, 1, bm);
      continue;
    }
    if (!j->part && !c->direct) emit(c, j->out, g, m0, bm, Cb, c->Og, 1);
  }
}

typedef struct {
  const ryc_conv *c;
  const char *part;
  char *out;
} sum_job;

/* row r = (group, m): the ksplit partials summed in chunk order, written
 * out as emit_* does for a block */
#define DEFINE_SUM_ROW(NAME, T, EMIT)                                                                              \
  static void NAME(const sum_job *j, int64_t r) {                                                                 \
    const ryc_conv *c = j->c;                                                                                    \
    int64_t stride = c->groups * c->M * c->Og; /* between chunks */                                              \
    int64_t g = r / c->M, m = r % c->M;                                                                          \
    const T *p = (const T *)(const void *)j->part + r * c->Og;                                                   \
    T acc[64];                                                                                                   \
    for (int64_t o0 = 0; o0 < c->Og; o0 += 64) {                                                                 \
      int64_t n = imin(64, c->Og - o0);                                                                          \
      for (int64_t o = 0; o < n; o++) acc[o] = p[o0 + o];                                                        \
      for (int64_t s = 1; s < c->ksplit; s++)                                                                    \
        for (int64_t o = 0; o < n; o++) acc[o] += p[s * stride + o0 + o];                                        \
      ryc_conv sub = *c;                                                                                         \
      sub.Og = n;                                                                                                \
      T *out = (T *)(void *)j->out + o0 * (c->direct ? 1 : c->o_fst);                                            \
      if (c->direct)                                                                                             \
        for (int64_t o = 0; o < n; o++) out[m * c->Og + o] = acc[o];                                             \
      else                                                                                                       \
        EMIT(&sub, out, g, m, 1, acc, 0, 1);                                                                     \
    }                                                                                                            \
  }
DEFINE_SUM_ROW(sum_row_f32, float, emit_f32)
DEFINE_SUM_ROW(sum_row_f64, double, emit_f64)

/* rows [lo, hi) of (group, m) */
static void sum_task(void *ctx, int64_t lo, int64_t hi) {
  const sum_job *j = ctx;
  for (int64_t r = lo; r < hi; r++) {
    if (j->c->dt == RY_F64) sum_row_f64(j, r);
    else sum_row_f32(j, r);
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
  int64_t K1 = c->K > 0 ? c->K : 1;
  /* k tables */
  ktables kt;
  memset(&kt, 0, sizeof kt);
  size_t kbytes = (size_t)K1 * sizeof(int64_t) * (size_t)(2 + c->nsp);
  int64_t *kmem = ry__malloc(kbytes);
  size_t bpack_bytes = c->b_mode == 0 && c->K > 0 ? (size_t)(c->groups * c->K * c->Og) * es : 0;
  /* scratch through the array-buffer cache: the same sizes come every step */
  char *bpack = bpack_bytes ? ry__data_alloc(bpack_bytes) : NULL;
  size_t part_bytes = c->ksplit > 1 ? (size_t)(c->ksplit * c->groups * c->M * c->Og) * es : 0;
  char *part = part_bytes ? ry__data_alloc(part_bytes) : NULL;
  int max_slots = ryc_num_threads();
  if (max_slots < 1) max_slots = 1;
  int64_t slot_bytes = (int64_t)sizeof(mtables) + (c->bm * c->kc + 2 * c->bm * c->Og) * (int64_t)es;
  slot_bytes = (slot_bytes + 63) / 64 * 64;
  size_t sbytes = (size_t)slot_bytes * (size_t)max_slots + 64;
  char *scratch = ry__data_alloc(sbytes);
  ry_status st = NULL;
  if (!kmem || (bpack_bytes && !bpack) || (part_bytes && !part) || !scratch) {
    st = ry__oom();
    goto done;
  }
  kt.kb = kmem;
  kt.koff = kmem + K1;
  for (int k = 0; k < c->nsp; k++) kt.kp[k] = kmem + (size_t)(2 + k) * (size_t)K1;
  axis_tables(c, c->k, c->n_k, 0, c->K, kt.kb, kt.kp, kt.kpmin, kt.kpmax);
  kt.no_ld = true;
  for (int k = 0; k < c->nsp; k++) {
    kt.no_ld = kt.no_ld && c->ld[k] == 1;
    kt.lo_off += c->lo[k] * c->sp_st[k];
  }
  for (int64_t kk = 0; kk < c->K; kk++) {
    int64_t o = kt.kb[kk];
    for (int k = 0; k < c->nsp; k++) o += kt.kp[k][kk] * c->sp_st[k];
    kt.koff[kk] = o;
  }
  if (bpack) {
    pack_job pj = {c, w, bpack};
    int64_t rows = c->groups * c->K;
    ryc_parallel_for(rows, imin(rows, 1 + min_work / (c->Og > 0 ? c->Og : 1)), pack_task, &pj);
  }
  {
    int64_t nblk = (c->M + c->bm - 1) / c->bm, units = c->groups * nblk * c->ksplit;
    conv_job j = {c, &kt, x, w, out, bpack, part, nblk, (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63),
                  slot_bytes, 0, max_slots};
    atomic_init(&j.next_slot, 0);
    /* one unit is a patch block and its product: split when the whole is
     * big, in at most max_slots chunks (one scratch slot each) */
    int64_t work = c->groups * c->M * K1 * c->Og;
    ryc_parallel_for(units, work < min_work * 8 ? units : (units + max_slots - 1) / max_slots, conv_task, &j);
  }
  if (part) {
    sum_job sj = {c, part, out};
    int64_t rows = c->groups * c->M;
    ryc_parallel_for(rows, imin(rows, 1 + min_work / (c->Og * c->ksplit)), sum_task, &sj);
  }
done:
  ry__data_free(scratch, sbytes);
  ry__data_free(part, part_bytes);
  ry__data_free(bpack, bpack_bytes);
  ry__free(kmem, kbytes);
  return st;
}

void ryc_conv_describe(const ryc_conv *c, ry__buf *b) {
  static const char *const kn[] = {"b", "f", "o", "k"};
  ry__buf_printf(b, "groups=%" PRId64 " m=%" PRId64 " n=%" PRId64 " k=%" PRId64 " block=%" PRId64 " k_chunks=%" PRId64 " run=%" PRId64
             " patches=%s kernel=%s out=%s%s m_axes=", c->groups, c->M, c->Og, c->K, c->bm, c->ksplit, c->run, c->kt ? "(k,m)" : "(m,k)",
             c->b_mode == 1 ? "direct" : c->b_mode == 2 ? "direct-t" : "packed", c->direct ? "direct" : "scatter", c->swap ? " swapped" : "");
  for (int i = 0; i < c->n_m; i++) ry__buf_printf(b, "%s%s%d", i ? "," : "", kn[c->m[i].kind], c->m[i].kind >= AX_OS ? c->m[i].sp : 0);
  ry__buf_printf(b, " k_axes=");
  for (int i = 0; i < c->n_k; i++) ry__buf_printf(b, "%s%s%d", i ? "," : "", kn[c->k[i].kind], c->k[i].kind >= AX_OS ? c->k[i].sp : 0);
}
