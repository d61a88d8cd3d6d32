#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) on the same GGUF file and token ids as
bench/lm_bench.c, same threads: prints "llama.cpp <what> <value> <unit>"."""
import resource
import sys
import time

from llama_cpp import Llama


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, n_batch=512,
                verbose=False, logits_all=False)
    print("llama.cpp load %.3f s" % (time.perf_counter() - t0))
    V = llm.n_vocab()
    tok = [100 + (i * 7919) % (V - 200) for i in range(640)]
    t0 = time.perf_counter()
    llm.reset()
    llm.eval(tok[:128])
    print("llama.cpp first_token_128_first_run %.3f s" % (time.perf_counter() - t0))
    for n in (128, 512):
        best = 1e30
        for _ in range(3):
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(tok[:n])
            best = min(best, time.perf_counter() - t0)
        print("llama.cpp prefill_%d %.1f tokens/s" % (n, n / best))
    llm.reset()
    llm.eval(tok[:16])
    llm.eval([tok[16]])
    t0 = time.perf_counter()
    for _ in range(128):
        logits = llm.scores[llm.n_tokens - 1]
        llm.eval([int(logits.argmax())])
    print("llama.cpp decode_128 %.1f tokens/s" % (128 / (time.perf_counter() - t0)))
    print("llama.cpp peak_rss %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))


if __name__ == "__main__":
    main()
