#!/usr/bin/env bash
# rgt: one patrol tick for one run on one box, as tab-separated lines: the box clock and boot time,
# every cell's recorded state with liveness, log size/age and a short tail, the lanes, GPU memory,
# disk and inode use of the run's mounts, and OOM-kill evidence. Read-only.
#   usage: bash run_status.sh <state_dir> <tail_lines> <log_offset|-1> [cell...]
set -u

SD=${1:?state dir}
TAIL_N=${2:-5}
OFFSET=${3:--1}
shift 3 2>/dev/null || shift $#

tab() { local IFS=$'\t'; printf '%s\n' "$*"; }
clean() { tr '\t\r' '  ' | cut -c1-300; }
pstart() {
  local s
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  set -- $s
  [ "$1" = Z ] && return 1
  printf '%s' "${20}"
}
alive() {
  [ -n "${1:-}" ] || return 1
  local now
  now=$(pstart "$1") || return 1
  [ -z "${2:-}" ] || [ "$2" = 0 ] || [ "$now" = "$2" ]
}
mtime() { stat -c %Y "$1" 2>/dev/null || echo 0; }
val() { cat "$1" 2>/dev/null | head -n 1 | clean; }
envval() { [ -r "$1" ] && tr '\0' '\n' <"$1" | sed -n "s/^$2=//p" | head -n 1; }

now=$(date +%s)
up=$(cut -d' ' -f1 /proc/uptime 2>/dev/null)
up=${up%.*}
boot=$(sed -n 's/^btime //p' /proc/stat 2>/dev/null)
tab NOW "$now" "${up:-0}" "${boot:-0}"

if [ ! -d "$SD" ]; then
  tab NOSTATE "$SD"
fi

cells=("$@")
if [ "${#cells[@]}" -eq 0 ] && [ -d "$SD/cells" ]; then
  for d in "$SD"/cells/*/; do [ -d "$d" ] && { c=${d%/}; cells+=("${c##*/}"); }; done
fi

declare -A roots=()
for c in "${cells[@]}"; do
  d="$SD/cells/$c"
  if [ ! -d "$d" ]; then tab CELL "$c" missing; continue; fi
  st=$(val "$d/state")
  pid=$(val "$d/pid")
  a=0
  alive "$pid" "$(val "$d/pstart")" && a=1
  lb=$(stat -c %s "$d/log" 2>/dev/null || echo -1)
  tab CELL "$c" "${st:-pending}" "$(val "$d/exit_code")" "$a" "$lb" "$(mtime "$d/log")" "$(mtime "$d/beat")" \
    "$(mtime "$d/heartbeat")" "$(val "$d/started_at")" "$(val "$d/ended_at")" "$(val "$d/signal")" "$(val "$d/reason")" \
    "$(val "$d/cause")" "$(val "$d/oom_before")" "$pid" "$(of=$(val "$d/oom_file"); [ -n "$of" ] && sed -n 's/^oom_kill //p' "$of" 2>/dev/null | head -n 1)" "$(val "$d/oom_file")"
  if [ "$lb" -gt 0 ] 2>/dev/null; then
    tail -c 16384 "$d/log" | tail -n 40 | clean | while IFS= read -r line; do tab TAIL "$c" "$line"; done
    if [ "$OFFSET" -ge 0 ] 2>/dev/null && [ "$lb" -gt "$OFFSET" ]; then
      from=$OFFSET
      [ $((lb - from)) -gt 1500 ] && from=$((lb - 1500))
      tab NEW "$c" "$from" "$(tail -c +$((from + 1)) "$d/log" | head -c 1500 | base64 -w0 2>/dev/null)"
    fi
  fi
  o=$(envval "$d/env0" RGT_OUTPUT_DIR)
  [ -n "$o" ] && roots[${o%/*}]=1
done

if [ -d "$SD/lanes" ]; then
  for f in "$SD"/lanes/*.cells; do
    [ -e "$f" ] || continue
    l=${f##*/}
    l=${l%.cells}
    a=0
    lp="" ls=""
    [ -r "$SD/lanes/$l.pid" ] && read -r lp ls <"$SD/lanes/$l.pid"
    alive "$lp" "$ls" && a=1
    tab LANE "$l" "$a" "$(val "$SD/lanes/$l.signal")" "$(tr '\n' ',' <"$f")" "$([ -e "$SD/lanes/$l.ended_at" ] && echo ended)"
  done
fi

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu --format=csv,noheader,nounits 2>/dev/null |
    while IFS=', ' read -r idx used total util; do [ -n "$idx" ] && tab GPU "$idx" "$used" "$total" "$util"; done
fi

dur=$(envval "$SD/run.env0" RGT_DURABLE_ROOT)
declare -A seen=()
for p in "$SD" "${!roots[@]}" ${dur:+"$dur"}; do
  while [ -n "$p" ] && [ ! -e "$p" ]; do p=${p%/*}; done
  [ -n "$p" ] || p=/
  b=$(df -P -B1 "$p" 2>/dev/null | tail -n 1)
  i=$(df -P -i "$p" 2>/dev/null | tail -n 1)
  [ -n "$b" ] || continue
  set -- $b
  m=${6:-$p}
  [ -n "${seen[$m]:-}" ] && continue
  seen[$m]=1
  size=$2 pct=${5%\%}
  ipct=""
  if [ -n "$i" ]; then set -- $i; ipct=${5%\%}; fi
  tab DISK "$m" "$size" "$pct" "$ipct"
done

dmesg 2>/dev/null | grep -iE 'killed process|out of memory' | tail -n 3 | clean | while IFS= read -r line; do tab DMESG "$line"; done
exit 0
