/* ryft/llm.h - language-model text handling: tokenizers and chat templates.
 *
 * A tokenizer turns UTF-8 text into token ids and back, exactly as llama.cpp
 * does for the same vocabulary (tests/test_tokenizer.c checks 275 strings and
 * every token's piece against llama.cpp 0.3.36's, on SmolLM2 and tiny
 * vocabularies of each kind). A tokenizer is immutable once built: several
 * threads may encode and decode with it at once.
 *
 *   - byte-level BPE (GGUF `tokenizer.ggml.model` "gpt2"): the text is split
 *     by the pre-tokenizer regexes of its family (GGUF `tokenizer.ggml.pre`:
 *     "gpt2"/"gpt-2", "llama3"/"llama-bpe"/"llama-v3", "smollm", "qwen2",
 *     "default"), every byte of a piece mapped to GPT-2's printable
 *     characters, and the merges applied by rank (lowest first);
 *   - SentencePiece-style (model "llama"): spaces become U+2581, a space is
 *     put in front of the text, adjacent pieces are merged by vocabulary score
 *     (highest first), and characters that no token covers fall back to the
 *     byte tokens <0xNN>.
 *
 * Special tokens: the vocabulary's CONTROL, USER_DEFINED and UNKNOWN tokens.
 * USER_DEFINED tokens are always matched in the text; CONTROL and UNKNOWN ones
 * only with RY_TOK_PARSE_SPECIAL (llama.cpp's parse_special), so text from a
 * user cannot smuggle in "<|im_end|>" unless the caller allows it. Longer
 * special tokens are matched first.
 *
 * Invalid UTF-8 in the text to encode is an error (RY_ERR_INVALID_ARGUMENT
 * naming the byte offset); llama.cpp instead replaces each bad byte by
 * U+FFFD. An id outside [0, n_tokens) given to decode is an error too. */
#ifndef RYFT_LLM_H
#define RYFT_LLM_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ry_gguf ry_gguf; /* ryft/gguf.h */

/* ---- tokenizer ------------------------------------------------------------ */

typedef enum ry_tok_model {
  RY_TOK_BPE = 1, /* byte-level BPE, GGUF "gpt2" */
  RY_TOK_SPM = 2  /* SentencePiece-style, GGUF "llama" */
} ry_tok_model;

/* Token types, with GGUF's (`tokenizer.ggml.token_type`) values. */
typedef enum ry_token_type {
  RY_TOKEN_NORMAL = 1, RY_TOKEN_UNKNOWN = 2, RY_TOKEN_CONTROL = 3,
  RY_TOKEN_USER_DEFINED = 4, RY_TOKEN_UNUSED = 5, RY_TOKEN_BYTE = 6
} ry_token_type;

/* Everything a tokenizer is made from. Start from ry_tokenizer_config_init,
 * which fills the defaults of a model kind, then set the vocabulary. The
 * arrays are copied by ry_tokenizer_new and may be freed afterwards. */
typedef struct ry_tokenizer_config {
  ry_tok_model model;
  int32_t n_tokens;
  const char *const *tokens; /* [n_tokens] token texts (BPE: byte-encoded, as in the GGUF) */
  const size_t *token_lens;  /* [n_tokens] byte lengths, or NULL for NUL-terminated texts */
  const float *scores;       /* [n_tokens] or NULL (all 0); SPM merges by these */
  const int32_t *types;      /* [n_tokens] ry_token_type values, or NULL (all NORMAL) */
  int64_t n_merges;          /* BPE: merges "left right", rank = index */
  const char *const *merges;
  const char *pre;           /* BPE pre-tokenizer name; NULL is "default" */
  /* special ids, -1 for none */
  int32_t bos_id, eos_id, unk_id, pad_id;
  /* with RY_TOK_ADD_SPECIAL, put BOS in front / EOS at the end; -1 takes
   * llama.cpp's default (BOS: 1 for SPM and the llama3 pre-tokenizer, else
   * 0; EOS: 0) */
  int add_bos, add_eos;
  /* SPM: put a space in front of the text (and drop it again on decode);
   * -1 takes the model's default (1 for SPM, 0 for BPE) */
  int add_space_prefix;
  const char *chat_template; /* the Jinja source, or NULL; copied */
} ry_tokenizer_config;

/* A config of a model kind with every option at its default: no vocabulary,
 * special ids -1 except SPM's (bos 1, eos 2, unk 0, as llama.cpp assumes),
 * add_bos, add_eos and add_space_prefix -1 (the model's defaults). */
RY_API ry_tokenizer_config ry_tokenizer_config_init(ry_tok_model model);

typedef struct ry_tokenizer ry_tokenizer;

/* Build a tokenizer. Errors (RY_ERR_INVALID_ARGUMENT) name what was wrong:
 * an unknown pre-tokenizer (RY_ERR_UNSUPPORTED), no tokens, an empty or NULL
 * token text, a special id out of range. Duplicate token texts keep the
 * last id for text lookups, as llama.cpp does. */
RY_API ry_status ry_tokenizer_new(const ry_tokenizer_config *cfg, ry_tokenizer **out);
/* Build one from a GGUF's `tokenizer.*` keys: ggml.model ("gpt2" or
 * "llama"), tokens, scores, token_type, merges, pre, bos/eos/unknown/padding
 * ids, add_bos_token, add_eos_token, add_space_prefix, chat_template. The
 * GGUF may be closed afterwards. RY_ERR_UNSUPPORTED names a tokenizer model
 * or pre-tokenizer ryft does not have. */
RY_API ry_status ry_tokenizer_from_gguf(const ry_gguf *g, ry_tokenizer **out);
RY_API void ry_tokenizer_free(ry_tokenizer *t); /* NULL is fine */

RY_API int32_t ry_tokenizer_n_tokens(const ry_tokenizer *t);
RY_API ry_tok_model ry_tokenizer_model(const ry_tokenizer *t);
RY_API int32_t ry_tokenizer_bos(const ry_tokenizer *t); /* -1 when none */
RY_API int32_t ry_tokenizer_eos(const ry_tokenizer *t); /* -1 when none */
/* 1 for a token that ends generation: EOS, and the end-of-turn markers
 * "<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<end_of_turn>" when they are
 * in the vocabulary. */
RY_API int ry_tokenizer_is_eog(const ry_tokenizer *t, int32_t id);
/* The chat template from the GGUF or config, or NULL. */
RY_API const char *ry_tokenizer_chat_template(const ry_tokenizer *t);

/* Lookups: the id of an exact token text (RY_ERR_NOT_FOUND when absent), the
 * raw text of a token as in the vocabulary (NULL out of range; *len bytes,
 * not NUL-terminated in general) and its type (0 out of range). */
RY_API ry_status ry_token_to_id(const ry_tokenizer *t, const char *text, size_t len, int32_t *id);
RY_API const char *ry_token_text(const ry_tokenizer *t, int32_t id, size_t *len);
RY_API ry_token_type ry_token_type_of(const ry_tokenizer *t, int32_t id);

/* Flags of ry_tokenize and the decoders. */
enum {
  RY_TOK_ADD_SPECIAL = 1,   /* encode: BOS/EOS as the vocabulary asks (add_bos/add_eos) */
  RY_TOK_PARSE_SPECIAL = 2, /* encode: match CONTROL/UNKNOWN token texts in the text */
  RY_TOK_RENDER_SPECIAL = 4 /* decode: write CONTROL/UNKNOWN tokens as their text (else nothing) */
};

/* Encode `len` bytes of UTF-8 (len -1: NUL-terminated) into a new array of
 * *n ids, freed with ry_free (non-NULL even when *n is 0). Runs in time
 * roughly linear in the text (merges by a heap over a linked list of
 * symbols, pairs found by hashing). */
RY_API ry_status ry_tokenize(const ry_tokenizer *t, const char *text, long len, int flags, int32_t **ids, int64_t *n);

/* The bytes one token decodes to, in place (valid while t lives): NORMAL
 * tokens as text (BPE: GPT-2 bytes mapped back; SPM: U+2581 as a space),
 * BYTE tokens <0xNN> as that byte, USER_DEFINED as their text, CONTROL and
 * UNKNOWN as their text with RY_TOK_RENDER_SPECIAL and as nothing without.
 * A piece may end inside a UTF-8 sequence that the next token completes. */
RY_API ry_status ry_token_piece(const ry_tokenizer *t, int32_t id, int flags, const char **piece, size_t *len);
/* Decode n ids into a new NUL-terminated string (ry_free; *len may be NULL).
 * With add_space_prefix (SPM), the leading space of the first token that is
 * not a CONTROL token (BOS) is dropped, as encode put it there, so
 * decode(encode(s)) == s (for SPM, unless s holds a special token: encode
 * puts a space in front of the text after one, as llama.cpp does). Bytes are joined as they come: the result may hold
 * invalid UTF-8 if the ids do (use the stream decoder for display). */
RY_API ry_status ry_detokenize(const ry_tokenizer *t, const int32_t *ids, int64_t n, int flags, char **out, size_t *len);

/* A streaming decoder for generation: push ids one at a time and get back
 * only complete UTF-8 characters; a piece that ends inside a character is
 * held back until the next one completes it. Bytes that can never form a
 * character come out as U+FFFD, so the text is always valid UTF-8. */
typedef struct ry_detok_stream ry_detok_stream;
RY_API ry_status ry_detok_stream_new(const ry_tokenizer *t, int flags, ry_detok_stream **out);
/* text and len: the text ready now (maybe empty), valid until the next call. */
RY_API ry_status ry_detok_stream_push(ry_detok_stream *s, int32_t id, const char **text, size_t *len);
/* What is held back, as U+FFFD per incomplete character; resets the stream. */
RY_API ry_status ry_detok_stream_flush(ry_detok_stream *s, const char **text, size_t *len);
RY_API void ry_detok_stream_free(ry_detok_stream *s); /* NULL is fine */

/* ---- chat templates ---------------------------------------------------------
 * ryft does not run Jinja: it recognises the template families it knows
 * by their markers and formats them in C, as llama.cpp's
 * llama_chat_apply_template does. Known: ChatML ("<|im_start|>": SmolLM2,
 * Qwen2, ...), which gives "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per
 * message and "<|im_start|>assistant\n" as the generation prompt. Any other
 * template is refused with RY_ERR_UNSUPPORTED. (A system message that the
 * Jinja template would add by itself, as SmolLM2's does, is not added:
 * llama.cpp does not add it either.) */
typedef struct ry_chat_msg {
  const char *role;    /* "system", "user", "assistant", ... */
  const char *content;
} ry_chat_msg;

/* `tmpl`: a Jinja template source (NULL: ChatML). The text is a new
 * NUL-terminated string (ry_free). */
RY_API ry_status ry_chat_apply(const char *tmpl, const ry_chat_msg *msgs, int n, int add_generation_prompt, char **out);

#ifdef __cplusplus
}
#endif
#endif
