"""Turn the RESULT lines of bench/run.sh into bench/RESULTS.md (a ratio table).

    report.py LOG THREADS [OLD_RESULTS_MD]

With OLD_RESULTS_MD, everything in it from the KEEP marker line on (sections
written by hand about other runs) is copied after the generated part."""
import sys, collections, datetime, platform

KEEP = "<!-- bench/report.py keeps everything below this line: sections written by hand -->"
log, threads = sys.argv[1], sys.argv[2]
old = sys.argv[3] if len(sys.argv) > 3 else None
res = collections.defaultdict(dict)
machine = []
for line in open(log):
    p = line.split()
    if len(p) == 5 and p[0] == "RESULT":
        res[p[1]][p[2]] = (float(p[3]), p[4])
    if line.startswith("MACHINE "):
        machine.append(line[len("MACHINE "):].strip())

higher_better = lambda unit: unit in ("GB/s", "GFLOP/s", "steps/s")
print("# Benchmark results\n")
print(f"Produced by `bench/run.sh` (threads = {threads} for every system) on {datetime.date.today()}, "
      f"{platform.processor() or platform.machine()}. The machine is shared with other engineers "
      "compiling at the same time: numbers are noisy; compare ratios taken in the same run.\n")
if machine:
    print("Where it ran (bench/run.sh prints this first):\n")
    print("\n".join(f"- {m}" for m in machine) + "\n")
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
          "layernorm-grad-4096x1024", "sgemm-1024^3", "sgemm-512x512x2048", "bgemm-1024^3",
          "tiny-call", "first-call-cold-softmax", "first-call-cold-sync-softmax", "compile-cold-softmax",
          "compile-warm-softmax", "first-call-cold-layernorm", "first-call-cold-sync-layernorm",
          "compile-cold-layernorm", "compile-warm-layernorm", "first-call-cold-gelu", "first-call-cold-sync-gelu",
          "compile-cold-gelu", "compile-warm-gelu", "mlp-train-step", "mlp-train-step-bf16", "first-call-cold-mlp", "compile-cold-mlp",
          "compile-warm-mlp"]:
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
    if w == "mlp-train-step-bf16" and "mlp-train-step-bf16-vs-f32" in res:
        limit = f"{res['mlp-train-step-bf16-vs-f32']['ryft'][0]:.2f}x the f32 step"
    if unit == "GB/s" and lim[0]:
        limit = f"{100*v/lim[0][0]:.0f}% of memcpy"
    if unit == "GFLOP/s" and lim[1]:
        limit = f"{100*v/(lim[1][0]*int(threads)):.0f}% of FMA peak"
    if w == "bgemm-1024^3":  # bf16 operands, f32 sums: against ryft's f32 GEMM and f64 products
        f32 = res.get("sgemm-1024^3", {}).get("ryft")
        e1 = res.get("bgemm-1024^3-err-vs-f64", {}).get("ryft")
        e2 = res.get("bgemm-1024^3-err-vs-bf16-f64", {}).get("ryft")
        limit = (f"{v / f32[0]:.2f}x ryft's f32 sgemm" if f32 else "?") + \
            (f"; max error {e1[0]:.2g} of max abs vs the f64 product of the f32 operands, {e2[0]:.2g} of the bf16 ones"
             if e1 and e2 else "")
    print(f"| {w} | {v:.3g} {unit} | {' | '.join(cells)} | {' | '.join(ratios)} | {limit} |")
print("\nRatios are ryft's speed over the peer's (>1 = ryft faster; for times, peer time / ryft time).")
print("\nfirst-call-cold: compile + first call of a fresh program with empty caches; ryft's module compiles "
      "in the background meanwhile (the default) and the call runs node by node in the interpreter's kernels, "
      "JAX's is trace + compile + run. first-call-cold-sync: ryft with RYFT_COMPILE_SYNC=1 (cc before the call). "
      "compile-cold / -warm: ryft's compile alone (RYFT_COMPILE_SYNC=1) with an empty / filled disk cache, JAX's "
      "lower + compile and an in-memory hit.\n")
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

pj = {k: v for k, v in res.items() if any(s.startswith("pjrt") or s == "cpu" for s in v)}
if pj:
    step = res.get("mlp-train-step", {})
    print("\n## MLP train step through PJRT / XLA:CPU (bench/pjrt_bench.c, same run)\n")
    print("The `bench/mlp_step.h` step (784-512-512-10, batch 128, forward, `ry_value_and_grad`, Adam) as one ryft "
          "graph, run by ryft's cpu backend and by XLA through ryft's PJRT backend (the `xla-cpu-pjrt` plugin of "
          "`tools/fetch-pjrt.sh`), next to `jax.jit` of the same step. Every loop feeds the state back and, except "
          "*copying*, donates the parameters and Adam moments. Same run as the tables above, on the same "
          "shared, noisy machine: compare within the table.\n")
    print("| system | steps/s | ms/step | over JAX |\n|---|---|---|---|")
    jax_v = step.get("jax", (None,))[0]
    for sysname, label in (("cpu", "ryft cpu backend (`ry_execute_donated`)"),
                           ("ryft", "ryft cpu backend through `ry_jit` (ryft_bench, table above)"),
                           ("pjrt-copy", "ryft → PJRT, copying: host arrays in and out every step"),
                           ("pjrt-resident", "ryft → PJRT, device-resident: `ry_pjrt_put` once, outputs stay on "
                                             "the device, state donated"),
                           ("jax", "JAX `jax.jit`, `donate_argnums` (XLA:CPU)")):
        if sysname in step:
            v = step[sysname][0]
            ratio = f"{v / jax_v:.2f}x" if jax_v else "-"
            print(f"| {label} | {v:.4g} | {1e3 / v:.3g} | {ratio} |")
    extra = []
    t = res.get("mlp-step-transfers-only", {}).get("pjrt-copy")
    if t:
        extra.append(f"- the copies alone (a program returning its inputs, host arrays in and out): {t[0]:.3g} ms/step")
    g = res.get("graph-to-executable-mlp", {})
    if "pjrt" in g:
        e = res.get("emit-stablehlo-mlp", {}).get("pjrt", (0,))[0]
        line = f"- graph → loaded executable: PJRT {g['pjrt'][0]:.0f} ms (StableHLO emission {e:.2g} ms of it)"
        if "cpu" in g:
            hit = " (a hit in ryft's on-disk module cache, filled by ryft_bench earlier in the run)" \
                if g["cpu"][0] < 100 else ""
            line += f", ryft cpu {g['cpu'][0]:.0f} ms{hit}"
        j = res.get("compile-cold-mlp", {}).get("jax")
        if j:
            line += f", JAX trace + lower + compile {j[0]:.0f} ms"
        extra.append(line)
    sp = res.get("mlp-train-step-spmd2", {}).get("pjrt")
    if sp:
        extra.append(f"- data parallel over 2 CPU devices (`ry_shard`, SPMD, host arrays): {sp[0]:.3g} steps/s")
    if extra:
        print()
        print("\n".join(extra))
if old:
    try:
        text = open(old).read()
    except OSError:
        text = ""
    if KEEP in text:
        print("\n" + text[text.index(KEEP):].rstrip("\n"))
