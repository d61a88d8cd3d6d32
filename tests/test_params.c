/* Parameter trees (src/nn/params.c): building, lookup, iteration, counting,
 * map, glob filters, partition/combine, nesting by prefix, flatten /
 * unflatten through a traced program, the path -> value view with its
 * sticky error for a missing path, and the summary table. */
#include <stdlib.h>

#include "testlib.h"

static ry_array *filled(ry_dtype t, ry_shape s, double v) {
  ry_array *a = NULL;
  ry_status st = ry_array_full(t, s, v, &a);
  ry_status_free(st);
  return a;
}

/* mlp/fc1/{w,b}, mlp/fc2/{w,b}, embed/table */
static ry_params *mlp_tree(void) {
  ry_params *p = ry_params_new();
  ry_status_free(ry_params_set_owned(p, "mlp/fc1/w", filled(RY_F32, RY_SHAPE(784, 128), 0.5)));
  ry_status_free(ry_params_set_owned(p, "mlp/fc1/b", filled(RY_F32, RY_SHAPE(128), 0)));
  ry_status_free(ry_params_set_owned(p, "mlp/fc2/w", filled(RY_F32, RY_SHAPE(128, 10), 0.25)));
  ry_status_free(ry_params_set_owned(p, "mlp/fc2/b", filled(RY_F32, RY_SHAPE(10), 0)));
  ry_status_free(ry_params_set_owned(p, "embed/table", filled(RY_BF16, RY_SHAPE(4, 3), 1)));
  return p;
}

TEST(params_basic) {
  ry_params *p = mlp_tree();
  CHECK_EQ_INT(ry_params_count(p), 5);
  CHECK_EQ_INT(ry_params_numel(p), 784 * 128 + 128 + 1280 + 10 + 12);
  CHECK_EQ_INT(ry_params_nbytes(p), (784 * 128 + 128 + 1280 + 10) * 4 + 12 * 2);
  CHECK_STR(ry_params_path(p, 2), "mlp/fc2/w");
  CHECK_EQ_INT(ry_params_index(p, "mlp/fc2/b"), 3);
  CHECK(ry_params_get(p, "nope") == NULL);
  ry_array *a = NULL;
  CHECK_ERR(ry_params_find(p, "mlp/fc3/w", &a), RY_ERR_NOT_FOUND, "mlp/fc3/w", "have: mlp/fc1/w");
  /* set on an existing path keeps the position */
  CHECK_OK(ry_params_set_owned(p, "mlp/fc1/b", filled(RY_F32, RY_SHAPE(128), 7)));
  CHECK_EQ_INT(ry_params_index(p, "mlp/fc1/b"), 1);
  CHECK(ry_array_get_f64(ry_params_get(p, "mlp/fc1/b"), 0) == 7);
  /* replace checks the type */
  ry_array *wrong = filled(RY_F32, RY_SHAPE(64), 0);
  CHECK_ERR(ry_params_replace(p, "mlp/fc1/b", wrong), RY_ERR_SHAPE, "mlp/fc1/b", "f32[64]", "expected f32[128]");
  ry_array_release(wrong);
  wrong = filled(RY_F64, RY_SHAPE(128), 0);
  CHECK_ERR(ry_params_replace(p, "mlp/fc1/b", wrong), RY_ERR_DTYPE, "f64[128]");
  ry_array_release(wrong);
  CHECK_ERR(ry_params_replace(p, "mlp/x", ry_params_get(p, "mlp/fc1/b")), RY_ERR_NOT_FOUND, "mlp/x");
  /* bad paths */
  ry_array *z = filled(RY_F32, RY_SCALAR, 0);
  CHECK_ERR(ry_params_set(p, "", z), RY_ERR_INVALID_ARGUMENT, "empty");
  CHECK_ERR(ry_params_set(p, "/a", z), RY_ERR_INVALID_ARGUMENT, "starts with '/'");
  CHECK_ERR(ry_params_set(p, "a//b", z), RY_ERR_INVALID_ARGUMENT, "empty segment");
  CHECK_ERR(ry_params_set(p, "a/", z), RY_ERR_INVALID_ARGUMENT, "ends with '/'");
  ry_array_release(z);
  /* remove and the contiguous views */
  CHECK_OK(ry_params_remove(p, "embed/table"));
  CHECK_ERR(ry_params_remove(p, "embed/table"), RY_ERR_NOT_FOUND, "embed/table");
  CHECK_EQ_INT(ry_params_count(p), 4);
  CHECK_STR(ry_params_paths(p)[3], "mlp/fc2/b");
  CHECK(ry_params_arrays(p)[0] == ry_params_get(p, "mlp/fc1/w"));
  ry_type types[4];
  ry_params_types(p, types);
  CHECK(ry_shape_equal(types[2].shape, RY_SHAPE(128, 10)));
  /* clone shares arrays and is equal */
  ry_params *c = NULL;
  CHECK_OK(ry_params_clone(p, &c));
  CHECK(ry_params_equal(p, c) && ry_params_at(c, 0) == ry_params_at(p, 0));
  CHECK_OK(ry_params_set_owned(c, "mlp/fc2/b", filled(RY_F32, RY_SHAPE(10), 1)));
  CHECK(!ry_params_equal(p, c));
  ry_params_free(c);
  ry_params_free(p);
}

TEST(params_glob) {
  CHECK(ry_path_match("mlp/*/w", "mlp/fc1/w"));
  CHECK(!ry_path_match("mlp/*/w", "mlp/fc1/b"));
  CHECK(!ry_path_match("mlp/*/w", "mlp/a/b/w"));
  CHECK(ry_path_match("**/b", "mlp/fc1/b"));
  CHECK(ry_path_match("**/b", "b"));
  CHECK(!ry_path_match("**/b", "mlp/fc1/bias"));
  CHECK(ry_path_match("mlp/**", "mlp/fc1/w"));
  CHECK(ry_path_match("**", "anything/at/all"));
  CHECK(ry_path_match("mlp/fc?/w", "mlp/fc2/w"));
  CHECK(!ry_path_match("mlp/fc?/w", "mlp/fc10/w"));
  CHECK(ry_path_match("*/fc*/*", "mlp/fc10/w"));
  CHECK(ry_path_match("a/**/z", "a/z") && ry_path_match("a/**/z", "a/b/c/z") && !ry_path_match("a/**/z", "a/b/c"));
  ry_params *p = mlp_tree(), *w = NULL, *rest = NULL;
  CHECK_OK(ry_params_filter(p, "mlp/*/w", &w));
  CHECK_EQ_INT(ry_params_count(w), 2);
  CHECK_STR(ry_params_path(w, 1), "mlp/fc2/w");
  ry_params_free(w);
  /* trainable vs frozen, then combine back in the original order */
  CHECK_OK(ry_params_partition(p, "**/b", &w, &rest));
  CHECK_EQ_INT(ry_params_count(w), 2);
  CHECK_EQ_INT(ry_params_count(rest), 3);
  ry_params *back = NULL;
  CHECK_OK(ry_params_combine(rest, w, p, &back));
  CHECK(ry_params_equal(back, p));
  ry_params_free(back);
  CHECK_OK(ry_params_combine(w, rest, NULL, &back));
  CHECK_STR(ry_params_path(back, 0), "mlp/fc1/b");
  ry_params *dup = NULL;
  CHECK_ERR(ry_params_combine(back, w, NULL, &dup), RY_ERR_INVALID_ARGUMENT, "in both trees");
  CHECK(dup == NULL);
  ry_params_free(back);
  ry_params_free(w);
  ry_params_free(rest);
  ry_params_free(p);
}

TEST(params_glob_leak_free_combine_error) {
  /* a reference path in neither tree: the error path frees what it made */
  ry_params *a = ry_params_new(), *b = ry_params_new(), *like = mlp_tree(), *out = NULL;
  CHECK_ERR(ry_params_combine(a, b, like, &out), RY_ERR_NOT_FOUND, "mlp/fc1/w", "in neither tree");
  CHECK(out == NULL);
  ry_params_free(a);
  ry_params_free(b);
  ry_params_free(like);
}

static ry_status double_it(void *ctx, const char *path, const ry_array *a, ry_array **out) {
  int *calls = ctx;
  (*calls)++;
  if (!strcmp(path, "stop/here")) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "refused");
  return ry_array_full(ry_array_dtype(a), ry_array_shape(a), ry_array_get_f64(a, 0) * 2, out);
}

TEST(params_map_nest_summary) {
  ry_params *p = mlp_tree(), *m = NULL;
  int calls = 0;
  CHECK_OK(ry_params_map(p, double_it, &calls, &m));
  CHECK_EQ_INT(calls, 5);
  CHECK(ry_array_get_f64(ry_params_get(m, "mlp/fc1/w"), 0) == 1.0);
  ry_params_free(m);
  ry_params *bad = ry_params_new();
  ry_status_free(ry_params_set_owned(bad, "stop/here", filled(RY_F32, RY_SCALAR, 1)));
  CHECK_ERR(ry_params_map(bad, double_it, &calls, &m), RY_ERR_INVALID_ARGUMENT, "stop/here", "refused");
  ry_params_free(bad);
  /* optimizer state: adam/mu/..., adam/nu/... */
  ry_params *mu = NULL, *state = ry_params_new(), *sub = NULL, *pre = NULL;
  CHECK_OK(ry_params_zeros_like(p, &mu));
  CHECK_OK(ry_params_merge(state, "adam/mu", mu));
  CHECK_OK(ry_params_merge(state, "adam/nu", mu));
  CHECK_EQ_INT(ry_params_count(state), 10);
  CHECK_STR(ry_params_path(state, 5), "adam/nu/mlp/fc1/w");
  CHECK_OK(ry_params_subtree(state, "adam/nu", &sub));
  CHECK_EQ_INT(ry_params_count(sub), 5);
  CHECK_STR(ry_params_path(sub, 0), "mlp/fc1/w");
  CHECK_OK(ry_params_prefixed(sub, "opt", &pre));
  CHECK_STR(ry_params_path(pre, 4), "opt/embed/table");
  CHECK_ERR(ry_params_prefixed(sub, "bad//prefix", &m), RY_ERR_INVALID_ARGUMENT, "empty segment");
  ry_params_free(pre);
  ry_params_free(sub);
  ry_params_free(state);
  ry_params_free(mu);
  /* summary */
  char buf[2048];
  size_t n = ry_params_summary(p, buf, sizeof buf);
  CHECK(n < sizeof buf);
  CHECK(strstr(buf, "path") && strstr(buf, "dtype") && strstr(buf, "shape") && strstr(buf, "numel"));
  CHECK(strstr(buf, "mlp/fc1/w    f32    [784,128]  100,352"));
  CHECK(strstr(buf, "embed/table  bf16   [4,3]"));
  CHECK(strstr(buf, "total: 5 arrays, 101,782 parameters, 397.6 KiB"));
  char small[16];
  CHECK_EQ_INT(ry_params_summary(p, small, sizeof small), n);
  CHECK_EQ_INT(strlen(small), 15);
  ry_params_free(p);
}

/* loss = sum((x @ w + b)^2); outputs the new params (p - 0.1 * grad-free
 * update: p * 0.5) in tree order, and reads a missing path when asked. */
typedef struct step_ctx {
  const ry_params *tree;
  int read_missing;
} step_ctx;

TEST(params_traced_inputs_and_outputs) {
  ry_params *p = ry_params_new();
  ry_status_free(ry_params_set_owned(p, "lin/w", filled(RY_F32, RY_SHAPE(3, 2), 1)));
  ry_status_free(ry_params_set_owned(p, "lin/b", filled(RY_F32, RY_SHAPE(2), 0.5)));
  ry_builder *b = ry_builder_new("step");
  ry_pvalues *v = NULL;
  CHECK_OK(ry_params_inputs(b, p, &v));
  CHECK_EQ_INT(ry_pvalues_count(v), 2);
  ry_value x = ry_input(b, "x", (ry_type){RY_F32, RY_SHAPE(4, 3)});
  ry_value y = ry_add(b, ry_matmul(b, x, ry_pvalues_get(v, "lin/w")), ry_pvalues_get(v, "lin/b"));
  ry_value loss = ry_sum(b, ry_mul(b, y, y), RY_AXES(0, 1));
  ry_pvalues *upd = ry_pvalues_new(b);
  for (int i = 0; i < ry_pvalues_count(v); i++)
    ry_pvalues_set(upd, ry_pvalues_path(v, i), ry_mul(b, ry_pvalues_at(v, i), ry_const_like(b, ry_pvalues_at(v, i), 0.5)));
  ry_value outs[3];
  CHECK_EQ_INT(ry_pvalues_outputs(upd, p, NULL, outs), 2);
  outs[2] = loss;
  ry_graph *g = NULL;
  CHECK_OK(ry_builder_finish(b, 3, outs, &g));
  ry_pvalues_free(v);
  ry_pvalues_free(upd);
  CHECK_EQ_INT(ry_graph_num_inputs(g), 3);
  CHECK_STR(ry_graph_input_name(g, 0), "lin/w");
  CHECK_STR(ry_graph_input_name(g, 1), "lin/b");
  /* run: inputs are the tree's arrays then x; outputs unflatten into a tree */
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  ry_array *in[3] = {ry_params_arrays(p)[0], ry_params_arrays(p)[1], filled(RY_F32, RY_SHAPE(4, 3), 1)};
  ry_array *out[3] = {NULL, NULL, NULL};
  CHECK_OK(ry_run(g, d, 3, in, 3, out));
  ry_params *np = NULL;
  CHECK_OK(ry_params_unflatten_owned(p, 2, out, &np));
  CHECK(np && ry_array_get_f64(ry_params_get(np, "lin/w"), 0) == 0.5 && ry_array_get_f64(ry_params_get(np, "lin/b"), 1) == 0.25);
  CHECK(out[2] && ry_array_get_f64(out[2], 0) == 4 * 2 * 3.5 * 3.5);
  /* unflatten checks count and types, naming the path */
  ry_params *bad = NULL;
  CHECK_ERR(ry_params_unflatten(p, 1, in, &bad), RY_ERR_INVALID_ARGUMENT, "1 arrays for a tree of 2");
  ry_array *swapped[2] = {in[1], in[0]};
  CHECK_ERR(ry_params_unflatten(p, 2, swapped, &bad), RY_ERR_SHAPE, "lin/w", "f32[2]", "expected f32[3,2]");
  ry_array_release(out[2]);
  ry_array_release(in[2]);
  ry_params_free(np);
  ry_graph_release(g);

  /* a missing path: a sticky builder error that names it and the caller */
  b = ry_builder_new("bad");
  CHECK_OK(ry_params_inputs(b, p, &v));
  ry_value w = ry_pvalues_get(v, "lin/W");
  CHECK(!ry_value_ok(w));
  ry_value after = ry_add(b, ry_pvalues_get(v, "lin/b"), ry_pvalues_get(v, "lin/b"));
  CHECK(!ry_value_ok(after)); /* later ops are no-ops */
  CHECK_ERR(ry_builder_finish(b, 1, &after, &g), RY_ERR_NOT_FOUND, "no entry \"lin/W\"", "have: lin/w, lin/b", "test_params.c");
  ry_pvalues_free(v);
  /* outputs with a missing or mistyped value */
  b = ry_builder_new("bad2");
  CHECK_OK(ry_params_inputs(b, p, &v));
  upd = ry_pvalues_new(b);
  ry_pvalues_set(upd, "lin/w", ry_pvalues_get(v, "lin/b"));
  CHECK_EQ_INT(ry_pvalues_outputs(upd, p, NULL, outs), -1);
  CHECK_ERR(ry_builder_finish(b, 0, outs, &g), RY_ERR_SHAPE, "lin/w", "f32[2]", "expected f32[3,2]");
  ry_pvalues_free(v);
  ry_pvalues_free(upd);
  /* state views with prefixes */
  ry_params *state = ry_params_new();
  CHECK_OK(ry_params_merge(state, "sgd/mom", p));
  b = ry_builder_new("state");
  CHECK_OK(ry_params_inputs(b, state, &v));
  ry_pvalues *mom = ry_pvalues_subtree(v, "sgd/mom");
  CHECK_EQ_INT(ry_pvalues_count(mom), 2);
  CHECK(ry_pvalues_has(mom, "lin/w") && !ry_pvalues_has(mom, "sgd/mom/lin/w"));
  CHECK_EQ_INT(ry_pvalues_outputs(v, p, "sgd/mom", outs), 2);
  CHECK_OK(ry_builder_finish(b, 2, outs, &g));
  CHECK_STR(ry_graph_input_name(g, 1), "sgd/mom/lin/b");
  ry_graph_release(g);
  ry_pvalues_free(mom);
  ry_pvalues_free(v);
  ry_params_free(state);
  ry_params_free(p);
}

/* ry_pvalues_from inside an ry_trace callback */
static int traced(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  step_ctx *c = ctx;
  ry_pvalues *v = NULL;
  ry_status s = ry_pvalues_from(b, c->tree, in, &v);
  if (s) {
    ry_status_free(s);
    return -1;
  }
  out[0] = ry_sum(b, ry_pvalues_get(v, c->read_missing ? "zzz" : "lin/w"), RY_AXES(0, 1));
  ry_pvalues_free(v);
  return 1;
}

TEST(params_with_ry_trace) {
  ry_params *p = ry_params_new();
  ry_status_free(ry_params_set_owned(p, "lin/w", filled(RY_F32, RY_SHAPE(3, 2), 1)));
  ry_type t[1];
  ry_params_types(p, t);
  step_ctx c = {p, 0};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("f", traced, &c, ry_params_count(p), t, ry_params_paths(p), &g));
  CHECK_STR(ry_graph_input_name(g, 0), "lin/w");
  ry_graph_release(g);
  c.read_missing = 1;
  CHECK_ERR(ry_trace("f", traced, &c, ry_params_count(p), t, ry_params_paths(p), &g), RY_ERR_NOT_FOUND, "\"zzz\"");
  ry_params_free(p);
}
