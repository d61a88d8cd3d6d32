/* ry_dequantize (src/nn/dequant.c): the traced dequantization of every ggml
 * block format gives, on every device (interpreter, cpu JIT, XLA through
 * PJRT), the bits gguf-py's gguf.quants.dequantize gives
 * (tests/data/gguf/expect_dequant.gguf); gradients of a matmul with
 * dequantized weights reach the activations; bad blocks are refused. */
#include <stdlib.h>

#include "testlib.h"
#ifdef RYFT_HAVE_PJRT
#include "pjrt_testlib.h"
#endif

static const char *fixture(const char *name) {
  static char buf[2][1024];
  static int k;
  k ^= 1;
  snprintf(buf[k], sizeof buf[k], "%s/tests/data/gguf/%s", rt_source_dir(), name);
  return buf[k];
}

static int g_type;
static int f_dequant(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_dequantize(b, in[0], g_type);
  return 1;
}

static const int k_types[] = {RY_GGML_F32, RY_GGML_F16, RY_GGML_BF16, RY_GGML_Q4_0, RY_GGML_Q4_1,
                              RY_GGML_Q5_0, RY_GGML_Q5_1, RY_GGML_Q8_0, RY_GGML_Q2_K, RY_GGML_Q3_K,
                              RY_GGML_Q4_K, RY_GGML_Q5_K, RY_GGML_Q6_K};

TEST(dequant_traced_bit_identical_on_every_device) {
#ifdef RYFT_HAVE_PJRT
  pjrt_test_plugin();
#endif
  ry_gguf *g = NULL, *e = NULL;
  CHECK_OK(ry_gguf_open(fixture("all_types.gguf"), &g));
  CHECK_OK(ry_gguf_open(fixture("expect_dequant.gguf"), &e));
  int pjrt_ran = 0;
  for (size_t i = 0; g && e && i < sizeof k_types / sizeof *k_types; i++) {
    char name[32];
    snprintf(name, sizeof name, "t.%s", ry_ggml_type_name(k_types[i]));
    const ry_gguf_tensor *t = ry_gguf_find_tensor(g, name), *x = ry_gguf_find_tensor(e, name);
    CHECK_MSG(t && x, "%s missing", name);
    if (!t || !x) continue;
    int64_t rows = t->dims[1], row_bytes = (int64_t)t->size / rows;
    g_type = k_types[i];
    ry_type in = {RY_U8, RY_SHAPE(rows, row_bytes)};
    ry_graph *f = NULL;
    CHECK_OK(ry_trace("dequant", f_dequant, NULL, 1, &in, NULL, &f));
    if (!f) continue;
    CHECK(ry_shape_equal(ry_graph_output_type(f, 0).shape, RY_SHAPE(rows, t->dims[0])));
    ry_array *a = NULL;
    CHECK_OK(ry_array_from_host(RY_U8, in.shape, t->data, &a));
    for (int d = 0; a && d < ry_device_count(); d++) {
      ry_device *dev = ry_device_at(d);
      ry_array *y = NULL;
      ry_status s = ry_run(f, dev, 1, &a, 1, &y);
      if (s) {
        rt_fail(__FILE__, __LINE__, "%s on %s: %s", name, ry_device_name(dev), ry_status_message(s));
        ry_status_free(s);
        continue;
      }
      const float *got = ry_array_data(y), *want = x->data;
      int64_t n = ry_array_numel(y), bad = -1;
      for (int64_t k = 0; k < n && bad < 0; k++)
        if (memcmp(&got[k], &want[k], 4)) bad = k;
      CHECK_MSG(bad < 0, "%s on %s: element %lld is %.9g, gguf-py says %.9g", name, ry_device_name(dev),
                (long long)bad, bad < 0 ? 0.0 : got[bad], bad < 0 ? 0.0 : want[bad]);
      if (!strcmp(ry_device_name(dev), "pjrt")) pjrt_ran = 1;
      ry_array_release(y);
    }
    ry_array_release(a);
    ry_graph_release(f);
  }
#ifdef RYFT_HAVE_PJRT
  if (!pjrt_ran) rt_skip("pjrt", "no pjrt device: checked on the interpreter and cpu only");
#else
  (void)pjrt_ran;
#endif
  ry_gguf_close(g);
  ry_gguf_close(e);
}

/* vmap over rows of a Q4_K tensor: the same values as the whole tensor */
TEST(dequant_vmap_over_rows) {
  ry_gguf *g = NULL, *e = NULL;
  CHECK_OK(ry_gguf_open(fixture("all_types.gguf"), &g));
  CHECK_OK(ry_gguf_open(fixture("expect_dequant.gguf"), &e));
  const ry_gguf_tensor *t = g ? ry_gguf_find_tensor(g, "t.Q4_K") : NULL, *x = e ? ry_gguf_find_tensor(e, "t.Q4_K") : NULL;
  CHECK(t && x);
  if (t && x) {
    g_type = RY_GGML_Q4_K;
    ry_type row = {RY_U8, RY_SHAPE(144)};
    ry_graph *f = NULL, *vf = NULL;
    CHECK_OK(ry_trace("row", f_dequant, NULL, 1, &row, NULL, &f));
    int in_axes[1] = {0}, out_axes[1] = {0};
    if (f) CHECK_OK(ry_vmap(f, 3, in_axes, out_axes, &vf));
    ry_array *a = NULL, *y = NULL;
    CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(3, 144), t->data, &a));
    ry_device *dev = NULL;
    CHECK_OK(ry_device_get("interp", &dev));
    if (vf && a) CHECK_OK(ry_run(vf, dev, 1, &a, 1, &y));
    if (y) {
      CHECK(ry_shape_equal(ry_array_shape(y), RY_SHAPE(3, 256)));
      CHECK(!memcmp(ry_array_data(y), x->data, 3 * 256 * 4));
    }
    ry_array_release(a);
    ry_array_release(y);
    ry_graph_release(f);
    ry_graph_release(vf);
  }
  ry_gguf_close(g);
  ry_gguf_close(e);
}

/* loss = sum(x @ dequantize(w)^T): the gradient reaches x (it is the column
 * sums of the dequantized weights), and the u8 weights have none. */
static int f_loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value w = ry_dequantize(b, in[1], RY_GGML_Q4_1); /* [rows, 256] */
  ry_value y = ry_matmul(b, in[0], ry_transpose(b, w, RY_AXES(1, 0)));
  out[0] = ry_sum(b, y, RY_AXES(0, 1));
  return 1;
}

TEST(dequant_gradient_reaches_the_activations) {
  ry_gguf *g = NULL, *e = NULL;
  CHECK_OK(ry_gguf_open(fixture("all_types.gguf"), &g));
  CHECK_OK(ry_gguf_open(fixture("expect_dequant.gguf"), &e));
  const ry_gguf_tensor *t = g ? ry_gguf_find_tensor(g, "t.Q4_1") : NULL, *x = e ? ry_gguf_find_tensor(e, "t.Q4_1") : NULL;
  CHECK(t && x);
  if (t && x) {
    ry_type in[2] = {{RY_F32, RY_SHAPE(2, 256)}, {RY_U8, RY_SHAPE(3, 160)}};
    ry_graph *f = NULL, *df = NULL;
    CHECK_OK(ry_trace("loss", f_loss, NULL, 2, in, NULL, &f));
    ry_grad_opts opts = {0};
    int argnums[1] = {0};
    opts.argnums = argnums;
    opts.n_argnums = 1;
    if (f) CHECK_OK(ry_grad(f, &opts, &df));
    ry_array *xs = NULL, *ws = NULL, *gx = NULL;
    CHECK_OK(ry_array_full(RY_F32, RY_SHAPE(2, 256), 0.5, &xs));
    CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(3, 160), t->data, &ws));
    ry_device *dev = NULL;
    CHECK_OK(ry_device_get("interp", &dev));
    ry_array *args[2] = {xs, ws};
    if (df && dev) CHECK_OK(ry_run(df, dev, 2, args, 1, &gx));
    if (gx) {
      const float *w = x->data, *d = ry_array_data(gx);
      for (int k = 0; k < 256; k++) {
        double col = (double)w[k] + w[256 + k] + w[512 + k];
        CHECK_NEAR(d[k], col, 1e-5 * (1 + fabs(col)));
        CHECK(d[256 + k] == d[k]);
      }
    }
    /* asking for the gradient of the u8 weights is refused */
    int argw[1] = {1};
    ry_grad_opts ow = {0};
    ow.argnums = argw;
    ow.n_argnums = 1;
    ry_graph *dw = NULL;
    if (f) CHECK_ERR(ry_grad(f, &ow, &dw), RY_ERR_DTYPE, "u8[3,160]", "only float inputs");
    ry_graph_release(dw);
    ry_array_release(xs);
    ry_array_release(ws);
    ry_array_release(gx);
    ry_graph_release(f);
    ry_graph_release(df);
  }
  ry_gguf_close(g);
  ry_gguf_close(e);
}

static int f_bad(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ry_dequantize(b, in[0], *(const int *)ctx);
  return 1;
}

TEST(dequant_bad_blocks_are_refused) {
  ry_graph *f = NULL;
  int q40 = RY_GGML_Q4_0, iq = RY_GGML_IQ2_XXS, unknown = 5;
  ry_type odd = {RY_U8, RY_SHAPE(2, 19)}, f32 = {RY_F32, RY_SHAPE(2, 18)}, ok = {RY_U8, RY_SHAPE(66)};
  CHECK_ERR(ry_trace("bad", f_bad, &q40, 1, &odd, NULL, &f), RY_ERR_SHAPE, "dequantize", "Q4_0", "u8[2,19]");
  CHECK_ERR(ry_trace("bad", f_bad, &q40, 1, &f32, NULL, &f), RY_ERR_SHAPE, "dequantize", "f32[2,18]");
  CHECK_ERR(ry_trace("bad", f_bad, &iq, 1, &ok, NULL, &f), RY_ERR_UNSUPPORTED, "IQ2_XXS");
  CHECK_ERR(ry_trace("bad", f_bad, &unknown, 1, &ok, NULL, &f), RY_ERR_UNSUPPORTED, "unknown ggml type 5");
  CHECK(f == NULL);
}
