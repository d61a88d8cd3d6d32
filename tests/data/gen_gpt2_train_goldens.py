#!/usr/bin/env python3
"""Write the training goldens of a tiny GPT-2 for tests/test_lm_train.c,
computed by PyTorch (float64) from the architecture's definition, written
here independently of ryft's model code. Needs torch and numpy (not run in
CI):

    python3 -m venv /work/torchenv && /work/torchenv/bin/pip install torch numpy
    /work/torchenv/bin/python tests/data/gen_gpt2_train_goldens.py

Writes tests/data/lm/gpt2_train.safetensors:
  "w/<name>"    f32 weights under GGUF's tensor names and [out, in] layouts
                (values rounded to f32 before PyTorch uses them)
  "tokens"      i32[B, T + 1]: the inputs are [:, :T], the targets [:, 1:]
  "loss"        f32[1]: the mean next-token cross-entropy
  "grad/<name>" f32: d loss / d weight (the tied embedding gets both uses)
  "losses"      f32[STEPS]: the loss before each of STEPS AdamW updates on
                the same batch: torch.optim.AdamW (betas 0.9/0.95, eps 1e-8,
                weight decay 0.1 on the matrices and embeddings only, none on
                biases and LayerNorms), torch.nn.utils.clip_grad_norm_(1.0),
                the learning rate by LambdaLR following optax's
                warmup_cosine_decay_schedule(0, 1e-2, 5, STEPS, 1e-3).
Deterministic (fixed seed)."""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lm")
L, E, H, FF, V, CTX, B, T = 2, 32, 4, 128, 64, 16, 2, 16
D = E // H
EPS = 1e-5
STEPS, PEAK, WARMUP, END = 20, 1e-2, 5, 1e-3
WD, CLIP, BETAS = 0.1, 1.0, (0.9, 0.95)


def weights(rng):
    w = {"token_embd.weight": rng.normal(0, 0.3, (V, E)), "position_embd.weight": rng.normal(0, 0.1, (CTX, E))}
    for l in range(L):
        p = "blk.%d." % l
        w[p + "attn_norm.weight"] = 1 + rng.normal(0, 0.1, E)
        w[p + "attn_norm.bias"] = rng.normal(0, 0.1, E)
        w[p + "attn_qkv.weight"] = rng.normal(0, 0.2, (3 * E, E))
        w[p + "attn_qkv.bias"] = rng.normal(0, 0.1, 3 * E)
        w[p + "attn_output.weight"] = rng.normal(0, 0.2, (E, E))
        w[p + "attn_output.bias"] = rng.normal(0, 0.1, E)
        w[p + "ffn_norm.weight"] = 1 + rng.normal(0, 0.1, E)
        w[p + "ffn_norm.bias"] = rng.normal(0, 0.1, E)
        w[p + "ffn_up.weight"] = rng.normal(0, 0.2, (FF, E))
        w[p + "ffn_up.bias"] = rng.normal(0, 0.1, FF)
        w[p + "ffn_down.weight"] = rng.normal(0, 0.1, (E, FF))
        w[p + "ffn_down.bias"] = rng.normal(0, 0.1, E)
    w["output_norm.weight"] = 1 + rng.normal(0, 0.1, E)
    w["output_norm.bias"] = rng.normal(0, 0.1, E)
    return {k: v.astype(np.float32) for k, v in w.items()}


def loss_fn(w, tokens):
    x, y = tokens[:, :T], tokens[:, 1:]
    h = w["token_embd.weight"][x] + w["position_embd.weight"][torch.arange(T)]
    for l in range(L):
        p = "blk.%d." % l
        a = F.layer_norm(h, (E,), w[p + "attn_norm.weight"], w[p + "attn_norm.bias"], EPS)
        q, k, v = F.linear(a, w[p + "attn_qkv.weight"], w[p + "attn_qkv.bias"]).split(E, dim=-1)
        q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, E)
        h = h + F.linear(o, w[p + "attn_output.weight"], w[p + "attn_output.bias"])
        m = F.layer_norm(h, (E,), w[p + "ffn_norm.weight"], w[p + "ffn_norm.bias"], EPS)
        u = F.gelu(F.linear(m, w[p + "ffn_up.weight"], w[p + "ffn_up.bias"]), approximate="tanh")
        h = h + F.linear(u, w[p + "ffn_down.weight"], w[p + "ffn_down.bias"])
    h = F.layer_norm(h, (E,), w["output_norm.weight"], w["output_norm.bias"], EPS)
    logits = F.linear(h, w["token_embd.weight"])  # tied
    return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))


def schedule(count):  # optax.warmup_cosine_decay_schedule(0, PEAK, WARMUP, STEPS, END)
    if count < WARMUP:
        return PEAK * count / WARMUP
    t = min(count - WARMUP, STEPS - WARMUP)
    alpha = END / PEAK
    return PEAK * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / (STEPS - WARMUP))) + alpha)


def decays(name):  # the matrices and embeddings; not the biases and LayerNorms
    return name.endswith(".weight") and "norm" not in name


def write_safetensors(path, tensors):
    header, blob = {}, b""
    for name, a in tensors.items():
        dt, st = ("I32", "<i4") if a.dtype.kind == "i" else ("F32", "<f4")
        raw = np.ascontiguousarray(a, dtype=st).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def main():
    rng = np.random.default_rng(1414)
    w0 = weights(rng)
    tokens = rng.integers(0, V, (B, T + 1)).astype(np.int32)
    tok = torch.from_numpy(tokens.astype(np.int64))
    w = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in w0.items()}
    loss = loss_fn(w, tok)
    loss.backward()
    out = {"w/" + k: v for k, v in w0.items()}
    out["tokens"] = tokens
    out["loss"] = np.array([loss.item()], np.float32)
    for k in w0:
        out["grad/" + k] = w[k].grad.numpy().astype(np.float32)

    w = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in w0.items()}
    groups = [{"params": [w[k] for k in w0 if decays(k)], "weight_decay": WD},
              {"params": [w[k] for k in w0 if not decays(k)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=PEAK, betas=BETAS, eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda c: schedule(c) / PEAK)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(w, tok)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(w.values()), CLIP)
        opt.step()
        sched.step()
        losses.append(loss.item())
    out["losses"] = np.array(losses, np.float32)
    os.makedirs(HERE, exist_ok=True)
    write_safetensors(os.path.join(HERE, "gpt2_train.safetensors"), out)
    print("loss %.6f; after %d AdamW steps %.6f" % (out["loss"][0], STEPS, losses[-1]))


if __name__ == "__main__":
    main()
