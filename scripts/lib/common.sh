# rgt: helpers shared by the on-box scripts. This file is never run or sourced on a box: before a script
# leaves this machine (streamed by runScript, or installed under its content-hashed name) the server puts
# this text where the script says "# rgt: include lib/common.sh", so each script on the box stays one
# self-contained file. Function definitions only, written with bash builtins (the one fork: `id -un` in
# expand when $USER is unset).

# tab FIELD...: print one tab-separated line
tab() { local IFS=$'\t'; printf '%s\n' "$*"; }

# rd VAR FILE: the first line of FILE into VAR (tabs and CRs turned to spaces, at most 300 chars; "" when unreadable)
rd() {
  local __v=""
  { IFS= read -r __v <"$2"; } 2>/dev/null
  __v=${__v//$'\t'/ }
  __v=${__v//$'\r'/ }
  printf -v "$1" '%s' "${__v:0:300}"
}

# procstat PID: sets PSTATE (R, S, Z…), PGRP and PSTART (start time in clock ticks after boot) from
# /proc/PID/stat; fails when no such process exists
procstat() {
  local s
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  set -- $s
  PSTATE=$1 PGRP=$3 PSTART=${20}
}

# pstart PID: print the process's start time (what tells it apart from a later process given the same pid)
pstart() { procstat "$1" && printf '%s' "$PSTART"; }

# alive PID [START]: that very process is still there: present, not a zombie, and, when START is given
# and not 0, started at START (a recycled pid does not count)
alive() {
  [ -n "${1:-}" ] || return 1
  procstat "$1" || return 1
  [ "$PSTATE" != Z ] || return 1
  [ -z "${2:-}" ] || [ "$2" = 0 ] || [ "$PSTART" = "$2" ]
}

# cell_alive CELL_DIR: the cell is recorded as running and its recorded process is alive
cell_alive() {
  local st pid ps
  rd st "$1/state"
  rd pid "$1/pid"
  rd ps "$1/pstart"
  [ "$st" = running ] && alive "$pid" "$ps"
}

# alive_in FILE: the process named in FILE ("pid start-time", as a runner records itself) is alive;
# fails when FILE is absent
alive_in() {
  local p="" st=""
  { read -r p st <"$1"; } 2>/dev/null
  alive "$p" "$st"
}

# lane_alive STATE_DIR LANE: the lane's runner (pid and start time in lanes/LANE.pid) is alive
lane_alive() { alive_in "$1/lanes/$2.pid"; }

# cells_of DIR: RUN_CELLS := the cell names under DIR/cells/ (one directory per cell)
cells_of() {
  local d
  RUN_CELLS=()
  for d in "$1"/cells/*/; do
    [ -d "$d" ] || continue
    d=${d%/}
    RUN_CELLS+=("${d##*/}")
  done
}

# lanes_of STATE_DIR: RUN_LANES := the lanes recorded under STATE_DIR/lanes/ (one <lane>.cells list each)
lanes_of() {
  local f
  RUN_LANES=()
  for f in "$1"/lanes/*.cells; do
    [ -e "$f" ] || continue
    f=${f##*/}
    RUN_LANES+=("${f%.cells}")
  done
}

# expand PATH: a profile path made concrete on this box (a leading ~, and $HOME, $USER, $TMPDIR anywhere)
expand() {
  local p=$1
  case $p in "~") p=$HOME ;; "~/"*) p="$HOME/${p#\~/}" ;; esac
  p=${p//\$HOME/$HOME}
  p=${p//\$USER/${USER:-$(id -un 2>/dev/null)}}
  p=${p//\$TMPDIR/${TMPDIR:-/tmp}}
  printf '%s' "$p"
}
