#!/usr/bin/env python3
"""Tokenizer fixtures and llama.cpp goldens for tests/test_tokenizer.c.

    /work/jaxenv/bin/python tests/data/gen_tokenizer_goldens.py fixtures
        writes the tiny vocabularies tests/data/tokenizer/tiny_*.gguf with the
        `gguf` package: a byte-level BPE vocabulary (256 byte characters,
        merges learned below from a small corpus, ChatML control tokens and a
        user-defined token) once per pre-tokenizer (gpt2, llama3, smollm,
        qwen2), and a SentencePiece-style one (<unk> <s> </s>, the 256 byte
        tokens <0xNN>, pieces scored by merge order, a user-defined token).
    /work/llamaenv/bin/python tests/data/gen_tokenizer_goldens.py goldens [SMOLLM2.gguf]
        tokenizes every string of STRINGS below with llama.cpp
        (llama-cpp-python 0.3.36: Llama(path, vocab_only=True).tokenize) for
        each tiny vocabulary, and for SmolLM2-135M-Instruct when its GGUF is
        given, and writes tests/data/tokenizer/<name>.golden.

<name>.pieces holds llama.cpp's decoded piece of every token (see
write_pieces).

A golden file has one line per (string, flags): "FLAGS HEX IDS", FLAGS 0
(plain) or 3 (add_special + parse_special, llama.cpp's add_bos=True,
special=True), HEX the string's UTF-8 bytes in hex ("-" when empty), IDS the
ids separated by commas ("-" when none). Not run in CI: the goldens are
committed.
"""
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tokenizer")

# ---- the test strings (at least 200) ----
BASE = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t\n  \n", "a", "A", "Hello", "Hello world",
    "Hello, world!", " Hello world", "Hello  world", "Hello   world ", "hello\nworld", "hello\n\nworld\n",
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "It's a dog's life, isn't it?",
    "I'm sure you'll see they've done it, we'd say.", "IT'S DON'T WON'T", "'s 't 're 've 'm 'll 'd", "''''",
    "can't", "o'clock", "rock 'n' roll", "e-mail", "state-of-the-art", "Mr. Smith went to Washington.",
    "1", "12", "123", "1234", "12345", "123456789", "3.14159", "1,000,000", "-42", "+7", "0x1F", "1e-5",
    "2024-06-01", "12:30:45", "$100.00", "100%", "v1.2.3", "a1b2c3", "abc123def", "x = 10 + 20 * 3",
    "2^10 = 1024", "phone: 555-0123", "ISBN 978-3-16-148410-0",
    "def f(x):\n    return x * 2\n", "int main(void) {\n\treturn 0;\n}\n", "for (int i = 0; i < n; i++) {}",
    "if x == 1:\n\tpass", "    indented", "\t\tdouble tab", "print(\"hello\")", "a->b->c", "x != y && y <= z",
    "#include <stdio.h>", "// comment", "/* block */", "std::vector<int> v;", "SELECT * FROM t WHERE id=1;",
    "{\"key\": [1, 2, 3]}", "<html><body>Hi</body></html>", "https://example.com/path?q=1&r=2",
    "user@example.com", "~/.bashrc", "C:\\Windows\\System32", "`code`", "***bold***", "__init__", "@@@@",
    "!!!", "???", "...", "---", "===", "###", "$$$", "a.b.c", "(a)(b)", "[1][2]", "..\n..",
    "café", "naïve", "résumé", "Ångström", "Straße", "Ελληνικά", "Русский текст", "Ünïcödé", "ñandú", "àéîõü",
    "日本語", "中文测试", "你好，世界！", "こんにちは世界", "한국어 텍스트", "漢字かなカナ", "東京 2020",
    "العربية", "עברית", "हिन्दी", "ไทย", "Tiếng Việt",
    "😀", "😀😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "I ❤️ NY", "emoji 🎉 party 🥳", "✓ done", "→ ← ↑ ↓", "∑ ∫ √ ∞",
    "©®™", "€£¥", "½ ¼ ¾", "ℕ ℤ ℚ", "①②③", "Ⅻ", "٣٤٥", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\u00a0nbsp", "a\u2009b", "a\u3000b", "a\u200bb", "x\u0301", "tab\tsep\tvalues", "trailing   ", "   leading",
    "mixed \t \n whitespace", "\n\n\n\n", "          ten", "a  b   c    d", " \t ", "line1\r\nline2\r\n",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>text", "<|im_start|><|im_end|>", "<|im_start", "im_start|>", "<|endoftext|> after",
    "<s>", "</s>", "<unk>", "<s> hello </s>", "<0x41>", "▁", "▁hello", "[EMPTY_0]", "<custom>", "a<custom>b",
    "Supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abababababababababababab",
    "x" * 300, "0" * 50, "the " * 40, "🙂" * 20,
]
WORDS = ["the", "of", "tokenizer", "ryft", "JAX", "C11", "array", "model", "llama", "merge", "byte", "UTF-8",
         "space", "tab", "newline", "digit", "emoji", "CJK", "façade", "Zürich"]


def strings():
    out = list(BASE)
    # numbers of every length, alone and in text
    for k in range(1, 13):
        out.append("".join(str((i * 7 + k) % 10) for i in range(k)))
        out.append("n=" + "9" * k + " items")
    # whitespace runs of each kind before a word and a digit
    for ws in [" ", "  ", "\t", "\n", " \n", "\n\t", "\r\n", "\u00a0"]:
        for tail in ["word", "42", "!"]:
            out.append(ws * 2 + tail)
            out.append("x" + ws * 3 + tail)
    # sentences from the word list
    for i in range(30):
        words = [WORDS[(i * 3 + j * 7) % len(WORDS)] for j in range(3 + i % 6)]
        sep = [" ", "  ", ", ", "\n", "-", " 's "][i % 6]
        out.append(sep.join(words) + ("." if i % 2 else "?"))
    seen, uniq = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


# ---- tiny vocabularies ----
CORPUS = """The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.
It's the tokenizer's job to split text into tokens, and the merges decide which pairs join.
def tokenize(text):
    return [t for t in text.split() if t]
int main(void) { return 0; }  // the end
Numbers 1234567890 and 3.14159, dates 2024-06-01, money $100.
café naïve résumé Straße Ελληνικά Русский 日本語 中文 你好 こんにちは 😀 👍
hello hello hello world world the the the of of and and to to in in is is
"""

BYTE_CHARS = None


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def learn_merges(words, n_merges):
    """Plain BPE training: the most frequent adjacent pair, repeatedly."""
    vocab = collections.Counter(tuple(w) for w in words)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in vocab.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        nv = collections.Counter()
        for w, c in vocab.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nv[tuple(out)] += c
        vocab = nv
    return merges


def pre_words(text):
    """A rough split for training only (space kept in front of a word)."""
    words, cur = [], ""
    for ch in text:
        if ch.isspace() and cur and not cur.isspace():
            words.append(cur)
            cur = ch
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def write_bpe(gguf, pre):
    b2u = bytes_to_unicode()
    words = ["".join(b2u[b] for b in w.encode()) for w in pre_words(CORPUS)]
    merges = learn_merges(words, 300)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [3, 3, 3]
    tokens += [b2u[b] for b in range(256)]
    types += [1] * 256
    have = set(tokens)
    for a, b in merges:
        if a + b not in have:
            tokens.append(a + b)
            types.append(1)
            have.add(a + b)
    tokens.append("<custom>")
    types.append(4)
    path = os.path.join(OUT, f"tiny_bpe_{pre}.gguf")
    w = gguf.GGUFWriter(path, "llama")
    add_llama_hparams(w)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2" if pre == "gpt2" else pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" for a, b in merges])
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_add_bos_token(pre == "llama3")
    w.add_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}")
    finish(w)


def write_spm(gguf):
    sp = "\u2581"
    words = [sp + w for w in CORPUS.replace("\n", " ").split(" ") if w]
    merges = learn_merges(words, 300)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0] * len(tokens)
    have = set(tokens)
    chars = sorted({c for w in words for c in w})
    for c in chars:  # single characters of the corpus
        if c not in have:
            tokens.append(c)
            types.append(1)
            scores.append(-1000.0)
            have.add(c)
    for i, (a, b) in enumerate(merges):
        if a + b not in have:
            tokens.append(a + b)
            types.append(1)
            scores.append(-float(i))
            have.add(a + b)
    tokens.append("<custom>")
    types.append(4)
    scores.append(0.0)
    w = gguf.GGUFWriter(os.path.join(OUT, "tiny_spm.gguf"), "llama")
    add_llama_hparams(w)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    finish(w)


def add_llama_hparams(w):
    # what llama.cpp reads before the vocabulary even with vocab_only
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


FIXTURES = ["tiny_bpe_gpt2", "tiny_bpe_llama3", "tiny_bpe_smollm", "tiny_bpe_qwen2", "tiny_spm"]


def fixtures():
    import gguf
    os.makedirs(OUT, exist_ok=True)
    for pre in ["gpt2", "llama3", "smollm", "qwen2"]:
        write_bpe(gguf, pre)
    write_spm(gguf)


def goldens(smollm2):
    from llama_cpp import Llama
    targets = [(n, os.path.join(OUT, n + ".gguf")) for n in FIXTURES]
    if smollm2:
        targets.append(("smollm2", smollm2))
    ss = strings()
    assert len(ss) >= 200, len(ss)
    for name, path in targets:
        llm = Llama(model_path=path, vocab_only=True, verbose=False)
        lines = []
        for s in ss:
            for flags in (0, 3):
                ids = llm.tokenize(s.encode(), add_bos=bool(flags & 1), special=bool(flags & 2))
                lines.append(f"{flags} {s.encode().hex() or '-'} {','.join(map(str, ids)) or '-'}")
        with open(os.path.join(OUT, name + ".golden"), "w") as f:
            f.write("\n".join(lines) + "\n")
        write_pieces(llm, name)
        print(f"{name}: {len(ss)} strings")


def token_piece(llm, tok, special):
    import ctypes
    import llama_cpp
    buf = ctypes.create_string_buffer(512)
    n = llama_cpp.llama_token_to_piece(llm._model.vocab, tok, buf, 512, 0, special)
    assert 0 <= n <= 512, n
    return bytes(buf[:n])


def fold(pieces):
    """FNV-1a 64 over each piece as a 4-byte little-endian length and its bytes."""
    h = 1469598103934665603
    for p in pieces:
        for b in len(p).to_bytes(4, "little") + p:
            h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def write_pieces(llm, name):
    """<name>.pieces: what llama.cpp's llama_token_to_piece gives for every
    token, without and with `special`: one line per token ("ID HEX HEX", "-"
    for empty) for the tiny vocabularies, and for the large one a single line
    "fold N HASH0 HASH1" (fold() above) to keep the file small."""
    n = llm.n_vocab()
    p0 = [token_piece(llm, i, False) for i in range(n)]
    p1 = [token_piece(llm, i, True) for i in range(n)]
    with open(os.path.join(OUT, name + ".pieces"), "w") as f:
        if n > 4096:
            f.write(f"fold {n} {fold(p0):016x} {fold(p1):016x}\n")
        else:
            for i in range(n):
                f.write(f"{i} {p0[i].hex() or '-'} {p1[i].hex() or '-'}\n")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "fixtures":
        fixtures()
    elif len(sys.argv) >= 2 and sys.argv[1] == "goldens":
        goldens(sys.argv[2] if len(sys.argv) > 2 else None)
    else:
        sys.exit(__doc__)
