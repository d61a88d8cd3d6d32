/* Run a GGUF language model: load it, apply its chat template, generate. */
#include <ryft/ryft.h>
#include <stdio.h>

static int on_token(int32_t id, int index, void *ctx) {
  (void)index;
  const char *text;
  size_t len;
  if (ry_detok_stream_push(ctx, id, &text, &len)) return 1; /* stop on error */
  fwrite(text, 1, len, stdout);                              /* whole UTF-8 only */
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "SmolLM2-135M-Instruct.Q4_1.gguf";
  ry_device *cpu = NULL;
  ry_gguf *g = NULL;
  ry_tokenizer *tok = NULL;
  ry_lm *lm = NULL;
  ry_detok_stream *ds = NULL;
  char *prompt = NULL;
  int32_t *ids = NULL;
  int64_t n = 0;
  ry_chat_msg msg = {"user", "What is the capital of France?"};
  ry_sample_opts greedy = {0, 0, 1, 0, 1, 64, 0}; /* temperature 0 */
  ry_status s;
  if (!(s = ry_device_get("cpu", &cpu)) && !(s = ry_gguf_open(path, &g)) &&
      !(s = ry_tokenizer_from_gguf(g, &tok)) &&               /* vocabulary, merges, template */
      !(s = ry_lm_load(path, cpu, 512, &lm)) &&               /* weights to f32, 512 positions */
      !(s = ry_chat_apply(ry_tokenizer_chat_template(tok), &msg, 1, 1, &prompt)) &&
      !(s = ry_tokenize(tok, prompt, -1, RY_TOK_PARSE_SPECIAL, &ids, &n)) &&
      !(s = ry_detok_stream_new(tok, 0, &ds))) {
    int32_t eos = ry_tokenizer_eos(tok);
    s = ry_lm_generate(lm, ids, (int)n, &greedy, 32, &eos, 1, on_token, ds, NULL);
    printf("\n");
  }
  if (s) fprintf(stderr, "error: %s\n", ry_status_message(s));
  ry_status_free(s);
  ry_detok_stream_free(ds);
  ry_free(ids);
  ry_free(prompt);
  ry_lm_free(lm);
  ry_tokenizer_free(tok);
  ry_gguf_close(g);
  return s ? 1 : 0;
}
