#!/usr/bin/env bash
# resolve_dirs.sh DIR... — where each directory really is on the box (symlinks resolved).
# Prints one line per directory that exists: WD<TAB><index><TAB><absolute path>. Always exits 0.
set -u
i=0
for d in "$@"; do
  case "$d" in
    "~" | "~/") d=$HOME ;;
    "~/"*) d=$HOME/${d#"~/"} ;;
  esac
  if p=$(cd -P -- "$d" 2>/dev/null && pwd); then printf 'WD\t%s\t%s\n' "$i" "$p"; fi
  i=$((i + 1))
done
exit 0
