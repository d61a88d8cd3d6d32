/* `ryft train-lm`: train a GPT-2 language model from scratch on English text
 * (Debian's fortunes by default) with ryft/lm_train.h on the cpu device.
 *
 * The text is split into documents (the fortune files' "%" lines, else
 * blank lines), every 20th document goes to validation, each document is
 * tokenized with the byte-level BPE tokenizer of a GGUF model (SmolLM2's
 * by default) and ends with its EOS token. Batch i is drawn from the
 * training tokens with fold_in(fold_in(key(seed), 1), i), the validation
 * batches with fold_in(fold_in(key(seed), 2), j), the initial weights with
 * key(seed): a run depends only on its options, so one resumed from a
 * checkpoint is bitwise identical to an uninterrupted one. Every eval
 * prints the validation loss and perplexity and a sampled text, appends to
 * metrics.csv, and writes the checkpoint atomically.
 *
 * Uses only the public API. */
#define _POSIX_C_SOURCE 200809L
#include "train_lm.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ryft/ryft.h"
#include "train_common.h"

enum { T_OK = 0, T_FAIL = 1, T_USAGE = 2 };

static const char k_usage[] =
    "usage: ryft train-lm [OPTIONS]\n"
    "\n"
    "Train a GPT-2 language model from scratch on English text on the cpu device:\n"
    "AdamW with warmup + cosine decay, weight decay on matrices and embeddings,\n"
    "gradient clipping; validation loss, perplexity and a sample at every eval;\n"
    "checkpoints, metrics.csv, steps.csv, loss.png, samples.txt and the model\n"
    "(model.safetensors, model.gguf for llama.cpp) in --out.\n"
    "\n"
    "  --data PATH         a text file, or a directory whose files without an\n"
    "                      extension are read in name order (default: $RYFT_TEXT,\n"
    "                      then /usr/share/games/fortunes, Debian's fortunes)\n"
    "  --tokenizer GGUF    the tokenizer (default: $RYFT_MODEL, then\n"
    "                      build/models/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
    "  --config NAME       small (4 layers, 128 wide, 4 heads, context 256; the\n"
    "                      default) or gpt2 (GPT-2 124M: 12, 768, 12, 1024)\n"
    "  --layers N, --embd N, --heads N\n"
    "                      change the configuration (the feed-forward is 4 x embd)\n"
    "  --ctx N             tokens per sequence (default 64)\n"
    "  --batch N           sequences per micro-batch (default 8)\n"
    "  --accum N           micro-batches per update (default 1)\n"
    "  --steps N           updates (default 2400)\n"
    "  --lr X              peak learning rate (default 2e-3)\n"
    "  --warmup N          warmup steps (default steps / 20)\n"
    "  --weight-decay X    AdamW's decay (default 0.1)\n"
    "  --clip X            global gradient norm limit (default 1.0; 0 = off)\n"
    "  --eval-every N      steps between evals (default steps / 6)\n"
    "  --eval-batches N    validation batches per eval (default 8)\n"
    "  --seed N            PRNG seed (default 0)\n"
    "  --out DIR           output directory (default train-lm-out)\n"
    "  --resume FILE       continue from a checkpoint (same options)\n"
    "  --stop-after N      stop after step N as if interrupted\n"
    "  --remat all|LIST    activation checkpointing: recompute these blocks'\n"
    "                      activations in the backward pass (block numbers from\n"
    "                      0, comma-separated; default none)\n"
    "  --precision P       bf16 (the default from scratch): mixed precision, the\n"
    "                      matrix products in bf16 with f32 sums, the weights,\n"
    "                      optimizer, norms and loss in f32; or f32 (the default\n"
    "                      with --finetune)\n"
    "  --device NAME       the device (default cpu)\n"
    "  --finetune GGUF     fine-tune this pretrained model (llama, qwen2, gemma,\n"
    "                      gpt2; dequantized to f32, or its blocks' matrices to bf16\n"
    "                      with --precision bf16, and frozen) with LoRA adapters\n"
    "                      instead of training GPT-2 from scratch; its tokenizer is\n"
    "                      the default; weight decay defaults to 0; writes\n"
    "                      adapter.safetensors and the merged model.gguf\n"
    "  --lora-rank N       the adapters' rank (default 8)\n"
    "  --lora-alpha X      their scale is alpha / rank (default 16)\n"
    "  --lora-targets L    comma-separated projections (attn_q, attn_k, attn_v,\n"
    "                      attn_output, ffn_gate, ffn_up, ffn_down) or globs over\n"
    "                      GGUF tensor names (default attn_q,attn_v)\n"
    "  --no-plot           do not run gnuplot\n"
    "\n"
    "Started by mpirun (mpirun -np N ryft train-lm ...), the N processes train\n"
    "data-parallel: each takes batch/N sequences of every micro-batch and the loss\n"
    "and gradients are averaged over the processes in each step; rank 0 prints and\n"
    "writes the output (the checkpoint does not depend on N: --resume with any N).\n";

static int usage(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ryft train-lm: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n\n", stderr);
  fputs(k_usage, stderr);
  va_end(ap);
  return T_USAGE;
}

static int fail(ry_status s, const char *what) {
  fprintf(stderr, "ryft train-lm: %s%s%s\n", what ? what : "", what ? ": " : "", ry_status_message(s));
  ry_status_free(s);
  return T_FAIL;
}

struct lm_opts {
  const char *data, *tokenizer, *config, *out, *resume, *device, *finetune, *lora_targets, *remat;
  int64_t lora_rank;
  double lora_alpha;
  int wd_given, bf16; /* bf16: -1 until given */
  int64_t ctx, batch, accum, steps, warmup, eval_every, eval_batches, stop_after, layers, embd, heads;
  double lr, weight_decay, clip;
  uint64_t seed;
  int no_plot;
};
typedef struct lm_opts lm_opts;

/* ---- the corpus ---- */

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
  return 1;
}

/* one file's text, ending with a "%" line; a file without "%" lines (not
   in fortune's format) has a "%" line put between its paragraphs */
static ry_status read_all(const char *path, buf *b) {
  FILE *f = fopen(path, "rb");
  if (!f) return ry_status_make(RY_ERR_IO, "corpus %s: %s", path, strerror(errno));
  buf one = {0};
  char tmp[65536];
  size_t k;
  ry_status s = NULL;
  while (!s && (k = fread(tmp, 1, sizeof tmp, f)) > 0)
    if (!buf_add(&one, tmp, k)) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "corpus %s: out of memory", path);
  if (!s && ferror(f)) s = ry_status_make(RY_ERR_IO, "corpus %s: read error", path);
  fclose(f);
  int fortune = one.p && (strstr(one.p, "\n%\n") || !strncmp(one.p, "%\n", 2));
  for (size_t i = 0; !s && i < one.n; i++) {
    int para = !fortune && one.p[i] == '\n' && i + 1 < one.n && one.p[i + 1] == '\n';
    if (!(para ? buf_add(b, "\n%\n", 3) : buf_add(b, one.p + i, 1)))
      s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "corpus: out of memory");
    if (para)
      while (i + 1 < one.n && one.p[i + 1] == '\n') i++;
  }
  free(one.p);
  if (!s && !buf_add(b, "\n%\n", 3)) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "corpus: out of memory");
  return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the text of `path` (a file, or a directory's files without a '.' in their
   name, in name order), each file ending with a "%" line */
static ry_status read_corpus(const char *path, buf *b) {
  struct stat st;
  if (stat(path, &st) != 0) return ry_status_make(RY_ERR_IO, "corpus %s: %s (pass --data PATH)", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return read_all(path, b);
  DIR *d = opendir(path);
  if (!d) return ry_status_make(RY_ERR_IO, "corpus %s: %s", path, strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0;
  ry_status s = NULL;
  struct dirent *e;
  while (!s && (e = readdir(d))) {
    if (strchr(e->d_name, '.')) continue;
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", path, e->d_name);
    if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) {
        s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "corpus: out of memory");
        break;
      }
      names = nn;
    }
    names[n] = strdup(full);
    if (!names[n]) s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "corpus: out of memory");
    else n++;
  }
  closedir(d);
  if (!s && n == 0) s = ry_status_make(RY_ERR_IO, "corpus %s: the directory has no text files (files without an extension)", path);
  if (!s) qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n && !s; i++) s = read_all(names[i], b);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return s;
}

/* Clean one document in place: overstruck characters ("_\bA") keep the
   last, other control characters but newline and tab go, surrounding
   blank space goes. Returns the new length. */
static size_t clean_doc(char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\b') {
      if (o) o--;
      continue;
    }
    if (c < 0x20 && c != '\n' && c != '\t') continue;
    s[o++] = (char)c;
  }
  size_t a = 0;
  while (a < o && (s[a] == '\n' || s[a] == ' ' || s[a] == '\t')) a++;
  while (o > a && (s[o - 1] == '\n' || s[o - 1] == ' ' || s[o - 1] == '\t')) o--;
  memmove(s, s + a, o - a);
  return o - a;
}

typedef struct tokens {
  int32_t *p;
  int64_t n, cap;
} tokens;

static int tok_add(tokens *t, const int32_t *ids, int64_t n) {
  if (t->n + n > t->cap) {
    int64_t cap = t->cap ? t->cap : 1 << 16;
    while (cap < t->n + n) cap *= 2;
    int32_t *p = realloc(t->p, (size_t)cap * sizeof *p);
    if (!p) return 0;
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->n, ids, (size_t)n * sizeof *ids);
  t->n += n;
  return 1;
}

/* Split the text into documents at "%" lines, tokenize each and append it
   with EOS to train or, every 20th, to val. */
static ry_status tokenize_corpus(const ry_tokenizer *tk, buf *text, const char *path, tokens *train, tokens *val,
                                 int64_t *n_docs) {
  int32_t eos = ry_tokenizer_eos(tk);
  const char *sep = "\n%\n";
  ry_status s = NULL;
  int64_t doc = 0;
  char *p = text->p, *end = text->p + text->n;
  while (p < end && !s) {
    char *q = strstr(p, sep);
    if (!q) q = end;
    size_t len = clean_doc(p, (size_t)(q - p));
    if (len > 0) {
      int32_t *ids = NULL;
      int64_t n = 0;
      s = ry_tokenize(tk, p, (long)len, 0, &ids, &n);
      tokens *dst = doc % 20 == 19 ? val : train;
      if (!s && (!tok_add(dst, ids, n) || (eos >= 0 && !tok_add(dst, &eos, 1))))
        s = ry_status_make(RY_ERR_OUT_OF_MEMORY, "corpus: out of memory");
      ry_free(ids);
      doc++;
    }
    p = q + strlen(sep);
  }
  if (!s && train->n == 0) s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "corpus %s holds no text", path);
  *n_docs = doc;
  return s;
}

/* ---- configurations ---- */

static int make_config(const char *name, int n_vocab, ry_lm_config *c) {
  ry_lm_config k = {RY_LM_GPT2, 4, 128, 512, 4, 4, 32, n_vocab, 256, 10000.0, 1e-5, RY_ROPE_NONE, 1, 0};
  if (!strcmp(name, "gpt2")) {
    k.n_layers = 12;
    k.n_embd = 768;
    k.n_ff = 3072;
    k.n_heads = k.n_kv_heads = 12;
    k.head_dim = 64;
    k.n_ctx_train = 1024;
  } else if (strcmp(name, "small") != 0) {
    return 0;
  }
  *c = k;
  return 1;
}

/* the configuration as checkpoint metadata, compared on --resume */
static void config_str(const ry_lm_config *c, char *out, size_t n) {
  snprintf(out, n, "layers %d, embd %d, ff %d, heads %d, vocab %d, positions %d", c->n_layers, c->n_embd, c->n_ff, c->n_heads,
           c->n_vocab, c->n_ctx_train);
}

/* ---- sampling a text after each eval ---- */

typedef struct sample_ctx {
  int32_t ids[128];
  int n;
} sample_ctx;

static int on_token(int32_t token, int index, void *vctx) {
  (void)index;
  sample_ctx *c = vctx;
  if (c->n < (int)(sizeof c->ids / sizeof c->ids[0])) c->ids[c->n++] = token;
  return 0;
}

static ry_status print_sample(ry_lm *m, const ry_tokenizer *tk, const ry_params *w, uint64_t seed, FILE *log) {
  ry_status s = ry_lm_set_weights(m, w);
  if (s) return s;
  int32_t eos = ry_tokenizer_eos(tk);
  ry_sample_opts so = RY_SAMPLE_DEFAULTS;
  so.seed = seed;
  sample_ctx c = {0};
  s = ry_lm_generate(m, &eos, 1, &so, 60, &eos, 1, on_token, &c, NULL);
  if (s) return s;
  if (c.n > 0 && c.ids[c.n - 1] == eos) c.n--;
  char *text = NULL;
  size_t len = 0;
  s = ry_detokenize(tk, c.ids, c.n, 0, &text, &len);
  if (s) return s;
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\n' || text[i] == '\r') text[i] = '|'; /* one line */
  printf("  sample: %.*s\n", (int)len, text);
  if (log) fprintf(log, "%.*s\n", (int)len, text);
  ry_free(text);
  return NULL;
}

/* ---- the run ---- */

typedef struct lm_opts lm_opts;

/* the mean loss of the same eval_batches validation batches every time */
static ry_status evaluate(ry_lm_trainer *t, const tokens *val, ry_key val_key, const lm_opts *o, int32_t *batch, double *out);

static ry_status write_checkpoint(const char *path, ry_lm_trainer *t, const char *cfg, int64_t step, uint64_t seed) {
  ry_params *st = NULL;
  ry_status s = ry_lm_trainer_state(t, &st);
  if (s) return s;
  char sp[32], sd[32];
  snprintf(sp, sizeof sp, "%" PRId64, step);
  snprintf(sd, sizeof sd, "%" PRIu64, seed);
  ry_meta meta[4] = {{"format", "ryft-train-lm-1"}, {"config", cfg}, {"step", sp}, {"seed", sd}};
  s = ry_safetensors_write(path, st, 4, meta);
  ry_params_free(st);
  return s;
}

static ry_status read_checkpoint(const char *path, ry_lm_trainer *t, const char *cfg) {
  char *v = NULL;
  ry_status s = ry_safetensors_metadata(path, "config", &v);
  if (s) return s;
  if (!v || strcmp(v, cfg) != 0) {
    s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "%s: the checkpoint is of another configuration (%s), not this run's (%s)", path,
                       v ? v : "none recorded", cfg);
    ry_free(v);
    return s;
  }
  ry_free(v);
  ry_params *like = NULL, *got = NULL;
  s = ry_lm_trainer_state(t, &like);
  if (!s) s = ry_safetensors_load(path, like, &got);
  for (int i = 0; !s && i < ry_params_count(got); i++) { /* a NaN would only show later as a NaN loss */
    const ry_array *a = ry_params_at(got, i);
    if (!ry_dtype_is_float(ry_array_dtype(a))) continue;
    for (int64_t k = 0, n = ry_array_numel(a); k < n && !s; k++)
      if (!isfinite(ry_array_get_f64(a, k)))
        s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "%s: '%s' holds a non-finite value at element %" PRId64, path,
                           ry_params_path(got, i), k);
  }
  if (!s) s = ry_lm_trainer_set_state(t, got);
  ry_params_free(like);
  ry_params_free(got);
  return s;
}

static ry_status evaluate(ry_lm_trainer *t, const tokens *val, ry_key val_key, const lm_opts *o, int32_t *batch, double *out) {
  double sum = 0;
  for (int64_t j = 0; j < o->eval_batches; j++) {
    double vl = 0;
    ry_status s = ry_lm_sample_batch(val->p, val->n, ry_key_fold_in(val_key, (uint32_t)j), (int)o->batch, (int)o->ctx, batch);
    if (!s) s = ry_lm_trainer_eval(t, batch, &vl);
    if (s) return s;
    sum += vl;
  }
  *out = sum / (double)o->eval_batches;
  return NULL;
}

static void plot(const char *dir) {
  char body[1600];
  snprintf(body, sizeof body,
           "set key autotitle columnhead\n"
           "set title 'language model loss'\nset xlabel 'step'\nset ylabel 'loss (nats/token)'\n"
           "plot '%s/steps.csv' using 1:2 with lines title 'train loss', "
           "'%s/metrics.csv' using 1:4 with linespoints title 'validation loss'\n",
           dir, dir);
  tr_plot(dir, "metrics.csv", body);
}

static const char *default_tokenizer(void) {
  const char *e = getenv("RYFT_MODEL");
  return e && *e ? e : "build/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

static int run(const lm_opts *o) {
  int rc = T_FAIL;
  ry_status s = NULL;
  double t_start = tr_now_s();
  buf text = {0};
  tokens train = {0}, val = {0};
  ry_tokenizer *tk = NULL;
  ry_gguf *g = NULL;
  ry_device *dev = NULL;
  ry_params *w0 = NULL, *w = NULL, *base = NULL, *merged = NULL;
  unsigned char *remat = NULL;
  ry_lm_trainer *t = NULL;
  ry_lm *sampler = NULL;
  int32_t *batch = NULL, *local = NULL;
  FILE *csv = NULL, *steps_csv = NULL, *samples = NULL;

  /* under mpirun: rank 0 prints and writes every file; the others train
     their shard of each batch quietly (errors still go to stderr) */
  int n_ranks = ry_dist_size(), lead = ry_dist_rank() == 0;
  if (!lead && !freopen("/dev/null", "w", stdout)) return T_FAIL;
  if (o->batch % n_ranks) {
    fprintf(stderr, "ryft train-lm: --batch %" PRId64 " cannot be split over %d ranks (make it a multiple of %d)\n", o->batch,
            n_ranks, n_ranks);
    return T_USAGE;
  }
  if ((s = ry_device_get(o->device, &dev))) return fail(s, "--device");
  if ((s = ry_gguf_open(o->tokenizer, &g))) return fail(s, "--tokenizer");
  s = ry_tokenizer_from_gguf(g, &tk);
  ry_gguf_close(g);
  g = NULL;
  if (s) return fail(s, o->tokenizer);
  int64_t n_docs = 0;
  double t0 = tr_now_s();
  if ((s = read_corpus(o->data, &text)) || (s = tokenize_corpus(tk, &text, o->data, &train, &val, &n_docs))) {
    rc = fail(s, NULL);
    goto done;
  }
  free(text.p);
  text.p = NULL;
  if (val.n < o->ctx + 1 || train.n < o->ctx + 1) {
    fprintf(stderr,
            "ryft train-lm: corpus %s is too small: %" PRId64 " training and %" PRId64
            " validation tokens, each needs more than the context of %" PRId64 "\n",
            o->data, train.n, val.n, o->ctx);
    goto done;
  }
  printf("corpus %s: %" PRId64 " documents, %" PRId64 " training + %" PRId64 " validation tokens (tokenized in %.1f s)\n", o->data,
         n_docs, train.n, val.n, tr_now_s() - t0);

  ry_lm_config c;
  char cfg[512];
  double lora_scale = 0;
  if (o->finetune) { /* a pretrained model, frozen (dequantized to f32), under LoRA adapters */
    if ((s = ry_gguf_open(o->finetune, &g)) || (s = ry_lm_config_from_gguf(g, &c)) || (s = ry_lm_weights_from_gguf(g, &c, &base))) {
      rc = fail(s, o->finetune);
      goto done;
    }
    ry_gguf_close(g);
    g = NULL;
    /* "attn_q,attn_v" -> blk.*.attn_q.weight, blk.*.attn_v.weight; globs as they are */
    char list[512], globs[16][128];
    const char *targets[16];
    int nt = 0;
    snprintf(list, sizeof list, "%s", o->lora_targets);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && nt < 16; tok = strtok_r(NULL, ",", &save)) {
      if (strchr(tok, '.') || strchr(tok, '*'))
        snprintf(globs[nt], sizeof globs[nt], "%s", tok);
      else
        snprintf(globs[nt], sizeof globs[nt], "blk.*.%s.weight", tok);
      targets[nt] = globs[nt];
      nt++;
    }
    if ((s = ry_lm_lora_init(base, nt, targets, (int)o->lora_rank, o->seed, &w0))) {
      rc = fail(s, "--lora-targets");
      goto done;
    }
    lora_scale = o->lora_alpha / (double)o->lora_rank;
    const char *bn = strrchr(o->finetune, '/');
    snprintf(cfg, sizeof cfg, "finetune %s, lora rank %" PRId64 ", alpha %g, targets %s", bn ? bn + 1 : o->finetune, o->lora_rank,
             o->lora_alpha, o->lora_targets);
  } else {
    make_config(o->config, ry_tokenizer_n_tokens(tk), &c);
    if (o->layers > 0) c.n_layers = (int)o->layers;
    if (o->embd > 0) {
      c.n_embd = (int)o->embd;
      c.n_ff = 4 * c.n_embd;
    }
    if (o->heads > 0) c.n_heads = c.n_kv_heads = (int)o->heads;
    if (c.n_embd % c.n_heads != 0) {
      fprintf(stderr, "ryft train-lm: --embd %d is not a multiple of --heads %d\n", c.n_embd, c.n_heads);
      rc = T_USAGE;
      goto done;
    }
    c.head_dim = c.n_embd / c.n_heads;
    config_str(&c, cfg, sizeof cfg);
  }
  if (o->ctx > c.n_ctx_train) {
    fprintf(stderr, "ryft train-lm: --ctx %" PRId64 " is longer than the model's context of %d (%s)\n", o->ctx, c.n_ctx_train,
            o->finetune ? o->finetune : o->config);
    rc = T_USAGE;
    goto done;
  }
  if (ry_tokenizer_n_tokens(tk) > c.n_vocab) {
    fprintf(stderr, "ryft train-lm: the tokenizer has %d tokens, the model %d\n", ry_tokenizer_n_tokens(tk), c.n_vocab);
    goto done;
  }
  ry_lm_train_opts to = ry_lm_train_defaults();
  to.batch = (int)o->batch;
  to.ctx = (int)o->ctx;
  to.accum = (int)o->accum;
  to.opt.weight_decay = o->finetune && !o->wd_given ? 0.0 : o->weight_decay;
  to.opt.clip_norm = o->clip;
  to.opt.lr.kind = RY_NN_SCHED_WARMUP_COSINE;
  to.opt.lr.init_value = 0;
  to.opt.lr.value = o->lr;
  to.opt.lr.end_value = o->lr / 10;
  to.opt.lr.warmup_steps = o->warmup;
  to.opt.lr.decay_steps = o->steps;
  to.frozen = base;
  to.lora_scale = lora_scale;
  to.n_ranks = n_ranks;
  /* --remat: all, or block numbers "0,2,5" */
  remat = calloc((size_t)c.n_layers, 1);
  if (!remat) goto done;
  if (o->remat && !strcmp(o->remat, "all")) memset(remat, 1, (size_t)c.n_layers);
  for (const char *p = o->remat && strcmp(o->remat, "all") ? o->remat : ""; *p;) {
    char *e;
    long l = strtol(p, &e, 10);
    if (e == p || l < 0 || l >= c.n_layers || (*e && *e != ',')) {
      fprintf(stderr, "ryft train-lm: --remat wants 'all' or block numbers in [0, %d) separated by commas, not '%s'\n",
              c.n_layers, o->remat);
      rc = T_USAGE;
      goto done;
    }
    remat[l] = 1;
    p = *e ? e + 1 : e;
  }
  to.remat = remat;
  to.matmul_dtype = o->bf16 ? RY_BF16 : RY_F32;
  if ((!o->finetune && (s = ry_lm_init_gpt2(&c, o->seed, dev, &w0))) || (s = ry_lm_trainer_new(&c, w0, &to, dev, &t))) {
    rc = fail(s, "building the model");
    goto done;
  }
  int64_t start = 0;
  char ckpt[1200], path[1200];
  if (o->resume) {
    if ((s = read_checkpoint(o->resume, t, cfg))) {
      rc = fail(s, "--resume");
      goto done;
    }
    start = ry_lm_trainer_steps(t);
    if (start >= o->steps) {
      printf("checkpoint %s has already trained %" PRId64 " of %" PRId64 " steps: nothing to do\n", o->resume, start, o->steps);
      rc = T_OK;
      goto done;
    }
  }
  if (lead && mkdir(o->out, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "ryft train-lm: cannot create %s: %s\n", o->out, strerror(errno));
    goto done;
  }
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", o->out);
  snprintf(path, sizeof path, "%s/metrics.csv", o->out);
  csv = tr_open_log(lead ? path : "/dev/null", o->resume);
  if (csv && !o->resume) fprintf(csv, "step,tokens,train_loss,val_loss,val_perplexity,seconds\n");
  snprintf(path, sizeof path, "%s/steps.csv", o->out);
  steps_csv = tr_open_log(lead ? path : "/dev/null", o->resume);
  if (steps_csv && !o->resume) fprintf(steps_csv, "step,loss,lr\n");
  snprintf(path, sizeof path, "%s/samples.txt", o->out);
  samples = tr_open_log(lead ? path : "/dev/null", o->resume);
  if (!csv || !steps_csv || !samples) {
    fprintf(stderr, "ryft train-lm: cannot write in %s: %s\n", o->out, strerror(errno));
    goto done;
  }
  int sample_ctx_len = c.n_ctx_train < 128 ? c.n_ctx_train : 128;
  if ((s = ry_lm_new(&c, base ? base : w0, dev, sample_ctx_len, &sampler))) {
    rc = fail(s, "the sampler");
    goto done;
  }
  int64_t n_trained = ry_params_numel(w0);
  ry_params_free(w0); /* the trainer (and the sampler, until the first eval) hold the arrays */
  w0 = NULL;
  int64_t per_step = o->accum * o->batch * (o->ctx + 1), shard = o->batch / n_ranks * (o->ctx + 1);
  batch = malloc((size_t)per_step * sizeof *batch);
  local = n_ranks > 1 ? malloc((size_t)(o->accum * shard) * sizeof *local) : batch;
  if (!batch || !local) {
    fprintf(stderr, "ryft train-lm: out of memory\n");
    goto done;
  }
  printf("ryft train-lm: %s%s (%s; %" PRId64 " %sparameters), batch %" PRId64 " x %" PRId64 " x %" PRId64
         " tokens, %" PRId64 " steps, AdamW lr %g (warmup %" PRId64 " + cosine), %s products, device %s\n",
         base ? "fine-tuning " : "GPT-2 ", base ? ry_lm_arch_name(c.arch) : o->config, cfg, n_trained,
         base ? "trained " : "", o->accum, o->batch, o->ctx, o->steps, o->lr, o->warmup, o->bf16 ? "bf16" : "f32",
         ry_device_name(dev));
  if (base)
    printf("frozen base: %" PRId64 " parameters (%s)\n", ry_params_numel(base),
           o->bf16 ? "the blocks' matrices in bf16 in the step, the embedding f32" : "f32");
  if (o->resume) printf("resuming from %s after step %" PRId64 "\n", o->resume, start);
  if (n_ranks > 1)
    printf("data-parallel over %d MPI ranks: %" PRId64 " sequences of each batch per rank, gradients averaged in the step\n",
           n_ranks, o->batch / n_ranks);
  fflush(stdout);

  ry_key train_key = ry_key_fold_in(ry_key_from_seed((int64_t)o->seed), 1);
  ry_key val_key = ry_key_fold_in(ry_key_from_seed((int64_t)o->seed), 2);
  int64_t end = o->stop_after > 0 && o->stop_after < o->steps ? o->stop_after : o->steps;
  double last_val = NAN;
  if (base && !o->resume) { /* the pretrained model's validation loss, the baseline */
    if ((s = evaluate(t, &val, val_key, o, batch, &last_val))) {
      rc = fail(s, "evaluation");
      goto done;
    }
    printf("step 0/%" PRId64 ": validation loss %.4f, perplexity %.1f (before fine-tuning)\n", o->steps, last_val, exp(last_val));
    fprintf(csv, "0,0,,%.6f,%.4f,%.3f\n", last_val, exp(last_val), tr_now_s() - t_start);
  }
  tr_progress pg = {0};
  pg.unit = "tokens";
  pg.per_step = (double)(o->accum * o->batch * o->ctx);
  double loss_sum = 0;
  int64_t loss_n = 0;
  for (int64_t step = start; step < end;) {
    int64_t seg_end = (step / o->eval_every + 1) * o->eval_every;
    if (seg_end > end) seg_end = end;
    tr_progress_start(&pg, seg_end - step);
    char label[64];
    snprintf(label, sizeof label, "steps %" PRId64 "-%" PRId64, step + 1, seg_end);
    double seg_t0 = tr_now_s();
    for (int64_t k = 0; step < seg_end; step++, k++) {
      double loss = 0;
      /* every rank draws the same global batch and takes its rows of each micro-batch */
      s = ry_lm_sample_batch(train.p, train.n, ry_key_fold_in(train_key, (uint32_t)step), (int)(o->accum * o->batch),
                             (int)o->ctx, batch);
      for (int64_t a = 0; !s && local != batch && a < o->accum; a++)
        memcpy(local + a * shard, batch + (a * o->batch + ry_dist_rank() * (o->batch / n_ranks)) * (o->ctx + 1),
               (size_t)shard * sizeof *local);
      if (s || (s = ry_lm_trainer_step(t, local, &loss))) {
        rc = fail(s, "training step");
        goto done;
      }
      if (!isfinite(loss)) {
        fprintf(stderr, "\nryft train-lm: the loss is %g at step %" PRId64 "; the training diverged: try a smaller --lr\n", loss,
                step + 1);
        goto done;
      }
      loss_sum += loss;
      loss_n++;
      fprintf(steps_csv, "%" PRId64 ",%.6f,%.6g\n", step + 1, loss, ry_nn_schedule_eval(&to.opt.lr, step));
      tr_progress_draw(&pg, label, k + 1, loss_sum / (double)loss_n, step + 1 == seg_end);
    }
    double seg_s = tr_now_s() - seg_t0;
    if (step % o->eval_every != 0 && step != o->steps && step != end) continue;
    if ((s = evaluate(t, &val, val_key, o, batch, &last_val))) {
      rc = fail(s, "evaluation");
      goto done;
    }
    double train_loss = loss_sum / (double)(loss_n ? loss_n : 1);
    printf("step %" PRId64 "/%" PRId64 ": train loss %.4f, validation loss %.4f, perplexity %.1f (%.0f tokens/s)\n", step,
           o->steps, train_loss, last_val, exp(last_val), (double)pg.total * pg.per_step / seg_s);
    fprintf(csv, "%" PRId64 ",%" PRId64 ",%.6f,%.6f,%.4f,%.3f\n", step, step * o->accum * o->batch * o->ctx, train_loss, last_val,
            exp(last_val), tr_now_s() - t_start);
    fflush(csv);
    fflush(steps_csv);
    loss_sum = 0;
    loss_n = 0;
    ry_params_free(w);
    ry_params_free(merged);
    w = merged = NULL;
    if (lead && ((s = ry_lm_trainer_weights(t, &w)) || (base && (s = ry_lm_lora_merge(base, w, lora_scale, &merged))) ||
                 (s = print_sample(sampler, tk, merged ? merged : w, o->seed + (uint64_t)step, samples)))) {
      rc = fail(s, "sampling");
      goto done;
    }
    fflush(samples);
    if (lead && (s = write_checkpoint(ckpt, t, cfg, step, o->seed))) {
      rc = fail(s, "writing the checkpoint");
      goto done;
    }
    fflush(stdout);
  }
  if (end == o->steps && lead) {
    /* the weights (the adapters, when fine-tuning) as safetensors under
       GGUF's names, and the model (merged) as GGUF with the tokenizer's
       keys, for llama.cpp */
    snprintf(path, sizeof path, "%s/%s.safetensors", o->out, base ? "adapter" : "model");
    ry_params_free(w);
    ry_params_free(merged);
    w = merged = NULL;
    ry_meta meta[2] = {{"format", "ryft-gguf-names"}, {"config", cfg}};
    if ((s = ry_lm_trainer_weights(t, &w)) || (s = ry_safetensors_write(path, w, 2, meta)) ||
        (base && (s = ry_lm_lora_merge(base, w, lora_scale, &merged)))) {
      rc = fail(s, "writing the model");
      goto done;
    }
    char gpath[1200];
    snprintf(gpath, sizeof gpath, "%s/model.gguf", o->out);
    if ((s = ry_gguf_open(o->tokenizer, &g)) || (s = ry_lm_save_gguf(gpath, &c, merged ? merged : w, g))) {
      rc = fail(s, "writing the GGUF model");
      goto done;
    }
    printf("final validation loss %.4f (perplexity %.1f) in %.1f s; model %s and %s, checkpoint %s\n", last_val, exp(last_val),
           tr_now_s() - t_start, path, gpath, ckpt);
  } else {
    printf("stopped after step %" PRId64 " in %.1f s; checkpoint %s\n", end, tr_now_s() - t_start, ckpt);
  }
  fclose(csv);
  fclose(steps_csv);
  csv = steps_csv = NULL;
  if (!o->no_plot && lead) plot(o->out);
  rc = T_OK;

done:
  if (csv) fclose(csv);
  if (steps_csv) fclose(steps_csv);
  if (samples) fclose(samples);
  if (local != batch) free(local);
  free(batch);
  free(remat);
  free(text.p);
  free(train.p);
  free(val.p);
  ry_lm_free(sampler);
  ry_lm_trainer_free(t);
  ry_params_free(w0);
  ry_params_free(w);
  ry_params_free(base);
  ry_params_free(merged);
  ry_tokenizer_free(tk);
  ry_gguf_close(g);
  return rc;
}

static int is_value_option(const char *name) {
  static const char *const k[] = {"--data",  "--tokenizer",  "--config",     "--ctx",  "--batch", "--accum",
                                  "--steps", "--lr",         "--warmup",     "--weight-decay", "--clip", "--eval-every",
                                  "--eval-batches", "--seed", "--out", "--resume", "--stop-after", "--device",
                                  "--layers", "--embd", "--heads", "--finetune", "--lora-rank", "--lora-alpha",
                                  "--lora-targets", "--remat", "--precision"};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(name, k[i])) return 1;
  return 0;
}

static int run_ctx(const void *o) { return run(o); }

int ryft_cmd_train_lm(int argc, char **argv) {
  lm_opts o = {0};
  o.config = "small";
  o.ctx = 64;
  o.batch = 8;
  o.accum = 1;
  o.steps = 2400;
  o.lr = 2e-3;
  o.warmup = -1;
  o.weight_decay = 0.1;
  o.clip = 1.0;
  o.eval_every = -1;
  o.eval_batches = 8;
  o.out = "train-lm-out";
  o.device = "cpu";
  o.lora_rank = 8;
  o.lora_alpha = 16;
  o.lora_targets = "attn_q,attn_v";
  o.bf16 = -1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_usage, stdout);
      return T_OK;
    }
    if (!strcmp(a, "--no-plot")) {
      o.no_plot = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) return usage("unexpected argument '%s'", a);
    char name[64];
    const char *v, *eq = strchr(a, '=');
    if (eq) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
      v = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
      if (!is_value_option(name)) return usage("unknown option '%s'", name);
      if (i + 1 >= argc) return usage("%s needs a value", a);
      v = argv[++i];
    }
    struct {
      const char *name;
      int64_t *p, lo, hi;
    } ints[] = {{"--ctx", &o.ctx, 1, 1 << 20},          {"--batch", &o.batch, 1, 1 << 16},
                {"--accum", &o.accum, 1, 1 << 10},      {"--steps", &o.steps, 1, 1 << 30},
                {"--warmup", &o.warmup, 0, 1 << 30},    {"--eval-every", &o.eval_every, 1, 1 << 30},
                {"--eval-batches", &o.eval_batches, 1, 1 << 16}, {"--stop-after", &o.stop_after, 1, 1 << 30},
                {"--layers", &o.layers, 1, 256},        {"--embd", &o.embd, 1, 1 << 14},
                {"--heads", &o.heads, 1, 1024},         {"--lora-rank", &o.lora_rank, 1, 4096}};
    struct {
      const char *name;
      double *p, lo;
      int open; /* lo excluded */
    } reals[] = {{"--lr", &o.lr, 0, 1}, {"--weight-decay", &o.weight_decay, 0, 0}, {"--clip", &o.clip, 0, 0},
                 {"--lora-alpha", &o.lora_alpha, 0, 1}};
    if (!strcmp(name, "--weight-decay")) o.wd_given = 1;
    int done = 0;
    for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !done; k++)
      if (!strcmp(name, ints[k].name)) {
        int64_t iv;
        if (!tr_parse_i64(v, &iv) || iv < ints[k].lo || iv > ints[k].hi)
          return usage("%s wants an integer in [%" PRId64 ", %" PRId64 "], not '%s'", name, ints[k].lo, ints[k].hi, v);
        *ints[k].p = iv;
        done = 1;
      }
    for (size_t k = 0; k < sizeof reals / sizeof reals[0] && !done; k++)
      if (!strcmp(name, reals[k].name)) {
        double dv;
        if (!tr_parse_f64(v, &dv) || dv < reals[k].lo || (reals[k].open && dv == reals[k].lo))
          return usage("%s wants a %s number, not '%s'", name, reals[k].open ? "positive" : "non-negative", v);
        *reals[k].p = dv;
        done = 1;
      }
    if (done) continue;
    if (!strcmp(name, "--seed")) {
      int64_t iv;
      if (!tr_parse_i64(v, &iv) || iv < 0 || iv > 0x7fffffff) return usage("--seed wants an integer in [0, 2^31), not '%s'", v);
      o.seed = (uint64_t)iv;
    } else if (!strcmp(name, "--config")) {
      ry_lm_config c;
      if (!make_config(v, 1, &c)) return usage("unknown config '%s' (small or gpt2)", v);
      o.config = v;
    } else if (!strcmp(name, "--finetune")) {
      o.finetune = v;
    } else if (!strcmp(name, "--remat")) {
      o.remat = v;
    } else if (!strcmp(name, "--precision")) {
      if (strcmp(v, "f32") && strcmp(v, "bf16")) return usage("--precision wants f32 or bf16, not '%s'", v);
      o.bf16 = !strcmp(v, "bf16");
    } else if (!strcmp(name, "--lora-targets")) {
      o.lora_targets = v;
    } else if (!strcmp(name, "--data")) {
      o.data = v;
    } else if (!strcmp(name, "--tokenizer")) {
      o.tokenizer = v;
    } else if (!strcmp(name, "--out")) {
      o.out = v;
    } else if (!strcmp(name, "--resume")) {
      o.resume = v;
    } else if (!strcmp(name, "--device")) {
      o.device = v;
    } else {
      return usage("unknown option '%s'", name);
    }
  }
  if (!o.data) {
    const char *e = getenv("RYFT_TEXT");
    o.data = e && *e ? e : "/usr/share/games/fortunes";
  }
  if (!o.tokenizer) o.tokenizer = o.finetune ? o.finetune : default_tokenizer();
  if (o.bf16 < 0) o.bf16 = !o.finetune; /* the LoRA numbers in the README are f32's */
  if (o.warmup < 0) o.warmup = o.steps / 20;
  if (o.eval_every < 0) o.eval_every = o.steps / 6 > 0 ? o.steps / 6 : 1;
  return tr_run_ranks("train-lm", &argc, &argv, run_ctx, &o);
}
