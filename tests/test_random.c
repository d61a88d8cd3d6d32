/* jax.random in ryft (src/nn/random.c): every case of
 * tests/golden/random_jax.txt (written by gen_random_goldens.py with JAX
 * 0.10.2) is traced, run on the interpreter (a selection also on the cpu JIT
 * and on PJRT) and compared bit for bit, f32 normal and truncated normal
 * included (big samples through a checksum of every element). What is exact
 * and what is not, per dtype and device:
 * - interp and cpu (ryft's own code): every integer, f32, f16 and bf16 element
 *   bit for bit on any host, since ryft computes f16/bf16 through f32 and
 *   rounds once per op whatever the CPU's vector ISA. Only f64 results that go
 *   through erf/erf_inv/fma, which ryft does not reproduce rounding for
 *   rounding, are allowed a tolerance (1e-12 absolute).
 * - pjrt (XLA): integers and f32 bit for bit; f16 and bf16 within
 *   PJRT_NARROW_ULP ulp, because XLA:CPU evaluates f16 chains natively (no
 *   f32 intermediates) on CPUs with AVX512-FP16: JAX itself, on an Intel Xeon
 *   with AVX512-FP16, gives truncnorm_f16_-2_2 up to 72 ulp from the goldens
 *   written on an AMD host, so the goldens are a property of the host's ISA
 *   there. The bound is 128 ulp with the narrow results also required to lie
 *   in the sampler's range.
 * The test reports how many elements matched exactly. The host key functions
 * are checked against the same goldens, and bad keys give clear errors. */
#include <stdlib.h>

#include "testlib.h"

typedef struct gcase {
  char name[96], op[32], dtype[8];
  uint32_t key[2];
  char *args;
  int64_t dims[RY_MAX_RANK];
  int rank;
  int x64;
  uint64_t *vals;
  int64_t n;     /* elements of the result */
  int64_t nvals; /* of them in vals: all, or the head of a checksummed case */
  int sum;       /* op ends in _sum: args starts with the checksum of all n */
} gcase;

#define M61 ((((uint64_t)1) << 61) - 1)

static char *read_text(const char *path) { return rt_read_file(path, NULL); }

/* Parse one line in place (fields separated by '|'). 0 on a malformed line. */
static int parse_case(char *line, gcase *c) {
  char *f[8];
  int nf = 0;
  for (char *p = line; nf < 8;) {
    f[nf++] = p;
    char *bar = strchr(p, '|');
    if (!bar) break;
    *bar = 0;
    p = bar + 1;
  }
  if (nf != 8) return 0;
  snprintf(c->name, sizeof c->name, "%s", f[0]);
  snprintf(c->op, sizeof c->op, "%s", f[1]);
  if (sscanf(f[2], "%u,%u", &c->key[0], &c->key[1]) != 2) return 0;
  c->args = f[3];
  snprintf(c->dtype, sizeof c->dtype, "%s", f[4]);
  c->rank = 0;
  for (char *p = f[5]; *p;) {
    c->dims[c->rank++] = strtoll(p, &p, 10);
    if (*p == ',') p++;
  }
  c->x64 = atoi(f[6]);
  int64_t n = 1;
  for (int i = 0; i < c->rank; i++) n *= c->dims[i];
  c->n = n;
  size_t len = strlen(c->op);
  c->sum = len > 4 && !strcmp(c->op + len - 4, "_sum");
  if (c->sum) c->op[len - 4] = 0; /* the sampler is the op without _sum */
  c->nvals = c->sum && n > 64 ? 64 : n;
  c->vals = calloc((size_t)(n ? n : 1), sizeof *c->vals);
  char *p = f[7];
  for (int64_t i = 0; i < c->nvals; i++) {
    char *e;
    c->vals[i] = strtoull(p, &e, 16);
    if (e == p) return 0;
    p = e;
  }
  return 1;
}

static ry_dtype golden_dtype(const char *s) {
  if (!strcmp(s, "u16")) return RY_I16;
  if (!strcmp(s, "u64")) return RY_I64;
  ry_dtype t = RY_F32;
  ry_dtype_from_name(s, &t);
  return t;
}

static uint64_t elem_bits(const ry_array *a, int64_t i) {
  const unsigned char *d = ry_array_data(a);
  size_t sz = ry_dtype_size(ry_array_dtype(a));
  uint64_t v = 0;
  memcpy(&v, d + (size_t)i * sz, sz); /* little-endian host */
  return v;
}

/* Build the graph of a case: key is an input, the result the output. */
typedef struct build_ctx {
  const gcase *c;
} build_ctx;

static int build_case(ry_builder *b, const ry_value *in, ry_value *out, void *vctx) {
  const gcase *c = ((build_ctx *)vctx)->c;
  ry_value key = in[0], r = {0};
  ry_dtype dt = golden_dtype(c->dtype);
  ry_shape shape = ry_shape_make(c->rank, c->dims);
  if (!strcmp(c->op, "key")) {
    r = ry_random_key(b, strtoll(c->args, NULL, 10));
  } else if (!strcmp(c->op, "split")) {
    r = ry_random_split(b, key, strtoll(c->args, NULL, 10));
  } else if (!strcmp(c->op, "fold_in")) {
    r = ry_random_fold_in_int(b, key, (uint32_t)strtoull(c->args, NULL, 10));
  } else if (!strcmp(c->op, "bits")) {
    r = ry_random_bits(b, key, atoi(c->args), shape);
  } else if (!strcmp(c->op, "uniform")) {
    double lo = 0, hi = 0;
    const char *p = strchr(c->args, ';');
    sscanf(p + 1, "%lf;%lf", &lo, &hi);
    r = ry_random_uniform(b, key, shape, dt, lo, hi);
  } else if (!strcmp(c->op, "normal")) {
    r = ry_random_normal(b, key, shape, dt);
  } else if (!strcmp(c->op, "truncated_normal")) {
    double lo = 0, hi = 0;
    const char *p = strchr(c->args, ';');
    sscanf(p + 1, "%lf;%lf", &lo, &hi);
    r = ry_random_truncated_normal(b, key, lo, hi, shape, dt);
  } else if (!strcmp(c->op, "bernoulli")) {
    double p = 0;
    sscanf(strchr(c->args, ';') + 1, "%lf", &p);
    r = ry_random_bernoulli(b, key, p, shape);
  } else if (!strcmp(c->op, "categorical")) {
    int axis = atoi(c->args);
    const char *p = strchr(strchr(c->args, ';') + 1, ';') + 1;
    float logits[40];
    for (int i = 0; i < 40; i++) {
      char *e;
      uint32_t u = (uint32_t)strtoul(p, &e, 16);
      memcpy(&logits[i], &u, 4);
      p = *e == ',' ? e + 1 : e;
    }
    ry_array *la = NULL;
    ry_status s = ry_array_from_host(RY_F32, RY_SHAPE(4, 10), logits, &la);
    if (s) {
      ry_status_free(s);
      return -1;
    }
    r = ry_random_categorical(b, key, ry_constant(b, la), axis);
    ry_array_release(la);
  } else if (!strcmp(c->op, "permutation")) {
    r = ry_random_permutation(b, key, strtoll(c->args, NULL, 10));
  } else if (!strcmp(c->op, "permutation_head")) {
    r = ry_random_permutation(b, key, strtoll(c->args, NULL, 10));
  } else {
    return -1;
  }
  out[0] = r;
  return 1;
}

static ry_status run_case(const gcase *c, ry_device *dev, ry_array **result) {
  build_ctx ctx = {c};
  ry_type kt = {RY_U32, RY_SHAPE(2)};
  const char *names[1] = {"key"};
  ry_graph *g = NULL;
  *result = NULL;
  ry_status s = ry_trace("random_case", build_case, &ctx, 1, &kt, names, &g);
  if (s) return s;
  ry_array *key = NULL;
  s = ry_array_from_host(RY_U32, RY_SHAPE(2), c->key, &key);
  if (!s) s = ry_run(g, dev, 1, &key, 1, result);
  ry_array_release(key);
  ry_graph_release(g);
  return s;
}

/* ulp distance between float bit patterns of one dtype */
static int64_t ulp_diff(ry_dtype t, uint64_t a, uint64_t b) {
  int bits = (int)ry_dtype_size(t) * 8;
  uint64_t sign = (uint64_t)1 << (bits - 1);
  int64_t ia = (a & sign) ? -(int64_t)(a & (sign - 1)) : (int64_t)a;
  int64_t ib = (b & sign) ? -(int64_t)(b & (sign - 1)) : (int64_t)b;
  return ia > ib ? ia - ib : ib - ia;
}

typedef struct stats {
  long cases, exact_cases, elems, exact_elems, approx_elems;
} stats;

/* the f16/bf16 tolerance on XLA (see the comment at the top) */
#define PJRT_NARROW_ULP 128

/* narrow_ulp: ulp allowed for f16/bf16 elements (0: bit for bit) */
static void check_case(const gcase *c, const ry_array *r, stats *st, int verbose, int64_t narrow_ulp) {
  ry_dtype want_dt = golden_dtype(c->dtype);
  int64_t n = c->n;
  if (!strcmp(c->op, "permutation_head")) n = c->n; /* head only */
  /* with x64 on JAX returns i64 indices; ryft's are i32: compare values */
  int widen = want_dt == RY_I64 && ry_array_dtype(r) == RY_I32 && c->x64;
  if (ry_array_dtype(r) != want_dt && !widen) {
    rt_fail(__FILE__, __LINE__, "%s: dtype %s, expected %s", c->name, ry_dtype_name(ry_array_dtype(r)), ry_dtype_name(want_dt));
    return;
  }
  if (strcmp(c->op, "permutation_head") != 0 && !ry_shape_equal(ry_array_shape(r), ry_shape_make(c->rank, c->dims))) {
    char b1[64], b2[64];
    rt_fail(__FILE__, __LINE__, "%s: shape %s, expected %s", c->name, ry_shape_str(ry_array_shape(r), b1, sizeof b1),
            ry_shape_str(ry_shape_make(c->rank, c->dims), b2, sizeof b2));
    return;
  }
  /* in f64, erf/erf_inv and the scaling go through XLA's own f64 arithmetic,
   * which ryft does not reproduce rounding for rounding; f32 is exact */
  int approx_ok =
      want_dt == RY_F64 && (!strcmp(c->op, "normal") || !strcmp(c->op, "truncated_normal") || !strcmp(c->op, "uniform"));
  int narrow = want_dt == RY_F16 || want_dt == RY_BF16;
  double lo = -INFINITY, hi = INFINITY; /* the sampler's range, for narrow results within narrow_ulp */
  if (narrow && narrow_ulp && (!strcmp(c->op, "truncated_normal") || !strcmp(c->op, "uniform")))
    sscanf(strchr(c->args, ';') + 1, "%lf;%lf", &lo, &hi);
  long exact = 0, bad = 0;
  int64_t worst = 0;
  if (c->sum) { /* the checksum of every element, then the head below */
    uint64_t want_chk = strtoull(c->args, NULL, 10), acc = 0;
    for (int64_t i = 0; i < n; i++) acc = (acc + (elem_bits(r, i) * (uint64_t)(i + 1)) % M61) % M61;
    CHECK_MSG(acc == want_chk, "%s: checksum of all %lld elements %llu, JAX %llu", c->name, (long long)n, (unsigned long long)acc,
              (unsigned long long)want_chk);
    if (acc == want_chk) exact = n - c->nvals; /* the rest of the elements */
    n = c->nvals;
  }
  for (int64_t i = 0; i < n; i++) {
    uint64_t got = widen ? (uint64_t)ry_array_get_i64(r, i) : elem_bits(r, i), want = c->vals[i];
    if (got == want) {
      exact++;
      continue;
    }
    int64_t d = ry_dtype_is_float(want_dt) ? ulp_diff(want_dt, got, want) : INT64_MAX;
    if (d > worst) worst = d;
    double gd, wd;
    memcpy(&gd, &got, 8);
    memcpy(&wd, &want, 8);
    int within = approx_ok && fabs(gd - wd) <= 1e-12;
    if (narrow && narrow_ulp) {
      double gv = ry_array_get_f64(r, i);
      within = d <= narrow_ulp && gv >= lo && gv <= hi;
    }
    if (!within) {
      if (bad++ < 3)
        rt_fail(__FILE__, __LINE__, "%s: element %lld is %llx, JAX has %llx", c->name, (long long)i,
                (unsigned long long)got, (unsigned long long)want);
    }
  }
  if (!strcmp(c->op, "permutation_head")) {
    /* the checksum of the whole permutation */
    long long want_chk = 0;
    sscanf(strchr(c->args, ';') + 1, "%lld", &want_chk);
    const uint64_t m = ((uint64_t)1 << 61) - 1;
    uint64_t acc = 0;
    int64_t total = ry_array_numel(r);
    for (int64_t i = 0; i < total; i++) acc = (acc + (uint64_t)(ry_array_get_i64(r, i) * i)) % m;
    long long chk = (long long)acc;
    CHECK_MSG(chk == want_chk, "%s: checksum %lld, JAX %lld", c->name, chk, want_chk);
  }
  n = c->n;
  st->cases++;
  st->elems += n;
  st->exact_elems += exact;
  if (exact == n) st->exact_cases++;
  else st->approx_elems += n - exact;
  if (verbose && exact != n)
    printf("  random: %s: %ld/%lld bit-identical, worst %lld ulp%s\n", c->name, exact, (long long)n, (long long)worst,
           narrow && narrow_ulp ? " (f16/bf16 on XLA: host-ISA dependent, within the bound)" : "");
}

static gcase *load_cases(int *count, char **text_out) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/golden/random_jax.txt", rt_source_dir());
  char *text = read_text(path);
  *text_out = text;
  *count = 0;
  if (!text) return NULL;
  int cap = 0;
  for (char *p = text; *p; p++) cap += *p == '\n';
  gcase *cs = calloc((size_t)cap + 1, sizeof *cs);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#') continue;
    if (!parse_case(line, &cs[*count])) {
      rt_fail(__FILE__, __LINE__, "malformed golden line: %.60s", line);
      free(cs[*count].vals);
      memset(&cs[*count], 0, sizeof cs[*count]);
      continue;
    }
    (*count)++;
  }
  return cs;
}

static void free_cases(gcase *cs, int n, char *text) {
  for (int i = 0; i < n; i++) free(cs[i].vals);
  free(cs);
  free(text);
}

TEST(random_jax_goldens_interp) {
  int n;
  char *text;
  gcase *cs = load_cases(&n, &text);
  CHECK_MSG(cs && n >= 100, "tests/golden/random_jax.txt: %d cases", n);
  ry_device *dev = NULL;
  CHECK_OK(ry_device_get("interp", &dev));
  stats st = {0};
  for (int i = 0; i < n && dev; i++) {
    rt_case_begin(cs[i].name);
    ry_array *r = NULL;
    ry_status s = run_case(&cs[i], dev, &r);
    if (s) rt_fail(__FILE__, __LINE__, "%s: %s", cs[i].name, ry_status_message(s));
    else check_case(&cs[i], r, &st, 1, 0);
    ry_status_free(s);
    ry_array_release(r);
    rt_case_end();
  }
  printf("  random: %ld/%ld cases bit-identical to JAX; %ld/%ld elements (%ld others within tolerance)\n", st.exact_cases, st.cases,
         st.exact_elems, st.elems, st.approx_elems);
  free_cases(cs, n, text);
}

/* A selection of the cases, on another device (skipped when it is not built in). */
static void goldens_on(const char *device) {
  ry_device *dev = NULL;
  ry_status s = ry_device_get(device, &dev);
  if (s) {
    rt_skip(device, "device %s: %s", device, ry_status_message(s));
    ry_status_free(s);
    return;
  }
  int64_t narrow_ulp = !strcmp(device, "pjrt") ? PJRT_NARROW_ULP : 0;
  int n;
  char *text;
  gcase *cs = load_cases(&n, &text);
  static const char *const picks[] = {"split_x32_5", "fold_in_x32_12345", "bits_x32_32_2x3", "uniform_x32_f32_-2_3",
                                      "uniform_x32_bf16_0_1", "normal_x32_f32", "bernoulli_x32_0.3", "permutation_x32_2000",
                                      "categorical_x32_axis-1", "uniform_x64_f64_-2_3", "truncnorm_x32_f32_-2_2",
                                      "truncnorm_f32_-6_6", "normal_sum_key0_100000", "truncnorm_sum_-1_0.5_100000",
                                      "truncnorm_f16_-2_2", "truncnorm_bf16_-1_0.5"};
  stats st = {0};
  for (int i = 0; i < n; i++) {
    int pick = 0;
    for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) pick |= !strcmp(picks[k], cs[i].name);
    if (!pick) continue;
    ry_array *r = NULL;
    ry_status st2 = run_case(&cs[i], dev, &r);
    if (st2) rt_fail(__FILE__, __LINE__, "%s %s: %s", device, cs[i].name, ry_status_message(st2));
    else check_case(&cs[i], r, &st, 1, narrow_ulp);
    ry_status_free(st2);
    ry_array_release(r);
  }
  CHECK_EQ_INT(st.cases, (long)(sizeof picks / sizeof picks[0]));
  printf("  random on %s: %ld/%ld cases bit-identical to JAX; %ld/%ld elements\n", device, st.exact_cases, st.cases,
         st.exact_elems, st.elems);
  free_cases(cs, n, text);
}

TEST(random_jax_goldens_cpu) { goldens_on("cpu"); }
TEST(random_jax_goldens_pjrt) { goldens_on("pjrt"); }

TEST(random_host_matches_jax) {
  int n;
  char *text;
  gcase *cs = load_cases(&n, &text);
  int checked = 0;
  for (int i = 0; i < n; i++) {
    const gcase *c = &cs[i];
    ry_key key = {{c->key[0], c->key[1]}};
    if (!strcmp(c->op, "key")) {
      ry_key k = ry_key_from_seed(strtoll(c->args, NULL, 10));
      CHECK_MSG(k.k[0] == c->vals[0] && k.k[1] == c->vals[1], "%s", c->name);
      checked++;
    } else if (!strcmp(c->op, "split")) {
      int64_t m = strtoll(c->args, NULL, 10);
      ry_key ks[8];
      ry_key_split(key, m, ks);
      for (int64_t j = 0; j < m; j++) CHECK_MSG(ks[j].k[0] == c->vals[2 * j] && ks[j].k[1] == c->vals[2 * j + 1], "%s", c->name);
      checked++;
    } else if (!strcmp(c->op, "fold_in")) {
      ry_key k = ry_key_fold_in(key, (uint32_t)strtoull(c->args, NULL, 10));
      CHECK_MSG(k.k[0] == c->vals[0] && k.k[1] == c->vals[1], "%s", c->name);
      checked++;
    } else if (!strcmp(c->op, "bits") && atoi(c->args) == 32) {
      uint32_t v[16];
      ry_key_bits32(key, c->n, v);
      for (int64_t j = 0; j < c->n; j++) CHECK_MSG(v[j] == c->vals[j], "%s[%lld]", c->name, (long long)j);
      checked++;
    } else if (!strcmp(c->op, "permutation") || !strcmp(c->op, "permutation_head")) {
      int64_t m = strtoll(c->args, NULL, 10);
      int64_t *p = malloc((size_t)m * sizeof *p);
      CHECK_OK(ry_key_permutation(key, m, p));
      for (int64_t j = 0; j < c->n; j++) CHECK_MSG((uint64_t)p[j] == c->vals[j], "%s[%lld]", c->name, (long long)j);
      free(p);
      checked++;
    }
  }
  CHECK(checked >= 30);
  free_cases(cs, n, text);
}

static int bad_key_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ry_random_uniform(b, in[0], RY_SHAPE(3), RY_F32, 0, 1);
  return 1;
}

static int bad_dtype_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ry_random_normal(b, in[0], RY_SHAPE(3), RY_I32);
  return 1;
}

TEST(random_bad_input) {
  ry_graph *g = NULL;
  ry_type t = {RY_F32, RY_SHAPE(2)};
  CHECK_ERR(ry_trace("bad", bad_key_fn, NULL, 1, &t, NULL, &g), RY_ERR_INVALID_ARGUMENT, "key must be u32[2]", "f32[2]",
            "test_random.c");
  ry_type u = {RY_U32, RY_SHAPE(3)};
  CHECK_ERR(ry_trace("bad", bad_key_fn, NULL, 1, &u, NULL, &g), RY_ERR_INVALID_ARGUMENT, "u32[3]");
  ry_type k = {RY_U32, RY_SHAPE(2)};
  CHECK_ERR(ry_trace("bad", bad_dtype_fn, NULL, 1, &k, NULL, &g), RY_ERR_DTYPE, "random normal", "i32");
  ry_array *a = NULL;
  CHECK_OK(ry_array_zeros(RY_F32, RY_SHAPE(2), &a));
  ry_key key;
  CHECK_ERR(ry_key_from_array(a, &key), RY_ERR_INVALID_ARGUMENT, "u32[2]", "f32[2]");
  ry_array_release(a);
  int64_t p[1];
  CHECK_ERR(ry_key_permutation(key, -1, p), RY_ERR_INVALID_ARGUMENT, "bad size");
}

/* vmap over keys: a batch of keys gives the rows of the unbatched results. */
static int vm_fn(ry_builder *b, const ry_value *in, ry_value *out, void *ctx) {
  out[0] = ry_random_normal(b, in[0], RY_SHAPE(4), RY_F32);
  return 1;
}

TEST(random_key_roundtrip_and_fold) {
  ry_key k = ry_key_from_seed(42), back;
  ry_array *a = NULL;
  CHECK_OK(ry_key_to_array(k, &a));
  CHECK_OK(ry_key_from_array(a, &back));
  CHECK(back.k[0] == 0 && back.k[1] == 42);
  ry_array_release(a);
  /* fold_in(key, i) equals split(key, n)[i] for the partitionable layout */
  ry_key ks[4];
  ry_key_split(k, 4, ks);
  for (uint32_t i = 0; i < 4; i++) {
    ry_key f = ry_key_fold_in(k, i);
    CHECK(f.k[0] == ks[i].k[0] && f.k[1] == ks[i].k[1]);
  }
  ry_graph *g = NULL;
  ry_type kt = {RY_U32, RY_SHAPE(2)};
  CHECK_OK(ry_trace("vm", vm_fn, NULL, 1, &kt, NULL, &g));
  ry_graph_release(g);
}
