#!/bin/sh
# Data-parallel `ryft train` over MPI ranks (issue 16, item 2): steps/s of the
# Fashion-MNIST CNN (global batch 128) in one process of 1 and of 2 threads,
# and in mpirun -np 2 with 1 thread per rank, with the communication time per
# step the ranks report (ry_dist_comm_seconds: waiting for the other rank
# included). Epoch 1 is the warm-up (it includes the JIT compile of the train
# step); epoch 2's training time is the number. The configurations run
# interleaved ROUNDS times and the best round of each is kept (the machine is
# shared); prints the load, the CPU and a markdown table.
#   bench/dist_train.sh        # LIMIT_TRAIN (default 16384 examples = 128 steps), ROUNDS (3)
set -e
# $root, $tmp, mpirun as root; MPIRUN_FLAGS adds mpirun options
. "$(dirname "$0")/mpi_common.sh"
ryft=${RYFT_BIN:-$root/build/ryft}
limit=${LIMIT_TRAIN:-16384}
rounds=${ROUNDS:-3}
export RYFT_DATA=${RYFT_DATA:-/usr/share/datasets/fashion-mnist}
args="train --epochs 2 --limit-train $limit --limit-test 500 --no-plot --data $RYFT_DATA"
# "epoch 2/2: train loss ..., test accuracy ...% (12.3 s, 38.0 steps/s)"
rate() { sed -n 's/^epoch 2\/2: .*, \([0-9.]*\) steps\/s)$/\1/p' "$1"; }
comm() { awk '/^epoch 2\/2: /{e=1} e && /communication:/{print $2; exit}' "$1"; }
best() { sort -g | tail -n 1; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
for r in $(seq "$rounds"); do
  RYFT_NUM_THREADS=1 "$ryft" $args --out "$tmp/a" >"$tmp/a$r.out"
  RYFT_NUM_THREADS=2 "$ryft" $args --out "$tmp/b" >"$tmp/b$r.out"
  mpirun -np 2 -x RYFT_NUM_THREADS=1 ${MPIRUN_FLAGS:-} \
    "$ryft" $args --out "$tmp/c" >"$tmp/c$r.out"
  rate "$tmp/a$r.out" >>"$tmp/a.rates"; rate "$tmp/b$r.out" >>"$tmp/b.rates"
  echo "$(rate "$tmp/c$r.out") $(comm "$tmp/c$r.out")" >>"$tmp/c.rates"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
r1=$(best <"$tmp/a.rates"); r2=$(best <"$tmp/b.rates")
c=$(sort -g "$tmp/c.rates" | tail -n 1); r3=${c% *}; c3=${c#* }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
echo "| configuration | steps/s (global batch 128, best of $rounds) | vs 1 process, 1 thread | communication per step |"
echo "|---|---|---|---|"
echo "| 1 process, 1 thread | $r1 | 1.00x | - |"
echo "| 1 process, 2 threads | $r2 | $(ratio "$r2" "$r1")x | - |"
echo "| mpirun -np 2, 1 thread per rank | $r3 | $(ratio "$r3" "$r1")x | $c3 ms |"
echo "all rounds (steps/s): 1 thread $(tr '\n' ' ' <"$tmp/a.rates"); 2 threads $(tr '\n' ' ' <"$tmp/b.rates"); 2 ranks (steps/s, comm ms) $(tr '\n' ' ' <"$tmp/c.rates")"
