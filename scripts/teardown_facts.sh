#!/usr/bin/env bash
# rgt: what the teardown gate needs from the box, in one round trip (tab-separated lines):
#   HOME <home>           the login user's home, to compare "~/x" receipt roots with absolute paths
#   OURS <dir>            a run state directory of this server that holds something
#   CKPT <abs path>       a checkpoint file under a scanned dir (at most 200, caches skipped)
#   CUT  <why>            the scan stopped early (time or count); what was listed is still true
#   DONE                  last line; absent = the output was cut short
#   usage: bash teardown_facts.sh [--state DIR]... [--scan DIR]...
# DIR may start with ~ or $HOME. Reads only; changes nothing.
set -u
# rgt: include lib/common.sh

states=() scans=()
while [ $# -gt 0 ]; do
  case "$1" in
    --state) states+=("${2:-}"); shift 2 ;;
    --scan) scans+=("${2:-}"); shift 2 ;;
    *) shift ;;
  esac
done

home_of() {
  case "$1" in
    "~") printf '%s' "$HOME" ;;
    "~/"*) printf '%s/%s' "$HOME" "${1#"~/"}" ;;
    '$HOME') printf '%s' "$HOME" ;;
    '$HOME/'*) printf '%s/%s' "$HOME" "${1#'$HOME/'}" ;;
    *) printf '%s' "$1" ;;
  esac
}

tab HOME "$HOME"
for d in "${states[@]}"; do
  d=$(home_of "$d")
  [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ] && tab OURS "$d"
done

MAX=200
n=0
for d in "${scans[@]}"; do
  d=$(home_of "$d")
  [ -d "$d" ] || continue
  # bounded: 15 s and 6 levels per dir; caches, environments and our own state are not results
  while IFS= read -r f; do
    [ "$f" = "//timeout" ] && { tab CUT time; continue; }
    n=$((n + 1))
    [ "$n" -le "$MAX" ] || { tab CUT count; break 2; }
    tab CKPT "$f"
  done < <(timeout 15 find "$d" -maxdepth 6 \
      \( -name .cache -o -name cache -o -name huggingface -o -name .rgt -o -name .git -o -name node_modules \
         -o -name site-packages -o -name .partial -o -name .rgt-partial \) -prune -o \
      -type f \( -name '*.pt' -o -name '*.pth' -o -name '*.ckpt' -o -name '*.safetensors' \) -print 2>/dev/null
    [ $? -eq 124 ] && printf '%s\n' "//timeout")
done
tab DONE
