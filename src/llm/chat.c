/* Chat templates: the families ryft recognises by their markers, formatted
 * in C (as llama.cpp's llama_chat_apply_template; no Jinja runs here). */
#include <string.h>

#include "llm/tok_internal.h"

ry_status ry_chat_apply(const char *tmpl, const ry_chat_msg *msgs, int n, int add_generation_prompt, char **out) {
  if (!out) return ry__err(RY_ERR_INVALID_ARGUMENT, "chat template: NULL output");
  *out = NULL;
  if (n < 0 || (n > 0 && !msgs)) return ry__err(RY_ERR_INVALID_ARGUMENT, "chat template: bad message list (n %d)", n);
  if (tmpl && !(strstr(tmpl, "<|im_start|>") && strstr(tmpl, "<|im_end|>")))
    return ry__err(RY_ERR_UNSUPPORTED,
                   "chat template: not a template ryft knows (only ChatML, with <|im_start|> and <|im_end|>): \"%.80s%s\"",
                   tmpl, strlen(tmpl) > 80 ? "..." : "");
  tok_buf b = {0};
  bool ok = tok_buf_put(&b, "", 0);
  for (int i = 0; i < n && ok; i++) {
    if (!msgs[i].role || !msgs[i].content) {
      tok_buf_free(&b);
      return ry__err(RY_ERR_INVALID_ARGUMENT, "chat template: message %d has a NULL %s", i,
                     msgs[i].role ? "content" : "role");
    }
    ok = tok_buf_put(&b, "<|im_start|>", 12) && tok_buf_put(&b, msgs[i].role, strlen(msgs[i].role)) &&
         tok_buf_put(&b, "\n", 1) && tok_buf_put(&b, msgs[i].content, strlen(msgs[i].content)) &&
         tok_buf_put(&b, "<|im_end|>\n", 11);
  }
  if (ok && add_generation_prompt) ok = tok_buf_put(&b, "<|im_start|>assistant\n", 22);
  if (ok) *out = tok_hand_out(b.p, b.n);
  tok_buf_free(&b);
  return *out ? NULL : ry__oom();
}
