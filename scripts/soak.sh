#!/usr/bin/env bash
# Soak: builds echo, runs it with tight limits, and drives it with good and
# hostile clients for SOAK_TIME (default 60s; hours are fine). Prints the
# report of internal/soak and fails if any check does.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_TIME=${SOAK_TIME:-60s}
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/echo" ./echo
go build -o "$tmp/soak" ./internal/soak
"$tmp/echo" -addr 127.0.0.1:0 -stats 0 -log-level error -max-write-queue 1048576 \
  -handshake-timeout 2s >"$tmp/echo.out" 2>"$tmp/echo.err" &
pid=$!
addr=""
for _ in $(seq 1 100); do
  addr=$(sed -n 's/^echo: listening on //p' "$tmp/echo.out" | head -n1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "soak: echo did not start"; cat "$tmp/echo.err"; exit 1; }
"$tmp/soak" -addr "$addr" -pid "$pid" -duration "$SOAK_TIME" -server-max-write-queue 1048576
kill -TERM "$pid"
wait "$pid" || { echo "soak: echo did not exit 0 after SIGTERM"; exit 1; }
pid=""
echo "soak: echo shut down cleanly"
