/* Learning-rate schedules and optimizers as graph functions, matching Optax
 * (sgd, adam, adamw, lion; clip_by_global_norm; constant, warmup-cosine and
 * staircase exponential schedules). */
#include "nn_internal.h"

#define NN_PI 3.14159265358979323846

double ry_nn_schedule_eval(const ry_nn_schedule *s, int64_t count) {
  double c = (double)count;
  switch (s->kind) {
  case RY_NN_SCHED_CONSTANT: return s->value;
  case RY_NN_SCHED_WARMUP_COSINE: {
    double w = (double)s->warmup_steps;
    if (c < w && w > 0) return s->init_value + (s->value - s->init_value) * c / w;
    double d = (double)(s->decay_steps - s->warmup_steps);
    double t = c - w;
    if (d <= 0) return s->end_value;
    if (t > d) t = d;
    double alpha = s->value != 0 ? s->end_value / s->value : 0;
    return s->value * ((1 - alpha) * 0.5 * (1 + cos(NN_PI * t / d)) + alpha);
  }
  break;
  case RY_NN_SCHED_STEP: {
    int64_t st = s->step_size > 0 ? s->step_size : 1;
    return s->value * pow(s->gamma, (double)(count / st));
  }
  }
  return s->value;
}

ry_value ry_nn_schedule_value_(ry_builder *b, ry_loc loc, const ry_nn_schedule *s, ry_value count) {
  if (!nn_valid(b, loc, "nn.schedule", count, "count")) return NONE;
  ry_value c = ry_convert_(b, loc, count, RY_F32);
  switch (s->kind) {
  case RY_NN_SCHED_CONSTANT: return ry_scalar_(b, loc, RY_F32, s->value);
  case RY_NN_SCHED_WARMUP_COSINE: {
    /* optax.join_schedules(linear(init, peak, warmup), cosine_decay(peak, decay - warmup, end/peak)) */
    double w = (double)s->warmup_steps, d = (double)(s->decay_steps - s->warmup_steps);
    ry_value warm;
    if (w > 0) {
      ry_value frac = DIV(ry_clip_(b, loc, c, 0.0, w), C(c, w));
      warm = ADD(C(c, s->init_value), MUL(C(c, s->value - s->init_value), frac));
    } else {
      warm = C(c, s->init_value);
    }
    if (d <= 0) d = 1;
    double alpha = s->value != 0 ? s->end_value / s->value : 0;
    ry_value t = ry_clip_(b, loc, SUB(c, C(c, w)), 0.0, d);
    ry_value cosv = MUL(C(c, 0.5), ADD(C(c, 1.0), ry_cos_(b, loc, MUL(t, C(c, NN_PI / d)))));
    ry_value dec = MUL(C(c, s->value), ADD(MUL(C(c, 1 - alpha), cosv), C(c, alpha)));
    return ry_select_(b, loc, ry_compare_(b, loc, c, C(c, w), RY_LT), warm, dec);
  }
  case RY_NN_SCHED_STEP: {
    int64_t st = s->step_size > 0 ? s->step_size : 1;
    ry_value p = ry_floor_(b, loc, DIV(c, C(c, (double)st)));
    return MUL(C(c, s->value), ry_pow_(b, loc, C(c, s->gamma), p));
  }
  }
  nn_fail(b, loc, "nn.schedule", "unknown schedule kind %d", (int)s->kind);
  return NONE;
}

ry_nn_optimizer ry_nn_optimizer_default(ry_nn_opt_kind kind, double lr) {
  ry_nn_optimizer o = {0};
  o.kind = kind;
  o.lr.kind = RY_NN_SCHED_CONSTANT;
  o.lr.value = lr;
  o.b1 = 0.9;
  o.b2 = kind == RY_NN_LION ? 0.99 : 0.999;
  o.eps = 1e-8;
  o.weight_decay = kind == RY_NN_ADAMW ? 1e-4 : kind == RY_NN_LION ? 1e-3 : 0.0;
  return o;
}

int ry_nn_opt_state_per_param(const ry_nn_optimizer *o) {
  switch (o->kind) {
  case RY_NN_SGD: return o->momentum != 0.0 ? 1 : 0;
  case RY_NN_ADAM:
  case RY_NN_ADAMW: return 2;
  case RY_NN_LION: return 1;
  }
  return 0;
}

void ry_nn_opt_init_(ry_builder *b, ry_loc loc, const ry_nn_optimizer *o, int n_params, const ry_value *params, ry_value *state) {
  int per = ry_nn_opt_state_per_param(o);
  for (int p = 0; p < n_params; p++)
    for (int j = 0; j < per; j++) state[p * per + j] = ry_full_(b, loc, DTYPE(params[p]), SHAPE(params[p]), 0.0);
  state[n_params * per] = ry_scalar_(b, loc, RY_I32, 0.0);
}

ry_value ry_nn_global_norm_(ry_builder *b, ry_loc loc, int n, const ry_value *xs) {
  ry_value acc = ry_scalar_(b, loc, RY_F32, 0.0);
  for (int i = 0; i < n; i++) {
    ry_value x = ry_convert_(b, loc, xs[i], RY_F32);
    acc = ADD(acc, ry_sum_keepdims_(b, loc, MUL(x, x), RY_NO_AXES, 0)); /* all axes */
  }
  return ry_sqrt_(b, loc, acc);
}

void ry_nn_opt_update_(ry_builder *b, ry_loc loc, const ry_nn_optimizer *o, int n_params, const ry_value *params,
                       const ry_value *grads, const ry_value *state, ry_value *new_params, ry_value *new_state) {
  ry_nn_opt_update_masked_(b, loc, o, n_params, params, grads, state, NULL, new_params, new_state);
}

void ry_nn_opt_update_masked_(ry_builder *b, ry_loc loc, const ry_nn_optimizer *o, int n_params, const ry_value *params,
                              const ry_value *grads, const ry_value *state, const unsigned char *decay, ry_value *new_params,
                              ry_value *new_state) {
  int per = ry_nn_opt_state_per_param(o);
  for (int p = 0; p < n_params; p++) new_params[p] = NONE;
  for (int j = 0; j <= n_params * per; j++) new_state[j] = NONE;
  if (!nn_ok(b)) return;
  for (int p = 0; p < n_params; p++) {
    if (!nn_valid(b, loc, "nn.opt_update", params[p], "a parameter") || !nn_valid(b, loc, "nn.opt_update", grads[p], "a gradient"))
      return;
    if (!ry_type_equal(ry_value_type(b, params[p]), ry_value_type(b, grads[p]))) {
      char t1[64], t2[64];
      nn_fail_shape(b, loc, "nn.opt_update", "parameter %d is %s but its gradient is %s", p,
                    ry_type_str(ry_value_type(b, params[p]), t1, sizeof t1), ry_type_str(ry_value_type(b, grads[p]), t2, sizeof t2));
      return;
    }
  }
  ry_value count = state[n_params * per];
  ry_value lr = ry_nn_schedule_value_(b, loc, &o->lr, count);
  ry_value count1 = ADD(count, ry_scalar_(b, loc, RY_I32, 1.0));
  ry_value cf = ry_convert_(b, loc, count1, RY_F32);
  /* optax.clip_by_global_norm: g * max_norm / norm when norm >= max_norm */
  ry_value clip_trig = NONE, clip_norm = NONE;
  if (o->clip_norm > 0) {
    clip_norm = ry_nn_global_norm_(b, loc, n_params, grads);
    clip_trig = ry_compare_(b, loc, clip_norm, C(clip_norm, o->clip_norm), RY_LT);
  }
  ry_value bc1 = NONE, bc2 = NONE;
  if (o->kind == RY_NN_ADAM || o->kind == RY_NN_ADAMW) {
    bc1 = SUB(C(cf, 1.0), ry_pow_(b, loc, C(cf, o->b1), cf));
    bc2 = SUB(C(cf, 1.0), ry_pow_(b, loc, C(cf, o->b2), cf));
  }
  for (int p = 0; p < n_params; p++) {
    ry_value g = grads[p], x = params[p], u;
    ry_dtype dt = DTYPE(x);
    if (o->clip_norm > 0) {
      ry_value nrm = ry_convert_(b, loc, clip_norm, dt);
      g = ry_select_(b, loc, clip_trig, g, MUL(DIV(g, nrm), C(g, o->clip_norm)));
    }
    switch (o->kind) {
    case RY_NN_SGD:
      if (per) {
        /* optax.trace: t = g + m * t; nesterov: u = g + m * t */
        ry_value t = ADD(g, MUL(C(g, o->momentum), state[p]));
        new_state[p] = t;
        u = o->nesterov ? ADD(g, MUL(C(g, o->momentum), t)) : t;
      } else {
        u = g;
      }
      break;
    case RY_NN_ADAM:
    case RY_NN_ADAMW: {
      ry_value mu = ADD(MUL(C(g, o->b1), state[2 * p]), MUL(C(g, 1.0 - o->b1), g));
      ry_value nu = ADD(MUL(C(g, o->b2), state[2 * p + 1]), MUL(C(g, 1.0 - o->b2), MUL(g, g)));
      new_state[2 * p] = mu;
      new_state[2 * p + 1] = nu;
      ry_value mh = DIV(mu, ry_convert_(b, loc, bc1, dt)), nh = DIV(nu, ry_convert_(b, loc, bc2, dt));
      u = DIV(mh, ADD(ry_sqrt_(b, loc, nh), C(nh, o->eps)));
      if (o->kind == RY_NN_ADAMW && o->weight_decay != 0 && (!decay || decay[p])) u = ADD(u, MUL(C(x, o->weight_decay), x));
      break;
    }
    case RY_NN_LION: {
      ry_value m = state[p];
      u = ry_sign_(b, loc, ADD(MUL(C(g, 1.0 - o->b1), g), MUL(C(g, o->b1), m)));
      new_state[p] = ADD(MUL(C(g, o->b2), m), MUL(C(g, 1.0 - o->b2), g));
      if (o->weight_decay != 0 && (!decay || decay[p])) u = ADD(u, MUL(C(x, o->weight_decay), x));
      break;
    }
    default: nn_fail(b, loc, "nn.opt_update", "unknown optimizer kind %d", (int)o->kind); return;
    }
    new_params[p] = ADD(x, MUL(u, ry_neg_(b, loc, ry_convert_(b, loc, lr, dt))));
  }
  new_state[n_params * per] = count1;
}

const char *ry_nn_opt_slot_name(const ry_nn_optimizer *o, int j) {
  if (j < 0 || j >= ry_nn_opt_state_per_param(o)) return NULL;
  if (o->kind == RY_NN_SGD) return "trace";
  return j == 0 ? "mu" : "nu";
}

ry_status ry_nn_opt_state_tree(const ry_nn_optimizer *o, const ry_params *params, ry_params **out) {
  *out = NULL;
  if (!o || !params) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "nn.opt_state_tree: NULL optimizer or parameters");
  int n = ry_params_count(params), per = ry_nn_opt_state_per_param(o);
  ry_params *t = ry_params_new();
  if (!t) return ry_status_make(RY_ERR_OUT_OF_MEMORY, "nn.opt_state_tree: out of memory");
  ry_status s = NULL;
  char path[RY_PARAMS_MAX_PATH + 8];
  for (int i = 0; i < n && !s; i++)
    for (int j = 0; j < per && !s; j++) {
      ry_array *z = NULL;
      int len = snprintf(path, sizeof path, "%s/%s", ry_nn_opt_slot_name(o, j), ry_params_path(params, i));
      if (len < 0 || len >= RY_PARAMS_MAX_PATH) {
        s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "nn.opt_state_tree: the state path for \"%s\" is too long",
                           ry_params_path(params, i));
        break;
      }
      ry_type ty = ry_params_type(params, i);
      s = ry_array_zeros(ty.dtype, ty.shape, &z);
      if (!s) s = ry_params_set_owned(t, path, z);
    }
  if (!s) {
    ry_array *c = NULL;
    s = ry_array_zeros(RY_I32, RY_SCALAR, &c);
    if (!s) s = ry_params_set_owned(t, "count", c);
  }
  if (s) {
    ry_params_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

void ry_nn_decay_mask(const ry_params *params, int n, const char *const *no_decay, unsigned char *decay) {
  for (int i = 0; i < ry_params_count(params); i++) {
    const char *path = ry_params_path(params, i);
    decay[i] = 1;
    for (int k = 0; k < n; k++)
      if (ry_path_match(no_decay[k], path)) decay[i] = 0;
  }
}
