/* Forward mode: one JVP rule per op, and the driver that re-traces a graph
 * carrying a tangent beside every primal value. Tangents are symbolic zeros
 * (value id 0) until something makes them non-zero, so untouched parts of
 * the program cost nothing. Rules emit only ops that are linear in the
 * tangents (see transpose.c), which is what makes reverse mode work. */
#include <math.h>

#include "jvp_shorthand.h"


/* Tangent helpers that keep symbolic zeros symbolic. */
static ry_value tadd(ryt_jvp_args *a, ry_value p, ry_value q) {
  if (Z(p)) return q;
  if (Z(q)) return p;
  return ry_add_(B, L, p, q);
}
static ry_value tmul(ryt_jvp_args *a, ry_value t, ry_value c) { return Z(t) ? t : ry_mul_(B, L, t, c); }
static ry_value tneg(ryt_jvp_args *a, ry_value t) { return Z(t) ? t : ry_neg_(B, L, t); }
/* A materialized tangent (zeros when symbolic). */
ry_value ryt_materialize(ry_builder *b, ry_loc loc, ry_value t, ry_type like) { return Z(t) ? ryt_zeros(b, loc, like) : t; }
#define M(i) ryt_materialize(B, L, TX(i), T(B, X(i)))

/* ---- elementwise ---- */
static void j_zero(ryt_jvp_args *a) { (void)a; }
static void j_unsupported(ryt_jvp_args *a) {
  ryb_failf(B, L, RY_ERR_UNSUPPORTED, ryg_op_table[a->n->op].name, "differentiation of this op is not supported");
}
static void j_neg(ryt_jvp_args *a) { a->ty[0] = tneg(a, TX(0)); }
/* JAX's rule: +t where x >= 0 (so 1 at 0 and -0), -t elsewhere. */
static void j_abs(ryt_jvp_args *a) {
  if (Z(TX(0))) return;
  a->ty[0] = ry_select_(B, L, CMP_GE(X(0), C(X(0), 0)), TX(0), ry_neg_(B, L, TX(0)));
}
static void j_exp(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), Y(0)); }
static void j_exp2(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), ry_mul_(B, L, Y(0), C(Y(0), 0.69314718055994530942))); }
static void j_log(ryt_jvp_args *a) { a->ty[0] = Z(TX(0)) ? TX(0) : ry_div_(B, L, TX(0), X(0)); }
static void j_log1p(ryt_jvp_args *a) { a->ty[0] = Z(TX(0)) ? TX(0) : ry_div_(B, L, TX(0), ry_add_(B, L, X(0), C(X(0), 1))); }
static void j_expm1(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), ry_add_(B, L, Y(0), C(Y(0), 1))); }
static void j_sqrt(ryt_jvp_args *a) { a->ty[0] = Z(TX(0)) ? TX(0) : ry_div_(B, L, TX(0), ry_mul_(B, L, Y(0), C(Y(0), 2))); }
static void j_rsqrt(ryt_jvp_args *a) {
  a->ty[0] = tmul(a, TX(0), ry_mul_(B, L, ry_div_(B, L, Y(0), X(0)), C(Y(0), -0.5)));
}
static void j_cbrt(ryt_jvp_args *a) {
  a->ty[0] = Z(TX(0)) ? TX(0) : ry_div_(B, L, TX(0), ry_mul_(B, L, ry_mul_(B, L, Y(0), Y(0)), C(Y(0), 3)));
}
static void j_sin(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), ry_cos_(B, L, X(0))); }
static void j_cos(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), ry_neg_(B, L, ry_sin_(B, L, X(0)))); }
static void j_tan(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), ry_add_(B, L, C(Y(0), 1), ry_mul_(B, L, Y(0), Y(0)))); }
static void j_tanh(ryt_jvp_args *a) { a->ty[0] = tmul(a, TX(0), ry_sub_(B, L, C(Y(0), 1), ry_mul_(B, L, Y(0), Y(0)))); }
static void j_logistic(ryt_jvp_args *a) {
  a->ty[0] = tmul(a, TX(0), ry_mul_(B, L, Y(0), ry_sub_(B, L, C(Y(0), 1), Y(0))));
}
static void j_erf(ryt_jvp_args *a) {
  ry_value e = ry_exp_(B, L, ry_neg_(B, L, ry_mul_(B, L, X(0), X(0))));
  a->ty[0] = tmul(a, TX(0), ry_mul_(B, L, e, C(X(0), 1.12837916709551257390)));
}
/* d atanh(x) = dx / (1 - x^2) */
static void j_atanh(ryt_jvp_args *a) {
  a->ty[0] = Z(TX(0)) ? TX(0) : ry_div_(B, L, TX(0), ry_sub_(B, L, C(X(0), 1), ry_mul_(B, L, X(0), X(0))));
}
static void j_erf_inv(ryt_jvp_args *a) {
  ry_value e = ry_exp_(B, L, ry_mul_(B, L, Y(0), Y(0)));
  a->ty[0] = tmul(a, TX(0), ry_mul_(B, L, e, C(Y(0), 0.88622692545275801365)));
}
static void j_add(ryt_jvp_args *a) { a->ty[0] = tadd(a, TX(0), TX(1)); }
static void j_sub(ryt_jvp_args *a) { a->ty[0] = tadd(a, TX(0), tneg(a, TX(1))); }
static void j_mul(ryt_jvp_args *a) { a->ty[0] = tadd(a, tmul(a, TX(0), X(1)), tmul(a, TX(1), X(0))); }
static void j_div(ryt_jvp_args *a) {
  /* (t0 - t1 * y) / x1 */
  ry_value num = tadd(a, TX(0), tneg(a, tmul(a, TX(1), Y(0))));
  a->ty[0] = Z(num) ? num : ry_div_(B, L, num, X(1));
}
static void j_rem(ryt_jvp_args *a) {
  /* d/dx0 = 1, d/dx1 = -trunc(x0 / x1) */
  ry_value t1 = TX(1);
  if (!Z(t1)) {
    ry_value q = ry_div_(B, L, X(0), X(1));
    ry_value tr = ry_mul_(B, L, ry_sign_(B, L, q), ry_floor_(B, L, ry_abs_(B, L, q)));
    t1 = ry_mul_(B, L, ry_neg_(B, L, tr), t1);
  }
  a->ty[0] = tadd(a, TX(0), t1);
}
static void j_pow(ryt_jvp_args *a) {
  ry_value r = (ry_value){0};
  if (!Z(TX(0))) {
    /* x1 * x0^(x1-1), as JAX for a float exponent: NaN at (0, 0) */
    ry_value d = ry_mul_(B, L, X(1), ry_pow_(B, L, X(0), ry_sub_(B, L, X(1), C(X(1), 1))));
    r = ry_mul_(B, L, TX(0), d);
  }
  if (!Z(TX(1))) {
    ry_value lg = ry_select_(B, L, CMP_EQ(X(0), C(X(0), 0)), C(X(0), 0), ry_log_(B, L, X(0)));
    r = tadd(a, r, ry_mul_(B, L, TX(1), ry_mul_(B, L, lg, Y(0))));
  }
  a->ty[0] = r;
}
/* max/min: the tangent of the winner; ties split evenly; nothing where the
 * result is NaN (JAX's _balanced_eq against the result). */
static void j_maxmin(ryt_jvp_args *a) {
  a->ty[0] = tadd(a, tmul(a, TX(0), ryt_balanced_eq(a, X(0), Y(0), X(1))), tmul(a, TX(1), ryt_balanced_eq(a, X(1), Y(0), X(0))));
}
static void j_max(ryt_jvp_args *a) { j_maxmin(a); }
static void j_min(ryt_jvp_args *a) { j_maxmin(a); }
static void j_atan2(ryt_jvp_args *a) {
  ry_value d = ry_add_(B, L, ry_mul_(B, L, X(0), X(0)), ry_mul_(B, L, X(1), X(1)));
  ry_value r = tmul(a, TX(0), ry_div_(B, L, X(1), d));
  a->ty[0] = tadd(a, r, tmul(a, TX(1), ry_neg_(B, L, ry_div_(B, L, X(0), d))));
}
static void j_select(ryt_jvp_args *a) {
  if (Z(TX(1)) && Z(TX(2))) return;
  a->ty[0] = ry_select_(B, L, X(0), M(1), M(2));
}
/* JAX's rule, also where lo > hi (the result is hi): lo's tangent where
 * lo > x and lo < hi, x's where lo < x < hi, hi's where hi < x. */
static void j_clamp(ryt_jvp_args *a) {
  ry_type xt = T(B, X(1));
  ry_value r = (ry_value){0};
  if (!Z(TX(1))) {
    ry_value in = ry_and_(B, L, CMP_GT(X(1), X(0)), CMP_LT(X(1), X(2)));
    r = ry_select_(B, L, in, TX(1), ryt_zeros(B, L, xt));
  }
  if (!Z(TX(0)))
    r = tadd(a, r, ry_select_(B, L, ry_and_(B, L, CMP_GT(X(0), X(1)), CMP_LT(X(0), X(2))), ry_broadcast_to_(B, L, TX(0), xt.shape),
                              ryt_zeros(B, L, xt)));
  if (!Z(TX(2)))
    r = tadd(a, r, ry_select_(B, L, CMP_LT(X(2), X(1)), ry_broadcast_to_(B, L, TX(2), xt.shape), ryt_zeros(B, L, xt)));
  a->ty[0] = r;
}
static void j_convert(ryt_jvp_args *a) {
  ry_type out = ry_vtype(a->g, ry_node_results(a->g, a->n)[0]);
  if (Z(TX(0)) || !ry_dtype_is_float(out.dtype) || !ry_dtype_is_float(T(B, X(0)).dtype)) return;
  a->ty[0] = ry_convert_(B, L, TX(0), out.dtype);
}

/* Ops linear in their (first) operands: the tangent is the same op applied
 * to the tangents, with the primal for non-differentiable operands (indices). */
static void j_linear(ryt_jvp_args *a, int n_lin) {
  bool any = false;
  for (int i = 0; i < n_lin; i++) any |= !Z(TX(i));
  if (!any) return;
  ry_value in[1024];
  int n = a->n->n_operands;
  if (n > 1024) { ryb_failf(B, L, RY_ERR_UNSUPPORTED, ryg_op_table[a->n->op].name, "too many operands"); return; }
  for (int i = 0; i < n; i++) in[i] = i < n_lin ? M(i) : X(i);
  ryt_copy_node(B, a->g, a->n, in, a->ty);
}
static void j_lin1(ryt_jvp_args *a) { j_linear(a, 1); }
/* Collectives: all_gather, collective_broadcast, sharding and the sum kinds are linear (the tangent
 * goes through the same collective); all_reduce max/min sends the tangent of
 * the devices holding the extreme, averaged over ties, like reduce max. */
static ry_value coll_sum(ryt_jvp_args *a, ry_op op, ry_value t) {
  ry_attrs at = a->n->attrs;
  at.collective.kind = RY_SUM;
  return ryb_emit1(B, L, op, 1, &t, &at, NULL);
}
static void j_collective(ryt_jvp_args *a) {
  if (Z(TX(0))) return;
  ry_op op = a->n->op;
  ry_reduce_kind k = a->n->attrs.collective.kind;
  if (op == RY_OP_ALL_GATHER || op == RY_OP_COLLECTIVE_BROADCAST || op == RY_OP_SHARDING || k == RY_SUM) {
    j_lin1(a);
    return;
  }
  if (op == RY_OP_ALL_REDUCE && (k == RY_MAX || k == RY_MIN)) {
    ry_type in = T(B, X(0));
    ry_value mask = ry_convert_(B, L, CMP_EQ(X(0), Y(0)), in.dtype);
    a->ty[0] = ry_div_(B, L, coll_sum(a, op, ry_mul_(B, L, TX(0), mask)), coll_sum(a, op, mask));
    return;
  }
  ryb_failf(B, L, RY_ERR_UNSUPPORTED, ryg_op_table[op].name, "differentiation of kind '%s' is not supported%s",
            ryg_reduce_names[k], op == RY_OP_ALL_REDUCE ? " (sum, max and min are)" : " (sum is)");
}
static void j_linall(ryt_jvp_args *a) { j_linear(a, a->n->n_operands); }
static void j_gather(ryt_jvp_args *a) { j_linear(a, 1); }
/* scatter max/min: the tangent of whichever value won each position, ties
 * (the operand and/or several updates) averaged, as JAX does. */
static void j_scatter_extremal(ryt_jvp_args *a) {
  const ry_scatter_dims *d = &a->n->attrs.scatter;
  ry_type ot = T(B, X(0)), ut = T(B, X(2));
  ry_gather_dims gd = ryt_scatter_as_gather(d, ot.shape, ut.shape);
  ry_scatter_dims add = *d;
  add.kind = RY_SCATTER_ADD;
  ry_value won = ry_gather_(B, L, Y(0), X(1), &gd);                          /* result at each update */
  ry_value succ = ry_convert_(B, L, CMP_EQ(X(2), won), ot.dtype);          /* update won */
  ry_value kept = ry_convert_(B, L, CMP_EQ(X(0), Y(0)), ot.dtype);         /* operand won */
  ry_value count = ry_add_(B, L, kept, ry_scatter_(B, L, ryt_zeros(B, L, ot), X(1), succ, &add));
  ry_value num = (ry_value){0};
  if (!Z(TX(0))) num = ry_mul_(B, L, TX(0), kept);
  if (!Z(TX(2))) num = tadd(a, num, ry_scatter_(B, L, ryt_zeros(B, L, ot), X(1), ry_mul_(B, L, TX(2), succ), &add));
  a->ty[0] = ry_div_(B, L, num, count);
}

static void j_scatter(ryt_jvp_args *a) {
  ry_scatter_kind k = a->n->attrs.scatter.kind;
  if ((k == RY_SCATTER_MAX || k == RY_SCATTER_MIN) && ry_dtype_is_float(T(B, X(0)).dtype)) {
    if (!Z(TX(0)) || !Z(TX(2))) j_scatter_extremal(a);
    return;
  }
  if (k != RY_SCATTER_ADD && k != RY_SCATTER_REPLACE) {
    if (!Z(TX(0)) || !Z(TX(2)))
      ryb_failf(B, L, RY_ERR_UNSUPPORTED, "scatter", "differentiation of scatter kind '%s' is not supported (add, replace, max and min are)",
                ryg_scatter_names[k]);
    return;
  }
  if (Z(TX(0)) && Z(TX(2))) return;
  ry_value in[3] = {M(0), X(1), M(2)};
  ryt_copy_node(B, a->g, a->n, in, a->ty);
}
/* bilinear: dot_general and convolution */
static void j_bilinear(ryt_jvp_args *a) {
  ry_value r = (ry_value){0}, o;
  if (!Z(TX(0))) {
    ry_value in[2] = {TX(0), X(1)};
    if (ryt_copy_node(B, a->g, a->n, in, &o)) r = o;
  }
  if (!Z(TX(1))) {
    ry_value in[2] = {X(0), TX(1)};
    if (ryt_copy_node(B, a->g, a->n, in, &o)) r = tadd(a, r, o);
  }
  a->ty[0] = r;
}
static void j_pad(ryt_jvp_args *a) { j_linear(a, 2); }
static void j_dus(ryt_jvp_args *a) { j_linear(a, 2); }

/* ---- control flow ---- */

typedef struct {
  const ry_graph *g;
  int32_t r;
  int n_primal;        /* region params that are primal */
  const bool *has_t;   /* per primal param: a tangent param follows (in order, after all primals) */
  int n_res_primal;
  const bool *res_t;   /* per result: return its tangent (materialized) */
} jregion;

/* A region function: params (primals..., tangents of has_t...) -> tangents
 * of the float results (materialized). The primal is recomputed inside: the
 * cond that carries tangents is separate from the primal cond, so reverse
 * mode can transpose it on its own. */
static int jvp_region_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const jregion *jr = ctx;
  ry_value tx[256], y[256], ty[256];
  int k = jr->n_primal;
  if (jr->n_primal > 256 || jr->n_res_primal > 256) return ryb_failf(b, (ry_loc){0}, RY_ERR_UNSUPPORTED, "jvp", "region too large");
  for (int i = 0; i < jr->n_primal; i++) tx[i] = jr->has_t[i] ? in[k++] : (ry_value){0};
  int n = ryt_jvp_region(b, jr->g, jr->r, in, tx, y, ty);
  if (!ryb_ok(b)) return 0;
  int m = 0;
  for (int i = 0; i < n && i < jr->n_res_primal; i++)
    if (jr->res_t[i]) out[m++] = ryt_materialize(b, (ry_loc){0}, ty[i], ry_value_type(b, y[i]));
  return m;
}

/* cond: a second cond over the same index computes the tangents of the float
 * results from the primal and tangent arguments. */
static void j_cond(ryt_jvp_args *a) {
  const ry_graph *g = a->g;
  int nargs = a->n->n_operands - 1, nres = a->n->n_results;
  if (nargs > 256 || nres > 256 || a->n->n_regions > 64) {
    ryb_failf(B, L, RY_ERR_UNSUPPORTED, "cond", "too many values for jvp");
    return;
  }
  bool any = false;
  for (int i = 0; i < nargs; i++) any |= !Z(TX(1 + i));
  if (!any) return;
  bool has_t[256], res_t[256];
  ry_value ops[513];
  int k = 0;
  ops[k++] = X(0);
  for (int i = 0; i < nargs; i++) ops[k++] = X(1 + i);
  for (int i = 0; i < nargs; i++) {
    has_t[i] = ry_dtype_is_float(T(B, X(1 + i)).dtype);
    if (has_t[i]) ops[k++] = M(1 + i);
  }
  for (int i = 0; i < nres; i++) res_t[i] = ry_dtype_is_float(ry_vtype(g, ry_node_results(g, a->n)[i]).dtype);
  ry_type pt[512];
  for (int i = 1; i < k; i++) pt[i - 1] = T(B, ops[i]);
  const int32_t *rs = ry_node_regions(g, a->n);
  int32_t regions[64];
  for (int q = 0; q < a->n->n_regions; q++) {
    jregion jr = {g, rs[q], nargs, has_t, nres, res_t};
    int nr;
    if (!ryb_trace_region(B, L, "cond (jvp)", jvp_region_fn, &jr, k - 1, pt, &regions[q], &nr)) return;
  }
  ry_value out[256];
  if (!ryb_emit(B, L, RY_OP_COND, k, ops, NULL, 0, NULL, a->n->n_regions, regions, out)) return;
  int t = 0;
  for (int i = 0; i < nres; i++)
    if (res_t[i]) a->ty[i] = out[t++];
}

/* while: consts and carry with tangents for their float members. The new
 * loop's regions see (consts, tconsts, carry, tcarry); the source regions
 * see (consts, carry). */
typedef struct {
  const ry_graph *g;
  int32_t r;
  int nc, n;
  const bool *has_t;
} wlayout;

static void split_params(const wlayout *w, const ry_value *in, ry_value *x, ry_value *tx) {
  int k = 0;
  for (int i = 0; i < w->nc; i++) x[i] = in[k++];
  for (int i = 0; i < w->nc; i++) tx[i] = w->has_t[i] ? in[k++] : (ry_value){0};
  for (int i = w->nc; i < w->n; i++) x[i] = in[k++];
  for (int i = w->nc; i < w->n; i++) tx[i] = w->has_t[i] ? in[k++] : (ry_value){0};
}

static int while_cond_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const wlayout *w = ctx;
  ry_value x[256], tx[256];
  split_params(w, in, x, tx);
  return ryt_inline_region(b, w->g, w->r, x, out);
}

static int while_body_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const wlayout *w = ctx;
  ry_value x[256], tx[256], y[256], ty[256];
  split_params(w, in, x, tx);
  int m = ryt_jvp_region(b, w->g, w->r, x, tx, y, ty);
  if (!ryb_ok(b)) return 0;
  int k = 0;
  for (int i = 0; i < m; i++) out[k++] = y[i];
  for (int i = 0; i < m; i++)
    if (w->has_t[w->nc + i]) out[k++] = ryt_materialize(b, (ry_loc){0}, ty[i], ry_value_type(b, y[i]));
  return k;
}

static void j_while(ryt_jvp_args *a) {
  const ry_graph *g = a->g;
  int n = a->n->n_operands, nc = (int)a->n->attrs.while_.n_consts, ncarry = n - nc;
  if (n > 256) { ryb_failf(B, L, RY_ERR_UNSUPPORTED, "while", "too many values for jvp"); return; }
  bool any = false;
  for (int i = 0; i < n; i++) any |= !Z(TX(i));
  if (!any) return;
  bool has_t[256];
  for (int i = 0; i < n; i++) has_t[i] = ry_dtype_is_float(T(B, X(i)).dtype);
  ry_value ops[512];
  int k = 0;
  for (int i = 0; i < nc; i++) ops[k++] = X(i);
  for (int i = 0; i < nc; i++)
    if (has_t[i]) ops[k++] = M(i);
  int nc2 = k;
  for (int i = nc; i < n; i++) ops[k++] = X(i);
  for (int i = nc; i < n; i++)
    if (has_t[i]) ops[k++] = M(i);
  ry_type pt[512];
  for (int i = 0; i < k; i++) pt[i] = T(B, ops[i]);
  const int32_t *rs = ry_node_regions(g, a->n);
  wlayout wc = {g, rs[0], nc, n, has_t}, wb = {g, rs[1], nc, n, has_t};
  int32_t regions[2];
  int nr;
  if (!ryb_trace_region(B, L, "while cond (jvp)", while_cond_fn, &wc, k, pt, &regions[0], &nr)) return;
  if (!ryb_trace_region(B, L, "while body (jvp)", while_body_fn, &wb, k, pt, &regions[1], &nr)) return;
  ry_attrs at;
  memset(&at, 0, sizeof at);
  at.while_.n_consts = nc2;
  ry_value out[512];
  if (!ryb_emit(B, L, RY_OP_WHILE, k, ops, &at, 0, NULL, 2, regions, out)) return;
  /* Only the tangents come from this loop; the primal results stay those of
   * the plain loop the driver emitted, as JAX's partial evaluation of a
   * while splits it. Reverse mode needs that: the primal loop does not
   * depend on tangents, so a program that uses its results (as an index, or
   * through floor) can still be transposed when no cotangent reaches the
   * loop, and ry_linearize finds the primal results in the primal program.
   * Forward mode runs the primal iteration twice for it. */
  int t = ncarry;
  for (int i = 0; i < ncarry; i++)
    if (has_t[nc + i]) a->ty[i] = out[t++];
}

/* ---- calls with rules ---- */

/* (x..., t...) -> ty... by forward mode through g. */
ry_status ryt_jvp_tangent_graph(ry_graph *g, ry_graph **out) {
  *out = NULL;
  int n = ry_graph_num_inputs(g);
  ry_builder *b = ry_builder_new(g->name);
  ry_value *x = ry__calloc((size_t)2 * n + 1, sizeof *x), *y = ry__calloc(2 * RY_MAX_OUTPUTS, sizeof *y);
  if (!b || !x || !y) {
    ry_builder_free(b);
    ry__free(x, ((size_t)2 * n + 1) * sizeof *x);
    ry__free(y, 2 * RY_MAX_OUTPUTS * sizeof *y);
    return ry__oom();
  }
  for (int i = 0; i < n; i++) x[i] = ry_input(b, ry_graph_input_name(g, i), ry_graph_input_type(g, i));
  for (int i = 0; i < n; i++) x[n + i] = ry_input(b, NULL, ry_graph_input_type(g, i));
  int m = ryt_jvp_region(b, g, 0, x, x + n, y, y + RY_MAX_OUTPUTS);
  for (int i = 0; i < m && ryb_ok(b); i++)
    y[RY_MAX_OUTPUTS + i] = ryt_materialize(b, (ry_loc){0}, y[RY_MAX_OUTPUTS + i], ry_value_type(b, y[i]));
  ry_status s = ry_builder_finish(b, ryb_ok(b) ? m : 0, y + RY_MAX_OUTPUTS, out);
  ry__free(x, ((size_t)2 * n + 1) * sizeof *x);
  ry__free(y, 2 * RY_MAX_OUTPUTS * sizeof *y);
  return s;
}

/* Emit `call {callee=g, ...}` with the given extra attributes. */
static int emit_call(ryt_jvp_args *a, ry_graph *g, ry_graph *bwd, int64_t remat, int n, const ry_value *in, ry_value *out) {
  ry_attrs at;
  memset(&at, 0, sizeof at);
  at.call.callee = ry_graph_retain(g);
  at.call.bwd = ry_graph_retain(bwd);
  at.call.remat = remat;
  return ryb_emit(B, L, RY_OP_CALL, n, in, &at, 0, NULL, 0, NULL, out);
}

/* (x..., res..., t...) -> ty: the linear half of a custom_vjp call, by
 * forward mode through f (res is unused; it is there for bwd). */
static ry_status vjp_linear_graph(ry_graph *f, int nres, const ry_type *res_types, ry_graph **out) {
  ry_graph *jt = NULL;
  ry_status s = ryt_jvp_tangent_graph(f, &jt);
  if (s) return s;
  int n = ry_graph_num_inputs(f), m = ry_graph_num_outputs(f);
  ry_builder *b = ry_builder_new(f->name);
  ry_value *in = ry__calloc((size_t)(2 * n + nres) + 1, sizeof *in), *args = ry__calloc((size_t)2 * n + 1, sizeof *args);
  ry_value *ty = ry__calloc((size_t)m + 1, sizeof *ty);
  if (!b || !in || !args || !ty) {
    s = ry__oom();
    ry_builder_free(b);
  } else {
    for (int i = 0; i < n; i++) in[i] = ry_input(b, NULL, ry_graph_input_type(f, i));
    for (int i = 0; i < nres; i++) in[n + i] = ry_input(b, NULL, res_types[i]);
    for (int i = 0; i < n; i++) in[n + nres + i] = ry_input(b, NULL, ry_graph_input_type(f, i));
    for (int i = 0; i < n; i++) args[i] = in[i], args[n + i] = in[n + nres + i];
    int k = ry_call_(b, (ry_loc){0}, jt, 2 * n, args, ty);
    s = ry_builder_finish(b, k == m ? m : 0, ty, out);
  }
  ry__free(in, ((size_t)(2 * n + nres) + 1) * sizeof *in);
  ry__free(args, ((size_t)2 * n + 1) * sizeof *args);
  ry__free(ty, ((size_t)m + 1) * sizeof *ty);
  ry_graph_release(jt);
  return s;
}

static bool is_saveable_dot(const ry_node *n) { return n->op == RY_OP_DOT_GENERAL || n->op == RY_OP_CONVOLUTION; }

/* f' : x... -> (y..., results of f's top-level dot_general/convolution nodes...) */
static ry_status primal_with_dots(ry_graph *f, ry_graph **out) {
  *out = NULL;
  const ry_region *r0 = &f->regions[0];
  ry_builder *b = ry_builder_new(f->name);
  ry_value *map = ry__calloc((size_t)f->n_values, sizeof *map), *outs = ry__calloc((size_t)r0->nodes.n + r0->results.n + 1, sizeof *outs);
  ry_value in[1024], res[1024];
  ry_status s;
  if (!b || !map || !outs) {
    ry_builder_free(b);
    s = ry__oom();
    goto done;
  }
  for (int i = 0; i < r0->params.n; i++) map[r0->params.v[i]] = ry_input(b, NULL, ry_vtype(f, r0->params.v[i]));
  int nd = 0;
  for (int k = 0; k < r0->nodes.n && ryb_ok(b); k++) {
    const ry_node *n = &f->nodes[r0->nodes.v[k]];
    if (n->n_operands > 1024 || n->n_results > 1024) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, "checkpoint", "too many operands");
      break;
    }
    for (int i = 0; i < n->n_operands; i++) in[i] = map[ry_node_operands(f, n)[i]];
    int m = ryt_copy_node(b, f, n, in, res);
    for (int i = 0; i < m; i++) map[ry_node_results(f, n)[i]] = res[i];
    if (m && is_saveable_dot(n)) outs[r0->results.n + nd++] = res[0];
  }
  for (int i = 0; i < r0->results.n; i++) outs[i] = map[r0->results.v[i]];
  s = ry_builder_finish(b, ryb_ok(b) ? r0->results.n + nd : 0, outs, out);
done:
  if (map) ry__free(map, (size_t)f->n_values * sizeof *map);
  if (outs) ry__free(outs, ((size_t)r0->nodes.n + r0->results.n + 1) * sizeof *outs);
  return s;
}

/* Jt': (x..., dots..., t...) -> ty by forward mode through f, with the dot
 * results taken from the inputs instead of recomputed. */
static ry_status tangent_with_dots(ry_graph *f, int nd, const ry_type *dt, ry_graph **out) {
  *out = NULL;
  const ry_region *r0 = &f->regions[0];
  int n = r0->params.n;
  ry_builder *b = ry_builder_new(f->name);
  ry_value *subst = ry__calloc((size_t)f->n_nodes + 1, sizeof *subst);
  ry_value *in = ry__calloc((size_t)(2 * n + nd) + 1, sizeof *in), *y = ry__calloc(2 * RY_MAX_OUTPUTS, sizeof *y);
  ry_status s;
  if (!b || !subst || !in || !y) {
    ry_builder_free(b);
    s = ry__oom();
    goto done;
  }
  for (int i = 0; i < n; i++) in[i] = ry_input(b, NULL, ry_vtype(f, r0->params.v[i]));
  for (int i = 0; i < nd; i++) in[2 * n + i] = ry_input(b, NULL, dt[i]);
  for (int i = 0; i < n; i++) in[n + i] = ry_input(b, NULL, ry_vtype(f, r0->params.v[i]));
  int q = 0;
  for (int k = 0; k < r0->nodes.n && q < nd; k++)
    if (is_saveable_dot(&f->nodes[r0->nodes.v[k]])) subst[r0->nodes.v[k]] = in[2 * n + q++];
  int m = ryt_jvp_region_subst(b, f, 0, in, in + n, y, y + RY_MAX_OUTPUTS, subst);
  for (int i = 0; i < m && ryb_ok(b); i++)
    y[RY_MAX_OUTPUTS + i] = ryt_materialize(b, (ry_loc){0}, y[RY_MAX_OUTPUTS + i], ry_value_type(b, y[i]));
  s = ry_builder_finish(b, ryb_ok(b) ? m : 0, y + RY_MAX_OUTPUTS, out);
done:
  ry__free(subst, ((size_t)f->n_nodes + 1) * sizeof *subst);
  ry__free(in, ((size_t)(2 * n + nd) + 1) * sizeof *in);
  ry__free(y, 2 * RY_MAX_OUTPUTS * sizeof *y);
  return s;
}

/* checkpoint with the save-dots policy: the primal call also returns its dot
 * products, which the tangent call takes as inputs (so they are residuals,
 * everything else is recomputed). The tangent call's operands are
 * (x..., dots..., t...). */
static void j_call_save_dots(ryt_jvp_args *a) {
  ry_graph *f = a->n->attrs.call.callee;
  int n = a->n->n_operands, m = a->n->n_results;
  ry_graph *fp = NULL, *jt = NULL;
  ry_status s = primal_with_dots(f, &fp);
  if (s) {
    ryb_fail(B, s);
    return;
  }
  ry_value out[1024], in[1024];
  int k = emit_call(a, fp, NULL, 0, n, a->x, out);
  int nd = k - m;
  ry_type dt[512];
  for (int i = 0; i < nd && i < 512; i++) dt[i] = T(B, out[m + i]);
  if (k && nd <= 512 && 2 * n + nd <= 1024 && !(s = tangent_with_dots(f, nd, dt, &jt))) {
    for (int i = 0; i < m; i++) a->y_override[i] = out[i];
    for (int i = 0; i < n; i++) in[i] = X(i), in[n + nd + i] = M(i);
    for (int i = 0; i < nd; i++) in[n + i] = out[m + i];
    emit_call(a, jt, NULL, RY_REMAT_SAVE_DOTS, 2 * n + nd, in, a->ty);
  }
  if (s) ryb_fail(B, s);
  ry_graph_release(fp);
  ry_graph_release(jt);
}

static void j_call(ryt_jvp_args *a) {
  const ry_attrs *at = &a->n->attrs;
  ry_graph *f = at->call.callee;
  int n = a->n->n_operands, m = a->n->n_results;
  if (n > 512 || m > 256) {
    ryb_failf(B, L, RY_ERR_UNSUPPORTED, "call", "too many values for jvp");
    return;
  }
  ry_value in[1024], out[1024];
  if (at->call.jvp) {
    /* custom_jvp: the user's rule, inlined, gives primal and tangent; being
     * ordinary ops, its tangent part is linearized and transposed like any */
    for (int i = 0; i < n; i++) in[i] = X(i), in[n + i] = M(i);
    if (ryt_inline_region_all(B, at->call.jvp, 0, in, out) != 2 * m || !ryb_ok(B)) return;
    for (int i = 0; i < m; i++) a->y_override[i] = out[i], a->ty[i] = out[m + i];
    return;
  }
  if (at->call.fwd) { /* custom_vjp: residuals from fwd, tangents through a linear call bwd transposes */
    ry_attrs pa;
    memset(&pa, 0, sizeof pa);
    pa.call.callee = ry_graph_retain(at->call.fwd);
    int k = ryb_emit(B, L, RY_OP_CALL, n, a->x, &pa, 0, NULL, 0, NULL, out);
    if (!k) return;
    int nres = k - m;
    ry_type rt[512];
    for (int i = 0; i < nres && i < 512; i++) rt[i] = T(B, out[m + i]);
    ry_graph *lg = NULL;
    ry_status s = vjp_linear_graph(f, nres, rt, &lg);
    if (s) {
      ryb_fail(B, s);
      return;
    }
    for (int i = 0; i < n; i++) in[i] = X(i);
    for (int i = 0; i < nres; i++) in[n + i] = out[m + i];
    for (int i = 0; i < n; i++) in[n + nres + i] = M(i);
    for (int i = 0; i < m; i++) a->y_override[i] = out[i];
    emit_call(a, lg, at->call.bwd, 0, 2 * n + nres, in, a->ty);
    ry_graph_release(lg);
    return;
  }
  if (at->call.remat == RY_REMAT_SAVE_DOTS) {
    j_call_save_dots(a);
    return;
  }
  if (at->call.remat) { /* checkpoint: a separate tangent call, recomputed when transposed */
    ry_graph *jt = NULL;
    ry_status s = ryt_jvp_tangent_graph(f, &jt);
    if (s) {
      ryb_fail(B, s);
      return;
    }
    for (int i = 0; i < n; i++) in[i] = X(i), in[n + i] = M(i);
    emit_call(a, jt, NULL, at->call.remat, 2 * n, in, a->ty);
    ry_graph_release(jt);
    return;
  }
  /* a plain call: differentiate through its body */
  ryt_jvp_region(B, f, 0, a->x, a->tx, a->y_override, a->ty);
}

/* ---- scan ----
 * The primal scan is re-emitted so that it also stacks the carry each step
 * starts from; a separate tangent scan then runs the JVP of the body at those
 * primal carries. Reverse mode transposes the tangent scan alone (grad.c). */

typedef struct {
  const ry_graph *g;
  int32_t r;
  int nc, ncar;
} scan_src;

/* body + the carry each step starts from, as extra stacked outputs */
static int scan_stack_carry_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const scan_src *sc = ctx;
  int m = ryt_inline_region(b, sc->g, sc->r, in, out);
  if (!ryb_ok(b)) return 0;
  for (int i = 0; i < sc->ncar; i++) out[m + i] = in[sc->nc + i];
  return m + sc->ncar;
}

typedef struct {
  const ry_graph *g;
  int32_t r;
  int nc, ncar, nx, nres;
  const bool *ft;     /* per source operand: float (carries a tangent) */
  const bool *res_ft; /* per source body result: float */
} scan_tan;

/* tangent body: params (consts, tconsts, tcarry, x slices, carry slices,
 * tx slices) -> (tcarry', ty slices) */
static int scan_tangent_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const scan_tan *st = ctx;
  int n = st->nc + st->ncar + st->nx;
  if (n > 512) return ryb_failf(b, (ry_loc){0}, RY_ERR_UNSUPPORTED, "scan", "too many values for jvp");
  ry_value x[512], tx[512], y[512], ty[512];
  int k = 0;
  for (int i = 0; i < st->nc; i++) x[i] = in[k++];
  for (int i = 0; i < st->nc; i++) tx[i] = st->ft[i] ? in[k++] : (ry_value){0};
  for (int i = 0; i < st->ncar; i++) tx[st->nc + i] = st->ft[st->nc + i] ? in[k++] : (ry_value){0};
  for (int i = 0; i < st->nx; i++) x[st->nc + st->ncar + i] = in[k++];
  for (int i = 0; i < st->ncar; i++) x[st->nc + i] = in[k++];
  for (int i = 0; i < st->nx; i++) tx[st->nc + st->ncar + i] = st->ft[st->nc + st->ncar + i] ? in[k++] : (ry_value){0};
  int m = ryt_jvp_region(b, st->g, st->r, x, tx, y, ty);
  if (!ryb_ok(b)) return 0;
  int o = 0;
  for (int i = 0; i < m && i < st->nres; i++)
    if (st->res_ft[i]) out[o++] = ryt_materialize(b, (ry_loc){0}, ty[i], ry_value_type(b, y[i]));
  return o;
}

static void j_scan(ryt_jvp_args *a) {
  const ry_graph *g = a->g;
  const ry_attrs *at = &a->n->attrs;
  int n = a->n->n_operands, nc = (int)at->scan.n_consts, ncar = (int)at->scan.n_carry, nx = n - nc - ncar;
  int nres = a->n->n_results;
  if (n > 256 || nres > 256) {
    ryb_failf(B, L, RY_ERR_UNSUPPORTED, "scan", "too many values for jvp");
    return;
  }
  bool any = false;
  for (int i = 0; i < n; i++) any |= !Z(TX(i));
  if (!any) return;
  int32_t body = ry_node_regions(g, a->n)[0];
  /* 1. primal scan stacking its carries */
  ry_type pt[512];
  for (int i = 0; i < n; i++) pt[i] = ry_vtype(g, g->regions[body].params.v[i]);
  scan_src ss = {g, body, nc, ncar};
  int32_t r1;
  int nr;
  if (!ryb_trace_region(B, L, "scan (jvp)", scan_stack_carry_fn, &ss, n, pt, &r1, &nr)) return;
  ry_attrs a1 = *at;
  ry_value p_out[512];
  int m1 = ryb_emit(B, L, RY_OP_SCAN, n, a->x, &a1, 0, NULL, 1, &r1, p_out);
  if (!m1) return;
  for (int i = 0; i < nres; i++) a->y_override[i] = p_out[i];
  ry_value *stacks = p_out + nres; /* ncar stacked carries */
  /* 2. the tangent scan */
  bool ft[256], res_ft[256];
  for (int i = 0; i < n; i++) ft[i] = ry_dtype_is_float(T(B, X(i)).dtype);
  const ry_region *br = &g->regions[body];
  for (int i = 0; i < nres; i++) res_ft[i] = ry_dtype_is_float(ry_vtype(g, br->results.v[i]).dtype);
  ry_value ops[1024];
  int k = 0, nc2, ncar2;
  for (int i = 0; i < nc; i++) ops[k++] = X(i);
  for (int i = 0; i < nc; i++)
    if (ft[i]) ops[k++] = M(i);
  nc2 = k;
  for (int i = 0; i < ncar; i++)
    if (ft[nc + i]) ops[k++] = M(nc + i);
  ncar2 = k - nc2;
  for (int i = 0; i < nx; i++) ops[k++] = X(nc + ncar + i);
  for (int i = 0; i < ncar; i++) ops[k++] = stacks[i];
  for (int i = 0; i < nx; i++)
    if (ft[nc + ncar + i]) ops[k++] = M(nc + ncar + i);
  /* the tangent body's params: xs operands are sliced */
  ry_type tt[1024];
  for (int i = 0; i < k; i++) {
    tt[i] = T(B, ops[i]);
    if (i >= nc2 + ncar2) {
      ry_shape sh = tt[i].shape;
      for (int d = 0; d + 1 < sh.rank; d++) tt[i].shape.dims[d] = sh.dims[d + 1];
      tt[i].shape.dims[sh.rank - 1] = 0;
      tt[i].shape.rank = sh.rank - 1;
    }
  }
  scan_tan st = {g, body, nc, ncar, nx, nres, ft, res_ft};
  int32_t r2;
  if (!ryb_trace_region(B, L, "scan (tangent)", scan_tangent_fn, &st, k, tt, &r2, &nr)) return;
  ry_attrs a2;
  memset(&a2, 0, sizeof a2);
  a2.scan.length = at->scan.length;
  a2.scan.n_consts = nc2;
  a2.scan.n_carry = ncar2;
  a2.scan.reverse = at->scan.reverse;
  ry_value t_out[512];
  if (!ryb_emit(B, L, RY_OP_SCAN, k, ops, &a2, 0, NULL, 1, &r2, t_out)) return;
  int o = 0;
  for (int i = 0; i < ncar; i++)
    if (res_ft[i]) a->ty[i] = t_out[o++];
  for (int i = ncar; i < nres; i++)
    if (res_ft[i]) a->ty[i] = t_out[o++];
}

/* ---- the table ---- */

const ry_jvp_rule ryt_jvp_rules[RY_OP_COUNT] = {
    [RY_OP_NEG] = j_neg, [RY_OP_ABS] = j_abs, [RY_OP_SIGN] = j_zero, [RY_OP_EXP] = j_exp, [RY_OP_EXP2] = j_exp2,
    [RY_OP_LOG] = j_log, [RY_OP_LOG1P] = j_log1p, [RY_OP_EXPM1] = j_expm1, [RY_OP_SQRT] = j_sqrt, [RY_OP_RSQRT] = j_rsqrt,
    [RY_OP_CBRT] = j_cbrt, [RY_OP_SIN] = j_sin, [RY_OP_COS] = j_cos, [RY_OP_TAN] = j_tan, [RY_OP_TANH] = j_tanh,
    [RY_OP_LOGISTIC] = j_logistic, [RY_OP_ERF] = j_erf, [RY_OP_ERF_INV] = j_erf_inv, [RY_OP_ATANH] = j_atanh, [RY_OP_FLOOR] = j_zero,
    [RY_OP_CEIL] = j_zero, [RY_OP_ROUND] = j_zero, [RY_OP_ROUND_EVEN] = j_zero, [RY_OP_IS_FINITE] = j_zero,
    [RY_OP_NOT] = j_zero, [RY_OP_POPCNT] = j_zero, [RY_OP_CLZ] = j_zero, [RY_OP_ADD] = j_add, [RY_OP_SUB] = j_sub, [RY_OP_MUL] = j_mul,
    [RY_OP_DIV] = j_div, [RY_OP_REM] = j_rem, [RY_OP_POW] = j_pow, [RY_OP_MAX] = j_max, [RY_OP_MIN] = j_min,
    [RY_OP_ATAN2] = j_atan2, [RY_OP_AND] = j_zero, [RY_OP_OR] = j_zero, [RY_OP_XOR] = j_zero, [RY_OP_SHL] = j_zero,
    [RY_OP_SHR_LOGICAL] = j_zero, [RY_OP_SHR_ARITH] = j_zero, [RY_OP_COMPARE] = j_zero, [RY_OP_SELECT] = j_select,
    [RY_OP_CLAMP] = j_clamp, [RY_OP_CONVERT] = j_convert, [RY_OP_BITCAST] = j_zero, [RY_OP_BROADCAST] = j_lin1,
    [RY_OP_RESHAPE] = j_lin1, [RY_OP_TRANSPOSE] = j_lin1, [RY_OP_SLICE] = j_lin1, [RY_OP_DYNAMIC_SLICE] = j_lin1,
    [RY_OP_DYNAMIC_UPDATE_SLICE] = j_dus, [RY_OP_CONCATENATE] = j_linall, [RY_OP_PAD] = j_pad, [RY_OP_REVERSE] = j_lin1,
    [RY_OP_IOTA] = j_zero, [RY_OP_CONSTANT] = j_zero, [RY_OP_REDUCE] = ryt_jvp_reduce, [RY_OP_ARGMAX] = j_zero,
    [RY_OP_ARGMIN] = j_zero, [RY_OP_CUMULATIVE] = ryt_jvp_cumulative,
    [RY_OP_REDUCE_WINDOW] = ryt_jvp_window, [RY_OP_SELECT_AND_SCATTER] = ryt_jvp_window,
    [RY_OP_SELECT_AND_GATHER] = ryt_jvp_window, [RY_OP_DOT_GENERAL] = j_bilinear,
    [RY_OP_CONVOLUTION] = j_bilinear, [RY_OP_GATHER] = j_gather, [RY_OP_SCATTER] = j_scatter, [RY_OP_SORT] = ryt_jvp_sort,
    [RY_OP_THREEFRY] = j_zero, [RY_OP_DEQUANTIZE] = j_zero, [RY_OP_COND] = j_cond, [RY_OP_WHILE] = j_while, [RY_OP_SCAN] = j_scan, [RY_OP_CALL] = j_call,
    [RY_OP_CUSTOM_CALL] = j_unsupported, [RY_OP_ALL_REDUCE] = j_collective, [RY_OP_ALL_GATHER] = j_collective,
    [RY_OP_REDUCE_SCATTER] = j_collective, [RY_OP_COLLECTIVE_BROADCAST] = j_collective, [RY_OP_SHARDING] = j_collective,
};

/* ---- the driver ---- */

int ryt_jvp_region(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *x, const ry_value *tx, ry_value *y, ry_value *ty) {
  return ryt_jvp_region_subst(b, g, r, x, tx, y, ty, NULL);
}

int ryt_jvp_region_subst(ry_builder *b, const ry_graph *g, int32_t r, const ry_value *x, const ry_value *tx, ry_value *y,
                         ry_value *ty, const ry_value *subst) {
  if (!ryb_ok(b)) return 0;
  const ry_region *reg = &g->regions[r];
  ry_value *P = ry__calloc((size_t)g->n_values, sizeof *P), *Tn = ry__calloc((size_t)g->n_values, sizeof *Tn);
  ry_value *in = ry__calloc(1024, sizeof *in), *tin = ry__calloc(1024, sizeof *tin);
  ry_value *out = ry__calloc(RY_MAX_OUTPUTS, sizeof *out), *tout = ry__calloc(RY_MAX_OUTPUTS, sizeof *tout);
  ry_value *ovr = ry__calloc(RY_MAX_OUTPUTS, sizeof *ovr);
  int nres = 0;
  if (!P || !Tn || !in || !tin || !out || !tout || !ovr) {
    ryb_fail(b, ry__oom());
    goto done;
  }
  for (int i = 0; i < reg->params.n; i++) {
    P[reg->params.v[i]] = x[i];
    /* integer and bool values carry no tangent (float0) */
    Tn[reg->params.v[i]] = ry_dtype_is_float(ry_vtype(g, reg->params.v[i]).dtype) ? tx[i] : (ry_value){0};
  }
  for (int k = 0; k < reg->nodes.n && ryb_ok(b); k++) {
    const ry_node *n = &g->nodes[reg->nodes.v[k]];
    if (n->n_operands > 1024 || n->n_results > RY_MAX_OUTPUTS) {
      ryb_failf(b, n->loc, RY_ERR_UNSUPPORTED, ryg_op_table[n->op].name, "too many operands for jvp");
      break;
    }
    const int32_t *ops = ry_node_operands(g, n);
    bool any = false;
    for (int i = 0; i < n->n_operands; i++) {
      in[i] = P[ops[i]];
      tin[i] = Tn[ops[i]];
      any |= tin[i].id != 0;
    }
    int m;
    if (subst && subst[reg->nodes.v[k]].id) { /* a saved value replaces the node's primal */
      out[0] = subst[reg->nodes.v[k]];
      m = 1;
    } else {
      m = ryt_copy_node(b, g, n, in, out);
    }
    if (!ryb_ok(b)) break;
    for (int i = 0; i < m; i++) tout[i] = ovr[i] = (ry_value){0};
    if (any) {
      ryt_jvp_args a = {b, n->loc, g, n, in, tin, out, tout, ovr};
      ryt_jvp_rules[n->op](&a);
      if (!ryb_ok(b)) break;
    }
    const int32_t *rs = ry_node_results(g, n);
    for (int i = 0; i < m; i++) {
      P[rs[i]] = ovr[i].id ? ovr[i] : out[i];
      bool fl = ry_dtype_is_float(ry_vtype(g, rs[i]).dtype);
      Tn[rs[i]] = fl ? tout[i] : (ry_value){0};
    }
  }
  if (ryb_ok(b)) {
    for (int i = 0; i < reg->results.n; i++) {
      y[i] = P[reg->results.v[i]];
      ty[i] = Tn[reg->results.v[i]];
    }
    nres = reg->results.n;
  }
done:
  ry__free(P, (size_t)g->n_values * sizeof *P);
  ry__free(Tn, (size_t)g->n_values * sizeof *Tn);
  ry__free(in, 1024 * sizeof *in);
  ry__free(tin, 1024 * sizeof *tin);
  ry__free(out, RY_MAX_OUTPUTS * sizeof *out);
  ry__free(tout, RY_MAX_OUTPUTS * sizeof *tout);
  ry__free(ovr, RY_MAX_OUTPUTS * sizeof *ovr);
  return nres;
}
