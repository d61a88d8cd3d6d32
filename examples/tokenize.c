/* Tokenize a chat message with a GGUF model's tokenizer, then stream it back. */
#include <ryft/ryft.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.gguf TEXT\n", argv[0]);
    return 2;
  }
  ry_gguf *g = NULL;
  ry_tokenizer *tok = NULL;
  ry_status s = ry_gguf_open(argv[1], &g);
  if (!s) s = ry_tokenizer_from_gguf(g, &tok);
  ry_gguf_close(g); /* the tokenizer keeps its own copy of the vocabulary */

  /* the model's chat template (ChatML) around one user message */
  ry_chat_msg msgs[] = {{"user", argv[2]}};
  char *prompt = NULL;
  if (!s) s = ry_chat_apply(ry_tokenizer_chat_template(tok), msgs, 1, 1, &prompt);

  /* special tokens such as <|im_start|> are parsed because we asked */
  int32_t *ids = NULL;
  int64_t n = 0;
  if (!s) s = ry_tokenize(tok, prompt, -1, RY_TOK_ADD_SPECIAL | RY_TOK_PARSE_SPECIAL, &ids, &n);
  if (s) {
    fprintf(stderr, "error: %s\n", ry_status_message(s));
    ry_status_free(s);
    ry_free(prompt);
    ry_tokenizer_free(tok);
    return 1;
  }
  printf("%lld tokens:", (long long)n);
  for (int64_t i = 0; i < n; i++) printf(" %d", ids[i]);
  printf("\n");

  /* decode as a generator would: one id at a time, whole characters only */
  ry_detok_stream *st = NULL;
  s = ry_detok_stream_new(tok, RY_TOK_RENDER_SPECIAL, &st);
  for (int64_t i = 0; !s && i < n; i++) {
    const char *text;
    size_t len;
    s = ry_detok_stream_push(st, ids[i], &text, &len);
    if (!s) fwrite(text, 1, len, stdout);
  }
  if (s) fprintf(stderr, "error: %s\n", ry_status_message(s));
  ry_status_free(s);
  ry_detok_stream_free(st);
  ry_free(ids);
  ry_free(prompt);
  ry_tokenizer_free(tok);
  return 0;
}
