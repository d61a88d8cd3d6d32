/* Flat elementwise loops over large arrays with a costly op run in blocks
 * that first ask for their streamed operands further on
 * (src/backend/cpu/loops.c, gen_prefetch_blocks): the code has the
 * requests for each streamed input once, none for a broadcast scalar, and
 * none at all for a small array or a cheap body; the
 * values match the interpreter and are bitwise the same with 1 and 2
 * threads and when the output takes over a donated input. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/pool.h"
#include "ryft/nn.h"
#include "cpu_testlib.h"

/* gelu(x * a + b) + z * x: x read twice (one stream), z a second stream,
   a and b broadcast scalars */
static int f_chain(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_add(b, ry_mul(b, in[0], in[2]), in[3]);
  ry_value e = ry_erf(b, ry_mul(b, h, ry_const_like(b, h, 0.70710678)));
  ry_value gelu = ry_mul(b, ry_mul(b, h, ry_add(b, e, ry_const_like(b, e, 1.0))), ry_const_like(b, h, 0.5));
  out[0] = ry_add(b, gelu, ry_mul(b, in[1], in[0]));
  return 1;
}

static ry_graph *trace_chain(int64_t n) {
  ry_type t[4] = {{RY_F32, RY_SHAPE(n)}, {RY_F32, RY_SHAPE(n)}, {RY_F32, RY_SCALAR}, {RY_F32, RY_SCALAR}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("chain", f_chain, NULL, 4, t, NULL, &g));
  return g;
}

static double w_x(int64_t i) { return sin((double)i * 0.013) * 3.0; }
static double w_z(int64_t i) { return cos((double)i * 0.007) * 0.5; }

static void chain_inputs(int64_t n, ry_array **in) {
  in[0] = filled(RY_SHAPE(n), w_x);
  in[1] = filled(RY_SHAPE(n), w_z);
  float a = 1.25f, b = -0.125f;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &a, &in[2]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &b, &in[3]));
}

/* the kernel source of g's module, compiled into *e */
static char *kernels_of(ry_graph *g, ry_executable **e) {
  char dir[256];
  temp_dir(dir, sizeof dir, "prefetch");
  setenv("RYFT_DUMP", dir, 1);
  *e = NULL;
  CHECK_OK(ry_compile(g, cpu(), e));
  unsetenv("RYFT_DUMP");
  return rt_read_dump(dir, "05-kernels.c");
}

/* got's f32 elements within rel * |ref| + abs of the interpreter's ref */
static void check_close(const ry_array *got, const ry_array *ref, float rel, float abs) {
  if (!got || !ref) return;
  const float *r = ry_array_data(ref), *x = ry_array_data(got);
  for (int64_t i = 0; i < ry_array_numel(ref); i++)
    if (fabsf(r[i] - x[i]) > rel * fabsf(r[i]) + abs) {
      CHECK_MSG(false, "element %ld: %.9g, interpreter %.9g", (long)i, x[i], r[i]);
      return;
    }
}

/* e's output run on 1 thread, checked bitwise against a run on 2 (NULL
   without e) */
static ry_array *run_checked_across_threads(ry_executable *e, int n_in, ry_array **in) {
  ry_array *one = NULL, *two = NULL;
  ryc_set_parallel_threshold(1);
  ryc_set_num_threads(1);
  if (e) CHECK_OK(ry_execute(e, n_in, in, 1, &one));
  ryc_set_num_threads(2);
  if (e) CHECK_OK(ry_execute(e, n_in, in, 1, &two));
  CHECK_MSG(same_bits(one, two), "1 and 2 threads differ");
  ryc_set_num_threads(0);
  ryc_set_parallel_threshold(0);
  ry_array_release(two);
  return one;
}

TEST(cpu_large_flat_loops_prefetch_their_streams) {
  const int64_t n = 300007; /* past the threshold (2^18), no multiple of the block or the lanes */
  ry_graph *g = trace_chain(n);
  if (!g) return;
  ry_executable *e = NULL;
  ryc_set_background_compiles(0);
  char *src = kernels_of(g, &e);
  /* ryk_0 and its in-place variants each ask for x and z (slots 1 and 4,
     in order of first use), never for the scalars a and b (2 and 3) */
  const char *body = src ? strstr(src, "ryc:end of prelude") : NULL;
  int kernels = count_of(body, "void ryk_0");
  CHECK_MSG(body && kernels >= 1 && count_of(body, "RY_PREFETCH(p1 + (0 + jb_)") == kernels &&
                count_of(body, "RY_PREFETCH(p4 + (0 + jb_)") == kernels && count_of(body, "RY_PREFETCH(") == 2 * kernels,
            "prefetches:\n%s", body ? body : "(no kernels dumped)");
  free(src);

  ry_array *in[4], *ref = NULL, *one = NULL, *don = NULL;
  chain_inputs(n, in);
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  CHECK_OK(ry_run(g, interp, 4, in, 1, &ref));
  one = run_checked_across_threads(e, 4, in);
  /* x donated: the output may be written over it, the same bits */
  ry_array *d_in[4];
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(n), ry_array_data(in[0]), &d_in[0]));
  for (int i = 1; i < 4; i++) {
    d_in[i] = in[i];
    ry_array_retain(in[i]);
  }
  bool donate[4] = {true, false, false, false};
  if (e) CHECK_OK(ry_execute_donated(e, 4, d_in, donate, 1, &don));
  for (int i = 0; i < 4; i++) ry_array_release(d_in[i]);
  CHECK_MSG(same_bits(one, don), "the in-place run differs");
  check_close(one, ref, 1e-5f, 1e-6f);
  ry_array_release(ref);
  ry_array_release(one);
  ry_array_release(don);
  for (int i = 0; i < 4; i++) ry_array_release(in[i]);
  ry_executable_free(e);
  ry_graph_release(g);
}

/* g compiles to a kernel ryk_0 without prefetch blocks; releases g */
static void check_no_prefetch(ry_graph *g) {
  if (!g) return;
  ry_executable *e = NULL;
  char *src = kernels_of(g, &e);
  const char *body = src ? strstr(src, "ryc:end of prelude") : NULL;
  CHECK_MSG(body && strstr(body, "void ryk_0(") && !strstr(body, "RY_PREFETCH("), "kernels:\n%s", body ? body : "(none)");
  free(src);
  ry_executable_free(e);
  ry_graph_release(g);
}

TEST(cpu_small_flat_loops_do_not_prefetch) { check_no_prefetch(trace_chain(1000)); }

/* x * a + z: no costly op, so no blocks however large */
static int f_cheap(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_add(b, ry_mul(b, in[0], in[2]), in[1]);
  return 1;
}

TEST(cpu_cheap_flat_loops_do_not_prefetch) {
  const int64_t n = 300007;
  ry_type t[3] = {{RY_F32, RY_SHAPE(n)}, {RY_F32, RY_SHAPE(n)}, {RY_F32, RY_SCALAR}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("cheap", f_cheap, NULL, 3, t, NULL, &g));
  check_no_prefetch(g);
}

/* Row kernels ask for the next row's streams in their pass with a costly op
 * (src/backend/cpu/rowkern.c, row_note_streams): softmax's exp pass asks
 * for x's next row for reading and the output's for writing, a line of each
 * per RY_LANES elements, past the last row the first; the values match the
 * interpreter and are bitwise the same with 1 and 2 threads. A layer norm
 * (no costly op) asks for nothing. */
static int f_softmax(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_softmax(b, in[0], -1);
  return 1;
}

static int f_layer_norm(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_nn_layer_norm(b, in[0], in[1], in[2], 1e-5);
  return 1;
}

TEST(cpu_row_kernels_ask_for_the_next_row) {
  const int64_t rows = 67, cols = 300; /* no multiple of the lanes */
  ry_type t = {RY_F32, RY_SHAPE(rows, cols)};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("softmax", f_softmax, NULL, 1, &t, NULL, &g));
  if (!g) return;
  ry_executable *e = NULL;
  ryc_set_background_compiles(0);
  char *src = kernels_of(g, &e);
  const char *body = src ? strstr(src, "ryc:end of prelude") : NULL;
  CHECK_MSG(body && count_of(body, "const int64_t nr0 = (i + 1) / 1 % 67;") == 1 &&
                count_of(body, "RY_PREFETCH(p1 + (0 + nr0 * 300 + jv), 0, RY_LANES * 4, 0);") == 1 &&
                count_of(body, "RY_PREFETCH(p0 + (0 + nr0 * 300 + jv), 0, RY_LANES * 4, 1);") == 1 &&
                count_of(body, "RY_PREFETCH(") == 2,
            "kernels:\n%s", body ? body : "(no kernels dumped)");
  free(src);
  ry_array *x = filled(RY_SHAPE(rows, cols), w_x), *ref = NULL;
  ry_device *interp = NULL;
  CHECK_OK(ry_device_get("interp", &interp));
  CHECK_OK(ry_run(g, interp, 1, &x, 1, &ref));
  ry_array *one = run_checked_across_threads(e, 1, &x);
  check_close(one, ref, 1e-6f, 1e-9f);
  ry_array_release(x);
  ry_array_release(ref);
  ry_array_release(one);
  ry_executable_free(e);
  ry_graph_release(g);
}

TEST(cpu_row_kernels_without_a_costly_op_do_not_prefetch) {
  ry_type t[3] = {{RY_F32, RY_SHAPE(67, 300)}, {RY_F32, RY_SHAPE(300)}, {RY_F32, RY_SHAPE(300)}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("layer_norm", f_layer_norm, NULL, 3, t, NULL, &g));
  check_no_prefetch(g);
}
