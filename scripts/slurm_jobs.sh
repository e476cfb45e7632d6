#!/usr/bin/env bash
# rgt: our Slurm jobs on a login node, by id only (never by name or user: someone else's job is never touched).
#   bash slurm_jobs.sh queued ID...   print the ids among ID... that squeue still lists (queued or running)
#   bash slurm_jobs.sh cancel ID...   scancel exactly those ids; exit status is scancel's
# IDs are digits, optionally _digits (array tasks); anything else is refused (exit 2).
set -u
mode=${1:-}
shift || true
[ $# -gt 0 ] || exit 0
for j in "$@"; do
  case "$j" in ''|*[!0-9_]*) echo "bad job id: $j" >&2; exit 2 ;; esac
done
case "$mode" in
  queued) ids=$(IFS=,; printf '%s' "$*"); squeue -h -o %i -j "$ids" 2>/dev/null || true ;;
  cancel) scancel "$@" ;;
  *) echo "usage: slurm_jobs.sh queued|cancel ID..." >&2; exit 2 ;;
esac
