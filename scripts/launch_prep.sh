#!/usr/bin/env bash
# rgt: the first launch round trip. Reports, as tab-separated lines, what placement needs:
# where the run's state lives, which tools exist, the GPUs and who holds them, the state of every
# cell and lane already recorded for this run, and which named scripts carry CR line endings.
#   usage: bash launch_prep.sh <run_id> <state_dir or ""> <durable_dir or ""> <data_dir or ""> <workdir> [script paths...]
set -u
# rgt: include lib/common.sh

# profile paths may start with ~, $HOME, $USER or $TMPDIR: expanded here, on the box, without a trailing /
RUN_ID=${1:?run id}
SD_HINT=${2:-}
DURABLE=$(expand "${3:-}"); DURABLE=${DURABLE%/}
DATA=$(expand "${4:-}"); DATA=${DATA%/}
WORKDIR=$(expand "${5:-}"); WORKDIR=${WORKDIR%/}
shift 5 2>/dev/null || shift $#

has() { command -v "$1" >/dev/null 2>&1 && echo 1 || echo 0; }

durable_ok=missing
if [ -n "$DURABLE" ] && [ -d "$DURABLE" ] && [ -w "$DURABLE" ]; then durable_ok=ok; fi
# state lives under $HOME (survives stop and reboot everywhere; durable mounts are often inode-capped
# network filesystems where a dozen small files per cell is the wrong load)
if [ -n "$SD_HINT" ]; then
  SD=$SD_HINT
else
  SD="$HOME/.rgt/runs/$RUN_ID"
fi
tab HOME "$HOME"
tab SD "$SD"
tab DURABLE "$DURABLE" "$durable_ok"
tab WORKDIR "$([ -d "$WORKDIR" ] && echo 1 || echo 0)" "$WORKDIR"
tab DATA "$DATA" "$([ -n "$DATA" ] && [ -d "$DATA" ] && [ -w "$DATA" ] && echo ok || echo missing)"
tab TOOLS "tmux=$(has tmux)" "setsid=$(has setsid)" "nohup=$(has nohup)" "python3=$(has python3)" "sha256sum=$(has sha256sum)"
tab NOW "$(date +%s)"

if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 10 nvidia-smi --query-gpu=index,uuid,memory.used,memory.total --format=csv,noheader,nounits 2>/dev/null |
    while IFS=', ' read -r idx uuid used total; do [ -n "$idx" ] && tab GPU "$idx" "$uuid" "$used" "$total"; done
  timeout 10 nvidia-smi --query-compute-apps=gpu_uuid,pid --format=csv,noheader,nounits 2>/dev/null |
    while IFS=', ' read -r uuid pid; do [ -n "$uuid" ] && tab GPUAPP "$uuid" "$pid"; done
fi

cells_of "$SD"
for c in "${RUN_CELLS[@]}"; do
  d="$SD/cells/$c"
  st=$(cat "$d/state" 2>/dev/null || echo pending)
  a=0
  cell_alive "$d" && a=1
  tab CELL "$c" "$st" "$(cat "$d/spec_sha" 2>/dev/null)" "$a"
done
lanes_of "$SD"
for l in "${RUN_LANES[@]}"; do
  a=0
  lane_alive "$SD" "$l" && a=1
  tab LANE "$l" "$a" "$(cat "$SD/lanes/$l.gpus" 2>/dev/null)" "$(tr '\n' ',' <"$SD/lanes/$l.cells")"
done

for p in "$@"; do
  case $p in /*) f=$p ;; *) f="$WORKDIR/$p" ;; esac
  if [ -f "$f" ] && grep -q $'\r' "$f" 2>/dev/null; then tab CRLF "$p"; fi
done
exit 0
