#!/usr/bin/env python3
"""What llama.cpp says for SmolLM2-135M-Instruct (Q4_1 GGUF), for
tests/test_model.c: for 10 prompts, llama.cpp's token ids, the next-token
logits (the 16 largest and 64 fixed vocabulary indices) and its greedy
continuation of 32 tokens. Needs llama-cpp-python (0.3.36 built it here,
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON");
not run in CI:

    /work/llamaenv/bin/python tests/data/gen_llamacpp_goldens.py build/models/SmolLM2-135M-Instruct.Q4_1.gguf

Writes tests/data/lm/smollm2_llamacpp.txt, one block per prompt:
  prompt <the text, escaped as a C string body>
  ids <llama.cpp's token ids, no BOS (the model's add_bos_token is false)>
  logits <index:value ...>
  greedy <32 token ids>
llama.cpp multiplies Q4_1 weights by activations rounded to 8 bits (Q8_1),
so its logits differ from an f32 computation by a little; the C test states
the tolerance."""
import sys

import numpy as np
from llama_cpp import Llama

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "def fibonacci(n):\n    ",
    "The quick brown fox jumps over the",
    "1, 2, 3, 4, 5,",
    "Water boils at a temperature of",
    "<|im_start|>user\nWhat is the largest planet in the solar system?<|im_end|>\n<|im_start|>assistant\n",
    "In machine learning, a neural network is",
    "Les fleurs du jardin sont",
    "The three primary colors are",
]


def esc(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def main():
    path = sys.argv[1]
    llm = Llama(model_path=path, n_ctx=256, n_threads=2, logits_all=True, verbose=False, seed=0)
    rng = np.random.default_rng(11)
    idx = sorted(rng.choice(llm.n_vocab(), 64, replace=False).tolist())
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/lm/smollm2_llamacpp.txt"
    with open(out, "w") as f:
        f.write("# llama.cpp (llama-cpp-python %s) on SmolLM2-135M-Instruct.Q4_1.gguf; gen_llamacpp_goldens.py\n"
                % __import__("llama_cpp").__version__)
        for p in PROMPTS:
            ids = llm.tokenize(p.encode(), add_bos=False, special=True)
            llm.reset()
            llm.eval(ids)
            lg = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            top = np.argsort(-lg)[:16].tolist()
            greedy = []
            cur = lg
            for _ in range(32):
                t = int(np.argmax(cur))
                greedy.append(t)
                llm.eval([t])
                cur = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            f.write("prompt %s\n" % esc(p))
            f.write("ids %s\n" % " ".join(map(str, ids)))
            f.write("logits %s\n" % " ".join("%d:%.5f" % (i, lg[i]) for i in idx + top))
            f.write("greedy %s\n" % " ".join(map(str, greedy)))
            print(repr(p[:30]), len(ids), "tokens; argmax", top[0], "greedy", greedy[:6])


if __name__ == "__main__":
    main()
