#!/usr/bin/env bash
# rgt: one lane of a run = the cells listed in <state_dir>/lanes/<lane>.cells, run one after another
# on that lane's GPUs by run_one.sh. Started detached (a tmux window, or setsid nohup) by launch_start.sh.
#   usage: bash run_queue.sh <state_dir> <lane> <path of run_one.sh>
set -u
# rgt: include lib/common.sh

SD=${1:?state dir}
LANE=${2:?lane}
RUN_ONE=${3:?run_one path}
LD="$SD/lanes"

printf '%s %s\n' "$$" "$(pstart $$ || echo 0)" >"$LD/$LANE.pid.tmp.$$" && mv -f "$LD/$LANE.pid.tmp.$$" "$LD/$LANE.pid"
date +%s >"$LD/$LANE.started_at"

# A hang-up or kill of the lane is recorded and passed on to the running cell's runner, which passes it
# to the cell's own process group. run_one.sh runs in the background and is waited for, because bash
# only runs a trap between commands: a foreground child would hold the signal until the cell ended.
child=""
on_signal() {
  echo "$1 $(date +%s)" >"$LD/$LANE.signal"
  if [ -n "$child" ]; then
    kill -s "$1" "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  exit "$2"
}
trap 'on_signal HUP 129' HUP
trap 'on_signal TERM 143' TERM

cells=()
while IFS= read -r c || [ -n "$c" ]; do [ -n "$c" ] && cells+=("$c"); done <"$LD/$LANE.cells"

for c in "${cells[@]}"; do
  [ -e "$SD/stop_requested" ] && break
  bash "$RUN_ONE" "$SD" "$c" </dev/null &
  child=$!
  wait "$child"
  child=""
done
date +%s >"$LD/$LANE.ended_at"
exit 0
