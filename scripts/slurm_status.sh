#!/usr/bin/env bash
# rgt: one status round trip for a Slurm-backed run: every cell's own state files (as run_one.sh
# leaves them) plus what the scheduler says about this run's array tasks (squeue, scontrol, and sacct
# where accounting exists). Tab-separated lines; the server maps them to cell states.
#   usage: bash slurm_status.sh <state_dir> <tail_lines> <job ids, comma-separated>
set -u
SD=${1:?state dir}
TAILN=${2:-5}
JOBS=${3:-}
tab() { local IFS=$'\t'; printf '%s\n' "$*"; }
clean() { tr '\t\r' '  ' | cut -c1-240; }
now=$(date +%s)
tab NOW "$now"
age() { local m; m=$(stat -c %Y "$1" 2>/dev/null) || { echo -1; return; }; echo $((now - m)); }

if [ -d "$SD/cells" ]; then
  for d in "$SD"/cells/*/; do
    [ -d "$d" ] || continue
    c=${d%/}
    c=${c##*/}
    tab CELL "$c" "$(cat "$d/state" 2>/dev/null || echo pending)" "$(cat "$d/exit_code" 2>/dev/null)" \
      "$(age "$d/log")" "$(age "$d/heartbeat")" "$(stat -c %s "$d/log" 2>/dev/null || echo 0)" \
      "$(cat "$d/slurm_task" 2>/dev/null | cut -d' ' -f1)" "$(head -n1 "$d/reason" 2>/dev/null | clean)" \
      "$(cat "$d/cause" 2>/dev/null)" "$([ -e "$d/slurm_term" ] && echo term)" "$([ -e "$d/stop_requested" ] && echo stop)"
    if [ "$TAILN" -gt 0 ] && [ -r "$d/log" ]; then
      tail -n "$TAILN" "$d/log" 2>/dev/null | clean | while IFS= read -r line; do tab TAIL "$c" "$line"; done
    fi
  done
else
  tab NOSTATE "$SD"
fi

if [ -n "$JOBS" ] && command -v squeue >/dev/null 2>&1; then
  squeue -h -r -j "$JOBS" -o '%i|%T|%r' 2>/dev/null | while IFS='|' read -r id st why; do tab SQ "$id" "$st" "$why"; done
  IFS=',' read -r -a ids <<<"$JOBS"
  for j in "${ids[@]}"; do
    scontrol -o show job "$j" 2>/dev/null | while IFS= read -r line; do
      aj=$(printf '%s' "$line" | sed -n 's/.*ArrayJobId=\([0-9]*\).*/\1/p')
      at=$(printf '%s' "$line" | sed -n 's/.*ArrayTaskId=\([^ ]*\).*/\1/p')
      js=$(printf '%s' "$line" | sed -n 's/.*JobState=\([^ ]*\).*/\1/p')
      rs=$(printf '%s' "$line" | sed -n 's/.*Reason=\([^ ]*\).*/\1/p')
      ec=$(printf '%s' "$line" | sed -n 's/.* ExitCode=\([^ ]*\).*/\1/p')
      rq=$(printf '%s' "$line" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
      tl=$(printf '%s' "$line" | sed -n 's/.*TimeLimit=\([^ ]*\).*/\1/p')
      tab SC "${aj:-$j}_${at}" "$js" "$rs" "$ec" "${rq:-0}" "$tl"
    done
  done
  if command -v sacct >/dev/null 2>&1 && ! scontrol show config 2>/dev/null | grep -q 'AccountingStorageType *= *accounting_storage/none'; then
    sacct -n -P -X -j "$JOBS" -o JobID,State,ExitCode 2>/dev/null | head -n 2000 | while IFS='|' read -r id st ec; do tab SA "$id" "${st%% *}" "$ec"; done
  fi
fi
exit 0
