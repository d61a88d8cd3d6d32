#!/usr/bin/env python3
"""llama.cpp's logits for a GPT-2 that ryft trained and exported as GGUF,
for tests/test_lm_train.c. Needs a built ryft and llama-cpp-python (0.3.36);
not run in CI:

    /work/llamaenv/bin/python tests/data/gen_gpt2_export_llamacpp.py build/ryft

1. writes the small corpus of the C test (documents separated by "%" lines)
   and trains on it with `ryft train-lm` (2 layers, 32 wide, 2 heads, the
   tiny BPE vocabulary of tests/data/tokenizer/tiny_bpe_smollm.gguf, 6
   steps), which exports model.gguf with ry_lm_save_gguf;
2. copies it to tests/data/lm/gpt2_export.gguf;
3. runs it in llama.cpp (Llama(..., logits_all=True).eval) on TOKENS and
   writes tests/data/lm/gpt2_export_llamacpp.txt: a "tokens" line, then one
   line of logits per position ("%.9g" floats)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "house", "of", "my", "friend"]
TOKENS = [3, 40, 41, 100, 7, 250, 12, 99, 5, 300, 64, 65, 2, 180, 181, 30]


def main():
    ryft = sys.argv[1]
    tmp = tempfile.mkdtemp()
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w") as f:  # as write_corpus() in tests/test_lm_train.c
        for d in range(200):
            f.write(" ".join(WORDS[(d * 5 + w * w + 3 * w) % 14] for w in range(12)))
            f.write(".\n\t\t-- Someone %d\n%%\n" % d)
    out = os.path.join(tmp, "out")
    subprocess.check_call([ryft, "train-lm", "--tokenizer", os.path.join(HERE, "tokenizer", "tiny_bpe_smollm.gguf"),
                           "--layers", "2", "--embd", "32", "--heads", "2", "--ctx", "16", "--batch", "2",
                           "--eval-batches", "1", "--steps", "6", "--eval-every", "2", "--seed", "5", "--no-plot",
                           "--data", corpus, "--out", out])
    dst = os.path.join(HERE, "lm", "gpt2_export.gguf")
    shutil.copyfile(os.path.join(out, "model.gguf"), dst)
    llm = Llama(model_path=dst, n_ctx=64, n_threads=2, logits_all=True, verbose=False)
    llm.eval(TOKENS)
    logits = np.array(llm.scores[:len(TOKENS)], dtype=np.float32)
    with open(os.path.join(HERE, "lm", "gpt2_export_llamacpp.txt"), "w") as f:
        f.write("# llama.cpp (llama-cpp-python %s) on gpt2_export.gguf; gen_gpt2_export_llamacpp.py\n"
                % __import__("llama_cpp").__version__)
        f.write("tokens %s\n" % " ".join(map(str, TOKENS)))
        for row in logits:
            f.write(" ".join("%.9g" % v for v in row) + "\n")
    shutil.rmtree(tmp)
    print("vocab %d, logits %s" % (llm.n_vocab(), logits.shape))


if __name__ == "__main__":
    main()
