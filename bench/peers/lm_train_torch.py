"""Training speed of the same GPT-2 in PyTorch (eager, or torch.compile with
--compile; f32, or bf16 autocast with --bf16) for bench/lm_train.sh: fixed
random tokens, AdamW with the decay mask and clipping of ryft's trainer, the
first step timed apart, then STEPS timed updates.

    python lm_train_torch.py small|gpt2 BATCH CTX STEPS [--compile] [--bf16]"""
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(s, E, H):
        super().__init__()
        s.H = H
        s.ln1, s.ln2 = nn.LayerNorm(E, eps=1e-5), nn.LayerNorm(E, eps=1e-5)
        s.qkv, s.proj = nn.Linear(E, 3 * E), nn.Linear(E, E)
        s.up, s.down = nn.Linear(E, 4 * E), nn.Linear(4 * E, E)

    def forward(s, x):
        B, T, E = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(E, dim=-1)
        q, k, v = (t.view(B, T, s.H, E // s.H).transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, E)
        x = x + s.proj(o)
        return x + s.down(F.gelu(s.up(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, L, E, H, V, P):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, E), nn.Embedding(P, E)
        s.blocks = nn.ModuleList(Block(E, H) for _ in range(L))
        s.lnf = nn.LayerNorm(E, eps=1e-5)

    def forward(s, x, y):
        h = s.wte(x) + s.wpe(torch.arange(x.shape[1]))
        for b in s.blocks:
            h = b(h)
        logits = F.linear(s.lnf(h), s.wte.weight)  # tied
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))


def main():
    cfg, B, T, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    comp, bf16 = "--compile" in sys.argv, "--bf16" in sys.argv
    L, E, H, V, P = (12, 768, 12, 50257, 1024) if cfg == "gpt2" else (4, 128, 4, 49152, 256)
    torch.manual_seed(0)
    m = GPT(L, E, H, V, P)
    for n, p in m.named_parameters():  # GPT-2's initialization, as ry_lm_init_gpt2
        if p.dim() == 2:
            std = 0.02 / math.sqrt(2 * L) if n.endswith(("proj.weight", "down.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)
        elif n.endswith("bias"):
            nn.init.zeros_(p)
    decay = [p for n, p in m.named_parameters() if p.dim() == 2]
    rest = [p for n, p in m.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    idx = (torch.arange(B * (T + 1), dtype=torch.int64) * 2654435761) % V
    tok = idx.view(B, T + 1)
    x, y = tok[:, :T], tok[:, 1:]
    fwd = torch.compile(m) if comp else m

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    per = (time.perf_counter() - t0) / steps
    P_ = sum(p.numel() for p in m.parameters())
    tokens = B * T
    flop = 6 * P_ * tokens + 12 * L * T * E * tokens
    name = "torch-" + ("compile" if comp else "eager") + ("-bf16" if bf16 else "-f32")
    print("system=%s config=%s batch=%d ctx=%d vocab=%d params=%d first_step_s=%.2f step_s=%.4f tokens_per_s=%.1f "
          "gflop_per_step=%.1f gflops=%.1f peak_rss_mb=%.0f loss=%.4f threads=%d torch=%s"
          % (name, cfg, B, T, V, P_, first, per, tokens / per, flop / 1e9, flop / per / 1e9,
             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, loss, torch.get_num_threads(), torch.__version__))


if __name__ == "__main__":
    main()
