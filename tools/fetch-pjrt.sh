#!/bin/sh
# Fetch the PJRT C API header and the XLA CPU plugin from the package index.
#
#   tools/fetch-pjrt.sh DEST_DIR
#
# Downloads the xla-cpu-pjrt wheel with pip into a cache directory (default
# ~/.cache/ryft/pjrt, override with RYFT_PJRT_CACHE), checks its sha256, and
# unpacks xla_cpu_pjrt.so and include/pjrt_c_api.h into DEST_DIR:
#
#   DEST_DIR/xla_cpu_pjrt.so
#   DEST_DIR/include/pjrt_c_api.h
#
# Nothing of PJRT lives in the repository; CMake's RYFT_PJRT option builds
# the PJRT backend when DEST_DIR/include/pjrt_c_api.h exists.
#
# ryft later dlopens DEST_DIR/xla_cpu_pjrt.so, so whoever can write DEST_DIR
# or the cache chooses code that runs. Both are created without group/other
# write (the cache 0700), and either one that another user owns or that group
# or others may write is refused, as ryft's compile cache refuses one. The
# wheel is copied into a private temporary directory and its sha256 checked
# there, so the copy that is unpacked is the one that was checked.
set -eu

PKG=xla-cpu-pjrt
VERSION=0.0.1
WHEEL=xla_cpu_pjrt-0.0.1-py3-none-manylinux_2_27_x86_64.whl
SHA256=55837b6b7b47daa717f2d9a5a03563ea0ceaa338d06a81a1e2d3f060d960decc
INNER=xla_plugins/xla_cpu_pjrt

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
cache=${RYFT_PJRT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ryft/pjrt}

# refuse DIR (exit 1) unless it is a real directory of ours that group and
# others cannot write
trusted() {
  if [ -L "$1" ] || [ ! -d "$1" ]; then
    echo "fetch-pjrt: refusing $2 $1: not a directory (or a symbolic link)" >&2
    exit 1
  fi
  set -- "$1" "$2" $(stat -c '%u %a' "$1")
  if [ "$3" != "$(id -u)" ]; then
    echo "fetch-pjrt: refusing $2 $1: owned by uid $3, not by uid $(id -u)" >&2
    exit 1
  fi
  case $4 in
    *[2367]? | *[2367]) echo "fetch-pjrt: refusing $2 $1: writable by group or others (mode $4)" >&2; exit 1 ;;
  esac
}

if [ -d "$dest" ]; then trusted "$dest" "the destination"; fi
if [ -f "$dest/xla_cpu_pjrt.so" ] && [ -f "$dest/include/pjrt_c_api.h" ] && [ -f "$dest/.sha256" ] &&
   [ "$(cat "$dest/.sha256")" = "$SHA256" ]; then
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "fetch-pjrt: the $PKG wheel exists only for Linux x86-64; skipping" >&2; exit 1 ;;
esac

(umask 077 && mkdir -p "$cache")
trusted "$cache" "the wheel cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
whl="$cache/$WHEEL"
check() { [ -f "$1" ] && echo "$SHA256  $1" | sha256sum -c --status -; }
if ! check "$whl"; then
  rm -f "$whl"
  PIP=""
  for p in "python3 -m pip" pip3 pip; do
    if $p --version >/dev/null 2>&1; then PIP=$p; break; fi
  done
  if [ -z "$PIP" ]; then echo "fetch-pjrt: pip not found (install python3-pip)" >&2; exit 1; fi
  echo "fetch-pjrt: downloading $PKG==$VERSION (about 64 MB) into $cache" >&2
  $PIP download --quiet --no-deps --only-binary=:all: --platform manylinux_2_27_x86_64 \
    --python-version 3 --implementation py "$PKG==$VERSION" -d "$cache" >&2
  if ! check "$whl"; then
    echo "fetch-pjrt: sha256 of $whl does not match $SHA256" >&2
    exit 1
  fi
fi

cp "$whl" "$tmp/$WHEEL"
if ! check "$tmp/$WHEEL"; then
  echo "fetch-pjrt: sha256 of $whl changed while it was copied" >&2
  exit 1
fi
python3 - "$tmp/$WHEEL" "$tmp" "$INNER" <<'EOF'
import sys, zipfile
whl, out, inner = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    for name in (inner + "/xla_cpu_pjrt.so", inner + "/include/pjrt_c_api.h"):
        z.extract(name, out)
EOF
(umask 022 && mkdir -p "$dest/include")
trusted "$dest" "the destination"
mv "$tmp/$INNER/xla_cpu_pjrt.so" "$dest/xla_cpu_pjrt.so"
mv "$tmp/$INNER/include/pjrt_c_api.h" "$dest/include/pjrt_c_api.h"
echo "$SHA256" > "$dest/.sha256"
echo "fetch-pjrt: $dest/xla_cpu_pjrt.so and $dest/include/pjrt_c_api.h ready" >&2
