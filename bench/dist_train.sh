#!/bin/sh
# Data-parallel `ryft train` over MPI ranks (issue 16, item 2): steps/s of the
# Fashion-MNIST CNN (batch 128) in one process of 1 and of 2 threads, and in
# mpirun -np 2 of 1 thread per rank, with the communication time per step the
# ranks report (ry_dist_comm_seconds: waiting for the other rank included).
# Epoch 1 is the warm-up (it includes the JIT compile of the train step);
# epoch 2's training time is the number. Prints a markdown table.
#   bench/dist_train.sh        # LIMIT_TRAIN (default 16384 examples = 128 steps)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
ryft=${RYFT_BIN:-$root/build/ryft}
limit=${LIMIT_TRAIN:-16384}
export RYFT_DATA=${RYFT_DATA:-/usr/share/datasets/fashion-mnist}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args="train --epochs 2 --limit-train $limit --limit-test 500 --no-plot --data $RYFT_DATA"
# "epoch 2/2: train loss ..., test accuracy ...% (12.3 s, 38.0 steps/s)"
rate() { sed -n 's/^epoch 2\/2: .*, \([0-9.]*\) steps\/s)$/\1/p' "$1"; }
comm() { awk '/^epoch 2\/2: /{e=1} e && /communication:/{print $2; exit}' "$1"; }

RYFT_NUM_THREADS=1 "$ryft" $args --out "$tmp/a" >"$tmp/a.out"
RYFT_NUM_THREADS=2 "$ryft" $args --out "$tmp/b" >"$tmp/b.out"
mpirun -np 2 --oversubscribe --mca btl_vader_single_copy_mechanism none -x RYFT_NUM_THREADS=1 \
  "$ryft" $args --out "$tmp/c" >"$tmp/c.out"
r1=$(rate "$tmp/a.out"); r2=$(rate "$tmp/b.out"); r3=$(rate "$tmp/c.out"); c3=$(comm "$tmp/c.out")
echo "| configuration | steps/s (global batch 128) | vs 1 process, 1 thread | communication per step |"
echo "|---|---|---|---|"
echo "| 1 process, 1 thread | $r1 | 1.00x | - |"
echo "| 1 process, 2 threads | $r2 | $(echo "$r2 $r1" | awk '{printf "%.2f", $1/$2}')x | - |"
echo "| mpirun -np 2, 1 thread per rank | $r3 | $(echo "$r3 $r1" | awk '{printf "%.2f", $1/$2}')x | $c3 ms |"
