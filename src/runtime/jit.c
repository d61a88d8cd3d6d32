/* ry_jit: a traced function with a per-signature cache of executables.
 *
 * The cache is a list in most-recently-used order under one mutex, at most
 * RY_JIT_CACHE_SIZE entries. An entry is refcounted: the list holds one
 * reference and every call running its executable holds one, so an entry
 * evicted while another thread runs it is freed by the last of them. A new
 * signature is inserted as a pending entry before it is traced and compiled
 * outside the lock; threads that bring the same signature meanwhile wait on
 * the condition variable instead of compiling it again. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "../core/internal.h"
#include "ryft/jit.h"

typedef struct jit_entry {
  struct jit_entry *next;
  atomic_int refs;
  int n_in;
  ry_type *types;     /* [n_in] */
  uint64_t hash;
  bool pending;       /* being traced and compiled by some thread */
  ry_executable *exe; /* NULL while pending */
} jit_entry;

struct ry_jit {
  char *name;
  ry_fn fn;
  void *ctx;
  ry_device *device;
  pthread_mutex_t lock;
  pthread_mutex_t trace_lock; /* fn runs on one thread at a time (compiles do not wait) */
  pthread_cond_t done; /* a pending entry finished (or failed) */
  jit_entry *head;     /* most recently used first */
  int n_entries;
  atomic_long traces;
};

static uint64_t sig_hash(int n_in, const ry_type *t) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)n_in;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
  for (int i = 0; i < n_in; i++) {
    MIX(t[i].dtype);
    MIX(t[i].shape.rank);
    for (int d = 0; d < t[i].shape.rank; d++) MIX(t[i].shape.dims[d]);
  }
#undef MIX
  return h;
}

static bool sig_equal(const jit_entry *e, int n_in, const ry_type *t, uint64_t h) {
  if (e->hash != h || e->n_in != n_in) return false;
  for (int i = 0; i < n_in; i++)
    if (!ry_type_equal(e->types[i], t[i])) return false;
  return true;
}

static void entry_unref(jit_entry *e) {
  if (!e || atomic_fetch_sub(&e->refs, 1) != 1) return;
  ry_executable_free(e->exe);
  ry__free(e->types, (size_t)(e->n_in ? e->n_in : 1) * sizeof(ry_type));
  ry__free(e, sizeof *e);
}

ry_status ry_jit_new(const char *name, ry_fn fn, void *ctx, ry_device *device, ry_jit **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_new: out is NULL");
  *out = NULL;
  if (!fn) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_new: fn is NULL");
  if (!device) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_new: device is NULL (use ry_device_get(\"cpu\", &d))");
  ry_jit *j = ry__calloc(1, sizeof *j);
  if (!j || !(j->name = ry__strdup(name ? name : "main"))) {
    ry__free(j, sizeof *j);
    return ry__oom();
  }
  j->fn = fn;
  j->ctx = ctx;
  j->device = device;
  pthread_mutex_init(&j->lock, NULL);
  pthread_mutex_init(&j->trace_lock, NULL);
  pthread_cond_init(&j->done, NULL);
  atomic_init(&j->traces, 0);
  *out = j;
  return NULL;
}

void ry_jit_free(ry_jit *j) {
  if (!j) return;
  for (jit_entry *e = j->head, *next; e; e = next) {
    next = e->next;
    entry_unref(e);
  }
  pthread_cond_destroy(&j->done);
  pthread_mutex_destroy(&j->lock);
  pthread_mutex_destroy(&j->trace_lock);
  ry__strfree(j->name);
  ry__free(j, sizeof *j);
}

/* Trace and compile for the signature of e (outside the lock). */
static ry_status build(ry_jit *j, const jit_entry *e, ry_executable **exe) {
  ry_graph *g = NULL;
  atomic_fetch_add(&j->traces, 1);
  pthread_mutex_lock(&j->trace_lock);
  ry_status s = ry_trace(j->name, j->fn, j->ctx, e->n_in, e->types, NULL, &g);
  pthread_mutex_unlock(&j->trace_lock);
  if (!s) s = ry_compile(g, j->device, exe);
  ry_graph_release(g);
  return s;
}

/* The entry for this signature with a reference for the caller (unref when
 * done): found in the cache and moved to the front, or built. */
static ry_status lookup(ry_jit *j, int n_in, const ry_type *types, jit_entry **out) {
  *out = NULL;
  uint64_t h = sig_hash(n_in, types);
  pthread_mutex_lock(&j->lock);
  for (;;) {
    jit_entry *prev = NULL, *e = j->head;
    while (e && !sig_equal(e, n_in, types, h)) prev = e, e = e->next;
    if (e && e->pending) {
      pthread_cond_wait(&j->done, &j->lock);
      continue; /* look again: it may have failed and gone */
    }
    if (e) {
      if (prev) { /* most recently used first */
        prev->next = e->next;
        e->next = j->head;
        j->head = e;
      }
      atomic_fetch_add(&e->refs, 1);
      pthread_mutex_unlock(&j->lock);
      *out = e;
      return NULL;
    }
    break;
  }
  /* new signature: insert pending, build unlocked */
  jit_entry *e = ry__calloc(1, sizeof *e);
  ry_type *t = e ? ry__malloc((size_t)(n_in ? n_in : 1) * sizeof(ry_type)) : NULL;
  if (!t) {
    ry__free(e, sizeof *e);
    pthread_mutex_unlock(&j->lock);
    return ry__oom();
  }
  if (n_in) memcpy(t, types, (size_t)n_in * sizeof(ry_type));
  e->types = t;
  e->n_in = n_in;
  e->hash = h;
  e->pending = true;
  atomic_init(&e->refs, 2); /* the list's and the caller's */
  e->next = j->head;
  j->head = e;
  j->n_entries++;
  pthread_mutex_unlock(&j->lock);

  ry_executable *exe = NULL;
  ry_status s = build(j, e, &exe);

  jit_entry *evicted = NULL;
  pthread_mutex_lock(&j->lock);
  jit_entry **pp = &j->head;
  while (*pp != e) pp = &(*pp)->next;
  if (s) {
    *pp = e->next; /* unlink: the next caller with this signature tries again */
    j->n_entries--;
  } else {
    e->exe = exe;
    e->pending = false;
    /* evict the least recently used finished entries beyond the bound */
    while (j->n_entries > RY_JIT_CACHE_SIZE) {
      jit_entry **lp = NULL;
      for (jit_entry **q = &j->head; *q; q = &(*q)->next)
        if (!(*q)->pending && *q != e) lp = q;
      if (!lp) break;
      jit_entry *x = *lp;
      *lp = x->next;
      x->next = evicted;
      evicted = x;
      j->n_entries--;
    }
  }
  pthread_cond_broadcast(&j->done);
  pthread_mutex_unlock(&j->lock);
  while (evicted) {
    jit_entry *next = evicted->next;
    entry_unref(evicted);
    evicted = next;
  }
  if (s) {
    entry_unref(e); /* the list's */
    entry_unref(e); /* ours */
    return s;
  }
  *out = e;
  return NULL;
}

ry_status ry_jit_call_donated(ry_jit *j, int n_in, ry_array **in, const bool *donate, int n_out, ry_array **out) {
  ry_status s = NULL;
  for (int i = 0; out && i < n_out; i++) out[i] = NULL;
  ry_type small[16], *types = small;
  if (!j) s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_call: jit is NULL");
  else if (n_in < 0 || (n_in > 0 && !in)) s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_call: inputs array is NULL");
  else if (n_in > 16 && !(types = ry__malloc((size_t)n_in * sizeof(ry_type)))) s = ry__oom();
  for (int i = 0; !s && i < n_in; i++) {
    if (!in[i]) s = ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_call: input %d is NULL", i);
    else types[i] = ry_array_type(in[i]);
  }
  jit_entry *e = NULL;
  if (!s) s = lookup(j, n_in, n_in ? types : NULL, &e);
  if (types != small && n_in > 16) ry__free(types, (size_t)n_in * sizeof(ry_type));
  if (!s) {
    s = ry_execute_donated(e->exe, n_in, in, donate, n_out, out);
    entry_unref(e);
    return s ? ry__err_prefix(s, "ry_jit_call '%s'", j->name) : NULL;
  }
  /* donated references are consumed on every path */
  for (int i = 0; in && donate && i < n_in; i++)
    if (donate[i] && in[i]) {
      ry_array_release(in[i]);
      in[i] = NULL;
    }
  return j ? ry__err_prefix(s, "ry_jit_call '%s'", j->name) : s;
}

ry_status ry_jit_call(ry_jit *j, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  /* nothing is donated, so `in` is not written */
  return ry_jit_call_donated(j, n_in, (ry_array **)(uintptr_t)in, NULL, n_out, out);
}

ry_status ry_jit_lower(ry_jit *j, int n_in, const ry_type *types, ry_executable **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_lower: out is NULL");
  *out = NULL;
  if (!j) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_lower: jit is NULL");
  if (n_in < 0 || (n_in > 0 && !types)) return ry__err(RY_ERR_INVALID_ARGUMENT, "ry_jit_lower: types is NULL");
  jit_entry *e;
  ry_status s = lookup(j, n_in, types, &e);
  if (s) return ry__err_prefix(s, "ry_jit_lower '%s'", j->name);
  *out = e->exe;
  entry_unref(e); /* the cache keeps it */
  return NULL;
}

int ry_jit_cache_size(const ry_jit *j) {
  if (!j) return 0;
  ry_jit *m = (ry_jit *)(uintptr_t)j;
  pthread_mutex_lock(&m->lock);
  int n = 0;
  for (const jit_entry *e = m->head; e; e = e->next) n += !e->pending;
  pthread_mutex_unlock(&m->lock);
  return n;
}

long ry_jit_trace_count(const ry_jit *j) { return j ? atomic_load(&((ry_jit *)(uintptr_t)j)->traces) : 0; }
