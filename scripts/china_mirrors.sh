#!/usr/bin/env bash
# rgt: point the box's own tools at the profile's China mirrors, in one round trip, idempotently.
#   usage: bash china_mirrors.sh [--check] <pip_index_url|""> <hf_home|""> [conda_channel_url...]
# pip: the user config (~/.config/pip/pip.conf) gets `index-url` under [global] unless some pip config
#      already names an index (then it is left as the user set it);
# conda: ~/.condarc gets the channel list when it has none of its own;
# HF cache: the dir is created.
# Prints one line per item, "<item> <ok|set|kept|missing|created> <detail>". --check changes nothing and
# reports what a setup would do as `missing`. Needs bash + coreutils (grep, sed) only.
set -u
CHECK=0
[ "${1:-}" = --check ] && { CHECK=1; shift; }
PIP_URL=${1:-}
HF=${2:-}
shift 2 2>/dev/null || shift $#
CHANNELS=("$@")
line() { printf '%s %s %s\n' "$1" "$2" "$3"; }
case $HF in "~") HF=$HOME ;; "~/"*) HF="$HOME/${HF#\~/}" ;; esac
HF=${HF//\$HOME/$HOME}

if [ -n "$PIP_URL" ]; then
  f="${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf"
  have=""
  for g in "$f" "$HOME/.pip/pip.conf" /etc/pip.conf /etc/xdg/pip/pip.conf; do
    [ -r "$g" ] && grep -Eq '^[[:space:]]*index-url[[:space:]]*=' "$g" && { have=$g; break; }
  done
  if [ -n "$have" ] && grep -Eq "^[[:space:]]*index-url[[:space:]]*=[[:space:]]*${PIP_URL//./\\.}/?[[:space:]]*$" "$have"; then
    line pip ok "$have"
  elif [ -n "$have" ]; then
    line pip kept "$have names its own index"
  elif [ "$CHECK" = 1 ]; then
    line pip missing "no pip config names an index"
  else
    mkdir -p "${f%/*}" || { line pip failed "cannot create ${f%/*}"; exit 0; }
    if [ -f "$f" ] && grep -q '^\[global\]' "$f"; then
      sed -i "/^\[global\]/a index-url = $PIP_URL" "$f"
    else
      printf '[global]\nindex-url = %s\n' "$PIP_URL" >>"$f"
    fi
    line pip set "$f"
  fi
fi

if [ "${#CHANNELS[@]}" -gt 0 ]; then
  f="$HOME/.condarc"
  if [ -r "$f" ] && grep -Fq "${CHANNELS[0]}" "$f"; then
    line conda ok "$f"
  elif [ -r "$f" ] && grep -Eq '^[[:space:]]*channels[[:space:]]*:' "$f"; then
    line conda kept "$f lists its own channels"
  elif [ "$CHECK" = 1 ]; then
    line conda missing "no channel list in $f"
  else
    {
      printf 'channels:\n'
      for c in "${CHANNELS[@]}"; do printf '  - %s\n' "$c"; done
      printf 'show_channel_urls: true\n'
    } >>"$f"
    line conda set "$f"
  fi
fi

if [ -n "$HF" ]; then
  if [ -d "$HF" ]; then
    line hf_home ok "$HF"
  elif [ "$CHECK" = 1 ]; then
    line hf_home missing "$HF"
  elif mkdir -p "$HF/hub" 2>/dev/null; then
    line hf_home created "$HF"
  else
    line hf_home failed "cannot create $HF"
  fi
fi
exit 0
