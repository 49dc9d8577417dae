#!/usr/bin/env bash
# Soak: builds echo, runs it with tight limits, and drives it with good and
# hostile clients for SOAK_TIME (default 60s; hours are fine). Prints the
# report of cmd/soak and fails if any check does. The server runs the io
# engine HIOLOAD_ENGINE names (epoll or uring; unset: auto).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/echo.sh
SOAK_TIME=${SOAK_TIME:-60s}
tmp=$(mktemp -d)
cleanup() {
  echo_kill
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/soak" ./cmd/soak
echo_start soak "$tmp" -log-level error -max-write-queue 1048576 -handshake-timeout 2s
echo "soak: $(sed -n 's/^echo: //p' "$tmp/echo.out" | tr '\n' ';' | sed 's/;$//; s/;/, /g')"
"$tmp/soak" -addr "$ECHO_ADDR" -pid "$ECHO_PID" -duration "$SOAK_TIME" -server-max-write-queue 1048576
echo_stop soak
echo "soak: echo shut down cleanly"
