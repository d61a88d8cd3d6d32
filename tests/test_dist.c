/* ryft/dist.h: collectives across processes under MPI.
 *
 * The MPI tests start `mpirun -np P ryft_mpi_check ...` (tests/mpi_check.c)
 * as a child process: each rank runs a program of collectives on the interp
 * and cpu devices with its own inputs and writes its outputs; the test then
 * compares every rank's outputs with the same program run on P devices of
 * one process (the XLA CPU plugin through PJRT, ry_pjrt_execute_per_device),
 * for every dtype the collectives take, odd sizes and empty arrays;
 * collective_broadcast, which the XLA CPU plugin does not implement, against
 * the source rank's own input, and its gradient against JAX
 * (tests/data/gen_collective_broadcast.py). Also:
 * a rank that dies or stops ends the job with an error (never a hang), and
 * the API outside a job. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "testlib.h"
#include "train_testlib.h"
#ifdef RYFT_HAVE_PJRT
#include "pjrt_testlib.h"
#endif

extern char **environ;

/* The store from several threads at once (one process: the local store;
 * the TSan job runs it): each thread overwrites its own keys and reads the
 * others'. */
static void *kv_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  char key[32], val[32];
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "c/%d/%d", t, i % 7);
    snprintf(val, sizeof val, "%d", i);
    ry_status s = ry_dist_kv_put(key, val, strlen(val));
    ry_status_free(s);
    snprintf(key, sizeof key, "c/%d/%d", (t + 1) % 4, i % 7);
    void *v = NULL;
    s = ry_dist_kv_get(key, 0, &v, NULL);
    ry_status_free(s);
    ry_free(v);
  }
  return NULL;
}

TEST(dist_kv_concurrent_threads) {
  pthread_t th[4];
  for (int t = 0; t < 4; t++) CHECK(pthread_create(&th[t], NULL, kv_thread, (void *)(intptr_t)t) == 0);
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < 4; t++) {
    char key[32];
    snprintf(key, sizeof key, "c/%d/%d", t, 199 % 7);
    void *v = NULL;
    CHECK_OK(ry_dist_kv_get(key, 0, &v, NULL));
    CHECK_MSG(v && strcmp(v, "199") == 0, "%s = %s", key, v ? (char *)v : "(none)");
    ry_free(v);
  }
  CHECK_OK(ry_dist_finalize()); /* outside a job: empties the store */
}

TEST(dist_outside_a_job) {
  CHECK(ry_dist_rank() == 0);
  CHECK(ry_dist_size() == 1);
  ry_array *x = NULL, *l = NULL;
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(6, 2), &x));
  CHECK_OK(ry_dist_shard_rows(x, &l)); /* one rank: all rows */
  if (l) CHECK(ry_shape_equal(ry_array_shape(l), RY_SHAPE(6, 2)));
  ry_array_release(l);
  ry_array *s = NULL;
  CHECK_OK(ry_array_zeros(RY_F32, RY_SCALAR, &s));
  CHECK_ERR(ry_dist_shard_rows(s, &l), RY_ERR_SHAPE, "scalar");
  CHECK_ERR(ry_dist_shard_rows(NULL, &l), RY_ERR_INVALID_ARGUMENT, "global is NULL");
  ry_array_release(s);
  /* host collectives: a job of one */
  ry_array *r = NULL;
  CHECK_OK(ry_array_full(RY_F32, RY_SHAPE(3), 2.5, &s));
  CHECK_OK(ry_dist_all_reduce(s, RY_SUM, &r));
  CHECK(r && ry_array_get_f64(r, 2) == 2.5);
  ry_array_release(r);
  r = NULL;
  CHECK_OK(ry_dist_broadcast(s, 0, &r));
  CHECK(r && ry_array_get_f64(r, 1) == 2.5);
  ry_array_release(r);
  CHECK_ERR(ry_dist_broadcast(s, 1, &r), RY_ERR_INVALID_ARGUMENT, "root 1 is not a rank of 0..0");
  CHECK_ERR(ry_dist_all_reduce(s, RY_AND, &r), RY_ERR_INVALID_ARGUMENT, "not RY_SUM");
  CHECK_ERR(ry_dist_all_reduce(NULL, RY_SUM, &r), RY_ERR_INVALID_ARGUMENT, "x is NULL");
  ry_array_release(s);
  ry_array_release(x);
  CHECK(ry_dist_comm_seconds() == 0);
  /* the key-value store outside a job: this process's own */
  void *v = NULL;
  size_t n = 0;
  CHECK_OK(ry_dist_kv_put("t/x", "abc", 3));
  CHECK_OK(ry_dist_kv_put("t/x", "de", 2)); /* overwrite */
  CHECK_OK(ry_dist_kv_get("t/x", 0, &v, &n));
  CHECK(v && n == 2 && strcmp(v, "de") == 0);
  ry_free(v);
  CHECK_ERR(ry_dist_kv_get("t/none", 30, &v, &n), RY_ERR_NOT_FOUND, "key 't/none' was not set within 30 ms");
  CHECK(v == NULL && n == 0);
  CHECK_ERR(ry_dist_kv_get(NULL, 0, &v, &n), RY_ERR_INVALID_ARGUMENT, "key is NULL");
  CHECK_ERR(ry_dist_kv_put("t/y", NULL, 4), RY_ERR_INVALID_ARGUMENT, "value is NULL");
  CHECK_OK(ry_dist_finalize()); /* empties the store */
  CHECK_ERR(ry_dist_kv_get("t/x", 0, &v, &n), RY_ERR_NOT_FOUND, "t/x");
#ifndef RYFT_HAVE_MPI
  CHECK_ERR(ry_dist_init(NULL, NULL), RY_ERR_UNSUPPORTED, "built without MPI");
  CHECK_OK(ry_dist_finalize());
#endif
}

#ifdef RYFT_HAVE_MPI
/* ---- running mpirun ---- */

typedef struct job {
  int status; /* exit status, 128+signal, or -1: did not end within the guard */
  char *out, *err;
} job;

/* Start prog with args (argv[0] included), stdout and stderr into files,
 * in its own process group, with environment variables `env` (NULL or
 * "NAME=VALUE" entries, NULL-terminated) set over ours; -1 if it cannot
 * start. */
static pid_t start(const char *prog, const char *const *argv, const char *const *env, const char *outp, const char *errp) {
  int n_env = 0, n_new = 0;
  while (environ[n_env]) n_env++;
  while (env && env[n_new]) n_new++;
  char **envp = calloc((size_t)(n_env + n_new + 1), sizeof *envp);
  if (!envp) return -1;
  int k = 0;
  for (int i = 0; i < n_env; i++) {
    int replaced = 0;
    for (int j = 0; j < n_new; j++) {
      size_t len = (size_t)(strchr(env[j], '=') - env[j]) + 1;
      if (strncmp(environ[i], env[j], len) == 0) replaced = 1;
    }
    if (!replaced) envp[k++] = environ[i];
  }
  for (int j = 0; j < n_new; j++) envp[k++] = (char *)env[j];
  char **e2 = envp;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&at, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, prog, &fa, &at, (char *const *)argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(e2);
  if (rc != 0) {
    rt_fail(__FILE__, __LINE__, "posix_spawn %s: %s", prog, strerror(rc));
    return -1;
  }
  return pid;
}

/* Wait for pid at most guard_s seconds (a guard against a hang, not a
 * measurement: past it the job is killed and its status is -1). */
static job finish(pid_t pid, int guard_s, const char *outp, const char *errp) {
  job j = {-1, NULL, NULL};
  int st = 0;
  for (long waited_ms = 0; pid > 0; waited_ms += 20) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) {
      j.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (waited_ms > guard_s * 1000L) {
      kill(-pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  j.out = rt_read_file(outp, NULL);
  j.err = rt_read_file(errp, NULL);
  unlink(outp);
  unlink(errp);
  return j;
}

static const char *g_ip = "/usr/sbin/ip"; /* iproute2 */

/* Two "hosts" (dist_two_hosts_over_tcp): when set, mpirun runs in network
 * namespace g_hosts.ns[0] as host h0 and starts the ranks through
 * g_hosts.agent (its rsh agent) on h0 and h1, the namespaces joined by a
 * veth pair, with MPI's TCP transport only. */
static struct {
  char ns[2][64], agent[1100], hostfile[1100], veth[2][16];
  int on;
} g_hosts;

/* argv of `mpirun -np P [the flags a container and root need] args...` */
static void mpi_argv(int np, const char *const *args, const char **argv, char *npb) {
  int k = 0;
  sprintf(npb, "%d", np);
  if (g_hosts.on) {
    /* ip netns exec NS0 unshare --uts sh -c 'hostname h0; exec "$0" "$@"' mpirun ... */
    argv[k++] = "ip";
    argv[k++] = "netns";
    argv[k++] = "exec";
    argv[k++] = g_hosts.ns[0];
    argv[k++] = "unshare";
    argv[k++] = "--uts";
    argv[k++] = "sh";
    argv[k++] = "-c";
    argv[k++] = "hostname h0 && exec \"$0\" \"$@\"";
  }
  argv[k++] = RYFT_MPIEXEC;
  argv[k++] = "-np";
  argv[k++] = npb;
  if (getuid() == 0) argv[k++] = "--allow-run-as-root";
  if (g_hosts.on) {
    static const char *const f[] = {"--hostfile", NULL, "--mca", "plm_rsh_agent", NULL, "--mca", "btl", "tcp,self",
                                    "--mca", "btl_tcp_if_include", "10.77.0.0/24", "--mca", "oob_tcp_if_include", "10.77.0.0/24"};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) argv[k++] = i == 1 ? g_hosts.hostfile : i == 4 ? g_hosts.agent : f[i];
  } else {
    /* more ranks than cores, and no cross-memory attach in a container */
    argv[k++] = "--oversubscribe";
    argv[k++] = "--mca";
    argv[k++] = "btl_vader_single_copy_mechanism";
    argv[k++] = "none";
  }
  for (int i = 0; args[i] && k < 46; i++) argv[k++] = args[i];
  argv[k] = NULL;
}

/* The environment of every MPI job the tests start: under AddressSanitizer
 * the ranks check memory errors but not leaks, because Open MPI leaves its
 * allocations at exit in components it has unloaded ("<unknown module>",
 * which no suppression can name); ryft's code in the ranks is leak-checked
 * in-process by the other tests. */
static const char *const k_mpi_env[] = {"ASAN_OPTIONS=detect_leaks=0:abort_on_error=0", NULL};

/* mpirun -np P args..., waited for at most guard_s seconds; env: one more
 * "NAME=VALUE" or NULL */
static job run_mpi(int np, const char *env, int guard_s, const char *const *args) {
  const char *outp = rt_tmp_path("dist", "stdout"), *errp = rt_tmp_path("dist", "stderr");
  const char *argv[48];
  char npb[16];
  mpi_argv(np, args, argv, npb);
  const char *envs[3] = {k_mpi_env[0], env, NULL};
  return finish(start(g_hosts.on ? g_ip : RYFT_MPIEXEC, argv, envs, outp, errp), guard_s, outp, errp);
}

static void job_free(job *j) {
  free(j->out);
  free(j->err);
}
#define EXPECT_OK(j, what) CHECK_MSG((j).status == 0, "%s: status %d\n%s%s", what, (j).status, (j).out ? (j).out : "", (j).err ? (j).err : "")

/* ---- the programs ---- */

static const ry_dtype k_dtypes[] = {RY_F32, RY_F64, RY_F16, RY_BF16, RY_I8, RY_I16, RY_I32, RY_I64, RY_U8, RY_U32, RY_BOOL};

/* inputs: a T[5,3], b T[7] (odd), c T[0,3] (empty), d T[3,4] */
static const int64_t k_in_dims[4][2] = {{5, 3}, {7, 1}, {0, 3}, {3, 4}};
static const int k_in_rank[4] = {2, 1, 2, 2};

/* collective_broadcast outputs at the end of the program (with_bcast): of
 * input k_bcast_in[i] from group member k_bcast_src[i] */
#define N_BCAST 3
static const int k_bcast_in[N_BCAST] = {0, 1, 2}, k_bcast_src[N_BCAST] = {1, 0, 1};

/* The program for dtype t on a mesh `mesh` (P devices) with group axes
 * `axes` and group size gs; bool takes only the gathers and broadcasts.
 * with_bcast adds the N_BCAST collective_broadcasts (the PJRT oracle runs
 * the program without them: the XLA CPU plugin has no collective-broadcast). */
static void program(ry_dtype t, const char *mesh, const char *axes, int gs, int with_bcast, char *buf, size_t size) {
  const char *T = ry_dtype_name(t);
  int num = t != RY_BOOL;
  size_t k = 0;
  k += (size_t)snprintf(buf + k, size - k, "func @main(%%a: %s[5,3], %%b: %s[7], %%c: %s[0,3], %%d: %s[3,4]) -> (", T, T, T, T);
  if (num)
    k += (size_t)snprintf(buf + k, size - k, "%s[5,3], %s[5,3], %s[5,3], %s[5,3], %s[7], %s[7], %s[0,3], %s[3,%d], %s[3,%d], ", T, T, T,
                          T, T, T, T, T, 4 / gs, T, 4 / gs);
  k += (size_t)snprintf(buf + k, size - k, "%s[%d,3], %s[5,%d], %s[0,%d]", T, 5 * gs, T, 3 * gs, T, 3 * gs);
  if (with_bcast) k += (size_t)snprintf(buf + k, size - k, ", %s[5,3], %s[7], %s[0,3]", T, T, T);
  k += (size_t)snprintf(buf + k, size - k, ") {\n");
  const char *attrs_fmt = "mesh=%s, axes=%s";
  char at[128];
  snprintf(at, sizeof at, attrs_fmt, mesh, axes);
  int o = 0;
  if (num) {
    static const char *const kinds[] = {"sum", "prod", "max", "min"};
    for (int i = 0; i < 4; i++, o++)
      k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[5,3] = all_reduce %%a {kind=%s, %s}\n", o, T, kinds[i], at);
    k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[7] = all_reduce %%b {kind=sum, %s}\n", o++, T, at);
    k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[7] = all_reduce %%b {kind=max, %s}\n", o++, T, at);
    k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[0,3] = all_reduce %%c {kind=sum, %s}\n", o++, T, at);
    k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[3,%d] = reduce_scatter %%d {dim=1, kind=sum, %s}\n", o++, T, 4 / gs, at);
    k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[3,%d] = reduce_scatter %%d {dim=1, kind=min, %s}\n", o++, T, 4 / gs, at);
  }
  k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[%d,3] = all_gather %%a {dim=0, %s}\n", o++, T, 5 * gs, at);
  k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[5,%d] = all_gather %%a {dim=1, %s}\n", o++, T, 3 * gs, at);
  k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s[0,%d] = all_gather %%c {dim=1, %s}\n", o++, T, 3 * gs, at);
  static const char *const bcast_t[N_BCAST] = {"[5,3]", "[7]", "[0,3]"};
  for (int i = 0; i < N_BCAST && with_bcast; i++)
    k += (size_t)snprintf(buf + k, size - k, "  %%%d: %s%s = collective_broadcast %%%c {source=%d, %s}\n", o++, T, bcast_t[i],
                          'a' + k_bcast_in[i], k_bcast_src[i], at);
  k += (size_t)snprintf(buf + k, size - k, "  return");
  for (int i = 0; i < o; i++) k += (size_t)snprintf(buf + k, size - k, i ? ", %%%d" : " %%%d", i);
  snprintf(buf + k, size - k, "\n}\n");
}

/* input k of rank r: values that differ by rank, with negatives, and for
 * floats fractions and (rank 1, element 4 of a) a NaN */
static ry_array *input(ry_dtype t, int r, int k) {
  ry_shape s = ry_shape_make(k_in_rank[k], k_in_dims[k]);
  int64_t n = ry_shape_numel(s);
  ry_type ty = {t, s};
  ry_array *a = NULL;
  if (ry__array_new(ty, &a)) return NULL;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = (i * 7 + r * 13 + k * 5) % 17 - 8;
    if (t == RY_BOOL) ry__store_i64(t, a->data, i, (i + r) % 3 == 0);
    else if (ry_dtype_is_float(t)) ry__store_f64(t, a->data, i, k == 0 && r == 1 && i == 4 ? NAN : (double)v * 0.375 + 0.1 * r);
    else ry__store_i64(t, a->data, i, ry_dtype_is_signed(t) ? v : v + 9);
  }
  return a;
}

/* An output file of ryft_mpi_check (raw elements) as an array of type t;
 * NULL (and a failure) if it is missing or short. */
static ry_array *read_raw(const char *path, ry_type t) {
  size_t len = 0;
  char *b = rt_read_file(path, &len);
  ry_array *a = NULL;
  if (!b || len != (size_t)ry_shape_numel(t.shape) * ry_dtype_size(t.dtype)) rt_fail(__FILE__, __LINE__, "%s: missing or short", path);
  else CHECK_OK(ry_array_from_host(t.dtype, t.shape, b, &a));
  free(b);
  return a;
}

/* Bitwise equality, NaN equal to NaN (any payload); element `skip` is not
 * compared (-1: none). */
static int same_but(const ry_array *a, const ry_array *b, int64_t skip) {
  if (!a || !b || !ry_type_equal(ry_array_type(a), ry_array_type(b))) return 0;
  ry_dtype t = ry_array_dtype(a);
  for (int64_t i = 0; i < ry_array_numel(a); i++) {
    if (i == skip) continue;
    if (ry_dtype_is_float(t)) {
      double x = ry_array_get_f64(a, i), y = ry_array_get_f64(b, i);
      if (!(x == y || (isnan(x) && isnan(y)))) return 0;
    } else if (ry_array_get_i64(a, i) != ry_array_get_i64(b, i)) return 0;
  }
  return 1;
}
static int same(const ry_array *a, const ry_array *b) { return same_but(a, b, -1); }

/* The rank of member `pos` of rank r's group (mesh and group axes as
 * "[2,2]" and "[1]"): r with its coordinates along the axes replaced by
 * pos's, row-major over the axes as listed. */
static int parse_ints(const char *s, int *v) {
  int n = 0;
  for (char *e; *s && n < 8;)
    if (*s >= '0' && *s <= '9') {
      v[n++] = (int)strtol(s, &e, 10);
      s = e;
    } else s++;
  return n;
}
static int member_rank(const char *mesh, const char *axes, int r, int pos) {
  int m[8], a[8], coord[8], nm = parse_ints(mesh, m), na = parse_ints(axes, a);
  for (int i = nm - 1, rest = r; i >= 0; i--) coord[i] = rest % m[i], rest /= m[i];
  for (int i = na - 1; i >= 0; i--) coord[a[i]] = pos % m[a[i]], pos /= m[a[i]];
  int dev = 0;
  for (int i = 0; i < nm; i++) dev = dev * m[i] + coord[i];
  return dev;
}

/* Run the program of every dtype under mpirun -np P and compare each
 * rank's interp and cpu outputs with the P-device PJRT run, and its
 * collective_broadcasts with the source rank's input. */
/* nan_ranks: bit r is set when rank r shares a group with rank 1 (whose
 * input a holds a NaN) */
static void check_collectives(int P, const char *mesh, const char *axes, int gs, int n_dtypes, unsigned nan_ranks) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s", rt_tmp_path("dist", "coll"));
  mkdir(dir, 0755);
  for (int di = 0; di < n_dtypes; di++) {
    ry_dtype t = k_dtypes[di];
    char name[64];
    snprintf(name, sizeof name, "%s %s axes %s", ry_dtype_name(t), mesh, axes);
    rt_case_begin(name);
    char text[4096], path[1300];
    program(t, mesh, axes, gs, 1, text, sizeof text);
    snprintf(path, sizeof path, "%s/prog.ryft", dir);
    rt_write_bytes(path, text, strlen(text));
    ry_graph *gb = NULL, *g = NULL;
    CHECK_OK(ry_graph_parse(text, -1, name, &gb));
    program(t, mesh, axes, gs, 0, text, sizeof text);
    CHECK_OK(ry_graph_parse(text, -1, name, &g));
    ry_array *in[4 * 16] = {0};
    for (int r = 0; r < P; r++)
      for (int k = 0; k < 4; k++) {
        in[r * 4 + k] = input(t, r, k);
        snprintf(path, sizeof path, "%s/in%d_%d.bin", dir, r, k);
        if (in[r * 4 + k]) rt_write_bytes(path, ry_array_data(in[r * 4 + k]), ry_array_nbytes(in[r * 4 + k]));
      }
    job j = run_mpi(P, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "run", dir, NULL});
    CHECK_MSG(j.status == 0, "mpirun -np %d: status %d\n%s%s", P, j.status, j.out ? j.out : "", j.err ? j.err : "");
    job_free(&j);
    int n_out = g ? ry_graph_num_outputs(g) : 0;
    ry_array *want[16 * 16] = {0};
#ifdef RYFT_HAVE_PJRT
    ry_pjrt_options o = {.plugin_path = pjrt_test_plugin(), .cpu_device_count = P};
    ry_pjrt_client *c = NULL;
    ry_pjrt_executable *e = NULL;
    CHECK_OK(ry_pjrt_client_create(&o, &c));
    if (c && g) CHECK_OK(ry_pjrt_compile(c, g, P, &e));
    if (e) CHECK_OK(ry_pjrt_execute_per_device(e, 4 * P, in, n_out * P, want));
    ry_pjrt_executable_free(e);
    ry_pjrt_client_free(c);
#else
    if (di == 0) rt_skip("pjrt", "no PJRT backend: the %d-device oracle is not built", P);
#endif
    for (int r = 0; r < P && g && gb; r++)
      for (int i = 0; i < n_out + N_BCAST; i++) {
        ry_array *got[2] = {0};
        static const char *const devs[] = {"interp", "cpu"};
        for (int d = 0; d < 2; d++) {
          snprintf(path, sizeof path, "%s/out%d_%s_%d.bin", dir, r, devs[d], i);
          got[d] = read_raw(path, ry_graph_output_type(gb, i));
          unlink(path);
        }
        if (i >= n_out) { /* collective_broadcast: the source's input, bit for bit */
          int b = i - n_out, src = member_rank(mesh, axes, r, k_bcast_src[b]);
          CHECK_MSG(same(got[0], got[1]), "rank %d broadcast %d: interp and cpu differ", r, b);
          CHECK_MSG(same(got[0], in[src * 4 + k_bcast_in[b]]), "rank %d broadcast %d: not rank %d's input %d", r, b, src,
                    k_bcast_in[b]);
          ry_array_release(got[0]);
          ry_array_release(got[1]);
          continue;
        }
        /* interp and cpu run the same kernels: the same bits */
        CHECK_MSG(same(got[0], got[1]), "rank %d output %d: interp and cpu differ", r, i);
        /* max and min of a NaN (element 4 of a on rank 1) are NaN in
         * ryft, as stablehlo.maximum/minimum and the interpreter say; the
         * XLA CPU plugin's all-reduce returns the other operand there, so
         * that element is checked apart */
        int64_t skip = -1;
        if (ry_dtype_is_float(t) && (i == 2 || i == 3) && got[0] && (nan_ranks >> r & 1)) {
          skip = 4;
          CHECK_MSG(isnan(ry_array_get_f64(got[0], 4)), "rank %d output %d: max/min with a NaN is not NaN", r, i);
        }
        if (want[r * n_out + i] && !same_but(got[0], want[r * n_out + i], skip)) {
          CHECK_MSG(0, "rank %d output %d: differs from the %d-device PJRT run", r, i, P);
          ry_array_print(got[0], stderr);
          ry_array_print(want[r * n_out + i], stderr);
        }
        ry_array_release(got[0]);
        ry_array_release(got[1]);
      }
    for (int i = 0; i < 16 * 16; i++) ry_array_release(want[i]);
    for (int i = 0; i < 4 * 16; i++) ry_array_release(in[i]);
    for (int r = 0; r < P; r++)
      for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/in%d_%d.bin", dir, r, k);
        unlink(path);
      }
    snprintf(path, sizeof path, "%s/prog.ryft", dir);
    unlink(path);
    ry_graph_release(g);
    ry_graph_release(gb);
    rt_case_end();
  }
  rmdir(dir);
}

TEST(dist_collectives_2_ranks) {
  check_collectives(2, "[2]", "[0]", 2, (int)(sizeof k_dtypes / sizeof k_dtypes[0]), 3);
}

/* 4 ranks on the 2 cores (oversubscribed, for correctness): groups along
 * either axis of a 2x2 mesh and over the whole mesh */
TEST(dist_collectives_4_ranks) {
  check_collectives(4, "[2,2]", "[1]", 2, 2, 0x3);
  check_collectives(4, "[2,2]", "[0]", 2, 1, 0xa);
  check_collectives(4, "[4]", "[0]", 4, 1, 0xf);
}

/* collective_broadcast differentiated under MPI, against JAX
 * (tests/data/gen_collective_broadcast.py): grad of the loss
 * sum(w * sin(cb(x))) on every rank, whose transpose sums the members'
 * cotangents on the source (source 1 of each group) and gives the others
 * zero; the forward value rides along as an auxiliary output. */
typedef struct bcast_case { ry_axes mesh, axes; } bcast_case;
static int f_bcast_loss(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  const bcast_case *c = ctx;
  ry_value y = ry_collective_broadcast(b, in[0], 1, c->mesh, c->axes);
  out[0] = ry_sum(b, ry_mul(b, in[1], ry_sin(b, y)), RY_AXES(0));
  out[1] = y;
  return 2;
}

/* row `tag` of device d of case `name` in the golden file */
static int golden_row(const char *text, const char *name, char tag, int d, double v[3]) {
  char key[32];
  snprintf(key, sizeof key, "\n%s %c %d ", name, tag, d);
  const char *p = text ? strstr(text, key) : NULL;
  if (!p) return 0;
  p += strlen(key);
  for (int i = 0; i < 3; i++) v[i] = strtod(p, (char **)&p);
  return 1;
}

static void check_bcast_grad(const char *name, int P, bcast_case c) {
  char path[1300], dir[1100];
  snprintf(path, sizeof path, "%s/tests/data/collective_broadcast.txt", rt_source_dir());
  char *gold = rt_read_file(path, NULL);
  CHECK_MSG(gold != NULL, "%s: missing (run tests/data/gen_collective_broadcast.py)", path);
  snprintf(dir, sizeof dir, "%s", rt_tmp_path("dist", "bgrad"));
  mkdir(dir, 0755);
  ry_type t[2] = {{RY_F64, RY_SHAPE(3)}, {RY_F64, RY_SHAPE(3)}};
  ry_graph *f = NULL, *g = NULL;
  ry_grad_opts o = {.n_argnums = 1, .argnums = (const int[]){0}, .has_aux = 1};
  CHECK_OK(ry_trace("bcast_loss", f_bcast_loss, &c, 2, t, NULL, &f));
  if (f) CHECK_OK(ry_grad(f, &o, &g));
  snprintf(path, sizeof path, "%s/prog.ryft", dir);
  FILE *pf = fopen(path, "w");
  CHECK(pf != NULL);
  if (pf && g) CHECK_OK(ry_graph_print(g, pf));
  if (pf) fclose(pf);
  for (int r = 0; r < P; r++)
    for (int k = 0; k < 2; k++) {
      double v[3] = {0};
      CHECK_MSG(golden_row(gold, name, "xw"[k], r, v), "%s: no row %s %c %d", "collective_broadcast.txt", name, "xw"[k], r);
      snprintf(path, sizeof path, "%s/in%d_%d.bin", dir, r, k);
      rt_write_bytes(path, v, sizeof v);
    }
  job j = run_mpi(P, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "run", dir, NULL});
  EXPECT_OK(j, "mpirun");
  job_free(&j);
  for (int r = 0; r < P && g; r++)
    for (int i = 0; i < 2; i++) {
      double want[3] = {0};
      CHECK(golden_row(gold, name, "gy"[i], r, want));
      for (int d = 0; d < 2; d++) {
        snprintf(path, sizeof path, "%s/out%d_%s_%d.bin", dir, r, d ? "cpu" : "interp", i);
        ry_array *got = read_raw(path, t[0]);
        unlink(path);
        for (int e = 0; got && e < 3; e++)
          CHECK_MSG(fabs(ry_array_get_f64(got, e) - want[e]) <= 1e-12, "%s rank %d %s %s[%d] = %.17g, JAX %.17g", name, r,
                    d ? "cpu" : "interp", i ? "y" : "grad", e, ry_array_get_f64(got, e), want[e]);
        ry_array_release(got);
      }
    }
  for (int r = 0; r < P; r++)
    for (int k = 0; k < 2; k++) {
      snprintf(path, sizeof path, "%s/in%d_%d.bin", dir, r, k);
      unlink(path);
    }
  snprintf(path, sizeof path, "%s/prog.ryft", dir);
  unlink(path);
  rmdir(dir);
  ry_graph_release(g);
  ry_graph_release(f);
  free(gold);
}

TEST(dist_collective_broadcast_grad_2_ranks) { check_bcast_grad("p2", 2, (bcast_case){RY_AXES(2), RY_AXES(0)}); }
TEST(dist_collective_broadcast_grad_4_ranks) { check_bcast_grad("p4", 4, (bcast_case){RY_AXES(2, 2), RY_AXES(1)}); }

/* The key-value store across 2 ranks (ryft_mpi_check kv): a get that waits
 * for the other rank's put, an overwrite seen by the other rank, an empty
 * value, and a missing key that ends in an error naming it on each rank. */
TEST(dist_kv_store_2_ranks) {
  job j = run_mpi(2, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "kv", NULL});
  EXPECT_OK(j, "mpirun kv");
  for (int r = 0; r < 2; r++) {
    char want[128];
    snprintf(want, sizeof want, "rank %d: ry_dist_kv_get: key 'k/missing' was not set within 200 ms (rank %d of 2)", r, r);
    CHECK_MSG(j.out && strstr(j.out, want), "want '%s' in\n%s", want, j.out ? j.out : "");
  }
  job_free(&j);
}

/* a mesh that is not one device per process: every rank says so (no rank
 * waits for another) */
TEST(dist_mesh_must_match_the_ranks) {
  char dir[1100], path[1300];
  snprintf(dir, sizeof dir, "%s", rt_tmp_path("dist", "mesh"));
  mkdir(dir, 0755);
  const char *prog = "func @main(%x: f32[4]) -> (f32[4]) {\n  %0: f32[4] = all_reduce %x {kind=sum, mesh=[4], axes=[0]}\n  return %0\n}\n";
  snprintf(path, sizeof path, "%s/prog.ryft", dir);
  rt_write_bytes(path, prog, strlen(prog));
  float x[4] = {1, 2, 3, 4};
  for (int r = 0; r < 2; r++) {
    snprintf(path, sizeof path, "%s/in%d_0.bin", dir, r);
    rt_write_bytes(path, x, sizeof x);
  }
  job j = run_mpi(2, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "run", dir, NULL});
  CHECK(j.status != 0);
  for (int r = 0; r < 2; r++) {
    char want[64];
    snprintf(want, sizeof want, "rank %d: interp: ", r);
    const char *e = j.err ? strstr(j.err, want) : NULL;
    CHECK_MSG(e && strstr(e, "all_reduce: a mesh of 4 devices in a job of 2 processes"), "stderr:\n%s", j.err ? j.err : "");
  }
  job_free(&j);
  for (int r = 0; r < 2; r++) {
    snprintf(path, sizeof path, "%s/in%d_0.bin", dir, r);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/prog.ryft", dir);
  unlink(path);
  rmdir(dir);
}

/* a rank killed mid-run: mpirun ends the job and names it */
TEST(dist_rank_killed) {
  job j = run_mpi(2, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "die", "20", "kill", NULL});
  CHECK_MSG(j.status > 0, "the job did not end with an error (status %d)", j.status);
  CHECK_MSG(j.err && strstr(j.err, "rank 1") && strstr(j.err, "signal 9"), "stderr:\n%s", j.err ? j.err : "");
  job_free(&j);
}

/* a rank that stops answering (a hung process, an unreachable host): the
 * other rank's collective fails after RYFT_DIST_TIMEOUT with a message that
 * names the rank, and ending the job takes the stopped rank down too */
TEST(dist_rank_stopped) {
  job j = run_mpi(2, "RYFT_DIST_TIMEOUT=2", 120, (const char *const[]){RYFT_MPI_CHECK, "die", "20", "stop", NULL});
  CHECK_MSG(j.status > 0, "the job did not end with an error (status %d)", j.status);
  CHECK_MSG(j.err && strstr(j.err, "rank 0 of 2: no answer from rank 1 within 2 s"), "stderr:\n%s", j.err ? j.err : "");
  CHECK_MSG(j.err && strstr(j.err, "ending the job on every rank"), "stderr:\n%s", j.err ? j.err : "");
  job_free(&j);
}

/* The store's server (rank 0) stopped: a get on rank 1 fails within the
 * job's timeout naming rank 0, and the job ends (never a hang), even though
 * the get itself would wait 60 s for its key. */
TEST(dist_kv_server_stopped) {
  job j = run_mpi(2, "RYFT_DIST_TIMEOUT=2", 120, (const char *const[]){RYFT_MPI_CHECK, "kv-stopped", NULL});
  CHECK_MSG(j.status > 0, "the job did not end with an error (status %d)", j.status);
  CHECK_MSG(j.err && strstr(j.err, "ry_dist_kv_get on rank 1 of 2: no answer from rank 0, which serves the key-value store, within 2 s"),
            "stderr:\n%s", j.err ? j.err : "");
  job_free(&j);
}

/* A PJRT client created under mpirun gets node_id = rank, num_nodes = size
 * and the key-value callbacks over the job's store: the multi-node fake
 * plugin (tests/pjrt_fake_plugin.c, as a GPU plugin would) puts its key and
 * waits for the other node's through them. The XLA CPU plugin ignores the
 * options and callbacks and makes its one device as before. (GPU plugins
 * are not tested here: there is no GPU.) */
TEST(dist_pjrt_client_options_2_ranks) {
#ifndef RYFT_HAVE_PJRT
  rt_skip("pjrt", "no PJRT backend");
#else
  job j = run_mpi(2, "RYFT_FAKE_PJRT_KV=1", 120, (const char *const[]){RYFT_MPI_CHECK, "pjrt-kv", RYFT_PJRT_FAKE_PLUGIN, NULL});
  EXPECT_OK(j, "ryft_mpi_check pjrt-kv (fake multi-node plugin)");
  for (int r = 0; r < 2; r++) {
    char want[96];
    snprintf(want, sizeof want, "rank %d: platform fake node %d of 2 saw 0 1, 0 devices", r, r);
    CHECK_MSG(j.out && strstr(j.out, want), "want '%s' in\n%s", want, j.out ? j.out : "");
  }
  job_free(&j);
  j = run_mpi(2, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "pjrt-kv", pjrt_test_plugin(), NULL});
  EXPECT_OK(j, "ryft_mpi_check pjrt-kv (XLA CPU plugin)");
  for (int r = 0; r < 2; r++) {
    char want[64];
    snprintf(want, sizeof want, "rank %d: platform cpu, ", r);
    CHECK_MSG(j.out && strstr(j.out, want), "want '%s' in\n%s", want, j.out ? j.out : "");
  }
  job_free(&j);
#endif
}

/* PJRT under MPI: each rank drives its own one-device PJRT client, and the
 * values cross the processes between programs (ry_dist_all_reduce,
 * ry_dist_broadcast) */
TEST(dist_pjrt_between_programs) {
#ifndef RYFT_HAVE_PJRT
  rt_skip("pjrt", "no PJRT backend");
#else
  char dir[1100], path[1300];
  snprintf(dir, sizeof dir, "%s", rt_tmp_path("dist", "pjrt"));
  mkdir(dir, 0755);
  float x[2][15];
  for (int r = 0; r < 2; r++) {
    for (int i = 0; i < 15; i++) x[r][i] = (float)((i * 7 + r * 13) % 17 - 8) * 0.3f + 0.1f * (float)r;
    snprintf(path, sizeof path, "%s/in%d_0.bin", dir, r);
    rt_write_bytes(path, x[r], sizeof x[r]);
  }
  job j = run_mpi(2, NULL, 120, (const char *const[]){RYFT_MPI_CHECK, "pjrt", pjrt_test_plugin(), dir, NULL});
  EXPECT_OK(j, "ryft_mpi_check pjrt");
  job_free(&j);
  for (int r = 0; r < 2; r++) {
    snprintf(path, sizeof path, "%s/pjrt%d_sum.bin", dir, r);
    ry_array *sum = read_raw(path, (ry_type){RY_F32, RY_SHAPE(5, 3)});
    unlink(path);
    snprintf(path, sizeof path, "%s/pjrt%d_bcast.bin", dir, r);
    ry_array *bc = read_raw(path, (ry_type){RY_F32, RY_SHAPE(5, 3)});
    unlink(path);
    for (int i = 0; i < 15 && sum && bc; i++) {
      float want = x[0][i] * x[0][i] + x[1][i] * x[1][i];
      CHECK_MSG(ry_array_get_f64(sum, i) == (double)want, "rank %d element %d: sum %g, want %g", r, i, ry_array_get_f64(sum, i),
                (double)want);
      CHECK_MSG(ry_array_get_f64(bc, i) == (double)x[1][i], "rank %d element %d: broadcast of rank 1", r, i);
    }
    ry_array_release(sum);
    ry_array_release(bc);
  }
  for (int r = 0; r < 2; r++) {
    snprintf(path, sizeof path, "%s/in%d_0.bin", dir, r);
    unlink(path);
  }
  rmdir(dir);
#endif
}

/* ---- data-parallel `ryft train` ---- */

#define TRAIN_ARGS "train", "--model", "mlp", "--batch", "32", "--limit-train", "256", "--limit-test", "64", "--no-plot", "--seed", "3"

static const char *train_dir(void) {
  static char d[1000];
  if (!d[0]) {
    snprintf(d, sizeof d, "%s", rt_tmp_path("dist", "train"));
    mkdir(d, 0755);
    char data[1200];
    snprintf(data, sizeof data, "%s/data", d);
    write_dataset(data, 300, 70);
  }
  return d;
}

/* `ryft train TRAIN_ARGS extra...` with --data and --out DIR/out, on np
 * ranks (0: a plain process) */
static job train(int np, const char *out, const char *const *extra) {
  char data[1200], outd[1200];
  snprintf(data, sizeof data, "%s/data", train_dir());
  snprintf(outd, sizeof outd, "%s/%s", train_dir(), out);
  const char *args[40] = {RYFT_CLI, TRAIN_ARGS, "--data", data, "--out", outd};
  int k = 0;
  while (args[k]) k++;
  for (int i = 0; extra && extra[i] && k < 38; i++) args[k++] = extra[i];
  args[k] = NULL;
  if (np > 0) return run_mpi(np, NULL, 300, args);
  const char *outp = rt_tmp_path("dist", "stdout"), *errp = rt_tmp_path("dist", "stderr");
  return finish(start(RYFT_CLI, args, NULL, outp, errp), 300, outp, errp);
}

static ry_params *ckpt(const char *out) {
  char p[1300];
  snprintf(p, sizeof p, "%s/%s/checkpoint.safetensors", train_dir(), out);
  ry_params *r = NULL;
  CHECK_OK(ry_safetensors_read(p, &r));
  return r;
}

/* The parameters of two checkpoints agree to rel of the largest magnitude
 * of each parameter. Data-parallel steps sum each gradient's batch rows in
 * two parts (one per rank) and then add them, where one process sums all
 * rows at once: a different floating-point order, so gradients differ in
 * their last bits and Adam's normalized updates carry that on. */
static void check_close(const char *a, const char *b, double rel) {
  ry_params *pa = ckpt(a), *pb = ckpt(b);
  int n = 0;
  for (int i = 0; pa && pb && i < ry_params_count(pa); i++) {
    const char *path = ry_params_path(pa, i);
    if (strncmp(path, "params/", 7) != 0) continue;
    n++;
    ry_array *x = ry_params_at(pa, i), *y = ry_params_get(pb, path);
    CHECK_MSG(y && ry_array_numel(x) == ry_array_numel(y), "%s: %s missing or of another size in %s", a, path, b);
    if (!y || ry_array_numel(x) != ry_array_numel(y)) continue;
    double mx = 0, md = 0;
    for (int64_t k = 0; k < ry_array_numel(x); k++) {
      double u = ry_array_get_f64(x, k), v = ry_array_get_f64(y, k);
      mx = fmax(mx, fabs(u));
      md = fmax(md, fabs(u - v));
    }
    CHECK_MSG(md <= rel * mx, "%s vs %s: %s differs by %g (largest magnitude %g)", a, b, path, md, mx);
  }
  CHECK_MSG(n >= 6, "%s: %d parameters", a, n);
  ry_params_free(pa);
  ry_params_free(pb);
}


TEST(dist_train_matches_one_process) {
  job j = train(0, "one", (const char *const[]){"--epochs", "2", NULL});
  EXPECT_OK(j, "one process");
  job_free(&j);
  j = train(2, "two", (const char *const[]){"--epochs", "2", NULL});
  EXPECT_OK(j, "2 ranks");
  /* rank 0 alone prints */
  const char *line = "data-parallel over 2 MPI ranks: 16 rows of each batch per rank";
  CHECK_MSG(j.out && strstr(j.out, line) && !strstr(strstr(j.out, line) + 1, line), "stdout:\n%s", j.out ? j.out : "");
  CHECK(j.out && strstr(j.out, "communication:"));
  job_free(&j);
  check_close("one", "two", 1e-3);
  /* 4 ranks on 2 cores (oversubscribed): correctness only */
  j = train(4, "four", (const char *const[]){"--epochs", "2", NULL});
  EXPECT_OK(j, "4 ranks");
  job_free(&j);
  check_close("one", "four", 1e-3);
  /* a batch the ranks cannot split */
  j = train(3, "three", (const char *const[]){"--epochs", "1", NULL});
  CHECK(j.status != 0);
  CHECK_MSG(j.err && strstr(j.err, "--batch 32 cannot be split over 3 ranks (make it a multiple of 3)"), "stderr:\n%s",
            j.err ? j.err : "");
  job_free(&j);
}

/* the checkpoint does not depend on the rank count: 1 epoch on 2 ranks
 * resumed in one process, and 1 epoch in one process resumed on 2 ranks */
TEST(dist_train_resume_with_another_rank_count) {
  job j = train(0, "ref", (const char *const[]){"--epochs", "2", NULL});
  EXPECT_OK(j, "one process");
  job_free(&j);
  char ck[1300];
  snprintf(ck, sizeof ck, "%s/a/checkpoint.safetensors", train_dir());
  j = train(2, "a", (const char *const[]){"--epochs", "2", "--stop-after", "1", NULL});
  EXPECT_OK(j, "2 ranks, epoch 1");
  job_free(&j);
  j = train(0, "a", (const char *const[]){"--epochs", "2", "--resume", ck, NULL});
  EXPECT_OK(j, "resumed in one process");
  CHECK(j.out && strstr(j.out, "resuming from"));
  job_free(&j);
  check_close("ref", "a", 1e-3);
  snprintf(ck, sizeof ck, "%s/b/checkpoint.safetensors", train_dir());
  j = train(0, "b", (const char *const[]){"--epochs", "2", "--stop-after", "1", NULL});
  EXPECT_OK(j, "one process, epoch 1");
  job_free(&j);
  j = train(2, "b", (const char *const[]){"--epochs", "2", "--resume", ck, NULL});
  EXPECT_OK(j, "resumed on 2 ranks");
  job_free(&j);
  check_close("ref", "b", 1e-3);
}

/* a /proc file (its size is not known in advance) into buf, NUL-terminated;
 * the byte count */
static size_t read_proc(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t n = 0;
  if (fd < 0) return 0;
  for (ssize_t got; n + 1 < size && (got = read(fd, buf + n, size - n - 1)) > 0;) n += (size_t)got;
  close(fd);
  buf[n] = 0;
  return n;
}

/* pid of the process under mpirun `parent` that is rank `rank`, or -1 */
static pid_t find_rank(pid_t parent, int rank) {
  char want[64];
  snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
  DIR *d = opendir("/proc");
  if (!d) return -1;
  pid_t found = -1;
  for (struct dirent *de; found < 0 && (de = readdir(d));) {
    pid_t p = (pid_t)atoi(de->d_name);
    if (p <= 1) continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)p);
    static char env[65536];
    size_t len = read_proc(path, env, sizeof env);
    int hit = 0;
    for (size_t o = 0; o < len; o += strlen(env + o) + 1)
      if (strcmp(env + o, want) == 0) hit = 1;
    if (!hit) continue;
    /* a child of this mpirun */
    char st[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    read_proc(path, st, sizeof st);
    int ppid = 0;
    const char *rp = strrchr(st, ')');
    if (rp) sscanf(rp + 2, "%*c %d", &ppid);
    if (ppid == parent) found = p;
  }
  closedir(d);
  return found;
}

/* one rank killed mid-training: the job ends with an error naming it, the
 * last checkpoint is intact and a run resumed from it continues */
TEST(dist_train_rank_killed_then_resumed) {
  char data[1200], outd[1200], ck[1300];
  snprintf(data, sizeof data, "%s/data", train_dir());
  snprintf(outd, sizeof outd, "%s/k", train_dir());
  snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", outd);
  const char *args[40] = {RYFT_CLI, TRAIN_ARGS, "--epochs", "1000", "--data", data, "--out", outd, NULL}, *argv[48];
  char npb[16];
  mpi_argv(2, args, argv, npb);
  const char *outp = rt_tmp_path("dist", "kout"), *errp = rt_tmp_path("dist", "kerr");
  pid_t pid = start(RYFT_MPIEXEC, argv, k_mpi_env, outp, errp);
  /* wait for the first checkpoint, then kill rank 1 */
  pid_t victim = -1;
  for (int i = 0; i < 3000 && pid > 0; i++) {
    if (access(ck, R_OK) == 0 && (victim = find_rank(pid, 1)) > 0) break;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  CHECK_MSG(victim > 0, "no checkpoint or no rank 1 process");
  if (victim > 0) kill(victim, SIGKILL);
  job j = finish(pid, 120, outp, errp);
  CHECK_MSG(j.status > 0, "the job did not end with an error (status %d)", j.status);
  CHECK_MSG(j.err && strstr(j.err, "rank 1") && strstr(j.err, "signal 9"), "stderr:\n%s", j.err ? j.err : "");
  job_free(&j);
  char *ep = NULL;
  CHECK_OK(ry_safetensors_metadata(ck, "epoch", &ep));
  long k = ep ? atol(ep) : 0;
  ry_free(ep);
  CHECK_MSG(k >= 1 && k < 1000, "checkpoint epoch %ld", k);
  char stop[32], resumed[64];
  snprintf(stop, sizeof stop, "%ld", k + 1);
  snprintf(resumed, sizeof resumed, "after epoch %ld", k);
  j = train(0, "k", (const char *const[]){"--epochs", "1000", "--stop-after", stop, "--resume", ck, NULL});
  EXPECT_OK(j, "resumed after the kill");
  CHECK_MSG(j.out && strstr(j.out, resumed), "stdout:\n%s", j.out ? j.out : "");
  job_free(&j);
  ep = NULL;
  CHECK_OK(ry_safetensors_metadata(ck, "epoch", &ep));
  CHECK(ep && atol(ep) == k + 1);
  ry_free(ep);
}

/* `mpirun -np 2 ryft train-lm` against one process, same global batch: the
 * same losses to the printed digits and weights within 1e-3 of each
 * tensor's largest magnitude (the two halves of a batch are summed apart,
 * then added: another order, and Adam carries the last bits on); in f32,
 * since bf16 products round each rank's partial gradient to bf16 apart */
static ry_params *read_st(const char *path) {
  ry_params *p = NULL;
  CHECK_OK(ry_safetensors_read(path, &p));
  return p;
}

TEST(dist_train_lm_matches_one_process) {
  char corpus[1200]; /* rt_tmp_path's buffer is reused */
  snprintf(corpus, sizeof corpus, "%s", write_corpus("dist_corpus.txt", 200));
  char tok[1200], one[1300], two[1300], p1[1400], p2[1400];
  snprintf(tok, sizeof tok, "%s/tests/data/tokenizer/tiny_bpe_smollm.gguf", rt_source_dir());
  snprintf(one, sizeof one, "%s/lm_one", train_dir());
  snprintf(two, sizeof two, "%s/lm_two", train_dir());
#define LM_DIST_ARGS(out)                                                                                                   \
  RYFT_CLI, "train-lm", "--tokenizer", tok, "--layers", "2", "--embd", "32", "--heads", "2", "--ctx", "16", "--batch", "4", \
      "--eval-batches", "1", "--steps", "6", "--eval-every", "3", "--seed", "5", "--precision", "f32", "--no-plot", "--data", \
      corpus, "--out", out
  const char *a1[] = {LM_DIST_ARGS(one), NULL}, *a2[] = {LM_DIST_ARGS(two), NULL};
  const char *outp = rt_tmp_path("dist", "stdout"), *errp = rt_tmp_path("dist", "stderr");
  job j = finish(start(RYFT_CLI, a1, NULL, outp, errp), 300, outp, errp);
  EXPECT_OK(j, "train-lm, one process");
  const char *done = j.out ? strstr(j.out, "step 6/6: train loss") : NULL;
  char want[64] = "";
  if (done) snprintf(want, sizeof want, "%.50s", done);
  job_free(&j);
  j = run_mpi(2, NULL, 300, a2);
  EXPECT_OK(j, "train-lm, 2 ranks");
  const char *line = "data-parallel over 2 MPI ranks: 2 sequences of each batch per rank";
  CHECK_MSG(j.out && strstr(j.out, line) && !strstr(strstr(j.out, line) + 1, line), "stdout:\n%s", j.out ? j.out : "");
  CHECK_MSG(want[0] && j.out && strstr(j.out, want), "one process printed '%s'; 2 ranks:\n%s", want, j.out ? j.out : "");
  job_free(&j);
  snprintf(p1, sizeof p1, "%s/model.safetensors", one);
  snprintf(p2, sizeof p2, "%s/model.safetensors", two);
  ry_params *w1 = read_st(p1), *w2 = read_st(p2);
  CHECK(w1 && w2 && ry_params_count(w1) == ry_params_count(w2) && ry_params_count(w1) >= 20);
  for (int i = 0; w1 && w2 && i < ry_params_count(w1); i++) {
    ry_array *x = ry_params_at(w1, i), *y = ry_params_get(w2, ry_params_path(w1, i));
    CHECK(y && ry_array_numel(y) == ry_array_numel(x));
    double mx = 0, md = 0;
    for (int64_t k = 0; y && k < ry_array_numel(x); k++) {
      double u = ry_array_get_f64(x, k), v = ry_array_get_f64(y, k);
      mx = fmax(mx, fabs(u));
      md = fmax(md, fabs(u - v));
    }
    CHECK_MSG(md <= 1e-3 * mx, "%s differs by %g (largest magnitude %g)", ry_params_path(w1, i), md, mx);
  }
  ry_params_free(w1);
  ry_params_free(w2);
  /* a batch the ranks cannot split */
  const char *a3[] = {LM_DIST_ARGS(two), "--batch", "3", NULL};
  j = run_mpi(2, NULL, 300, a3);
  CHECK(j.status != 0);
  CHECK_MSG(j.err && strstr(j.err, "--batch 3 cannot be split over 2 ranks"), "stderr:\n%s", j.err ? j.err : "");
  job_free(&j);
#undef LM_DIST_ARGS
}

/* the README's example (examples/data_parallel.c) on 2 ranks */
TEST(dist_readme_example_runs) {
  job j = run_mpi(2, NULL, 120, (const char *const[]){RYFT_BINARY_DIR "/example_data_parallel", NULL});
  EXPECT_OK(j, "example_data_parallel");
  CHECK_MSG(j.out && strstr(j.out, "2 ranks: w = (3.000, -2.000)"), "stdout:\n%s", j.out ? j.out : "");
  job_free(&j);
}

/* ---- two hosts ---- */

static int sh_ok(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int sh_ok(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd) == 0;
}

static long long veth_tx_bytes(int h) {
  char cmd[2400], out[1100];
  snprintf(out, sizeof out, "%s", rt_tmp_path("dist", "tx"));
  snprintf(cmd, sizeof cmd, "%s netns exec %s cat /sys/class/net/%s/statistics/tx_bytes > %s 2>/dev/null", g_ip, g_hosts.ns[h],
           g_hosts.veth[h], out);
  long long v = -1;
  if (system(cmd) == 0) {
    char *t = rt_read_file(out, NULL);
    if (t) v = atoll(t);
    free(t);
  }
  unlink(out);
  return v;
}

/* Two hosts simulated by two network namespaces joined by a veth pair
 * (10.77.0.1 and .2): mpirun in the first starts one rank in each through
 * an rsh agent that enters the namespace, MPI may use only TCP over the
 * veth (btl tcp,self: no shared memory), and the collectives of every
 * dtype give the multi-device results as before. Needs root and network
 * namespaces (prerequisite "netns"). */
TEST(dist_two_hosts_over_tcp) {
  if (access(g_ip, X_OK) != 0) g_ip = "/sbin/ip";
  if (access(g_ip, X_OK) != 0) {
    rt_skip("netns", "no ip command (iproute2)");
    return;
  }
  int pid = (int)getpid();
  for (int h = 0; h < 2; h++) {
    snprintf(g_hosts.ns[h], sizeof g_hosts.ns[h], "ryft%d_h%d", pid, h);
    snprintf(g_hosts.veth[h], sizeof g_hosts.veth[h], "rv%d%c", pid % 1000000, 'a' + h);
  }
  int ok = sh_ok("%s netns add %s 2>/dev/null && %s netns add %s", g_ip, g_hosts.ns[0], g_ip, g_hosts.ns[1]);
  ok = ok && sh_ok("%s link add %s type veth peer name %s && %s link set %s netns %s && %s link set %s netns %s", g_ip,
                   g_hosts.veth[0], g_hosts.veth[1], g_ip, g_hosts.veth[0], g_hosts.ns[0], g_ip, g_hosts.veth[1], g_hosts.ns[1]);
  for (int h = 0; h < 2 && ok; h++)
    ok = sh_ok("%s -n %s addr add 10.77.0.%d/24 dev %s && %s -n %s link set %s up && %s -n %s link set lo up", g_ip,
               g_hosts.ns[h], h + 1, g_hosts.veth[h], g_ip, g_hosts.ns[h], g_hosts.veth[h], g_ip, g_hosts.ns[h]);
  if (!ok) {
    sh_ok("%s netns del %s 2>/dev/null; %s netns del %s 2>/dev/null; true", g_ip, g_hosts.ns[0], g_ip, g_hosts.ns[1]);
    rt_skip("netns", "network namespaces or veth pairs are not permitted here (needs root / CAP_NET_ADMIN)");
    return;
  }
  /* the rsh agent: "host" h<i> is namespace ns_h<i>, with its own hostname */
  snprintf(g_hosts.agent, sizeof g_hosts.agent, "%s", rt_tmp_path("dist", "agent.sh"));
  snprintf(g_hosts.hostfile, sizeof g_hosts.hostfile, "%s", rt_tmp_path("dist", "hosts"));
  char script[1024];
  snprintf(script, sizeof script,
           "#!/bin/sh\n# mpirun's rsh agent for the test: host $1 is a network namespace\nhost=$1; shift\n"
           "exec %s netns exec ryft%d_$host unshare --uts sh -c \"hostname $host && $*\"\n",
           g_ip, pid);
  rt_write_bytes(g_hosts.agent, script, strlen(script));
  chmod(g_hosts.agent, 0755);
  rt_write_bytes(g_hosts.hostfile, "h0 slots=1\nh1 slots=1\n", 22);
  g_hosts.on = 1;
  long long tx0 = veth_tx_bytes(0);
  check_collectives(2, "[2]", "[0]", 2, (int)(sizeof k_dtypes / sizeof k_dtypes[0]), 3);
  long long tx1 = veth_tx_bytes(0);
  g_hosts.on = 0;
  /* the ranks' bytes went over the veth pair: at least every rank's
   * inputs of all the dtypes once */
  CHECK_MSG(tx0 >= 0 && tx1 - tx0 > 11 * 4 * 40, "veth %s sent %lld bytes", g_hosts.veth[0], tx1 - tx0);
  unlink(g_hosts.agent);
  unlink(g_hosts.hostfile);
  CHECK(sh_ok("%s netns del %s && %s netns del %s", g_ip, g_hosts.ns[0], g_ip, g_hosts.ns[1]));
}
#else
TEST(dist_collectives_2_ranks) { rt_skip("mpi", "ryft was built without MPI (install libopenmpi-dev, -DRYFT_MPI=ON)"); }
#endif
