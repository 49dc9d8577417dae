#!/usr/bin/env bash
# Soak: builds echo, runs it, and drives it with good and hostile clients
# for SOAK_TIME (default 60s; hours are fine): a mix of malformed clients
# all through the hostile phase and, window by window, the attacks of issue
# 14 (see cmd/soak). Prints the report of cmd/soak and fails if any check
# does.
#
# The server runs with the defaults but for a short handshake timeout and
# write stall timeout, so that a 60 s run sees slowloris and stalled
# clients dropped; SOAK_ECHO_FLAGS replaces those (SOAK_ECHO_FLAGS=" " runs
# the defaults, as SECURITY.md's figures do).
#
# SOAK_PIN=1 (two CPUs or more) runs the server on CPU 0 (one event loop)
# with the probe, the client whose latency is reported, and the rest of the
# generator on the other CPUs: the probe's times are then the server's, not
# the generator's loopback traffic's (SECURITY.md gives both).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/echo.sh
SOAK_TIME=${SOAK_TIME:-60s}
SOAK_ECHO_FLAGS=${SOAK_ECHO_FLAGS:--handshake-timeout 5s -write-stall-timeout 3s}
tmp=$(mktemp -d)
cleanup() {
  echo_kill
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/soak" ./cmd/soak
server=() generator=() probe=(-probe-cpu -1)
if [ "${SOAK_PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  server=(taskset -c 0) generator=(taskset -c "1-$(($(nproc) - 1))") probe=(-probe-cpu 0)
fi
# shellcheck disable=SC2086 # the flags are words
ECHO_WRAP="${server[*]}" echo_start soak "$tmp" -log-level error -metrics 127.0.0.1:0 $SOAK_ECHO_FLAGS
stall=$(sed -n 's/.*-write-stall-timeout[ =]\([^ ]*\).*/\1/p' <<<" $SOAK_ECHO_FLAGS ")
metrics=""
for _ in $(seq 1 50); do # printed right after the listening line
  metrics=$(sed -n 's/^echo: metrics on //p' "$tmp/echo.out" | head -n1)
  [ -n "$metrics" ] && break
  sleep 0.1
done
"${generator[@]}" "$tmp/soak" -addr "$ECHO_ADDR" -pid "$ECHO_PID" -duration "$SOAK_TIME" \
  -server-write-stall "${stall:-10s}" -metrics "$metrics" "${probe[@]}"
echo_stop soak
echo "soak: echo shut down cleanly"
