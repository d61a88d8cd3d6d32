/* Tokenizers (ryft/llm.h): ids against llama.cpp's for tiny vocabularies of
 * each kind and pre-tokenizer and for SmolLM2 (goldens written by
 * tests/data/gen_tokenizer_goldens.py), decode(encode(s)) == s, the array
 * API, streaming decode, chat templates and bad input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/gguf.h"
#include "ryft/llm.h"
#include "testlib.h"

static ry_tokenizer *load_gguf_tok(const char *path) {
  ry_gguf *g = NULL;
  ry_tokenizer *t = NULL;
  CHECK_OK(ry_gguf_open(path, &g));
  if (g) CHECK_OK(ry_tokenizer_from_gguf(g, &t));
  ry_gguf_close(g);
  return t;
}

static ry_tokenizer *load_fixture(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/tokenizer/%s.gguf", rt_source_dir(), name);
  return load_gguf_tok(path);
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

/* Every line of tests/data/tokenizer/<name>.golden: "FLAGS HEX IDS". */
static void run_golden(ry_tokenizer *t, const char *name, int *n_lines) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/tokenizer/%s.golden", rt_source_dir(), name);
  size_t size = 0;
  char *data = rt_read_file(path, &size);
  CHECK_MSG(data != NULL, "cannot read %s", path);
  if (!data || !t) {
    free(data);
    return;
  }
  int lines = 0, bad = 0, bad_rt = 0;
  char *save = NULL;
  for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int flags = line[0] - '0';
    char *hex = line + 2, *ids_s = strchr(hex, ' ');
    if (!ids_s) {
      CHECK_MSG(0, "%s: bad golden line %d", name, lines + 1);
      break;
    }
    *ids_s++ = 0;
    size_t hl = strcmp(hex, "-") == 0 ? 0 : strlen(hex);
    char *text = malloc(hl / 2 + 1);
    for (size_t i = 0; i < hl / 2; i++) text[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    text[hl / 2] = 0;
    int32_t want[4096];
    int64_t nwant = 0;
    if (strcmp(ids_s, "-") != 0)
      for (char *p = ids_s; *p && nwant < 4096;) {
        want[nwant++] = (int32_t)strtol(p, &p, 10);
        if (*p == ',') p++;
      }
    int tflags = (flags & 1 ? RY_TOK_ADD_SPECIAL : 0) | (flags & 2 ? RY_TOK_PARSE_SPECIAL : 0);
    int32_t *ids = NULL;
    int64_t n = 0;
    ry_status s = ry_tokenize(t, text, (long)(hl / 2), tflags, &ids, &n);
    int same = !s && n == nwant && (n == 0 || memcmp(ids, want, (size_t)n * sizeof *ids) == 0);
    if (!same && bad++ < 5) {
      char got[512] = "", exp[512] = "";
      for (int64_t i = 0, k = 0; i < n && k < 480; i++) k += snprintf(got + k, sizeof got - (size_t)k, "%d,", ids[i]);
      for (int64_t i = 0, k = 0; i < nwant && k < 480; i++) k += snprintf(exp + k, sizeof exp - (size_t)k, "%d,", want[i]);
      rt_fail(__FILE__, __LINE__, "%s: flags %d text \"%.80s\": %s\n  got:  %s\n  want: %s", name, flags, text,
              s ? ry_status_message(s) : "ids differ", got, exp);
    }
    ry_status_free(s);
    /* decode(encode(s)) == s for plain encoding; not in SPM for U+2581 (it
     * decodes to a space) or text after a special token (encode puts a
     * space in front of it, as llama.cpp, and decode keeps it) */
    int spm_special = 0;
    for (int64_t i = 0; i < n && ry_tokenizer_model(t) == RY_TOK_SPM; i++)
      spm_special |= ry_token_type_of(t, ids[i]) == RY_TOKEN_USER_DEFINED || ry_token_type_of(t, ids[i]) == RY_TOKEN_CONTROL;
    if (flags == 0 && ids && !spm_special && !strstr(text, "\xE2\x96\x81")) {
      char *back = NULL;
      size_t blen = 0;
      ry_status ds = ry_detokenize(t, ids, n, 0, &back, &blen);
      if (ds || blen != hl / 2 || memcmp(back, text, blen) != 0) {
        if (bad_rt++ < 5)
          rt_fail(__FILE__, __LINE__, "%s: decode(encode(\"%.80s\")) = \"%.80s\"%s%s", name, text, back ? back : "",
                  ds ? ": " : "", ry_status_message(ds));
      }
      ry_status_free(ds);
      ry_free(back);
    }
    ry_free(ids);
    free(text);
    lines++;
  }
  CHECK_MSG(bad == 0, "%s: %d of %d golden lines differ from llama.cpp", name, bad, lines);
  CHECK_MSG(bad_rt == 0, "%s: %d strings do not survive decode(encode(s))", name, bad_rt);
  if (n_lines) *n_lines = lines;
  free(data);
}


/* FNV-1a 64 over each piece as a 4-byte little-endian length and its bytes
 * (fold() in tests/data/gen_tokenizer_goldens.py) */
static uint64_t fold_pieces(ry_tokenizer *t, int flags) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t i = 0; i < ry_tokenizer_n_tokens(t); i++) {
    const char *p = "";
    size_t len = 0;
    CHECK_OK(ry_token_piece(t, i, flags, &p, &len));
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    for (int k = 0; k < 4; k++) h = (h ^ hdr[k]) * 1099511628211ull;
    for (size_t k = 0; k < len; k++) h = (h ^ (uint8_t)p[k]) * 1099511628211ull;
  }
  return h;
}

/* tests/data/tokenizer/<name>.pieces: llama.cpp's llama_token_to_piece of
 * every token, without and with `special` */
static void run_pieces(ry_tokenizer *t, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/tokenizer/%s.pieces", rt_source_dir(), name);
  char *data = rt_read_file(path, NULL);
  CHECK_MSG(data != NULL, "cannot read %s", path);
  if (!data || !t) {
    free(data);
    return;
  }
  if (strncmp(data, "fold ", 5) == 0) {
    long long n = 0;
    unsigned long long h0 = 0, h1 = 0;
    CHECK(sscanf(data + 5, "%lld %llx %llx", &n, &h0, &h1) == 3);
    CHECK_EQ_INT(n, ry_tokenizer_n_tokens(t));
    CHECK_MSG(fold_pieces(t, 0) == h0, "%s: the pieces differ from llama.cpp's", name);
    CHECK_MSG(fold_pieces(t, RY_TOK_RENDER_SPECIAL) == h1, "%s: the special pieces differ from llama.cpp's", name);
    free(data);
    return;
  }
  int bad = 0, lines = 0;
  char *save = NULL;
  for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
    char h0[1100], h1[1100];
    int id = -1;
    if (sscanf(line, "%d %1099s %1099s", &id, h0, h1) != 3) {
      CHECK_MSG(0, "%s: bad line %d", name, lines + 1);
      break;
    }
    for (int f = 0; f < 2; f++) {
      const char *hex = f ? h1 : h0;
      const char *p = "";
      size_t len = 0;
      CHECK_OK(ry_token_piece(t, id, f ? RY_TOK_RENDER_SPECIAL : 0, &p, &len));
      size_t want = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2;
      int same = len == want;
      for (size_t k = 0; same && k < len; k++) same = (uint8_t)p[k] == hexval(hex[2 * k]) * 16 + hexval(hex[2 * k + 1]);
      if (!same && bad++ < 5) rt_fail(__FILE__, __LINE__, "%s: token %d (special %d): piece \"%.*s\", llama.cpp %s", name, id, f, (int)len, p, hex);
    }
  }
  CHECK_EQ_INT(lines, ry_tokenizer_n_tokens(t));
  CHECK_MSG(bad == 0, "%s: %d pieces differ from llama.cpp's", name, bad);
  free(data);
}

TEST(tok_tiny_goldens) {
  static const char *names[] = {"tiny_bpe_gpt2", "tiny_bpe_llama3", "tiny_bpe_smollm", "tiny_bpe_qwen2", "tiny_spm"};
  for (int i = 0; i < 5; i++) {
    ry_tokenizer *t = load_fixture(names[i]);
    int lines = 0;
    run_golden(t, names[i], &lines);
    run_pieces(t, names[i]);
    CHECK_MSG(lines >= 400, "%s: only %d golden lines", names[i], lines);
    ry_tokenizer_free(t);
  }
}

TEST(tok_smollm2) {
  const char *path = rt_smollm2_path();
  if (!path) {
    rt_skip("smollm2", "no SmolLM2 GGUF (make model, or set RYFT_TEST_SMOLLM2)");
    return;
  }
  ry_tokenizer *t = load_gguf_tok(path);
  if (!t) return;
  CHECK_EQ_INT(ry_tokenizer_n_tokens(t), 49152);
  CHECK_EQ_INT(ry_tokenizer_model(t), RY_TOK_BPE);
  CHECK_EQ_INT(ry_tokenizer_bos(t), 1);
  CHECK_EQ_INT(ry_tokenizer_eos(t), 2);
  CHECK(ry_tokenizer_is_eog(t, 2));
  CHECK(!ry_tokenizer_is_eog(t, 1));
  int lines = 0;
  run_golden(t, "smollm2", &lines);
  run_pieces(t, "smollm2");
  CHECK_MSG(lines >= 400, "smollm2: only %d golden lines", lines);
  /* the chat template is SmolLM2's ChatML */
  const char *tmpl = ry_tokenizer_chat_template(t);
  CHECK(tmpl && strstr(tmpl, "<|im_start|>"));
  ry_chat_msg msgs[2] = {{"system", "Be brief."}, {"user", "Hi!"}};
  char *chat = NULL;
  CHECK_OK(ry_chat_apply(tmpl, msgs, 2, 1, &chat));
  int32_t *ids = NULL;
  int64_t n = 0;
  CHECK_OK(ry_tokenize(t, chat, -1, RY_TOK_ADD_SPECIAL | RY_TOK_PARSE_SPECIAL, &ids, &n));
  CHECK(n > 4 && ids[0] == 1); /* <|im_start|>, and no BOS (add_bos_token false) */
  char *back = NULL;
  CHECK_OK(ry_detokenize(t, ids, n, RY_TOK_RENDER_SPECIAL, &back, NULL));
  CHECK_STR(back, chat);
  ry_free(back);
  ry_free(ids);
  ry_free(chat);
  ry_tokenizer_free(t);
}

/* ---- the array API on a hand-made byte-level BPE vocabulary ---- */

/* bytes as GPT-2 characters for ASCII letters and space ("Ġ") */
TEST(tok_array_bpe) {
  const char *toks[] = {"<|endoftext|>", "h", "e", "l", "o", "Ġ", "w", "r", "d", "he", "ll", "hell", "hello", "Ġw", "or",
                        "Ġwor", "ld", "Ġworld", "<extra>"};
  int32_t types[19];
  for (int i = 0; i < 19; i++) types[i] = RY_TOKEN_NORMAL;
  types[0] = RY_TOKEN_CONTROL;
  types[18] = RY_TOKEN_USER_DEFINED;
  const char *merges[] = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"};
  ry_tokenizer_config c = ry_tokenizer_config_init(RY_TOK_BPE);
  c.n_tokens = 19;
  c.tokens = toks;
  c.types = types;
  c.n_merges = 9;
  c.merges = merges;
  c.pre = "gpt2";
  c.eos_id = 0;
  c.add_eos = 1;
  ry_tokenizer *t = NULL;
  CHECK_OK(ry_tokenizer_new(&c, &t));
  if (!t) return;
  int32_t *ids = NULL;
  int64_t n = 0;
  CHECK_OK(ry_tokenize(t, "hello world<|endoftext|>", -1, RY_TOK_ADD_SPECIAL | RY_TOK_PARSE_SPECIAL, &ids, &n));
  int32_t want[] = {12, 17, 0, 0};
  CHECK_EQ_INT(n, 4);
  if (n == 4) CHECK(memcmp(ids, want, sizeof want) == 0);
  ry_free(ids);
  /* without parse_special the control token is text; the user-defined one is always matched */
  CHECK_OK(ry_tokenize(t, "<extra>hello", -1, 0, &ids, &n));
  CHECK_EQ_INT(n, 2);
  if (n == 2) CHECK(ids[0] == 18 && ids[1] == 12);
  ry_free(ids);
  /* lookups */
  int32_t id = -1;
  CHECK_OK(ry_token_to_id(t, "Ġworld", strlen("Ġworld"), &id));
  CHECK_EQ_INT(id, 17);
  CHECK_ERR(ry_token_to_id(t, "nope", 4, &id), RY_ERR_NOT_FOUND, "nope");
  size_t len = 0;
  CHECK(ry_token_text(t, 13, &len) && len == strlen("Ġw"));
  CHECK(ry_token_text(t, 19, &len) == NULL);
  CHECK_EQ_INT(ry_token_type_of(t, 0), RY_TOKEN_CONTROL);
  const char *p;
  CHECK_OK(ry_token_piece(t, 17, 0, &p, &len));
  CHECK(len == 6 && memcmp(p, " world", 6) == 0);
  CHECK_OK(ry_token_piece(t, 0, 0, &p, &len));
  CHECK_EQ_INT(len, 0);
  CHECK_OK(ry_token_piece(t, 0, RY_TOK_RENDER_SPECIAL, &p, &len));
  CHECK(len == 13 && memcmp(p, "<|endoftext|>", 13) == 0);
  /* bad input */
  CHECK_ERR(ry_tokenize(t, "ok \xC3\x28 no", -1, 0, &ids, &n), RY_ERR_INVALID_ARGUMENT, "invalid UTF-8", "byte 3");
  CHECK_ERR(ry_tokenize(t, "\xED\xA0\x80", -1, 0, &ids, &n), RY_ERR_INVALID_ARGUMENT, "invalid UTF-8", "byte 0");
  CHECK_ERR(ry_tokenize(t, "\xF0\x9F\x98", -1, 0, &ids, &n), RY_ERR_INVALID_ARGUMENT, "invalid UTF-8");
  CHECK_ERR(ry_token_piece(t, 19, 0, &p, &len), RY_ERR_INVALID_ARGUMENT, "token id 19", "out of range");
  CHECK_ERR(ry_token_piece(t, -1, 0, &p, &len), RY_ERR_INVALID_ARGUMENT, "token id -1");
  int32_t bad_ids[] = {12, 99};
  char *out = NULL;
  CHECK_ERR(ry_detokenize(t, bad_ids, 2, 0, &out, NULL), RY_ERR_INVALID_ARGUMENT, "id 1", "token id 99");
  CHECK(out == NULL);
  ry_tokenizer_free(t);

  /* bad configs */
  c.pre = "klingon";
  CHECK_ERR(ry_tokenizer_new(&c, &t), RY_ERR_UNSUPPORTED, "pre-tokenizer", "klingon");
  c.pre = "gpt2";
  c.bos_id = 19;
  CHECK_ERR(ry_tokenizer_new(&c, &t), RY_ERR_INVALID_ARGUMENT, "bos token id 19");
  c.bos_id = -1;
  toks[3] = "";
  CHECK_ERR(ry_tokenizer_new(&c, &t), RY_ERR_INVALID_ARGUMENT, "token 3 is empty");
  toks[3] = "l";
  types[4] = 9;
  CHECK_ERR(ry_tokenizer_new(&c, &t), RY_ERR_INVALID_ARGUMENT, "token 4", "type 9");
  c.n_tokens = 0;
  CHECK_ERR(ry_tokenizer_new(&c, &t), RY_ERR_INVALID_ARGUMENT, "no tokens");
  CHECK(t == NULL);
}

/* ---- streaming decode holds back incomplete UTF-8 ---- */
TEST(tok_stream) {
  ry_tokenizer *t = load_fixture("tiny_spm");
  if (!t) return;
  int32_t e6 = -1, x97 = -1, xa5 = -1, x41 = -1, xff = -1;
  CHECK_OK(ry_token_to_id(t, "<0xE6>", 6, &e6));
  CHECK_OK(ry_token_to_id(t, "<0x97>", 6, &x97));
  CHECK_OK(ry_token_to_id(t, "<0xA5>", 6, &xa5));
  CHECK_OK(ry_token_to_id(t, "<0x41>", 6, &x41));
  CHECK_OK(ry_token_to_id(t, "<0xFF>", 6, &xff));
  ry_detok_stream *s = NULL;
  CHECK_OK(ry_detok_stream_new(t, 0, &s));
  if (!s) {
    ry_tokenizer_free(t);
    return;
  }
  const char *txt;
  size_t len;
  CHECK_OK(ry_detok_stream_push(s, e6, &txt, &len));
  CHECK_EQ_INT(len, 0);
  CHECK_OK(ry_detok_stream_push(s, x97, &txt, &len));
  CHECK_EQ_INT(len, 0);
  CHECK_OK(ry_detok_stream_push(s, xa5, &txt, &len));
  CHECK(len == 3 && memcmp(txt, "\xE6\x97\xA5", 3) == 0); /* 日 */
  /* a byte that starts nothing: U+FFFD at once */
  CHECK_OK(ry_detok_stream_push(s, xff, &txt, &len));
  CHECK(len == 3 && memcmp(txt, "\xEF\xBF\xBD", 3) == 0);
  /* an incomplete character cut short by an ASCII byte: U+FFFD, then the byte */
  CHECK_OK(ry_detok_stream_push(s, e6, &txt, &len));
  CHECK_EQ_INT(len, 0);
  CHECK_OK(ry_detok_stream_push(s, x41, &txt, &len));
  CHECK(len == 4 && memcmp(txt, "\xEF\xBF\xBD" "A", 4) == 0);
  /* flush: what is held back comes out as U+FFFD */
  CHECK_OK(ry_detok_stream_push(s, e6, &txt, &len));
  CHECK_OK(ry_detok_stream_push(s, x97, &txt, &len));
  CHECK_EQ_INT(len, 0);
  CHECK_OK(ry_detok_stream_flush(s, &txt, &len));
  CHECK(len == 3 && memcmp(txt, "\xEF\xBF\xBD", 3) == 0);
  CHECK_ERR(ry_detok_stream_push(s, 1 << 20, &txt, &len), RY_ERR_INVALID_ARGUMENT, "out of range");
  /* the stream of an encoded text is the text */
  const char *text = "Hello wörld, 日本語 😀!";
  int32_t *ids = NULL;
  int64_t n = 0;
  CHECK_OK(ry_tokenize(t, text, -1, 0, &ids, &n));
  char acc[256] = "";
  size_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    CHECK_OK(ry_detok_stream_push(s, ids[i], &txt, &len));
    if (k + len < sizeof acc) memcpy(acc + k, txt, len), k += len;
  }
  acc[k] = 0;
  CHECK_STR(acc, text);
  ry_free(ids);
  ry_detok_stream_free(s);
  ry_tokenizer_free(t);
}

/* ---- chat templates ---- */
TEST(tok_chat_template) {
  ry_chat_msg msgs[3] = {{"system", "S"}, {"user", "Hello"}, {"assistant", "Hi"}};
  char *out = NULL;
  CHECK_OK(ry_chat_apply(NULL, msgs, 3, 1, &out));
  CHECK_STR(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi<|im_end|>\n"
                 "<|im_start|>assistant\n");
  ry_free(out);
  CHECK_OK(ry_chat_apply(NULL, msgs + 1, 1, 0, &out));
  CHECK_STR(out, "<|im_start|>user\nHello<|im_end|>\n");
  ry_free(out);
  CHECK_ERR(ry_chat_apply("{{ bos_token }}[INST] {{ message['content'] }} [/INST]", msgs, 1, 1, &out), RY_ERR_UNSUPPORTED,
            "not a template ryft knows", "[INST]");
  CHECK(out == NULL);
  ry_chat_msg bad = {"user", NULL};
  CHECK_ERR(ry_chat_apply(NULL, &bad, 1, 1, &out), RY_ERR_INVALID_ARGUMENT, "message 0", "content");
  /* the tiny fixture carries a ChatML template */
  ry_tokenizer *t = load_fixture("tiny_bpe_smollm");
  if (t) {
    CHECK_OK(ry_chat_apply(ry_tokenizer_chat_template(t), msgs + 1, 1, 1, &out));
    CHECK_STR(out, "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    ry_free(out);
  }
  ry_tokenizer_free(t);
}

/* ---- a GGUF whose tokenizer ryft cannot read ---- */
TEST(tok_gguf_errors) {
  ry_gguf_writer *w = NULL;
  CHECK_OK(ry_gguf_writer_new(&w));
  if (!w) return;
  CHECK_OK(ry_gguf_writer_add_str(w, "tokenizer.ggml.model", "bert", 4));
  const char *path = rt_tmp_path("tok", "bert.gguf");
  CHECK_OK(ry_gguf_writer_write(w, path));
  ry_gguf_writer_free(w);
  ry_gguf *g = NULL;
  ry_tokenizer *t = NULL;
  CHECK_OK(ry_gguf_open(path, &g));
  CHECK_ERR(ry_tokenizer_from_gguf(g, &t), RY_ERR_UNSUPPORTED, "tokenizer.ggml.model", "bert");
  ry_gguf_close(g);
  /* no tokens */
  CHECK_OK(ry_gguf_writer_new(&w));
  CHECK_OK(ry_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", 4));
  CHECK_OK(ry_gguf_writer_write(w, path));
  ry_gguf_writer_free(w);
  CHECK_OK(ry_gguf_open(path, &g));
  CHECK_ERR(ry_tokenizer_from_gguf(g, &t), RY_ERR_NOT_FOUND, "tokenizer.ggml.tokens");
  ry_gguf_close(g);
  CHECK(t == NULL);
}

/* ---- a large text: roughly linear time, and the round trip holds ---- */
TEST(tok_large_text) {
  ry_tokenizer *t = load_fixture("tiny_bpe_smollm");
  if (!t) return;
  const char *unit = "The quick brown fox jumps over the lazy dog 1234567 times; café 日本語 😀\n\t  ";
  size_t ul = strlen(unit), reps = (1 << 20) / ul + 1, n = ul * reps;
  char *text = malloc(n + 1);
  for (size_t i = 0; i < reps; i++) memcpy(text + i * ul, unit, ul);
  text[n] = 0;
  int32_t *ids = NULL;
  int64_t nid = 0;
  CHECK_OK(ry_tokenize(t, text, (long)n, 0, &ids, &nid));
  CHECK(nid > 0);
  char *back = NULL;
  size_t blen = 0;
  CHECK_OK(ry_detokenize(t, ids, nid, 0, &back, &blen));
  CHECK(back && blen == n && memcmp(back, text, n) == 0);
  ry_free(back);
  ry_free(ids);
  free(text);
  ry_tokenizer_free(t);
}

/* ---- every allocation failing in turn: a clean out-of-memory, no leak ---- */
static ry_status tok_roundtrip(ry_tok_model model) {
  const char *bpe_toks[] = {"<|im_end|>", "h", "e", "Ġ", "x", "he", "Ġx", "<u>"};
  const char *spm_toks[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xE2\x96\x81", "h", "e", "he", "<u>"};
  int32_t bpe_types[] = {3, 1, 1, 1, 1, 1, 1, 4}, spm_types[] = {2, 3, 3, 6, 1, 1, 1, 1, 4};
  float spm_scores[] = {0, 0, 0, 0, -1, -2, -3, -1, 0};
  const char *merges[] = {"h e", "Ġ x"};
  ry_tokenizer_config c = ry_tokenizer_config_init(model);
  if (model == RY_TOK_BPE) {
    c.n_tokens = 8, c.tokens = bpe_toks, c.types = bpe_types, c.n_merges = 2, c.merges = merges, c.pre = "llama3";
  } else {
    c.n_tokens = 9, c.tokens = spm_toks, c.types = spm_types, c.scores = spm_scores;
  }
  c.chat_template = "<|im_start|><|im_end|>";
  ry_tokenizer *t = NULL;
  ry_status s = ry_tokenizer_new(&c, &t);
  int32_t *ids = NULL;
  int64_t n = 0;
  char *back = NULL, *chat = NULL;
  ry_detok_stream *st = NULL;
  if (!s) s = ry_tokenize(t, "he x<u>he<|im_end|> xA", -1, RY_TOK_ADD_SPECIAL | RY_TOK_PARSE_SPECIAL, &ids, &n);
  if (!s) s = ry_detokenize(t, ids, n, RY_TOK_RENDER_SPECIAL, &back, NULL);
  if (!s) s = ry_detok_stream_new(t, 0, &st);
  for (int64_t i = 0; !s && i < n; i++) {
    const char *p;
    size_t len;
    s = ry_detok_stream_push(st, ids[i], &p, &len);
  }
  ry_chat_msg m = {"user", "hi"};
  if (!s) s = ry_chat_apply(ry_tokenizer_chat_template(t), &m, 1, 1, &chat);
  ry_free(chat);
  ry_detok_stream_free(st);
  ry_free(back);
  ry_free(ids);
  ry_tokenizer_free(t);
  return s;
}

TEST(tok_allocation_failure) {
  for (int model = RY_TOK_BPE; model <= RY_TOK_SPM; model++) {
    int failures = 0, successes = 0;
    for (long k = 0; k < 2000 && !successes; k++) {
      rt_oom_arm(k, 1);
      ry_status s = tok_roundtrip((ry_tok_model)model);
      int failed = rt_oom_failed();
      long long live = rt_oom_disarm();
      if (s) {
        CHECK_MSG(ry_status_code(s) == RY_ERR_OUT_OF_MEMORY, "model %d budget %ld: %s", model, k, ry_status_message(s));
        failures++;
      } else {
        CHECK_MSG(!failed, "model %d budget %ld: an allocation failed but the calls succeeded", model, k);
        successes++;
      }
      ry_status_free(s);
      CHECK_MSG(live == 0, "model %d budget %ld: %lld bytes leaked", model, k, live);
    }
    CHECK(failures > 10);
    CHECK_EQ_INT(successes, 1);
  }
}
