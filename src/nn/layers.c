/* Layers: dense, convolution, pooling, normalization, embedding, dropout,
 * activations, MLP blocks, rotary embeddings and attention. */
#include "nn_internal.h"

static ry_value add_bias(ry_builder *b, ry_loc loc, ry_value y, ry_value bias) {
  if (!ry_value_ok(bias)) return y;
  return ADD(y, bias); /* NumPy broadcast: bias[out] aligns with the last axis */
}

ry_value ry_nn_linear_(ry_builder *b, ry_loc loc, ry_value x, ry_value w, ry_value bias) {
  if (!nn_valid(b, loc, "nn.linear", x, "x") || !nn_valid(b, loc, "nn.linear", w, "w")) return NONE;
  ry_shape xs = SHAPE(x), ws = SHAPE(w);
  if (ws.rank != 2 || xs.rank < 1 || xs.dims[xs.rank - 1] != ws.dims[0]) {
    char t1[64], t2[64];
    nn_fail_shape(b, loc, "nn.linear", "x %s and w %s: want x[..., in] and w[in, out]", ry_shape_str(xs, t1, sizeof t1),
                  ry_shape_str(ws, t2, sizeof t2));
    return NONE;
  }
  ry_value y;
  if (xs.rank == 2) {
    y = ry_matmul_(b, loc, x, w);
  } else {
    /* flatten the leading axes so the product is one GEMM */
    ry_value x2 = ry_reshape_(b, loc, x, RY_SHAPE(-1, ws.dims[0]));
    y = ry_matmul_(b, loc, x2, w);
    ry_shape os = xs;
    os.dims[os.rank - 1] = ws.dims[1];
    y = ry_reshape_(b, loc, y, os);
  }
  return add_bias(b, loc, y, bias);
}

/* ---- convolution ---- */

static int64_t or1(int64_t v) { return v > 0 ? v : 1; }

/* ---- im2col convolution (stride 1, no dilation, one group; on request) ----
 * Forward: pad, concatenate the KH*KW shifted windows along channels and
 * multiply by the kernel reshaped to [KH*KW*C, O]. Differentiating that
 * directly would transpose every window slice into a full-size pad, so the
 * layer carries its own VJP (ry_custom_vjp): dx is the same kind of
 * convolution of dy with the flipped, in/out-swapped kernel and pads
 * (K-1-lo, K-1-hi); dw = cols^T @ dy with the forward's cols saved. */

typedef struct im2col_ctx {
  int64_t lo[2], hi[2];
  int which; /* 0: f, 1: fwd, 2: bwd */
} im2col_ctx;

/* returns y, and the cols matrix [N*Ho*Wo, KH*KW*C] in *cols_out */
static ry_value im2col_raw(ry_builder *b, ry_loc loc, ry_value x, ry_value w, const int64_t lo[2], const int64_t hi[2],
                           ry_value *cols_out) {
  ry_shape xs = SHAPE(x), ws = SHAPE(w);
  int64_t N = xs.dims[0], Cc = xs.dims[3], KH = ws.dims[0], KW = ws.dims[1], O = ws.dims[3];
  int64_t Ho = xs.dims[1] + lo[0] + hi[0] - KH + 1, Wo = xs.dims[2] + lo[1] + hi[1] - KW + 1;
  ry_value xp = x;
  if (lo[0] || hi[0] || lo[1] || hi[1])
    xp = ry_pad_(b, loc, x, C(x, 0.0), RY_AXES(0, lo[0], lo[1], 0), RY_AXES(0, hi[0], hi[1], 0), RY_NO_AXES);
  ry_value cols;
  if (KH * KW == 1) {
    cols = ry_slice_(b, loc, xp, RY_AXES(0, 0, 0, 0), RY_AXES(N, Ho, Wo, Cc), RY_NO_AXES);
  } else {
    ry_value parts[64];
    for (int64_t dy = 0; dy < KH; dy++)
      for (int64_t dx = 0; dx < KW; dx++)
        parts[dy * KW + dx] = ry_slice_(b, loc, xp, RY_AXES(0, dy, dx, 0), RY_AXES(N, dy + Ho, dx + Wo, Cc), RY_NO_AXES);
    cols = ry_concatenate_(b, loc, (int)(KH * KW), parts, 3);
  }
  cols = ry_reshape_(b, loc, cols, RY_SHAPE(N * Ho * Wo, KH * KW * Cc));
  if (cols_out) *cols_out = cols;
  ry_value w2 = ry_reshape_(b, loc, w, RY_SHAPE(KH * KW * Cc, O));
  return ry_reshape_(b, loc, ry_matmul_(b, loc, cols, w2), RY_SHAPE(N, Ho, Wo, O));
}

static int im2col_trace_fn(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const im2col_ctx *c = vctx;
  ry_loc loc = RY_HERE;
  if (c->which == 0) {
    out[0] = im2col_raw(b, loc, in[0], in[1], c->lo, c->hi, NULL);
    return 1;
  }
  if (c->which == 1) {
    ry_value cols;
    out[0] = im2col_raw(b, loc, in[0], in[1], c->lo, c->hi, &cols);
    out[1] = cols;
    out[2] = in[1];
    return 3;
  }
  /* bwd(cols, w, dy) -> (dx, dw) */
  ry_value cols = in[0], w = in[1], dy = in[2];
  ry_shape ws = SHAPE(w), ds = SHAPE(dy);
  int64_t KH = ws.dims[0], KW = ws.dims[1], Cc = ws.dims[2], O = ws.dims[3];
  ry_value wt = ry_transpose_(b, loc, ry_reverse_(b, loc, w, RY_AXES(0, 1)), RY_AXES(0, 1, 3, 2));
  int64_t lo2[2] = {KH - 1 - c->lo[0], KW - 1 - c->lo[1]}, hi2[2] = {KH - 1 - c->hi[0], KW - 1 - c->hi[1]};
  out[0] = im2col_raw(b, loc, dy, wt, lo2, hi2, NULL);
  ry_value dy2 = ry_reshape_(b, loc, dy, RY_SHAPE(ds.dims[0] * ds.dims[1] * ds.dims[2], O));
  ry_dot_dims dd = {RY_NO_AXES, RY_NO_AXES, RY_AXES(0), RY_AXES(0)};
  ry_value dw = ry_dot_general_(b, loc, cols, dy2, dd, DTYPE(w));
  out[1] = ry_reshape_(b, loc, dw, RY_SHAPE(KH, KW, Cc, O));
  return 2;
}

static ry_value im2col_conv(ry_builder *b, ry_loc loc, ry_value x, ry_value w, const int64_t lo[2], const int64_t hi[2]) {
  ry_shape ws = SHAPE(w);
  if (ws.dims[0] * ws.dims[1] > 64) {
    nn_fail(b, loc, "nn.conv2d", "im2col supports kernels of at most 64 taps (got %lldx%lld)", (long long)ws.dims[0],
            (long long)ws.dims[1]);
    return NONE;
  }
  /* the transposed convolution needs pads K-1-lo >= 0 */
  bool simple = lo[0] <= ws.dims[0] - 1 && hi[0] <= ws.dims[0] - 1 && lo[1] <= ws.dims[1] - 1 && hi[1] <= ws.dims[1] - 1 &&
                lo[0] >= 0 && lo[1] >= 0 && hi[0] >= 0 && hi[1] >= 0;
  if (!simple) return im2col_raw(b, loc, x, w, lo, hi, NULL);
  ry_type tx = ry_value_type(b, x), tw = ry_value_type(b, w);
  im2col_ctx c = {{lo[0], lo[1]}, {hi[0], hi[1]}, 0};
  ry_graph *gf = NULL, *gfwd = NULL, *gbwd = NULL;
  ry_type in2[2] = {tx, tw};
  ry_status s = ry_trace("conv2d_im2col", im2col_trace_fn, &c, 2, in2, NULL, &gf);
  ry_type ty;
  if (!s) {
    ty = ry_graph_output_type(gf, 0);
    c.which = 1;
    s = ry_trace("conv2d_im2col_fwd", im2col_trace_fn, &c, 2, in2, NULL, &gfwd);
  }
  if (!s) {
    ry_type in3[3] = {ry_graph_output_type(gfwd, 1), tw, ty};
    c.which = 2;
    s = ry_trace("conv2d_im2col_bwd", im2col_trace_fn, &c, 3, in3, NULL, &gbwd);
  }
  ry_value y = NONE;
  if (s) {
    nn_fail(b, loc, "nn.conv2d", "%s", ry_status_message(s));
    ry_status_free(s);
  } else {
    ry_value args[2] = {x, w};
    ry_custom_vjp_(b, loc, gf, gfwd, gbwd, 2, args, &y);
  }
  ry_graph_release(gf);
  ry_graph_release(gfwd);
  ry_graph_release(gbwd);
  return y;
}

ry_value ry_nn_conv2d_(ry_builder *b, ry_loc loc, ry_value x, ry_value w, ry_value bias, const ry_nn_conv_opts *opts) {
  if (!nn_valid(b, loc, "nn.conv2d", x, "x") || !nn_valid(b, loc, "nn.conv2d", w, "w")) return NONE;
  ry_nn_conv_opts o = opts ? *opts : (ry_nn_conv_opts){{1, 1}, {1, 1}, RY_NN_SAME, {{0, 0}, {0, 0}}, 1, RY_NN_CONV_AUTO};
  ry_shape xs = SHAPE(x), ws = SHAPE(w);
  int64_t groups = or1(o.groups);
  if (xs.rank != 4 || ws.rank != 4 || ws.dims[2] * groups != xs.dims[3] || ws.dims[3] % groups != 0) {
    char t1[64], t2[64];
    nn_fail_shape(b, loc, "nn.conv2d", "x %s and w %s (groups %lld): want x[N, H, W, C] and w[KH, KW, C/groups, O]",
                  ry_shape_str(xs, t1, sizeof t1), ry_shape_str(ws, t2, sizeof t2), (long long)groups);
    return NONE;
  }
  int64_t st[2] = {or1(o.stride[0]), or1(o.stride[1])}, dl[2] = {or1(o.dilation[0]), or1(o.dilation[1])};
  int64_t lo[2], hi[2], out[2];
  for (int i = 0; i < 2; i++) {
    int64_t in = xs.dims[1 + i], k = (ws.dims[i] - 1) * dl[i] + 1;
    if (o.padding == RY_NN_SAME) {
      out[i] = (in + st[i] - 1) / st[i];
      int64_t total = (out[i] - 1) * st[i] + k - in;
      if (total < 0) total = 0;
      lo[i] = total / 2;
      hi[i] = total - lo[i];
    } else if (o.padding == RY_NN_VALID) {
      lo[i] = hi[i] = 0;
    } else {
      lo[i] = o.pad[i][0];
      hi[i] = o.pad[i][1];
    }
    int64_t span = in + lo[i] + hi[i] - k;
    if (span < 0) {
      nn_fail_shape(b, loc, "nn.conv2d", "kernel extent %lld is larger than the padded input %lld", (long long)k,
                    (long long)(in + lo[i] + hi[i]));
      return NONE;
    }
    out[i] = span / st[i] + 1;
  }
  ry_value y;
  if (o.lowering == RY_NN_CONV_IM2COL && st[0] == 1 && st[1] == 1 && dl[0] == 1 && dl[1] == 1 && groups == 1) {
    y = im2col_conv(b, loc, x, w, lo, hi);
  } else {
    ry_conv_dims d = {0};
    d.stride = RY_AXES(st[0], st[1]);
    d.pad_low = RY_AXES(lo[0], lo[1]);
    d.pad_high = RY_AXES(hi[0], hi[1]);
    d.lhs_dilation = RY_AXES(1, 1);
    d.rhs_dilation = RY_AXES(dl[0], dl[1]);
    d.feature_groups = groups;
    d.batch_groups = 1;
    d.input_dims = RY_AXES(0, 3, 1, 2);
    d.kernel_dims = RY_AXES(3, 2, 0, 1);
    d.output_dims = RY_AXES(0, 3, 1, 2);
    y = ry_convolution_(b, loc, x, w, &d);
  }
  return add_bias(b, loc, y, bias);
}

/* ---- pooling ---- */

static ry_value pool(ry_builder *b, ry_loc loc, const char *name, ry_value x, int64_t k, int64_t s, int is_max) {
  if (!nn_valid(b, loc, name, x, "x")) return NONE;
  ry_shape xs = SHAPE(x);
  if (s <= 0) s = k;
  if (xs.rank != 4 || k <= 0 || xs.dims[1] < k || xs.dims[2] < k) {
    char t[64];
    nn_fail_shape(b, loc, name, "x %s with window %lld: want x[N, H, W, C] with H, W >= window", ry_shape_str(xs, t, sizeof t),
                  (long long)k);
    return NONE;
  }
  int64_t N = xs.dims[0], H = xs.dims[1], W = xs.dims[2], Cc = xs.dims[3];
  int64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
  ry_value r;
  if (s == k) {
    /* non-overlapping: crop to a multiple of k, split each spatial axis into
     * (out, k) and reduce the two window axes */
    ry_value xc = x;
    if (Ho * k != H || Wo * k != W) xc = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, 0), RY_AXES(N, Ho * k, Wo * k, Cc), RY_NO_AXES);
    ry_value x6 = ry_reshape_(b, loc, xc, RY_SHAPE(N, Ho, k, Wo, k, Cc));
    r = ry_reduce_(b, loc, x6, is_max ? RY_MAX : RY_SUM, RY_AXES(2, 4));
  } else {
    /* overlapping or gapped windows: combine the k*k strided slices */
    r = NONE;
    for (int64_t dy = 0; dy < k; dy++)
      for (int64_t dx = 0; dx < k; dx++) {
        ry_value sl = ry_slice_(b, loc, x, RY_AXES(0, dy, dx, 0), RY_AXES(N, dy + (Ho - 1) * s + 1, dx + (Wo - 1) * s + 1, Cc),
                                RY_AXES(1, s, s, 1));
        r = ry_value_ok(r) ? (is_max ? ry_max_(b, loc, r, sl) : ADD(r, sl)) : sl;
      }
  }
  if (!is_max) r = DIV(r, C(r, (double)(k * k)));
  return r;
}

ry_value ry_nn_max_pool2d_(ry_builder *b, ry_loc loc, ry_value x, int64_t k, int64_t s) { return pool(b, loc, "nn.max_pool2d", x, k, s, 1); }
ry_value ry_nn_avg_pool2d_(ry_builder *b, ry_loc loc, ry_value x, int64_t k, int64_t s) { return pool(b, loc, "nn.avg_pool2d", x, k, s, 0); }

/* ---- normalization ---- */

ry_value ry_nn_layer_norm_(ry_builder *b, ry_loc loc, ry_value x, ry_value scale, ry_value bias, double eps) {
  if (!nn_valid(b, loc, "nn.layer_norm", x, "x")) return NONE;
  ry_value mean = ry_mean_(b, loc, x, RY_AXES(-1), 1);
  ry_value xc = SUB(x, mean);
  ry_value var = ry_mean_(b, loc, MUL(xc, xc), RY_AXES(-1), 1);
  ry_value y = MUL(xc, ry_rsqrt_(b, loc, ADD(var, C(var, eps))));
  if (ry_value_ok(scale)) y = MUL(y, scale);
  return add_bias(b, loc, y, bias);
}

ry_value ry_nn_rms_norm_(ry_builder *b, ry_loc loc, ry_value x, ry_value scale, double eps) {
  if (!nn_valid(b, loc, "nn.rms_norm", x, "x")) return NONE;
  ry_value ms = ry_mean_(b, loc, MUL(x, x), RY_AXES(-1), 1);
  ry_value y = MUL(x, ry_rsqrt_(b, loc, ADD(ms, C(ms, eps))));
  if (ry_value_ok(scale)) y = MUL(y, scale);
  return y;
}

ry_value ry_nn_batch_norm_(ry_builder *b, ry_loc loc, ry_value x, ry_value scale, ry_value bias, ry_value mean, ry_value var,
                           int train, double momentum, double eps, ry_value *new_mean, ry_value *new_var) {
  if (!nn_valid(b, loc, "nn.batch_norm", x, "x") || !nn_valid(b, loc, "nn.batch_norm", mean, "running mean") ||
      !nn_valid(b, loc, "nn.batch_norm", var, "running var"))
    return NONE;
  ry_shape xs = SHAPE(x);
  if (xs.rank < 1) {
    nn_fail_shape(b, loc, "nn.batch_norm", "x must have a feature axis");
    return NONE;
  }
  ry_value m = mean, v = var;
  if (train) {
    ry_axes ax = {xs.rank - 1, {0}};
    for (int i = 0; i < xs.rank - 1; i++) ax.v[i] = i;
    m = ry_mean_(b, loc, x, ax, 0);
    ry_value xc = SUB(x, m);
    v = ry_mean_(b, loc, MUL(xc, xc), ax, 0);
    if (new_mean) *new_mean = ADD(MUL(C(mean, momentum), mean), MUL(C(m, 1.0 - momentum), ry_stop_gradient_(b, loc, m)));
    if (new_var) *new_var = ADD(MUL(C(var, momentum), var), MUL(C(v, 1.0 - momentum), ry_stop_gradient_(b, loc, v)));
  } else {
    if (new_mean) *new_mean = mean;
    if (new_var) *new_var = var;
  }
  ry_value y = MUL(SUB(x, m), ry_rsqrt_(b, loc, ADD(v, C(v, eps))));
  if (ry_value_ok(scale)) y = MUL(y, scale);
  return add_bias(b, loc, y, bias);
}

ry_value ry_nn_embedding_(ry_builder *b, ry_loc loc, ry_value table, ry_value ids) {
  if (!nn_valid(b, loc, "nn.embedding", table, "table") || !nn_valid(b, loc, "nn.embedding", ids, "ids")) return NONE;
  if (SHAPE(table).rank != 2) {
    nn_fail_shape(b, loc, "nn.embedding", "the table must be [vocab, dim], got rank %d", SHAPE(table).rank);
    return NONE;
  }
  return ry_take_(b, loc, table, ids, 0);
}

ry_value ry_nn_dropout_(ry_builder *b, ry_loc loc, ry_value x, ry_value key, double rate, int train) {
  if (!nn_valid(b, loc, "nn.dropout", x, "x")) return NONE;
  if (!train || rate == 0.0) return x;
  if (!(rate > 0.0 && rate < 1.0)) {
    nn_fail(b, loc, "nn.dropout", "rate %g must be in [0, 1)", rate);
    return NONE;
  }
  double keep = 1.0 - rate;
  ry_value mask = ry_random_bernoulli_(b, loc, key, keep, SHAPE(x));
  return ry_select_(b, loc, mask, DIV(x, C(x, keep)), C(x, 0.0));
}

/* ---- activations and blocks ---- */

ry_value ry_nn_leaky_relu_(ry_builder *b, ry_loc loc, ry_value x, double slope) {
  if (!nn_valid(b, loc, "nn.leaky_relu", x, "x")) return NONE;
  return ry_where_(b, loc, ry_compare_(b, loc, x, C(x, 0.0), RY_GE), x, MUL(x, C(x, slope)));
}

ry_value ry_nn_activation_(ry_builder *b, ry_loc loc, ry_value x, ry_nn_act act) {
  switch (act) {
  case RY_NN_RELU: return ry_relu_(b, loc, x);
  case RY_NN_GELU: return ry_gelu_(b, loc, x, 0);
  case RY_NN_GELU_TANH: return ry_gelu_(b, loc, x, 1);
  case RY_NN_SILU: return ry_silu_(b, loc, x);
  case RY_NN_TANH: return ry_tanh_(b, loc, x);
  case RY_NN_IDENTITY: return x;
  }
  nn_fail(b, loc, "nn.activation", "unknown activation %d", (int)act);
  return NONE;
}

ry_value ry_nn_mlp_block_(ry_builder *b, ry_loc loc, ry_value x, ry_value w1, ry_value b1, ry_value w2, ry_value b2, ry_nn_act act) {
  ry_value h = ry_nn_activation_(b, loc, ry_nn_linear_(b, loc, x, w1, b1), act);
  return ry_nn_linear_(b, loc, h, w2, b2);
}

ry_value ry_nn_swiglu_(ry_builder *b, ry_loc loc, ry_value x, ry_value w_gate, ry_value w_up, ry_value w_down) {
  ry_value g = ry_silu_(b, loc, ry_nn_linear_(b, loc, x, w_gate, NONE));
  ry_value u = ry_nn_linear_(b, loc, x, w_up, NONE);
  return ry_nn_linear_(b, loc, MUL(g, u), w_down, NONE);
}

/* ---- rotary embeddings and attention ---- */

ry_value ry_nn_rope_(ry_builder *b, ry_loc loc, ry_value x, double base) {
  if (!nn_valid(b, loc, "nn.rope", x, "x")) return NONE;
  ry_shape xs = SHAPE(x);
  if (xs.rank != 4 || xs.dims[3] % 2 != 0) {
    char t[64];
    nn_fail_shape(b, loc, "nn.rope", "x %s: want [batch, seq, heads, head_dim] with an even head_dim", ry_shape_str(xs, t, sizeof t));
    return NONE;
  }
  int64_t B = xs.dims[0], T = xs.dims[1], H = xs.dims[2], D = xs.dims[3], h = D / 2;
  ry_dtype dt = DTYPE(x);
  /* angle[t, i] = t * base^(-2i/D), duplicated to [T, D] */
  ry_value t = ry_iota_(b, loc, dt, RY_SHAPE(T, h), 0);
  ry_value i = ry_iota_(b, loc, dt, RY_SHAPE(T, h), 1);
  ry_value inv = ry_exp_(b, loc, MUL(i, C(i, -2.0 * log(base) / (double)D)));
  ry_value ang = MUL(t, inv);
  ry_value pair[2] = {ang, ang};
  ry_value ang2 = ry_concatenate_(b, loc, 2, pair, 1);
  ry_value cs = ry_reshape_(b, loc, ry_cos_(b, loc, ang2), RY_SHAPE(1, T, 1, D));
  ry_value sn = ry_reshape_(b, loc, ry_sin_(b, loc, ang2), RY_SHAPE(1, T, 1, D));
  ry_value x1 = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, 0), RY_AXES(B, T, H, h), RY_NO_AXES);
  ry_value x2 = ry_slice_(b, loc, x, RY_AXES(0, 0, 0, h), RY_AXES(B, T, H, D), RY_NO_AXES);
  ry_value rp[2] = {ry_neg_(b, loc, x2), x1};
  ry_value rot = ry_concatenate_(b, loc, 2, rp, 3);
  return ADD(MUL(x, cs), MUL(rot, sn));
}

ry_value ry_nn_attention_(ry_builder *b, ry_loc loc, ry_value q, ry_value k, ry_value v, int causal) {
  if (!nn_valid(b, loc, "nn.attention", q, "q") || !nn_valid(b, loc, "nn.attention", k, "k") ||
      !nn_valid(b, loc, "nn.attention", v, "v"))
    return NONE;
  ry_shape qs = SHAPE(q), ks = SHAPE(k), vs = SHAPE(v);
  if (qs.rank != 4 || ks.rank != 4 || !ry_shape_equal(ks, vs) || qs.dims[0] != ks.dims[0] || qs.dims[3] != ks.dims[3] ||
      ks.dims[2] == 0 || qs.dims[2] % ks.dims[2] != 0) {
    char t1[64], t2[64], t3[64];
    nn_fail_shape(b, loc, "nn.attention", "q %s, k %s, v %s: want q[B, T, Hq, D], k = v [B, S, Hkv, D], Hq a multiple of Hkv",
                  ry_shape_str(qs, t1, sizeof t1), ry_shape_str(ks, t2, sizeof t2), ry_shape_str(vs, t3, sizeof t3));
    return NONE;
  }
  int64_t B = qs.dims[0], T = qs.dims[1], Hq = qs.dims[2], D = qs.dims[3], S = ks.dims[1], Hk = ks.dims[2], G = Hq / Hk;
  ry_value q5 = ry_reshape_(b, loc, q, RY_SHAPE(B, T, Hk, G, D));
  q5 = MUL(q5, C(q5, 1.0 / sqrt((double)D)));
  ry_dot_dims d1 = {RY_AXES(0, 2), RY_AXES(0, 2), RY_AXES(4), RY_AXES(3)};
  ry_value logits = ry_dot_general_(b, loc, q5, k, d1, DTYPE(q)); /* [B, Hk, T, G, S] */
  if (causal) {
    ry_value ti = ry_iota_(b, loc, RY_I32, RY_SHAPE(T, S), 0);
    ry_value si = ry_iota_(b, loc, RY_I32, RY_SHAPE(T, S), 1);
    ry_value m = ry_compare_(b, loc, si, ti, RY_LE); /* [T, S] as jnp.tril */
    m = ry_broadcast_in_dim_(b, loc, m, RY_SHAPE(B, Hk, T, G, S), RY_AXES(2, 4));
    logits = ry_select_(b, loc, m, logits, C(logits, -3.0e38 * 0.7));
  }
  ry_value w = ry_softmax_(b, loc, logits, -1);
  ry_dot_dims d2 = {RY_AXES(0, 1), RY_AXES(0, 2), RY_AXES(4), RY_AXES(1)};
  ry_value o = ry_dot_general_(b, loc, w, v, d2, DTYPE(q));         /* [B, Hk, T, G, D] */
  o = ry_transpose_(b, loc, o, RY_AXES(0, 2, 1, 3, 4));               /* [B, T, Hk, G, D] */
  return ry_reshape_(b, loc, o, RY_SHAPE(B, T, Hq, D));
}

ry_value ry_nn_mha_(ry_builder *b, ry_loc loc, ry_value x, ry_value wq, ry_value wk, ry_value wv, ry_value wo, int n_heads,
                    int n_kv_heads, int causal, double rope_base) {
  if (!nn_valid(b, loc, "nn.mha", x, "x")) return NONE;
  ry_shape xs = SHAPE(x), qs = SHAPE(wq);
  if (xs.rank != 3 || qs.rank != 2 || n_heads <= 0 || n_kv_heads <= 0 || qs.dims[1] % n_heads != 0) {
    nn_fail_shape(b, loc, "nn.mha", "want x[B, T, E] and wq[E, heads*head_dim] with heads > 0");
    return NONE;
  }
  int64_t B = xs.dims[0], T = xs.dims[1], D = qs.dims[1] / n_heads;
  ry_value q = ry_reshape_(b, loc, ry_nn_linear_(b, loc, x, wq, NONE), RY_SHAPE(B, T, n_heads, D));
  ry_value k = ry_reshape_(b, loc, ry_nn_linear_(b, loc, x, wk, NONE), RY_SHAPE(B, T, n_kv_heads, D));
  ry_value v = ry_reshape_(b, loc, ry_nn_linear_(b, loc, x, wv, NONE), RY_SHAPE(B, T, n_kv_heads, D));
  if (rope_base > 0) {
    q = ry_nn_rope_(b, loc, q, rope_base);
    k = ry_nn_rope_(b, loc, k, rope_base);
  }
  ry_value o = ry_nn_attention_(b, loc, q, k, v, causal);
  o = ry_reshape_(b, loc, o, RY_SHAPE(B, T, n_heads * D));
  return ry_nn_linear_(b, loc, o, wo, NONE);
}
