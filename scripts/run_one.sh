#!/usr/bin/env bash
# rgt: run ONE cell of a run in the foreground and keep its state on disk.
#   usage: bash run_one.sh <state_dir> <cell>
# Reads <state_dir>/run.env0 and <state_dir>/cells/<cell>/{env0,cmd}; writes state, exit_code, pid, pgid,
# pstart, heartbeat, started_at, ended_at, reason, signal and log beside them (layout: src/backends/types.ts).
# A cell only becomes `done` after its roster is present and, when a durable root is set, copied there and
# checked byte for byte; a failed copy fails the cell even when the command exited 0.
set -u
# rgt: include lib/common.sh
# rgt: include lib/seatbelt.sh

SD=${1:?state dir}
CELL=${2:?cell name}
CD="$SD/cells/$CELL"
[ -d "$CD" ] || { echo "rgt: unknown cell $CELL under $SD" >&2; exit 2; }

now() { date +%s; }
put() { printf '%s\n' "$2" >"$CD/$1.tmp.$$" && mv -f "$CD/$1.tmp.$$" "$CD/$1"; }
note() { printf '[rgt] %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$CD/log"; }
# the file counting OOM kills in this process's memory cgroup (v2 memory.events, or v1 memory.oom_control)
oom_file() {
  local cg f
  cg=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null | head -n 1)
  f="/sys/fs/cgroup${cg%/}/memory.events"
  [ -n "$cg" ] && [ -r "$f" ] && { printf '%s' "$f"; return 0; }
  cg=$(sed -n 's/^[0-9]*:[^:]*memory[^:]*://p' /proc/self/cgroup 2>/dev/null | head -n 1)
  f="/sys/fs/cgroup/memory${cg%/}/memory.oom_control"
  [ -n "$cg" ] && [ -r "$f" ] && { printf '%s' "$f"; return 0; }
  return 1
}
oom_count() { [ -n "${1:-}" ] && [ -r "$1" ] && sed -n 's/^oom_kill //p' "$1" | head -n 1; }

state=$(cat "$CD/state" 2>/dev/null || echo pending)
if [ "$state" = done ]; then echo "rgt: cell $CELL already done, skipped"; exit 0; fi
if [ -e "$SD/stop_requested" ] || [ -e "$CD/stop_requested" ]; then
  put state stopped
  exit 0
fi

# --- environment: run-wide settings, then the cell's own -----------------------------------------
load_env0() { local kv; while IFS= read -r -d '' kv; do [ -n "$kv" ] && export "$kv"; done <"$1"; }
[ -r "$SD/run.env0" ] && load_env0 "$SD/run.env0"
[ -r "$CD/env0" ] && load_env0 "$CD/env0"

[ -n "${RGT_CRED_FILE:-}" ] && RGT_CRED_FILE=$(expand "$RGT_CRED_FILE")
[ -n "${HF_HOME:-}" ] && { HF_HOME=$(expand "$HF_HOME"); export HF_HOME; }
[ -n "${RGT_PYTHON:-}" ] && RGT_PYTHON=$(expand "$RGT_PYTHON")

# credentials pushed with push_secret: KEY=VALUE lines, read without evaluating anything
if [ -n "${RGT_CRED_FILE:-}" ] && [ -r "$RGT_CRED_FILE" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case $line in '' | '#'*) continue ;; esac
    line=${line#export }
    case $line in *=*) ;; *) continue ;; esac
    k=${line%%=*}
    v=${line#*=}
    [[ $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ $v == \"*\" && ${#v} -ge 2 ]] || [[ $v == \'*\' && ${#v} -ge 2 ]]; then v=${v:1:${#v}-2}; fi
    export "$k=$v"
  done <"$RGT_CRED_FILE"
  unset line k v
fi
if [ -n "${RGT_PYTHON:-}" ] && [[ $RGT_PYTHON == */* ]]; then PATH="${RGT_PYTHON%/*}:$PATH"; export PATH; fi
# the seatbelt: provider CLIs and power verbs resolve to the shim first (scripts/rgt_shim.sh)
if [ -n "${RGT_SHIM:-}" ]; then
  RGT_SHIM=$(expand "$RGT_SHIM")
  if sb=$(seatbelt_dir "$RGT_SHIM"); then PATH="$sb:$PATH"; export PATH; fi
  unset sb
fi
[ -n "${HF_HOME:-}" ] && mkdir -p "$HF_HOME" 2>/dev/null

: "${RGT_OUTPUT_DIR:?RGT_OUTPUT_DIR missing from the cell spec}"
export RGT_SCRATCH_DIR="$RGT_OUTPUT_DIR/.scratch"
export RGT_HEARTBEAT="$CD/beat"
export RGT_CELL_ENV0="$CD/env0"

# --- disk gate: the cell starts only when its output dir and the durable dir have its budget free -----
# Budget per quantity (bytes, inodes): the cell's own RGT_MIN_FREE_BYTES / RGT_MIN_FREE_INODES (the cell's
# env0 is read after the run's, so a cell value wins over a run value), else the larger of the profile's
# default (RGT_DEFAULT_FREE_*) and what the last finished cell of this run left in its output dir.
# Below budget the cell is not started: state `blocked`, the numbers in `blocked`, and the lane moves on
# (RGT_ON_DISK_LOW=skip) or re-checks every RGT_DISK_RECHECK_S until RGT_DISK_WAIT_S have passed (wait).
existing_dir() { local p=$1; while [ -n "$p" ] && [ ! -e "$p" ]; do p=${p%/*}; done; printf '%s' "${p:-/}"; }
free_on() { # DIR -> FREE_B, FREE_I ("" where df cannot tell; no inode count on filesystems without a cap)
  local a d=$1
  FREE_B="" FREE_I=""
  a=$(df -P -k "$d" 2>/dev/null | tail -n 1)
  set -- $a
  [ $# -ge 4 ] && [[ $4 =~ ^[0-9]+$ ]] && FREE_B=$(($4 * 1024))
  a=$(df -P -i "$d" 2>/dev/null | tail -n 1)
  set -- $a
  [ $# -ge 4 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] && [[ $4 =~ ^[0-9]+$ ]] && FREE_I=$4
  return 0
}
need_b=${RGT_MIN_FREE_BYTES:-} need_i=${RGT_MIN_FREE_INODES:-} src=set
if [ -z "$need_b" ] || [ -z "$need_i" ]; then
  lb=0 li=0 lt=0 lc=""
  for f in "$SD"/cells/*/out_size; do
    [ -r "$f" ] || continue
    read -r b n t <"$f" 2>/dev/null || continue
    if [[ ${t:-} =~ ^[0-9]+$ ]] && [ "$t" -ge "$lt" ]; then lb=${b:-0} li=${n:-0} lt=$t lc=${f%/out_size}; lc=${lc##*/}; fi
  done
  db=${RGT_DEFAULT_FREE_BYTES:-0} di=${RGT_DEFAULT_FREE_INODES:-0}
  [ "$lb" -gt "$db" ] 2>/dev/null && db=$lb
  [ "$li" -gt "$di" ] 2>/dev/null && di=$li
  src=default
  [ -n "$lc" ] && src="default(last finished cell $lc: $lb bytes, $li files)"
  [ -n "$need_b" ] || need_b=$db
  [ -n "$need_i" ] || need_i=$di
fi
put budget "$need_b $need_i $src"
LOW="" LOWROW="" LOWDIR=""
gate() {
  local d e
  LOW="" LOWROW="" LOWDIR=""
  for d in "$RGT_OUTPUT_DIR" ${RGT_DURABLE_ROOT:+"$RGT_DURABLE_ROOT"}; do
    e=$(existing_dir "$d")
    free_on "$e"
    if { [ "$need_b" -gt 0 ] 2>/dev/null && [ -n "$FREE_B" ] && [ "$FREE_B" -lt "$need_b" ]; } ||
      { [ "$need_i" -gt 0 ] 2>/dev/null && [ -n "$FREE_I" ] && [ "$FREE_I" -lt "$need_i" ]; }; then
      LOW="${LOW:+$LOW; }$e has ${FREE_B:-?} bytes / ${FREE_I:-?} inodes free, the cell needs $need_b bytes / $need_i inodes"
      [ -n "$LOWROW" ] || { LOWROW="${FREE_B:--} $need_b ${FREE_I:--} $need_i"; LOWDIR=$e; }
    fi
  done
  [ -z "$LOW" ]
}
rm -f "$CD/blocked"
if ! gate; then
  waited_until=""
  if [ "${RGT_ON_DISK_LOW:-skip}" = wait ]; then
    until_t=$(($(now) + ${RGT_DISK_WAIT_S:-1800}))
    put runner "$$ $(pstart $$ || echo 0)"
    note "blocked: DISK_LOW: $LOW; waiting (re-check every ${RGT_DISK_RECHECK_S:-30}s until $(date -u -d "@$until_t" +%H:%M:%SZ 2>/dev/null || echo "$until_t"))"
    while :; do
      put blocked "$LOWROW $until_t $LOWDIR"
      put reason "DISK_LOW: $LOW (waiting)"
      put state blocked
      if [ -e "$SD/stop_requested" ] || [ -e "$CD/stop_requested" ]; then rm -f "$CD/blocked" "$CD/runner"; put state stopped; exit 0; fi
      [ "$(now)" -lt "$until_t" ] || break
      sleep "${RGT_DISK_RECHECK_S:-30}"
      gate && break
    done
    waited_until=$until_t
  fi
  if [ -n "$LOW" ]; then
    put blocked "$LOWROW - $LOWDIR"
    put reason "DISK_LOW: $LOW${waited_until:+ (still short after waiting)}"
    note "blocked: DISK_LOW: $LOW; the cell was not started"
    put state blocked
    rm -f "$CD/runner"
    exit 0
  fi
  # passed after waiting: pending (with this runner alive) until it starts below, never blocked without numbers
  put state pending
  rm -f "$CD/blocked" "$CD/reason"
  note "disk gate passed after waiting"
fi

mkdir -p "$RGT_OUTPUT_DIR" "$RGT_SCRATCH_DIR" || { put state failed; put reason "cannot create output dir $RGT_OUTPUT_DIR"; exit 3; }

# --- start -----------------------------------------------------------------------------------------
rm -f "$CD/exit_code" "$CD/runner" "$CD/ended_at" "$CD/reason" "$CD/signal" "$CD/cause" "$CD/blocked"
attempt=$(($(cat "$CD/attempts" 2>/dev/null || echo 0) + 1))
put attempts "$attempt"
OOMF=$(oom_file || true)
put oom_file "$OOMF"
put oom_before "$(oom_count "$OOMF" || true)"
put started_at "$(now)"
# this runner's own pid and start time: a status poll that finds the command gone but the runner alive
# knows the runner is still writing the outcome (exit code, roster check, durable copy)
put runner "$$ $(pstart $$ || echo 0)"
note "start cell=$CELL attempt=$attempt gpus=${CUDA_VISIBLE_DEVICES:-none} out=$RGT_OUTPUT_DIR"

export RGT_CMD_FILE="$CD/cmd"
# the proxy/mirror hook runs in the same shell before the command, so every network call sees it
# (mirrors and caches come from run.env0); the mirror hosts are added to no_proxy after the hook, and the
# cell's own env is exported once more so a value the cell set wins over whatever the hook exported
child='if [ -n "${RGT_PROXY_HOOK:-}" ]; then eval "$RGT_PROXY_HOOK" || echo "[rgt] proxy hook failed" >&2; fi
if [ -n "${RGT_NO_PROXY_ADD:-}" ]; then no_proxy="${no_proxy:+$no_proxy,}$RGT_NO_PROXY_ADD"; NO_PROXY=$no_proxy; export no_proxy NO_PROXY; fi
if [ -r "$RGT_CELL_ENV0" ]; then while IFS= read -r -d "" kv; do [ -n "$kv" ] && export "$kv"; done <"$RGT_CELL_ENV0"; unset kv; fi
cd "$RGT_WORKDIR" || { echo "[rgt] workdir $RGT_WORKDIR missing" >&2; exit 96; }
eval "$(cat "$RGT_CMD_FILE")"'

if command -v setsid >/dev/null 2>&1; then
  setsid bash -c "$child" >>"$CD/log" 2>&1 </dev/null &
else
  set -m
  bash -c "$child" >>"$CD/log" 2>&1 </dev/null &
  set +m
fi
cpid=$!
put pid "$cpid"
put pgid "$cpid"
put pstart "$(pstart "$cpid" || echo 0)"
put state running
touch "$CD/heartbeat"

# forward a hang-up / termination of the runner to the cell's own process group, and leave a trace
on_signal() {
  put signal "$1 $(now)"
  kill -s "$1" -- "-$cpid" 2>/dev/null
  exit $((128 + $2))
}
trap 'on_signal HUP 1' HUP
trap 'on_signal TERM 15' TERM
trap 'on_signal INT 2' INT

(
  while kill -0 "$cpid" 2>/dev/null; do
    touch "$CD/heartbeat" 2>/dev/null
    sleep "${RGT_HEARTBEAT_S:-5}"
  done
) </dev/null >/dev/null 2>&1 &

wait "$cpid"
rc=$?
trap - HUP TERM INT
stopping=0
if [ -e "$SD/stop_requested" ] || [ -e "$CD/stop_requested" ]; then stopping=1; fi

# a failure's reason and cause are on disk before its exit code: a status poll that sees the exit code
# (and a dead pid) already finds why
if [ "$rc" -ne 0 ] && [ "$stopping" = 0 ]; then
  why="exit $rc"
  if [ "$rc" -gt 128 ]; then why="exit $rc (killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"; fi
  before=$(cat "$CD/oom_before" 2>/dev/null)
  after=$(oom_count "$OOMF" || true)
  if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ] 2>/dev/null; then
    why="$why; oom_kill in $OOMF went $before -> $after"
    put cause oom
  elif [ "$rc" -gt 128 ]; then
    put cause killed
  fi
  put reason "$why"
fi
put exit_code "$rc"
put ended_at "$(now)"

if [ "$stopping" = 1 ]; then
  note "stopped by stop_run (exit $rc)"
  put state stopped
  exit 0
fi

if [ "$rc" -ne 0 ]; then
  note "failed: $why"
  put state failed
  exit "$rc"
fi

# --- success path: roster, scratch, durable copy ---------------------------------------------------
missing=()
roster=()
if [ -s "$SD/expect" ]; then
  while IFS= read -r rel || [ -n "$rel" ]; do
    [ -n "$rel" ] || continue
    roster+=("$rel")
    [ -e "$RGT_OUTPUT_DIR/$rel" ] || missing+=("$rel")
  done <"$SD/expect"
fi
if [ "${#missing[@]}" -gt 0 ]; then
  note "failed: exit 0 but roster missing: ${missing[*]}"
  put reason "roster missing: ${missing[*]}"
  put state failed
  exit 3
fi

rm -rf -- "$RGT_SCRATCH_DIR"

if [ -n "${RGT_DURABLE_ROOT:-}" ]; then
  dest="$RGT_DURABLE_ROOT/rgt/$RGT_RUN_ID/$CELL"
  if [ "${#roster[@]}" -eq 0 ]; then
    while IFS= read -r -d '' f; do roster+=("${f#"$RGT_OUTPUT_DIR"/}"); done < <(cd / && find "$RGT_OUTPUT_DIR" -type f -print0 2>/dev/null)
  fi
  bad=""
  mkdir -p "$dest" 2>/dev/null || bad="cannot create $dest"
  for rel in "${roster[@]}"; do
    [ -z "$bad" ] || break
    src="$RGT_OUTPUT_DIR/$rel"
    if [ -d "$src" ]; then
      mkdir -p "$dest/$rel" && cp -pR -- "$src/." "$dest/$rel/" 2>>"$CD/log" || bad="copy of $rel failed"
      continue
    fi
    mkdir -p "$(dirname -- "$dest/$rel")" || { bad="cannot create dir for $rel"; break; }
    if ! cp -p -- "$src" "$dest/$rel.rgt-part" 2>>"$CD/log"; then bad="copy of $rel failed"; rm -f -- "$dest/$rel.rgt-part"; break; fi
    a=$(sha256sum <"$src" | cut -d' ' -f1)
    b=$(sha256sum <"$dest/$rel.rgt-part" | cut -d' ' -f1)
    if [ -z "$a" ] || [ "$a" != "$b" ]; then bad="hash of the copy of $rel differs"; rm -f -- "$dest/$rel.rgt-part"; break; fi
    mv -f -- "$dest/$rel.rgt-part" "$dest/$rel" || { bad="rename of $rel failed"; break; }
  done
  if [ -n "$bad" ]; then
    note "failed: training exited 0 but the durable copy did not complete: $bad"
    put reason "durable sync failed: $bad"
    put state failed
    exit 4
  fi
  note "done: ${#roster[@]} artifact(s) verified in $dest"
else
  note "done: ${#roster[@]} artifact(s) in $RGT_OUTPUT_DIR (no durable dir configured)"
fi
# what this cell left (bytes, files): the default disk budget of the cells after it
ob=$(du -sb -- "$RGT_OUTPUT_DIR" 2>/dev/null | cut -f1)
[ -n "$ob" ] || ob=$(($(du -sk -- "$RGT_OUTPUT_DIR" 2>/dev/null | cut -f1) * 1024))
put out_size "${ob:-0} $(find "$RGT_OUTPUT_DIR" 2>/dev/null | wc -l | tr -d ' ') $(now)"
put state done
exit 0
