#!/usr/bin/env python3
"""Reference logits of SmolLM2-135M-Instruct (Q4_1 GGUF) for tests/test_model.c,
from an f32 forward pass written independently in NumPy (the one of
gen_lm_goldens.py, in float64) over the gguf package's own dequantized
tensors (gguf.quants.dequantize). Needs numpy and gguf; not run in CI:

    /work/jaxenv/bin/python tests/data/gen_smollm2_goldens.py build/models/SmolLM2-135M-Instruct.Q4_1.gguf

Writes tests/data/lm/smollm2_ref.txt: for each prompt (token ids chosen
here, no tokenizer involved) the argmax and, for 64 fixed vocabulary
indices and the 16 largest logits, the logit of the last position."""
import os
import sys

import numpy as np
import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_lm_goldens as ref  # noqa: E402

PROMPTS = [[1, 504, 3458, 282], [2, 9, 7, 4, 1000, 20000, 49151, 12], list(range(100, 133))]


def main():
    path = sys.argv[1]
    r = gguf.GGUFReader(path)

    def kv(key):
        f = r.fields[key]
        return f.parts[f.data[0]].tolist()[0]

    w = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        w[t.name] = np.asarray(a, dtype=np.float32).reshape([int(d) for d in reversed(t.shape.tolist())])
    E = kv("llama.embedding_length")
    H = kv("llama.attention.head_count")
    ref.CFG.update(L=kv("llama.block_count"), E=E, F=kv("llama.feed_forward_length"), Hq=H,
                   Hk=kv("llama.attention.head_count_kv"), D=E // H, V=w["token_embd.weight"].shape[0],
                   base=float(kv("llama.rope.freq_base")), eps=float(kv("llama.attention.layer_norm_rms_epsilon")))
    rng = np.random.default_rng(5)
    idx = sorted(rng.choice(ref.CFG["V"], 64, replace=False).tolist())
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm", "smollm2_ref.txt")
    with open(out, "w") as f:
        f.write("# prompt | argmax | index:logit ... (64 fixed indices, then the 16 largest)\n")
        for p in PROMPTS:
            lg = ref.forward("llama", w, np.array(p))[-1]
            top = np.argsort(-lg)[:16].tolist()
            pairs = " ".join("%d:%.6f" % (i, lg[i]) for i in idx + top)
            f.write("%s | %d | %s\n" % (",".join(map(str, p)), int(np.argmax(lg)), pairs))
            print(p[:4], "argmax", int(np.argmax(lg)), "max", float(lg.max()))


if __name__ == "__main__":
    main()
