/* The reference interpreter and the runtime API: device registry, argument
 * checks of ry_execute, custom calls, control flow, and the tricky corners of
 * op semantics (integer division, shifts, NaN, signed zeros, rounding,
 * clamping, out-of-bounds gather/scatter, sort order, threefry vectors).
 * Graphs are built directly with the graph.h API. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "backend/interp/interp.h"
#include "ir/graph.h"
#include "testlib.h"

/* ---- graph and array helpers ---- */

static ry_type TY(ry_dtype d, ry_shape s) { return (ry_type){d, s}; }

static int32_t P(ry_graph *g, int32_t r, ry_type t, const char *name) { return ry__graph_add_param(g, r, t, name); }

/* Add a node with one result; operands as int varargs. Returns the result value. */
static int32_t N(ry_graph *g, int32_t r, ry_op op, ry_type rt, const ry_attrs *a, int nin, ...) {
  int32_t ops[16];
  va_list ap;
  va_start(ap, nin);
  for (int i = 0; i < nin; i++) ops[i] = (int32_t)va_arg(ap, int);
  va_end(ap);
  int32_t id = ry__graph_add_node(g, r, op, nin, ops, 1, &rt, 0, NULL, a, (ry_loc){"test.c", 7});
  return id < 0 ? 0 : g->pool[g->nodes[id].results];
}

static int32_t RES(const ry_graph *g, int32_t node, int i) { return g->pool[g->nodes[node].results + i]; }

static void RET(ry_graph *g, int32_t r, int n, ...) {
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) ry__ivec_push(&g->regions[r].results, (int32_t)va_arg(ap, int));
  va_end(ap);
}

/* An array from doubles (converted as ry__store_f64 does). */
static ry_array *A(ry_dtype d, ry_shape s, const double *v) {
  ry_array *a = NULL;
  ry_status st = ry__array_new(TY(d, s), &a);
  if (st) {
    ry_status_free(st);
    return NULL;
  }
  for (int64_t i = 0; i < ry_shape_numel(s); i++) ry__store_f64(d, a->data, i, v[i]);
  return a;
}
#define AV(d, s, ...) A((d), (s), (const double[]){__VA_ARGS__})

static ry_status RUN(ry_graph *g, int n_in, ry_array **in, int n_out, ry_array **out) {
  ry_device *dev;
  ry_status s = ry_device_get("interp", &dev);
  if (s) return s;
  return ry_run(g, dev, n_in, in, n_out, out);
}

static void release_n(int n, ry_array **a) {
  for (int i = 0; i < n; i++) ry_array_release(a[i]);
}

/* Run a one-op graph on 1..3 inputs of the given arrays, result type rt. */
static ry_array *op_run(ry_op op, ry_type rt, const ry_attrs *attrs, int nin, ry_array **in) {
  ry_graph *g = ry__graph_new("main");
  int32_t p[4];
  for (int i = 0; i < nin; i++) p[i] = P(g, 0, in[i]->type, NULL);
  int32_t v = N(g, 0, op, rt, attrs, nin, p[0], nin > 1 ? p[1] : 0, nin > 2 ? p[2] : 0, nin > 3 ? p[3] : 0);
  RET(g, 0, 1, v);
  ry_array *out = NULL;
  ry_status s = RUN(g, nin, in, 1, &out);
  if (s) {
    rt_fail(__FILE__, __LINE__, "%s failed: %s", ryg_op_table[op].name, ry_status_message(s));
    ry_status_free(s);
  }
  ry_graph_release(g);
  return out;
}

/* Apply op elementwise to arrays built from value lists; returns the result. */
static ry_array *un(ry_op op, ry_dtype d, int n, const double *x) {
  ry_array *a = A(d, RY_SHAPE(n), x);
  ry_array *r = op_run(op, TY(op == RY_OP_IS_FINITE ? RY_BOOL : d, RY_SHAPE(n)), NULL, 1, &a);
  ry_array_release(a);
  return r;
}

static ry_array *bin(ry_op op, ry_dtype d, int n, const double *x, const double *y) {
  ry_array *in[2] = {A(d, RY_SHAPE(n), x), A(d, RY_SHAPE(n), y)};
  ry_array *r = op_run(op, TY(d, RY_SHAPE(n)), NULL, 2, in);
  release_n(2, in);
  return r;
}

static bool same_f64(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return a == b && signbit(a) == signbit(b);
}

#define CHECK_VALS(arr, n, ...)                                                                   \
  do {                                                                                            \
    const double want_[] = {__VA_ARGS__};                                                         \
    const ry_array *a_ = (arr);                                                                   \
    CHECK(a_ != NULL);                                                                            \
    for (int i_ = 0; a_ && i_ < (n); i_++) {                                                      \
      double got_ = ry_array_get_f64(a_, i_);                                                     \
      CHECK_MSG(same_f64(got_, want_[i_]), "element %d: got %.17g, want %.17g", i_, got_, want_[i_]); \
    }                                                                                             \
  } while (0)

#define CHECK_IVALS(arr, n, ...)                                                                 \
  do {                                                                                           \
    const int64_t want_[] = {__VA_ARGS__};                                                       \
    const ry_array *a_ = (arr);                                                                  \
    CHECK(a_ != NULL);                                                                           \
    for (int i_ = 0; a_ && i_ < (n); i_++) {                                                     \
      int64_t got_ = ry_array_get_i64(a_, i_);                                                   \
      CHECK_MSG(got_ == want_[i_], "element %d: got %lld, want %lld", i_, (long long)got_, (long long)want_[i_]); \
    }                                                                                            \
  } while (0)

/* ---- devices and the kernel table ---- */

TEST(interp_kernel_table_complete) {
  for (int op = 0; op < RY_OP_COUNT; op++)
    CHECK_MSG(ryi_kernels[op] != NULL, "op %s has no interpreter kernel", ryg_op_table[op].name);
}

TEST(runtime_devices) {
  CHECK(ry_device_count() >= 1);
  CHECK(ry_device_at(-1) == NULL);
  CHECK(ry_device_at(ry_device_count()) == NULL);
  CHECK_STR(ry_device_name(ry_device_at(0)), "interp");
  CHECK(strlen(ry_device_description(ry_device_at(0))) > 0);
  ry_device *d = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  CHECK(d == ry_device_at(0));
  CHECK_ERR(ry_device_get("tpu9", &d), RY_ERR_NOT_FOUND, "tpu9", "interp");
  CHECK(d == NULL);
  CHECK_ERR(ry_device_get(NULL, &d), RY_ERR_INVALID_ARGUMENT, "name");
}

/* ---- ry_execute argument checks ---- */

TEST(runtime_execute_argument_errors) {
  ry_graph *g = ry__graph_new("main");
  int32_t x = P(g, 0, TY(RY_F32, RY_SHAPE(2, 3)), "w");
  int32_t y = P(g, 0, TY(RY_F32, RY_SHAPE(2, 3)), "x");
  RET(g, 0, 1, N(g, 0, RY_OP_ADD, TY(RY_F32, RY_SHAPE(2, 3)), NULL, 2, x, y));
  ry_device *dev;
  CHECK_OK(ry_device_get("interp", &dev));
  ry_executable *e = NULL;
  CHECK_ERR(ry_compile(g, NULL, &e), RY_ERR_INVALID_ARGUMENT, "device");
  CHECK_ERR(ry_compile(NULL, dev, &e), RY_ERR_INVALID_ARGUMENT, "graph");
  CHECK_OK(ry_compile(g, dev, &e));
  ry_array *good = AV(RY_F32, RY_SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
  ry_array *short_ = AV(RY_F32, RY_SHAPE(3), 1, 2, 3);
  ry_array *ints = AV(RY_I32, RY_SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
  ry_array *out[2] = {NULL, NULL};
  ry_array *in1[1] = {good};
  CHECK_ERR(ry_execute(e, 1, in1, 1, out), RY_ERR_INVALID_ARGUMENT, "1 input", "takes 2");
  ry_array *in_shape[2] = {good, short_};
  CHECK_ERR(ry_execute(e, 2, in_shape, 1, out), RY_ERR_SHAPE,
            "ry_execute: input 1 ('x') has type f32[3] but the graph expects f32[2,3]");
  ry_array *in_dtype[2] = {ints, good};
  CHECK_ERR(ry_execute(e, 2, in_dtype, 1, out), RY_ERR_DTYPE, "input 0 ('w') has type i32[2,3]", "f32[2,3]");
  ry_array *in_null[2] = {good, NULL};
  CHECK_ERR(ry_execute(e, 2, in_null, 1, out), RY_ERR_INVALID_ARGUMENT, "input 1", "NULL");
  ry_array *in2[2] = {good, good};
  CHECK_ERR(ry_execute(e, 2, in2, 2, out), RY_ERR_INVALID_ARGUMENT, "returns 1");
  CHECK(out[0] == NULL && out[1] == NULL);
  CHECK_ERR(ry_execute(NULL, 2, in2, 1, out), RY_ERR_INVALID_ARGUMENT, "NULL");
  CHECK_OK(ry_execute(e, 2, in2, 1, out));
  CHECK_VALS(out[0], 6, 2, 4, 6, 8, 10, 12);
  ry_array_release(out[0]);
  ry_executable_free(e);
  ry_executable_free(NULL);
  ry_array_release(good);
  ry_array_release(short_);
  ry_array_release(ints);
  ry_graph_release(g);
}

/* ---- elementwise: integers ---- */

TEST(interp_int_division) {
  ry_array *r = bin(RY_OP_DIV, RY_I32, 6, (const double[]){7, -7, 5, -2147483648.0, -2147483648.0, 0},
                    (const double[]){2, 2, 0, -1, 1, 0});
  CHECK_IVALS(r, 6, 3, -3, -1, INT32_MIN, INT32_MIN, -1);
  ry_array_release(r);
  r = bin(RY_OP_REM, RY_I32, 5, (const double[]){7, -7, 5, -2147483648.0, -5}, (const double[]){2, 2, 0, -1, 3});
  CHECK_IVALS(r, 5, 1, -1, 5, 0, -2);
  ry_array_release(r);
  /* i64 INT_MIN / -1 is the one case that overflows int64 itself */
  r = bin(RY_OP_DIV, RY_I64, 2, (const double[]){-9223372036854775808.0, 9}, (const double[]){-1, 0});
  CHECK_IVALS(r, 2, INT64_MIN, -1);
  ry_array_release(r);
  r = bin(RY_OP_REM, RY_I64, 1, (const double[]){-9223372036854775808.0}, (const double[]){-1});
  CHECK_IVALS(r, 1, 0);
  ry_array_release(r);
  /* unsigned division by zero gives all ones */
  r = bin(RY_OP_DIV, RY_U32, 2, (const double[]){4000000000.0, 9}, (const double[]){3, 0});
  CHECK_IVALS(r, 2, 1333333333, 4294967295);
  ry_array_release(r);
}

TEST(interp_int_wrap_and_pow) {
  ry_array *r = bin(RY_OP_ADD, RY_I8, 2, (const double[]){127, -128}, (const double[]){1, -1});
  CHECK_IVALS(r, 2, -128, 127);
  ry_array_release(r);
  r = bin(RY_OP_MUL, RY_I64, 1, (const double[]){4611686018427387904.0}, (const double[]){4});
  CHECK_IVALS(r, 1, 0);
  ry_array_release(r);
  r = bin(RY_OP_SUB, RY_U8, 1, (const double[]){0}, (const double[]){1});
  CHECK_IVALS(r, 1, 255);
  ry_array_release(r);
  r = bin(RY_OP_POW, RY_I32, 6, (const double[]){2, 2, 1, -1, -1, 3}, (const double[]){10, -1, -5, -3, -4, 40});
  CHECK_IVALS(r, 6, 1024, 0, 1, -1, 1, (int32_t)(uint32_t)12157665459056928801ull);
  ry_array_release(r);
  r = un(RY_OP_NEG, RY_I32, 2, (const double[]){-2147483648.0, 5});
  CHECK_IVALS(r, 2, INT32_MIN, -5);
  ry_array_release(r);
  r = un(RY_OP_ABS, RY_I8, 2, (const double[]){-128, -3});
  CHECK_IVALS(r, 2, -128, 3);
  ry_array_release(r);
  r = un(RY_OP_POPCNT, RY_I8, 2, (const double[]){-1, 6});
  CHECK_IVALS(r, 2, 8, 2);
  ry_array_release(r);
  r = un(RY_OP_NOT, RY_U8, 1, (const double[]){5});
  CHECK_IVALS(r, 1, 250);
  ry_array_release(r);
  r = un(RY_OP_NOT, RY_BOOL, 2, (const double[]){0, 1});
  CHECK_IVALS(r, 2, 1, 0);
  ry_array_release(r);
}

TEST(interp_shifts) {
  ry_array *r = bin(RY_OP_SHL, RY_I32, 4, (const double[]){1, 1, 1, 3}, (const double[]){31, 32, -1, 1});
  CHECK_IVALS(r, 4, INT32_MIN, 0, 0, 6);
  ry_array_release(r);
  r = bin(RY_OP_SHR_ARITH, RY_I32, 4, (const double[]){-8, -8, 8, -1}, (const double[]){1, 40, 40, 3});
  CHECK_IVALS(r, 4, -4, -1, 0, -1);
  ry_array_release(r);
  r = bin(RY_OP_SHR_LOGICAL, RY_I32, 3, (const double[]){-8, -8, 8}, (const double[]){28, 32, 1});
  CHECK_IVALS(r, 3, 15, 0, 4);
  ry_array_release(r);
  /* arithmetic shift of an unsigned value fills with its top bit */
  r = bin(RY_OP_SHR_ARITH, RY_U32, 2, (const double[]){2147483648.0, 2147483648.0}, (const double[]){4, 99});
  CHECK_IVALS(r, 2, 4160749568u, 4294967295u);
  ry_array_release(r);
  r = bin(RY_OP_SHR_ARITH, RY_I64, 1, (const double[]){-9223372036854775808.0}, (const double[]){63});
  CHECK_IVALS(r, 1, -1);
  ry_array_release(r);
}

/* ---- elementwise: floats ---- */

TEST(interp_float_special_values) {
  ry_array *r = un(RY_OP_SIGN, RY_F32, 5, (const double[]){-0.0, 0.0, NAN, -3, 2});
  CHECK_VALS(r, 5, -0.0, 0.0, NAN, -1, 1);
  ry_array_release(r);
  r = un(RY_OP_SIGN, RY_I32, 3, (const double[]){-7, 0, 9});
  CHECK_IVALS(r, 3, -1, 0, 1);
  ry_array_release(r);
  r = un(RY_OP_ROUND, RY_F32, 6, (const double[]){0.5, 1.5, 2.5, -2.5, -0.5, 2.4});
  CHECK_VALS(r, 6, 1, 2, 3, -3, -1, 2);
  ry_array_release(r);
  r = un(RY_OP_ROUND_EVEN, RY_F64, 6, (const double[]){0.5, 1.5, 2.5, -2.5, -0.5, 2.6});
  CHECK_VALS(r, 6, 0, 2, 2, -2, -0.0, 3);
  ry_array_release(r);
  r = bin(RY_OP_MAX, RY_F32, 4, (const double[]){NAN, 1, -0.0, 3}, (const double[]){1, NAN, 0.0, 2});
  CHECK_VALS(r, 4, NAN, NAN, 0.0, 3);
  ry_array_release(r);
  r = bin(RY_OP_MIN, RY_F64, 3, (const double[]){NAN, 0.0, 3}, (const double[]){1, -0.0, 2});
  CHECK_VALS(r, 3, NAN, -0.0, 2);
  ry_array_release(r);
  r = un(RY_OP_IS_FINITE, RY_F16, 4, (const double[]){1, INFINITY, NAN, -65504});
  CHECK_IVALS(r, 4, 1, 0, 0, 1);
  ry_array_release(r);
  r = un(RY_OP_LOGISTIC, RY_F64, 3, (const double[]){0, -800, 800});
  CHECK_VALS(r, 3, 0.5, 0.0, 1.0);
  ry_array_release(r);
  r = un(RY_OP_LOGISTIC, RY_F32, 1, (const double[]){-100});
  CHECK(r && ry_array_get_f64(r, 0) > 0 && ry_array_get_f64(r, 0) < 1e-40);
  ry_array_release(r);
  /* f16 is computed in f32 and rounded once: 2049 is not representable */
  r = bin(RY_OP_ADD, RY_F16, 2, (const double[]){2048, 1}, (const double[]){1, 2.0 / 1024});
  CHECK_VALS(r, 2, 2048, 1.0 + 2.0 / 1024);
  ry_array_release(r);
  r = bin(RY_OP_REM, RY_F32, 2, (const double[]){5.5, -5.5}, (const double[]){2, 2});
  CHECK_VALS(r, 2, 1.5, -1.5);
  ry_array_release(r);
}

TEST(interp_erf_inv) {
  const double ys[] = {-0.999999, -0.5, -1e-10, 0.1, 0.3, 0.7, 0.9, 0.999, 0.99999999, 1 - 1e-15};
  int n = (int)(sizeof ys / sizeof ys[0]);
  ry_array *r = un(RY_OP_ERF_INV, RY_F64, n, ys);
  for (int i = 0; r && i < n; i++) {
    double x = ry_array_get_f64(r, i), y = ys[i];
    /* near +-1 compare the tails: erfc(|x|) against the exact 1 - |y| */
    if (fabs(y) < 0.5)
      CHECK_MSG(fabs(erf(x) - y) <= 4e-16 * fabs(y), "erf(erf_inv(%.17g)) = %.17g", y, erf(x));
    else
      CHECK_MSG(fabs(erfc(fabs(x)) - (1 - fabs(y))) <= 1e-14 * (1 - fabs(y)), "erfc(|erf_inv(%.17g)|) = %.17g, want %.17g", y,
                erfc(fabs(x)), 1 - fabs(y));
  }
  ry_array_release(r);
  r = un(RY_OP_ERF_INV, RY_F64, 5, (const double[]){1, -1, 0, 2, -0.0});
  CHECK_VALS(r, 5, INFINITY, -INFINITY, 0, NAN, -0.0);
  ry_array_release(r);
  r = un(RY_OP_ERF_INV, RY_F32, 1, (const double[]){0.5});
  CHECK_VALS(r, 1, (double)0.476936276f);
  ry_array_release(r);
}

/* ---- convert ---- */

TEST(interp_convert) {
  ry_array *x = AV(RY_F32, RY_SHAPE(6), NAN, 1e10, -1e10, -1.7, 2.9, INFINITY);
  ry_array *r = op_run(RY_OP_CONVERT, TY(RY_I32, RY_SHAPE(6)), NULL, 1, &x);
  CHECK_IVALS(r, 6, 0, INT32_MAX, INT32_MIN, -1, 2, INT32_MAX);
  ry_array_release(r);
  r = op_run(RY_OP_CONVERT, TY(RY_U8, RY_SHAPE(6)), NULL, 1, &x);
  CHECK_IVALS(r, 6, 0, 255, 0, 0, 2, 255);
  ry_array_release(r);
  r = op_run(RY_OP_CONVERT, TY(RY_BOOL, RY_SHAPE(6)), NULL, 1, &x);
  CHECK_IVALS(r, 6, 1, 1, 1, 1, 1, 1);
  ry_array_release(r);
  ry_array_release(x);
  /* ->bool treats f32 denormals as zero (XLA:CPU's DAZ); f16 ones are f32 normals */
  x = AV(RY_F32, RY_SHAPE(3), 1e-40, -0.0, 1e-37);
  r = op_run(RY_OP_CONVERT, TY(RY_BOOL, RY_SHAPE(3)), NULL, 1, &x);
  CHECK_IVALS(r, 3, 0, 0, 1);
  ry_array_release(r);
  ry_array_release(x);
  x = AV(RY_F16, RY_SHAPE(1), 1e-7);
  r = op_run(RY_OP_CONVERT, TY(RY_BOOL, RY_SHAPE(1)), NULL, 1, &x);
  CHECK_IVALS(r, 1, 1);
  ry_array_release(r);
  ry_array_release(x);
  /* int -> int wraps; int -> bool is != 0 */
  x = AV(RY_I32, RY_SHAPE(3), 300, -1, 0);
  r = op_run(RY_OP_CONVERT, TY(RY_U8, RY_SHAPE(3)), NULL, 1, &x);
  CHECK_IVALS(r, 3, 44, 255, 0);
  ry_array_release(r);
  r = op_run(RY_OP_CONVERT, TY(RY_BOOL, RY_SHAPE(3)), NULL, 1, &x);
  CHECK_IVALS(r, 3, 1, 1, 0);
  ry_array_release(r);
  ry_array_release(x);
  /* f64 -> f16 rounds once: 1 + 2^-11 + 2^-30 is just above the tie */
  x = AV(RY_F64, RY_SHAPE(2), 1.0 + 1.0 / 2048 + 1.0 / 1073741824.0, 1.0 + 1.0 / 2048);
  r = op_run(RY_OP_CONVERT, TY(RY_F16, RY_SHAPE(2)), NULL, 1, &x);
  CHECK_VALS(r, 2, 1.0 + 1.0 / 1024, 1.0);
  ry_array_release(r);
  ry_array_release(x);
  /* i64 -> f32 rounds once */
  int64_t big = (INT64_C(1) << 40) + (INT64_C(1) << 16) + 1; /* just above a tie in f32 */
  ry_array *xi;
  CHECK_OK(ry_array_from_host(RY_I64, RY_SHAPE(1), &big, &xi));
  r = op_run(RY_OP_CONVERT, TY(RY_F32, RY_SHAPE(1)), NULL, 1, &xi);
  CHECK_VALS(r, 1, (double)((INT64_C(1) << 40) + (INT64_C(1) << 17)));
  ry_array_release(r);
  ry_array_release(xi);
  /* bitcast */
  x = AV(RY_F32, RY_SHAPE(1), -0.0);
  r = op_run(RY_OP_BITCAST, TY(RY_U32, RY_SHAPE(1)), NULL, 1, &x);
  CHECK_IVALS(r, 1, 2147483648u);
  ry_array_release(r);
  ry_array_release(x);
}

TEST(interp_compare_select_clamp) {
  ry_attrs a = {0};
  a.compare.dir = RY_NE;
  ry_array *in[3] = {AV(RY_F32, RY_SHAPE(3), NAN, 1, -0.0), AV(RY_F32, RY_SHAPE(3), NAN, 1, 0.0), NULL};
  ry_array *r = op_run(RY_OP_COMPARE, TY(RY_BOOL, RY_SHAPE(3)), &a, 2, in);
  CHECK_IVALS(r, 3, 1, 0, 0);
  ry_array_release(r);
  a.compare.dir = RY_LT;
  release_n(2, in);
  in[0] = AV(RY_U32, RY_SHAPE(2), 4000000000.0, 1);
  in[1] = AV(RY_U32, RY_SHAPE(2), 1, 2);
  r = op_run(RY_OP_COMPARE, TY(RY_BOOL, RY_SHAPE(2)), &a, 2, in);
  CHECK_IVALS(r, 2, 0, 1);
  ry_array_release(r);
  release_n(2, in);
  in[0] = AV(RY_BOOL, RY_SCALAR, 1);
  in[1] = AV(RY_I16, RY_SHAPE(2), 1, 2);
  in[2] = AV(RY_I16, RY_SHAPE(2), 3, 4);
  r = op_run(RY_OP_SELECT, TY(RY_I16, RY_SHAPE(2)), NULL, 3, in);
  CHECK_IVALS(r, 2, 1, 2);
  ry_array_release(r);
  release_n(3, in);
  in[0] = AV(RY_F32, RY_SCALAR, 0);
  in[1] = AV(RY_F32, RY_SHAPE(4), -1, 0.5, 7, NAN);
  in[2] = AV(RY_F32, RY_SCALAR, 1);
  r = op_run(RY_OP_CLAMP, TY(RY_F32, RY_SHAPE(4)), NULL, 3, in);
  CHECK_VALS(r, 4, 0, 0.5, 1, NAN);
  ry_array_release(r);
  release_n(3, in);
}

/* ---- shape ops ---- */

TEST(interp_shape_ops) {
  ry_attrs a = {0};
  ry_array *x = AV(RY_I32, RY_SHAPE(2, 3), 0, 1, 2, 3, 4, 5), *r;
  a.transpose.perm = RY_AXES(1, 0);
  r = op_run(RY_OP_TRANSPOSE, TY(RY_I32, RY_SHAPE(3, 2)), &a, 1, &x);
  CHECK_IVALS(r, 6, 0, 3, 1, 4, 2, 5);
  ry_array_release(r);
  memset(&a, 0, sizeof a);
  a.slice.start = RY_AXES(0, 0);
  a.slice.limit = RY_AXES(2, 3);
  a.slice.stride = RY_AXES(1, 2);
  r = op_run(RY_OP_SLICE, TY(RY_I32, RY_SHAPE(2, 2)), &a, 1, &x);
  CHECK_IVALS(r, 4, 0, 2, 3, 5);
  ry_array_release(r);
  memset(&a, 0, sizeof a);
  a.reverse.dims = RY_AXES(1);
  r = op_run(RY_OP_REVERSE, TY(RY_I32, RY_SHAPE(2, 3)), &a, 1, &x);
  CHECK_IVALS(r, 6, 2, 1, 0, 5, 4, 3);
  ry_array_release(r);
  memset(&a, 0, sizeof a);
  a.broadcast.dims = RY_AXES(0, 2);
  ry_array *col = AV(RY_I32, RY_SHAPE(2, 1), 7, 8);
  r = op_run(RY_OP_BROADCAST, TY(RY_I32, RY_SHAPE(2, 2, 3)), &a, 1, &col);
  CHECK_IVALS(r, 12, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8);
  ry_array_release(r);
  ry_array_release(col);
  /* pad: negative low, interior, positive high */
  memset(&a, 0, sizeof a);
  a.pad.low = RY_AXES(0, -1);
  a.pad.high = RY_AXES(0, 2);
  a.pad.interior = RY_AXES(0, 1);
  ry_array *pin[2] = {x, AV(RY_I32, RY_SCALAR, -9)};
  r = op_run(RY_OP_PAD, TY(RY_I32, RY_SHAPE(2, 6)), &a, 2, pin); /* 3 + 2 interior - 1 + 2 = 6 */
  CHECK_IVALS(r, 12, -9, 1, -9, 2, -9, -9, -9, 4, -9, 5, -9, -9);
  ry_array_release(r);
  ry_array_release(pin[1]);
  memset(&a, 0, sizeof a);
  a.concatenate.dim = 1;
  ry_array *cin[2] = {x, AV(RY_I32, RY_SHAPE(2, 1), 10, 11)};
  r = op_run(RY_OP_CONCATENATE, TY(RY_I32, RY_SHAPE(2, 4)), &a, 2, cin);
  CHECK_IVALS(r, 8, 0, 1, 2, 10, 3, 4, 5, 11);
  ry_array_release(r);
  ry_array_release(cin[1]);
  /* dynamic_slice clamps starts so the slice fits */
  memset(&a, 0, sizeof a);
  a.dynamic_slice.sizes = RY_AXES(1, 2);
  ry_array *din[3] = {x, AV(RY_I32, RY_SCALAR, 5), AV(RY_I64, RY_SCALAR, -3)};
  r = op_run(RY_OP_DYNAMIC_SLICE, TY(RY_I32, RY_SHAPE(1, 2)), &a, 3, din);
  CHECK_IVALS(r, 2, 3, 4);
  ry_array_release(r);
  ry_array *uin[4] = {x, AV(RY_I32, RY_SHAPE(1, 2), 50, 60), din[1], AV(RY_I64, RY_SCALAR, 7)};
  r = op_run(RY_OP_DYNAMIC_UPDATE_SLICE, TY(RY_I32, RY_SHAPE(2, 3)), NULL, 4, uin);
  CHECK_IVALS(r, 6, 0, 1, 2, 3, 50, 60);
  ry_array_release(r);
  ry_array_release(uin[1]);
  ry_array_release(uin[3]);
  release_n(2, din + 1);
  r = op_run(RY_OP_RESHAPE, TY(RY_I32, RY_SHAPE(3, 2)), NULL, 1, &x);
  CHECK(r && r->type.shape.dims[0] == 3);
  CHECK_IVALS(r, 6, 0, 1, 2, 3, 4, 5);
  ry_array_release(r);
  memset(&a, 0, sizeof a);
  a.iota.dim = 1;
  r = op_run(RY_OP_IOTA, TY(RY_F16, RY_SHAPE(2, 3)), &a, 0, NULL);
  CHECK_VALS(r, 6, 0, 1, 2, 0, 1, 2);
  ry_array_release(r);
  ry_array_release(x);
}

/* ---- reductions ---- */

TEST(interp_reductions) {
  ry_attrs a = {0};
  ry_array *x = AV(RY_F32, RY_SHAPE(2, 3), 1, 2, 3, 4, NAN, 6), *r;
  a.reduce.kind = RY_SUM;
  a.reduce.axes = RY_AXES(0);
  r = op_run(RY_OP_REDUCE, TY(RY_F32, RY_SHAPE(3)), &a, 1, &x);
  CHECK_VALS(r, 3, 5, NAN, 9);
  ry_array_release(r);
  a.reduce.kind = RY_MAX;
  a.reduce.axes = RY_AXES(1);
  r = op_run(RY_OP_REDUCE, TY(RY_F32, RY_SHAPE(2)), &a, 1, &x);
  CHECK_VALS(r, 2, 3, NAN);
  ry_array_release(r);
  a.reduce.kind = RY_PROD;
  a.reduce.axes = RY_AXES(0, 1);
  r = op_run(RY_OP_REDUCE, TY(RY_F32, RY_SCALAR), &a, 1, &x);
  CHECK_VALS(r, 1, NAN);
  ry_array_release(r);
  ry_array_release(x);
  /* empty reductions give the identity */
  x = AV(RY_F32, RY_SHAPE(2, 0), 0);
  const ry_reduce_kind kinds[4] = {RY_SUM, RY_PROD, RY_MAX, RY_MIN};
  const double ids[4] = {0, 1, -INFINITY, INFINITY};
  for (int k = 0; k < 4; k++) {
    a.reduce.kind = kinds[k];
    a.reduce.axes = RY_AXES(1);
    r = op_run(RY_OP_REDUCE, TY(RY_F32, RY_SHAPE(2)), &a, 1, &x);
    CHECK_VALS(r, 2, ids[k], ids[k]);
    ry_array_release(r);
  }
  ry_array_release(x);
  x = AV(RY_I8, RY_SHAPE(0), 0);
  a.reduce.kind = RY_MIN;
  a.reduce.axes = RY_AXES(0);
  r = op_run(RY_OP_REDUCE, TY(RY_I8, RY_SCALAR), &a, 1, &x);
  CHECK_IVALS(r, 1, 127);
  ry_array_release(r);
  a.reduce.kind = RY_AND;
  r = op_run(RY_OP_REDUCE, TY(RY_I8, RY_SCALAR), &a, 1, &x);
  CHECK_IVALS(r, 1, -1);
  ry_array_release(r);
  ry_array_release(x);
  x = AV(RY_BOOL, RY_SHAPE(3), 1, 0, 1);
  a.reduce.kind = RY_OR;
  r = op_run(RY_OP_REDUCE, TY(RY_BOOL, RY_SCALAR), &a, 1, &x);
  CHECK_IVALS(r, 1, 1);
  ry_array_release(r);
  a.reduce.kind = RY_AND;
  r = op_run(RY_OP_REDUCE, TY(RY_BOOL, RY_SCALAR), &a, 1, &x);
  CHECK_IVALS(r, 1, 0);
  ry_array_release(r);
  ry_array_release(x);
  /* integer sums wrap */
  x = AV(RY_U8, RY_SHAPE(3), 200, 100, 1);
  a.reduce.kind = RY_SUM;
  r = op_run(RY_OP_REDUCE, TY(RY_U8, RY_SCALAR), &a, 1, &x);
  CHECK_IVALS(r, 1, 45);
  ry_array_release(r);
  ry_array_release(x);
}

TEST(interp_argmax_cumulative) {
  ry_attrs a = {0};
  ry_array *x = AV(RY_F32, RY_SHAPE(2, 4), 1, 3, 3, 0, 2, NAN, 5, NAN), *r;
  a.arg.axis = 1;
  r = op_run(RY_OP_ARGMAX, TY(RY_I32, RY_SHAPE(2)), &a, 1, &x);
  CHECK_IVALS(r, 2, 1, 1);
  ry_array_release(r);
  r = op_run(RY_OP_ARGMIN, TY(RY_I64, RY_SHAPE(2)), &a, 1, &x);
  CHECK_IVALS(r, 2, 3, 1);
  ry_array_release(r);
  a.arg.axis = 0;
  r = op_run(RY_OP_ARGMIN, TY(RY_U8, RY_SHAPE(4)), &a, 1, &x);
  CHECK_IVALS(r, 4, 0, 1, 0, 1);
  ry_array_release(r);
  ry_array_release(x);
  memset(&a, 0, sizeof a);
  x = AV(RY_I32, RY_SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
  a.cumulative.kind = RY_SUM;
  a.cumulative.axis = 1;
  r = op_run(RY_OP_CUMULATIVE, TY(RY_I32, RY_SHAPE(2, 3)), &a, 1, &x);
  CHECK_IVALS(r, 6, 1, 3, 6, 4, 9, 15);
  ry_array_release(r);
  a.cumulative.reverse = true;
  a.cumulative.kind = RY_PROD;
  r = op_run(RY_OP_CUMULATIVE, TY(RY_I32, RY_SHAPE(2, 3)), &a, 1, &x);
  CHECK_IVALS(r, 6, 6, 6, 3, 120, 30, 6);
  ry_array_release(r);
  a.cumulative.reverse = false;
  a.cumulative.kind = RY_MAX;
  a.cumulative.axis = 0;
  ry_array_release(x);
  x = AV(RY_F32, RY_SHAPE(3), 1, NAN, 2);
  r = op_run(RY_OP_CUMULATIVE, TY(RY_F32, RY_SHAPE(3)), &a, 1, &x);
  CHECK_VALS(r, 3, 1, NAN, NAN);
  ry_array_release(r);
  ry_array_release(x);
}

/* ---- contractions ---- */

TEST(interp_dot_general) {
  ry_attrs a = {0};
  /* batched matmul i8 x i8 -> i32: [2,2,3] x [2,3,1] */
  ry_array *in[2] = {AV(RY_I8, RY_SHAPE(2, 2, 3), 1, 2, 3, 4, 5, 6, 100, 100, 100, -1, -2, -3),
                     AV(RY_I8, RY_SHAPE(2, 3, 1), 1, 1, 1, 100, 100, 100)};
  a.dot.lhs_batch = RY_AXES(0);
  a.dot.rhs_batch = RY_AXES(0);
  a.dot.lhs_contract = RY_AXES(2);
  a.dot.rhs_contract = RY_AXES(1);
  ry_array *r = op_run(RY_OP_DOT_GENERAL, TY(RY_I32, RY_SHAPE(2, 2, 1)), &a, 2, in);
  CHECK_IVALS(r, 4, 6, 15, 30000, -600);
  ry_array_release(r);
  release_n(2, in);
  /* contracting over lhs dim 0 (a transposed matmul), f32 */
  memset(&a, 0, sizeof a);
  in[0] = AV(RY_F32, RY_SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
  in[1] = AV(RY_F32, RY_SHAPE(2, 2), 1, 0, 0, 1);
  a.dot.lhs_contract = RY_AXES(0);
  a.dot.rhs_contract = RY_AXES(0);
  r = op_run(RY_OP_DOT_GENERAL, TY(RY_F32, RY_SHAPE(3, 2)), &a, 2, in);
  CHECK_VALS(r, 6, 1, 4, 2, 5, 3, 6);
  ry_array_release(r);
  release_n(2, in);
  /* outer product, no contraction */
  in[0] = AV(RY_F64, RY_SHAPE(2), 1, 2);
  in[1] = AV(RY_F64, RY_SHAPE(3), 1, 10, 100);
  memset(&a, 0, sizeof a);
  r = op_run(RY_OP_DOT_GENERAL, TY(RY_F64, RY_SHAPE(2, 3)), &a, 2, in);
  CHECK_VALS(r, 6, 1, 10, 100, 2, 20, 200);
  ry_array_release(r);
  release_n(2, in);
}

TEST(interp_convolution) {
  ry_attrs a = {0};
  ry_conv_dims *c = &a.conv;
  /* 1-d, NCW / OIW: x = [1,2,3,4,5], w = [1,10], stride 2, pad (1,0), lhs dilation 1 */
  ry_array *in[2] = {AV(RY_F32, RY_SHAPE(1, 1, 5), 1, 2, 3, 4, 5), AV(RY_F32, RY_SHAPE(1, 1, 2), 1, 10)};
  c->stride = RY_AXES(2);
  c->pad_low = RY_AXES(1);
  c->pad_high = RY_AXES(0);
  c->lhs_dilation = RY_AXES(1);
  c->rhs_dilation = RY_AXES(1);
  c->feature_groups = c->batch_groups = 1;
  c->input_dims = RY_AXES(0, 1, 2);
  c->kernel_dims = RY_AXES(0, 1, 2);
  c->output_dims = RY_AXES(0, 1, 2);
  /* padded: [0,1,2,3,4,5] -> windows at 0,2,4: 0+10, 2+30, 4+50 */
  ry_array *r = op_run(RY_OP_CONVOLUTION, TY(RY_F32, RY_SHAPE(1, 1, 3)), &a, 2, in);
  CHECK_VALS(r, 3, 10, 32, 54);
  ry_array_release(r);
  /* lhs dilation 2, rhs dilation 2, negative high padding:
   * dilated x = [1,0,2,0,3,0,4,0,5] (9), pad (0,-2) -> 7; kernel taps at 0 and 2 -> 5 outputs */
  c->stride = RY_AXES(1);
  c->pad_low = RY_AXES(0);
  c->pad_high = RY_AXES(-2);
  c->lhs_dilation = RY_AXES(2);
  c->rhs_dilation = RY_AXES(2);
  r = op_run(RY_OP_CONVOLUTION, TY(RY_F32, RY_SHAPE(1, 1, 5)), &a, 2, in);
  CHECK_VALS(r, 5, 1 + 20, 0, 2 + 30, 0, 3 + 40);
  ry_array_release(r);
  release_n(2, in);
  /* depthwise (feature_groups = 2), NWC layout: x [1, 3, 2], w as [W=1, I=1, O=2] */
  memset(&a, 0, sizeof a);
  c->stride = RY_AXES(1);
  c->pad_low = RY_AXES(0);
  c->pad_high = RY_AXES(0);
  c->lhs_dilation = RY_AXES(1);
  c->rhs_dilation = RY_AXES(1);
  c->feature_groups = 2;
  c->batch_groups = 1;
  c->input_dims = RY_AXES(0, 2, 1);
  c->kernel_dims = RY_AXES(2, 1, 0);
  c->output_dims = RY_AXES(0, 2, 1);
  in[0] = AV(RY_F32, RY_SHAPE(1, 3, 2), 1, 2, 3, 4, 5, 6);
  in[1] = AV(RY_F32, RY_SHAPE(1, 1, 2), 10, 100);
  r = op_run(RY_OP_CONVOLUTION, TY(RY_F32, RY_SHAPE(1, 3, 2)), &a, 2, in);
  CHECK_VALS(r, 6, 10, 200, 30, 400, 50, 600);
  ry_array_release(r);
  release_n(2, in);
  /* batch_groups = 2: lhs batch 2 -> output batch 1, output feature o uses lhs batch o */
  memset(&a, 0, sizeof a);
  c->stride = RY_AXES(1);
  c->pad_low = RY_AXES(0);
  c->pad_high = RY_AXES(0);
  c->lhs_dilation = RY_AXES(1);
  c->rhs_dilation = RY_AXES(1);
  c->feature_groups = 1;
  c->batch_groups = 2;
  c->input_dims = RY_AXES(0, 1, 2);
  c->kernel_dims = RY_AXES(0, 1, 2);
  c->output_dims = RY_AXES(0, 1, 2);
  in[0] = AV(RY_I32, RY_SHAPE(2, 1, 2), 1, 2, 3, 4);
  in[1] = AV(RY_I32, RY_SHAPE(2, 1, 1), 10, 100);
  r = op_run(RY_OP_CONVOLUTION, TY(RY_I32, RY_SHAPE(1, 2, 2)), &a, 2, in);
  CHECK_IVALS(r, 4, 10, 20, 300, 400);
  ry_array_release(r);
  release_n(2, in);
}

/* ---- indexing ---- */

TEST(interp_gather_scatter) {
  ry_attrs a = {0};
  /* take rows of a [3,2] operand with indices [4,1] (clamped: 5 -> 2, -1 -> 0) */
  ry_array *in[3] = {AV(RY_F32, RY_SHAPE(3, 2), 0, 1, 10, 11, 20, 21), AV(RY_I32, RY_SHAPE(3, 1), 1, 5, -1), NULL};
  a.gather.offset_dims = RY_AXES(1);
  a.gather.collapsed_slice_dims = RY_AXES(0);
  a.gather.start_index_map = RY_AXES(0);
  a.gather.index_vector_dim = 1;
  a.gather.slice_sizes = RY_AXES(1, 2);
  ry_array *r = op_run(RY_OP_GATHER, TY(RY_F32, RY_SHAPE(3, 2)), &a, 2, in);
  CHECK_VALS(r, 6, 10, 11, 20, 21, 0, 1);
  ry_array_release(r);
  /* take_along_axis-like: 2-d index vectors, implicit-free, slices of 1x1 */
  release_n(2, in);
  in[0] = AV(RY_I32, RY_SHAPE(2, 3), 0, 1, 2, 3, 4, 5);
  in[1] = AV(RY_I32, RY_SHAPE(2, 2), 1, 2, 0, 1);
  memset(&a, 0, sizeof a);
  a.gather.offset_dims = RY_NO_AXES;
  a.gather.collapsed_slice_dims = RY_AXES(0, 1);
  a.gather.start_index_map = RY_AXES(0, 1);
  a.gather.index_vector_dim = 1;
  a.gather.slice_sizes = RY_AXES(1, 1);
  r = op_run(RY_OP_GATHER, TY(RY_I32, RY_SHAPE(2)), &a, 2, in);
  CHECK_IVALS(r, 2, 5, 1);
  ry_array_release(r);
  release_n(2, in);
  /* scatter-add rows with a duplicate and an out-of-bounds index (dropped);
   * index_vector_dim = rank of the indices (implicit trailing 1) */
  in[0] = AV(RY_F32, RY_SHAPE(3, 2), 0, 0, 0, 0, 0, 0);
  in[1] = AV(RY_I32, RY_SHAPE(4), 1, 1, 3, -1);
  in[2] = AV(RY_F32, RY_SHAPE(4, 2), 1, 2, 10, 20, 100, 200, 1000, 2000);
  memset(&a, 0, sizeof a);
  a.scatter.update_window_dims = RY_AXES(1);
  a.scatter.inserted_window_dims = RY_AXES(0);
  a.scatter.scatter_dims_to_operand_dims = RY_AXES(0);
  a.scatter.index_vector_dim = 1;
  a.scatter.kind = RY_SCATTER_ADD;
  r = op_run(RY_OP_SCATTER, TY(RY_F32, RY_SHAPE(3, 2)), &a, 3, in);
  CHECK_VALS(r, 6, 0, 0, 11, 22, 0, 0);
  ry_array_release(r);
  /* a window that only partly fits is skipped whole: update [2,2] windows at row 2 of 3 */
  release_n(3, in);
  in[0] = AV(RY_I32, RY_SHAPE(3, 2), 0, 0, 0, 0, 0, 0);
  in[1] = AV(RY_I32, RY_SHAPE(2, 1), 2, 1);
  in[2] = AV(RY_I32, RY_SHAPE(2, 2, 2), 1, 1, 1, 1, 5, 6, 7, 8);
  memset(&a, 0, sizeof a);
  a.scatter.update_window_dims = RY_AXES(1, 2);
  a.scatter.inserted_window_dims = RY_NO_AXES;
  a.scatter.scatter_dims_to_operand_dims = RY_AXES(0);
  a.scatter.index_vector_dim = 1;
  a.scatter.kind = RY_SCATTER_REPLACE;
  r = op_run(RY_OP_SCATTER, TY(RY_I32, RY_SHAPE(3, 2)), &a, 3, in);
  CHECK_IVALS(r, 6, 0, 0, 5, 6, 7, 8);
  ry_array_release(r);
  release_n(3, in);
}

/* ---- sort ---- */

TEST(interp_sort) {
  ry_graph *g = ry__graph_new("main");
  ry_type kt = TY(RY_F32, RY_SHAPE(7)), vt = TY(RY_I32, RY_SHAPE(7));
  int32_t k = P(g, 0, kt, "k"), v = P(g, 0, vt, "v");
  ry_attrs a = {0};
  a.sort.dim = 0;
  a.sort.num_keys = 1;
  a.sort.stable = true;
  ry_type rts[2] = {kt, vt};
  int32_t ops[2] = {k, v};
  int32_t n1 = ry__graph_add_node(g, 0, RY_OP_SORT, 2, ops, 2, rts, 0, NULL, &a, (ry_loc){NULL, 0});
  a.sort.descending = true;
  int32_t n2 = ry__graph_add_node(g, 0, RY_OP_SORT, 2, ops, 2, rts, 0, NULL, &a, (ry_loc){NULL, 0});
  RET(g, 0, 4, RES(g, n1, 0), RES(g, n1, 1), RES(g, n2, 0), RES(g, n2, 1));
  ry_array *in[2] = {AV(RY_F32, RY_SHAPE(7), 0.0, NAN, -0.0, 1, -INFINITY, 1, 0.0),
                     AV(RY_I32, RY_SHAPE(7), 0, 1, 2, 3, 4, 5, 6)};
  ry_array *out[4] = {NULL};
  CHECK_OK(RUN(g, 2, in, 4, out));
  /* -0 and +0 compare equal (as in JAX), so stability keeps their order */
  CHECK_VALS(out[0], 7, -INFINITY, 0.0, -0.0, 0.0, 1, 1, NAN);
  CHECK_IVALS(out[1], 7, 4, 0, 2, 6, 3, 5, 1);
  CHECK_VALS(out[2], 7, NAN, 1, 1, 0.0, -0.0, 0.0, -INFINITY);
  CHECK_IVALS(out[3], 7, 1, 3, 5, 0, 2, 6, 4);
  release_n(4, out);
  release_n(2, in);
  ry_graph_release(g);
}

/* ---- threefry ---- */

TEST(interp_threefry_known_answers) {
  /* Random123 known-answer vectors (also used by JAX's tests) */
  uint32_t r[2];
  ryi_threefry2x32(0, 0, 0, 0, r);
  CHECK(r[0] == 0x6b200159u && r[1] == 0x99ba4efeu);
  ryi_threefry2x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, r);
  CHECK(r[0] == 0x1cb996fcu && r[1] == 0xbb002be7u);
  ryi_threefry2x32(0x13198a2eu, 0x03707344u, 0x243f6a88u, 0x85a308d3u, r);
  CHECK(r[0] == 0xc4923a9cu && r[1] == 0x483df7a0u);
  /* through the op: scalar keys broadcast over counters */
  ry_graph *g = ry__graph_new("main");
  ry_type s = TY(RY_U32, RY_SCALAR), v = TY(RY_U32, RY_SHAPE(2));
  int32_t ops[4] = {P(g, 0, s, NULL), P(g, 0, s, NULL), P(g, 0, v, NULL), P(g, 0, v, NULL)};
  ry_type rts[2] = {v, v};
  int32_t n = ry__graph_add_node(g, 0, RY_OP_THREEFRY, 4, ops, 2, rts, 0, NULL, NULL, (ry_loc){NULL, 0});
  RET(g, 0, 2, RES(g, n, 0), RES(g, n, 1));
  ry_array *in[4] = {AV(RY_U32, RY_SCALAR, 0x13198a2e), AV(RY_U32, RY_SCALAR, 0x03707344), AV(RY_U32, RY_SHAPE(2), 0, 0x243f6a88),
                     AV(RY_U32, RY_SHAPE(2), 0, 0x85a308d3)};
  ry_array *out[2] = {NULL};
  CHECK_OK(RUN(g, 4, in, 2, out));
  CHECK(out[0] && ry_array_get_i64(out[0], 1) == 0xc4923a9c && ry_array_get_i64(out[1], 1) == 0x483df7a0);
  release_n(2, out);
  release_n(4, in);
  ry_graph_release(g);
}

/* ---- control flow ---- */

/* The while example of docs/IR.md: doubles f until i reaches n. */
static ry_graph *while_graph(void) {
  ry_graph *g = ry__graph_new("main");
  ry_type i32 = TY(RY_I32, RY_SCALAR), f32 = TY(RY_F32, RY_SCALAR), b = TY(RY_BOOL, RY_SCALAR);
  int32_t n = P(g, 0, i32, "n");
  ry_attrs c0 = {0}, c1 = {0};
  c0.constant.value = AV(RY_I32, RY_SCALAR, 0);
  c1.constant.value = AV(RY_F32, RY_SCALAR, 1);
  int32_t zero = N(g, 0, RY_OP_CONSTANT, i32, &c0, 0), one = N(g, 0, RY_OP_CONSTANT, f32, &c1, 0);
  int32_t rc = ry__graph_add_region(g, -1), rb = ry__graph_add_region(g, -1);
  int32_t cn = P(g, rc, i32, NULL), ci = P(g, rc, i32, NULL);
  P(g, rc, f32, NULL);
  ry_attrs lt = {0};
  lt.compare.dir = RY_LT;
  RET(g, rc, 1, N(g, rc, RY_OP_COMPARE, b, &lt, 2, ci, cn));
  P(g, rb, i32, NULL);
  int32_t bi = P(g, rb, i32, NULL), bf = P(g, rb, f32, NULL);
  ry_attrs k1 = {0};
  k1.constant.value = AV(RY_I32, RY_SCALAR, 1);
  int32_t inc = N(g, rb, RY_OP_CONSTANT, i32, &k1, 0);
  RET(g, rb, 2, N(g, rb, RY_OP_ADD, i32, NULL, 2, bi, inc), N(g, rb, RY_OP_ADD, f32, NULL, 2, bf, bf));
  ry_attrs w = {0};
  w.while_.n_consts = 1;
  int32_t regs[2] = {rc, rb}, ops[3] = {n, zero, one};
  ry_type rts[2] = {i32, f32};
  int32_t wn = ry__graph_add_node(g, 0, RY_OP_WHILE, 3, ops, 2, rts, 2, regs, &w, (ry_loc){"loop.c", 3});
  RET(g, 0, 2, RES(g, wn, 0), RES(g, wn, 1));
  return g;
}

TEST(interp_while) {
  ry_graph *g = while_graph();
  for (int n = -1; n <= 10; n += 11) {
    ry_array *in = AV(RY_I32, RY_SCALAR, n), *out[2] = {NULL};
    CHECK_OK(RUN(g, 1, &in, 2, out));
    CHECK_IVALS(out[0], 1, n < 0 ? 0 : n);
    CHECK_VALS(out[1], 1, n < 0 ? 1 : 1024);
    release_n(2, out);
    ry_array_release(in);
  }
  ry_graph_release(g);
}

/* cond with n branches, each returning x * (branch+1) */
static ry_graph *cond_graph(ry_dtype index_dtype, int nbranch) {
  ry_graph *g = ry__graph_new("main");
  ry_type ft = TY(RY_F32, RY_SHAPE(2));
  int32_t idx = P(g, 0, TY(index_dtype, RY_SCALAR), "i"), x = P(g, 0, ft, "x");
  int32_t regs[8];
  for (int b = 0; b < nbranch; b++) {
    regs[b] = ry__graph_add_region(g, -1);
    int32_t p = P(g, regs[b], ft, NULL);
    ry_attrs c = {0};
    c.constant.value = AV(RY_F32, RY_SHAPE(2), b + 1, b + 1);
    int32_t k = N(g, regs[b], RY_OP_CONSTANT, ft, &c, 0);
    RET(g, regs[b], 1, N(g, regs[b], RY_OP_MUL, ft, NULL, 2, p, k));
  }
  int32_t ops[2] = {idx, x};
  int32_t cn = ry__graph_add_node(g, 0, RY_OP_COND, 2, ops, 1, &ft, nbranch, regs, NULL, (ry_loc){NULL, 0});
  RET(g, 0, 1, RES(g, cn, 0));
  return g;
}

TEST(interp_cond) {
  ry_graph *g = cond_graph(RY_BOOL, 2);
  ry_array *x = AV(RY_F32, RY_SHAPE(2), 1, 2), *out = NULL;
  ry_array *in[2] = {AV(RY_BOOL, RY_SCALAR, 0), x};
  CHECK_OK(RUN(g, 2, in, 1, &out));
  CHECK_VALS(out, 2, 1, 2); /* false -> branch 0 */
  ry_array_release(out);
  ry_array_release(in[0]);
  in[0] = AV(RY_BOOL, RY_SCALAR, 1);
  CHECK_OK(RUN(g, 2, in, 1, &out));
  CHECK_VALS(out, 2, 2, 4);
  ry_array_release(out);
  ry_array_release(in[0]);
  ry_graph_release(g);
  g = cond_graph(RY_I32, 3);
  const int idx[4] = {1, 2, 7, -1};
  const double want[4] = {2, 3, 3, 3}; /* out of range -> last branch */
  for (int i = 0; i < 4; i++) {
    in[0] = AV(RY_I32, RY_SCALAR, idx[i]);
    CHECK_OK(RUN(g, 2, in, 1, &out));
    CHECK_VALS(out, 2, want[i], 2 * want[i]);
    ry_array_release(out);
    ry_array_release(in[0]);
  }
  ry_graph_release(g);
  ry_array_release(x);
}

TEST(interp_call) {
  /* callee: square_sum(x) = sum(x*x) */
  ry_graph *callee = ry__graph_new("square_sum");
  ry_type vt = TY(RY_F32, RY_SHAPE(3)), st = TY(RY_F32, RY_SCALAR);
  int32_t x = P(callee, 0, vt, "x");
  ry_attrs red = {0};
  red.reduce.kind = RY_SUM;
  red.reduce.axes = RY_AXES(0);
  RET(callee, 0, 1, N(callee, 0, RY_OP_REDUCE, st, &red, 1, N(callee, 0, RY_OP_MUL, vt, NULL, 2, x, x)));
  ry_graph *g = ry__graph_new("main");
  int32_t gx = P(g, 0, vt, "x"), gy = P(g, 0, TY(RY_I32, RY_SCALAR), NULL);
  ry_attrs c = {0};
  c.call.callee = callee; /* ownership moves to g */
  RET(g, 0, 2, N(g, 0, RY_OP_CALL, st, &c, 1, gx), gy);
  ry_array *in[2] = {AV(RY_F32, RY_SHAPE(3), 1, 2, 3), AV(RY_I32, RY_SCALAR, 42)}, *out[2] = {NULL};
  CHECK_OK(RUN(g, 2, in, 2, out));
  CHECK_VALS(out[0], 1, 14);
  CHECK_IVALS(out[1], 1, 42);
  CHECK(out[1] == in[1]); /* inputs pass through shared (arrays are immutable) */
  release_n(2, out);
  release_n(2, in);
  ry_graph_release(g);
}

/* ---- custom_call ---- */

static ry_status cc_scale(void *ud, int n_in, ry_array *const *in, int n_out, const ry_type *types, ry_array **out) {
  double k = *(const double *)ud;
  if (n_in != 1 || n_out != 2) return ry_status_make(RY_ERR_INVALID_ARGUMENT, "cc_scale: bad arity");
  ry_status s = ry_array_zeros(types[0].dtype, types[0].shape, &out[0]);
  if (s) return s;
  for (int64_t i = 0; i < ry_array_numel(in[0]); i++)
    ((float *)out[0]->data)[i] = (float)(k * ry_array_get_f64(in[0], i));
  return ry_array_full(types[1].dtype, types[1].shape, (double)ry_array_numel(in[0]), &out[1]);
}

static ry_status cc_wrong_type(void *ud, int n_in, ry_array *const *in, int n_out, const ry_type *types, ry_array **out) {
  (void)ud;
  (void)n_in;
  (void)in;
  (void)types;
  for (int i = 0; i < n_out; i++) {
    ry_status s = ry_array_zeros(RY_F64, RY_SHAPE(3), &out[i]);
    if (s) return s;
  }
  return NULL;
}

static ry_status cc_fail(void *ud, int n_in, ry_array *const *in, int n_out, const ry_type *types, ry_array **out) {
  (void)ud;
  (void)n_in;
  (void)in;
  (void)n_out;
  (void)types;
  /* partial output must not leak */
  ry_status s = ry_array_zeros(RY_F32, RY_SHAPE(3), &out[0]);
  if (s) return s;
  return ry_status_make(RY_ERR_INVALID_ARGUMENT, "the sky is falling");
}

static ry_graph *custom_graph(const char *target, int n_out) {
  ry_graph *g = ry__graph_new("main");
  ry_type vt = TY(RY_F32, RY_SHAPE(3)), it = TY(RY_I32, RY_SCALAR);
  int32_t x = P(g, 0, vt, "x");
  ry_attrs a = {0};
  a.custom.target = ry__strdup(target);
  ry_type rts[2] = {vt, it};
  int32_t n = ry__graph_add_node(g, 0, RY_OP_CUSTOM_CALL, 1, &x, n_out, rts, 0, NULL, &a, (ry_loc){"model.c", 42});
  for (int i = 0; i < n_out; i++) RET(g, 0, 1, RES(g, n, i));
  return g;
}

TEST(interp_custom_call) {
  static double three = 3;
  CHECK_OK(ry_custom_call_register("test.scale", cc_scale, &three));
  CHECK_OK(ry_custom_call_register("test.wrong_type", cc_wrong_type, NULL));
  CHECK_OK(ry_custom_call_register("test.fail", cc_fail, NULL));
  CHECK_ERR(ry_custom_call_register("", cc_fail, NULL), RY_ERR_INVALID_ARGUMENT, "empty");
  CHECK_ERR(ry_custom_call_register("test.null", NULL, NULL), RY_ERR_INVALID_ARGUMENT, "NULL");
  ry_array *x = AV(RY_F32, RY_SHAPE(3), 1, 2, 3), *out[2] = {NULL};
  ry_graph *g = custom_graph("test.scale", 2);
  CHECK_OK(RUN(g, 1, &x, 2, out));
  CHECK_VALS(out[0], 3, 3, 6, 9);
  CHECK_IVALS(out[1], 1, 3);
  release_n(2, out);
  /* re-registering replaces */
  static double ten = 10;
  CHECK_OK(ry_custom_call_register("test.scale", cc_scale, &ten));
  CHECK_OK(RUN(g, 1, &x, 2, out));
  CHECK_VALS(out[0], 3, 10, 20, 30);
  release_n(2, out);
  ry_graph_release(g);

  g = custom_graph("test.nowhere", 1);
  CHECK_ERR(RUN(g, 1, &x, 1, out), RY_ERR_NOT_FOUND, "custom_call", "test.nowhere", "model.c:42");
  CHECK(out[0] == NULL);
  ry_graph_release(g);
  g = custom_graph("test.wrong_type", 2);
  CHECK_ERR(RUN(g, 1, &x, 2, out), RY_ERR_DTYPE, "test.wrong_type", "f64[3]", "f32[3]", "model.c:42");
  CHECK(out[0] == NULL && out[1] == NULL);
  ry_graph_release(g);
  g = custom_graph("test.fail", 1);
  CHECK_ERR(RUN(g, 1, &x, 1, out), RY_ERR_INVALID_ARGUMENT, "the sky is falling", "test.fail");
  ry_graph_release(g);
  ry_array_release(x);
}

/* An error deep inside a loop body reports the op and both locations. */
TEST(interp_error_inside_region) {
  ry_graph *g = ry__graph_new("main");
  ry_type vt = TY(RY_F32, RY_SHAPE(3)), b = TY(RY_BOOL, RY_SCALAR);
  int32_t x = P(g, 0, vt, "x");
  int32_t rc = ry__graph_add_region(g, -1), rb = ry__graph_add_region(g, -1);
  P(g, rc, vt, NULL);
  ry_attrs t = {0};
  t.constant.value = AV(RY_BOOL, RY_SCALAR, 1);
  RET(g, rc, 1, N(g, rc, RY_OP_CONSTANT, b, &t, 0));
  int32_t bx = P(g, rb, vt, NULL);
  ry_attrs cc = {0};
  cc.custom.target = ry__strdup("test.missing_in_loop");
  int32_t cn = ry__graph_add_node(g, rb, RY_OP_CUSTOM_CALL, 1, &bx, 1, &vt, 0, NULL, &cc, (ry_loc){"body.c", 9});
  RET(g, rb, 1, RES(g, cn, 0));
  ry_attrs w = {0};
  int32_t regs[2] = {rc, rb};
  int32_t wn = ry__graph_add_node(g, 0, RY_OP_WHILE, 1, &x, 1, &vt, 2, regs, &w, (ry_loc){"outer.c", 5});
  RET(g, 0, 1, RES(g, wn, 0));
  ry_array *in = AV(RY_F32, RY_SHAPE(3), 1, 2, 3), *out = NULL;
  CHECK_ERR(RUN(g, 1, &in, 1, &out), RY_ERR_NOT_FOUND, "while at outer.c:5", "custom_call at body.c:9",
            "test.missing_in_loop");
  CHECK(out == NULL);
  ry_array_release(in);
  ry_graph_release(g);
}

/* ---- threads ---- */

typedef struct {
  ry_executable *e;
  int n, ok;
} thread_arg;

static void *thread_main(void *p) {
  thread_arg *t = p;
  t->ok = 1;
  for (int k = 0; k < 20; k++) {
    ry_array *in = AV(RY_I32, RY_SCALAR, t->n), *out[2] = {NULL};
    ry_status s = ry_execute(t->e, 1, &in, 2, out);
    if (s || ry_array_get_i64(out[0], 0) != t->n || ry_array_get_f64(out[1], 0) != ldexp(1, t->n)) t->ok = 0;
    ry_status_free(s);
    release_n(2, out);
    ry_array_release(in);
  }
  return NULL;
}

TEST(runtime_execute_from_threads) {
  ry_graph *g = while_graph();
  ry_device *d;
  ry_executable *e = NULL;
  CHECK_OK(ry_device_get("interp", &d));
  CHECK_OK(ry_compile(g, d, &e));
  ry_graph_release(g); /* the executable keeps its own reference */
  pthread_t th[4];
  thread_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (thread_arg){e, 3 + i, 0};
    CHECK(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_MSG(args[i].ok, "thread %d got wrong results", i);
  }
  ry_executable_free(e);
}

/* ---- out of memory: every allocation of a run fails in turn ---- */

TEST(interp_out_of_memory_is_clean) {
  ry_graph *g = while_graph();
  ry_array *in = AV(RY_I32, RY_SCALAR, 3);
  bool done = false;
  for (long k = 0; k < 10000 && !done; k++) {
    ry_array *out[2] = {NULL, NULL};
    rt_oom_arm(k, 0);
    ry_status s = RUN(g, 1, &in, 2, out);
    if (s) {
      CHECK_MSG(ry_status_code(s) == RY_ERR_OUT_OF_MEMORY, "allocation %ld: %s", k, ry_status_message(s));
      CHECK(out[0] == NULL && out[1] == NULL);
    } else {
      done = true;
      CHECK_IVALS(out[0], 1, 3);
      CHECK_VALS(out[1], 1, 8);
    }
    release_n(2, out);
    ry_status_free(s);
    long long live = rt_oom_disarm();
    CHECK_MSG(live == 0, "allocation %ld: %lld bytes leaked", k, live);
  }
  CHECK(done);
  ry_array_release(in);
  ry_graph_release(g);
}
