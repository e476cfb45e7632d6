#!/usr/bin/env bash
# rgt: one patrol tick for one run on one box, as tab-separated lines: the box clock and boot time,
# every cell's recorded state with liveness, log size/age and a short tail, the lanes, GPU memory,
# disk and inode use of the run's mounts, and the evidence a failure class is decided on: the last 16 KB
# of a failed or vanished cell's log, the knobs its command/env show (batch size, precision), the cgroup
# OOM counter and the kernel's OOM/Xid lines. Read-only.
# Written to fork as little as possible (a box may be asked about many runs, many boxes at once):
# small files are read with bash builtins; one find, one tail, one df and one nvidia-smi per tick.
#   usage: bash run_status.sh <state_dir> <tail_lines> <log_offset|-1> [cell...]
set -u
# rgt: include lib/common.sh

SD=${1:?state dir}
OFFSET=${3:--1}
shift 3 2>/dev/null || shift $#

# ENVV set to the value of $2 in the NUL-separated env file $1
envv() {
  local kv
  ENVV=""
  [ -r "$1" ] || return 0
  while IFS= read -r -d '' kv; do
    if [ "${kv%%=*}" = "$2" ]; then ENVV=${kv#*=}; return 0; fi
  done <"$1"
}
oomv() {
  local k v
  OOMV=""
  [ -n "$1" ] && [ -r "$1" ] || return 0
  while read -r k v; do [ "$k" = oom_kill ] && { OOMV=$v; return 0; }; done <"$1"
}

# nvidia-smi is the slowest source on a real box (tens to hundreds of ms): start it first, bounded (a GPU
# in a bad state can hang it), and read its answer at the end
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
  # memory and utilisation, then the health fields probe_env reads (HEALTH_FIELDS in src/knowledge/gpu-health.ts
  # after its index; a test keeps them equal); a driver that refuses one of them still gives the first four
  exec 3< <(timeout 10 nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu,persistence_mode,ecc.errors.uncorrected.volatile.total,retired_pages.pending,clocks_throttle_reasons.hw_slowdown,clocks_throttle_reasons.hw_thermal_slowdown,clocks_throttle_reasons.hw_power_brake_slowdown,clocks_throttle_reasons.sw_thermal_slowdown,clocks_throttle_reasons.sw_power_cap --format=csv,noheader,nounits 2>/dev/null ||
    timeout 10 nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu --format=csv,noheader,nounits 2>/dev/null)
  gpu=1
fi

printf -v now '%(%s)T' -1
up=0
{ read -r up _ </proc/uptime; } 2>/dev/null
up=${up%.*}
boot=0
while read -r k v _; do [ "$k" = btime ] && { boot=$v; break; }; done </proc/stat 2>/dev/null
tab NOW "$now" "$up" "$boot"

[ -d "$SD" ] || tab NOSTATE "$SD"

cells=("$@")
if [ "${#cells[@]}" -eq 0 ]; then
  cells_of "$SD"
  cells=("${RUN_CELLS[@]}")
fi

# mtimes and sizes of every cell's log / beat / heartbeat in one call
declare -A MT=() SZ=()
if [ -d "$SD/cells" ]; then
  while read -r p t s; do MT[$p]=${t%.*}; SZ[$p]=$s; done < <(find "$SD/cells" -mindepth 2 -maxdepth 2 \( -name log -o -name beat -o -name heartbeat \) -printf '%p %T@ %s\n' 2>/dev/null)
fi

declare -A roots=()
logs=()
flogs=()
dead=0
failing=0
for c in "${cells[@]}"; do
  d="$SD/cells/$c"
  if [ ! -d "$d" ]; then tab CELL "$c" missing; continue; fi
  # liveness first, the record after: a command that ends between the two reads then shows up with
  # its exit code, or with its runner still alive writing it, never as "running, pid gone, no code"
  rd pid "$d/pid"
  rd ps "$d/pstart"
  a=0
  alive "$pid" "$ps" && a=1
  rl=""
  if [ -e "$d/runner" ]; then rl=0; alive_in "$d/runner" && rl=1; fi
  rd st "$d/state"
  rd ex "$d/exit_code"
  [ "${st:-pending}" = running ] && [ "$a" = 0 ] && dead=1
  rd sa "$d/started_at"
  rd ea "$d/ended_at"
  rd sg "$d/signal"
  rd re "$d/reason"
  rd ca "$d/cause"
  rd ob "$d/oom_before"
  rd of "$d/oom_file"
  oomv "$of"
  lb=${SZ[$d/log]:--1}
  tab CELL "$c" "${st:-pending}" "$ex" "$a" "$lb" "${MT[$d/log]:-0}" "${MT[$d/beat]:-0}" "${MT[$d/heartbeat]:-0}" \
    "$sa" "$ea" "$sg" "$re" "$ca" "$ob" "$pid" "$OOMV" "$of" "$rl"
  # a failed or vanished cell: more of its log (the whole failure message), and the knobs the OOM
  # ladder reads (the command's start, env entries about batch, accumulation, precision, checkpointing)
  f=0
  # (a runner writes exit_code a moment before state: "running", not alive, exit non-zero is failing too;
  # the server reads it as failed, so it needs the same evidence)
  if [ "${st:-pending}" = failed ] || { [ "${st:-pending}" = running ] && [ "$a" = 0 ] && [ "${ex:-1}" != 0 ]; }; then f=1; failing=1; fi
  if [ "$lb" -gt 0 ] 2>/dev/null; then
    if [ "$f" = 1 ]; then flogs+=("$d/log"); else logs+=("$d/log"); fi
  fi
  if [ "$f" = 1 ] && [ -r "$d/cmd" ]; then
    kn=""
    { IFS= read -r -n 300 kn <"$d/cmd"; } 2>/dev/null
    if [ -r "$d/env0" ]; then
      while IFS= read -r -d '' kv; do
        case ${kv%%=*} in *[Bb][Aa][Tt][Cc][Hh]* | *[Aa][Cc][Cc][Uu][Mm]* | *16* | *[Pp][Rr][Ee][Cc]* | *[Cc][Kk][Pp][Tt]* | *[Cc][Hh][Ee][Cc][Kk][Pp]*) kn="$kn ${kv:0:80}" ;; esac
      done <"$d/env0"
    fi
    kn=${kn//$'\t'/ }
    tab KNOB "$c" "${kn//$'\n'/ }"
  fi
  # new text after the caller's offset: up to 32 KB (the newest part); the server keeps it in a local
  # file and returns only a short end of it
  if [ "$OFFSET" -ge 0 ] 2>/dev/null && [ "$lb" -gt "$OFFSET" ] 2>/dev/null; then
    from=$OFFSET
    [ $((lb - from)) -gt 32768 ] && from=$((lb - 32768))
    tab NEW "$c" "$from" "$(tail -c +$((from + 1)) "$d/log" | head -c 32768 | base64 -w0 2>/dev/null)"
  fi
  envv "$d/env0" RGT_OUTPUT_DIR
  [ -n "$ENVV" ] && roots[${ENVV%/*}]=1
  # a live cell's newest checkpoint (by name, three levels deep at most): its age is checked against the
  # cadence checkpoint_cadence gave
  if [ "$a" = 1 ] && [ -n "$ENVV" ] && [ -d "$ENVV" ]; then
    ck=$(find "$ENVV" -maxdepth 3 -type f \( -name '*.pt' -o -name '*.pth' -o -name '*.ckpt' -o -name '*.safetensors' -o -name '*.bin' -o -path '*checkpoint*' \) -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1)
    tab CKPT "$c" "${ck%.*}"
  fi
  # the disk gate's budget ("bytes inodes source") and, for a blocked cell, the numbers it saw
  rd bu "$d/budget"
  rd bl "$d/blocked"
  [ -n "$bu$bl" ] && tab GATE "$c" "$bu" "$bl"
done

# the seatbelt: a shim that stopped a destroy a cell reached at run time left its line here
for c in "${cells[@]}"; do
  f="$SD/cells/$c/seatbelt"
  [ -s "$f" ] && tab SEATBELT "$c" "$(tail -n 1 -- "$f" | cut -c1-300)"
done


# the last few KB of every log in one tail (16 KB of a failing one); a progress bar's CR-separated
# updates keep their last one
tails() {
  local cur="" line
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line == "==> "*" <==" ]]; then
      cur=${line#==> }
      cur=${cur% <==}
      cur=${cur%/log}
      cur=${cur##*/}
      continue
    fi
    [ -n "$cur" ] || continue
    line=${line%$'\r'}
    line=${line##*$'\r'}
    [ -n "$line" ] || continue
    line=${line//$'\t'/ }
    tab TAIL "$cur" "${line:0:$1}"
  done
}
[ "${#logs[@]}" -gt 0 ] && tails 300 < <(tail -v -c 3072 -- "${logs[@]}" 2>/dev/null)
[ "${#flogs[@]}" -gt 0 ] && tails 500 < <(tail -v -c 16384 -- "${flogs[@]}" 2>/dev/null)

lanes_of "$SD"
for l in "${RUN_LANES[@]}"; do
  a=0
  lane_alive "$SD" "$l" && a=1
  rd sg "$SD/lanes/$l.signal"
  lc=""
  while IFS= read -r x || [ -n "$x" ]; do lc="$lc$x,"; done <"$SD/lanes/$l.cells"
  en=""
  [ -e "$SD/lanes/$l.ended_at" ] && en=ended
  tab LANE "$l" "$a" "$sg" "$lc" "$en"
done

if [ -n "$gpu" ]; then
  while IFS=, read -r idx used total util health; do
    idx=${idx// /}
    case $idx in '' | *[!0-9]*) continue ;; esac
    tab GPU "$idx" "${used// /}" "${total// /}" "${util// /}" "$health"
  done <&3
  exec 3<&-
fi

# the watcher: time cap, why the run was stopped, and the park decision
if [ -e "$SD/watch.env0" ]; then
  envv "$SD/watch.env0" RGT_PARK
  wa=0
  alive_in "$SD/watch.pid" && wa=1
  rd dl "$SD/deadline"
  rd mh "$SD/max_hours"
  rd sr "$SD/stop_reason"
  rd pst "$SD/park/state"
  rd pre "$SD/park/reason"
  rd pat "$SD/park/at"
  tab WATCH "$dl" "$mh" "$sr" "${ENVV:-0}" "$wa" "$pst" "$pre" "$pat"
fi

envv "$SD/run.env0" RGT_DURABLE_ROOT
paths=()
for p in "$SD" "${!roots[@]}" ${ENVV:+"$ENVV"}; do
  while [ -n "$p" ] && [ ! -e "$p" ]; do p=${p%/*}; done
  paths+=("${p:-/}")
done
declare -A inode=() seen=()
# DISK mount size used% inodes% avail (avail in bytes: the server keeps the last patrol's reading and
# estimates the time to full from two)
disk() {
  [ -n "${4:-}" ] && [ -z "${seen[$4]:-}" ] || return 0
  seen[$4]=1
  tab DISK "$4" "$1" "${2%\%}" "${3%\%}" "${5:-}"
}
# GNU df gives bytes and inodes in one call; others (busybox) take two, the -i one first
if ! { read -r _ && while read -r size avail pct ipct m; do disk "$size" "$pct" "$ipct" "$m" "$avail"; done; } < <(df -B1 --output=size,avail,pcent,ipcent,target "${paths[@]}" 2>/dev/null) || [ "${#seen[@]}" -eq 0 ]; then
  while read -r _ _ _ _ pct m; do [ -n "${m:-}" ] && inode[$m]=$pct; done < <(df -P -i "${paths[@]}" 2>/dev/null | tail -n +2)
  while read -r _ size _ avail pct m; do disk "$size" "$pct" "${inode[$m]:-}" "$m" "$avail"; done < <(df -P -B1 "${paths[@]}" 2>/dev/null | tail -n +2)
fi

# the kernel's OOM-killer and GPU-fault (NVIDIA Xid, ECC, fallen off the bus) messages, read only when a
# cell failed or is gone; bounded (dmesg can be slow or restricted)
if [ "$dead" = 1 ] || [ "$failing" = 1 ]; then
  while IFS= read -r line; do tab DMESG "${line:0:300}"; done < <(timeout 5 dmesg 2>/dev/null | grep -i -E 'oom-kill|oom_reaper|killed process|out of memory|xid|fallen off the bus|uncorrectable ecc|double bit ecc' | tail -n 6)
fi
exit 0
