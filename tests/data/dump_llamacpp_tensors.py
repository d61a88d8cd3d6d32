#!/usr/bin/env python3
"""Record every f32/f16 tensor llama.cpp computes for a prompt, for finding
where ryft's arithmetic and llama.cpp's part (docs/QUANT.md, "Agreeing with
llama.cpp"). Needs llama-cpp-python (0.3.36, built as
gen_llamacpp_goldens.py says); not run in CI:

    /work/llamaenv/bin/python tests/data/dump_llamacpp_tensors.py \\
        build/models/SmolLM2-135M-Instruct.Q4_1.gguf out.npz "The capital of France is" 3

Evaluates the prompt (one batch, no BOS, as the goldens do), then N greedy
tokens one at a time, with llama.cpp's graph eval callback (cb_eval in
llama_context_params) copying each tensor once it is computed. out.npz
holds "ids" and, per step ("p/" the prompt, "d0/", "d1/", ... the decoded
tokens), every tensor by its graph name: attn_norm-L, Qcur-L (then #1
reshaped, #2 after RoPE), Kcur-L, Vcur-L, kq-L, kq_soft_max-L, kqv-L,
kqv_out-L, attn_out-L, ffn_inp-L, ffn_gate-L, ffn_up-L, ffn_swiglu-L,
ffn_out-L, l_out-L, result_norm, result_output, the cache views (f16 as
stored, converted to f32); a repeated name gets #1, #2, ... Arrays have
ggml's dimensions reversed (numpy order): Qcur-L#2 of the prompt is
[1, T, heads, head_dim]. The graph's node list is printed."""
import ctypes
import sys

import numpy as np

import llama_cpp.llama_cpp as C
from llama_cpp import Llama


class Tensor(ctypes.Structure):  # struct ggml_tensor (ggml.h), GGML_MAX_SRC 10, GGML_MAX_NAME 64
    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
                ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
                ("flags", ctypes.c_int32), ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64),
                ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]


STEP = {}
NODES = []


def read(t):
    """the tensor's elements (strides honoured) as f32, or None for other types"""
    if t.type == 0:
        dt, es = np.float32, 4
    elif t.type == 1:
        dt, es = np.float16, 2
    else:
        return None
    ne, nb = list(t.ne), list(t.nb)
    span = sum((ne[i] - 1) * nb[i] for i in range(4)) + es
    raw = np.frombuffer((ctypes.c_char * span).from_address(t.data), dtype=np.uint8)
    a = np.lib.stride_tricks.as_strided(raw, shape=ne[::-1] + [es], strides=nb[::-1] + [1])
    return np.ascontiguousarray(a).view(dt).reshape(ne[::-1]).astype(np.float32)


@C.ggml_backend_sched_eval_callback
def on_tensor(ptr, ask, _user):
    if ask:  # yes, show every tensor
        return True
    t = ctypes.cast(ptr, ctypes.POINTER(Tensor)).contents
    a = read(t)
    if a is not None:
        name = key = t.name.decode()
        k = 1
        while key in STEP:
            key = "%s#%d" % (name, k)
            k += 1
        STEP[key] = a
        NODES.append((key, list(t.ne)))
    return True


def main():
    path, out = sys.argv[1], sys.argv[2]
    prompt = sys.argv[3] if len(sys.argv) > 3 else "The capital of France is"
    n_dec = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    defaults = C.llama_context_default_params

    def with_callback():
        p = defaults()
        p.cb_eval = on_tensor
        p.cb_eval_user_data = None
        return p

    C.llama_context_default_params = with_callback  # Llama() reads its context parameters from here
    llm = Llama(model_path=path, n_ctx=256, n_threads=2, logits_all=True, verbose=False, seed=0)
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    res = {"ids": np.array(ids)}
    llm.eval(ids)
    for name, ne in NODES:
        print(name, ne)
    steps = [("p/", dict(STEP))]
    for d in range(n_dec):
        STEP.clear()
        t = int(np.argmax(np.array(llm.scores[llm.n_tokens - 1])))
        llm.eval([t])
        steps.append(("d%d/" % d, dict(STEP)))
    for prefix, tensors in steps:
        for k, v in tensors.items():
            res[prefix + k] = v
    np.savez(out, **res)
    print(len(ids), "prompt tokens,", n_dec, "decoded;", len(res), "arrays in", out)


if __name__ == "__main__":
    main()
