/* The replaceable allocator (Lua's lua_Alloc shape) and small vectors. */
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

void ry_set_allocator(ry_alloc_fn fn, void *ud) {
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

void *ry__realloc(void *p, size_t old_n, size_t n) {
  return g_alloc(g_alloc_ud, p, p ? old_n : 0, n ? n : 1);
}

void ry__free(void *p, size_t n) {
  if (p) g_alloc(g_alloc_ud, p, n, 0);
}

/* Strings carry their allocation size in a header so any module can free them. */
char *ry__strdup(const char *s) {
  if (!s) return NULL;
  size_t len = strlen(s);
  size_t *h = ry__malloc(sizeof(size_t) + len + 1);
  if (!h) return NULL;
  h[0] = sizeof(size_t) + len + 1;
  char *out = (char *)(h + 1);
  memcpy(out, s, len + 1);
  return out;
}

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
