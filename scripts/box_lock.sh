#!/usr/bin/env bash
# rgt: hold the box-side lock of one push destination for as long as the caller keeps this script's stdin
# open, so two client machines (or two servers) never write into the same directory at once. The lock is
# an flock on ~/.rgt/locks/<key>.lock: the kernel drops it when this process ends, so a holder whose
# connection died (sshd closes the channel, `cat` sees end of input) leaves no stale lock behind.
#   usage: bash box_lock.sh <key> <wait_s> <holder text>     (the script arrives on stdin; what follows it holds the lock)
# Answers one line: RGT_LOCK LOCKED | RGT_LOCK BUSY <holder text of the one that has it> | RGT_LOCK NOLOCK <why>
# (marked: a login shell that prints on non-interactive sessions may say things before it)
set -u
key=${1:?key}
wait_s=${2:-0}
holder=${3:-}
case $key in *[!A-Za-z0-9_-]*) echo "RGT_LOCK NOLOCK bad key"; exit 0 ;; esac
case $wait_s in '' | *[!0-9]*) wait_s=0 ;; esac
command -v flock >/dev/null 2>&1 || { echo "RGT_LOCK NOLOCK no flock on the box"; cat >/dev/null; exit 0; }
d=$HOME/.rgt/locks
mkdir -p "$d" 2>/dev/null && chmod 700 "$d" 2>/dev/null
f=$d/$key.lock
exec 9>>"$f" || { echo "RGT_LOCK NOLOCK cannot open $f"; cat >/dev/null; exit 0; }
if flock -w "$wait_s" 9; then
  printf '%s\n' "${holder:0:300}" >"$f.who"
  echo "RGT_LOCK LOCKED"
  cat >/dev/null
  rm -f "$f.who"
  exit 0
fi
w=""
{ IFS= read -r w <"$f.who"; } 2>/dev/null
echo "RGT_LOCK BUSY ${w:0:300}"
exit 0
