#!/usr/bin/env bash
# rgt probe: one pass over the box, one JSON document on stdout. Runs on the box, streamed over stdin
# (bash -s -- ARGS). Needs bash + coreutils; every other source (nvidia-smi, python, df -i, cgroups) is
# optional and a missing one leaves its field null instead of failing the probe.
#
# ARGS: --path P   a marker path to test      (repeatable)
#       --env NAME a marker env var to test   (repeatable; also checked in PID 1's environment)
#       --cmd NAME a marker command to test   (repeatable)
#       --mount P  a mount point to measure   (repeatable; bytes and inodes)
#       --python P the interpreter to use (default python3)
#       --deep     import torch for real and ask CUDA (slow: seconds)
set -u
export LC_ALL=C
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

paths=() envs=() cmds=() mounts=() py=python3 deep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --path) paths+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --cmd) cmds+=("$2"); shift 2 ;;
    --mount) mounts+=("$2"); shift 2 ;;
    --python) py="$2"; shift 2 ;;
    --deep) deep=1; shift ;;
    *) shift ;;
  esac
done

# JSON string escaping in pure bash.
j() {
  local s=${1-}
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
  printf '"%s"' "$s"
}
num() { case "${1-}" in ''|*[!0-9.]*) printf null ;; *) printf '%s' "$1" ;; esac; }
trim() { local s=${1-}; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }
have() { command -v "$1" >/dev/null 2>&1; }

out='{'
out+="\"probe_version\":1,\"hostname\":$(j "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null)")"
up=$(cut -d' ' -f1 /proc/uptime 2>/dev/null); out+=",\"uptime_s\":$(num "${up%.*}")"
out+=",\"now\":$(date +%s),\"home\":$(j "${HOME:-}"),\"user\":$(j "$(id -un 2>/dev/null)")"

# ---- GPUs ----
gpus='[' apps='[' driver='' cuda='' gpu_err=''
if have nvidia-smi; then
  q=$(timeout 15 nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu,temperature.gpu,uuid,driver_version --format=csv,noheader,nounits 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    first=1
    while IFS=',' read -r idx name mt mu ut tc uuid drv; do
      [ -n "$(trim "$idx")" ] || continue
      [ $first -eq 1 ] || gpus+=','; first=0
      gpus+="{\"index\":$(num "$(trim "$idx")"),\"name\":$(j "$(trim "$name")"),\"memory_total_mib\":$(num "$(trim "$mt")"),\"memory_used_mib\":$(num "$(trim "$mu")"),\"utilization_pct\":$(num "$(trim "$ut")"),\"temperature_c\":$(num "$(trim "$tc")"),\"uuid\":$(j "$(trim "$uuid")")}"
      driver=$(trim "$drv")
    done <<< "$q"
    hdr=$(timeout 15 nvidia-smi 2>/dev/null | head -n 5)
    case "$hdr" in *"CUDA Version:"*) cuda=${hdr#*CUDA Version:}; cuda=$(trim "${cuda%%|*}"); cuda=${cuda%% *} ;; esac
    a=$(timeout 15 nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader,nounits 2>/dev/null)
    first=1
    while IFS=',' read -r guuid pid mem; do
      pid=$(trim "$pid"); [ -n "$pid" ] || continue
      cmdline=$(ps -o args= -p "$pid" 2>/dev/null | cut -c1-160)
      user=$(ps -o user= -p "$pid" 2>/dev/null)
      [ $first -eq 1 ] || apps+=','; first=0
      apps+="{\"gpu_uuid\":$(j "$(trim "$guuid")"),\"pid\":$(num "$pid"),\"used_memory_mib\":$(num "$(trim "$mem")"),\"user\":$(j "$(trim "$user")"),\"command\":$(j "$cmdline")}"
    done <<< "$a"
  else
    gpu_err=$(printf '%s' "$q" | head -c 300)
  fi
else
  gpu_err="nvidia-smi not found"
fi
out+=",\"gpus\":$gpus],\"gpu_processes\":$apps],\"driver_version\":$( [ -n "$driver" ] && j "$driver" || printf null),\"cuda_version\":$( [ -n "$cuda" ] && j "$cuda" || printf null),\"gpu_error\":$( [ -n "$gpu_err" ] && j "$gpu_err" || printf null)"

# ---- disks: bytes and inodes, per requested mount (plus / and $HOME) ----
declare -A seen=()
dl='[' first=1
for m in / "${HOME:-/root}" /dev/shm "${mounts[@]}"; do
  [ -n "$m" ] || continue
  case "$m" in "~"|"~/"*) m="${HOME:-/root}${m#\~}" ;; '$HOME'*) m="${HOME:-/root}${m#\$HOME}" ;; esac
  [ -z "${seen[$m]:-}" ] || continue; seen[$m]=1
  if [ ! -e "$m" ]; then
    [ $first -eq 1 ] || dl+=','; first=0
    dl+="{\"path\":$(j "$m"),\"exists\":false}"; continue
  fi
  b=$(df -Pk "$m" 2>/dev/null | tail -n 1)
  i=$(df -Pi "$m" 2>/dev/null | tail -n 1)
  read -r bfs btot bused bavail bpct bmnt <<< "$b"
  read -r ifs itot iused iavail ipct imnt <<< "$i"
  [ $first -eq 1 ] || dl+=','; first=0
  dl+="{\"path\":$(j "$m"),\"exists\":true,\"mountpoint\":$(j "${bmnt:-}"),\"filesystem\":$(j "${bfs:-}"),\"size_kb\":$(num "${btot:-}"),\"used_kb\":$(num "${bused:-}"),\"avail_kb\":$(num "${bavail:-}"),\"inodes_total\":$(num "${itot:-}"),\"inodes_used\":$(num "${iused:-}")}"
done
out+=",\"disks\":$dl]"

# ---- memory: cgroup v2, then v1; host total ----
cg=null
if [ -r /proc/self/cgroup ]; then
  rel=$(grep -m1 '^0::' /proc/self/cgroup 2>/dev/null | cut -d: -f3)
  for f in "/sys/fs/cgroup${rel}/memory.max" /sys/fs/cgroup/memory.max; do
    if [ -r "$f" ]; then v=$(cat "$f"); [ "$v" = max ] && cg='"max"' || cg=$(num "$v"); break; fi
  done
  if [ "$cg" = null ] && [ -r /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then cg=$(num "$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"); fi
fi
mt=$(awk '/^MemTotal:/ {printf "%.0f", $2*1024}' /proc/meminfo 2>/dev/null)
out+=",\"memory\":{\"cgroup_limit_bytes\":$cg,\"host_total_bytes\":$(num "$mt")}"

# ---- tools ----
tl='{' first=1
for t in tmux rsync python3 sbatch kubectl setsid nohup; do
  [ $first -eq 1 ] || tl+=','; first=0
  if have "$t"; then tl+="\"$t\":true"; else tl+="\"$t\":false"; fi
done
out+=",\"tools\":$tl}"

# ---- python and torch (fast path: metadata only; --deep imports torch) ----
pyj=null
pybin=$(command -v "$py" 2>/dev/null)
if [ -n "$pybin" ]; then
  if [ $deep -eq 1 ]; then
    code='import sys,json,os
r={"path":os.path.realpath(sys.executable),"version":sys.version.split()[0],"torch":None}
try:
    import torch
    r["torch"]={"version":torch.__version__,"cuda_build":torch.version.cuda,"cuda_available":bool(torch.cuda.is_available()),"device_count":torch.cuda.device_count() if torch.cuda.is_available() else 0,"method":"import"}
except Exception as e:
    r["torch_error"]=str(e)[:200]
print(json.dumps(r))'
    pyj=$(timeout 90 "$pybin" -c "$code" 2>/dev/null | tail -n 1)
  else
    code='import sys,json,os,re,importlib.util
r={"path":os.path.realpath(sys.executable),"version":sys.version.split()[0],"torch":None}
try:
    s=importlib.util.find_spec("torch")
    if s and s.origin:
        d=os.path.dirname(s.origin); v=None; c=None
        try:
            t=open(os.path.join(d,"version.py")).read()
            m=re.search(r"__version__\s*=\s*[\x27\"]([^\x27\"]+)",t); v=m and m.group(1)
            m=re.search(r"^cuda\s*(?::\s*[^=]+)?=\s*[\x27\"]([^\x27\"]+)",t,re.M); c=m and m.group(1)
        except OSError: pass
        r["torch"]={"version":v,"cuda_build":c,"method":"metadata"}
except Exception as e:
    r["torch_error"]=str(e)[:200]
print(json.dumps(r))'
    pyj=$(timeout 10 "$pybin" -c "$code" 2>/dev/null | tail -n 1)
  fi
  case "$pyj" in '{'*) ;; *) pyj="{\"path\":$(j "$pybin"),\"version\":null,\"torch\":null}" ;; esac
fi
out+=",\"python\":${pyj:-null}"

# ---- platform markers ----
mk='{"paths":[' first=1
for p in "${paths[@]}"; do [ -e "$p" ] || continue; [ $first -eq 1 ] || mk+=','; first=0; mk+=$(j "$p"); done
mk+='],"env":[' first=1
penv=$(tr '\0' '\n' 2>/dev/null </proc/1/environ | cut -d= -f1)
envvals='{' efirst=1
for e in "${envs[@]}"; do
  v=${!e-}
  if [ -z "$v" ]; then v=$(tr '\0' '\n' 2>/dev/null </proc/1/environ | grep -m1 "^$e=" | cut -d= -f2-); fi
  if [ -n "$v" ] || printf '%s\n' "$penv" | grep -qx "$e"; then
    [ $first -eq 1 ] || mk+=','; first=0; mk+=$(j "$e")
    [ $efirst -eq 1 ] || envvals+=','; efirst=0; envvals+="$(j "$e"):$(j "$(printf '%s' "$v" | head -c 120)")"
  fi
done
mk+='],"commands":[' first=1
for c in "${cmds[@]}"; do have "$c" || continue; [ $first -eq 1 ] || mk+=','; first=0; mk+=$(j "$c"); done
mk+=']'
out+=",\"markers\":$mk,\"env_values\":$envvals}}"

printf '%s}\n' "$out"
