#!/usr/bin/env bash
# Installs what building and testing hioload-ws needs on a Debian/Ubuntu
# machine that has Go: the libnuma and hwloc headers for the cgo bindings,
# the numactl/hwloc tools the topology report compares itself with, and the
# clients of the interop tests (Python websockets; Node with ws and wscat;
# Chromium for the browser test).
# Does nothing when everything is there already.
set -euo pipefail

need=()
have_header() { [ -f "/usr/include/$1" ]; }
have_header numa.h || need+=(libnuma-dev)
{ have_header hwloc.h && pkg-config --exists hwloc 2>/dev/null; } || need+=(libhwloc-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v numactl >/dev/null || need+=(numactl)
command -v lstopo-no-graphics >/dev/null || command -v lstopo >/dev/null || need+=(hwloc-nox)
command -v gcc >/dev/null || need+=(gcc)
command -v jq >/dev/null || need+=(jq)
# Interop tests with clients we did not write: Python websockets (Debian),
# Node's ws and wscat (Node and npm from Debian, the two npm packages below:
# wscat is also the README's client, `wscat -c ws://localhost:9001`), and a
# real browser for the permessage-deflate test (scripts/browser-test.sh).
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import websockets" 2>/dev/null || need+=(python3-websockets)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
npm_pkgs=(wscat@6.1.0 ws@8.18.0)

# npm_missing: the npm packages (above) not installed globally yet.
npm_missing() {
  local root p
  root=$(npm root -g 2>/dev/null) || { echo "${npm_pkgs[@]}"; return; }
  for p in "${npm_pkgs[@]}"; do
    [ -f "$root/${p%@*}/package.json" ] || echo "$p"
  done
}

if [ ${#need[@]} -eq 0 ] && [ -z "$(npm_missing)" ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup: need root (or sudo) to install ${need[*]};" >&2
    echo "setup: install them by hand, or build without cgo: CGO_ENABLED=0 go build ./echo" >&2
    exit 1
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  if ! command -v apt-get >/dev/null; then
    echo "setup: no apt-get here; install the equivalents of ${need[*]} by hand" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
missing=$(npm_missing | tr "\n" " ")
if [ -n "$missing" ]; then
  echo "setup: installing $missing (npm, globally)"
  # shellcheck disable=SC2086 # one word per package
  $sudo npm install -g --no-audit --no-fund --loglevel=error $missing >/dev/null
fi
echo "setup: done"
