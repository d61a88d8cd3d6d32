"""Turn the RESULT lines of bench/run.sh into bench/RESULTS.md (a ratio table)."""
import sys, collections, datetime, platform

log, threads = sys.argv[1], sys.argv[2]
res = collections.defaultdict(dict)
for line in open(log):
    p = line.split()
    if len(p) == 5 and p[0] == "RESULT":
        res[p[1]][p[2]] = (float(p[3]), p[4])

higher_better = lambda unit: unit in ("GB/s", "GFLOP/s", "steps/s")
print("# Benchmark results\n")
print(f"Produced by `bench/run.sh` (threads = {threads} for every system) on {datetime.date.today()}, "
      f"{platform.processor() or platform.machine()}. The machine is shared with other engineers "
      "compiling at the same time: numbers are noisy; compare ratios taken in the same run.\n")
lim = res.get("memcpy", {}).get("ryft"), res.get("fma-peak-1thread", {}).get("ryft")
if lim[0]:
    print(f"- memcpy bandwidth (read+write): {lim[0][0]:.1f} GB/s")
if lim[1]:
    print(f"- FMA peak measured by the bench, 1 thread: {lim[1][0]:.1f} GFLOP/s "
          f"(x{threads} threads = {lim[1][0]*int(threads):.1f})")
print()
peers = ("jax", "numpy", "torch")
print("| workload | ryft | jax | numpy | torch | ryft/jax | ryft/numpy | ryft/torch | ryft vs limit |")
print("|---|---|---|---|---|---|---|---|---|")
for w in ["gelu-16M", "softmax-4096x1024", "layernorm-4096x1024", "softmax-grad-4096x1024",
          "layernorm-grad-4096x1024", "sgemm-1024^3", "sgemm-512x512x2048",
          "tiny-call", "compile-cold-softmax", "compile-warm-softmax", "compile-cold-layernorm",
          "compile-warm-layernorm", "mlp-train-step", "compile-cold-mlp", "compile-warm-mlp"]:
    r = res.get(w, {})
    if "ryft" not in r:
        continue
    v, unit = r["ryft"]
    cells, ratios = [], []
    for s in peers:
        if s in r:
            cells.append(f"{r[s][0]:.3g} {unit}")
            ratio = v / r[s][0] if higher_better(unit) else r[s][0] / v
            ratios.append(f"{ratio:.2f}x")
        else:
            cells.append("-")
            ratios.append("-")
    limit = "-"
    if unit == "GB/s" and lim[0]:
        limit = f"{100*v/lim[0][0]:.0f}% of memcpy"
    if unit == "GFLOP/s" and lim[1]:
        limit = f"{100*v/(lim[1][0]*int(threads)):.0f}% of FMA peak"
    print(f"| {w} | {v:.3g} {unit} | {' | '.join(cells)} | {' | '.join(ratios)} | {limit} |")
print("\nRatios are ryft's speed over the peer's (>1 = ryft faster; for times, peer time / ryft time).\n")
print("## GEMM candidates (bench/gemm_compare.c, same run)\n")
print("| shape | implementation | GFLOP/s |\n|---|---|---|")
for w in sorted(k for k in res if k.startswith("gemm-")):
    for s, (v, u) in sorted(res[w].items(), key=lambda kv: -kv[1][0]):
        print(f"| {w[5:]} | {s} | {v:.1f} |")
torch_ran = any("torch" in r for r in res.values())
print("\nThe MLP 784-512-512-10 train step (bench/mlp_step.h; forward, backward by value_and_grad, Adam "
      "written with array ops; batch 128) runs through ry_jit with the parameters and Adam moments donated, "
      "and through jax.jit with donate_argnums; cold compile = trace + grad + compile with an empty disk cache, "
      "warm = the same after the in-memory caches are dropped (the disk cache hits: ryft's module cache, JAX's "
      "persistent compilation cache).")
print("\nNot measured: " + ("" if torch_ran else "PyTorch (neither `pip install torch --index-url "
      "https://download.pytorch.org/whl/cpu` nor `pip install torch` finds a wheel from the package index "
      "here); ") + "libxsmm (Debian ships only a static library without a BLAS-style entry we could dlopen).")
