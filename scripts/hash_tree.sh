#!/usr/bin/env bash
# hash_tree.sh ROOT — the box lists and hashes its own files. Output is a stream of records, every field
# NUL-terminated, so that no file name (any byte but "/" and NUL) can break it:
#   RGT-HASH-1                                       the start mark (a chatty login shell may print before it)
#   R exists(0|1) rsync(0|1) rsync_version root     first record: the root as resolved here
#   F bytes sha256 path                              a regular file
#   L path target                                    a symbolic link (never followed)
#   O type path                                      something else (fifo, socket, device): not carried
#   E path                                           listed but could not be read/hashed
#   M path                                           a requested path that is not a regular file
#   S manifest                                       the content of ROOT.rgt-manifest.json beside ROOT, if any
#   D count                                          last record; absent = the output was cut short
# Env: RGT_HASH_PATHS  paths relative to ROOT, one a line, "\" and newline escaped as \\ and \n
#                      (default: every file under ROOT)
#      RGT_HASH_JOBS   parallel sha256sum workers (default: CPU count, at most 8)
# Needs bash 4 + coreutils + findutils. .rgt-partial/ dirs are skipped.
set -u
export LC_ALL=C

root=${1:-}
case "$root" in
  "~") root=$HOME ;;
  "~/"*) root=$HOME/${root#"~/"} ;;
esac

has_rsync=0 rv=''
if command -v rsync >/dev/null 2>&1; then
  has_rsync=1
  rv=$(rsync --version 2>/dev/null | head -n 1); rv=${rv#*version }; rv=${rv%% *}
  case $rv in *[!0-9.]*|'') rv='' ;; esac
fi

printf 'RGT-HASH-1\0'
if [ -z "$root" ] || [ ! -d "$root" ]; then
  printf 'R\0000\000%s\000%s\000%s\000' "$has_rsync" "$rv" "$root"
  printf 'D\0000\000'
  exit 0
fi
cd -- "$root" || exit 3
here=$(pwd -P)
printf 'R\0001\000%s\000%s\000%s\000' "$has_rsync" "$rv" "$here"
if [ -f "$here.rgt-manifest.json" ] && [ ! -L "$here.rgt-manifest.json" ]; then
  printf 'S\000'; head -c 67108864 -- "$here.rgt-manifest.json" | tr -d '\000'; printf '\000'
fi

jobs=${RGT_HASH_JOBS:-}
if [ -z "$jobs" ]; then
  jobs=$(nproc 2>/dev/null || echo 2)
  [ "$jobs" -gt 8 ] 2>/dev/null && jobs=8
fi

declare -A size=()
list=$(mktemp "${TMPDIR:-/tmp}/rgt-hash.XXXXXX") || exit 3
trap 'rm -f -- "$list"' EXIT

if [ -n "${RGT_HASH_PATHS:-}" ]; then
  while IFS= read -r p; do
    [ -z "$p" ] && continue
    printf -v p '%b' "$p"
    p=${p#./}
    if [ -f "$p" ] && [ ! -L "$p" ]; then
      printf '%s\0' "$p" >>"$list"
    else
      printf 'M\000%s\000' "$p"
    fi
  done <<<"$RGT_HASH_PATHS"
  while IFS= read -r -d '' rec; do
    size[${rec#* }]=${rec%% *}
  done < <(xargs -0 -r stat --printf '%s %n\0' -- <"$list" 2>/dev/null)
else
  while IFS= read -r -d '' rec; do
    n=${rec#* }
    size[$n]=${rec%% *}
    printf '%s\0' "$n" >>"$list"
  done < <(find . -name .rgt-partial -prune -o -type f -printf '%s %P\0' 2>/dev/null)
  find . -name .rgt-partial -prune -o -type l -printf 'L\0%P\0%l\0' 2>/dev/null
  find . -name .rgt-partial -prune -o ! -type f ! -type l ! -type d -printf 'O\0%y\0%P\0' 2>/dev/null
fi

declare -A hashed=()
count=0
emit() { # hash name
  [ -n "${size[$2]+x}" ] || return 0
  printf 'F\000%s\000%s\000%s\000' "${size[$2]}" "$1" "$2"
  hashed[$2]=1
  count=$((count + 1))
}
if sha256sum -z /dev/null >/dev/null 2>&1; then
  while IFS= read -r -d '' rec; do
    emit "${rec%%  *}" "${rec#*  }"
  done < <(xargs -0 -r -P "$jobs" -n 32 sha256sum -z -- <"$list" 2>/dev/null)
else
  # old coreutils: names holding a backslash or newline come back escaped behind a leading "\"
  while IFS= read -r rec; do
    esc=0
    case "$rec" in "\\"*) esc=1; rec=${rec#\\} ;; esac
    n=${rec#*  }
    if [ "$esc" = 1 ]; then n=${n//\\n/$'\n'}; n=${n//\\\\/\\}; fi
    emit "${rec%%  *}" "$n"
  done < <(xargs -0 -r -P "$jobs" -n 32 sha256sum -- <"$list" 2>/dev/null)
fi
# every listed file is accounted for: one that could not be hashed is said so, never left out
for n in "${!size[@]}"; do
  [ -n "${hashed[$n]+x}" ] || printf 'E\000%s\000' "$n"
done
printf 'D\000%d\000' "$count"
