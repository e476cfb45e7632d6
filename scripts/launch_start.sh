#!/usr/bin/env bash
# rgt: the second launch round trip. Unpacks the run's spec files (a bundle on stdin: "<relpath> <bytes>\n"
# followed by exactly that many bytes, repeated) into the state dir, then starts each new lane detached —
# a tmux window, or setsid nohup when tmux is absent — and waits briefly for a first log line.
#   usage: bash launch_start.sh <state_dir> <tmux|nohup> <session> <run_queue.sh> <run_one.sh> <wait_s> <lane>...
set -u
# rgt: include lib/common.sh

SD=${1:?state dir}
MODE=${2:?mode}
SESSION=${3:?session}
RUN_QUEUE=${4:?run_queue}
RUN_ONE=${5:?run_one}
WAIT_S=${6:-3}
shift 6
LANES=("$@")

q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

umask 077
mkdir -p "$SD/cells" "$SD/lanes" || { tab ERROR "cannot create $SD"; exit 3; }

# one launcher at a time per run (a second concurrent launch waits, then sees the first one's lanes)
LOCK="$SD/.launch.lock"
for _ in $(seq 1 100); do
  mkdir "$LOCK" 2>/dev/null && break
  if [ -n "$(find "$LOCK" -maxdepth 0 -mmin +2 2>/dev/null)" ]; then rmdir "$LOCK" 2>/dev/null; fi
  sleep 0.1
done
trap 'rmdir "$LOCK" 2>/dev/null' EXIT

IN="$SD/.incoming.$$"
mkdir -p "$IN"
while IFS=' ' read -r rel size; do
  [ -n "$rel" ] || break
  case $rel in /* | *..*) tab ERROR "bad bundle path $rel"; exit 3 ;; esac
  mkdir -p "$IN/$(dirname -- "$rel")"
  head -c "$size" >"$IN/$rel"
done

# cells already running under a live lane (an earlier launch) are never started a second time
declare -A livecell=()
lanes_of "$SD"
for l in "${RUN_LANES[@]}"; do
  lane_alive "$SD" "$l" || continue
  while IFS= read -r c; do [ -n "$c" ] && livecell[$c]=1; done <"$SD/lanes/$l.cells"
done
cells_of "$SD"
for c in "${RUN_CELLS[@]}"; do cell_alive "$SD/cells/$c" && livecell[$c]=1; done

# move the run-wide files and the cell specs into place (never the files of a live cell)
for f in run.env0 expect watch.env0; do [ -e "$IN/$f" ] && mv -f "$IN/$f" "$SD/$f"; done
cells_of "$IN"
for c in "${RUN_CELLS[@]}"; do
  d="$IN/cells/$c/"
  if [ -n "${livecell[$c]:-}" ]; then tab SKIPLIVE "$c"; continue; fi
  mkdir -p "$SD/cells/$c"
  for f in "$d"*; do mv -f "$f" "$SD/cells/$c/"; done
  rm -f "$SD/cells/$c/stop_requested"
  [ "$(cat "$SD/cells/$c/state" 2>/dev/null)" = done ] || printf 'pending\n' >"$SD/cells/$c/state"
done
rm -f "$SD/stop_requested"

# the box's own tools pointed at the profile's mirrors (idempotent; one line per thing it looked at)
if [ -r "$IN/mirrors.args0" ]; then
  margs=()
  while IFS= read -r -d '' a; do margs+=("$a"); done <"$IN/mirrors.args0"
  if [ "${#margs[@]}" -gt 0 ] && [ -r "${margs[0]}" ]; then
    while IFS= read -r line; do [ -n "$line" ] && printf 'MIRROR\t%s\n' "$line"; done < <(timeout 20 bash "${margs[@]}" 2>&1 | head -n 20)
  fi
fi

start_lane() { # lane -> starts it detached
  local l=$1 cmd
  rm -f "$SD/lanes/$l.pid" "$SD/lanes/$l.signal" "$SD/lanes/$l.ended_at"
  if [ "$MODE" = tmux ]; then
    cmd="exec bash $(q "$RUN_QUEUE") $(q "$SD") $(q "$l") $(q "$RUN_ONE") >>$(q "$SD/lanes/$l.out") 2>&1"
    if tmux has-session -t "=$SESSION" 2>/dev/null; then
      tmux new-window -d -t "=$SESSION:" -n "$l" "$cmd" || return 1
    else
      tmux new-session -d -s "$SESSION" -n "$l" "$cmd" || return 1
    fi
  elif command -v setsid >/dev/null 2>&1; then
    setsid nohup bash "$RUN_QUEUE" "$SD" "$l" "$RUN_ONE" </dev/null >>"$SD/lanes/$l.out" 2>&1 &
  else
    nohup bash "$RUN_QUEUE" "$SD" "$l" "$RUN_ONE" </dev/null >>"$SD/lanes/$l.out" 2>&1 &
  fi
}
wait_pids() { # lanes... -> waits until each has written its pid file
  local i l ok
  for i in $(seq 1 50); do
    ok=1
    for l in "$@"; do [ -s "$SD/lanes/$l.pid" ] || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}

started=()
for l in "${LANES[@]}"; do
  [ -r "$IN/lanes/$l.cells" ] || continue
  keep=()
  while IFS= read -r c; do [ -n "$c" ] && [ -z "${livecell[$c]:-}" ] && keep+=("$c"); done <"$IN/lanes/$l.cells"
  [ "${#keep[@]}" -gt 0 ] || continue
  printf '%s\n' "${keep[@]}" >"$SD/lanes/$l.cells"
  [ -e "$IN/lanes/$l.gpus" ] && mv -f "$IN/lanes/$l.gpus" "$SD/lanes/$l.gpus"
  if ! start_lane "$l"; then tab ERROR "could not start lane $l ($MODE)"; continue; fi
  started+=("$l")
  tab STARTED "$l" "$MODE" "${keep[*]}"
done
rm -rf "$IN"

# the lanes must be visibly alive before we answer (so an immediate relaunch sees them); a tmux server
# that was just killed can still accept a new session for a moment and take it down with it: retry once
wait_pids "${started[@]}"
if [ "$MODE" = tmux ] && [ "${#started[@]}" -gt 0 ]; then
  sleep 0.3
  for l in "${started[@]}"; do
    if ! lane_alive "$SD" "$l" && [ ! -e "$SD/lanes/$l.ended_at" ]; then
      tab RETRY "$l"
      sleep 0.5
      start_lane "$l" && wait_pids "$l"
    fi
  done
fi
# the watcher (time cap, park): the cap counts from a launch that started lanes; a launch that only brings a
# new watch.env0 (a park approved after the start) arms it over the lanes already running, or over none
live=0
lanes_of "$SD"
for l in "${RUN_LANES[@]}"; do lane_alive "$SD" "$l" && { live=1; break; }; done
if [ -r "$SD/watch.env0" ]; then
  mh="" ms="" ws="" pk=""
  while IFS= read -r -d '' kv; do
    case ${kv%%=*} in RGT_MAX_HOURS) mh=${kv#*=} ;; RGT_MAX_S) ms=${kv#*=} ;; RGT_WATCH_SCRIPT) ws=${kv#*=} ;; RGT_PARK) pk=${kv#*=} ;; esac
  done <"$SD/watch.env0"
  if [ "${#started[@]}" -gt 0 ]; then
    rm -f "$SD/stop_reason"
    if [[ $ms =~ ^[0-9]+$ ]] && [ "$ms" -gt 0 ]; then
      printf '%s\n' "$(($(date +%s) + ms))" >"$SD/deadline"
      printf '%s\n' "$mh" >"$SD/max_hours"
    else
      rm -f "$SD/deadline" "$SD/max_hours"
    fi
  fi
  # a cap needs lanes to stop; a park is decided as soon as no lane of the run is left (at once, when the
  # sweep already ended before the park was approved)
  if { { [ -e "$SD/deadline" ] && { [ "${#started[@]}" -gt 0 ] || [ "$live" = 1 ]; }; } || [ "$pk" = 1 ]; } && [ -n "$ws" ] && [ -r "$ws" ]; then
    if alive_in "$SD/watch.pid"; then
      tab WATCH "$([ -e "$SD/deadline" ] && cat "$SD/deadline")" "$pk" alive
    elif command -v setsid >/dev/null 2>&1; then
      setsid nohup bash "$ws" "$SD" </dev/null >>"$SD/watch.out" 2>&1 &
      tab WATCH "$([ -e "$SD/deadline" ] && cat "$SD/deadline")" "$pk" started
    else
      nohup bash "$ws" "$SD" </dev/null >>"$SD/watch.out" 2>&1 &
      tab WATCH "$([ -e "$SD/deadline" ] && cat "$SD/deadline")" "$pk" started
    fi
  fi
fi
rmdir "$LOCK" 2>/dev/null
trap - EXIT

# a first line of output from any cell we started (the runner's own [rgt] line if nothing else yet)
first="" firstcell=""
deadline=$(($(date +%s) + WAIT_S))
while [ "${#started[@]}" -gt 0 ]; do
  for l in "${started[@]}"; do
    while IFS= read -r c; do
      [ -r "$SD/cells/$c/log" ] || continue
      line=$(grep -v -m 1 '^\[rgt\]' "$SD/cells/$c/log" 2>/dev/null)
      if [ -n "$line" ]; then first=$line firstcell=$c; break 3; fi
      [ -z "$firstcell" ] && { firstcell=$c; }
    done <"$SD/lanes/$l.cells"
  done
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 0.2
done
if [ -z "$first" ] && [ -n "$firstcell" ]; then first=$(head -n 1 "$SD/cells/$firstcell/log" 2>/dev/null); fi
[ -n "$firstcell" ] && tab FIRST "$firstcell" "$(printf '%s' "$first" | head -c 300 | tr '\t\r' '  ')"
exit 0
