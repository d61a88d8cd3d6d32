"""PyTorch side of bench/train_epoch.sh: the model of `ryft train`
(conv3x3(16)-relu-maxpool2-conv3x3(32)-relu-maxpool2-dense128-relu-dense10,
padding 1, LeCun-normal weights (truncated normal, std sqrt(1/fan_in)/.8796, as
Flax/ryft), zero biases), batch 128, torch.optim.Adam with linear warmup over
2% of the steps + cosine decay (peak 3e-3), eager mode, NCHW (PyTorch's native
layout; the flatten order differs from NHWC but the FLOPs do not).
torch.set_num_threads(RYFT_NUM_THREADS). Warm-up: WARMUP_STEPS steps, then one
full timed epoch (468 steps, reshuffled each epoch, loss.item() every step as
ryft reads its loss). Prints `RESULT torch <s/epoch> <peak RSS MB> <mean loss>`."""
import math, os, sys, time

threads = int(os.environ.get("RYFT_NUM_THREADS", "2"))
os.environ.setdefault("OMP_NUM_THREADS", str(threads))
os.environ.setdefault("MKL_NUM_THREADS", str(threads))

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist

BATCH, LR, WARMUP_STEPS = 128, 3e-3, int(os.environ.get("WARMUP_STEPS", "20"))


def lecun_(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        fan_in = m.weight[0].numel()
        nn.init.trunc_normal_(m.weight, 0.0, math.sqrt(1.0 / fan_in) / 0.87962566103423978, -2 * math.sqrt(1.0 / fan_in) / 0.87962566103423978, 2 * math.sqrt(1.0 / fan_in) / 0.87962566103423978)
        nn.init.zeros_(m.bias)


def main():
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    imgs, labs = fmnist.load("train")
    imgs_t = torch.from_numpy(imgs.copy())
    labs_t = torch.from_numpy(labs.astype(np.int64))
    steps = len(imgs) // BATCH
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Linear(128, 10))
    model.apply(lecun_)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    warm = max(steps // 50, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(s - warm, steps - warm) / (steps - warm))))
    lossf = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)

    def run(n):
        perm = torch.randperm(len(imgs_t), generator=g)
        total = 0.0
        for i in range(n):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            x = (imgs_t[idx].float() / 255.0).unsqueeze(1)
            loss = lossf(model(x), labs_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        return total / n

    t0 = time.perf_counter()
    run(WARMUP_STEPS)
    tw = time.perf_counter() - t0
    t0 = time.perf_counter()
    mean_loss = run(steps)
    t = time.perf_counter() - t0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, warm-up {WARMUP_STEPS} steps {tw:.2f} s", file=sys.stderr)
    print(f"RESULT torch {t:.3f} {fmnist.peak_rss_mb():.1f} {mean_loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
