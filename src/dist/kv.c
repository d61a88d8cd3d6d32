/* The job's key-value store (ryft/dist.h: ry_dist_kv_put, ry_dist_kv_get),
 * what PJRT plugins of several nodes use to find each other (the
 * kv_get/kv_put callbacks of PJRT_Client_Create, src/backend/pjrt/pjrt.c).
 *
 * Rank 0 holds the store. From ry_dist_init on it serves the other ranks
 * from a thread on a communicator of its own (MPI_Comm_dup of the world),
 * so a rank's put or get needs no matching call on any other rank: the
 * thread probes for a request (MPI_Improbe, under the mutex that
 * serializes MPI calls; with none there it sleeps 200 us, growing by a
 * quarter per empty probe to 20 ms, so a training job hardly sees it and
 * the first request of a burst waits at most 20 ms), answers it and goes
 * back to probing. A request is one message to rank 0,
 * [op][key length u32][key][value]; the answer is [found][value]. Only one
 * request per process is in flight (kv_client_mu), so answers cannot cross.
 * A blocking get asks again (every 1 ms, growing to 20 ms) until the key is
 * there or its timeout has passed, which is then an error naming the key;
 * a rank 0 that does not answer within RYFT_DIST_TIMEOUT is an error naming
 * it. Outside a job (or in a build without MPI) the store is this
 * process's own. Prefix kv_ (file-local). */
#include "dist.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the store: a list of entries under kv_mu ---- */

typedef struct kv_entry {
  struct kv_entry *next;
  char *key, *val; /* ry__memdup blocks */
  size_t klen, vlen;
} kv_entry;

static pthread_mutex_t kv_mu = PTHREAD_MUTEX_INITIALIZER;
static kv_entry *kv_head;

static ry_status kv_local_put(const char *key, size_t klen, const void *val, size_t vlen) {
  char *v = ry__memdup(val, vlen);
  if (!v) return ry__oom();
  pthread_mutex_lock(&kv_mu);
  kv_entry *e = kv_head;
  while (e && !(e->klen == klen && memcmp(e->key, key, klen) == 0)) e = e->next;
  if (!e) {
    char *k = ry__memdup(key, klen);
    if (!k || !(e = ry__calloc(1, sizeof *e))) {
      pthread_mutex_unlock(&kv_mu);
      ry__strfree(k);
      ry__strfree(v);
      return ry__oom();
    }
    e->key = k;
    e->klen = klen;
    e->next = kv_head;
    kv_head = e;
  }
  ry__strfree(e->val); /* an overwrite */
  e->val = v;
  e->vlen = vlen;
  pthread_mutex_unlock(&kv_mu);
  return NULL;
}

/* 1 found (*val a copy, freed with ry__strfree), 0 not there, -1 out of memory */
static int kv_local_get(const char *key, size_t klen, char **val, size_t *vlen) {
  pthread_mutex_lock(&kv_mu);
  kv_entry *e = kv_head;
  while (e && !(e->klen == klen && memcmp(e->key, key, klen) == 0)) e = e->next;
  int r = 0;
  if (e) {
    *val = ry__memdup(e->val, e->vlen);
    *vlen = e->vlen;
    r = *val ? 1 : -1;
  }
  pthread_mutex_unlock(&kv_mu);
  return r;
}

static void kv_clear(void) {
  pthread_mutex_lock(&kv_mu);
  while (kv_head) {
    kv_entry *e = kv_head;
    kv_head = e->next;
    ry__strfree(e->key);
    ry__strfree(e->val);
    ry__free(e, sizeof *e);
  }
  pthread_mutex_unlock(&kv_mu);
}

static void kv_sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

#ifdef RYFT_HAVE_MPI
#include <mpi.h>

#define KV_REQ 1 /* tags on kv_comm */
#define KV_REP 2

static MPI_Comm kv_comm = MPI_COMM_NULL;
static pthread_t kv_thread;
static bool kv_serving = false;
static int kv_stop_flag; /* atomic */
static pthread_mutex_t kv_client_mu = PTHREAD_MUTEX_INITIALIZER;

typedef enum { KV_SEND, KV_RECV, KV_BARRIER } kv_kind;

/* Wait for r to the deadline, the mutex held only around each MPI call.
 * 0: done; 1: the deadline passed (a receive is cancelled; a send is left
 * to MPI, its buffer must then stay allocated; a barrier, which MPI allows
 * neither to cancel nor to free, stays pending); -1: an MPI error. */
static int kv_wait(MPI_Request *r, double deadline, kv_kind kind) {
  for (long us = 20;; us = us < 1000 ? us * 2 : 1000) {
    int flag = 0;
    rydist_lock();
    int rc = MPI_Test(r, &flag, MPI_STATUS_IGNORE);
    rydist_unlock();
    if (rc != MPI_SUCCESS) return -1;
    if (flag) return 0;
    if (rydist_now() > deadline) {
      if (kind == KV_BARRIER) return 1;
      rydist_lock();
      if (kind == KV_RECV) MPI_Cancel(r);
      MPI_Request_free(r);
      rydist_unlock();
      return 1;
    }
    kv_sleep_us(us);
  }
}

/* Receive the message Improbe matched (count bytes) into a new block. */
static int kv_recv_matched(MPI_Message *m, int count, char **buf, double deadline) {
  *buf = ry__malloc((size_t)count + 1);
  while (!*buf) { /* a matched message must be received: wait for memory */
    if (rydist_now() > deadline) return -1;
    kv_sleep_us(1000);
    *buf = ry__malloc((size_t)count + 1);
  }
  MPI_Request r;
  rydist_lock();
  int rc = MPI_Imrecv(*buf, count, MPI_BYTE, m, &r);
  rydist_unlock();
  int w = rc == MPI_SUCCESS ? kv_wait(&r, deadline, KV_RECV) : -1;
  if (w) {
    ry__free(*buf, (size_t)count + 1);
    *buf = NULL;
  }
  return w;
}

/* Rank 0: answer one request (from rank `src`). */
static void kv_answer(const char *req, int n, int src) {
  uint32_t klen = 0;
  char op = n >= 5 ? req[0] : 0;
  if (n >= 5) memcpy(&klen, req + 1, 4);
  if (op == 0 || (size_t)n < 5 + (size_t)klen) return; /* not a request of ours: dropped */
  const char *key = req + 5, *val = key + klen;
  size_t vlen = (size_t)n - 5 - klen;
  char *got = NULL, status = 0;
  size_t glen = 0;
  if (op == 'P') status = kv_local_put(key, klen, val, vlen) ? 2 : 1;
  else {
    int r = kv_local_get(key, klen, &got, &glen);
    status = r == 1 ? 1 : r == 0 ? 0 : 2;
  }
  static char oom_rep = 2; /* "out of memory", needing no allocation */
  size_t rn = 1 + glen;
  char *rep = ry__malloc(rn);
  if (rep) {
    rep[0] = status;
    if (glen) memcpy(rep + 1, got, glen);
  } else {
    rep = &oom_rep;
    rn = 1;
  }
  ry__strfree(got);
  MPI_Request r;
  rydist_lock();
  int rc = MPI_Isend(rep, (int)rn, MPI_BYTE, src, KV_REP, kv_comm, &r);
  rydist_unlock();
  /* the asker is waiting for this; one that went away leaves the buffer to MPI */
  int w = rc == MPI_SUCCESS ? kv_wait(&r, rydist_now() + rydist_timeout(), KV_SEND) : -1;
  if (rep != &oom_rep && w != 1) ry__free(rep, rn);
}

static void *kv_serve(void *arg) {
  (void)arg;
  long idle_us = 200;
  while (!__atomic_load_n(&kv_stop_flag, __ATOMIC_ACQUIRE)) {
    int flag = 0, count = 0;
    MPI_Message m;
    MPI_Status st;
    rydist_lock();
    int rc = MPI_Improbe(MPI_ANY_SOURCE, KV_REQ, kv_comm, &flag, &m, &st);
    if (rc == MPI_SUCCESS && flag) MPI_Get_count(&st, MPI_BYTE, &count);
    rydist_unlock();
    if (rc != MPI_SUCCESS || !flag) { /* idle: probe less often, up to every 20 ms */
      kv_sleep_us(idle_us);
      idle_us = idle_us < 20000 ? idle_us + idle_us / 4 : 20000;
      continue;
    }
    idle_us = 200;
    char *req = NULL;
    if (kv_recv_matched(&m, count, &req, rydist_now() + rydist_timeout()) == 0) {
      kv_answer(req, count, st.MPI_SOURCE);
      ry__free(req, (size_t)count + 1);
    }
  }
  return NULL;
}

ry_status rydist_kv_start(void) {
  if (kv_comm != MPI_COMM_NULL || ry_dist_size() < 2) return NULL;
  rydist_lock();
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &kv_comm);
  if (rc == MPI_SUCCESS) MPI_Comm_set_errhandler(kv_comm, MPI_ERRORS_RETURN);
  rydist_unlock();
  if (rc != MPI_SUCCESS) {
    kv_comm = MPI_COMM_NULL;
    return ry__err(RY_ERR_IO, "ry_dist_init: rank %d: cannot make the key-value store's communicator (MPI_Comm_dup)", ry_dist_rank());
  }
  if (ry_dist_rank() != 0) return NULL;
  __atomic_store_n(&kv_stop_flag, 0, __ATOMIC_RELEASE);
  if (pthread_create(&kv_thread, NULL, kv_serve, NULL) != 0)
    return ry__err(RY_ERR_INTERNAL, "ry_dist_init: cannot start the key-value store's thread on rank 0");
  kv_serving = true;
  return NULL;
}

void rydist_kv_stop(bool wait_for_all) {
  bool pending = false; /* a barrier that timed out: the communicator stays */
  if (kv_comm != MPI_COMM_NULL && wait_for_all) {
    /* no rank may still need the store when rank 0 stops serving it */
    MPI_Request r;
    rydist_lock();
    int rc = MPI_Ibarrier(kv_comm, &r);
    rydist_unlock();
    pending = rc == MPI_SUCCESS && kv_wait(&r, rydist_now() + rydist_timeout(), KV_BARRIER) == 1;
  }
  if (kv_serving) {
    __atomic_store_n(&kv_stop_flag, 1, __ATOMIC_RELEASE);
    pthread_join(kv_thread, NULL);
    kv_serving = false;
  }
  if (kv_comm != MPI_COMM_NULL) {
    rydist_lock();
    if (!pending) MPI_Comm_free(&kv_comm);
    rydist_unlock();
    kv_comm = MPI_COMM_NULL;
  }
  kv_clear();
}

/* A rank other than 0: one request to rank 0 and its answer.
 * *found: the answer's first byte (1 found/stored, 0 not there). */
static ry_status kv_remote(const char *what, char op, const char *key, size_t klen, const void *val, size_t vlen, int *found,
                           char **out, size_t *out_len) {
  size_t n = 5 + klen + vlen;
  if (n > (size_t)INT32_MAX) return ry__err(RY_ERR_INVALID_ARGUMENT, "%s: key and value of %zu bytes are too large", what, n);
  char *req = ry__malloc(n);
  if (!req) return ry__oom();
  uint32_t k32 = (uint32_t)klen;
  req[0] = op;
  memcpy(req + 1, &k32, 4);
  if (klen) memcpy(req + 5, key, klen);
  if (vlen) memcpy(req + 5 + klen, val, vlen);
  double limit = rydist_timeout(), deadline = rydist_now() + limit;
  ry_status s = NULL;
  pthread_mutex_lock(&kv_client_mu);
  MPI_Request r;
  rydist_lock();
  int rc = MPI_Isend(req, (int)n, MPI_BYTE, 0, KV_REQ, kv_comm, &r);
  rydist_unlock();
  int w = rc == MPI_SUCCESS ? kv_wait(&r, deadline, KV_SEND) : -1;
  char *rep = NULL;
  int count = 0;
  while (w == 0) { /* the answer */
    int flag = 0;
    MPI_Message m;
    MPI_Status st;
    rydist_lock();
    rc = MPI_Improbe(0, KV_REP, kv_comm, &flag, &m, &st);
    if (rc == MPI_SUCCESS && flag) MPI_Get_count(&st, MPI_BYTE, &count);
    rydist_unlock();
    if (rc != MPI_SUCCESS) w = -1;
    else if (flag) {
      w = kv_recv_matched(&m, count, &rep, deadline);
      break;
    } else if (rydist_now() > deadline) w = 1;
    else kv_sleep_us(100);
  }
  pthread_mutex_unlock(&kv_client_mu);
  if (w != 1) ry__free(req, n); /* a send left to MPI keeps its buffer */
  if (w) {
    rydist_set_broken();
    return ry__err(RY_ERR_IO,
                   "%s on rank %d of %d: no answer from rank 0, which serves the key-value store, within %g s "
                   "(RYFT_DIST_TIMEOUT): a rank died, hangs or its host is unreachable",
                   what, ry_dist_rank(), ry_dist_size(), limit);
  }
  if (count < 1 || rep[0] == 2) s = ry__err(RY_ERR_OUT_OF_MEMORY, "%s: rank 0 ran out of memory", what);
  else {
    *found = rep[0];
    if (out && rep[0] == 1 && !(*out = ry__memdup(rep + 1, (size_t)count - 1))) s = ry__oom();
    if (out_len) *out_len = (size_t)count - 1;
  }
  ry__free(rep, (size_t)count + 1);
  return s;
}

static bool kv_is_remote(void) { return kv_comm != MPI_COMM_NULL && ry_dist_rank() != 0; }

#else /* no MPI: the store is this process's own */

ry_status rydist_kv_start(void) { return NULL; }
void rydist_kv_stop(bool wait_for_all) {
  (void)wait_for_all;
  kv_clear();
}
static bool kv_is_remote(void) { return false; }
static ry_status kv_remote(const char *what, char op, const char *key, size_t klen, const void *val, size_t vlen, int *found,
                           char **out, size_t *out_len) {
  (void)op, (void)key, (void)klen, (void)val, (void)vlen, (void)found, (void)out, (void)out_len;
  return ry__err(RY_ERR_UNSUPPORTED, "%s: ryft was built without MPI", what);
}
#endif

ry_status ry_dist_kv_put(const char *key, const void *value, size_t size) {
  if (!key) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_kv_put: key is NULL");
  if (!value && size) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_kv_put: value is NULL");
  size_t klen = strlen(key);
  if (!kv_is_remote()) return kv_local_put(key, klen, value, size);
  int stored = 0;
  return kv_remote("ry_dist_kv_put", 'P', key, klen, value, size, &stored, NULL, NULL);
}

ry_status ry_dist_kv_get(const char *key, int timeout_ms, void **value, size_t *size) {
  if (value) *value = NULL;
  if (size) *size = 0;
  if (!key || !value) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_dist_kv_get: %s is NULL", key ? "value" : "key");
  size_t klen = strlen(key);
  double t0 = rydist_now();
  for (long us = 1000;; us = us < 20000 ? us * 2 : 20000) {
    char *v = NULL;
    size_t n = 0;
    int found = 0;
    if (!kv_is_remote()) {
      found = kv_local_get(key, klen, &v, &n);
      if (found < 0) return ry__oom();
    } else {
      ry_status s = kv_remote("ry_dist_kv_get", 'G', key, klen, NULL, 0, &found, &v, &n);
      if (s) return s;
    }
    if (found) {
      *value = v;
      if (size) *size = n;
      return NULL;
    }
    double waited = rydist_now() - t0;
    if (waited * 1000 >= timeout_ms)
      return ry__err(RY_ERR_NOT_FOUND, "ry_dist_kv_get: key '%s' was not set within %d ms (rank %d of %d)", key,
                     timeout_ms > 0 ? timeout_ms : 0, ry_dist_rank(), ry_dist_size());
    long left_us = (long)((timeout_ms / 1000.0 - waited) * 1e6);
    kv_sleep_us(us < left_us ? us : left_us > 0 ? left_us : 1);
  }
}
