#!/usr/bin/env bash
# rgt: stop a run (or some of its cells) by the process groups recorded in its state dir — never by a
# name pattern. Each group is checked to belong to this run (RGT_RUN_ID in its environment, or the lane
# runner's own command line) before it is signalled; TERM, a grace period, then KILL; then it confirms
# no process of those groups is left and none of their pids still holds GPU memory. Deletes no file.
#   usage: bash stop_run.sh <state_dir> <grace_s> [cell...]      (no cells = the whole run)
# RGT_STOP_REASON, when set, is the reason recorded for each stopped cell (run_watch.sh: the time cap).
set -u
# rgt: include lib/common.sh

SD=${1:?state dir}
GRACE=${2:-10}
shift 2 2>/dev/null || shift $#

# pids (not zombies) whose process group is $1
members() {
  local want=$1 p
  for p in /proc/[0-9]*; do
    procstat "${p#/proc/}" || continue
    [ "$PSTATE" != Z ] && [ "$PGRP" = "$want" ] && printf '%s ' "${p#/proc/}"
  done
}
RUN_ID=$( [ -r "$SD/run.env0" ] && tr '\0' '\n' <"$SD/run.env0" | sed -n 's/^RGT_RUN_ID=//p' | head -n 1)
[ -d "$SD" ] || { tab NOSTATE "$SD"; exit 0; }

whole=0
cells=("$@")
if [ "${#cells[@]}" -eq 0 ]; then
  whole=1
  touch "$SD/stop_requested"
  cells_of "$SD"
  cells=("${RUN_CELLS[@]}")
fi
for c in "${cells[@]}"; do [ -d "$SD/cells/$c" ] && touch "$SD/cells/$c/stop_requested"; done

groups=()   # "label pgid"
# lanes first, so no lane starts its next cell while we work (whole-run stop only)
if [ "$whole" = 1 ] && [ -d "$SD/lanes" ]; then
  for f in "$SD"/lanes/*.pid; do
    [ -e "$f" ] || continue
    l=${f##*/}
    l=${l%.pid}
    read -r lp ls <"$f"
    alive "$lp" "$ls" || continue
    tr '\0' ' ' <"/proc/$lp/cmdline" 2>/dev/null | grep -q -- "run_queue" || continue
    procstat "$lp" || continue
    groups+=("lane:$l $PGRP")
  done
fi
for c in "${cells[@]}"; do
  d="$SD/cells/$c"
  if [ ! -d "$d" ]; then tab UNKNOWN "$c"; continue; fi
  st=$(cat "$d/state" 2>/dev/null || echo pending)
  pid=$(cat "$d/pid" 2>/dev/null)
  if [ "$st" = running ] && alive "$pid" "$(cat "$d/pstart" 2>/dev/null)"; then
    if [ -n "$RUN_ID" ] && ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RGT_RUN_ID=$RUN_ID"; then
      tab NOTOURS "$c" "$pid"
      continue
    fi
    groups+=("cell:$c $(cat "$d/pgid" 2>/dev/null || echo "$pid")")
  else
    tab ALREADY "$c" "$st"
    if [ "$st" = pending ] || [ "$st" = running ]; then
      [ -n "${RGT_STOP_REASON:-}" ] && printf '%s\n' "$RGT_STOP_REASON" >"$d/reason"
      printf 'stopped\n' >"$d/state"
    fi
    # a process left behind in the cell's recorded group after the command ended (a worker that outlived
    # it, still holding GPU memory): reclaimed only when it carries this run's id
    pg=$(cat "$d/pgid" 2>/dev/null)
    if [ -n "$pg" ] && [ -n "$RUN_ID" ]; then
      for p in $(members "$pg"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "RGT_RUN_ID=$RUN_ID"; then groups+=("leftover:$c $pg"); break; fi
      done
    fi
  fi
done

victims=""
for g in "${groups[@]}"; do
  set -- $g
  victims="$victims $(members "$2")"
  kill -TERM -- "-$2" 2>/dev/null
done

deadline=$(($(date +%s) + GRACE))
while :; do
  left=0
  for g in "${groups[@]}"; do set -- $g; [ -n "$(members "$2")" ] && left=1; done
  [ "$left" = 0 ] && break
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 0.2
done
for g in "${groups[@]}"; do
  set -- $g
  if [ -n "$(members "$2")" ]; then kill -KILL -- "-$2" 2>/dev/null; fi
done
for _ in $(seq 1 25); do
  left=0
  for g in "${groups[@]}"; do set -- $g; [ -n "$(members "$2")" ] && left=1; done
  [ "$left" = 0 ] && break
  sleep 0.2
done

t=$(date +%s)
for g in "${groups[@]}"; do
  set -- $g
  label=$1 pg=$2
  rest=$(members "$pg")
  case $label in
    cell:*)
      c=${label#cell:}
      if [ -z "$rest" ]; then
        printf '%s\n' "${RGT_STOP_REASON:-stopped by stop_run}" >"$SD/cells/$c/reason"
        printf 'stopped\n' >"$SD/cells/$c/state"
        [ -e "$SD/cells/$c/ended_at" ] || printf '%s\n' "$t" >"$SD/cells/$c/ended_at"
        tab STOPPED "$c" "$pg"
      else
        tab ALIVE "$c" "$pg" "$rest"
      fi
      ;;
    leftover:*) [ -z "$rest" ] && tab LEFTOVER "${label#leftover:}" "$pg" || tab ALIVE "${label#leftover:}" "$pg" "$rest" ;;
    lane:*) [ -z "$rest" ] && tab LANESTOPPED "${label#lane:}" "$pg" || tab LANEALIVE "${label#lane:}" "$pg" "$rest" ;;
  esac
done

if command -v nvidia-smi >/dev/null 2>&1; then
  held=""
  apps=$(timeout 10 nvidia-smi --query-compute-apps=pid --format=csv,noheader,nounits 2>/dev/null)
  for v in $victims; do
    for a in $apps; do [ "$a" = "$v" ] && held="$held $v"; done
  done
  tab GPU "${held:-none}"
else
  tab GPU n/a
fi
exit 0
