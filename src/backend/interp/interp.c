/* The interpreter's evaluator: region by region, node by node, releasing each
 * value after its last use; control flow, calls and custom calls; the kernel
 * table and the backend entry points. */
#include <math.h>

#include "interp.h"

/* The kernel of every op follows from its KIND in ops.def: the ops of one
 * kind share a kernel (ryi_unary and ryi_binary look up each op's math), so
 * a new op of an existing kind needs no line here. */
#define KERNEL_OF_UNARY ryi_unary
#define KERNEL_OF_UNARY_PRED ryi_unary
#define KERNEL_OF_BINARY ryi_binary
#define KERNEL_OF_COMPARE ryi_compare
#define KERNEL_OF_SELECT ryi_select
#define KERNEL_OF_CLAMP ryi_clamp
#define KERNEL_OF_CONVERT ryi_convert
#define KERNEL_OF_BITCAST ryi_bitcast
#define KERNEL_OF_BROADCAST ryi_broadcast
#define KERNEL_OF_RESHAPE ryi_reshape
#define KERNEL_OF_TRANSPOSE ryi_transpose
#define KERNEL_OF_SLICE ryi_slice
#define KERNEL_OF_DYNAMIC_SLICE ryi_dynamic_slice
#define KERNEL_OF_DYNAMIC_UPDATE_SLICE ryi_dynamic_update_slice
#define KERNEL_OF_CONCATENATE ryi_concatenate
#define KERNEL_OF_PAD ryi_pad
#define KERNEL_OF_REVERSE ryi_reverse
#define KERNEL_OF_IOTA ryi_iota
#define KERNEL_OF_CONSTANT ryi_constant
#define KERNEL_OF_REDUCE ryi_reduce
#define KERNEL_OF_ARG ryi_argmax
#define KERNEL_OF_CUMULATIVE ryi_cumulative
#define KERNEL_OF_REDUCE_WINDOW ryi_reduce_window
#define KERNEL_OF_SELECT_AND_SCATTER ryi_select_and_scatter
#define KERNEL_OF_SELECT_AND_GATHER ryi_select_and_gather
#define KERNEL_OF_DOT ryi_dot_general
#define KERNEL_OF_CONV ryi_convolution
#define KERNEL_OF_GATHER ryi_gather
#define KERNEL_OF_SCATTER ryi_scatter
#define KERNEL_OF_SORT ryi_sort
#define KERNEL_OF_THREEFRY ryi_threefry
#define KERNEL_OF_DEQUANTIZE ryi_dequantize
#define KERNEL_OF_COND ryi_cond
#define KERNEL_OF_WHILE ryi_while
#define KERNEL_OF_SCAN ryi_scan
#define KERNEL_OF_CALL ryi_call
#define KERNEL_OF_CUSTOM ryi_custom_call
#define KERNEL_OF_ALL_REDUCE ryi_all_reduce
#define KERNEL_OF_ALL_GATHER ryi_all_gather
#define KERNEL_OF_REDUCE_SCATTER ryi_reduce_scatter
#define KERNEL_OF_COLLECTIVE_BROADCAST ryi_collective_broadcast
#define KERNEL_OF_SHARDING ryi_sharding
#define OP(id, name, n_operands, n_results, attrs, kind, dtypes, flags) [RY_OP_##id] = KERNEL_OF_##kind,
const ry_interp_kernel ryi_kernels[RY_OP_COUNT] = {
#include "../../ir/ops.def"
};
#undef OP


/* ---- helpers ---- */

ry_status ryi_new_result(const ryi_frame *f, const ry_node *n, int i, ry_array **out) {
  return ry__array_new(ryi_result_type(f, n, i), out);
}

ry_status ryi_new_result_uninit(const ryi_frame *f, const ry_node *n, int i, ry_array **out) {
  return ry__array_new_uninit(ryi_result_type(f, n, i), out);
}

/* Round a double to float by rounding to odd: the float's last bit records
 * whether anything was lost, so a later rounding to a narrower format (f16,
 * bf16) is correct, as if done directly from the double. */
static float round_to_odd(double v) {
  float r = (float)v;
  if (isnan(v) || (double)r == v) return r;
  if (isinf(r) && !isinf(v)) r = r > 0 ? 3.40282347e38f : -3.40282347e38f;
  else if (fabs((double)r) > fabs(v)) r = nextafterf(r, 0.0f);
  uint32_t bits;
  memcpy(&bits, &r, 4);
  bits |= 1;
  memcpy(&r, &bits, 4);
  return r;
}

void ryi_store_f64(ry_dtype t, void *data, int64_t i, double v) {
  if (t == RY_F16)
    ((uint16_t *)data)[i] = ry__f32_to_f16(round_to_odd(v));
  else if (t == RY_BF16)
    ((uint16_t *)data)[i] = ry__f32_to_bf16(round_to_odd(v));
  else
    ry__store_f64(t, data, i, v);
}

/* ---- evaluator ---- */

static void release_all(int n, ry_array **a) {
  for (int i = 0; i < n; i++) {
    ry_array_release(a[i]);
    a[i] = NULL;
  }
}

/* Release every value of region r still held in the frame. */
static void clear_region(const ryi_frame *f, const ry_region *reg) {
  for (int32_t i = 0; i < reg->params.n; i++) {
    int32_t v = reg->params.v[i];
    ry_array_release(f->vals[v]);
    f->vals[v] = NULL;
  }
  for (int32_t k = 0; k < reg->nodes.n; k++) {
    const ry_node *n = &f->g->nodes[reg->nodes.v[k]];
    const int32_t *res = ry_node_results(f->g, n);
    for (int i = 0; i < n->n_results; i++) {
      ry_array_release(f->vals[res[i]]);
      f->vals[res[i]] = NULL;
    }
  }
}

static ry_status node_error(const ry_node *n, ry_status s) {
  if (n->loc.file) return ry__err_prefix(s, "%s at %s:%d", ryg_op_table[n->op].name, n->loc.file, n->loc.line);
  return ry__err_prefix(s, "%s", ryg_op_table[n->op].name);
}

#define SMALL 16

ry_status ryi_eval_node(const ryi_frame *f, const ry_node *n) {
  const ry_graph *g = f->g;
  if ((int)n->op < 0 || n->op >= RY_OP_COUNT || !ryi_kernels[n->op])
    return ry__err(RY_ERR_UNSUPPORTED, "interp: op %d has no kernel", (int)n->op);
  ry_array *in_small[SMALL], *out_small[SMALL];
  ry_array **in = in_small, **out = out_small;
  size_t in_size = (size_t)n->n_operands * sizeof(ry_array *), out_size = (size_t)n->n_results * sizeof(ry_array *);
  if (n->n_operands > SMALL && !(in = ry__malloc(in_size))) return ry__oom();
  if (n->n_results > SMALL && !(out = ry__calloc(1, out_size))) {
    if (in != in_small) ry__free(in, in_size);
    return ry__oom();
  }
  if (out == out_small) memset(out_small, 0, sizeof out_small);
  const int32_t *ops = ry_node_operands(g, n), *res = ry_node_results(g, n);
  ry_status s = NULL;
  for (int i = 0; i < n->n_operands; i++) {
    in[i] = f->vals[ops[i]];
    if (!in[i]) s = ry__err(RY_ERR_INTERNAL, "interp: operand %d (value %d) has no value", i, (int)ops[i]);
  }
  if (!s) s = ryi_kernels[n->op](f, n, in, out);
  for (int i = 0; !s && i < n->n_results; i++) {
    ry_type want = ry_vtype(g, res[i]);
    if (!out[i] || !ry_type_equal(out[i]->type, want)) {
      char a[64], b[64];
      s = ry__err(RY_ERR_INTERNAL, "interp: kernel produced %s for result %d, expected %s",
                  out[i] ? ry_type_str(out[i]->type, a, sizeof a) : "nothing", i, ry_type_str(want, b, sizeof b));
    }
  }
  if (s) {
    release_all(n->n_results, out);
  } else {
    for (int i = 0; i < n->n_results; i++) f->vals[res[i]] = out[i];
  }
  if (in != in_small) ry__free(in, in_size);
  if (out != out_small) ry__free(out, out_size);
  return s ? node_error(n, s) : NULL;
}

ry_status ryi_eval_region(const ryi_frame *f, int32_t r, int n_in, ry_array *const *in, ry_array **out) {
  const ry_graph *g = f->g;
  const ry_region *reg = &g->regions[r];
  if (n_in != reg->params.n)
    return ry__err(RY_ERR_INTERNAL, "interp: region %d takes %d arguments, got %d", (int)r, (int)reg->params.n, n_in);
  for (int i = 0; i < n_in; i++) f->vals[reg->params.v[i]] = ry_array_retain(in[i]);
  ry_status s = NULL;
  for (int32_t k = 0; k < reg->nodes.n && !s; k++) {
    const ry_node *n = &g->nodes[reg->nodes.v[k]];
    s = ryi_eval_node(f, n);
    if (s) break;
    /* release operands whose last use this was, and results nobody uses */
    const int32_t *ops = ry_node_operands(g, n), *res = ry_node_results(g, n);
    for (int i = 0; i < n->n_operands; i++)
      if (f->last_use[ops[i]] == k && f->vals[ops[i]]) {
        ry_array_release(f->vals[ops[i]]);
        f->vals[ops[i]] = NULL;
      }
    for (int i = 0; i < n->n_results; i++)
      if (f->last_use[res[i]] < 0) {
        ry_array_release(f->vals[res[i]]);
        f->vals[res[i]] = NULL;
      }
  }
  for (int32_t i = 0; !s && i < reg->results.n; i++) {
    out[i] = ry_array_retain(f->vals[reg->results.v[i]]);
    if (!out[i]) {
      release_all(i, out);
      s = ry__err(RY_ERR_INTERNAL, "interp: region %d result %d has no value", (int)r, (int)i);
    }
  }
  clear_region(f, reg);
  return s;
}

ry_status ryi_run_graph(const ry_graph *g, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  if (n_out != g->regions[0].results.n)
    return ry__err(RY_ERR_INTERNAL, "interp: graph '%s' has %d outputs, asked for %d", g->name,
                   (int)g->regions[0].results.n, n_out);
  size_t nv = (size_t)g->n_values;
  ryi_frame f = {g, ry__calloc(nv, sizeof(ry_array *)), ry__malloc(nv * sizeof(int32_t)), NULL};
  if (!f.vals || !f.last_use) {
    ry__free(f.vals, nv * sizeof(ry_array *));
    ry__free(f.last_use, nv * sizeof(int32_t));
    return ry__oom();
  }
  for (size_t v = 0; v < nv; v++) f.last_use[v] = -1;
  for (int32_t r = 0; r < g->n_regions; r++) {
    const ry_region *reg = &g->regions[r];
    for (int32_t k = 0; k < reg->nodes.n; k++) {
      const ry_node *n = &g->nodes[reg->nodes.v[k]];
      const int32_t *ops = ry_node_operands(g, n);
      for (int i = 0; i < n->n_operands; i++) f.last_use[ops[i]] = k;
    }
    for (int32_t i = 0; i < reg->results.n; i++) f.last_use[reg->results.v[i]] = INT32_MAX;
  }
  ry_status s = ryi_eval_region(&f, 0, n_in, in, out);
  ry__free(f.vals, nv * sizeof(ry_array *));
  ry__free(f.last_use, nv * sizeof(int32_t));
  return s;
}

/* ---- control flow and calls ---- */

ry_status ryi_cond(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  if (n->n_regions < 1) return ry__err(RY_ERR_VERIFY, "cond has no branches");
  const ry_array *idx = in[0];
  int64_t b;
  if (idx->type.dtype == RY_BOOL) {
    b = ry__load_i64(RY_BOOL, idx->data, 0) ? 1 : 0;
  } else {
    b = ry__load_i64(idx->type.dtype, idx->data, 0);
  }
  if (b < 0 || b >= n->n_regions) b = n->n_regions - 1;
  return ryi_eval_region(f, ry_node_regions(f->g, n)[b], n->n_operands - 1, in + 1, out);
}

ry_status ryi_while(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  if (n->n_regions != 2) return ry__err(RY_ERR_VERIFY, "while needs 2 regions, has %d", (int)n->n_regions);
  int k = (int)n->attrs.while_.n_consts, nc = n->n_results, nargs = n->n_operands;
  if (k < 0 || k + nc != nargs)
    return ry__err(RY_ERR_VERIFY, "while: %d operands do not match n_consts=%d and %d results", nargs, k, nc);
  int32_t rc = ry_node_regions(f->g, n)[0], rb = ry_node_regions(f->g, n)[1];
  size_t size = (size_t)nargs * sizeof(ry_array *);
  ry_array **args = ry__malloc(size); /* consts, then the current carry (owned) */
  if (!args) return ry__oom();
  for (int i = 0; i < nargs; i++) args[i] = ry_array_retain(in[i]);
  ry_status s = NULL;
  for (;;) {
    ry_array *pred = NULL;
    s = ryi_eval_region(f, rc, nargs, args, &pred);
    if (s) break;
    bool go = ry__load_i64(pred->type.dtype, pred->data, 0) != 0;
    ry_array_release(pred);
    if (!go) break;
    s = ryi_eval_region(f, rb, nargs, args, out); /* out as scratch for the new carry */
    if (s) break;
    for (int i = 0; i < nc; i++) {
      ry_array_release(args[k + i]);
      args[k + i] = out[i];
      out[i] = NULL;
    }
  }
  if (!s)
    for (int i = 0; i < nc; i++) out[i] = ry_array_retain(args[k + i]);
  release_all(nargs, args);
  ry__free(args, size);
  return s;
}

/* scan: the body runs `length` times over slices of the scanned operands,
 * threading the carry and stacking its extra results. */
ry_status ryi_scan(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  int64_t len = n->attrs.scan.length;
  int nc = (int)n->attrs.scan.n_consts, ncar = (int)n->attrs.scan.n_carry, nin = n->n_operands, nres = n->n_results;
  int nx = nin - nc - ncar, ny = nres - ncar;
  if (nc < 0 || ncar < 0 || nx < 0 || ny < 0 || n->n_regions != 1) return ry__err(RY_ERR_VERIFY, "scan: malformed node");
  int32_t rb = ry_node_regions(f->g, n)[0];
  const ry_region *reg = &f->g->regions[rb];
  size_t asz = (size_t)(nin + nres) * sizeof(ry_array *);
  ry_array **args = ry__calloc(1, asz), **res = args + nin;
  if (!args) return ry__oom();
  ry_status s = NULL;
  for (int i = 0; i < nc + ncar; i++) args[i] = ry_array_retain(in[i]);
  for (int j = 0; j < ny && !s; j++) s = ryi_new_result(f, n, ncar + j, &out[ncar + j]);
  for (int64_t t = 0; t < len && !s; t++) {
    int64_t i = n->attrs.scan.reverse ? len - 1 - t : t;
    for (int k = 0; k < nx && !s; k++) {
      ry_type st = ry_vtype(f->g, reg->params.v[nc + ncar + k]);
      s = ry__array_new(st, &args[nc + ncar + k]);
      if (!s && args[nc + ncar + k]->nbytes)
        memcpy(args[nc + ncar + k]->data, (const char *)in[nc + ncar + k]->data + (size_t)i * args[nc + ncar + k]->nbytes,
               args[nc + ncar + k]->nbytes);
    }
    if (!s) s = ryi_eval_region(f, rb, nin, args, res);
    if (s) break;
    for (int k = 0; k < ncar; k++) {
      ry_array_release(args[nc + k]);
      args[nc + k] = res[k];
      res[k] = NULL;
    }
    for (int j = 0; j < ny; j++) {
      ry_array *y = res[ncar + j];
      if (y->nbytes) memcpy((char *)out[ncar + j]->data + (size_t)i * y->nbytes, y->data, y->nbytes);
      ry_array_release(y);
      res[ncar + j] = NULL;
    }
    for (int k = 0; k < nx; k++) {
      ry_array_release(args[nc + ncar + k]);
      args[nc + ncar + k] = NULL;
    }
  }
  if (!s) {
    for (int k = 0; k < ncar; k++) out[k] = ry_array_retain(args[nc + k]);
  } else {
    for (int j = 0; j < ny; j++) {
      ry_array_release(out[ncar + j]);
      out[ncar + j] = NULL;
    }
  }
  for (int i = 0; i < nin + nres; i++) ry_array_release(args[i]);
  ry__free(args, asz);
  return s;
}

ry_status ryi_call(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const ry_graph *callee = n->attrs.call.callee;
  if (!callee) return ry__err(RY_ERR_VERIFY, "call has no callee");
  ry_status s = ryi_run_graph(callee, n->n_operands, in, n->n_results, out);
  return s ? ry__err_prefix(s, "in @%s", callee->name) : NULL;
}

ry_status ryi_custom_call(const ryi_frame *f, const ry_node *n, ry_array *const *in, ry_array **out) {
  const char *target = n->attrs.custom.target ? n->attrs.custom.target : "";
  void *ud = NULL;
  ry_custom_call_fn fn = ry__custom_call_lookup(target, &ud);
  if (!fn) return ry__err(RY_ERR_NOT_FOUND, "no function is registered for target '%s'", target);
  int nr = n->n_results;
  ry_type small[SMALL], *types = small;
  size_t tsize = (size_t)nr * sizeof(ry_type);
  if (nr > SMALL && !(types = ry__malloc(tsize))) return ry__oom();
  for (int i = 0; i < nr; i++) types[i] = ryi_result_type(f, n, i);
  ry_status s = fn(ud, n->n_operands, in, nr, types, out);
  if (s) {
    s = ry__err_prefix(s, "target '%s' failed", target);
  } else {
    for (int i = 0; i < nr && !s; i++) {
      char a[64], b[64];
      if (!out[i])
        s = ry__err(RY_ERR_INVALID_ARGUMENT, "target '%s' did not set result %d", target, i);
      else if (!ry_type_equal(out[i]->type, types[i]))
        s = ry__err(out[i]->type.dtype != types[i].dtype ? RY_ERR_DTYPE : RY_ERR_SHAPE,
                    "target '%s' returned %s for result %d but the call declares %s", target,
                    ry_type_str(out[i]->type, a, sizeof a), i, ry_type_str(types[i], b, sizeof b));
    }
  }
  if (types != small) ry__free(types, tsize);
  return s;
}

/* ---- backend ---- */

static ry_status interp_compile(ry_graph *g, void **state) {
  *state = NULL;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const ry_node *n = &g->nodes[i];
    if ((int)n->op < 0 || n->op >= RY_OP_COUNT || !ryi_kernels[n->op])
      return ry__err(RY_ERR_UNSUPPORTED, "interp: op %d has no kernel", (int)n->op);
  }
  return NULL;
}

static ry_status interp_execute(void *state, ry_graph *g, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  (void)state;
  return ryi_run_graph(g, n_in, in, n_out, out);
}

static void interp_free(void *state) { (void)state; }

const ry_backend ryi_backend = {
    .name = "interp",
    .description = "reference interpreter: evaluates every op directly on the host (slow, exact)",
    .compile = interp_compile,
    .execute = interp_execute,
    .free_state = interp_free,
};
