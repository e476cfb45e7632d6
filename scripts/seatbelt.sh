#!/usr/bin/env bash
# rgt: install the seatbelt on a box: ~/.rgt/shims/<shim> with a link per provider CLI and power verb,
# all pointing at the content-hashed shim. Commands run by remote_exec and by every launch_queue cell see
# this directory first on PATH.
#   usage: bash seatbelt.sh <file name of the installed rgt_shim script, beside this one>
set -u
# rgt: include lib/seatbelt.sh
here=$(cd "$(dirname "$0")" && pwd) || exit 92
d=$(seatbelt_dir "$here/${1:?shim name}") || { echo "RGTERR cannot create the shim dir"; exit 92; }
printf 'SHIMS\t%s\n' "$d"
