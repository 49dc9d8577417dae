#!/usr/bin/env bash
# The browser test (echo/TestBrowser): headless Chromium loads a page served
# on 127.0.0.1 that connects to echo -compression, checks the extension the
# browser negotiated (ws.extensions, logged) and echoes text and binary
# messages of 0 B to 1 MiB byte for byte; the server's counters must show
# them compressed both ways. Uses $HIOLOAD_BROWSER, else chromium on PATH
# (Debian's chromium package, which scripts/setup.sh installs). Without one
# it prints SKIP and exits 0, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
browser=${HIOLOAD_BROWSER:-$(command -v chromium || command -v chromium-browser || true)}
source scripts/lib/missing.sh
[ -n "$browser" ] || missing browser-test "no Chromium"
echo "browser-test: $("$browser" --version 2>/dev/null | grep -v 'unexpected operator' | head -1)"
HIOLOAD_BROWSER=$browser go test -count=1 -run '^TestBrowser$' -v ./echo 2>&1 |
	grep -v '^time=\|^\[\|unexpected operator\|^DevTools listening\|^$'
