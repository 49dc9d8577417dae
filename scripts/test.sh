#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it. Each step prints a
# line when it starts and how long it took; the first failure stops the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3000x}

step() {
  local name=$1; shift
  local t0=$SECONDS
  echo "==> $name"
  "$@"
  echo "    ok: $name ($((SECONDS - t0))s)"
}

fmt_check() {
  local bad
  bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
  if [ -n "$bad" ]; then echo "not gofmt-ed:"; echo "$bad"; return 1; fi
}

# The reactor's unsupported-platform path, for real: -tags noreactor builds
# Linux without its poller (poll_other.go), and the test must run, not skip.
no_poller() {
  local out
  out=$($GO test -count=1 -v -tags noreactor -run '^TestNotSupportedElsewhere$' ./reactor 2>&1) || { echo "$out"; return 1; }
  grep -q -- '--- PASS: TestNotSupportedElsewhere' <<<"$out" || { echo "$out"; echo "TestNotSupportedElsewhere did not run"; return 1; }
}

optional() { # run a script if it exists (it skips itself when its tools are missing)
  if [ -x "$1" ]; then "$@"; else echo "    (no $1)"; fi
}

step "gofmt" fmt_check
step "go vet" $GO vet ./...
step "dependency direction (4 build variants)" scripts/checkdeps.sh
step "dependency checker catches planted arrows" scripts/checkdeps.sh --self-test
step "build without cgo" env CGO_ENABLED=0 $GO build ./...
step "vet without cgo" env CGO_ENABLED=0 $GO vet ./...
step "build for windows" env GOOS=windows $GO build ./...
step "vet for windows" env GOOS=windows $GO vet ./...
step "build for other platforms (darwin: the reactor says it is unsupported)" env GOOS=darwin $GO build ./...
step "no poller: New fails with ErrUnsupported (-tags noreactor)" no_poller
# The Go tests run twice: under the race detector, and without cgo (which
# changes how cnuma and topology read the machine). The first pass runs on
# the io engine HIOLOAD_ENGINE names (unset: auto, which is io_uring where
# the kernel has it), the second on the other engine where the kernel has
# both, so that every test, the conformance suite among them, runs on
# each; the reactor's tests also run under the race detector on that other
# engine. The soak runs on both too.
engine=${HIOLOAD_ENGINE:-auto}
$GO build -o /tmp/engine-probe.$$ ./echo
uring_here=$(/tmp/engine-probe.$$ -engine uring -topology 2>&1 | sed -n 's/^note: io engine: //p;s/^echo: //p' | head -n1)
rm -f /tmp/engine-probe.$$
first=epoll other=epoll # both engines only where the kernel has io_uring
if [ "$uring_here" = uring ]; then
  if [ "$engine" = epoll ]; then other=uring; else first=uring; fi # auto takes io_uring
fi
echo "==> io engines: $first, then $other (io_uring here: $uring_here)"
step "tests (race detector, shuffled; io engine $first)" env HIOLOAD_ENGINE="$first" $GO test -race -shuffle=on -timeout 25m ./...
step "tests without cgo (io engine $other)" env CGO_ENABLED=0 HIOLOAD_ENGINE="$other" $GO test -timeout 25m ./...
if [ "$first" != "$other" ]; then
  step "the reactor under the race detector (io engine $other)" env HIOLOAD_ENGINE="$other" $GO test -race -count=1 -timeout 10m ./reactor/
fi
step "fuzz targets ($FUZZTIME each)" env FUZZTIME=$FUZZTIME scripts/fuzz.sh
step "interop with Node ws and wscat" optional scripts/interop-node.sh
step "interop with Python websockets" optional scripts/interop-python.sh
step "browser: headless Chromium against echo -compression" optional scripts/browser-test.sh
step "windows: test binaries and echo.exe under wine" sh -c 'scripts/wine-setup.sh && scripts/wine-test.sh'
step "soak: good and hostile clients (${SOAK_TIME:-60s}, io engine $first)" env SOAK_TIME="${SOAK_TIME:-60s}" HIOLOAD_ENGINE="$first" scripts/soak.sh
if [ "$first" != "$other" ]; then
  step "soak on the other engine (${SOAK_TIME_OTHER:-40s}, io engine $other)" env SOAK_TIME="${SOAK_TIME_OTHER:-40s}" HIOLOAD_ENGINE="$other" scripts/soak.sh
fi
step "topology report (cgo: hwloc + libnuma)" optional scripts/topology-report.sh
step "topology report (CGO_ENABLED=0: sysfs)" env CGO_ENABLED=0 scripts/topology-report.sh
step "kubernetes manifests (kustomize, API types, echo's flags and probes)" sh -c 'cd deploy/kubernetes && '"$GO"' vet ./... && '"$GO"' test -count=1 ./...'
step "container images (buildah: Dockerfile.build, runtime image, echo serving from it)" scripts/image-test.sh
step "2-node NUMA guest (qemu)" optional scripts/numa-vm.sh
step "benchmark smoke run" optional scripts/bench.sh --smoke
echo "==> all tests passed"
