/* Reductions and scans: reduce, argmax/argmin, cumulative; windowed:
 * reduce_window, select_and_scatter, select_and_gather.
 *
 * Float sums and products accumulate in double and round once when stored
 * (the reference answer, not XLA's summation order); integers wrap in uint64
 * and are truncated to their width on store; max/min propagate NaN. */
#include <math.h>

#include "interp.h"

typedef struct {
  ry_reduce_kind kind;
  bool is_float;
  ry_dtype t;
} red;

static double f_identity(ry_reduce_kind k) {
  switch (k) {
  case RY_SUM: return 0;
  case RY_PROD: return 1;
  case RY_MAX: return -INFINITY;
  case RY_MIN: return INFINITY;
  default: return 0;
  }
}

/* lowest/highest value of an integer dtype */
static int64_t i_lowest(ry_dtype t) {
  if (!ry_dtype_is_signed(t)) return 0;
  return ryx_sext(UINT64_C(1) << (ryi_bits(t) - 1), ryi_bits(t));
}
static int64_t i_highest(ry_dtype t) {
  if (t == RY_BOOL) return 1;
  int bits = ryi_bits(t);
  if (ry_dtype_is_signed(t)) return (int64_t)((UINT64_C(1) << (bits - 1)) - 1);
  return (int64_t)ryx_zext(~UINT64_C(0), bits);
}

static int64_t i_identity(ry_reduce_kind k, ry_dtype t) {
  switch (k) {
  case RY_SUM: return 0;
  case RY_PROD: return 1;
  case RY_MAX: return i_lowest(t);
  case RY_MIN: return i_highest(t);
  case RY_AND: return t == RY_BOOL ? 1 : -1;
  case RY_OR: return 0;
  default: return 0;
  }
}

static double f_step(ry_reduce_kind k, double acc, double v) {
  switch (k) {
  case RY_SUM: return acc + v;
  case RY_PROD: return acc * v;
  case RY_MAX: return ryx_fmax(acc, v);
  case RY_MIN: return ryx_fmin(acc, v);
  default: return NAN;
  }
}

static int64_t i_step(ry_reduce_kind k, ry_dtype t, int64_t acc, int64_t v) {
  if (t == RY_BOOL) { /* sum = or, prod = and on bool */
    if (k == RY_SUM) k = RY_OR;
    if (k == RY_PROD) k = RY_AND;
  }
  switch (k) {
  case RY_SUM: return (int64_t)((uint64_t)acc + (uint64_t)v);
  case RY_PROD: return (int64_t)((uint64_t)acc * (uint64_t)v);
  case RY_MAX: return ryi_ikey(t, acc) > ryi_ikey(t, v) ? acc : v;
  case RY_MIN: return ryi_ikey(t, acc) < ryi_ikey(t, v) ? acc : v;
  case RY_AND: return (int64_t)((uint64_t)acc & (uint64_t)v);
  case RY_OR: return (int64_t)((uint64_t)acc | (uint64_t)v);
  default: return 0;
  }
}

/* The fold of ryx_fmax (ryx_fmin) over row[0..len) from -inf (inf): the
 * first NaN if there is one, else the largest (smallest) value, +0 (-0)
 * where it is a zero of either sign. ryx_fmax is commutative and
 * associative, so a branch-free pass gives the sequential fold's value. */
static double row_extreme(const float *row, int64_t len, bool is_max) {
  if (len == 0) return is_max ? -INFINITY : INFINITY;
  float m = row[0];
  int nan = 0;
  if (is_max)
    for (int64_t i = 0; i < len; i++) {
      nan |= row[i] != row[i];
      m = row[i] > m ? row[i] : m;
    }
  else
    for (int64_t i = 0; i < len; i++) {
      nan |= row[i] != row[i];
      m = row[i] < m ? row[i] : m;
    }
  double a = is_max ? -INFINITY : INFINITY;
  if (nan || m == 0.0f) /* rare: the sequential fold decides NaN and the sign of zero */
    for (int64_t i = 0; i < len; i++) a = is_max ? ryx_fmax(a, (double)row[i]) : ryx_fmin(a, (double)row[i]);
  else
    a = (double)m;
  return a;
}

ry_status ryi_reduce(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  ry_dtype t = x->type.dtype;
  ry_reduce_kind kind = n->attrs.reduce.kind;
  const ry_axes *axes = &n->attrs.reduce.axes;
  bool is_float = ry_dtype_is_float(t);
  if ((int)kind < 0 || kind >= RY_REDUCE_COUNT) return ry__err(RY_ERR_VERIFY, "unknown reduction kind %d", (int)kind);
  if (is_float && (kind == RY_AND || kind == RY_OR))
    return ry__err(RY_ERR_DTYPE, "reduction '%s' is not defined for %s", ryg_reduce_names[kind], ry_dtype_name(t));
  const ry_shape *xs = &x->type.shape;
  bool reduced[RY_MAX_RANK] = {false};
  for (int i = 0; i < axes->n; i++) {
    if (axes->v[i] < 0 || axes->v[i] >= xs->rank) return ry__err(RY_ERR_VERIFY, "axis %lld out of range", (long long)axes->v[i]);
    reduced[axes->v[i]] = true;
  }
  ry_array *o;
  ry_status s = ryi_new_result_uninit(f, n, 0, &o);
  if (s) return s;
  int64_t onum = ry_shape_numel(o->type.shape);
  /* stride in the result for each operand dim (0 for reduced dims) */
  int64_t ost[RY_MAX_RANK], st = 1;
  for (int d = xs->rank - 1; d >= 0; d--) {
    ost[d] = reduced[d] ? 0 : st;
    if (!reduced[d]) st *= xs->dims[d];
  }
  size_t asize = (size_t)(onum ? onum : 1) * sizeof(double);
  void *acc = ry__malloc(asize); /* double or int64 accumulators */
  if (!acc) {
    ry_array_release(o);
    return ry__oom();
  }
  double *fa = acc;
  int64_t *ia = acc;
  for (int64_t j = 0; j < onum; j++) {
    if (is_float) fa[j] = f_identity(kind);
    else ia[j] = i_identity(kind, t);
  }
  int64_t xnum = ry_shape_numel(*xs), idx[RY_MAX_RANK] = {0};
  /* f32: the operand's rows (its last dim) in order, each with a plain
   * loop: a reduced last dim folds the row into one result, a kept one
   * folds it into a run of results. Every result sees its elements in the
   * order of the general loop below, so the values are the same. */
  if (t == RY_F32 && xs->rank > 0 && onum > 0 && xnum > 0) {
    int last = xs->rank - 1;
    int64_t len = xs->dims[last], idx2[RY_MAX_RANK] = {0};
    ry_shape rows = *xs;
    rows.rank = last;
    const float *row = x->data;
    for (int64_t r = 0; r < xnum; r += len, row += len, ryi_next(idx2, &rows)) {
      int64_t j = 0;
      for (int d = 0; d < last; d++) j += idx2[d] * ost[d];
      if (reduced[last]) {
        double a = fa[j];
        switch (kind) {
        case RY_SUM: for (int64_t i = 0; i < len; i++) a += (double)row[i]; break;
        case RY_MAX: a = ryx_fmax(a, row_extreme(row, len, true)); break;
        case RY_MIN: a = ryx_fmin(a, row_extreme(row, len, false)); break;
        default: for (int64_t i = 0; i < len; i++) a = f_step(kind, a, (double)row[i]); break;
        }
        fa[j] = a;
      } else {
        double *run = fa + j; /* ost[last] == 1 */
        switch (kind) {
        case RY_SUM: for (int64_t i = 0; i < len; i++) run[i] += (double)row[i]; break;
        case RY_MAX: for (int64_t i = 0; i < len; i++) run[i] = ryx_fmax(run[i], (double)row[i]); break;
        case RY_MIN: for (int64_t i = 0; i < len; i++) run[i] = ryx_fmin(run[i], (double)row[i]); break;
        default: for (int64_t i = 0; i < len; i++) run[i] = f_step(kind, run[i], (double)row[i]); break;
        }
      }
    }
    xnum = 0; /* done */
  }
  for (int64_t i = 0; i < xnum; i++, ryi_next(idx, xs)) {
    int64_t j = 0;
    for (int d = 0; d < xs->rank; d++) j += idx[d] * ost[d];
    if (is_float) fa[j] = f_step(kind, fa[j], ry__load_f64(t, x->data, i));
    else ia[j] = i_step(kind, t, ia[j], ry__load_i64(t, x->data, i));
  }
  for (int64_t j = 0; j < onum; j++) {
    if (is_float) ryi_store_f64(t, o->data, j, fa[j]);
    else ry__store_i64(t, o->data, j, ia[j]);
  }
  ry__free(acc, asize);
  out[0] = o;
  return NULL;
}

/* argmax / argmin along one axis: first index on ties, the first NaN wins. */
ry_status ryi_argmax(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  ry_dtype t = x->type.dtype;
  const ry_shape *xs = &x->type.shape;
  int64_t axis = n->attrs.arg.axis;
  if (axis < 0 || axis >= xs->rank) return ry__err(RY_ERR_VERIFY, "axis %lld out of range", (long long)axis);
  bool is_max = n->op == RY_OP_ARGMAX, is_float = ry_dtype_is_float(t);
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  int64_t len = xs->dims[axis], inner = 1, outer = 1;
  for (int d = 0; d < axis; d++) outer *= xs->dims[d];
  for (int d = (int)axis + 1; d < xs->rank; d++) inner *= xs->dims[d];
  for (int64_t a = 0; a < outer; a++)
    for (int64_t b = 0; b < inner; b++) {
      int64_t base = a * len * inner + b, best = 0;
      if (is_float) {
        double bv = len ? ry__load_f64(t, x->data, base) : 0;
        for (int64_t k = 1; k < len && !isnan(bv); k++) {
          double v = ry__load_f64(t, x->data, base + k * inner);
          if (isnan(v) || (is_max ? v > bv : v < bv)) {
            bv = v;
            best = k;
          }
        }
      } else {
        int64_t bv = len ? ryi_ikey(t, ry__load_i64(t, x->data, base)) : 0;
        for (int64_t k = 1; k < len; k++) {
          int64_t v = ryi_ikey(t, ry__load_i64(t, x->data, base + k * inner));
          if (is_max ? v > bv : v < bv) {
            bv = v;
            best = k;
          }
        }
      }
      ry__store_i64(o->type.dtype, o->data, a * inner + b, best);
    }
  out[0] = o;
  return NULL;
}

ry_status ryi_cumulative(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  ry_dtype t = x->type.dtype;
  const ry_shape *xs = &x->type.shape;
  int64_t axis = n->attrs.cumulative.axis;
  ry_reduce_kind kind = n->attrs.cumulative.kind;
  bool reverse = n->attrs.cumulative.reverse, is_float = ry_dtype_is_float(t);
  if (axis < 0 || axis >= xs->rank) return ry__err(RY_ERR_VERIFY, "axis %lld out of range", (long long)axis);
  if (kind != RY_SUM && kind != RY_PROD && kind != RY_MAX && kind != RY_MIN)
    return ry__err(RY_ERR_VERIFY, "cumulative kind must be sum, prod, max or min");
  ry_array *o;
  ry_status s = ryi_new_result(f, n, 0, &o);
  if (s) return s;
  int64_t len = xs->dims[axis], inner = 1, outer = 1;
  for (int d = 0; d < axis; d++) outer *= xs->dims[d];
  for (int d = (int)axis + 1; d < xs->rank; d++) inner *= xs->dims[d];
  for (int64_t a = 0; a < outer; a++)
    for (int64_t b = 0; b < inner; b++) {
      int64_t base = a * len * inner + b;
      double fa = f_identity(kind);
      int64_t ia = i_identity(kind, t);
      for (int64_t k0 = 0; k0 < len; k0++) {
        int64_t i = base + (reverse ? len - 1 - k0 : k0) * inner;
        if (is_float) {
          fa = f_step(kind, fa, ry__load_f64(t, x->data, i));
          ryi_store_f64(t, o->data, i, fa);
        } else {
          ia = i_step(kind, t, ia, ry__load_i64(t, x->data, i));
          ry__store_i64(t, o->data, i, ia);
        }
      }
    }
  out[0] = o;
  return NULL;
}

/* ---- windowed reductions ---- */

/* The flat index in x (shape xs) of element k of the window at output index
 * o, or -1 where that element is padding or a hole of the base dilation. */
static int64_t window_pos(const ry_window_dims *w, const ry_shape *xs, const int64_t *o, const int64_t *k) {
  int64_t flat = 0;
  for (int d = 0; d < xs->rank; d++) {
    int64_t p = o[d] * w->stride.v[d] + k[d] * w->window_dilation.v[d] - w->pad_low.v[d];
    if (p < 0 || p % w->base_dilation.v[d]) return -1;
    int64_t q = p / w->base_dilation.v[d];
    if (q >= xs->dims[d]) return -1;
    flat = flat * xs->dims[d] + q;
  }
  return flat;
}

static ry_shape window_shape(const ry_window_dims *w) {
  ry_shape s = {w->window.n, {0}};
  for (int d = 0; d < w->window.n; d++) s.dims[d] = w->window.v[d];
  return s;
}

static ry_status window_check(const ry_node *n, const ry_shape *xs) {
  const ry_window_dims *w = &n->attrs.window.w;
  const ry_axes *l[6] = {&w->window, &w->stride, &w->base_dilation, &w->window_dilation, &w->pad_low, &w->pad_high};
  for (int i = 0; i < 6; i++)
    if (l[i]->n != xs->rank) return ry__err(RY_ERR_VERIFY, "window attributes need %d entries", xs->rank);
  for (int d = 0; d < xs->rank; d++)
    if (w->stride.v[d] < 1 || w->base_dilation.v[d] < 1 || w->window_dilation.v[d] < 1 || w->window.v[d] < 1)
      return ry__err(RY_ERR_VERIFY, "window sizes, strides and dilations must be >= 1");
  return NULL;
}

ry_status ryi_reduce_window(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0];
  ry_dtype t = x->type.dtype;
  ry_reduce_kind kind = n->attrs.window.kind;
  bool is_float = ry_dtype_is_float(t);
  if ((int)kind < 0 || kind >= RY_REDUCE_COUNT || (is_float && (kind == RY_AND || kind == RY_OR)))
    return ry__err(RY_ERR_VERIFY, "invalid reduction kind %d for %s", (int)kind, ry_dtype_name(t));
  ry_status s = window_check(n, &x->type.shape);
  if (s) return s;
  ry_array *o;
  if ((s = ryi_new_result(f, n, 0, &o))) return s;
  const ry_window_dims *w = &n->attrs.window.w;
  ry_shape os = o->type.shape, ws = window_shape(w);
  int64_t onum = ry_shape_numel(os), wnum = ry_shape_numel(ws), oi[RY_MAX_RANK] = {0};
  for (int64_t j = 0; j < onum; j++, ryi_next(oi, &os)) {
    double fa = f_identity(kind);
    int64_t ia = i_identity(kind, t), k[RY_MAX_RANK] = {0};
    for (int64_t q = 0; q < wnum; q++, ryi_next(k, &ws)) {
      int64_t p = window_pos(w, &x->type.shape, oi, k);
      if (p < 0) continue;
      if (is_float) fa = f_step(kind, fa, ry__load_f64(t, x->data, p));
      else ia = i_step(kind, t, ia, ry__load_i64(t, x->data, p));
    }
    if (is_float) ryi_store_f64(t, o->data, j, fa);
    else ry__store_i64(t, o->data, j, ia);
  }
  out[0] = o;
  return NULL;
}

/* The position select_and_scatter/gather choose in the window at output
 * index o: the first element of the window (padding and holes skipped) that
 * the select function (x >= y for max, x <= y for min, false with a NaN)
 * keeps against every later one, as XLA's evaluator; -1 for a window of
 * padding only. */
static int64_t window_select(const ry_node *n, const ry_array *x, const int64_t *o) {
  const ry_window_dims *w = &n->attrs.window.w;
  ry_shape ws = window_shape(w);
  ry_dtype t = x->type.dtype;
  bool is_max = n->attrs.window.kind == RY_MAX, is_float = ry_dtype_is_float(t);
  int64_t wnum = ry_shape_numel(ws), k[RY_MAX_RANK] = {0}, best = -1;
  double bf = 0;
  int64_t bi = 0;
  for (int64_t q = 0; q < wnum; q++, ryi_next(k, &ws)) {
    int64_t p = window_pos(w, &x->type.shape, o, k);
    if (p < 0) continue;
    if (is_float) {
      double v = ry__load_f64(t, x->data, p);
      if (best < 0 || !(is_max ? bf >= v : bf <= v)) best = p, bf = v;
    } else {
      int64_t v = ryi_ikey(t, ry__load_i64(t, x->data, p));
      if (best < 0 || !(is_max ? bi >= v : bi <= v)) best = p, bi = v;
    }
  }
  return best;
}

ry_status ryi_select_and_scatter(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *src = in[1];
  ry_dtype t = src->type.dtype;
  bool is_float = ry_dtype_is_float(t);
  ry_status s = window_check(n, &x->type.shape);
  if (s) return s;
  ry_array *o;
  if ((s = ryi_new_result(f, n, 0, &o))) return s;
  int64_t xnum = ry_shape_numel(x->type.shape);
  size_t asize = (size_t)(xnum ? xnum : 1) * sizeof(double);
  void *acc = ry__calloc(1, asize); /* double or int64 sums, zero */
  if (!acc) {
    ry_array_release(o);
    return ry__oom();
  }
  double *fa = acc;
  int64_t *ia = acc;
  ry_shape ss = src->type.shape;
  int64_t snum = ry_shape_numel(ss), oi[RY_MAX_RANK] = {0};
  for (int64_t j = 0; j < snum; j++, ryi_next(oi, &ss)) {
    int64_t p = window_select(n, x, oi);
    if (p < 0) continue;
    if (is_float) fa[p] += ry__load_f64(t, src->data, j);
    else ia[p] = (int64_t)((uint64_t)ia[p] + (uint64_t)ry__load_i64(t, src->data, j));
  }
  for (int64_t i = 0; i < xnum; i++) {
    if (is_float) ryi_store_f64(t, o->data, i, fa[i]);
    else ry__store_i64(t, o->data, i, ia[i]);
  }
  ry__free(acc, asize);
  out[0] = o;
  return NULL;
}

ry_status ryi_select_and_gather(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_array *x = in[0], *tg = in[1];
  ry_dtype t = tg->type.dtype;
  ry_status s = window_check(n, &x->type.shape);
  if (s) return s;
  ry_array *o;
  if ((s = ryi_new_result(f, n, 0, &o))) return s;
  ry_shape os = o->type.shape;
  int64_t onum = ry_shape_numel(os), oi[RY_MAX_RANK] = {0};
  size_t es = ry_dtype_size(t);
  for (int64_t j = 0; j < onum; j++, ryi_next(oi, &os)) {
    int64_t p = window_select(n, x, oi);
    if (p >= 0) memcpy((char *)o->data + (size_t)j * es, (const char *)tg->data + (size_t)p * es, es);
  }
  out[0] = o;
  return NULL;
}
