/* The program tests/test_dist.c runs under mpirun, one process per rank.
 *
 *   ryft_mpi_check run DIR      DIR/prog.ryft on DIR/in<rank>_<k>.bin (input
 *                               k, its raw elements), on the interp and cpu
 *                               devices: writes the raw elements of output i
 *                               to DIR/out<rank>_<device>_<i>.bin
 *   ryft_mpi_check pjrt PLUGIN DIR   x = DIR/in<rank>_0.bin (f32[5,3]): y = x*x
 *                               on this process's own PJRT client, then
 *                               ry_dist_all_reduce(y, sum) and
 *                               ry_dist_broadcast(x, 1) into
 *                               DIR/pjrt<rank>_{sum,bcast}.bin
 *   ryft_mpi_check kv           the key-value store on 2 ranks: a get that
 *                               waits for the other rank's put, overwrite,
 *                               an empty value, a missing key that times out
 *                               (its message on stdout), a look without wait
 *   ryft_mpi_check kv-stopped   rank 0 (the store's server) stops itself;
 *                               rank 1's get must fail naming rank 0
 *   ryft_mpi_check pjrt-kv PLUGIN  a PJRT client of PLUGIN created under
 *                               the job (node_id, num_nodes and the store's
 *                               callbacks); prints its platform name
 *   ryft_mpi_check die K MODE   a psum step in a loop; at step K rank 1
 *                               kills itself (MODE kill) or stops (stop),
 *                               the other ranks go on until it fails
 *
 * It exits 0 when everything ran, 1 with the error on stderr otherwise. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ryft/ryft.h"

static ry_status read_raw(const char *path, ry_type t, ry_array **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return ry_status_make(RY_ERR_IO, "%s: cannot open", path);
  size_t n = (size_t)ry_shape_numel(t.shape) * ry_dtype_size(t.dtype);
  void *buf = malloc(n ? n : 1);
  size_t got = buf ? fread(buf, 1, n, f) : 0;
  fclose(f);
  ry_status s = got == n ? ry_array_from_host(t.dtype, t.shape, buf, out) : ry_status_make(RY_ERR_IO, "%s: short file", path);
  free(buf);
  return s;
}

static ry_status write_raw(const char *path, const ry_array *a) {
  FILE *f = fopen(path, "wb");
  if (!f) return ry_status_make(RY_ERR_IO, "%s: cannot create", path);
  size_t n = ry_array_nbytes(a);
  int ok = n == 0 || fwrite(ry_array_data(a), 1, n, f) == n;
  ok = fclose(f) == 0 && ok;
  return ok ? NULL : ry_status_make(RY_ERR_IO, "%s: write failed", path);
}

static int fail(ry_status s, const char *what) {
  fprintf(stderr, "ryft_mpi_check: rank %d: %s: %s\n", ry_dist_rank(), what, ry_status_message(s));
  ry_status_free(s);
  ry_status_free(ry_dist_finalize());
  return 1;
}

static int run(const char *dir) {
  char path[1200];
  ry_graph *g = NULL;
  ry_array *in[16] = {0};
  ry_status s;
  snprintf(path, sizeof path, "%s/prog.ryft", dir);
  if ((s = ry_graph_parse_file(path, &g))) return fail(s, path);
  int n_in = ry_graph_num_inputs(g), n_out = ry_graph_num_outputs(g);
  if (n_in > 16 || n_out > 32) return fail(ry_status_make(RY_ERR_INVALID_ARGUMENT, "too many inputs or outputs"), path);
  for (int k = 0; k < n_in; k++) {
    snprintf(path, sizeof path, "%s/in%d_%d.bin", dir, ry_dist_rank(), k);
    if ((s = read_raw(path, ry_graph_input_type(g, k), &in[k]))) return fail(s, path);
  }
  static const char *const devs[] = {"interp", "cpu"};
  for (int d = 0; d < 2; d++) {
    ry_device *dev = NULL;
    ry_array *out[32] = {0};
    if ((s = ry_device_get(devs[d], &dev)) || (s = ry_run(g, dev, n_in, in, n_out, out))) return fail(s, devs[d]);
    for (int i = 0; i < n_out; i++) {
      snprintf(path, sizeof path, "%s/out%d_%s_%d.bin", dir, ry_dist_rank(), devs[d], i);
      if ((s = write_raw(path, out[i]))) return fail(s, path);
      ry_array_release(out[i]);
    }
  }
  for (int k = 0; k < n_in; k++) ry_array_release(in[k]);
  ry_graph_release(g);
  return 0;
}

static int square(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_mul(b, in[0], in[0]);
  return 1;
}

static int pjrt(const char *plugin, const char *dir) {
  char path[1200];
  ry_type t = {RY_F32, RY_SHAPE(5, 3)};
  ry_graph *g = NULL;
  ry_pjrt_client *c = NULL;
  ry_pjrt_executable *e = NULL;
  ry_array *x = NULL, *y = NULL, *sum = NULL, *bc = NULL;
  ry_pjrt_options o = {.plugin_path = plugin, .cpu_device_count = 1};
  ry_status s;
  snprintf(path, sizeof path, "%s/in%d_0.bin", dir, ry_dist_rank());
  if ((s = read_raw(path, t, &x)) || (s = ry_trace("square", square, NULL, 1, &t, NULL, &g)) ||
      (s = ry_pjrt_client_create(&o, &c)) || (s = ry_pjrt_compile(c, g, 1, &e)) || (s = ry_pjrt_execute(e, 1, &x, 1, &y)) ||
      (s = ry_dist_all_reduce(y, RY_SUM, &sum)) || (s = ry_dist_broadcast(x, 1, &bc)))
    return fail(s, "pjrt");
  snprintf(path, sizeof path, "%s/pjrt%d_sum.bin", dir, ry_dist_rank());
  if ((s = write_raw(path, sum))) return fail(s, path);
  snprintf(path, sizeof path, "%s/pjrt%d_bcast.bin", dir, ry_dist_rank());
  if ((s = write_raw(path, bc))) return fail(s, path);
  ry_array_release(x);
  ry_array_release(y);
  ry_array_release(sum);
  ry_array_release(bc);
  ry_pjrt_executable_free(e);
  ry_pjrt_client_free(c);
  ry_graph_release(g);
  return 0;
}

/* value of key (waiting up to 10 s) must be want */
static int kv_expect(const char *key, const char *want) {
  void *v = NULL;
  size_t n = 0;
  ry_status s = ry_dist_kv_get(key, 10000, &v, &n);
  if (s) return fail(s, key);
  int ok = n == strlen(want) && memcmp(v, want, n) == 0;
  if (!ok) fprintf(stderr, "ryft_mpi_check: rank %d: %s = '%.*s', want '%s'\n", ry_dist_rank(), key, (int)n, (char *)v, want);
  ry_free(v);
  return ok ? 0 : 1;
}

static int kv(void) {
  ry_status s;
  int r = ry_dist_rank(), rc = 0;
  if (r == 0) {
    struct timespec ts = {0, 300000000}; /* the other rank's get waits for this put */
    nanosleep(&ts, NULL);
    if ((s = ry_dist_kv_put("k/a", "one", 3))) return fail(s, "put k/a");
    if ((rc = kv_expect("k/b", "from1")) || (rc = kv_expect("k/empty", ""))) return rc;
    if ((s = ry_dist_kv_put("k/a", "two!", 4)) || (s = ry_dist_kv_put("k/go", "1", 1))) return fail(s, "put");
  } else if (r == 1) {
    if ((rc = kv_expect("k/a", "one"))) return rc;
    if ((s = ry_dist_kv_put("k/b", "from1", 5)) || (s = ry_dist_kv_put("k/empty", NULL, 0))) return fail(s, "put");
    if ((rc = kv_expect("k/go", "1")) || (rc = kv_expect("k/a", "two!"))) return rc;
  }
  void *v = NULL;
  s = ry_dist_kv_get("k/missing", 200, &v, NULL);
  printf("rank %d: %s\n", r, s ? ry_status_message(s) : "found?");
  rc = ry_status_code(s) == RY_ERR_NOT_FOUND ? 0 : 1;
  ry_status_free(s);
  s = ry_dist_kv_get("k/missing", 0, &v, NULL); /* just look */
  rc |= ry_status_code(s) == RY_ERR_NOT_FOUND ? 0 : 1;
  ry_status_free(s);
  fflush(stdout);
  return rc;
}

static int kv_stopped(void) {
  if (ry_dist_rank() == 0) raise(SIGSTOP);
  void *v = NULL;
  ry_status s = ry_dist_kv_get("k/any", 60000, &v, NULL);
  return s ? fail(s, "get") : 0;
}

static int pjrt_kv(const char *plugin) {
  ry_pjrt_options o = {.plugin_path = plugin};
  ry_pjrt_client *c = NULL;
  ry_status s = ry_pjrt_client_create(&o, &c);
  if (s) return fail(s, "ry_pjrt_client_create");
  printf("rank %d: platform %s, %d devices\n", ry_dist_rank(), ry_pjrt_client_platform(c), ry_pjrt_client_device_count(c));
  fflush(stdout);
  ry_pjrt_client_free(c);
  return 0;
}

static int step(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  (void)ctx;
  out[0] = ry_psum(b, in[0], ry_dist_size());
  return 1;
}

static int die(long k, const char *mode) {
  ry_type t = {RY_F32, RY_SHAPE(1000)};
  ry_jit *j = NULL;
  ry_device *dev = NULL;
  ry_array *x = NULL;
  ry_status s;
  if ((s = ry_device_get("cpu", &dev)) || (s = ry_jit_new("step", step, NULL, dev, &j)) ||
      (s = ry_array_full(RY_F32, t.shape, 1.0, &x)))
    return fail(s, "setup");
  for (long i = 0;; i++) {
    if (i == k && ry_dist_rank() == 1) {
      fprintf(stderr, "ryft_mpi_check: rank 1: %s at step %ld\n", mode, i);
      fflush(stderr);
      raise(strcmp(mode, "stop") == 0 ? SIGSTOP : SIGKILL);
    }
    ry_array *y = NULL;
    if ((s = ry_jit_call(j, 1, &x, 1, &y))) {
      ry_array_release(x);
      ry_jit_free(j);
      return fail(s, "step");
    }
    ry_array_release(y);
  }
}

int main(int argc, char **argv) {
  ry_status s = ry_dist_init(&argc, &argv);
  if (s) return fail(s, "ry_dist_init");
  int rc = 2;
  if (argc == 3 && strcmp(argv[1], "run") == 0) rc = run(argv[2]);
  else if (argc == 4 && strcmp(argv[1], "pjrt") == 0) rc = pjrt(argv[2], argv[3]);
  else if (argc == 4 && strcmp(argv[1], "die") == 0) rc = die(atol(argv[2]), argv[3]);
  else if (argc == 2 && strcmp(argv[1], "kv") == 0) rc = kv();
  else if (argc == 2 && strcmp(argv[1], "kv-stopped") == 0) rc = kv_stopped();
  else if (argc == 3 && strcmp(argv[1], "pjrt-kv") == 0) rc = pjrt_kv(argv[2]);
  else fprintf(stderr, "usage: ryft_mpi_check run DIR | pjrt PLUGIN DIR | kv | kv-stopped | pjrt-kv PLUGIN | die K kill|stop\n");
  if (rc == 0 && (s = ry_dist_finalize())) return fail(s, "ry_dist_finalize");
  return rc;
}
