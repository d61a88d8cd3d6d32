/* The replaceable allocator (Lua's lua_Alloc shape), the cache of large
 * array buffers, and small vectors. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

static void *default_alloc(void *ud, void *p, size_t old_n, size_t n) {
  (void)ud;
  (void)old_n;
  if (n == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, n);
}

static ry_alloc_fn g_alloc = default_alloc;
static void *g_alloc_ud;

static void cache_flush(void);

void ry_set_allocator(ry_alloc_fn fn, void *ud) {
  cache_flush(); /* cached blocks belong to the allocator that made them */
  g_alloc = fn ? fn : default_alloc;
  g_alloc_ud = fn ? ud : NULL;
}

void *ry__malloc(size_t n) { return g_alloc(g_alloc_ud, NULL, 0, n ? n : 1); }

void *ry__calloc(size_t count, size_t n) {
  if (n && count > SIZE_MAX / n) return NULL;
  size_t total = count * n;
  void *p = ry__malloc(total);
  if (p) memset(p, 0, total ? total : 1);
  return p;
}

/* A zero-byte request allocates one byte, so the allocator is told old
 * sizes of at least 1 as well: it always sees the size it was asked for. */
void *ry__realloc(void *p, size_t old_n, size_t n) {
  return g_alloc(g_alloc_ud, p, p ? (old_n ? old_n : 1) : 0, n ? n : 1);
}

void ry__free(void *p, size_t n) {
  if (p) g_alloc(g_alloc_ud, p, n ? n : 1, 0);
}

/* ---- large array buffers ----
 * A program run allocates the same large buffers step after step; handing
 * them back to malloc returns them to the kernel (munmap) and the next step
 * pays page faults and zeroing again (for a GPT-2 124M training step that was
 * 40% of the step). Released blocks of at least CACHE_MIN bytes are kept and
 * given to the next request of exactly the same size; the oldest go first
 * when the cache is full. By default the cache holds at most as many bytes as
 * the most large-buffer memory that was live at once (at least 256 MB), so a
 * loop's steps recycle their whole working set while the process never holds
 * more than twice its peak; RYFT_BUFFER_CACHE_MB fixes the bound (0 turns the
 * cache off). Only with the default allocator: a replaced allocator sees
 * every allocation. */
#define CACHE_MIN ((size_t)256 << 10)
#define CACHE_FLOOR ((size_t)256 << 20)
typedef struct {
  void *p;
  size_t n;
} cache_block;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_block *g_cache; /* oldest first */
static int g_cache_len, g_cache_slots;
static size_t g_cache_bytes;
static size_t g_live, g_live_peak;    /* large buffers handed out and not released */
static size_t g_cache_env = SIZE_MAX; /* RYFT_BUFFER_CACHE_MB in bytes; SIZE_MAX: not read yet */
static bool g_cache_fixed;

/* call with g_cache_lock held */
static size_t cache_cap(void) {
  if (g_cache_env == SIZE_MAX) {
    const char *e = getenv("RYFT_BUFFER_CACHE_MB");
    g_cache_fixed = e && *e;
    long mb = g_cache_fixed ? strtol(e, NULL, 10) : 0;
    g_cache_env = mb > 0 ? (size_t)mb << 20 : 0;
  }
  if (g_cache_fixed) return g_cache_env;
  return g_live_peak > CACHE_FLOOR ? g_live_peak : CACHE_FLOOR;
}

static void cache_flush(void) {
  pthread_mutex_lock(&g_cache_lock);
  for (int i = 0; i < g_cache_len; i++) free(g_cache[i].p);
  free(g_cache);
  g_cache = NULL;
  g_cache_len = g_cache_slots = 0;
  g_cache_bytes = 0;
  pthread_mutex_unlock(&g_cache_lock);
}

void ry__buffer_cache_flush(void) { cache_flush(); }

/* call with g_cache_lock held */
static void cache_drop_oldest(void) {
  free(g_cache[0].p);
  g_cache_bytes -= g_cache[0].n;
  memmove(&g_cache[0], &g_cache[1], (size_t)(--g_cache_len) * sizeof g_cache[0]);
}

void *ry__data_alloc(size_t n) {
  if (n >= CACHE_MIN && g_alloc == default_alloc) {
    pthread_mutex_lock(&g_cache_lock);
    for (int i = g_cache_len - 1; i >= 0; i--)
      if (g_cache[i].n == n) {
        void *p = g_cache[i].p;
        memmove(&g_cache[i], &g_cache[i + 1], (size_t)(g_cache_len - i - 1) * sizeof g_cache[0]);
        g_cache_len--;
        g_cache_bytes -= n;
        if ((g_live += n) > g_live_peak) g_live_peak = g_live;
        pthread_mutex_unlock(&g_cache_lock);
        return p;
      }
    pthread_mutex_unlock(&g_cache_lock);
  }
  void *p = ry__malloc(n);
  if (p && n >= CACHE_MIN && g_alloc == default_alloc) {
    pthread_mutex_lock(&g_cache_lock);
    if ((g_live += n) > g_live_peak) g_live_peak = g_live;
    pthread_mutex_unlock(&g_cache_lock);
  }
  return p;
}

void ry__data_free(void *p, size_t n) {
  if (!p) return;
  if (n >= CACHE_MIN && g_alloc == default_alloc) {
    pthread_mutex_lock(&g_cache_lock);
    g_live -= n < g_live ? n : g_live;
    size_t cap = cache_cap();
    if (n <= cap) {
      while (g_cache_len && g_cache_bytes + n > cap) cache_drop_oldest();
      if (g_cache_len == g_cache_slots) {
        int slots = g_cache_slots ? 2 * g_cache_slots : 64;
        cache_block *c = realloc(g_cache, (size_t)slots * sizeof *c);
        if (c) {
          g_cache = c;
          g_cache_slots = slots;
        } else if (g_cache_len) {
          cache_drop_oldest(); /* no room to grow: recycle a slot */
        } else {
          pthread_mutex_unlock(&g_cache_lock);
          ry__free(p, n);
          return;
        }
      }
      g_cache[g_cache_len].p = p;
      g_cache[g_cache_len++].n = n;
      g_cache_bytes += n;
      pthread_mutex_unlock(&g_cache_lock);
      return;
    }
    pthread_mutex_unlock(&g_cache_lock);
  }
  ry__free(p, n);
}

/* Strings carry their allocation size in a header so any module can free them. */
char *ry__memdup(const void *p, size_t len) {
  size_t *h = ry__malloc(sizeof(size_t) + len + 1);
  if (!h) return NULL;
  h[0] = sizeof(size_t) + len + 1;
  char *out = (char *)(h + 1);
  if (len) memcpy(out, p, len);
  out[len] = 0;
  return out;
}

char *ry__strdup(const char *s) { return s ? ry__memdup(s, strlen(s)) : NULL; }

void ry__strfree(char *s) {
  if (!s) return;
  size_t *h = (size_t *)s - 1;
  ry__free(h, h[0]);
}

void ry_free(void *p) { ry__strfree(p); }

bool ry__ivec_push(ry_ivec *a, int32_t x) {
  if (a->n == a->cap) {
    int32_t ncap = a->cap ? a->cap * 2 : 8;
    int32_t *nv = ry__realloc(a->v, (size_t)a->cap * sizeof(int32_t), (size_t)ncap * sizeof(int32_t));
    if (!nv) return false;
    a->v = nv;
    a->cap = ncap;
  }
  a->v[a->n++] = x;
  return true;
}

void ry__ivec_free(ry_ivec *a) {
  ry__free(a->v, (size_t)a->cap * sizeof(int32_t));
  a->v = NULL;
  a->n = a->cap = 0;
}
