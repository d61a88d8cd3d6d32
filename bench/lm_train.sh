#!/bin/sh
# Language-model training speed: ryft (bench/lm_train_bench.c, ryft/lm_train.h)
# against PyTorch (bench/peers/lm_train_torch.py: eager, and torch.compile
# when it works) on the same GPT-2s, same threads, in alternating rounds:
#   GPT-2 124M (12 layers, 768, vocabulary 50257), batch 4, context 64 (the
#   configuration llm.c reports for CPUs), and train-lm's small config
#   (4 layers, 128, vocabulary 49152), batch 8, context 64.
#   bench/lm_train.sh          # threads = RYFT_NUM_THREADS or the core count
# PyTorch comes from the package index into a virtualenv (TORCH_VENV, default
# build-bench/torchenv). Prints the CPU, the load, then one key=value line
# per system, config and round: seconds per step, tokens/s, GFLOP/s (6 per
# parameter per token + attention's 12 L T E), peak RSS; then medians over
# the rounds and ryft's ratio to PyTorch's best in each precision.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build-bench}
threads=${RYFT_NUM_THREADS:-$(nproc)}
steps=${STEPS:-3}
export RYFT_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
mkdir -p "$out"
cmake -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out" --target ryft_static -j"$threads" >/dev/null
# what the static library needs (zlib, PCRE2, MPI where the build found them)
libs=$(sed -n 's/^Libs.private: //p' "$out/ryft.pc")
cc -std=c11 -O2 -I"$root/include" "$root/bench/lm_train_bench.c" "$out/libryft.a" $libs -o "$out/lm_train_bench"
venv=${TORCH_VENV:-$out/torchenv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads: $threads"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
torch() { "$venv/bin/python" "$root/bench/peers/lm_train_torch.py" "$@" 2>/dev/null | grep '^system=' || echo "system=torch-failed $*"; }
# rounds alternate the systems, so a slow spell of a shared machine falls on
# all of them: ROUNDS for the small config (default 3), GPT2_ROUNDS for
# GPT-2 124M (default 1, minutes a round)
log="$out/lm_train_runs.txt"
: >"$log"
for cfg in "small 8 64" "gpt2 4 64"; do
  rounds=${ROUNDS:-3}
  [ "${cfg%% *}" = gpt2 ] && rounds=${GPT2_ROUNDS:-1}
  for r in $(seq "$rounds"); do
    echo "round $r of $rounds: $cfg"
    {
      # shellcheck disable=SC2086
      "$out/lm_train_bench" $cfg "$steps" f32
      # shellcheck disable=SC2086
      "$out/lm_train_bench" $cfg "$steps" bf16
      torch $cfg "$steps"
      torch $cfg "$steps" --compile
      torch $cfg "$steps" --bf16 --compile
    } | sed "s/^/round=$r /" | tee -a "$log"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$log" <<'PY'
import statistics, sys
runs = {}  # (config, system) -> {round: fields}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if "step_s" in f:
        runs.setdefault((f["config"], f["system"]), {})[int(f["round"])] = f
def med(cfg, sysname, key):
    r = runs.get((cfg, sysname), {})
    return statistics.median(float(v[key]) for v in r.values()) if r else None
print("medians over rounds (s/step, peak RSS MB) and ryft's speed over PyTorch's best of the same precision")
for cfg in sorted({c for c, _ in runs}, reverse=True):
    for prec, mine, peers in (("f32", "ryft-f32", ["torch-eager-f32", "torch-compile-f32"]),
                              ("bf16", "ryft-bf16", ["torch-compile-bf16"])):
        m = med(cfg, mine, "step_s")
        best = [(med(cfg, p, "step_s"), p) for p in peers if med(cfg, p, "step_s")]
        if m is None or not best:
            continue
        b, bp = min(best)
        # per round: ryft against the best peer of that round
        rounds = sorted(runs[(cfg, mine)])
        per = []
        for r in rounds:
            pr = [float(runs[(cfg, p)][r]["step_s"]) for p in peers if r in runs.get((cfg, p), {})]
            if pr:
                per.append(min(pr) / float(runs[(cfg, mine)][r]["step_s"]))
        rng = "%.2f-%.2fx" % (min(per), max(per)) if per else "-"
        print("%-6s %-4s ryft %.4f s (%s MB), %s %.4f s (%s MB): %.2fx, per round %s" %
              (cfg, prec, m, int(med(cfg, mine, "peak_rss_mb")), bp, b, int(med(cfg, bp, "peak_rss_mb")), b / m, rng))
PY
