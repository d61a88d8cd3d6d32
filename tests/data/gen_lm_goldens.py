#!/usr/bin/env python3
"""Write tiny random transformer language models and their logits, for
tests/test_model.c (ryft/model.h). Needs numpy; not run in CI:

    /work/jaxenv/bin/python tests/data/gen_lm_goldens.py

For each architecture (llama: adjacent-pair rope, tied embeddings; qwen2:
half-split rope, q/k/v biases, an output matrix; gemma: scaled embeddings,
half-split rope, a GELU-gated feed-forward, head_dim * heads != n_embd;
gpt2: learned positions, LayerNorm, fused qkv, biases, a GELU MLP) it writes
tests/data/lm/<arch>.safetensors (f32 weights under GGUF's tensor names and
row-major [out, in] layouts), <arch>_tokens.npy (i32[T]) and
<arch>.gguf (the same weights as a GGUF file under llama.cpp's keys, and
for llama two broken copies: a tensor shape that contradicts the
hyperparameters, a tensor type ryft does not read), <arch>_logits.npy (f32[T, V]: the logits after every prefix, computed here in
float64 with a plain full-sequence causal forward pass, written from the
architecture's definition, independently of ryft's cached implementation).
Deterministic (fixed seeds)."""
import json
import os
import struct

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm")
CFG = dict(L=2, E=32, F=48, Hq=4, Hk=2, D=8, V=64, base=10000.0, eps=1e-5)


def write_safetensors(path, tensors):
    header, blob = {}, b""
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def cfg(arch):
    c = dict(CFG)
    if arch == "gemma":
        c["D"] = 16  # heads * head_dim = 64 != n_embd
    if arch == "gpt2":
        c["Hk"] = c["Hq"]
    return c


def weights(arch, rng):
    c = cfg(arch)
    E, F, Q, K, V = c["E"], c["F"], c["Hq"] * c["D"], c["Hk"] * c["D"], c["V"]
    w = {"token_embd.weight": rng.normal(0, 0.5, (V, E))}
    if arch == "gpt2":
        w["position_embd.weight"] = rng.normal(0, 0.3, (128, E))
        for l in range(c["L"]):
            p = "blk.%d." % l
            w[p + "attn_norm.weight"] = 1 + rng.normal(0, 0.1, E)
            w[p + "attn_norm.bias"] = rng.normal(0, 0.1, E)
            w[p + "attn_qkv.weight"] = rng.normal(0, 0.3, (3 * E, E))
            w[p + "attn_qkv.bias"] = rng.normal(0, 0.1, 3 * E)
            w[p + "attn_output.weight"] = rng.normal(0, 0.3, (E, E))
            w[p + "attn_output.bias"] = rng.normal(0, 0.1, E)
            w[p + "ffn_norm.weight"] = 1 + rng.normal(0, 0.1, E)
            w[p + "ffn_norm.bias"] = rng.normal(0, 0.1, E)
            w[p + "ffn_up.weight"] = rng.normal(0, 0.3, (F, E))
            w[p + "ffn_up.bias"] = rng.normal(0, 0.1, F)
            w[p + "ffn_down.weight"] = rng.normal(0, 0.3, (E, F))
            w[p + "ffn_down.bias"] = rng.normal(0, 0.1, E)
        w["output_norm.weight"] = 1 + rng.normal(0, 0.1, E)
        w["output_norm.bias"] = rng.normal(0, 0.1, E)
        return {k: v.astype(np.float32) for k, v in w.items()}
    for l in range(c["L"]):
        p = "blk.%d." % l
        w[p + "attn_norm.weight"] = 1 + rng.normal(0, 0.1, E)
        w[p + "attn_q.weight"] = rng.normal(0, 0.3, (Q, E))
        w[p + "attn_k.weight"] = rng.normal(0, 0.3, (K, E))
        w[p + "attn_v.weight"] = rng.normal(0, 0.3, (K, E))
        if arch == "qwen2":
            w[p + "attn_q.bias"] = rng.normal(0, 0.1, Q)
            w[p + "attn_k.bias"] = rng.normal(0, 0.1, K)
            w[p + "attn_v.bias"] = rng.normal(0, 0.1, K)
        w[p + "attn_output.weight"] = rng.normal(0, 0.3, (E, Q))
        w[p + "ffn_norm.weight"] = 1 + rng.normal(0, 0.1, E)
        w[p + "ffn_gate.weight"] = rng.normal(0, 0.3, (F, E))
        w[p + "ffn_up.weight"] = rng.normal(0, 0.3, (F, E))
        w[p + "ffn_down.weight"] = rng.normal(0, 0.3, (E, F))
    w["output_norm.weight"] = 1 + rng.normal(0, 0.1, E)
    if arch == "qwen2":
        w["output.weight"] = rng.normal(0, 0.3, (V, E))
    # the file holds f32: compute with exactly those values
    return {k: v.astype(np.float32) for k, v in w.items()}


def rms_norm(x, g):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + CFG["eps"]) * g


def layer_norm(x, g, b):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + CFG["eps"]) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def attend(q, k, v, Hq, Hk, D):
    T = q.shape[0]
    o = np.zeros((T, Hq, D))
    for hq in range(Hq):
        hk = hq // (Hq // Hk)
        s = q[:, hq, :] @ k[:, hk, :].T / np.sqrt(D)
        s = np.where(np.tril(np.ones((T, T))) > 0, s, -np.inf)
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        o[:, hq, :] = (e / e.sum(axis=-1, keepdims=True)) @ v[:, hk, :]
    return o.reshape(T, Hq * D)


def forward_gpt2(w, tokens):
    c = cfg("gpt2")
    T, E, H = len(tokens), c["E"], c["Hq"]
    x = w["token_embd.weight"][tokens] + w["position_embd.weight"][:T]
    for l in range(c["L"]):
        p = "blk.%d." % l
        h = layer_norm(x, w[p + "attn_norm.weight"], w[p + "attn_norm.bias"])
        qkv = h @ w[p + "attn_qkv.weight"].T + w[p + "attn_qkv.bias"]
        q, k, v = (qkv[:, i * E:(i + 1) * E].reshape(T, H, E // H) for i in range(3))
        x = x + attend(q, k, v, H, H, E // H) @ w[p + "attn_output.weight"].T + w[p + "attn_output.bias"]
        h = layer_norm(x, w[p + "ffn_norm.weight"], w[p + "ffn_norm.bias"])
        u = gelu_tanh(h @ w[p + "ffn_up.weight"].T + w[p + "ffn_up.bias"])
        x = x + u @ w[p + "ffn_down.weight"].T + w[p + "ffn_down.bias"]
    x = layer_norm(x, w["output_norm.weight"], w["output_norm.bias"])
    return x @ w["token_embd.weight"].T


def rope(x, pos, kind):
    # x [T, H, D]; theta_i = pos * base^(-2i/D)
    D = x.shape[-1]
    inv = CFG["base"] ** (-2.0 * np.arange(D // 2) / D)
    ang = pos[:, None] * inv[None, :]  # [T, D/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = np.empty_like(x)
    if kind == "norm":  # pairs (2i, 2i+1), as ggml's LLAMA rope
        x0, x1 = x[..., 0::2], x[..., 1::2]
        y[..., 0::2], y[..., 1::2] = x0 * c - x1 * s, x0 * s + x1 * c
    else:  # halves (i, i + D/2), as GPT-NeoX
        h = D // 2
        x0, x1 = x[..., :h], x[..., h:]
        y[..., :h], y[..., h:] = x0 * c - x1 * s, x0 * s + x1 * c
    return y


def forward(arch, w, tokens):
    c = cfg(arch)
    T, D, Hq, Hk = len(tokens), c["D"], c["Hq"], c["Hk"]
    w = {k: v.astype(np.float64) for k, v in w.items()}
    if arch == "gpt2":
        return forward_gpt2(w, tokens)
    x = w["token_embd.weight"][tokens]
    if arch == "gemma":
        x = x * np.sqrt(c["E"])
    pos = np.arange(T, dtype=np.float64)
    kind = "norm" if arch == "llama" else "neox"
    for l in range(c["L"]):
        p = "blk.%d." % l
        h = rms_norm(x, w[p + "attn_norm.weight"])
        q, k, v = h @ w[p + "attn_q.weight"].T, h @ w[p + "attn_k.weight"].T, h @ w[p + "attn_v.weight"].T
        if arch == "qwen2":
            q, k, v = q + w[p + "attn_q.bias"], k + w[p + "attn_k.bias"], v + w[p + "attn_v.bias"]
        q = rope(q.reshape(T, Hq, D), pos, kind)
        k = rope(k.reshape(T, Hk, D), pos, kind)
        v = v.reshape(T, Hk, D)
        x = x + attend(q, k, v, Hq, Hk, D) @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "ffn_gate.weight"].T
        u = h @ w[p + "ffn_up.weight"].T
        act = gelu_tanh(g) if arch == "gemma" else g / (1 + np.exp(-g))
        x = x + (act * u) @ w[p + "ffn_down.weight"].T
    x = rms_norm(x, w["output_norm.weight"])
    head = w["output.weight"] if "output.weight" in w else w["token_embd.weight"]
    return x @ head.T


ARCH_KEYS = {"llama": "llama", "qwen2": "qwen2", "gemma": "gemma", "gpt2": "gpt2"}


def write_gguf(path, arch, w, bad=None):
    """The same model as a GGUF file under llama.cpp's keys (f32 tensors).
    bad: None, "shape" (attn_q one row short), "type" (attn_k stored as
    Q8_1, a type ryft does not dequantize)."""
    import gguf

    c = cfg(arch)
    g = gguf.GGUFWriter(path, arch)
    g.add_block_count(c["L"])
    g.add_embedding_length(c["E"])
    g.add_feed_forward_length(c["F"])
    g.add_head_count(c["Hq"])
    g.add_head_count_kv(c["Hk"])
    g.add_context_length(128)
    if arch == "gemma":
        g.add_key_length(c["D"])
        g.add_value_length(c["D"])
    if arch == "gpt2":
        g.add_layer_norm_eps(c["eps"])
    else:
        g.add_layer_norm_rms_eps(c["eps"])
        g.add_rope_freq_base(c["base"])
    for name, a in w.items():
        if bad == "shape" and name == "blk.0.attn_q.weight":
            a = a[:-1]
        if bad == "type" and name == "blk.1.attn_k.weight":
            raw = np.zeros((a.shape[0], a.shape[1] // 32 * 40), dtype=np.uint8)
            g.add_tensor(name, raw, raw_dtype=gguf.GGMLQuantizationType.Q8_1)
            continue
        g.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()


def main():
    os.makedirs(HERE, exist_ok=True)
    for i, arch in enumerate(["llama", "qwen2", "gemma", "gpt2"]):
        rng = np.random.default_rng(1234 + i)
        w = weights(arch, rng)
        tokens = rng.integers(0, CFG["V"], 40).astype(np.int32)
        logits = forward(arch, w, tokens).astype(np.float32)
        write_safetensors(os.path.join(HERE, arch + ".safetensors"), w)
        write_gguf(os.path.join(HERE, arch + ".gguf"), arch, w)
        if arch == "llama":
            write_gguf(os.path.join(HERE, "llama_bad_shape.gguf"), arch, w, bad="shape")
            write_gguf(os.path.join(HERE, "llama_bad_type.gguf"), arch, w, bad="type")
        np.save(os.path.join(HERE, arch + "_tokens.npy"), tokens)
        np.save(os.path.join(HERE, arch + "_logits.npy"), logits)
        print(arch, "logits", logits.shape, "range", float(logits.min()), float(logits.max()))


if __name__ == "__main__":
    main()
