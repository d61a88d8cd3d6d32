/* The cpu backend: compile = passes + plan + codegen + JIT; execute = run
 * the plan's steps (generated kernels over the thread pool, GEMMs, and the
 * interpreter's kernels for everything else) with buffers released after
 * their last use and recycled for later outputs of the same size. */
#define _DEFAULT_SOURCE /* MADV_HUGEPAGE */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "cpu.h"

typedef void (*ryc_kernel_fn)(char *const *bufs, int64_t lo, int64_t hi);

typedef struct cpu_state {
  ry_graph *g;              /* the optimized graph (own reference) */
  ryc_plan plan;
  ryc_module *mod;
  ryc_kernel_fn *fns;       /* [plan.n_kernels] */
  ryc_kernel_fn *ip_fns;    /* [plan.n_steps * RYC_MAX_INPLACE] in-place variants */
  int32_t *last_use;        /* for interpreter frames (nested regions) */
  bool interp_only;         /* no compiler: the interpreter runs the original graph */
} cpu_state;

/* ---- dump ---- */



/* ---- compile ---- */

static void state_free(cpu_state *st) {
  if (!st) return;
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
  ryc_dump d;
  ryc_dump_init(&d);
  double t0 = now_s();
  ry_status s = ryc_optimize(g, &d, &st->g);
  double t1 = now_s();
  if (!s) s = ryc_plan_build(st->g, &st->plan);
  double t2 = now_s();
  if (!s) {
    ryc_dump_text(&d, "04-fusion.txt", st->plan.report);
    ryc_dump_text(&d, "05-kernels.c", st->plan.source);
  }
  if (!s && st->plan.n_kernels > 0) {
    s = ryc_module_get(st->plan.source, st->plan.source_len, &d, &st->mod);
    st->fns = ry__calloc((size_t)st->plan.n_kernels, sizeof(ryc_kernel_fn));
    if (!s && !st->fns) s = ry__oom();
    for (int i = 0; !s && i < st->plan.n_kernels; i++) {
      char name[32];
      snprintf(name, sizeof name, "ryk_%d", i);
      void *p = ryc_module_sym(st->mod, name);
      if (!p) s = ry__err(RY_ERR_INTERNAL, "cpu: generated module lacks %s", name);
      memcpy(&st->fns[i], &p, sizeof p);
    }
    if (!s && !(st->ip_fns = ry__calloc((size_t)st->plan.n_steps * RYC_MAX_INPLACE, sizeof(ryc_kernel_fn))))
      s = ry__oom();
    for (int i = 0; !s && i < st->plan.n_steps; i++) {
      const ryc_step *sp = &st->plan.steps[i];
      for (int v = 0; !s && v < sp->n_inplace; v++) {
        char name[48];
        snprintf(name, sizeof name, "ryk_%d_ip%d", sp->kernel, sp->inplace_slot[v]);
        void *p = ryc_module_sym(st->mod, name);
        if (!p) s = ry__err(RY_ERR_INTERNAL, "cpu: generated module lacks %s", name);
        memcpy(&st->ip_fns[i * RYC_MAX_INPLACE + v], &p, sizeof p);
      }
    }
  }
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
  FILE *f = ryc_dump_open(&d, "06-times.txt");
  if (f) {
    fprintf(f, "passes: %.3f ms\nplan+codegen: %.3f ms\ncompile+load: %.3f ms\nkernels: %d\nsteps: %d\n%s\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, st->plan.n_kernels, st->plan.n_steps,
            s ? ry_status_message(s) : "ok");
    fclose(f);
  }
  if (s) {
    state_free(st);
    return s;
  }
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
  /* kernels write every element: no zeroing */
  ry_status s = ry__array_new_uninit(t, out);
  if (s) return s;
#ifdef MADV_HUGEPAGE
  /* big fresh buffers: 2 MB pages make first touch far cheaper */
  if (nbytes >= ((size_t)8 << 20)) {
    uintptr_t b = ((uintptr_t)(*out)->data + ((1u << 21) - 1)) & ~(uintptr_t)((1u << 21) - 1);
    uintptr_t e = ((uintptr_t)(*out)->data + nbytes) & ~(uintptr_t)((1u << 21) - 1);
    if (e > b) (void)madvise((void *)b, e - b, MADV_HUGEPAGE);
  }
#endif
  return NULL;
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
    if (g->values[x].node < 0) held_add(rc, a->nbytes); /* a donated input becomes the run's */
    vals[r] = a;
    vals[x] = NULL; /* no longer x's: its release at this step is a no-op */
    a->type = rt;
    fn = st->ip_fns[step * RYC_MAX_INPLACE + v];
    ip_slot = sp->inplace_slot[v];
    rc->st.in_place++;
  }
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

static ry_status run_gemm(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc) {
  const ry_graph *g = st->g;
  int32_t r = sp->bufs[0];
  const ry_array *a = vals[sp->bufs[1]], *b = vals[sp->bufs[2]]; /* the operands, or the buffers they are windows of */
  if (!a || !b) return ry__err(RY_ERR_INTERNAL, "cpu: gemm operand has no buffer");
  ry_status s = new_buffer(rc, ry_vtype(g, r), &vals[r]);
  if (s) return s;
  const ryc_gemm *gm = &sp->gemm;
  for (int64_t i = 0; i < gm->batch; i++) {
    if (gm->dt == RY_F32)
      ryc_sgemm(gm->trans_a, gm->trans_b, gm->m, gm->n, gm->k, (const float *)a->data + i * gm->a_bstride,
                (const float *)b->data + i * gm->b_bstride, (float *)vals[r]->data + i * gm->m * gm->n);
    else
      ryc_dgemm(gm->trans_a, gm->trans_b, gm->m, gm->n, gm->k, (const double *)a->data + i * gm->a_bstride,
                (const double *)b->data + i * gm->b_bstride, (double *)vals[r]->data + i * gm->m * gm->n);
  }
  return NULL;
}

static ry_status run_qgemm(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc) {
  const ry_array *x = vals[sp->bufs[1]], *w = vals[sp->bufs[2]];
  if (!x || !w) return ry__err(RY_ERR_INTERNAL, "cpu: quantized gemm operand has no buffer");
  ry_status s = new_buffer(rc, ry_vtype(st->g, sp->bufs[0]), &vals[sp->bufs[0]]);
  return s ? s : ryc_qgemm_run(&sp->qgemm, x->data, w->data, vals[sp->bufs[0]]->data);
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

/* dynamic_update_slice over an operand that dies here and that only the run
 * holds (a donated cache, a temporary): written in place, no copy */
static bool update_in_place(const cpu_state *st, const ryc_step *sp, ry_array **vals, recycler *rc) {
  const ry_graph *g = st->g;
  const ry_node *n = &g->nodes[sp->node];
  if (n->op != RY_OP_DYNAMIC_UPDATE_SLICE) return false;
  const int32_t *ops = ry_node_operands(g, n);
  ry_array *a = vals[ops[0]];
  if (!a || a->dev || !ry__array_exclusive(a)) return false;
  for (int i = 1; i < n->n_operands; i++)
    if (ops[i] == ops[0] || !vals[ops[i]]) return false;
  bool dies = false;
  for (int j = 0; j < sp->n_release; j++) dies |= sp->release[j] == ops[0];
  if (!dies) return false;
  ry_array *starts[RY_MAX_RANK];
  int rank = a->type.shape.rank;
  if (n->n_operands != rank + 2) return false;
  for (int d = 0; d < rank; d++) starts[d] = vals[ops[2 + d]];
  ryi_update_slice(a, vals[ops[1]], starts);
  int32_t r = ry_node_results(g, n)[0];
  if (g->values[ops[0]].node < 0) held_add(rc, a->nbytes); /* a donated input becomes the run's */
  vals[r] = a;
  vals[ops[0]] = NULL; /* no longer the operand's: its release at this step is a no-op */
  rc->st.in_place++;
  return true;
}

static ry_status run_interp(const cpu_state *st, const ryc_step *sp, ry_array **vals) {
  ryi_frame f = {st->g, vals, st->last_use};
  return ryi_eval_node(&f, &st->g->nodes[sp->node]);
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
  recycler rc;
  memset(&rc, 0, sizeof rc);
  ry_status s = NULL;
  for (int i = 0; i < st->plan.n_steps && !s; i++) {
    const ryc_step *sp = &st->plan.steps[i];
    switch (sp->kind) {
    case RYC_STEP_KERNEL: s = run_kernel(st, i, vals, &rc); break;
    case RYC_STEP_GEMM: s = run_gemm(st, sp, vals, &rc); break;
    case RYC_STEP_CONV: s = run_conv(st, sp, vals, &rc); break;
    case RYC_STEP_QGEMM: s = run_qgemm(st, sp, vals, &rc); break;
    default: {
      if (update_in_place(st, sp, vals, &rc)) break;
      s = run_interp(st, sp, vals);
      const ry_node *n = &g->nodes[sp->node];
      for (int j = 0; !s && j < n->n_results; j++) held_add(&rc, vals[ry_node_results(g, n)[j]]->nbytes);
      break;
    }
    }
    if (s) break;
    for (int j = 0; j < sp->n_release; j++) {
      int32_t v = sp->release[j];
      drop(&rc, vals[v], g->values[v].node >= 0);
      vals[v] = NULL;
    }
  }
  for (int i = 0; !s && i < n_out; i++) {
    out[i] = ry_array_retain(vals[body->results.v[i]]);
    if (!out[i]) {
      for (int j = 0; j < i; j++) {
        ry_array_release(out[j]);
        out[j] = NULL;
      }
      s = ry__err(RY_ERR_INTERNAL, "cpu: output %d was not computed", i);
    }
  }
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
