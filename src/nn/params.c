/* Parameter trees (ryft/params.h): ordered path -> array maps, their
 * transformations, and path -> value views for traced code.
 *
 * A tree is two parallel vectors (paths, arrays) in insertion order, so the
 * contiguous views ry_params_paths/ry_params_arrays are free. Lookup is a
 * linear scan: trees hold tens to hundreds of entries. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/internal.h"
#include "ryft/params.h"

struct ry_params {
  char **paths;      /* [n], owned (ry__strdup) */
  ry_array **arrays; /* [n], one reference each */
  int n, pcap, acap;
};

/* ---- paths ------------------------------------------------------------------ */

/* NULL when path is valid, else a static description of what is wrong. */
static const char *path_problem(const char *path) {
  if (!path) return "is NULL";
  size_t len = strlen(path);
  if (len == 0) return "is empty";
  if (len >= RY_PARAMS_MAX_PATH) return "is too long";
  if (path[0] == '/') return "starts with '/'";
  if (path[len - 1] == '/') return "ends with '/'";
  if (strstr(path, "//")) return "has an empty segment (\"//\")";
  return NULL;
}

static ry_status check_path(const char *path) {
  const char *why = path_problem(path);
  if (!why) return NULL;
  return ry__err(RY_ERR_INVALID_ARGUMENT, "params: path \"%.*s\" %s", 200, path ? path : "(null)", why);
}

/* ---- basic operations ---------------------------------------------------------- */

ry_params *ry_params_new(void) { return ry__calloc(1, sizeof(ry_params)); }

void ry_params_free(ry_params *p) {
  if (!p) return;
  for (int i = 0; i < p->n; i++) {
    ry__strfree(p->paths[i]);
    ry_array_release(p->arrays[i]);
  }
  ry__free(p->paths, (size_t)p->pcap * sizeof *p->paths);
  ry__free(p->arrays, (size_t)p->acap * sizeof *p->arrays);
  ry__free(p, sizeof *p);
}

int ry_params_count(const ry_params *p) { return p ? p->n : 0; }

int ry_params_index(const ry_params *p, const char *path) {
  if (!p || !path) return -1;
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->paths[i], path) == 0) return i;
  return -1;
}

/* Make room for one more entry. The two vectors grow separately (pcap,
 * acap), so a failure half way leaves the tree consistent. */
static bool grow(ry_params *p) {
  if (p->n < p->pcap && p->n < p->acap) return true;
  int cap = p->n ? p->n * 2 : 8;
  if (p->pcap <= p->n) {
    char **np = ry__realloc(p->paths, (size_t)p->pcap * sizeof *np, (size_t)cap * sizeof *np);
    if (!np) return false;
    p->paths = np;
    p->pcap = cap;
  }
  if (p->acap <= p->n) {
    ry_array **na = ry__realloc(p->arrays, (size_t)p->acap * sizeof *na, (size_t)cap * sizeof *na);
    if (!na) return false;
    p->arrays = na;
    p->acap = cap;
  }
  return true;
}

/* Takes over the reference to a in all cases. */
static ry_status set_owned(ry_params *p, const char *path, ry_array *a) {
  if (!p || !a) {
    ry_array_release(a);
    return ry__err(RY_ERR_INVALID_ARGUMENT, "params: set \"%.*s\": NULL %s", 200, path ? path : "(null)",
                   p ? "array" : "tree");
  }
  ry_status s = check_path(path);
  if (s) {
    ry_array_release(a);
    return s;
  }
  int i = ry_params_index(p, path);
  if (i >= 0) {
    ry_array_release(p->arrays[i]);
    p->arrays[i] = a;
    return NULL;
  }
  char *copy = ry__strdup(path);
  if (!copy || !grow(p)) {
    ry__strfree(copy);
    ry_array_release(a);
    return ry__oom();
  }
  p->paths[p->n] = copy;
  p->arrays[p->n] = a;
  p->n++;
  return NULL;
}

ry_status ry_params_set_owned(ry_params *p, const char *path, ry_array *a) { return set_owned(p, path, a); }

ry_status ry_params_set(ry_params *p, const char *path, ry_array *a) { return set_owned(p, path, ry_array_retain(a)); }

static ry_status type_mismatch(const char *what, const char *path, ry_type have, ry_type want) {
  char hb[96], wb[96];
  ry_code code = have.dtype != want.dtype ? RY_ERR_DTYPE : RY_ERR_SHAPE;
  return ry__err(code, "%s: \"%s\" is %s, expected %s", what, path, ry_type_str(have, hb, sizeof hb),
                 ry_type_str(want, wb, sizeof wb));
}

ry_status ry_params_replace(ry_params *p, const char *path, ry_array *a) {
  if (!p || !a || !path) return ry__err(RY_ERR_INVALID_ARGUMENT, "params: replace: NULL argument");
  int i = ry_params_index(p, path);
  if (i < 0) return ry__err(RY_ERR_NOT_FOUND, "params: replace: no entry \"%.*s\"", 200, path);
  if (!ry_type_equal(ry_array_type(a), ry_array_type(p->arrays[i])))
    return type_mismatch("params: replace", path, ry_array_type(a), ry_array_type(p->arrays[i]));
  ry_array_retain(a);
  ry_array_release(p->arrays[i]);
  p->arrays[i] = a;
  return NULL;
}

ry_status ry_params_remove(ry_params *p, const char *path) {
  int i = ry_params_index(p, path);
  if (i < 0) return ry__err(RY_ERR_NOT_FOUND, "params: remove: no entry \"%.*s\"", 200, path ? path : "(null)");
  ry__strfree(p->paths[i]);
  ry_array_release(p->arrays[i]);
  memmove(p->paths + i, p->paths + i + 1, (size_t)(p->n - i - 1) * sizeof *p->paths);
  memmove(p->arrays + i, p->arrays + i + 1, (size_t)(p->n - i - 1) * sizeof *p->arrays);
  p->n--;
  return NULL;
}

ry_array *ry_params_get(const ry_params *p, const char *path) {
  int i = ry_params_index(p, path);
  return i < 0 ? NULL : p->arrays[i];
}

/* "a, b, c" (the first few paths) for error messages. */
static void list_paths(const ry_params *p, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = 0;
  if (!p || p->n == 0) {
    snprintf(buf, size, "the tree is empty");
    return;
  }
  used += (size_t)snprintf(buf, size, "have: ");
  for (int i = 0; i < p->n && used < size; i++) {
    if (i == 8) {
      snprintf(buf + used, size - used, ", ... (%d entries)", p->n);
      return;
    }
    int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", p->paths[i]);
    if (w < 0) return;
    used += (size_t)w;
  }
}

ry_status ry_params_find(const ry_params *p, const char *path, ry_array **out) {
  if (out) *out = NULL;
  int i = ry_params_index(p, path);
  if (i < 0) {
    char have[512];
    list_paths(p, have, sizeof have);
    return ry__err(RY_ERR_NOT_FOUND, "params: no entry \"%.*s\" (%s)", 200, path ? path : "(null)", have);
  }
  if (out) *out = p->arrays[i];
  return NULL;
}

const char *ry_params_path(const ry_params *p, int i) { return p && i >= 0 && i < p->n ? p->paths[i] : NULL; }
ry_array *ry_params_at(const ry_params *p, int i) { return p && i >= 0 && i < p->n ? p->arrays[i] : NULL; }
ry_type ry_params_type(const ry_params *p, int i) {
  ry_type t = {RY_F32, {0, {0}}};
  ry_array *a = ry_params_at(p, i);
  return a ? ry_array_type(a) : t;
}
const char *const *ry_params_paths(const ry_params *p) { return p ? (const char *const *)p->paths : NULL; }
ry_array *const *ry_params_arrays(const ry_params *p) { return p ? p->arrays : NULL; }
void ry_params_types(const ry_params *p, ry_type *types) {
  for (int i = 0; i < ry_params_count(p); i++) types[i] = ry_array_type(p->arrays[i]);
}

int64_t ry_params_numel(const ry_params *p) {
  int64_t n = 0;
  for (int i = 0; i < ry_params_count(p); i++) n += ry_array_numel(p->arrays[i]);
  return n;
}

size_t ry_params_nbytes(const ry_params *p) {
  size_t n = 0;
  for (int i = 0; i < ry_params_count(p); i++) n += ry_array_nbytes(p->arrays[i]);
  return n;
}

int ry_params_equal(const ry_params *a, const ry_params *b) {
  if (ry_params_count(a) != ry_params_count(b)) return 0;
  for (int i = 0; i < ry_params_count(a); i++) {
    if (strcmp(a->paths[i], b->paths[i]) != 0) return 0;
    if (!ry_type_equal(ry_array_type(a->arrays[i]), ry_array_type(b->arrays[i]))) return 0;
    size_t nb = ry_array_nbytes(a->arrays[i]);
    const void *pa = ry_array_data(a->arrays[i]), *pb = ry_array_data(b->arrays[i]); /* NULL: unreadable device array */
    if (nb && (!pa || !pb || memcmp(pa, pb, nb) != 0)) return 0;
  }
  return 1;
}

/* Append (path, a) to a fresh tree being built; frees the tree on failure. */
#define NEW_OR_OOM(t)                   \
  ry_params *t = ry_params_new();       \
  if (!t) return ry__oom();

ry_status ry_params_clone(const ry_params *p, ry_params **out) {
  *out = NULL;
  NEW_OR_OOM(t);
  for (int i = 0; i < ry_params_count(p); i++) {
    ry_status s = ry_params_set(t, p->paths[i], p->arrays[i]);
    if (s) {
      ry_params_free(t);
      return s;
    }
  }
  *out = t;
  return NULL;
}

/* ---- transformations ------------------------------------------------------------ */

ry_status ry_params_map(const ry_params *p, ry_params_map_fn fn, void *ctx, ry_params **out) {
  *out = NULL;
  if (!fn) return ry__err(RY_ERR_INVALID_ARGUMENT, "params: map: NULL function");
  NEW_OR_OOM(t);
  for (int i = 0; i < ry_params_count(p); i++) {
    ry_array *a = NULL;
    ry_status s = fn(ctx, p->paths[i], p->arrays[i], &a);
    if (!s && !a) s = ry__err(RY_ERR_INVALID_ARGUMENT, "the map function returned no array");
    if (!s) s = ry_params_set_owned(t, p->paths[i], a);
    else ry_array_release(a);
    if (s) {
      ry_params_free(t);
      return ry__err_prefix(s, "params: map at \"%s\"", p->paths[i]);
    }
  }
  *out = t;
  return NULL;
}

ry_status ry_params_full_like(const ry_params *p, double value, ry_params **out) {
  *out = NULL;
  NEW_OR_OOM(t);
  for (int i = 0; i < ry_params_count(p); i++) {
    ry_array *a = NULL;
    ry_status s = ry_array_full(ry_array_dtype(p->arrays[i]), ry_array_shape(p->arrays[i]), value, &a);
    if (!s) s = ry_params_set_owned(t, p->paths[i], a);
    if (s) {
      ry_params_free(t);
      return s;
    }
  }
  *out = t;
  return NULL;
}

/* Glob matching of one segment (no '/'): '*' any run, '?' one char. */
static bool seg_match(const char *pat, size_t plen, const char *s, size_t slen) {
  size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
  while (si < slen) {
    if (pi < plen && (pat[pi] == '?' || pat[pi] == s[si])) {
      pi++;
      si++;
    } else if (pi < plen && pat[pi] == '*') {
      star_p = pi++;
      star_s = si;
    } else if (star_p != (size_t)-1) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < plen && pat[pi] == '*') pi++;
  return pi == plen;
}

/* Split into segments: starts and lengths. Returns the count (<= max). */
static int segments(const char *s, const char **starts, size_t *lens, int max) {
  int n = 0;
  const char *p = s;
  while (n < max) {
    const char *e = strchr(p, '/');
    starts[n] = p;
    lens[n] = e ? (size_t)(e - p) : strlen(p);
    n++;
    if (!e) break;
    p = e + 1;
  }
  return n;
}

static bool match_segs(const char **ps, const size_t *pl, int np, const char **ss, const size_t *sl, int ns) {
  if (np == 0) return ns == 0;
  if (pl[0] == 2 && ps[0][0] == '*' && ps[0][1] == '*') {
    for (int k = 0; k <= ns; k++)
      if (match_segs(ps + 1, pl + 1, np - 1, ss + k, sl + k, ns - k)) return true;
    return false;
  }
  if (ns == 0) return false;
  return seg_match(ps[0], pl[0], ss[0], sl[0]) && match_segs(ps + 1, pl + 1, np - 1, ss + 1, sl + 1, ns - 1);
}

#define MAX_SEGS (RY_PARAMS_MAX_PATH / 2 + 1)

int ry_path_match(const char *pattern, const char *path) {
  if (!pattern || !path || strlen(pattern) >= RY_PARAMS_MAX_PATH || strlen(path) >= RY_PARAMS_MAX_PATH) return 0;
  const char *ps[MAX_SEGS], *ss[MAX_SEGS];
  size_t pl[MAX_SEGS], sl[MAX_SEGS];
  int np = segments(pattern, ps, pl, MAX_SEGS);
  int ns = segments(path, ss, sl, MAX_SEGS);
  return match_segs(ps, pl, np, ss, sl, ns);
}

static int pattern_pred(void *ctx, const char *path, const ry_array *a) {
  (void)a;
  return ry_path_match((const char *)ctx, path);
}

ry_status ry_params_partition_fn(const ry_params *p, ry_params_pred_fn pred, void *ctx, ry_params **matched,
                                 ry_params **rest) {
  if (matched) *matched = NULL;
  if (rest) *rest = NULL;
  if (!pred) return ry__err(RY_ERR_INVALID_ARGUMENT, "params: partition: NULL predicate");
  ry_params *m = ry_params_new(), *r = ry_params_new();
  if (!m || !r) {
    ry_params_free(m);
    ry_params_free(r);
    return ry__oom();
  }
  for (int i = 0; i < ry_params_count(p); i++) {
    ry_params *dst = pred(ctx, p->paths[i], p->arrays[i]) ? m : r;
    ry_status s = ry_params_set(dst, p->paths[i], p->arrays[i]);
    if (s) {
      ry_params_free(m);
      ry_params_free(r);
      return s;
    }
  }
  if (matched) *matched = m;
  else ry_params_free(m);
  if (rest) *rest = r;
  else ry_params_free(r);
  return NULL;
}

ry_status ry_params_partition(const ry_params *p, const char *pattern, ry_params **matched, ry_params **rest) {
  if (!pattern) {
    if (matched) *matched = NULL;
    if (rest) *rest = NULL;
    return ry__err(RY_ERR_INVALID_ARGUMENT, "params: partition: NULL pattern");
  }
  return ry_params_partition_fn(p, pattern_pred, (void *)pattern, matched, rest);
}

ry_status ry_params_filter(const ry_params *p, const char *pattern, ry_params **out) {
  return ry_params_partition(p, pattern, out, NULL);
}

ry_status ry_params_combine(const ry_params *a, const ry_params *b, const ry_params *like, ry_params **out) {
  *out = NULL;
  for (int i = 0; i < ry_params_count(a); i++)
    if (ry_params_index(b, a->paths[i]) >= 0)
      return ry__err(RY_ERR_INVALID_ARGUMENT, "params: combine: \"%s\" is in both trees", a->paths[i]);
  NEW_OR_OOM(t);
  ry_status s = NULL;
  if (like) {
    int have = ry_params_count(a) + ry_params_count(b);
    for (int i = 0; i < ry_params_count(like) && !s; i++) {
      const char *path = like->paths[i];
      ry_array *x = ry_params_get(a, path);
      if (!x) x = ry_params_get(b, path);
      if (!x) s = ry__err(RY_ERR_NOT_FOUND, "params: combine: \"%s\" is in neither tree", path);
      else s = ry_params_set(t, path, x);
    }
    if (!s && have != ry_params_count(like)) {
      const ry_params *src[2] = {a, b};
      for (int k = 0; k < 2 && !s; k++)
        for (int i = 0; i < ry_params_count(src[k]) && !s; i++)
          if (ry_params_index(like, src[k]->paths[i]) < 0)
            s = ry__err(RY_ERR_INVALID_ARGUMENT, "params: combine: \"%s\" is not in the reference tree",
                        src[k]->paths[i]);
    }
  } else {
    for (int i = 0; i < ry_params_count(a) && !s; i++) s = ry_params_set(t, a->paths[i], a->arrays[i]);
    for (int i = 0; i < ry_params_count(b) && !s; i++) s = ry_params_set(t, b->paths[i], b->arrays[i]);
  }
  if (s) {
    ry_params_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

/* prefix + "/" + path into buf; a NULL/empty prefix copies path. */
static ry_status join(char *buf, const char *prefix, const char *path) {
  int w = prefix && *prefix ? snprintf(buf, RY_PARAMS_MAX_PATH, "%s/%s", prefix, path)
                            : snprintf(buf, RY_PARAMS_MAX_PATH, "%s", path);
  if (w < 0 || w >= RY_PARAMS_MAX_PATH)
    return ry__err(RY_ERR_INVALID_ARGUMENT, "params: path \"%.100s/%.100s\" is too long", prefix ? prefix : "", path);
  return NULL;
}

ry_status ry_params_merge(ry_params *dst, const char *prefix, const ry_params *src) {
  if (!dst) return ry__err(RY_ERR_INVALID_ARGUMENT, "params: merge: NULL destination");
  if (prefix && *prefix) {
    ry_status s = check_path(prefix);
    if (s) return s;
  }
  for (int i = 0; i < ry_params_count(src); i++) {
    char buf[RY_PARAMS_MAX_PATH];
    ry_status s = join(buf, prefix, src->paths[i]);
    if (!s) s = ry_params_set(dst, buf, src->arrays[i]);
    if (s) return s;
  }
  return NULL;
}

ry_status ry_params_prefixed(const ry_params *p, const char *prefix, ry_params **out) {
  *out = NULL;
  ry_status s = check_path(prefix);
  if (s) return s;
  NEW_OR_OOM(t);
  s = ry_params_merge(t, prefix, p);
  if (s) {
    ry_params_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

/* path without "prefix/", or NULL when it is not under prefix. */
static const char *strip_prefix(const char *path, const char *prefix) {
  if (!prefix || !*prefix) return path;
  size_t n = strlen(prefix);
  if (strncmp(path, prefix, n) != 0 || path[n] != '/') return NULL;
  return path + n + 1;
}

ry_status ry_params_subtree(const ry_params *p, const char *prefix, ry_params **out) {
  *out = NULL;
  NEW_OR_OOM(t);
  for (int i = 0; i < ry_params_count(p); i++) {
    const char *rest = strip_prefix(p->paths[i], prefix);
    if (!rest) continue;
    ry_status s = ry_params_set(t, rest, p->arrays[i]);
    if (s) {
      ry_params_free(t);
      return s;
    }
  }
  *out = t;
  return NULL;
}

/* ---- flatten / unflatten ---------------------------------------------------------- */

static ry_status unflatten(const ry_params *like, int n, ry_array *const *arrays, bool owned, ry_params **out) {
  *out = NULL;
  ry_status s = NULL;
  int want = ry_params_count(like);
  if (n != want)
    s = ry__err(RY_ERR_INVALID_ARGUMENT, "params: unflatten: %d arrays for a tree of %d entries", n, want);
  for (int i = 0; i < n && !s; i++) {
    if (!arrays[i]) s = ry__err(RY_ERR_INVALID_ARGUMENT, "params: unflatten: array %d (\"%s\") is NULL", i, like->paths[i]);
    else if (!ry_type_equal(ry_array_type(arrays[i]), ry_array_type(like->arrays[i])))
      s = type_mismatch("params: unflatten", like->paths[i], ry_array_type(arrays[i]), ry_array_type(like->arrays[i]));
  }
  ry_params *t = NULL;
  if (!s && !(t = ry_params_new())) s = ry__oom();
  int done = 0;
  for (; done < n && !s; done++)
    s = owned ? ry_params_set_owned(t, like->paths[done], arrays[done]) : ry_params_set(t, like->paths[done], arrays[done]);
  if (s) {
    if (owned)
      for (int i = done; i < n; i++) ry_array_release(arrays[i]);
    ry_params_free(t);
    return s;
  }
  *out = t;
  return NULL;
}

ry_status ry_params_unflatten(const ry_params *like, int n, ry_array *const *arrays, ry_params **out) {
  return unflatten(like, n, arrays, false, out);
}

ry_status ry_params_unflatten_owned(const ry_params *like, int n, ry_array **arrays, ry_params **out) {
  return unflatten(like, n, arrays, true, out);
}

/* ---- summary ------------------------------------------------------------------------ */

typedef struct sbuf {
  char *buf;
  size_t size, len;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) RY_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = b->len < b->size ? b->size - b->len : 0;
  int w = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
  va_end(ap);
  if (w > 0) b->len += (size_t)w;
}

/* 101770 -> "101,770" */
static void commas(int64_t v, char *out, size_t size) {
  char digits[32];
  snprintf(digits, sizeof digits, "%" PRId64, v < 0 ? -v : v);
  size_t nd = strlen(digits), o = 0;
  if (v < 0 && o + 1 < size) out[o++] = '-';
  for (size_t i = 0; i < nd && o + 1 < size; i++) {
    if (i && (nd - i) % 3 == 0 && o + 1 < size) out[o++] = ',';
    if (o + 1 < size) out[o++] = digits[i];
  }
  out[o] = 0;
}

static void human_bytes(size_t n, char *out, size_t size) {
  if (n < 1024) snprintf(out, size, "%zu B", n);
  else if (n < (size_t)1024 * 1024) snprintf(out, size, "%.1f KiB", (double)n / 1024.0);
  else if (n < (size_t)1024 * 1024 * 1024) snprintf(out, size, "%.1f MiB", (double)n / (1024.0 * 1024.0));
  else snprintf(out, size, "%.2f GiB", (double)n / (1024.0 * 1024.0 * 1024.0));
}

size_t ry_params_summary(const ry_params *p, char *buf, size_t size) {
  sbuf b = {buf, size, 0};
  if (buf && size) buf[0] = 0;
  int n = ry_params_count(p);
  int wpath = 4, wshape = 5, wnum = 5;
  char tmp[96];
  for (int i = 0; i < n; i++) {
    int l = (int)strlen(p->paths[i]);
    if (l > wpath) wpath = l;
    ry_shape_str(ry_array_shape(p->arrays[i]), tmp, sizeof tmp);
    if ((int)strlen(tmp) > wshape) wshape = (int)strlen(tmp);
    commas(ry_array_numel(p->arrays[i]), tmp, sizeof tmp);
    if ((int)strlen(tmp) > wnum) wnum = (int)strlen(tmp);
  }
  sb_printf(&b, "%-*s  %-5s  %-*s  %*s\n", wpath, "path", "dtype", wshape, "shape", wnum, "numel");
  for (int i = 0; i < n; i++) {
    char shp[96], num[32];
    ry_shape_str(ry_array_shape(p->arrays[i]), shp, sizeof shp);
    commas(ry_array_numel(p->arrays[i]), num, sizeof num);
    sb_printf(&b, "%-*s  %-5s  %-*s  %*s\n", wpath, p->paths[i], ry_dtype_name(ry_array_dtype(p->arrays[i])), wshape,
              shp, wnum, num);
  }
  char total[32], bytes[32];
  commas(ry_params_numel(p), total, sizeof total);
  human_bytes(ry_params_nbytes(p), bytes, sizeof bytes);
  sb_printf(&b, "total: %d array%s, %s parameters, %s\n", n, n == 1 ? "" : "s", total, bytes);
  if (buf && size && b.len >= size) buf[size - 1] = 0;
  return b.len;
}

void ry_params_print_summary(const ry_params *p, FILE *f) {
  size_t need = ry_params_summary(p, NULL, 0);
  char *buf = ry__malloc(need + 1);
  if (!buf) {
    fputs("(out of memory)\n", f);
    return;
  }
  ry_params_summary(p, buf, need + 1);
  fputs(buf, f);
  ry__free(buf, need + 1);
}

/* ---- traced views ---------------------------------------------------------------------- */

struct ry_pvalues {
  ry_builder *b;
  char **paths;
  ry_value *vals;
  int n, pcap, vcap;
};

ry_pvalues *ry_pvalues_new(ry_builder *b) {
  ry_pvalues *v = ry__calloc(1, sizeof *v);
  if (!v) {
    ry_builder_set_error(b, ry__oom());
    return NULL;
  }
  v->b = b;
  return v;
}

void ry_pvalues_free(ry_pvalues *v) {
  if (!v) return;
  for (int i = 0; i < v->n; i++) ry__strfree(v->paths[i]);
  ry__free(v->paths, (size_t)v->pcap * sizeof *v->paths);
  ry__free(v->vals, (size_t)v->vcap * sizeof *v->vals);
  ry__free(v, sizeof *v);
}

static int pv_index(const ry_pvalues *v, const char *path) {
  if (!v || !path) return -1;
  for (int i = 0; i < v->n; i++)
    if (strcmp(v->paths[i], path) == 0) return i;
  return -1;
}

/* Append or replace; false (no error set) on out of memory. */
static bool pv_put(ry_pvalues *v, const char *path, ry_value x) {
  int i = pv_index(v, path);
  if (i >= 0) {
    v->vals[i] = x;
    return true;
  }
  int cap = v->n ? v->n * 2 : 16;
  if (v->pcap <= v->n) {
    char **np = ry__realloc(v->paths, (size_t)v->pcap * sizeof *np, (size_t)cap * sizeof *np);
    if (!np) return false;
    v->paths = np;
    v->pcap = cap;
  }
  if (v->vcap <= v->n) {
    ry_value *nv = ry__realloc(v->vals, (size_t)v->vcap * sizeof *nv, (size_t)cap * sizeof *nv);
    if (!nv) return false;
    v->vals = nv;
    v->vcap = cap;
  }
  char *copy = ry__strdup(path);
  if (!copy) return false;
  v->paths[v->n] = copy;
  v->vals[v->n] = x;
  v->n++;
  return true;
}

static ry_status with_loc(ry_status s, ry_loc loc) {
  if (s && loc.file) return ry__err_prefix(s, "%s:%d", loc.file, loc.line);
  return s;
}

ry_status ry_pvalues_from(ry_builder *b, const ry_params *tree, const ry_value *in, ry_pvalues **out) {
  *out = NULL;
  if (!b) return ry__err(RY_ERR_INVALID_ARGUMENT, "params: NULL builder");
  ry_status err = ry_builder_error(b);
  if (err) return ry__err(ry_status_code(err), "%s", ry_status_message(err));
  ry_pvalues *v = ry_pvalues_new(b);
  if (!v) return ry__oom();
  for (int i = 0; i < ry_params_count(tree); i++) {
    if (!pv_put(v, tree->paths[i], in ? in[i] : (ry_value){0})) {
      ry_pvalues_free(v);
      ry_builder_set_error(b, ry__oom());
      return ry__oom();
    }
  }
  *out = v;
  return NULL;
}

ry_status ry_params_inputs(ry_builder *b, const ry_params *tree, ry_pvalues **out) {
  *out = NULL;
  if (!b) return ry__err(RY_ERR_INVALID_ARGUMENT, "params: NULL builder");
  ry_status s = ry_pvalues_from(b, tree, NULL, out);
  if (s) return s;
  for (int i = 0; i < ry_params_count(tree); i++) {
    ry_value x = ry_input(b, tree->paths[i], ry_array_type(tree->arrays[i]));
    if (!ry_value_ok(x)) break;
    (*out)->vals[i] = x;
  }
  ry_status err = ry_builder_error(b);
  if (err) {
    ry_pvalues_free(*out);
    *out = NULL;
    return ry__err(ry_status_code(err), "%s", ry_status_message(err));
  }
  return NULL;
}

ry_builder *ry_pvalues_builder(const ry_pvalues *v) { return v ? v->b : NULL; }
int ry_pvalues_count(const ry_pvalues *v) { return v ? v->n : 0; }
const char *ry_pvalues_path(const ry_pvalues *v, int i) { return v && i >= 0 && i < v->n ? v->paths[i] : NULL; }
ry_value ry_pvalues_at(const ry_pvalues *v, int i) {
  ry_value none = {0};
  return v && i >= 0 && i < v->n ? v->vals[i] : none;
}
int ry_pvalues_has(const ry_pvalues *v, const char *path) { return pv_index(v, path) >= 0; }

static void pv_list(const ry_pvalues *v, char *buf, size_t size) {
  size_t used = 0;
  if (!v || v->n == 0) {
    snprintf(buf, size, "the view is empty");
    return;
  }
  used += (size_t)snprintf(buf, size, "have: ");
  for (int i = 0; i < v->n && used < size; i++) {
    if (i == 8) {
      snprintf(buf + used, size - used, ", ... (%d entries)", v->n);
      return;
    }
    int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", v->paths[i]);
    if (w < 0) return;
    used += (size_t)w;
  }
}

ry_value ry_pvalues_get_(ry_pvalues *v, ry_loc loc, const char *path) {
  ry_value none = {0};
  if (!v) return none;
  if (ry_builder_error(v->b)) return none;
  int i = pv_index(v, path);
  if (i < 0) {
    char have[512];
    pv_list(v, have, sizeof have);
    ry_builder_set_error(
        v->b, with_loc(ry__err(RY_ERR_NOT_FOUND, "params: no entry \"%.*s\" (%s)", 200, path ? path : "(null)", have), loc));
    return none;
  }
  return v->vals[i];
}

int ry_pvalues_set_(ry_pvalues *v, ry_loc loc, const char *path, ry_value x) {
  if (!v) return 0;
  if (ry_builder_error(v->b)) return 0;
  ry_status s = check_path(path);
  if (s) return ry_builder_set_error(v->b, with_loc(s, loc));
  if (!pv_put(v, path, x)) return ry_builder_set_error(v->b, ry__oom());
  return 1;
}

ry_pvalues *ry_pvalues_subtree(const ry_pvalues *v, const char *prefix) {
  if (!v) return NULL;
  ry_pvalues *t = ry_pvalues_new(v->b);
  if (!t) return NULL;
  for (int i = 0; i < v->n; i++) {
    const char *rest = strip_prefix(v->paths[i], prefix);
    if (rest && !pv_put(t, rest, v->vals[i])) {
      ry_pvalues_free(t);
      ry_builder_set_error(v->b, ry__oom());
      return NULL;
    }
  }
  return t;
}

int ry_pvalues_outputs_(ry_pvalues *v, ry_loc loc, const ry_params *like, const char *prefix, ry_value *out) {
  if (!v) return -1;
  if (ry_builder_error(v->b)) return -1;
  for (int i = 0; i < ry_params_count(like); i++) {
    char buf[RY_PARAMS_MAX_PATH];
    ry_status s = join(buf, prefix, like->paths[i]);
    if (s) {
      ry_builder_set_error(v->b, with_loc(s, loc));
      return -1;
    }
    int k = pv_index(v, buf);
    if (k < 0) {
      char have[512];
      pv_list(v, have, sizeof have);
      ry_builder_set_error(v->b,
                           with_loc(ry__err(RY_ERR_NOT_FOUND, "params: outputs: no value for \"%s\" (%s)", buf, have), loc));
      return -1;
    }
    ry_type have_t = ry_value_type(v->b, v->vals[k]), want = ry_array_type(like->arrays[i]);
    if (!ry_type_equal(have_t, want)) {
      ry_builder_set_error(v->b, with_loc(type_mismatch("params: outputs", buf, have_t, want), loc));
      return -1;
    }
    out[i] = v->vals[k];
  }
  return ry_params_count(like);
}
