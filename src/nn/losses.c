/* Losses and metrics (Optax's definitions). */
#include "nn_internal.h"

static bool check_labels(ry_builder *b, ry_loc loc, const char *name, ry_value logits, ry_value labels) {
  if (!nn_valid(b, loc, name, logits, "logits") || !nn_valid(b, loc, name, labels, "labels")) return false;
  ry_shape ls = SHAPE(logits), ys = SHAPE(labels);
  bool ok = ls.rank == ys.rank + 1;
  for (int i = 0; ok && i < ys.rank; i++) ok = ls.dims[i] == ys.dims[i];
  if (!ok) {
    char t1[64], t2[64];
    nn_fail_shape(b, loc, name, "logits %s and labels %s: want logits[..., classes] and labels[...]", ry_shape_str(ls, t1, sizeof t1),
                  ry_shape_str(ys, t2, sizeof t2));
    return false;
  }
  if (!ry_dtype_is_int(DTYPE(labels))) {
    nn_failf(b, loc, RY_ERR_DTYPE, name, "labels have dtype %s; they must be integers", ry_dtype_name(DTYPE(labels)));
    return false;
  }
  return true;
}

ry_value ry_nn_cross_entropy_per_example_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels) {
  if (!check_labels(b, loc, "nn.cross_entropy", logits, labels)) return NONE;
  /* log(sum(exp(x - m))) - (x[label] - m), m = max(x) held constant, the
   * label's logit picked by comparing an iota with it, not gathered: the
   * derivative, exp(x - m) / s - onehot(label), is then one elementwise
   * pass over the logits that fuses with everything around it, where a
   * gather's transpose (a scatter into a zero [..., classes] array) is
   * materialized */
  ry_value x = logits;
  if (!ry_dtype_is_float(DTYPE(x))) x = ry_convert_(b, loc, x, RY_F32);
  ry_shape ls = SHAPE(x);
  ry_value m = ry_stop_gradient_(b, loc, ry_max_keepdims_(b, loc, x, RY_AXES(-1), 1));
  ry_value sh = SUB(x, m);
  ry_value lse = ry_log_(b, loc, ry_reduce_(b, loc, ry_exp_(b, loc, sh), RY_SUM, RY_AXES(-1)));
  ry_value hit = ry_compare_(b, loc, ry_iota_(b, loc, DTYPE(labels), ls, ls.rank - 1), ry_expand_dims_(b, loc, labels, -1), RY_EQ);
  ry_value picked = ry_reduce_(b, loc, ry_select_(b, loc, hit, sh, ry_const_like_(b, loc, sh, 0)), RY_SUM, RY_AXES(-1));
  return SUB(lse, picked);
}

ry_value ry_nn_cross_entropy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels) {
  return ry_mean_(b, loc, ry_nn_cross_entropy_per_example_(b, loc, logits, labels), RY_NO_AXES, 0);
}

ry_value ry_nn_binary_cross_entropy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value targets) {
  if (!nn_valid(b, loc, "nn.binary_cross_entropy", logits, "logits") ||
      !nn_valid(b, loc, "nn.binary_cross_entropy", targets, "targets"))
    return NONE;
  /* max(x, 0) - x*t + log1p(exp(-|x|)): stable for large |x| */
  ry_value x = logits;
  ry_value l = ADD(SUB(ry_relu_(b, loc, x), MUL(x, targets)), ry_log1p_(b, loc, ry_exp_(b, loc, ry_neg_(b, loc, ry_abs_(b, loc, x)))));
  return ry_mean_(b, loc, l, RY_NO_AXES, 0);
}

ry_value ry_nn_mse_(ry_builder *b, ry_loc loc, ry_value pred, ry_value target) {
  if (!nn_valid(b, loc, "nn.mse", pred, "pred") || !nn_valid(b, loc, "nn.mse", target, "target")) return NONE;
  ry_value d = SUB(pred, target);
  return ry_mean_(b, loc, MUL(d, d), RY_NO_AXES, 0);
}

static ry_value correct_mask(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels) {
  ry_value am = ry_argmax_(b, loc, logits, -1, DTYPE(labels));
  return ry_compare_(b, loc, am, labels, RY_EQ);
}

ry_value ry_nn_accuracy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels) {
  if (!check_labels(b, loc, "nn.accuracy", logits, labels)) return NONE;
  return ry_mean_(b, loc, ry_convert_(b, loc, correct_mask(b, loc, logits, labels), RY_F32), RY_NO_AXES, 0);
}

ry_value ry_nn_correct_count_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels) {
  if (!check_labels(b, loc, "nn.correct_count", logits, labels)) return NONE;
  /* summed in f32 (exact below 2^24 examples): the cpu device's fused i32
   * sum of a converted bool mask gave wrong totals for some sizes */
  ry_value n = ry_sum_keepdims_(b, loc, ry_convert_(b, loc, correct_mask(b, loc, logits, labels), RY_F32), RY_NO_AXES, 0);
  return ry_convert_(b, loc, n, RY_I32);
}

ry_value ry_nn_top_k_accuracy_(ry_builder *b, ry_loc loc, ry_value logits, ry_value labels, int k) {
  if (!check_labels(b, loc, "nn.top_k_accuracy", logits, labels)) return NONE;
  if (k < 1) {
    nn_fail(b, loc, "nn.top_k_accuracy", "k = %d must be at least 1", k);
    return NONE;
  }
  /* the label is in lax.top_k's k results when fewer than k logits rank
   * before it: larger ones, and equal ones at a smaller index */
  ry_shape ls = SHAPE(logits);
  ry_value idx = ry_expand_dims_(b, loc, labels, -1);
  ry_value lv = ry_take_along_axis_(b, loc, logits, idx, -1); /* [..., 1] */
  ry_value pos = ry_iota_(b, loc, DTYPE(labels), ls, ls.rank - 1);
  ry_value before = ry_or_(b, loc, ry_compare_(b, loc, logits, lv, RY_GT),
                           ry_and_(b, loc, ry_compare_(b, loc, logits, lv, RY_EQ), ry_compare_(b, loc, pos, idx, RY_LT)));
  ry_value n = ry_reduce_(b, loc, ry_convert_(b, loc, before, RY_F32), RY_SUM, RY_AXES(-1)); /* f32: see correct_count */
  ry_value hit = ry_compare_(b, loc, n, ry_scalar_(b, loc, RY_F32, k), RY_LT);
  return ry_mean_(b, loc, ry_convert_(b, loc, hit, RY_F32), RY_NO_AXES, 0);
}
