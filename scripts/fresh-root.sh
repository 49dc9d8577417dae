#!/usr/bin/env bash
# Runs `make run` and `make test` as a new user would, in a fresh Debian 12
# (bookworm) root that has only Go, make and git: what the README's "Two
# commands" promise on a fresh machine. Not part of make test (it takes as
# long as make test on a fresh machine, installs included).
#
#   scripts/fresh-root.sh              build the root, run both, remove it
#   KEEP=1 scripts/fresh-root.sh       keep the root afterwards (its path is printed)
#   FRESH_ROOT=/var/tmp/r scripts/fresh-root.sh   where to build it
#   FRESH_STEPS=run scripts/fresh-root.sh          only make run (FRESH_STEPS=run,test by default)
#   FRESH_REUSE=1 KEEP=1 FRESH_STEPS=test scripts/fresh-root.sh
#                                      a root kept from an earlier run: no
#                                      debootstrap or copying, the clone moved
#                                      to this checkout's HEAD (no longer fresh:
#                                      what setup installed there stays)
#
# As root. It makes the root with `debootstrap --variant=minbase bookworm`
# (installing debootstrap first if needed) from the mirror this machine's
# apt sources name, with git, make and ca-certificates; copies in this
# machine's apt sources and apt proxy settings, its CA certificates, its
# /etc/resolv.conf, the Go toolchain at /usr/local/go and the go command's
# env file; clones this checkout's committed HEAD into /src/hioload-ws; in a
# mount namespace of its own, bind-mounts the root onto itself (so that / is
# a mount point, as buildah needs) and mounts /proc, /sys and /dev there; and
# runs, with chroot and CI=true (so a missing tool fails instead of skipping):
#
#   make run ARGS="-addr 127.0.0.1:0"   until echo says it listens, then SIGTERM: exit 0 wanted
#   make test
#
# printing each command's duration. The first command that fails stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-root: needs root (debootstrap, chroot, mounts)" >&2
  exit 1
fi
# Everything below runs in a mount namespace of its own: the root's mounts
# are private to it and vanish with it, however it exits.
if [ -z "${FRESH_NS:-}" ]; then
  FRESH_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
root=${FRESH_ROOT:-/var/tmp/hioload-fresh-root}
steps=${FRESH_STEPS:-run,test}
suite=bookworm
t_all=$SECONDS

timed() { # NAME CMD...: run CMD, print its duration; stop on failure
  local name=$1 t0=$SECONDS rc=0
  shift
  echo "==> fresh-root: $name"
  "$@" || rc=$?
  echo "    fresh-root: $name: $((SECONDS - t0))s$([ $rc -ne 0 ] && echo ", FAILED (exit $rc)")"
  return $rc
}

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" 2>/dev/null || true
  done
  if [ -z "${KEEP:-}" ] && [ -d "$root" ]; then
    rm -rf --one-file-system "$root"
  elif [ -d "$root" ]; then
    echo "fresh-root: kept $root"
  fi
  echo "fresh-root: total $((SECONDS - t_all))s"
}
trap cleanup EXIT

mirror() { # the first Debian mirror this machine's apt sources name
  local m
  m=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -z "$m" ] && m=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

make_root() {
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  if [ -e "$root" ]; then
    echo "fresh-root: $root exists; remove it or set FRESH_ROOT" >&2
    return 1
  fi
  debootstrap --variant=minbase --include=git,make,ca-certificates "$suite" "$root" "$(mirror)" >"$root.debootstrap.log" 2>&1 ||
    { tail -20 "$root.debootstrap.log"; return 1; }
  rm -f "$root.debootstrap.log"
}

copy_host() {
  # apt: sources (the enabled ones) and the settings that reach the mirror.
  rm -f "$root/etc/apt/sources.list"
  cp -a /etc/apt/sources.list "$root/etc/apt/" 2>/dev/null || true
  find /etc/apt/sources.list.d -maxdepth 1 \( -name '*.list' -o -name '*.sources' \) -exec cp -a {} "$root/etc/apt/sources.list.d/" \;
  grep -lis -E 'proxy|Acquire' /etc/apt/apt.conf.d/* | while read -r f; do cp -a "$f" "$root/etc/apt/apt.conf.d/"; done
  # The CAs this machine trusts (an egress proxy's among them), then the bundle.
  if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # Go, as this machine has it: the toolchain and the go command's env file.
  cp -a /usr/local/go "$root/usr/local/go"
  local genv
  genv=$(/usr/local/go/bin/go env GOENV 2>/dev/null || true)
  if [ -n "$genv" ] && [ -f "$genv" ]; then
    mkdir -p "$root/root/.config/go"
    cp "$genv" "$root/root/.config/go/env"
  fi
  git clone -q --branch "$(git rev-parse --abbrev-ref HEAD)" "$repo" "$root/src/hioload-ws"
  echo "fresh-root: cloned $(git -C "$root/src/hioload-ws" log --oneline -1)"
}

mount_fs() {
  # The root a mount point of its own, as / is on a booted machine: buildah
  # (the container-image step) remounts / and fails in a plain directory.
  mount --bind "$root" "$root" && mounts+=("$root")
  mount -t proc proc "$root/proc" && mounts+=("$root/proc")
  mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys" && mounts+=("$root/sys")
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" && mounts+=("$root/dev")
}

# The environment inside: a clean one, with this machine's proxy variables
# and CI=true.
root_env=(HOME=/root TERM=dumb LANG=C.UTF-8 CI=true
  PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!v:-}" ]; then root_env+=("$v=${!v}"); fi
done

# in_root CMD: run CMD (a bash string) in the root's checkout.
in_root() {
  chroot "$root" /usr/bin/env -i "${root_env[@]}" /bin/bash -c "cd /src/hioload-ws && $1"
}

# make_run: `make run` on a free loopback port until echo says it listens,
# then SIGTERM to echo (found in the process group of the chroot we
# started); make must then exit 0, as echo does after a graceful stop.
make_run() {
  local out=$root/tmp/make-run.out pid rc=0 echo_pid
  setsid chroot "$root" /usr/bin/env -i "${root_env[@]}" \
    /bin/bash -c 'cd /src/hioload-ws && exec make run ARGS="-addr 127.0.0.1:0 -stats 0"' >"$out" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 2700)) # setup's installs and the first build included (15 min were not enough at load 15)
  until grep -q '^echo: listening on' "$out"; do
    if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
      cat "$out"
      echo "fresh-root: make run did not start echo"
      kill -TERM -- "-$pid" 2>/dev/null || true
      return 1
    fi
    sleep 1
  done
  grep '^echo: listening on' "$out"
  echo_pid=$(pgrep -g "$pid" -x echo)
  kill -TERM "$echo_pid"
  wait "$pid" || rc=$?
  tail -n 3 "$out"
  if [ $rc -ne 0 ] || ! grep -q '^Server stopped\.$' "$out"; then
    echo "fresh-root: make run: exit $rc after SIGTERM, want 0 and \"Server stopped.\""
    return 1
  fi
}

if [ -n "${FRESH_REUSE:-}" ] && [ -d "$root/src/hioload-ws" ]; then
  git -C "$root/src/hioload-ws" fetch -q "$repo" "$(git rev-parse HEAD)"
  git -C "$root/src/hioload-ws" checkout -q --detach FETCH_HEAD
  echo "fresh-root: reusing $root at $(git -C "$root/src/hioload-ws" log --oneline -1)"
else
  timed "debootstrap $suite (minbase, git, make, ca-certificates) from $(mirror)" make_root
  timed "copy in apt sources, CAs, resolv.conf, /usr/local/go; clone $repo" copy_host
fi
mount_fs
in_root 'echo "fresh-root: $(. /etc/os-release; echo "$PRETTY_NAME"), $(go version), $(git --version), $(make --version | head -n1)"'
case ,$steps, in *,run,*) timed "make run (until it listens, then SIGTERM)" make_run ;; esac
case ,$steps, in *,test,*) timed "make test" in_root 'make test' ;; esac
echo "fresh-root: all steps passed"
