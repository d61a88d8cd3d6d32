/* The cpu backend's products with quantized weights (src/backend/cpu/qgemm.c):
 * dot_general(x, dequantize(w)) becomes one step that reads the blocks.
 * Exact mode (ry_dequantize) agrees with the interpreter, which runs the
 * reference dequantizers, to f32 summation order; int8 mode
 * (ry_dequantize_act8) agrees with llama.cpp's scheme computed here in
 * double from the same rounded activations, for the VNNI and the portable
 * kernels; the result does not depend on the thread count; gradients reach x. */
#include <math.h>
#include <stdlib.h>

#include "cpu_testlib.h"
#include "backend/cpu/cpu.h"
#include "ryft/gguf.h"
#include "testlib.h"

typedef struct qcase {
  int type, act8;
} qcase;

static int f_qmm(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const qcase *c = ctx;
  ry_value w = c->act8 ? ry_dequantize_act8(b, in[1], c->type) : ry_dequantize(b, in[1], c->type);
  ry_dot_dims d = {RY_NO_AXES, RY_NO_AXES, RY_AXES(1), RY_AXES(1)};
  out[0] = ry_dot_general(b, in[0], w, d, RY_F32);
  return 1;
}

/* deterministic values; weights quantized by ryft's (gguf-py-exact)
 * quantizer, or random bytes with finite scales for the K-quants */
static void make_case(int type, int64_t m, int64_t n, int64_t k, float *x, uint8_t *w, size_t wbytes) {
  for (int64_t i = 0; i < m * k; i++) x[i] = (float)(sin((double)i * 0.61) * 2.0 + (double)(i % 5) * 0.05);
  float *wf = malloc((size_t)(n * k) * sizeof *wf);
  for (int64_t i = 0; i < n * k; i++) wf[i] = (float)(cos((double)i * 0.37 + 0.2) * 0.5);
  ry_status s = ry_ggml_quantize(type, wf, w, n * k);
  if (s) { /* no quantizer (K-quants): bytes with small f16 scales */
    ry_status_free(s);
    for (size_t i = 0; i < wbytes; i++) w[i] = (uint8_t)((i * 2654435761u >> 13) % 60);
  }
  free(wf);
}

/* y[i, j] as llama.cpp computes it: x rounded to Q8 blocks of 32 with f16
 * scales, weights dequantized exactly (Q4_1: its scale times the codes and
 * its minimum times the f16 d * sum(q) of the x block), summed in double.
 * (For the K-quants ryft keeps llama.cpp's per-32 rounding of x rather than
 * its one scale per 256.) */
static double ref_act8(const float *x, const float *wrow, const uint8_t *raw, int type, int64_t k) {
  double acc = 0.0;
  for (int64_t b = 0; b < k / 32; b++) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
    float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
    double dh = ry__f16_to_f32(ry__f32_to_f16(d));
    float sum = 0.0f;
    const uint8_t *blk = raw + b * 20;
    for (int j = 0; j < 32; j++) {
      float q = nearbyintf(x[b * 32 + j] * id);
      sum += q;
      if (type != RY_GGML_Q4_1) {
        acc += (double)q * dh * (double)wrow[b * 32 + j];
      } else {
        int nib = j < 16 ? blk[4 + j] & 15 : blk[4 + j - 16] >> 4;
        acc += (double)q * dh * ry__f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)) * nib;
      }
    }
    if (type == RY_GGML_Q4_1) acc += (double)ry__f16_to_f32((uint16_t)(blk[2] | blk[3] << 8)) * ry__f16_to_f32(ry__f32_to_f16(d * sum));
  }
  return acc;
}

/* the formats with int8 kernels; the others run exactly in both modes, and
 * so do products of more x rows than qgemm.c's INT8_MAX_ROWS (64; 15 for
 * the K-quants): the packed f32 GEMM over dequantized panels is faster there */
static bool int8_kernel(int type) {
  return type == RY_GGML_Q4_0 || type == RY_GGML_Q4_1 || type == RY_GGML_Q8_0 || type == RY_GGML_Q4_K || type == RY_GGML_Q6_K;
}

static ry_array *run_on(const char *device, ry_graph *g, ry_array *x, ry_array *w) {
  ry_device *dev = NULL;
  ry_array *in[2] = {x, w}, *y = NULL;
  CHECK_OK(ry_device_get(device, &dev));
  CHECK_OK(ry_run(g, dev, 2, in, 1, &y));
  return y;
}

static void check_type(int type, int64_t m, int64_t n, int64_t k) {
  size_t rb = 0;
  CHECK_OK(ry_ggml_row_size(type, k, &rb));
  float *x = malloc((size_t)(m * k) * sizeof *x), *wf = malloc((size_t)(n * k) * sizeof *wf);
  uint8_t *w = malloc((size_t)n * rb);
  make_case(type, m, n, k, x, w, (size_t)n * rb);
  CHECK_OK(ry_ggml_dequantize(type, w, wf, n * k));
  ry_array *xa = NULL, *wa = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(m, k), x, &xa));
  CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n, (int64_t)rb), w, &wa));
  ry_type in[2] = {{RY_F32, RY_SHAPE(m, k)}, {RY_U8, RY_SHAPE(n, (int64_t)rb)}};
  for (int act8 = 0; act8 < 2; act8++) {
    qcase c = {type, act8};
    ry_graph *g = NULL;
    CHECK_OK(ry_trace("qmm", f_qmm, &c, 2, in, NULL, &g));
    ry_array *yi = run_on("interp", g, xa, wa);
    ryc_qgemm_force(NULL);
    ry_array *yc = run_on("cpu", g, xa, wa);
    ryc_qgemm_force("portable");
    ry_array *yp = run_on("cpu", g, xa, wa);
    ryc_qgemm_force("avx2"); /* the portable kernels again where the CPU has no AVX2 */
    ry_array *ya = run_on("cpu", g, xa, wa);
    ryc_qgemm_force(NULL);
    ryc_set_num_threads(1);
    ry_array *y1 = run_on("cpu", g, xa, wa);
    ryc_set_num_threads(0);
    /* a run before the module is loaded (node by node) uses the same step */
    ryc_set_background_compiles(2);
    ry_array *ycold = run_on("cpu", g, xa, wa);
    ryc_set_background_compiles(-1);
    CHECK_MSG(ycold && yc && !memcmp(ry_array_data(ycold), ry_array_data(yc), (size_t)(m * n) * 4),
              "%s m=%lld: a cold run differs", ry_ggml_type_name(type), (long long)m);
    ry_array_release(ycold);
    const float *pi = yi ? ry_array_data(yi) : NULL, *pc = yc ? ry_array_data(yc) : NULL, *pp = yp ? ry_array_data(yp) : NULL;
    double worst = 0.0, worst_ref = 0.0, scale = 0.0;
    for (int64_t i = 0; pi && pc && pp && i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double exact = 0.0, mag = 0.0;
        for (int64_t e = 0; e < k; e++) {
          exact += (double)x[i * k + e] * wf[j * k + e];
          mag += fabs((double)x[i * k + e] * wf[j * k + e]);
        }
        double want = act8 && int8_kernel(type) && (m <= 64 && (m < 16 || type == RY_GGML_Q4_0 || type == RY_GGML_Q4_1 || type == RY_GGML_Q8_0)) ? ref_act8(x + i * k, wf + j * k, w + (size_t)j * rb, type, k) : exact;
        scale = fmax(scale, mag);
        worst = fmax(worst, fabs(pi[i * n + j] - exact) / (mag + 1e-30));
        worst_ref = fmax(worst_ref, fmax(fabs(pc[i * n + j] - want), fabs(pp[i * n + j] - want)) / (mag + 1e-30));
      }
    char what[96];
    snprintf(what, sizeof what, "%s m=%lld act8=%d", ry_ggml_type_name(type), (long long)m, act8);
    CHECK_MSG(pi && pc && pp, "%s: no result", what);
    /* f32 sums of k products: relative to sum |x w|, well under 1e-5 */
    CHECK_MSG(worst < 1e-5, "%s: interpreter vs exact: %g", what, worst);
    CHECK_MSG(worst_ref < 1e-5, "%s: cpu vs the reference: %g", what, worst_ref);
    CHECK_MSG(y1 && yc && !memcmp(ry_array_data(y1), ry_array_data(yc), (size_t)(m * n) * 4), "%s: 1 thread differs from 2",
              what);
    /* every kernel level gives the same bits: exact integer sums, the same f32 steps */
    CHECK_MSG(pc && pp && !memcmp(pc, pp, (size_t)(m * n) * 4), "%s: %s differs from portable", what, ryc_qgemm_impl());
    CHECK_MSG(ya && pp && !memcmp(ry_array_data(ya), pp, (size_t)(m * n) * 4), "%s: avx2 differs from portable", what);
    ry_array_release(yi);
    ry_array_release(yc);
    ry_array_release(yp);
    ry_array_release(ya);
    ry_array_release(y1);
    ry_graph_release(g);
  }
  ry_array_release(xa);
  ry_array_release(wa);
  free(x);
  free(wf);
  free(w);
}

TEST(qgemm_matches_the_reference_for_every_kernel) {
  static const int types[] = {RY_GGML_Q4_0, RY_GGML_Q4_1, RY_GGML_Q8_0, RY_GGML_Q5_0};
  for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
    check_type(types[t], 1, 37, 96); /* decode: one row, rows not a multiple of the tile */
    check_type(types[t], 3, 5, 64);
    check_type(types[t], 9, 40, 128); /* the 4x4 kernel and its remainders */
    check_type(types[t], 20, 300, 64); /* a prefill chunk: still the int8 kernels */
    check_type(types[t], 70, 260, 64); /* panels of 256 weight rows into the packed GEMM */
  }
  check_type(RY_GGML_Q4_K, 1, 9, 512); /* super-blocks of 256 */
  check_type(RY_GGML_Q4_K, 6, 7, 256);
  check_type(RY_GGML_Q6_K, 2, 7, 256);
  check_type(RY_GGML_Q6_K, 6, 9, 512);
  check_type(RY_GGML_Q2_K, 2, 5, 256); /* no int8 kernel: exact in both modes */
}

/* codes at the ends of their ranges (a file's Q8_0 may hold -128, which
 * ryft's quantizer never writes; Q4 nibbles 0 and 15) against x codes of
 * +-127: the AVX2 kernels' 16-bit pair sums must not saturate, so every
 * level gives the portable bits, reading the blocks or (borrowed weights)
 * the copy repacked sixteen rows at a time */
TEST(qgemm_levels_agree_on_extreme_codes) {
  static const int types[] = {RY_GGML_Q4_0, RY_GGML_Q4_1, RY_GGML_Q8_0};
  const int64_t m = 5, n = 32, k = 128;
  float x[5 * 128], y[5][5 * 32];
  for (int64_t i = 0; i < m * k; i++) x[i] = (i % 3 == 0 ? -1.0f : 1.0f) * (i % 7 == 0 ? 0.5f : 1.0f);
  for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
    size_t rb = 0, bb = types[t] == RY_GGML_Q8_0 ? 34 : types[t] == RY_GGML_Q4_1 ? 20 : 18;
    CHECK_OK(ry_ggml_row_size(types[t], k, &rb));
    uint8_t *w = malloc((size_t)n * rb);
    for (size_t i = 0; i < (size_t)n * rb; i++) w[i] = (uint8_t)(i * 37 % 5 == 0 ? 0x80 : i % 3 == 0 ? 0x7F : 0xFF);
    for (size_t b = 0; b < (size_t)n * rb / bb; b++) { /* f16 scales (and Q4_1 minimums) of 1/16 */
      w[b * bb] = 0x00, w[b * bb + 1] = 0x2C;
      if (types[t] == RY_GGML_Q4_1) w[b * bb + 2] = 0x00, w[b * bb + 3] = 0x2C;
    }
    ryc_qgemm q = {m, n, k, types[t], true};
    static const char *const levels[] = {"portable", "avx2", NULL, "avx2", NULL};
    ry_array *wb = NULL;
    CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE(n, (int64_t)rb), w, NULL, NULL, &wb));
    for (int l = 0; l < 5; l++) {
      ryc_qgemm_force(levels[l]);
      CHECK_OK(l < 3 ? ryc_qgemm_run(&q, x, w, y[l]) : ryc_qgemm_run_array(&q, x, wb, y[l]));
    }
    ryc_qgemm_force(NULL);
    for (int l = 1; l < 5; l++)
      CHECK_MSG(!memcmp(y[0], y[l], sizeof y[0]), "%s: %s%s differs from portable", ry_ggml_type_name(types[t]),
                levels[l] ? levels[l] : ryc_qgemm_impl(), l < 3 ? "" : " (repacked)");
    ry_array_release(wb);
    free(w);
  }
}

/* weights borrowed from memory that never changes (a GGUF mapping) are
 * read repacked sixteen rows at a time (up to 64 x rows): bit for bit the
 * results of the same bytes in an ordinary array, on 1 and 2 threads, and
 * on the rows past the last whole sixteen */
TEST(qgemm_borrowed_weights_repacked_give_the_same_bits) {
  static const int types[] = {RY_GGML_Q4_0, RY_GGML_Q4_1, RY_GGML_Q8_0};
  static const int64_t shapes[][3] = {{1, 48, 96}, {1, 37, 64}, {3, 64, 160}, {2, 16, 32}, {9, 40, 64}, {16, 64, 96}, {64, 33, 32}};
  for (size_t t = 0; t < sizeof types / sizeof *types; t++)
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
      int64_t m = shapes[c][0], n = shapes[c][1], k = shapes[c][2];
      size_t rb = 0;
      CHECK_OK(ry_ggml_row_size(types[t], k, &rb));
      float *x = malloc((size_t)(m * k) * sizeof *x);
      uint8_t *w = malloc((size_t)n * rb);
      make_case(types[t], m, n, k, x, w, (size_t)n * rb);
      ry_array *xa = NULL, *wa = NULL, *wb = NULL;
      CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(m, k), x, &xa));
      CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n, (int64_t)rb), w, &wa));
      CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE(n, (int64_t)rb), w, NULL, NULL, &wb));
      ry_type in[2] = {{RY_F32, RY_SHAPE(m, k)}, {RY_U8, RY_SHAPE(n, (int64_t)rb)}};
      qcase qc = {types[t], 1};
      ry_graph *g = NULL;
      CHECK_OK(ry_trace("qmm", f_qmm, &qc, 2, in, NULL, &g));
      ry_array *ya = run_on("cpu", g, xa, wa), *yb = run_on("cpu", g, xa, wb);
      ryc_set_num_threads(1);
      ry_array *yb1 = run_on("cpu", g, xa, wb);
      ryc_set_num_threads(0);
      size_t bytes = (size_t)(m * n) * sizeof(float);
      CHECK_MSG(ya && yb && yb1 && !memcmp(ry_array_data(ya), ry_array_data(yb), bytes) &&
                    !memcmp(ry_array_data(yb), ry_array_data(yb1), bytes),
                "%s m=%lld n=%lld k=%lld: borrowed weights give other bits", ry_ggml_type_name(types[t]), (long long)m,
                (long long)n, (long long)k);
      ry_array_release(ya);
      ry_array_release(yb);
      ry_array_release(yb1);
      ry_array_release(xa);
      ry_array_release(wa);
      ry_array_release(wb);
      ry_graph_release(g);
      free(x);
      free(w);
    }
}

/* once a decode-sized product has repacked borrowed weights, the wide
 * products (a prompt's: f32 panels, more than 64 x rows) dequantize their
 * panels from that copy, so a file's blocks are not read again: the same
 * bits as from the plain blocks, rows past the last whole sixteen too. To
 * see that the copy is what is read, the borrowed bytes of the repacked
 * rows are overwritten after the copy is made (a borrowed array's bytes
 * must not change: here that is the point) and the result must not move. */
TEST(qgemm_wide_products_read_the_repacked_copy) {
  static const int types[] = {RY_GGML_Q4_0, RY_GGML_Q4_1, RY_GGML_Q8_0};
  static const int64_t ns[] = {48, 37, 300};
  const int64_t k = 96, m = 100;
  if (strcmp(ryc_qgemm_impl(), "portable") == 0) {
    rt_skip("avx2", "no repacked copy without AVX2 (%s)", ryc_qgemm_impl());
    return;
  }
  for (size_t t = 0; t < sizeof types / sizeof *types; t++)
    for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
      int64_t n = ns[c];
      size_t rb = 0;
      CHECK_OK(ry_ggml_row_size(types[t], k, &rb));
      float *x = malloc((size_t)(m * k) * sizeof *x);
      uint8_t *w = malloc((size_t)n * rb);
      make_case(types[t], m, n, k, x, w, (size_t)n * rb);
      ry_array *x1 = NULL, *xm = NULL, *wa = NULL, *wb = NULL;
      CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(1, k), x, &x1));
      CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(m, k), x, &xm));
      CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n, (int64_t)rb), w, &wa));
      CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE(n, (int64_t)rb), w, NULL, NULL, &wb));
      ry_type in1[2] = {{RY_F32, RY_SHAPE(1, k)}, {RY_U8, RY_SHAPE(n, (int64_t)rb)}};
      ry_type inm[2] = {{RY_F32, RY_SHAPE(m, k)}, {RY_U8, RY_SHAPE(n, (int64_t)rb)}};
      qcase qc = {types[t], 1};
      ry_graph *g1 = NULL, *gm = NULL;
      CHECK_OK(ry_trace("qmm1", f_qmm, &qc, 2, in1, NULL, &g1));
      CHECK_OK(ry_trace("qmmm", f_qmm, &qc, 2, inm, NULL, &gm));
      ry_array_release(run_on("cpu", g1, x1, wb)); /* decode: makes the copy */
      memset(w, 0x5a, (size_t)(n / 16 * 16) * rb); /* the repacked rows' plain bytes, now wrong */
      ry_array *ya = run_on("cpu", gm, xm, wa), *yb = run_on("cpu", gm, xm, wb);
      size_t bytes = (size_t)(m * n) * sizeof(float);
      CHECK_MSG(ya && yb && !memcmp(ry_array_data(ya), ry_array_data(yb), bytes),
                "%s n=%lld: the wide product from the repacked copy gives other bits", ry_ggml_type_name(types[t]),
                (long long)n);
      ry_array_release(ya);
      ry_array_release(yb);
      ry_array_release(x1);
      ry_array_release(xm);
      ry_array_release(wa);
      ry_array_release(wb);
      ry_graph_release(g1);
      ry_graph_release(gm);
      free(x);
      free(w);
    }
}

/* products of one x by several weight matrices run as one job (a layer's
 * query, key and value projections) give each matrix's bits alone, borrowed
 * (repacked) or not, on 1 and 2 threads; matrices that cannot share the job
 * (rows not whole tiles) run one by one */
TEST(qgemm_group_gives_each_products_bits) {
  static const int types[] = {RY_GGML_Q4_1, RY_GGML_Q8_0, RY_GGML_Q4_0, RY_GGML_Q4_K};
  static const int64_t ns[] = {48, 16, 32, 96};
  static const int64_t ms[] = {1, 3, 17};
  const int64_t k = 256;
  for (size_t t = 0; t < sizeof types / sizeof *types; t++)
    for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
      for (int borrow = 0; borrow < 2; borrow++)
        for (int odd = 0; odd < 2; odd++) {
          int64_t m = ms[mi], n[4], total = 0;
          if (types[t] == RY_GGML_Q4_K && m >= 16) continue; /* the K-quants' int8 path stops at 16 rows */
          for (int i = 0; i < 4; i++) total += n[i] = ns[i] + (odd && i == 2 ? 5 : 0); /* not whole tiles: no group */
          size_t rb = 0;
          CHECK_OK(ry_ggml_row_size(types[t], k, &rb));
          /* the matrices are consecutive row ranges of one quantized matrix,
             so each has its own weights */
          float *x = malloc((size_t)(m * k) * sizeof *x);
          uint8_t *wall = malloc((size_t)total * rb);
          make_case(types[t], m, total, k, x, wall, (size_t)total * rb);
          ryc_qgemm q[4];
          const ryc_qgemm *qp[4];
          ry_array *w[4];
          float *y1[4], *y2[4];
          for (int i = 0, r0 = 0; i < 4; r0 += (int)n[i], i++) {
            q[i] = (ryc_qgemm){m, n[i], k, types[t], true};
            qp[i] = &q[i];
            uint8_t *wb = wall + (size_t)r0 * rb;
            if (borrow) CHECK_OK(ry_array_borrow(RY_U8, RY_SHAPE(n[i], (int64_t)rb), wb, NULL, NULL, &w[i]));
            else CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n[i], (int64_t)rb), wb, &w[i]));
            y1[i] = malloc((size_t)(m * n[i]) * sizeof(float));
            y2[i] = malloc((size_t)(m * n[i]) * sizeof(float));
            CHECK_OK(ryc_qgemm_run_array(&q[i], x, w[i], y1[i]));
          }
          CHECK(ryc_qgemm_groupable(&q[0], &q[1]) && ryc_qgemm_groupable(&q[0], &q[2]) == !odd);
          for (int threads = 1; threads <= 2; threads++) {
            ryc_set_num_threads(threads);
            CHECK_OK(ryc_qgemm_run_group(4, qp, x, w, y2));
            for (int i = 0; i < 4; i++)
              CHECK_MSG(!memcmp(y1[i], y2[i], (size_t)(m * n[i]) * sizeof(float)),
                        "%s m=%lld borrowed=%d odd=%d threads=%d: product %d differs in a group", ry_ggml_type_name(types[t]),
                        (long long)m, borrow, odd, threads, i);
          }
          ryc_set_num_threads(0);
          /* the matrices differ, so a group that mixed them up would show */
          CHECK(memcmp(y1[0], y1[1], (size_t)m * (size_t)n[1] * sizeof(float)) != 0);
          for (int i = 0; i < 4; i++) {
            ry_array_release(w[i]);
            free(y1[i]);
            free(y2[i]);
          }
          free(wall);
          free(x);
        }
}

/* the step is in the plan: no f32 weights are materialized */
TEST(qgemm_is_one_step_reading_the_blocks) {
  ry_graph *g = parse("func @main(%x: f32[2,64], %w: u8[3,40]) -> (f32[2,3]) {\n"
                      "  %0: f32[3,64] = dequantize %w {format=3, act8=true}\n"
                      "  %1: f32[2,3] = dot_general %x, %0 {lhs_batch=[], rhs_batch=[], lhs_contract=[1], rhs_contract=[1]}\n"
                      "  return %1\n"
                      "}\n");
  if (!g) return;
  ry_executable *e = NULL;
  char *rep = compile_report(g, "qdump", &e);
  CHECK_MSG(rep && strstr(rep, "qgemm: ") && strstr(rep, "Q4_1 m=2 n=3 k=64 (int8 activations)"), "report: %s",
            rep ? rep : "(none)");
  CHECK(rep && !strstr(rep, "interp: "));
  free(rep);
  ry_executable_free(e);
  ry_graph_release(g);
}

/* grad of sum(x . dequantize(w)^T) on the cpu backend: the column sums of
 * the dequantized weights, as on the interpreter */
static int f_loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ry_value y[1];
  f_qmm(b, in, y, ctx);
  out[0] = ry_sum(b, y[0], RY_AXES(0, 1));
  return 1;
}

TEST(qgemm_gradient_reaches_the_activations) {
  qcase c = {RY_GGML_Q4_1, 0};
  int64_t m = 2, n = 5, k = 64;
  size_t rb = 0;
  CHECK_OK(ry_ggml_row_size(c.type, k, &rb));
  float x[128], wf[320];
  uint8_t w[5 * 40];
  make_case(c.type, m, n, k, x, w, sizeof w);
  CHECK_OK(ry_ggml_dequantize(c.type, w, wf, n * k));
  ry_type in[2] = {{RY_F32, RY_SHAPE(m, k)}, {RY_U8, RY_SHAPE(n, (int64_t)rb)}};
  ry_graph *f = NULL, *df = NULL;
  CHECK_OK(ry_trace("loss", f_loss, &c, 2, in, NULL, &f));
  ry_grad_opts opts = {0};
  int argnums[1] = {0};
  opts.argnums = argnums;
  opts.n_argnums = 1;
  CHECK_OK(ry_grad(f, &opts, &df));
  ry_array *xa = NULL, *wa = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(m, k), x, &xa));
  CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(n, (int64_t)rb), w, &wa));
  ry_array *gx = df ? run_on("cpu", df, xa, wa) : NULL;
  CHECK(gx != NULL);
  for (int64_t i = 0; gx && i < m; i++)
    for (int64_t e = 0; e < k; e++) {
      double want = 0.0;
      for (int64_t j = 0; j < n; j++) want += wf[j * k + e];
      CHECK_NEAR(((const float *)ry_array_data(gx))[i * k + e], want, 1e-5);
    }
  ry_array_release(gx);
  ry_array_release(xa);
  ry_array_release(wa);
  ry_graph_release(f);
  ry_graph_release(df);
}

/* take (an embedding) of a dequantized table gathers the blocks' rows and
 * dequantizes only those: the same values, no f32 table */
static int f_embed(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_take(b, ry_dequantize(b, in[0], RY_GGML_Q8_0), in[1], 0);
  return 1;
}

TEST(qgemm_take_of_dequantized_rows_gathers_blocks) {
  float wf[6 * 64];
  uint8_t w[6 * 68];
  for (int i = 0; i < 6 * 64; i++) wf[i] = (float)sin(i * 0.3);
  CHECK_OK(ry_ggml_quantize(RY_GGML_Q8_0, wf, w, 6 * 64));
  ry_type in[2] = {{RY_U8, RY_SHAPE(6, 68)}, {RY_I32, RY_SHAPE(3)}};
  ry_graph *g = NULL;
  CHECK_OK(ry_trace("embed", f_embed, NULL, 2, in, NULL, &g));
  int gather_at = -1, dq_at = -1;
  for (int k = 0; g && k < g->n_nodes; k++) {
    if (g->nodes[k].op == RY_OP_GATHER) gather_at = k;
    if (g->nodes[k].op == RY_OP_DEQUANTIZE) dq_at = k;
  }
  CHECK_MSG(gather_at >= 0 && dq_at > gather_at, "gather at %d, dequantize at %d", gather_at, dq_at);
  CHECK(g && ry_type_equal(ry_vtype(g, ry_node_results(g, &g->nodes[dq_at])[0]), (ry_type){RY_F32, RY_SHAPE(3, 64)}));
  int32_t ids[3] = {5, 0, 2};
  ry_array *wa = NULL, *ia = NULL;
  CHECK_OK(ry_array_from_host(RY_U8, RY_SHAPE(6, 68), w, &wa));
  CHECK_OK(ry_array_from_host(RY_I32, RY_SHAPE(3), ids, &ia));
  float all[6 * 64];
  CHECK_OK(ry_ggml_dequantize(RY_GGML_Q8_0, w, all, 6 * 64));
  ry_array *y = run_on("cpu", g, wa, ia);
  for (int r = 0; y && r < 3; r++) CHECK(!memcmp((const float *)ry_array_data(y) + r * 64, all + ids[r] * 64, 64 * sizeof(float)));
  ry_array_release(y);
  ry_array_release(wa);
  ry_array_release(ia);
  ry_graph_release(g);
}
