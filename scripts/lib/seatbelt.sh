# rgt seatbelt: the names a shim stands in for, and the directory of links to the shim for them.
RGT_SHIM_NAMES="vastai vast vast.py runpodctl runpod lambda lambda-cloud lambdalabs pspace paperspace gradient aws gcloud az kubectl scancel shutdown poweroff halt reboot kexec init telinit systemctl loginctl sudo doas"
# seatbelt_dir <absolute path of the installed shim>: ~/.rgt/shims/<shim file name> holding one link per
# name (created once; an existing dir is reused), printed on stdout
seatbelt_dir() {
  local shim=$1 d n
  d="$HOME/.rgt/shims/${shim##*/}"
  d=${d%.sh}
  if [ ! -d "$d" ]; then
    mkdir -p "$d.part.$$" || return 1
    for n in $RGT_SHIM_NAMES; do ln -s "$shim" "$d.part.$$/$n" || return 1; done
    mv -T "$d.part.$$" "$d" 2>/dev/null || rm -rf "$d.part.$$"
  fi
  [ -d "$d" ] && printf '%s\n' "$d"
}
