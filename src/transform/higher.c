/* Compositions of the basic transformations: Hessian-vector products and
 * Jacobians. Each is built by applying ry_grad / ry_jvp / ry_vjp / ry_vmap
 * to graphs and wiring the results with a builder. */
#include "transform.h"

static ry_status check_argnum(const char *api, ry_graph *f, int argnum, ry_graph **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: out is NULL", api);
  *out = NULL;
  if (!f) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: the graph is NULL", api);
  int n = ry_graph_num_inputs(f);
  if (argnum < 0 || argnum >= n)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: argnum %d is out of range: @%s has %d inputs", api, argnum, f->name, n);
  ry_type t = ry_graph_input_type(f, argnum);
  if (!ry_dtype_is_float(t.dtype)) {
    char ts[200];
    return ry__err(RY_ERR_DTYPE, "%s: input %d of @%s has type %s; only float inputs can be differentiated", api, argnum, f->name,
                   ry_type_str(t, ts, sizeof ts));
  }
  if (ry_graph_num_outputs(f) < 1) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: @%s has no outputs", api, f->name);
  return NULL;
}

ry_status ry_hvp(ry_graph *f, int argnum, ry_graph **out) {
  ry_status s = check_argnum("ry_hvp", f, argnum, out);
  if (s) return s;
  ry_grad_opts o = {1, &argnum, 0};
  ry_graph *g = NULL, *jg = NULL;
  if ((s = ry_grad(f, &o, &g))) return ry__err_prefix(s, "ry_hvp");
  s = ry_jvp(g, &jg); /* (x..., t...) -> (grad, H t) */
  ry_graph_release(g);
  if (s) return ry__err_prefix(s, "ry_hvp");
  int n = ry_graph_num_inputs(f);
  ry_builder *b = ry_builder_new(f->name);
  ry_value *in = ry__calloc((size_t)2 * n + 1, sizeof *in), outs[2];
  if (!b || !in) {
    ry_builder_free(b);
    ry__free(in, ((size_t)2 * n + 1) * sizeof *in);
    ry_graph_release(jg);
    return ry__oom();
  }
  for (int i = 0; i < n; i++) in[i] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  ry_value v = ry_input(b, "v", ry_graph_input_type(f, argnum));
  for (int i = 0; i < n; i++) in[n + i] = i == argnum ? v : ryt_zeros(b, (ry_loc){0}, ry_graph_input_type(f, i));
  int m = ry_call_(b, (ry_loc){0}, jg, 2 * n, in, outs);
  ry_graph *h = NULL;
  s = ry_builder_finish(b, m == 2 ? 1 : 0, &outs[1], &h);
  ry__free(in, ((size_t)2 * n + 1) * sizeof *in);
  ry_graph_release(jg);
  if (s) return ry__err_prefix(s, "ry_hvp");
  ry_graph *hi = NULL;
  s = ryt_inline_calls(h, &hi);
  ry_graph_release(h);
  if (s) return s;
  s = ry_simplify(hi, out);
  ry_graph_release(hi);
  return s;
}

/* The identity basis for a tensor type: (n, shape...) with n = numel. */
static ry_value basis(ry_builder *b, ry_type t) {
  int64_t n = ry_shape_numel(t.shape);
  ry_shape sq = ry_shape_make(2, (int64_t[]){n, n});
  ry_value eye = ry_convert_(b, (ry_loc){0},
                             ry_compare_(b, (ry_loc){0}, ry_iota_(b, (ry_loc){0}, RY_I32, sq, 0), ry_iota_(b, (ry_loc){0}, RY_I32, sq, 1), RY_EQ), t.dtype);
  ry_shape full = t.shape;
  if (full.rank >= RY_MAX_RANK) return ryb_failf(b, (ry_loc){0}, RY_ERR_SHAPE, "jacobian", "rank too large"), (ry_value){0};
  for (int i = full.rank; i > 0; i--) full.dims[i] = full.dims[i - 1];
  full.dims[0] = n;
  full.rank++;
  return ry_reshape_(b, (ry_loc){0}, eye, full);
}

/* Move axis 0 of v (the basis axis) to the end: (n, A...) -> (A..., n)
 * reshaped to (A..., in.shape...). */
static ry_value basis_last(ry_builder *b, ry_value v, ry_type in) {
  ry_shape s = ry_value_shape(b, v);
  ry_axes perm = {s.rank, {0}};
  for (int i = 0; i < s.rank - 1; i++) perm.v[i] = i + 1;
  perm.v[s.rank - 1] = 0;
  ry_value t = ry_transpose_(b, (ry_loc){0}, v, perm);
  ry_shape o;
  memset(&o, 0, sizeof o);
  for (int i = 1; i < s.rank; i++) o.dims[o.rank++] = s.dims[i];
  for (int i = 0; i < in.shape.rank; i++) {
    if (o.rank >= RY_MAX_RANK) return ryb_failf(b, (ry_loc){0}, RY_ERR_SHAPE, "jacobian", "rank of the Jacobian exceeds 8"), t;
    o.dims[o.rank++] = in.shape.dims[i];
  }
  return ry_reshape_(b, (ry_loc){0}, t, o);
}

/* Wrap a graph h(x..., e) into x... -> h(x..., basis) after vmapping over e. */
static ry_status jac_common(const char *api, ry_graph *f, int argnum, bool forward, ry_graph **out) {
  ry_status s = check_argnum(api, f, argnum, out);
  if (s) return s;
  int n = ry_graph_num_inputs(f), m = ry_graph_num_outputs(f);
  ry_type tin = ry_graph_input_type(f, argnum), tout = ry_graph_output_type(f, 0);
  if (!ry_dtype_is_float(tout.dtype)) {
    char ts[200];
    return ry__err(RY_ERR_DTYPE, "%s: output 0 of @%s has type %s; it must be float", api, f->name, ry_type_str(tout, ts, sizeof ts));
  }
  ry_graph *lin = NULL, *lin2 = NULL, *fwd = NULL;
  int nres = 0;
  /* lin(x..., e) -> one row of the Jacobian product */
  if (forward)
    s = ry_jvp(f, &lin);
  else
    s = ry_vjp(f, &fwd, &lin, &nres);
  if (s) return ry__err_prefix(s, "%s", api);
  /* a single-purpose graph: (x..., e) -> row */
  ry_builder *b = ry_builder_new("jac_row");
  ry_value *x = ry__calloc((size_t)2 * n + (size_t)m + (size_t)nres + 2, sizeof *x);
  ry_value *r = ry__calloc((size_t)2 * (size_t)(n + m + nres) + 2, sizeof *r);
  if (!b || !x || !r) {
    s = ry__oom();
    ry_builder_free(b);
    goto done;
  }
  for (int i = 0; i < n; i++) x[i] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  ry_value e = ry_input(b, "e", forward ? tin : tout);
  if (forward) {
    for (int i = 0; i < n; i++) x[n + i] = i == argnum ? e : ryt_zeros(b, (ry_loc){0}, ry_graph_input_type(f, i));
    int k = ry_call_(b, (ry_loc){0}, lin, 2 * n, x, r);
    s = ry_builder_finish(b, k ? 1 : 0, &r[m], &lin2);
  } else {
    int k = ry_call_(b, (ry_loc){0}, fwd, n, x, r); /* (y..., residuals...) */
    ry_value *bin = x + n;
    for (int i = 0; i < nres; i++) bin[i] = r[m + i];
    for (int i = 0; i < m; i++) bin[nres + i] = i == 0 ? e : ryt_zeros(b, (ry_loc){0}, ry_graph_output_type(f, i));
    int k2 = k ? ry_call_(b, (ry_loc){0}, lin, nres + m, bin, r) : 0;
    s = ry_builder_finish(b, k2 ? 1 : 0, &r[argnum], &lin2);
  }
  if (s) goto done;
  /* vmap over e only */
  int *axes = ry__calloc((size_t)n + 2, sizeof *axes);
  if (!axes) {
    s = ry__oom();
    goto done;
  }
  for (int i = 0; i < n; i++) axes[i] = RY_NOT_BATCHED;
  axes[n] = 0;
  ry_graph *vm = NULL;
  s = ry_vmap(lin2, ry_shape_numel(forward ? tin.shape : tout.shape), axes, NULL, &vm);
  ry__free(axes, ((size_t)n + 2) * sizeof *axes);
  if (s) goto done;
  b = ry_builder_new(f->name);
  if (!b) {
    ry_graph_release(vm);
    s = ry__oom();
    goto done;
  }
  for (int i = 0; i < n; i++) x[i] = ry_input(b, ry_graph_input_name(f, i), ry_graph_input_type(f, i));
  x[n] = basis(b, forward ? tin : tout);
  ry_value rows;
  int k = ry_call_(b, (ry_loc){0}, vm, n + 1, x, &rows);
  ry_value jac = (ry_value){0};
  if (k) {
    if (forward) {
      jac = basis_last(b, rows, tin); /* (n_in, out...) -> (out..., in...) */
    } else {
      /* rows: (n_out, in...) -> (out..., in...) */
      ry_shape rs = ry_value_shape(b, rows), o = tout.shape;
      for (int i = 1; i < rs.rank; i++) {
        if (o.rank >= RY_MAX_RANK) break;
        o.dims[o.rank++] = rs.dims[i];
      }
      jac = ry_reshape_(b, (ry_loc){0}, rows, o);
    }
  }
  ry_graph *jg = NULL;
  s = ry_builder_finish(b, ry_value_ok(jac) ? 1 : 0, &jac, &jg);
  ry_graph_release(vm);
  if (!s) {
    ry_graph *ji = NULL;
    s = ryt_inline_calls(jg, &ji);
    if (!s) s = ry_simplify(ji, out);
    ry_graph_release(ji);
  }
  ry_graph_release(jg);
done:
  if (s) s = ry__err_prefix(s, "%s of @%s", api, f->name);
  ry__free(x, ((size_t)2 * n + (size_t)m + (size_t)nres + 2) * sizeof *x);
  ry__free(r, ((size_t)2 * (size_t)(n + m + nres) + 2) * sizeof *r);
  ry_graph_release(lin);
  ry_graph_release(lin2);
  ry_graph_release(fwd);
  return s;
}

ry_status ry_jacfwd(ry_graph *f, int argnum, ry_graph **out) { return jac_common("ry_jacfwd", f, argnum, true, out); }
ry_status ry_jacrev(ry_graph *f, int argnum, ry_graph **out) { return jac_common("ry_jacrev", f, argnum, false, out); }

ry_status ry_hessian(ry_graph *f, int argnum, ry_graph **out) {
  ry_status s = check_argnum("ry_hessian", f, argnum, out);
  if (s) return s;
  ry_graph *jr = NULL;
  if ((s = ry_jacrev(f, argnum, &jr))) return ry__err_prefix(s, "ry_hessian");
  s = ry_jacfwd(jr, argnum, out);
  ry_graph_release(jr);
  return s ? ry__err_prefix(s, "ry_hessian") : NULL;
}
