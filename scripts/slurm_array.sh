#!/usr/bin/env bash
# rgt: one Slurm array task runs one cell. The task index picks the cell from the submission's cell list,
# and the cell itself runs through run_one.sh, so its state files are the same as under tmux or nohup.
#   usage (given to sbatch): slurm_array.sh <state_dir> <cells_list> <run_one.sh>
# The warning signal (sbatch --signal=B:USR1@lead) leaves a flag file at $RGT_CHECKPOINT_FLAG for the
# training loop to poll (checkpoint at the next safe point); when RGT_SLURM_FORWARD names a signal it is
# also sent to the cell's process group.
set -u

SD=${1:?state dir}
LIST=${2:?cell list}
RUN_ONE=${3:?run_one.sh}
idx=${SLURM_ARRAY_TASK_ID:?not a Slurm array task}

cell=$(sed -n "$((idx + 1))p" "$LIST")
[ -n "$cell" ] || { echo "rgt: no cell at array index $idx in $LIST" >&2; exit 2; }
CD="$SD/cells/$cell"
[ -d "$CD" ] || { echo "rgt: cell dir $CD missing" >&2; exit 2; }

printf '%s %s %s\n' "${SLURM_ARRAY_JOB_ID:-?}_$idx" "${SLURM_JOB_ID:-?}" "${SLURM_RESTART_COUNT:-0}" >"$CD/slurm_task"
rm -f "$CD/slurm_term"
export RGT_CHECKPOINT_FLAG="$CD/checkpoint_requested"
rm -f "$RGT_CHECKPOINT_FLAG"

rpid=""
on_warn() {
  date +%s >"$RGT_CHECKPOINT_FLAG"
  printf '[rgt] %s slurm warning signal: checkpoint requested (%s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$RGT_CHECKPOINT_FLAG" >>"$CD/log"
  if [ -n "${RGT_SLURM_FORWARD:-}" ]; then
    pg=$(cat "$CD/pgid" 2>/dev/null)
    [ -n "$pg" ] && kill -s "$RGT_SLURM_FORWARD" -- "-$pg" 2>/dev/null
  fi
}
on_term() {
  printf 'TERM %s\n' "$(date +%s)" >"$CD/slurm_term"
  [ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null
}
trap on_warn USR1
trap on_term TERM

bash "$RUN_ONE" "$SD" "$cell" &
rpid=$!
rc=0
while :; do
  wait "$rpid"
  rc=$?
  kill -0 "$rpid" 2>/dev/null || break
done

st=$(cat "$CD/state" 2>/dev/null)
if [ -e "$SD/stop_requested" ] || [ -e "$CD/stop_requested" ]; then
  [ "$st" = done ] || printf 'stopped\n' >"$CD/state"
elif [ "$st" = running ] || [ "$st" = pending ]; then
  # the runner was ended before it could record an outcome (walltime, preemption, node trouble)
  printf '%s\n' "ended by Slurm before the cell finished (runner exit $rc)" >"$CD/reason"
  printf 'failed\n' >"$CD/state"
fi
exit "$rc"
