/* Device-resident arrays on the PJRT backend (XLA CPU plugin): put/get round
 * trips for every dtype and for scalars and empty arrays; a momentum-SGD
 * train loop whose state stays on the device and is donated every step,
 * bit-identical to the loop that copies everything through the host (and
 * within 1e-5 of the interpreter), through ry_pjrt_execute_donated, the
 * "pjrt" device's ry_execute_donated and ry_jit; donated buffers written in
 * place and shared ones never written; host and device inputs mixed; device
 * arrays on host backends; the error paths (another client, another device,
 * wrong type, a consumed input); concurrent first reads; 200 cycles for the
 * sanitizer build's leak check. */
#include <pthread.h>

#include "backend/pjrt/pjrt.h"
#include "core/internal.h"
#include "pjrt_testlib.h"
#include "testlib.h"

static ry_pjrt_client *client(int n_devices) {
  ry_pjrt_options o = {.plugin_path = pjrt_test_plugin(), .cpu_device_count = n_devices};
  ry_pjrt_client *c = NULL;
  CHECK_OK(ry_pjrt_client_create(&o, &c));
  return c;
}

static bool same_bytes(const ry_array *a, const ry_array *b) {
  if (!a || !b || !ry_type_equal(ry_array_type(a), ry_array_type(b))) return false;
  const void *pa = ry_array_data(a), *pb = ry_array_data(b);
  return pa && pb && memcmp(pa, pb, ry_array_nbytes(a)) == 0;
}

/* Does a's device buffer itself (not its host copy, made once) hold what
 * the host copy holds? */
static bool device_matches_copy(const ry_array *a) {
  unsigned char buf[4096];
  if (!a || !a->dev || !a->data || a->nbytes > sizeof buf) return false;
  ry_status s = a->dev->ops->to_host(a->dev, buf, a->nbytes);
  bool ok = !s && memcmp(buf, a->data, a->nbytes) == 0;
  ry_status_free(s);
  return ok;
}

/* ---- put / get ---- */

TEST(pjrt_device_put_round_trip) {
  pjrt_test_plugin();
  ry_device *xla = NULL, *cpu = NULL;
  CHECK_OK(ry_device_get("pjrt", &xla));
  CHECK_OK(ry_device_get("cpu", &cpu));
  ry_pjrt_client *c = client(2);
  if (!xla || !cpu || !c) {
    ry_pjrt_client_free(c);
    return;
  }
  ry_shape shapes[] = {RY_SCALAR, RY_SHAPE(0), RY_SHAPE(5), RY_SHAPE(2, 3), RY_SHAPE(3, 0, 2), RY_SHAPE(2, 1, 3, 2)};
  int cases = 0;
  for (int t = 0; t < RY_DTYPE_COUNT; t++)
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
      ry_dtype dt = (ry_dtype)t;
      int64_t n = ry_shape_numel(shapes[k]);
      unsigned char buf[512] = {0};
      for (int64_t i = 0; i < n; i++) ry__store_f64(dt, buf, i, (double)((i * 7) % 11) - 5.25);
      ry_array *h = NULL, *d = NULL, *d1 = NULL, *d2 = NULL, *back = NULL;
      CHECK_OK(ry_array_from_host(dt, shapes[k], buf, &h));
      CHECK_OK(ry_device_put(xla, h, &d));
      CHECK_OK(ry_pjrt_put(c, 1, h, &d1));
      if (!h || !d || !d1) goto next;
      CHECK(ry_array_on_device(d) && ry_array_on_device(d1) && !ry_array_on_device(h));
      CHECK(ry_type_equal(ry_array_type(d), ry_array_type(h)));
      CHECK_EQ_INT(ry_array_nbytes(d), ry_array_nbytes(h));
      /* the explicit fetch, then the lazy one */
      unsigned char got[512];
      memset(got, 0xAB, sizeof got);
      CHECK_OK(ry_array_to_host(d1, got, sizeof got));
      CHECK(memcmp(got, buf, ry_array_nbytes(h)) == 0);
      CHECK_MSG(same_bytes(d, h), "%s %s", ry_dtype_name(dt), ry_shape_str(shapes[k], (char[64]){0}, 64));
      CHECK(ry_array_data(d) != NULL); /* even with no elements */
      /* device -> another device of the client, and already-there */
      CHECK_OK(ry_pjrt_put(c, 0, d1, &d2));
      CHECK(same_bytes(d2, h));
      ry_array *again = NULL;
      CHECK_OK(ry_pjrt_put(c, 0, d2, &again));
      CHECK(again == d2);
      ry_array_release(again);
      /* ry_device_put on a host device gives a host array with the bytes */
      CHECK_OK(ry_device_put(cpu, d1, &back));
      CHECK(back && !ry_array_on_device(back) && same_bytes(back, h));
      /* printing reads the same elements */
      char p1[256], p2[256];
      ry_array_format(h, p1, sizeof p1);
      ry_array_format(d2, p2, sizeof p2);
      CHECK_STR(p2, p1);
      if (n > 0) CHECK_NEAR(ry_array_get_f64(d2, n - 1), ry_array_get_f64(h, n - 1), 0);
      cases++;
    next:
      ry_array_release(h);
      ry_array_release(d);
      ry_array_release(d1);
      ry_array_release(d2);
      ry_array_release(back);
    }
  CHECK_EQ_INT(cases, RY_DTYPE_COUNT * 6);
  /* ry_device_put of a host array on a host device is the array itself */
  ry_array *h = NULL, *same = NULL;
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(2), &h));
  CHECK_OK(ry_device_put(cpu, h, &same));
  CHECK(same == h);
  ry_array_release(same);
  ry_array_release(h);
  ry_pjrt_client_free(c);
}

/* ---- a train loop with the state on the device ---- */

enum { B = 16, NI = 5, NH = 7, NO = 3, N_STATE = 6, N_IN = N_STATE + 2, N_OUT = 1 + N_STATE, STEPS = 6 };

/* (w1 [NI,NH], b1 [NH], w2 [NH,NO], x [B,NI], y [B,NO]) -> mean((tanh(x w1 + b1) w2 - y)^2) */
static int loss_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  ry_value h = ry_tanh(b, ry_add(b, ry_matmul(b, in[3], in[0]), in[1]));
  ry_value d = ry_sub(b, ry_matmul(b, h, in[2]), in[4]);
  out[0] = ry_mean(b, ry_mul(b, d, d), RY_AXES(0, 1), 0);
  return 1;
}

/* (w1, b1, w2, m1, mb1, m2, x, y) -> (loss, w1', b1', w2', m1', mb1', m2'):
 * momentum SGD, m' = 0.9 m + g, w' = w - 0.1 m'. */
static int step_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  ry_graph *vg = ctx;
  ry_value args[5] = {in[0], in[1], in[2], in[6], in[7]}, r[4];
  if (ry_call(b, vg, 5, args, r) != 4) return 0;
  out[0] = r[0];
  for (int i = 0; i < 3; i++) {
    ry_value m = ry_add(b, ry_mul(b, ry_scalar(b, RY_F32, 0.9), in[3 + i]), r[1 + i]);
    out[4 + i] = m;
    out[1 + i] = ry_sub(b, in[i], ry_mul(b, ry_scalar(b, RY_F32, 0.1), m));
  }
  return N_OUT;
}

static const ry_type k_types[N_IN] = {
    {RY_F32, {2, {NI, NH}}}, {RY_F32, {1, {NH}}},    {RY_F32, {2, {NH, NO}}}, {RY_F32, {2, {NI, NH}}},
    {RY_F32, {1, {NH}}},     {RY_F32, {2, {NH, NO}}}, {RY_F32, {2, {B, NI}}},  {RY_F32, {2, {B, NO}}}};
static const bool k_donate[N_IN] = {true, true, true, true, true, true, false, false};

static int trace_step(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) { return step_fn(b, in, out, ctx); }

static ry_graph *make_step(ry_graph **vg_out) {
  ry_graph *loss = NULL, *vg = NULL, *step = NULL;
  static const int argnums[3] = {0, 1, 2};
  ry_grad_opts go = {3, argnums, 0};
  ry_type lt[5] = {k_types[0], k_types[1], k_types[2], k_types[6], k_types[7]};
  CHECK_OK(ry_trace("loss", loss_fn, NULL, 5, lt, NULL, &loss));
  if (loss) CHECK_OK(ry_value_and_grad(loss, &go, &vg));
  if (vg) CHECK_OK(ry_trace("step", trace_step, vg, N_IN, k_types, NULL, &step));
  ry_graph_release(loss);
  *vg_out = vg;
  return step;
}

/* Deterministic initial state (momenta zero) and batch, host arrays. */
static void init_state(ry_array *in[N_IN]) {
  for (int i = 0; i < N_IN; i++) {
    ry_type t = k_types[i];
    float buf[B * NI > NI * NH ? B * NI : NI * NH];
    int64_t n = ry_shape_numel(t.shape);
    for (int64_t k = 0; k < n; k++)
      buf[k] = i >= 3 && i < 6 ? 0.0f : 0.4f * sinf(1.3f * (float)(k * (i + 1)) + 0.7f * (float)i);
    CHECK_OK(ry_array_from_host(t.dtype, t.shape, buf, &in[i]));
  }
}

typedef ry_status (*step_call)(void *exe, ry_array **in, ry_array **out);

/* STEPS steps: the state in[0..5] is replaced by the step's outputs. */
static void loop(step_call call, void *exe, ry_array *in[N_IN], double losses[STEPS]) {
  for (int k = 0; k < STEPS; k++) {
    ry_array *out[N_OUT] = {0};
    CHECK_OK(call(exe, in, out));
    if (!out[0]) return;
    losses[k] = ry_array_get_f64(out[0], 0);
    ry_array_release(out[0]);
    for (int i = 0; i < N_STATE; i++) {
      ry_array_release(in[i]); /* NULL when donated */
      in[i] = out[1 + i];
    }
  }
}

static ry_status call_copying(void *e, ry_array **in, ry_array **out) { return ry_pjrt_execute(e, N_IN, in, N_OUT, out); }
static ry_status call_resident(void *e, ry_array **in, ry_array **out) {
  return ry_pjrt_execute_donated(e, N_IN, in, k_donate, N_OUT, out);
}
static ry_status call_device(void *e, ry_array **in, ry_array **out) {
  return ry_execute_donated(e, N_IN, in, k_donate, N_OUT, out);
}
static ry_status call_jit(void *j, ry_array **in, ry_array **out) {
  return ry_jit_call_donated(j, N_IN, in, k_donate, N_OUT, out);
}

static void release_all(ry_array **a, int n) {
  for (int i = 0; i < n; i++) {
    ry_array_release(a[i]);
    a[i] = NULL;
  }
}

/* every input on the device, through `put` */
static void put_all(ry_device *d, ry_pjrt_client *c, ry_array *in[N_IN]) {
  for (int i = 0; i < N_IN; i++) {
    ry_array *x = NULL;
    CHECK_OK(d ? ry_device_put(d, in[i], &x) : ry_pjrt_put(c, 0, in[i], &x));
    ry_array_release(in[i]);
    in[i] = x;
  }
}

TEST(pjrt_device_resident_train_loop) {
  pjrt_test_plugin();
  ry_graph *vg = NULL, *g = make_step(&vg);
  ry_pjrt_client *c = client(0);
  ry_device *xla = NULL, *interp = NULL;
  CHECK_OK(ry_device_get("pjrt", &xla));
  CHECK_OK(ry_device_get("interp", &interp));
  ry_pjrt_executable *copying = NULL, *resident = NULL;
  if (g && c) {
    CHECK_OK(ry_pjrt_compile(c, g, 1, &copying));
    CHECK_OK(ry_pjrt_compile(c, g, 1, &resident));
  }
  if (!copying || !resident || !xla || !interp) goto done;
  ry_pjrt_executable_set_host_outputs(copying, true);

  /* the reference: host arrays in, host arrays out, every step */
  ry_array *ref[N_IN] = {0};
  double ref_loss[STEPS] = {0};
  init_state(ref);
  loop(call_copying, copying, ref, ref_loss);
  for (int i = 0; i < N_STATE; i++) CHECK(ref[i] && !ry_array_on_device(ref[i]));
  CHECK(ref_loss[STEPS - 1] < ref_loss[0]); /* it learns */

  /* the interpreter agrees */
  ry_executable *ie = NULL;
  ry_array *st[N_IN] = {0};
  double l[STEPS] = {0};
  CHECK_OK(ry_compile(g, interp, &ie));
  init_state(st);
  if (ie) loop(call_device, ie, st, l);
  for (int i = 0; i < N_STATE; i++)
    for (int64_t k = 0; st[i] && k < ry_array_numel(st[i]); k++)
      CHECK_NEAR(ry_array_get_f64(st[i], k), ry_array_get_f64(ref[i], k), 1e-5);
  release_all(st, N_IN);
  ry_executable_free(ie);

  /* device-resident, donated: bit for bit the copying loop's result */
  init_state(st);
  put_all(NULL, c, st);
  loop(call_resident, resident, st, l);
  for (int k = 0; k < STEPS; k++) CHECK(l[k] == ref_loss[k]);
  for (int i = 0; i < N_STATE; i++) {
    CHECK(st[i] && ry_array_on_device(st[i]));
    CHECK_MSG(same_bytes(st[i], ref[i]), "state %d differs from the copying loop", i);
  }
  CHECK(st[6] && st[7]); /* not donated: still the caller's */

  /* a donated buffer is written in place; a shared one never is */
  uintptr_t before = ryp_array_device_address(st[0]);
  ry_array *out[N_OUT] = {0};
  ry_array *kept = ry_array_retain(st[3]); /* m1: donated but also held here */
  ry_array *kept_host = NULL;
  CHECK_OK(ry_device_put(interp, kept, &kept_host)); /* its bytes now, on the host */
  uintptr_t kept_addr = ryp_array_device_address(kept);
  CHECK_OK(ry_pjrt_execute_donated(resident, N_IN, st, k_donate, N_OUT, out));
  for (int i = 0; i < N_STATE; i++) CHECK(st[i] == NULL); /* consumed */
  CHECK(before != 0 && kept_addr != 0); /* the CPU plugin tells buffer addresses */
  if (out[1]) CHECK_MSG(ryp_array_device_address(out[1]) == before, "w1 was not updated in place");
  if (out[4]) CHECK(ryp_array_device_address(out[4]) != kept_addr);
  CHECK(same_bytes(kept, kept_host));
  CHECK(device_matches_copy(kept)); /* XLA copied instead of writing over it */
  /* a consumed input gives a clear error */
  CHECK_ERR(ry_pjrt_execute(resident, N_IN, st, N_OUT, (ry_array *[N_OUT]){0}), RY_ERR_INVALID_ARGUMENT, "input 0 is NULL",
            "donated");
  ry_array_release(kept);
  ry_array_release(kept_host);
  release_all(out, N_OUT);
  release_all(st, N_IN);

  /* the "pjrt" device through ry_execute_donated, and ry_jit */
  ry_executable *xe = NULL;
  CHECK_OK(ry_compile(g, xla, &xe));
  init_state(st);
  put_all(xla, NULL, st);
  if (xe) loop(call_device, xe, st, l);
  for (int i = 0; i < N_STATE; i++) CHECK(st[i] && ry_array_on_device(st[i]) && same_bytes(st[i], ref[i]));
  CHECK_ERR(ry_execute(xe, N_IN, (ry_array *[N_IN]){0}, N_OUT, (ry_array *[N_OUT]){0}), RY_ERR_INVALID_ARGUMENT,
            "is NULL", "donated");
  release_all(st, N_IN);
  ry_executable_free(xe);
  ry_jit *j = NULL;
  CHECK_OK(ry_jit_new("step", trace_step, vg, xla, &j));
  init_state(st);
  put_all(xla, NULL, st);
  if (j) loop(call_jit, j, st, l);
  for (int i = 0; i < N_STATE; i++) CHECK(st[i] && ry_array_on_device(st[i]) && same_bytes(st[i], ref[i]));
  release_all(st, N_IN);
  ry_jit_free(j);

  /* mixed: host and device inputs in one call, same results */
  init_state(st);
  for (int i = 1; i < N_IN; i += 2) { /* b1, m1, m2, y on the device */
    ry_array *x = NULL;
    CHECK_OK(ry_pjrt_put(c, 0, st[i], &x));
    ry_array_release(st[i]);
    st[i] = x;
  }
  loop(call_resident, resident, st, l);
  for (int i = 0; i < N_STATE; i++) CHECK(st[i] && same_bytes(st[i], ref[i]));
  release_all(st, N_IN);

  /* device arrays on host backends: read through their host copies, and a
   * donated one is released, never written */
  ry_device *cpu = NULL;
  ry_executable *ce = NULL;
  CHECK_OK(ry_device_get("cpu", &cpu));
  if (cpu) CHECK_OK(ry_compile(g, cpu, &ce));
  init_state(st);
  put_all(NULL, c, st);
  ry_array *held = ry_array_retain(st[0]), *held_host = NULL;
  CHECK_OK(ry_device_put(cpu, held, &held_host));
  if (ce) loop(call_device, ce, st, l);
  for (int i = 0; i < N_STATE; i++) {
    CHECK(st[i] && !ry_array_on_device(st[i]));
    for (int64_t k = 0; st[i] && k < ry_array_numel(st[i]); k++)
      CHECK_NEAR(ry_array_get_f64(st[i], k), ry_array_get_f64(ref[i], k), 1e-5);
  }
  CHECK(ry_array_on_device(held) && same_bytes(held, held_host));
  ry_array_release(held);
  ry_array_release(held_host);
  release_all(st, N_IN);
  ry_executable_free(ce);

  release_all(ref, N_IN);
done:
  ry_pjrt_executable_free(copying);
  ry_pjrt_executable_free(resident);
  ry_pjrt_client_free(c);
  ry_graph_release(g);
  ry_graph_release(vg);
}

/* ---- errors ---- */

TEST(pjrt_device_errors) {
  ry_pjrt_client *c = client(2), *other = client(0);
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(k_axpy, -1, "axpy", &g));
  ry_pjrt_executable *e = NULL, *e2 = NULL;
  if (c && g) CHECK_OK(ry_pjrt_compile(c, g, 1, &e));
  if (c && g) CHECK_OK(ry_pjrt_compile(c, g, 2, &e2));
  if (!e || !e2 || !other) goto done;
  float a = 2, x[4] = {1, 2, 3, 4}, y[4] = {10, 20, 30, 40};
  ry_array *h[3] = {0}, *d0[3] = {0}, *out[4] = {0}, *tmp = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &a, &h[0]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), x, &h[1]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), y, &h[2]));
  for (int i = 0; i < 3; i++) CHECK_OK(ry_pjrt_put(c, 0, h[i], &d0[i]));

  /* another client's array */
  CHECK_OK(ry_pjrt_put(other, 0, h[1], &tmp));
  ry_array *w[3] = {d0[0], tmp, d0[2]};
  CHECK_ERR(ry_pjrt_execute(e, 3, w, 2, out), RY_ERR_INVALID_ARGUMENT, "input 1", "another PJRT client", "ry_pjrt_put");
  ry_array_release(tmp);
  tmp = NULL;
  /* another device's array */
  CHECK_OK(ry_pjrt_put(c, 1, h[2], &tmp));
  w[1] = d0[1];
  w[2] = tmp;
  CHECK_ERR(ry_pjrt_execute(e, 3, w, 2, out), RY_ERR_INVALID_ARGUMENT, "input 2", "on device 1", "device 0 runs");
  /* the same inputs on two devices: a device array is on one of them only */
  CHECK_ERR(ry_pjrt_execute(e2, 3, d0, 4, out), RY_ERR_INVALID_ARGUMENT, "on device 0", "device 1 runs",
            "ry_pjrt_execute_per_device");
  /* per device, each device's own arrays: fine, outputs on their devices */
  ry_array *pd[6] = {d0[0], d0[1], d0[2], NULL, NULL, tmp};
  CHECK_OK(ry_pjrt_put(c, 1, h[0], &pd[3]));
  CHECK_OK(ry_pjrt_put(c, 1, h[1], &pd[4]));
  CHECK_OK(ry_pjrt_execute_per_device(e2, 6, pd, 4, out));
  CHECK(out[2] && out[3] && ry_array_get_f64(out[3], 0) == 120 && ry_array_get_f64(out[1], 0) == 120);
  ry_array *feed[6] = {out[0], d0[1], d0[2], out[2], pd[4], tmp};
  /* out[0] is f32[4] where a scalar is expected */
  CHECK_ERR(ry_pjrt_execute_per_device(e2, 6, feed, 4, (ry_array *[4]){0}), RY_ERR_SHAPE, "input 0", "f32[4]", "f32[]");
  release_all(out, 4);
  ry_array_release(pd[3]);
  ry_array_release(pd[4]);
  ry_array_release(tmp);
  tmp = NULL;
  /* a device array of the wrong dtype */
  double xd[4] = {0};
  ry_array *hd = NULL;
  CHECK_OK(ry_array_from_host(RY_F64, RY_SHAPE(4), xd, &hd));
  CHECK_OK(ry_pjrt_put(c, 0, hd, &tmp));
  w[1] = tmp;
  w[2] = d0[2];
  CHECK_ERR(ry_pjrt_execute(e, 3, w, 2, out), RY_ERR_DTYPE, "input 1", "f64[4]");
  ry_array_release(hd);
  ry_array_release(tmp);
  /* puts that cannot be */
  CHECK_ERR(ry_pjrt_put(c, 2, h[0], &tmp), RY_ERR_INVALID_ARGUMENT, "device 2", "has 2");
  CHECK_ERR(ry_pjrt_put(c, -1, h[0], &tmp), RY_ERR_INVALID_ARGUMENT, "device -1");
  CHECK_ERR(ry_pjrt_put(c, 0, NULL, &tmp), RY_ERR_INVALID_ARGUMENT, "array is NULL");
  CHECK_ERR(ry_device_put(NULL, h[0], &tmp), RY_ERR_INVALID_ARGUMENT, "device is NULL");
  /* donating: the references are consumed even when the call fails */
  ry_array *dd[3] = {ry_array_retain(d0[0]), ry_array_retain(d0[1]), NULL};
  bool all[3] = {true, true, true};
  CHECK_ERR(ry_pjrt_execute_donated(e, 3, dd, all, 2, out), RY_ERR_INVALID_ARGUMENT, "input 2 is NULL");
  CHECK(dd[0] == NULL && dd[1] == NULL);
  /* and the arrays still held elsewhere are intact */
  CHECK(ry_array_get_f64(d0[0], 0) == 2 && ry_array_get_f64(d0[1], 3) == 4);
  release_all(h, 3);
  release_all(d0, 3);
done:
  ry_pjrt_executable_free(e);
  ry_pjrt_executable_free(e2);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
  ry_pjrt_client_free(other);
}

/* ---- lifetime, threads, leaks ---- */

typedef struct {
  const ry_array *a;
  const void *p;
} reader;

static void *read_data(void *arg) {
  reader *r = arg;
  r->p = ry_array_data(r->a);
  return NULL;
}

/* Several threads reading a fresh device array at once all see the one
 * host copy; the array and the client outlive ry_pjrt_shutdown. */
TEST(pjrt_device_concurrent_reads_and_lifetime) {
  pjrt_test_plugin();
  ry_device *xla = NULL;
  CHECK_OK(ry_device_get("pjrt", &xla));
  if (!xla) return;
  float v[1000];
  for (int i = 0; i < 1000; i++) v[i] = (float)i * 0.5f;
  ry_array *h = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(10, 100), v, &h));
  for (int round = 0; round < 5; round++) {
    ry_array *d = NULL;
    CHECK_OK(ry_device_put(xla, h, &d));
    if (!d) break;
    pthread_t th[4];
    reader r[4];
    for (int i = 0; i < 4; i++) {
      r[i] = (reader){d, NULL};
      pthread_create(&th[i], NULL, read_data, &r[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECK(r[i].p && r[i].p == r[0].p && memcmp(r[i].p, v, sizeof v) == 0);
    if (round == 4) {
      ry_pjrt_shutdown(); /* the shared client goes; d keeps it */
      CHECK(ry_array_get_f64(d, 999) == 499.5);
    }
    ry_array_release(d);
  }
  ry_array_release(h);
}

/* 200 put / donated execute / read / release cycles, an executable compiled
 * and freed every 20th, a client created and freed every 50th: the sanitizer
 * build's leak check (tests/lsan_pjrt.supp) must stay quiet. */
TEST(pjrt_device_cycles_no_leak) {
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(k_axpy, -1, "axpy", &g));
  float a = 2, x[4] = {1, 2, 3, 4}, y[4] = {10, 20, 30, 40};
  ry_array *h[3] = {0};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &a, &h[0]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), x, &h[1]));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), y, &h[2]));
  ry_pjrt_client *c = NULL;
  ry_pjrt_executable *e = NULL;
  ry_array *acc = NULL; /* y, then y <- a x + y on the device */
  int ok = 0;
  for (int i = 0; i < 200 && g; i++) {
    ry_status s = NULL;
    if (i % 50 == 0) {
      ry_pjrt_executable_free(e);
      e = NULL;
      ry_array_release(acc);
      acc = NULL;
      ry_pjrt_client_free(c);
      c = client(0);
      if (!c) break;
    }
    if (i % 20 == 0 || !e) {
      ry_pjrt_executable_free(e);
      e = NULL;
      s = ry_pjrt_compile(c, g, 1, &e);
    }
    if (!acc && !s) s = ry_pjrt_put(c, 0, h[2], &acc);
    ry_array *in[3] = {NULL, NULL, acc}, *out[2] = {0};
    if (!s) s = ry_pjrt_put(c, 0, h[0], &in[0]);
    in[1] = h[1]; /* host */
    acc = NULL;
    static const bool don[3] = {true, false, true};
    if (!s) {
      s = ry_pjrt_execute_donated(e, 3, in, don, 2, out);
    } else {
      ry_array_release(in[0]);
      ry_array_release(in[2]);
    }
    int k = i % 50 + 1; /* steps since acc was y */
    if (!s && ry_array_get_f64(out[0], 3) == 40 + 8.0 * k && ry_array_get_f64(out[1], 0) == 100 + 20.0 * k) ok++;
    CHECK_MSG(!s, "cycle %d: %s", i, ry_status_message(s));
    ry_status_free(s);
    acc = out[0];
    ry_array_release(out[1]);
  }
  CHECK_EQ_INT(ok, 200);
  ry_array_release(acc);
  release_all(h, 3);
  ry_pjrt_executable_free(e);
  ry_pjrt_client_free(c);
  ry_graph_release(g);
}

/* ---- device arrays where host arrays go ---- */

static int add_captured(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ry_add(b, in[0], ry_constant(b, (const ry_array *)ctx)); /* a device array captured as a constant */
  return 1;
}

TEST(pjrt_device_arrays_in_host_code) {
  ry_pjrt_client *c = client(0);
  if (!c) return;
  float v[6] = {1.5f, -2, 3, 0.25f, 8, -0.5f};
  ry_array *h = NULL, *d = NULL, *back = NULL, *out = NULL;
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(2, 3), v, &h));
  CHECK_OK(ry_pjrt_put(c, 0, h, &d));
  /* .npy writer */
  const char *path = rt_tmp_path("pjrt_dev", "a.npy");
  CHECK_OK(ry_npy_write(path, d));
  CHECK_OK(ry_npy_read(path, &back));
  CHECK(same_bytes(back, h));
  remove(path);
  /* a constant in a traced graph (a fresh device array), run by the interpreter */
  ry_graph *g = NULL;
  ry_type t = ry_array_type(h);
  ry_device *interp = NULL;
  ry_array *fresh = NULL;
  CHECK_OK(ry_pjrt_put(c, 0, h, &fresh));
  if (fresh) CHECK_OK(ry_trace("add_captured", add_captured, fresh, 1, &t, NULL, &g));
  ry_array_release(fresh); /* the graph holds it */
  CHECK_OK(ry_device_get("interp", &interp));
  if (g && interp) CHECK_OK(ry_run(g, interp, 1, &h, 1, &out));
  for (int i = 0; out && i < 6; i++) CHECK(ry_array_get_f64(out, i) == 2.0 * v[i]);
  /* parameter trees compare device arrays by their elements */
  ry_params *p1 = ry_params_new(), *p2 = ry_params_new();
  CHECK_OK(ry_params_set(p1, "w", h));
  CHECK_OK(ry_params_set(p2, "w", d));
  CHECK(ry_params_equal(p1, p2));
  ry_params_free(p1);
  ry_params_free(p2);
  /* a PRNG key held on the device */
  uint32_t kv[2] = {0, 42};
  ry_array *kh = NULL, *kd = NULL;
  ry_key key = {{0, 0}};
  CHECK_OK(ry_array_from_host(RY_U32, RY_SHAPE(2), kv, &kh));
  CHECK_OK(ry_pjrt_put(c, 0, kh, &kd));
  CHECK_OK(ry_key_from_array(kd, &key));
  CHECK(key.k[0] == 0 && key.k[1] == 42);
  ry_array_release(kh);
  ry_array_release(kd);
  ry_graph_release(g);
  ry_array_release(out);
  ry_array_release(back);
  ry_array_release(d);
  ry_array_release(h);
  ry_pjrt_client_free(c);
}

/* pmap style with the state on each device: y_d <- a x + y_d on 2 devices,
 * y donated; each device's output stays on that device and is fed back. */
TEST(pjrt_device_per_device_donated) {
  ry_pjrt_client *c = client(2);
  ry_graph *g = NULL;
  CHECK_OK(ry_graph_parse(k_axpy, -1, "axpy", &g));
  ry_pjrt_executable *e = NULL;
  if (c && g) CHECK_OK(ry_pjrt_compile(c, g, 2, &e));
  if (!e) goto done;
  float a = 2, x[4] = {1, 2, 3, 4}, y[2][4] = {{10, 20, 30, 40}, {-1, -2, -3, -4}};
  ry_array *ha = NULL, *hx = NULL, *acc[2] = {0};
  CHECK_OK(ry_array_from_host(RY_F32, RY_SCALAR, &a, &ha));
  CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), x, &hx));
  for (int d = 0; d < 2; d++) {
    ry_array *h = NULL;
    CHECK_OK(ry_array_from_host(RY_F32, RY_SHAPE(4), y[d], &h));
    CHECK_OK(ry_pjrt_put(c, d, h, &acc[d]));
    ry_array_release(h);
  }
  static const bool don[6] = {false, false, true, false, false, true};
  for (int k = 1; k <= 3 && acc[0] && acc[1]; k++) {
    ry_array *in[6] = {ha, hx, acc[0], ha, hx, acc[1]}, *out[4] = {0};
    CHECK_OK(ry_pjrt_execute_per_device_donated(e, 6, in, don, 4, out));
    CHECK(in[2] == NULL && in[5] == NULL && in[0] == ha);
    acc[0] = out[0];
    acc[1] = out[2];
    for (int d = 0; d < 2; d++)
      for (int i = 0; acc[d] && i < 4; i++) CHECK(ry_array_get_f64(acc[d], i) == y[d][i] + 2.0 * k * x[i]);
    ry_array_release(out[1]);
    ry_array_release(out[3]);
  }
  ry_array_release(acc[0]);
  ry_array_release(acc[1]);
  ry_array_release(ha);
  ry_array_release(hx);
done:
  ry_pjrt_executable_free(e);
  ry_graph_release(g);
  ry_pjrt_client_free(c);
}
