#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each, starting from
# the corpora committed under testdata/fuzz. The default is a count of
# executions (3000x), not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded"
# when -fuzztime expires (golang/go#75804, fixed in Go 1.27), which would make
# CI flaky for no fault of ours. A duration still works for long local runs.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3000x}
GO=${GO:-go}
n=0
for pkg in $($GO list ./...); do
  dir=$($GO list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "    fuzz $pkg $target"
    $GO test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; rm -f /tmp/fuzz.$$.log; exit 1; }
    n=$((n + 1))
  done
done
rm -f /tmp/fuzz.$$.log
echo "    $n fuzz targets ran"
