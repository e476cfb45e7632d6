#!/usr/bin/env bash
# rgt: submit a run's cells as one Slurm job array, in one round trip.
# The script text arrives on stdin followed by a bundle ("<relpath> <bytes>\n" then that many bytes,
# repeated): scripts/* land in the scripts dir under their content-hashed names (never rewritten),
# run.env0, expect, slurm/<sub>.cells and cells/<cell>/* land in the state dir — except the files of a
# cell that a live array task of an earlier job of this run still holds. Then sbatch --array runs every
# cell that is neither done nor live.
#   usage: bash -s -- <run_id> <state_dir or ""> <durable or ""> <data_dir or ""> <workdir> <sub>
#          <run_one name> <slurm_array name> <max_parallel> <earlier job ids, comma-separated or ""> [sbatch options...]
set -u

main() {
  local RUN_ID=$1 SD_HINT=$2 DURABLE=$3 DATA=$4 WORKDIR=$5 SUB=$6 RUN_ONE=$7 ARRAY=$8 K=$9 PREV=${10}
  shift 10
  tab() { local IFS=$'\t'; printf '%s\n' "$*"; }
  # Not lib/common.sh's expand: that one fills in $TMPDIR, which on a login node is not the job's scratch.
  expand() {
    local p=$1
    case $p in "~") p=$HOME ;; "~/"*) p="$HOME/${p#"~/"}" ;; esac
    p=${p//\$HOME/$HOME}
    p=${p//\$USER/${USER:-$(id -un)}}
    printf '%s' "$p"
  }
  DURABLE=$(expand "$DURABLE")
  DATA=$(expand "$DATA")
  WORKDIR=$(expand "$WORKDIR")
  local dok=missing SD SCR="$HOME/.rgt/scripts"
  if [ -n "$DURABLE" ] && [ -d "$DURABLE" ] && [ -w "$DURABLE" ]; then dok=ok; fi
  if [ -n "$SD_HINT" ]; then SD=$(expand "$SD_HINT")
  elif [ "$dok" = ok ]; then SD="$DURABLE/.rgt/runs/$RUN_ID"
  else SD="$HOME/.rgt/runs/$RUN_ID"; fi
  # Outputs must be reachable from this login node (pull_verify reads them from here). A data dir that names
  # a job-scoped variable such as $TMPDIR is node-local scratch, known only inside the job: use the workdir
  # (on the shared filesystem, or the job could not run in it) instead.
  case $DATA in *'$'*) DATA='' ;; esac
  local OUTROOT="${DATA:-$WORKDIR}/rgt-out/$RUN_ID"
  tab HOME "$HOME"
  tab SD "$SD"
  tab SCR "$SCR"
  tab DURABLE "$DURABLE" "$dok"

  command -v sbatch >/dev/null 2>&1 || { tab ERROR NO_SBATCH "sbatch is not on PATH on this host"; return 3; }
  [ -d "$WORKDIR" ] || { tab ERROR NO_WORKDIR "workdir $WORKDIR does not exist"; return 3; }
  umask 077
  mkdir -p "$SD/cells" "$SD/slurm" "$SCR" || { tab ERROR MKDIR "cannot create $SD or $SCR"; return 3; }

  local LOCK="$SD/.launch.lock" IN="$SD/.incoming.$$"
  for _ in $(seq 1 100); do
    mkdir "$LOCK" 2>/dev/null && break
    if [ -n "$(find "$LOCK" -maxdepth 0 -mmin +2 2>/dev/null)" ]; then rmdir "$LOCK" 2>/dev/null; fi
    sleep 0.1
  done
  trap 'rmdir "'"$LOCK"'" 2>/dev/null; rm -rf "'"$IN"'"' EXIT

  mkdir -p "$IN"
  local rel size
  while IFS=' ' read -r rel size; do
    [ -n "$rel" ] || break
    case $rel in /* | *..*) tab ERROR BUNDLE "bad bundle path $rel"; return 3 ;; esac
    mkdir -p "$IN/$(dirname -- "$rel")"
    head -c "$size" >"$IN/$rel"
  done

  local f t
  for f in "$IN"/scripts/*; do
    [ -f "$f" ] || continue
    t="$SCR/${f##*/}"
    [ -s "$t" ] || { cp "$f" "$t.tmp.$$" && chmod 700 "$t.tmp.$$" && mv -f "$t.tmp.$$" "$t"; }
  done

  # cells held by a live array task of an earlier job of this run
  declare -A live=()
  local id st job idx c
  if [ -n "$PREV" ]; then
    while IFS=' ' read -r id st; do
      [ -n "$id" ] || continue
      job=${id%%_*}
      idx=${id#*_}
      case $idx in '' | *[!0-9]*) continue ;; esac
      case $st in
        PENDING | RUNNING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | SUSPENDED | CONFIGURING | COMPLETING | RESIZING | SIGNALING | STAGE_OUT)
          c=$(sed -n "$((idx + 1))p" "$SD/slurm/job-$job.cells" 2>/dev/null)
          [ -n "$c" ] && live[$c]=1 ;;
      esac
    done < <(squeue -h -r -j "$PREV" -o '%i %T' 2>/dev/null)
  fi

  # run-wide env: the box's own paths appended, placeholders expanded
  if [ -e "$IN/run.env0" ]; then
    {
      while IFS= read -r -d '' kv; do printf '%s\0' "${kv%%=*}=$(expand "${kv#*=}")"; done <"$IN/run.env0"
      printf '%s\0' "RGT_STATE_DIR=$SD" "RGT_WORKDIR=$WORKDIR"
      if [ "$dok" = ok ]; then printf '%s\0' "RGT_DURABLE_ROOT=$DURABLE"; else printf '%s\0' "RGT_DURABLE_ROOT="; fi
    } >"$SD/run.env0"
  fi
  [ -e "$IN/expect" ] && mv -f "$IN/expect" "$SD/expect"
  [ -e "$IN/slurm/$SUB.cells" ] || { tab ERROR BUNDLE "cell list missing from the bundle"; return 3; }
  mv -f "$IN/slurm/$SUB.cells" "$SD/slurm/$SUB.cells"
  local d
  for d in "$IN"/cells/*/; do
    [ -d "$d" ] || continue
    c=${d%/}
    c=${c##*/}
    tab OUT "$c" "$OUTROOT/$c"
    if [ -n "${live[$c]:-}" ]; then continue; fi
    mkdir -p "$SD/cells/$c"
    printf '%s\0' "RGT_OUTPUT_DIR=$OUTROOT/$c" >>"$d/env0"
    for f in "$d"*; do mv -f "$f" "$SD/cells/$c/"; done
    rm -f "$SD/cells/$c/stop_requested" "$SD/cells/$c/checkpoint_requested"
    [ "$(cat "$SD/cells/$c/state" 2>/dev/null)" = done ] || printf 'pending\n' >"$SD/cells/$c/state"
  done
  rm -f "$SD/stop_requested"

  local idxs=() i=0
  while IFS= read -r c; do
    if [ -n "$c" ]; then
      if [ -n "${live[$c]:-}" ]; then tab SKIPLIVE "$c"
      elif [ "$(cat "$SD/cells/$c/state" 2>/dev/null)" = done ]; then tab SKIPDONE "$c"
      else idxs+=("$i"); fi
    fi
    i=$((i + 1))
  done <"$SD/slurm/$SUB.cells"
  if [ "${#idxs[@]}" -eq 0 ]; then tab NOTHING; return 0; fi

  local spec out rc
  spec=$(IFS=,; printf '%s' "${idxs[*]}")
  out=$(sbatch --parsable --array="$spec%$K" --chdir="$WORKDIR" --output="$SD/slurm/%A_%a.out" --open-mode=append "$@" \
    "$SCR/$ARRAY" "$SD" "$SD/slurm/$SUB.cells" "$SCR/$RUN_ONE" 2>&1 </dev/null)
  rc=$?
  if [ "$rc" -ne 0 ]; then tab ERROR SBATCH "$(printf '%s' "$out" | tr '\t\n' '  ' | head -c 600)"; return 4; fi
  job=${out%%$'\n'*}
  job=${job%%;*}
  cp "$SD/slurm/$SUB.cells" "$SD/slurm/job-$job.cells"
  printf '%s\n' "$job" >>"$SD/slurm/jobs"
  tab JOB "$job" "$spec"
  return 0
}
# keep the call and the exit on one line: the bundle follows this line on stdin
main "$@"; exit $?
