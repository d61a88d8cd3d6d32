/* Fusion and C code generation for the cpu backend.
 *
 * Fusion is a decision about which values of the body are materialized
 * (stored in a buffer). Everything else is an expression that is computed
 * where it is used, inside the loop nest of the kernel whose root uses it:
 *   - inputs, outputs, results of nodes that are not generated (interpreter
 *     ops, GEMMs, reductions) and operands of interpreter ops and GEMMs are
 *     materialized;
 *   - broadcast, transpose, slice, reverse compose into the index map of a
 *     load (no code); reshape only directly over a buffer; pad maps the
 *     index into its operand (dividing by interior + 1) and selects the
 *     padding value outside it, concatenate selects its operand by the
 *     index along the axis (a concatenate kernel root is instead one loop
 *     nest per operand);
 *   - an elementwise value used by several nodes is recomputed unless its
 *     expression is expensive; one under an expanding broadcast is stored.
 * Each materialized value computed by elementwise / view / iota / reduce
 * nodes is the root of one kernel: a C function over a loop nest, loops
 * coalesced where every access allows it, the outer loop split by the
 * thread pool. A reduction kernel evaluates its operand expression inside
 * the reduction loop; reductions along the innermost axis use 16 fixed
 * partial sums (vectorizable, deterministic), others accumulate into the
 * output in input order. Reductions along trailing axes with the values
 * that broadcast them back over the same rows (softmax, layer norm and
 * their gradients) become one row kernel instead (see "row kernels").
 * dot_general in f32/f64 whose dimensions are a (batched) matrix product
 * becomes a GEMM step, an f32/f64 convolution a CONV step (conv.c: im2col +
 * GEMM); anything else runs through the interpreter's kernel. */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "jit.h"
#include "prelude.h"

#include "fuse.h"
#include "ryft/gguf.h"

/* ---- the plan ---- */

static ry_status add_step(ryc_plan *p, int *cap, const ryc_step *s) {
  if (p->n_steps == *cap) {
    int ncap = *cap ? *cap * 2 : 16;
    ryc_step *ns = ry__realloc(p->steps, (size_t)*cap * sizeof *ns, (size_t)ncap * sizeof *ns);
    if (!ns) return ry__oom();
    p->steps = ns;
    *cap = ncap;
  }
  p->steps[p->n_steps++] = *s;
  return NULL;
}

static int32_t *dup_ids(const int32_t *v, int n) {
  int32_t *r = ry__malloc((size_t)(n ? n : 1) * sizeof(int32_t));
  if (r && n) memcpy(r, v, (size_t)n * sizeof(int32_t));
  return r;
}

static void report_value(ry__buf *rep, const planner *pl, int32_t v) {
  char ts[96];
  ry__buf_printf(rep, "  boundary %%v%d: %s = %s: materialized: %s%s%s\n", (int)v,
             ry_type_str(ry_vtype(pl->g, v), ts, sizeof ts), ryg_op_table[pl->g->nodes[ryf_def_of(pl->g, v)].op].name,
             pl->why[v] ? pl->why[v] : "?", pl->why_op[v] ? " " : "", pl->why_op[v] ? pl->why_op[v] : "");
}

ry_status ryf_row_step(planner *pl, kgen *k, ryc_plan *p, int32_t nid, ry__buf *src, ry__buf *rep, ryc_step *st,
                          bool *retry);

/* an in-place variant waiting for the liveness analysis: its step, the slot
 * it writes over (-1: ryk_<k>_ipm, any output over any slot of its list) */
typedef struct {
  int step, slot;
  ry__buf text;
} ipvar;

/* queue a variant's text (taken: *text is left empty) */
static ry_status ipv_push(ipvar **ipv, int *n, int *cap, int step, int slot, ry__buf *text) {
  if (*n == *cap) {
    int ncap = *cap ? 2 * *cap : 16;
    ipvar *nv = ry__realloc(*ipv, (size_t)*cap * sizeof **ipv, (size_t)ncap * sizeof **ipv);
    if (!nv) return ry__oom();
    *ipv = nv;
    *cap = ncap;
  }
  (*ipv)[(*n)++] = (ipvar){step, slot, *text};
  memset(text, 0, sizeof *text);
  return NULL;
}

/* A kernel's root may absorb a graph result of its shape that it reads only
 * at its own elements and that no other step reads: the result's kernel is
 * dropped, and the root's loop computes and stores it too. An optimizer's
 * update is the case: the new moments were a kernel each, re-reading the
 * gradient, and the parameter's update a third reading them back; absorbed,
 * one loop reads the gradient, parameter and moments once and writes all
 * three. (A value stored only because several nodes use it is unshared by
 * the planner instead, plan.c.) The first plan (analyse) finds the pairs
 * from its steps (the pairs: value, root), a second one is built with them;
 * absorb[v] is the root value that absorbs v, -1 for none. */
static ry_status plan_try(const ry_graph *g, ryc_plan *p, bool *force, bool *norow, int32_t *absorb, bool analyse,
                          bool *again, bool *retry) {
  memset(p, 0, sizeof *p);
  p->g = g;
  size_t nv = (size_t)g->n_values + 1;
  planner pl = {g,
                ry__calloc(nv, sizeof(bool)),
                ry__calloc(nv, sizeof(char *)),
                ry__calloc(nv, sizeof(char *)),
                ry__calloc(nv, 1),
                ry__calloc(nv, sizeof(int32_t)),
                ry__calloc(nv, sizeof(int32_t)),
                ry__calloc(nv, sizeof(bool)),
                force,
                NULL};
  kgen *k = ry__calloc(1, sizeof *k);
  ry__buf src = {0}, rep = {0};
  ry_status s = NULL;
  int32_t *lastuse = ry__malloc(nv * sizeof(int32_t));
  ipvar *ipv = NULL;
  int n_ipv = 0, ipv_cap = 0;
  rowplan rp = {0}; /* before the first goto: `done` frees its arrays */
  /* absorption (see above): how many steps read each value,
   * the lists of what each root absorbs; the first plan's candidate pairs
   * and its plain elementwise roots */
  int32_t *nread = ry__calloc(nv, sizeof(int32_t)), *ex_head = ry__malloc(nv * sizeof(int32_t)),
          *ex_next = ry__malloc(nv * sizeof(int32_t));
  bool *plain = ry__calloc(nv, sizeof(bool)), *result = ry__calloc(nv, sizeof(bool));
  ry_ivec cand = {0};
  if (!nread || !ex_head || !ex_next || !plain || !result) {
    s = ry__oom();
    goto done;
  }
  if (!pl.mat || !pl.why || !pl.why_op || !pl.cls || !pl.nusers || !pl.cost || !pl.need_flat || !k || !lastuse) {
    s = ry__oom();
    goto done;
  }
  ryf_decide(&pl);
  const ry_region *body = &g->regions[0];
  for (int32_t i = 0; i < body->results.n; i++) result[body->results.v[i]] = true;
  /* what each root absorbs, a list through ex_next */
  for (size_t v = 0; v < nv; v++) ex_head[v] = ex_next[v] = -1;
  for (size_t v = 0; !analyse && v < nv; v++) {
    if (absorb[v] < 0) continue;
    ex_next[v] = ex_head[absorb[v]];
    ex_head[absorb[v]] = (int32_t)v;
  }
  rp.grp = ry__malloc(nv * sizeof(int32_t));
  rp.role = ry__calloc(nv, 1);
  rp.out = ry__calloc(nv, sizeof(bool));
  rp.stamp = ry__calloc(nv, sizeof(int32_t));
  rp.norow = norow;
  pl.rows = &rp;
  if (!rp.grp || !rp.role || !rp.out || !rp.stamp || !ryf_row_plan(&pl)) {
    s = ry__oom();
    goto done;
  }
  for (int i = 0; ryc_prelude[i]; i++) ry__buf_printf(&src, "%s", ryc_prelude[i]);
  for (int i = 0; ryc_math_lines[i]; i++) ry__buf_printf(&src, "%s", ryc_math_lines[i]);
  for (int i = 0; ryc_xla_scalar_lines[i]; i++) ry__buf_printf(&src, "%s", ryc_xla_scalar_lines[i]);
  ry__buf_printf(&src, "%s", RYC_PRELUDE_END);
  for (int32_t kk = 0; kk < body->nodes.n && !s; kk++) {
    int32_t nid = body->nodes.v[kk];
    const ry_node *n = &g->nodes[nid];
    int32_t r0 = n->n_results ? ry_node_results(g, n)[0] : 0;
    ryc_step st;
    memset(&st, 0, sizeof st);
    st.node = nid;
    vclass c = n->n_results ? (vclass)pl.cls[r0] : V_INTERP;
    if (n->n_results && rp.grp[r0] >= 0) {
      /* a row kernel runs where its group's last member was */
      if (rp.groups[rp.grp[r0]].last != nid) continue;
      s = ryf_row_step(&pl, k, p, nid, &src, &rep, &st, retry);
      if (!s) s = add_step(p, &p->steps_cap, &st);
      if (s) ry__free(st.bufs, (size_t)(st.n_bufs ? st.n_bufs : 1) * sizeof(int32_t));
      continue;
    }
    if ((c == V_EW && !pl.mat[r0]) || c == V_QFOLD || c == V_BFOLD) continue; /* fused into its users */
    if (c == V_EW && absorb[r0] >= 0) continue;                                 /* stored by its absorber */
    if (c == V_EW && n->op == RY_OP_CONSTANT) c = V_INTERP;
    if (c == V_EW || c == V_REDUCE) {
      ry__buf_free(&k->body);
      for (int v = 0; v < k->n_ip; v++) ry__buf_free(&k->ip_src[v]);
      ry__buf_free(&k->ipm_src);
      memset(k, 0, sizeof *k);
      k->p = &pl;
      k->g = g;
      k->root = r0;
      k->n_bufs = 1;
      k->bufs[0] = r0;
      for (int32_t e = ex_head[r0]; c == V_EW && e >= 0 && k->n_extra < RYC_MAX_EW_OUT - 1; e = ex_next[e])
        k->extra[k->n_extra++] = e;
      ry__buf kb = {0};
      int64_t outer = 1, work = 1;
      bool ok = c == V_EW ? ryf_gen_ew(k, p->n_kernels, &kb, &outer, &work)
                          : ryf_gen_reduce(k, p->n_kernels, &kb, &outer, &work);
      if (ok && !kb.oom) {
        ry__buf_printf(&src, "%s%s", RYC_SPLIT, kb.s);
        st.kind = RYC_STEP_KERNEL;
        st.kernel = p->n_kernels++;
        st.n_bufs = k->n_bufs;
        st.n_out = 1 + k->n_extra;
        st.bufs = dup_ids(k->bufs, k->n_bufs);
        st.outer = outer;
        st.work = work;
        if (!st.bufs) s = ry__oom();
        /* the multi-output in-place variant: its slots are checked against
           their last uses below, its text waits with the others (slot -1) */
        st.n_ipm = k->n_ipm;
        memcpy(st.ipm_slot, k->ipm_slot, sizeof st.ipm_slot);
        bool plain_ew = c == V_EW && !(n->op == RY_OP_CONCATENATE && ry_vtype(g, r0).shape.rank > 0);
        if (analyse && plain_ew && !s) {
          plain[r0] = true;
          for (int i = 1; i < k->n_bufs && !s; i++)
            if (k->idread[i] && (!ry__ivec_push(&cand, k->bufs[i]) || !ry__ivec_push(&cand, r0))) s = ry__oom();
        }
        for (int v = 0; !s && v < k->n_ip; v++) s = ipv_push(&ipv, &n_ipv, &ipv_cap, p->n_steps, k->ip_slot[v], &k->ip_src[v]);
        if (!s && k->n_ipm) s = ipv_push(&ipv, &n_ipv, &ipv_cap, p->n_steps, -1, &k->ipm_src);
        char ts[96];
        ry__buf_printf(&rep, "kernel %d: %%v%d: %s = %s, %d buffers read, loop trip %" PRId64 "\n", st.kernel, (int)r0,
                   ry_type_str(ry_vtype(g, r0), ts, sizeof ts), ryg_op_table[n->op].name, k->n_bufs - 1, outer);
        report_value(&rep, &pl, r0);
        for (int e = 0; e < k->n_extra; e++)
          ry__buf_printf(&rep, "  also stores %%v%d: %s = %s (a graph result read only here, at these elements)\n",
                         (int)k->extra[e], ry_type_str(ry_vtype(g, k->extra[e]), ts, sizeof ts),
                         ryg_op_table[g->nodes[ryf_def_of(g, k->extra[e])].op].name);
      } else {
        bool absorbed = ex_head[r0] >= 0;
        for (int32_t e = ex_head[r0]; e >= 0; e = ex_next[e]) absorb[e] = -1;
        /* plan again without what this root absorbed, or with this node in
           the interpreter */
        if (!k->fail) s = ry__oom();
        else if (absorbed) {
          *retry = true;
          s = ry__err(RY_ERR_INTERNAL, "cpu: codegen failed with absorbed values (%s)", k->fail_why ? k->fail_why : "?");
        } else {
          force[nid] = true;
          *retry = true;
          s = ry__err(RY_ERR_INTERNAL, "cpu: codegen failed (%s)", k->fail_why ? k->fail_why : "?");
        }
      }
      ry__buf_free(&kb);
    } else if (c == V_GEMM) {
      st.kind = RYC_STEP_GEMM;
      ryf_gemm_plan(g, n, &st.gemm);
      /* y, a, b: an operand left unmaterialized is a window of its source */
      int32_t yab[3] = {r0, ry_node_operands(g, n)[0], ry_node_operands(g, n)[1]};
      for (int i = 0; i < 2; i++) {
        int32_t whole;
        int64_t bs;
        if (pl.cls[yab[1 + i]] == V_BFOLD) { /* read the convert's f32 operand, rounded as it is packed */
          yab[1 + i] = ry_node_operands(g, &g->nodes[ryf_def_of(g, yab[1 + i])])[0];
          *(i ? &st.gemm.b_f32 : &st.gemm.a_f32) = true;
          continue;
        }
        if (pl.mat[yab[1 + i]] || !ryf_gemm_window(g, yab[1 + i], n->attrs.dot.lhs_batch.n, &whole, &bs)) continue;
        yab[1 + i] = whole;
        *(i ? &st.gemm.b_bstride : &st.gemm.a_bstride) = bs;
      }
      st.n_bufs = 3;
      st.n_out = 1;
      if (!(st.bufs = dup_ids(yab, 3))) s = ry__oom();
      ry__buf_printf(&rep, "gemm: %%v%d = dot_general batch=%" PRId64 " m=%" PRId64 " n=%" PRId64 " k=%" PRId64
                       " trans_a=%d trans_b=%d",
                 (int)r0, st.gemm.batch, st.gemm.m, st.gemm.n, st.gemm.k, st.gemm.trans_a, st.gemm.trans_b);
      for (int i = 0; i < 2; i++)
        if ((i ? st.gemm.b_f32 : st.gemm.a_f32))
          ry__buf_printf(&rep, " %s=%%v%d rounded to bf16 as packed", i ? "b" : "a", (int)yab[1 + i]);
        else if (yab[1 + i] != ry_node_operands(g, n)[i])
          ry__buf_printf(&rep, " %s=window of %%v%d", i ? "b" : "a", (int)yab[1 + i]);
      ry__buf_printf(&rep, "\n");
    } else if (c == V_QGEMM) {
      int32_t blocks = 0;
      st.kind = RYC_STEP_QGEMM;
      ryf_qgemm_plan(g, n, &st.qgemm, &blocks);
      int32_t b3[3] = {r0, ry_node_operands(g, n)[0], blocks};
      st.n_bufs = 3;
      st.n_out = 1;
      if (!(st.bufs = dup_ids(b3, 3))) s = ry__oom();
      ry__buf_printf(&rep, "qgemm: %%v%d = dot_general by dequantize(%%v%d) %s m=%" PRId64 " n=%" PRId64 " k=%" PRId64 " (%s)\n",
                     (int)r0, (int)blocks, ry_ggml_type_name(st.qgemm.type), st.qgemm.m, st.qgemm.n, st.qgemm.k,
                     ryc_qgemm_int8(&st.qgemm) ? "int8 activations" : "exact");
    } else if (c == V_CONV) {
      st.kind = RYC_STEP_CONV;
      if (!(st.conv = ry__malloc(sizeof *st.conv))) s = ry__oom();
      else {
        ryc_conv_plan(g, n, st.conv, NULL);
        ry__buf_printf(&rep, "conv: %%v%d = convolution as im2col + gemm: ", (int)r0);
        ryc_conv_describe(st.conv, &rep);
        ry__buf_printf(&rep, "\n");
      }
    } else {
      st.kind = RYC_STEP_INTERP;
      const char *why = "no code generation for this op/dtype";
      ryc_conv cv;
      if (n->op == RY_OP_CONVOLUTION && !ryc_conv_plan(g, n, &cv, &why) && !why) why = "?";
      ry__buf_printf(&rep, "interp: %%v%d = %s (%s)\n", (int)r0, ryg_op_table[n->op].name, why);
    }
    if (!s) s = add_step(p, &p->steps_cap, &st);
    if (s) {
      ry__free(st.bufs, (size_t)(st.n_bufs ? st.n_bufs : 1) * sizeof(int32_t));
      ry__free(st.conv, sizeof *st.conv);
    }
  }
  if (s) goto done;
  /* every absorbed result must be stored by its root's kernel; should a
     retry have sent that root elsewhere (the interpreter, a row kernel),
     plan again without absorbing anything */
  if (!analyse) {
    bool *stored = ry__calloc(nv, sizeof(bool)), lost = false;
    if (!stored) {
      s = ry__oom();
      goto done;
    }
    for (int i = 0; i < p->n_steps; i++)
      for (int r = 0; p->steps[i].kind == RYC_STEP_KERNEL && r < p->steps[i].n_out; r++) stored[p->steps[i].bufs[r]] = true;
    for (size_t v = 0; v < nv; v++) lost |= absorb[v] >= 0 && !stored[v];
    ry__free(stored, nv * sizeof(bool));
    if (lost) {
      for (size_t v = 0; v < nv; v++) absorb[v] = -1;
      *retry = true;
      s = ry__err(RY_ERR_INTERNAL, "cpu: an absorbed value was not stored by its root's kernel");
      goto done;
    }
  }
  /* a failed kernel turned its operands into buffers: those must be produced;
   * verify every read value is materialized (params or a step's result) */
  for (int i = 0; i < p->n_steps; i++) {
    const ryc_step *st = &p->steps[i];
    if (st->kind != RYC_STEP_KERNEL) {
      const ry_node *n = &g->nodes[st->node];
      /* a quantized product reads x and the blocks, not the f32 weights */
      bool qs = st->kind == RYC_STEP_QGEMM || st->kind == RYC_STEP_GEMM;
      for (int j = 0; j < (qs ? st->n_bufs - st->n_out : n->n_operands); j++) {
        int32_t v = qs ? st->bufs[st->n_out + j] : ry_node_operands(g, n)[j];
        if (!pl.mat[v] || (pl.cls[v] == V_EW && ryf_def_of(g, v) >= 0)) {
          /* materialized by a kernel step? */
          bool produced = pl.cls[v] == V_PARAM;
          for (int q = 0; q < i && !produced; q++) {
            const ryc_step *o = &p->steps[q];
            const ry_node *on = &g->nodes[o->node];
            for (int r = 0; r < on->n_results; r++) produced |= ry_node_results(g, on)[r] == v;
            for (int r = 0; o->kind == RYC_STEP_KERNEL && r < o->n_out; r++) produced |= o->bufs[r] == v;
          }
          if (!produced) {
            s = ry__err(RY_ERR_UNSUPPORTED, "cpu: value %d needed by %s is not computed (codegen fallback)", (int)v,
                        ryg_op_table[n->op].name);
            goto done;
          }
        }
      }
    }
  }
  /* releases: last step reading each value */
  for (size_t v = 0; v < nv; v++) lastuse[v] = -1;
  for (int i = 0; i < p->n_steps; i++) {
    const ryc_step *st = &p->steps[i];
    if (st->kind == RYC_STEP_KERNEL || st->kind == RYC_STEP_QGEMM || st->kind == RYC_STEP_GEMM) {
      for (int j = st->n_out; j < st->n_bufs; j++) {
        lastuse[st->bufs[j]] = i;
        nread[st->bufs[j]]++;
      }
    } else {
      const ry_node *n = &g->nodes[st->node];
      for (int j = 0; j < n->n_operands; j++) {
        lastuse[ry_node_operands(g, n)[j]] = i;
        nread[ry_node_operands(g, n)[j]]++;
      }
    }
    const ry_node *n = &g->nodes[st->node];
    for (int r = 0; r < n->n_results; r++) {
      int32_t v = ry_node_results(g, n)[r];
      if (lastuse[v] < 0) lastuse[v] = i; /* unused results die at once */
    }
    for (int r = 0; st->kind == RYC_STEP_KERNEL && r < st->n_out; r++)
      if (lastuse[st->bufs[r]] < 0) lastuse[st->bufs[r]] = i;
  }
  for (int32_t i = 0; i < body->results.n; i++) lastuse[body->results.v[i]] = INT32_MAX;
  for (int32_t i = 0; i < body->params.n; i++)
    if (lastuse[body->params.v[i]] < 0) lastuse[body->params.v[i]] = -1;
  {
    int32_t *cnt = ry__calloc((size_t)p->n_steps + 1, sizeof(int32_t));
    if (!cnt) s = ry__oom();
    for (size_t v = 0; !s && v < nv; v++)
      if (lastuse[v] >= 0 && lastuse[v] < p->n_steps) cnt[lastuse[v]]++;
    for (int i = 0; !s && i < p->n_steps; i++) {
      p->steps[i].release = ry__malloc((size_t)(cnt[i] ? cnt[i] : 1) * sizeof(int32_t));
      if (!p->steps[i].release) {
        s = ry__oom();
        /* ryc_plan_free frees by n_release, which is still 0: free these here */
        for (int j = 0; j < i; j++) {
          ry__free(p->steps[j].release, (size_t)(cnt[j] ? cnt[j] : 1) * sizeof(int32_t));
          p->steps[j].release = NULL;
        }
      }
    }
    for (size_t v = 0; !s && v < nv; v++)
      if (lastuse[v] >= 0 && lastuse[v] < p->n_steps) {
        ryc_step *st = &p->steps[lastuse[v]];
        st->release[st->n_release++] = (int32_t)v;
      }
    ry__free(cnt, ((size_t)p->n_steps + 1) * sizeof(int32_t));
  }
  /* keep the in-place variants whose slot dies at their step: only there can
   * the output take over the input's buffer */
  for (int i = 0; !s && i < n_ipv; i++) {
    ryc_step *st = &p->steps[ipv[i].step];
    if (ipv[i].slot < 0) { /* the multi-output variant: the slots that die here */
      int n = 0;
      for (int j = 0; j < st->n_ipm; j++)
        if (lastuse[st->bufs[st->ipm_slot[j]]] == ipv[i].step) st->ipm_slot[n++] = st->ipm_slot[j];
      st->n_ipm = n;
      if (!n) continue;
      ry__buf_printf(&src, "%s%s", RYC_SPLIT, ipv[i].text.s ? ipv[i].text.s : "");
      ry__buf_printf(&rep, "kernel %d: its outputs may write over", st->kernel);
      for (int j = 0; j < n; j++) ry__buf_printf(&rep, " %%v%d", (int)st->bufs[st->ipm_slot[j]]);
      ry__buf_printf(&rep, " in place (their last use)\n");
      continue;
    }
    int32_t v = st->bufs[ipv[i].slot];
    if (lastuse[v] != ipv[i].step || st->n_inplace >= RYC_MAX_INPLACE) continue;
    st->inplace_slot[st->n_inplace++] = ipv[i].slot;
    ry__buf_printf(&src, "%s%s", RYC_SPLIT, ipv[i].text.s ? ipv[i].text.s : "");
    ry__buf_printf(&rep, "kernel %d: may write over %%v%d in place (its last use)\n", st->kernel, (int)v);
  }
  if (src.oom || rep.oom) s = ry__oom();
  /* the pairs for the next plan, latest roots first: a root absorbs at most
   * RYC_MAX_EW_OUT - 1 results, and what it absorbs absorbs nothing */
  for (int i = cand.n / 2 - 1; !s && analyse && i >= 0; i--) {
    int32_t e = cand.v[2 * i], r = cand.v[2 * i + 1];
    /* ex_head, unused by the first plan, counts what each root absorbs */
    if (!result[e] || !plain[e] || nread[e] != 1 || absorb[e] >= 0 || absorb[r] >= 0 || ex_head[e] >= 0) continue;
    if (ex_head[r] >= RYC_MAX_EW_OUT - 1) continue;
    ex_head[r] = ex_head[r] < 0 ? 1 : ex_head[r] + 1;
    absorb[e] = r;
    *again = true;
  }
done:
  for (int i = 0; i < n_ipv; i++) ry__buf_free(&ipv[i].text);
  ry__free(ipv, (size_t)ipv_cap * sizeof *ipv);
  if (!s) {
    p->mat = pl.mat;
    pl.mat = NULL;
    p->source = src.s;
    p->source_len = src.n;
    p->source_cap = src.cap;
    p->report = rep.s;
    p->report_len = rep.n;
    p->report_cap = rep.cap;
    src.s = NULL;
    rep.s = NULL;
  }
  if (s) {
    ry__buf_free(&src);
    ry__buf_free(&rep);
  }
  ry__free(pl.mat, nv * sizeof(bool));
  ry__free(pl.why, nv * sizeof(char *));
  ry__free(pl.why_op, nv * sizeof(char *));
  ry__free(pl.cls, nv);
  ry__free(pl.nusers, nv * sizeof(int32_t));
  ry__free(pl.cost, nv * sizeof(int32_t));
  ry__free(pl.need_flat, nv * sizeof(bool));
  ry__free(rp.grp, nv * sizeof(int32_t));
  ry__free(rp.role, nv);
  ry__free(rp.out, nv * sizeof(bool));
  ry__free(rp.stamp, nv * sizeof(int32_t));
  ry__free(rp.groups, (size_t)rp.cap * sizeof(rowgroup));
  ry__ivec_free(&rp.stack);
  ry__ivec_free(&rp.leaf);
  if (k) {
    ry__buf_free(&k->body);
    for (int v = 0; v < k->n_ip; v++) ry__buf_free(&k->ip_src[v]);
    ry__buf_free(&k->ipm_src);
  }
  ry__free(nread, nv * sizeof(int32_t));
  ry__free(ex_head, nv * sizeof(int32_t));
  ry__free(ex_next, nv * sizeof(int32_t));
  ry__free(plain, nv * sizeof(bool));
  ry__free(result, nv * sizeof(bool));
  ry__ivec_free(&cand);
  ry__free(k, sizeof *k);
  ry__free(lastuse, nv * sizeof(int32_t));
  if (s) ryc_plan_free(p);
  return s;
}

/* The step of the row kernel whose group's last member is node nid. A
 * kernel that cannot be generated sends its members back to ordinary
 * kernels (*retry). */
ry_status ryf_row_step(planner *pl, kgen *k, ryc_plan *p, int32_t nid, ry__buf *src, ry__buf *rep, ryc_step *st,
                          bool *retry) {
  const ry_graph *g = pl->g;
  rowplan *rp = pl->rows;
  int gi = rp->grp[ry_node_results(g, &g->nodes[nid])[0]];
  const rowgroup *G = &rp->groups[gi];
  rowgen *rg = ry__calloc(1, sizeof *rg);
  if (!rg) return ry__oom();
  ry__buf kb = {0};
  int n_passes = 0, n_scratch = 0;
  ry_status s = NULL;
  if (!ryf_gen_row(pl, k, gi, p->n_kernels, &kb, rg, &n_passes, &n_scratch) || kb.oom) {
    if (!k->fail) {
      s = ry__oom();
    } else {
      /* plan again without the member that failed (or the whole group) */
      const ry_region *body = &g->regions[0];
      for (int32_t kk = 0; kk < body->nodes.n; kk++) {
        const ry_node *n = &g->nodes[body->nodes.v[kk]];
        int32_t r = n->n_results ? ry_node_results(g, n)[0] : -1;
        if (r >= 0 && rp->grp[r] == gi && (rg->fail_v < 0 || r == rg->fail_v)) rp->norow[body->nodes.v[kk]] = true;
      }
      *retry = true;
      s = ry__err(RY_ERR_INTERNAL, "cpu: row kernel failed (%s)", k->fail_why ? k->fail_why : "?");
    }
  } else {
    ry__buf_printf(src, "%s%s", RYC_SPLIT, kb.s);
    st->kind = RYC_STEP_KERNEL;
    st->kernel = p->n_kernels++;
    st->n_bufs = rg->n_bufs;
    st->n_out = rg->n_out;
    st->bufs = dup_ids(rg->bufs, rg->n_bufs);
    st->outer = G->rows;
    st->work = G->rows;
    if (!st->bufs) s = ry__oom();
    ry__buf_printf(rep, "row kernel %d: %" PRId64 " rows, %d passes, %d scratch rows, %d outputs, %d buffers read\n",
               st->kernel, G->rows, n_passes, n_scratch, rg->n_out, rg->n_bufs - rg->n_out);
    for (int32_t v = 0; v < g->n_values; v++) {
      if (rp->grp[v] != gi) continue;
      static const char *const roles[] = {"", "row value", "full", "reduction"};
      const ry_node *n = &g->nodes[ryf_def_of(g, v)];
      int64_t numel = ry_shape_numel(ry_vtype(g, n->op == RY_OP_REDUCE ? ry_node_operands(g, n)[0] : v).shape);
      if (numel > st->work) st->work = numel;
      char ts[96];
      ry__buf_printf(rep, "  member %%v%d: %s = %s (%s)%s\n", (int)v, ry_type_str(ry_vtype(g, v), ts, sizeof ts),
                 ryg_op_table[n->op].name, roles[rp->role[v]], rp->out[v] ? ", stored" : "");
    }
  }
  ry__buf_free(&kb);
  ry__free(rg, sizeof *rg);
  return s;
}

void ryc_plan_free(ryc_plan *p) {
  for (int i = 0; i < p->n_steps; i++) {
    ry__free(p->steps[i].bufs, (size_t)(p->steps[i].n_bufs ? p->steps[i].n_bufs : 1) * sizeof(int32_t));
    ry__free(p->steps[i].release, (size_t)(p->steps[i].n_release ? p->steps[i].n_release : 1) * sizeof(int32_t));
    ry__free(p->steps[i].conv, sizeof(ryc_conv));
  }
  ry__free(p->steps, (size_t)p->steps_cap * sizeof(ryc_step));
  if (p->mat) ry__free(p->mat, ((size_t)p->g->n_values + 1) * sizeof(bool));
  ry__free(p->source, p->source_cap);
  ry__free(p->report, p->report_cap);
  memset(p, 0, sizeof *p);
}

ry_status ryc_plan_build(const ry_graph *g, ryc_plan *p) {
  size_t fsz = (size_t)g->n_nodes + 1, nv = (size_t)g->n_values + 1;
  bool *force = ry__calloc(fsz, sizeof(bool)), *norow = ry__calloc(fsz, sizeof(bool));
  int32_t *absorb = ry__malloc(nv * sizeof(int32_t));
  bool analyse = true; /* until a plan has found what its roots absorb */
  ry_status s;
  for (size_t v = 0; absorb && v < nv; v++) absorb[v] = -1;
  for (;;) {
    bool retry = false, again = false;
    if (!force || !norow || !absorb) {
      s = ry__oom();
      break;
    }
    s = plan_try(g, p, force, norow, absorb, analyse, &again, &retry);
    if (!s && again) { /* plan again with the pairs found */
      ryc_plan_free(p);
      analyse = false;
      continue;
    }
    if (!s || !retry) break;
    ry_status_free(s);
  }
  ry__free(force, fsz * sizeof(bool));
  ry__free(norow, fsz * sizeof(bool));
  ry__free(absorb, nv * sizeof(int32_t));
  return s;
}
