#!/usr/bin/env bash
# rgt: the run's watcher on the box, for the hours when no server is looking. Started detached (setsid
# nohup) by launch_start.sh when the run has a time cap or an approved park; one per run (watch.pid).
#   usage: bash run_watch.sh <state_dir>
# Reads <state_dir>/watch.env0 afresh every tick (a relaunch may change it):
#   RGT_STOP_SCRIPT   the installed stop_run.sh          RGT_WATCH_TICK_S  seconds between ticks (15)
#   RGT_PARK=1        park approved for this launch      RGT_PARK_TOKEN    one token per approval (single use)
#   RGT_PARK_VERB     the platform's reversible stop     RGT_PARK_CMD      the on-box way, "" = none documented
#   RGT_PARK_MOUNTS   "1 <path>" / "0 <path>" lines: the profile's mounts and whether the park keeps them
# <state_dir>/deadline (epoch, written by launch_start.sh) is the time cap: once it passes, every live cell
# gets exactly what stop_run gives it (scripts/stop_run.sh: its process groups, checkpoints kept) and
# <state_dir>/stop_reason says why. When the last lane has ended the park is decided once and recorded
# under <state_dir>/park/ (state, reason, roster.sha256, at, exit_code, log).
set -u
# rgt: include lib/common.sh

SD=${1:?state dir}
P="$SD/park"
now() { date +%s; }
put() { printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }
load() {
  local kv
  RGT_STOP_SCRIPT="" RGT_WATCH_TICK_S=15 RGT_PARK=0 RGT_PARK_TOKEN="" RGT_PARK_VERB="" RGT_PARK_CMD="" RGT_PARK_MOUNTS=""
  [ -r "$SD/watch.env0" ] || return 0
  while IFS= read -r -d '' kv; do [ -n "$kv" ] && printf -v "${kv%%=*}" '%s' "${kv#*=}"; done <"$SD/watch.env0"
}
envv() { # FILE NAME -> ENVV
  local kv
  ENVV=""
  [ -r "$1" ] || return 0
  while IFS= read -r -d '' kv; do if [ "${kv%%=*}" = "$2" ]; then ENVV=${kv#*=}; return 0; fi; done <"$1"
}
any_lane_alive() {
  local l
  lanes_of "$SD"
  for l in "${RUN_LANES[@]}"; do lane_alive "$SD" "$l" && return 0; done
  return 1
}

# one watcher per run
if alive_in "$SD/watch.pid"; then exit 0; fi
printf '%s %s\n' "$$" "$(pstart $$ || echo 0)" >"$SD/watch.pid.tmp.$$" && mv -f "$SD/watch.pid.tmp.$$" "$SD/watch.pid"

while :; do
  load
  dl=""
  rd dl "$SD/deadline"
  if [[ $dl =~ ^[0-9]+$ ]] && [ "$(now)" -ge "$dl" ] && [ ! -e "$SD/stop_reason" ] && any_lane_alive; then
    rd mh "$SD/max_hours"
    put "$SD/stop_reason" "max_hours ${mh:-?} reached at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    if [ -n "$RGT_STOP_SCRIPT" ] && [ -r "$RGT_STOP_SCRIPT" ]; then
      RGT_STOP_REASON="stopped: max_hours ${mh:-?} reached (files and checkpoints kept)" bash "$RGT_STOP_SCRIPT" "$SD" "${RGT_STOP_GRACE_S:-30}" >>"$SD/watch.log" 2>&1
    else
      echo "rgt watch: no stop script recorded; cannot enforce max_hours" >>"$SD/watch.log"
    fi
  fi
  any_lane_alive || break
  sleep "${RGT_WATCH_TICK_S:-15}"
done

# --- the run is over on this box: park it, once, if that was approved and is safe now ---------------
load
[ "${RGT_PARK:-0}" = 1 ] || exit 0
mkdir -p "$P"
[ -n "$RGT_PARK_TOKEN" ] && [ -e "$P/used.$RGT_PARK_TOKEN" ] && exit 0

# kept PATH: the profile mount holding PATH (longest prefix) is one the park keeps
kept() {
  local best=-1 keep=0 k m
  while IFS=' ' read -r k m; do
    [ -n "$m" ] || continue
    m=$(expand "$m")
    m=${m%/}
    if [ -z "$m" ] || [ "$1" = "$m" ] || [[ $1 == "$m"/* ]]; then
      if [ "${#m}" -gt "$best" ]; then best=${#m}; keep=$k; fi
    fi
  done <<<"$RGT_PARK_MOUNTS"
  [ "$keep" = 1 ]
}

envv "$SD/run.env0" RGT_RUN_ID; RUN_ID=$ENVV
envv "$SD/run.env0" RGT_DURABLE_ROOT; DUR=$ENVV
why=""
: >"$P/roster.sha256.tmp"
cells_of "$SD"
for c in "${RUN_CELLS[@]}"; do
  d="$SD/cells/$c"
  rd st "$d/state"
  envv "$d/env0" RGT_OUTPUT_DIR; out=$ENVV
  case $st in
    done)
      loc=$out
      [ -n "$DUR" ] && loc="$DUR/rgt/$RUN_ID/$c"
      if [ ! -s "$SD/expect" ]; then why="no roster (expect) to check"; break; fi
      while IFS= read -r rel || [ -n "$rel" ]; do
        [ -n "$rel" ] || continue
        if [ ! -f "$loc/$rel" ]; then why="the roster of $c is not durable: $loc/$rel is missing"; break 2; fi
        h=$(sha256sum <"$loc/$rel" 2>/dev/null | cut -c1-64)
        [ -n "$h" ] || { why="cannot hash $loc/$rel"; break 2; }
        printf '%s  %s\n' "$h" "$loc/$rel" >>"$P/roster.sha256.tmp"
      done <"$SD/expect"
      kept "$loc" || { why="the roster of $c lies in $loc, on a mount the ${RGT_PARK_VERB:-park} does not keep"; break; }
      ;;
    stopped)
      if [ ! -e "$SD/stop_reason" ]; then why="cell $c was stopped by hand, not by the run's time cap"; break; fi
      kept "$out" || { why="the checkpoints of $c lie in $out, on a mount the ${RGT_PARK_VERB:-park} does not keep"; break; }
      ;;
    *) why="cell $c is ${st:-pending}, not done"; break ;;
  esac
done
put "$P/at" "$(now)"
if [ -n "$why" ]; then
  rm -f "$P/roster.sha256.tmp"
  put "$P/reason" "not parked: $why"
  put "$P/state" not_parked
  exit 0
fi
mv -f "$P/roster.sha256.tmp" "$P/roster.sha256"
if [ -z "$RGT_PARK_CMD" ]; then
  put "$P/reason" "every roster is hashed on a mount that survives ${RGT_PARK_VERB:-the park}, but no on-box way to do it is documented: the box bills while idle until a human parks it"
  put "$P/state" ready
  exit 0
fi
# single use: the approval's token is spent before the command runs, whatever it answers
mkdir "$P/used.${RGT_PARK_TOKEN:-none}" 2>/dev/null || exit 0
put "$P/state" parking
timeout "${RGT_PARK_TIMEOUT_S:-120}" bash -c "$RGT_PARK_CMD" >>"$P/log" 2>&1 </dev/null
rc=$?
put "$P/exit_code" "$rc"
put "$P/at" "$(now)"
if [ "$rc" = 0 ]; then
  put "$P/reason" "${RGT_PARK_VERB:-park} run on the box after every roster was hashed"
  put "$P/state" done
else
  put "$P/reason" "${RGT_PARK_VERB:-park} command exited $rc (see $P/log); the box may still be billing"
  put "$P/state" failed
fi
exit 0
