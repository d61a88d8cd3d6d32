/* `ryft generate` and `ryft chat`: text generation with a GGUF language
 * model (ryft/model.h, ryft/llm.h). Tokens are streamed to stdout as they
 * are produced (a streaming decoder holds back incomplete UTF-8); timing goes
 * to stderr: time to first token, prefill and decode tokens per second.
 * Uses only the public API. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "ryft/ryft.h"

static const char k_gen_usage[] =
    "usage: ryft generate MODEL.gguf -p PROMPT [OPTIONS]\n"
    "       ryft chat MODEL.gguf [OPTIONS]\n"
    "\n"
    "generate continues PROMPT (with --chat, PROMPT is a user message in the\n"
    "model's chat template); chat reads user messages from stdin, one per line,\n"
    "and answers each in the model's chat template.\n"
    "\n"
    "options:\n"
    "  -p, --prompt TEXT     the prompt (generate)\n"
    "  -n, --n-predict N     at most N new tokens (default 128)\n"
    "  --temp X              temperature, 0 = greedy (default 0.8)\n"
    "  --top-k N             keep the N most likely tokens, 0 = off (default 40)\n"
    "  --top-p X             nucleus sampling, 1 = off (default 0.95)\n"
    "  --min-p X             drop tokens below X times the best one (default 0.05)\n"
    "  --repeat-penalty X    penalty of the last 64 tokens, 1 = off (default 1)\n"
    "  --seed N              sampling seed (default 0)\n"
    "  --ctx N               context length (default 2048, at most the model's)\n"
    "  --threads N           threads of the cpu device (as RYFT_NUM_THREADS)\n"
    "  --device NAME         cpu (default), interp or pjrt\n"
    "  --chat                generate: wrap PROMPT in the chat template\n"
    "  --system TEXT         chat: a system message first\n"
    "  --no-stats            generate: no timing line on stderr\n"
    "  --exact               products with quantized weights in f32 (default:\n"
    "                        8-bit activations, as llama.cpp; faster)\n"
    "  --ggml-numerics       llama.cpp's CPU arithmetic op by op (its greedy\n"
    "                        tokens; about half the decode speed)\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 bad command line\n";

static int usage(const char *fmt, const char *arg) {
  fputs("ryft: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n\n", stderr);
  fputs(k_gen_usage, stderr);
  return 2;
}

static int fail(ry_status s, const char *what) {
  fprintf(stderr, "ryft: %s%s%s\n", what ? what : "", what ? ": " : "", ry_status_message(s));
  ry_status_free(s);
  return 1;
}

typedef struct gen_opts {
  const char *model, *prompt, *device, *system;
  ry_sample_opts sample;
  int n_predict, ctx, chat, stats, exact, ggml;
} gen_opts;

static int parse_num(const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !(d >= lo && d <= hi)) return 0;
  *out = d;
  return 1;
}

/* 0 ok, 2 usage error (printed) */
static int parse_opts(int argc, char **argv, int is_chat, gen_opts *o) {
  *o = (gen_opts){NULL, NULL, "cpu", NULL, RY_SAMPLE_DEFAULTS, 128, 2048, is_chat, 1, 0, 0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || !a[1]) {
      if (o->model) return usage("unexpected argument '%s' (one MODEL only)", a);
      o->model = a;
      continue;
    }
    if (!strcmp(a, "--chat")) {
      o->chat = 1;
      continue;
    }
    if (!strcmp(a, "--no-stats")) {
      o->stats = 0;
      continue;
    }
    if (!strcmp(a, "--exact")) {
      o->exact = 1;
      continue;
    }
    if (!strcmp(a, "--ggml-numerics")) {
      o->ggml = 1;
      continue;
    }
    static const char *const with_value[] = {"-p", "--prompt", "-n", "--n-predict", "--temp", "--top-k", "--top-p",
                                             "--min-p", "--repeat-penalty", "--seed", "--ctx", "--threads", "--device",
                                             "--system"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
    if (!known) return usage("unknown option '%s'", a);
    if (i + 1 >= argc) return usage("%s needs a value", a);
    const char *v = argv[++i];
    double d;
    if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
    else if (!strcmp(a, "--device")) o->device = v;
    else if (!strcmp(a, "--system")) o->system = v;
    else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
      if (!parse_num(v, 0, 1 << 20, &d) || d != (int)d) return usage("--n-predict wants an integer in [0, 1048576], not '%s'", v);
      o->n_predict = (int)d;
    } else if (!strcmp(a, "--temp")) {
      if (!parse_num(v, 0, 100, &d)) return usage("--temp wants a number in [0, 100], not '%s'", v);
      o->sample.temperature = (float)d;
    } else if (!strcmp(a, "--top-k")) {
      if (!parse_num(v, 0, 1 << 30, &d) || d != (int)d) return usage("--top-k wants an integer >= 0, not '%s'", v);
      o->sample.top_k = (int)d;
    } else if (!strcmp(a, "--top-p")) {
      if (!parse_num(v, 1e-9, 1, &d)) return usage("--top-p wants a number in (0, 1], not '%s'", v);
      o->sample.top_p = (float)d;
    } else if (!strcmp(a, "--min-p")) {
      if (!parse_num(v, 0, 0.999999, &d)) return usage("--min-p wants a number in [0, 1), not '%s'", v);
      o->sample.min_p = (float)d;
    } else if (!strcmp(a, "--repeat-penalty")) {
      if (!parse_num(v, 1e-6, 100, &d)) return usage("--repeat-penalty wants a positive number, not '%s'", v);
      o->sample.repeat_penalty = (float)d;
    } else if (!strcmp(a, "--seed")) {
      if (!parse_num(v, 0, 9007199254740991.0, &d) || d != (double)(uint64_t)d)
        return usage("--seed wants a non-negative integer, not '%s'", v);
      o->sample.seed = (uint64_t)d;
    } else if (!strcmp(a, "--ctx")) {
      if (!parse_num(v, 1, 1 << 20, &d) || d != (int)d) return usage("--ctx wants a positive integer, not '%s'", v);
      o->ctx = (int)d;
    } else if (!strcmp(a, "--threads")) {
      if (!parse_num(v, 1, 1024, &d) || d != (int)d) return usage("--threads wants an integer in [1, 1024], not '%s'", v);
      setenv("RYFT_NUM_THREADS", v, 1);
    }
  }
  if (!o->model) return usage("missing MODEL%s", ".gguf");
  if (!is_chat && !o->prompt) return usage("generate needs a prompt (%s)", "-p TEXT");
  return 0;
}

typedef struct stream_ctx {
  ry_detok_stream *ds;
  const ry_tokenizer *tok;
  ry_status err;
  const char *echo; /* the prompt, printed with the first token (so not before a failed prefill) */
} stream_ctx;

/* print each token's text as soon as it is whole UTF-8; stop at an
   end-of-generation token (not printed) */
static int on_token(int32_t id, int index, void *vctx) {
  (void)index;
  stream_ctx *c = vctx;
  if (c->echo) {
    fputs(c->echo, stdout);
    c->echo = NULL;
  }
  if (ry_tokenizer_is_eog(c->tok, id)) return 1;
  const char *text;
  size_t len;
  ry_status s = ry_detok_stream_push(c->ds, id, &text, &len);
  if (s) {
    c->err = s;
    return 1;
  }
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 0;
}

/* tokenize `text` (special tokens parsed: it is ours, from the template)
   and generate; the answer streams to stdout */
static ry_status answer(ry_lm *m, const ry_tokenizer *tok, const gen_opts *o, const char *text, int add_special,
                        const char *echo, ry_gen_stats *st) {
  int32_t *ids = NULL;
  int64_t n = 0;
  ry_status s = ry_tokenize(tok, text, -1, (add_special ? RY_TOK_ADD_SPECIAL : 0) | (o->chat ? RY_TOK_PARSE_SPECIAL : 0), &ids, &n);
  if (!s && n == 0) s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "the prompt has no tokens");
  if (!s && ry_lm_position(m) + n + 1 > o->ctx)
    s = ry_status_make(RY_ERR_INVALID_ARGUMENT, "the prompt has %lld tokens; with the %d before it, it does not fit the context of %d",
                       (long long)n, ry_lm_position(m), o->ctx);
  stream_ctx c = {NULL, tok, NULL, echo};
  if (!s) s = ry_detok_stream_new(tok, 0, &c.ds);
  if (!s) {
    int room = o->ctx - ry_lm_position(m) - (int)n;
    int max = o->n_predict < room ? o->n_predict : room;
    int32_t eos = ry_tokenizer_eos(tok);
    s = ry_lm_generate(m, ids, (int)n, &o->sample, max, &eos, eos >= 0 ? 1 : 0, on_token, &c, st);
    if (!s) s = c.err;
    else ry_status_free(c.err);
    if (!s && c.echo) fputs(c.echo, stdout); /* no token was generated */
    const char *rest;
    size_t len;
    if (!s && !(s = ry_detok_stream_flush(c.ds, &rest, &len))) fwrite(rest, 1, len, stdout);
  }
  ry_detok_stream_free(c.ds);
  ry_free(ids);
  return s;
}

static void print_stats(const ry_gen_stats *st) {
  fprintf(stderr, "\nryft: %d prompt tokens, %d generated; first token %.0f ms; prefill %.1f tokens/s, decode %.1f tokens/s\n",
          st->prompt_tokens, st->generated_tokens, 1e3 * st->first_token_s, st->prefill_tok_s, st->decode_tok_s);
}

static int load(const gen_opts *o, ry_lm **m, ry_tokenizer **tok) {
  ry_device *dev = NULL;
  ry_status s = ry_device_get(o->device, &dev);
  if (s) return fail(s, "--device");
  ry_gguf *g = NULL;
  if ((s = ry_gguf_open(o->model, &g))) return fail(s, NULL);
  s = ry_tokenizer_from_gguf(g, tok);
  ry_gguf_close(g);
  if (s) return fail(s, o->model);
  if ((s = ry_lm_load(o->model, dev, o->ctx, m))) {
    ry_tokenizer_free(*tok);
    *tok = NULL;
    return fail(s, NULL);
  }
  ry_lm_set_exact(*m, o->exact);
  ry_lm_set_ggml_numerics(*m, o->ggml);
  return 0;
}

int ryft_cmd_generate(int argc, char **argv, int is_chat) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(k_gen_usage, stdout);
      return 0;
    }
  gen_opts o;
  int rc = parse_opts(argc, argv, is_chat, &o);
  if (rc) return rc;
  ry_lm *m = NULL;
  ry_tokenizer *tok = NULL;
  if ((rc = load(&o, &m, &tok))) return rc;
  const char *tmpl = ry_tokenizer_chat_template(tok);
  ry_status s = NULL;
  ry_gen_stats st = {0};
  if (!is_chat) {
    char *text = NULL;
    if (o.chat) {
      ry_chat_msg msgs[2] = {{"system", o.system}, {"user", o.prompt}};
      s = ry_chat_apply(tmpl, o.system ? msgs : msgs + 1, o.system ? 2 : 1, 1, &text);
    }
    if (!s) {
      s = answer(m, tok, &o, text ? text : o.prompt, !o.chat, o.chat ? NULL : o.prompt, &st);
      if (!s) fputc('\n', stdout);
    }
    ry_free(text);
    if (!s && o.stats) print_stats(&st);
  } else {
    /* chat: the conversation so far is in the model's cache; each turn adds
       the user's message and the assistant's answer */
    char line[8192];
    int first = 1;
    fprintf(stderr, "ryft chat: %s; one message per line, end with Ctrl-D\n", o.model);
    while (!s && fputs("> ", stderr) >= 0 && fgets(line, sizeof line, stdin)) {
      line[strcspn(line, "\n")] = 0;
      if (!line[0]) continue;
      ry_chat_msg msgs[2] = {{"system", o.system}, {"user", line}};
      int with_sys = first && o.system;
      char *text = NULL;
      s = ry_chat_apply(tmpl, with_sys ? msgs : msgs + 1, with_sys ? 2 : 1, 1, &text);
      if (!s) s = answer(m, tok, &o, text, 0, NULL, &st);
      ry_free(text);
      /* close the assistant's turn in the cache: "<|im_end|>\n" */
      if (!s) {
        char *close = NULL;
        ry_chat_msg done = {"assistant", ""};
        s = ry_chat_apply(tmpl, &done, 1, 0, &close);
        const char *end = close ? strstr(close, "<|im_end|>") : NULL;
        int32_t *ids = NULL;
        int64_t n = 0;
        if (!s && end) s = ry_tokenize(tok, end, -1, RY_TOK_PARSE_SPECIAL, &ids, &n);
        float *lg = malloc((size_t)ry_lm_config_of(m)->n_vocab * sizeof *lg);
        if (!s && n > 0 && lg) s = ry_lm_eval(m, ids, (int)n, lg);
        free(lg);
        ry_free(ids);
        ry_free(close);
      }
      fputc('\n', stdout);
      first = 0;
    }
  }
  ry_lm_free(m);
  ry_tokenizer_free(tok);
  return s ? fail(s, NULL) : 0;
}
