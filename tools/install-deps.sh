#!/bin/sh
# Install what ryft needs to build and test on Debian, only if it is missing.
set -e
need=""
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v cmake >/dev/null 2>&1 || need="$need cmake"
command -v make >/dev/null 2>&1 || need="$need make"
# zlib headers: gzip-compressed IDX datasets (Fashion-MNIST)
[ -f /usr/include/zlib.h ] || need="$need zlib1g-dev"
# PCRE2 (8-bit, with pkg-config): the tokenizer's pre-tokenizer regexes
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
[ -f /usr/include/pcre2.h ] || need="$need libpcre2-dev"
# tools/fetch-pjrt.sh fetches the XLA CPU plugin wheel with pip
command -v python3 >/dev/null 2>&1 || need="$need python3"
python3 -m pip --version >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || need="$need python3-pip"
# clang's sanitizer and libFuzzer runtimes (the sanitizer build and the fuzzer)
if [ -n "${RYFT_NEED_FUZZ:-}" ]; then
  command -v clang >/dev/null 2>&1 || need="$need clang"
fi
if [ -n "${RYFT_NEED_FUZZ:-}" ] && ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  need="$need libclang-rt-dev"
fi
# the dataset of `make run` / `ryft train` (Debian's Fashion-MNIST), unless
# RYFT_DATA points elsewhere or RYFT_NO_DATASET is set
if [ -z "${RYFT_NO_DATASET:-}" ] && [ -z "${RYFT_DATA:-}" ] && \
   [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  need="$need dataset-fashion-mnist"
fi
# the English text of `ryft train-lm` (Debian's fortunes: 2.5 MB of
# fortune-mod's BSD-licensed quotations), unless RYFT_TEXT points elsewhere
# or RYFT_NO_DATASET is set
if [ -z "${RYFT_NO_DATASET:-}" ] && [ -z "${RYFT_TEXT:-}" ] && \
   [ ! -e /usr/share/games/fortunes/literature ]; then
  need="$need fortunes"
fi
# gnuplot draws `ryft train`'s loss and accuracy plot (loss.png), part of the
# main job's output, unless RYFT_NO_PLOT is set
if [ -z "${RYFT_NO_PLOT:-}" ]; then
  command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
fi
# Open MPI: collectives across processes and hosts (ryft/dist.h) and the
# tests that run them under mpirun
command -v mpirun >/dev/null 2>&1 || need="$need openmpi-bin"
[ -f /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] || [ -f /usr/include/mpi.h ] || \
  ls /usr/lib/*/openmpi/include/mpi.h >/dev/null 2>&1 || need="$need libopenmpi-dev"
# iproute2: the test that runs two MPI ranks on two "hosts" (network
# namespaces joined by a veth pair)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need="$need iproute2"
# pkg-config: the install test builds a program against an installed ryft
command -v pkg-config >/dev/null 2>&1 || need="$need pkgconf"
[ -z "$need" ] && exit 0
echo "install-deps: installing$need" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
