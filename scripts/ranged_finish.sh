#!/usr/bin/env bash
# ranged_finish.sh PARTIAL TARGET MODE MTIME SHA256 [HASHED] — put in place a file a parallel push assembled
# on the box from byte ranges, only once its bytes hash to what was sent. PARTIAL's range record is
# PARTIAL.ranges. HASHED: the sha256 hash_growing.sh computed here as the bytes landed; when it is SHA256
# the file is not read again, otherwise (or without it) it is hashed now.
# On a match: MODE (octal) and MTIME (seconds[.nanoseconds], as the local file has them) are applied and
# PARTIAL is renamed over TARGET; the record goes, and the partial dir too when nothing else is in it.
# Prints HASH=<sha256 of PARTIAL>. Exit 0: in place; 3: the hash differs (partial and record removed, the
# next push sends it again); 4: it could not be read or moved (ERR=<why>).
set -u
p=${1:?} t=${2:?} mode=${3:?} m=${4:?} want=${5:?} h=${6:-}
if [ "$h" != "$want" ]; then
  if command -v openssl >/dev/null 2>&1; then h=$(openssl dgst -sha256 -r < "$p" 2>/dev/null); else h=$(sha256sum < "$p" 2>/dev/null); fi ||
    { echo "ERR=cannot read the partial file"; exit 4; }
  h=${h%% *}
fi
echo "HASH=$h"
if [ "$h" != "$want" ]; then rm -f -- "$p" "$p.ranges"; exit 3; fi
chmod "$mode" -- "$p" || { echo "ERR=chmod failed"; exit 4; }
touch -m -d "@$m" -- "$p" 2>/dev/null || touch -m -d "@${m%.*}" -- "$p" || { echo "ERR=touch failed"; exit 4; }
# a link or an empty directory in the file's place goes (rsync replaces them too); a directory with files stays
if [ -L "$t" ]; then rm -f -- "$t"; elif [ -d "$t" ]; then rmdir -- "$t" 2>/dev/null || { echo "ERR=a directory is in the way"; exit 4; }; fi
mv -f -- "$p" "$t" || { echo "ERR=rename failed"; exit 4; }
rm -f -- "$p.ranges"
rmdir -- "${p%/*}" 2>/dev/null
exit 0
