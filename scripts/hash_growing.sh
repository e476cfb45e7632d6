#!/usr/bin/env bash
# hash_growing.sh FILE — sha256 of a file while it is still being written, so the hash is ready when the
# last byte lands. Reads byte offsets from stdin, one a line, each saying "FILE's bytes up to here have
# landed": those not hashed yet are read (dd, or tail | head) into one running hash (openssl, or sha256sum). At EOF prints
# HASH=<sha256 of the bytes up to the last offset>. An offset that is not a number, or not past the last,
# is skipped. The whole body is one function, parsed before anything runs: bash -s then reads the offsets
# from the same stdin that carried this script.
main() {
  set -u
  local f=${1:?} at=0 end n
  {
    while IFS= read -r end; do
      case $end in '' | *[!0-9]*) continue ;; esac
      [ "$end" -gt "$at" ] || continue
      n=$((end - at))
      dd if="$f" bs=1M iflag=skip_bytes,count_bytes skip="$at" count="$n" status=none 2>/dev/null ||
        tail -c +"$((at + 1))" -- "$f" | head -c "$n"
      at=$end
    done
  } | sha256_stdin
}
# OpenSSL's sha256 where it is here (several times faster than coreutils' on CPUs with SHA instructions)
sha256_stdin() {
  local h
  if command -v openssl >/dev/null 2>&1; then h=$(openssl dgst -sha256 -r); else h=$(sha256sum); fi
  echo "HASH=${h%% *}"
}
main "$@"
