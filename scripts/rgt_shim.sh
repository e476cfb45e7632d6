#!/usr/bin/env bash
# rgt seatbelt shim (defence in depth, for what no static reading of a command can see): it stands in for
# provider CLIs and power verbs on PATH. Every subcommand that ends nothing goes through to the real binary
# (the first of that name on PATH after the shim dirs); the verbs that destroy an instance or power the box
# off are refused with one line on stderr (DESTROY_BLOCKED_ON_BOX), exit 126, and a marker the status tools
# report. Teardown goes through request_teardown, never through a box.
n=${0##*/}
here=${0%/*}
# sudo/doas reset PATH (secure_path), so a shimmed command under them would miss this dir: route it
# through its shim here, with the path it named kept for the pass-through (`sudo /usr/local/bin/vastai …`)
if [ "$n" = sudo ] || [ "$n" = doas ]; then
  args=("$@")
  k=0
  while [ "$k" -lt "${#args[@]}" ]; do
    case ${args[$k]} in
      --) k=$((k + 1)); break ;;
      -u | -g | -C | -D | -h | -p | -r | -t | -U | -T | -R | --user | --group | --chdir | --close-from | --prompt | --role | --type | --other-user | --command-timeout | --host) k=$((k + 2)) ;;
      -[a-zA-Z]*[ugCDprtUTR]) if [ "$n" = sudo ]; then k=$((k + 2)); else k=$((k + 1)); fi ;;
      -* | *=*) k=$((k + 1)) ;;
      *) break ;;
    esac
  done
  if [ "$k" -lt "${#args[@]}" ]; then
    c=${args[$k]}
    b=${c##*/}
    if [ "$b" != sudo ] && [ "$b" != doas ] && [ -n "$b" ] && [ -L "$here/$b" ]; then
      real=$c
      case $c in */*) ;; *) real=$b ;; esac
      args=("${args[@]:0:$k}" env "RGT_SHIM_REAL=$real" "$here/$b" "${args[@]:$((k + 1))}")
    fi
  fi
  set -- "${args[@]}"
fi
blocked() {
  local line
  line="rgt-seatbelt: refused \`$n ${*:2}\`: $1 (DESTROY_BLOCKED_ON_BOX). Ending or powering off a machine goes through request_teardown."
  line=${line:0:300}
  printf '%s\n' "$line" >&2
  mkdir -p "$HOME/.rgt" 2>/dev/null && printf '%s %s\n' "$(date +%s)" "$line" >>"$HOME/.rgt/seatbelt.log" 2>/dev/null
  if [ -n "${RGT_STATE_DIR:-}" ] && [ -n "${RGT_CELL:-}" ] && [ -d "$RGT_STATE_DIR/cells/$RGT_CELL" ]; then
    printf '%s\n' "$line" >>"$RGT_STATE_DIR/cells/$RGT_CELL/seatbelt" 2>/dev/null
  fi
  exit 126
}
has() { local w x=$1; shift; for w in "$@"; do [ "$w" = "$x" ] && return 0; done; return 1; }
# positional words (options and, for --opt VALUE pairs we know, their values skipped)
pos=()
skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case $a in
    --api-key | --url | --profile | --region | --zone | --project | -n | --namespace | --context | -g | --resource-group | --output | -o) skip=1 ;;
    -*) ;;
    *) pos+=("$a") ;;
  esac
done
p0=${pos[0]:-}
for a in "$@"; do case $a in --help | -h) p0=--help ;; esac; done
[ "$p0" = --help ] && n="help:$n"
case $n in
  vastai | vast | vast.py)
    if has destroy "${pos[@]}"; then blocked "destroys a vast.ai instance (its disk is lost)" "$@"; fi
    for i in "${!pos[@]}"; do
      if [ "${pos[$i]}" = delete ]; then
        case ${pos[$((i + 1))]:-} in ssh-key* | api-key* | env-var* | template* | scheduled-job*) ;; *) blocked "deletes a vast.ai instance or volume" "$@" ;; esac
      fi
    done ;;
  runpodctl | runpod)
    for w in remove rm terminate delete destroy; do has "$w" "${pos[@]}" && blocked "terminates a RunPod pod (its disk is lost)" "$@"; done ;;
  lambda | lambda-cloud | lambdalabs)
    for w in terminate delete destroy rm remove; do has "$w" "${pos[@]}" && blocked "terminates a Lambda instance" "$@"; done ;;
  pspace | paperspace | gradient)
    for w in destroy delete remove release terminate; do has "$w" "${pos[@]}" && blocked "destroys a Paperspace machine" "$@"; done ;;
  aws)
    for w in terminate-instances delete-volume delete-snapshot delete-file-system; do has "$w" "${pos[@]}" && blocked "ends an AWS instance or its storage" "$@"; done ;;
  gcloud)
    if has compute "${pos[@]}" && has delete "${pos[@]}"; then blocked "deletes a Compute Engine resource" "$@"; fi ;;
  az)
    if has delete "${pos[@]}" && { has vm "${pos[@]}" || has group "${pos[@]}" || has disk "${pos[@]}"; }; then blocked "deletes an Azure VM, disk or resource group" "$@"; fi ;;
  kubectl)
    case $p0 in delete | drain) blocked "deletes cluster objects" "$@" ;; esac ;;
  scancel)
    for a in "$@"; do case $a in -u | --user | --user=* | -A | --account* | -p | --partition* | -n | --name* | --jobname* | -t | --state* | --me | -w | --nodelist*) blocked "cancels jobs by filter, not by the ids of this run" "$@" ;; esac; done ;;
  shutdown)
    for a in "$@"; do case $a in -c | --help | -k | --show) p0=ok ;; esac; done
    [ "$p0" = ok ] || blocked "powers the machine off" "$@" ;;
  poweroff | halt | reboot | kexec)
    has --help "$@" || blocked "powers the machine off or reboots it" "$@" ;;
  init | telinit)
    case $p0 in 0 | 6 | s | S) blocked "switches to a power-off/reboot runlevel" "$@" ;; esac ;;
  systemctl | loginctl)
    case $p0 in
      poweroff | halt | reboot | kexec | soft-reboot | suspend | hibernate | hybrid-sleep | suspend-then-hibernate | emergency | rescue) blocked "powers the machine off or reboots it" "$@" ;;
      isolate | start | restart)
        for w in "${pos[@]}"; do case $w in poweroff.target | reboot.target | halt.target | kexec.target | shutdown.target) blocked "switches to a power-off/reboot target" "$@" ;; esac; done ;;
    esac ;;
esac
n=${n#help:}
# a command named by path (routed here by the sudo shim): that very program
if [ -n "${RGT_SHIM_REAL:-}" ]; then
  r=$RGT_SHIM_REAL
  unset RGT_SHIM_REAL
  case $r in */*) [ -x "$r" ] && exec "$r" "$@" ;; esac
fi
# let everything else through to the real program: the first of that name on PATH outside the shim dirs
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  case $d in '' | */.rgt/shims/*) continue ;; esac
  if [ -x "$d/$n" ] && [ ! -d "$d/$n" ]; then exec "$d/$n" "$@"; fi
done
printf 'rgt-seatbelt: %s: command not found\n' "$n" >&2
exit 127
