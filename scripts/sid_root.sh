#!/usr/bin/env bash
# A Debian sid root with CPython 3.14 and 3.15 (python3.1x, -dev, -venv), gcc, rustc and cargo,
# for testing on interpreters that pyenv cannot build here (nothing can be downloaded from
# python.org; Debian's archive is reachable). Kept outside the checkout so that it survives
# `git clean` and is shared by every worktree:
#
#   bash scripts/sid_root.sh ensure            # build it when absent or incomplete; print its path
#   bash scripts/sid_root.sh run CMD [ARG...]  # run CMD inside it, cwd = this checkout
#
# RECOMPYLE_SID_ROOT overrides the place (default: ${XDG_CACHE_HOME:-~/.cache}/recompyle/sid-root).
# Needs root (debootstrap, chroot, mount) and `debootstrap` (installed with apt-get if missing).
#
# Why each piece:
# - The root is built in a temporary directory beside it and renamed into place only when
#   debootstrap finished and every interpreter runs, with a stamp naming the package set: an
#   interrupted build leaves no half root that a later run would trust.
# - Building and checking hold an exclusive lock (flock) on a file beside the root, running
#   holds a shared one: concurrent runs share the root; none is rebuilt under a running one.
# - `run` works in a private mount namespace (unshare), so its bind mounts of /proc, /dev and
#   the checkout vanish when it exits, however it exits, and never touch other runs; a trap
#   unmounts them in order as well.
# - The host's CA bundle and pip configuration are copied in at every `run` (pip and cargo
#   inside must reach the same registries, through the same certificates, as the host).
set -euo pipefail

root="${RECOMPYLE_SID_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/recompyle/sid-root}"
checkout=$(cd "$(dirname "$0")/.." && pwd)
packages="python3.14,python3.14-dev,python3.14-venv,python3.15,python3.15-dev,python3.15-venv"
packages+=",cargo,rustc,gcc,libc6-dev,ca-certificates"
stamp_text="recompyle sid root v1: $packages"
stamp="$root/.recompyle-complete"
lock="$root.lock"

die() { printf 'sid_root.sh: %s\n' "$*" >&2; exit 2; }

# The Debian mirror this machine's own apt sources name (deb822 "URIs:" or one-line "deb URL").
host_mirror() {
  local file url
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -r "$file" ]] || continue
    url=$(awk '
      /^[[:space:]]*#/ { next }
      $1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }
      $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }
    ' "$file" | grep -v -e security -e updates | head -n 1 || true)
    if [[ -n "$url" ]]; then printf '%s\n' "${url%/}"; return; fi
  done
  printf 'http://deb.debian.org/debian\n'
}

complete() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_text" ]] || return 1
  local py
  for py in python3.14 python3.15; do
    chroot "$root" "/usr/bin/$py" -c 'import venv, sysconfig' >/dev/null 2>&1 || return 1
  done
  chroot "$root" /usr/bin/cargo --version >/dev/null 2>&1
}

build() {
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null
  } || die "debootstrap is not installed and apt-get could not install it"
  local mirror tmp
  mirror=$(host_mirror)
  tmp="$root.build.$$"
  rm -rf "$tmp"
  printf 'sid_root.sh: building %s from %s (debootstrap, about a minute)\n' "$root" "$mirror" >&2
  if ! debootstrap --variant=minbase --include="$packages" sid "$tmp" "$mirror" \
    >"$root.debootstrap.log" 2>&1; then
    tail -n 20 "$root.debootstrap.log" >&2
    rm -rf "$tmp"
    die "debootstrap failed (log: $root.debootstrap.log)"
  fi
  rm -rf "$tmp/var/cache/apt/archives"/*.deb
  printf '%s\n' "$stamp_text" >"$tmp/.recompyle-complete"
  rm -rf "$root"
  mv "$tmp" "$root"
  complete || die "the new root at $root does not run python3.14/3.15 and cargo"
}

ensure() {
  mkdir -p "$(dirname "$root")"
  exec 9>"$lock"
  flock -x 9
  complete || build
  flock -u 9
  exec 9>&-
}

# Leave fd 8 holding a shared lock on a complete root, for the lifetime of the command run
# in it (inherited through exec and chroot): concurrent runs share the root, and no rebuild
# starts under one. Only an incomplete root takes the exclusive lock (to build).
ensure_shared() {
  mkdir -p "$(dirname "$root")"
  exec 8>"$lock"
  flock -s 8
  complete && return
  flock -u 8
  ensure
  flock -s 8
}

# Copy host file $1 to $2 inside the root, renamed into place: a run already going never reads
# it half written.
put() {
  [[ -r "$1" ]] || return 0
  mkdir -p "$(dirname "$root$2")"
  cp -fL "$1" "$root$2.$$"
  mv -f "$root$2.$$" "$root$2"
}

# Copy the host's CA bundle and pip configuration in; bind /proc, /dev and the checkout (at
# the same path, so that paths in tracebacks and wheels agree) and chroot.
run_inside() {
  put "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" /etc/ssl/certs/ca-certificates.crt
  put /etc/pip.conf /etc/pip.conf
  put /etc/resolv.conf /etc/resolv.conf
  mkdir -p "$root/proc" "$root/dev" "$root$checkout"
  export RECOMPYLE_SID_INNER_ROOT="$root" RECOMPYLE_SID_INNER_CHECKOUT="$checkout"
  exec unshare --mount --propagation private -- bash -c '
    set -euo pipefail
    r=$RECOMPYLE_SID_INNER_ROOT c=$RECOMPYLE_SID_INNER_CHECKOUT
    links=${PIP_FIND_LINKS:-}
    [[ "$links" == /* && -d "$links" ]] || links=""
    cleanup() {
      umount -l "$r$c" "$r/dev" "$r/proc" ${links:+"$r$links"} 2>/dev/null || true
    }
    trap cleanup EXIT
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount --bind "$c" "$r$c"
    # pip'"'"'s local wheel directory (PIP_FIND_LINKS), read-only, where the host has one.
    if [[ -n "$links" ]]; then
      mkdir -p "$r$links"
      mount --bind -o ro "$links" "$r$links"
    fi
    unset RECOMPYLE_SID_INNER_ROOT RECOMPYLE_SID_INNER_CHECKOUT
    cd "$r$c"
    chroot "$r" /usr/bin/env -C "$c" \
      PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root \
      SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
      CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt \
      PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
      "$@"
  ' sid-root "$@"
}

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mount)"
case "${1:-}" in
  ensure) ensure_shared; printf '%s\n' "$root" ;;
  run)
    shift
    [[ $# -gt 0 ]] || die "run: no command given"
    ensure_shared
    run_inside "$@"
    ;;
  *) die "usage: sid_root.sh ensure | run CMD [ARG...]" ;;
esac
