# Shell side of ryft's trust rule (src/core/trust.c), for scripts that fetch
# things ryft later loads (tools/fetch-pjrt.sh; any model or data fetcher).
# Source it:  . "$(dirname "$0")/trust.sh"
#
#   ryft_private_dir DIR WHAT   create DIR (and parents) with umask 077, then
#                               ryft_trusted_dir DIR WHAT
#   ryft_trusted_dir DIR WHAT   exit 1 with "refusing WHAT DIR: REASON" on
#                               stderr unless DIR is a real directory (not a
#                               symbolic link) owned by the current user that
#                               group and others cannot write
#
# WHAT names the directory in the message ("the wheel cache").

ryft_trusted_dir() {
  if [ -L "$1" ] || [ ! -d "$1" ]; then
    echo "${0##*/}: refusing $2 $1: not a directory (or a symbolic link)" >&2
    exit 1
  fi
  set -- "$1" "$2" $(stat -c '%u %a' "$1")
  if [ "$3" != "$(id -u)" ]; then
    echo "${0##*/}: refusing $2 $1: owned by uid $3, not by uid $(id -u)" >&2
    exit 1
  fi
  case $4 in
    *[2367]? | *[2367]) echo "${0##*/}: refusing $2 $1: writable by group or others (mode $4)" >&2; exit 1 ;;
  esac
}

ryft_private_dir() {
  (umask 077 && mkdir -p "$1")
  ryft_trusted_dir "$1" "$2"
}
