#!/usr/bin/env bash
# prepare_dir.sh DIR CREATE — resolve (and, when CREATE is 1, create) a transfer destination on the box,
# and say whether rsync is here. Prints:
#   DIR=/abs/resolved   (or NODIR=1)
#   RSYNC=1|0 and RSYNCV=<version>
# Exit 41: the directory could not be created (stderr says why).
set -u
d=${1:-}
case "$d" in
  "~" | "~/") d=$HOME ;;
  "~/"*) d=$HOME/${d#"~/"} ;;
esac
if [ "${2:-1}" = 1 ]; then mkdir -p -- "$d" || exit 41; fi
if cd -- "$d" 2>/dev/null; then printf 'DIR=%s\n' "$(pwd -P)"; else echo NODIR=1; fi
if command -v rsync >/dev/null 2>&1; then
  echo RSYNC=1
  v=$(rsync --version 2>/dev/null | head -n 1); v=${v#*version }
  echo "RSYNCV=${v%% *}"
else
  echo RSYNC=0
fi
