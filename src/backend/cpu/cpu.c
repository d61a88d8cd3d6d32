/* The cpu backend: compile = passes + plan + codegen + JIT; execute = run
 * the plan's steps (generated kernels over the thread pool, GEMMs, and the
 * interpreter's kernels for everything else) with buffers released after
 * their last use and recycled for later outputs of the same size.
 *
 * Cold start: when the module is in neither compile cache, compile returns
 * at once and a thread runs the C compiler; until it has loaded the module
 * (published with a release store of `ready`), runs go node by node through
 * the interpreter's kernels, GEMMs and convolutions as in the plan
 * (cold_run). RYFT_COMPILE_SYNC=1 compiles before returning instead. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "vmath.h"

typedef void (*ryc_kernel_fn)(char *const *bufs, int64_t lo, int64_t hi);

#define COLD_SKIP (-2)

typedef struct cpu_state {
  ry_graph *g;              /* the optimized graph (own reference) */
  ryc_plan plan;
  ryc_module *mod;
  ryc_kernel_fn *fns;       /* [plan.n_kernels] */
  ryc_kernel_fn *ip_fns;    /* [plan.n_steps * RYC_MAX_INPLACE] in-place variants (a step with several
                               outputs: its ryk_<kernel>_ipm first) */
  int32_t *last_use;        /* for interpreter frames (nested regions) */
  bool interp_only;         /* no compiler: the interpreter runs the original graph */
  /* cold start (see the top of the file) */
  atomic_bool ready;        /* mod, fns and ip_fns are set */
  bool cold;                /* lock and finished are initialized: runs may go node by node */
  bool compiling;           /* `thread` was started: state_free joins it */
  pthread_t thread;
  pthread_mutex_t lock;     /* guards the four below */
  pthread_cond_t finished;  /* signalled when `done` is set */
  bool done;                /* the compile thread has finished, loaded or failed */
  double compile_t0, compile_est; /* when the compile started, how long it should take (s) */
  double cold_est;          /* how long a cold run takes: the cost model's guess, then the last one measured (s) */
  double cold_margin;       /* a cold run must be this many times shorter than the compile's rest */
  int32_t *cold_step;       /* [n_nodes]: the GEMM / CONV / QGEMM step of a node, else -1 (or COLD_SKIP) */
  int32_t *cold_last;       /* [n_values + 1]: last region-0 position using a value; -1 none */
  ryc_dump dump;
} cpu_state;

/* ---- dump ---- */



/* ---- compile ---- */

static void state_free(cpu_state *st) {
  if (!st) return;
  if (st->compiling) pthread_join(st->thread, NULL);
  if (st->cold) {
    pthread_cond_destroy(&st->finished);
    pthread_mutex_destroy(&st->lock);
  }
  if (st->cold_step) ry__free(st->cold_step, ((size_t)st->g->n_nodes + 1) * sizeof(int32_t));
  if (st->cold_last) ry__free(st->cold_last, ((size_t)st->g->n_values + 1) * sizeof(int32_t));
  if (st->fns) ry__free(st->fns, (size_t)(st->plan.n_kernels ? st->plan.n_kernels : 1) * sizeof(ryc_kernel_fn));
  if (st->ip_fns) ry__free(st->ip_fns, (size_t)st->plan.n_steps * RYC_MAX_INPLACE * sizeof(ryc_kernel_fn));
  if (st->last_use && st->g) ry__free(st->last_use, ((size_t)st->g->n_values + 1) * sizeof(int32_t));
  ryc_module_release(st->mod);
  if (st->plan.steps || st->plan.source) ryc_plan_free(&st->plan);
  ry_graph_release(st->g);
  ry__free(st, sizeof *st);
}

static void cpu_free(void *state) { state_free(state); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Compiles in the background unless RYFT_COMPILE_SYNC is set (not "0");
 * the tests' override wins when set (2: never compile, every run node by
 * node). */
static atomic_int g_background = -1;

void ryc_set_background_compiles(int on) { atomic_store(&g_background, on); }

static int background_compiles(void) {
  int o = atomic_load(&g_background);
  if (o >= 0) return o;
  const char *e = getenv("RYFT_COMPILE_SYNC");
  return !(e && *e && strcmp(e, "0") != 0);
}

/* ---- cold start: run node by node, or wait for the compiler? ----
 *
 * A cold run pays the interpreter's kernels, a compile the C compiler;
 * neither is known in advance, so both are guessed: the compile from the
 * module's size past its prelude (scaled by how far this process's earlier
 * compiles were off), a cold run from a cost per element of each node until
 * one has been measured. A run goes node by node only when that should end
 * before the module is loaded, with a margin (`cold_margin`) where the
 * compiler already has every core: there a cold run also slows the compile
 * down; otherwise it waits for the module. */

static pthread_mutex_t g_cal_lock = PTHREAD_MUTEX_INITIALIZER;
static double g_cc_scale = 1.0; /* measured / guessed compile times, smoothed */

static double compile_time_guess(const cpu_state *st) {
  const char *end = strstr(st->plan.source, RYC_PRELUDE_END);
  size_t body = end ? st->plan.source_len - (size_t)(end - st->plan.source) : st->plan.source_len;
  pthread_mutex_lock(&g_cal_lock);
  double k = g_cc_scale;
  pthread_mutex_unlock(&g_cal_lock);
  return k * (0.08 + (double)body / 30e3); /* cc: ~80 ms for the prelude alone, ~30 KB of kernels a second */
}

static void compile_time_learn(double guessed, double took) {
  pthread_mutex_lock(&g_cal_lock);
  double r = g_cc_scale * took / guessed;
  r = r < 0.1 ? 0.1 : r > 10 ? 10 : r;
  g_cc_scale = 0.5 * g_cc_scale + 0.5 * r;
  pthread_mutex_unlock(&g_cal_lock);
}

/* Seconds a cold run should take: interpreted nodes by their elements
 * (plain loops and the vectorized exp and erf of vmath.c ~1 ns an element,
 * libm's functions ~3, the general index loops ~10, threefry ~200), GEMMs
 * and convolutions by their flops. */
static double cold_time_guess(const cpu_state *st) {
  const ry_graph *g = st->g;
  const ry_region *body = &g->regions[0];
  double t = 0;
  for (int32_t k = 0; k < body->nodes.n; k++) {
    int32_t id = body->nodes.v[k];
    const ry_node *n = &g->nodes[id];
    if (n->n_results < 1) continue;
    ry_type rt = ry_vtype(g, ry_node_results(g, n)[0]);
    double out = (double)ry_shape_numel(rt.shape);
    int32_t step = st->cold_step[id];
    if (step == COLD_SKIP) continue;
    if (step >= 0 && st->plan.steps[step].kind == RYC_STEP_GEMM) {
      const ryc_gemm *gm = &st->plan.steps[step].gemm;
      t += 2.0 * (double)gm->batch * (double)gm->m * (double)gm->n * (double)gm->k / 20e9;
      continue;
    }
    if (step >= 0 && st->plan.steps[step].kind == RYC_STEP_QGEMM) {
      const ryc_qgemm *q = &st->plan.steps[step].qgemm;
      t += 2.0 * (double)q->m * (double)q->n * (double)q->k / 20e9;
      continue;
    }
    if (step >= 0) { /* a convolution: each output element a dot over the window and input features */
      ry_type w = ry_vtype(g, ry_node_operands(g, n)[1]);
      double feat = rt.shape.rank ? (double)rt.shape.dims[rt.shape.rank - 1] : 1;
      t += 2.0 * out * (double)ry_shape_numel(w.shape) / (feat > 0 ? feat : 1) / 20e9;
      continue;
    }
    double in = n->n_operands ? (double)ry_shape_numel(ry_vtype(g, ry_node_operands(g, n)[0]).shape) : 0;
    double elems = in > out ? in : out, ns = 10;
    ry_op_kind kind = ryg_op_table[n->op].kind;
    if (kind == RY_KIND_THREEFRY) ns = 200;
    else if (kind == RY_KIND_UNARY && rt.dtype == RY_F32) ns = n->op == RY_OP_EXP || n->op == RY_OP_ERF ? 1 : 3;
    else if (kind == RY_KIND_BINARY || kind == RY_KIND_REDUCE || kind == RY_KIND_BROADCAST || kind == RY_KIND_RESHAPE ||
             kind == RY_KIND_CONSTANT || kind == RY_KIND_COMPARE || kind == RY_KIND_SELECT || kind == RY_KIND_CONVERT)
      ns = 1;
    t += elems * ns * 1e-9;
  }
  return t;
}

/* Called by a run that finds the module not loaded: true to go node by
 * node, false after waiting for the compile (which may have failed: then
 * node by node after all). */
static bool run_cold(cpu_state *st) {
  pthread_mutex_lock(&st->lock);
  double left = st->compile_est - (now_s() - st->compile_t0);
  if (left < 0.1 * st->compile_est) left = 0.1 * st->compile_est; /* late: it should be nearly done */
  if (!st->done && st->cold_est * st->cold_margin >= left)
    while (!st->done) pthread_cond_wait(&st->finished, &st->lock);
  pthread_mutex_unlock(&st->lock);
  return !atomic_load_explicit(&st->ready, memory_order_acquire);
}

/* The kernels of the loaded module m (st takes its reference). */
static ry_status bind_module(cpu_state *st, ryc_module *m) {
  st->mod = m;
  st->fns = ry__calloc((size_t)st->plan.n_kernels, sizeof(ryc_kernel_fn));
  if (!st->fns) return ry__oom();
  for (int i = 0; i < st->plan.n_kernels; i++) {
    char name[32];
    snprintf(name, sizeof name, "ryk_%d", i);
    void *p = ryc_module_sym(st->mod, name);
    if (!p) return ry__err(RY_ERR_INTERNAL, "cpu: generated module lacks %s", name);
    memcpy(&st->fns[i], &p, sizeof p);
  }
  if (!(st->ip_fns = ry__calloc((size_t)st->plan.n_steps * RYC_MAX_INPLACE, sizeof(ryc_kernel_fn)))) return ry__oom();
  for (int i = 0; i < st->plan.n_steps; i++) {
    const ryc_step *sp = &st->plan.steps[i];
    for (int v = 0; v < (sp->n_ipm ? 1 : sp->n_inplace); v++) {
      char name[48];
      if (sp->n_ipm) snprintf(name, sizeof name, "ryk_%d_ipm", sp->kernel);
      else snprintf(name, sizeof name, "ryk_%d_ip%d", sp->kernel, sp->inplace_slot[v]);
      void *p = ryc_module_sym(st->mod, name);
      if (!p) return ry__err(RY_ERR_INTERNAL, "cpu: generated module lacks %s", name);
      memcpy(&st->ip_fns[i * RYC_MAX_INPLACE + v], &p, sizeof p);
    }
  }
  return NULL;
}

/* The compile thread: on success the runs switch to the module; on failure
 * the program keeps running node by node, and the error is said once. */
static void *compile_thread(void *arg) {
  cpu_state *st = arg;
  ryc_module *m = NULL;
  ry_status s = ryc_module_get(st->plan.source, st->plan.source_len, &st->dump, &m);
  if (!s) s = bind_module(st, m);
  bool ok = !s;
  if (s) {
    fprintf(stderr, "ryft: cpu: compiling program '%s' failed; it keeps running in the interpreter: %s\n",
            st->g->name ? st->g->name : "?", ry_status_message(s));
    ry_status_free(s);
  } else {
    atomic_store_explicit(&st->ready, true, memory_order_release);
  }
  pthread_mutex_lock(&st->lock);
  if (ok) compile_time_learn(st->compile_est, now_s() - st->compile_t0);
  st->done = true;
  pthread_cond_broadcast(&st->finished);
  pthread_mutex_unlock(&st->lock);
  return NULL;
}

/* What a cold run needs: the GEMM / CONV / QGEMM step of each node
 * (COLD_SKIP: a dequantize folded into its products, which read the blocks),
 * and where each value of region 0 is used last (its results: never
 * released; a value a step reads in place of an operand, a window's buffer
 * or the blocks, lives until that step). */
static ry_status cold_tables(cpu_state *st) {
  const ry_graph *g = st->g;
  size_t nn = (size_t)g->n_nodes + 1, nv = (size_t)g->n_values + 1;
  if (!(st->cold_step = ry__malloc(nn * sizeof(int32_t))) || !(st->cold_last = ry__malloc(nv * sizeof(int32_t))))
    return ry__oom();
  for (size_t i = 0; i < nn; i++) st->cold_step[i] = -1;
  for (size_t v = 0; v < nv; v++) st->cold_last[v] = -1;
  for (int i = 0; i < st->plan.n_steps; i++) {
    const ryc_step *sp = &st->plan.steps[i];
    if (sp->kind == RYC_STEP_GEMM || sp->kind == RYC_STEP_CONV || sp->kind == RYC_STEP_QGEMM) st->cold_step[sp->node] = i;
  }
  const ry_region *body = &g->regions[0];
  for (int32_t k = 0; k < body->nodes.n; k++) {
    int32_t id = body->nodes.v[k];
    const ry_node *n = &g->nodes[id];
    int32_t step = st->cold_step[id];
    bool stepped = false; /* a dequantize with no step of its own was folded */
    for (int i = 0; n->op == RY_OP_DEQUANTIZE && i < st->plan.n_steps; i++) stepped |= st->plan.steps[i].node == id;
    if (n->op == RY_OP_DEQUANTIZE && !stepped) {
      st->cold_step[id] = COLD_SKIP;
      continue;
    }
    for (int i = 0; i < n->n_operands; i++) st->cold_last[ry_node_operands(g, n)[i]] = k;
    if (step >= 0 && st->plan.steps[step].kind != RYC_STEP_CONV)
      for (int j = st->plan.steps[step].n_out; j < st->plan.steps[step].n_bufs; j++) st->cold_last[st->plan.steps[step].bufs[j]] = k;
  }
  for (int32_t i = 0; i < body->results.n; i++) st->cold_last[body->results.v[i]] = INT32_MAX;
  return NULL;
}

/* The module: from a cache now, else compiled now (RYFT_COMPILE_SYNC) or
 * by a thread while runs go node by node. */
static ry_status get_module(cpu_state *st, bool *background) {
  *background = false;
  ryc_module *m = NULL;
  ry_status s = NULL;
  int mode = background_compiles();
  if (mode) {
    s = mode == 2 ? NULL : ryc_module_find(st->plan.source, st->plan.source_len, &m);
    if (s) return s;
    if (!m) {
      if ((s = cold_tables(st))) return s;
      st->cold_est = cold_time_guess(st);
      st->compile_est = compile_time_guess(st);
      /* a compiler process on every core: the cold run takes CPU from it */
      long cores = sysconf(_SC_NPROCESSORS_ONLN);
      st->cold_margin = cores > ryc_module_processes(st->plan.source, st->plan.source_len) ? 1 : 4;
      st->compile_t0 = now_s();
      if (pthread_mutex_init(&st->lock, NULL) != 0) return ry__err(RY_ERR_INTERNAL, "cpu: pthread_mutex_init failed");
      if (pthread_cond_init(&st->finished, NULL) != 0) {
        pthread_mutex_destroy(&st->lock);
        return ry__err(RY_ERR_INTERNAL, "cpu: pthread_cond_init failed");
      }
      st->cold = true;
      *background = true;
      if (mode == 2) { /* tests: as if the compile had failed */
        st->done = true;
        return NULL;
      }
      if (pthread_create(&st->thread, NULL, compile_thread, st) == 0) {
        st->compiling = true;
        return NULL;
      }
      /* no thread: compile here */
      *background = false;
    }
  }
  if (!m) s = ryc_module_get(st->plan.source, st->plan.source_len, &st->dump, &m);
  return s ? s : bind_module(st, m);
}

static ry_status cpu_compile(ry_graph *g, void **state) {
  *state = NULL;
  cpu_state *st = ry__calloc(1, sizeof *st);
  if (!st) return ry__oom();
  if (!ryc_have_compiler()) {
    static atomic_int said;
    if (!atomic_exchange(&said, 1))
      fprintf(stderr, "ryft: cpu: no C compiler found (set RYFT_CC); running programs in the interpreter\n");
    st->interp_only = true;
    st->g = ry_graph_retain(g);
    *state = st;
    return NULL;
  }
  ryc_dump *d = &st->dump;
  ryc_dump_init(d);
  double t0 = now_s();
  ry_status s = ryc_optimize(g, d, &st->g);
  double t1 = now_s();
  if (!s) s = ryc_plan_build(st->g, &st->plan);
  double t2 = now_s();
  if (!s) {
    ryc_dump_text(d, "04-fusion.txt", st->plan.report);
    ryc_dump_text(d, "05-kernels.c", st->plan.source);
  }
  bool background = false;
  if (!s && st->plan.n_kernels > 0) s = get_module(st, &background);
  double t3 = now_s();
  if (!s) {
    size_t nv = (size_t)st->g->n_values + 1;
    st->last_use = ry__malloc(nv * sizeof(int32_t));
    if (!st->last_use) s = ry__oom();
    else {
      const ry_graph *og = st->g;
      for (size_t v = 0; v < nv; v++) st->last_use[v] = -1;
      for (int32_t r = 1; r < og->n_regions; r++) {
        const ry_region *reg = &og->regions[r];
        for (int32_t k = 0; k < reg->nodes.n; k++) {
          const ry_node *n = &og->nodes[reg->nodes.v[k]];
          for (int i = 0; i < n->n_operands; i++) st->last_use[ry_node_operands(og, n)[i]] = k;
        }
        for (int32_t i = 0; i < reg->results.n; i++) st->last_use[reg->results.v[i]] = INT32_MAX;
      }
      /* region 0 values are released by the plan, never by the interpreter */
      for (int32_t v = 0; v < og->n_values; v++)
        if (og->values[v].region == 0) st->last_use[v] = INT32_MAX;
    }
  }
  FILE *f = ryc_dump_open(d, "06-times.txt");
  if (f) {
    fprintf(f, "passes: %.3f ms\nplan+codegen: %.3f ms\ncompile+load: %.3f ms%s\nkernels: %d\nsteps: %d\n%s\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, background ? " (compiling in the background)" : "",
            st->plan.n_kernels, st->plan.n_steps, s ? ry_status_message(s) : "ok");
    fclose(f);
  }
  if (s) {
    state_free(st);
    return s;
  }
  if (!background) atomic_store_explicit(&st->ready, true, memory_order_release);
  *state = st;
  return NULL;
}

/* ---- execute ---- */

/* released buffers kept for reuse within one run, and the run's memory
 * statistics: bytes of the buffers the run holds (its temporaries and
 * outputs, live or waiting in the free list; not the caller's inputs) */
#define FREE_SLOTS 16
typedef struct {
  ry_array *free[FREE_SLOTS];
  int n_free;
  ryc_run_stats st;
} recycler;

static _Thread_local ryc_run_stats g_last_run;

void ryc_last_run_stats(ryc_run_stats *out) { *out = g_last_run; }

static void held_add(recycler *rc, size_t n) {
  rc->st.live_bytes += n;
  if (rc->st.live_bytes > rc->st.peak_bytes) rc->st.peak_bytes = rc->st.live_bytes;
}

static ry_status new_buffer(recycler *rc, ry_type t, ry_array **out) {
  size_t nbytes = (size_t)ry_shape_numel(t.shape) * ry_dtype_size(t.dtype);
  for (int i = 0; i < rc->n_free; i++)
    if (rc->free[i]->nbytes == nbytes) {
      ry_array *a = rc->free[i];
      rc->free[i] = rc->free[--rc->n_free];
      a->type = t;
      *out = a;
      rc->st.reused++;
      return NULL;
    }
  held_add(rc, nbytes);
  rc->st.fresh_bytes += nbytes;
  /* kernels write every element: no zeroing (big fresh buffers get 2 MB
   * pages: ry__data_alloc) */
  return ry__array_new_uninit(t, out);
}

/* Release the run's reference of value a; `held` says whether a counts in
 * the run's bytes (not an input). A buffer nobody else holds is kept for
 * reuse. */
static void drop(recycler *rc, ry_array *a, bool held) {
  if (!a) return;
  if (ry__array_exclusive(a) && a->nbytes >= 4096 && rc->n_free < FREE_SLOTS) {
    if (!held) held_add(rc, a->nbytes); /* a donated input joins the free list */
    rc->free[rc->n_free++] = a;
    return;
  }
  if (held) rc->st.live_bytes -= a->nbytes;
  ry_array_release(a);
}

typedef struct {
  ryc_kernel_fn fn;
  char **ptrs;
} kjob;

static void kernel_task(void *ctx, int64_t lo, int64_t hi) {
  const kjob *j = ctx;
  j->fn(j->ptrs, lo, hi);
}


/* Value r takes over x's buffer a (x dies at this step, the run holds its
 * last reference): x's release at the step becomes a no-op. */
static void take_over(const ry_graph *g, ry_array **vals, int32_t x, int32_t r, recycler *rc) {
  ry_array *a = vals[x];
  if (g->values[x].node < 0) held_add(rc, a->nbytes); /* a donated input becomes the run's */
  vals[r] = a;
  vals[x] = NULL;
  a->type = ry_vtype(g, r);
  rc->st.in_place++;
}

static ry_status run_kernel(const cpu_state *st, int step, ry_array **vals, recycler *rc) {
  const ry_graph *g = st->g;
  const ryc_step *sp = &st->plan.steps[step];
  int32_t r = sp->bufs[0];
  ry_type rt = ry_vtype(g, r);
  ryc_kernel_fn fn = st->fns[sp->kernel];
  size_t rbytes = (size_t)ry_shape_numel(rt.shape) * ry_dtype_size(rt.dtype);
  int ip_slot = -1;
  /* write over an input that dies at this step when the run holds its last
   * reference (a donated input, or a temporary nobody else retained) */
  for (int v = 0; v < sp->n_inplace && ip_slot < 0; v++) {
    int32_t x = sp->bufs[sp->inplace_slot[v]];
    ry_array *a = vals[x];
    if (!a || !ry__array_exclusive(a) || a->nbytes != rbytes) continue;
    take_over(g, vals, x, r, rc);
    fn = st->ip_fns[step * RYC_MAX_INPLACE + v];
    ip_slot = sp->inplace_slot[v];
  }
  /* several outputs: each may take over one of the slots ryk_<kernel>_ipm
     lets it share */
  int over[RYC_MAX_EW_OUT];
  bool taken[RYC_MAX_IPM] = {false}, any_over = false;
  for (int o = 0; o < sp->n_out && sp->n_ipm; o++) {
    ry_type ot = ry_vtype(g, sp->bufs[o]);
    size_t ob = (size_t)ry_shape_numel(ot.shape) * ry_dtype_size(ot.dtype);
    over[o] = -1;
    for (int v = 0; v < sp->n_ipm && over[o] < 0; v++) {
      int32_t x = sp->bufs[sp->ipm_slot[v]];
      ry_array *a = vals[x];
      if (taken[v] || !a || !ry__array_exclusive(a) || a->nbytes != ob || ry_vtype(g, x).dtype != ot.dtype) continue;
      taken[v] = any_over = true;
      over[o] = sp->ipm_slot[v];
      take_over(g, vals, x, sp->bufs[o], rc);
    }
  }
  if (any_over) fn = st->ip_fns[step * RYC_MAX_INPLACE];
  ry_status s = vals[r] ? NULL : new_buffer(rc, rt, &vals[r]);
  /* a row kernel writes several outputs */
  for (int i = 1; !s && i < sp->n_out; i++)
    if (!vals[sp->bufs[i]]) s = new_buffer(rc, ry_vtype(g, sp->bufs[i]), &vals[sp->bufs[i]]);
  if (s) return s;
  char *small[32], **ptrs = small;
  size_t psz = (size_t)sp->n_bufs * sizeof(char *);
  if (sp->n_bufs > 32 && !(ptrs = ry__malloc(psz))) return ry__oom();
  for (int i = 0; i < sp->n_bufs; i++) {
    if (i == ip_slot) { /* the buffer written in place is now the output's */
      ptrs[i] = vals[r]->data;
      continue;
    }
    int o = 0;
    while (any_over && o < sp->n_out && over[o] != i) o++;
    if (any_over && o < sp->n_out) { /* taken over by output o */
      ptrs[i] = vals[sp->bufs[o]]->data;
      continue;
    }
    ry_array *a = vals[sp->bufs[i]];
    if (!a) {
      if (ptrs != small) ry__free(ptrs, psz);
      return ry__err(RY_ERR_INTERNAL, "cpu: kernel %d reads value %d, which has no buffer", sp->kernel,
                     (int)sp->bufs[i]);
    }
    ptrs[i] = a->data;
  }
  bool any = false; /* a row kernel's first output may be empty while others are not */
  for (int i = 0; i < sp->n_out && !any; i++) any = ry_shape_numel(ry_vtype(g, sp->bufs[i]).shape) > 0;
  if (any) {
    kjob j = {fn, ptrs};
    int64_t min_work = ryc_parallel_threshold();
    if (sp->work < min_work || sp->outer <= 1) {
      j.fn(ptrs, 0, sp->outer);
    } else {
      int64_t per = sp->work / sp->outer; /* elements per outer iteration */
      int64_t grain = per >= min_work ? 1 : min_work / (per ? per : 1);
      /* a flat loop is vectorized from each chunk's start: chunks start at
       * multiples of 64 so every element takes the same code path (vector
       * body or tail) whatever the thread count */
      if (per <= 1) grain = (grain + 63) / 64 * 64;
      ryc_parallel_for(sp->outer, grain, kernel_task, &j);
    }
  }
  if (ptrs != small) ry__free(ptrs, psz);
  return NULL;
}

/* bf16 operands: f32 sums, rounded once at the end for a bf16 result */
static ry_status run_bgemm(const ryc_gemm *gm, const ry_array *a, const ry_array *b, ry_array *out) {
  int64_t mn = gm->m * gm->n;
  bool out16 = gm->dt == RY_BF16;
  for (int64_t i = 0; i < gm->batch; i++) {
    ry_status s = ryc_bgemm(gm->trans_a, gm->trans_b, gm->m, gm->n, gm->k,
                            (const char *)a->data + (size_t)(i * gm->a_bstride) * (gm->a_f32 ? 4 : 2), gm->a_f32,
                            (const char *)b->data + (size_t)(i * gm->b_bstride) * (gm->b_f32 ? 4 : 2), gm->b_f32,
                            out16 ? NULL : (float *)out->data + i * mn, out16 ? (uint16_t *)out->data + i * mn : NULL);
    if (s) return s;
  }
  return NULL;
}

static ry_status run_gemm(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc) {
  const ry_graph *g = st->g;
  int32_t r = sp->bufs[0];
  const ry_array *a = vals[sp->bufs[1]], *b = vals[sp->bufs[2]]; /* the operands, or the buffers they are windows of */
  if (!a || !b) return ry__err(RY_ERR_INTERNAL, "cpu: gemm operand has no buffer");
  ry_status s = new_buffer(rc, ry_vtype(g, r), &vals[r]);
  if (s) return s;
  const ryc_gemm *gm = &sp->gemm;
  if (gm->in_dt == RY_BF16) return run_bgemm(gm, a, b, vals[r]);
  if (gm->dt == RY_F32) {
    ryc_sgemm_batch(gm->trans_a, gm->trans_b, gm->batch, gm->m, gm->n, gm->k, a->data, gm->a_bstride, b->data,
                    gm->b_bstride, vals[r]->data);
    return NULL;
  }
  for (int64_t i = 0; i < gm->batch; i++)
    ryc_dgemm(gm->trans_a, gm->trans_b, gm->m, gm->n, gm->k, (const double *)a->data + i * gm->a_bstride,
              (const double *)b->data + i * gm->b_bstride, (double *)vals[r]->data + i * gm->m * gm->n);
  return NULL;
}

static ry_status run_qgemm(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc) {
  const ry_array *x = vals[sp->bufs[1]];
  ry_array *w = vals[sp->bufs[2]];
  if (!x || !w) return ry__err(RY_ERR_INTERNAL, "cpu: quantized gemm operand has no buffer");
  ry_status s = new_buffer(rc, ry_vtype(st->g, sp->bufs[0]), &vals[sp->bufs[0]]);
  return s ? s : ryc_qgemm_run_array(&sp->qgemm, x->data, w, vals[sp->bufs[0]]->data);
}

/* Consecutive quantized products of one x (a layer's query, key and value
 * projections; its gate and up projections) from step i on: how many run
 * as one job (none reads another's result: their operands are x and their
 * own weights). */
static int qgemm_group_len(const cpu_state *st, int i) {
  const ryc_step *sp = &st->plan.steps[i];
  int c = 1;
  while (c < RYC_QGEMM_GROUP_MAX && i + c < st->plan.n_steps) {
    const ryc_step *o = &st->plan.steps[i + c];
    if (o->kind != RYC_STEP_QGEMM || o->bufs[1] != sp->bufs[1] || !ryc_qgemm_groupable(&sp->qgemm, &o->qgemm)) break;
    c++;
  }
  return c;
}

/* steps [i, i + c) of qgemm_group_len, run together */
static ry_status run_qgemm_group(const cpu_state *st, int i, int c, ry_array **vals, recycler *rc) {
  if (c == 1) return run_qgemm(st, &st->plan.steps[i], vals, rc);
  const ryc_qgemm *q[RYC_QGEMM_GROUP_MAX];
  ry_array *w[RYC_QGEMM_GROUP_MAX];
  float *y[RYC_QGEMM_GROUP_MAX];
  const ry_array *x = vals[st->plan.steps[i].bufs[1]];
  for (int e = 0; e < c; e++) {
    const ryc_step *sp = &st->plan.steps[i + e];
    if (!x || !(w[e] = vals[sp->bufs[2]])) return ry__err(RY_ERR_INTERNAL, "cpu: quantized gemm operand has no buffer");
    ry_status s = new_buffer(rc, ry_vtype(st->g, sp->bufs[0]), &vals[sp->bufs[0]]);
    if (s) return s;
    q[e] = &sp->qgemm;
    y[e] = vals[sp->bufs[0]]->data;
  }
  return ryc_qgemm_run_group(c, q, x->data, w, y);
}

static ry_status run_conv(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc) {
  const ry_graph *g = st->g;
  const ry_node *n = &g->nodes[sp->node];
  const int32_t *ops = ry_node_operands(g, n);
  int32_t r = ry_node_results(g, n)[0];
  const ry_array *a = vals[ops[0]], *b = vals[ops[1]];
  if (!a || !b) return ry__err(RY_ERR_INTERNAL, "cpu: convolution operand has no buffer");
  ry_status s = new_buffer(rc, ry_vtype(g, r), &vals[r]);
  return s ? s : ryc_conv_run(sp->conv, a->data, b->data, vals[r]->data);
}

/* dynamic_update_slice or scatter over an operand that dies here and that
 * only the run holds (a donated cache, a temporary such as the zeros an
 * embedding's gradient is scattered into): written in place, no copy. *s is
 * a scatter's error. */
static bool update_in_place(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc, ry_status *s) {
  const ry_graph *g = st->g;
  const ry_node *n = &g->nodes[sp->node];
  if (n->op != RY_OP_DYNAMIC_UPDATE_SLICE && !(n->op == RY_OP_SCATTER && n->n_operands == 3 && n->n_results == 1))
    return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_array *a = vals[ops[0]];
  if (!a || a->dev || !ry__array_exclusive(a)) return false;
  for (int i = 1; i < n->n_operands; i++)
    if (ops[i] == ops[0] || !vals[ops[i]]) return false;
  bool dies = false;
  for (int j = 0; j < sp->n_release; j++) dies |= sp->release[j] == ops[0];
  if (!dies) return false;
  if (n->op == RY_OP_SCATTER) {
    if ((*s = ryi_scatter_into(n, a, vals[ops[1]], vals[ops[2]]))) return true;
  } else {
    ry_array *starts[RY_MAX_RANK];
    int rank = a->type.shape.rank;
    if (n->n_operands != rank + 2) return false;
    for (int d = 0; d < rank; d++) starts[d] = vals[ops[2 + d]];
    ryi_update_slice(a, vals[ops[1]], starts);
  }
  take_over(g, vals, ops[0], ry_node_results(g, n)[0], rc);
  return true;
}

static ry_status run_interp(const cpu_state *st, const ryc_step *sp, ry_array **vals) {
  ryi_frame f = {st->g, vals, st->last_use, ryc_vmath()}; /* exp, erf as compiled (a loop body, say) */
  return ryi_eval_node(&f, &st->g->nodes[sp->node]);
}

/* The run's outputs, new references (none on error). */
static ry_status take_outputs(const ry_region *body, ry_array **vals, int n_out, ry_array **out) {
  for (int i = 0; i < n_out; i++) {
    out[i] = ry_array_retain(vals[body->results.v[i]]);
    if (!out[i]) {
      for (int j = 0; j < i; j++) {
        ry_array_release(out[j]);
        out[j] = NULL;
      }
      return ry__err(RY_ERR_INTERNAL, "cpu: output %d was not computed", i);
    }
  }
  return NULL;
}

/* A run before the module is loaded: the optimized graph node by node, in
 * the interpreter except for the plan's GEMMs and convolutions (so a dot
 * gives the same bits as it will compiled); each value is released after
 * its last use. */
static ry_status cold_run(cpu_state *st, ry_array **vals, int n_out, ry_array **out) {
  const ry_graph *g = st->g;
  const ry_region *body = &g->regions[0];
  recycler rc;
  double t0 = now_s();
  memset(&rc, 0, sizeof rc);
  ryi_frame f = {g, vals, st->last_use, ryc_vmath()};
  ry_status s = NULL;
  for (int32_t k = 0; k < body->nodes.n && !s; k++) {
    int32_t id = body->nodes.v[k];
    const ry_node *n = &g->nodes[id];
    int32_t step = st->cold_step[id];
    if (step == COLD_SKIP) continue;
    if (step < 0) s = ryi_eval_node(&f, n);
    else if (st->plan.steps[step].kind == RYC_STEP_GEMM) s = run_gemm(st, &st->plan.steps[step], vals, &rc);
    else if (st->plan.steps[step].kind == RYC_STEP_QGEMM) s = run_qgemm(st, &st->plan.steps[step], vals, &rc);
    else s = run_conv(st, &st->plan.steps[step], vals, &rc);
    if (s) break;
    const int32_t *ops = ry_node_operands(g, n), *res = ry_node_results(g, n);
    for (int i = 0; i < n->n_operands; i++)
      if (st->cold_last[ops[i]] == k && vals[ops[i]]) {
        ry_array_release(vals[ops[i]]);
        vals[ops[i]] = NULL;
      }
    for (int i = 0; i < n->n_results; i++)
      if (st->cold_last[res[i]] < 0) {
        ry_array_release(vals[res[i]]);
        vals[res[i]] = NULL;
      }
  }
  if (!s) s = take_outputs(body, vals, n_out, out);
  for (int i = 0; i < rc.n_free; i++) ry_array_release(rc.free[i]);
  memset(&g_last_run, 0, sizeof g_last_run);
  g_last_run.cold = 1;
  pthread_mutex_lock(&st->lock);
  st->cold_est = now_s() - t0;
  pthread_mutex_unlock(&st->lock);
  return s;
}

/* donated[i]: the run owns the caller's reference of in[i] (NULL: none) */
static ry_status run(cpu_state *st, int n_in, ry_array *const *in, const bool *donated, int n_out, ry_array **out) {
  if (st->interp_only) {
    ry_status s = ryi_run_graph(st->g, n_in, in, n_out, out);
    for (int i = 0; donated && i < n_in; i++)
      if (donated[i]) ry_array_release(in[i]);
    return s;
  }
  const ry_graph *g = st->g;
  size_t nv = (size_t)g->n_values + 1;
  ry_array **vals = ry__calloc(nv, sizeof(ry_array *));
  if (!vals) {
    for (int i = 0; donated && i < n_in; i++)
      if (donated[i]) ry_array_release(in[i]);
    return ry__oom();
  }
  const ry_region *body = &g->regions[0];
  for (int i = 0; i < n_in; i++)
    vals[body->params.v[i]] = donated && donated[i] ? in[i] : ry_array_retain(in[i]);
  if (!atomic_load_explicit(&st->ready, memory_order_acquire) && run_cold(st)) {
    ry_status s = cold_run(st, vals, n_out, out);
    for (size_t v = 0; v < nv; v++) ry_array_release(vals[v]);
    ry__free(vals, nv * sizeof(ry_array *));
    return s;
  }
  recycler rc;
  memset(&rc, 0, sizeof rc);
  ry_status s = NULL;
  for (int i = 0; i < st->plan.n_steps && !s; i++) {
    const ryc_step *sp = &st->plan.steps[i];
    int group = 1; /* steps run here: a group of quantized products, or one */
    switch (sp->kind) {
    case RYC_STEP_KERNEL: s = run_kernel(st, i, vals, &rc); break;
    case RYC_STEP_GEMM: s = run_gemm(st, sp, vals, &rc); break;
    case RYC_STEP_CONV: s = run_conv(st, sp, vals, &rc); break;
    case RYC_STEP_QGEMM:
      group = qgemm_group_len(st, i);
      s = run_qgemm_group(st, i, group, vals, &rc);
      break;
    default: {
      if (update_in_place(st, sp, vals, &rc, &s)) break;
      s = run_interp(st, sp, vals);
      const ry_node *n = &g->nodes[sp->node];
      for (int j = 0; !s && j < n->n_results; j++) held_add(&rc, vals[ry_node_results(g, n)[j]]->nbytes);
      break;
    }
    }
    if (s) break;
    for (int e = 0; e < group; e++, sp++)
      for (int j = 0; j < sp->n_release; j++) {
        int32_t v = sp->release[j];
        drop(&rc, vals[v], g->values[v].node >= 0);
        vals[v] = NULL;
      }
    i += group - 1;
  }
  if (!s) s = take_outputs(body, vals, n_out, out);
  for (size_t v = 0; v < nv; v++) ry_array_release(vals[v]);
  for (int i = 0; i < rc.n_free; i++) ry_array_release(rc.free[i]);
  ry__free(vals, nv * sizeof(ry_array *));
  g_last_run = rc.st;
  return s;
}

static ry_status cpu_execute(void *state, ry_graph *g0, int n_in, ry_array *const *in, int n_out, ry_array **out) {
  (void)g0;
  return run(state, n_in, in, NULL, n_out, out);
}

static ry_status cpu_execute_donated(void *state, ry_graph *g0, int n_in, ry_array *const *in, const bool *donated,
                                     int n_out, ry_array **out) {
  (void)g0;
  return run(state, n_in, in, donated, n_out, out);
}

const ry_backend ryc_backend = {
    .name = "cpu",
    .description = "CPU JIT: fuses elementwise ops and reductions into generated C compiled with the system "
                   "compiler (cached), packed GEMM, a thread pool; the interpreter runs the rest",
    .compile = cpu_compile,
    .execute = cpu_execute,
    .execute_donated = cpu_execute_donated,
    .free_state = cpu_free,
};
