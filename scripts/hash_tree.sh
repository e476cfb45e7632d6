#!/usr/bin/env bash
# hash_tree.sh ROOT — the box hashes its own files (sha256) and prints one JSON object per line:
#   {"root":"/abs/root","exists":true,"rsync":true}     rsync: whether the box has rsync (for the caller's transport)
#   {"path":"rel/file","bytes":123,"sha256":"..."}      one per regular file
#   {"path":"rel/file","missing":true}                  a requested path that is not a regular file
#   {"done":true,"files":N}                             last line; absent = output was cut short
# Env: RGT_HASH_PATHS  newline-separated paths relative to ROOT (default: every file under ROOT)
#      RGT_HASH_JOBS   parallel sha256sum workers (default: CPU count, at most 8)
# Needs bash 4 + coreutils (+ find/xargs). Symlinks are not followed; .rgt-partial/ is skipped.
set -u
export LC_ALL=C

root=${1:-}
case "$root" in
  "~") root=$HOME ;;
  "~/"*) root=$HOME/${root#"~/"} ;;
esac

JS=
jesc() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  JS=$s
}

has_rsync=false rv=''
if command -v rsync >/dev/null 2>&1; then
  has_rsync=true
  rv=$(rsync --version 2>/dev/null | head -n 1); rv=${rv#*version }; rv=${rv%% *}
  case $rv in *[!0-9.]*|'') rv='' ;; esac
fi

if [ -z "$root" ] || [ ! -d "$root" ]; then
  jesc "$root"
  printf '{"root":"%s","exists":false,"rsync":%s,"rsync_version":"%s"}\n' "$JS" "$has_rsync" "$rv"
  printf '{"done":true,"files":0}\n'
  exit 0
fi
cd -- "$root" || exit 3
jesc "$(pwd -P)"
printf '{"root":"%s","exists":true,"rsync":%s,"rsync_version":"%s"}\n' "$JS" "$has_rsync" "$rv"

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
    p=${p#./}
    if [ -f "$p" ] && [ ! -L "$p" ]; then
      printf '%s\0' "$p" >>"$list"
    else
      jesc "$p"
      printf '{"path":"%s","missing":true}\n' "$JS"
    fi
  done <<<"$RGT_HASH_PATHS"
  while IFS=$'\t' read -r -d '' s n; do
    size[$n]=$s
  done < <(xargs -0 -r stat --printf '%s\t%n\0' -- <"$list" 2>/dev/null)
else
  while IFS=$'\t' read -r -d '' s n; do
    size[$n]=$s
    printf '%s\0' "$n" >>"$list"
  done < <(find . -path ./.rgt-partial -prune -o -type f -printf '%s\t%P\0' 2>/dev/null)
fi

count=0
if sha256sum -z /dev/null >/dev/null 2>&1; then
  while IFS= read -r -d '' rec; do
    h=${rec%%  *}
    n=${rec#*  }
    jesc "$n"
    printf '{"path":"%s","bytes":%s,"sha256":"%s"}\n' "$JS" "${size[$n]:-0}" "$h"
    count=$((count + 1))
  done < <(xargs -0 -r -P "$jobs" -n 32 sha256sum -z -- <"$list" 2>/dev/null)
else
  # old coreutils: names holding a backslash or newline come back escaped behind a leading "\"
  while IFS= read -r rec; do
    esc=0
    case "$rec" in "\\"*) esc=1; rec=${rec#\\} ;; esac
    h=${rec%%  *}
    n=${rec#*  }
    if [ "$esc" = 1 ]; then n=${n//\\n/$'\n'}; n=${n//\\\\/\\}; fi
    jesc "$n"
    printf '{"path":"%s","bytes":%s,"sha256":"%s"}\n' "$JS" "${size[$n]:-0}" "$h"
    count=$((count + 1))
  done < <(xargs -0 -r -P "$jobs" -n 32 sha256sum -- <"$list" 2>/dev/null)
fi
printf '{"done":true,"files":%d}\n' "$count"
