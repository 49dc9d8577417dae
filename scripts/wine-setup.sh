#!/usr/bin/env bash
# Prepares a wine prefix in which Go Windows binaries (tests, echo.exe) run on
# Linux: installs wine64 and the mingw-w64 cross compiler when missing, builds
# the bcryptprimitives.dll shim (scripts/wine/processprng.c) and copies it
# into the prefix's system32.
#
# Why the shim: every Go >= 1.22 Windows binary resolves ProcessPrng from
# bcryptprimitives.dll at start; Debian 12's wine 8.0 has no such export and
# the binary dies with "fatal error: bcryptprimitives.dll not found". The shim
# implements ProcessPrng with advapi32's SystemFunction036 (RtlGenRandom).
#
# Prints the environment to use, e.g.
#   eval "$(scripts/wine-setup.sh --env)"
# and then: wine64 ./x.exe
#
# WINEPREFIX defaults to ~/.wine-hioload so that the tests never touch a
# user's own prefix. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

print_env=0
[ "${1:-}" = "--env" ] && print_env=1
log() { if [ $print_env -eq 0 ]; then echo "wine-setup: $*"; else echo "wine-setup: $*" >&2; fi; }

ownprefix=$HOME/.wine-hioload
export WINEPREFIX=${WINEPREFIX:-$ownprefix}
export WINEDEBUG=${WINEDEBUG:--all}
export WINEDLLOVERRIDES="bcryptprimitives=n${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"

need=()
wine_bin() { command -v wine64 2>/dev/null || ls /usr/lib/wine/wine64 2>/dev/null || true; }
[ -n "$(wine_bin)" ] || need+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to install ${need[*]}" ; exit 1; }
    sudo=sudo
  fi
  command -v apt-get >/dev/null || { log "no apt-get: install ${need[*]} by hand"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
WINE=$(wine_bin)

# A 64-bit prefix; wineboot creates it on first use (takes a few seconds).
# A prefix without kernel32.dll is half made (wineboot was interrupted, or
# ran while the package was still being configured): made again.
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -f "$sys32/kernel32.dll" ]; then
  log "creating prefix $WINEPREFIX"
  [ "$WINEPREFIX" = "$ownprefix" ] && rm -rf "$WINEPREFIX" # never someone else's
  WINEARCH=win64 "$WINE" wineboot -i >/dev/null 2>&1 || true
  "$(dirname "$WINE")/wineserver" -w 2>/dev/null || wineserver -w 2>/dev/null || true
fi
[ -f "$sys32/kernel32.dll" ] || { log "no $sys32/kernel32.dll after wineboot"; exit 1; }

# The shim: rebuilt when its source is newer than the installed copy.
src=scripts/wine/processprng.c
dll="$sys32/bcryptprimitives.dll"
if [ ! -f "$dll" ] || [ "$src" -nt "$dll" ] || ! grep -q ProcessPrng "$dll" 2>/dev/null; then
  log "building the ProcessPrng shim into $dll"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  x86_64-w64-mingw32-gcc -shared -O2 -s -o "$tmp/bcryptprimitives.dll" \
    "$src" scripts/wine/processprng.def -ladvapi32
  cp "$tmp/bcryptprimitives.dll" "$dll"
fi

if [ $print_env -eq 1 ]; then
  echo "export WINEPREFIX='$WINEPREFIX' WINEDEBUG='$WINEDEBUG' WINEDLLOVERRIDES='$WINEDLLOVERRIDES' WINE='$WINE'"
else
  log "ready: WINEPREFIX=$WINEPREFIX WINEDLLOVERRIDES=$WINEDLLOVERRIDES $WINE"
fi
