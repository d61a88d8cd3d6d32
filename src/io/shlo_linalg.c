/* StableHLO's triangular_solve as ryft ops: every case is turned into a
 * lower-triangular system solved from the left (transposing a flips the
 * triangle, a solve from the right is the transposed solve from the left,
 * an upper system is a lower one with rows and columns reversed), then
 * forward substitution unrolled over the rows: row i of x is
 * (b_i - a[i, :i] x[:i]) / a[i, i]. Only the triangle `lower` names is
 * read, as the op specifies; ry_grad differentiates the result like any
 * other program. JAX on CPU writes the LAPACK trsm custom call instead,
 * read here too. */
#include "shlo_internal.h"

typedef shlo_x X;
#define B (x->b)
#define MAX_ROWS 2048
#define L (x->loc)

/* v with its last two dimensions swapped */
static ry_value swap_last(X *x, ry_value v) {
  int r = ry_value_shape(B, v).rank;
  ry_axes p = {r, {0}};
  for (int d = 0; d < r; d++) p.v[d] = d;
  p.v[r - 2] = r - 1, p.v[r - 1] = r - 2;
  return ry_transpose_(B, L, v, p);
}

/* v[..., lo:hi, c0:c1] */
static ry_value block(X *x, ry_value v, int64_t lo, int64_t hi, int64_t c0, int64_t c1) {
  ry_shape s = ry_value_shape(B, v);
  int r = s.rank;
  ry_axes st = {r, {0}}, li = {r, {0}}, one = {r, {0}};
  for (int d = 0; d < r; d++) li.v[d] = s.dims[d], one.v[d] = 1;
  st.v[r - 2] = lo, li.v[r - 2] = hi, st.v[r - 1] = c0, li.v[r - 1] = c1;
  return ry_slice_(B, L, v, st, li, one);
}

/* a: [..., m, m] lower triangular, b: [..., m, n]: x with a x = b. */
static ry_value forward_subst(X *x, ry_value a, ry_value b, bool unit) {
  ry_shape bs = ry_value_shape(B, b);
  int r = bs.rank;
  int64_t m = bs.dims[r - 2], n = bs.dims[r - 1];
  ry_dot_dims dd;
  memset(&dd, 0, sizeof dd);
  for (int d = 0; d < r - 2; d++) dd.lhs_batch.v[dd.lhs_batch.n++] = d, dd.rhs_batch.v[dd.rhs_batch.n++] = d;
  dd.lhs_contract = (ry_axes){1, {r - 1}};
  dd.rhs_contract = (ry_axes){1, {r - 2}};
  ry_value *rows = ry__calloc((size_t)(m ? m : 1), sizeof *rows);
  if (!rows) return ryb_fail(B, ry__oom()), (ry_value){0};
  ry_dtype t = ry_value_dtype(B, b);
  for (int64_t i = 0; i < m && ryb_ok(B); i++) {
    ry_value xi = block(x, b, i, i + 1, 0, n); /* [..., 1, n] */
    if (i > 0) {
      ry_value done = ry_concatenate_(B, L, (int)i, rows, r - 2); /* x[:i]: [..., i, n] */
      xi = ry_sub_(B, L, xi, ry_dot_general_(B, L, block(x, a, i, i + 1, 0, i), done, dd, t));
    }
    if (!unit) xi = ry_div_(B, L, xi, block(x, a, i, i + 1, i, i + 1));
    rows[i] = xi;
  }
  ry_value res = m ? ry_concatenate_(B, L, (int)m, rows, r - 2) : b;
  ry__free(rows, (size_t)(m ? m : 1) * sizeof *rows);
  return res;
}

static bool bool_attr(X *x, const char *name, bool *out) {
  const shlo_span *s = shlo_attr(x, name, NULL);
  if (!s) return shlo_xfail(x, RY_ERR_PARSE, "missing attribute %s", name);
  *out = shlo_span_is(*s, "true");
  if (!*out && !shlo_span_is(*s, "false")) return shlo_xfail(x, RY_ERR_PARSE, "attribute %s is not true or false", name);
  return true;
}

static bool solve(X *x, bool left, bool lower, bool trans, bool unit) {
  if (x->n_in != 2) return shlo_xfail(x, RY_ERR_PARSE, "expects a and b");
  ry_type at = ry_value_type(B, x->in[0]), bt = ry_value_type(B, x->in[1]);
  int r = at.shape.rank;
  if (!ry_dtype_is_float(at.dtype) || bt.dtype != at.dtype)
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a triangular_solve of %s and %s (real floats only)", ry_dtype_name(at.dtype),
                      ry_dtype_name(bt.dtype));
  if (r < 2 || bt.shape.rank != r || at.shape.dims[r - 1] != at.shape.dims[r - 2])
    return shlo_xfail(x, RY_ERR_PARSE, "a must be [..., m, m] and b of the same rank");
  for (int d = 0; d < r - 2; d++)
    if (at.shape.dims[d] != bt.shape.dims[d]) return shlo_xfail(x, RY_ERR_PARSE, "a and b differ in their batch dimensions");
  if (bt.shape.dims[left ? r - 2 : r - 1] != at.shape.dims[r - 1])
    return shlo_xfail(x, RY_ERR_PARSE, "b's %s dimension does not match a", left ? "row" : "column");
  if (at.shape.dims[r - 1] > MAX_ROWS) /* the substitution is unrolled, one step per row */
    return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a triangular_solve of %lld rows (at most %d)", (long long)at.shape.dims[r - 1], MAX_ROWS);
  ry_value a = x->in[0], b = x->in[1];
  if (trans) a = swap_last(x, a), lower = !lower;        /* op(a) = a^T: the other triangle */
  if (!left) a = swap_last(x, a), lower = !lower, b = swap_last(x, b); /* x a = b <=> a^T x^T = b^T */
  ry_axes rev = {2, {r - 2, r - 1}}, rows = {1, {r - 2}};
  if (!lower) a = ry_reverse_(B, L, a, rev), b = ry_reverse_(B, L, b, rows);
  ry_value v = forward_subst(x, a, b, unit);
  if (!lower) v = ry_reverse_(B, L, v, rows);
  if (!left) v = swap_last(x, v);
  return shlo_finish1(x, v);
}

bool shlo_c_triangular_solve(X *x) {
  bool left, lower, unit;
  if (!bool_attr(x, "left_side", &left) || !bool_attr(x, "lower", &lower) || !bool_attr(x, "unit_diagonal", &unit)) return false;
  const shlo_span *ta = shlo_attr(x, "transpose_a", NULL);
  shlo_span tw = ta ? shlo_enum_word(*ta) : (shlo_span){0};
  bool trans = shlo_span_is(tw, "TRANSPOSE") || shlo_span_is(tw, "ADJOINT"); /* the same for real numbers */
  if (!trans && !shlo_span_is(tw, "NO_TRANSPOSE")) return shlo_xfail(x, RY_ERR_PARSE, "malformed transpose_a");
  return solve(x, left, lower, trans, unit);
}

/* JAX on CPU lowers triangular_solve to LAPACK's ?trsm through a custom
 * call (lapack_strsm_ffi, lapack_dtrsm_ffi) whose mhlo.backend_config holds
 * the BLAS flags as characters: side L/R, uplo L/U, trans_x N/T/C, diag N/U.
 * The same solve. */
bool shlo_c_lapack_trsm(X *x) {
  const shlo_span *cfg = shlo_attr(x, "mhlo.backend_config", NULL);
  static const char *const names[4] = {"side", "uplo", "trans_x", "diag"};
  int64_t f[4] = {0};
  for (int i = 0; i < 4; i++) {
    shlo_span v;
    if (!cfg || !shlo_field(*cfg, names[i], &v) || !shlo_int(v, &f[i]))
      return shlo_xfail(x, RY_ERR_UNSUPPORTED, "a LAPACK trsm call without its %s flag in mhlo.backend_config", names[i]);
  }
  bool ok = (f[0] == 'L' || f[0] == 'R') && (f[1] == 'L' || f[1] == 'U') && (f[2] == 'N' || f[2] == 'T' || f[2] == 'C') &&
            (f[3] == 'N' || f[3] == 'U');
  if (!ok) return shlo_xfail(x, RY_ERR_PARSE, "malformed LAPACK trsm flags");
  return solve(x, f[0] == 'L', f[1] == 'L', f[2] != 'N', f[3] == 'U');
}
