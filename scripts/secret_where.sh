#!/usr/bin/env bash
# rgt: where would push_secret's file land? One round trip, no secret in it. Prints lines:
#   T=<dir resolved>/<name>    the destination with its directory's symlinks resolved
#   RAW=<path>                 the destination as written, made absolute against $HOME
#   M=<root>\t<resolved root>  each candidate shared/durable root, resolved the same way
#   P=<path> E=<name> C=<cmd>  which platform markers the box shows (only when asked)
#   H=<hostname>
#   usage: bash secret_where.sh TARGET [--root R]... [--path P]... [--env NAME]... [--cmd NAME]... [--host]
set -u
t=${1:?target}
shift
case "$t" in
  "~") t=$HOME ;;
  "~/"*) t=$HOME/${t#"~/"} ;;
  '$HOME') t=$HOME ;;
  '$HOME/'*) t=$HOME/${t#'$HOME/'} ;;
esac
case "$t" in /*) ;; *) t="$HOME/$t" ;; esac

rp() { realpath -m -- "$1" 2>/dev/null || readlink -f -- "$1" 2>/dev/null || printf '%s\n' "$1"; }

printf 'T=%s/%s\n' "$(rp "$(dirname -- "$t")")" "$(basename -- "$t")"
printf 'RAW=%s\n' "$t"
while [ $# -gt 0 ]; do
  case "$1" in
    --root) printf 'M=%s\t%s\n' "$2" "$(rp "$2")"; shift 2 ;;
    --path) [ -e "$2" ] && printf 'P=%s\n' "$2"; shift 2 ;;
    --env) case "$2" in [A-Za-z_]*) [ -n "${!2+x}" ] && printf 'E=%s\n' "$2" ;; esac; shift 2 ;;
    --cmd) command -v -- "$2" >/dev/null 2>&1 && printf 'C=%s\n' "$2"; shift 2 ;;
    --host) printf 'H=%s\n' "$(hostname 2>/dev/null)"; shift ;;
    *) shift ;;
  esac
done
true
