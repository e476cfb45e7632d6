#!/usr/bin/env bash
# hash_tree.sh ROOT — the box lists and hashes its own files. Output is a stream of records, every field
# NUL-terminated, so that no file name (any byte but "/" and NUL) can break it:
#   RGT-HASH-1                                       the start mark (a chatty login shell may print before it)
#   R exists(0|1) rsync(0|1) rsync_version root     first record: the root as resolved here
#   Z bytes path                                     a regular file (its hash comes in an H or X record)
#   H sha256 path                                    the hash of a listed file
#   X "sha256  path"... ""                           hashes as sha256sum -z writes them, up to an empty field
#   F bytes sha256 path                              a regular file with its hash (older script versions)
#   L path target                                    a symbolic link (never followed)
#   O type path                                      something else (fifo, socket, device): not carried
#   E path                                           listed but could not be read/hashed (also: a Z without a hash)
#   M path                                           a requested path that is not a regular file
#   Y mark                                           the listing is complete (Z, L, O, M records all sent);
#                                                    only with RGT_HASH_MARK set, whose value it carries
#   S manifest                                       the content of ROOT.rgt-manifest.json beside ROOT, if any
#   D count                                          last record (files listed); absent = the output was cut short
# Env: RGT_HASH_PATHS  paths relative to ROOT, one a line, "\" and newline escaped as \\ and \n
#                      (default: every file under ROOT)
#      RGT_HASH_JOBS   parallel sha256sum workers (default: CPU count, at most 8)
#      RGT_HASH_MARK   a token (hex) the caller chose: sent in a Y record between the listing and the
#                      hashes, so the caller can start moving files while they are hashed
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

list=$(mktemp "${TMPDIR:-/tmp}/rgt-hash.XXXXXX") || exit 3
trap 'rm -f -- "$list" "$list".*' EXIT

# Z bytes path per listed file straight from find/stat; the reader pairs them with the H records, and a
# listed file without a hash is one that could not be read (no per-file work in bash: 20,000 files cost
# what find and sha256sum cost)
if [ -n "${RGT_HASH_PATHS:-}" ]; then
  exec 3>"$list"
  while IFS= read -r p; do
    [ -z "$p" ] && continue
    printf -v p '%b' "$p"
    p=${p#./}
    if [ -f "$p" ] && [ ! -L "$p" ]; then
      printf '%s\0' "$p" >&3
    else
      printf 'M\000%s\000' "$p"
    fi
  done <<<"$RGT_HASH_PATHS"
  exec 3>&-
  xargs -0 -r stat --printf 'Z\0%s\0%n\0' -- <"$list" 2>/dev/null
else
  find . -name .rgt-partial -prune -o -type f -printf 'Z\0%s\0%P\0' -fprintf "$list" '%P\0' 2>/dev/null
  find . -name .rgt-partial -prune -o -type l -printf 'L\0%P\0%l\0' 2>/dev/null
  find . -name .rgt-partial -prune -o ! -type f ! -type l ! -type d -printf 'O\0%y\0%P\0' 2>/dev/null
fi

case ${RGT_HASH_MARK:-} in
  *[!0-9a-f]*|'') ;;
  *) printf 'Y\000%s\000' "$RGT_HASH_MARK" ;;
esac

count=$(tr -cd '\000' <"$list" | wc -c)
# batch size: a few files per worker when they are few (big files hash side by side, one per core),
# large batches when they are many (one sha256sum start per few hundred files)
per=$(( (count + jobs * 4 - 1) / (jobs * 4) ))
[ "$per" -lt 1 ] && per=1
[ "$per" -gt 512 ] && per=512
# every worker writes its own file: parallel writers into one pipe could interleave inside a record
if sha256sum -z /dev/null >/dev/null 2>&1; then
  # X, then sha256sum -z's own "hash  name" fields, then an empty field
  xargs -0 -r -P "$jobs" -n "$per" sh -c 'exec sha256sum -z -- "$@" >>"$0.$$"' "$list" <"$list" 2>/dev/null
  printf 'X\000'
  for o in "$list".*; do [ -f "$o" ] && cat -- "$o"; done
  printf '\000'
else
  # old coreutils: names holding a backslash or newline come back escaped behind a leading "\"
  xargs -0 -r -P "$jobs" -n "$per" sh -c 'exec sha256sum -- "$@" >>"$0.$$"' "$list" <"$list" 2>/dev/null
  for o in "$list".*; do [ -f "$o" ] && cat -- "$o"; done | while IFS= read -r rec; do
    esc=0
    case "$rec" in "\\"*) esc=1; rec=${rec#\\} ;; esac
    n=${rec#*  }
    if [ "$esc" = 1 ]; then n=${n//\\n/$'\n'}; n=${n//\\\\/\\}; fi
    printf 'H\000%s\000%s\000' "${rec%%  *}" "$n"
  done
fi
printf 'D\000%d\000' "$count"
