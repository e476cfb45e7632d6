#!/usr/bin/env bash
# rgt: write one credential, read from the rest of stdin, to TARGET: umask 077, a temp name beside it,
# chmod 600, rename into place (a reader never sees half a credential); prints the byte count written.
# The server streams this script and then the credential on the same stdin (`bash -s -- TARGET`): bash
# reads a script from a pipe only up to the command it runs, so the credential that follows the last
# line below is never read as shell, only by `cat`. Exit 41 mkdir, 42 write, 43 rename failed.
#   usage: bash -s -- TARGET   (stdin: this script, then the credential bytes)
set -u
write_secret() {
  umask 077
  local t=$1 d tmp
  d=$(dirname -- "$t")
  mkdir -p -- "$d" || return 41
  tmp="$t.rgt-tmp.$$"
  if ! cat >"$tmp"; then rm -f -- "$tmp"; return 42; fi
  if ! { chmod 600 -- "$tmp" && mv -f -- "$tmp" "$t"; }; then rm -f -- "$tmp"; return 43; fi
  wc -c <"$t"
}
write_secret "${1:?target}"; exit $?
