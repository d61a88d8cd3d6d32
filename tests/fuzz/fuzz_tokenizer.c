/* libFuzzer target for the tokenizers: the input's first byte picks a small
 * vocabulary (byte-level BPE with each pre-tokenizer, or SentencePiece) and
 * the flags; the rest is text to encode. Valid UTF-8 must encode, and
 * decode back to the same bytes (every vocabulary here covers all bytes);
 * invalid UTF-8 must fail with RY_ERR_INVALID_ARGUMENT. The same bytes are
 * also decoded as token ids: ids out of range must fail cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryft/ryft.h"

static void die(const char *what, ry_status s) {
  fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, s ? ry_status_message(s) : "");
  abort();
}

static int printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

/* GPT-2's character for byte b, as UTF-8 */
static void gpt2_char(int b, char out[3]) {
  int c = b;
  if (!printable(b)) {
    c = 256;
    for (int i = 0; i < b; i++) c += !printable(i);
  }
  if (c < 0x80) out[0] = (char)c, out[1] = 0;
  else out[0] = (char)(0xC0 | (c >> 6)), out[1] = (char)(0x80 | (c & 0x3F)), out[2] = 0;
}

static ry_tokenizer *g_tok[5];

static void build(void) {
  static char bytes[256][8];
  static const char *pres[4] = {"gpt2", "llama3", "smollm", "qwen2"};
  const char *toks[300];
  int32_t types[300];
  float scores[300];
  int n = 0;
  toks[n] = "<|endoftext|>", types[n++] = RY_TOKEN_CONTROL;
  toks[n] = "<|im_end|>", types[n++] = RY_TOKEN_CONTROL;
  for (int b = 0; b < 256; b++) {
    gpt2_char(b, bytes[b]);
    toks[n] = bytes[b], types[n++] = RY_TOKEN_NORMAL;
  }
  const char *extra[] = {"Ġt", "he", "Ġthe", "in", "Ġa", "er", "on", "<user>"};
  const char *merges[] = {"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n"};
  for (int i = 0; i < 8; i++) toks[n] = extra[i], types[n++] = i == 7 ? RY_TOKEN_USER_DEFINED : RY_TOKEN_NORMAL;
  for (int p = 0; p < 4; p++) {
    ry_tokenizer_config c = ry_tokenizer_config_init(RY_TOK_BPE);
    c.n_tokens = n, c.tokens = toks, c.types = types, c.n_merges = 7, c.merges = merges, c.pre = pres[p];
    c.bos_id = 0, c.eos_id = 1, c.add_bos = 1, c.add_eos = 1;
    ry_status s = ry_tokenizer_new(&c, &g_tok[p]);
    if (s) die("building a BPE vocabulary", s);
  }
  /* SentencePiece: <unk> <s> </s>, 256 byte tokens, a few pieces */
  static char hex[256][8];
  n = 0;
  toks[n] = "<unk>", types[n] = RY_TOKEN_UNKNOWN, scores[n++] = 0;
  toks[n] = "<s>", types[n] = RY_TOKEN_CONTROL, scores[n++] = 0;
  toks[n] = "</s>", types[n] = RY_TOKEN_CONTROL, scores[n++] = 0;
  for (int b = 0; b < 256; b++) {
    snprintf(hex[b], sizeof hex[b], "<0x%02X>", b);
    toks[n] = hex[b], types[n] = RY_TOKEN_BYTE, scores[n++] = 0;
  }
  const char *pieces[] = {"\xE2\x96\x81", "t", "h", "e", "\xE2\x96\x81t", "he", "\xE2\x96\x81the", "a", "\xE2\x96\x81" "a"};
  for (int i = 0; i < 9; i++) toks[n] = pieces[i], types[n] = RY_TOKEN_NORMAL, scores[n++] = -(float)i;
  ry_tokenizer_config c = ry_tokenizer_config_init(RY_TOK_SPM);
  c.n_tokens = n, c.tokens = toks, c.types = types, c.scores = scores;
  ry_status s = ry_tokenizer_new(&c, &g_tok[4]);
  if (s) die("building an SPM vocabulary", s);
}

static int valid_utf8(const uint8_t *s, size_t n) {
  /* a plain checker, independent of the library's */
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    size_t k;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, cp = c & 0x07;
    else return 0;
    if (i + k > n) return 0;
    for (size_t j = 1; j < k; j++) {
      if ((s[i + j] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += k;
  }
  return 1;
}

static int has_u2581(const char *s, size_t n) {
  for (size_t i = 0; i + 3 <= n; i++)
    if (memcmp(s + i, "\xE2\x96\x81", 3) == 0) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_tok[0]) build();
  if (size < 1) return 0;
  ry_tokenizer *t = g_tok[data[0] % 5];
  int flags = (data[0] >> 3) & 3; /* RY_TOK_ADD_SPECIAL, RY_TOK_PARSE_SPECIAL */
  const char *text = (const char *)data + 1;
  size_t n = size - 1;
  int32_t *ids = NULL;
  int64_t nid = 0;
  ry_status s = ry_tokenize(t, text, (long)n, flags, &ids, &nid);
  int ok = valid_utf8(data + 1, n);
  if (!ok) {
    if (!s || ry_status_code(s) != RY_ERR_INVALID_ARGUMENT) die("invalid UTF-8 was not refused", s);
    ry_status_free(s);
  } else {
    if (s) die("valid UTF-8 failed to encode", s);
    if (flags == 0) {
      char *back = NULL;
      size_t blen = 0;
      s = ry_detokenize(t, ids, nid, 0, &back, &blen);
      if (s) die("decoding encoded ids failed", s);
      /* SPM decodes U+2581 as a space; compare only texts without it */
      if (!has_u2581(text, n) && (blen != n || memcmp(back, text, n) != 0)) {
        fprintf(stderr, "fuzz_tokenizer: decode(encode(s)) != s for %zu bytes\n", n);
        abort();
      }
      ry_free(back);
    }
    ry_free(ids);
  }
  /* the bytes as ids: out-of-range ones are refused, the rest decode */
  int64_t m = (int64_t)(n / 4);
  int32_t *raw = malloc((size_t)(m ? m : 1) * sizeof *raw);
  memcpy(raw, text, (size_t)m * 4);
  int in_range = 1;
  for (int64_t i = 0; i < m; i++) in_range &= raw[i] >= 0 && raw[i] < ry_tokenizer_n_tokens(t);
  char *out = NULL;
  s = ry_detokenize(t, raw, m, RY_TOK_RENDER_SPECIAL, &out, NULL);
  if (in_range != (s == NULL)) die("decode of raw ids: wrong verdict", s);
  ry_status_free(s);
  ry_free(out);
  ry_detok_stream *st = NULL;
  if ((s = ry_detok_stream_new(t, 0, &st))) die("stream", s);
  for (int64_t i = 0; i < m; i++) {
    const char *p;
    size_t len;
    s = ry_detok_stream_push(st, raw[i], &p, &len);
    if (s) { ry_status_free(s); continue; }
    if (!valid_utf8((const uint8_t *)p, len)) die("stream wrote invalid UTF-8", NULL);
  }
  ry_detok_stream_free(st);
  free(raw);
  return 0;
}
