/**
 * The fake GPU of a lab box: a bash script that answers the handful of `nvidia-smi` invocations the
 * project (and a human) uses, printing the driver's real output shapes:
 *
 *   --query-gpu=<fields> --format=csv[,noheader][,nounits]   (header "memory.total [MiB]", value "81920 MiB")
 *   --query-compute-apps=<fields> --format=csv[,...]          (one row per busy GPU)
 *   -L / --list-gpus                                          ("GPU 0: <model> (UUID: GPU-…)")
 *   no arguments                                              (the boxed status table)
 *   -i/--id=<indices>  --version
 *
 * Which GPUs are busy can change while the box runs: when the state file exists, each of its lines
 * "<index> [pid] [used MiB]" marks one GPU busy (an empty file = all idle); a pid no process has is how a
 * test makes a VRAM zombie. Health faults come from "<state file>.health": lines
 * "<index> <field>=<value> …" override any --query-gpu field of that GPU, e.g.
 * "3 clocks_throttle_reasons.hw_thermal_slowdown=Active ecc.errors.uncorrected.volatile.total=2
 * retired_pages.pending=Yes" (values as the driver prints them; "_" stands for a space in a value).
 * Every invocation appends its argv to the log file, so tests can assert how the GPU was queried.
 */
import { shq } from "../common/text.js";

export interface GpuStubSpec {
  /** number of GPUs (1, 2, 8 …) */
  gpus: number;
  /** GPUs that start busy (memory used + one compute app each) */
  busyGpus?: number[];
  /** product name, default "NVIDIA A100-SXM4-80GB" */
  model?: string;
  /** per-GPU memory in MiB, default 81920 */
  memoryMiB?: number;
  /** default "535.129.03" */
  driver?: string;
  /** default "12.2" */
  cuda?: string;
  /** seed for the stable fake UUIDs (e.g. the box name) */
  seed?: string;
  /** file whose lines override busyGpus at call time */
  stateFile?: string;
  /** file each invocation's argv is appended to */
  logFile?: string;
}

/** A deterministic 32-hex-digit string from a seed (FNV-1a, stretched); good enough for fake UUIDs. */
function hexFrom(seed: string, n = 32): string {
  let out = "";
  let h = 0x811c9dc5;
  let round = 0;
  while (out.length < n) {
    for (const ch of `${seed}#${round}`) {
      h ^= ch.charCodeAt(0);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    out += h.toString(16).padStart(8, "0");
    round++;
  }
  return out.slice(0, n);
}

export function fakeGpuUuid(seed: string, index: number): string {
  const h = hexFrom(`${seed}:${index}`);
  return `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const BUS_IDS = ["07", "0B", "48", "4C", "88", "8B", "C8", "CB", "0F", "13", "52", "56", "92", "96", "D2", "D6"];


/** The stub's full script text (bash + coreutils only). */
export function stubNvidiaSmi(spec: GpuStubSpec): string {
  const n = Math.max(0, Math.floor(spec.gpus));
  const model = spec.model ?? "NVIDIA A100-SXM4-80GB";
  const mem = spec.memoryMiB ?? 81920;
  const driver = spec.driver ?? "535.129.03";
  const cuda = spec.cuda ?? "12.2";
  const seed = spec.seed ?? "lab";
  const uuids = Array.from({ length: n }, (_, i) => fakeGpuUuid(seed, i));
  const buses = Array.from({ length: n }, (_, i) => `00000000:${BUS_IDS[i % BUS_IDS.length]}:00.0`);
  const serials = Array.from({ length: n }, (_, i) => `1${hexFrom(`${seed}:serial:${i}`, 12).replace(/[a-f]/g, (c) => String(c.charCodeAt(0) % 10))}`);
  const busyDefault = (spec.busyGpus ?? []).filter((i) => i >= 0 && i < n).map((i) => `${i} ${31337 + i} 30250`).join("\n");

  return `#!/bin/bash
# nvidia-smi stand-in for the remote-gpu-trainer test lab (no GPU here; output follows the real driver's shapes)
set -u
NGPU=${n}
MODEL=${shq(model)}
MEM_TOTAL=${mem}
DRIVER=${shq(driver)}
CUDA=${shq(cuda)}
UUIDS=(${uuids.map(shq).join(" ")})
BUSES=(${buses.map(shq).join(" ")})
SERIALS=(${serials.map(shq).join(" ")})
STATE_FILE=${shq(spec.stateFile ?? "")}
LOG_FILE=${shq(spec.logFile ?? "")}
BUSY_DEFAULT=${shq(busyDefault)}

if [ -n "$LOG_FILE" ]; then printf '%s\\n' "$*" >> "$LOG_FILE" 2>/dev/null || true; fi

# busy table: BUSY_PID[i], BUSY_MEM[i] set for each busy GPU
declare -a BUSY_PID=() BUSY_MEM=()
load_busy() {
  local src="$BUSY_DEFAULT" idx pid used
  if [ -n "$STATE_FILE" ] && [ -f "$STATE_FILE" ]; then src=$(cat "$STATE_FILE"); fi
  while read -r idx pid used; do
    case "$idx" in ''|*[!0-9]*) continue ;; esac
    [ "$idx" -lt "$NGPU" ] || continue
    BUSY_PID[$idx]=\${pid:-$((31337 + idx))}
    BUSY_MEM[$idx]=\${used:-30250}
  done <<< "$src"
}
load_busy

# health overrides: HOV["<index>|<field>"]=value, from "<state file>.health"
declare -A HOV=()
load_health() {
  local idx kv
  [ -n "$STATE_FILE" ] && [ -f "$STATE_FILE.health" ] || return 0
  while read -r idx rest; do
    case "$idx" in ''|*[!0-9]*) continue ;; esac
    for kv in $rest; do HOV["$idx|\${kv%%=*}"]="\${kv#*=}"; done
  done < "$STATE_FILE.health"
}
load_health

is_busy() { [ -n "\${BUSY_PID[$1]:-}" ]; }
# results go to globals (MU, GF), not stdout: a $(…) per field made an 8-GPU query take ~0.2 s
mem_used() { if is_busy "$1"; then MU=$(( BUSY_MEM[$1] + 4 )); else MU=4; fi; }

fail() { printf '%s\\n' "$1" >&2; exit "\${2:-2}"; }

# value of one --query-gpu field for GPU $2, as "number|unit" (unit may be empty)
gpu_field() {
  local f="$1" i="$2" used
  if [ -n "\${HOV[$i|$f]:-}" ]; then GF="\${HOV[$i|$f]//_/ }|"; return 0; fi
  mem_used "$i"; used=$MU
  case "$f" in
    index) GF="$i|" ;;
    count) GF="$NGPU|" ;;
    name|gpu_name) GF="$MODEL|" ;;
    uuid|gpu_uuid) GF="\${UUIDS[$i]}|" ;;
    serial|gpu_serial) GF="\${SERIALS[$i]}|" ;;
    pci.bus_id|gpu_bus_id) GF="\${BUSES[$i]}|" ;;
    driver_version) GF="$DRIVER|" ;;
    vbios_version) GF="92.00.45.00.05|" ;;
    persistence_mode) GF="Enabled|" ;;
    display_mode|display_active) GF="Disabled|" ;;
    compute_mode) GF="Default|" ;;
    mig.mode.current|mig.mode.pending) GF="Disabled|" ;;
    pstate) GF="P0|" ;;
    fan.speed) GF="[N/A]|" ;;
    memory.total) GF="$MEM_TOTAL|MiB" ;;
    memory.used) GF="$used|MiB" ;;
    memory.free) GF="$(( MEM_TOTAL - used ))|MiB" ;;
    memory.reserved) GF="0|MiB" ;;
    utilization.gpu) if is_busy "$i"; then GF="97|%"; else GF="0|%"; fi ;;
    utilization.memory) if is_busy "$i"; then GF="41|%"; else GF="0|%"; fi ;;
    temperature.gpu) if is_busy "$i"; then GF="67|"; else GF="33|"; fi ;;
    temperature.memory) if is_busy "$i"; then GF="71|"; else GF="35|"; fi ;;
    power.draw) if is_busy "$i"; then GF="312.48|W"; else GF="61.95|W"; fi ;;
    power.limit|enforced.power.limit|power.default_limit|power.max_limit) GF="400.00|W" ;;
    clocks.sm|clocks.current.sm) if is_busy "$i"; then GF="1410|MHz"; else GF="210|MHz"; fi ;;
    clocks.mem|clocks.current.memory) GF="1593|MHz" ;;
    clocks.max.sm|clocks.max.graphics) GF="1410|MHz" ;;
    ecc.mode.current|ecc.mode.pending) GF="Enabled|" ;;
    ecc.errors.corrected.volatile.total|ecc.errors.uncorrected.volatile.total|ecc.errors.corrected.aggregate.total|ecc.errors.uncorrected.aggregate.total) GF="0|" ;;
    retired_pages.pending) GF="No|" ;;
    retired_pages.single_bit_ecc.count|retired_pages.sbe|retired_pages.double_bit.count|retired_pages.dbe) GF="0|" ;;
    clocks_throttle_reasons.active|clocks_event_reasons.active) if is_busy "$i"; then GF="0x0000000000000000|"; else GF="0x0000000000000001|"; fi ;;
    clocks_throttle_reasons.gpu_idle|clocks_event_reasons.gpu_idle) if is_busy "$i"; then GF="Not Active|"; else GF="Active|"; fi ;;
    clocks_throttle_reasons.hw_slowdown|clocks_throttle_reasons.hw_thermal_slowdown|clocks_throttle_reasons.hw_power_brake_slowdown|clocks_throttle_reasons.sw_thermal_slowdown|clocks_throttle_reasons.sw_power_cap|clocks_throttle_reasons.applications_clocks_setting|clocks_throttle_reasons.sync_boost) GF="Not Active|" ;;
    clocks_event_reasons.hw_slowdown|clocks_event_reasons.hw_thermal_slowdown|clocks_event_reasons.hw_power_brake_slowdown|clocks_event_reasons.sw_thermal_slowdown|clocks_event_reasons.sw_power_cap|clocks_event_reasons.applications_clocks_setting|clocks_event_reasons.sync_boost) GF="Not Active|" ;;
    timestamp) GF="$(date '+%Y/%m/%d %H:%M:%S.000')|" ;;
    *) return 1 ;;
  esac
}

# the header text of a --query-gpu field (the driver prints the canonical name plus the unit)
gpu_header() {
  local f="$1" unit="$2" name="$1"
  case "$f" in
    gpu_name) name=name ;;
    gpu_uuid) name=uuid ;;
    gpu_serial) name=serial ;;
    gpu_bus_id) name=pci.bus_id ;;
    clocks.sm) name=clocks.current.sm ;;
    clocks.mem) name=clocks.current.memory ;;
    clocks.max.sm) name=clocks.max.sm ;;
    display_active) name=display_active ;;
  esac
  if [ -n "$unit" ]; then printf '%s [%s]' "$name" "$unit"; else printf '%s' "$name"; fi
}

# the units of a field are fixed; ask GPU 0 (or a placeholder when there is none)
field_unit() { gpu_field "$1" 0 || return 1; echo "\${GF#*|}"; }

FORMAT=""; QUERY_GPU=""; QUERY_APPS=""; LIST=0; IDS=""; HAVE_QGPU=0; HAVE_QAPPS=0
while [ $# -gt 0 ]; do
  case "$1" in
    -L|--list-gpus) LIST=1 ;;
    --query-gpu=*) QUERY_GPU="\${1#*=}"; HAVE_QGPU=1 ;;
    --query-gpu|-q-gpu) shift; QUERY_GPU="\${1:-}"; HAVE_QGPU=1 ;;
    --query-compute-apps=*) QUERY_APPS="\${1#*=}"; HAVE_QAPPS=1 ;;
    --query-compute-apps) shift; QUERY_APPS="\${1:-}"; HAVE_QAPPS=1 ;;
    --format=*) FORMAT="\${1#*=}" ;;
    --format) shift; FORMAT="\${1:-}" ;;
    -i|--id) shift; IDS="\${1:-}" ;;
    --id=*) IDS="\${1#*=}" ;;
    --version)
      printf '\\nNVIDIA-SMI version  : %s\\nNVML version        : %s\\nDRIVER version      : %s\\nCUDA Version        : %s\\n' \\
        "$DRIVER" "\${DRIVER%%.*}.\${DRIVER#*.}" "$DRIVER" "$CUDA"
      exit 0 ;;
    -h|--help) printf 'NVIDIA System Management Interface -- v%s (test-lab stand-in)\\n' "$DRIVER"; exit 0 ;;
    *) fail "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help." 2 ;;
  esac
  shift
done

# which GPUs this call covers
SEL=()
if [ -n "$IDS" ]; then
  IFS=, read -r -a want <<< "$IDS"
  for w in "\${want[@]}"; do
    w="\${w// /}"
    found=""
    for ((g = 0; g < NGPU; g++)); do
      if [ "$w" = "$g" ] || [ "$w" = "\${UUIDS[$g]}" ] || [ "$w" = "\${BUSES[$g]}" ]; then found=$g; fi
    done
    [ -n "$found" ] || fail "No devices were found" 6
    SEL+=("$found")
  done
else
  for ((g = 0; g < NGPU; g++)); do SEL+=("$g"); done
fi
[ "$NGPU" -gt 0 ] || fail "No devices were found" 6

NOHEADER=0; NOUNITS=0
if [ "$HAVE_QGPU" = 1 ] || [ "$HAVE_QAPPS" = 1 ]; then
  [ -n "$FORMAT" ] || fail '"--format=" switch is missing. Please run '"'"'nvidia-smi -h'"'"' for help.' 2
  IFS=, read -r -a fmt <<< "$FORMAT"
  sawcsv=0
  for o in "\${fmt[@]}"; do
    case "$o" in
      csv) sawcsv=1 ;;
      noheader) NOHEADER=1 ;;
      nounits) NOUNITS=1 ;;
      *) fail "\\"$o\\" is not a valid format option. Please run 'nvidia-smi -h' for help." 2 ;;
    esac
  done
  [ "$sawcsv" = 1 ] || fail 'Only CSV output format is supported. Please run '"'"'nvidia-smi -h'"'"' for help.' 2
fi

emit_value() { # "$num|$unit"
  local num="\${1%%|*}" unit="\${1#*|}"
  if [ -z "$unit" ] || [ "$NOUNITS" = 1 ] || [ "\${num:0:1}" = "[" ]; then printf '%s' "$num"; else printf '%s %s' "$num" "$unit"; fi
}

if [ "$HAVE_QGPU" = 1 ]; then
  IFS=, read -r -a fields <<< "$QUERY_GPU"
  [ "\${#fields[@]}" -gt 0 ] || fail 'Field "" is not a valid field to query.' 2
  for ((k = 0; k < \${#fields[@]}; k++)); do
    fields[$k]="\${fields[$k]// /}"
    gpu_field "\${fields[$k]}" 0 > /dev/null || fail "Field \\"\${fields[$k]}\\" is not a valid field to query." 2
  done
  if [ "$NOHEADER" = 0 ]; then
    line=""
    for ((k = 0; k < \${#fields[@]}; k++)); do
      h=$(gpu_header "\${fields[$k]}" "$(field_unit "\${fields[$k]}")")
      if [ "$k" -eq 0 ]; then line="$h"; else line="$line, $h"; fi
    done
    printf '%s\\n' "$line"
  fi
  for g in "\${SEL[@]}"; do
    line=""
    for ((k = 0; k < \${#fields[@]}; k++)); do
      gpu_field "\${fields[$k]}" "$g"; v=\${GF%%|*}; u=\${GF#*|}
      if [ -n "$u" ] && [ "$NOUNITS" = 0 ] && [ "\${v:0:1}" != "[" ]; then v="$v $u"; fi
      if [ "$k" -eq 0 ]; then line="$v"; else line="$line, $v"; fi
    done
    printf '%s\\n' "$line"
  done
  exit 0
fi

app_field() { # field gpu -> "value|unit"
  case "$1" in
    pid) echo "\${BUSY_PID[$2]}|" ;;
    process_name|name) echo "python|" ;;
    used_memory|used_gpu_memory) echo "\${BUSY_MEM[$2]}|MiB" ;;
    gpu_uuid) echo "\${UUIDS[$2]}|" ;;
    gpu_bus_id) echo "\${BUSES[$2]}|" ;;
    gpu_name) echo "$MODEL|" ;;
    gpu_serial) echo "\${SERIALS[$2]}|" ;;
    *) return 1 ;;
  esac
}
app_header() {
  case "$1" in
    used_memory|used_gpu_memory) printf 'used_gpu_memory [MiB]' ;;
    name) printf 'process_name' ;;
    *) printf '%s' "$1" ;;
  esac
}

if [ "$HAVE_QAPPS" = 1 ]; then
  IFS=, read -r -a fields <<< "$QUERY_APPS"
  for ((k = 0; k < \${#fields[@]}; k++)); do
    fields[$k]="\${fields[$k]// /}"
    case "\${fields[$k]}" in
      pid|process_name|name|used_memory|used_gpu_memory|gpu_uuid|gpu_bus_id|gpu_name|gpu_serial) ;;
      *) fail "Field \\"\${fields[$k]}\\" is not a valid field to query." 2 ;;
    esac
  done
  if [ "$NOHEADER" = 0 ]; then
    line=""
    for ((k = 0; k < \${#fields[@]}; k++)); do
      h=$(app_header "\${fields[$k]}")
      if [ "$k" -eq 0 ]; then line="$h"; else line="$line, $h"; fi
    done
    printf '%s\\n' "$line"
  fi
  for g in "\${SEL[@]}"; do
    is_busy "$g" || continue
    line=""
    for ((k = 0; k < \${#fields[@]}; k++)); do
      v=$(emit_value "$(app_field "\${fields[$k]}" "$g")")
      if [ "$k" -eq 0 ]; then line="$v"; else line="$line, $v"; fi
    done
    printf '%s\\n' "$line"
  done
  exit 0
fi

if [ "$LIST" = 1 ]; then
  for g in "\${SEL[@]}"; do printf 'GPU %d: %s (UUID: %s)\\n' "$g" "$MODEL" "\${UUIDS[$g]}"; done
  exit 0
fi

# the plain status table (89 columns wide, as the 535 driver prints it)
RULE='+---------------------------------------------------------------------------------------+'
SPLIT='+-----------------------------------------+----------------------+----------------------+'
printf '%-89s\\n' "$(date '+%a %b %e %H:%M:%S %Y')"
printf '%s\\n' "$RULE"
printf '| %-85s |\\n' "NVIDIA-SMI $DRIVER                 Driver Version: $DRIVER   CUDA Version: $CUDA"
printf '%s\\n' '|-----------------------------------------+----------------------+----------------------+'
printf '%s\\n' '| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |'
printf '%s\\n' '| Fan  Temp   Perf          Pwr:Usage/Cap |         Memory-Usage | GPU-Util  Compute M. |'
printf '%s\\n' '|                                         |                      |               MIG M. |'
printf '%s\\n' '|=========================================+======================+======================|'
for g in "\${SEL[@]}"; do
  gpu_field temperature.gpu "$g"; temp="\${GF%%|*}"
  gpu_field power.draw "$g"; pw="\${GF%%|*}"; pw="\${pw%%.*}"
  gpu_field utilization.gpu "$g"; util="\${GF%%|*}"
  mem_used "$g"; used=$MU
  printf '| %3d  %-28s %4s  | %16s %3s | %20s |\\n' "$g" "\${MODEL:0:27}" "On" "\${BUSES[$g]}" "Off" "0"
  printf '| %3s  %3sC    %2s %23s | %20s | %6s %13s |\\n' "N/A" "$temp" "P0" "\${pw}W / 400W" "\${used}MiB / \${MEM_TOTAL}MiB" "\${util}%" "Default"
  printf '| %39s | %20s | %20s |\\n' "" "" "Disabled"
  printf '%s\\n' "$SPLIT"
done
printf '%89s\\n' ""
printf '%s\\n' "$RULE"
printf '| %-85s |\\n' "Processes:"
printf '| %-85s |\\n' " GPU   GI   CI        PID   Type   Process name                            GPU Memory"
printf '| %-85s |\\n' "       ID   ID                                                             Usage"
printf '%s\\n' '|=======================================================================================|'
any=0
for g in "\${SEL[@]}"; do
  is_busy "$g" || continue
  any=1
  printf '| %4d   %3s  %3s  %8s  %5s   %-40s %9s |\\n' "$g" "N/A" "N/A" "\${BUSY_PID[$g]}" "C" "python" "\${BUSY_MEM[$g]}MiB"
done
[ "$any" = 1 ] || printf '| %-85s |\\n' " No running processes found"
printf '%s\\n' "$RULE"
exit 0
`;
}
