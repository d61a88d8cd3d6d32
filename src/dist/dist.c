/* ryft/dist.h over MPI (Open MPI or MPICH), or its stand-in in a build
 * without MPI, where ry_dist_init says so and the job is one process.
 *
 * The collectives talk point to point (MPI_Isend / MPI_Irecv among the
 * members of a group, completed with MPI_Test polling) rather than through
 * MPI's own reductions: ryft combines the values itself in a fixed member
 * order (deterministic on every run, the same as the single-process
 * multi-device run), and polling gives every wait a deadline, so a rank
 * that died or a host that cannot be reached ends in an error instead of a
 * hang. MPI calls are serialized by one mutex (MPI_THREAD_SERIALIZED),
 * taken around each call rather than across a whole wait, so rank 0's
 * key-value service thread (kv.c) answers while a collective waits. */
#include "dist.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0, g_size = 1;
static bool g_init = false;
static double g_comm_s = 0;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

void rydist_lock(void) { pthread_mutex_lock(&g_mu); }
void rydist_unlock(void) { pthread_mutex_unlock(&g_mu); }

double rydist_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double rydist_timeout(void) {
  const char *e = getenv("RYFT_DIST_TIMEOUT");
  double v = e ? atof(e) : 0;
  return v > 0 ? v : 60.0;
}

int ry_dist_rank(void) { return g_rank; }
int ry_dist_size(void) { return g_size; }
bool rydist_active(void) { return g_init && g_size > 1; }

double ry_dist_comm_seconds(void) {
  pthread_mutex_lock(&g_mu);
  double s = g_comm_s;
  pthread_mutex_unlock(&g_mu);
  return s;
}

int ry_dist_launched(void) {
  static const char *const k[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    const char *e = getenv(k[i]);
    if (e && atoi(e) > 1) return 1;
  }
  return 0;
}

ry_status ry_dist_shard_rows(const ry_array *global, ry_array **local) {
  if (!local) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_shard_rows: local is NULL");
  *local = NULL;
  if (!global) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_shard_rows: global is NULL");
  ry_type t = global->type;
  if (t.shape.rank < 1) return ry__err(RY_ERR_SHAPE, "ry_dist_shard_rows: a scalar has no rows to split over %d ranks", g_size);
  int64_t b = t.shape.dims[0];
  if (b % g_size)
    return ry__err(RY_ERR_SHAPE, "ry_dist_shard_rows: %lld rows cannot be split evenly over %d ranks (make the global batch a multiple of %d)",
                   (long long)b, g_size, g_size);
  ry_status s = ry__array_sync(global);
  if (s) return s;
  size_t row = b ? global->nbytes / (size_t)b : 0;
  ry_type lt = t;
  lt.shape.dims[0] = b / g_size;
  ry_array *o = NULL;
  if ((s = ry__array_new_uninit(lt, &o))) return s;
  if (o->nbytes) memcpy(o->data, (const char *)global->data + (size_t)(g_rank * (b / g_size)) * row, o->nbytes);
  *local = o;
  return NULL;
}

#ifdef RYFT_HAVE_MPI
#include <mpi.h>

static bool g_broken = false; /* a collective failed: the job cannot go on */
/* one exchange at a time (their messages share a tag), held across its wait */
static pthread_mutex_t g_xmu = PTHREAD_MUTEX_INITIALIZER;

void rydist_set_broken(void) {
  pthread_mutex_lock(&g_mu);
  g_broken = true;
  pthread_mutex_unlock(&g_mu);
}

static ry_status mpi_err(int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
  return ry__err(RY_ERR_IO, "ry_dist: %s on rank %d of %d: MPI: %s", what, g_rank, g_size, msg);
}

ry_status ry_dist_init(int *argc, char ***argv) {
  int done = 0;
  MPI_Finalized(&done);
  if (done) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_init: MPI was already finalized in this process (ry_dist_finalize)");
  pthread_mutex_lock(&g_mu);
  if (g_init) {
    pthread_mutex_unlock(&g_mu);
    return NULL;
  }
  int inited = 0, provided = 0, rc = MPI_SUCCESS;
  MPI_Initialized(&inited);
  if (!inited) rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  if (rc == MPI_SUCCESS) {
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_init = true;
  }
  pthread_mutex_unlock(&g_mu);
  if (rc != MPI_SUCCESS) return mpi_err(rc, "MPI_Init_thread");
  if (!inited && provided < MPI_THREAD_SERIALIZED)
    return ry__err(RY_ERR_UNSUPPORTED, "ry_dist_init: this MPI library gives thread level %d, ryft needs MPI_THREAD_SERIALIZED", provided);
  return rydist_kv_start();
}

ry_status ry_dist_finalize(void) {
  pthread_mutex_lock(&g_mu);
  bool was = g_init, broken = g_broken;
  g_init = false;
  pthread_mutex_unlock(&g_mu);
  rydist_kv_stop(was && !broken); /* outside a job: just empties the store */
  if (!was) return NULL;
  if (broken) {
    fprintf(stderr, "ryft: rank %d of %d: a collective failed; ending the job on every rank (MPI_Abort)\n", g_rank, g_size);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  int rc = MPI_Finalize();
  g_rank = 0;
  g_size = 1;
  return rc == MPI_SUCCESS ? NULL : mpi_err(rc, "MPI_Finalize");
}

void ry_dist_abort(int code) {
  if (g_init) {
    fprintf(stderr, "ryft: rank %d of %d: ending the job on every rank (MPI_Abort)\n", g_rank, g_size);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  exit(code);
}

#define TAG 0x52f7 /* every collective's messages; MPI keeps them in order per pair */
#define MAX_MSG (1u << 30)

/* the messages post() sends for a block of b bytes (a zero-byte one too) */
static size_t n_pieces(size_t b) { return b == 0 ? 1 : (b + MAX_MSG - 1) / MAX_MSG; }

/* Post the sends and receives of one exchange: messages over 1 GiB go in
 * pieces (n_pieces). */
static int post(int n, const int *peers, int me, void *const *send, const size_t *sbytes, void *const *recv,
                const size_t *rbytes, MPI_Request *reqs, int *nreq) {
  for (int j = 0; j < n; j++) {
    if (j == me) continue;
    for (size_t off = 0; off < rbytes[j] || (off == 0 && rbytes[j] == 0); off += MAX_MSG) {
      size_t len = rbytes[j] - off < MAX_MSG ? rbytes[j] - off : MAX_MSG;
      int rc = MPI_Irecv(recv[j] ? (char *)recv[j] + off : NULL, (int)len, MPI_BYTE, peers[j], TAG, MPI_COMM_WORLD, &reqs[(*nreq)++]);
      if (rc != MPI_SUCCESS) return rc;
      if (!rbytes[j]) break;
    }
  }
  for (int j = 0; j < n; j++) {
    if (j == me) continue;
    for (size_t off = 0; off < sbytes[j] || (off == 0 && sbytes[j] == 0); off += MAX_MSG) {
      size_t len = sbytes[j] - off < MAX_MSG ? sbytes[j] - off : MAX_MSG;
      int rc = MPI_Isend(send[j] ? (char *)send[j] + off : NULL, (int)len, MPI_BYTE, peers[j], TAG, MPI_COMM_WORLD, &reqs[(*nreq)++]);
      if (rc != MPI_SUCCESS) return rc;
      if (!sbytes[j]) break;
    }
  }
  return MPI_SUCCESS;
}

ry_status rydist_exchange(const char *what, int n, const int *peers, int me, void *const *send, const size_t *sbytes,
                          void *const *recv, const size_t *rbytes) {
  if (n <= 1) return NULL;
  size_t pieces = 0;
  for (int j = 0; j < n; j++)
    if (j != me) pieces += n_pieces(sbytes[j]) + n_pieces(rbytes[j]);
  MPI_Request *reqs = ry__malloc(pieces * sizeof *reqs);
  if (!reqs) return ry__oom();
  pthread_mutex_lock(&g_xmu);
  pthread_mutex_lock(&g_mu);
  double t0 = rydist_now(), limit = rydist_timeout();
  ry_status s = NULL;
  if (!g_init) s = ry__err(RY_ERR_INVALID_ARGUMENT, "%s across processes: ry_dist_init has not been called", what);
  else if (g_broken)
    s = ry__err(RY_ERR_IO, "%s on rank %d of %d: an earlier collective failed, the job cannot continue", what, g_rank, g_size);
  int nreq = 0, rc = MPI_SUCCESS;
  if (!s && (rc = post(n, peers, me, send, sbytes, recv, rbytes, reqs, &nreq)) != MPI_SUCCESS) s = mpi_err(rc, what);
  pthread_mutex_unlock(&g_mu);
  /* poll to a deadline. MPI moves a large message in fragments only while
   * it is polled, so for the first 0.5 s every test is followed by just a
   * sched_yield (full speed when a core is free, the core handed over when
   * ranks share one); a longer wait (a rank still computing, evaluating,
   * or gone) sleeps 200 us between tests */
  for (;;) {
    if (s) break;
    int flag = 0;
    pthread_mutex_lock(&g_mu);
    rc = MPI_Testall(nreq, reqs, &flag, MPI_STATUSES_IGNORE);
    pthread_mutex_unlock(&g_mu);
    if (rc != MPI_SUCCESS) s = mpi_err(rc, what);
    else if (flag) break;
    else if (rydist_now() - t0 > limit) {
      pthread_mutex_lock(&g_mu);
      int waiting = -1;
      for (int i = 0, k = 0; i < n && waiting < 0; i++) {
        if (i == me) continue;
        int f = 0;
        if (reqs[k] != MPI_REQUEST_NULL) MPI_Test(&reqs[k], &f, MPI_STATUS_IGNORE);
        if (reqs[k] != MPI_REQUEST_NULL) waiting = peers[i];
        k += (int)n_pieces(rbytes[i]);
      }
      s = ry__err(RY_ERR_IO,
                  "%s on rank %d of %d: no answer from rank %d within %g s (RYFT_DIST_TIMEOUT): a rank died, hangs or its host "
                  "is unreachable",
                  what, g_rank, g_size, waiting >= 0 ? waiting : peers[me == 0 ? 1 : 0], limit);
      pthread_mutex_unlock(&g_mu);
    } else if (rydist_now() - t0 < 0.5) {
      sched_yield();
    } else {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
  }
  pthread_mutex_lock(&g_mu);
  if (s) {
    /* the buffers go back to the caller: take back the receives still
     * pending so a late message cannot land in freed memory */
    for (int i = 0; i < nreq; i++) {
      if (reqs[i] == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&reqs[i]);
      MPI_Request_free(&reqs[i]);
    }
    g_broken = true;
  }
  g_comm_s += rydist_now() - t0;
  pthread_mutex_unlock(&g_mu);
  pthread_mutex_unlock(&g_xmu);
  ry__free(reqs, pieces * sizeof *reqs);
  return s;
}

#else /* no MPI */

ry_status ry_dist_init(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return ry__err(RY_ERR_UNSUPPORTED,
                 "ry_dist_init: ryft was built without MPI (install Open MPI, e.g. apt-get install libopenmpi-dev "
                 "openmpi-bin, and configure with -DRYFT_MPI=ON)");
}

ry_status ry_dist_finalize(void) {
  rydist_kv_stop(false);
  return NULL;
}

void ry_dist_abort(int code) { exit(code); }

void rydist_set_broken(void) {}

ry_status rydist_exchange(const char *what, int n, const int *peers, int me, void *const *send, const size_t *sbytes,
                          void *const *recv, const size_t *rbytes) {
  (void)peers, (void)me, (void)send, (void)sbytes, (void)recv, (void)rbytes;
  if (n <= 1) return NULL;
  return ry__err(RY_ERR_UNSUPPORTED, "%s across processes: ryft was built without MPI", what);
}
#endif
